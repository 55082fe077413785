//! Forwarding after NAT: strip or push the LSL encapsulation, rewrite addresses and ports
//! with incremental checksums, look the route up (`bpf_fib_lookup`), rewrite MACs, redirect
//! through the device map.
//!
//! Every rewrite happens at fixed offsets once the frame is plain Ethernet + IPv4 (the IP
//! header at 14, the transport header at 34): the verifier sees constant offsets, and each
//! access is bounds-checked again after `bpf_xdp_adjust_head`.

use aya_ebpf::{
    EbpfContext as _,
    bindings::{
        BPF_FIB_LKUP_RET_FRAG_NEEDED, BPF_FIB_LKUP_RET_NO_NEIGH, BPF_FIB_LKUP_RET_SUCCESS,
        bpf_fib_lookup,
    },
    helpers::generated::{
        bpf_fib_lookup as fib_lookup_helper, bpf_xdp_adjust_head, bpf_xdp_adjust_tail,
    },
    programs::XdpContext,
};
use nerg_abi::{Counter, DropReason, FIB_GEN_DESTINATION_ONLY, RouteHop, route_cache_slot};

use crate::{
    DEVMAP, FIB_GEN, FIB_PARAMS, ROUTE_CACHE, ROUTE_CACHE6, Verdict, count_stat, csum,
    nat::Public,
    packet::{ipproto, ipv4off, l4off, load, store},
};

/// Where the IPv4 header starts once the frame is plain Ethernet.
pub(crate) const IP: usize = 14;
/// Where the transport header starts (IPv4 without options).
pub(crate) const L4: usize = IP + ipv4off::LEN;
const AF_INET: u8 = 2;
const AF_INET6: u8 = 10;

/// Moves the frame's start by `delta` bytes (positive: remove bytes in front).
#[inline(always)]
pub(crate) fn adjust_head(ctx: &XdpContext, delta: i32) -> Result<(), Verdict> {
    // SAFETY: the helper takes the program's own context; it re-validates the new bounds.
    let rc = unsafe { bpf_xdp_adjust_head(ctx.as_ptr().cast(), delta) };
    if rc != 0 {
        return Err(Verdict::Drop(DropReason::EncapFailed));
    }
    Ok(())
}

/// Moves the frame's end by `delta` bytes (negative: cut bytes off the end).
#[inline(always)]
pub(crate) fn adjust_tail(ctx: &XdpContext, delta: i32) -> Result<(), Verdict> {
    // SAFETY: the helper takes the program's own context; it re-validates the new bounds.
    let rc = unsafe { bpf_xdp_adjust_tail(ctx.as_ptr().cast(), delta) };
    if rc != 0 {
        return Err(Verdict::Drop(DropReason::EncapFailed));
    }
    Ok(())
}

/// Which address and port a translation rewrites.
#[derive(Clone, Copy)]
pub(crate) enum Side {
    /// Upstream: source address and source port (ICMP: identifier).
    Source,
    /// Downstream: destination address and destination port (ICMP: identifier).
    Destination,
}

/// Rewrites the IPv4 address and transport port on `side` to `to`, decrements the TTL, and
/// updates the IPv4 and transport checksums incrementally. The frame must be plain Ethernet
/// + IPv4 without options, with the transport header in it (not a later fragment).
#[inline(always)]
pub(crate) fn translate(
    ctx: &XdpContext,
    proto: u8,
    side: Side,
    to: Public,
) -> Result<(), Verdict> {
    let old_addr = rewrite_ip(ctx, side, to.ip, true)?;
    rewrite_l4(ctx, proto, side, old_addr, to)
}

