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

mod attributes;
mod get_names;
mod get_values;
mod hostile;
mod journal;
mod local;
mod objects;
mod persistence;
mod set_values;
