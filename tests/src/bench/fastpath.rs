//! Benchmark 1: the fast path's cost per packet under `BPF_PROG_TEST_RUN`.
//!
//! How it is measured: the vG's programs rewrite the frame they run on (they strip or push
//! the LSL encapsulation with `bpf_xdp_adjust_head`), and the kernel does not reset the
//! frame between the repetitions of one test run, so a large `repeat` would time the second
//! and later runs on an already-translated frame (an unknown-LSL drop). Each packet is
//! therefore one `BPF_PROG_TEST_RUN` with `repeat = 1` on a fresh copy; the kernel times
//! that run alone (its clock reads and bottom-half toggling included, the syscall and copies
//! excluded). That fixed overhead is measured the same way with an `XDP_PASS` program and
//! subtracted from every figure (`xdp_test_run_overhead_ns` reports it). The baseline's
//! frame is idempotent, so it is also timed the classic way with a large `repeat`
//! (`xdp_fib_baseline_repeat_ns_per_pkt`), which cross-checks the method.
//!
//! Each sample interleaves every case, so the ratios compare like with like on a noisy
//! machine; each figure is the median over samples.
//!
//! Set-up: one namespace with the access and core veths, a default route via a permanent
//! neighbour (so `bpf_fib_lookup` succeeds), the vG's maps written directly: homes on
//! 802.1Q, QinQ, VXLAN and VXLAN over IPv6 with one known host each, and (for new flows) homes with 32 port
//! blocks each on their own public addresses, filled to at most a quarter.

use std::net::{IpAddr, Ipv4Addr};

use anyhow::{Context as _, bail};
use aya::{
    Ebpf,
    maps::{DevMapHash, PerCpuArray},
    programs::Xdp,
};
use lsl::{Encap, Vid, Vni, VxlanEncap, smoltcp::wire::EthernetAddress, wire::vlan::Tpid};
use nerg_abi::{
    MAX_BLOCKS, SubscriberId,
    bench::{BenchCounter, names},
    lsl_kind, program_names,
};
use vg::fastpath::{
    FastPath, if_index,
    test_run::{XdpVerdict, run_xdp},
};

use super::{BENCH_OBJECT, Effort, Summary, median};
use crate::addrs::{
    BLOCK_SIZE, BRG_VTEP, BRG_VTEP_MAC, BRG_VTEP6, CORE6, HOST, HOST_MAC, INTERNET, INTERNET6,
    NEXT_HOP, NEXT_HOP_MAC, NEXT_HOP6, NEXT_HOP6_MAC, VG_VTEP, VG_VTEP6,
};
use crate::{
    Netns, PinDir, frames,
    netns::veth,
    rig::{self, RigHome},
};

/// `BPF_PROG_TEST_RUN`'s ingress interface (loopback) when no context is passed: the VLAN
/// LSL table is keyed by it.
const TEST_IFINDEX: u32 = 1;
const PUBLIC: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);
/// First port of the first block (ports below are not handed out).
const FIRST_PORT: u16 = 1024;
/// Homes for the new-flow case, each with its own public address and 32 blocks.
const NEW_FLOW_HOMES: u32 = 64;
/// Their ids start here (the established-flow homes are 1..=4).
const NEW_FLOW_FIRST_ID: SubscriberId = 100;
/// The most new mappings per new-flow home: a quarter of its 32 x 512 ports.
const NEW_FLOWS_PER_HOME: u32 = (MAX_BLOCKS as u32 * BLOCK_SIZE as u32) / 4;
/// Payload of the UDP test frames (a 64-byte inner frame with the headers).
const PAYLOAD: &[u8] = &[0x5a; 18];
/// The QinQ home's IPv6 LAN, its gateway's address on it, and its host ([`HOST_MAC`], an
/// established neighbour).
const LAN6: &str = "2001:db8:0:200::/64";
const GW6: std::net::Ipv6Addr = std::net::Ipv6Addr::new(0x2001, 0xdb8, 0, 0x200, 0, 0, 0, 1);
const HOST6: std::net::Ipv6Addr = std::net::Ipv6Addr::new(0x2001, 0xdb8, 0, 0x200, 0, 0, 0, 0x10);

