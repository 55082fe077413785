//! Scripted sessions against fixtures in the styles of real ACSs: GenieACS (compact,
//! `soap-env`, cwmp-1-0) and Axiros (pretty-printed, `SOAP-ENV`, cwmp-1-2, HoldRequests).

use super::*;
use crate::model::{NoBackend, PathRef, Value};
use crate::soap::{
    EventCode, Notification, ParameterValue, SetParameterValuesResponse, TransferFault, ValueType,
};

macro_rules! fixture {
    ($name:literal) => {
        include_bytes!(concat!("fixtures/", $name, ".xml")).as_slice()
    };
}

/// Serves the BRG's live parameters.
#[derive(Debug, Default)]
struct Live;

impl Backend for Live {
    fn read(&self, param: PathRef<'_>) -> Result<Value, Fault> {
        match param.schema_path {
            "Device.DeviceInfo.UpTime" => Ok(Value::Unsigned(3600)),
            _ => Ok(Value::Unsigned(0)),
        }
    }
}

fn model() -> Model<Live> {
    let mut m = Model::new(crate::tr181::brg().expect("schema"), Live);
    for (name, value) in [
        ("Manufacturer", "NERG"),
        ("ManufacturerOUI", "00D0F1"),
        ("ProductClass", "BRG"),
        ("SerialNumber", "SN-0001"),
        ("HardwareVersion", "hw1"),
        ("SoftwareVersion", "1.0.0"),
    ] {
        m.set(&format!("Device.DeviceInfo.{name}"), value)
            .expect("device info");
    }
    m.set(
        "Device.ManagementServer.ConnectionRequestURL",
        "http://192.0.2.10:7547/abc",
    )
    .expect("cr url");
    // Setting it was a local change under its default active notification: deliver it.
    let mut q = EventQueue::new();
    let (mut s, _) = Session::start(&SessionConfig::default(), &m, &q, 0, 0);
    let _ = s.receive(fixture!("genieacs_inform_response"), &mut m, &mut q);
    assert!(!m.has_value_changes());
    m
}

fn boot_queue() -> EventQueue {
    let mut q = EventQueue::new();
    q.push(Event::new(EventCode::Bootstrap));
    q.booted();
    q
}

fn decode(bytes: &[u8]) -> Envelope {
    soap::decode(bytes, &Limits::default()).unwrap_or_else(|e| {
        panic!(
            "CPE output must decode: {e}\n{}",
            String::from_utf8_lossy(bytes)
        )
    })
}

/// The envelope of a POST step.
fn posted(step: Step) -> Envelope {
    match step {
        Step::Post(bytes) if !bytes.is_empty() => decode(&bytes),
        other => panic!("expected a POST with an envelope, got {other:?}"),
    }
}

fn assert_empty_post(step: Step) {
    assert_eq!(step, Step::Post(Vec::new()), "expected the empty POST");
}

fn fault_of(env: &Envelope) -> &Fault {
    match &env.body {
        Body::Fault(f) => f,
        other => panic!("expected a fault, got {other:?}"),
    }
}

fn transfer(key: &str) -> TransferComplete {
    TransferComplete {
        command_key: key.to_owned(),
        fault: None,
        start_time: "2024-05-01T10:00:00Z".into(),
        complete_time: "2024-05-01T10:02:00Z".into(),
    }
}

