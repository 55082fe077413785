//! Codec tests: fixtures in the style real ACSs and CPEs send, round trips of every message
//! type, the exact emitted format, and every decode error.

use super::*;
use crate::fault::{Fault, FaultCode, SetParameterValuesFault};

macro_rules! fixture {
    ($name:literal) => {
        ($name, include_str!(concat!("fixtures/", $name, ".xml")))
    };
}

/// Every fixture: ACS requests (GenieACS, Axiros, FreeACS styles), CPE messages (icwmp and
/// Huawei styles), odd prefixes and each accepted namespace.
const FIXTURES: &[(&str, &str)] = &[
    fixture!("genieacs_gpn_empty_path"),
    fixture!("genieacs_gpn_next_level"),
    fixture!("genieacs_gpv_partial"),
    fixture!("genieacs_spv"),
    fixture!("genieacs_download"),
    fixture!("axiros_gpv_pretty"),
    fixture!("axiros_spa"),
    fixture!("freeacs_spv_cwmp12"),
    fixture!("freeacs_add_object"),
    fixture!("default_ns_no_prefix"),
    fixture!("env_ns1_prefixes"),
    fixture!("cwmp13_headers"),
    fixture!("cwmp14_version_headers"),
    fixture!("cwmp10_no_more_requests"),
    fixture!("icwmp_inform"),
    fixture!("huawei_inform_cwmp10"),
    fixture!("cpe_fault_spv"),
    fixture!("acs_fault_retry"),
    fixture!("cpe_transfer_complete"),
    fixture!("unknown_upload"),
    fixture!("empty_body"),
];

fn get(name: &str) -> &'static str {
    FIXTURES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, xml)| *xml)
        .unwrap_or_else(|| panic!("no fixture {name}"))
}

fn dec(xml: &str) -> Envelope {
    decode(xml.as_bytes(), &Limits::default())
        .unwrap_or_else(|e| panic!("decode failed: {e:?}\n{xml}"))
}

fn dec_err(xml: impl AsRef<[u8]>) -> DecodeError {
    match decode(xml.as_ref(), &Limits::default()) {
        Ok(env) => panic!("decoded, expected an error: {env:?}"),
        Err(e) => e,
    }
}

fn string_of(env: &Envelope) -> String {
    String::from_utf8(encode(env)).expect("encoder writes UTF-8")
}

// ---------------------------------------------------------------------------------------
// Fixtures

#[test]
fn genieacs_gpn_with_empty_path() {
    let env = dec(get("genieacs_gpn_empty_path"));
    assert_eq!(env.id.as_deref(), Some("1a2b3c4d5e"));
    assert_eq!(env.ns, CwmpVersion::V1_0);
    assert!(!env.hold_requests);
    assert_eq!(
        env.body,
        Body::GetParameterNames(GetParameterNames {
            parameter_path: String::new(),
            next_level: false,
        })
    );
}

#[test]
fn genieacs_gpn_next_level() {
    let env = dec(get("genieacs_gpn_next_level"));
    assert_eq!(
        env.body,
        Body::GetParameterNames(GetParameterNames {
            parameter_path: "Device.".into(),
            next_level: true,
        })
    );
}

#[test]
fn gpv_with_partial_paths() {
    let env = dec(get("genieacs_gpv_partial"));
    let Body::GetParameterValues(gpv) = env.body else {
        panic!("not GPV: {:?}", env.body)
    };
    assert_eq!(
        gpv.parameter_names,
        [
            "Device.DeviceInfo.",
            "Device.ManagementServer.PeriodicInformInterval",
            "Device.Bridging.Bridge.1.Port.",
        ]
    );

    // Pretty-printed, SOAP-ENV prefixes, cwmp-1-2, whitespace around a name.
    let env = dec(get("axiros_gpv_pretty"));
    assert_eq!(env.id.as_deref(), Some("AXS-0042"));
    assert_eq!(env.ns, CwmpVersion::V1_2);
    assert_eq!(
        env.body,
        Body::GetParameterValues(GetParameterValues {
            parameter_names: vec![
                "Device.ManagementServer.".into(),
                "Device.Ethernet.VLANTermination.".into()
            ],
        })
    );
}

#[test]
fn genieacs_spv_keeps_types_and_unescapes() {
    let env = dec(get("genieacs_spv"));
    let Body::SetParameterValues(spv) = env.body else {
        panic!("not SPV: {:?}", env.body)
    };
    assert_eq!(spv.parameter_key, "inform-provision-1");
    assert_eq!(
        spv.parameter_list,
        [
            ParameterValue::new(
                "Device.ManagementServer.ConnectionRequestUsername",
                "acs&user",
                ValueType::String
            ),
            ParameterValue::new(
                "Device.ManagementServer.ConnectionRequestPassword",
                "p<w>d \"x\" 'y'",
                ValueType::String
            ),
            ParameterValue::new(
                "Device.ManagementServer.PeriodicInformEnable",
                "true",
                ValueType::Boolean
            ),
            ParameterValue::new(
                "Device.ManagementServer.PeriodicInformInterval",
                "300",
                ValueType::UnsignedInt
            ),
        ]
    );
}

#[test]
fn freeacs_spv_keeps_value_whitespace() {
    let env = dec(get("freeacs_spv_cwmp12"));
    assert_eq!(env.ns, CwmpVersion::V1_2);
    assert_eq!(env.id.as_deref(), Some("FREEACS-1337"));
    let Body::SetParameterValues(spv) = env.body else {
        panic!("not SPV: {:?}", env.body)
    };
    assert_eq!(spv.parameter_key, "FreeACS-1337");
    let values: Vec<_> = spv
        .parameter_list
        .iter()
        .map(|p| (p.name.as_str(), p.value.as_str(), p.value_type.clone()))
        .collect();
    assert_eq!(
        values,
        [
            (
                "Device.Bridging.Bridge.1.Port.2.PVID",
                "100",
                Some(ValueType::Int)
            ),
            (
                "Device.Bridging.Bridge.1.Port.2.TPID",
                "34984",
                Some(ValueType::UnsignedInt)
            ),
            (
                "Device.DeviceInfo.ProvisioningCode",
                "  spaces kept  ",
                Some(ValueType::String)
            ),
        ]
    );
}

