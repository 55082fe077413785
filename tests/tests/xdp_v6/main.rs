//! IPv6 in the vG's XDP programs (issue 18) under BPF_PROG_TEST_RUN, with exact expected
//! output bytes: routed both ways for every LSL kind, RA guard and the punts, anti-spoofing
//! (SAVI), neighbour misses and their bound, delegated prefixes, home-to-home, extension
//! headers and fragments, Packet Too Big both ways, the tier, mutated frames.
//!
//! The vG namespace routes IPv6 like `xdp_nat`'s routes IPv4: a default route via
//! [`NEXT_HOP6`] on `core0` (a permanent neighbour), a route with a 1280-byte MTU for
//! [`SMALL_MTU_NET`], forwarding on. Homes are written through the rig, as vgd writes them,
//! their prefixes and neighbours through the control plane's table interface.

use std::net::{IpAddr, Ipv6Addr};

use aya::maps::{MapData, RingBuf};
use ipnet::Ipv6Net;
use lsl::{Encap, Vni, VxlanEncap, smoltcp::wire::EthernetAddress};
use nerg_abi::{Counter, DropReason, PuntHeader, SubscriberId, lsl_kind, program_names};
use nerg_tests::addrs::{
    BRG_VTEP, BRG_VTEP_MAC, BRG_VTEP6, CORE6, HOST_MAC, INTERNET6, NEXT_HOP, NEXT_HOP6,
    NEXT_HOP6_MAC, VG_VTEP, VG_VTEP6,
};
use nerg_tests::{
    Netns, PinDir, frames,
    netns::veth,
    require_root,
    rig::{self, RigHome},
};
use vg::fastpath::{
    FastPath, if_index,
    test_run::{XdpVerdict, run_xdp},
};

mod paths;
mod punts;

const TEST_IFINDEX: u32 = 1;
/// A server on the internet.
const INET6: Ipv6Addr = INTERNET6;
/// A network behind a 1280-byte MTU route.
const SMALL_MTU_NET: &str = "2001:db8:5555::/48";
const SMALL_MTU_HOST: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x5555, 0, 0, 0, 0, 1);
/// The router in each home that DHCPv6-PD delegated a prefix to.
const ROUTER_MAC: [u8; 6] = [0x02, 0x22, 0, 0, 0, 0x20];

fn mac_text(m: [u8; 6]) -> String {
    m.map(|b| format!("{b:02x}")).join(":")
}

fn gw_mac(sub: SubscriberId) -> [u8; 6] {
    [0x02, 0x4e, 0x47, 0, 0, sub as u8]
}

/// One home of the fixture: 2001:db8:0:N00::/56, its LAN the first /64, a /60 delegated.
#[derive(Clone, Copy)]
struct Home {
    name: &'static str,
    id: SubscriberId,
    lsl: u8,
    s_vid: u16,
    c_vid: u16,
    vni: u32,
}

const HOMES: [Home; 4] = [
    Home {
        name: "802.1Q",
        id: 1,
        lsl: lsl_kind::DOT1Q,
        s_vid: 0,
        c_vid: 100,
        vni: 0,
    },
    Home {
        name: "QinQ",
        id: 2,
        lsl: lsl_kind::QINQ,
        s_vid: 10,
        c_vid: 100,
        vni: 0,
    },
    Home {
        name: "VXLAN",
        id: 3,
        lsl: lsl_kind::VXLAN4,
        s_vid: 0,
        c_vid: 0,
        vni: 5001,
    },
    Home {
        name: "VXLAN/IPv6",
        id: 6,
        lsl: lsl_kind::VXLAN6,
        s_vid: 0,
        c_vid: 0,
        vni: 6001,
    },
];

