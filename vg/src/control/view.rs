//! What the API shows of the control plane's state: a home as written with its source and
//! its NAT, its hosts, its forwards and leases, the pool. Reads only.

use std::net::Ipv4Addr;

use nerg_abi::{SubscriberId, host_flags};
use serde::Serialize;

use super::{Control, ControlError, Entry, host_key, nsub};
use crate::{
    config::{PortForwardFile, SubscriberFile},
    dhcp::LeaseRecord,
    nat,
    store::Source,
};

/// A home as the API shows it: as written, plus where it came from and what it got.
#[derive(Clone, Debug, Serialize)]
pub struct SubscriberView {
    /// The home as written.
    #[serde(flatten)]
    pub subscriber: SubscriberFile,
    /// `config` or `api`.
    pub source: Source,
    /// The TCP MSS clamp in force (0 = off).
    pub tcp_mss_effective: u16,
    /// Its NAT assignment, when NAT is on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nat_assignment: Option<NatAssignmentView>,
    /// Its IPv6 prefix, when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipv6_assignment: Option<PrefixView>,
}

/// A home's IPv6 prefix.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct PrefixView {
    /// The delegated prefix.
    pub prefix: ipnet::Ipv6Net,
    /// Its first /64: the home's LAN.
    pub lan: ipnet::Ipv6Net,
    /// Assigned at (UNIX seconds).
    pub since: u64,
}

/// The IPv6 prefix pools.
#[derive(Clone, Debug, Serialize)]
pub struct PrefixPoolView {
    /// The pools.
    pub pools: Vec<ipnet::Ipv6Net>,
    /// A home's prefix length unless it says otherwise.
    pub delegated_length: u8,
    /// Homes with a prefix.
    pub assigned: usize,
    /// Prefixes in hold-down.
    pub held: usize,
    /// Prefixes of the default length the pools hold.
    pub capacity: f64,
}

/// A home's public address and port blocks.
#[derive(Clone, Debug, Serialize)]
pub struct NatAssignmentView {
    /// The subscriber.
    pub subscriber: u32,
    /// Its LSL.
    pub lsl: String,
    /// Its public address.
    pub public_ip: Ipv4Addr,
    /// Its blocks.
    pub blocks: Vec<BlockView>,
}

/// One port block.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct BlockView {
    /// First port.
    pub first_port: u16,
    /// Last port.
    pub last_port: u16,
    /// Allocated at (UNIX seconds).
    pub since: u64,
}

/// A host of a home, from the fast path's host table.
#[derive(Clone, Debug, Serialize)]
pub struct HostView {
    /// Its address.
    pub ip: Ipv4Addr,
    /// Its MAC.
    pub mac: String,
    /// `static` or `leased`.
    pub kind: &'static str,
}

/// Pool usage per public address.
#[derive(Clone, Debug, Serialize)]
pub struct PoolView {
    /// Totals.
    pub stats: nat::PoolStats,
    /// Per address.
    pub addresses: Vec<nat::AddressUsage>,
}

fn mac_text(m: [u8; 6]) -> String {
    format!(
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        m[0], m[1], m[2], m[3], m[4], m[5]
    )
}

impl Control {
    /// One home.
    pub fn get(&self, id: SubscriberId) -> Result<SubscriberView, ControlError> {
        let e = self
            .entry(id)
            .ok_or_else(|| ControlError::NotFound(format!("no subscriber {id}")))?;
        Ok(self.view(&e))
    }

    fn view(&self, e: &Entry<'_>) -> SubscriberView {
        SubscriberView {
            subscriber: e.file.clone(),
            source: e.source,
            tcp_mss_effective: e.sub.tcp_mss,
            nat_assignment: self.nat_view(e.sub.id),
            ipv6_assignment: self.prefix(e.sub.id).map(|a| PrefixView {
                prefix: a.prefix,
                lan: a.lan(),
                since: a.since.0,
            }),
        }
    }

    fn nat_view(&self, id: SubscriberId) -> Option<NatAssignmentView> {
        let a = self.alloc.as_ref()?.assignment(nsub(id))?;
        let size = self.config.nat.as_ref()?.block_size();
        let since = self.since.get(&id);
        Some(NatAssignmentView {
            subscriber: id,
            lsl: self.config.subscribers.get(&id)?.lsl.to_string(),
            public_ip: a.address,
            blocks: a
                .blocks
                .iter()
                .map(|&p| BlockView {
                    first_port: p,
                    last_port: p.saturating_add(size - 1),
                    since: since.and_then(|s| s.get(&p)).map_or(0, |t| t.0),
                })
                .collect(),
        })
    }

