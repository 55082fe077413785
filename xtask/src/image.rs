//! `cargo xtask image`: the vgd container image, built with podman (Debian's) from
//! `deploy/container/Containerfile`, `FROM scratch`: no registry is needed or reachable.
//!
//! The build context is a root filesystem assembled here from exactly what the image runs:
//! `vgd` and `vgctl` (stripped copies), every shared library `ldd` lists
//! for them (glibc, libgcc_s, the loader), `/etc/passwd` and `/etc/group` with the
//! `vgd` user (uid 65532) and an empty state directory. The image's size is printed;
//! `cargo xtask bench` records it in its summary (`vgd_image_mib`).

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, bail};

use crate::{setup, util};

/// The image's default name.
pub(crate) const DEFAULT_TAG: &str = "localhost/nerg/vgd:latest";

/// The user vgd runs as inside the image (the "nonroot" id distroless images use).
const VGD_UID: u32 = 65532;

/// podman's global flags on these machines: runc (crun refuses this host's hybrid cgroup
/// layout) and cgroupfs (no systemd as PID 1 here). See platform.md. The tests have the
/// same list (`nerg_tests::container::PODMAN_GLOBAL`): xtask builds without the workspace.
const PODMAN_GLOBAL: &[&str] = &["--runtime", "runc", "--cgroup-manager", "cgroupfs"];

/// Flags of `cargo xtask image`.
#[derive(Debug, clap::Args)]
pub(crate) struct ImageArgs {
    /// The image's name.
    #[arg(long, default_value = DEFAULT_TAG)]
    tag: String,
    /// Take vgd and vgctl from this directory instead of building them (release); the
    /// container test passes the binaries it was built with.
    #[arg(long)]
    bin_dir: Option<PathBuf>,
}

/// Set-up, release build (unless `--bin-dir`), then the image.
pub(crate) fn run(args: ImageArgs) -> anyhow::Result<()> {
    let bin_dir = match args.bin_dir {
        Some(dir) => dir,
        None => {
            setup::run(false)?;
            util::step("building vgd and vgctl (release)");
            util::cargo(&["build", "--release", "-p", "vg", "--bins"])?;
            util::workspace_root().join("target/release")
        }
    };
    let mib = build(&bin_dir, &args.tag)?;
    println!("{} built: {mib:.1} MiB", args.tag);
    Ok(())
}

/// Builds the image `tag` from the binaries in `bin_dir`; returns its size in MiB.
pub(crate) fn build(bin_dir: &Path, tag: &str) -> anyhow::Result<f64> {
    if !nix::unistd::geteuid().is_root() {
        bail!("building the image needs root (podman's storage in /var/lib/containers)");
    }
    let root = util::workspace_root();
    let context = root.join("target/image/context");
    util::step(&format!(
        "assembling the image's root filesystem in {}",
        context.display()
    ));
    assemble(bin_dir, &context)?;
    std::fs::copy(
        root.join("deploy/container/Containerfile"),
        context.join("Containerfile"),
    )
    .context("copying deploy/container/Containerfile")?;

    let image_id = |tag: &str| {
        util::output(
            Command::new("podman")
                .args(PODMAN_GLOBAL)
                .args(["image", "inspect", "--format", "{{.Id}}", tag]),
        )
        .map(|id| id.trim().to_owned())
    };
    let previous = image_id(tag);
    util::step(&format!("podman build -t {tag}"));
    let mut build = Command::new("podman");
    build
        .args(PODMAN_GLOBAL)
        .args(["build", "--quiet", "--layers=false", "-t", tag, "-f"])
        .arg(context.join("Containerfile"))
        .arg(&context);
    util::status(&mut build)
        .context("podman build failed (is podman installed? cargo xtask setup)")?;
    // The image the tag named before is left without a name: remove it (unless a
    // container still uses it), or every build would leave one behind.
    if let Some(old) = previous.filter(|old| image_id(tag).as_ref() != Some(old)) {
        let _ = util::output(
            Command::new("podman")
                .args(PODMAN_GLOBAL)
                .args(["rmi", &old]),
        );
    }

    let size = util::output(Command::new("podman").args(PODMAN_GLOBAL).args([
        "image",
        "inspect",
        "--format",
        "{{.Size}}",
        tag,
    ]))
    .context("podman image inspect failed")?;
    let bytes: f64 = size
        .trim()
        .parse()
        .with_context(|| format!("podman reported the size {size:?}"))?;
    Ok(bytes / (1024.0 * 1024.0))
}

