//! The responder as each home's IPv6 router: the per-home state that drives the engines of
//! [`vg_engines::nd`] (RAs, ND, resolution, ICMPv6 errors) and [`vg_engines::dhcp6`], and
//! what their decisions write into the fast path's tables ([`NeighbourTable`]).
//!
//! ```text
//!  punt reason            what happens
//!  nd, icmpv6_to_gateway,  answer6: RA, NA, DAD defence, echo reply, time exceeded; the
//!  hop_limit_exceeded,     bindings it teaches -> Neighbours (RFC 6620 first come first
//!  ipv6 (catch-all)        served) -> NERG_V6_NEIGH (LAN addresses only)
//!  dhcpv6 (and the         DHCPv6 engine -> store ops join the batch's one commit; after
//!  catch-all's UDP 547)    it: IA_NA -> STATIC neighbour entry, IA_PD -> DELEGATED route
//!  neigh_miss (core side)  Resolver: NS into the home + INCOMPLETE entry; NA -> entry with
//!                          the MAC and the held packet forwarded; no answer -> entry removed,
//!                          address unreachable to the core (RFC 4861 §7.2.2, RFC 4443 §3.1)
//!  packet_too_big          ICMPv6 Packet Too Big to the home or to the core (RFC 4443 §3.2)
//!  mld                     counted, ignored: the vG is not a multicast router
//! ```
//!
//! Timers ([`Responder::timers6`], driven by vgd at the earliest deadline, at least every
//! second): scheduled RAs (RFC 4861 §6.2.4), NS retransmissions and resolution verdicts
//! (§7.2.2), and binding expiry: a LAN entry whose binding went quiet is probed with a
//! unicast NS (§7.3.3) before it is removed, so that a host that talks to the internet but
//! never to the vG keeps its entry (the fast path does not refresh bindings). Homes wait in
//! a deadline heap, so a tick costs the homes that are due, not all of them; expiry sweeps
//! every home's binding table every [`SWEEP_MS`].
//!
//! A host's new address (SLAAC, privacy) is learnt from its DAD NS as tentative and taken
//! as the host's when DAD ends uncontested ([`DAD_MS`], RFC 6620 §3.2.3), so that its first
//! packets from it pass the fast path's source check without waiting for an NS or NA.
//!
//! Unsolicited frames need the home's LSL encapsulation: a VLAN LSL gives it, a VXLAN one
//! needs the BRG's tunnel endpoint as seen on the wire, learnt from the home's first punted
//! frame (until then scheduled RAs are counted as unsendable; hosts solicit one anyway).
//!
//! No final RA at vgd's exit: a restart is hitless (the XDP programs stay, the pinned tables
//! and the store keep the homes' state), and telling every host that its router is gone
//! would make it one. Final RAs go when a home loses its IPv6 or is deleted.
//!
//! Not answered: echo requests from the internet to a home's gateway address (punted as
//! `icmpv6_to_gateway` from the core; counted as `ipv6_from_core`).
//!
//! DELEGATED routes (RFC 8415 §6.3) go via the requesting router's address in the LAN /64
//! (the table holds no link-local addresses): its IA_NA lease, or a LAN address its frames
//! taught, bound to the MAC it asked from. Until the vG knows one, the route waits; it
//! follows the router's addresses as they come and go.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap};
use std::net::Ipv6Addr;

use ipnet::Ipv6Net;
use lsl::smoltcp::wire::EthernetAddress;
use lsl::{Encap, LslId, decapsulate};
use nerg_abi::{PuntReason, SubscriberId, V6Neigh, v6_neigh_flags};
use vg_engines::nd::{
    self, Binding, BindingState, CoreL2, Home6, Icmp6Error, Ignored6, Learnt, LearntFrom,
    NeighbourLimits, Neighbours, RaConfig, RaSchedule, Reply6Kind, Resolve, Resolver,
    ResolverEvent, ResolverLimits,
};

use super::{FrameSink, HostTable, Outcome, Pending, Responder, Stores};
use crate::control::HomeIpv6;
use crate::dhcp::{MacAddr, UnixTime};
use crate::dhcp6;
use crate::slowpath::v6::{self as v6x, Ipv6Settings, NeighbourTable, V6Counts};

mod dhcp6_home;
pub(super) use dhcp6_home::Staged6;
use dhcp6_home::dhcp6_config;

/// How often every home's binding table is swept for expired bindings.
pub const SWEEP_MS: u64 = 5_000;

/// How long after its DAD NS an uncontested address is taken as the host's (RFC 6620's
/// TENT_LT is 500 ms; Linux's DAD is one NS and RetransTimer, 1 s, RFC 4862 §5.4).
pub const DAD_MS: u64 = 1_000;

/// A route to a prefix delegated to a router of the home.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Route {
    /// The requesting router's MAC.
    mac: EthernetAddress,
}

