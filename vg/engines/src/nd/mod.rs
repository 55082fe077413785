//! The vG as each home's IPv6 router, as pure functions and small state machines: router
//! advertisements, neighbour discovery, echo and ICMPv6 errors (RFC 4861, RFC 4443, RFC 8106),
//! with what the home's frames teach about its hosts (SAVI in the spirit of RFC 6620/7513).
//! No I/O, no clock: the caller passes `now_ms` (its monotonic clock in milliseconds).
//!
//! ```text
//!  punted frame          inner frame
//!  (LSL included) -decap-> RS ------------------------------> RA (unicast, or scheduled multicast)
//!                          NS for a gateway address --------> NA (S, R, O, TLLA)
//!                          DAD NS for a gateway address ----> NA to ff02::1 (defends it)
//!                          echo request to the gateway -----> echo reply
//!                          transit with hop limit <= 1 -----> ICMPv6 time exceeded
//!                          DAD NS, NS, NA from a host ------> Ignored6::Learn(Binding)
//!                          RA, redirect --------------------> Ignored6::RouterOnly (RA guard)
//! ```
//!
//! | function / type      | what it does                                                        |
//! |----------------------|---------------------------------------------------------------------|
//! | [`answer6`]          | a punted frame from the home in, a reply and what it teaches out     |
//! | [`RaSchedule`]       | when to send unsolicited RAs (RFC 4861 §6.2.4) and answer RSs (§6.2.6)|
//! | [`ra_frame`], [`final_ra_frame`] | the RA (to ff02::1), and the one with lifetime 0 (§6.2.5) |
//! | [`Neighbours`]       | the home's bounded binding table, first come first served (RFC 6620) |
//! | [`solicit`], [`Resolver`] | resolving a host for traffic from the core, bounded (RFC 6583) |
//! | [`icmp6_error`], [`icmp6_error_to_core`] | Time Exceeded, Packet Too Big, Destination Unreachable |
//! | [`is_router_only`]   | RA guard: what no host may send (RFC 6105), for the fast path too    |
//!
//! Addresses. The gateway's link-local address is derived from its MAC (modified EUI-64,
//! RFC 4291 Appendix A): stable for as long as the MAC is, as RFC 4861 §6.2.8 asks, since
//! hosts keep it as their default router. RAs, NAs and NSs come from it (RFC 4861 §4.2 makes
//! RAs come from a link-local address). The gateway needs no global address in the home's
//! /64 for any of that: hosts route through the link-local address, and taking one would
//! remove it from SLAAC/DHCPv6 and invite duplicate address conflicts. One may still be
//! configured ([`Home6::gateway_global`]); it is then answered like the link-local one.
//! ICMPv6 errors need a global source (RFC 4443 §2.2: the errors go to off-link sources
//! too): they come from [`Home6::router_addr`], one global address of the vG's own (from
//! its infrastructure prefix, the same for every home), as a router's loopback address.
//! That keeps traceroute through the vG showing one address and needs nothing in the homes'
//! prefixes.
//!
//! Validation (RFC 4861 §6.1.1, §7.1.1, §7.1.2): ND messages need hop limit 255, code 0,
//! a correct checksum, their whole fixed part, non-zero option lengths, no source link-layer
//! address from the unspecified address, a non-multicast target, a DAD NS to a
//! solicited-node group, and no Solicited flag on an NA to a group. The link-layer address
//! in an option must be the frame's Ethernet source (a stricter rule than RFC 4861, in the
//! SAVI spirit: a home has no ND proxies).
//!
//! No-panic contract: every function here returns a value for every input, however short,
//! long or malformed.

use std::net::Ipv6Addr;

use ipnet::Ipv6Net;
use lsl::encap::{DecapError, DecapOptions, EncapError};
use lsl::smoltcp::wire::EthernetAddress;
use lsl::{Decapsulated, LslId, decapsulate};

mod answer;
mod error;
mod guard;
mod learn;
mod ra;
mod resolve;
mod wire;

