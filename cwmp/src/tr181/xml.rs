//! A reader for the Broadband Forum's data-model XML (`cwmp-datamodel-1-x` documents such as
//! `tr-181-2-cwmp.xml`): it flattens the components, models and `base` refinements of a set
//! of files into one table of objects and parameters with their type, facets and access.
//!
//! ```text
//!  tr-181-2-cwmp.xml   model Device:2.19 base=_Device:2.19 ---+ ManagementServer, ...
//!     import tr-181-2-common.xml  model _Device:2.19 = Device:2.19
//!  tr-181-2-common.xml model Device:2.19: component ref=Root, DeviceInfo, Bridging, ...
//!  tr-181-2-bridging.xml component Bridging: object Device.Bridging.Bridge.{i}.
//!                          component ref=Port -> object Port.{i}. (relative to Bridge.{i}.)
//!  ==> DataModel { "Device.Bridging.Bridge.{i}.Port.{i}.Name": string(64), readOnly, ... }
//! ```
//!
//! It implements the part of the data-model schema a CWMP agent needs (objects, parameters,
//! syntax facets, `activeNotify`, `forcedInform`, `hidden`, object defaults), not the whole
//! DM Instance semantics: profiles, descriptions, patterns, units and USP commands are
//! ignored, and components or models from files that are not supplied are skipped (listed in
//! [`DataModel::missing`]). The named types of `tr-106-types.xml` (which the TR-181 files
//! import) are built in, as is its CWMP `Alias` component.
//!
//! The reader does no I/O: it takes the files' names and text. It is used by the tests that
//! prove each parameter the crate exposes matches the official definition.

use std::collections::{BTreeMap, HashMap};

use quick_xml::events::{BytesStart, Event};
use quick_xml::reader::Reader;

use crate::model::{Access, ActiveNotify, BaseType, ListSyntax, Range, Syntax};

/// A parameter as the XML defines it.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct XmlParam {
    /// `readOnly` (also `writeOnceReadOnly`) or `readWrite`.
    pub(super) access: Access,
    /// Type and facets.
    pub(super) syntax: Syntax,
    /// `forcedInform="true"`.
    pub(super) forced_inform: bool,
    /// The `activeNotify` facet.
    pub(super) active_notify: ActiveNotify,
    /// `<syntax hidden="true">`.
    pub(super) hidden: bool,
    /// `<syntax command="true">`.
    pub(super) command: bool,
    /// The object-creation default (`<default type="object">`), as text; lists as `a,b`.
    pub(super) default: Option<String>,
}

/// An object as the XML defines it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct XmlObject {
    /// For tables: whether instances may be added and deleted.
    pub(super) access: Access,
    /// Whether the path ends in `{i}.`.
    pub(super) table: bool,
    /// `maxEntries`; `None` for `unbounded`.
    pub(super) max_entries: Option<u32>,
    /// `numEntriesParameter`.
    pub(super) num_entries_parameter: Option<String>,
}

/// A flattened data model: every object and parameter by schema path.
#[derive(Debug, Clone, Default)]
pub(super) struct DataModel {
    objects: BTreeMap<String, XmlObject>,
    params: BTreeMap<String, XmlParam>,
    missing: Vec<String>,
    model: String,
}

/// Why the XML could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(super) enum XmlError {
    /// A file is not well-formed XML.
    #[error("{file}: malformed XML at byte {position}")]
    Malformed {
        /// The file name.
        file: String,
        /// Byte offset of the error.
        position: u64,
        /// What the parser reported.
        #[source]
        source: quick_xml::Error,
    },
    /// No file defines a `Device:` model.
    #[error("no Device model found in the files")]
    NoModel,
}

/// One element, without text: local name, attributes, children.
#[derive(Debug, Default)]
struct Elem {
    name: String,
    attrs: Vec<(String, String)>,
    children: Vec<Elem>,
}

impl Elem {
    fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Elem> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    fn deleted(&self) -> bool {
        matches!(self.attr("status"), Some("deleted" | "obsoleted"))
    }

