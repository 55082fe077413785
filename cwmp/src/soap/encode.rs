//! [`Envelope`] -> bytes, strict: fixed prefixes, `arrayType` on every array, `xsi:type` on
//! every value, escaped text.

use std::fmt::{Display, Write as _};

use super::tree::is_xml_char;
use super::*;
use crate::fault::Fault;

/// The namespace declarations on every emitted Envelope; `xmlns:cwmp` follows.
const ENVELOPE_OPEN: &str = concat!(
    r#"<?xml version="1.0" encoding="UTF-8"?>"#,
    "\n",
    r#"<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/""#,
    r#" xmlns:soapenc="http://schemas.xmlsoap.org/soap/encoding/""#,
    r#" xmlns:xsd="http://www.w3.org/2001/XMLSchema""#,
    r#" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance""#,
    r#" xmlns:cwmp=""#,
);

/// Encodes an envelope as UTF-8 XML. Infallible: text is escaped, characters XML 1.0 cannot
/// carry become U+FFFD, and an [`Body::Unknown`] name that is not an XML name is sanitized.
pub fn encode(env: &Envelope) -> Vec<u8> {
    let mut w = Writer(String::with_capacity(1024));
    w.raw(ENVELOPE_OPEN);
    w.raw(env.ns.uri());
    w.raw("\">");
    header(&mut w, env);
    w.open("soapenv:Body");
    body(&mut w, &env.body);
    w.close("soapenv:Body");
    w.close("soapenv:Envelope");
    w.0.into_bytes()
}

fn header(w: &mut Writer, env: &Envelope) {
    let present = env.id.is_some()
        || env.hold_requests
        || env.session_timeout.is_some()
        || env.supported_cwmp_versions.is_some()
        || env.use_cwmp_version.is_some();
    if !present {
        return;
    }
    w.open("soapenv:Header");
    if let Some(id) = &env.id {
        w.header("ID", Some("1"), id);
    }
    if env.hold_requests {
        w.header("HoldRequests", Some("1"), "1");
    }
    if let Some(timeout) = env.session_timeout {
        w.header("SessionTimeout", None, &timeout.to_string());
    }
    if let Some(versions) = &env.supported_cwmp_versions {
        w.header("SupportedCWMPVersions", Some("0"), versions);
    }
    if let Some(version) = &env.use_cwmp_version {
        w.header("UseCWMPVersion", Some("1"), version);
    }
    w.close("soapenv:Header");
}

fn body(w: &mut Writer, body: &Body) {
    let method = match body {
        Body::Empty => return,
        Body::Fault(fault) => return soap_fault(w, fault),
        Body::Unknown { name } => xml_name(name),
        known => known.method_name().unwrap_or_default().to_owned(),
    };
    let tag = format!("cwmp:{method}");
    w.open(&tag);
    match body {
        Body::Inform(m) => inform(w, m),
        Body::InformResponse(m) => w.leaf_display("MaxEnvelopes", m.max_envelopes),
        Body::GetRpcMethodsResponse(m) => w.strings("MethodList", &m.method_list),
        Body::GetParameterNames(m) => {
            w.leaf("ParameterPath", &m.parameter_path);
            w.leaf_bool("NextLevel", m.next_level);
        }
        Body::GetParameterNamesResponse(m) => {
            w.array(
                "ParameterList",
                "cwmp:ParameterInfoStruct",
                m.parameter_list.len(),
            );
            for info in &m.parameter_list {
                w.open("ParameterInfoStruct");
                w.leaf("Name", &info.name);
                w.leaf_bool("Writable", info.writable);
                w.close("ParameterInfoStruct");
            }
            w.close("ParameterList");
        }
        Body::GetParameterValues(m) => w.strings("ParameterNames", &m.parameter_names),
        Body::GetParameterValuesResponse(m) => parameter_values(w, &m.parameter_list),
        Body::SetParameterValues(m) => {
            parameter_values(w, &m.parameter_list);
            w.leaf("ParameterKey", &m.parameter_key);
        }
        Body::SetParameterValuesResponse(m) => w.leaf_display("Status", m.status.code()),
        Body::GetParameterAttributes(m) => w.strings("ParameterNames", &m.parameter_names),
        Body::GetParameterAttributesResponse(m) => attributes(w, &m.parameter_list),
        Body::SetParameterAttributes(m) => set_attributes(w, &m.parameter_list),
        Body::AddObject(m) => {
            w.leaf("ObjectName", &m.object_name);
            w.leaf("ParameterKey", &m.parameter_key);
        }
        Body::AddObjectResponse(m) => {
            w.leaf_display("InstanceNumber", m.instance_number);
            w.leaf_display("Status", m.status.code());
        }
        Body::DeleteObject(m) => {
            w.leaf("ObjectName", &m.object_name);
            w.leaf("ParameterKey", &m.parameter_key);
        }
        Body::DeleteObjectResponse(m) => w.leaf_display("Status", m.status.code()),
        Body::Reboot(m) => w.leaf("CommandKey", &m.command_key),
        Body::ScheduleInform(m) => {
            w.leaf_display("DelaySeconds", m.delay_seconds);
            w.leaf("CommandKey", &m.command_key);
        }
        Body::Download(m) => {
            w.leaf("CommandKey", &m.command_key);
            w.leaf("FileType", &m.file_type);
            w.leaf("URL", &m.url);
            w.leaf("Username", &m.username);
            w.leaf("Password", &m.password);
            w.leaf_display("FileSize", m.file_size);
            w.leaf("TargetFileName", &m.target_file_name);
            w.leaf_display("DelaySeconds", m.delay_seconds);
            w.leaf("SuccessURL", &m.success_url);
            w.leaf("FailureURL", &m.failure_url);
        }
        Body::DownloadResponse(m) => {
            w.leaf_display("Status", m.status.code());
            w.leaf("StartTime", &m.start_time);
            w.leaf("CompleteTime", &m.complete_time);
        }
        Body::TransferComplete(m) => transfer_complete(w, m),
        // Messages without arguments.
        Body::GetRpcMethods
        | Body::SetParameterAttributesResponse
        | Body::RebootResponse
        | Body::FactoryReset
        | Body::FactoryResetResponse
        | Body::ScheduleInformResponse
        | Body::TransferCompleteResponse
        | Body::Unknown { .. }
        | Body::Empty
        | Body::Fault(_) => {}
    }
    w.close(&tag);
}

