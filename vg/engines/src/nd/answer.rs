//! [`answer6`]: a punted IPv6 frame from a home in, the reply and what it teaches out.

use std::net::Ipv6Addr;

use lsl::encap::DecapOptions;
use lsl::smoltcp::phy::ChecksumCapabilities;
use lsl::smoltcp::wire::{
    EthernetAddress, EthernetFrame, EthernetProtocol, Icmpv6Message, Icmpv6Packet, Icmpv6Repr,
    IpProtocol, NdiscNeighborFlags, NdiscRepr, RawHardwareAddress,
};

use super::error::error_frame;
use super::guard::is_router_only;
use super::ra::{RaSchedule, ra_inner};
use super::wire::{
    ALL_NODES, ALL_ROUTERS, Addressing, Ipv6In, LinkOptions, ND_HOP_LIMIT, NS_NA_LEN, icmpv6,
    icmpv6_frame, multicast_mac, solicited_node,
};
use super::{
    Answer6, Binding, BindingState, Home6, Icmp6Error, Ignored6, Invalid, Layer6, LearntFrom,
    REPLY_HOP_LIMIT, Reply6Kind, Unsupported6, decapsulate_home, encapsulate,
};

/// The fixed part of an RS: type, code, checksum, reserved (RFC 4861 §4.1).
const RS_LEN: usize = 8;

/// Answers a frame punted by the fast path for `home` (whole, LSL encapsulation included):
/// see the [module documentation](super). `schedule` is the home's RA schedule: an RS
/// without a unicast answer moves its next multicast RA forward (RFC 4861 §6.2.6).
pub fn answer6(
    home: &Home6,
    frame: &[u8],
    options: &DecapOptions,
    schedule: &mut RaSchedule,
    now_ms: u64,
) -> Result<Answer6, Ignored6> {
    let decapsulated = decapsulate_home(home, frame, options)?;
    let (kind, inner, learnt) = {
        let eth = EthernetFrame::new_checked(&decapsulated.inner[..])
            .map_err(|_| Ignored6::Malformed(Layer6::Ethernet))?;
        let ethertype = eth.ethertype();
        if ethertype != EthernetProtocol::Ipv6 {
            return Err(Ignored6::Unsupported(Unsupported6::Ethertype(
                ethertype.into(),
            )));
        }
        let src_mac = eth.src_addr();
        if !src_mac.is_unicast() || src_mac == home.gateway_mac {
            return Err(Ignored6::BadSource);
        }
        let ip = Ipv6In::parse(eth.payload())?;
        inner(home, &eth, &ip, schedule, now_ms)?
    };
    Ok(Answer6 {
        reply: encapsulate(&decapsulated, kind, &inner)?,
        learnt,
    })
}

/// An inner reply, its kind and the binding the request taught.
type Handled = (Reply6Kind, Vec<u8>, Option<Binding>);

/// The inner IPv6 packet: ND and echo for the gateway, time exceeded for transit.
fn inner(
    home: &Home6,
    eth: &EthernetFrame<&[u8]>,
    ip: &Ipv6In<'_>,
    schedule: &mut RaSchedule,
    now_ms: u64,
) -> Result<Handled, Ignored6> {
    let (src, dst) = (ip.src(), ip.dst());
    if src.is_multicast() {
        return Err(Ignored6::BadSource);
    }
    // RA guard before any other check: a router-only message is counted as such wherever
    // it is sent, behind extension headers or malformed too.
    if let Some(router_only) = is_router_only(ip.bytes) {
        return Err(Ignored6::RouterOnly(router_only));
    }
    let for_us = home.owns(dst) || dst == home.router_addr || dst.is_multicast();
    if !for_us {
        if ip.header.hop_limit() > 1 {
            return Err(Ignored6::NotForUs);
        }
        let error = Icmp6Error::TimeExceeded;
        let frame = error_frame(home, eth, ip, error)?;
        return Ok((Reply6Kind::Error(error), frame, None));
    }
    let next_header = ip.header.next_header();
    if next_header != IpProtocol::Icmpv6 {
        return Err(if dst.is_multicast() {
            Ignored6::NotForUs
        } else {
            Ignored6::Unsupported(Unsupported6::NextHeader(next_header.into()))
        });
    }
    let packet = icmpv6(ip)?;
    let link = Link {
        home,
        src_mac: eth.src_addr(),
        dst_mac: eth.dst_addr(),
        src,
        dst,
        hop_limit: ip.header.hop_limit(),
    };
    match packet.msg_type() {
        Icmpv6Message::RouterSolicit => link.router_solicitation(&packet, schedule, now_ms),
        Icmpv6Message::NeighborSolicit => link.neighbour_solicitation(&packet),
        Icmpv6Message::NeighborAdvert => Err(link.neighbour_advertisement(&packet)),
        Icmpv6Message::EchoRequest => link
            .echo(&packet)
            .map(|frame| (Reply6Kind::EchoReply, frame, None)),
        other => Err(Ignored6::Unsupported(Unsupported6::IcmpType(other.into()))),
    }
}

