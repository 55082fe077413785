//! The map ABI shared by the vG's XDP programs and `vgd`.
//!
//! Everything both halves must agree on is defined here once: map names, counter indices,
//! drop reasons and the `#[repr(C)]` key/value types. Rules for types in this crate:
//! explicit padding fields, no `bool` (use `u8`/`u32` flags), byte order stated on every
//! multi-byte field. With the `user` feature the types implement `aya::Pod` for `vgd`.
#![no_std]

#[cfg(test)]
extern crate std;

mod v6;
pub use v6::*;

/// Names of the maps in the vG object file; pinned under the instance's bpffs directory.
pub mod map_names {
    /// Per-CPU array of `u64`, indexed by [`Counter`](crate::Counter).
    pub const STATS: &str = "NERG_STATS";
    /// Per-CPU array of `u64`, indexed by [`DropReason`](crate::DropReason).
    pub const DROPS: &str = "NERG_DROPS";
    /// Array with one [`Config`](crate::Config) at index 0.
    pub const CONFIG: &str = "NERG_CONFIG";
    /// Hash [`VlanLslKey`](crate::VlanLslKey) -> [`SubscriberId`](crate::SubscriberId).
    pub const LSL_VLAN: &str = "NERG_LSL_VLAN";
    /// Hash [`VxlanLslKey`](crate::VxlanLslKey) -> [`SubscriberId`](crate::SubscriberId).
    pub const LSL_VXLAN: &str = "NERG_LSL_VXLAN";
    /// Hash [`Vxlan6LslKey`](crate::Vxlan6LslKey) -> [`SubscriberId`](crate::SubscriberId).
    pub const LSL_VXLAN6: &str = "NERG_LSL_VXLAN6";
    /// Array of [`Subscriber`](crate::Subscriber), indexed by subscriber id.
    pub const SUBSCRIBERS: &str = "NERG_SUBSCRIBERS";
    /// Hash [`HostKey`](crate::HostKey) -> [`Host`](crate::Host): each home's known hosts.
    pub const HOSTS: &str = "NERG_HOSTS";
    /// Per-CPU array of [`SubCounters`](crate::SubCounters), indexed by subscriber id.
    pub const SUB_COUNTERS: &str = "NERG_SUB_COUNTERS";
    /// Array of [`QosState`](crate::QosState), indexed by subscriber id: where the home's
    /// rate limits stand. Written by the fast path only (atomic adds).
    pub const QOS: &str = "NERG_QOS";
    /// Array of `u32`, indexed by subscriber id: the home's host generation. vgd raises it
    /// after removing a host of the home or changing a host's MAC address, so that no NAT
    /// mapping checked against the host table before that change vouches for its sender
    /// any more ([`NatMapping::hosts_gen`](crate::NatMapping::hosts_gen)).
    pub const HOSTS_GEN: &str = "NERG_HOSTS_GEN";
    /// Ring buffer of [`PuntRecord`](crate::PuntRecord)s: frames for the slow path.
    pub const PUNT: &str = "NERG_PUNT";
    /// Hash [`NatFwdKey`](crate::NatFwdKey) -> [`NatMapping`](crate::NatMapping): upstream.
    pub const NAT_FWD: &str = "NERG_NAT_FWD";
    /// Hash [`NatRevKey`](crate::NatRevKey) -> [`NatRev`](crate::NatRev): downstream, and
    /// which public ports are taken.
    pub const NAT_REV: &str = "NERG_NAT_REV";
    /// Hash public IPv4 (network byte order) -> flags: the addresses the vG translates to.
    pub const PUBLIC_IPS: &str = "NERG_PUBLIC_IPS";
    /// Array of one [`PublicRange`](crate::PublicRange): the span of `NERG_PUBLIC_IPS`, so
    /// that most packets (to anywhere else) need no lookup there.
    pub const PUBLIC_RANGE: &str = "NERG_PUBLIC_RANGE";
    /// Device map (hash, keyed by ifindex) of the interfaces frames are redirected to.
    pub const DEVMAP: &str = "NERG_DEVMAP";
    /// Hash [`NatPermitKey`](crate::NatPermitKey) -> last use (`bpf_ktime_get_coarse_ns`): the
    /// remote endpoints each mapping of an APDF home has sent to (RFC 4787 REQ-8).
    pub const NAT_PERMIT: &str = "NERG_NAT_PERMIT";
    /// Array of `u64`, indexed by subscriber id: the home's mappings, for its session limit.
    /// The fast path adds one per mapping it creates; vgd's expiry sweep rewrites the exact
    /// count.
    pub const SUB_SESSIONS: &str = "NERG_SUB_SESSIONS";
    /// LRU hash [`FragKey`](crate::FragKey) -> [`FragTarget`](crate::FragTarget): where the
    /// later fragments of a datagram whose first fragment was translated downstream go.
    pub const FRAGS: &str = "NERG_FRAGS";
    /// Program array of the tail-call targets (indices [`JUMP_DELIVER`](crate::JUMP_DELIVER),
    /// [`JUMP_HOME6`](crate::JUMP_HOME6); [`JUMP_SLOTS`](crate::JUMP_SLOTS) slots), filled by
    /// the loader. Pinned: a program array loses its entries when its last user
    /// reference goes, and the attached programs of a vgd that exited still tail-call
    /// through it; the next vgd adopts it and puts its own `vg_deliver` in.
    pub const JUMP: &str = "NERG_JUMP";
    /// Per-CPU array of one [`Delivery`](crate::Delivery): the hand-over from the entry
    /// programs to `vg_deliver` through `NERG_JUMP`. Pinned with it.
    pub const DELIVERY: &str = "NERG_DELIVERY";
    /// Per-CPU array of one [`FromHome6`](crate::FromHome6): the hand-over from `vg_access`
    /// to `vg_home6` through `NERG_JUMP`. Pinned with it.
    pub const FROM_HOME6: &str = "NERG_FROM_HOME6";
    /// Array of one `u32`: the route generation. vgd bumps it whenever the kernel's routes,
    /// neighbours, links, addresses or rules may have changed; route cache entries of
    /// another generation are not used. Its top bit is
    /// [`FIB_GEN_DESTINATION_ONLY`](crate::FIB_GEN_DESTINATION_ONLY). Per loaded object,
    /// not pinned.
    pub const FIB_GEN: &str = "NERG_FIB_GEN";
    /// Per-CPU array of [`RouteCacheEntry`](crate::RouteCacheEntry),
    /// [`ROUTE_CACHE_SLOTS`](crate::ROUTE_CACHE_SLOTS) slots: `bpf_fib_lookup` results.
    /// Per loaded object, not pinned.
    pub const ROUTE_CACHE: &str = "NERG_ROUTE_CACHE";
    /// Per-CPU array of [`RouteCacheEntry6`](crate::RouteCacheEntry6),
    /// [`ROUTE_CACHE_SLOTS`](crate::ROUTE_CACHE_SLOTS) slots: IPv6 `bpf_fib_lookup` results
    /// (the outer header of VXLAN over IPv6). Per loaded object, not pinned.
    pub const ROUTE_CACHE6: &str = "NERG_ROUTE_CACHE6";
    /// LPM trie [`V6PrefixKey`](crate::V6PrefixKey) -> [`V6Prefix`](crate::V6Prefix): every
    /// home's IPv6 prefixes (its LAN /64 and the prefixes delegated inside it). Downstream it
    /// says which home a destination belongs to; upstream, which home a source may come from.
    /// Written by vgd.
    pub const V6_PREFIXES: &str = "NERG_V6_PREFIXES";
    /// Hash [`V6NeighKey`](crate::V6NeighKey) -> [`V6Neigh`](crate::V6Neigh): the IPv6
    /// neighbours the vG has learnt in each home (DAD, NS/NA, DHCPv6 bindings), written by
    /// the slow path; the fast path only reads it (MAC of a destination, the MAC a source
    /// must come from).
    pub const V6_NEIGH: &str = "NERG_V6_NEIGH";
    /// Array of one [`V6Range`](crate::V6Range): the span of the prefixes in
    /// `NERG_V6_PREFIXES`, so that most upstream packets (to the internet) need no trie
    /// lookup for their destination.
    pub const V6_RANGE: &str = "NERG_V6_RANGE";
    /// Array of `u64`, indexed by subscriber id: the theoretical arrival time
    /// (`bpf_ktime_get_coarse_ns`) of the home's downstream IPv6 punts (neighbour misses,
    /// packets too big), a GCRA at [`V6_PUNT_INTERVAL_NS`](crate::V6_PUNT_INTERVAL_NS) per
    /// punt with a burst of [`V6_PUNT_BURST`](crate::V6_PUNT_BURST). Written by the fast
    /// path only.
    pub const V6_PUNT_TAT: &str = "NERG_V6_PUNT_TAT";
}

