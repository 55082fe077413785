//! Running `vgd` from its container image (`cargo xtask image`) in a test or lab namespace,
//! with podman from Debian.
//!
//! The container joins the namespace (`--network ns:/run/netns/<name>`), gets the host's
//! bpffs (pins outlive it) and runs as the image's `vgd` user with [`CAPABILITIES`] only.
//! podman's flags here: runc, not crun (crun refuses this host's hybrid cgroup layout),
//! cgroupfs (no systemd as PID 1) and rlimits within the hard limits root has here (no
//! CAP_SYS_RESOURCE); see platform.md.

use std::{path::Path, process::Command};

use crate::Netns;

/// podman's global flags on these machines.
pub const PODMAN_GLOBAL: &[&str] = &["--runtime", "runc", "--cgroup-manager", "cgroupfs"];

/// The uid and gid of the image's `vgd` user.
pub const VGD_UID: u32 = 65532;

/// The capabilities vgd needs, and nothing else (the README, "Container image", says why
/// each). Measured on kernel 6.18: without CAP_SYS_ADMIN, CAP_BPF and CAP_PERFMON are not
/// enough (creating the NAT maps and opening pinned ones fail with EPERM); with it they add
/// nothing (the kernel accepts CAP_SYS_ADMIN wherever it asks for either).
pub const CAPABILITIES: &[&str] = &["CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_SYS_ADMIN"];

/// A podman command with the global flags.
pub fn podman() -> Command {
    let mut cmd = Command::new("podman");
    cmd.args(PODMAN_GLOBAL);
    cmd
}

/// Removes the test images (`<repository>:nt-<pid>-...`) of harness runs whose process is
/// gone (a test killed before its guard could remove its image). Their containers go with
/// their namespaces ([`crate::netns::sweep_leftovers`] kills what runs there, and `--rm`
/// removes the container).
pub fn sweep_leftover_images(repository: &str) {
    let Ok(out) = podman()
        .args(["images", "--format", "{{.Tag}}", repository])
        .output()
    else {
        return;
    };
    for tag in String::from_utf8_lossy(&out.stdout).lines() {
        let Some(pid) = crate::netns::owner_pid(tag) else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = podman()
                .args(["rmi", "--force", &format!("{repository}:{tag}")])
                .output();
        }
    }
}

/// A running container, removed (`podman rm -f`) on drop: killing the `podman run` client
/// leaves the container running, so the guard is what ends vgd.
pub struct Container {
    name: String,
}

impl Container {
    /// The container's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The host pid of the container's first process (vgd), if it runs.
    pub fn pid(&self) -> Option<u32> {
        let out = podman()
            .args(["inspect", "--format", "{{.State.Pid}}", &self.name])
            .output()
            .ok()?;
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .ok()
            .filter(|pid| *pid != 0)
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = podman()
            .args(["rm", "--force", "--time", "5", &self.name])
            .output();
    }
}

/// The `podman run` command that starts vgd from `image` in `ns` as container `name` (vgd's
/// own arguments are to be appended), and its guard. `state_dir` (vgd's `--state-dir`,
/// created and given to the vgd user) and `files` (read-only: configuration, token) are
/// mounted at their own paths; the pin directory of `instance` is created in the host's
/// bpffs and given to the vgd user, since vgd, not root, cannot create it under
/// `/sys/fs/bpf/nerg` (the bpffs is root's, and vgd holds no CAP_DAC_OVERRIDE).
pub fn vgd_command(
    image: &str,
    ns: &Netns,
    instance: &str,
    state_dir: &Path,
    files: &[&Path],
) -> (Command, Container) {
    let name = format!("nerg-vgd-{}", ns.name());
    // A container of that name left by a crashed run would make `podman run` fail.
    let _ = podman()
        .args(["rm", "--force", "--time", "0", &name])
        .output();
    let pins = vg::fastpath::bpffs::prepare_pin_dir(
        Path::new(vg::fastpath::bpffs::DEFAULT_MOUNT),
        instance,
    )
    .unwrap_or_else(|e| panic!("preparing the pin directory for {instance}: {e}"));
    std::fs::create_dir_all(state_dir).expect("vgd state dir");
    for dir in [&pins, state_dir] {
        nix::unistd::chown(
            dir,
            Some(nix::unistd::Uid::from_raw(VGD_UID)),
            Some(nix::unistd::Gid::from_raw(VGD_UID)),
        )
        .unwrap_or_else(|e| panic!("chown {}: {e}", dir.display()));
    }
    let mut cmd = podman();
    cmd.args(["run", "--rm", "--name", &name])
        .arg(format!("--network=ns:{}", ns.path().display()))
        .args([
            "--ulimit",
            "nofile=20000:20000",
            "--ulimit",
            "nproc=1000:1000",
        ])
        .args(["--cap-drop", "all"]);
    for cap in CAPABILITIES {
        cmd.args(["--cap-add", cap]);
    }
    // vgd enables forwarding on its interfaces (/proc/sys/net/ipv4/conf/<if>/forwarding):
    // podman mounts /proc/sys read-only unless told otherwise. Only the network
    // namespace's sysctls are reachable through it with CAP_NET_ADMIN.
    cmd.args(["--security-opt", "unmask=/proc/sys"])
        .args(["-v", "/sys/fs/bpf:/sys/fs/bpf"])
        .arg("-v")
        .arg(format!("{0}:{0}", state_dir.display()));
    for file in files {
        cmd.arg("-v").arg(format!("{0}:{0}:ro", file.display()));
    }
    cmd.arg(image);
    (cmd, Container { name })
}