#[test]
fn genieacs_discovery_and_provisioning_session() {
    let mut m = model();
    let mut q = boot_queue();
    let now = 1_714_557_600; // 2024-05-01T10:00:00Z
    let (mut s, inform) = Session::start(&SessionConfig::default(), &m, &q, now, 0);

    // The Inform.
    let env = decode(&inform);
    assert_eq!(env.ns, CwmpVersion::V1_2);
    assert!(env.id.is_some());
    let Body::Inform(inform) = env.body else {
        panic!("not an Inform")
    };
    assert_eq!(
        inform.device_id,
        DeviceId {
            manufacturer: "NERG".into(),
            oui: "00D0F1".into(),
            product_class: "BRG".into(),
            serial_number: "SN-0001".into(),
        }
    );
    let codes: Vec<&str> = inform.events.iter().map(|e| e.code.as_str()).collect();
    assert_eq!(codes, ["0 BOOTSTRAP", "1 BOOT"]);
    assert_eq!(inform.max_envelopes, 1);
    assert_eq!(inform.retry_count, 0);
    assert_eq!(inform.current_time, "2024-05-01T10:00:00Z");
    let params: Vec<(&str, &str)> = inform
        .parameter_list
        .iter()
        .map(|p| (p.name.as_str(), p.value.as_str()))
        .collect();
    assert_eq!(
        params,
        [
            ("Device.RootDataModelVersion", "2.19"),
            ("Device.DeviceInfo.HardwareVersion", "hw1"),
            ("Device.DeviceInfo.SoftwareVersion", "1.0.0"),
            ("Device.DeviceInfo.ProvisioningCode", ""),
            ("Device.ManagementServer.ParameterKey", ""),
            (
                "Device.ManagementServer.ConnectionRequestURL",
                "http://192.0.2.10:7547/abc"
            ),
            ("Device.ManagementServer.AliasBasedAddressing", "false"),
        ]
    );

    // InformResponse in cwmp-1-0: events delivered, then the empty POST.
    assert_empty_post(s.receive(fixture!("genieacs_inform_response"), &mut m, &mut q));
    assert!(q.is_empty());

    // GetParameterNames "" NextLevel=false: the whole tree, answered in cwmp-1-0 with the ID.
    let env = posted(s.receive(fixture!("genieacs_gpn_root"), &mut m, &mut q));
    assert_eq!(env.ns, CwmpVersion::V1_0);
    assert_eq!(env.id.as_deref(), Some("lnb2ynhc"));
    let Body::GetParameterNamesResponse(gpn) = env.body else {
        panic!("not a GPN response")
    };
    assert_eq!(gpn.parameter_list[0].name, "Device.");
    assert!(
        gpn.parameter_list
            .iter()
            .any(|p| p.name == "Device.Bridging.Bridge." && p.writable)
    );
    assert!(gpn.parameter_list.len() > 50);

    // GetParameterValues with a partial path.
    let env = posted(s.receive(fixture!("genieacs_gpv"), &mut m, &mut q));
    assert_eq!(env.id.as_deref(), Some("lnb2ynhd"));
    let Body::GetParameterValuesResponse(gpv) = env.body else {
        panic!("not a GPV response")
    };
    let uptime = gpv
        .parameter_list
        .iter()
        .find(|p| p.name == "Device.DeviceInfo.UpTime")
        .expect("uptime");
    assert_eq!(
        uptime,
        &ParameterValue::new("Device.DeviceInfo.UpTime", "3600", ValueType::UnsignedInt)
    );
    assert_eq!(
        gpv.parameter_list.last(),
        Some(&ParameterValue::new(
            "Device.Bridging.BridgeNumberOfEntries",
            "0",
            ValueType::UnsignedInt
        ))
    );

    // SetParameterValues with a ParameterKey (GenieACS's default "inform" provision).
    let env = posted(s.receive(fixture!("genieacs_spv"), &mut m, &mut q));
    assert_eq!(
        env.body,
        Body::SetParameterValuesResponse(SetParameterValuesResponse {
            status: Status::Applied
        })
    );
    assert_eq!(m.parameter_key(), "inform-provision");
    assert_eq!(
        m.get("Device.ManagementServer.ConnectionRequestPassword"),
        Ok(Value::Text("s3cr&t".into()))
    );

    // AddObject, then configure the new instance, then DeleteObject.
    let env = posted(s.receive(fixture!("genieacs_add_object"), &mut m, &mut q));
    assert_eq!(
        env.body,
        Body::AddObjectResponse(AddObjectResponse {
            instance_number: 1,
            status: Status::Applied
        })
    );
    let env = posted(s.receive(fixture!("genieacs_spv_new_bridge"), &mut m, &mut q));
    assert!(matches!(env.body, Body::SetParameterValuesResponse(_)));
    assert_eq!(
        m.get("Device.Bridging.Bridge.1.Enable"),
        Ok(Value::Bool(true))
    );
    let env = posted(s.receive(fixture!("genieacs_delete_object"), &mut m, &mut q));
    assert_eq!(
        env.body,
        Body::DeleteObjectResponse(DeleteObjectResponse {
            status: Status::Applied
        })
    );
    assert_eq!(m.parameter_key(), "del-bridge");

    // 204: done.
    assert_eq!(s.receive(b"", &mut m, &mut q), Step::Done);
    assert!(s.is_ended());
    assert!(s.take_actions().is_empty());
    assert_eq!(
        s.receive(b"", &mut m, &mut q),
        Step::Failed(SessionError::Ended)
    );
}