pub use answer::answer6;
pub use error::{
    CoreL2, ICMP6_ERROR_MAX_LEN, Icmp6Error, MAX_QUOTE, icmp6_error, icmp6_error_to_core,
};
pub use guard::{MAX_EXTENSION_HEADERS, RouterOnly, is_router_only};
pub use learn::{
    Binding, BindingState, Learnt, LearntFrom, Neighbour, NeighbourLimits, Neighbours,
    NeighboursStats,
};
pub use ra::{
    MAX_INITIAL_RTR_ADVERT_INTERVAL_MS, MAX_INITIAL_RTR_ADVERTISEMENTS, MAX_RA_DELAY_TIME_MS,
    MIN_DELAY_BETWEEN_RAS_MS, RaIntervals, RaSchedule, final_ra_frame, ra_frame,
};
pub use resolve::{
    MAX_MULTICAST_SOLICIT, RETRANS_TIMER_MS, Resolve, Resolver, ResolverEvent, ResolverLimits,
    solicit,
};
pub use wire::{
    ALL_NODES, ALL_ROUTERS, ND_HOP_LIMIT, link_local_from_mac, multicast_mac, solicited_node,
};

/// The IPv6 minimum MTU (RFC 8200 §5): no link, and so no LSL, may be smaller.
pub const MIN_MTU: u16 = 1280;

/// The hop limit of the non-ND packets the vG originates (echo replies, errors): Linux's
/// default, as [`crate::reply::REPLY_TTL`] for IPv4.
pub const REPLY_HOP_LIMIT: u8 = 64;

/// The most RDNSS servers an RA carries: what fits an RA in the minimum MTU with room to
/// spare, and more than any resolver list needs (glibc reads 3).
pub const MAX_RDNSS: usize = 8;

/// The most bytes of encoded DNSSL domains an RA carries (RFC 8106 §5.2: the option's
/// length field allows 2,040; this keeps the whole RA under the minimum MTU).
pub const MAX_DNSSL_BYTES: usize = 512;

/// A home as its IPv6 router sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Home6 {
    /// The home's LSL: frames from any other are not answered.
    pub lsl: LslId,
    /// The home's stable gateway MAC; the link-local address derives from it.
    pub gateway_mac: EthernetAddress,
    /// The home's LAN: the first /64 of its delegated prefix, advertised for SLAAC.
    pub lan: Ipv6Net,
    /// A gateway address in the LAN, if the operator wants one (not needed; see the module
    /// documentation). Answered for NS and echo like the link-local address.
    pub gateway_global: Option<Ipv6Addr>,
    /// The vG's own global address: the source of ICMPv6 errors (RFC 4443 §2.2).
    pub router_addr: Ipv6Addr,
    /// The LSL's IPv6 MTU (the inner frame's IP MTU), advertised in RAs and the limit for
    /// Packet Too Big; at least [`MIN_MTU`].
    pub mtu: u16,
    /// What RAs advertise.
    pub ra: RaConfig,
}

/// What a home's RAs advertise. Lifetimes in seconds; `u32::MAX` is infinity (RFC 4861 §4.6.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RaConfig {
    /// M: addresses from DHCPv6 (RFC 4861 §4.2).
    pub managed: bool,
    /// O: other configuration (DNS) from DHCPv6.
    pub other: bool,
    /// The Cur Hop Limit hosts should use; 0 leaves it to them.
    pub cur_hop_limit: u8,
    /// Router lifetime in seconds, at most 9000 (RFC 4861 §6.2.1); 0: not a default router.
    pub router_lifetime: u16,
    /// The LAN prefix's valid lifetime.
    pub valid_lifetime: u32,
    /// The LAN prefix's preferred lifetime, at most the valid one.
    pub preferred_lifetime: u32,
    /// Recursive DNS servers (RFC 8106 §5.1); none: no RDNSS option.
    pub rdnss: Vec<Ipv6Addr>,
    /// The RDNSS option's lifetime.
    pub rdnss_lifetime: u32,
    /// DNS search list (RFC 8106 §5.2), as domain names; none: no DNSSL option.
    pub dnssl: Vec<String>,
    /// The DNSSL option's lifetime.
    pub dnssl_lifetime: u32,
    /// The unsolicited RA intervals.
    pub intervals: RaIntervals,
}

