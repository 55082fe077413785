//! brgd's state directory: what must survive a crash, a `kill -9` or a power cut.
//!
//! | file          | content                                                        |
//! |---------------|----------------------------------------------------------------|
//! | `model`       | the data model ([`cwmp::model::Model::save`] text)             |
//! | `events`      | undelivered events and TransferCompletes ([`EventQueue::save`]) |
//! | `acs-url`     | the ACS URL the last `0 BOOTSTRAP` was for                     |
//! | `cr-path`     | the random path of the Connection Request URL                  |
//! | `device-values` | read-only values the device set (identity, CR URL), to detect changes across restarts |
//! | `scheduled`   | pending ScheduleInforms (`<unix time> <hex CommandKey>`)       |
//! | `downloads/`  | files being downloaded; `pending-*` markers of accepted Downloads |
//!
//! Every file is replaced atomically ([`write_atomic`](crate::durable::write_atomic)): a reader sees the old content or
//! the new, never a mix, even across a power cut.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use cwmp::session::EventQueue;

use crate::durable::write_atomic;

/// The state directory and the last content written to each file (to skip identical
/// rewrites).
#[derive(Debug)]
pub struct StateDir {
    dir: PathBuf,
    last_model: Option<String>,
    last_events: Option<String>,
}

impl StateDir {
    /// Creates the directory if needed.
    pub fn open(dir: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir.join("downloads"))
            .with_context(|| format!("creating the state directory {}", dir.display()))?;
        Ok(Self {
            dir: dir.to_owned(),
            last_model: None,
            last_events: None,
        })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Where downloads are written.
    pub fn downloads(&self) -> PathBuf {
        self.dir.join("downloads")
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Reads a small text file; `None` when absent (other errors are logged and also `None`:
    /// the caller falls back to defaults).
    pub fn read(&self, name: &str) -> Option<String> {
        let path = self.file(name);
        match std::fs::read(&path) {
            Ok(bytes) => match String::from_utf8(bytes) {
                Ok(text) => Some(text),
                Err(_) => {
                    tracing::error!(file = %path.display(), "not UTF-8: ignored");
                    None
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => {
                tracing::error!(file = %path.display(), "cannot read: {e}");
                None
            }
        }
    }

    /// Whether a file exists (readable or not).
    pub fn exists(&self, name: &str) -> bool {
        self.file(name).exists()
    }

    /// Writes a small text file atomically.
    pub fn write(&self, name: &str, text: &str) -> anyhow::Result<()> {
        let path = self.file(name);
        write_atomic(&path, text.as_bytes()).with_context(|| format!("writing {}", path.display()))
    }

    /// Removes a file (absent is fine).
    pub fn remove(&self, name: &str) -> anyhow::Result<()> {
        let path = self.file(name);
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(e).with_context(|| format!("removing {}", path.display()))
            }
            _ => Ok(()),
        }
    }

    /// Stores the model's saved text if it changed since the last store.
    pub fn save_model(&mut self, text: String) -> anyhow::Result<()> {
        if self.last_model.as_deref() == Some(text.as_str()) {
            return Ok(());
        }
        self.write("model", &text)?;
        self.last_model = Some(text);
        Ok(())
    }

    /// Stores the event queue if it changed since the last store.
    pub fn save_events(&mut self, queue: &EventQueue) -> anyhow::Result<()> {
        let text = queue.save();
        if self.last_events.as_deref() == Some(text.as_str()) {
            return Ok(());
        }
        self.write("events", &text)?;
        self.last_events = Some(text);
        Ok(())
    }

    /// The stored event queue; empty when absent or unreadable (logged).
    pub fn load_events(&mut self) -> EventQueue {
        let Some(text) = self.read("events") else {
            return EventQueue::new();
        };
        match EventQueue::restore(&text) {
            Ok(queue) => {
                self.last_events = Some(text);
                queue
            }
            Err(e) => {
                tracing::error!("stored events unreadable ({e}): starting with none");
                EventQueue::new()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_and_leaves_no_temporary() {
        let dir = std::env::temp_dir().join(format!("brg-store-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut state = StateDir::open(&dir).expect("state dir");
        state
            .save_model("cwmp-model 1\nK a\n".into())
            .expect("write");
        state
            .save_model("cwmp-model 1\nK b\n".into())
            .expect("write");
        assert_eq!(state.read("model").as_deref(), Some("cwmp-model 1\nK b\n"));
        let names: Vec<_> = std::fs::read_dir(&dir)
            .expect("list")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        assert!(!names.iter().any(|n| n.contains(".tmp")), "{names:?}");
        assert_eq!(state.read("absent"), None);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
