//! The control plane's runtime state: the current homes, their NAT blocks, and the one place
//! that changes them while vgd runs (the REST API calls in here).
//!
//! Every operation is validated first, then **persisted** (one store transaction), then
//! **applied** incrementally: only the home's own map entries (its subscriber slot, LSL
//! keys, hosts, NAT mappings), its DHCP server and its NAT blocks change; other homes are
//! never touched and nothing iterates over all homes. The block log gets one record per
//! block allocated or released.
//!
//! # Start-up and the precedence rule
//!
//! [`Control::start`] merges the configuration file with the store:
//! - a home listed in the file is written to the store as it is in the file (source
//!   `config`), replacing whatever the store had under its id (also an API-created one);
//! - a stored `config` home no longer in the file was deleted from the file: it is deleted
//!   (blocks released, leases dropped);
//! - a stored `api` home is loaded as stored, unless it is no longer valid with this file
//!   (e.g. its VXLAN LSL now lacks `fastpath.vtep`) or its LSL is taken by a file home: it
//!   is then skipped with an error in the log, and kept in the store for the operator;
//! - API changes to a file home last until the next start, when the file applies again.
//!
//! NAT blocks: each stored home keeps its stored public address and blocks when the block
//! geometry (`nat.port_range`, `nat.block_size`) is unchanged and the address is still in
//! `nat.pool`; otherwise it gets new ones (logged as releases and allocations).

use std::{
    collections::{BTreeMap, HashMap},
    net::Ipv4Addr,
    sync::Arc,
};

use lsl::{Clash, LslSet};
use nerg_abi::{Host, HostKey, SubscriberId, host_flags};
use thiserror::Error;

#[cfg(test)]
mod fake;
pub mod plan;
mod prefixes;
pub mod tables;
mod view;

pub use prefixes::HomeIpv6;
pub use view::{
    BlockView, HostView, NatAssignmentView, PoolView, PrefixPoolView, PrefixView, SubscriberView,
};

use plan::MapWrite;
use tables::FastPathTables;

use crate::{
    blocklog::BlockLog,
    config::{
        Config, ConfigError, PortForward, PortForwardFile, Proto, SubscriberConfig, SubscriberFile,
        lsl_clash,
    },
    dhcp::LeaseRecord,
    fastpath::{
        FastPathError,
        maps::{StaticMapping, StaticMappingError},
        reconcile::{ReconcileReport, apply_nat, ip_raw, subscriber_record},
    },
    nat::{self, BlockAction, BlockAllocator, BlockEvent, HeldBlock, Snapshot, UnixTime},
    store::{
        NatGeometry, Source, StoredBlock, StoredNat, StoredState, StoredSubscriber, SubscriberOp,
        SubscriberStore, SubscriberStoreError,
    },
};

