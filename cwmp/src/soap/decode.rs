//! Bytes -> [`Envelope`]: a bounded element tree ([`super::tree`]), then typed extraction.
//!
//! Extraction is liberal: elements are matched by local name whatever their prefix or
//! namespace, array items under any element name, and arguments that carry no meaning of
//! their own (ParameterKey, CommandKey, Username, FaultString, ...) default to empty when
//! absent. Arguments that define the request (ParameterNames, ParameterPath, ObjectName,
//! Status, ...) are required.

use super::tree::{self, Node, NodeNs};
use super::*;
use crate::fault::{Fault, FaultCode, SetParameterValuesFault};

/// Decodes one SOAP envelope. See the [module docs](super) for what is accepted.
pub fn decode(input: &[u8], limits: &Limits) -> Result<Envelope, DecodeError> {
    if input.len() > limits.max_bytes {
        return Err(DecodeError::TooLarge {
            len: input.len(),
            limit: limits.max_bytes,
        });
    }
    let input = input.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(input);
    if is_empty_post(input) {
        return Err(DecodeError::Empty);
    }
    let text = std::str::from_utf8(input).map_err(DecodeError::InvalidUtf8)?;
    let doc = tree::parse(text, limits)?;
    let root = &doc.root;
    if &*root.name != "Envelope" {
        return Err(DecodeError::NotEnvelope(root.name.to_string()));
    }
    let body = root.child("Body").ok_or(DecodeError::MissingBody)?;
    let header = root.child("Header");

    let mut env = Envelope::new(CwmpVersion::V1_0, Body::Empty);
    if let Some(header) = header {
        decode_header(header, &mut env)?;
    }
    let method = body.children.first();
    env.ns = detect_ns(method, header, doc.declared_ns).map_err(|uri| {
        DecodeError::UnsupportedNamespace {
            uri,
            id: env.id.clone(),
        }
    })?;
    if let Some(method) = method {
        env.body = decode_body(method).map_err(|source| DecodeError::InvalidArguments {
            method: method.name.to_string(),
            id: env.id.clone(),
            ns: env.ns,
            source,
        })?;
    }
    Ok(env)
}

fn decode_header(header: &Node, env: &mut Envelope) -> Result<(), DecodeError> {
    for h in &header.children {
        match &*h.name {
            "ID" => env.id = Some(h.text.clone()),
            "HoldRequests" => {
                env.hold_requests =
                    parse_bool(&h.text).ok_or_else(|| DecodeError::InvalidHeader {
                        header: "HoldRequests",
                        value: cut(&h.text),
                    })?;
            }
            "SessionTimeout" => {
                let value = h
                    .text
                    .trim()
                    .parse()
                    .map_err(|_| DecodeError::InvalidHeader {
                        header: "SessionTimeout",
                        value: cut(&h.text),
                    })?;
                env.session_timeout = Some(value);
            }
            "SupportedCWMPVersions" => env.supported_cwmp_versions = Some(h.text.trim().to_owned()),
            "UseCWMPVersion" => env.use_cwmp_version = Some(h.text.trim().to_owned()),
            // NoMoreRequests (cwmp-1-0, deprecated) and unknown headers are ignored.
            _ => {}
        }
    }
    Ok(())
}

/// The peer's namespace: that of the method element (or a Fault's `cwmp:Fault` detail), else
/// of a header element, else the first CWMP namespace declared anywhere, else cwmp-1-0.
fn detect_ns(
    method: Option<&Node>,
    header: Option<&Node>,
    declared: Option<CwmpVersion>,
) -> Result<CwmpVersion, String> {
    let detail = method
        .filter(|m| &*m.name == "Fault")
        .and_then(fault_detail);
    for node in method.into_iter().chain(detail) {
        match &node.ns {
            NodeNs::Cwmp(version) => return Ok(*version),
            NodeNs::UnknownCwmp(uri) => return Err(uri.to_string()),
            NodeNs::Other => {}
        }
    }
    let from_header = header
        .into_iter()
        .flat_map(|h| &h.children)
        .find_map(|h| match h.ns {
            NodeNs::Cwmp(version) => Some(version),
            _ => None,
        });
    Ok(from_header.or(declared).unwrap_or_default())
}

