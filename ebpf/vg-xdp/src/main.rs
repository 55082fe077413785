//! The vG's XDP fast path.
//!
//! Each entry point is a thin `#[xdp]` function that calls a `try_` pipeline; every stage
//! returns `Result<Next, Verdict>` and one exit function ([`finish`]) counts every verdict
//! and drop reason. The access side reads top to bottom:
//! parse L2 -> classify the LSL ([`lsl`]) -> subscriber -> control traffic to the slow path
//! ([`punt`]) -> the flow's mapping -> anti-spoofing (the host table, unless the mapping
//! vouches for the sender) -> NAT ([`nat`]; filtering permissions, session limit) ->
//! strip the LSL -> translate ([`fwd`], MSS clamp [`mss`]) -> FIB -> rewrite -> redirect.
//! Side branches: ICMP errors ([`icmp_error`]), later fragments, and hairpinning (a home
//! sending to one of our public addresses is delivered straight to the target home through
//! [`downstream`]'s lookup and encapsulation).
//!
//! IPv6 is routed, not translated ([`v6`], issue 18): `vg_access` hands a home's IPv6 to
//! `vg_home6` by tail call once the LSL is known (a program of its own: the IPv4 path's code,
//! stack and verification stay as they were); `vg_core` routes IPv6 for the homes' prefixes
//! to `vg_deliver`, which pushes the LSL for either family.
//!
//! On the host (clippy, `cargo build --workspace`) the crate is an empty binary whose code is
//! only type-checked; the real object is built for `bpfel-unknown-none` by `vg/build.rs`.
#![cfg_attr(target_arch = "bpf", no_std)]
#![cfg_attr(target_arch = "bpf", no_main)]
// `atomic_xadd`: the BPF target lacks compare-and-swap, hence `fetch_add` (see nat.rs).
#![cfg_attr(target_arch = "bpf", feature(core_intrinsics))]
#![cfg_attr(target_arch = "bpf", allow(internal_features))]
#![expect(
    unsafe_code,
    reason = "eBPF programs read packet memory through raw pointers"
)]

mod csum;
mod downstream;
mod fwd;
mod icmp_error;
mod lsl;
mod mss;
mod nat;
mod packet;
mod punt;
mod qos;
mod v6;

use aya_ebpf::{
    bindings::{bpf_fib_lookup, xdp_action},
    helpers::generated::bpf_skb_change_type,
    macros::{classifier, map, xdp},
    maps::{Array, DevMapHash, HashMap, LruHashMap, PerCpuArray, ProgramArray, RingBuf},
    programs::{TcContext, XdpContext},
};
use nerg_abi::{
    Config, Counter, CounterValue, DropReason, FragKey, FragTarget, Host, HostKey, MAX_FRAGS,
    MAX_HOSTS, MAX_NAT_MAPPINGS, MAX_NAT_PERMITS, MAX_PUBLIC_IPS, MAX_SUBSCRIBERS, NatFwdKey,
    NatMapping, NatPermitKey, NatRev, NatRevKey, PUNT_RING_BYTES, PublicRange, PuntReason, QOS_UP,
    ROUTE_CACHE_SLOTS, RouteCacheEntry, RouteCacheEntry6, SubCounters, Subscriber, SubscriberId,
    VlanLslKey, Vxlan6LslKey, VxlanLslKey, config_flags, ethertype, sub_flags,
};

use crate::{
    fwd::Side,
    nat::Public,
    packet::{Cursor, EthHdr, IcmpHdr, Ipv4Hdr, TcpHdr, UdpHdr, icmptype, ipproto, tcpflag},
};

/// Per-CPU packet counters, indexed by [`Counter`].
#[map(name = "NERG_STATS")]
pub(crate) static NERG_STATS: PerCpuArray<CounterValue> = PerCpuArray::pinned(Counter::COUNT, 0);

/// Per-CPU drop counters, indexed by [`DropReason`].
#[map(name = "NERG_DROPS")]
static NERG_DROPS: PerCpuArray<CounterValue> = PerCpuArray::pinned(DropReason::COUNT, 0);

/// Fast-path configuration, one entry.
#[map(name = "NERG_CONFIG")]
pub(crate) static CONFIG: Array<Config> = Array::pinned(1, 0);

/// 802.1Q / QinQ LSLs.
#[map(name = "NERG_LSL_VLAN")]
pub(crate) static LSL_VLAN: HashMap<VlanLslKey, SubscriberId> = HashMap::pinned(MAX_SUBSCRIBERS, 0);

