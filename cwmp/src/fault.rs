//! CWMP fault codes and the `cwmp:Fault` SOAP fault detail (TR-069 Annex A.5, `cwmp-1-2.xsd`
//! `CPEFaultCodeType` / `ACSFaultCodeType`).
//!
//! A CPE answers a request it cannot honour with a SOAP Fault whose `detail` holds a
//! [`Fault`]: a numeric [`FaultCode`], a human-readable string and, for
//! SetParameterValues only, one [`SetParameterValuesFault`] per offending parameter.
//!
//! ```
//! use cwmp::fault::{Fault, FaultCode, SetParameterValuesFault};
//!
//! let fault = Fault::set_parameter_values(vec![SetParameterValuesFault::new(
//!     "Device.ManagementServer.PeriodicInformInterval",
//!     FaultCode::InvalidParameterValue,
//! )]);
//! assert_eq!(fault.code.code(), 9003);
//! assert_eq!(fault.set_parameter_values_faults[0].code.code(), 9007);
//! ```

use std::fmt;

/// A CWMP fault code: the CPE codes 9000-9019, the ACS codes 8000-8006 and the vendor ranges.
///
/// Codes without a named variant are kept as [`FaultCode::Other`], so [`FaultCode::from_code`]
/// and [`FaultCode::code`] round-trip every `u32`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FaultCode {
    /// 9000: method not supported.
    MethodNotSupported,
    /// 9001: request denied (no reason specified).
    RequestDenied,
    /// 9002: internal error.
    InternalError,
    /// 9003: invalid arguments.
    InvalidArguments,
    /// 9004: resources exceeded.
    ResourcesExceeded,
    /// 9005: invalid parameter name.
    InvalidParameterName,
    /// 9006: invalid parameter type.
    InvalidParameterType,
    /// 9007: invalid parameter value.
    InvalidParameterValue,
    /// 9008: attempt to set a non-writable parameter.
    NonWritableParameter,
    /// 9009: notification request rejected.
    NotificationRequestRejected,
    /// 9010: file transfer (download) failure.
    DownloadFailure,
    /// 9011: upload failure.
    UploadFailure,
    /// 9012: file transfer server authentication failure.
    TransferAuthenticationFailure,
    /// 9013: unsupported protocol for file transfer.
    UnsupportedTransferProtocol,
    /// 9014: file transfer failure, unable to join multicast group.
    MulticastJoinFailure,
    /// 9015: file transfer failure, unable to contact file server.
    FileServerUnreachable,
    /// 9016: file transfer failure, unable to access file.
    FileAccessFailure,
    /// 9017: file transfer failure, unable to complete download.
    DownloadIncomplete,
    /// 9018: file transfer failure, file corrupted.
    FileCorrupted,
    /// 9019: file transfer failure, file authentication failure.
    FileAuthenticationFailure,
    /// 8000: ACS method not supported.
    AcsMethodNotSupported,
    /// 8001: ACS request denied (no reason specified).
    AcsRequestDenied,
    /// 8002: ACS internal error.
    AcsInternalError,
    /// 8003: ACS invalid arguments.
    AcsInvalidArguments,
    /// 8004: ACS resources exceeded.
    AcsResourcesExceeded,
    /// 8005: ACS asks the CPE to retry the request.
    AcsRetryRequest,
    /// 8006: ACS version incompatible with CPE (CWMP 1.4).
    AcsVersionIncompatible,
    /// 9800-9899: vendor-specific CPE fault.
    CpeVendor(u32),
    /// 8800-8899: vendor-specific ACS fault.
    AcsVendor(u32),
    /// Any other code: 9020-9799 (later amendments), 8007-8799, or out of every range.
    Other(u32),
}

/// The CPE vendor fault range (TR-069 `CPEVendorFaultCodeType`).
pub const CPE_VENDOR_RANGE: std::ops::RangeInclusive<u32> = 9800..=9899;
/// The ACS vendor fault range (TR-069 `ACSVendorFaultCodeType`).
pub const ACS_VENDOR_RANGE: std::ops::RangeInclusive<u32> = 8800..=8899;

