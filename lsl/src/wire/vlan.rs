//! IEEE 802.1Q VLAN tags (C-tag) and IEEE 802.1ad QinQ stacks (S-tag over C-tag).
//!
//! A tag sits in an Ethernet frame after the MAC addresses: a TPID in the place of the
//! ethertype, then the 16-bit TCI, then the next ethertype (another TPID for a stacked tag).
//! [`Packet`] views the 4 bytes that follow a TPID:
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-----+-+-----------------------+-------------------------------+
//! | PCP |D|          VID          |      next EtherType / TPID    |
//! +-----+-+-----------------------+-------------------------------+
//!   TCI: PCP = priority code point, D = drop eligible indicator, VID = VLAN identifier
//! ```
//!
//! [`TagStack`] parses the in-line tags of a whole frame, up to [`MAX_VLAN_DEPTH`];
//! [`push_tag`] and [`pop_tag`] edit a `Vec`-backed frame (tests and the slow path).
//!
//! No-panic contract: [`Packet::new_checked`] (or [`Packet::check_len`]) validates the length
//! once, after which no getter, setter or `payload` call can panic. [`TagStack::parse`],
//! [`push_tag`] and [`pop_tag`] never panic on any input. Parsing accepts every VID,
//! including the reserved 0 (priority tag) and 4095; [`crate::model::Vid`] rejects those.

use super::{Error, EthernetProtocol, Result, read_u16, write_u16};

/// Greatest number of VLAN tags parsed in-line: one C-tag, or an S-tag and a C-tag. The XDP
/// parser's bound, defined once in the map ABI.
pub const MAX_VLAN_DEPTH: usize = nerg_abi::MAX_VLAN_DEPTH;

/// Length of the part of a tag [`Packet`] views (TCI + next ethertype).
pub const HEADER_LEN: usize = field::ETHERTYPE.end;

/// Length of a whole tag in a frame (TPID + TCI).
pub const TAG_LEN: usize = 4;

/// Offset of the ethertype (or outermost TPID) in an Ethernet frame: after the two MACs.
const ETHERTYPE_OFFSET: usize = 12;

/// The VID bits of the TCI (12 bits: 0..=4095, of which 0 and 4095 are reserved).
pub const VID_MASK: u16 = 0x0fff;

mod field {
    use crate::wire::Field;

    pub(super) const TCI: Field = 0..2;
    pub(super) const ETHERTYPE: Field = 2..4;
}

/// The tag protocol identifiers NERG recognises as VLAN tags (IEEE 802.1Q-2018 §9.5).
///
/// Any other ethertype is not a tag: [`Tpid::from_ethertype`] returns `None` for it, which is
/// not a parse failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u16)]
pub enum Tpid {
    /// 0x8100, the 802.1Q customer tag (C-tag); also seen as a legacy outer tag.
    CTag = 0x8100,
    /// 0x88A8, the 802.1ad service tag (S-tag).
    STag = 0x88a8,
    /// 0x9100, the pre-standard QinQ outer tag still used by some access nodes.
    STagLegacy = 0x9100,
}

impl Tpid {
    /// The TPID an ethertype value stands for, or `None` if it is not a VLAN tag.
    pub const fn from_ethertype(ethertype: u16) -> Option<Tpid> {
        match ethertype {
            0x8100 => Some(Tpid::CTag),
            0x88a8 => Some(Tpid::STag),
            0x9100 => Some(Tpid::STagLegacy),
            _ => None,
        }
    }

    /// The 16-bit value on the wire (host byte order).
    pub const fn value(self) -> u16 {
        self as u16
    }
}

impl From<Tpid> for EthernetProtocol {
    fn from(tpid: Tpid) -> Self {
        EthernetProtocol::from(tpid.value())
    }
}

impl core::fmt::Display for Tpid {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "0x{:04x}", self.value())
    }
}