/// VXLAN LSLs.
#[map(name = "NERG_LSL_VXLAN")]
pub(crate) static LSL_VXLAN: HashMap<VxlanLslKey, SubscriberId> =
    HashMap::pinned(MAX_SUBSCRIBERS, 0);

/// VXLAN LSLs over IPv6.
#[map(name = "NERG_LSL_VXLAN6")]
pub(crate) static LSL_VXLAN6: HashMap<Vxlan6LslKey, SubscriberId> =
    HashMap::pinned(MAX_SUBSCRIBERS, 0);

/// Subscribers by id.
#[map(name = "NERG_SUBSCRIBERS")]
pub(crate) static SUBSCRIBERS: Array<Subscriber> = Array::pinned(MAX_SUBSCRIBERS, 0);

/// Each home's known hosts (from DHCP leases and static entries).
#[map(name = "NERG_HOSTS")]
pub(crate) static HOSTS: HashMap<HostKey, Host> = HashMap::pinned(MAX_HOSTS, 0);

/// Each home's host generation ([`nerg_abi::map_names::HOSTS_GEN`]).
#[map(name = "NERG_HOSTS_GEN")]
pub(crate) static HOSTS_GEN: Array<u32> = Array::pinned(MAX_SUBSCRIBERS, 0);

/// Per-subscriber counters.
#[map(name = "NERG_SUB_COUNTERS")]
static SUB_COUNTERS: PerCpuArray<SubCounters> = PerCpuArray::pinned(MAX_SUBSCRIBERS, 0);

/// Frames for the slow path.
#[map(name = "NERG_PUNT")]
pub(crate) static PUNT: RingBuf = RingBuf::pinned(PUNT_RING_BYTES, 0);

/// NAT mappings, upstream direction.
#[map(name = "NERG_NAT_FWD")]
pub(crate) static NAT_FWD: HashMap<NatFwdKey, NatMapping> = HashMap::pinned(MAX_NAT_MAPPINGS, 0);

/// NAT mappings, downstream direction; also which public ports are taken.
#[map(name = "NERG_NAT_REV")]
pub(crate) static NAT_REV: HashMap<NatRevKey, NatRev> = HashMap::pinned(MAX_NAT_MAPPINGS, 0);

/// Our public addresses.
#[map(name = "NERG_PUBLIC_IPS")]
pub(crate) static PUBLIC_IPS: HashMap<u32, u32> = HashMap::pinned(MAX_PUBLIC_IPS, 0);

/// The span of [`PUBLIC_IPS`] ([`is_public`]).
#[map(name = "NERG_PUBLIC_RANGE")]
pub(crate) static PUBLIC_RANGE: Array<PublicRange> = Array::pinned(1, 0);

/// Remote endpoints the mappings of APDF homes have sent to.
#[map(name = "NERG_NAT_PERMIT")]
pub(crate) static NAT_PERMIT: HashMap<NatPermitKey, u64> = HashMap::pinned(MAX_NAT_PERMITS, 0);

/// Each home's mapping count, for its session limit.
#[map(name = "NERG_SUB_SESSIONS")]
pub(crate) static SUB_SESSIONS: Array<u64> = Array::pinned(MAX_SUBSCRIBERS, 0);

/// Where later fragments go, from their datagram's first fragment (LRU: an entry is only
/// needed for the datagram's few microseconds in flight).
#[map(name = "NERG_FRAGS")]
pub(crate) static FRAGS: LruHashMap<FragKey, FragTarget> = LruHashMap::pinned(MAX_FRAGS, 0);

/// Scratch space for `bpf_fib_lookup`'s parameters, one per CPU (off the 512-byte stack).
#[map(name = "NERG_FIB_PARAMS")]
pub(crate) static FIB_PARAMS: PerCpuArray<bpf_fib_lookup> = PerCpuArray::with_max_entries(1, 0);

/// The route generation (vgd bumps it on route, neighbour, link, address and rule changes).
#[map(name = "NERG_FIB_GEN")]
pub(crate) static FIB_GEN: Array<u32> = Array::with_max_entries(1, 0);

/// `bpf_fib_lookup` results, per CPU ([`fwd::route`]).
#[map(name = "NERG_ROUTE_CACHE")]
pub(crate) static ROUTE_CACHE: PerCpuArray<RouteCacheEntry> =
    PerCpuArray::with_max_entries(ROUTE_CACHE_SLOTS, 0);

