//! The slow path's dispatcher: for each punted frame, find the home, apply its rate limit,
//! and send the gateway's answer back out on the home's LSL: ARP, ICMP echo, ICMP errors,
//! and DHCP through the home's DHCP engine. A lease is made durable in the lease store
//! before its ACK leaves, and every lease change updates the fast path's host table
//! (anti-spoofing, downstream delivery) before the client can use the address.

use std::collections::HashMap;

use lsl::{encap::DecapOptions, smoltcp::wire::EthernetAddress};
use nerg_abi::{PuntReason, SubscriberId};

use super::{
    Punted,
    reply::{self, Answer, DhcpRequest, GatewayDatagram, HomeLimiter, IcmpError, RateLimit},
};
use crate::{
    config::Config,
    dhcp::{self, Destination, HomeServer, Homes, HostChange, LeaseStore, UnixTime},
};

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
        /// The reply sent (`offer`, `ack`, `nak`), or `no_reply`.
        reply: &'static str,
    },
    /// Not answered; the label says why.
    Ignored(&'static str),
    /// The reply could not be sent.
    SendFailed,
}

/// Answers punted frames on behalf of every home's gateway.
pub struct Responder<S, L, H> {
    homes: HashMap<SubscriberId, reply::Home>,
    dhcp: Homes,
    leases: L,
    hosts: H,
    limiter: HomeLimiter,
    options: DecapOptions,
    sink: S,
}

impl<S: FrameSink, L: LeaseStore, H: HostTable> Responder<S, L, H> {
    /// A responder for the homes of `config`, sending through `sink`, keeping leases in
    /// `leases` (restored from it) and hosts in `hosts`.
    pub fn new(config: &Config, sink: S, leases: L, hosts: H, now: UnixTime) -> Self {
        let mut dhcp = Homes::new();
        let mut responder = Self {
            homes: config
                .subscribers
                .values()
                .map(|s| (s.id, reply::Home::from(s)))
                .collect(),
            dhcp: Homes::new(),
            leases,
            hosts,
            limiter: HomeLimiter::new(RateLimit::default()),
            options: DecapOptions {
                vxlan_port: config.fastpath.vxlan_port,
                ..DecapOptions::default()
            },
            sink,
        };
        for sub in config.subscribers.values() {
            match dhcp.restore_from(&responder.leases, sub.id, sub.dhcp.clone(), now) {
                Ok(outcome) => {
                    // Restored leases re-enter the host table; a restore sends nothing.
                    let _ = responder.apply_outcome(outcome);
                }
                Err(err) => {
                    tracing::error!(sub = sub.id, error = %err, "restoring leases failed; starting the home empty");
                    dhcp.insert(HomeServer::new(sub.id, sub.dhcp.clone()));
                }
            }
        }
        responder.dhcp = dhcp;
        responder
    }

    /// The host table (tests read it).
    pub fn hosts(&self) -> &H {
        &self.hosts
    }

    /// Adds a home created at run time: its gateway answers and an empty DHCP server (a new
    /// home has no leases: deleting a home deletes its leases).
    pub fn add_home(&mut self, sub: &crate::config::SubscriberConfig) {
        self.homes.insert(sub.id, reply::Home::from(sub));
        self.dhcp.insert(HomeServer::new(sub.id, sub.dhcp.clone()));
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
        match self
            .dhcp
            .restore_from(&self.leases, sub.id, sub.dhcp.clone(), now)
        {
            Ok(outcome) => {
                let _ = self.apply_outcome(outcome);
            }
            Err(err) => {
                tracing::error!(sub = sub.id, error = %err, "reloading leases failed; the home's DHCP starts empty");
                self.dhcp.insert(HomeServer::new(sub.id, sub.dhcp.clone()));
            }
        }
    }

    /// Removes a home: no more answers or leases for it. Its leases stay in the store and its
    /// hosts in the host table: the caller deletes them (one transaction with the home).
    pub fn remove_home(&mut self, id: SubscriberId) {
        self.homes.remove(&id);
        self.dhcp.remove(id);
        self.limiter.forget(id);
    }

    /// A home's lease records, from the store.
    pub fn leases(&self, id: SubscriberId) -> Result<Vec<dhcp::LeaseRecord>, dhcp::StoreError> {
        self.leases.load(id)
    }

