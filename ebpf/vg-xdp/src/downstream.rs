//! Core-side ingress: traffic to one of our public addresses is translated back to the home
//! host, wrapped in the home's LSL encapsulation and redirected to the access interface;
//! IPv6 to a home's prefix is routed there ([`crate::v6::down`]) through the same delivery.
//! Everything else passes to the kernel stack.
//!
//! ```text
//!  dst public -> reverse mapping (held back? home active? port forward: host MAC from the
//!    host table; APDF home: remote endpoint permitted?) -> rewrite dst, TTL, checksums
//!    -> MSS clamp on SYN -> push LSL -> redirect
//!  802.1Q:  host gw | 8100 C | 0800 | IPv4 ...
//!  QinQ:    host gw | S-TPID S | 8100 C | 0800 | IPv4 ...
//!  VXLAN:   nh vG | 0800 | IPv4 vtep->brg | UDP sport=flow 4789 | VXLAN vni | host gw | 0800 | IPv4 ...
//! ```

use aya_ebpf::{macros::map, maps::PerCpuArray, programs::XdpContext};
use nerg_abi::{
    Config, Counter, Delivery, DropReason, FragKey, FragTarget, HostKey, NatPermitKey, NatRev,
    NatRevKey, QOS_DOWN, Subscriber, SubscriberId, config_flags, lsl_kind, nat_flags, sub_flags,
};

use crate::{
    CONFIG, FRAGS, HOSTS, HOSTS_GEN, NAT_PERMIT, NAT_REV, SUBSCRIBERS, Verdict, count_policed,
    count_stat, count_sub_down, csum,
    fwd::{self, IP, L4, Route, Side},
    nat::Public,
    packet::{
        Cursor, EthHdr, IcmpHdr, Ipv4Hdr, TcpHdr, UdpHdr, icmptype, ipproto, load, store, tcpflag,
    },
    qos,
};

/// An Ethernet header without tags.
const ETH_HEADER: u64 = 14;

/// Bytes VXLAN over IPv4 adds in front of the inner frame (RFC 7348: 14 + 20 + 8 + 8).
const VXLAN4_OVERHEAD: i32 = 50;

pub(crate) fn try_vg_core(ctx: &XdpContext, len: u64) -> Result<Verdict, Verdict> {
    let nat_on = match CONFIG.get(0) {
        Some(cfg) if cfg.flags & config_flags::VALID != 0 => cfg.nat_block_size != 0,
        _ => return Ok(Verdict::Pass),
    };
    let mut cur = Cursor::new(ctx);
    let eth: EthHdr = cur.read()?;
    if eth.ethertype() == nerg_abi::ethertype::IPV6 {
        return crate::v6::down::from_core(ctx, eth.dst, len);
    }
    if !nat_on || eth.ethertype() != nerg_abi::ethertype::IPV4 {
        return Ok(Verdict::Pass);
    }
    let ip: Ipv4Hdr = cur.read()?;
    if !crate::is_public(ip.daddr_raw()) {
        return Ok(Verdict::Pass);
    }
    if !ip.is_plain_v4()
        || usize::from(ip.tot_len()) < core::mem::size_of::<Ipv4Hdr>()
        || usize::from(ip.tot_len()) > cur.remaining() + core::mem::size_of::<Ipv4Hdr>()
    {
        return Err(Verdict::Drop(DropReason::BadIpHeader));
    }
    if ip.is_later_fragment() {
        return later_fragment(ctx, &ip, eth.dst, len);
    }
    if ip.is_fragment() && ip.protocol == ipproto::ICMP {
        return Err(Verdict::Drop(DropReason::Fragment));
    }
    let (sport, dport) = match ip.protocol {
        ipproto::TCP => {
            let tcp: TcpHdr = cur.read()?;
            (tcp.source, tcp.dest)
        }
        ipproto::UDP => {
            let udp: UdpHdr = cur.read()?;
            (udp.source_raw().to_ne_bytes(), udp.dest_bytes())
        }
        ipproto::ICMP => {
            let icmp: IcmpHdr = cur.read()?;
            if icmptype::is_error(icmp.icmp_type) {
                return crate::icmp_error::downstream(ctx);
            }
            if icmp.icmp_type != icmptype::ECHO_REPLY {
                return Err(Verdict::Drop(DropReason::IcmpUnsupported));
            }
            ([0; 2], icmp.id)
        }
        _ => return Err(Verdict::Drop(DropReason::ProtoUnsupported)),
    };
    let t = lookup(
        ip.daddr_raw(),
        u16::from_ne_bytes(dport),
        ip.protocol,
        Some((ip.saddr_raw(), u16::from_ne_bytes(sport))),
    )?;
    if ip.ttl() <= 1 {
        return Err(Verdict::Drop(DropReason::TtlExpired));
    }
    if ip.is_fragment() {
        // The first fragment: its followers carry no ports, remember where it went.
        let key = frag_key(&ip);
        let target = FragTarget {
            sub: t.sub_id,
            priv_ip: t.priv_ip,
            host_mac: t.host_mac,
            priv_port: t.priv_port,
        };
        let _ = FRAGS.insert(key, target, 0);
    }
    let syn = ip.protocol == ipproto::TCP && load::<u8>(ctx, L4 + 13)? & tcpflag::SYN != 0;
    fwd::translate(
        ctx,
        ip.protocol,
        Side::Destination,
        Public {
            ip: t.priv_ip,
            port: t.priv_port,
        },
    )?;
    if syn && t.sub.tcp_mss != 0 {
        crate::mss::clamp(ctx, t.sub.tcp_mss)?;
    }
    count_stat(Counter::NatDownstream);
    deliver(&t, eth.dst, len)
}