/// The addressing of a received ICMPv6 message, with the home it came from.
struct Link<'h> {
    home: &'h Home6,
    src_mac: EthernetAddress,
    dst_mac: EthernetAddress,
    src: Ipv6Addr,
    dst: Ipv6Addr,
    hop_limit: u8,
}

impl Link<'_> {
    /// RFC 4861's checks common to ND messages: hop limit 255, code 0, the fixed part
    /// whole; then the options' lengths. Returns the options.
    fn nd_checks(
        &self,
        packet: &Icmpv6Packet<&[u8]>,
        fixed: usize,
    ) -> Result<LinkOptions, Ignored6> {
        if self.hop_limit != ND_HOP_LIMIT {
            return Err(Ignored6::Invalid(Invalid::HopLimit));
        }
        if packet.msg_code() != 0 {
            return Err(Ignored6::Invalid(Invalid::Code));
        }
        let bytes = packet.clone().into_inner();
        let options = bytes
            .get(fixed..)
            .ok_or(Ignored6::Invalid(Invalid::Length))?;
        let links = LinkOptions::parse(options)?;
        let mismatch = |mac: Option<EthernetAddress>| mac.is_some_and(|m| m != self.src_mac);
        if mismatch(links.slla) || mismatch(links.tlla) {
            return Err(Ignored6::Invalid(Invalid::LinkAddressMismatch));
        }
        Ok(links)
    }

    /// The sender's binding, when its address is a host of the home.
    fn binding(&self, addr: Ipv6Addr, from: LearntFrom, state: BindingState) -> Option<Binding> {
        self.home.is_host(addr).then_some(Binding {
            addr,
            mac: self.src_mac,
            from,
            state,
        })
    }

    /// RS (RFC 4861 §6.1.1, §6.2.6): a unicast RA to a host that gave its address and
    /// SLLA, otherwise the next multicast RA, brought forward.
    fn router_solicitation(
        &self,
        packet: &Icmpv6Packet<&[u8]>,
        schedule: &mut RaSchedule,
        now_ms: u64,
    ) -> Result<Handled, Ignored6> {
        if self.dst != ALL_ROUTERS && !self.home.owns(self.dst) {
            return Err(Ignored6::NotForUs);
        }
        let links = self.nd_checks(packet, RS_LEN)?;
        if self.src.is_unspecified() {
            if links.slla.is_some() {
                return Err(Ignored6::Invalid(Invalid::SllaFromUnspecified));
            }
        } else if !self.home.is_host(self.src) {
            return Err(Ignored6::BadSource);
        }
        match links.slla {
            Some(slla) if !self.src.is_unspecified() => {
                let learnt = self.binding(
                    self.src,
                    LearntFrom::RouterSolicitation,
                    BindingState::Confirmed,
                );
                let frame = ra_inner(self.home, slla, self.src, false)
                    .ok_or(Ignored6::Malformed(Layer6::Icmpv6))?;
                Ok((Reply6Kind::RouterAdvert, frame, learnt))
            }
            _ => Err(Ignored6::RaScheduled {
                at_ms: schedule.solicited(now_ms),
            }),
        }
    }

    /// NS (RFC 4861 §7.1.1, §7.2.3, §7.2.4): an NA for a gateway address; a host's DAD or
    /// NS for another address is learnt from.
    fn neighbour_solicitation(&self, packet: &Icmpv6Packet<&[u8]>) -> Result<Handled, Ignored6> {
        let links = self.nd_checks(packet, NS_NA_LEN)?;
        let target = packet.target_addr();
        if target.is_multicast() {
            return Err(Ignored6::Invalid(Invalid::MulticastTarget));
        }
        let to_target = self.dst == target || self.dst == solicited_node(target);
        let dad = self.src.is_unspecified();
        if dad {
            if links.slla.is_some() {
                return Err(Ignored6::Invalid(Invalid::SllaFromUnspecified));
            }
            if self.dst != solicited_node(target) {
                return Err(Ignored6::Invalid(Invalid::DadDestination));
            }
        } else if !self.home.is_host(self.src) {
            return Err(Ignored6::BadSource);
        }
        if !to_target && !self.home.owns(self.dst) {
            return Err(Ignored6::NotForUs);
        }
        if !self.home.owns(target) {
            let learnt = if dad {
                self.binding(target, LearntFrom::Dad, BindingState::Tentative)
            } else {
                links.slla.and_then(|_| {
                    self.binding(
                        self.src,
                        LearntFrom::NeighbourSolicitation,
                        BindingState::Confirmed,
                    )
                })
            };
            return Err(learnt.map_or(Ignored6::NotForUs, Ignored6::Learn));
        }
        if dad {
            // §7.2.4: to all-nodes, Solicited clear: defends the address against the host.
            let frame =
                self.neighbour_advert(target, ALL_NODES, multicast_mac(ALL_NODES), false)?;
            return Ok((Reply6Kind::DadDefence, frame, None));
        }
        let learnt = links.slla.and_then(|_| {
            self.binding(
                self.src,
                LearntFrom::NeighbourSolicitation,
                BindingState::Confirmed,
            )
        });
        // Unicast to the solicitor, at its SLLA or (a unicast NUD probe may omit it) the
        // frame's source, which the checks made equal.
        let frame = self.neighbour_advert(target, self.src, self.src_mac, true)?;
        Ok((Reply6Kind::NeighbourAdvert, frame, learnt))
    }

    /// An NA for `target`, one of the gateway's addresses, with R and O, S if `solicited`,
    /// and the TLLA (RFC 4861 §7.2.4: needed for multicast solicitations; always given).
    fn neighbour_advert(
        &self,
        target: Ipv6Addr,
        dst: Ipv6Addr,
        dst_mac: EthernetAddress,
        solicited: bool,
    ) -> Result<Vec<u8>, Ignored6> {
        let mut flags = NdiscNeighborFlags::ROUTER | NdiscNeighborFlags::OVERRIDE;
        if solicited {
            flags |= NdiscNeighborFlags::SOLICITED;
        }
        let repr = NdiscRepr::NeighborAdvert {
            flags,
            target_addr: target,
            lladdr: Some(RawHardwareAddress::from(self.home.gateway_mac)),
        };
        let to = Addressing {
            src_mac: self.home.gateway_mac,
            dst_mac,
            src: target,
            dst,
            hop_limit: ND_HOP_LIMIT,
        };
        icmpv6_frame(&to, repr.buffer_len(), |packet| repr.emit(packet))
            .ok_or(Ignored6::Malformed(Layer6::Icmpv6))
    }

    /// NA (RFC 4861 §7.1.2): never answered; a host's binding to learn, or a conflict.
    fn neighbour_advertisement(&self, packet: &Icmpv6Packet<&[u8]>) -> Ignored6 {
        let links = match self.nd_checks(packet, NS_NA_LEN) {
            Ok(links) => links,
            Err(ignored) => return ignored,
        };
        let target = packet.target_addr();
        if target.is_multicast() {
            return Ignored6::Invalid(Invalid::MulticastTarget);
        }
        let solicited = packet
            .neighbor_flags()
            .contains(NdiscNeighborFlags::SOLICITED);
        if self.dst.is_multicast() && solicited {
            return Ignored6::Invalid(Invalid::SolicitedToGroup);
        }
        if !self.src.is_unspecified() && !self.home.is_host(self.src) {
            return Ignored6::BadSource;
        }
        let binding = Binding {
            addr: target,
            mac: links.tlla.unwrap_or(self.src_mac),
            from: LearntFrom::NeighbourAdvertisement,
            state: BindingState::Confirmed,
        };
        if self.home.owns(target) {
            return Ignored6::GatewayConflict(binding);
        }
        if !self.home.is_host(target) {
            return Ignored6::BadSource;
        }
        Ignored6::Learn(binding)
    }

    /// Echo request to a gateway address or the router address -> echo reply from it.
    fn echo(&self, packet: &Icmpv6Packet<&[u8]>) -> Result<Vec<u8>, Ignored6> {
        let malformed = Ignored6::Malformed(Layer6::Icmpv6);
        if self.dst.is_multicast() || self.dst_mac != self.home.gateway_mac {
            return Err(Ignored6::NotForUs);
        }
        if !self.home.is_host(self.src) {
            return Err(Ignored6::BadSource);
        }
        let caps = ChecksumCapabilities::default();
        let Icmpv6Repr::EchoRequest {
            ident,
            seq_no,
            data,
        } = Icmpv6Repr::parse(&self.src, &self.dst, packet, &caps).map_err(|_| malformed)?
        else {
            return Err(malformed);
        };
        let reply = Icmpv6Repr::EchoReply {
            ident,
            seq_no,
            data,
        };
        let to = Addressing {
            src_mac: self.home.gateway_mac,
            dst_mac: self.src_mac,
            src: self.dst,
            dst: self.src,
            hop_limit: REPLY_HOP_LIMIT,
        };
        icmpv6_frame(&to, reply.buffer_len(), |out| {
            reply.emit(&to.src, &to.dst, out, &caps);
        })
        .ok_or(malformed)
    }
}
