//! `cargo xtask firmware`: `brgd`, with its eBPF tagger embedded, cross-built for the CPUs
//! BRGs have, statically linked, in the size-optimised `firmware` profile (workspace
//! `Cargo.toml`), copied to `target/brg-firmware/brgd-<cpu>`.
//!
//! Every build uses the nightly toolchain with the standard library built from source for
//! size (see [`SIZE_FLAGS`]); the stable toolchain's builds were 3.0 MB on aarch64.
//!
//! How each CPU is built here (Debian 12 x86_64, Rust from rustup):
//! - `aarch64`: `aarch64-unknown-linux-musl`, linked by `rust-lld` against the musl and crt
//!   objects the target's rust-std ships (`self-contained`; rustup has that target's
//!   rust-std only for the stable toolchain, so set-up copies those objects into the nightly
//!   one, whose own download is refused here); ring's C and assembly parts are
//!   compiled by Debian's `aarch64-linux-gnu-gcc` (only compiler-provided and libc type
//!   headers are used, so the glibc headers of `libc6-dev-arm64-cross` do).
//! - `armv7`: `armv7-unknown-linux-musleabihf`, linked by `rust-lld` likewise. rustup
//!   refuses that target's rust-std here (404, stable and nightly), so the standard library
//!   is built from source anyway and set-up assembles the C runtime from Debian: musl's
//!   (`musl-dev:armhf`, multiarch) with the ARM cross gcc's start/end objects and unwinder
//!   (see `setup::musl_crt_sources`); ring's C parts by `arm-linux-gnueabihf-gcc`.
//! - `x86_64` (not built by default): `x86_64-unknown-linux-musl`, the same profile for the
//!   build machine's CPU, so that the firmware build's memory can be measured natively
//!   (`cargo xtask bench`); under qemu-user the emulator's own memory would be counted.
//!
//! The BPF object is the same bytecode for every little-endian CPU: `brg/build.rs` builds it
//! for `bpfel` whatever the target, and each binary is checked to embed a non-empty BPF ELF.

use std::{path::PathBuf, process::Command};

use anyhow::{Context as _, bail, ensure};

use crate::{setup, util};

/// Flags of `cargo xtask firmware`.
#[derive(Debug, clap::Args)]
pub(crate) struct FirmwareArgs {
    /// CPUs to build for (default: aarch64,armv7).
    #[arg(long, value_enum, value_delimiter = ',')]
    cpu: Vec<Cpu>,
}

/// A CPU `brgd` is built for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Cpu {
    /// 64-bit ARM (aarch64-unknown-linux-musl).
    Aarch64,
    /// 32-bit ARM, hard float (armv7-unknown-linux-musleabihf).
    Armv7,
    /// The build machine's CPU (x86_64-unknown-linux-musl), for measurements.
    #[value(name = "x86_64")]
    X86_64,
}

/// The CPUs built when none is named: those of BRGs.
pub(crate) const DEFAULT_CPUS: &[Cpu] = &[Cpu::Aarch64, Cpu::Armv7];
/// Every CPU: what the tests and the benchmarks need (sizes, qemu-user, idle memory).
pub(crate) const ALL_CPUS: &[Cpu] = &[Cpu::Aarch64, Cpu::Armv7, Cpu::X86_64];

/// Rust flags of every firmware build (nightly: see [`NIGHTLY_ARGS`]). Panics abort at
/// once, without formatting a message or walking the stack (`immediate-abort`), panic
/// locations are not kept (`location-detail=none`), and nothing unwinds, so no unwind
/// tables. Together with the standard library built for size, this takes brgd from 3.0 MB
/// to 2.2 MB on aarch64. The price: a panic on the device ends brgd without a message
/// (procd or systemd restarts it; brgd's state is journalled).
const SIZE_FLAGS: &str = "-Zunstable-options -Cpanic=immediate-abort -Zlocation-detail=none \
                          -Cforce-unwind-tables=no";

