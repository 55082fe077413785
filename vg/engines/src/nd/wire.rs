//! The IPv6 and ICMPv6 pieces the ND engine reads and writes: a checked view of a received
//! IPv6 packet, the ND option walk, the addresses ND derives from others, and the frame
//! builders. smoltcp supplies the headers; what it lacks is written here and said why.

use std::net::Ipv6Addr;

use lsl::smoltcp::wire::{
    ETHERNET_HEADER_LEN, EthernetAddress, EthernetFrame, EthernetProtocol, EthernetRepr,
    IPV6_HEADER_LEN, Icmpv6Packet, IpProtocol, Ipv6Packet, Ipv6Repr,
};

use super::{Ignored6, Layer6};

/// The hop limit of ND messages, sent and required on receipt (RFC 4861 §6.1, §7.1).
pub const ND_HOP_LIMIT: u8 = 255;

/// The all-nodes link-local multicast address (RFC 4291 §2.7.1).
pub const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);

/// The all-routers link-local multicast address (RFC 4291 §2.7.1).
pub const ALL_ROUTERS: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 2);

/// ND option types (RFC 4861 §4.6, RFC 8106 §5).
pub(super) const OPT_SLLA: u8 = 1;
pub(super) const OPT_TLLA: u8 = 2;

/// The ICMPv6 header of an NS or NA before the options: type, code, checksum, flags and
/// reserved, target address (RFC 4861 §4.3, §4.4).
pub(super) const NS_NA_LEN: usize = 24;

/// The link-local address of a MAC: fe80::/64 and the modified EUI-64 interface identifier
/// (RFC 4291 Appendix A, RFC 2464 §4): `ff:fe` in the middle, the universal/local bit flipped.
pub fn link_local_from_mac(mac: EthernetAddress) -> Ipv6Addr {
    let m = mac.0;
    Ipv6Addr::from([
        0xfe,
        0x80,
        0,
        0,
        0,
        0,
        0,
        0,
        m[0] ^ 0x02,
        m[1],
        m[2],
        0xff,
        0xfe,
        m[3],
        m[4],
        m[5],
    ])
}

/// The solicited-node multicast address of `addr`: ff02::1:ff00:0/104 and its low 24 bits
/// (RFC 4291 §2.7.1).
pub fn solicited_node(addr: Ipv6Addr) -> Ipv6Addr {
    let o = addr.octets();
    Ipv6Addr::from([
        0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, o[13], o[14], o[15],
    ])
}

/// The Ethernet address of an IPv6 multicast group: 33:33 and its low 32 bits (RFC 2464 §7).
pub fn multicast_mac(group: Ipv6Addr) -> EthernetAddress {
    let o = group.octets();
    EthernetAddress([0x33, 0x33, o[12], o[13], o[14], o[15]])
}

/// Whether `addr` is a link-local unicast address (fe80::/10, RFC 4291 §2.5.6).
pub(super) fn is_link_local(addr: Ipv6Addr) -> bool {
    addr.segments()[0] & 0xffc0 == 0xfe80
}

/// A received IPv6 packet with a whole header (version 6, 40 bytes). Its payload may be cut
/// short: a punt record may be.
pub(super) struct Ipv6In<'a> {
    /// The header, over `bytes`.
    pub(super) header: Ipv6Packet<&'a [u8]>,
    /// The packet up to its payload length (no Ethernet padding), or less if cut short.
    pub(super) bytes: &'a [u8],
}

impl<'a> Ipv6In<'a> {
    pub(super) fn parse(frame_payload: &'a [u8]) -> Result<Ipv6In<'a>, Ignored6> {
        let malformed = Ignored6::Malformed(Layer6::Ipv6);
        if frame_payload.len() < IPV6_HEADER_LEN {
            return Err(malformed);
        }
        let raw = Ipv6Packet::new_unchecked(frame_payload);
        if raw.version() != 6 {
            return Err(malformed);
        }
        let total = IPV6_HEADER_LEN + usize::from(raw.payload_len());
        let bytes = frame_payload
            .get(..total.min(frame_payload.len()))
            .ok_or(malformed)?;
        Ok(Ipv6In {
            header: Ipv6Packet::new_unchecked(bytes),
            bytes,
        })
    }

    /// Whether the packet is whole (not cut short).
    pub(super) fn is_whole(&self) -> bool {
        self.bytes.len() == IPV6_HEADER_LEN + usize::from(self.header.payload_len())
    }

    /// The whole payload; an error if the packet was cut short.
    pub(super) fn payload(&self) -> Result<&'a [u8], Ignored6> {
        if !self.is_whole() {
            return Err(Ignored6::Malformed(Layer6::Ipv6));
        }
        self.bytes
            .get(IPV6_HEADER_LEN..)
            .ok_or(Ignored6::Malformed(Layer6::Ipv6))
    }

    pub(super) fn src(&self) -> Ipv6Addr {
        self.header.src_addr()
    }

    pub(super) fn dst(&self) -> Ipv6Addr {
        self.header.dst_addr()
    }
}

