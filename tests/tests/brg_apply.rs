//! The BRG's Linux applier, driven exactly as an ACS drives brgd's model
//! (SetParameterValues, AddObject, DeleteObject), checked in the kernel: `ip -d -j link`,
//! `bridge -j link`, and frames captured on the far side of the uplink.
//!
//! ```text
//!  home ns: h0 ---- lan0  BRG ns  br0 [lan0, lsl0 | vx1-1]      peer ns (access side)
//!                         lsl0 ---------------------------------- acc0  (tags captured here)
//!                         mgmt0 10.255.1.1/16 (management, VXLAN underlay) -- m0 10.255.0.1/16
//! ```

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::Duration;

use brg::apply::{
    ApplierConfig, CreatedKind, LinuxApplier, inventory, publish_interface_stack, publish_status,
};
use brg::tagger::Tags;
use cwmp::fault::{Fault, FaultCode};
use cwmp::model::Model;
use cwmp::soap::{ParameterValue, Status, ValueType};
use nerg_abi::brg::TagCounter;
use nerg_tests::{Netns, frames, netns::veth, raw::RawSocket, require_root, wait_until};
use serde_json::Value as Json;

const HOME_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x10];
const BRG_VTEP: &str = "10.255.1.1";
const VG_VTEP: &str = "10.255.0.1";

/// The namespaces and the model under test.
struct Rig {
    home: Netns,
    brg: Netns,
    peer: Netns,
    model: Model<LinuxApplier>,
}

/// A BRG with LAN port lan0, uplink lsl0 and management interface mgmt0, and the model
/// brgd would populate: Ethernet.Interface 1 = lan0, 2 = lsl0, 3 = mgmt0; IP.Interface 1
/// over mgmt0 with 10.255.1.1.
fn rig(state_dir: Option<PathBuf>) -> Rig {
    require_root();
    let home = Netns::new("home");
    let brg = Netns::new("brg");
    let peer = Netns::new("peer");
    for ns in [&home, &brg, &peer] {
        ns.disable_ipv6();
    }
    veth(&home, "h0", &brg, "lan0");
    veth(&brg, "lsl0", &peer, "acc0");
    veth(&brg, "mgmt0", &peer, "m0");
    brg.addr_add("mgmt0", &format!("{BRG_VTEP}/16"));
    peer.addr_add("m0", &format!("{VG_VTEP}/16"));
    home.ip(&["link", "set", "h0", "address", &mac_text(HOME_MAC)]);
    let applier = brg.run(|| {
        LinuxApplier::new(ApplierConfig {
            state_dir,
            protected: vec!["mgmt0".into()],
        })
        .expect("applier")
    });
    let mut model = Model::new(cwmp::tr181::brg().expect("schema"), applier);
    populate(&mut model);
    Rig {
        home,
        brg,
        peer,
        model,
    }
}

/// What brgd's inventory puts in the model at start.
fn populate(model: &mut Model<LinuxApplier>) {
    inventory(model, &["lan0", "lsl0", "mgmt0"]).expect("inventory");
    let ip = model
        .add_instance("Device.IP.Interface.", None)
        .expect("ip");
    model
        .set(&format!("Device.IP.Interface.{ip}.Name"), "mgmt0")
        .expect("ip name");
    let a = model
        .add_instance(&format!("Device.IP.Interface.{ip}.IPv4Address."), None)
        .expect("address");
    let addr = format!("Device.IP.Interface.{ip}.IPv4Address.{a}.");
    model.set(&format!("{addr}Enable"), true).expect("enable");
    model
        .set(&format!("{addr}IPAddress"), BRG_VTEP)
        .expect("address");
    model.backend().refresh(&model.view());
}