/// The hand-over from the entry programs to `vg_deliver` ([`Delivery`]; pinned, see there).
#[map(name = "NERG_DELIVERY")]
pub(crate) static DELIVERY: PerCpuArray<Delivery> = PerCpuArray::pinned(1, 0);

/// Sends the (translated) frame to home host `t`: records the target for `vg_deliver`, which
/// the entry program tail-calls ([`Verdict::Deliver`]). `in_mac`: the MAC of the interface
/// the frame came in on; `len`: its length for the home's counters.
#[inline(always)]
pub(crate) fn deliver(t: &Target, in_mac: [u8; 6], len: u64) -> Result<Verdict, Verdict> {
    hand_over(&Delivery {
        sub_id: t.sub_id,
        priv_ip: t.priv_ip,
        priv_port: t.priv_port,
        host_mac: t.host_mac,
        in_mac,
        ethertype: nerg_abi::ethertype::IPV4,
        len,
    })
}

/// Records `d` for `vg_deliver` ([`Verdict::Deliver`]: the entry program tail-calls it).
#[inline(always)]
pub(crate) fn hand_over(d: &Delivery) -> Result<Verdict, Verdict> {
    let slot = DELIVERY
        .get_ptr_mut(0)
        .ok_or(Verdict::Drop(DropReason::TailCallFailed))?;
    // SAFETY: a per-CPU array slot from a successful lookup, only this CPU's.
    unsafe { *slot = *d };
    Ok(Verdict::Deliver)
}

