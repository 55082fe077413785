//! IPv6 in the fast path (issue 18): routed, never translated. Each home has a LAN /64 and
//! may have prefixes delegated to a router inside it (DHCPv6-PD, RFC 8415 §6.3); vgd writes
//! them into one LPM trie ([`V6_PREFIXES`]) that answers both directions: downstream, which
//! home a destination belongs to ([`down`]); upstream, which home a source may come from
//! ([`up`]). The MACs come from the neighbour table the slow path learns ([`V6_NEIGH`]: DAD,
//! NS/NA, DHCPv6 bindings): the destination's on the LAN, the requesting router's for a
//! delegated prefix (RFC 4861 §7.2 resolution is the slow path's).
//!
//! ```text
//!  up:   LSL -> vg_access --tail call--> vg_home6: header, extension headers (bounded)
//!        -> RA guard / punts (ND, MLD, DHCPv6, to the gateway) -> link scope -> SAVI
//!        (source prefix is the home's, source MAC learnt for it) -> hop limit -> tier
//!        -> another home (vg_deliver) | FIB -> strip LSL, hop limit - 1 -> core
//!  down: vg_core: dst in a home's prefix? -> hop limit, LSL MTU -> neighbour's MAC
//!        (miss: punt, bounded per home) -> hop limit - 1 -> vg_deliver (LSL, tier)
//! ```

pub(crate) mod down;
pub(crate) mod up;

use aya_ebpf::{
    EbpfContext as _,
    helpers::{bpf_ktime_get_coarse_ns, generated::bpf_xdp_load_bytes},
    macros::map,
    maps::{Array, HashMap, LpmTrie, PerCpuArray, lpm_trie::Key},
    programs::XdpContext,
};
use nerg_abi::{
    DropReason, FromHome6, MAX_SUBSCRIBERS, MAX_V6_EXT_HEADERS, MAX_V6_NEIGHBOURS, MAX_V6_PREFIXES,
    SubscriberId, V6_PUNT_BURST, V6_PUNT_INTERVAL_NS, V6Neigh, V6NeighKey, V6Prefix, V6PrefixKey,
    V6Range, v6_prefix_kind,
};

use crate::{
    Verdict,
    fwd::IP,
    packet::{ipproto, load, store},
};

/// The homes' IPv6 prefixes.
#[map(name = "NERG_V6_PREFIXES")]
pub(crate) static V6_PREFIXES: LpmTrie<V6PrefixKey, V6Prefix> = LpmTrie::pinned(MAX_V6_PREFIXES, 0);

/// The homes' IPv6 neighbours (written by the slow path).
#[map(name = "NERG_V6_NEIGH")]
pub(crate) static V6_NEIGH: HashMap<V6NeighKey, V6Neigh> = HashMap::pinned(MAX_V6_NEIGHBOURS, 0);

/// The span of the prefixes ([`nerg_abi::V6Range`]).
#[map(name = "NERG_V6_RANGE")]
static V6_RANGE: Array<V6Range> = Array::pinned(1, 0);

/// Each home's downstream punt limiter ([`punt_allowed`]).
#[map(name = "NERG_V6_PUNT_TAT")]
static V6_PUNT_TAT: Array<u64> = Array::pinned(MAX_SUBSCRIBERS, 0);

/// The hand-over from `vg_access` to `vg_home6` ([`FromHome6`]; pinned like the jump table).
#[map(name = "NERG_FROM_HOME6")]
pub(crate) static FROM_HOME6: PerCpuArray<FromHome6> = PerCpuArray::pinned(1, 0);

/// ICMPv6 (RFC 4443).
pub(crate) const ICMPV6: u8 = 58;
/// The fixed IPv6 header (RFC 8200 §3).
pub(crate) const HEADER: usize = 40;
/// Offset of the hop limit in it.
const HOP_LIMIT: usize = 7;

/// The fixed header's fields the fast path uses.
#[derive(Clone, Copy)]
pub(crate) struct Ip6 {
    /// Payload length (host byte order): everything after the fixed header.
    pub(crate) payload_len: u16,
    /// The first next-header value.
    pub(crate) next: u8,
    pub(crate) hop_limit: u8,
}

impl Ip6 {
    /// The packet's length from its fixed header on (what tiers and MTUs count).
    #[inline(always)]
    pub(crate) fn total_len(&self) -> u16 {
        self.payload_len.saturating_add(HEADER as u16)
    }
}

