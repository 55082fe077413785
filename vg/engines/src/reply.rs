//! The slow path's answers as pure functions: a punted frame in, the reply frame (already in
//! the home's LSL encapsulation) or a typed reason to ignore it out. No I/O, no clock.
//!
//! ```text
//!  punted frame           inner frame
//!  (LSL included) --decap--> ARP request for the gateway ------------> ARP reply
//!                            ICMP echo request to the gateway -------> echo reply
//!                            UDP to the gateway, not port 67 --------> ICMP port unreachable
//!                            IPv4 through the gateway, TTL <= 1 -----> ICMP time exceeded
//!                            UDP to port 67 -------------------------> Answer::Dhcp (the engine's)
//!                            anything else --------------------------> Ignored (counted)
//! ```
//!
//! | inner frame                                                   | result                       |
//! |---------------------------------------------------------------|------------------------------|
//! | ARP request for the gateway, also an RFC 5227 probe (0.0.0.0) | ARP reply, unicast to the requester's hardware address |
//! | ARP request for another address                               | [`Ignored::NotForUs`]: hosts answer for themselves (no proxy ARP) |
//! | ARP reply, gratuitous ARP                                     | [`Ignored::ArpAnnouncement`] with the sender's binding, to learn from |
//! | ARP from another MAC claiming the gateway address             | [`Ignored::GatewayConflict`] |
//! | a sender that is not a host of the home's LAN                 | [`Ignored::BadSource`]       |
//! | ICMP echo request to the gateway                              | echo reply, TTL [`REPLY_TTL`] |
//! | UDP to the gateway, another port than 67                      | ICMP port unreachable (RFC 1122 §3.2.2.1; how traceroute learns it arrived) |
//! | UDP to port 67, to the gateway or a broadcast address         | [`Answer::Dhcp`]             |
//! | IPv4 to another address with TTL 0 or 1                       | ICMP time exceeded (RFC 1812 §5.3.1) |
//! | fragments to the gateway, TCP and other protocols to it       | [`Ignored::Fragment`], [`Ignored::Unsupported`] (no reassembly, no TCP here) |
//! | IPv6, other ethertypes                                        | [`Ignored::Unsupported`]     |
//!
//! The other ICMP errors the gateway originates (fragmentation needed, administratively
//! prohibited) depend on what the fast path knows (the MTU, a NAT refusal): [`icmp_error`]
//! builds them for a punted frame.
//!
//! ICMP errors quote the original datagram verbatim, as much of it as fits in a 576-byte
//! ICMP datagram ([`ICMP_ERROR_MAX_LEN`], RFC 1812 §4.3.2.3, as Linux does): at least the IP
//! header and 8 bytes of payload (RFC 792), at most [`MAX_QUOTE`] bytes. smoltcp's
//! `Icmpv4Repr::DstUnreachable`/`TimeExceeded` are not used to emit them: they re-emit the
//! quoted header from an `Ipv4Repr` (dropping options, identification, flags and the original
//! total length) and have no Next-Hop MTU field (RFC 1191 §4); hosts match an error to its
//! socket through the quote, so it stays byte-exact and only the Next-Hop MTU is written by
//! hand. No error answers an ICMP error, a broadcast or multicast (IP or link layer), a
//! fragment other than the first, or a datagram from 0.0.0.0 (RFC 1812 §4.3.2.7): see
//! [`Suppressed`].
//!
//! One home's flood must not starve the others: the caller admits each punted frame through
//! a [`HomeLimiter`] (a token bucket per home; [`RateLimit::DEFAULT`] 50 packets/s, burst
//! 100, or the configuration's `[slowpath] per_home_pps` and `per_home_burst`) before
//! answering it.
//!
//! No-panic contract: [`answer`], [`icmp_error`], [`udp_from_gateway`] and the limiter
//! return a value for every input, however short, long or malformed.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::ops::Range;

use ipnet::Ipv4Net;
use lsl::encap::{DecapError, DecapOptions, EncapError};
use lsl::smoltcp::phy::ChecksumCapabilities;
use lsl::smoltcp::wire::{
    ArpOperation, ArpPacket, ArpRepr, ETHERNET_HEADER_LEN, EthernetAddress, EthernetFrame,
    EthernetProtocol, EthernetRepr, IPV4_HEADER_LEN, Icmpv4DstUnreachable, Icmpv4Message,
    Icmpv4Packet, Icmpv4Repr, Icmpv4TimeExceeded, IpProtocol, Ipv4Packet, Ipv4Repr, UDP_HEADER_LEN,
    UdpPacket, UdpRepr,
};
use lsl::{Decapsulated, Encap, LslId, decapsulate};
use nerg_abi::SubscriberId;

use crate::config::SubscriberConfig;

/// The TTL of every IPv4 packet the gateway originates (RFC 1700's default, as Linux).
pub const REPLY_TTL: u8 = 64;

/// The UDP port of the DHCP server (RFC 2131 §4.1).
pub const DHCP_SERVER_PORT: u16 = 67;

/// The largest ICMP error datagram the gateway sends, IP header included (RFC 1812 §4.3.2.3).
pub const ICMP_ERROR_MAX_LEN: usize = 576;

/// The ICMP header of an error: type, code, checksum and the (unused or MTU) word.
const ICMP_ERROR_HEADER_LEN: usize = 8;

/// The most bytes of the original datagram an ICMP error quotes (576 - 20 - 8).
pub const MAX_QUOTE: usize = ICMP_ERROR_MAX_LEN - IPV4_HEADER_LEN - ICMP_ERROR_HEADER_LEN;

/// Payload bytes every quote includes when the original has them (RFC 792: "64 bits").
const MIN_QUOTED_PAYLOAD: usize = 8;

/// The Next-Hop MTU in a fragmentation-needed error: the low half of the otherwise unused
/// word (RFC 1191 §4). smoltcp 0.12's `Icmpv4Packet` has no accessor for it.
const NEXT_HOP_MTU: Range<usize> = 6..8;

/// DSCP of ICMP errors: CS6, precedence 6 "internetwork control" (RFC 1812 §4.3.2.5).
const ICMP_ERROR_DSCP: u8 = 48;

/// The home a punted frame came from, as the reply logic needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Home {
    /// The home's LSL: frames from any other are not answered.
    pub lsl: LslId,
    /// The home's gateway address.
    pub gateway: Ipv4Addr,
    /// The home's stable gateway MAC.
    pub gateway_mac: EthernetAddress,
    /// The home's LAN prefix (the gateway is one of its hosts).
    pub lan: Ipv4Net,
}

impl From<&SubscriberConfig> for Home {
    fn from(sub: &SubscriberConfig) -> Home {
        Home {
            lsl: sub.lsl,
            gateway: sub.gateway,
            gateway_mac: EthernetAddress(sub.gateway_mac),
            lan: sub.lan,
        }
    }
}

impl Home {
    /// Whether `ip` can be one of the home's hosts other than the gateway: inside the LAN,
    /// and not its network or broadcast address (which /31 and /32 prefixes do not have).
    fn is_host(&self, ip: Ipv4Addr) -> bool {
        self.lan.contains(&ip)
            && ip != self.gateway
            && (self.lan.prefix_len() >= 31
                || (ip != self.lan.network() && ip != self.lan.broadcast()))
    }

    /// Whether `ip` addresses many hosts: limited or the LAN's directed broadcast (also its
    /// obsolete all-zeros form), or multicast.
    fn is_broadcast(&self, ip: Ipv4Addr) -> bool {
        ip.is_broadcast()
            || ip.is_multicast()
            || (self.lan.prefix_len() < 31
                && (ip == self.lan.broadcast() || ip == self.lan.network()))
    }
}

/// What to do with a punted frame that gets an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer<'a> {
    /// Send this frame back out of the access interface.
    Reply(Reply),
    /// A DHCP client message for the DHCP engine.
    Dhcp(DhcpRequest<'a>),
}

/// A frame the gateway sends, in the LSL encapsulation of the frame it answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// What it is, for metrics and logs.
    pub kind: ReplyKind,
    /// The whole frame, from the outer destination MAC, without FCS.
    pub frame: Vec<u8>,
}

/// The kinds of [`Reply`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyKind {
    /// An ARP reply for the gateway address.
    Arp,
    /// An ICMP echo reply from the gateway.
    EchoReply,
    /// An ICMP error from the gateway.
    IcmpError(IcmpError),
}

impl ReplyKind {
    /// A short name for a metric label.
    pub const fn label(&self) -> &'static str {
        match self {
            ReplyKind::Arp => "arp_reply",
            ReplyKind::EchoReply => "echo_reply",
            ReplyKind::IcmpError(error) => error.label(),
        }
    }
}

/// A DHCP client message (UDP to port 67), checked down to the UDP checksum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DhcpRequest<'a> {
    /// The frame without its LSL; [`Decapsulated::reply_encap`] is how to answer.
    pub decapsulated: Decapsulated<'a>,
    /// The client's MAC: the inner Ethernet source.
    pub client_mac: EthernetAddress,
    /// The IPv4 source (0.0.0.0 before the client has an address).
    pub src: Ipv4Addr,
    /// The IPv4 destination: the gateway or a broadcast address.
    pub dst: Ipv4Addr,
    /// The UDP source port (68 for a client).
    pub src_port: u16,
    /// Where the UDP payload is in `decapsulated.inner`.
    payload: Range<usize>,
}

impl DhcpRequest<'_> {
    /// The UDP payload: the DHCP message for the engine.
    pub fn payload(&self) -> &[u8] {
        self.decapsulated
            .inner
            .get(self.payload.clone())
            .unwrap_or_default()
    }
}

/// An ARP sender's binding, reported so that the caller may learn from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArpBinding {
    /// The sender hardware address.
    pub mac: EthernetAddress,
    /// The sender protocol address.
    pub ip: Ipv4Addr,
}

/// The ICMP errors the gateway originates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IcmpError {
    /// Type 11 code 0: TTL exceeded in transit, for a datagram that arrived with TTL 0 or 1.
    TimeExceeded,
    /// Type 3 code 4 with the next-hop MTU (RFC 1191 §4), for a datagram too large for the
    /// next hop with DF set.
    FragmentationNeeded {
        /// The MTU of the next hop, in bytes.
        next_hop_mtu: u16,
    },
    /// Type 3 code 13: communication administratively prohibited (RFC 1812 §5.2.7.1), when
    /// NAT refuses a mapping.
    AdminProhibited,
    /// Type 3 code 3: port unreachable, for UDP to the gateway on a port nothing serves.
    PortUnreachable,
}

impl IcmpError {
    /// A short name for a metric label.
    pub const fn label(&self) -> &'static str {
        match self {
            IcmpError::TimeExceeded => "icmp_time_exceeded",
            IcmpError::FragmentationNeeded { .. } => "icmp_frag_needed",
            IcmpError::AdminProhibited => "icmp_admin_prohibited",
            IcmpError::PortUnreachable => "icmp_port_unreachable",
        }
    }

    /// ICMP type and code.
    fn message(self) -> (Icmpv4Message, u8) {
        match self {
            IcmpError::TimeExceeded => (
                Icmpv4Message::TimeExceeded,
                Icmpv4TimeExceeded::TtlExpired.into(),
            ),
            IcmpError::FragmentationNeeded { .. } => (
                Icmpv4Message::DstUnreachable,
                Icmpv4DstUnreachable::FragRequired.into(),
            ),
            IcmpError::AdminProhibited => (
                Icmpv4Message::DstUnreachable,
                Icmpv4DstUnreachable::CommProhibited.into(),
            ),
            IcmpError::PortUnreachable => (
                Icmpv4Message::DstUnreachable,
                Icmpv4DstUnreachable::PortUnreachable.into(),
            ),
        }
    }
}

