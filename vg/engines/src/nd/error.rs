//! The ICMPv6 errors the slow path originates for punted packets (RFC 4443): Time Exceeded
//! (hop limit, §3.3), Packet Too Big (§3.2) and Destination Unreachable (§3.1: no route,
//! address unreachable after failed resolution, source address failed ingress policy for
//! a SAVI refusal).
//!
//! Source: [`Home6::router_addr`], the vG's own global address (RFC 4443 §2.2: the packet
//! was not addressed to the vG, and the error may go off-link; see the module documentation
//! of [`super`]). Towards a home the error is LSL-encapsulated, from the gateway MAC to the
//! sender's; towards the core (a packet from the internet too big for the home's LSL, or
//! expiring, or for a home host that does not answer) it is plain Ethernet with the L2
//! addresses the caller gives ([`CoreL2`]).
//!
//! The error quotes as much of the packet as fits in the minimum MTU (§2.4 (c)): 1280 bytes
//! in all, [`MAX_QUOTE`] of packet. No error answers an ICMPv6 error or redirect, a packet to
//! a multicast address or sent as a link-layer multicast (except Packet Too Big, §2.4
//! (e.3)), or a packet from the unspecified or a multicast address (§2.4 (e)). smoltcp's
//! `Icmpv6Repr` error variants are not used to emit them: they re-emit the quoted header
//! from an `Ipv6Repr` (dropping traffic class and flow label, which hosts need to match the
//! error to a flow); the quote stays byte-exact.

use std::net::Ipv6Addr;

use lsl::encap::DecapOptions;
use lsl::smoltcp::wire::{
    EthernetAddress, EthernetFrame, EthernetProtocol, IPV6_HEADER_LEN, Icmpv6DstUnreachable,
    Icmpv6Message, Icmpv6TimeExceeded,
};

use super::guard::upper_layer;
use super::wire::{Addressing, Ipv6In, copy, icmpv6_frame};
use super::{
    Home6, Ignored6, Layer6, MIN_MTU, REPLY_HOP_LIMIT, Reply6, Reply6Kind, Suppressed6,
    Unsupported6, decapsulate_home, encapsulate,
};

/// The largest ICMPv6 error packet, IPv6 header included: the minimum MTU (RFC 4443 §2.4 (c)).
pub const ICMP6_ERROR_MAX_LEN: usize = MIN_MTU as usize;

/// The ICMPv6 header of an error: type, code, checksum and the unused or MTU word.
const ERROR_HEADER_LEN: usize = 8;

/// Payload bytes every quote includes when the packet has them.
const MIN_QUOTED_PAYLOAD: usize = 8;

/// The most bytes of the original packet an error quotes (1280 - 40 - 8).
pub const MAX_QUOTE: usize = ICMP6_ERROR_MAX_LEN - IPV6_HEADER_LEN - ERROR_HEADER_LEN;

/// The ICMPv6 errors the vG originates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Icmp6Error {
    /// Type 3 code 0: hop limit exceeded in transit, for a packet with hop limit 0 or 1.
    TimeExceeded,
    /// Type 2: the packet is bigger than the next link's MTU (at least 1280).
    PacketTooBig {
        /// The next link's MTU.
        mtu: u32,
    },
    /// Type 1 code 3: address unreachable, when neighbour resolution failed.
    AddressUnreachable,
    /// Type 1 code 0: no route to the destination.
    NoRoute,
    /// Type 1 code 5: the source address failed ingress policy (a SAVI refusal).
    SourcePolicy,
}

impl Icmp6Error {
    /// A short name for a metric label.
    pub const fn label(&self) -> &'static str {
        match self {
            Icmp6Error::TimeExceeded => "icmp6_time_exceeded",
            Icmp6Error::PacketTooBig { .. } => "icmp6_packet_too_big",
            Icmp6Error::AddressUnreachable => "icmp6_address_unreachable",
            Icmp6Error::NoRoute => "icmp6_no_route",
            Icmp6Error::SourcePolicy => "icmp6_source_policy",
        }
    }

    /// ICMPv6 type and code.
    fn message(self) -> (Icmpv6Message, u8) {
        match self {
            Icmp6Error::TimeExceeded => (
                Icmpv6Message::TimeExceeded,
                Icmpv6TimeExceeded::HopLimitExceeded.into(),
            ),
            Icmp6Error::PacketTooBig { .. } => (Icmpv6Message::PktTooBig, 0),
            Icmp6Error::AddressUnreachable => (
                Icmpv6Message::DstUnreachable,
                Icmpv6DstUnreachable::AddrUnreachable.into(),
            ),
            Icmp6Error::NoRoute => (
                Icmpv6Message::DstUnreachable,
                Icmpv6DstUnreachable::NoRoute.into(),
            ),
            Icmp6Error::SourcePolicy => (
                Icmpv6Message::DstUnreachable,
                Icmpv6DstUnreachable::FailedPolicy.into(),
            ),
        }
    }
}

/// The core side's L2 addresses for an error sent there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CoreL2 {
    /// The vG's core interface MAC.
    pub src_mac: EthernetAddress,
    /// The next hop's MAC (the core router).
    pub dst_mac: EthernetAddress,
}

