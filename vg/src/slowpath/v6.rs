//! What the slow path needs around the IPv6 router engines ([`vg_engines::nd`],
//! [`vg_engines::dhcp6`]): where their decisions go in the fast path ([`NeighbourTable`]:
//! `NERG_V6_NEIGH` and the DELEGATED entries of `NERG_V6_PREFIXES`), the settings every home
//! shares ([`Ipv6Settings`], with the router address read from the core interface when
//! `[ipv6]` has none) and the counters the responder keeps for metrics ([`V6Counts`]). The
//! few frame operations the engines leave to their caller are [`vg_engines::frames6`]'s
//! (re-exported here).
//!
//! Table rules (the fast path relies on them, see `nerg_abi::v6_neigh_flags`): a home's
//! neighbour entries are addresses of its LAN /64 only (never link-local ones: the fast path
//! routes no link-local traffic, and anti-spoofing reads an entry as "this address may send
//! from this MAC"), they go when the LAN goes, and a DELEGATED prefix's next hop is the
//! requesting router's address in the LAN /64 with its own neighbour entry (RFC 8415 §6.3:
//! the route is via the router, whose MAC the vG learnt from its frames or its IA_NA lease).
//! The slow path writes and removes these itself; the LAN entry of `NERG_V6_PREFIXES` and the
//! home's `IPV6` flag are the control plane's.

use std::collections::BTreeMap;
use std::net::Ipv6Addr;

use ipnet::Ipv6Net;
use nerg_abi::{SubscriberId, V6Neigh, v6_prefix_kind};
pub use vg_engines::frames6::{Udp6, core_destination, dhcp6_request, forward_held, udp6_frame};

/// Where the IPv6 router's decisions go: the fast path's neighbour table and its DELEGATED
/// prefix entries (pinned maps in vgd, [`MemoryV6Table`] in tests). Errors are logged by the
/// caller (as [`super::responder::HostTable`]'s are): the table is the fast path's, and the
/// next change or resynchronisation writes it again.
pub trait NeighbourTable {
    /// Sets home `sub`'s neighbour `addr` (an address of its LAN /64).
    fn set_neighbour(
        &mut self,
        sub: SubscriberId,
        addr: Ipv6Addr,
        entry: V6Neigh,
    ) -> Result<(), String>;
    /// Removes home `sub`'s neighbour `addr` (not an error if there is none).
    fn remove_neighbour(&mut self, sub: SubscriberId, addr: Ipv6Addr) -> Result<(), String>;
    /// Every neighbour entry (read once, at start: from then on the slow path knows what it
    /// wrote).
    fn all_neighbours(&self) -> Vec<(SubscriberId, Ipv6Addr, V6Neigh)>;
    /// Routes `prefix` (delegated to a router of home `sub`) via `via`.
    fn set_delegated(
        &mut self,
        sub: SubscriberId,
        prefix: Ipv6Net,
        via: Ipv6Addr,
    ) -> Result<(), String>;
    /// Removes the DELEGATED entry of `prefix` if it is home `sub`'s.
    fn remove_delegated(&mut self, sub: SubscriberId, prefix: Ipv6Net) -> Result<(), String>;
    /// Every DELEGATED entry: home, prefix and next hop (read once, at start).
    fn all_delegated(&self) -> Vec<(SubscriberId, Ipv6Net, Ipv6Addr)>;
}

/// The IPv6 tables in memory: for tests, and the shape of what the pinned maps hold.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemoryV6Table {
    /// `NERG_V6_NEIGH`.
    pub neighbours: BTreeMap<(SubscriberId, Ipv6Addr), V6Neigh>,
    /// The DELEGATED entries of `NERG_V6_PREFIXES`: home and next hop.
    pub delegated: BTreeMap<Ipv6Net, (SubscriberId, Ipv6Addr)>,
}

