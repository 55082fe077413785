//! [`Desired`]: the Linux state a TR-181 tree asks for, computed without I/O.
//!
//! [`Desired::from_view`] walks `Device.Bridging.Bridge.{i}` and follows each port's
//! `LowerLayers` down the interface stack (see the [module docs](super) for the shapes it
//! accepts). It never fails: what it cannot use is left out of the plan and reported as a
//! [`Problem`] naming the parameters to blame, so that boot can apply everything that is
//! valid while [`validate`](super::LinuxApplier) turns new problems into faults.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use cwmp::model::{Value, View};
use lsl::wire::vlan::Tpid;
use lsl::{LslId, STag, Vid, Vni};
use serde::{Deserialize, Serialize};

/// The longest Linux interface name (`IFNAMSIZ` - 1).
pub const IFNAME_MAX: usize = 15;

/// The VXLAN port IANA assigned (RFC 7348 section 5).
pub const VXLAN_PORT: u16 = 4789;

/// The Linux state the model asks for: the enabled bridges and their members.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Desired {
    /// Enabled bridges, by instance number.
    pub bridges: Vec<BridgeSpec>,
}

/// One enabled `Device.Bridging.Bridge.{i}`: a Linux bridge device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BridgeSpec {
    /// The instance number.
    pub instance: u32,
    /// The Linux name ([`bridge_name`]).
    pub name: String,
    /// `AgingTime`, in seconds.
    pub ageing_secs: u32,
    /// Member ports whose lower layers resolve, by port instance number.
    pub members: Vec<Member>,
}

/// A member port of a bridge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// `Device.Bridging.Bridge.{b}.Port.{port}`.
    pub port: u32,
    /// Whether the port and every layer below it are enabled (the Linux device is set up;
    /// otherwise it stays enslaved but down).
    pub up: bool,
    /// What the port sits on.
    pub kind: MemberKind,
}

/// What a member port sits on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MemberKind {
    /// A LAN port: an `Ethernet.Interface` enslaved as it is.
    Lan {
        /// The Linux device.
        dev: String,
    },
    /// An 802.1Q or QinQ LSL: the uplink `Ethernet.Interface` enslaved, with the tc tagger
    /// pushing and popping the tags.
    VlanLsl {
        /// The uplink's Linux device.
        uplink: String,
        /// The S-tag (TPID, VID) for QinQ.
        s_tag: Option<(u16, u16)>,
        /// The C-VID.
        c_vid: u16,
    },
    /// A VXLAN LSL: a kernel vxlan device enslaved.
    Vxlan(VxlanSpec),
}

/// A kernel vxlan device for one `Device.VXLAN.Tunnel.{t}.Interface.{v}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VxlanSpec {
    /// The Linux name ([`vxlan_name`]).
    pub name: String,
    /// The VNI.
    pub vni: u32,
    /// The vG's VTEP (`Tunnel.RemoteEndpoints`).
    pub remote: IpAddr,
    /// The local VTEP address: the underlay `IP.Interface`'s first enabled IPv4 address.
    pub local: Option<IpAddr>,
    /// The underlay Linux device (the `IP.Interface`'s `Name`).
    pub underlay: Option<String>,
    /// The destination UDP port (`Tunnel.RemotePort`).
    pub dst_port: u16,
    /// A fixed UDP source port (`Tunnel.SourcePort`), or the kernel's flow-hashed range.
    pub src_port: Option<u16>,
}

impl Member {
    /// The LSL this member carries, for LSL members.
    pub fn lsl(&self) -> Option<LslId> {
        match &self.kind {
            MemberKind::Lan { .. } => None,
            MemberKind::VlanLsl { s_tag, c_vid, .. } => Some(LslId::Vlan {
                s_tag: s_tag.and_then(|(tpid, vid)| {
                    Some(STag {
                        tpid: Tpid::from_ethertype(tpid)?,
                        vid: Vid::new(vid)?,
                    })
                }),
                c_vid: Vid::new(*c_vid)?,
            }),
            MemberKind::Vxlan(v) => Some(LslId::Vxlan {
                vni: Vni::new(v.vni)?,
                vtep: v.remote,
            }),
        }
    }

