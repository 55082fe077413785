//! Attributes and notification: get and set, the facets' limits, local and ACS changes, hidden and live values.

use super::*;

#[test]
fn attributes_get_and_set() {
    let mut m = populated();
    let attrs = m
        .get_parameter_attributes(&strs(&[
            "Device.ManagementServer.ConnectionRequestURL",
            "Device.ManagementServer.URL",
            "Device.DeviceInfo.SoftwareVersion",
        ]))
        .expect("gpa");
    let n: Vec<u8> = attrs.iter().map(|a| a.notification.code()).collect();
    assert_eq!(
        n,
        [2, 0, 2],
        "forceDefaultEnabled and forceEnabled default to active"
    );
    m.set_parameter_attributes(&[
        spa("Device.ManagementServer.URL", Notification::Passive),
        SetParameterAttribute {
            name: "Device.Bridging.Bridge.1.".into(),
            notification_change: false,
            notification: Notification::Off,
            access_list_change: true,
            access_list: vec!["Subscriber".into()],
        },
    ])
    .expect("spa");
    let attrs = m
        .get_parameter_attributes(&strs(&[
            "Device.ManagementServer.URL",
            "Device.Bridging.Bridge.1.",
        ]))
        .expect("gpa");
    assert_eq!(attrs[0].notification, Notification::Passive);
    assert_eq!(attrs.len(), 1 + 3 + 2 * 2);
    assert!(attrs[1..].iter().all(|a| a.access_list == ["Subscriber"]));
    assert_eq!(
        m.get_parameter_attributes(&strs(&["Device.X"]))
            .expect_err("unknown")
            .code,
        FaultCode::InvalidParameterName
    );
}

#[test]
fn notification_requests_the_facets_forbid() {
    let mut m = populated();
    for (name, n) in [
        ("Device.DeviceInfo.UpTime", Notification::Active),
        ("Device.DeviceInfo.SoftwareVersion", Notification::Off),
        (
            "Device.ManagementServer.URL",
            Notification::ActiveLightweight,
        ),
    ] {
        let fault = m.set_parameter_attributes(&[spa(name, n)]).expect_err(name);
        assert_eq!(fault.code, FaultCode::NotificationRequestRejected, "{name}");
    }
    // Atomic: a bad entry after a good one changes nothing.
    let fault = m
        .set_parameter_attributes(&[
            spa("Device.ManagementServer.URL", Notification::Active),
            spa("Device.DeviceInfo.UpTime", Notification::Active),
        ])
        .expect_err("second entry rejected");
    assert_eq!(fault.code, FaultCode::NotificationRequestRejected);
    let url = m
        .get_parameter_attributes(&strs(&["Device.ManagementServer.URL"]))
        .expect("gpa");
    assert_eq!(url[0].notification, Notification::Off);
    // Under a partial path, parameters that refuse are skipped.
    m.set_parameter_attributes(&[spa("Device.DeviceInfo.", Notification::Active)])
        .expect("partial path");
    let attrs = m
        .get_parameter_attributes(&strs(&["Device.DeviceInfo."]))
        .expect("gpa");
    let by_name: BTreeMap<&str, u8> = attrs
        .iter()
        .map(|a| (a.name.as_str(), a.notification.code()))
        .collect();
    assert_eq!(by_name["Device.DeviceInfo.UpTime"], 0);
    assert_eq!(by_name["Device.DeviceInfo.Manufacturer"], 2);
    let bad_list = SetParameterAttribute {
        access_list_change: true,
        access_list: vec!["Everyone".into()],
        ..spa("Device.ManagementServer.URL", Notification::Off)
    };
    assert_eq!(
        m.set_parameter_attributes(&[bad_list])
            .expect_err("access list")
            .code,
        FaultCode::InvalidArguments
    );
    assert_eq!(
        m.set_parameter_attributes(&[spa("Device.Nope", Notification::Off)])
            .expect_err("unknown")
            .code,
        FaultCode::InvalidParameterName
    );
}

