//! The definitions in this module against the Broadband Forum's TR-181 XML.
//!
//! The XML is the Broadband Forum's, copied unchanged into `cwmp/data/tr181/` with its
//! BSD-3-Clause licence (`cwmp/data/tr181/LICENSE`); the tests fail, not skip, without it.

use std::path::PathBuf;

use super::xml::{DataModel, XmlParam};
use super::*;
use crate::model::{ActiveNotify, Syntax};

fn xml_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/tr181")
}

fn official() -> DataModel {
    let dir = xml_dir();
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| {
        panic!(
            "the official TR-181 XML must be at {} (cwmp/data/tr181 in the repository): {e}",
            dir.display()
        )
    });
    let mut files = Vec::new();
    for entry in entries {
        let path = entry.expect("directory entry").path();
        if path.extension().is_some_and(|e| e == "xml") {
            let name = path
                .file_name()
                .expect("file name")
                .to_string_lossy()
                .into_owned();
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            files.push((name, text));
        }
    }
    assert!(
        files.iter().any(|(n, _)| n == "tr-181-2-cwmp.xml"),
        "tr-181-2-cwmp.xml missing from {}",
        dir.display()
    );
    DataModel::parse(files.iter().map(|(n, t)| (n.as_str(), t.as_str())))
        .unwrap_or_else(|e| panic!("official XML does not parse: {e}"))
}

/// Why our syntax is not the official one or a permitted narrowing of it.
fn syntax_mismatch(ours: &Syntax, theirs: &Syntax) -> Option<String> {
    if ours.base != theirs.base {
        return Some(format!("type {} != {}", ours.base, theirs.base));
    }
    match (ours.list, theirs.list) {
        (None, None) => {}
        (Some(a), Some(b)) => {
            let narrower =
                |a: Option<u32>, b: Option<u32>| b.is_none_or(|b| a.is_some_and(|a| a <= b));
            if !narrower(a.max_length, b.max_length) || !narrower(a.max_items, b.max_items) {
                return Some(format!("list {a:?} is wider than {b:?}"));
            }
            if a.min_items.unwrap_or(0) < b.min_items.unwrap_or(0) {
                return Some(format!("list {a:?} allows fewer items than {b:?}"));
            }
        }
        (a, b) => return Some(format!("list {a:?} != {b:?}")),
    }
    if let Some(max) = theirs.max_length
        && ours.max_length.is_none_or(|m| m > max)
    {
        return Some(format!("maxLength {:?} wider than {max}", ours.max_length));
    }
    if ours.min_length.unwrap_or(0) < theirs.min_length.unwrap_or(0) {
        return Some(format!(
            "minLength {:?} below {:?}",
            ours.min_length, theirs.min_length
        ));
    }
    if !theirs.ranges.is_empty()
        && (ours.ranges.is_empty()
            || !ours
                .ranges
                .iter()
                .all(|r| theirs.ranges.iter().any(|t| r.within(t))))
    {
        return Some(format!(
            "ranges {:?} not within {:?}",
            ours.ranges, theirs.ranges
        ));
    }
    if !theirs.enumeration.is_empty()
        && (ours.enumeration.is_empty()
            || !ours
                .enumeration
                .iter()
                .all(|e| theirs.enumeration.contains(e)))
    {
        return Some(format!(
            "enumeration {:?} not a subset of {:?}",
            ours.enumeration, theirs.enumeration
        ));
    }
    if theirs.enumeration.is_empty() && !ours.enumeration.is_empty() {
        return Some("enumeration where the XML has none".to_owned());
    }
    None
}