    /// The Linux device enslaved to the bridge.
    pub fn dev(&self) -> &str {
        match &self.kind {
            MemberKind::Lan { dev } => dev,
            MemberKind::VlanLsl { uplink, .. } => uplink,
            MemberKind::Vxlan(v) => &v.name,
        }
    }
}

impl Desired {
    /// The bridge of instance `instance`.
    pub fn bridge(&self, instance: u32) -> Option<&BridgeSpec> {
        self.bridges.iter().find(|b| b.instance == instance)
    }

    /// Every member of every bridge.
    pub fn members(&self) -> impl Iterator<Item = (&BridgeSpec, &Member)> {
        self.bridges
            .iter()
            .flat_map(|b| b.members.iter().map(move |m| (b, m)))
    }

    /// Every LSL the plan brings up.
    pub fn lsls(&self) -> Vec<LslId> {
        self.members().filter_map(|(_, m)| m.lsl()).collect()
    }
}

/// The Linux name of `Device.Bridging.Bridge.{instance}`: `br0` for the first, as on most
/// gateways.
pub fn bridge_name(instance: u32) -> String {
    format!("br{}", instance.saturating_sub(1))
}

/// The Linux name of `Device.VXLAN.Tunnel.{tunnel}.Interface.{iface}`: `vx<t>-<i>`.
pub fn vxlan_name(tunnel: u32, iface: u32) -> String {
    format!("vx{tunnel}-{iface}")
}

/// A reason part of the model cannot be applied.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Problem {
    /// The parameters to blame (a SetParameterValues fault names those it set).
    pub params: Vec<String>,
    /// What is wrong, for the fault string and the log.
    pub message: String,
    /// A reference to an object that no longer exists: TR-181 treats a deleted target of a
    /// strong reference as an empty reference, so this is only a fault when the ACS sets it.
    pub dangling: bool,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// The model-side configuration of [`Desired::from_view`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Protected {
    /// Linux devices that may never be bridge members (the management interface, given by
    /// brgd), besides those found under `Device.IP.Interface`.
    pub devices: Vec<String>,
}

/// A parsed object reference of a `LowerLayers` list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ref {
    EthIface(u32),
    EthLink(u32),
    VlanTerm(u32),
    VxlanIface(u32, u32),
    IpIface(u32),
    BridgePort(u32, u32),
}

impl Ref {
    fn parse(text: &str) -> Option<Ref> {
        let path = text.trim().strip_suffix('.').unwrap_or(text.trim());
        let num = |s: &str| {
            s.parse::<u32>()
                .ok()
                .filter(|&n| n > 0 && !s.starts_with('0'))
        };
        let parts: Vec<&str> = path.split('.').collect();
        match parts.as_slice() {
            ["Device", "Ethernet", "Interface", n] => Some(Ref::EthIface(num(n)?)),
            ["Device", "Ethernet", "Link", n] => Some(Ref::EthLink(num(n)?)),
            ["Device", "Ethernet", "VLANTermination", n] => Some(Ref::VlanTerm(num(n)?)),
            ["Device", "VXLAN", "Tunnel", t, "Interface", n] => {
                Some(Ref::VxlanIface(num(t)?, num(n)?))
            }
            ["Device", "IP", "Interface", n] => Some(Ref::IpIface(num(n)?)),
            ["Device", "Bridging", "Bridge", b, "Port", n] => {
                Some(Ref::BridgePort(num(b)?, num(n)?))
            }
            _ => None,
        }
    }

    fn object(self) -> String {
        match self {
            Ref::EthIface(n) => format!("Device.Ethernet.Interface.{n}."),
            Ref::EthLink(n) => format!("Device.Ethernet.Link.{n}."),
            Ref::VlanTerm(n) => format!("Device.Ethernet.VLANTermination.{n}."),
            Ref::VxlanIface(t, n) => format!("Device.VXLAN.Tunnel.{t}.Interface.{n}."),
            Ref::IpIface(n) => format!("Device.IP.Interface.{n}."),
            Ref::BridgePort(b, n) => format!("Device.Bridging.Bridge.{b}.Port.{n}."),
        }
    }
}

