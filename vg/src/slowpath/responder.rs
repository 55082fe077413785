//! The slow path's dispatcher: for each punted frame, find the home, apply its rate limit,
//! and send the gateway's answer back out on the home's LSL: ARP, ICMP echo, ICMP errors,
//! and DHCP through the home's DHCP engine. A lease is made durable in the lease store
//! before its ACK leaves, and every lease change updates the fast path's host table
//! (anti-spoofing, downstream delivery) before the client can use the address.
//!
//! Frames are handled in batches (group commit): the frames waiting for the responder (at
//! most [`MAX_BATCH`]; see [`super::Queue`]) go through the engine in order, the store
//! changes of all their DHCP outcomes are written in **one** transaction (one fsync), and
//! only then are the host table changes applied and the replies sent, in the order of the
//! frames. A batch of one is [`Responder::handle`]. What does not wait for the commit leaves
//! at once, in frame order: the gateway's other answers (ARP, ICMP), and a DHCP answer that
//! changes nothing durable (no store change, no host change: an OFFER, say) from a home with
//! nothing pending in the batch, which rests on durable state only. Waiting would only
//! lengthen the burst of replies a commit releases.
//!
//! ```text
//!   frames 1..n --limiter, decap--> engine (state moves) --> store ops 1..n, replies 1..n
//!                                    one commit of ops 1..n
//!        ok:     host changes 1..n, then replies 1..n in order
//!        failed: no DHCP reply of the batch; every home with ops in it is reloaded from
//!                the store (the engine then holds exactly what is durable)
//! ```
//!
//! When the commit fails, the clients retransmit. The homes whose store changes were lost
//! are rebuilt from the store ([`dhcp::Homes::restore_from`]) rather than left ahead of it:
//! an engine that counts a lease (or a revocation, a release) the store does not have could
//! otherwise, after the next restart or reconfiguration, disagree with what a client was
//! told, and hand an address a client still holds to another. A home whose reload fails too
//! is *stale*: its DHCP messages get no answer (`store_failed`) and its engine decides
//! nothing until a reload succeeds (tried again with its next message and every tick); so
//! is a home whose leases cannot be read at start. The gateway's other answers (ARP, ICMP)
//! do not depend on the store and are sent whatever the commit did: withholding them would
//! turn a disk failure into an outage of the homes' gateways.
//!
//! IPv6 (issue 18): the responder is also each home's IPv6 router (`router6.rs`): the IPv6
//! punt reasons go to the ND engine, the DHCPv6 engine (whose binding changes join the
//! batch's one transaction with the DHCPv4 ones: [`Stores::apply_all`]) and neighbour
//! resolution, under the same per-home limit; [`Responder::timers6`] drives RAs,
//! retransmissions and expiry, and [`Responder::tick`] expires DHCPv4 leases and DHCPv6
//! bindings in one commit.

use std::collections::{BTreeSet, HashMap};

use lsl::{encap::DecapOptions, smoltcp::wire::EthernetAddress};
use nerg_abi::{PuntReason, SubscriberId};

use super::{
    Punted,
    reply::{self, Answer, DhcpRequest, GatewayDatagram, HomeLimiter, IcmpError},
};
use crate::{
    config::Config,
    dhcp::{self, Destination, Event, HomeServer, Homes, HostChange, LeaseStore, UnixTime},
    dhcp6,
};

mod router6;
pub use router6::{DAD_MS, SWEEP_MS};
use router6::{Routers6, Staged6};

pub use super::v6::NeighbourTable;

/// The lease stores of the responder: DHCPv4 leases and DHCPv6 bindings, written by a
/// batch in **one** transaction ([`Stores::apply_all`]): the issue's "durable before the
/// Reply leaves (the same group commit as DHCPv4)".
pub trait Stores: LeaseStore + dhcp6::BindingStore {
    /// Applies both kinds of changes, atomically if the backend has transactions (redb:
    /// one commit, one fsync). The default applies one after the other (memory stores).
    fn apply_all(&self, v4: &[dhcp::StoreOp], v6: &[dhcp6::StoreOp]) -> Result<(), String> {
        if !v4.is_empty() {
            LeaseStore::apply(self, v4).map_err(|e| format!("{e:#}"))?;
        }
        if !v6.is_empty() {
            dhcp6::BindingStore::apply(self, v6).map_err(|e| format!("{e:#}"))?;
        }
        Ok(())
    }
}