fn param_mismatch(path: &str, ours: &crate::model::ParamDef, theirs: &XmlParam) -> Vec<String> {
    let mut problems = Vec::new();
    if ours.access != theirs.access {
        problems.push(format!("access {:?} != {:?}", ours.access, theirs.access));
    }
    if let Some(why) = syntax_mismatch(&ours.syntax, &theirs.syntax) {
        problems.push(why);
    }
    if ours.forced_inform != theirs.forced_inform {
        problems.push(format!(
            "forcedInform {} != {}",
            ours.forced_inform, theirs.forced_inform
        ));
    }
    if ours.hidden != theirs.hidden {
        problems.push(format!("hidden {} != {}", ours.hidden, theirs.hidden));
    }
    let notify_ok = ours.active_notify == theirs.active_notify
        || (theirs.active_notify == ActiveNotify::CanDeny
            && ours.active_notify == ActiveNotify::Normal);
    if !notify_ok {
        problems.push(format!(
            "activeNotify {:?} != {:?}",
            ours.active_notify, theirs.active_notify
        ));
    }
    // Object-creation defaults apply to table instances.
    if path.contains("{i}")
        && let Some(default) = &theirs.default
    {
        let expected = ours.syntax.parse(default).ok();
        if ours.default.is_none() || ours.default != expected {
            problems.push(format!(
                "default {:?} != official {default:?}",
                ours.default
            ));
        }
    }
    problems
}