impl NeighbourTable for MemoryV6Table {
    fn set_neighbour(
        &mut self,
        sub: SubscriberId,
        addr: Ipv6Addr,
        entry: V6Neigh,
    ) -> Result<(), String> {
        self.neighbours.insert((sub, addr), entry);
        Ok(())
    }
    fn remove_neighbour(&mut self, sub: SubscriberId, addr: Ipv6Addr) -> Result<(), String> {
        self.neighbours.remove(&(sub, addr));
        Ok(())
    }
    fn all_neighbours(&self) -> Vec<(SubscriberId, Ipv6Addr, V6Neigh)> {
        self.neighbours
            .iter()
            .map(|((s, a), n)| (*s, *a, *n))
            .collect()
    }
    fn set_delegated(
        &mut self,
        sub: SubscriberId,
        prefix: Ipv6Net,
        via: Ipv6Addr,
    ) -> Result<(), String> {
        match self.delegated.get(&prefix) {
            Some((owner, _)) if *owner != sub => Err(format!("{prefix} is home {owner}'s")),
            _ => {
                self.delegated.insert(prefix, (sub, via));
                Ok(())
            }
        }
    }
    fn remove_delegated(&mut self, sub: SubscriberId, prefix: Ipv6Net) -> Result<(), String> {
        if self.delegated.get(&prefix).is_some_and(|(o, _)| *o == sub) {
            self.delegated.remove(&prefix);
        }
        Ok(())
    }
    fn all_delegated(&self) -> Vec<(SubscriberId, Ipv6Net, Ipv6Addr)> {
        self.delegated
            .iter()
            .map(|(p, (s, via))| (*s, *p, *via))
            .collect()
    }
}

impl MemoryV6Table {
    /// Home `sub`'s neighbour entries.
    pub fn neighbours_of(&self, sub: SubscriberId) -> Vec<(Ipv6Addr, V6Neigh)> {
        self.neighbours
            .range((sub, Ipv6Addr::UNSPECIFIED)..=(sub, Ipv6Addr::from(u128::MAX)))
            .map(|((_, a), n)| (*a, *n))
            .collect()
    }

    /// Home `sub`'s DELEGATED entries: prefix and next hop.
    pub fn delegated_of(&self, sub: SubscriberId) -> Vec<(Ipv6Net, Ipv6Addr)> {
        self.delegated
            .iter()
            .filter(|(_, (o, _))| *o == sub)
            .map(|(p, (_, via))| (*p, *via))
            .collect()
    }
}

impl NeighbourTable for crate::fastpath::v6::V6Tables {
    fn set_neighbour(
        &mut self,
        sub: SubscriberId,
        addr: Ipv6Addr,
        entry: V6Neigh,
    ) -> Result<(), String> {
        self.insert_neighbour(sub, addr, entry)
            .map_err(|e| format!("{e:#}"))
    }
    fn remove_neighbour(&mut self, sub: SubscriberId, addr: Ipv6Addr) -> Result<(), String> {
        crate::fastpath::v6::V6Tables::remove_neighbour(self, sub, addr)
            .map(drop)
            .map_err(|e| format!("{e:#}"))
    }
    fn all_neighbours(&self) -> Vec<(SubscriberId, Ipv6Addr, V6Neigh)> {
        self.neighbour_entries()
            .into_iter()
            .map(|(k, n)| (k.sub, Ipv6Addr::from(k.addr), n))
            .collect()
    }
    fn set_delegated(
        &mut self,
        sub: SubscriberId,
        prefix: Ipv6Net,
        via: Ipv6Addr,
    ) -> Result<(), String> {
        let entry = crate::fastpath::v6::prefix_entry(sub, v6_prefix_kind::DELEGATED, via);
        self.insert_prefix(prefix, entry)
            .map_err(|e| format!("{e:#}"))
    }
    fn remove_delegated(&mut self, sub: SubscriberId, prefix: Ipv6Net) -> Result<(), String> {
        // Only a DELEGATED entry: the LAN entry of the same home is the control plane's.
        let ours = self
            .prefix_entries()
            .into_iter()
            .any(|(p, e)| p == prefix && e.sub == sub && e.kind == v6_prefix_kind::DELEGATED);
        if !ours {
            return Ok(());
        }
        self.remove_prefix(prefix, sub)
            .map(drop)
            .map_err(|e| format!("{e:#}"))
    }
    fn all_delegated(&self) -> Vec<(SubscriberId, Ipv6Net, Ipv6Addr)> {
        self.prefix_entries()
            .into_iter()
            .filter(|(_, e)| e.kind == v6_prefix_kind::DELEGATED)
            .map(|(p, e)| (e.sub, p, Ipv6Addr::from(e.addr)))
            .collect()
    }
}