/// One home's IPv6 router.
pub(super) struct Router6 {
    /// What the control plane gave.
    v6: HomeIpv6,
    /// The engine's view of the home.
    nd: Home6,
    /// The home's LSL encapsulation for frames the vG originates (see the module doc).
    encap: Option<Encap>,
    schedule: RaSchedule,
    neighbours: Neighbours,
    resolver: Resolver,
    /// What the slow path wrote into `NERG_V6_NEIGH` for the home.
    written: BTreeMap<Ipv6Addr, V6Neigh>,
    /// Entries whose binding expired, being probed, with their MAC.
    probing: BTreeMap<Ipv6Addr, EthernetAddress>,
    /// DHCPv6 IA_NA addresses and their clients' MACs (STATIC entries).
    leased: BTreeMap<Ipv6Addr, EthernetAddress>,
    /// Prefixes delegated by DHCPv6.
    routes: BTreeMap<Ipv6Net, Route>,
    /// The DELEGATED entries in the table, with their next hop.
    routes_written: BTreeMap<Ipv6Net, Ipv6Addr>,
    /// Bindings from a DAD NS, with their MAC and when DAD ends.
    tentative: BTreeMap<Ipv6Addr, (EthernetAddress, u64)>,
    /// The earliest time the home is queued for in [`Routers6::due`] (`u64::MAX`: not
    /// queued): the heap gets an entry only when the home's deadline moves before it, so
    /// that it holds about one entry per home however many frames the home sends.
    queued_ms: u64,
}

/// A home's entries in the tables at start.
#[derive(Default)]
struct Adopted {
    neighbours: Vec<(Ipv6Addr, V6Neigh)>,
    delegated: Vec<(Ipv6Net, Ipv6Addr)>,
}

/// Every home's IPv6 router, and what they share.
pub(super) struct Routers6 {
    homes: HashMap<SubscriberId, Router6>,
    pub(super) dhcp: dhcp6::Homes,
    /// Homes whose DHCPv6 bindings could not be reloaded after a failed commit.
    pub(super) stale: BTreeSet<SubscriberId>,
    settings: Ipv6Settings,
    core: Option<Box<dyn FrameSink + Send>>,
    counts: V6Counts,
    /// (when, home): the homes' next deadlines; stale entries are harmless (a home is
    /// polled, finds nothing due, and is queued again).
    due: BinaryHeap<Reverse<(u64, SubscriberId)>>,
    next_sweep_ms: u64,
    /// The table's entries at start, by home, until [`Responder::start_ipv6`] gives them
    /// to the homes' routers (or removes them: their home has no router).
    adopted: HashMap<SubscriberId, Adopted>,
    /// The latest `now_ms` the responder was given: the time of DHCPv6 events (applied
    /// from calls that carry only wall-clock time).
    clock_ms: u64,
}

impl Routers6 {
    /// No homes yet; `settings` from `[ipv6]`.
    pub(super) fn new(settings: Ipv6Settings) -> Routers6 {
        Routers6 {
            homes: HashMap::new(),
            dhcp: dhcp6::Homes::new(),
            stale: BTreeSet::new(),
            settings,
            core: None,
            counts: V6Counts::default(),
            due: BinaryHeap::new(),
            next_sweep_ms: 0,
            adopted: HashMap::new(),
            clock_ms: 0,
        }
    }
}

/// The encapsulation of frames the vG originates into a home on `lsl`, when the LSL alone
/// gives it (VLAN); VXLAN needs what the home's frames show.
fn encap_for(lsl: &LslId) -> Option<Encap> {
    match *lsl {
        LslId::Vlan { s_tag: None, c_vid } => Some(Encap::Dot1q { c_vid }),
        LslId::Vlan {
            s_tag: Some(s),
            c_vid,
        } => Some(Encap::QinQ {
            s_tpid: s.tpid,
            s_vid: s.vid,
            c_vid,
        }),
        LslId::Vxlan { .. } => None,
    }
}

/// The engine's home: the LSL and gateway MAC of `home`, the LAN and flags of `v6`, the
/// shared settings, and the LSL's MTU (the fast path's `ip6_mtu`, so that RAs and Packet Too
/// Big agree with what the fast path forwards).
fn home6(
    home: &vg_engines::reply::Home,
    v6: &HomeIpv6,
    settings: &Ipv6Settings,
) -> Result<Home6, nd::Home6Error> {
    // Without a router address the engine still needs one; errors are then not sent at
    // all ([`Responder::may_send_error`]), so the LAN's subnet-router address stands in.
    let router_addr = settings.router_address.unwrap_or(v6.lan.network());
    let mut nd = Home6::new(home.lsl, home.gateway_mac, v6.lan, router_addr);
    nd.mtu = crate::fastpath::reconcile::ipv6_mtu(&home.lsl);
    nd.ra = RaConfig {
        managed: v6.flags.managed,
        other: v6.flags.other,
        rdnss: settings.dns_servers.clone(),
        dnssl: settings.domain_search.clone(),
        ..RaConfig::default()
    };
    nd.validate()?;
    Ok(nd)
}

impl Router6 {
    fn new(v6: HomeIpv6, nd: Home6, now_ms: u64, seed: u64) -> Router6 {
        Router6 {
            v6,
            encap: encap_for(&nd.lsl),
            schedule: RaSchedule::new(nd.ra.intervals, now_ms, seed),
            nd,
            neighbours: Neighbours::new(NeighbourLimits::default()),
            resolver: Resolver::new(ResolverLimits::default(), now_ms),
            written: BTreeMap::new(),
            probing: BTreeMap::new(),
            leased: BTreeMap::new(),
            routes: BTreeMap::new(),
            routes_written: BTreeMap::new(),
            tentative: BTreeMap::new(),
            queued_ms: u64::MAX,
        }
    }

