//! Issue 17: what brgd reports is what Linux does. brgd runs in a network namespace with
//! `--apply linux`, the test ACS on that namespace's loopback.
//!
//! ```text
//!  peer ns: p0 ---- lan0  BRG ns (brgd, ACS on 127.0.0.1)
//!           m0 ---- mgmt0 10.255.1.1/16 (management interface, VXLAN underlay)
//! ```

use std::time::Instant;

use nerg_tests::{Netns, netns::veth, require_root};

use super::*;

/// How soon after a carrier change its VALUE CHANGE session must have ended.
const ACTIVE_NOTIFICATION_WITHIN: Duration = Duration::from_secs(3);

/// The BRG and its peer namespace, the ACS inside the BRG's.
fn live_rig(tag: &str) -> (Netns, Netns, Acs) {
    require_root();
    let brg = Netns::new(tag);
    let peer = Netns::new("peer");
    veth(&brg, "lan0", &peer, "p0");
    veth(&brg, "mgmt0", &peer, "m0");
    brg.addr_add("mgmt0", "10.255.1.1/16");
    peer.addr_add("m0", "10.255.0.1/16");
    let acs = brg.run(|| Acs::start(AcsConfig::default()));
    (brg, peer, acs)
}

fn brgd_in(brg: &Netns, tag: &str) -> Brgd {
    Brgd::new(tag)
        .in_netns(brg)
        .log_level("info")
        .arg("--interface")
        .arg("lan0")
        .arg("--mgmt-interface")
        .arg("mgmt0")
}

fn add(object: &str) -> AcsRequest {
    rpc(Body::AddObject(AddObject {
        object_name: object.into(),
        parameter_key: "add".into(),
    }))
}