/// An Inform's arguments.
fn inform(w: &mut Writer, m: &Inform) {
    w.open("DeviceId");
    w.leaf("Manufacturer", &m.device_id.manufacturer);
    w.leaf("OUI", &m.device_id.oui);
    w.leaf("ProductClass", &m.device_id.product_class);
    w.leaf("SerialNumber", &m.device_id.serial_number);
    w.close("DeviceId");
    w.array("Event", "cwmp:EventStruct", m.events.len());
    for event in &m.events {
        w.open("EventStruct");
        w.leaf("EventCode", event.code.as_str());
        w.leaf("CommandKey", &event.command_key);
        w.close("EventStruct");
    }
    w.close("Event");
    w.leaf_display("MaxEnvelopes", m.max_envelopes);
    w.leaf("CurrentTime", &m.current_time);
    w.leaf_display("RetryCount", m.retry_count);
    parameter_values(w, &m.parameter_list);
}

/// GetParameterAttributesResponse's ParameterList.
fn attributes(w: &mut Writer, list: &[ParameterAttribute]) {
    w.array("ParameterList", "cwmp:ParameterAttributeStruct", list.len());
    for attr in list {
        w.open("ParameterAttributeStruct");
        w.leaf("Name", &attr.name);
        w.leaf_display("Notification", attr.notification.code());
        w.strings("AccessList", &attr.access_list);
        w.close("ParameterAttributeStruct");
    }
    w.close("ParameterList");
}

/// SetParameterAttributes's ParameterList.
fn set_attributes(w: &mut Writer, list: &[SetParameterAttribute]) {
    w.array(
        "ParameterList",
        "cwmp:SetParameterAttributesStruct",
        list.len(),
    );
    for attr in list {
        w.open("SetParameterAttributesStruct");
        w.leaf("Name", &attr.name);
        w.leaf_bool("NotificationChange", attr.notification_change);
        w.leaf_display("Notification", attr.notification.code());
        w.leaf_bool("AccessListChange", attr.access_list_change);
        w.strings("AccessList", &attr.access_list);
        w.close("SetParameterAttributesStruct");
    }
    w.close("ParameterList");
}

/// TransferComplete's arguments; no fault is FaultCode 0 with an empty string.
fn transfer_complete(w: &mut Writer, m: &TransferComplete) {
    w.leaf("CommandKey", &m.command_key);
    w.open("FaultStruct");
    match &m.fault {
        Some(fault) => {
            w.leaf_display("FaultCode", fault.code.code());
            w.leaf("FaultString", &fault.string);
        }
        None => {
            w.leaf_display("FaultCode", 0);
            w.leaf("FaultString", "");
        }
    }
    w.close("FaultStruct");
    w.leaf("StartTime", &m.start_time);
    w.leaf("CompleteTime", &m.complete_time);
}

/// A SOAP 1.1 Fault as TR-069 A.5 lays it out: faultstring "CWMP fault", the code in detail.
fn soap_fault(w: &mut Writer, fault: &Fault) {
    w.open("soapenv:Fault");
    w.leaf("faultcode", fault.code.soap_fault_code().as_str());
    w.leaf("faultstring", "CWMP fault");
    w.open("detail");
    w.open("cwmp:Fault");
    w.leaf_display("FaultCode", fault.code.code());
    w.leaf("FaultString", &fault.string);
    for spv in &fault.set_parameter_values_faults {
        w.open("SetParameterValuesFault");
        w.leaf("ParameterName", &spv.parameter_name);
        w.leaf_display("FaultCode", spv.code.code());
        w.leaf("FaultString", &spv.string);
        w.close("SetParameterValuesFault");
    }
    w.close("cwmp:Fault");
    w.close("detail");
    w.close("soapenv:Fault");
}

