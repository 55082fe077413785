//! The embedded, crash-safe store: one redb file, `<state-dir>/leases.redb` (copy-on-write
//! B-trees, a commit is durable when it returns). It keeps
//! - every DHCP lease vgd acknowledged, so that a restart (or `kill -9`) loses none; the
//!   DHCP engine persists before it replies ([`crate::dhcp::Outcome::commit`]); and every
//!   DHCPv6 binding, written in the same transaction as the DHCPv4 leases of a batch
//!   ([`crate::slowpath::responder::Stores`]);
//! - every subscriber (home) with where it came from (config file or API), and each home's
//!   NAT assignment (public address, port blocks, since when) and the blocks in hold-down,
//!   so that a restart keeps every home's public address and ports;
//! - each home's IPv6 prefix and the prefixes in hold-down, for the same reason.
//!
//! Behind two traits, [`LeaseStore`] and [`SubscriberStore`], so that a shared store can
//! replace it when several vG instances share subscribers.
//!
//! Layout (values are JSON: a format that survives adding fields):
//!
//! | table | key | value |
//! |---|---|---|
//! | `leases` | (home, IPv4 as u32) | [`LeaseRecord`] |
//! | `leases6` | (home, first address as u128, length) | [`dhcp6::BindingRecord`] (IA_NA, IA_PD) |
//! | `subscribers` | home id | [`StoredSubscriber`] |
//! | `nat_blocks` | home id | [`StoredNat`] |
//! | `nat_held` | (IPv4 as u32, first port) | hold-down end, UNIX seconds |
//! | `meta` | name | `nat_geometry`: [`NatGeometry`] |
//! | `v6_prefixes` | home id | [`Assigned`]: the home's IPv6 prefix, since when |
//! | `v6_held` | (first address as u128, length) | hold-down end, UNIX seconds |

use std::{
    collections::BTreeMap,
    net::Ipv4Addr,
    path::Path,
    sync::{Arc, Mutex, PoisonError},
};

use redb::{Database, ReadableDatabase as _, ReadableTable as _, TableDefinition};
use serde::{Deserialize, Serialize};

use crate::{
    config::SubscriberFile,
    dhcp::{HomeId, LeaseRecord, LeaseStore, StoreError, StoreOp},
    dhcp6,
    ipv6::{Assigned, HeldPrefix},
    nat::{HeldBlock, PortRange, UnixTime},
};

const LEASES: TableDefinition<(u32, u32), &[u8]> = TableDefinition::new("leases");
const LEASES6: TableDefinition<(u32, u128, u8), &[u8]> = TableDefinition::new("leases6");
const SUBSCRIBERS: TableDefinition<u32, &[u8]> = TableDefinition::new("subscribers");
const NAT_BLOCKS: TableDefinition<u32, &[u8]> = TableDefinition::new("nat_blocks");
const NAT_HELD: TableDefinition<(u32, u16), u64> = TableDefinition::new("nat_held");
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const V6_PREFIXES: TableDefinition<u32, &[u8]> = TableDefinition::new("v6_prefixes");
const V6_HELD: TableDefinition<(u128, u8), u64> = TableDefinition::new("v6_held");
const NAT_GEOMETRY: &str = "nat_geometry";

/// Where a home came from: it decides what a restart does with it (see
/// [`crate::control`]'s precedence rule).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// The configuration file lists it: the file is its source of truth at every start.
    Config,
    /// Created through the REST API: the store is its source of truth.
    Api,
}

/// A home as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredSubscriber {
    /// Where it came from.
    pub source: Source,
    /// The home as written (file or API body).
    pub subscriber: SubscriberFile,
}

/// One port block of a home as stored: its first port and when the home got it (the start
/// time of its block log record).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredBlock {
    /// First port.
    pub first_port: u16,
    /// Allocated at.
    pub since: UnixTime,
}

/// A home's NAT assignment as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredNat {
    /// Its public address.
    pub address: Ipv4Addr,
    /// Its blocks, ascending.
    pub blocks: Vec<StoredBlock>,
}

/// The block geometry the stored blocks were cut with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NatGeometry {
    /// `nat.port_range`.
    pub port_range: PortRange,
    /// `nat.block_size`.
    pub block_size: u16,
}

