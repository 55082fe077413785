//! Saving and restoring what must survive a restart: table instances and their next instance
//! numbers (never reused), writable parameter values, non-default attributes, ParameterKey.
//!
//! The format is line-based text, one record per line, so a file is easy to inspect and to
//! ship as factory defaults:
//!
//! ```text
//! cwmp-model 1
//! K <ParameterKey>
//! T Device.Bridging.Bridge. 4          table and its next instance number
//! I Device.Bridging.Bridge.1.          an instance
//! V Device.Bridging.Bridge.1.Enable true
//! A Device.ManagementServer.ConnectionRequestURL 2 Subscriber
//! ```
//!
//! Values are escaped (`\\`, `\n`, `\r`). Read-only values are runtime state and are not
//! saved; the application sets them again after a restore. Records that no longer fit the
//! schema (a parameter removed by a software update, a value now out of range) are skipped
//! and listed in the [`RestoreReport`]. Writing the text to storage atomically is the
//! application's job.
//!
//! # Journal
//! Saving the whole model after every change costs in proportion to the model. Instead the
//! model keeps a journal of what changed, in the same records, plus one for deletions:
//!
//! ```text
//! I Device.Bridging.Bridge.3.          AddObject (or the device adding an instance)
//! V Device.Bridging.Bridge.3.Enable 1  a stored writable value set
//! A Device.DeviceInfo.SoftwareVersion 2 attributes set (the default ones included)
//! K add-3                              the ParameterKey of a successful ACS write
//! D Device.Bridging.Bridge.1.          DeleteObject: the instance and all below it
//! ```
//!
//! [`Model::take_journal`] hands the records out after each change set: the application
//! appends them to its journal file, and after a restart [`Model::restore`]s its last
//! snapshot then [`Model::replay`]s the journal. Records are written only for writes that
//! succeeded (a rolled-back write leaves none). When the tree is replaced wholesale
//! ([`Model::restore`]), or more than [`MAX_PENDING_JOURNAL`] bytes of records pile up
//! untaken, the model asks for a snapshot ([`Journal::Snapshot`]) instead.

use std::fmt::Write as _;

use super::schema::{NodeKind, Origin};
use super::{
    Access, Attributes, Backend, Key, Model, Target, Tree, concrete, default_notification,
    table_path,
};
use crate::soap::Notification;

const HEADER: &str = "cwmp-model 1";

/// The most bytes of journal records the model holds for the application before it gives
/// up on them and asks for a snapshot instead (an application that never takes the journal
/// costs bounded memory).
pub const MAX_PENDING_JOURNAL: usize = 64 * 1024;

/// What changed in the persistent part of the model since the last
/// [`Model::take_journal`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Journal {
    /// Journal records (one per line, each ending in `\n`; see the module docs), in the
    /// order the changes happened; empty when nothing persistent changed.
    Records(String),
    /// Store the whole model ([`Model::save`]): the tree was replaced, or too much changed
    /// for records. Records taken before this one are superseded by the snapshot.
    Snapshot,
}

/// The records not yet taken.
#[derive(Debug, Default)]
pub(crate) struct Pending {
    records: String,
    snapshot: bool,
}

impl Pending {
    /// Nothing stored yet: the first thing to store is a snapshot.
    pub(crate) fn snapshot() -> Self {
        Self {
            records: String::new(),
            snapshot: true,
        }
    }

    /// Appends one record (a line without its newline).
    pub(crate) fn push(&mut self, record: std::fmt::Arguments<'_>) {
        if self.snapshot {
            return;
        }
        let _ = writeln!(self.records, "{record}");
        if self.records.len() > MAX_PENDING_JOURNAL {
            *self = Self::snapshot();
        }
    }
}

/// Why a saved model could not be read at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RestoreError {
    /// The text does not start with the `cwmp-model 1` header.
    #[error("not a saved model (missing the {HEADER:?} header)")]
    NotAModel,
}

/// The records [`Model::restore`] skipped, with the reason for each.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RestoreReport {
    /// `(line number, reason)` of each skipped record.
    pub skipped: Vec<(usize, String)>,
}

