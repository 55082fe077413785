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
