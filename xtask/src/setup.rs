//! `cargo xtask setup`: installs, idempotently and only what is missing, everything the
//! build and the tests need on a Debian 12 machine:
//! - Debian packages: LLVM 22 (for bpf-linker) and the test peers later suites drive;
//! - `rust-src` for the nightly toolchain (eBPF is built with `-Z build-std=core`);
//! - `bpf-linker` 0.13 built against LLVM 22 (LLVM_SYS_221_PREFIX and PATH pointing at LLVM 22, see `install_bpf_linker`);
//! - `cargo-nextest`, the test runner;
//! - PyPI's `kubernetes-validate` (in a venv, `target/tools/k8s-venv`), which checks the
//!   Kubernetes manifests against the API's schemas offline.
//! - the Rust targets of `cargo xtask firmware` (rustup), and musl's C runtime objects
//!   copied into the nightly toolchain for them.
//!
//! With everything present it only looks (well under a second). Without root, or when an
//! install fails, it stops with one message naming what is missing and how to get it.

use std::{path::Path, process::Command};

use anyhow::{Context as _, bail};

use crate::util::{output, status, step};

/// Debian packages, and why each is needed.
const DEBIAN_PACKAGES: &[(&str, &str)] = &[
    // bpf-linker links against LLVM 22.
    ("llvm-22-dev", "bpf-linker build"),
    ("libpolly-22-dev", "bpf-linker build"),
    ("libzstd-dev", "bpf-linker build"),
    ("zlib1g-dev", "bpf-linker build"),
    // Namespace tests and the lab.
    ("iproute2", "namespaces, veth, bridges"),
    ("util-linux", "nsenter"),
    ("procps", "sysctl"),
    ("ethtool", "the tests set and check offload settings"),
    ("iputils-ping", "ping through LSLs and the NAT"),
    ("nftables", "Linux NAT baseline"),
    ("isc-dhcp-client", "dhclient in homes"),
    ("busybox", "udhcpc in homes"),
    ("dhcpcd-base", "dhcpcd in homes"),
    ("iperf3", "TCP/UDP through the NAT"),
    ("stun-client", "NAT behaviour discovery"),
    ("stun-server", "NAT behaviour discovery"),
    ("bpftool", "inspecting and faking pinned maps"),
    (
        "ndisc6",
        "rdisc6 and ndisc6 in homes: IPv6 router and neighbour discovery",
    ),
    // Benchmarks (`cargo xtask bench`).
    (
        "kea-dhcp4-server",
        "Kea, the DHCP baseline of the DHCP benchmark",
    ),
    ("kea-admin", "perfdhcp, the DHCP load generator"),
    (
        "kea-dhcp6-server",
        "Kea, the baseline of the DHCPv6 benchmark",
    ),
    // Deployment: the container image, the Debian packages, the Kubernetes manifests.
    ("podman", "building and running the vgd image"),
    (
        "runc",
        "podman's runtime here (crun refuses hybrid cgroups)",
    ),
    (
        "binutils",
        "strip for the image's binaries, readelf for the firmware's linking",
    ),
    (
        "dpkg-dev",
        "dpkg-deb and dpkg-shlibdeps for the vgd and brgd packages",
    ),
    (
        "mmdebstrap",
        "a fresh Debian root filesystem the packages install into",
    ),
    ("systemd", "systemd-analyze verify of the packaged units"),
    ("python3-venv", "a venv for PyPI's kubernetes-validate"),
    // `cargo xtask firmware` and tests/tests/firmware.rs: C parts (ring) of the cross
    // builds, the armv7 linker with glibc's static libraries, and qemu-user to run them.
    (
        "gcc-aarch64-linux-gnu",
        "C cross compiler for the aarch64 firmware",
    ),
    (
        "libc6-dev-arm64-cross",
        "C headers for the aarch64 firmware",
    ),
    (
        "gcc-arm-linux-gnueabihf",
        "C cross compiler and linker for the armv7 firmware",
    ),
    (
        "libc6-dev-armhf-cross",
        "static libc for the armv7 firmware",
    ),
    (
        "qemu-user-static",
        "running the firmware builds (qemu-aarch64-static)",
    ),
    // tests/tests/prometheus_rules.rs and grafana.rs: promtool and a real Prometheus.
    ("prometheus", "promtool test rules; the dashboard's queries"),
];

