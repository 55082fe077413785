//! The typed data-model tree: objects, tables with instance numbers, parameters with types,
//! attributes (notification, access list) and ParameterKey, and the operations the CPE RPCs
//! need (TR-069 Annex A.3.2).
//!
//! ```text
//!  Schema (shared, immutable)          Model (one per managed device / per home)
//!  Device.                             tables:  Bridging.Bridge.{i}  -> {1, 3}, next 4
//!  Device.Bridging.Bridge.{i}.Enable   values:  Bridging.Bridge.1.Enable = true
//!  Device.DeviceInfo.UpTime  (live)    attrs:   ManagementServer.ConnectionRequestURL: active
//!                                      changes: pending passive/active value changes
//!                                      backend: B (reads live values, validates and applies)
//! ```
//!
//! The embedding application describes its objects with a [`Schema`] and implements
//! [`Backend`] for what it owns:
//! - **stored** parameters live in the tree: writable configuration set by the ACS, and
//!   read-only state the application updates with [`Model::set`] (which drives value-change
//!   notification);
//! - **live** parameters ([`Source::Live`]) are read from [`Backend::read`] on every access
//!   (uptime, counters);
//! - `...NumberOfEntries` and `ManagementServer.ParameterKey` are computed by the model.
//!
//! Every ACS write (SetParameterValues, AddObject, DeleteObject) is atomic: the model checks
//! names, access, types and values, applies the change set to the tree, asks
//! [`Backend::validate`] to accept the combination, then calls [`Backend::apply`] once with
//! the whole change set. Any fault on the way restores the tree as it was and leaves the
//! ParameterKey unchanged.
//!
//! # Notification (TR-069 3.2.1, A.3.2.4)
//! A parameter whose Notification attribute is passive (1) or active (2) and whose value
//! changes *other than by the ACS* is remembered until an Inform carrying it is acknowledged;
//! [`Model::has_active_changes`] tells the application to open a session with
//! `4 VALUE CHANGE`. Live parameters are compared on [`Model::poll_live`]. `activeNotify`
//! facets are enforced: `forceEnabled` parameters stay active, `canDeny`/`willDeny`
//! parameters refuse active notification (9009). Lightweight notification (3-6) is not
//! supported (9009).
//!
//! No input makes any operation panic: malformed paths are unknown names (9005).

pub(crate) mod persist;
mod schema;
mod value;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;

pub use persist::{Journal, MAX_PENDING_JOURNAL, RestoreError, RestoreReport};
pub use schema::{
    Access, ActiveNotify, ObjectDef, PARAMETER_KEY_PATH, ParamDef, Schema, SchemaBuilder,
    SchemaError, Source,
};
pub use value::{BaseType, ListSyntax, Range, Syntax, Value, ValueError};

use crate::fault::{Fault, FaultCode, SetParameterValuesFault};
use crate::soap::{
    Notification, ParameterAttribute, ParameterInfo, ParameterValue, SetParameterAttribute, Status,
};
use schema::{INSTANCE, NodeId, NodeKind, Origin};

/// The longest ParameterKey TR-069 allows (A.3.2.1).
pub const MAX_PARAMETER_KEY_LEN: usize = 32;

/// Where a parameter sits: its concrete path, its schema path and its instance numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PathRef<'a> {
    /// Concrete path, e.g. `Device.Ethernet.Interface.2.Status`.
    pub path: &'a str,
    /// Schema path, e.g. `Device.Ethernet.Interface.{i}.Status`.
    pub schema_path: &'a str,
    /// Instance numbers along the path, outermost first, e.g. `[2]`.
    pub instances: &'a [u32],
}

/// One element of a change set handed to [`Backend::validate`] and [`Backend::apply`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Concrete path: a parameter, or an instance ending in `.` for adds and deletes.
    pub path: String,
    /// Schema path (`Device.Bridging.Bridge.{i}.Enable`, `Device.Bridging.Bridge.{i}.`).
    pub schema_path: Arc<str>,
    /// Instance numbers along the path, outermost first.
    pub instances: Vec<u32>,
    /// What changed.
    pub kind: ChangeKind,
}

/// What a [`Change`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangeKind {
    /// A parameter was set (possibly to the value it already had).
    Set {
        /// The value before.
        old: Value,
        /// The value now.
        new: Value,
    },
    /// An instance was created with default values.
    Added,
    /// An instance and everything below it was removed.
    Deleted,
}

/// The application side of a [`Model`]: live values, and the hooks around every ACS write.
///
/// Every method has a default, so a backend implements only what it needs.
pub trait Backend {
    /// Reads a live parameter (one declared with [`Source::Live`]).
    fn read(&self, param: PathRef<'_>) -> Result<Value, Fault> {
        let _ = param;
        Err(Fault::new(FaultCode::InternalError))
    }

    /// Accepts or rejects a change set before it is applied; `view` shows the tree with the
    /// changes in place. Reject a bad combination with
    /// [`Fault::set_parameter_values`] (per-parameter 9007s) or any other fault.
    fn validate(&self, view: &View<'_>, changes: &[Change]) -> Result<(), Fault> {
        let _ = (view, changes);
        Ok(())
    }

    /// Applies a validated change set to the device; called once per successful
    /// SetParameterValues, AddObject or DeleteObject. An error rolls the tree back and is
    /// sent to the ACS; [`Status::Pending`] tells the ACS the change takes effect later.
    fn apply(&mut self, view: &View<'_>, changes: &[Change]) -> Result<Status, Fault> {
        let _ = (view, changes);
        Ok(Status::Applied)
    }

    /// The whole tree was replaced without a change set (restored from storage at start,
    /// or reset to factory defaults): bring the device in line with `view`, as far as it
    /// can be applied. Nothing is refused here; problems are the backend's to report.
    fn restored(&self, view: &View<'_>) {
        let _ = view;
    }
}

