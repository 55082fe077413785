//! Keeping the fast path's route cache exact, and useful.
//!
//! The XDP programs remember each CPU's recent `bpf_fib_lookup` results (`NERG_ROUTE_CACHE`,
//! see `ebpf/vg-xdp/src/fwd.rs`) and use one only while its generation equals
//! `NERG_FIB_GEN`. This module owns that generation: [`RouteWatch`] listens to the kernel's
//! rtnetlink notifications of the vG's namespace (links, neighbours, IPv4/IPv6 addresses,
//! routes and rules, nexthop objects) and bumps the generation after each burst of them
//! that can change a lookup's answer, so the next packet of every flow looks its route up
//! again. A neighbour notification changes an answer only when the neighbour becomes valid,
//! stops being valid or changes its link-layer address (`bpf_fib_lookup` reads nothing
//! else of it): the state changes of a neighbour that stays valid with the same address
//! (reachable, stale, delay, probe) are not bumps, so a busy access network's ARP churn does
//! not keep emptying the cache. The socket overflowing (`ENOBUFS`: notifications lost)
//! bumps, and so does a timer ([`SAFETY_INTERVAL`]), as a bound on staleness for what sends
//! no notification at all (a forwarding sysctl).
//!
//! It also decides how routes are keyed ([`nerg_abi::FIB_GEN_DESTINATION_ONLY`]): after
//! every change of rules, routes or nexthop objects (and at start) it reads the rules and
//! routes of the namespace, and where nothing can make an answer depend on the source
//! address or protocol (no policy rule beyond the kernel's defaults, no multipath route,
//! no nexthop object) the fast path keys its cache by destination alone, so that every
//! home's packets to one destination share an entry.
//!
//! Between a change and the bump (the notification's trip to vgd, microseconds) packets use
//! the route from before, as they would through any FIB offload. While vgd is down during a
//! hitless restart nothing bumps: the programs still attached keep their cached routes until
//! the new vgd's programs replace them.

use std::{collections::HashMap, io, net::IpAddr, time::Duration};

use aya::maps::{Array, MapData, MapError};
use futures::TryStreamExt as _;
use nerg_abi::FIB_GEN_DESTINATION_ONLY;
use rtnetlink::{
    IpVersion, RouteMessageBuilder,
    packet_route::{
        neighbour::{NeighbourAddress, NeighbourAttribute, NeighbourMessage, NeighbourState},
        route::{RouteAttribute, RouteMessage},
        rule::{RuleAction, RuleAttribute, RuleMessage},
    },
    packet_utils::{Parseable as _, nla::Nla as _},
    sys::{Socket, protocols::NETLINK_ROUTE},
};
use tokio::io::{Interest, unix::AsyncFd};
use tokio_util::sync::CancellationToken;

/// rtnetlink multicast groups (`RTNLGRP_*`, `<linux/rtnetlink.h>`) whose messages can change
/// a `bpf_fib_lookup` answer.
const GROUPS: [(u32, &str); 9] = [
    (1, "link"),
    (3, "neigh"),
    (5, "ipv4-ifaddr"),
    (7, "ipv4-route"),
    (8, "ipv4-rule"),
    (9, "ipv6-ifaddr"),
    (11, "ipv6-route"),
    // IPv6 routes are cached by their full key, which a rule can make matter.
    (19, "ipv6-rule"),
    (32, "nexthop"),
];

/// How often the generation is bumped with no notification at all: the bound on staleness
/// for a change that sends none. Lost notifications are reported (`ENOBUFS`) and bump at
/// once, so this is not what keeps routes exact; it is what limits the cache's hit rate for
/// flows sparser than it (a route is looked up again at least this often).
pub const SAFETY_INTERVAL: Duration = Duration::from_secs(10);

/// The fast path's route generation (`NERG_FIB_GEN`): a counter in the low 31 bits and
/// [`FIB_GEN_DESTINATION_ONLY`] on top.
pub struct FibGeneration {
    map: Array<MapData, u32>,
    value: u32,
}

impl FibGeneration {
    /// Wraps the object's `NERG_FIB_GEN` map.
    pub fn new(map: Array<MapData, u32>) -> Result<Self, MapError> {
        let value = map.get(&0, 0)?;
        Ok(Self { map, value })
    }

    /// Invalidates every cached route: the next packet of each flow looks its route up.
    pub fn bump(&mut self) -> Result<(), MapError> {
        self.write(self.destination_only())
    }