fn raw(ip: Ipv4Addr) -> u32 {
    u32::from_ne_bytes(ip.octets())
}

/// One home with an established flow.
#[derive(Clone, Copy)]
struct Home {
    id: SubscriberId,
    kind: u8,
    s_vid: u16,
    c_vid: u16,
    vni: u32,
    block: u16,
}

const HOMES: [Home; 4] = [
    Home {
        id: 1,
        kind: lsl_kind::DOT1Q,
        s_vid: 0,
        c_vid: 100,
        vni: 0,
        block: 39936,
    },
    Home {
        id: 2,
        kind: lsl_kind::QINQ,
        s_vid: 10,
        c_vid: 100,
        vni: 0,
        block: 40448,
    },
    Home {
        id: 3,
        kind: lsl_kind::VXLAN4,
        s_vid: 0,
        c_vid: 0,
        vni: 5001,
        block: 40960,
    },
    Home {
        id: 4,
        kind: lsl_kind::VXLAN6,
        s_vid: 0,
        c_vid: 0,
        vni: 5002,
        block: 41472,
    },
];

fn vid(v: u16) -> Vid {
    Vid::new(v).expect("valid VID")
}

fn encap(kind: u8, s_vid: u16, c_vid: u16, vni: u32, access_mac: [u8; 6]) -> Encap {
    match kind {
        lsl_kind::DOT1Q => Encap::Dot1q { c_vid: vid(c_vid) },
        lsl_kind::QINQ => Encap::QinQ {
            s_tpid: Tpid::STag,
            s_vid: vid(s_vid),
            c_vid: vid(c_vid),
        },
        lsl_kind::VXLAN6 => Encap::Vxlan(VxlanEncap::new(
            Vni::new(vni).expect("valid VNI"),
            IpAddr::V6(BRG_VTEP6),
            IpAddr::V6(VG_VTEP6),
            EthernetAddress(BRG_VTEP_MAC),
            EthernetAddress(access_mac),
        )),
        _ => Encap::Vxlan(VxlanEncap::new(
            Vni::new(vni).expect("valid VNI"),
            IpAddr::V4(BRG_VTEP),
            IpAddr::V4(VG_VTEP),
            EthernetAddress(BRG_VTEP_MAC),
            EthernetAddress(access_mac),
        )),
    }
}

/// The namespace, the loaded vG and the baseline programs.
struct Rig {
    // Drop order: programs, namespaces, pins.
    fp: FastPath,
    bench: Ebpf,
    vg: Netns,
    _peer: Netns,
    _pins: PinDir,
    access_mac: [u8; 6],
    core_mac: [u8; 6],
}