/// Why an operation was refused or failed; each maps to one HTTP status.
#[derive(Debug, Error)]
pub enum ControlError {
    /// The body is not a valid home (422).
    #[error(transparent)]
    Invalid(#[from] ConfigError),
    /// A value is wrong in a way the configuration checks cannot see (422).
    #[error("{0}")]
    Unprocessable(String),
    /// It clashes with another home or with live state (409).
    #[error("{0}")]
    Conflict(String),
    /// No such home or port forward (404).
    #[error("{0}")]
    NotFound(String),
    /// The store failed: nothing changed (500).
    #[error(transparent)]
    Store(#[from] SubscriberStoreError),
    /// A map write failed after the change was stored (500); the next start repairs it.
    #[error("the change is stored but the fast path refused it: {0}")]
    FastPath(#[from] FastPathError),
}

/// Where the slow path keeps its homes (the responder; a fake in tests).
pub trait SlowPathHomes: Send {
    /// A home was created.
    fn add_home(&self, sub: &SubscriberConfig);
    /// A home changed.
    fn update_home(&self, sub: &SubscriberConfig, now: UnixTime);
    /// A home was deleted.
    fn remove_home(&self, id: SubscriberId);
    /// A home's leases.
    fn leases(&self, id: SubscriberId) -> Result<Vec<LeaseRecord>, String>;
    /// Bound leases over all homes.
    fn leases_in_use(&self) -> usize;
    /// Home `id`'s IPv6 (its prefix, LAN and RA flags), or none: IPv4 only. Called after
    /// [`Self::add_home`] and [`Self::update_home`] with what the home has then.
    fn set_ipv6(&self, id: SubscriberId, v6: Option<&HomeIpv6>) {
        let _ = (id, v6);
    }
}

impl<S, L, H> SlowPathHomes
    for Arc<std::sync::Mutex<crate::slowpath::responder::Responder<S, L, H>>>
where
    S: crate::slowpath::responder::FrameSink + Send,
    L: crate::slowpath::responder::Stores + Send,
    H: crate::slowpath::responder::HostTable + crate::slowpath::v6::NeighbourTable + Send,
{
    fn add_home(&self, sub: &SubscriberConfig) {
        self.lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .add_home(sub);
    }
    fn update_home(&self, sub: &SubscriberConfig, now: UnixTime) {
        self.lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .update_home(sub, crate::dhcp::UnixTime(now.0));
    }
    fn remove_home(&self, id: SubscriberId) {
        self.lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove_home(id);
    }
    fn leases(&self, id: SubscriberId) -> Result<Vec<LeaseRecord>, String> {
        self.lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .leases(id)
            .map_err(|e| format!("{e:#}"))
    }
    fn leases_in_use(&self) -> usize {
        self.lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .leases_in_use()
    }
    fn set_ipv6(&self, id: SubscriberId, v6: Option<&HomeIpv6>) {
        let now = crate::dhcp::UnixTime(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        );
        self.lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .set_ipv6(id, v6, crate::slowpath::monotonic_ms(), now);
    }
}

/// One home of the runtime state, borrowed: its source, and its two forms, which live in
/// [`Control::config`] (one copy of each per home: 100,000 homes are hundreds of MB per
/// copy).
struct Entry<'a> {
    source: Source,
    file: &'a SubscriberFile,
    sub: &'a SubscriberConfig,
}

/// The runtime state (see the module doc).
pub struct Control {
    config: Config,
    /// Every home's source; its forms are in `config.subscribers` and `config.files`.
    homes: BTreeMap<SubscriberId, Source>,
    /// Every home's LSL: no two homes with one fast-path key or with clashing tags.
    lsls: LslSet<SubscriberId>,
    alloc: Option<BlockAllocator>,
    /// The IPv6 prefix pools, when `[ipv6]` is on.
    v6: Option<crate::ipv6::PrefixPool>,
    since: HashMap<SubscriberId, BTreeMap<u16, UnixTime>>,
    store: Arc<dyn SubscriberStore>,
    maps: Option<Box<dyn FastPathTables>>,
    slow: Option<Box<dyn SlowPathHomes>>,
    log: BlockLog,
    access_ifindex: u32,
    /// Public addresses already in `NERG_PUBLIC_IPS` (the start-up reconcile writes the
    /// whole pool): no syscall per home for them.
    public_ips: std::collections::HashSet<u32>,
}

/// What a home's change does to its NAT ([`Control::plan_nat_update`]).
#[derive(Default)]
struct NatUpdate {
    /// It gets a new allocation (another address, or fewer blocks): its sessions end.
    realloc: bool,
    /// The allocator with the change, when the allocation changes (grown or re-allocated).
    new_alloc: Option<BlockAllocator>,
    /// The blocks allocated and released.
    events: Vec<BlockEvent>,
}

fn nsub(id: SubscriberId) -> nat::SubscriberId {
    nat::SubscriberId(id)
}

impl Control {
    /// Merges `file_config` with the store (see the module doc), restores or allocates NAT
    /// blocks, and commits the merged state. The result's [`Control::config`] lists every
    /// home; hand it the fast path's tables ([`Control::reconcile`]), build the slow path
    /// from it, then [`Control::attach`] the slow path.
    pub fn start(
        file_config: Config,
        store: Arc<dyn SubscriberStore>,
        log: BlockLog,
        access_ifindex: u32,
        now: UnixTime,
    ) -> Result<Self, ControlError> {
        let stored = store.load_state()?;
        let mut file_config = file_config;
        let file_subs = std::mem::take(&mut file_config.subscribers);
        let file_forms = std::mem::take(&mut file_config.files);
        let mut this = Self {
            config: file_config,
            homes: BTreeMap::new(),
            lsls: LslSet::new(),
            alloc: None,
            v6: None,
            since: HashMap::new(),
            store,
            maps: None,
            slow: None,
            log,
            access_ifindex,
            public_ips: std::collections::HashSet::new(),
        };
        // What the store must change, committed at the end in one transaction.
        let mut ops = this.merge_homes(file_subs, file_forms, &stored);
        let dropped = ops
            .iter()
            .filter(|op| matches!(op, SubscriberOp::Remove(_)))
            .count();
        if let Some(nat_cfg) = this.config.nat.clone() {
            let mut alloc = this.restore_blocks(&nat_cfg, &stored, now, &mut ops);
            this.allocate_missing(&nat_cfg, &mut alloc, now, &mut ops);
            this.alloc = Some(alloc);
        }
        this.restore_prefixes(&stored, now, &mut ops);
        this.store.commit(&ops)?;
        this.log.flush();
        if dropped > 0 {
            tracing::info!(count = dropped, "homes deleted at start");
        }
        Ok(this)
    }

    /// Start-up, the homes: the file's first (they win every clash), then the stored API
    /// homes that still fit. Returns the store writes that make the store say the same.
    fn merge_homes(
        &mut self,
        file_subs: BTreeMap<SubscriberId, SubscriberConfig>,
        mut file_forms: BTreeMap<SubscriberId, SubscriberFile>,
        stored: &StoredState,
    ) -> Vec<SubscriberOp> {
        let mut ops = Vec::new();
        for (id, sub) in file_subs {
            let Some(file) = file_forms.remove(&id) else {
                tracing::error!(sub = id, "configuration without its file form: skipped");
                continue;
            };
            let same = stored
                .subscribers
                .get(&id)
                .is_some_and(|r| r.source == Source::Config && r.subscriber == file);
            if !same {
                ops.push(SubscriberOp::Put(Box::new(StoredSubscriber {
                    source: Source::Config,
                    subscriber: file.clone(),
                })));
            }
            self.insert_entry(Source::Config, file, sub);
        }
        for (id, rec) in &stored.subscribers {
            // Only the file's homes are in yet: they win.
            if self.homes.contains_key(id) {
                continue;
            }
            match rec.source {
                Source::Config => {
                    tracing::info!(
                        sub = id,
                        "home removed from the configuration file: deleting it"
                    );
                    ops.push(SubscriberOp::Remove(*id));
                }
                Source::Api => match self.config.subscriber(rec.subscriber.clone()) {
                    Ok(sub) => {
                        // File homes are in, and the API homes of lower ids: they win.
                        if let Some(clash) = self.lsls.clash(&sub.lsl, None) {
                            tracing::error!(
                                sub = id,
                                lsl = %sub.lsl,
                                other = clash.owner,
                                other_lsl = %clash.other,
                                why = %lsl_clash(&clash),
                                "API-created home skipped: its LSL clashes with another home's \
                                 (kept in the store; fix or delete one)"
                            );
                            continue;
                        }
                        self.insert_entry(Source::Api, rec.subscriber.clone(), sub);
                    }
                    Err(err) => tracing::error!(
                        sub = id,
                        error = %err,
                        "API-created home skipped: not valid with this configuration (kept in the store)"
                    ),
                },
            }
        }
        ops
    }

    /// Start-up, the stored NAT blocks: each home keeps its own while the block geometry is
    /// the same, its address still in the pool and the home still there; the others' end
    /// (logged as releases). Hold-downs that ended are purged.
    fn restore_blocks(
        &mut self,
        nat_cfg: &nat::NatConfig,
        stored: &StoredState,
        now: UnixTime,
        ops: &mut Vec<SubscriberOp>,
    ) -> BlockAllocator {
        let geometry = NatGeometry {
            port_range: nat_cfg.port_range(),
            block_size: nat_cfg.block_size(),
        };
        let same_geometry = stored.geometry.is_none_or(|g| g == geometry);
        if !same_geometry {
            tracing::error!(
                ?stored.geometry,
                ?geometry,
                "NAT block geometry changed: every home gets new blocks"
            );
        }
        if stored.geometry != Some(geometry) {
            ops.push(SubscriberOp::SetGeometry(geometry));
        }
        let pool = nat_cfg.pool();
        let mut snapshot = Snapshot {
            port_range: geometry.port_range,
            block_size: geometry.block_size,
            subscribers: Vec::new(),
            held: Vec::new(),
        };
        let mut released = Vec::new();
        for (id, n) in &stored.nat {
            let keep = same_geometry
                && pool.contains(n.address)
                && self.homes.contains_key(id)
                && !n.blocks.is_empty();
            if keep {
                snapshot.subscribers.push(nat::Assignment {
                    subscriber: nsub(*id),
                    address: n.address,
                    blocks: n.blocks.iter().map(|b| b.first_port).collect(),
                });
                self.since.insert(
                    *id,
                    n.blocks.iter().map(|b| (b.first_port, b.since)).collect(),
                );
            } else {
                // Its blocks end now: log them, forget them.
                ops.push(SubscriberOp::RemoveNat(*id));
                released.push((*id, n.clone()));
            }
        }
        // A block is handed out again only after its hold-down ended, so held records
        // are never removed when a block is taken: expired ones are purged here.
        for h in &stored.held {
            if h.until <= now {
                ops.push(SubscriberOp::RemoveHeld(h.address, h.first_port));
            }
        }
        if same_geometry {
            snapshot.held = stored
                .held
                .iter()
                .filter(|h| pool.contains(h.address))
                .copied()
                .collect();
        }
        let restored = BlockAllocator::restore(nat_cfg, &snapshot, now).or_else(|err| {
            // Hold-downs only protect released ports: without them, homes keep theirs.
            tracing::warn!(error = %err, "stored hold-downs do not fit; restoring without them");
            let bare = Snapshot {
                held: Vec::new(),
                ..snapshot.clone()
            };
            BlockAllocator::restore(nat_cfg, &bare, now)
        });
        let alloc = match restored {
            Ok(a) => a,
            Err(err) => {
                tracing::error!(error = %err, "stored NAT blocks cannot be restored: every home gets new blocks");
                for a in &snapshot.subscribers {
                    if let Some(n) = stored.nat.get(&a.subscriber.0) {
                        released.push((a.subscriber.0, n.clone()));
                    }
                }
                self.since.clear();
                BlockAllocator::new(nat_cfg)
            }
        };
        for (id, n) in &released {
            self.log_released(stored, *id, n, geometry.block_size, now);
        }
        alloc
    }

    /// Logs the release of stored home `id`'s blocks `n` at start.
    fn log_released(
        &mut self,
        stored: &StoredState,
        id: SubscriberId,
        n: &StoredNat,
        block_size: u16,
        now: UnixTime,
    ) {
        let lsl = stored
            .subscribers
            .get(&id)
            .map(|s| s.subscriber.lsl.clone())
            .unwrap_or_default();
        for b in &n.blocks {
            let last = b.first_port.saturating_add(block_size.saturating_sub(1));
            self.log.write(
                &BlockEvent {
                    time: now,
                    action: BlockAction::Release,
                    subscriber: nsub(id),
                    private_id: lsl.clone(),
                    address: n.address,
                    first_port: b.first_port,
                    last_port: last,
                },
                Some(b.since),
            );
        }
    }

    /// Start-up, the homes without blocks get theirs, and every port forward reserves its
    /// port (one outside the home's blocks is dropped with an error).
    fn allocate_missing(
        &mut self,
        nat_cfg: &nat::NatConfig,
        alloc: &mut BlockAllocator,
        now: UnixTime,
        ops: &mut Vec<SubscriberOp>,
    ) {
        let ids: Vec<SubscriberId> = self.homes.keys().copied().collect();
        for id in ids {
            if alloc.ports(nsub(id)).is_some() {
                continue;
            }
            let Some(sub) = self.config.subscribers.get(&id) else {
                continue;
            };
            let (lsl, policy) = (sub.lsl.to_string(), sub.nat);
            let blocks = policy.blocks.unwrap_or(nat_cfg.initial_blocks());
            match alloc.add_subscriber_with(nsub(id), &lsl, policy.public_ip, blocks, now) {
                Ok(events) => {
                    self.note_events(&events);
                    if let Some(n) = self.stored_nat(alloc, id) {
                        ops.push(SubscriberOp::PutNat(id, n));
                    }
                }
                Err(err) => {
                    tracing::error!(sub = id, error = %err, "no NAT blocks for this home");
                }
            }
        }
        for (id, sub) in &mut self.config.subscribers {
            sub.port_forwards
                .retain(|_, pf| match alloc.add_forward(nsub(*id), pf.public_port) {
                    Ok(_) => true,
                    Err(err) => {
                        tracing::error!(sub = id, error = %err, "port forward skipped");
                        false
                    }
                });
        }
    }

    /// Adds a home whose id and LSL were checked against the others.
    fn insert_entry(&mut self, source: Source, file: SubscriberFile, sub: SubscriberConfig) {
        let added = self.lsls.insert(sub.lsl, sub.id);
        debug_assert!(added.is_ok(), "unchecked LSL clash: {added:?}");
        self.homes.insert(sub.id, source);
        self.config.files.insert(sub.id, file);
        self.config.subscribers.insert(sub.id, sub);
    }

    fn remove_entry(&mut self, id: SubscriberId) {
        self.homes.remove(&id);
        self.config.files.remove(&id);
        if let Some(sub) = self.config.subscribers.remove(&id) {
            self.lsls.remove(&sub.lsl, id);
        }
    }

    /// Home `id`, borrowed.
    fn entry(&self, id: SubscriberId) -> Option<Entry<'_>> {
        Some(Entry {
            source: *self.homes.get(&id)?,
            file: self.config.files.get(&id)?,
            sub: self.config.subscribers.get(&id)?,
        })
    }

    /// Every home, by id, borrowed.
    fn entries(&self) -> impl Iterator<Item = Entry<'_>> {
        self.homes.keys().filter_map(|&id| self.entry(id))
    }