#[test]
fn faults_are_answered_and_the_session_goes_on() {
    let mut m = model();
    let mut q = boot_queue();
    let (mut s, _) = Session::start(&SessionConfig::default(), &m, &q, 0, 0);
    assert_empty_post(s.receive(fixture!("genieacs_inform_response"), &mut m, &mut q));
    m.set_parameter_values(&[], "before").expect("key");

    let env = posted(s.receive(fixture!("genieacs_spv_faults"), &mut m, &mut q));
    assert_eq!(env.id.as_deref(), Some("lnb2ynhi"));
    let fault = fault_of(&env);
    assert_eq!(fault.code, FaultCode::InvalidArguments);
    let codes: Vec<(&str, u32)> = fault
        .set_parameter_values_faults
        .iter()
        .map(|f| (f.parameter_name.as_str(), f.code.code()))
        .collect();
    assert_eq!(
        codes,
        [
            ("Device.ManagementServer.PeriodicInformInterval", 9007),
            ("Device.DeviceInfo.SerialNumber", 9008),
            ("Device.ManagementServer.PeriodicInformEnable", 9006),
            ("Device.X_ACME_Nope", 9005),
        ]
    );
    assert_eq!(m.parameter_key(), "before");

    let env = posted(s.receive(fixture!("acs_upload_unsupported"), &mut m, &mut q));
    assert_eq!(env.id.as_deref(), Some("up-1"));
    assert_eq!(fault_of(&env).code, FaultCode::MethodNotSupported);

    let env = posted(s.receive(fixture!("acs_gpn_missing_next_level"), &mut m, &mut q));
    assert_eq!(
        env.id.as_deref(),
        Some("bad-1"),
        "9003 keeps the request's ID"
    );
    assert_eq!(env.ns, CwmpVersion::V1_0);
    assert_eq!(fault_of(&env).code, FaultCode::InvalidArguments);

    let gpn_unknown = acs_request(
        CwmpVersion::V1_0,
        "u",
        "<cwmp:GetParameterNames><ParameterPath>Device.Nope.</ParameterPath><NextLevel>1</NextLevel></cwmp:GetParameterNames>",
    );
    let env = posted(s.receive(&gpn_unknown, &mut m, &mut q));
    assert_eq!(fault_of(&env).code, FaultCode::InvalidParameterName);

    let zero_delay = acs_request(
        CwmpVersion::V1_0,
        "z",
        "<cwmp:ScheduleInform><DelaySeconds>0</DelaySeconds><CommandKey>k</CommandKey></cwmp:ScheduleInform>",
    );
    assert_eq!(
        fault_of(&posted(s.receive(&zero_delay, &mut m, &mut q))).code,
        FaultCode::InvalidArguments
    );

    let ftp = String::from_utf8_lossy(fixture!("genieacs_download"))
        .replace("http://acs.example:7567", "ftp://files.example");
    assert_eq!(
        fault_of(&posted(s.receive(ftp.as_bytes(), &mut m, &mut q))).code,
        FaultCode::UnsupportedTransferProtocol
    );
    let web = String::from_utf8_lossy(fixture!("genieacs_download"))
        .replace("1 Firmware Upgrade Image", "2 Web Content");
    assert_eq!(
        fault_of(&posted(s.receive(web.as_bytes(), &mut m, &mut q))).code,
        FaultCode::InvalidArguments
    );
    assert!(
        s.take_actions().is_empty(),
        "refused requests leave no action"
    );

    // A response-type message the CPE does not expect is a fault too, not the end.
    let stray = acs_request(CwmpVersion::V1_0, "x", "<cwmp:X_ACME_PingResponse/>");
    assert_eq!(
        fault_of(&posted(s.receive(&stray, &mut m, &mut q))).code,
        FaultCode::MethodNotSupported
    );
    assert_eq!(s.receive(b"", &mut m, &mut q), Step::Done);
}

