//! The public side of the NAT: pool entries, the set of public addresses, the port range.
//!
//! A pool is written as a list of entries, each one of
//!
//! | form | example | addresses used |
//! |---|---|---|
//! | address | `192.0.2.7` | that address |
//! | prefix | `203.0.113.0/24` | every address except the network and broadcast address (`.1`-`.254`); a /31 or /32 uses all its addresses (RFC 3021) |
//! | range | `198.51.100.10-198.51.100.20` | every address from the first to the last, inclusive, taken literally |
//!
//! Why prefixes lose their first and last address: public pools are usually routed to the
//! vG rather than on-link, so `.0` and `.255` would work on the wire, but enough hosts,
//! firewalls and ACLs on the internet still treat them as network/broadcast addresses that a
//! subscriber mapped to one gets hard-to-diagnose failures. An operator who wants them anyway
//! writes a range (`203.0.113.0-203.0.113.255`), which is never trimmed.
//!
//! Entries may not overlap (judged on what is written, so `203.0.113.0/24` and `203.0.113.0`
//! overlap even though the prefix does not use `.0`), and may not touch addresses that are
//! never public ([`NEVER_PUBLIC`], RFC 6890): "this network", loopback, link-local,
//! multicast, reserved and limited broadcast. Private (RFC 1918) and shared (RFC 6598)
//! space is allowed, for labs and for NAT444 behind another CGN.

use std::{fmt, net::Ipv4Addr, num::ParseIntError, str::FromStr};

use ipnet::Ipv4Net;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use thiserror::Error;

/// Most addresses one pool may hold: a /16.
///
/// At the RFC 6888 ratios (one address shared by tens of homes) a /16 serves well over a
/// million homes, more than one vG instance carries; the cap keeps a typo such as a /8 from
/// costing gigabytes of allocator state.
pub const MAX_POOL_ADDRESSES: usize = 1 << 16;

/// Address blocks that are never valid public NAT addresses (RFC 6890 §2.2.2), with names.
pub const NEVER_PUBLIC: [(Ipv4Addr, u8, &str); 5] = [
    (
        Ipv4Addr::new(0, 0, 0, 0),
        8,
        "\"this network\" (RFC 1122 §3.2.1.3)",
    ),
    (
        Ipv4Addr::new(127, 0, 0, 0),
        8,
        "loopback (RFC 1122 §3.2.1.3)",
    ),
    (Ipv4Addr::new(169, 254, 0, 0), 16, "link-local (RFC 3927)"),
    (Ipv4Addr::new(224, 0, 0, 0), 4, "multicast (RFC 5771)"),
    (
        Ipv4Addr::new(240, 0, 0, 0),
        4,
        "reserved or limited broadcast (RFC 1112 §4, RFC 919)",
    ),
];

/// One entry of `nat.pool` as written: an address, a prefix or a range.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PoolEntry {
    /// A single address.
    Address(Ipv4Addr),
    /// A prefix (no host bits set); see the module doc for which addresses it contributes.
    Prefix(Ipv4Net),
    /// An inclusive range, used literally.
    Range {
        /// First address.
        first: Ipv4Addr,
        /// Last address (not before `first`).
        last: Ipv4Addr,
    },
}