    fn from_start(start: &BytesStart<'_>) -> Self {
        let local = |raw: &[u8]| String::from_utf8_lossy(raw).into_owned();
        let attrs = start
            .attributes()
            .flatten()
            .map(|a| {
                let key = local(a.key.local_name().as_ref());
                let value = a
                    .unescape_value()
                    .map(|v| v.into_owned())
                    .unwrap_or_else(|_| local(&a.value));
                (key, value)
            })
            .collect();
        Self {
            name: local(start.local_name().as_ref()),
            attrs,
            children: Vec::new(),
        }
    }
}

fn parse_document(file: &str, text: &str) -> Result<Elem, XmlError> {
    let mut reader = Reader::from_str(text);
    reader.config_mut().trim_text(true);
    let mut stack = vec![Elem::default()];
    loop {
        let malformed = |reader: &Reader<&[u8]>, source| XmlError::Malformed {
            file: file.to_owned(),
            position: reader.error_position(),
            source,
        };
        match reader.read_event() {
            Err(e) => return Err(malformed(&reader, e)),
            Ok(Event::Start(start)) => stack.push(Elem::from_start(&start)),
            Ok(Event::Empty(start)) => {
                let elem = Elem::from_start(&start);
                if let Some(parent) = stack.last_mut() {
                    parent.children.push(elem);
                }
            }
            Ok(Event::End(_)) => {
                if stack.len() > 1
                    && let Some(elem) = stack.pop()
                    && let Some(parent) = stack.last_mut()
                {
                    parent.children.push(elem);
                }
            }
            Ok(Event::Eof) => break,
            Ok(_) => {}
        }
    }
    let mut top = stack.into_iter().next().unwrap_or_default();
    Ok(top.children.pop().unwrap_or_default())
}

/// The named data types of `tr-106-types.xml`, which the TR-181 files import but which is not
/// part of the TR-181 set.
fn tr106_type(name: &str) -> Option<Syntax> {
    Some(match name {
        "Alias" | "_AliasCWMP" | "_AliasCommon" | "_AliasUSP" => Syntax::string_max(64),
        "Dbm1000" => Syntax::int(),
        "DiagnosticsState" => {
            Syntax::string().enumeration(&["None", "Requested", "Canceled", "Complete", "Error"])
        }
        "IEEE_EUI64" => Syntax::string_max(23),
        "IPAddress" | "IPv6Address" => Syntax::string_max(45),
        "IPv4Address" => Syntax::string_max(15),
        "IPPrefix" | "IPv6Prefix" => Syntax::string_max(49),
        "IPv4Prefix" => Syntax::string_max(18),
        "JSONObject" => Syntax::string(),
        "MACAddress" => Syntax::string_max(17),
        "Order" => Syntax::unsigned_int().min(1),
        "PLMNId" => Syntax::unsigned_int(),
        "StatsCounter32" => Syntax::unsigned_int(),
        "StatsCounter64" => Syntax::unsigned_long(),
        "UUID" => Syntax::string_max(36).min_len(36),
        "URI" | "URN" | "URL" => Syntax::string_max(2048),
        "ZigBeeNetworkAddress" => Syntax::string_max(4),
        _ => return None,
    })
}

/// `tr-106-types.xml`'s `_AliasCWMP` component: a writable `Alias` of type `Alias`.
fn tr106_alias_component() -> Elem {
    let attr = |k: &str, v: &str| (k.to_owned(), v.to_owned());
    Elem {
        name: "component".into(),
        attrs: vec![attr("name", "_AliasCWMP")],
        children: vec![Elem {
            name: "parameter".into(),
            attrs: vec![attr("name", "Alias"), attr("access", "readWrite")],
            children: vec![Elem {
                name: "syntax".into(),
                attrs: Vec::new(),
                children: vec![Elem {
                    name: "dataType".into(),
                    attrs: vec![attr("ref", "_AliasCWMP")],
                    children: Vec::new(),
                }],
            }],
        }],
    }
}

/// Nesting bound for component references (the TR-181 files need about 6).
const MAX_COMPONENT_DEPTH: usize = 32;