#[test]
fn spa_in_axiros_style() {
    let env = dec(get("axiros_spa"));
    assert_eq!(
        env.body,
        Body::SetParameterAttributes(SetParameterAttributes {
            parameter_list: vec![
                SetParameterAttribute {
                    name: "Device.DeviceInfo.SoftwareVersion".into(),
                    notification_change: true,
                    notification: Notification::Active,
                    access_list_change: false,
                    access_list: vec![],
                },
                SetParameterAttribute {
                    name: "Device.ManagementServer.URL".into(),
                    notification_change: true,
                    notification: Notification::Passive,
                    access_list_change: true,
                    access_list: vec!["Subscriber".into()],
                },
            ],
        })
    );
}

#[test]
fn object_messages_and_odd_prefixes() {
    let env = dec(get("freeacs_add_object"));
    assert_eq!(
        env.body,
        Body::AddObject(AddObject {
            object_name: "Device.Bridging.Bridge.".into(),
            parameter_key: String::new(),
        })
    );

    // No prefixes at all: SOAP and CWMP namespaces both come from default xmlns.
    let env = dec(get("default_ns_no_prefix"));
    assert_eq!(env.ns, CwmpVersion::V1_1);
    assert_eq!(env.id.as_deref(), Some("np-1"));
    assert_eq!(
        env.body,
        Body::DeleteObject(DeleteObject {
            object_name: "Device.Bridging.Bridge.2.".into(),
            parameter_key: "del-2".into(),
        })
    );

    // `env:` and `ns:`/`cwmp1:` prefixes; whitespace around a number.
    let env = dec(get("env_ns1_prefixes"));
    assert_eq!(env.ns, CwmpVersion::V1_1);
    assert_eq!(env.id.as_deref(), Some("ns-7"));
    assert_eq!(
        env.body,
        Body::ScheduleInform(ScheduleInform {
            delay_seconds: 60,
            command_key: "sched".into(),
        })
    );
}

#[test]
fn download_in_genieacs_style() {
    let env = dec(get("genieacs_download"));
    assert_eq!(
        env.body,
        Body::Download(Download {
            command_key: "fw-2.1".into(),
            file_type: "1 Firmware Upgrade Image".into(),
            url: "http://acs.example.net:7567/brg-2.1.bin?token=a&b=c".into(),
            file_size: 1_048_576,
            target_file_name: "brg-2.1.bin".into(),
            ..Download::default()
        })
    );
}

#[test]
fn cwmp13_and_cwmp14_headers() {
    let env = dec(get("cwmp13_headers"));
    assert_eq!(env.ns, CwmpVersion::V1_3);
    assert!(env.hold_requests);
    assert_eq!(env.session_timeout, Some(60));
    assert_eq!(
        env.body,
        Body::InformResponse(InformResponse { max_envelopes: 1 })
    );

    let env = dec(get("cwmp14_version_headers"));
    assert_eq!(env.ns, CwmpVersion::V1_4);
    assert_eq!(
        env.supported_cwmp_versions.as_deref(),
        Some("1.0,1.1,1.2,1.3,1.4")
    );
    assert_eq!(env.use_cwmp_version.as_deref(), Some("1.4"));
    assert_eq!(env.body, Body::GetRpcMethods);
}

#[test]
fn cwmp10_no_more_requests_is_ignored() {
    let env = dec(get("cwmp10_no_more_requests"));
    assert_eq!(env.ns, CwmpVersion::V1_0);
    assert_eq!(env.id.as_deref(), Some("old-1"));
    assert!(!env.hold_requests);
    assert_eq!(
        env.body,
        Body::Reboot(Reboot {
            command_key: "reboot-now".into(),
        })
    );
}

#[test]
fn icwmp_inform() {
    let env = dec(get("icwmp_inform"));
    assert_eq!(env.ns, CwmpVersion::V1_2);
    let Body::Inform(inform) = env.body else {
        panic!("not Inform: {:?}", env.body)
    };
    assert_eq!(
        inform.device_id,
        DeviceId {
            manufacturer: "iopsys".into(),
            oui: "002207".into(),
            product_class: "EX400".into(),
            serial_number: "E40122W09000123".into(),
        }
    );
    assert_eq!(
        inform.events,
        [
            Event::new(EventCode::Boot),
            Event {
                code: EventCode::MReboot,
                command_key: "reboot-now".into(),
            },
            Event::new(EventCode::Other("X 002207 CUSTOM".into())),
        ]
    );
    assert_eq!(inform.max_envelopes, 1);
    assert_eq!(inform.current_time, "2024-05-02T10:11:12+02:00");
    assert_eq!(inform.retry_count, 0);
    assert_eq!(inform.parameter_list.len(), 6);
    assert_eq!(
        inform.parameter_list[4],
        ParameterValue::new(
            "Device.ManagementServer.AliasBasedAddressing",
            "0",
            ValueType::Boolean
        )
    );
    assert_eq!(
        inform.parameter_list[5].value_type,
        Some(ValueType::UnsignedInt)
    );
}

#[test]
fn huawei_inform_with_xsi_types_everywhere() {
    let env = dec(get("huawei_inform_cwmp10"));
    assert_eq!(env.ns, CwmpVersion::V1_0);
    assert_eq!(env.id.as_deref(), Some("0"));
    let Body::Inform(inform) = env.body else {
        panic!("not Inform: {:?}", env.body)
    };
    assert_eq!(inform.device_id.oui, "00259E");
    assert_eq!(
        inform.device_id.manufacturer,
        "Huawei Technologies Co., Ltd"
    );
    let codes: Vec<_> = inform.events.iter().map(|e| e.code.clone()).collect();
    assert_eq!(codes, [EventCode::Bootstrap, EventCode::ConnectionRequest]);
    assert_eq!(inform.retry_count, 2);
    assert_eq!(inform.current_time, "2016-03-17T21:04:39");
    assert_eq!(inform.parameter_list[1].value, "");
    assert_eq!(inform.parameter_list[2].value, "203.0.113.7");
}

#[test]
fn cpe_fault_with_spv_faults() {
    let env = dec(get("cpe_fault_spv"));
    assert_eq!(env.ns, CwmpVersion::V1_2);
    assert_eq!(
        env.body,
        Body::Fault(Fault {
            code: FaultCode::InvalidArguments,
            string: "Invalid arguments".into(),
            set_parameter_values_faults: vec![
                SetParameterValuesFault::new(
                    "Device.Bridging.Bridge.1.Port.2.PVID",
                    FaultCode::InvalidParameterValue
                ),
                SetParameterValuesFault {
                    parameter_name: "Device.DeviceInfo.ProvisioningCode".into(),
                    code: FaultCode::NonWritableParameter,
                    string: String::new(),
                },
            ],
        })
    );
}