/// Why a pool entry is rejected.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum PoolEntryError {
    /// An address in the entry does not parse.
    #[error(
        "expected an IPv4 address, prefix (203.0.113.0/24) or range (203.0.113.10-203.0.113.20)"
    )]
    Syntax(#[source] std::net::AddrParseError),
    /// The prefix length is not a number from 0 to 32.
    #[error("the prefix length must be a number from 0 to 32")]
    PrefixLength(#[source] Option<ParseIntError>),
    /// The prefix has host bits set.
    #[error("host bits are set; the prefix is {0}")]
    HostBits(Ipv4Net),
    /// The range ends before it starts.
    #[error("the range ends before it starts")]
    Reversed,
    /// The entry contains addresses that are never public.
    #[error("contains {block} addresses, which are never public ({name})")]
    NeverPublic {
        /// The special-purpose block.
        block: Ipv4Net,
        /// What it is.
        name: &'static str,
    },
}

impl PoolEntry {
    /// Every address written, as inclusive `u32` bounds (what overlap checks compare).
    pub fn extent(&self) -> (u32, u32) {
        match *self {
            PoolEntry::Address(a) => (a.into(), a.into()),
            PoolEntry::Prefix(p) => (p.network().into(), p.broadcast().into()),
            PoolEntry::Range { first, last } => (first.into(), last.into()),
        }
    }

    /// The addresses the NAT uses, as inclusive `u32` bounds: a prefix of /30 or shorter
    /// loses its network and broadcast address.
    pub fn usable(&self) -> (u32, u32) {
        let (first, last) = self.extent();
        match self {
            PoolEntry::Prefix(p) if p.prefix_len() <= 30 => (first + 1, last - 1),
            _ => (first, last),
        }
    }

    /// How many addresses the NAT uses from this entry.
    pub fn usable_len(&self) -> u64 {
        let (first, last) = self.usable();
        u64::from(last - first) + 1
    }
}

impl FromStr for PoolEntry {
    type Err = PoolEntryError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let addr = |t: &str| Ipv4Addr::from_str(t.trim()).map_err(PoolEntryError::Syntax);
        let entry = if let Some((a, b)) = s.split_once('-') {
            let (first, last) = (addr(a)?, addr(b)?);
            if last < first {
                return Err(PoolEntryError::Reversed);
            }
            PoolEntry::Range { first, last }
        } else if let Some((a, len)) = s.split_once('/') {
            let a = addr(a)?;
            let len: u8 = len
                .trim()
                .parse()
                .map_err(|e| PoolEntryError::PrefixLength(Some(e)))?;
            let net = Ipv4Net::new(a, len).map_err(|_| PoolEntryError::PrefixLength(None))?;
            if net.network() != a {
                return Err(PoolEntryError::HostBits(net.trunc()));
            }
            PoolEntry::Prefix(net)
        } else {
            PoolEntry::Address(addr(s)?)
        };
        let (first, last) = entry.extent();
        for (base, len, name) in NEVER_PUBLIC {
            // `len` is a constant from 4 to 16: `new` cannot fail; skip rather than panic.
            let Ok(block) = Ipv4Net::new(base, len) else {
                continue;
            };
            let (b_first, b_last) = (u32::from(block.network()), u32::from(block.broadcast()));
            if first <= b_last && b_first <= last {
                return Err(PoolEntryError::NeverPublic { block, name });
            }
        }
        Ok(entry)
    }
}

impl fmt::Display for PoolEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PoolEntry::Address(a) => write!(f, "{a}"),
            PoolEntry::Prefix(p) => write!(f, "{p}"),
            PoolEntry::Range { first, last } => write!(f, "{first}-{last}"),
        }
    }
}

/// The validated public pool: the sorted, distinct addresses the NAT hands out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicPool {
    entries: Vec<PoolEntry>,
    addresses: Vec<Ipv4Addr>,
}

/// Why a list of pool entries is not a pool (entries themselves already parsed).
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum PoolError {
    /// No entries, or entries that contribute no address.
    #[error("the pool has no usable address")]
    Empty,
    /// Two entries share addresses.
    #[error("entries {a} (index {a_index}) and {b} (index {b_index}) overlap")]
    Overlap {
        /// Index of the first entry, as written.
        a_index: usize,
        /// The first entry.
        a: PoolEntry,
        /// Index of the second entry, as written.
        b_index: usize,
        /// The second entry.
        b: PoolEntry,
    },
    /// More addresses than [`MAX_POOL_ADDRESSES`].
    #[error("the pool holds {len} addresses; at most {max} are allowed")]
    TooLarge {
        /// Addresses in the pool.
        len: u64,
        /// The limit.
        max: usize,
    },
}