/// Why a punted frame got no answer. Small and `Copy`, to be counted by [`Ignored::label`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Ignored {
    /// The LSL encapsulation could not be removed.
    #[error("LSL decapsulation failed")]
    Decap(#[source] DecapError),
    /// The frame is not on the home's LSL (or on none).
    #[error("frame is not on the home's LSL")]
    WrongLsl,
    /// An inner header is truncated or inconsistent, or its checksum is wrong.
    #[error("malformed {0:?} in the inner frame")]
    Malformed(Layer),
    /// Something the slow path does not answer (yet).
    #[error("unsupported: {0:?}")]
    Unsupported(Unsupported),
    /// Addressed to another host, or a request for another address.
    #[error("not addressed to the gateway")]
    NotForUs,
    /// The sender is not a host of the home's LAN (outside it, its network or broadcast
    /// address, the gateway itself, 0.0.0.0 where that is not allowed, or a group MAC).
    #[error("sender is not a host of the home's LAN")]
    BadSource,
    /// An ARP reply or gratuitous ARP: nothing to answer, the binding may be learnt.
    #[error("ARP announcement from {} at {}", .0.ip, .0.mac)]
    ArpAnnouncement(ArpBinding),
    /// Another station claims the gateway address.
    #[error("{} claims the gateway address {}", .0.mac, .0.ip)]
    GatewayConflict(ArpBinding),
    /// An IPv4 fragment for the gateway: the slow path does not reassemble.
    #[error("IPv4 fragment for the gateway")]
    Fragment,
    /// No ICMP error may be sent for this datagram.
    #[error("no ICMP error: {0:?}")]
    NoIcmpError(Suppressed),
    /// The home's token bucket is empty.
    #[error("rate limited")]
    RateLimited,
    /// The reply could not be encapsulated.
    #[error("encapsulating the reply failed")]
    Encap(#[source] EncapError),
}

impl Ignored {
    /// A short name for a metric label.
    pub const fn label(&self) -> &'static str {
        match self {
            Ignored::Decap(_) => "decap",
            Ignored::WrongLsl => "wrong_lsl",
            Ignored::Malformed(_) => "malformed",
            Ignored::Unsupported(_) => "unsupported",
            Ignored::NotForUs => "not_for_us",
            Ignored::BadSource => "bad_source",
            Ignored::ArpAnnouncement(_) => "arp_announcement",
            Ignored::GatewayConflict(_) => "gateway_conflict",
            Ignored::Fragment => "fragment",
            Ignored::NoIcmpError(_) => "no_icmp_error",
            Ignored::RateLimited => "rate_limited",
            Ignored::Encap(_) => "encap",
        }
    }
}

/// The inner header that [`Ignored::Malformed`] refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layer {
    /// The inner Ethernet header.
    Ethernet,
    /// The ARP packet.
    Arp,
    /// The IPv4 header (or the packet's length).
    Ipv4,
    /// The ICMP message.
    Icmp,
    /// The UDP header.
    Udp,
}

/// What [`Ignored::Unsupported`] refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Unsupported {
    /// IPv6 (ND, RS, DHCPv6), until the vG serves it.
    Ipv6,
    /// Another ethertype.
    Ethertype(u16),
    /// ARP for another hardware or protocol type than Ethernet and IPv4.
    ArpFormat,
    /// An ARP operation other than request and reply.
    ArpOperation(u16),
    /// An ICMP type to the gateway other than echo request.
    IcmpType(u8),
    /// An IP protocol to the gateway other than ICMP and UDP.
    Protocol(u8),
}

/// Why no ICMP error may be sent (RFC 1812 §4.3.2.7), or why the one asked for does not apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Suppressed {
    /// The datagram is itself an ICMP error (or too short to tell).
    IcmpError,
    /// Sent to an IP broadcast or multicast address, or as a link-layer broadcast.
    Broadcast,
    /// A fragment other than the first.
    Fragment,
    /// From 0.0.0.0.
    NoSource,
    /// The error does not fit the datagram: time exceeded for a TTL above 1, fragmentation
    /// needed without DF or for a datagram that fits the MTU.
    Inapplicable,
}

/// Answers a frame punted by the fast path for `home`: `frame` is the whole frame as
/// received, LSL encapsulation included (see the [module documentation](self)).
pub fn answer<'a>(
    home: &Home,
    frame: &'a [u8],
    options: &DecapOptions,
) -> Result<Answer<'a>, Ignored> {
    let decapsulated = decapsulate_home(home, frame, options)?;
    let handled = {
        let eth = ethernet(&decapsulated.inner)?;
        match eth.ethertype() {
            EthernetProtocol::Arp => Handled::Reply(ReplyKind::Arp, arp(home, &eth)?),
            EthernetProtocol::Ipv4 => ipv4(home, &eth)?,
            EthernetProtocol::Ipv6 => return Err(Ignored::Unsupported(Unsupported::Ipv6)),
            other => return Err(Ignored::Unsupported(Unsupported::Ethertype(other.into()))),
        }
    };
    match handled {
        Handled::Reply(kind, inner) => Ok(Answer::Reply(encapsulate(&decapsulated, kind, &inner)?)),
        Handled::Dhcp(dhcp) => Ok(Answer::Dhcp(DhcpRequest {
            decapsulated,
            client_mac: dhcp.client_mac,
            src: dhcp.src,
            dst: dhcp.dst,
            src_port: dhcp.src_port,
            payload: dhcp.payload,
        })),
    }
}

/// Builds the ICMP `error` from the gateway to the sender of a punted `frame` (whole, LSL
/// included), in the same LSL; ignored when RFC 1812 §4.3.2.7 forbids it or it does not apply.
pub fn icmp_error(
    home: &Home,
    frame: &[u8],
    options: &DecapOptions,
    error: IcmpError,
) -> Result<Reply, Ignored> {
    let decapsulated = decapsulate_home(home, frame, options)?;
    let inner = {
        let eth = ethernet(&decapsulated.inner)?;
        icmp_error_frame(home, &eth, error)?
    };
    encapsulate(&decapsulated, ReplyKind::IcmpError(error), &inner)
}

/// A UDP datagram from the gateway to a host of the home (or to all of them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GatewayDatagram<'a> {
    /// The destination MAC (broadcast for a broadcast).
    pub dst_mac: EthernetAddress,
    /// The destination address.
    pub dst: Ipv4Addr,
    /// The UDP source port.
    pub src_port: u16,
    /// The UDP destination port.
    pub dst_port: u16,
    /// The UDP payload.
    pub payload: &'a [u8],
}

/// Builds `datagram` from the home's gateway (its address and MAC, TTL [`REPLY_TTL`], UDP
/// checksum) in `encap`, e.g. a DHCP reply with [`DhcpRequest`]'s `reply_encap()`.
pub fn udp_from_gateway(
    home: &Home,
    encap: &Encap,
    datagram: &GatewayDatagram<'_>,
) -> Result<Vec<u8>, EncapError> {
    let udp = UdpRepr {
        src_port: datagram.src_port,
        dst_port: datagram.dst_port,
    };
    let udp_len = UDP_HEADER_LEN + datagram.payload.len();
    let inner = ipv4_frame(
        home,
        datagram.dst_mac,
        datagram.dst,
        IpProtocol::Udp,
        udp_len,
        0,
        |buf| {
            udp.emit(
                &mut UdpPacket::new_unchecked(buf),
                &home.gateway.into(),
                &datagram.dst.into(),
                datagram.payload.len(),
                |payload| copy(payload, datagram.payload),
                &ChecksumCapabilities::default(),
            );
        },
    )
    .ok_or(EncapError::TooLong {
        len: ETHERNET_HEADER_LEN + IPV4_HEADER_LEN + udp_len,
    })?;
    encap.encapsulate(&inner)
}

/// What an inner frame asked for, before encapsulation.
enum Handled {
    /// An inner reply frame.
    Reply(ReplyKind, Vec<u8>),
    /// A DHCP message, located in the inner frame.
    Dhcp(DhcpFound),
}

/// The parts of a [`DhcpRequest`] found while the inner frame is borrowed.
struct DhcpFound {
    client_mac: EthernetAddress,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    src_port: u16,
    payload: Range<usize>,
}

/// Removes the LSL encapsulation of a frame that must be on `home`'s LSL.
fn decapsulate_home<'a>(
    home: &Home,
    frame: &'a [u8],
    options: &DecapOptions,
) -> Result<Decapsulated<'a>, Ignored> {
    let decapsulated = decapsulate(frame, options).map_err(Ignored::Decap)?;
    if decapsulated.lsl != Some(home.lsl) {
        return Err(Ignored::WrongLsl);
    }
    Ok(decapsulated)
}

/// Wraps an inner reply in the LSL its request came on.
fn encapsulate(
    request: &Decapsulated<'_>,
    kind: ReplyKind,
    inner: &[u8],
) -> Result<Reply, Ignored> {
    let frame = request
        .reply_encap()
        .encapsulate(inner)
        .map_err(Ignored::Encap)?;
    Ok(Reply { kind, frame })
}

fn ethernet(inner: &[u8]) -> Result<EthernetFrame<&[u8]>, Ignored> {
    EthernetFrame::new_checked(inner).map_err(|_| Ignored::Malformed(Layer::Ethernet))
}

/// ARP: a reply for the gateway address, everything else ignored (see the module table).
fn arp(home: &Home, eth: &EthernetFrame<&[u8]>) -> Result<Vec<u8>, Ignored> {
    let packet =
        ArpPacket::new_checked(eth.payload()).map_err(|_| Ignored::Malformed(Layer::Arp))?;
    // check_len passed, so a parse error means another hardware or protocol type.
    let ArpRepr::EthernetIpv4 {
        operation,
        source_hardware_addr: sender_mac,
        source_protocol_addr: sender_ip,
        target_protocol_addr: target_ip,
        ..
    } = ArpRepr::parse(&packet).map_err(|_| Ignored::Unsupported(Unsupported::ArpFormat))?
    else {
        return Err(Ignored::Unsupported(Unsupported::ArpFormat));
    };
    let binding = ArpBinding {
        mac: sender_mac,
        ip: sender_ip,
    };
    let link_dst = eth.dst_addr();
    if !link_dst.is_broadcast() && link_dst != home.gateway_mac {
        return Err(Ignored::NotForUs);
    }
    if !sender_mac.is_unicast() || !eth.src_addr().is_unicast() {
        return Err(Ignored::BadSource);
    }
    if sender_ip == home.gateway {
        return Err(Ignored::GatewayConflict(binding));
    }
    // 0.0.0.0 is an RFC 5227 probe: answered when it asks for the gateway address.
    let probe = operation == ArpOperation::Request && sender_ip.is_unspecified();
    if !probe && !home.is_host(sender_ip) {
        return Err(Ignored::BadSource);
    }
    match operation {
        ArpOperation::Reply => Err(Ignored::ArpAnnouncement(binding)),
        ArpOperation::Request if sender_ip == target_ip => Err(Ignored::ArpAnnouncement(binding)),
        ArpOperation::Request if target_ip == home.gateway => {
            let reply = ArpRepr::EthernetIpv4 {
                operation: ArpOperation::Reply,
                source_hardware_addr: home.gateway_mac,
                source_protocol_addr: home.gateway,
                target_hardware_addr: sender_mac,
                target_protocol_addr: sender_ip,
            };
            Ok(ethernet_frame(
                home.gateway_mac,
                sender_mac,
                EthernetProtocol::Arp,
                reply.buffer_len(),
                |buf| reply.emit(&mut ArpPacket::new_unchecked(buf)),
            ))
        }
        ArpOperation::Request => Err(Ignored::NotForUs),
        other => Err(Ignored::Unsupported(Unsupported::ArpOperation(
            other.into(),
        ))),
    }
}