#[test]
fn acs_fault_retry_request() {
    let env = dec(get("acs_fault_retry"));
    assert_eq!(
        env.body,
        Body::Fault(Fault::new(FaultCode::AcsRetryRequest))
    );
}

#[test]
fn transfer_complete_with_fault() {
    let env = dec(get("cpe_transfer_complete"));
    assert_eq!(
        env.body,
        Body::TransferComplete(TransferComplete {
            command_key: "fw-2.1".into(),
            fault: Some(TransferFault {
                code: FaultCode::FileCorrupted,
                string: "File transfer failure: file corrupted".into(),
            }),
            start_time: "2024-05-02T10:11:12Z".into(),
            complete_time: "2024-05-02T10:12:40Z".into(),
        })
    );
}

#[test]
fn unknown_method_is_not_an_error() {
    let env = dec(get("unknown_upload"));
    assert_eq!(env.id.as_deref(), Some("up-1"));
    assert_eq!(
        env.body,
        Body::Unknown {
            name: "Upload".into()
        }
    );
    assert_eq!(env.body.method_name(), Some("Upload"));
}

#[test]
fn empty_body_is_its_own_value() {
    let env = dec(get("empty_body"));
    assert_eq!(env.body, Body::Empty);
    assert_eq!(env.id.as_deref(), Some("e-1"));
    assert_eq!(env.ns, CwmpVersion::V1_2);
    assert_eq!(env.body.method_name(), None);

    // No CWMP namespace anywhere: cwmp-1-0.
    let env = dec(
        r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body/></s:Envelope>"#,
    );
    assert_eq!(
        (env.ns, env.body, env.id),
        (CwmpVersion::V1_0, Body::Empty, None)
    );
}

#[test]
fn namespace_precedence() {
    // The method's namespace wins over the header's and over declarations.
    let env = dec(
        r#"<s:Envelope xmlns:s="x" xmlns:a="urn:dslforum-org:cwmp-1-0" xmlns:b="urn:dslforum-org:cwmp-1-4">
           <s:Header><a:ID>1</a:ID></s:Header><s:Body><b:GetRPCMethods/></s:Body></s:Envelope>"#,
    );
    assert_eq!(env.ns, CwmpVersion::V1_4);
    // Method in no namespace (undeclared prefix): the header's namespace.
    let env = dec(
        r#"<s:Envelope xmlns:a="urn:dslforum-org:cwmp-1-1"><s:Header><a:ID>1</a:ID></s:Header>
           <s:Body><cwmp:GetRPCMethods/></s:Body></s:Envelope>"#,
    );
    assert_eq!((env.ns, env.body), (CwmpVersion::V1_1, Body::GetRpcMethods));
    // Nothing but a declaration.
    let env = dec(
        r#"<Envelope xmlns:c="urn:dslforum-org:cwmp-1-3"><Body><FactoryReset/></Body></Envelope>"#,
    );
    assert_eq!((env.ns, env.body), (CwmpVersion::V1_3, Body::FactoryReset));
    // A SOAP Fault takes the namespace of its cwmp:Fault detail.
    let env = dec(
        r#"<Envelope><Body><Fault><faultcode>Server</faultcode><detail>
           <Fault xmlns="urn:dslforum-org:cwmp-1-2"><FaultCode>9002</FaultCode></Fault></detail></Fault></Body></Envelope>"#,
    );
    assert_eq!(env.ns, CwmpVersion::V1_2);
    assert_eq!(
        env.body,
        Body::Fault(Fault::with_string(FaultCode::InternalError, ""))
    );
}

#[test]
fn liberal_inputs() {
    // BOM, comments, processing instructions, CDATA, odd boolean case, unprefixed arrays,
    // array items under other element names, missing optional arguments.
    let xml = "\u{FEFF}<?xml version=\"1.0\"?><!-- hello --><?pi x?><E:Envelope xmlns:E=\"e\"><E:Body>\
               <c:GetParameterNames xmlns:c=\"urn:dslforum-org:cwmp-1-2\"><ParameterPath><![CDATA[Device.]]></ParameterPath>\
               <NextLevel>TRUE</NextLevel></c:GetParameterNames></E:Body></E:Envelope>";
    let env = dec(xml);
    assert_eq!(
        env.body,
        Body::GetParameterNames(GetParameterNames {
            parameter_path: "Device.".into(),
            next_level: true,
        })
    );
    let env = dec(
        "<Envelope><Body><GetParameterValues><ParameterNames><item>A.</item><xsd:string>B</xsd:string>\
                   </ParameterNames></GetParameterValues></Body></Envelope>",
    );
    assert_eq!(
        env.body,
        Body::GetParameterValues(GetParameterValues {
            parameter_names: vec!["A.".into(), "B".into()],
        })
    );
    let env = dec(
        "<Envelope><Body><SetParameterValues><ParameterList><ParameterValueStruct><Name>A</Name>\
                   <Value>untyped</Value></ParameterValueStruct></ParameterList></SetParameterValues></Body></Envelope>",
    );
    let Body::SetParameterValues(spv) = env.body else {
        panic!("not SPV")
    };
    assert_eq!(spv.parameter_key, "");
    assert_eq!(spv.parameter_list[0].value_type, None);
    let env =
        dec("<Envelope><Body><InformResponse><MaxEnvelopes/></InformResponse></Body></Envelope>");
    assert_eq!(
        env.body,
        Body::InformResponse(InformResponse { max_envelopes: 1 })
    );
    // Other value types and base64Binary.
    let env = dec(
        "<Envelope><Body><GetParameterValuesResponse><ParameterList>\
                   <P><Name>a</Name><Value xsi:type='xs:base64Binary'>AA==</Value></P>\
                   <P><Name>b</Name><Value xsi:type='soapenc:decimal'>1.5</Value></P>\
                   <P><Name>c</Name><Value xsi:type='hexBinary'>0a</Value></P>\
                   </ParameterList></GetParameterValuesResponse></Body></Envelope>",
    );
    let Body::GetParameterValuesResponse(r) = env.body else {
        panic!("not GPV response")
    };
    let types: Vec<_> = r.parameter_list.into_iter().map(|p| p.value_type).collect();
    assert_eq!(
        types,
        [
            Some(ValueType::Base64),
            Some(ValueType::Other("decimal".into())),
            Some(ValueType::HexBinary)
        ]
    );
}