impl PublicPool {
    /// Builds the pool from parsed entries (in configuration order).
    pub fn new(entries: Vec<PoolEntry>) -> Result<Self, PoolError> {
        let mut order: Vec<usize> = (0..entries.len()).collect();
        order.sort_by_key(|&i| entries[i].extent());
        for pair in order.windows(2) {
            let (i, j) = (pair[0], pair[1]);
            if entries[j].extent().0 <= entries[i].extent().1 {
                let (a_index, b_index) = (i.min(j), i.max(j));
                return Err(PoolError::Overlap {
                    a_index,
                    a: entries[a_index],
                    b_index,
                    b: entries[b_index],
                });
            }
        }
        let len: u64 = entries.iter().map(PoolEntry::usable_len).sum();
        if len > MAX_POOL_ADDRESSES as u64 {
            return Err(PoolError::TooLarge {
                len,
                max: MAX_POOL_ADDRESSES,
            });
        }
        if len == 0 {
            return Err(PoolError::Empty);
        }
        let mut addresses = Vec::with_capacity(len as usize);
        for &i in &order {
            let (first, last) = entries[i].usable();
            addresses.extend((first..=last).map(Ipv4Addr::from));
        }
        Ok(Self { entries, addresses })
    }

    /// The entries as configured.
    pub fn entries(&self) -> &[PoolEntry] {
        &self.entries
    }

    /// The public addresses, ascending.
    pub fn addresses(&self) -> &[Ipv4Addr] {
        &self.addresses
    }

    /// Number of public addresses (never 0).
    pub fn len(&self) -> usize {
        self.addresses.len()
    }

    /// Always false: a pool holds at least one address. Present for API symmetry.
    pub fn is_empty(&self) -> bool {
        self.addresses.is_empty()
    }

    /// Position of `address` in [`Self::addresses`], if the pool holds it.
    pub fn index_of(&self, address: Ipv4Addr) -> Option<usize> {
        self.addresses.binary_search(&address).ok()
    }

    /// True if the pool holds `address` (the core side's "is this ours" test).
    pub fn contains(&self, address: Ipv4Addr) -> bool {
        self.index_of(address).is_some()
    }
}

/// An inclusive range of public ports, written `first-last` (e.g. `1024-65535`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PortRange {
    first: u16,
    last: u16,
}

/// Why a port range is rejected.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum PortRangeError {
    /// Not two numbers separated by `-`.
    #[error("expected first-last, e.g. 1024-65535")]
    Syntax(#[source] Option<ParseIntError>),
    /// Port 0 is not a port.
    #[error("port 0 cannot be used")]
    Zero,
    /// The range ends before it starts.
    #[error("the range ends before it starts")]
    Reversed,
}

impl PortRange {
    /// The range `first..=last`; port 0 and reversed ranges are refused.
    pub const fn new(first: u16, last: u16) -> Result<Self, PortRangeError> {
        if first == 0 {
            return Err(PortRangeError::Zero);
        }
        if last < first {
            return Err(PortRangeError::Reversed);
        }
        Ok(Self { first, last })
    }

    /// First port.
    pub const fn first(self) -> u16 {
        self.first
    }

    /// Last port (inclusive).
    pub const fn last(self) -> u16 {
        self.last
    }

    /// Number of ports (1 to 65535).
    pub const fn len(self) -> u32 {
        self.last as u32 - self.first as u32 + 1
    }

    /// Always false: a range holds at least one port. Present for API symmetry.
    pub const fn is_empty(self) -> bool {
        false
    }

    /// True if `port` lies inside.
    pub const fn contains(self, port: u16) -> bool {
        self.first <= port && port <= self.last
    }
}

impl FromStr for PortRange {
    type Err = PortRangeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (a, b) = s.split_once('-').ok_or(PortRangeError::Syntax(None))?;
        let port = |t: &str| {
            t.trim()
                .parse::<u16>()
                .map_err(|e| PortRangeError::Syntax(Some(e)))
        };
        Self::new(port(a)?, port(b)?)
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.first, self.last)
    }
}

impl Serialize for PortRange {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for PortRange {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(s: &str) -> PoolEntry {
        s.parse()
            .unwrap_or_else(|e| panic!("{s:?} should parse: {e}"))
    }

    fn pool(entries: &[&str]) -> Result<PublicPool, PoolError> {
        PublicPool::new(entries.iter().map(|s| entry(s)).collect())
    }

