//! The Debian packages (`cargo xtask package`): built from the binaries these tests run,
//! installed with apt into a fresh Debian 12 root filesystem (mmdebstrap, minbase plus
//! systemd, from Debian's mirror), where they must bring their dependencies, their files and
//! units that `systemd-analyze verify` accepts without a word. The same Debian's cloud-init
//! checks the VM example (`deploy/cloud-init`): its user-data against cloud-init's schema,
//! its network-config rendered into systemd-networkd files.

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
};

use nerg_tests::bin;

const PACKAGES: [&str; 2] = ["nerg-vgd", "nerg-brgd"];

/// A scratch directory, removed on drop (the root filesystem is about 250 MB).
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn run(cmd: &mut Command) -> Output {
    nerg_tests::run(cmd)
}

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

/// The sources mmdebstrap installs from: the host's Debian sources when it has them.
fn mirror() -> Option<&'static str> {
    [
        "/etc/apt/sources.list.d/debian.sources",
        "/etc/apt/sources.list",
    ]
    .into_iter()
    .find(|p| Path::new(p).is_file())
}

#[test]
fn packages_install_into_fresh_debian_and_their_units_verify() {
    nerg_tests::require_root();
    for tool in ["mmdebstrap", "dpkg-deb", "dpkg-shlibdeps"] {
        assert!(
            Command::new("sh")
                .args(["-c", &format!("command -v {tool}")])
                .output()
                .is_ok_and(|o| o.status.success()),
            "{tool} is missing: run `cargo xtask setup` (mmdebstrap, dpkg-dev)"
        );
    }
    let scratch = Scratch(std::env::temp_dir().join(nerg_tests::netns::unique_name("debs")));
    let debs = scratch.0.join("debs");
    let bin_dir = bin("vgd").parent().expect("bin dir").to_owned();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("root");
    run(Command::new(env!("CARGO"))
        .args(["run", "--quiet", "--package", "xtask", "--", "package"])
        .arg("--bin-dir")
        .arg(&bin_dir)
        .arg("--out")
        .arg(&debs)
        .current_dir(root));

    let deb = |name: &str| {
        let arch = text(&run(Command::new("dpkg").arg("--print-architecture")));
        debs.join(format!(
            "{name}_{}_{}.deb",
            env!("CARGO_PKG_VERSION"),
            arch.trim()
        ))
    };
    // What each package holds, and what it depends on.
    for (name, files) in [
        (
            "nerg-vgd",
            &[
                "./usr/bin/vgd",
                "./usr/bin/vgctl",
                "./lib/systemd/system/vgd.service",
                "./etc/default/vgd",
                "./var/lib/nerg/",
            ][..],
        ),
        (
            "nerg-brgd",
            &[
                "./usr/bin/brgd",
                "./lib/systemd/system/brgd.service",
                "./etc/default/brgd",
                "./etc/brgd/factory-defaults",
                "./var/lib/brgd/",
            ][..],
        ),
    ] {
        let listing = text(&run(Command::new("dpkg-deb").arg("-c").arg(deb(name))));
        for file in files {
            assert!(
                listing.lines().any(|l| l.ends_with(&format!(" {file}"))),
                "{name} lacks {file}:\n{listing}"
            );
        }
        let depends = text(&run(Command::new("dpkg-deb")
            .arg("-f")
            .arg(deb(name))
            .arg("Depends")));
        assert!(depends.contains("libc6 (>="), "{name} Depends: {depends}");
    }

    // A fresh Debian, the packages installed by apt (which brings their dependencies).
    let rootfs = scratch.0.join("rootfs");
    let mut mmdebstrap = Command::new("mmdebstrap");
    mmdebstrap
        .args([
            "--quiet",
            "--variant=minbase",
            "--include=systemd,cloud-init",
        ])
        .arg(format!(
            "--customize-hook=copy-in {} {} /root",
            deb("nerg-vgd").display(),
            deb("nerg-brgd").display()
        ))
        .arg(format!(
            "--customize-hook=chroot \"$1\" env DEBIAN_FRONTEND=noninteractive apt-get install \
             -y --no-install-recommends {}",
            PACKAGES
                .iter()
                .map(|p| format!("/root/{}", deb(p).file_name().unwrap().to_string_lossy()))
                .collect::<Vec<_>>()
                .join(" ")
        ))
        .arg("bookworm")
        .arg(&rootfs);
    if let Some(mirror) = mirror() {
        mmdebstrap.arg(mirror);
    }
    run(&mut mmdebstrap);

    let chroot = |args: &[&str]| {
        let mut cmd = Command::new("chroot");
        cmd.arg(&rootfs).args(args);
        cmd
    };
    let status = text(&run(&mut chroot(&[
        "dpkg-query",
        "-W",
        "-f",
        "${Package} ${db:Status-Abbrev}\n",
        "nerg-vgd",
        "nerg-brgd",
    ])));
    for pkg in ["nerg-vgd", "nerg-brgd"] {
        assert!(
            status.lines().any(|l| l.starts_with(&format!("{pkg} ii"))),
            "{pkg} is not installed:\n{status}"
        );
    }
    // The configuration files are conffiles: an upgrade keeps the operator's edits.
    let conffiles = text(&run(&mut chroot(&[
        "dpkg-query",
        "-W",
        "-f",
        "${Conffiles}\n",
        "nerg-vgd",
        "nerg-brgd",
    ])));
    for file in [
        "/etc/default/vgd",
        "/etc/default/brgd",
        "/etc/brgd/factory-defaults",
    ] {
        assert!(
            conffiles.contains(file),
            "{file} is not a conffile:\n{conffiles}"
        );
    }
    // The binaries run there: their libraries came with the dependencies.
    for binary in ["/usr/bin/vgd", "/usr/bin/vgctl", "/usr/bin/brgd"] {
        run(&mut chroot(&[binary, "--version"]));
    }
    for dir in ["var/lib/nerg", "var/lib/brgd"] {
        assert!(rootfs.join(dir).is_dir(), "no /{dir}");
    }

    // The units, as that Debian's systemd reads them: no error and no warning (an unknown
    // key, a missing binary, a bad capability name).
    let verify = chroot(&["systemd-analyze", "verify", "vgd.service", "brgd.service"]).output();
    let verify = verify.expect("systemd-analyze");
    assert!(
        verify.status.success() && text(&verify).trim().is_empty(),
        "systemd-analyze verify ({}):\n{}",
        verify.status,
        text(&verify)
    );

    check_cloud_init(&rootfs, root);
}

