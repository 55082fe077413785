//! `nerg-lab`: the NERG lab in network namespaces (run through `cargo xtask lab`).
//!
//! Today it brings up what exists: the vG namespace with `vgd` attached to its access
//! interface and configured with one subscriber per home, an access network (a Linux
//! bridge), and one namespace per home's BRG that sends its LAN host's ARP request for the
//! home's gateway on its LSL (802.1Q or QinQ with the tags in-line, as our BRG tagger writes
//! them, or VXLAN to the vG's VTEP). It prints what the vG's fast path classified and what
//! reached its slow path, with a pass/fail line per check. DHCP, NAT, brgd and the ACS join
//! as their issues land.

use std::{
    net::{IpAddr, Ipv4Addr},
    process::ExitCode,
    time::Duration,
};

use anyhow::{Context as _, bail};
use clap::{Parser, Subcommand, ValueEnum};
use lsl::smoltcp::wire::EthernetAddress;
use nerg_abi::{Counter, DropReason};
use nerg_tests::{Netns, frames, raw::RawSocket, vgd, wait_until_some};
use vg::fastpath::{CounterSnapshot, Counters, bpffs};

const NS_PREFIX: &str = "nerg-lab-";
const INSTANCE: &str = "lab";
const FRAMES_PER_HOME: u64 = 10;

/// Lab flags.
#[derive(Debug, Parser)]
#[command(name = "cargo xtask lab", about = "The NERG lab in network namespaces")]
struct Args {
    /// Number of homes (BRGs).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=200))]
    homes: u16,
    /// LSL kind of the homes.
    #[arg(long, value_enum, default_value_t = LslKind::Mixed)]
    lsl: LslKind,
    /// Leave the lab running and print how to reach it.
    #[arg(long)]
    keep: bool,
    #[command(subcommand)]
    command: Option<Cmd>,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Remove a lab left running with --keep.
    Down,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum LslKind {
    /// 802.1Q single tag per home.
    Vlan,
    /// QinQ: S-tag 0x88A8 + C-tag per home.
    Qinq,
    /// VXLAN to the vG's VTEP, one VNI per home.
    Vxlan,
    /// Homes alternate between the kinds available.
    Mixed,
}

struct Home {
    id: u32,
    ns: Netns,
    kind: LslKind,
    lsl: String,
    encap: lsl::Encap,
}

const VG_VTEP: Ipv4Addr = Ipv4Addr::new(10, 255, 0, 1);
const GATEWAY: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 1);
const LAN_HOST: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 100);