/// Everything the store holds about homes and NAT, as loaded at start.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoredState {
    /// Homes by id.
    pub subscribers: BTreeMap<u32, StoredSubscriber>,
    /// NAT assignments by home id.
    pub nat: BTreeMap<u32, StoredNat>,
    /// Blocks in hold-down.
    pub held: Vec<HeldBlock>,
    /// The geometry of the stored blocks, if any were stored.
    pub geometry: Option<NatGeometry>,
    /// IPv6 prefixes by home id.
    pub prefixes: BTreeMap<u32, Assigned>,
    /// IPv6 prefixes in hold-down.
    pub held_prefixes: Vec<HeldPrefix>,
}

/// One change of a [`SubscriberStore`] transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SubscriberOp {
    /// Insert or replace a home.
    Put(Box<StoredSubscriber>),
    /// Delete a home with everything it had: its leases, its NAT assignment and its IPv6
    /// prefix.
    Remove(u32),
    /// Insert or replace a home's NAT assignment.
    PutNat(u32, StoredNat),
    /// Delete a home's NAT assignment.
    RemoveNat(u32),
    /// A block enters hold-down.
    PutHeld(HeldBlock),
    /// A block leaves hold-down (it has an owner again).
    RemoveHeld(Ipv4Addr, u16),
    /// Record the block geometry.
    SetGeometry(NatGeometry),
    /// Insert or replace a home's IPv6 prefix.
    PutPrefix(u32, Assigned),
    /// Delete a home's IPv6 prefix.
    RemovePrefix(u32),
    /// A prefix enters hold-down.
    PutHeldPrefix(HeldPrefix),
    /// A prefix leaves hold-down.
    RemoveHeldPrefix(ipnet::Ipv6Net),
}

/// A failed subscriber-store operation.
#[derive(Debug, thiserror::Error)]
#[error("subscriber store: {what}")]
pub struct SubscriberStoreError {
    /// What was being done.
    pub what: &'static str,
    /// The backend's error.
    #[source]
    pub source: crate::dhcp::BoxError,
}

/// Where homes and NAT assignments live. A commit is atomic and durable when it returns.
pub trait SubscriberStore: Send + Sync {
    /// Everything stored.
    fn load_state(&self) -> Result<StoredState, SubscriberStoreError>;
    /// Applies `ops` in one transaction (one commit, one fsync).
    fn commit(&self, ops: &[SubscriberOp]) -> Result<(), SubscriberStoreError>;
}

/// Errors opening the store.
#[derive(Debug, thiserror::Error)]
#[error("opening the store {path}")]
pub struct OpenError {
    /// The file.
    pub path: String,
    /// The backend's error.
    #[source]
    pub source: redb::Error,
}

/// The redb store; clones share the one open database (redb opens a file once per
/// process).
#[derive(Clone)]
pub struct RedbStore {
    db: Arc<Database>,
}

/// The store's page cache (redb's default is 1 GiB, which showed as vgd's resident memory
/// with many homes).
pub const STORE_CACHE_BYTES: usize = 32 << 20;

impl RedbStore {
    /// Opens (or creates) the store at `path`.
    pub fn open(path: &Path) -> Result<Self, OpenError> {
        let err = |source: redb::Error| OpenError {
            path: path.display().to_string(),
            source,
        };
        // redb caches up to 1 GiB by default; vgd's working set is the leases and homes it
        // also holds in memory, so the cache only needs the pages of recent writes.
        let db = redb::Builder::new()
            .set_cache_size(STORE_CACHE_BYTES)
            .create(path)
            .map_err(|e| err(e.into()))?;
        // Create the table, so that reads of an empty store find it.
        let txn = db.begin_write().map_err(|e| err(e.into()))?;
        txn.open_table(LEASES).map_err(|e| err(e.into()))?;
        txn.open_table(LEASES6).map_err(|e| err(e.into()))?;
        txn.open_table(SUBSCRIBERS).map_err(|e| err(e.into()))?;
        txn.open_table(NAT_BLOCKS).map_err(|e| err(e.into()))?;
        txn.open_table(NAT_HELD).map_err(|e| err(e.into()))?;
        txn.open_table(META).map_err(|e| err(e.into()))?;
        txn.open_table(V6_PREFIXES).map_err(|e| err(e.into()))?;
        txn.open_table(V6_HELD).map_err(|e| err(e.into()))?;
        txn.commit().map_err(|e| err(e.into()))?;
        Ok(Self { db: Arc::new(db) })
    }