/// The most frames one batch holds: one engine pass and one store commit. It bounds how
/// long the first frame of a batch waits for its reply (the engine and the sends of the
/// whole batch, about 10 us a frame, plus the fsync) and lets a batch absorb what arrives
/// during a slow fsync: at 16,000 frames/s, 100 ms of it.
pub const MAX_BATCH: usize = 1024;

/// Where lease changes go: the fast path's host table (a map in tests).
pub trait HostTable {
    /// The host `ip` of home `sub` has `mac`.
    fn add(
        &mut self,
        sub: SubscriberId,
        ip: std::net::Ipv4Addr,
        mac: [u8; 6],
    ) -> Result<(), String>;
    /// The host `ip` of home `sub` is gone.
    fn remove(&mut self, sub: SubscriberId, ip: std::net::Ipv4Addr) -> Result<(), String>;
}

impl HostTable for std::collections::BTreeMap<(SubscriberId, std::net::Ipv4Addr), [u8; 6]> {
    fn add(
        &mut self,
        sub: SubscriberId,
        ip: std::net::Ipv4Addr,
        mac: [u8; 6],
    ) -> Result<(), String> {
        self.insert((sub, ip), mac);
        Ok(())
    }
    fn remove(&mut self, sub: SubscriberId, ip: std::net::Ipv4Addr) -> Result<(), String> {
        std::collections::BTreeMap::remove(self, &(sub, ip));
        Ok(())
    }
}

/// Where reply frames go (the access interface's packet socket; a `Vec` in tests).
pub trait FrameSink {
    /// Sends one complete frame.
    fn send(&mut self, frame: &[u8]) -> std::io::Result<()>;
}

impl FrameSink for super::packet_socket::PacketSocket {
    fn send(&mut self, frame: &[u8]) -> std::io::Result<()> {
        super::packet_socket::PacketSocket::send(self, frame)
    }
}

impl FrameSink for Vec<Vec<u8>> {
    fn send(&mut self, frame: &[u8]) -> std::io::Result<()> {
        self.push(frame.to_vec());
        Ok(())
    }
}

/// What happened to one punted frame: a stable label for the `vg_slowpath_*` metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A reply was sent; the label names its kind.
    Replied(&'static str),
    /// A DHCP message handled by the engine.
    Dhcp {
        /// The client's message type (`discover`, `request`, ...; `unknown`).
        request: &'static str,
        /// The reply sent (`offer`, `ack`, `nak`), `no_reply`, or `store_failed` (the
        /// batch's commit failed, or the home is stale: nothing was sent).
        reply: &'static str,
    },
    /// A DHCPv6 message handled by the engine.
    Dhcp6 {
        /// The client's message type (`solicit`, `request`, ...; `unknown`).
        request: &'static str,
        /// The reply sent (`advertise`, `reply`), `no_reply`, or `store_failed`.
        reply: &'static str,
    },
    /// An IPv6 frame handled without a reply of its own: a binding learnt, an NS sent for
    /// a neighbour miss, a held packet forwarded (the label says which).
    Ipv6(&'static str),
    /// Not answered; the label says why.
    Ignored(&'static str),
    /// The reply could not be sent.
    SendFailed,
}

/// What a batch's (or a tick's) store commit did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Commit {
    /// There was nothing to store.
    Nothing,
    /// One transaction with this many changes.
    Committed {
        /// Store changes written.
        ops: usize,
        /// How long the commit took (its fsync, mostly).
        took: std::time::Duration,
    },
    /// The transaction failed: no reply depending on it was sent, and the homes it
    /// concerned were reloaded from the store.
    Failed,
}

impl Commit {
    /// The changes written, if a transaction was committed.
    pub fn ops(&self) -> Option<usize> {
        match *self {
            Commit::Committed { ops, .. } => Some(ops),
            Commit::Nothing | Commit::Failed => None,
        }
    }
}

/// The result of [`Responder::handle_batch`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Batch {
    /// One outcome per frame, in the frames' order.
    pub outcomes: Vec<Outcome>,
    /// The batch's store commit.
    pub commit: Commit,
}

