//! Incremental Internet checksum updates (RFC 1624, eqn. 3: `HC' = ~(~HC + ~m + m')`).
//!
//! Every value here is "raw": a 16- or 32-bit word exactly as it sits in the packet, read
//! with native byte order. The one's-complement sum is independent of byte order (RFC 1071
//! §2(B)), so raw words can be summed and the result stored back raw.

/// Folds a 32-bit one's-complement sum into 16 bits.
#[inline(always)]
pub(crate) fn fold(mut sum: u32) -> u16 {
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    sum as u16
}

/// The checksum `check` after a 16-bit word changes from `old` to `new`.
#[inline(always)]
pub(crate) fn replace16(check: u16, old: u16, new: u16) -> u16 {
    !fold(u32::from(!check) + u32::from(!old) + u32::from(new))
}

/// The checksum `check` after a 32-bit word (an IPv4 address) changes from `old` to `new`.
#[inline(always)]
pub(crate) fn replace32(check: u16, old: u32, new: u32) -> u16 {
    let check = replace16(check, old as u16, new as u16);
    replace16(check, (old >> 16) as u16, (new >> 16) as u16)
}

/// The checksum of a complete IPv4 header of 20 bytes (checksum field zero).
#[inline(always)]
pub(crate) fn ipv4_header(hdr: &[u8; 20]) -> u16 {
    let mut sum = 0u32;
    let mut i = 0;
    while i < 20 {
        sum += u32::from(u16::from_ne_bytes([hdr[i], hdr[i + 1]]));
        i += 2;
    }
    !fold(sum)
}

/// Adds `b` to the 32-bit one's-complement accumulator `a` (end-around carry).
#[inline(always)]
pub(crate) fn add32(a: u32, b: u32) -> u32 {
    let (sum, carry) = a.overflowing_add(b);
    sum + u32::from(carry)
}