fn mac_text(mac: [u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

impl Rig {
    /// SetParameterValues as an ACS sends it.
    fn spv(&mut self, pairs: &[(&str, &str)], key: &str) -> Result<Status, Fault> {
        let list: Vec<ParameterValue> = pairs
            .iter()
            .map(|(name, value)| {
                let mut pv = ParameterValue::new(*name, *value, ValueType::String);
                // The model checks the value against the parameter's own type.
                pv.value_type = None;
                pv
            })
            .collect();
        self.model.set_parameter_values(&list, key)
    }

    fn add(&mut self, table: &str) -> u32 {
        let (n, status) = self.model.add_object(table, "add").expect("AddObject");
        assert_eq!(status, Status::Applied);
        n
    }

    /// Bridge 1: Port 1 management, Port 2 over lan0 (Ethernet.Interface.1).
    fn lan_bridge(&mut self) {
        assert_eq!(self.add("Device.Bridging.Bridge."), 1);
        for want in 1..=2 {
            assert_eq!(self.add("Device.Bridging.Bridge.1.Port."), want);
        }
        self.spv(
            &[
                ("Device.Bridging.Bridge.1.Enable", "true"),
                ("Device.Bridging.Bridge.1.Standard", "802.1D-2004"),
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
            "lan",
        )
        .expect("LAN bridge");
    }

    /// Port 3 over VLANTermination 1 (C-VID) [over VLANTermination 2 (S-tag)] over Link 1
    /// over lsl0.
    fn vlan_lsl(&mut self, c_vid: u16, s_tag: Option<(u16, u16)>) {
        assert_eq!(self.add("Device.Bridging.Bridge.1.Port."), 3);
        self.add("Device.Ethernet.Link.");
        self.add("Device.Ethernet.VLANTermination.");
        let c_vid = c_vid.to_string();
        let mut pairs: Vec<(&str, String)> = vec![
            ("Device.Ethernet.Link.1.Enable", "true".into()),
            (
                "Device.Ethernet.Link.1.LowerLayers",
                "Device.Ethernet.Interface.2".into(),
            ),
            ("Device.Ethernet.VLANTermination.1.Enable", "true".into()),
            ("Device.Ethernet.VLANTermination.1.VLANID", c_vid),
            ("Device.Ethernet.VLANTermination.1.TPID", "33024".into()),
            ("Device.Bridging.Bridge.1.Port.3.Enable", "true".into()),
            (
                "Device.Bridging.Bridge.1.Port.3.LowerLayers",
                "Device.Ethernet.VLANTermination.1".into(),
            ),
        ];
        match s_tag {
            None => pairs.push((
                "Device.Ethernet.VLANTermination.1.LowerLayers",
                "Device.Ethernet.Link.1".into(),
            )),
            Some((tpid, vid)) => {
                self.add("Device.Ethernet.VLANTermination.");
                pairs.extend([
                    (
                        "Device.Ethernet.VLANTermination.1.LowerLayers",
                        "Device.Ethernet.VLANTermination.2".into(),
                    ),
                    ("Device.Ethernet.VLANTermination.2.Enable", "true".into()),
                    ("Device.Ethernet.VLANTermination.2.VLANID", vid.to_string()),
                    ("Device.Ethernet.VLANTermination.2.TPID", tpid.to_string()),
                    (
                        "Device.Ethernet.VLANTermination.2.LowerLayers",
                        "Device.Ethernet.Link.1".into(),
                    ),
                ]);
            }
        }
        let refs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
        self.spv(&refs, "lsl").expect("VLAN LSL");
    }

    /// Port 3 over VXLAN.Tunnel.1.Interface.1 (VNI) over IP.Interface.1 (mgmt0).
    fn vxlan_lsl(&mut self, vni: u32) {
        assert_eq!(self.add("Device.Bridging.Bridge.1.Port."), 3);
        self.add("Device.VXLAN.Tunnel.");
        self.add("Device.VXLAN.Tunnel.1.Interface.");
        let vni = vni.to_string();
        self.spv(
            &[
                ("Device.VXLAN.Tunnel.1.Enable", "true"),
                ("Device.VXLAN.Tunnel.1.RemoteEndpoints", VG_VTEP),
                ("Device.VXLAN.Tunnel.1.RemotePort", "4789"),
                ("Device.VXLAN.Tunnel.1.Interface.1.Enable", "true"),
                ("Device.VXLAN.Tunnel.1.Interface.1.VNI", &vni),
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
            "vxlan",
        )
        .expect("VXLAN LSL");
    }

    /// `ip -d -j link show` in the BRG, once two reads a little apart agree (carrier and
    /// operational state settle asynchronously after a change).
    fn links(&self) -> Json {
        let read = || -> Json {
            let out = self.brg.ip(&["-d", "-j", "link", "show"]);
            let mut json = serde_json::from_slice(&out.stdout).expect("ip -j output");
            strip_timers(&mut json);
            json
        };
        let mut last = read();
        let mut settled = None;
        wait_until("links to settle", Duration::from_secs(10), || {
            std::thread::park_timeout(Duration::from_millis(100));
            let now = read();
            let same = now == last;
            last = now.clone();
            if same {
                settled = Some(now);
            }
            same
        });
        settled.expect("settled")
    }

    /// One link of [`links`](Self::links), if present.
    fn link(&self, name: &str) -> Option<Json> {
        let all = self.links();
        all.as_array()?
            .iter()
            .find(|l| l["ifname"] == name)
            .cloned()
    }

    /// `bridge -j link`: port -> master.
    fn bridge_ports(&self) -> BTreeMap<String, String> {
        let out = self.brg.command("bridge").args(["-j", "link"]).output();
        let out = out.expect("bridge");
        let json: Json = serde_json::from_slice(&out.stdout).unwrap_or(Json::Null);
        json.as_array()
            .map(|ports| {
                ports
                    .iter()
                    .filter_map(|p| {
                        Some((
                            p["ifname"].as_str()?.to_owned(),
                            p["master"].as_str()?.to_owned(),
                        ))
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    fn taggers(&self) -> BTreeMap<String, Tags> {
        self.model.backend().taggers().expect("taggers")
    }

    /// Sends an ARP broadcast from the home and returns the first copy of it seen on
    /// `capture_dev` in the peer namespace, as it was on the wire.
    fn frame_from_home(&self, capture_dev: &'static str) -> Vec<u8> {
        let request = frames::arp_request(
            HOME_MAC,
            Ipv4Addr::new(192, 168, 1, 10),
            Ipv4Addr::new(192, 168, 1, 1),
        );
        let sock = self
            .peer
            .run(|| RawSocket::bind(capture_dev).expect("raw socket on the peer"));
        let sender = self
            .home
            .run(|| RawSocket::bind("h0").expect("raw socket on h0"));
        for _ in 0..20 {
            sender.send(&request).expect("send");
            while let Some(f) = sock.recv(Duration::from_millis(200)).expect("recv") {
                if contains(&f, &HOME_MAC) && contains(&f, &[0x08, 0x06]) {
                    return f;
                }
            }
        }
        panic!("the home's frame never reached {capture_dev}");
    }
}

/// Removes what the kernel changes by itself: the bridges' running timers (`gc_timer`,
/// `hello_timer`, ...), and the operational state and carrier flag, which linkwatch updates
/// up to a second after a change (the administrative `UP` flag stays).
fn strip_timers(json: &mut Json) {
    match json {
        Json::Object(map) => {
            map.retain(|k, _| !k.ends_with("_timer") && k != "operstate");
            if let Some(Json::Array(flags)) = map.get_mut("flags") {
                flags.retain(|f| f != "LOWER_UP" && f != "NO-CARRIER");
            }
            map.values_mut().for_each(strip_timers);
        }
        Json::Array(items) => items.iter_mut().for_each(strip_timers),
        _ => {}
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The LSL a captured frame carries. Checksums are not verified: VXLAN frames a local
/// vxlan device sends on a veth carry an unfinished (CHECKSUM_PARTIAL) UDP checksum
/// (platform.md).
fn lsl_of(frame: &[u8]) -> String {
    let options = lsl::encap::DecapOptions {
        verify_checksums: false,
        ..Default::default()
    };
    let dec = lsl::decapsulate(frame, &options).expect("decap");
    dec.lsl.map(|l| l.to_string()).unwrap_or_default()
}

fn master(link: &Json) -> Option<&str> {
    link["master"].as_str()
}

fn kind(link: &Json) -> Option<&str> {
    link["linkinfo"]["info_kind"].as_str()
}

fn up(link: &Json) -> bool {
    link["flags"]
        .as_array()
        .is_some_and(|f| f.iter().any(|x| x == "UP"))
}

#[test]
fn dot1q_lsl_bridges_lan_and_uplink_tags_frames_and_retargets() {
    let mut rig = rig(None);
    let mgmt_before = rig.link("mgmt0").expect("mgmt0");
    let started = std::time::Instant::now();
    rig.lan_bridge();
    rig.vlan_lsl(100, None);
    eprintln!(
        "ACS writes to a bridged 802.1Q LSL (6 AddObject, 2 SetParameterValues, tagger load): {:?}",
        started.elapsed()
    );

    let br = rig.link("br0").expect("br0 created");
    assert_eq!(kind(&br), Some("bridge"));
    assert!(up(&br));
    assert_eq!(
        br["linkinfo"]["info_data"]["ageing_time"].as_u64(),
        Some(30000),
        "AgingTime 300 s in centiseconds"
    );
    let ports = rig.bridge_ports();
    assert_eq!(ports.get("lan0").map(String::as_str), Some("br0"));
    assert_eq!(ports.get("lsl0").map(String::as_str), Some("br0"));
    assert!(!ports.contains_key("mgmt0"), "{ports:?}");
    assert_eq!(
        rig.taggers(),
        BTreeMap::from([(
            "lsl0".to_owned(),
            Tags {
                s_tag: None,
                c_vid: 100
            }
        )])
    );
    assert_eq!(lsl_of(&rig.frame_from_home("acc0")), "vlan:100");

    // Idempotence: the same configuration again changes nothing in the kernel.
    let before = rig.links();
    let started = std::time::Instant::now();
    assert_eq!(
        rig.spv(
            &[
                ("Device.Bridging.Bridge.1.Enable", "true"),
                ("Device.Ethernet.VLANTermination.1.VLANID", "100"),
            ],
            "again",
        ),
        Ok(Status::Applied)
    );
    eprintln!("an idempotent SetParameterValues: {:?}", started.elapsed());
    rig.model
        .backend()
        .apply_initial(&rig.model.view())
        .expect("apply again");
    assert_eq!(rig.links(), before, "re-applying changed links");

    // A new C-VID retargets the tagger in place: no link changes, frames carry the new tag.
    rig.spv(
        &[("Device.Ethernet.VLANTermination.1.VLANID", "300")],
        "retarget",
    )
    .expect("retarget");
    assert_eq!(rig.taggers()["lsl0"].c_vid, 300);
    assert_eq!(rig.links(), before, "retargeting changed links");
    assert_eq!(lsl_of(&rig.frame_from_home("acc0")), "vlan:300");

    // Disabling the port takes the uplink down, still enslaved.
    rig.spv(
        &[("Device.Bridging.Bridge.1.Port.3.Enable", "false")],
        "off",
    )
    .expect("disable port");
    let lsl0 = rig.link("lsl0").expect("lsl0");
    assert!(!up(&lsl0));
    assert_eq!(master(&lsl0), Some("br0"));
    rig.spv(&[("Device.Bridging.Bridge.1.Port.3.Enable", "true")], "on")
        .expect("enable port");
    assert!(up(&rig.link("lsl0").expect("lsl0")));

    // Emptying the port's LowerLayers releases the uplink and detaches the tagger: a frame
    // the BRG itself sends on lsl0 leaves untagged.
    rig.spv(
        &[("Device.Bridging.Bridge.1.Port.3.LowerLayers", "")],
        "drop",
    )
    .expect("drop LSL");
    assert!(rig.taggers().is_empty());
    assert_eq!(master(&rig.link("lsl0").expect("lsl0")), None);
    let frame = frames::arp_request(
        [0x02, 0, 0, 0, 0, 0x20],
        Ipv4Addr::new(10, 0, 0, 2),
        Ipv4Addr::new(10, 0, 0, 1),
    );
    let seen = {
        let sock = rig.peer.run(|| RawSocket::bind("acc0").expect("raw"));
        let sender = rig.brg.run(|| RawSocket::bind("lsl0").expect("raw"));
        let mut seen = None;
        for _ in 0..20 {
            sender.send(&frame).expect("send");
            if let Some(f) = sock.recv(Duration::from_millis(200)).expect("recv")
                && f[6..12] == [0x02, 0, 0, 0, 0, 0x20]
            {
                seen = Some(f);
                break;
            }
        }
        seen.expect("frame on acc0")
    };
    assert_eq!(seen[12..14], [0x08, 0x06], "untagged after the tagger left");

    // DeleteObject of the bridge removes it and releases lan0.
    assert_eq!(
        rig.model.delete_object("Device.Bridging.Bridge.1.", "del"),
        Ok(Status::Applied)
    );
    assert!(rig.link("br0").is_none(), "br0 still exists");
    assert_eq!(master(&rig.link("lan0").expect("lan0")), None);
    assert!(
        rig.model
            .backend()
            .created()
            .expect("record")
            .created
            .is_empty()
    );

    assert_eq!(
        rig.link("mgmt0").expect("mgmt0"),
        mgmt_before,
        "the management interface was touched"
    );
}

#[test]
fn qinq_lsl_pushes_both_tags() {
    let mut rig = rig(None);
    rig.lan_bridge();
    // QinQ adds 8 bytes: the access side needs room for them (platform.md, MTU).
    rig.vlan_lsl(200, Some((0x88a8, 10)));
    assert_eq!(
        rig.taggers()["lsl0"],
        Tags {
            s_tag: Some((0x88a8, 10)),
            c_vid: 200
        }
    );
    assert_eq!(lsl_of(&rig.frame_from_home("acc0")), "qinq:10.200");
    // Double 0x8100 tagging.
    rig.spv(
        &[("Device.Ethernet.VLANTermination.2.TPID", "33024")],
        "8100",
    )
    .expect("TPID");
    assert_eq!(lsl_of(&rig.frame_from_home("acc0")), "qinq-8100:10.200");
    // The legacy 0x9100 S-tag (issue 17): written in-line by the tagger, both ways.
    rig.spv(
        &[("Device.Ethernet.VLANTermination.2.TPID", "37120")],
        "9100",
    )
    .expect("0x9100");
    let frame = rig.frame_from_home("acc0");
    assert_eq!(frame[12..14], [0x91, 0x00], "outer TPID in-line");
    assert_eq!(lsl_of(&frame), "qinq-9100:10.200");
    // Downstream: a frame under the LSL's tags reaches the home untagged; one under
    // another S-VID does not.
    let target = Ipv4Addr::new(192, 168, 1, 77);
    let to_home = |tags: &[(u16, u16)]| -> Option<Vec<u8>> {
        let mut frame = host_tagged(tags, target);
        frame[..6].copy_from_slice(&HOME_MAC);
        // From the vG's side (the home's own MAC as source would move it to the uplink).
        frame[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, 0x30]);
        let sock = rig
            .home
            .run(|| RawSocket::bind("h0").expect("raw socket on h0"));
        let sender = rig.peer.run(|| RawSocket::bind("acc0").expect("raw"));
        for _ in 0..10 {
            sender.send(&frame).expect("send");
            while let Some(f) = sock.recv(Duration::from_millis(100)).expect("recv") {
                if contains(&f, &target.octets()) {
                    return Some(f);
                }
            }
        }
        None
    };
    let counter = |rig: &Rig, c: TagCounter| -> u64 {
        rig.model.backend().tagger_counters().expect("counters")["lsl0"]
            .iter()
            .find(|(k, _)| *k == c)
            .map_or(0, |(_, v)| *v)
    };
    let foreign = counter(&rig, TagCounter::ForeignLsl);
    let home = to_home(&[(0x9100, 10), (0x8100, 200)]).unwrap_or_else(|| {
        panic!(
            "the LSL's frame never reached h0; tagger: {:?}",
            rig.model.backend().tagger_counters()
        )
    });
    assert_eq!(
        home[12..14],
        [0x08, 0x06],
        "untagged at the home: {home:02x?}"
    );
    assert!(
        to_home(&[(0x9100, 11), (0x8100, 200)]).is_none(),
        "another S-VID reached the home"
    );
    assert!(counter(&rig, TagCounter::ForeignLsl) > foreign);
    rig.spv(
        &[("Device.Ethernet.VLANTermination.2.TPID", "33024")],
        "8100 again",
    )
    .expect("TPID");
    assert_eq!(lsl_of(&rig.frame_from_home("acc0")), "qinq-8100:10.200");
    // Deleting the S-tag termination is accepted (TR-181: a strong reference to a deleted
    // object reads as empty): the LSL goes, the tagger detaches, the uplink is released.
    assert_eq!(
        rig.model
            .delete_object("Device.Ethernet.VLANTermination.2.", "del-s"),
        Ok(Status::Applied)
    );
    assert!(rig.taggers().is_empty());
    assert_eq!(master(&rig.link("lsl0").expect("lsl0")), None);
    assert_eq!(master(&rig.link("lan0").expect("lan0")), Some("br0"));
}

/// A frame from the home with the host's own tags in-line (outermost first) around an ARP
/// request for `target` (which marks the frame).
fn host_tagged(tags: &[(u16, u16)], target: Ipv4Addr) -> Vec<u8> {
    let mut frame = frames::arp_request(HOME_MAC, Ipv4Addr::new(192, 168, 1, 10), target);
    for &(tpid, vid) in tags.iter().rev() {
        let mut tag = [0u8; 4];
        tag[..2].copy_from_slice(&tpid.to_be_bytes());
        tag[2..].copy_from_slice(&vid.to_be_bytes());
        frame.splice(12..12, tag);
    }
    frame
}

#[test]
fn frames_the_home_tagged_itself_never_reach_the_lsl() {
    // Issue 15: a host behind vlan:101 that tags its frames with VID 5 would leave the BRG
    // with the tags of qinq-8100:101.5, another home's LSL. The tagger drops them instead.
    let mut rig = rig(None);
    rig.lan_bridge();
    rig.vlan_lsl(101, None);
    assert_eq!(lsl_of(&rig.frame_from_home("acc0")), "vlan:101");
    let lan_tagged = |rig: &Rig| {
        let counters = rig.model.backend().tagger_counters().expect("counters");
        counters["lsl0"]
            .iter()
            .find(|(c, _)| *c == TagCounter::LanTagged)
            .map(|&(_, n)| n)
            .expect("the lan_tagged counter")
    };
    let before = lan_tagged(&rig);
    let sock = rig
        .peer
        .run(|| RawSocket::bind("acc0").expect("raw socket on the peer"));
    let sender = rig
        .home
        .run(|| RawSocket::bind("h0").expect("raw socket on h0"));
    let cases: [(&str, &[(u16, u16)]); 4] = [
        // The kernel moves an 802.1Q or 802.1ad tag it receives into the skb's metadata:
        // the tagger sees these in `vlan_present`.
        ("0x8100 VID 5", &[(0x8100, 5)]),
        ("0x88a8 VID 5", &[(0x88a8, 5)]),
        (
            "0x88a8 VID 5 over 0x8100 VID 6",
            &[(0x88a8, 5), (0x8100, 6)],
        ),
        // 0x9100 stays in the frame: the tagger sees it as the ethertype.
        ("0x9100 VID 5", &[(0x9100, 5)]),
    ];
    let mut sent = 0;
    for (i, (what, tags)) in cases.iter().enumerate() {
        let target = Ipv4Addr::new(192, 168, 1, 200 + i as u8);
        let frame = host_tagged(tags, target);
        for _ in 0..5 {
            sender.send(&frame).expect("send");
            sent += 1;
        }
        let deadline = std::time::Instant::now() + Duration::from_millis(700);
        while std::time::Instant::now() < deadline {
            if let Some(f) = sock.recv(Duration::from_millis(100)).expect("recv") {
                assert!(
                    !(contains(&f, &HOME_MAC) && contains(&f, &target.octets())),
                    "{what}: the home's own tag reached the LSL: {:02x?}",
                    f
                );
            }
        }
    }
    assert_eq!(
        lan_tagged(&rig) - before,
        sent,
        "every tagged frame counted"
    );
    // The home's untagged frames still go out with its tag.
    assert_eq!(lsl_of(&rig.frame_from_home("acc0")), "vlan:101");
}

#[test]
fn vxlan_lsl_creates_the_device_and_follows_the_vni() {
    let mut rig = rig(None);
    let mgmt_before = rig.link("mgmt0").expect("mgmt0");
    rig.lan_bridge();
    let started = std::time::Instant::now();
    rig.vxlan_lsl(5001);
    eprintln!(
        "ACS writes adding a VXLAN LSL port (3 AddObject, 1 SetParameterValues): {:?}",
        started.elapsed()
    );

    let vx = rig.link("vx1-1").expect("vxlan device");
    assert_eq!(kind(&vx), Some("vxlan"));
    assert_eq!(master(&vx), Some("br0"));
    assert!(up(&vx));
    let data = &vx["linkinfo"]["info_data"];
    assert_eq!(data["id"].as_u64(), Some(5001), "{data}");
    assert_eq!(data["remote"].as_str(), Some(VG_VTEP), "{data}");
    assert_eq!(data["local"].as_str(), Some(BRG_VTEP), "{data}");
    assert_eq!(data["link"].as_str(), Some("mgmt0"), "{data}");
    assert_eq!(data["port"].as_u64(), Some(4789), "{data}");
    assert_eq!(data["learning"].as_bool(), Some(false), "{data}");
    assert_eq!(vx["mtu"].as_u64(), Some(1450));
    assert_eq!(
        rig.model.backend().created().expect("record").created,
        BTreeMap::from([
            ("br0".to_owned(), CreatedKind::Bridge),
            ("vx1-1".to_owned(), CreatedKind::Vxlan)
        ])
    );
    let frame = rig.frame_from_home("m0");
    assert_eq!(lsl_of(&frame), format!("vxlan:5001@{BRG_VTEP}"));

    // Idempotence.
    let before = rig.links();
    rig.model
        .backend()
        .apply_initial(&rig.model.view())
        .expect("apply again");
    assert_eq!(rig.links(), before, "re-applying changed links");

    // A new VNI: the kernel cannot change it in place, the device is recreated.
    rig.spv(&[("Device.VXLAN.Tunnel.1.Interface.1.VNI", "6001")], "vni")
        .expect("VNI");
    let vx = rig.link("vx1-1").expect("vxlan device");
    assert_eq!(vx["linkinfo"]["info_data"]["id"].as_u64(), Some(6001));
    assert_eq!(master(&vx), Some("br0"));
    assert_eq!(
        lsl_of(&rig.frame_from_home("m0")),
        format!("vxlan:6001@{BRG_VTEP}")
    );

    // Deleting the bridge deletes the vxlan device it no longer needs.
    rig.model
        .delete_object("Device.Bridging.Bridge.1.", "del")
        .expect("delete");
    assert!(rig.link("br0").is_none());
    assert!(rig.link("vx1-1").is_none());
    assert_eq!(rig.link("mgmt0").expect("mgmt0"), mgmt_before);
}

#[test]
fn impossible_changes_fault_and_leave_linux_and_model_unchanged() {
    let mut rig = rig(None);
    rig.lan_bridge();
    let before = rig.links();
    let key = rig.model.parameter_key().to_owned();

    // A reference to an interface that does not exist: 9003 with a 9007 for the parameter.
    let layers = "Device.Bridging.Bridge.1.Port.2.LowerLayers";
    let fault = rig
        .spv(&[(layers, "Device.Ethernet.Interface.9")], "bad")
        .expect_err("missing interface accepted");
    assert_eq!(fault.code, FaultCode::InvalidArguments);
    assert_eq!(fault.set_parameter_values_faults.len(), 1, "{fault:?}");
    assert_eq!(fault.set_parameter_values_faults[0].parameter_name, layers);
    assert_eq!(
        fault.set_parameter_values_faults[0].code,
        FaultCode::InvalidParameterValue
    );
    // The management interface as a bridge member.
    let fault = rig
        .spv(&[(layers, "Device.Ethernet.Interface.3")], "mgmt")
        .expect_err("management interface accepted");
    assert!(
        fault.set_parameter_values_faults[0]
            .string
            .contains("management"),
        "{fault:?}"
    );
    // Putting the management IP interface on a bridged LAN port breaks a parameter the
    // request does not name: refused as a whole with 9001.
    let fault = rig
        .spv(
            &[(
                "Device.IP.Interface.1.LowerLayers",
                "Device.Ethernet.Interface.1",
            )],
            "ip",
        )
        .expect_err("management IP over a bridged port accepted");
    assert_eq!(fault.code, FaultCode::RequestDenied, "{fault:?}");
    assert!(fault.string.contains("management"), "{}", fault.string);
    // Bridge VLAN filtering.
    rig.add("Device.Bridging.Bridge.1.VLAN.");
    let fault = rig
        .spv(
            &[("Device.Bridging.Bridge.1.VLAN.1.Enable", "true")],
            "vlan",
        )
        .expect_err("bridge VLAN accepted");
    assert_eq!(
        fault.set_parameter_values_faults[0].parameter_name,
        "Device.Bridging.Bridge.1.VLAN.1.Enable"
    );
    assert_eq!(
        rig.model.get(layers).expect("get").to_string(),
        "Device.Ethernet.Interface.1"
    );

    // Valid for the model, impossible in the kernel: an interface brgd listed that has
    // gone. The bridge for Bridge 2 is created, then enslaving fails: everything is rolled
    // back (br1 deleted) and the fault is 9002.
    let n = rig
        .model
        .add_instance("Device.Ethernet.Interface.", None)
        .expect("interface");
    rig.model
        .set(&format!("Device.Ethernet.Interface.{n}.Name"), "ghost0")
        .expect("name");
    assert_eq!(rig.add("Device.Bridging.Bridge."), 2);
    rig.add("Device.Bridging.Bridge.2.Port.");
    let with_bridge2 = rig.links();
    let fault = rig
        .spv(
            &[
                ("Device.Bridging.Bridge.2.Enable", "true"),
                ("Device.Bridging.Bridge.2.Port.1.Enable", "true"),
                (
                    "Device.Bridging.Bridge.2.Port.1.LowerLayers",
                    &format!("Device.Ethernet.Interface.{n}"),
                ),
            ],
            "ghost",
        )
        .expect_err("a missing device accepted");
    assert_eq!(fault.code, FaultCode::InternalError, "{fault:?}");
    assert!(fault.string.contains("ghost0"), "{}", fault.string);
    assert!(fault.string.contains("rolled back"), "{}", fault.string);
    assert_eq!(rig.links(), with_bridge2, "Linux changed by a failed apply");
    assert_eq!(rig.links(), before);
    assert!(rig.link("br1").is_none());
    assert_eq!(
        rig.model
            .get("Device.Bridging.Bridge.2.Enable")
            .expect("get")
            .to_string(),
        "false",
        "the model kept a failed change"
    );
    assert_eq!(rig.model.parameter_key(), "add", "ParameterKey moved");
    assert_ne!(key, "ghost");
}

#[test]
fn restart_deletes_stale_devices_and_never_touches_foreign_ones() {
    let dir = std::env::temp_dir().join(nerg_tests::netns::unique_name("brg-apply-state"));
    let _ = std::fs::remove_dir_all(&dir);
    let config = || ApplierConfig {
        state_dir: Some(dir.clone()),
        protected: vec!["mgmt0".into()],
    };
    let mut rig = rig(Some(dir.clone()));
    rig.lan_bridge();
    let stored = rig.model.save();
    rig.vxlan_lsl(5001);
    assert!(rig.link("vx1-1").is_some());
    let br0 = rig.link("br0").expect("br0")["ifindex"].clone();

    // brgd restarts, and the stored model it restores has no VXLAN (it was saved before).
    let applier = rig
        .brg
        .run(|| LinuxApplier::new(config()).expect("second applier"));
    let mut restored = Model::new(cwmp::tr181::brg().expect("schema"), applier);
    let report = restored.restore(&stored).expect("restore");
    assert!(report.skipped.is_empty(), "{report:?}");
    // The inventory names the interfaces again (names are not stored), with the same
    // instance numbers.
    inventory(&mut restored, &["lan0", "lsl0", "mgmt0"]).expect("inventory");
    assert_eq!(
        restored
            .instances("Device.Ethernet.Interface.")
            .expect("rows"),
        vec![1, 2, 3]
    );
    restored
        .set("Device.IP.Interface.1.Name", "mgmt0")
        .expect("ip name");
    // And the stored model has a port the applier cannot use (over the management
    // interface): boot applies the rest and reports it.
    let bad = restored
        .add_instance("Device.Bridging.Bridge.1.Port.", None)
        .expect("port");
    restored
        .set(
            &format!("Device.Bridging.Bridge.1.Port.{bad}.LowerLayers"),
            "Device.Ethernet.Interface.3",
        )
        .expect("bad port");
    drop(std::mem::replace(&mut rig.model, restored));
    let problems = rig
        .model
        .backend()
        .apply_initial(&rig.model.view())
        .expect("boot apply");
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].message.contains("management"), "{problems:?}");
    assert!(
        rig.link("vx1-1").is_none(),
        "the stale vxlan device survived"
    );
    let br = rig.link("br0").expect("br0 kept");
    assert_eq!(br["ifindex"], br0, "br0 was recreated instead of kept");
    assert_eq!(master(&rig.link("lan0").expect("lan0")), Some("br0"));
    assert_eq!(
        rig.model.backend().created().expect("record").created,
        BTreeMap::from([("br0".to_owned(), CreatedKind::Bridge)])
    );

    // The known problem does not block unrelated writes.
    rig.spv(&[("Device.Bridging.Bridge.1.AgingTime", "120")], "ageing")
        .expect("an unrelated write refused for an old problem");
    let br = rig.link("br0").expect("br0");
    assert_eq!(
        br["linkinfo"]["info_data"]["ageing_time"].as_u64(),
        Some(12000)
    );

    // A bridge someone else made is never adopted nor deleted.
    rig.brg.ip(&["link", "add", "br1", "type", "bridge"]);
    assert_eq!(rig.add("Device.Bridging.Bridge."), 2);
    let fault = rig
        .spv(&[("Device.Bridging.Bridge.2.Enable", "true")], "foreign")
        .expect_err("a foreign br1 adopted");
    assert!(
        fault.string.contains("not created by brgd"),
        "{}",
        fault.string
    );
    assert!(rig.link("br1").is_some(), "a foreign device was deleted");
    drop(rig);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn live_reads_and_published_status() {
    let mut rig = rig(None);
    rig.lan_bridge();
    rig.vlan_lsl(100, None);
    // Every live parameter reads (a GetParameterValues of the whole tree must not fail).
    let all = rig
        .model
        .get_parameter_values(&["Device.".to_owned()])
        .expect("GetParameterValues Device.");
    let value = |name: &str| {
        all.iter()
            .find(|pv| pv.name == name)
            .unwrap_or_else(|| panic!("{name} missing"))
            .value
            .clone()
    };
    let uptime: u64 = value("Device.DeviceInfo.UpTime").parse().expect("UpTime");
    assert!(uptime > 0);
    let since: u64 = value("Device.Bridging.Bridge.1.Port.2.LastChange")
        .parse()
        .expect("LastChange");
    assert!(since < 60, "LastChange {since}");

    // Stats come from the link's counters (issue 17): the home's frames cross lan0.
    let rx = |rig: &Rig| -> u64 {
        let out = rig.brg.ip(&["-s", "-j", "link", "show", "lan0"]);
        let links: Json = serde_json::from_slice(&out.stdout).expect("ip -s -j");
        links[0]["stats64"]["rx"]["packets"]
            .as_u64()
            .expect("rx packets")
    };
    rig.frame_from_home("acc0");
    let before = rx(&rig);
    let stat = |rig: &Rig, name: &str| -> u64 {
        rig.model
            .get(&format!("Device.Ethernet.Interface.1.Stats.{name}"))
            .expect(name)
            .as_u64()
            .expect("a counter")
    };
    let read = stat(&rig, "PacketsReceived");
    let after = rx(&rig);
    assert!(
        before > 0 && (before..=after).contains(&read),
        "Stats.PacketsReceived {read}, Linux said {before} then {after}"
    );
    assert!(stat(&rig, "BytesReceived") >= 42 * read);
    assert!(
        all.iter()
            .any(|pv| pv.name == "Device.Ethernet.Interface.3.Stats.ErrorsSent")
    );

    publish_status(&mut rig.model).expect("publish");
    let get = |model: &Model<LinuxApplier>, name: &str| model.get(name).expect(name).to_string();
    assert_eq!(
        get(&rig.model, "Device.Bridging.Bridge.1.Status"),
        "Enabled"
    );
    assert_eq!(
        get(&rig.model, "Device.Bridging.Bridge.1.Port.1.Name"),
        "br0"
    );
    assert_eq!(
        get(&rig.model, "Device.Bridging.Bridge.1.Port.2.Name"),
        "lan0"
    );
    assert_eq!(
        get(&rig.model, "Device.Bridging.Bridge.1.Port.3.Name"),
        "lsl0"
    );
    assert_eq!(
        get(&rig.model, "Device.Bridging.Bridge.1.Port.3.Status"),
        "Up"
    );
    assert_eq!(get(&rig.model, "Device.Ethernet.Link.1.Name"), "lsl0");
    publish_interface_stack(&mut rig.model).expect("stack");
    assert_eq!(get(&rig.model, "Device.InterfaceStackNumberOfEntries"), "5");
    let rows = rig.model.instances("Device.InterfaceStack.").expect("rows");
    publish_interface_stack(&mut rig.model).expect("stack again");
    assert_eq!(
        rig.model.instances("Device.InterfaceStack.").expect("rows"),
        rows,
        "an unchanged stack was rewritten"
    );
    assert_eq!(
        get(&rig.model, "Device.Ethernet.Interface.1.MACAddress").to_lowercase(),
        mac_text(rig.brg.mac("lan0"))
    );
    // A disabled port reads Down once published again.
    rig.spv(
        &[("Device.Bridging.Bridge.1.Port.3.Enable", "false")],
        "off",
    )
    .expect("disable");
    publish_status(&mut rig.model).expect("publish");
    assert_eq!(
        get(&rig.model, "Device.Bridging.Bridge.1.Port.3.Status"),
        "Down"
    );
    rig.spv(&[("Device.Bridging.Bridge.1.Enable", "false")], "br off")
        .expect("disable bridge");
    publish_status(&mut rig.model).expect("publish");
    assert_eq!(
        get(&rig.model, "Device.Bridging.Bridge.1.Status"),
        "Disabled"
    );
    assert!(
        rig.link("br0").is_none(),
        "a disabled bridge is not in Linux"
    );
}

#[test]
fn a_failed_lsl_change_rolls_back_to_the_tagged_lsl() {
    let mut rig = rig(None);
    rig.lan_bridge();
    rig.vlan_lsl(100, None);
    let before = rig.links();
    // Move the port to a VXLAN tunnel over an IP interface whose device has gone: the model
    // accepts it, the kernel cannot. On the way the tagger was detached and lsl0 released;
    // rolling back must bring both back.
    let ip = rig
        .model
        .add_instance("Device.IP.Interface.", None)
        .expect("ip");
    rig.model
        .set(&format!("Device.IP.Interface.{ip}.Name"), "ghost1")
        .expect("name");
    rig.add("Device.VXLAN.Tunnel.");
    rig.add("Device.VXLAN.Tunnel.1.Interface.");
    let underlay = format!("Device.IP.Interface.{ip}");
    let fault = rig
        .spv(
            &[
                ("Device.VXLAN.Tunnel.1.Enable", "true"),
                ("Device.VXLAN.Tunnel.1.RemoteEndpoints", VG_VTEP),
                ("Device.VXLAN.Tunnel.1.Interface.1.Enable", "true"),
                ("Device.VXLAN.Tunnel.1.Interface.1.LowerLayers", &underlay),
                (
                    "Device.Bridging.Bridge.1.Port.3.LowerLayers",
                    "Device.VXLAN.Tunnel.1.Interface.1",
                ),
            ],
            "to-vxlan",
        )
        .expect_err("a missing underlay accepted");
    assert_eq!(fault.code, FaultCode::InternalError, "{fault:?}");
    assert!(fault.string.contains("ghost1"), "{}", fault.string);
    assert!(fault.string.contains("rolled back"), "{}", fault.string);
    assert_eq!(rig.links(), before, "Linux not rolled back");
    assert_eq!(rig.taggers()["lsl0"].c_vid, 100);
    assert_eq!(lsl_of(&rig.frame_from_home("acc0")), "vlan:100");
    assert_eq!(
        rig.model
            .get("Device.Bridging.Bridge.1.Port.3.LowerLayers")
            .expect("get")
            .to_string(),
        "Device.Ethernet.VLANTermination.1"
    );
}