    /// Queues the home in `due` if its deadline moved before the one it is queued for.
    fn requeue(&mut self, due: &mut BinaryHeap<Reverse<(u64, SubscriberId)>>, id: SubscriberId) {
        let at = self.due_ms();
        if at < self.queued_ms {
            due.push(Reverse((at, id)));
            self.queued_ms = at;
        }
    }

    /// When the home next has something due.
    fn due_ms(&self) -> u64 {
        let dad = self.tentative.values().map(|(_, at)| *at).min();
        self.schedule
            .next_ms()
            .min(self.resolver.next_ms().unwrap_or(u64::MAX))
            .min(dad.unwrap_or(u64::MAX))
    }

    /// The tentative bindings whose DAD ended at `now_ms` without a contest: confirmed
    /// (their entries written, so that the host's first packets from the address pass the
    /// fast path's source check).
    fn end_dad(
        &mut self,
        table: &mut impl NeighbourTable,
        counts: &mut V6Counts,
        sub: SubscriberId,
        now_ms: u64,
    ) -> Vec<Vec<u8>> {
        let done: Vec<(Ipv6Addr, EthernetAddress)> = self
            .tentative
            .iter()
            .filter(|(_, (_, at))| *at <= now_ms)
            .map(|(addr, (mac, _))| (*addr, *mac))
            .collect();
        let mut held = Vec::new();
        for (addr, mac) in done {
            self.tentative.remove(&addr);
            let uncontested = self
                .neighbours
                .get(addr)
                .is_some_and(|n| n.mac == mac && n.state == BindingState::Tentative);
            if uncontested {
                let binding = Binding {
                    addr,
                    mac,
                    from: LearntFrom::Dad,
                    state: BindingState::Confirmed,
                };
                held.extend(self.learn(table, counts, sub, &binding, now_ms));
            }
        }
        held
    }

    /// Writes `addr` at `mac` (or INCOMPLETE without one) into the table, if it changes.
    fn write(
        &mut self,
        table: &mut impl NeighbourTable,
        counts: &mut V6Counts,
        sub: SubscriberId,
        addr: Ipv6Addr,
        mac: Option<EthernetAddress>,
    ) {
        if !self.nd.lan.contains(&addr) || !self.nd.is_host(addr) {
            return;
        }
        let flags = match mac {
            None => v6_neigh_flags::INCOMPLETE,
            Some(_) if self.leased.contains_key(&addr) => {
                v6_neigh_flags::STATIC | v6_neigh_flags::REACHABLE
            }
            Some(_) if self.probing.contains_key(&addr) => v6_neigh_flags::STALE,
            Some(_) => v6_neigh_flags::REACHABLE,
        };
        let mac = mac.map_or([0; 6], |m| m.0);
        if self
            .written
            .get(&addr)
            .is_some_and(|n| n.mac == mac && n.flags == flags)
        {
            return;
        }
        let entry = V6Neigh {
            mac,
            flags,
            _pad: 0,
            stamp_ns: crate::fastpath::expiry::monotonic_ns(),
        };
        match table.set_neighbour(sub, addr, entry) {
            Ok(()) => {
                self.written.insert(addr, entry);
            }
            Err(err) => {
                counts.table_errors += 1;
                tracing::error!(sub, %addr, error = %err, "writing an IPv6 neighbour failed");
            }
        }
    }

    /// Removes `addr`'s entry from the table, if the slow path wrote one.
    fn unwrite(
        &mut self,
        table: &mut impl NeighbourTable,
        counts: &mut V6Counts,
        sub: SubscriberId,
        addr: Ipv6Addr,
    ) {
        if self.written.remove(&addr).is_none() {
            return;
        }
        if let Err(err) = table.remove_neighbour(sub, addr) {
            counts.table_errors += 1;
            tracing::error!(sub, %addr, error = %err, "removing an IPv6 neighbour failed");
        }
    }

    /// A DHCPv6 lease of `addr` to `mac`: the lease binds the address (RFC 7513), so a
    /// binding of another MAC goes, and the entry is STATIC. The binding table is not
    /// involved otherwise: [`Router6::learn`] refuses other MACs for leased addresses, and
    /// one client (a router, a test tool) may hold more leases than a MAC has bindings.
    fn lease_entry(
        &mut self,
        table: &mut impl NeighbourTable,
        counts: &mut V6Counts,
        sub: SubscriberId,
        addr: Ipv6Addr,
        mac: EthernetAddress,
    ) {
        self.leased.insert(addr, mac);
        if self.neighbours.get(addr).is_some_and(|n| n.mac != mac) {
            self.neighbours.remove(addr);
        }
        self.write(table, counts, sub, addr, Some(mac));
    }

    /// A LAN address of `mac` with a MAC in the table: its IA_NA lease first.
    fn address_of(&self, mac: EthernetAddress) -> Option<Ipv6Addr> {
        let leased = self
            .leased
            .iter()
            .find(|(_, m)| **m == mac)
            .map(|(a, _)| *a);
        leased.or_else(|| {
            self.written
                .iter()
                .find(|(_, n)| n.has_mac() && n.mac == mac.0)
                .map(|(a, _)| *a)
        })
    }

