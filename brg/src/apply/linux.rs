//! The kernel side: one worker thread that owns the rtnetlink connection (on its own
//! current-thread tokio runtime), the tc taggers and the record, and reconciles a
//! [`Desired`] to the links of the network namespace it was started in.
//!
//! Why a thread: [`Backend`](cwmp::model::Backend) methods are synchronous and brgd calls
//! them from inside its own tokio runtime, where `block_on` would panic. The worker is
//! started by `Worker::spawn` and inherits the caller's network namespace, so netlink,
//! the taggers' tcx links and the ethtool calls all act on the same namespace whoever calls.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::Instant;

use futures::TryStreamExt as _;
use rtnetlink::packet_route::address::{
    AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage,
};
use rtnetlink::packet_route::link::{
    InfoBridge, InfoData, InfoKind, InfoVxlan, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
    State, Stats64,
};
use rtnetlink::{Handle, LinkBridge, LinkMessageBuilder, LinkUnspec, LinkVxlan};
use tracing::{debug, info, warn};

use super::desired::{Desired, MemberKind, VxlanSpec};
use super::record::{CreatedKind, Record, RecordError};
use crate::tagger::{Tagger, TaggerError, Tags};

/// Each uplink's tagger counters ([`Tagger::counters`]), by uplink.
pub type TaggerCounters = BTreeMap<String, Vec<(nerg_abi::brg::TagCounter, u64)>>;

/// Bytes VXLAN adds in front of the inner frame over IPv4 (outer IPv4 20, UDP 8, VXLAN 8,
/// inner Ethernet 14), RFC 7348 section 4.
const VXLAN_OVERHEAD_V4: u32 = 50;
/// The same over IPv6 (outer header 40 bytes).
const VXLAN_OVERHEAD_V6: u32 = 70;
/// The MTU assumed for the underlay when the tunnel is not bound to a device.
const DEFAULT_MTU: u32 = 1500;
/// The smallest MTU set on a vxlan device (the IPv4 minimum, RFC 791).
const MIN_MTU: u32 = 68;

/// Why applying to the kernel failed.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// A netlink request failed.
    #[error("{what}")]
    Netlink {
        /// The request, e.g. `creating bridge br0`.
        what: String,
        /// The kernel's answer.
        #[source]
        source: rtnetlink::Error,
    },
    /// The model names a device this namespace does not have.
    #[error("{0} does not exist")]
    Missing(String),
    /// A device the applier would create already exists and was not created by it.
    #[error("{name} already exists and was not created by brgd (a {kind} is needed)")]
    NotOurs {
        /// The device.
        name: String,
        /// What the applier needs there.
        kind: &'static str,
    },
    /// Loading, attaching or configuring the tagger failed.
    #[error("the LSL tagger on {uplink}")]
    Tagger {
        /// The uplink.
        uplink: String,
        /// Why.
        #[source]
        source: Box<TaggerError>,
    },
    /// Transmit VLAN offload could not be switched off.
    #[error("switching transmit VLAN offload off on {dev}")]
    Offload {
        /// The device.
        dev: String,
        /// Why.
        #[source]
        source: lsl::offload::OffloadError,
    },
    /// The record could not be written.
    #[error("recording created devices")]
    Record(#[from] RecordError),
    /// Setting up the worker failed.
    #[error("starting the netlink worker: {0}")]
    Start(String),
    /// The worker thread is gone (it panicked).
    #[error("the netlink worker thread is gone")]
    WorkerGone,
}

type Job = Box<dyn FnOnce(&mut Kernel) + Send>;

