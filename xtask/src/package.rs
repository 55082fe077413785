//! `cargo xtask package`: Debian packages of vgd (`nerg-vgd`: vgd, vgctl) and brgd
//! (`nerg-brgd`), built with Debian's own tools: `dpkg-shlibdeps` computes each package's
//! library dependencies from its binaries, `dpkg-deb` builds it.
//!
//! Each package carries its stripped binaries in `/usr/bin`, its systemd unit from
//! `deploy/systemd` in `/lib/systemd/system`, its default configuration in `/etc/default`
//! (a conffile: an upgrade keeps the operator's edits), and its state directory. Nothing is
//! started on installation: vgd needs its interfaces named first (`/etc/default/vgd`), brgd
//! its ACS; `systemctl enable --now vgd` starts it (the cloud-init example does).
//!
//! cargo-deb would do the same from `[package.metadata.deb]`, but it is one more tool to
//! build (minutes, in every CI run) for what these few files need.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, bail};

use crate::{setup, util};

/// Flags of `cargo xtask package`.
#[derive(Debug, clap::Args)]
pub(crate) struct PackageArgs {
    /// Where the .deb files go.
    #[arg(long, default_value = "target/debian")]
    out: PathBuf,
    /// Take the binaries from this directory instead of building them (release).
    #[arg(long)]
    bin_dir: Option<PathBuf>,
}

/// One package: its name, what it is, its binaries and its files from the repository
/// (source relative to the workspace, destination in the package, mode, conffile?).
struct Spec {
    name: &'static str,
    summary: &'static str,
    description: &'static str,
    binaries: &'static [&'static str],
    files: &'static [(&'static str, &'static str, u32, bool)],
    state_dirs: &'static [&'static str],
    depends: &'static str,
}

const PACKAGES: &[Spec] = &[
    Spec {
        name: "nerg-vgd",
        summary: "NERG virtual Gateway (vgd, vgctl)",
        description: "The TR-317 virtual Gateway: LSL termination (802.1Q, QinQ, VXLAN), \
                      NAPT44 in an XDP fast path, DHCP per home, REST API and metrics.",
        binaries: &["vgd", "vgctl"],
        files: &[
            (
                "deploy/systemd/vgd.service",
                "lib/systemd/system/vgd.service",
                0o644,
                false,
            ),
            ("deploy/systemd/vgd.default", "etc/default/vgd", 0o644, true),
        ],
        state_dirs: &["var/lib/nerg"],
        // vgd talks to the kernel itself (netlink, bpf, the ethtool ioctl): no tools.
        depends: "",
    },
    Spec {
        name: "nerg-brgd",
        summary: "NERG bridged residential gateway agent (brgd)",
        description: "The BRG agent: a TR-069 CPE applying the TR-181 bridging model \
                      (bridge, VXLAN, the eBPF 802.1Q/QinQ tagger) to Linux.",
        binaries: &["brgd"],
        files: &[
            (
                "deploy/systemd/brgd.service",
                "lib/systemd/system/brgd.service",
                0o644,
                false,
            ),
            (
                "deploy/systemd/brgd.default",
                "etc/default/brgd",
                0o644,
                true,
            ),
            (
                "deploy/brgd/factory-defaults",
                "etc/brgd/factory-defaults",
                0o644,
                true,
            ),
        ],
        state_dirs: &["var/lib/brgd"],
        depends: "",
    },
];

/// Set-up, release build (unless `--bin-dir`), then the packages.
pub(crate) fn run(args: PackageArgs) -> anyhow::Result<()> {
    let root = util::workspace_root();
    let bin_dir = match args.bin_dir {
        Some(dir) => dir,
        None => {
            setup::run(false)?;
            util::step("building vgd, vgctl and brgd (release)");
            util::cargo(&["build", "--release", "-p", "vg", "-p", "brg", "--bins"])?;
            root.join("target/release")
        }
    };
    let out = root.join(&args.out);
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    for spec in PACKAGES {
        let deb = build(spec, &bin_dir, &out)?;
        println!("{}", deb.display());
    }
    Ok(())
}