/// Lays out the build context: `rootfs/` (what the image holds) and `state/` (the empty
/// state directory, copied owned by the vgd user).
fn assemble(bin_dir: &Path, context: &Path) -> anyhow::Result<()> {
    if context.exists() {
        std::fs::remove_dir_all(context)
            .with_context(|| format!("removing the old {}", context.display()))?;
    }
    let rootfs = context.join("rootfs");
    std::fs::create_dir_all(context.join("state"))?;
    let mut executables = Vec::new();
    for name in ["vgd", "vgctl"] {
        let from = bin_dir.join(name);
        if !from.is_file() {
            bail!(
                "{} is missing (build it first: cargo build -p vg --bins)",
                from.display()
            );
        }
        let to = rootfs.join("usr/bin").join(name);
        copy_file(&from, &to)?;
        // The workspace's binaries carry symbols and debug sections vgd never uses at run
        // time: a fifth of the image.
        util::status(Command::new("strip").arg("--strip-unneeded").arg(&to))
            .context("strip (binutils) failed")?;
        executables.push(from);
    }

    let mut libraries = BTreeSet::new();
    for exe in &executables {
        libraries.extend(shared_libraries(exe)?);
    }
    for lib in &libraries {
        // At the path the loader looks for it (the symlink's path, e.g.
        // /lib64/ld-linux-x86-64.so.2), holding the file it points to.
        let relative = lib.strip_prefix("/").unwrap_or(lib);
        copy_file(lib, &rootfs.join(relative))?;
    }

    let etc = rootfs.join("etc");
    std::fs::create_dir_all(&etc)?;
    std::fs::write(
        etc.join("passwd"),
        format!(
            "root:x:0:0:root:/root:/usr/sbin/nologin\nvgd:x:{VGD_UID}:{VGD_UID}:vgd:/var/lib/nerg:/usr/sbin/nologin\n"
        ),
    )?;
    std::fs::write(etc.join("group"), format!("root:x:0:\nvgd:x:{VGD_UID}:\n"))?;
    Ok(())
}

/// The shared libraries `exe` loads, as absolute paths (from `ldd`).
fn shared_libraries(exe: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let out = util::output(Command::new("ldd").arg(exe))
        .with_context(|| format!("ldd {} failed", exe.display()))?;
    let mut libs = Vec::new();
    for line in out.lines() {
        // "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)", or the loader's
        // "/lib64/ld-linux-x86-64.so.2 (0x...)"; linux-vdso has no file.
        let path = match line.split_once("=>") {
            Some((_, rest)) => rest.split_whitespace().next(),
            None => line.split_whitespace().next(),
        };
        match path {
            Some(p) if p.starts_with('/') => libs.push(PathBuf::from(p)),
            Some("not") => bail!("{}: a library is missing: {line}", exe.display()),
            _ => {}
        }
    }
    if libs.is_empty() {
        bail!(
            "ldd found no libraries for {}: not a dynamic executable?",
            exe.display()
        );
    }
    Ok(libs)
}

/// Copies the file `from` resolves to into `to` (parents created), keeping its mode.
fn copy_file(from: &Path, to: &Path) -> anyhow::Result<()> {
    if let Some(dir) = to.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::copy(from, to)
        .map(drop)
        .with_context(|| format!("copying {} to {}", from.display(), to.display()))
}
