//! Every home's server, keyed by home id: what the slow path holds.

use std::collections::HashMap;

use dhcproto::v4::Message;

use super::config::DhcpConfig;
use super::decode::DropReason;
use super::server::{HomeServer, Outcome};
use super::store::{LeaseStore, StoreError};
use super::types::{HomeId, UnixTime};

/// The DHCP servers of all homes. Homes share nothing: the same MAC, the same private
/// prefix and the same addresses in two homes are two unrelated clients.
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

    /// Loads `home`'s leases from `store`, restores its server with `config`, adds it, and
    /// returns the restore outcome (apply it like any other).
    pub fn restore_from<S: LeaseStore + ?Sized>(
        &mut self,
        store: &S,
        home: HomeId,
        config: DhcpConfig,
        now: UnixTime,
    ) -> Result<Outcome, StoreError> {
        let records = store.load(home)?;
        let (server, outcome) = HomeServer::restore(home, config, records, now);
        self.insert(server);
        Ok(outcome)
    }

    /// Removes a home; its leases stay in the store until the caller deletes them.
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

    /// Handles a message's bytes from `home`.
    pub fn handle_bytes(
        &mut self,
        home: HomeId,
        now: UnixTime,
        bytes: &[u8],
    ) -> Result<Outcome, DropReason> {
        self.servers
            .get_mut(&home)
            .ok_or(DropReason::UnknownHome)?
            .handle_bytes(now, bytes)
    }

    /// Handles a decoded message from `home`.
    pub fn handle(
        &mut self,
        home: HomeId,
        now: UnixTime,
        msg: &Message,
    ) -> Result<Outcome, DropReason> {
        self.servers
            .get_mut(&home)
            .ok_or(DropReason::UnknownHome)?
            .handle(now, msg)
    }

    /// Runs [`HomeServer::expire`] on every home with something due; returns the non-empty
    /// outcomes.
    pub fn expire(&mut self, now: UnixTime) -> Vec<Outcome> {
        self.expire_if(now, |_| true)
    }

    /// [`expire`](Homes::expire) for the homes `include` accepts only.
    pub fn expire_if(&mut self, now: UnixTime, include: impl Fn(HomeId) -> bool) -> Vec<Outcome> {
        self.servers
            .values_mut()
            .filter(|s| include(s.home()))
            .filter(|s| s.next_deadline().is_some_and(|t| t <= now))
            .map(|s| s.expire(now))
            .filter(|o| !o.is_empty())
            .collect()
    }

    /// Bound leases over all homes.
    pub fn bound_leases(&self) -> usize {
        self.servers
            .values()
            .map(|s| {
                s.leases()
                    .filter(|l| l.state == super::store::LeaseState::Bound)
                    .count()
            })
            .sum()
    }

    /// The earliest deadline over all homes.
    pub fn next_deadline(&self) -> Option<UnixTime> {
        self.servers
            .values()
            .filter_map(HomeServer::next_deadline)
            .min()
    }
}