type ArgResult<T> = Result<T, ArgumentError>;

/// Decodes the method element.
fn decode_body(m: &Node) -> ArgResult<Body> {
    Ok(match &*m.name {
        "Inform" => Body::Inform(inform(m)?),
        "InformResponse" => Body::InformResponse(InformResponse {
            max_envelopes: u32_or(m, "MaxEnvelopes", 1)?,
        }),
        "GetRPCMethods" => Body::GetRpcMethods,
        "GetRPCMethodsResponse" => Body::GetRpcMethodsResponse(GetRpcMethodsResponse {
            method_list: opt_strings(m, "MethodList"),
        }),
        "GetParameterNames" => Body::GetParameterNames(GetParameterNames {
            parameter_path: req(m, "ParameterPath")?.text.trim().to_owned(),
            next_level: bool_req(m, "NextLevel")?,
        }),
        "GetParameterNamesResponse" => Body::GetParameterNamesResponse(GetParameterNamesResponse {
            parameter_list: entries(m, "ParameterList")
                .map(|e| {
                    Ok(ParameterInfo {
                        name: trimmed(e, "Name"),
                        writable: bool_or(e, "Writable", false)?,
                    })
                })
                .collect::<ArgResult<_>>()?,
        }),
        "GetParameterValues" => Body::GetParameterValues(GetParameterValues {
            parameter_names: req_strings(m, "ParameterNames")?,
        }),
        "GetParameterValuesResponse" => {
            Body::GetParameterValuesResponse(GetParameterValuesResponse {
                parameter_list: parameter_values(m)?,
            })
        }
        "SetParameterValues" => {
            req(m, "ParameterList")?;
            Body::SetParameterValues(SetParameterValues {
                parameter_list: parameter_values(m)?,
                parameter_key: raw(m, "ParameterKey"),
            })
        }
        "SetParameterValuesResponse" => {
            Body::SetParameterValuesResponse(SetParameterValuesResponse { status: status(m)? })
        }
        "GetParameterAttributes" => Body::GetParameterAttributes(GetParameterAttributes {
            parameter_names: req_strings(m, "ParameterNames")?,
        }),
        "GetParameterAttributesResponse" => {
            Body::GetParameterAttributesResponse(GetParameterAttributesResponse {
                parameter_list: entries(m, "ParameterList")
                    .map(|e| {
                        Ok(ParameterAttribute {
                            name: trimmed(e, "Name"),
                            notification: notification(e)?,
                            access_list: opt_strings(e, "AccessList"),
                        })
                    })
                    .collect::<ArgResult<_>>()?,
            })
        }
        "SetParameterAttributes" => {
            req(m, "ParameterList")?;
            Body::SetParameterAttributes(SetParameterAttributes {
                parameter_list: entries(m, "ParameterList")
                    .map(|e| {
                        Ok(SetParameterAttribute {
                            name: req(e, "Name")?.text.trim().to_owned(),
                            notification_change: bool_or(e, "NotificationChange", false)?,
                            notification: notification(e)?,
                            access_list_change: bool_or(e, "AccessListChange", false)?,
                            access_list: opt_strings(e, "AccessList"),
                        })
                    })
                    .collect::<ArgResult<_>>()?,
            })
        }
        "SetParameterAttributesResponse" => Body::SetParameterAttributesResponse,
        "AddObject" => Body::AddObject(AddObject {
            object_name: req(m, "ObjectName")?.text.trim().to_owned(),
            parameter_key: raw(m, "ParameterKey"),
        }),
        "AddObjectResponse" => Body::AddObjectResponse(AddObjectResponse {
            instance_number: u32_req(m, "InstanceNumber")?,
            status: status(m)?,
        }),
        "DeleteObject" => Body::DeleteObject(DeleteObject {
            object_name: req(m, "ObjectName")?.text.trim().to_owned(),
            parameter_key: raw(m, "ParameterKey"),
        }),
        "DeleteObjectResponse" => {
            Body::DeleteObjectResponse(DeleteObjectResponse { status: status(m)? })
        }
        "Reboot" => Body::Reboot(Reboot {
            command_key: raw(m, "CommandKey"),
        }),
        "RebootResponse" => Body::RebootResponse,
        "FactoryReset" => Body::FactoryReset,
        "FactoryResetResponse" => Body::FactoryResetResponse,
        "ScheduleInform" => Body::ScheduleInform(ScheduleInform {
            delay_seconds: u32_req(m, "DelaySeconds")?,
            command_key: raw(m, "CommandKey"),
        }),
        "ScheduleInformResponse" => Body::ScheduleInformResponse,
        "Download" => Body::Download(download(m)?),
        "DownloadResponse" => Body::DownloadResponse(DownloadResponse {
            status: status(m)?,
            start_time: trimmed(m, "StartTime"),
            complete_time: trimmed(m, "CompleteTime"),
        }),
        "TransferComplete" => Body::TransferComplete(transfer_complete(m)?),
        "TransferCompleteResponse" => Body::TransferCompleteResponse,
        "Fault" => Body::Fault(fault(m)?),
        other => Body::Unknown {
            name: other.to_owned(),
        },
    })
}

