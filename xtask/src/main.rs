//! `cargo xtask`: set-up, build, lab, test and bench orchestration.
//!
//! xtask depends on nothing in the workspace that needs the BPF toolchain, so
//! `cargo xtask setup` can build and run on a machine that has none of it yet.

mod bench;
mod firmware;
mod fuzz;
mod image;
mod lab;
mod package;
mod setup;
mod util;

use clap::{Parser, Subcommand};

/// Project tasks.
#[derive(Debug, Parser)]
#[command(name = "cargo xtask", about = "NERG project tasks")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Install what the build and the tests need (idempotent; fast when all is present).
    Setup {
        /// Only report what is missing; install nothing.
        #[arg(long)]
        check: bool,
    },
    /// Build the daemons and tools (release).
    Build,
    /// Run every check and test: fmt, clippy, unit, eBPF and namespace tests.
    Test {
        /// Extra arguments for `cargo nextest run` (e.g. a test-name filter).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        nextest_args: Vec<String>,
    },
    /// Bring up the lab in network namespaces (`lab down` removes it).
    Lab(lab::LabArgs),
    /// Run the benchmarks (root): writes target/bench/summary.json and prints a table.
    Bench(bench::BenchArgs),
    /// Build the vgd container image (podman, FROM scratch; no registry needed).
    Image(image::ImageArgs),
    /// Build the Debian packages of vgd and brgd (target/debian/*.deb).
    Package(package::PackageArgs),
    /// Fuzz every parser target from its checked-in seeds (nightly, cargo-fuzz).
    Fuzz(fuzz::FuzzArgs),
    /// Cross-build brgd for BRG CPUs (aarch64, armv7): static, size-optimised, in
    /// target/brg-firmware/.
    Firmware(firmware::FirmwareArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Setup { check } => setup::run(check),
        Command::Build => setup::run(false).and_then(|()| build_release()),
        Command::Test { nextest_args } => test(&nextest_args),
        Command::Lab(args) => lab::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Fuzz(args) => fuzz::run(args),
        Command::Image(args) => image::run(args),
        Command::Package(args) => package::run(args),
        Command::Firmware(args) => firmware::run(args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("xtask: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn build_release() -> anyhow::Result<()> {
    util::step("building release binaries");
    util::cargo(&["build", "--release", "--workspace", "--bins"])
}

fn test(nextest_args: &[String]) -> anyhow::Result<()> {
    setup::run(false)?;
    util::step("cargo fmt --check");
    util::cargo(&["fmt", "--all", "--", "--check"])?;
    util::step("cargo clippy");
    util::cargo(&[
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ])?;
    util::step("building binaries the namespace tests run");
    util::cargo(&["build", "--workspace", "--bins"])?;
    // tests/tests/firmware.rs runs these under qemu-user and checks their sizes, the quick
    // benchmark measures the x86_64 one's memory; cargo's cache makes this quick when brgd
    // has not changed.
    firmware::build(firmware::ALL_CPUS)?;
    util::step("unit, eBPF (BPF_PROG_TEST_RUN) and namespace tests");
    let mut args = vec!["nextest", "run", "--workspace", "--no-fail-fast"];
    args.extend(nextest_args.iter().map(String::as_str));
    // nextest's closing "Summary ... N tests run: N passed" is the last thing printed.
    util::cargo(&args)
}