/// The cloud-init example, checked by Debian's cloud-init inside `rootfs`.
fn check_cloud_init(rootfs: &Path, root: &Path) {
    let example = root.join("deploy/cloud-init");
    let inside = rootfs.join("root/cloud-init");
    std::fs::create_dir_all(&inside).expect("mkdir");
    for file in ["user-data", "network-config", "meta-data"] {
        std::fs::copy(example.join(file), inside.join(file)).expect("copy the example");
    }
    let chroot = |args: &[&str]| {
        let mut cmd = Command::new("chroot");
        cmd.arg(rootfs).args(args);
        cmd
    };
    let schema = text(&run(&mut chroot(&[
        "cloud-init",
        "schema",
        "--config-file",
        "/root/cloud-init/user-data",
    ])));
    assert!(schema.contains("Valid cloud-config"), "user-data: {schema}");
    run(&mut chroot(&[
        "cloud-init",
        "devel",
        "net-convert",
        "--network-data",
        "/root/cloud-init/network-config",
        "--kind",
        "yaml",
        "--output-kind",
        "networkd",
        "--distro",
        "debian",
        "--directory",
        "/root/net",
    ]));
    // vgd's two NICs get their names and addresses; the default route is the core's.
    let network = |name: &str| {
        let dir = rootfs.join("root/net/etc/systemd/network");
        let file = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.expect("entry").path())
            .find(|p| {
                p.extension().is_some_and(|e| e == "network") && p.to_string_lossy().contains(name)
            })
            .unwrap_or_else(|| panic!("no .network file for {name}"));
        std::fs::read_to_string(file).expect("read")
    };
    assert!(network("access0").contains("Address=10.255.0.1/16"));
    let core = network("core0");
    assert!(
        core.contains("Address=10.99.0.1/24") && core.contains("Gateway=10.99.0.2"),
        "{core}"
    );
}
