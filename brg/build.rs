//! Builds the BRG's tc tagger (crate `brg-ebpf`) for `brgd` to embed; see
//! `nerg-ebpf-build` (and `AYA_BUILD_SKIP=1` to skip it).

fn main() -> anyhow::Result<()> {
    nerg_ebpf_build::build("brg-ebpf", "brg-tc", "brg-tc")
}