fn mac_text(mac: [u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Items 1, 2 and 7: Status and MACAddress come from Linux; taking the port's carrier down
/// and up raises an active VALUE CHANGE Inform carrying the new Status within seconds,
/// and the log at the default level says which events each Inform carries and nothing
/// about netlink attribute sizes.
#[test]
fn carrier_changes_raise_value_change_with_the_new_status() {
    let (brg, peer, acs) = live_rig("cwlive");
    let status = "Device.Ethernet.Interface.1.Status";
    acs.script(vec![
        notify(status, Notification::Active),
        gpv(&["Device.Ethernet.Interface.1."]),
    ]);
    let mut brgd = brgd_in(&brg, "cwmp-live");
    brgd.start(&acs.url());
    let first = session(&acs, 1);
    assert!(!first.faulted(), "{first:?}");
    let answer = &first.answers[1].body;
    assert_eq!(value_of(answer, status), "Up");
    assert_eq!(
        value_of(answer, "Device.Ethernet.Interface.1.MACAddress"),
        mac_text(brg.mac("lan0"))
    );

    for (action, want) in [("down", "not Up"), ("up", "Up")] {
        let n = acs.sessions().len() + 1;
        let changed = Instant::now();
        peer.ip(&["link", "set", "p0", action]);
        let s = session(&acs, n);
        let took = changed.elapsed();
        assert!(
            s.event_codes().contains(&"4 VALUE CHANGE".to_owned()),
            "carrier {action}: {s:?}"
        );
        let informed = s
            .param(status)
            .unwrap_or_else(|| panic!("{status} not informed: {s:?}"));
        match want {
            "Up" => assert_eq!(informed, "Up"),
            _ => assert!(
                ["Down", "LowerLayerDown"].contains(&informed),
                "carrier {action}: {informed}"
            ),
        }
        assert!(
            took < ACTIVE_NOTIFICATION_WITHIN,
            "carrier {action}: the VALUE CHANGE session ended {took:?} after the link event"
        );
    }
    brgd.assert_running();
    let log = brgd.log();
    assert!(
        log.contains(r#"events=["4 VALUE CHANGE"]"#),
        "the Inform log line names the events it carries:\n{log}"
    );
    assert!(
        !log.contains("IFLA_INET6_CONF") && !log.contains("netlink_packet_route"),
        "netlink parser warnings at the default level:\n{log}"
    );
}

/// Item 4: the management interface is `Device.IP.Interface.1` with its Linux address,
/// and a VXLAN tunnel interface bound to it by `LowerLayers` takes its device and address
/// (`dev mgmt0 local 10.255.1.1`) from the model. Item 3 on the way: the interface stack is
/// right in the session that provisioned the LSL.
#[test]
fn vxlan_tunnel_binds_to_the_management_ip_interface() {
    let (brg, _peer, acs) = live_rig("cwvx");
    brg.addr_add_nodad("mgmt0", "2001:db8::1/64");
    let ip = "Device.IP.Interface.1.";
    acs.script(vec![
        gpv(&["Device.IP."]),
        add("Device.Bridging.Bridge."),
        add("Device.Bridging.Bridge.1.Port."),
        add("Device.Bridging.Bridge.1.Port."),
        add("Device.Bridging.Bridge.1.Port."),
        add("Device.VXLAN.Tunnel."),
        add("Device.VXLAN.Tunnel.1.Interface."),
        spv(
            &[
                (
                    "Device.Bridging.Bridge.1.Enable",
                    "true",
                    ValueType::Boolean,
                ),
                (
                    "Device.Bridging.Bridge.1.Port.1.ManagementPort",
                    "true",
                    ValueType::Boolean,
                ),
                (
                    "Device.Bridging.Bridge.1.Port.1.Enable",
                    "true",
                    ValueType::Boolean,
                ),
                (
                    "Device.Bridging.Bridge.1.Port.1.LowerLayers",
                    "Device.Bridging.Bridge.1.Port.2,Device.Bridging.Bridge.1.Port.3",
                    ValueType::String,
                ),
                (
                    "Device.Bridging.Bridge.1.Port.2.Enable",
                    "true",
                    ValueType::Boolean,
                ),
                (
                    "Device.Bridging.Bridge.1.Port.2.LowerLayers",
                    "Device.Ethernet.Interface.1",
                    ValueType::String,
                ),
                (
                    "Device.Bridging.Bridge.1.Port.3.Enable",
                    "true",
                    ValueType::Boolean,
                ),
                (
                    "Device.Bridging.Bridge.1.Port.3.LowerLayers",
                    "Device.VXLAN.Tunnel.1.Interface.1",
                    ValueType::String,
                ),
                ("Device.VXLAN.Tunnel.1.Enable", "true", ValueType::Boolean),
                (
                    "Device.VXLAN.Tunnel.1.RemoteEndpoints",
                    "10.255.0.1",
                    ValueType::String,
                ),
                (
                    "Device.VXLAN.Tunnel.1.Interface.1.Enable",
                    "true",
                    ValueType::Boolean,
                ),
                (
                    "Device.VXLAN.Tunnel.1.Interface.1.VNI",
                    "5003",
                    ValueType::Int,
                ),
                (
                    "Device.VXLAN.Tunnel.1.Interface.1.LowerLayers",
                    "Device.IP.Interface.1",
                    ValueType::String,
                ),
            ],
            "vxlan",
        ),
        gpv(&[
            "Device.InterfaceStackNumberOfEntries",
            "Device.InterfaceStack.",
        ]),
    ]);
    let mut brgd = brgd_in(&brg, "cwmp-vxlan");
    brgd.start(&acs.url());
    let s = session(&acs, 1);
    assert!(!s.faulted(), "{s:?}");
    let ips = &s.answers[0].body;
    assert_eq!(value_of(ips, "Device.IP.InterfaceNumberOfEntries"), "1");
    assert_eq!(value_of(ips, &format!("{ip}Name")), "mgmt0");
    assert_eq!(value_of(ips, &format!("{ip}Status")), "Up");
    assert_eq!(
        value_of(ips, &format!("{ip}IPv4Address.1.IPAddress")),
        "10.255.1.1"
    );
    assert_eq!(
        value_of(ips, &format!("{ip}IPv4Address.1.SubnetMask")),
        "255.255.0.0"
    );
    assert_eq!(value_of(ips, &format!("{ip}IPv4Address.1.Enable")), "true");
    // IPv6 too: the configured address, and the link-local one as well-known.
    let v6 = values(ips);
    let row_of = |address: &str| {
        let (name, _) = v6
            .iter()
            .find(|(n, v)| n.ends_with(".IPAddress") && n.contains("IPv6Address") && v == address)
            .unwrap_or_else(|| panic!("{address} not published: {v6:?}"));
        name.trim_end_matches("IPAddress").to_owned()
    };
    let row = row_of("2001:db8::1");
    assert_eq!(value_of(ips, &format!("{row}Origin")), "Static");
    assert_eq!(value_of(ips, &format!("{row}IPAddressStatus")), "Preferred");
    assert!(
        v6.iter()
            .any(|(n, v)| n.ends_with("Origin") && v == "WellKnown"),
        "no link-local address: {v6:?}"
    );

    let stack = values(&s.answers[8].body);
    let rows: Vec<(String, String)> = (1..=8)
        .filter_map(|n| {
            let get = |p: &str| {
                stack
                    .iter()
                    .find(|(name, _)| name == &format!("Device.InterfaceStack.{n}.{p}"))
                    .map(|(_, v)| v.clone())
            };
            Some((get("HigherLayer")?, get("LowerLayer")?))
        })
        .collect();
    for want in [
        (
            "Device.Bridging.Bridge.1.Port.1",
            "Device.Bridging.Bridge.1.Port.3",
        ),
        (
            "Device.Bridging.Bridge.1.Port.3",
            "Device.VXLAN.Tunnel.1.Interface.1",
        ),
        ("Device.VXLAN.Tunnel.1.Interface.1", "Device.IP.Interface.1"),
    ] {
        assert!(
            rows.contains(&(want.0.to_owned(), want.1.to_owned())),
            "{want:?} missing from the interface stack read in the provisioning session: {stack:?}"
        );
    }
    assert_eq!(
        value_of(&s.answers[8].body, "Device.InterfaceStackNumberOfEntries"),
        rows.len().to_string()
    );

    let out = brg.ip(&["-d", "-j", "link", "show", "vx1-1"]);
    let links: serde_json::Value = serde_json::from_slice(&out.stdout).expect("ip -j");
    let data = &links[0]["linkinfo"]["info_data"];
    assert_eq!(data["id"].as_u64(), Some(5003), "{links}");
    assert_eq!(data["local"].as_str(), Some("10.255.1.1"), "{links}");
    assert_eq!(data["link"].as_str(), Some("mgmt0"), "{links}");
    assert_eq!(data["remote"].as_str(), Some("10.255.0.1"), "{links}");
    brgd.assert_running();
}

/// Item 3: `Device.InterfaceStack` is right in the session that changed `LowerLayers` (it
/// was rewritten only when brgd restarted). The TR-069 side alone: no root needed.
#[test]
fn interface_stack_is_right_after_add_object() {
    let acs = Acs::start(AcsConfig::default());
    acs.script(vec![
        add("Device.Bridging.Bridge."),
        add("Device.Bridging.Bridge.1.Port."),
        add("Device.Bridging.Bridge.1.Port."),
        spv(
            &[
                (
                    "Device.Bridging.Bridge.1.Port.1.LowerLayers",
                    "Device.Bridging.Bridge.1.Port.2",
                    ValueType::String,
                ),
                (
                    "Device.Bridging.Bridge.1.Port.2.LowerLayers",
                    "Device.Ethernet.Interface.1",
                    ValueType::String,
                ),
            ],
            "stack",
        ),
        gpv(&["Device.InterfaceStack."]),
        rpc(Body::DeleteObject(DeleteObject {
            object_name: "Device.Bridging.Bridge.1.Port.2.".into(),
            parameter_key: "del".into(),
        })),
        gpv(&["Device.InterfaceStackNumberOfEntries"]),
    ]);
    let mut brgd = Brgd::new("cwmp-stack").arg("--interface").arg("lan0");
    brgd.start(&acs.url());
    let s = session(&acs, 1);
    assert!(!s.faulted(), "{s:?}");
    let mut stack = values(&s.answers[4].body);
    stack.sort();
    assert_eq!(
        stack,
        [
            (
                "Device.InterfaceStack.1.HigherLayer".to_owned(),
                "Device.Bridging.Bridge.1.Port.1".to_owned()
            ),
            (
                "Device.InterfaceStack.1.LowerLayer".to_owned(),
                "Device.Bridging.Bridge.1.Port.2".to_owned()
            ),
            (
                "Device.InterfaceStack.2.HigherLayer".to_owned(),
                "Device.Bridging.Bridge.1.Port.2".to_owned()
            ),
            (
                "Device.InterfaceStack.2.LowerLayer".to_owned(),
                "Device.Ethernet.Interface.1".to_owned()
            ),
        ]
    );
    // The deleted port's rows go with it (its reference from Port.1 reads empty).
    assert_eq!(
        value_of(&s.answers[6].body, "Device.InterfaceStackNumberOfEntries"),
        "0"
    );
    brgd.assert_running();
}

/// Item 8: without `--acs-url`, brgd takes the ACS URL from DHCP option 43 (sub-option 1,
/// TR-069 3.1) on its management interface: busybox udhcpd serves it, busybox udhcpc
/// (`-O 43 -V dslforum.org`) fetches it and its hook writes it where brgd reads it.
#[test]
fn acs_url_from_dhcp_option_43() {
    require_root();
    let brg = Netns::new("cwo43");
    let server = Netns::new("dhcpsrv");
    veth(&server, "d0", &brg, "mgmt0");
    server.addr_add("d0", "10.77.0.1/24");
    let acs = server.run(|| {
        Acs::start_at(
            "10.77.0.1:0".parse().expect("address"),
            AcsConfig::default(),
        )
    });
    let url = acs.url();
    acs.script(vec![gpv(&["Device.ManagementServer.URL"])]);
    let brgd = Brgd::new("cwmp-o43");
    let option43 = brgd.dir.join("option43");
    let mut brgd = brgd
        .in_netns(&brg)
        .log_level("info")
        .arg("--mgmt-interface")
        .arg("mgmt0")
        .arg("--dhcp-option43-file")
        .arg(option43.to_str().expect("utf-8 path"));
    let url_hex: String = url.bytes().map(|b| format!("{b:02x}")).collect();
    let conf = brgd.dir.join("udhcpd.conf");
    std::fs::write(
        &conf,
        format!(
            "start 10.77.0.100\nend 10.77.0.150\ninterface d0\nlease_file {leases}\n\
             pidfile {pid}\nopt subnet 255.255.255.0\nopt 0x2b 01{len:02x}{url_hex}\n",
            leases = brgd.dir.join("leases").display(),
            pid = brgd.dir.join("udhcpd.pid").display(),
            len = url.len(),
        ),
    )
    .expect("udhcpd.conf");
    std::fs::write(brgd.dir.join("leases"), "").expect("lease file");
    let _udhcpd = server.spawn(
        "udhcpd",
        server.command("busybox").args(["udhcpd", "-f"]).arg(&conf),
    );
    // The management interface's DHCP client and its hook (what a BRG's firmware runs).
    let hook = brgd.script(
        "udhcpc-hook",
        &format!(
            "[ \"$1\" = bound ] || exit 0\nip addr add \"$ip/$subnet\" dev \"$interface\"\n\
             printf %s \"$opt43\" > {file}.tmp && mv {file}.tmp {file}",
            file = option43.display()
        ),
    );
    brg.exec(
        "busybox",
        &[
            "udhcpc",
            "-i",
            "mgmt0",
            "-f",
            "-q",
            "-n",
            "-t",
            "10",
            "-T",
            "1",
            "-O",
            "43",
            "-V",
            "dslforum.org",
            "-s",
            hook.to_str().expect("utf-8 path"),
        ],
    );
    brgd.start("");
    let first = session(&acs, 1);
    assert!(first.has_event("0 BOOTSTRAP", None), "{first:?}");
    assert_eq!(
        value_of(&first.answers[0].body, "Device.ManagementServer.URL"),
        url
    );
    brgd.assert_running();
    assert!(
        brgd.log().contains("ACS URL from DHCP option 43"),
        "{}",
        brgd.log()
    );
}
