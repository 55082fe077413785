//! Whole LSL encapsulations around an inner Ethernet frame, for tests and the vG slow path.
//!
//! [`Encap::encapsulate`] wraps a frame from the home (or for it) in its LSL: one or two
//! VLAN tags, or outer Ethernet/IP/UDP/VXLAN headers with correct IPv4 and UDP checksums
//! (built with [`smoltcp::wire`]). [`decapsulate`] classifies a frame from the access side
//! and strips its encapsulation:
//!
//! | first ethertype         | and then                      | result                         |
//! |-------------------------|-------------------------------|--------------------------------|
//! | a [`Tpid`]              | up to [`MAX_VLAN_DEPTH`] tags | VLAN LSL, tags removed         |
//! | IPv4 / IPv6             | UDP to the VXLAN port         | VXLAN LSL, inner frame         |
//! | anything else           |                               | untagged, no LSL, frame as is  |
//!
//! An IPv4 or IPv6 frame whose header is truncated or inconsistent is an error, not
//! untagged: it cannot be classified.
//!
//! No-panic contract: [`decapsulate`], [`Encap::encapsulate`] and [`flow_src_port`] return
//! errors (or a fallback) for every input, however short or malformed.
//!
//! [`MAX_VLAN_DEPTH`]: crate::wire::vlan::MAX_VLAN_DEPTH

use std::borrow::Cow;
use std::net::IpAddr;

use smoltcp::phy::{Checksum, ChecksumCapabilities};
use smoltcp::wire::{
    ETHERNET_HEADER_LEN, EthernetAddress, EthernetFrame, EthernetProtocol, EthernetRepr,
    IPV4_HEADER_LEN, IPV6_HEADER_LEN, IpAddress, IpProtocol, Ipv4Packet, Ipv4Repr, Ipv6Packet,
    Ipv6Repr, UDP_HEADER_LEN, UdpPacket, UdpRepr,
};

use crate::model::{LslId, STag, Vid, VidError, Vni};
use crate::wire::vlan::{TAG_LEN, Tag, TagStack, Tpid};
use crate::wire::{self, vxlan};

/// The outer TTL / hop limit a [`VxlanEncap`] uses unless told otherwise.
pub const DEFAULT_TTL: u8 = 64;

/// The source ports [`flow_src_port`] picks from: the dynamic range (RFC 7348 §5, RFC 6335).
pub const FLOW_PORT_RANGE: core::ops::RangeInclusive<u16> = 49152..=65535;

/// Offset of the ethertype in an Ethernet frame, after the two MAC addresses.
const MACS_LEN: usize = 12;

/// How frames travel on one LSL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encap {
    /// No encapsulation: the frame as it is (not an LSL; for tests and the core side).
    Untagged,
    /// One 802.1Q C-tag (TPID 0x8100, priority 0).
    Dot1q {
        /// The C-VID.
        c_vid: Vid,
    },
    /// An S-tag over a C-tag (priority 0 on both).
    QinQ {
        /// The S-tag's TPID, usually [`Tpid::STag`].
        s_tpid: Tpid,
        /// The S-VID.
        s_vid: Vid,
        /// The C-VID.
        c_vid: Vid,
    },
    /// A VXLAN tunnel.
    Vxlan(VxlanEncap),
}

/// The outer headers of a VXLAN encapsulation, from the sender's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct VxlanEncap {
    /// The VNI.
    pub vni: Vni,
    /// The sender's VTEP address (outer source). Same family as `remote`.
    pub local: IpAddr,
    /// The receiver's VTEP address (outer destination).
    pub remote: IpAddr,
    /// The outer source MAC: the sender's interface.
    pub local_mac: EthernetAddress,
    /// The outer destination MAC: the receiver's VTEP or the next hop towards it.
    pub remote_mac: EthernetAddress,
    /// The UDP source port; `None` picks one per inner flow with [`flow_src_port`].
    pub src_port: Option<u16>,
    /// The UDP destination port, [`vxlan::UDP_PORT`] (4789) by default.
    pub dst_port: u16,
    /// The outer IPv4 TTL or IPv6 hop limit.
    pub ttl: u8,
    /// Whether to compute the UDP checksum. RFC 7348 §5 allows zero over IPv4; over IPv6 a
    /// zero checksum needs the receiver's consent (RFC 6935, RFC 6936), so keep it on.
    pub udp_checksum: bool,
}

impl VxlanEncap {
    /// An encapsulation with the defaults: flow-hashed source port, port 4789, TTL 64 and a
    /// computed UDP checksum.
    pub const fn new(
        vni: Vni,
        local: IpAddr,
        remote: IpAddr,
        local_mac: EthernetAddress,
        remote_mac: EthernetAddress,
    ) -> VxlanEncap {
        VxlanEncap {
            vni,
            local,
            remote,
            local_mac,
            remote_mac,
            src_port: None,
            dst_port: vxlan::UDP_PORT,
            ttl: DEFAULT_TTL,
            udp_checksum: true,
        }
    }

    /// Bytes added in front of the inner frame.
    pub const fn overhead(&self) -> usize {
        match self.remote {
            IpAddr::V4(_) => vxlan::OVERHEAD_IPV4,
            IpAddr::V6(_) => vxlan::OVERHEAD_IPV6,
        }
    }
}

/// Why [`Encap::encapsulate`] could not build a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncapError {
    /// The inner frame is shorter than an Ethernet header.
    #[error("inner frame of {len} bytes is shorter than an Ethernet header (14 bytes)")]
    InnerTooShort {
        /// The inner frame's length.
        len: usize,
    },
    /// The outer IP packet would exceed the 16-bit length field.
    #[error("inner frame of {len} bytes does not fit in one outer IP packet")]
    TooLong {
        /// The inner frame's length.
        len: usize,
    },
    /// The VTEP addresses are of different families.
    #[error("VTEP addresses {local} and {remote} are of different IP families")]
    AddressFamilyMismatch {
        /// The local VTEP address.
        local: IpAddr,
        /// The remote VTEP address.
        remote: IpAddr,
    },
}

