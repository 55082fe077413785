//! Persistence of DHCPv6 bindings behind a trait, with an in-memory implementation for tests.
//!
//! One record per (home, lease): the durable state of one address or delegated prefix, the
//! DHCPv6 twin of [`crate::dhcp::LeaseRecord`]. The engine emits [`StoreOp`]s with every
//! change; the caller applies them **before** it sends the reply that goes with them (the
//! same group commit as DHCPv4; see [`Outcome::commit`](super::Outcome::commit)), so no
//! client is told of a binding the store does not hold. [`Lease::key`] gives a key for an
//! ordered store (redb), `(home, (network, length))`.

use std::collections::BTreeMap;
use std::net::Ipv6Addr;
use std::sync::{Mutex, PoisonError};

use serde::{Deserialize, Serialize};

use crate::dhcp::{BoxError, HomeId, MacAddr, UnixTime};

use super::types::{Duid, IaKind, Lease};

/// The durable state of one lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BindingState {
    /// Bound to the IA until `time` (the end of the valid lifetime).
    Bound,
    /// The valid lifetime ran out at `time`; remembered so the IA gets it back (sticky).
    Expired,
    /// The client released it at `time`; remembered so the IA gets it back (sticky).
    Released,
    /// A client declined the address (duplicate address detection failed); out of the pool
    /// until `time`.
    Declined,
}

/// One lease of one home, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BindingRecord {
    /// The home.
    pub home: HomeId,
    /// The address or prefix (the record's key within the home).
    pub lease: Lease,
    /// The client's DUID.
    pub duid: Duid,
    /// The IA's IAID; the IA's kind is the lease's.
    pub iaid: u32,
    /// The client's MAC when it last spoke.
    pub mac: MacAddr,
    /// The client's link-local address when it last spoke: the next hop of a delegated
    /// prefix.
    pub link_local: Ipv6Addr,
    /// The state.
    pub state: BindingState,
    /// UNIX seconds: end of the valid lifetime (bound), when it ended (expired, released),
    /// end of the quarantine (declined).
    pub time: UnixTime,
}

impl BindingRecord {
    /// IA_NA or IA_PD.
    pub fn kind(&self) -> IaKind {
        self.lease.kind()
    }
}

/// A change to apply to the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreOp {
    /// Insert or replace the record of `(record.home, record.lease)`.
    Put(BindingRecord),
    /// Delete the record of `(home, lease)` if there is one.
    Remove {
        /// The home.
        home: HomeId,
        /// The lease.
        lease: Lease,
    },
}

/// A failed store operation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// Writing a record failed.
    #[error("storing the DHCPv6 binding of {lease} in home {home}")]
    Put {
        /// The home.
        home: HomeId,
        /// The lease.
        lease: Lease,
        /// The backend's error.
        #[source]
        source: BoxError,
    },
    /// Deleting a record failed.
    #[error("removing the DHCPv6 binding of {lease} in home {home}")]
    Remove {
        /// The home.
        home: HomeId,
        /// The lease.
        lease: Lease,
        /// The backend's error.
        #[source]
        source: BoxError,
    },
    /// Reading a home's records failed.
    #[error("loading the DHCPv6 bindings of home {home}")]
    Load {
        /// The home.
        home: HomeId,
        /// The backend's error.
        #[source]
        source: BoxError,
    },
}

/// Where binding records live. Methods take `&self` so one store can serve every home from
/// several tasks; implementations synchronise inside.
pub trait BindingStore {
    /// Inserts or replaces the record of `(record.home, record.lease)`; durable on return.
    fn put(&self, record: &BindingRecord) -> Result<(), StoreError>;
    /// Deletes the record of `(home, lease)`; not an error if there is none.
    fn remove(&self, home: HomeId, lease: Lease) -> Result<(), StoreError>;
    /// Every record of `home`.
    fn load(&self, home: HomeId) -> Result<Vec<BindingRecord>, StoreError>;
    /// Applies `ops` in order; a backend with transactions should override this to make the
    /// batch atomic (one commit, one fsync).
    fn apply(&self, ops: &[StoreOp]) -> Result<(), StoreError> {
        for op in ops {
            match op {
                StoreOp::Put(record) => self.put(record)?,
                StoreOp::Remove { home, lease } => self.remove(*home, *lease)?,
            }
        }
        Ok(())
    }
}

/// A [`BindingStore`] in memory: for tests, and for running without persistence.
#[derive(Debug, Default)]
pub struct MemoryStore {
    records: Mutex<BTreeMap<(HomeId, Lease), BindingRecord>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    /// Number of records, all homes together.
    pub fn len(&self) -> usize {
        self.records
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// True if no record is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The record of `(home, lease)`.
    pub fn get(&self, home: HomeId, lease: Lease) -> Option<BindingRecord> {
        self.records
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&(home, lease))
            .cloned()
    }
}

impl BindingStore for MemoryStore {
    fn put(&self, record: &BindingRecord) -> Result<(), StoreError> {
        self.records
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert((record.home, record.lease), record.clone());
        Ok(())
    }

    fn remove(&self, home: HomeId, lease: Lease) -> Result<(), StoreError> {
        self.records
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&(home, lease));
        Ok(())
    }

    fn load(&self, home: HomeId) -> Result<Vec<BindingRecord>, StoreError> {
        let records = self.records.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(records
            .iter()
            .filter(|((h, _), _)| *h == home)
            .map(|(_, record)| record.clone())
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(home: HomeId, last: u16) -> BindingRecord {
        BindingRecord {
            home,
            lease: Lease::Address(Ipv6Addr::new(0x2001, 0xdb8, 0, 0x100, 0, 0, 0, last)),
            duid: Duid(vec![0, 3, 0, 1, 2, 0, 0, 0, 0, 1]),
            iaid: 1,
            mac: MacAddr([2, 0, 0, 0, 0, 1]),
            link_local: "fe80::1".parse().expect("ip"),
            state: BindingState::Bound,
            time: UnixTime(1000),
        }
    }

    #[test]
    fn memory_store_keeps_homes_apart() {
        let store = MemoryStore::new();
        store
            .apply(&[
                StoreOp::Put(record(1, 0x1000)),
                StoreOp::Put(record(2, 0x1000)),
                StoreOp::Put(record(1, 0x1001)),
            ])
            .expect("memory store cannot fail");
        assert_eq!(store.len(), 3);
        assert_eq!(store.load(1).expect("load").len(), 2);
        store
            .apply(&[StoreOp::Remove {
                home: 1,
                lease: record(1, 0x1000).lease,
            }])
            .expect("remove");
        assert_eq!(store.load(1).expect("load"), vec![record(1, 0x1001)]);
        assert_eq!(store.load(2).expect("load"), vec![record(2, 0x1000)]);
        assert!(store.load(3).expect("load").is_empty());
    }

    #[test]
    fn record_serde_round_trip() {
        let r = record(7, 0x1234);
        let json = serde_json::to_string(&r).expect("serialize");
        assert!(json.contains(r#""state":"bound""#), "{json}");
        assert!(json.contains(r#""duid":"00030001020000000001""#), "{json}");
        assert_eq!(
            serde_json::from_str::<BindingRecord>(&json).expect("parse"),
            r
        );
    }
}