/// The handle on the worker thread; dropping it stops the thread (taggers detach).
#[derive(Debug)]
pub(crate) struct Worker {
    tx: Option<mpsc::Sender<Job>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Worker {
    /// Starts the worker in the calling thread's network namespace, with the record kept in
    /// `state_dir` (none: in memory only).
    pub(crate) fn spawn(state_dir: Option<PathBuf>) -> Result<Worker, ApplyError> {
        let record = match &state_dir {
            Some(dir) => Record::load(dir)?,
            None => Record::default(),
        };
        let (tx, rx) = mpsc::channel::<Job>();
        let (ready_tx, ready_rx) = mpsc::channel::<Result<(), String>>();
        let thread = std::thread::Builder::new()
            .name("brg-netlink".into())
            .spawn(move || {
                let kernel = Kernel::new(record, state_dir);
                let mut kernel = match kernel {
                    Ok(k) => {
                        let _ = ready_tx.send(Ok(()));
                        k
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                while let Ok(job) = rx.recv() {
                    job(&mut kernel);
                }
            })
            .map_err(|e| ApplyError::Start(e.to_string()))?;
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(Worker {
                tx: Some(tx),
                thread: Some(thread),
            }),
            Ok(Err(e)) => Err(ApplyError::Start(e)),
            Err(_) => Err(ApplyError::WorkerGone),
        }
    }

    /// Runs `f` on the worker and waits for its result.
    pub(crate) fn call<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Kernel) -> R + Send + 'static,
    ) -> Result<R, ApplyError> {
        let (reply_tx, reply_rx) = mpsc::channel();
        let job: Job = Box::new(move |k| {
            let _ = reply_tx.send(f(k));
        });
        self.tx
            .as_ref()
            .ok_or(ApplyError::WorkerGone)?
            .send(job)
            .map_err(|_| ApplyError::WorkerGone)?;
        reply_rx.recv().map_err(|_| ApplyError::WorkerGone)
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        drop(self.tx.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// What the applier needs to know of one link.
#[derive(Debug, Clone)]
pub(crate) struct Link {
    pub(crate) index: u32,
    pub(crate) kind: Option<InfoKind>,
    pub(crate) master: Option<u32>,
    pub(crate) up: bool,
    pub(crate) mtu: u32,
    pub(crate) oper: State,
    pub(crate) mac: Vec<u8>,
    pub(crate) stats: Option<Stats64>,
    pub(crate) bridge: Vec<InfoBridge>,
    pub(crate) vxlan: Vec<InfoVxlan>,
}

impl Link {
    fn from_message(msg: LinkMessage) -> (String, Link) {
        let mut name = String::new();
        let mut link = Link {
            index: msg.header.index,
            kind: None,
            master: None,
            up: msg.header.flags.contains(LinkFlags::Up),
            mtu: 0,
            oper: State::Unknown,
            mac: Vec::new(),
            stats: None,
            bridge: Vec::new(),
            vxlan: Vec::new(),
        };
        for attr in msg.attributes {
            match attr {
                LinkAttribute::IfName(n) => name = n,
                LinkAttribute::Controller(m) if m != 0 => link.master = Some(m),
                LinkAttribute::Mtu(m) => link.mtu = m,
                LinkAttribute::OperState(s) => link.oper = s,
                LinkAttribute::Address(a) => link.mac = a,
                LinkAttribute::Stats64(st) => link.stats = Some(st),
                LinkAttribute::LinkInfo(infos) => {
                    for info in infos {
                        match info {
                            LinkInfo::Kind(k) => link.kind = Some(k),
                            LinkInfo::Data(InfoData::Bridge(b)) => link.bridge = b,
                            LinkInfo::Data(InfoData::Vxlan(v)) => link.vxlan = v,
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        (name, link)
    }

    fn ageing(&self) -> Option<u32> {
        self.bridge.iter().find_map(|a| match a {
            InfoBridge::AgeingTime(t) => Some(*t),
            _ => None,
        })
    }
}

/// One address of a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Address {
    pub(crate) ip: IpAddr,
    pub(crate) prefix_len: u8,
    /// Configured without a lifetime (static); a leased address (DHCP, SLAAC) has one.
    pub(crate) permanent: bool,
    /// Where duplicate address detection and lifetimes left it (IPv6).
    pub(crate) state: AddressState,
}

/// The state of an address, as TR-181's `IPv6Address.{i}.IPAddressStatus` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AddressState {
    Preferred,
    Deprecated,
    Tentative,
    Duplicate,
}

impl AddressState {
    /// The TR-181 enumeration value.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Preferred => "Preferred",
            Self::Deprecated => "Deprecated",
            Self::Tentative => "Tentative",
            Self::Duplicate => "Duplicate",
        }
    }
}

/// The worker's state: netlink, taggers, the record, and what `LastChange` needs.
pub(crate) struct Kernel {
    rt: tokio::runtime::Runtime,
    handle: Handle,
    taggers: BTreeMap<String, (Tagger, Tags)>,
    record: Record,
    state_dir: Option<PathBuf>,
    /// Per device: the operational state last seen and since when.
    seen: BTreeMap<String, (State, Instant)>,
}

fn nl(what: impl Into<String>) -> impl FnOnce(rtnetlink::Error) -> ApplyError {
    let what = what.into();
    move |source| ApplyError::Netlink { what, source }
}

/// Whether a netlink error is "no such device" (already gone).
fn is_enodev(e: &rtnetlink::Error) -> bool {
    matches!(e, rtnetlink::Error::NetlinkError(m) if m.to_io().raw_os_error() == Some(ENODEV))
}

/// `ENODEV` (`<errno.h>`).
const ENODEV: i32 = 19;

impl Kernel {
    fn new(record: Record, state_dir: Option<PathBuf>) -> Result<Kernel, String> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("tokio runtime: {e}"))?;
        let handle = rt.block_on(async {
            let (conn, handle, _) =
                rtnetlink::new_connection().map_err(|e| format!("netlink socket: {e}"))?;
            tokio::spawn(conn);
            Ok::<_, String>(handle)
        })?;
        Ok(Kernel {
            rt,
            handle,
            taggers: BTreeMap::new(),
            record,
            state_dir,
            seen: BTreeMap::new(),
        })
    }

    /// Every link of the namespace, by name.
    pub(crate) fn links(&mut self) -> Result<BTreeMap<String, Link>, ApplyError> {
        let handle = self.handle.clone();
        let msgs: Vec<LinkMessage> = self
            .rt
            .block_on(async move { handle.link().get().execute().try_collect().await })
            .map_err(nl("listing links"))?;
        let links: BTreeMap<String, Link> = msgs.into_iter().map(Link::from_message).collect();
        // Every dump is a look at the operational states: `LastChange` counts from the
        // first one that saw the current state (the agent dumps on every link event).
        let now = Instant::now();
        for (name, link) in &links {
            let entry = self.seen.entry(name.clone()).or_insert((link.oper, now));
            if entry.0 != link.oper {
                *entry = (link.oper, now);
            }
        }
        Ok(links)
    }

    /// The addresses of `dev` (IPv4 and IPv6, global and link scope): address, prefix
    /// length, and whether it is permanent (configured, not leased: no lifetime).
    pub(crate) fn addresses(&mut self, dev: &str) -> Result<Vec<Address>, ApplyError> {
        let Some(link) = self.link(dev)? else {
            return Ok(Vec::new());
        };
        let handle = self.handle.clone();
        let msgs: Vec<AddressMessage> = self
            .rt
            .block_on(async move {
                handle
                    .address()
                    .get()
                    .set_link_index_filter(link.index)
                    .execute()
                    .try_collect()
                    .await
            })
            .map_err(nl(format!("listing the addresses of {dev}")))?;
        Ok(msgs
            .into_iter()
            .filter(|m| m.header.index == link.index)
            .filter_map(|m| {
                let permanent = m.header.flags.contains(AddressHeaderFlags::Permanent)
                    || m.attributes.iter().any(|a| {
                        matches!(a, AddressAttribute::Flags(f) if f.contains(AddressFlags::Permanent))
                    });
                // IFA_LOCAL is the interface's own address (IFA_ADDRESS the peer's on
                // point-to-point links); IPv6 sends only IFA_ADDRESS.
                let local = m.attributes.iter().find_map(|a| match a {
                    AddressAttribute::Local(ip) => Some(*ip),
                    _ => None,
                });
                let address = local.or_else(|| {
                    m.attributes.iter().find_map(|a| match a {
                        AddressAttribute::Address(ip) => Some(*ip),
                        _ => None,
                    })
                })?;
                let flag = |f: AddressFlags| {
                    m.attributes
                        .iter()
                        .any(|a| matches!(a, AddressAttribute::Flags(have) if have.contains(f)))
                };
                let state = if flag(AddressFlags::Dadfailed) {
                    AddressState::Duplicate
                } else if flag(AddressFlags::Tentative) {
                    AddressState::Tentative
                } else if flag(AddressFlags::Deprecated) {
                    AddressState::Deprecated
                } else {
                    AddressState::Preferred
                };
                Some(Address {
                    ip: address,
                    prefix_len: m.header.prefix_len,
                    permanent,
                    state,
                })
            })
            .collect())
    }

    /// One link, if it exists.
    pub(crate) fn link(&mut self, name: &str) -> Result<Option<Link>, ApplyError> {
        let handle = self.handle.clone();
        let name_owned = name.to_owned();
        let result: Result<Vec<LinkMessage>, _> = self.rt.block_on(async move {
            handle
                .link()
                .get()
                .match_name(name_owned)
                .execute()
                .try_collect()
                .await
        });
        match result {
            Ok(msgs) => Ok(msgs.into_iter().next().map(|m| Link::from_message(m).1)),
            Err(e) if is_enodev(&e) => Ok(None),
            Err(e) => Err(nl(format!("reading link {name}"))(e)),
        }
    }

    fn run(
        &mut self,
        what: String,
        fut: impl std::future::Future<Output = Result<(), rtnetlink::Error>>,
    ) -> Result<(), ApplyError> {
        debug!("{what}");
        self.rt.block_on(fut).map_err(nl(what))
    }

    fn set_link(&mut self, what: String, msg: LinkMessage) -> Result<(), ApplyError> {
        let req = self.handle.link().set(msg);
        self.run(what, req.execute())
    }

    fn delete(&mut self, name: &str, index: u32) -> Result<(), ApplyError> {
        let req = self.handle.link().del(index);
        match self.rt.block_on(req.execute()) {
            Ok(()) => Ok(()),
            Err(e) if is_enodev(&e) => Ok(()),
            Err(e) => Err(nl(format!("deleting {name}"))(e)),
        }?;
        info!(dev = name, "deleted");
        self.forget(name)
    }

    fn remember(&mut self, name: &str, kind: CreatedKind) -> Result<(), ApplyError> {
        self.record.created.insert(name.to_owned(), kind);
        self.save()
    }

    fn forget(&mut self, name: &str) -> Result<(), ApplyError> {
        if self.record.created.remove(name).is_some() {
            self.save()?;
        }
        Ok(())
    }

    fn save(&self) -> Result<(), ApplyError> {
        if let Some(dir) = &self.state_dir {
            self.record.save(dir)?;
        }
        Ok(())
    }

    /// Devices the applier created (from the record).
    pub(crate) fn created(&self) -> Record {
        self.record.clone()
    }

    /// The tags each uplink's tagger carries.
    pub(crate) fn taggers(&self) -> BTreeMap<String, Tags> {
        self.taggers
            .iter()
            .map(|(k, (_, t))| (k.clone(), *t))
            .collect()
    }

    /// Each uplink's tagger counters, summed over CPUs.
    pub(crate) fn tagger_counters(&self) -> Result<TaggerCounters, ApplyError> {
        self.taggers
            .iter()
            .map(|(uplink, (tagger, _))| {
                let counters = tagger.counters().map_err(|source| ApplyError::Tagger {
                    uplink: uplink.clone(),
                    source: Box::new(source),
                })?;
                Ok((uplink.clone(), counters))
            })
            .collect()
    }

    /// Brings the namespace to `d`, changing only what differs. Removes first (devices and
    /// taggers the plan dropped, ports no longer members), then creates and updates.
    pub(crate) fn reconcile(&mut self, d: &Desired) -> Result<(), ApplyError> {
        let links = self.links()?;
        let bridges: BTreeSet<&str> = d.bridges.iter().map(|b| b.name.as_str()).collect();
        let vxlans: BTreeMap<&str, &VxlanSpec> = d
            .members()
            .filter_map(|(_, m)| match &m.kind {
                MemberKind::Vxlan(v) => Some((v.name.as_str(), v)),
                _ => None,
            })
            .collect();
        let vlan_uplinks: BTreeMap<&str, Tags> = d
            .members()
            .filter_map(|(_, m)| match &m.kind {
                MemberKind::VlanLsl {
                    uplink,
                    s_tag,
                    c_vid,
                } => Some((
                    uplink.as_str(),
                    Tags {
                        s_tag: *s_tag,
                        c_vid: *c_vid,
                    },
                )),
                _ => None,
            })
            .collect();

        // 1. Devices we created that the plan no longer has (or that no longer exist).
        for (name, kind) in self.record.created.clone() {
            let wanted = match kind {
                CreatedKind::Bridge => bridges.contains(name.as_str()),
                CreatedKind::Vxlan => vxlans.contains_key(name.as_str()),
            };
            let kind_now = match kind {
                CreatedKind::Bridge => InfoKind::Bridge,
                CreatedKind::Vxlan => InfoKind::Vxlan,
            };
            match links.get(&name) {
                // Someone replaced it with another kind of device: not ours any more.
                Some(link) if link.kind.as_ref() != Some(&kind_now) => self.forget(&name)?,
                Some(link) if !wanted => self.delete(&name, link.index)?,
                Some(_) => {}
                None => self.forget(&name)?,
            }
        }
        // 2. Taggers on uplinks that no longer carry a VLAN LSL.
        let stale: Vec<String> = self
            .taggers
            .keys()
            .filter(|u| !vlan_uplinks.contains_key(u.as_str()))
            .cloned()
            .collect();
        for uplink in stale {
            if let Some((tagger, _)) = self.taggers.remove(&uplink) {
                let counters: BTreeMap<&str, u64> = tagger
                    .counters()
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(c, n)| (c.label(), n))
                    .collect();
                info!(%uplink, ?counters, "LSL tagger detached");
            }
        }
        // 3. Ports of our bridges that are no longer members.
        let links = self.links()?;
        let index_of = |name: &str| links.get(name).map(|l| l.index);
        for b in &d.bridges {
            let Some(br) = index_of(&b.name) else {
                continue;
            };
            let members: BTreeSet<&str> = b.members.iter().map(|m| m.dev()).collect();
            for (name, link) in &links {
                if link.master == Some(br) && !members.contains(name.as_str()) {
                    let msg = LinkUnspec::new_with_index(link.index)
                        .nocontroller()
                        .build();
                    self.set_link(format!("releasing {name} from {}", b.name), msg)?;
                    info!(dev = %name, bridge = %b.name, "released");
                }
            }
        }
        // 4. Bridges, then their members.
        for b in &d.bridges {
            let br = self.ensure_bridge(&b.name, b.ageing_secs.saturating_mul(100))?;
            for m in &b.members {
                let dev = m.dev().to_owned();
                match &m.kind {
                    MemberKind::Lan { .. } => {}
                    MemberKind::Vxlan(spec) => self.ensure_vxlan(spec)?,
                    MemberKind::VlanLsl { uplink, .. } => {
                        let tags = vlan_uplinks
                            .get(uplink.as_str())
                            .copied()
                            .ok_or_else(|| ApplyError::Missing(uplink.clone()))?;
                        self.ensure_tagger(uplink, tags)?;
                    }
                }
                let link = self
                    .link(&dev)?
                    .ok_or_else(|| ApplyError::Missing(dev.clone()))?;
                if link.master != Some(br) {
                    let msg = LinkUnspec::new_with_index(link.index)
                        .controller(br)
                        .build();
                    self.set_link(format!("enslaving {dev} to {}", b.name), msg)?;
                    info!(%dev, bridge = %b.name, "enslaved");
                }
                if link.up != m.up {
                    let builder = LinkUnspec::new_with_index(link.index);
                    let msg = if m.up { builder.up() } else { builder.down() }.build();
                    self.set_link(format!("setting {dev} {}", updown(m.up)), msg)?;
                }
            }
        }
        Ok(())
    }

    /// The bridge `name` exists (created and recorded if need be), with `ageing` (in
    /// centiseconds) and up; returns its index.
    fn ensure_bridge(&mut self, name: &str, ageing: u32) -> Result<u32, ApplyError> {
        let link = match self.link(name)? {
            Some(link) => {
                if !self.record.created.contains_key(name) || link.kind != Some(InfoKind::Bridge) {
                    return Err(ApplyError::NotOurs {
                        name: name.to_owned(),
                        kind: "bridge",
                    });
                }
                link
            }
            None => {
                // Record before creating: a crash in between leaves a record of a device
                // that may not exist, which the next start forgets.
                self.remember(name, CreatedKind::Bridge)?;
                let msg = LinkBridge::new(name)
                    .set_info_data(InfoData::Bridge(vec![InfoBridge::AgeingTime(ageing)]))
                    .build();
                let req = self.handle.link().add(msg);
                self.run(format!("creating bridge {name}"), req.execute())?;
                info!(bridge = name, "created");
                self.link(name)?
                    .ok_or_else(|| ApplyError::Missing(name.to_owned()))?
            }
        };
        if link.ageing() != Some(ageing) {
            let msg = LinkMessageBuilder::<LinkBridge>::new_with_info_kind(InfoKind::Bridge)
                .index(link.index)
                .set_info_data(InfoData::Bridge(vec![InfoBridge::AgeingTime(ageing)]))
                .build();
            let req = self.handle.link().set_port(msg);
            self.run(format!("setting ageing time of {name}"), req.execute())?;
        }
        if !link.up {
            let msg = LinkUnspec::new_with_index(link.index).up().build();
            self.set_link(format!("setting {name} up"), msg)?;
        }
        Ok(link.index)
    }

    /// The vxlan device of `spec` exists with exactly its parameters (a device that differs
    /// is recreated: the kernel cannot change a VNI or remote in place).
    fn ensure_vxlan(&mut self, spec: &VxlanSpec) -> Result<(), ApplyError> {
        let name = spec.name.as_str();
        let underlay = match &spec.underlay {
            Some(dev) => Some(
                self.link(dev)?
                    .ok_or_else(|| ApplyError::Missing(dev.clone()))?,
            ),
            None => None,
        };
        let overhead = if spec.remote.is_ipv4() {
            VXLAN_OVERHEAD_V4
        } else {
            VXLAN_OVERHEAD_V6
        };
        // At least the IPv4 minimum (RFC 791) whatever the underlay claims.
        let mtu = underlay
            .as_ref()
            .map_or(DEFAULT_MTU, |u| u.mtu)
            .saturating_sub(overhead)
            .max(MIN_MTU);
        let want = vxlan_attrs(spec, underlay.as_ref().map(|u| u.index));
        if let Some(link) = self.link(name)? {
            if !self.record.created.contains_key(name) || link.kind != Some(InfoKind::Vxlan) {
                return Err(ApplyError::NotOurs {
                    name: name.to_owned(),
                    kind: "vxlan device",
                });
            }
            if vxlan_matches(&link.vxlan, &want) {
                if link.mtu != mtu {
                    let msg = LinkUnspec::new_with_index(link.index).mtu(mtu).build();
                    self.set_link(format!("setting MTU of {name}"), msg)?;
                }
                return Ok(());
            }
            info!(dev = name, "parameters changed: recreating");
            self.delete(name, link.index)?;
        }
        self.remember(name, CreatedKind::Vxlan)?;
        let mut builder = LinkMessageBuilder::<LinkVxlan>::new(name).mtu(mtu);
        for attr in want {
            builder = builder.append_info_data(attr);
        }
        let req = self.handle.link().add(builder.build());
        self.run(format!("creating vxlan device {name}"), req.execute())?;
        info!(dev = name, vni = spec.vni, remote = %spec.remote, "vxlan device created");
        Ok(())
    }

    /// The tagger is attached to `uplink` with `tags` (transmit VLAN offload off first).
    fn ensure_tagger(&mut self, uplink: &str, tags: Tags) -> Result<(), ApplyError> {
        if let Some((tagger, current)) = self.taggers.get_mut(uplink) {
            if *current != tags {
                tagger.set_tags(tags).map_err(|source| ApplyError::Tagger {
                    uplink: uplink.to_owned(),
                    source: Box::new(source),
                })?;
                *current = tags;
                info!(%uplink, ?tags, "LSL tagger retargeted");
            }
            return Ok(());
        }
        if self.link(uplink)?.is_none() {
            return Err(ApplyError::Missing(uplink.to_owned()));
        }
        txvlan_off(uplink)?;
        let tagger = Tagger::attach(uplink, tags).map_err(|source| ApplyError::Tagger {
            uplink: uplink.to_owned(),
            source: Box::new(source),
        })?;
        info!(%uplink, ?tags, "LSL tagger attached");
        self.taggers.insert(uplink.to_owned(), (tagger, tags));
        Ok(())
    }

    /// Seconds since `dev`'s operational state was last seen to change (since first seen
    /// by this process: Linux keeps no such timestamp), and that state.
    pub(crate) fn last_change(&mut self, dev: &str) -> Option<(u64, State)> {
        let link = self.link(dev).ok().flatten()?;
        let now = Instant::now();
        let entry = self.seen.entry(dev.to_owned()).or_insert((link.oper, now));
        if entry.0 != link.oper {
            *entry = (link.oper, now);
        }
        Some((now.duration_since(entry.1).as_secs(), link.oper))
    }
}

fn updown(up: bool) -> &'static str {
    if up { "up" } else { "down" }
}

