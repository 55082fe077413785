//! Provisioning through the TR-181 model: bootstrap, discovery, SetParameterValues, notification, objects and their limits, persistence.

use super::*;

#[test]
fn bootstrap_inform_then_boot_on_restart() {
    let (acs, mut brgd, first) = setup("cwmp-boot", AcsConfig::default());
    assert_eq!(first.event_codes(), ["0 BOOTSTRAP", "1 BOOT"], "{first:?}");
    assert_eq!(first.inform.device_id.serial_number, "TEST0001");
    assert_eq!(first.inform.device_id.manufacturer, "NERG");
    for forced in [
        "Device.RootDataModelVersion",
        "Device.DeviceInfo.SoftwareVersion",
        "Device.DeviceInfo.HardwareVersion",
        "Device.ManagementServer.ParameterKey",
        "Device.ManagementServer.ConnectionRequestURL",
    ] {
        assert!(
            first.param(forced).is_some(),
            "{forced} not in the Inform: {first:?}"
        );
    }
    assert!(first.ended);
    assert_eq!(acs.missing_cookies(), 0);

    // SIGTERM-free restart (kill -9): the next start is a BOOT, not a BOOTSTRAP.
    brgd.kill9();
    brgd.start(&acs.url());
    let second = session(&acs, 2);
    assert_eq!(second.event_codes(), ["1 BOOT"], "{second:?}");
    assert_eq!(second.inform.retry_count, 0);
}

#[test]
fn discovery_with_empty_path_and_partial_path_values() {
    let acs = Acs::start(AcsConfig::default());
    acs.script(vec![
        rpc(Body::GetParameterNames(GetParameterNames {
            parameter_path: String::new(),
            next_level: false,
        })),
        rpc(Body::GetParameterNames(GetParameterNames {
            parameter_path: "Device.".into(),
            next_level: true,
        })),
        gpv(&["Device.ManagementServer."]),
        gpv(&["Device.DeviceInfo.SerialNumber", "Device.DeviceInfo.UpTime"]),
        gpv(&["Device.NoSuchThing."]),
    ]);
    let mut brgd = Brgd::new("cwmp-disc");
    brgd.start(&acs.url());
    let s = session(&acs, 1);
    assert_eq!(s.answers.len(), 5, "{s:?}");

    let Body::GetParameterNamesResponse(all) = &s.answers[0].body else {
        panic!("GPN answer: {:?}", s.answers[0])
    };
    let names: Vec<&str> = all.parameter_list.iter().map(|p| p.name.as_str()).collect();
    for expected in [
        "Device.",
        "Device.DeviceInfo.SerialNumber",
        "Device.ManagementServer.URL",
        "Device.Bridging.Bridge.",
        "Device.VXLAN.Tunnel.",
    ] {
        assert!(
            names.contains(&expected),
            "{expected} missing from the whole-tree GPN"
        );
    }
    let url = all
        .parameter_list
        .iter()
        .find(|p| p.name == "Device.ManagementServer.URL")
        .expect("URL");
    assert!(url.writable);
    let serial = all
        .parameter_list
        .iter()
        .find(|p| p.name == "Device.DeviceInfo.SerialNumber")
        .expect("SerialNumber");
    assert!(!serial.writable);

    let Body::GetParameterNamesResponse(top) = &s.answers[1].body else {
        panic!("GPN answer: {:?}", s.answers[1])
    };
    let top: Vec<&str> = top.parameter_list.iter().map(|p| p.name.as_str()).collect();
    assert!(top.contains(&"Device.ManagementServer."), "{top:?}");
    assert!(
        !top.iter().any(|n| n.matches('.').count() > 2),
        "NextLevel lists only children: {top:?}"
    );

    let ms = values(&s.answers[2].body);
    assert!(ms.iter().all(|(n, _)| n.starts_with(MS)), "{ms:?}");
    assert!(
        ms.iter()
            .any(|(n, v)| n == &format!("{MS}URL") && *v == acs.url()),
        "{ms:?}"
    );
    assert!(
        ms.iter()
            .any(|(n, v)| n == &format!("{MS}ConnectionRequestPassword") && v.is_empty()),
        "hidden password reads empty: {ms:?}"
    );
    assert_eq!(
        value_of(&s.answers[3].body, "Device.DeviceInfo.SerialNumber"),
        "TEST0001"
    );
    assert_eq!(
        fault_of(&s.answers[4].body).code,
        FaultCode::InvalidParameterName
    );
    assert!(s.ended);
}

