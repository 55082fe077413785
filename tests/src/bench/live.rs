//! Benchmark 2: forwarding rate on veth, with a traffic generator of our own.
//!
//! The generator is `bench_gen` (`ebpf/bench-xdp`) run with `BPF_PROG_RUN` in live-frames
//! mode (`BPF_F_TEST_XDP_LIVE_FRAMES`) in its own namespace: the kernel runs it on a fresh
//! copy of a template frame per packet; it writes the home (C-VID or VNI) and the flow
//! (inner UDP source port) into the copy and transmits it (`XDP_TX`) out of its veth.
//!
//! Some kernels refuse live frames (`EPERM` even as root, while plain `BPF_PROG_RUN`
//! works); there the frames come from the second generator, [`super::af_packet`]: the same
//! frames, sent with `sendmmsg` on an AF_PACKET socket on the same veth, from the same CPU.
//! Before timing, a probe runs a few live frames; `EPERM`, `EOPNOTSUPP` or `EINVAL` selects
//! the fallback. `nerg-bench --generator auto|live|af-packet` (or the environment variable
//! `NERG_BENCH_GENERATOR`; `cargo xtask bench --generator af-packet`) forces one. Which one
//! ran is printed on stderr, remarked under the table and recorded as
//! `fwd_generator_live_frames` (1 or 0). With AF_PACKET, frames reach the forwarder's veth
//! as socket buffers, which veth copies for XDP on the forwarder's CPU: the forwarders'
//! figures are lower than with live frames and not comparable with them.
//!
//! The sink is `bench_sink` on the far veth: it counts and drops. Four set-ups, each a chain
//! generator -> forwarder -> sink of namespaces, measured in turn within each sample:
//!
//! - (a) the vG: its XDP programs on the access and core veths, maps written directly with
//!   many homes (802.1Q, QinQ or VXLAN LSLs), each with one host and several flows; the
//!   flows are established by a warm-up pass before timing;
//! - (b) Linux: IP forwarding + nft masquerade + conntrack; the frames are untagged (this
//!   kernel has no 802.1Q support), or VXLAN through a kernel vxlan device (one VNI);
//!   an `XDP_PASS` program on its access veth lets generated frames in (platform.md);
//! - (c) a no-op XDP redirect from the access to the core veth: the XDP limit of the rig;
//! - (d) for context, a plain XDP router (`bench_fib`: `bpf_fib_lookup`, MAC rewrite,
//!   redirect) with untagged frames: what this rig gives the smallest real forwarder, so the
//!   vG's distance to (c) can be split into routing itself and LSL + NAT work.
//!
//! CPUs: the generator runs on one CPU ([`GEN_CPU`]), which also takes the sink's receive
//! processing; the forwarder runs alone on the other ([`FWD_CPU`]): each forwarder's access
//! veth has threaded NAPI, its thread pinned there, so everything the forwarder does to a
//! frame (XDP; for Linux the whole stack up to the transmit into the sink's ring) is done on
//! that CPU. A frame the forwarder cannot take in time is lost in its access veth's ring (256
//! frames). offered = frames generated; forwarded = frames the sink counted; both rates
//! over the generator's run time. A case whose median offered rate is below 1.2x its median
//! forwarded rate was bounded by the generator, not the forwarder: `{case}_generator_bound`
//! is 1, the table says so beside `{case}_pps`, and a ratio of such a figure is flagged (a
//! lower or upper bound) beside it and in a remark.
//! UDP checksums are 0 in generated frames (allowed for IPv4, RFC 768), so varying ports
//! needs no checksum update; the outer IPv4 header is never changed.

use std::{
    collections::BTreeMap,
    net::{IpAddr, Ipv4Addr},
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use aya::{
    Ebpf,
    maps::{Array, DevMapHash, PerCpuArray},
    programs::{TestRun as _, TestRunAttrs, TestRunOptions, Xdp, XdpMode},
};
use lsl::{Encap, Vid, Vni, VxlanEncap, smoltcp::wire::EthernetAddress, wire::vlan::Tpid};
use nerg_abi::{
    bench::{BenchCounter, GEN_HEADER_MAX, GenConfig, GenField, names},
    lsl_kind,
};
use vg::fastpath::{AttachMode, FastPath, if_index};

use super::{BENCH_OBJECT, Effort, Summary, af_packet::PacketGen, fmt_num, median};
use crate::addrs::{
    BLOCK_SIZE, BRG_VTEP, BRG_VTEP_MAC, GW, HOST, HOST_MAC, INTERNET, NEXT_HOP, VG_VTEP,
};
use crate::{
    Netns, PinDir, frames,
    netns::veth,
    rig::{self, RigHome},
};

/// Blocks per public address (ports 1024..=65535).
const BLOCKS_PER_IP: u32 = 126;
const FIRST_C_VID: u16 = 100;
const S_VID: u16 = 10;
const FIRST_VNI: u32 = 10_000;
const FIRST_SPORT: u16 = 10_000;
/// Interface MTU of every link: a QinQ-tagged 1500-byte packet must fit.
const ACCESS_MTU: &str = "1600";
/// The least offered / forwarded ratio (medians) at which a forwarding figure is the
/// forwarder's limit; below it the generator bounds the figure.
const GENERATOR_HEADROOM: f64 = 1.2;
/// Live-frames batch size (the kernel's default is 64).
const BATCH: u32 = 64;

/// Which traffic generator to use (`nerg-bench --generator`, `NERG_BENCH_GENERATOR`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum GeneratorChoice {
    /// Live frames where the kernel allows them, else AF_PACKET (a probe decides).
    #[default]
    Auto,
    /// `bench_gen` in live-frames mode (fails where the kernel refuses it).
    Live,
    /// The AF_PACKET generator, even where live frames work.
    #[value(alias = "af_packet")]
    AfPacket,
}

