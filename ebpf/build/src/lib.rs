//! Build-script helper shared by `vg` and `brg`: builds one of the workspace's eBPF crates
//! (target `bpfel-unknown-none`, nightly toolchain, bpf-linker) with aya-build and leaves its
//! object in `OUT_DIR/<object>` for the crate to embed with `include_bytes_aligned!`.
//!
//! Set `AYA_BUILD_SKIP=1` to skip the eBPF build (for `cargo check`/`clippy` of the
//! userspace code on machines without the BPF toolchain): an empty object is left instead,
//! and the programs refuse to load it with a message saying so.

use std::{env, fs, path::PathBuf};

use anyhow::Context as _;

/// Builds package `package` (in `../ebpf/<dir>` relative to the calling crate) whose binary
/// is `object`.
pub fn build(package: &str, dir: &str, object: &str) -> anyhow::Result<()> {
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").context("OUT_DIR not set")?);
    let skip = env::var("AYA_BUILD_SKIP").is_ok_and(|v| v == "1" || v.eq_ignore_ascii_case("true"));
    if skip {
        // aya-build prints its own warning; leave a zero-length object so `include_bytes!`
        // works, and so a stale real object from an earlier build is never embedded.
        let path = out_dir.join(object);
        fs::write(&path, []).with_context(|| format!("writing {}", path.display()))?;
    }
    let root_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").context("no manifest dir")?)
        .join("../ebpf")
        .join(dir);
    let root_dir = root_dir
        .to_str()
        .context("non-UTF-8 path to the eBPF crate")?;
    // The eBPF crates share the map ABI crate: rebuild when it changes too.
    println!("cargo:rerun-if-changed=../ebpf/abi");
    aya_build::build_ebpf(
        [aya_build::Package {
            name: package,
            root_dir,
            ..Default::default()
        }],
        aya_build::Toolchain::default(),
    )
    .context(
        "building the eBPF programs failed; run `cargo xtask setup` to install the toolchain, \
         or set AYA_BUILD_SKIP=1 to build the userspace code without them",
    )
}
