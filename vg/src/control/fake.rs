//! Fast-path tables in memory, for the control plane's tests: the same rules as the pinned
//! maps where the control plane relies on them (an LSL entry is never taken from another
//! home, a release only removes the releasing home's entry, the public range only widens on
//! insert), and a log of every call so that tests can check what was written.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use nerg_abi::{
    Host, HostKey, NatFwdKey, NatMapping, NatRev, NatRevKey, PublicRange, Subscriber, SubscriberId,
    V6Neigh, V6Prefix, nat_flags,
};

use super::tables::FastPathTables;
use crate::fastpath::{
    FastPathError,
    maps::{LslClaimError, StaticMapping, StaticMappingError},
    reconcile::LslKey,
    v6::V6PrefixError,
};

/// The tables, shared: the control plane owns one handle, the test keeps another.
#[derive(Clone, Debug, Default)]
pub(super) struct FakeTables(std::sync::Arc<std::sync::Mutex<Tables>>);

impl FakeTables {
    /// What the tables hold now.
    pub(super) fn state(&self) -> std::sync::MutexGuard<'_, Tables> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// What the tables hold; every field is what the map of that name would.
#[derive(Clone, Debug, Default)]
pub(super) struct Tables {
    pub lsls: HashMap<LslKey, SubscriberId>,
    pub slots: BTreeMap<SubscriberId, Subscriber>,
    pub hosts: HashMap<HostKey, Host>,
    pub public_ips: BTreeSet<u32>,
    pub range: PublicRange,
    pub fwd: HashMap<NatFwdKey, NatMapping>,
    pub rev: HashMap<NatRevKey, NatRev>,
    /// Homes whose slot was emptied (and counters zeroed), in order.
    pub removed_slots: Vec<SubscriberId>,
    /// `NERG_V6_PREFIXES`, by prefix (host bits cleared).
    pub v6_prefixes: BTreeMap<ipnet::Ipv6Net, V6Prefix>,
    /// `NERG_V6_NEIGH`.
    pub neighbours: BTreeMap<(SubscriberId, std::net::Ipv6Addr), V6Neigh>,
    /// `NERG_V6_RANGE` as last recomputed: the span of the prefixes' first 64 bits.
    pub v6_range: Option<(u64, u64)>,
}

impl Tables {
    /// The home a live slot says is active, if any.
    pub(super) fn slot(&self, id: SubscriberId) -> Option<&Subscriber> {
        self.slots.get(&id).filter(|s| **s != Subscriber::default())
    }

