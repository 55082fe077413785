//! Applies the TR-181 model to Linux: the subscriber bridge, its LAN ports and the LSL
//! uplink (the tc tagger for 802.1Q/QinQ, a kernel vxlan device for VXLAN).
//!
//! [`Desired`] is what the model asks for, computed without I/O from a
//! [`View`]; [`LinuxApplier`] is the [`Backend`] that validates ACS writes
//! against the shapes below and reconciles the kernel to the result through rtnetlink.
//!
//! # Accepted TR-181 shapes
//!
//! Interface stacking follows TR-181's `LowerLayers` conventions (Device:2 section 4.2),
//! one lower layer per object (`A -> B` means `A.LowerLayers = B`):
//!
//! ```text
//!  Device.Bridging.Bridge.{b}                       Enable -> Linux bridge br<b-1> exists
//!    AgingTime                                      -> bridge ageing_time
//!    Standard                                       any (the bridge is VLAN-unaware)
//!    .Port.{m}  ManagementPort=true                 the bridge device itself; LowerLayers may
//!                                                   list only this bridge's ports (or be empty)
//!    .Port.{p}  ManagementPort=false, Type=VLANUnawarePort, one of:
//!      LAN:   -> Device.Ethernet.Interface.{i}                (Name = the Linux device)
//!      802.1Q:-> Device.Ethernet.VLANTermination.{c}          (TPID 33024 = 0x8100, VLANID = C-VID)
//!                 -> Device.Ethernet.Link.{l} -> Device.Ethernet.Interface.{u}   (the uplink)
//!      QinQ:  -> VLANTermination.{c} (C-tag as above)
//!                 -> VLANTermination.{s} (TPID 0x88A8, 0x8100 or 0x9100; VLANID = S-VID)
//!                 -> Device.Ethernet.Link.{l} -> Device.Ethernet.Interface.{u}
//!      VXLAN: -> Device.VXLAN.Tunnel.{t}.Interface.{v}       (VNI 0..16777215)
//!                 [-> Device.IP.Interface.{n}: the underlay: its Name is the vxlan device's
//!                     `dev`, its first enabled IPv4Address the `local` VTEP address]
//!               Tunnel.{t}: RemoteEndpoints = one IP address (the vG's VTEP) -> `remote`,
//!                           RemotePort -> `dstport` (4789), SourcePort (0 = kernel's range)
//! ```
//!
//! In Linux:
//! - each enabled bridge is a Linux bridge named `br<b-1>` (`Bridge.1` is `br0`), up;
//! - a LAN member is its `Ethernet.Interface` enslaved as is;
//! - an 802.1Q/QinQ member is the uplink `Ethernet.Interface` enslaved, with the eBPF tagger
//!   ([`crate::tagger`]) attached to it with the LSL's tags (and transmit VLAN offload off,
//!   so tags are written in-line). One uplink carries one VLAN LSL;
//! - a VXLAN member is a kernel vxlan device `vx<t>-<v>` (VNI, remote, local, underlay
//!   device, dstport, learning off, MTU = underlay MTU - 50 (70 over IPv6)) enslaved;
//! - a member is up when its port and every layer below it are enabled, down otherwise (it
//!   stays enslaved); a disabled bridge does not exist in Linux.
//!
//! Refused (`validate`): bridge `VLAN`/`VLANPort` entries that are enabled and port `Type`s
//! other than `VLANUnawarePort` (the kernel has no bridge VLAN filtering: the LSL's tags are
//! modelled by VLANTerminations), more than one lower layer per object, a C-tag TPID other
//! than 0x8100, an S-tag TPID other than 0x88A8, 0x8100 or the legacy 0x9100 (which the
//! tagger writes in-line itself), more than two stacked terminations,
//! `Ethernet.Link` `MTU`/`MACAddress`, several or non-IP `RemoteEndpoints` (no name
//! resolution, no failover), VNI -1 (CPE-chosen), references to objects of the wrong kind or
//! that do not exist, one Linux device under two ports, and the management interface (any
//! `Ethernet.Interface` under a `Device.IP.Interface`, and the devices brgd names) as a
//! bridge member: the management IP stack stays outside the subscriber bridge (TR-124
//! WAN.BRIDGE.3). It may be a VXLAN underlay, which only reads it. An ACS that sets an
//! offending parameter gets a SetParameterValues fault (9003) with a 9007 entry for it; a
//! change that breaks the configuration otherwise is refused with 9001 naming what is
//! unsupported. A reference whose target the ACS deletes reads as empty (TR-181 strong
//! references): the port goes down instead of the delete being refused. Problems of a
//! stored configuration (reported by [`LinuxApplier::apply_initial`]) do not block later
//! writes that leave them as they are.
//!
//! Live values: `DeviceInfo.UpTime` (`/proc/uptime`), every interface's `LastChange`
//! (seconds since brgd last saw its operational state change) and the
//! `Ethernet.Interface.{i}.Stats` counters (the link's `IFLA_STATS64`) come through
//! [`Backend::read`]; `Status`, `Name` and `MACAddress`, and the management
//! `IP.Interface`'s `IPv4Address` rows, are stored parameters that the agent refreshes
//! from netlink through [`Device::report`](crate::agent::Device) (see [`live`]) at every
//! session, after every ACS write and on every rtnetlink link or address notification
//! ([`watch_links`]); a refreshed value that differs is a value change the ACS hears
//! about under its Notification attribute. [`publish_interface_stack`] keeps
//! `Device.InterfaceStack` in line with the `LowerLayers` after every write.
//!
//! # Applying
//! The kernel work runs on one worker thread (see [`linux`]) that owns the rtnetlink
//! connection on a current-thread tokio runtime, the taggers, and the [`record`] of
//! the devices it created (persisted in the state directory). Reconciling changes only what
//! differs, so applying the same [`Desired`] twice changes nothing. It deletes only devices
//! it created, and touches other devices only when the model names them (LAN ports and
//! uplinks: enslaved, released, set up or down); the management interface is never touched.
//! If a step fails, the applier reconciles back to the last good [`Desired`] and returns
//! fault 9002, and the model rolls its tree back: both stay on the last good configuration.
//! At boot, [`LinuxApplier::apply_initial`] applies the restored model once, deleting
//! devices a previous run created that the model no longer has.
//!
//! # Use in brgd
//! ```text
//! let applier = LinuxApplier::new(ApplierConfig { state_dir, protected: vec![mgmt] })?;
//!                                    // in brgd's network namespace, before the ACS session
//! let mut agent = Agent::new(config, applier, cancel).await?;   // restores the model, then
//!     // inventory(&mut model, &ports); ip_inventory(&mut model, mgmt);
//!     // backend.restored(view) (apply_initial); publish (Device::report + interface stack)
//! agent.watch_links(watch_links()?);  // publish again on every link/address notification
//! agent.run().await?;                 // publishes at every session and after every write
//! ```