/// Reads the tree with typed accessors and collects problems.
struct Reader<'v, 'a> {
    view: &'v View<'a>,
    problems: Vec<Problem>,
}

impl Reader<'_, '_> {
    fn value(&self, path: &str) -> Option<Value> {
        self.view.get(path)
    }

    fn text(&self, path: &str) -> String {
        self.value(path).map(|v| v.to_string()).unwrap_or_default()
    }

    fn flag(&self, path: &str) -> bool {
        self.value(path).and_then(|v| v.as_bool()).unwrap_or(false)
    }

    fn number(&self, path: &str) -> Option<i64> {
        self.value(path).and_then(|v| v.as_i64())
    }

    fn problem(&mut self, params: &[&str], message: String) {
        self.problems.push(Problem {
            params: params.iter().map(|p| (*p).to_owned()).collect(),
            message,
            dangling: false,
        });
    }

    /// The single reference of a `LowerLayers` parameter: `Ok(None)` when empty, `Err` (with
    /// a problem recorded) when it is malformed, names more than one layer, names a kind
    /// the caller does not take, or names nothing that exists (a dangling problem).
    fn single_ref(
        &mut self,
        param: &str,
        allowed: &[&str],
        accept: fn(Ref) -> bool,
    ) -> Option<Ref> {
        let value = self.value(param).unwrap_or(Value::Text(String::new()));
        let items = value.list_items();
        let expect = allowed.join(" or ");
        match items.as_slice() {
            [] => None,
            [one] => match Ref::parse(one) {
                Some(r) if accept(r) => {
                    if self.view.exists(&r.object()) {
                        Some(r)
                    } else {
                        self.problems.push(Problem {
                            params: vec![param.to_owned()],
                            message: format!("{param}: {one} does not exist"),
                            dangling: true,
                        });
                        None
                    }
                }
                _ => {
                    self.problem(
                        &[param],
                        format!("{param}: {one:?} is not supported here (expected {expect})"),
                    );
                    None
                }
            },
            _ => {
                self.problem(
                    &[param],
                    format!(
                        "{param}: names {} layers; this BRG stacks exactly one {expect}",
                        items.len()
                    ),
                );
                None
            }
        }
    }
}

/// An `Ethernet.Interface` resolved to its Linux device.
struct EthIface {
    dev: String,
    enabled: bool,
}