#[test]
fn local_changes_are_notified_acs_changes_are_not() {
    let mut m = populated();
    m.set_parameter_attributes(&[
        spa("Device.Bridging.Bridge.1.Status", Notification::Passive),
        spa("Device.Bridging.Bridge.1.Enable", Notification::Active),
    ])
    .expect("spa");
    assert!(!m.has_value_changes());
    // The ACS's own change is not reported back.
    m.set_parameter_values(
        &[pv(
            "Device.Bridging.Bridge.1.Enable",
            "1",
            ValueType::Boolean,
        )],
        "",
    )
    .expect("spv");
    assert!(!m.has_value_changes());
    // A local change to the same value is no change.
    m.set("Device.Bridging.Bridge.1.Status", "Disabled")
        .expect("set");
    assert!(!m.has_value_changes());
    // Passive: remembered, no session needed.
    m.set("Device.Bridging.Bridge.1.Status", "Enabled")
        .expect("set");
    assert!(m.has_value_changes() && !m.has_active_changes());
    // Active: a session is due.
    m.set("Device.Bridging.Bridge.1.Enable", false)
        .expect("set");
    assert!(m.has_active_changes());
    // A parameter without notification is not tracked.
    m.set("Device.Bridging.Bridge.2.Status", "Error")
        .expect("set");
    // ConnectionRequestURL is active by default.
    m.set(
        "Device.ManagementServer.ConnectionRequestURL",
        "http://10.0.0.2:7547/x",
    )
    .expect("set");

    let (list, informed) = m.inform_parameters();
    let names: Vec<&str> = list.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "Device.RootDataModelVersion",
            "Device.DeviceInfo.SoftwareVersion",
            "Device.ManagementServer.ParameterKey",
            "Device.ManagementServer.ConnectionRequestURL",
            "Device.Bridging.Bridge.1.Enable",
            "Device.Bridging.Bridge.1.Status",
        ],
        "forced first, changed after, no duplicates"
    );
    assert_eq!(list[3].value, "http://10.0.0.2:7547/x");
    assert_eq!(list[5].value, "Enabled");
    let mut copy = Model::new(schema(), TestBackend::default());
    copy.set("Device.ManagementServer.ConnectionRequestURL", "http://x/")
        .expect("set");
    assert!(copy.has_active_changes());
    copy.clear_value_changes();
    assert!(!copy.has_value_changes());
    // A change after the Inform was built stays pending once the Inform is acknowledged.
    m.set("Device.Bridging.Bridge.1.Status", "Error")
        .expect("set");
    m.inform_delivered(&informed);
    assert!(m.has_value_changes() && !m.has_active_changes());
    let (list, informed) = m.inform_parameters();
    assert_eq!(list.len(), 5);
    m.inform_delivered(&informed);
    assert!(!m.has_value_changes());
    // Turning notification off drops a pending change; deleting the instance does too.
    m.set("Device.Bridging.Bridge.1.Status", "Enabled")
        .expect("set");
    m.set_parameter_attributes(&[spa("Device.Bridging.Bridge.1.Status", Notification::Off)])
        .expect("spa");
    assert!(!m.has_value_changes());
    m.set("Device.Bridging.Bridge.1.Enable", true).expect("set");
    assert!(m.has_active_changes());
    m.delete_object("Device.Bridging.Bridge.1.", "")
        .expect("delete");
    assert!(!m.has_value_changes());
}

#[test]
fn hidden_values_never_reach_the_acs() {
    let mut m = populated();
    m.set_parameter_attributes(&[spa(
        "Device.ManagementServer.Password",
        Notification::Passive,
    )])
    .expect("spa");
    m.set("Device.ManagementServer.Password", "hunter2")
        .expect("local change");
    let (list, _) = m.inform_parameters();
    let password = list
        .iter()
        .find(|p| p.name == "Device.ManagementServer.Password")
        .expect("changed parameter is reported");
    assert_eq!(password.value, "");
    assert_eq!(value_of(&m, "Device.ManagementServer.Password"), "hunter2");
}

#[test]
fn live_parameters_are_polled() {
    let mut m = populated();
    m.set_parameter_attributes(&[
        spa("Device.DeviceInfo.Temperature", Notification::Active),
        spa(
            "Device.Ethernet.Interface.1.LastChange",
            Notification::Passive,
        ),
    ])
    .expect("spa");
    assert!(!m.poll_live(), "baseline only");
    assert!(!m.has_value_changes());
    m.backend_mut().live.insert(
        "Device.Ethernet.Interface.1.LastChange".into(),
        Value::Unsigned(9),
    );
    assert!(!m.poll_live(), "passive change");
    assert!(m.has_value_changes());
    m.backend_mut()
        .live
        .insert("Device.DeviceInfo.Temperature".into(), Value::Int(40));
    assert!(m.poll_live(), "active change");
    let (list, _) = m.inform_parameters();
    assert!(
        list.iter()
            .any(|p| p.name == "Device.DeviceInfo.Temperature" && p.value == "40")
    );
    // A live read failure is skipped, not reported as a change.
    m.backend_mut().live.clear();
    m.poll_live();
}
