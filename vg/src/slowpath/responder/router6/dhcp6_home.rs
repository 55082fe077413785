//! The DHCPv6 half of the homes' IPv6 routers: a client message through the home's
//! [`dhcp6::HomeServer`] within the batch (its store changes join the batch's one commit and
//! its Reply waits for it; an Advertise, which changes nothing durable, does not), reloads
//! from the store after a failed commit, expiry, and what durable events write into the fast
//! path: an IA_NA address is a STATIC neighbour entry of its client's MAC, an IA_PD prefix a
//! DELEGATED route via the requesting router (see [`super`]).

use std::collections::BTreeSet;
use std::net::Ipv6Addr;

use lsl::Encap;
use lsl::smoltcp::wire::EthernetAddress;
use nerg_abi::SubscriberId;

use super::super::{DhcpReply, FrameSink, HostTable, Outcome, Pending, Responder, Stores};
use super::Route;
use crate::control::HomeIpv6;
use crate::dhcp::{MacAddr, UnixTime};
use crate::dhcp6::{self, FastPathChange};
use crate::slowpath::v6::{self as v6x, Ipv6Settings, NeighbourTable};

/// The DHCPv6 server's configuration for a home.
pub(super) fn dhcp6_config(
    home: &vg_engines::reply::Home,
    v6: &HomeIpv6,
    settings: &Ipv6Settings,
) -> Result<dhcp6::Dhcp6Config, dhcp6::ConfigError> {
    let mut s = dhcp6::Dhcp6Settings::for_home(v6.prefix, MacAddr(home.gateway_mac.0));
    s.dns_servers = settings.dns_servers.clone();
    s.domain_search = settings.domain_search.clone();
    dhcp6::Dhcp6Config::try_from(s)
}

impl<S: FrameSink, L: Stores, H: HostTable + NeighbourTable> Responder<S, L, H> {
    /// One DHCPv6 message through its home's engine; its store changes join `staged`.
    pub(in crate::slowpath::responder) fn stage_dhcp6(
        &mut self,
        sub: SubscriberId,
        peer: dhcp6::Peer,
        payload: &[u8],
        encap: &Encap,
        now: UnixTime,
        staged: &mut Staged6,
    ) -> Pending {
        let request = dhcp6_message_type(payload);
        if self.v6.stale.contains(&sub) && !self.resync6(sub, now) {
            return Pending::Done(Outcome::Dhcp6 {
                request,
                reply: "store_failed",
            });
        }
        let outcome = match self.v6.dhcp.handle_bytes(sub, now, peer, payload) {
            Ok(o) => o,
            Err(why) => return Pending::Done(Outcome::Ignored(why.label())),
        };
        let needs_commit = !outcome.persist.is_empty()
            || outcome
                .events
                .iter()
                .any(|e| e.fast_path_change().is_some())
            || staged.touched.contains(&sub);
        if !outcome.persist.is_empty() {
            staged.touched.insert(sub);
            staged.ops.extend(outcome.persist);
        }
        let reply = match (outcome.reply, self.v6.homes.get(&sub)) {
            (None, _) => DhcpReply::None,
            (Some(_), None) => DhcpReply::Encap,
            (Some(reply), Some(r)) => {
                let kind = match reply.message_type {
                    dhcproto::v6::MessageType::Advertise => "advertise",
                    dhcproto::v6::MessageType::Reply => "reply",
                    _ => "other",
                };
                let datagram = v6x::Udp6 {
                    macs: (r.nd.gateway_mac, EthernetAddress(reply.dst_mac.0)),
                    addrs: (r.nd.link_local(), reply.dst),
                    ports: (dhcp6::SERVER_PORT, dhcp6::CLIENT_PORT),
                    payload: &reply.payload,
                };
                match v6x::udp6_frame(&datagram, encap) {
                    Some(frame) => DhcpReply::Frame { frame, kind },
                    None => DhcpReply::Encap,
                }
            }
        };
        match reply {
            DhcpReply::Frame { frame, kind } if !needs_commit => Pending::Done(self.send(
                &frame,
                Outcome::Dhcp6 {
                    request,
                    reply: kind,
                },
            )),
            reply => Pending::Dhcp6 {
                home: sub,
                request,
                events: outcome.events,
                reply,
            },
        }
    }

    /// The DHCPv6 bindings and quarantines due at `now`, of the homes whose servers are in
    /// step with the store (a stale home's server decides nothing until it is reloaded).
    pub(in crate::slowpath::responder) fn expire6(&mut self, now: UnixTime) -> Vec<dhcp6::Outcome> {
        let due: Vec<SubscriberId> = self
            .v6
            .homes
            .keys()
            .filter(|id| !self.v6.stale.contains(id))
            .filter(|id| {
                self.v6
                    .dhcp
                    .get(**id)
                    .and_then(dhcp6::HomeServer::next_deadline)
                    .is_some_and(|t| t <= now)
            })
            .copied()
            .collect();
        due.into_iter()
            .filter_map(|id| self.v6.dhcp.get_mut(id).map(|s| s.expire(now)))
            .filter(|o| !o.is_empty())
            .collect()
    }