/// The lowest and the highest of the vG's public addresses, host byte order
/// (`NERG_PUBLIC_RANGE`). Every address in `NERG_PUBLIC_IPS` lies inside; the fast path looks
/// a destination up there only when it is inside. vgd widens it before adding an address and
/// recomputes it at start; all zero (the map's initial value) holds nothing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct PublicRange {
    /// The lowest public address.
    pub lo: u32,
    /// The highest public address.
    pub hi: u32,
}

impl PublicRange {
    /// Whether `ip` (host byte order) lies inside.
    #[inline(always)]
    pub const fn holds(&self, ip: u32) -> bool {
        self.lo <= ip && ip <= self.hi && self.hi != 0
    }

    /// The range widened to hold `ip` (host byte order).
    pub const fn with(self, ip: u32) -> Self {
        if self.hi == 0 {
            return Self { lo: ip, hi: ip };
        }
        Self {
            lo: if ip < self.lo { ip } else { self.lo },
            hi: if ip > self.hi { ip } else { self.hi },
        }
    }
}

/// Slots of each per-CPU route cache (a power of two: the slot is a hash's top bits). Direct
/// mapped: two routes in one slot take turns (each miss is a real lookup, counted as
/// `fib_lookups`). 16,384 slots are 640 KiB per CPU for IPv4: with routes keyed by
/// destination alone (the usual case, [`FIB_GEN_DESTINATION_ONLY`]), enough for the
/// distinct destinations many thousands of homes talk to at once.
pub const ROUTE_CACHE_SLOTS: u32 = 16_384;

/// Bit of `NERG_FIB_GEN`'s value that vgd sets when the routing of its namespace depends on
/// the destination alone: no policy rule beyond the kernel's three default ones and no
/// multipath route or nexthop object (either can make the answer depend on the source
/// address or the protocol). The route cache then keys IPv4 routes by ingress interface and
/// destination only, so that every home's packets to one destination share one entry. The
/// bit is part of the generation: setting or clearing it invalidates every entry. Clear
/// (the map's initial value) means the full key: correct whatever the routing.
pub const FIB_GEN_DESTINATION_ONLY: u32 = 1 << 31;

/// One `bpf_fib_lookup` result the fast path reuses (`NERG_ROUTE_CACHE`).
///
/// Keyed by everything the fast path passes to the lookup except the length: ingress
/// interface, protocol, source and destination; source and protocol are 0 in the key while
/// [`FIB_GEN_DESTINATION_ONLY`] is set. A hit needs the same generation
/// (`NERG_FIB_GEN`) and a packet no longer than the longest one this result was looked up
/// for, so that an egress MTU below a later packet's length is still found by a real
/// lookup (`FRAG_NEEDED`). Only successful lookups are cached (never `NO_NEIGH`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct RouteCacheEntry {
    /// Source IPv4, network byte order.
    pub saddr: u32,
    /// Destination IPv4, network byte order.
    pub daddr: u32,
    /// IP protocol.
    pub proto: u8,
    /// Explicit padding.
    pub _pad: [u8; 3],
    /// The result.
    pub hop: RouteHop,
}

/// One IPv6 `bpf_fib_lookup` result (`NERG_ROUTE_CACHE6`), used as [`RouteCacheEntry`] is:
/// the outer header of VXLAN over IPv6, and the homes' routed IPv6. Always keyed by the full
/// key (vgd's [`FIB_GEN_DESTINATION_ONLY`] looks at IPv4 routing only).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct RouteCacheEntry6 {
    /// Source IPv6, as 4 words in network order.
    pub saddr: [u32; 4],
    /// Destination IPv6, as 4 words in network order.
    pub daddr: [u32; 4],
    /// Upper-layer protocol.
    pub proto: u8,
    /// Explicit padding.
    pub _pad: [u8; 3],
    /// The result.
    pub hop: RouteHop,
}

/// The cached part of a route: where it was looked up from, when, and the answer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct RouteHop {
    /// The interface the lookup was for (the packet's ingress).
    pub in_ifindex: u32,
    /// `NERG_FIB_GEN` when it was looked up.
    pub generation: u32,
    /// Where the packet goes.
    pub out_ifindex: u32,
    /// The longest length (from the IP header on) that was looked up successfully.
    pub max_len: u16,
    /// 1 once the slot holds a result.
    pub valid: u8,
    /// Explicit padding.
    pub _pad: u8,
    /// Source MAC (the egress interface's).
    pub smac: [u8; 6],
    /// Destination MAC (the next hop's).
    pub dmac: [u8; 6],
}

/// The slot of the route to (`saddr`, `daddr`) from `in_ifindex` in the route cache.
#[inline(always)]
pub const fn route_cache_slot(saddr: u32, daddr: u32, in_ifindex: u32) -> u32 {
    let x = daddr ^ saddr.rotate_left(13) ^ in_ifindex.rotate_left(26);
    // Fibonacci hashing: the top bits of the product.
    x.wrapping_mul(0x9E37_79B1) >> (32 - ROUTE_CACHE_SLOTS.trailing_zeros())
}

/// Index of `vg_deliver` in `NERG_JUMP`.
pub const JUMP_DELIVER: u32 = 0;
/// Index of `vg_home6` in `NERG_JUMP`.
pub const JUMP_HOME6: u32 = 1;
/// Slots of `NERG_JUMP`. A pin with fewer (an older vgd's) is refused at load: the IPv6
/// tail call would fail for every packet.
pub const JUMP_SLOTS: u32 = 2;

/// Capacity of the NAT tables (each mapping takes one entry in both).
pub const MAX_NAT_MAPPINGS: u32 = 1 << 20;
/// Public addresses the vG can hold.
pub const MAX_PUBLIC_IPS: u32 = 65_536;
/// Capacity of the APDF permission table (remote endpoints per mapping, all homes).
pub const MAX_NAT_PERMITS: u32 = 1 << 20;
/// Capacity of the fragment table (datagrams in reassembly-free transit, LRU).
pub const MAX_FRAGS: u32 = 16_384;
/// How stale the fast path lets a last-use timestamp get (mappings, filtering permissions):
/// it rewrites one only when it is at least this old. A timestamp written on every packet
/// dirties the entry's cache line for every packet, and moves that line between CPUs when
/// one flow's packets reach more than one. Expiry adds this step to every idle timer, so no
/// entry expires sooner than its timer.
pub const LAST_SEEN_STEP_NS: u64 = 1_000_000_000;
/// Port blocks a subscriber can hold on its public address (RFC 6888 REQ-4); the same bound
/// as `vg::nat::MAX_BLOCKS_PER_SUBSCRIBER`.
pub const MAX_BLOCKS: usize = 32;
/// Pseudo-random candidates tried after the original port (Cilium, einat: 32). The sequence
/// is `vg::nat::select`'s, bit for bit: `x = x * NAT_PROBE_LCG_MUL + NAT_PROBE_LCG_INC`
/// (wrapping, starting from the flow hash), `index = (x as u64 * ports_in_blocks) >> 32`.
pub const NAT_MAX_PROBES: u32 = 32;
/// Multiplier of the probe LCG (PCG's 32-bit LCG multiplier).
pub const NAT_PROBE_LCG_MUL: u32 = 747_796_405;
/// Increment of the probe LCG (odd: full period).
pub const NAT_PROBE_LCG_INC: u32 = 2_891_336_453;

/// A [`Subscriber::blocks`] array holding `firsts` (at most [`MAX_BLOCKS`]; the rest 0).
pub const fn blocks_from(firsts: &[u16]) -> [u16; MAX_BLOCKS] {
    let mut out = [0u16; MAX_BLOCKS];
    let mut i = 0;
    while i < firsts.len() && i < MAX_BLOCKS {
        out[i] = firsts[i];
        i += 1;
    }
    out
}

