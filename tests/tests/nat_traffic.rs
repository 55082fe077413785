//! Real TCP and UDP stacks through the vG's XDP NAT, over a VXLAN LSL made by a kernel vxlan
//! device in the BRG namespace:
//!
//! ```text
//!  home (h0 192.168.1.10) -- br0 + vxlan0 (BRG, VTEP 10.0.0.2) -- acc0 (vG, VTEP 10.0.0.1)
//!      XDP vg_access / vg_core -- core0 10.99.0.1 -- up0 10.99.0.2 (internet, 203.0.113.5)
//! ```
//!
//! The fast path is loaded and configured by the test itself (vgd's NAT pool configuration
//! is the control-plane issue's); both ends verify checksums (tx checksum offload is off
//! where traffic enters, as on a real wire), so corrupted translations would show as lost
//! datagrams and stalled connections.

use std::{
    io::{Read as _, Write as _},
    net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket},
    time::Duration,
};

use nerg_abi::{
    Config, Counter, Host, HostKey, NatFwdKey, Subscriber, VxlanLslKey, config_flags, host_flags,
    lsl_kind, program_names, stag_tpid, sub_flags,
};
use nerg_tests::{Netns, PinDir, netns::veth, require_root, wait_until};
use vg::fastpath::{AttachMode, FastPath, if_index};

const VG_VTEP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const BRG_VTEP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
const HOST: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 10);
const HOST_MAC: [u8; 6] = [0x02, 0x11, 0, 0, 0, 0x10];
const GW_MAC: [u8; 6] = [0x02, 0x4e, 0x47, 0, 0, 0x01];
const SERVER: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 5);
const PUBLIC: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);
const BLOCK: u16 = 20480;
const BLOCK_SIZE: u16 = 512;
const SUB: u32 = 1;
const VNI: u32 = 5001;

fn raw(ip: Ipv4Addr) -> u32 {
    u32::from_ne_bytes(ip.octets())
}