/// vgd's host tables: the IPv4 host table and the IPv6 ones, side by side.
impl<A: super::responder::HostTable, B> super::responder::HostTable for (A, B) {
    fn add(
        &mut self,
        sub: SubscriberId,
        ip: std::net::Ipv4Addr,
        mac: [u8; 6],
    ) -> Result<(), String> {
        self.0.add(sub, ip, mac)
    }
    fn remove(&mut self, sub: SubscriberId, ip: std::net::Ipv4Addr) -> Result<(), String> {
        self.0.remove(sub, ip)
    }
}

impl<A, B: NeighbourTable> NeighbourTable for (A, B) {
    fn set_neighbour(
        &mut self,
        sub: SubscriberId,
        addr: Ipv6Addr,
        entry: V6Neigh,
    ) -> Result<(), String> {
        self.1.set_neighbour(sub, addr, entry)
    }
    fn remove_neighbour(&mut self, sub: SubscriberId, addr: Ipv6Addr) -> Result<(), String> {
        self.1.remove_neighbour(sub, addr)
    }
    fn all_neighbours(&self) -> Vec<(SubscriberId, Ipv6Addr, V6Neigh)> {
        self.1.all_neighbours()
    }
    fn set_delegated(
        &mut self,
        sub: SubscriberId,
        prefix: Ipv6Net,
        via: Ipv6Addr,
    ) -> Result<(), String> {
        self.1.set_delegated(sub, prefix, via)
    }
    fn remove_delegated(&mut self, sub: SubscriberId, prefix: Ipv6Net) -> Result<(), String> {
        self.1.remove_delegated(sub, prefix)
    }
    fn all_delegated(&self) -> Vec<(SubscriberId, Ipv6Net, Ipv6Addr)> {
        self.1.all_delegated()
    }
}

/// What every home's IPv6 router shares: `[ipv6]`'s DNS settings and the vG's router
/// address (the source of ICMPv6 errors, RFC 4443 §2.2).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ipv6Settings {
    /// RDNSS (RFC 8106) and DHCPv6 option 23.
    pub dns_servers: Vec<Ipv6Addr>,
    /// DNSSL and DHCPv6 option 24.
    pub domain_search: Vec<String>,
    /// The vG's own global address; `None`: no ICMPv6 errors are sent (counted).
    pub router_address: Option<Ipv6Addr>,
}

impl Ipv6Settings {
    /// `[ipv6]`'s settings (none without the section); the router address as configured.
    pub fn from_config(config: &crate::config::Config) -> Ipv6Settings {
        config
            .ipv6
            .as_ref()
            .map(|c| Ipv6Settings {
                dns_servers: c.dns_servers().to_vec(),
                domain_search: c.domain_search().to_vec(),
                router_address: c.router_address(),
            })
            .unwrap_or_default()
    }
}

/// The first global unicast IPv6 address of interface `iface` (`getifaddrs`), read once at
/// start for the router address when `[ipv6]` sets none. Link-local, ULA (fc00::/7, not
/// routable on the internet: errors from it would be dropped there), loopback and multicast
/// addresses are skipped.
pub fn first_global_address(iface: &str) -> std::io::Result<Option<Ipv6Addr>> {
    let addrs = nix::ifaddrs::getifaddrs().map_err(std::io::Error::from)?;
    Ok(addrs
        .filter(|a| a.interface_name == iface)
        .filter_map(|a| a.address?.as_sockaddr_in6().map(|s| s.ip()))
        .find(|a| is_global(*a)))
}

/// Whether `a` is a global unicast address (2000::/3).
pub fn is_global(a: Ipv6Addr) -> bool {
    a.segments()[0] & 0xe000 == 0x2000
}