/// The traffic generator a run uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Generator {
    /// `bench_gen` with `BPF_F_TEST_XDP_LIVE_FRAMES`.
    Live,
    /// An AF_PACKET socket on `g0` ([`af_packet`]).
    AfPacket,
}

impl Generator {
    /// What it is, for the output.
    fn name(self) -> &'static str {
        match self {
            Self::Live => "live frames (bench_gen, BPF_F_TEST_XDP_LIVE_FRAMES)",
            Self::AfPacket => "AF_PACKET (sendmmsg on the generator's veth)",
        }
    }
}

/// Whether a forwarding figure is bounded by the generator rather than by the forwarder:
/// the generator offered less than [`GENERATOR_HEADROOM`] times what was forwarded.
fn generator_bound(offered_pps: f64, forwarded_pps: f64) -> bool {
    offered_pps < GENERATOR_HEADROOM * forwarded_pps
}

/// What a ratio `key` = `num` / `den` of forwarding figures means when the generator bounds
/// one or both of them (`None` when it bounds neither).
fn bounded_ratio(key: &str, num: (&str, bool), den: (&str, bool)) -> Option<String> {
    Some(match (num.1, den.1) {
        (false, false) => return None,
        (true, false) => format!(
            "{}_pps is bounded by the generator: {key} is a lower bound",
            num.0
        ),
        (false, true) => format!(
            "{}_pps is bounded by the generator: {key} is an upper bound",
            den.0
        ),
        (true, true) => format!(
            "{}_pps and {}_pps are both bounded by the generator: {key} says nothing about the forwarders",
            num.0, den.0
        ),
    })
}

/// Records the medians of case `key`'s runs (forwarded, offered, loss) and whether the
/// generator bounded it; a bounded figure gets a note in the table. Returns whether it was
/// bounded.
fn record_case(summary: &mut Summary, key: &str, runs: &[Run]) -> bool {
    let fwd: Vec<f64> = runs.iter().map(|r| r.forwarded_pps).collect();
    let off: Vec<f64> = runs.iter().map(|r| r.offered_pps).collect();
    let loss: Vec<f64> = runs.iter().map(|r| r.loss * 100.0).collect();
    let (fwd, off) = (median(&fwd).max(0.0), median(&off));
    let bound = generator_bound(off, fwd);
    summary.set(&format!("{key}_pps"), fwd);
    summary.set(&format!("{key}_offered_pps"), off);
    summary.set(&format!("{key}_loss_pct"), median(&loss).max(0.0));
    summary.set(
        &format!("{key}_generator_bound"),
        f64::from(u8::from(bound)),
    );
    if bound {
        // Not the forwarder's limit: it took all it was given, or nearly.
        summary.note(
            &format!("{key}_pps"),
            format!(
                "bounded by the generator: it offered {} pps, less than {GENERATOR_HEADROOM}x this; the forwarder's limit is at least this",
                fmt_num(off)
            ),
        );
    }
    bound
}

/// Frames of the probe that asks the kernel whether it runs live frames.
const PROBE_FRAMES: u32 = 4;

/// Picks the generator for `choice`: unless AF_PACKET is asked for, `PROBE_FRAMES` live
/// frames of `traffic` go through `chain`; if the kernel refuses them, `Auto` falls back to
/// AF_PACKET and `Live` fails. Returns the generator and why it was picked.
fn pick_generator(
    choice: GeneratorChoice,
    chain: &mut Chain,
    traffic: &Traffic,
) -> anyhow::Result<(Generator, String)> {
    use nix::errno::Errno;
    const ASKED: &str = "asked for (--generator or NERG_BENCH_GENERATOR)";
    if choice == GeneratorChoice::AfPacket {
        return Ok((Generator::AfPacket, ASKED.to_owned()));
    }
    let refused = match chain.run(Generator::Live, traffic, PROBE_FRAMES) {
        Ok(_) => None,
        Err(e) => {
            let errno = e
                .chain()
                .find_map(|c| c.downcast_ref::<std::io::Error>())
                .and_then(std::io::Error::raw_os_error)
                .map(Errno::from_raw);
            match errno {
                Some(errno @ (Errno::EPERM | Errno::EOPNOTSUPP | Errno::EINVAL)) => Some(errno),
                _ => return Err(e.context("probing for live frames")),
            }
        }
    };
    match (choice, refused) {
        (GeneratorChoice::Live, None) => Ok((Generator::Live, ASKED.to_owned())),
        (_, None) => Ok((Generator::Live, "the kernel runs live frames".to_owned())),
        (GeneratorChoice::Live, Some(errno)) => bail!(
            "live frames were asked for (--generator live), but the kernel refuses them \
             ({errno}); --generator auto falls back to AF_PACKET"
        ),
        (_, Some(errno)) => Ok((
            Generator::AfPacket,
            format!("the kernel refused live frames ({errno})"),
        )),
    }
}