pub mod desired;
pub mod linux;
pub mod live;
pub mod record;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use cwmp::fault::{Fault, FaultCode, SetParameterValuesFault};
use cwmp::model::{Backend, Change, ChangeKind, Model, ModelError, PathRef, Value, View};
use cwmp::soap::Status;
use rtnetlink::packet_route::link::State as OperState;
use tracing::{info, warn};

pub use desired::{
    BridgeSpec, Desired, Member, MemberKind, Problem, Protected, VxlanSpec, bridge_name,
    interface_stack, vxlan_name,
};
pub use linux::{ApplyError, TaggerCounters};
pub use live::{ip_inventory, watch_links};
pub use record::{CreatedKind, Record};

use crate::tagger::Tags;
use linux::Worker;

/// How the applier is set up.
#[derive(Debug, Clone, Default)]
pub struct ApplierConfig {
    /// Where the record of created devices is kept (none: in memory only, for tests).
    pub state_dir: Option<PathBuf>,
    /// Linux devices that must never be bridge members (the management interface).
    pub protected: Vec<String>,
}

/// The [`Backend`] that applies the bridging model to the network namespace it was created
/// in.
#[derive(Debug)]
pub struct LinuxApplier {
    worker: Worker,
    protected: Protected,
    /// Behind a lock so that the boot and refresh calls take `&self` and can be made with
    /// the model's own view (`model.backend().apply_initial(&model.view())`).
    state: Mutex<State>,
}

