//! Wire formats of the LSL encapsulations, in smoltcp's `Packet`/`Repr` split.
//!
//! Each format has its own module: a zero-copy [`vlan::Packet`] / [`vxlan::Packet`] view whose
//! `new_checked` validates the length once so that no accessor can panic afterwards, and a
//! small `Copy` `Repr` with `parse`, `buffer_len` and `emit`. The outer Ethernet, IPv4, IPv6
//! and UDP headers come from [`smoltcp::wire`]; the types that appear in this crate's API are
//! re-exported here so that users need no direct smoltcp dependency.

pub mod vlan;
pub mod vxlan;

pub use smoltcp::wire::{
    ETHERNET_HEADER_LEN, EthernetAddress, EthernetFrame, EthernetProtocol, EthernetRepr,
};

/// A byte range of a header field.
pub(crate) type Field = core::ops::Range<usize>;

/// Why a header could not be parsed. Tiny and `Copy`: the data path counts it and drops the
/// frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The buffer is shorter than the header, or than a length field inside it says.
    #[error("truncated header")]
    Truncated,
    /// A field holds a value the format forbids (e.g. a VXLAN header without the I flag).
    #[error("malformed header")]
    Malformed,
    /// More stacked VLAN tags than [`vlan::MAX_VLAN_DEPTH`].
    #[error("more than {} stacked VLAN tags", vlan::MAX_VLAN_DEPTH)]
    TooManyTags,
}

/// The result of parsing a header.
pub type Result<T> = core::result::Result<T, Error>;

/// Reads a big-endian `u16` from the two bytes of `field`.
///
/// Callers have checked the buffer length (`new_checked`), so the index cannot fail.
#[inline]
pub(crate) fn read_u16(data: &[u8], field: Field) -> u16 {
    let bytes = &data[field];
    u16::from_be_bytes([bytes[0], bytes[1]])
}

/// Writes a big-endian `u16` into the two bytes of `field`.
#[inline]
pub(crate) fn write_u16(data: &mut [u8], field: Field, value: u16) {
    data[field].copy_from_slice(&value.to_be_bytes());
}
