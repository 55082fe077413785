//! GetParameterNames: paths, next level, faults.

use super::*;

#[test]
fn gpn_empty_path_next_level_true_is_the_root() {
    let m = populated();
    let list = m.get_parameter_names("", true).expect("gpn");
    assert_eq!(
        list,
        [ParameterInfo {
            name: "Device.".into(),
            writable: false
        }]
    );
}

#[test]
fn gpn_empty_path_next_level_false_is_everything() {
    let m = populated();
    let list = m.get_parameter_names("", false).expect("gpn");
    let n = names(&list);
    assert_eq!(n[0], "Device.");
    assert_eq!(n[1], "Device.RootDataModelVersion");
    for expected in [
        "Device.DeviceInfo.",
        "Device.DeviceInfo.UpTime",
        "Device.Bridging.Bridge.",
        "Device.Bridging.Bridge.1.",
        "Device.Bridging.Bridge.1.Port.",
        "Device.Bridging.Bridge.1.Port.2.PVID",
        "Device.Bridging.Bridge.2.Port.",
        "Device.Ethernet.Interface.1.Name",
    ] {
        assert!(n.contains(&expected), "{expected} missing from {n:?}");
    }
    assert!(!n.iter().any(|p| p.contains("{i}")));
    // Device.Bridging.Bridge.{1,2} and their content follow the table, in instance order.
    let b1 = n
        .iter()
        .position(|p| *p == "Device.Bridging.Bridge.1.")
        .expect("b1");
    let b2 = n
        .iter()
        .position(|p| *p == "Device.Bridging.Bridge.2.")
        .expect("b2");
    let p12 = n
        .iter()
        .position(|p| *p == "Device.Bridging.Bridge.1.Port.2.")
        .expect("port");
    assert!(b1 < p12 && p12 < b2);
    // Same for "Device." with NextLevel false.
    let device = m.get_parameter_names("Device.", false).expect("gpn");
    assert_eq!(device, list);
    let writable: BTreeMap<&str, bool> =
        list.iter().map(|i| (i.name.as_str(), i.writable)).collect();
    assert!(writable["Device.Bridging.Bridge."], "AddObject allowed");
    assert!(
        writable["Device.Bridging.Bridge.1."],
        "DeleteObject allowed"
    );
    assert!(!writable["Device.Ethernet.Interface."]);
    assert!(!writable["Device.Ethernet.Interface.1."]);
    assert!(writable["Device.Ethernet.Interface.1.Enable"]);
    assert!(!writable["Device.DeviceInfo."]);
    assert!(writable["Device.ManagementServer.URL"]);
    assert!(!writable["Device.ManagementServer.ParameterKey"]);
}

#[test]
fn gpn_next_level_lists_only_immediate_children() {
    let m = populated();
    let list = m.get_parameter_names("Device.", true).expect("gpn");
    assert_eq!(
        names(&list),
        [
            "Device.RootDataModelVersion",
            "Device.DeviceInfo.",
            "Device.ManagementServer.",
            "Device.Bridging.",
            "Device.Ethernet.",
        ]
    );
    let bridging = m
        .get_parameter_names("Device.Bridging.", true)
        .expect("gpn");
    assert_eq!(
        names(&bridging),
        [
            "Device.Bridging.BridgeNumberOfEntries",
            "Device.Bridging.Bridge."
        ]
    );
    let table = m
        .get_parameter_names("Device.Bridging.Bridge.", true)
        .expect("gpn");
    assert_eq!(
        table,
        [
            ParameterInfo {
                name: "Device.Bridging.Bridge.1.".into(),
                writable: true
            },
            ParameterInfo {
                name: "Device.Bridging.Bridge.2.".into(),
                writable: true
            },
        ]
    );
    let instance = m
        .get_parameter_names("Device.Bridging.Bridge.1.", true)
        .expect("gpn");
    assert_eq!(
        names(&instance),
        [
            "Device.Bridging.Bridge.1.Enable",
            "Device.Bridging.Bridge.1.Status",
            "Device.Bridging.Bridge.1.PortNumberOfEntries",
            "Device.Bridging.Bridge.1.Port.",
        ]
    );
    let subtree = m
        .get_parameter_names("Device.Bridging.Bridge.1.Port.", false)
        .expect("gpn");
    assert_eq!(
        names(&subtree),
        [
            "Device.Bridging.Bridge.1.Port.",
            "Device.Bridging.Bridge.1.Port.1.",
            "Device.Bridging.Bridge.1.Port.1.PVID",
            "Device.Bridging.Bridge.1.Port.1.LowerLayers",
            "Device.Bridging.Bridge.1.Port.2.",
            "Device.Bridging.Bridge.1.Port.2.PVID",
            "Device.Bridging.Bridge.1.Port.2.LowerLayers",
        ]
    );
    let empty_table = m
        .get_parameter_names("Device.Bridging.Bridge.2.Port.", true)
        .expect("gpn");
    assert!(empty_table.is_empty());
}

#[test]
fn gpn_parameter_and_faults() {
    let m = populated();
    let one = m
        .get_parameter_names("Device.ManagementServer.URL", false)
        .expect("gpn");
    assert_eq!(
        one,
        [ParameterInfo {
            name: "Device.ManagementServer.URL".into(),
            writable: true
        }]
    );
    let fault = m
        .get_parameter_names("Device.ManagementServer.URL", true)
        .expect_err("NextLevel true on a parameter");
    assert_eq!(fault.code, FaultCode::InvalidArguments);
    for bad in [
        "Device",
        "Device.Bridging",
        "Device.Bridging.Bridge.3.",
        "Device.Bridging.Bridge.0.",
        "Device.Bridging.Bridge.01.",
        "Device.Bridging.Bridge.{i}.",
        "Device.ManagementServer.URL.",
        "InternetGatewayDevice.",
        "Device..",
        ".",
    ] {
        let fault = m.get_parameter_names(bad, false).expect_err(bad);
        assert_eq!(fault.code, FaultCode::InvalidParameterName, "{bad}");
    }
}