impl Encap {
    /// Wraps an untagged-or-tagged inner Ethernet frame (starting at its destination MAC,
    /// without FCS) in this encapsulation. VLAN tags are pushed outside any tags the frame
    /// already has.
    pub fn encapsulate(&self, inner: &[u8]) -> Result<Vec<u8>, EncapError> {
        if inner.len() < ETHERNET_HEADER_LEN {
            return Err(EncapError::InnerTooShort { len: inner.len() });
        }
        let tags = match *self {
            Encap::Untagged => return Ok(inner.to_vec()),
            Encap::Dot1q { c_vid } => &[Tag::new(Tpid::CTag, c_vid.get())][..],
            Encap::QinQ {
                s_tpid,
                s_vid,
                c_vid,
            } => &[
                Tag::new(s_tpid, s_vid.get()),
                Tag::new(Tpid::CTag, c_vid.get()),
            ][..],
            Encap::Vxlan(ref vxlan) => return vxlan.encapsulate(inner),
        };
        let mut frame = Vec::with_capacity(inner.len() + tags.len() * TAG_LEN);
        frame.extend_from_slice(&inner[..MACS_LEN]);
        for tag in tags {
            frame.extend_from_slice(&tag.to_bytes());
        }
        frame.extend_from_slice(&inner[MACS_LEN..]);
        Ok(frame)
    }

    /// Bytes this encapsulation adds to a frame (for MTU arithmetic).
    pub const fn overhead(&self) -> usize {
        match self {
            Encap::Untagged => 0,
            Encap::Dot1q { .. } => TAG_LEN,
            Encap::QinQ { .. } => 2 * TAG_LEN,
            Encap::Vxlan(vxlan) => vxlan.overhead(),
        }
    }

    /// The LSL this encapsulation carries, from the sender's side: for VXLAN, the `remote`
    /// VTEP is the peer. `None` for [`Encap::Untagged`].
    pub const fn lsl_id(&self) -> Option<LslId> {
        match *self {
            Encap::Untagged => None,
            Encap::Dot1q { c_vid } => Some(LslId::dot1q(c_vid)),
            Encap::QinQ {
                s_tpid,
                s_vid,
                c_vid,
            } => Some(LslId::Vlan {
                s_tag: Some(STag {
                    tpid: s_tpid,
                    vid: s_vid,
                }),
                c_vid,
            }),
            Encap::Vxlan(VxlanEncap { vni, remote, .. }) => Some(LslId::vxlan(vni, remote)),
        }
    }
}

impl VxlanEncap {
    fn encapsulate(&self, inner: &[u8]) -> Result<Vec<u8>, EncapError> {
        let udp_len = UDP_HEADER_LEN + vxlan::HEADER_LEN + inner.len();
        let too_long = EncapError::TooLong { len: inner.len() };
        let mut checksums = ChecksumCapabilities::default();
        if !self.udp_checksum {
            checksums.udp = Checksum::None;
        }
        let udp = UdpRepr {
            src_port: self.src_port.unwrap_or_else(|| flow_src_port(inner)),
            dst_port: self.dst_port,
        };
        let vni = self.vni.get();
        let emit_udp = |buffer: &mut [u8], src: IpAddress, dst: IpAddress| {
            udp.emit(
                &mut UdpPacket::new_unchecked(buffer),
                &src,
                &dst,
                vxlan::HEADER_LEN + inner.len(),
                |payload| {
                    let mut header = vxlan::Packet::new_unchecked(payload);
                    vxlan::Repr { vni }.emit(&mut header);
                    header.payload_mut().copy_from_slice(inner);
                },
                &checksums,
            );
        };
        // A zeroed frame with the outer Ethernet header; the IP header goes after it.
        let new_frame = |ethertype: EthernetProtocol, ip_header_len: usize| {
            let mut frame = vec![0; ETHERNET_HEADER_LEN + ip_header_len + udp_len];
            EthernetRepr {
                src_addr: self.local_mac,
                dst_addr: self.remote_mac,
                ethertype,
            }
            .emit(&mut EthernetFrame::new_unchecked(&mut frame[..]));
            frame
        };

        match (self.local, self.remote) {
            (IpAddr::V4(src), IpAddr::V4(dst)) => {
                // IPv4's total length counts its own header.
                let total_len = u16::try_from(IPV4_HEADER_LEN + udp_len).map_err(|_| too_long)?;
                let mut frame = new_frame(EthernetProtocol::Ipv4, IPV4_HEADER_LEN);
                let mut ip = Ipv4Packet::new_unchecked(&mut frame[ETHERNET_HEADER_LEN..]);
                Ipv4Repr {
                    src_addr: src,
                    dst_addr: dst,
                    next_header: IpProtocol::Udp,
                    payload_len: usize::from(total_len) - IPV4_HEADER_LEN,
                    hop_limit: self.ttl,
                }
                .emit(&mut ip, &checksums);
                emit_udp(ip.payload_mut(), src.into(), dst.into());
                Ok(frame)
            }
            (IpAddr::V6(src), IpAddr::V6(dst)) => {
                let payload_len = u16::try_from(udp_len).map_err(|_| too_long)?;
                let mut frame = new_frame(EthernetProtocol::Ipv6, IPV6_HEADER_LEN);
                let mut ip = Ipv6Packet::new_unchecked(&mut frame[ETHERNET_HEADER_LEN..]);
                Ipv6Repr {
                    src_addr: src,
                    dst_addr: dst,
                    next_header: IpProtocol::Udp,
                    payload_len: payload_len.into(),
                    hop_limit: self.ttl,
                }
                .emit(&mut ip);
                emit_udp(ip.payload_mut(), src.into(), dst.into());
                Ok(frame)
            }
            (local, remote) => Err(EncapError::AddressFamilyMismatch { local, remote }),
        }
    }
}

/// What [`decapsulate`] accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecapOptions {
    /// The UDP destination port that marks VXLAN, [`vxlan::UDP_PORT`] by default.
    pub vxlan_port: u16,
    /// Verify the outer IPv4 header checksum and any non-zero UDP checksum (default on).
    pub verify_checksums: bool,
    /// Accept a zero UDP checksum over IPv6 (RFC 6935); off by default, as in Linux
    /// (`udp6zerocsumrx`). A zero checksum over IPv4 is always accepted (RFC 7348 §5).
    pub accept_zero_udp6_checksum: bool,
}

