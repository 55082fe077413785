//! The typed CWMP messages (TR-069 Annex A.3): one struct per RPC with arguments.
//!
//! Date-time fields (`CurrentTime`, `StartTime`, ...) are kept as the `xsd:dateTime` text they
//! were sent as; the codec does not interpret them.

use std::fmt;

use crate::fault::FaultCode;

/// The `xsi:type` declared on a `ParameterValueStruct` `Value` (TR-106 data types).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ValueType {
    /// `xsd:string`.
    String,
    /// `xsd:int`.
    Int,
    /// `xsd:unsignedInt`.
    UnsignedInt,
    /// `xsd:boolean`.
    Boolean,
    /// `xsd:dateTime`.
    DateTime,
    /// `xsd:base64` (as CWMP peers write it; `base64Binary` is accepted on input).
    Base64,
    /// `xsd:long`.
    Long,
    /// `xsd:unsignedLong`.
    UnsignedLong,
    /// `xsd:hexBinary`.
    HexBinary,
    /// Any other type, by its local name without prefix (e.g. `decimal`).
    Other(String),
}

impl ValueType {
    /// Maps the local part of an `xsi:type` value (`xsd:int` -> `int`) to a type.
    pub fn from_local_name(name: &str) -> Self {
        match name {
            "string" => Self::String,
            "int" => Self::Int,
            "unsignedInt" => Self::UnsignedInt,
            "boolean" => Self::Boolean,
            "dateTime" => Self::DateTime,
            "base64" | "base64Binary" => Self::Base64,
            "long" => Self::Long,
            "unsignedLong" => Self::UnsignedLong,
            "hexBinary" => Self::HexBinary,
            other => Self::Other(other.to_owned()),
        }
    }

    /// The local name written after the `xsd:` prefix.
    pub fn local_name(&self) -> &str {
        match self {
            Self::String => "string",
            Self::Int => "int",
            Self::UnsignedInt => "unsignedInt",
            Self::Boolean => "boolean",
            Self::DateTime => "dateTime",
            Self::Base64 => "base64",
            Self::Long => "long",
            Self::UnsignedLong => "unsignedLong",
            Self::HexBinary => "hexBinary",
            Self::Other(name) => name,
        }
    }
}

impl fmt::Display for ValueType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "xsd:{}", self.local_name())
    }
}

/// A `ParameterValueStruct`: a parameter name, its value as sent, and the declared type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParameterValue {
    /// Full parameter path.
    pub name: String,
    /// The value text, unescaped but otherwise exactly as sent (whitespace kept).
    pub value: String,
    /// The `xsi:type` annotation; `None` when the peer sent none. The encoder always writes
    /// one and uses `xsd:string` for `None`.
    pub value_type: Option<ValueType>,
}

impl ParameterValue {
    /// A typed parameter value.
    pub fn new(name: impl Into<String>, value: impl Into<String>, value_type: ValueType) -> Self {
        Self {
            name: name.into(),
            value: value.into(),
            value_type: Some(value_type),
        }
    }
}

/// An Inform event code (TR-069 3.7.1.5), e.g. `1 BOOT` or `M Reboot`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EventCode {
    /// `0 BOOTSTRAP`.
    Bootstrap,
    /// `1 BOOT`.
    Boot,
    /// `2 PERIODIC`.
    Periodic,
    /// `3 SCHEDULED`.
    Scheduled,
    /// `4 VALUE CHANGE`.
    ValueChange,
    /// `5 KICKED`.
    Kicked,
    /// `6 CONNECTION REQUEST`.
    ConnectionRequest,
    /// `7 TRANSFER COMPLETE`.
    TransferComplete,
    /// `8 DIAGNOSTICS COMPLETE`.
    DiagnosticsComplete,
    /// `9 REQUEST DOWNLOAD`.
    RequestDownload,
    /// `10 AUTONOMOUS TRANSFER COMPLETE`.
    AutonomousTransferComplete,
    /// `11 DU STATE CHANGE COMPLETE`.
    DuStateChangeComplete,
    /// `12 AUTONOMOUS DU STATE CHANGE COMPLETE`.
    AutonomousDuStateChangeComplete,
    /// `13 WAKEUP`.
    Wakeup,
    /// `M Reboot`.
    MReboot,
    /// `M ScheduleInform`.
    MScheduleInform,
    /// `M Download`.
    MDownload,
    /// `M ScheduleDownload`.
    MScheduleDownload,
    /// `M Upload`.
    MUpload,
    /// `M ChangeDUState`.
    MChangeDuState,
    /// Any other code (vendor `X ...` events, `M X_...` methods), as sent.
    Other(String),
}