    /// Every home (the merged configuration), for the start-up reconcile and slow path.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The NAT allocator, when NAT is on.
    pub fn allocator(&self) -> Option<&BlockAllocator> {
        self.alloc.as_ref()
    }

    /// Takes the fast path's tables at start and makes them match the homes
    /// ([`plan::for_restart`] over what they hold: the maps the vgd before left pinned, or
    /// new ones), then writes every home's port forwards and removes the static mappings no
    /// home has any more. Run once, before the programs are attached.
    pub fn reconcile(
        &mut self,
        mut tables: Box<dyn FastPathTables>,
    ) -> Result<ReconcileReport, ControlError> {
        // The whole pool: homes added at run time on an address nobody used yet need no
        // extra write.
        let public_ips: std::collections::BTreeSet<Ipv4Addr> = match (&self.alloc, &self.config.nat)
        {
            (Some(_), Some(nat)) => nat.pool().addresses().iter().copied().collect(),
            _ => Default::default(),
        };
        let homes: Vec<(&SubscriberConfig, nerg_abi::Subscriber)> = self
            .entries()
            .map(|e| (e.sub, self.record(e.sub)))
            .collect();
        let current = plan::Current::read(tables.as_ref());
        let v6: HashMap<SubscriberId, plan::HomeV6> = self
            .prefix_pool()
            .map(|pool| {
                pool.homes()
                    .map(|(id, a)| (id, (a.prefix, a.lan())))
                    .collect()
            })
            .unwrap_or_default();
        let (mut writes, v6_after) = plan::v6_for_restart(&v6, &current);
        writes.extend(plan::for_restart(
            &homes,
            &public_ips,
            &current,
            self.access_ifindex,
        ));
        writes.extend(v6_after);
        drop(homes);
        plan::apply(tables.as_mut(), &writes, self.access_ifindex)?;
        self.write_forwards(tables.as_mut());
        self.public_ips = public_ips.iter().map(|&ip| ip_raw(ip)).collect();
        self.maps = Some(tables);
        Ok(plan::report(&writes))
    }

