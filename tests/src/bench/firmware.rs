//! The BRG firmware builds of `cargo xtask firmware` (`target/brg-firmware/`): the size of the
//! stripped static `brgd` per CPU, and the idle memory of the same build for the machine's
//! own CPU (`brgd-x86_64`, run natively: under qemu-user the emulator's memory would count).

use std::path::PathBuf;

use anyhow::Context as _;

use super::{Effort, Summary};

fn firmware(cpu: &str) -> anyhow::Result<PathBuf> {
    let path = crate::bin("brgd")
        .parent()
        .and_then(|release| release.parent())
        .context("the binaries' directory")?
        .join("brg-firmware")
        .join(format!("brgd-{cpu}"));
    anyhow::ensure!(
        path.is_file(),
        "{} is missing: run `cargo xtask firmware --cpu aarch64,armv7,x86_64` \
         (cargo xtask bench and test build them)",
        path.display()
    );
    Ok(path)
}

/// Sizes (KiB) of `brgd-aarch64` and `brgd-armv7`, and `brgd-x86_64`'s idle RSS after a
/// CWMP session and a connection request.
pub fn run(_effort: Effort, summary: &mut Summary) -> anyhow::Result<()> {
    for cpu in ["aarch64", "armv7"] {
        let bytes = std::fs::metadata(firmware(cpu)?)?.len();
        summary.set(&format!("brgd_{cpu}_kib"), bytes.div_ceil(1024) as f64);
    }
    let (_, rss) = super::control::brgd_sessions(&firmware("x86_64")?, 1)?;
    summary.set("brgd_firmware_idle_rss_kib", rss as f64);
    summary.note(
        "brgd_firmware_idle_rss_kib",
        "the firmware profile built for x86_64-unknown-linux-musl, run natively",
    );
    Ok(())
}
