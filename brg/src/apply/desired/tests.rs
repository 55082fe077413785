use super::*;
use cwmp::model::{Model, NoBackend};
use cwmp::soap::{ParameterValue, ValueType};

/// A BRG model with Ethernet.Interface 1 = lan0, 2 = lsl0 (uplink), 3 = mgmt0, and
/// IP.Interface 1 over mgmt0 (the management stack), as brgd populates it.
fn model() -> Model<NoBackend> {
    let mut m = Model::new(cwmp::tr181::brg().expect("schema"), NoBackend);
    for name in ["lan0", "lsl0", "mgmt0"] {
        let n = m
            .add_instance("Device.Ethernet.Interface.", None)
            .expect("add interface");
        m.set(&format!("Device.Ethernet.Interface.{n}.Name"), name)
            .expect("name");
    }
    let ip = m.add_instance("Device.IP.Interface.", None).expect("ip");
    m.set(&format!("Device.IP.Interface.{ip}.Name"), "mgmt0")
        .expect("ip name");
    m
}

fn set(m: &mut Model<NoBackend>, pairs: &[(&str, &str)]) {
    let list: Vec<ParameterValue> = pairs
        .iter()
        .map(|(k, v)| {
            let mut pv = ParameterValue::new(*k, *v, ValueType::String);
            pv.value_type = None;
            pv
        })
        .collect();
    m.set_parameter_values(&list, "k").expect("set");
}

fn add(m: &mut Model<NoBackend>, table: &str) -> u32 {
    m.add_object(table, "k").expect("add object").0
}

fn plan(m: &Model<NoBackend>) -> (Desired, Vec<Problem>) {
    Desired::from_view(&m.view(), &Protected::default())
}

/// Bridge 1 with Port 1 = management, Port 2 = lan0; returns nothing.
fn lan_bridge(m: &mut Model<NoBackend>) {
    add(m, "Device.Bridging.Bridge.");
    add(m, "Device.Bridging.Bridge.1.Port.");
    add(m, "Device.Bridging.Bridge.1.Port.");
    set(
        m,
        &[
            ("Device.Bridging.Bridge.1.Enable", "true"),
            ("Device.Bridging.Bridge.1.Port.1.ManagementPort", "true"),
            ("Device.Bridging.Bridge.1.Port.1.Enable", "true"),
            (
                "Device.Bridging.Bridge.1.Port.1.LowerLayers",
                "Device.Bridging.Bridge.1.Port.2",
            ),
            ("Device.Bridging.Bridge.1.Port.2.Enable", "true"),
            (
                "Device.Bridging.Bridge.1.Port.2.LowerLayers",
                "Device.Ethernet.Interface.1",
            ),
        ],
    );
}

/// Port 3 over VLANTermination 1 (C) [over VLANTermination 2 (S)] over Link 1 over lsl0.
fn vlan_port(m: &mut Model<NoBackend>, c_vid: u16, s: Option<(u16, u16)>) {
    add(m, "Device.Bridging.Bridge.1.Port.");
    add(m, "Device.Ethernet.Link.");
    add(m, "Device.Ethernet.VLANTermination.");
    let c_vid = c_vid.to_string();
    let mut pairs = vec![
        ("Device.Ethernet.Link.1.Enable", "true".to_owned()),
        (
            "Device.Ethernet.Link.1.LowerLayers",
            "Device.Ethernet.Interface.2".to_owned(),
        ),
        (
            "Device.Ethernet.VLANTermination.1.Enable",
            "true".to_owned(),
        ),
        ("Device.Ethernet.VLANTermination.1.VLANID", c_vid),
        ("Device.Bridging.Bridge.1.Port.3.Enable", "true".to_owned()),
        (
            "Device.Bridging.Bridge.1.Port.3.LowerLayers",
            "Device.Ethernet.VLANTermination.1".to_owned(),
        ),
    ];
    match s {
        None => pairs.push((
            "Device.Ethernet.VLANTermination.1.LowerLayers",
            "Device.Ethernet.Link.1".to_owned(),
        )),
        Some((tpid, vid)) => {
            add(m, "Device.Ethernet.VLANTermination.");
            pairs.extend([
                (
                    "Device.Ethernet.VLANTermination.1.LowerLayers",
                    "Device.Ethernet.VLANTermination.2".to_owned(),
                ),
                (
                    "Device.Ethernet.VLANTermination.2.Enable",
                    "true".to_owned(),
                ),
                ("Device.Ethernet.VLANTermination.2.VLANID", vid.to_string()),
                ("Device.Ethernet.VLANTermination.2.TPID", tpid.to_string()),
                (
                    "Device.Ethernet.VLANTermination.2.LowerLayers",
                    "Device.Ethernet.Link.1".to_owned(),
                ),
            ]);
        }
    }
    let refs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    set(m, &refs);
}