/// Rewrites the IPv4 address on `side` to `addr` (and decrements the TTL when `dec_ttl`),
/// updating the header checksum; returns the old address. Alone, this translates a later
/// fragment, which has no transport header.
#[inline(always)]
pub(crate) fn rewrite_ip(
    ctx: &XdpContext,
    side: Side,
    addr: u32,
    dec_ttl: bool,
) -> Result<u32, Verdict> {
    let addr_off = match side {
        Side::Source => IP + ipv4off::SADDR,
        Side::Destination => IP + ipv4off::DADDR,
    };
    let old_addr: u32 = load(ctx, addr_off)?;
    let mut check: u16 = load(ctx, IP + ipv4off::CHECK)?;
    if dec_ttl {
        let ttl_proto: [u8; 2] = load(ctx, IP + ipv4off::TTL)?;
        let new_ttl_proto = [ttl_proto[0].wrapping_sub(1), ttl_proto[1]];
        check = csum::replace16(
            check,
            u16::from_ne_bytes(ttl_proto),
            u16::from_ne_bytes(new_ttl_proto),
        );
        store(ctx, IP + ipv4off::TTL, new_ttl_proto)?;
    }
    check = csum::replace32(check, old_addr, addr);
    store(ctx, addr_off, addr)?;
    store(ctx, IP + ipv4off::CHECK, check)?;
    Ok(old_addr)
}

/// Rewrites the transport port on `side` (ICMP echo: the identifier) to `to.port` and the
/// transport checksum for the address change `old_addr -> to.ip` (TCP and UDP cover the
/// pseudo-header; ICMP does not).
#[inline(always)]
pub(crate) fn rewrite_l4(
    ctx: &XdpContext,
    proto: u8,
    side: Side,
    old_addr: u32,
    to: Public,
) -> Result<(), Verdict> {
    let port_off = match side {
        Side::Source => L4 + l4off::SPORT,
        Side::Destination => L4 + l4off::DPORT,
    };
    match proto {
        ipproto::TCP | ipproto::UDP => {
            let check_off = if proto == ipproto::TCP {
                L4 + l4off::TCP_CHECK
            } else {
                L4 + l4off::UDP_CHECK
            };
            let old_port: u16 = load(ctx, port_off)?;
            let mut l4check: u16 = load(ctx, check_off)?;
            // UDP over IPv4 may carry no checksum (0): leave it so (RFC 768).
            if proto == ipproto::TCP || l4check != 0 {
                l4check = csum::replace32(l4check, old_addr, to.ip);
                l4check = csum::replace16(l4check, old_port, to.port);
                if proto == ipproto::UDP && l4check == 0 {
                    l4check = 0xffff;
                }
                store(ctx, check_off, l4check)?;
            }
            store(ctx, port_off, to.port)?;
        }
        _ => {
            // ICMP echo: the identifier is the "port"; no pseudo-header in the checksum.
            let old_id: u16 = load(ctx, L4 + l4off::ICMP_ID)?;
            let check: u16 = load(ctx, L4 + l4off::ICMP_CHECK)?;
            store(
                ctx,
                L4 + l4off::ICMP_CHECK,
                csum::replace16(check, old_id, to.port),
            )?;
            store(ctx, L4 + l4off::ICMP_ID, to.port)?;
        }
    }
    Ok(())
}

/// The route to `daddr` (from `saddr`) for a packet that arrived on `ifindex`.
pub(crate) enum Route {
    /// Forward out of `ifindex` with these MACs.
    Via {
        ifindex: u32,
        smac: [u8; 6],
        dmac: [u8; 6],
    },
    /// Routed, but the next hop's MAC is unknown: the stack must resolve it.
    NoNeigh,
    /// Routed, but the packet is longer than the egress MTU (host byte order).
    TooBig(u16),
}