impl Home {
    fn seg(&self) -> u16 {
        (self.id as u16) << 8
    }
    fn lan(&self) -> Ipv6Net {
        Ipv6Net::new(Ipv6Addr::new(0x2001, 0xdb8, 0, self.seg(), 0, 0, 0, 0), 64).unwrap()
    }
    fn gateway(&self) -> Ipv6Addr {
        Ipv6Addr::new(0x2001, 0xdb8, 0, self.seg(), 0, 0, 0, 1)
    }
    /// The host ([`HOST_MAC`]) on the LAN.
    fn host(&self) -> Ipv6Addr {
        Ipv6Addr::new(0x2001, 0xdb8, 0, self.seg(), 0, 0, 0, 0x10)
    }
    /// The router ([`ROUTER_MAC`]) on the LAN.
    fn router(&self) -> Ipv6Addr {
        Ipv6Addr::new(0x2001, 0xdb8, 0, self.seg(), 0, 0, 0, 0x20)
    }
    fn delegated(&self) -> Ipv6Net {
        Ipv6Net::new(
            Ipv6Addr::new(0x2001, 0xdb8, 0, self.seg() | 0x10, 0, 0, 0, 0),
            60,
        )
        .unwrap()
    }
    /// An address inside the delegated prefix (behind the router).
    fn behind_router(&self) -> Ipv6Addr {
        Ipv6Addr::new(0x2001, 0xdb8, 0, self.seg() | 0x10, 0, 0, 0, 7)
    }
    /// The gateway's link-local (modified EUI-64 of its MAC).
    fn gateway_ll(&self) -> Ipv6Addr {
        let m = gw_mac(self.id);
        Ipv6Addr::from([
            0xfe,
            0x80,
            0,
            0,
            0,
            0,
            0,
            0,
            m[0] ^ 2,
            m[1],
            m[2],
            0xff,
            0xfe,
            m[3],
            m[4],
            m[5],
        ])
    }

    fn rig_home(&self) -> RigHome {
        RigHome::new(
            self.id,
            rig::lsl_text(self.lsl, self.s_vid, self.c_vid, self.vni),
        )
        .ipv6(self.lan(), self.gateway())
        .delegated(self.delegated(), self.router())
        .neighbour(self.host(), HOST_MAC)
        .neighbour(self.router(), ROUTER_MAC)
    }

    fn encap(&self, access_mac: [u8; 6]) -> Encap {
        nerg_tests::addrs::encap(self.lsl, self.s_vid, self.c_vid, self.vni, access_mac)
    }

    fn brg_vtep(&self) -> IpAddr {
        nerg_tests::addrs::vteps(self.lsl).0
    }

    fn vg_vtep(&self) -> IpAddr {
        nerg_tests::addrs::vteps(self.lsl).1
    }

    /// The frame the vG sends this home for `inner`, given the output (for the VXLAN source
    /// port the program chose).
    fn down_frame(&self, access_mac: [u8; 6], out: &[u8], inner: &[u8]) -> Vec<u8> {
        let sport = match self.lsl {
            lsl_kind::VXLAN4 => u16::from_be_bytes([out[34], out[35]]),
            lsl_kind::VXLAN6 => u16::from_be_bytes([out[54], out[55]]),
            _ => 0,
        };
        match self.encap(access_mac) {
            Encap::Vxlan(_) => {
                let mut e = VxlanEncap::new(
                    Vni::new(self.vni).unwrap(),
                    self.vg_vtep(),
                    self.brg_vtep(),
                    EthernetAddress(access_mac),
                    EthernetAddress(BRG_VTEP_MAC),
                );
                e.src_port = Some(sport);
                e.udp_checksum = self.lsl == lsl_kind::VXLAN6;
                Encap::Vxlan(e).encapsulate(inner).unwrap()
            }
            other => other.encapsulate(inner).unwrap(),
        }
    }
}

/// The namespaces and the loaded fast path.
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