/// A frame of a batch between the engine and the commit.
enum Pending {
    /// Decided: nothing to send.
    Done(Outcome),
    /// A DHCP message the engine handled: its events and reply wait for the commit.
    Dhcp {
        home: SubscriberId,
        request: &'static str,
        events: Vec<Event>,
        reply: DhcpReply,
    },
    /// A DHCPv6 message the engine handled: the same, for DHCPv6.
    Dhcp6 {
        home: SubscriberId,
        request: &'static str,
        events: Vec<dhcp6::Event>,
        reply: DhcpReply,
    },
}

/// A DHCP reply, ready to send once the batch is durable.
enum DhcpReply {
    /// The engine had nothing to say.
    None,
    /// The frame, and the reply's label.
    Frame { frame: Vec<u8>, kind: &'static str },
    /// The reply could not be encapsulated.
    Encap,
}

/// Answers punted frames on behalf of every home's gateway.
pub struct Responder<S, L, H> {
    homes: HashMap<SubscriberId, reply::Home>,
    dhcp: Homes,
    /// Homes whose DHCP state could not be reloaded from the store after a failed commit:
    /// not served until a reload succeeds.
    stale: BTreeSet<SubscriberId>,
    leases: L,
    hosts: H,
    limiter: HomeLimiter,
    options: DecapOptions,
    sink: S,
    /// Every home's IPv6 router.
    v6: Routers6,
}

impl<S: FrameSink, L: Stores, H: HostTable + NeighbourTable> Responder<S, L, H> {
    /// A responder for the homes of `config`, sending through `sink`, keeping leases in
    /// `leases` (restored from it) and hosts in `hosts`; each home's slow path is limited
    /// to `config.slowpath.per_home`.
    pub fn new(config: &Config, sink: S, leases: L, hosts: H, now: UnixTime) -> Self {
        let mut responder = Self {
            homes: config
                .subscribers
                .values()
                .map(|s| (s.id, reply::Home::from(s)))
                .collect(),
            dhcp: Homes::new(),
            stale: BTreeSet::new(),
            leases,
            hosts,
            limiter: HomeLimiter::new(config.slowpath.per_home),
            options: DecapOptions {
                vxlan_port: config.fastpath.vxlan_port,
                ..DecapOptions::default()
            },
            sink,
            v6: Routers6::new(super::v6::Ipv6Settings::from_config(config)),
        };
        for sub in config.subscribers.values() {
            // Restored leases re-enter the host table; a home whose leases cannot be read
            // is not served (it would hand out addresses its clients hold) until they can.
            responder
                .dhcp
                .insert(HomeServer::new(sub.id, sub.dhcp.clone()));
            responder.resync(sub.id, now);
        }
        responder
    }

    /// The host table (tests read it).
    pub fn hosts(&self) -> &H {
        &self.hosts
    }

    /// The host tables, to change behind the responder's back (tests).
    #[cfg(test)]
    pub(crate) fn hosts_mut(&mut self) -> &mut H {
        &mut self.hosts
    }

    /// The lease store (tests use it).
    pub fn store(&self) -> &L {
        &self.leases
    }

    /// A home's DHCP server (tests and diagnostics read its state).
    pub fn dhcp_server(&self, id: SubscriberId) -> Option<&HomeServer> {
        self.dhcp.get(id)
    }

    /// True if home `id`'s DHCP state could not be reloaded from the store and the home is
    /// not served until it can.
    pub fn is_stale(&self, id: SubscriberId) -> bool {
        self.stale.contains(&id)
    }

    /// Adds a home created at run time: its gateway answers and an empty DHCP server (a new
    /// home has no leases: deleting a home deletes its leases).
    pub fn add_home(&mut self, sub: &crate::config::SubscriberConfig) {
        self.homes.insert(sub.id, reply::Home::from(sub));
        self.dhcp.insert(HomeServer::new(sub.id, sub.dhcp.clone()));
        self.stale.remove(&sub.id);
        self.limiter.forget(sub.id);
    }