#[test]
fn every_exposed_parameter_and_object_matches_the_official_xml() {
    let dm = official();
    assert_eq!(dm.model_name(), "Device:2.19");
    let schema = brg().expect("BRG schema builds");
    let mut problems = Vec::new();
    for (path, ours) in schema.params() {
        match dm.param(path) {
            None => problems.push(format!("{path}: not in the official XML")),
            Some(theirs) => problems.extend(
                param_mismatch(path, ours, theirs)
                    .into_iter()
                    .map(|p| format!("{path}: {p}")),
            ),
        }
    }
    for (path, ours) in schema.objects() {
        let Some(theirs) = dm.object(path) else {
            problems.push(format!("{path}: object not in the official XML"));
            continue;
        };
        if theirs.table != path.ends_with("{i}.") {
            problems.push(format!("{path}: table-ness differs"));
        }
        if theirs.table {
            if ours.access != theirs.access {
                problems.push(format!(
                    "{path}: access {:?} != {:?}",
                    ours.access, theirs.access
                ));
            }
            if ours.num_entries_parameter != theirs.num_entries_parameter {
                problems.push(format!(
                    "{path}: numEntriesParameter {:?} != {:?}",
                    ours.num_entries_parameter, theirs.num_entries_parameter
                ));
            }
            // Every table is bounded (issue 15), within the XML's maxEntries where it has one.
            match (ours.max_entries, theirs.max_entries) {
                (None, _) => problems.push(format!("{path}: no max_entries")),
                (Some(0), _) => problems.push(format!("{path}: max_entries 0")),
                (Some(a), Some(b)) if a > b => {
                    problems.push(format!("{path}: max_entries {a} above maxEntries {b}"))
                }
                _ => {}
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    // The subset the issue names is all there.
    for path in [
        "Device.DeviceInfo.SoftwareVersion",
        "Device.ManagementServer.ConnectionRequestPassword",
        "Device.Bridging.Bridge.{i}.Port.{i}.ManagementPort",
        "Device.Bridging.Bridge.{i}.VLANPort.{i}.Untagged",
        "Device.Ethernet.Link.{i}.LowerLayers",
        "Device.Ethernet.VLANTermination.{i}.TPID",
        "Device.VXLAN.Tunnel.{i}.RemoteEndpoints",
        "Device.VXLAN.Tunnel.{i}.Interface.{i}.VNI",
        "Device.IP.Interface.{i}.IPv4Address.{i}.IPAddress",
        "Device.InterfaceStack.{i}.LowerLayer",
    ] {
        assert!(schema.param(path).is_some(), "{path} missing");
    }
    assert!(schema.params().count() > 100);
}

#[test]
fn the_comparison_catches_differences() {
    let dm = official();
    let theirs = dm
        .param("Device.Ethernet.VLANTermination.{i}.VLANID")
        .expect("official VLANID");
    let good = crate::model::ParamDef::read_write(Syntax::unsigned_int().range(1, 4094));
    assert!(param_mismatch("Device.Ethernet.VLANTermination.{i}.VLANID", &good, theirs).is_empty());
    let narrower = crate::model::ParamDef::read_write(Syntax::unsigned_int().range(2, 100));
    assert!(param_mismatch("x.{i}.y", &narrower, theirs).is_empty());
    for bad in [
        crate::model::ParamDef::read_only(Syntax::unsigned_int().range(1, 4094)),
        crate::model::ParamDef::read_write(Syntax::int().range(1, 4094)),
        crate::model::ParamDef::read_write(Syntax::unsigned_int().range(0, 4094)),
        crate::model::ParamDef::read_write(Syntax::unsigned_int()),
        crate::model::ParamDef::read_write(Syntax::unsigned_int().range(1, 4094).unbounded_list()),
        crate::model::ParamDef::read_write(Syntax::unsigned_int().range(1, 4094)).forced_inform(),
        crate::model::ParamDef::read_write(Syntax::unsigned_int().range(1, 4094)).hidden(),
    ] {
        assert!(!param_mismatch("x", &bad, theirs).is_empty(), "{bad:?}");
    }
    let status = dm
        .param("Device.Bridging.Bridge.{i}.Status")
        .expect("official status");
    let wrong_default =
        crate::model::ParamDef::read_only(Syntax::string().enumeration(&["Disabled", "Enabled"]))
            .default_value("Enabled");
    assert!(
        !param_mismatch("Device.Bridging.Bridge.{i}.Status", &wrong_default, status).is_empty()
    );
    let extra_enum =
        crate::model::ParamDef::read_only(Syntax::string().enumeration(&["Disabled", "Broken"]))
            .default_value("Disabled");
    assert!(!param_mismatch("Device.Bridging.Bridge.{i}.Status", &extra_enum, status).is_empty());
}

#[test]
fn official_definitions_read_as_published() {
    let dm = official();
    let url = dm.param("Device.ManagementServer.URL").expect("URL");
    assert_eq!(url.access, Access::ReadWrite);
    assert_eq!(
        url.syntax,
        Syntax::string_max(2048),
        "dataType URL via TR-106"
    );
    let key = dm
        .param("Device.ManagementServer.ParameterKey")
        .expect("key");
    assert!(key.forced_inform);
    assert_eq!(key.syntax.max_length, Some(32));
    let password = dm
        .param("Device.ManagementServer.ConnectionRequestPassword")
        .expect("password");
    assert!(password.hidden);
    let port_name = dm
        .param("Device.Bridging.Bridge.{i}.Port.{i}.Name")
        .expect("component Port inside Bridge.{i}.");
    assert_eq!(port_name.access, Access::ReadOnly);
    assert_eq!(port_name.syntax.max_length, Some(64));
    let status = dm
        .param("Device.Ethernet.Link.{i}.Status")
        .expect("BaseInterfaceParamsAddDefaults refinement");
    assert_eq!(status.default.as_deref(), Some("Down"));
    assert_eq!(status.syntax.enumeration.len(), 7);
    let vni = dm
        .param("Device.VXLAN.Tunnel.{i}.Interface.{i}.VNI")
        .expect("VNI");
    assert_eq!(vni.syntax.ranges.len(), 2);
    let alias = dm
        .param("Device.Bridging.Bridge.{i}.Alias")
        .expect("CWMP Alias component");
    assert_eq!(alias.access, Access::ReadWrite);
    assert!(
        dm.param("Device.IP.Interface.{i}.Stats.Reset")
            .is_some_and(|r| r.command),
        "InterfaceStatsReset aliased to the CWMP component"
    );
    let bridges = dm.object("Device.Bridging.Bridge.{i}.").expect("table");
    assert_eq!(
        bridges.num_entries_parameter.as_deref(),
        Some("BridgeNumberOfEntries")
    );
    assert!(dm.params().count() > 1500, "{}", dm.params().count());
    assert!(
        dm.missing()
            .iter()
            .all(|m| !m.contains("Bridging") && !m.contains("Ethernet")),
        "{:?}",
        dm.missing()
    );
}

#[test]
fn brg_schema_builds_a_working_model() {
    use crate::model::{Model, NoBackend};
    let mut model = Model::new(brg().expect("builds"), NoBackend);
    assert_eq!(
        model
            .get("Device.RootDataModelVersion")
            .expect("root")
            .to_string(),
        DATA_MODEL_VERSION
    );
    let (n, _) = model
        .add_object("Device.Bridging.Bridge.", "")
        .expect("bridge");
    let (p, _) = model
        .add_object(&format!("Device.Bridging.Bridge.{n}.Port."), "")
        .expect("port");
    let pvid = format!("Device.Bridging.Bridge.{n}.Port.{p}.PVID");
    assert_eq!(model.get(&pvid).expect("pvid").to_string(), "1");
    assert_eq!(
        model
            .get("Device.Bridging.BridgeNumberOfEntries")
            .expect("count")
            .to_string(),
        "1"
    );
    let names = model.get_parameter_names("", false).expect("gpn");
    assert!(names.iter().any(|i| i.name == pvid && i.writable));
    assert!(
        model.add_object("Device.Ethernet.Interface.", "").is_err(),
        "physical interfaces are the device's"
    );
}

/// Every table the ACS may grow answers AddObject with 9004 once full, per parent instance,
/// and the `Bridging.Max...Entries` parameters say the limits.
#[test]
fn every_writable_table_stops_at_its_limit_with_9004() {
    use crate::fault::FaultCode;
    use crate::model::{Model, NoBackend};
    let schema = brg().expect("builds");
    let writable: Vec<(String, u32)> = schema
        .objects()
        .filter(|(path, def)| path.ends_with("{i}.") && def.access == Access::ReadWrite)
        .map(|(path, def)| (path.to_owned(), def.max_entries.expect("bounded")))
        .collect();
    assert_eq!(writable.len(), 11, "{writable:?}");
    let mut model = Model::new(schema, NoBackend);
    for (schema_path, max) in &writable {
        // Two parents where the table is nested: each parent has its own limit.
        let parents: Vec<String> = match schema_path.rsplit_once(".{i}.") {
            Some((prefix, _)) if prefix.contains("{i}") => {
                let (outer, _) = prefix.rsplit_once(".{i}.").expect("nested");
                let outer_table = format!("{outer}.");
                (0..2)
                    .map(|_| {
                        let (n, _) = model.add_object(&outer_table, "").expect("parent");
                        format!("{outer}.{n}.{}.", &prefix[outer.len() + 5..])
                    })
                    .collect()
            }
            _ => vec![schema_path.trim_end_matches("{i}.").to_owned()],
        };
        for table in parents {
            for i in 0..*max {
                if let Err(f) = model.add_object(&table, "k") {
                    panic!("{table}: AddObject {} of {max} refused: {f:?}", i + 1);
                }
            }
            let fault = model.add_object(&table, "over").expect_err("full");
            assert_eq!(fault.code, FaultCode::ResourcesExceeded, "{table}");
            assert_eq!(model.instances(&table).expect("table").len(), *max as usize);
            assert_eq!(
                model.parameter_key(),
                "k",
                "a refused AddObject keeps the key"
            );
        }
        // Whatever the nested tables above needed, their parents are full now: empty the
        // model for the next table.
        model = Model::new(brg().expect("builds"), NoBackend);
    }
    for (name, max) in [
        ("MaxBridgeEntries", MAX_BRIDGES),
        ("MaxDBridgeEntries", MAX_BRIDGES),
        ("MaxQBridgeEntries", MAX_BRIDGES),
        ("MaxVLANEntries", MAX_BRIDGE_VLANS),
    ] {
        let value = model
            .get(&format!("Device.Bridging.{name}"))
            .expect("parameter");
        assert_eq!(value.as_u64(), Some(u64::from(max)), "{name}");
    }
    // The application's own tables refuse to grow past theirs too.
    for n in 1..=MAX_ETHERNET_INTERFACES {
        model
            .add_instance("Device.Ethernet.Interface.", Some(n))
            .expect("within the limit");
    }
    assert!(
        model
            .add_instance("Device.Ethernet.Interface.", None)
            .is_err()
    );
}
