//! Persistence of lease state behind a trait, with an in-memory implementation for tests.
//!
//! One record per (home, address): the address's durable state. The engine emits
//! [`StoreOp`]s with every change; the caller applies them **before** it sends the reply that
//! goes with them, so that no client is ever told about a lease the store does not hold
//! (see [`Outcome::commit`](super::Outcome::commit)).

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::{Mutex, PoisonError};

use serde::{Deserialize, Serialize};

use super::types::{ClientId, HomeId, MacAddr, UnixTime};

/// The durable state of one address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeaseState {
    /// Leased to the client until `time`.
    Bound,
    /// The lease ran out at `time`; remembered so the client gets the address back.
    Expired,
    /// The client released it at `time`; remembered so the client gets the address back.
    Released,
    /// A client declined it (address conflict); out of the pool until `time`.
    Declined,
}

/// One address of one home, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseRecord {
    /// The home.
    pub home: HomeId,
    /// The address (the record's key within the home).
    pub ip: Ipv4Addr,
    /// Who holds (or last held, or declined) it.
    pub client_id: ClientId,
    /// That client's hardware address.
    pub mac: MacAddr,
    /// The state.
    pub state: LeaseState,
    /// UNIX seconds: end of the lease (bound), when it ended (expired, released), end of the
    /// quarantine (declined).
    pub time: UnixTime,
    /// The hostname the client sent (option 12), cleaned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
}

/// A change to apply to the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreOp {
    /// Insert or replace the record of `(record.home, record.ip)`.
    Put(LeaseRecord),
    /// Delete the record of `(home, ip)` if there is one.
    Remove {
        /// The home.
        home: HomeId,
        /// The address.
        ip: Ipv4Addr,
    },
}

/// The error a store backend reports, boxed.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A failed store operation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// Writing a record failed.
    #[error("storing the lease of {ip} in home {home}")]
    Put {
        /// The home.
        home: HomeId,
        /// The address.
        ip: Ipv4Addr,
        /// The backend's error.
        #[source]
        source: BoxError,
    },
    /// Deleting a record failed.
    #[error("removing the lease of {ip} in home {home}")]
    Remove {
        /// The home.
        home: HomeId,
        /// The address.
        ip: Ipv4Addr,
        /// The backend's error.
        #[source]
        source: BoxError,
    },
    /// Reading a home's records failed.
    #[error("loading the leases of home {home}")]
    Load {
        /// The home.
        home: HomeId,
        /// The backend's error.
        #[source]
        source: BoxError,
    },
}

/// Where lease records live. Methods take `&self` so one store can serve every home from
/// several tasks; implementations synchronise inside.
pub trait LeaseStore {
    /// Inserts or replaces the record of `(record.home, record.ip)`; durable when it returns.
    fn put(&self, record: &LeaseRecord) -> Result<(), StoreError>;
    /// Deletes the record of `(home, ip)`; not an error if there is none.
    fn remove(&self, home: HomeId, ip: Ipv4Addr) -> Result<(), StoreError>;
    /// Every record of `home`.
    fn load(&self, home: HomeId) -> Result<Vec<LeaseRecord>, StoreError>;
    /// Applies `ops` in order; a backend with transactions should override this to make the
    /// batch atomic (one commit, one fsync).
    fn apply(&self, ops: &[StoreOp]) -> Result<(), StoreError> {
        for op in ops {
            match op {
                StoreOp::Put(record) => self.put(record)?,
                StoreOp::Remove { home, ip } => self.remove(*home, *ip)?,
            }
        }
        Ok(())
    }
}

/// A [`LeaseStore`] in memory: for tests, and for running without persistence.
#[derive(Debug, Default)]
pub struct MemoryStore {
    records: Mutex<BTreeMap<(HomeId, Ipv4Addr), LeaseRecord>>,
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

    /// The record of `(home, ip)`.
    pub fn get(&self, home: HomeId, ip: Ipv4Addr) -> Option<LeaseRecord> {
        self.records
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&(home, ip))
            .cloned()
    }
}

impl LeaseStore for MemoryStore {
    fn put(&self, record: &LeaseRecord) -> Result<(), StoreError> {
        self.records
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert((record.home, record.ip), record.clone());
        Ok(())
    }

    fn remove(&self, home: HomeId, ip: Ipv4Addr) -> Result<(), StoreError> {
        self.records
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&(home, ip));
        Ok(())
    }

    fn load(&self, home: HomeId) -> Result<Vec<LeaseRecord>, StoreError> {
        let records = self.records.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(records
            .range((home, Ipv4Addr::UNSPECIFIED)..=(home, Ipv4Addr::BROADCAST))
            .map(|(_, record)| record.clone())
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(home: HomeId, last: u8) -> LeaseRecord {
        LeaseRecord {
            home,
            ip: Ipv4Addr::new(192, 168, 1, last),
            client_id: ClientId::Mac(MacAddr([2, 0, 0, 0, 0, last])),
            mac: MacAddr([2, 0, 0, 0, 0, last]),
            state: LeaseState::Bound,
            time: UnixTime(1000),
            hostname: Some("host".into()),
        }
    }

    #[test]
    fn memory_store_keeps_homes_apart() {
        let store = MemoryStore::new();
        store
            .apply(&[
                StoreOp::Put(record(1, 100)),
                StoreOp::Put(record(2, 100)),
                StoreOp::Put(record(1, 101)),
            ])
            .expect("memory store cannot fail");
        assert_eq!(store.len(), 3);
        assert_eq!(store.load(1).expect("load").len(), 2);
        store
            .apply(&[StoreOp::Remove {
                home: 1,
                ip: Ipv4Addr::new(192, 168, 1, 100),
            }])
            .expect("remove");
        assert_eq!(store.load(1).expect("load"), vec![record(1, 101)]);
        assert_eq!(store.load(2).expect("load"), vec![record(2, 100)]);
        assert!(store.load(3).expect("load").is_empty());
    }

    #[test]
    fn record_serde_round_trip() {
        let r = record(7, 150);
        let json = serde_json::to_string(&r).expect("serialize");
        assert!(json.contains(r#""state":"bound""#), "{json}");
        assert_eq!(
            serde_json::from_str::<LeaseRecord>(&json).expect("parse"),
            r
        );
    }
}