const EVENT_CODES: &[(EventCode, &str)] = &[
    (EventCode::Bootstrap, "0 BOOTSTRAP"),
    (EventCode::Boot, "1 BOOT"),
    (EventCode::Periodic, "2 PERIODIC"),
    (EventCode::Scheduled, "3 SCHEDULED"),
    (EventCode::ValueChange, "4 VALUE CHANGE"),
    (EventCode::Kicked, "5 KICKED"),
    (EventCode::ConnectionRequest, "6 CONNECTION REQUEST"),
    (EventCode::TransferComplete, "7 TRANSFER COMPLETE"),
    (EventCode::DiagnosticsComplete, "8 DIAGNOSTICS COMPLETE"),
    (EventCode::RequestDownload, "9 REQUEST DOWNLOAD"),
    (
        EventCode::AutonomousTransferComplete,
        "10 AUTONOMOUS TRANSFER COMPLETE",
    ),
    (
        EventCode::DuStateChangeComplete,
        "11 DU STATE CHANGE COMPLETE",
    ),
    (
        EventCode::AutonomousDuStateChangeComplete,
        "12 AUTONOMOUS DU STATE CHANGE COMPLETE",
    ),
    (EventCode::Wakeup, "13 WAKEUP"),
    (EventCode::MReboot, "M Reboot"),
    (EventCode::MScheduleInform, "M ScheduleInform"),
    (EventCode::MDownload, "M Download"),
    (EventCode::MScheduleDownload, "M ScheduleDownload"),
    (EventCode::MUpload, "M Upload"),
    (EventCode::MChangeDuState, "M ChangeDUState"),
];

impl EventCode {
    /// Parses the wire text; unknown codes become [`EventCode::Other`].
    pub fn parse(text: &str) -> Self {
        EVENT_CODES
            .iter()
            .find(|(_, s)| *s == text)
            .map_or_else(|| Self::Other(text.to_owned()), |(code, _)| code.clone())
    }

    /// The wire text.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Other(text) => text,
            known => EVENT_CODES
                .iter()
                .find(|(code, _)| code == known)
                .map_or("", |(_, s)| s),
        }
    }
}

impl fmt::Display for EventCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An `EventStruct` of an Inform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The event code.
    pub code: EventCode,
    /// The CommandKey of the method that caused it (empty for most events).
    pub command_key: String,
}

impl Event {
    /// An event without CommandKey.
    pub fn new(code: EventCode) -> Self {
        Self {
            code,
            command_key: String::new(),
        }
    }
}

/// The `DeviceIdStruct` of an Inform.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceId {
    /// Manufacturer name.
    pub manufacturer: String,
    /// Organizationally unique identifier, six upper-case hex digits.
    pub oui: String,
    /// Product class.
    pub product_class: String,
    /// Serial number.
    pub serial_number: String,
}

/// Inform (CPE -> ACS), the first message of every session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inform {
    /// Who is calling.
    pub device_id: DeviceId,
    /// Why the session was opened.
    pub events: Vec<Event>,
    /// Envelopes the CPE accepts per HTTP response (always 1 in practice).
    pub max_envelopes: u32,
    /// CPE's current time, `xsd:dateTime` text.
    pub current_time: String,
    /// Number of prior failed attempts of this session.
    pub retry_count: u32,
    /// Forced-inform and changed parameters.
    pub parameter_list: Vec<ParameterValue>,
}