    /// Writes every home's port forwards (their static mappings) and removes the static
    /// mappings no home has any more; a refusal is logged and the others go on.
    fn write_forwards(&self, maps: &mut dyn FastPathTables) {
        let Some(alloc) = &self.alloc else {
            return;
        };
        let mut wanted = std::collections::HashSet::new();
        for e in self.entries() {
            let Some(ports) = alloc.ports(nsub(e.sub.id)) else {
                continue;
            };
            for pf in e.sub.port_forwards.values() {
                let m = static_mapping(e.sub.id, ports.address(), pf);
                wanted.insert(m.fwd_key);
                if let Err(err) = maps.insert_static(&m) {
                    tracing::error!(sub = e.sub.id, error = %err, "writing a port forward failed");
                }
            }
        }
        match maps.remove_static_except(&wanted) {
            Ok(0) => {}
            Ok(n) => tracing::info!(removed = n, "stale port forwards removed"),
            Err(err) => tracing::error!(error = %err, "removing stale port forwards failed"),
        }
    }

    /// Hands over the slow path (the responder), which the API's changes reach from here on.
    pub fn attach(&mut self, slow: Box<dyn SlowPathHomes>) {
        self.slow = Some(slow);
    }

    fn stored_nat(&self, alloc: &BlockAllocator, id: SubscriberId) -> Option<StoredNat> {
        let a = alloc.assignment(nsub(id))?;
        let since = self.since.get(&id);
        Some(StoredNat {
            address: a.address,
            blocks: a
                .blocks
                .iter()
                .map(|&first_port| StoredBlock {
                    first_port,
                    since: since
                        .and_then(|s| s.get(&first_port).copied())
                        .unwrap_or_default(),
                })
                .collect(),
        })
    }

    /// Logs block events and keeps the allocation times (a release's record carries the
    /// start time of its block).
    fn note_events(&mut self, events: &[BlockEvent]) {
        for ev in events {
            let id = ev.subscriber.0;
            match ev.action {
                BlockAction::Alloc => {
                    self.since
                        .entry(id)
                        .or_default()
                        .insert(ev.first_port, ev.time);
                    self.log.write(ev, None);
                }
                BlockAction::Release => {
                    let since = self
                        .since
                        .get_mut(&id)
                        .and_then(|s| s.remove(&ev.first_port));
                    self.log.write(ev, Some(since.unwrap_or_default()));
                }
            }
        }
    }

    fn maps(&mut self) -> Result<&mut dyn FastPathTables, ControlError> {
        match self.maps.as_deref_mut() {
            Some(maps) => Ok(maps),
            None => Err(ControlError::Conflict("vgd is still starting".into())),
        }
    }

    /// Creates one home; see [`Control::create_many`].
    pub fn create(
        &mut self,
        file: SubscriberFile,
        now: UnixTime,
    ) -> Result<SubscriberView, ControlError> {
        let id = file.id;
        self.create_many(vec![file], now)?;
        self.get(id)
    }