/// Escapes `\\`, newlines, carriage returns and tabs so text fits one tab-separated field.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out
}

/// Reverses [`escape`]; `None` for an unknown or dangling escape.
pub(crate) fn unescape(text: &str) -> Option<String> {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next()? {
            '\\' => out.push('\\'),
            'n' => out.push('\n'),
            'r' => out.push('\r'),
            't' => out.push('\t'),
            _ => return None,
        }
    }
    Some(out)
}

impl<B: Backend> Model<B> {
    /// The persistent part of the model as text (see the module docs for the format).
    pub fn save(&self) -> String {
        let schema = &self.schema;
        let mut out = format!("{HEADER}\nK {}\n", escape(&self.tree.parameter_key));
        for ((table, parent), state) in &self.tree.tables {
            let path = &schema.node(*table).path;
            let _ = writeln!(out, "T {} {}", table_path(path, parent), state.next);
            for n in &state.instances {
                let mut inst = parent.to_vec();
                inst.push(*n);
                let _ = writeln!(out, "I {}", concrete(path, &inst));
            }
        }
        for ((node, inst), value) in &self.tree.values {
            let NodeKind::Param { def, origin } = &schema.node(*node).kind else {
                continue;
            };
            if def.access == Access::ReadWrite && *origin == Origin::Stored {
                let path = concrete(&schema.node(*node).path, inst);
                let _ = writeln!(out, "V {path} {}", escape(&value.to_string()));
            }
        }
        for ((node, inst), attrs) in &self.tree.attrs {
            let path = concrete(&schema.node(*node).path, inst);
            let list = escape(&attrs.access_list.join(","));
            let _ = writeln!(out, "A {path} {} {list}", attrs.notification.code());
        }
        out
    }

    /// Replaces the tree with a saved one; pending value changes are dropped. Records that
    /// no longer fit the schema are skipped and reported.
    pub fn restore(&mut self, text: &str) -> Result<RestoreReport, RestoreError> {
        let mut lines = text.lines().enumerate();
        match lines.next() {
            Some((_, header)) if header.trim_end() == HEADER => {}
            _ => return Err(RestoreError::NotAModel),
        }
        self.tree = Tree::default();
        self.changes.clear();
        self.live_seen.clear();
        self.journal = Pending::snapshot();
        let mut report = RestoreReport::default();
        for (index, line) in lines {
            if line.trim().is_empty() {
                continue;
            }
            if let Err(reason) = self.restore_line(line) {
                report.skipped.push((index + 1, reason));
            }
        }
        Ok(report)
    }

    /// The persistent changes since the last call: records to append to a journal, or a
    /// request for a snapshot (see the module docs).
    pub fn take_journal(&mut self) -> Journal {
        let pending = std::mem::take(&mut self.journal);
        if pending.snapshot {
            Journal::Snapshot
        } else {
            Journal::Records(pending.records)
        }
    }