/// Cargo arguments of every firmware build: the standard library is built from source
/// (nightly's `rust-src`, which set-up installs for the eBPF build anyway) with the flags
/// above and for size, instead of the prebuilt one with its unwinding and backtraces.
const NIGHTLY_ARGS: &[&str] = &[
    "-Zbuild-std=std,panic_abort",
    "-Zbuild-std-features=optimize_for_size",
];

/// The toolchain of the firmware builds.
const TOOLCHAIN: &str = "nightly";

/// How to build for one CPU.
struct Recipe {
    /// The Rust target triple.
    triple: &'static str,
    /// The linker (`CARGO_TARGET_<TRIPLE>_LINKER`).
    linker: &'static str,
    /// C compiler and archiver for crates with C parts (ring), if not the host's.
    cc: Option<(&'static str, &'static str)>,
    /// Target rustflags besides [`SIZE_FLAGS`]: the linker's option dropping the unwind
    /// lookup table, and static linking where it is not the target's default.
    rustflags: &'static str,
    /// Whether the target links with musl's C runtime objects from the Rust sysroot
    /// (`self-contained`), which set-up copies into the nightly toolchain.
    musl: bool,
    /// Whether rustup installs the target's standard library (for the musl C runtime it
    /// ships); armv7's comes from Debian instead (`setup::musl_crt_sources`).
    rustup: bool,
    /// ELF `e_machine` of the result (EM_AARCH64, EM_ARM, EM_X86_64).
    machine: u16,
}

impl Cpu {
    /// The short name used in file names and figures.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Cpu::Aarch64 => "aarch64",
            Cpu::Armv7 => "armv7",
            Cpu::X86_64 => "x86_64",
        }
    }

    fn recipe(self) -> Recipe {
        match self {
            Cpu::Aarch64 => Recipe {
                triple: "aarch64-unknown-linux-musl",
                linker: "rust-lld",
                cc: Some(("aarch64-linux-gnu-gcc", "aarch64-linux-gnu-ar")),
                rustflags: "-Clink-arg=--no-eh-frame-hdr",
                musl: true,
                rustup: true,
                machine: 183,
            },
            Cpu::Armv7 => Recipe {
                triple: "armv7-unknown-linux-musleabihf",
                linker: "rust-lld",
                cc: Some(("arm-linux-gnueabihf-gcc", "arm-linux-gnueabihf-ar")),
                rustflags: "-Clink-arg=--no-eh-frame-hdr",
                musl: true,
                rustup: false,
                machine: 40,
            },
            Cpu::X86_64 => Recipe {
                triple: "x86_64-unknown-linux-musl",
                linker: "rust-lld",
                // cc-rs would look for x86_64-linux-musl-gcc; ring's C needs no libc.
                cc: Some(("gcc", "ar")),
                rustflags: "-Clink-arg=--no-eh-frame-hdr",
                musl: true,
                rustup: true,
                machine: 62,
            },
        }
    }

    /// The Rust targets rustup installs for the firmware; set-up adds them.
    pub(crate) fn rustup_triples() -> impl Iterator<Item = &'static str> {
        ALL_CPUS
            .iter()
            .map(|c| c.recipe())
            .filter(|r| r.rustup)
            .map(|r| r.triple)
    }

    /// The musl targets, whose C runtime objects the nightly toolchain needs (set-up).
    pub(crate) fn musl_triples() -> impl Iterator<Item = &'static str> {
        ALL_CPUS
            .iter()
            .map(|c| c.recipe())
            .filter(|r| r.musl)
            .map(|r| r.triple)
    }
}

/// Where the firmware binaries go.
pub(crate) fn out_dir() -> PathBuf {
    util::workspace_root().join("target/brg-firmware")
}

/// Set-up, then the builds.
pub(crate) fn run(args: FirmwareArgs) -> anyhow::Result<()> {
    setup::run(false)?;
    let cpus = if args.cpu.is_empty() {
        DEFAULT_CPUS
    } else {
        &args.cpu
    };
    build(cpus)
}