/// An ICMPv6 message directly after the IPv6 header, whole, with a correct checksum
/// (RFC 4443 §2.3). Extension headers in front of it are not walked: ND messages carry none
/// (RFC 6980 forbids fragments; a Hop-by-Hop header marks MLD, which the vG does not serve).
pub(super) fn icmpv6<'a>(ip: &Ipv6In<'a>) -> Result<Icmpv6Packet<&'a [u8]>, Ignored6> {
    let malformed = Ignored6::Malformed(Layer6::Icmpv6);
    let payload = ip.payload()?;
    let packet = Icmpv6Packet::new_checked(payload).map_err(|_| malformed)?;
    if !packet.verify_checksum(&ip.src(), &ip.dst()) {
        return Err(malformed);
    }
    Ok(packet)
}

/// The link-layer address options of an ND message, after checking every option's length
/// (RFC 4861 §4.6: zero is invalid, the message is dropped; an Ethernet address option is
/// 8 bytes, RFC 2464 §6). Unknown options are skipped (§4.6). smoltcp's `NdiscRepr::parse`
/// is not used for this: it takes the last of duplicated options and cuts a longer address
/// option down to 6 bytes instead of refusing it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct LinkOptions {
    pub(super) slla: Option<EthernetAddress>,
    pub(super) tlla: Option<EthernetAddress>,
}

impl LinkOptions {
    pub(super) fn parse(mut options: &[u8]) -> Result<LinkOptions, Ignored6> {
        let malformed = Ignored6::Malformed(Layer6::NdOption);
        let mut found = LinkOptions::default();
        while !options.is_empty() {
            let (Some(&kind), Some(&units)) = (options.first(), options.get(1)) else {
                return Err(malformed);
            };
            let len = usize::from(units) * 8;
            if len == 0 {
                return Err(malformed);
            }
            let (option, rest) = options.split_at_checked(len).ok_or(malformed)?;
            let slot = match kind {
                OPT_SLLA => Some(&mut found.slla),
                OPT_TLLA => Some(&mut found.tlla),
                _ => None,
            };
            if let Some(slot) = slot {
                let mac: [u8; 6] = option
                    .get(2..8)
                    .filter(|_| len == 8)
                    .and_then(|m| m.try_into().ok())
                    .ok_or(malformed)?;
                // The first of duplicated options counts, as in Linux.
                slot.get_or_insert(EthernetAddress(mac));
            }
            options = rest;
        }
        Ok(found)
    }
}

/// An Ethernet frame of `payload_len` payload bytes written by `fill`.
pub(super) fn ethernet_frame(
    src: EthernetAddress,
    dst: EthernetAddress,
    ethertype: EthernetProtocol,
    payload_len: usize,
    fill: impl FnOnce(&mut [u8]),
) -> Vec<u8> {
    let repr = EthernetRepr {
        src_addr: src,
        dst_addr: dst,
        ethertype,
    };
    let mut buf = vec![0; ETHERNET_HEADER_LEN + payload_len];
    let mut frame = EthernetFrame::new_unchecked(&mut buf[..]);
    repr.emit(&mut frame);
    fill(frame.payload_mut());
    buf
}

/// The link and IP addresses of an IPv6 packet the vG sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Addressing {
    pub(super) src_mac: EthernetAddress,
    pub(super) dst_mac: EthernetAddress,
    pub(super) src: Ipv6Addr,
    pub(super) dst: Ipv6Addr,
    pub(super) hop_limit: u8,
}

/// An Ethernet frame with an ICMPv6 message of `icmp_len` bytes: `fill` writes the message,
/// then its checksum is computed. `None` if it does not fit the 16-bit payload length.
pub(super) fn icmpv6_frame(
    to: &Addressing,
    icmp_len: usize,
    fill: impl FnOnce(&mut Icmpv6Packet<&mut [u8]>),
) -> Option<Vec<u8>> {
    if icmp_len > usize::from(u16::MAX) {
        return None;
    }
    let repr = Ipv6Repr {
        src_addr: to.src,
        dst_addr: to.dst,
        next_header: IpProtocol::Icmpv6,
        payload_len: icmp_len,
        hop_limit: to.hop_limit,
    };
    Some(ethernet_frame(
        to.src_mac,
        to.dst_mac,
        EthernetProtocol::Ipv6,
        IPV6_HEADER_LEN + icmp_len,
        |buf| {
            let mut ip = Ipv6Packet::new_unchecked(buf);
            repr.emit(&mut ip);
            let mut icmp = Icmpv6Packet::new_unchecked(ip.payload_mut());
            fill(&mut icmp);
            icmp.fill_checksum(&to.src, &to.dst);
        },
    ))
}

/// Copies as much of `src` as fits into `dst` (the lengths match wherever it is used).
pub(super) fn copy(dst: &mut [u8], src: &[u8]) {
    for (d, s) in dst.iter_mut().zip(src) {
        *d = *s;
    }
}