fn parameter_values(w: &mut Writer, list: &[ParameterValue]) {
    w.array("ParameterList", "cwmp:ParameterValueStruct", list.len());
    for p in list {
        w.open("ParameterValueStruct");
        w.leaf("Name", &p.name);
        let local = p
            .value_type
            .as_ref()
            .map_or("string", ValueType::local_name);
        w.raw(r#"<Value xsi:type="xsd:"#);
        w.raw(&xml_name(local));
        w.raw(r#"">"#);
        w.text(&p.value);
        w.close("Value");
        w.close("ParameterValueStruct");
    }
    w.close("ParameterList");
}

/// `name` made into a valid XML NCName: characters other than ASCII letters, digits, `_`,
/// `-` and `.` (or a leading digit, `-` or `.`) become `_`.
fn xml_name(name: &str) -> String {
    let mut out: String = name
        .chars()
        .enumerate()
        .map(|(i, c)| match c {
            'A'..='Z' | 'a'..='z' | '_' => c,
            '0'..='9' | '-' | '.' if i > 0 => c,
            _ => '_',
        })
        .collect();
    if out.is_empty() {
        out.push('_');
    }
    out
}

/// Appends markup to a string; all text goes through [`Writer::text`].
struct Writer(String);

impl Writer {
    fn raw(&mut self, markup: &str) {
        self.0.push_str(markup);
    }

    fn open(&mut self, tag: &str) {
        self.0.push('<');
        self.0.push_str(tag);
        self.0.push('>');
    }

    fn close(&mut self, tag: &str) {
        self.0.push_str("</");
        self.0.push_str(tag);
        self.0.push('>');
    }

    fn leaf(&mut self, tag: &str, text: &str) {
        self.open(tag);
        self.text(text);
        self.close(tag);
    }

    fn leaf_display(&mut self, tag: &str, value: impl Display) {
        self.open(tag);
        // Writing to a String cannot fail.
        let _ = write!(self.0, "{value}");
        self.close(tag);
    }

    fn leaf_bool(&mut self, tag: &str, value: bool) {
        self.leaf(tag, if value { "1" } else { "0" });
    }

    /// A `cwmp:` header element with an optional `soapenv:mustUnderstand`.
    fn header(&mut self, name: &str, must_understand: Option<&str>, text: &str) {
        self.raw("<cwmp:");
        self.raw(name);
        if let Some(flag) = must_understand {
            self.raw(r#" soapenv:mustUnderstand=""#);
            self.raw(flag);
            self.raw("\"");
        }
        self.raw(">");
        self.text(text);
        self.raw("</cwmp:");
        self.raw(name);
        self.raw(">");
    }

    /// Opens an array element: `<tag soapenc:arrayType="item[len]">`.
    fn array(&mut self, tag: &str, item: &str, len: usize) {
        let _ = write!(self.0, r#"<{tag} soapenc:arrayType="{item}[{len}]">"#);
    }

    /// An `xsd:string` array: `<tag soapenc:arrayType="xsd:string[n]"><string>..</string>..`.
    fn strings(&mut self, tag: &str, items: &[String]) {
        self.array(tag, "xsd:string", items.len());
        for item in items {
            self.leaf("string", item);
        }
        self.close(tag);
    }

    /// Escaped character data. `\r` is written as a reference so that XML line-end
    /// normalization does not turn it into `\n`.
    fn text(&mut self, text: &str) {
        for c in text.chars() {
            match c {
                '&' => self.0.push_str("&amp;"),
                '<' => self.0.push_str("&lt;"),
                '>' => self.0.push_str("&gt;"),
                '\r' => self.0.push_str("&#13;"),
                c if !is_xml_char(c) => self.0.push('\u{FFFD}'),
                c => self.0.push(c),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped() {
        let mut w = Writer(String::new());
        w.text("a<b>&c\r\n\t\"'\u{1}\u{FFFF}é");
        assert_eq!(w.0, "a&lt;b&gt;&amp;c&#13;\n\t\"'\u{FFFD}\u{FFFD}é");
    }

    #[test]
    fn names_are_sanitized() {
        assert_eq!(xml_name("Upload"), "Upload");
        assert_eq!(xml_name("X_ACME-Do.It2"), "X_ACME-Do.It2");
        assert_eq!(xml_name("2a\"b:c"), "_a_b_c");
        assert_eq!(xml_name("é"), "_");
        assert_eq!(xml_name(""), "_");
    }
}