    fn write(&self, ops: &[StoreOp]) -> Result<(), redb::Error> {
        self.write_all(ops, &[])
    }

    /// DHCPv4 and DHCPv6 changes in one transaction (one commit, one fsync).
    fn write_all(&self, ops: &[StoreOp], ops6: &[dhcp6::StoreOp]) -> Result<(), redb::Error> {
        let txn = self.db.begin_write()?;
        if !ops.is_empty() {
            let mut table = txn.open_table(LEASES)?;
            for op in ops {
                match op {
                    StoreOp::Put(record) => {
                        let value = serde_json::to_vec(record)
                            .map_err(|e| redb::Error::Corrupted(e.to_string()))?;
                        table.insert((record.home, u32::from(record.ip)), value.as_slice())?;
                    }
                    StoreOp::Remove { home, ip } => {
                        table.remove((*home, u32::from(*ip)))?;
                    }
                }
            }
        }
        if !ops6.is_empty() {
            let mut table = txn.open_table(LEASES6)?;
            for op in ops6 {
                match op {
                    dhcp6::StoreOp::Put(record) => {
                        let (net, len) = record.lease.key();
                        table.insert((record.home, net, len), json(record)?.as_slice())?;
                    }
                    dhcp6::StoreOp::Remove { home, lease } => {
                        let (net, len) = lease.key();
                        table.remove((*home, net, len))?;
                    }
                }
            }
        }
        txn.commit()?;
        Ok(())
    }
}

/// The key of a held prefix: its first address and its length.
fn v6_key(p: &ipnet::Ipv6Net) -> (u128, u8) {
    (u128::from(p.network()), p.prefix_len())
}

fn boxed(e: redb::Error) -> crate::dhcp::BoxError {
    Box::new(e)
}

fn json<T: Serialize>(v: &T) -> Result<Vec<u8>, redb::Error> {
    serde_json::to_vec(v).map_err(|e| redb::Error::Corrupted(e.to_string()))
}

fn unjson<T: serde::de::DeserializeOwned>(b: &[u8]) -> Result<T, redb::Error> {
    serde_json::from_slice(b).map_err(|e| redb::Error::Corrupted(e.to_string()))
}

impl RedbStore {
    fn load_state_inner(&self) -> Result<StoredState, redb::Error> {
        let txn = self.db.begin_read()?;
        let mut state = StoredState::default();
        for entry in txn.open_table(SUBSCRIBERS)?.iter()? {
            let (k, v) = entry?;
            state.subscribers.insert(k.value(), unjson(v.value())?);
        }
        for entry in txn.open_table(NAT_BLOCKS)?.iter()? {
            let (k, v) = entry?;
            state.nat.insert(k.value(), unjson(v.value())?);
        }
        for entry in txn.open_table(NAT_HELD)?.iter()? {
            let (k, v) = entry?;
            let (ip, port) = k.value();
            state.held.push(HeldBlock {
                address: Ipv4Addr::from(ip),
                first_port: port,
                until: UnixTime(v.value()),
            });
        }
        if let Some(v) = txn.open_table(META)?.get(NAT_GEOMETRY)? {
            state.geometry = Some(unjson(v.value())?);
        }
        for entry in txn.open_table(V6_PREFIXES)?.iter()? {
            let (k, v) = entry?;
            state.prefixes.insert(k.value(), unjson(v.value())?);
        }
        for entry in txn.open_table(V6_HELD)?.iter()? {
            let (k, v) = entry?;
            let (first, len) = k.value();
            let prefix = ipnet::Ipv6Net::new(first.into(), len)
                .map_err(|e| redb::Error::Corrupted(format!("v6_held: {e}")))?;
            state.held_prefixes.push(HeldPrefix {
                prefix,
                until: UnixTime(v.value()),
            });
        }
        Ok(state)
    }

