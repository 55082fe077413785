//! IPv6 from a home (`vg_home6`, tail-called by `vg_access` once the LSL is known), in
//! stages: the header and its extension headers ([`super::walk`]); what is for the vG
//! itself or must never leave a home ([`control`]: RA guard, RFC 6105; DHCPv6 shield, RFC
//! 7610; ND, MLD and DHCPv6 client messages to the slow path); link scope and the gateway's
//! addresses ([`scope`]); the sender ([`check_sender`], SAVI: RFC 6620 for addresses learnt
//! from ND, RFC 7513 for DHCPv6, the requesting router for a delegated prefix); the hop
//! limit (RFC 8200 §3: 1 is answered with time exceeded by the slow path); the home's
//! upstream tier; then to another home ([`home_to_home`]) or to the core ([`to_core`]).

use aya_ebpf::programs::XdpContext;
use nerg_abi::{
    Config, Counter, Delivery, DropReason, FromHome6, PuntReason, QOS_UP, Subscriber, V6Prefix,
    ethertype, sub_flags, v6_prefix_kind,
};

use super::{
    FROM_HOME6, ICMPV6, Ip6, Neigh, Scratch, Upper, dec_hop_limit, is_gateway_link_local,
    is_link_local, is_multicast, is_unspecified, punt_allowed, scratch, walk,
};
use crate::{
    CONFIG, SUBSCRIBERS, Verdict, count_policed, count_stat, downstream,
    fwd::{self, IP, Route},
    packet::{ipproto, load},
    punt::{punt, punt_mtu},
    qos,
};

/// Deepest offset of the IPv6 header after an LSL (VXLAN over IPv6: 14 + 40 + 8 + 8 + 14).
const MAX_L3_OFF: usize = 84;

/// ICMPv6 types the fast path sorts (RFC 4443, RFC 4861, RFC 3810).
mod icmp6 {
    pub(super) const ECHO_REQUEST: u8 = 128;
    pub(super) const MLD_QUERY: u8 = 130;
    pub(super) const MLD_REPORT: u8 = 131;
    pub(super) const MLD_DONE: u8 = 132;
    pub(super) const RS: u8 = 133;
    pub(super) const RA: u8 = 134;
    pub(super) const NS: u8 = 135;
    pub(super) const NA: u8 = 136;
    pub(super) const REDIRECT: u8 = 137;
    pub(super) const MLD2_REPORT: u8 = 143;
}

/// DHCPv6 ports (RFC 8415 §7.2).
const DHCP6_CLIENT_PORT: u16 = 546;
const DHCP6_SERVER_PORT: u16 = 547;

/// `vg_home6`'s pipeline: the frame `vg_access` handed over, counted for its home whatever
/// becomes of it.
#[inline(always)]
pub(crate) fn try_home6(ctx: &XdpContext) -> Result<Verdict, Verdict> {
    let h = *FROM_HOME6
        .get(0)
        .ok_or(Verdict::Drop(DropReason::TailCallFailed))?;
    let verdict = match from_home(ctx, &h) {
        Ok(v) | Err(v) => v,
    };
    crate::count_sub(h.sub, h.len, verdict);
    Ok(verdict)
}

/// An IPv6 packet from a home past its LSL.
struct FromHome<'a> {
    h: &'a FromHome6,
    cfg: &'a Config,
    off: usize,
    ip: Ip6,
    upper: Upper,
}

#[inline(always)]
fn from_home(ctx: &XdpContext, h: &FromHome6) -> Result<Verdict, Verdict> {
    let cfg = CONFIG.get(0).ok_or(Verdict::Pass)?;
    let sub = match SUBSCRIBERS.get(h.sub) {
        Some(sub) if sub.flags & sub_flags::ACTIVE != 0 => sub,
        _ => return Err(Verdict::Drop(DropReason::UnknownLsl)),
    };
    let off = usize::from(h.l3_off);
    if off > MAX_L3_OFF {
        return Err(Verdict::Drop(DropReason::Truncated));
    }
    let s = scratch()?;
    s.load_header(ctx, off)?;
    let ip = s.ip6(ctx, off)?;
    let upper = walk(ctx, off, ip.next)?;
    let p = FromHome {
        h,
        cfg,
        off,
        ip,
        upper,
    };
    if let Some(verdict) = control(ctx, &p)? {
        return Ok(verdict);
    }
    let target = scope(ctx, &p, s, sub)?;
    check_sender(&p, s)?;
    if p.ip.hop_limit <= 1 {
        return Ok(punt(ctx, h.sub, PuntReason::HopLimitExceeded));
    }
    let bytes = u64::from(p.ip.total_len());
    if !qos::admit::<QOS_UP>(h.sub, &sub.qos[QOS_UP], bytes) {
        count_policed::<QOS_UP>(h.sub, bytes);
        return Err(Verdict::Drop(DropReason::RateLimited));
    }
    match target {
        Some(t) => home_to_home(ctx, &p, s, t),
        None => to_core(ctx, &p, s),
    }
}