impl Desired {
    /// The plan for `view`, and every problem found on the way.
    pub fn from_view(view: &View<'_>, protected: &Protected) -> (Desired, Vec<Problem>) {
        let mut r = Reader {
            view,
            problems: Vec::new(),
        };
        let management = management_devices(&mut r, protected);
        let mut desired = Desired::default();
        // Linux device -> the parameter that claimed it first.
        let mut claims: BTreeMap<String, String> = BTreeMap::new();
        for b in view.instances("Device.Bridging.Bridge.") {
            let br = format!("Device.Bridging.Bridge.{b}.");
            check_vlan_tables(&mut r, &br);
            let enabled = r.flag(&format!("{br}Enable"));
            let ageing = r
                .number(&format!("{br}AgingTime"))
                .and_then(|n| u32::try_from(n).ok())
                .unwrap_or(300);
            let mut members = Vec::new();
            let mut management_port: Option<String> = None;
            for p in view.instances(&format!("{br}Port.")) {
                let port = format!("{br}Port.{p}.");
                let layers = format!("{port}LowerLayers");
                if r.flag(&format!("{port}ManagementPort")) {
                    check_management_port(&mut r, &port, b, &mut management_port);
                    continue;
                }
                let ty = r.text(&format!("{port}Type"));
                if !ty.is_empty() && ty != "VLANUnawarePort" {
                    r.problem(
                        &[&format!("{port}Type")],
                        format!(
                            "{port}Type {ty} is not supported: ports are VLAN-unaware (this \
                             kernel has no bridge VLAN filtering); model LSL tags with \
                             Device.Ethernet.VLANTermination"
                        ),
                    );
                }
                let port_enabled = r.flag(&format!("{port}Enable"));
                let Some(lower) = r.single_ref(
                    &layers,
                    &[
                        "Device.Ethernet.Interface.{i}",
                        "Device.Ethernet.VLANTermination.{i}",
                        "Device.VXLAN.Tunnel.{i}.Interface.{i}",
                    ],
                    |r| matches!(r, Ref::EthIface(_) | Ref::VlanTerm(_) | Ref::VxlanIface(..)),
                ) else {
                    continue;
                };
                let member = match lower {
                    Ref::EthIface(n) => eth_iface(&mut r, n, &layers).map(|e| Member {
                        port: p,
                        up: port_enabled && e.enabled,
                        kind: MemberKind::Lan { dev: e.dev },
                    }),
                    Ref::VlanTerm(n) => vlan_lsl(&mut r, n, &layers).map(|(kind, up)| Member {
                        port: p,
                        up: port_enabled && up,
                        kind,
                    }),
                    Ref::VxlanIface(t, n) => {
                        vxlan_lsl(&mut r, t, n, &layers).map(|(spec, up)| Member {
                            port: p,
                            up: port_enabled && up,
                            kind: MemberKind::Vxlan(spec),
                        })
                    }
                    _ => None,
                };
                let Some(member) = member else { continue };
                let dev = member.dev().to_owned();
                if management.contains(&dev) {
                    r.problem(
                        &[&layers],
                        format!(
                            "{layers}: {dev} carries the management IP interface, which stays \
                             outside the subscriber bridge (TR-124 WAN.BRIDGE.3)"
                        ),
                    );
                    continue;
                }
                if let Some(first) = claims.get(&dev) {
                    let first = first.clone();
                    r.problem(
                        &[&layers, &first],
                        format!("{layers}: {dev} is already the lower layer of {first}"),
                    );
                    continue;
                }
                claims.insert(dev, layers.clone());
                members.push(member);
            }
            let name = bridge_name(b);
            if name.len() > IFNAME_MAX {
                r.problem(
                    &[&format!("{br}Enable")],
                    format!("{br}: the bridge number is too large for a Linux name"),
                );
                continue;
            }
            if enabled {
                desired.bridges.push(BridgeSpec {
                    instance: b,
                    name,
                    ageing_secs: ageing,
                    members,
                });
            }
        }
        let mut problems = r.problems;
        problems.sort();
        problems.dedup();
        (desired, problems)
    }
}