    /// Updates a home in place: its gateway answers (LSL, addresses) at once; its DHCP server
    /// is rebuilt from the lease store only when its DHCP settings changed (the leases it
    /// acknowledged stay; offers in flight are forgotten and the clients retry).
    pub fn update_home(&mut self, sub: &crate::config::SubscriberConfig, now: UnixTime) {
        self.homes.insert(sub.id, reply::Home::from(sub));
        // A home without a server (just removed) is restored from the store too.
        let same = self
            .dhcp
            .get(sub.id)
            .is_some_and(|server| *server.config() == sub.dhcp);
        if same {
            return;
        }
        self.dhcp.insert(HomeServer::new(sub.id, sub.dhcp.clone()));
        self.resync(sub.id, now);
    }

    /// Removes a home: no more answers or leases for it. Its leases stay in the store and its
    /// hosts in the host table: the caller deletes them (one transaction with the home). Its
    /// IPv6 router sends its final RA and removes its IPv6 table entries.
    pub fn remove_home(&mut self, id: SubscriberId) {
        self.teardown6(id, true);
        self.homes.remove(&id);
        self.dhcp.remove(id);
        self.stale.remove(&id);
        self.limiter.forget(id);
    }

    /// A home's lease records, from the store.
    pub fn leases(&self, id: SubscriberId) -> Result<Vec<dhcp::LeaseRecord>, dhcp::StoreError> {
        LeaseStore::load(&self.leases, id)
    }

    /// Homes with a DHCP server and their bound leases (for the leases-in-use metric).
    pub fn leases_in_use(&self) -> usize {
        self.dhcp.bound_leases()
    }

    /// Ends what is due at `now` (lease expiry, offer holds, quarantines), all homes' changes
    /// in one store transaction; retries the reload of stale homes.
    pub fn tick(&mut self, now: UnixTime) -> Commit {
        let stale: Vec<SubscriberId> = self.stale.iter().copied().collect();
        for id in stale {
            self.resync(id, now);
        }
        // A stale home's engine is not trusted to decide anything.
        let stale6: Vec<SubscriberId> = self.v6.stale.iter().copied().collect();
        for id in stale6 {
            self.resync6(id, now);
        }
        let stale = &self.stale;
        let outcomes = self.dhcp.expire_if(now, |home| !stale.contains(&home));
        let ops: Vec<dhcp::StoreOp> = outcomes
            .iter()
            .flat_map(|o| o.persist.iter().cloned())
            .collect();
        let outcomes6 = self.expire6(now);
        let ops6: Vec<dhcp6::StoreOp> = outcomes6
            .iter()
            .flat_map(|o| o.persist.iter().cloned())
            .collect();
        let commit = self.commit(&ops, &ops6);
        if commit == Commit::Failed {
            let homes: BTreeSet<SubscriberId> = outcomes
                .iter()
                .filter(|o| !o.persist.is_empty())
                .map(|o| o.home)
                .collect();
            for home in homes {
                self.resync(home, now);
            }
            let homes6: BTreeSet<SubscriberId> = outcomes6
                .iter()
                .filter(|o| !o.persist.is_empty())
                .map(|o| o.home)
                .collect();
            for home in homes6 {
                self.resync6(home, now);
            }
        } else {
            for outcome in &outcomes {
                self.apply_events(outcome.home, &outcome.events);
            }
            for outcome in &outcomes6 {
                self.apply_events6(outcome.home, &outcome.events);
            }
        }
        commit
    }

    /// Writes `ops` (DHCPv4) and `ops6` (DHCPv6) in one transaction.
    fn commit(&mut self, ops: &[dhcp::StoreOp], ops6: &[dhcp6::StoreOp]) -> Commit {
        let n = ops.len() + ops6.len();
        if n == 0 {
            return Commit::Nothing;
        }
        let started = std::time::Instant::now();
        match self.leases.apply_all(ops, ops6) {
            Ok(()) => Commit::Committed {
                ops: n,
                took: started.elapsed(),
            },
            Err(err) => {
                // Nothing that depends on it is sent: the clients retransmit.
                tracing::error!(ops = n, error = %err, "lease store commit failed");
                Commit::Failed
            }
        }
    }