/// Why a packet to one of the gateway's addresses is punted: an echo request as such, the
/// rest under the catch-all.
#[inline(always)]
pub(crate) fn gateway_reason(ctx: &XdpContext, u: &Upper) -> Result<PuntReason, Verdict> {
    Ok(if icmp_type(ctx, u)? == Some(icmp6::ECHO_REQUEST) {
        PuntReason::Icmpv6ToGateway
    } else {
        PuntReason::Ipv6
    })
}

/// The ICMPv6 type of the packet, when it is ICMPv6 with its header in this fragment.
#[inline(always)]
fn icmp_type(ctx: &XdpContext, u: &Upper) -> Result<Option<u8>, Verdict> {
    if u.proto != ICMPV6 || u.later_fragment {
        return Ok(None);
    }
    // Type and code: a one-byte read at a variable offset lets LLVM turn `p + 1 > end` into
    // `p >= end`, from which the verifier learns no readable range.
    load::<[u8; 2]>(ctx, u.off).map(|tc| Some(tc[0]))
}

/// Stage 1: control traffic. RAs, redirects and DHCPv6 server messages never come from a
/// home (dropped); ND, MLD and DHCPv6 client messages go to the slow path, whatever their
/// addresses (ND and DHCPv6 use link-local and multicast ones), before anti-spoofing: they
/// are how the slow path learns the home's addresses.
#[inline(always)]
fn control(ctx: &XdpContext, p: &FromHome) -> Result<Option<Verdict>, Verdict> {
    let sub = p.h.sub;
    if let Some(t) = icmp_type(ctx, &p.upper)? {
        return Ok(match t {
            icmp6::RA | icmp6::REDIRECT => Some(Verdict::Drop(DropReason::RaGuard)),
            icmp6::RS | icmp6::NS | icmp6::NA => Some(punt(ctx, sub, PuntReason::Nd)),
            icmp6::MLD_QUERY | icmp6::MLD_REPORT | icmp6::MLD_DONE | icmp6::MLD2_REPORT => {
                Some(punt(ctx, sub, PuntReason::Mld))
            }
            _ => None,
        });
    }
    if p.upper.proto == ipproto::UDP && !p.upper.later_fragment {
        let ports: [u8; 4] = load(ctx, p.upper.off)?;
        let sport = u16::from_be_bytes([ports[0], ports[1]]);
        let dport = u16::from_be_bytes([ports[2], ports[3]]);
        if dport == DHCP6_SERVER_PORT {
            return Ok(Some(punt(ctx, sub, PuntReason::Dhcpv6)));
        }
        if sport == DHCP6_SERVER_PORT && dport == DHCP6_CLIENT_PORT {
            return Ok(Some(Verdict::Drop(DropReason::RaGuard)));
        }
    }
    Ok(None)
}

/// Stage 2: where the packet may go. Multicast and link-local destinations are not routed;
/// the gateway's addresses (its link-local, its address on the LAN) are the slow path's
/// (echo requests as such, the rest under the catch-all). `Some(prefix)`: the destination
/// is in a home's prefix.
#[inline(always)]
fn scope(
    ctx: &XdpContext,
    p: &FromHome,
    s: &mut Scratch,
    sub: &Subscriber,
) -> Result<Option<&'static V6Prefix>, Verdict> {
    let to_gateway = if is_multicast(&s.dst) {
        return Err(Verdict::Drop(DropReason::NotRouted6));
    } else if is_link_local(&s.dst) {
        if !is_gateway_link_local(&s.dst, &sub.gw_mac) {
            return Err(Verdict::Drop(DropReason::NotRouted6));
        }
        true
    } else {
        false
    };
    let target = if to_gateway { None } else { s.dst_prefix() };
    // Any home's gateway address is the vG's: this home's, or another's (never a neighbour
    // to resolve in that home).
    if to_gateway || target.is_some_and(|t| super::is_gateway_address(t, &s.dst)) {
        return Err(punt(ctx, p.h.sub, gateway_reason(ctx, &p.upper)?));
    }
    Ok(target)
}