    /// Keys the route cache by destination alone (`true`: the routing depends on nothing
    /// else) or by everything a lookup is given; either way every cached route goes.
    pub fn set_destination_only(&mut self, destination_only: bool) -> Result<(), MapError> {
        self.write(destination_only)
    }

    fn write(&mut self, destination_only: bool) -> Result<(), MapError> {
        let counter = self.value.wrapping_add(1) & !FIB_GEN_DESTINATION_ONLY;
        let next = if destination_only {
            counter | FIB_GEN_DESTINATION_ONLY
        } else {
            counter
        };
        self.map.set(0, next, 0)?;
        self.value = next;
        Ok(())
    }

    /// The current generation.
    pub fn value(&self) -> u32 {
        self.value
    }

    /// Whether the cache is keyed by destination alone.
    pub fn destination_only(&self) -> bool {
        self.value & FIB_GEN_DESTINATION_ONLY != 0
    }
}

/// rtnetlink message types (`<linux/rtnetlink.h>`) the watch tells apart.
mod rtm {
    pub(super) const NEWNEIGH: u16 = 28;
    pub(super) const DELNEIGH: u16 = 29;
    pub(super) const NEWROUTE: u16 = 24;
    pub(super) const DELROUTE: u16 = 25;
    pub(super) const NEWRULE: u16 = 32;
    pub(super) const DELRULE: u16 = 33;
    pub(super) const NEWNEXTHOP: u16 = 104;
    pub(super) const DELNEXTHOP: u16 = 105;
}

/// The most neighbours [`Neighbours`] remembers; past it, it forgets them all (one bump).
const MAX_NEIGHBOURS: usize = 1 << 20;

/// What a burst of notifications means for the route cache.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Change {
    /// Some cached answer may be wrong: bump.
    pub invalidate: bool,
    /// Rules, routes or nexthop objects changed: decide the key again.
    pub routing: bool,
}

impl Change {
    fn add(&mut self, other: Change) {
        self.invalidate |= other.invalidate;
        self.routing |= other.routing;
    }
}

/// The neighbours the notifications told of: the link-layer address of each valid one (what
/// a `bpf_fib_lookup` answer can hold of a neighbour), `None` for one known to be invalid.
#[derive(Debug, Default)]
pub struct Neighbours {
    known: HashMap<(u32, IpAddr), Option<Vec<u8>>>,
}

impl Neighbours {
    /// What one rtnetlink datagram (one or more messages) changes.
    pub fn classify(&mut self, datagram: &[u8]) -> Change {
        let mut change = Change::default();
        let mut rest = datagram;
        while rest.len() >= 16 {
            let len = u32::from_ne_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
            let kind = u16::from_ne_bytes([rest[4], rest[5]]);
            if len < 16 || len > rest.len() {
                // Malformed: assume the worst.
                change.invalidate = true;
                break;
            }
            let payload = &rest[16..len];
            change.add(match kind {
                rtm::NEWNEIGH | rtm::DELNEIGH => Change {
                    invalidate: self.neighbour(kind == rtm::NEWNEIGH, payload),
                    routing: false,
                },
                rtm::NEWROUTE
                | rtm::DELROUTE
                | rtm::NEWRULE
                | rtm::DELRULE
                | rtm::NEWNEXTHOP
                | rtm::DELNEXTHOP => Change {
                    invalidate: true,
                    routing: true,
                },
                _ => Change {
                    invalidate: true,
                    routing: false,
                },
            });
            // Messages are 4-byte aligned.
            let next = len.next_multiple_of(4).min(rest.len());
            rest = &rest[next..];
        }
        change
    }