/// The keyed flow hash that seeds a new mapping's probe sequence (RFC 6888 REQ-15: ports
/// hard to guess without the seed). Over what identifies an endpoint-independent mapping:
/// home, protocol, private address and port (raw, network order in memory), never the
/// destination. A murmur3-style mix; shared by the XDP program and userspace.
#[inline(always)]
pub const fn nat_flow_hash(
    seed: u32,
    sub: SubscriberId,
    proto: u8,
    priv_ip: u32,
    priv_port: u16,
) -> u32 {
    let mut x = seed ^ sub.wrapping_mul(0x9e37_79b1);
    x ^= priv_ip.wrapping_mul(0x85eb_ca6b);
    x ^= ((priv_port as u32) << 8 | proto as u32).wrapping_mul(0xc2b2_ae35);
    x ^= x >> 16;
    x = x.wrapping_mul(0x85eb_ca6b);
    x ^= x >> 13;
    x = x.wrapping_mul(0xc2b2_ae35);
    x ^ (x >> 16)
}

/// Default capacity of the per-subscriber maps (`SUBSCRIBERS`, `SUB_COUNTERS`, LSL maps);
/// vgd may set another at load time.
pub const MAX_SUBSCRIBERS: u32 = 131_072;
/// Capacity of the host table (MAC <-> IP per home).
pub const MAX_HOSTS: u32 = 524_288;
/// Capacity of the IPv6 prefix trie (each home: its LAN /64 and its delegated prefixes).
pub const MAX_V6_PREFIXES: u32 = 4 * MAX_SUBSCRIBERS;
/// Capacity of the IPv6 neighbour table, all homes (per-home bounds are the slow path's).
pub const MAX_V6_NEIGHBOURS: u32 = 1 << 20;
/// Most IPv6 extension headers the fast path walks before the upper-layer header (RFC 8200
/// §4.1 order: hop-by-hop, destination options, routing, fragment, destination options,
/// plus one spare). A longer chain is dropped (`ipv6_ext_headers`): without its upper-layer
/// header the fast path could not tell an RA or a DHCPv6 server message (RFC 7113 §3).
pub const MAX_V6_EXT_HEADERS: usize = 6;
/// Downstream IPv6 punts per home (neighbour misses, packets too big): one every this many
/// nanoseconds on average (50 per second), so that a scan of a home's /64 from the internet
/// punts at most this rate into the ring, whatever its rate.
pub const V6_PUNT_INTERVAL_NS: u64 = 20_000_000;
/// ... with bursts of this many.
pub const V6_PUNT_BURST: u64 = 16;
/// Size in bytes of the punt ring buffer (a power of two, a multiple of the page size).
pub const PUNT_RING_BYTES: u32 = 4 << 20;
/// Bytes of a punted frame copied to the slow path; longer frames are cut. Large enough for
/// a 1500-byte packet inside VXLAN (1564 bytes), so that the gateway can quote it in an ICMP
/// error; with the header a record is 2 KiB.
pub const PUNT_MAX_FRAME: usize = 2032;

/// Names of the programs in the vG object file.
pub mod program_names {
    /// The access-side XDP entry (LSL termination, upstream NAT).
    pub const ACCESS: &str = "vg_access";
    /// The core-side XDP entry (downstream NAT, LSL encapsulation).
    pub const CORE: &str = "vg_core";
    /// tc ingress on the access interface: lets frames XDP handed to the stack in.
    pub const ACCESS_TC: &str = "vg_access_tc";
    /// A program that passes every frame: attached to veth peers so that native
    /// `XDP_REDIRECT`/`XDP_TX` into a veth is delivered (see `platform.md`).
    pub const PASS: &str = "vg_pass";
    /// Delivery to a home (its LSL encapsulation, redirect to the access side): tail-called
    /// by `vg_core` and by `vg_access` (hairpin) through the map `NERG_JUMP`, never attached.
    pub const DELIVER: &str = "vg_deliver";
    /// IPv6 from a home (after its LSL: checks, RA guard, anti-spoofing, routing):
    /// tail-called by `vg_access` through `NERG_JUMP`, never attached. A program of its own
    /// so that the IPv4 path's code, stack and verification stay as they were.
    pub const HOME6: &str = "vg_home6";
}

/// Greatest number of VLAN tags parsed in-line (one C-tag, or an S-tag and a C-tag).
pub const MAX_VLAN_DEPTH: usize = 2;

/// Ethertypes the access side understands (host byte order).
pub mod ethertype {
    /// IPv4.
    pub const IPV4: u16 = 0x0800;
    /// ARP.
    pub const ARP: u16 = 0x0806;
    /// IEEE 802.1Q customer tag (C-tag); also seen as a legacy outer tag.
    pub const VLAN: u16 = 0x8100;
    /// IEEE 802.1ad service tag (S-tag).
    pub const QINQ: u16 = 0x88A8;
    /// Legacy pre-standard QinQ outer tag.
    pub const QINQ_LEGACY: u16 = 0x9100;
    /// IPv6.
    pub const IPV6: u16 = 0x86DD;
}

macro_rules! indexed_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $label:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        #[repr(u32)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
        }

        impl $name {
            /// Every variant, in index order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            /// Number of variants: the `max_entries` of the map indexed by this enum.
            pub const COUNT: u32 = Self::ALL.len() as u32;

            /// The map index of this variant.
            #[inline(always)]
            pub const fn index(self) -> u32 {
                self as u32
            }

            /// A stable snake_case name, used as a metric label.
            pub const fn label(self) -> &'static str {
                match self {
                    $( $name::$variant => $label, )+
                }
            }
        }
    };
}

indexed_enum! {
    /// Packet counters of the fast path, one slot per CPU each.
    pub enum Counter {
        /// Frames seen on the access interface.
        AccessRxPackets = "access_rx_packets",
        /// Bytes seen on the access interface (L2 frame length).
        AccessRxBytes = "access_rx_bytes",
        /// Access frames without a VLAN tag.
        LslUntagged = "lsl_untagged",
        /// Access frames with one 802.1Q tag.
        LslDot1q = "lsl_dot1q",
        /// Access frames with two tags (QinQ).
        LslQinq = "lsl_qinq",
        /// Access frames in VXLAN to our VTEP.
        LslVxlan = "lsl_vxlan",
        /// Access frames in VXLAN over IPv6 to our VTEP.
        LslVxlan6 = "lsl_vxlan6",
        /// Frames handed to the kernel stack (`XDP_PASS`).
        VerdictPass = "verdict_pass",
        /// Frames dropped (`XDP_DROP`); the reason is in the drops map.
        VerdictDrop = "verdict_drop",
        /// Frames sent back out of the interface they came in on (`XDP_TX`).
        VerdictTx = "verdict_tx",
        /// Frames redirected to another interface (`XDP_REDIRECT`).
        VerdictRedirect = "verdict_redirect",
        /// Frames aborted by a program error (`XDP_ABORTED`).
        VerdictAborted = "verdict_aborted",
        /// Frames copied to the slow path (and not passed on).
        VerdictPunt = "verdict_punt",
        /// Frames seen on the core interface.
        CoreRxPackets = "core_rx_packets",
        /// Bytes seen on the core interface.
        CoreRxBytes = "core_rx_bytes",
        /// NAT mappings created by the fast path.
        NatCreated = "nat_created",
        /// Mappings that kept the original port (RFC 4787 REQ-3 port preservation).
        NatPortPreserved = "nat_port_preserved",
        /// Ports probed beyond the first candidate when creating mappings.
        NatProbes = "nat_probes",
        /// Upstream frames translated.
        NatUpstream = "nat_upstream",
        /// Downstream frames translated.
        NatDownstream = "nat_downstream",
        /// FIB `NO_NEIGH`: handed to the stack after translation to resolve the neighbour.
        FibNoNeigh = "fib_no_neigh",
        /// Home-to-public-address packets translated and delivered to a home directly.
        NatHairpin = "nat_hairpin",
        /// ICMP errors translated (embedded header included), both directions.
        NatIcmpError = "nat_icmp_error",
        /// TCP SYNs whose MSS option was lowered.
        MssClamped = "mss_clamped",
        /// Non-first IPv4 fragments translated by following their first fragment.
        FragmentFollowed = "fragment_followed",
        /// Real `bpf_fib_lookup` calls (IPv4): route cache misses.
        FibLookup = "fib_lookups",
        /// Upstream frames checked against the host table (anti-spoofing): those without an
        /// established mapping that vouches for their sender.
        HostCheck = "host_checks",
        /// Mappings handed to a new host: their address had been leased to another MAC
        /// since they were created, and the new host's first packet took them over.
        NatReowned = "nat_reowned",
        /// IPv6 packets from homes routed to the core.
        Ipv6Upstream = "ipv6_upstream",
        /// IPv6 packets from the core routed to a home.
        Ipv6Downstream = "ipv6_downstream",
        /// IPv6 packets from one home routed straight to another.
        Ipv6HomeToHome = "ipv6_home_to_home",
    }
}