impl Default for RaConfig {
    /// RFC 4861 §6.2.1's defaults: lifetime 3 x MaxRtrAdvInterval (1800 s), prefix valid 30
    /// days and preferred 7 days; the DNS options' lifetime also 3 x MaxRtrAdvInterval
    /// (RFC 8106 §5.1's lower bound for it).
    fn default() -> Self {
        let intervals = RaIntervals::default();
        let three_max = intervals.max_s.saturating_mul(3);
        RaConfig {
            managed: false,
            other: false,
            cur_hop_limit: 64,
            router_lifetime: u16::try_from(three_max).unwrap_or(9000),
            valid_lifetime: 2_592_000,
            preferred_lifetime: 604_800,
            rdnss: Vec::new(),
            rdnss_lifetime: three_max,
            dnssl: Vec::new(),
            dnssl_lifetime: three_max,
            intervals,
        }
    }
}

/// Why a [`Home6`] is not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Home6Error {
    /// The LAN is not a /64 (SLAAC needs one, RFC 4862 §5.5.3, RFC 7421).
    #[error("LAN prefix {0} is not a /64")]
    LanNotSlash64(Ipv6Net),
    /// The MTU is below the IPv6 minimum.
    #[error("MTU {0} is below the IPv6 minimum 1280")]
    MtuTooSmall(u16),
    /// The gateway MAC is not a unicast address.
    #[error("gateway MAC {0} is not unicast")]
    GatewayMac(EthernetAddress),
    /// The gateway global address is outside the LAN or not a host address in it.
    #[error("gateway address {0} is not a host of the LAN")]
    GatewayGlobal(Ipv6Addr),
    /// The router address is not a global unicast address.
    #[error("router address {0} is not a global unicast address")]
    RouterAddr(Ipv6Addr),
    /// An RA setting is out of range (named).
    #[error("RA setting {0} is out of range")]
    Ra(&'static str),
    /// A DNSSL domain is not a valid DNS name.
    #[error("DNSSL domain {0:?} is not a valid DNS name")]
    Domain(String),
}

impl Home6 {
    /// A home with the default MTU (1500) and RA settings.
    pub fn new(
        lsl: LslId,
        gateway_mac: EthernetAddress,
        lan: Ipv6Net,
        router_addr: Ipv6Addr,
    ) -> Home6 {
        Home6 {
            lsl,
            gateway_mac,
            lan,
            gateway_global: None,
            router_addr,
            mtu: 1500,
            ra: RaConfig::default(),
        }
    }

    /// Checks what the builders rely on for sensible output (they never panic regardless).
    pub fn validate(&self) -> Result<(), Home6Error> {
        if self.lan.prefix_len() != 64 {
            return Err(Home6Error::LanNotSlash64(self.lan));
        }
        if self.mtu < MIN_MTU {
            return Err(Home6Error::MtuTooSmall(self.mtu));
        }
        if !self.gateway_mac.is_unicast() {
            return Err(Home6Error::GatewayMac(self.gateway_mac));
        }
        if let Some(global) = self.gateway_global
            && (!self.lan.contains(&global) || global == self.lan.network())
        {
            return Err(Home6Error::GatewayGlobal(global));
        }
        let r = self.router_addr;
        if r.is_multicast() || r.is_unspecified() || r.is_loopback() || wire::is_link_local(r) {
            return Err(Home6Error::RouterAddr(r));
        }
        self.ra.validate()
    }

    /// The gateway's link-local address (modified EUI-64 of its MAC).
    pub fn link_local(&self) -> Ipv6Addr {
        link_local_from_mac(self.gateway_mac)
    }

    /// Whether `addr` is one of the gateway's addresses on the home's link.
    pub fn owns(&self, addr: Ipv6Addr) -> bool {
        addr == self.link_local() || Some(addr) == self.gateway_global
    }

    /// Whether `addr` can be a host of the home: a link-local address or one in the LAN,
    /// not the gateway's, not the Subnet-Router anycast address (RFC 4291 §2.6.1).
    pub fn is_host(&self, addr: Ipv6Addr) -> bool {
        let on_link = wire::is_link_local(addr) || self.lan.contains(&addr);
        on_link
            && !self.owns(addr)
            && addr != self.lan.network()
            && addr != Ipv6Addr::from(0xfe80_u128 << 112)
    }
}

