//! XDP programs of the benchmarks (`nerg-bench`), each as small as its job:
//!
//! - [`bench_gen`]: the traffic generator, run with `BPF_PROG_RUN` in live-frames mode
//!   (`BPF_F_TEST_XDP_LIVE_FRAMES`): the kernel hands it a fresh copy of a template frame per
//!   run (pages are recycled without their contents being restored, so it first writes the
//!   template's headers back); it writes up to [`GEN_FIELDS`] varied fields (the home's VLAN/VNI, the flow's source
//!   port) and returns `XDP_TX`, which sends the frame out of the test run's interface.
//! - [`bench_fib`]: the baseline the vG's fast path is compared with: `bpf_fib_lookup` + MAC
//!   rewrite + redirect through a device map, nothing else (no TTL, no counters).
//! - [`bench_redirect`]: no-op forwarding, every frame to one interface: the XDP limit of the
//!   rig.
//! - [`bench_sink`]: counts frames and bytes, drops them.
//! - [`bench_pass`]: `XDP_PASS`, so a veth peer receives `XDP_TX`ed frames.
//!
//! On the host (clippy) the crate is an empty binary whose code is only type-checked.
#![cfg_attr(target_arch = "bpf", no_std)]
#![cfg_attr(target_arch = "bpf", no_main)]
#![expect(
    unsafe_code,
    reason = "eBPF programs read packet memory through raw pointers"
)]

use aya_ebpf::{
    EbpfContext as _,
    bindings::{BPF_FIB_LKUP_RET_SUCCESS, bpf_fib_lookup, xdp_action},
    helpers::generated::bpf_fib_lookup as fib_lookup_helper,
    macros::{map, xdp},
    maps::{Array, DevMapHash, PerCpuArray},
    programs::XdpContext,
};
use nerg_abi::bench::{BenchCounter, GEN_FIELDS, GEN_HEADER_MAX, GenConfig, GenField};

/// The generator's configuration.
#[map(name = "BENCH_GEN")]
static BENCH_GEN: Array<GenConfig> = Array::with_max_entries(1, 0);

/// Where `bench_redirect` sends every frame.
#[map(name = "BENCH_REDIRECT_TO")]
static BENCH_REDIRECT_TO: Array<u32> = Array::with_max_entries(1, 0);

/// Egress interfaces of the forwarding programs, by ifindex.
#[map(name = "BENCH_DEVMAP")]
static BENCH_DEVMAP: DevMapHash = DevMapHash::with_max_entries(16, 0);

/// Per-CPU counters, indexed by [`BenchCounter`].
#[map(name = "BENCH_STATS")]
static BENCH_STATS: PerCpuArray<u64> = PerCpuArray::with_max_entries(BenchCounter::COUNT, 0);

/// The furthest a varied field may start; bounds the packet offset for the verifier.
const MAX_FIELD_OFFSET: usize = 256;
const ETH_HLEN: usize = 14;
const ETH_P_IP: u16 = 0x0800;
const AF_INET: u8 = 2;

/// Adds `n` to counter `c` on this CPU and returns its previous value.
#[inline(always)]
fn count(c: BenchCounter, n: u64) -> u64 {
    match BENCH_STATS.get_ptr_mut(c as u32) {
        Some(slot) => {
            // SAFETY: per-CPU slot from a successful lookup; only this CPU writes it, and
            // XDP programs do not nest on one CPU.
            unsafe {
                let old = *slot;
                *slot = old + n;
                old
            }
        }
        None => 0,
    }
}

/// A pointer to `len` bytes at `offset`, if the frame holds them.
#[inline(always)]
fn ptr_at(ctx: &XdpContext, offset: usize, len: usize) -> Option<*mut u8> {
    let start = ctx.data();
    let end = ctx.data_end();
    if start + offset + len > end {
        return None;
    }
    Some((start + offset) as *mut u8)
}

/// Writes field `f` for frame number `n`.
#[inline(always)]
fn vary(ctx: &XdpContext, f: &GenField, n: u64) {
    if f.count == 0 {
        return;
    }
    let stride = if f.stride == 0 {
        1
    } else {
        u64::from(f.stride)
    };
    let value = (u64::from(f.base) + (n / stride) % u64::from(f.count)) as u32;
    let offset = f.offset as usize;
    // Verifier: a packet offset must be bounded before it is added to the data pointer.
    if offset > MAX_FIELD_OFFSET {
        return;
    }
    let Some(p) = ptr_at(ctx, offset, 4) else {
        return;
    };
    let bytes = value.to_be_bytes();
    // SAFETY: `p..p + 4` lies inside the frame (checked by `ptr_at`).
    unsafe {
        match f.width {
            1 => *p = bytes[3],
            2 => {
                *p = bytes[2];
                *p.add(1) = bytes[3];
            }
            3 => {
                *p = bytes[1];
                *p.add(1) = bytes[2];
                *p.add(2) = bytes[3];
            }
            4 => {
                *p = bytes[0];
                *p.add(1) = bytes[1];
                *p.add(2) = bytes[2];
                *p.add(3) = bytes[3];
            }
            _ => {}
        }
    }
}

