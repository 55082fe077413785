//! Builds the vG's XDP programs (crate `vg-ebpf`) for `vgd` to embed; see
//! `nerg-ebpf-build` (and `AYA_BUILD_SKIP=1` to skip it).

fn main() -> anyhow::Result<()> {
    nerg_ebpf_build::build("vg-ebpf", "vg-xdp", "vg-xdp")
}