indexed_enum! {
    /// Why the fast path dropped a frame, one counter slot per CPU each.
    pub enum DropReason {
        /// Shorter than the headers it claims to carry.
        Truncated = "truncated",
        /// More stacked VLAN tags than [`MAX_VLAN_DEPTH`].
        VlanTooDeep = "vlan_too_deep",
        /// A tag whose TPID is not accepted in its position (outer S-tag TPIDs are
        /// configurable; a single or inner tag must be 0x8100).
        BadTpid = "bad_tpid",
        /// Tags or VNI/VTEP that belong to no subscriber.
        UnknownLsl = "unknown_lsl",
        /// VXLAN (UDP to the VXLAN port) addressed to an IP that is not our VTEP.
        WrongVtep = "wrong_vtep",
        /// VXLAN header without the I flag, or with reserved bits set.
        VxlanBadFlags = "vxlan_bad_flags",
        /// IPv4 header with options, a bad IHL or a bad total length (outer or inner); an
        /// outer IPv6 header whose payload length the frame cannot hold.
        BadIpHeader = "bad_ip_header",
        /// Outer IPv4 fragment towards the VXLAN port (cannot be decapsulated).
        OuterFragment = "outer_fragment",
        /// IPv4 source (or its MAC) is not a host the vG knows for this home; IPv6 source
        /// outside the home's prefixes, or from a MAC the vG has not learnt for it (SAVI,
        /// RFC 6620/7513).
        Spoofed = "spoofed",
        /// An inner ethertype the vG does not route (not IPv4, ARP or IPv6).
        UnsupportedEthertype = "unsupported_ethertype",
        /// The slow path's ring buffer was full.
        PuntRingFull = "punt_ring_full",
        /// The home has no public address or no port block (NAT off for it).
        NoPublicAddress = "no_public_address",
        /// Every probed port of the home's blocks was taken (RFC 6888 REQ-11).
        NatPortsExhausted = "nat_ports_exhausted",
        /// A race with another CPU creating the same mapping could not be resolved.
        NatInsertFailed = "nat_insert_failed",
        /// An IPv4 fragment the fast path does not translate: a fragmented ICMP message,
        /// or a fragment of a hairpinned datagram.
        Fragment = "fragment",
        /// A later fragment of a datagram whose first fragment was not seen (out of order,
        /// or the first fragment was dropped): nothing says where it goes.
        FragmentOrphan = "fragment_orphan",
        /// An ICMP type the NAT does not translate (queries other than echo, redirects,
        /// errors quoting a packet with IP options).
        IcmpUnsupported = "icmp_unsupported",
        /// A transport protocol other than TCP, UDP and ICMP.
        ProtoUnsupported = "proto_unsupported",
        /// The FIB has no route (blackhole, unreachable, prohibit) for the destination.
        NoRoute = "no_route",
        /// The packet is larger than the egress MTU.
        FragNeeded = "frag_needed",
        /// The egress interface is not in the device map.
        NoEgress = "no_egress",
        /// To one of our public addresses, but no mapping has that port.
        NoMapping = "no_mapping",
        /// Growing the frame for the home's encapsulation failed.
        EncapFailed = "encap_failed",
        /// Downstream packet with TTL (IPv6: hop limit) 1 or 0.
        TtlExpired = "ttl_expired",
        /// Inbound packet from a remote endpoint the mapping never sent to, for a home with
        /// address-and-port-dependent filtering (RFC 4787 REQ-8).
        Filtered = "filtered",
        /// The home already has its most concurrent mappings (RFC 6888 REQ-5).
        SessionLimit = "session_limit",
        /// A port forward to a private address the home has no host at (no lease, no static
        /// entry): the vG does not know its MAC.
        NoHost = "no_host",
        /// The tail call to the delivery program failed (its slot in `NERG_JUMP` is empty:
        /// a loader bug).
        TailCallFailed = "tail_call_failed",
        /// A frame of an 802.1Q home (`vlan:N`) with a second tag inside the home's: a host
        /// of the home tagged its own frame. Never read as a QinQ LSL (0x8100/N outer), so
        /// that such a host cannot reach another home.
        TaggedInHome = "tagged_in_home",
        /// Over the home's rate limit in that direction ([`Subscriber::qos`]).
        RateLimited = "rate_limited",
        /// From a home: a router advertisement, an ICMPv6 redirect or a DHCPv6 server
        /// message (UDP from port 547 to 546): only the vG may send those into a home (RA
        /// guard, RFC 6105; DHCPv6 shield, RFC 7610).
        RaGuard = "ra_guard",
        /// IPv6 the vG does not route: a link-local destination other than the gateway's,
        /// multicast (link-scoped or wider), a link-local or unspecified source towards a
        /// routed destination (RFC 4291 §2.5.6).
        NotRouted6 = "not_routed6",
        /// More IPv6 extension headers than [`MAX_V6_EXT_HEADERS`], or one the frame cannot
        /// hold.
        Ipv6ExtHeaders = "ipv6_ext_headers",
        /// To an IPv6 neighbour whose resolution the slow path has under way (INCOMPLETE in
        /// `NERG_V6_NEIGH`): dropped, not punted again.
        NeighIncomplete = "neigh_incomplete",
        /// A downstream IPv6 punt (neighbour miss, packet too big, to the gateway's address)
        /// over the home's punt limit ([`V6_PUNT_INTERVAL_NS`]).
        V6PuntLimited = "v6_punt_limited",
    }
}

indexed_enum! {
    /// Why a frame was handed to the slow path.
    pub enum PuntReason {
        /// ARP (requests for the home's gateway address, gratuitous ARP).
        Arp = "arp",
        /// DHCPv4 client traffic (UDP to port 67).
        Dhcp = "dhcp",
        /// ICMP to the home's gateway address.
        IcmpToGateway = "icmp_to_gateway",
        /// IPv6 without a better reason: from a home without IPv6 in the fast path
        /// ([`sub_flags::IPV6`] clear), or to one of the gateway's addresses and not an echo
        /// request.
        Ipv6 = "ipv6",
        /// Other IPv4 to the gateway address.
        ToGateway = "to_gateway",
        /// TTL 1 (or 0): the gateway answers with ICMP time exceeded.
        TtlExceeded = "ttl_exceeded",
        /// IPv6 neighbour discovery from a home: RS, NS, NA (RFC 4861). Also how the slow
        /// path learns the home's neighbours (SAVI, RFC 6620).
        Nd = "nd",
        /// MLD reports and queries from a home (RFC 3810).
        Mld = "mld",
        /// DHCPv6 client (or relay) messages from a home: UDP to port 547 (RFC 8415).
        Dhcpv6 = "dhcpv6",
        /// ICMPv6 echo request to one of the gateway's addresses (the home's link-local, any
        /// home's address on its LAN /64; from the core: within the home's punt limit).
        Icmpv6ToGateway = "icmpv6_to_gateway",
        /// Downstream IPv6 to an address of a home's LAN /64 (or a delegated prefix's router)
        /// with no entry in `NERG_V6_NEIGH`: the slow path sends an NS into the home. The
        /// frame is the core-side frame (plain Ethernet + IPv6). Bounded per home
        /// ([`V6_PUNT_INTERVAL_NS`]).
        NeighMiss = "neigh_miss",
        /// IPv6 hop limit 1 (or 0) from a home: the gateway answers with ICMPv6 time
        /// exceeded (RFC 4443 §3.3).
        HopLimitExceeded = "hop_limit_exceeded",
        /// An IPv6 packet larger than the link it must take allows: the slow path answers
        /// with ICMPv6 Packet Too Big (RFC 4443 §3.2) carrying [`PuntHeader::mtu`]. From a
        /// home (the egress MTU, or the target home's LSL MTU for home-to-home): the frame
        /// as received; from the core (the home's LSL MTU): the core-side frame, bounded per
        /// home like `neigh_miss`.
        PacketTooBig = "packet_too_big",
    }
}

/// A subscriber's index in the per-subscriber arrays (dense, assigned by vgd).
pub type SubscriberId = u32;