/// An ACS request envelope in the GenieACS style.
fn acs_request(ns: CwmpVersion, id: &str, body: &str) -> Vec<u8> {
    format!(
        r#"<soap-env:Envelope xmlns:soap-env="http://schemas.xmlsoap.org/soap/envelope/" xmlns:soap-enc="http://schemas.xmlsoap.org/soap/encoding/" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:cwmp="{}"><soap-env:Header><cwmp:ID soap-env:mustUnderstand="1">{id}</cwmp:ID></soap-env:Header><soap-env:Body>{body}</soap-env:Body></soap-env:Envelope>"#,
        ns.uri()
    )
    .into_bytes()
}

#[test]
fn answers_follow_each_request_namespace() {
    let mut m = model();
    let mut q = boot_queue();
    let config = SessionConfig {
        ns: CwmpVersion::V1_0,
        ..SessionConfig::default()
    };
    let (mut s, inform) = Session::start(&config, &m, &q, 0, 0);
    assert_eq!(
        decode(&inform).ns,
        CwmpVersion::V1_0,
        "configured Inform namespace"
    );
    assert_empty_post(s.receive(fixture!("genieacs_inform_response"), &mut m, &mut q));
    for ns in CwmpVersion::ALL {
        let request = acs_request(ns, &format!("id-{ns}"), "<cwmp:GetRPCMethods/>");
        let env = posted(s.receive(&request, &mut m, &mut q));
        assert_eq!(env.ns, ns);
        assert_eq!(env.id, Some(format!("id-{ns}")));
        let Body::GetRpcMethodsResponse(r) = env.body else {
            panic!("not a GetRPCMethodsResponse")
        };
        assert_eq!(r.method_list.len(), SUPPORTED_METHODS.len());
        assert!(r.method_list.iter().any(|m| m == "GetParameterNames"));
    }
    // A request without cwmp:ID is answered without one.
    let no_id = br#"<Envelope xmlns:cwmp="urn:dslforum-org:cwmp-1-2"><Body><cwmp:GetRPCMethods/></Body></Envelope>"#;
    let env = posted(s.receive(no_id, &mut m, &mut q));
    assert_eq!((env.id, env.ns), (None, CwmpVersion::V1_2));
    assert_eq!(
        s.receive(b"  \r\n", &mut m, &mut q),
        Step::Done,
        "whitespace is empty"
    );
}

#[test]
fn inform_fault_8005_fails_and_keeps_everything_for_the_retry() {
    let mut m = model();
    let mut q = boot_queue();
    m.set_parameter_attributes(&[crate::soap::SetParameterAttribute {
        name: "Device.DeviceInfo.SoftwareVersion".into(),
        notification_change: true,
        notification: Notification::Active,
        access_list_change: false,
        access_list: Vec::new(),
    }])
    .expect("spa");
    m.set("Device.DeviceInfo.SoftwareVersion", "1.0.1")
        .expect("upgrade");
    let (mut s, _) = Session::start(&SessionConfig::default(), &m, &q, 0, 0);
    let step = s.receive(fixture!("acs_inform_fault_8005"), &mut m, &mut q);
    let Step::Failed(SessionError::AcsFault(fault)) = step else {
        panic!("expected the ACS fault, got {step:?}")
    };
    assert_eq!(fault.code, FaultCode::AcsRetryRequest);
    assert_eq!(q.events().len(), 2, "events kept");
    assert!(m.has_active_changes(), "value change kept");

    // The retry carries the retry count and the same events, plus the value change.
    let policy = RetryPolicy::from_model(&m);
    assert_eq!(policy, RetryPolicy::default());
    assert!(policy.wait_range(1).contains(&policy.wait(1, 7)));
    let (mut s, inform) = Session::start(&SessionConfig::default(), &m, &q, 0, 1);
    let Body::Inform(inform) = decode(&inform).body else {
        panic!("not an Inform")
    };
    assert_eq!(inform.retry_count, 1);
    let codes: Vec<&str> = inform.events.iter().map(|e| e.code.as_str()).collect();
    assert_eq!(codes, ["0 BOOTSTRAP", "1 BOOT", "4 VALUE CHANGE"]);
    assert_empty_post(s.receive(fixture!("genieacs_inform_response"), &mut m, &mut q));
    assert!(q.is_empty() && !m.has_value_changes());
}