/// `vg_deliver`'s pipeline: the target [`deliver`] recorded, the home's LSL pushed.
#[inline(always)]
pub(crate) fn try_deliver(ctx: &XdpContext) -> Result<Verdict, Verdict> {
    let cfg = match CONFIG.get(0) {
        Some(cfg) if cfg.flags & config_flags::VALID != 0 => cfg,
        _ => return Err(Verdict::Drop(DropReason::TailCallFailed)),
    };
    let d = *DELIVERY
        .get(0)
        .ok_or(Verdict::Drop(DropReason::TailCallFailed))?;
    let sub = match SUBSCRIBERS.get(d.sub_id) {
        Some(sub) if sub.flags & sub_flags::ACTIVE != 0 => sub,
        _ => return Err(Verdict::Drop(DropReason::UnknownLsl)),
    };
    let t = Target {
        sub_id: d.sub_id,
        sub,
        priv_ip: d.priv_ip,
        priv_port: d.priv_port,
        host_mac: d.host_mac,
    };
    // The home's downstream limit: core traffic and hairpinned traffic alike, charged its
    // IP bytes (the frame behind its Ethernet header, as it stands here: an IPv4 packet's
    // total length, an IPv6 packet's 40-byte header and payload).
    let ip_bytes = d.len.saturating_sub(ETH_HEADER);
    if !qos::admit::<QOS_DOWN>(d.sub_id, &sub.qos[QOS_DOWN], ip_bytes) {
        count_policed::<QOS_DOWN>(d.sub_id, ip_bytes);
        return Err(Verdict::Drop(DropReason::RateLimited));
    }
    let ethertype = if d.ethertype == nerg_abi::ethertype::IPV6 {
        nerg_abi::ethertype::IPV6
    } else {
        nerg_abi::ethertype::IPV4
    };
    let verdict = encapsulate(ctx, cfg, &t, d.in_mac, ethertype)?;
    count_sub_down(d.sub_id, d.len);
    Ok(verdict)
}

/// The home host a packet to one of our public transport addresses goes to.
pub(crate) struct Target {
    pub(crate) sub_id: SubscriberId,
    pub(crate) sub: &'static Subscriber,
    /// Raw private address and port (ICMP: identifier).
    pub(crate) priv_ip: u32,
    pub(crate) priv_port: u16,
    pub(crate) host_mac: [u8; 6],
}

/// The reverse mapping of public `pub_ip:pub_port` for `proto`, checked: not held back, the
/// home active, the host known (a port forward names an address; its MAC comes from the
/// host table), and, for a home with address-and-port-dependent filtering, `remote` (raw
/// address and port; ICMP: port 0) allowed. `remote: None` skips filtering (ICMP errors).
#[inline(always)]
pub(crate) fn lookup(
    pub_ip: u32,
    pub_port: u16,
    proto: u8,
    remote: Option<(u32, u16)>,
) -> Result<Target, Verdict> {
    let key = NatRevKey {
        pub_ip,
        pub_port,
        proto,
        _pad: 0,
    };
    // SAFETY: plain hash map lookup; the value is copied out at once.
    let rev = *unsafe { NAT_REV.get(key) }.ok_or(Verdict::Drop(DropReason::NoMapping))?;
    if rev.flags & nat_flags::TOMBSTONE != 0 {
        return Err(Verdict::Drop(DropReason::NoMapping));
    }
    let sub = match SUBSCRIBERS.get(rev.sub) {
        Some(sub) if sub.flags & sub_flags::ACTIVE != 0 => sub,
        _ => return Err(Verdict::Drop(DropReason::UnknownLsl)),
    };
    let mut host_mac = rev.host_mac;
    if rev.flags & nat_flags::STATIC != 0 {
        let host = HostKey {
            sub: rev.sub,
            ip: rev.priv_ip,
        };
        // SAFETY: plain hash map lookup; the MAC is copied out at once.
        host_mac = unsafe { HOSTS.get(host) }
            .ok_or(Verdict::Drop(DropReason::NoHost))?
            .mac;
    } else {
        still_owned(&key, &rev)?;
    }
    if rev.flags & nat_flags::STATIC == 0
        && let Some((remote_ip, remote_port)) = remote
        && sub.flags & sub_flags::FILTER_APDF != 0
    {
        let permit = NatPermitKey {
            pub_ip,
            remote_ip,
            pub_port,
            remote_port: if proto == ipproto::ICMP {
                0
            } else {
                remote_port
            },
            proto,
            _pad: [0; 3],
        };
        // SAFETY: plain hash map lookup, nothing kept.
        if unsafe { NAT_PERMIT.get(permit) }.is_none() {
            return Err(Verdict::Drop(DropReason::Filtered));
        }
    }
    Ok(Target {
        sub_id: rev.sub,
        sub,
        priv_ip: rev.priv_ip,
        priv_port: rev.priv_port,
        host_mac,
    })
}

