//! Resolving a home's hosts for traffic from the core: the NS the vG sends ([`solicit`])
//! and the per-home [`Resolver`] that bounds what resolution can cost (RFC 6583).
//!
//! A packet from the core to a host the fast path has no binding for is punted; the caller
//! asks [`Resolver::resolve`]. A new target gets an NS now ([`Resolve::Solicit`]) if the
//! home's NS budget ([`ResolverLimits::rate`], 10 per second) has a token and the pending
//! set ([`ResolverLimits::max_pending`], 64) has room; otherwise the packet is refused and
//! nothing is kept. [`Resolver::poll`] retransmits every RETRANS_TIMER (1 s) up to
//! MAX_MULTICAST_SOLICIT (3) NSs, then reports the target unreachable with the packet it
//! held (RFC 4861 §7.2.2: the most recent packet is kept, here one per target and at most
//! [`ResolverLimits::max_queued_bytes`] in all), for an address-unreachable error. A learnt
//! NA ends it: [`Resolver::resolved`] returns the packet to send.
//!
//! So a scan of a home's /64 from the internet costs at most 10 NSs a second into the home
//! and 64 small entries; the rest is refused before anything is stored (RFC 6583 §6.1:
//! rate limit and bound the INCOMPLETE state). A refused packet is dropped (the caller may
//! count it); the sender retries.

use std::collections::HashMap;
use std::net::Ipv6Addr;

use lsl::Encap;
use lsl::encap::EncapError;
use lsl::smoltcp::wire::{EthernetAddress, NdiscRepr, RawHardwareAddress};

use super::Home6;
use super::wire::{Addressing, ND_HOP_LIMIT, icmpv6_frame, multicast_mac, solicited_node};
use crate::reply::{RateLimit, TokenBucket};

/// MAX_MULTICAST_SOLICIT (RFC 4861 §10).
pub const MAX_MULTICAST_SOLICIT: u8 = 3;
/// RETRANS_TIMER, in milliseconds (RFC 4861 §10).
pub const RETRANS_TIMER_MS: u64 = 1_000;

/// The NS for `target` from the gateway's link-local address with its SLLA, in `encap`:
/// to the target's solicited-node group (address resolution), or unicast to `known` (a
/// reachability probe, RFC 4861 §7.3.3).
pub fn solicit(
    home: &Home6,
    encap: &Encap,
    target: Ipv6Addr,
    known: Option<EthernetAddress>,
) -> Result<Vec<u8>, EncapError> {
    let (dst, dst_mac) = match known {
        Some(mac) => (target, mac),
        None => (
            solicited_node(target),
            multicast_mac(solicited_node(target)),
        ),
    };
    let repr = NdiscRepr::NeighborSolicit {
        target_addr: target,
        lladdr: Some(RawHardwareAddress::from(home.gateway_mac)),
    };
    let to = Addressing {
        src_mac: home.gateway_mac,
        dst_mac,
        src: home.link_local(),
        dst,
        hop_limit: ND_HOP_LIMIT,
    };
    let inner = icmpv6_frame(&to, repr.buffer_len(), |packet| repr.emit(packet))
        .ok_or(EncapError::TooLong { len: usize::MAX })?;
    encap.encapsulate(&inner)
}

/// A [`Resolver`]'s bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResolverLimits {
    /// Targets being resolved at once.
    pub max_pending: usize,
    /// NSs per second into the home (first NSs and retransmissions alike).
    pub rate: RateLimit,
    /// NSs per target before it is unreachable.
    pub max_solicits: u8,
    /// Between NSs, in milliseconds.
    pub retrans_ms: u64,
    /// Bytes of held packets, all targets together.
    pub max_queued_bytes: usize,
}

impl Default for ResolverLimits {
    /// 64 pending, 10 NSs a second (burst 10), 3 NSs 1 s apart, 16 KiB of held packets.
    fn default() -> Self {
        ResolverLimits {
            max_pending: 64,
            rate: RateLimit {
                per_second: 10,
                burst: 10,
            },
            max_solicits: MAX_MULTICAST_SOLICIT,
            retrans_ms: RETRANS_TIMER_MS,
            max_queued_bytes: 16 * 1024,
        }
    }
}

/// What [`Resolver::resolve`] says to do with a packet for a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolve {
    /// A new resolution: send [`solicit`] for the target now. The packet is held if it fit.
    Solicit,
    /// Resolution is under way; the packet replaced the one held, if it fit.
    Pending,
    /// The pending set is full: the packet is dropped.
    Full,
    /// The home's NS budget is spent: the packet is dropped.
    RateLimited,
}