    /// Reloads home `id`'s DHCPv6 server from the store and commits what the reload decided;
    /// true when the home is in step with the store again.
    pub(in crate::slowpath::responder) fn resync6(
        &mut self,
        id: SubscriberId,
        now: UnixTime,
    ) -> bool {
        let Some(config) = self.v6.dhcp.get(id).map(|s| s.config().clone()) else {
            self.v6.stale.remove(&id);
            return true;
        };
        let outcome = match self.v6.dhcp.restore_from(&self.leases, id, config, now) {
            Ok(outcome) => outcome,
            Err(err) => {
                tracing::error!(sub = id, error = %err, "reloading a home's DHCPv6 bindings failed; its DHCPv6 is off until the store answers");
                self.v6.stale.insert(id);
                return false;
            }
        };
        if self.commit(&[], &outcome.persist) == super::super::Commit::Failed {
            self.v6.stale.insert(id);
            return false;
        }
        self.v6.stale.remove(&id);
        // The restored bindings are the whole truth: their entries, and no others.
        if let Some(r) = self.v6.homes.get_mut(&id) {
            let before: Vec<Ipv6Addr> = r.leased.keys().copied().collect();
            r.leased.clear();
            r.routes.clear();
            if let Some(server) = self.v6.dhcp.get(id) {
                for record in server
                    .bindings()
                    .filter(|b| b.state == dhcp6::BindingState::Bound)
                {
                    match record.lease {
                        dhcp6::Lease::Address(ip) => {
                            r.leased.insert(ip, EthernetAddress(record.mac.0));
                        }
                        dhcp6::Lease::Prefix(prefix) => {
                            let mac = EthernetAddress(record.mac.0);
                            r.routes.insert(prefix, Route { mac });
                        }
                    }
                }
            }
            for addr in before {
                if !r.leased.contains_key(&addr) {
                    r.neighbours.remove(addr);
                    r.unwrite(&mut self.hosts, &mut self.v6.counts, id, addr);
                }
            }
            let leased: Vec<(Ipv6Addr, EthernetAddress)> =
                r.leased.iter().map(|(a, m)| (*a, *m)).collect();
            for (addr, mac) in leased {
                r.lease_entry(&mut self.hosts, &mut self.v6.counts, id, addr, mac);
            }
        }
        self.apply_events6(id, &outcome.events);
        true
    }

    /// Applies the table changes of home `id`'s durable DHCPv6 `events`.
    pub(in crate::slowpath::responder) fn apply_events6(
        &mut self,
        id: SubscriberId,
        events: &[dhcp6::Event],
    ) {
        let Some(r) = self.v6.homes.get_mut(&id) else {
            return;
        };
        let counts = &mut self.v6.counts;
        for event in events {
            tracing::debug!(sub = id, ?event, "dhcpv6");
            match event.fast_path_change() {
                Some(FastPathChange::AddHost { mac, ip }) => {
                    r.lease_entry(&mut self.hosts, counts, id, ip, EthernetAddress(mac.0));
                }
                Some(FastPathChange::RemoveHost { ip, .. }) => {
                    r.leased.remove(&ip);
                    r.neighbours.remove(ip);
                    r.unwrite(&mut self.hosts, counts, id, ip);
                }
                Some(FastPathChange::AddRoute { prefix, mac, .. }) => {
                    r.routes.insert(
                        prefix,
                        Route {
                            mac: EthernetAddress(mac.0),
                        },
                    );
                }
                Some(FastPathChange::RemoveRoute { prefix }) => {
                    r.routes.remove(&prefix);
                }
                None => {}
            }
        }
        r.settle_routes(&mut self.hosts, counts, id);
    }
}

/// The DHCPv6 side of a batch: store changes and the homes they concern.
#[derive(Default)]
pub(in crate::slowpath::responder) struct Staged6 {
    pub(in crate::slowpath::responder) ops: Vec<dhcp6::StoreOp>,
    pub(in crate::slowpath::responder) touched: BTreeSet<SubscriberId>,
}

/// The DHCPv6 message type (RFC 8415 §7.3) of a payload, as a metric label.
fn dhcp6_message_type(payload: &[u8]) -> &'static str {
    match payload.first() {
        Some(1) => "solicit",
        Some(3) => "request",
        Some(4) => "confirm",
        Some(5) => "renew",
        Some(6) => "rebind",
        Some(8) => "release",
        Some(9) => "decline",
        Some(11) => "information_request",
        Some(12) => "relay_forward",
        Some(_) => "other",
        None => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_types_are_labelled_and_garbage_is_other() {
        assert_eq!(dhcp6_message_type(&[1, 0, 0, 1]), "solicit");
        assert_eq!(dhcp6_message_type(&[11]), "information_request");
        assert_eq!(dhcp6_message_type(&[200]), "other");
        assert_eq!(dhcp6_message_type(&[]), "unknown");
    }
}