/// Fast-path configuration (one entry in `NERG_CONFIG`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct Config {
    /// The vG's VTEP IPv4 address, network byte order; 0 disables VXLAN.
    pub vtep_ipv4: u32,
    /// The VXLAN UDP port, network byte order (4789, RFC 7348).
    pub vxlan_port: u16,
    /// Accepted outer (S-tag) TPIDs: bits of [`stag_tpid`].
    pub stag_tpids: u16,
    /// Bit flags ([`config_flags`]).
    pub flags: u32,
    /// Ports per NAT block (host byte order); 0 = NAT off.
    pub nat_block_size: u16,
    /// Explicit padding.
    pub _pad: u16,
    /// Seed of [`nat_flow_hash`], chosen at random by vgd.
    pub nat_hash_seed: u32,
    /// The access interface (downstream frames are redirected there).
    pub access_ifindex: u32,
    /// The access interface's MAC: the destination of frames handed to the stack after
    /// decapsulation (FIB `NO_NEIGH`), and the outer source MAC of VXLAN.
    pub access_mac: [u8; 6],
    /// Explicit padding.
    pub _pad2: [u8; 2],
    /// The vG's VTEP IPv6 address (network order); all-zero disables VXLAN over IPv6.
    pub vtep_ipv6: [u8; 16],
}

/// Bits of [`Config::stag_tpids`]: which outer TPIDs mark an S-tag.
pub mod stag_tpid {
    /// 0x88A8 (IEEE 802.1ad).
    pub const AD: u16 = 1 << 0;
    /// 0x9100 (pre-standard).
    pub const LEGACY_9100: u16 = 1 << 1;
    /// 0x8100 (double C-tag, "Q-in-Q" with 802.1Q outer).
    pub const DOT1Q: u16 = 1 << 2;
    /// Default: all three.
    pub const ALL: u16 = AD | LEGACY_9100 | DOT1Q;
}

/// Bits of [`Config::flags`].
pub mod config_flags {
    /// The config entry has been written by vgd (an all-zero entry means "not configured").
    pub const VALID: u32 = 1 << 0;
}

/// Key of `NERG_LSL_VLAN`: an 802.1Q or QinQ LSL on the access interface.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[repr(C)]
pub struct VlanLslKey {
    /// The access interface the LSL arrives on.
    pub ifindex: u32,
    /// S-VID (host byte order), 0 for a single-tagged LSL.
    pub s_vid: u16,
    /// C-VID (host byte order).
    pub c_vid: u16,
}

/// Key of `NERG_LSL_VXLAN`: a VXLAN LSL over IPv4.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[repr(C)]
pub struct VxlanLslKey {
    /// VNI (host byte order, low 24 bits).
    pub vni: u32,
    /// The BRG's VTEP address (outer source), network byte order.
    pub remote: u32,
}

/// Key of `NERG_LSL_VXLAN6`: a VXLAN LSL over IPv6.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[repr(C)]
pub struct Vxlan6LslKey {
    /// VNI (host byte order, low 24 bits).
    pub vni: u32,
    /// The BRG's VTEP address (outer source), network order.
    pub remote: [u8; 16],
}

/// LSL kinds in [`Subscriber::lsl_kind`].
pub mod lsl_kind {
    /// 802.1Q single tag.
    pub const DOT1Q: u8 = 1;
    /// QinQ.
    pub const QINQ: u8 = 2;
    /// VXLAN over IPv4.
    pub const VXLAN4: u8 = 3;
    /// VXLAN over IPv6.
    pub const VXLAN6: u8 = 4;
}

/// Bits of [`Subscriber::flags`].
pub mod sub_flags {
    /// The slot holds a live subscriber.
    pub const ACTIVE: u32 = 1 << 0;
    /// Address-and-port-dependent filtering (RFC 4787 REQ-8 "APDF"): inbound packets reach
    /// a mapping only from a remote address and port the home has sent to through it.
    /// Clear: endpoint-independent filtering (EIF).
    pub const FILTER_APDF: u32 = 1 << 1;
    /// IPv6 is routed by the fast path for this home (its prefixes are in
    /// `NERG_V6_PREFIXES`, its neighbours in `NERG_V6_NEIGH`). Clear: every IPv6 frame of
    /// the home goes to the slow path (`PuntReason::Ipv6`).
    pub const IPV6: u32 = 1 << 2;
}

/// One home, as the fast path needs it (`NERG_SUBSCRIBERS[id]`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct Subscriber {
    /// Bit flags ([`sub_flags`]); 0 = empty slot.
    pub flags: u32,
    /// LSL kind ([`lsl_kind`]).
    pub lsl_kind: u8,
    /// Explicit padding.
    pub _pad0: u8,
    /// S-tag TPID (host byte order) for QinQ.
    pub s_tpid: u16,
    /// S-VID (host byte order), QinQ only.
    pub s_vid: u16,
    /// C-VID (host byte order), 802.1Q and QinQ.
    pub c_vid: u16,
    /// VNI (host byte order), VXLAN only.
    pub vni: u32,
    /// The BRG's VTEP (network byte order), VXLAN only.
    pub remote_vtep: u32,
    /// The outer destination MAC towards the BRG's VTEP, VXLAN only.
    pub remote_mac: [u8; 6],
    /// The home's gateway MAC (what ARP for the gateway answers).
    pub gw_mac: [u8; 6],
    /// The home's gateway IPv4 address, network byte order.
    pub gw_ip: u32,
    /// The home's public IPv4 address, network byte order; 0 = no NAT for this home.
    pub public_ip: u32,
    /// How many of `blocks` are assigned.
    pub block_count: u32,
    /// First port of each assigned block (host byte order); each block has
    /// `Config::nat_block_size` ports.
    pub blocks: [u16; MAX_BLOCKS],
    /// Most concurrent mappings for this home (RFC 6888 REQ-5); 0 = no limit.
    pub session_limit: u32,
    /// Clamp the MSS option of TCP SYNs in both directions to this value (host byte
    /// order); 0 = no clamping. A VXLAN LSL needs it (its MTU is 50 bytes smaller).
    pub tcp_mss: u16,
    /// Explicit padding.
    pub _pad1: u16,
    /// The largest IPv6 packet (40-byte header included, host byte order) the home's LSL
    /// carries: 1500 for 802.1Q and QinQ, less for VXLAN (its encapsulation fits the
    /// underlay's 1500). Larger IPv6 packets for the home are punted for an ICMPv6 Packet
    /// Too Big. 0: no check.
    pub ip6_mtu: u16,
    /// Explicit padding.
    pub _pad2: u16,
    /// The BRG's VTEP (network order), VXLAN over IPv6 only.
    pub remote_vtep6: [u8; 16],
    /// The home's rate limits, upstream ([`QOS_UP`]) and downstream ([`QOS_DOWN`]).
    pub qos: [QosRate; 2],
}

/// Index of the upstream (from the home) limit in [`Subscriber::qos`] and
/// [`QosState::tat_ns`].
pub const QOS_UP: usize = 0;
/// Index of the downstream (to the home) limit.
pub const QOS_DOWN: usize = 1;

/// A home's rate limit in one direction: a virtual-scheduling token bucket (GCRA, ITU-T
/// I.371). Each admitted packet moves the home's theoretical arrival time
/// ([`QosState::tat_ns`]) on by its length at the rate; a packet is admitted while that time
/// runs at most `burst_ns` ahead of the clock. What is counted is the IP packet (IPv4: its
/// total length; IPv6: its 40-byte header and payload), the same in both directions
/// whatever the LSL's encapsulation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct QosRate {
    /// Nanoseconds per byte at the rate, in 16.16 fixed point; 0 = no limit.
    pub ns_per_byte_q16: u64,
    /// How far the theoretical arrival time may run ahead of the clock (the burst, as time
    /// at the rate), in nanoseconds.
    pub burst_ns: u64,
}

impl QosRate {
    /// The limit for `bits_per_s` with a burst of `burst_bytes`; `bits_per_s` 0 = no limit.
    pub const fn new(bits_per_s: u64, burst_bytes: u64) -> Self {
        if bits_per_s == 0 {
            return Self {
                ns_per_byte_q16: 0,
                burst_ns: 0,
            };
        }
        // 8e9 ns of bits per byte-second, in 16.16: exact to a part in 2^16 at 1 Tbit/s.
        let q16 = (8_000_000_000u128 << 16) / bits_per_s as u128;
        let q16 = if q16 == 0 { 1 } else { q16 as u64 };
        Self {
            ns_per_byte_q16: q16,
            burst_ns: ((burst_bytes as u128 * q16 as u128) >> 16) as u64,
        }
    }

    /// The time `bytes` take at the rate, in nanoseconds.
    #[inline(always)]
    pub const fn cost_ns(&self, bytes: u64) -> u64 {
        (bytes * self.ns_per_byte_q16) >> 16
    }
}

/// Value of `NERG_QOS`, one per home: where each direction's bucket stands. The fast path
/// moves it on with atomic adds (several CPUs carry one home's packets); vgd never writes it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct QosState {
    /// Theoretical arrival time (`bpf_ktime_get_coarse_ns`) per direction ([`QOS_UP`],
    /// [`QOS_DOWN`]).
    pub tat_ns: [u64; 2],
}