    fn commit_inner(&self, ops: &[SubscriberOp]) -> Result<(), redb::Error> {
        let txn = self.db.begin_write()?;
        {
            let mut subs = txn.open_table(SUBSCRIBERS)?;
            let mut nat = txn.open_table(NAT_BLOCKS)?;
            let mut held = txn.open_table(NAT_HELD)?;
            let mut meta = txn.open_table(META)?;
            let mut leases = txn.open_table(LEASES)?;
            let mut prefixes = txn.open_table(V6_PREFIXES)?;
            let mut held6 = txn.open_table(V6_HELD)?;
            for op in ops {
                match op {
                    SubscriberOp::Put(s) => {
                        subs.insert(s.subscriber.id, json(s)?.as_slice())?;
                    }
                    SubscriberOp::Remove(id) => {
                        subs.remove(*id)?;
                        nat.remove(*id)?;
                        prefixes.remove(*id)?;
                        leases.retain_in((*id, 0)..=(*id, u32::MAX), |_, _| false)?;
                        txn.open_table(LEASES6)?
                            .retain_in((*id, 0, 0)..=(*id, u128::MAX, u8::MAX), |_, _| false)?;
                    }
                    SubscriberOp::PutNat(id, n) => {
                        nat.insert(*id, json(n)?.as_slice())?;
                    }
                    SubscriberOp::RemoveNat(id) => {
                        nat.remove(*id)?;
                    }
                    SubscriberOp::PutHeld(h) => {
                        held.insert((u32::from(h.address), h.first_port), h.until.0)?;
                    }
                    SubscriberOp::RemoveHeld(ip, port) => {
                        held.remove((u32::from(*ip), *port))?;
                    }
                    SubscriberOp::SetGeometry(g) => {
                        meta.insert(NAT_GEOMETRY, json(g)?.as_slice())?;
                    }
                    SubscriberOp::PutPrefix(id, a) => {
                        prefixes.insert(*id, json(a)?.as_slice())?;
                    }
                    SubscriberOp::RemovePrefix(id) => {
                        prefixes.remove(*id)?;
                    }
                    SubscriberOp::PutHeldPrefix(h) => {
                        held6.insert(v6_key(&h.prefix), h.until.0)?;
                    }
                    SubscriberOp::RemoveHeldPrefix(p) => {
                        held6.remove(v6_key(p))?;
                    }
                }
            }
        }
        txn.commit()?;
        Ok(())
    }
}

impl SubscriberStore for RedbStore {
    fn load_state(&self) -> Result<StoredState, SubscriberStoreError> {
        self.load_state_inner().map_err(|e| SubscriberStoreError {
            what: "loading homes and NAT assignments",
            source: boxed(e),
        })
    }

    fn commit(&self, ops: &[SubscriberOp]) -> Result<(), SubscriberStoreError> {
        if ops.is_empty() {
            return Ok(());
        }
        self.commit_inner(ops).map_err(|e| SubscriberStoreError {
            what: "committing a change of homes",
            source: boxed(e),
        })
    }
}

/// A [`SubscriberStore`] in memory: for tests, and for running without persistence.
#[derive(Debug, Default)]
pub struct MemorySubscriberStore {
    state: Mutex<StoredState>,
}

impl SubscriberStore for MemorySubscriberStore {
    fn load_state(&self) -> Result<StoredState, SubscriberStoreError> {
        Ok(self
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone())
    }

    fn commit(&self, ops: &[SubscriberOp]) -> Result<(), SubscriberStoreError> {
        let mut st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        for op in ops {
            match op {
                SubscriberOp::Put(s) => {
                    st.subscribers.insert(s.subscriber.id, (**s).clone());
                }
                SubscriberOp::Remove(id) => {
                    st.subscribers.remove(id);
                    st.nat.remove(id);
                    st.prefixes.remove(id);
                }
                SubscriberOp::PutNat(id, n) => {
                    st.nat.insert(*id, n.clone());
                }
                SubscriberOp::RemoveNat(id) => {
                    st.nat.remove(id);
                }
                SubscriberOp::PutHeld(h) => {
                    st.held
                        .retain(|x| (x.address, x.first_port) != (h.address, h.first_port));
                    st.held.push(*h);
                }
                SubscriberOp::RemoveHeld(ip, port) => {
                    st.held
                        .retain(|x| (x.address, x.first_port) != (*ip, *port));
                }
                SubscriberOp::SetGeometry(g) => st.geometry = Some(*g),
                SubscriberOp::PutPrefix(id, a) => {
                    st.prefixes.insert(*id, *a);
                }
                SubscriberOp::RemovePrefix(id) => {
                    st.prefixes.remove(id);
                }
                SubscriberOp::PutHeldPrefix(h) => {
                    st.held_prefixes.retain(|x| x.prefix != h.prefix);
                    st.held_prefixes.push(*h);
                }
                SubscriberOp::RemoveHeldPrefix(p) => {
                    st.held_prefixes.retain(|x| x.prefix != *p);
                }
            }
        }
        Ok(())
    }
}