/// Named codes, their default strings and their SOAP `faultcode` (Client or Server), per
/// TR-069 Annex A Table "Fault codes" and the `cwmp-1-4.xsd` annotations.
const TABLE: &[(FaultCode, u32, &str, SoapFaultCode)] = {
    use FaultCode as F;
    use SoapFaultCode::{Client as C, Server as S};
    &[
        (F::MethodNotSupported, 9000, "Method not supported", S),
        (
            F::RequestDenied,
            9001,
            "Request denied (no reason specified)",
            S,
        ),
        (F::InternalError, 9002, "Internal error", S),
        (F::InvalidArguments, 9003, "Invalid arguments", C),
        (F::ResourcesExceeded, 9004, "Resources exceeded", S),
        (F::InvalidParameterName, 9005, "Invalid parameter name", C),
        (F::InvalidParameterType, 9006, "Invalid parameter type", C),
        (F::InvalidParameterValue, 9007, "Invalid parameter value", C),
        (
            F::NonWritableParameter,
            9008,
            "Attempt to set a non-writable parameter",
            C,
        ),
        (
            F::NotificationRequestRejected,
            9009,
            "Notification request rejected",
            S,
        ),
        (F::DownloadFailure, 9010, "File transfer failure", S),
        (F::UploadFailure, 9011, "Upload failure", S),
        (
            F::TransferAuthenticationFailure,
            9012,
            "File transfer server authentication failure",
            S,
        ),
        (
            F::UnsupportedTransferProtocol,
            9013,
            "Unsupported protocol for file transfer",
            S,
        ),
        (
            F::MulticastJoinFailure,
            9014,
            "File transfer failure: unable to join multicast group",
            S,
        ),
        (
            F::FileServerUnreachable,
            9015,
            "File transfer failure: unable to contact file server",
            S,
        ),
        (
            F::FileAccessFailure,
            9016,
            "File transfer failure: unable to access file",
            S,
        ),
        (
            F::DownloadIncomplete,
            9017,
            "File transfer failure: unable to complete download",
            S,
        ),
        (
            F::FileCorrupted,
            9018,
            "File transfer failure: file corrupted",
            S,
        ),
        (
            F::FileAuthenticationFailure,
            9019,
            "File transfer failure: file authentication failure",
            S,
        ),
        (F::AcsMethodNotSupported, 8000, "Method not supported", S),
        (
            F::AcsRequestDenied,
            8001,
            "Request denied (no reason specified)",
            S,
        ),
        (F::AcsInternalError, 8002, "Internal error", S),
        (F::AcsInvalidArguments, 8003, "Invalid arguments", C),
        (F::AcsResourcesExceeded, 8004, "Resources exceeded", S),
        (F::AcsRetryRequest, 8005, "Retry request", S),
        (
            F::AcsVersionIncompatible,
            8006,
            "ACS version incompatible with CPE",
            S,
        ),
    ]
};

impl FaultCode {
    /// Maps a numeric code to its variant; unnamed codes become `CpeVendor`, `AcsVendor` or `Other`.
    pub fn from_code(code: u32) -> Self {
        if let Some(&(fault, ..)) = TABLE.iter().find(|(_, c, ..)| *c == code) {
            fault
        } else if CPE_VENDOR_RANGE.contains(&code) {
            Self::CpeVendor(code)
        } else if ACS_VENDOR_RANGE.contains(&code) {
            Self::AcsVendor(code)
        } else {
            Self::Other(code)
        }
    }

    /// The numeric code as sent in `FaultCode`.
    pub fn code(self) -> u32 {
        match self {
            Self::CpeVendor(code) | Self::AcsVendor(code) | Self::Other(code) => code,
            named => TABLE
                .iter()
                .find(|(f, ..)| *f == named)
                .map_or(0, |&(_, code, ..)| code),
        }
    }

    /// The default `FaultString` for this code.
    pub fn default_string(self) -> &'static str {
        if let Some(&(.., s, _)) = TABLE.iter().find(|(f, ..)| *f == self) {
            return s;
        }
        match self.code() {
            9020 => {
                "File transfer failure: unable to complete download within specified time windows"
            }
            9021 => "Cancelation of file transfer not permitted in current transfer state",
            9022 => "Invalid UUID format",
            9023 => "Unknown Execution Environment",
            9024 => "Disabled Execution Environment",
            9025 => "Deployment Unit to Execution Environment mismatch",
            9026 => "Duplicate Deployment Unit",
            9027 => "System resources exceeded",
            9028 => "Unknown Deployment Unit",
            9029 => "Invalid Deployment Unit state",
            9030 => "Invalid Deployment Unit update: downgrade not permitted",
            9031 => "Invalid Deployment Unit update: version not specified",
            9032 => "Invalid Deployment Unit update: version already exists",
            code if CPE_VENDOR_RANGE.contains(&code) || ACS_VENDOR_RANGE.contains(&code) => {
                "Vendor-specific fault"
            }
            _ => "Unknown fault",
        }
    }

    /// The SOAP 1.1 `faultcode` TR-069 assigns to this code: `Client` or `Server`.
    pub fn soap_fault_code(self) -> SoapFaultCode {
        match TABLE.iter().find(|(f, ..)| *f == self) {
            Some(&(.., soap)) => soap,
            // 9021 (cancel not permitted) is the only later code TR-069 marks as Client.
            None if self.code() == 9021 => SoapFaultCode::Client,
            None => SoapFaultCode::Server,
        }
    }
}

impl fmt::Display for FaultCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.code())
    }
}

/// The SOAP 1.1 `faultcode` of a CWMP fault: whether the sender or the receiver is to blame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SoapFaultCode {
    /// The request was wrong (e.g. invalid arguments).
    Client,
    /// The receiver failed (e.g. internal error, method not supported).
    Server,
}

