//! SetParameterValues: atomic application, ParameterKey, faults, backend rejection and roll-back.

use super::*;

#[test]
fn spv_applies_all_and_stores_the_key() {
    let mut m = populated();
    let list = [
        pv(
            "Device.ManagementServer.PeriodicInformInterval",
            "60",
            ValueType::UnsignedInt,
        ),
        pv("Device.Bridging.Bridge.1.Enable", "1", ValueType::Boolean),
        pv(
            "Device.Bridging.Bridge.1.Port.2.PVID",
            "100",
            ValueType::Int,
        ),
        pv(
            "Device.Bridging.Bridge.1.Port.2.LowerLayers",
            "Device.Ethernet.Interface.1",
            ValueType::String,
        ),
    ];
    assert_eq!(m.set_parameter_values(&list, "spv-1"), Ok(Status::Applied));
    assert_eq!(m.parameter_key(), "spv-1");
    assert_eq!(
        value_of(&m, "Device.ManagementServer.ParameterKey"),
        "spv-1"
    );
    assert_eq!(value_of(&m, "Device.Bridging.Bridge.1.Enable"), "true");
    assert_eq!(
        m.get("Device.Bridging.Bridge.1.Port.2.PVID"),
        Ok(Value::Int(100))
    );
    let applied = &m.backend().applied;
    assert_eq!(applied.len(), 1, "apply runs once per SPV");
    let change = &applied[0][2];
    assert_eq!(change.path, "Device.Bridging.Bridge.1.Port.2.PVID");
    assert_eq!(
        &*change.schema_path,
        "Device.Bridging.Bridge.{i}.Port.{i}.PVID"
    );
    assert_eq!(change.instances, [1, 2]);
    assert_eq!(
        change.kind,
        ChangeKind::Set {
            old: Value::Int(1),
            new: Value::Int(100)
        }
    );
    // Untyped and string-typed values are accepted when the text parses.
    let loose = [
        ParameterValue {
            name: "Device.ManagementServer.PeriodicInformInterval".into(),
            value: " 120 ".into(),
            value_type: None,
        },
        pv(
            "Device.ManagementServer.PeriodicInformEnable",
            "false",
            ValueType::String,
        ),
    ];
    assert_eq!(m.set_parameter_values(&loose, ""), Ok(Status::Applied));
    assert_eq!(m.parameter_key(), "");
    assert_eq!(
        m.get("Device.ManagementServer.PeriodicInformInterval"),
        Ok(Value::Unsigned(120))
    );
}

#[test]
fn spv_is_atomic_with_a_fault_per_parameter() {
    let mut m = populated();
    m.set_parameter_values(
        &[pv(
            "Device.ManagementServer.URL",
            "http://acs/",
            ValueType::String,
        )],
        "before",
    )
    .expect("spv");
    let list = [
        pv(
            "Device.ManagementServer.URL",
            "http://other/",
            ValueType::String,
        ),
        pv("Device.ManagementServer.Nope", "1", ValueType::String),
        pv("Device.DeviceInfo.Manufacturer", "x", ValueType::String),
        pv(
            "Device.Bridging.Bridge.1.Enable",
            "1",
            ValueType::UnsignedInt,
        ),
        pv(
            "Device.Bridging.Bridge.1.Port.1.PVID",
            "4095",
            ValueType::Int,
        ),
        pv(
            "Device.Bridging.BridgeNumberOfEntries",
            "5",
            ValueType::UnsignedInt,
        ),
        pv("Device.DeviceInfo.UpTime", "5", ValueType::UnsignedInt),
        pv("Device.Bridging.Bridge.9.Enable", "1", ValueType::Boolean),
        pv(
            "Device.ManagementServer.PeriodicInformInterval",
            "abc",
            ValueType::String,
        ),
        pv(
            "Device.ManagementServer.PeriodicInformInterval.",
            "1",
            ValueType::String,
        ),
        pv("Device.Bridging.", "1", ValueType::String),
        pv(
            "Device.ManagementServer.ParameterKey",
            "k",
            ValueType::String,
        ),
        pv(
            "Device.ManagementServer.PeriodicInformEnable",
            "yes",
            ValueType::Boolean,
        ),
        pv(
            "Device.ManagementServer.PeriodicInformTime",
            "x",
            ValueType::DateTime,
        ),
    ];
    let fault = m
        .set_parameter_values(&list, "after")
        .expect_err("must fail");
    assert_eq!(fault.code, FaultCode::InvalidArguments);
    let codes: Vec<(&str, u32)> = fault
        .set_parameter_values_faults
        .iter()
        .map(|f| (f.parameter_name.as_str(), f.code.code()))
        .collect();
    assert_eq!(
        codes,
        [
            ("Device.ManagementServer.Nope", 9005),
            ("Device.DeviceInfo.Manufacturer", 9008),
            ("Device.Bridging.Bridge.1.Enable", 9006),
            ("Device.Bridging.Bridge.1.Port.1.PVID", 9007),
            ("Device.Bridging.BridgeNumberOfEntries", 9008),
            ("Device.DeviceInfo.UpTime", 9008),
            ("Device.Bridging.Bridge.9.Enable", 9005),
            ("Device.ManagementServer.PeriodicInformInterval", 9007),
            ("Device.ManagementServer.PeriodicInformInterval.", 9005),
            ("Device.Bridging.", 9005),
            ("Device.ManagementServer.ParameterKey", 9008),
            ("Device.ManagementServer.PeriodicInformEnable", 9007),
            ("Device.ManagementServer.PeriodicInformTime", 9005),
        ]
    );
    assert!(
        fault
            .set_parameter_values_faults
            .iter()
            .all(|f| !f.string.is_empty())
    );
    assert_eq!(
        value_of(&m, "Device.ManagementServer.URL"),
        "http://acs/",
        "nothing applied"
    );
    assert_eq!(m.parameter_key(), "before");
    assert!(
        m.backend().applied.len() == 1,
        "apply not called for the failed SPV"
    );
}