/// The route to `daddr` for an IPv4 packet from `saddr` that arrived on `ifindex`: from
/// this CPU's route cache when it holds this route in the current generation for packets at
/// least this long, else `bpf_fib_lookup` (whose successful answer then fills the slot).
///
/// A lookup costs about as much as the rest of the upstream path; the cache makes an
/// established flow's packet a few loads and compares. It stays exact through vgd: any
/// route, neighbour, link, address, rule or nexthop change bumps `NERG_FIB_GEN`
/// (`vg::fastpath::fib`), and an entry of an older generation is looked up again. Per CPU,
/// so entries are never written by two CPUs at once.
#[inline(always)]
pub(crate) fn route(
    ctx: &XdpContext,
    ifindex: u32,
    proto: u8,
    saddr: u32,
    daddr: u32,
    tot_len: u16,
) -> Result<Route, Verdict> {
    let generation = FIB_GEN.get(0).copied().unwrap_or(0);
    // Where the routing depends on the destination alone (vgd says so in the generation),
    // every home's packets to one destination share an entry: light flows from many homes
    // hit. Otherwise the key is everything the lookup is given.
    let (key_saddr, key_proto) = if generation & FIB_GEN_DESTINATION_ONLY != 0 {
        (0, 0)
    } else {
        (saddr, proto)
    };
    let slot = ROUTE_CACHE
        .get_ptr_mut(route_cache_slot(key_saddr, daddr, ifindex))
        .ok_or(Verdict::Drop(DropReason::NoRoute))?;
    // SAFETY: a per-CPU array slot from a successful lookup: valid and aligned for the
    // program run, and only this CPU uses it (XDP runs one program at a time per CPU).
    let e = unsafe { &mut *slot };
    let same = e.daddr == daddr
        && e.saddr == key_saddr
        && e.proto == key_proto
        && same_hop(&e.hop, ifindex, generation);
    if same && tot_len <= e.hop.max_len {
        return Ok(cached(&e.hop));
    }
    count_stat(Counter::FibLookup);
    let p = fib_params()?;
    p.family = AF_INET;
    p.l4_protocol = proto;
    p.__bindgen_anon_1.tot_len = tot_len;
    p.ifindex = ifindex;
    p.__bindgen_anon_3.ipv4_src = saddr;
    p.__bindgen_anon_4.ipv4_dst = daddr;
    let route = fib_lookup(ctx, p)?;
    if let Route::TooBig(_) = route {
        return Err(Verdict::Drop(DropReason::FragNeeded));
    }
    if remember(&mut e.hop, same, ifindex, generation, &route, tot_len) {
        e.saddr = key_saddr;
        e.daddr = daddr;
        e.proto = key_proto;
    }
    Ok(route)
}

/// The cached hop is for `ifindex` and this generation.
#[inline(always)]
fn same_hop(hop: &RouteHop, ifindex: u32, generation: u32) -> bool {
    hop.valid == 1 && hop.in_ifindex == ifindex && hop.generation == generation
}

/// The route a cached hop gives.
#[inline(always)]
fn cached(hop: &RouteHop) -> Route {
    Route::Via {
        ifindex: hop.out_ifindex,
        smac: hop.smac,
        dmac: hop.dmac,
    }
}

/// Stores a successful lookup's answer for a packet of `tot_len` (`same`: the slot already
/// holds this key in this generation). Returns whether it stored (the caller then writes
/// the key).
#[inline(always)]
fn remember(
    hop: &mut RouteHop,
    same: bool,
    ifindex: u32,
    generation: u32,
    route: &Route,
    tot_len: u16,
) -> bool {
    let Route::Via {
        ifindex: out,
        smac,
        dmac,
    } = *route
    else {
        return false;
    };
    // The same route for a longer packet only raises the length; anything else replaces
    // the slot.
    if !same || hop.out_ifindex != out || hop.dmac != dmac || hop.smac != smac {
        hop.max_len = 0;
    }
    hop.in_ifindex = ifindex;
    hop.generation = generation;
    hop.out_ifindex = out;
    hop.smac = smac;
    hop.dmac = dmac;
    if tot_len > hop.max_len {
        hop.max_len = tot_len;
    }
    hop.valid = 1;
    true
}

