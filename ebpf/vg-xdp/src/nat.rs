//! L2-aware NAPT44 mappings (Cilium `nat.h` layering): map helpers, then "find or create a
//! mapping" on top.
//!
//! A mapping is endpoint-independent (RFC 4787 REQ-1): keyed by (home, private address,
//! private port, protocol), with no destination. It lives in the home's port blocks on the
//! home's one public address (paired pooling, RFC 4787 REQ-2). Creation:
//! 1. the original port, when it lies in one of the home's blocks (port preservation);
//! 2. else, and when that port is taken, up to [`NAT_MAX_PROBES`] pseudo-random candidates
//!    from the keyed flow hash, exactly the sequence of `vg::nat::select::select_port`
//!    (documented there): `x = x * MUL + INC`, `index = (x * ports_in_blocks) >> 32`, the
//!    index counting through the blocks in order. Never a port outside the home's blocks.
//!
//! A candidate is claimed by inserting the reverse entry with `BPF_NOEXIST` (two CPUs cannot
//! both win the same public port), then the forward entry with `BPF_NOEXIST`; if the forward
//! insert loses a race for the same flow, the reverse entry is removed again and the winner's
//! mapping is used. Entries are only ever removed by vgd's expiry (plain hash maps, not LRU:
//! a live flow is never evicted).

use aya_ebpf::{bindings::BPF_NOEXIST, helpers::bpf_ktime_get_coarse_ns};
use nerg_abi::{
    Config, Counter, DropReason, LAST_SEEN_STEP_NS, MAX_BLOCKS, NAT_MAX_PROBES, NAT_PROBE_LCG_INC,
    NAT_PROBE_LCG_MUL, NatFwdKey, NatMapping, NatPermitKey, NatRev, NatRevKey, Subscriber,
    SubscriberId, nat_flags, nat_flow_hash, tcp_seen,
};

use crate::{
    NAT_FWD, NAT_PERMIT, NAT_REV, SUB_SESSIONS, Verdict, count, count_stat,
    packet::{ipproto, tcpflag},
};

/// The transport identity of a packet from a home.
#[derive(Clone, Copy)]
pub(crate) struct Flow {
    /// IP protocol.
    pub(crate) proto: u8,
    /// Source port or ICMP echo identifier, raw (network order in memory).
    pub(crate) sport: u16,
    /// TCP flags (0 for other protocols).
    pub(crate) tcp_flags: u8,
}

/// A public transport address.
#[derive(Clone, Copy)]
pub(crate) struct Public {
    /// Raw IPv4 address.
    pub(crate) ip: u32,
    /// Raw port or identifier.
    pub(crate) port: u16,
}

/// Who sent a packet from a home: everything a mapping of its flow needs.
pub(crate) struct Sender<'a> {
    pub(crate) sub_id: SubscriberId,
    pub(crate) sub: &'a Subscriber,
    pub(crate) cfg: &'a Config,
    /// The private source address (raw).
    pub(crate) saddr: u32,
    pub(crate) host: HostStamp,
}

/// The sending host's MAC address and its home's host generation (`NERG_HOSTS_GEN`, read
/// before the host table was consulted for this packet).
#[derive(Clone, Copy)]
pub(crate) struct HostStamp {
    pub(crate) mac: [u8; 6],
    pub(crate) hosts_gen: u32,
}

/// A home's mapping of one flow, found in `NERG_NAT_FWD`. It holds the entry's address
/// privately and reads or writes it only inside its own methods, field by field: no
/// reference to the shared entry outlives a method (other CPUs and vgd write it too).
pub(crate) struct Found(*mut NatMapping);

impl Found {
    /// Whether the mapping vouches for the sender: it was checked against the host table
    /// with this MAC address, and no host of the home was removed or changed since (the
    /// generation is the same), so the table would give the same answer.
    #[inline(always)]
    pub(crate) fn vouches(&self, host: &HostStamp) -> bool {
        // SAFETY: a pointer from a successful lookup, valid for this program run; plain reads.
        let (mac, hosts_gen) = unsafe { ((*self.0).host_mac, (*self.0).hosts_gen) };
        mac == host.mac && hosts_gen == host.hosts_gen && host.mac != [0; 6]
    }
}

/// The home's mapping of this flow, if it has one.
#[inline(always)]
pub(crate) fn find(sub_id: SubscriberId, saddr: u32, flow: Flow) -> Option<Found> {
    NAT_FWD.get_ptr_mut(fwd_key(sub_id, saddr, flow)).map(Found)
}

#[inline(always)]
fn fwd_key(sub_id: SubscriberId, saddr: u32, flow: Flow) -> NatFwdKey {
    NatFwdKey {
        sub: sub_id,
        priv_ip: saddr,
        priv_port: flow.sport,
        proto: flow.proto,
        _pad: 0,
    }
}

