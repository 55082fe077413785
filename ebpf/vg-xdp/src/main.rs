//! The vG's XDP fast path.
//!
//! Each entry point is a thin `#[xdp]` function that calls a `try_` pipeline; every stage
//! returns `Result<Next, Verdict>` and one exit function ([`finish`]) counts every verdict
//! and drop reason. Stages read top to bottom: parse L2 -> classify LSL -> (later) parse
//! L3/L4 -> NAT -> FIB -> rewrite -> redirect.
//!
//! On the host (clippy, `cargo build --workspace`) the crate is an empty binary whose code is
//! only type-checked; the real object is built for `bpfel-unknown-none` by `vg/build.rs`.
#![cfg_attr(target_arch = "bpf", no_std)]
#![cfg_attr(target_arch = "bpf", no_main)]
#![expect(
    unsafe_code,
    reason = "eBPF programs read packet memory through raw pointers"
)]

mod packet;

use aya_ebpf::{
    bindings::xdp_action,
    macros::{map, xdp},
    maps::PerCpuArray,
    programs::XdpContext,
};
use nerg_abi::{Counter, CounterValue, DropReason, MAX_VLAN_DEPTH, ethertype};

use crate::packet::{Cursor, EthHdr, VlanHdr};

/// Per-CPU packet counters, indexed by [`Counter`].
#[map(name = "NERG_STATS")]
static NERG_STATS: PerCpuArray<CounterValue> = PerCpuArray::pinned(Counter::COUNT, 0);

/// Per-CPU drop counters, indexed by [`DropReason`].
#[map(name = "NERG_DROPS")]
static NERG_DROPS: PerCpuArray<CounterValue> = PerCpuArray::pinned(DropReason::COUNT, 0);

/// The outcome of a pipeline: what to tell the kernel, and why when dropping.
#[derive(Clone, Copy)]
pub(crate) enum Verdict {
    /// Hand the frame to the kernel stack.
    Pass,
    /// Drop the frame, counted under the reason.
    Drop(DropReason),
}

/// Access-side ingress: LSL termination and (later) upstream NAT.
#[xdp]
fn vg_access(ctx: XdpContext) -> u32 {
    count(&NERG_STATS, Counter::AccessRxPackets.index(), 1);
    count(
        &NERG_STATS,
        Counter::AccessRxBytes.index(),
        (ctx.data_end() - ctx.data()) as u64,
    );
    let verdict = match try_vg_access(&ctx) {
        Ok(verdict) | Err(verdict) => verdict,
    };
    finish(verdict)
}

/// Passes every frame. Attached to veth peers: a native redirect or `XDP_TX` into a veth is
/// only delivered when the peer has an XDP program of its own.
#[xdp]
fn vg_pass(_ctx: XdpContext) -> u32 {
    xdp_action::XDP_PASS
}

fn try_vg_access(ctx: &XdpContext) -> Result<Verdict, Verdict> {
    let mut cur = Cursor::new(ctx);
    let eth: EthHdr = cur.read()?;
    let (_tags, _ethertype) = classify_lsl(&mut cur, eth.ethertype())?;
    Ok(Verdict::Pass)
}

/// Walks the in-line VLAN tags (up to [`MAX_VLAN_DEPTH`]) and counts the LSL kind.
/// Returns the number of tags and the ethertype after them.
#[inline(always)]
fn classify_lsl(cur: &mut Cursor, mut ethertype: u16) -> Result<(usize, u16), Verdict> {
    let mut depth = 0;
    // Bounded by a named constant: the verifier sees a fixed trip count.
    while depth < MAX_VLAN_DEPTH {
        if !is_vlan_tpid(ethertype) {
            break;
        }
        let tag: VlanHdr = cur.read()?;
        ethertype = tag.ethertype();
        depth += 1;
    }
    if is_vlan_tpid(ethertype) {
        return Err(Verdict::Drop(DropReason::VlanTooDeep));
    }
    let kind = match depth {
        0 => Counter::LslUntagged,
        1 => Counter::LslDot1q,
        _ => Counter::LslQinq,
    };
    count(&NERG_STATS, kind.index(), 1);
    Ok((depth, ethertype))
}

#[inline(always)]
fn is_vlan_tpid(ethertype: u16) -> bool {
    matches!(
        ethertype,
        ethertype::VLAN | ethertype::QINQ | ethertype::QINQ_LEGACY
    )
}

/// The one exit: counts the verdict (and the drop reason) and maps it to an XDP action.
#[inline(always)]
fn finish(verdict: Verdict) -> u32 {
    let (counter, action) = match verdict {
        Verdict::Pass => (Counter::VerdictPass, xdp_action::XDP_PASS),
        Verdict::Drop(reason) => {
            count(&NERG_DROPS, reason.index(), 1);
            (Counter::VerdictDrop, xdp_action::XDP_DROP)
        }
    };
    count(&NERG_STATS, counter.index(), 1);
    action
}

#[inline(always)]
fn count(map: &PerCpuArray<CounterValue>, index: u32, n: u64) {
    if let Some(slot) = map.get_ptr_mut(index) {
        // SAFETY: the pointer comes from a successful per-CPU array lookup: it is valid,
        // aligned, and only this CPU writes it while this program runs.
        unsafe { *slot += n };
    }
}

/// License section: `bpf_fib_lookup` and other helpers the fast path needs are GPL-only.
#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";

#[cfg(target_arch = "bpf")]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    // eBPF has no unwinding; the verifier rejects any path that could reach here.
    loop {}
}

/// Host builds only: the programs above are type-checked, not run.
#[cfg(not(target_arch = "bpf"))]
fn main() {}
