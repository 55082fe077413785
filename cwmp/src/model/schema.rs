//! Object and parameter definitions: what a data model contains, before any instance exists.
//!
//! A [`Schema`] is built once by the embedding application from [`ObjectDef`]s and
//! [`ParamDef`]s keyed by schema paths (`Device.Bridging.Bridge.{i}.Port.{i}.Name`), then
//! shared (it is immutable) by every [`Model`](super::Model) that uses it.

use std::collections::HashMap;
use std::sync::Arc;

use super::value::{Syntax, Value};

/// A schema path's instance placeholder.
pub(crate) const INSTANCE: &str = "{i}";

/// The parameter the model keeps in step with the last successful ParameterKey argument.
pub const PARAMETER_KEY_PATH: &str = "Device.ManagementServer.ParameterKey";

/// Whether the ACS may write a parameter, or add and delete instances of a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Access {
    /// Read-only: SetParameterValues answers 9008; AddObject/DeleteObject answer 9005.
    ReadOnly,
    /// Writable by the ACS.
    ReadWrite,
}

/// The TR-106 `activeNotify` facet: what a parameter allows for active notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ActiveNotify {
    /// Any notification setting is accepted.
    #[default]
    Normal,
    /// Active notification is always on; other settings are rejected with 9009.
    ForceEnabled,
    /// Active notification is on by default; the ACS may change it.
    ForceDefaultEnabled,
    /// The CPE may reject active notification; this implementation does (9009).
    CanDeny,
    /// The CPE rejects active notification (9009).
    WillDeny,
}

impl ActiveNotify {
    /// Whether a request for active notification is rejected.
    pub fn denies_active(self) -> bool {
        matches!(self, Self::CanDeny | Self::WillDeny)
    }
}

/// Where a parameter's value comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Source {
    /// Held in the model's tree: written by the ACS or by the application.
    #[default]
    Stored,
    /// Read from the [`Backend`](super::Backend) on every access (status, counters, uptime).
    Live,
}

/// How a parameter's value is produced; the model derives the last two itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Origin {
    Stored,
    Live,
    /// A `...NumberOfEntries` parameter: the number of instances of this table node.
    NumberOfEntries(NodeId),
    /// `ManagementServer.ParameterKey`.
    ParameterKey,
}

/// A parameter definition.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamDef {
    /// Type and value constraints.
    pub syntax: Syntax,
    /// Read-only or writable by the ACS.
    pub access: Access,
    /// Always sent in the Inform's ParameterList.
    pub forced_inform: bool,
    /// What the parameter allows for active notification.
    pub active_notify: ActiveNotify,
    /// Secret (passwords): always read as an empty string.
    pub hidden: bool,
    /// Stored in the tree or read live from the backend.
    pub source: Source,
    /// Initial value of new instances (or of the single object); the type's zero when `None`.
    pub default: Option<Value>,
}

impl ParamDef {
    /// A stored parameter with no flags.
    pub fn new(syntax: Syntax, access: Access) -> Self {
        Self {
            syntax,
            access,
            forced_inform: false,
            active_notify: ActiveNotify::Normal,
            hidden: false,
            source: Source::Stored,
            default: None,
        }
    }

    /// A read-only stored parameter.
    pub fn read_only(syntax: Syntax) -> Self {
        Self::new(syntax, Access::ReadOnly)
    }

    /// A writable stored parameter.
    pub fn read_write(syntax: Syntax) -> Self {
        Self::new(syntax, Access::ReadWrite)
    }

    /// Marks the parameter as always sent in Inform.
    pub fn forced_inform(mut self) -> Self {
        self.forced_inform = true;
        self
    }

    /// Sets the active-notification facet.
    pub fn active_notify(mut self, policy: ActiveNotify) -> Self {
        self.active_notify = policy;
        self
    }

    /// Marks the parameter as secret: reads return an empty string.
    pub fn hidden(mut self) -> Self {
        self.hidden = true;
        self
    }

    /// Marks the parameter as read live from the backend (read-only parameters only).
    pub fn live(mut self) -> Self {
        self.source = Source::Live;
        self
    }