/// A backend that owns nothing: no live parameters, every change accepted.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoBackend;

impl Backend for NoBackend {}

/// Read access to a model's tree for the [`Backend`] hooks (live parameters are not
/// visible here; the backend owns them).
#[derive(Debug, Clone, Copy)]
pub struct View<'a> {
    schema: &'a Schema,
    tree: &'a Tree,
}

impl View<'_> {
    /// The value of a stored or computed parameter; `None` for unknown and live parameters.
    pub fn get(&self, path: &str) -> Option<Value> {
        match resolve(self.schema, self.tree, path)? {
            Target::Param(node, inst) => match origin(self.schema, node) {
                Origin::Live => None,
                _ => Some(read_stored(self.schema, self.tree, node, &inst)),
            },
            _ => None,
        }
    }

    /// The instance numbers of a table (`Device.Bridging.Bridge.` or
    /// `Device.Bridging.Bridge.1.Port.`), ascending; empty when the table is unknown.
    pub fn instances(&self, table_path: &str) -> Vec<u32> {
        match resolve(self.schema, self.tree, table_path) {
            Some(Target::Table(node, inst)) => self.tree.instances(node, &inst),
            _ => Vec::new(),
        }
    }

    /// Whether a parameter, object, table or instance path exists.
    pub fn exists(&self, path: &str) -> bool {
        resolve(self.schema, self.tree, path).is_some()
    }
}

/// `(node, instance numbers)`: a parameter or object at one place in the tree.
type Key = (NodeId, Box<[u32]>);

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct TableState {
    instances: BTreeSet<u32>,
    /// The next instance number to hand out; numbers are never reused (TR-069 A.3.2.6).
    next: u32,
}

/// A parameter's attributes (TR-069 A.3.2.4).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Attributes {
    notification: Notification,
    access_list: Vec<String>,
}

/// Everything an ACS write may change, cloned before the write so it can be rolled back.
#[derive(Debug, Clone, Default)]
struct Tree {
    /// `(table node, parent instance numbers)` -> its instances.
    tables: BTreeMap<Key, TableState>,
    /// `(parameter node, instance numbers)` -> value; absent means the default.
    values: BTreeMap<Key, Value>,
    /// Non-default attributes.
    attrs: BTreeMap<Key, Attributes>,
    parameter_key: String,
}

impl Tree {
    fn instances(&self, table: NodeId, parent: &[u32]) -> Vec<u32> {
        self.tables
            .get(&(table, parent.into()))
            .map(|t| t.instances.iter().copied().collect())
            .unwrap_or_default()
    }

    fn has_instance(&self, table: NodeId, parent: &[u32], n: u32) -> bool {
        self.tables
            .get(&(table, parent.into()))
            .is_some_and(|t| t.instances.contains(&n))
    }
}

/// A pending value change: its sequence number, and whether it asks for an active session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Pending {
    seq: u64,
    active: bool,
}

/// What a path names.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    /// A single object or a table instance: node and instance numbers.
    Object(NodeId, Vec<u32>),
    /// A table itself (`Device.Bridging.Bridge.`): table node and the parent's instances.
    Table(NodeId, Vec<u32>),
    /// A parameter.
    Param(NodeId, Vec<u32>),
}

/// An entry of a tree walk.
#[derive(Debug)]
enum Item {
    Object { path: String, writable: bool },
    Param { node: NodeId, instances: Vec<u32> },
}

/// The opaque record of which value changes an Inform carried.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct InformedChanges(Vec<(Key, u64)>);

/// Why a local (application-side) model operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ModelError {
    /// No such parameter, object, table or instance.
    #[error("{0} does not exist")]
    NotFound(String),
    /// The path exists but is not of the kind the operation needs.
    #[error("{path} is not {expected}")]
    WrongKind {
        /// The path.
        path: String,
        /// What was needed: `a parameter`, `a table`, `an instance`.
        expected: &'static str,
    },
    /// Live and computed parameters cannot be set.
    #[error("{0} is not stored in the model")]
    NotStored(String),
    /// The value does not fit the parameter's syntax.
    #[error("invalid value for {path}")]
    InvalidValue {
        /// The parameter.
        path: String,
        /// Why.
        #[source]
        source: ValueError,
    },
    /// The instance number is taken.
    #[error("{0} already exists")]
    InstanceExists(String),
    /// The table is at its `max_entries`, or out of instance numbers.
    #[error("table {0} is full")]
    TableFull(String),
    /// The backend failed to read a live parameter.
    #[error("reading {path} failed")]
    Backend {
        /// The parameter.
        path: String,
        /// The backend's fault.
        #[source]
        source: Fault,
    },
}

/// A data-model instance: the tree of one managed device over a shared [`Schema`].
///
/// ```
/// use cwmp::model::{Access, Model, NoBackend, ObjectDef, ParamDef, SchemaBuilder, Syntax};
/// use cwmp::soap::{ParameterValue, Status, ValueType};
///
/// let mut b = SchemaBuilder::new();
/// b.object("Device.", ObjectDef::single())
///     .object("Device.ManagementServer.", ObjectDef::single())
///     .param("Device.ManagementServer.ParameterKey", ParamDef::read_only(Syntax::string_max(32)))
///     .param(
///         "Device.ManagementServer.PeriodicInformInterval",
///         ParamDef::read_write(Syntax::unsigned_int().min(1)).default_value(300u32),
///     );
/// let mut model = Model::new(b.build()?, NoBackend);
/// let set = [ParameterValue::new(
///     "Device.ManagementServer.PeriodicInformInterval",
///     "60",
///     ValueType::UnsignedInt,
/// )];
/// assert_eq!(model.set_parameter_values(&set, "key-1"), Ok(Status::Applied));
/// assert_eq!(model.parameter_key(), "key-1");
/// let bad = [ParameterValue::new("Device.ManagementServer.PeriodicInformInterval", "0", ValueType::UnsignedInt)];
/// let fault = model.set_parameter_values(&bad, "key-2").unwrap_err();
/// assert_eq!(fault.set_parameter_values_faults[0].code.code(), 9007);
/// assert_eq!(model.parameter_key(), "key-1");
/// # Ok::<(), cwmp::model::SchemaError>(())
/// ```
#[derive(Debug)]
pub struct Model<B = NoBackend> {
    schema: Arc<Schema>,
    tree: Tree,
    backend: B,
    /// Pending value changes, by parameter.
    changes: BTreeMap<Key, Pending>,
    seq: u64,
    /// Last value seen of each live parameter under notification.
    live_seen: BTreeMap<Key, Value>,
    /// Persistent changes not yet taken by [`Model::take_journal`].
    journal: persist::Pending,
}