/// Whether the dynamic mapping `rev` (at `key`) still belongs to its host: the home's host
/// generation is the one the entry was checked at, or else the host table still gives the
/// mapping's address to the mapping's MAC (then the entry takes the new generation, and the
/// packets after this one skip the table). An address released, or leased to another device
/// since, delivers nothing (`no_host`): not to the device that had it (it may still be on
/// the LAN), not to the new one (whose first packet re-owns the mapping, see
/// `nat::upstream`).
#[inline(always)]
fn still_owned(key: &NatRevKey, rev: &NatRev) -> Result<(), Verdict> {
    // Read before the host table, as upstream does: a host removed after this read raises
    // it again, so an entry never records a check as newer than it is.
    let hosts_gen = HOSTS_GEN.get(rev.sub).copied().unwrap_or(0);
    if rev.hosts_gen == hosts_gen {
        return Ok(());
    }
    let host = HostKey {
        sub: rev.sub,
        ip: rev.priv_ip,
    };
    // SAFETY: plain hash map lookup; the MAC is compared at once.
    let owned = unsafe { HOSTS.get(host) }.is_some_and(|h| h.mac == rev.host_mac);
    if !owned {
        return Err(Verdict::Drop(DropReason::NoHost));
    }
    if let Some(entry) = NAT_REV.get_ptr_mut(*key) {
        // SAFETY: a pointer from a successful lookup, valid for this program run; one plain
        // field write.
        unsafe { (*entry).hosts_gen = hosts_gen };
    }
    Ok(())
}

/// The datagram a fragment belongs to (RFC 791: source, destination, protocol, ID).
#[inline(always)]
fn frag_key(ip: &Ipv4Hdr) -> FragKey {
    FragKey {
        src: ip.saddr_raw(),
        dst: ip.daddr_raw(),
        id: ip.id_raw(),
        proto: ip.protocol,
        _pad: 0,
    }
}

/// A later fragment of a datagram whose first fragment went to a home: the same home and
/// host, the destination address rewritten (no transport header to touch).
#[inline(always)]
fn later_fragment(
    ctx: &XdpContext,
    ip: &Ipv4Hdr,
    in_mac: [u8; 6],
    len: u64,
) -> Result<Verdict, Verdict> {
    let key = frag_key(ip);
    // SAFETY: plain hash map lookup; the value is copied out at once.
    let f = *unsafe { FRAGS.get(key) }.ok_or(Verdict::Drop(DropReason::FragmentOrphan))?;
    let sub = match SUBSCRIBERS.get(f.sub) {
        Some(sub) if sub.flags & sub_flags::ACTIVE != 0 => sub,
        _ => return Err(Verdict::Drop(DropReason::UnknownLsl)),
    };
    if ip.ttl() <= 1 {
        return Err(Verdict::Drop(DropReason::TtlExpired));
    }
    fwd::rewrite_ip(ctx, Side::Destination, f.priv_ip, true)?;
    count_stat(Counter::FragmentFollowed);
    let t = Target {
        sub_id: f.sub,
        sub,
        priv_ip: f.priv_ip,
        priv_port: f.priv_port,
        host_mac: f.host_mac,
    };
    deliver(&t, in_mac, len)
}

/// A VXLAN source port from the inner flow (RFC 7348 §5: 49152..=65535).
#[inline(always)]
fn flow_port(t: &Target) -> u16 {
    let mut x = t.priv_ip ^ (u32::from(t.priv_port) << 16) ^ t.sub_id.wrapping_mul(0x9e37_79b1);
    x ^= x >> 16;
    x = x.wrapping_mul(0x85eb_ca6b);
    x ^= x >> 13;
    49152 + (x % 16384) as u16
}

