//! Real TCP and UDP stacks through the vG's XDP NAT, one home per LSL kind, all with the same
//! private addresses:
//!
//! ```text
//!  home1 h0 -- BRG1 br0 [lan0, vxlan0 (kernel VXLAN, VNI 5001)] --+
//!  home2 h0 -- BRG2 br0 [lan0, lsl0 + tc tagger 802.1Q 100]  -----+
//!  home3 h0 -- BRG3 br0 [lan0, lsl0 + tc tagger QinQ 10.200] -----+-- access br0 -- acc0 vG
//!  home4 h0 -- BRG4 br0 [lan0, vxlan0 (VXLAN over IPv6, 6004)] ---+   XDP vg_access / vg_core
//!                                                           core0 10.99.0.1 -- up0 internet 203.0.113.5
//! ```
//!
//! The fast path is loaded and configured by the test itself, so that each case writes the
//! map entries it is about (vgd's own path is the end-to-end suite's). Both ends verify
//! checksums (tx checksum offload is off where traffic enters, as on a real wire), so a wrong
//! translation would show as lost datagrams and stalled connections.

use std::{
    net::{Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket},
    time::Duration,
};

use brg::tagger::{Tagger, Tags};
use nerg_abi::{Counter, NatFwdKey, SubscriberId, brg::TagCounter, program_names, sub_flags};
use nerg_tests::addrs::{BLOCK_SIZE, GW, HOST, VG_VTEP, VG_VTEP6};
use nerg_tests::{
    Netns, PinDir,
    netns::veth,
    require_root,
    rig::{self, RigHome},
    topology::vxlan_uplink,
    traffic,
};
use vg::fastpath::{AttachMode, FastPath, if_index};

const SERVER: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 5);
/// The STUN server's second address (RFC 3489 CHANGE-REQUEST).
const SERVER2: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 6);
const PUBLIC: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);

fn raw(ip: Ipv4Addr) -> u32 {
    u32::from_ne_bytes(ip.octets())
}