impl<B: Backend> Model<B> {
    /// An empty model: single objects exist, tables have no instances, values are defaults.
    pub fn new(schema: impl Into<Arc<Schema>>, backend: B) -> Self {
        Self {
            schema: schema.into(),
            tree: Tree::default(),
            backend,
            changes: BTreeMap::new(),
            seq: 0,
            live_seen: BTreeMap::new(),
            journal: persist::Pending::snapshot(),
        }
    }

    /// The schema.
    pub fn schema(&self) -> &Arc<Schema> {
        &self.schema
    }

    /// The backend.
    pub fn backend(&self) -> &B {
        &self.backend
    }

    /// The backend, mutably.
    pub fn backend_mut(&mut self) -> &mut B {
        &mut self.backend
    }

    /// A read-only view of the tree, as the backend hooks see it.
    pub fn view(&self) -> View<'_> {
        View {
            schema: &self.schema,
            tree: &self.tree,
        }
    }

    /// The ParameterKey of the last successful SetParameterValues, AddObject or DeleteObject.
    pub fn parameter_key(&self) -> &str {
        &self.tree.parameter_key
    }

    fn resolve(&self, path: &str) -> Option<Target> {
        resolve(&self.schema, &self.tree, path)
    }

    // ---------------------------------------------------------------------------------
    // Application side

    /// Reads a parameter (hidden values included; live ones through the backend).
    pub fn get(&self, path: &str) -> Result<Value, ModelError> {
        match self.resolve(path) {
            Some(Target::Param(node, inst)) => {
                self.read(node, &inst)
                    .map_err(|source| ModelError::Backend {
                        path: path.to_owned(),
                        source,
                    })
            }
            Some(_) => Err(ModelError::WrongKind {
                path: path.to_owned(),
                expected: "a parameter",
            }),
            None => Err(ModelError::NotFound(path.to_owned())),
        }
    }

    /// Sets a stored parameter as the device itself (read-only ones included). A change of
    /// value is a local change: it is reported under the parameter's notification. No
    /// backend hook runs.
    pub fn set(&mut self, path: &str, value: impl Into<Value>) -> Result<(), ModelError> {
        let (node, inst) = self.stored_param(path)?;
        let value = self
            .param_def(node)
            .syntax
            .check(value.into())
            .map_err(|source| ModelError::InvalidValue {
                path: path.to_owned(),
                source,
            })?;
        let old = read_stored(&self.schema, &self.tree, node, &inst);
        let key: Key = (node, inst.into());
        if old != value {
            self.note_change(&key);
        }
        // Journaled when the stored entry changes (a default made explicit too), so that
        // a replayed journal rebuilds exactly what a snapshot would hold.
        let stored = self.tree.values.insert(key.clone(), value);
        if stored.as_ref() != self.tree.values.get(&key) {
            self.journal_value(&key);
        }
        Ok(())
    }

    /// The instance numbers of a table (`Device.Bridging.Bridge.`), ascending.
    pub fn instances(&self, table_path: &str) -> Result<Vec<u32>, ModelError> {
        match self.resolve(table_path) {
            Some(Target::Table(node, inst)) => Ok(self.tree.instances(node, &inst)),
            Some(_) => Err(ModelError::WrongKind {
                path: table_path.to_owned(),
                expected: "a table",
            }),
            None => Err(ModelError::NotFound(table_path.to_owned())),
        }
    }

    /// Creates an instance as the device itself (read-only tables included), with the given
    /// number or the next free one; no backend hook runs. Returns the instance number.
    pub fn add_instance(
        &mut self,
        table_path: &str,
        number: Option<u32>,
    ) -> Result<u32, ModelError> {
        let n = self.insert_instance(table_path, number)?;
        self.journal.push(format_args!("I {table_path}{n}."));
        Ok(n)
    }

    /// [`Model::add_instance`] without a journal record (the callers record it themselves,
    /// or are rebuilding the tree from records).
    fn insert_instance(
        &mut self,
        table_path: &str,
        number: Option<u32>,
    ) -> Result<u32, ModelError> {
        let Some(Target::Table(node, inst)) = self.resolve(table_path) else {
            return Err(self.kind_error(table_path, "a table"));
        };
        let full = || ModelError::TableFull(table_path.to_owned());
        let max = self.object_def(node).max_entries;
        let state = self.tree.tables.entry((node, inst.into())).or_default();
        if max.is_some_and(|max| state.instances.len() >= max as usize) {
            return Err(full());
        }
        let n = match number {
            Some(0) => return Err(full()),
            Some(n) if state.instances.contains(&n) => {
                return Err(ModelError::InstanceExists(format!("{table_path}{n}.")));
            }
            Some(n) => n,
            None => state.next.max(1),
        };
        state.next = n.checked_add(1).ok_or_else(full)?.max(state.next);
        state.instances.insert(n);
        Ok(n)
    }

    /// Deletes an instance (`Device.Ethernet.Interface.2.`) and everything below it, as the
    /// device itself; no backend hook runs.
    pub fn delete_instance(&mut self, path: &str) -> Result<(), ModelError> {
        match self.resolve(path) {
            Some(Target::Object(node, inst)) if self.is_table(node) => {
                self.remove_instance(node, &inst);
                self.journal.push(format_args!("D {path}"));
                Ok(())
            }
            _ => Err(self.kind_error(path, "an instance")),
        }
    }

    fn kind_error(&self, path: &str, expected: &'static str) -> ModelError {
        if self.resolve(path).is_some() {
            ModelError::WrongKind {
                path: path.to_owned(),
                expected,
            }
        } else {
            ModelError::NotFound(path.to_owned())
        }
    }

    fn stored_param(&self, path: &str) -> Result<(NodeId, Vec<u32>), ModelError> {
        match self.resolve(path) {
            Some(Target::Param(node, inst)) => match origin(&self.schema, node) {
                Origin::Stored => Ok((node, inst)),
                _ => Err(ModelError::NotStored(path.to_owned())),
            },
            _ => Err(self.kind_error(path, "a parameter")),
        }
    }

    // ---------------------------------------------------------------------------------
    // Value-change notification

    /// The Notification attribute of a parameter at one place.
    fn notification(&self, key: &Key) -> Notification {
        notification(&self.schema, &self.tree, key)
    }

    fn note_change(&mut self, key: &Key) {
        let active = match self.notification(key) {
            Notification::Off => return,
            Notification::Active => true,
            _ => false,
        };
        self.seq += 1;
        let entry = self.changes.entry(key.clone()).or_insert(Pending {
            seq: 0,
            active: false,
        });
        entry.seq = self.seq;
        entry.active |= active;
    }

    /// Whether any passive or active value change awaits an Inform.
    pub fn has_value_changes(&self) -> bool {
        !self.changes.is_empty()
    }

    /// Whether an active-notification value change awaits an Inform: the application should
    /// open a session with `4 VALUE CHANGE` (subject to its notification throttle).
    pub fn has_active_changes(&self) -> bool {
        self.changes.values().any(|p| p.active)
    }

    /// Forgets every pending value change, e.g. after the application has populated the
    /// model at start-up (initial values are not changes the ACS needs to hear about).
    pub fn clear_value_changes(&mut self) {
        self.changes.clear();
    }

    /// Reads every live parameter under notification and records those whose value differs
    /// from the last reading. Returns whether an active change is now pending.
    pub fn poll_live(&mut self) -> bool {
        let mut changed = Vec::new();
        for id in self.schema.ids() {
            if origin(&self.schema, id) != Origin::Live {
                continue;
            }
            for inst in self.instance_vectors(parent_of(&self.schema, id)) {
                let key: Key = (id, inst.into());
                if self.notification(&key) == Notification::Off {
                    continue;
                }
                let Ok(now) = self.read(id, &key.1) else {
                    continue;
                };
                match self.live_seen.insert(key.clone(), now.clone()) {
                    Some(before) if before != now => changed.push(key),
                    _ => {}
                }
            }
        }
        for key in changed {
            self.note_change(&key);
        }
        self.has_active_changes()
    }

    /// The Inform's ParameterList: every forced-inform parameter, then every parameter with
    /// a pending value change; and the record to acknowledge once the ACS has the Inform.
    pub(crate) fn inform_parameters(&self) -> (Vec<ParameterValue>, InformedChanges) {
        let mut list = Vec::new();
        let mut seen = HashSet::new();
        for id in self.schema.ids() {
            let NodeKind::Param { def, .. } = &self.schema.node(id).kind else {
                continue;
            };
            if !def.forced_inform {
                continue;
            }
            for inst in self.instance_vectors(parent_of(&self.schema, id)) {
                let value = self
                    .read_for_acs(id, &inst)
                    .unwrap_or_else(|_| def.syntax.zero());
                list.push(self.wire_value(id, &inst, value));
                seen.insert((id, inst));
            }
        }
        let mut informed = Vec::new();
        for (key, pending) in &self.changes {
            informed.push((key.clone(), pending.seq));
            if seen.contains(&(key.0, key.1.to_vec())) {
                continue;
            }
            if let Ok(value) = self.read_for_acs(key.0, &key.1) {
                list.push(self.wire_value(key.0, &key.1, value));
            }
        }
        (list, InformedChanges(informed))
    }

    /// Forgets the value changes an acknowledged Inform carried (unless they changed again).
    pub(crate) fn inform_delivered(&mut self, informed: &InformedChanges) {
        for (key, seq) in &informed.0 {
            if self.changes.get(key).is_some_and(|p| p.seq == *seq) {
                self.changes.remove(key);
            }
        }
    }

    /// The `DeviceInfo` parameter `name`, as text (empty when absent).
    pub(crate) fn device_info(&self, name: &str) -> String {
        self.get(&format!("Device.DeviceInfo.{name}"))
            .map(|v| v.to_string())
            .unwrap_or_default()
    }

    // ---------------------------------------------------------------------------------
    // CPE RPCs

    /// GetParameterNames (A.3.2.6): `path` is a full parameter name, a partial path ending in
    /// `.`, or empty for the whole tree; `next_level` lists only the immediate children.
    pub fn get_parameter_names(
        &self,
        path: &str,
        next_level: bool,
    ) -> Result<Vec<ParameterInfo>, Fault> {
        let mut items = Vec::new();
        if path.is_empty() {
            let root = self.schema.root();
            if next_level {
                items.push(Item::Object {
                    path: self.schema.node(root).path.to_string(),
                    writable: false,
                });
            } else {
                self.walk_object(root, &[], true, true, &mut items);
            }
        } else {
            match self.resolve(path).ok_or_else(|| unknown(path))? {
                Target::Param(node, inst) => {
                    if next_level {
                        return Err(Fault::with_string(
                            FaultCode::InvalidArguments,
                            "NextLevel must be false for a parameter name",
                        ));
                    }
                    items.push(Item::Param {
                        node,
                        instances: inst,
                    });
                }
                Target::Object(node, inst) => {
                    self.walk_object(node, &inst, !next_level, !next_level, &mut items)
                }
                Target::Table(node, inst) => {
                    self.walk_table(node, &inst, !next_level, !next_level, &mut items)
                }
            }
        }
        Ok(items
            .into_iter()
            .map(|item| match item {
                Item::Object { path, writable } => ParameterInfo {
                    name: path,
                    writable,
                },
                Item::Param { node, instances } => ParameterInfo {
                    name: concrete(&self.schema.node(node).path, &instances),
                    writable: self.param_def(node).access == Access::ReadWrite,
                },
            })
            .collect())
    }

    /// GetParameterValues (A.3.2.2): full names or partial paths (`""` is everything).
    pub fn get_parameter_values(&self, names: &[String]) -> Result<Vec<ParameterValue>, Fault> {
        let mut out = Vec::new();
        for name in names {
            for (node, inst) in self.params_under(name)? {
                let value = self.read_for_acs(node, &inst)?;
                out.push(self.wire_value(node, &inst, value));
            }
        }
        Ok(out)
    }

    /// SetParameterValues (A.3.2.1), all or nothing: per-parameter faults 9005 (unknown),
    /// 9008 (read-only), 9006 (wrong type), 9007 (bad value) under a 9003; then the backend
    /// hooks. ParameterKey is stored only on success.
    pub fn set_parameter_values(
        &mut self,
        list: &[ParameterValue],
        parameter_key: &str,
    ) -> Result<Status, Fault> {
        check_parameter_key(parameter_key)?;
        let mut seen = HashSet::new();
        let mut faults = Vec::new();
        let mut sets = Vec::new();
        for pv in list {
            if !seen.insert(pv.name.as_str()) {
                return Err(Fault::with_string(
                    FaultCode::InvalidArguments,
                    format!("{} appears more than once", truncate(&pv.name)),
                ));
            }
            match self.check_set(pv) {
                Ok((node, inst, value)) => sets.push((node, inst, value)),
                Err((code, why)) => faults.push(SetParameterValuesFault {
                    parameter_name: pv.name.clone(),
                    code,
                    string: why,
                }),
            }
        }
        if !faults.is_empty() {
            return Err(Fault::set_parameter_values(faults));
        }
        let backup = self.tree.clone();
        let mut changes = Vec::with_capacity(sets.len());
        for (node, inst, new) in sets {
            let old = read_stored(&self.schema, &self.tree, node, &inst);
            let n = self.schema.node(node);
            changes.push(Change {
                path: concrete(&n.path, &inst),
                schema_path: n.path.clone(),
                instances: inst.clone(),
                kind: ChangeKind::Set {
                    old,
                    new: new.clone(),
                },
            });
            self.tree.values.insert((node, inst.into()), new);
        }
        let status = self.transact(&changes, backup)?;
        // Changes made by the ACS are not notified back to it; it knows them now.
        for change in &changes {
            if let Some(Target::Param(node, inst)) = self.resolve(&change.path) {
                let key: Key = (node, inst.into());
                self.changes.remove(&key);
                self.journal_value(&key);
            }
        }
        self.set_parameter_key(parameter_key);
        Ok(status)
    }

    /// Checks one SetParameterValues entry: the target and its checked value, or a fault.
    fn check_set(
        &self,
        pv: &ParameterValue,
    ) -> Result<(NodeId, Vec<u32>, Value), (FaultCode, String)> {
        let Some(Target::Param(node, inst)) = self.resolve(&pv.name) else {
            return Err((
                FaultCode::InvalidParameterName,
                "no such parameter".to_owned(),
            ));
        };
        let def = self.param_def(node);
        if def.access != Access::ReadWrite || origin(&self.schema, node) != Origin::Stored {
            return Err((
                FaultCode::NonWritableParameter,
                "parameter is read-only".to_owned(),
            ));
        }
        if let Some(sent) = &pv.value_type
            && !def.syntax.base.accepts(sent)
        {
            return Err((
                FaultCode::InvalidParameterType,
                format!("expected {}, got {sent}", def.syntax.value_type()),
            ));
        }
        let value = def
            .syntax
            .parse(&pv.value)
            .map_err(|e| (FaultCode::InvalidParameterValue, e.to_string()))?;
        Ok((node, inst, value))
    }

    /// GetParameterAttributes (A.3.2.5): full names or partial paths.
    pub fn get_parameter_attributes(
        &self,
        names: &[String],
    ) -> Result<Vec<ParameterAttribute>, Fault> {
        let mut out = Vec::new();
        for name in names {
            for (node, inst) in self.params_under(name)? {
                let key: Key = (node, inst.into());
                let access_list = self
                    .tree
                    .attrs
                    .get(&key)
                    .map(|a| a.access_list.clone())
                    .unwrap_or_default();
                out.push(ParameterAttribute {
                    name: concrete(&self.schema.node(node).path, &key.1),
                    notification: self.notification(&key),
                    access_list,
                });
            }
        }
        Ok(out)
    }

    /// SetParameterAttributes (A.3.2.4), all or nothing. A notification a parameter does not
    /// allow is 9009 when the parameter is named; under a partial path such parameters are
    /// skipped. AccessList entries other than `Subscriber` are 9003.
    pub fn set_parameter_attributes(
        &mut self,
        list: &[SetParameterAttribute],
    ) -> Result<(), Fault> {
        let mut updates: Vec<(Key, Option<Notification>, Option<Vec<String>>)> = Vec::new();
        for attr in list {
            if attr.access_list_change
                && let Some(bad) = attr.access_list.iter().find(|e| *e != "Subscriber")
            {
                return Err(Fault::with_string(
                    FaultCode::InvalidArguments,
                    format!("unknown AccessList entry {}", truncate(bad)),
                ));
            }
            let named = !attr.name.is_empty() && !attr.name.ends_with('.');
            let params = self.params_under(&attr.name)?;
            for (node, inst) in params {
                let mut notification = None;
                if attr.notification_change {
                    let policy = self.param_def(node).active_notify;
                    let wanted = attr.notification;
                    let allowed = match wanted {
                        Notification::Off | Notification::Passive => {
                            policy != ActiveNotify::ForceEnabled
                        }
                        Notification::Active => !policy.denies_active(),
                        _ => false,
                    };
                    if allowed {
                        notification = Some(wanted);
                    } else if named {
                        return Err(Fault::with_string(
                            FaultCode::NotificationRequestRejected,
                            format!(
                                "notification {} is not allowed for {}",
                                wanted.code(),
                                truncate(&attr.name)
                            ),
                        ));
                    }
                }
                let access_list = attr.access_list_change.then(|| attr.access_list.clone());
                updates.push(((node, inst.into()), notification, access_list));
            }
        }
        for (key, notification, access_list) in updates {
            let mut attrs = Attributes {
                notification: self.notification(&key),
                access_list: self
                    .tree
                    .attrs
                    .get(&key)
                    .map(|a| a.access_list.clone())
                    .unwrap_or_default(),
            };
            if let Some(n) = notification {
                attrs.notification = n;
                if n == Notification::Off {
                    self.changes.remove(&key);
                    self.live_seen.remove(&key);
                } else if origin(&self.schema, key.0) == Origin::Live
                    && !self.live_seen.contains_key(&key)
                    && let Ok(now) = self.read(key.0, &key.1)
                {
                    self.live_seen.insert(key.clone(), now);
                }
            }
            if let Some(list) = access_list {
                attrs.access_list = list;
            }
            self.journal_attributes(&key, &attrs);
            let default = default_notification(self.param_def(key.0).active_notify);
            if attrs.notification == default && attrs.access_list.is_empty() {
                self.tree.attrs.remove(&key);
            } else {
                self.tree.attrs.insert(key, attrs);
            }
        }
        Ok(())
    }

    /// AddObject (A.3.2.6): `object` is a writable table path ending in `.`; returns the new
    /// instance number (never reused) and the backend's status.
    pub fn add_object(
        &mut self,
        object: &str,
        parameter_key: &str,
    ) -> Result<(u32, Status), Fault> {
        check_parameter_key(parameter_key)?;
        let Some(Target::Table(node, inst)) = self.resolve(object) else {
            return Err(unknown(object));
        };
        if self.object_def(node).access != Access::ReadWrite {
            return Err(Fault::with_string(
                FaultCode::InvalidParameterName,
                format!("{} does not allow AddObject", truncate(object)),
            ));
        }
        let backup = self.tree.clone();
        let n = self.insert_instance(object, None).map_err(|_| {
            Fault::with_string(
                FaultCode::ResourcesExceeded,
                format!("{} is full", truncate(object)),
            )
        })?;
        let mut instances = inst;
        instances.push(n);
        let change = Change {
            path: format!("{object}{n}."),
            schema_path: self.schema.node(node).path.clone(),
            instances,
            kind: ChangeKind::Added,
        };
        let status = self.transact(std::slice::from_ref(&change), backup)?;
        self.journal.push(format_args!("I {}", change.path));
        self.set_parameter_key(parameter_key);
        Ok((n, status))
    }

    /// DeleteObject (A.3.2.7): `object` is an instance of a writable table, ending in `.`.
    pub fn delete_object(&mut self, object: &str, parameter_key: &str) -> Result<Status, Fault> {
        check_parameter_key(parameter_key)?;
        let (node, inst) = match self.resolve(object) {
            Some(Target::Object(node, inst)) if self.is_table(node) => (node, inst),
            _ => return Err(unknown(object)),
        };
        if self.object_def(node).access != Access::ReadWrite {
            return Err(Fault::with_string(
                FaultCode::InvalidParameterName,
                format!("{} does not allow DeleteObject", truncate(object)),
            ));
        }
        let backup = self.tree.clone();
        let (changes_backup, live_backup) = (self.changes.clone(), self.live_seen.clone());
        self.remove_instance(node, &inst);
        let change = Change {
            path: object.to_owned(),
            schema_path: self.schema.node(node).path.clone(),
            instances: inst,
            kind: ChangeKind::Deleted,
        };
        match self.transact(std::slice::from_ref(&change), backup) {
            Ok(status) => {
                self.journal.push(format_args!("D {object}"));
                self.set_parameter_key(parameter_key);
                Ok(status)
            }
            Err(fault) => {
                self.changes = changes_backup;
                self.live_seen = live_backup;
                Err(fault)
            }
        }
    }

    /// Runs the backend hooks over a change set already in the tree; restores `backup` when
    /// either fails.
    fn transact(&mut self, changes: &[Change], backup: Tree) -> Result<Status, Fault> {
        let view = View {
            schema: &self.schema,
            tree: &self.tree,
        };
        let result = self
            .backend
            .validate(&view, changes)
            .and_then(|()| self.backend.apply(&view, changes));
        if result.is_err() {
            self.tree = backup;
        }
        result
    }

    // ---------------------------------------------------------------------------------
    // Internals

    fn param_def(&self, node: NodeId) -> &ParamDef {
        param_def(&self.schema, node)
    }

    fn object_def(&self, node: NodeId) -> &ObjectDef {
        match &self.schema.node(node).kind {
            NodeKind::Object { def, .. } => def,
            NodeKind::Param { .. } => &NOT_AN_OBJECT,
        }
    }

    fn is_table(&self, node: NodeId) -> bool {
        matches!(
            self.schema.node(node).kind,
            NodeKind::Object { table: true, .. }
        )
    }

    fn read(&self, node: NodeId, inst: &[u32]) -> Result<Value, Fault> {
        if origin(&self.schema, node) == Origin::Live {
            let n = self.schema.node(node);
            let path = concrete(&n.path, inst);
            return self.backend.read(PathRef {
                path: &path,
                schema_path: &n.path,
                instances: inst,
            });
        }
        Ok(read_stored(&self.schema, &self.tree, node, inst))
    }

    /// A value as the ACS may see it: hidden parameters read as an empty string.
    fn read_for_acs(&self, node: NodeId, inst: &[u32]) -> Result<Value, Fault> {
        if self.param_def(node).hidden {
            Ok(Value::Text(String::new()))
        } else {
            self.read(node, inst)
        }
    }

    fn wire_value(&self, node: NodeId, inst: &[u32], value: Value) -> ParameterValue {
        let n = self.schema.node(node);
        ParameterValue::new(
            concrete(&n.path, inst),
            value.to_string(),
            self.param_def(node).syntax.value_type(),
        )
    }

    /// Every parameter named by a full name or under a partial path (`""` is everything).
    fn params_under(&self, name: &str) -> Result<Vec<(NodeId, Vec<u32>)>, Fault> {
        let mut items = Vec::new();
        if name.is_empty() {
            self.walk_object(self.schema.root(), &[], false, true, &mut items);
        } else {
            match self.resolve(name).ok_or_else(|| unknown(name))? {
                Target::Param(node, inst) => return Ok(vec![(node, inst)]),
                Target::Object(node, inst) => {
                    self.walk_object(node, &inst, false, true, &mut items)
                }
                Target::Table(node, inst) => self.walk_table(node, &inst, false, true, &mut items),
            }
        }
        Ok(items
            .into_iter()
            .filter_map(|item| match item {
                Item::Param { node, instances } => Some((node, instances)),
                Item::Object { .. } => None,
            })
            .collect())
    }

    /// Walks an object (single or instance): itself if `include_self`, its parameters, then
    /// its child objects, recursively if `recurse`.
    fn walk_object(
        &self,
        node: NodeId,
        inst: &[u32],
        include_self: bool,
        recurse: bool,
        out: &mut Vec<Item>,
    ) {
        let NodeKind::Object {
            def,
            table,
            children,
        } = &self.schema.node(node).kind
        else {
            return;
        };
        if include_self {
            out.push(Item::Object {
                path: concrete(&self.schema.node(node).path, inst),
                writable: *table && def.access == Access::ReadWrite,
            });
        }
        for &child in children {
            if matches!(self.schema.node(child).kind, NodeKind::Param { .. }) {
                out.push(Item::Param {
                    node: child,
                    instances: inst.to_vec(),
                });
            }
        }
        for &child in children {
            match &self.schema.node(child).kind {
                NodeKind::Object { table: false, .. } if recurse => {
                    self.walk_object(child, inst, true, true, out)
                }
                NodeKind::Object { table: false, .. } => out.push(Item::Object {
                    path: concrete(&self.schema.node(child).path, inst),
                    writable: false,
                }),
                NodeKind::Object { table: true, .. } if recurse => {
                    self.walk_table(child, inst, true, true, out)
                }
                NodeKind::Object {
                    table: true, def, ..
                } => out.push(Item::Object {
                    path: table_path(&self.schema.node(child).path, inst),
                    writable: def.access == Access::ReadWrite,
                }),
                NodeKind::Param { .. } => {}
            }
        }
    }

    /// Walks a table: itself if `include_self`, then each instance (recursively if
    /// `recurse`, else just the instance objects).
    fn walk_table(
        &self,
        node: NodeId,
        parent: &[u32],
        include_self: bool,
        recurse: bool,
        out: &mut Vec<Item>,
    ) {
        let writable = self.object_def(node).access == Access::ReadWrite;
        if include_self {
            out.push(Item::Object {
                path: table_path(&self.schema.node(node).path, parent),
                writable,
            });
        }
        for n in self.tree.instances(node, parent) {
            let mut inst = parent.to_vec();
            inst.push(n);
            if recurse {
                self.walk_object(node, &inst, true, true, out);
            } else {
                out.push(Item::Object {
                    path: concrete(&self.schema.node(node).path, &inst),
                    writable,
                });
            }
        }
    }

    /// Every instance-number vector at which `object` exists.
    fn instance_vectors(&self, object: NodeId) -> Vec<Vec<u32>> {
        let mut tables = Vec::new();
        let mut cur = Some(object);
        while let Some(id) = cur {
            if self.is_table(id) {
                tables.push(id);
            }
            cur = self.schema.node(id).parent;
        }
        let mut vectors = vec![Vec::new()];
        for &table in tables.iter().rev() {
            vectors = vectors
                .into_iter()
                .flat_map(|prefix| {
                    self.tree
                        .instances(table, &prefix)
                        .into_iter()
                        .map(move |n| {
                            let mut v = prefix.clone();
                            v.push(n);
                            v
                        })
                })
                .collect();
        }
        vectors
    }

    /// Removes an instance and all state below it (values, attributes, nested tables,
    /// pending changes).
    fn remove_instance(&mut self, table: NodeId, inst: &[u32]) {
        let Some((&n, parent)) = inst.split_last() else {
            return;
        };
        if let Some(state) = self.tree.tables.get_mut(&(table, parent.into())) {
            state.instances.remove(&n);
        }
        let prefix = self.schema.node(table).path.clone();
        let schema = &self.schema;
        let below = |key: &Key| {
            key.1.len() >= inst.len()
                && key.1[..inst.len()] == *inst
                && schema.node(key.0).path.starts_with(&*prefix)
        };
        self.tree.tables.retain(|k, _| !below(k));
        self.tree.values.retain(|k, _| !below(k));
        self.tree.attrs.retain(|k, _| !below(k));
        self.changes.retain(|k, _| !below(k));
        self.live_seen.retain(|k, _| !below(k));
    }
}