impl Default for DecapOptions {
    fn default() -> Self {
        DecapOptions {
            vxlan_port: vxlan::UDP_PORT,
            verify_checksums: true,
            accept_zero_udp6_checksum: false,
        }
    }
}

/// The outer headers [`decapsulate`] removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outer {
    /// Nothing was removed.
    Untagged,
    /// VLAN tags, outermost first (with their priorities).
    Vlan(TagStack),
    /// Outer Ethernet, IP, UDP and VXLAN headers.
    Vxlan(VxlanOuter),
}

/// The outer headers of a received VXLAN frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct VxlanOuter {
    /// Outer source MAC.
    pub src_mac: EthernetAddress,
    /// Outer destination MAC.
    pub dst_mac: EthernetAddress,
    /// Outer source address: the sender's VTEP.
    pub src: IpAddr,
    /// Outer destination address: normally one of ours; the caller checks.
    pub dst: IpAddr,
    /// UDP source port.
    pub src_port: u16,
    /// UDP destination port.
    pub dst_port: u16,
    /// IPv4 TTL or IPv6 hop limit.
    pub ttl: u8,
    /// The UDP checksum field (0 if the sender sent none).
    pub udp_checksum: u16,
}

/// A frame with its LSL encapsulation removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decapsulated<'a> {
    /// The LSL the frame arrived on; `None` for an untagged frame. For VXLAN the VTEP is
    /// the sender's (outer source) address.
    pub lsl: Option<LslId>,
    /// The headers that were removed.
    pub outer: Outer,
    /// The inner Ethernet frame: borrowed from the input for VXLAN and untagged frames,
    /// rebuilt without the tags for VLAN.
    pub inner: Cow<'a, [u8]>,
}

impl Decapsulated<'_> {
    /// The encapsulation of a reply on the same LSL: the same tags, or a tunnel back to the
    /// sender's VTEP and MAC from the address and port it was sent to (with the defaults of
    /// [`VxlanEncap::new`] otherwise).
    pub fn reply_encap(&self) -> Encap {
        match (self.lsl, self.outer) {
            (Some(LslId::Vlan { s_tag: None, c_vid }), _) => Encap::Dot1q { c_vid },
            (
                Some(LslId::Vlan {
                    s_tag: Some(s_tag),
                    c_vid,
                }),
                _,
            ) => Encap::QinQ {
                s_tpid: s_tag.tpid,
                s_vid: s_tag.vid,
                c_vid,
            },
            (Some(LslId::Vxlan { vni, .. }), Outer::Vxlan(outer)) => Encap::Vxlan(VxlanEncap {
                dst_port: outer.dst_port,
                ..VxlanEncap::new(vni, outer.dst, outer.src, outer.dst_mac, outer.src_mac)
            }),
            _ => Encap::Untagged,
        }
    }
}

/// Why [`decapsulate`] rejected a frame. Tiny and `Copy`, to be counted by reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecapError {
    /// The frame ends inside a header, or before what a length field promises.
    #[error("frame truncated")]
    Truncated,
    /// More stacked VLAN tags than the LSL model allows.
    #[error("more than {} stacked VLAN tags", wire::vlan::MAX_VLAN_DEPTH)]
    TooManyTags,
    /// A single tag, or the inner tag of two, is not a C-tag.
    #[error("expected a C-tag (0x8100) as the only or inner tag, found TPID {tpid}")]
    UnexpectedTpid {
        /// The TPID found.
        tpid: Tpid,
    },
    /// A tag carries VID 0 (priority tag) or 4095, which identify no LSL.
    #[error(transparent)]
    Vid(#[from] VidError),
    /// The outer IP or UDP header is inconsistent (version, header length).
    #[error("malformed outer IP/UDP header")]
    Malformed,
    /// The outer IP packet is a fragment; VTEPs do not reassemble (RFC 7348 §4.3).
    #[error("fragmented VXLAN packet")]
    Fragmented,
    /// The outer IPv4 header checksum is wrong.
    #[error("bad outer IPv4 header checksum")]
    Ipv4Checksum,
    /// The outer UDP checksum is wrong.
    #[error("bad outer UDP checksum")]
    UdpChecksum,
    /// A zero UDP checksum over IPv6, not accepted by the options.
    #[error("zero UDP checksum over IPv6")]
    ZeroUdp6Checksum,
    /// The VXLAN header's I flag is clear.
    #[error("VXLAN header without the I flag")]
    NoVni,
}

impl From<wire::Error> for DecapError {
    fn from(err: wire::Error) -> Self {
        match err {
            wire::Error::Truncated => DecapError::Truncated,
            wire::Error::Malformed => DecapError::Malformed,
            wire::Error::TooManyTags => DecapError::TooManyTags,
        }
    }
}

