//! A small element tree built from quick-xml's pull parser, within [`Limits`].
//!
//! Only what the codec needs survives: each element's local name, whether it is in a CWMP
//! namespace, the local part of its `type` attribute (`xsi:type`), its text and its child
//! elements. Every limit is enforced while reading, so the tree never grows past them.

use quick_xml::events::{BytesStart, Event};
use quick_xml::name::ResolveResult;
use quick_xml::reader::NsReader;

use super::{CWMP_NS_PREFIX, CwmpVersion, DecodeError, Limits, XmlError};

/// The namespace of an element, as far as the codec cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum NodeNs {
    /// Not a CWMP namespace: SOAP, none, an undeclared prefix, anything else.
    Other,
    /// One of the accepted CWMP namespaces.
    Cwmp(CwmpVersion),
    /// A `urn:dslforum-org:cwmp-*` namespace this codec does not accept.
    UnknownCwmp(Box<str>),
}

/// One element.
#[derive(Debug)]
pub(crate) struct Node {
    pub(crate) name: Box<str>,
    pub(crate) ns: NodeNs,
    /// Local part of the `type` attribute's value (`xsi:type="xsd:int"` -> `int`).
    pub(crate) xsi_type: Option<Box<str>>,
    /// Character data directly inside this element, unescaped, line ends normalized.
    pub(crate) text: String,
    pub(crate) children: Vec<Node>,
}

impl Node {
    /// The first child element with this local name.
    pub(crate) fn child(&self, name: &str) -> Option<&Node> {
        self.children.iter().find(|c| &*c.name == name)
    }
}

/// The parsed document: its root element and the first CWMP namespace declared anywhere.
#[derive(Debug)]
pub(crate) struct Document {
    pub(crate) root: Node,
    pub(crate) declared_ns: Option<CwmpVersion>,
}

/// Whether XML 1.0 allows this character (production `Char`).
pub(crate) fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

fn check_chars(text: &str) -> Result<(), DecodeError> {
    match text.chars().find(|&c| !is_xml_char(c)) {
        Some(c) => Err(DecodeError::IllegalChar(c.into())),
        None => Ok(()),
    }
}

fn classify(ns: &ResolveResult<'_>) -> NodeNs {
    let ResolveResult::Bound(ns) = ns else {
        return NodeNs::Other;
    };
    let Ok(uri) = std::str::from_utf8(ns.as_ref()) else {
        return NodeNs::Other;
    };
    match CwmpVersion::from_uri(uri) {
        Some(version) => NodeNs::Cwmp(version),
        None if uri.starts_with(CWMP_NS_PREFIX) => NodeNs::UnknownCwmp(uri.into()),
        None => NodeNs::Other,
    }
}

/// Text of an element name; input is valid UTF-8 and names split at ASCII `:`, but a lossy
/// conversion keeps this infallible regardless.
fn utf8(bytes: &[u8]) -> Box<str> {
    String::from_utf8_lossy(bytes).into()
}

struct Builder<'l> {
    limits: &'l Limits,
    stack: Vec<Node>,
    elements: usize,
    declared_ns: Option<CwmpVersion>,
}

impl Builder<'_> {
    /// Makes a node from a start tag, recording CWMP namespace declarations on the way.
    fn open(&mut self, ns: NodeNs, start: &BytesStart<'_>) -> Result<Node, DecodeError> {
        self.elements += 1;
        if self.elements > self.limits.max_elements {
            return Err(DecodeError::TooManyElements {
                limit: self.limits.max_elements,
            });
        }
        if self.stack.len() >= self.limits.max_depth {
            return Err(DecodeError::TooDeep {
                limit: self.limits.max_depth,
            });
        }
        let mut xsi_type = None;
        for attr in start.attributes() {
            let attr = attr.map_err(|e| xml_error(0, e.into()))?;
            let key = attr.key.as_ref();
            let is_decl = key == b"xmlns" || key.starts_with(b"xmlns:");
            if !is_decl && attr.key.local_name().as_ref() != b"type" {
                continue;
            }
            let value = attr.unescape_value().map_err(|e| map_xml_error(0, e))?;
            check_chars(&value)?;
            if is_decl {
                if self.declared_ns.is_none() {
                    self.declared_ns = CwmpVersion::from_uri(value.trim());
                }
            } else {
                // `xsi:type` is a QName; its prefix is not resolved, only the local part kept.
                let value = value.trim();
                let local = value.rsplit(':').next().unwrap_or(value).trim();
                xsi_type = (!local.is_empty()).then(|| local.into());
            }
        }
        Ok(Node {
            name: utf8(start.local_name().as_ref()),
            ns,
            xsi_type,
            text: String::new(),
            children: Vec::new(),
        })
    }

    /// Attaches a finished node to its parent; returns it when it is the root.
    fn close(&mut self, node: Node) -> Result<Option<Node>, DecodeError> {
        match self.stack.last_mut() {
            Some(parent) => {
                if parent.children.len() >= self.limits.max_list_entries {
                    return Err(DecodeError::TooManyEntries {
                        limit: self.limits.max_list_entries,
                    });
                }
                parent.children.push(node);
                Ok(None)
            }
            None => Ok(Some(node)),
        }
    }

    fn push_text(&mut self, text: &str) -> Result<(), DecodeError> {
        check_chars(text)?;
        match self.stack.last_mut() {
            Some(node) => node.text.push_str(text),
            // Only whitespace may stand outside the root element.
            None if text.chars().all(char::is_whitespace) => {}
            None => return Err(DecodeError::NotXml),
        }
        Ok(())
    }
}