fn messages(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| p.message.as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn lan_and_dot1q_lsl() {
    let mut m = model();
    lan_bridge(&mut m);
    vlan_port(&mut m, 100, None);
    let (d, problems) = plan(&m);
    assert!(problems.is_empty(), "{}", messages(&problems));
    assert_eq!(d.bridges.len(), 1);
    let br = &d.bridges[0];
    assert_eq!(
        (br.instance, br.name.as_str(), br.ageing_secs),
        (1, "br0", 300)
    );
    assert_eq!(
        br.members,
        vec![
            Member {
                port: 2,
                up: true,
                kind: MemberKind::Lan { dev: "lan0".into() }
            },
            Member {
                port: 3,
                up: true,
                kind: MemberKind::VlanLsl {
                    uplink: "lsl0".into(),
                    s_tag: None,
                    c_vid: 100
                }
            },
        ]
    );
    assert_eq!(d.lsls(), vec!["vlan:100".parse::<LslId>().expect("lsl")]);
}

#[test]
fn qinq_lsl_with_each_s_tpid() {
    for (tpid, text) in [(0x88a8, "qinq:10.200"), (0x8100, "qinq-8100:10.200")] {
        let mut m = model();
        lan_bridge(&mut m);
        vlan_port(&mut m, 200, Some((tpid, 10)));
        let (d, problems) = plan(&m);
        assert!(problems.is_empty(), "{}", messages(&problems));
        assert_eq!(
            d.lsls(),
            vec![text.parse::<LslId>().expect("lsl")],
            "TPID {tpid:#x}"
        );
    }
}

#[test]
fn bad_tpids_are_refused() {
    let mut m = model();
    lan_bridge(&mut m);
    vlan_port(&mut m, 200, Some((0x88a8, 10)));
    // An S-TPID on the inner termination, an unknown one on the outer.
    set(
        &mut m,
        &[
            ("Device.Ethernet.VLANTermination.1.TPID", "34984"),
            ("Device.Ethernet.VLANTermination.2.TPID", "1234"),
        ],
    );
    let (d, problems) = plan(&m);
    assert!(d.lsls().is_empty());
    assert_eq!(problems.len(), 1, "{}", messages(&problems));
    assert_eq!(
        problems[0].params,
        vec!["Device.Ethernet.VLANTermination.1.TPID".to_owned()]
    );
    set(
        &mut m,
        &[
            ("Device.Ethernet.VLANTermination.1.TPID", "33024"),
            ("Device.Ethernet.VLANTermination.2.TPID", "1234"),
        ],
    );
    let (_, problems) = plan(&m);
    assert_eq!(
        problems[0].params,
        vec!["Device.Ethernet.VLANTermination.2.TPID".to_owned()]
    );
    // The legacy 0x9100 S-tag is an S-tag like the others (the tagger writes it in-line).
    set(
        &mut m,
        &[("Device.Ethernet.VLANTermination.2.TPID", "37120")],
    );
    let (d, problems) = plan(&m);
    assert!(problems.is_empty(), "{}", messages(&problems));
    assert_eq!(d.lsls().len(), 1);
}

#[test]
fn three_stacked_terminations_are_refused() {
    let mut m = model();
    lan_bridge(&mut m);
    vlan_port(&mut m, 200, Some((0x88a8, 10)));
    add(&mut m, "Device.Ethernet.VLANTermination.");
    set(
        &mut m,
        &[
            ("Device.Ethernet.VLANTermination.3.VLANID", "5"),
            ("Device.Ethernet.VLANTermination.3.TPID", "34984"),
            (
                "Device.Ethernet.VLANTermination.3.LowerLayers",
                "Device.Ethernet.Link.1",
            ),
            (
                "Device.Ethernet.VLANTermination.2.LowerLayers",
                "Device.Ethernet.VLANTermination.3",
            ),
        ],
    );
    let (d, problems) = plan(&m);
    assert!(d.lsls().is_empty());
    assert_eq!(
        problems
            .iter()
            .map(|p| p.params[0].as_str())
            .collect::<Vec<_>>(),
        vec!["Device.Ethernet.VLANTermination.2.LowerLayers"],
        "{}",
        messages(&problems)
    );
}

#[test]
fn vxlan_lsl_over_the_management_interface() {
    let mut m = model();
    lan_bridge(&mut m);
    let a = m
        .add_instance("Device.IP.Interface.1.IPv4Address.", None)
        .expect("addr");
    m.set(
        &format!("Device.IP.Interface.1.IPv4Address.{a}.Enable"),
        true,
    )
    .expect("enable");
    m.set(
        &format!("Device.IP.Interface.1.IPv4Address.{a}.IPAddress"),
        "10.255.1.1",
    )
    .expect("address");
    add(&mut m, "Device.VXLAN.Tunnel.");
    add(&mut m, "Device.VXLAN.Tunnel.1.Interface.");
    add(&mut m, "Device.Bridging.Bridge.1.Port.");
    set(
        &mut m,
        &[
            ("Device.VXLAN.Tunnel.1.Enable", "true"),
            ("Device.VXLAN.Tunnel.1.RemoteEndpoints", "10.255.0.1"),
            ("Device.VXLAN.Tunnel.1.Interface.1.Enable", "true"),
            ("Device.VXLAN.Tunnel.1.Interface.1.VNI", "5001"),
            (
                "Device.VXLAN.Tunnel.1.Interface.1.LowerLayers",
                "Device.IP.Interface.1",
            ),
            ("Device.Bridging.Bridge.1.Port.3.Enable", "true"),
            (
                "Device.Bridging.Bridge.1.Port.3.LowerLayers",
                "Device.VXLAN.Tunnel.1.Interface.1",
            ),
        ],
    );
    let (d, problems) = plan(&m);
    assert!(problems.is_empty(), "{}", messages(&problems));
    let member = &d.bridges[0].members[1];
    assert_eq!(
        member.kind,
        MemberKind::Vxlan(VxlanSpec {
            name: "vx1-1".into(),
            vni: 5001,
            remote: "10.255.0.1".parse().expect("ip"),
            local: Some("10.255.1.1".parse().expect("ip")),
            underlay: Some("mgmt0".into()),
            dst_port: 4789,
            src_port: None,
        })
    );
    assert!(member.up);
    assert_eq!(
        d.lsls(),
        vec!["vxlan:5001@10.255.0.1".parse::<LslId>().expect("lsl")]
    );

    // Disabling the tunnel keeps the device but takes it down.
    set(&mut m, &[("Device.VXLAN.Tunnel.1.Enable", "false")]);
    assert!(!plan(&m).0.bridges[0].members[1].up);

    for (value, why) in [
        ("vg.example.net", "not a unicast IP address"),
        ("10.255.0.1,10.255.0.2", "one endpoint only"),
        ("224.0.0.5", "not a unicast IP address"),
    ] {
        set(&mut m, &[("Device.VXLAN.Tunnel.1.RemoteEndpoints", value)]);
        let (d, problems) = plan(&m);
        assert_eq!(d.bridges[0].members.len(), 1, "{value}");
        assert_eq!(problems.len(), 1, "{value}: {}", messages(&problems));
        assert!(problems[0].message.contains(why), "{}", problems[0].message);
    }
    set(
        &mut m,
        &[
            ("Device.VXLAN.Tunnel.1.RemoteEndpoints", "10.255.0.1"),
            ("Device.VXLAN.Tunnel.1.Interface.1.VNI", "-1"),
        ],
    );
    let (_, problems) = plan(&m);
    assert_eq!(
        problems[0].params,
        vec!["Device.VXLAN.Tunnel.1.Interface.1.VNI".to_owned()]
    );
}

#[test]
fn references_to_missing_or_wrong_objects() {
    let mut m = model();
    lan_bridge(&mut m);
    set(
        &mut m,
        &[(
            "Device.Bridging.Bridge.1.Port.2.LowerLayers",
            "Device.Ethernet.Interface.9",
        )],
    );
    let (d, problems) = plan(&m);
    assert!(d.bridges[0].members.is_empty());
    assert_eq!(problems.len(), 1);
    assert!(problems[0].dangling);
    assert_eq!(
        problems[0].params,
        vec!["Device.Bridging.Bridge.1.Port.2.LowerLayers".to_owned()]
    );
    for bad in [
        "Device.IP.Interface.1",
        "Device.Ethernet.Interface.1,Device.Ethernet.Interface.2",
        "Device.Ethernet.Interface.01",
        "garbage",
    ] {
        set(
            &mut m,
            &[("Device.Bridging.Bridge.1.Port.2.LowerLayers", bad)],
        );
        let (_, problems) = plan(&m);
        assert_eq!(problems.len(), 1, "{bad}");
        assert!(!problems[0].dangling, "{bad}");
    }
    // A trailing dot is accepted.
    set(
        &mut m,
        &[(
            "Device.Bridging.Bridge.1.Port.2.LowerLayers",
            "Device.Ethernet.Interface.1.",
        )],
    );
    let (d, problems) = plan(&m);
    assert!(problems.is_empty(), "{}", messages(&problems));
    assert_eq!(d.bridges[0].members[0].dev(), "lan0");
}

#[test]
fn one_interface_one_port_and_management_stays_out() {
    let mut m = model();
    lan_bridge(&mut m);
    add(&mut m, "Device.Bridging.Bridge.1.Port.");
    set(
        &mut m,
        &[(
            "Device.Bridging.Bridge.1.Port.3.LowerLayers",
            "Device.Ethernet.Interface.1",
        )],
    );
    let (d, problems) = plan(&m);
    assert_eq!(d.bridges[0].members.len(), 1);
    assert_eq!(problems.len(), 1, "{}", messages(&problems));
    assert_eq!(
        problems[0].params,
        vec![
            "Device.Bridging.Bridge.1.Port.3.LowerLayers".to_owned(),
            "Device.Bridging.Bridge.1.Port.2.LowerLayers".to_owned()
        ]
    );
    set(
        &mut m,
        &[(
            "Device.Bridging.Bridge.1.Port.3.LowerLayers",
            "Device.Ethernet.Interface.3",
        )],
    );
    let (_, problems) = plan(&m);
    assert!(
        problems[0].message.contains("management"),
        "{}",
        messages(&problems)
    );
    // Configured protection works without an IP.Interface too.
    set(
        &mut m,
        &[("Device.Bridging.Bridge.1.Port.3.LowerLayers", "")],
    );
    let protected = Protected {
        devices: vec!["lan0".into()],
    };
    let (d, problems) = Desired::from_view(&m.view(), &protected);
    assert!(d.bridges[0].members.is_empty());
    assert_eq!(problems.len(), 1);
}

#[test]
fn disabled_objects_and_unsupported_bridge_features() {
    let mut m = model();
    lan_bridge(&mut m);
    set(
        &mut m,
        &[("Device.Bridging.Bridge.1.Port.2.Enable", "false")],
    );
    assert!(!plan(&m).0.bridges[0].members[0].up);
    set(
        &mut m,
        &[
            ("Device.Bridging.Bridge.1.Port.2.Enable", "true"),
            ("Device.Ethernet.Interface.1.Enable", "false"),
        ],
    );
    assert!(!plan(&m).0.bridges[0].members[0].up);
    set(&mut m, &[("Device.Bridging.Bridge.1.AgingTime", "60")]);
    assert_eq!(plan(&m).0.bridges[0].ageing_secs, 60);
    set(&mut m, &[("Device.Bridging.Bridge.1.Enable", "false")]);
    assert!(plan(&m).0.bridges.is_empty());

    set(&mut m, &[("Device.Bridging.Bridge.1.Enable", "true")]);
    add(&mut m, "Device.Bridging.Bridge.1.VLAN.");
    assert!(plan(&m).1.is_empty(), "a disabled VLAN entry is harmless");
    set(
        &mut m,
        &[
            ("Device.Bridging.Bridge.1.VLAN.1.Enable", "true"),
            ("Device.Bridging.Bridge.1.Port.2.Type", "CustomerVLANPort"),
        ],
    );
    let (_, problems) = plan(&m);
    let params: Vec<&str> = problems.iter().map(|p| p.params[0].as_str()).collect();
    assert_eq!(
        params,
        vec![
            "Device.Bridging.Bridge.1.Port.2.Type",
            "Device.Bridging.Bridge.1.VLAN.1.Enable"
        ]
    );
}

#[test]
fn management_port_lists_only_its_bridge() {
    let mut m = model();
    lan_bridge(&mut m);
    set(
        &mut m,
        &[(
            "Device.Bridging.Bridge.1.Port.1.LowerLayers",
            "Device.Bridging.Bridge.1.Port.2,Device.Ethernet.Interface.2",
        )],
    );
    let (d, problems) = plan(&m);
    assert_eq!(d.bridges[0].members.len(), 1);
    assert_eq!(problems.len(), 1, "{}", messages(&problems));
    assert_eq!(
        problems[0].params,
        vec!["Device.Bridging.Bridge.1.Port.1.LowerLayers".to_owned()]
    );
}

#[test]
fn fresh_objects_are_accepted_silently() {
    // What an ACS does first: AddObject everywhere, values later.
    let mut m = model();
    add(&mut m, "Device.Bridging.Bridge.");
    add(&mut m, "Device.Bridging.Bridge.1.Port.");
    add(&mut m, "Device.Ethernet.Link.");
    add(&mut m, "Device.Ethernet.VLANTermination.");
    add(&mut m, "Device.VXLAN.Tunnel.");
    add(&mut m, "Device.VXLAN.Tunnel.1.Interface.");
    let (d, problems) = plan(&m);
    assert!(problems.is_empty(), "{}", messages(&problems));
    assert!(d.bridges.is_empty());
}

#[test]
fn interface_stack_lists_existing_references() {
    let mut m = model();
    lan_bridge(&mut m);
    vlan_port(&mut m, 200, Some((0x88a8, 10)));
    let stack = interface_stack(&m.view());
    let pairs: Vec<(&str, &str)> = stack
        .iter()
        .map(|(h, l)| (h.as_str(), l.as_str()))
        .collect();
    assert_eq!(
        pairs,
        vec![
            (
                "Device.Bridging.Bridge.1.Port.1",
                "Device.Bridging.Bridge.1.Port.2"
            ),
            (
                "Device.Bridging.Bridge.1.Port.2",
                "Device.Ethernet.Interface.1"
            ),
            (
                "Device.Bridging.Bridge.1.Port.3",
                "Device.Ethernet.VLANTermination.1"
            ),
            ("Device.Ethernet.Link.1", "Device.Ethernet.Interface.2"),
            (
                "Device.Ethernet.VLANTermination.1",
                "Device.Ethernet.VLANTermination.2"
            ),
            (
                "Device.Ethernet.VLANTermination.2",
                "Device.Ethernet.Link.1"
            ),
        ]
    );
}