/// Key of `NERG_NAT_FWD`: one endpoint-independent mapping (RFC 4787 REQ-1): the home, the
/// private address and port (ICMP: echo identifier), the protocol. No destination.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[repr(C)]
pub struct NatFwdKey {
    /// The home.
    pub sub: SubscriberId,
    /// Private IPv4, network byte order.
    pub priv_ip: u32,
    /// Private port or ICMP identifier, network byte order.
    pub priv_port: u16,
    /// IP protocol (6, 17, 1).
    pub proto: u8,
    /// Explicit padding.
    pub _pad: u8,
}

/// Value of `NERG_NAT_FWD`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct NatMapping {
    /// Public IPv4, network byte order.
    pub pub_ip: u32,
    /// Public port or ICMP identifier, network byte order.
    pub pub_port: u16,
    /// TCP flags seen ([`tcp_seen`]), for the expiry timers.
    pub tcp_seen: u8,
    /// Bit flags ([`nat_flags`]).
    pub flags: u8,
    /// Last upstream packet, `bpf_ktime_get_coarse_ns` (CLOCK_MONOTONIC at tick resolution),
    /// up to [`LAST_SEEN_STEP_NS`] behind.
    pub last_seen_ns: u64,
    /// The MAC address of the host the mapping belongs to, last found in `NERG_HOSTS`
    /// with. A mapping serves one host: when the mapping's address is leased to another
    /// MAC, that host's first packet re-owns the mapping (fresh state, both entries
    /// rewritten with its MAC), and the previous host's flows through it end.
    pub host_mac: [u8; 6],
    /// Explicit padding.
    pub _pad: u16,
    /// The home's `NERG_HOSTS_GEN` read before that lookup. While it is still the home's
    /// generation and the frame comes from `host_mac`, the mapping vouches for its sender
    /// and the fast path skips the host table (anti-spoofing costs no lookup for an
    /// established flow). 0 with `host_mac` all zero: never checked (vgd's port forwards).
    pub hosts_gen: u32,
    /// Explicit padding.
    pub _pad2: u32,
}

/// Key of `NERG_NAT_REV`: a public transport address.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[repr(C)]
pub struct NatRevKey {
    /// Public IPv4, network byte order.
    pub pub_ip: u32,
    /// Public port or ICMP identifier, network byte order.
    pub pub_port: u16,
    /// IP protocol.
    pub proto: u8,
    /// Explicit padding.
    pub _pad: u8,
}

/// Value of `NERG_NAT_REV`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct NatRev {
    /// The home.
    pub sub: SubscriberId,
    /// Private IPv4, network byte order.
    pub priv_ip: u32,
    /// Private port or ICMP identifier, network byte order.
    pub priv_port: u16,
    /// The MAC of the host the mapping belongs to (the downstream destination): the host
    /// that created it, or that re-owned it after its address moved to it (see
    /// [`NatMapping::host_mac`]). The forward entry always holds the same MAC.
    pub host_mac: [u8; 6],
    /// Bit flags ([`nat_flags`]).
    pub flags: u8,
    /// Explicit padding.
    pub _pad: [u8; 3],
    /// The home's `NERG_HOSTS_GEN` when `host_mac` was last found in `NERG_HOSTS` for
    /// `priv_ip`. Downstream, while it is still the home's generation the MAC is used as it
    /// is; once the generation moved (a host of the home was removed or changed its MAC) the
    /// host table is asked again, and a mapping whose address no longer belongs to
    /// `host_mac` delivers nothing (`no_host`) until that address's new host re-owns it.
    /// 0 on entries written by vgd (port forwards, restored mappings): checked once.
    pub hosts_gen: u32,
    /// Last downstream packet (not written today), CLOCK_MONOTONIC ns.
    pub last_seen_ns: u64,
}

/// Bits of [`NatMapping::flags`] and [`NatRev::flags`].
pub mod nat_flags {
    /// Created by the control plane (a port forward), never expired by idleness.
    pub const STATIC: u8 = 1 << 0;
    /// On a reverse entry: the mapping expired; the public port is held back (RFC 6888
    /// REQ-8, 120 s) and translates nothing. vgd removes it when the hold-down ends.
    pub const TOMBSTONE: u8 = 1 << 1;
}

/// Key of `NERG_NAT_PERMIT`: a remote endpoint one mapping of an APDF home has sent to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[repr(C)]
pub struct NatPermitKey {
    /// The mapping's public IPv4, network byte order.
    pub pub_ip: u32,
    /// The remote IPv4, network byte order.
    pub remote_ip: u32,
    /// The mapping's public port or ICMP identifier, network byte order.
    pub pub_port: u16,
    /// The remote port, network byte order (0 for ICMP).
    pub remote_port: u16,
    /// IP protocol.
    pub proto: u8,
    /// Explicit padding.
    pub _pad: [u8; 3],
}

/// Key of `NERG_FRAGS`: one IPv4 datagram (RFC 791: source, destination, protocol, ID).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[repr(C)]
pub struct FragKey {
    /// Source IPv4, network byte order.
    pub src: u32,
    /// Destination IPv4 (one of our public addresses), network byte order.
    pub dst: u32,
    /// IP identification, network byte order.
    pub id: u16,
    /// IP protocol.
    pub proto: u8,
    /// Explicit padding.
    pub _pad: u8,
}

/// Value of `NERG_FRAGS`: the home host the datagram's first fragment was translated to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct FragTarget {
    /// The home.
    pub sub: SubscriberId,
    /// Private IPv4, network byte order.
    pub priv_ip: u32,
    /// The host's MAC.
    pub host_mac: [u8; 6],
    /// Private port, network byte order (keeps the VXLAN source port of the first fragment).
    pub priv_port: u16,
}

/// Value of `NERG_DELIVERY` (one slot per CPU): where an entry program (`vg_core`, or
/// `vg_access` for a hairpin) tells `vg_deliver` to send the frame it tail-calls with. The
/// tail call runs on the same CPU right after, and nothing else runs in between. Pinned,
/// like `NERG_JUMP`: while a restarted vgd takes over, the previous vgd's entry programs
/// tail-call the new `vg_deliver`, and both must read and write the same slots.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct Delivery {
    /// The home.
    pub sub_id: SubscriberId,
    /// Private IPv4, network byte order.
    pub priv_ip: u32,
    /// Private port or ICMP identifier, network byte order.
    pub priv_port: u16,
    /// The home host's MAC.
    pub host_mac: [u8; 6],
    /// The MAC of the interface the frame came in on.
    pub in_mac: [u8; 6],
    /// The frame's ethertype (host byte order): [`ethertype::IPV6`] for a routed IPv6
    /// packet (then `priv_ip` and `priv_port` are 0); 0 (an older vgd's entry programs
    /// write nothing here) or [`ethertype::IPV4`] for a translated IPv4 packet.
    pub ethertype: u16,
    /// The frame's length, for the home's counters.
    pub len: u64,
}

/// Bits of [`NatMapping::tcp_seen`].
pub mod tcp_seen {
    /// SYN from the home.
    pub const SYN_OUT: u8 = 1 << 0;
    /// FIN from the home.
    pub const FIN_OUT: u8 = 1 << 1;
    /// RST either way.
    pub const RST: u8 = 1 << 2;
    /// A segment without SYN from the home after its SYN: the connection is established.
    pub const ESTABLISHED: u8 = 1 << 3;
}

/// Key of `NERG_HOSTS`: a host in a home.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[repr(C)]
pub struct HostKey {
    /// The home.
    pub sub: SubscriberId,
    /// The host's private IPv4 address, network byte order.
    pub ip: u32,
}

/// Value of `NERG_HOSTS`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct Host {
    /// The host's MAC address.
    pub mac: [u8; 6],
    /// Where the entry comes from ([`host_flags`]).
    pub flags: u8,
    /// Explicit padding.
    pub _pad: u8,
}

/// Bits of [`Host::flags`].
pub mod host_flags {
    /// Configured statically (not from a DHCP lease).
    pub const STATIC: u8 = 1 << 0;
    /// From a DHCP lease.
    pub const LEASED: u8 = 1 << 1;
}

