//! One home's DHCPv6 server: configuration plus bindings, messages in, actions out.

use std::fmt;
use std::net::Ipv6Addr;

use dhcproto::v6::{Message, MessageType, Status};

use super::bindings::{Bindings, IaKey};
use super::config::Dhcp6Config;
use super::decode::{DropReason, IaRequest, Kind, Request, decode};
use super::encode::{IaAnswer, ReplyParts, encode_reply};
use super::outcome::{Event, Outcome, Reply, Usage};
use super::store::{BindingRecord, BindingState, StoreOp};
use super::types::{Duid, IaKind, Lease, Peer};
use crate::dhcp::{HomeId, UnixTime};

/// Why an IA got nothing.
enum Refusal {
    Exhausted,
    ClientLimit,
}

/// One home's DHCPv6 server (RFC 8415): its configuration and bindings.
///
/// Time is always passed in (`now`, UNIX seconds) and the engine does no I/O: call
/// [`handle_bytes`](HomeServer::handle_bytes) for each DHCPv6 message from the home,
/// [`expire`](HomeServer::expire) when [`next_deadline`](HomeServer::next_deadline) is reached,
/// and act on the returned [`Outcome`]s in their documented order.
#[derive(Clone)]
pub struct HomeServer {
    home: HomeId,
    config: Dhcp6Config,
    bindings: Bindings,
}

impl fmt::Debug for HomeServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HomeServer")
            .field("home", &self.home)
            .field("lan", &self.config.lan())
            .field("delegated", &self.config.delegated())
            .field("bindings", &self.bindings.len())
            .finish_non_exhaustive()
    }
}

/// True for a link-local unicast address (fe80::/10, RFC 4291 section 2.5.6).
fn is_link_local(ip: Ipv6Addr) -> bool {
    ip.segments()[0] & 0xffc0 == 0xfe80
}