    /// Whether a neighbour notification (`new`: RTM_NEWNEIGH) can change an answer, and
    /// remembers what it says.
    fn neighbour(&mut self, new: bool, payload: &[u8]) -> bool {
        let buffer = rtnetlink::packet_route::neighbour::NeighbourMessageBuffer::new(&payload);
        let Ok(msg) = NeighbourMessage::parse(&buffer) else {
            return true;
        };
        let Some(ip) = msg.attributes.iter().find_map(|a| match a {
            NeighbourAttribute::Destination(NeighbourAddress::Inet(ip)) => Some(IpAddr::V4(*ip)),
            NeighbourAttribute::Destination(NeighbourAddress::Inet6(ip)) => Some(IpAddr::V6(*ip)),
            _ => None,
        }) else {
            return true;
        };
        let key = (msg.header.ifindex, ip);
        let lladdr = msg.attributes.iter().find_map(|a| match a {
            NeighbourAttribute::LinkLocalAddress(mac) => Some(mac.clone()),
            _ => None,
        });
        let valid = new
            && matches!(
                msg.header.state,
                NeighbourState::Reachable
                    | NeighbourState::Stale
                    | NeighbourState::Delay
                    | NeighbourState::Probe
                    | NeighbourState::Permanent
                    | NeighbourState::Noarp
            );
        let now = match (valid, lladdr) {
            (true, Some(mac)) => Some(mac),
            // Failed, incomplete, gone: a lookup answers NO_NEIGH.
            _ => None,
        };
        if !new {
            self.known.remove(&key);
            return true;
        }
        // Unchanged (valid with the same address, or invalid again): the same answers. A
        // neighbour not seen before may have been valid before vgd started: a change.
        if self.known.get(&key) == Some(&now) {
            return false;
        }
        if self.known.len() >= MAX_NEIGHBOURS {
            self.known.clear();
        }
        self.known.insert(key, now);
        true
    }
}

/// Whether a policy rule is one of the kernel's three defaults (`from all lookup local /
/// main / default` at priorities 0, 32766 and 32767), which select nothing but a table.
fn default_rule(rule: &RuleMessage) -> bool {
    let h = &rule.header;
    if h.src_len != 0 || h.dst_len != 0 || h.tos != 0 || h.action != RuleAction::ToTable {
        return false;
    }
    let mut priority = 0;
    let mut table = u32::from(h.table);
    for a in &rule.attributes {
        match a {
            RuleAttribute::Priority(p) => priority = *p,
            RuleAttribute::Table(t) => table = *t,
            RuleAttribute::Protocol(_) | RuleAttribute::SuppressPrefixLen(_) => {}
            // A selector (source, interface, mark, ports, protocol, ...), or unknown.
            _ => return false,
        }
    }
    matches!((priority, table), (0, 255) | (32766, 254) | (32767, 253))
}

/// `RTA_NH_ID`: a route through a nexthop object (possibly a group).
const RTA_NH_ID: u16 = 30;

/// Whether a route can spread flows over several paths (multipath, or a nexthop object,
/// which may be a group): its answer then depends on the flow hash.
fn multipath_route(route: &RouteMessage) -> bool {
    route.attributes.iter().any(|a| match a {
        RouteAttribute::MultiPath(hops) => hops.len() > 1,
        RouteAttribute::Other(nla) => nla.kind() == RTA_NH_ID,
        _ => false,
    })
}

/// Whether the IPv4 routing of this namespace depends on the destination alone.
async fn destination_decides(handle: &rtnetlink::Handle) -> Result<bool, rtnetlink::Error> {
    let mut rules = handle.rule().get(IpVersion::V4).execute();
    while let Some(rule) = rules.try_next().await? {
        if !default_rule(&rule) {
            return Ok(false);
        }
    }
    let mut routes = handle
        .route()
        .get(RouteMessageBuilder::<std::net::Ipv4Addr>::new().build())
        .execute();
    while let Some(route) = routes.try_next().await? {
        if multipath_route(&route) {
            return Ok(false);
        }
    }
    Ok(true)
}

/// An rtnetlink socket subscribed to the groups that matter for routing, opened in the
/// calling thread's network namespace.
pub struct RouteWatch {
    socket: Socket,
    /// The network namespace it was opened in: where the routing tables are read too.
    netns: std::fs::File,
}

impl RouteWatch {
    /// Opens the socket and joins the groups. Open it in the namespace whose routes the fast
    /// path looks up (vgd's own).
    pub fn open() -> io::Result<Self> {
        let mut socket = Socket::new(NETLINK_ROUTE)?;
        socket.bind_auto()?;
        for (group, name) in GROUPS {
            socket.add_membership(group).map_err(|e| {
                io::Error::new(e.kind(), format!("joining rtnetlink group {name}: {e}"))
            })?;
        }
        socket.set_non_blocking(true)?;
        let netns = std::fs::File::open("/proc/thread-self/ns/net")?;
        Ok(Self { socket, netns })
    }

