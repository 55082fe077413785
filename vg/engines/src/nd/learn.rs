//! What a home's frames teach about its hosts, and the home's bounded binding table: IPv6
//! source address validation in the spirit of SAVI's first-come-first-served (RFC 6620,
//! RFC 7513 for DHCPv6 bindings).
//!
//! [`answer6`](super::answer6) turns DAD NSs (tentative), NSs with a source address and
//! SLLA, RSs with both, and NAs (confirmed) into [`Binding`]s; the DHCPv6 engine's leases
//! are bindings too ([`LearntFrom::Dhcpv6`]). [`Neighbours::learn`] decides each one:
//!
//! | the address is                          | result                                  |
//! |-----------------------------------------|-----------------------------------------|
//! | unknown                                 | bound ([`Learnt::New`]), evicting if full |
//! | bound to the same MAC                   | refreshed; tentative becomes confirmed   |
//! | bound to another MAC, owner alive       | refused ([`Learnt::Conflict`], counted): the first owner keeps it |
//! | bound to another MAC, owner gone quiet  | moved to the new MAC ([`Learnt::Moved`]) |
//!
//! "Alive" is seen within [`NeighbourLimits::tentative_ms`] for a tentative binding (DAD
//! takes about a second, RFC 4862 §5.4) and within [`NeighbourLimits::lifetime_ms`] for a
//! confirmed one; the caller refreshes bindings it sees in use with [`Neighbours::touch`]
//! (from the fast path's table).
//!
//! Bounds. The table holds at most [`NeighbourLimits::max_entries`] addresses, and one MAC
//! at most [`NeighbourLimits::max_per_mac`]. A full table evicts, in order: a dead entry,
//! the least recently seen tentative one, the least recently seen confirmed one (LRU). LRU
//! rather than refusing newcomers: a home full of stale privacy addresses (RFC 8981) must
//! not lock out a new device, and hosts in use are refreshed by their traffic, so the idle
//! go first. The per-MAC bound makes one device that invents addresses evict its own
//! oldest, not its neighbours'. Evictions scan the table (at most a few hundred entries,
//! rare) rather than keep an ordered index.

use std::collections::HashMap;
use std::net::Ipv6Addr;

use lsl::smoltcp::wire::EthernetAddress;

/// A fact about a host of the home: `addr` is at `mac`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Binding {
    /// The host's address.
    pub addr: Ipv6Addr,
    /// Its MAC.
    pub mac: EthernetAddress,
    /// How it was learnt.
    pub from: LearntFrom,
    /// Whether the host is still checking the address (DAD) or uses it.
    pub state: BindingState,
}

/// How a [`Binding`] was learnt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LearntFrom {
    /// A DAD NS (source ::, RFC 4862 §5.4.2).
    Dad,
    /// An NS with a source address and SLLA.
    NeighbourSolicitation,
    /// An NA (its target and TLLA).
    NeighbourAdvertisement,
    /// An RS with a source address and SLLA.
    RouterSolicitation,
    /// A DHCPv6 lease (IA_NA) the engine gave.
    Dhcpv6,
}

/// Whether a binding is in use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BindingState {
    /// The host is doing DAD for the address.
    Tentative,
    /// The host uses the address.
    Confirmed,
}

/// An entry of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Neighbour {
    /// The host's MAC.
    pub mac: EthernetAddress,
    /// Tentative or confirmed.
    pub state: BindingState,
    /// How it was last learnt.
    pub from: LearntFrom,
    /// When it was last seen, in the caller's milliseconds.
    pub last_seen_ms: u64,
}

/// The table's bounds and timers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NeighbourLimits {
    /// Addresses per home. 512: a hundred devices with a stable, a temporary and a
    /// link-local address each, and room for address rotation.
    pub max_entries: usize,
    /// Addresses per MAC: 16 (a host has a link-local, a stable and a few temporary ones).
    pub max_per_mac: usize,
    /// How long a tentative binding holds without being seen again: 10 s (DAD's second,
    /// RFC 4862 §5.4, and the host's RetransTimer and delays many times over).
    pub tentative_ms: u64,
    /// How long a confirmed binding holds without being seen: 30 minutes.
    pub lifetime_ms: u64,
}

impl Default for NeighbourLimits {
    fn default() -> Self {
        NeighbourLimits {
            max_entries: 512,
            max_per_mac: 16,
            tentative_ms: 10_000,
            lifetime_ms: 30 * 60 * 1000,
        }
    }
}

/// What [`Neighbours::learn`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Learnt {
    /// A new entry; `evicted` is the address that made room for it, if any.
    New {
        /// The address evicted to make room.
        evicted: Option<Ipv6Addr>,
    },
    /// The entry was there with the same MAC: seen again (confirmed if it was tentative
    /// and the binding is confirmed).
    Refreshed,
    /// The address was bound to `from`, which went quiet; now bound to the new MAC.
    Moved {
        /// The previous MAC.
        from: EthernetAddress,
        /// An address of the new MAC evicted to keep it within its bound, if any.
        evicted: Option<Ipv6Addr>,
    },
    /// Refused: the address belongs to `owner`, still alive (RFC 6620 first come, first served).
    Conflict {
        /// The MAC that keeps the address.
        owner: EthernetAddress,
    },
}

/// Counters of a [`Neighbours`] table, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NeighboursStats {
    /// Bindings refused because another MAC holds the address.
    pub conflicts: u64,
    /// Entries evicted to make room.
    pub evictions: u64,
    /// Entries that moved to a new MAC after their owner went quiet.
    pub moves: u64,
}