/// Linux devices that carry a management `IP.Interface` (directly or through an
/// `Ethernet.Link`), plus the configured ones. Never bridge members.
fn management_devices(r: &mut Reader<'_, '_>, protected: &Protected) -> Vec<String> {
    let mut out = protected.devices.clone();
    for i in r.view.instances("Device.IP.Interface.") {
        let ip = format!("Device.IP.Interface.{i}.");
        if let Some(name) = r.value(&format!("{ip}Name")).map(|v| v.to_string())
            && !name.is_empty()
        {
            out.push(name);
        }
        let items: Vec<String> = r
            .value(&format!("{ip}LowerLayers"))
            .map(|v| v.list_items().into_iter().map(str::to_owned).collect())
            .unwrap_or_default();
        for item in items {
            let iface = match Ref::parse(&item) {
                Some(Ref::EthIface(n)) => Some(n),
                Some(Ref::EthLink(l)) => {
                    let lower = r.value(&format!("Device.Ethernet.Link.{l}.LowerLayers"));
                    lower.and_then(|v| match v.list_items().as_slice() {
                        [one] => match Ref::parse(one) {
                            Some(Ref::EthIface(n)) => Some(n),
                            _ => None,
                        },
                        _ => None,
                    })
                }
                _ => None,
            };
            if let Some(n) = iface {
                let name = r.text(&format!("Device.Ethernet.Interface.{n}.Name"));
                if !name.is_empty() {
                    out.push(name);
                }
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// `Bridge.{i}.VLAN` and `VLANPort` entries need bridge VLAN filtering, which this kernel
/// lacks: enabled ones are refused.
fn check_vlan_tables(r: &mut Reader<'_, '_>, br: &str) {
    for table in ["VLAN", "VLANPort"] {
        for n in r.view.instances(&format!("{br}{table}.")) {
            let enable = format!("{br}{table}.{n}.Enable");
            if r.flag(&enable) {
                r.problem(
                    &[&enable],
                    format!(
                        "{br}{table}.{n}: 802.1Q bridge VLANs are not supported (no bridge VLAN \
                         filtering); model the LSL's tags with Device.Ethernet.VLANTermination"
                    ),
                );
            }
        }
    }
}

/// The management port stands for the bridge device itself; its `LowerLayers` may list
/// only this bridge's ports.
fn check_management_port(r: &mut Reader<'_, '_>, port: &str, b: u32, seen: &mut Option<String>) {
    let flag = format!("{port}ManagementPort");
    if let Some(first) = seen {
        let first = first.clone();
        r.problem(
            &[&flag],
            format!("{port}: the bridge already has a management port ({first})"),
        );
        return;
    }
    *seen = Some(port.to_owned());
    let layers = format!("{port}LowerLayers");
    let items: Vec<String> = r
        .value(&layers)
        .map(|v| v.list_items().into_iter().map(str::to_owned).collect())
        .unwrap_or_default();
    for item in items {
        match Ref::parse(&item) {
            Some(Ref::BridgePort(bb, _)) if bb == b => {}
            _ => r.problem(
                &[&layers],
                format!(
                    "{layers}: {item:?} is not a port of Device.Bridging.Bridge.{b} (a \
                     management port's lower layers are its bridge's other ports)"
                ),
            ),
        }
    }
}

fn eth_iface(r: &mut Reader<'_, '_>, n: u32, blame: &str) -> Option<EthIface> {
    let o = format!("Device.Ethernet.Interface.{n}.");
    let dev = r.text(&format!("{o}Name"));
    if dev.is_empty() || dev.len() > IFNAME_MAX || dev.contains(['/', ' ', ':']) {
        r.problem(
            &[blame],
            format!("{blame}: {o} has no usable Linux interface name ({dev:?})"),
        );
        return None;
    }
    Some(EthIface {
        dev,
        enabled: r.flag(&format!("{o}Enable")),
    })
}

/// TPIDs an outer (S) tag may use: 0x88A8, 0x8100, and the legacy 0x9100 (which the tagger
/// writes in-line itself: `bpf_skb_vlan_push` would turn it into 0x8100).
const S_TPIDS: [u16; 3] = [
    Tpid::STag as u16,
    Tpid::CTag as u16,
    Tpid::STagLegacy as u16,
];

/// One termination: `(VLANID, TPID, enabled)`, or `None` (problem recorded) when it is
/// enabled without a VLAN ID or its TPID is not one of `tpids`.
fn termination(
    r: &mut Reader<'_, '_>,
    n: u32,
    tpids: &[u16],
    role: &str,
) -> Option<(u16, u16, bool)> {
    let o = format!("Device.Ethernet.VLANTermination.{n}.");
    let enabled = r.flag(&format!("{o}Enable"));
    let vid = r
        .number(&format!("{o}VLANID"))
        .and_then(|v| u16::try_from(v).ok())
        .and_then(Vid::new);
    let tpid = r
        .number(&format!("{o}TPID"))
        .and_then(|v| u16::try_from(v).ok())
        .unwrap_or(0);
    if !tpids.contains(&tpid) {
        let allowed: Vec<String> = tpids.iter().map(|t| format!("{t} (0x{t:04X})")).collect();
        r.problem(
            &[&format!("{o}TPID")],
            format!(
                "{o}TPID {tpid}: the {role} tag's TPID must be {}",
                allowed.join(", ")
            ),
        );
        return None;
    }
    match vid {
        Some(vid) => Some((vid.get(), tpid, enabled)),
        None => {
            if enabled {
                r.problem(
                    &[&format!("{o}VLANID"), &format!("{o}Enable")],
                    format!("{o}: enabled without a VLANID (1..4094)"),
                );
            }
            None
        }
    }
}

/// `VLANTermination (C) [-> VLANTermination (S)] -> Ethernet.Link -> Ethernet.Interface`.
fn vlan_lsl(r: &mut Reader<'_, '_>, c: u32, _blame: &str) -> Option<(MemberKind, bool)> {
    let (c_vid, _, c_on) = termination(r, c, &[Tpid::CTag as u16], "inner (C)")?;
    let c_layers = format!("Device.Ethernet.VLANTermination.{c}.LowerLayers");
    let below = r.single_ref(
        &c_layers,
        &[
            "Device.Ethernet.Link.{i}",
            "Device.Ethernet.VLANTermination.{i} (the S-tag, for QinQ)",
        ],
        |r| matches!(r, Ref::EthLink(_) | Ref::VlanTerm(_)),
    )?;
    let (s_tag, s_on, link) = match below {
        Ref::VlanTerm(s) => {
            let (s_vid, s_tpid, s_on) = termination(r, s, &S_TPIDS, "outer (S)")?;
            let s_layers = format!("Device.Ethernet.VLANTermination.{s}.LowerLayers");
            let link = r.single_ref(
                &s_layers,
                &["Device.Ethernet.Link.{i} (at most two stacked terminations: QinQ)"],
                |r| matches!(r, Ref::EthLink(_)),
            )?;
            (Some((s_tpid, s_vid)), s_on, link)
        }
        link => (None, true, link),
    };
    let Ref::EthLink(l) = link else { return None };
    let lo = format!("Device.Ethernet.Link.{l}.");
    for (param, ok) in [
        ("MTU", r.number(&format!("{lo}MTU")).unwrap_or(0) == 0),
        ("MACAddress", r.text(&format!("{lo}MACAddress")).is_empty()),
    ] {
        if !ok {
            r.problem(
                &[&format!("{lo}{param}")],
                format!("{lo}{param}: setting it is not supported (the uplink keeps its own)"),
            );
        }
    }
    let l_layers = format!("{lo}LowerLayers");
    let Ref::EthIface(i) = r.single_ref(&l_layers, &["Device.Ethernet.Interface.{i}"], |r| {
        matches!(r, Ref::EthIface(_))
    })?
    else {
        return None;
    };
    let uplink = eth_iface(r, i, &l_layers)?;
    let link_on = r.flag(&format!("{lo}Enable"));
    Some((
        MemberKind::VlanLsl {
            uplink: uplink.dev,
            s_tag,
            c_vid,
        },
        c_on && s_on && link_on && uplink.enabled,
    ))
}

/// `VXLAN.Tunnel.{t}.Interface.{n}` (over an optional underlay `IP.Interface`).
fn vxlan_lsl(r: &mut Reader<'_, '_>, t: u32, n: u32, _blame: &str) -> Option<(VxlanSpec, bool)> {
    let to = format!("Device.VXLAN.Tunnel.{t}.");
    let io = format!("{to}Interface.{n}.");
    let tunnel_on = r.flag(&format!("{to}Enable"));
    let iface_on = r.flag(&format!("{io}Enable"));
    let endpoints_param = format!("{to}RemoteEndpoints");
    let endpoints: Vec<String> = r
        .value(&endpoints_param)
        .map(|v| v.list_items().into_iter().map(str::to_owned).collect())
        .unwrap_or_default();
    let remote = match endpoints.as_slice() {
        [] => {
            if tunnel_on {
                r.problem(
                    &[&endpoints_param, &format!("{to}Enable")],
                    format!("{to}: enabled without RemoteEndpoints (the vG's VTEP address)"),
                );
            }
            return None;
        }
        [one] => match one
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
        {
            Ok(ip) if !ip.is_unspecified() && !ip.is_multicast() => ip,
            _ => {
                r.problem(
                    &[&endpoints_param],
                    format!(
                        "{endpoints_param}: {one:?} is not a unicast IP address (names are not \
                         resolved: give the vG's VTEP address)"
                    ),
                );
                return None;
            }
        },
        _ => {
            r.problem(
                &[&endpoints_param],
                format!(
                    "{endpoints_param}: one endpoint only (a kernel vxlan device has one \
                     remote; failover between endpoints is not supported)"
                ),
            );
            return None;
        }
    };
    let vni_param = format!("{io}VNI");
    let vni = match r.number(&vni_param) {
        Some(v) => match u32::try_from(v).ok().and_then(Vni::new) {
            Some(vni) => vni.get(),
            None => {
                r.problem(
                    &[&vni_param],
                    format!(
                        "{vni_param} {v}: a CPE-chosen VNI (-1) is not supported; the VNI must \
                         match the vG's subscriber"
                    ),
                );
                return None;
            }
        },
        None => return None,
    };
    let port_param = format!("{to}RemotePort");
    let dst_port = r
        .number(&port_param)
        .and_then(|p| u16::try_from(p).ok())
        .unwrap_or(VXLAN_PORT);
    if dst_port == 0 {
        r.problem(&[&port_param], format!("{port_param}: 0 is not a port"));
        return None;
    }
    let src_port = r
        .number(&format!("{to}SourcePort"))
        .and_then(|p| u16::try_from(p).ok())
        .filter(|&p| p != 0);
    let layers = format!("{io}LowerLayers");
    let (underlay, local) = match r.single_ref(
        &layers,
        &["Device.IP.Interface.{i} (the underlay carrying the tunnel)"],
        |r| matches!(r, Ref::IpIface(_)),
    ) {
        Some(Ref::IpIface(i)) => underlay(r, i, remote),
        _ => (None, None),
    };
    let name = vxlan_name(t, n);
    if name.len() > IFNAME_MAX {
        r.problem(
            &[&layers],
            format!("{io}: the tunnel and interface numbers are too large for a Linux name"),
        );
        return None;
    }
    Some((
        VxlanSpec {
            name,
            vni,
            remote,
            local,
            underlay,
            dst_port,
            src_port,
        },
        tunnel_on && iface_on,
    ))
}

/// The underlay device (the `IP.Interface`'s `Name`) and the local VTEP address (its first
/// enabled IPv4 address, when the remote is IPv4).
fn underlay(r: &mut Reader<'_, '_>, i: u32, remote: IpAddr) -> (Option<String>, Option<IpAddr>) {
    let o = format!("Device.IP.Interface.{i}.");
    let name = r.text(&format!("{o}Name"));
    let dev = (!name.is_empty() && name.len() <= IFNAME_MAX).then_some(name);
    let local = if remote.is_ipv4() {
        r.view
            .instances(&format!("{o}IPv4Address."))
            .into_iter()
            .filter(|a| r.flag(&format!("{o}IPv4Address.{a}.Enable")))
            .find_map(|a| {
                r.text(&format!("{o}IPv4Address.{a}.IPAddress"))
                    .parse::<Ipv4Addr>()
                    .ok()
                    .map(IpAddr::V4)
            })
    } else {
        None
    };
    (dev, local)
}

/// The `Device.InterfaceStack` pairs `(HigherLayer, LowerLayer)` of the model: one per
/// existing reference in the `LowerLayers` of an interface object brgd applies (bridge
/// ports, Ethernet links and VLAN terminations, VXLAN interfaces, IP interfaces), in
/// TR-181's form (no trailing dot).
pub fn interface_stack(view: &View<'_>) -> Vec<(String, String)> {
    let mut objects = Vec::new();
    for b in view.instances("Device.Bridging.Bridge.") {
        for p in view.instances(&format!("Device.Bridging.Bridge.{b}.Port.")) {
            objects.push(format!("Device.Bridging.Bridge.{b}.Port.{p}"));
        }
    }
    for table in ["Link", "VLANTermination"] {
        for n in view.instances(&format!("Device.Ethernet.{table}.")) {
            objects.push(format!("Device.Ethernet.{table}.{n}"));
        }
    }
    for t in view.instances("Device.VXLAN.Tunnel.") {
        for n in view.instances(&format!("Device.VXLAN.Tunnel.{t}.Interface.")) {
            objects.push(format!("Device.VXLAN.Tunnel.{t}.Interface.{n}"));
        }
    }
    for n in view.instances("Device.IP.Interface.") {
        objects.push(format!("Device.IP.Interface.{n}"));
    }
    let mut out = Vec::new();
    for higher in objects {
        let Some(value) = view.get(&format!("{higher}.LowerLayers")) else {
            continue;
        };
        for item in value.list_items() {
            let lower = item.trim_end_matches('.');
            if Ref::parse(lower).is_some() && view.exists(&format!("{lower}.")) {
                out.push((higher.clone(), lower.to_owned()));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests;