/// How frames reach the forwarder.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Lsl {
    Untagged,
    Dot1q,
    Qinq,
    Vxlan,
}

/// A traffic pattern.
#[derive(Clone, Copy, Debug)]
struct Traffic {
    lsl: Lsl,
    homes: u32,
    flows_per_home: u32,
    /// Size of the IPv4 packet inside the LSL.
    ip_len: usize,
    /// All homes' flows through one LSL (untagged, or Linux's one vxlan device).
    one_lsl: bool,
}

impl Traffic {
    /// The template frame for `dst_mac` (the forwarder's access MAC), and the generator's
    /// fields.
    fn template(&self, dst_mac: [u8; 6]) -> anyhow::Result<(Vec<u8>, GenConfig)> {
        let payload = vec![0x5a; self.ip_len - 28];
        let mut inner = frames::udp(
            HOST_MAC,
            dst_mac,
            (HOST, FIRST_SPORT),
            (INTERNET, 53),
            &payload,
        );
        // UDP checksum 0: "no checksum" (RFC 768); the generator varies the source port.
        inner[40] = 0;
        inner[41] = 0;
        let vid = |v| Vid::new(v).context("VID");
        let (frame, home_field, inner_at) = match self.lsl {
            Lsl::Untagged => (inner, None, 0),
            Lsl::Dot1q => (
                Encap::Dot1q {
                    c_vid: vid(FIRST_C_VID)?,
                }
                .encapsulate(&inner)?,
                Some((14u16, 2u8, u32::from(FIRST_C_VID))),
                4,
            ),
            Lsl::Qinq => (
                Encap::QinQ {
                    s_tpid: Tpid::STag,
                    s_vid: vid(S_VID)?,
                    c_vid: vid(FIRST_C_VID)?,
                }
                .encapsulate(&inner)?,
                Some((18, 2, u32::from(FIRST_C_VID))),
                8,
            ),
            Lsl::Vxlan => {
                let mut e = VxlanEncap::new(
                    Vni::new(FIRST_VNI).context("VNI")?,
                    IpAddr::V4(BRG_VTEP),
                    IpAddr::V4(VG_VTEP),
                    EthernetAddress(BRG_VTEP_MAC),
                    EthernetAddress(dst_mac),
                );
                e.udp_checksum = false;
                (
                    Encap::Vxlan(e).encapsulate(&inner)?,
                    Some((46, 3, FIRST_VNI)),
                    50,
                )
            }
        };
        let homes = if self.one_lsl || self.lsl == Lsl::Untagged {
            1
        } else {
            self.homes
        };
        let mut cfg = GenConfig::default();
        let header_len = frame.len().min(GEN_HEADER_MAX) / 8 * 8;
        cfg.header[..header_len].copy_from_slice(&frame[..header_len]);
        cfg.header_len = header_len as u32;
        let mut flows = self.flows_per_home;
        match home_field {
            Some((offset, width, base)) if homes > 1 => {
                cfg.fields[0] = GenField {
                    offset,
                    width,
                    _pad: 0,
                    base,
                    count: homes,
                    stride: 1,
                };
            }
            _ => flows *= self.homes, // one LAN: as many flows, all from one source address
        }
        cfg.fields[1] = GenField {
            offset: (inner_at + 34) as u16,
            width: 2,
            _pad: 0,
            base: u32::from(FIRST_SPORT),
            count: flows,
            stride: homes,
        };
        Ok((frame, cfg))
    }

    fn frames(&self) -> u32 {
        self.homes * self.flows_per_home
    }
}

/// Which forwarder a chain has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Forwarder {
    Vg,
    Linux,
    Redirect,
    /// A plain XDP router: `bpf_fib_lookup`, MAC rewrite, redirect (untagged frames).
    Fib,
}

/// generator namespace -> forwarder namespace -> sink namespace.
struct Chain {
    // Drop order: programs and the vG, then namespaces, then pins.
    bench: Ebpf,
    fp: Option<FastPath>,
    /// The AF_PACKET generator's socket, opened on its first run.
    packet: Option<PacketGen>,
    gen_ns: Netns,
    _fwd: Netns,
    _sink: Netns,
    _pins: Option<PinDir>,
    access_mac: [u8; 6],
    gen_ifindex: u32,
}

fn load_xdp<'a>(bench: &'a mut Ebpf, name: &str) -> anyhow::Result<&'a mut Xdp> {
    let prog: &mut Xdp = bench
        .program_mut(name)
        .with_context(|| format!("program {name} missing"))?
        .try_into()?;
    Ok(prog)
}