/// IPv6 `bpf_fib_lookup` results, per CPU ([`fwd::route6`]).
#[map(name = "NERG_ROUTE_CACHE6")]
pub(crate) static ROUTE_CACHE6: PerCpuArray<RouteCacheEntry6> =
    PerCpuArray::with_max_entries(ROUTE_CACHE_SLOTS, 0);

/// Tail-call targets: [`nerg_abi::JUMP_DELIVER`] = `vg_deliver` (filled by the loader).
/// Pinned like the state maps: the kernel empties a program array when its last user
/// reference (a file descriptor or a pin) goes away, so without the pin every downstream
/// frame would fail its tail call from the moment one vgd exits until the next one has
/// loaded (`tail_call_failed`), although the programs stay attached through their links.
#[map(name = "NERG_JUMP")]
static JUMP: ProgramArray = ProgramArray::pinned(nerg_abi::JUMP_SLOTS, 0);

/// Interfaces frames are redirected to, keyed by ifindex.
#[map(name = "NERG_DEVMAP")]
pub(crate) static DEVMAP: DevMapHash = DevMapHash::pinned(64, 0);

/// The outcome of a pipeline: what to tell the kernel, and why when dropping.
#[derive(Clone, Copy)]
pub(crate) enum Verdict {
    /// Hand the frame to the kernel stack.
    Pass,
    /// Drop the frame, counted under the reason.
    Drop(DropReason),
    /// The frame was copied to the slow path; drop the original.
    Punted,
    /// The frame was redirected to another interface.
    Redirect,
    /// The frame goes to a home: [`downstream::deliver`] wrote where; the entry program
    /// tail-calls `vg_deliver`, which encapsulates, redirects and counts the verdict.
    Deliver,
    /// IPv6 from a home with IPv6 on: [`home_frame`] wrote the LSL's outcome to
    /// `NERG_FROM_HOME6`; `vg_access` tail-calls `vg_home6`, which routes, counts the
    /// verdict and the home's counters.
    Home6,
}

/// Access-side ingress: LSL termination and upstream NAT.
#[xdp]
fn vg_access(ctx: XdpContext) -> u32 {
    let len = (ctx.data_end() - ctx.data()) as u64;
    count_stat(Counter::AccessRxPackets);
    count(&NERG_STATS, Counter::AccessRxBytes.index(), len);
    let verdict = match try_vg_access(&ctx, len) {
        Ok(verdict) | Err(verdict) => verdict,
    };
    finish(&ctx, verdict)
}

/// Core-side ingress: downstream NAT and LSL encapsulation.
#[xdp]
fn vg_core(ctx: XdpContext) -> u32 {
    let len = (ctx.data_end() - ctx.data()) as u64;
    count_stat(Counter::CoreRxPackets);
    count(&NERG_STATS, Counter::CoreRxBytes.index(), len);
    let verdict = match downstream::try_vg_core(&ctx, len) {
        Ok(verdict) | Err(verdict) => verdict,
    };
    finish(&ctx, verdict)
}

/// Delivery to a home, tail-called by the entries with the target in
/// [`downstream::DELIVERY`]: the home's LSL encapsulation, FIB for VXLAN, redirect to the
/// access side. A program of its own: its stack and verification are apart from the
/// entries' (the 512-byte stack is shared by a whole call chain).
#[xdp]
fn vg_deliver(ctx: XdpContext) -> u32 {
    let verdict = match downstream::try_deliver(&ctx) {
        Ok(verdict) | Err(verdict) => verdict,
    };
    finish(&ctx, verdict)
}

/// IPv6 from a home, tail-called by `vg_access` with the LSL in [`v6::FROM_HOME6`] ([`v6::up`]).
#[xdp]
fn vg_home6(ctx: XdpContext) -> u32 {
    let verdict = match v6::up::try_home6(&ctx) {
        Ok(verdict) | Err(verdict) => verdict,
    };
    finish(&ctx, verdict)
}