// ---------------------------------------------------------------------------------------
// Round trips

/// One sample of every Body variant, with arguments that exercise escaping.
fn samples() -> Vec<Body> {
    let pv = |name: &str, value: &str, ty| ParameterValue::new(name, value, ty);
    vec![
        Body::Empty,
        Body::Inform(Inform {
            device_id: DeviceId {
                manufacturer: "NERG & Co".into(),
                oui: "A1B2C3".into(),
                product_class: "BRG".into(),
                serial_number: "SN<1>".into(),
            },
            events: vec![
                Event::new(EventCode::Bootstrap),
                Event::new(EventCode::Boot),
                Event {
                    code: EventCode::MDownload,
                    command_key: "fw".into(),
                },
                Event::new(EventCode::TransferComplete),
                Event::new(EventCode::Wakeup),
                Event::new(EventCode::Other("X ACME Thing".into())),
            ],
            max_envelopes: 1,
            current_time: "2025-01-01T00:00:00Z".into(),
            retry_count: 3,
            parameter_list: vec![
                pv("Device.RootDataModelVersion", "2.15", ValueType::String),
                pv("Device.DeviceInfo.UpTime", "42", ValueType::UnsignedInt),
                pv("Device.X.Int", "-7", ValueType::Int),
                pv("Device.X.Long", "-9000000000", ValueType::Long),
                pv("Device.X.ULong", "18000000000", ValueType::UnsignedLong),
                pv("Device.X.Bool", "true", ValueType::Boolean),
                pv("Device.X.Time", "0001-01-01T00:00:00Z", ValueType::DateTime),
                pv("Device.X.B64", "AAEC", ValueType::Base64),
                pv("Device.X.Hex", "00ff", ValueType::HexBinary),
                pv("Device.X.Other", "1.5", ValueType::Other("decimal".into())),
                pv(
                    "Device.X.Text",
                    " a&b <c> \"d\" 'e'\r\n\tf ]]> ",
                    ValueType::String,
                ),
                pv("Device.X.Unicode", "grüße 日本 🦀", ValueType::String),
            ],
        }),
        Body::InformResponse(InformResponse { max_envelopes: 1 }),
        Body::GetRpcMethods,
        Body::GetRpcMethodsResponse(GetRpcMethodsResponse {
            method_list: vec![
                "GetRPCMethods".into(),
                "GetParameterValues".into(),
                "Download".into(),
            ],
        }),
        Body::GetParameterNames(GetParameterNames {
            parameter_path: String::new(),
            next_level: true,
        }),
        Body::GetParameterNamesResponse(GetParameterNamesResponse {
            parameter_list: vec![
                ParameterInfo {
                    name: "Device.".into(),
                    writable: false,
                },
                ParameterInfo {
                    name: "Device.Bridging.Bridge.".into(),
                    writable: true,
                },
            ],
        }),
        Body::GetParameterValues(GetParameterValues {
            parameter_names: vec!["Device.DeviceInfo.".into(), String::new()],
        }),
        Body::GetParameterValuesResponse(GetParameterValuesResponse {
            parameter_list: vec![pv(
                "Device.DeviceInfo.SerialNumber",
                "SN1",
                ValueType::String,
            )],
        }),
        Body::SetParameterValues(SetParameterValues {
            parameter_list: vec![
                pv(
                    "Device.ManagementServer.PeriodicInformInterval",
                    "300",
                    ValueType::UnsignedInt,
                ),
                pv(
                    "Device.ManagementServer.PeriodicInformEnable",
                    "1",
                    ValueType::Boolean,
                ),
            ],
            parameter_key: "key & more".into(),
        }),
        Body::SetParameterValuesResponse(SetParameterValuesResponse {
            status: Status::Pending,
        }),
        Body::GetParameterAttributes(GetParameterAttributes {
            parameter_names: vec!["Device.ManagementServer.".into()],
        }),
        Body::GetParameterAttributesResponse(GetParameterAttributesResponse {
            parameter_list: vec![
                ParameterAttribute {
                    name: "Device.ManagementServer.URL".into(),
                    notification: Notification::Active,
                    access_list: vec![],
                },
                ParameterAttribute {
                    name: "Device.DeviceInfo.UpTime".into(),
                    notification: Notification::PassiveWithActiveLightweight,
                    access_list: vec!["Subscriber".into()],
                },
            ],
        }),
        Body::SetParameterAttributes(SetParameterAttributes {
            parameter_list: vec![SetParameterAttribute {
                name: "Device.DeviceInfo.".into(),
                notification_change: true,
                notification: Notification::Passive,
                access_list_change: true,
                access_list: vec!["Subscriber".into()],
            }],
        }),
        Body::SetParameterAttributesResponse,
        Body::AddObject(AddObject {
            object_name: "Device.Bridging.Bridge.".into(),
            parameter_key: "k1".into(),
        }),
        Body::AddObjectResponse(AddObjectResponse {
            instance_number: 7,
            status: Status::Applied,
        }),
        Body::DeleteObject(DeleteObject {
            object_name: "Device.Bridging.Bridge.7.".into(),
            parameter_key: "k2".into(),
        }),
        Body::DeleteObjectResponse(DeleteObjectResponse {
            status: Status::Applied,
        }),
        Body::Reboot(Reboot {
            command_key: "rb".into(),
        }),
        Body::RebootResponse,
        Body::FactoryReset,
        Body::FactoryResetResponse,
        Body::ScheduleInform(ScheduleInform {
            delay_seconds: 30,
            command_key: "si".into(),
        }),
        Body::ScheduleInformResponse,
        Body::Download(Download {
            command_key: "fw".into(),
            file_type: "1 Firmware Upgrade Image".into(),
            url: "https://files.example.net/fw.bin?a=1&b=2".into(),
            username: "u".into(),
            password: "p w".into(),
            file_size: 123,
            target_file_name: "fw.bin".into(),
            delay_seconds: 5,
            success_url: "https://ok.example.net/".into(),
            failure_url: "https://ko.example.net/".into(),
        }),
        Body::DownloadResponse(DownloadResponse {
            status: Status::Pending,
            start_time: "0001-01-01T00:00:00Z".into(),
            complete_time: "0001-01-01T00:00:00Z".into(),
        }),
        Body::TransferComplete(TransferComplete {
            command_key: "fw".into(),
            fault: None,
            start_time: "2025-01-01T00:00:00Z".into(),
            complete_time: "2025-01-01T00:01:00Z".into(),
        }),
        Body::TransferComplete(TransferComplete {
            command_key: "fw".into(),
            fault: Some(TransferFault {
                code: FaultCode::CpeVendor(9812),
                string: "vendor".into(),
            }),
            start_time: String::new(),
            complete_time: String::new(),
        }),
        Body::TransferCompleteResponse,
        Body::Fault(Fault::new(FaultCode::MethodNotSupported)),
        Body::Fault(Fault::set_parameter_values(vec![
            SetParameterValuesFault::new("Device.A", FaultCode::InvalidParameterType),
            SetParameterValuesFault::new("Device.B", FaultCode::Other(9799)),
        ])),
        Body::Unknown {
            name: "X_ACME_Frobnicate".into(),
        },
    ]
}

