//! IPv6 from the core to a home (`vg_core`): the destination's home from the prefix trie,
//! the hop limit (1 or 0: dropped, as IPv4 downstream), the home's LSL MTU (too big: punted
//! for a Packet Too Big, RFC 4443 §3.2), the neighbour's MAC, then `vg_deliver` (the home's
//! tier and LSL). A destination in no home's prefix is the kernel's (the vG's own
//! addresses, ND on the core link).
//!
//! What a scan from the internet costs: every unknown address of a home's /64 would be a
//! neighbour miss. Misses (and packets too big) are punted only within the home's punt
//! limit ([`super::punt_allowed`]: 50 a second, bursts of 16), beyond it dropped and
//! counted (`v6_punt_limited`); an address the slow path is resolving (INCOMPLETE) is
//! dropped without a punt (`neigh_incomplete`). The ring sees at most the limit per home
//! whatever the scan's rate, and the slow path's own per-home limiter sits behind it.

use aya_ebpf::programs::XdpContext;
use nerg_abi::{Counter, Delivery, DropReason, PuntReason, sub_flags};

use super::{
    Neigh, dec_hop_limit, is_gateway_address, punt_allowed, scratch, up::gateway_reason, walk,
};
use crate::{
    SUBSCRIBERS, Verdict, count_stat, downstream,
    fwd::IP,
    punt::{punt, punt_mtu},
};

/// An IPv6 frame from the core (Ethernet header `in_mac` is the core interface's MAC, `len`
/// the frame's length).
#[inline(always)]
pub(crate) fn from_core(ctx: &XdpContext, in_mac: [u8; 6], len: u64) -> Result<Verdict, Verdict> {
    let s = scratch()?;
    s.load_header(ctx, IP)?;
    let Some(t) = s.dst_prefix() else {
        return Ok(Verdict::Pass);
    };
    let ip = s.ip6(ctx, IP)?;
    let sub = match SUBSCRIBERS.get(t.sub) {
        Some(s) if s.flags & sub_flags::ACTIVE != 0 && s.flags & sub_flags::IPV6 != 0 => s,
        _ => return Err(Verdict::Drop(DropReason::UnknownLsl)),
    };
    if ip.hop_limit <= 1 {
        return Err(Verdict::Drop(DropReason::TtlExpired));
    }
    // To the home's gateway address (the vG's own): the slow path answers, within the
    // home's punt limit (the internet can send any amount).
    if is_gateway_address(t, &s.dst) {
        if !punt_allowed(t.sub) {
            return Err(Verdict::Drop(DropReason::V6PuntLimited));
        }
        let upper = walk(ctx, IP, ip.next)?;
        return Ok(punt(ctx, t.sub, gateway_reason(ctx, &upper)?));
    }
    if sub.ip6_mtu != 0 && ip.total_len() > sub.ip6_mtu {
        if !punt_allowed(t.sub) {
            return Err(Verdict::Drop(DropReason::V6PuntLimited));
        }
        return Ok(punt_mtu(ctx, t.sub, PuntReason::PacketTooBig, sub.ip6_mtu));
    }
    let mac = match s.dst_neighbour(t.sub, t) {
        Neigh::Mac(mac) => mac,
        Neigh::Incomplete => return Err(Verdict::Drop(DropReason::NeighIncomplete)),
        Neigh::Miss => {
            if !punt_allowed(t.sub) {
                return Err(Verdict::Drop(DropReason::V6PuntLimited));
            }
            return Ok(punt(ctx, t.sub, PuntReason::NeighMiss));
        }
    };
    dec_hop_limit(ctx)?;
    count_stat(Counter::Ipv6Downstream);
    downstream::hand_over(&Delivery {
        sub_id: t.sub,
        priv_ip: 0,
        priv_port: 0,
        host_mac: mac,
        in_mac,
        ethertype: nerg_abi::ethertype::IPV6,
        len,
    })
}
