//! `cargo xtask lab`: builds, then hands over to the `nerg-lab` binary (tests crate), which
//! brings up the namespaces, runs the daemons and prints the status table.

use std::process::Command;

use crate::{setup, util};

/// Flags of `cargo xtask lab`, passed through to `nerg-lab`.
#[derive(Debug, clap::Args)]
pub(crate) struct LabArgs {
    /// Everything after `lab` (e.g. `--homes 4`, `--keep`, `--container`, `down`).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<String>,
}

/// Set-up, release build, then the lab itself.
pub(crate) fn run(args: LabArgs) -> anyhow::Result<()> {
    let down = args.args.first().is_some_and(|a| a == "down");
    if !down {
        setup::run(false)?;
        util::step("building release binaries");
        util::cargo(&["build", "--release", "--workspace", "--bins"])?;
    }
    let mut args = args.args;
    // `--container`: vgd runs from the image, built here from the release binaries.
    if let Some(i) = args.iter().position(|a| a == "--container") {
        let release = util::workspace_root().join("target/release");
        let mib = crate::image::build(&release, crate::image::DEFAULT_TAG)?;
        util::step(&format!(
            "image {} ({mib:.1} MiB)",
            crate::image::DEFAULT_TAG
        ));
        args.insert(i + 1, crate::image::DEFAULT_TAG.to_owned());
    }
    let lab = util::workspace_root().join("target/release/nerg-lab");
    if !lab.is_file() {
        anyhow::bail!(
            "{} is missing: run `cargo xtask lab` (without `down`) first",
            lab.display()
        );
    }
    util::status(Command::new(lab).args(&args))
}