impl RaConfig {
    fn validate(&self) -> Result<(), Home6Error> {
        if self.router_lifetime > 9000 {
            return Err(Home6Error::Ra("router_lifetime"));
        }
        if self.preferred_lifetime > self.valid_lifetime {
            return Err(Home6Error::Ra("preferred_lifetime"));
        }
        if self.rdnss.len() > MAX_RDNSS {
            return Err(Home6Error::Ra("rdnss"));
        }
        self.intervals.validate()?;
        let mut encoded = 0;
        for domain in &self.dnssl {
            encoded += ra::encode_domain(domain)
                .ok_or_else(|| Home6Error::Domain(domain.clone()))?
                .len();
        }
        if encoded > MAX_DNSSL_BYTES {
            return Err(Home6Error::Ra("dnssl"));
        }
        Ok(())
    }
}

/// What to do with a punted frame that gets an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer6 {
    /// The frame to send back out of the access interface.
    pub reply: Reply6,
    /// What the request teaches about its sender (an NS's source and SLLA), for [`Neighbours`].
    pub learnt: Option<Binding>,
}

/// A frame the vG sends into a home, in its LSL encapsulation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply6 {
    /// What it is, for metrics and logs.
    pub kind: Reply6Kind,
    /// The whole frame, from the outer destination MAC, without FCS.
    pub frame: Vec<u8>,
}

/// The kinds of [`Reply6`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply6Kind {
    /// A solicited RA, unicast to the soliciting host.
    RouterAdvert,
    /// An NA for a gateway address, to the soliciting host.
    NeighbourAdvert,
    /// An NA to ff02::1 defending a gateway address against a host's DAD.
    DadDefence,
    /// An echo reply from a gateway address.
    EchoReply,
    /// An ICMPv6 error.
    Error(Icmp6Error),
}

impl Reply6Kind {
    /// A short name for a metric label.
    pub const fn label(&self) -> &'static str {
        match self {
            Reply6Kind::RouterAdvert => "ra",
            Reply6Kind::NeighbourAdvert => "na",
            Reply6Kind::DadDefence => "na_dad_defence",
            Reply6Kind::EchoReply => "echo6_reply",
            Reply6Kind::Error(error) => error.label(),
        }
    }
}

/// Why a punted IPv6 frame got no answer. `Copy`, to be counted by [`Ignored6::label`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Ignored6 {
    /// The LSL encapsulation could not be removed.
    #[error("LSL decapsulation failed")]
    Decap(#[source] DecapError),
    /// The frame is not on the home's LSL (or on none).
    #[error("frame is not on the home's LSL")]
    WrongLsl,
    /// An inner header is truncated or inconsistent, or a checksum is wrong.
    #[error("malformed {0:?} in the inner frame")]
    Malformed(Layer6),
    /// An ND message that RFC 4861 says to drop silently.
    #[error("invalid ND message: {0:?}")]
    Invalid(Invalid),
    /// Something the slow path does not answer.
    #[error("unsupported: {0:?}")]
    Unsupported(Unsupported6),
    /// Addressed to another host, or asking for another address.
    #[error("not addressed to the gateway")]
    NotForUs,
    /// The sender is not a host of the home (address or MAC).
    #[error("sender is not a host of the home")]
    BadSource,
    /// Nothing to answer; the binding may be learnt.
    #[error("binding {} at {} ({:?})", .0.addr, .0.mac, .0.from)]
    Learn(Binding),
    /// A host advertises a gateway address (an NA for it, or a DAD answer we did not send).
    #[error("{} claims the gateway address {}", .0.mac, .0.addr)]
    GatewayConflict(Binding),
    /// An RS to be answered by the multicast RA that the home's [`RaSchedule`] now has at
    /// `at_ms` (an RS without both a source address and an SLLA: nothing to learn either).
    #[error("solicited RA scheduled at {at_ms} ms")]
    RaScheduled {
        /// When the RA goes out (the schedule's next time).
        at_ms: u64,
    },
    /// A message only routers and DHCPv6 servers send (RA guard): dropped and counted.
    #[error("router-only message from a home: {0:?}")]
    RouterOnly(RouterOnly),
    /// No ICMPv6 error may be sent for this packet (RFC 4443 §2.4 (e)).
    #[error("no ICMPv6 error: {0:?}")]
    NoError(Suppressed6),
    /// The reply could not be encapsulated.
    #[error("encapsulating the reply failed")]
    Encap(#[source] EncapError),
}

impl Ignored6 {
    /// A short name for a metric label.
    pub const fn label(&self) -> &'static str {
        match self {
            Ignored6::Decap(_) => "decap",
            Ignored6::WrongLsl => "wrong_lsl",
            Ignored6::Malformed(_) => "malformed",
            Ignored6::Invalid(_) => "invalid_nd",
            Ignored6::Unsupported(_) => "unsupported",
            Ignored6::NotForUs => "not_for_us",
            Ignored6::BadSource => "bad_source",
            Ignored6::Learn(_) => "learn",
            Ignored6::GatewayConflict(_) => "gateway_conflict",
            Ignored6::RaScheduled { .. } => "ra_scheduled",
            Ignored6::RouterOnly(_) => "ra_guard",
            Ignored6::NoError(_) => "no_icmp6_error",
            Ignored6::Encap(_) => "encap",
        }
    }
}

