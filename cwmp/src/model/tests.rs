//! Model tests: path resolution, each RPC's semantics and faults, atomicity and rollback,
//! attributes and notification, local operations, persistence, hostile input.

use std::collections::BTreeMap;

use super::*;
use crate::soap::ValueType;

/// A backend that serves live values from a map, records every hook call, and can be told
/// to reject.
#[derive(Debug, Default)]
struct TestBackend {
    live: BTreeMap<String, Value>,
    applied: Vec<Vec<Change>>,
    reject_validate: Option<Fault>,
    reject_apply: Option<Fault>,
    status: Option<Status>,
    /// A combination rule: these two paths may not both be true.
    exclusive: Option<(String, String)>,
}

impl Backend for TestBackend {
    fn read(&self, param: PathRef<'_>) -> Result<Value, Fault> {
        self.live
            .get(param.path)
            .cloned()
            .ok_or_else(|| Fault::new(FaultCode::InternalError))
    }

    fn validate(&self, view: &View<'_>, changes: &[Change]) -> Result<(), Fault> {
        if let Some((a, b)) = &self.exclusive
            && view.get(a) == Some(Value::Bool(true))
            && view.get(b) == Some(Value::Bool(true))
        {
            return Err(Fault::set_parameter_values(vec![
                SetParameterValuesFault::new(b.clone(), FaultCode::InvalidParameterValue),
            ]));
        }
        let _ = changes;
        self.reject_validate.clone().map_or(Ok(()), Err)
    }

    fn apply(&mut self, _view: &View<'_>, changes: &[Change]) -> Result<Status, Fault> {
        if let Some(fault) = self.reject_apply.clone() {
            return Err(fault);
        }
        self.applied.push(changes.to_vec());
        Ok(self.status.unwrap_or(Status::Applied))
    }
}

