//! `nerg-bench`: the NERG benchmarks (run them through `cargo xtask bench`; needs root).
//!
//! Runs each benchmark of [`nerg_tests::bench`], writes every figure to
//! `target/bench/summary.json` (one flat JSON object, numbers only, units in the key names)
//! and prints a table. `--quick` runs everything with tiny counts: it proves the code works
//! (`cargo xtask test` runs it), its figures mean nothing. `--generator` (or
//! `NERG_BENCH_GENERATOR`) picks the forwarding benchmark's traffic generator: `auto`
//! (live frames where the kernel runs them, else AF_PACKET), `live` or `af-packet`.

use std::{path::PathBuf, process::ExitCode};

use anyhow::Context as _;
use clap::{Parser, ValueEnum};
use nerg_tests::bench::{self, Effort, Summary, live};

/// Flags.
#[derive(Debug, Parser)]
#[command(name = "nerg-bench", about = "NERG benchmarks")]
struct Args {
    /// Tiny counts: checks that every benchmark runs; the figures mean nothing.
    #[arg(long)]
    quick: bool,
    /// Where to write the summary.
    #[arg(long, default_value = "target/bench/summary.json")]
    out: PathBuf,
    /// Run only these benchmarks (default: all).
    #[arg(long, value_enum, value_delimiter = ',')]
    only: Vec<Which>,
    /// The forwarding benchmark's traffic generator: live frames where the kernel allows
    /// them (auto), or forced.
    #[arg(long, value_enum, env = "NERG_BENCH_GENERATOR", default_value = "auto")]
    generator: live::GeneratorChoice,
}

/// The benchmarks, in the order they run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Which {
    /// 1: fast-path cost per packet (BPF_PROG_TEST_RUN).
    Fastpath,
    /// 2: forwarding rate on veth: the vG, Linux NAT, a no-op XDP redirect.
    Live,
    /// 3: the DHCP engine alone.
    DhcpEngine,
    /// 3: DHCP over the wire, perfdhcp against vgd and Kea.
    DhcpWire,
    /// 3: DHCPv6 over the wire, perfdhcp -6 against vgd and Kea.
    Dhcpv6Wire,
    /// 3: DHCP over the wire through vgd from many homes (a tool of ours).
    DhcpManyHomes,
    /// 4: NAT sessions the maps hold and their memory.
    ScaleNat,
    /// 4: vgd's memory with many subscribers.
    ScaleVgd,
    /// 4: provisioning 100,000 subscribers through the REST API.
    Provision,
    /// 5: brgd: one CWMP session's latency, idle memory.
    Brgd,
    /// The BRG firmware builds: brgd's size per CPU, idle memory.
    Firmware,
    /// The slow path's round trip against the fast path's (the punt mechanism).
    Slowpath,
    /// The route cache's hit rate under light flows from many homes.
    RouteCache,
}

type BenchFn = fn(Effort, &mut Summary) -> anyhow::Result<()>;

const ALL: &[(Which, BenchFn)] = &[
    (Which::Fastpath, bench::fastpath::run),
    (Which::DhcpEngine, bench::dhcp::engine),
    (Which::Live, bench::live::run),
    (Which::DhcpWire, bench::dhcp::wire),
    (Which::Dhcpv6Wire, bench::dhcp6_wire::wire),
    (Which::DhcpManyHomes, bench::dhcp::many_homes),
    (Which::ScaleNat, bench::scale::nat),
    (Which::ScaleVgd, bench::scale::vgd_memory),
    (Which::Provision, bench::control::provision),
    (Which::Brgd, bench::control::brgd),
    (Which::Firmware, bench::firmware::run),
    (Which::Slowpath, bench::control::slowpath),
    (Which::RouteCache, bench::fastpath::route_cache),
];

fn main() -> ExitCode {
    let args = Args::parse();
    nerg_tests::require_root();
    let effort = Effort {
        generator: args.generator,
        ..Effort::new(args.quick)
    };
    let mut summary = Summary::default();
    let mut failed = Vec::new();
    for (which, run) in ALL {
        if !args.only.is_empty() && !args.only.contains(which) {
            continue;
        }
        eprintln!("==> bench {which:?}");
        let started = std::time::Instant::now();
        // The namespace harness panics on set-up failures (it is shared with the tests): a
        // failed benchmark is reported and the others still run.
        let result =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(effort, &mut summary)));
        match result {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                eprintln!("bench {which:?} failed: {e:#}");
                failed.push(*which);
            }
            Err(_) => {
                eprintln!("bench {which:?} panicked (message above)");
                failed.push(*which);
            }
        }
        eprintln!(
            "    {which:?} took {:.1} s",
            started.elapsed().as_secs_f64()
        );
    }
    if let Err(e) = finish(&args, &summary) {
        eprintln!("nerg-bench: {e:#}");
        return ExitCode::FAILURE;
    }
    if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        eprintln!("nerg-bench: failed: {failed:?}");
        ExitCode::FAILURE
    }
}

fn finish(args: &Args, summary: &Summary) -> anyhow::Result<()> {
    summary
        .write_json(&args.out)
        .context("writing the summary")?;
    println!(
        "NERG benchmarks{} on {}",
        if args.quick {
            " (quick: figures mean nothing)"
        } else {
            ""
        },
        bench::machine()
    );
    print!("{}", summary.table());
    println!("summary: {}", args.out.display());
    Ok(())
}
