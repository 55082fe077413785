//! NAT in the vG's XDP programs under BPF_PROG_TEST_RUN, with exact expected output bytes.
//!
//! The programs run inside a test namespace whose routes and (permanent) neighbours make
//! `bpf_fib_lookup` deterministic: a default route via 10.99.0.2 on `core0`, the BRG's VTEP
//! 10.0.0.2 on `acc0`, a blackhole and a next hop without a neighbour entry. Frames are built
//! with smoltcp and wrapped by our own `lsl` codecs; every expected frame is built the same
//! way with complete checksums, so a byte-exact match proves the incremental updates.

use std::net::{IpAddr, Ipv4Addr};

use aya::maps::{MapData, RingBuf};
use lsl::{Encap, Vid, Vni, VxlanEncap, smoltcp::wire::EthernetAddress};
use nerg_abi::{
    Counter, DropReason, Host, HostKey, NatFwdKey, NatRev, NatRevKey, PuntReason, Subscriber,
    SubscriberId, host_flags, lsl_kind, program_names, sub_flags, tcp_seen,
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
    rig::{self, RigHome},
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
        nerg_tests::addrs::encap(self.lsl, self.s_vid, self.c_vid, self.vni, access_mac)
    }

    fn brg_vtep(&self) -> IpAddr {
        nerg_tests::addrs::vteps(self.lsl).0
    }

    fn vg_vtep(&self) -> IpAddr {
        nerg_tests::addrs::vteps(self.lsl).1
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
        configure(&mut fp, pins.path(), access_mac);
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

/// The fixture's homes in the maps, written as vgd writes them ([`nerg_tests::rig`]), and one
/// that cannot map: every port of the full home's block is taken already.
fn configure(fp: &mut FastPath, pins: &std::path::Path, access_mac: [u8; 6]) {
    let config = rig::config();
    let access = if_index("acc0").unwrap();
    let core = if_index("core0").unwrap();
    rig::configure(fp, &config, (access, access_mac), Some(core)).unwrap();
    let mut homes: Vec<RigHome> = HOMES
        .iter()
        .map(|h| {
            RigHome::new(h.id, rig::lsl_text(h.lsl, h.s_vid, h.c_vid, h.vni))
                .host(HOST, HOST_MAC)
                .nat(h.public, &[h.block])
        })
        .collect();
    homes.push(RigHome::new(NO_NAT_HOME, "vlan:104").host(HOST, HOST_MAC));
    homes.push(
        RigHome::new(FULL_HOME, "vlan:105")
            .host(HOST, HOST_MAC)
            .nat(PUBLIC2, &[60000]),
    );
    rig::write_homes(pins, &config, TEST_IFINDEX, &homes).unwrap();
    let mut maps = fp.maps();
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

    /// Gives home `sub` the static host [`HOST`] with `mac` (vgd raises the home's host
    /// generation when the MAC changes).
    fn set_static_host(&mut self, sub: SubscriberId, mac: [u8; 6]) {
        let key = HostKey { sub, ip: raw(HOST) };
        let host = Host {
            mac,
            flags: host_flags::STATIC,
            _pad: 0,
        };
        self.fp.maps().insert_host(key, host).unwrap();
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

fn port_forward(
    rig: &Rig,
    sub: SubscriberId,
    public: (Ipv4Addr, u16),
    private: (Ipv4Addr, u16),
    proto: u8,
) {
    nerg_tests::nat::port_forward(rig.pins.path(), sub, public, private, proto);
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

mod mappings;
mod qos;
mod route_cache;
mod translation;
