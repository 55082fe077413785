//! TCP MSS clamping: a SYN's maximum-segment-size option is lowered to what the home's LSL
//! carries without fragmentation (a VXLAN LSL takes 50 bytes of the 1500-byte MTU), in both
//! directions, so that neither end sends segments the LSL would have to fragment or drop.
//!
//! The options are walked with a bounded loop at offsets the verifier can bound: after the
//! LSL is stripped (or before it is pushed) the TCP header is at the fixed offset [`L4`].

use aya_ebpf::programs::XdpContext;
use nerg_abi::Counter;

use crate::{
    Verdict, count_stat, csum,
    fwd::L4,
    packet::{l4off, load, store},
};

/// Where the options start: behind the 20-byte fixed header.
const OPTIONS: usize = L4 + 20;
/// The most option bytes a TCP header holds (data offset 15).
const MAX_OPTIONS_LEN: usize = 40;
/// Options looked at before giving up (SYNs carry at most a handful; MSS usually first).
const MAX_OPTIONS: u32 = 12;
/// TCP option kinds (RFC 9293 §3.2).
const END: u8 = 0;
const NOP: u8 = 1;
const MSS: u8 = 2;

/// Lowers the MSS option of the TCP segment at [`L4`] to `max` when it is larger. A
/// subprogram: called only for SYNs of homes that clamp.
#[inline(never)]
pub(crate) fn clamp(ctx: &XdpContext, max: u16) -> Result<(), Verdict> {
    let doff: u8 = load(ctx, L4 + 12)?;
    let header_len = usize::from(doff >> 4) * 4;
    if header_len <= 20 {
        return Ok(());
    }
    let options_len = header_len - 20;
    let mut i = 0usize;
    let mut n = 0;
    while n < MAX_OPTIONS {
        if i >= options_len || i >= MAX_OPTIONS_LEN {
            break;
        }
        let off = OPTIONS + (i & 0x3f);
        let kind: u8 = load(ctx, off)?;
        if kind == END {
            break;
        }
        if kind == NOP {
            i += 1;
            n += 1;
            continue;
        }
        let len: u8 = load(ctx, off + 1)?;
        if kind == MSS && len == 4 {
            let old: u16 = load(ctx, off + 2)?;
            if u16::from_be(old) > max {
                let new = max.to_be();
                // Behind an odd number of one-byte options the value straddles two
                // checksum words; summing it byte-swapped is the same (RFC 1071 §2(B)).
                let (o, w) = if i & 1 == 1 {
                    (old.swap_bytes(), new.swap_bytes())
                } else {
                    (old, new)
                };
                let check: u16 = load(ctx, L4 + l4off::TCP_CHECK)?;
                store(ctx, off + 2, new)?;
                store(ctx, L4 + l4off::TCP_CHECK, csum::replace16(check, o, w))?;
                count_stat(Counter::MssClamped);
            }
            break;
        }
        if len < 2 {
            break;
        }
        i += usize::from(len);
        n += 1;
    }
    Ok(())
}