/// The upper-layer header after the extension headers.
#[derive(Clone, Copy)]
pub(crate) struct Upper {
    /// Its protocol (the last next-header value).
    pub(crate) proto: u8,
    /// Its offset in the frame.
    pub(crate) off: usize,
    /// The packet is a fragment other than the first: no upper-layer header in it.
    pub(crate) later_fragment: bool,
}

/// Extension headers the fast path walks (RFC 8200 §4; each starts with next header and
/// length in 8-octet units beyond the first 8).
mod ext {
    pub(super) const HOP_BY_HOP: u8 = 0;
    pub(super) const ROUTING: u8 = 43;
    pub(super) const FRAGMENT: u8 = 44;
    pub(super) const DEST_OPTS: u8 = 60;
}

/// Furthest offset an extension header may start at: beyond it (a chain of long headers)
/// the walk gives up. Keeps the offsets the verifier sees small.
const MAX_EXT_OFF: usize = 512;

/// Walks the extension headers of the IPv6 packet at `off` (first next header `next`), at
/// most [`MAX_V6_EXT_HEADERS`] of them. A longer chain, or one reaching past
/// [`MAX_EXT_OFF`], is dropped (`ipv6_ext_headers`): what follows could be an RA or a DHCPv6
/// server message (RFC 7113 §3). Fragments are not reassembled: a first fragment's
/// upper-layer header is read like any other, a later one has none.
#[inline(always)]
pub(crate) fn walk(ctx: &XdpContext, off: usize, next: u8) -> Result<Upper, Verdict> {
    let mut proto = next;
    let mut at = off + HEADER;
    let mut later_fragment = false;
    let mut i = 0;
    while i < MAX_V6_EXT_HEADERS {
        if at > MAX_EXT_OFF {
            return Err(Verdict::Drop(DropReason::Ipv6ExtHeaders));
        }
        match proto {
            ext::HOP_BY_HOP | ext::ROUTING | ext::DEST_OPTS => {
                let h: [u8; 2] = load(ctx, at).map_err(|_| ext_err())?;
                proto = h[0];
                at += (usize::from(h[1]) + 1) * 8;
            }
            ext::FRAGMENT => {
                let h: [u8; 4] = load(ctx, at).map_err(|_| ext_err())?;
                proto = h[0];
                // Fragment offset: the top 13 bits of bytes 2..4.
                later_fragment = u16::from_be_bytes([h[2], h[3]]) & 0xfff8 != 0;
                at += 8;
            }
            _ => break,
        }
        i += 1;
    }
    if is_ext(proto) {
        return Err(ext_err());
    }
    Ok(Upper {
        proto,
        off: at,
        later_fragment,
    })
}

#[inline(always)]
fn ext_err() -> Verdict {
    Verdict::Drop(DropReason::Ipv6ExtHeaders)
}

#[inline(always)]
fn is_ext(proto: u8) -> bool {
    matches!(
        proto,
        ext::HOP_BY_HOP | ext::ROUTING | ext::FRAGMENT | ext::DEST_OPTS
    )
}

/// An IPv6 address as four raw words (network order in memory, as in the packet).
pub(crate) type Addr = [u32; 4];

/// Per-CPU scratch space for the addresses and map keys of one packet. The BPF target has
/// no unaligned loads, so a byte array is read and written a byte at a time (a 16-byte
/// address copy is 32 instructions, an `==` 40); here every address is four aligned
/// words, filled from the packet by one `bpf_xdp_load_bytes`, and the map keys are built
/// in place, off the 512-byte stack.
#[repr(C)]
pub(crate) struct Scratch {
    /// The fixed header's first 8 bytes (version .. hop limit).
    fixed: [u8; 8],
    /// The packet's source address.
    pub(crate) src: Addr,
    /// The packet's destination address (the header's 40 bytes lie here in order).
    pub(crate) dst: Addr,
    /// The prefix trie's key (8-aligned: its address words at +4 are 4-aligned).
    lpm: Key<V6PrefixKey>,
    _pad: [u8; 4],
    /// The neighbour table's key (its address at +4, 4-aligned).
    neigh: V6NeighKey,
}

// The in-place key writes below store whole words: the keys must sit where those are
// aligned (map values are 8-aligned).
const _: () = assert!(core::mem::offset_of!(Scratch, lpm) % 8 == 0);
const _: () = assert!(core::mem::offset_of!(Scratch, neigh) % 8 == 0);
const _: () = assert!(core::mem::offset_of!(Scratch, src) == 8);
const _: () = assert!(core::mem::offset_of!(Scratch, dst) == 24);