    /// Creates homes in one store transaction (all or none), then applies each to the fast
    /// path and the slow path. Duplicate ids or clashing LSLs (among them or with existing
    /// homes; see [`LslSet`]) are conflicts; a port forward outside the home's blocks is
    /// unprocessable.
    pub fn create_many(
        &mut self,
        files: Vec<SubscriberFile>,
        now: UnixTime,
    ) -> Result<usize, ControlError> {
        // Validate everything before changing anything.
        let t0 = std::time::Instant::now();
        let subs = self.validate_new(files)?;
        let t_valid = t0.elapsed();
        let events = self.allocate_new(&subs, now)?;
        let mut ops = Vec::with_capacity(subs.len() * 2);
        for (file, _) in &subs {
            ops.push(SubscriberOp::Put(Box::new(StoredSubscriber {
                source: Source::Api,
                subscriber: file.clone(),
            })));
        }
        // Times first (stored with the assignment), then the ops.
        for ev in &events {
            self.since
                .entry(ev.subscriber.0)
                .or_default()
                .insert(ev.first_port, ev.time);
        }
        if let Some(alloc) = &self.alloc {
            for (_, sub) in &subs {
                if let Some(n) = self.stored_nat(alloc, sub.id) {
                    ops.push(SubscriberOp::PutNat(sub.id, n));
                }
            }
        }
        let cancel_nat = |this: &mut Self| {
            if let Some(alloc) = this.alloc.as_mut() {
                for (_, sub) in &subs {
                    alloc.cancel_subscriber(nsub(sub.id));
                    this.since.remove(&sub.id);
                }
            }
        };
        let new: Vec<&SubscriberConfig> = subs.iter().map(|(_, s)| s).collect();
        let prefixes = match self.assign_new_prefixes(&new, now, &mut ops) {
            Ok(p) => p,
            Err(err) => {
                cancel_nat(self);
                return Err(err);
            }
        };
        drop(new);
        let t_nat = t0.elapsed();
        if let Err(err) = self.store.commit(&ops) {
            cancel_nat(self);
            self.undo_prefixes(prefixes);
            return Err(err.into());
        }
        let t_commit = t0.elapsed();
        for ev in &events {
            self.log.write(ev, None);
        }
        self.log.flush();
        let t_log = t0.elapsed();
        let n = subs.len();
        let mut first_err = None;
        for (file, sub) in subs {
            self.insert_entry(Source::Api, file, sub.clone());
            if let Err(err) = self.apply_new(&sub) {
                tracing::error!(sub = sub.id, error = %err, "applying a new home failed");
                first_err.get_or_insert(err);
            }
            if let Some(slow) = &self.slow {
                slow.add_home(&sub);
                slow.set_ipv6(sub.id, self.ipv6_of(sub.id).as_ref());
            }
        }
        if n > 1 {
            tracing::info!(
                homes = n,
                validate_ms = t_valid.as_millis() as u64,
                nat_ms = (t_nat - t_valid).as_millis() as u64,
                commit_ms = (t_commit - t_nat).as_millis() as u64,
                log_ms = (t_log - t_commit).as_millis() as u64,
                apply_ms = (t0.elapsed() - t_log).as_millis() as u64,
                "homes created"
            );
        }
        match first_err {
            Some(err) => Err(err),
            None => Ok(n),
        }
    }

    /// Checks new homes against the configuration, the existing homes and each other.
    fn validate_new(
        &self,
        files: Vec<SubscriberFile>,
    ) -> Result<Vec<(SubscriberFile, SubscriberConfig)>, ControlError> {
        let mut subs = Vec::with_capacity(files.len());
        let mut new_ids = std::collections::HashSet::new();
        let mut new_lsls = LslSet::new();
        let many = files.len() > 1;
        for (i, file) in files.into_iter().enumerate() {
            let where_ = |s: String| {
                if many {
                    format!("subscribers[{i}]: {s}")
                } else {
                    s
                }
            };
            let sub = self
                .config
                .subscriber(file.clone())
                .map_err(|e| ControlError::Unprocessable(where_(e.to_string())))?;
            if self.homes.contains_key(&sub.id) || !new_ids.insert(sub.id) {
                return Err(ControlError::Conflict(where_(format!(
                    "subscriber {} already exists",
                    sub.id
                ))));
            }
            if let Some(clash) = self.lsls.clash(&sub.lsl, None) {
                return Err(ControlError::Conflict(where_(lsl_conflict(&clash))));
            }
            if let Err(clash) = new_lsls.insert(sub.lsl, sub.id) {
                return Err(ControlError::Conflict(where_(lsl_conflict(&clash))));
            }
            subs.push((file, sub));
        }
        Ok(subs)
    }