/// tc ingress on the access interface, behind `vg_access`: a frame the XDP program handed
/// to the stack after decapsulation (FIB `NO_NEIGH`: the stack resolves the next hop) is
/// addressed to this interface, but on veth the packet type was set from the frame's
/// original destination (the home's gateway MAC) before XDP ran, so the stack would drop it
/// as PACKET_OTHERHOST. On a physical NIC XDP runs first and this program changes nothing.
#[classifier]
fn vg_access_tc(ctx: TcContext) -> i32 {
    const PACKET_HOST: u32 = 0;
    const PACKET_OTHERHOST: u32 = 3;
    let skb = ctx.skb.skb;
    // SAFETY: `skb` is the program's context; pkt_type is readable by tc programs.
    if unsafe { (*skb).pkt_type } != PACKET_OTHERHOST {
        return TC_OK;
    }
    let (Some(cfg), Ok(dst)) = (CONFIG.get(0), ctx.load::<[u8; 6]>(0)) else {
        return TC_OK;
    };
    if cfg.flags & config_flags::VALID != 0 && dst == cfg.access_mac {
        // SAFETY: the helper takes the program's own context.
        unsafe { bpf_skb_change_type(skb, PACKET_HOST) };
    }
    TC_OK
}

/// `TC_ACT_OK` (`<linux/pkt_cls.h>`), spelled out: the binding's type differs by target.
const TC_OK: i32 = 0;

/// Passes every frame. Attached to veth peers: a native redirect or `XDP_TX` into a veth is
/// only delivered when the peer has an XDP program of its own.
#[xdp]
fn vg_pass(_ctx: XdpContext) -> u32 {
    xdp_action::XDP_PASS
}

fn try_vg_access(ctx: &XdpContext, len: u64) -> Result<Verdict, Verdict> {
    let cfg = match CONFIG.get(0) {
        Some(cfg) if cfg.flags & config_flags::VALID != 0 => cfg,
        // Not configured yet: behave like no program at all.
        _ => return Ok(Verdict::Pass),
    };
    let mut cur = Cursor::new(ctx);
    let eth: EthHdr = cur.read()?;
    let lsl = lsl::classify(ctx, &mut cur, &eth, cfg)?;
    let sub = match SUBSCRIBERS.get(lsl.sub) {
        Some(sub) if sub.flags & sub_flags::ACTIVE != 0 => sub,
        _ => return Err(Verdict::Drop(DropReason::UnknownLsl)),
    };
    if lsl.s_tpid != 0 && lsl.s_tpid != sub.s_tpid {
        return Err(Verdict::Drop(DropReason::BadTpid));
    }
    let verdict = home_frame(ctx, &mut cur, &lsl, sub, len);
    // `vg_home6` counts its own frames.
    if !matches!(verdict, Verdict::Home6) {
        count_sub(lsl.sub, len, verdict);
    }
    Ok(verdict)
}

/// A frame from a home, after its LSL: control traffic to the slow path, the rest checked
/// against the home's hosts and translated.
#[inline(always)]
fn home_frame(
    ctx: &XdpContext,
    cur: &mut Cursor,
    lsl: &lsl::Classified,
    sub: &Subscriber,
    len: u64,
) -> Verdict {
    match lsl.ethertype {
        ethertype::ARP => punt::punt(ctx, lsl.sub, PuntReason::Arp),
        ethertype::IPV6 if sub.flags & sub_flags::IPV6 != 0 => home_ipv6(cur, lsl, len),
        ethertype::IPV6 => punt::punt(ctx, lsl.sub, PuntReason::Ipv6),
        ethertype::IPV4 => match home_ipv4(ctx, cur, lsl, sub) {
            Ok(v) | Err(v) => v,
        },
        _ => Verdict::Drop(DropReason::UnsupportedEthertype),
    }
}

/// Hands an IPv6 frame of a home with IPv6 on to `vg_home6` ([`Verdict::Home6`]).
#[inline(always)]
fn home_ipv6(cur: &Cursor, lsl: &lsl::Classified, len: u64) -> Verdict {
    let Some(slot) = v6::FROM_HOME6.get_ptr_mut(0) else {
        return Verdict::Drop(DropReason::TailCallFailed);
    };
    // SAFETY: a per-CPU array slot from a successful lookup, only this CPU's; `vg_home6`
    // reads it right after, on this CPU.
    unsafe {
        *slot = nerg_abi::FromHome6 {
            sub: lsl.sub,
            l3_off: cur.offset() as u16,
            src_mac: lsl.inner_src_mac,
            _pad: 0,
            len,
        };
    }
    Verdict::Home6
}

/// The transport header of an IPv4 packet from a home.
enum L4 {
    Tcp(TcpHdr),
    Udp(UdpHdr),
    Icmp(IcmpHdr),
    /// A later fragment (no transport header) or another protocol.
    None,
}