/// What the IPv6 router did that no frame outcome shows (timers, the tables), since the
/// last [`super::responder::Responder::take_v6_counts`]: added to vgd's metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct V6Counts {
    /// Unsolicited (scheduled) RAs sent.
    pub ras_unsolicited: u64,
    /// Solicited RAs sent (unicast answers to an RS).
    pub ras_solicited: u64,
    /// Final RAs (router lifetime 0) sent.
    pub ras_final: u64,
    /// RAs not sent: a VXLAN home whose tunnel the vG has not learnt yet, or an
    /// encapsulation error.
    pub ras_unsendable: u64,
    /// Bindings that made a new neighbour entry (or moved one to a new MAC).
    pub neighbours_learnt: u64,
    /// Bindings refused: another MAC holds the address (RFC 6620).
    pub neighbours_refused: u64,
    /// Entries evicted to make room.
    pub neighbours_evicted: u64,
    /// Entries that expired (and were not confirmed by a probe).
    pub neighbours_expired: u64,
    /// NSs sent for resolution or probing (first ones and retransmissions).
    pub solicits: u64,
    /// Resolutions that got an answer.
    pub resolved: u64,
    /// Resolutions that failed (no answer after the last NS).
    pub unresolved: u64,
    /// Neighbour misses refused: the home's pending set was full or its NS budget spent.
    pub resolve_refused: u64,
    /// ICMPv6 errors not sent because the vG has no router address.
    pub errors_without_source: u64,
    /// Table writes that failed (logged).
    pub table_errors: u64,
}

impl V6Counts {
    /// The counters as `(name, value)`, for a labelled metric family.
    pub fn labelled(&self) -> [(&'static str, u64); 14] {
        [
            ("ra_unsolicited", self.ras_unsolicited),
            ("ra_solicited", self.ras_solicited),
            ("ra_final", self.ras_final),
            ("ra_unsendable", self.ras_unsendable),
            ("neighbour_learnt", self.neighbours_learnt),
            ("neighbour_refused", self.neighbours_refused),
            ("neighbour_evicted", self.neighbours_evicted),
            ("neighbour_expired", self.neighbours_expired),
            ("ns_sent", self.solicits),
            ("resolved", self.resolved),
            ("unresolved", self.unresolved),
            ("resolve_refused", self.resolve_refused),
            ("error_without_source", self.errors_without_source),
            ("table_error", self.table_errors),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_memory_table_keeps_homes_apart_and_never_takes_another_homes_prefix() {
        let mut t = MemoryV6Table::default();
        let a: Ipv6Addr = "2001:db8:1::10".parse().unwrap();
        let n = V6Neigh {
            mac: [2, 0, 0, 0, 0, 1],
            flags: nerg_abi::v6_neigh_flags::REACHABLE,
            ..V6Neigh::default()
        };
        t.set_neighbour(1, a, n).unwrap();
        t.set_neighbour(2, a, n).unwrap();
        assert_eq!(t.neighbours_of(1), vec![(a, n)]);
        t.remove_neighbour(1, a).unwrap();
        assert!(t.neighbours_of(1).is_empty());
        assert_eq!(t.neighbours_of(2).len(), 1);
        let p: Ipv6Net = "2001:db8:1:10::/60".parse().unwrap();
        t.set_delegated(1, p, a).unwrap();
        assert!(t.set_delegated(2, p, a).is_err(), "another home's prefix");
        t.remove_delegated(2, p).unwrap();
        assert_eq!(t.delegated_of(1), vec![(p, a)]);
        t.remove_delegated(1, p).unwrap();
        assert!(t.delegated_of(1).is_empty());
    }

    #[test]
    fn global_means_2000_slash_3() {
        assert!(is_global("2001:db8::1".parse().unwrap()));
        assert!(!is_global("fe80::1".parse().unwrap()));
        assert!(!is_global("fd00::1".parse().unwrap()));
        assert!(!is_global("::1".parse().unwrap()));
        assert!(!is_global("ff02::1".parse().unwrap()));
    }
}
