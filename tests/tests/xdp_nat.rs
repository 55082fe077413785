//! NAT in the vG's XDP programs under BPF_PROG_TEST_RUN, with exact expected output bytes.
//!
//! The programs run inside a test namespace whose routes and (permanent) neighbours make
//! `bpf_fib_lookup` deterministic: a default route via 10.99.0.2 on `core0`, the BRG's VTEP
//! 10.0.0.2 on `acc0`, a blackhole and a next hop without a neighbour entry. Frames are built
//! with smoltcp and wrapped by our own `lsl` codecs; every expected frame is built the same
//! way with complete checksums, so a byte-exact match proves the incremental updates.

use std::net::{IpAddr, Ipv4Addr};

use aya::maps::{MapData, RingBuf};
use lsl::{Encap, Vid, Vni, VxlanEncap, smoltcp::wire::EthernetAddress, wire::vlan::Tpid};
use nerg_abi::{
    Config, Counter, DropReason, Host, HostKey, NatFwdKey, NatRev, NatRevKey, PuntReason,
    Subscriber, SubscriberId, VlanLslKey, VxlanLslKey, config_flags, host_flags, lsl_kind,
    program_names, stag_tpid, sub_flags, tcp_seen,
};
use nerg_tests::{
    Netns, PinDir,
    frames::{self, TcpControl},
    netns::veth,
    require_root,
};
use vg::fastpath::{
    FastPath, if_index,
    test_run::{XdpVerdict, run_xdp},
};

const TEST_IFINDEX: u32 = 1;
const VG_VTEP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const BRG_VTEP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
const BRG_VTEP_MAC: [u8; 6] = [0x02, 0xb0, 0, 0, 0, 0x02];
const NEXT_HOP: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 2);
const NEXT_HOP_MAC: [u8; 6] = [0x02, 0x99, 0, 0, 0, 0x02];
const GW: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 1);
const HOST: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 10);
const HOST_MAC: [u8; 6] = [0x02, 0x11, 0, 0, 0, 0x10];
const INTERNET: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 5);
const INTERNET2: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 6);
const BLACKHOLE: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 99);
const NO_NEIGH: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 77);
const PUBLIC1: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);
const PUBLIC2: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 2);
const BLOCK_SIZE: u16 = 512;
/// The NAT flow-hash seed (vgd picks one at random).
const SEED: u32 = 0x5eed_1234;

fn raw(ip: Ipv4Addr) -> u32 {
    u32::from_ne_bytes(ip.octets())
}

fn gw_mac(sub: SubscriberId) -> [u8; 6] {
    [0x02, 0x4e, 0x47, 0, 0, sub as u8]
}

/// One home of the fixture.
#[derive(Clone, Copy)]
struct Home {
    name: &'static str,
    id: SubscriberId,
    lsl: u8,
    s_vid: u16,
    c_vid: u16,
    vni: u32,
    public: Ipv4Addr,
    block: u16,
}

const HOMES: [Home; 3] = [
    Home {
        name: "802.1Q",
        id: 1,
        lsl: lsl_kind::DOT1Q,
        s_vid: 0,
        c_vid: 100,
        vni: 0,
        public: PUBLIC1,
        block: 39936, // 39936..=40447 holds port 40000: preserved
    },
    Home {
        name: "QinQ",
        id: 2,
        lsl: lsl_kind::QINQ,
        s_vid: 10,
        c_vid: 100,
        vni: 0,
        public: PUBLIC1, // paired pooling: same address, another block
        block: 40448,
    },
    Home {
        name: "VXLAN",
        id: 3,
        lsl: lsl_kind::VXLAN4,
        s_vid: 0,
        c_vid: 0,
        vni: 5001,
        public: PUBLIC2,
        block: 39936,
    },
];
/// A home without a public address.
const NO_NAT_HOME: SubscriberId = 4;
/// A home whose only block is full.
const FULL_HOME: SubscriberId = 5;