/// Per-subscriber traffic counters (per CPU).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct SubCounters {
    /// Frames from the home (upstream).
    pub up_packets: u64,
    /// Bytes from the home (L2 frame length as received, encapsulation included).
    pub up_bytes: u64,
    /// Frames to the home (downstream).
    pub down_packets: u64,
    /// Bytes to the home.
    pub down_bytes: u64,
    /// Frames from the home dropped by the fast path.
    pub up_drops: u64,
    /// Frames from the home handed to the slow path.
    pub punted: u64,
    /// Frames from the home over its upstream rate limit (dropped; in `up_drops` too).
    pub up_policed_packets: u64,
    /// Their IP bytes (IPv4 total length, IPv6 header and payload).
    pub up_policed_bytes: u64,
    /// Frames to the home over its downstream rate limit (dropped).
    pub down_policed_packets: u64,
    /// Their IP bytes.
    pub down_policed_bytes: u64,
}

/// Header of a [`PuntRecord`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct PuntHeader {
    /// The home the frame came from.
    pub sub: SubscriberId,
    /// Ingress interface index.
    pub ifindex: u32,
    /// [`PuntReason`] index.
    pub reason: u16,
    /// Bytes of the frame in [`PuntRecord::frame`].
    pub len: u16,
    /// Length of the frame on the wire (may exceed `len`).
    pub wire_len: u16,
    /// [`PuntReason::PacketTooBig`]: the MTU to announce (host byte order). 0 otherwise.
    pub mtu: u16,
}

/// A frame handed to the slow path: the whole frame as received (encapsulation included),
/// so that the slow path can decapsulate it with the `lsl` crate and answer on the same LSL.
#[derive(Clone, Copy, Debug)]
#[repr(C)]
pub struct PuntRecord {
    /// Who and why.
    pub header: PuntHeader,
    /// The frame's first [`PuntHeader::len`] bytes.
    pub frame: [u8; PUNT_MAX_FRAME],
}

/// The BRG's tc tagger: the map ABI between its eBPF programs and `brgd`.
pub mod brg {
    /// Names of the BRG object's maps and programs.
    pub mod names {
        /// Array with one [`TagConfig`](super::TagConfig) at index 0.
        pub const LSL: &str = "BRG_LSL";
        /// Per-CPU array of `u64`, indexed by [`TagCounter`](super::TagCounter).
        pub const STATS: &str = "BRG_STATS";
        /// tc egress on the LSL uplink: pushes the LSL's tags in-line.
        pub const EGRESS: &str = "brg_lsl_egress";
        /// tc ingress on the LSL uplink: checks and pops the LSL's tags.
        pub const INGRESS: &str = "brg_lsl_ingress";
    }

    /// The LSL the uplink carries. All-zero (flags 0): pass everything untouched.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    #[repr(C)]
    pub struct TagConfig {
        /// [`TAG_VALID`] when configured.
        pub flags: u32,
        /// S-tag TPID (host byte order); 0 for a single-tagged LSL.
        pub s_tpid: u16,
        /// S-VID (host byte order), QinQ only.
        pub s_vid: u16,
        /// C-VID (host byte order).
        pub c_vid: u16,
        /// Explicit padding.
        pub _pad: u16,
    }

    /// [`TagConfig::flags`]: the entry is configured.
    pub const TAG_VALID: u32 = 1;

