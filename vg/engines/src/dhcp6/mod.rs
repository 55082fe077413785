//! DHCPv6 server engine (I/O-free), one instance per home (RFC 8415; DNS options RFC 3646).
//!
//! The twin of [`crate::dhcp`], in the same shape: [`HomeServer`] holds one home's
//! [`Dhcp6Config`] and bindings; [`HomeServer::handle_bytes`] takes a client's DHCPv6
//! message with where it came from ([`Peer`]: Ethernet source and link-local address) and
//! returns an [`Outcome`] (store changes, events, the reply) or a [`DropReason`] to count.
//! [`Homes`] keys the servers by home id. Sockets, frames, timers, the store and the fast
//! path are the caller's:
//!
//! ```text
//!   punted frame -> LSL decap -> IPv6/UDP to ff02::1:2 port 547 -> payload
//!        --handle_bytes(now, peer)--> Outcome
//!        1. store.apply(outcome.persist)     (durable before the client hears of it)
//!        2. events -> Event::fast_path_change: hosts (IA_NA), routes via link-local (IA_PD)
//!        3. reply.payload -> UDP 547 -> 546, IPv6 gateway link-local -> reply.dst,
//!           Ethernet -> reply.dst_mac -> LSL encap
//!   timer at next_deadline() --expire(now)--> Outcome (same order)
//! ```
//!
//! What is served (RFC 8415 section 18.3):
//! - Solicit -> Advertise (Preference 255; nothing reserved); Solicit with Rapid Commit ->
//!   Reply with committed bindings, when the home allows it (section 18.3.1). Request ->
//!   Reply (NotOnLink for an IA_NA listing an address off the LAN). Renew, Rebind -> the IA's lease extended and other listed leases zeroed;
//!   NoBinding for an IA the server does not know (with lifetimes 0 for listed leases not
//!   appropriate for the link, e.g. after renumbering). Release -> remembered for the
//!   IA; Decline -> the address quarantined; Confirm -> Success or NotOnLink against the LAN
//!   /64 (no reply without addresses); Information-Request -> DNS servers and search list.
//! - IA_NA: one address per IA from a range of interface identifiers of the LAN /64,
//!   searched from a hash of (DUID, IAID) so addresses are stable and not sequential. IA_PD:
//!   one prefix of `pd_len` per IA from the home's delegated prefix, never the part holding
//!   the LAN /64. IA_NA and IA_PD in one message, several of each; IA_TA is not served.
//! - Sticky: an IA gets back the lease it held after expiry or release, as long as no other
//!   IA needed it (remembered leases are reused longest-unused first, only when nothing is
//!   free). Bindings are keyed by (DUID, kind, IAID) and expire at their valid lifetime.
//! - A DUID holds at most `max_leases_per_client` bound IAs of each kind; the home's slow-path
//!   rate limit (vgd's) covers DHCPv6 messages as it does DHCPv4 ones.
//! - Server-ID rules of RFC 8415 section 16: Request, Renew, Release and Decline must carry
//!   ours; Solicit, Confirm and Rebind must carry none; an Information-Request may carry
//!   ours. Anything else is dropped ([`DropReason`]).
//! - Not served: relayed messages (Relay-Forward: the home LAN is directly attached over
//!   its LSL, so a relay means misconfiguration or spoofing; dropped as
//!   [`DropReason::Relayed`]), Reconfigure, authentication, temporary addresses, and the
//!   Server Unicast option (clients always multicast, so UseMulticast is never needed).
//! - Only messages sent to All_DHCP_Relay_Agents_and_Servers (ff02::1:2) are handed over;
//!   the caller drops unicast ones. RFC 8415 section 16 requires it for Solicit, Confirm,
//!   Rebind and Information-request, and a client sends nothing else by unicast to a
//!   server that never offered Server Unicast (section 21.12).
//! - Time is UNIX seconds passed in by the caller; the engine never reads a clock.
//!
//! The wire format is dhcproto's v6 module; [`decode`] screens the bytes first (see its
//! module for the dhcproto limits it works around). No input panics.
//!
//! `examples/dhcp6_responder.rs` runs the engine on a plain UDP socket; with it ISC dhclient
//! and dhcpcd were served whole sessions (`tests/fixtures/interop.sh`), which the tests
//! replay.

mod bindings;
mod config;
mod decode;
mod encode;
mod multi;
mod outcome;
mod server;
mod store;
mod types;

#[cfg(test)]
mod tests;

pub use config::{
    ConfigError, DEFAULT_DECLINE_QUARANTINE_SECS, DEFAULT_IID_END, DEFAULT_IID_START,
    DEFAULT_MAX_LEASES_PER_CLIENT, DEFAULT_PD_LEN, DEFAULT_PREFERRED_SECS, DEFAULT_T1_SECS,
    DEFAULT_T2_SECS, DEFAULT_VALID_SECS, Dhcp6Config, Dhcp6Settings, MAX_DECLINE_QUARANTINE_SECS,
    MAX_DNS_SERVERS, MAX_LEASES_PER_CLIENT, MAX_RANGE, MAX_SEARCH_DOMAINS, MAX_VALID_SECS,
    MIN_VALID_SECS,
};
pub use decode::{
    DropReason, HEADER_LEN, MAX_DUID_LEN, MAX_IAS_PER_KIND, MAX_LEASES_PER_IA, MAX_MESSAGE_LEN,
    MIN_DUID_LEN, decode,
};
pub use encode::PREFERENCE;
pub use multi::Homes;
pub use outcome::{
    CLIENT_PORT, Committed, Event, FastPathChange, Outcome, Reply, SERVER_PORT, Usage,
};
pub use server::HomeServer;
pub use store::{BindingRecord, BindingState, BindingStore, MemoryStore, StoreError, StoreOp};
pub use types::{Duid, IaKind, Lease, Peer};