/// The vxlan attributes brgd sets for `spec`.
fn vxlan_attrs(spec: &VxlanSpec, underlay: Option<u32>) -> Vec<InfoVxlan> {
    let mut attrs = vec![InfoVxlan::Id(spec.vni)];
    match spec.remote {
        IpAddr::V4(a) => attrs.push(InfoVxlan::Group(a)),
        IpAddr::V6(a) => attrs.push(InfoVxlan::Group6(a)),
    }
    match spec.local {
        Some(IpAddr::V4(a)) => attrs.push(InfoVxlan::Local(a)),
        Some(IpAddr::V6(a)) => attrs.push(InfoVxlan::Local6(a)),
        None => {}
    }
    if let Some(index) = underlay {
        attrs.push(InfoVxlan::Link(index));
    }
    attrs.push(InfoVxlan::Port(spec.dst_port));
    // The vG is the only peer: no flooding-and-learning of remote VTEPs.
    attrs.push(InfoVxlan::Learning(false));
    if let Some(p) = spec.src_port {
        attrs.push(InfoVxlan::PortRange((p, p.saturating_add(1))));
    }
    attrs
}

/// Whether a device's dumped vxlan attributes carry every attribute brgd wants (and no
/// local address, underlay or source-port range brgd does not want).
fn vxlan_matches(have: &[InfoVxlan], want: &[InfoVxlan]) -> bool {
    let has = |a: &InfoVxlan| have.contains(a);
    if !want.iter().all(has) {
        return false;
    }
    let wants = |f: fn(&InfoVxlan) -> bool| want.iter().any(f);
    have.iter().all(|a| match a {
        InfoVxlan::Local(l) => l.is_unspecified() || wants(|w| matches!(w, InfoVxlan::Local(_))),
        InfoVxlan::Local6(l) => l.is_unspecified() || wants(|w| matches!(w, InfoVxlan::Local6(_))),
        InfoVxlan::Link(i) => *i == 0 || wants(|w| matches!(w, InfoVxlan::Link(_))),
        InfoVxlan::PortRange(r) => *r == (0, 0) || wants(|w| matches!(w, InfoVxlan::PortRange(_))),
        _ => true,
    })
}