fn rig() -> anyhow::Result<Rig> {
    if BENCH_OBJECT.is_empty() {
        bail!(
            "nerg-bench was built without its eBPF programs (AYA_BUILD_SKIP): rebuild without it"
        );
    }
    let vg = Netns::new("bfp-vg");
    let peer = Netns::new("bfp-peer");
    veth(&vg, "acc0", &peer, "lsl0");
    veth(&vg, "core0", &peer, "up0");
    vg.addr_add("acc0", &format!("{VG_VTEP}/24"));
    vg.addr_add("core0", "10.99.0.1/24");
    vg.addr_add_nodad("acc0", &format!("{VG_VTEP6}/64"));
    // bpf_fib_lookup for IPv6 wants forwarding on (globally, unlike IPv4).
    vg.exec("sysctl", &["-qw", "net.ipv6.conf.all.forwarding=1"]);
    for (ip, mac, dev) in [
        (IpAddr::V4(BRG_VTEP), "02:b0:00:00:00:02", "acc0"),
        (IpAddr::V6(BRG_VTEP6), "02:b0:00:00:00:02", "acc0"),
        (IpAddr::V4(NEXT_HOP), "02:99:00:00:00:02", "core0"),
    ] {
        vg.neigh_permanent(&ip.to_string(), mac, dev);
    }
    vg.route_add("default", &NEXT_HOP.to_string());
    vg.exec("sysctl", &["-qw", "net.ipv4.conf.all.forwarding=1"]);
    vg.addr_add_nodad("core0", CORE6);
    let next_hop6_mac = NEXT_HOP6_MAC.map(|b| format!("{b:02x}")).join(":");
    vg.neigh_permanent(&NEXT_HOP6.to_string(), &next_hop6_mac, "core0");
    vg.ip(&[
        "-6",
        "route",
        "add",
        "default",
        "via",
        &NEXT_HOP6.to_string(),
    ]);
    let access_mac = vg.mac("acc0");
    let core_mac = vg.mac("core0");
    let pins = PinDir::new("bfp");
    let (fp, bench) = vg.run(|| -> anyhow::Result<_> {
        let mut fp = FastPath::load(pins.path()).context("loading the vG's fast path")?;
        configure(&mut fp, pins.path(), access_mac)?;
        let mut bench = Ebpf::load(BENCH_OBJECT).context("loading the bench eBPF object")?;
        for name in [names::FIB, names::PASS] {
            let prog: &mut Xdp = bench
                .program_mut(name)
                .with_context(|| format!("program {name} missing"))?
                .try_into()?;
            prog.load().with_context(|| format!("verifying {name}"))?;
        }
        let core = if_index("core0")?;
        let mut devmap = DevMapHash::try_from(
            bench
                .map_mut(names::DEVMAP)
                .context("BENCH_DEVMAP missing")?,
        )?;
        devmap.insert(core, core, None, 0)?;
        Ok((fp, bench))
    })?;
    Ok(Rig {
        fp,
        bench,
        vg,
        _peer: peer,
        _pins: pins,
        access_mac,
        core_mac,
    })
}

/// The bench's homes, written as vgd writes them ([`crate::rig`]): the four of [`HOMES`],
/// and [`NEW_FLOW_HOMES`] QinQ homes with every block they can hold, for new mappings.
fn configure(fp: &mut FastPath, pins: &std::path::Path, access_mac: [u8; 6]) -> anyhow::Result<()> {
    let config = rig::config();
    let access = if_index("acc0")?;
    let core = if_index("core0")?;
    rig::configure(fp, &config, (access, access_mac), Some(core))?;
    let mut homes: Vec<RigHome> = HOMES
        .iter()
        .map(|h| {
            let home = RigHome::new(h.id, rig::lsl_text(h.kind, h.s_vid, h.c_vid, h.vni))
                .host(HOST, HOST_MAC)
                .nat(PUBLIC, &[h.block]);
            // The QinQ home is dual-stack: its IPv6 figures compare with its NAT figures.
            if h.kind == lsl_kind::QINQ {
                home.ipv6(LAN6.parse().expect("a /64"), GW6)
                    .neighbour(HOST6, HOST_MAC)
            } else {
                home
            }
        })
        .collect();
    homes.push(
        RigHome::new(
            POLICED.id,
            rig::lsl_text(POLICED.kind, POLICED.s_vid, POLICED.c_vid, 0),
        )
        .host(HOST, HOST_MAC)
        .nat(PUBLIC, &[POLICED.block])
        .tier("400G", "400G"),
    );
    let firsts: Vec<u16> = (0..MAX_BLOCKS as u16)
        .map(|b| FIRST_PORT + b * BLOCK_SIZE)
        .collect();
    for i in 0..NEW_FLOW_HOMES {
        let lsl = rig::lsl_text(lsl_kind::QINQ, 20, new_flow_cvid(i), 0);
        homes.push(
            RigHome::new(NEW_FLOW_FIRST_ID + i, lsl)
                .host(HOST, HOST_MAC)
                .nat(new_flow_public(i), &firsts),
        );
    }
    rig::write_homes(pins, &config, TEST_IFINDEX, &homes)
}

/// A QinQ home like [`HOMES`]`[1]`, with a speed tier far above what a benchmark sends: what
/// the limiter costs a home under its limit.
const POLICED: Home = Home {
    id: 5,
    kind: lsl_kind::QINQ,
    s_vid: 10,
    c_vid: 105,
    vni: 0,
    block: 41984,
};