/// Builds ICMPv6 `error` to the sender of a punted `frame` from `home` (whole, LSL
/// included), in the same LSL; ignored when RFC 4443 §2.4 (e) forbids it or it does not
/// apply.
pub fn icmp6_error(
    home: &Home6,
    frame: &[u8],
    options: &DecapOptions,
    error: Icmp6Error,
) -> Result<Reply6, Ignored6> {
    let decapsulated = decapsulate_home(home, frame, options)?;
    let inner = {
        let eth = EthernetFrame::new_checked(&decapsulated.inner[..])
            .map_err(|_| Ignored6::Malformed(Layer6::Ethernet))?;
        let ip = ipv6_of(&eth)?;
        if !eth.src_addr().is_unicast() {
            return Err(Ignored6::BadSource);
        }
        error_frame(home, &eth, &ip, error)?
    };
    encapsulate(&decapsulated, Reply6Kind::Error(error), &inner)
}

/// Builds ICMPv6 `error` from `source` (the vG's router address) about a plain Ethernet
/// `frame` from the core, addressed with `l2`.
pub fn icmp6_error_to_core(
    source: Ipv6Addr,
    l2: &CoreL2,
    frame: &[u8],
    error: Icmp6Error,
) -> Result<Vec<u8>, Ignored6> {
    let eth =
        EthernetFrame::new_checked(frame).map_err(|_| Ignored6::Malformed(Layer6::Ethernet))?;
    let ip = ipv6_of(&eth)?;
    let to = Addressing {
        src_mac: l2.src_mac,
        dst_mac: l2.dst_mac,
        src: source,
        dst: ip.src(),
        hop_limit: REPLY_HOP_LIMIT,
    };
    build(&to, eth.dst_addr(), &ip, error)
}

fn ipv6_of<'a>(eth: &EthernetFrame<&'a [u8]>) -> Result<Ipv6In<'a>, Ignored6> {
    let ethertype = eth.ethertype();
    if ethertype != EthernetProtocol::Ipv6 {
        return Err(Ignored6::Unsupported(Unsupported6::Ethertype(
            ethertype.into(),
        )));
    }
    Ipv6In::parse(eth.payload())
}

/// The inner frame of `error` about `ip`, from the home's gateway MAC to its sender, which
/// must be a host of the home that sent the packet to the gateway (or to a group).
pub(super) fn error_frame(
    home: &Home6,
    eth: &EthernetFrame<&[u8]>,
    ip: &Ipv6In<'_>,
    error: Icmp6Error,
) -> Result<Vec<u8>, Ignored6> {
    let link_dst = eth.dst_addr();
    if link_dst.is_unicast() && link_dst != home.gateway_mac {
        return Err(Ignored6::NotForUs);
    }
    if !home.is_host(ip.src()) {
        return Err(Ignored6::BadSource);
    }
    let to = Addressing {
        src_mac: home.gateway_mac,
        dst_mac: eth.src_addr(),
        src: home.router_addr,
        dst: ip.src(),
        hop_limit: REPLY_HOP_LIMIT,
    };
    build(&to, eth.dst_addr(), ip, error)
}

/// Checks RFC 4443 §2.4 (e) and the error's applicability, then builds it.
fn build(
    to: &Addressing,
    link_dst: EthernetAddress,
    ip: &Ipv6In<'_>,
    error: Icmp6Error,
) -> Result<Vec<u8>, Ignored6> {
    suppressed(link_dst, ip, error).map_or(Ok(()), |why| Err(Ignored6::NoError(why)))?;
    // A punt record may be cut short: quote what there is, but at least the header and
    // the first 8 bytes of payload (the ports hosts match errors with), as for IPv4.
    let needed = IPV6_HEADER_LEN + usize::from(ip.header.payload_len()).min(MIN_QUOTED_PAYLOAD);
    if ip.bytes.len() < needed {
        return Err(Ignored6::Malformed(Layer6::Ipv6));
    }
    let quote = ip
        .bytes
        .get(..ip.bytes.len().min(MAX_QUOTE))
        .unwrap_or_default();
    let (message, code) = error.message();
    icmpv6_frame(to, ERROR_HEADER_LEN + quote.len(), |packet| {
        packet.set_msg_type(message);
        packet.set_msg_code(code);
        if let Icmp6Error::PacketTooBig { mtu } = error {
            packet.set_pkt_too_big_mtu(mtu);
        }
        copy(packet.payload_mut(), quote);
    })
    .ok_or(Ignored6::Malformed(Layer6::Ipv6))
}

/// Why no `error` may be sent about `ip`, if it may not.
fn suppressed(
    link_dst: EthernetAddress,
    ip: &Ipv6In<'_>,
    error: Icmp6Error,
) -> Option<Suppressed6> {
    let (src, dst) = (ip.src(), ip.dst());
    let too_big = matches!(error, Icmp6Error::PacketTooBig { .. });
    if (dst.is_multicast() || link_dst.is_multicast()) && !too_big {
        return Some(Suppressed6::Multicast);
    }
    if src.is_unspecified() || src.is_multicast() {
        return Some(Suppressed6::NoSource);
    }
    let Some(upper) = upper_layer(ip.bytes) else {
        return Some(Suppressed6::IcmpError);
    };
    if upper.protocol == 58 {
        let informational = upper.first_fragment
            && ip
                .bytes
                .get(upper.offset)
                .is_some_and(|&t| t >= 128 && t != 137);
        if !informational {
            return Some(Suppressed6::IcmpError);
        }
    }
    let applies = match error {
        Icmp6Error::TimeExceeded => ip.header.hop_limit() <= 1,
        Icmp6Error::PacketTooBig { mtu } => {
            let len = IPV6_HEADER_LEN + usize::from(ip.header.payload_len());
            mtu >= u32::from(MIN_MTU) && usize::try_from(mtu).is_ok_and(|mtu| len > mtu)
        }
        Icmp6Error::AddressUnreachable | Icmp6Error::NoRoute | Icmp6Error::SourcePolicy => true,
    };
    (!applies).then_some(Suppressed6::Inapplicable)
}