/// An IPv4 packet from a home, in stages: its headers checked, what is for
/// the vG itself punted ([`for_the_vg`]), its sender checked ([`check_sender`]), sorted by
/// protocol ([`dispatch`]), then translated and forwarded or hairpinned ([`upstream`]).
/// Every stage is inlined: one program, one stack frame, as the verifier wants it.
#[inline(always)]
fn home_ipv4(
    ctx: &XdpContext,
    cur: &mut Cursor,
    lsl: &lsl::Classified,
    sub: &Subscriber,
) -> Result<Verdict, Verdict> {
    let ip_off = cur.offset();
    // Stage 1: the IPv4 header (no options, a total length the frame holds) and, in a
    // first or only fragment, the transport header. (Read here, not in a function returning
    // them: LLVM then reuses a packet-end register in a way the verifier refuses.)
    let ip: Ipv4Hdr = cur.read()?;
    if !ip.is_plain_v4()
        || usize::from(ip.tot_len()) < core::mem::size_of::<Ipv4Hdr>()
        || usize::from(ip.tot_len()) > cur.remaining() + core::mem::size_of::<Ipv4Hdr>()
    {
        return Err(Verdict::Drop(DropReason::BadIpHeader));
    }
    let l4 = if ip.is_later_fragment() {
        L4::None
    } else {
        match ip.protocol {
            ipproto::TCP => L4::Tcp(cur.read()?),
            ipproto::UDP => L4::Udp(cur.read()?),
            ipproto::ICMP => L4::Icmp(cur.read()?),
            _ => L4::None,
        }
    };
    if let Some(reason) = for_the_vg(&ip, &l4, sub) {
        return Ok(punt::punt(ctx, lsl.sub, reason));
    }
    // The flow's mapping, if it has one: an established flow's mapping can vouch for the
    // sender, and is looked up once for that and for the translation.
    let flow = nat_flow(&l4);
    let mapping = flow.and_then(|(f, _)| nat::find(lsl.sub, ip.saddr_raw(), f));
    let host = check_sender(lsl, &ip, mapping.as_ref())?;
    if ip.ttl() <= 1 {
        return Ok(punt::punt(ctx, lsl.sub, PuntReason::TtlExceeded));
    }
    // The home's upstream limit, after anti-spoofing (a spoofed packet is nobody's) and
    // the punts (what the vG answers itself is not charged).
    let ip_bytes = u64::from(ip.tot_len());
    if !qos::admit::<QOS_UP>(lsl.sub, &sub.qos[QOS_UP], ip_bytes) {
        count_policed::<QOS_UP>(lsl.sub, ip_bytes);
        return Err(Verdict::Drop(DropReason::RateLimited));
    }
    let cfg = CONFIG.get(0).ok_or(Verdict::Pass)?;
    let to_public = is_public(ip.daddr_raw());
    let from = FromHomeIp {
        lsl,
        sub,
        cfg,
        ip_off,
        ip: &ip,
        to_public,
    };
    let (flow, dport) = match dispatch(ctx, &from, flow, &l4) {
        Step::Nat(flow, dport) => (flow, dport),
        Step::Done(verdict) => return verdict,
    };
    upstream(ctx, &from, flow, dport, mapping, host)
}

/// An IPv4 packet from a home past its checks.
struct FromHomeIp<'a> {
    lsl: &'a lsl::Classified,
    sub: &'a Subscriber,
    cfg: &'a Config,
    /// Offset of its IPv4 header.
    ip_off: usize,
    ip: &'a Ipv4Hdr,
    /// Its destination is one of the vG's public addresses (another home: hairpin).
    to_public: bool,
}

/// Stage 2: what the vG answers itself (DHCP, anything to the home's gateway address), with
/// the reason it goes to the slow path.
#[inline(always)]
fn for_the_vg(ip: &Ipv4Hdr, l4: &L4, sub: &Subscriber) -> Option<PuntReason> {
    if let L4::Udp(udp) = l4
        && udp.dest() == 67
    {
        return Some(PuntReason::Dhcp);
    }
    if ip.daddr_raw() == sub.gw_ip {
        return Some(if ip.protocol == ipproto::ICMP {
            PuntReason::IcmpToGateway
        } else {
            PuntReason::ToGateway
        });
    }
    None
}

