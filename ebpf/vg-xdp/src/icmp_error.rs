//! ICMP error translation (RFC 5508 §4.2, RFC 5382 REQ-9): destination unreachable (packet
//! too big included), time exceeded and parameter problem quote the packet that caused them,
//! and that quote carries the other side's view of the mapping. Both are translated: the
//! outer address, the quoted address and port (ICMP echo: identifier), the quoted IPv4
//! header checksum, the quoted transport checksum when it is quoted, and the ICMP checksum
//! over all of it (incrementally, RFC 1624).
//!
//! ```text
//!  offset  14          34         42                 62
//!          | IPv4 outer | ICMP 8 B | IPv4 quoted 20 B | quoted TCP/UDP/ICMP (8 B or more)
//! ```
//! Upstream the LSL is stripped first, downstream the frame arrives plain: the offsets are
//! fixed either way. Quotes with IP options are not translated (counted).

use aya_ebpf::programs::XdpContext;
use nerg_abi::{Config, Counter, DropReason, NatFwdKey, SubscriberId};

use crate::{
    NAT_FWD, Verdict, count_stat, csum, downstream,
    fwd::{self, IP, L4, Side},
    nat::Public,
    packet::{icmptype, ipproto, ipv4off, load, store},
};

const ICMP: usize = L4;
const QUOTED_IP: usize = ICMP + 8;
const QUOTED_L4: usize = QUOTED_IP + 20;

/// The flow of the quoted packet.
#[derive(Clone, Copy)]
struct Quoted {
    proto: u8,
    /// Raw addresses and ports (ICMP: the echo identifier in both).
    src: u32,
    dst: u32,
    sport: u16,
    dport: u16,
    /// End of the IPv4 datagram (bytes beyond it are link padding, never rewritten).
    end: usize,
}

#[inline(always)]
fn quoted(ctx: &XdpContext) -> Result<Quoted, Verdict> {
    let unsupported = Verdict::Drop(DropReason::IcmpUnsupported);
    let version_ihl: u8 = load(ctx, QUOTED_IP)?;
    if version_ihl != 0x45 {
        return Err(unsupported);
    }
    let tot_len: [u8; 2] = load(ctx, IP + ipv4off::TOT_LEN)?;
    let end = IP + usize::from(u16::from_be_bytes(tot_len));
    if end < QUOTED_L4 + 8 {
        return Err(Verdict::Drop(DropReason::Truncated));
    }
    let proto: u8 = load(ctx, QUOTED_IP + 9)?;
    let src: u32 = load(ctx, QUOTED_IP + ipv4off::SADDR)?;
    let dst: u32 = load(ctx, QUOTED_IP + ipv4off::DADDR)?;
    let (sport, dport) = match proto {
        ipproto::TCP | ipproto::UDP => (load(ctx, QUOTED_L4)?, load(ctx, QUOTED_L4 + 2)?),
        ipproto::ICMP => {
            let t: u8 = load(ctx, QUOTED_L4)?;
            if t != icmptype::ECHO_REQUEST && t != icmptype::ECHO_REPLY {
                return Err(unsupported);
            }
            let id: u16 = load(ctx, QUOTED_L4 + 4)?;
            (id, id)
        }
        _ => return Err(Verdict::Drop(DropReason::ProtoUnsupported)),
    };
    Ok(Quoted {
        proto,
        src,
        dst,
        sport,
        dport,
        end,
    })
}

/// Rewrites the quoted packet's address and port on `side` to `to`, with every checksum the
/// change touches.
#[inline(always)]
fn rewrite_quoted(ctx: &XdpContext, q: &Quoted, side: Side, to: Public) -> Result<(), Verdict> {
    let addr_off = match side {
        Side::Source => QUOTED_IP + ipv4off::SADDR,
        Side::Destination => QUOTED_IP + ipv4off::DADDR,
    };
    let port_off = match (side, q.proto) {
        (_, ipproto::ICMP) => QUOTED_L4 + 4,
        (Side::Source, _) => QUOTED_L4,
        (Side::Destination, _) => QUOTED_L4 + 2,
    };
    let check_off = match q.proto {
        ipproto::TCP => QUOTED_L4 + 16,
        ipproto::UDP => QUOTED_L4 + 6,
        _ => QUOTED_L4 + 2,
    };
    let old_addr: u32 = load(ctx, addr_off)?;
    let old_port: u16 = load(ctx, port_off)?;
    let old_ip_check: u16 = load(ctx, QUOTED_IP + ipv4off::CHECK)?;
    let new_ip_check = csum::replace32(old_ip_check, old_addr, to.ip);
    let mut icmp_check: u16 = load(ctx, ICMP + 2)?;

    // The quoted transport checksum, when the quote reaches it (TCP's needs 18 bytes).
    if check_off + 2 <= q.end {
        let old_l4: u16 = load(ctx, check_off)?;
        let absent = q.proto == ipproto::UDP && old_l4 == 0;
        if !absent {
            let mut new_l4 = old_l4;
            if q.proto != ipproto::ICMP {
                new_l4 = csum::replace32(new_l4, old_addr, to.ip);
            }
            new_l4 = csum::replace16(new_l4, old_port, to.port);
            if q.proto == ipproto::UDP && new_l4 == 0 {
                new_l4 = 0xffff;
            }
            store(ctx, check_off, new_l4)?;
            icmp_check = csum::replace16(icmp_check, old_l4, new_l4);
        }
    }
    store(ctx, addr_off, to.ip)?;
    store(ctx, port_off, to.port)?;
    store(ctx, QUOTED_IP + ipv4off::CHECK, new_ip_check)?;
    icmp_check = csum::replace32(icmp_check, old_addr, to.ip);
    icmp_check = csum::replace16(icmp_check, old_port, to.port);
    icmp_check = csum::replace16(icmp_check, old_ip_check, new_ip_check);
    store(ctx, ICMP + 2, icmp_check)
}

