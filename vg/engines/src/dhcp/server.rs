//! One home's DHCPv4 server: configuration plus lease state, messages in, actions out.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::net::Ipv4Addr;
use std::sync::Arc;

use dhcproto::v4::{Message, MessageType};

use super::config::{DhcpConfig, Relayed};
use super::decode::{DropReason, Kind, Request, decode};
use super::encode::{ReplyParts, encode_reply};
use super::pool::FreeMap;
use super::store::{LeaseRecord, LeaseState, LeaseStore, StoreError, StoreOp};
use super::types::{ClientId, HomeId, MacAddr, UnixTime};
use super::vendor::{VendorHook, VendorOptions, VendorQuery};

/// UDP port the server listens on (RFC 2131 section 4.1).
pub const SERVER_PORT: u16 = 67;
/// UDP port replies go to (RFC 2131 section 4.1).
pub const CLIENT_PORT: u16 = 68;

/// Where a reply goes (RFC 2131 section 4.1). The caller builds the frame (Ethernet, IPv4
/// from the gateway address, UDP from [`SERVER_PORT`] to [`port`](Destination::port)) and the
/// home's LSL encapsulation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Destination {
    /// To 255.255.255.255 and ff:ff:ff:ff:ff:ff.
    Broadcast,
    /// To one host at `ip`, `mac` (no ARP needed: the client may not answer ARP yet).
    Unicast {
        /// Destination IPv4 address.
        ip: Ipv4Addr,
        /// Destination MAC address.
        mac: MacAddr,
    },
    /// To the relay agent at `giaddr`, on the DHCP server port (the message was relayed and
    /// the home serves relayed messages). Its MAC is the link-layer source of the request,
    /// which only the caller knows.
    Relay {
        /// The relay agent's address (the request's `giaddr`).
        giaddr: Ipv4Addr,
    },
}

impl Destination {
    /// The destination IPv4 address.
    pub fn ip(&self) -> Ipv4Addr {
        match self {
            Destination::Broadcast => Ipv4Addr::BROADCAST,
            Destination::Unicast { ip, .. } => *ip,
            Destination::Relay { giaddr } => *giaddr,
        }
    }
    /// The destination MAC address; `None` for a relay (answer to the request's link-layer
    /// source).
    pub fn mac(&self) -> Option<MacAddr> {
        match self {
            Destination::Broadcast => Some(MacAddr::BROADCAST),
            Destination::Unicast { mac, .. } => Some(*mac),
            Destination::Relay { .. } => None,
        }
    }
    /// The destination UDP port: [`CLIENT_PORT`], or [`SERVER_PORT`] for a relay agent.
    pub fn port(&self) -> u16 {
        match self {
            Destination::Broadcast | Destination::Unicast { .. } => CLIENT_PORT,
            Destination::Relay { .. } => SERVER_PORT,
        }
    }
}

/// A reply to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// OFFER, ACK or NAK.
    pub message_type: MessageType,
    /// Source IPv4 address: the home's gateway (also the server identifier).
    pub src: Ipv4Addr,
    /// Destination addresses.
    pub dst: Destination,
    /// The DHCP message: the UDP payload, from port [`SERVER_PORT`] to `dst.port()`.
    pub payload: Vec<u8>,
}

/// Why a REQUEST got a NAK.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum NakReason {
    /// The address is not in the home's prefix (the client moved networks).
    WrongNetwork,
    /// The address is not one this client may have: outside the range, reserved for another
    /// client, or the gateway.
    NotAllowed,
    /// The address is leased, offered, remembered for or declined by another client.
    InUse,
    /// The client has another address here (its reservation or its previous lease).
    HasOtherAddress,
}

impl NakReason {
    /// A short stable name, for a metric label.
    pub const fn label(self) -> &'static str {
        match self {
            NakReason::WrongNetwork => "wrong_network",
            NakReason::NotAllowed => "not_allowed",
            NakReason::InUse => "in_use",
            NakReason::HasOtherAddress => "has_other_address",
        }
    }

    fn text(self) -> &'static str {
        match self {
            NakReason::WrongNetwork => "wrong network",
            NakReason::NotAllowed => "address not allowed",
            NakReason::InUse => "address in use",
            NakReason::HasOtherAddress => "client has another address",
        }
    }
}

/// Why a well-formed message got no reply and changed nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum IgnoreReason {
    /// The client addressed another DHCP server (option 54).
    OtherServer,
    /// RELEASE or DECLINE of an address this client does not hold.
    NotOwner,
    /// INFORM from an address outside the home's prefix.
    WrongNetwork,
}

impl IgnoreReason {
    /// A short stable name, for a metric label.
    pub const fn label(self) -> &'static str {
        match self {
            IgnoreReason::OtherServer => "other_server",
            IgnoreReason::NotOwner => "not_owner",
            IgnoreReason::WrongNetwork => "wrong_network",
        }
    }
}