#[test]
fn transfer_complete_after_download() {
    let mut m = model();
    let mut q = EventQueue::new();
    q.booted();
    q.push(Event {
        code: EventCode::MReboot,
        command_key: "fw-reboot".into(),
    });
    q.transfer_complete(transfer("fw-2.0"));
    let (mut s, inform) = Session::start(&SessionConfig::default(), &m, &q, 0, 0);
    let Body::Inform(inform) = decode(&inform).body else {
        panic!("not an Inform")
    };
    let events: Vec<String> = inform
        .events
        .iter()
        .map(|e| format!("{}|{}", e.code, e.command_key))
        .collect();
    assert_eq!(
        events,
        [
            "1 BOOT|",
            "7 TRANSFER COMPLETE|",
            "M Reboot|fw-reboot",
            "M Download|fw-2.0"
        ]
    );
    // InformResponse in cwmp-1-0: the TransferComplete follows, in the ACS's namespace.
    let env = posted(s.receive(fixture!("genieacs_inform_response"), &mut m, &mut q));
    assert_eq!(env.ns, CwmpVersion::V1_0);
    assert_eq!(env.body, Body::TransferComplete(transfer("fw-2.0")));
    assert!(q.events().is_empty(), "events delivered");
    assert_eq!(
        q.transfers().len(),
        1,
        "the message waits for its own response"
    );
    assert_empty_post(s.receive(
        fixture!("axiros_transfer_complete_response"),
        &mut m,
        &mut q,
    ));
    assert!(q.is_empty());
    assert_eq!(s.receive(b"", &mut m, &mut q), Step::Done);
}

#[test]
fn hold_requests_defers_cpe_requests_until_the_acs_is_done() {
    let mut m = model();
    let mut q = EventQueue::new();
    q.transfer_complete(transfer("fw-a"));
    let (mut s, _) = Session::start(&SessionConfig::default(), &m, &q, 0, 0);
    // HoldRequests on the InformResponse: no TransferComplete yet.
    assert_empty_post(s.receive(fixture!("axiros_inform_response_hold"), &mut m, &mut q));
    let env = posted(s.receive(fixture!("axiros_gpv_hold"), &mut m, &mut q));
    assert_eq!(
        (env.id.as_deref(), env.ns),
        (Some("ax-7"), CwmpVersion::V1_2)
    );
    assert!(matches!(env.body, Body::GetParameterValuesResponse(_)));
    // A request without HoldRequests lifts the hold for the next CPE message, but the CPE
    // must answer it first.
    let env = posted(s.receive(fixture!("axiros_schedule_inform"), &mut m, &mut q));
    assert_eq!(env.body, Body::ScheduleInformResponse);
    assert_eq!(
        s.take_actions(),
        [Action::ScheduleInform {
            delay_seconds: 600,
            command_key: "later".into()
        }]
    );
    // The ACS is done: the held TransferComplete goes out now, and the session goes on.
    let env = posted(s.receive(b"", &mut m, &mut q));
    assert_eq!(env.body, Body::TransferComplete(transfer("fw-a")));
    assert_empty_post(s.receive(
        fixture!("axiros_transfer_complete_response"),
        &mut m,
        &mut q,
    ));
    assert_eq!(s.receive(b"", &mut m, &mut q), Step::Done);
    assert!(q.is_empty());
}

