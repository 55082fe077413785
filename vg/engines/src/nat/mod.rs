//! NAT public pool and port-block allocation (I/O-free).
//!
//! The vG translates each home's private addresses to a public address shared with other
//! homes (NAPT44, L2-aware: the home is part of every key). The control plane (this module,
//! driven by vgd) decides *which public address and which port blocks* each home gets; the
//! XDP fast path creates the individual mappings inside those blocks.
//!
//! ```text
//!   [nat] TOML --TryFrom--> NatConfig --> BlockAllocator --(SubscriberPorts)--> fast-path map
//!                                              |                                   |
//!                                       BlockEvent per block               select_port()
//!                                       (RFC 7422 log line)             (mirrored in eBPF)
//! ```
//!
//! - [`config`]: the `[nat]` section: wire form, validation, defaults, warnings, capacity.
//! - [`pool`]: pool entries (address, prefix, range), the public address set, port ranges.
//! - [`alloc`]: [`BlockAllocator`]: paired pooling, least-loaded address, blocks per
//!   subscriber, hold-down, idle release, port-forward checks, snapshot and restore.
//! - [`event`]: [`BlockEvent`] log records and their stable one-line text form.
//! - [`select`]: [`SubscriberPorts`] (the fast path's per-home view) and [`select_port`], the
//!   port choice for a new mapping, specified to the bit.
//!
//! Nothing here does I/O or reads a clock: callers pass the time in ([`UnixTime`]), log the
//! returned events, persist [`Snapshot`]s or [`Assignment`]s and push [`SubscriberPorts`] to
//! the fast path. No input makes any function panic.
//!
//! # RFC behaviour this module provides
//!
//! | requirement | where |
//! |---|---|
//! | RFC 4787 REQ-2, RFC 6888 REQ-2: paired address pooling | [`BlockAllocator`]: one address per subscriber, always |
//! | RFC 4787 REQ-3: no port overloading | [`select_port`] returns only ports the caller reports free, inside the home's blocks |
//! | RFC 4787 REQ-5 / RFC 5382 REQ-5 / RFC 5508 REQ-2: timer minimums | [`config`] bounds |
//! | RFC 4787 REQ-8: filtering configurable | [`Filtering`] |
//! | RFC 6888 REQ-3: non-contiguous pools | [`pool`] entries |
//! | RFC 6888 REQ-4/5: per-subscriber port and session limits | `max_blocks_per_subscriber`, `max_sessions_per_subscriber` |
//! | RFC 6888 REQ-8: no port reuse for 120 s | block hold-down in [`BlockAllocator`] |
//! | RFC 6888 REQ-11: defined behaviour on exhaustion | typed refusals ([`AddError`], [`GrowError`]), `None` from [`select_port`] |
//! | RFC 6888 REQ-12/14, RFC 7422: log per block, no destinations | [`BlockEvent`] |
//! | RFC 6888 REQ-15: hard-to-guess ports | [`select_port`] with a keyed flow hash |

pub mod alloc;
pub mod config;
pub mod event;
pub mod pool;
pub mod select;

#[cfg(test)]
mod tests;

pub use alloc::{
    AddError, AddressUsage, Assignment, BlockAllocator, ForwardError, GrowError, HeldBlock,
    PoolStats, ReleaseError, RestoreError, Snapshot, UnknownSubscriber,
};
pub use config::{
    AddressPooling, Capacity, Filtering, NatConfig, NatConfigError, NatConfigProblem,
    NatConfigWarning, NatConfigWire, Timeouts, TimeoutsWire,
};
pub use event::{BlockAction, BlockEvent, LOG_TARGET, SubscriberId, UnixTime};
pub use pool::{PoolEntry, PortRange, PublicPool};
pub use select::{
    MAX_BLOCKS_PER_SUBSCRIBER, MAX_PORT_PROBES, PortBlock, PortChoice, SubscriberPorts, select_port,
};