fn xml_error(position: u64, source: quick_xml::Error) -> DecodeError {
    DecodeError::Xml {
        position,
        source: XmlError(source),
    }
}

/// Maps quick-xml errors, pulling out the cases with their own [`DecodeError`] variant.
fn map_xml_error(position: u64, error: quick_xml::Error) -> DecodeError {
    use quick_xml::escape::EscapeError;
    match error {
        quick_xml::Error::Escape(EscapeError::UnrecognizedEntity(_, name)) => {
            DecodeError::UnknownEntity(name)
        }
        other => xml_error(position, other),
    }
}

/// Parses `text` (already checked to be UTF-8, within the size limit) into a tree.
pub(crate) fn parse(text: &str, limits: &Limits) -> Result<Document, DecodeError> {
    let mut reader = NsReader::from_str(text);
    let config = reader.config_mut();
    config.check_end_names = true;
    config.allow_unmatched_ends = false;
    config.expand_empty_elements = false;
    config.trim_text(false);

    let mut b = Builder {
        limits,
        stack: Vec::new(),
        elements: 0,
        declared_ns: None,
    };
    loop {
        let (ns, event) = match reader.read_resolved_event() {
            Ok((ns, event @ (Event::Start(_) | Event::Empty(_)))) => (classify(&ns), event),
            Ok((_, event)) => (NodeNs::Other, event),
            Err(e) => return Err(map_xml_error(reader.error_position(), e)),
        };
        let pos = reader.buffer_position();
        let done = match event {
            Event::Start(start) => {
                let node = b.open(ns, &start).map_err(|e| at(e, pos))?;
                b.stack.push(node);
                None
            }
            Event::Empty(start) => {
                let node = b.open(ns, &start).map_err(|e| at(e, pos))?;
                b.close(node)?
            }
            Event::End(_) => match b.stack.pop() {
                Some(node) => b.close(node)?,
                // quick-xml reports unmatched end tags itself; this is only a fallback.
                None => return Err(DecodeError::NotEnvelope("/".to_owned())),
            },
            Event::Text(text) => {
                let text = text.xml10_content().map_err(|e| xml_error(pos, e.into()))?;
                b.push_text(&text)?;
                None
            }
            Event::CData(cdata) => {
                let text = cdata
                    .xml10_content()
                    .map_err(|e| xml_error(pos, e.into()))?;
                b.push_text(&text)?;
                None
            }
            Event::GeneralRef(reference) => {
                let c = resolve_reference(&reference).map_err(|e| at(e, pos))?;
                b.push_text(c.encode_utf8(&mut [0; 4]))?;
                None
            }
            Event::DocType(_) => return Err(DecodeError::Doctype),
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => None,
            Event::Eof => {
                return Err(if b.stack.is_empty() {
                    DecodeError::Empty
                } else {
                    DecodeError::Truncated
                });
            }
        };
        if let Some(root) = done {
            // Anything after the root element is ignored.
            return Ok(Document {
                root,
                declared_ns: b.declared_ns,
            });
        }
    }
}

/// Adds a position to the XML errors that were created without one.
fn at(error: DecodeError, position: u64) -> DecodeError {
    match error {
        DecodeError::Xml { source, .. } => DecodeError::Xml { position, source },
        other => other,
    }
}