fn inform(m: &Node) -> ArgResult<Inform> {
    let id = req(m, "DeviceId")?;
    Ok(Inform {
        device_id: DeviceId {
            manufacturer: trimmed(id, "Manufacturer"),
            oui: trimmed(id, "OUI"),
            product_class: trimmed(id, "ProductClass"),
            serial_number: trimmed(id, "SerialNumber"),
        },
        events: entries(m, "Event")
            .map(|e| Event {
                code: EventCode::parse(e.child("EventCode").map_or("", |c| c.text.trim())),
                command_key: raw(e, "CommandKey"),
            })
            .collect(),
        max_envelopes: u32_or(m, "MaxEnvelopes", 1)?,
        current_time: trimmed(m, "CurrentTime"),
        retry_count: u32_or(m, "RetryCount", 0)?,
        parameter_list: parameter_values(m)?,
    })
}

fn download(m: &Node) -> ArgResult<Download> {
    Ok(Download {
        command_key: raw(m, "CommandKey"),
        file_type: req(m, "FileType")?.text.trim().to_owned(),
        url: req(m, "URL")?.text.trim().to_owned(),
        username: raw(m, "Username"),
        password: raw(m, "Password"),
        file_size: u32_or(m, "FileSize", 0)?,
        target_file_name: raw(m, "TargetFileName"),
        delay_seconds: u32_or(m, "DelaySeconds", 0)?,
        success_url: trimmed(m, "SuccessURL"),
        failure_url: trimmed(m, "FailureURL"),
    })
}

fn transfer_complete(m: &Node) -> ArgResult<TransferComplete> {
    let fault = match m.child("FaultStruct") {
        Some(f) => match u32_or(f, "FaultCode", 0)? {
            0 => None,
            code => Some(TransferFault {
                code: FaultCode::from_code(code),
                string: raw(f, "FaultString"),
            }),
        },
        None => None,
    };
    Ok(TransferComplete {
        command_key: raw(m, "CommandKey"),
        fault,
        start_time: trimmed(m, "StartTime"),
        complete_time: trimmed(m, "CompleteTime"),
    })
}

/// The `cwmp:Fault` inside a SOAP Fault's `detail`; a bare `cwmp:Fault` in the Body (sent
/// by some broken peers) is accepted as its own detail.
fn fault_detail(m: &Node) -> Option<&Node> {
    let detail = m
        .children
        .iter()
        .find(|c| c.name.eq_ignore_ascii_case("detail"));
    match detail {
        Some(detail) => detail.child("Fault"),
        None => m.child("FaultCode").map(|_| m),
    }
}

fn fault(m: &Node) -> ArgResult<Fault> {
    let detail = fault_detail(m).ok_or(ArgumentError::Missing { element: "detail" })?;
    Ok(Fault {
        code: FaultCode::from_code(u32_req(detail, "FaultCode")?),
        string: raw(detail, "FaultString"),
        set_parameter_values_faults: detail
            .children
            .iter()
            .filter(|c| &*c.name == "SetParameterValuesFault")
            .map(|f| {
                Ok(SetParameterValuesFault {
                    parameter_name: trimmed(f, "ParameterName"),
                    code: FaultCode::from_code(u32_req(f, "FaultCode")?),
                    string: raw(f, "FaultString"),
                })
            })
            .collect::<ArgResult<_>>()?,
    })
}