fn schema() -> Schema {
    let mut b = SchemaBuilder::new();
    b.object("Device.", ObjectDef::single())
        .param(
            "Device.RootDataModelVersion",
            ParamDef::read_only(Syntax::string_max(32))
                .forced_inform()
                .default_value("2.19"),
        )
        .object("Device.DeviceInfo.", ObjectDef::single())
        .param(
            "Device.DeviceInfo.Manufacturer",
            ParamDef::read_only(Syntax::string_max(64)),
        )
        .param(
            "Device.DeviceInfo.SoftwareVersion",
            ParamDef::read_only(Syntax::string_max(64))
                .forced_inform()
                .active_notify(ActiveNotify::ForceEnabled),
        )
        .param(
            "Device.DeviceInfo.UpTime",
            ParamDef::read_only(Syntax::unsigned_int())
                .active_notify(ActiveNotify::CanDeny)
                .live(),
        )
        .param(
            "Device.DeviceInfo.Temperature",
            ParamDef::read_only(Syntax::int()).live(),
        )
        .object("Device.ManagementServer.", ObjectDef::single())
        .param(
            "Device.ManagementServer.URL",
            ParamDef::read_write(Syntax::string_max(2048)),
        )
        .param(
            "Device.ManagementServer.Password",
            ParamDef::read_write(Syntax::string_max(256)).hidden(),
        )
        .param(
            "Device.ManagementServer.PeriodicInformEnable",
            ParamDef::read_write(Syntax::boolean()).default_value(true),
        )
        .param(
            "Device.ManagementServer.PeriodicInformInterval",
            ParamDef::read_write(Syntax::unsigned_int().min(1)).default_value(300u32),
        )
        .param(
            "Device.ManagementServer.ParameterKey",
            ParamDef::read_only(Syntax::string_max(32))
                .forced_inform()
                .active_notify(ActiveNotify::CanDeny),
        )
        .param(
            "Device.ManagementServer.ConnectionRequestURL",
            ParamDef::read_only(Syntax::string_max(2048))
                .forced_inform()
                .active_notify(ActiveNotify::ForceDefaultEnabled),
        )
        .object("Device.Bridging.", ObjectDef::single())
        .param(
            "Device.Bridging.BridgeNumberOfEntries",
            ParamDef::read_only(Syntax::unsigned_int()),
        )
        .object(
            "Device.Bridging.Bridge.{i}.",
            ObjectDef::table(Access::ReadWrite)
                .num_entries("BridgeNumberOfEntries")
                .max_entries(3),
        )
        .param(
            "Device.Bridging.Bridge.{i}.Enable",
            ParamDef::read_write(Syntax::boolean()).default_value(false),
        )
        .param(
            "Device.Bridging.Bridge.{i}.Status",
            ParamDef::read_only(Syntax::string().enumeration(&["Disabled", "Enabled", "Error"]))
                .default_value("Disabled"),
        )
        .param(
            "Device.Bridging.Bridge.{i}.PortNumberOfEntries",
            ParamDef::read_only(Syntax::unsigned_int()),
        )
        .object(
            "Device.Bridging.Bridge.{i}.Port.{i}.",
            ObjectDef::table(Access::ReadWrite).num_entries("PortNumberOfEntries"),
        )
        .param(
            "Device.Bridging.Bridge.{i}.Port.{i}.PVID",
            ParamDef::read_write(Syntax::int().range(1, 4094)).default_value(1),
        )
        .param(
            "Device.Bridging.Bridge.{i}.Port.{i}.LowerLayers",
            ParamDef::read_write(Syntax::string().list(1024)),
        )
        .object("Device.Ethernet.", ObjectDef::single())
        .object(
            "Device.Ethernet.Interface.{i}.",
            ObjectDef::table(Access::ReadOnly),
        )
        .param(
            "Device.Ethernet.Interface.{i}.Enable",
            ParamDef::read_write(Syntax::boolean()).default_value(true),
        )
        .param(
            "Device.Ethernet.Interface.{i}.Name",
            ParamDef::read_only(Syntax::string_max(64)),
        )
        .param(
            "Device.Ethernet.Interface.{i}.LastChange",
            ParamDef::read_only(Syntax::unsigned_int())
                .active_notify(ActiveNotify::CanDeny)
                .live(),
        );
    b.build().expect("test schema builds")
}

fn model() -> Model<TestBackend> {
    let mut m = Model::new(schema(), TestBackend::default());
    m.backend_mut()
        .live
        .insert("Device.DeviceInfo.UpTime".into(), Value::Unsigned(42));
    m.backend_mut()
        .live
        .insert("Device.DeviceInfo.Temperature".into(), Value::Int(-3));
    m
}

fn pv(name: &str, value: &str, ty: ValueType) -> ParameterValue {
    ParameterValue::new(name, value, ty)
}

fn names(list: &[ParameterInfo]) -> Vec<&str> {
    list.iter().map(|i| i.name.as_str()).collect()
}

fn value_of(m: &Model<TestBackend>, path: &str) -> String {
    m.get(path)
        .unwrap_or_else(|e| panic!("{path}: {e}"))
        .to_string()
}

fn strs(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| (*s).to_owned()).collect()
}

fn spa(name: &str, notification: Notification) -> SetParameterAttribute {
    SetParameterAttribute {
        name: name.to_owned(),
        notification_change: true,
        notification,
        access_list_change: false,
        access_list: Vec::new(),
    }
}

/// A model with bridges 1 and 2, bridge 1 with ports 1 and 2, and Ethernet.Interface.1.
fn populated() -> Model<TestBackend> {
    let mut m = model();
    assert_eq!(
        m.add_object("Device.Bridging.Bridge.", "k1"),
        Ok((1, Status::Applied))
    );
    assert_eq!(
        m.add_object("Device.Bridging.Bridge.", "k2"),
        Ok((2, Status::Applied))
    );
    assert_eq!(
        m.add_object("Device.Bridging.Bridge.1.Port.", "k3")
            .map(|r| r.0),
        Ok(1)
    );
    assert_eq!(
        m.add_object("Device.Bridging.Bridge.1.Port.", "k4")
            .map(|r| r.0),
        Ok(2)
    );
    assert_eq!(m.add_instance("Device.Ethernet.Interface.", None), Ok(1));
    m.set("Device.Ethernet.Interface.1.Name", "eth0")
        .expect("local set");
    m.backend_mut().live.insert(
        "Device.Ethernet.Interface.1.LastChange".into(),
        Value::Unsigned(5),
    );
    m.backend_mut().applied.clear();
    m
}