/// InformResponse (ACS -> CPE).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InformResponse {
    /// Envelopes the ACS accepts per HTTP request (always 1 in practice).
    pub max_envelopes: u32,
}

/// GetRPCMethodsResponse: the methods the sender supports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GetRpcMethodsResponse {
    /// Method names, e.g. `GetParameterValues`.
    pub method_list: Vec<String>,
}

/// GetParameterNames (ACS -> CPE).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetParameterNames {
    /// A full parameter name, a partial path ending in `.`, or empty for the whole tree.
    pub parameter_path: String,
    /// Only the immediate children of `parameter_path` when true.
    pub next_level: bool,
}

/// A `ParameterInfoStruct` of a GetParameterNamesResponse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParameterInfo {
    /// Full parameter or object path (objects end in `.`).
    pub name: String,
    /// Whether the ACS may set it (or add/delete instances, for objects).
    pub writable: bool,
}

/// GetParameterNamesResponse (CPE -> ACS).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GetParameterNamesResponse {
    /// The names found.
    pub parameter_list: Vec<ParameterInfo>,
}

/// GetParameterValues (ACS -> CPE).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GetParameterValues {
    /// Full names or partial paths ending in `.`.
    pub parameter_names: Vec<String>,
}

/// GetParameterValuesResponse (CPE -> ACS).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GetParameterValuesResponse {
    /// The values found.
    pub parameter_list: Vec<ParameterValue>,
}

/// SetParameterValues (ACS -> CPE): applied all or nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SetParameterValues {
    /// The values to set.
    pub parameter_list: Vec<ParameterValue>,
    /// The new `ManagementServer.ParameterKey` on success (empty when absent).
    pub parameter_key: String,
}

/// The Status of a SetParameterValues, AddObject, DeleteObject or Download response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    /// 0: applied (Download: completed).
    Applied,
    /// 1: accepted, applied or committed later (e.g. after a reboot; Download: still running).
    Pending,
}

impl Status {
    /// The wire value, 0 or 1.
    pub fn code(self) -> u8 {
        match self {
            Self::Applied => 0,
            Self::Pending => 1,
        }
    }
}

/// SetParameterValuesResponse (CPE -> ACS).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SetParameterValuesResponse {
    /// Applied now or later.
    pub status: Status,
}

/// GetParameterAttributes (ACS -> CPE).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GetParameterAttributes {
    /// Full names or partial paths ending in `.`.
    pub parameter_names: Vec<String>,
}

/// The Notification attribute of a parameter (TR-069 A.3.2.4; 3-6 are CWMP 1.4 lightweight).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Notification {
    /// 0: off.
    #[default]
    Off,
    /// 1: passive, reported at the next session.
    Passive,
    /// 2: active, opens a session with `4 VALUE CHANGE`.
    Active,
    /// 3: passive lightweight notification.
    PassiveLightweight,
    /// 4: passive notification with passive lightweight notification.
    PassiveWithPassiveLightweight,
    /// 5: active lightweight notification.
    ActiveLightweight,
    /// 6: passive notification with active lightweight notification.
    PassiveWithActiveLightweight,
}

impl Notification {
    /// Maps the wire value 0-6.
    pub fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            0 => Self::Off,
            1 => Self::Passive,
            2 => Self::Active,
            3 => Self::PassiveLightweight,
            4 => Self::PassiveWithPassiveLightweight,
            5 => Self::ActiveLightweight,
            6 => Self::PassiveWithActiveLightweight,
            _ => return None,
        })
    }

    /// The wire value 0-6.
    pub fn code(self) -> u8 {
        match self {
            Self::Off => 0,
            Self::Passive => 1,
            Self::Active => 2,
            Self::PassiveLightweight => 3,
            Self::PassiveWithPassiveLightweight => 4,
            Self::ActiveLightweight => 5,
            Self::PassiveWithActiveLightweight => 6,
        }
    }
}

/// A `ParameterAttributeStruct` of a GetParameterAttributesResponse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParameterAttribute {
    /// Full parameter name.
    pub name: String,
    /// Current notification setting.
    pub notification: Notification,
    /// Entities besides the ACS allowed to write it (only `Subscriber` is defined).
    pub access_list: Vec<String>,
}