    /// Reloads home `id`'s DHCP server from the store and commits what the reload decided
    /// (leases that ran out, records the configuration no longer allows); true when the
    /// home is in step with the store again, false when it stays stale.
    fn resync(&mut self, id: SubscriberId, now: UnixTime) -> bool {
        let Some(config) = self.dhcp.get(id).map(|s| s.config().clone()) else {
            self.stale.remove(&id);
            return true;
        };
        let outcome = match self.dhcp.restore_from(&self.leases, id, config, now) {
            Ok(outcome) => outcome,
            Err(err) => {
                tracing::error!(sub = id, error = %err, "reloading a home's leases failed; its DHCP is off until the store answers");
                self.stale.insert(id);
                return false;
            }
        };
        if self.commit(&outcome.persist, &[]) == Commit::Failed {
            self.stale.insert(id);
            return false;
        }
        self.apply_events(id, &outcome.events);
        self.stale.remove(&id);
        true
    }

    /// Applies the host-table changes of durable `events` of `home`.
    fn apply_events(&mut self, home: SubscriberId, events: &[Event]) {
        for event in events {
            let change = match event.host_change() {
                Some(HostChange::Add { mac, ip }) => self.hosts.add(home, ip, mac.0),
                Some(HostChange::Remove { ip, .. }) => self.hosts.remove(home, ip),
                None => Ok(()),
            };
            if let Err(err) = change {
                tracing::error!(sub = home, error = %err, "updating the host table failed");
            }
            tracing::debug!(sub = home, ?event, "dhcp");
        }
    }

    /// Runs one DHCP message through its home's engine; its store changes join `ops`.
    fn stage_dhcp(
        &mut self,
        sub: SubscriberId,
        home: &reply::Home,
        req: &DhcpRequest<'_>,
        now: UnixTime,
        ops: &mut Vec<dhcp::StoreOp>,
        touched: &mut BTreeSet<SubscriberId>,
    ) -> Pending {
        let request = dhcp_message_type(req.payload());
        if self.stale.contains(&sub) && !self.resync(sub, now) {
            return Pending::Done(Outcome::Dhcp {
                request,
                reply: "store_failed",
            });
        }
        let outcome = match self.dhcp.handle_bytes(sub, now, req.payload()) {
            Ok(o) => o,
            Err(why) => return Pending::Done(Outcome::Ignored(why.label())),
        };
        // An answer that changes nothing durable, from a home with nothing pending in this
        // batch (an OFFER, say) rests on durable state only: it leaves at once instead of
        // after the batch's commit, which shortens the burst of replies a commit releases.
        let needs_commit = !outcome.persist.is_empty()
            || outcome.events.iter().any(|e| e.host_change().is_some())
            || touched.contains(&sub);
        if !outcome.persist.is_empty() {
            touched.insert(sub);
            ops.extend(outcome.persist);
        }
        let reply = match outcome.reply {
            None => DhcpReply::None,
            Some(reply) => {
                let kind = match reply.message_type {
                    dhcproto::v4::MessageType::Offer => "offer",
                    dhcproto::v4::MessageType::Ack => "ack",
                    dhcproto::v4::MessageType::Nak => "nak",
                    _ => "other",
                };
                let (dst, dst_mac) = match reply.dst {
                    Destination::Broadcast => {
                        (std::net::Ipv4Addr::BROADCAST, EthernetAddress([0xff; 6]))
                    }
                    Destination::Unicast { ip, mac } => (ip, EthernetAddress(mac.0)),
                    // RFC 2131 section 4.1: to the relay, which sent the request from its
                    // own MAC on the home's LAN; no ARP (the vG does not resolve in homes).
                    Destination::Relay { giaddr } => (giaddr, req.client_mac),
                };
                let datagram = GatewayDatagram {
                    dst_mac,
                    dst,
                    src_port: dhcp::SERVER_PORT,
                    dst_port: reply.dst.port(),
                    payload: &reply.payload,
                };
                match reply::udp_from_gateway(home, &req.decapsulated.reply_encap(), &datagram) {
                    Ok(frame) => DhcpReply::Frame { frame, kind },
                    Err(_) => DhcpReply::Encap,
                }
            }
        };
        match reply {
            DhcpReply::Frame { frame, kind } if !needs_commit => {
                // No host change among them: this only logs them.
                self.apply_events(sub, &outcome.events);
                Pending::Done(self.send(
                    &frame,
                    Outcome::Dhcp {
                        request,
                        reply: kind,
                    },
                ))
            }
            reply => Pending::Dhcp {
                home: sub,
                request,
                events: outcome.events,
                reply,
            },
        }
    }