/// What [`upstream`] needs, behind one pointer (BPF calls take five arguments at most).
pub(crate) struct FromHome<'a> {
    pub(crate) cfg: &'a Config,
    pub(crate) sub_id: SubscriberId,
    /// Where the IPv4 header starts in the frame as received (behind the LSL).
    pub(crate) ip_off: usize,
    /// The error's source: the home host.
    pub(crate) saddr: u32,
    pub(crate) host_mac: [u8; 6],
}

/// An ICMP error from a home host about a packet it received through its mapping (port
/// unreachable for an inbound datagram, say): the outer source and the quoted destination
/// become the mapping's public address and port. The LSL is stripped, then the frame is
/// routed like any upstream packet.
#[inline(never)]
pub(crate) fn upstream(ctx: &XdpContext, h: &FromHome) -> Result<Verdict, Verdict> {
    fwd::adjust_head(ctx, (h.ip_off - IP) as i32)?;
    let q = quoted(ctx)?;
    if q.dst != h.saddr {
        return Err(Verdict::Drop(DropReason::IcmpUnsupported));
    }
    let key = NatFwdKey {
        sub: h.sub_id,
        priv_ip: q.dst,
        priv_port: q.dport,
        proto: q.proto,
        _pad: 0,
    };
    // SAFETY: plain lookup; the value is copied out at once.
    let m = *unsafe { NAT_FWD.get(key) }.ok_or(Verdict::Drop(DropReason::NoMapping))?;
    let public = Public {
        ip: m.pub_ip,
        port: m.pub_port,
    };
    fwd::rewrite_ip(ctx, Side::Source, public.ip, true)?;
    rewrite_quoted(ctx, &q, Side::Destination, public)?;
    count_stat(Counter::NatIcmpError);
    fwd::forward(
        ctx,
        ctx_ingress(ctx),
        h.cfg.access_mac,
        h.host_mac,
        ipproto::ICMP,
    )
}

/// An ICMP error from the internet about a packet a home sent through its mapping: the
/// outer destination and the quoted source become the home host's; then the frame gets the
/// home's LSL like any downstream packet.
#[inline(never)]
pub(crate) fn downstream(ctx: &XdpContext) -> Result<Verdict, Verdict> {
    let q = quoted(ctx)?;
    let outer_dst: u32 = load(ctx, IP + ipv4off::DADDR)?;
    if q.src != outer_dst {
        return Err(Verdict::Drop(DropReason::NoMapping));
    }
    // Errors come from routers on the path, not from the endpoint: no filtering.
    let t = downstream::lookup(q.src, q.sport, q.proto, None)?;
    let ttl: u8 = load(ctx, IP + ipv4off::TTL)?;
    if ttl <= 1 {
        return Err(Verdict::Drop(DropReason::TtlExpired));
    }
    let core_mac: [u8; 6] = load(ctx, 0)?;
    let len = (ctx_len(ctx)) as u64;
    fwd::rewrite_ip(ctx, Side::Destination, t.priv_ip, true)?;
    rewrite_quoted(
        ctx,
        &q,
        Side::Source,
        Public {
            ip: t.priv_ip,
            port: t.priv_port,
        },
    )?;
    count_stat(Counter::NatIcmpError);
    downstream::deliver(&t, core_mac, len)
}

#[inline(always)]
fn ctx_ingress(ctx: &XdpContext) -> u32 {
    ctx.ingress_ifindex() as u32
}

#[inline(always)]
fn ctx_len(ctx: &XdpContext) -> usize {
    ctx.data_end() - ctx.data()
}
