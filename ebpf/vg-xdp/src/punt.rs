//! Handing frames to the slow path: the whole frame as received (encapsulation included, up
//! to [`PUNT_MAX_FRAME`] bytes) plus the subscriber, through a ring buffer that vgd reads.

use aya_ebpf::{EbpfContext as _, helpers::generated::bpf_xdp_load_bytes, programs::XdpContext};
use nerg_abi::{DropReason, PUNT_MAX_FRAME, PuntReason, PuntRecord, SubscriberId};

use crate::{PUNT, Verdict};

/// Copies the frame to the punt ring; `Verdict::Punted`, or a counted drop if the ring is
/// full or the copy fails.
#[inline(always)]
pub(crate) fn punt(ctx: &XdpContext, sub: SubscriberId, reason: PuntReason) -> Verdict {
    punt_mtu(ctx, sub, reason, 0)
}

/// [`punt`] with the MTU a Packet Too Big must announce ([`PuntReason::PacketTooBig`]).
#[inline(always)]
pub(crate) fn punt_mtu(
    ctx: &XdpContext,
    sub: SubscriberId,
    reason: PuntReason,
    mtu: u16,
) -> Verdict {
    let wire_len = ctx.data_end() - ctx.data();
    let Some(mut entry) = PUNT.reserve::<PuntRecord>(0) else {
        return Verdict::Drop(DropReason::PuntRingFull);
    };
    // The verifier needs a length it can bound: 1..=PUNT_MAX_FRAME, both bounds checked on
    // one register. Read back through a volatile load so that LLVM cannot move the zero
    // check onto `wire_len` before the clamp (it did, and the verifier then saw 0..=2031).
    let clamped = if wire_len > PUNT_MAX_FRAME {
        PUNT_MAX_FRAME
    } else {
        wire_len
    };
    // SAFETY: a read of a local.
    let len = unsafe { core::ptr::read_volatile(&clamped) };
    if len == 0 || len > PUNT_MAX_FRAME {
        entry.discard(0);
        return Verdict::Drop(DropReason::Truncated);
    }
    let record = entry.as_mut_ptr();
    // SAFETY: `record` points to a reserved ring-buffer slot of size_of::<PuntRecord>()
    // bytes, and `len <= PUNT_MAX_FRAME` bytes are written into its `frame` array.
    let rc = unsafe {
        (*record).header.sub = sub;
        (*record).header.ifindex = ctx.ingress_ifindex() as u32;
        (*record).header.reason = reason.index() as u16;
        (*record).header.len = len as u16;
        (*record).header.wire_len = wire_len as u16;
        (*record).header.mtu = mtu;
        bpf_xdp_load_bytes(
            ctx.as_ptr().cast(),
            0,
            (*record).frame.as_mut_ptr().cast(),
            len as u32,
        )
    };
    if rc != 0 {
        entry.discard(0);
        return Verdict::Drop(DropReason::Truncated);
    }
    entry.submit(0);
    Verdict::Punted
}