struct Loader<'d> {
    /// Non-virtual components, by name, over all files.
    components: HashMap<&'d str, &'d Elem>,
    /// `import` aliases: local component name -> referenced name.
    component_aliases: HashMap<&'d str, &'d str>,
    /// Models by `(file, name)`.
    models: HashMap<(&'d str, &'d str), &'d Elem>,
    /// `import` model aliases: `(importing file, local name)` -> `(file, name)`.
    model_aliases: HashMap<(&'d str, &'d str), (&'d str, &'d str)>,
    alias_component: &'d Elem,
    out: DataModel,
}

impl DataModel {
    /// Reads a set of data-model files, given as `(file name, text)`; the file names are the
    /// ones `import` elements use (e.g. `tr-181-2-common.xml`). The model expanded is the
    /// `Device:` model that refines another (in the TR-181 set, the CWMP one in
    /// `tr-181-2-cwmp.xml`), else any `Device:` model.
    pub(super) fn parse<'a>(
        files: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, XmlError> {
        let mut docs = Vec::new();
        for (name, text) in files {
            docs.push((name.to_owned(), parse_document(name, text)?));
        }
        let alias_component = tr106_alias_component();
        let mut loader = Loader {
            components: HashMap::new(),
            component_aliases: HashMap::new(),
            models: HashMap::new(),
            model_aliases: HashMap::new(),
            alias_component: &alias_component,
            out: DataModel::default(),
        };
        for (file, doc) in &docs {
            loader.index(file, doc);
        }
        let root = docs
            .iter()
            .flat_map(|(file, doc)| doc.children_named("model").map(move |m| (file, m)))
            .filter(|(_, m)| m.attr("name").is_some_and(|n| n.starts_with("Device:")))
            .max_by_key(|(_, m)| m.attr("base").is_some());
        let (file, model) = root.ok_or(XmlError::NoModel)?;
        loader.out.model = model.attr("name").unwrap_or_default().to_owned();
        loader.expand_model(file, model, 0);
        loader.out.missing.sort();
        loader.out.missing.dedup();
        Ok(loader.out)
    }

    /// The name of the model expanded (e.g. `Device:2.19`).
    pub(super) fn model_name(&self) -> &str {
        &self.model
    }

    /// A parameter by schema path (`Device.Bridging.Bridge.{i}.Enable`).
    pub(super) fn param(&self, path: &str) -> Option<&XmlParam> {
        self.params.get(path)
    }

    /// An object by schema path (`Device.Bridging.Bridge.{i}.`).
    pub(super) fn object(&self, path: &str) -> Option<&XmlObject> {
        self.objects.get(path)
    }

    /// Every parameter, sorted by path.
    pub(super) fn params(&self) -> impl Iterator<Item = (&str, &XmlParam)> + '_ {
        self.params.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Every object, sorted by path.
    pub(super) fn objects(&self) -> impl Iterator<Item = (&str, &XmlObject)> + '_ {
        self.objects.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Components and models referenced but defined in none of the files given.
    pub(super) fn missing(&self) -> &[String] {
        &self.missing
    }
}