// -------------------------------------------------------------------------------------
// GetParameterNames

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

// -------------------------------------------------------------------------------------
// GetParameterValues

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

// -------------------------------------------------------------------------------------
// SetParameterValues

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

// -------------------------------------------------------------------------------------
// AddObject / DeleteObject

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

// -------------------------------------------------------------------------------------
// Attributes and notification

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

// -------------------------------------------------------------------------------------
// Local operations

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

// -------------------------------------------------------------------------------------
// Persistence

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

// -------------------------------------------------------------------------------------
// Hostile input

#[test]
fn hostile_names_never_panic() {
    let mut m = populated();
    let long = "Device.".repeat(10_000);
    let huge_instance = format!("Device.Bridging.Bridge.{}.", u64::MAX);
    let inputs = [
        "",
        ".",
        "..",
        "Device",
        "Device.",
        "Device..",
        "Device.{i}.",
        "Device.Bridging.Bridge.-1.",
        "Device.Bridging.Bridge.+1.",
        "Device.Bridging.Bridge.1 .",
        "Device.Bridging.Bridge.\u{661}.",
        huge_instance.as_str(),
        long.as_str(),
        "Device.Bridging.Bridge.1.Enable.Extra",
        "Device.ManagementServer.URL..",
        "\u{0}",
        "Device.\u{202e}",
    ];
    for input in inputs {
        for next_level in [false, true] {
            let _ = m.get_parameter_names(input, next_level);
        }
        let _ = m.get_parameter_values(&[input.to_owned()]);
        let _ = m.get_parameter_attributes(&[input.to_owned()]);
        let _ = m.set_parameter_values(&[pv(input, input, ValueType::Other(input.into()))], "");
        let _ = m.set_parameter_attributes(&[spa(input, Notification::Active)]);
        let _ = m.add_object(input, "");
        let _ = m.delete_object(input, "");
        let _ = m.get(input);
        let _ = m.set(input, input);
        let _ = m.instances(input);
        let _ = m.add_instance(input, Some(u32::MAX));
        let _ = m.delete_instance(input);
        let _ = m.restore(&format!(
            "cwmp-model 1\n{input}\nV {input}\nI {input}\nT {input} 1\nA {input} 2 x"
        ));
    }
    // Fault strings echo hostile names only in part.
    let fault = m
        .get_parameter_values(std::slice::from_ref(&long))
        .expect_err("unknown");
    assert!(fault.string.len() < 400);
    let fault = m
        .set_parameter_values(
            &[pv(
                "Device.Bridging.Bridge.1.Enable",
                &long,
                ValueType::Boolean,
            )],
            "",
        )
        .expect_err("bad value");
    assert!(fault.set_parameter_values_faults[0].string.len() < 200);
}

#[test]
fn instance_numbers_run_out_cleanly() {
    let mut m = populated();
    assert_eq!(
        m.add_instance("Device.Ethernet.Interface.", Some(u32::MAX - 1)),
        Ok(u32::MAX - 1)
    );
    assert!(matches!(
        m.add_instance("Device.Ethernet.Interface.", None),
        Err(ModelError::TableFull(_))
    ));
    assert!(matches!(
        m.add_instance("Device.Ethernet.Interface.", Some(u32::MAX)),
        Err(ModelError::TableFull(_))
    ));
}

// -------------------------------------------------------------------------------------
// Journal