    /// Makes the table's DELEGATED entries of the home what its routes and the routers'
    /// known addresses say (see the module doc).
    fn settle_routes(
        &mut self,
        table: &mut impl NeighbourTable,
        counts: &mut V6Counts,
        sub: SubscriberId,
    ) {
        let desired: BTreeMap<Ipv6Net, Ipv6Addr> = self
            .routes
            .iter()
            .filter_map(|(p, r)| Some((*p, self.address_of(r.mac)?)))
            .collect();
        let gone: Vec<Ipv6Net> = self
            .routes_written
            .keys()
            .filter(|p| !desired.contains_key(p))
            .copied()
            .collect();
        for prefix in gone {
            match table.remove_delegated(sub, prefix) {
                Ok(()) => {
                    self.routes_written.remove(&prefix);
                }
                Err(err) => {
                    counts.table_errors += 1;
                    tracing::error!(sub, %prefix, error = %err, "removing a delegated route failed");
                }
            }
        }
        for (prefix, via) in desired {
            if self.routes_written.get(&prefix) == Some(&via) {
                continue;
            }
            match table.set_delegated(sub, prefix, via) {
                Ok(()) => {
                    self.routes_written.insert(prefix, via);
                }
                Err(err) => {
                    counts.table_errors += 1;
                    tracing::error!(sub, %prefix, error = %err, "writing a delegated route failed");
                }
            }
        }
    }

    /// Everything the slow path wrote for the home, removed.
    fn clear(&mut self, table: &mut impl NeighbourTable, counts: &mut V6Counts, sub: SubscriberId) {
        let addrs: Vec<Ipv6Addr> = self.written.keys().copied().collect();
        for addr in addrs {
            self.unwrite(table, counts, sub, addr);
        }
        self.routes.clear();
        self.settle_routes(table, counts, sub);
    }

    /// Decides a binding the home's frames (or its DHCPv6 leases) taught; a packet held for
    /// the address, forwarded once it resolved, is returned to send.
    fn learn(
        &mut self,
        table: &mut impl NeighbourTable,
        counts: &mut V6Counts,
        sub: SubscriberId,
        binding: &Binding,
        now_ms: u64,
    ) -> Option<Vec<u8>> {
        if self
            .leased
            .get(&binding.addr)
            .is_some_and(|m| *m != binding.mac)
        {
            // The address is another client's DHCPv6 lease (RFC 7513: the lease binds it).
            counts.neighbours_refused += 1;
            return None;
        }
        let evicted = match self.neighbours.learn(binding, now_ms) {
            Learnt::Conflict { owner } => {
                counts.neighbours_refused += 1;
                tracing::debug!(sub, addr = %binding.addr, %owner, mac = %binding.mac, "IPv6 binding refused");
                return None;
            }
            Learnt::New { evicted } | Learnt::Moved { evicted, .. } => {
                counts.neighbours_learnt += 1;
                evicted
            }
            Learnt::Refreshed => None,
        };
        if binding.state == BindingState::Tentative
            && self
                .neighbours
                .get(binding.addr)
                .is_some_and(|n| n.state == BindingState::Tentative && n.mac == binding.mac)
        {
            // RFC 6620 §3.2.3: a tentative binding nobody contests is valid when DAD ends.
            self.tentative
                .insert(binding.addr, (binding.mac, now_ms.saturating_add(DAD_MS)));
        }
        if let Some(old) = evicted
            && !self.leased.contains_key(&old)
        {
            counts.neighbours_evicted += 1;
            self.probing.remove(&old);
            self.unwrite(table, counts, sub, old);
        }
        let mac = self.neighbours.lookup(binding.addr, now_ms)?;
        self.probing.remove(&binding.addr);
        self.write(table, counts, sub, binding.addr, Some(mac));
        self.settle_routes(table, counts, sub);
        let held = self.resolver.resolved(binding.addr)?;
        counts.resolved += 1;
        let encap = self.encap?;
        v6x::forward_held(&held, self.nd.gateway_mac, mac, &encap)
    }
}

impl<S: FrameSink, L: Stores, H: HostTable + NeighbourTable> Responder<S, L, H> {
    /// Sends ICMPv6 errors about core-side frames through `sink` (a packet socket on the core
    /// interface); without one they are not sent.
    pub fn set_core_sink(&mut self, sink: Box<dyn FrameSink + Send>) {
        self.v6.core = Some(sink);
    }

    /// The vG's router address (from the core interface when `[ipv6]` sets none): call
    /// before the homes get their IPv6.
    pub fn set_router_address(&mut self, addr: Option<Ipv6Addr>) {
        self.v6.settings.router_address = addr;
    }