/// Classifies a frame from the access side by its LSL and strips the encapsulation.
///
/// `frame` starts at the outer destination MAC and has no FCS. See the [module
/// documentation](self) for the classification; a VXLAN frame's outer destination address
/// is not checked against our VTEPs (that is the caller's policy).
pub fn decapsulate<'a>(
    frame: &'a [u8],
    options: &DecapOptions,
) -> Result<Decapsulated<'a>, DecapError> {
    let stack = TagStack::parse(frame)?;
    if !stack.is_empty() {
        return decapsulate_vlan(frame, stack);
    }
    let untagged = Decapsulated {
        lsl: None,
        outer: Outer::Untagged,
        inner: Cow::Borrowed(frame),
    };
    let eth = EthernetFrame::new_checked(frame).map_err(|_| DecapError::Truncated)?;
    let (src, dst, ttl, fragment, ip_payload) = match eth.ethertype() {
        EthernetProtocol::Ipv4 => {
            let ip = Ipv4Packet::new_checked(eth.payload()).map_err(|_| DecapError::Truncated)?;
            if ip.version() != 4 || usize::from(ip.header_len()) < IPV4_HEADER_LEN {
                return Err(DecapError::Malformed);
            }
            if ip.next_header() != IpProtocol::Udp {
                return Ok(untagged);
            }
            let fragment = match (ip.more_frags(), ip.frag_offset()) {
                (false, 0) => Fragment::No,
                (true, 0) => Fragment::First,
                // A later fragment carries no UDP header: nothing says it is VXLAN.
                _ => return Ok(untagged),
            };
            if fragment == Fragment::No
                && options.verify_checksums
                && !ip.verify_checksum()
                && is_vxlan_port(ip.payload(), options)
            {
                return Err(DecapError::Ipv4Checksum);
            }
            let (src, dst) = (ip.src_addr().into(), ip.dst_addr().into());
            (src, dst, ip.hop_limit(), fragment, ip.payload())
        }
        EthernetProtocol::Ipv6 => {
            let ip = Ipv6Packet::new_checked(eth.payload()).map_err(|_| DecapError::Truncated)?;
            if ip.version() != 6 {
                return Err(DecapError::Malformed);
            }
            // Extension headers are not walked: an encapsulating VTEP sends UDP directly.
            if ip.next_header() != IpProtocol::Udp {
                return Ok(untagged);
            }
            let (src, dst) = (ip.src_addr().into(), ip.dst_addr().into());
            (src, dst, ip.hop_limit(), Fragment::No, ip.payload())
        }
        _ => return Ok(untagged),
    };
    if !is_vxlan_port(ip_payload, options) {
        return Ok(untagged);
    }
    if fragment == Fragment::First {
        return Err(DecapError::Fragmented);
    }

    let udp = UdpPacket::new_checked(ip_payload).map_err(|_| DecapError::Truncated)?;
    let (src_ip, dst_ip): (IpAddress, IpAddress) = (IpAddress::from(src), IpAddress::from(dst));
    match (udp.checksum(), src) {
        (0, IpAddr::V6(_)) if !options.accept_zero_udp6_checksum => {
            return Err(DecapError::ZeroUdp6Checksum);
        }
        (0, _) => {}
        _ if options.verify_checksums && !udp.verify_checksum(&src_ip, &dst_ip) => {
            return Err(DecapError::UdpChecksum);
        }
        _ => {}
    }
    let header = vxlan::Packet::new_checked(udp.payload())?;
    header.check_flags().map_err(|_| DecapError::NoVni)?;
    let inner = header.payload();
    if inner.len() < ETHERNET_HEADER_LEN {
        return Err(DecapError::Truncated);
    }
    // The field is 24 bits wide, so this cannot fail; no panic path either way.
    let vni = Vni::new(header.vni()).ok_or(DecapError::Malformed)?;
    Ok(Decapsulated {
        lsl: Some(LslId::vxlan(vni, src)),
        outer: Outer::Vxlan(VxlanOuter {
            src_mac: eth.src_addr(),
            dst_mac: eth.dst_addr(),
            src,
            dst,
            src_port: udp.src_port(),
            dst_port: udp.dst_port(),
            ttl,
            udp_checksum: udp.checksum(),
        }),
        inner: Cow::Borrowed(inner),
    })
}

/// Whether an IP packet is a fragment, as far as decapsulation cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fragment {
    No,
    First,
}

/// Whether an IP payload starts with a UDP header addressed to the VXLAN port.
fn is_vxlan_port(ip_payload: &[u8], options: &DecapOptions) -> bool {
    matches!(ip_payload.get(2..4), Some(&[hi, lo]) if u16::from_be_bytes([hi, lo]) == options.vxlan_port)
}

fn decapsulate_vlan(frame: &[u8], stack: TagStack) -> Result<Decapsulated<'_>, DecapError> {
    let lsl = match *stack.tags() {
        [c_tag] => {
            expect_c_tag(c_tag)?;
            LslId::dot1q(Vid::try_from(c_tag.vid)?)
        }
        [s_tag, c_tag] => {
            expect_c_tag(c_tag)?;
            LslId::Vlan {
                s_tag: Some(STag {
                    tpid: s_tag.tpid,
                    vid: Vid::try_from(s_tag.vid)?,
                }),
                c_vid: Vid::try_from(c_tag.vid)?,
            }
        }
        // TagStack::parse stops at MAX_VLAN_DEPTH (2) and we handled 0 before.
        _ => return Err(DecapError::TooManyTags),
    };
    // The MACs, then everything from the innermost ethertype on.
    let ethertype_at = stack.header_len() - 2;
    let mut inner = Vec::with_capacity(frame.len() - stack.len() * TAG_LEN);
    inner.extend_from_slice(&frame[..MACS_LEN]);
    inner.extend_from_slice(&frame[ethertype_at..]);
    Ok(Decapsulated {
        lsl: Some(lsl),
        outer: Outer::Vlan(stack),
        inner: Cow::Owned(inner),
    })
}

fn expect_c_tag(tag: Tag) -> Result<(), DecapError> {
    if tag.tpid == Tpid::CTag {
        Ok(())
    } else {
        Err(DecapError::UnexpectedTpid { tpid: tag.tpid })
    }
}

