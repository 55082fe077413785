//! The record of devices the applier created, persisted in the state directory so that a
//! restarted brgd deletes the ones its model no longer asks for (and never touches devices
//! it did not create).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::durable::write_atomic;

/// The file name inside the state directory.
pub const RECORD_FILE: &str = "apply-record.json";

/// What kind of device the applier created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CreatedKind {
    /// A Linux bridge.
    Bridge,
    /// A kernel vxlan device.
    Vxlan,
}

/// Devices the applier created, by Linux name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// Name -> kind.
    pub created: BTreeMap<String, CreatedKind>,
}

/// Reading or writing the record failed.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// The file could not be read or written.
    #[error("{action} {path}")]
    Io {
        /// What was done.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// Why it failed.
        #[source]
        source: std::io::Error,
    },
    /// The record could not be serialised (nothing was written).
    #[error("serialising the applier record for {path}")]
    Serialize {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// The file is not a record.
    #[error("{path} is not a valid applier record")]
    Parse {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
}

impl Record {
    /// Loads the record from `dir` (an absent file is an empty record).
    pub fn load(dir: &Path) -> Result<Record, RecordError> {
        let path = dir.join(RECORD_FILE);
        match std::fs::read(&path) {
            Ok(bytes) => {
                serde_json::from_slice(&bytes).map_err(|source| RecordError::Parse { path, source })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Record::default()),
            Err(source) => Err(RecordError::Io {
                action: "reading",
                path,
                source,
            }),
        }
    }

    /// Writes the record to `dir` atomically ([`write_atomic`]: a crash leaves the old
    /// record or the new one). A record that cannot be serialised is an error; nothing is
    /// written.
    pub fn save(&self, dir: &Path) -> Result<(), RecordError> {
        let path = dir.join(RECORD_FILE);
        let bytes = serde_json::to_vec_pretty(self).map_err(|source| RecordError::Serialize {
            path: path.clone(),
            source,
        })?;
        std::fs::create_dir_all(dir).map_err(|source| RecordError::Io {
            action: "creating",
            path: dir.to_owned(),
            source,
        })?;
        write_atomic(&path, &bytes).map_err(|source| RecordError::Io {
            action: "writing",
            path,
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_absent_is_empty() {
        let dir = std::env::temp_dir().join(format!("brg-record-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(Record::load(&dir).expect("absent"), Record::default());
        let mut r = Record::default();
        r.created.insert("br0".into(), CreatedKind::Bridge);
        r.created.insert("vx1-1".into(), CreatedKind::Vxlan);
        r.save(&dir).expect("save");
        assert_eq!(Record::load(&dir).expect("load"), r);
        std::fs::write(dir.join(RECORD_FILE), b"{not json").expect("write");
        assert!(matches!(Record::load(&dir), Err(RecordError::Parse { .. })));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