    /// Home `id`'s IPv6 from the control plane, at `now_ms` (the monotonic clock of
    /// [`Responder::handle_batch`]) and `now`: a new home starts advertising at once and its
    /// DHCPv6 bindings are restored from the store (with their table entries); an unchanged
    /// home keeps its state; a changed LAN starts afresh (the old one's entries removed);
    /// `None` sends the final RA (RFC 4861 §6.2.5) and removes the home's entries.
    pub fn set_ipv6(
        &mut self,
        id: SubscriberId,
        v6: Option<&HomeIpv6>,
        now_ms: u64,
        now: UnixTime,
    ) {
        self.v6.clock_ms = self.v6.clock_ms.max(now_ms);
        let (Some(v6), Some(home)) = (v6, self.homes.get(&id).copied()) else {
            self.teardown6(id, true);
            return;
        };
        let nd = match home6(&home, v6, &self.v6.settings) {
            Ok(nd) => nd,
            Err(err) => {
                tracing::error!(sub = id, error = %err, "the home's IPv6 settings are unusable; it gets no IPv6 router");
                self.teardown6(id, true);
                return;
            }
        };
        let config = match dhcp6_config(&home, v6, &self.v6.settings) {
            Ok(c) => Some(c),
            Err(err) => {
                tracing::error!(sub = id, error = %err, "the home's DHCPv6 settings are unusable; SLAAC only");
                None
            }
        };
        match self.v6.homes.get_mut(&id) {
            Some(r) if r.v6.lan == v6.lan => {
                if r.nd != nd {
                    if r.nd.lsl != nd.lsl {
                        r.encap = encap_for(&nd.lsl);
                    }
                    // What the RAs say changed: advertise it now.
                    r.schedule = RaSchedule::new(nd.ra.intervals, now_ms, u64::from(id));
                    r.nd = nd;
                    r.requeue(&mut self.v6.due, id);
                }
                r.v6 = *v6;
            }
            Some(_) => {
                self.teardown6(id, true);
                self.create6(id, *v6, nd, now_ms);
            }
            None => self.create6(id, *v6, nd, now_ms),
        }
        let same = self
            .v6
            .dhcp
            .get(id)
            .map(|s| s.config())
            .zip(config.as_ref())
            .is_some_and(|(a, b)| a == b);
        if same {
            return;
        }
        match config {
            Some(config) => {
                self.v6.dhcp.insert(dhcp6::HomeServer::new(id, config));
                self.resync6(id, now);
            }
            None => {
                self.v6.dhcp.remove(id);
                // No server: no delegated routes (those found at start go).
                if let Some(r) = self.v6.homes.get_mut(&id) {
                    r.routes.clear();
                    r.settle_routes(&mut self.hosts, &mut self.v6.counts, id);
                }
            }
        }
    }

    /// Start-up: every home's IPv6 (`None`: IPv4 only), with the tables' entries of the vgd
    /// before this one (`kill -9` included) read once and handed to the homes' routers;
    /// the entries of homes without one are removed. From here on the slow path knows what
    /// it wrote (it is the tables' only writer of these entries).
    pub fn start_ipv6(
        &mut self,
        homes: impl IntoIterator<Item = (SubscriberId, Option<HomeIpv6>)>,
        now_ms: u64,
        now: UnixTime,
    ) {
        for (sub, addr, n) in self.hosts.all_neighbours() {
            let adopted = self.v6.adopted.entry(sub).or_default();
            adopted.neighbours.push((addr, n));
        }
        for (sub, prefix, via) in self.hosts.all_delegated() {
            let adopted = self.v6.adopted.entry(sub).or_default();
            adopted.delegated.push((prefix, via));
        }
        for (id, v6) in homes {
            self.set_ipv6(id, v6.as_ref(), now_ms, now);
        }
        let counts = &mut self.v6.counts;
        for (sub, adopted) in std::mem::take(&mut self.v6.adopted) {
            for (addr, _) in adopted.neighbours {
                if let Err(err) = self.hosts.remove_neighbour(sub, addr) {
                    counts.table_errors += 1;
                    tracing::error!(sub, %addr, error = %err, "removing a stale IPv6 neighbour failed");
                }
            }
            for (prefix, _) in adopted.delegated {
                if let Err(err) = self.hosts.remove_delegated(sub, prefix) {
                    counts.table_errors += 1;
                    tracing::error!(sub, %prefix, error = %err, "removing a stale delegated route failed");
                }
            }
        }
    }

    /// A new router for home `id`, taking over the table's entries of the home found at
    /// start: neighbours of its LAN are bindings again, the rest is removed; DELEGATED
    /// entries stay until the restored DHCPv6 bindings settle them.
    fn create6(&mut self, id: SubscriberId, v6: HomeIpv6, nd: Home6, now_ms: u64) {
        let mut r = Router6::new(v6, nd, now_ms, u64::from(id));
        let counts = &mut self.v6.counts;
        let adopted = self.v6.adopted.remove(&id).unwrap_or_default();
        for (addr, n) in adopted.neighbours {
            let ours = r.nd.lan.contains(&addr) && r.nd.is_host(addr) && n.has_mac();
            if ours {
                let binding = Binding {
                    addr,
                    mac: EthernetAddress(n.mac),
                    from: LearntFrom::NeighbourAdvertisement,
                    state: BindingState::Confirmed,
                };
                r.neighbours.learn(&binding, now_ms);
                r.written.insert(addr, n);
            } else if let Err(err) = self.hosts.remove_neighbour(id, addr) {
                counts.table_errors += 1;
                tracing::error!(sub = id, %addr, error = %err, "removing a stale IPv6 neighbour failed");
            }
        }
        r.routes_written = adopted.delegated.into_iter().collect();
        r.requeue(&mut self.v6.due, id);
        self.v6.homes.insert(id, r);
    }

    /// Ends home `id`'s IPv6 router: the final RA if `final_ra`, its table entries removed,
    /// its DHCPv6 server dropped (the bindings stay in the store).
    pub(super) fn teardown6(&mut self, id: SubscriberId, final_ra: bool) {
        self.v6.dhcp.remove(id);
        self.v6.stale.remove(&id);
        let counts = &mut self.v6.counts;
        let Some(mut r) = self.v6.homes.remove(&id) else {
            return;
        };
        if final_ra {
            let frame = r
                .encap
                .as_ref()
                .and_then(|e| nd::final_ra_frame(&r.nd, e).ok());
            match frame {
                Some(frame) => {
                    if self.sink.send(&frame).is_ok() {
                        counts.ras_final += 1;
                    }
                }
                None => counts.ras_unsendable += 1,
            }
        }
        r.clear(&mut self.hosts, counts, id);
    }