/// Stand-ins returned if a node of the other kind were ever asked for: callers only pass
/// nodes of the right kind (the schema is immutable), and this keeps every path panic-free.
static NOT_AN_OBJECT: ObjectDef = ObjectDef {
    access: Access::ReadOnly,
    max_entries: Some(0),
    num_entries_parameter: None,
};
static NOT_A_PARAM: ParamDef = ParamDef {
    syntax: Syntax {
        base: BaseType::String,
        min_length: None,
        max_length: None,
        ranges: Vec::new(),
        enumeration: Vec::new(),
        list: None,
    },
    access: Access::ReadOnly,
    forced_inform: false,
    active_notify: ActiveNotify::WillDeny,
    hidden: true,
    source: Source::Stored,
    default: None,
};

fn param_def(schema: &Schema, node: NodeId) -> &ParamDef {
    match &schema.node(node).kind {
        NodeKind::Param { def, .. } => def,
        NodeKind::Object { .. } => &NOT_A_PARAM,
    }
}

fn origin(schema: &Schema, node: NodeId) -> Origin {
    match &schema.node(node).kind {
        NodeKind::Param { origin, .. } => *origin,
        NodeKind::Object { .. } => Origin::Stored,
    }
}

fn parent_of(schema: &Schema, node: NodeId) -> NodeId {
    schema.node(node).parent.unwrap_or(node)
}

