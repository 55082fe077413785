//! The fast path's tables as the control plane sees them: what it reads and writes of the
//! pinned maps, as a trait. [`PinnedMaps`] is the real one; the control plane's tests run
//! every decision against `FakeTables` (`control::fake`, in the tests) without root or eBPF.
//!
//! Every write of a home's entries goes through [`plan::apply`](super::plan::apply), from the
//! API's changes and from the start-up reconcile alike.

use nerg_abi::{
    Host, HostKey, NatFwdKey, NatRev, NatRevKey, PublicRange, Subscriber, SubscriberId,
};

use std::net::Ipv6Addr;

use ipnet::Ipv6Net;
use nerg_abi::{V6Neigh, V6Prefix};

use crate::fastpath::{
    FastPathError,
    maps::{LslClaimError, PinnedMaps, StaticMapping, StaticMappingError},
    reconcile::LslKey,
    v6::V6PrefixError,
};

/// The control plane's view of the fast path's maps.
pub trait FastPathTables: Send {
    /// Gives home `id` the LSL entry `key`; another home's entry is never replaced.
    fn claim_lsl(&mut self, key: &LslKey, id: SubscriberId) -> Result<(), LslClaimError>;
    /// Removes the LSL entry `key` if it is home `id`'s; true if it removed one.
    fn release_lsl(&mut self, key: &LslKey, id: SubscriberId) -> Result<bool, FastPathError>;
    /// Every LSL entry and the home it points to.
    fn lsl_entries(&self) -> Vec<(LslKey, SubscriberId)>;

    /// Writes home `id`'s slot.
    fn set_subscriber(&mut self, id: SubscriberId, rec: &Subscriber) -> Result<(), FastPathError>;
    /// Empties home `id`'s slot and zeroes its traffic counters.
    fn remove_subscriber(&mut self, id: SubscriberId) -> Result<(), FastPathError>;

    /// Adds or updates a host.
    fn insert_host(&mut self, key: HostKey, host: Host) -> Result<(), FastPathError>;
    /// Removes a host (absent: fine).
    fn remove_host(&mut self, key: &HostKey) -> Result<(), FastPathError>;
    /// One host, if the table has it.
    fn host(&self, key: &HostKey) -> Result<Option<Host>, FastPathError>;
    /// Every host entry.
    fn host_entries(&self) -> Vec<(HostKey, Host)>;

    /// Declares `ip` (raw) a public address, widening the public range.
    fn insert_public_ip(&mut self, ip: u32) -> Result<(), FastPathError>;
    /// Forgets a public address (the range is set apart, [`Self::set_public_range`]).
    fn remove_public_ip(&mut self, ip: u32) -> Result<(), FastPathError>;
    /// The public addresses (raw).
    fn public_ips(&self) -> Vec<u32>;
    /// Sets the span of the public addresses exactly.
    fn set_public_range(&mut self, range: PublicRange) -> Result<(), FastPathError>;

    /// Writes a port forward's static mapping pair.
    fn insert_static(&mut self, m: &StaticMapping) -> Result<(), StaticMappingError>;
    /// Removes a port forward's static mapping pair.
    fn remove_static(&mut self, m: &StaticMapping) -> Result<(), FastPathError>;
    /// Removes the static mappings whose forward key is not in `keep`; how many went.
    fn remove_static_except(
        &mut self,
        keep: &std::collections::HashSet<NatFwdKey>,
    ) -> Result<usize, FastPathError>;
    /// The reverse NAT entry of a public transport address, if any.
    fn nat_reverse(&self, key: &NatRevKey) -> Result<Option<NatRev>, FastPathError>;
    /// Removes home `id`'s NAT mappings on `public` inside the port ranges `blocks`.
    fn remove_nat_in_blocks(
        &mut self,
        id: SubscriberId,
        public: std::net::Ipv4Addr,
        blocks: &[(u16, u16)],
    ) -> Result<usize, FastPathError>;

    /// Gives IPv6 `prefix` (host bits ignored) to home `entry.sub`, or updates its entry;
    /// another home's entry for exactly this prefix is never replaced.
    fn insert_v6_prefix(&mut self, prefix: Ipv6Net, entry: V6Prefix) -> Result<(), V6PrefixError>;
    /// Removes `prefix` if it is home `id`'s; true if it removed one.
    fn remove_v6_prefix(
        &mut self,
        prefix: Ipv6Net,
        id: SubscriberId,
    ) -> Result<bool, FastPathError>;
    /// Every IPv6 prefix entry, by prefix.
    fn v6_prefix_entries(&self) -> Vec<(Ipv6Net, V6Prefix)>;
    /// Adds or updates home `id`'s IPv6 neighbour `addr` (the slow path learns them; the
    /// control plane writes DHCPv6 bindings and static ones).
    fn insert_neighbour(
        &mut self,
        id: SubscriberId,
        addr: Ipv6Addr,
        n: V6Neigh,
    ) -> Result<(), FastPathError>;
    /// Removes home `id`'s neighbour `addr`; true if there was one.
    fn remove_neighbour(&mut self, id: SubscriberId, addr: Ipv6Addr)
    -> Result<bool, FastPathError>;
    /// Home `id`'s neighbours, by address.
    fn neighbours_of(&self, id: SubscriberId) -> Vec<(Ipv6Addr, V6Neigh)>;
    /// Every neighbour entry (a whole-table read: start-up only).
    fn neighbour_entries(&self) -> Vec<(SubscriberId, Ipv6Addr, V6Neigh)>;
    /// Sets the span of the homes' prefixes exactly (insertions only widen it).
    fn recompute_v6_range(&mut self) -> Result<(), FastPathError>;
}