fn new_flow_public(i: u32) -> Ipv4Addr {
    Ipv4Addr::new(198, 18, (i / 250) as u8, (i % 250 + 1) as u8)
}

fn new_flow_cvid(i: u32) -> u16 {
    200 + i as u16
}

/// Which program a case runs.
#[derive(Clone, Copy)]
enum Prog {
    Access,
    Core,
    Fib,
    Pass,
}

fn prog<'a>(fp: &'a mut FastPath, bench: &'a mut Ebpf, p: Prog) -> anyhow::Result<&'a mut Xdp> {
    Ok(match p {
        Prog::Access => fp.program(program_names::ACCESS)?,
        Prog::Core => fp.program(program_names::CORE)?,
        Prog::Fib | Prog::Pass => {
            let name = if matches!(p, Prog::Fib) {
                names::FIB
            } else {
                names::PASS
            };
            bench
                .program_mut(name)
                .with_context(|| format!("program {name} missing"))?
                .try_into()?
        }
    })
}

impl Rig {
    /// Mean kernel-timed ns of one run of `p`, over `calls` test runs (one repeat each) on
    /// the frames `frame(i)` yields; every verdict must be `want`.
    fn time(
        &mut self,
        p: Prog,
        calls: u32,
        want: XdpVerdict,
        mut frame: impl FnMut(u32) -> Vec<u8> + Send,
    ) -> anyhow::Result<f64> {
        let prog = prog(&mut self.fp, &mut self.bench, p)?;
        self.vg.run(|| {
            let mut total = 0u128;
            for i in 0..calls {
                let out = run_xdp(prog, &frame(i), 1).context("BPF_PROG_TEST_RUN")?;
                if out.verdict != want {
                    bail!("verdict {:?}, expected {want:?} (call {i})", out.verdict);
                }
                total += out.duration.as_nanos();
            }
            Ok(total as f64 / f64::from(calls))
        })
    }

    /// Kernel-timed mean ns per run with `repeat` repetitions (idempotent frames only).
    fn time_repeat(&mut self, p: Prog, frame: &[u8], repeat: u32) -> anyhow::Result<f64> {
        let prog = prog(&mut self.fp, &mut self.bench, p)?;
        self.vg.run(|| {
            let out = run_xdp(prog, frame, repeat).context("BPF_PROG_TEST_RUN")?;
            Ok(out.duration.as_nanos() as f64)
        })
    }

    fn fwd_failures(&self) -> anyhow::Result<u64> {
        let map = self.bench.map(names::STATS).context("BENCH_STATS")?;
        let stats: PerCpuArray<_, u64> = PerCpuArray::try_from(map)?;
        Ok(stats
            .get(&(BenchCounter::FwdFailed as u32), 0)?
            .iter()
            .sum())
    }
}