/// A UDP source port for VXLAN from a hash of the inner frame's flow (RFC 7348 §5), in
/// [`FLOW_PORT_RANGE`].
///
/// IPv4 and IPv6 frames hash their addresses, protocol and (for TCP, UDP, UDP-Lite and
/// SCTP, unfragmented) ports; other frames hash their MACs and ethertype. The hash is
/// 32-bit FNV-1a, fixed so that the same flow gets the same port across runs and hosts.
/// Never panics: a frame too short for a header hashes what it has.
pub fn flow_src_port(inner: &[u8]) -> u16 {
    let mut hash = Fnv1a::new();
    let l3 = TagStack::parse(inner)
        .ok()
        .and_then(|stack| Some((stack.ethertype(), inner.get(stack.header_len()..)?)));
    let hashed_l3 = match l3 {
        Some((EthernetProtocol::Ipv4, ip)) if ip.len() >= IPV4_HEADER_LEN => {
            hash.write(&ip[12..20]); // source and destination addresses
            hash.write(&ip[9..10]); // protocol
            let unfragmented = u16::from_be_bytes([ip[6], ip[7]]) & 0x3fff == 0;
            let l4 = usize::from(ip[0] & 0x0f) * 4;
            if unfragmented {
                hash_ports(&mut hash, ip[9], ip.get(l4..));
            }
            true
        }
        Some((EthernetProtocol::Ipv6, ip)) if ip.len() >= IPV6_HEADER_LEN => {
            hash.write(&ip[8..40]); // source and destination addresses
            hash.write(&ip[6..7]); // next header
            hash_ports(&mut hash, ip[6], ip.get(IPV6_HEADER_LEN..));
            true
        }
        _ => false,
    };
    if !hashed_l3 {
        hash.write(&inner[..inner.len().min(ETHERNET_HEADER_LEN)]);
    }
    let folded = hash.0 ^ (hash.0 >> 16);
    let span = FLOW_PORT_RANGE.end() - FLOW_PORT_RANGE.start(); // 16383: a mask of 14 bits
    FLOW_PORT_RANGE.start() + (folded as u16 & span)
}

fn hash_ports(hash: &mut Fnv1a, protocol: u8, l4: Option<&[u8]>) {
    const TCP: u8 = 6;
    const UDP: u8 = 17;
    const SCTP: u8 = 132;
    const UDP_LITE: u8 = 136;
    if matches!(protocol, TCP | UDP | SCTP | UDP_LITE)
        && let Some(ports) = l4.and_then(|l4| l4.get(..4))
    {
        hash.write(ports);
    }
}

/// 32-bit FNV-1a (<http://www.isthe.com/chongo/tech/comp/fnv/>).
struct Fnv1a(u32);