    /// Applies journal records (as [`Model::take_journal`] produced them) to the tree, in
    /// order, after [`Model::restore`] of the snapshot they follow. Records that do not fit
    /// (the schema changed, the instance is gone) are skipped and reported. Nothing is
    /// journaled.
    pub fn replay(&mut self, records: &str) -> RestoreReport {
        let mut report = RestoreReport::default();
        for (index, line) in records.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            if let Err(reason) = self.restore_line(line) {
                report.skipped.push((index + 1, reason));
            }
        }
        report
    }

    /// Journals a stored value if it is one [`Model::save`] keeps (writable, stored).
    pub(super) fn journal_value(&mut self, key: &Key) {
        let NodeKind::Param { def, origin } = &self.schema.node(key.0).kind else {
            return;
        };
        if def.access != Access::ReadWrite || *origin != Origin::Stored {
            return;
        }
        let Some(value) = self.tree.values.get(key) else {
            return;
        };
        let path = concrete(&self.schema.node(key.0).path, &key.1);
        let value = escape(&value.to_string());
        self.journal.push(format_args!("V {path} {value}"));
    }

    /// Journals a parameter's attributes (the default ones too: they replace others).
    pub(super) fn journal_attributes(&mut self, key: &Key, attrs: &Attributes) {
        let path = concrete(&self.schema.node(key.0).path, &key.1);
        let list = escape(&attrs.access_list.join(","));
        let code = attrs.notification.code();
        self.journal.push(format_args!("A {path} {code} {list}"));
    }

    /// Stores the ParameterKey of a successful ACS write, journaled.
    pub(super) fn set_parameter_key(&mut self, key: &str) {
        if self.tree.parameter_key != key {
            self.tree.parameter_key = key.to_owned();
            self.journal.push(format_args!("K {}", escape(key)));
        }
    }

    fn restore_line(&mut self, line: &str) -> Result<(), String> {
        let (tag, rest) = line.split_once(' ').unwrap_or((line, ""));
        match tag {
            "K" => {
                self.tree.parameter_key = unescape(rest).ok_or("bad escape")?;
                Ok(())
            }
            "T" => {
                let (path, next) = rest.split_once(' ').ok_or("missing next instance")?;
                let next: u32 = next.parse().map_err(|_| "bad next instance")?;
                let Some(Target::Table(node, inst)) = self.resolve(path) else {
                    return Err(format!("unknown table {path}"));
                };
                let state = self.tree.tables.entry((node, inst.into())).or_default();
                state.next = state.next.max(next);
                Ok(())
            }
            "I" => {
                let trimmed = rest.strip_suffix('.').ok_or("not an instance path")?;
                let (table, n) = trimmed.rsplit_once('.').ok_or("not an instance path")?;
                let n: u32 = n.parse().map_err(|_| "bad instance number")?;
                self.insert_instance(&format!("{table}."), Some(n))
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            }
            "D" => match self.resolve(rest) {
                Some(Target::Object(node, inst)) if rest.ends_with('.') && self.is_table(node) => {
                    self.remove_instance(node, &inst);
                    Ok(())
                }
                _ => Err(format!("no instance {rest}")),
            },
            "V" => {
                let (path, value) = rest.split_once(' ').unwrap_or((rest, ""));
                let value = unescape(value).ok_or("bad escape")?;
                let (node, inst) = self.stored_param(path).map_err(|e| e.to_string())?;
                if self.param_def(node).access != Access::ReadWrite {
                    return Err(format!("{path} is not writable"));
                }
                let value = self
                    .param_def(node)
                    .syntax
                    .parse(&value)
                    .map_err(|e| format!("{path}: {e}"))?;
                self.tree.values.insert((node, inst.into()), value);
                Ok(())
            }
            "A" => {
                let mut fields = rest.splitn(3, ' ');
                let path = fields.next().unwrap_or_default();
                let code: u8 = fields
                    .next()
                    .and_then(|c| c.parse().ok())
                    .ok_or("bad notification")?;
                let notification = Notification::from_code(code).ok_or("bad notification")?;
                let list = unescape(fields.next().unwrap_or_default()).ok_or("bad escape")?;
                let Some(Target::Param(node, inst)) = self.resolve(path) else {
                    return Err(format!("unknown parameter {path}"));
                };
                let key: Key = (node, inst.into());
                let access_list: Vec<String> = list
                    .split(',')
                    .filter(|e| !e.is_empty())
                    .map(str::to_owned)
                    .collect();
                let default = default_notification(self.param_def(node).active_notify);
                if notification == default && access_list.is_empty() {
                    self.tree.attrs.remove(&key);
                } else {
                    self.tree.attrs.insert(
                        key,
                        Attributes {
                            notification,
                            access_list,
                        },
                    );
                }
                Ok(())
            }
            other => Err(format!("unknown record {other:?}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_round_trips() {
        for text in [
            "",
            "plain",
            "a\\b",
            "line\nbreak\r",
            "\\n literally",
            " spaced ",
        ] {
            assert_eq!(unescape(&escape(text)).as_deref(), Some(text));
            assert!(!escape(text).contains('\n'));
        }
        assert_eq!(unescape("bad\\x"), None);
        assert_eq!(unescape("trailing\\"), None);
    }
}