/// Pushes the home's LSL encapsulation in front of the (translated) IPv4 or (routed) IPv6
/// packet (`ethertype`, host byte order), whose Ethernet header is at the start of the
/// frame, and redirects it towards the home. `in_mac` is the MAC of the interface the frame
/// came in on: the destination when the stack must resolve the BRG's VTEP.
#[inline(always)]
pub(crate) fn encapsulate(
    ctx: &XdpContext,
    cfg: &Config,
    t: &Target,
    in_mac: [u8; 6],
    ethertype: u16,
) -> Result<Verdict, Verdict> {
    let sub = t.sub;
    let host_mac = t.host_mac;
    match sub.lsl_kind {
        lsl_kind::DOT1Q => {
            fwd::adjust_head(ctx, -4)?;
            store(ctx, 0, host_mac)?;
            store(ctx, 6, sub.gw_mac)?;
            store(ctx, 12, nerg_abi::ethertype::VLAN.to_be_bytes())?;
            store(ctx, 14, sub.c_vid.to_be_bytes())?;
            store(ctx, 16, ethertype.to_be_bytes())?;
            Ok(fwd::redirect(cfg.access_ifindex))
        }
        lsl_kind::QINQ => {
            fwd::adjust_head(ctx, -8)?;
            store(ctx, 0, host_mac)?;
            store(ctx, 6, sub.gw_mac)?;
            store(ctx, 12, sub.s_tpid.to_be_bytes())?;
            store(ctx, 14, sub.s_vid.to_be_bytes())?;
            store(ctx, 16, nerg_abi::ethertype::VLAN.to_be_bytes())?;
            store(ctx, 18, sub.c_vid.to_be_bytes())?;
            store(ctx, 20, ethertype.to_be_bytes())?;
            Ok(fwd::redirect(cfg.access_ifindex))
        }
        lsl_kind::VXLAN4 => {
            // The inner Ethernet header is the one already at the front.
            fwd::write_eth_type(ctx, host_mac, sub.gw_mac, ethertype)?;
            let inner_len = (ctx.data_end() - ctx.data()) as u16;
            fwd::adjust_head(ctx, -VXLAN4_OVERHEAD)?;
            let udp_len = 8 + 8 + inner_len;
            let tot_len = 20 + udp_len;
            let src = cfg.vtep_ipv4.to_ne_bytes();
            let dst = sub.remote_vtep.to_ne_bytes();
            let tot = tot_len.to_be_bytes();
            let mut hdr = [
                0x45, 0, tot[0], tot[1], 0, 0, 0x40, 0, 64, 17, 0, 0, src[0], src[1], src[2],
                src[3], dst[0], dst[1], dst[2], dst[3],
            ];
            let check = csum::ipv4_header(&hdr).to_ne_bytes();
            hdr[10] = check[0];
            hdr[11] = check[1];
            store(ctx, IP, hdr)?;
            let sport = flow_port(t).to_be_bytes();
            let dport = cfg.vxlan_port.to_ne_bytes();
            let ulen = udp_len.to_be_bytes();
            // UDP checksum 0: allowed for VXLAN over IPv4 (RFC 7348 §5).
            store(
                ctx,
                IP + 20,
                [
                    sport[0], sport[1], dport[0], dport[1], ulen[0], ulen[1], 0, 0,
                ],
            )?;
            let vni = (sub.vni << 8).to_be_bytes();
            store(
                ctx,
                IP + 28,
                [0x08, 0, 0, 0, vni[0], vni[1], vni[2], vni[3]],
            )?;
            let ingress = ctx.ingress_ifindex() as u32;
            match fwd::route(
                ctx,
                ingress,
                ipproto::UDP,
                cfg.vtep_ipv4,
                sub.remote_vtep,
                tot_len,
            )? {
                Route::Via {
                    ifindex,
                    smac,
                    dmac,
                } => {
                    fwd::write_eth(ctx, dmac, smac)?;
                    Ok(fwd::redirect(ifindex))
                }
                Route::NoNeigh => {
                    // Let the stack resolve the BRG's VTEP: the outer packet is a plain
                    // routed UDP datagram, addressed to this interface.
                    count_stat(Counter::FibNoNeigh);
                    fwd::write_eth(ctx, in_mac, cfg.access_mac)?;
                    Ok(Verdict::Pass)
                }
                Route::TooBig(_) => Err(Verdict::Drop(DropReason::FragNeeded)),
            }
        }
        lsl_kind::VXLAN6 => vxlan6(ctx, cfg, t, in_mac, ethertype),
        _ => Err(Verdict::Drop(DropReason::UnknownLsl)),
    }
}