/// The binding an [`answer6`] result teaches, whether it was answered ([`Answer6::learnt`])
/// or not ([`Ignored6::Learn`]): what the caller feeds into the home's [`Neighbours`].
/// [`Ignored6::GatewayConflict`] is not one: it is to be counted, never learnt.
pub fn learnt(result: &Result<Answer6, Ignored6>) -> Option<Binding> {
    match result {
        Ok(answer) => answer.learnt,
        Err(Ignored6::Learn(binding)) => Some(*binding),
        Err(_) => None,
    }
}

/// The inner header that [`Ignored6::Malformed`] refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layer6 {
    /// The inner Ethernet header.
    Ethernet,
    /// The IPv6 header (or the packet's length).
    Ipv6,
    /// The ICMPv6 message (length or checksum).
    Icmpv6,
    /// An ND option (zero length, past the end, a bad link-layer address length).
    NdOption,
}

/// The RFC 4861 validity checks that [`Ignored6::Invalid`] refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Invalid {
    /// The IP hop limit is not 255: the message crossed a router.
    HopLimit,
    /// The ICMP code is not 0.
    Code,
    /// Shorter than the message's fixed part.
    Length,
    /// A source link-layer address option with the unspecified source.
    SllaFromUnspecified,
    /// A multicast target address.
    MulticastTarget,
    /// A DAD NS not sent to the target's solicited-node group.
    DadDestination,
    /// An NA to a group with the Solicited flag.
    SolicitedToGroup,
    /// The option's link-layer address is not the frame's Ethernet source.
    LinkAddressMismatch,
}

/// What [`Ignored6::Unsupported`] refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Unsupported6 {
    /// Another ethertype than IPv6.
    Ethertype(u16),
    /// An ICMPv6 type the gateway does not answer (MLD, errors, replies).
    IcmpType(u8),
    /// Another next header than ICMPv6 to the gateway (UDP to 547 goes to the DHCPv6
    /// engine before this).
    NextHeader(u8),
}

/// Why no ICMPv6 error may be sent (RFC 4443 §2.4 (e)), or why the one asked for does not
/// apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Suppressed6 {
    /// The packet is an ICMPv6 error or redirect (or its type cannot be found).
    IcmpError,
    /// Sent to a multicast address, or as a link-layer multicast (allowed for Packet Too Big).
    Multicast,
    /// From the unspecified or a multicast address.
    NoSource,
    /// The error does not fit the packet: time exceeded for a hop limit above 1, packet too
    /// big for one that fits or an MTU below 1280.
    Inapplicable,
}

/// Removes the LSL encapsulation of a frame that must be on `home`'s LSL.
fn decapsulate_home<'a>(
    home: &Home6,
    frame: &'a [u8],
    options: &DecapOptions,
) -> Result<Decapsulated<'a>, Ignored6> {
    let decapsulated = decapsulate(frame, options).map_err(Ignored6::Decap)?;
    if decapsulated.lsl != Some(home.lsl) {
        return Err(Ignored6::WrongLsl);
    }
    Ok(decapsulated)
}

/// Wraps an inner reply in the LSL its request came on.
fn encapsulate(
    request: &Decapsulated<'_>,
    kind: Reply6Kind,
    inner: &[u8],
) -> Result<Reply6, Ignored6> {
    let frame = request
        .reply_encap()
        .encapsulate(inner)
        .map_err(Ignored6::Encap)?;
    Ok(Reply6 { kind, frame })
}

#[cfg(test)]
mod tests;