impl LeaseStore for RedbStore {
    fn put(&self, record: &LeaseRecord) -> Result<(), StoreError> {
        self.write(std::slice::from_ref(&StoreOp::Put(record.clone())))
            .map_err(|e| StoreError::Put {
                home: record.home,
                ip: record.ip,
                source: boxed(e),
            })
    }

    fn remove(&self, home: HomeId, ip: Ipv4Addr) -> Result<(), StoreError> {
        self.write(&[StoreOp::Remove { home, ip }])
            .map_err(|e| StoreError::Remove {
                home,
                ip,
                source: boxed(e),
            })
    }

    fn load(&self, home: HomeId) -> Result<Vec<LeaseRecord>, StoreError> {
        let load = || -> Result<Vec<LeaseRecord>, redb::Error> {
            let txn = self.db.begin_read()?;
            let table = txn.open_table(LEASES)?;
            let mut out = Vec::new();
            for entry in table.range((home, 0)..=(home, u32::MAX))? {
                let (_, value) = entry?;
                let record: LeaseRecord = serde_json::from_slice(value.value())
                    .map_err(|e| redb::Error::Corrupted(e.to_string()))?;
                out.push(record);
            }
            Ok(out)
        };
        load().map_err(|e| StoreError::Load {
            home,
            source: boxed(e),
        })
    }

    /// One transaction for the whole batch: one commit, one fsync.
    fn apply(&self, ops: &[StoreOp]) -> Result<(), StoreError> {
        self.write(ops).map_err(|e| {
            let (home, ip) = match ops.first() {
                Some(StoreOp::Put(r)) => (r.home, r.ip),
                Some(StoreOp::Remove { home, ip }) => (*home, *ip),
                None => (0, Ipv4Addr::UNSPECIFIED),
            };
            StoreError::Put {
                home,
                ip,
                source: boxed(e),
            }
        })
    }
}

impl dhcp6::BindingStore for RedbStore {
    fn put(&self, record: &dhcp6::BindingRecord) -> Result<(), dhcp6::StoreError> {
        self.write_all(
            &[],
            std::slice::from_ref(&dhcp6::StoreOp::Put(record.clone())),
        )
        .map_err(|e| dhcp6::StoreError::Put {
            home: record.home,
            lease: record.lease,
            source: boxed(e),
        })
    }

    fn remove(&self, home: HomeId, lease: dhcp6::Lease) -> Result<(), dhcp6::StoreError> {
        self.write_all(&[], &[dhcp6::StoreOp::Remove { home, lease }])
            .map_err(|e| dhcp6::StoreError::Remove {
                home,
                lease,
                source: boxed(e),
            })
    }

    fn load(&self, home: HomeId) -> Result<Vec<dhcp6::BindingRecord>, dhcp6::StoreError> {
        let load = || -> Result<Vec<dhcp6::BindingRecord>, redb::Error> {
            let txn = self.db.begin_read()?;
            let table = txn.open_table(LEASES6)?;
            let mut out = Vec::new();
            for entry in table.range((home, 0, 0)..=(home, u128::MAX, u8::MAX))? {
                let (_, value) = entry?;
                out.push(unjson(value.value())?);
            }
            Ok(out)
        };
        load().map_err(|e| dhcp6::StoreError::Load {
            home,
            source: boxed(e),
        })
    }