/// IPv4: DHCP for the engine, echo and UDP to the gateway, time exceeded for transit.
fn ipv4(home: &Home, eth: &EthernetFrame<&[u8]>) -> Result<Handled, Ignored> {
    if !eth.src_addr().is_unicast() {
        return Err(Ignored::BadSource);
    }
    let ip = Ipv4In::parse(eth.payload())?;
    let protocol = ip.header.next_header();
    if protocol == IpProtocol::Udp
        && !ip.is_fragment()
        && ip.udp_dst_port() == Some(DHCP_SERVER_PORT)
    {
        return dhcp(home, eth, &ip).map(Handled::Dhcp);
    }
    if ip.header.dst_addr() != home.gateway {
        if ip.header.hop_limit() > 1 {
            return Err(Ignored::NotForUs);
        }
        let error = IcmpError::TimeExceeded;
        return Ok(Handled::Reply(
            ReplyKind::IcmpError(error),
            icmp_error_frame(home, eth, error)?,
        ));
    }
    if eth.dst_addr() != home.gateway_mac {
        return Err(Ignored::NotForUs);
    }
    if ip.is_fragment() {
        return Err(Ignored::Fragment);
    }
    if !home.is_host(ip.header.src_addr()) {
        return Err(Ignored::BadSource);
    }
    match protocol {
        IpProtocol::Icmp => {
            echo(home, eth, &ip).map(|frame| Handled::Reply(ReplyKind::EchoReply, frame))
        }
        IpProtocol::Udp => {
            let error = IcmpError::PortUnreachable;
            Ok(Handled::Reply(
                ReplyKind::IcmpError(error),
                icmp_error_frame(home, eth, error)?,
            ))
        }
        other => Err(Ignored::Unsupported(Unsupported::Protocol(other.into()))),
    }
}

/// A UDP datagram to port 67: checked and located for the DHCP engine.
fn dhcp(home: &Home, eth: &EthernetFrame<&[u8]>, ip: &Ipv4In<'_>) -> Result<DhcpFound, Ignored> {
    let (src, dst) = (ip.header.src_addr(), ip.header.dst_addr());
    let link_dst = eth.dst_addr();
    let to_us = dst == home.gateway || dst.is_broadcast() || dst == home.lan.broadcast();
    if !to_us || (!link_dst.is_broadcast() && link_dst != home.gateway_mac) {
        return Err(Ignored::NotForUs);
    }
    // The engine decides about the client's address; only a group source is refused here.
    if src.is_broadcast() || src.is_multicast() {
        return Err(Ignored::BadSource);
    }
    let udp = UdpPacket::new_checked(ip.payload()?).map_err(|_| Ignored::Malformed(Layer::Udp))?;
    if !udp.verify_checksum(&src.into(), &dst.into()) {
        return Err(Ignored::Malformed(Layer::Udp));
    }
    // Offsets in the inner frame; the UDP length was checked against the IP payload.
    let start = ETHERNET_HEADER_LEN + ip.header_len() + UDP_HEADER_LEN;
    let end = ETHERNET_HEADER_LEN + ip.header_len() + usize::from(udp.len());
    Ok(DhcpFound {
        client_mac: eth.src_addr(),
        src,
        dst,
        src_port: udp.src_port(),
        payload: start..end,
    })
}

/// An ICMP message to the gateway: echo request -> echo reply.
fn echo(home: &Home, eth: &EthernetFrame<&[u8]>, ip: &Ipv4In<'_>) -> Result<Vec<u8>, Ignored> {
    let malformed = Ignored::Malformed(Layer::Icmp);
    let packet = Icmpv4Packet::new_checked(ip.payload()?).map_err(|_| malformed)?;
    if packet.msg_type() != Icmpv4Message::EchoRequest {
        return Err(Ignored::Unsupported(Unsupported::IcmpType(
            packet.msg_type().into(),
        )));
    }
    let caps = ChecksumCapabilities::default();
    let Icmpv4Repr::EchoRequest {
        ident,
        seq_no,
        data,
    } = Icmpv4Repr::parse(&packet, &caps).map_err(|_| malformed)?
    else {
        return Err(malformed);
    };
    let reply = Icmpv4Repr::EchoReply {
        ident,
        seq_no,
        data,
    };
    ipv4_frame(
        home,
        eth.src_addr(),
        ip.header.src_addr(),
        IpProtocol::Icmp,
        reply.buffer_len(),
        0,
        |buf| reply.emit(&mut Icmpv4Packet::new_unchecked(buf), &caps),
    )
    // The reply is no longer than the request, which fit.
    .ok_or(malformed)
}

/// The inner frame of ICMP `error` about the datagram in `eth`, if RFC 1812 allows it.
fn icmp_error_frame(
    home: &Home,
    eth: &EthernetFrame<&[u8]>,
    error: IcmpError,
) -> Result<Vec<u8>, Ignored> {
    let link_dst = eth.dst_addr();
    if !link_dst.is_unicast() {
        return Err(Ignored::NoIcmpError(Suppressed::Broadcast));
    }
    if link_dst != home.gateway_mac {
        return Err(Ignored::NotForUs);
    }
    if !eth.src_addr().is_unicast() {
        return Err(Ignored::BadSource);
    }
    let ethertype = eth.ethertype();
    if ethertype != EthernetProtocol::Ipv4 {
        return Err(Ignored::Unsupported(Unsupported::Ethertype(
            ethertype.into(),
        )));
    }
    let ip = Ipv4In::parse(eth.payload())?;
    let header = &ip.header;
    let (src, dst) = (header.src_addr(), header.dst_addr());
    if header.frag_offset() != 0 {
        return Err(Ignored::NoIcmpError(Suppressed::Fragment));
    }
    if home.is_broadcast(dst) {
        return Err(Ignored::NoIcmpError(Suppressed::Broadcast));
    }
    if src.is_unspecified() {
        return Err(Ignored::NoIcmpError(Suppressed::NoSource));
    }
    if !home.is_host(src) {
        return Err(Ignored::BadSource);
    }
    if header.next_header() == IpProtocol::Icmp
        && !ip
            .bytes
            .get(ip.header_len())
            .is_some_and(|&t| is_icmp_query(t))
    {
        return Err(Ignored::NoIcmpError(Suppressed::IcmpError));
    }
    let applies = match error {
        IcmpError::TimeExceeded => header.hop_limit() <= 1,
        IcmpError::FragmentationNeeded { next_hop_mtu } => {
            header.dont_frag() && header.total_len() > next_hop_mtu
        }
        IcmpError::AdminProhibited | IcmpError::PortUnreachable => true,
    };
    if !applies {
        return Err(Ignored::NoIcmpError(Suppressed::Inapplicable));
    }

    // The header and 8 bytes of payload at least (the whole payload if shorter), then as
    // much as fits in 576 bytes.
    let total_len = usize::from(header.total_len());
    let needed = total_len.min(ip.header_len() + MIN_QUOTED_PAYLOAD);
    if ip.bytes.len() < needed {
        return Err(Ignored::Malformed(Layer::Ipv4));
    }
    let quote = ip
        .bytes
        .get(..ip.bytes.len().min(MAX_QUOTE))
        .unwrap_or_default();
    let (message, code) = error.message();
    ipv4_frame(
        home,
        eth.src_addr(),
        src,
        IpProtocol::Icmp,
        ICMP_ERROR_HEADER_LEN + quote.len(),
        ICMP_ERROR_DSCP,
        |buf| {
            if let IcmpError::FragmentationNeeded { next_hop_mtu } = error
                && let Some(field) = buf.get_mut(NEXT_HOP_MTU)
            {
                copy(field, &next_hop_mtu.to_be_bytes());
            }
            let mut packet = Icmpv4Packet::new_unchecked(buf);
            packet.set_msg_type(message);
            packet.set_msg_code(code);
            copy(packet.data_mut(), quote);
            packet.fill_checksum();
        },
    )
    .ok_or(Ignored::Malformed(Layer::Ipv4))
}

/// Whether an ICMP type is a query (informational), so that an error may answer it. Unknown
/// and unassigned types count as errors, as in Linux (`icmp_pointers[].error`).
fn is_icmp_query(msg_type: u8) -> bool {
    // Echo reply, echo, router advertisement and solicitation, timestamp (and reply),
    // information request (and reply), address mask request (and reply).
    matches!(msg_type, 0 | 8 | 9 | 10 | 13..=18)
}

/// A received IPv4 datagram with a whole, consistent header (version, header length, total
/// length, checksum). Its payload may be cut short: the punt record may be.
struct Ipv4In<'a> {
    /// The header, over `bytes`.
    header: Ipv4Packet<&'a [u8]>,
    /// The datagram up to its total length (no Ethernet padding), or less if cut short.
    bytes: &'a [u8],
}

impl<'a> Ipv4In<'a> {
    fn parse(frame_payload: &'a [u8]) -> Result<Ipv4In<'a>, Ignored> {
        let malformed = Ignored::Malformed(Layer::Ipv4);
        if frame_payload.len() < IPV4_HEADER_LEN {
            return Err(malformed);
        }
        let raw = Ipv4Packet::new_unchecked(frame_payload);
        let header_len = usize::from(raw.header_len());
        let total_len = usize::from(raw.total_len());
        // Check the lengths before `verify_checksum`, which reads the whole header.
        if raw.version() != 4
            || header_len < IPV4_HEADER_LEN
            || frame_payload.len() < header_len
            || total_len < header_len
            || !raw.verify_checksum()
        {
            return Err(malformed);
        }
        let bytes = frame_payload
            .get(..total_len.min(frame_payload.len()))
            .ok_or(malformed)?;
        Ok(Ipv4In {
            header: Ipv4Packet::new_unchecked(bytes),
            bytes,
        })
    }

    fn header_len(&self) -> usize {
        usize::from(self.header.header_len())
    }

    fn is_fragment(&self) -> bool {
        self.header.more_frags() || self.header.frag_offset() != 0
    }

    /// The whole payload; an error if the datagram was cut short.
    fn payload(&self) -> Result<&'a [u8], Ignored> {
        if self.bytes.len() < usize::from(self.header.total_len()) {
            return Err(Ignored::Malformed(Layer::Ipv4));
        }
        self.bytes
            .get(self.header_len()..)
            .ok_or(Ignored::Malformed(Layer::Ipv4))
    }

    /// The UDP destination port, if the datagram holds that much.
    fn udp_dst_port(&self) -> Option<u16> {
        let at = self.header_len() + 2;
        let port = self.bytes.get(at..at + 2)?;
        Some(u16::from_be_bytes([*port.first()?, *port.get(1)?]))
    }
}

/// An Ethernet frame of `payload_len` payload bytes written by `fill`.
fn ethernet_frame(
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
    let mut buf = vec![0; repr.buffer_len() + payload_len];
    let mut frame = EthernetFrame::new_unchecked(&mut buf[..]);
    repr.emit(&mut frame);
    fill(frame.payload_mut());
    buf
}

/// An IPv4 frame from the gateway with `payload_len` payload bytes written by `fill`; `None`
/// if that does not fit in one datagram.
fn ipv4_frame(
    home: &Home,
    dst_mac: EthernetAddress,
    dst: Ipv4Addr,
    protocol: IpProtocol,
    payload_len: usize,
    dscp: u8,
    fill: impl FnOnce(&mut [u8]),
) -> Option<Vec<u8>> {
    if payload_len > usize::from(u16::MAX) - IPV4_HEADER_LEN {
        return None;
    }
    let repr = Ipv4Repr {
        src_addr: home.gateway,
        dst_addr: dst,
        next_header: protocol,
        payload_len,
        hop_limit: REPLY_TTL,
    };
    Some(ethernet_frame(
        home.gateway_mac,
        dst_mac,
        EthernetProtocol::Ipv4,
        repr.buffer_len() + payload_len,
        |buf| {
            let mut packet = Ipv4Packet::new_unchecked(buf);
            repr.emit(&mut packet, &ChecksumCapabilities::default());
            if dscp != 0 {
                packet.set_dscp(dscp);
                packet.fill_checksum();
            }
            fill(packet.payload_mut());
        },
    ))
}

/// Copies as much of `src` as fits into `dst` (the lengths match wherever it is used).
fn copy(dst: &mut [u8], src: &[u8]) {
    for (d, s) in dst.iter_mut().zip(src) {
        *d = *s;
    }
}

/// A token bucket's rate: the sustained packets per second and the burst.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Tokens added per second: the sustained rate.
    pub per_second: u32,
    /// The bucket's size: packets admitted at once after a quiet spell.
    pub burst: u32,
}