/// What the applier remembers between calls.
#[derive(Debug, Default)]
struct State {
    /// The configuration in force.
    last_good: Desired,
    /// Problems of the configuration in force: not new, so not a reason to refuse a write.
    known: BTreeSet<Problem>,
    /// Object path (`Device.Ethernet.Interface.1.`) -> Linux device, for live reads.
    devices: BTreeMap<String, String>,
}

impl LinuxApplier {
    /// Starts the applier in the calling thread's network namespace. Nothing is changed
    /// until [`apply_initial`](Self::apply_initial) or the first ACS write.
    pub fn new(config: ApplierConfig) -> Result<LinuxApplier, ApplyError> {
        Ok(LinuxApplier {
            worker: Worker::spawn(config.state_dir)?,
            protected: Protected {
                devices: config.protected,
            },
            state: Mutex::new(State::default()),
        })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The plan for `view`, with its problems.
    pub fn plan(&self, view: &View<'_>) -> (Desired, Vec<Problem>) {
        Desired::from_view(view, &self.protected)
    }

    /// Applies the (restored) model once at boot: everything valid is applied, devices
    /// created by a previous run that the model no longer has are deleted. Returns the
    /// problems of the parts left out (they are logged too).
    pub fn apply_initial(&self, view: &View<'_>) -> Result<Vec<Problem>, ApplyError> {
        let (desired, problems) = self.plan(view);
        for p in &problems {
            warn!(problem = %p, "stored configuration: left out");
        }
        let plan = desired.clone();
        match self.worker.call(move |k| k.reconcile(&plan))? {
            Ok(()) => {
                info!(lsls = ?desired.lsls(), "stored configuration applied");
                let mut state = self.state();
                state.last_good = desired;
                state.known = problems.iter().cloned().collect();
                state.devices = device_map(view, &state.last_good);
                Ok(problems)
            }
            Err(e) => {
                let previous = self.state().last_good.clone();
                if let Ok(Err(rb)) = self.worker.call(move |k| k.reconcile(&previous)) {
                    warn!(error = %chain(&rb), "rolling back failed");
                }
                Err(e)
            }
        }
    }

    /// The configuration in force in Linux.
    pub fn desired(&self) -> Desired {
        self.state().last_good.clone()
    }

    /// Re-reads the model's device names for live reads (call after adding
    /// `Ethernet.Interface` or `IP.Interface` instances outside an ACS write).
    pub fn refresh(&self, view: &View<'_>) {
        let mut state = self.state();
        state.devices = device_map(view, &state.last_good);
    }

    /// The devices the applier created, as recorded.
    pub fn created(&self) -> Result<Record, ApplyError> {
        self.worker.call(|k| k.created())
    }

    /// The tags of each uplink's tagger.
    pub fn taggers(&self) -> Result<BTreeMap<String, Tags>, ApplyError> {
        self.worker.call(|k| k.taggers())
    }

    /// The counters of each uplink's tagger (frames tagged, untagged, dropped and why).
    pub fn tagger_counters(&self) -> Result<TaggerCounters, ApplyError> {
        self.worker.call(|k| k.tagger_counters())?
    }

    /// The operational state of every device the model names, as TR-181 `Status` and
    /// `MACAddress` values to store with [`Model::set`] (see [`publish_status`]).
    pub fn status(&self, view: &View<'_>) -> Vec<(String, Value)> {
        let last_good = self.state().last_good.clone();
        // From the view, not the map of the last ACS write: the agent adds instances of
        // its own (the management IP.Interface) between writes.
        let devices = device_map(view, &last_good);
        let links = self
            .worker
            .call(|k| k.links())
            .ok()
            .and_then(Result::ok)
            .unwrap_or_default();
        let mut out = Vec::new();
        for (object, dev) in &devices {
            let link = links.get(dev);
            let status = match link {
                None => "NotPresent",
                Some(l) if !l.up => "Down",
                Some(l) => if_status(&l.oper),
            };
            if view.exists(&format!("{object}Status")) {
                out.push((format!("{object}Status"), Value::from(status)));
            }
            if object.starts_with("Device.Ethernet.Interface.")
                && let Some(l) = link
            {
                let mac: Vec<String> = l.mac.iter().map(|b| format!("{b:02X}")).collect();
                out.push((
                    format!("{object}MACAddress"),
                    Value::from(mac.join(":").as_str()),
                ));
            }
            // Names of the objects brgd realises as Linux devices. (A VLANTermination has
            // no device of its own here: the tagger works on the uplink.)
            if ["Device.Bridging.", "Device.Ethernet.Link.", "Device.VXLAN."]
                .iter()
                .any(|prefix| object.starts_with(prefix))
            {
                out.push((format!("{object}Name"), Value::from(dev.as_str())));
            }
        }
        for b in view.instances("Device.Bridging.Bridge.") {
            let o = format!("Device.Bridging.Bridge.{b}.");
            let name = bridge_name(b);
            let status = match (last_good.bridge(b), links.get(&name)) {
                (None, _) => "Disabled",
                (Some(_), Some(l)) if l.up => "Enabled",
                (Some(_), _) => "Error",
            };
            out.push((format!("{o}Status"), Value::from(status)));
        }
        for t in view.instances("Device.VXLAN.Tunnel.") {
            let o = format!("Device.VXLAN.Tunnel.{t}.");
            let enabled = view
                .get(&format!("{o}Enable"))
                .and_then(|v| v.as_bool())
                .unwrap_or(false);
            out.push((
                format!("{o}Status"),
                Value::from(if enabled { "Enabled" } else { "Disabled" }),
            ));
        }
        out
    }
}

impl LinuxApplier {
    /// A `Stats.` counter of `object`'s Linux device (`IFLA_STATS64`); 0 when the device is
    /// unknown or gone (a GetParameterValues of the whole tree must not fail on it).
    /// StatsCounter32 counters wrap at 2^32, as TR-181 says they do.
    fn counter(&self, object: &str, counter: &str) -> u64 {
        let Some(dev) = self.state().devices.get(object).cloned() else {
            return 0;
        };
        let Some(stats) = self
            .worker
            .call(move |k| k.link(&dev))
            .ok()
            .and_then(Result::ok)
            .flatten()
            .and_then(|l| l.stats)
        else {
            return 0;
        };
        match counter {
            "BytesSent" => stats.tx_bytes,
            "BytesReceived" => stats.rx_bytes,
            "PacketsSent" => stats.tx_packets,
            "PacketsReceived" => stats.rx_packets,
            "ErrorsSent" => stats.tx_errors & u64::from(u32::MAX),
            "ErrorsReceived" => stats.rx_errors & u64::from(u32::MAX),
            "DiscardPacketsSent" => stats.tx_dropped & u64::from(u32::MAX),
            "DiscardPacketsReceived" => stats.rx_dropped & u64::from(u32::MAX),
            _ => 0,
        }
    }
}

/// Stores [`LinuxApplier::status`] in the model (changes drive value-change notification).
pub fn publish_status(model: &mut Model<LinuxApplier>) -> Result<(), ModelError> {
    let updates = model.backend().status(&model.view());
    for (path, value) in updates {
        model.set(&path, value)?;
    }
    Ok(())
}

/// Lists the BRG's Ethernet ports in `Device.Ethernet.Interface` (a table only the device
/// fills): `devices[k]` is instance `k + 1` on every start, with its `Name`, so that the
/// ACS's references (`Device.Ethernet.Interface.2`) keep naming the same port across
/// restarts (names are read-only, hence not stored with the model). Instances past the
/// list are removed.
pub fn inventory<B: Backend>(model: &mut Model<B>, devices: &[&str]) -> Result<(), ModelError> {
    let table = "Device.Ethernet.Interface.";
    let existing = model.instances(table)?;
    for n in &existing {
        if usize::try_from(*n).map_or(true, |n| n > devices.len()) {
            model.delete_instance(&format!("{table}{n}."))?;
        }
    }
    for (k, dev) in devices.iter().enumerate() {
        let n = u32::try_from(k + 1).map_err(|_| ModelError::TableFull(table.to_owned()))?;
        if !existing.contains(&n) {
            model.add_instance(table, Some(n))?;
        }
        model.set(&format!("{table}{n}.Name"), *dev)?;
    }
    Ok(())
}

/// Rewrites `Device.InterfaceStack` from the model's `LowerLayers` ([`interface_stack`]);
/// leaves the table alone when it already matches (instance numbers are never reused, so
/// rewriting it for nothing would only churn them).
pub fn publish_interface_stack<B: Backend>(model: &mut Model<B>) -> Result<(), ModelError> {
    let want = interface_stack(&model.view());
    let rows = model.instances("Device.InterfaceStack.")?;
    let mut have = Vec::new();
    for n in &rows {
        let get = |p: &str| {
            model
                .get(&format!("Device.InterfaceStack.{n}.{p}"))
                .map(|v| v.to_string())
        };
        have.push((get("HigherLayer")?, get("LowerLayer")?));
    }
    if have == want {
        return Ok(());
    }
    for n in rows {
        model.delete_instance(&format!("Device.InterfaceStack.{n}."))?;
    }
    for (higher, lower) in want {
        let n = model.add_instance("Device.InterfaceStack.", None)?;
        model.set(
            &format!("Device.InterfaceStack.{n}.HigherLayer"),
            higher.as_str(),
        )?;
        model.set(
            &format!("Device.InterfaceStack.{n}.LowerLayer"),
            lower.as_str(),
        )?;
    }
    Ok(())
}

/// TR-181 interface `Status` for a Linux operational state.
fn if_status(state: &OperState) -> &'static str {
    match state {
        OperState::Up => "Up",
        OperState::Down => "Down",
        OperState::LowerLayerDown => "LowerLayerDown",
        OperState::Dormant => "Dormant",
        OperState::NotPresent => "NotPresent",
        // Virtual devices without carrier tracking (bridges with no ports, vxlan) report
        // "unknown" while passing traffic.
        OperState::Unknown => "Up",
        _ => "Unknown",
    }
}