/// Transmit VLAN offload off (`ethtool -K dev txvlan off tx-vlan-stag-hw-insert off`,
/// through [`lsl::offload`]): the tagger's outermost tag is written in-line only without it
/// (see `ebpf/brg-tc`). A device without those features has nothing to switch off.
fn txvlan_off(dev: &str) -> Result<(), ApplyError> {
    let done = lsl::offload::switch_off(dev, lsl::offload::TRANSMIT_VLAN).map_err(|e| {
        ApplyError::Offload {
            dev: dev.to_owned(),
            source: e,
        }
    })?;
    if !done.absent.is_empty() {
        warn!(%dev, absent = ?done.absent, "device without transmit VLAN offload features");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> VxlanSpec {
        VxlanSpec {
            name: "vx1-1".into(),
            vni: 5001,
            remote: "10.255.0.1".parse().expect("ip"),
            local: None,
            underlay: None,
            dst_port: 4789,
            src_port: None,
        }
    }

    #[test]
    fn a_kernel_dump_with_defaults_matches() {
        let want = vxlan_attrs(&spec(), None);
        // What the kernel reports for a device created with `want`: its defaults too.
        let mut have = want.clone();
        have.extend([
            InfoVxlan::Local("0.0.0.0".parse().expect("ip")),
            InfoVxlan::Link(0),
            InfoVxlan::Ttl(0),
            InfoVxlan::Ageing(300),
            InfoVxlan::PortRange((0, 0)),
            InfoVxlan::UDPCsum(false),
        ]);
        assert!(vxlan_matches(&have, &want));
    }

    #[test]
    fn any_difference_is_a_mismatch() {
        let want = vxlan_attrs(&spec(), None);
        let changed = |f: &dyn Fn(&mut VxlanSpec)| {
            let mut s = spec();
            f(&mut s);
            vxlan_attrs(&s, None)
        };
        for have in [
            changed(&|s| s.vni = 6001),
            changed(&|s| s.remote = "10.255.0.2".parse().expect("ip")),
            changed(&|s| s.dst_port = 8472),
            changed(&|s| s.local = Some("10.255.1.1".parse().expect("ip"))),
            changed(&|s| s.src_port = Some(5000)),
            vxlan_attrs(&spec(), Some(7)),
        ] {
            assert!(!vxlan_matches(&have, &want), "{have:?}");
        }
        // Learning on (a device someone else set up) does not match either.
        let mut learning = want.clone();
        learning.retain(|a| !matches!(a, InfoVxlan::Learning(_)));
        learning.push(InfoVxlan::Learning(true));
        assert!(!vxlan_matches(&learning, &want));
    }
}