    /// Sets the initial value.
    pub fn default_value(mut self, value: impl Into<Value>) -> Self {
        self.default = Some(value.into());
        self
    }
}

/// An object definition: a single object or a table (multi-instance object, `{i}.` path).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectDef {
    /// For tables: whether the ACS may add and delete instances.
    pub access: Access,
    /// For tables: the most instances allowed (AddObject answers 9004 beyond it).
    pub max_entries: Option<u32>,
    /// For tables: the parent's `...NumberOfEntries` parameter name, computed by the model.
    pub num_entries_parameter: Option<String>,
}

impl ObjectDef {
    /// A single (non-table) object.
    pub fn single() -> Self {
        Self {
            access: Access::ReadOnly,
            max_entries: None,
            num_entries_parameter: None,
        }
    }

    /// A table; `access` says whether the ACS may add and delete instances.
    pub fn table(access: Access) -> Self {
        Self {
            access,
            ..Self::single()
        }
    }

    /// Caps the number of instances.
    pub fn max_entries(mut self, max: u32) -> Self {
        self.max_entries = Some(max);
        self
    }

    /// Names the parent object's parameter that counts this table's instances.
    pub fn num_entries(mut self, parameter: impl Into<String>) -> Self {
        self.num_entries_parameter = Some(parameter.into());
        self
    }
}

/// Index of a node in a [`Schema`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct NodeId(pub(crate) u32);

impl NodeId {
    fn index(self) -> usize {
        self.0 as usize
    }
}

#[derive(Debug)]
pub(crate) enum NodeKind {
    Object {
        def: ObjectDef,
        /// A table node: its own path ends in `{i}.`.
        table: bool,
        children: Vec<NodeId>,
    },
    Param {
        def: ParamDef,
        origin: Origin,
    },
}

#[derive(Debug)]
pub(crate) struct Node {
    /// Last path segment (`Bridge`, `Enable`).
    pub(crate) name: Box<str>,
    /// Full schema path; objects end in `.`, tables in `{i}.`.
    pub(crate) path: Arc<str>,
    pub(crate) parent: Option<NodeId>,
    /// Tables from the root down to this node, this node included when it is a table.
    pub(crate) depth: usize,
    pub(crate) kind: NodeKind,
}

/// An immutable set of object and parameter definitions, rooted at one object (`Device.`).
#[derive(Debug)]
pub struct Schema {
    nodes: Vec<Node>,
    by_path: HashMap<Arc<str>, NodeId>,
}

/// Why a [`SchemaBuilder`] rejected a definition.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SchemaError {
    /// The path is not a valid schema path for this kind of node.
    #[error("malformed schema path {0:?}")]
    MalformedPath(String),
    /// The path is defined twice.
    #[error("{0} is defined twice")]
    Duplicate(String),
    /// The parent object is not defined (objects must be added parents first).
    #[error("parent object of {0} is not defined")]
    MissingParent(String),
    /// A second root object.
    #[error("{0} would be a second root object")]
    SecondRoot(String),
    /// No root object was defined.
    #[error("the schema has no root object")]
    Empty,
    /// A default value does not satisfy the parameter's syntax.
    #[error("default value of {path} is invalid: {reason}")]
    InvalidDefault {
        /// The parameter.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// A live parameter was declared writable.
    #[error("{0} is live and writable; live parameters must be read-only")]
    WritableLive(String),
    /// A table's `num_entries` names a parameter its parent does not have, or one of the
    /// wrong type.
    #[error("{table} counts its entries in {parameter}, which is not an unsignedInt of its parent")]
    BadNumEntries {
        /// The table.
        table: String,
        /// The parameter name.
        parameter: String,
    },
}

