//! What one engine call returns: store changes, events, and the reply with where to send it.

use std::net::Ipv6Addr;

use dhcproto::v6::MessageType;
use ipnet::Ipv6Net;

use crate::dhcp::{HomeId, MacAddr, UnixTime};

use super::store::{BindingStore, StoreError, StoreOp};
use super::types::{Duid, IaKind, Lease};

/// UDP port the server listens on (RFC 8415 section 7.2).
pub const SERVER_PORT: u16 = 547;
/// UDP port replies go to (RFC 8415 section 7.2).
pub const CLIENT_PORT: u16 = 546;

/// A reply to send: UDP from [`SERVER_PORT`] to [`CLIENT_PORT`] at `dst`, from the gateway's
/// link-local address (the one the router advertisements come from), over the home's LSL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// Advertise or Reply.
    pub message_type: MessageType,
    /// The client's link-local address (the request's source).
    pub dst: Ipv6Addr,
    /// The client's MAC (the request's Ethernet source; no neighbour discovery needed).
    pub dst_mac: MacAddr,
    /// The DHCPv6 message: the UDP payload.
    pub payload: Vec<u8>,
}

/// Something that happened, for the caller to act on, log and count.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// An IA got (or renewed) a lease: add the host, or route the prefix.
    Bound {
        /// The address or prefix.
        lease: Lease,
        /// The client.
        duid: Duid,
        /// The IA.
        iaid: u32,
        /// The client's MAC.
        mac: MacAddr,
        /// The client's link-local address: a delegated prefix's next hop.
        link_local: Ipv6Addr,
        /// End of the valid lifetime.
        expires: UnixTime,
        /// True if the IA already held this lease bound (a renewal).
        renewed: bool,
    },
    /// The client released a lease.
    Released {
        /// The lease.
        lease: Lease,
        /// The client's MAC.
        mac: MacAddr,
        /// The client's link-local address.
        link_local: Ipv6Addr,
    },
    /// A lease's valid lifetime ran out.
    Expired {
        /// The lease.
        lease: Lease,
        /// The client's MAC.
        mac: MacAddr,
        /// The client's link-local address.
        link_local: Ipv6Addr,
    },
    /// The server took a bound lease back: the configuration no longer allows it, or its IA
    /// moved to another lease.
    Revoked {
        /// The lease.
        lease: Lease,
        /// The client's MAC.
        mac: MacAddr,
        /// The client's link-local address.
        link_local: Ipv6Addr,
    },
    /// A client declined an address (its duplicate address detection failed).
    Declined {
        /// The lease.
        lease: Lease,
        /// The client's MAC.
        mac: MacAddr,
        /// End of the quarantine.
        until: UnixTime,
    },
    /// A declined address is back in the pool.
    QuarantineEnded {
        /// The lease.
        lease: Lease,
    },
    /// An IA got nothing: no free address or prefix left (log it, count it).
    Exhausted {
        /// The IA's kind.
        kind: IaKind,
        /// The client's MAC.
        mac: MacAddr,
    },
    /// An IA got nothing: the client already holds `max_leases_per_client` of its kind.
    ClientLimit {
        /// The IA's kind.
        kind: IaKind,
        /// The client's MAC.
        mac: MacAddr,
    },
}

/// What an event means for the fast path: the host table (IA_NA) and the routes to
/// delegated prefixes (IA_PD).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FastPathChange {
    /// Add or refresh the host `ip` at `mac`.
    AddHost {
        /// The host's MAC.
        mac: MacAddr,
        /// Its address.
        ip: Ipv6Addr,
    },
    /// Remove the host.
    RemoveHost {
        /// The host's MAC.
        mac: MacAddr,
        /// Its address.
        ip: Ipv6Addr,
    },
    /// Route `prefix` to the requesting router at `via` (its link-local address) / `mac`.
    AddRoute {
        /// The delegated prefix.
        prefix: Ipv6Net,
        /// The router's link-local address.
        via: Ipv6Addr,
        /// The router's MAC.
        mac: MacAddr,
    },
    /// Remove the route to `prefix`.
    RemoveRoute {
        /// The delegated prefix.
        prefix: Ipv6Net,
    },
}

impl Event {
    /// The fast-path change this event calls for, if any.
    pub fn fast_path_change(&self) -> Option<FastPathChange> {
        let (lease, mac, link_local, add) = match *self {
            Event::Bound {
                lease,
                mac,
                link_local,
                ..
            } => (lease, mac, link_local, true),
            Event::Released {
                lease,
                mac,
                link_local,
            }
            | Event::Expired {
                lease,
                mac,
                link_local,
            }
            | Event::Revoked {
                lease,
                mac,
                link_local,
            } => (lease, mac, link_local, false),
            // Only a bound address can be declined.
            Event::Declined { lease, mac, .. } => (lease, mac, Ipv6Addr::UNSPECIFIED, false),
            _ => return None,
        };
        Some(match (lease, add) {
            (Lease::Address(ip), true) => FastPathChange::AddHost { mac, ip },
            (Lease::Address(ip), false) => FastPathChange::RemoveHost { mac, ip },
            (Lease::Prefix(prefix), true) => FastPathChange::AddRoute {
                prefix,
                via: link_local,
                mac,
            },
            (Lease::Prefix(prefix), false) => FastPathChange::RemoveRoute { prefix },
        })
    }
}

/// The result of one engine call.
///
/// **Order matters**, as for DHCPv4: apply [`persist`](Outcome::persist) to the store first;
/// only if that succeeds, apply the events' [`FastPathChange`]s and send the
/// [`reply`](Outcome::reply) ([`Outcome::commit`] does the store part; the slow path commits
/// a batch's outcomes in one transaction). If persisting fails, drop the reply: the client
/// retransmits. The engine's state has already moved, so a caller that goes on serving the
/// home should rebuild it from the store ([`Homes::restore_from`](super::Homes::restore_from)).
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
    pub(crate) fn new(home: HomeId) -> Outcome {
        Outcome {
            home,
            persist: Vec::new(),
            events: Vec::new(),
            reply: None,
        }
    }

    /// Writes the records to `store` and, only if that worked, releases events and reply.
    pub fn commit<S: BindingStore + ?Sized>(self, store: &S) -> Result<Committed, StoreError> {
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

/// How a home's leases are used, per kind, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Leases the configuration has room for.
    pub capacity: u64,
    /// Bound.
    pub bound: u64,
    /// Expired or released, remembered for their IA.
    pub remembered: u64,
    /// Declined addresses in quarantine.
    pub declined: u64,
}