/// GetParameterAttributesResponse (CPE -> ACS).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GetParameterAttributesResponse {
    /// The attributes found.
    pub parameter_list: Vec<ParameterAttribute>,
}

/// A `SetParameterAttributesStruct` of a SetParameterAttributes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetParameterAttribute {
    /// Full name or partial path ending in `.`.
    pub name: String,
    /// Whether `notification` is to be applied.
    pub notification_change: bool,
    /// The new notification setting.
    pub notification: Notification,
    /// Whether `access_list` is to be applied.
    pub access_list_change: bool,
    /// The new access list.
    pub access_list: Vec<String>,
}

/// SetParameterAttributes (ACS -> CPE).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SetParameterAttributes {
    /// The changes to apply.
    pub parameter_list: Vec<SetParameterAttribute>,
}

/// AddObject (ACS -> CPE).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddObject {
    /// The multi-instance object, ending in `.` (e.g. `Device.Bridging.Bridge.`).
    pub object_name: String,
    /// The new `ManagementServer.ParameterKey` on success (empty when absent).
    pub parameter_key: String,
}

/// AddObjectResponse (CPE -> ACS).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddObjectResponse {
    /// Instance number of the new object.
    pub instance_number: u32,
    /// Applied now or later.
    pub status: Status,
}

/// DeleteObject (ACS -> CPE).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeleteObject {
    /// The instance to delete, ending in `.` (e.g. `Device.Bridging.Bridge.2.`).
    pub object_name: String,
    /// The new `ManagementServer.ParameterKey` on success (empty when absent).
    pub parameter_key: String,
}

/// DeleteObjectResponse (CPE -> ACS).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeleteObjectResponse {
    /// Applied now or later.
    pub status: Status,
}

/// Reboot (ACS -> CPE).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reboot {
    /// Reported back with the `M Reboot` event.
    pub command_key: String,
}

/// ScheduleInform (ACS -> CPE).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScheduleInform {
    /// Seconds from now until the scheduled Inform.
    pub delay_seconds: u32,
    /// Reported back with the `M ScheduleInform` event.
    pub command_key: String,
}

/// Download (ACS -> CPE).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Download {
    /// Reported back in TransferComplete.
    pub command_key: String,
    /// e.g. `1 Firmware Upgrade Image`, `3 Vendor Configuration File`.
    pub file_type: String,
    /// Where to fetch the file.
    pub url: String,
    /// Credentials for the file server (empty when none).
    pub username: String,
    /// Credentials for the file server (empty when none).
    pub password: String,
    /// Size in bytes, 0 when unknown.
    pub file_size: u32,
    /// Name to store the file under (empty when unspecified).
    pub target_file_name: String,
    /// Seconds to wait before starting.
    pub delay_seconds: u32,
    /// Where to redirect the user on success (empty when none).
    pub success_url: String,
    /// Where to redirect the user on failure (empty when none).
    pub failure_url: String,
}

/// DownloadResponse (CPE -> ACS).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownloadResponse {
    /// `Applied`: done; `Pending`: TransferComplete follows in a later session.
    pub status: Status,
    /// Start time, `xsd:dateTime` text (Unknown Time `0001-01-01T00:00:00Z` when pending).
    pub start_time: String,
    /// Completion time, `xsd:dateTime` text.
    pub complete_time: String,
}

/// The `FaultStruct` of a TransferComplete when the transfer failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferFault {
    /// Why the transfer failed (9001, 9002, 9010-9020 or vendor).
    pub code: FaultCode,
    /// Human-readable detail.
    pub string: String,
}

/// TransferComplete (CPE -> ACS).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferComplete {
    /// The CommandKey of the Download.
    pub command_key: String,
    /// `None` when the transfer succeeded (`FaultCode` 0 on the wire).
    pub fault: Option<TransferFault>,
    /// Start time, `xsd:dateTime` text.
    pub start_time: String,
    /// Completion time, `xsd:dateTime` text.
    pub complete_time: String,
}
