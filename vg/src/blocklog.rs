//! The NAT port-block log (RFC 6888 REQ-12/14, RFC 7422): one JSON line per block
//! allocation and per release, appended to a file an operator ships to the log collector
//! (default `<state-dir>/nat-blocks.log`). Destinations are never logged.
//!
//! ```text
//! {"event":"alloc","subscriber":7,"lsl":"vlan:107","public_ip":"198.51.100.3","ports":"1536-2047","first_port":1536,"last_port":2047,"start":"2026-11-25T14:30:00Z","start_unix":1795962600,"end":null,"end_unix":null}
//! {"event":"release","subscriber":7,"lsl":"vlan:107","public_ip":"198.51.100.3","ports":"1536-2047","first_port":1536,"last_port":2047,"start":"2026-11-25T14:30:00Z","start_unix":1795962600,"end":"2026-11-25T15:02:11Z","end_unix":1795964531}
//! ```
//!
//! A release carries the start time of the allocation it ends, so that each release line
//! alone says who held which ports when. Without a file (`BlockLog::disabled`), records go
//! to the `tracing` log under [`crate::nat::LOG_TARGET`] in the allocator's text form.

use std::{
    fs::{File, OpenOptions},
    io::{BufWriter, Write as _},
    net::Ipv4Addr,
    path::{Path, PathBuf},
};

use serde::{Deserialize, Serialize};

use crate::nat::{BlockAction, BlockEvent, UnixTime};

/// One line of the block log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockRecord {
    /// `alloc` or `release`.
    pub event: BlockAction,
    /// The subscriber id.
    pub subscriber: u32,
    /// Its LSL (the private-side identity).
    pub lsl: String,
    /// The public address.
    pub public_ip: Ipv4Addr,
    /// `first-last`.
    pub ports: String,
    /// First port.
    pub first_port: u16,
    /// Last port (inclusive).
    pub last_port: u16,
    /// When the subscriber got the block (RFC 3339, UTC).
    pub start: String,
    /// The same, UNIX seconds.
    pub start_unix: u64,
    /// When it lost it (releases only).
    pub end: Option<String>,
    /// The same, UNIX seconds.
    pub end_unix: Option<u64>,
}

impl BlockRecord {
    /// The record of `ev`; `start` is the allocation time of a released block.
    pub fn new(ev: &BlockEvent, start: Option<UnixTime>) -> Self {
        let (start, end) = match ev.action {
            BlockAction::Alloc => (ev.time, None),
            BlockAction::Release => (start.unwrap_or_default(), Some(ev.time)),
        };
        Self {
            event: ev.action,
            subscriber: ev.subscriber.0,
            lsl: ev.private_id.clone(),
            public_ip: ev.address,
            ports: format!("{}-{}", ev.first_port, ev.last_port),
            first_port: ev.first_port,
            last_port: ev.last_port,
            start: start.rfc3339().to_string(),
            start_unix: start.0,
            end: end.map(|t| t.rfc3339().to_string()),
            end_unix: end.map(|t| t.0),
        }
    }
}

/// The log file (or none: records then go to `tracing` only).
pub struct BlockLog {
    out: Option<(PathBuf, BufWriter<File>)>,
    failed: bool,
}

impl BlockLog {
    /// Appends to `path` (created if missing).
    pub fn open(path: &Path) -> std::io::Result<Self> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(Self {
            out: Some((path.to_owned(), BufWriter::new(file))),
            failed: false,
        })
    }

    /// No file.
    pub fn disabled() -> Self {
        Self {
            out: None,
            failed: false,
        }
    }

    /// Writes one record (buffered: call [`BlockLog::flush`] at the end of the operation).
    /// Without a file, the record goes to the `tracing` log instead.
    pub fn write(&mut self, ev: &BlockEvent, start: Option<UnixTime>) {
        let Some((path, out)) = &mut self.out else {
            ev.log();
            return;
        };
        let record = BlockRecord::new(ev, start);
        let written = serde_json::to_writer(&mut *out, &record)
            .map_err(std::io::Error::from)
            .and_then(|()| out.write_all(b"\n"));
        if let Err(err) = written {
            if !self.failed {
                tracing::error!(path = %path.display(), error = %err, "writing the NAT block log failed");
            }
            self.failed = true;
        }
    }

    /// Pushes buffered records to the file.
    pub fn flush(&mut self) {
        if let Some((path, out)) = &mut self.out
            && let Err(err) = out.flush()
        {
            tracing::error!(path = %path.display(), error = %err, "flushing the NAT block log failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nat::SubscriberId;

    #[test]
    fn a_release_line_carries_its_start_and_end() {
        let ev = BlockEvent {
            time: UnixTime(1_700_000_100),
            action: BlockAction::Release,
            subscriber: SubscriberId(7),
            private_id: "vlan:107".into(),
            address: Ipv4Addr::new(198, 51, 100, 3),
            first_port: 1536,
            last_port: 2047,
        };
        let r = BlockRecord::new(&ev, Some(UnixTime(1_700_000_000)));
        let line = serde_json::to_string(&r).unwrap();
        assert!(line.contains(r#""event":"release""#), "{line}");
        assert!(line.contains(r#""ports":"1536-2047""#), "{line}");
        assert_eq!(r.start_unix, 1_700_000_000);
        assert_eq!(r.end_unix, Some(1_700_000_100));
        assert_eq!(r.end.as_deref(), Some("2023-11-14T22:15:00Z"));
        assert_eq!(serde_json::from_str::<BlockRecord>(&line).unwrap(), r);
    }
}