#[test]
fn transfer_complete_faults() {
    let mut m = model();
    let mut q = EventQueue::new();
    q.transfer_complete(transfer("a"));
    q.transfer_complete(TransferComplete {
        fault: Some(TransferFault {
            code: FaultCode::DownloadFailure,
            string: "HTTP 404".into(),
        }),
        ..transfer("b")
    });
    let (mut s, _) = Session::start(&SessionConfig::default(), &m, &q, 0, 0);
    let first = posted(s.receive(fixture!("genieacs_inform_response"), &mut m, &mut q));
    assert_eq!(first.body, Body::TransferComplete(transfer("a")));
    // 8005: resent, with a fresh ID, up to MAX_REQUEST_RETRIES times.
    let mut ids = vec![first.id];
    for _ in 0..MAX_REQUEST_RETRIES {
        let again = posted(s.receive(
            fixture!("axiros_transfer_complete_fault_8005"),
            &mut m,
            &mut q,
        ));
        assert_eq!(again.body, Body::TransferComplete(transfer("a")));
        ids.push(again.id);
    }
    ids.dedup();
    assert_eq!(ids.len(), 1 + MAX_REQUEST_RETRIES as usize);
    // Then the CPE gives up on it for this session and sends the next one.
    let next = posted(s.receive(
        fixture!("axiros_transfer_complete_fault_8005"),
        &mut m,
        &mut q,
    ));
    let Body::TransferComplete(b) = next.body else {
        panic!("expected the second TransferComplete")
    };
    assert_eq!(b.command_key, "b");
    assert_empty_post(s.receive(
        fixture!("axiros_transfer_complete_response"),
        &mut m,
        &mut q,
    ));
    assert_eq!(s.receive(b"", &mut m, &mut q), Step::Done);
    assert_eq!(
        q.transfers(),
        [transfer("a")],
        "refused one stays for the next session"
    );
}

#[test]
fn acs_request_instead_of_a_response_is_served_and_the_request_resent() {
    let mut m = model();
    let mut q = EventQueue::new();
    q.transfer_complete(transfer("x"));
    let (mut s, _) = Session::start(&SessionConfig::default(), &m, &q, 0, 0);
    let env = posted(s.receive(fixture!("genieacs_inform_response"), &mut m, &mut q));
    assert!(matches!(env.body, Body::TransferComplete(_)));
    let env = posted(s.receive(fixture!("genieacs_gpv"), &mut m, &mut q));
    assert!(matches!(env.body, Body::GetParameterValuesResponse(_)));
    let env = posted(s.receive(b"", &mut m, &mut q));
    assert!(matches!(env.body, Body::TransferComplete(_)), "resent");
    assert_empty_post(s.receive(
        fixture!("axiros_transfer_complete_response"),
        &mut m,
        &mut q,
    ));
    assert_eq!(s.receive(b"", &mut m, &mut q), Step::Done);
}

#[test]
fn reboot_factory_reset_and_download_become_actions() {
    let mut m = model();
    let mut q = EventQueue::new();
    let (mut s, _) = Session::start(&SessionConfig::default(), &m, &q, 0, 0);
    assert_empty_post(s.receive(fixture!("genieacs_inform_response"), &mut m, &mut q));
    let env = posted(s.receive(fixture!("genieacs_reboot"), &mut m, &mut q));
    assert_eq!(env.body, Body::RebootResponse);
    let env = posted(s.receive(fixture!("genieacs_download"), &mut m, &mut q));
    assert_eq!(
        env.body,
        Body::DownloadResponse(DownloadResponse {
            status: Status::Pending,
            start_time: crate::time::UNKNOWN_TIME.into(),
            complete_time: crate::time::UNKNOWN_TIME.into(),
        })
    );
    let env = posted(s.receive(fixture!("genieacs_factory_reset"), &mut m, &mut q));
    assert_eq!(env.body, Body::FactoryResetResponse);
    assert_eq!(s.receive(b"", &mut m, &mut q), Step::Done);
    let actions = s.take_actions();
    assert_eq!(actions.len(), 3);
    assert_eq!(
        actions[0],
        Action::Reboot {
            command_key: "reboot-42".into()
        }
    );
    let Action::Download(d) = &actions[1] else {
        panic!("expected the download")
    };
    assert_eq!((d.command_key.as_str(), d.file_size), ("fw-2.0", 1_048_576));
    assert_eq!(actions[2], Action::FactoryReset);
    // The application queues M Reboot before rebooting; after the boot the Inform has both.
    q.push(Event {
        code: EventCode::MReboot,
        command_key: "reboot-42".into(),
    });
    q.booted();
    let codes: Vec<String> = q
        .inform_events(false)
        .iter()
        .map(|e| format!("{} {}", e.code, e.command_key))
        .collect();
    assert_eq!(codes, ["1 BOOT ", "M Reboot reboot-42"]);
}

