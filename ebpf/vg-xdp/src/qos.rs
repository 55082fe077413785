//! Per-home rate limits: one virtual-scheduling token bucket (GCRA) per home and direction,
//! shared by every CPU ([`nerg_abi::QosRate`] says what a limit is).
//!
//! A packet is admitted while the home's theoretical arrival time runs at most the burst
//! ahead of the clock; an admitted packet moves it on by its cost with an atomic add. Two
//! CPUs may both read the time before either adds: each such race admits one packet more
//! than a single CPU would (the adds themselves are never lost), so the error is at most one
//! packet per CPU at once. A bucket that fell idle (its time in the past) restarts at the
//! clock with a plain store; an add racing that store is lost: one packet free per CPU at
//! that moment. Both bounds are a handful of packets on a limit counted in milliseconds.
//!
//! Time is the kernel's coarse monotonic clock, which moves by ticks: within one tick the
//! bucket sees no time pass, so a burst may be a tick's worth of traffic deeper than set.

use aya_ebpf::{helpers::bpf_ktime_get_coarse_ns, macros::map, maps::Array};
use nerg_abi::{MAX_SUBSCRIBERS, QosRate, QosState, SubscriberId};

/// Where each home's buckets stand (pinned: a restarted vgd keeps them).
#[map(name = "NERG_QOS")]
static QOS: Array<QosState> = Array::pinned(MAX_SUBSCRIBERS, 0);

/// Whether a packet of `bytes` IPv4 bytes of home `sub` fits its limit `rate` in direction
/// `DIR` ([`nerg_abi::QOS_UP`] or [`nerg_abi::QOS_DOWN`]); an admitted packet is charged.
#[inline(always)]
pub(crate) fn admit<const DIR: usize>(sub: SubscriberId, rate: &QosRate, bytes: u64) -> bool {
    if rate.ns_per_byte_q16 == 0 {
        return true;
    }
    let Some(state) = QOS.get_ptr_mut(sub) else {
        // Only an id beyond the array has no slot, and no such home exists.
        return true;
    };
    // SAFETY: `state` is a live array slot from a successful lookup, valid for this run and
    // 8-byte aligned; every CPU reads and writes its `u64`s whole (loads, stores, atomic
    // adds), vgd never.
    let tat = unsafe { core::ptr::addr_of_mut!((*state).tat_ns[DIR]) };
    // The coarse clock (the kernel's tick, 1 to 4 ms): the precise one costs a fifth of an
    // established flow's whole upstream path, and a tick is small beside a burst of
    // hundreds of milliseconds; the rate over any longer interval is exact.
    // SAFETY: a helper without arguments.
    let now = unsafe { bpf_ktime_get_coarse_ns() };
    let cost = rate.cost_ns(bytes);
    // SAFETY: as above.
    let at = unsafe { core::ptr::read_volatile(tat) };
    if at <= now {
        // SAFETY: as above.
        unsafe { core::ptr::write_volatile(tat, now + cost) };
        return true;
    }
    if at - now > rate.burst_ns {
        return false;
    }
    add(tat, cost);
    true
}

/// `*n += v`, atomically (BPF_ATOMIC_ADD without fetch: the BPF target has no
/// compare-and-swap, so `AtomicU64::fetch_add` does not exist there; see `nat.rs`).
#[inline(always)]
fn add(n: *mut u64, v: u64) {
    // SAFETY: `n` is a live, aligned map value (see `admit`).
    #[cfg(target_arch = "bpf")]
    unsafe {
        core::intrinsics::atomic_xadd::<u64, u64, { core::intrinsics::AtomicOrdering::Relaxed }>(
            n, v,
        )
    };
    #[cfg(not(target_arch = "bpf"))]
    // SAFETY: as above.
    unsafe {
        core::sync::atomic::AtomicU64::from_ptr(n)
            .fetch_add(v, core::sync::atomic::Ordering::Relaxed)
    };
}