/// Something that happened, for the caller to act on, log and count.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// An address was offered (and is held for the offer time).
    Offered {
        /// The client.
        mac: MacAddr,
        /// The offered address.
        ip: Ipv4Addr,
    },
    /// A lease was acknowledged (new or renewed): add or refresh the host entry.
    LeaseGranted {
        /// The client's identity.
        client_id: ClientId,
        /// The client.
        mac: MacAddr,
        /// The address.
        ip: Ipv4Addr,
        /// End of the lease.
        expires: UnixTime,
        /// True if the client already held this lease (a renewal).
        renewed: bool,
    },
    /// The client released its lease: remove the host entry.
    LeaseReleased {
        /// The client.
        mac: MacAddr,
        /// The address.
        ip: Ipv4Addr,
    },
    /// The lease ran out: remove the host entry.
    LeaseExpired {
        /// The client.
        mac: MacAddr,
        /// The address.
        ip: Ipv4Addr,
    },
    /// The server took a lease back (the client moved to another address, or the
    /// configuration no longer allows it): remove the host entry.
    LeaseRevoked {
        /// The client.
        mac: MacAddr,
        /// The address.
        ip: Ipv4Addr,
    },
    /// The client found the address in use and declined it; quarantined until `until`.
    Declined {
        /// The client.
        mac: MacAddr,
        /// The address.
        ip: Ipv4Addr,
        /// End of the quarantine.
        until: UnixTime,
        /// True if the client held a lease on it (remove the host entry).
        was_bound: bool,
    },
    /// A declined address is back in the pool.
    QuarantineEnded {
        /// The address.
        ip: Ipv4Addr,
    },
    /// No address was left to offer: log it, count it.
    PoolExhausted {
        /// The client that got nothing.
        mac: MacAddr,
    },
    /// A REQUEST was refused.
    Nak {
        /// The client.
        mac: MacAddr,
        /// The address it asked for.
        ip: Ipv4Addr,
        /// Why.
        reason: NakReason,
    },
    /// An INFORM was answered.
    Informed {
        /// The client.
        mac: MacAddr,
        /// Its (self-configured) address.
        ip: Ipv4Addr,
    },
    /// A message was understood and deliberately left unanswered.
    Ignored {
        /// The client.
        mac: MacAddr,
        /// Why.
        reason: IgnoreReason,
    },
}

/// What an event means for the fast path's host table (MAC <-> IP per home).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostChange {
    /// Add or refresh the host.
    Add {
        /// The host's MAC.
        mac: MacAddr,
        /// The host's address.
        ip: Ipv4Addr,
    },
    /// Remove the host.
    Remove {
        /// The host's MAC.
        mac: MacAddr,
        /// The host's address.
        ip: Ipv4Addr,
    },
}

impl Event {
    /// The host-table change this event calls for, if any.
    pub fn host_change(&self) -> Option<HostChange> {
        match *self {
            Event::LeaseGranted { mac, ip, .. } => Some(HostChange::Add { mac, ip }),
            Event::LeaseReleased { mac, ip }
            | Event::LeaseExpired { mac, ip }
            | Event::LeaseRevoked { mac, ip }
            | Event::Declined {
                mac,
                ip,
                was_bound: true,
                ..
            } => Some(HostChange::Remove { mac, ip }),
            _ => None,
        }
    }
}

/// The result of one engine call.
///
/// **Order matters**: apply [`persist`](Outcome::persist) to the store first; only if that
/// succeeds, apply the events' [`HostChange`]s and send the [`reply`](Outcome::reply).
/// That way every lease acknowledged to a client is durable ([`Outcome::commit`] does the
/// store part; the slow path commits the outcomes of a whole batch of messages in one
/// transaction). If persisting fails, drop the reply: the client retransmits. The engine's
/// state has already moved (it counts the lease as granted), so a caller that goes on
/// serving the home should rebuild it from the store ([`Homes::restore_from`]) to hold only
/// what is durable; otherwise the engine acknowledges the retransmission with the same
/// records.
///
/// [`Homes::restore_from`]: super::Homes::restore_from
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use = "persist the records, then apply the events and send the reply"]
pub struct Outcome {
    /// The home this outcome belongs to.
    pub home: HomeId,
    /// Store changes, in order.
    pub persist: Vec<StoreOp>,
    /// What happened.
    pub events: Vec<Event>,
    /// The reply to send, if any.
    pub reply: Option<Reply>,
}

/// The part of an [`Outcome`] that may be acted on once its records are durable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    /// What happened.
    pub events: Vec<Event>,
    /// The reply to send, if any.
    pub reply: Option<Reply>,
}

impl Outcome {
    fn new(home: HomeId) -> Outcome {
        Outcome {
            home,
            persist: Vec::new(),
            events: Vec::new(),
            reply: None,
        }
    }

    /// Writes the records to `store` and, only if that worked, releases events and reply.
    pub fn commit<S: LeaseStore + ?Sized>(self, store: &S) -> Result<Committed, StoreError> {
        if !self.persist.is_empty() {
            store.apply(&self.persist)?;
        }
        Ok(Committed {
            events: self.events,
            reply: self.reply,
        })
    }

    /// True if there is nothing to persist, report or send.
    pub fn is_empty(&self) -> bool {
        self.persist.is_empty() && self.events.is_empty() && self.reply.is_none()
    }
}

/// How a home's addresses are used, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolUsage {
    /// Addresses in the dynamic range.
    pub range: u32,
    /// Dynamic addresses nobody holds or remembers.
    pub free: u32,
    /// Addresses held by an outstanding offer.
    pub offered: u32,
    /// Bound leases (reservations included).
    pub bound: u32,
    /// Expired or released leases still remembered for their client.
    pub remembered: u32,
    /// Declined addresses in quarantine.
    pub declined: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Offer {
    client: ClientId,
    mac: MacAddr,
    until: UnixTime,
}