/// The nightly toolchain the eBPF build uses.
const NIGHTLY: &str = "nightly";
/// bpf-linker version (newer ones need a newer rustc; see platform.md).
const BPF_LINKER_VERSION: &str = "0.13.0";
const LLVM_PREFIX: &str = "/usr/lib/llvm-22";

/// Runs the set-up; with `check_only`, reports and fails if anything is missing.
pub(crate) fn run(check_only: bool) -> anyhow::Result<()> {
    let missing_pkgs = missing_debian_packages()?;
    let rust_src = has_nightly_rust_src()?;
    let linker = bpf_linker_ok();
    let nextest = output(Command::new(cargo()).args(["nextest", "--version"])).is_some();
    let validator = kubernetes_validate().is_file();
    let targets = missing_rust_targets();
    let armhf_musl = armhf_musl_installed();
    let musl_crt = missing_nightly_musl_crt();

    let mut missing = Vec::new();
    if !missing_pkgs.is_empty() {
        missing.push(format!(
            "Debian packages: {} (apt-get install -y {})",
            missing_pkgs.join(" "),
            missing_pkgs.join(" ")
        ));
    }
    if !rust_src {
        missing.push(format!(
            "rust-src for the {NIGHTLY} toolchain (rustup component add rust-src --toolchain {NIGHTLY})"
        ));
    }
    if !linker {
        missing.push(format!(
            "bpf-linker {BPF_LINKER_VERSION} built against LLVM 22 (PATH={LLVM_PREFIX}/bin:$PATH \
             LLVM_SYS_221_PREFIX={LLVM_PREFIX} cargo install bpf-linker --version {BPF_LINKER_VERSION} \
             --no-default-features --features llvm-22)"
        ));
    }
    if !nextest {
        missing.push("cargo-nextest (cargo install cargo-nextest --locked)".to_owned());
    }
    if !validator {
        missing.push(format!(
            "kubernetes-validate {KUBERNETES_VALIDATE_VERSION} (python3 -m venv {venv} && \
             {venv}/bin/pip install kubernetes-validate=={KUBERNETES_VALIDATE_VERSION})",
            venv = k8s_venv().display()
        ));
    }
    if !targets.is_empty() {
        missing.push(format!(
            "Rust targets for the firmware: {} (rustup target add {})",
            targets.join(" "),
            targets.join(" ")
        ));
    }
    if !armhf_musl {
        missing.push(
            "musl for 32-bit ARM (dpkg --add-architecture armhf; apt-get update; \
             apt-get install musl-dev:armhf)"
                .to_owned(),
        );
    }
    if !musl_crt.is_empty() {
        missing.push(format!(
            "musl C runtime objects in the {NIGHTLY} toolchain for {} (assembled by \
             `cargo xtask setup` from the default toolchain's rust-std, or for armv7 from \
             Debian's musl-dev:armhf and gcc-arm-linux-gnueabihf)",
            musl_crt.join(" ")
        ));
    }
    if missing.is_empty() {
        step("setup: everything is installed");
        return Ok(());
    }
    if check_only {
        bail!("missing:\n  - {}", missing.join("\n  - "));
    }
    if !nix::unistd::geteuid().is_root() && (!missing_pkgs.is_empty() || !armhf_musl) {
        bail!(
            "installing needs root (run as root, as CI does); missing:\n  - {}",
            missing.join("\n  - ")
        );
    }

    if !missing_pkgs.is_empty() {
        install_debian_packages(&missing_pkgs)?;
    }
    if !rust_src {
        step("setup: adding rust-src to the nightly toolchain");
        status(Command::new("rustup").args([
            "component",
            "add",
            "rust-src",
            "--toolchain",
            NIGHTLY,
        ]))
        .context(format!(
            "is the {NIGHTLY} toolchain installed? (rustup toolchain install {NIGHTLY})"
        ))?;
    }
    if !linker {
        install_bpf_linker()?;
    }
    if !targets.is_empty() {
        step(&format!("setup: rustup target add {}", targets.join(" ")));
        status(
            Command::new("rustup")
                .args(["target", "add"])
                .args(&targets),
        )
        .context("adding the firmware's Rust targets failed")?;
    }
    if !armhf_musl {
        install_armhf_musl()?;
    }
    if !musl_crt.is_empty() || !targets.is_empty() || !armhf_musl {
        copy_nightly_musl_crt(&missing_nightly_musl_crt())?;
    }
    if !nextest {
        step("setup: installing cargo-nextest");
        status(Command::new(cargo()).args(["install", "cargo-nextest", "--locked"]))?;
    }
    if !validator {
        install_kubernetes_validate()?;
    }
    step("setup: done");
    Ok(())
}

