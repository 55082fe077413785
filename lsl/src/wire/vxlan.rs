//! The VXLAN header ([RFC 7348 §5](https://www.rfc-editor.org/rfc/rfc7348#section-5)).
//!
//! Eight bytes after the outer UDP header (destination port [`UDP_PORT`]), followed by the
//! inner Ethernet frame:
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |R|R|R|R|I|R|R|R|            Reserved                           |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                VXLAN Network Identifier (VNI) |   Reserved    |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! The I flag must be set for a valid VNI; the `R` bits and reserved fields are written as
//! zero and ignored on receipt (RFC 7348 §5).
//!
//! No-panic contract: [`Packet::new_checked`] (or [`Packet::check_len`]) validates the length
//! once, after which no getter, setter or `payload` call can panic. [`Packet::check_flags`]
//! reports a clear I flag as [`Error::Malformed`]; [`Repr::parse`] runs both checks.

use super::{Error, Result};

/// The IANA-assigned VXLAN UDP destination port (RFC 7348 §5).
pub const UDP_PORT: u16 = 4789;

/// Length of the VXLAN header.
pub const HEADER_LEN: usize = field::RESERVED2 + 1;

/// The I flag: the VNI field is valid (RFC 7348 §5).
pub const FLAG_I: u8 = 0x08;

/// Largest VNI: the field is 24 bits wide.
pub const VNI_MAX: u32 = 0x00ff_ffff;

/// Bytes VXLAN adds in front of an inner frame over IPv4: outer Ethernet, IPv4, UDP, VXLAN.
pub const OVERHEAD_IPV4: usize = 14 + 20 + 8 + HEADER_LEN;

/// Bytes VXLAN adds in front of an inner frame over IPv6: outer Ethernet, IPv6, UDP, VXLAN.
pub const OVERHEAD_IPV6: usize = 14 + 40 + 8 + HEADER_LEN;

mod field {
    use crate::wire::Field;

    pub(super) const FLAGS: usize = 0;
    pub(super) const RESERVED1: Field = 1..4;
    pub(super) const VNI: Field = 4..7;
    pub(super) const RESERVED2: usize = 7;
}

/// A read/write view of a VXLAN header and the inner frame after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps a buffer without checking its length; see [`Packet::new_checked`].
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// Wraps a buffer after checking it holds a whole header, so no accessor can panic.
    ///
    /// The flags are not checked here; see [`Packet::check_flags`].
    pub fn new_checked(buffer: T) -> Result<Packet<T>> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Returns `Err(Error::Truncated)` if the buffer is shorter than [`HEADER_LEN`].
    pub fn check_len(&self) -> Result<()> {
        if self.buffer.as_ref().len() < HEADER_LEN {
            Err(Error::Truncated)
        } else {
            Ok(())
        }
    }

    /// Returns `Err(Error::Malformed)` unless the I flag is set. Other flag bits are
    /// ignored, as RFC 7348 §5 requires of a receiver.
    pub fn check_flags(&self) -> Result<()> {
        if self.has_vni() {
            Ok(())
        } else {
            Err(Error::Malformed)
        }
    }

    /// Consumes the view and returns the buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The flags byte.
    #[inline]
    pub fn flags(&self) -> u8 {
        self.buffer.as_ref()[field::FLAGS]
    }

    /// Whether the I flag is set, i.e. the VNI is valid.
    #[inline]
    pub fn has_vni(&self) -> bool {
        self.flags() & FLAG_I != 0
    }

    /// The 24-bit VXLAN network identifier.
    #[inline]
    pub fn vni(&self) -> u32 {
        let vni = &self.buffer.as_ref()[field::VNI];
        u32::from_be_bytes([0, vni[0], vni[1], vni[2]])
    }

    /// The 24 reserved bits after the flags.
    #[inline]
    pub fn reserved1(&self) -> u32 {
        let reserved = &self.buffer.as_ref()[field::RESERVED1];
        u32::from_be_bytes([0, reserved[0], reserved[1], reserved[2]])
    }

    /// The reserved last byte.
    #[inline]
    pub fn reserved2(&self) -> u8 {
        self.buffer.as_ref()[field::RESERVED2]
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Packet<&'a T> {
    /// The inner Ethernet frame.
    #[inline]
    pub fn payload(&self) -> &'a [u8] {
        &self.buffer.as_ref()[HEADER_LEN..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets the flags byte.
    #[inline]
    pub fn set_flags(&mut self, value: u8) {
        self.buffer.as_mut()[field::FLAGS] = value;
    }

    /// Sets the VNI; bits above the low 24 are ignored.
    #[inline]
    pub fn set_vni(&mut self, value: u32) {
        let bytes = value.to_be_bytes();
        self.buffer.as_mut()[field::VNI].copy_from_slice(&bytes[1..]);
    }

    /// Zeroes both reserved fields.
    #[inline]
    pub fn clear_reserved(&mut self) {
        let data = self.buffer.as_mut();
        data[field::RESERVED1].fill(0);
        data[field::RESERVED2] = 0;
    }

    /// The inner Ethernet frame, writable.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[HEADER_LEN..]
    }
}

