//! Persistence: save and restore, what no longer fits.

use super::*;

#[test]
fn save_and_restore_round_trip() {
    let mut m = populated();
    m.set_parameter_values(
        &[
            pv(
                "Device.ManagementServer.URL",
                "http://acs.example/cwmp?a=b c",
                ValueType::String,
            ),
            pv(
                "Device.ManagementServer.Password",
                "line1\nline2\\",
                ValueType::String,
            ),
            pv("Device.Bridging.Bridge.1.Port.2.PVID", "42", ValueType::Int),
        ],
        "saved-key",
    )
    .expect("spv");
    m.delete_object("Device.Bridging.Bridge.2.", "saved-key")
        .expect("delete");
    m.set_parameter_attributes(&[SetParameterAttribute {
        access_list_change: true,
        access_list: vec!["Subscriber".into()],
        ..spa("Device.ManagementServer.URL", Notification::Passive)
    }])
    .expect("spa");
    m.set("Device.Bridging.Bridge.1.Status", "Enabled")
        .expect("runtime state");
    let text = m.save();
    assert!(text.starts_with("cwmp-model 1\n"));
    assert!(!text.contains("Status"), "read-only state is not saved");

    let mut restored = model();
    let report = restored.restore(&text).expect("restore");
    assert!(report.skipped.is_empty(), "{report:?}");
    assert_eq!(restored.save(), text);
    assert_eq!(restored.parameter_key(), "saved-key");
    assert_eq!(
        value_of(&restored, "Device.ManagementServer.Password"),
        "line1\nline2\\"
    );
    assert_eq!(
        restored.get("Device.Bridging.Bridge.1.Port.2.PVID"),
        Ok(Value::Int(42))
    );
    assert_eq!(restored.instances("Device.Bridging.Bridge."), Ok(vec![1]));
    // Instance numbers stay unused after a restart.
    assert_eq!(
        restored
            .add_object("Device.Bridging.Bridge.", "")
            .map(|r| r.0),
        Ok(3)
    );
    assert_eq!(
        restored
            .get_parameter_attributes(&strs(&["Device.ManagementServer.URL"]))
            .expect("gpa")[0],
        ParameterAttribute {
            name: "Device.ManagementServer.URL".into(),
            notification: Notification::Passive,
            access_list: vec!["Subscriber".into()],
        }
    );
}

#[test]
fn restore_skips_what_no_longer_fits() {
    let mut m = model();
    assert_eq!(m.restore("something else"), Err(RestoreError::NotAModel));
    assert_eq!(m.restore(""), Err(RestoreError::NotAModel));
    let text = "cwmp-model 1\n\
        K key\n\
        T Device.Bridging.Bridge. 5\n\
        I Device.Bridging.Bridge.2.\n\
        I Device.Bridging.Bridge.x.\n\
        I Device.Gone.1.\n\
        V Device.Bridging.Bridge.2.Enable true\n\
        V Device.Bridging.Bridge.2.Status Enabled\n\
        V Device.ManagementServer.PeriodicInformInterval 0\n\
        V Device.Removed.Param 1\n\
        V Device.ManagementServer.URL bad\\escape\n\
        A Device.ManagementServer.URL 9\n\
        A Device.Removed 1\n\
        T Device.Nope. 3\n\
        Z what\n\
        \n";
    let report = m.restore(text).expect("restore");
    let lines: Vec<usize> = report.skipped.iter().map(|(l, _)| *l).collect();
    assert_eq!(lines, [5, 6, 8, 9, 10, 11, 12, 13, 14, 15]);
    assert_eq!(m.parameter_key(), "key");
    assert_eq!(m.instances("Device.Bridging.Bridge."), Ok(vec![2]));
    assert_eq!(
        m.get("Device.Bridging.Bridge.2.Enable"),
        Ok(Value::Bool(true))
    );
    assert_eq!(
        m.add_object("Device.Bridging.Bridge.", "").map(|r| r.0),
        Ok(5)
    );
}
