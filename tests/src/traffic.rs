//! Real traffic between namespaces, checked byte for byte.

use std::{
    collections::BTreeSet,
    io::{Read as _, Write as _},
    net::{SocketAddr, TcpListener, TcpStream, UdpSocket},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use crate::{Netns, wait_until};

/// Uploads `payload` over one TCP connection from `client` to a server started in `server`
/// on `addr`, which sends it back; both directions are compared byte for byte (a wrong
/// translation or checksum shows as a stall or a mismatch). Returns the peer address the
/// server saw (the client's public address behind a NAT).
pub fn tcp_echo(client: &Netns, server: &Netns, addr: SocketAddr, payload: Vec<u8>) -> SocketAddr {
    tcp_echo_via(client, server, addr, addr, payload)
}

/// [`tcp_echo`] with a server bound to `bind` that the client reaches at `connect` (a port
/// forward's public address, say).
pub fn tcp_echo_via(
    client: &Netns,
    server: &Netns,
    bind: SocketAddr,
    connect: SocketAddr,
    payload: Vec<u8>,
) -> SocketAddr {
    let expect = payload.clone();
    let srv = server.spawn_thread(move || {
        let listener = TcpListener::bind(bind).expect("bind TCP");
        let (mut conn, from) = listener.accept().expect("a connection");
        conn.set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let mut got = vec![0u8; expect.len()];
        conn.read_exact(&mut got).expect("the upload");
        assert!(got == expect, "upload corrupted");
        conn.write_all(&got).expect("the download");
        from
    });
    client.run(|| {
        let mut conn = None;
        wait_until("the TCP server to accept", Duration::from_secs(10), || {
            conn = TcpStream::connect_timeout(&connect, Duration::from_millis(500)).ok();
            conn.is_some()
        });
        let mut conn = conn.expect("connected");
        conn.set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        conn.write_all(&payload).expect("upload");
        let mut back = vec![0u8; payload.len()];
        conn.read_exact(&mut back).expect("download");
        assert!(back == payload, "download corrupted");
    });
    srv.join().unwrap_or_else(|p| std::panic::resume_unwind(p))
}

/// `len` bytes of a pattern that differs per `seed` (so a mix-up between flows shows).
pub fn pattern(len: usize, seed: u32) -> Vec<u8> {
    (0..len as u32)
        .map(|i| (i.wrapping_mul(7) + i / 251 + seed) as u8)
        .collect()
}

/// Sends numbered datagrams on `sock` (to `to`, or its connected peer) every `gap` until
/// `stop`; returns how many it sent.
pub fn sequence_sender(
    sock: UdpSocket,
    to: Option<SocketAddr>,
    gap: Duration,
    stop: Arc<AtomicBool>,
) -> JoinHandle<u32> {
    std::thread::spawn(move || {
        let mut seq = 0u32;
        let start = Instant::now();
        while !stop.load(Ordering::Relaxed) {
            let msg = seq.to_be_bytes();
            match to {
                Some(to) => sock.send_to(&msg, to),
                None => sock.send(&msg),
            }
            .expect("sending a sequence number");
            seq += 1;
            // Paced against the start, so that a slow wake-up does not stretch the run.
            let next = start + gap * seq;
            std::thread::sleep(next.saturating_duration_since(Instant::now()));
        }
        seq
    })
}

/// Collects the sequence numbers arriving on `sock` until `stop` and a quiet read timeout.
pub fn sequence_receiver(sock: UdpSocket, stop: Arc<AtomicBool>) -> JoinHandle<BTreeSet<u32>> {
    sock.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    std::thread::spawn(move || {
        let mut got = BTreeSet::new();
        let mut buf = [0u8; 16];
        loop {
            match sock.recv(&mut buf) {
                Ok(4) => {
                    got.insert(u32::from_be_bytes(buf[..4].try_into().unwrap()));
                }
                Ok(_) => {}
                Err(_) if stop.load(Ordering::Relaxed) => return got,
                Err(_) => {}
            }
        }
    })
}