/// Whether an address can go to a given client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Avail {
    /// Nobody holds or remembers it.
    Free,
    /// This client holds or held it.
    Own,
    /// Another client's expired or released lease is remembered on it.
    Evicts,
    /// Not for this client.
    Taken(NakReason),
}

/// One home's DHCP server: its configuration and lease state.
///
/// Time is always passed in (`now`, UNIX seconds) and the engine does no I/O: call
/// [`handle_bytes`](HomeServer::handle_bytes) for each DHCP message from the home,
/// [`expire`](HomeServer::expire) when [`next_deadline`](HomeServer::next_deadline) is reached,
/// and act on the returned [`Outcome`]s in their documented order.
///
/// Relayed messages (`giaddr` set) are dropped ([`DropReason::Relayed`]) unless the home's
/// configuration says [`Relayed::Serve`]: the home's LAN reaches the vG directly over its LSL,
/// so a relay agent in the path is usually a misconfiguration or a spoof. When served,
/// `giaddr` must be a host of the home's prefix other than the gateway
/// ([`DropReason::GiaddrNotInHome`]), and every reply goes to the relay
/// ([`Destination::Relay`]) with `giaddr` kept; leases are the same as a direct client's.
#[derive(Clone)]
pub struct HomeServer {
    home: HomeId,
    config: DhcpConfig,
    vendor: Option<Arc<dyn VendorHook>>,
    /// Every address with durable state, keyed by address.
    leases: BTreeMap<Ipv4Addr, LeaseRecord>,
    /// Client -> its (non-declined) lease.
    by_client: HashMap<ClientId, Ipv4Addr>,
    /// MAC -> its most recent (non-declined) lease.
    by_mac: HashMap<MacAddr, Ipv4Addr>,
    offers: HashMap<Ipv4Addr, Offer>,
    offer_by_client: HashMap<ClientId, Ipv4Addr>,
    offer_deadlines: BTreeSet<(UnixTime, Ipv4Addr)>,
    /// Ends of bound leases and of quarantines.
    deadlines: BTreeSet<(UnixTime, Ipv4Addr)>,
    /// Remembered (expired, released) dynamic addresses, oldest first: evicted last.
    memories: BTreeSet<(UnixTime, Ipv4Addr)>,
    free: FreeMap,
}

impl fmt::Debug for HomeServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HomeServer")
            .field("home", &self.home)
            .field("prefix", &self.config.prefix())
            .field("leases", &self.leases.len())
            .field("offers", &self.offers.len())
            .finish_non_exhaustive()
    }
}

impl HomeServer {
    /// A server for `home` with no leases.
    pub fn new(home: HomeId, config: DhcpConfig) -> HomeServer {
        let (start, _) = config.range();
        let mut server = HomeServer {
            home,
            free: FreeMap::new(start, config.range_len()),
            config,
            vendor: None,
            leases: BTreeMap::new(),
            by_client: HashMap::new(),
            by_mac: HashMap::new(),
            offers: HashMap::new(),
            offer_by_client: HashMap::new(),
            offer_deadlines: BTreeSet::new(),
            deadlines: BTreeSet::new(),
            memories: BTreeSet::new(),
        };
        let first = u32::from(start);
        for offset in 0..server.config.range_len() {
            server.refresh_free(Ipv4Addr::from(first.saturating_add(offset)));
        }
        server
    }

    /// A server for `home` holding the stored `records` (from [`LeaseStore::load`]).
    ///
    /// Records of other homes are skipped. Records the configuration no longer allows are
    /// dropped (a `Remove` in the outcome, and [`Event::LeaseRevoked`] if it was bound), except
    /// bound leases still inside the prefix: those run until the client renews and gets a NAK.
    /// Leases that ran out while the server was down expire now ([`Event::LeaseExpired`]).
    /// Rebuild the host table from [`leases`](HomeServer::leases) after this, then apply the
    /// outcome.
    pub fn restore(
        home: HomeId,
        config: DhcpConfig,
        records: impl IntoIterator<Item = LeaseRecord>,
        now: UnixTime,
    ) -> (HomeServer, Outcome) {
        let mut server = HomeServer::new(home, config);
        let mut out = Outcome::new(home);
        for record in records {
            if record.home == home {
                server.adopt(record, &mut out);
            }
        }
        server.sweep(now, &mut out);
        (server, out)
    }

    /// Replaces the configuration, keeping every lease the new one still allows (the same
    /// rules as [`restore`](HomeServer::restore)); outstanding offers are dropped.
    pub fn reconfigure(&mut self, config: DhcpConfig, now: UnixTime) -> Outcome {
        let records: Vec<LeaseRecord> = self.leases.values().cloned().collect();
        let (mut server, out) = HomeServer::restore(self.home, config, records, now);
        server.vendor = self.vendor.take();
        *self = server;
        out
    }

    /// Installs (or removes) the hook that adds options 43 and 125 to this home's replies.
    pub fn set_vendor_hook(&mut self, hook: Option<Arc<dyn VendorHook>>) {
        self.vendor = hook;
    }