    /// The sink (tests read what was sent).
    pub fn sink(&self) -> &S {
        &self.sink
    }

    /// Handles one punted frame at `now_ms` (a monotonic millisecond clock) and `now`
    /// (wall-clock time, for leases): a batch of one.
    pub fn handle(&mut self, punted: &Punted, now_ms: u64, now: UnixTime) -> Outcome {
        self.handle_batch(std::slice::from_ref(punted), now_ms, now)
            .outcomes
            .pop()
            .unwrap_or(Outcome::Ignored("empty_batch"))
    }

    /// Handles a batch of punted frames, those waiting in the queue (see the [module
    /// documentation](self)): every frame through the limiter and the engine in order, one
    /// store commit for all of them, then the host changes, then the replies in order.
    /// Callers keep batches to [`MAX_BATCH`] frames (larger ones work, with a longer wait
    /// for their first reply).
    pub fn handle_batch(&mut self, frames: &[Punted], now_ms: u64, now: UnixTime) -> Batch {
        let mut ops = Vec::new();
        let mut touched = BTreeSet::new();
        let mut staged6 = Staged6::default();
        let pending: Vec<Pending> = frames
            .iter()
            .map(|punted| self.stage(punted, now_ms, now, &mut ops, &mut touched, &mut staged6))
            .collect();
        let commit = self.commit(&ops, &staged6.ops);
        let durable = commit != Commit::Failed;
        if durable {
            for p in &pending {
                match p {
                    Pending::Dhcp { home, events, .. } => self.apply_events(*home, events),
                    Pending::Dhcp6 { home, events, .. } => self.apply_events6(*home, events),
                    Pending::Done(_) => {}
                }
            }
        } else {
            for home in touched {
                self.resync(home, now);
            }
            for home in staged6.touched {
                self.resync6(home, now);
            }
        }
        let outcomes = pending
            .into_iter()
            .map(|p| match p {
                Pending::Done(outcome) => outcome,
                Pending::Dhcp { request, .. } if !durable => Outcome::Dhcp {
                    request,
                    reply: "store_failed",
                },
                Pending::Dhcp6 { request, .. } if !durable => Outcome::Dhcp6 {
                    request,
                    reply: "store_failed",
                },
                Pending::Dhcp6 { request, reply, .. } => match reply {
                    DhcpReply::None => Outcome::Dhcp6 {
                        request,
                        reply: "no_reply",
                    },
                    DhcpReply::Encap => Outcome::Ignored("encap"),
                    DhcpReply::Frame { frame, kind } => self.send(
                        &frame,
                        Outcome::Dhcp6 {
                            request,
                            reply: kind,
                        },
                    ),
                },
                Pending::Dhcp { request, reply, .. } => match reply {
                    DhcpReply::None => Outcome::Dhcp {
                        request,
                        reply: "no_reply",
                    },
                    DhcpReply::Encap => Outcome::Ignored("encap"),
                    DhcpReply::Frame { frame, kind } => self.send(
                        &frame,
                        Outcome::Dhcp {
                            request,
                            reply: kind,
                        },
                    ),
                },
            })
            .collect();
        Batch { outcomes, commit }
    }

    /// Sends `frame`; `done` if it left.
    fn send(&mut self, frame: &[u8], done: Outcome) -> Outcome {
        match self.sink.send(frame) {
            Ok(()) => done,
            Err(err) => {
                tracing::warn!(error = %err, ?done, "sending a slow-path reply failed");
                Outcome::SendFailed
            }
        }
    }

