//! `cargo xtask bench`: set-up, release build, then the `nerg-bench` binary (tests crate),
//! which runs the benchmarks as root, writes `target/bench/summary.json` and prints the
//! table. `--quick` runs every benchmark with tiny counts (what `cargo xtask test` checks);
//! `--generator af-packet` makes the forwarding benchmark use its AF_PACKET traffic generator
//! even where the kernel runs live frames.

use std::process::Command;

use anyhow::bail;

use crate::{setup, util};

/// Flags of `cargo xtask bench`.
#[derive(Debug, clap::Args)]
pub(crate) struct BenchArgs {
    /// Tiny counts: proves every benchmark runs; the figures mean nothing.
    #[arg(long)]
    quick: bool,
    /// Run only these benchmarks (comma-separated; see `nerg-bench --help`).
    #[arg(long)]
    only: Option<String>,
    /// The forwarding benchmark's traffic generator: auto, live or af-packet (see
    /// `nerg-bench --help`; default auto, or `NERG_BENCH_GENERATOR`).
    #[arg(long)]
    generator: Option<String>,
}

/// Set-up, release build, then the benchmarks.
pub(crate) fn run(args: BenchArgs) -> anyhow::Result<()> {
    if !nix::unistd::geteuid().is_root() {
        bail!("the benchmarks need root (network namespaces, XDP, bpffs): run as root");
    }
    setup::run(false)?;
    util::step("building release binaries");
    util::cargo(&["build", "--release", "--workspace", "--bins"])?;
    // The firmware figures (brgd_aarch64_kib, brgd_armv7_kib, its idle memory).
    crate::firmware::build(crate::firmware::ALL_CPUS)?;
    let root = util::workspace_root();
    let bench = root.join("target/release/nerg-bench");
    let out = root.join("target/bench/summary.json");
    let mut cmd = Command::new(bench);
    cmd.arg("--out").arg(&out).current_dir(&root);
    if args.quick {
        cmd.arg("--quick");
    }
    if let Some(only) = &args.only {
        cmd.args(["--only", only]);
    }
    if let Some(generator) = &args.generator {
        cmd.args(["--generator", generator]);
    }
    util::step("running the benchmarks");
    util::status(&mut cmd)
}