impl Home {
    fn encap(&self, access_mac: [u8; 6]) -> Encap {
        let vid = |v| Vid::new(v).unwrap();
        match self.lsl {
            lsl_kind::DOT1Q => Encap::Dot1q {
                c_vid: vid(self.c_vid),
            },
            lsl_kind::QINQ => Encap::QinQ {
                s_tpid: Tpid::STag,
                s_vid: vid(self.s_vid),
                c_vid: vid(self.c_vid),
            },
            _ => Encap::Vxlan(VxlanEncap::new(
                Vni::new(self.vni).unwrap(),
                IpAddr::V4(BRG_VTEP),
                IpAddr::V4(VG_VTEP),
                EthernetAddress(BRG_VTEP_MAC),
                EthernetAddress(access_mac),
            )),
        }
    }

    /// The encapsulation downstream frames to this home carry, given the VXLAN source port
    /// the program chose.
    fn down_encap(&self, access_mac: [u8; 6], vxlan_sport: u16) -> Encap {
        match self.encap(access_mac) {
            Encap::Vxlan(_) => {
                let mut e = VxlanEncap::new(
                    Vni::new(self.vni).unwrap(),
                    IpAddr::V4(VG_VTEP),
                    IpAddr::V4(BRG_VTEP),
                    EthernetAddress(access_mac),
                    EthernetAddress(BRG_VTEP_MAC),
                );
                e.src_port = Some(vxlan_sport);
                e.udp_checksum = false;
                Encap::Vxlan(e)
            }
            other => other,
        }
    }

    fn in_block(&self, port: u16) -> bool {
        (self.block..self.block + BLOCK_SIZE).contains(&port)
    }
}

/// The namespace and the loaded fast path.
struct Rig {
    // Drop order: fast path, namespaces, pins.
    fp: FastPath,
    ring: RingBuf<MapData>,
    vg: Netns,
    _brg: Netns,
    _inet: Netns,
    _pins: PinDir,
    access_mac: [u8; 6],
    core_mac: [u8; 6],
}