    /// Bumps `generation` after every burst of notifications that can change an answer and
    /// every `interval`, and decides how the cache is keyed at start and after every change
    /// of the routing, until `shutdown`. Should the socket fail for good, it says so, keys
    /// by everything, and goes on bumping every `interval`.
    #[expect(
        unsafe_code,
        reason = "tokio's AsyncFd registration is unsafe since tokio#8587"
    )]
    pub async fn run(
        self,
        mut generation: FibGeneration,
        interval: Duration,
        shutdown: CancellationToken,
    ) {
        // SAFETY: the AsyncFd owns the socket, whose fd stays open for as long as it does.
        let fd = match unsafe { AsyncFd::register_with_interest(self.socket, Interest::READABLE) } {
            Ok(fd) => Some(fd),
            Err(err) => {
                tracing::error!(error = %err, "watching routes failed; the route cache is refreshed on the timer only");
                None
            }
        };
        let mut watching = fd.is_some();
        let handle = match tables_connection(&self.netns) {
            Ok((connection, handle, _)) => {
                tokio::spawn(connection);
                Some(handle)
            }
            Err(err) => {
                tracing::warn!(error = %err, "reading the routing tables failed; the route cache keys routes by source too");
                None
            }
        };
        if watching {
            decide_key(&mut generation, handle.as_ref()).await;
        }
        let mut neighbours = Neighbours::default();
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        let mut buf = Vec::with_capacity(64 * 1024);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = tick.tick() => bump(&mut generation),
                guard = async { fd.as_ref()?.readable().await.ok() }, if watching => {
                    let Some(mut guard) = guard else {
                        watching = false;
                        continue;
                    };
                    // Read the whole burst, then act once.
                    let mut change = Change::default();
                    loop {
                        buf.clear();
                        match guard.try_io(|s| s.get_ref().recv(&mut buf, 0)) {
                            Ok(Ok(_)) => change.add(neighbours.classify(&buf)),
                            // Lost notifications: something changed that we cannot see.
                            Ok(Err(e)) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                                tracing::warn!("rtnetlink notifications overflowed; route cache invalidated");
                                neighbours = Neighbours::default();
                                change.add(Change { invalidate: true, routing: true });
                            }
                            Ok(Err(err)) => {
                                tracing::error!(error = %err, "reading route notifications failed; the route cache is refreshed on the timer only");
                                change.add(Change { invalidate: true, routing: false });
                                watching = false;
                                // Without notifications a routing change would go unseen.
                                if let Err(err) = generation.set_destination_only(false) {
                                    tracing::error!(error = %err, "setting the route generation failed");
                                }
                                break;
                            }
                            Err(_would_block) => break,
                        }
                    }
                    if change.routing && watching {
                        decide_key(&mut generation, handle.as_ref()).await;
                    } else if change.invalidate {
                        bump(&mut generation);
                    }
                }
            }
        }
    }
}

/// An rtnetlink connection for reading the routing tables of `netns` (the task that runs
/// the watch may be in another namespace: a socket belongs to the namespace it was created
/// in, so it is created on a thread that enters `netns`, registered with this runtime).
#[expect(clippy::type_complexity, reason = "rtnetlink's own return type")]
fn tables_connection(
    netns: &std::fs::File,
) -> io::Result<(
    rtnetlink::proto::Connection<rtnetlink::packet_route::RouteNetlinkMessage>,
    rtnetlink::Handle,
    futures::channel::mpsc::UnboundedReceiver<(
        rtnetlink::packet_core::NetlinkMessage<rtnetlink::packet_route::RouteNetlinkMessage>,
        rtnetlink::sys::SocketAddr,
    )>,
)> {
    let runtime = tokio::runtime::Handle::current();
    std::thread::scope(|s| {
        s.spawn(|| {
            let _entered = runtime.enter();
            nix::sched::setns(netns, nix::sched::CloneFlags::CLONE_NEWNET)
                .map_err(io::Error::from)?;
            rtnetlink::new_connection()
        })
        .join()
        .unwrap_or_else(|_| Err(io::Error::other("the rtnetlink thread panicked")))
    })
}