/// kubernetes-validate's version: it carries the API schemas up to Kubernetes 1.37.
const KUBERNETES_VALIDATE_VERSION: &str = "1.37.0";

/// The venv kubernetes-validate lives in (inside the clone: nothing outside it changes).
pub(crate) fn k8s_venv() -> std::path::PathBuf {
    crate::util::workspace_root().join("target/tools/k8s-venv")
}

/// The kubernetes-validate command in [`k8s_venv`].
pub(crate) fn kubernetes_validate() -> std::path::PathBuf {
    k8s_venv().join("bin/kubernetes-validate")
}

fn install_kubernetes_validate() -> anyhow::Result<()> {
    let venv = k8s_venv();
    step(&format!(
        "setup: kubernetes-validate {KUBERNETES_VALIDATE_VERSION} from PyPI into {}",
        venv.display()
    ));
    // Debian's python3 (python3-venv), not whatever else is first on PATH.
    status(
        Command::new("/usr/bin/python3")
            .args(["-m", "venv", "--clear"])
            .arg(&venv),
    )
    .context("creating the venv (apt-get install python3-venv)")?;
    status(
        Command::new(venv.join("bin/pip"))
            .args(["install", "--quiet", "--disable-pip-version-check"])
            .arg(format!(
                "kubernetes-validate=={KUBERNETES_VALIDATE_VERSION}"
            )),
    )
    .context("installing kubernetes-validate from PyPI")
}

fn cargo() -> std::ffi::OsString {
    std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into())
}

/// Packages from [`DEBIAN_PACKAGES`] that dpkg does not report as installed.
fn missing_debian_packages() -> anyhow::Result<Vec<&'static str>> {
    let names: Vec<&str> = DEBIAN_PACKAGES.iter().map(|(n, _)| *n).collect();
    // dpkg-query exits non-zero when some names are unknown; its stdout still lists the rest.
    let out = Command::new("dpkg-query")
        .args(["-W", "-f", "${Package}\t${db:Status-Abbrev}\n"])
        .args(&names)
        .output()
        .context("dpkg-query not found: this set-up supports Debian 12 (bookworm)")?;
    let listed = String::from_utf8_lossy(&out.stdout);
    let installed: Vec<&str> = listed
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .filter(|(_, st)| st.starts_with("ii"))
        .map(|(p, _)| p.split(':').next().unwrap_or(p))
        .collect();
    Ok(names
        .into_iter()
        .filter(|n| !installed.contains(n))
        .collect())
}

fn install_debian_packages(pkgs: &[&str]) -> anyhow::Result<()> {
    step(&format!("setup: apt-get install {}", pkgs.join(" ")));
    if which("apt-get").is_none() {
        bail!(
            "apt-get not found; install these packages by hand: {}",
            pkgs.join(" ")
        );
    }
    let apt = |args: &[&str]| {
        status(
            Command::new("apt-get")
                .args(args)
                .env("DEBIAN_FRONTEND", "noninteractive"),
        )
    };
    apt(&["update", "-qq"]).context("apt-get update failed (are Debian's mirrors reachable?)")?;
    let mut args = vec![
        "install",
        "-y",
        "-qq",
        "--no-install-recommends",
        "-o",
        "Dpkg::Options::=--force-confdef",
        "-o",
        "Dpkg::Options::=--force-confold",
    ];
    args.extend_from_slice(pkgs);
    apt(&args).with_context(|| format!("installing Debian packages {} failed", pkgs.join(" ")))
}

