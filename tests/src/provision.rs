//! What the lab's ACS pushes to a fresh BRG (zero touch): the TR-181 objects of a bridge
//! joining the home's LAN port to its LSL uplink, in the shapes `brg::apply` accepts.
//!
//! The BRG lists its ports in `Device.Ethernet.Interface` in the order brgd was given them:
//! `lan0` is `Interface.1`, the access uplink `lsl0` is `Interface.2`. A fresh BRG has no
//! other instances, so the instance numbers the script names are the ones AddObject creates.
//!
//! ```text
//!  Bridge.1 (br0): Port.1 management, Port.2 -> Ethernet.Interface.1 (lan0),
//!                  Port.3 -> the LSL:
//!    802.1Q: VLANTermination.1 (C-VID) -> Link.1 -> Ethernet.Interface.2 (lsl0, tagger)
//!    QinQ:   VLANTermination.1 (C-VID) -> VLANTermination.2 (S-VID, 0x88A8) -> Link.1 -> ...
//!    VXLAN:  VXLAN.Tunnel.1.Interface.1 (VNI), Tunnel.1 remote = the vG's VTEP, port 4789
//!            (over IPv6: the vG's IPv6 VTEP; the kernel picks the BRG's source address)
//! ```

use std::{net::Ipv4Addr, sync::OnceLock};

use cwmp::{
    model::Schema,
    soap::{AddObject, Body, ParameterValue, SetParameterValues, ValueType},
};

use crate::{acs::AcsRequest, topology::HomeLsl};

/// The `xsi:type` an ACS sends `name` with: the TR-181 type of the parameter (an ACS knows
/// the data model; brgd refuses a wrong type with 9006).
fn value_type(name: &str) -> ValueType {
    static SCHEMA: OnceLock<Schema> = OnceLock::new();
    let schema = SCHEMA.get_or_init(|| cwmp::tr181::brg().expect("the TR-181 BRG schema"));
    let schema_path = name
        .split('.')
        .map(|seg| {
            if !seg.is_empty() && seg.bytes().all(|b| b.is_ascii_digit()) {
                "{i}"
            } else {
                seg
            }
        })
        .collect::<Vec<_>>()
        .join(".");
    schema
        .param(&schema_path)
        .unwrap_or_else(|| panic!("{name}: not a TR-181 BRG parameter"))
        .syntax
        .value_type()
}

fn add(object: &str, key: &str) -> AcsRequest {
    AcsRequest::Rpc(Body::AddObject(AddObject {
        object_name: object.to_owned(),
        parameter_key: key.to_owned(),
    }))
}

fn set(pairs: &[(&str, String)], key: &str) -> AcsRequest {
    AcsRequest::Rpc(Body::SetParameterValues(SetParameterValues {
        parameter_list: pairs
            .iter()
            .map(|(name, value)| ParameterValue::new(*name, value.as_str(), value_type(name)))
            .collect(),
        parameter_key: key.to_owned(),
    }))
}

/// The Connection Request user name the ACS gives the BRG with this serial number.
pub fn cr_username(serial: &str) -> String {
    format!("cr-{serial}")
}

/// The Connection Request password the ACS gives the BRG with this serial number (a lab's
/// secret: derived, so that the lab can be driven by hand with `--keep`).
pub fn cr_password(serial: &str) -> String {
    format!("lab-secret-{serial}")
}

/// The whole provisioning of a fresh BRG for `lsl`, towards the vG's VTEP `vg_vtep` (VXLAN),
/// with its Connection Request credentials.
pub fn brg_script(serial: &str, lsl: HomeLsl, vg_vtep: Ipv4Addr) -> Vec<AcsRequest> {
    let b = "Device.Bridging.Bridge.1.";
    let mut script = vec![
        add("Device.Bridging.Bridge.", "zt-bridge"),
        add(&format!("{b}Port."), "zt-port-mgmt"),
        add(&format!("{b}Port."), "zt-port-lan"),
        add(&format!("{b}Port."), "zt-port-lsl"),
        set(
            &[
                (&format!("{b}Enable"), "true".into()),
                (&format!("{b}Port.1.ManagementPort"), "true".into()),
                (&format!("{b}Port.1.Enable"), "true".into()),
                (
                    &format!("{b}Port.1.LowerLayers"),
                    format!("{b}Port.2,{b}Port.3"),
                ),
                (&format!("{b}Port.2.Enable"), "true".into()),
                (
                    &format!("{b}Port.2.LowerLayers"),
                    "Device.Ethernet.Interface.1".into(),
                ),
            ],
            "zt-lan",
        ),
    ];
    script.push(set(
        &[
            (
                "Device.ManagementServer.ConnectionRequestUsername",
                cr_username(serial),
            ),
            (
                "Device.ManagementServer.ConnectionRequestPassword",
                cr_password(serial),
            ),
        ],
        "zt-cr",
    ));
    script.extend(lsl_objects(lsl, vg_vtep));
    // What the BRG reports once it applied all that (brgd publishes Linux's state after
    // every write): the lab's BRG column.
    script.push(AcsRequest::Rpc(cwmp::soap::Body::GetParameterValues(
        cwmp::soap::GetParameterValues {
            parameter_names: STATUS_PARAMS.iter().map(|p| (*p).to_owned()).collect(),
        },
    )));
    script
}