/// A read/write view of the 4 bytes after a TPID: TCI and next ethertype.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps a buffer without checking its length; see [`Packet::new_checked`].
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// Wraps a buffer after checking it holds a whole tag, so no accessor can panic.
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

    /// Consumes the view and returns the buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The whole 16-bit tag control information.
    #[inline]
    pub fn tci(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::TCI)
    }

    /// The priority code point (3 bits).
    #[inline]
    pub fn pcp(&self) -> u8 {
        (self.tci() >> 13) as u8
    }

    /// The drop eligible indicator (formerly CFI).
    #[inline]
    pub fn dei(&self) -> bool {
        self.tci() & 0x1000 != 0
    }

    /// The VLAN identifier (12 bits; 0 and 4095 included).
    #[inline]
    pub fn vid(&self) -> u16 {
        self.tci() & VID_MASK
    }

    /// The ethertype after this tag: the payload's protocol, or the TPID of an inner tag.
    #[inline]
    pub fn ethertype(&self) -> EthernetProtocol {
        EthernetProtocol::from(read_u16(self.buffer.as_ref(), field::ETHERTYPE))
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Packet<&'a T> {
    /// The bytes after the tag.
    #[inline]
    pub fn payload(&self) -> &'a [u8] {
        &self.buffer.as_ref()[HEADER_LEN..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets the whole tag control information.
    #[inline]
    pub fn set_tci(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::TCI, value);
    }

    /// Sets the priority code point; bits above the low 3 are ignored.
    #[inline]
    pub fn set_pcp(&mut self, value: u8) {
        let tci = (self.tci() & 0x1fff) | (u16::from(value & 0x7) << 13);
        self.set_tci(tci);
    }

    /// Sets the drop eligible indicator.
    #[inline]
    pub fn set_dei(&mut self, value: bool) {
        let tci = (self.tci() & !0x1000) | if value { 0x1000 } else { 0 };
        self.set_tci(tci);
    }

    /// Sets the VLAN identifier; bits above the low 12 are ignored.
    #[inline]
    pub fn set_vid(&mut self, value: u16) {
        let tci = (self.tci() & !VID_MASK) | (value & VID_MASK);
        self.set_tci(tci);
    }

    /// Sets the ethertype after this tag.
    #[inline]
    pub fn set_ethertype(&mut self, value: EthernetProtocol) {
        write_u16(self.buffer.as_mut(), field::ETHERTYPE, value.into());
    }

    /// The bytes after the tag, writable.
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

/// The fields of one tag's TCI and the ethertype that follows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Repr {
    /// Priority code point, 0..=7.
    pub pcp: u8,
    /// Drop eligible indicator.
    pub dei: bool,
    /// VLAN identifier, 0..=4095 (0 and 4095 are reserved but representable).
    pub vid: u16,
    /// The ethertype after the tag (an inner TPID for a stacked tag).
    pub ethertype: EthernetProtocol,
}

impl Repr {
    /// Parses a tag; fails only if the buffer is too short.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(packet: &Packet<&T>) -> Result<Repr> {
        packet.check_len()?;
        Ok(Repr {
            pcp: packet.pcp(),
            dei: packet.dei(),
            vid: packet.vid(),
            ethertype: packet.ethertype(),
        })
    }

    /// The number of bytes [`Repr::emit`] writes.
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes the tag into a buffer of at least [`Repr::buffer_len`] bytes (checked by the
    /// caller, as with smoltcp's `emit`). A `pcp` over 7 or a `vid` over 4095 is truncated to
    /// the field width.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>) {
        packet.set_tci(0);
        packet.set_pcp(self.pcp);
        packet.set_dei(self.dei);
        packet.set_vid(self.vid);
        packet.set_ethertype(self.ethertype);
    }
}

/// One VLAN tag as it sits in a frame: its TPID and the fields of its TCI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Tag {
    /// The tag protocol identifier in front of the TCI.
    pub tpid: Tpid,
    /// Priority code point, 0..=7.
    pub pcp: u8,
    /// Drop eligible indicator.
    pub dei: bool,
    /// VLAN identifier, 0..=4095.
    pub vid: u16,
}

impl Tag {
    /// A tag with priority 0 and DEI clear.
    pub const fn new(tpid: Tpid, vid: u16) -> Tag {
        Tag {
            tpid,
            pcp: 0,
            dei: false,
            vid,
        }
    }

    /// The 16-bit TCI this tag encodes (fields wider than their width are truncated).
    pub const fn tci(&self) -> u16 {
        ((self.pcp as u16 & 0x7) << 13) | if self.dei { 0x1000 } else { 0 } | (self.vid & VID_MASK)
    }

    /// The 4 bytes of the tag on the wire: TPID then TCI.
    pub const fn to_bytes(&self) -> [u8; TAG_LEN] {
        let tpid = self.tpid.value().to_be_bytes();
        let tci = self.tci().to_be_bytes();
        [tpid[0], tpid[1], tci[0], tci[1]]
    }
}

/// The in-line VLAN tags of an Ethernet frame, outermost first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TagStack {
    tags: [Tag; MAX_VLAN_DEPTH],
    len: usize,
    ethertype: EthernetProtocol,
}