#[test]
fn value_changes_ride_the_inform_acs_changes_do_not() {
    let mut m = model();
    let mut q = EventQueue::new();
    let (mut s, _) = Session::start(&SessionConfig::default(), &m, &q, 0, 0);
    assert_empty_post(s.receive(fixture!("genieacs_inform_response"), &mut m, &mut q));
    let _ = posted(s.receive(fixture!("genieacs_add_object"), &mut m, &mut q));
    let env = posted(s.receive(fixture!("genieacs_spa"), &mut m, &mut q));
    assert_eq!(env.body, Body::SetParameterAttributesResponse);
    let _ = posted(s.receive(fixture!("genieacs_spv_new_bridge"), &mut m, &mut q));
    assert!(
        !m.has_value_changes(),
        "the ACS's own writes are not notified"
    );
    assert_eq!(s.receive(b"", &mut m, &mut q), Step::Done);

    // brgd applies the bridge and reports its status: active notification.
    m.set("Device.Bridging.Bridge.1.Status", "Enabled")
        .expect("status");
    assert!(m.has_active_changes());
    q.push(Event::new(EventCode::Periodic));
    let (mut s, inform) = Session::start(&SessionConfig::default(), &m, &q, 0, 0);
    let Body::Inform(inform) = decode(&inform).body else {
        panic!("not an Inform")
    };
    let codes: Vec<&str> = inform.events.iter().map(|e| e.code.as_str()).collect();
    assert_eq!(codes, ["2 PERIODIC", "4 VALUE CHANGE"]);
    assert!(inform.parameter_list.contains(&ParameterValue::new(
        "Device.Bridging.Bridge.1.Status",
        "Enabled",
        ValueType::String
    )));
    assert!(
        inform
            .parameter_list
            .iter()
            .any(|p| p.name == "Device.ManagementServer.ParameterKey" && p.value == "cfg-bridge")
    );
    assert_empty_post(s.receive(fixture!("genieacs_inform_response"), &mut m, &mut q));
    assert!(!m.has_value_changes() && q.is_empty());
}

#[test]
fn protocol_errors_fail_the_session() {
    let cases: Vec<(&str, Vec<Vec<u8>>, SessionError)> = vec![
        (
            "empty response to the Inform",
            vec![Vec::new()],
            SessionError::Unexpected {
                got: "empty response".into(),
                state: "waiting for InformResponse",
            },
        ),
        (
            "a request instead of InformResponse",
            vec![fixture!("genieacs_gpv").to_vec()],
            SessionError::Unexpected {
                got: "GetParameterValues".into(),
                state: "waiting for InformResponse",
            },
        ),
        (
            "garbage",
            vec![b"<html>502 Bad Gateway</html>".to_vec()],
            SessionError::Decode(DecodeError::Empty),
        ),
        (
            "a fault while serving",
            vec![
                fixture!("genieacs_inform_response").to_vec(),
                fixture!("acs_inform_fault_8005").to_vec(),
            ],
            SessionError::AcsFault(Fault::with_string(
                FaultCode::AcsRetryRequest,
                "Retry request",
            )),
        ),
        (
            "a second InformResponse",
            vec![
                fixture!("genieacs_inform_response").to_vec(),
                fixture!("genieacs_inform_response").to_vec(),
            ],
            SessionError::Unexpected {
                got: "InformResponse".into(),
                state: "serving ACS requests",
            },
        ),
    ];
    for (what, script, expected) in cases {
        let mut m = model();
        let mut q = boot_queue();
        let (mut s, _) = Session::start(&SessionConfig::default(), &m, &q, 0, 0);
        let mut last = None;
        for body in &script {
            last = Some(s.receive(body, &mut m, &mut q));
        }
        assert_eq!(last, Some(Step::Failed(expected)), "{what}");
        assert!(s.is_ended(), "{what}");
    }
    // Without a transfer pending, an empty response while waiting for one cannot happen;
    // with one, it is a failure and the transfer stays queued.
    let mut m = model();
    let mut q = EventQueue::new();
    q.transfer_complete(transfer("t"));
    let (mut s, _) = Session::start(&SessionConfig::default(), &m, &q, 0, 0);
    let _ = posted(s.receive(fixture!("genieacs_inform_response"), &mut m, &mut q));
    assert!(matches!(
        s.receive(b"", &mut m, &mut q),
        Step::Failed(SessionError::Unexpected { .. })
    ));
    assert_eq!(q.transfers().len(), 1);
}

