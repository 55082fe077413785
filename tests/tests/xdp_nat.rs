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
use nerg_tests::addrs::{
    BLOCK_SIZE, BRG_VTEP, BRG_VTEP_MAC, BRG_VTEP6, GW, HOST, HOST_MAC, INTERNET, NEXT_HOP,
    NEXT_HOP_MAC, SEED, VG_VTEP, VG_VTEP6,
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
const INTERNET2: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 6);
const BLACKHOLE: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 99);
const NO_NEIGH: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 77);
const PUBLIC1: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);
const PUBLIC2: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 2);

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

const HOMES: [Home; 4] = [
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
    Home {
        name: "VXLAN/IPv6",
        id: 6,
        lsl: lsl_kind::VXLAN6,
        s_vid: 0,
        c_vid: 0,
        vni: 6001,
        public: PUBLIC2,
        block: 40448,
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
                self.brg_vtep(),
                self.vg_vtep(),
                EthernetAddress(BRG_VTEP_MAC),
                EthernetAddress(access_mac),
            )),
        }
    }

    fn brg_vtep(&self) -> IpAddr {
        if self.lsl == lsl_kind::VXLAN6 {
            IpAddr::V6(BRG_VTEP6)
        } else {
            IpAddr::V4(BRG_VTEP)
        }
    }

    fn vg_vtep(&self) -> IpAddr {
        if self.lsl == lsl_kind::VXLAN6 {
            IpAddr::V6(VG_VTEP6)
        } else {
            IpAddr::V4(VG_VTEP)
        }
    }

    /// The outer UDP source port of a downstream VXLAN frame (0 for tagged homes).
    fn vxlan_sport(&self, out: &[u8]) -> u16 {
        match self.lsl {
            lsl_kind::VXLAN4 => u16::from_be_bytes([out[34], out[35]]),
            lsl_kind::VXLAN6 => u16::from_be_bytes([out[54], out[55]]),
            _ => 0,
        }
    }

    /// The encapsulation downstream frames to this home carry, given the VXLAN source port
    /// the program chose.
    fn down_encap(&self, access_mac: [u8; 6], vxlan_sport: u16) -> Encap {
        match self.encap(access_mac) {
            Encap::Vxlan(_) => {
                let mut e = VxlanEncap::new(
                    Vni::new(self.vni).unwrap(),
                    self.vg_vtep(),
                    self.brg_vtep(),
                    EthernetAddress(access_mac),
                    EthernetAddress(BRG_VTEP_MAC),
                );
                e.src_port = Some(vxlan_sport);
                // Over IPv4 the vG sends no outer UDP checksum (RFC 7348 allows it); over
                // IPv6 it must, and the expected frame carries lsl's own computation.
                e.udp_checksum = self.lsl == lsl_kind::VXLAN6;
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
    pins: PinDir,
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
    vg.addr_add_nodad("acc0", &format!("{VG_VTEP6}/64"));
    vg.neigh_permanent(&BRG_VTEP6.to_string(), "02:b0:00:00:00:02", "acc0");
    // bpf_fib_lookup for IPv6 wants forwarding on (globally, unlike IPv4).
    vg.exec("sysctl", &["-qw", "net.ipv6.conf.all.forwarding=1"]);
    vg.addr_add("core0", "10.99.0.1/24");
    vg.neigh_permanent(&BRG_VTEP.to_string(), "02:b0:00:00:00:02", "acc0");
    vg.neigh_permanent(&NEXT_HOP.to_string(), "02:99:00:00:00:02", "core0");
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
        pins,
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
        vtep_ipv6: VG_VTEP6.octets(),
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
                    remote_vtep: if h.lsl == lsl_kind::VXLAN4 {
                        raw(BRG_VTEP)
                    } else {
                        0
                    },
                    remote_vtep6: if h.lsl == lsl_kind::VXLAN6 {
                        BRG_VTEP6.octets()
                    } else {
                        [0; 16]
                    },
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
        if h.lsl == lsl_kind::VXLAN6 {
            maps.insert_vxlan6_lsl(
                nerg_abi::Vxlan6LslKey {
                    vni: h.vni,
                    remote: BRG_VTEP6.octets(),
                },
                h.id,
            )
            .unwrap();
        } else if h.vni != 0 {
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

    /// The NAT tables as vgd's expiry task opens them (from the pins).
    fn tables(&self) -> vg::fastpath::expiry::NatTables {
        vg::fastpath::expiry::NatTables::open(self.pins.path()).unwrap()
    }

    /// Changes home `id`'s fast-path record.
    fn edit_home(&mut self, id: SubscriberId, edit: impl FnOnce(&mut Subscriber)) {
        let mut maps = self.fp.maps();
        let mut rec = maps.subscriber(id).unwrap();
        edit(&mut rec);
        maps.set_subscriber(id, &rec).unwrap();
    }

    /// The mapping of home `sub`'s `port` as `(public, port)`.
    fn public_of(&mut self, sub: SubscriberId, port: u16, proto: u8) -> (Ipv4Addr, u16) {
        let (ip, port, _) = self.mapping(sub, port, proto);
        (ip, port)
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
        let sport = home.vxlan_sport(&out);
        if home.vni != 0 {
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
        let sport = home.vxlan_sport(&out);
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
        let sport = home.vxlan_sport(&out);
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
        3 * HOMES.len() as u64,
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

    // A later fragment of a datagram whose first fragment never came: nowhere to go.
    let mut frag = to(PUBLIC1, 40000, 64);
    frag[14 + 7] = 8; // offset 64 bytes
    let before = rig.drops(DropReason::FragmentOrphan);
    assert_eq!(rig.down(&frag).0, XdpVerdict::Drop);
    assert_eq!(rig.drops(DropReason::FragmentOrphan) - before, 1);
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

    // An ICMP error whose quote is not an IPv4 header without options: not translated.
    let mut unreach = frames::icmp_echo_msg(HOST_MAC, [0; 6], HOST, INTERNET, 7, 1, false, 64);
    unreach[34] = 3; // destination unreachable, "quoting" echo data
    let before = rig.drops(DropReason::IcmpUnsupported);
    assert_eq!(rig.up(&wrap(unreach)).0, XdpVerdict::Drop);
    assert_eq!(rig.drops(DropReason::IcmpUnsupported) - before, 1);
    // Fragmented ICMP is not translated.
    let mut frag = frames::icmp_echo_msg(HOST_MAC, [0; 6], HOST, INTERNET, 7, 1, false, 64);
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
    let mut tables = rig.tables();
    let r = tables.sweep(&timers, now + 200 * 1_000_000_000).unwrap();
    assert_eq!((r.mappings, r.expired), (2, 0));

    // 250 s later the half-open TCP mapping is gone (transitory 240 s), the UDP one stays.
    let r = tables.sweep(&timers, now + 250 * 1_000_000_000).unwrap();
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
    let r = tables.sweep(&timers, t_udp).unwrap();
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
    let r = tables.sweep(&timers, t_udp + 121 * 1_000_000_000).unwrap();
    assert!(r.released >= 2, "{r:?}");
    assert!(rig.fp.maps().nat_reverse(&key).unwrap().is_none());
}

/// A mapping's last-use time is rewritten once it is `LAST_SEEN_STEP_NS` old, not by every
/// packet (its cache line stays clean); expiry allows for that step.
#[test]
fn a_mapping_is_refreshed_once_its_stamp_is_a_step_old() {
    use vg::fastpath::expiry::monotonic_ns;
    let mut rig = rig("natstep");
    let home = HOMES[0];
    let wrap = |inner: Vec<u8>| home.encap([0; 6]).encapsulate(&inner).unwrap();
    let up = wrap(udp_up(41000, INTERNET, 53));
    assert_eq!(rig.up(&up).0, XdpVerdict::Redirect);
    let key = NatFwdKey {
        sub: home.id,
        priv_ip: raw(HOST),
        priv_port: 41000u16.to_be(),
        proto: 17,
        _pad: 0,
    };
    let mut fwd: aya::maps::HashMap<MapData, NatFwdKey, nerg_abi::NatMapping> =
        aya::maps::HashMap::try_from(aya::maps::Map::HashMap(
            MapData::from_pin(rig.pins.path().join(nerg_abi::map_names::NAT_FWD)).unwrap(),
        ))
        .unwrap();
    let stamp = |fwd: &aya::maps::HashMap<MapData, NatFwdKey, nerg_abi::NatMapping>| {
        fwd.get(&key, 0).unwrap().last_seen_ns
    };
    let set_stamp = |fwd: &mut aya::maps::HashMap<MapData, NatFwdKey, nerg_abi::NatMapping>,
                     ns: u64| {
        let mut m = fwd.get(&key, 0).unwrap();
        m.last_seen_ns = ns;
        fwd.insert(key, m, 0).unwrap();
    };

    // Stamped with the fine clock, which is never behind the program's coarse one: a packet
    // now finds the stamp less than a step old and leaves it alone.
    let fresh = monotonic_ns();
    set_stamp(&mut fwd, fresh);
    assert_eq!(rig.up(&up).0, XdpVerdict::Redirect);
    assert_eq!(stamp(&fwd), fresh, "a fresh stamp is not rewritten");

    // A stamp a step old, and more than the coarse clock's lag (a tick or so) besides, is
    // moved to the packet's time.
    let old = monotonic_ns() - nerg_abi::LAST_SEEN_STEP_NS - 200_000_000;
    set_stamp(&mut fwd, old);
    assert_eq!(rig.up(&up).0, XdpVerdict::Redirect);
    let refreshed = stamp(&fwd);
    assert!(
        refreshed > old + nerg_abi::LAST_SEEN_STEP_NS && refreshed <= monotonic_ns(),
        "a stale stamp is refreshed: {old} -> {refreshed}"
    );
}

/// An established flow's mapping vouches for its sender: the host table is consulted for a
/// flow's first packet only, until a host of the home is removed or changes its MAC address
/// (vgd raises the home's host generation); then the next packet is checked again.
#[test]
fn a_mapping_vouches_for_its_host_until_the_homes_hosts_change() {
    let mut rig = rig("natvouch");
    let home = HOMES[0];
    let host_key = HostKey {
        sub: home.id,
        ip: raw(HOST),
    };
    let from = |mac: [u8; 6]| {
        let inner = frames::udp(mac, [0; 6], (HOST, 42000), (INTERNET, 53), b"ping");
        home.encap([0; 6]).encapsulate(&inner).unwrap()
    };
    let checks = |rig: &Rig| rig.counter(Counter::HostCheck);
    let spoofed = |rig: &Rig| rig.drops(DropReason::Spoofed);
    let set_host = |rig: &mut Rig, mac: [u8; 6]| {
        let host = Host {
            mac,
            flags: host_flags::STATIC,
            _pad: 0,
        };
        rig.fp.maps().insert_host(host_key, host).unwrap();
    };

    // The first packet creates the mapping after a host check; the next ones need none.
    let c0 = checks(&rig);
    assert_eq!(rig.up(&from(HOST_MAC)).0, XdpVerdict::Redirect);
    assert_eq!(checks(&rig) - c0, 1);
    for _ in 0..3 {
        assert_eq!(rig.up(&from(HOST_MAC)).0, XdpVerdict::Redirect);
    }
    assert_eq!(
        checks(&rig) - c0,
        1,
        "an established flow skips the host table"
    );

    // Another MAC with the same address: the mapping does not vouch for it.
    let other = [0x02, 0, 0, 0, 0xee, 0x01];
    let s0 = spoofed(&rig);
    assert_eq!(rig.up(&from(other)).0, XdpVerdict::Drop);
    assert_eq!(spoofed(&rig) - s0, 1);
    assert_eq!(checks(&rig) - c0, 2);

    // The host moves to the other MAC: the generation goes up, the old MAC is refused at
    // once, the new one passes after one check and then needs none.
    let gen0 = rig.fp.maps().hosts_gen(home.id).unwrap();
    set_host(&mut rig, other);
    assert_eq!(
        rig.fp.maps().hosts_gen(home.id).unwrap(),
        gen0.wrapping_add(1)
    );
    assert_eq!(rig.up(&from(HOST_MAC)).0, XdpVerdict::Drop);
    assert_eq!(spoofed(&rig) - s0, 2, "the old MAC is refused");
    let c1 = checks(&rig);
    assert_eq!(rig.up(&from(other)).0, XdpVerdict::Redirect);
    assert_eq!(rig.up(&from(other)).0, XdpVerdict::Redirect);
    assert_eq!(checks(&rig) - c1, 1, "re-checked once, then vouched for");

    // Rewriting the same host changes nothing.
    set_host(&mut rig, other);
    assert_eq!(
        rig.fp.maps().hosts_gen(home.id).unwrap(),
        gen0.wrapping_add(1)
    );

    // The host goes: its established flow is refused at the next packet.
    rig.fp.maps().remove_host(&host_key).unwrap();
    assert_eq!(
        rig.fp.maps().hosts_gen(home.id).unwrap(),
        gen0.wrapping_add(2)
    );
    assert_eq!(rig.up(&from(other)).0, XdpVerdict::Drop);
    assert_eq!(
        spoofed(&rig) - s0,
        3,
        "a removed host's mapping vouches for nothing"
    );

    // Another home's mappings are not affected by this home's changes.
    let other_home = HOMES[1];
    assert_eq!(rig.fp.maps().hosts_gen(other_home.id).unwrap(), 0);
}

/// A mapping belongs to the host that created it. The home's address moves to another
/// device (another MAC): downstream stops going to the device that had it at once, the new
/// device's first packet of the same flow re-owns the mapping (fresh state, same public
/// port, its MAC in both entries), and downstream then reaches the new device. One row per
/// encapsulation, exact bytes both ways.
#[test]
fn a_mapping_follows_its_address_to_a_new_device_only_through_that_devices_packets() {
    let mut rig = rig("natmove");
    let device_b = [0x02, 0x00, 0x07, 0x00, 0x00, 0x01];
    for (i, home) in HOMES.iter().enumerate() {
        let name = home.name;
        let gw = gw_mac(home.id);
        let sport = 41000 + i as u16;
        let host_key = HostKey {
            sub: home.id,
            ip: raw(HOST),
        };
        let set_host = |rig: &mut Rig, mac: [u8; 6]| {
            let host = Host {
                mac,
                flags: host_flags::STATIC,
                _pad: 0,
            };
            rig.fp.maps().insert_host(host_key, host).unwrap();
        };
        let from = |mac: [u8; 6], flags: TcpControl| {
            let inner = frames::tcp(
                mac,
                [0; 6],
                (HOST, sport),
                (INTERNET, 443),
                flags,
                1000,
                None,
                &[],
                64,
            );
            home.encap([0; 6]).encapsulate(&inner).unwrap()
        };
        let reply = |rig: &Rig, public: Ipv4Addr, port: u16| {
            frames::tcp(
                NEXT_HOP_MAC,
                rig.core_mac,
                (INTERNET, 443),
                (public, port),
                TcpControl::Psh,
                7000,
                Some(1001),
                b"data",
                64,
            )
        };
        let to = |mac: [u8; 6]| {
            frames::tcp(
                gw,
                mac,
                (INTERNET, 443),
                (HOST, sport),
                TcpControl::Psh,
                7000,
                Some(1001),
                b"data",
                63,
            )
        };
        let rev_key = |public: Ipv4Addr, port: u16| NatRevKey {
            pub_ip: raw(public),
            pub_port: port.to_be(),
            proto: 6,
            _pad: 0,
        };
        set_host(&mut rig, HOST_MAC);

        // Device A: an established connection, downstream to A.
        assert_eq!(
            rig.up(&from(HOST_MAC, TcpControl::Syn)).0,
            XdpVerdict::Redirect
        );
        assert_eq!(
            rig.up(&from(HOST_MAC, TcpControl::None)).0,
            XdpVerdict::Redirect
        );
        let (public, port, seen) = rig.mapping(home.id, sport, 6);
        assert_ne!(seen & tcp_seen::ESTABLISHED, 0, "{name}: established");
        let (v, out) = rig.down(&reply(&rig, public, port));
        assert_eq!(v, XdpVerdict::Redirect, "{name}: downstream to A");
        assert_eq!(
            out,
            down_frame(&rig, home, &out, &to(HOST_MAC)),
            "{name}: to A"
        );

        // The address is leased to device B: nothing goes to A any more, nothing to B yet.
        set_host(&mut rig, device_b);
        let no_host = rig.drops(DropReason::NoHost);
        let (v, _) = rig.down(&reply(&rig, public, port));
        assert_eq!(v, XdpVerdict::Drop, "{name}: A no longer holds the address");
        assert_eq!(
            rig.drops(DropReason::NoHost) - no_host,
            1,
            "{name}: counted"
        );

        // B opens the same connection: it re-owns the mapping, on the same public port,
        // with fresh TCP state, and both entries name B.
        let reowned = rig.counter(Counter::NatReowned);
        let created = rig.counter(Counter::NatCreated);
        let (v, out) = rig.up(&from(device_b, TcpControl::Syn));
        assert_eq!(v, XdpVerdict::Redirect, "{name}: B upstream");
        let want = rig.upstream_out(frames::tcp(
            device_b,
            [0; 6],
            (public, port),
            (INTERNET, 443),
            TcpControl::Syn,
            1000,
            None,
            &[],
            63,
        ));
        assert_eq!(
            out, want,
            "{name}: B's SYN translated on the same public port"
        );
        assert_eq!(
            rig.counter(Counter::NatReowned) - reowned,
            1,
            "{name}: re-owned"
        );
        assert_eq!(
            rig.counter(Counter::NatCreated),
            created,
            "{name}: not a second mapping"
        );
        let (_, _, seen) = rig.mapping(home.id, sport, 6);
        assert_eq!(seen, tcp_seen::SYN_OUT, "{name}: fresh TCP state");
        let fwd = rig
            .fp
            .maps()
            .nat_mapping(&NatFwdKey {
                sub: home.id,
                priv_ip: raw(HOST),
                priv_port: sport.to_be(),
                proto: 6,
                _pad: 0,
            })
            .unwrap()
            .unwrap();
        let rev = rig
            .fp
            .maps()
            .nat_reverse(&rev_key(public, port))
            .unwrap()
            .unwrap();
        assert_eq!(
            (fwd.host_mac, rev.host_mac),
            (device_b, device_b),
            "{name}: both entries"
        );
        assert_eq!(fwd.hosts_gen, rev.hosts_gen, "{name}: one generation");

        // Downstream reaches B, exactly; and keeps doing so with no further host check.
        for _ in 0..2 {
            let (v, out) = rig.down(&reply(&rig, public, port));
            assert_eq!(v, XdpVerdict::Redirect, "{name}: downstream to B");
            assert_eq!(
                out,
                down_frame(&rig, home, &out, &to(device_b)),
                "{name}: to B"
            );
        }

        // A, still on the LAN with its old address, is refused upstream (spoofed) and does
        // not take the mapping back.
        let spoofed = rig.drops(DropReason::Spoofed);
        assert_eq!(
            rig.up(&from(HOST_MAC, TcpControl::None)).0,
            XdpVerdict::Drop
        );
        assert_eq!(
            rig.drops(DropReason::Spoofed) - spoofed,
            1,
            "{name}: A refused"
        );
        let (v, out) = rig.down(&reply(&rig, public, port));
        assert_eq!(v, XdpVerdict::Redirect, "{name}: still B's");
        assert_eq!(
            out,
            down_frame(&rig, home, &out, &to(device_b)),
            "{name}: to B"
        );

        // The rig's other tests expect the original host.
        set_host(&mut rig, HOST_MAC);
    }
}

/// vgd's run-time writers of the host table raise the home's host generation too: the slow
/// path's (`PinnedHosts`: a lease released, expired or moved to another MAC) and the control
/// task's (`PinnedMaps`: a static host removed). Each change stops the flow its mapping was
/// vouching for.
#[test]
fn lease_and_static_host_changes_at_run_time_stop_vouched_flows() {
    use vg::fastpath::maps::{PinnedHosts, PinnedMaps};
    let mut rig = rig("natvouch2");
    let home = HOMES[2];
    let leased = Ipv4Addr::new(192, 168, 1, 77);
    let mac2 = [0x02, 0, 0, 0, 0xee, 0x02];
    let from = |mac: [u8; 6], ip: Ipv4Addr| {
        let inner = frames::udp(mac, [0; 6], (ip, 43000), (INTERNET, 53), b"ping");
        home.encap([0; 6]).encapsulate(&inner).unwrap()
    };
    let gen_of = |rig: &mut Rig| rig.fp.maps().hosts_gen(home.id).unwrap();
    let mut hosts = PinnedHosts::open(rig.pins.path()).unwrap();

    // A leased host: its flow runs, vouched for after the first packet.
    hosts.add(home.id, leased, HOST_MAC).unwrap();
    let gen0 = gen_of(&mut rig);
    assert_eq!(rig.up(&from(HOST_MAC, leased)).0, XdpVerdict::Redirect);
    let c0 = rig.counter(Counter::HostCheck);
    assert_eq!(rig.up(&from(HOST_MAC, leased)).0, XdpVerdict::Redirect);
    assert_eq!(rig.counter(Counter::HostCheck), c0);

    // The lease is renewed (same MAC): nothing changes. It moves to another MAC: the
    // generation goes up and the old MAC is refused.
    hosts.add(home.id, leased, HOST_MAC).unwrap();
    assert_eq!(gen_of(&mut rig), gen0);
    hosts.add(home.id, leased, mac2).unwrap();
    assert_eq!(gen_of(&mut rig), gen0.wrapping_add(1));
    assert_eq!(rig.up(&from(HOST_MAC, leased)).0, XdpVerdict::Drop);
    assert_eq!(rig.up(&from(mac2, leased)).0, XdpVerdict::Redirect);

    // The lease ends: the flow stops at its next packet.
    hosts.remove(home.id, leased).unwrap();
    assert_eq!(gen_of(&mut rig), gen0.wrapping_add(2));
    let s0 = rig.drops(DropReason::Spoofed);
    assert_eq!(rig.up(&from(mac2, leased)).0, XdpVerdict::Drop);
    assert_eq!(rig.drops(DropReason::Spoofed) - s0, 1);
    // Removing what is not there changes nothing.
    hosts.remove(home.id, leased).unwrap();
    assert_eq!(gen_of(&mut rig), gen0.wrapping_add(2));

    // The home's static host (the rig's), removed by the control task: the same.
    assert_eq!(rig.up(&from(HOST_MAC, HOST)).0, XdpVerdict::Redirect);
    let mut maps = PinnedMaps::open(rig.pins.path()).unwrap();
    maps.remove_host(&HostKey {
        sub: home.id,
        ip: raw(HOST),
    })
    .unwrap();
    assert_eq!(gen_of(&mut rig), gen0.wrapping_add(3));
    assert_eq!(rig.up(&from(HOST_MAC, HOST)).0, XdpVerdict::Drop);
    assert_eq!(rig.drops(DropReason::Spoofed) - s0, 2);
}

/// A router on the path towards the internet (source of ICMP errors).
const ROUTER: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);

/// The home's downstream output for `inner`, with the VXLAN source port the program chose.
fn down_frame(rig: &Rig, home: &Home, out: &[u8], inner: &[u8]) -> Vec<u8> {
    let sport = home.vxlan_sport(out);
    home.down_encap(rig.access_mac, sport)
        .encapsulate(inner)
        .unwrap()
}

/// [`down_frame`] for an inner packet whose own checksums cannot give the outer one (a
/// fragment): over IPv6 the vG sends a zero outer UDP checksum (RFC 6935).
fn down_frame_zero_checksum(rig: &Rig, home: &Home, out: &[u8], inner: &[u8]) -> Vec<u8> {
    let mut frame = down_frame(rig, home, out, inner);
    if home.lsl == lsl_kind::VXLAN6 {
        frame[14 + 40 + 6..14 + 40 + 8].copy_from_slice(&[0, 0]);
    }
    frame
}

#[test]
fn icmp_errors_are_translated_both_ways() {
    let mut rig = rig("naticmp");
    let errors0 = rig.counter(Counter::NatIcmpError);
    for home in HOMES {
        let name = home.name;
        let gw = gw_mac(home.id);
        let access_mac = rig.access_mac;
        let wrap = |inner: Vec<u8>| home.encap(access_mac).encapsulate(&inner).unwrap();

        // UDP out; a router answers "time exceeded", quoting 8 bytes of the datagram.
        let (v, out) = rig.up(&wrap(udp_up(40000, INTERNET, 53)));
        assert_eq!(v, XdpVerdict::Redirect);
        let (public, port) = rig.public_of(home.id, 40000, 17);
        // An ICMP error a router on the path sends to the home's public address.
        let core_mac = rig.core_mac;
        let from_router = |icmp_type, code, quoted: &[u8], quote_l4| {
            frames::icmp_error(
                NEXT_HOP_MAC,
                core_mac,
                ROUTER,
                public,
                icmp_type,
                code,
                quoted,
                quote_l4,
                64,
            )
        };
        let err = from_router(11, 0, &out, 8);
        let (v, got) = rig.down(&err);
        assert_eq!(v, XdpVerdict::Redirect, "{name}: time exceeded downstream");
        let sent = frames::udp_ttl(HOST_MAC, [0; 6], (HOST, 40000), (INTERNET, 53), b"ping", 63);
        let inner = frames::icmp_error(gw, HOST_MAC, ROUTER, HOST, 11, 0, &sent, 8, 63);
        assert_eq!(
            got,
            down_frame(&rig, &home, &got, &inner),
            "{name}: quoted UDP"
        );

        // TCP SYN out; "fragmentation needed" quoting the whole segment: the quoted TCP
        // checksum is rewritten too.
        let syn = |src: (Ipv4Addr, u16), ttl| {
            frames::tcp_syn(
                HOST_MAC,
                [0; 6],
                src,
                (INTERNET, 443),
                None,
                &frames::mss_option(1460),
                ttl,
            )
        };
        let (v, out) = rig.up(&wrap(syn((HOST, 50000), 64)));
        assert_eq!(v, XdpVerdict::Redirect);
        let err = from_router(3, 4, &out, 64);
        let (v, got) = rig.down(&err);
        assert_eq!(v, XdpVerdict::Redirect, "{name}: frag needed downstream");
        let inner = frames::icmp_error(
            gw,
            HOST_MAC,
            ROUTER,
            HOST,
            3,
            4,
            &syn((HOST, 50000), 63),
            64,
            63,
        );
        assert_eq!(
            got,
            down_frame(&rig, &home, &got, &inner),
            "{name}: quoted TCP"
        );

        // An echo request out; "time exceeded" quoting it: the identifier goes back.
        let echo = |src, id, ttl| {
            frames::icmp_echo_msg(HOST_MAC, [0; 6], src, INTERNET, id, 1, false, ttl)
        };
        let (v, out) = rig.up(&wrap(echo(HOST, 7, 64)));
        assert_eq!(v, XdpVerdict::Redirect);
        let err = from_router(11, 0, &out, 8);
        let (v, got) = rig.down(&err);
        assert_eq!(v, XdpVerdict::Redirect, "{name}: quoted echo");
        let inner =
            frames::icmp_error(gw, HOST_MAC, ROUTER, HOST, 11, 0, &echo(HOST, 7, 63), 8, 63);
        assert_eq!(
            got,
            down_frame(&rig, &home, &got, &inner),
            "{name}: quoted echo"
        );

        // The home host answers a datagram it got with "port unreachable": upstream, the
        // outer source and the quoted destination become the mapping's.
        let delivered = frames::udp_ttl(gw, HOST_MAC, (INTERNET, 53), (HOST, 40000), b"pong", 63);
        let unreach = frames::icmp_error(HOST_MAC, gw, HOST, INTERNET, 3, 3, &delivered, 8, 64);
        let (v, got) = rig.up(&wrap(unreach));
        assert_eq!(v, XdpVerdict::Redirect, "{name}: port unreachable upstream");
        let seen = frames::udp_ttl(
            NEXT_HOP_MAC,
            rig.core_mac,
            (INTERNET, 53),
            (public, port),
            b"pong",
            63,
        );
        let want = rig.upstream_out(frames::icmp_error(
            HOST_MAC, [0; 6], public, INTERNET, 3, 3, &seen, 8, 63,
        ));
        assert_eq!(got, want, "{name}: translated port unreachable");

        // An error quoting a port nobody maps: dropped, counted.
        let stray = frames::udp_ttl(HOST_MAC, [0; 6], (public, 1), (INTERNET, 53), b"x", 63);
        let err = from_router(11, 0, &stray, 8);
        let before = rig.drops(DropReason::NoMapping);
        assert_eq!(rig.down(&err).0, XdpVerdict::Drop, "{name}: unmapped quote");
        assert_eq!(rig.drops(DropReason::NoMapping) - before, 1);
    }
    assert_eq!(
        rig.counter(Counter::NatIcmpError) - errors0,
        4 * HOMES.len() as u64
    );
}

#[test]
fn hairpinning_delivers_between_homes_with_external_addresses() {
    let mut rig = rig("nathair");
    let [h1, h2, h3, _] = HOMES;
    let wrap =
        |rig: &Rig, h: &Home, inner: Vec<u8>| h.encap(rig.access_mac).encapsulate(&inner).unwrap();

    // Home 3 (VXLAN) has a mapping from talking to the internet.
    assert_eq!(
        rig.up(&wrap(&rig, &h3, udp_up(40000, INTERNET, 53))).0,
        XdpVerdict::Redirect
    );
    let (p3_ip, p3) = rig.public_of(h3.id, 40000, 17);

    // Home 1 (802.1Q) sends to home 3's public address and port: delivered straight to
    // home 3, from home 1's own external address and port.
    let (v, out) = rig.up(&wrap(&rig, &h1, udp_up(41000, p3_ip, p3)));
    assert_eq!(v, XdpVerdict::Redirect, "hairpin 1 -> 3");
    let (p1_ip, p1) = rig.public_of(h1.id, 41000, 17);
    let inner = frames::udp_ttl(
        gw_mac(h3.id),
        HOST_MAC,
        (p1_ip, p1),
        (HOST, 40000),
        b"ping",
        63,
    );
    assert_eq!(out, down_frame(&rig, &h3, &out, &inner));

    // A home reaching its own public address and port.
    let (v, out) = rig.up(&wrap(&rig, &h1, udp_up(41001, p1_ip, p1)));
    assert_eq!(v, XdpVerdict::Redirect, "hairpin 1 -> 1");
    let (_, p1b) = rig.public_of(h1.id, 41001, 17);
    let inner = frames::udp_ttl(
        gw_mac(h1.id),
        HOST_MAC,
        (p1_ip, p1b),
        (HOST, 41000),
        b"ping",
        63,
    );
    assert_eq!(out, down_frame(&rig, &h1, &out, &inner));
    assert_eq!(rig.counter(Counter::NatHairpin), 2);

    // To a public port nobody maps, or ICMP to a public address: dropped, counted.
    let before = rig.drops(DropReason::NoMapping);
    assert_eq!(
        rig.up(&wrap(&rig, &h1, udp_up(41002, p3_ip, 7))).0,
        XdpVerdict::Drop
    );
    let ping = frames::icmp_echo_msg(HOST_MAC, [0; 6], HOST, p3_ip, 9, 1, false, 64);
    assert_eq!(rig.up(&wrap(&rig, &h1, ping)).0, XdpVerdict::Drop);
    assert_eq!(rig.drops(DropReason::NoMapping) - before, 2);

    // The target's filtering applies: with APDF, home 3 takes home 2's packets only once it
    // has sent to home 2's external address and port.
    rig.edit_home(h3.id, |r| r.flags |= sub_flags::FILTER_APDF);
    assert_eq!(
        rig.up(&wrap(&rig, &h2, udp_up(42000, INTERNET, 53))).0,
        XdpVerdict::Redirect
    );
    let (p2_ip, p2) = rig.public_of(h2.id, 42000, 17);
    let before = rig.drops(DropReason::Filtered);
    assert_eq!(
        rig.up(&wrap(&rig, &h2, udp_up(42000, p3_ip, p3))).0,
        XdpVerdict::Drop
    );
    assert_eq!(
        rig.drops(DropReason::Filtered) - before,
        1,
        "filtered at home 3"
    );
    let (v, out) = rig.up(&wrap(&rig, &h3, udp_up(40000, p2_ip, p2)));
    assert_eq!(
        v,
        XdpVerdict::Redirect,
        "hairpin 3 -> 2 (home 2 filters nothing)"
    );
    let inner = frames::udp_ttl(
        gw_mac(h2.id),
        HOST_MAC,
        (p3_ip, p3),
        (HOST, 42000),
        b"ping",
        63,
    );
    assert_eq!(out, down_frame(&rig, &h2, &out, &inner));
    assert_eq!(
        rig.up(&wrap(&rig, &h2, udp_up(42000, p3_ip, p3))).0,
        XdpVerdict::Redirect,
        "now permitted"
    );

    // Fragments are not hairpinned.
    let [first, _] = frames::fragments(&udp_up(41003, p3_ip, p3), 8, 0x77);
    let before = rig.drops(DropReason::Fragment);
    assert_eq!(rig.up(&wrap(&rig, &h1, first)).0, XdpVerdict::Drop);
    assert_eq!(rig.drops(DropReason::Fragment) - before, 1);
}

#[test]
fn address_and_port_dependent_filtering_for_every_lsl_kind() {
    use vg::fastpath::expiry::{Timers, monotonic_ns};
    let mut rig = rig("natapdf");
    let from = |rig: &Rig, src: (Ipv4Addr, u16), to: (Ipv4Addr, u16)| {
        frames::udp(NEXT_HOP_MAC, rig.core_mac, src, to, b"in")
    };
    for home in HOMES {
        let name = home.name;
        // Endpoint-independent filtering first: anyone reaches the mapping.
        let up = |rig: &Rig, port| {
            let f = udp_up(port, INTERNET, 53);
            home.encap(rig.access_mac).encapsulate(&f).unwrap()
        };
        assert_eq!(rig.up(&up(&rig, 40000)).0, XdpVerdict::Redirect);
        let eif = rig.public_of(home.id, 40000, 17);
        let (v, out) = rig.down(&from(&rig, (INTERNET2, 99), eif));
        assert_eq!(v, XdpVerdict::Redirect, "{name}: EIF");
        let inner = frames::udp_ttl(
            gw_mac(home.id),
            HOST_MAC,
            (INTERNET2, 99),
            (HOST, 40000),
            b"in",
            63,
        );
        assert_eq!(
            out,
            down_frame(&rig, &home, &out, &inner),
            "{name}: EIF delivery"
        );

        // Address-and-port-dependent: only the endpoint the mapping sent to.
        rig.edit_home(home.id, |r| r.flags |= sub_flags::FILTER_APDF);
        assert_eq!(rig.up(&up(&rig, 40001)).0, XdpVerdict::Redirect);
        let apdf = rig.public_of(home.id, 40001, 17);
        let before = rig.drops(DropReason::Filtered);
        assert_eq!(
            rig.down(&from(&rig, (INTERNET, 53), apdf)).0,
            XdpVerdict::Redirect,
            "{name}: the peer"
        );
        assert_eq!(
            rig.down(&from(&rig, (INTERNET, 54), apdf)).0,
            XdpVerdict::Drop,
            "{name}: other port"
        );
        assert_eq!(
            rig.down(&from(&rig, (INTERNET2, 53), apdf)).0,
            XdpVerdict::Drop,
            "{name}: other address"
        );
        assert_eq!(rig.drops(DropReason::Filtered) - before, 2, "{name}");
    }

    // Permissions go with their mapping (one per APDF mapping above).
    let mut tables = rig.tables();
    let r = tables
        .sweep(&Timers::default(), monotonic_ns() + 310 * 1_000_000_000)
        .unwrap();
    assert_eq!(
        (r.expired, r.permits, r.permits_expired),
        (2 * HOMES.len(), HOMES.len(), HOMES.len()),
        "{r:?}"
    );
}

fn port_forward(
    rig: &Rig,
    sub: SubscriberId,
    public: (Ipv4Addr, u16),
    private: (Ipv4Addr, u16),
    proto: u8,
) {
    nerg_tests::nat::port_forward(rig.pins.path(), sub, public, private, proto);
}

#[test]
fn port_forwards_reach_a_home_host_over_every_lsl_kind() {
    use vg::fastpath::expiry::{Timers, monotonic_ns};
    let mut rig = rig("natfwd");
    for home in HOMES {
        let name = home.name;
        let public = (home.public, home.block + 100);
        // Even a home that filters by address and port takes unsolicited forwarded traffic.
        rig.edit_home(home.id, |r| r.flags |= sub_flags::FILTER_APDF);
        port_forward(&rig, home.id, public, (HOST, 8080), 6);
        let syn = frames::tcp(
            NEXT_HOP_MAC,
            rig.core_mac,
            (INTERNET, 5555),
            public,
            TcpControl::Syn,
            77,
            None,
            &[],
            64,
        );
        let (v, out) = rig.down(&syn);
        assert_eq!(v, XdpVerdict::Redirect, "{name}: forwarded");
        let inner = frames::tcp(
            gw_mac(home.id),
            HOST_MAC,
            (INTERNET, 5555),
            (HOST, 8080),
            TcpControl::Syn,
            77,
            None,
            &[],
            63,
        );
        assert_eq!(out, down_frame(&rig, &home, &out, &inner), "{name}");

        let synack = frames::tcp(
            HOST_MAC,
            [0; 6],
            (HOST, 8080),
            (INTERNET, 5555),
            TcpControl::Syn,
            900,
            Some(78),
            &[],
            64,
        );
        let (v, out) = rig.up(&home.encap(rig.access_mac).encapsulate(&synack).unwrap());
        assert_eq!(v, XdpVerdict::Redirect, "{name}: answer");
        let want = rig.upstream_out(frames::tcp(
            HOST_MAC,
            [0; 6],
            public,
            (INTERNET, 5555),
            TcpControl::Syn,
            900,
            Some(78),
            &[],
            63,
        ));
        assert_eq!(out, want, "{name}: from the forwarded public port");

        // A forward to an address the home has no host at: the vG knows no MAC for it.
        let other = (home.public, home.block + 101);
        port_forward(
            &rig,
            home.id,
            other,
            (Ipv4Addr::new(192, 168, 1, 99), 22),
            6,
        );
        let before = rig.drops(DropReason::NoHost);
        let syn = frames::tcp(
            NEXT_HOP_MAC,
            rig.core_mac,
            (INTERNET, 5555),
            other,
            TcpControl::Syn,
            1,
            None,
            &[],
            64,
        );
        assert_eq!(rig.down(&syn).0, XdpVerdict::Drop, "{name}");
        assert_eq!(rig.drops(DropReason::NoHost) - before, 1, "{name}");
    }

    // Forwards never expire, and are not sessions.
    let mut tables = rig.tables();
    let r = tables
        .sweep(&Timers::default(), monotonic_ns() + 100_000 * 1_000_000_000)
        .unwrap();
    assert_eq!(r.expired, 0, "{r:?}");
    for home in HOMES {
        assert_eq!(tables.sessions(home.id).unwrap(), 0, "{}", home.name);
    }
}

#[test]
fn session_limit_caps_a_homes_mappings() {
    use vg::fastpath::expiry::{Timers, monotonic_ns};
    let mut rig = rig("natlimit");
    let h1 = HOMES[0];
    rig.edit_home(h1.id, |r| r.session_limit = 2);
    let up = |rig: &mut Rig, port| {
        let f = h1
            .encap(rig.access_mac)
            .encapsulate(&udp_up(port, INTERNET, 53))
            .unwrap();
        rig.up(&f).0
    };
    assert_eq!(up(&mut rig, 40000), XdpVerdict::Redirect);
    assert_eq!(up(&mut rig, 40001), XdpVerdict::Redirect);
    let before = rig.drops(DropReason::SessionLimit);
    assert_eq!(up(&mut rig, 40002), XdpVerdict::Drop, "third mapping");
    assert_eq!(rig.drops(DropReason::SessionLimit) - before, 1);
    assert_eq!(
        up(&mut rig, 40000),
        XdpVerdict::Redirect,
        "existing flows go on"
    );

    // The sweep writes the exact count; once the mappings expire, new ones fit again.
    let mut tables = rig.tables();
    let now = monotonic_ns();
    tables.sweep(&Timers::default(), now).unwrap();
    assert_eq!(tables.sessions(h1.id).unwrap(), 2);
    tables
        .sweep(&Timers::default(), now + 310 * 1_000_000_000)
        .unwrap();
    assert_eq!(tables.sessions(h1.id).unwrap(), 0);
    assert_eq!(up(&mut rig, 40002), XdpVerdict::Redirect, "room again");
    assert_eq!(tables.sessions(h1.id).unwrap(), 1, "the fast path counts");
}

#[test]
fn mss_is_clamped_on_syns_in_both_directions() {
    let mut rig = rig("natmss");
    let [h1, _, h3, _] = HOMES;
    rig.edit_home(h3.id, |r| r.tcp_mss = 1410);
    let syn = |src: (Ipv4Addr, u16), opts: &[u8], ttl| {
        frames::tcp_syn(HOST_MAC, [0; 6], src, (INTERNET, 443), None, opts, ttl)
    };
    let nop_mss = |mss: u16| {
        let m = frames::mss_option(mss);
        [1, m[0], m[1], m[2], m[3], 1, 1, 1]
    };
    let cases: [(&str, Home, Vec<u8>, Vec<u8>); 4] = [
        (
            "lowered",
            h3,
            frames::mss_option(1460).to_vec(),
            frames::mss_option(1410).to_vec(),
        ),
        (
            "already lower",
            h3,
            frames::mss_option(1400).to_vec(),
            frames::mss_option(1400).to_vec(),
        ),
        (
            "odd offset",
            h3,
            nop_mss(1460).to_vec(),
            nop_mss(1410).to_vec(),
        ),
        (
            "home without clamp",
            h1,
            frames::mss_option(1460).to_vec(),
            frames::mss_option(1460).to_vec(),
        ),
    ];
    for (i, (name, home, sent, want_opts)) in cases.into_iter().enumerate() {
        let port = 50000 + i as u16;
        let f = home
            .encap(rig.access_mac)
            .encapsulate(&syn((HOST, port), &sent, 64))
            .unwrap();
        let (v, out) = rig.up(&f);
        assert_eq!(v, XdpVerdict::Redirect, "{name}");
        let public = rig.public_of(home.id, port, 6);
        assert_eq!(out, rig.upstream_out(syn(public, &want_opts, 63)), "{name}");
    }
    assert_eq!(rig.counter(Counter::MssClamped), 2);

    // Downstream: the SYN-ACK to the VXLAN home is clamped too.
    let public = rig.public_of(h3.id, 50000, 6);
    let synack = frames::tcp_syn(
        NEXT_HOP_MAC,
        rig.core_mac,
        (INTERNET, 443),
        public,
        Some(1001),
        &frames::mss_option(1460),
        64,
    );
    let (v, out) = rig.down(&synack);
    assert_eq!(v, XdpVerdict::Redirect);
    let inner = frames::tcp_syn(
        gw_mac(h3.id),
        HOST_MAC,
        (INTERNET, 443),
        (HOST, 50000),
        Some(1001),
        &frames::mss_option(1410),
        63,
    );
    assert_eq!(out, down_frame(&rig, &h3, &out, &inner));
}

#[test]
fn fragments_follow_their_first_fragment() {
    let mut rig = rig("natfrag");
    let payload = [0x5a; 64];
    for (i, home) in HOMES.into_iter().enumerate() {
        let name = home.name;
        let ident = 0x1000 + i as u16;
        let access_mac = rig.access_mac;
        let wrap = |inner: Vec<u8>| home.encap(access_mac).encapsulate(&inner).unwrap();
        let sent = frames::udp(HOST_MAC, [0; 6], (HOST, 40000), (INTERNET, 53), &payload);
        let [first, second] = frames::fragments(&sent, 32, ident);
        let (v, out1) = rig.up(&wrap(first));
        assert_eq!(v, XdpVerdict::Redirect, "{name}: first fragment up");
        let (v, out2) = rig.up(&wrap(second));
        assert_eq!(v, XdpVerdict::Redirect, "{name}: second fragment up");
        let (public, port) = rig.public_of(home.id, 40000, 17);
        let translated = frames::udp_ttl(
            HOST_MAC,
            [0; 6],
            (public, port),
            (INTERNET, 53),
            &payload,
            63,
        );
        let [want1, want2] = frames::fragments(&translated, 32, ident);
        assert_eq!(out1, rig.upstream_out(want1), "{name}: first fragment");
        assert_eq!(out2, rig.upstream_out(want2), "{name}: second fragment");

        let reply = frames::udp(
            NEXT_HOP_MAC,
            rig.core_mac,
            (INTERNET, 53),
            (public, port),
            &payload,
        );
        let [first, second] = frames::fragments(&reply, 32, ident);
        let (v, out1) = rig.down(&first);
        assert_eq!(v, XdpVerdict::Redirect, "{name}: first fragment down");
        let (v, out2) = rig.down(&second);
        assert_eq!(v, XdpVerdict::Redirect, "{name}: second fragment down");
        let delivered = frames::udp_ttl(
            gw_mac(home.id),
            HOST_MAC,
            (INTERNET, 53),
            (HOST, 40000),
            &payload,
            63,
        );
        let [want1, want2] = frames::fragments(&delivered, 32, ident);
        assert_eq!(
            out1,
            down_frame_zero_checksum(&rig, &home, &out1, &want1),
            "{name}: first fragment"
        );
        // The same VXLAN source port for both: one flow to the BRG.
        assert_eq!(
            out2,
            down_frame_zero_checksum(&rig, &home, &out1, &want2),
            "{name}: second fragment"
        );
    }
    assert_eq!(
        rig.counter(Counter::FragmentFollowed),
        2 * HOMES.len() as u64
    );
}

/// A small deterministic generator (xorshift64*): the same mutations on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn mutated_frames_never_abort_and_every_verdict_is_counted() {
    let mut rig = rig("natfuzz");
    let access_mac = rig.access_mac;
    let core_mac = rig.core_mac;
    // Valid frames of every kind both ways, then mutated: bytes flipped in the headers,
    // lengths cut and extended.
    let mut up_seeds = Vec::new();
    for home in HOMES {
        let encap = home.encap(access_mac);
        let sent = frames::udp(HOST_MAC, [0; 6], (HOST, 40000), (INTERNET, 53), &[7; 64]);
        let [f1, f2] = frames::fragments(&sent, 32, 9);
        for inner in [
            udp_up(40000, INTERNET, 53),
            udp_up(40001, PUBLIC1, 40000),
            frames::tcp_syn(
                HOST_MAC,
                [0; 6],
                (HOST, 50000),
                (INTERNET, 443),
                None,
                &frames::mss_option(1460),
                64,
            ),
            frames::icmp_echo_msg(HOST_MAC, [0; 6], HOST, INTERNET, 7, 1, false, 64),
            frames::icmp_error(
                HOST_MAC,
                [0; 6],
                HOST,
                INTERNET,
                3,
                3,
                &udp_up(53, HOST, 40000),
                8,
                64,
            ),
            frames::arp_request(HOST_MAC, HOST, GW),
            frames::dhcp_discover(HOST_MAC),
            f1,
            f2,
        ] {
            up_seeds.push(encap.encapsulate(&inner).unwrap());
        }
    }
    let down_seeds = [
        frames::udp(
            NEXT_HOP_MAC,
            core_mac,
            (INTERNET, 53),
            (PUBLIC1, 40000),
            b"x",
        ),
        frames::tcp_syn(
            NEXT_HOP_MAC,
            core_mac,
            (INTERNET, 443),
            (PUBLIC1, 50000),
            Some(1),
            &frames::mss_option(1460),
            64,
        ),
        frames::icmp_echo_msg(NEXT_HOP_MAC, core_mac, INTERNET, PUBLIC2, 7, 1, true, 64),
        frames::icmp_error(
            NEXT_HOP_MAC,
            core_mac,
            ROUTER,
            PUBLIC1,
            11,
            0,
            &udp_up(40000, INTERNET, 53),
            8,
            64,
        ),
    ];
    let before = rig.fp.counters().unwrap().snapshot().unwrap();
    let runs = 6000;
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let fp = &mut rig.fp;
    let aborted = rig.vg.run(|| {
        let mut aborted = Vec::new();
        for i in 0..runs {
            let (prog, seeds) = if i % 3 == 2 {
                (program_names::CORE, &down_seeds[..])
            } else {
                (program_names::ACCESS, &up_seeds[..])
            };
            let mut frame = seeds[rng.below(seeds.len())].clone();
            for _ in 0..1 + rng.below(4) {
                match rng.below(4) {
                    0 | 1 if !frame.is_empty() => {
                        // Flip a byte in the first 96: tags, VXLAN, IPv4, L4 headers.
                        let at = rng.below(frame.len().min(96));
                        frame[at] ^= 1 << rng.below(8);
                    }
                    0 | 1 => {}
                    2 => frame.truncate(rng.below(frame.len() + 1)),
                    _ => frame.extend((0..rng.below(64)).map(|_| rng.next() as u8)),
                }
            }
            if frame.len() < 14 {
                frame.resize(14, 0); // the kernel refuses shorter test frames
            }
            let p = fp.program(prog).unwrap();
            let out = run_xdp(p, &frame, 1).expect("BPF_PROG_TEST_RUN");
            if matches!(out.verdict, XdpVerdict::Aborted | XdpVerdict::Unknown(_)) {
                aborted.push((prog, frame));
            }
        }
        aborted
    });
    assert!(
        aborted.is_empty(),
        "aborted on {} frames, first: {:02x?}",
        aborted.len(),
        aborted.first()
    );
    let after = rig.fp.counters().unwrap().snapshot().unwrap();
    let delta = |c| after.total(c) - before.total(c);
    let verdicts: u64 = [
        Counter::VerdictPass,
        Counter::VerdictDrop,
        Counter::VerdictRedirect,
        Counter::VerdictPunt,
        Counter::VerdictTx,
        Counter::VerdictAborted,
    ]
    .into_iter()
    .map(delta)
    .sum();
    let seen = delta(Counter::AccessRxPackets) + delta(Counter::CoreRxPackets);
    assert_eq!(seen, runs, "every frame seen");
    assert_eq!(verdicts, runs, "exactly one verdict per frame");
    let drops: u64 = DropReason::ALL
        .iter()
        .map(|&r| after.drops(r) - before.drops(r))
        .sum();
    assert_eq!(
        drops,
        delta(Counter::VerdictDrop),
        "every drop has a reason"
    );
    assert!(
        delta(Counter::VerdictDrop) > runs / 10,
        "mutations are mostly caught"
    );
    assert!(
        delta(Counter::VerdictRedirect) > 0,
        "and some frames survive intact"
    );
}

/// The route caches (IPv4, and IPv6 for VXLAN's outer header): an established flow's
/// packets skip `bpf_fib_lookup`; vgd's route watch
/// (rtnetlink notifications bump the route generation) makes neighbour and route changes
/// reach them; a packet longer than any the cached route was looked up for is looked up
/// again, so the egress MTU still applies.
#[test]
fn route_cache_follows_neighbour_route_and_mtu_changes() {
    use std::time::Duration;
    use vg::fastpath::fib::RouteWatch;

    let mut rig = rig("natfib");
    let home = HOMES[0];
    let wrap = |inner: Vec<u8>| home.encap([0; 6]).encapsulate(&inner).unwrap();
    let sized = |len: usize| {
        wrap(frames::udp(
            HOST_MAC,
            [0; 6],
            (HOST, 41000),
            (INTERNET, 53),
            &vec![7; len],
        ))
    };
    let small = sized(4);
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;

    // Established: after the first packet on each CPU, no more lookups.
    let before = rig.counter(Counter::FibLookup);
    for _ in 0..50 {
        let (v, out) = rig.up(&small);
        assert_eq!(v, XdpVerdict::Redirect);
        assert_eq!(out[0..6], NEXT_HOP_MAC);
    }
    let lookups = rig.counter(Counter::FibLookup) - before;
    assert!(
        (1..=cpus).contains(&lookups),
        "50 packets of one flow did {lookups} FIB lookups on {cpus} CPUs"
    );

    // The watch, in the vG's namespace; its timer is out of the way (an hour), so only
    // notifications can bump the generation from here on (after its first tick).
    let generation = rig.fp.take_fib_generation().unwrap();
    let watch = rig.vg.run(RouteWatch::open).expect("rtnetlink socket");
    let shutdown = tokio_util::sync::CancellationToken::new();
    let stop = shutdown.clone();
    let watcher = std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(watch.run(generation, Duration::from_secs(3600), stop));
    });
    let dmac_of = |rig: &mut Rig, frame: &[u8]| {
        let (v, out) = rig.up(frame);
        (v == XdpVerdict::Redirect).then(|| <[u8; 6]>::try_from(&out[0..6]).unwrap())
    };

    // The next hop's MAC changes.
    let moved = [0x02, 0x99, 0, 0, 0, 0x12];
    rig.vg
        .neigh_permanent(&NEXT_HOP.to_string(), "02:99:00:00:00:12", "core0");
    nerg_tests::wait_until(
        "the new neighbour MAC in forwarded frames",
        Duration::from_secs(5),
        || dmac_of(&mut rig, &small) == Some(moved),
    );

    // The default route moves to another next hop.
    let other_mac = [0x02, 0x99, 0, 0, 0, 0x04];
    rig.vg
        .neigh_permanent("10.99.0.4", "02:99:00:00:00:04", "core0");
    rig.vg.ip(&[
        "route",
        "replace",
        "default",
        "via",
        "10.99.0.4",
        "mtu",
        "lock",
        "1000",
    ]);
    nerg_tests::wait_until(
        "frames via the new default route",
        Duration::from_secs(5),
        || dmac_of(&mut rig, &small) == Some(other_mac),
    );

    // (A forwarded packet meets a route's MTU only when it is locked.)
    // The cached route was looked up for a short packet: one beyond the route's MTU (1000)
    // is looked up, and refused; one within it is looked up once, then cached.
    let before = rig.drops(DropReason::FragNeeded);
    assert_eq!(rig.up(&sized(1200)).0, XdpVerdict::Drop);
    assert_eq!(rig.drops(DropReason::FragNeeded) - before, 1);
    let mid = sized(900);
    assert_eq!(dmac_of(&mut rig, &mid), Some(other_mac));
    let before = rig.counter(Counter::FibLookup);
    for _ in 0..20 {
        assert_eq!(dmac_of(&mut rig, &mid), Some(other_mac));
        assert_eq!(dmac_of(&mut rig, &small), Some(other_mac));
    }
    // Without the cache: 40. A CPU other than the one that ran `mid` may look up twice
    // (its slot still holds the old generation).
    let lookups = rig.counter(Counter::FibLookup) - before;
    assert!(
        lookups <= 2 * (cpus - 1),
        "{lookups} lookups for cached routes on {cpus} CPUs"
    );

    // IPv6 (the outer header of VXLAN over IPv6): the BRG's VTEP moves to another MAC.
    let v6 = HOMES[3];
    assert_eq!(v6.lsl, lsl_kind::VXLAN6);
    let up6 = v6
        .encap([0; 6])
        .encapsulate(&udp_up(41001, INTERNET, 53))
        .unwrap();
    assert_eq!(rig.up(&up6).0, XdpVerdict::Redirect);
    let (public, port) = rig.public_of(v6.id, 41001, 17);
    let down6 = frames::udp(
        NEXT_HOP_MAC,
        rig.core_mac,
        (INTERNET, 53),
        (public, port),
        b"pong",
    );
    let outer_dmac = |rig: &mut Rig| {
        let (v, out) = rig.down(&down6);
        (v == XdpVerdict::Redirect).then(|| <[u8; 6]>::try_from(&out[0..6]).unwrap())
    };
    assert_eq!(outer_dmac(&mut rig), Some(BRG_VTEP_MAC));
    let before = rig.counter(Counter::FibLookup);
    for _ in 0..20 {
        assert_eq!(outer_dmac(&mut rig), Some(BRG_VTEP_MAC));
    }
    let lookups = rig.counter(Counter::FibLookup) - before;
    assert!(
        lookups < cpus,
        "{lookups} IPv6 lookups for a cached route on {cpus} CPUs"
    );
    rig.vg
        .neigh_permanent(&BRG_VTEP6.to_string(), "02:b0:00:00:00:22", "acc0");
    nerg_tests::wait_until(
        "the BRG VTEP's new MAC in VXLAN/IPv6 frames",
        Duration::from_secs(5),
        || outer_dmac(&mut rig) == Some([0x02, 0xb0, 0, 0, 0, 0x22]),
    );

    shutdown.cancel();
    watcher.join().unwrap();
}

/// vgd keys the route cache by destination alone while its namespace's routing depends on
/// nothing else, so that homes with different public addresses share one entry per
/// destination; a policy rule or a multipath route brings the source back into the key, and
/// removing it takes it out again. Seen through the lookups a second home's packet costs
/// (0: it hit the first home's entry, 1: it looked up), on one CPU (the route cache is per
/// CPU; the test pins itself, and the program runs inherit it).
#[test]
fn route_cache_keys_by_destination_unless_the_routing_depends_on_the_source() {
    use std::time::Duration;
    use vg::fastpath::fib::RouteWatch;

    let mut cpu0 = nix::sched::CpuSet::new();
    cpu0.set(0).unwrap();
    nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &cpu0).unwrap();
    let mut rig = rig("natfibkey");
    let (a, b) = (HOMES[0], HOMES[2]);
    assert_ne!(a.public, b.public);
    let generation = rig.fp.take_fib_generation().unwrap();
    let watch = rig.vg.run(RouteWatch::open).expect("rtnetlink socket");
    let shutdown = tokio_util::sync::CancellationToken::new();
    let stop = shutdown.clone();
    let watcher = std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(watch.run(generation, Duration::from_secs(3600), stop));
    });
    // What home b's first packet to a fresh destination costs after home a's.
    let mut fresh = 0u8;
    let mut second_home_lookups = |rig: &mut Rig| {
        fresh = fresh.wrapping_add(1);
        let dst = Ipv4Addr::new(203, 0, 113, 100 + fresh % 100);
        for home in [a, b] {
            let frame = home
                .encap([0; 6])
                .encapsulate(&udp_up(42000 + u16::from(fresh), dst, 53))
                .unwrap();
            let before = rig.counter(Counter::FibLookup);
            assert_eq!(rig.up(&frame).0, XdpVerdict::Redirect, "to {dst}");
            if home.id == b.id {
                return rig.counter(Counter::FibLookup) - before;
            }
        }
        unreachable!()
    };
    let mut shared = |rig: &mut Rig, what: &str, want: u64| {
        nerg_tests::wait_until(what, Duration::from_secs(5), || {
            second_home_lookups(rig) == want
        });
    };
    shared(&mut rig, "one entry per destination for every home", 0);

    rig.vg.ip(&[
        "rule",
        "add",
        "from",
        "192.0.2.1",
        "lookup",
        "main",
        "priority",
        "100",
    ]);
    shared(&mut rig, "a policy rule to key by source again", 1);
    rig.vg.ip(&[
        "rule",
        "del",
        "from",
        "192.0.2.1",
        "lookup",
        "main",
        "priority",
        "100",
    ]);
    shared(
        &mut rig,
        "the rule's removal to key by destination again",
        0,
    );

    rig.vg
        .neigh_permanent("10.99.0.4", "02:99:00:00:00:04", "core0");
    rig.vg.ip(&[
        "route",
        "add",
        "198.18.7.0/24",
        "nexthop",
        "via",
        "10.99.0.2",
        "nexthop",
        "via",
        "10.99.0.4",
    ]);
    shared(&mut rig, "a multipath route to key by source again", 1);
    rig.vg.ip(&["route", "del", "198.18.7.0/24"]);
    shared(&mut rig, "its removal to key by destination again", 0);

    shutdown.cancel();
    watcher.join().unwrap();
}

/// A removed home's traffic counters are zeroed, so that a home created later under the same
/// id does not start with them (its per-subscriber series start from zero).
#[test]
fn a_removed_homes_counters_are_zeroed() {
    use vg::fastpath::maps::PinnedMaps;
    let mut rig = rig("natsubctr");
    let home = HOMES[1];
    let frame = home
        .encap([0; 6])
        .encapsulate(&udp_up(43500, INTERNET, 53))
        .unwrap();
    for _ in 0..3 {
        assert_eq!(rig.up(&frame).0, XdpVerdict::Redirect);
    }
    let before = rig.fp.maps().sub_counters(home.id).unwrap();
    assert_eq!(before.up_packets, 3);
    let mut maps = PinnedMaps::open(rig.pins.path()).unwrap();
    maps.remove_subscriber(home.id).unwrap();
    let after = rig.fp.maps().sub_counters(home.id).unwrap();
    assert_eq!(after, nerg_abi::SubCounters::default());
    assert_eq!(rig.up(&frame).0, XdpVerdict::Drop, "the home is gone");
}