impl TagStack {
    /// Parses the tags of a whole Ethernet frame (starting with the destination MAC).
    ///
    /// Stops at the first ethertype that is not a [`Tpid`]. Fails with
    /// [`Error::Truncated`] if the frame ends inside the Ethernet header or a tag, and with
    /// [`Error::TooManyTags`] if more than [`MAX_VLAN_DEPTH`] tags are stacked.
    pub fn parse(frame: &[u8]) -> Result<TagStack> {
        let Some(header) = frame.get(..ETHERTYPE_OFFSET + 2) else {
            return Err(Error::Truncated);
        };
        let mut stack = TagStack {
            tags: [Tag::new(Tpid::CTag, 0); MAX_VLAN_DEPTH],
            len: 0,
            ethertype: EthernetProtocol::from(read_u16(
                header,
                ETHERTYPE_OFFSET..ETHERTYPE_OFFSET + 2,
            )),
        };
        let mut offset = ETHERTYPE_OFFSET + 2;
        while let Some(tpid) = Tpid::from_ethertype(stack.ethertype.into()) {
            if stack.len == MAX_VLAN_DEPTH {
                return Err(Error::TooManyTags);
            }
            let rest = frame.get(offset..).ok_or(Error::Truncated)?;
            let repr = Repr::parse(&Packet::new_checked(rest)?)?;
            stack.tags[stack.len] = Tag {
                tpid,
                pcp: repr.pcp,
                dei: repr.dei,
                vid: repr.vid,
            };
            stack.len += 1;
            stack.ethertype = repr.ethertype;
            offset += HEADER_LEN;
        }
        Ok(stack)
    }

    /// The tags, outermost first; empty for an untagged frame.
    pub fn tags(&self) -> &[Tag] {
        &self.tags[..self.len]
    }

    /// The number of tags.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the frame is untagged.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The ethertype after the innermost tag (the frame's ethertype if untagged).
    pub fn ethertype(&self) -> EthernetProtocol {
        self.ethertype
    }

    /// The length of the Ethernet header including the tags: where the payload starts.
    pub fn header_len(&self) -> usize {
        ETHERTYPE_OFFSET + 2 + self.len * TAG_LEN
    }
}

/// Pushes `tag` as the new outermost tag of an Ethernet frame, right after the MACs.
///
/// Fails with [`Error::Truncated`] if the frame is shorter than an Ethernet header. The depth
/// is not limited here: pushing a third tag builds a frame [`TagStack::parse`] rejects, which
/// tests need.
pub fn push_tag(frame: &mut Vec<u8>, tag: Tag) -> Result<()> {
    if frame.len() < ETHERTYPE_OFFSET + 2 {
        return Err(Error::Truncated);
    }
    // The old ethertype (or outer TPID) at 12..14 moves to 16..18, behind the new TCI.
    frame.splice(
        ETHERTYPE_OFFSET..ETHERTYPE_OFFSET,
        tag.to_bytes().iter().copied(),
    );
    Ok(())
}