/// The error and its sources, `: `-separated.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        text.push_str(": ");
        text.push_str(&s.to_string());
        cur = s.source();
    }
    text
}

/// Object path -> Linux device for every interface object the model names.
fn device_map(view: &View<'_>, desired: &Desired) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let name = |path: String| view.get(&path).map(|v| v.to_string()).unwrap_or_default();
    for i in view.instances("Device.Ethernet.Interface.") {
        let dev = name(format!("Device.Ethernet.Interface.{i}.Name"));
        if !dev.is_empty() {
            out.insert(format!("Device.Ethernet.Interface.{i}."), dev);
        }
    }
    for i in view.instances("Device.IP.Interface.") {
        let dev = name(format!("Device.IP.Interface.{i}.Name"));
        if !dev.is_empty() {
            out.insert(format!("Device.IP.Interface.{i}."), dev);
        }
    }
    let lower = |path: String| -> Option<String> {
        let v = view.get(&path)?;
        match v.list_items().as_slice() {
            [one] => Some(format!("{}.", one.trim_end_matches('.'))),
            _ => None,
        }
    };
    for l in view.instances("Device.Ethernet.Link.") {
        let o = format!("Device.Ethernet.Link.{l}.");
        if let Some(dev) = lower(format!("{o}LowerLayers")).and_then(|i| out.get(&i).cloned()) {
            out.insert(o, dev);
        }
    }
    // Terminations resolve through at most two levels to a Link.
    for _ in 0..2 {
        for n in view.instances("Device.Ethernet.VLANTermination.") {
            let o = format!("Device.Ethernet.VLANTermination.{n}.");
            if let Some(dev) = lower(format!("{o}LowerLayers")).and_then(|i| out.get(&i).cloned()) {
                out.insert(o, dev);
            }
        }
    }
    for t in view.instances("Device.VXLAN.Tunnel.") {
        for v in view.instances(&format!("Device.VXLAN.Tunnel.{t}.Interface.")) {
            out.insert(
                format!("Device.VXLAN.Tunnel.{t}.Interface.{v}."),
                vxlan_name(t, v),
            );
        }
    }
    for b in view.instances("Device.Bridging.Bridge.") {
        let br = format!("Device.Bridging.Bridge.{b}.");
        for p in view.instances(&format!("{br}Port.")) {
            let o = format!("{br}Port.{p}.");
            let management = view
                .get(&format!("{o}ManagementPort"))
                .and_then(|v| v.as_bool())
                .unwrap_or(false);
            let dev = if management {
                desired.bridge(b).map(|s| s.name.clone())
            } else {
                desired
                    .bridge(b)
                    .and_then(|s| s.members.iter().find(|m| m.port == p))
                    .map(|m| m.dev().to_owned())
            };
            if let Some(dev) = dev {
                out.insert(o, dev);
            }
        }
    }
    out
}

