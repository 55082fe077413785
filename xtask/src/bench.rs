//! `cargo xtask bench`: set-up, release build, then the `nerg-bench` binary (tests crate),
//! which runs the benchmarks as root, writes `target/bench/summary.json` and prints the
//! table. `--quick` runs every benchmark with tiny counts (what `cargo xtask test` checks);
//! `--generator af-packet` makes the forwarding benchmark use its AF_PACKET traffic generator
//! even where the kernel runs live frames. The vgd container image is built and its size
//! recorded as `vgd_image_mib`.

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
    // The container image's size is measured here, not by nerg-bench: building the image
    // is xtask's (`--only image` measures it alone).
    let mut only: Option<Vec<&str>> = args.only.as_deref().map(|o| o.split(',').collect());
    let image = only.as_ref().is_none_or(|o| o.contains(&"image"));
    if let Some(o) = &mut only {
        o.retain(|b| *b != "image");
    }
    let image_mib = if image {
        Some(crate::image::build(
            &root.join("target/release"),
            crate::image::DEFAULT_TAG,
        )?)
    } else {
        None
    };
    let out = root.join("target/bench/summary.json");
    if only.as_ref().is_none_or(|o| !o.is_empty()) {
        let mut cmd = Command::new(root.join("target/release/nerg-bench"));
        cmd.arg("--out").arg(&out).current_dir(&root);
        if args.quick {
            cmd.arg("--quick");
        }
        if let Some(only) = &only {
            cmd.args(["--only", &only.join(",")]);
        }
        if let Some(generator) = &args.generator {
            cmd.args(["--generator", generator]);
        }
        util::step("running the benchmarks");
        util::status(&mut cmd)?;
    }
    if let Some(mib) = image_mib {
        record(&out, "vgd_image_mib", mib)?;
        println!(
            "vgd container image ({}): {mib:.1} MiB (target <= 40)",
            crate::image::DEFAULT_TAG
        );
    }
    Ok(())
}

/// Adds `key` = `value` to the flat JSON object in `summary` (created if missing).
fn record(summary: &std::path::Path, key: &str, value: f64) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let mut map: serde_json::Map<String, serde_json::Value> = match std::fs::read(summary) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .with_context(|| format!("{} is not a JSON object", summary.display()))?,
        Err(_) => serde_json::Map::new(),
    };
    map.insert(
        key.to_owned(),
        serde_json::json!((value * 100.0).round() / 100.0),
    );
    if let Some(dir) = summary.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let text = serde_json::to_string_pretty(&serde_json::Value::Object(map))?;
    std::fs::write(summary, text + "\n").with_context(|| format!("writing {}", summary.display()))
}