#[test]
fn set_parameter_values_is_atomic_with_per_parameter_faults() {
    let acs = Acs::start(AcsConfig::default());
    acs.script(vec![
        spv(
            &[
                (
                    &format!("{MS}PeriodicInformInterval"),
                    "300",
                    ValueType::UnsignedInt,
                ),
                (
                    "Device.DeviceInfo.ProvisioningCode",
                    "HOME-1",
                    ValueType::String,
                ),
            ],
            "key-1",
        ),
        gpv(&[
            &format!("{MS}ParameterKey"),
            &format!("{MS}PeriodicInformInterval"),
        ]),
        // One good value and four bad ones: nothing is applied.
        spv(
            &[
                (
                    "Device.DeviceInfo.ProvisioningCode",
                    "HOME-2",
                    ValueType::String,
                ),
                (
                    &format!("{MS}PeriodicInformInterval"),
                    "0",
                    ValueType::UnsignedInt,
                ),
                ("Device.DeviceInfo.SerialNumber", "X", ValueType::String),
                (
                    &format!("{MS}PeriodicInformEnable"),
                    "1",
                    ValueType::DateTime,
                ),
                ("Device.NoSuch.Param", "1", ValueType::String),
            ],
            "key-2",
        ),
        gpv(&[
            &format!("{MS}ParameterKey"),
            "Device.DeviceInfo.ProvisioningCode",
        ]),
    ]);
    let mut brgd = Brgd::new("cwmp-spv");
    brgd.start(&acs.url());
    let s = session(&acs, 1);
    assert_eq!(s.answers.len(), 4, "{s:?}");
    match &s.answers[0].body {
        Body::SetParameterValuesResponse(r) => assert_eq!(r.status, Status::Applied),
        other => panic!("SPV answer: {other:?}"),
    }
    assert_eq!(
        value_of(&s.answers[1].body, &format!("{MS}ParameterKey")),
        "key-1"
    );
    assert_eq!(
        value_of(&s.answers[1].body, &format!("{MS}PeriodicInformInterval")),
        "300"
    );

    let fault = fault_of(&s.answers[2].body);
    assert_eq!(fault.code, FaultCode::InvalidArguments);
    let per: Vec<(String, u32)> = fault
        .set_parameter_values_faults
        .iter()
        .map(|f| (f.parameter_name.clone(), f.code.code()))
        .collect();
    for expected in [
        (format!("{MS}PeriodicInformInterval"), 9007),
        ("Device.DeviceInfo.SerialNumber".to_owned(), 9008),
        (format!("{MS}PeriodicInformEnable"), 9006),
        ("Device.NoSuch.Param".to_owned(), 9005),
    ] {
        assert!(per.contains(&expected), "{expected:?} missing from {per:?}");
    }
    assert_eq!(
        value_of(&s.answers[3].body, &format!("{MS}ParameterKey")),
        "key-1"
    );
    assert_eq!(
        value_of(&s.answers[3].body, "Device.DeviceInfo.ProvisioningCode"),
        "HOME-1"
    );
    brgd.assert_running();
}

/// The Connection Request URL is set by the device (a new port after each restart here):
/// with notification off its change goes unreported, with active notification the next
/// Inform carries `4 VALUE CHANGE`.
#[test]
fn attributes_with_active_notification_raise_value_change() {
    let cr_url = format!("{MS}ConnectionRequestURL");
    let gpa = || {
        rpc(Body::GetParameterAttributes(GetParameterAttributes {
            parameter_names: vec![cr_url.clone()],
        }))
    };
    let acs = Acs::start(AcsConfig::default());
    acs.script(vec![
        gpa(),
        notify(&cr_url, Notification::Off),
        gpa(),
        notify("Device.DeviceInfo.UpTime", Notification::Active),
        rpc(Body::GetParameterAttributes(GetParameterAttributes {
            parameter_names: vec!["Device.Nope".into()],
        })),
    ]);
    let mut brgd = Brgd::new("cwmp-attr");
    brgd.start(&acs.url());
    let s = session(&acs, 1);
    assert_eq!(
        notification_of(&s.answers[0].body),
        Notification::Active,
        "TR-181 default"
    );
    assert!(
        matches!(s.answers[1].body, Body::SetParameterAttributesResponse),
        "{s:?}"
    );
    assert_eq!(notification_of(&s.answers[2].body), Notification::Off);
    assert_eq!(
        fault_of(&s.answers[3].body).code,
        FaultCode::NotificationRequestRejected
    );
    assert_eq!(
        fault_of(&s.answers[4].body).code,
        FaultCode::InvalidParameterName
    );

    brgd.kill9();
    brgd.cr_port = free_port();
    brgd.start(&acs.url());
    let quiet = session(&acs, 2);
    assert_ne!(quiet.param(&cr_url), s.param(&cr_url), "a new CR port");
    assert_eq!(
        quiet.event_codes(),
        ["1 BOOT"],
        "notification off: no VALUE CHANGE"
    );

    acs.script(vec![notify(&cr_url, Notification::Active), gpa()]);
    let s = kick(&acs, &quiet, 3);
    assert_eq!(notification_of(&s.answers[1].body), Notification::Active);
    brgd.kill9();
    brgd.cr_port = free_port();
    brgd.start(&acs.url());
    let vc = session(&acs, 4);
    assert_eq!(vc.event_codes(), ["1 BOOT", "4 VALUE CHANGE"], "{vc:?}");
    assert_ne!(vc.param(&cr_url), quiet.param(&cr_url));
    brgd.assert_running();
}

