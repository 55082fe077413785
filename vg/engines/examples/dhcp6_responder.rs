//! A DHCPv6 server on a plain UDP socket around the engine: for interoperability runs with
//! real clients and for capturing the client messages `src/dhcp6/tests/fixtures` holds (see
//! `fixtures/capture.sh`). Not vgd: no LSL, no store on disk, one home, one interface.
//!
//! `dhcp6_responder IFACE SECONDS OUT_DIR` listens on `[::]:547` joined to ff02::1:2 on
//! IFACE for SECONDS, serves the home 2001:db8:0:100::/56 (LAN the first /64, /60s
//! delegated; short lifetimes so that clients renew within the run: T1 4 s, T2 6 s,
//! preferred 8 s, valid 30 s), and writes every client message it receives to
//! `OUT_DIR/NN-TYPE.bin` (the UDP payload). The client's MAC is taken from its EUI-64
//! link-local address (a UDP socket does not see the Ethernet header).

use std::net::{Ipv6Addr, SocketAddr, SocketAddrV6, UdpSocket};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context as _, bail};
use vg_engines::dhcp::{MacAddr, UnixTime};
use vg_engines::dhcp6::{
    CLIENT_PORT, Dhcp6Config, Dhcp6Settings, HomeServer, MemoryStore, Peer, SERVER_PORT,
};

const ALL_DHCP_AGENTS: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 1, 2);

fn message_name(byte: u8) -> &'static str {
    match byte {
        1 => "solicit",
        3 => "request",
        4 => "confirm",
        5 => "renew",
        6 => "rebind",
        8 => "release",
        9 => "decline",
        11 => "info_request",
        _ => "other",
    }
}

/// The MAC inside an EUI-64 interface identifier (RFC 4291 appendix A).
fn mac_of(ll: Ipv6Addr) -> MacAddr {
    let o = ll.octets();
    MacAddr([o[8] ^ 2, o[9], o[10], o[13], o[14], o[15]])
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, iface, secs, out_dir] = &args[..] else {
        bail!("usage: dhcp6_responder IFACE SECONDS OUT_DIR");
    };
    let secs: u64 = secs.parse().context("SECONDS")?;
    std::fs::create_dir_all(out_dir).context("creating OUT_DIR")?;
    let ifindex: u32 = std::fs::read_to_string(format!("/sys/class/net/{iface}/ifindex"))
        .context("no such interface")?
        .trim()
        .parse()?;
    let mut settings = Dhcp6Settings::new(
        "2001:db8:0:100::/64".parse()?,
        Some("2001:db8:0:100::/56".parse()?),
        MacAddr([0x02, 0x00, 0x5e, 0x10, 0x00, 0x01]),
    );
    (settings.t1_secs, settings.t2_secs) = (4, 6);
    (settings.preferred_secs, settings.valid_secs) = (8, 60);
    settings.dns_servers = vec!["2001:db8::53".parse()?];
    settings.domain_search = vec!["home.arpa".into()];
    let mut server = HomeServer::new(1, Dhcp6Config::try_from(settings)?);
    let store = MemoryStore::new();

    let socket = UdpSocket::bind(SocketAddr::from((Ipv6Addr::UNSPECIFIED, SERVER_PORT)))?;
    socket.join_multicast_v6(&ALL_DHCP_AGENTS, ifindex)?;
    let end = Instant::now() + Duration::from_secs(secs);
    let mut buf = [0u8; 2048];
    let mut n = 0;
    while let Some(left) = end.checked_duration_since(Instant::now()) {
        socket.set_read_timeout(Some(left.max(Duration::from_millis(1))))?;
        let Ok((len, SocketAddr::V6(from))) = socket.recv_from(&mut buf) else {
            continue;
        };
        let bytes = &buf[..len];
        n += 1;
        let name = message_name(bytes.first().copied().unwrap_or(0));
        std::fs::write(format!("{out_dir}/{n:02}-{name}.bin"), bytes)?;
        let now = UnixTime::from_system_time(SystemTime::now());
        let peer = Peer {
            mac: mac_of(*from.ip()),
            link_local: *from.ip(),
        };
        match server.handle_bytes(now, peer, bytes) {
            Ok(out) => {
                let committed = out.commit(&store)?;
                for event in &committed.events {
                    println!("{n:02} {name}: {event:?}");
                }
                if let Some(reply) = committed.reply {
                    let to = SocketAddrV6::new(reply.dst, CLIENT_PORT, 0, from.scope_id());
                    socket.send_to(&reply.payload, to)?;
                    println!("{n:02} {name}: answered with {:?}", reply.message_type);
                }
            }
            Err(reason) => println!("{n:02} {name}: dropped ({reason})"),
        }
        let expired = server.expire(now).commit(&store)?;
        for event in &expired.events {
            println!("timer: {event:?}");
        }
    }
    println!("{} bindings stored", store.len());
    Ok(())
}