#[test]
fn journal_holds_only_what_changed() {
    let mut m = populated();
    assert_eq!(m.take_journal(), Journal::Snapshot, "nothing stored yet");
    assert_eq!(m.take_journal(), Journal::Records(String::new()));
    m.add_object("Device.Bridging.Bridge.", "k5").expect("add");
    m.set_parameter_values(
        &[pv(
            "Device.Bridging.Bridge.3.Enable",
            "1",
            ValueType::Boolean,
        )],
        "k6",
    )
    .expect("spv");
    m.set("Device.Bridging.Bridge.3.Status", "Enabled")
        .expect("read-only state: not stored");
    m.set_parameter_attributes(&[spa("Device.ManagementServer.URL", Notification::Passive)])
        .expect("spa");
    m.delete_object("Device.Bridging.Bridge.1.", "k7")
        .expect("delete");
    assert_eq!(
        m.take_journal(),
        Journal::Records(
            "I Device.Bridging.Bridge.3.\nK k5\nV Device.Bridging.Bridge.3.Enable true\nK k6\n\
             A Device.ManagementServer.URL 1 \nD Device.Bridging.Bridge.1.\nK k7\n"
                .into()
        )
    );
    // A refused or rolled-back write leaves no record.
    m.backend_mut().reject_apply = Some(Fault::new(FaultCode::InternalError));
    assert!(m.add_object("Device.Bridging.Bridge.", "no").is_err());
    assert!(
        m.set_parameter_values(
            &[pv("Device.ManagementServer.URL", "x", ValueType::String)],
            "no"
        )
        .is_err()
    );
    m.backend_mut().reject_apply = None;
    assert!(m.add_object("Device.DeviceInfo.", "no").is_err());
    assert_eq!(m.take_journal(), Journal::Records(String::new()));
    // The tree replaced wholesale: a snapshot.
    let text = m.save();
    m.restore(&text).expect("restore");
    assert_eq!(m.take_journal(), Journal::Snapshot);
    // Records nobody takes are bounded: past the cap, a snapshot is asked for instead.
    for i in 0..5000 {
        let url = format!("http://acs-{i}.example/");
        m.set("Device.ManagementServer.URL", url.as_str())
            .expect("set");
        if i % 1000 == 999 {
            let taken = m.take_journal();
            assert!(matches!(&taken, Journal::Records(r) if r.lines().count() == 1000));
        }
    }
    for i in 0..MAX_PENDING_JOURNAL / 16 {
        let url = format!("http://acs-{i}.example/");
        m.set("Device.ManagementServer.URL", url.as_str())
            .expect("set");
    }
    assert_eq!(m.take_journal(), Journal::Snapshot);
}