/// Bytes VXLAN over IPv6 adds in front of the inner frame (14 + 40 + 8 + 8).
const VXLAN6_OVERHEAD: i32 = 70;
/// Where the outer UDP header starts in VXLAN over IPv6.
const UDP6: usize = IP + 40;

/// The one's-complement sum of the transport part of the inner IPv4 packet at [`IP`] (total
/// length `tot_len`), from its own checksum: `None` when that says nothing.
#[inline(always)]
fn inner_l4_sum(ctx: &XdpContext, tot_len: u16) -> Result<Option<u32>, Verdict> {
    let frag: u16 = load(ctx, IP + 6)?;
    let proto: u8 = load(ctx, IP + 9)?;
    if u16::from_be(frag) & 0x3fff != 0 || tot_len < 20 {
        return Ok(None);
    }
    let with_pseudo = match proto {
        ipproto::ICMP => return Ok(Some(0)),
        ipproto::TCP => true,
        ipproto::UDP => load::<u16>(ctx, L4 + 6)? != 0,
        _ => false,
    };
    if !with_pseudo {
        return Ok(None);
    }
    // A valid checksum makes pseudo-header + segment sum to zero: the segment sums to the
    // pseudo-header's negation.
    let src: u32 = load(ctx, IP + 12)?;
    let dst: u32 = load(ctx, IP + 16)?;
    let mut pseudo = (src & 0xffff) + (src >> 16) + (dst & 0xffff) + (dst >> 16);
    pseudo = csum::add32(pseudo, u32::from(u16::from_ne_bytes([0, proto])));
    pseudo = csum::add32(pseudo, u32::from((tot_len - 20).to_be()));
    Ok(Some(u32::from(!csum::fold(pseudo))))
}

/// Writes an IPv6 address from map memory, in two words (no 16-byte copy on the stack).
#[inline(always)]
fn store_addr6(ctx: &XdpContext, offset: usize, a: &[u8; 16]) -> Result<(), Verdict> {
    let w = |i: usize| {
        u64::from_ne_bytes([
            a[i],
            a[i + 1],
            a[i + 2],
            a[i + 3],
            a[i + 4],
            a[i + 5],
            a[i + 6],
            a[i + 7],
        ])
    };
    store(ctx, offset, w(0))?;
    store(ctx, offset + 8, w(8))
}

/// The sum of the raw 16-bit words of `bytes` (an even length).
#[inline(always)]
fn sum_words<const N: usize>(bytes: &[u8; N]) -> u32 {
    let mut sum = 0u32;
    let mut i = 0;
    while i + 1 < N {
        sum += u32::from(u16::from_ne_bytes([bytes[i], bytes[i + 1]]));
        i += 2;
    }
    sum
}