/// Collects definitions, then checks and freezes them into a [`Schema`].
///
/// ```
/// use cwmp::model::{Access, ObjectDef, ParamDef, SchemaBuilder, Syntax};
///
/// let mut b = SchemaBuilder::new();
/// b.object("Device.", ObjectDef::single());
/// b.param("Device.Bridging.BridgeNumberOfEntries", ParamDef::read_only(Syntax::unsigned_int()));
/// b.object("Device.Bridging.", ObjectDef::single());
/// b.object(
///     "Device.Bridging.Bridge.{i}.",
///     ObjectDef::table(Access::ReadWrite).num_entries("BridgeNumberOfEntries"),
/// );
/// b.param("Device.Bridging.Bridge.{i}.Enable", ParamDef::read_write(Syntax::boolean()));
/// let schema = b.build()?;
/// assert!(schema.param("Device.Bridging.Bridge.{i}.Enable").is_some());
/// # Ok::<(), cwmp::model::SchemaError>(())
/// ```
#[derive(Debug, Default)]
pub struct SchemaBuilder {
    entries: Vec<(String, Entry)>,
}

#[derive(Debug)]
enum Entry {
    Object(ObjectDef),
    Param(ParamDef),
}

impl SchemaBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an object (`Device.DeviceInfo.`) or table (`Device.Bridging.Bridge.{i}.`).
    pub fn object(&mut self, path: impl Into<String>, def: ObjectDef) -> &mut Self {
        self.entries.push((path.into(), Entry::Object(def)));
        self
    }

    /// Adds a parameter (`Device.Bridging.Bridge.{i}.Enable`).
    pub fn param(&mut self, path: impl Into<String>, def: ParamDef) -> &mut Self {
        self.entries.push((path.into(), Entry::Param(def)));
        self
    }

    /// Checks every definition and builds the schema. Objects may be declared in any order
    /// relative to their parameters, but each object's parent must be declared.
    pub fn build(self) -> Result<Schema, SchemaError> {
        let mut schema = Schema {
            nodes: Vec::new(),
            by_path: HashMap::new(),
        };
        // Objects first, shortest path first, so parents precede children; then parameters in
        // declaration order. The declaration order among siblings is kept.
        let (mut objects, params): (Vec<_>, Vec<_>) = self
            .entries
            .into_iter()
            .enumerate()
            .partition(|(_, (_, e))| matches!(e, Entry::Object(_)));
        objects.sort_by_key(|(i, (path, _))| (path.matches('.').count(), *i));
        let mut params = params;
        params.sort_by_key(|(i, _)| *i);
        for (_, (path, entry)) in objects.into_iter().chain(params) {
            match entry {
                Entry::Object(def) => schema.add_object(path, def)?,
                Entry::Param(def) => schema.add_param(path, def)?,
            }
        }
        if schema.nodes.is_empty() {
            return Err(SchemaError::Empty);
        }
        schema.link_num_entries()?;
        if let Some(&id) = schema.by_path.get(PARAMETER_KEY_PATH)
            && let NodeKind::Param { origin, .. } = &mut schema.nodes[id.index()].kind
        {
            *origin = Origin::ParameterKey;
        }
        Ok(schema)
    }
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

impl Schema {
    pub(crate) fn node(&self, id: NodeId) -> &Node {
        &self.nodes[id.index()]
    }

    pub(crate) fn root(&self) -> NodeId {
        NodeId(0)
    }

    pub(crate) fn lookup(&self, schema_path: &str) -> Option<NodeId> {
        self.by_path.get(schema_path).copied()
    }