fn default_notification(policy: ActiveNotify) -> Notification {
    match policy {
        ActiveNotify::ForceEnabled | ActiveNotify::ForceDefaultEnabled => Notification::Active,
        _ => Notification::Off,
    }
}

fn notification(schema: &Schema, tree: &Tree, key: &Key) -> Notification {
    tree.attrs.get(key).map_or_else(
        || default_notification(param_def(schema, key.0).active_notify),
        |a| a.notification,
    )
}

/// The value of a stored or computed parameter (live ones read as their zero here).
fn read_stored(schema: &Schema, tree: &Tree, node: NodeId, inst: &[u32]) -> Value {
    let def = param_def(schema, node);
    match origin(schema, node) {
        Origin::NumberOfEntries(table) => Value::Unsigned(tree.instances(table, inst).len() as u64),
        Origin::ParameterKey => Value::Text(tree.parameter_key.clone()),
        Origin::Stored | Origin::Live => tree
            .values
            .get(&(node, inst.into()))
            .cloned()
            .or_else(|| def.default.clone())
            .unwrap_or_else(|| def.syntax.zero()),
    }
}

/// Resolves a concrete path against the schema and the instances that exist.
fn resolve(schema: &Schema, tree: &Tree, path: &str) -> Option<Target> {
    let is_object = path.ends_with('.');
    let body = path.strip_suffix('.').unwrap_or(path);
    let mut segments = body.split('.');
    let root = schema.root();
    if segments.next()? != &*schema.node(root).name {
        return None;
    }
    let mut cur = root;
    let mut inst: Vec<u32> = Vec::new();
    let mut awaiting_instance = false;
    let mut param = None;
    for seg in segments {
        if param.is_some() {
            return None;
        }
        if awaiting_instance {
            let n = instance_number(seg)?;
            if !tree.has_instance(cur, &inst, n) {
                return None;
            }
            inst.push(n);
            awaiting_instance = false;
            continue;
        }
        let NodeKind::Object { children, .. } = &schema.node(cur).kind else {
            return None;
        };
        let child = *children.iter().find(|&&c| &*schema.node(c).name == seg)?;
        match &schema.node(child).kind {
            NodeKind::Object { table, .. } => {
                cur = child;
                awaiting_instance = *table;
            }
            NodeKind::Param { .. } => param = Some(child),
        }
    }
    match (param, is_object) {
        (Some(p), false) => Some(Target::Param(p, inst)),
        (Some(_), true) | (None, false) => None,
        (None, true) if awaiting_instance => Some(Target::Table(cur, inst)),
        (None, true) => Some(Target::Object(cur, inst)),
    }
}