    /// Homes with a DHCP server and their bound leases (for the leases-in-use metric).
    pub fn leases_in_use(&self) -> usize {
        self.dhcp.bound_leases()
    }

    /// Ends what is due at `now` (lease expiry, offer holds, quarantines).
    pub fn tick(&mut self, now: UnixTime) {
        for outcome in self.dhcp.expire(now) {
            self.apply_outcome(outcome);
        }
    }

    /// Persists an engine outcome, then applies its host changes; returns its reply.
    fn apply_outcome(&mut self, outcome: dhcp::Outcome) -> Option<dhcp::Reply> {
        let home = outcome.home;
        let committed = match outcome.commit(&self.leases) {
            Ok(c) => c,
            Err(err) => {
                // Nothing is sent: the client retransmits and gets the same answer.
                tracing::error!(sub = home, error = %err, "lease store write failed");
                return None;
            }
        };
        for event in &committed.events {
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
        committed.reply
    }

    fn dhcp(
        &mut self,
        sub: SubscriberId,
        home: reply::Home,
        req: &DhcpRequest<'_>,
        now: UnixTime,
    ) -> Outcome {
        let request = dhcp_message_type(req.payload());
        let outcome = match self.dhcp.handle_bytes(sub, now, req.payload()) {
            Ok(o) => o,
            Err(why) => return Outcome::Ignored(why.label()),
        };
        let Some(reply) = self.apply_outcome(outcome) else {
            return Outcome::Dhcp {
                request,
                reply: "no_reply",
            };
        };
        let kind = match reply.message_type {
            dhcproto::v4::MessageType::Offer => "offer",
            dhcproto::v4::MessageType::Ack => "ack",
            dhcproto::v4::MessageType::Nak => "nak",
            _ => "other",
        };
        let (dst, dst_mac) = match reply.dst {
            Destination::Broadcast => (std::net::Ipv4Addr::BROADCAST, EthernetAddress([0xff; 6])),
            Destination::Unicast { ip, mac } => (ip, EthernetAddress(mac.0)),
        };
        let datagram = GatewayDatagram {
            dst_mac,
            dst,
            src_port: dhcp::SERVER_PORT,
            dst_port: dhcp::CLIENT_PORT,
            payload: &reply.payload,
        };
        let frame = match reply::udp_from_gateway(&home, &req.decapsulated.reply_encap(), &datagram)
        {
            Ok(f) => f,
            Err(_) => return Outcome::Ignored("encap"),
        };
        match self.sink.send(&frame) {
            Ok(()) => Outcome::Dhcp {
                request,
                reply: kind,
            },
            Err(err) => {
                tracing::warn!(sub, error = %err, "sending a DHCP reply failed");
                Outcome::SendFailed
            }
        }
    }

    /// The sink (tests read what was sent).
    pub fn sink(&self) -> &S {
        &self.sink
    }

    /// Handles one punted frame at `now_ms` (a monotonic millisecond clock) and `now`
    /// (wall-clock time, for leases).
    pub fn handle(&mut self, punted: &Punted, now_ms: u64, now: UnixTime) -> Outcome {
        let sub = punted.header.sub;
        let Some(&home) = self.homes.get(&sub) else {
            return Outcome::Ignored("unknown_home");
        };
        if let Err(why) = self.limiter.admit(sub, now_ms) {
            return Outcome::Ignored(why.label());
        }
        let answered = if punted.reason == Some(PuntReason::TtlExceeded) {
            reply::icmp_error(&home, &punted.frame, &self.options, IcmpError::TimeExceeded)
                .map(Answer::Reply)
        } else {
            reply::answer(&home, &punted.frame, &self.options)
        };
        match answered {
            Ok(Answer::Reply(reply)) => match self.sink.send(&reply.frame) {
                Ok(()) => Outcome::Replied(reply.kind.label()),
                Err(err) => {
                    tracing::warn!(sub, error = %err, "sending a slow-path reply failed");
                    Outcome::SendFailed
                }
            },
            Ok(Answer::Dhcp(req)) => self.dhcp(sub, home, &req, now),
            Err(why) => Outcome::Ignored(why.label()),
        }
    }
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