    /// Allocates new homes' blocks and reserves their forwards; on the first failure, undoes
    /// all of it and says why.
    fn allocate_new(
        &mut self,
        subs: &[(SubscriberFile, SubscriberConfig)],
        now: UnixTime,
    ) -> Result<Vec<BlockEvent>, ControlError> {
        let mut events = Vec::new();
        let (Some(alloc), Some(nat_cfg)) = (self.alloc.as_mut(), self.config.nat.as_ref()) else {
            return Ok(events);
        };
        let mut done: Vec<SubscriberId> = Vec::new();
        let mut failure = None;
        'homes: for (_, sub) in subs {
            let blocks = sub.nat.blocks.unwrap_or(nat_cfg.initial_blocks());
            let lsl = sub.lsl.to_string();
            match alloc.add_subscriber_with(nsub(sub.id), &lsl, sub.nat.public_ip, blocks, now) {
                Ok(ev) => {
                    done.push(sub.id);
                    events.extend(ev);
                }
                Err(err) => {
                    failure = Some(conflict(err));
                    break;
                }
            }
            for pf in sub.port_forwards.values() {
                if let Err(err) = alloc.add_forward(nsub(sub.id), pf.public_port) {
                    failure = Some(ControlError::Unprocessable(format!(
                        "port forward {} {}: {err}",
                        pf.proto, pf.public_port
                    )));
                    break 'homes;
                }
            }
        }
        match failure {
            Some(err) => {
                for id in done {
                    alloc.cancel_subscriber(nsub(id));
                }
                Err(err)
            }
            None => Ok(events),
        }
    }

    /// The fast-path record of `sub` with its NAT, and `IPV6` when it has a prefix.
    fn record(&self, sub: &SubscriberConfig) -> nerg_abi::Subscriber {
        let mut rec = subscriber_record(sub);
        if let (Some(alloc), Some(nat_cfg)) = (&self.alloc, &self.config.nat)
            && let Some(ports) = alloc.ports(nsub(sub.id))
        {
            apply_nat(&mut rec, sub, nat_cfg, &ports);
        }
        if self.prefix(sub.id).is_some() {
            rec.flags |= nerg_abi::sub_flags::IPV6;
        }
        rec
    }

    /// Home `id`'s LAN /64, when it has a prefix.
    fn lan6(&self, id: SubscriberId) -> Option<ipnet::Ipv6Net> {
        self.prefix(id).map(|a| a.lan())
    }

    fn public_ip(&self, id: SubscriberId) -> Option<Ipv4Addr> {
        self.alloc
            .as_ref()
            .and_then(|a| a.ports(nsub(id)))
            .map(|p| p.address())
    }

    /// Writes a new home into the maps ([`plan::for_new`]: its LSL key last).
    fn apply_new(&mut self, sub: &SubscriberConfig) -> Result<(), ControlError> {
        let rec = self.record(sub);
        let public = self.public_ip(sub.id);
        let new_ip = rec.public_ip != 0 && self.public_ips.insert(rec.public_ip);
        let (mut writes, _) = plan::v6_lan_change(sub.id, None, self.lan6(sub.id));
        writes.extend(plan::for_new(sub, rec, new_ip, public));
        self.apply(&writes)
    }

    /// Applies map writes in order ([`plan::apply`]).
    fn apply(&mut self, writes: &[MapWrite]) -> Result<(), ControlError> {
        let ifindex = self.access_ifindex;
        plan::apply(self.maps()?, writes, ifindex)
    }

    /// Replaces home `id` with `file` (the same id). An LSL change inserts the new key,
    /// rewrites the slot, then removes the old key. A changed public address or fewer
    /// blocks re-allocates the home's NAT (its sessions end); more blocks grow it.
    pub fn update(
        &mut self,
        id: SubscriberId,
        file: SubscriberFile,
        now: UnixTime,
    ) -> Result<SubscriberView, ControlError> {
        let Some(old) = self.entry(id) else {
            return Err(ControlError::NotFound(format!("no subscriber {id}")));
        };
        if file.id != id {
            return Err(ControlError::Unprocessable(format!(
                "subscriber.id = {}: the body's id must be the path's ({id})",
                file.id
            )));
        }
        let old_sub = old.sub.clone();
        let source = old.source;
        let sub = self
            .config
            .subscriber(file.clone())
            .map_err(|e| ControlError::Unprocessable(e.to_string()))?;
        if let Some(clash) = self.lsls.clash(&sub.lsl, Some(id)) {
            return Err(ControlError::Conflict(lsl_conflict(&clash)));
        }
        let old_assignment = self.alloc.as_ref().and_then(|a| a.assignment(nsub(id)));
        let old_lan = self.lan6(id);
        let nat = self.plan_nat_update(id, &old_sub, &sub, now)?;
        // Forwards alone are counters on the allocator, changed in place (O(1)).
        let forwards_in_place = self.alloc.is_some()
            && nat.new_alloc.is_none()
            && sub.port_forwards != old_sub.port_forwards;
        if forwards_in_place {
            self.swap_forwards(id, &old_sub.port_forwards, &sub.port_forwards)?;
            if let Err(err) = self.check_live(id, &old_sub, &sub) {
                let _ = self.swap_forwards(id, &sub.port_forwards, &old_sub.port_forwards);
                return Err(err);
            }
        }
        let old_since = self.since.get(&id).cloned();
        let (mut ops, since) = self.update_ops(id, source, &file, &nat, old_since.as_ref(), now);
        let prefix = self.assign_prefix(&sub, now, &mut ops);
        let stored = match prefix {
            Ok(p) => self.store.commit(&ops).map_err(|e| (e.into(), p)),
            Err(e) => Err((e, None)),
        };
        if let Err((err, pending)) = stored {
            if forwards_in_place {
                let _ = self.swap_forwards(id, &sub.port_forwards, &old_sub.port_forwards);
            }
            self.undo_prefixes(pending.into_iter().collect());
            return Err(err);
        }
        // Committed: now the in-memory state and the log.
        if let Some(a) = nat.new_alloc {
            self.alloc = Some(a);
        }
        for ev in &nat.events {
            let start = old_since
                .as_ref()
                .and_then(|s| s.get(&ev.first_port).copied());
            match ev.action {
                BlockAction::Alloc => self.log.write(ev, None),
                BlockAction::Release => self.log.write(ev, Some(start.unwrap_or_default())),
            }
        }
        self.log.flush();
        self.since.insert(id, since);
        self.remove_entry(id);
        self.insert_entry(source, file, sub.clone());
        let old_nat = match (nat.realloc, old_assignment) {
            (true, Some(a)) => Some(self.ranges(&a)),
            _ => None,
        };
        self.apply_update(&old_sub, &sub, nat.realloc, old_nat, old_lan)?;
        if let Some(slow) = &self.slow {
            slow.update_home(&sub, now);
            slow.set_ipv6(id, self.ipv6_of(id).as_ref());
        }
        self.get(id)
    }

    /// A home's NAT assignment as the maps hold it: its address and its blocks' port ranges.
    fn ranges(&self, a: &nat::Assignment) -> plan::NatRanges {
        let size = self.config.nat.as_ref().map_or(1, |n| n.block_size());
        let blocks = a
            .blocks
            .iter()
            .map(|&f| (f, f.saturating_add(size.saturating_sub(1))))
            .collect();
        (a.address, blocks)
    }

    /// What home `id`'s change from `old` to `sub` does to its NAT, worked out on a copy of
    /// the allocator when the allocation changes (rare; O(homes)): nothing is changed yet.
    fn plan_nat_update(
        &self,
        id: SubscriberId,
        old: &SubscriberConfig,
        sub: &SubscriberConfig,
        now: UnixTime,
    ) -> Result<NatUpdate, ControlError> {
        let mut plan = NatUpdate::default();
        let (Some(alloc), Some(nat_cfg)) = (&self.alloc, &self.config.nat) else {
            return Ok(plan);
        };
        let current = alloc.assignment(nsub(id));
        let want_blocks = sub.nat.blocks.unwrap_or(nat_cfg.initial_blocks());
        let have = current.as_ref().map_or(0, |a| a.blocks.len());
        let moved = match (&current, sub.nat.public_ip) {
            (Some(a), Some(ip)) => a.address != ip,
            (None, _) => true,
            _ => false,
        };
        plan.realloc = moved || usize::from(want_blocks) < have;
        let grow = !plan.realloc && usize::from(want_blocks) > have;
        if !plan.realloc && !grow {
            return Ok(plan);
        }
        let mut a = alloc.clone();
        let lsl = sub.lsl.to_string();
        if plan.realloc {
            if current.is_some() {
                let ev = a
                    .remove_subscriber(nsub(id), &old.lsl.to_string(), now)
                    .map_err(conflict)?;
                plan.events.extend(ev);
            }
            let ev = a
                .add_subscriber_with(nsub(id), &lsl, sub.nat.public_ip, want_blocks, now)
                .map_err(conflict)?;
            plan.events.extend(ev);
        } else {
            for _ in have..usize::from(want_blocks) {
                plan.events
                    .push(a.grow(nsub(id), &lsl, now).map_err(conflict)?);
            }
            for pf in old.port_forwards.values() {
                let _ = a.remove_forward(nsub(id), pf.public_port);
            }
        }
        for pf in sub.port_forwards.values() {
            a.add_forward(nsub(id), pf.public_port).map_err(|e| {
                ControlError::Unprocessable(format!(
                    "port forward {} {}: {e}",
                    pf.proto, pf.public_port
                ))
            })?;
        }
        // A new forward on a port a live session of the home holds: refuse now (after a
        // re-allocation its sessions end anyway).
        if !plan.realloc {
            self.check_live(id, old, sub)?;
        }
        plan.new_alloc = Some(a);
        Ok(plan)
    }

    /// The store writes of home `id`'s change ([`Self::plan_nat_update`]'s `nat`): the home
    /// as `file`, the blocks it released held down, its assignment with each block's start
    /// time; and those start times.
    fn update_ops(
        &self,
        id: SubscriberId,
        source: Source,
        file: &SubscriberFile,
        nat: &NatUpdate,
        old_since: Option<&BTreeMap<u16, UnixTime>>,
        now: UnixTime,
    ) -> (Vec<SubscriberOp>, BTreeMap<u16, UnixTime>) {
        let mut ops = vec![SubscriberOp::Put(Box::new(StoredSubscriber {
            source,
            subscriber: file.clone(),
        }))];
        let hold = self.config.nat.as_ref().map(|n| n.hold_down_secs());
        let mut since = match (nat.realloc, old_since) {
            (false, Some(s)) => s.clone(),
            _ => BTreeMap::new(),
        };
        for ev in &nat.events {
            match (ev.action, hold) {
                (BlockAction::Alloc, _) => {
                    since.insert(ev.first_port, ev.time);
                }
                (BlockAction::Release, Some(secs)) => ops.push(SubscriberOp::PutHeld(HeldBlock {
                    address: ev.address,
                    first_port: ev.first_port,
                    until: ev.time.plus(u64::from(secs)),
                })),
                (BlockAction::Release, None) => {}
            }
        }
        if let Some(a) = nat.new_alloc.as_ref().or(self.alloc.as_ref())
            && let Some(asg) = a.assignment(nsub(id))
        {
            let blocks = asg
                .blocks
                .iter()
                .map(|&p| StoredBlock {
                    first_port: p,
                    since: since.get(&p).copied().unwrap_or(now),
                })
                .collect();
            ops.push(SubscriberOp::PutNat(
                id,
                StoredNat {
                    address: asg.address,
                    blocks,
                },
            ));
        }
        (ops, since)
    }

    /// Moves the allocator's forward reservations of home `id` from `from` to `to`; on a
    /// refusal (a port outside its blocks) it puts `from` back and says why.
    fn swap_forwards(
        &mut self,
        id: SubscriberId,
        from: &BTreeMap<(Proto, u16), PortForward>,
        to: &BTreeMap<(Proto, u16), PortForward>,
    ) -> Result<(), ControlError> {
        let Some(alloc) = self.alloc.as_mut() else {
            return Ok(());
        };
        let removed: Vec<u16> = from
            .iter()
            .filter(|(k, pf)| to.get(k) != Some(pf))
            .map(|(_, pf)| pf.public_port)
            .collect();
        for &port in &removed {
            let _ = alloc.remove_forward(nsub(id), port);
        }
        let mut added = Vec::new();
        for (k, pf) in to {
            if from.get(k) == Some(pf) {
                continue;
            }
            if let Err(e) = alloc.add_forward(nsub(id), pf.public_port) {
                for &port in &added {
                    let _ = alloc.remove_forward(nsub(id), port);
                }
                for &port in &removed {
                    let _ = alloc.add_forward(nsub(id), port);
                }
                return Err(ControlError::Unprocessable(format!(
                    "port forward {} {}: {e}",
                    pf.proto, pf.public_port
                )));
            }
            added.push(pf.public_port);
        }
        Ok(())
    }

    /// Refuses a new forward on a public port a live dynamic session of the home holds.
    fn check_live(
        &self,
        id: SubscriberId,
        old: &SubscriberConfig,
        sub: &SubscriberConfig,
    ) -> Result<(), ControlError> {
        let (Some(public), Some(maps)) = (self.public_ip(id), self.maps.as_ref()) else {
            return Ok(());
        };
        for (k, pf) in &sub.port_forwards {
            if old.port_forwards.get(k) == Some(pf) {
                continue;
            }
            let m = static_mapping(id, public, pf);
            if let Some(r) = maps.nat_reverse(&m.rev_key)?
                && r.flags & (nerg_abi::nat_flags::STATIC | nerg_abi::nat_flags::TOMBSTONE) == 0
            {
                return Err(ControlError::Conflict(format!(
                    "public port {} {} is in use by a live NAT session of the home; \
                     retry when it ends",
                    pf.proto, pf.public_port
                )));
            }
        }
        Ok(())
    }

    /// Writes the change of home `old` into `sub` ([`plan::for_update`]).
    fn apply_update(
        &mut self,
        old: &SubscriberConfig,
        sub: &SubscriberConfig,
        realloc: bool,
        old_nat: Option<plan::NatRanges>,
        old_lan: Option<ipnet::Ipv6Net>,
    ) -> Result<(), ControlError> {
        let rec = self.record(sub);
        let public = self.public_ip(sub.id);
        let new_ip = rec.public_ip != 0 && self.public_ips.insert(rec.public_ip);
        let realloc = realloc.then_some(old_nat);
        let (mut writes, after) = plan::v6_lan_change(sub.id, old_lan, self.lan6(sub.id));
        writes.extend(plan::for_update(
            old,
            sub,
            rec,
            new_ip,
            public,
            realloc,
            self.access_ifindex,
        ));
        writes.extend(after);
        self.apply(&writes)
    }

    /// Deletes home `id`: its traffic stops (LSL key first), its slot, hosts and NAT
    /// mappings go, its blocks are released (logged) and its leases dropped (with the home,
    /// in one store transaction).
    pub fn delete(&mut self, id: SubscriberId, now: UnixTime) -> Result<(), ControlError> {
        let Some(entry) = self.entry(id) else {
            return Err(ControlError::NotFound(format!("no subscriber {id}")));
        };
        let sub = entry.sub.clone();
        // What it holds, found by home (never by scanning whole tables): its leased hosts
        // from the lease store, its NAT mappings inside its own blocks.
        let leased: Vec<Ipv4Addr> = match &self.slow {
            Some(slow) => slow
                .leases(id)
                .map_err(ControlError::Conflict)?
                .iter()
                .map(|l| l.ip)
                .collect(),
            None => Vec::new(),
        };
        let assignment = self.alloc.as_ref().and_then(|a| a.assignment(nsub(id)));
        let lan = self.lan6(id);
        // No new leases for it from here on.
        if let Some(slow) = &self.slow {
            slow.remove_home(id);
        }
        let mut ops = vec![SubscriberOp::Remove(id)];
        ops.extend(self.held_on_delete(id, now));
        if let (Some(a), Some(nat)) = (&assignment, &self.config.nat) {
            for &first_port in &a.blocks {
                ops.push(SubscriberOp::PutHeld(HeldBlock {
                    address: a.address,
                    first_port,
                    until: now.plus(u64::from(nat.hold_down_secs())),
                }));
            }
        }
        if let Err(err) = self.store.commit(&ops) {
            if let Some(slow) = &self.slow {
                // Back as it was: its server restored from the store.
                slow.update_home(&sub, now);
            }
            return Err(err.into());
        }
        let mut events = Vec::new();
        if let Some(alloc) = self.alloc.as_mut()
            && assignment.is_some()
        {
            events = alloc
                .remove_subscriber(nsub(id), &sub.lsl.to_string(), now)
                .unwrap_or_default();
        }
        self.note_events(&events);
        self.log.flush();
        self.since.remove(&id);
        self.release_prefix(id, now);
        self.remove_entry(id);
        let nat = assignment.as_ref().map(|a| self.ranges(a));
        let mut writes = plan::for_delete(&sub, &leased, nat);
        writes.extend(plan::v6_lan_change(id, lan, None).1);
        self.apply(&writes)
    }

    /// Adds a port forward to home `id` (validated with the home).
    pub fn add_forward(
        &mut self,
        id: SubscriberId,
        pf: PortForwardFile,
        now: UnixTime,
    ) -> Result<SubscriberView, ControlError> {
        let Some(e) = self.entry(id) else {
            return Err(ControlError::NotFound(format!("no subscriber {id}")));
        };
        if e.file
            .port_forwards
            .iter()
            .any(|f| f.proto == pf.proto && f.public_port == pf.public_port)
        {
            return Err(ControlError::Conflict(format!(
                "subscriber {id} already forwards {} port {}",
                pf.proto, pf.public_port
            )));
        }
        let mut file = e.file.clone();
        file.port_forwards.push(pf);
        self.update(id, file, now)
    }

    /// Removes a port forward of home `id`.
    pub fn remove_forward(
        &mut self,
        id: SubscriberId,
        proto: Proto,
        port: u16,
        now: UnixTime,
    ) -> Result<SubscriberView, ControlError> {
        let Some(e) = self.entry(id) else {
            return Err(ControlError::NotFound(format!("no subscriber {id}")));
        };
        let mut file = e.file.clone();
        let before = file.port_forwards.len();
        file.port_forwards
            .retain(|f| !(f.proto == proto && f.public_port == port));
        if file.port_forwards.len() == before {
            return Err(ControlError::NotFound(format!(
                "subscriber {id} has no {proto} port forward on port {port}"
            )));
        }
        self.update(id, file, now)
    }
}