#[test]
fn hostile_bodies_never_panic() {
    let mut m = Model::new(crate::tr181::brg().expect("schema"), NoBackend);
    let mut q = EventQueue::new();
    let deep = "<a>".repeat(10_000);
    let huge = vec![b'x'; 2 << 20];
    let bomb = r#"<!DOCTYPE x [<!ENTITY a "aaaa">]><Envelope><Body>&a;</Body></Envelope>"#;
    let bodies: Vec<&[u8]> = vec![
        deep.as_bytes(),
        &huge,
        bomb.as_bytes(),
        b"\xff\xfe",
        b"<Envelope><Body><cwmp:SetParameterValues xmlns:cwmp=\"urn:dslforum-org:cwmp-1-9\"/></Body></Envelope>",
        fixture!("genieacs_spv"),
    ];
    for body in bodies {
        let (mut s, _) = Session::start(&SessionConfig::default(), &m, &q, i64::MAX, u32::MAX);
        let _ = s.receive(fixture!("genieacs_inform_response"), &mut m, &mut q);
        let step = s.receive(body, &mut m, &mut q);
        assert!(matches!(step, Step::Post(_) | Step::Failed(_)));
    }
}

/// Issue 15: a request the CPE cannot decode is answered with a fault and the session goes
/// on; the second in a row ends it.
#[test]
fn undecodable_requests_are_answered_with_faults() {
    let mut m = model();
    let mut q = boot_queue();
    let (mut s, _) = Session::start(&SessionConfig::default(), &m, &q, 0, 0);
    assert_empty_post(s.receive(fixture!("genieacs_inform_response"), &mut m, &mut q));
    let deep = acs_request(
        CwmpVersion::V1_0,
        "d",
        &format!("{}{}", "<a>".repeat(100), "</a>".repeat(100)),
    );
    let huge = vec![b' '; (2 << 20) + 1];
    let bomb = r#"<!DOCTYPE x [<!ENTITY a "aaaa">]><Envelope><Body>&a;</Body></Envelope>"#;
    let cases: [(&[u8], FaultCode); 4] = [
        (b"<html>502 Bad Gateway</html>", FaultCode::InvalidArguments),
        (&deep, FaultCode::ResourcesExceeded),
        (&huge[1..], FaultCode::ResourcesExceeded),
        (bomb.as_bytes(), FaultCode::InvalidArguments),
    ];
    let huge_but_empty = posted(s.receive(&huge, &mut m, &mut q));
    assert_eq!(
        fault_of(&huge_but_empty).code,
        FaultCode::ResourcesExceeded,
        "whitespace over the limit is not an empty POST"
    );
    let _ = posted(s.receive(fixture!("genieacs_gpv"), &mut m, &mut q));
    for (body, code) in cases {
        let env = posted(s.receive(body, &mut m, &mut q));
        assert_eq!(env.id, None, "the request's ID is unknown");
        assert_eq!(env.ns, CwmpVersion::V1_0, "the session's namespace");
        let fault = fault_of(&env);
        assert_eq!(fault.code, code, "{fault:?}");
        assert!(
            fault.string.starts_with("undecodable request: "),
            "{fault:?}"
        );
        // A good request in between: the session goes on.
        let answer = posted(s.receive(fixture!("genieacs_gpv"), &mut m, &mut q));
        assert!(
            matches!(answer.body, Body::GetParameterValuesResponse(_)),
            "{answer:?}"
        );
    }
    let _ = posted(s.receive(b"<html>", &mut m, &mut q));
    assert!(matches!(
        s.receive(b"<html>", &mut m, &mut q),
        Step::Failed(SessionError::Decode(_))
    ));
    assert!(s.is_ended());
}
