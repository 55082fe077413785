//! Builds the benchmarks' XDP programs (crate `bench-ebpf`) for `nerg-bench` to embed; see
//! `nerg-ebpf-build` (and `AYA_BUILD_SKIP=1` to skip it).

fn main() -> anyhow::Result<()> {
    nerg_ebpf_build::build("bench-ebpf", "bench-xdp", "bench-xdp")
}