fn host_key(sub: SubscriberId, ip: Ipv4Addr) -> HostKey {
    HostKey {
        sub,
        ip: ip_raw(ip),
    }
}

fn static_host(mac: [u8; 6]) -> Host {
    Host {
        mac,
        flags: host_flags::STATIC,
        _pad: 0,
    }
}

fn static_mapping(sub: SubscriberId, public: Ipv4Addr, pf: &PortForward) -> StaticMapping {
    StaticMapping::new(
        sub,
        pf.proto.number(),
        public,
        pf.public_port,
        pf.private_ip,
        pf.private_port,
    )
}

fn static_err(e: StaticMappingError) -> ControlError {
    match e {
        StaticMappingError::InUse { .. } => ControlError::Conflict(e.to_string()),
        StaticMappingError::Map(m) => ControlError::FastPath(m),
    }
}

/// An allocator's refusal as a conflict.
fn conflict(e: impl std::fmt::Display) -> ControlError {
    ControlError::Conflict(e.to_string())
}

/// The conflict answer for an LSL that clashes with another home's.
fn lsl_conflict(clash: &Clash<SubscriberId>) -> String {
    format!("LSL {}: {}", clash.lsl, lsl_clash(clash))
}

#[cfg(test)]
mod maps_tests;
#[cfg(test)]
mod tests;