/// What the ACS reads at the end of the provisioning: the bridge's and the LSL port's
/// `Status`, and how many `InterfaceStack` rows the BRG has (with one LAN port: 6 for an
/// 802.1Q LSL, 7 for QinQ, 4 for VXLAN).
pub const STATUS_PARAMS: [&str; 3] = [
    "Device.Bridging.Bridge.1.Status",
    "Device.Bridging.Bridge.1.Port.3.Status",
    "Device.InterfaceStackNumberOfEntries",
];

/// The LSL's objects and Port 3 over them.
fn lsl_objects(lsl: HomeLsl, vg_vtep: Ipv4Addr) -> Vec<AcsRequest> {
    let port = "Device.Bridging.Bridge.1.Port.3.";
    let vt = "Device.Ethernet.VLANTermination.";
    match lsl {
        HomeLsl::Vlan(c_vid) | HomeLsl::Qinq(_, c_vid) => {
            let mut script = vec![add("Device.Ethernet.Link.", "zt-link"), add(vt, "zt-ctag")];
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
                (
                    "Device.Ethernet.VLANTermination.1.VLANID",
                    c_vid.to_string(),
                ),
                ("Device.Ethernet.VLANTermination.1.TPID", "33024".to_owned()),
            ];
            if let HomeLsl::Qinq(s_vid, _) = lsl {
                script.push(add(vt, "zt-stag"));
                pairs.extend([
                    (
                        "Device.Ethernet.VLANTermination.1.LowerLayers",
                        "Device.Ethernet.VLANTermination.2".to_owned(),
                    ),
                    (
                        "Device.Ethernet.VLANTermination.2.Enable",
                        "true".to_owned(),
                    ),
                    (
                        "Device.Ethernet.VLANTermination.2.VLANID",
                        s_vid.to_string(),
                    ),
                    // 0x88A8, IEEE 802.1ad.
                    ("Device.Ethernet.VLANTermination.2.TPID", "34984".to_owned()),
                    (
                        "Device.Ethernet.VLANTermination.2.LowerLayers",
                        "Device.Ethernet.Link.1".to_owned(),
                    ),
                ]);
            } else {
                pairs.push((
                    "Device.Ethernet.VLANTermination.1.LowerLayers",
                    "Device.Ethernet.Link.1".to_owned(),
                ));
            }
            let port_enable = format!("{port}Enable");
            let port_lower = format!("{port}LowerLayers");
            pairs.push((&port_enable, "true".to_owned()));
            pairs.push((&port_lower, "Device.Ethernet.VLANTermination.1".to_owned()));
            script.push(set(&pairs, "zt-lsl"));
            script
        }
        HomeLsl::Vxlan(vni) | HomeLsl::Vxlan6(vni) => {
            let remote = match lsl {
                HomeLsl::Vxlan6(_) => crate::topology::ipv6::vtep6_of(vg_vtep).to_string(),
                _ => vg_vtep.to_string(),
            };
            let t = "Device.VXLAN.Tunnel.1.";
            vec![
                add("Device.VXLAN.Tunnel.", "zt-tunnel"),
                add(&format!("{t}Interface."), "zt-vni"),
                set(
                    &[
                        (&format!("{t}Enable"), "true".into()),
                        (&format!("{t}RemoteEndpoints"), remote),
                        (&format!("{t}RemotePort"), "4789".into()),
                        (&format!("{t}Interface.1.Enable"), "true".into()),
                        (&format!("{t}Interface.1.VNI"), vni.to_string()),
                        (&format!("{port}Enable"), "true".into()),
                        (&format!("{port}LowerLayers"), format!("{t}Interface.1")),
                    ],
                    "zt-lsl",
                ),
            ]
        }
    }
}

/// What the ACS sends to move a provisioned BRG to another LSL of the same kind: a new
/// C-VID (and S-VID) or a new VNI.
pub fn lsl_change(lsl: HomeLsl) -> Vec<AcsRequest> {
    let pairs = match lsl {
        HomeLsl::Vlan(c_vid) => vec![(
            "Device.Ethernet.VLANTermination.1.VLANID",
            c_vid.to_string(),
        )],
        HomeLsl::Qinq(s_vid, c_vid) => vec![
            (
                "Device.Ethernet.VLANTermination.1.VLANID",
                c_vid.to_string(),
            ),
            (
                "Device.Ethernet.VLANTermination.2.VLANID",
                s_vid.to_string(),
            ),
        ],
        HomeLsl::Vxlan(vni) | HomeLsl::Vxlan6(vni) => {
            vec![("Device.VXLAN.Tunnel.1.Interface.1.VNI", vni.to_string())]
        }
    };
    vec![set(&pairs, "lsl-change")]
}