/// A home's bound table of address -> MAC bindings (see the module documentation).
#[derive(Debug, Clone, Default)]
pub struct Neighbours {
    limits: NeighbourLimits,
    entries: HashMap<Ipv6Addr, Neighbour>,
    stats: NeighboursStats,
}

impl Neighbours {
    /// An empty table.
    pub fn new(limits: NeighbourLimits) -> Neighbours {
        Neighbours {
            limits,
            entries: HashMap::new(),
            stats: NeighboursStats::default(),
        }
    }

    /// The number of bindings.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The counters.
    pub fn stats(&self) -> NeighboursStats {
        self.stats
    }

    /// The binding of `addr`, if any (dead ones included until [`Neighbours::expire`]).
    pub fn get(&self, addr: Ipv6Addr) -> Option<&Neighbour> {
        self.entries.get(&addr)
    }

    /// The MAC `addr` is bound to, if the binding is alive and confirmed: what the fast path
    /// forwards to and accepts from.
    pub fn lookup(&self, addr: Ipv6Addr, now_ms: u64) -> Option<EthernetAddress> {
        self.entries
            .get(&addr)
            .filter(|n| n.state == BindingState::Confirmed && self.alive(n, now_ms))
            .map(|n| n.mac)
    }

    /// Decides `binding` at `now_ms` (see the module documentation's table).
    pub fn learn(&mut self, binding: &Binding, now_ms: u64) -> Learnt {
        let fresh = Neighbour {
            mac: binding.mac,
            state: binding.state,
            from: binding.from,
            last_seen_ms: now_ms,
        };
        if let Some(existing) = self.entries.get(&binding.addr).copied() {
            if existing.mac == binding.mac {
                let state = match (existing.state, binding.state) {
                    (BindingState::Confirmed, _) | (_, BindingState::Confirmed) => {
                        BindingState::Confirmed
                    }
                    _ => BindingState::Tentative,
                };
                self.entries
                    .insert(binding.addr, Neighbour { state, ..fresh });
                return Learnt::Refreshed;
            }
            if self.alive(&existing, now_ms) {
                self.stats.conflicts += 1;
                return Learnt::Conflict {
                    owner: existing.mac,
                };
            }
            // The table does not grow, but the new MAC may be at its bound.
            let evicted = self.make_room(binding.mac, now_ms, false);
            self.entries.insert(binding.addr, fresh);
            self.stats.moves += 1;
            return Learnt::Moved {
                from: existing.mac,
                evicted,
            };
        }
        let evicted = self.make_room(binding.mac, now_ms, true);
        self.entries.insert(binding.addr, fresh);
        Learnt::New { evicted }
    }

    /// Marks `addr` as seen at `now_ms` (the fast path saw the host use it); false if it is
    /// not bound to `mac`.
    pub fn touch(&mut self, addr: Ipv6Addr, mac: EthernetAddress, now_ms: u64) -> bool {
        match self.entries.get_mut(&addr) {
            Some(n) if n.mac == mac => {
                n.last_seen_ms = n.last_seen_ms.max(now_ms);
                true
            }
            _ => false,
        }
    }

    /// Removes `addr` (a DHCPv6 lease released, a DAD that found a duplicate).
    pub fn remove(&mut self, addr: Ipv6Addr) -> Option<Neighbour> {
        self.entries.remove(&addr)
    }

    /// Removes the dead bindings; returns their addresses, for the fast path's table.
    pub fn expire(&mut self, now_ms: u64) -> Vec<Ipv6Addr> {
        let dead: Vec<Ipv6Addr> = self
            .entries
            .iter()
            .filter(|(_, n)| !self.alive(n, now_ms))
            .map(|(addr, _)| *addr)
            .collect();
        for addr in &dead {
            self.entries.remove(addr);
        }
        dead
    }

    fn alive(&self, n: &Neighbour, now_ms: u64) -> bool {
        let hold = match n.state {
            BindingState::Tentative => self.limits.tentative_ms,
            BindingState::Confirmed => self.limits.lifetime_ms,
        };
        now_ms.saturating_sub(n.last_seen_ms) < hold
    }

    /// Evicts one entry if one more for `mac` (a new entry if `grows`) would break a bound;
    /// returns its address.
    fn make_room(&mut self, mac: EthernetAddress, now_ms: u64, grows: bool) -> Option<Ipv6Addr> {
        let per_mac = self.entries.values().filter(|n| n.mac == mac).count();
        let victim = if per_mac >= self.limits.max_per_mac.max(1) {
            self.oldest(now_ms, |n| n.mac == mac)
        } else if grows && self.entries.len() >= self.limits.max_entries.max(1) {
            self.oldest(now_ms, |_| true)
        } else {
            None
        }?;
        self.entries.remove(&victim);
        self.stats.evictions += 1;
        Some(victim)
    }

    /// Among the entries `which` selects: a dead one, else the least recently seen
    /// tentative one, else the least recently seen.
    fn oldest(&self, now_ms: u64, which: impl Fn(&Neighbour) -> bool) -> Option<Ipv6Addr> {
        self.entries
            .iter()
            .filter(|(_, n)| which(n))
            .min_by_key(|(addr, n)| {
                (
                    self.alive(n, now_ms),
                    n.state == BindingState::Confirmed,
                    n.last_seen_ms,
                    **addr,
                )
            })
            .map(|(addr, _)| *addr)
    }
}