/// Runs benchmark 1 and records its figures.
pub fn run(effort: Effort, summary: &mut Summary) -> anyhow::Result<()> {
    let calls: u32 = effort.pick(20_000, 200);
    let repeat: u32 = effort.pick(1_000_000, 1_000);
    let mut rig = rig()?;
    let (access_mac, core_mac) = (rig.access_mac, rig.core_mac);

    let inner_up = frames::udp(HOST_MAC, [0; 6], (HOST, 40000), (INTERNET, 53), PAYLOAD);
    let up = |h: &Home| {
        encap(h.kind, h.s_vid, h.c_vid, h.vni, access_mac)
            .encapsulate(&inner_up)
            .expect("encapsulates")
    };
    let up_frames: Vec<Vec<u8>> = HOMES.iter().map(up).collect();
    let policed = up(&POLICED);
    rig.time(Prog::Access, 1, XdpVerdict::Redirect, |_| policed.clone())?;
    // Establish each home's flow and learn its public port.
    let mut down_frames = Vec::new();
    let mut publics = Vec::new();
    for (h, f) in HOMES.iter().zip(&up_frames) {
        rig.time(Prog::Access, 1, XdpVerdict::Redirect, |_| f.clone())?;
        let m = rig
            .fp
            .maps()
            .nat_mapping(&nerg_abi::NatFwdKey {
                sub: h.id,
                priv_ip: raw(HOST),
                priv_port: 40000u16.to_be(),
                proto: 17,
                _pad: 0,
            })?
            .context("the established flow has no mapping")?;
        let public = Ipv4Addr::from(m.pub_ip.to_ne_bytes());
        publics.push((public, u16::from_be(m.pub_port)));
        down_frames.push(frames::udp(
            NEXT_HOP_MAC,
            core_mac,
            (INTERNET, 53),
            (public, u16::from_be(m.pub_port)),
            PAYLOAD,
        ));
    }
    let baseline = frames::udp(HOST_MAC, core_mac, (HOST, 40000), (INTERNET, 53), PAYLOAD);
    // IPv6, QinQ home, established neighbour: routed up, and down to the host.
    let qinq = &HOMES[1];
    let up6 = encap(qinq.kind, qinq.s_vid, qinq.c_vid, qinq.vni, access_mac)
        .encapsulate(&frames::udp6(
            HOST_MAC,
            [0; 6],
            (HOST6, 40000),
            (INTERNET6, 53),
            PAYLOAD,
            64,
        ))
        .expect("encapsulates");
    let down6 = frames::udp6(
        NEXT_HOP6_MAC,
        core_mac,
        (INTERNET6, 53),
        (HOST6, 40000),
        PAYLOAD,
        64,
    );
    // Hairpin: the 802.1Q home's flow sent to the QinQ home's public address and port,
    // delivered to the QinQ home (translated twice, then the delivery tail call).
    let (h0, h1) = (&HOMES[0], &HOMES[1]);
    let hairpin = encap(h0.kind, h0.s_vid, h0.c_vid, h0.vni, access_mac)
        .encapsulate(&frames::udp(
            HOST_MAC,
            [0; 6],
            (HOST, 40000),
            publics[usize::try_from(h1.id - 1).expect("index")],
            PAYLOAD,
        ))
        .expect("encapsulates");

    // New flows: flow n goes to home n % H from source port FIRST_PORT + n / H.
    let new_flow_encaps: Vec<Encap> = (0..NEW_FLOW_HOMES)
        .map(|i| encap(lsl_kind::QINQ, 20, new_flow_cvid(i), 0, access_mac))
        .collect();
    let max_new = NEW_FLOW_HOMES * NEW_FLOWS_PER_HOME;
    if calls * effort.samples as u32 > max_new {
        bail!("too many new flows for the new-flow homes' ports");
    }
    let mut next_flow = 0u32;

    let mut s: std::collections::BTreeMap<&str, Vec<f64>> = Default::default();
    let fails0 = rig.fwd_failures()?;
    for _ in 0..effort.samples {
        let pass = rig.time(Prog::Pass, calls, XdpVerdict::Pass, |_| baseline.clone())?;
        s.entry("xdp_test_run_overhead_ns").or_default().push(pass);
        let mut record = |k: &'static str, ns: f64| s.entry(k).or_default().push(ns - pass);
        let fib = rig.time(Prog::Fib, calls, XdpVerdict::Redirect, |_| baseline.clone())?;
        record("xdp_fib_baseline_ns_per_pkt", fib);
        for (h, f) in HOMES.iter().zip(&up_frames) {
            let ns = rig.time(Prog::Access, calls, XdpVerdict::Redirect, |_| f.clone())?;
            record(up_key(h.kind), ns);
        }
        let ns = rig.time(Prog::Access, calls, XdpVerdict::Redirect, |_| {
            policed.clone()
        })?;
        record("xdp_upstream_nat_policed_ns_per_pkt", ns);
        for (h, f) in HOMES.iter().zip(&down_frames) {
            let ns = rig.time(Prog::Core, calls, XdpVerdict::Redirect, |_| f.clone())?;
            record(down_key(h.kind), ns);
        }
        let ns = rig.time(Prog::Access, calls, XdpVerdict::Redirect, |_| up6.clone())?;
        record("xdp_upstream_v6_ns_per_pkt", ns);
        let ns = rig.time(Prog::Core, calls, XdpVerdict::Redirect, |_| down6.clone())?;
        record("xdp_downstream_v6_ns_per_pkt", ns);
        let ns = rig.time(Prog::Access, calls, XdpVerdict::Redirect, |_| {
            hairpin.clone()
        })?;
        record("xdp_hairpin_ns_per_pkt", ns);
        let first = next_flow;
        let ns = rig.time(Prog::Access, calls, XdpVerdict::Redirect, |i| {
            let n = first + i;
            let home = n % NEW_FLOW_HOMES;
            let port = FIRST_PORT + (n / NEW_FLOW_HOMES) as u16;
            let inner = frames::udp(HOST_MAC, [0; 6], (HOST, port), (INTERNET, 53), PAYLOAD);
            new_flow_encaps[home as usize]
                .encapsulate(&inner)
                .expect("encapsulates")
        })?;
        next_flow += calls;
        record("xdp_new_flow_ns_per_pkt", ns);
        let rep = rig.time_repeat(Prog::Fib, &baseline, repeat)?;
        s.entry("xdp_fib_baseline_repeat_ns_per_pkt")
            .or_default()
            .push(rep);
    }
    if rig.fwd_failures()? != fails0 {
        bail!("the baseline program failed to route some frames");
    }
    for (k, v) in &s {
        summary.set(k, median(v));
    }
    let created = rig
        .fp
        .counters()?
        .snapshot()?
        .total(nerg_abi::Counter::NatCreated);
    if created < u64::from(next_flow) {
        bail!("only {created} NAT mappings were created for {next_flow} new flows");
    }
    if let Some(ns) = summary.get("xdp_new_flow_ns_per_pkt") {
        summary.set("xdp_new_flow_mappings_per_s", 1e9 / ns.max(1.0));
    }
    summary.ratio(
        "xdp_upstream_vs_fib_ratio",
        "xdp_upstream_nat_ns_per_pkt",
        "xdp_fib_baseline_ns_per_pkt",
    );
    summary.ratio(
        "xdp_policed_vs_unpoliced_ratio",
        "xdp_upstream_nat_policed_ns_per_pkt",
        "xdp_upstream_nat_ns_per_pkt",
    );
    summary.ratio(
        "xdp_upstream_vxlan_vs_fib_ratio",
        "xdp_upstream_nat_vxlan_ns_per_pkt",
        "xdp_fib_baseline_ns_per_pkt",
    );
    summary.ratio(
        "xdp_upstream_v6_vs_nat_ratio",
        "xdp_upstream_v6_ns_per_pkt",
        "xdp_upstream_nat_ns_per_pkt",
    );
    summary.ratio(
        "xdp_downstream_v6_vs_nat_ratio",
        "xdp_downstream_v6_ns_per_pkt",
        "xdp_downstream_nat_ns_per_pkt",
    );
    summary.note(
        "xdp_upstream_v6_ns_per_pkt",
        "IPv6 from the QinQ home's host (established neighbour) routed to the core: vg_access, \
         then the vg_home6 tail call",
    );
    summary.note(
        "xdp_downstream_v6_ns_per_pkt",
        "IPv6 to the QinQ home's host (established neighbour): vg_core, then the vg_deliver \
         tail call",
    );
    summary.note(
        "xdp_test_run_overhead_ns",
        "kernel timer overhead of one repeat-1 test run, subtracted from the ns figures",
    );
    summary.note(
        "xdp_hairpin_ns_per_pkt",
        "802.1Q home to the QinQ home's public address:port, delivered by the vg_deliver tail call",
    );
    summary.remark(
        "fast path: one BPF_PROG_TEST_RUN per packet (the vG rewrites its frame), kernel-timed, \
         minus the same run of an XDP_PASS program",
    );
    Ok(())
}

