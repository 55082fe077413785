//! Every home's DHCPv6 server, keyed by home id: what the slow path holds.

use std::collections::HashMap;

use dhcproto::v6::Message;

use super::config::Dhcp6Config;
use super::decode::DropReason;
use super::outcome::{Outcome, Usage};
use super::server::HomeServer;
use super::store::{BindingStore, StoreError};
use super::types::{IaKind, Peer};
use crate::dhcp::{HomeId, UnixTime};

/// The DHCPv6 servers of all homes. Homes share nothing: the same DUID in two homes is two
/// unrelated clients.
#[derive(Debug, Default, Clone)]
pub struct Homes {
    servers: HashMap<HomeId, HomeServer>,
}

impl Homes {
    /// No homes.
    pub fn new() -> Homes {
        Homes::default()
    }

    /// Adds (or replaces) a home's server; returns the one it replaced.
    pub fn insert(&mut self, server: HomeServer) -> Option<HomeServer> {
        self.servers.insert(server.home(), server)
    }

    /// Loads `home`'s bindings from `store`, restores its server with `config`, adds it, and
    /// returns the restore outcome (apply it like any other).
    pub fn restore_from<S: BindingStore + ?Sized>(
        &mut self,
        store: &S,
        home: HomeId,
        config: Dhcp6Config,
        now: UnixTime,
    ) -> Result<Outcome, StoreError> {
        let records = store.load(home)?;
        let (server, outcome) = HomeServer::restore(home, config, records, now);
        self.insert(server);
        Ok(outcome)
    }

    /// Removes a home; its bindings stay in the store until the caller deletes them.
    pub fn remove(&mut self, home: HomeId) -> Option<HomeServer> {
        self.servers.remove(&home)
    }

    /// A home's server.
    pub fn get(&self, home: HomeId) -> Option<&HomeServer> {
        self.servers.get(&home)
    }

    /// A home's server, mutably.
    pub fn get_mut(&mut self, home: HomeId) -> Option<&mut HomeServer> {
        self.servers.get_mut(&home)
    }

    /// Number of homes.
    pub fn len(&self) -> usize {
        self.servers.len()
    }

    /// True if there are no homes.
    pub fn is_empty(&self) -> bool {
        self.servers.is_empty()
    }

    /// Handles a message's bytes from `peer` in `home`.
    pub fn handle_bytes(
        &mut self,
        home: HomeId,
        now: UnixTime,
        peer: Peer,
        bytes: &[u8],
    ) -> Result<Outcome, DropReason> {
        self.servers
            .get_mut(&home)
            .ok_or(DropReason::UnknownHome)?
            .handle_bytes(now, peer, bytes)
    }

    /// Handles a decoded message from `peer` in `home`.
    pub fn handle(
        &mut self,
        home: HomeId,
        now: UnixTime,
        peer: Peer,
        msg: &Message,
    ) -> Result<Outcome, DropReason> {
        self.servers
            .get_mut(&home)
            .ok_or(DropReason::UnknownHome)?
            .handle(now, peer, msg)
    }

    /// Runs [`HomeServer::expire`] on every home with something due; returns the non-empty
    /// outcomes.
    pub fn expire(&mut self, now: UnixTime) -> Vec<Outcome> {
        self.servers
            .values_mut()
            .filter(|s| s.next_deadline().is_some_and(|t| t <= now))
            .map(|s| s.expire(now))
            .filter(|o| !o.is_empty())
            .collect()
    }

    /// How the leases of `kind` are used, all homes together.
    pub fn usage(&self, kind: IaKind) -> Usage {
        self.servers
            .values()
            .map(|s| s.usage(kind))
            .fold(Usage::default(), |sum, u| Usage {
                capacity: sum.capacity + u.capacity,
                bound: sum.bound + u.bound,
                remembered: sum.remembered + u.remembered,
                declined: sum.declined + u.declined,
            })
    }

    /// The earliest deadline over all homes.
    pub fn next_deadline(&self) -> Option<UnixTime> {
        self.servers
            .values()
            .filter_map(HomeServer::next_deadline)
            .min()
    }
}