/// `/proc/uptime`'s first field, in whole seconds.
fn uptime() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/uptime").ok()?;
    let secs: f64 = text.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_secs_f64(secs).as_secs())
}

impl Backend for LinuxApplier {
    /// `DeviceInfo.UpTime` and the interfaces' `LastChange` (0 for an interface whose
    /// device is unknown: a GetParameterValues of the whole tree must not fail on it).
    fn read(&self, param: PathRef<'_>) -> Result<Value, Fault> {
        if param.path == "Device.DeviceInfo.UpTime" {
            return uptime()
                .map(Value::Unsigned)
                .ok_or_else(|| Fault::with_string(FaultCode::InternalError, "no /proc/uptime"));
        }
        if let Some((object, counter)) = param.path.rsplit_once(".Stats.") {
            return Ok(Value::Unsigned(
                self.counter(&format!("{object}."), counter),
            ));
        }
        if let Some(object) = param.path.strip_suffix("LastChange") {
            let Some(dev) = self.state().devices.get(object).cloned() else {
                return Ok(Value::Unsigned(0));
            };
            let secs = self
                .worker
                .call(move |k| k.last_change(&dev))
                .ok()
                .flatten()
                .map_or(0, |(secs, _)| secs);
            return Ok(Value::Unsigned(secs));
        }
        Err(Fault::with_string(
            FaultCode::InternalError,
            format!("{} is not a live parameter of the applier", param.path),
        ))
    }

