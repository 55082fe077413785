//! Keeping the fast path's route cache exact.
//!
//! The XDP programs remember each CPU's recent `bpf_fib_lookup` results (`NERG_ROUTE_CACHE`,
//! see `ebpf/vg-xdp/src/fwd.rs`) and use one only while its generation equals
//! `NERG_FIB_GEN`. This module owns that generation: [`RouteWatch`] listens to the kernel's
//! rtnetlink notifications of the vG's namespace (links, neighbours, IPv4/IPv6 addresses,
//! routes and rules, nexthop objects) and bumps the generation after each burst of them, so
//! the next packet of every flow looks its route up again. It also bumps it on a timer, as a
//! bound on staleness should a notification ever be lost (the socket overflowing is
//! reported as `ENOBUFS`, which bumps too).
//!
//! Between a change and the bump (the notification's trip to vgd, microseconds) packets use
//! the route from before, as they would through any FIB offload. While vgd is down during a
//! hitless restart nothing bumps: the programs still attached keep their cached routes until
//! the new vgd's programs replace them.

use std::{io, time::Duration};

use aya::maps::{Array, MapData, MapError};
use rtnetlink::sys::{Socket, protocols::NETLINK_ROUTE};
use tokio::io::{Interest, unix::AsyncFd};
use tokio_util::sync::CancellationToken;

/// rtnetlink multicast groups (`RTNLGRP_*`, `<linux/rtnetlink.h>`) whose messages can change
/// a `bpf_fib_lookup` answer.
const GROUPS: [(u32, &str); 8] = [
    (1, "link"),
    (3, "neigh"),
    (5, "ipv4-ifaddr"),
    (7, "ipv4-route"),
    (8, "ipv4-rule"),
    (9, "ipv6-ifaddr"),
    (11, "ipv6-route"),
    (32, "nexthop"),
];

/// How often the generation is bumped with no notification at all.
pub const SAFETY_INTERVAL: Duration = Duration::from_secs(1);

/// The fast path's route generation (`NERG_FIB_GEN`).
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
        let next = self.value.wrapping_add(1);
        self.map.set(0, next, 0)?;
        self.value = next;
        Ok(())
    }

    /// The current generation.
    pub fn value(&self) -> u32 {
        self.value
    }
}

/// An rtnetlink socket subscribed to the groups that matter for routing, opened in the
/// calling thread's network namespace.
pub struct RouteWatch {
    socket: Socket,
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
        Ok(Self { socket })
    }

    /// Bumps `generation` after every burst of notifications and every `interval`, until
    /// `shutdown`. Should the socket fail for good, it says so and goes on bumping every
    /// `interval`.
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
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
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
                    // Read the whole burst, then bump once.
                    let mut changed = false;
                    loop {
                        buf.clear();
                        match guard.try_io(|s| s.get_ref().recv(&mut buf, 0)) {
                            Ok(Ok(_)) => changed = true,
                            // Lost notifications: something changed that we cannot see.
                            Ok(Err(e)) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                                tracing::warn!("rtnetlink notifications overflowed; route cache invalidated");
                                changed = true;
                            }
                            Ok(Err(err)) => {
                                tracing::error!(error = %err, "reading route notifications failed; the route cache is refreshed on the timer only");
                                changed = true;
                                watching = false;
                                break;
                            }
                            Err(_would_block) => break,
                        }
                    }
                    if changed {
                        bump(&mut generation);
                    }
                }
            }
        }
    }
}

fn bump(generation: &mut FibGeneration) {
    if let Err(err) = generation.bump() {
        tracing::error!(error = %err, "bumping the route generation failed");
    }
}