/// The firmware's Rust targets (`cargo xtask firmware`) that rustup has not installed for
/// the default toolchain.
fn missing_rust_targets() -> Vec<&'static str> {
    let installed =
        output(Command::new("rustup").args(["target", "list", "--installed"])).unwrap_or_default();
    crate::firmware::Cpu::rustup_triples()
        .filter(|t| !installed.lines().any(|l| l.trim() == *t))
        .collect()
}

/// The sysroot of `toolchain` (the default one for `None`).
fn sysroot(toolchain: Option<&str>) -> Option<std::path::PathBuf> {
    let mut cmd = Command::new("rustc");
    if let Some(t) = toolchain {
        cmd.arg(format!("+{t}"));
    }
    output(cmd.args(["--print", "sysroot"])).map(|s| s.trim().into())
}

fn musl_crt_dir(sysroot: &Path, triple: &str) -> std::path::PathBuf {
    sysroot.join(format!("lib/rustlib/{triple}/lib/self-contained"))
}

/// The firmware's musl targets for which the nightly toolchain lacks musl's C runtime
/// objects (`crt1.o`, `libc.a`, ...). The firmware is built with nightly and the standard
/// library from source (`cargo xtask firmware`), but links musl's objects from the
/// toolchain's `self-contained` directory, which only a target's rust-std brings; rustup
/// serves the musl targets' rust-std for the stable toolchain here and refuses it for
/// nightly, so set-up copies them over (they are musl's, the same for both).
fn missing_nightly_musl_crt() -> Vec<&'static str> {
    let Some(nightly) = sysroot(Some(NIGHTLY)) else {
        return Vec::new();
    };
    crate::firmware::Cpu::musl_triples()
        .filter(|t| !musl_crt_dir(&nightly, t).join("crt1.o").is_file())
        .collect()
}

fn copy_nightly_musl_crt(triples: &[&str]) -> anyhow::Result<()> {
    if triples.is_empty() {
        return Ok(());
    }
    let (Some(stable), Some(nightly)) = (sysroot(None), sysroot(Some(NIGHTLY))) else {
        bail!("cannot find the Rust sysroots (rustc --print sysroot)");
    };
    for triple in triples {
        let to = musl_crt_dir(&nightly, triple);
        step(&format!(
            "setup: musl C runtime for {triple} into the {NIGHTLY} toolchain"
        ));
        std::fs::create_dir_all(&to).with_context(|| format!("creating {}", to.display()))?;
        for (from, name) in musl_crt_sources(&stable, triple)? {
            std::fs::copy(&from, to.join(&name))
                .with_context(|| format!("copying {}", from.display()))?;
        }
    }
    Ok(())
}

/// The files of `triple`'s `self-contained` directory, and their names there.
///
/// armv7: no toolchain here has `armv7-unknown-linux-musleabihf` (its rust-std download is
/// refused), so they come from Debian: musl's C runtime and `libc.a` (`musl-dev:armhf`),
/// and from the ARM cross compiler gcc's start and end objects (`crtbeginT.o`, the static
/// one, as `crtbegin.o`) and its unwinder (`libgcc_eh.a` as the `libunwind.a` the standard
/// library's `unwind` crate links; the firmware never unwinds). Others: the stable
/// toolchain's rust-std of the target.
fn musl_crt_sources(
    stable: &Path,
    triple: &str,
) -> anyhow::Result<Vec<(std::path::PathBuf, String)>> {
    if triple == ARMV7_MUSL {
        let musl = Path::new("/usr/lib/arm-linux-musleabihf");
        let gcc = Path::new("/usr/lib/gcc-cross/arm-linux-gnueabihf/12");
        let mut files: Vec<_> = ["crt1.o", "crti.o", "crtn.o", "Scrt1.o", "rcrt1.o", "libc.a"]
            .into_iter()
            .map(|f| (musl.join(f), f.to_owned()))
            .collect();
        for (from, name) in [
            ("crtbeginT.o", "crtbegin.o"),
            ("crtend.o", "crtend.o"),
            ("crtbeginS.o", "crtbeginS.o"),
            ("crtendS.o", "crtendS.o"),
            ("libgcc_eh.a", "libunwind.a"),
        ] {
            files.push((gcc.join(from), name.to_owned()));
        }
        if let Some((missing, _)) = files.iter().find(|(f, _)| !f.is_file()) {
            bail!(
                "{} is missing (Debian packages musl-dev:armhf and gcc-arm-linux-gnueabihf)",
                missing.display()
            );
        }
        return Ok(files);
    }
    let from = musl_crt_dir(stable, triple);
    let entries = std::fs::read_dir(&from).with_context(|| {
        format!(
            "{} is missing: is the {triple} target installed (rustup target add {triple})?",
            from.display()
        )
    })?;
    entries
        .map(|e| {
            let e = e?;
            Ok((e.path(), e.file_name().to_string_lossy().into_owned()))
        })
        .collect()
}