fn main() -> ExitCode {
    let args = Args::parse();
    let result = match args.command {
        Some(Cmd::Down) => down(),
        None => up(&args),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(err) => {
            eprintln!("lab: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn progress(what: &str) {
    eprintln!("  - {what}");
}

/// Removes every lab namespace and the lab's pinned maps.
fn down() -> anyhow::Result<bool> {
    let out = std::process::Command::new("ip")
        .args(["netns", "list"])
        .output()
        .context("running ip netns list")?;
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let name = line.split_whitespace().next().unwrap_or_default();
        if name.starts_with(NS_PREFIX) {
            Netns::delete(name);
            progress(&format!("removed namespace {name}"));
        }
    }
    let pins = bpffs::pin_dir(bpffs::DEFAULT_MOUNT.as_ref(), INSTANCE);
    if pins.exists() {
        std::fs::remove_dir_all(&pins).with_context(|| format!("removing {}", pins.display()))?;
        progress(&format!("removed {}", pins.display()));
    }
    Ok(true)
}

fn up(args: &Args) -> anyhow::Result<bool> {
    if !nix::unistd::geteuid().is_root() {
        bail!("the lab needs root (network namespaces, XDP, bpffs)");
    }
    if args.lsl == LslKind::Vxlan {
        bail!(
            "VXLAN LSLs are not terminated by the vG yet (fast-path issue); use --lsl vlan, qinq or mixed"
        );
    }
    down()?;
    eprintln!("==> lab: {} homes, LSL {:?}", args.homes, args.lsl);

    progress("access network (bridge) and vG namespace");
    let access = Netns::named(&format!("{NS_PREFIX}access"));
    let vg = Netns::named(&format!("{NS_PREFIX}vg"));
    for ns in [&access, &vg] {
        ns.disable_ipv6();
    }
    nerg_tests::netns::veth(&vg, "acc0", &access, "vg");
    access.bridge("br0", &["vg"]);
    // A bridge port transmitting into a veth keeps a VLAN tag in skb metadata unless tx VLAN
    // offload is off, and XDP on the vG would see an untagged frame: a real access network
    // delivers tags in-line, so the lab does too (platform.md, "VLAN tags on veth").
    access.ethtool_k("vg", &["txvlan", "off", "tx-vlan-stag-hw-insert", "off"]);

    // The vG's VTEP address lives on the access interface (the stack answers ARP for it).
    vg.addr_add("acc0", &format!("{VG_VTEP}/16"));
    let vg_mac = vg.mac("acc0");

    progress(&format!(
        "{} BRG namespaces on the access bridge",
        args.homes
    ));
    let mut homes = Vec::new();
    for i in 1..=u32::from(args.homes) {
        let ns = Netns::named(&format!("{NS_PREFIX}brg{i}"));
        ns.disable_ipv6();
        let port = format!("brg{i}");
        nerg_tests::netns::veth(&ns, "lsl0", &access, &port);
        access.ip(&["link", "set", &port, "master", "br0"]);
        let kind = match args.lsl {
            LslKind::Mixed => [LslKind::Vlan, LslKind::Qinq, LslKind::Vxlan][(i as usize - 1) % 3],
            other => other,
        };
        let vid = |v: u32| lsl::Vid::new(((v - 1) % 4094 + 1) as u16).context("VID");
        let (lsl, encap) = match kind {
            LslKind::Qinq => {
                let (s, c) = (vid(100 + i / 4000)?, vid(i)?);
                (
                    format!("qinq:{s}.{c}"),
                    lsl::Encap::QinQ {
                        s_tpid: lsl::wire::vlan::Tpid::STag,
                        s_vid: s,
                        c_vid: c,
                    },
                )
            }
            LslKind::Vxlan => {
                let brg_ip = Ipv4Addr::new(10, 255, 1 + (i / 250) as u8, (i % 250) as u8 + 1);
                ns.addr_add("lsl0", &format!("{brg_ip}/16"));
                let vni = lsl::Vni::new(5000 + i).context("VNI")?;
                let encap = lsl::VxlanEncap::new(
                    vni,
                    IpAddr::V4(brg_ip),
                    IpAddr::V4(VG_VTEP),
                    EthernetAddress(ns.mac("lsl0")),
                    EthernetAddress(vg_mac),
                );
                (format!("vxlan:{vni}@{brg_ip}"), lsl::Encap::Vxlan(encap))
            }
            _ => {
                let c = vid(i)?;
                (format!("vlan:{c}"), lsl::Encap::Dot1q { c_vid: c })
            }
        };
        homes.push(Home {
            id: i,
            ns,
            kind,
            lsl,
            encap,
        });
    }

    progress("starting vgd on acc0 (native XDP), one subscriber per home");
    let config_path = std::env::temp_dir().join("nerg-lab-vgd.toml");
    let mut config = format!("[fastpath]\nvtep = \"{VG_VTEP}\"\n");
    for h in &homes {
        config.push_str(&format!(
            "\n[[subscriber]]\nid = {}\nlsl = \"{}\"\ngateway = \"{GATEWAY}/24\"\n",
            h.id, h.lsl
        ));
    }
    std::fs::write(&config_path, config).context("writing the vgd config")?;
    let pins = bpffs::prepare_pin_dir(bpffs::DEFAULT_MOUNT.as_ref(), INSTANCE)?;
    let vgd = vgd::start_with_config(&vg, "acc0", INSTANCE, Some(&config_path));
    let native = vg.has_native_xdp("acc0");

    let before = snapshot(&pins)?;
    let punts_before = punted_arp(&vg);
    progress(&format!(
        "each home's LAN host sends {FRAMES_PER_HOME} ARP requests for its gateway on its LSL"
    ));
    for home in &homes {
        let mac = [
            0x02,
            0x10,
            0,
            (home.id >> 16) as u8,
            (home.id >> 8) as u8,
            home.id as u8,
        ];
        let frame = home
            .encap
            .encapsulate(&frames::arp_request(mac, LAN_HOST, GATEWAY))
            .context("encapsulating")?;
        home.ns.run(|| -> anyhow::Result<()> {
            let sock = RawSocket::bind("lsl0").context("raw socket on lsl0")?;
            for _ in 0..FRAMES_PER_HOME {
                sock.send(&frame).context("sending a frame")?;
            }
            Ok(())
        })?;
    }
    let want = |k| homes.iter().filter(|h| h.kind == k).count() as u64 * FRAMES_PER_HOME;
    let (want_dot1q, want_qinq, want_vxlan) = (
        want(LslKind::Vlan),
        want(LslKind::Qinq),
        want(LslKind::Vxlan),
    );
    let want_total = want_dot1q + want_qinq + want_vxlan;
    let waited = std::panic::catch_unwind(|| {
        wait_until_some(
            "the vG to punt every home's frames",
            Duration::from_secs(10),
            || {
                let s = snapshot(&pins).ok()?;
                let punted = s.total(Counter::VerdictPunt) - before.total(Counter::VerdictPunt);
                let dropped = s.total(Counter::VerdictDrop) - before.total(Counter::VerdictDrop);
                (punted + dropped >= want_total && punted_arp(&vg) - punts_before >= punted)
                    .then_some(s)
            },
        )
    });
    let seen = match waited {
        Ok(s) => s,
        Err(_) => snapshot(&pins)?,
    };
    let slow_path = punted_arp(&vg) - punts_before;

    print_table(&homes, &before, &seen);
    let d = |c| seen.total(c) - before.total(c);
    let checks = [
        ("vgd ready (/ready 200)", true),
        ("XDP attached to acc0 in native mode", native),
        (
            "802.1Q frames classified",
            d(Counter::LslDot1q) == want_dot1q,
        ),
        ("QinQ frames classified", d(Counter::LslQinq) == want_qinq),
        (
            "VXLAN frames classified",
            d(Counter::LslVxlan) == want_vxlan,
        ),
        (
            "every home's ARP reached the slow path",
            slow_path == want_total,
        ),
        (
            "no drops",
            DropReason::ALL
                .iter()
                .all(|&r| seen.drops(r) == before.drops(r)),
        ),
    ];
    println!();
    for (what, ok) in checks {
        println!("{} {what}", if ok { "PASS" } else { "FAIL" });
    }
    let all_ok = checks.iter().all(|(_, ok)| *ok);

    if args.keep {
        let log = vgd.keep();
        for ns in [access, vg] {
            ns.keep();
        }
        for h in homes {
            h.ns.keep();
        }
        println!();
        println!("The lab is running (cargo xtask lab down removes it):");
        println!("  namespaces:  ip netns list | grep {NS_PREFIX}");
        println!("  enter one:   nsenter --net=/run/netns/{NS_PREFIX}vg bash");
        println!(
            "  metrics:     nsenter --net=/run/netns/{NS_PREFIX}vg curl -s http://{}/metrics",
            vgd::LISTEN
        );
        println!("  counters:    vgctl --instance {INSTANCE} stats   (target/release/vgctl)");
        println!("  vgd log:     {}", log.display());
    } else {
        let _ = std::fs::remove_file(&config_path);
        drop(vgd);
        drop(homes);
        drop(access);
        drop(vg);
        std::fs::remove_dir_all(&pins).ok();
    }
    Ok(all_ok)
}

fn snapshot(pins: &std::path::Path) -> anyhow::Result<CounterSnapshot> {
    Ok(Counters::open(pins)?.snapshot()?)
}

/// ARP frames vgd's slow path has received, from its /metrics.
fn punted_arp(vg: &Netns) -> u64 {
    let m = vgd::metrics(vg);
    nerg_tests::http::metric_sum(&m, "vg_slowpath_punts_total", &[("reason", "arp")])
}

fn print_table(homes: &[Home], before: &CounterSnapshot, seen: &CounterSnapshot) {
    println!();
    println!("{:<6} {:<28} {:>10}", "HOME", "LSL", "SENT");
    for h in homes {
        println!("{:<6} {:<28} {:>10}", h.id, h.lsl, FRAMES_PER_HOME);
    }
    println!();
    println!("vG fast path (access side, since the homes started sending):");
    for c in Counter::ALL {
        let d = seen.total(*c) - before.total(*c);
        if d > 0 {
            println!("  {:<20} {d:>10}", c.label());
        }
    }
    for r in DropReason::ALL {
        let d = seen.drops(*r) - before.drops(*r);
        if d > 0 {
            println!("  drop:{:<15} {d:>10}", r.label());
        }
    }
}
