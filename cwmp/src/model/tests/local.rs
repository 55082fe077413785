//! Local operations and their errors.

use super::*;

#[test]
fn local_operations_and_their_errors() {
    let mut m = populated();
    assert_eq!(m.add_instance("Device.Ethernet.Interface.", Some(5)), Ok(5));
    assert_eq!(m.add_instance("Device.Ethernet.Interface.", None), Ok(6));
    assert_eq!(
        m.add_instance("Device.Ethernet.Interface.", Some(5)),
        Err(ModelError::InstanceExists(
            "Device.Ethernet.Interface.5.".into()
        ))
    );
    assert!(matches!(
        m.add_instance("Device.Ethernet.Interface.", Some(0)),
        Err(ModelError::TableFull(_))
    ));
    assert_eq!(m.delete_instance("Device.Ethernet.Interface.5."), Ok(()));
    assert_eq!(m.instances("Device.Ethernet.Interface."), Ok(vec![1, 6]));
    assert!(matches!(
        m.delete_instance("Device.Ethernet."),
        Err(ModelError::WrongKind { .. })
    ));
    assert!(matches!(
        m.delete_instance("Device.X.1."),
        Err(ModelError::NotFound(_))
    ));
    assert!(matches!(
        m.instances("Device.Ethernet."),
        Err(ModelError::WrongKind { .. })
    ));
    assert!(matches!(
        m.get("Device.Ethernet."),
        Err(ModelError::WrongKind { .. })
    ));
    assert!(matches!(m.get("Device.Nope"), Err(ModelError::NotFound(_))));
    assert!(matches!(
        m.set("Device.DeviceInfo.UpTime", 5u32),
        Err(ModelError::NotStored(_))
    ));
    assert!(matches!(
        m.set("Device.Bridging.BridgeNumberOfEntries", 5u32),
        Err(ModelError::NotStored(_))
    ));
    assert!(matches!(
        m.set("Device.Bridging.Bridge.1.Status", "Bogus"),
        Err(ModelError::InvalidValue { .. })
    ));
    assert!(matches!(
        m.set("Device.Bridging.Bridge.1.Enable", 1u32),
        Err(ModelError::InvalidValue { .. })
    ));
    m.backend_mut().live.clear();
    assert!(matches!(
        m.get("Device.DeviceInfo.UpTime"),
        Err(ModelError::Backend { .. })
    ));
    // The application may set read-only parameters.
    m.set("Device.DeviceInfo.Manufacturer", "NERG")
        .expect("set");
    assert_eq!(
        m.view().get("Device.DeviceInfo.Manufacturer"),
        Some("NERG".into())
    );
    assert_eq!(
        m.view().get("Device.DeviceInfo.UpTime"),
        None,
        "live: backend's own"
    );
    assert_eq!(m.view().instances("Device.Bridging.Bridge."), [1, 2]);
    assert!(m.view().exists("Device.Bridging.Bridge.1.Port.2."));
    assert!(!m.view().exists("Device.Bridging.Bridge.1.Port.3."));
}