/// Builds one package into `out`; returns the .deb's path.
fn build(spec: &Spec, bin_dir: &Path, out: &Path) -> anyhow::Result<PathBuf> {
    let root = util::workspace_root();
    let version = env!("CARGO_PKG_VERSION");
    let arch = util::output(Command::new("dpkg").arg("--print-architecture"))
        .context("dpkg --print-architecture failed")?
        .trim()
        .to_owned();
    let stage = root.join("target/debian-stage").join(spec.name);
    if stage.exists() {
        std::fs::remove_dir_all(&stage)?;
    }
    util::step(&format!("packaging {} {version} ({arch})", spec.name));
    let mut installed = Vec::new();
    for bin in spec.binaries {
        let from = bin_dir.join(bin);
        if !from.is_file() {
            bail!(
                "{} is missing (cargo build --release -p vg -p brg --bins)",
                from.display()
            );
        }
        let to = stage.join("usr/bin").join(bin);
        install(&from, &to, 0o755)?;
        util::status(Command::new("strip").arg("--strip-unneeded").arg(&to))
            .context("strip (binutils) failed")?;
        installed.push(to);
    }
    let mut conffiles = String::new();
    for (from, to, mode, conffile) in spec.files {
        install(&root.join(from), &stage.join(to), *mode)?;
        if *conffile {
            conffiles.push_str(&format!("/{to}\n"));
        }
    }
    for dir in spec.state_dirs {
        std::fs::create_dir_all(stage.join(dir))?;
    }
    let copyright = stage
        .join("usr/share/doc")
        .join(spec.name)
        .join("copyright");
    install(&root.join("deploy/debian/copyright"), &copyright, 0o644)?;

    let debian = stage.join("DEBIAN");
    std::fs::create_dir_all(&debian)?;
    let shlibs = shlib_depends(&stage, &installed)?;
    let depends = [shlibs.as_str(), spec.depends]
        .into_iter()
        .filter(|d| !d.is_empty())
        .collect::<Vec<_>>()
        .join(", ");
    let size_kib = dir_size(&stage)? / 1024;
    std::fs::write(
        debian.join("control"),
        format!(
            "Package: {name}\nVersion: {version}\nArchitecture: {arch}\n\
             Maintainer: NERG developers <nerg@example.invalid>\nSection: net\nPriority: optional\n\
             Installed-Size: {size_kib}\nDepends: {depends}\nHomepage: https://example.invalid/nerg\n\
             Description: {summary}\n {description}\n",
            name = spec.name,
            summary = spec.summary,
            description = spec.description,
        ),
    )?;
    std::fs::write(debian.join("conffiles"), conffiles)?;
    install(
        &root.join("deploy/debian/postinst"),
        &debian.join("postinst"),
        0o755,
    )?;
    install(
        &root.join("deploy/debian/postrm"),
        &debian.join("postrm"),
        0o755,
    )?;

    let deb = out.join(format!("{}_{version}_{arch}.deb", spec.name));
    util::status(
        Command::new("dpkg-deb")
            // gzip: xz (dpkg-deb's default) took a minute per package on a loaded 2-core
            // machine, gzip 13 s; every dpkg reads both.
            .args(["--root-owner-group", "-Zgzip", "--build"])
            .arg(&stage)
            .arg(&deb),
    )
    .context("dpkg-deb failed (apt-get install dpkg-dev)")?;
    Ok(deb)
}

/// The `Depends` entries for the libraries `binaries` link (dpkg-shlibdeps), e.g.
/// `libc6 (>= 2.34), libgcc-s1 (>= 4.2)`.
fn shlib_depends(stage: &Path, binaries: &[PathBuf]) -> anyhow::Result<String> {
    // dpkg-shlibdeps reads debian/control of a source package: give it a minimal one.
    let work = stage.with_extension("shlibdeps");
    std::fs::create_dir_all(work.join("debian"))?;
    std::fs::write(
        work.join("debian/control"),
        "Source: nerg\n\nPackage: nerg\nArchitecture: any\n",
    )?;
    let mut cmd = Command::new("dpkg-shlibdeps");
    cmd.arg("-O").args(binaries).current_dir(&work);
    let out = util::output(&mut cmd)
        .with_context(|| format!("{} failed (apt-get install dpkg-dev)", util::show(&cmd)))?;
    std::fs::remove_dir_all(&work)?;
    // "shlibs:Depends=libc6 (>= 2.34), libgcc-s1 (>= 4.2)"
    Ok(out
        .lines()
        .find_map(|l| l.strip_prefix("shlibs:Depends="))
        .unwrap_or_default()
        .trim()
        .to_owned())
}

fn install(from: &Path, to: &Path, mode: u32) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    if let Some(dir) = to.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::copy(from, to)
        .with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(mode))?;
    Ok(())
}

fn dir_size(dir: &Path) -> anyhow::Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        total += if meta.is_dir() {
            dir_size(&entry.path())?
        } else {
            meta.len()
        };
    }
    Ok(total)
}