#[test]
fn spv_argument_faults() {
    let mut m = populated();
    let twice = [
        pv("Device.ManagementServer.URL", "a", ValueType::String),
        pv("Device.ManagementServer.URL", "b", ValueType::String),
    ];
    let fault = m.set_parameter_values(&twice, "").expect_err("duplicate");
    assert_eq!(fault.code, FaultCode::InvalidArguments);
    assert!(fault.set_parameter_values_faults.is_empty());
    let long_key = "k".repeat(33);
    let ok = [pv("Device.ManagementServer.URL", "a", ValueType::String)];
    let fault = m
        .set_parameter_values(&ok, &long_key)
        .expect_err("key too long");
    assert_eq!(fault.code, FaultCode::InvalidArguments);
    assert_eq!(
        m.set_parameter_values(&ok, &"k".repeat(32)),
        Ok(Status::Applied)
    );
    assert_eq!(m.set_parameter_values(&[], "empty"), Ok(Status::Applied));
    assert_eq!(m.parameter_key(), "empty");
}

#[test]
fn spv_backend_rejection_and_apply_failure_roll_back() {
    let mut m = populated();
    m.backend_mut().exclusive = Some((
        "Device.Bridging.Bridge.1.Enable".into(),
        "Device.Bridging.Bridge.2.Enable".into(),
    ));
    let one = [pv(
        "Device.Bridging.Bridge.1.Enable",
        "true",
        ValueType::Boolean,
    )];
    assert_eq!(m.set_parameter_values(&one, "a"), Ok(Status::Applied));
    let both = [
        pv(
            "Device.Bridging.Bridge.2.Enable",
            "true",
            ValueType::Boolean,
        ),
        pv(
            "Device.ManagementServer.URL",
            "http://x/",
            ValueType::String,
        ),
    ];
    let fault = m
        .set_parameter_values(&both, "b")
        .expect_err("combination rejected");
    assert_eq!(fault.set_parameter_values_faults[0].code.code(), 9007);
    assert_eq!(
        fault.set_parameter_values_faults[0].parameter_name,
        "Device.Bridging.Bridge.2.Enable"
    );
    assert_eq!(value_of(&m, "Device.Bridging.Bridge.2.Enable"), "false");
    assert_eq!(value_of(&m, "Device.ManagementServer.URL"), "");
    assert_eq!(m.parameter_key(), "a");

    m.backend_mut().exclusive = None;
    m.backend_mut().reject_apply = Some(Fault::new(FaultCode::InternalError));
    let fault = m.set_parameter_values(&both, "c").expect_err("apply fails");
    assert_eq!(fault.code, FaultCode::InternalError);
    assert_eq!(value_of(&m, "Device.Bridging.Bridge.2.Enable"), "false");
    assert_eq!(m.parameter_key(), "a");

    m.backend_mut().reject_apply = None;
    m.backend_mut().status = Some(Status::Pending);
    assert_eq!(m.set_parameter_values(&both, "d"), Ok(Status::Pending));
    assert_eq!(m.parameter_key(), "d");
}