impl RateLimit {
    /// 200 frames per second, bursts of 2,000. The burst is sized for a home whose devices
    /// all start at once (power back in the house): measured with 100 real DHCP clients in
    /// one home (`tests/tests/mass_start.rs`), each DORA and an ARP and ping of the gateway
    /// is about 4 frames, 400 in all; IPv6 will add router solicitations, duplicate address
    /// detection and MLD reports, about 10 more per device: 2,000 covers 100 devices with
    /// room for retransmissions. The old 50/100 throttled that start (202 frames
    /// `rate_limited`, 31 of 100 devices unable to reach the gateway at first). The rate
    /// covers a settled home many times over (renewals, ARP refreshes: a frame per device
    /// every few seconds) and bounds what one flooding home costs the slow path (which
    /// handles tens of thousands of frames per second in all) to 200 frames/s.
    pub const DEFAULT: RateLimit = RateLimit {
        per_second: 200,
        burst: 2_000,
    };
}

impl Default for RateLimit {
    fn default() -> Self {
        RateLimit::DEFAULT
    }
}

/// Milli-tokens per token: the bucket counts in integers, exact for any rate.
const MILLI: u64 = 1000;

/// One token bucket. Time is the caller's monotonic clock in milliseconds; a clock that goes
/// back adds nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenBucket {
    limit: RateLimit,
    /// Tokens left, in thousandths.
    milli_tokens: u64,
    /// The latest time seen.
    last_ms: u64,
}

impl TokenBucket {
    /// A full bucket at `now_ms`.
    pub fn new(limit: RateLimit, now_ms: u64) -> TokenBucket {
        TokenBucket {
            limit,
            milli_tokens: Self::capacity(limit),
            last_ms: now_ms,
        }
    }

    /// Takes one token if there is one at `now_ms`.
    pub fn try_take(&mut self, now_ms: u64) -> bool {
        self.milli_tokens = self.level(now_ms);
        self.last_ms = self.last_ms.max(now_ms);
        match self.milli_tokens.checked_sub(MILLI) {
            Some(left) => {
                self.milli_tokens = left;
                true
            }
            None => false,
        }
    }

    /// Whether the bucket is full at `now_ms`, i.e. the same as a new one.
    pub fn is_full(&self, now_ms: u64) -> bool {
        self.level(now_ms) >= Self::capacity(self.limit)
    }

    /// Milli-tokens at `now_ms`.
    fn level(&self, now_ms: u64) -> u64 {
        // per_second tokens per 1000 ms is per_second milli-tokens per ms.
        let added = now_ms
            .saturating_sub(self.last_ms)
            .saturating_mul(u64::from(self.limit.per_second));
        self.milli_tokens
            .saturating_add(added)
            .min(Self::capacity(self.limit))
    }

    fn capacity(limit: RateLimit) -> u64 {
        u64::from(limit.burst) * MILLI
    }
}

/// A token bucket per home, so that one home's flood cannot starve the others' slow path.
///
/// Buckets are created on a home's first frame; [`HomeLimiter::prune`] drops the full ones
/// (a full bucket is the same as none), [`HomeLimiter::forget`] a removed home's.
#[derive(Debug, Clone, Default)]
pub struct HomeLimiter {
    limit: RateLimit,
    buckets: HashMap<SubscriberId, TokenBucket>,
}

impl HomeLimiter {
    /// A limiter giving every home `limit`.
    pub fn new(limit: RateLimit) -> HomeLimiter {
        HomeLimiter {
            limit,
            buckets: HashMap::new(),
        }
    }

    /// The limit every home gets.
    pub fn limit(&self) -> RateLimit {
        self.limit
    }

    /// Admits one frame from `home` at `now_ms`, or [`Ignored::RateLimited`].
    pub fn admit(&mut self, home: SubscriberId, now_ms: u64) -> Result<(), Ignored> {
        let limit = self.limit;
        let bucket = self
            .buckets
            .entry(home)
            .or_insert_with(|| TokenBucket::new(limit, now_ms));
        if bucket.try_take(now_ms) {
            Ok(())
        } else {
            Err(Ignored::RateLimited)
        }
    }

    /// Drops `home`'s bucket (the home was removed).
    pub fn forget(&mut self, home: SubscriberId) {
        self.buckets.remove(&home);
    }

    /// Drops the buckets that are full at `now_ms`: memory follows the homes that are busy.
    pub fn prune(&mut self, now_ms: u64) {
        self.buckets.retain(|_, bucket| !bucket.is_full(now_ms));
    }
}

#[cfg(test)]
mod tests {
    use lsl::encap::{Outer, VxlanEncap};
    use lsl::smoltcp::wire::{ArpHardware, IpAddress};
    use lsl::wire::vlan::Tpid;
    use lsl::{Vid, Vni};

    use super::*;