    #[test]
    fn entry_forms_and_usable_addresses() {
        let a = entry("192.0.2.7");
        assert_eq!(a.usable_len(), 1);
        let p = entry("203.0.113.0/24");
        assert_eq!(
            p.usable(),
            (0xcb00_7101, 0xcb00_71fe),
            "network and broadcast dropped"
        );
        assert_eq!(p.usable_len(), 254);
        assert_eq!(entry("203.0.113.0/30").usable_len(), 2);
        assert_eq!(
            entry("203.0.113.0/31").usable_len(),
            2,
            "RFC 3021: both used"
        );
        assert_eq!(entry("203.0.113.9/32").usable_len(), 1);
        let r = entry(" 198.51.100.0 - 198.51.100.255 ");
        assert_eq!(r.usable_len(), 256, "ranges are literal");
        assert_eq!(r.to_string(), "198.51.100.0-198.51.100.255");
        assert_eq!(p.to_string(), "203.0.113.0/24");
    }

    #[test]
    fn bad_entries() {
        let err = |s: &str| s.parse::<PoolEntry>().unwrap_err();
        assert!(matches!(err("banana"), PoolEntryError::Syntax(_)));
        assert!(matches!(err("1.2.3.4-"), PoolEntryError::Syntax(_)));
        assert!(matches!(
            err("203.0.113.0/33"),
            PoolEntryError::PrefixLength(None)
        ));
        assert!(matches!(
            err("203.0.113.0/x"),
            PoolEntryError::PrefixLength(Some(_))
        ));
        assert_eq!(
            err("203.0.113.5/24").to_string(),
            "host bits are set; the prefix is 203.0.113.0/24"
        );
        assert_eq!(err("203.0.113.9-203.0.113.1"), PoolEntryError::Reversed);
        for special in [
            "0.0.0.1",
            "127.0.0.1",
            "169.254.1.1",
            "224.0.0.1",
            "255.255.255.255",
        ] {
            assert!(
                matches!(err(special), PoolEntryError::NeverPublic { .. }),
                "{special}"
            );
        }
        // A range that merely straddles a special block is refused too.
        let e = err("126.255.255.250-127.0.0.5");
        assert!(e.to_string().contains("127.0.0.0/8"), "{e}");
        // Private and shared address space is allowed (labs, NAT444).
        entry("10.0.0.0/8");
        entry("100.64.0.0/24");
    }

    #[test]
    fn pool_sorted_and_overlaps_refused() {
        let p = pool(&["203.0.113.0/30", "192.0.2.7", "198.51.100.1-198.51.100.2"]).unwrap();
        let want: Vec<Ipv4Addr> = [
            "192.0.2.7",
            "198.51.100.1",
            "198.51.100.2",
            "203.0.113.1",
            "203.0.113.2",
        ]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
        assert_eq!(p.addresses(), want.as_slice());
        assert_eq!(p.index_of("203.0.113.1".parse().unwrap()), Some(3));
        assert!(!p.contains("203.0.113.0".parse().unwrap()));
        assert_eq!(p.entries().len(), 3);

        let e = pool(&["198.51.100.0/24", "203.0.113.0/24", "198.51.100.255"]).unwrap_err();
        assert_eq!(
            e,
            PoolError::Overlap {
                a_index: 0,
                a: entry("198.51.100.0/24"),
                b_index: 2,
                b: entry("198.51.100.255"),
            },
            "overlap judged on what is written, not on usable addresses"
        );
        assert_eq!(pool(&[]).unwrap_err(), PoolError::Empty);
        assert!(matches!(
            pool(&["10.0.0.0/15"]).unwrap_err(),
            PoolError::TooLarge { len: 131_070, .. }
        ));
        assert_eq!(pool(&["10.0.0.0/16"]).unwrap().len(), 65_534);
    }

    #[test]
    fn port_ranges() {
        let r: PortRange = "1024-65535".parse().unwrap();
        assert_eq!((r.first(), r.last(), r.len()), (1024, 65535, 64512));
        assert!(r.contains(1024) && r.contains(65535) && !r.contains(1023));
        assert_eq!(r.to_string(), "1024-65535");
        assert_eq!("0-10".parse::<PortRange>(), Err(PortRangeError::Zero));
        assert_eq!("10-9".parse::<PortRange>(), Err(PortRangeError::Reversed));
        assert!(matches!(
            "1024".parse::<PortRange>(),
            Err(PortRangeError::Syntax(None))
        ));
        assert!(matches!(
            "1024-70000".parse::<PortRange>(),
            Err(PortRangeError::Syntax(Some(_)))
        ));
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(json, "\"1024-65535\"");
        assert_eq!(serde_json::from_str::<PortRange>(&json).unwrap(), r);
    }
}