/// Removes the outermost tag of an Ethernet frame and returns it; `Ok(None)` if untagged.
///
/// Fails with [`Error::Truncated`] if the frame ends inside the Ethernet header or the tag;
/// the frame is left unchanged on error.
pub fn pop_tag(frame: &mut Vec<u8>) -> Result<Option<Tag>> {
    let Some(header) = frame.get(..ETHERTYPE_OFFSET + 2) else {
        return Err(Error::Truncated);
    };
    let Some(tpid) = Tpid::from_ethertype(read_u16(header, ETHERTYPE_OFFSET..ETHERTYPE_OFFSET + 2))
    else {
        return Ok(None);
    };
    let rest = frame.get(ETHERTYPE_OFFSET + 2..).ok_or(Error::Truncated)?;
    let repr = Repr::parse(&Packet::new_checked(rest)?)?;
    // TPID and TCI go; the inner ethertype slides into the ethertype position.
    frame.drain(ETHERTYPE_OFFSET..ETHERTYPE_OFFSET + TAG_LEN);
    Ok(Some(Tag {
        tpid,
        pcp: repr.pcp,
        dei: repr.dei,
        vid: repr.vid,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{DOT1Q_ARP, QINQ_ICMP, untagged_arp};

    #[test]
    fn tpid_values() {
        for tpid in [Tpid::CTag, Tpid::STag, Tpid::STagLegacy] {
            assert_eq!(Tpid::from_ethertype(tpid.value()), Some(tpid));
        }
        assert_eq!(Tpid::from_ethertype(0x0800), None);
        assert_eq!(Tpid::STag.to_string(), "0x88a8");
        assert_eq!(u16::from(EthernetProtocol::from(Tpid::STagLegacy)), 0x9100);
    }

    #[test]
    fn parse_dot1q_arp_tag() {
        let packet = Packet::new_checked(&DOT1Q_ARP[14..]).expect("tag fits");
        assert_eq!(packet.tci(), 0x0064);
        assert_eq!(packet.pcp(), 0);
        assert!(!packet.dei());
        assert_eq!(packet.vid(), 100);
        assert_eq!(packet.ethertype(), EthernetProtocol::Arp);
        assert_eq!(packet.payload(), &DOT1Q_ARP[18..]);
        assert_eq!(
            Repr::parse(&packet),
            Ok(Repr {
                pcp: 0,
                dei: false,
                vid: 100,
                ethertype: EthernetProtocol::Arp
            })
        );
    }

    #[test]
    fn parse_qinq_tags() {
        let outer = Packet::new_checked(&QINQ_ICMP[14..]).expect("tag fits");
        assert_eq!((outer.pcp(), outer.dei(), outer.vid()), (5, false, 10));
        assert_eq!(u16::from(outer.ethertype()), 0x8100);
        let inner = Packet::new_checked(outer.payload()).expect("tag fits");
        assert_eq!((inner.pcp(), inner.vid()), (0, 100));
        assert_eq!(inner.ethertype(), EthernetProtocol::Ipv4);
    }

    #[test]
    fn repr_round_trips_fixture_bytes() {
        for (frame, offset) in [
            (&DOT1Q_ARP[..], 14),
            (&QINQ_ICMP[..], 14),
            (&QINQ_ICMP[..], 18),
        ] {
            let bytes = &frame[offset..offset + HEADER_LEN];
            let repr = Repr::parse(&Packet::new_checked(bytes).expect("tag fits")).expect("parses");
            assert_eq!(repr.buffer_len(), HEADER_LEN);
            let mut out = [0xffu8; HEADER_LEN];
            repr.emit(&mut Packet::new_unchecked(&mut out[..]));
            assert_eq!(&out[..], bytes);
        }
    }

    #[test]
    fn unknown_ethertype_and_reserved_vids_parse() {
        for (tci, vid) in [(0x0000u16, 0u16), (0x0fff, 4095), (0xffff, 4095)] {
            let mut bytes = [0u8; 4];
            bytes[..2].copy_from_slice(&tci.to_be_bytes());
            bytes[2..].copy_from_slice(&0x88b5u16.to_be_bytes()); // local experimental
            let repr =
                Repr::parse(&Packet::new_checked(&bytes[..]).expect("fits")).expect("parses");
            assert_eq!(repr.vid, vid);
            assert_eq!(repr.ethertype, EthernetProtocol::Unknown(0x88b5));
        }
    }

    #[test]
    fn setters_touch_only_their_bits() {
        let mut bytes = [0u8; 6];
        let mut packet = Packet::new_checked(&mut bytes[..]).expect("fits");
        packet.set_vid(0xffff);
        assert_eq!(packet.tci(), 0x0fff);
        packet.set_pcp(0xff);
        assert_eq!(packet.tci(), 0xefff);
        packet.set_dei(true);
        assert_eq!(packet.tci(), 0xffff);
        packet.set_dei(false);
        packet.set_vid(42);
        assert_eq!((packet.pcp(), packet.dei(), packet.vid()), (7, false, 42));
        packet.set_ethertype(EthernetProtocol::Ipv6);
        packet.payload_mut().copy_from_slice(&[0xab, 0xcd]);
        assert_eq!(bytes, [0xe0, 42, 0x86, 0xdd, 0xab, 0xcd]);
    }

    #[test]
    fn tag_bytes_match_fixture() {
        let s = Tag {
            tpid: Tpid::STag,
            pcp: 5,
            dei: false,
            vid: 10,
        };
        assert_eq!(s.to_bytes(), [0x88, 0xa8, 0xa0, 0x0a]);
        assert_eq!(
            Tag::new(Tpid::CTag, 100).to_bytes(),
            [0x81, 0x00, 0x00, 0x64]
        );
        let dei = Tag {
            dei: true,
            ..Tag::new(Tpid::STagLegacy, 4095)
        };
        assert_eq!(dei.to_bytes(), [0x91, 0x00, 0x1f, 0xff]);
    }

    #[test]
    fn truncated_tag_every_length() {
        for len in 0..HEADER_LEN {
            let bytes = &DOT1Q_ARP[14..14 + len];
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
        let exact = Packet::new_checked(&DOT1Q_ARP[14..18]).expect("exact fits");
        assert!(exact.payload().is_empty());
    }

    #[test]
    fn stack_of_fixtures() {
        let dot1q = TagStack::parse(&DOT1Q_ARP).expect("parses");
        assert_eq!(dot1q.tags(), &[Tag::new(Tpid::CTag, 100)]);
        assert_eq!(dot1q.ethertype(), EthernetProtocol::Arp);
        assert_eq!(dot1q.header_len(), 18);
        assert_eq!(dot1q.len(), 1);

        let qinq = TagStack::parse(&QINQ_ICMP).expect("parses");
        assert_eq!(
            qinq.tags(),
            &[
                Tag {
                    pcp: 5,
                    ..Tag::new(Tpid::STag, 10)
                },
                Tag::new(Tpid::CTag, 100)
            ]
        );
        assert_eq!(qinq.ethertype(), EthernetProtocol::Ipv4);
        assert_eq!(qinq.header_len(), 22);
        assert_eq!(
            QINQ_ICMP[qinq.header_len()],
            0x45,
            "payload starts at the IPv4 header"
        );

        let untagged = TagStack::parse(&untagged_arp()).expect("parses");
        assert!(untagged.is_empty());
        assert_eq!(untagged.ethertype(), EthernetProtocol::Arp);
        assert_eq!(untagged.header_len(), 14);
    }

    #[test]
    fn stack_truncated_every_length() {
        // Header and tags end at 22; any prefix shorter than that is truncated.
        for len in 0..22 {
            assert_eq!(
                TagStack::parse(&QINQ_ICMP[..len]),
                Err(Error::Truncated),
                "len {len}"
            );
        }
        for len in 22..=QINQ_ICMP.len() {
            assert_eq!(
                TagStack::parse(&QINQ_ICMP[..len]).map(|s| s.len()),
                Ok(2),
                "len {len}"
            );
        }
    }

    #[test]
    fn stack_too_deep() {
        let mut frame = QINQ_ICMP.to_vec();
        push_tag(&mut frame, Tag::new(Tpid::STagLegacy, 7)).expect("long enough");
        assert_eq!(TagStack::parse(&frame), Err(Error::TooManyTags));
        // Even if the third tag is cut off, depth is what fails first.
        assert_eq!(TagStack::parse(&frame[..26]), Err(Error::TooManyTags));
    }

    #[test]
    fn push_then_pop_restores_frame() {
        let untagged = untagged_arp();
        let mut frame = untagged.clone();
        push_tag(&mut frame, Tag::new(Tpid::CTag, 100)).expect("long enough");
        assert_eq!(frame, DOT1Q_ARP, "pushing VLAN 100 rebuilds the fixture");

        let s_tag = Tag {
            pcp: 3,
            dei: true,
            ..Tag::new(Tpid::STag, 4094)
        };
        push_tag(&mut frame, s_tag).expect("long enough");
        assert_eq!(&frame[12..18], &[0x88, 0xa8, 0x7f, 0xfe, 0x81, 0x00]);
        assert_eq!(pop_tag(&mut frame), Ok(Some(s_tag)));
        assert_eq!(pop_tag(&mut frame), Ok(Some(Tag::new(Tpid::CTag, 100))));
        assert_eq!(frame, untagged);
        assert_eq!(pop_tag(&mut frame), Ok(None));
        assert_eq!(frame, untagged);
    }

    #[test]
    fn push_pop_truncated() {
        for len in 0..14 {
            let mut frame = DOT1Q_ARP[..len].to_vec();
            assert_eq!(
                push_tag(&mut frame, Tag::new(Tpid::CTag, 1)),
                Err(Error::Truncated)
            );
            assert_eq!(pop_tag(&mut frame), Err(Error::Truncated));
            assert_eq!(frame, &DOT1Q_ARP[..len], "unchanged on error");
        }
        for len in 14..18 {
            let mut frame = DOT1Q_ARP[..len].to_vec();
            assert_eq!(pop_tag(&mut frame), Err(Error::Truncated), "len {len}");
            assert_eq!(frame, &DOT1Q_ARP[..len], "unchanged on error");
        }
        let mut frame = DOT1Q_ARP[..18].to_vec();
        assert_eq!(pop_tag(&mut frame), Ok(Some(Tag::new(Tpid::CTag, 100))));
        assert_eq!(frame.len(), 14);
    }
}