#[test]
fn add_and_delete_objects() {
    let acs = Acs::start(AcsConfig::default());
    let bridges = "Device.Bridging.Bridge.";
    acs.script(vec![
        rpc(Body::AddObject(AddObject {
            object_name: bridges.into(),
            parameter_key: "add-1".into(),
        })),
        rpc(Body::AddObject(AddObject {
            object_name: bridges.into(),
            parameter_key: "add-2".into(),
        })),
        rpc(Body::DeleteObject(DeleteObject {
            object_name: "Device.Bridging.Bridge.1.".into(),
            parameter_key: "del-1".into(),
        })),
        rpc(Body::DeleteObject(DeleteObject {
            object_name: "Device.Bridging.Bridge.1.".into(),
            parameter_key: "del-again".into(),
        })),
        rpc(Body::AddObject(AddObject {
            object_name: "Device.DeviceInfo.".into(),
            parameter_key: "bad".into(),
        })),
        gpv(&[
            "Device.Bridging.BridgeNumberOfEntries",
            &format!("{MS}ParameterKey"),
        ]),
        rpc(Body::GetParameterNames(GetParameterNames {
            parameter_path: bridges.into(),
            next_level: true,
        })),
    ]);
    let mut brgd = Brgd::new("cwmp-obj");
    brgd.start(&acs.url());
    let s = session(&acs, 1);
    let instance = |i: usize| match &s.answers[i].body {
        Body::AddObjectResponse(r) => r.instance_number,
        other => panic!("AddObject answer: {other:?}"),
    };
    assert_eq!((instance(0), instance(1)), (1, 2));
    assert!(
        matches!(s.answers[2].body, Body::DeleteObjectResponse(_)),
        "{:?}",
        s.answers[2]
    );
    assert_eq!(
        fault_of(&s.answers[3].body).code,
        FaultCode::InvalidParameterName
    );
    assert_eq!(
        fault_of(&s.answers[4].body).code,
        FaultCode::InvalidParameterName
    );
    assert_eq!(
        value_of(&s.answers[5].body, "Device.Bridging.BridgeNumberOfEntries"),
        "1"
    );
    assert_eq!(
        value_of(&s.answers[5].body, &format!("{MS}ParameterKey")),
        "del-1"
    );
    let Body::GetParameterNamesResponse(names) = &s.answers[6].body else {
        panic!("GPN answer: {:?}", s.answers[6])
    };
    let names: Vec<&str> = names
        .parameter_list
        .iter()
        .map(|p| p.name.as_str())
        .collect();
    assert_eq!(names, ["Device.Bridging.Bridge.2."]);
}

