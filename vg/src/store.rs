//! The embedded, crash-safe store: one redb file (copy-on-write B-trees, a commit is
//! durable when it returns). It keeps every DHCP lease vgd acknowledged, so that a restart
//! (or `kill -9`) loses none; the DHCP engine persists before it replies
//! ([`crate::dhcp::Outcome::commit`]). Behind [`LeaseStore`], so that a shared store can
//! replace it when several vG instances share subscribers.
//!
//! Layout: table `leases`, key `(home, IPv4 address as u32)`, value the record as JSON (a
//! format that survives adding fields).

use std::{net::Ipv4Addr, path::Path};

use redb::{Database, ReadableDatabase as _, TableDefinition};

use crate::dhcp::{HomeId, LeaseRecord, LeaseStore, StoreError, StoreOp};

const LEASES: TableDefinition<(u32, u32), &[u8]> = TableDefinition::new("leases");

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

/// The redb store.
pub struct RedbStore {
    db: Database,
}

impl RedbStore {
    /// Opens (or creates) the store at `path`.
    pub fn open(path: &Path) -> Result<Self, OpenError> {
        let err = |source: redb::Error| OpenError {
            path: path.display().to_string(),
            source,
        };
        let db = Database::create(path).map_err(|e| err(e.into()))?;
        // Create the table, so that reads of an empty store find it.
        let txn = db.begin_write().map_err(|e| err(e.into()))?;
        txn.open_table(LEASES).map_err(|e| err(e.into()))?;
        txn.commit().map_err(|e| err(e.into()))?;
        Ok(Self { db })
    }

    fn write(&self, ops: &[StoreOp]) -> Result<(), redb::Error> {
        let txn = self.db.begin_write()?;
        {
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
        txn.commit()?;
        Ok(())
    }
}

fn boxed(e: redb::Error) -> crate::dhcp::BoxError {
    Box::new(e)
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
}