/// Stage 3, anti-spoofing: the source must be a host this home leased or was given, with
/// its MAC, or the sender of an established flow's mapping that still vouches for it. The
/// generation is read before the host table: a host removed after this read raises it, so
/// what this packet checks is never recorded as newer than it is.
#[inline(always)]
fn check_sender(
    lsl: &lsl::Classified,
    ip: &Ipv4Hdr,
    mapping: Option<&nat::Found>,
) -> Result<nat::HostStamp, Verdict> {
    let host = nat::HostStamp {
        mac: lsl.inner_src_mac,
        hosts_gen: HOSTS_GEN.get(lsl.sub).copied().unwrap_or(0),
    };
    if !mapping.is_some_and(|m| m.vouches(&host)) {
        count_stat(Counter::HostCheck);
        let key = HostKey {
            sub: lsl.sub,
            ip: ip.saddr_raw(),
        };
        // SAFETY: plain hash map lookup; the MAC is compared at once.
        let known = unsafe { HOSTS.get(key) }.is_some_and(|h| h.mac == lsl.inner_src_mac);
        if !known {
            return Err(Verdict::Drop(DropReason::Spoofed));
        }
    }
    Ok(host)
}

/// What [`dispatch`] decided.
enum Step {
    /// Translate this flow (with its destination port).
    Nat(nat::Flow, u16),
    /// Handled (an ICMP error, a later fragment) or refused.
    Done(Result<Verdict, Verdict>),
}

/// Stage 4, by protocol: TCP, UDP and ICMP echo go to NAT; ICMP errors and later fragments
/// have their own paths; fragments to a public address or of ICMP, ICMP to another home and
/// other protocols are dropped.
#[inline(always)]
fn dispatch(ctx: &XdpContext, from: &FromHomeIp, flow: Option<(nat::Flow, u16)>, l4: &L4) -> Step {
    let ip = from.ip;
    if ip.is_fragment() && (from.to_public || ip.protocol == ipproto::ICMP) {
        return Step::Done(Err(Verdict::Drop(DropReason::Fragment)));
    }
    match (flow, l4) {
        (_, L4::Icmp(_)) if from.to_public => Step::Done(Err(Verdict::Drop(DropReason::NoMapping))),
        (Some((flow, dport)), _) => Step::Nat(flow, dport),
        (None, L4::Icmp(icmp)) if icmptype::is_error(icmp.icmp_type) => {
            Step::Done(icmp_error::upstream(
                ctx,
                &icmp_error::FromHome {
                    cfg: from.cfg,
                    sub_id: from.lsl.sub,
                    ip_off: from.ip_off,
                    saddr: ip.saddr_raw(),
                    host_mac: from.lsl.inner_src_mac,
                },
            ))
        }
        (None, L4::Icmp(_)) => Step::Done(Err(Verdict::Drop(DropReason::IcmpUnsupported))),
        (None, L4::None) if ip.is_later_fragment() => Step::Done(later_fragment(
            ctx,
            from.cfg,
            from.sub,
            from.ip_off,
            from.lsl.inner_src_mac,
        )),
        (None, _) => Step::Done(Err(Verdict::Drop(DropReason::ProtoUnsupported))),
    }
}

/// Stage 5: the flow's public endpoint (its mapping, or a new one), the APDF permission,
/// then to another home (hairpin) or, without its LSL, to the core.
#[inline(always)]
fn upstream(
    ctx: &XdpContext,
    from: &FromHomeIp,
    flow: nat::Flow,
    dport: u16,
    mapping: Option<nat::Found>,
    host: nat::HostStamp,
) -> Result<Verdict, Verdict> {
    let (ip, sub, cfg) = (from.ip, from.sub, from.cfg);
    let public = nat::upstream(
        &nat::Sender {
            sub_id: from.lsl.sub,
            sub,
            cfg,
            saddr: ip.saddr_raw(),
            host,
        },
        flow,
        mapping,
    )?;
    if sub.flags & sub_flags::FILTER_APDF != 0 {
        nat::permit(public, flow.proto, ip.daddr_raw(), dport);
    }
    let syn = flow.proto == ipproto::TCP && flow.tcp_flags & tcpflag::SYN != 0;
    if from.to_public {
        return hairpin(
            ctx,
            &Hairpin {
                cfg,
                src: sub,
                ip_off: from.ip_off,
                proto: flow.proto,
                public,
                daddr: ip.daddr_raw(),
                dport,
                syn,
            },
        );
    }
    // Strip the LSL: the IPv4 header moves to offset 14, behind a fresh Ethernet header.
    fwd::adjust_head(ctx, (from.ip_off - fwd::IP) as i32)?;
    fwd::translate(ctx, flow.proto, Side::Source, public)?;
    if syn && sub.tcp_mss != 0 {
        mss::clamp(ctx, sub.tcp_mss)?;
    }
    count_stat(Counter::NatUpstream);
    fwd::forward(
        ctx,
        ctx.ingress_ifindex() as u32,
        cfg.access_mac,
        from.lsl.inner_src_mac,
        flow.proto,
    )
}

