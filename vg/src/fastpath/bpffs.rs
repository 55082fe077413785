//! bpffs: mounting it where missing and preparing an instance's pin directory.

use std::{
    fs,
    path::{Path, PathBuf},
};

use nix::{
    mount::{MsFlags, mount},
    sys::statfs::{BPF_FS_MAGIC, statfs},
};
use thiserror::Error;

/// The conventional bpffs mount point.
pub const DEFAULT_MOUNT: &str = "/sys/fs/bpf";

/// Errors preparing bpffs.
#[derive(Debug, Error)]
pub enum BpffsError {
    /// `mount -t bpf` failed.
    #[error("mounting bpffs at {path} failed (needs root / CAP_SYS_ADMIN)")]
    Mount {
        /// Mount point.
        path: PathBuf,
        /// Errno from mount(2).
        #[source]
        source: nix::Error,
    },
    /// The path exists but is some other filesystem and could not be used.
    #[error("{path} is not on bpffs")]
    NotBpffs {
        /// The offending path.
        path: PathBuf,
    },
    /// Creating a directory failed.
    #[error("creating {path} failed")]
    CreateDir {
        /// Directory.
        path: PathBuf,
        /// Underlying error.
        #[source]
        source: std::io::Error,
    },
}

/// True when `path` is on a bpffs mount.
pub fn is_bpffs(path: &Path) -> bool {
    statfs(path).is_ok_and(|s| s.filesystem_type() == BPF_FS_MAGIC)
}

/// Mounts bpffs at `mount_point` unless it is already there. Returns true if it mounted.
pub fn ensure_mounted(mount_point: &Path) -> Result<bool, BpffsError> {
    if is_bpffs(mount_point) {
        return Ok(false);
    }
    fs::create_dir_all(mount_point).map_err(|source| BpffsError::CreateDir {
        path: mount_point.to_owned(),
        source,
    })?;
    mount(
        Some("bpf"),
        mount_point,
        Some("bpf"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        None::<&str>,
    )
    .map_err(|source| BpffsError::Mount {
        path: mount_point.to_owned(),
        source,
    })?;
    Ok(true)
}

/// The pin directory of instance `instance` under the bpffs mount: `<mount>/nerg/<instance>`.
pub fn pin_dir(mount_point: &Path, instance: &str) -> PathBuf {
    mount_point.join("nerg").join(instance)
}

/// Why pins made under a bpffs mount may not outlive this process, or not be seen by other
/// tools: an operator needs to hear it at start, not after a restart that lost every flow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PinVisibility {
    /// The bpffs is the one the host's init process (PID 1) sees at the same path: pins
    /// outlive vgd and `vgctl` and the next vgd find them.
    Shared,
    /// vgd's mount namespace is not PID 1's, and PID 1 sees another filesystem (or none) at
    /// this path: a bpffs private to this mount namespace (`ip netns exec` remounts `/sys`;
    /// a container without the host's bpffs mounted in). Pins vanish with the namespace.
    Private,
    /// vgd mounted this bpffs itself and could not compare it with PID 1's (no access to
    /// `/proc/1/root`): it may be private.
    MountedHere,
}

impl PinVisibility {
    /// What an operator should do, for a start-up warning; `None` when all is well.
    pub fn warning(&self, mount_point: &Path) -> Option<String> {
        let what = match self {
            PinVisibility::Shared => return None,
            PinVisibility::Private => "is private to vgd's mount namespace",
            PinVisibility::MountedHere => {
                "was mounted by vgd itself and may be private to its mount namespace"
            }
        };
        Some(format!(
            "the bpffs at {} {what}: pinned maps and XDP links vanish when vgd exits (no \
             hitless restart, `vgctl stats` cannot find them). Start vgd with \
             `nsenter --net=/run/netns/<name>` instead of `ip netns exec`, or mount the host's \
             bpffs there (a container: `-v /sys/fs/bpf:/sys/fs/bpf`)",
            mount_point.display()
        ))
    }
}

/// Whether the bpffs at `mount_point` is the host's (see [`PinVisibility`]); `mounted_here`:
/// [`ensure_mounted`] had to mount it.
///
/// The comparison is with PID 1's mount namespace, or, where PID 1 cannot be inspected (a
/// sandbox, a PID namespace), with the parent process's: whoever started vgd (`ip netns
/// exec` gives vgd a namespace its parent is not in). In another mount namespace, the path
/// as the reference process sees it (through `/proc/<pid>/root`) must be a bpffs on the
/// same device: a container with the host's bpffs mounted in passes, a private one does not.
pub fn visibility(mount_point: &Path, mounted_here: bool) -> PinVisibility {
    let ns = |pid: &str| fs::read_link(format!("/proc/{pid}/ns/mnt")).ok();
    let Some(own) = ns("self") else {
        return if mounted_here {
            PinVisibility::MountedHere
        } else {
            PinVisibility::Shared
        };
    };
    let parent = std::os::unix::process::parent_id().to_string();
    let reference = [("1", true), (parent.as_str(), false)]
        .into_iter()
        .find_map(|(pid, init)| Some((pid, init, ns(pid)?)));
    let Some((pid, init, theirs_ns)) = reference else {
        return if mounted_here {
            PinVisibility::MountedHere
        } else {
            PinVisibility::Shared
        };
    };
    if own == theirs_ns {
        // PID 1's namespace: whatever is mounted here is the host's. The parent's: as
        // private as the parent's own, which only a vgd that had to mount it can suspect.
        return if init || !mounted_here {
            PinVisibility::Shared
        } else {
            PinVisibility::MountedHere
        };
    }
    let relative = mount_point.strip_prefix("/").unwrap_or(mount_point);
    let theirs = Path::new("/proc").join(pid).join("root").join(relative);
    let dev = |p: &Path| nix::sys::stat::stat(p).ok().map(|st| st.st_dev);
    match (dev(mount_point), dev(&theirs)) {
        (Some(ours), Some(their)) if ours == their && is_bpffs(&theirs) => PinVisibility::Shared,
        _ => PinVisibility::Private,
    }
}

/// Mounts bpffs if needed and creates the instance's pin directory.
pub fn prepare_pin_dir(mount_point: &Path, instance: &str) -> Result<PathBuf, BpffsError> {
    ensure_mounted(mount_point)?;
    let dir = pin_dir(mount_point, instance);
    fs::create_dir_all(&dir).map_err(|source| BpffsError::CreateDir {
        path: dir.clone(),
        source,
    })?;
    if !is_bpffs(&dir) {
        return Err(BpffsError::NotBpffs { path: dir });
    }
    Ok(dir)
}