impl<'d> Loader<'d> {
    fn index(&mut self, file: &'d str, doc: &'d Elem) {
        for child in &doc.children {
            match child.name.as_str() {
                "component" => {
                    if let Some(name) = child.attr("name")
                        && child.attr("virtual") != Some("true")
                    {
                        self.components.insert(name, child);
                    }
                }
                "model" => {
                    if let Some(name) = child.attr("name") {
                        self.models.insert((file, name), child);
                    }
                }
                "import" => {
                    let Some(from) = child.attr("file") else {
                        continue;
                    };
                    for item in &child.children {
                        let Some(name) = item.attr("name") else {
                            continue;
                        };
                        let target = item.attr("ref").unwrap_or(name);
                        match item.name.as_str() {
                            "component" if target != name => {
                                self.component_aliases.insert(name, target);
                            }
                            "model" => {
                                self.model_aliases.insert((file, name), (from, target));
                            }
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
    }

    fn component(&mut self, name: &'d str) -> Option<&'d Elem> {
        let name = self.component_aliases.get(name).copied().unwrap_or(name);
        if let Some(c) = self.components.get(name) {
            return Some(c);
        }
        if name == "_AliasCWMP" || name == "Alias" {
            return Some(self.alias_component);
        }
        self.out.missing.push(format!("component {name}"));
        None
    }

    fn expand_model(&mut self, file: &'d str, model: &'d Elem, depth: usize) {
        if depth > MAX_COMPONENT_DEPTH {
            return;
        }
        if let Some(base) = model.attr("base") {
            let (base_file, base_name) = self
                .model_aliases
                .get(&(file, base))
                .copied()
                .unwrap_or((file, base));
            match self.models.get(&(base_file, base_name)).copied() {
                Some(base_model) => self.expand_model(base_file, base_model, depth + 1),
                None => self.out.missing.push(format!("model {base_name}")),
            }
        }
        self.expand(&model.children, None, depth);
    }

    fn expand(&mut self, items: &'d [Elem], ctx: Option<&str>, depth: usize) {
        if depth > MAX_COMPONENT_DEPTH {
            return;
        }
        for item in items {
            if item.deleted() {
                continue;
            }
            match item.name.as_str() {
                "component" => {
                    if let Some(name) = item.attr("ref")
                        && let Some(component) = self.component(name)
                    {
                        self.expand(&component.children, ctx, depth + 1);
                    }
                }
                "object" => self.object(item, ctx, depth),
                "parameter" => {
                    if let Some(ctx) = ctx {
                        self.parameter(item, ctx);
                    }
                }
                _ => {}
            }
        }
    }

    fn object(&mut self, item: &'d Elem, ctx: Option<&str>, depth: usize) {
        let absolute = |name: &str| match ctx {
            Some(ctx) if !name.starts_with("Device.") => format!("{ctx}{name}"),
            _ => name.to_owned(),
        };
        let access = item.attr("access").map(access_of);
        let path = if let Some(name) = item.attr("name") {
            let path = absolute(name);
            self.out.objects.insert(
                path.clone(),
                XmlObject {
                    access: access.unwrap_or(Access::ReadOnly),
                    table: path.ends_with("{i}."),
                    max_entries: item.attr("maxEntries").and_then(|m| m.parse().ok()),
                    num_entries_parameter: item.attr("numEntriesParameter").map(str::to_owned),
                },
            );
            path
        } else if let Some(base) = item.attr("base") {
            let path = absolute(base);
            let obj = self.out.objects.entry(path.clone()).or_insert(XmlObject {
                access: Access::ReadOnly,
                table: path.ends_with("{i}."),
                max_entries: None,
                num_entries_parameter: None,
            });
            if let Some(access) = access {
                obj.access = access;
            }
            path
        } else {
            return;
        };
        self.expand(&item.children, Some(&path), depth + 1);
    }

    fn parameter(&mut self, item: &Elem, ctx: &str) {
        let (name, is_base) = match (item.attr("name"), item.attr("base")) {
            (Some(name), _) => (name, false),
            (None, Some(base)) => (base, true),
            (None, None) => return,
        };
        let path = format!("{ctx}{name}");
        let existing = if is_base {
            self.out.params.remove(&path)
        } else {
            None
        };
        let mut param = existing.unwrap_or(XmlParam {
            access: Access::ReadOnly,
            syntax: Syntax::string(),
            forced_inform: false,
            active_notify: ActiveNotify::Normal,
            hidden: false,
            command: false,
            default: None,
        });
        if let Some(access) = item.attr("access") {
            param.access = access_of(access);
        }
        if let Some(forced) = item.attr("forcedInform") {
            param.forced_inform = forced == "true";
        }
        if let Some(notify) = item.attr("activeNotify") {
            param.active_notify = match notify {
                "forceEnabled" => ActiveNotify::ForceEnabled,
                "forceDefaultEnabled" => ActiveNotify::ForceDefaultEnabled,
                "canDeny" => ActiveNotify::CanDeny,
                "willDeny" => ActiveNotify::WillDeny,
                _ => ActiveNotify::Normal,
            };
        }
        if let Some(syntax) = item.children_named("syntax").next() {
            param.hidden |= syntax.attr("hidden") == Some("true");
            param.command |= syntax.attr("command") == Some("true");
            apply_syntax(&mut param, syntax, is_base);
        }
        self.out.params.insert(path, param);
    }
}

fn access_of(text: &str) -> Access {
    match text {
        "readWrite" => Access::ReadWrite,
        _ => Access::ReadOnly,
    }
}

/// Applies a `<syntax>` element: a new definition sets the type and facets; a `base`
/// refinement keeps the facets it does not restate and adds enumeration values.
fn apply_syntax(param: &mut XmlParam, syntax: &Elem, refine: bool) {
    for child in &syntax.children {
        match child.name.as_str() {
            "list" => {
                let mut list = if refine {
                    param.syntax.list.unwrap_or_default()
                } else {
                    ListSyntax::default()
                };
                let number = |name| child.attr(name).and_then(|v| v.parse().ok());
                list.min_items = number("minItems").or(list.min_items);
                list.max_items = number("maxItems").or(list.max_items);
                if let Some(size) = child.children_named("size").next() {
                    list.max_length = size
                        .attr("maxLength")
                        .and_then(|v| v.parse().ok())
                        .or(list.max_length);
                }
                param.syntax.list = Some(list);
            }
            "default" => {
                if child.attr("type") == Some("object")
                    && let Some(value) = child.attr("value")
                {
                    param.default = Some(list_default(value));
                }
            }
            "dataType" => {
                let base = child
                    .attr("ref")
                    .or(child.attr("base"))
                    .and_then(tr106_type)
                    .unwrap_or_else(Syntax::string);
                let list = param.syntax.list.take();
                param.syntax = Syntax { list, ..base };
                apply_facets(&mut param.syntax, child);
            }
            name => {
                let Some(base) = BaseType::from_name(name) else {
                    continue;
                };
                if !refine || param.syntax.base != base {
                    let list = param.syntax.list.take();
                    param.syntax = Syntax {
                        list,
                        ..Syntax::of(base)
                    };
                }
                apply_facets(&mut param.syntax, child);
            }
        }
    }
    if !refine && syntax.children_named("list").next().is_none() {
        param.syntax.list = None;
    }
}

/// Applies `size`, `range` and `enumeration` facets of a type element.
fn apply_facets(syntax: &mut Syntax, elem: &Elem) {
    let number = |e: &Elem, name: &str| e.attr(name).and_then(|v| v.parse::<i128>().ok());
    let mut ranges = Vec::new();
    for facet in &elem.children {
        if facet.deleted() {
            continue;
        }
        match facet.name.as_str() {
            "size" => {
                let len = |name| number(facet, name).and_then(|v| u32::try_from(v).ok());
                syntax.min_length = len("minLength").or(syntax.min_length);
                syntax.max_length = len("maxLength").or(syntax.max_length);
            }
            "range" => ranges.push(Range {
                min: number(facet, "minInclusive"),
                max: number(facet, "maxInclusive"),
                step: number(facet, "step"),
            }),
            "enumeration" => {
                if let Some(value) = facet.attr("value")
                    && !syntax.enumeration.iter().any(|e| e == value)
                {
                    syntax.enumeration.push(value.to_owned());
                }
            }
            _ => {}
        }
    }
    if !ranges.is_empty() {
        syntax.ranges = ranges;
    }
}

/// TR-106 list defaults are written `[a,b]`; `<Empty>` is the empty string.
fn list_default(value: &str) -> String {
    match value.strip_prefix('[').and_then(|v| v.strip_suffix(']')) {
        Some(items) => items.to_owned(),
        None if value == "<Empty>" => String::new(),
        None => value.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = r#"<?xml version="1.0"?>
<dm:document xmlns:dm="urn:broadband-forum-org:cwmp:datamodel-1-10" spec="x">
  <import file="tr-106-types.xml"><component name="Alias"/><dataType name="MACAddress"/></import>
  <import file="other.xml"><component name="Stats" ref="StatsCWMP"/></import>
  <component name="Port">
    <parameter name="PortNumberOfEntries" access="readOnly"><syntax><unsignedInt/></syntax></parameter>
    <object name="Port.{i}." access="readWrite" numEntriesParameter="PortNumberOfEntries" maxEntries="unbounded">
      <component ref="Alias"/>
      <component ref="Stats"/>
      <parameter name="Status"><syntax><string><enumeration value="Up"/><enumeration value="Gone" status="deleted"/></string></syntax></parameter>
      <parameter name="LowerLayers" access="readWrite"><syntax><list><size maxLength="1024"/></list><string/></syntax></parameter>
      <parameter name="Old" access="readWrite" status="deleted"><syntax><boolean/></syntax></parameter>
    </object>
  </component>
  <component name="Defaults">
    <parameter base="Status"><syntax><string><enumeration value="Down"/></string><default type="object" value="Down"/></syntax></parameter>
    <parameter base="LowerLayers"><syntax><list/><string/><default type="object" value="[]"/></syntax></parameter>
  </component>
  <component name="StatsCWMP">
    <parameter name="Reset" access="readWrite"><syntax command="true"><boolean/></syntax></parameter>
  </component>
  <model name="Device:2.1">
    <object name="Device." access="readOnly" maxEntries="1"/>
    <object name="Device.X." access="readOnly" maxEntries="1">
      <parameter name="Mac" access="readWrite" forcedInform="true" activeNotify="canDeny">
        <syntax hidden="true"><dataType ref="MACAddress"/></syntax>
      </parameter>
      <parameter name="Vlan" access="readWrite">
        <syntax><unsignedInt><range minInclusive="1" maxInclusive="4094"/><range minInclusive="5000" step="2"/></unsignedInt></syntax>
      </parameter>
      <component ref="Port"/>
      <component ref="Nowhere"/>
    </object>
    <object base="Device.X.Port.{i}.">
      <component ref="Defaults"/>
    </object>
  </model>
</dm:document>"#;

    #[test]
    fn flattens_components_refinements_and_types() {
        let dm = DataModel::parse([("t.xml", DOC)]).expect("parses");
        assert_eq!(dm.model_name(), "Device:2.1");
        let port = dm.object("Device.X.Port.{i}.").expect("port table");
        assert_eq!(
            *port,
            XmlObject {
                access: Access::ReadWrite,
                table: true,
                max_entries: None,
                num_entries_parameter: Some("PortNumberOfEntries".into()),
            }
        );
        assert_eq!(dm.object("Device.X.").map(|o| o.max_entries), Some(Some(1)));
        let status = dm.param("Device.X.Port.{i}.Status").expect("status");
        assert_eq!(
            status.access,
            Access::ReadOnly,
            "access defaults to readOnly"
        );
        assert_eq!(status.syntax.enumeration, ["Up", "Down"]);
        assert_eq!(status.default.as_deref(), Some("Down"));
        let layers = dm.param("Device.X.Port.{i}.LowerLayers").expect("layers");
        assert_eq!(layers.syntax.list.and_then(|l| l.max_length), Some(1024));
        assert_eq!(layers.default.as_deref(), Some(""));
        let alias = dm.param("Device.X.Port.{i}.Alias").expect("built-in Alias");
        assert_eq!(
            (alias.access, alias.syntax.max_length),
            (Access::ReadWrite, Some(64))
        );
        let reset = dm
            .param("Device.X.Port.{i}.Reset")
            .expect("aliased component");
        assert!(reset.command);
        assert!(dm.param("Device.X.Port.{i}.Old").is_none(), "deleted");
        let mac = dm.param("Device.X.Mac").expect("mac");
        assert!(mac.forced_inform && mac.hidden);
        assert_eq!(mac.active_notify, ActiveNotify::CanDeny);
        assert_eq!(mac.syntax, Syntax::string_max(17));
        let vlan = dm.param("Device.X.Vlan").expect("vlan");
        assert_eq!(vlan.syntax.ranges.len(), 2);
        assert_eq!(vlan.syntax.ranges[1].step, Some(2));
        assert!(dm.param("Device.X.PortNumberOfEntries").is_some());
        assert_eq!(dm.missing(), ["component Nowhere"]);
        assert_eq!(dm.params().count(), 7);
        assert_eq!(dm.objects().count(), 3);
    }

    #[test]
    fn errors() {
        assert!(matches!(
            DataModel::parse([("a.xml", "<document><model name='Other'/></document>")]),
            Err(XmlError::NoModel)
        ));
        assert!(matches!(
            DataModel::parse([("b.xml", "<document><model></document>")]),
            Err(XmlError::Malformed { .. })
        ));
    }
}
