//! brgd's state directory: what must survive a crash, a `kill -9` or a power cut.
//!
//! | file            | content                                                      |
//! |-----------------|--------------------------------------------------------------|
//! | `model`         | a snapshot of the data model ([`Model::save`] text)          |
//! | `model.journal` | the model's changes since that snapshot (see below)          |
//! | `events`        | undelivered events and TransferCompletes ([`EventQueue::save`]) |
//! | `acs-url`       | the ACS URL the last `0 BOOTSTRAP` was for                   |
//! | `cr-path`       | the random path of the Connection Request URL                |
//! | `device-values` | read-only values the device set (identity, CR URL), to detect changes across restarts |
//! | `scheduled`     | pending ScheduleInforms (`<unix time> <hex CommandKey>`)     |
//! | `downloads/`    | files being downloaded; `pending-*` markers of accepted Downloads |
//!
//! Every file but the journal is replaced atomically ([`write_atomic`]): a reader sees the
//! old content or the new, never a mix, even across a power cut.
//!
//! # The model: snapshot and journal
//! Each change of the model costs what the change is, not what the model is: its records
//! ([`Model::take_journal`]) are appended to `model.journal` and synced (one `fdatasync`)
//! before the ACS hears the answer. Once the journal outgrows [`COMPACT_AT`] or the
//! snapshot, whichever is larger, the model is written as a new snapshot and the journal
//! starts again, so the bytes written per change stay within a small constant of the
//! change's own records (amortised) and a restart replays a bounded journal.
//!
//! ```text
//! model.journal:  cwmp-journal 1 <snapshot id>\n        the snapshot it follows
//!                 R <n> <sum>\n<n bytes of records>     one per change set, <sum> of the records
//!                 R <n> <sum>\n...
//! ```
//!
//! The snapshot id and the sums are the first 8 bytes of SHA-256, in hex. At start the
//! snapshot is restored and the journal replayed if it follows that snapshot (a journal of
//! an older snapshot is what a crash between writing a snapshot and starting the new journal
//! leaves: the snapshot already holds its records). Replay stops at the first record that
//! is incomplete or does not match its sum: a torn last record (a crash mid-append) is
//! ignored with a warning; its change set was never acknowledged to the ACS.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use cwmp::model::{Backend, Journal, Model, RestoreError, RestoreReport};
use cwmp::session::EventQueue;
use sha2::{Digest as _, Sha256};

use crate::durable::{self, write_atomic};

/// The journal is folded into a new snapshot once it is larger than this and than the
/// snapshot.
pub const COMPACT_AT: u64 = 64 * 1024;

const MODEL: &str = "model";
const JOURNAL: &str = "model.journal";
const JOURNAL_HEADER: &str = "cwmp-journal 1";

/// The state directory and the last content written to each file (to skip identical
/// rewrites).
#[derive(Debug)]
pub struct StateDir {
    dir: PathBuf,
    last_events: Option<String>,
    /// The journal, open for appending; `None` until a snapshot has started one (or after
    /// a failed write: the next change writes a snapshot).
    journal: Option<std::fs::File>,
    journal_len: u64,
    snapshot_len: u64,
    /// Bytes written to files so far (content, not metadata).
    written: u64,
}

/// First 8 bytes of SHA-256, in hex: a snapshot's id and a record's sum.
fn short_hash(bytes: &[u8]) -> String {
    super::digest::hex(&Sha256::digest(bytes)[..8])
}

/// One journal record: its header line and the records.
fn frame(records: &str) -> String {
    format!(
        "R {} {}\n{records}",
        records.len(),
        short_hash(records.as_bytes())
    )
}