    /// What the IPv6 routers counted since the last call.
    pub fn take_v6_counts(&mut self) -> V6Counts {
        std::mem::take(&mut self.v6.counts)
    }

    /// When [`Responder::timers6`] next has something to do (monotonic ms).
    pub fn ipv6_next_ms(&self) -> Option<u64> {
        if self.v6.homes.is_empty() {
            return None;
        }
        let due = self.v6.due.peek().map_or(u64::MAX, |Reverse((at, _))| *at);
        Some(due.min(self.v6.next_sweep_ms))
    }

    /// Home `id`'s IPv6 router state, for tests and diagnostics: the neighbour bindings and
    /// the resolutions pending.
    pub fn ipv6_state(&self, id: SubscriberId) -> Option<(usize, usize)> {
        self.v6
            .homes
            .get(&id)
            .map(|r| (r.neighbours.len(), r.resolver.len()))
    }

    /// Entries in the deadline heap (tests: it stays about one per home).
    #[cfg(test)]
    pub(crate) fn ipv6_queue_len(&self) -> usize {
        self.v6.due.len()
    }

    /// The IPv6 timers due at `now_ms` (see the module doc); returns when the next is due.
    pub fn timers6(&mut self, now_ms: u64) -> Option<u64> {
        self.v6.clock_ms = self.v6.clock_ms.max(now_ms);
        while let Some(&Reverse((at, id))) = self.v6.due.peek() {
            if at > now_ms {
                break;
            }
            self.v6.due.pop();
            if let Some(r) = self.v6.homes.get_mut(&id)
                && r.queued_ms == at
            {
                r.queued_ms = u64::MAX;
            }
            self.poll_home(id, now_ms);
        }
        if now_ms >= self.v6.next_sweep_ms {
            self.v6.next_sweep_ms = now_ms.saturating_add(SWEEP_MS);
            let ids: Vec<SubscriberId> = self.v6.homes.keys().copied().collect();
            for id in ids {
                self.expire_home(id, now_ms);
            }
        }
        self.ipv6_next_ms()
    }

    /// Home `id`'s RA and resolution timers at `now_ms`.
    fn poll_home(&mut self, id: SubscriberId, now_ms: u64) {
        let Some(r) = self.v6.homes.get_mut(&id) else {
            return;
        };
        let counts = &mut self.v6.counts;
        if r.schedule.poll(now_ms) {
            let frame = r.encap.as_ref().and_then(|e| nd::ra_frame(&r.nd, e).ok());
            match frame {
                Some(frame) => {
                    if self.sink.send(&frame).is_ok() {
                        counts.ras_unsolicited += 1;
                    }
                }
                None => counts.ras_unsendable += 1,
            }
        }
        for frame in r.end_dad(&mut self.hosts, counts, id, now_ms) {
            let _ = self.sink.send(&frame);
        }
        for event in r.resolver.poll(now_ms) {
            match event {
                ResolverEvent::Retransmit(target) => {
                    let known = r.probing.get(&target).copied();
                    let frame = r
                        .encap
                        .as_ref()
                        .and_then(|e| nd::solicit(&r.nd, e, target, known).ok());
                    if let Some(frame) = frame
                        && self.sink.send(&frame).is_ok()
                    {
                        counts.solicits += 1;
                    }
                }
                ResolverEvent::Failed { target, held } => {
                    counts.unresolved += 1;
                    if r.probing.remove(&target).is_some() {
                        counts.neighbours_expired += 1;
                    }
                    if !r.leased.contains_key(&target) {
                        r.unwrite(&mut self.hosts, counts, id, target);
                        r.settle_routes(&mut self.hosts, counts, id);
                    }
                    if let Some(held) = held {
                        unreachable_to_core(&mut self.v6.core, &self.v6.settings, counts, &held);
                    }
                }
            }
        }
        r.requeue(&mut self.v6.due, id);
    }

    /// Home `id`'s bindings that went quiet: an entry in the table is probed (a unicast NS
    /// to its MAC, RFC 4861 §7.3.3) and marked STALE; removed if the probe cannot start
    /// (resolution refused) or fails later.
    fn expire_home(&mut self, id: SubscriberId, now_ms: u64) {
        let Some(r) = self.v6.homes.get_mut(&id) else {
            return;
        };
        let counts = &mut self.v6.counts;
        let mut changed = false;
        for addr in r.neighbours.expire(now_ms) {
            if r.leased.contains_key(&addr) {
                // A lease binds its address for its lifetime, quiet or not.
                continue;
            }
            let Some(n) = r.written.get(&addr).copied() else {
                continue;
            };
            if !n.has_mac() {
                continue;
            }
            let mac = EthernetAddress(n.mac);
            let probe = match (r.resolver.resolve(addr, None, now_ms), r.encap.as_ref()) {
                (Resolve::Solicit, Some(encap)) => nd::solicit(&r.nd, encap, addr, Some(mac)).ok(),
                _ => None,
            };
            match probe {
                Some(frame) => {
                    if self.sink.send(&frame).is_ok() {
                        counts.solicits += 1;
                    }
                    r.probing.insert(addr, mac);
                    r.write(&mut self.hosts, counts, id, addr, Some(mac));
                }
                None => {
                    r.resolver.resolved(addr);
                    counts.neighbours_expired += 1;
                    r.unwrite(&mut self.hosts, counts, id, addr);
                    changed = true;
                }
            }
        }
        if changed {
            r.settle_routes(&mut self.hosts, counts, id);
        }
        r.requeue(&mut self.v6.due, id);
    }