impl Fnv1a {
    const fn new() -> Self {
        Fnv1a(0x811c_9dc5)
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = (self.0 ^ u32::from(byte)).wrapping_mul(0x0100_0193);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{
        DOT1Q_ARP, QINQ_ICMP, VXLAN4_ARP, VXLAN6_ARP, ones_complement_sum, untagged_arp,
    };
    use core::net::{Ipv4Addr, Ipv6Addr};

    const BRG_MAC: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0x0a, 0x02]);
    const VG_MAC: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0x0a, 0x01]);
    const BRG_V4: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10));
    const VG_V4: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
    const BRG_V6: IpAddr = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0xa));
    const VG_V6: IpAddr = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1));

    fn vid(value: u16) -> Vid {
        Vid::new(value).expect("valid VID")
    }

    fn vni(value: u32) -> Vni {
        Vni::new(value).expect("valid VNI")
    }

    /// The BRG's side of the fixtures' tunnel, with the fixtures' source port.
    fn brg_vxlan(local: IpAddr, remote: IpAddr) -> VxlanEncap {
        VxlanEncap {
            src_port: Some(49320),
            ..VxlanEncap::new(vni(5001), local, remote, BRG_MAC, VG_MAC)
        }
    }

    /// The home frame inside [`QINQ_ICMP`], without its tags.
    fn untagged_icmp() -> Vec<u8> {
        QINQ_ICMP[..12]
            .iter()
            .chain(&QINQ_ICMP[20..])
            .copied()
            .collect()
    }

    fn decap(frame: &[u8]) -> Result<Decapsulated<'_>, DecapError> {
        decapsulate(frame, &DecapOptions::default())
    }

    /// Checks an IPv4 VXLAN frame's checksums with the test's own RFC 1071 sum.
    fn assert_v4_checksums(frame: &[u8]) {
        assert_eq!(
            ones_complement_sum(&frame[14..34]),
            0xffff,
            "IPv4 header checksum"
        );
        let udp = &frame[34..];
        let mut pseudo = frame[26..34].to_vec();
        pseudo.extend_from_slice(&[0, 17]);
        pseudo.extend_from_slice(&(udp.len() as u16).to_be_bytes());
        pseudo.extend_from_slice(udp);
        assert_eq!(ones_complement_sum(&pseudo), 0xffff, "UDP checksum");
    }

    #[test]
    fn dot1q_encapsulation_builds_fixture() {
        let encap = Encap::Dot1q { c_vid: vid(100) };
        assert_eq!(
            encap.encapsulate(&untagged_arp()).expect("encapsulates"),
            DOT1Q_ARP
        );
        assert_eq!(encap.overhead(), 4);
        assert_eq!(encap.lsl_id(), Some(LslId::dot1q(vid(100))));
    }

    #[test]
    fn qinq_encapsulation_builds_fixture() {
        let encap = Encap::QinQ {
            s_tpid: Tpid::STag,
            s_vid: vid(10),
            c_vid: vid(100),
        };
        let mut expected = QINQ_ICMP;
        expected[14] = 0x00; // the fixture's S-tag has priority 5; encapsulation uses 0
        assert_eq!(
            encap.encapsulate(&untagged_icmp()).expect("encapsulates"),
            expected
        );
        assert_eq!(encap.overhead(), 8);
        assert_eq!(encap.lsl_id(), Some(LslId::qinq(vid(10), vid(100))));
    }

    #[test]
    fn vxlan4_encapsulation_builds_fixture() {
        let encap = Encap::Vxlan(brg_vxlan(BRG_V4, VG_V4));
        let frame = encap.encapsulate(&untagged_arp()).expect("encapsulates");
        assert_eq!(frame, VXLAN4_ARP);
        assert_v4_checksums(&frame);
        assert_eq!(encap.overhead(), 50);
        assert_eq!(encap.lsl_id(), Some(LslId::vxlan(vni(5001), VG_V4)));
    }

    #[test]
    fn vxlan6_encapsulation_builds_fixture() {
        let encap = Encap::Vxlan(brg_vxlan(BRG_V6, VG_V6));
        assert_eq!(
            encap.encapsulate(&untagged_arp()).expect("encapsulates"),
            VXLAN6_ARP
        );
        assert_eq!(encap.overhead(), 70);
    }

    #[test]
    fn vxlan_zero_udp_checksum_option() {
        let encap = Encap::Vxlan(VxlanEncap {
            udp_checksum: false,
            ..brg_vxlan(BRG_V4, VG_V4)
        });
        let frame = encap.encapsulate(&untagged_arp()).expect("encapsulates");
        let mut expected = VXLAN4_ARP;
        expected[40..42].copy_from_slice(&[0, 0]);
        assert_eq!(frame, expected);
        assert_eq!(
            ones_complement_sum(&frame[14..34]),
            0xffff,
            "IPv4 checksum still set"
        );
        let decapsulated = decap(&frame).expect("zero checksum is accepted over IPv4");
        assert_eq!(decapsulated.inner, &untagged_arp()[..]);

        let v6 = Encap::Vxlan(VxlanEncap {
            udp_checksum: false,
            ..brg_vxlan(BRG_V6, VG_V6)
        })
        .encapsulate(&untagged_arp())
        .expect("encapsulates");
        assert_eq!(&v6[60..62], &[0, 0]);
        assert_eq!(decap(&v6), Err(DecapError::ZeroUdp6Checksum));
        let lenient = DecapOptions {
            accept_zero_udp6_checksum: true,
            ..DecapOptions::default()
        };
        assert!(decapsulate(&v6, &lenient).is_ok());
    }

    #[test]
    fn vxlan_flow_hashed_source_port() {
        let encap = Encap::Vxlan(VxlanEncap::new(vni(7), VG_V4, BRG_V4, VG_MAC, BRG_MAC));
        let frame = encap.encapsulate(&QINQ_ICMP).expect("encapsulates");
        let port = u16::from_be_bytes([frame[34], frame[35]]);
        assert!(FLOW_PORT_RANGE.contains(&port), "{port}");
        assert_eq!(port, flow_src_port(&QINQ_ICMP));
        assert_v4_checksums(&frame);
    }

    #[test]
    fn flow_hash_follows_the_flow() {
        let icmp = untagged_icmp();
        // The same flow behind different tags hashes the same.
        assert_eq!(flow_src_port(&icmp), flow_src_port(&QINQ_ICMP));
        // MACs do not matter for IP, addresses do.
        let mut other_mac = icmp.clone();
        other_mac[0] ^= 1;
        assert_eq!(flow_src_port(&icmp), flow_src_port(&other_mac));
        let mut other_addr = icmp.clone();
        other_addr[14 + 15] = 11; // 192.168.1.11
        assert_ne!(flow_src_port(&icmp), flow_src_port(&other_addr));
        // Non-IP frames hash their MACs.
        let arp = untagged_arp();
        let mut other_host = arp.clone();
        other_host[11] = 0x0b;
        assert_ne!(flow_src_port(&arp), flow_src_port(&other_host));
        // UDP ports separate flows between the same hosts; payload does not.
        let udp = |sport: u16, payload: u8| {
            let mut frame = icmp[..14].to_vec();
            frame.extend_from_slice(&[0x45, 0, 0, 29, 0, 0, 0x40, 0, 64, 17, 0, 0]);
            frame.extend_from_slice(&[192, 168, 1, 10, 192, 168, 1, 1]);
            frame.extend_from_slice(&sport.to_be_bytes());
            frame.extend_from_slice(&[0, 53, 0, 9, 0, 0, payload]);
            frame
        };
        assert_eq!(flow_src_port(&udp(40000, 1)), flow_src_port(&udp(40000, 2)));
        let ports: std::collections::HashSet<u16> =
            (0..64).map(|i| flow_src_port(&udp(40000 + i, 0))).collect();
        assert!(
            ports.len() > 48,
            "64 flows spread over {} ports",
            ports.len()
        );
        assert!(ports.iter().all(|port| FLOW_PORT_RANGE.contains(port)));
        // Anything, however short, gets a port in range.
        for len in 0..icmp.len() {
            assert!(
                FLOW_PORT_RANGE.contains(&flow_src_port(&icmp[..len])),
                "len {len}"
            );
        }
    }

    #[test]
    fn decapsulate_dot1q_fixture() {
        let decapsulated = decap(&DOT1Q_ARP).expect("decapsulates");
        assert_eq!(decapsulated.lsl, Some(LslId::dot1q(vid(100))));
        assert_eq!(decapsulated.inner, &untagged_arp()[..]);
        let Outer::Vlan(stack) = decapsulated.outer else {
            panic!("expected VLAN outer, got {:?}", decapsulated.outer);
        };
        assert_eq!(stack.tags(), &[Tag::new(Tpid::CTag, 100)]);
        assert_eq!(decapsulated.reply_encap(), Encap::Dot1q { c_vid: vid(100) });
    }

    #[test]
    fn decapsulate_qinq_fixture() {
        let decapsulated = decap(&QINQ_ICMP).expect("decapsulates");
        assert_eq!(decapsulated.lsl, Some(LslId::qinq(vid(10), vid(100))));
        assert_eq!(decapsulated.inner, &untagged_icmp()[..]);
        let Outer::Vlan(stack) = decapsulated.outer else {
            panic!("expected VLAN outer, got {:?}", decapsulated.outer);
        };
        assert_eq!(stack.tags()[0].pcp, 5, "priorities are reported");
        assert_eq!(
            decapsulated.reply_encap(),
            Encap::QinQ {
                s_tpid: Tpid::STag,
                s_vid: vid(10),
                c_vid: vid(100)
            }
        );
    }

    #[test]
    fn decapsulate_vxlan_fixtures() {
        for (frame, brg, vg) in [
            (&VXLAN4_ARP[..], BRG_V4, VG_V4),
            (&VXLAN6_ARP[..], BRG_V6, VG_V6),
        ] {
            let decapsulated = decap(frame).expect("decapsulates");
            assert_eq!(decapsulated.lsl, Some(LslId::vxlan(vni(5001), brg)));
            assert!(matches!(decapsulated.inner, Cow::Borrowed(_)), "zero-copy");
            assert_eq!(decapsulated.inner, &untagged_arp()[..]);
            let Outer::Vxlan(outer) = decapsulated.outer else {
                panic!("expected VXLAN outer, got {:?}", decapsulated.outer);
            };
            assert_eq!((outer.src, outer.dst), (brg, vg));
            assert_eq!((outer.src_mac, outer.dst_mac), (BRG_MAC, VG_MAC));
            assert_eq!(
                (outer.src_port, outer.dst_port, outer.ttl),
                (49320, 4789, 64)
            );
            assert_ne!(outer.udp_checksum, 0);
            // The vG answers through a tunnel back to the BRG, whose LSL is the same.
            let reply = decapsulated.reply_encap();
            assert_eq!(
                reply,
                Encap::Vxlan(VxlanEncap::new(vni(5001), vg, brg, VG_MAC, BRG_MAC))
            );
            assert_eq!(reply.lsl_id(), decapsulated.lsl);
        }
    }

    #[test]
    fn round_trips_every_kind() {
        let encaps = [
            Encap::Untagged,
            Encap::Dot1q { c_vid: vid(1) },
            Encap::Dot1q { c_vid: vid(4094) },
            Encap::QinQ {
                s_tpid: Tpid::STag,
                s_vid: vid(4094),
                c_vid: vid(1),
            },
            Encap::QinQ {
                s_tpid: Tpid::STagLegacy,
                s_vid: vid(2),
                c_vid: vid(3),
            },
            Encap::QinQ {
                s_tpid: Tpid::CTag,
                s_vid: vid(2),
                c_vid: vid(3),
            },
            Encap::Vxlan(VxlanEncap::new(vni(0), VG_V4, BRG_V4, VG_MAC, BRG_MAC)),
            Encap::Vxlan(VxlanEncap::new(Vni::MAX, VG_V6, BRG_V6, VG_MAC, BRG_MAC)),
            Encap::Vxlan(VxlanEncap {
                dst_port: 8472,
                ..VxlanEncap::new(vni(9), VG_V4, BRG_V4, VG_MAC, BRG_MAC)
            }),
        ];
        for encap in encaps {
            for inner in [
                untagged_arp(),
                untagged_icmp(),
                untagged_arp()[..14].to_vec(),
            ] {
                let frame = encap.encapsulate(&inner).expect("encapsulates");
                assert_eq!(frame.len(), inner.len() + encap.overhead(), "{encap:?}");
                let options = DecapOptions {
                    vxlan_port: match encap {
                        Encap::Vxlan(vxlan) => vxlan.dst_port,
                        _ => vxlan::UDP_PORT,
                    },
                    ..DecapOptions::default()
                };
                let decapsulated = decapsulate(&frame, &options).expect("decapsulates");
                assert_eq!(decapsulated.inner, &inner[..], "{encap:?}");
                match encap {
                    Encap::Vxlan(vxlan) => {
                        // Seen from the receiver, the sender's VTEP identifies the LSL.
                        assert_eq!(decapsulated.lsl, Some(LslId::vxlan(vxlan.vni, vxlan.local)));
                        let Encap::Vxlan(reply) = decapsulated.reply_encap() else {
                            panic!("VXLAN reply expected");
                        };
                        assert_eq!((reply.local, reply.remote), (vxlan.remote, vxlan.local));
                        assert_eq!(reply.dst_port, vxlan.dst_port);
                    }
                    _ => {
                        assert_eq!(decapsulated.lsl, encap.lsl_id());
                        assert_eq!(decapsulated.reply_encap(), encap);
                    }
                }
            }
        }
    }

    #[test]
    fn untagged_frames_pass_through() {
        let arp = untagged_arp();
        let decapsulated = decap(&arp).expect("classifies");
        assert_eq!(decapsulated.lsl, None);
        assert_eq!(decapsulated.outer, Outer::Untagged);
        assert_eq!(decapsulated.inner, &arp[..]);
        assert_eq!(decapsulated.reply_encap(), Encap::Untagged);
        // IPv4 that is not UDP, and UDP to another port, are not VXLAN.
        assert_eq!(decap(&untagged_icmp()).map(|d| d.lsl), Ok(None));
        let mut other_port = VXLAN4_ARP;
        other_port[36..38].copy_from_slice(&8472u16.to_be_bytes());
        assert_eq!(decap(&other_port).map(|d| d.outer), Ok(Outer::Untagged));
        // ...unless the options say that port is VXLAN (the UDP checksum is now wrong).
        let linux_default = DecapOptions {
            vxlan_port: 8472,
            ..DecapOptions::default()
        };
        assert_eq!(
            decapsulate(&other_port, &linux_default),
            Err(DecapError::UdpChecksum)
        );
        let unchecked = DecapOptions {
            verify_checksums: false,
            ..linux_default
        };
        assert!(decapsulate(&other_port, &unchecked).is_ok());
    }

    #[test]
    fn vlan_errors() {
        let mut priority_tagged = DOT1Q_ARP;
        priority_tagged[15] = 0; // VID 0
        assert_eq!(
            decap(&priority_tagged),
            Err(DecapError::Vid(VidError { value: 0 }))
        );
        let mut vid_4095 = QINQ_ICMP;
        vid_4095[14..16].copy_from_slice(&[0x0f, 0xff]);
        assert_eq!(
            decap(&vid_4095),
            Err(DecapError::Vid(VidError { value: 4095 }))
        );

        let mut single_s_tag = DOT1Q_ARP;
        single_s_tag[12..14].copy_from_slice(&[0x88, 0xa8]);
        assert_eq!(
            decap(&single_s_tag),
            Err(DecapError::UnexpectedTpid { tpid: Tpid::STag })
        );
        let mut s_in_s = QINQ_ICMP;
        s_in_s[16..18].copy_from_slice(&[0x91, 0x00]);
        assert_eq!(
            decap(&s_in_s),
            Err(DecapError::UnexpectedTpid {
                tpid: Tpid::STagLegacy
            })
        );

        let mut triple = QINQ_ICMP.to_vec();
        wire::vlan::push_tag(&mut triple, Tag::new(Tpid::STag, 5)).expect("long enough");
        assert_eq!(decap(&triple), Err(DecapError::TooManyTags));
        assert_eq!(
            DecapError::Vid(VidError { value: 0 }).to_string(),
            "VLAN ID 0 is out of range 1..=4094 (0 and 4095 are reserved)"
        );
    }

    #[test]
    fn vxlan_errors() {
        let mut no_i_flag = VXLAN4_ARP;
        no_i_flag[42] = 0;
        let unchecked = DecapOptions {
            verify_checksums: false,
            ..DecapOptions::default()
        };
        assert_eq!(decapsulate(&no_i_flag, &unchecked), Err(DecapError::NoVni));

        let mut bad_ip_checksum = VXLAN4_ARP;
        bad_ip_checksum[24] ^= 0x01;
        assert_eq!(decap(&bad_ip_checksum), Err(DecapError::Ipv4Checksum));
        assert!(decapsulate(&bad_ip_checksum, &unchecked).is_ok());

        let mut bad_udp_checksum = VXLAN6_ARP;
        bad_udp_checksum[61] ^= 0x01;
        assert_eq!(decap(&bad_udp_checksum), Err(DecapError::UdpChecksum));
        assert!(decapsulate(&bad_udp_checksum, &unchecked).is_ok());

        let mut bad_inner = VXLAN4_ARP;
        bad_inner[60] ^= 0x01; // a payload bit flip is what the UDP checksum catches
        assert_eq!(decap(&bad_inner), Err(DecapError::UdpChecksum));

        let mut first_fragment = VXLAN4_ARP;
        first_fragment[20] = 0x20; // MF, offset 0
        assert_eq!(
            decapsulate(&first_fragment, &unchecked),
            Err(DecapError::Fragmented)
        );
        let mut later_fragment = VXLAN4_ARP;
        later_fragment[20..22].copy_from_slice(&[0x00, 0x10]); // offset 128
        assert_eq!(decap(&later_fragment).map(|d| d.lsl), Ok(None));

        let mut short_ihl = VXLAN4_ARP;
        short_ihl[14] = 0x44;
        assert_eq!(decap(&short_ihl), Err(DecapError::Malformed));
        let mut wrong_version = VXLAN6_ARP;
        wrong_version[14] = 0x40;
        assert_eq!(decap(&wrong_version), Err(DecapError::Malformed));

        // UDP length beyond the IP payload.
        let mut long_udp = VXLAN4_ARP;
        long_udp[38..40].copy_from_slice(&77u16.to_be_bytes());
        assert_eq!(
            decapsulate(&long_udp, &unchecked),
            Err(DecapError::Truncated)
        );
        // An inner frame shorter than an Ethernet header.
        let short_inner = Encap::Vxlan(VxlanEncap::new(vni(1), VG_V4, BRG_V4, VG_MAC, BRG_MAC))
            .encapsulate(&untagged_arp()[..14])
            .expect("encapsulates");
        assert!(decapsulate(&short_inner, &unchecked).is_ok());
        // One byte less, with the IPv4 and UDP lengths shortened to match.
        let mut cut = short_inner.clone();
        cut.pop();
        let ip_len = u16::from_be_bytes([cut[16], cut[17]]) - 1;
        let udp_len = u16::from_be_bytes([cut[38], cut[39]]) - 1;
        cut[16..18].copy_from_slice(&ip_len.to_be_bytes());
        cut[38..40].copy_from_slice(&udp_len.to_be_bytes());
        assert_eq!(decapsulate(&cut, &unchecked), Err(DecapError::Truncated));
    }

    #[test]
    fn truncated_frames_every_length() {
        let fixtures: [(&[u8], usize); 4] = [
            (&DOT1Q_ARP, 18),
            (&QINQ_ICMP, 22),
            (&VXLAN4_ARP, VXLAN4_ARP.len()),
            (&VXLAN6_ARP, VXLAN6_ARP.len()),
        ];
        for (frame, complete) in fixtures {
            for len in 0..frame.len() {
                let result = decap(&frame[..len]);
                if len < complete {
                    assert_eq!(
                        result,
                        Err(DecapError::Truncated),
                        "len {len} of {}",
                        frame.len()
                    );
                } else {
                    assert!(result.is_ok(), "len {len} of {}: {result:?}", frame.len());
                }
            }
            assert!(decap(frame).is_ok());
        }
        // Ethernet padding after the outer IP packet is ignored.
        let mut padded = VXLAN4_ARP.to_vec();
        padded.extend_from_slice(&[0; 8]);
        assert_eq!(
            decap(&padded).map(|d| d.inner.len()),
            Ok(untagged_arp().len())
        );
    }

    #[test]
    fn encapsulation_errors() {
        let encaps = [
            Encap::Untagged,
            Encap::Dot1q { c_vid: vid(1) },
            Encap::Vxlan(VxlanEncap::new(vni(1), VG_V4, BRG_V4, VG_MAC, BRG_MAC)),
        ];
        for encap in encaps {
            for len in 0..14 {
                assert_eq!(
                    encap.encapsulate(&untagged_arp()[..len]),
                    Err(EncapError::InnerTooShort { len })
                );
            }
        }
        let mixed = Encap::Vxlan(VxlanEncap::new(vni(1), VG_V4, BRG_V6, VG_MAC, BRG_MAC));
        assert_eq!(
            mixed.encapsulate(&untagged_arp()),
            Err(EncapError::AddressFamilyMismatch {
                local: VG_V4,
                remote: BRG_V6
            })
        );
        let v4 = Encap::Vxlan(VxlanEncap::new(vni(1), VG_V4, BRG_V4, VG_MAC, BRG_MAC));
        let v6 = Encap::Vxlan(VxlanEncap::new(vni(1), VG_V6, BRG_V6, VG_MAC, BRG_MAC));
        let largest_v4 = vec![0u8; 65535 - 36];
        assert!(v4.encapsulate(&largest_v4).is_ok());
        assert_eq!(
            v4.encapsulate(&[0u8; 65535 - 35]),
            Err(EncapError::TooLong { len: 65535 - 35 })
        );
        assert!(v6.encapsulate(&[0u8; 65535 - 16]).is_ok());
        assert_eq!(
            v6.encapsulate(&[0u8; 65535 - 15]),
            Err(EncapError::TooLong { len: 65535 - 15 })
        );
    }
}