/// The NAT flow of a packet from a home and its destination port (raw; ICMP: 0): TCP, UDP
/// and ICMP echo requests. `None` for everything else (ICMP errors, later fragments, other
/// protocols), which the caller sorts out.
#[inline(always)]
fn nat_flow(l4: &L4) -> Option<(nat::Flow, u16)> {
    match l4 {
        L4::Tcp(tcp) => Some((
            nat::Flow {
                proto: ipproto::TCP,
                sport: u16::from_ne_bytes(tcp.source),
                tcp_flags: tcp.flags,
            },
            u16::from_ne_bytes(tcp.dest),
        )),
        L4::Udp(udp) => Some((
            nat::Flow {
                proto: ipproto::UDP,
                sport: udp.source_raw(),
                tcp_flags: 0,
            },
            udp.dest_raw(),
        )),
        L4::Icmp(icmp) if icmp.icmp_type == icmptype::ECHO_REQUEST && icmp.code == 0 => Some((
            nat::Flow {
                proto: ipproto::ICMP,
                sport: u16::from_ne_bytes(icmp.id),
                tcp_flags: 0,
            },
            0,
        )),
        L4::Icmp(_) | L4::None => None,
    }
}

/// A later fragment from a home: its first fragment was translated with the home's one
/// public address, so this one only needs the source address (no transport header).
#[inline(always)]
fn later_fragment(
    ctx: &XdpContext,
    cfg: &Config,
    sub: &Subscriber,
    ip_off: usize,
    host_mac: [u8; 6],
) -> Result<Verdict, Verdict> {
    if sub.public_ip == 0 {
        return Err(Verdict::Drop(DropReason::NoPublicAddress));
    }
    let proto: u8 = packet::load(ctx, ip_off + 9)?;
    fwd::adjust_head(ctx, (ip_off - fwd::IP) as i32)?;
    fwd::rewrite_ip(ctx, Side::Source, sub.public_ip, true)?;
    count_stat(Counter::FragmentFollowed);
    fwd::forward(
        ctx,
        ctx.ingress_ifindex() as u32,
        cfg.access_mac,
        host_mac,
        proto,
    )
}

/// What [`hairpin`] needs, behind one pointer (BPF calls take five arguments at most).
struct Hairpin<'a> {
    cfg: &'a Config,
    /// The sending home.
    src: &'a Subscriber,
    ip_off: usize,
    proto: u8,
    /// The sender's mapping.
    public: Public,
    /// The public transport address it sent to (raw).
    daddr: u32,
    dport: u16,
    syn: bool,
}

/// A home sending to one of our public addresses (RFC 4787 REQ-9, RFC 5382 REQ-8): the
/// packet is translated twice, source to the sender's mapping and destination to the
/// target's host, and delivered straight to the target home with the target's LSL; the
/// target sees the sender's external address and port. The target's filtering applies.
#[inline(never)]
fn hairpin(ctx: &XdpContext, h: &Hairpin) -> Result<Verdict, Verdict> {
    let t = downstream::lookup(
        h.daddr,
        h.dport,
        h.proto,
        Some((h.public.ip, h.public.port)),
    )?;
    fwd::adjust_head(ctx, (h.ip_off - fwd::IP) as i32)?;
    fwd::translate(ctx, h.proto, Side::Source, h.public)?;
    let old_dst = fwd::rewrite_ip(ctx, Side::Destination, t.priv_ip, false)?;
    fwd::rewrite_l4(
        ctx,
        h.proto,
        Side::Destination,
        old_dst,
        Public {
            ip: t.priv_ip,
            port: t.priv_port,
        },
    )?;
    if h.syn {
        // The smaller of the two homes' clamps (0: none).
        let (a, b) = (h.src.tcp_mss, t.sub.tcp_mss);
        let mss = if a == 0 || (b != 0 && b < a) { b } else { a };
        if mss != 0 {
            mss::clamp(ctx, mss)?;
        }
    }
    count_stat(Counter::NatHairpin);
    let len = (ctx.data_end() - ctx.data()) as u64;
    downstream::deliver(&t, h.cfg.access_mac, len)
}