    fn validate(&self, view: &View<'_>, changes: &[Change]) -> Result<(), Fault> {
        let (_, problems) = self.plan(view);
        let set: BTreeSet<&str> = changes
            .iter()
            .filter(|c| matches!(c.kind, ChangeKind::Set { .. }))
            .map(|c| c.path.as_str())
            .collect();
        let known = self.state().known.clone();
        let mut per_param: BTreeMap<String, String> = BTreeMap::new();
        let mut other = Vec::new();
        for p in problems {
            let hits: Vec<&String> = p
                .params
                .iter()
                .filter(|q| set.contains(q.as_str()))
                .collect();
            if !hits.is_empty() {
                for hit in hits {
                    per_param
                        .entry(hit.clone())
                        .or_insert_with(|| p.message.clone());
                }
            } else if !p.dangling && !known.contains(&p) {
                other.push(p.message);
            }
        }
        if !per_param.is_empty() {
            return Err(Fault::set_parameter_values(
                per_param
                    .into_iter()
                    .map(|(name, string)| SetParameterValuesFault {
                        parameter_name: name,
                        code: FaultCode::InvalidParameterValue,
                        string,
                    })
                    .collect(),
            ));
        }
        if !other.is_empty() {
            return Err(Fault::with_string(
                FaultCode::RequestDenied,
                format!("unsupported configuration: {}", other.join("; ")),
            ));
        }
        Ok(())
    }

    fn apply(&mut self, view: &View<'_>, _changes: &[Change]) -> Result<Status, Fault> {
        let (desired, problems) = self.plan(view);
        let plan = desired.clone();
        let result = self
            .worker
            .call(move |k| k.reconcile(&plan))
            .and_then(|r| r);
        match result {
            Ok(()) => {
                let mut state = self.state();
                if desired != state.last_good {
                    info!(lsls = ?desired.lsls(), bridges = desired.bridges.len(), "configuration applied");
                }
                state.last_good = desired;
                state.known = problems.into_iter().collect();
                state.devices = device_map(view, &state.last_good);
                Ok(Status::Applied)
            }
            Err(e) => {
                let why = chain(&e);
                warn!(error = %why, "applying failed: rolling back");
                let previous = self.state().last_good.clone();
                let rollback = match self.worker.call(move |k| k.reconcile(&previous)) {
                    Ok(Ok(())) => "rolled back to the last good configuration".to_owned(),
                    Ok(Err(rb)) => format!("rolling back failed too: {}", chain(&rb)),
                    Err(rb) => format!("rolling back failed too: {rb}"),
                };
                Err(Fault::with_string(
                    FaultCode::InternalError,
                    format!("applying to Linux failed: {why}; {rollback}"),
                ))
            }
        }
    }

    fn restored(&self, view: &View<'_>) {
        if let Err(e) = self.apply_initial(view) {
            warn!(error = %chain(&e), "applying the stored configuration failed");
        }
    }
}