/// See [`Scratch`]. Per loaded object, not pinned.
#[map(name = "NERG_V6_SCRATCH")]
static V6_SCRATCH: PerCpuArray<Scratch> = PerCpuArray::with_max_entries(1, 0);

/// This CPU's [`Scratch`].
#[inline(always)]
pub(crate) fn scratch() -> Result<&'static mut Scratch, Verdict> {
    let s = V6_SCRATCH
        .get_ptr_mut(0)
        .ok_or(Verdict::Drop(DropReason::Truncated))?;
    // SAFETY: a per-CPU array slot from a successful lookup: valid and aligned for the
    // program run, and only this CPU uses it (XDP runs one program at a time per CPU).
    Ok(unsafe { &mut *s })
}

/// Copies `N` bytes of the frame at `offset` into `to` (one helper call).
#[inline(always)]
fn load_into<const N: usize>(ctx: &XdpContext, offset: usize, to: *mut u8) -> Result<(), Verdict> {
    // SAFETY: the helper bounds-checks the frame itself; `to` points to `N` writable bytes
    // of this CPU's scratch slot (the callers' contract).
    let rc = unsafe { bpf_xdp_load_bytes(ctx.as_ptr().cast(), offset as u32, to.cast(), N as u32) };
    if rc != 0 {
        return Err(Verdict::Drop(DropReason::Truncated));
    }
    Ok(())
}

impl Scratch {
    /// Reads the fixed IPv6 header at `off` (its 40 bytes lie in `fixed`, `src` and `dst`
    /// in order, asserted above).
    #[inline(always)]
    pub(crate) fn load_header(&mut self, ctx: &XdpContext, off: usize) -> Result<(), Verdict> {
        load_into::<HEADER>(ctx, off, core::ptr::addr_of_mut!(self.fixed).cast())
    }

    /// The header [`Self::load_header`] read, at `off`, checked: version 6, a payload the
    /// frame holds (Ethernet padding may follow it). Jumbograms (payload length 0 with a
    /// hop-by-hop option, RFC 2675) are not routed.
    #[inline(always)]
    pub(crate) fn ip6(&self, ctx: &XdpContext, off: usize) -> Result<Ip6, Verdict> {
        let f = &self.fixed;
        let payload_len = u16::from_be_bytes([f[4], f[5]]);
        let frame_len = ctx.data_end() - ctx.data();
        if f[0] >> 4 != 6 || off + HEADER + usize::from(payload_len) > frame_len {
            return Err(Verdict::Drop(DropReason::BadIpHeader));
        }
        Ok(Ip6 {
            payload_len,
            next: f[6],
            hop_limit: f[7],
        })
    }

    /// The prefix of the destination, if it is a home's: outside the span of the homes'
    /// prefixes (most of the internet) without a trie lookup.
    #[inline(always)]
    pub(crate) fn dst_prefix(&mut self) -> Option<&'static V6Prefix> {
        let top = u64::from(u32::from_be(self.dst[0])) << 32 | u64::from(u32::from_be(self.dst[1]));
        if !V6_RANGE.get(0).is_some_and(|r| r.holds(top)) {
            return None;
        }
        prefix_of(&mut self.lpm, &self.dst)
    }

    /// The prefix of the source, if it is a home's.
    #[inline(always)]
    pub(crate) fn src_prefix(&mut self) -> Option<&'static V6Prefix> {
        prefix_of(&mut self.lpm, &self.src)
    }

    /// What home `sub`'s neighbour table says of the destination (in `prefix`).
    #[inline(always)]
    pub(crate) fn dst_neighbour(&mut self, sub: SubscriberId, prefix: &V6Prefix) -> Neigh {
        neighbour(&mut self.neigh, sub, prefix, &self.dst)
    }

    /// ... of the source as an address of home `sub`'s LAN.
    #[inline(always)]
    pub(crate) fn src_neighbour_on_lan(&mut self, sub: SubscriberId) -> Neigh {
        lookup_neighbour(&mut self.neigh, sub, &self.src)
    }

    /// ... of the source (in `prefix`).
    #[inline(always)]
    pub(crate) fn src_neighbour(&mut self, sub: SubscriberId, prefix: &V6Prefix) -> Neigh {
        neighbour(&mut self.neigh, sub, prefix, &self.src)
    }
}