    /// The home this server serves.
    pub fn home(&self) -> HomeId {
        self.home
    }

    /// The home's DHCP configuration.
    pub fn config(&self) -> &DhcpConfig {
        &self.config
    }

    /// Every address with durable state (bound, remembered, declined), by address.
    pub fn leases(&self) -> impl Iterator<Item = &LeaseRecord> + '_ {
        self.leases.values()
    }

    /// The durable state of `ip`.
    pub fn lease(&self, ip: Ipv4Addr) -> Option<&LeaseRecord> {
        self.leases.get(&ip)
    }

    /// How the pool is used.
    pub fn usage(&self) -> PoolUsage {
        let mut usage = PoolUsage {
            range: self.config.range_len(),
            free: self.free.count(),
            offered: u32::try_from(self.offers.len()).unwrap_or(u32::MAX),
            ..PoolUsage::default()
        };
        for record in self.leases.values() {
            match record.state {
                LeaseState::Bound => usage.bound += 1,
                LeaseState::Expired | LeaseState::Released => usage.remembered += 1,
                LeaseState::Declined => usage.declined += 1,
            }
        }
        usage
    }

    /// When [`expire`](HomeServer::expire) next has work: the earliest end of a lease, an
    /// offer or a quarantine.
    pub fn next_deadline(&self) -> Option<UnixTime> {
        let lease = self.deadlines.first().map(|(t, _)| *t);
        let offer = self.offer_deadlines.first().map(|(t, _)| *t);
        match (lease, offer) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Ends what is due at `now`: leases expire (remembered for their client), offers lapse,
    /// quarantines end.
    pub fn expire(&mut self, now: UnixTime) -> Outcome {
        let mut out = Outcome::new(self.home);
        self.sweep(now, &mut out);
        out
    }

    /// Handles one DHCP message from the home, as received (the UDP payload).
    pub fn handle_bytes(&mut self, now: UnixTime, bytes: &[u8]) -> Result<Outcome, DropReason> {
        let msg = decode(bytes)?;
        self.handle(now, &msg)
    }

    /// Handles one decoded DHCP message from the home. Malformed messages are refused with a
    /// [`DropReason`] before any state changes.
    pub fn handle(&mut self, now: UnixTime, msg: &Message) -> Result<Outcome, DropReason> {
        let req = Request::from_message(msg)?;
        if !req.giaddr.is_unspecified() {
            match self.config.relayed() {
                Relayed::Drop => return Err(DropReason::Relayed),
                // The relay must sit on the home's own LAN: the reply goes to it over the
                // home's LSL, and the gateway itself is no relay.
                Relayed::Serve if !self.config.is_client_address(req.giaddr) => {
                    return Err(DropReason::GiaddrNotInHome(req.giaddr));
                }
                Relayed::Serve => {}
            }
        }
        let mut out = Outcome::new(self.home);
        self.sweep(now, &mut out);
        match req.kind {
            Kind::Discover { requested } => self.discover(now, &req, requested, &mut out),
            Kind::Select { server, ip } => {
                if server == self.config.gateway() {
                    self.request(now, &req, ip, true, &mut out);
                } else {
                    // The client chose another server: our offer is free again.
                    if let Some(offered) = self.offer_by_client.get(&req.client).copied() {
                        self.remove_offer(offered);
                    }
                    out.events.push(Event::Ignored {
                        mac: req.mac,
                        reason: IgnoreReason::OtherServer,
                    });
                }
            }
            Kind::InitReboot { ip } | Kind::Renew { ip } => {
                self.request(now, &req, ip, false, &mut out);
            }
            Kind::Decline { server, ip } => self.decline(now, &req, server, ip, &mut out),
            Kind::Release { server, ip } => self.release(now, &req, server, ip, &mut out),
            Kind::Inform { ip } => self.inform(&req, ip, &mut out),
        }
        Ok(out)
    }

    // ---- message handlers -------------------------------------------------------------

    fn discover(
        &mut self,
        now: UnixTime,
        req: &Request<'_>,
        requested: Option<Ipv4Addr>,
        out: &mut Outcome,
    ) {
        let usable = |s: &Self, ip: Ipv4Addr| {
            !matches!(s.availability(ip, &req.client, req.mac), Avail::Taken(_))
        };
        // RFC 2131 section 4.3.1: the client's current or previous address first, then the
        // requested one, then a fresh one.
        let choice = self
            .preferred(&req.client, req.mac)
            .or_else(|| {
                self.offer_by_client
                    .get(&req.client)
                    .copied()
                    .filter(|&ip| usable(self, ip))
            })
            .or_else(|| {
                // Only when nobody is remembered on it: a device that roamed in from another
                // home (all homes may share 192.168.1.0/24) must not take a neighbour's
                // sticky address.
                requested.filter(|&ip| self.availability(ip, &req.client, req.mac) == Avail::Free)
            })
            .or_else(|| self.free.first_free())
            .or_else(|| {
                self.memories
                    .iter()
                    .map(|&(_, ip)| ip)
                    .find(|ip| !self.offers.contains_key(ip))
            });
        let Some(ip) = choice else {
            out.events.push(Event::PoolExhausted { mac: req.mac });
            return;
        };
        self.insert_offer(
            ip,
            Offer {
                client: req.client.clone(),
                mac: req.mac,
                until: now.plus(u64::from(self.config.offer_hold_secs())),
            },
        );
        out.events.push(Event::Offered { mac: req.mac, ip });
        self.reply(
            req,
            ReplyParts {
                message_type: MessageType::Offer,
                ciaddr: Ipv4Addr::UNSPECIFIED,
                yiaddr: ip,
                lease_secs: Some(self.config.lease_secs()),
                message: None,
            },
            out,
        );
    }

    /// A REQUEST for `ip`: `selecting` if it answers our OFFER.
    fn request(
        &mut self,
        now: UnixTime,
        req: &Request<'_>,
        ip: Ipv4Addr,
        selecting: bool,
        out: &mut Outcome,
    ) {
        let offered_here =
            selecting && self.offers.get(&ip).is_some_and(|o| o.client == req.client);
        if !offered_here {
            let refusal = match self.availability(ip, &req.client, req.mac) {
                Avail::Taken(reason) => Some(reason),
                Avail::Evicts => Some(NakReason::InUse),
                Avail::Free | Avail::Own => self
                    .preferred(&req.client, req.mac)
                    .is_some_and(|preferred| preferred != ip)
                    .then_some(NakReason::HasOtherAddress),
            };
            if let Some(reason) = refusal {
                self.nak(req, ip, reason, out);
                return;
            }
        }
        self.bind(now, req, ip, out);
    }

    fn bind(&mut self, now: UnixTime, req: &Request<'_>, ip: Ipv4Addr, out: &mut Outcome) {
        let previous = self.leases.get(&ip).filter(|r| r.client_id == req.client);
        let renewed = previous.is_some_and(|r| r.state == LeaseState::Bound);
        let hostname = req
            .hostname
            .clone()
            .or_else(|| previous.and_then(|r| r.hostname.clone()));

        // The client's other address, and this device's other remembered one, go.
        let others = [
            self.by_client.get(&req.client).copied(),
            self.by_mac.get(&req.mac).copied().filter(|other| {
                self.leases
                    .get(other)
                    .is_some_and(|r| r.state != LeaseState::Bound)
            }),
        ];
        for other in others.into_iter().flatten() {
            if other == ip {
                continue;
            }
            if let Some(old) = self.remove_lease(other) {
                out.persist.push(StoreOp::Remove {
                    home: self.home,
                    ip: other,
                });
                if old.state == LeaseState::Bound {
                    out.events.push(Event::LeaseRevoked {
                        mac: old.mac,
                        ip: other,
                    });
                }
            }
        }
        if let Some(offered) = self.offer_by_client.get(&req.client).copied() {
            self.remove_offer(offered);
        }
        self.remove_offer(ip);

        let expires = now.plus(u64::from(self.config.lease_secs()));
        let record = LeaseRecord {
            home: self.home,
            ip,
            client_id: req.client.clone(),
            mac: req.mac,
            state: LeaseState::Bound,
            time: expires,
            hostname,
        };
        out.persist.push(self.insert_lease(record));
        out.events.push(Event::LeaseGranted {
            client_id: req.client.clone(),
            mac: req.mac,
            ip,
            expires,
            renewed,
        });
        self.reply(
            req,
            ReplyParts {
                message_type: MessageType::Ack,
                ciaddr: req.ciaddr,
                yiaddr: ip,
                lease_secs: Some(self.config.lease_secs()),
                message: None,
            },
            out,
        );
    }

    fn nak(&mut self, req: &Request<'_>, ip: Ipv4Addr, reason: NakReason, out: &mut Outcome) {
        out.events.push(Event::Nak {
            mac: req.mac,
            ip,
            reason,
        });
        self.reply(
            req,
            ReplyParts {
                message_type: MessageType::Nak,
                ciaddr: Ipv4Addr::UNSPECIFIED,
                yiaddr: Ipv4Addr::UNSPECIFIED,
                lease_secs: None,
                message: Some(reason.text()),
            },
            out,
        );
    }

    fn decline(
        &mut self,
        now: UnixTime,
        req: &Request<'_>,
        server: Option<Ipv4Addr>,
        ip: Ipv4Addr,
        out: &mut Outcome,
    ) {
        if server.is_some_and(|s| s != self.config.gateway()) {
            out.events.push(Event::Ignored {
                mac: req.mac,
                reason: IgnoreReason::OtherServer,
            });
            return;
        }
        // Only the holder may decline: otherwise any host could empty the pool of others.
        let lease = self
            .leases
            .get(&ip)
            .filter(|r| r.client_id == req.client && r.state != LeaseState::Declined);
        let was_bound = lease.is_some_and(|r| r.state == LeaseState::Bound);
        let offered = self.offers.get(&ip).is_some_and(|o| o.client == req.client);
        if lease.is_none() && !offered {
            out.events.push(Event::Ignored {
                mac: req.mac,
                reason: IgnoreReason::NotOwner,
            });
            return;
        }
        self.remove_offer(ip);
        let until = now.plus(u64::from(self.config.decline_quarantine_secs()));
        out.persist.push(self.insert_lease(LeaseRecord {
            home: self.home,
            ip,
            client_id: req.client.clone(),
            mac: req.mac,
            state: LeaseState::Declined,
            time: until,
            hostname: None,
        }));
        out.events.push(Event::Declined {
            mac: req.mac,
            ip,
            until,
            was_bound,
        });
    }

    fn release(
        &mut self,
        now: UnixTime,
        req: &Request<'_>,
        server: Option<Ipv4Addr>,
        ip: Ipv4Addr,
        out: &mut Outcome,
    ) {
        if server.is_some_and(|s| s != self.config.gateway()) {
            out.events.push(Event::Ignored {
                mac: req.mac,
                reason: IgnoreReason::OtherServer,
            });
            return;
        }
        let Some(record) = self
            .leases
            .get(&ip)
            .filter(|r| r.client_id == req.client && r.state == LeaseState::Bound)
            .cloned()
        else {
            out.events.push(Event::Ignored {
                mac: req.mac,
                reason: IgnoreReason::NotOwner,
            });
            return;
        };
        out.persist.push(self.end_lease(LeaseRecord {
            state: LeaseState::Released,
            time: now,
            ..record
        }));
        out.events.push(Event::LeaseReleased { mac: req.mac, ip });
    }

    fn inform(&mut self, req: &Request<'_>, ip: Ipv4Addr, out: &mut Outcome) {
        if !self.config.prefix().contains(&ip) {
            out.events.push(Event::Ignored {
                mac: req.mac,
                reason: IgnoreReason::WrongNetwork,
            });
            return;
        }
        out.events.push(Event::Informed { mac: req.mac, ip });
        // RFC 2131 section 4.3.5: no lease time, yiaddr 0, sent to ciaddr.
        self.reply(
            req,
            ReplyParts {
                message_type: MessageType::Ack,
                ciaddr: ip,
                yiaddr: Ipv4Addr::UNSPECIFIED,
                lease_secs: None,
                message: None,
            },
            out,
        );
    }

    fn reply(&self, req: &Request<'_>, parts: ReplyParts, out: &mut Outcome) {
        let vendor = match (&self.vendor, parts.message_type) {
            (Some(hook), MessageType::Offer | MessageType::Ack) => {
                hook.vendor_options(&VendorQuery {
                    reply_type: parts.message_type,
                    mac: req.mac,
                    ip: if parts.yiaddr.is_unspecified() {
                        parts.ciaddr
                    } else {
                        parts.yiaddr
                    },
                    vendor_class: req.vendor_class,
                    vi_vendor_class: req.vi_vendor_class,
                    requested: req.parameters,
                })
            }
            _ => VendorOptions::default(),
        };
        let payload = match encode_reply(&self.config, req, &parts, &vendor) {
            Ok(payload) => payload,
            Err(e) => {
                // Not reachable with dhcproto 0.15 (only domain-name options can fail, and
                // none are sent); the client retransmits and the state stays consistent.
                tracing::error!(home = self.home, mac = %req.mac, error = %e, "encoding a DHCP reply failed");
                return;
            }
        };
        // RFC 2131 section 4.1: a relayed message is answered through its relay. With
        // giaddr = 0, NAKs are broadcast; a configured client (ciaddr set) gets a unicast;
        // otherwise the broadcast bit decides between broadcast and unicast to yiaddr +
        // chaddr.
        let dst = if !req.giaddr.is_unspecified() {
            Destination::Relay { giaddr: req.giaddr }
        } else if parts.message_type == MessageType::Nak {
            Destination::Broadcast
        } else if !req.ciaddr.is_unspecified() {
            Destination::Unicast {
                ip: req.ciaddr,
                mac: req.mac,
            }
        } else if req.flags.broadcast() {
            Destination::Broadcast
        } else {
            Destination::Unicast {
                ip: parts.yiaddr,
                mac: req.mac,
            }
        };
        out.reply = Some(Reply {
            message_type: parts.message_type,
            src: self.config.gateway(),
            dst,
            payload,
        });
    }

    // ---- address policy ---------------------------------------------------------------

    /// Whether `ip` may go to `client` (with hardware address `mac`) now.
    fn availability(&self, ip: Ipv4Addr, client: &ClientId, mac: MacAddr) -> Avail {
        if !self.config.prefix().contains(&ip) {
            return Avail::Taken(NakReason::WrongNetwork);
        }
        if !self.config.is_client_address(ip) {
            return Avail::Taken(NakReason::NotAllowed);
        }
        let reserved_here = match self.config.reserved_to(ip) {
            Some(owner) if owner != mac => return Avail::Taken(NakReason::NotAllowed),
            Some(_) => true,
            None if !self.config.in_range(ip) => return Avail::Taken(NakReason::NotAllowed),
            None => false,
        };
        if self.offers.get(&ip).is_some_and(|o| o.client != *client) {
            return Avail::Taken(NakReason::InUse);
        }
        match self.leases.get(&ip) {
            None => Avail::Free,
            Some(r) if r.state == LeaseState::Declined => Avail::Taken(NakReason::InUse),
            Some(r) if r.client_id == *client => Avail::Own,
            Some(r) if r.state == LeaseState::Bound => Avail::Taken(NakReason::InUse),
            // The same device under another client id: still its sticky address.
            Some(r) if r.mac == mac => Avail::Own,
            // A reservation outranks another client's memory.
            Some(_) if reserved_here => Avail::Free,
            Some(_) => Avail::Evicts,
        }
    }

    /// The address this client should have if it can: its reservation, else the address it
    /// holds or held (sticky), by client id and then by MAC.
    fn preferred(&self, client: &ClientId, mac: MacAddr) -> Option<Ipv4Addr> {
        if let Some(reserved) = self.config.reservation_for(mac)
            && !matches!(self.availability(reserved, client, mac), Avail::Taken(_))
        {
            return Some(reserved);
        }
        [self.by_client.get(client), self.by_mac.get(&mac)]
            .into_iter()
            .flatten()
            .copied()
            .find(|&ip| self.availability(ip, client, mac) == Avail::Own)
    }

    /// True if the configuration lets `mac` hold `ip` at all: its reservation, or an
    /// unreserved address of the range.
    fn allowed(&self, ip: Ipv4Addr, mac: MacAddr) -> bool {
        self.config.is_client_address(ip)
            && match self.config.reserved_to(ip) {
                Some(owner) => owner == mac,
                None => self.config.in_range(ip),
            }
    }

    /// Stores an ended (expired or released) lease: remembered if its client may have the
    /// address again, forgotten if the configuration changed under it.
    fn end_lease(&mut self, record: LeaseRecord) -> StoreOp {
        if self.allowed(record.ip, record.mac) {
            self.insert_lease(record)
        } else {
            self.remove_lease(record.ip);
            StoreOp::Remove {
                home: self.home,
                ip: record.ip,
            }
        }
    }

    /// True if `ip` belongs to the dynamic pool.
    fn is_dynamic(&self, ip: Ipv4Addr) -> bool {
        self.config.in_range(ip) && self.config.reserved_to(ip).is_none()
    }

    // ---- state changes (the only places that touch the indexes) ------------------------

    fn refresh_free(&mut self, ip: Ipv4Addr) {
        let free =
            self.is_dynamic(ip) && !self.leases.contains_key(&ip) && !self.offers.contains_key(&ip);
        self.free.set(ip, free);
    }

    /// Stores `record` (replacing whatever `record.ip` held) and returns the store op.
    fn insert_lease(&mut self, record: LeaseRecord) -> StoreOp {
        let ip = record.ip;
        self.remove_lease(ip);
        match record.state {
            LeaseState::Bound | LeaseState::Declined => {
                self.deadlines.insert((record.time, ip));
            }
            LeaseState::Expired | LeaseState::Released => {
                if self.is_dynamic(ip) {
                    self.memories.insert((record.time, ip));
                }
            }
        }
        if record.state != LeaseState::Declined {
            self.by_client.insert(record.client_id.clone(), ip);
            self.by_mac.insert(record.mac, ip);
        }
        self.leases.insert(ip, record.clone());
        self.refresh_free(ip);
        StoreOp::Put(record)
    }

    fn remove_lease(&mut self, ip: Ipv4Addr) -> Option<LeaseRecord> {
        let record = self.leases.remove(&ip)?;
        self.deadlines.remove(&(record.time, ip));
        self.memories.remove(&(record.time, ip));
        if self.by_client.get(&record.client_id) == Some(&ip) {
            self.by_client.remove(&record.client_id);
        }
        if self.by_mac.get(&record.mac) == Some(&ip) {
            self.by_mac.remove(&record.mac);
        }
        self.refresh_free(ip);
        Some(record)
    }

    fn insert_offer(&mut self, ip: Ipv4Addr, offer: Offer) {
        if let Some(previous) = self.offer_by_client.get(&offer.client).copied() {
            self.remove_offer(previous);
        }
        self.remove_offer(ip);
        self.offer_deadlines.insert((offer.until, ip));
        self.offer_by_client.insert(offer.client.clone(), ip);
        self.offers.insert(ip, offer);
        self.refresh_free(ip);
    }

    fn remove_offer(&mut self, ip: Ipv4Addr) {
        if let Some(offer) = self.offers.remove(&ip) {
            self.offer_deadlines.remove(&(offer.until, ip));
            if self.offer_by_client.get(&offer.client) == Some(&ip) {
                self.offer_by_client.remove(&offer.client);
            }
            self.refresh_free(ip);
        }
    }

    /// Takes in one stored record during [`restore`](HomeServer::restore).
    fn adopt(&mut self, record: LeaseRecord, out: &mut Outcome) {
        let ip = record.ip;
        let drop = |out: &mut Outcome, record: &LeaseRecord| {
            out.persist.push(StoreOp::Remove {
                home: record.home,
                ip: record.ip,
            });
            if record.state == LeaseState::Bound {
                out.events.push(Event::LeaseRevoked {
                    mac: record.mac,
                    ip: record.ip,
                });
            }
        };
        if self.leases.contains_key(&ip) {
            // A second record for one address: the store is keyed by address, so this only
            // comes from a caller's list; the first one stands.
            return;
        }
        if !self.config.is_client_address(ip) {
            drop(out, &record);
            return;
        }
        // A bound lease the configuration no longer allows runs on until the client renews
        // (and gets a NAK); remembered and declined ones simply go.
        if !self.allowed(ip, record.mac) && record.state != LeaseState::Bound {
            drop(out, &record);
            return;
        }
        // Two records of one client (only a damaged store has them; declined ones are not
        // the client's address): keep the better (bound, then later); a remembered loser
        // goes, a bound loser runs on until it expires, unindexed.
        let rank = |r: &LeaseRecord| (r.state == LeaseState::Bound, r.time);
        if record.state != LeaseState::Declined
            && let Some(&existing_ip) = self.by_client.get(&record.client_id)
            && let Some(existing) = self.leases.get(&existing_ip).cloned()
        {
            if rank(&record) > rank(&existing) {
                if existing.state != LeaseState::Bound {
                    self.remove_lease(existing_ip);
                    out.persist.push(StoreOp::Remove {
                        home: existing.home,
                        ip: existing_ip,
                    });
                }
                let _ = self.insert_lease(record);
            } else if record.state == LeaseState::Bound {
                let (client, mac) = (record.client_id.clone(), record.mac);
                let _ = self.insert_lease(record);
                self.by_client.insert(client, existing_ip);
                if existing.mac == mac {
                    self.by_mac.insert(mac, existing_ip);
                }
            } else {
                out.persist.push(StoreOp::Remove {
                    home: record.home,
                    ip,
                });
            }
            return;
        }
        let _ = self.insert_lease(record);
    }

    /// Ends everything due at `now`.
    fn sweep(&mut self, now: UnixTime, out: &mut Outcome) {
        while let Some(&(until, ip)) = self.offer_deadlines.first() {
            if until > now {
                break;
            }
            self.offer_deadlines.pop_first();
            self.remove_offer(ip);
        }
        while let Some(&(time, ip)) = self.deadlines.first() {
            if time > now {
                break;
            }
            self.deadlines.pop_first();
            let Some(record) = self.leases.get(&ip).cloned() else {
                continue;
            };
            match record.state {
                LeaseState::Bound => {
                    out.events.push(Event::LeaseExpired {
                        mac: record.mac,
                        ip,
                    });
                    let expired = LeaseRecord {
                        state: LeaseState::Expired,
                        time: record.time,
                        ..record
                    };
                    out.persist.push(self.end_lease(expired));
                }
                LeaseState::Declined => {
                    self.remove_lease(ip);
                    out.persist.push(StoreOp::Remove {
                        home: self.home,
                        ip,
                    });
                    out.events.push(Event::QuarantineEnded { ip });
                }
                LeaseState::Expired | LeaseState::Released => {}
            }
        }
    }

    /// Verifies the internal indexes against the lease and offer tables; for tests and
    /// fuzzing. Returns the first inconsistency found.
    pub fn check_consistency(&self) -> Result<(), String> {
        let mut deadlines = BTreeSet::new();
        let mut memories = BTreeSet::new();
        for (ip, r) in &self.leases {
            if r.ip != *ip || r.home != self.home {
                return Err(format!("lease keyed {ip} is {r:?}"));
            }
            match r.state {
                LeaseState::Bound | LeaseState::Declined => {
                    deadlines.insert((r.time, *ip));
                }
                LeaseState::Expired | LeaseState::Released => {
                    if self.is_dynamic(*ip) {
                        memories.insert((r.time, *ip));
                    }
                }
            }
        }
        if deadlines != self.deadlines {
            return Err(format!("deadlines {:?} != {deadlines:?}", self.deadlines));
        }
        if memories != self.memories {
            return Err(format!("memories {:?} != {memories:?}", self.memories));
        }
        for (client, ip) in &self.by_client {
            match self.leases.get(ip) {
                Some(r) if r.client_id == *client && r.state != LeaseState::Declined => {}
                other => return Err(format!("by_client {client} -> {ip} but lease is {other:?}")),
            }
        }
        for (mac, ip) in &self.by_mac {
            match self.leases.get(ip) {
                Some(r) if r.mac == *mac && r.state != LeaseState::Declined => {}
                other => return Err(format!("by_mac {mac} -> {ip} but lease is {other:?}")),
            }
        }
        let mut offer_deadlines = BTreeSet::new();
        for (ip, o) in &self.offers {
            offer_deadlines.insert((o.until, *ip));
            if self.offer_by_client.get(&o.client) != Some(ip) {
                return Err(format!("offer of {ip} to {} not indexed", o.client));
            }
            if let Some(r) = self.leases.get(ip)
                && (r.state == LeaseState::Declined
                    || (r.state == LeaseState::Bound && r.client_id != o.client))
            {
                return Err(format!("offer of {ip} to {} over {r:?}", o.client));
            }
        }
        if offer_deadlines != self.offer_deadlines {
            return Err(format!(
                "offer deadlines {:?} != {offer_deadlines:?}",
                self.offer_deadlines
            ));
        }
        if self.offer_by_client.len() != self.offers.len() {
            return Err("offer_by_client has stale entries".into());
        }
        let (start, _) = self.config.range();
        for offset in 0..self.config.range_len() {
            let ip = Ipv4Addr::from(u32::from(start).saturating_add(offset));
            let expect = self.is_dynamic(ip)
                && !self.leases.contains_key(&ip)
                && !self.offers.contains_key(&ip);
            if self.free.is_free(ip) != expect {
                return Err(format!("free bit of {ip} is {}", !expect));
            }
        }
        if let Some(r) = self
            .leases
            .values()
            .find(|r| !self.config.is_client_address(r.ip))
        {
            return Err(format!("lease on a non-client address: {r:?}"));
        }
        Ok(())
    }
}