impl<T: AsRef<[u8]>> AsRef<[u8]> for Packet<T> {
    fn as_ref(&self) -> &[u8] {
        self.buffer.as_ref()
    }
}

/// A VXLAN header: all a receiver needs from it is the VNI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Repr {
    /// The VXLAN network identifier, 0..=[`VNI_MAX`].
    pub vni: u32,
}

impl Repr {
    /// Parses a header; fails if it is truncated or the I flag is clear.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(packet: &Packet<&T>) -> Result<Repr> {
        packet.check_len()?;
        packet.check_flags()?;
        Ok(Repr { vni: packet.vni() })
    }

    /// The number of bytes [`Repr::emit`] writes.
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes the header (I flag set, reserved fields zero) into a buffer of at least
    /// [`Repr::buffer_len`] bytes (checked by the caller, as with smoltcp's `emit`). A `vni`
    /// over [`VNI_MAX`] is truncated to 24 bits.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>) {
        packet.set_flags(FLAG_I);
        packet.clear_reserved();
        packet.set_vni(self.vni);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{VXLAN4_ARP, VXLAN6_ARP, untagged_arp};

    /// The VXLAN header of the IPv4 fixture starts after Ethernet, IPv4 and UDP.
    const V4_OFFSET: usize = 14 + 20 + 8;

    #[test]
    fn parse_fixture() {
        for (frame, offset) in [(&VXLAN4_ARP[..], V4_OFFSET), (&VXLAN6_ARP[..], 14 + 40 + 8)] {
            let packet = Packet::new_checked(&frame[offset..]).expect("header fits");
            assert_eq!(packet.flags(), FLAG_I);
            assert!(packet.has_vni());
            assert_eq!(packet.vni(), 5001);
            assert_eq!((packet.reserved1(), packet.reserved2()), (0, 0));
            assert_eq!(packet.payload(), &untagged_arp()[..]);
            assert_eq!(Repr::parse(&packet), Ok(Repr { vni: 5001 }));
        }
    }

    #[test]
    fn emit_round_trips_fixture() {
        let bytes = &VXLAN4_ARP[V4_OFFSET..V4_OFFSET + HEADER_LEN];
        let repr = Repr::parse(&Packet::new_checked(bytes).expect("fits")).expect("parses");
        assert_eq!(repr.buffer_len(), HEADER_LEN);
        let mut out = [0xffu8; HEADER_LEN];
        repr.emit(&mut Packet::new_unchecked(&mut out[..]));
        assert_eq!(&out[..], bytes);
    }

    #[test]
    fn i_flag_clear_is_an_error() {
        let mut bytes = [0u8, 0, 0, 0, 0, 0x13, 0x89, 0];
        let packet = Packet::new_checked(&bytes[..]).expect("fits");
        assert_eq!(packet.check_flags(), Err(Error::Malformed));
        assert_eq!(Repr::parse(&packet), Err(Error::Malformed));
        // The other flag bits and the reserved fields are ignored on receipt.
        bytes[0] = 0xff;
        bytes[1..4].copy_from_slice(&[0xaa, 0xbb, 0xcc]);
        bytes[7] = 0xdd;
        let packet = Packet::new_checked(&bytes[..]).expect("fits");
        assert_eq!((packet.reserved1(), packet.reserved2()), (0xaabbcc, 0xdd));
        assert_eq!(Repr::parse(&packet), Ok(Repr { vni: 5001 }));
    }

    #[test]
    fn vni_extremes() {
        for vni in [0, 1, VNI_MAX] {
            let mut out = [0u8; HEADER_LEN];
            Repr { vni }.emit(&mut Packet::new_unchecked(&mut out[..]));
            assert_eq!(
                Repr::parse(&Packet::new_unchecked(&out[..])),
                Ok(Repr { vni })
            );
        }
        let mut out = [0u8; HEADER_LEN];
        let mut packet = Packet::new_unchecked(&mut out[..]);
        packet.set_vni(0xabcd_ef01);
        assert_eq!(packet.vni(), 0x00cd_ef01, "only 24 bits are kept");
        packet.payload_mut(); // empty, but must not panic
        assert_eq!(out, [0, 0, 0, 0, 0xcd, 0xef, 0x01, 0]);
    }

    #[test]
    fn truncated_every_length() {
        for len in 0..HEADER_LEN {
            let bytes = &VXLAN4_ARP[V4_OFFSET..V4_OFFSET + len];
            assert_eq!(
                Packet::new_checked(bytes),
                Err(Error::Truncated),
                "len {len}"
            );
            assert_eq!(
                Repr::parse(&Packet::new_unchecked(bytes)),
                Err(Error::Truncated),
                "len {len}"
            );
        }
    }

    #[test]
    fn overheads() {
        assert_eq!(OVERHEAD_IPV4, 50);
        assert_eq!(OVERHEAD_IPV6, 70);
        assert_eq!(VXLAN4_ARP.len() - untagged_arp().len(), OVERHEAD_IPV4);
        assert_eq!(VXLAN6_ARP.len() - untagged_arp().len(), OVERHEAD_IPV6);
    }
}
