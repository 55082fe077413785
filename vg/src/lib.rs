//! The NERG virtual Gateway: `vgd` (the daemon) and `vgctl` (its CLI), around the XDP fast
//! path of `ebpf/vg-xdp` and the I/O-free engines of [`vg_engines`].
//!
//! # Modules
//! - [`fastpath`]: the embedded eBPF object, loading it with its maps pinned in bpffs and
//!   attaching it ([`fastpath::bpffs`], the pinned links), typed map access
//!   ([`fastpath::maps`]), a home's record and LSL key in the map ABI's terms and the fast
//!   path's settings ([`fastpath::reconcile`]), the counters, the NAT expiry sweep
//!   ([`fastpath::expiry`]), the route generation and the route watch ([`fastpath::fib`]).
//! - [`slowpath`]: the frames the fast path punts to vgd: the ring buffer reader and queue,
//!   the responder that answers them ([`slowpath::responder`]; the answers themselves are
//!   [`reply`](vg_engines::reply)'s), the AF_PACKET socket the replies leave through.
//! - [`control`]: the control plane's state and the one place that changes homes at run
//!   time: validate, commit to the store, then apply. What a change writes into the maps is
//!   data ([`control::plan`]: `for_new`, `for_update`, `for_delete`, `for_restart` over what
//!   the maps of the vgd before hold), applied through [`control::tables::FastPathTables`]
//!   (the pinned maps; a fake in the unit tests). [`api`] is the REST API over it, served by
//!   [`http`]'s bounded server.
//! - [`store`]: the embedded store (redb): homes, leases, NAT block assignments, IPv6
//!   prefixes.
//! - [`metrics`]: the Prometheus registry; [`blocklog`]: the NAT port-block log.
//! - [`config`], [`dhcp`], [`dhcp6`], [`ipv6`], [`nat`], [`qos`]: re-exported from
//!   [`vg_engines`] (the configuration model, the DHCP and DHCPv6 engines, the IPv6 prefix
//!   pools, the NAT allocator, the speed tiers).
//!
//! # A packet's path
//! ```text
//! upstream:   access iface -> vg_access (XDP): LSL -> home -> control traffic? --yes--> punt ring
//!               -> anti-spoofing (the flow's mapping, else the host table) -> NAT (new or
//!               found mapping) -> route (route cache, bpf_fib_lookup) -> core iface
//! downstream: core iface -> vg_core (XDP): public address? -> reverse mapping -> filtering
//!               -> NERG_DELIVERY + tail call -> vg_deliver: the home's LSL pushed -> access
//! ```
//! The control plane writes what those lookups find ([`control::plan`]): the homes, LSLs,
//! static hosts, port forwards and public addresses; the slow path the leased hosts;
//! [`fastpath::expiry`] removes idle mappings.
//!
//! # A DHCP message's path
//! ```text
//! DISCOVER from a home host -> vg_access punts it (with the home's id) -> slowpath::run drains
//!   the ring into the Queue -> the responder's thread takes a batch -> reply::answer
//!   (decapsulate, Answer::Dhcp) -> the home's dhcp::HomeServer::handle_bytes -> Outcome
//!   -> store commit of the batch's lease changes (one fsync) -> host table (PinnedHosts)
//!   -> the reply, encapsulated for the home's LSL -> packet_socket on the access iface
//! ```

pub mod api;
pub mod blocklog;
pub mod control;
pub mod fastpath;
pub mod http;
pub mod metrics;
pub mod slowpath;
pub mod store;

pub use vg_engines::{config, dhcp, dhcp6, ipv6, nat, qos};
