//! The CWMP SOAP envelope: decode bytes into a typed [`Envelope`], encode one back to bytes.
//!
//! ```text
//! <soapenv:Envelope xmlns:soapenv=.. xmlns:soapenc=.. xmlns:xsd=.. xmlns:xsi=.. xmlns:cwmp=..>
//!   <soapenv:Header>                                 optional
//!     <cwmp:ID soapenv:mustUnderstand="1">..</cwmp:ID>          Envelope::id
//!     <cwmp:HoldRequests soapenv:mustUnderstand="1">1<..>       Envelope::hold_requests
//!     <cwmp:SessionTimeout>..</..>                   CWMP 1.3   Envelope::session_timeout
//!     <cwmp:SupportedCWMPVersions>..</..>            CWMP 1.4   Envelope::supported_cwmp_versions
//!     <cwmp:UseCWMPVersion>..</..>                   CWMP 1.4   Envelope::use_cwmp_version
//!   </soapenv:Header>
//!   <soapenv:Body>
//!     <cwmp:Inform>..</cwmp:Inform>                  one RPC, a soapenv:Fault, or nothing
//!   </soapenv:Body>
//! </soapenv:Envelope>
//! ```
//!
//! # Decoding: liberal, bounded, never panics
//! [`decode`] accepts any namespace prefix (`soap`, `soapenv`, `SOAP-ENV`, `cwmp`, `ns`, a
//! default `xmlns`, even undeclared prefixes), any whitespace between elements, optional or
//! odd `xsi:type` / `soapenc:arrayType` annotations, array items under any element name, and
//! the namespaces `urn:dslforum-org:cwmp-1-0` .. `cwmp-1-4`, reporting which one the peer used
//! in [`Envelope::ns`]. It rejects, with a typed [`DecodeError`] and before building anything
//! large: input over [`Limits::max_bytes`], invalid UTF-8, any `<!DOCTYPE>` (so no entity
//! expansion), undefined entities, characters XML forbids, nesting beyond
//! [`Limits::max_depth`], more than [`Limits::max_list_entries`] children in one element or
//! [`Limits::max_elements`] in all, and truncated or ill-formed XML. Anything after the root
//! element is ignored. No input can make it panic; `fuzz/` holds the fuzz target that checks
//! this.
//!
//! An unknown method decodes as [`Body::Unknown`] (answer it with fault 9000). A known
//! method whose arguments are missing or malformed is [`DecodeError::InvalidArguments`],
//! which still carries the `cwmp:ID` so the CPE can answer with fault 9003.
//!
//! # Encoding: strict
//! [`encode`] writes UTF-8 with an XML declaration, the prefixes `soapenv`, `soapenc`, `xsd`,
//! `xsi` and `cwmp` (bound to [`Envelope::ns`]), `soapenc:arrayType` on every array
//! (`cwmp:ParameterValueStruct[3]`, `xsd:string[2]`), `xsi:type` on every
//! `ParameterValueStruct` value, booleans as `1`/`0`, and TR-069's `Client`/`Server` SOAP
//! fault codes. Text is escaped; characters XML 1.0 cannot carry are replaced by U+FFFD.
//!
//! The empty HTTP POST that ends the CPE's requests is not a SOAP document: check it with
//! [`is_empty_post`] before calling [`decode`]. An envelope whose Body is empty decodes as
//! [`Body::Empty`].
//!
//! ```
//! use cwmp::soap::{self, Body, Envelope, GetRpcMethodsResponse, Limits};
//!
//! let request = br#"<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/"
//!     xmlns:cwmp="urn:dslforum-org:cwmp-1-0"><SOAP-ENV:Header>
//!     <cwmp:ID SOAP-ENV:mustUnderstand="1">42</cwmp:ID></SOAP-ENV:Header>
//!     <SOAP-ENV:Body><cwmp:GetRPCMethods/></SOAP-ENV:Body></SOAP-ENV:Envelope>"#;
//! let env = soap::decode(request, &Limits::default())?;
//! assert_eq!(env.body, Body::GetRpcMethods);
//!
//! // Answer in the peer's namespace, echoing its cwmp:ID.
//! let methods = vec!["GetRPCMethods".to_owned(), "GetParameterValues".to_owned()];
//! let reply = Envelope {
//!     id: env.id.clone(),
//!     ..Envelope::new(env.ns, Body::GetRpcMethodsResponse(GetRpcMethodsResponse { method_list: methods }))
//! };
//! let bytes = reply.encode();
//! assert!(bytes.starts_with(b"<?xml"));
//! assert_eq!(soap::decode(&bytes, &Limits::default())?, reply);
//! # Ok::<(), soap::DecodeError>(())
//! ```