/// Uses the flow's mapping (`found`, from [`find`]), or creates one. The sender has passed
/// the anti-spoofing check: the mapping records that, for the packets after this one.
///
/// A mapping belongs to the host that created it. When its address has been leased to
/// another device since (the sender's MAC is not the mapping's), the previous host's
/// session through it is over: the sender re-owns it as a new mapping ([`reown`]), and
/// downstream follows the new owner from then on.
#[inline(always)]
pub(crate) fn upstream(s: &Sender, flow: Flow, found: Option<Found>) -> Result<Public, Verdict> {
    let now = now_ns();
    if let Some(Found(m)) = found {
        // SAFETY: a pointer from a successful lookup stays valid for this program run; the
        // fields written are plain integers (a torn read by vgd only delays expiry). The
        // reference lives until this block ends, and nothing else in this run holds one.
        let m = unsafe { &mut *m };
        let owner = m.host_mac;
        if owner != s.host.mac && owner != [0; 6] && m.flags & nat_flags::STATIC == 0 {
            reown(m, flow, &s.host, now);
        } else {
            refresh(&mut m.last_seen_ns, now);
            if flow.proto == ipproto::TCP {
                let seen = m.tcp_seen | tcp_bits(m.tcp_seen, flow.tcp_flags);
                if seen != m.tcp_seen {
                    m.tcp_seen = seen;
                }
            }
            // Stores only on change, like the stamp: an established flow's line stays clean.
            if m.host_mac != s.host.mac || m.hosts_gen != s.host.hosts_gen {
                m.host_mac = s.host.mac;
                m.hosts_gen = s.host.hosts_gen;
            }
        }
        return Ok(Public {
            ip: m.pub_ip,
            port: m.pub_port,
        });
    }
    let mut public = Public { ip: 0, port: 0 };
    create(
        &NewMapping {
            sub_id: s.sub_id,
            sub: s.sub,
            cfg: s.cfg,
            key: fwd_key(s.sub_id, s.saddr, flow),
            flow,
            host: s.host,
            now,
        },
        &mut public,
    )?;
    Ok(public)
}

/// Hands mapping `m` (another host's) to the sender `host`, as a new mapping on the same
/// public port: fresh TCP state and timestamp, the sender's MAC and generation in both
/// entries. The reverse entry is written first, so downstream never goes to the new owner
/// before the forward entry is its. The reverse entry missing (vgd's sweep removed the pair
/// meanwhile) leaves only the forward entry to rewrite: the sweep removes it next.
#[inline(always)]
fn reown(m: &mut NatMapping, flow: Flow, host: &HostStamp, now: u64) {
    let rev_key = NatRevKey {
        pub_ip: m.pub_ip,
        pub_port: m.pub_port,
        proto: flow.proto,
        _pad: 0,
    };
    if let Some(rev) = NAT_REV.get_ptr_mut(rev_key) {
        // SAFETY: a pointer from a successful lookup, valid for this program run; plain
        // field writes, no reference kept.
        unsafe {
            (*rev).host_mac = host.mac;
            (*rev).hosts_gen = host.hosts_gen;
        }
    }
    m.host_mac = host.mac;
    m.hosts_gen = host.hosts_gen;
    m.tcp_seen = if flow.proto == ipproto::TCP {
        tcp_bits(0, flow.tcp_flags)
    } else {
        0
    };
    m.last_seen_ns = now;
    count_stat(Counter::NatReowned);
}

/// The time of last use written into mappings and permissions: CLOCK_MONOTONIC at tick
/// resolution (`bpf_ktime_get_coarse_ns`, a few ms behind at most). Expiry counts in
/// seconds; the coarse clock is a memory read where the fine one reads the clock source.
#[inline(always)]
pub(crate) fn now_ns() -> u64 {
    // SAFETY: `bpf_ktime_get_coarse_ns` has no preconditions.
    unsafe { bpf_ktime_get_coarse_ns() }
}

/// Moves a last-use timestamp to `now` once it is [`LAST_SEEN_STEP_NS`] old: an entry's
/// cache line stays clean (and shared between CPUs) for all the packets in between. A
/// timestamp ahead of `now` (vgd writes the fine clock, which runs ahead of the coarse one)
/// is left alone.
#[inline(always)]
fn refresh(last_seen_ns: &mut u64, now: u64) {
    if now.saturating_sub(*last_seen_ns) >= LAST_SEEN_STEP_NS {
        *last_seen_ns = now;
    }
}