    /// Every node, in declaration order (objects before their parameters).
    pub(crate) fn ids(&self) -> impl Iterator<Item = NodeId> + '_ {
        (0..self.nodes.len()).map(|i| NodeId(i as u32))
    }

    /// The definition of a parameter, by schema path.
    pub fn param(&self, schema_path: &str) -> Option<&ParamDef> {
        match &self.node(self.lookup(schema_path)?).kind {
            NodeKind::Param { def, .. } => Some(def),
            NodeKind::Object { .. } => None,
        }
    }

    /// The definition of an object or table, by schema path (ending in `.`).
    pub fn object(&self, schema_path: &str) -> Option<&ObjectDef> {
        match &self.node(self.lookup(schema_path)?).kind {
            NodeKind::Object { def, .. } => Some(def),
            NodeKind::Param { .. } => None,
        }
    }

    /// Every parameter's schema path and definition, in declaration order.
    pub fn params(&self) -> impl Iterator<Item = (&str, &ParamDef)> + '_ {
        self.nodes.iter().filter_map(|n| match &n.kind {
            NodeKind::Param { def, .. } => Some((&*n.path, def)),
            NodeKind::Object { .. } => None,
        })
    }

    /// Every object's schema path and definition, parents first.
    pub fn objects(&self) -> impl Iterator<Item = (&str, &ObjectDef)> + '_ {
        self.nodes.iter().filter_map(|n| match &n.kind {
            NodeKind::Object { def, .. } => Some((&*n.path, def)),
            NodeKind::Param { .. } => None,
        })
    }

    fn push(&mut self, node: Node) -> NodeId {
        let id = NodeId(self.nodes.len() as u32);
        if let Some(parent) = node.parent
            && let NodeKind::Object { children, .. } = &mut self.nodes[parent.index()].kind
        {
            children.push(id);
        }
        self.by_path.insert(node.path.clone(), id);
        self.nodes.push(node);
        id
    }

    fn add_object(&mut self, path: String, def: ObjectDef) -> Result<(), SchemaError> {
        let malformed = || SchemaError::MalformedPath(path.clone());
        let trimmed = path.strip_suffix('.').ok_or_else(malformed)?;
        let (table, trimmed) = match trimmed.strip_suffix(".{i}") {
            Some(rest) => (true, rest),
            None => (false, trimmed),
        };
        let (parent_path, name) = match trimmed.rsplit_once('.') {
            Some((parent, name)) => (Some(format!("{parent}.")), name),
            None => (None, trimmed),
        };
        if !valid_name(name) {
            return Err(malformed());
        }
        if self.by_path.contains_key(path.as_str()) {
            return Err(SchemaError::Duplicate(path));
        }
        let (parent, depth) = match parent_path {
            None if self.nodes.is_empty() && !table => (None, 0),
            None if table => return Err(malformed()),
            None => return Err(SchemaError::SecondRoot(path)),
            Some(parent_path) => {
                let parent = self
                    .lookup(&parent_path)
                    .ok_or_else(|| SchemaError::MissingParent(path.clone()))?;
                (Some(parent), self.node(parent).depth)
            }
        };
        self.push(Node {
            name: name.into(),
            path: path.as_str().into(),
            parent,
            depth: depth + usize::from(table),
            kind: NodeKind::Object {
                def,
                table,
                children: Vec::new(),
            },
        });
        Ok(())
    }

    fn add_param(&mut self, path: String, def: ParamDef) -> Result<(), SchemaError> {
        let Some((parent_path, name)) = path.rsplit_once('.') else {
            return Err(SchemaError::MalformedPath(path));
        };
        if !valid_name(name) {
            return Err(SchemaError::MalformedPath(path));
        }
        if self.by_path.contains_key(path.as_str()) {
            return Err(SchemaError::Duplicate(path));
        }
        let parent = self
            .lookup(&format!("{parent_path}."))
            .ok_or_else(|| SchemaError::MissingParent(path.clone()))?;
        if def.source == Source::Live && def.access == Access::ReadWrite {
            return Err(SchemaError::WritableLive(path));
        }
        if let Some(default) = &def.default
            && let Err(e) = def.syntax.check(default.clone())
        {
            return Err(SchemaError::InvalidDefault {
                path,
                reason: e.to_string(),
            });
        }
        let origin = match def.source {
            Source::Stored => Origin::Stored,
            Source::Live => Origin::Live,
        };
        let depth = self.node(parent).depth;
        self.push(Node {
            name: name.into(),
            path: path.as_str().into(),
            parent: Some(parent),
            depth,
            kind: NodeKind::Param { def, origin },
        });
        Ok(())
    }

    /// Turns each table's `num_entries_parameter` into a computed parameter.
    fn link_num_entries(&mut self) -> Result<(), SchemaError> {
        let mut links = Vec::new();
        for (i, node) in self.nodes.iter().enumerate() {
            let NodeKind::Object {
                def, table: true, ..
            } = &node.kind
            else {
                continue;
            };
            let Some(parameter) = &def.num_entries_parameter else {
                continue;
            };
            let bad = || SchemaError::BadNumEntries {
                table: node.path.to_string(),
                parameter: parameter.clone(),
            };
            let parent = node.parent.ok_or_else(bad)?;
            let param_path = format!("{}{parameter}", self.node(parent).path);
            let param = self.lookup(&param_path).ok_or_else(bad)?;
            match &self.node(param).kind {
                NodeKind::Param { def, .. }
                    if def.syntax.base == super::value::BaseType::UnsignedInt
                        && def.access == Access::ReadOnly => {}
                _ => return Err(bad()),
            }
            links.push((param, NodeId(i as u32)));
        }
        for (param, table) in links {
            if let NodeKind::Param { origin, .. } = &mut self.nodes[param.index()].kind {
                *origin = Origin::NumberOfEntries(table);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> SchemaBuilder {
        let mut b = SchemaBuilder::new();
        b.object("Device.", ObjectDef::single());
        b
    }

    #[test]
    fn rejects_bad_definitions() {
        let cases: Vec<(SchemaBuilder, SchemaError)> = vec![
            (SchemaBuilder::new(), SchemaError::Empty),
            (
                {
                    let mut b = base();
                    b.object("Device.X.Y.", ObjectDef::single());
                    b
                },
                SchemaError::MissingParent("Device.X.Y.".into()),
            ),
            (
                {
                    let mut b = base();
                    b.object("Other.", ObjectDef::single());
                    b
                },
                SchemaError::SecondRoot("Other.".into()),
            ),
            (
                {
                    let mut b = base();
                    b.param("Device.A", ParamDef::read_only(Syntax::string()));
                    b.param("Device.A", ParamDef::read_only(Syntax::string()));
                    b
                },
                SchemaError::Duplicate("Device.A".into()),
            ),
            (
                {
                    let mut b = base();
                    b.param("Device.1A", ParamDef::read_only(Syntax::string()));
                    b
                },
                SchemaError::MalformedPath("Device.1A".into()),
            ),
            (
                {
                    let mut b = base();
                    b.object("Device.T", ObjectDef::single());
                    b
                },
                SchemaError::MalformedPath("Device.T".into()),
            ),
            (
                {
                    let mut b = base();
                    b.param("Device.Up", ParamDef::read_write(Syntax::boolean()).live());
                    b
                },
                SchemaError::WritableLive("Device.Up".into()),
            ),
            (
                {
                    let mut b = base();
                    b.object(
                        "Device.T.{i}.",
                        ObjectDef::table(Access::ReadWrite).num_entries("N"),
                    );
                    b
                },
                SchemaError::BadNumEntries {
                    table: "Device.T.{i}.".into(),
                    parameter: "N".into(),
                },
            ),
        ];
        for (builder, expected) in cases {
            assert_eq!(builder.build().expect_err("must fail"), expected);
        }
        let mut b = base();
        b.param(
            "Device.P",
            ParamDef::read_write(Syntax::unsigned_int().range(1, 10)).default_value(0u32),
        );
        assert!(matches!(
            b.build(),
            Err(SchemaError::InvalidDefault { path, .. }) if path == "Device.P"
        ));
    }

    #[test]
    fn objects_may_follow_their_parameters() {
        let mut b = SchemaBuilder::new();
        b.param("Device.T.{i}.Name", ParamDef::read_write(Syntax::string()));
        b.object("Device.T.{i}.", ObjectDef::table(Access::ReadWrite));
        b.object("Device.", ObjectDef::single());
        let schema = b.build().expect("valid");
        assert!(schema.param("Device.T.{i}.Name").is_some());
        assert_eq!(
            schema.object("Device.T.{i}.").map(|o| o.access),
            Some(Access::ReadWrite)
        );
        assert_eq!(schema.objects().count(), 2);
        assert_eq!(schema.params().count(), 1);
        let table = schema.lookup("Device.T.{i}.").expect("table");
        assert_eq!(schema.node(table).depth, 1);
    }
}
