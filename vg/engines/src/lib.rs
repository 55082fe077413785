//! The vG's protocol engines: logic without I/O, in the style of boringtun and dora (messages
//! or bytes in, actions out). `vgd` wraps them in sockets, timers, the store and the eBPF
//! maps; here they build and test with stable Rust alone, and fuzz without the eBPF
//! toolchain.
//!
//! - [`config`]: the configuration model: the file's serde "wire" form and the validated
//!   runtime types (`Config`, `SubscriberConfig`), errors naming the key and value.
//! - [`dhcp`]: the DHCPv4 server engine, one per home (RFC 2131/2132), with its lease store
//!   behind a trait.
//! - [`dhcp6`]: the DHCPv6 server engine, one per home (RFC 8415, RFC 3646): IA_NA from the
//!   home's LAN /64, IA_PD from its delegated prefix, bindings behind a trait.
//! - [`frames6`]: the IPv6 frame operations the slow path does around [`nd`] and [`dhcp6`]
//!   (a DHCPv6 client message in a home's frame, the reply's UDP frame, forwarding a packet
//!   held for neighbour resolution).
//! - [`ipv6`]: the IPv6 prefix pools and each home's delegated prefix (sticky, held down
//!   after release), `[ipv6]` and a home's `ipv6 = { ... }`.
//! - [`nat`]: the public pool and the port-block allocator (RFC 6888/7422), the port
//!   selection the fast path mirrors, block events.
//! - [`nd`]: the vG as each home's IPv6 router: RAs, neighbour discovery, echo, ICMPv6
//!   errors, the bounded binding table (SAVI) and neighbour resolution (RFC 4861, 4443, 6620).
//! - [`qos`]: a home's speed tier (rate limits up and down) and the fast path's form of it.
//! - [`reply`]: the frames the vG answers as each home's gateway (ARP, ICMP echo, ICMP
//!   errors), built with the home's LSL encapsulation, and the per-home slow-path limiter.

pub mod config;
pub mod dhcp;
pub mod dhcp6;
pub mod frames6;
pub mod ipv6;
pub mod nat;
pub mod nd;
pub mod qos;
pub mod reply;