/// Stores `a` at `to` as words.
///
/// # Safety
/// `to` must be valid for 16 bytes of writes and 4-aligned.
#[inline(always)]
unsafe fn store_words(to: *mut u8, a: &Addr) {
    // SAFETY: the caller's contract.
    unsafe { core::ptr::write(to.cast::<Addr>(), *a) };
}

/// The words of an address in a map value or key type (a `[u8; 16]` at a 4-aligned place).
#[inline(always)]
pub(crate) fn words(a: &[u8; 16]) -> Addr {
    // SAFETY: every `[u8; 16]` address this is called on sits at offset 8 of a `V6Prefix`
    // (align 4) in map memory: 4-aligned; 16 bytes readable.
    unsafe { core::ptr::read(a.as_ptr().cast::<Addr>()) }
}

/// Whether two addresses are equal.
#[inline(always)]
pub(crate) fn addr_eq(a: &Addr, b: &Addr) -> bool {
    a[0] == b[0] && a[1] == b[1] && a[2] == b[2] && a[3] == b[3]
}

/// The prefix of home addresses `addr` belongs to; `lpm` is scratch.
#[inline(always)]
fn prefix_of(lpm: &mut Key<V6PrefixKey>, addr: &Addr) -> Option<&'static V6Prefix> {
    lpm.prefix_len = 128;
    // SAFETY: `lpm` lives in the scratch slot at an 8-aligned offset (asserted), so its
    // address bytes at +4 are 4-aligned and 16 long.
    unsafe { store_words(core::ptr::addr_of_mut!(lpm.data).cast(), addr) };
    V6_PREFIXES.get(&*lpm)
}

/// What the neighbour table says of a destination.
pub(crate) enum Neigh {
    /// Its MAC (on the LAN: the host's; in a delegated prefix: the router's).
    Mac([u8; 6]),
    /// The slow path is resolving it.
    Incomplete,
    /// Unknown: the slow path must resolve it.
    Miss,
}

/// The MAC a packet of home `sub` for `addr` (in `prefix`) goes to; `key` is scratch.
#[inline(always)]
fn neighbour(key: &mut V6NeighKey, sub: SubscriberId, prefix: &V6Prefix, addr: &Addr) -> Neigh {
    if prefix.kind == v6_prefix_kind::DELEGATED {
        lookup_neighbour(key, sub, &words(&prefix.addr))
    } else {
        lookup_neighbour(key, sub, addr)
    }
}

/// Home `sub`'s neighbour entry for `addr`; `key` is scratch.
#[inline(always)]
fn lookup_neighbour(key: &mut V6NeighKey, sub: SubscriberId, addr: &Addr) -> Neigh {
    key.sub = sub;
    // SAFETY: `key` lives in the scratch slot at an 8-aligned offset (asserted): its
    // address at +4 is 4-aligned.
    unsafe { store_words(key.addr.as_mut_ptr(), addr) };
    #[expect(
        clippy::needless_borrows_for_generic_args,
        reason = "the key is passed where it lies (scratch map memory), not copied to the stack"
    )]
    // SAFETY: plain hash map lookup; the fields are copied out at once.
    let found = unsafe { V6_NEIGH.get(&*key) };
    match found {
        Some(n) if n.has_mac() => Neigh::Mac(n.mac),
        Some(_) => Neigh::Incomplete,
        None => Neigh::Miss,
    }
}

/// Whether home `sub` may punt one more downstream packet (neighbour miss, too big): a GCRA
/// of [`V6_PUNT_INTERVAL_NS`] per punt, [`V6_PUNT_BURST`] deep. A scan of a home's /64 from
/// the internet thus punts at most 50 packets a second of it, and the neighbour entries the
/// slow path marks INCOMPLETE meanwhile stop repeats of one address. Plain loads and stores:
/// CPUs racing on one home's slot may let a punt or two more through, never fewer.
#[inline(always)]
pub(crate) fn punt_allowed(sub: SubscriberId) -> bool {
    let Some(tat) = V6_PUNT_TAT.get_ptr_mut(sub) else {
        return false;
    };
    // SAFETY: a helper without arguments.
    let now = unsafe { bpf_ktime_get_coarse_ns() };
    // SAFETY: a live array slot from a successful lookup, 8-byte aligned, valid for this run.
    let at = unsafe { core::ptr::read_volatile(tat) };
    let at = if at < now { now } else { at };
    if at - now > (V6_PUNT_BURST - 1) * V6_PUNT_INTERVAL_NS {
        return false;
    }
    // SAFETY: as above.
    unsafe { core::ptr::write_volatile(tat, at + V6_PUNT_INTERVAL_NS) };
    true
}

