//! `cargo xtask fuzz`: every cargo-fuzz target of the workspace, each for a while, starting
//! from its checked-in seeds (and the corpus earlier runs grew, kept under
//! `<crate>/fuzz/corpus/<target>`, which git ignores). Installs cargo-fuzz if it is missing.
//! A crash stops the run with libFuzzer's report and the input that caused it.

use std::process::Command;

use anyhow::Context as _;

use crate::util::{self, step};

/// One fuzz target: its crate (a folder with a `fuzz/` beside its `Cargo.toml`), its name,
/// where its seeds are, and the extra libFuzzer arguments it needs.
struct Target {
    krate: &'static str,
    name: &'static str,
    seeds: &'static str,
    extra: &'static [&'static str],
}

const TARGETS: &[Target] = &[
    Target {
        krate: "lsl",
        name: "decapsulate",
        seeds: "fuzz/seeds/decapsulate",
        extra: &[],
    },
    Target {
        krate: "lsl",
        name: "lsl_id",
        seeds: "fuzz/seeds/lsl_id",
        extra: &[],
    },
    Target {
        krate: "cwmp",
        name: "decode",
        seeds: "src/soap/fixtures",
        extra: &["-dict=fuzz/decode.dict", "-max_len=8192"],
    },
    Target {
        krate: "vg/engines",
        name: "engine",
        seeds: "fuzz/seeds/engine",
        extra: &[],
    },
    Target {
        krate: "vg/engines",
        name: "nd",
        seeds: "fuzz/seeds/nd",
        extra: &[],
    },
    Target {
        krate: "vg/engines",
        name: "dhcp6",
        seeds: "fuzz/seeds/dhcp6",
        extra: &[],
    },
    Target {
        krate: "vg/engines",
        name: "frames6",
        seeds: "fuzz/seeds/frames6",
        extra: &[],
    },
];

/// `cargo xtask fuzz` arguments.
#[derive(Debug, clap::Args)]
pub(crate) struct FuzzArgs {
    /// Seconds per target.
    #[arg(long, default_value_t = 60)]
    seconds: u32,
    /// Only these targets (default: all).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
}

pub(crate) fn run(args: FuzzArgs) -> anyhow::Result<()> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    if util::output(Command::new(&cargo).args(["fuzz", "--version"])).is_none() {
        step("installing cargo-fuzz");
        util::status(Command::new(&cargo).args(["install", "cargo-fuzz", "--locked"]))?;
    }
    let root = util::workspace_root();
    for t in TARGETS {
        if !args.only.is_empty() && !args.only.iter().any(|o| o == t.name) {
            continue;
        }
        let dir = root.join(t.krate);
        let corpus = format!("fuzz/corpus/{}", t.name);
        std::fs::create_dir_all(dir.join(&corpus))
            .with_context(|| format!("creating {}/{corpus}", t.krate))?;
        step(&format!(
            "fuzzing {}::{} for {} s from {}",
            t.krate, t.name, args.seconds, t.seeds
        ));
        // cargo-fuzz needs nightly: through rustup, whichever cargo runs xtask.
        let mut cmd = Command::new("rustup");
        cmd.current_dir(&dir)
            .args([
                "run", "nightly", "cargo", "fuzz", "run", "-O", t.name, &corpus,
            ])
            .args([t.seeds, "--"])
            .arg(format!("-max_total_time={}", args.seconds))
            .args(t.extra);
        util::status(&mut cmd)?;
    }
    Ok(())
}