/// Stage 3, anti-spoofing: the source must lie in one of this home's prefixes, and the frame
/// come from the MAC the vG learnt for it: the host's own on the LAN, the requesting
/// router's for a delegated prefix. A link-local or unspecified source is never routed.
/// A LAN host's own neighbour entry settles it in one lookup (the table holds the home's
/// LAN addresses only, [`nerg_abi::v6_neigh_flags`]); anything else is looked up in the
/// prefix trie.
#[inline(always)]
fn check_sender(p: &FromHome, s: &mut Scratch) -> Result<(), Verdict> {
    if is_link_local(&s.src) || is_unspecified(&s.src) {
        return Err(Verdict::Drop(DropReason::NotRouted6));
    }
    if let Neigh::Mac(mac) = s.src_neighbour_on_lan(p.h.sub)
        && mac == p.h.src_mac
    {
        return Ok(());
    }
    let prefix = match s.src_prefix() {
        Some(prefix) if prefix.sub == p.h.sub && prefix.kind == v6_prefix_kind::DELEGATED => prefix,
        _ => return Err(Verdict::Drop(DropReason::Spoofed)),
    };
    match s.src_neighbour(p.h.sub, prefix) {
        Neigh::Mac(mac) if mac == p.h.src_mac => Ok(()),
        _ => Err(Verdict::Drop(DropReason::Spoofed)),
    }
}

/// Removes the LSL: the IPv6 header moves to [`IP`], behind the frame's (rewritten later)
/// Ethernet header.
#[inline(always)]
fn strip(ctx: &XdpContext, p: &FromHome) -> Result<(), Verdict> {
    fwd::adjust_head(ctx, (p.off - IP) as i32)
}

/// To the core: the route (`bpf_fib_lookup`, through the route cache), the LSL stripped,
/// the hop limit decremented, MACs from the FIB. Too big for the egress: punted as
/// received, with the egress MTU. No neighbour for the next hop: to the stack, which
/// resolves it (and decrements the hop limit itself).
#[inline(always)]
fn to_core(ctx: &XdpContext, p: &FromHome, s: &Scratch) -> Result<Verdict, Verdict> {
    let ingress = ctx.ingress_ifindex() as u32;
    let route = fwd::route6(
        ctx,
        ingress,
        p.upper.proto,
        &s.src,
        &s.dst,
        p.ip.total_len(),
    )?;
    match route {
        Route::Via {
            ifindex,
            smac,
            dmac,
        } => {
            strip(ctx, p)?;
            dec_hop_limit(ctx)?;
            fwd::write_eth_type(ctx, dmac, smac, ethertype::IPV6)?;
            count_stat(Counter::Ipv6Upstream);
            Ok(fwd::redirect(ifindex))
        }
        Route::NoNeigh => {
            strip(ctx, p)?;
            count_stat(Counter::FibNoNeigh);
            fwd::write_eth_type(ctx, p.cfg.access_mac, p.h.src_mac, ethertype::IPV6)?;
            Ok(Verdict::Pass)
        }
        Route::TooBig(mtu) => Ok(punt_mtu(ctx, p.h.sub, PuntReason::PacketTooBig, mtu)),
    }
}

/// To a home's prefix (another home, or this one's delegated prefix from its LAN): routed
/// straight there, as the core side would, through `vg_deliver`. Too big for the target's
/// LSL: punted as received (the sender gets the Packet Too Big). A neighbour the slow path
/// must resolve: punted without the LSL, for the target home, exactly as from the core.
#[inline(always)]
fn home_to_home(
    ctx: &XdpContext,
    p: &FromHome,
    s: &mut Scratch,
    t: &V6Prefix,
) -> Result<Verdict, Verdict> {
    let target = match SUBSCRIBERS.get(t.sub) {
        Some(s) if s.flags & sub_flags::ACTIVE != 0 && s.flags & sub_flags::IPV6 != 0 => s,
        _ => return Err(Verdict::Drop(DropReason::UnknownLsl)),
    };
    if target.ip6_mtu != 0 && p.ip.total_len() > target.ip6_mtu {
        return Ok(punt_mtu(
            ctx,
            p.h.sub,
            PuntReason::PacketTooBig,
            target.ip6_mtu,
        ));
    }
    let mac = match s.dst_neighbour(t.sub, t) {
        Neigh::Mac(mac) => mac,
        Neigh::Incomplete => return Err(Verdict::Drop(DropReason::NeighIncomplete)),
        Neigh::Miss => {
            if !punt_allowed(t.sub) {
                return Err(Verdict::Drop(DropReason::V6PuntLimited));
            }
            strip(ctx, p)?;
            fwd::write_eth_type(ctx, target.gw_mac, p.h.src_mac, ethertype::IPV6)?;
            return Ok(punt(ctx, t.sub, PuntReason::NeighMiss));
        }
    };
    strip(ctx, p)?;
    dec_hop_limit(ctx)?;
    count_stat(Counter::Ipv6HomeToHome);
    downstream::hand_over(&Delivery {
        sub_id: t.sub,
        priv_ip: 0,
        priv_port: 0,
        host_mac: mac,
        in_mac: p.cfg.access_mac,
        ethertype: ethertype::IPV6,
        len: (ctx.data_end() - ctx.data()) as u64,
    })
}