mod decode;
mod encode;
mod tree;
mod types;

use std::fmt;

pub use decode::decode;
pub use encode::encode;
pub use types::*;

use crate::fault::Fault;

/// The CWMP namespace URI a peer used (`urn:dslforum-org:cwmp-1-N`).
///
/// This is the namespace written on the wire, not the protocol version: by the schemas, CWMP
/// 1.3 and 1.4 still use `urn:dslforum-org:cwmp-1-2`, but `cwmp-1-3` and `cwmp-1-4` are seen
/// in the field and accepted too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum CwmpVersion {
    /// `urn:dslforum-org:cwmp-1-0` (the default when a document names no CWMP namespace).
    #[default]
    V1_0,
    /// `urn:dslforum-org:cwmp-1-1`.
    V1_1,
    /// `urn:dslforum-org:cwmp-1-2`.
    V1_2,
    /// `urn:dslforum-org:cwmp-1-3`.
    V1_3,
    /// `urn:dslforum-org:cwmp-1-4`.
    V1_4,
}

/// Prefix shared by every CWMP namespace URI.
pub(crate) const CWMP_NS_PREFIX: &str = "urn:dslforum-org:cwmp-";

impl CwmpVersion {
    /// Every accepted namespace, oldest first.
    pub const ALL: [Self; 5] = [Self::V1_0, Self::V1_1, Self::V1_2, Self::V1_3, Self::V1_4];

    /// The namespace URI.
    pub fn uri(self) -> &'static str {
        match self {
            Self::V1_0 => "urn:dslforum-org:cwmp-1-0",
            Self::V1_1 => "urn:dslforum-org:cwmp-1-1",
            Self::V1_2 => "urn:dslforum-org:cwmp-1-2",
            Self::V1_3 => "urn:dslforum-org:cwmp-1-3",
            Self::V1_4 => "urn:dslforum-org:cwmp-1-4",
        }
    }

    /// Maps a namespace URI to its version; `None` for anything else.
    pub fn from_uri(uri: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.uri() == uri)
    }
}

impl fmt::Display for CwmpVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.uri())
    }
}

/// A decoded or to-be-encoded SOAP envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// `cwmp:ID`: set by the requester, echoed in the response. `None` when absent.
    pub id: Option<String>,
    /// `cwmp:HoldRequests`: the ACS forbids CPE requests in the next envelope (absent = false).
    pub hold_requests: bool,
    /// `cwmp:SessionTimeout` in seconds (CWMP 1.3+).
    pub session_timeout: Option<u32>,
    /// `cwmp:SupportedCWMPVersions`, comma-separated, as sent (CWMP 1.4).
    pub supported_cwmp_versions: Option<String>,
    /// `cwmp:UseCWMPVersion`, as sent (CWMP 1.4).
    pub use_cwmp_version: Option<String>,
    /// The CWMP namespace: the one the peer used, or the one to write.
    pub ns: CwmpVersion,
    /// The message.
    pub body: Body,
}

impl Envelope {
    /// An envelope without header fields.
    pub fn new(ns: CwmpVersion, body: Body) -> Self {
        Self {
            id: None,
            hold_requests: false,
            session_timeout: None,
            supported_cwmp_versions: None,
            use_cwmp_version: None,
            ns,
            body,
        }
    }

    /// Sets `cwmp:ID`.
    pub fn with_id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }

    /// Encodes this envelope; see [`encode`].
    pub fn encode(&self) -> Vec<u8> {
        encode(self)
    }
}