/// The per-CPU `bpf_fib_lookup` parameter block, zeroed: 64 bytes kept off the stack,
/// which the whole call chain of a program shares (512 bytes).
#[inline(always)]
fn fib_params() -> Result<&'static mut bpf_fib_lookup, Verdict> {
    let p = FIB_PARAMS
        .get_ptr_mut(0)
        .ok_or(Verdict::Drop(DropReason::NoRoute))?;
    // SAFETY: a per-CPU array slot from a successful lookup: valid and aligned for the
    // program run, and only this CPU uses it (XDP runs one program at a time per CPU).
    let p = unsafe { &mut *p };
    // SAFETY: bpf_fib_lookup is plain data; all-zero is a valid value.
    *p = unsafe { core::mem::zeroed() };
    Ok(p)
}

/// Runs `bpf_fib_lookup` on the filled-in `p`.
#[inline(always)]
fn fib_lookup(ctx: &XdpContext, p: &mut bpf_fib_lookup) -> Result<Route, Verdict> {
    // SAFETY: `p` is a valid, initialised bpf_fib_lookup of the size passed.
    let rc = unsafe {
        fib_lookup_helper(
            ctx.as_ptr(),
            p,
            core::mem::size_of::<bpf_fib_lookup>() as i32,
            0,
        )
    };
    match rc as u32 {
        BPF_FIB_LKUP_RET_SUCCESS => Ok(Route::Via {
            ifindex: p.ifindex,
            smac: p.smac,
            dmac: p.dmac,
        }),
        BPF_FIB_LKUP_RET_NO_NEIGH => Ok(Route::NoNeigh),
        // SAFETY: on FRAG_NEEDED the kernel wrote the egress MTU into this union member.
        BPF_FIB_LKUP_RET_FRAG_NEEDED => Ok(Route::TooBig(unsafe { p.__bindgen_anon_1.mtu_result })),
        _ => Err(Verdict::Drop(DropReason::NoRoute)),
    }
}

/// The route for an IPv6 packet of protocol `proto` (the outer header of VXLAN over IPv6,
/// or a home's routed IPv6) of `tot_len` bytes from its network header on: from this CPU's
/// IPv6 route cache as in [`route`], always with the full key, else `bpf_fib_lookup`.
/// [`Route::TooBig`] is returned, never cached: the caller answers it.
#[inline(always)]
pub(crate) fn route6<A: Words>(
    ctx: &XdpContext,
    ifindex: u32,
    proto: u8,
    saddr: &A,
    daddr: &A,
    tot_len: u16,
) -> Result<Route, Verdict> {
    // Word by word from the callers' memory: no 16-byte temporaries on the stack.
    let w = |a: &A, i: usize| a.word(i);
    let generation = FIB_GEN.get(0).copied().unwrap_or(0);
    let slot = ROUTE_CACHE6
        .get_ptr_mut(route_cache_slot(
            w(saddr, 3),
            w(daddr, 3) ^ w(daddr, 2),
            ifindex,
        ))
        .ok_or(Verdict::Drop(DropReason::NoRoute))?;
    // SAFETY: a per-CPU array slot from a successful lookup: valid and aligned for the
    // program run, and only this CPU uses it (XDP runs one program at a time per CPU).
    let e = unsafe { &mut *slot };
    let mut same = same_hop(&e.hop, ifindex, generation) && e.proto == proto;
    let mut i = 0;
    while i < 4 {
        same = same && e.saddr[i] == w(saddr, i) && e.daddr[i] == w(daddr, i);
        i += 1;
    }
    if same && tot_len <= e.hop.max_len {
        return Ok(cached(&e.hop));
    }
    count_stat(Counter::FibLookup);
    let p = fib_params()?;
    p.family = AF_INET6;
    p.l4_protocol = proto;
    p.__bindgen_anon_1.tot_len = tot_len;
    p.ifindex = ifindex;
    let mut i = 0;
    while i < 4 {
        // SAFETY: writes to plain integer fields of the union, which holds IPv6 here.
        unsafe {
            p.__bindgen_anon_3.ipv6_src[i] = w(saddr, i);
            p.__bindgen_anon_4.ipv6_dst[i] = w(daddr, i);
        }
        i += 1;
    }
    let route = fib_lookup(ctx, p)?;
    if remember(&mut e.hop, same, ifindex, generation, &route, tot_len) {
        e.proto = proto;
        let mut i = 0;
        while i < 4 {
            e.saddr[i] = w(saddr, i);
            e.daddr[i] = w(daddr, i);
            i += 1;
        }
    }
    Ok(route)
}

