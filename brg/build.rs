//! Builds the BRG's tc tagger (crate `brg-ebpf`, target `bpfel-unknown-none`, nightly
//! toolchain, bpf-linker) and leaves the object in `OUT_DIR/brg-tc` for `brgd` to embed.
//!
//! Set `AYA_BUILD_SKIP=1` to skip the eBPF build (for `cargo check`/`clippy` of the control
//! plane on machines without the BPF toolchain): an empty object is embedded instead and
//! the tagger refuses to load it with a message saying so.

use std::{env, fs, path::PathBuf};

use anyhow::Context as _;

fn main() -> anyhow::Result<()> {
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").context("OUT_DIR not set")?);
    let object = out_dir.join("brg-tc");
    let skip = env::var("AYA_BUILD_SKIP").is_ok_and(|v| v == "1" || v.eq_ignore_ascii_case("true"));
    if skip {
        // aya-build prints its own warning; leave a zero-length object so `include_bytes!`
        // works, and so a stale real object from an earlier build is never embedded.
        fs::write(&object, []).with_context(|| format!("writing {}", object.display()))?;
    }
    let root_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").context("no manifest dir")?)
        .join("../ebpf/brg-tc");
    let root_dir = root_dir
        .to_str()
        .context("non-UTF-8 path to the eBPF crate")?;
    // The eBPF crate shares the map ABI crate: rebuild when it changes too.
    println!("cargo:rerun-if-changed=../ebpf/abi");
    aya_build::build_ebpf(
        [aya_build::Package {
            name: "brg-ebpf",
            root_dir,
            ..Default::default()
        }],
        aya_build::Toolchain::default(),
    )
    .context(
        "building the eBPF programs failed; run `cargo xtask setup` to install the toolchain, \
         or set AYA_BUILD_SKIP=1 to build the control plane without them",
    )
}