fn chain(kind: Forwarder, vg_homes: &[(Lsl, u32)]) -> anyhow::Result<Chain> {
    let tag = match kind {
        Forwarder::Vg => "blv",
        Forwarder::Linux => "bll",
        Forwarder::Redirect => "blr",
        Forwarder::Fib => "blf",
    };
    let gen_ns = Netns::new(&format!("{tag}-gen"));
    let fwd = Netns::new(&format!("{tag}-fwd"));
    let sink = Netns::new(&format!("{tag}-sink"));
    for ns in [&gen_ns, &fwd, &sink] {
        ns.disable_ipv6();
    }
    veth(&gen_ns, "g0", &fwd, "acc0");
    veth(&fwd, "core0", &sink, "s0");
    gen_ns.ip(&["link", "set", "g0", "mtu", ACCESS_MTU]);
    // Every link takes a tagged 1500-byte packet: the no-op redirect forwards it as it is.
    for (ns, dev) in [(&fwd, "acc0"), (&fwd, "core0"), (&sink, "s0")] {
        ns.ip(&["link", "set", dev, "mtu", ACCESS_MTU]);
    }
    fwd.addr_add("acc0", &format!("{VG_VTEP}/24"));
    fwd.addr_add("core0", "10.99.0.1/24");
    let sink_mac = sink.mac("s0");
    let mac = |m: [u8; 6]| {
        m.iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(":")
    };
    fwd.neigh_permanent(&NEXT_HOP.to_string(), &mac(sink_mac), "core0");
    fwd.route_add("default", &NEXT_HOP.to_string());
    fwd.exec("sysctl", &["-qw", "net.ipv4.conf.all.forwarding=1"]);
    let access_mac = fwd.mac("acc0");
    let gen_ifindex = gen_ns.run(|| if_index("g0"))?;

    let mut bench = Ebpf::load(BENCH_OBJECT).context("loading the bench eBPF object")?;
    for name in [
        names::GEN,
        names::SINK,
        names::PASS,
        names::REDIRECT,
        names::FIB,
    ] {
        load_xdp(&mut bench, name)?
            .load()
            .with_context(|| format!("verifying {name}"))?;
    }
    sink.run(|| {
        load_xdp(&mut bench, names::SINK)?
            .attach("s0", XdpMode::Driver)
            .map(drop)
            .map_err(anyhow::Error::from)
    })
    .context("attaching the sink")?;
    sink.pin_napi("s0", GEN_CPU);

    let mut fp = None;
    let mut pins = None;
    match kind {
        Forwarder::Vg => {
            let p = PinDir::new("blv");
            fp = Some(fwd.run(|| -> anyhow::Result<FastPath> {
                let mut fp = FastPath::load(p.path())?;
                configure_vg(&mut fp, p.path(), access_mac, vg_homes)?;
                fp.attach_access("acc0", AttachMode::Native)?;
                fp.attach_core("core0", AttachMode::Native)?;
                Ok(fp)
            })?);
            pins = Some(p);
        }
        Forwarder::Linux => {
            for key in ["all", "default", "acc0", "core0"] {
                fwd.exec(
                    "sysctl",
                    &["-qw", &format!("net.ipv4.conf.{key}.rp_filter=0")],
                );
            }
            fwd.addr_add("acc0", &format!("{GW}/24"));
            // VXLAN homes: a kernel vxlan device for the first VNI, the home's gateway on it.
            let (vni, local, remote) = (
                FIRST_VNI.to_string(),
                VG_VTEP.to_string(),
                BRG_VTEP.to_string(),
            );
            fwd.ip(&[
                "link", "add", "vx0", "type", "vxlan", "id", &vni, "local", &local, "remote",
                &remote, "dstport", "4789", "dev", "acc0",
            ]);
            fwd.ip(&["link", "set", "vx0", "address", &mac(access_mac)]);
            fwd.addr_add("vx0", "192.168.2.1/24");
            fwd.link_up("vx0");
            fwd.neigh_permanent(&BRG_VTEP.to_string(), &mac(BRG_VTEP_MAC), "acc0");
            let nft = "table ip bench {\n chain post {\n  type nat hook postrouting priority 100;\n  \
                       oifname \"core0\" masquerade\n }\n}\n";
            let mut cmd = fwd.command("nft");
            cmd.args(["-f", "-"]);
            run_with_stdin(cmd, nft).context("nft masquerade rules")?;
            fwd.run(|| {
                load_xdp(&mut bench, names::PASS)?
                    .attach("acc0", XdpMode::Driver)
                    .map(drop)
                    .map_err(anyhow::Error::from)
            })
            .context("attaching XDP_PASS on the Linux forwarder")?;
        }
        Forwarder::Fib | Forwarder::Redirect => {
            let (prog, what) = match kind {
                Forwarder::Fib => (names::FIB, "the FIB forwarder"),
                _ => (names::REDIRECT, "the no-op redirect"),
            };
            fwd.run(|| -> anyhow::Result<()> {
                let core = if_index("core0")?;
                if kind == Forwarder::Redirect {
                    let mut to: Array<_, u32> =
                        Array::try_from(bench.map_mut(names::REDIRECT_TO).context("map")?)?;
                    to.set(0, core, 0)?;
                }
                let mut devmap =
                    DevMapHash::try_from(bench.map_mut(names::DEVMAP).context("map")?)?;
                devmap.insert(core, core, None, 0)?;
                load_xdp(&mut bench, prog)?.attach("acc0", XdpMode::Driver)?;
                Ok(())
            })
            .with_context(|| format!("attaching {what}"))?;
        }
    }
    // Everything the forwarder does to a frame (XDP, and for Linux the whole stack up to the
    // transmit into the sink's ring) runs in acc0's NAPI thread, alone on its CPU.
    fwd.pin_napi("acc0", FWD_CPU);
    Ok(Chain {
        bench,
        fp,
        packet: None,
        gen_ns,
        _fwd: fwd,
        _sink: sink,
        _pins: pins,
        access_mac,
        gen_ifindex,
    })
}