/// Whether `daddr` (raw) is one of our public addresses: an array read rules out what lies
/// outside their span, the table answers for what lies inside.
#[inline(always)]
pub(crate) fn is_public(daddr: u32) -> bool {
    let inside = PUBLIC_RANGE
        .get(0)
        .is_some_and(|r| r.holds(u32::from_be(daddr)));
    // SAFETY: plain hash map lookup, nothing kept.
    inside && unsafe { PUBLIC_IPS.get(daddr) }.is_some()
}

/// The one exit: counts the verdict (and the drop reason) and maps it to an XDP action.
#[inline(always)]
fn finish(ctx: &XdpContext, verdict: Verdict) -> u32 {
    let verdict = match verdict {
        Verdict::Deliver => {
            // SAFETY: the jump table holds XDP programs of this object only (the loader's);
            // on success control never comes back.
            unsafe { JUMP.tail_call(ctx, nerg_abi::JUMP_DELIVER) };
            Verdict::Drop(DropReason::TailCallFailed)
        }
        Verdict::Home6 => {
            // SAFETY: as above.
            unsafe { JUMP.tail_call(ctx, nerg_abi::JUMP_HOME6) };
            Verdict::Drop(DropReason::TailCallFailed)
        }
        other => other,
    };
    let (counter, action) = match verdict {
        Verdict::Pass => (Counter::VerdictPass, xdp_action::XDP_PASS),
        Verdict::Drop(reason) => {
            count(&NERG_DROPS, reason.index(), 1);
            (Counter::VerdictDrop, xdp_action::XDP_DROP)
        }
        Verdict::Punted => (Counter::VerdictPunt, xdp_action::XDP_DROP),
        Verdict::Redirect => (Counter::VerdictRedirect, xdp_action::XDP_REDIRECT),
        Verdict::Deliver | Verdict::Home6 => (Counter::VerdictAborted, xdp_action::XDP_ABORTED),
    };
    count_stat(counter);
    action
}

#[inline(always)]
pub(crate) fn count_stat(counter: Counter) {
    count(&NERG_STATS, counter.index(), 1);
}

#[inline(always)]
pub(crate) fn count(map: &PerCpuArray<CounterValue>, index: u32, n: u64) {
    if let Some(slot) = map.get_ptr_mut(index) {
        // SAFETY: the pointer comes from a successful per-CPU array lookup: it is valid,
        // aligned, and only this CPU writes it while this program runs.
        unsafe { *slot += n };
    }
}

#[inline(always)]
pub(crate) fn count_sub(sub: SubscriberId, len: u64, verdict: Verdict) {
    let Some(c) = SUB_COUNTERS.get_ptr_mut(sub) else {
        return;
    };
    // SAFETY: per-CPU array slot from a successful lookup; only this CPU writes it.
    let c = unsafe { &mut *c };
    c.up_packets += 1;
    c.up_bytes += len;
    match verdict {
        Verdict::Drop(_) => c.up_drops += 1,
        Verdict::Punted => c.punted += 1,
        Verdict::Pass | Verdict::Redirect | Verdict::Deliver | Verdict::Home6 => {}
    }
}

/// Counts a packet of home `sub` over its limit in direction `DIR` (`bytes`: its IPv4
/// bytes).
#[inline(always)]
pub(crate) fn count_policed<const DIR: usize>(sub: SubscriberId, bytes: u64) {
    if let Some(c) = SUB_COUNTERS.get_ptr_mut(sub) {
        // SAFETY: per-CPU array slot from a successful lookup; only this CPU writes it.
        let c = unsafe { &mut *c };
        if DIR == QOS_UP {
            c.up_policed_packets += 1;
            c.up_policed_bytes += bytes;
        } else {
            c.down_policed_packets += 1;
            c.down_policed_bytes += bytes;
        }
    }
}

#[inline(always)]
pub(crate) fn count_sub_down(sub: SubscriberId, len: u64) {
    if let Some(c) = SUB_COUNTERS.get_ptr_mut(sub) {
        // SAFETY: per-CPU array slot from a successful lookup; only this CPU writes it.
        let c = unsafe { &mut *c };
        c.down_packets += 1;
        c.down_bytes += len;
    }
}

/// License section: `bpf_fib_lookup` and other helpers the fast path needs are GPL-only.
#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";

#[cfg(target_arch = "bpf")]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    // eBPF has no unwinding; the verifier rejects any path that could reach here.
    loop {}
}

/// Host builds only: the programs above are type-checked, not run.
#[cfg(not(target_arch = "bpf"))]
fn main() {}