/// Builds `brgd` for each of `cpus`, checks it and reports its size.
pub(crate) fn build(cpus: &[Cpu]) -> anyhow::Result<()> {
    std::fs::create_dir_all(out_dir())?;
    for &cpu in cpus {
        let r = cpu.recipe();
        util::step(&format!("firmware: brgd for {} ({})", cpu.name(), r.triple));
        let env_triple = r.triple.to_uppercase().replace('-', "_");
        let cc_triple = r.triple.replace('-', "_");
        let mut cmd = Command::new("rustup");
        cmd.args(["run", TOOLCHAIN, "cargo", "build"])
            .args(NIGHTLY_ARGS)
            .args(["--profile", "firmware", "--target", r.triple])
            .args(["-p", "brg", "--bin", "brgd"])
            .current_dir(util::workspace_root())
            .env(format!("CARGO_TARGET_{env_triple}_LINKER"), r.linker)
            .env(
                format!("CARGO_TARGET_{env_triple}_RUSTFLAGS"),
                format!("{SIZE_FLAGS} {}", r.rustflags),
            );
        if let Some((cc, ar)) = r.cc {
            cmd.env(format!("CC_{cc_triple}"), cc)
                .env(format!("AR_{cc_triple}"), ar);
        }
        util::status(&mut cmd)?;
        let built = util::workspace_root()
            .join("target")
            .join(r.triple)
            .join("firmware/brgd");
        let dest = out_dir().join(format!("brgd-{}", cpu.name()));
        std::fs::copy(&built, &dest)
            .with_context(|| format!("copying {} to {}", built.display(), dest.display()))?;
        let bytes = std::fs::read(&dest).with_context(|| format!("reading {}", dest.display()))?;
        check(&bytes, r.machine).with_context(|| format!("{} is not usable", dest.display()))?;
        eprintln!(
            "    {}: {} KiB stripped, static, tagger embedded",
            dest.display(),
            bytes.len().div_ceil(1024)
        );
    }
    Ok(())
}

/// Checks that `elf` is a static executable for `machine` that embeds a BPF object with
/// code in it (an `AYA_BUILD_SKIP` build embeds an empty one, and brgd would refuse to tag).
fn check(elf: &[u8], machine: u16) -> anyhow::Result<()> {
    ensure!(
        elf.len() > 64 && elf.starts_with(b"\x7fELF"),
        "not an ELF file"
    );
    let is64 = elf[4] == 2;
    ensure!(elf[5] == 1, "not little-endian");
    let u16_at = |o: usize| u16::from_le_bytes([elf[o], elf[o + 1]]);
    let u32_at = |o: usize| u32::from_le_bytes([elf[o], elf[o + 1], elf[o + 2], elf[o + 3]]);
    let got = u16_at(18);
    ensure!(got == machine, "ELF machine {got}, expected {machine}");
    // Program headers: a PT_INTERP (3) entry names the dynamic loader, without which no
    // shared library can be loaded. (A static PIE, which x86_64 musl builds are, has a
    // PT_DYNAMIC for relocating itself and no interpreter: static.)
    let (phoff, phentsize, phnum) = if is64 {
        let off = u64::from_le_bytes(elf[32..40].try_into()?);
        (usize::try_from(off)?, u16_at(54), u16_at(56))
    } else {
        (u32_at(28) as usize, u16_at(42), u16_at(44))
    };
    for i in 0..usize::from(phnum) {
        let at = phoff + i * usize::from(phentsize);
        ensure!(at + 4 <= elf.len(), "program headers out of the file");
        if u32_at(at) == 3 {
            bail!("it asks for a program interpreter: not statically linked");
        }
    }
    // The embedded tagger: an ELF header for EM_BPF (247) somewhere past the start, whose
    // section table lies inside the file (a 64-bit relocatable object with sections).
    let bpf = (1..elf.len() - 64).find(|&i| {
        elf[i..].starts_with(b"\x7fELF\x02\x01")
            && u16::from_le_bytes([elf[i + 18], elf[i + 19]]) == 247
    });
    let Some(at) = bpf else {
        bail!("no BPF object inside: was it built with AYA_BUILD_SKIP=1?");
    };
    let shnum = u16::from_le_bytes([elf[at + 60], elf[at + 61]]);
    ensure!(
        shnum > 2,
        "the embedded BPF object at byte {at} has {shnum} sections: empty"
    );
    Ok(())
}
