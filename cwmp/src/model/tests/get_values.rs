//! GetParameterValues: full and partial paths, computed, live and hidden values, faults.

use super::*;

#[test]
fn gpv_full_partial_computed_live_and_hidden() {
    let mut m = populated();
    m.set_parameter_values(
        &[pv(
            "Device.ManagementServer.Password",
            "secret",
            ValueType::String,
        )],
        "",
    )
    .expect("spv");
    let values = m
        .get_parameter_values(&strs(&[
            "Device.DeviceInfo.UpTime",
            "Device.DeviceInfo.Temperature",
            "Device.Bridging.BridgeNumberOfEntries",
            "Device.Bridging.Bridge.1.PortNumberOfEntries",
            "Device.ManagementServer.Password",
            "Device.ManagementServer.PeriodicInformEnable",
            "Device.Bridging.Bridge.2.",
        ]))
        .expect("gpv");
    let expected = [
        pv("Device.DeviceInfo.UpTime", "42", ValueType::UnsignedInt),
        pv("Device.DeviceInfo.Temperature", "-3", ValueType::Int),
        pv(
            "Device.Bridging.BridgeNumberOfEntries",
            "2",
            ValueType::UnsignedInt,
        ),
        pv(
            "Device.Bridging.Bridge.1.PortNumberOfEntries",
            "2",
            ValueType::UnsignedInt,
        ),
        pv("Device.ManagementServer.Password", "", ValueType::String),
        pv(
            "Device.ManagementServer.PeriodicInformEnable",
            "true",
            ValueType::Boolean,
        ),
        pv(
            "Device.Bridging.Bridge.2.Enable",
            "false",
            ValueType::Boolean,
        ),
        pv(
            "Device.Bridging.Bridge.2.Status",
            "Disabled",
            ValueType::String,
        ),
        pv(
            "Device.Bridging.Bridge.2.PortNumberOfEntries",
            "0",
            ValueType::UnsignedInt,
        ),
    ];
    assert_eq!(values, expected);
    assert_eq!(value_of(&m, "Device.ManagementServer.Password"), "secret");
    let all = m.get_parameter_values(&strs(&[""])).expect("everything");
    assert!(all.len() > 20);
    let table = m
        .get_parameter_values(&strs(&["Device.Bridging.Bridge."]))
        .expect("table");
    assert_eq!(table.len(), 3 + 4 + 3);
    assert!(m.get_parameter_values(&[]).expect("nothing").is_empty());
}

#[test]
fn gpv_faults() {
    let mut m = populated();
    let fault = m
        .get_parameter_values(&strs(&["Device.DeviceInfo.UpTime", "Device.Nope"]))
        .expect_err("unknown");
    assert_eq!(fault.code, FaultCode::InvalidParameterName);
    m.backend_mut().live.clear();
    let fault = m
        .get_parameter_values(&strs(&["Device.DeviceInfo."]))
        .expect_err("live read fails");
    assert_eq!(fault.code, FaultCode::InternalError);
}