/// VXLAN over IPv6. IPv6 wants the outer UDP checksum (RFC 8200 §8.1), over the whole inner
/// frame. Summing 1,500 bytes in XDP costs a loop the verifier walks for every length; the
/// inner packet's own checksums give the sum instead: an IPv4 header with a valid checksum
/// sums to zero (one's complement), a TCP or UDP segment to the negated pseudo-header, an
/// ICMP message to zero. The inner frame is cut to its IPv4 length first (Ethernet padding
/// is not part of the packet). When the inner checksums say nothing (a fragment, UDP
/// without checksum, another protocol) the outer checksum is zero, as RFC 6935/6936 allow
/// for tunnels (`udp6zerocsumrx` on a Linux VTEP).
///
/// An inner IPv6 packet (`ethertype`) is summed the same way: its fixed header's words
/// (IPv6 has no header checksum) and its upper-layer checksum's negated pseudo-header
/// ([`inner6_sum`]).
#[inline(always)]
fn vxlan6(
    ctx: &XdpContext,
    cfg: &Config,
    t: &Target,
    in_mac: [u8; 6],
    ethertype: u16,
) -> Result<Verdict, Verdict> {
    let sub = t.sub;
    // The inner IP header, still at its plain-Ethernet place.
    let v6 = ethertype == nerg_abi::ethertype::IPV6;
    let tot_len = if v6 {
        u16::from_be(load::<u16>(ctx, IP + 4)?).saturating_add(40)
    } else {
        u16::from_be(load::<u16>(ctx, IP + 2)?)
    };
    let frame_len = ctx.data_end() - ctx.data();
    let want = IP + usize::from(tot_len);
    if frame_len > want {
        fwd::adjust_tail(ctx, -((frame_len - want) as i32))?;
    }
    let inner_sum = if v6 {
        crate::v6::inner6_sum(ctx)?
    } else {
        inner_l4_sum(ctx, tot_len)?
    };

    fwd::write_eth_type(ctx, t.host_mac, sub.gw_mac, ethertype)?;
    let inner_len = (ctx.data_end() - ctx.data()) as u16;
    fwd::adjust_head(ctx, -VXLAN6_OVERHEAD)?;
    let udp_len = 8 + 8 + inner_len;
    let plen = udp_len.to_be_bytes();
    store(ctx, 12, nerg_abi::ethertype::IPV6.to_be_bytes())?;
    store(
        ctx,
        IP,
        [0x60u8, 0, 0, 0, plen[0], plen[1], ipproto::UDP, 64],
    )?;
    store_addr6(ctx, IP + 8, &cfg.vtep_ipv6)?;
    store_addr6(ctx, IP + 24, &sub.remote_vtep6)?;
    let sport = flow_port(t).to_be_bytes();
    let dport = cfg.vxlan_port.to_ne_bytes();
    let vni = (sub.vni << 8).to_be_bytes();
    let udp_vxlan = [
        sport[0], sport[1], dport[0], dport[1], plen[0], plen[1], 0, 0, 0x08, 0, 0, 0, vni[0],
        vni[1], vni[2], vni[3],
    ];
    let check = match inner_sum {
        None => 0,
        Some(l4) => {
            // Pseudo-header (source, destination, length, next header), UDP and VXLAN
            // headers, the inner Ethernet header; the inner IPv4 header adds zero (an inner
            // IPv6 header's words are in `l4`).
            let mut sum = sum_words(&cfg.vtep_ipv6) + sum_words(&sub.remote_vtep6);
            sum = csum::add32(sum, u32::from(u16::from_ne_bytes(plen)));
            sum = csum::add32(sum, u32::from(u16::from_ne_bytes([0, ipproto::UDP])));
            sum = csum::add32(sum, sum_words(&udp_vxlan));
            sum = csum::add32(sum, sum_words(&t.host_mac) + sum_words(&sub.gw_mac));
            let ethertype = ethertype.to_be_bytes();
            sum = csum::add32(sum, u32::from(u16::from_ne_bytes(ethertype)));
            sum = csum::add32(sum, l4);
            match !csum::fold(sum) {
                0 => 0xffff,
                c => c,
            }
        }
    };
    store(ctx, UDP6, udp_vxlan)?;
    store(ctx, UDP6 + 6, check)?;

    let ingress = ctx.ingress_ifindex() as u32;
    match fwd::route6(
        ctx,
        ingress,
        ipproto::UDP,
        &cfg.vtep_ipv6,
        &sub.remote_vtep6,
        40 + udp_len,
    )? {
        Route::Via {
            ifindex,
            smac,
            dmac,
        } => {
            store(ctx, 0, dmac)?;
            store(ctx, 6, smac)?;
            Ok(fwd::redirect(ifindex))
        }
        Route::NoNeigh => {
            // The stack resolves the BRG's VTEP (IPv6 forwarding on the access interface).
            count_stat(Counter::FibNoNeigh);
            store(ctx, 0, in_mac)?;
            store(ctx, 6, cfg.access_mac)?;
            Ok(Verdict::Pass)
        }
        Route::TooBig(_) => Err(Verdict::Drop(DropReason::FragNeeded)),
    }
}