fn rig(tag: &str) -> Rig {
    require_root();
    let vg = Netns::new(&format!("{tag}-vg"));
    let brg = Netns::new(&format!("{tag}-brg"));
    let inet = Netns::new(&format!("{tag}-inet"));
    veth(&vg, "acc0", &brg, "lsl0");
    veth(&vg, "core0", &inet, "up0");
    vg.addr_add("acc0", &format!("{VG_VTEP}/24"));
    vg.addr_add("core0", "10.99.0.1/24");
    vg.ip(&[
        "neigh",
        "replace",
        &BRG_VTEP.to_string(),
        "lladdr",
        "02:b0:00:00:00:02",
        "dev",
        "acc0",
        "nud",
        "permanent",
    ]);
    vg.ip(&[
        "neigh",
        "replace",
        &NEXT_HOP.to_string(),
        "lladdr",
        "02:99:00:00:00:02",
        "dev",
        "core0",
        "nud",
        "permanent",
    ]);
    vg.route_add("default", &NEXT_HOP.to_string());
    vg.ip(&["route", "add", "blackhole", &format!("{BLACKHOLE}/32")]);
    vg.ip(&[
        "route",
        "add",
        &format!("{NO_NEIGH}/32"),
        "via",
        "10.99.0.3",
    ]);
    vg.exec("sysctl", &["-qw", "net.ipv4.conf.all.forwarding=1"]);
    let access_mac = vg.mac("acc0");
    let core_mac = vg.mac("core0");
    let pins = PinDir::new(tag);
    let (fp, ring) = vg.run(|| {
        let mut fp = FastPath::load(pins.path()).expect("the vG object loads and verifies");
        configure(&mut fp, access_mac);
        let ring = fp.take_punt_ring().unwrap();
        (fp, ring)
    });
    Rig {
        fp,
        ring,
        vg,
        _brg: brg,
        _inet: inet,
        _pins: pins,
        access_mac,
        core_mac,
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
        nat_hash_seed: SEED,
        access_ifindex: access,
        access_mac,
        ..Config::default()
    })
    .unwrap();
    maps.set_egress(access).unwrap();
    maps.set_egress(core).unwrap();
    for ip in [PUBLIC1, PUBLIC2] {
        maps.insert_public_ip(raw(ip)).unwrap();
    }
    let mut homes: Vec<(Home, Subscriber)> = HOMES
        .iter()
        .map(|h| {
            (
                *h,
                Subscriber {
                    flags: sub_flags::ACTIVE,
                    lsl_kind: h.lsl,
                    s_tpid: if h.lsl == lsl_kind::QINQ { 0x88a8 } else { 0 },
                    s_vid: h.s_vid,
                    c_vid: h.c_vid,
                    vni: h.vni,
                    remote_vtep: if h.vni != 0 { raw(BRG_VTEP) } else { 0 },
                    gw_mac: gw_mac(h.id),
                    gw_ip: raw(GW),
                    public_ip: raw(h.public),
                    block_count: 1,
                    blocks: nerg_abi::blocks_from(&[h.block]),
                    ..Subscriber::default()
                },
            )
        })
        .collect();
    let mut no_nat = homes[0];
    no_nat.0.id = NO_NAT_HOME;
    no_nat.0.c_vid = 104;
    no_nat.1.c_vid = 104;
    no_nat.1.public_ip = 0;
    no_nat.1.block_count = 0;
    let mut full = homes[0];
    full.0.id = FULL_HOME;
    full.0.c_vid = 105;
    full.0.block = 60000;
    full.1.c_vid = 105;
    full.1.public_ip = raw(PUBLIC2);
    full.1.blocks = nerg_abi::blocks_from(&[60000]);
    homes.push(no_nat);
    homes.push(full);
    for (h, rec) in &homes {
        maps.set_subscriber(h.id, rec).unwrap();
        if h.vni != 0 {
            maps.insert_vxlan_lsl(
                VxlanLslKey {
                    vni: h.vni,
                    remote: raw(BRG_VTEP),
                },
                h.id,
            )
            .unwrap();
        } else {
            maps.insert_vlan_lsl(
                VlanLslKey {
                    ifindex: TEST_IFINDEX,
                    s_vid: h.s_vid,
                    c_vid: h.c_vid,
                },
                h.id,
            )
            .unwrap();
        }
        maps.insert_host(
            HostKey {
                sub: h.id,
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
    // Every port of the full home's block is taken by someone else already.
    for port in 60000..60000 + BLOCK_SIZE {
        maps.insert_nat_reverse(
            NatRevKey {
                pub_ip: raw(PUBLIC2),
                pub_port: port.to_be(),
                proto: 17,
                _pad: 0,
            },
            NatRev {
                sub: 99,
                ..NatRev::default()
            },
        )
        .unwrap();
    }
}

impl Rig {
    /// Runs `prog` on `input` inside the namespace.
    fn run(&mut self, prog: &'static str, input: &[u8]) -> (XdpVerdict, Vec<u8>) {
        let fp = &mut self.fp;
        let out = self.vg.run(|| {
            let p = fp.program(prog).unwrap();
            run_xdp(p, input, 1).expect("BPF_PROG_TEST_RUN")
        });
        (out.verdict, out.output)
    }

    fn up(&mut self, input: &[u8]) -> (XdpVerdict, Vec<u8>) {
        self.run(program_names::ACCESS, input)
    }

    fn down(&mut self, input: &[u8]) -> (XdpVerdict, Vec<u8>) {
        self.run(program_names::CORE, input)
    }

    fn mapping(&mut self, sub: SubscriberId, port: u16, proto: u8) -> (Ipv4Addr, u16, u8) {
        let m = self
            .fp
            .maps()
            .nat_mapping(&NatFwdKey {
                sub,
                priv_ip: raw(HOST),
                priv_port: port.to_be(),
                proto,
                _pad: 0,
            })
            .unwrap()
            .unwrap_or_else(|| panic!("no mapping for home {sub} port {port} proto {proto}"));
        (
            Ipv4Addr::from(m.pub_ip.to_ne_bytes()),
            u16::from_be(m.pub_port),
            m.tcp_seen,
        )
    }

    fn counter(&self, c: Counter) -> u64 {
        self.fp.counters().unwrap().snapshot().unwrap().total(c)
    }

    fn drops(&self, r: DropReason) -> u64 {
        self.fp.counters().unwrap().snapshot().unwrap().drops(r)
    }

    fn punts(&mut self) -> Vec<u16> {
        let mut reasons = Vec::new();
        while let Some(item) = self.ring.next() {
            let p = vg::slowpath::parse_record(&item).expect("a well-formed punt record");
            reasons.push(p.header.reason);
        }
        reasons
    }

    /// A frame as it leaves towards the internet: from core0 to the next hop.
    fn upstream_out(&self, inner: Vec<u8>) -> Vec<u8> {
        let mut f = inner;
        f[0..6].copy_from_slice(&NEXT_HOP_MAC);
        f[6..12].copy_from_slice(&self.core_mac);
        f
    }
}

fn udp_up(src_port: u16, dst: Ipv4Addr, dport: u16) -> Vec<u8> {
    frames::udp(HOST_MAC, [0; 6], (HOST, src_port), (dst, dport), b"ping")
}

#[test]
fn udp_tcp_and_icmp_round_trip_through_every_lsl_kind() {
    let mut rig = rig("natrt");
    let created0 = rig.counter(Counter::NatCreated);
    for home in HOMES {
        let name = home.name;
        let gw = gw_mac(home.id);
        let up_encap = home.encap(rig.access_mac);
        let wrap = |inner: Vec<u8>| up_encap.encapsulate(&inner).unwrap();

        // UDP out: a new mapping in the home's block (port 40000 kept where the block has it).
        let (v, out) = rig.up(&wrap(udp_up(40000, INTERNET, 53)));
        assert_eq!(v, XdpVerdict::Redirect, "{name}: UDP upstream");
        let (public, port, _) = rig.mapping(home.id, 40000, 17);
        assert_eq!(public, home.public, "{name}: paired pooling");
        assert!(
            home.in_block(port),
            "{name}: port {port} outside the home's block"
        );
        if home.in_block(40000) {
            assert_eq!(port, 40000, "{name}: port preservation");
        }
        // The XDP program picked exactly the port the control plane's reference picks.
        let reference = vg::nat::select::select_port(
            &vg::nat::select::SubscriberPorts::new(home.public, BLOCK_SIZE, &[home.block]).unwrap(),
            40000,
            nerg_abi::nat_flow_hash(SEED, home.id, 17, raw(HOST), 40000u16.to_be()),
            |_| true,
        )
        .unwrap();
        assert_eq!(
            port, reference.port,
            "{name}: the probe sequence matches vg::nat::select"
        );
        let want = rig.upstream_out(frames::udp_ttl(
            HOST_MAC,
            [0; 6],
            (public, port),
            (INTERNET, 53),
            b"ping",
            63,
        ));
        assert_eq!(out, want, "{name}: translated UDP upstream");

        // The same flow to another destination keeps its mapping (endpoint-independent).
        let (v, out) = rig.up(&wrap(udp_up(40000, INTERNET2, 123)));
        assert_eq!(v, XdpVerdict::Redirect);
        let want = rig.upstream_out(frames::udp_ttl(
            HOST_MAC,
            [0; 6],
            (public, port),
            (INTERNET2, 123),
            b"ping",
            63,
        ));
        assert_eq!(out, want, "{name}: EIM");

        // UDP back: translated, encapsulated for the home, redirected to the access side.
        let reply = frames::udp(
            NEXT_HOP_MAC,
            rig.core_mac,
            (INTERNET, 53),
            (public, port),
            b"pong",
        );
        let (v, out) = rig.down(&reply);
        assert_eq!(v, XdpVerdict::Redirect, "{name}: UDP downstream");
        let inner = frames::udp_ttl(gw, HOST_MAC, (INTERNET, 53), (HOST, 40000), b"pong", 63);
        let sport = u16::from_be_bytes([out[34], out[35]]);
        if home.lsl == lsl_kind::VXLAN4 {
            assert!(sport >= 49152, "{name}: VXLAN source port {sport}");
        }
        let want = home
            .down_encap(rig.access_mac, sport)
            .encapsulate(&inner)
            .unwrap();
        assert_eq!(out, want, "{name}: translated UDP downstream");

        // TCP: SYN out, SYN-ACK back.
        let syn = frames::tcp(
            HOST_MAC,
            [0; 6],
            (HOST, 50000),
            (INTERNET, 443),
            TcpControl::Syn,
            1000,
            None,
            &[],
            64,
        );
        let (v, out) = rig.up(&wrap(syn));
        assert_eq!(v, XdpVerdict::Redirect, "{name}: SYN");
        let (public, tport, seen) = rig.mapping(home.id, 50000, 6);
        assert!(home.in_block(tport), "{name}: TCP port {tport}");
        assert_eq!(seen & tcp_seen::SYN_OUT, tcp_seen::SYN_OUT);
        let want = rig.upstream_out(frames::tcp(
            HOST_MAC,
            [0; 6],
            (public, tport),
            (INTERNET, 443),
            TcpControl::Syn,
            1000,
            None,
            &[],
            63,
        ));
        assert_eq!(out, want, "{name}: translated SYN");
        let synack = frames::tcp(
            NEXT_HOP_MAC,
            rig.core_mac,
            (INTERNET, 443),
            (public, tport),
            TcpControl::Syn,
            5000,
            Some(1001),
            &[],
            64,
        );
        let (v, out) = rig.down(&synack);
        assert_eq!(v, XdpVerdict::Redirect, "{name}: SYN-ACK");
        let inner = frames::tcp(
            gw,
            HOST_MAC,
            (INTERNET, 443),
            (HOST, 50000),
            TcpControl::Syn,
            5000,
            Some(1001),
            &[],
            63,
        );
        let sport = u16::from_be_bytes([out[34], out[35]]);
        let want = home
            .down_encap(rig.access_mac, sport)
            .encapsulate(&inner)
            .unwrap();
        assert_eq!(out, want, "{name}: translated SYN-ACK");
        let ack = frames::tcp(
            HOST_MAC,
            [0; 6],
            (HOST, 50000),
            (INTERNET, 443),
            TcpControl::None,
            1001,
            Some(5001),
            b"GET",
            64,
        );
        assert_eq!(rig.up(&wrap(ack)).0, XdpVerdict::Redirect);
        let (_, _, seen) = rig.mapping(home.id, 50000, 6);
        assert_eq!(
            seen & tcp_seen::ESTABLISHED,
            tcp_seen::ESTABLISHED,
            "{name}: established"
        );

        // ICMP echo: the identifier is translated like a port.
        let echo = frames::icmp_echo_msg(HOST_MAC, [0; 6], HOST, INTERNET, 7, 1, false, 64);
        let (v, out) = rig.up(&wrap(echo));
        assert_eq!(v, XdpVerdict::Redirect, "{name}: echo");
        let (public, id, _) = rig.mapping(home.id, 7, 1);
        assert!(home.in_block(id), "{name}: ICMP id {id}");
        let want = rig.upstream_out(frames::icmp_echo_msg(
            HOST_MAC, [0; 6], public, INTERNET, id, 1, false, 63,
        ));
        assert_eq!(out, want, "{name}: translated echo");
        let echo_reply = frames::icmp_echo_msg(
            NEXT_HOP_MAC,
            rig.core_mac,
            INTERNET,
            public,
            id,
            1,
            true,
            64,
        );
        let (v, out) = rig.down(&echo_reply);
        assert_eq!(v, XdpVerdict::Redirect, "{name}: echo reply");
        let inner = frames::icmp_echo_msg(gw, HOST_MAC, INTERNET, HOST, 7, 1, true, 63);
        let sport = u16::from_be_bytes([out[34], out[35]]);
        let want = home
            .down_encap(rig.access_mac, sport)
            .encapsulate(&inner)
            .unwrap();
        assert_eq!(out, want, "{name}: translated echo reply");

        // TTL 1 from the home: the gateway answers (slow path), nothing is forwarded.
        let ttl1 = frames::udp_ttl(HOST_MAC, [0; 6], (HOST, 40000), (INTERNET, 53), b"x", 1);
        let (v, out) = rig.up(&wrap(ttl1.clone()));
        assert_eq!(v, XdpVerdict::Drop, "{name}: TTL 1");
        assert_eq!(out, wrap(ttl1));
        assert_eq!(
            rig.punts(),
            vec![PuntReason::TtlExceeded.index() as u16],
            "{name}"
        );
    }
    assert_eq!(
        rig.counter(Counter::NatCreated) - created0,
        3 * 3,
        "three mappings per home"
    );
}

#[test]
fn downstream_edge_cases() {
    let mut rig = rig("natdown");
    let home = HOMES[0];
    let wrap = |inner: Vec<u8>| home.encap([0; 6]).encapsulate(&inner).unwrap();
    assert_eq!(
        rig.up(&wrap(udp_up(40000, INTERNET, 53))).0,
        XdpVerdict::Redirect
    );

    let to = |dst: Ipv4Addr, port: u16, ttl: u8| {
        frames::udp_ttl(NEXT_HOP_MAC, [0; 6], (INTERNET, 53), (dst, port), b"x", ttl)
    };
    let before = rig.drops(DropReason::NoMapping);
    let (v, _) = rig.down(&to(PUBLIC1, 40001, 64));
    assert_eq!(v, XdpVerdict::Drop, "unsolicited: no mapping");
    assert_eq!(rig.drops(DropReason::NoMapping) - before, 1);

    let other = to(Ipv4Addr::new(10, 99, 0, 1), 40000, 64);
    let (v, out) = rig.down(&other);
    assert_eq!(v, XdpVerdict::Pass, "not a public address: the stack's");
    assert_eq!(out, other);

    let before = rig.drops(DropReason::TtlExpired);
    assert_eq!(rig.down(&to(PUBLIC1, 40000, 1)).0, XdpVerdict::Drop);
    assert_eq!(rig.drops(DropReason::TtlExpired) - before, 1);

    let mut frag = to(PUBLIC1, 40000, 64);
    frag[14 + 6] |= 0x20; // MF
    let before = rig.drops(DropReason::Fragment);
    assert_eq!(rig.down(&frag).0, XdpVerdict::Drop);
    assert_eq!(rig.drops(DropReason::Fragment) - before, 1);
}

#[test]
fn upstream_edge_cases() {
    let mut rig = rig("natup");
    let home = HOMES[0];
    let wrap = |inner: Vec<u8>| home.encap([0; 6]).encapsulate(&inner).unwrap();

    // No route: dropped, counted.
    let before = rig.drops(DropReason::NoRoute);
    assert_eq!(
        rig.up(&wrap(udp_up(40000, BLACKHOLE, 53))).0,
        XdpVerdict::Drop
    );
    assert_eq!(rig.drops(DropReason::NoRoute) - before, 1);

    // Next hop without a neighbour entry: translated, decapsulated, handed to the stack
    // addressed to the access interface, which resolves the neighbour.
    let (v, out) = rig.up(&wrap(udp_up(40001, NO_NEIGH, 53)));
    assert_eq!(v, XdpVerdict::Pass, "NO_NEIGH goes to the stack");
    let (public, port, _) = rig.mapping(home.id, 40001, 17);
    let mut want = frames::udp_ttl(
        HOST_MAC,
        [0; 6],
        (public, port),
        (NO_NEIGH, 53),
        b"ping",
        63,
    );
    want[0..6].copy_from_slice(&rig.access_mac);
    assert_eq!(out, want);
    assert_eq!(rig.counter(Counter::FibNoNeigh), 1);

    // A home without a public address.
    let no_nat = Encap::Dot1q {
        c_vid: Vid::new(104).unwrap(),
    };
    let before = rig.drops(DropReason::NoPublicAddress);
    assert_eq!(
        rig.up(&no_nat.encapsulate(&udp_up(1, INTERNET, 53)).unwrap())
            .0,
        XdpVerdict::Drop
    );
    assert_eq!(rig.drops(DropReason::NoPublicAddress) - before, 1);

    // A home whose block is full: no port is stolen, the packet is dropped and counted.
    let full = Encap::Dot1q {
        c_vid: Vid::new(105).unwrap(),
    };
    let before = rig.drops(DropReason::NatPortsExhausted);
    assert_eq!(
        rig.up(&full.encapsulate(&udp_up(60001, INTERNET, 53)).unwrap())
            .0,
        XdpVerdict::Drop
    );
    assert_eq!(rig.drops(DropReason::NatPortsExhausted) - before, 1);
    let taken = rig
        .fp
        .maps()
        .nat_reverse(&NatRevKey {
            pub_ip: raw(PUBLIC2),
            pub_port: 60001u16.to_be(),
            proto: 17,
            _pad: 0,
        })
        .unwrap()
        .unwrap();
    assert_eq!(taken.sub, 99, "the other owner keeps its port");

    // ICMP other than echo is not translated yet; fragments neither.
    let mut unreach = frames::icmp_echo_msg(HOST_MAC, [0; 6], HOST, INTERNET, 7, 1, false, 64);
    unreach[34] = 3; // destination unreachable
    let before = rig.drops(DropReason::IcmpUnsupported);
    assert_eq!(rig.up(&wrap(unreach)).0, XdpVerdict::Drop);
    assert_eq!(rig.drops(DropReason::IcmpUnsupported) - before, 1);
    let mut frag = udp_up(40000, INTERNET, 53);
    frag[14 + 6] |= 0x20;
    let before = rig.drops(DropReason::Fragment);
    assert_eq!(rig.up(&wrap(frag)).0, XdpVerdict::Drop);
    assert_eq!(rig.drops(DropReason::Fragment) - before, 1);
}

#[test]
fn idle_mappings_expire_and_their_ports_are_held_back() {
    use vg::fastpath::expiry::{Timers, monotonic_ns};
    let mut rig = rig("natexp");
    let home = HOMES[0];
    let wrap = |inner: Vec<u8>| home.encap([0; 6]).encapsulate(&inner).unwrap();
    assert_eq!(
        rig.up(&wrap(udp_up(40000, INTERNET, 53))).0,
        XdpVerdict::Redirect
    );
    let syn = frames::tcp(
        HOST_MAC,
        [0; 6],
        (HOST, 50000),
        (INTERNET, 443),
        TcpControl::Syn,
        1,
        None,
        &[],
        64,
    );
    assert_eq!(rig.up(&wrap(syn)).0, XdpVerdict::Redirect);
    let timers = Timers::default();
    let now = monotonic_ns();

    // Within the timers: nothing expires.
    let r = rig
        .fp
        .maps()
        .sweep_nat(&timers, now + 200 * 1_000_000_000)
        .unwrap();
    assert_eq!((r.mappings, r.expired), (2, 0));

    // 250 s later the half-open TCP mapping is gone (transitory 240 s), the UDP one stays.
    let r = rig
        .fp
        .maps()
        .sweep_nat(&timers, now + 250 * 1_000_000_000)
        .unwrap();
    assert_eq!(r.expired, 1, "{r:?}");
    assert!(
        rig.fp
            .maps()
            .nat_mapping(&NatFwdKey {
                sub: home.id,
                priv_ip: raw(HOST),
                priv_port: 50000u16.to_be(),
                proto: 6,
                _pad: 0
            })
            .unwrap()
            .is_none()
    );

    // 310 s later UDP (300 s) goes too; its public port is held back and translates nothing.
    let t_udp = now + 310 * 1_000_000_000;
    let r = rig.fp.maps().sweep_nat(&timers, t_udp).unwrap();
    assert_eq!(r.expired, 1, "{r:?}");
    let key = NatRevKey {
        pub_ip: raw(PUBLIC1),
        pub_port: 40000u16.to_be(),
        proto: 17,
        _pad: 0,
    };
    let held = rig.fp.maps().nat_reverse(&key).unwrap().expect("tombstone");
    assert_eq!(
        held.flags & nerg_abi::nat_flags::TOMBSTONE,
        nerg_abi::nat_flags::TOMBSTONE
    );
    let reply = frames::udp(
        NEXT_HOP_MAC,
        [0; 6],
        (INTERNET, 53),
        (PUBLIC1, 40000),
        b"late",
    );
    let before = rig.drops(DropReason::NoMapping);
    assert_eq!(
        rig.down(&reply).0,
        XdpVerdict::Drop,
        "a held-back port translates nothing"
    );
    assert_eq!(rig.drops(DropReason::NoMapping) - before, 1);

    // After the hold-down the port is free again.
    let r = rig
        .fp
        .maps()
        .sweep_nat(&timers, t_udp + 121 * 1_000_000_000)
        .unwrap();
    assert!(r.released >= 2, "{r:?}");
    assert!(rig.fp.maps().nat_reverse(&key).unwrap().is_none());
}