/// The change sets of a journal that follows the snapshot `id`, in order; the warning to log
/// when it does not follow it or ends in a torn or corrupt record.
fn parse_journal<'a>(text: &'a str, id: &str) -> (Vec<&'a str>, Option<String>) {
    let mut sets = Vec::new();
    let Some((header, mut rest)) = text.split_once('\n') else {
        return (sets, Some("no header: ignored".to_owned()));
    };
    if header != format!("{JOURNAL_HEADER} {id}") {
        return (
            sets,
            Some("it follows another snapshot (a compaction was interrupted): ignored".into()),
        );
    }
    let mut offset = header.len() + 1;
    while !rest.is_empty() {
        let record = rest.split_once('\n').and_then(|(line, after)| {
            let mut fields = line.strip_prefix("R ")?.split(' ');
            let len: usize = fields.next()?.parse().ok()?;
            let sum = fields.next()?;
            let payload = after.get(..len)?;
            (fields.next().is_none() && short_hash(payload.as_bytes()) == sum)
                .then(|| (payload, &after[len..], line.len() + 1 + len))
        });
        let Some((payload, after, used)) = record else {
            let warning = format!(
                "the record at byte {offset} is torn or corrupt: it and the {} bytes after it are ignored",
                rest.len()
            );
            return (sets, Some(warning));
        };
        sets.push(payload);
        rest = after;
        offset += used;
    }
    (sets, None)
}

/// Logs a restore's skipped records, the first few of them.
pub fn log_skipped(what: &str, report: &RestoreReport) {
    const SHOWN: usize = 16;
    for (line, reason) in report.skipped.iter().take(SHOWN) {
        tracing::warn!(line, "{what}: record skipped: {reason}");
    }
    if report.skipped.len() > SHOWN {
        tracing::warn!(
            "{what}: {} more records skipped",
            report.skipped.len() - SHOWN
        );
    }
}