/// Decrements the hop limit of the IPv6 header at [`IP`] (no header checksum in IPv6).
#[inline(always)]
pub(crate) fn dec_hop_limit(ctx: &XdpContext) -> Result<(), Verdict> {
    let h: u8 = load(ctx, IP + HOP_LIMIT)?;
    store(ctx, IP + HOP_LIMIT, h.wrapping_sub(1))
}

/// Whether `a` (in `prefix`) is a home's gateway address on its LAN: the vG's own.
#[inline(always)]
pub(crate) fn is_gateway_address(prefix: &V6Prefix, a: &Addr) -> bool {
    prefix.kind == v6_prefix_kind::LAN && addr_eq(&words(&prefix.addr), a)
}

/// Whether `a` is link-local unicast (fe80::/10).
#[inline(always)]
pub(crate) fn is_link_local(a: &Addr) -> bool {
    u32::from_be(a[0]) >> 22 == 0xfe80 >> 6
}

/// Whether `a` is multicast (ff00::/8).
#[inline(always)]
pub(crate) fn is_multicast(a: &Addr) -> bool {
    u32::from_be(a[0]) >> 24 == 0xff
}

/// Whether `a` is the unspecified address (::).
#[inline(always)]
pub(crate) fn is_unspecified(a: &Addr) -> bool {
    a[0] | a[1] | a[2] | a[3] == 0
}

/// Whether `a` is the gateway's link-local address, from its MAC (modified EUI-64, RFC 4291
/// App. A): what the slow path answers and advertises from.
#[inline(always)]
pub(crate) fn is_gateway_link_local(a: &Addr, mac: &[u8; 6]) -> bool {
    let iid_hi = u32::from_be_bytes([mac[0] ^ 0x02, mac[1], mac[2], 0xff]);
    let iid_lo = u32::from_be_bytes([0xfe, mac[3], mac[4], mac[5]]);
    u32::from_be(a[0]) == 0xfe80_0000
        && a[1] == 0
        && u32::from_be(a[2]) == iid_hi
        && u32::from_be(a[3]) == iid_lo
}

/// The one's-complement sum of the inner IPv6 packet at [`IP`] (for the outer UDP checksum
/// of VXLAN over IPv6): its fixed header's words, plus its upper-layer message, whose own
/// checksum makes it sum to the negated pseudo-header (RFC 8200 §8.1). `None` when that
/// checksum says nothing: extension headers (their bytes would need summing), UDP without
/// a checksum, another protocol.
#[inline(always)]
pub(crate) fn inner6_sum(ctx: &XdpContext) -> Result<Option<u32>, Verdict> {
    let fixed: [u8; 8] = load(ctx, IP)?;
    let next = fixed[6];
    match next {
        ipproto::TCP | ICMPV6 => {}
        ipproto::UDP if load::<u16>(ctx, IP + HEADER + 6)? != 0 => {}
        _ => return Ok(None),
    }
    // Source and destination, read at once (one bounds check: a check per word in a loop
    // makes LLVM do arithmetic on the packet-end register, which the verifier refuses).
    let words: [u32; 8] = load(ctx, IP + 8)?;
    let mut addrs = 0u32;
    let mut i = 0;
    while i < 8 {
        addrs = crate::csum::add32(addrs, (words[i] & 0xffff) + (words[i] >> 16));
        i += 1;
    }
    let mut head = addrs;
    let mut j = 0;
    while j < 8 {
        head = crate::csum::add32(
            head,
            u32::from(u16::from_ne_bytes([fixed[j], fixed[j + 1]])),
        );
        j += 2;
    }
    // Pseudo-header: the addresses, the upper-layer length (the payload: no extension
    // headers here) and the next header, as 32-bit big-endian words.
    let mut pseudo = addrs;
    pseudo = crate::csum::add32(pseudo, u32::from(u16::from_ne_bytes([fixed[4], fixed[5]])));
    pseudo = crate::csum::add32(pseudo, u32::from(u16::from_ne_bytes([0, next])));
    let upper = u32::from(!crate::csum::fold(pseudo));
    Ok(Some(crate::csum::add32(head, upper)))
}