/// Keys the route cache by destination alone when the namespace's routing allows it. The
/// full key is set first (a bump): packets looked up while the tables are read are keyed
/// as the routing may now require.
async fn decide_key(generation: &mut FibGeneration, handle: Option<&rtnetlink::Handle>) {
    if let Err(err) = generation.set_destination_only(false) {
        tracing::error!(error = %err, "setting the route generation failed");
        return;
    }
    let Some(handle) = handle else { return };
    match destination_decides(handle).await {
        Ok(true) => {
            if let Err(err) = generation.set_destination_only(true) {
                tracing::error!(error = %err, "setting the route generation failed");
            }
        }
        Ok(false) => {
            tracing::info!(
                "policy rules or multipath routes: the route cache keys routes by source and protocol too"
            );
        }
        Err(err) => {
            tracing::warn!(error = %err, "reading the routing tables failed; the route cache keys routes by source too");
        }
    }
}

fn bump(generation: &mut FibGeneration) {
    if let Err(err) = generation.bump() {
        tracing::error!(error = %err, "bumping the route generation failed");
    }
}

#[cfg(test)]
mod tests {
    use rtnetlink::packet_route::{
        route::{RouteAddress, RouteNextHop},
        rule::RuleHeader,
    };

    use super::*;

    // `<linux/neighbour.h>` NUD_* states.
    const REACHABLE: u16 = 0x02;
    const STALE: u16 = 0x04;
    const FAILED: u16 = 0x20;

    /// One rtnetlink neighbour message as the kernel sends it: nlmsghdr, ndmsg, NDA_DST,
    /// NDA_LLADDR (when given).
    fn neigh(kind: u16, ifindex: u32, ip: [u8; 4], state: u16, mac: Option<[u8; 6]>) -> Vec<u8> {
        let mut body = vec![2u8, 0, 0, 0]; // AF_INET, padding
        body.extend_from_slice(&ifindex.to_ne_bytes());
        body.extend_from_slice(&state.to_ne_bytes());
        body.extend_from_slice(&[0, 1]); // flags, type RTN_UNICAST
        body.extend_from_slice(&8u16.to_ne_bytes());
        body.extend_from_slice(&1u16.to_ne_bytes()); // NDA_DST
        body.extend_from_slice(&ip);
        if let Some(mac) = mac {
            body.extend_from_slice(&10u16.to_ne_bytes());
            body.extend_from_slice(&2u16.to_ne_bytes()); // NDA_LLADDR
            body.extend_from_slice(&mac);
            body.extend_from_slice(&[0, 0]);
        }
        message(kind, &body)
    }

    fn message(kind: u16, body: &[u8]) -> Vec<u8> {
        let mut m = Vec::new();
        m.extend_from_slice(&(16 + body.len() as u32).to_ne_bytes());
        m.extend_from_slice(&kind.to_ne_bytes());
        m.extend_from_slice(&[0; 10]); // flags, sequence, port
        m.extend_from_slice(body);
        m
    }

    const INVALIDATE: Change = Change {
        invalidate: true,
        routing: false,
    };
    const NOTHING: Change = Change {
        invalidate: false,
        routing: false,
    };

    #[test]
    fn only_neighbour_changes_a_lookup_can_see_invalidate() {
        let mut n = Neighbours::default();
        let (ip, a, b) = ([10, 99, 0, 2], [2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]);
        assert_eq!(
            n.classify(&neigh(rtm::NEWNEIGH, 3, ip, REACHABLE, Some(a))),
            INVALIDATE
        );
        // Valid to valid with the same address: the answer is the same.
        assert_eq!(
            n.classify(&neigh(rtm::NEWNEIGH, 3, ip, STALE, Some(a))),
            NOTHING
        );
        assert_eq!(
            n.classify(&neigh(rtm::NEWNEIGH, 3, ip, REACHABLE, Some(a))),
            NOTHING
        );
        // The same address on another interface is another neighbour.
        assert_eq!(
            n.classify(&neigh(rtm::NEWNEIGH, 4, ip, REACHABLE, Some(a))),
            INVALIDATE
        );
        // A new link-layer address, a failure, a deletion: answers change.
        assert_eq!(
            n.classify(&neigh(rtm::NEWNEIGH, 3, ip, REACHABLE, Some(b))),
            INVALIDATE
        );
        assert_eq!(
            n.classify(&neigh(rtm::NEWNEIGH, 3, ip, FAILED, None)),
            INVALIDATE
        );
        // Failing again changes nothing more; becoming valid does.
        assert_eq!(
            n.classify(&neigh(rtm::NEWNEIGH, 3, ip, FAILED, None)),
            NOTHING
        );
        assert_eq!(
            n.classify(&neigh(rtm::NEWNEIGH, 3, ip, REACHABLE, Some(b))),
            INVALIDATE
        );
        assert_eq!(
            n.classify(&neigh(rtm::DELNEIGH, 3, ip, REACHABLE, Some(b))),
            INVALIDATE
        );
        // A deletion of what was never seen valid still bumps (vgd may have started after).
        assert_eq!(
            n.classify(&neigh(rtm::DELNEIGH, 9, ip, STALE, Some(a))),
            INVALIDATE
        );
    }