impl StateDir {
    /// Creates the directory if needed.
    pub fn open(dir: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir.join("downloads"))
            .with_context(|| format!("creating the state directory {}", dir.display()))?;
        Ok(Self {
            dir: dir.to_owned(),
            last_events: None,
            journal: None,
            journal_len: 0,
            snapshot_len: 0,
            written: 0,
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
    pub fn write(&mut self, name: &str, text: &str) -> anyhow::Result<()> {
        let path = self.file(name);
        write_atomic(&path, text.as_bytes())
            .with_context(|| format!("writing {}", path.display()))?;
        self.written += text.len() as u64;
        Ok(())
    }

    /// Bytes written to files so far.
    pub fn bytes_written(&self) -> u64 {
        self.written
    }

    /// Restores the stored model into `model`: the snapshot, then the journal that follows
    /// it. `Ok(None)` when there is no readable snapshot (logged unless absent); the error
    /// when the snapshot is not a model. Problems with the journal are logged, never fatal.
    pub fn load_model<B: Backend>(
        &mut self,
        model: &mut Model<B>,
    ) -> Result<Option<RestoreReport>, RestoreError> {
        let Some(snapshot) = self.read(MODEL) else {
            return Ok(None);
        };
        let report = model.restore(&snapshot)?;
        let Some(journal) = self.read(JOURNAL) else {
            return Ok(Some(report));
        };
        let (sets, warning) = parse_journal(&journal, &short_hash(snapshot.as_bytes()));
        if let Some(warning) = warning {
            tracing::warn!(file = %self.file(JOURNAL).display(), "model journal: {warning}");
        }
        let mut skipped = RestoreReport::default();
        for records in &sets {
            skipped.skipped.extend(model.replay(records).skipped);
        }
        log_skipped("model journal", &skipped);
        tracing::debug!(changes = sets.len(), "model journal replayed");
        Ok(Some(report))
    }

    /// Makes the model's changes since the last call durable: their records appended to the
    /// journal, or a new snapshot (see the module docs).
    pub fn persist_model<B: Backend>(&mut self, model: &mut Model<B>) -> anyhow::Result<()> {
        let records = match model.take_journal() {
            Journal::Records(records) if self.journal.is_some() => records,
            // Nothing stored yet, the tree replaced, or the last write failed.
            Journal::Records(_) | Journal::Snapshot => return self.write_snapshot(&model.save()),
        };
        if !records.is_empty() {
            let framed = frame(&records);
            let appended = match self.journal.as_mut() {
                Some(file) => durable::append(file, framed.as_bytes()),
                None => Ok(()),
            };
            if let Err(e) = appended {
                // The journal may now end in a torn record: start over from a snapshot.
                self.journal = None;
                return Err(e)
                    .with_context(|| format!("appending to {}", self.file(JOURNAL).display()));
            }
            self.journal_len += framed.len() as u64;
            self.written += framed.len() as u64;
        }
        if self.journal_len > COMPACT_AT.max(self.snapshot_len) {
            self.write_snapshot(&model.save())?;
        }
        Ok(())
    }

    /// Writes `text` as the snapshot and starts an empty journal after it.
    fn write_snapshot(&mut self, text: &str) -> anyhow::Result<()> {
        self.journal = None;
        self.write(MODEL, text)?;
        self.snapshot_len = text.len() as u64;
        let header = format!("{JOURNAL_HEADER} {}\n", short_hash(text.as_bytes()));
        self.write(JOURNAL, &header)?;
        let path = self.file(JOURNAL);
        let file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        self.journal = Some(file);
        self.journal_len = header.len() as u64;
        Ok(())
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

    use cwmp::model::NoBackend;

    /// A directory of its own, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(tag: &str) -> Self {
            let dir = std::env::temp_dir().join(format!("brg-{tag}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            Self(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn brg_model() -> Model<NoBackend> {
        Model::new(cwmp::tr181::brg().expect("schema"), NoBackend)
    }

    /// The model a fresh start of brgd would load from `dir`.
    fn reload(dir: &Path) -> String {
        let mut model = brg_model();
        let report = StateDir::open(dir)
            .expect("state dir")
            .load_model(&mut model)
            .expect("a model")
            .expect("stored");
        assert!(report.skipped.is_empty(), "{report:?}");
        model.save()
    }

    /// A crash (no clean shutdown, no compaction) loses nothing acknowledged; a torn last
    /// record is ignored, a corrupt one ends the replay, and a journal that follows an older
    /// snapshot is not replayed over the newer one.
    #[test]
    fn journal_replays_after_a_crash() {
        let dir = TempDir::new("journal");
        let mut state = StateDir::open(&dir.0).expect("state dir");
        let mut model = brg_model();
        state.persist_model(&mut model).expect("first snapshot");
        let mut texts = vec![model.save()];
        model
            .add_object("Device.Bridging.Bridge.", "k1")
            .expect("add");
        state.persist_model(&mut model).expect("persist");
        texts.push(model.save());
        let enable = cwmp::soap::ParameterValue::new(
            "Device.Bridging.Bridge.1.Enable",
            "true",
            cwmp::soap::ValueType::Boolean,
        );
        model
            .set_parameter_values(&[enable], "k2\nwith a newline")
            .expect("spv");
        state.persist_model(&mut model).expect("persist");
        texts.push(model.save());
        model
            .add_object("Device.Bridging.Bridge.", "k3")
            .expect("add");
        state.persist_model(&mut model).expect("persist");
        texts.push(model.save());
        drop(state);
        assert_eq!(reload(&dir.0), texts[3], "everything replayed");

        let journal = dir.0.join(JOURNAL);
        let full = std::fs::read(&journal).expect("journal");
        std::fs::write(&journal, &full[..full.len() - 3]).expect("tear the last record");
        assert_eq!(reload(&dir.0), texts[2], "the torn record is ignored");
        let text = String::from_utf8(full.clone()).expect("text");
        let (sets, warning) =
            parse_journal(&text[..text.len() - 3], &short_hash(texts[0].as_bytes()));
        assert_eq!(sets.len(), 2);
        assert!(warning.is_some_and(|w| w.contains("torn")));

        let mut corrupt = full.clone();
        // The byte before the second record's header: the first record's last.
        let second = text
            .match_indices("\nR ")
            .nth(1)
            .expect("a second record")
            .0;
        corrupt[second] ^= 0x20;
        let (sets, warning) = parse_journal(
            std::str::from_utf8(&corrupt).expect("text"),
            &short_hash(texts[0].as_bytes()),
        );
        assert!(sets.is_empty());
        assert!(
            warning.as_deref().is_some_and(|w| w.contains("at byte 32")),
            "{warning:?}"
        );
        std::fs::write(&journal, &corrupt).expect("corrupt the first record");
        assert_eq!(reload(&dir.0), texts[0], "nothing after a corrupt record");

        std::fs::write(&journal, &full).expect("the journal again");
        std::fs::write(dir.0.join(MODEL), &texts[3]).expect("a newer snapshot");
        assert_eq!(
            reload(&dir.0),
            texts[3],
            "an older snapshot's journal is not replayed"
        );

        let names: Vec<_> = std::fs::read_dir(&dir.0)
            .expect("list")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        assert!(!names.iter().any(|n| n.contains(".tmp")), "{names:?}");
    }

    /// Issue 15: persisting one AddObject costs the same bytes whether the model is nearly
    /// empty or full (before: the whole model was rewritten, twice fsynced, each time).
    #[test]
    fn bytes_written_per_add_object_do_not_grow_with_the_model() {
        let dir = TempDir::new("store-cost");
        let mut state = StateDir::open(&dir.0).expect("state dir");
        let mut model = brg_model();
        state.persist_model(&mut model).expect("persist");
        // Bytes written by persisting one AddObject of a VLAN in bridge 1.
        let one_add = |model: &mut Model<NoBackend>, state: &mut StateDir| {
            let (n, _) = model
                .add_object("Device.Bridging.Bridge.1.VLAN.", "key")
                .expect("room for a VLAN");
            let before = state.bytes_written();
            state.persist_model(model).expect("persist");
            let added = state.bytes_written() - before;
            let _ = model.delete_object(&format!("Device.Bridging.Bridge.1.VLAN.{n}."), "key");
            state.persist_model(model).expect("persist");
            added
        };
        model
            .add_object("Device.Bridging.Bridge.", "key")
            .expect("bridge");
        state.persist_model(&mut model).expect("persist");
        let small = one_add(&mut model, &mut state);
        // Fill the model: every bridge with every port, VLAN and VLAN port it may have.
        let (b, p, v, vp) = (
            cwmp::tr181::MAX_BRIDGES,
            cwmp::tr181::MAX_BRIDGE_PORTS,
            cwmp::tr181::MAX_BRIDGE_VLANS,
            cwmp::tr181::MAX_BRIDGE_VLAN_PORTS,
        );
        for bridge in 1..=b {
            if bridge > 1 {
                model
                    .add_object("Device.Bridging.Bridge.", "key")
                    .expect("bridge");
            }
            for (table, max) in [("Port", p), ("VLAN", v - 1), ("VLANPort", vp)] {
                for _ in 0..max {
                    let table = format!("Device.Bridging.Bridge.{bridge}.{table}.");
                    model.add_object(&table, "key").expect("room");
                }
            }
            state.persist_model(&mut model).expect("persist");
        }
        let full_size = model.save().len();
        assert!(full_size > 30_000, "{full_size}");
        let large = one_add(&mut model, &mut state);
        assert!(
            small < 1024,
            "{small} bytes for one AddObject in a small model"
        );
        assert!(
            large <= small + 16,
            "{large} bytes for one AddObject in a model of {full_size} bytes, {small} in a small one"
        );
        // Compaction included: 1,000 more AddObjects and DeleteObjects (more than one
        // compaction's worth) cost a bounded amount each on average.
        let before = state.bytes_written();
        for _ in 0..1000 {
            one_add(&mut model, &mut state);
        }
        let average = (state.bytes_written() - before) / 2000;
        assert!(
            average < 3 * small,
            "{average} bytes per write on average, compaction included ({small} without)"
        );
        let journal = std::fs::metadata(dir.0.join(JOURNAL))
            .expect("journal")
            .len();
        assert!(
            journal <= COMPACT_AT.max(full_size as u64) + 1024,
            "{journal}"
        );
        assert_eq!(reload(&dir.0), model.save());
    }
}