/// The route cache under light flows from many homes, with vgd's route watch running (its
/// real timer and notifications): each of the [`NEW_FLOW_HOMES`] homes, every one on its
/// own public address (the worst case for a cache keyed by source), sends one packet a
/// second to one of 16 destinations, for `rounds` seconds. The hit rate is the share of
/// translated upstream packets that needed no `bpf_fib_lookup`
/// (`route_cache_light_flows_hit_pct`).
pub fn route_cache(effort: Effort, summary: &mut Summary) -> anyhow::Result<()> {
    use std::time::{Duration, Instant};
    use vg::fastpath::fib::{RouteWatch, SAFETY_INTERVAL};

    const DESTINATIONS: u32 = 16;
    let rounds: u32 = effort.pick(30, 3);
    let mut rig = rig()?;
    let generation = rig.fp.take_fib_generation()?;
    let watch = rig.vg.run(RouteWatch::open)?;
    let shutdown = tokio_util::sync::CancellationToken::new();
    let stop = shutdown.clone();
    let watcher = std::thread::spawn(move || -> anyhow::Result<()> {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
            .block_on(watch.run(generation, SAFETY_INTERVAL, stop));
        Ok(())
    });
    let access_mac = rig.access_mac;
    let frames: Vec<Vec<u8>> = (0..NEW_FLOW_HOMES)
        .map(|i| {
            let dst = Ipv4Addr::new(203, 0, 113, 10 + (i % DESTINATIONS) as u8);
            let inner = frames::udp(HOST_MAC, [0; 6], (HOST, 30000), (dst, 443), PAYLOAD);
            encap(lsl_kind::QINQ, 20, new_flow_cvid(i), 0, access_mac)
                .encapsulate(&inner)
                .expect("encapsulates")
        })
        .collect();
    let counters = rig.fp.counters()?;
    let count = |c: nerg_abi::Counter| -> anyhow::Result<u64> { Ok(counters.snapshot()?.total(c)) };
    // The first round creates every mapping (and the vG's first routes); then the rounds
    // counted, one a second.
    let mut counted = None;
    let start = Instant::now();
    for round in 0..=rounds {
        if round == 1 {
            counted = Some((
                count(nerg_abi::Counter::FibLookup)?,
                count(nerg_abi::Counter::NatUpstream)?,
            ));
        }
        let prog = prog(&mut rig.fp, &mut rig.bench, Prog::Access)?;
        rig.vg.run(|| -> anyhow::Result<()> {
            for (i, frame) in frames.iter().enumerate() {
                let out = run_xdp(prog, frame, 1).context("BPF_PROG_TEST_RUN")?;
                if out.verdict != XdpVerdict::Redirect {
                    bail!("home {i}: verdict {:?}", out.verdict);
                }
            }
            Ok(())
        })?;
        // Pacing: the next round a second after this one began.
        let next = start + Duration::from_secs(u64::from(round) + 1);
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
    let (lookups0, packets0) = counted.context("no counted round")?;
    let lookups = count(nerg_abi::Counter::FibLookup)? - lookups0;
    let packets = count(nerg_abi::Counter::NatUpstream)? - packets0;
    shutdown.cancel();
    watcher
        .join()
        .map_err(|_| anyhow::anyhow!("the route watch panicked"))??;
    if packets == 0 {
        bail!("no packet was translated");
    }
    summary.set(
        "route_cache_light_flows_hit_pct",
        100.0 * (1.0 - lookups as f64 / packets as f64),
    );
    summary.set("route_cache_light_flows_packets", packets as f64);
    summary.note(
        "route_cache_light_flows_hit_pct",
        "64 homes on 64 public addresses, 1 packet/s each to 16 destinations, vgd's route watch running",
    );
    Ok(())
}

fn up_key(kind: u8) -> &'static str {
    match kind {
        lsl_kind::QINQ => "xdp_upstream_nat_ns_per_pkt",
        lsl_kind::DOT1Q => "xdp_upstream_nat_dot1q_ns_per_pkt",
        lsl_kind::VXLAN6 => "xdp_upstream_nat_vxlan6_ns_per_pkt",
        _ => "xdp_upstream_nat_vxlan_ns_per_pkt",
    }
}

fn down_key(kind: u8) -> &'static str {
    match kind {
        lsl_kind::QINQ => "xdp_downstream_nat_ns_per_pkt",
        lsl_kind::DOT1Q => "xdp_downstream_nat_dot1q_ns_per_pkt",
        lsl_kind::VXLAN6 => "xdp_downstream_nat_vxlan6_ns_per_pkt",
        _ => "xdp_downstream_nat_vxlan_ns_per_pkt",
    }
}
