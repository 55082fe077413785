//! IPv6 for homes: the operator's prefix pools and each home's delegated prefix.
//!
//! Every home gets one prefix (by default a /56) from the pools of `[ipv6]`. Its first /64
//! is the home's LAN (router advertisements for SLAAC, DHCPv6 addresses); the rest is what
//! DHCPv6 prefix delegation hands to a router inside the home. IPv6 is routed, not
//! translated: the prefix is the home's public address space, so it is assigned the way
//! port blocks are: sticky (a home keeps its prefix across restarts, it is in the store),
//! and a released prefix rests in hold-down before another home gets it, so that hosts
//! still holding addresses from it (their valid lifetime) never reach a new home's hosts.
//!
//! - [`config`]: `[ipv6]` and a home's `ipv6 = { ... }` as written and validated.
//! - [`pool`]: the allocator (I/O-free, the caller passes `now`).

pub mod config;
pub mod pool;

pub use config::{Ipv6Config, Ipv6File, Ipv6Home, Ipv6Policy, Ipv6PolicyFile, RaFlags};
pub use pool::{Assigned, HeldPrefix, PrefixChange, PrefixError, PrefixPool, PrefixStats};