/// The position of a variant in [`Body`]: an exhaustive match, so a new variant without a
/// sample fails to compile here and then fails `samples_cover_every_variant`.
fn variant_index(body: &Body) -> usize {
    match body {
        Body::Empty => 0,
        Body::Inform(_) => 1,
        Body::InformResponse(_) => 2,
        Body::GetRpcMethods => 3,
        Body::GetRpcMethodsResponse(_) => 4,
        Body::GetParameterNames(_) => 5,
        Body::GetParameterNamesResponse(_) => 6,
        Body::GetParameterValues(_) => 7,
        Body::GetParameterValuesResponse(_) => 8,
        Body::SetParameterValues(_) => 9,
        Body::SetParameterValuesResponse(_) => 10,
        Body::GetParameterAttributes(_) => 11,
        Body::GetParameterAttributesResponse(_) => 12,
        Body::SetParameterAttributes(_) => 13,
        Body::SetParameterAttributesResponse => 14,
        Body::AddObject(_) => 15,
        Body::AddObjectResponse(_) => 16,
        Body::DeleteObject(_) => 17,
        Body::DeleteObjectResponse(_) => 18,
        Body::Reboot(_) => 19,
        Body::RebootResponse => 20,
        Body::FactoryReset => 21,
        Body::FactoryResetResponse => 22,
        Body::ScheduleInform(_) => 23,
        Body::ScheduleInformResponse => 24,
        Body::Download(_) => 25,
        Body::DownloadResponse(_) => 26,
        Body::TransferComplete(_) => 27,
        Body::TransferCompleteResponse => 28,
        Body::Fault(_) => 29,
        Body::Unknown { .. } => 30,
    }
}

#[test]
fn samples_cover_every_variant() {
    let mut seen: Vec<usize> = samples().iter().map(variant_index).collect();
    seen.sort_unstable();
    seen.dedup();
    assert_eq!(seen, (0..=30).collect::<Vec<_>>());
}

#[test]
fn every_message_type_round_trips_in_every_namespace() {
    for ns in CwmpVersion::ALL {
        for body in samples() {
            let env = Envelope {
                id: Some("id <&> 1".into()),
                hold_requests: matches!(body, Body::InformResponse(_)),
                session_timeout: Some(30),
                supported_cwmp_versions: Some("1.0,1.4".into()),
                use_cwmp_version: Some("1.4".into()),
                ..Envelope::new(ns, body)
            };
            let bytes = encode(&env);
            let back = decode(&bytes, &Limits::default())
                .unwrap_or_else(|e| panic!("{e:?}\n{}", String::from_utf8_lossy(&bytes)));
            assert_eq!(back, env, "{}", String::from_utf8_lossy(&bytes));
            // Without any header field there is no Header element, and the result is the same.
            let bare = Envelope::new(ns, env.body.clone());
            assert_eq!(decode(&encode(&bare), &Limits::default()).ok(), Some(bare));
        }
    }
}

#[test]
fn every_fixture_round_trips() {
    for (name, xml) in FIXTURES {
        let first = dec(xml);
        let bytes = encode(&first);
        let second = decode(&bytes, &Limits::default())
            .unwrap_or_else(|e| panic!("{name}: {e:?}\n{}", String::from_utf8_lossy(&bytes)));
        assert_eq!(second, first, "{name}");
        assert_eq!(encode(&second), bytes, "{name}: encoding is stable");
    }
}