/// FNV-1a over the IA's identity: where an IA's search for a free address starts. Stable
/// across runs and Rust versions (std's hasher is neither promised), and spread over the
/// range so addresses are not handed out in guessable order (RFC 7943 section 4).
fn ia_hash(key: &IaKey) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in key.duid.as_bytes().iter().chain(&key.iaid.to_be_bytes()) {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

impl HomeServer {
    /// A server for `home` with no bindings.
    pub fn new(home: HomeId, config: Dhcp6Config) -> HomeServer {
        HomeServer {
            home,
            config,
            bindings: Bindings::default(),
        }
    }

    /// A server for `home` holding the stored `records` (from
    /// [`BindingStore::load`](super::BindingStore::load)).
    ///
    /// Records of other homes are skipped. Records the configuration no longer allows (a
    /// renumbered LAN or delegated prefix, a smaller range) are dropped: a `Remove` in the
    /// outcome, and [`Event::Revoked`] if bound. Two records of one IA (only a damaged
    /// store has them) keep the better one (bound, then later). Whatever ran out while the
    /// server was down ends now. Apply the outcome like any other.
    pub fn restore(
        home: HomeId,
        config: Dhcp6Config,
        records: impl IntoIterator<Item = BindingRecord>,
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

    /// Replaces the configuration, keeping every binding the new one allows (the rules of
    /// [`restore`](HomeServer::restore)).
    pub fn reconfigure(&mut self, config: Dhcp6Config, now: UnixTime) -> Outcome {
        let records: Vec<BindingRecord> = self.bindings.records().cloned().collect();
        let (server, out) = HomeServer::restore(self.home, config, records, now);
        *self = server;
        out
    }

    /// The home.
    pub fn home(&self) -> HomeId {
        self.home
    }

    /// The configuration.
    pub fn config(&self) -> &Dhcp6Config {
        &self.config
    }

    /// Every binding record, ordered by lease.
    pub fn bindings(&self) -> impl Iterator<Item = &BindingRecord> {
        self.bindings.records()
    }

    /// The record of `lease`.
    pub fn binding(&self, lease: &Lease) -> Option<&BindingRecord> {
        self.bindings.get(lease)
    }

    /// How the leases of `kind` are used.
    pub fn usage(&self, kind: IaKind) -> Usage {
        let mut usage = Usage {
            capacity: self.config.capacity(kind),
            ..Usage::default()
        };
        for r in self.bindings.records().filter(|r| r.kind() == kind) {
            match r.state {
                BindingState::Bound => usage.bound += 1,
                BindingState::Expired | BindingState::Released => usage.remembered += 1,
                BindingState::Declined => usage.declined += 1,
            }
        }
        usage
    }

    /// When [`expire`](HomeServer::expire) next has something to do.
    pub fn next_deadline(&self) -> Option<UnixTime> {
        self.bindings.next_deadline().map(|(time, _)| time)
    }

    /// Ends every binding and quarantine due at `now`.
    pub fn expire(&mut self, now: UnixTime) -> Outcome {
        let mut out = Outcome::new(self.home);
        self.sweep(now, &mut out);
        out
    }

    /// Handles a client message's bytes (the UDP payload to port 547) from `peer`.
    pub fn handle_bytes(
        &mut self,
        now: UnixTime,
        peer: Peer,
        bytes: &[u8],
    ) -> Result<Outcome, DropReason> {
        let msg = decode(bytes)?;
        self.handle(now, peer, &msg)
    }

    /// Handles a decoded client message from `peer`.
    pub fn handle(
        &mut self,
        now: UnixTime,
        peer: Peer,
        msg: &Message,
    ) -> Result<Outcome, DropReason> {
        if !peer.mac.is_unicast() {
            return Err(DropReason::BadSourceMac);
        }
        if !is_link_local(peer.link_local) {
            return Err(DropReason::SourceNotLinkLocal);
        }
        let req = Request::from_message(msg)?;
        if req
            .server_id
            .as_ref()
            .is_some_and(|id| id[..] != *self.config.server_duid().as_bytes())
        {
            return Err(DropReason::OtherServer);
        }
        if req.kind == Kind::Confirm && req.addresses().next().is_none() {
            return Err(DropReason::NothingToConfirm);
        }
        let mut out = Outcome::new(self.home);
        self.sweep(now, &mut out);
        let mut parts = ReplyParts {
            message_type: MessageType::Reply,
            xid: req.xid,
            client_id: req.client_id.as_ref(),
            ias: Vec::new(),
            status: None,
            rapid_commit: false,
        };
        // Every kind but Information-Request has a Client-ID (checked by from_message).
        let duid = req.client_id.as_ref();
        match (req.kind, duid) {
            (Kind::Solicit, Some(duid)) => {
                let commit = req.rapid_commit && self.config.settings().rapid_commit;
                parts.rapid_commit = commit;
                if !commit {
                    parts.message_type = MessageType::Advertise;
                }
                parts.ias = self.assign(now, peer, duid, &req.ias, commit, &mut out);
                if req.ias.is_empty() {
                    parts.status = Some(Status::NoAddrsAvail);
                }
            }
            (Kind::Request, Some(duid)) => {
                parts.ias = self.assign(now, peer, duid, &req.ias, true, &mut out);
                if req.ias.is_empty() {
                    parts.status = Some(Status::NoAddrsAvail);
                }
            }
            (Kind::Renew | Kind::Rebind, Some(duid)) => {
                parts.ias = self.extend(now, peer, duid, &req.ias, &mut out);
            }
            (Kind::Release, Some(duid)) => {
                parts.ias = self.release(now, duid, &req.ias, &mut out);
                parts.status = Some(Status::Success);
            }
            (Kind::Decline, Some(duid)) => {
                parts.ias = self.decline(now, duid, &req.ias, &mut out);
                parts.status = Some(Status::Success);
            }
            (Kind::Confirm, _) => parts.status = Some(self.confirm(&req)),
            (Kind::InformationRequest, _) => {}
            (_, None) => return Err(DropReason::MissingClientId),
        }
        self.send(&parts, peer, &mut out);
        Ok(out)
    }

    fn send(&self, parts: &ReplyParts<'_>, peer: Peer, out: &mut Outcome) {
        match encode_reply(&self.config, parts) {
            Ok(payload) => {
                out.reply = Some(Reply {
                    message_type: parts.message_type,
                    dst: peer.link_local,
                    dst_mac: peer.mac,
                    payload,
                });
            }
            Err(e) => {
                // Not reachable with dhcproto 0.15: only the search list's names can fail,
                // and they were checked when the configuration was built. The client
                // retransmits; the state is consistent either way.
                tracing::error!(home = self.home, error = %e, "encoding a DHCPv6 reply failed");
            }
        }
    }

    // ---- message handling (RFC 8415 section 18.3) ------------------------------------

    /// Solicit, Request: a lease for every IA, bound if `commit` (Request, Solicit with
    /// Rapid Commit), only chosen otherwise (Advertise: nothing is reserved, so a Request
    /// may get another lease if someone took this one meanwhile; RFC 8415 section 18.3.2
    /// lets the server assign other leases than advertised). When committing, an IA_NA
    /// listing an address off the LAN gets NotOnLink and nothing (section 18.3.2: the
    /// client moved links and must start over); a Solicit's stale hints are just ignored.
    fn assign(
        &mut self,
        now: UnixTime,
        peer: Peer,
        duid: &Duid,
        ias: &[IaRequest],
        commit: bool,
        out: &mut Outcome,
    ) -> Vec<IaAnswer> {
        let mut taken = Vec::new();
        let mut answers = Vec::with_capacity(ias.len());
        for ia in ias {
            let key = IaKey {
                duid: duid.clone(),
                kind: ia.kind,
                iaid: ia.iaid,
            };
            let mut answer = IaAnswer::new(ia.kind, ia.iaid);
            let off_link = |l: &Lease| l.kind() == IaKind::Na && !self.config.on_link(l);
            if commit && ia.leases.iter().any(off_link) {
                answer.status = Some(Status::NotOnLink);
                answers.push(answer);
                continue;
            }
            match self.choose(&key, &ia.leases, &taken) {
                Ok(lease) => {
                    if commit {
                        self.bind(now, &key, lease, peer, out);
                    }
                    taken.push(lease);
                    answer.leases.push(self.lifetimes(lease));
                }
                Err(refusal) => answer.status = Some(self.refuse(ia.kind, refusal, peer, out)),
            }
            answers.push(answer);
        }
        answers
    }

    /// Renew, Rebind: an IA the server knows is extended (or moved, if the configuration
    /// no longer allows its lease), and every other lease it lists goes back with lifetimes
    /// 0 so the client stops using it. An unknown IA gets NoBinding and no leases (RFC 8415
    /// section 18.3.4; the client then Requests, section 18.2.10.1), except listed leases
    /// not appropriate for the link (a renumbered home), which go back with lifetimes 0
    /// (sections 18.3.4, 18.3.5).
    fn extend(
        &mut self,
        now: UnixTime,
        peer: Peer,
        duid: &Duid,
        ias: &[IaRequest],
        out: &mut Outcome,
    ) -> Vec<IaAnswer> {
        let mut answers = Vec::with_capacity(ias.len());
        for ia in ias {
            let key = IaKey {
                duid: duid.clone(),
                kind: ia.kind,
                iaid: ia.iaid,
            };
            let mut answer = IaAnswer::new(ia.kind, ia.iaid);
            let mut granted = None;
            if self.bindings.of_ia(&key).is_some() {
                match self.choose(&key, &[], &[]) {
                    Ok(lease) => {
                        self.bind(now, &key, lease, peer, out);
                        answer.leases.push(self.lifetimes(lease));
                        granted = Some(lease);
                    }
                    Err(refusal) => {
                        answer.status = Some(self.refuse(ia.kind, refusal, peer, out));
                    }
                }
            } else {
                answer.status = Some(Status::NoBinding);
            }
            // With a binding, every other lease listed goes back with lifetimes 0; without
            // one, only those not appropriate for the link (the IA itself is NoBinding).
            let known = granted.is_some() || answer.status != Some(Status::NoBinding);
            for &listed in &ia.leases {
                let stale = Some(listed) != granted && (known || !self.config.on_link(&listed));
                if stale && !answer.leases.iter().any(|l| l.0 == listed) {
                    answer.leases.push((listed, 0, 0));
                }
            }
            answers.push(answer);
        }
        answers
    }

    /// Release: the listed leases the IA holds are released (remembered for it); an IA
    /// holding nothing gets NoBinding (RFC 8415 section 18.3.7).
    fn release(
        &mut self,
        now: UnixTime,
        duid: &Duid,
        ias: &[IaRequest],
        out: &mut Outcome,
    ) -> Vec<IaAnswer> {
        let mut answers = Vec::new();
        for ia in ias {
            let Some(record) = self.bound_of(duid, ia) else {
                let mut answer = IaAnswer::new(ia.kind, ia.iaid);
                answer.status = Some(Status::NoBinding);
                answers.push(answer);
                continue;
            };
            if ia.leases.contains(&record.lease) {
                out.events.push(Event::Released {
                    lease: record.lease,
                    mac: record.mac,
                    link_local: record.link_local,
                });
                out.persist.push(self.bindings.insert(BindingRecord {
                    state: BindingState::Released,
                    time: now,
                    ..record
                }));
            }
        }
        answers
    }

    /// The bound lease IA `ia` of client `duid` holds, if any (Release and Decline act on it).
    fn bound_of(&self, duid: &Duid, ia: &IaRequest) -> Option<BindingRecord> {
        let key = IaKey {
            duid: duid.clone(),
            kind: ia.kind,
            iaid: ia.iaid,
        };
        self.bindings
            .of_ia(&key)
            .and_then(|lease| self.bindings.get(&lease))
            .filter(|r| r.state == BindingState::Bound)
            .cloned()
    }

    /// Decline: a listed address the IA holds goes into quarantine (RFC 8415 section
    /// 18.3.8); an IA_NA holding nothing gets NoBinding. IA_PDs are not declined.
    fn decline(
        &mut self,
        now: UnixTime,
        duid: &Duid,
        ias: &[IaRequest],
        out: &mut Outcome,
    ) -> Vec<IaAnswer> {
        let until = now.plus(u64::from(self.config.settings().decline_quarantine_secs));
        let mut answers = Vec::new();
        for ia in ias.iter().filter(|ia| ia.kind == IaKind::Na) {
            let Some(record) = self.bound_of(duid, ia) else {
                let mut answer = IaAnswer::new(ia.kind, ia.iaid);
                answer.status = Some(Status::NoBinding);
                answers.push(answer);
                continue;
            };
            if ia.leases.contains(&record.lease) {
                out.events.push(Event::Declined {
                    lease: record.lease,
                    mac: record.mac,
                    until,
                });
                out.persist.push(self.bindings.insert(BindingRecord {
                    state: BindingState::Declined,
                    time: until,
                    ..record
                }));
            }
        }
        answers
    }

    /// Confirm: Success if every listed address is on the LAN /64, NotOnLink otherwise
    /// (RFC 8415 section 18.3.3; this server is authoritative for the home's link).
    fn confirm(&self, req: &Request) -> Status {
        let lan = self.config.lan();
        if req.addresses().all(|ip| lan.contains(&ip)) {
            Status::Success
        } else {
            Status::NotOnLink
        }
    }

    // ---- lease policy -----------------------------------------------------------------

    fn lifetimes(&self, lease: Lease) -> (Lease, u32, u32) {
        let s = self.config.settings();
        (lease, s.preferred_secs, s.valid_secs)
    }

    fn refuse(&self, kind: IaKind, refusal: Refusal, peer: Peer, out: &mut Outcome) -> Status {
        out.events.push(match refusal {
            Refusal::Exhausted => Event::Exhausted {
                kind,
                mac: peer.mac,
            },
            Refusal::ClientLimit => Event::ClientLimit {
                kind,
                mac: peer.mac,
            },
        });
        match kind {
            IaKind::Na => Status::NoAddrsAvail,
            IaKind::Pd => Status::NoPrefixAvail,
        }
    }

    /// True if `lease` may go to a new IA: allowed, nobody's record on it, not `taken`.
    fn is_free(&self, lease: &Lease, taken: &[Lease]) -> bool {
        self.config.allows(lease) && !self.bindings.contains(lease) && !taken.contains(lease)
    }

    /// The lease for the IA `key`, in this order: the lease it holds or held (sticky); a
    /// free lease the client asked for; a free address from the IA's hash onwards (IA_NA)
    /// or the lowest free prefix (IA_PD); the longest-unused remembered lease of another IA.
    /// `taken`: leases already given to other IAs of the same message.
    fn choose(&self, key: &IaKey, hints: &[Lease], taken: &[Lease]) -> Result<Lease, Refusal> {
        let own = self.bindings.of_ia(key);
        if let Some(own) = own
            && self.config.allows(&own)
            && !taken.contains(&own)
        {
            return Ok(own);
        }
        let own_bound = own
            .and_then(|l| self.bindings.get(&l))
            .is_some_and(|r| r.state == BindingState::Bound);
        let held = self
            .bindings
            .bound_count(&key.duid, key.kind)
            .saturating_sub(u32::from(own_bound));
        if held >= self.config.settings().max_leases_per_client {
            return Err(Refusal::ClientLimit);
        }
        if let Some(&hint) = hints
            .iter()
            .find(|h| h.kind() == key.kind && self.is_free(h, taken))
        {
            return Ok(hint);
        }
        // Every record is of an allowed lease (restore and reconfigure drop the others), so
        // as many records as the configuration has room for means nothing is free: no search
        // through a full range for every IA of every message.
        let full = self.bindings.count(key.kind) >= self.config.capacity(key.kind);
        let fresh = match key.kind {
            _ if full => None,
            IaKind::Na => {
                let len = self.config.na_range_len();
                let start = ia_hash(key) % len;
                (0..len)
                    .map(|i| Lease::Address(self.config.na_address((start + i) % len)))
                    .find(|l| self.is_free(l, taken))
            }
            IaKind::Pd => (0..self.config.pd_slot_count())
                .filter_map(|n| self.config.pd_prefix(n).map(Lease::Prefix))
                .find(|l| self.is_free(l, taken)),
        };
        fresh
            .or_else(|| {
                self.bindings
                    .memories(key.kind)
                    .find(|l| self.config.allows(l) && !taken.contains(l))
            })
            .ok_or(Refusal::Exhausted)
    }

    /// Binds `lease` to the IA `key` until `now` + the valid lifetime. The IA's previous
    /// lease, if another, is forgotten (revoked if bound); a remembered lease of another
    /// IA on `lease` is replaced.
    fn bind(&mut self, now: UnixTime, key: &IaKey, lease: Lease, peer: Peer, out: &mut Outcome) {
        if let Some(old) = self.bindings.of_ia(key)
            && old != lease
            && let Some(record) = self.bindings.remove(&old)
        {
            out.persist.push(StoreOp::Remove {
                home: self.home,
                lease: old,
            });
            if record.state == BindingState::Bound {
                out.events.push(Event::Revoked {
                    lease: old,
                    mac: record.mac,
                    link_local: record.link_local,
                });
            }
        }
        let renewed = self
            .bindings
            .get(&lease)
            .is_some_and(|r| r.state == BindingState::Bound && IaKey::of(r) == *key);
        let expires = now.plus(u64::from(self.config.settings().valid_secs));
        out.persist.push(self.bindings.insert(BindingRecord {
            home: self.home,
            lease,
            duid: key.duid.clone(),
            iaid: key.iaid,
            mac: peer.mac,
            link_local: peer.link_local,
            state: BindingState::Bound,
            time: expires,
        }));
        out.events.push(Event::Bound {
            lease,
            duid: key.duid.clone(),
            iaid: key.iaid,
            mac: peer.mac,
            link_local: peer.link_local,
            expires,
            renewed,
        });
    }

    /// Ends everything due at `now`: bound leases expire (and are remembered), quarantines
    /// end.
    fn sweep(&mut self, now: UnixTime, out: &mut Outcome) {
        while let Some((time, lease)) = self.bindings.next_deadline() {
            if time > now {
                break;
            }
            let Some(record) = self.bindings.remove(&lease) else {
                break;
            };
            if record.state == BindingState::Bound {
                out.events.push(Event::Expired {
                    lease,
                    mac: record.mac,
                    link_local: record.link_local,
                });
                out.persist.push(self.bindings.insert(BindingRecord {
                    state: BindingState::Expired,
                    ..record
                }));
            } else {
                out.persist.push(StoreOp::Remove {
                    home: self.home,
                    lease,
                });
                out.events.push(Event::QuarantineEnded { lease });
            }
        }
    }

    /// Takes in one stored record during [`restore`](HomeServer::restore).
    fn adopt(&mut self, record: BindingRecord, out: &mut Outcome) {
        let drop = |out: &mut Outcome, record: &BindingRecord| {
            out.persist.push(StoreOp::Remove {
                home: record.home,
                lease: record.lease,
            });
            if record.state == BindingState::Bound {
                out.events.push(Event::Revoked {
                    lease: record.lease,
                    mac: record.mac,
                    link_local: record.link_local,
                });
            }
        };
        if self.bindings.contains(&record.lease) {
            // The store is keyed by lease, so only a caller's list repeats one; the first
            // stands.
            return;
        }
        let declined_prefix = record.state == BindingState::Declined && record.kind() == IaKind::Pd;
        if !self.config.allows(&record.lease) || declined_prefix {
            drop(out, &record);
            return;
        }
        let rank = |r: &BindingRecord| (r.state == BindingState::Bound, r.time);
        if record.state != BindingState::Declined
            && let Some(existing) = self.bindings.of_ia(&IaKey::of(&record))
            && let Some(existing) = self.bindings.get(&existing).cloned()
        {
            if rank(&record) > rank(&existing) {
                self.bindings.remove(&existing.lease);
                drop(out, &existing);
            } else {
                drop(out, &record);
                return;
            }
        }
        let _ = self.bindings.insert(record);
    }

    /// Verifies the internal indexes and that every record is allowed; for tests and
    /// fuzzing. Returns the first inconsistency found.
    pub fn check_consistency(&self) -> Result<(), String> {
        self.bindings.check(self.home)?;
        if let Some(r) = self
            .bindings
            .records()
            .find(|r| !self.config.allows(&r.lease))
        {
            return Err(format!("record of a lease not allowed: {r:?}"));
        }
        Ok(())
    }
}