    /// One transaction for the whole batch: one commit, one fsync.
    fn apply(&self, ops: &[dhcp6::StoreOp]) -> Result<(), dhcp6::StoreError> {
        self.write_all(&[], ops).map_err(|e| {
            let (home, lease) = match ops.first() {
                Some(dhcp6::StoreOp::Put(r)) => (r.home, r.lease),
                Some(dhcp6::StoreOp::Remove { home, lease }) => (*home, *lease),
                None => (0, dhcp6::Lease::Address(std::net::Ipv6Addr::UNSPECIFIED)),
            };
            dhcp6::StoreError::Put {
                home,
                lease,
                source: boxed(e),
            }
        })
    }
}

impl crate::slowpath::responder::Stores for RedbStore {
    /// DHCPv4 leases and DHCPv6 bindings in one redb transaction.
    fn apply_all(&self, v4: &[StoreOp], v6: &[dhcp6::StoreOp]) -> Result<(), String> {
        self.write_all(v4, v6).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dhcp::{ClientId, LeaseState, MacAddr, UnixTime};

    fn record(home: HomeId, last: u8) -> LeaseRecord {
        let mac = MacAddr([2, 0, 0, 0, home as u8, last]);
        LeaseRecord {
            home,
            ip: Ipv4Addr::new(192, 168, 1, last),
            client_id: ClientId::Mac(mac),
            mac,
            state: LeaseState::Bound,
            time: UnixTime(1_700_000_000),
            hostname: Some("laptop".into()),
        }
    }

    fn binding(home: HomeId, lease: &str) -> dhcp6::BindingRecord {
        let lease = if lease.contains('/') {
            dhcp6::Lease::Prefix(lease.parse().unwrap())
        } else {
            dhcp6::Lease::Address(lease.parse().unwrap())
        };
        dhcp6::BindingRecord {
            home,
            lease,
            duid: dhcp6::Duid(vec![0, 3, 0, 1, 2, 0, 0, 0, 0, 9]),
            iaid: 1,
            mac: MacAddr([2, 0, 0, 0, 0, 9]),
            link_local: "fe80::9".parse().unwrap(),
            state: dhcp6::BindingState::Bound,
            time: UnixTime(1_700_000_000),
        }
    }

    #[test]
    fn dhcpv6_bindings_share_the_dhcpv4_transaction_and_go_with_their_home() {
        use crate::slowpath::responder::Stores as _;
        let dir = std::env::temp_dir().join(format!("nerg-store6-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("leases.redb");
        let _ = std::fs::remove_file(&path);
        let na = binding(1, "2001:db8:100::1000");
        let pd = binding(1, "2001:db8:100:10::/60");
        let other = binding(2, "2001:db8:100::1000");
        {
            let store = RedbStore::open(&path).unwrap();
            store
                .apply_all(
                    &[StoreOp::Put(record(1, 100))],
                    &[
                        dhcp6::StoreOp::Put(na.clone()),
                        dhcp6::StoreOp::Put(pd.clone()),
                        dhcp6::StoreOp::Put(other.clone()),
                    ],
                )
                .unwrap();
        }
        let store = RedbStore::open(&path).unwrap();
        assert_eq!(LeaseStore::load(&store, 1).unwrap().len(), 1);
        let mut home1 = dhcp6::BindingStore::load(&store, 1).unwrap();
        home1.sort_by_key(|b| b.lease.key());
        assert_eq!(home1, vec![na.clone(), pd.clone()]);
        dhcp6::BindingStore::apply(
            &store,
            &[dhcp6::StoreOp::Remove {
                home: 1,
                lease: na.lease,
            }],
        )
        .unwrap();
        assert_eq!(dhcp6::BindingStore::load(&store, 1).unwrap(), vec![pd]);
        store.commit(&[SubscriberOp::Remove(1)]).unwrap();
        assert!(dhcp6::BindingStore::load(&store, 1).unwrap().is_empty());
        assert_eq!(dhcp6::BindingStore::load(&store, 2).unwrap(), vec![other]);
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn leases_survive_reopening_and_homes_stay_apart() {
        let dir = std::env::temp_dir().join(format!("nerg-store-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("leases.redb");
        let _ = std::fs::remove_file(&path);
        {
            let store = RedbStore::open(&path).unwrap();
            assert!(store.load(1).unwrap().is_empty());
            store.put(&record(1, 100)).unwrap();
            store
                .apply(&[
                    StoreOp::Put(record(1, 101)),
                    StoreOp::Put(record(2, 100)),
                    StoreOp::Remove {
                        home: 1,
                        ip: Ipv4Addr::new(192, 168, 1, 100),
                    },
                ])
                .unwrap();
        }
        // A new handle on the same file: what was committed is there, nothing else.
        let store = RedbStore::open(&path).unwrap();
        assert_eq!(store.load(1).unwrap(), vec![record(1, 101)]);
        assert_eq!(store.load(2).unwrap(), vec![record(2, 100)]);
        assert!(store.load(3).unwrap().is_empty());
        store.remove(2, Ipv4Addr::new(192, 168, 1, 100)).unwrap();
        store.remove(2, Ipv4Addr::new(192, 168, 1, 100)).unwrap();
        assert!(store.load(2).unwrap().is_empty());
        drop(store);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn home(id: u32, lsl: &str) -> StoredSubscriber {
        StoredSubscriber {
            source: Source::Api,
            subscriber: SubscriberFile {
                id,
                lsl: lsl.into(),
                gateway: "192.168.1.1/24".into(),
                hosts: vec![],
                dhcp: None,
                nat: None,
                port_forwards: vec![],
                tcp_mss: None,
                qos: None,
                ipv6: None,
            },
        }
    }

    #[test]
    fn homes_and_nat_survive_reopening_and_a_removal_takes_the_leases() {
        let dir = std::env::temp_dir().join(format!("nerg-substore-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("leases.redb");
        let _ = std::fs::remove_file(&path);
        let nat = StoredNat {
            address: Ipv4Addr::new(198, 51, 100, 1),
            blocks: vec![StoredBlock {
                first_port: 1024,
                since: crate::nat::UnixTime(5),
            }],
        };
        let held = HeldBlock {
            address: Ipv4Addr::new(198, 51, 100, 1),
            first_port: 1536,
            until: crate::nat::UnixTime(99),
        };
        let prefix = Assigned {
            prefix: "2001:db8:100::/56".parse().unwrap(),
            since: crate::nat::UnixTime(5),
        };
        let held6 = HeldPrefix {
            prefix: "2001:db8:100:100::/60".parse().unwrap(),
            until: crate::nat::UnixTime(99),
        };
        {
            let store = RedbStore::open(&path).unwrap();
            store.put(&record(1, 100)).unwrap();
            store.put(&record(2, 100)).unwrap();
            store
                .commit(&[
                    SubscriberOp::Put(Box::new(home(1, "vlan:1"))),
                    SubscriberOp::Put(Box::new(home(2, "vlan:2"))),
                    SubscriberOp::PutNat(1, nat.clone()),
                    SubscriberOp::PutNat(2, nat.clone()),
                    SubscriberOp::PutHeld(held),
                ])
                .unwrap();
            store.commit(&[SubscriberOp::Remove(2)]).unwrap();
            store
                .commit(&[
                    SubscriberOp::PutPrefix(1, prefix),
                    SubscriberOp::PutPrefix(3, prefix),
                    SubscriberOp::PutHeldPrefix(held6),
                    SubscriberOp::PutHeldPrefix(HeldPrefix {
                        prefix: "2001:db8:1::/48".parse().unwrap(),
                        until: crate::nat::UnixTime(7),
                    }),
                    SubscriberOp::RemovePrefix(3),
                    SubscriberOp::RemoveHeldPrefix("2001:db8:1::/48".parse().unwrap()),
                ])
                .unwrap();
        }
        let store = RedbStore::open(&path).unwrap();
        let state = store.load_state().unwrap();
        assert_eq!(state.subscribers.len(), 1);
        assert_eq!(state.subscribers[&1], home(1, "vlan:1"));
        assert_eq!(state.nat.get(&1), Some(&nat));
        assert!(!state.nat.contains_key(&2));
        assert_eq!(state.held, vec![held]);
        assert_eq!(state.prefixes, BTreeMap::from([(1, prefix)]));
        assert_eq!(state.held_prefixes, vec![held6]);
        assert_eq!(store.load(1).unwrap().len(), 1);
        assert!(
            store.load(2).unwrap().is_empty(),
            "home 2's leases went with it"
        );
        drop(store);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