/// An instance number as TR-069 writes it: decimal, no sign, no leading zero, not zero.
fn instance_number(seg: &str) -> Option<u32> {
    if seg.is_empty() || seg.starts_with('0') || !seg.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    seg.parse().ok()
}

/// Substitutes instance numbers for the `{i}` placeholders of a schema path, in order.
fn concrete(schema_path: &str, inst: &[u32]) -> String {
    let mut out = String::with_capacity(schema_path.len() + 8);
    let mut rest = schema_path;
    let mut numbers = inst.iter();
    while let Some(pos) = rest.find(INSTANCE) {
        out.push_str(&rest[..pos]);
        match numbers.next() {
            Some(n) => out.push_str(&n.to_string()),
            None => out.push_str(INSTANCE),
        }
        rest = &rest[pos + INSTANCE.len()..];
    }
    out.push_str(rest);
    out
}

/// The concrete path of a table itself: its schema path without the final `{i}.`.
fn table_path(schema_path: &str, parent: &[u32]) -> String {
    let trimmed = schema_path.strip_suffix("{i}.").unwrap_or(schema_path);
    concrete(trimmed, parent)
}

fn unknown(path: &str) -> Fault {
    Fault::with_string(
        FaultCode::InvalidParameterName,
        format!("{} does not exist", truncate(path)),
    )
}

fn check_parameter_key(key: &str) -> Result<(), Fault> {
    if key.chars().count() > MAX_PARAMETER_KEY_LEN {
        return Err(Fault::with_string(
            FaultCode::InvalidArguments,
            "ParameterKey is longer than 32 characters",
        ));
    }
    Ok(())
}

/// Cuts text echoed into fault strings, so a hostile name cannot bloat the response.
fn truncate(text: &str) -> String {
    const MAX: usize = 256;
    if text.chars().count() <= MAX {
        text.to_owned()
    } else {
        let mut cut: String = text.chars().take(MAX).collect();
        cut.push_str("...");
        cut
    }
}