fn mac_str(m: [u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

#[derive(Clone, Copy)]
enum Kind {
    Vxlan { vni: u32, brg_vtep: Ipv4Addr },
    Vxlan6 { vni: u32, brg_vtep: Ipv6Addr },
    Vlan { s_vid: Option<u16>, c_vid: u16 },
}

#[derive(Clone, Copy)]
struct HomeSpec {
    id: SubscriberId,
    kind: Kind,
    block: u16,
    mtu: u16,
}

const HOMES: [HomeSpec; 4] = [
    HomeSpec {
        id: 1,
        kind: Kind::Vxlan {
            vni: 5001,
            brg_vtep: Ipv4Addr::new(10, 0, 0, 2),
        },
        block: 20480,
        // The host does not know its LSL is VXLAN: MSS clamping keeps its TCP segments
        // inside the LSL's 1450 bytes (the BRG's LAN port has MTU 1450, larger frames die).
        mtu: 1500,
    },
    HomeSpec {
        id: 2,
        kind: Kind::Vlan {
            s_vid: None,
            c_vid: 100,
        },
        block: 20992,
        mtu: 1500,
    },
    HomeSpec {
        id: 3,
        kind: Kind::Vlan {
            s_vid: Some(10),
            c_vid: 200,
        },
        block: 21504,
        // QinQ's second tag does not fit a 1500-byte veth MTU (platform.md).
        mtu: 1496,
    },
    HomeSpec {
        id: 4,
        kind: Kind::Vxlan6 {
            vni: 6004,
            brg_vtep: Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 4),
        },
        block: 22016,
        // As home 1, over IPv6: the LSL carries 1430 bytes, MSS clamping does the rest.
        mtu: 1500,
    },
];

fn host_mac(id: SubscriberId) -> [u8; 6] {
    [0x02, 0x11, 0, 0, 0, id as u8]
}

fn gw_mac(id: SubscriberId) -> [u8; 6] {
    [0x02, 0x4e, 0x47, 0, 0, id as u8]
}

struct Home {
    spec: HomeSpec,
    ns: Netns,
    _brg: Netns,
    _tagger: Option<Tagger>,
}

struct Lab {
    fp: FastPath,
    homes: Vec<Home>,
    _access: Netns,
    _vg: Netns,
    inet: Netns,
    pins: PinDir,
}

fn lab(tag: &str) -> Lab {
    require_root();
    let access = Netns::new(&format!("{tag}-acc"));
    let vg = Netns::new(&format!("{tag}-vg"));
    let inet = Netns::new(&format!("{tag}-inet"));
    // IPv6 stays on in the vG: VXLAN over IPv6 reaches its VTEP.
    for ns in [&access, &inet] {
        ns.disable_ipv6();
    }
    veth(&vg, "acc0", &access, "vg");
    access.bridge("br0", &["vg"]);
    // Tags reach the vG in-line, as on a real access network (platform.md).
    access.ethtool_k("vg", &["txvlan", "off", "tx-vlan-stag-hw-insert", "off"]);

    // The vG and the internet.
    veth(&vg, "core0", &inet, "up0");
    vg.addr_add("acc0", &format!("{VG_VTEP}/24"));
    vg.addr_add_nodad("acc0", &format!("{VG_VTEP6}/64"));
    // bpf_fib_lookup for IPv6 wants forwarding on (globally, unlike IPv4).
    vg.exec("sysctl", &["-qw", "net.ipv6.conf.all.forwarding=1"]);
    vg.addr_add("core0", "10.99.0.1/24");
    vg.route_add("default", "10.99.0.2");
    vg.exec("sysctl", &["-qw", "net.ipv4.conf.all.forwarding=1"]);
    inet.addr_add("up0", "10.99.0.2/24");
    inet.addr_add("lo", &format!("{SERVER}/32"));
    inet.addr_add("lo", &format!("{SERVER2}/32"));
    inet.route_add(&format!("{PUBLIC}/32"), "10.99.0.1");
    inet.ethtool_k("up0", &["tx", "off"]);

    let mut homes = Vec::new();
    for spec in HOMES {
        let n = spec.id;
        let home = Netns::new(&format!("{tag}-h{n}"));
        let brg = Netns::new(&format!("{tag}-b{n}"));
        home.disable_ipv6();
        if !matches!(spec.kind, Kind::Vxlan6 { .. }) {
            brg.disable_ipv6();
        }
        veth(&home, "h0", &brg, "lan0");
        home.ip(&[
            "link",
            "set",
            "h0",
            "address",
            &mac_str(host_mac(n)),
            "mtu",
            &spec.mtu.to_string(),
        ]);
        home.addr_add("h0", &format!("{HOST}/24"));
        home.route_add("default", &GW.to_string());
        // The gateway's ARP answer comes from vgd's slow path (tests/gateway.rs); this test
        // runs the fast path alone, so the host knows the gateway.
        home.neigh_permanent(&GW.to_string(), &mac_str(gw_mac(n)), "h0");
        home.ethtool_k("h0", &["tx", "off"]);
        let port = format!("b{n}");
        veth(&brg, "lsl0", &access, &port);
        access.ip(&["link", "set", &port, "master", "br0"]);
        brg.ethtool_k("lsl0", &["tx", "off"]);
        let tagger = match spec.kind {
            Kind::Vxlan { vni, brg_vtep } => {
                vxlan_uplink(&brg, vni, &format!("{brg_vtep}/24"), VG_VTEP);
                None
            }
            Kind::Vxlan6 { vni, brg_vtep } => {
                // A kernel VTEP over IPv6; it checks every nonzero outer checksum.
                vxlan_uplink(&brg, vni, &format!("{brg_vtep}/64"), VG_VTEP6);
                None
            }
            Kind::Vlan { s_vid, c_vid } => {
                brg.bridge("br0", &["lan0", "lsl0"]);
                brg.ethtool_k("lsl0", &["txvlan", "off", "tx-vlan-stag-hw-insert", "off"]);
                let tags = Tags {
                    s_tag: s_vid.map(|s| (0x88a8, s)),
                    c_vid,
                };
                Some(
                    brg.run(|| Tagger::attach("lsl0", tags))
                        .expect("attach the BRG tagger"),
                )
            }
        };
        homes.push(Home {
            spec,
            ns: home,
            _brg: brg,
            _tagger: tagger,
        });
    }

    let pins = PinDir::new(tag);
    let access_mac = vg.mac("acc0");
    let mut fp = vg.run(|| {
        let mut fp = FastPath::load(pins.path()).expect("load the fast path");
        configure(&mut fp, pins.path(), access_mac);
        fp.attach_access("acc0", AttachMode::Native)
            .expect("attach vg_access");
        fp.attach_core("core0", AttachMode::Native)
            .expect("attach vg_core");
        fp
    });
    // Native redirects into a veth are delivered only when the peer runs XDP too.
    access
        .run(|| fp.attach(program_names::PASS, "vg", AttachMode::Native))
        .expect("pass program on the access bridge port");
    inet.run(|| fp.attach(program_names::PASS, "up0", AttachMode::Native))
        .expect("pass program on up0");
    Lab {
        fp,
        homes,
        _access: access,
        _vg: vg,
        inet,
        pins,
    }
}

/// The lab's homes in the maps, written as vgd writes them ([`nerg_tests::rig`]), with
/// vgd's default MSS clamps (VXLAN homes clamp to fit their LSL).
fn configure(fp: &mut FastPath, pins: &std::path::Path, access_mac: [u8; 6]) {
    let config = rig::config();
    let access = if_index("acc0").unwrap();
    let core = if_index("core0").unwrap();
    rig::configure(fp, &config, (access, access_mac), Some(core)).unwrap();
    let homes: Vec<RigHome> = HOMES
        .iter()
        .map(|spec| {
            let lsl = match spec.kind {
                Kind::Vxlan6 { vni, brg_vtep } => format!("vxlan:{vni}@[{brg_vtep}]"),
                Kind::Vxlan { vni, brg_vtep } => format!("vxlan:{vni}@{brg_vtep}"),
                Kind::Vlan {
                    s_vid: Some(s_vid),
                    c_vid,
                } => format!("qinq:{s_vid}.{c_vid}"),
                Kind::Vlan { s_vid: None, c_vid } => format!("vlan:{c_vid}"),
            };
            RigHome::new(spec.id, lsl)
                .host(HOST, host_mac(spec.id))
                .nat(PUBLIC, &[spec.block])
                .default_mss()
        })
        .collect();
    rig::write_homes(pins, &config, access, &homes).unwrap();
}

#[test]
fn udp_and_tcp_cross_the_nat_over_every_lsl_kind() {
    let mut lab = lab("natlsl");
    let homes = lab.homes.len();

    // UDP: the server echoes the source address it saw.
    let server = lab.inet.spawn_thread(move || {
        let sock = UdpSocket::bind((SERVER, 7000)).expect("bind UDP echo");
        sock.set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let mut buf = [0u8; 1500];
        let mut seen = std::collections::BTreeSet::new();
        while seen.len() < homes {
            let (n, from) = sock.recv_from(&mut buf).expect("datagrams from every home");
            let reply = format!("{from}|{}", String::from_utf8_lossy(&buf[..n]));
            sock.send_to(reply.as_bytes(), from).unwrap();
            seen.insert(from);
        }
        seen
    });
    for home in &lab.homes {
        let (from, text) = home.ns.run(|| {
            let sock = UdpSocket::bind((HOST, 5555)).unwrap();
            sock.set_read_timeout(Some(Duration::from_millis(500)))
                .unwrap();
            let mut buf = [0u8; 1500];
            // The server may not be bound yet: resend until it answers (bounded).
            for _ in 0..40 {
                sock.send_to(b"hello", (SERVER, 7000)).unwrap();
                if let Ok((n, from)) = sock.recv_from(&mut buf) {
                    return (from, String::from_utf8_lossy(&buf[..n]).into_owned());
                }
            }
            panic!("no echo through the NAT for home {}", home.spec.id);
        });
        let mapping = lab
            .fp
            .maps()
            .nat_mapping(&NatFwdKey {
                sub: home.spec.id,
                priv_ip: raw(HOST),
                priv_port: 5555u16.to_be(),
                proto: 17,
                _pad: 0,
            })
            .unwrap()
            .expect("a UDP mapping");
        let port = u16::from_be(mapping.pub_port);
        let block = home.spec.block;
        assert!(
            (block..block + BLOCK_SIZE).contains(&port),
            "home {}: port {port}",
            home.spec.id
        );
        assert_eq!(from, SocketAddr::from((SERVER, 7000)));
        assert_eq!(
            text,
            format!("{PUBLIC}:{port}|hello"),
            "home {}",
            home.spec.id
        );
    }
    let seen = server.join().expect("UDP server");
    assert_eq!(
        seen.len(),
        homes,
        "one public transport address per home: {seen:?}"
    );

    // TCP: 2 MiB each way through one connection per home, checked byte for byte.
    for home in &lab.homes {
        let from = traffic::tcp_echo(
            &home.ns,
            &lab.inet,
            SocketAddr::from((SERVER, 8000 + home.spec.id as u16)),
            traffic::pattern(2 << 20, home.spec.id),
        );
        assert_eq!(
            from.ip(),
            PUBLIC,
            "home {}: the server saw the public address",
            home.spec.id
        );
    }

    let s = lab.fp.counters().unwrap().snapshot().unwrap();
    assert!(s.total(Counter::LslVxlan) > 100, "frames came over VXLAN");
    assert!(s.total(Counter::LslDot1q) > 100, "frames came over 802.1Q");
    assert!(s.total(Counter::LslQinq) > 100, "frames came over QinQ");
    assert!(
        s.total(Counter::LslVxlan6) > 100,
        "frames came over VXLAN/IPv6"
    );
    assert!(
        s.total(Counter::NatDownstream) > 300,
        "downstream frames went through XDP"
    );
    for home in &lab.homes {
        if let Some(tagger) = &home._tagger {
            let c = tagger.counters().unwrap();
            let get = |k| c.iter().find(|(n, _)| *n == k).map_or(0, |(_, v)| *v);
            assert!(
                get(TagCounter::Tagged) > 100,
                "home {}: tagged {c:?}",
                home.spec.id
            );
            assert!(
                get(TagCounter::Untagged) > 100,
                "home {}: untagged {c:?}",
                home.spec.id
            );
            assert_eq!(get(TagCounter::Failed), 0);
        }
    }
}

impl Lab {
    /// The public transport address of home `id`'s UDP mapping for private `port`.
    fn udp_public_port(&mut self, id: SubscriberId, port: u16) -> u16 {
        let m = self
            .fp
            .maps()
            .nat_mapping(&NatFwdKey {
                sub: id,
                priv_ip: raw(HOST),
                priv_port: port.to_be(),
                proto: 17,
                _pad: 0,
            })
            .unwrap()
            .unwrap_or_else(|| panic!("home {id}: no mapping for UDP {port}"));
        u16::from_be(m.pub_port)
    }
}

#[test]
fn hairpinning_and_port_forwards_with_real_stacks() {
    let mut lab = lab("nathair");
    let [vxlan, dot1q, qinq] = [0, 1, 2];

    // UDP: home 2 (802.1Q) opens a mapping towards the internet; home 1 (VXLAN) reaches it
    // through the public address and gets an answer from it.
    let (h1, h2) = (&lab.homes[vxlan], &lab.homes[dot1q]);
    let sock2 = h2.ns.run(|| {
        let s = UdpSocket::bind((HOST, 6000)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.send_to(b"open", (SERVER, 7100)).unwrap();
        s
    });
    let (id1, id2) = (h1.spec.id, h2.spec.id);
    let p2 = lab.udp_public_port(id2, 6000);
    let (h1, h2) = (&lab.homes[vxlan], &lab.homes[dot1q]);
    let sock1 = h1.ns.run(|| {
        let s = UdpSocket::bind((HOST, 6001)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.send_to(b"hairpin", (PUBLIC, p2)).unwrap();
        s
    });
    let mut buf = [0u8; 64];
    let (n, from1) = h2
        .ns
        .run(|| sock2.recv_from(&mut buf))
        .expect("home 2 hears home 1");
    assert_eq!(&buf[..n], b"hairpin");
    assert_eq!(from1.ip(), PUBLIC, "home 2 sees home 1's external address");
    h2.ns.run(|| sock2.send_to(b"back", from1)).unwrap();
    let (n, from2) = h1
        .ns
        .run(|| sock1.recv_from(&mut buf))
        .expect("home 1 hears back");
    assert_eq!(&buf[..n], b"back");
    assert_eq!(
        from2,
        SocketAddr::from((PUBLIC, p2)),
        "from home 2's mapping"
    );
    let p1 = lab.udp_public_port(id1, 6001);
    assert_eq!(from1.port(), p1);

    // TCP: a port forward to a server in home 3 (QinQ), from the internet and, hairpinned,
    // from home 1.
    let h3 = &lab.homes[qinq];
    let public = SocketAddr::from((PUBLIC, h3.spec.block + 100));
    nerg_tests::nat::port_forward(
        lab.pins.path(),
        h3.spec.id,
        (PUBLIC, public.port()),
        (HOST, 8080),
        6,
    );
    let bind = SocketAddr::from((HOST, 8080));
    let from = traffic::tcp_echo_via(
        &lab.inet,
        &h3.ns,
        bind,
        public,
        traffic::pattern(1 << 20, 7),
    );
    // The internet namespace reaches PUBLIC from its link address.
    assert_eq!(
        from.ip(),
        Ipv4Addr::new(10, 99, 0, 2),
        "the home server sees the internet client, untranslated"
    );
    let from = traffic::tcp_echo_via(
        &lab.homes[vxlan].ns,
        &lab.homes[qinq].ns,
        bind,
        public,
        traffic::pattern(1 << 20, 8),
    );
    assert_eq!(
        from.ip(),
        PUBLIC,
        "hairpinned: home 3 sees home 1's external address"
    );
    let s = lab.fp.counters().unwrap().snapshot().unwrap();
    assert!(s.total(Counter::NatHairpin) > 100, "hairpinned in XDP");
    assert!(
        s.total(Counter::MssClamped) >= 2,
        "the VXLAN home's SYNs were clamped"
    );
}

fn stun(home: &Netns) -> String {
    nerg_tests::topology::stun(home).unwrap_or_else(|out| panic!("no verdict from stun:\n{out}"))
}

#[test]
fn stun_sees_endpoint_independent_mapping_through_every_lsl_kind() {
    let mut lab = lab("natstun");
    let mut stund = lab.inet.spawn(
        "stund",
        lab.inet
            .command("stund")
            .args(["-h", &SERVER.to_string(), "-a", &SERVER2.to_string()]),
    );
    let inet = &lab.inet;
    nerg_tests::wait_until("stund to listen", Duration::from_secs(10), || {
        let out = inet.exec("ss", &["-Hlun", "sport = :3478"]);
        !out.stdout.is_empty()
    });
    for home in &lab.homes {
        let verdict = stun(&home.ns);
        assert!(
            verdict.contains("Independent Mapping") && verdict.contains("Independent Filter"),
            "home {}: {verdict}",
            home.spec.id
        );
        assert!(
            verdict.contains("will hairpin"),
            "home {}: {verdict}",
            home.spec.id
        );
    }
    // Address-and-port-dependent filtering, configured for one home.
    let id = lab.homes[1].spec.id;
    let mut maps = lab.fp.maps();
    let mut rec = maps.subscriber(id).unwrap();
    rec.flags |= sub_flags::FILTER_APDF;
    maps.set_subscriber(id, &rec).unwrap();
    let verdict = stun(&lab.homes[1].ns);
    assert!(
        verdict.contains("Independent Mapping") && verdict.contains("Port Dependent Filter"),
        "APDF home: {verdict}"
    );
    stund.assert_running();
}
