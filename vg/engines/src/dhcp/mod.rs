//! DHCPv4 server engine (I/O-free), one instance per home (RFC 2131, RFC 2132).
//!
//! Bytes in, actions out, in the style of boringtun and dora: [`HomeServer`] holds one home's
//! [`DhcpConfig`] and lease state; [`HomeServer::handle_bytes`] takes a client's DHCP message
//! and returns an [`Outcome`] (store changes, events, and the reply with where to send it) or
//! a [`DropReason`] to count. [`Homes`] keys the servers by home id. Sockets, frames, timers,
//! the store and the fast-path host table are the caller's:
//!
//! ```text
//!   punted frame -> LSL decap -> UDP payload --handle_bytes(now)--> Outcome
//!        1. store.apply(outcome.persist)      (durable before the client hears of it)
//!        2. events -> host table (Event::host_change), logs, metrics
//!        3. reply.payload -> UDP 67->reply.dst.port(), IPv4 src = gateway, dst/MAC = reply.dst
//!           (a relay's MAC: the request's link-layer source) -> LSL encap
//!   timer at next_deadline() --expire(now)--> Outcome (same order)
//! ```
//!
//! Policy in short:
//! - Identity is option 61 if sent, else `chaddr` ([`ClientId`]).
//! - DISCOVER offers, in this order: the MAC's reservation; the client's current or
//!   remembered address (sticky: expired and released leases are remembered per address until
//!   another client needs the address); its outstanding offer; the requested address (option
//!   50) if nobody is remembered on it; the lowest free address; the longest-unused remembered
//!   address. Nothing left -> no offer and [`Event::PoolExhausted`]. An offer holds its
//!   address for `offer_hold_secs`.
//! - REQUEST: SELECTING (server id = ours) is acknowledged for the offered address, or any
//!   address the client may have; server id of another server -> our offer is withdrawn,
//!   silence. INIT-REBOOT and RENEWING/REBINDING are acknowledged when the address is the
//!   client's (or free, and the client has no other address here), otherwise NAKed; this
//!   server is authoritative for the home's LAN.
//! - DECLINE quarantines the address; RELEASE keeps it remembered for the client; INFORM gets
//!   an ACK with options and no lease.
//! - Relayed messages (`giaddr` set) are dropped by default: the home LAN is directly
//!   attached over its LSL, so a relay usually means misconfiguration or spoofing. A home
//!   configured with `relayed = "serve"` ([`Relayed::Serve`]) answers them through the relay
//!   ([`Destination::Relay`]: unicast to `giaddr`, UDP port 67, `giaddr` kept in the reply),
//!   provided `giaddr` is a host of the home's own prefix other than the gateway; the home is
//!   still the one of the LSL, never chosen by `giaddr`, and leases are a direct client's.
//! - Time is UNIX seconds passed in by the caller ([`UnixTime`]); the engine never reads a
//!   clock.

pub(crate) mod config;
mod decode;
mod encode;
mod multi;
mod pool;
mod server;
mod store;
mod types;
mod vendor;

#[cfg(test)]
mod tests;

pub use config::{
    ConfigError, ConfigProblem, DEFAULT_DECLINE_QUARANTINE_SECS, DEFAULT_LEASE_SECS,
    DEFAULT_OFFER_HOLD_SECS, DEFAULT_PREFIX, DEFAULT_RANGE_END_OFFSET, DEFAULT_RANGE_START_OFFSET,
    DhcpConfig, DhcpConfigWire, MAX_DECLINE_QUARANTINE_SECS, MAX_DNS_SERVERS, MAX_LEASE_SECS,
    MAX_MTU, MAX_OFFER_HOLD_SECS, MAX_RANGE_ADDRESSES, MIN_LEASE_SECS, MIN_MTU, Relayed,
    Reservation, ReservationWire,
};
pub use decode::{
    BOOTP_HEADER_LEN, DropReason, MAGIC_COOKIE, MAX_HOSTNAME_LEN, MIN_MESSAGE_LEN, decode,
};
pub use encode::{BOOTP_MIN_LEN, MIN_MAX_MESSAGE_SIZE};
pub use multi::Homes;
pub use server::{
    CLIENT_PORT, Committed, Destination, Event, HomeServer, HostChange, IgnoreReason, NakReason,
    Outcome, PoolUsage, Reply, SERVER_PORT,
};
pub use store::{BoxError, LeaseRecord, LeaseState, LeaseStore, MemoryStore, StoreError, StoreOp};
pub(crate) use types::hex_bytes;
pub use types::{ClientId, HomeId, MacAddr, MacParseError, UnixTime};
pub use vendor::{StaticVendorOptions, VendorHook, VendorOptions, VendorQuery, ViVendorInfo};