/// An ACS that adds bridges without end (issue 15: 42,000 bridges in 282 s) gets 9004
/// (Resources exceeded) once the table holds `MaxBridgeEntries`; the count stays there, also
/// across a `kill -9` and restart.
#[test]
fn add_object_beyond_the_table_limit_is_9004() {
    let max = cwmp::tr181::MAX_BRIDGES as usize;
    let acs = Acs::start(AcsConfig::default());
    let add = |key: usize| {
        rpc(Body::AddObject(AddObject {
            object_name: "Device.Bridging.Bridge.".into(),
            parameter_key: format!("add-{key}"),
        }))
    };
    let mut script: Vec<AcsRequest> = (1..=max + 3).map(add).collect();
    script.push(gpv(&[
        "Device.Bridging.BridgeNumberOfEntries",
        "Device.Bridging.MaxBridgeEntries",
        &format!("{MS}ParameterKey"),
    ]));
    acs.script(script);
    let mut brgd = Brgd::new("cwmp-max");
    brgd.start(&acs.url());
    let s = session(&acs, 1);
    assert_eq!(s.answers.len(), max + 4, "{s:?}");
    for (i, answer) in s.answers[..max].iter().enumerate() {
        assert!(
            matches!(&answer.body, Body::AddObjectResponse(r) if r.instance_number as usize == i + 1),
            "AddObject {} within the limit: {answer:?}",
            i + 1
        );
    }
    for answer in &s.answers[max..max + 3] {
        assert_eq!(
            fault_of(&answer.body).code,
            FaultCode::ResourcesExceeded,
            "{answer:?}"
        );
    }
    let counts = &s.answers[max + 3].body;
    let max_text = max.to_string();
    assert_eq!(
        value_of(counts, "Device.Bridging.BridgeNumberOfEntries"),
        max_text
    );
    assert_eq!(
        value_of(counts, "Device.Bridging.MaxBridgeEntries"),
        max_text
    );
    assert_eq!(
        value_of(counts, &format!("{MS}ParameterKey")),
        format!("add-{max}"),
        "a refused AddObject leaves the ParameterKey"
    );

    brgd.kill9();
    acs.script(vec![
        add(0),
        gpv(&["Device.Bridging.BridgeNumberOfEntries"]),
    ]);
    brgd.start(&acs.url());
    let s = session(&acs, 2);
    assert_eq!(
        fault_of(&s.answers[0].body).code,
        FaultCode::ResourcesExceeded
    );
    assert_eq!(
        value_of(&s.answers[1].body, "Device.Bridging.BridgeNumberOfEntries"),
        max_text
    );
    brgd.assert_running();
}

#[test]
fn value_set_survives_kill9_and_restart() {
    let (acs, mut brgd, first) = setup("cwmp-persist", AcsConfig::default());
    acs.script(vec![
        spv(
            &[(
                "Device.DeviceInfo.ProvisioningCode",
                "PERSIST-ME",
                ValueType::String,
            )],
            "p-1",
        ),
        rpc(Body::AddObject(AddObject {
            object_name: "Device.Bridging.Bridge.".into(),
            parameter_key: "p-2".into(),
        })),
    ]);
    let s = kick(&acs, &first, 2);
    assert_eq!(s.answers.len(), 2, "{s:?}");
    brgd.kill9();
    brgd.start(&acs.url());
    let boot = session(&acs, 3);
    assert_eq!(boot.event_codes(), ["1 BOOT"]);
    assert_eq!(
        boot.param("Device.DeviceInfo.ProvisioningCode"),
        Some("PERSIST-ME")
    );
    assert_eq!(boot.param(&format!("{MS}ParameterKey")), Some("p-2"));
    acs.script(vec![
        gpv(&["Device.Bridging.BridgeNumberOfEntries"]),
        // A new instance after the restart must not reuse number 1.
        rpc(Body::AddObject(AddObject {
            object_name: "Device.Bridging.Bridge.".into(),
            parameter_key: "p-3".into(),
        })),
    ]);
    let s = kick(&acs, &boot, 4);
    assert_eq!(
        value_of(&s.answers[0].body, "Device.Bridging.BridgeNumberOfEntries"),
        "1"
    );
    assert!(
        matches!(s.answers[1].body, Body::AddObjectResponse(r) if r.instance_number == 2),
        "{:?}",
        s.answers[1]
    );
}

#[test]
fn corrupt_stored_model_falls_back_to_factory_defaults() {
    let (acs, mut brgd, first) = setup("cwmp-corrupt", AcsConfig::default());
    acs.script(vec![spv(
        &[(
            "Device.DeviceInfo.ProvisioningCode",
            "SET",
            ValueType::String,
        )],
        "c-1",
    )]);
    kick(&acs, &first, 2);
    brgd.kill9();
    std::fs::write(brgd.state_file("model"), "garbage\nV Device.X 1\n")
        .expect("corrupting the model");
    brgd.start(&acs.url());
    let s = session(&acs, 3);
    assert_eq!(
        s.event_codes(),
        ["1 BOOT"],
        "a corrupt model is not a first start: {s:?}"
    );
    assert_eq!(s.param("Device.DeviceInfo.ProvisioningCode"), Some(""));
    assert_eq!(s.param(&format!("{MS}ParameterKey")), Some(""));
    brgd.assert_running();
    assert!(
        brgd.log().contains("falling back to factory defaults"),
        "{}",
        brgd.log()
    );
}