/// Records that the mapping `public` sent to `remote_ip:remote_port` (raw; ICMP: 0), for
/// address-and-port-dependent filtering: downstream, only such endpoints get through.
#[inline(always)]
pub(crate) fn permit(public: Public, proto: u8, remote_ip: u32, remote_port: u16) {
    let key = NatPermitKey {
        pub_ip: public.ip,
        remote_ip,
        pub_port: public.port,
        remote_port: if proto == ipproto::ICMP {
            0
        } else {
            remote_port
        },
        proto,
        _pad: [0; 3],
    };
    let now = now_ns();
    match NAT_PERMIT.get_ptr_mut(key) {
        // SAFETY: a pointer from a successful lookup, valid for this program run.
        Some(last) => refresh(unsafe { &mut *last }, now),
        // Full table: the packet still goes out; the answer will be filtered (counted).
        None => {
            let _ = NAT_PERMIT.insert(key, now, 0);
        }
    }
}

/// Everything a new mapping needs, behind one pointer: BPF-to-BPF calls take at most five
/// arguments.
struct NewMapping<'a> {
    sub_id: SubscriberId,
    sub: &'a Subscriber,
    cfg: &'a Config,
    key: NatFwdKey,
    flow: Flow,
    host: HostStamp,
    now: u64,
}

/// The `tcp_seen` bits a segment with `flags` adds.
#[inline(always)]
fn tcp_bits(seen: u8, flags: u8) -> u8 {
    let mut bits = 0;
    if flags & tcpflag::SYN != 0 {
        bits |= tcp_seen::SYN_OUT;
    } else if seen & tcp_seen::SYN_OUT != 0 {
        bits |= tcp_seen::ESTABLISHED;
    }
    if flags & tcpflag::FIN != 0 {
        bits |= tcp_seen::FIN_OUT;
    }
    if flags & tcpflag::RST != 0 {
        bits |= tcp_seen::RST;
    }
    bits
}

/// Not inlined: a subprogram the verifier walks on its own, instead of multiplying its
/// 33-candidate search into every path of the access program (which exceeds the verifier's
/// 1M-instruction budget, E2BIG).
///
/// The result goes through `out`, and the return value fits a register: a subprogram
/// returning a value larger than that returns the address of the caller's slot for it, a
/// stack pointer, which the verifier refuses.
#[inline(never)]
fn create(m: &NewMapping, out: &mut Public) -> Result<(), Verdict> {
    *out = find_port(m)?;
    Ok(())
}

/// [`create`]'s search: the original port, then the pseudo-random candidates.
#[inline(always)]
fn find_port(m: &NewMapping) -> Result<Public, Verdict> {
    let NewMapping {
        sub_id,
        sub,
        cfg,
        ref key,
        flow,
        host,
        now,
    } = *m;
    let block_size = u32::from(cfg.nat_block_size);
    let blocks = if sub.block_count as usize > MAX_BLOCKS {
        MAX_BLOCKS as u32
    } else {
        sub.block_count
    };
    let total = blocks * block_size;
    if sub.public_ip == 0 || total == 0 {
        return Err(Verdict::Drop(DropReason::NoPublicAddress));
    }
    // The session limit (RFC 6888 REQ-5). The count is vgd's exact number from its last
    // expiry sweep plus the fast path's increments since. It runs ahead of the truth until the
    // next sweep (mappings expired meanwhile still count); a mapping created in the instant
    // vgd writes a new count is missed until the sweep after. Homes without a limit are not
    // counted here (the sweep counts every home): a new mapping costs no shared write.
    let sessions = if sub.session_limit != 0 {
        SUB_SESSIONS.get_ptr_mut(sub_id)
    } else {
        None
    };
    if let Some(n) = sessions
        // SAFETY: a pointer from a successful array lookup; a plain integer read.
        && unsafe { *n } >= u64::from(sub.session_limit)
    {
        return Err(Verdict::Drop(DropReason::SessionLimit));
    }
    // Port preservation: the original port's index, when it is inside a block.
    let orig = u32::from(u16::from_be(flow.sport));
    let mut preserved = u32::MAX;
    let mut b = 0;
    // Stop at the first hit: one state per block leaves the loop, not one per combination.
    while b < MAX_BLOCKS && (b as u32) < blocks {
        let start = u32::from(sub.blocks[b]);
        if orig >= start && orig < start + block_size {
            preserved = b as u32 * block_size + (orig - start);
            break;
        }
        b += 1;
    }
    let rev = NatRev {
        sub: sub_id,
        priv_ip: key.priv_ip,
        priv_port: key.priv_port,
        host_mac: host.mac,
        flags: 0,
        _pad: [0; 3],
        hosts_gen: host.hosts_gen,
        last_seen_ns: now,
    };
    // The forward entry, its public address and port filled in by `claim`.
    let mut fwd = NatMapping {
        tcp_seen: if flow.proto == ipproto::TCP {
            tcp_bits(0, flow.tcp_flags)
        } else {
            0
        },
        last_seen_ns: now,
        host_mac: host.mac,
        hosts_gen: host.hosts_gen,
        ..NatMapping::default()
    };
    // Probe 0: the original port, when it is in a block.
    if preserved != u32::MAX
        && let Some(result) = try_index(sub, key, &rev, &mut fwd, preserved, block_size)
    {
        if result.is_ok() {
            count_stat(Counter::NatCreated);
            count_stat(Counter::NatPortPreserved);
            add_session(sessions);
        }
        return result;
    }
    let mut x = nat_flow_hash(
        cfg.nat_hash_seed,
        sub_id,
        key.proto,
        key.priv_ip,
        key.priv_port,
    );
    let mut k = 1;
    while k <= NAT_MAX_PROBES {
        x = x
            .wrapping_mul(NAT_PROBE_LCG_MUL)
            .wrapping_add(NAT_PROBE_LCG_INC);
        let index = ((u64::from(x) * u64::from(total)) >> 32) as u32;
        if let Some(result) = try_index(sub, key, &rev, &mut fwd, index, block_size) {
            if result.is_ok() {
                count_stat(Counter::NatCreated);
                count(&crate::NERG_STATS, Counter::NatProbes.index(), u64::from(k));
                add_session(sessions);
            }
            return result;
        }
        k += 1;
    }
    Err(Verdict::Drop(DropReason::NatPortsExhausted))
}

