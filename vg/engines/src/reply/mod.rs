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
//! a [`HomeLimiter`] (a token bucket per home; [`RateLimit::DEFAULT`] 200 frames/s, burst
//! 2,000, or the configuration's `[slowpath] per_home_pps` and `per_home_burst`) before
//! answering it.
//!
//! No-panic contract: [`answer`], [`icmp_error`], [`udp_from_gateway`] and the limiter
//! return a value for every input, however short, long or malformed.

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

mod limiter;

pub use limiter::{HomeLimiter, RateLimit, TokenBucket};

#[cfg(test)]
mod tests;