fn run_with_stdin(mut cmd: std::process::Command, input: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut child = cmd
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    child
        .stdin
        .take()
        .context("stdin")?
        .write_all(input.as_bytes())?;
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!("{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}

/// Writes the vG's homes as vgd writes them ([`crate::rig`]): for each (LSL kind, homes),
/// that many homes with one host each and one 512-port block each on the public addresses
/// 198.18.0.0/16.
fn configure_vg(
    fp: &mut FastPath,
    pins: &std::path::Path,
    access_mac: [u8; 6],
    homes: &[(Lsl, u32)],
) -> anyhow::Result<()> {
    let config = rig::config();
    let access = if_index("acc0")?;
    let core = if_index("core0")?;
    rig::configure(fp, &config, (access, access_mac), Some(core))?;
    let mut rig_homes = Vec::new();
    let mut slot = 0u32;
    for &(lsl, n) in homes {
        for h in 0..n {
            let ip_index = slot / BLOCKS_PER_IP;
            let public = Ipv4Addr::new(198, 18, (ip_index / 250) as u8, (ip_index % 250 + 1) as u8);
            let block = 1024 + (slot % BLOCKS_PER_IP) as u16 * BLOCK_SIZE;
            slot += 1;
            let text = match lsl {
                Lsl::Dot1q => rig::lsl_text(lsl_kind::DOT1Q, 0, FIRST_C_VID + h as u16, 0),
                Lsl::Qinq => rig::lsl_text(lsl_kind::QINQ, S_VID, FIRST_C_VID + h as u16, 0),
                Lsl::Vxlan => rig::lsl_text(lsl_kind::VXLAN4, 0, 0, FIRST_VNI + h),
                Lsl::Untagged => bail!("the vG takes no untagged homes"),
            };
            rig_homes.push(
                RigHome::new(slot, text)
                    .host(HOST, HOST_MAC)
                    .nat(public, &[block]),
            );
        }
    }
    rig::write_homes(pins, &config, access, &rig_homes)
}

/// The CPU the generator runs on, with the sink's receive processing.
const GEN_CPU: usize = 0;
/// The CPU the forwarder under test runs on, alone: its access interface's NAPI thread.
const FWD_CPU: usize = 1;

/// One measured run.
#[derive(Clone, Copy, Debug)]
struct Run {
    offered_pps: f64,
    forwarded_pps: f64,
    loss: f64,
}

impl Chain {
    fn sink_frames(&self) -> anyhow::Result<u64> {
        let stats: PerCpuArray<_, u64> =
            PerCpuArray::try_from(self.bench.map(names::STATS).context("BENCH_STATS")?)?;
        Ok(stats
            .get(&(BenchCounter::SinkFrames as u32), 0)?
            .iter()
            .sum())
    }

    /// Generates `frames` frames of `traffic` with `generator`, returns the rates.
    fn run(&mut self, generator: Generator, traffic: &Traffic, frames: u32) -> anyhow::Result<Run> {
        let (template, cfg) = traffic.template(self.access_mac)?;
        let before = self.sink_frames()?;
        let elapsed = match generator {
            Generator::Live => self.generate_live(&template, cfg, frames)?,
            Generator::AfPacket => self.generate_af_packet(&template, &cfg.fields, frames)?,
        };
        // Frames still in flight: wait until the sink's count settles.
        let mut last = self.sink_frames()?;
        loop {
            std::thread::sleep(Duration::from_millis(20));
            let now = self.sink_frames()?;
            if now == last {
                break;
            }
            last = now;
        }
        let forwarded = last - before;
        let secs = elapsed.as_secs_f64();
        Ok(Run {
            offered_pps: f64::from(frames) / secs,
            forwarded_pps: forwarded as f64 / secs,
            loss: 1.0 - forwarded as f64 / f64::from(frames),
        })
    }

    /// `bench_gen` in live-frames mode: `frames` frames; returns how long it took.
    fn generate_live(
        &mut self,
        template: &[u8],
        cfg: GenConfig,
        frames: u32,
    ) -> anyhow::Result<Duration> {
        let mut gen_cfg: Array<_, GenConfig> =
            Array::try_from(self.bench.map_mut(names::GEN_CONFIG).context("BENCH_GEN")?)?;
        gen_cfg.set(0, cfg, 0)?;
        // struct xdp_md: data, data_end, data_meta, ingress_ifindex, rx_queue_index,
        // egress_ifindex (u32 each). Live frames need data 0 and data_end = the frame size.
        let mut ctx = [0u8; 24];
        ctx[4..8].copy_from_slice(&(template.len() as u32).to_ne_bytes());
        ctx[12..16].copy_from_slice(&self.gen_ifindex.to_ne_bytes());
        let prog: &Xdp = load_xdp(&mut self.bench, names::GEN)?;
        let ctx = &ctx;
        self.gen_ns.run(|| -> anyhow::Result<Duration> {
            pin_to(GEN_CPU)?;
            let t = Instant::now();
            prog.test_run(TestRunOptions {
                data_in: Some(template),
                ctx_in: Some(ctx),
                repeat: frames,
                attrs: TestRunAttrs::new().xdp_live_frames(BATCH),
                ..TestRunOptions::default()
            })
            .context("BPF_PROG_RUN (live frames)")?;
            Ok(t.elapsed())
        })
    }

    /// The AF_PACKET generator on `g0`: the same `frames` frames `bench_gen` would send;
    /// returns how long it took.
    fn generate_af_packet(
        &mut self,
        template: &[u8],
        fields: &[GenField],
        frames: u32,
    ) -> anyhow::Result<Duration> {
        let ifindex = self.gen_ifindex;
        let packet = &mut self.packet;
        self.gen_ns.run(|| -> anyhow::Result<Duration> {
            pin_to(GEN_CPU)?;
            let generator = match packet {
                Some(g) => g,
                None => packet
                    .insert(PacketGen::open(ifindex).context("opening an AF_PACKET socket on g0")?),
            };
            let t = Instant::now();
            generator
                .send(template, fields, frames)
                .context("AF_PACKET generator")?;
            Ok(t.elapsed())
        })
    }
}

/// Pins the calling thread to `cpu`.
fn pin_to(cpu: usize) -> anyhow::Result<()> {
    let mut set = nix::sched::CpuSet::new();
    set.set(cpu)?;
    nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set)
        .with_context(|| format!("pinning the generator to CPU {cpu}"))?;
    Ok(())
}

/// The vG chain's access-side verdict counters.
struct VgVerdicts {
    rx: u64,
    redirected: u64,
    drops: Vec<(&'static str, u64)>,
}

impl VgVerdicts {
    fn read(chains: &BTreeMap<&str, Chain>) -> anyhow::Result<Self> {
        let vg = chains
            .get("vg")
            .and_then(|c| c.fp.as_ref())
            .context("the vG chain")?;
        let snap = vg.counters()?.snapshot()?;
        Ok(Self {
            rx: snap.total(nerg_abi::Counter::AccessRxPackets),
            redirected: snap.total(nerg_abi::Counter::VerdictRedirect),
            drops: nerg_abi::DropReason::ALL
                .iter()
                .map(|d| (d.label(), snap.drops(*d)))
                .collect(),
        })
    }
}

/// Runs benchmark 2 and records its figures.
pub fn run(effort: Effort, summary: &mut Summary) -> anyhow::Result<()> {
    if BENCH_OBJECT.is_empty() {
        bail!("nerg-bench was built without its eBPF programs (AYA_BUILD_SKIP)");
    }
    if std::thread::available_parallelism().map_or(1, |n| n.get()) <= FWD_CPU {
        bail!("the forwarding benchmark needs two CPUs: one generates, the other forwards");
    }
    let homes = effort.pick(1000, 20);
    let flows = effort.pick(16, 4);
    let frames: u32 = effort.pick(2_000_000, 20_000);
    let t = |lsl, ip_len| Traffic {
        lsl,
        homes,
        flows_per_home: flows,
        ip_len,
        one_lsl: false,
    };
    let one = |lsl, ip_len| Traffic {
        one_lsl: true,
        ..t(lsl, ip_len)
    };
    // (key prefix, forwarder, traffic)
    let cases: Vec<(&str, Forwarder, Traffic)> = vec![
        ("vg_fwd", Forwarder::Vg, t(Lsl::Qinq, 50)),
        ("vg_fwd_dot1q", Forwarder::Vg, t(Lsl::Dot1q, 50)),
        ("vg_fwd_vxlan", Forwarder::Vg, t(Lsl::Vxlan, 50)),
        ("vg_fwd_1500b", Forwarder::Vg, t(Lsl::Qinq, 1500)),
        ("linux_nat_fwd", Forwarder::Linux, t(Lsl::Untagged, 50)),
        ("linux_nat_fwd_vxlan", Forwarder::Linux, one(Lsl::Vxlan, 50)),
        (
            "linux_nat_fwd_1500b",
            Forwarder::Linux,
            t(Lsl::Untagged, 1500),
        ),
        ("xdp_fib_fwd", Forwarder::Fib, t(Lsl::Untagged, 50)),
        ("xdp_redirect_limit", Forwarder::Redirect, t(Lsl::Qinq, 50)),
        (
            "xdp_redirect_limit_1500b",
            Forwarder::Redirect,
            t(Lsl::Qinq, 1500),
        ),
    ];
    let vg_homes = [(Lsl::Dot1q, homes), (Lsl::Qinq, homes), (Lsl::Vxlan, homes)];
    let mut chains: BTreeMap<&str, Chain> = BTreeMap::new();
    chains.insert("vg", chain(Forwarder::Vg, &vg_homes)?);
    chains.insert("linux", chain(Forwarder::Linux, &[])?);
    chains.insert("redirect", chain(Forwarder::Redirect, &[])?);
    chains.insert("fib", chain(Forwarder::Fib, &[])?);
    let chain_of = |f: Forwarder| match f {
        Forwarder::Vg => "vg",
        Forwarder::Linux => "linux",
        Forwarder::Redirect => "redirect",
        Forwarder::Fib => "fib",
    };
    let (generator, why) = {
        let (_, f, traffic) = cases
            .iter()
            .find(|(_, f, _)| *f == Forwarder::Redirect)
            .context("a redirect case")?;
        let c = chains.get_mut(chain_of(*f)).context("chain")?;
        pick_generator(effort.generator, c, traffic)?
    };
    eprintln!(
        "    forwarding traffic generator: {}: {why}",
        generator.name()
    );
    summary.set(
        "fwd_generator_live_frames",
        f64::from(u8::from(generator == Generator::Live)),
    );
    // Warm-up: every flow until it is established (the vG creates its mappings, Linux its
    // conntrack entries). A pass sends each flow twice, at the generator's full rate, so most
    // frames are lost in the forwarder's ring; passes repeat until the vG holds a mapping for
    // every flow (at 80% loss, 50 passes leave a flow out with probability 1e-10).
    let vg_kinds: std::collections::BTreeSet<_> = cases
        .iter()
        .filter(|(_, f, _)| *f == Forwarder::Vg)
        .map(|(_, _, t)| t.lsl)
        .collect();
    let expected = vg_kinds.len() as u64 * u64::from(homes * flows);
    const WARM_UP_PASSES: usize = 50;
    for pass in 1..=WARM_UP_PASSES {
        for (_, f, traffic) in &cases {
            if pass == 1 || *f == Forwarder::Vg {
                let c = chains.get_mut(chain_of(*f)).context("chain")?;
                c.run(generator, traffic, traffic.frames() * 2)?;
            }
        }
        let Some(vg) = chains.get("vg").and_then(|c| c.fp.as_ref()) else {
            break;
        };
        let snap = vg.counters()?.snapshot()?;
        let created = snap.total(nerg_abi::Counter::NatCreated);
        if created >= expected {
            break;
        }
        if pass == WARM_UP_PASSES {
            bail!(
                "the vG created {created} NAT mappings in {pass} warm-up passes, expected {expected} (drops: {:?})",
                nerg_abi::DropReason::ALL
                    .iter()
                    .map(|d| (d.label(), snap.drops(*d)))
                    .filter(|(_, n)| *n > 0)
                    .collect::<Vec<_>>()
            );
        }
    }
    let before = VgVerdicts::read(&chains)?;
    let mut runs: BTreeMap<&str, Vec<Run>> = BTreeMap::new();
    // Each sample runs every case once, starting one case later than the sample before: a
    // disturbance that recurs with the sequence (the kernel finishing one forwarder's work
    // while the next is timed, say) does not always land on the same case. More samples than
    // the other benchmarks: the fastest forwarders' rates swing most on this rig (their NAPI
    // thread empties its ring and sleeps, and each wake-up crosses CPUs).
    let samples = effort.pick(11, effort.samples);
    for sample in 0..samples {
        for i in 0..cases.len() {
            let (key, f, traffic) = &cases[(sample + i) % cases.len()];
            let c = chains.get_mut(chain_of(*f)).context("chain")?;
            runs.entry(key)
                .or_default()
                .push(c.run(generator, traffic, frames)?);
        }
    }
    let mut bounded_figures = std::collections::BTreeSet::new();
    for (key, rs) in &runs {
        if record_case(summary, key, rs) {
            bounded_figures.insert(*key);
        }
    }
    // Where the vG's lost frames went: its own drops (by reason) or the veth rings (frames
    // the generator offered that never reached the vG, or the vG redirected but the sink's
    // ring refused).
    let after = VgVerdicts::read(&chains)?;
    let rx = after.rx - before.rx;
    summary.set("vg_fwd_access_rx_frames", rx as f64);
    summary.set(
        "vg_fwd_xdp_redirected_pct",
        (after.redirected - before.redirected) as f64 * 100.0 / rx.max(1) as f64,
    );
    let dropped: Vec<String> = after
        .drops
        .iter()
        .zip(&before.drops)
        .filter(|((_, n1), (_, n0))| n1 > n0)
        .map(|((label, n1), (_, n0))| format!("{label} {}", n1 - n0))
        .collect();
    if !dropped.is_empty() {
        summary.remark(format!(
            "vG fast-path drops during the timed runs: {}",
            dropped.join(", ")
        ));
    }
    // Ratios of the same sample's two figures, then their median: a slow stretch of the
    // machine moves both sides of a sample alike.
    let paired = |num: &str, den: &str| -> Option<f64> {
        let (n, d) = (runs.get(num)?, runs.get(den)?);
        let ratios: Vec<f64> = n
            .iter()
            .zip(d)
            .filter(|(_, d)| d.forwarded_pps > 0.0)
            .map(|(n, d)| n.forwarded_pps / d.forwarded_pps)
            .collect();
        (!ratios.is_empty()).then(|| median(&ratios))
    };
    for (key, num, den) in [
        ("vg_vs_linux_ratio", "vg_fwd", "linux_nat_fwd"),
        ("vg_vs_redirect_limit_ratio", "vg_fwd", "xdp_redirect_limit"),
        // Context for the vG's figure: what the rig gives a plain XDP router (no LSL, no NAT).
        ("vg_vs_fib_fwd_ratio", "vg_fwd", "xdp_fib_fwd"),
        (
            "fib_fwd_vs_redirect_limit_ratio",
            "xdp_fib_fwd",
            "xdp_redirect_limit",
        ),
    ] {
        if let Some(r) = paired(num, den) {
            summary.set(key, r);
            let Some(bounded) = bounded_ratio(
                key,
                (num, bounded_figures.contains(num)),
                (den, bounded_figures.contains(den)),
            ) else {
                continue;
            };
            summary.note(key, bounded.clone());
            summary.remark(bounded);
        }
    }
    summary.remark(format!(
        "forwarding on veth: generator {}, chosen: {why}; it runs on CPU {GEN_CPU} (with the sink), the forwarder alone on CPU {FWD_CPU} (its NAPI thread); {homes} homes x {flows} UDP flows per \
         LSL kind, 50-byte IP packets unless _1500b; vg_fwd = QinQ; Linux = forwarding + nft \
         masquerade + conntrack with untagged frames (this kernel has no 802.1Q) or VXLAN via \
         a kernel vxlan device (one VNI); xdp_fib_fwd = a plain XDP router (bpf_fib_lookup, MAC rewrite, redirect; untagged); \
         xdp_redirect_limit = no-op XDP redirect",
        generator.name()
    ));
    if generator == Generator::AfPacket {
        summary.remark(
            "AF_PACKET generator: frames reach each forwarder's veth as socket buffers, which \
             veth copies into pages with XDP headroom on the forwarder's CPU before its XDP \
             program runs; the forwarding figures include that copy, so they are lower than \
             with live frames and not comparable with them",
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generator_bound_below_headroom() {
        assert!(generator_bound(1_000_000.0, 900_000.0));
        assert!(!generator_bound(1_200_000.0, 1_000_000.0));
        assert!(!generator_bound(3_000_000.0, 1_000_000.0));
        assert!(!generator_bound(100.0, 0.0));
    }

    #[test]
    fn a_generator_bound_figure_is_marked_in_the_table() {
        let run = |offered_pps, forwarded_pps| Run {
            offered_pps,
            forwarded_pps,
            loss: 1.0 - forwarded_pps / offered_pps,
        };
        let mut s = Summary::default();
        assert!(record_case(
            &mut s,
            "vg_fwd",
            &[run(1e6, 0.95e6), run(1.1e6, 1e6), run(0.9e6, 0.9e6)]
        ));
        assert!(!record_case(
            &mut s,
            "linux_nat_fwd",
            &[run(1e6, 0.2e6), run(1e6, 0.3e6), run(1e6, 0.25e6)]
        ));
        assert_eq!(s.get("vg_fwd_generator_bound"), Some(1.0));
        assert_eq!(s.get("vg_fwd_offered_pps"), Some(1e6));
        assert_eq!(s.get("linux_nat_fwd_generator_bound"), Some(0.0));
        let table = s.table();
        let line = |key: &str| {
            table
                .lines()
                .find(|l| l.starts_with(&format!("| {key} ")))
                .unwrap_or_else(|| panic!("{key} not in\n{table}"))
                .to_owned()
        };
        assert!(
            line("vg_fwd_pps").contains("bounded by the generator"),
            "{table}"
        );
        assert!(!line("linux_nat_fwd_pps").contains("bounded"), "{table}");
    }

    #[test]
    fn bounded_ratio_names_the_direction() {
        let r = |n, d| bounded_ratio("vg_vs_linux_ratio", ("vg_fwd", n), ("linux_nat_fwd", d));
        assert_eq!(r(false, false), None);
        assert_eq!(
            r(true, false).as_deref(),
            Some("vg_fwd_pps is bounded by the generator: vg_vs_linux_ratio is a lower bound")
        );
        assert!(
            r(false, true)
                .is_some_and(|t| t.contains("linux_nat_fwd_pps") && t.contains("upper bound"))
        );
        assert!(r(true, true).is_some_and(|t| t.contains("says nothing")));
    }
}