impl FastPathTables for PinnedMaps {
    fn claim_lsl(&mut self, key: &LslKey, id: SubscriberId) -> Result<(), LslClaimError> {
        PinnedMaps::claim_lsl(self, key, id)
    }
    fn release_lsl(&mut self, key: &LslKey, id: SubscriberId) -> Result<bool, FastPathError> {
        PinnedMaps::release_lsl(self, key, id)
    }
    fn lsl_entries(&self) -> Vec<(LslKey, SubscriberId)> {
        PinnedMaps::lsl_entries(self)
    }
    fn set_subscriber(&mut self, id: SubscriberId, rec: &Subscriber) -> Result<(), FastPathError> {
        PinnedMaps::set_subscriber(self, id, rec)
    }
    fn remove_subscriber(&mut self, id: SubscriberId) -> Result<(), FastPathError> {
        PinnedMaps::remove_subscriber(self, id)
    }
    fn insert_host(&mut self, key: HostKey, host: Host) -> Result<(), FastPathError> {
        PinnedMaps::insert_host(self, key, host)
    }
    fn remove_host(&mut self, key: &HostKey) -> Result<(), FastPathError> {
        PinnedMaps::remove_host(self, key)
    }
    fn host(&self, key: &HostKey) -> Result<Option<Host>, FastPathError> {
        PinnedMaps::host(self, key)
    }
    fn host_entries(&self) -> Vec<(HostKey, Host)> {
        PinnedMaps::host_entries(self)
    }
    fn insert_public_ip(&mut self, ip: u32) -> Result<(), FastPathError> {
        PinnedMaps::insert_public_ip(self, ip)
    }
    fn remove_public_ip(&mut self, ip: u32) -> Result<(), FastPathError> {
        PinnedMaps::remove_public_ip(self, ip)
    }
    fn public_ips(&self) -> Vec<u32> {
        PinnedMaps::public_ips(self)
    }
    fn set_public_range(&mut self, range: PublicRange) -> Result<(), FastPathError> {
        PinnedMaps::set_public_range(self, range)
    }
    fn insert_static(&mut self, m: &StaticMapping) -> Result<(), StaticMappingError> {
        PinnedMaps::insert_static(self, m)
    }
    fn remove_static(&mut self, m: &StaticMapping) -> Result<(), FastPathError> {
        PinnedMaps::remove_static(self, m)
    }
    fn remove_static_except(
        &mut self,
        keep: &std::collections::HashSet<NatFwdKey>,
    ) -> Result<usize, FastPathError> {
        PinnedMaps::remove_static_except(self, keep)
    }
    fn nat_reverse(&self, key: &NatRevKey) -> Result<Option<NatRev>, FastPathError> {
        PinnedMaps::nat_reverse(self, key)
    }
    fn remove_nat_in_blocks(
        &mut self,
        id: SubscriberId,
        public: std::net::Ipv4Addr,
        blocks: &[(u16, u16)],
    ) -> Result<usize, FastPathError> {
        PinnedMaps::remove_nat_in_blocks(self, id, public, blocks)
    }
    fn insert_v6_prefix(&mut self, prefix: Ipv6Net, entry: V6Prefix) -> Result<(), V6PrefixError> {
        self.v6_mut().insert_prefix(prefix, entry)
    }
    fn remove_v6_prefix(
        &mut self,
        prefix: Ipv6Net,
        id: SubscriberId,
    ) -> Result<bool, FastPathError> {
        self.v6_mut().remove_prefix(prefix, id)
    }
    fn v6_prefix_entries(&self) -> Vec<(Ipv6Net, V6Prefix)> {
        self.v6().prefix_entries()
    }
    fn insert_neighbour(
        &mut self,
        id: SubscriberId,
        addr: Ipv6Addr,
        n: V6Neigh,
    ) -> Result<(), FastPathError> {
        self.v6_mut().insert_neighbour(id, addr, n)
    }
    fn remove_neighbour(
        &mut self,
        id: SubscriberId,
        addr: Ipv6Addr,
    ) -> Result<bool, FastPathError> {
        self.v6_mut().remove_neighbour(id, addr)
    }
    fn neighbours_of(&self, id: SubscriberId) -> Vec<(Ipv6Addr, V6Neigh)> {
        self.v6().neighbours_of(id)
    }
    fn neighbour_entries(&self) -> Vec<(SubscriberId, Ipv6Addr, V6Neigh)> {
        self.v6()
            .neighbour_entries()
            .into_iter()
            .map(|(k, n)| (k.sub, Ipv6Addr::from(k.addr), n))
            .collect()
    }
    fn recompute_v6_range(&mut self) -> Result<(), FastPathError> {
        self.v6_mut().recompute_range().map(drop)
    }
}