/// One more mapping for the home: an atomic add (BPF_ATOMIC_ADD), since every CPU creates
/// mappings. The BPF target has no compare-and-swap, so `AtomicU64::fetch_add` does not
/// exist there; the intrinsic lowers to the one instruction the verifier accepts.
#[inline(always)]
fn add_session(sessions: Option<*mut u64>) {
    #[cfg(target_arch = "bpf")]
    if let Some(n) = sessions {
        // SAFETY: a pointer from a successful array lookup, valid for this run and aligned;
        // other writers are atomic adds, or vgd replacing the whole value by syscall.
        unsafe {
            core::intrinsics::atomic_xadd::<u64, u64, { core::intrinsics::AtomicOrdering::Relaxed }>(
                n, 1,
            )
        };
    }
    #[cfg(not(target_arch = "bpf"))]
    let _ = sessions;
}

/// Tries the port at `index` of the home's blocks. `None`: taken, try the next one.
#[inline(always)]
fn try_index(
    sub: &Subscriber,
    key: &NatFwdKey,
    rev: &NatRev,
    fwd: &mut NatMapping,
    index: u32,
    block_size: u32,
) -> Option<Result<Public, Verdict>> {
    // checked_*: a zero block size is excluded by the caller, but only the checked forms keep
    // a division-by-zero panic path (which the verifier rejects) out of the object.
    let block = index.checked_div(block_size).unwrap_or(0) as usize;
    let offset = index.checked_rem(block_size).unwrap_or(0);
    let first = *sub.blocks.get(block)?;
    let port = (u32::from(first) + offset) as u16;
    let public = Public {
        ip: sub.public_ip,
        port: port.to_be(),
    };
    claim(key, rev, fwd, public)
}

/// Tries to take `public` for the flow. `None`: the port is taken, try the next one.
#[inline(always)]
fn claim(
    key: &NatFwdKey,
    rev: &NatRev,
    fwd: &mut NatMapping,
    public: Public,
) -> Option<Result<Public, Verdict>> {
    let rev_key = NatRevKey {
        pub_ip: public.ip,
        pub_port: public.port,
        proto: key.proto,
        _pad: 0,
    };
    // By reference, not copied: the stack is shared by the whole call chain.
    if NAT_REV
        .insert(rev_key, rev, u64::from(BPF_NOEXIST))
        .is_err()
    {
        return None;
    }
    fwd.pub_ip = public.ip;
    fwd.pub_port = public.port;
    if NAT_FWD.insert(key, fwd, u64::from(BPF_NOEXIST)).is_ok() {
        return Some(Ok(public));
    }
    // Another CPU created this flow's mapping meanwhile: give the port back, use theirs.
    let _ = NAT_REV.remove(rev_key);
    // SAFETY: plain lookup; the value is copied out at once.
    Some(match unsafe { NAT_FWD.get(*key) } {
        Some(m) => Ok(Public {
            ip: m.pub_ip,
            port: m.pub_port,
        }),
        None => Err(Verdict::Drop(DropReason::NatInsertFailed)),
    })
}
