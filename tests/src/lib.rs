//! Test harness: network namespaces, veth pairs, bridges and processes inside them.
//!
//! Everything a test creates is named uniquely (`nt-<pid>-<seq>-<tag>`), torn down in `Drop`
//! (also when the test panics), and swept on the next run if a crashed run left it behind.
//! Tests call [`require_root`] first: they fail loudly, never skip, without privileges.

pub mod acs;
pub mod addrs;
pub mod bench;
pub mod container;
pub mod frames;
pub mod http;
pub mod nat;
pub mod netns;
pub mod perfdhcp;
pub mod provision;
pub mod rig;
pub mod topology;
pub mod traffic;
/// Raw frames on an interface (the slow path's packet socket).
pub mod raw {
    pub use vg::slowpath::packet_socket::PacketSocket as RawSocket;
}
pub mod vgd;
pub mod wait;

use std::{
    path::PathBuf,
    process::{Command, Output},
};

pub use netns::{Netns, NsProcess};
pub use wait::{wait_until, wait_until_some};

/// Panics unless the test runs as root (network namespaces, XDP and bpffs need it).
pub fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test needs root (network namespaces, XDP, bpffs): run it through `cargo xtask test`"
    );
}

/// Runs a command to completion and panics with its output if it fails.
pub fn run(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs `ip` with `args`, panicking with its output on failure.
pub fn ip(args: &[&str]) -> Output {
    run(Command::new("ip").args(args))
}

/// Path of a binary of this workspace (`vgd`, `vgctl`, `brgd`), built beside the test
/// executable (or beside the running tool). `NERG_BIN_DIR` overrides the directory.
pub fn bin(name: &str) -> PathBuf {
    let dir = match std::env::var_os("NERG_BIN_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => {
            // Tests run from target/<profile>/deps/, tools (nerg-lab) from target/<profile>/.
            let exe = std::env::current_exe().expect("current_exe");
            let dir = exe.parent().expect("executable has a directory");
            match dir.file_name() {
                Some(name) if name == "deps" => dir.parent().unwrap_or(dir).to_owned(),
                _ => dir.to_owned(),
            }
        }
    };
    let path = dir.join(name);
    assert!(
        path.is_file(),
        "{} is missing: build the workspace binaries first (`cargo build --workspace --bins`; \
         `cargo xtask test` does it)",
        path.display()
    );
    path
}

/// A bpffs directory unique to this test, removed on drop (with the maps pinned in it).
pub struct PinDir {
    instance: String,
    path: PathBuf,
}

impl PinDir {
    /// Creates `<bpffs>/nerg/nt-<pid>-<seq>-<tag>` (mounting bpffs if needed).
    pub fn new(tag: &str) -> Self {
        netns::sweep_leftovers();
        let instance = netns::unique_name(tag);
        let mount = std::path::Path::new(vg::fastpath::bpffs::DEFAULT_MOUNT);
        let path = vg::fastpath::bpffs::prepare_pin_dir(mount, &instance)
            .unwrap_or_else(|e| panic!("preparing bpffs pin dir: {e}"));
        Self { instance, path }
    }

    /// The vgd instance name whose pins live here.
    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// The directory.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }
}

impl Drop for PinDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
        let _ = std::fs::remove_dir_all(vgd::state_dir(&self.instance));
    }
}