#[test]
fn untyped_values_are_emitted_as_strings() {
    let env = dec(
        "<Envelope><Body><GetParameterValuesResponse><ParameterList><ParameterValueStruct>\
                   <Name>A</Name><Value>x</Value></ParameterValueStruct></ParameterList>\
                   </GetParameterValuesResponse></Body></Envelope>",
    );
    let out = string_of(&env);
    assert!(
        out.contains(r#"<Value xsi:type="xsd:string">x</Value>"#),
        "{out}"
    );
}

// ---------------------------------------------------------------------------------------
// Exact output

#[test]
fn encoder_output_is_exact() {
    let env = Envelope::new(
        CwmpVersion::V1_2,
        Body::GetParameterValuesResponse(GetParameterValuesResponse {
            parameter_list: vec![
                ParameterValue::new("Device.DeviceInfo.UpTime", "42", ValueType::UnsignedInt),
                ParameterValue::new("Device.X.Name", "a<b & \"c\"\r", ValueType::String),
            ],
        }),
    )
    .with_id("42");
    let expected = concat!(
        r#"<?xml version="1.0" encoding="UTF-8"?>"#,
        "\n",
        r#"<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:soapenc="http://schemas.xmlsoap.org/soap/encoding/" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:cwmp="urn:dslforum-org:cwmp-1-2">"#,
        r#"<soapenv:Header><cwmp:ID soapenv:mustUnderstand="1">42</cwmp:ID></soapenv:Header>"#,
        r#"<soapenv:Body><cwmp:GetParameterValuesResponse>"#,
        r#"<ParameterList soapenc:arrayType="cwmp:ParameterValueStruct[2]">"#,
        r#"<ParameterValueStruct><Name>Device.DeviceInfo.UpTime</Name><Value xsi:type="xsd:unsignedInt">42</Value></ParameterValueStruct>"#,
        r#"<ParameterValueStruct><Name>Device.X.Name</Name><Value xsi:type="xsd:string">a&lt;b &amp; "c"&#13;</Value></ParameterValueStruct>"#,
        r#"</ParameterList></cwmp:GetParameterValuesResponse></soapenv:Body></soapenv:Envelope>"#,
    );
    assert_eq!(string_of(&env), expected);
}

#[test]
fn encoder_writes_headers_faults_and_arrays_strictly() {
    let env = Envelope {
        hold_requests: true,
        session_timeout: Some(60),
        supported_cwmp_versions: Some("1.0,1.4".into()),
        use_cwmp_version: Some("1.4".into()),
        ..Envelope::new(
            CwmpVersion::V1_0,
            Body::Fault(Fault::set_parameter_values(vec![
                SetParameterValuesFault::new("Device.A", FaultCode::NonWritableParameter),
            ])),
        )
        .with_id("7")
    };
    let out = string_of(&env);
    for part in [
        r#"xmlns:cwmp="urn:dslforum-org:cwmp-1-0""#,
        r#"<soapenv:Header><cwmp:ID soapenv:mustUnderstand="1">7</cwmp:ID><cwmp:HoldRequests soapenv:mustUnderstand="1">1</cwmp:HoldRequests><cwmp:SessionTimeout>60</cwmp:SessionTimeout><cwmp:SupportedCWMPVersions soapenv:mustUnderstand="0">1.0,1.4</cwmp:SupportedCWMPVersions><cwmp:UseCWMPVersion soapenv:mustUnderstand="1">1.4</cwmp:UseCWMPVersion></soapenv:Header>"#,
        r#"<soapenv:Body><soapenv:Fault><faultcode>Client</faultcode><faultstring>CWMP fault</faultstring><detail><cwmp:Fault><FaultCode>9003</FaultCode><FaultString>Invalid arguments</FaultString><SetParameterValuesFault><ParameterName>Device.A</ParameterName><FaultCode>9008</FaultCode><FaultString>Attempt to set a non-writable parameter</FaultString></SetParameterValuesFault></cwmp:Fault></detail></soapenv:Fault></soapenv:Body>"#,
    ] {
        assert!(out.contains(part), "missing {part}\nin {out}");
    }

    let server = string_of(&Envelope::new(
        CwmpVersion::V1_2,
        Body::Fault(Fault::new(FaultCode::MethodNotSupported)),
    ));
    assert!(server.contains("<faultcode>Server</faultcode>"), "{server}");

    let gpn = string_of(&Envelope::new(
        CwmpVersion::V1_4,
        Body::GetParameterNames(GetParameterNames {
            parameter_path: String::new(),
            next_level: false,
        }),
    ));
    assert!(
        gpn.ends_with(concat!(
            r#"<soapenv:Body><cwmp:GetParameterNames><ParameterPath></ParameterPath><NextLevel>0</NextLevel>"#,
            r#"</cwmp:GetParameterNames></soapenv:Body></soapenv:Envelope>"#
        )),
        "{gpn}"
    );
    assert!(
        !gpn.contains("Header"),
        "no header fields, no Header: {gpn}"
    );

    let gpv = string_of(&Envelope::new(
        CwmpVersion::V1_0,
        Body::GetParameterValues(GetParameterValues {
            parameter_names: vec!["Device.".into(), "Device.DeviceInfo.UpTime".into()],
        }),
    ));
    assert!(
        gpv.contains(concat!(
            r#"<ParameterNames soapenc:arrayType="xsd:string[2]"><string>Device.</string>"#,
            r#"<string>Device.DeviceInfo.UpTime</string></ParameterNames>"#
        )),
        "{gpv}"
    );

    let empty = string_of(&Envelope::new(CwmpVersion::V1_0, Body::Empty));
    assert!(
        empty.ends_with("<soapenv:Body></soapenv:Body></soapenv:Envelope>"),
        "{empty}"
    );
}

#[test]
fn encoder_replaces_what_xml_cannot_carry() {
    let env = Envelope::new(
        CwmpVersion::V1_0,
        Body::Unknown {
            name: "Bad Name<".into(),
        },
    )
    .with_id("a\u{0}b");
    let out = string_of(&env);
    assert!(out.contains("<cwmp:Bad_Name_></cwmp:Bad_Name_>"), "{out}");
    let back = dec(&out);
    assert_eq!(back.id.as_deref(), Some("a\u{FFFD}b"));
    assert_eq!(
        back.body,
        Body::Unknown {
            name: "Bad_Name_".into()
        }
    );
}

// ---------------------------------------------------------------------------------------
// Errors

#[test]
fn empty_inputs() {
    assert!(is_empty_post(b""));
    assert!(is_empty_post(b" \r\n\t"));
    assert!(!is_empty_post(b"<a/>"));
    assert!(matches!(dec_err(""), DecodeError::Empty));
    assert!(matches!(dec_err("\r\n"), DecodeError::Empty));
    assert!(matches!(dec_err("\u{FEFF}"), DecodeError::Empty));
    assert!(matches!(
        dec_err("<?xml version='1.0'?><!-- nothing -->"),
        DecodeError::Empty
    ));
}

#[test]
fn size_limit_is_checked_before_parsing() {
    let xml = get("icwmp_inform");
    let limits = Limits {
        max_bytes: xml.len() - 1,
        ..Limits::default()
    };
    // Even garbage of that size is rejected for its size, not its content.
    let garbage = vec![0xFF; xml.len()];
    for input in [xml.as_bytes(), &garbage] {
        match decode(input, &limits) {
            Err(DecodeError::TooLarge { len, limit }) => {
                assert_eq!((len, limit), (xml.len(), xml.len() - 1))
            }
            other => panic!("expected TooLarge, got {other:?}"),
        }
    }
    let limits = Limits {
        max_bytes: xml.len(),
        ..Limits::default()
    };
    assert!(decode(xml.as_bytes(), &limits).is_ok());
}

#[test]
fn structure_limits() {
    let xml = get("icwmp_inform");
    let tight = |f: fn(&mut Limits)| {
        let mut limits = Limits::default();
        f(&mut limits);
        decode(xml.as_bytes(), &limits)
    };
    assert!(matches!(
        tight(|l| l.max_depth = 5),
        Err(DecodeError::TooDeep { limit: 5 })
    ));
    assert!(tight(|l| l.max_depth = 6).is_ok(), "Inform nests 6 deep");
    assert!(matches!(
        tight(|l| l.max_list_entries = 5),
        Err(DecodeError::TooManyEntries { limit: 5 })
    ));
    assert!(tight(|l| l.max_list_entries = 6).is_ok());
    assert!(matches!(
        tight(|l| l.max_elements = 30),
        Err(DecodeError::TooManyElements { limit: 30 })
    ));

    // A deeply nested bomb is stopped at the limit, not by the stack.
    let bomb = format!("<Envelope>{}", "<a>".repeat(100_000));
    assert!(matches!(dec_err(bomb), DecodeError::TooDeep { limit: 32 }));
    let wide = format!(
        "<Envelope><Body>{}</Body></Envelope>",
        "<a/>".repeat(10_000)
    );
    assert!(matches!(
        dec_err(wide),
        DecodeError::TooManyEntries { limit: 8192 }
    ));
}

#[test]
fn invalid_utf8_is_rejected() {
    let mut bytes = get("genieacs_spv").as_bytes().to_vec();
    let at = bytes.len() / 2;
    bytes[at] = 0xC3; // a lone lead byte
    bytes[at + 1] = b'(';
    assert!(matches!(dec_err(&bytes), DecodeError::InvalidUtf8(_)));
    // UTF-16 with a BOM is not UTF-8.
    let utf16: Vec<u8> = "\u{FEFF}<Envelope/>"
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    assert!(matches!(dec_err(&utf16), DecodeError::InvalidUtf8(_)));
}

#[test]
fn doctype_and_entities_are_rejected() {
    let billion_laughs = r#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">]>
        <Envelope><Body><Reboot><CommandKey>&lol2;</CommandKey></Reboot></Body></Envelope>"#;
    assert!(matches!(dec_err(billion_laughs), DecodeError::Doctype));
    let xxe = r#"<!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><Envelope><Body>&xxe;</Body></Envelope>"#;
    assert!(matches!(dec_err(xxe), DecodeError::Doctype));
    assert!(matches!(
        dec_err("<Envelope><Body><Reboot><CommandKey>&nbsp;</CommandKey></Reboot></Body></Envelope>"),
        DecodeError::UnknownEntity(name) if name == "nbsp"
    ));
    assert!(matches!(
        dec_err(
            "<Envelope><Body><Reboot><CommandKey>&#x1B;</CommandKey></Reboot></Body></Envelope>"
        ),
        DecodeError::IllegalChar(0x1B)
    ));
}

#[test]
fn malformed_xml_is_rejected() {
    for xml in [
        "<Envelope><Body></Envelope>",
        "<Envelope><Body><a></b></Body></Envelope>",
        "<Envelope",
        "<Envelope><Body><Reboot a=b/></Body></Envelope>",
        "<Envelope><Body>a & b</Body></Envelope>",
        "<Envelope></Body>",
        "</Envelope>",
    ] {
        match decode(xml.as_bytes(), &Limits::default()) {
            Err(DecodeError::Xml { .. }) => {}
            other => panic!("{xml}: expected Xml error, got {other:?}"),
        }
    }
    let err = dec_err("<Envelope><Body><a></b></Body></Envelope>");
    let DecodeError::Xml { position, .. } = &err else {
        panic!("{err:?}")
    };
    assert!(*position > 0);
    assert!(
        std::error::Error::source(&err).is_some(),
        "keeps the parser's error"
    );
}

#[test]
fn every_truncation_is_an_error() {
    for (name, xml) in FIXTURES {
        let end = xml.rfind('>').map_or(0, |i| i + 1);
        for cut in 0..end {
            if decode(&xml.as_bytes()[..cut], &Limits::default()).is_ok() {
                panic!("{name}: prefix of {cut} bytes decoded");
            }
        }
        assert!(
            decode(&xml.as_bytes()[..end], &Limits::default()).is_ok(),
            "{name}"
        );
    }
    assert!(matches!(
        dec_err("<Envelope><Body>"),
        DecodeError::Truncated
    ));
}

#[test]
fn not_an_envelope() {
    assert!(matches!(dec_err("<html><body/></html>"), DecodeError::NotEnvelope(n) if n == "html"));
    assert!(matches!(dec_err("HTTP/1.1 200 OK"), DecodeError::NotXml));
    assert!(matches!(
        dec_err("<Envelope><Header/></Envelope>"),
        DecodeError::MissingBody
    ));
    assert!(matches!(dec_err("<Envelope/>"), DecodeError::MissingBody));
}

#[test]
fn unsupported_namespace() {
    let err = dec_err(
        r#"<Envelope xmlns:c="urn:dslforum-org:cwmp-1-5"><Header><c:ID>x1</c:ID></Header>
           <Body><c:GetRPCMethods/></Body></Envelope>"#,
    );
    match err {
        DecodeError::UnsupportedNamespace { uri, id } => {
            assert_eq!(uri, "urn:dslforum-org:cwmp-1-5");
            assert_eq!(id.as_deref(), Some("x1"));
        }
        other => panic!("{other:?}"),
    }
    // A non-CWMP namespace on the method is tolerated.
    let env = dec(r#"<Envelope><Body><v:GetRPCMethods xmlns:v="urn:vendor"/></Body></Envelope>"#);
    assert_eq!(env.body, Body::GetRpcMethods);
}

#[test]
fn invalid_headers() {
    let err =
        dec_err("<Envelope><Header><HoldRequests>maybe</HoldRequests></Header><Body/></Envelope>");
    assert!(
        matches!(err, DecodeError::InvalidHeader { header: "HoldRequests", value } if value == "maybe")
    );
    let err =
        dec_err("<Envelope><Header><SessionTimeout>-1</SessionTimeout></Header><Body/></Envelope>");
    assert!(matches!(
        err,
        DecodeError::InvalidHeader {
            header: "SessionTimeout",
            ..
        }
    ));
    let env =
        dec("<Envelope><Header><HoldRequests> false </HoldRequests></Header><Body/></Envelope>");
    assert!(!env.hold_requests);
}

/// Decodes `<Body>{method}</Body>` and returns the argument error.
fn arg_err(method: &str) -> (String, Option<String>, ArgumentError) {
    let xml = format!(
        r#"<Envelope xmlns:cwmp="urn:dslforum-org:cwmp-1-2"><Header><cwmp:ID>req-9</cwmp:ID></Header><Body>{method}</Body></Envelope>"#
    );
    match dec_err(&xml) {
        DecodeError::InvalidArguments {
            method,
            id,
            ns,
            source,
        } => {
            assert_eq!(ns, CwmpVersion::V1_2);
            (method, id, source)
        }
        other => panic!("{xml}: expected InvalidArguments, got {other:?}"),
    }
}

#[test]
fn invalid_arguments_carry_the_request_id() {
    let (method, id, source) =
        arg_err("<cwmp:GetParameterNames><NextLevel>1</NextLevel></cwmp:GetParameterNames>");
    assert_eq!(
        (method.as_str(), id.as_deref()),
        ("GetParameterNames", Some("req-9"))
    );
    assert_eq!(
        source,
        ArgumentError::Missing {
            element: "ParameterPath"
        }
    );

    let missing = [
        (
            "<cwmp:GetParameterNames><ParameterPath/></cwmp:GetParameterNames>",
            "NextLevel",
        ),
        ("<cwmp:GetParameterValues/>", "ParameterNames"),
        ("<cwmp:GetParameterAttributes/>", "ParameterNames"),
        (
            "<cwmp:SetParameterValues><ParameterKey/></cwmp:SetParameterValues>",
            "ParameterList",
        ),
        (
            "<cwmp:SetParameterValues><ParameterList><P><Value>1</Value></P></ParameterList></cwmp:SetParameterValues>",
            "Name",
        ),
        (
            "<cwmp:SetParameterValues><ParameterList><P><Name>A</Name></P></ParameterList></cwmp:SetParameterValues>",
            "Value",
        ),
        ("<cwmp:SetParameterAttributes/>", "ParameterList"),
        (
            "<cwmp:SetParameterAttributes><ParameterList><S/></ParameterList></cwmp:SetParameterAttributes>",
            "Name",
        ),
        ("<cwmp:AddObject/>", "ObjectName"),
        ("<cwmp:DeleteObject/>", "ObjectName"),
        (
            "<cwmp:AddObjectResponse><Status>0</Status></cwmp:AddObjectResponse>",
            "InstanceNumber",
        ),
        ("<cwmp:DeleteObjectResponse/>", "Status"),
        ("<cwmp:SetParameterValuesResponse/>", "Status"),
        ("<cwmp:ScheduleInform/>", "DelaySeconds"),
        (
            "<cwmp:Download><URL>http://x/</URL></cwmp:Download>",
            "FileType",
        ),
        (
            "<cwmp:Download><FileType>1 Firmware Upgrade Image</FileType></cwmp:Download>",
            "URL",
        ),
        ("<cwmp:DownloadResponse/>", "Status"),
        ("<cwmp:Inform/>", "DeviceId"),
        ("<Fault><faultcode>Client</faultcode></Fault>", "detail"),
        ("<Fault><detail><cwmp:Fault/></detail></Fault>", "FaultCode"),
        (
            "<Fault><detail><cwmp:Fault><FaultCode>9003</FaultCode><SetParameterValuesFault/></cwmp:Fault></detail></Fault>",
            "FaultCode",
        ),
    ];
    for (xml, element) in missing {
        let (_, _, source) = arg_err(xml);
        assert_eq!(source, ArgumentError::Missing { element }, "{xml}");
    }

    let invalid = [
        (
            "<cwmp:GetParameterNames><ParameterPath/><NextLevel>yes</NextLevel></cwmp:GetParameterNames>",
            "NextLevel",
            "boolean",
        ),
        (
            "<cwmp:ScheduleInform><DelaySeconds>-5</DelaySeconds></cwmp:ScheduleInform>",
            "DelaySeconds",
            "unsignedInt",
        ),
        (
            "<cwmp:ScheduleInform><DelaySeconds>4294967296</DelaySeconds></cwmp:ScheduleInform>",
            "DelaySeconds",
            "unsignedInt",
        ),
        (
            "<cwmp:AddObjectResponse><InstanceNumber>1</InstanceNumber><Status>2</Status></cwmp:AddObjectResponse>",
            "Status",
            "0 or 1",
        ),
        (
            "<cwmp:InformResponse><MaxEnvelopes>many</MaxEnvelopes></cwmp:InformResponse>",
            "MaxEnvelopes",
            "unsignedInt",
        ),
        (
            "<cwmp:SetParameterAttributes><ParameterList><S><Name>A</Name><Notification>7</Notification></S></ParameterList></cwmp:SetParameterAttributes>",
            "Notification",
            "0..6",
        ),
        (
            "<cwmp:GetParameterNamesResponse><ParameterList><I><Name>A</Name><Writable>x</Writable></I></ParameterList></cwmp:GetParameterNamesResponse>",
            "Writable",
            "boolean",
        ),
        (
            "<Fault><detail><cwmp:Fault><FaultCode>90O3</FaultCode></cwmp:Fault></detail></Fault>",
            "FaultCode",
            "unsignedInt",
        ),
        (
            "<cwmp:TransferComplete><FaultStruct><FaultCode>x</FaultCode></FaultStruct></cwmp:TransferComplete>",
            "FaultCode",
            "unsignedInt",
        ),
    ];
    for (xml, element, expected) in invalid {
        let (_, _, source) = arg_err(xml);
        match source {
            ArgumentError::Invalid {
                element: e,
                expected: x,
                ..
            } => assert_eq!((e, x), (element, expected), "{xml}"),
            other => panic!("{xml}: {other:?}"),
        }
    }

    // The offending value is cut for the message.
    let long = "9".repeat(200);
    let (_, _, source) = arg_err(&format!(
        "<cwmp:ScheduleInform><DelaySeconds>{long}</DelaySeconds></cwmp:ScheduleInform>"
    ));
    let ArgumentError::Invalid { value, .. } = &source else {
        panic!("{source:?}")
    };
    assert_eq!(value.len(), 64);
    assert_eq!(
        source.to_string(),
        format!(
            "<DelaySeconds> is \"{}\", expected unsignedInt",
            &long[..64]
        )
    );
}

#[test]
fn errors_have_messages() {
    let err = dec_err("<Envelope><Body><cwmp:AddObject/></Body></Envelope>");
    assert_eq!(err.to_string(), "invalid arguments in AddObject");
    assert_eq!(
        std::error::Error::source(&err)
            .map(ToString::to_string)
            .as_deref(),
        Some("missing element <ObjectName>")
    );
    assert_eq!(
        dec_err(vec![b'x'; 10]).to_string(),
        "input is not an XML document"
    );
    assert_eq!(
        dec_err("<a/>").to_string(),
        "root element <a> is not a SOAP Envelope"
    );
}
