//! AddObject and DeleteObject: instances, faults, hooks that roll back.

use super::*;

#[test]
fn add_and_delete_objects() {
    let mut m = populated();
    m.set_parameter_values(
        &[pv(
            "Device.Bridging.Bridge.1.Port.2.PVID",
            "7",
            ValueType::Int,
        )],
        "",
    )
    .expect("spv");
    assert_eq!(
        m.delete_object("Device.Bridging.Bridge.1.Port.2.", "del"),
        Ok(Status::Applied)
    );
    assert_eq!(m.parameter_key(), "del");
    assert_eq!(
        m.backend().applied[1][0],
        Change {
            path: "Device.Bridging.Bridge.1.Port.2.".into(),
            schema_path: "Device.Bridging.Bridge.{i}.Port.{i}.".into(),
            instances: vec![1, 2],
            kind: ChangeKind::Deleted,
        }
    );
    assert!(m.get("Device.Bridging.Bridge.1.Port.2.PVID").is_err());
    // Instance numbers are never reused.
    assert_eq!(
        m.add_object("Device.Bridging.Bridge.1.Port.", "add"),
        Ok((3, Status::Applied))
    );
    assert_eq!(
        m.get("Device.Bridging.Bridge.1.Port.3.PVID"),
        Ok(Value::Int(1)),
        "defaults"
    );
    assert_eq!(
        m.backend().applied[2][0].kind,
        ChangeKind::Added,
        "apply sees the add"
    );
    assert_eq!(
        m.instances("Device.Bridging.Bridge.1.Port."),
        Ok(vec![1, 3])
    );
    // Deleting a bridge removes its ports; a new bridge gets a fresh number and no ports.
    assert_eq!(
        m.delete_object("Device.Bridging.Bridge.1.", ""),
        Ok(Status::Applied)
    );
    assert!(m.instances("Device.Bridging.Bridge.1.Port.").is_err());
    assert_eq!(
        m.add_object("Device.Bridging.Bridge.", ""),
        Ok((3, Status::Applied))
    );
    assert_eq!(m.instances("Device.Bridging.Bridge.3.Port."), Ok(vec![]));
    assert_eq!(value_of(&m, "Device.Bridging.BridgeNumberOfEntries"), "2");
}

#[test]
fn object_faults() {
    let mut m = populated();
    assert_eq!(
        m.add_object("Device.Bridging.Bridge.", "").map(|r| r.0),
        Ok(3)
    );
    let full = m
        .add_object("Device.Bridging.Bridge.", "x")
        .expect_err("max 3");
    assert_eq!(full.code, FaultCode::ResourcesExceeded);
    assert_eq!(m.parameter_key(), "");
    for bad in [
        "Device.Bridging.Bridge",
        "Device.Bridging.Bridge.1.",
        "Device.Bridging.",
        "Device.Bridging.Bridge.7.Port.",
        "Device.Ethernet.Interface.",
        "",
    ] {
        assert_eq!(
            m.add_object(bad, "").expect_err(bad).code,
            FaultCode::InvalidParameterName,
            "{bad}"
        );
    }
    for bad in [
        "Device.Bridging.Bridge.",
        "Device.Bridging.Bridge.9.",
        "Device.Bridging.Bridge.1",
        "Device.Ethernet.Interface.1.",
        "Device.DeviceInfo.",
    ] {
        assert_eq!(
            m.delete_object(bad, "").expect_err(bad).code,
            FaultCode::InvalidParameterName,
            "{bad}"
        );
    }
    let long = "k".repeat(40);
    assert_eq!(
        m.delete_object("Device.Bridging.Bridge.1.", &long)
            .expect_err("key")
            .code,
        FaultCode::InvalidArguments
    );
}

#[test]
fn object_hooks_roll_back() {
    let mut m = populated();
    m.backend_mut().reject_validate = Some(Fault::new(FaultCode::RequestDenied));
    assert_eq!(
        m.add_object("Device.Bridging.Bridge.", "x")
            .expect_err("denied")
            .code,
        FaultCode::RequestDenied
    );
    assert_eq!(m.instances("Device.Bridging.Bridge."), Ok(vec![1, 2]));
    assert_eq!(
        m.delete_object("Device.Bridging.Bridge.1.", "x")
            .expect_err("denied")
            .code,
        FaultCode::RequestDenied
    );
    assert_eq!(
        m.instances("Device.Bridging.Bridge.1.Port."),
        Ok(vec![1, 2])
    );
    assert_eq!(m.parameter_key(), "k4");
    m.backend_mut().reject_validate = None;
    // The rejected add did not consume an instance number either.
    assert_eq!(
        m.add_object("Device.Bridging.Bridge.", "x").map(|r| r.0),
        Ok(3)
    );
}