/// Resolves `&name;`: the five predefined entities and character references, nothing else.
fn resolve_reference(reference: &quick_xml::events::BytesRef<'_>) -> Result<char, DecodeError> {
    let name = reference.decode().map_err(|e| xml_error(0, e.into()))?;
    let c = match &*name {
        "lt" => '<',
        "gt" => '>',
        "amp" => '&',
        "apos" => '\'',
        "quot" => '"',
        _ => match reference.resolve_char_ref() {
            Ok(Some(c)) => c,
            Ok(None) => return Err(DecodeError::UnknownEntity(name.into_owned())),
            Err(e) => return Err(xml_error(0, e)),
        },
    };
    if !is_xml_char(c) {
        return Err(DecodeError::IllegalChar(c.into()));
    }
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(xml: &str) -> Result<Document, DecodeError> {
        parse(xml, &Limits::default())
    }

    #[test]
    fn text_and_references_are_joined() {
        let doc = tree("<a>x &amp; &lt;y&gt; &#65;&#x42; &quot;&apos;<![CDATA[<z>]]></a>").unwrap();
        assert_eq!(doc.root.text, "x & <y> AB \"'<z>");
    }

    #[test]
    fn line_ends_are_normalized_but_char_refs_kept() {
        let doc = tree("<a>1\r\n2\r3&#13;</a>").unwrap();
        assert_eq!(doc.root.text, "1\n2\n3\r");
    }

    #[test]
    fn namespaces_are_classified() {
        let doc = tree(
            r#"<e xmlns:c="urn:dslforum-org:cwmp-1-2"><c:A/><B xmlns="urn:dslforum-org:cwmp-1-4"/>
               <x:C/><D xmlns="urn:dslforum-org:cwmp-2-0"/></e>"#,
        )
        .unwrap();
        let ns: Vec<_> = doc.root.children.iter().map(|c| c.ns.clone()).collect();
        assert_eq!(
            ns,
            [
                NodeNs::Cwmp(CwmpVersion::V1_2),
                NodeNs::Cwmp(CwmpVersion::V1_4),
                NodeNs::Other,
                NodeNs::UnknownCwmp("urn:dslforum-org:cwmp-2-0".into()),
            ]
        );
        assert_eq!(doc.declared_ns, Some(CwmpVersion::V1_2));
    }

    #[test]
    fn xsi_type_keeps_the_local_part() {
        let doc =
            tree(r#"<a><v xsi:type="xsd:int"/><v type=" string "/><v t:type="x:"/></a>"#).unwrap();
        let types: Vec<_> = doc
            .root
            .children
            .iter()
            .map(|c| c.xsi_type.as_deref())
            .collect();
        assert_eq!(types, [Some("int"), Some("string"), None]);
    }

    #[test]
    fn limits_are_enforced() {
        let limits = Limits {
            max_depth: 3,
            max_list_entries: 2,
            max_elements: 5,
            ..Limits::default()
        };
        assert!(parse("<a><b><c/></b></a>", &limits).is_ok());
        assert!(matches!(
            parse("<a><b><c><d/></c></b></a>", &limits),
            Err(DecodeError::TooDeep { limit: 3 })
        ));
        assert!(matches!(
            parse("<a><b/><b/><b/></a>", &limits),
            Err(DecodeError::TooManyEntries { limit: 2 })
        ));
        assert!(matches!(
            parse("<a><b><c/><c/></b><b><c/><c/></b></a>", &limits),
            Err(DecodeError::TooManyElements { limit: 5 })
        ));
    }

    #[test]
    fn hostile_documents_are_rejected() {
        assert!(matches!(
            tree("<!DOCTYPE a [<!ENTITY x \"y\">]><a>&x;</a>"),
            Err(DecodeError::Doctype)
        ));
        assert!(matches!(tree("<a>&x;</a>"), Err(DecodeError::UnknownEntity(n)) if n == "x"));
        assert!(matches!(
            tree("<a>&#1;</a>"),
            Err(DecodeError::IllegalChar(1))
        ));
        assert!(matches!(
            tree("<a>\u{1}</a>"),
            Err(DecodeError::IllegalChar(1))
        ));
        assert!(matches!(
            tree("<a>\u{FFFE}</a>"),
            Err(DecodeError::IllegalChar(0xFFFE))
        ));
        assert!(matches!(tree("<a>&#0;</a>"), Err(DecodeError::Xml { .. })));
        assert!(matches!(
            tree("<a>&#xD800;</a>"),
            Err(DecodeError::Xml { .. })
        ));
        assert!(matches!(
            tree("<a xsi:type='&#1;'/>"),
            Err(DecodeError::IllegalChar(1))
        ));
        assert!(matches!(
            tree("<a type='&x;'/>"),
            Err(DecodeError::UnknownEntity(_))
        ));
        assert!(matches!(tree("<a><b></a>"), Err(DecodeError::Xml { .. })));
        assert!(matches!(tree("<a><b>"), Err(DecodeError::Truncated)));
        assert!(matches!(tree("<a"), Err(DecodeError::Xml { .. })));
        assert!(matches!(
            tree("<a>x &amp y</a>"),
            Err(DecodeError::Xml { .. })
        ));
        assert!(matches!(
            tree("<a x='1' x='2'/>"),
            Err(DecodeError::Xml { .. })
        ));
        assert!(matches!(tree("junk<a/>"), Err(DecodeError::NotXml)));
        assert!(matches!(
            tree("<?xml version='1.0'?>  <!-- c -->  "),
            Err(DecodeError::Empty)
        ));
    }
}