/// The armv7 firmware's target, which rustup cannot install here (see
/// [`musl_crt_sources`]).
const ARMV7_MUSL: &str = "armv7-unknown-linux-musleabihf";

/// Whether Debian's musl for 32-bit ARM is installed (`musl-dev:armhf`, multiarch).
fn armhf_musl_installed() -> bool {
    Path::new("/usr/lib/arm-linux-musleabihf/libc.a").is_file()
}

fn install_armhf_musl() -> anyhow::Result<()> {
    step("setup: dpkg --add-architecture armhf; apt-get install musl-dev:armhf");
    status(Command::new("dpkg").args(["--add-architecture", "armhf"]))?;
    let apt = |args: &[&str]| {
        status(
            Command::new("apt-get")
                .args(args)
                .env("DEBIAN_FRONTEND", "noninteractive"),
        )
    };
    apt(&["update", "-qq"]).context("apt-get update failed")?;
    apt(&[
        "install",
        "-y",
        "-qq",
        "--no-install-recommends",
        "musl-dev:armhf",
    ])
    .context("installing musl-dev:armhf failed")
}

fn has_nightly_rust_src() -> anyhow::Result<bool> {
    let Some(sysroot) =
        output(Command::new("rustc").args([&format!("+{NIGHTLY}"), "--print", "sysroot"]))
    else {
        bail!(
            "the {NIGHTLY} Rust toolchain is missing; install it with \
             `rustup toolchain install {NIGHTLY} --component rust-src`"
        );
    };
    Ok(Path::new(sysroot.trim())
        .join("lib/rustlib/src/rust/library/core/Cargo.toml")
        .is_file())
}

/// bpf-linker of the pinned version whose libLLVM resolves (it links LLVM 22 dynamically).
fn bpf_linker_ok() -> bool {
    let Some(path) = which("bpf-linker") else {
        return false;
    };
    let version_ok = output(Command::new(&path).arg("--version"))
        .is_some_and(|v| v.split_whitespace().nth(1) == Some(BPF_LINKER_VERSION));
    let llvm_ok = output(Command::new("ldd").arg(&path)).is_some_and(|l| {
        l.lines()
            .any(|line| line.contains("libLLVM.so.22") && !line.contains("not found"))
    });
    version_ok && llvm_ok
}

fn install_bpf_linker() -> anyhow::Result<()> {
    step("setup: building bpf-linker against LLVM 22 (about a minute)");
    if !Path::new(LLVM_PREFIX).join("bin/llvm-config").is_file() {
        bail!(
            "LLVM 22 is not installed at {LLVM_PREFIX} (apt-get install -y llvm-22-dev libpolly-22-dev)"
        );
    }
    // Without LLVM 22 first on PATH the build script finds another llvm-config and fails
    // with "unable to find library -lLLVM" (platform.md).
    let path = format!(
        "{LLVM_PREFIX}/bin:{}",
        std::env::var("PATH").unwrap_or_default()
    );
    status(
        Command::new(cargo())
            .args([
                "install",
                "bpf-linker",
                "--version",
                BPF_LINKER_VERSION,
                "--force",
                "--no-default-features",
                "--features",
                "llvm-22",
            ])
            .env("PATH", path)
            .env("LLVM_SYS_221_PREFIX", LLVM_PREFIX),
    )
    .context("building bpf-linker failed")
}

/// The full path of `program` on PATH.
fn which(program: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|p| p.is_file())
    })
}