    const GW: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 1);
    const GW_MAC: EthernetAddress = EthernetAddress([0x02, 0x4e, 0x47, 0, 0, 7]);
    const HOST: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 10);
    const HOST_MAC: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0x01, 0x0a]);
    const OTHER: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 20);
    const OTHER_MAC: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0x01, 0x14]);
    const REMOTE: Ipv4Addr = Ipv4Addr::new(8, 8, 8, 8);
    const LAN_BROADCAST: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 255);
    const MULTICAST_MAC: EthernetAddress = EthernetAddress([0x01, 0x00, 0x5e, 0, 0, 0xfb]);
    const VG_VTEP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
    const BRG_VTEP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
    const VG_OUTER_MAC: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0, 0x01]);
    const BRG_OUTER_MAC: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0, 0x02]);

    fn vid(value: u16) -> Vid {
        Vid::new(value).expect("a valid VID")
    }

    /// One LSL of each kind, as the BRG sends on it.
    fn encaps() -> [Encap; 3] {
        [
            Encap::Dot1q { c_vid: vid(100) },
            Encap::QinQ {
                s_tpid: Tpid::STag,
                s_vid: vid(10),
                c_vid: vid(100),
            },
            Encap::Vxlan(VxlanEncap::new(
                Vni::new(5001).expect("a valid VNI"),
                BRG_VTEP.into(),
                VG_VTEP.into(),
                BRG_OUTER_MAC,
                VG_OUTER_MAC,
            )),
        ]
    }

    /// The LSL the vG sees a frame in `encap` on (for VXLAN, the sender's VTEP).
    fn lsl_of(encap: &Encap) -> LslId {
        match encap {
            Encap::Vxlan(vxlan) => LslId::vxlan(vxlan.vni, vxlan.local),
            other => other.lsl_id().expect("an LSL"),
        }
    }

    fn home(encap: &Encap) -> Home {
        Home {
            lsl: lsl_of(encap),
            gateway: GW,
            gateway_mac: GW_MAC,
            lan: "192.168.1.0/24".parse().expect("a prefix"),
        }
    }

    fn wrap(encap: &Encap, inner: &[u8]) -> Vec<u8> {
        encap.encapsulate(inner).expect("encapsulates")
    }

    fn opts() -> DecapOptions {
        DecapOptions::default()
    }

    fn caps() -> ChecksumCapabilities {
        ChecksumCapabilities::default()
    }

    /// `inner` for the first LSL, answered.
    fn answer_dot1q(inner: &[u8]) -> Result<Answer<'static>, Ignored> {
        let encap = encaps()[0];
        let frame = wrap(&encap, inner);
        answer(&home(&encap), &frame, &opts()).map(|a| match a {
            Answer::Reply(reply) => Answer::Reply(reply),
            Answer::Dhcp(_) => panic!("not a DHCP case"),
        })
    }

    fn expect_reply(result: Result<Answer<'_>, Ignored>) -> Reply {
        match result {
            Ok(Answer::Reply(reply)) => reply,
            other => panic!("expected a reply, got {other:?}"),
        }
    }

    // --- inner frames, built with smoltcp ---

    fn ethernet(
        src: EthernetAddress,
        dst: EthernetAddress,
        ethertype: EthernetProtocol,
        payload: &[u8],
    ) -> Vec<u8> {
        ethernet_frame(src, dst, ethertype, payload.len(), |buf| {
            buf.copy_from_slice(payload)
        })
    }

    struct ArpFields {
        operation: ArpOperation,
        sender_mac: EthernetAddress,
        sender_ip: Ipv4Addr,
        target_ip: Ipv4Addr,
        link_dst: EthernetAddress,
    }

    fn arp_request(sender_ip: Ipv4Addr, target_ip: Ipv4Addr) -> ArpFields {
        ArpFields {
            operation: ArpOperation::Request,
            sender_mac: HOST_MAC,
            sender_ip,
            target_ip,
            link_dst: EthernetAddress::BROADCAST,
        }
    }

    fn arp_frame(fields: &ArpFields) -> Vec<u8> {
        let repr = ArpRepr::EthernetIpv4 {
            operation: fields.operation,
            source_hardware_addr: fields.sender_mac,
            source_protocol_addr: fields.sender_ip,
            target_hardware_addr: EthernetAddress([0; 6]),
            target_protocol_addr: fields.target_ip,
        };
        let mut arp = vec![0; repr.buffer_len()];
        repr.emit(&mut ArpPacket::new_unchecked(&mut arp));
        ethernet(HOST_MAC, fields.link_dst, EthernetProtocol::Arp, &arp)
    }

    /// An IPv4 packet with `l4` as its payload.
    fn ipv4_packet(
        src: Ipv4Addr,
        dst: Ipv4Addr,
        protocol: IpProtocol,
        ttl: u8,
        l4: &[u8],
    ) -> Vec<u8> {
        let repr = Ipv4Repr {
            src_addr: src,
            dst_addr: dst,
            next_header: protocol,
            payload_len: l4.len(),
            hop_limit: ttl,
        };
        let mut buf = vec![0; repr.buffer_len() + l4.len()];
        let mut packet = Ipv4Packet::new_unchecked(&mut buf[..]);
        repr.emit(&mut packet, &caps());
        packet.payload_mut().copy_from_slice(l4);
        buf
    }

    /// An IPv4 frame from HOST's MAC to the gateway MAC.
    fn ip_frame(src: Ipv4Addr, dst: Ipv4Addr, protocol: IpProtocol, ttl: u8, l4: &[u8]) -> Vec<u8> {
        let packet = ipv4_packet(src, dst, protocol, ttl, l4);
        ethernet(HOST_MAC, GW_MAC, EthernetProtocol::Ipv4, &packet)
    }

    /// Changes the IPv4 header of an inner frame and fixes its checksum.
    fn edit_ip(frame: &mut [u8], edit: impl FnOnce(&mut Ipv4Packet<&mut [u8]>)) {
        let mut packet = Ipv4Packet::new_unchecked(&mut frame[ETHERNET_HEADER_LEN..]);
        edit(&mut packet);
        packet.fill_checksum();
    }

    fn icmp_bytes(repr: &Icmpv4Repr<'_>) -> Vec<u8> {
        let mut buf = vec![0; repr.buffer_len()];
        repr.emit(&mut Icmpv4Packet::new_unchecked(&mut buf[..]), &caps());
        buf
    }

    fn echo_request(data: &[u8]) -> Vec<u8> {
        icmp_bytes(&Icmpv4Repr::EchoRequest {
            ident: 0x1234,
            seq_no: 7,
            data,
        })
    }

    fn udp_bytes(src: (Ipv4Addr, u16), dst: (Ipv4Addr, u16), payload: &[u8]) -> Vec<u8> {
        let repr = UdpRepr {
            src_port: src.1,
            dst_port: dst.1,
        };
        let mut buf = vec![0; repr.header_len() + payload.len()];
        repr.emit(
            &mut UdpPacket::new_unchecked(&mut buf[..]),
            &src.0.into(),
            &dst.0.into(),
            payload.len(),
            |p| p.copy_from_slice(payload),
            &caps(),
        );
        buf
    }

    fn echo_frame() -> Vec<u8> {
        ip_frame(HOST, GW, IpProtocol::Icmp, 64, &echo_request(&[0x42; 32]))
    }

    /// A traceroute probe through the gateway with TTL `ttl` and `len` bytes of UDP payload.
    fn transit_frame(ttl: u8, len: usize) -> Vec<u8> {
        let payload: Vec<u8> = (0..len).map(|i| i as u8).collect();
        let udp = udp_bytes((HOST, 40000), (REMOTE, 33434), &payload);
        ip_frame(HOST, REMOTE, IpProtocol::Udp, ttl, &udp)
    }

    fn bootp() -> Vec<u8> {
        let mut bootp = vec![0u8; 240];
        bootp[0] = 1; // BOOTREQUEST
        bootp[1] = 1;
        bootp[2] = 6;
        bootp[28..34].copy_from_slice(&HOST_MAC.0);
        bootp[236..240].copy_from_slice(&[99, 130, 83, 99]);
        bootp.extend_from_slice(&[53, 1, 1, 255]);
        bootp
    }

    fn dhcp_discover() -> Vec<u8> {
        let udp = udp_bytes(
            (Ipv4Addr::UNSPECIFIED, 68),
            (Ipv4Addr::BROADCAST, 67),
            &bootp(),
        );
        let packet = ipv4_packet(
            Ipv4Addr::UNSPECIFIED,
            Ipv4Addr::BROADCAST,
            IpProtocol::Udp,
            64,
            &udp,
        );
        ethernet(
            HOST_MAC,
            EthernetAddress::BROADCAST,
            EthernetProtocol::Ipv4,
            &packet,
        )
    }

    // --- checks on replies ---

    /// Decapsulates a reply to a frame sent in `encap` and checks that it is on the same LSL:
    /// the same tags, or the same VNI with the outer addresses swapped.
    fn unwrap_reply(encap: &Encap, frame: &[u8]) -> Vec<u8> {
        let reply = decapsulate(frame, &opts()).expect("the reply decapsulates");
        match (encap, reply.outer) {
            (Encap::Vxlan(request), Outer::Vxlan(outer)) => {
                assert_eq!(reply.lsl, Some(LslId::vxlan(request.vni, request.remote)));
                assert_eq!((outer.src, outer.dst), (request.remote, request.local));
                assert_eq!(
                    (outer.src_mac, outer.dst_mac),
                    (request.remote_mac, request.local_mac)
                );
                assert_eq!(outer.dst_port, request.dst_port);
                assert!(FLOW_PORTS.contains(&outer.src_port));
                assert_ne!(outer.udp_checksum, 0, "the outer UDP checksum is computed");
            }
            (Encap::Dot1q { .. } | Encap::QinQ { .. }, Outer::Vlan(tags)) => {
                assert_eq!(reply.lsl, Some(lsl_of(encap)));
                assert_eq!(reply.reply_encap(), *encap, "same tags");
                assert!(tags.tags().iter().all(|tag| tag.pcp == 0));
            }
            (encap, outer) => panic!("reply in {outer:?} to a request in {encap:?}"),
        }
        reply.inner.into_owned()
    }

    const FLOW_PORTS: std::ops::RangeInclusive<u16> = lsl::encap::FLOW_PORT_RANGE;

    /// Checks the Ethernet and IPv4 headers of a reply from the gateway to HOST; returns the
    /// IPv4 payload.
    fn check_ipv4_reply(inner: &[u8], protocol: IpProtocol, dscp: u8) -> Vec<u8> {
        let eth = EthernetFrame::new_checked(inner).expect("an Ethernet frame");
        assert_eq!(
            (eth.src_addr(), eth.dst_addr(), eth.ethertype()),
            (GW_MAC, HOST_MAC, EthernetProtocol::Ipv4)
        );
        let ip = Ipv4Packet::new_checked(eth.payload()).expect("an IPv4 packet");
        assert!(ip.verify_checksum());
        assert_eq!(ip.dscp(), dscp);
        assert_eq!(
            ip.total_len() as usize,
            eth.payload().len(),
            "no trailing bytes"
        );
        let repr = Ipv4Repr::parse(&ip, &caps()).expect("a valid IPv4 header");
        assert_eq!(
            repr,
            Ipv4Repr {
                src_addr: GW,
                dst_addr: HOST,
                next_header: protocol,
                payload_len: repr.payload_len,
                hop_limit: REPLY_TTL,
            }
        );
        ip.payload().to_vec()
    }

    /// Checks an ICMP error about `original` (an inner frame) and returns its ICMP bytes.
    fn check_icmp_error(
        inner: &[u8],
        original: &[u8],
        message: Icmpv4Message,
        code: u8,
    ) -> Vec<u8> {
        let icmp = check_ipv4_reply(inner, IpProtocol::Icmp, ICMP_ERROR_DSCP);
        let packet = Icmpv4Packet::new_checked(&icmp[..]).expect("an ICMP message");
        assert!(packet.verify_checksum());
        assert_eq!((packet.msg_type(), packet.msg_code()), (message, code));
        let original_ip = &original[ETHERNET_HEADER_LEN..];
        let quote = packet.data();
        assert_eq!(quote.len(), original_ip.len().min(MAX_QUOTE));
        assert_eq!(quote, &original_ip[..quote.len()], "a verbatim quote");
        assert!(ICMP_ERROR_HEADER_LEN + IPV4_HEADER_LEN + quote.len() <= ICMP_ERROR_MAX_LEN);
        // The quoted header is the original's; smoltcp's Repr reads a quote back only when
        // it holds the whole original datagram (it checks the quoted total length).
        let original_header = Ipv4Packet::new_unchecked(original_ip);
        let quoted_header = Ipv4Packet::new_unchecked(quote);
        assert!(quoted_header.verify_checksum());
        assert_eq!(
            (quoted_header.src_addr(), quoted_header.dst_addr()),
            (original_header.src_addr(), original_header.dst_addr())
        );
        if quote.len() == usize::from(original_header.total_len()) {
            let header = match Icmpv4Repr::parse(&packet, &caps()).expect("smoltcp parses it") {
                Icmpv4Repr::DstUnreachable { header, .. }
                | Icmpv4Repr::TimeExceeded { header, .. } => header,
                other => panic!("not an error: {other:?}"),
            };
            assert_eq!(
                (header.src_addr, header.dst_addr, header.next_header),
                (
                    original_header.src_addr(),
                    original_header.dst_addr(),
                    original_header.next_header()
                )
            );
        }
        icmp
    }

    // --- ARP ---

    #[test]
    fn arp_request_for_the_gateway_is_answered_on_every_lsl() {
        for encap in encaps() {
            for link_dst in [EthernetAddress::BROADCAST, GW_MAC] {
                let request = arp_frame(&ArpFields {
                    link_dst,
                    ..arp_request(HOST, GW)
                });
                let frame = wrap(&encap, &request);
                let reply = expect_reply(answer(&home(&encap), &frame, &opts()));
                assert_eq!(reply.kind, ReplyKind::Arp);
                let inner = unwrap_reply(&encap, &reply.frame);
                let eth = EthernetFrame::new_checked(&inner[..]).expect("Ethernet");
                assert_eq!(
                    (eth.src_addr(), eth.dst_addr(), eth.ethertype()),
                    (GW_MAC, HOST_MAC, EthernetProtocol::Arp),
                    "unicast to the requester, from the gateway MAC"
                );
                let arp = ArpPacket::new_checked(eth.payload()).expect("ARP");
                assert_eq!(
                    ArpRepr::parse(&arp).expect("Ethernet/IPv4 ARP"),
                    ArpRepr::EthernetIpv4 {
                        operation: ArpOperation::Reply,
                        source_hardware_addr: GW_MAC,
                        source_protocol_addr: GW,
                        target_hardware_addr: HOST_MAC,
                        target_protocol_addr: HOST,
                    }
                );
            }
        }
    }

    #[test]
    fn arp_probe_for_the_gateway_is_answered() {
        // RFC 5227: a host probing the gateway address learns it is taken.
        let probe = arp_frame(&arp_request(Ipv4Addr::UNSPECIFIED, GW));
        let reply = expect_reply(answer_dot1q(&probe));
        let inner = unwrap_reply(&encaps()[0], &reply.frame);
        let eth = EthernetFrame::new_checked(&inner[..]).expect("Ethernet");
        assert_eq!(eth.dst_addr(), HOST_MAC);
        let arp = ArpPacket::new_checked(eth.payload()).expect("ARP");
        assert_eq!(
            ArpRepr::parse(&arp).expect("ARP"),
            ArpRepr::EthernetIpv4 {
                operation: ArpOperation::Reply,
                source_hardware_addr: GW_MAC,
                source_protocol_addr: GW,
                target_hardware_addr: HOST_MAC,
                target_protocol_addr: Ipv4Addr::UNSPECIFIED,
            }
        );
        // A probe for another address is the other host's to answer.
        let other = arp_frame(&arp_request(Ipv4Addr::UNSPECIFIED, OTHER));
        assert_eq!(answer_dot1q(&other), Err(Ignored::NotForUs));
    }

    #[test]
    fn padded_arp_request_is_answered() {
        let mut request = arp_frame(&arp_request(HOST, GW));
        request.resize(60, 0);
        let reply = expect_reply(answer_dot1q(&request));
        let inner = unwrap_reply(&encaps()[0], &reply.frame);
        assert_eq!(inner.len(), ETHERNET_HEADER_LEN + 28, "no padding copied");
    }

    #[test]
    fn arp_that_is_not_a_request_for_the_gateway_is_ignored() {
        let binding = ArpBinding {
            mac: HOST_MAC,
            ip: HOST,
        };
        let cases = [
            (
                "request for another host",
                arp_request(HOST, OTHER),
                Ignored::NotForUs,
            ),
            (
                "unicast to another MAC",
                ArpFields {
                    link_dst: OTHER_MAC,
                    ..arp_request(HOST, GW)
                },
                Ignored::NotForUs,
            ),
            (
                "gratuitous request",
                arp_request(HOST, HOST),
                Ignored::ArpAnnouncement(binding),
            ),
            (
                "reply",
                ArpFields {
                    operation: ArpOperation::Reply,
                    link_dst: GW_MAC,
                    ..arp_request(HOST, GW)
                },
                Ignored::ArpAnnouncement(binding),
            ),
            (
                "gratuitous reply",
                ArpFields {
                    operation: ArpOperation::Reply,
                    ..arp_request(HOST, HOST)
                },
                Ignored::ArpAnnouncement(binding),
            ),
            (
                "sender outside the LAN",
                arp_request(Ipv4Addr::new(10, 9, 9, 9), GW),
                Ignored::BadSource,
            ),
            (
                "sender is the LAN broadcast",
                arp_request(LAN_BROADCAST, GW),
                Ignored::BadSource,
            ),
            (
                "sender is the LAN network",
                arp_request(Ipv4Addr::new(192, 168, 1, 0), GW),
                Ignored::BadSource,
            ),
            (
                "reply from 0.0.0.0",
                ArpFields {
                    operation: ArpOperation::Reply,
                    ..arp_request(Ipv4Addr::UNSPECIFIED, GW)
                },
                Ignored::BadSource,
            ),
            (
                "group sender MAC",
                ArpFields {
                    sender_mac: MULTICAST_MAC,
                    ..arp_request(HOST, GW)
                },
                Ignored::BadSource,
            ),
            (
                "another station claims the gateway address",
                arp_request(GW, GW),
                Ignored::GatewayConflict(ArpBinding {
                    mac: HOST_MAC,
                    ip: GW,
                }),
            ),
            (
                "RARP-style operation",
                ArpFields {
                    operation: ArpOperation::Unknown(3),
                    ..arp_request(HOST, GW)
                },
                Ignored::Unsupported(Unsupported::ArpOperation(3)),
            ),
        ];
        for (what, fields, expected) in cases {
            for encap in encaps() {
                let frame = wrap(&encap, &arp_frame(&fields));
                assert_eq!(
                    answer(&home(&encap), &frame, &opts()),
                    Err(expected),
                    "{what}"
                );
            }
        }

        let mut group_source = arp_frame(&arp_request(HOST, GW));
        group_source[6..12].copy_from_slice(&EthernetAddress::BROADCAST.0);
        assert_eq!(answer_dot1q(&group_source), Err(Ignored::BadSource));

        let mut ieee802 = arp_frame(&arp_request(HOST, GW));
        ArpPacket::new_unchecked(&mut ieee802[ETHERNET_HEADER_LEN..])
            .set_hardware_type(ArpHardware::Unknown(6));
        assert_eq!(
            answer_dot1q(&ieee802),
            Err(Ignored::Unsupported(Unsupported::ArpFormat))
        );
    }

    // --- ICMP echo and other traffic to the gateway ---

    #[test]
    fn echo_request_to_the_gateway_is_answered_on_every_lsl() {
        let data: Vec<u8> = (0..56).collect();
        let request = ip_frame(HOST, GW, IpProtocol::Icmp, 64, &echo_request(&data));
        for encap in encaps() {
            let frame = wrap(&encap, &request);
            let reply = expect_reply(answer(&home(&encap), &frame, &opts()));
            assert_eq!(reply.kind, ReplyKind::EchoReply);
            let inner = unwrap_reply(&encap, &reply.frame);
            let icmp = check_ipv4_reply(&inner, IpProtocol::Icmp, 0);
            let packet = Icmpv4Packet::new_checked(&icmp[..]).expect("ICMP");
            assert!(packet.verify_checksum());
            assert_eq!(
                Icmpv4Repr::parse(&packet, &caps()).expect("a valid echo reply"),
                Icmpv4Repr::EchoReply {
                    ident: 0x1234,
                    seq_no: 7,
                    data: &data,
                }
            );
        }
    }

    #[test]
    fn padded_empty_echo_request_gets_an_empty_reply() {
        let mut request = ip_frame(HOST, GW, IpProtocol::Icmp, 1, &echo_request(&[]));
        request.resize(60, 0xee);
        let reply = expect_reply(answer_dot1q(&request));
        let inner = unwrap_reply(&encaps()[0], &reply.frame);
        let icmp = check_ipv4_reply(&inner, IpProtocol::Icmp, 0);
        assert_eq!(icmp.len(), 8, "the Ethernet padding is not echoed");
    }

    #[test]
    fn udp_to_the_gateway_gets_port_unreachable() {
        let udp = udp_bytes((HOST, 50000), (GW, 53), b"a DNS query, say");
        let request = ip_frame(HOST, GW, IpProtocol::Udp, 64, &udp);
        for encap in encaps() {
            let frame = wrap(&encap, &request);
            let reply = expect_reply(answer(&home(&encap), &frame, &opts()));
            assert_eq!(reply.kind, ReplyKind::IcmpError(IcmpError::PortUnreachable));
            let inner = unwrap_reply(&encap, &reply.frame);
            check_icmp_error(
                &inner,
                &request,
                Icmpv4Message::DstUnreachable,
                Icmpv4DstUnreachable::PortUnreachable.into(),
            );
        }
    }

    #[test]
    fn other_traffic_to_the_gateway_is_ignored() {
        let echo = echo_request(&[1, 2, 3, 4]);
        let mut bad_icmp_checksum = ip_frame(HOST, GW, IpProtocol::Icmp, 64, &echo);
        bad_icmp_checksum[ETHERNET_HEADER_LEN + IPV4_HEADER_LEN + 8] ^= 0x01;
        let mut bad_ip_checksum = echo_frame();
        bad_ip_checksum[ETHERNET_HEADER_LEN + 10] ^= 0x01;
        let mut ipv6_in_ipv4 = echo_frame();
        edit_ip(&mut ipv6_in_ipv4, |ip| ip.set_version(6));
        let mut short_ihl = echo_frame();
        edit_ip(&mut short_ihl, |ip| ip.set_header_len(16));
        let mut long_total = echo_frame();
        edit_ip(&mut long_total, |ip| ip.set_total_len(1000));
        let mut first_fragment = echo_frame();
        edit_ip(&mut first_fragment, |ip| ip.set_more_frags(true));
        let mut later_fragment = echo_frame();
        edit_ip(&mut later_fragment, |ip| ip.set_frag_offset(1480));
        let mut to_another_mac = echo_frame();
        to_another_mac[..6].copy_from_slice(&OTHER_MAC.0);
        let mut echo_code_1 = echo.clone();
        echo_code_1[1] = 1;
        let mut timestamp = icmp_bytes(&Icmpv4Repr::EchoRequest {
            ident: 1,
            seq_no: 1,
            data: &[0; 12],
        });
        timestamp[0] = 13;
        let tcp_syn = [0u8; 20];

        let cases: [(&str, Vec<u8>, Ignored); 15] = [
            (
                "bad ICMP checksum",
                bad_icmp_checksum,
                Ignored::Malformed(Layer::Icmp),
            ),
            (
                "bad IPv4 checksum",
                bad_ip_checksum,
                Ignored::Malformed(Layer::Ipv4),
            ),
            ("version 6", ipv6_in_ipv4, Ignored::Malformed(Layer::Ipv4)),
            ("IHL 4", short_ihl, Ignored::Malformed(Layer::Ipv4)),
            (
                "total length beyond the frame",
                long_total,
                Ignored::Malformed(Layer::Ipv4),
            ),
            ("first fragment", first_fragment, Ignored::Fragment),
            ("later fragment", later_fragment, Ignored::Fragment),
            ("another MAC", to_another_mac, Ignored::NotForUs),
            (
                "echo code 1",
                ip_frame(HOST, GW, IpProtocol::Icmp, 64, &echo_code_1),
                Ignored::Malformed(Layer::Icmp),
            ),
            (
                "timestamp request",
                ip_frame(HOST, GW, IpProtocol::Icmp, 64, &timestamp),
                Ignored::Unsupported(Unsupported::IcmpType(13)),
            ),
            (
                "echo reply",
                ip_frame(
                    HOST,
                    GW,
                    IpProtocol::Icmp,
                    64,
                    &icmp_bytes(&Icmpv4Repr::EchoReply {
                        ident: 1,
                        seq_no: 1,
                        data: &[],
                    }),
                ),
                Ignored::Unsupported(Unsupported::IcmpType(0)),
            ),
            (
                "TCP",
                ip_frame(HOST, GW, IpProtocol::Tcp, 64, &tcp_syn),
                Ignored::Unsupported(Unsupported::Protocol(6)),
            ),
            (
                "from outside the LAN",
                ip_frame(Ipv4Addr::new(10, 9, 9, 9), GW, IpProtocol::Icmp, 64, &echo),
                Ignored::BadSource,
            ),
            (
                "from 0.0.0.0",
                ip_frame(Ipv4Addr::UNSPECIFIED, GW, IpProtocol::Icmp, 64, &echo),
                Ignored::BadSource,
            ),
            (
                "from the gateway address",
                ip_frame(GW, GW, IpProtocol::Icmp, 64, &echo),
                Ignored::BadSource,
            ),
        ];
        for (what, inner, expected) in cases {
            for encap in encaps() {
                let frame = wrap(&encap, &inner);
                assert_eq!(
                    answer(&home(&encap), &frame, &opts()),
                    Err(expected),
                    "{what}"
                );
            }
        }
        let mut group_source = echo_frame();
        group_source[6..12].copy_from_slice(&MULTICAST_MAC.0);
        assert_eq!(answer_dot1q(&group_source), Err(Ignored::BadSource));
    }

    #[test]
    fn ipv6_and_other_ethertypes_are_unsupported() {
        let ipv6 = ethernet(HOST_MAC, GW_MAC, EthernetProtocol::Ipv6, &[0x60; 40]);
        assert_eq!(
            answer_dot1q(&ipv6),
            Err(Ignored::Unsupported(Unsupported::Ipv6))
        );
        let lldp = ethernet(
            HOST_MAC,
            GW_MAC,
            EthernetProtocol::Unknown(0x88cc),
            &[0; 46],
        );
        assert_eq!(
            answer_dot1q(&lldp),
            Err(Ignored::Unsupported(Unsupported::Ethertype(0x88cc)))
        );
    }

    // --- ICMP errors ---

    #[test]
    fn ttl_expiring_at_the_gateway_gets_time_exceeded_on_every_lsl() {
        for ttl in [0, 1] {
            let request = transit_frame(ttl, 32);
            for encap in encaps() {
                let frame = wrap(&encap, &request);
                let reply = expect_reply(answer(&home(&encap), &frame, &opts()));
                assert_eq!(reply.kind, ReplyKind::IcmpError(IcmpError::TimeExceeded));
                let inner = unwrap_reply(&encap, &reply.frame);
                let icmp = check_icmp_error(
                    &inner,
                    &request,
                    Icmpv4Message::TimeExceeded,
                    Icmpv4TimeExceeded::TtlExpired.into(),
                );
                assert_eq!(&icmp[4..8], &[0; 4], "the unused word is zero");
                // The same through the explicit builder.
                let built = icmp_error(&home(&encap), &frame, &opts(), IcmpError::TimeExceeded)
                    .expect("time exceeded");
                assert_eq!(built, reply);
            }
        }
        // TTL 2 leaves with TTL 1: the fast path's, not ours.
        assert_eq!(answer_dot1q(&transit_frame(2, 32)), Err(Ignored::NotForUs));
    }

    #[test]
    fn icmp_errors_quote_up_to_576_bytes() {
        let request = transit_frame(1, 1400);
        let reply = expect_reply(answer_dot1q(&request));
        let inner = unwrap_reply(&encaps()[0], &reply.frame);
        let icmp = check_icmp_error(&inner, &request, Icmpv4Message::TimeExceeded, 0);
        assert_eq!(icmp.len(), MAX_QUOTE + ICMP_ERROR_HEADER_LEN);
        assert_eq!(IPV4_HEADER_LEN + icmp.len(), ICMP_ERROR_MAX_LEN);

        // A datagram cut short by the punt record (the IPv4 header says 1428 bytes) is
        // quoted as far as it goes; 8 bytes of payload are the least.
        for cut in [100, ETHERNET_HEADER_LEN + IPV4_HEADER_LEN + 8] {
            let reply = expect_reply(answer_dot1q(&request[..cut]));
            let inner = unwrap_reply(&encaps()[0], &reply.frame);
            check_icmp_error(&inner, &request[..cut], Icmpv4Message::TimeExceeded, 0);
        }
        let too_short = &request[..ETHERNET_HEADER_LEN + IPV4_HEADER_LEN + 7];
        assert_eq!(
            answer_dot1q(too_short),
            Err(Ignored::Malformed(Layer::Ipv4))
        );
        // A datagram with less than 8 bytes of payload is quoted whole.
        let tiny = ip_frame(HOST, REMOTE, IpProtocol::Unknown(253), 1, &[1, 2, 3]);
        let reply = expect_reply(answer_dot1q(&tiny));
        let inner = unwrap_reply(&encaps()[0], &reply.frame);
        let icmp = check_ipv4_reply(&inner, IpProtocol::Icmp, ICMP_ERROR_DSCP);
        assert_eq!(&icmp[8..], &tiny[ETHERNET_HEADER_LEN..]);
    }

    #[test]
    fn fragmentation_needed_carries_the_next_hop_mtu() {
        let request = transit_frame(64, 1400); // smoltcp sets DF
        let error = IcmpError::FragmentationNeeded { next_hop_mtu: 1280 };
        for encap in encaps() {
            let frame = wrap(&encap, &request);
            let reply = icmp_error(&home(&encap), &frame, &opts(), error).expect("an error");
            assert_eq!(reply.kind, ReplyKind::IcmpError(error));
            let inner = unwrap_reply(&encap, &reply.frame);
            let icmp = check_icmp_error(
                &inner,
                &request,
                Icmpv4Message::DstUnreachable,
                Icmpv4DstUnreachable::FragRequired.into(),
            );
            assert_eq!(&icmp[4..8], &[0, 0, 0x05, 0x00], "RFC 1191 next-hop MTU");
        }
        let fits = IcmpError::FragmentationNeeded { next_hop_mtu: 1500 };
        assert_eq!(
            icmp_error(
                &home(&encaps()[0]),
                &wrap(&encaps()[0], &request),
                &opts(),
                fits
            ),
            Err(Ignored::NoIcmpError(Suppressed::Inapplicable))
        );
        let mut no_df = transit_frame(64, 1400);
        edit_ip(&mut no_df, |ip| ip.set_dont_frag(false));
        assert_eq!(
            icmp_error(
                &home(&encaps()[0]),
                &wrap(&encaps()[0], &no_df),
                &opts(),
                error
            ),
            Err(Ignored::NoIcmpError(Suppressed::Inapplicable))
        );
    }

    #[test]
    fn admin_prohibited_for_a_refused_mapping() {
        let syn = [0u8; 20];
        let request = ip_frame(HOST, REMOTE, IpProtocol::Tcp, 64, &syn);
        for encap in encaps() {
            let frame = wrap(&encap, &request);
            let reply = icmp_error(&home(&encap), &frame, &opts(), IcmpError::AdminProhibited)
                .expect("an error");
            let inner = unwrap_reply(&encap, &reply.frame);
            check_icmp_error(
                &inner,
                &request,
                Icmpv4Message::DstUnreachable,
                Icmpv4DstUnreachable::CommProhibited.into(),
            );
        }
    }

    #[test]
    fn icmp_errors_are_suppressed_where_rfc_1812_says() {
        let udp = udp_bytes((HOST, 40000), (REMOTE, 33434), &[0; 16]);
        let unreachable = icmp_bytes(&Icmpv4Repr::DstUnreachable {
            reason: Icmpv4DstUnreachable::PortUnreachable,
            header: Ipv4Repr {
                src_addr: REMOTE,
                dst_addr: HOST,
                next_header: IpProtocol::Udp,
                payload_len: 8,
                hop_limit: 50,
            },
            data: &[0; 8],
        });
        let mut later_fragment = transit_frame(1, 32);
        edit_ip(&mut later_fragment, |ip| ip.set_frag_offset(1480));
        let mut link_broadcast = transit_frame(1, 32);
        link_broadcast[..6].copy_from_slice(&EthernetAddress::BROADCAST.0);
        let mut link_multicast = transit_frame(1, 32);
        link_multicast[..6].copy_from_slice(&MULTICAST_MAC.0);
        let mut to_another_mac = transit_frame(1, 32);
        to_another_mac[..6].copy_from_slice(&OTHER_MAC.0);
        let ttl1 = |src, dst, protocol, l4: &[u8]| ip_frame(src, dst, protocol, 1, l4);
        let suppressed = |why| Err(Ignored::NoIcmpError(why));

        let cases: [(&str, Vec<u8>, Result<(), Ignored>); 14] = [
            ("plain", transit_frame(1, 32), Ok(())),
            (
                "an ICMP query may get an error",
                ttl1(HOST, REMOTE, IpProtocol::Icmp, &echo_request(&[0; 8])),
                Ok(()),
            ),
            (
                "an ICMP error",
                ttl1(HOST, REMOTE, IpProtocol::Icmp, &unreachable),
                suppressed(Suppressed::IcmpError),
            ),
            (
                "ICMP without a type",
                ttl1(HOST, REMOTE, IpProtocol::Icmp, &[]),
                suppressed(Suppressed::IcmpError),
            ),
            (
                "later fragment",
                later_fragment,
                suppressed(Suppressed::Fragment),
            ),
            (
                "link broadcast",
                link_broadcast,
                suppressed(Suppressed::Broadcast),
            ),
            (
                "link multicast",
                link_multicast,
                suppressed(Suppressed::Broadcast),
            ),
            (
                "limited broadcast",
                ttl1(HOST, Ipv4Addr::BROADCAST, IpProtocol::Udp, &udp),
                suppressed(Suppressed::Broadcast),
            ),
            (
                "directed broadcast",
                ttl1(HOST, LAN_BROADCAST, IpProtocol::Udp, &udp),
                suppressed(Suppressed::Broadcast),
            ),
            (
                "multicast",
                ttl1(HOST, Ipv4Addr::new(224, 0, 0, 251), IpProtocol::Udp, &udp),
                suppressed(Suppressed::Broadcast),
            ),
            (
                "from 0.0.0.0",
                ttl1(Ipv4Addr::UNSPECIFIED, REMOTE, IpProtocol::Udp, &udp),
                suppressed(Suppressed::NoSource),
            ),
            (
                "from outside the LAN",
                ttl1(Ipv4Addr::new(10, 9, 9, 9), REMOTE, IpProtocol::Udp, &udp),
                Err(Ignored::BadSource),
            ),
            (
                "from the gateway address",
                ttl1(GW, REMOTE, IpProtocol::Udp, &udp),
                Err(Ignored::BadSource),
            ),
            ("to another MAC", to_another_mac, Err(Ignored::NotForUs)),
        ];
        for (what, inner, expected) in cases {
            for encap in encaps() {
                let frame = wrap(&encap, &inner);
                let home = home(&encap);
                for error in [
                    IcmpError::TimeExceeded,
                    IcmpError::AdminProhibited,
                    IcmpError::PortUnreachable,
                ] {
                    let built = icmp_error(&home, &frame, &opts(), error).map(|_| ());
                    assert_eq!(built, expected, "{what}: {error:?}");
                }
                // answer() sends time exceeded on its own for the same frames.
                let answered = answer(&home, &frame, &opts()).map(|_| ());
                assert_eq!(answered, expected, "{what}: answer");
            }
        }
        assert_eq!(
            icmp_error(
                &home(&encaps()[0]),
                &wrap(&encaps()[0], &transit_frame(2, 32)),
                &opts(),
                IcmpError::TimeExceeded
            ),
            Err(Ignored::NoIcmpError(Suppressed::Inapplicable))
        );
        let ipv6 = ethernet(HOST_MAC, GW_MAC, EthernetProtocol::Ipv6, &[0x60; 40]);
        assert_eq!(
            icmp_error(
                &home(&encaps()[0]),
                &wrap(&encaps()[0], &ipv6),
                &opts(),
                IcmpError::AdminProhibited
            ),
            Err(Ignored::Unsupported(Unsupported::Ethertype(0x86dd)))
        );
    }

    // --- DHCP ---

    #[test]
    fn dhcp_goes_to_the_engine_on_every_lsl() {
        for encap in encaps() {
            let frame = wrap(&encap, &dhcp_discover());
            let Ok(Answer::Dhcp(dhcp)) = answer(&home(&encap), &frame, &opts()) else {
                panic!("a DHCP request expected in {encap:?}");
            };
            assert_eq!(dhcp.payload(), &bootp()[..]);
            assert_eq!(dhcp.client_mac, HOST_MAC);
            assert_eq!(
                (dhcp.src, dhcp.dst, dhcp.src_port),
                (Ipv4Addr::UNSPECIFIED, Ipv4Addr::BROADCAST, 68)
            );
            assert_eq!(dhcp.decapsulated.inner, &dhcp_discover()[..]);
            assert_eq!(dhcp.decapsulated.lsl, Some(lsl_of(&encap)));
            // A reply built with the engine's payload goes back on the same LSL.
            let reply = udp_from_gateway(
                &home(&encap),
                &dhcp.decapsulated.reply_encap(),
                &GatewayDatagram {
                    dst_mac: EthernetAddress::BROADCAST,
                    dst: Ipv4Addr::BROADCAST,
                    src_port: 67,
                    dst_port: 68,
                    payload: b"an OFFER",
                },
            )
            .expect("builds");
            let inner = unwrap_reply(&encap, &reply);
            let eth = EthernetFrame::new_checked(&inner[..]).expect("Ethernet");
            assert_eq!(
                (eth.src_addr(), eth.dst_addr()),
                (GW_MAC, EthernetAddress::BROADCAST)
            );
            let ip = Ipv4Packet::new_checked(eth.payload()).expect("IPv4");
            assert_eq!(
                Ipv4Repr::parse(&ip, &caps()).expect("checksum and all"),
                Ipv4Repr {
                    src_addr: GW,
                    dst_addr: Ipv4Addr::BROADCAST,
                    next_header: IpProtocol::Udp,
                    payload_len: 8 + 8,
                    hop_limit: REPLY_TTL,
                }
            );
            let udp = UdpPacket::new_checked(ip.payload()).expect("UDP");
            let (src, dst): (IpAddress, IpAddress) = (GW.into(), Ipv4Addr::BROADCAST.into());
            assert_ne!(udp.checksum(), 0);
            assert!(udp.verify_checksum(&src, &dst));
            assert_eq!((udp.src_port(), udp.dst_port()), (67, 68));
            assert_eq!(udp.payload(), b"an OFFER");
        }
    }

    #[test]
    fn dhcp_checks() {
        let renew = |dst: Ipv4Addr| {
            let udp = udp_bytes((HOST, 68), (dst, 67), &bootp());
            ip_frame(HOST, dst, IpProtocol::Udp, 64, &udp)
        };
        let dhcp = |frame: &[u8]| {
            let encap = encaps()[0];
            let wrapped = wrap(&encap, frame);
            answer(&home(&encap), &wrapped, &opts()).map(|answer| match answer {
                Answer::Dhcp(dhcp) => (dhcp.src, dhcp.dst, dhcp.payload().to_vec()),
                Answer::Reply(reply) => panic!("unexpected reply {reply:?}"),
            })
        };
        assert_eq!(dhcp(&renew(GW)), Ok((HOST, GW, bootp())));
        assert_eq!(
            dhcp(&renew(LAN_BROADCAST)),
            Ok((HOST, LAN_BROADCAST, bootp()))
        );
        assert_eq!(dhcp(&renew(OTHER)), Err(Ignored::NotForUs));
        let mut to_another_mac = renew(GW);
        to_another_mac[..6].copy_from_slice(&OTHER_MAC.0);
        assert_eq!(dhcp(&to_another_mac), Err(Ignored::NotForUs));
        let mut bad_checksum = dhcp_discover();
        let last = bad_checksum.len() - 1;
        bad_checksum[last] ^= 0x01;
        assert_eq!(dhcp(&bad_checksum), Err(Ignored::Malformed(Layer::Udp)));
        let mut no_checksum = dhcp_discover();
        let at = ETHERNET_HEADER_LEN + IPV4_HEADER_LEN + 6;
        no_checksum[at..at + 2].copy_from_slice(&[0, 0]);
        assert!(dhcp(&no_checksum).is_ok(), "a zero UDP checksum is none");
        let mut long_udp = dhcp_discover();
        let at = ETHERNET_HEADER_LEN + IPV4_HEADER_LEN + 4;
        long_udp[at..at + 2].copy_from_slice(&1000u16.to_be_bytes());
        assert_eq!(dhcp(&long_udp), Err(Ignored::Malformed(Layer::Udp)));
        // A fragmented "DHCP" datagram is not DHCP: nobody reassembles it.
        let mut fragment = dhcp_discover();
        edit_ip(&mut fragment, |ip| ip.set_more_frags(true));
        assert_eq!(dhcp(&fragment), Err(Ignored::NotForUs));
    }

    #[test]
    fn gateway_datagram_too_long() {
        let encap = encaps()[0];
        let payload = vec![0; usize::from(u16::MAX)];
        let datagram = GatewayDatagram {
            dst_mac: HOST_MAC,
            dst: HOST,
            src_port: 67,
            dst_port: 68,
            payload: &payload,
        };
        assert!(matches!(
            udp_from_gateway(&home(&encap), &encap, &datagram),
            Err(EncapError::TooLong { .. })
        ));
        let largest = &payload[..usize::from(u16::MAX) - 28];
        let frame = udp_from_gateway(
            &home(&encap),
            &encap,
            &GatewayDatagram {
                payload: largest,
                ..datagram
            },
        )
        .expect("the largest datagram fits");
        assert_eq!(frame.len(), 4 + 14 + usize::from(u16::MAX));
    }

    // --- the LSL ---

    #[test]
    fn frames_from_another_lsl_or_none_are_ignored() {
        let request = arp_frame(&arp_request(HOST, GW));
        let [dot1q, qinq, vxlan] = encaps();
        let Encap::Vxlan(vxlan_encap) = vxlan else {
            panic!("VXLAN expected");
        };
        let other_vni = Encap::Vxlan(VxlanEncap {
            vni: Vni::new(5002).expect("a VNI"),
            ..vxlan_encap
        });
        let other_brg = Encap::Vxlan(VxlanEncap {
            local: Ipv4Addr::new(10, 0, 0, 3).into(),
            ..vxlan_encap
        });
        let cases = [
            (dot1q, Encap::Dot1q { c_vid: vid(200) }),
            (dot1q, qinq),
            (dot1q, Encap::Untagged),
            (
                qinq,
                Encap::QinQ {
                    s_tpid: Tpid::STagLegacy,
                    s_vid: vid(10),
                    c_vid: vid(100),
                },
            ),
            (vxlan, other_vni),
            (vxlan, other_brg),
        ];
        for (home_encap, frame_encap) in cases {
            let frame = wrap(&frame_encap, &request);
            assert_eq!(
                answer(&home(&home_encap), &frame, &opts()),
                Err(Ignored::WrongLsl),
                "{frame_encap:?}"
            );
            assert_eq!(
                icmp_error(
                    &home(&home_encap),
                    &frame,
                    &opts(),
                    IcmpError::AdminProhibited
                ),
                Err(Ignored::WrongLsl)
            );
        }
        let mut bad_outer_checksum = wrap(&vxlan, &request);
        bad_outer_checksum[ETHERNET_HEADER_LEN + 10] ^= 0x01;
        assert_eq!(
            answer(&home(&vxlan), &bad_outer_checksum, &opts()),
            Err(Ignored::Decap(DecapError::Ipv4Checksum))
        );
    }

    // --- hostile input ---

    /// Every valid request kind, inner frames.
    fn valid_requests() -> Vec<(&'static str, Vec<u8>)> {
        vec![
            ("arp", arp_frame(&arp_request(HOST, GW))),
            ("echo", echo_frame()),
            ("dhcp", dhcp_discover()),
            ("transit ttl 1", transit_frame(1, 32)),
            (
                "udp to the gateway",
                ip_frame(
                    HOST,
                    GW,
                    IpProtocol::Udp,
                    64,
                    &udp_bytes((HOST, 5000), (GW, 53), &[7; 20]),
                ),
            ),
        ]
    }

    #[test]
    fn every_truncation_is_an_error_without_panic() {
        for encap in encaps() {
            let home = home(&encap);
            for (what, inner) in valid_requests() {
                let frame = wrap(&encap, &inner);
                assert!(answer(&home, &frame, &opts()).is_ok(), "{what}: whole");
                // ICMP errors quote what the punt record holds, so a cut datagram is still
                // answered once its IPv4 header and 8 bytes of payload are there.
                let quotable = what == "transit ttl 1" || what == "udp to the gateway";
                let least = encap.overhead() + ETHERNET_HEADER_LEN + IPV4_HEADER_LEN + 8;
                for len in 0..frame.len() {
                    let result = answer(&home, &frame[..len], &opts());
                    let may_answer = quotable && !matches!(encap, Encap::Vxlan(_)) && len >= least;
                    match result {
                        Err(_) => assert!(!may_answer, "{what} in {encap:?}, {len} bytes"),
                        Ok(Answer::Reply(reply)) if may_answer => {
                            unwrap_reply(&encap, &reply.frame);
                        }
                        Ok(other) => panic!("{what} in {encap:?}, {len} bytes: {other:?}"),
                    }
                    for error in [
                        IcmpError::TimeExceeded,
                        IcmpError::FragmentationNeeded { next_hop_mtu: 68 },
                        IcmpError::AdminProhibited,
                    ] {
                        let whole = icmp_error(&home, &frame, &opts(), error).is_ok();
                        let may_build = whole && !matches!(encap, Encap::Vxlan(_)) && len >= least;
                        let built = icmp_error(&home, &frame[..len], &opts(), error);
                        assert!(
                            built.is_err() || may_build,
                            "{what}, {len} bytes, {error:?}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn flipped_bits_and_garbage_never_panic() {
        // What the mutants come to, to show they reach every stage.
        let mut outcomes = std::collections::BTreeSet::new();
        for encap in encaps() {
            let home = home(&encap);
            for (_, inner) in valid_requests() {
                let frame = wrap(&encap, &inner);
                for at in 0..frame.len() {
                    for mask in [0x01, 0x10, 0x80, 0xff] {
                        let mut mutated = frame.clone();
                        mutated[at] ^= mask;
                        outcomes.insert(match answer(&home, &mutated, &opts()) {
                            Ok(Answer::Reply(reply)) => reply.kind.label(),
                            Ok(Answer::Dhcp(_)) => "dhcp",
                            Err(ignored) => ignored.label(),
                        });
                        let _ = icmp_error(&home, &mutated, &opts(), IcmpError::AdminProhibited);
                    }
                }
            }
        }
        for expected in [
            "decap",
            "wrong_lsl",
            "malformed",
            "unsupported",
            "not_for_us",
            "bad_source",
            "arp_reply",
            "echo_reply",
            "dhcp",
        ] {
            assert!(outcomes.contains(expected), "{expected} in {outcomes:?}");
        }
        // Random bytes behind a valid C-tag, so that they reach the inner parsers.
        let encap = encaps()[0];
        let home = home(&encap);
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = || {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 33) as u8
        };
        for _ in 0..5000 {
            let len = usize::from(next()) + usize::from(next() & 0x3f);
            let mut inner: Vec<u8> = (0..len.max(14)).map(|_| next()).collect();
            // Point most of them at the interesting ethertypes.
            let ethertype: [u8; 2] = match next() % 4 {
                0 => [0x08, 0x06],
                1 | 2 => [0x08, 0x00],
                _ => [inner[12], inner[13]],
            };
            inner[12..14].copy_from_slice(&ethertype);
            if next() % 2 == 0 && inner.len() > 14 {
                inner[14] = 0x45;
            }
            let frame = wrap(&encap, &inner);
            let _ = answer(&home, &frame, &opts());
            let _ = icmp_error(&home, &frame, &opts(), IcmpError::TimeExceeded);
            let _ = answer(&home, &inner, &opts());
        }
    }

    // --- rate limiting ---

    #[test]
    fn a_home_gets_its_burst_then_its_rate() {
        let mut limiter = HomeLimiter::new(RateLimit::DEFAULT);
        for i in 0..2_000 {
            assert_eq!(limiter.admit(1, 5_000), Ok(()), "packet {i} of the burst");
        }
        assert_eq!(limiter.admit(1, 5_000), Err(Ignored::RateLimited));
        // 200 per second: one token every 5 ms.
        assert_eq!(limiter.admit(1, 5_004), Err(Ignored::RateLimited));
        assert_eq!(limiter.admit(1, 5_005), Ok(()));
        assert_eq!(limiter.admit(1, 5_005), Err(Ignored::RateLimited));
        // A second later, 200 more, not more.
        let admitted = (0..1_000)
            .filter(|_| limiter.admit(1, 6_005).is_ok())
            .count();
        assert_eq!(admitted, 200);
        // After a long quiet spell, the burst again, not more.
        let admitted = (0..5_000)
            .filter(|_| limiter.admit(1, 1_000_000).is_ok())
            .count();
        assert_eq!(admitted, 2_000);
    }

    #[test]
    fn one_home_flooding_does_not_starve_another() {
        let mut limiter = HomeLimiter::new(RateLimit {
            per_second: 10,
            burst: 5,
        });
        let mut flooder = 0;
        let mut quiet = 0;
        for ms in 0..10_000u64 {
            for _ in 0..10 {
                flooder += usize::from(limiter.admit(1, ms).is_ok());
            }
            if ms % 200 == 0 {
                quiet += usize::from(limiter.admit(2, ms).is_ok());
            }
        }
        assert_eq!(flooder, 5 + 10 * 10 - 1, "burst then 10 per second");
        assert_eq!(quiet, 50, "every packet of the quiet home");
    }

    #[test]
    fn the_limiter_copes_with_odd_clocks_and_limits() {
        let mut bucket = TokenBucket::new(
            RateLimit {
                per_second: 1000,
                burst: 1,
            },
            10_000,
        );
        assert!(bucket.try_take(10_000));
        // A clock that goes back adds nothing and does not rewind the bucket.
        assert!(!bucket.try_take(5_000));
        assert!(!bucket.try_take(10_000));
        assert!(bucket.try_take(10_001));
        assert!(!bucket.try_take(0));
        assert!(bucket.try_take(u64::MAX), "saturates");
        assert!(!bucket.try_take(u64::MAX));

        let mut never = TokenBucket::new(
            RateLimit {
                per_second: u32::MAX,
                burst: 0,
            },
            0,
        );
        assert!(!never.try_take(u64::MAX));
        let mut once = TokenBucket::new(
            RateLimit {
                per_second: 0,
                burst: 1,
            },
            0,
        );
        assert!(once.try_take(0));
        assert!(!once.try_take(u64::MAX));
        let mut huge = TokenBucket::new(
            RateLimit {
                per_second: u32::MAX,
                burst: u32::MAX,
            },
            0,
        );
        assert!(huge.try_take(u64::MAX));
    }

    #[test]
    fn idle_and_removed_homes_are_pruned() {
        let mut limiter = HomeLimiter::default();
        assert_eq!(limiter.limit(), RateLimit::DEFAULT);
        limiter.admit(1, 0).expect("admitted");
        limiter.admit(2, 0).expect("admitted");
        limiter.admit(3, 1_000).expect("admitted");
        // At 20 ms, homes 1 and 2 are full again; home 3 is not.
        limiter.prune(1_000);
        assert_eq!(limiter.buckets.len(), 1);
        assert!(limiter.buckets.contains_key(&3));
        limiter.forget(3);
        assert!(limiter.buckets.is_empty());
    }

    // --- the home ---

    #[test]
    fn home_from_config_and_host_rules() {
        let config = SubscriberConfig {
            id: 7,
            lsl: LslId::dot1q(vid(100)),
            gateway: GW,
            lan: "192.168.1.0/24".parse().expect("a prefix"),
            gateway_mac: crate::config::gateway_mac(7),
            hosts: Default::default(),
            dhcp: crate::dhcp::DhcpConfig::default(),
            nat: Default::default(),
            port_forwards: Default::default(),
            tcp_mss: 0,
        };
        let from_config = Home::from(&config);
        assert_eq!(from_config, home(&encaps()[0]));
        assert!(from_config.is_host(HOST));
        for not_host in [GW, LAN_BROADCAST, Ipv4Addr::new(192, 168, 1, 0), REMOTE] {
            assert!(!from_config.is_host(not_host), "{not_host}");
        }
        let point_to_point = Home {
            gateway: Ipv4Addr::new(10, 0, 0, 0),
            lan: "10.0.0.0/31".parse().expect("a prefix"),
            ..from_config
        };
        assert!(point_to_point.is_host(Ipv4Addr::new(10, 0, 0, 1)));
        assert!(!point_to_point.is_broadcast(Ipv4Addr::new(10, 0, 0, 1)));
    }

    #[test]
    fn labels_are_distinct() {
        let ignored = [
            Ignored::Decap(DecapError::Truncated),
            Ignored::WrongLsl,
            Ignored::Malformed(Layer::Arp),
            Ignored::Unsupported(Unsupported::Ipv6),
            Ignored::NotForUs,
            Ignored::BadSource,
            Ignored::ArpAnnouncement(ArpBinding {
                mac: HOST_MAC,
                ip: HOST,
            }),
            Ignored::GatewayConflict(ArpBinding {
                mac: HOST_MAC,
                ip: GW,
            }),
            Ignored::Fragment,
            Ignored::NoIcmpError(Suppressed::Broadcast),
            Ignored::RateLimited,
            Ignored::Encap(EncapError::InnerTooShort { len: 0 }),
        ];
        let mut labels: Vec<_> = ignored.iter().map(Ignored::label).collect();
        labels.sort_unstable();
        labels.dedup();
        assert_eq!(labels.len(), ignored.len());
        let kinds = [
            ReplyKind::Arp,
            ReplyKind::EchoReply,
            ReplyKind::IcmpError(IcmpError::TimeExceeded),
            ReplyKind::IcmpError(IcmpError::FragmentationNeeded { next_hop_mtu: 1 }),
            ReplyKind::IcmpError(IcmpError::AdminProhibited),
            ReplyKind::IcmpError(IcmpError::PortUnreachable),
        ];
        let mut labels: Vec<_> = kinds.iter().map(ReplyKind::label).collect();
        labels.sort_unstable();
        labels.dedup();
        assert_eq!(labels.len(), kinds.len());
        assert_eq!(
            Ignored::GatewayConflict(ArpBinding {
                mac: HOST_MAC,
                ip: GW
            })
            .to_string(),
            "02-00-00-00-01-0a claims the gateway address 192.168.1.1"
        );
    }
}
