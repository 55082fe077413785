//! `nerg-lab`: the NERG lab in network namespaces (run through `cargo xtask lab`).
//!
//! Today it brings up what exists: the vG namespace with `vgd` attached to its access
//! interface, an access network (a Linux bridge), and one namespace per home's BRG sending
//! frames on its LSL (802.1Q or QinQ, tags in-line as our BRG tagger writes them); then it
//! prints what the vG's fast path saw, per LSL kind, with a pass/fail line per check. DHCP,
//! NAT, brgd and the ACS join as their issues land.

use std::{process::ExitCode, time::Duration};

use anyhow::{Context as _, bail};
use clap::{Parser, Subcommand, ValueEnum};
use nerg_abi::{Counter, DropReason, ethertype};
use nerg_tests::{Netns, raw::RawSocket, vgd, wait_until_some};
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
    /// VXLAN (arrives with the fast-path issue).
    Vxlan,
    /// Homes alternate between the kinds available.
    Mixed,
}

struct Home {
    ns: Netns,
    kind: LslKind,
    s_vid: Option<u16>,
    c_vid: u16,
}

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

    progress("starting vgd on acc0 (native XDP)");
    let pins = bpffs::prepare_pin_dir(bpffs::DEFAULT_MOUNT.as_ref(), INSTANCE)?;
    let vgd = vgd::start(&vg, "acc0", INSTANCE);
    let native = vg.has_xdp("acc0")
        && String::from_utf8_lossy(&vg.ip(&["-d", "link", "show", "acc0"]).stdout).contains("xdp");

    progress(&format!(
        "{} BRG namespaces on the access bridge",
        args.homes
    ));
    let mut homes = Vec::new();
    for i in 1..=args.homes {
        let ns = Netns::named(&format!("{NS_PREFIX}brg{i}"));
        ns.disable_ipv6();
        let port = format!("brg{i}");
        nerg_tests::netns::veth(&ns, "lsl0", &access, &port);
        access.ip(&["link", "set", &port, "master", "br0"]);
        let kind = match args.lsl {
            LslKind::Mixed if i % 2 == 0 => LslKind::Qinq,
            LslKind::Mixed => LslKind::Vlan,
            other => other,
        };
        let (s_vid, c_vid) = match kind {
            LslKind::Qinq => (Some(100 + i / 100), 100 + i % 100),
            _ => (None, 100 + i),
        };
        homes.push(Home {
            ns,
            kind,
            s_vid,
            c_vid,
        });
    }

    let before = snapshot(&pins)?;
    progress(&format!(
        "each home sends {FRAMES_PER_HOME} frames on its LSL"
    ));
    for home in &homes {
        let frame = lsl_frame(home);
        home.ns.run(|| -> anyhow::Result<()> {
            let sock = RawSocket::bind("lsl0").context("raw socket on lsl0")?;
            for _ in 0..FRAMES_PER_HOME {
                sock.send(&frame).context("sending a frame")?;
            }
            Ok(())
        })?;
    }
    let want = |k| homes.iter().filter(|h| h.kind == k).count() as u64 * FRAMES_PER_HOME;
    let (want_dot1q, want_qinq) = (want(LslKind::Vlan), want(LslKind::Qinq));
    let seen = wait_until_some(
        "the vG to count the homes' frames",
        Duration::from_secs(10),
        || {
            let s = snapshot(&pins).ok()?;
            let dq = s.total(Counter::LslDot1q) - before.total(Counter::LslDot1q);
            let qq = s.total(Counter::LslQinq) - before.total(Counter::LslQinq);
            (dq >= want_dot1q && qq >= want_qinq).then_some(s)
        },
    );

    print_table(&homes, &before, &seen);
    let d = |c| seen.total(c) - before.total(c);
    let checks = [
        ("vgd ready (/ready 200)", true),
        ("XDP attached to acc0 in native mode", native),
        ("802.1Q frames counted", d(Counter::LslDot1q) == want_dot1q),
        ("QinQ frames counted", d(Counter::LslQinq) == want_qinq),
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

/// A broadcast frame with the home's tags in-line (as the BRG tagger writes them).
fn lsl_frame(home: &Home) -> Vec<u8> {
    let mut f = vec![0xff; 6];
    f.extend_from_slice(&home.ns.mac("lsl0"));
    if let Some(s_vid) = home.s_vid {
        f.extend_from_slice(&ethertype::QINQ.to_be_bytes());
        f.extend_from_slice(&s_vid.to_be_bytes());
    }
    f.extend_from_slice(&ethertype::VLAN.to_be_bytes());
    f.extend_from_slice(&home.c_vid.to_be_bytes());
    f.extend_from_slice(&ethertype::IPV4.to_be_bytes());
    f.resize(f.len() + 46, 0);
    f
}

fn print_table(homes: &[Home], before: &CounterSnapshot, seen: &CounterSnapshot) {
    println!();
    println!("{:<6} {:<16} {:>10}", "HOME", "LSL", "SENT");
    for (i, h) in homes.iter().enumerate() {
        let lsl = match h.s_vid {
            Some(s) => format!("qinq {s}.{}", h.c_vid),
            None => format!("vlan {}", h.c_vid),
        };
        println!("{:<6} {:<16} {:>10}", i + 1, lsl, FRAMES_PER_HOME);
    }
    println!();
    println!("vG fast path (access side, since the homes started sending):");
    for c in Counter::ALL {
        let d = seen.total(*c) - before.total(*c);
        if d > 0 {
            println!("  {:<20} {d:>10}", c.label());
        }
    }
}