/// An IPv6 address read as raw words (network order in memory).
pub(crate) trait Words {
    /// Word `i` (0..4).
    fn word(&self, i: usize) -> u32;
}

/// Bytes (the configuration's and the homes' VTEP addresses): assembled a byte at a time.
impl Words for [u8; 16] {
    #[inline(always)]
    fn word(&self, i: usize) -> u32 {
        u32::from_ne_bytes([
            self[4 * i],
            self[4 * i + 1],
            self[4 * i + 2],
            self[4 * i + 3],
        ])
    }
}

/// Words (the IPv6 path's scratch addresses): loaded whole.
impl Words for [u32; 4] {
    #[inline(always)]
    fn word(&self, i: usize) -> u32 {
        self[i]
    }
}

/// Writes the Ethernet header (`dst`, `src`, IPv4) at the start of the frame.
#[inline(always)]
pub(crate) fn write_eth(ctx: &XdpContext, dst: [u8; 6], src: [u8; 6]) -> Result<(), Verdict> {
    write_eth_type(ctx, dst, src, nerg_abi::ethertype::IPV4)
}

/// Writes the Ethernet header (`dst`, `src`, `ethertype` in host byte order) at the start of
/// the frame.
#[inline(always)]
pub(crate) fn write_eth_type(
    ctx: &XdpContext,
    dst: [u8; 6],
    src: [u8; 6],
    ethertype: u16,
) -> Result<(), Verdict> {
    store(ctx, 0, dst)?;
    store(ctx, 6, src)?;
    store(ctx, 12, ethertype.to_be_bytes())
}

/// Redirects the frame out of `ifindex` through the device map.
#[inline(always)]
pub(crate) fn redirect(ifindex: u32) -> Verdict {
    match DEVMAP.redirect(ifindex, 0) {
        Ok(_) => Verdict::Redirect,
        Err(_) => Verdict::Drop(DropReason::NoEgress),
    }
}

/// After translation: route and redirect, or hand the frame to the stack (addressed to the
/// ingress interface's own MAC, from `src_mac`) when the next hop's MAC is unknown.
#[inline(always)]
pub(crate) fn forward(
    ctx: &XdpContext,
    in_ifindex: u32,
    in_mac: [u8; 6],
    src_mac: [u8; 6],
    proto: u8,
) -> Result<Verdict, Verdict> {
    let saddr: u32 = load(ctx, IP + ipv4off::SADDR)?;
    let daddr: u32 = load(ctx, IP + ipv4off::DADDR)?;
    let tot_len: [u8; 2] = load(ctx, IP + ipv4off::TOT_LEN)?;
    match route(
        ctx,
        in_ifindex,
        proto,
        saddr,
        daddr,
        u16::from_be_bytes(tot_len),
    )? {
        Route::Via {
            ifindex,
            smac,
            dmac,
        } => {
            write_eth(ctx, dmac, smac)?;
            Ok(redirect(ifindex))
        }
        Route::NoNeigh => {
            count_stat(Counter::FibNoNeigh);
            write_eth(ctx, in_mac, src_mac)?;
            Ok(Verdict::Pass)
        }
        Route::TooBig(_) => Err(Verdict::Drop(DropReason::FragNeeded)),
    }
}