    /// One frame of a batch, up to the commit.
    fn stage(
        &mut self,
        punted: &Punted,
        now_ms: u64,
        now: UnixTime,
        ops: &mut Vec<dhcp::StoreOp>,
        touched: &mut BTreeSet<SubscriberId>,
        staged6: &mut Staged6,
    ) -> Pending {
        let sub = punted.header.sub;
        let Some(&home) = self.homes.get(&sub) else {
            return Pending::Done(Outcome::Ignored("unknown_home"));
        };
        if let Err(why) = self.limiter.admit(sub, now_ms) {
            return Pending::Done(Outcome::Ignored(why.label()));
        }
        if punted.reason.is_some_and(is_ipv6) {
            return self.stage6(sub, punted, now_ms, now, staged6);
        }
        let answered = if punted.reason == Some(PuntReason::TtlExceeded) {
            reply::icmp_error(&home, &punted.frame, &self.options, IcmpError::TimeExceeded)
                .map(Answer::Reply)
        } else {
            reply::answer(&home, &punted.frame, &self.options)
        };
        match answered {
            // The gateway's other answers (ARP, ICMP) do not depend on the store: they leave
            // at once.
            Ok(Answer::Reply(reply)) => {
                Pending::Done(self.send(&reply.frame, Outcome::Replied(reply.kind.label())))
            }
            Ok(Answer::Dhcp(req)) => self.stage_dhcp(sub, &home, &req, now, ops, touched),
            Err(why) => Pending::Done(Outcome::Ignored(why.label())),
        }
    }
}

/// The punt reasons of IPv6 frames: the IPv6 router's.
fn is_ipv6(reason: PuntReason) -> bool {
    matches!(
        reason,
        PuntReason::Ipv6
            | PuntReason::Nd
            | PuntReason::Mld
            | PuntReason::Dhcpv6
            | PuntReason::Icmpv6ToGateway
            | PuntReason::NeighMiss
            | PuntReason::HopLimitExceeded
            | PuntReason::PacketTooBig
    )
}

impl HostTable for crate::fastpath::maps::PinnedHosts {
    fn add(
        &mut self,
        sub: SubscriberId,
        ip: std::net::Ipv4Addr,
        mac: [u8; 6],
    ) -> Result<(), String> {
        crate::fastpath::maps::PinnedHosts::add(self, sub, ip, mac).map_err(|e| format!("{e:#}"))
    }
    fn remove(&mut self, sub: SubscriberId, ip: std::net::Ipv4Addr) -> Result<(), String> {
        crate::fastpath::maps::PinnedHosts::remove(self, sub, ip).map_err(|e| format!("{e:#}"))
    }
}

/// The DHCP message type (option 53) of a BOOTP payload, as a metric label: a walk over the
/// options after the magic cookie, bounded by the payload (the engine decodes it fully).
fn dhcp_message_type(payload: &[u8]) -> &'static str {
    const OPTIONS: usize = 240;
    let mut i = OPTIONS;
    while i < payload.len() {
        match payload[i] {
            0 => i += 1,
            255 => break,
            code => {
                let Some(&len) = payload.get(i + 1) else {
                    break;
                };
                if code == 53 && len == 1 {
                    return match payload.get(i + 2) {
                        Some(1) => "discover",
                        Some(3) => "request",
                        Some(4) => "decline",
                        Some(7) => "release",
                        Some(8) => "inform",
                        Some(_) => "other",
                        None => "unknown",
                    };
                }
                i += 2 + usize::from(len);
            }
        }
    }
    "unknown"
}

#[cfg(test)]
mod message_type_tests {
    use super::dhcp_message_type;

    #[test]
    fn option_53_is_found_anywhere_and_garbage_is_unknown() {
        let mut p = vec![0u8; 240];
        p.extend_from_slice(&[0, 12, 3, b'a', b'b', b'c', 53, 1, 3, 255]);
        assert_eq!(dhcp_message_type(&p), "request");
        p[248] = 1;
        assert_eq!(dhcp_message_type(&p), "discover");
        assert_eq!(dhcp_message_type(&p[..248]), "unknown");
        assert_eq!(dhcp_message_type(&[]), "unknown");
        let mut truncated = vec![0u8; 240];
        truncated.extend_from_slice(&[12, 200]);
        assert_eq!(dhcp_message_type(&truncated), "unknown");
    }
}