    /// Every home, by id.
    pub fn list(&self) -> Vec<SubscriberView> {
        self.entries().map(|e| self.view(&e)).collect()
    }

    /// Number of homes.
    pub fn len(&self) -> usize {
        self.homes.len()
    }

    /// True without homes.
    pub fn is_empty(&self) -> bool {
        self.homes.is_empty()
    }

    /// A home's port forwards.
    pub fn forwards(&self, id: SubscriberId) -> Result<Vec<PortForwardFile>, ControlError> {
        Ok(self
            .config
            .files
            .get(&id)
            .ok_or_else(|| ControlError::NotFound(format!("no subscriber {id}")))?
            .port_forwards
            .clone())
    }

    /// A home's hosts, from the fast path's host table: its static hosts and the addresses
    /// of its lease records, each looked up (the cost follows the home, not the table).
    pub fn hosts(&self, id: SubscriberId) -> Result<Vec<HostView>, ControlError> {
        let Some(e) = self.entry(id) else {
            return Err(ControlError::NotFound(format!("no subscriber {id}")));
        };
        let Some(maps) = &self.maps else {
            return Ok(Vec::new());
        };
        let mut candidates: std::collections::BTreeSet<Ipv4Addr> =
            e.sub.hosts.keys().copied().collect();
        if let Some(slow) = &self.slow {
            candidates.extend(
                slow.leases(id)
                    .map_err(ControlError::Conflict)?
                    .iter()
                    .map(|l| l.ip),
            );
        }
        let mut out = Vec::new();
        for ip in candidates {
            if let Some(h) = maps.host(&host_key(id, ip))? {
                out.push(HostView {
                    ip,
                    mac: mac_text(h.mac),
                    kind: if h.flags & host_flags::STATIC != 0 {
                        "static"
                    } else {
                        "leased"
                    },
                });
            }
        }
        Ok(out)
    }

    /// A home's leases.
    pub fn leases(&self, id: SubscriberId) -> Result<Vec<LeaseRecord>, ControlError> {
        if !self.homes.contains_key(&id) {
            return Err(ControlError::NotFound(format!("no subscriber {id}")));
        }
        match &self.slow {
            Some(slow) => slow.leases(id).map_err(ControlError::Conflict),
            None => Ok(Vec::new()),
        }
    }

    /// Bound leases over all homes.
    pub fn leases_in_use(&self) -> usize {
        self.slow.as_ref().map_or(0, |s| s.leases_in_use())
    }

    /// Every home's NAT assignment.
    pub fn nat_blocks(&self) -> Vec<NatAssignmentView> {
        self.homes
            .keys()
            .filter_map(|&id| self.nat_view(id))
            .collect()
    }

    /// One home's NAT assignment.
    pub fn nat_blocks_of(&self, id: SubscriberId) -> Result<NatAssignmentView, ControlError> {
        if !self.homes.contains_key(&id) {
            return Err(ControlError::NotFound(format!("no subscriber {id}")));
        }
        self.nat_view(id)
            .ok_or_else(|| ControlError::NotFound(format!("subscriber {id} has no NAT blocks")))
    }

    /// The IPv6 pools' usage, when IPv6 is on.
    pub fn prefix_pool_view(&self) -> Option<PrefixPoolView> {
        let (pool, cfg) = (self.prefix_pool()?, self.config.ipv6.as_ref()?);
        let stats = pool.stats();
        Some(PrefixPoolView {
            pools: cfg.pools().to_vec(),
            delegated_length: cfg.delegated_length(),
            assigned: stats.assigned,
            held: stats.held,
            capacity: stats.capacity,
        })
    }

    /// Pool usage.
    pub fn pool(&self) -> Option<PoolView> {
        let alloc = self.alloc.as_ref()?;
        let nat = self.config.nat.as_ref()?;
        Some(PoolView {
            stats: alloc.stats(),
            addresses: nat
                .pool()
                .addresses()
                .iter()
                .filter_map(|&ip| alloc.address_usage(ip))
                .collect(),
        })
    }
}
