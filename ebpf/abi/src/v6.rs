//! The IPv6 part of the map ABI (issue 18): the homes' prefixes and neighbours, the span of
//! the prefixes, and the hand-over from `vg_access` to `vg_home6`. Re-exported at the crate
//! root.

use crate::SubscriberId;

/// The lowest and the highest first 64 bits (host byte order) of the homes' IPv6 prefixes
/// (`NERG_V6_RANGE`): every address of every prefix in `NERG_V6_PREFIXES` lies inside, so an
/// upstream destination outside is no home's without a trie lookup. vgd widens it before
/// adding a prefix and may narrow it at start; all zero (the map's initial value) holds
/// nothing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct V6Range {
    /// The lowest first 64 bits.
    pub lo: u64,
    /// The highest first 64 bits.
    pub hi: u64,
}

impl V6Range {
    /// Whether an address whose first 64 bits are `top` (host byte order) lies inside.
    #[inline(always)]
    pub const fn holds(&self, top: u64) -> bool {
        self.lo <= top && top <= self.hi && self.hi != 0
    }

    /// The range widened to hold the first 64 bits `lo..=hi` of a prefix.
    pub const fn with(self, lo: u64, hi: u64) -> Self {
        if self.hi == 0 {
            return Self { lo, hi };
        }
        Self {
            lo: if lo < self.lo { lo } else { self.lo },
            hi: if hi > self.hi { hi } else { self.hi },
        }
    }
}

/// Key of `NERG_V6_PREFIXES` without the LPM trie's prefix length (the map's key is
/// `aya::maps::lpm_trie::Key<V6PrefixKey>`: a `u32` prefix length in bits, then these bytes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[repr(C)]
pub struct V6PrefixKey {
    /// The prefix (network order), bits past the length zero.
    pub addr: [u8; 16],
}

/// Value of `NERG_V6_PREFIXES`: whose prefix it is and how its addresses are reached.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct V6Prefix {
    /// The home.
    pub sub: SubscriberId,
    /// [`v6_prefix_kind`].
    pub kind: u8,
    /// Explicit padding.
    pub _pad: [u8; 3],
    /// [`v6_prefix_kind::LAN`]: the gateway's own address on the LAN (ICMPv6 echo to it
    /// is punted). [`v6_prefix_kind::DELEGATED`]: the requesting router's address (in the
    /// LAN /64), the next hop of every address of the prefix (RFC 8415 §6.3). Network order.
    pub addr: [u8; 16],
}

/// Kinds of [`V6Prefix`].
pub mod v6_prefix_kind {
    /// The home's LAN (on-link, a /64): each address's MAC is its own neighbour entry.
    pub const LAN: u8 = 1;
    /// Delegated to a router in the home (DHCPv6-PD): routed via [`super::V6Prefix::addr`].
    pub const DELEGATED: u8 = 2;
}

/// Key of `NERG_V6_NEIGH`: an IPv6 neighbour in a home.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[repr(C)]
pub struct V6NeighKey {
    /// The home.
    pub sub: SubscriberId,
    /// The neighbour's address (network order).
    pub addr: [u8; 16],
}

/// Value of `NERG_V6_NEIGH`, written by the slow path (RFC 4861 §7.3.2 states, the subset the
/// fast path needs).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct V6Neigh {
    /// The neighbour's MAC; meaningless while [`v6_neigh_flags::INCOMPLETE`].
    pub mac: [u8; 6],
    /// [`v6_neigh_flags`].
    pub flags: u8,
    /// Explicit padding.
    pub _pad: u8,
    /// When the slow path last confirmed the entry (`CLOCK_MONOTONIC` ns); the fast path
    /// does not read it.
    pub stamp_ns: u64,
}

/// Bits of [`V6Neigh::flags`]. Table rule (the slow path and vgd keep it): a home's entries
/// are addresses of its LAN /64 only (RFC 6620 binds only on-link addresses), and go when
/// the LAN prefix does. An entry with a MAC vouches for its address as a source of its home
/// from that MAC; the fast path then skips the prefix trie for the source.
pub mod v6_neigh_flags {
    /// Confirmed reachable (RFC 4861 REACHABLE).
    pub const REACHABLE: u8 = 1 << 0;
    /// Known MAC, not confirmed lately (STALE/DELAY/PROBE): still used, as RFC 4861 does.
    pub const STALE: u8 = 1 << 1;
    /// Resolution under way: no MAC yet. Downstream packets to it are dropped
    /// (`neigh_incomplete`), not punted again; it vouches for no sender.
    pub const INCOMPLETE: u8 = 1 << 2;
    /// From configuration or a DHCPv6 binding rather than ND.
    pub const STATIC: u8 = 1 << 3;
}

impl V6Neigh {
    /// Whether the entry gives a MAC (not a resolution under way).
    #[inline(always)]
    pub const fn has_mac(&self) -> bool {
        self.flags & v6_neigh_flags::INCOMPLETE == 0
    }
}

/// Value of `NERG_FROM_HOME6` (one slot per CPU): what `vg_access` learnt of an IPv6 frame
/// from a home (its LSL) before tail-calling `vg_home6`, which runs next on the same CPU.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct FromHome6 {
    /// The home.
    pub sub: SubscriberId,
    /// Offset of the IPv6 header in the frame (after the LSL's encapsulation).
    pub l3_off: u16,
    /// The inner frame's source MAC (the sending host's or router's).
    pub src_mac: [u8; 6],
    /// Explicit padding.
    pub _pad: u32,
    /// The frame's length on the wire, for the home's counters.
    pub len: u64,
}