    #[test]
    fn routing_messages_ask_for_the_key_again_and_the_rest_invalidates() {
        let mut n = Neighbours::default();
        for kind in [
            rtm::NEWROUTE,
            rtm::DELROUTE,
            rtm::NEWRULE,
            rtm::DELRULE,
            rtm::NEWNEXTHOP,
            rtm::DELNEXTHOP,
        ] {
            let change = n.classify(&message(kind, &[0; 12]));
            assert_eq!(
                change,
                Change {
                    invalidate: true,
                    routing: true
                },
                "type {kind}"
            );
        }
        // RTM_NEWLINK, RTM_NEWADDR.
        assert_eq!(n.classify(&message(16, &[0; 16])), INVALIDATE);
        assert_eq!(n.classify(&message(20, &[0; 8])), INVALIDATE);
        // Several messages in one datagram: each counts.
        let ip = [10, 0, 0, 9];
        let mut two = neigh(rtm::NEWNEIGH, 3, ip, REACHABLE, Some([2; 6]));
        two.extend(message(rtm::NEWRULE, &[0; 12]));
        assert_eq!(
            n.classify(&two),
            Change {
                invalidate: true,
                routing: true
            }
        );
    }

    #[test]
    fn malformed_notifications_invalidate_and_never_panic() {
        let mut n = Neighbours::default();
        let good = neigh(rtm::NEWNEIGH, 3, [10, 0, 0, 1], REACHABLE, Some([2; 6]));
        for cut in 0..good.len() {
            let change = n.classify(&good[..cut]);
            if cut >= 16 {
                assert!(change.invalidate, "cut at {cut}");
            }
        }
        // A length field past the datagram, or below a header.
        let mut bad = good.clone();
        bad[0..4].copy_from_slice(&1000u32.to_ne_bytes());
        assert_eq!(n.classify(&bad), INVALIDATE);
        bad[0..4].copy_from_slice(&3u32.to_ne_bytes());
        assert_eq!(n.classify(&bad), INVALIDATE);
    }

    fn rule(priority: u32, table: u32, extra: Option<RuleAttribute>) -> RuleMessage {
        let mut r = RuleMessage::default();
        r.header = RuleHeader {
            action: RuleAction::ToTable,
            ..RuleHeader::default()
        };
        r.attributes.push(RuleAttribute::Priority(priority));
        r.attributes.push(RuleAttribute::Table(table));
        r.attributes.extend(extra);
        r
    }

    #[test]
    fn only_the_kernels_three_rules_leave_routing_to_the_destination() {
        assert!(default_rule(&rule(0, 255, None)));
        assert!(default_rule(&rule(32766, 254, None)));
        assert!(default_rule(&rule(32767, 253, None)));
        assert!(!default_rule(&rule(100, 254, None)), "another priority");
        assert!(!default_rule(&rule(32766, 100, None)), "another table");
        assert!(!default_rule(&rule(
            32766,
            254,
            Some(RuleAttribute::FwMark(1))
        )));
        assert!(!default_rule(&rule(
            32766,
            254,
            Some(RuleAttribute::Iifname("core0".into()))
        )));
        let mut from = rule(32766, 254, None);
        from.header.src_len = 24;
        assert!(!default_rule(&from), "a source selector");
    }

    #[test]
    fn multipath_routes_are_told_apart() {
        let mut single = RouteMessage::default();
        single
            .attributes
            .push(RouteAttribute::Gateway(RouteAddress::Inet(
                std::net::Ipv4Addr::new(10, 99, 0, 2),
            )));
        assert!(!multipath_route(&single));
        let mut ecmp = RouteMessage::default();
        ecmp.attributes.push(RouteAttribute::MultiPath(vec![
            RouteNextHop::default(),
            RouteNextHop::default(),
        ]));
        assert!(multipath_route(&ecmp));
    }
}