/// The entries of `ParameterList` as ParameterValueStructs; an absent list is empty.
fn parameter_values(m: &Node) -> ArgResult<Vec<ParameterValue>> {
    entries(m, "ParameterList")
        .map(|e| {
            let value = req(e, "Value")?;
            Ok(ParameterValue {
                name: req(e, "Name")?.text.trim().to_owned(),
                value: value.text.clone(),
                value_type: value.xsi_type.as_deref().map(ValueType::from_local_name),
            })
        })
        .collect()
}

fn notification(e: &Node) -> ArgResult<Notification> {
    let text = e.child("Notification").map_or("", |n| n.text.trim());
    if text.is_empty() {
        return Ok(Notification::Off);
    }
    text.parse()
        .ok()
        .and_then(Notification::from_code)
        .ok_or_else(|| invalid("Notification", text, "0..6"))
}

fn status(m: &Node) -> ArgResult<Status> {
    match req(m, "Status")?.text.trim() {
        "0" => Ok(Status::Applied),
        "1" => Ok(Status::Pending),
        other => Err(invalid("Status", other, "0 or 1")),
    }
}

/// Child elements of the array `name` (any element name, any `arrayType`); none if absent.
fn entries<'a>(m: &'a Node, name: &str) -> impl Iterator<Item = &'a Node> {
    m.child(name).into_iter().flat_map(|list| &list.children)
}

fn opt_strings(m: &Node, name: &str) -> Vec<String> {
    entries(m, name).map(|s| s.text.trim().to_owned()).collect()
}

fn req_strings(m: &Node, name: &'static str) -> ArgResult<Vec<String>> {
    req(m, name)?;
    Ok(opt_strings(m, name))
}

fn req<'a>(m: &'a Node, element: &'static str) -> ArgResult<&'a Node> {
    m.child(element).ok_or(ArgumentError::Missing { element })
}

/// Text of an optional child exactly as sent; empty if absent.
fn raw(m: &Node, name: &str) -> String {
    m.child(name).map(|c| c.text.clone()).unwrap_or_default()
}

/// Text of an optional child without surrounding whitespace; empty if absent.
fn trimmed(m: &Node, name: &str) -> String {
    m.child(name)
        .map(|c| c.text.trim().to_owned())
        .unwrap_or_default()
}

fn u32_req(m: &Node, element: &'static str) -> ArgResult<u32> {
    let text = req(m, element)?.text.trim();
    text.parse()
        .map_err(|_| invalid(element, text, "unsignedInt"))
}

/// An optional unsignedInt: `default` when absent or empty.
fn u32_or(m: &Node, element: &'static str, default: u32) -> ArgResult<u32> {
    match m.child(element).map(|c| c.text.trim()) {
        None | Some("") => Ok(default),
        Some(text) => text
            .parse()
            .map_err(|_| invalid(element, text, "unsignedInt")),
    }
}

fn bool_req(m: &Node, element: &'static str) -> ArgResult<bool> {
    let text = &req(m, element)?.text;
    parse_bool(text).ok_or_else(|| invalid(element, text, "boolean"))
}

/// An optional boolean: `default` when absent or empty.
fn bool_or(m: &Node, element: &'static str, default: bool) -> ArgResult<bool> {
    match m.child(element).map(|c| c.text.trim()) {
        None | Some("") => Ok(default),
        Some(text) => parse_bool(text).ok_or_else(|| invalid(element, text, "boolean")),
    }
}

/// `xsd:boolean`, also accepting `True`/`FALSE` as some peers send.
fn parse_bool(text: &str) -> Option<bool> {
    match text.trim() {
        "1" => Some(true),
        "0" => Some(false),
        t if t.eq_ignore_ascii_case("true") => Some(true),
        t if t.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}

fn invalid(element: &'static str, value: &str, expected: &'static str) -> ArgumentError {
    ArgumentError::Invalid {
        element,
        value: cut(value),
        expected,
    }
}

/// At most 64 characters of an offending value, for error messages.
fn cut(value: &str) -> String {
    value.chars().take(64).collect()
}