/// What [`Resolver::poll`] reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResolverEvent {
    /// Send [`solicit`] for this target again.
    Retransmit(Ipv6Addr),
    /// No answer after the last NS: the target is unreachable; the held packet, if any,
    /// for [`super::icmp6_error_to_core`] with [`super::Icmp6Error::AddressUnreachable`].
    Failed {
        /// The target.
        target: Ipv6Addr,
        /// The packet held for it.
        held: Option<Vec<u8>>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Pending {
    /// NSs counted so far (sent or skipped for the rate limit).
    solicits: u8,
    /// When the next NS (or the verdict) is due.
    next_ms: u64,
    held: Option<Vec<u8>>,
}

/// A home's neighbour resolutions in progress (see the module documentation).
#[derive(Debug, Clone)]
pub struct Resolver {
    limits: ResolverLimits,
    pending: HashMap<Ipv6Addr, Pending>,
    bucket: TokenBucket,
    queued_bytes: usize,
}

impl Resolver {
    /// An idle resolver at `now_ms`.
    pub fn new(limits: ResolverLimits, now_ms: u64) -> Resolver {
        Resolver {
            limits,
            pending: HashMap::new(),
            bucket: TokenBucket::new(limits.rate, now_ms),
            queued_bytes: 0,
        }
    }

    /// Targets being resolved.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// Whether none are.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Bytes of packets held.
    pub fn queued_bytes(&self) -> usize {
        self.queued_bytes
    }

    /// When [`Resolver::poll`] next has something to do.
    pub fn next_ms(&self) -> Option<u64> {
        self.pending.values().map(|p| p.next_ms).min()
    }

    /// A packet from the core for `target`, which has no binding (see [`Resolve`]).
    pub fn resolve(&mut self, target: Ipv6Addr, packet: Option<&[u8]>, now_ms: u64) -> Resolve {
        if self.pending.contains_key(&target) {
            self.hold(target, packet);
            return Resolve::Pending;
        }
        if self.pending.len() >= self.limits.max_pending {
            return Resolve::Full;
        }
        if !self.bucket.try_take(now_ms) {
            return Resolve::RateLimited;
        }
        self.pending.insert(
            target,
            Pending {
                solicits: 1,
                next_ms: now_ms.saturating_add(self.limits.retrans_ms),
                held: None,
            },
        );
        self.hold(target, packet);
        Resolve::Solicit
    }

    /// `target` answered (its NA was learnt): ends its resolution; the packet held for it,
    /// to send now.
    pub fn resolved(&mut self, target: Ipv6Addr) -> Option<Vec<u8>> {
        let pending = self.pending.remove(&target)?;
        let held = pending.held?;
        self.queued_bytes -= held.len();
        Some(held)
    }

    /// Retransmissions and failures due at `now_ms`. A retransmission the NS budget has no
    /// token for is skipped but counted, so that a target's verdict is never later than
    /// `max_solicits` x `retrans_ms` after its first NS.
    pub fn poll(&mut self, now_ms: u64) -> Vec<ResolverEvent> {
        let mut due: Vec<Ipv6Addr> = self
            .pending
            .iter()
            .filter(|(_, p)| p.next_ms <= now_ms)
            .map(|(target, _)| *target)
            .collect();
        due.sort_unstable();
        let mut events = Vec::new();
        for target in due {
            let Some(pending) = self.pending.get_mut(&target) else {
                continue;
            };
            if pending.solicits >= self.limits.max_solicits {
                let held = self.pending.remove(&target).and_then(|p| p.held);
                if let Some(held) = &held {
                    self.queued_bytes -= held.len();
                }
                events.push(ResolverEvent::Failed { target, held });
                continue;
            }
            pending.solicits += 1;
            pending.next_ms = now_ms.saturating_add(self.limits.retrans_ms);
            if self.bucket.try_take(now_ms) {
                events.push(ResolverEvent::Retransmit(target));
            }
        }
        events
    }

    /// Holds `packet` for `target` in place of the one held, if the byte budget allows.
    fn hold(&mut self, target: Ipv6Addr, packet: Option<&[u8]>) {
        let (Some(packet), Some(pending)) = (packet, self.pending.get_mut(&target)) else {
            return;
        };
        let old = pending.held.as_ref().map_or(0, Vec::len);
        let after = self.queued_bytes - old + packet.len();
        if after <= self.limits.max_queued_bytes {
            pending.held = Some(packet.to_vec());
            self.queued_bytes = after;
        }
    }
}