fn rig(tag: &str, extra: &[RigHome]) -> Rig {
    require_root();
    let vg = Netns::new(&format!("{tag}-vg"));
    let brg = Netns::new(&format!("{tag}-brg"));
    let inet = Netns::new(&format!("{tag}-inet"));
    veth(&vg, "acc0", &brg, "lsl0");
    veth(&vg, "core0", &inet, "up0");
    vg.addr_add("acc0", &format!("{VG_VTEP}/24"));
    vg.addr_add_nodad("acc0", &format!("{VG_VTEP6}/64"));
    vg.neigh_permanent(&BRG_VTEP6.to_string(), "02:b0:00:00:00:02", "acc0");
    vg.neigh_permanent(&BRG_VTEP.to_string(), "02:b0:00:00:00:02", "acc0");
    vg.addr_add("core0", "10.99.0.1/24");
    vg.neigh_permanent(&NEXT_HOP.to_string(), "02:99:00:00:00:02", "core0");
    vg.addr_add_nodad("core0", CORE6);
    vg.neigh_permanent(&NEXT_HOP6.to_string(), &mac_text(NEXT_HOP6_MAC), "core0");
    vg.ip(&[
        "-6",
        "route",
        "add",
        "default",
        "via",
        &NEXT_HOP6.to_string(),
    ]);
    vg.ip(&[
        "-6",
        "route",
        "add",
        SMALL_MTU_NET,
        "via",
        &NEXT_HOP6.to_string(),
        // Locked: an IPv6 route's MTU only binds lookups when it is (ip6_mtu_from_fib6).
        "mtu",
        "lock",
        "1280",
    ]);
    // bpf_fib_lookup for IPv6 wants forwarding on (globally).
    vg.exec("sysctl", &["-qw", "net.ipv6.conf.all.forwarding=1"]);
    vg.exec("sysctl", &["-qw", "net.ipv4.conf.all.forwarding=1"]);
    let access_mac = vg.mac("acc0");
    let core_mac = vg.mac("core0");
    let pins = PinDir::new(tag);
    let (fp, ring) = vg.run(|| {
        let mut fp = FastPath::load(pins.path()).expect("the vG object loads and verifies");
        let config = rig::config();
        let access = if_index("acc0").unwrap();
        let core = if_index("core0").unwrap();
        rig::configure(&mut fp, &config, (access, access_mac), Some(core)).unwrap();
        let mut homes: Vec<RigHome> = HOMES.iter().map(Home::rig_home).collect();
        homes.extend(extra.iter().cloned());
        rig::write_homes(pins.path(), &config, TEST_IFINDEX, &homes).unwrap();
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

impl Rig {
    fn run(&mut self, prog: &'static str, input: &[u8]) -> (XdpVerdict, Vec<u8>) {
        let fp = &mut self.fp;
        let out = self.vg.run(|| {
            let p = fp.program(prog).unwrap();
            run_xdp(p, input, 1).expect("BPF_PROG_TEST_RUN")
        });
        (out.verdict, out.output)
    }

    fn up(&mut self, home: &Home, inner: &[u8]) -> (XdpVerdict, Vec<u8>) {
        let frame = home.encap(self.access_mac).encapsulate(inner).unwrap();
        self.run(program_names::ACCESS, &frame)
    }

    fn down(&mut self, input: &[u8]) -> (XdpVerdict, Vec<u8>) {
        self.run(program_names::CORE, input)
    }

    fn counter(&self, c: Counter) -> u64 {
        self.fp.counters().unwrap().snapshot().unwrap().total(c)
    }

    fn drops(&self, r: DropReason) -> u64 {
        self.fp.counters().unwrap().snapshot().unwrap().drops(r)
    }

    /// The punt records since the last call: (header, frame).
    fn punts(&mut self) -> Vec<(PuntHeader, Vec<u8>)> {
        let mut out = Vec::new();
        while let Some(item) = self.ring.next() {
            let p = vg::slowpath::parse_record(&item).expect("a well-formed punt record");
            out.push((p.header, p.frame.clone()));
        }
        out
    }

    /// The frame as it leaves towards the internet: from core0 to the next hop.
    fn upstream_out(&self, inner: &[u8]) -> Vec<u8> {
        let mut f = inner.to_vec();
        f[0..6].copy_from_slice(&NEXT_HOP6_MAC);
        f[6..12].copy_from_slice(&self.core_mac);
        f
    }

    /// A frame from the internet as it reaches core0.
    fn arriving_from_inet(&self, frame: &[u8]) -> Vec<u8> {
        let mut f = frame.to_vec();
        f[0..6].copy_from_slice(&self.core_mac);
        f[6..12].copy_from_slice(&NEXT_HOP6_MAC);
        f
    }
}

/// A UDP datagram from a home's host to `dst` (hop limit 64).
fn udp_up(home: &Home, src: Ipv6Addr, dst: Ipv6Addr, mac: [u8; 6]) -> Vec<u8> {
    frames::udp6(mac, gw_mac(home.id), (src, 40000), (dst, 53), b"ping", 64)
}

/// A UDP datagram from the internet to `dst` (hop limit 64).
fn udp_down(rig: &Rig, dst: Ipv6Addr, hop_limit: u8) -> Vec<u8> {
    rig.arriving_from_inet(&frames::udp6(
        [0; 6],
        [0; 6],
        (INET6, 53),
        (dst, 40000),
        b"pong",
        hop_limit,
    ))
}

/// `frame` with its hop limit set to `h` (no checksum covers it).
fn with_hop_limit(frame: &[u8], h: u8) -> Vec<u8> {
    let mut f = frame.to_vec();
    f[14 + 7] = h;
    f
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

mod tables;