    /// One punted IPv6 frame of home `sub` (already through the limiter), up to the commit.
    pub(super) fn stage6(
        &mut self,
        sub: SubscriberId,
        punted: &super::Punted,
        now_ms: u64,
        now: UnixTime,
        staged: &mut Staged6,
    ) -> Pending {
        self.v6.clock_ms = self.v6.clock_ms.max(now_ms);
        let Some(r) = self.v6.homes.get_mut(&sub) else {
            return Pending::Done(Outcome::Ignored("ipv6_off"));
        };
        let reason = punted.reason;
        let frame = &punted.frame[..];
        if reason == Some(PuntReason::NeighMiss) {
            // Always the core side's frame (whatever it carries: VXLAN from the internet to a
            // home host is no LSL frame).
            return self.neigh_miss(sub, frame, now_ms);
        }
        let decapsulated = decapsulate(frame, &self.options)
            .ok()
            .filter(|d| d.lsl.is_some());
        let Some(decapsulated) = decapsulated else {
            // The core side's frames: plain Ethernet + IPv6.
            return match reason {
                Some(PuntReason::PacketTooBig) => self.too_big_to_core(punted),
                _ => Pending::Done(Outcome::Ignored("ipv6_from_core")),
            };
        };
        if decapsulated.lsl != Some(r.nd.lsl) {
            return Pending::Done(Outcome::Ignored("wrong_lsl"));
        }
        if matches!(r.nd.lsl, LslId::Vxlan { .. }) {
            r.encap = Some(decapsulated.reply_encap());
        }
        match reason {
            Some(PuntReason::Mld) => return Pending::Done(Outcome::Ignored("mld")),
            Some(PuntReason::PacketTooBig) => {
                let mtu = u32::from(punted.header.mtu);
                return self.error6(sub, frame, Icmp6Error::PacketTooBig { mtu });
            }
            _ => {}
        }
        if let Some((mac, src, payload)) = v6x::dhcp6_request(&decapsulated.inner) {
            let peer = dhcp6::Peer {
                mac: MacAddr(mac.0),
                link_local: src,
            };
            let encap = decapsulated.reply_encap();
            return self.stage_dhcp6(sub, peer, payload, &encap, now, staged);
        }
        drop(decapsulated);
        self.answer(sub, frame, now_ms)
    }

    /// ND, echo and hop-limit errors through [`nd::answer6`], and what they teach.
    fn answer(&mut self, sub: SubscriberId, frame: &[u8], now_ms: u64) -> Pending {
        let Some(r) = self.v6.homes.get_mut(&sub) else {
            return Pending::Done(Outcome::Ignored("ipv6_off"));
        };
        let counts = &mut self.v6.counts;
        let result = nd::answer6(&r.nd, frame, &self.options, &mut r.schedule, now_ms);
        let held =
            nd::learnt(&result).and_then(|b| r.learn(&mut self.hosts, counts, sub, &b, now_ms));
        r.requeue(&mut self.v6.due, sub);
        if let Some(held) = held {
            let _ = self.send(&held, Outcome::Ipv6("forwarded"));
        }
        match result {
            Ok(answer) => {
                let kind = answer.reply.kind;
                if matches!(kind, Reply6Kind::Error(_)) && self.v6.settings.router_address.is_none()
                {
                    self.v6.counts.errors_without_source += 1;
                    return Pending::Done(Outcome::Ignored("no_router_address"));
                }
                if kind == Reply6Kind::RouterAdvert {
                    self.v6.counts.ras_solicited += 1;
                }
                Pending::Done(self.send(&answer.reply.frame, Outcome::Replied(kind.label())))
            }
            Err(Ignored6::Learn(_)) => Pending::Done(Outcome::Ipv6("learnt")),
            Err(Ignored6::RaScheduled { .. }) => Pending::Done(Outcome::Ipv6("ra_scheduled")),
            Err(why) => Pending::Done(Outcome::Ignored(why.label())),
        }
    }

    /// An ICMPv6 error to the sender of a home's `frame`.
    fn error6(&mut self, sub: SubscriberId, frame: &[u8], error: Icmp6Error) -> Pending {
        let Some(r) = self.v6.homes.get(&sub) else {
            return Pending::Done(Outcome::Ignored("ipv6_off"));
        };
        if self.v6.settings.router_address.is_none() {
            self.v6.counts.errors_without_source += 1;
            return Pending::Done(Outcome::Ignored("no_router_address"));
        }
        match nd::icmp6_error(&r.nd, frame, &self.options, error) {
            Ok(reply) => {
                Pending::Done(self.send(&reply.frame, Outcome::Replied(reply.kind.label())))
            }
            Err(why) => Pending::Done(Outcome::Ignored(why.label())),
        }
    }