fn mac_str(m: [u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

struct Lab {
    fp: FastPath,
    home: Netns,
    _brg: Netns,
    vg: Netns,
    inet: Netns,
    _pins: PinDir,
}

fn lab(tag: &str) -> Lab {
    require_root();
    let home = Netns::new(&format!("{tag}-home"));
    let brg = Netns::new(&format!("{tag}-brg"));
    let vg = Netns::new(&format!("{tag}-vg"));
    let inet = Netns::new(&format!("{tag}-inet"));
    for ns in [&home, &brg, &vg, &inet] {
        ns.disable_ipv6();
    }

    // The home host, with complete checksums and room for VXLAN's 50 bytes.
    veth(&home, "h0", &brg, "lan0");
    home.ip(&[
        "link",
        "set",
        "h0",
        "address",
        &mac_str(HOST_MAC),
        "mtu",
        "1450",
    ]);
    home.addr_add("h0", &format!("{HOST}/24"));
    home.route_add("default", "192.168.1.1");
    // The gateway's ARP answer comes from vgd's slow path (control-plane issue); here the
    // host knows it.
    home.ip(&[
        "neigh",
        "replace",
        "192.168.1.1",
        "lladdr",
        &mac_str(GW_MAC),
        "dev",
        "h0",
        "nud",
        "permanent",
    ]);
    home.ethtool_k("h0", &["tx", "off"]);

    // The BRG: LAN port and the VXLAN LSL on one bridge.
    veth(&brg, "lsl0", &vg, "acc0");
    brg.addr_add("lsl0", &format!("{BRG_VTEP}/24"));
    brg.ip(&[
        "link",
        "add",
        "vxlan0",
        "type",
        "vxlan",
        "id",
        &VNI.to_string(),
        "local",
        &BRG_VTEP.to_string(),
        "remote",
        &VG_VTEP.to_string(),
        "dstport",
        "4789",
        "dev",
        "lsl0",
    ]);
    brg.ip(&["link", "set", "lan0", "mtu", "1450"]);
    brg.bridge("br0", &["lan0", "vxlan0"]);
    brg.link_up("vxlan0");
    brg.ethtool_k("lsl0", &["tx", "off"]);

    // The vG and the internet.
    veth(&vg, "core0", &inet, "up0");
    vg.addr_add("acc0", &format!("{VG_VTEP}/24"));
    vg.addr_add("core0", "10.99.0.1/24");
    vg.route_add("default", "10.99.0.2");
    vg.exec("sysctl", &["-qw", "net.ipv4.conf.all.forwarding=1"]);
    inet.addr_add("up0", "10.99.0.2/24");
    inet.addr_add("lo", &format!("{SERVER}/32"));
    inet.route_add(&format!("{PUBLIC}/32"), "10.99.0.1");
    inet.ethtool_k("up0", &["tx", "off"]);

    let pins = PinDir::new(tag);
    let access_mac = vg.mac("acc0");
    let fp = vg.run(|| {
        let mut fp = FastPath::load(pins.path()).expect("load the fast path");
        configure(&mut fp, access_mac);
        fp.attach_access("acc0", AttachMode::Native)
            .expect("attach vg_access");
        fp.attach_core("core0", AttachMode::Native)
            .expect("attach vg_core");
        fp
    });
    let mut fp = fp;
    // Native redirects into a veth are delivered only when the peer runs XDP too.
    brg.run(|| fp.attach(program_names::PASS, "lsl0", AttachMode::Native))
        .expect("pass program on lsl0");
    inet.run(|| fp.attach(program_names::PASS, "up0", AttachMode::Native))
        .expect("pass program on up0");
    Lab {
        fp,
        home,
        _brg: brg,
        vg,
        inet,
        _pins: pins,
    }
}

fn configure(fp: &mut FastPath, access_mac: [u8; 6]) {
    let access = if_index("acc0").unwrap();
    let core = if_index("core0").unwrap();
    let mut maps = fp.maps();
    maps.set_config(&Config {
        vtep_ipv4: raw(VG_VTEP),
        vxlan_port: 4789u16.to_be(),
        stag_tpids: stag_tpid::ALL,
        flags: config_flags::VALID,
        nat_block_size: BLOCK_SIZE,
        access_ifindex: access,
        access_mac,
        ..Config::default()
    })
    .unwrap();
    maps.set_egress(access).unwrap();
    maps.set_egress(core).unwrap();
    maps.insert_public_ip(raw(PUBLIC)).unwrap();
    maps.set_subscriber(
        SUB,
        &Subscriber {
            flags: sub_flags::ACTIVE,
            lsl_kind: lsl_kind::VXLAN4,
            vni: VNI,
            remote_vtep: raw(BRG_VTEP),
            gw_mac: GW_MAC,
            gw_ip: raw(Ipv4Addr::new(192, 168, 1, 1)),
            public_ip: raw(PUBLIC),
            block_count: 1,
            blocks: [BLOCK, 0, 0, 0],
            ..Subscriber::default()
        },
    )
    .unwrap();
    maps.insert_vxlan_lsl(
        VxlanLslKey {
            vni: VNI,
            remote: raw(BRG_VTEP),
        },
        SUB,
    )
    .unwrap();
    maps.insert_host(
        HostKey {
            sub: SUB,
            ip: raw(HOST),
        },
        Host {
            mac: HOST_MAC,
            flags: host_flags::STATIC,
            _pad: 0,
        },
    )
    .unwrap();
}

#[test]
fn udp_and_tcp_cross_the_nat_over_a_vxlan_lsl() {
    let mut lab = lab("natvx");

    // UDP: the server echoes the source address it saw.
    let server = lab.inet.spawn_thread(|| {
        let sock = UdpSocket::bind((SERVER, 7000)).expect("bind UDP echo");
        sock.set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let mut buf = [0u8; 1500];
        let mut seen = Vec::new();
        for _ in 0..3 {
            let (n, from) = sock.recv_from(&mut buf).expect("datagram from the home");
            let reply = format!("{from}|{}", String::from_utf8_lossy(&buf[..n]));
            sock.send_to(reply.as_bytes(), from).unwrap();
            seen.push(from);
        }
        seen
    });
    let replies = lab.home.run(|| {
        let sock = UdpSocket::bind((HOST, 5555)).unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        let mut replies = Vec::new();
        let mut buf = [0u8; 1500];
        for i in 0..3 {
            // The server may not be bound yet: resend until it answers (bounded).
            let msg = format!("hello {i}");
            let mut got = None;
            for _ in 0..40 {
                sock.send_to(msg.as_bytes(), (SERVER, 7000)).unwrap();
                if let Ok((n, from)) = sock.recv_from(&mut buf) {
                    got = Some((from, String::from_utf8_lossy(&buf[..n]).into_owned()));
                    break;
                }
            }
            replies.push(got.expect("an echo through the NAT"));
        }
        replies
    });
    let seen = server.join().expect("UDP server");
    // The server saw the home's public address and a port of its block; the home got the
    // replies from the server's real address.
    let public_port = lab
        .fp
        .maps()
        .nat_mapping(&NatFwdKey {
            sub: SUB,
            priv_ip: raw(HOST),
            priv_port: 5555u16.to_be(),
            proto: 17,
            _pad: 0,
        })
        .unwrap()
        .expect("a UDP mapping");
    let port = u16::from_be(public_port.pub_port);
    assert!((BLOCK..BLOCK + BLOCK_SIZE).contains(&port), "port {port}");
    for from in &seen {
        assert_eq!(
            *from,
            SocketAddr::from((PUBLIC, port)),
            "the server saw {from}"
        );
    }
    for (from, text) in &replies {
        assert_eq!(*from, SocketAddr::from((SERVER, 7000)));
        assert!(
            text.starts_with(&format!("{PUBLIC}:{port}|hello")),
            "{text}"
        );
    }

    // TCP: a 4 MiB transfer each way through one connection, checked byte for byte.
    let payload: Vec<u8> = (0..4u32 << 20).map(|i| (i * 7 + i / 251) as u8).collect();
    let expect = payload.clone();
    let tcp_server = lab.inet.spawn_thread(move || {
        let listener = TcpListener::bind((SERVER, 8000)).expect("bind TCP");
        let (mut conn, from) = listener.accept().expect("a connection through the NAT");
        conn.set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let mut got = vec![0u8; expect.len()];
        conn.read_exact(&mut got).expect("the upload");
        assert!(got == expect, "upload corrupted");
        conn.write_all(&got).expect("the download");
        from
    });
    lab.home.run(|| {
        let addr = SocketAddr::from((SERVER, 8000));
        let mut conn = None;
        wait_until("the TCP server to accept", Duration::from_secs(10), || {
            conn = TcpStream::connect_timeout(&addr, Duration::from_millis(500)).ok();
            conn.is_some()
        });
        let mut conn = conn.unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        conn.write_all(&payload).expect("upload");
        let mut back = vec![0u8; payload.len()];
        conn.read_exact(&mut back).expect("download");
        assert!(back == payload, "download corrupted");
    });
    let from = tcp_server.join().expect("TCP server");
    assert_eq!(from.ip(), PUBLIC, "the server saw the public address");

    let s = lab.fp.counters().unwrap().snapshot().unwrap();
    assert!(
        s.total(Counter::NatUpstream) > 100,
        "upstream frames went through XDP"
    );
    assert!(
        s.total(Counter::NatDownstream) > 100,
        "downstream frames went through XDP"
    );
    assert!(s.total(Counter::VerdictRedirect) > 200);
    let _ = &lab.vg;
}