    /// The home an LSL entry points to.
    pub(super) fn lsl_owner(&self, key: &LslKey) -> Option<SubscriberId> {
        self.lsls.get(key).copied()
    }
}

impl FastPathTables for FakeTables {
    // Each call locks the tables once.
    fn claim_lsl(&mut self, key: &LslKey, id: SubscriberId) -> Result<(), LslClaimError> {
        let mut t = self.state();
        match t.lsls.get(key) {
            Some(&owner) if owner != id => Err(LslClaimError::Taken { owner }),
            _ => {
                t.lsls.insert(*key, id);
                Ok(())
            }
        }
    }
    fn release_lsl(&mut self, key: &LslKey, id: SubscriberId) -> Result<bool, FastPathError> {
        let mut t = self.state();
        if t.lsls.get(key) == Some(&id) {
            t.lsls.remove(key);
            return Ok(true);
        }
        Ok(false)
    }
    fn lsl_entries(&self) -> Vec<(LslKey, SubscriberId)> {
        let t = self.state();
        t.lsls.iter().map(|(k, v)| (*k, *v)).collect()
    }
    fn set_subscriber(&mut self, id: SubscriberId, rec: &Subscriber) -> Result<(), FastPathError> {
        let mut t = self.state();
        t.slots.insert(id, *rec);
        Ok(())
    }
    fn remove_subscriber(&mut self, id: SubscriberId) -> Result<(), FastPathError> {
        let mut t = self.state();
        t.slots.insert(id, Subscriber::default());
        t.removed_slots.push(id);
        Ok(())
    }
    fn insert_host(&mut self, key: HostKey, host: Host) -> Result<(), FastPathError> {
        let mut t = self.state();
        t.hosts.insert(key, host);
        Ok(())
    }
    fn remove_host(&mut self, key: &HostKey) -> Result<(), FastPathError> {
        let mut t = self.state();
        t.hosts.remove(key);
        Ok(())
    }
    fn host(&self, key: &HostKey) -> Result<Option<Host>, FastPathError> {
        let t = self.state();
        Ok(t.hosts.get(key).copied())
    }
    fn host_entries(&self) -> Vec<(HostKey, Host)> {
        let t = self.state();
        t.hosts.iter().map(|(k, v)| (*k, *v)).collect()
    }
    fn insert_public_ip(&mut self, ip: u32) -> Result<(), FastPathError> {
        let mut t = self.state();
        t.range = t.range.with(u32::from_be(ip));
        t.public_ips.insert(ip);
        Ok(())
    }
    fn remove_public_ip(&mut self, ip: u32) -> Result<(), FastPathError> {
        let mut t = self.state();
        t.public_ips.remove(&ip);
        Ok(())
    }
    fn public_ips(&self) -> Vec<u32> {
        let t = self.state();
        t.public_ips.iter().copied().collect()
    }
    fn set_public_range(&mut self, range: PublicRange) -> Result<(), FastPathError> {
        let mut t = self.state();
        t.range = range;
        Ok(())
    }
    fn insert_static(&mut self, m: &StaticMapping) -> Result<(), StaticMappingError> {
        let mut t = self.state();
        if let Some(r) = t.rev.get(&m.rev_key)
            && r.flags & (nat_flags::STATIC | nat_flags::TOMBSTONE) == 0
            && !(r.sub == m.fwd_key.sub
                && r.priv_ip == m.fwd_key.priv_ip
                && r.priv_port == m.fwd_key.priv_port)
        {
            return Err(StaticMappingError::InUse {
                proto: m.rev_key.proto,
                port: u16::from_be(m.rev_key.pub_port),
                priv_ip: std::net::Ipv4Addr::from(r.priv_ip.to_ne_bytes()),
                priv_port: u16::from_be(r.priv_port),
            });
        }
        t.rev.insert(m.rev_key, m.reverse());
        t.fwd.insert(m.fwd_key, m.mapping());
        Ok(())
    }
    fn remove_static(&mut self, m: &StaticMapping) -> Result<(), FastPathError> {
        let mut t = self.state();
        t.fwd.remove(&m.fwd_key);
        t.rev.remove(&m.rev_key);
        Ok(())
    }
    fn remove_static_except(&mut self, keep: &HashSet<NatFwdKey>) -> Result<usize, FastPathError> {
        let mut t = self.state();
        let stale: Vec<(NatFwdKey, NatMapping)> = t
            .fwd
            .iter()
            .filter(|(k, m)| m.flags & nat_flags::STATIC != 0 && !keep.contains(k))
            .map(|(k, m)| (*k, *m))
            .collect();
        for (k, m) in &stale {
            t.fwd.remove(k);
            t.rev.remove(&NatRevKey {
                pub_ip: m.pub_ip,
                pub_port: m.pub_port,
                proto: k.proto,
                _pad: 0,
            });
        }
        Ok(stale.len())
    }
    fn nat_reverse(&self, key: &NatRevKey) -> Result<Option<NatRev>, FastPathError> {
        let t = self.state();
        Ok(t.rev.get(key).copied())
    }
    fn remove_nat_in_blocks(
        &mut self,
        id: SubscriberId,
        public: std::net::Ipv4Addr,
        blocks: &[(u16, u16)],
    ) -> Result<usize, FastPathError> {
        let mut t = self.state();
        let pub_ip = u32::from_ne_bytes(public.octets());
        let inside = |k: &NatRevKey, r: &NatRev| {
            let port = u16::from_be(k.pub_port);
            k.pub_ip == pub_ip
                && r.sub == id
                && r.flags & nat_flags::TOMBSTONE == 0
                && blocks.iter().any(|&(lo, hi)| (lo..=hi).contains(&port))
        };
        let gone: Vec<(NatRevKey, NatRev)> = t
            .rev
            .iter()
            .filter(|(k, r)| inside(k, r))
            .map(|(k, r)| (*k, *r))
            .collect();
        for (k, r) in &gone {
            t.rev.remove(k);
            t.fwd.remove(&NatFwdKey {
                sub: id,
                priv_ip: r.priv_ip,
                priv_port: r.priv_port,
                proto: k.proto,
                _pad: 0,
            });
        }
        Ok(gone.len())
    }
    fn insert_v6_prefix(
        &mut self,
        prefix: ipnet::Ipv6Net,
        entry: V6Prefix,
    ) -> Result<(), V6PrefixError> {
        let mut t = self.state();
        match t.v6_prefixes.get(&prefix.trunc()) {
            Some(old) if old.sub != entry.sub => Err(V6PrefixError::Taken { owner: old.sub }),
            _ => {
                t.v6_prefixes.insert(prefix.trunc(), entry);
                Ok(())
            }
        }
    }
    fn remove_v6_prefix(
        &mut self,
        prefix: ipnet::Ipv6Net,
        id: SubscriberId,
    ) -> Result<bool, FastPathError> {
        let mut t = self.state();
        if t.v6_prefixes
            .get(&prefix.trunc())
            .is_some_and(|e| e.sub == id)
        {
            t.v6_prefixes.remove(&prefix.trunc());
            return Ok(true);
        }
        Ok(false)
    }
    fn v6_prefix_entries(&self) -> Vec<(ipnet::Ipv6Net, V6Prefix)> {
        let t = self.state();
        t.v6_prefixes.iter().map(|(k, v)| (*k, *v)).collect()
    }
    fn insert_neighbour(
        &mut self,
        id: SubscriberId,
        addr: std::net::Ipv6Addr,
        n: V6Neigh,
    ) -> Result<(), FastPathError> {
        let mut t = self.state();
        t.neighbours.insert((id, addr), n);
        Ok(())
    }
    fn remove_neighbour(
        &mut self,
        id: SubscriberId,
        addr: std::net::Ipv6Addr,
    ) -> Result<bool, FastPathError> {
        let mut t = self.state();
        Ok(t.neighbours.remove(&(id, addr)).is_some())
    }
    fn neighbours_of(&self, id: SubscriberId) -> Vec<(std::net::Ipv6Addr, V6Neigh)> {
        let t = self.state();
        t.neighbours
            .range((id, std::net::Ipv6Addr::UNSPECIFIED)..)
            .take_while(|((sub, _), _)| *sub == id)
            .map(|((_, a), n)| (*a, *n))
            .collect()
    }
    fn neighbour_entries(&self) -> Vec<(SubscriberId, std::net::Ipv6Addr, V6Neigh)> {
        let t = self.state();
        t.neighbours
            .iter()
            .map(|((s, a), n)| (*s, *a, *n))
            .collect()
    }
    fn recompute_v6_range(&mut self) -> Result<(), FastPathError> {
        let mut t = self.state();
        t.v6_range = t
            .v6_prefixes
            .keys()
            .map(|p| crate::fastpath::v6::prefix_span(*p))
            .reduce(|(lo, hi), (l, h)| (lo.min(l), hi.max(h)));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    //! The IPv6 table rules of [`FakeTables`], as `xdp_v6::tables` checks them on the pinned
    //! maps.
    use std::net::Ipv6Addr;

    use nerg_abi::{V6Neigh, v6_prefix_kind};

    use super::*;
    use crate::fastpath::v6::prefix_entry;

    #[test]
    fn v6_prefixes_are_never_taken_from_another_home() {
        let mut t = FakeTables::default();
        let lan: ipnet::Ipv6Net = "2001:db8:0:100::/64".parse().unwrap();
        let gw: Ipv6Addr = "2001:db8:0:100::1".parse().unwrap();
        t.insert_v6_prefix(lan, prefix_entry(1, v6_prefix_kind::LAN, gw))
            .unwrap();
        let taken = t.insert_v6_prefix(lan, prefix_entry(2, v6_prefix_kind::LAN, gw));
        assert!(matches!(taken, Err(V6PrefixError::Taken { owner: 1 })));
        let with_host_bits: ipnet::Ipv6Net = "2001:db8:0:100::5/64".parse().unwrap();
        let moved: Ipv6Addr = "2001:db8:0:100::2".parse().unwrap();
        t.insert_v6_prefix(with_host_bits, prefix_entry(1, v6_prefix_kind::LAN, moved))
            .unwrap();
        assert_eq!(
            t.v6_prefix_entries(),
            vec![(lan, prefix_entry(1, v6_prefix_kind::LAN, moved))]
        );
        assert!(!t.remove_v6_prefix(lan, 2).unwrap(), "not home 2's");
        assert!(t.remove_v6_prefix(with_host_bits, 1).unwrap());
        assert!(t.v6_prefix_entries().is_empty());
    }

    #[test]
    fn neighbours_are_per_home() {
        let mut t = FakeTables::default();
        let a: Ipv6Addr = "2001:db8:0:100::10".parse().unwrap();
        let n = V6Neigh {
            mac: [2, 0, 0, 0, 0, 1],
            ..V6Neigh::default()
        };
        t.insert_neighbour(1, a, n).unwrap();
        t.insert_neighbour(2, a, n).unwrap();
        t.insert_neighbour(3, a, n).unwrap();
        assert_eq!(t.neighbours_of(2), vec![(a, n)]);
        assert!(t.remove_neighbour(2, a).unwrap());
        assert!(!t.remove_neighbour(2, a).unwrap());
        assert!(t.neighbours_of(2).is_empty());
        assert_eq!(t.neighbours_of(1), vec![(a, n)]);
        assert_eq!(t.neighbours_of(3), vec![(a, n)]);
    }
}