    macro_rules! tag_counters {
        ($($(#[$m:meta])* $v:ident = $l:literal,)+) => {
            /// Counters of the tagger.
            #[derive(Clone, Copy, Debug, PartialEq, Eq)]
            #[repr(u32)]
            pub enum TagCounter { $($(#[$m])* $v,)+ }
            impl TagCounter {
                /// Every counter, in index order.
                pub const ALL: &'static [TagCounter] = &[$(TagCounter::$v),+];
                /// Number of counters.
                pub const COUNT: u32 = Self::ALL.len() as u32;
                /// A stable name for metrics.
                pub const fn label(self) -> &'static str {
                    match self { $(TagCounter::$v => $l,)+ }
                }
            }
        };
    }

    tag_counters! {
        /// Frames tagged on their way to the vG.
        Tagged = "tagged",
        /// Frames from the vG whose tags were ours, popped.
        Untagged = "untagged",
        /// Frames from the vG with another LSL's tags (dropped).
        ForeignLsl = "foreign_lsl",
        /// Untagged frames from the access side (passed: the BRG's own management traffic).
        Plain = "plain",
        /// Frames the helpers could not retag or untag (dropped).
        Failed = "failed",
        /// Frames from the LAN that already carry a VLAN tag (in the frame, or in the skb's
        /// VLAN metadata): dropped, never tagged onto the LSL, where the vG would read the
        /// host's own tag as part of the LSL's.
        LanTagged = "lan_tagged",
    }
}

/// The benchmark programs (`ebpf/bench-xdp`): the map ABI between them and `nerg-bench`.
pub mod bench {
    /// Names of the bench object's maps and programs.
    pub mod names {
        /// Array with one [`GenConfig`](super::GenConfig) at index 0.
        pub const GEN_CONFIG: &str = "BENCH_GEN";
        /// Array with one `u32` at index 0: the ifindex `bench_redirect` sends every frame to.
        pub const REDIRECT_TO: &str = "BENCH_REDIRECT_TO";
        /// Device map (hash by ifindex) the forwarding programs redirect through.
        pub const DEVMAP: &str = "BENCH_DEVMAP";
        /// Per-CPU array of `u64`, indexed by [`BenchCounter`](super::BenchCounter).
        pub const STATS: &str = "BENCH_STATS";
        /// The live-frames traffic generator: varies a frame per run, then `XDP_TX`.
        pub const GEN: &str = "bench_gen";
        /// The baseline: `bpf_fib_lookup` + MAC rewrite + redirect, nothing else.
        pub const FIB: &str = "bench_fib";
        /// No-op forwarding: redirect every frame to one interface (the rig's XDP limit).
        pub const REDIRECT: &str = "bench_redirect";
        /// The sink: counts frames and bytes, drops them.
        pub const SINK: &str = "bench_sink";
        /// `XDP_PASS` (lets a veth peer receive `XDP_TX`/redirected frames).
        pub const PASS: &str = "bench_pass";
    }

    /// One field the generator varies per frame: a big-endian integer of `width` bytes
    /// (1..=4) at `offset` from the frame start, set to `base + (n / stride) % count`, where
    /// `n` is the frame's sequence number on its CPU. `count` 0 leaves the field alone.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    #[repr(C)]
    pub struct GenField {
        /// Byte offset of the field's first (most significant) byte.
        pub offset: u16,
        /// Width in bytes, 1..=4.
        pub width: u8,
        /// Explicit padding.
        pub _pad: u8,
        /// The first value.
        pub base: u32,
        /// How many distinct values (0: the field is not varied).
        pub count: u32,
        /// How many consecutive frames keep one value (0 is taken as 1).
        pub stride: u32,
    }

    /// Most fields the generator varies in one frame.
    pub const GEN_FIELDS: usize = 2;
    /// Most header bytes the generator rewrites in each frame (a multiple of 8).
    pub const GEN_HEADER_MAX: usize = 128;

    /// What the generator does to each frame before transmitting it.
    ///
    /// Live-frames mode recycles its pages without restoring their contents, and the
    /// forwarder under test rewrites the headers of the frames it receives in place
    /// (decapsulation, NAT), so the generator writes the template's first `header_len`
    /// bytes into every frame before varying the fields.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    #[repr(C)]
    pub struct GenConfig {
        /// How many bytes of `header` to write (a multiple of 8, at most the frame size).
        pub header_len: u32,
        /// Explicit padding.
        pub _pad: u32,
        /// The template's first bytes.
        pub header: [u8; GEN_HEADER_MAX],
        /// The varied fields (e.g. the home's VLAN/VNI, and the flow's source port). The
        /// fields must not be covered by a checksum, or the frame must carry none (UDP
        /// checksum 0, as the generator's frames do).
        pub fields: [GenField; GEN_FIELDS],
    }

    impl Default for GenConfig {
        fn default() -> Self {
            Self {
                header_len: 0,
                _pad: 0,
                header: [0; GEN_HEADER_MAX],
                fields: [GenField::default(); GEN_FIELDS],
            }
        }
    }

    macro_rules! bench_counters {
        ($($(#[$m:meta])* $v:ident = $l:literal,)+) => {
            /// Counters of the bench programs.
            #[derive(Clone, Copy, Debug, PartialEq, Eq)]
            #[repr(u32)]
            pub enum BenchCounter { $($(#[$m])* $v,)+ }
            impl BenchCounter {
                /// Every counter, in index order.
                pub const ALL: &'static [BenchCounter] = &[$(BenchCounter::$v),+];
                /// Number of counters.
                pub const COUNT: u32 = Self::ALL.len() as u32;
                /// A stable name for output.
                pub const fn label(self) -> &'static str {
                    match self { $(BenchCounter::$v => $l,)+ }
                }
            }
        };
    }

    bench_counters! {
        /// Frames the generator sent on (`XDP_TX`).
        Generated = "generated",
        /// Frames the sink received.
        SinkFrames = "sink_frames",
        /// Bytes the sink received.
        SinkBytes = "sink_bytes",
        /// Frames the forwarding programs could not route or redirect.
        FwdFailed = "fwd_failed",
    }
}

#[cfg(feature = "user")]
mod pod {
    //! `aya::Pod` for the map types: all are `#[repr(C)]` plain data with explicit padding.
    #![expect(unsafe_code, reason = "aya::Pod is an unsafe marker trait")]
    use super::*;

    // SAFETY: this and every impl below: `#[repr(C)]`, only integer and byte-array fields,
    // explicit padding so that every byte is initialised, valid for any bit pattern.
    unsafe impl aya::Pod for Config {}
    // SAFETY: see above.
    unsafe impl aya::Pod for VlanLslKey {}
    // SAFETY: see above.
    unsafe impl aya::Pod for VxlanLslKey {}
    // SAFETY: see above.
    unsafe impl aya::Pod for Vxlan6LslKey {}
    // SAFETY: see above.
    unsafe impl aya::Pod for Subscriber {}
    // SAFETY: see above.
    unsafe impl aya::Pod for HostKey {}
    // SAFETY: see above.
    unsafe impl aya::Pod for Host {}
    // SAFETY: see above.
    unsafe impl aya::Pod for SubCounters {}
    // SAFETY: as above.
    unsafe impl aya::Pod for QosState {}
    // SAFETY: see above.
    unsafe impl aya::Pod for PuntHeader {}
    // SAFETY: see above.
    unsafe impl aya::Pod for NatFwdKey {}
    // SAFETY: see above.
    unsafe impl aya::Pod for NatMapping {}
    // SAFETY: see above.
    unsafe impl aya::Pod for NatRevKey {}
    // SAFETY: see above.
    unsafe impl aya::Pod for NatRev {}
    // SAFETY: see above.
    unsafe impl aya::Pod for NatPermitKey {}
    // SAFETY: see above.
    unsafe impl aya::Pod for FragKey {}
    // SAFETY: see above.
    unsafe impl aya::Pod for FragTarget {}
    // SAFETY: see above.
    unsafe impl aya::Pod for Delivery {}
    // SAFETY: see above.
    unsafe impl aya::Pod for FromHome6 {}
    // SAFETY: see above.
    unsafe impl aya::Pod for PublicRange {}
    // SAFETY: see above.
    unsafe impl aya::Pod for V6PrefixKey {}
    // SAFETY: see above.
    unsafe impl aya::Pod for V6Range {}
    // SAFETY: see above.
    unsafe impl aya::Pod for V6Prefix {}
    // SAFETY: see above.
    unsafe impl aya::Pod for V6NeighKey {}
    // SAFETY: see above.
    unsafe impl aya::Pod for V6Neigh {}
    // SAFETY: see above.
    unsafe impl aya::Pod for brg::TagConfig {}
    // SAFETY: see above.
    unsafe impl aya::Pod for bench::GenConfig {}
}

/// Value type of the per-CPU counter maps.
pub type CounterValue = u64;

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    #[test]
    fn the_public_range_holds_what_it_was_widened_by() {
        let empty = PublicRange::default();
        assert!(!empty.holds(0));
        assert!(!empty.holds(0xc633_6401));
        let r = empty.with(0xc633_6410).with(0xc633_6401).with(0xc633_6408);
        assert_eq!(
            r,
            PublicRange {
                lo: 0xc633_6401,
                hi: 0xc633_6410
            }
        );
        assert!(r.holds(0xc633_6401) && r.holds(0xc633_640a) && r.holds(0xc633_6410));
        assert!(!r.holds(0xc633_6400) && !r.holds(0xc633_6411));
    }

    #[test]
    fn the_v6_range_holds_what_it_was_widened_by() {
        assert!(!V6Range::default().holds(0));
        let r = V6Range::default()
            .with(0x2001_0db8_0000_0100, 0x2001_0db8_0000_01ff)
            .with(0x2001_0db8_0000_0000, 0x2001_0db8_0000_0000);
        assert!(r.holds(0x2001_0db8_0000_0000) && r.holds(0x2001_0db8_0000_01ff));
        assert!(!r.holds(0x2001_0db8_0000_0200) && !r.holds(0x2001_0db7_ffff_ffff));
    }

    #[test]
    fn route_cache_slots_are_in_range_and_spread() {
        let mut used = Vec::new();
        used.resize(ROUTE_CACHE_SLOTS as usize, false);
        // 256 destinations behind one source and interface: consecutive addresses must not
        // pile into a few slots.
        for i in 0..256u32 {
            let daddr = u32::from_be_bytes([203, 0, 113, i as u8]);
            let slot = route_cache_slot(0x0101_a8c0, daddr, 7);
            assert!(slot < ROUTE_CACHE_SLOTS);
            used[slot as usize] = true;
        }
        let distinct = used.iter().filter(|u| **u).count();
        assert!(distinct > 200, "256 destinations took {distinct} slots");
    }

    #[test]
    fn indices_are_dense_and_labels_unique() {
        for (i, c) in Counter::ALL.iter().enumerate() {
            assert_eq!(c.index() as usize, i);
        }
        for (i, d) in DropReason::ALL.iter().enumerate() {
            assert_eq!(d.index() as usize, i);
        }
        let labels = |l: &[&str]| {
            let mut v: Vec<&str> = l.to_vec();
            v.sort_unstable();
            v.dedup();
            v.len()
        };
        assert_eq!(size_of::<Subscriber>() % 8, 0);
        // 100 Mbit/s: 80 ns per byte; a 1500-byte packet 120 us; 10 ms of burst.
        let r = QosRate::new(100_000_000, 125_000);
        assert_eq!(r.ns_per_byte_q16, 80 << 16);
        assert_eq!(r.cost_ns(1500), 120_000);
        assert_eq!(r.burst_ns, 10_000_000);
        // 300 Mbit/s is no whole number of ns per byte: within a part in a million.
        let r = QosRate::new(300_000_000, 0);
        let err = r.cost_ns(1_000_000) as i64 - 26_666_667;
        assert!(err.abs() <= 27, "{err}");
        assert_eq!(QosRate::new(0, 1 << 20), QosRate::default(), "no limit");
        assert_eq!(size_of::<Config>(), 48);
        assert_eq!(size_of::<Subscriber>(), 168);
        assert_eq!(size_of::<SubCounters>(), 80);
        assert_eq!(size_of::<QosState>(), 16);
        assert_eq!(size_of::<Vxlan6LslKey>(), 20);
        assert_eq!(size_of::<NatFwdKey>(), 12);
        assert_eq!(size_of::<NatRevKey>(), 8);
        assert_eq!(size_of::<NatMapping>(), 32);
        assert_eq!(size_of::<NatRev>(), 32);
        assert_eq!(size_of::<NatPermitKey>(), 16);
        assert_eq!(size_of::<RouteCacheEntry>(), 40);
        assert_eq!(size_of::<PublicRange>(), 8);
        assert_eq!(size_of::<RouteCacheEntry6>(), 64);
        assert_eq!(size_of::<FragKey>(), 12);
        assert_eq!(size_of::<FragTarget>(), 16);
        assert_eq!(size_of::<Delivery>(), 32);
        assert_eq!(size_of::<FromHome6>(), 24);
        assert_eq!(size_of::<PuntHeader>(), 16);
        assert_eq!(size_of::<V6PrefixKey>(), 16);
        assert_eq!(size_of::<V6Prefix>(), 24);
        assert_eq!(size_of::<V6NeighKey>(), 20);
        assert_eq!(size_of::<V6Neigh>(), 16);
        assert_eq!(size_of::<V6Range>(), 16);
        assert_eq!(
            size_of::<PuntRecord>() % 8,
            0,
            "ring buffer records are 8-byte aligned"
        );
        let c: [&str; Counter::COUNT as usize] = core::array::from_fn(|i| Counter::ALL[i].label());
        let d: [&str; DropReason::COUNT as usize] =
            core::array::from_fn(|i| DropReason::ALL[i].label());
        assert_eq!(labels(&c), c.len());
        assert_eq!(labels(&d), d.len());
    }
}