/// The message in a SOAP Body.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Body {
    /// An empty `Body` element.
    Empty,
    /// Inform (CPE -> ACS).
    Inform(Inform),
    /// InformResponse (ACS -> CPE).
    InformResponse(InformResponse),
    /// GetRPCMethods (either direction).
    GetRpcMethods,
    /// GetRPCMethodsResponse.
    GetRpcMethodsResponse(GetRpcMethodsResponse),
    /// GetParameterNames.
    GetParameterNames(GetParameterNames),
    /// GetParameterNamesResponse.
    GetParameterNamesResponse(GetParameterNamesResponse),
    /// GetParameterValues.
    GetParameterValues(GetParameterValues),
    /// GetParameterValuesResponse.
    GetParameterValuesResponse(GetParameterValuesResponse),
    /// SetParameterValues.
    SetParameterValues(SetParameterValues),
    /// SetParameterValuesResponse.
    SetParameterValuesResponse(SetParameterValuesResponse),
    /// GetParameterAttributes.
    GetParameterAttributes(GetParameterAttributes),
    /// GetParameterAttributesResponse.
    GetParameterAttributesResponse(GetParameterAttributesResponse),
    /// SetParameterAttributes.
    SetParameterAttributes(SetParameterAttributes),
    /// SetParameterAttributesResponse.
    SetParameterAttributesResponse,
    /// AddObject.
    AddObject(AddObject),
    /// AddObjectResponse.
    AddObjectResponse(AddObjectResponse),
    /// DeleteObject.
    DeleteObject(DeleteObject),
    /// DeleteObjectResponse.
    DeleteObjectResponse(DeleteObjectResponse),
    /// Reboot.
    Reboot(Reboot),
    /// RebootResponse.
    RebootResponse,
    /// FactoryReset.
    FactoryReset,
    /// FactoryResetResponse.
    FactoryResetResponse,
    /// ScheduleInform.
    ScheduleInform(ScheduleInform),
    /// ScheduleInformResponse.
    ScheduleInformResponse,
    /// Download.
    Download(Download),
    /// DownloadResponse.
    DownloadResponse(DownloadResponse),
    /// TransferComplete (CPE -> ACS).
    TransferComplete(TransferComplete),
    /// TransferCompleteResponse (ACS -> CPE).
    TransferCompleteResponse,
    /// A SOAP Fault with its `cwmp:Fault` detail.
    Fault(Fault),
    /// A method this codec does not know, by its element's local name (answer with 9000).
    Unknown {
        /// The element's local name, e.g. `Upload`.
        name: String,
    },
}

impl Body {
    /// The element name on the wire (`GetRPCMethods`, `Fault`, ...); `None` for [`Body::Empty`].
    pub fn method_name(&self) -> Option<&str> {
        Some(match self {
            Self::Empty => return None,
            Self::Inform(_) => "Inform",
            Self::InformResponse(_) => "InformResponse",
            Self::GetRpcMethods => "GetRPCMethods",
            Self::GetRpcMethodsResponse(_) => "GetRPCMethodsResponse",
            Self::GetParameterNames(_) => "GetParameterNames",
            Self::GetParameterNamesResponse(_) => "GetParameterNamesResponse",
            Self::GetParameterValues(_) => "GetParameterValues",
            Self::GetParameterValuesResponse(_) => "GetParameterValuesResponse",
            Self::SetParameterValues(_) => "SetParameterValues",
            Self::SetParameterValuesResponse(_) => "SetParameterValuesResponse",
            Self::GetParameterAttributes(_) => "GetParameterAttributes",
            Self::GetParameterAttributesResponse(_) => "GetParameterAttributesResponse",
            Self::SetParameterAttributes(_) => "SetParameterAttributes",
            Self::SetParameterAttributesResponse => "SetParameterAttributesResponse",
            Self::AddObject(_) => "AddObject",
            Self::AddObjectResponse(_) => "AddObjectResponse",
            Self::DeleteObject(_) => "DeleteObject",
            Self::DeleteObjectResponse(_) => "DeleteObjectResponse",
            Self::Reboot(_) => "Reboot",
            Self::RebootResponse => "RebootResponse",
            Self::FactoryReset => "FactoryReset",
            Self::FactoryResetResponse => "FactoryResetResponse",
            Self::ScheduleInform(_) => "ScheduleInform",
            Self::ScheduleInformResponse => "ScheduleInformResponse",
            Self::Download(_) => "Download",
            Self::DownloadResponse(_) => "DownloadResponse",
            Self::TransferComplete(_) => "TransferComplete",
            Self::TransferCompleteResponse => "TransferCompleteResponse",
            Self::Fault(_) => "Fault",
            Self::Unknown { name } => name,
        })
    }
}

/// Resource bounds for [`decode`]; every input beyond them is rejected, not truncated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest accepted document, in bytes; checked before parsing.
    pub max_bytes: usize,
    /// Deepest element nesting (a CWMP envelope needs 7).
    pub max_depth: usize,
    /// Most child elements of one element, i.e. entries of one array.
    pub max_list_entries: usize,
    /// Most elements in the whole document.
    pub max_elements: usize,
}