impl SoapFaultCode {
    /// The `faultcode` text, unqualified as in the TR-069 examples.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Client => "Client",
            Self::Server => "Server",
        }
    }
}

/// The `cwmp:Fault` element carried in a SOAP Fault's `detail`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("CWMP fault {code}: {string}")]
pub struct Fault {
    /// The fault code.
    pub code: FaultCode,
    /// The `FaultString` (empty when the peer sent none).
    pub string: String,
    /// Per-parameter faults; only SetParameterValues faults carry them.
    pub set_parameter_values_faults: Vec<SetParameterValuesFault>,
}

impl Fault {
    /// A fault with the code's default string and no per-parameter entries.
    pub fn new(code: FaultCode) -> Self {
        Self::with_string(code, code.default_string())
    }

    /// A fault with a custom string.
    pub fn with_string(code: FaultCode, string: impl Into<String>) -> Self {
        Self {
            code,
            string: string.into(),
            set_parameter_values_faults: Vec::new(),
        }
    }

    /// The SetParameterValues fault: 9003 "Invalid arguments" with one entry per offending
    /// parameter (TR-069 A.3.2.1: the request is applied all or nothing).
    pub fn set_parameter_values(faults: Vec<SetParameterValuesFault>) -> Self {
        Self {
            set_parameter_values_faults: faults,
            ..Self::new(FaultCode::InvalidArguments)
        }
    }
}

impl From<FaultCode> for Fault {
    fn from(code: FaultCode) -> Self {
        Self::new(code)
    }
}

/// One `SetParameterValuesFault` entry: why one parameter of a SetParameterValues failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetParameterValuesFault {
    /// Full path of the offending parameter.
    pub parameter_name: String,
    /// Why it failed: typically 9005-9008 or a vendor code.
    pub code: FaultCode,
    /// The `FaultString` (empty when the peer sent none).
    pub string: String,
}

impl SetParameterValuesFault {
    /// An entry with the code's default string.
    pub fn new(parameter_name: impl Into<String>, code: FaultCode) -> Self {
        Self {
            parameter_name: parameter_name.into(),
            code,
            string: code.default_string().to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_named_code_round_trips() {
        for &(fault, code, string, _) in TABLE {
            assert_eq!(FaultCode::from_code(code), fault, "code {code}");
            assert_eq!(fault.code(), code);
            assert_eq!(fault.default_string(), string);
        }
        assert_eq!(TABLE.len(), 27, "9000-9019 and 8000-8006");
    }

    #[test]
    fn unnamed_codes_keep_their_number() {
        for code in [0, 1, 7999, 8007, 8799, 8900, 9020, 9799, 9900, u32::MAX] {
            assert_eq!(FaultCode::from_code(code), FaultCode::Other(code));
            assert_eq!(FaultCode::from_code(code).code(), code);
        }
        assert_eq!(FaultCode::from_code(9800), FaultCode::CpeVendor(9800));
        assert_eq!(FaultCode::from_code(9899), FaultCode::CpeVendor(9899));
        assert_eq!(FaultCode::from_code(8800), FaultCode::AcsVendor(8800));
        assert_eq!(FaultCode::from_code(8899).code(), 8899);
        assert_eq!(
            FaultCode::CpeVendor(9850).default_string(),
            "Vendor-specific fault"
        );
        assert_eq!(
            FaultCode::Other(9020).default_string(),
            "File transfer failure: unable to complete download within specified time windows"
        );
        assert_eq!(FaultCode::Other(12345).default_string(), "Unknown fault");
    }

    #[test]
    fn client_and_server_faults_follow_tr069() {
        let client: Vec<u32> = TABLE
            .iter()
            .filter(|(.., soap)| *soap == SoapFaultCode::Client)
            .map(|&(_, code, ..)| code)
            .collect();
        assert_eq!(client, [9003, 9005, 9006, 9007, 9008, 8003]);
        assert_eq!(
            FaultCode::Other(9021).soap_fault_code(),
            SoapFaultCode::Client
        );
        assert_eq!(
            FaultCode::CpeVendor(9801).soap_fault_code().as_str(),
            "Server"
        );
    }

    #[test]
    fn fault_constructors() {
        let fault = Fault::new(FaultCode::MethodNotSupported);
        assert_eq!(fault.string, "Method not supported");
        assert!(fault.set_parameter_values_faults.is_empty());
        assert_eq!(fault.to_string(), "CWMP fault 9000: Method not supported");

        let spv = Fault::set_parameter_values(vec![SetParameterValuesFault::new(
            "Device.X.",
            FaultCode::NonWritableParameter,
        )]);
        assert_eq!(spv.code, FaultCode::InvalidArguments);
        assert_eq!(
            spv.set_parameter_values_faults[0].string,
            "Attempt to set a non-writable parameter"
        );
        assert_eq!(
            Fault::from(FaultCode::InternalError),
            Fault::new(FaultCode::InternalError)
        );
    }
}