/// Writes the template's first `header_len` bytes into the frame, 8 bytes at a time.
#[inline(always)]
fn restore_header(ctx: &XdpContext, cfg: &GenConfig) {
    let len = cfg.header_len as usize;
    let mut off = 0;
    // Bounded by a constant: the verifier sees at most GEN_HEADER_MAX / 8 iterations.
    while off < GEN_HEADER_MAX {
        if off + 8 > len {
            break;
        }
        let Some(p) = ptr_at(ctx, off, 8) else {
            break;
        };
        // SAFETY: `off + 8 <= GEN_HEADER_MAX` indexes inside the map value's array; `p` has
        // 8 bytes inside the frame (checked by `ptr_at`).
        unsafe {
            let v = (cfg.header.as_ptr().add(off) as *const u64).read_unaligned();
            (p as *mut u64).write_unaligned(v);
        }
        off += 8;
    }
}

/// The live-frames generator: restore the template's headers, vary the configured fields,
/// transmit.
#[xdp]
fn bench_gen(ctx: XdpContext) -> u32 {
    let n = count(BenchCounter::Generated, 1);
    if let Some(cfg) = BENCH_GEN.get(0) {
        restore_header(&ctx, cfg);
        let mut i = 0;
        while i < GEN_FIELDS {
            vary(&ctx, &cfg.fields[i], n);
            i += 1;
        }
    }
    xdp_action::XDP_TX
}

/// The baseline: FIB lookup, MAC rewrite, redirect.
#[xdp]
fn bench_fib(ctx: XdpContext) -> u32 {
    match try_fib(&ctx) {
        Some(v) => v,
        None => {
            count(BenchCounter::FwdFailed, 1);
            xdp_action::XDP_PASS
        }
    }
}

#[inline(always)]
fn try_fib(ctx: &XdpContext) -> Option<u32> {
    let eth = ptr_at(ctx, 0, ETH_HLEN + 20)?;
    // SAFETY: Ethernet + a 20-byte IPv4 header lie inside the frame (checked above).
    let (ethertype, tot_len, proto, saddr, daddr) = unsafe {
        let ip = eth.add(ETH_HLEN);
        (
            u16::from_be_bytes([*eth.add(12), *eth.add(13)]),
            u16::from_be_bytes([*ip.add(2), *ip.add(3)]),
            *ip.add(9),
            (ip.add(12) as *const u32).read_unaligned(),
            (ip.add(16) as *const u32).read_unaligned(),
        )
    };
    if ethertype != ETH_P_IP {
        return None;
    }
    // SAFETY: bpf_fib_lookup is plain data; all-zero is a valid value.
    let mut p: bpf_fib_lookup = unsafe { core::mem::zeroed() };
    p.family = AF_INET;
    p.l4_protocol = proto;
    p.__bindgen_anon_1.tot_len = tot_len;
    // SAFETY: the context pointer is the program's own xdp_md.
    p.ifindex = unsafe { (*ctx.ctx).ingress_ifindex };
    p.__bindgen_anon_3.ipv4_src = saddr;
    p.__bindgen_anon_4.ipv4_dst = daddr;
    // SAFETY: `p` is a valid, initialised bpf_fib_lookup of the size passed.
    let rc = unsafe {
        fib_lookup_helper(
            ctx.as_ptr(),
            &mut p,
            core::mem::size_of::<bpf_fib_lookup>() as i32,
            0,
        )
    };
    if rc as u32 != BPF_FIB_LKUP_RET_SUCCESS {
        return None;
    }
    // Re-derive the pointer: the helper call invalidated the verifier's packet bounds.
    let eth = ptr_at(ctx, 0, ETH_HLEN)?;
    // SAFETY: 14 bytes of Ethernet header lie inside the frame (checked above).
    unsafe {
        core::ptr::copy_nonoverlapping(p.dmac.as_ptr(), eth, 6);
        core::ptr::copy_nonoverlapping(p.smac.as_ptr(), eth.add(6), 6);
    }
    BENCH_DEVMAP.redirect(p.ifindex, 0).ok()
}

/// No-op forwarding: every frame to the configured interface.
#[xdp]
fn bench_redirect(_ctx: XdpContext) -> u32 {
    let to = match BENCH_REDIRECT_TO.get(0) {
        Some(to) => *to,
        None => 0,
    };
    match BENCH_DEVMAP.redirect(to, 0) {
        Ok(v) => v,
        Err(_) => {
            count(BenchCounter::FwdFailed, 1);
            xdp_action::XDP_DROP
        }
    }
}

/// The sink: count, drop.
#[xdp]
fn bench_sink(ctx: XdpContext) -> u32 {
    count(BenchCounter::SinkFrames, 1);
    count(
        BenchCounter::SinkBytes,
        (ctx.data_end() - ctx.data()) as u64,
    );
    xdp_action::XDP_DROP
}

/// Let the stack have it.
#[xdp]
fn bench_pass(_ctx: XdpContext) -> u32 {
    xdp_action::XDP_PASS
}

/// License section: GPL-only helpers (`bpf_fib_lookup`) may be used.
#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";

#[cfg(target_arch = "bpf")]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

/// Host builds only: the programs above are type-checked, not run.
#[cfg(not(target_arch = "bpf"))]
fn main() {}