    /// Packet Too Big for a core-side frame too big for the home's LSL, back to the core.
    fn too_big_to_core(&mut self, punted: &super::Punted) -> Pending {
        let error = Icmp6Error::PacketTooBig {
            mtu: u32::from(punted.header.mtu),
        };
        let (Some(source), Some(core)) = (self.v6.settings.router_address, self.v6.core.as_mut())
        else {
            self.v6.counts.errors_without_source += 1;
            return Pending::Done(Outcome::Ignored("no_core_error"));
        };
        let Some(l2) = core_l2(&punted.frame) else {
            return Pending::Done(Outcome::Ignored("malformed"));
        };
        match nd::icmp6_error_to_core(source, &l2, &punted.frame, error) {
            Ok(frame) => match core.send(&frame) {
                Ok(()) => Pending::Done(Outcome::Replied(error.label())),
                Err(err) => {
                    tracing::warn!(error = %err, "sending an ICMPv6 error to the core failed");
                    Pending::Done(Outcome::SendFailed)
                }
            },
            Err(why) => Pending::Done(Outcome::Ignored(why.label())),
        }
    }

    /// A core-side packet for a home address without a neighbour entry: resolution starts
    /// (an NS into the home and an INCOMPLETE entry, so that the fast path stops punting the
    /// address), within the home's resolution bounds ([`ResolverLimits`]).
    fn neigh_miss(&mut self, sub: SubscriberId, frame: &[u8], now_ms: u64) -> Pending {
        let Some(r) = self.v6.homes.get_mut(&sub) else {
            return Pending::Done(Outcome::Ignored("ipv6_off"));
        };
        let counts = &mut self.v6.counts;
        let Some(dst) = v6x::core_destination(frame) else {
            return Pending::Done(Outcome::Ignored("malformed"));
        };
        let target = if r.nd.lan.contains(&dst) {
            dst
        } else if let Some(via) = r
            .routes_written
            .iter()
            .find(|(p, _)| p.contains(&dst))
            .map(|(_, via)| *via)
        {
            via
        } else {
            return Pending::Done(Outcome::Ignored("not_home_address"));
        };
        if !r.nd.is_host(target) {
            return Pending::Done(Outcome::Ignored("not_host"));
        }
        let known = r
            .neighbours
            .lookup(target, now_ms)
            .or_else(|| r.leased.get(&target).copied());
        if let (Some(mac), Some(encap)) = (known, r.encap) {
            // Known (the entry was lost or is being written): deliver it.
            r.write(&mut self.hosts, counts, sub, target, Some(mac));
            return match v6x::forward_held(frame, r.nd.gateway_mac, mac, &encap) {
                Some(f) => Pending::Done(self.send(&f, Outcome::Ipv6("forwarded"))),
                None => Pending::Done(Outcome::Ignored("hop_limit")),
            };
        }
        let outcome = match r.resolver.resolve(target, Some(frame), now_ms) {
            Resolve::Solicit => {
                if !r.written.contains_key(&target) {
                    r.write(&mut self.hosts, counts, sub, target, None);
                }
                let ns = r
                    .encap
                    .as_ref()
                    .and_then(|e| nd::solicit(&r.nd, e, target, None).ok());
                match ns {
                    Some(ns) => match self.sink.send(&ns) {
                        Ok(()) => {
                            counts.solicits += 1;
                            Outcome::Ipv6("ns_sent")
                        }
                        Err(_) => Outcome::SendFailed,
                    },
                    None => Outcome::Ignored("no_encap"),
                }
            }
            Resolve::Pending => Outcome::Ipv6("resolving"),
            Resolve::Full => {
                counts.resolve_refused += 1;
                Outcome::Ignored("resolve_full")
            }
            Resolve::RateLimited => {
                counts.resolve_refused += 1;
                Outcome::Ignored("resolve_rate_limited")
            }
        };
        r.requeue(&mut self.v6.due, sub);
        Pending::Done(outcome)
    }
}

/// A core-side frame's L2 addresses, swapped for an error back to its sender (the core
/// router that sent it to the vG).
fn core_l2(frame: &[u8]) -> Option<CoreL2> {
    let eth = lsl::smoltcp::wire::EthernetFrame::new_checked(frame).ok()?;
    Some(CoreL2 {
        src_mac: eth.dst_addr(),
        dst_mac: eth.src_addr(),
    })
}

/// ICMPv6 address unreachable (RFC 4443 §3.1 code 3) for a packet whose destination did not
/// resolve, to the core.
fn unreachable_to_core(
    core: &mut Option<Box<dyn FrameSink + Send>>,
    settings: &Ipv6Settings,
    counts: &mut V6Counts,
    held: &[u8],
) {
    let (Some(source), Some(core), Some(l2)) =
        (settings.router_address, core.as_mut(), core_l2(held))
    else {
        counts.errors_without_source += 1;
        return;
    };
    if let Ok(frame) = nd::icmp6_error_to_core(source, &l2, held, Icmp6Error::AddressUnreachable)
        && let Err(err) = core.send(&frame)
    {
        tracing::warn!(error = %err, "sending an ICMPv6 error to the core failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vlan_lsls_give_their_encapsulation_and_vxlan_waits_for_a_frame() {
        let vid = lsl::Vid::new(5).expect("vid");
        assert_eq!(
            encap_for(&LslId::dot1q(vid)),
            Some(Encap::Dot1q { c_vid: vid })
        );
        assert!(matches!(
            encap_for(&LslId::qinq(vid, vid)),
            Some(Encap::QinQ { .. })
        ));
        let vni = lsl::Vni::new(9).expect("vni");
        assert_eq!(
            encap_for(&LslId::vxlan(vni, "10.0.0.2".parse().expect("ip"))),
            None
        );
    }
}