impl Default for Limits {
    /// 1 MiB, depth 32, 8192 entries per array, 65536 elements: ample for a BRG's whole data
    /// model, while the element budget caps the tree built from the worst input.
    fn default() -> Self {
        Self {
            max_bytes: 1 << 20,
            max_depth: 32,
            max_list_entries: 8192,
            max_elements: 65536,
        }
    }
}

/// True when an HTTP body carries no SOAP document at all (the CPE's empty POST): zero
/// bytes or only whitespace.
pub fn is_empty_post(body: &[u8]) -> bool {
    body.iter().all(u8::is_ascii_whitespace)
}

/// Why [`decode`] rejected a document.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input holds no element at all (see [`is_empty_post`]).
    #[error("no XML document in the input")]
    Empty,
    /// The input is larger than [`Limits::max_bytes`].
    #[error("document of {len} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// Input size.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// The input has text outside any element (e.g. a plain-text error page).
    #[error("input is not an XML document")]
    NotXml,
    /// The input is not UTF-8.
    #[error("document is not valid UTF-8")]
    InvalidUtf8(#[source] std::str::Utf8Error),
    /// The input contains a `<!DOCTYPE>`; DTDs and entity declarations are never processed.
    #[error("DOCTYPE declarations are not accepted")]
    Doctype,
    /// Elements nest deeper than [`Limits::max_depth`].
    #[error("elements nest deeper than the limit of {limit}")]
    TooDeep {
        /// The limit.
        limit: usize,
    },
    /// One element has more than [`Limits::max_list_entries`] children.
    #[error("an element has more than the limit of {limit} children")]
    TooManyEntries {
        /// The limit.
        limit: usize,
    },
    /// The document has more than [`Limits::max_elements`] elements.
    #[error("document has more than the limit of {limit} elements")]
    TooManyElements {
        /// The limit.
        limit: usize,
    },
    /// The XML is not well-formed.
    #[error("malformed XML at byte {position}")]
    Xml {
        /// Byte offset of the error.
        position: u64,
        /// What the XML parser reported.
        #[source]
        source: XmlError,
    },
    /// An entity reference other than the five predefined ones.
    #[error("undefined entity &{0};")]
    UnknownEntity(String),
    /// A character XML 1.0 does not allow (e.g. U+0001), raw or as a character reference.
    #[error("character U+{0:04X} is not allowed in XML")]
    IllegalChar(u32),
    /// The document ends inside an element.
    #[error("document ends before its root element is closed")]
    Truncated,
    /// The root element is not a SOAP Envelope.
    #[error("root element <{0}> is not a SOAP Envelope")]
    NotEnvelope(String),
    /// The Envelope has no Body.
    #[error("SOAP Envelope has no Body")]
    MissingBody,
    /// The method element is in a CWMP namespace other than cwmp-1-0 .. cwmp-1-4.
    #[error("unsupported CWMP namespace {uri}")]
    UnsupportedNamespace {
        /// The namespace URI.
        uri: String,
        /// The `cwmp:ID`, if any.
        id: Option<String>,
    },
    /// A header element has an invalid value.
    #[error("invalid {header} header value {value:?}")]
    InvalidHeader {
        /// The header's element name.
        header: &'static str,
        /// The value sent.
        value: String,
    },
    /// A known method with missing or malformed arguments (answer with fault 9003).
    #[error("invalid arguments in {method}")]
    InvalidArguments {
        /// The method's element name.
        method: String,
        /// The `cwmp:ID`, to echo in the fault response.
        id: Option<String>,
        /// The namespace the peer used.
        ns: CwmpVersion,
        /// What is wrong.
        #[source]
        source: ArgumentError,
    },
}

/// What is wrong with a method's arguments.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ArgumentError {
    /// A required element is absent.
    #[error("missing element <{element}>")]
    Missing {
        /// The element's name.
        element: &'static str,
    },
    /// An element's text is not of the expected type.
    #[error("<{element}> is {value:?}, expected {expected}")]
    Invalid {
        /// The element's name.
        element: &'static str,
        /// The text sent (cut to 64 characters).
        value: String,
        /// What was expected, e.g. `unsignedInt`.
        expected: &'static str,
    },
}

/// An XML syntax error reported by the underlying parser.
#[derive(Debug)]
pub struct XmlError(quick_xml::Error);

impl fmt::Display for XmlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for XmlError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

#[cfg(test)]
mod tests;
