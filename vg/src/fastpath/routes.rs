//! Kernel routes vgd keeps for the fast path's sake.
//!
//! The homes' IPv6 prefixes come from the `[ipv6]` pools, and the fast path routes to the
//! parts of them a home uses (its LAN /64, the prefixes DHCPv6 delegated): the prefix trie.
//! A packet from the core to any other address of a pool misses the trie and is handed to
//! the kernel, whose default route points back to the core: it would loop there until its
//! hop limit ran out. An `unreachable` route for each pool makes the kernel drop it with an
//! ICMPv6 destination unreachable instead, as a router does for an unassigned prefix
//! (RFC 4443 §3.1, code 0: no route). The fast path's own routes are in its maps, so these
//! routes never decide anything it forwards.

use std::net::Ipv6Addr;

use anyhow::Context as _;
use ipnet::Ipv6Net;
use rtnetlink::{
    RouteMessageBuilder,
    packet_route::route::{RouteProtocol, RouteType},
};

/// Adds (or replaces) an `unreachable` route for each of `pools` in the main table of this
/// network namespace.
pub async fn unreachable(pools: &[Ipv6Net]) -> anyhow::Result<()> {
    let (connection, handle, _) = rtnetlink::new_connection().context("opening rtnetlink")?;
    let task = tokio::spawn(connection);
    let result = async {
        for pool in pools {
            let route = RouteMessageBuilder::<Ipv6Addr>::new()
                .destination_prefix(pool.network(), pool.prefix_len())
                .kind(RouteType::Unreachable)
                .protocol(RouteProtocol::Static)
                .build();
            handle
                .route()
                .add(route)
                .replace()
                .execute()
                .await
                .with_context(|| format!("ip -6 route replace unreachable {pool}"))?;
        }
        anyhow::Ok(())
    }
    .await;
    task.abort();
    result
}