/// A random walk of writes (ACS and local, successful, refused and rolled back), journaled
/// in batches: the last snapshot plus the journal since always rebuilds the same model.
#[test]
fn snapshot_and_journal_replay_rebuild_the_model() {
    let mut m = model();
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move |n: u64| {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (seed >> 33) % n
    };
    let mut snapshot = String::new();
    let mut journal = String::new();
    let mut snapshots = 0;
    for step in 0..4000 {
        let bridge = next(5) + 1;
        let port = next(4) + 1;
        let key = format!("k{step}");
        m.backend_mut().reject_apply =
            (next(10) == 0).then(|| Fault::new(FaultCode::InternalError));
        let _ = match next(11) {
            0 => m.add_object("Device.Bridging.Bridge.", &key).map(|_| ()),
            1 => m
                .add_object(&format!("Device.Bridging.Bridge.{bridge}.Port."), &key)
                .map(|_| ()),
            2 => m
                .delete_object(&format!("Device.Bridging.Bridge.{bridge}."), &key)
                .map(|_| ()),
            3 => m
                .delete_object(
                    &format!("Device.Bridging.Bridge.{bridge}.Port.{port}."),
                    &key,
                )
                .map(|_| ()),
            4 => m
                .set_parameter_values(
                    &[
                        pv(
                            &format!("Device.Bridging.Bridge.{bridge}.Port.{port}.PVID"),
                            &next(5000).to_string(),
                            ValueType::Int,
                        ),
                        pv(
                            &format!("Device.Bridging.Bridge.{bridge}.Enable"),
                            if next(2) == 0 { "true" } else { "0" },
                            ValueType::Boolean,
                        ),
                    ],
                    &key,
                )
                .map(|_| ()),
            5 => m
                .set_parameter_values(
                    &[pv(
                        "Device.ManagementServer.URL",
                        &format!("http://acs.example/\t{}\\n\n", next(100)),
                        ValueType::String,
                    )],
                    &key,
                )
                .map(|_| ()),
            6 => {
                let notification = [
                    Notification::Off,
                    Notification::Passive,
                    Notification::Active,
                ][next(3) as usize];
                m.set_parameter_attributes(&[SetParameterAttribute {
                    access_list_change: next(2) == 0,
                    access_list: vec!["Subscriber".into()],
                    ..spa(
                        [
                            "Device.ManagementServer.URL",
                            "Device.ManagementServer.",
                            "Device.DeviceInfo.SoftwareVersion",
                        ][next(3) as usize],
                        notification,
                    )
                }])
            }
            7 => m
                .add_instance("Device.Ethernet.Interface.", None)
                .map(|_| ())
                .map_err(|_| Fault::new(FaultCode::InternalError)),
            8 => m
                .delete_instance(&format!("Device.Ethernet.Interface.{}.", next(6) + 1))
                .map_err(|_| Fault::new(FaultCode::InternalError)),
            9 => m
                .set(
                    &format!("Device.Ethernet.Interface.{}.Enable", next(6) + 1),
                    next(2) == 0,
                )
                .map_err(|_| Fault::new(FaultCode::InternalError)),
            _ => m
                .set(
                    &format!("Device.Ethernet.Interface.{}.Name", next(6) + 1),
                    "eth",
                )
                .map_err(|_| Fault::new(FaultCode::InternalError)),
        };
        if next(3) == 0 {
            match m.take_journal() {
                Journal::Snapshot => {
                    snapshot = m.save();
                    journal.clear();
                    snapshots += 1;
                }
                Journal::Records(records) => journal.push_str(&records),
            }
            let mut rebuilt = model();
            rebuilt.restore(&snapshot).expect("snapshot");
            let report = rebuilt.replay(&journal);
            assert!(report.skipped.is_empty(), "step {step}: {report:?}");
            assert_eq!(rebuilt.save(), m.save(), "step {step}, journal:\n{journal}");
        }
    }
    assert_eq!(snapshots, 1, "only the first store is a snapshot");
    assert!(
        journal.lines().count() > 1000,
        "{}",
        journal.lines().count()
    );
}

#[test]
fn replay_skips_records_that_do_not_fit() {
    let mut m = populated();
    assert_eq!(m.take_journal(), Journal::Snapshot);
    let before = m.save();
    let report = m.replay(
        "D Device.Bridging.Bridge.9.\nD Device.Bridging.\nD Device.Bridging.Bridge.1\n\
         D \nI Device.Bridging.Bridge.0.\nI Device.DeviceInfo.\nV Device.Nope 1\nX what\n\
         A Device.ManagementServer.URL 9 \nK bad\\escape\n\n",
    );
    assert_eq!(report.skipped.len(), 10, "{report:?}");
    assert_eq!(m.save(), before, "nothing applied");
    let report = m.replay("D Device.Bridging.Bridge.1.\nK after\n");
    assert!(report.skipped.is_empty(), "{report:?}");
    assert_eq!(m.instances("Device.Bridging.Bridge."), Ok(vec![2]));
    assert_eq!(m.parameter_key(), "after");
    assert_eq!(
        m.take_journal(),
        Journal::Records(String::new()),
        "replay journals nothing"
    );
}
