//! The control plane's map writes as data. What a home's creation, change or removal must
//! write into the fast path's maps is computed from the homes alone ([`for_new`],
//! [`for_update`], [`for_delete`]), in the order that keeps every frame consistent, and
//! applied afterwards ([`apply`]). Every such decision is unit-tested here, without root or
//! eBPF.
//!
//! The orders, and why:
//! - a new home: its slot, public address, hosts and forwards first, its LSL key last: a
//!   frame never finds an LSL whose slot is empty;
//! - a changed LSL: the new key first, then the slot, then the old key goes: no frame of the
//!   home is lost, and the old tags stop at once. Another S-tag TPID on the same VIDs is the
//!   same key: only the slot changes;
//! - a removed home: its LSL key first (its traffic stops there), then its slot, hosts and
//!   NAT mappings;
//! - at start ([`for_restart`], over what the maps of the vgd before hold): LSL entries no
//!   home has (or another home's now) go first, then every home is written as a new one, then
//!   what no home has any more goes: hosts, slots, public addresses.
//!
//! IPv6 ([`v6_lan_change`], [`v6_for_restart`]): a home's LAN /64 entry in the prefix trie
//! is written before its slot says `IPV6` (a frame never finds the flag without its prefix)
//! and removed after the slot no longer says it, or after its new LAN's entry and slot are
//! in when the prefix moved. The control plane owns the LAN entries and the flag; the slow
//! path owns the neighbour entries and the delegated prefixes (DHCPv6-PD) it writes. At
//! start, entries no home owns any more go first (a home's new prefix is never refused for
//! an old owner's entry), then every LAN is written, and the prefixes' span is set last.

use std::{
    collections::{BTreeSet, HashMap},
    net::{Ipv4Addr, Ipv6Addr},
};

use ipnet::Ipv6Net;
use lsl::LslId;
use nerg_abi::{
    Host, HostKey, PublicRange, SubscriberId, V6Neigh, V6Prefix, host_flags, v6_prefix_kind,
};

use super::{
    ControlError, host_key, static_err, static_host, static_mapping, tables::FastPathTables,
};
use crate::{
    config::{PortForward, SubscriberConfig},
    fastpath::{
        maps::LslClaimError,
        reconcile::{LslKey, ReconcileReport, ip_raw, lsl_key},
        v6::{V6PrefixError, prefix_entry},
    },
};

/// One write into the fast path's maps for one home.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MapWrite {
    /// Give the home its LSL's table entry; another home's entry is never replaced.
    ClaimLsl {
        /// The home.
        home: SubscriberId,
        /// Its LSL.
        lsl: LslId,
    },
    /// Remove the LSL's table entry, if it still is the home's.
    ReleaseLsl {
        /// The home.
        home: SubscriberId,
        /// The LSL it had.
        lsl: LslId,
    },
    /// Write the home's slot.
    Slot {
        /// The home.
        home: SubscriberId,
        /// What the fast path reads of it.
        record: nerg_abi::Subscriber,
    },
    /// Empty the home's slot and zero its traffic counters.
    RemoveSlot {
        /// The home.
        home: SubscriberId,
    },
    /// A public address the core side translates (the first home on it).
    PublicIp(Ipv4Addr),
    /// A static host of the home.
    Host {
        /// The home.
        home: SubscriberId,
        /// Its address.
        ip: Ipv4Addr,
        /// Its MAC.
        mac: [u8; 6],
    },
    /// A host the home no longer has (static, or leased).
    RemoveHost {
        /// The home.
        home: SubscriberId,
        /// Its address.
        ip: Ipv4Addr,
    },
    /// A port forward's static mapping pair.
    Forward {
        /// The home.
        home: SubscriberId,
        /// The home's public address.
        public: Ipv4Addr,
        /// The forward.
        forward: PortForward,
    },
    /// A port forward the home no longer has.
    RemoveForward {
        /// The home.
        home: SubscriberId,
        /// The home's public address.
        public: Ipv4Addr,
        /// The forward.
        forward: PortForward,
    },
    /// End the home's NAT mappings (sessions and forwards) inside these port ranges of
    /// `public`: its blocks went, or were re-allocated.
    EndNat {
        /// The home.
        home: SubscriberId,
        /// The public address of the blocks.
        public: Ipv4Addr,
        /// First and last port of each block.
        blocks: Vec<(u16, u16)>,
    },
    /// Remove an LSL entry found in the maps at start, if it still points to `owner`: no
    /// home has that key now, or another home has it.
    DropLsl {
        /// The entry's key.
        key: LslKey,
        /// The home it pointed to.
        owner: SubscriberId,
    },
    /// A public address the core side no longer translates.
    RemovePublicIp(Ipv4Addr),
    /// The exact span of the public addresses.
    PublicRange(PublicRange),
    /// The home's LAN /64 in the IPv6 prefix trie.
    V6Lan {
        /// The home.
        home: SubscriberId,
        /// Its LAN.
        lan: Ipv6Net,
    },
    /// Remove an IPv6 prefix entry, if it is the home's.
    RemoveV6Prefix {
        /// The home.
        home: SubscriberId,
        /// The prefix.
        prefix: Ipv6Net,
    },
    /// Remove an IPv6 neighbour entry found at start that no home's LAN holds.
    RemoveNeighbour {
        /// The home.
        home: SubscriberId,
        /// The address.
        addr: Ipv6Addr,
    },
    /// Set the span of the homes' prefixes exactly.
    V6Range,
}

/// A home's NAT as the maps hold it: its public address and its blocks' port ranges.
pub type NatRanges = (Ipv4Addr, Vec<(u16, u16)>);

/// The writes for a new home `sub` with fast-path record `record`. `new_public_ip`: the
/// home is the first on its public address; `public`: its public address, if it has NAT.
pub fn for_new(
    sub: &SubscriberConfig,
    record: nerg_abi::Subscriber,
    new_public_ip: bool,
    public: Option<Ipv4Addr>,
) -> Vec<MapWrite> {
    let home = sub.id;
    let mut writes = vec![MapWrite::Slot { home, record }];
    if new_public_ip {
        writes.push(MapWrite::PublicIp(ip_of(record.public_ip)));
    }
    writes.extend(
        sub.hosts
            .iter()
            .map(|(&ip, &mac)| MapWrite::Host { home, ip, mac }),
    );
    if let Some(public) = public {
        writes.extend(
            sub.port_forwards
                .values()
                .map(|&forward| MapWrite::Forward {
                    home,
                    public,
                    forward,
                }),
        );
    }
    writes.push(MapWrite::ClaimLsl { home, lsl: sub.lsl });
    writes
}

/// The writes that turn home `old` into `sub` (the same id) with record `record`.
/// `realloc`: its NAT was re-allocated (its sessions and forwards on `old_nat` end);
/// `ifindex`: the access interface, which the LSL keys name.
pub fn for_update(
    old: &SubscriberConfig,
    sub: &SubscriberConfig,
    record: nerg_abi::Subscriber,
    new_public_ip: bool,
    public: Option<Ipv4Addr>,
    realloc: Option<Option<NatRanges>>,
    ifindex: u32,
) -> Vec<MapWrite> {
    let home = sub.id;
    let new_key = lsl_key(&sub.lsl, ifindex) != lsl_key(&old.lsl, ifindex);
    let mut writes = Vec::new();
    if new_key {
        writes.push(MapWrite::ClaimLsl { home, lsl: sub.lsl });
    }
    writes.push(MapWrite::Slot { home, record });
    if new_public_ip {
        writes.push(MapWrite::PublicIp(ip_of(record.public_ip)));
    }
    if new_key {
        writes.push(MapWrite::ReleaseLsl { home, lsl: old.lsl });
    }
    for &ip in old.hosts.keys() {
        if !sub.hosts.contains_key(&ip) {
            writes.push(MapWrite::RemoveHost { home, ip });
        }
    }
    for (&ip, &mac) in &sub.hosts {
        if old.hosts.get(&ip) != Some(&mac) {
            writes.push(MapWrite::Host { home, ip, mac });
        }
    }
    match (&realloc, public) {
        // Its sessions and forwards lived on the old blocks: they end.
        (Some(old_nat), _) => {
            if let Some((public, blocks)) = old_nat {
                writes.push(MapWrite::EndNat {
                    home,
                    public: *public,
                    blocks: blocks.clone(),
                });
            }
        }
        (None, Some(public)) => {
            for (k, &forward) in &old.port_forwards {
                if sub.port_forwards.get(k) != Some(&forward) {
                    writes.push(MapWrite::RemoveForward {
                        home,
                        public,
                        forward,
                    });
                }
            }
        }
        (None, None) => {}
    }
    if let Some(public) = public {
        for (k, &forward) in &sub.port_forwards {
            if realloc.is_some() || old.port_forwards.get(k) != Some(&forward) {
                writes.push(MapWrite::Forward {
                    home,
                    public,
                    forward,
                });
            }
        }
    }
    writes
}

/// The writes that remove home `sub`: `leased`, the addresses leased in it; `nat`, where its
/// NAT mappings live.
pub fn for_delete(
    sub: &SubscriberConfig,
    leased: &[Ipv4Addr],
    nat: Option<NatRanges>,
) -> Vec<MapWrite> {
    let home = sub.id;
    let mut writes = vec![
        MapWrite::ReleaseLsl { home, lsl: sub.lsl },
        MapWrite::RemoveSlot { home },
    ];
    writes.extend(
        leased
            .iter()
            .chain(sub.hosts.keys())
            .map(|&ip| MapWrite::RemoveHost { home, ip }),
    );
    if let Some((public, blocks)) = nat {
        writes.push(MapWrite::EndNat {
            home,
            public,
            blocks,
        });
    }
    writes
}

/// The IPv6 writes of home `home` whose LAN goes from `old` to `new`: those that come
/// before its slot is written (the new LAN's entry) and those after (the old one's removal).
pub fn v6_lan_change(
    home: SubscriberId,
    old: Option<Ipv6Net>,
    new: Option<Ipv6Net>,
) -> (Vec<MapWrite>, Vec<MapWrite>) {
    if old == new {
        return (Vec::new(), Vec::new());
    }
    let before = new.map(|lan| MapWrite::V6Lan { home, lan });
    let after = old.map(|prefix| MapWrite::RemoveV6Prefix { home, prefix });
    (before.into_iter().collect(), after.into_iter().collect())
}

/// What the maps hold at start, as far as a reconcile compares it with the homes.
#[derive(Clone, Debug, Default)]
pub struct Current {
    /// Every LSL entry and its home.
    pub lsls: Vec<(LslKey, SubscriberId)>,
    /// Every host entry.
    pub hosts: Vec<(HostKey, Host)>,
    /// Every public address (raw).
    pub public_ips: Vec<u32>,
    /// Every IPv6 prefix entry.
    pub v6_prefixes: Vec<(Ipv6Net, V6Prefix)>,
    /// Every IPv6 neighbour entry.
    pub neighbours: Vec<(SubscriberId, Ipv6Addr, V6Neigh)>,
}

impl Current {
    /// Reads it from `tables`.
    pub fn read(tables: &dyn FastPathTables) -> Self {
        Self {
            lsls: tables.lsl_entries(),
            hosts: tables.host_entries(),
            public_ips: tables.public_ips(),
            v6_prefixes: tables.v6_prefix_entries(),
            neighbours: tables.neighbour_entries(),
        }
    }
}

/// A home's IPv6 as the start-up reconcile sees it: its delegated prefix and its LAN.
pub type HomeV6 = (Ipv6Net, Ipv6Net);

/// The IPv6 writes at start, in two parts: before every home is written (entries no home
/// owns any more go: LAN entries that are not a home's LAN now, delegated prefixes outside
/// their home's prefix, neighbours outside their home's LAN; then every home's LAN) and
/// after (the span of the prefixes, exactly).
pub fn v6_for_restart(
    homes: &HashMap<SubscriberId, HomeV6>,
    current: &Current,
) -> (Vec<MapWrite>, Vec<MapWrite>) {
    let mut before = Vec::new();
    for (prefix, entry) in &current.v6_prefixes {
        let home = entry.sub;
        let keep = homes
            .get(&home)
            .is_some_and(|(delegated, lan)| match entry.kind {
                v6_prefix_kind::LAN => lan == prefix,
                _ => delegated.contains(prefix) && !lan.contains(prefix),
            });
        if !keep {
            before.push(MapWrite::RemoveV6Prefix {
                home,
                prefix: *prefix,
            });
        }
    }
    for &(home, addr, _) in &current.neighbours {
        if !homes.get(&home).is_some_and(|(_, lan)| lan.contains(&addr)) {
            before.push(MapWrite::RemoveNeighbour { home, addr });
        }
    }
    let mut lans: Vec<(SubscriberId, Ipv6Net)> =
        homes.iter().map(|(&home, &(_, lan))| (home, lan)).collect();
    lans.sort_unstable();
    before.extend(
        lans.into_iter()
            .map(|(home, lan)| MapWrite::V6Lan { home, lan }),
    );
    (before, vec![MapWrite::V6Range])
}

/// The writes that make maps holding `current` match `homes` (each with its fast-path
/// record) on access interface `ifindex`, with `public_ips` the addresses the core side
/// translates. Idempotent: over maps that already match, it rewrites each home's slot,
/// hosts and key (no change) and removes nothing. Leased hosts of remaining homes stay (the
/// responder restores its leases); port forwards are written apart (their stale ones are
/// found by a scan of the NAT table).
pub fn for_restart(
    homes: &[(&SubscriberConfig, nerg_abi::Subscriber)],
    public_ips: &BTreeSet<Ipv4Addr>,
    current: &Current,
    ifindex: u32,
) -> Vec<MapWrite> {
    let wanted: HashMap<LslKey, SubscriberId> = homes
        .iter()
        .map(|(sub, _)| (lsl_key(&sub.lsl, ifindex), sub.id))
        .collect();
    let by_id: HashMap<SubscriberId, &SubscriberConfig> =
        homes.iter().map(|(sub, _)| (sub.id, *sub)).collect();
    let mut writes = Vec::new();
    let mut orphans = BTreeSet::new();
    // Keys no home has, or another home's now: their traffic stops first.
    for &(key, owner) in &current.lsls {
        if wanted.get(&key) != Some(&owner) {
            writes.push(MapWrite::DropLsl { key, owner });
            orphans.insert(owner);
        }
    }
    for (sub, record) in homes {
        writes.extend(for_new(sub, *record, false, None));
    }
    // Hosts of homes that are gone, and static hosts a home no longer lists.
    for (key, host) in &current.hosts {
        let ip = ip_of(key.ip);
        let keep = by_id
            .get(&key.sub)
            .is_some_and(|sub| host.flags & host_flags::STATIC == 0 || sub.hosts.contains_key(&ip));
        if !keep {
            writes.push(MapWrite::RemoveHost { home: key.sub, ip });
            orphans.insert(key.sub);
        }
    }
    writes.extend(
        orphans
            .into_iter()
            .filter(|id| !by_id.contains_key(id))
            .map(|home| MapWrite::RemoveSlot { home }),
    );
    let had: BTreeSet<Ipv4Addr> = current.public_ips.iter().map(|&raw| ip_of(raw)).collect();
    writes.extend(
        public_ips
            .difference(&had)
            .map(|&ip| MapWrite::PublicIp(ip)),
    );
    writes.extend(
        had.difference(public_ips)
            .map(|&ip| MapWrite::RemovePublicIp(ip)),
    );
    let range = public_ips
        .iter()
        .fold(PublicRange::default(), |r, ip| r.with(u32::from(*ip)));
    writes.push(MapWrite::PublicRange(range));
    writes
}

/// What a start-up plan changes, counted.
pub fn report(writes: &[MapWrite]) -> ReconcileReport {
    let mut r = ReconcileReport::default();
    for w in writes {
        match w {
            MapWrite::Slot { .. } => r.subscribers += 1,
            MapWrite::RemoveSlot { .. } => r.removed_subscribers += 1,
            MapWrite::DropLsl { .. } => r.removed_lsls += 1,
            MapWrite::Host { .. } => r.hosts += 1,
            MapWrite::RemoveHost { .. } => r.removed_hosts += 1,
            _ => {}
        }
    }
    r
}

/// Applies `writes` to the fast path's tables in order; the first failure stops it.
pub fn apply(
    maps: &mut dyn FastPathTables,
    writes: &[MapWrite],
    ifindex: u32,
) -> Result<(), ControlError> {
    for write in writes {
        match write {
            MapWrite::ClaimLsl { home, lsl } => maps
                .claim_lsl(&lsl_key(lsl, ifindex), *home)
                .map_err(|e| match e {
                    LslClaimError::Taken { owner } => {
                        tracing::error!(sub = home, %lsl, owner, "LSL entry held by another home: left to it");
                        ControlError::Conflict(format!(
                            "LSL {lsl}: the fast path's entry is subscriber {owner}'s and was left to it"
                        ))
                    }
                    LslClaimError::Map(e) => ControlError::FastPath(e),
                })?,
            MapWrite::ReleaseLsl { home, lsl } => {
                maps.release_lsl(&lsl_key(lsl, ifindex), *home)?;
            }
            MapWrite::Slot { home, record } => maps.set_subscriber(*home, record)?,
            MapWrite::RemoveSlot { home } => maps.remove_subscriber(*home)?,
            MapWrite::PublicIp(ip) => maps.insert_public_ip(ip_raw(*ip))?,
            MapWrite::Host { home, ip, mac } => {
                maps.insert_host(host_key(*home, *ip), static_host(*mac))?;
            }
            MapWrite::RemoveHost { home, ip } => maps.remove_host(&host_key(*home, *ip))?,
            MapWrite::Forward {
                home,
                public,
                forward,
            } => maps
                .insert_static(&static_mapping(*home, *public, forward))
                .map_err(static_err)?,
            MapWrite::RemoveForward {
                home,
                public,
                forward,
            } => maps.remove_static(&static_mapping(*home, *public, forward))?,
            MapWrite::EndNat {
                home,
                public,
                blocks,
            } => {
                maps.remove_nat_in_blocks(*home, *public, blocks)?;
            }
            MapWrite::DropLsl { key, owner } => {
                maps.release_lsl(key, *owner)?;
            }
            MapWrite::RemovePublicIp(ip) => maps.remove_public_ip(ip_raw(*ip))?,
            MapWrite::PublicRange(range) => maps.set_public_range(*range)?,
            MapWrite::V6Lan { home, lan } => {
                // The gateway needs no global address on the LAN (vg_engines::nd).
                let entry = prefix_entry(*home, v6_prefix_kind::LAN, Ipv6Addr::UNSPECIFIED);
                maps.insert_v6_prefix(*lan, entry).map_err(|e| match e {
                    V6PrefixError::Taken { owner } => {
                        tracing::error!(sub = home, %lan, owner, "IPv6 prefix entry held by another home: left to it");
                        ControlError::Conflict(format!(
                            "IPv6 LAN {lan}: the fast path's entry is subscriber {owner}'s and was left to it"
                        ))
                    }
                    V6PrefixError::Map(e) => ControlError::FastPath(e),
                })?;
            }
            MapWrite::RemoveV6Prefix { home, prefix } => {
                maps.remove_v6_prefix(*prefix, *home)?;
            }
            MapWrite::RemoveNeighbour { home, addr } => {
                maps.remove_neighbour(*home, *addr)?;
            }
            MapWrite::V6Range => maps.recompute_v6_range()?,
        }
    }
    Ok(())
}

/// An address from the maps' raw form (network order in memory).
fn ip_of(raw: u32) -> Ipv4Addr {
    Ipv4Addr::from(raw.to_ne_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    /// Homes from a configuration snippet.
    fn homes(toml: &str) -> Vec<SubscriberConfig> {
        let nat = "[nat]\npool = [\"198.51.100.0/30\"]\nblock_size = 4032\n";
        Config::from_toml(&format!("{nat}{toml}"))
            .unwrap()
            .subscribers
            .into_values()
            .collect()
    }

    fn home(toml: &str) -> SubscriberConfig {
        homes(toml).remove(0)
    }

    const PUBLIC: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);
    const H10: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 10);
    const H11: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 11);

    fn record(public: Ipv4Addr) -> nerg_abi::Subscriber {
        nerg_abi::Subscriber {
            public_ip: ip_raw(public),
            ..nerg_abi::Subscriber::default()
        }
    }

    fn forward(public_port: u16, private_port: u16) -> PortForward {
        PortForward {
            proto: crate::config::Proto::Tcp,
            public_port,
            private_ip: H10,
            private_port,
        }
    }

    const HOME: &str = "[[subscriber]]\nid = 7\nlsl = \"qinq:10.107\"\n\
        hosts = [{ ip = \"192.168.1.10\", mac = \"02:00:00:00:00:10\" }]\n\
        port_forwards = [{ proto = \"tcp\", public_port = 1030, private_ip = \"192.168.1.10\", private_port = 22 }]\n";

    #[test]
    fn a_new_home_gets_its_lsl_key_last() {
        let sub = home(HOME);
        let writes = for_new(&sub, record(PUBLIC), true, Some(PUBLIC));
        assert_eq!(
            writes,
            vec![
                MapWrite::Slot {
                    home: 7,
                    record: record(PUBLIC)
                },
                MapWrite::PublicIp(PUBLIC),
                MapWrite::Host {
                    home: 7,
                    ip: H10,
                    mac: [2, 0, 0, 0, 0, 0x10]
                },
                MapWrite::Forward {
                    home: 7,
                    public: PUBLIC,
                    forward: forward(1030, 22)
                },
                MapWrite::ClaimLsl {
                    home: 7,
                    lsl: "qinq:10.107".parse().unwrap()
                },
            ]
        );
        // Not the first home on its address, and no NAT: neither address nor forwards.
        let writes = for_new(&sub, record(PUBLIC), false, None);
        assert!(
            !writes
                .iter()
                .any(|w| matches!(w, MapWrite::PublicIp(_) | MapWrite::Forward { .. }))
        );
    }

    #[test]
    fn a_new_lsl_is_claimed_before_the_slot_and_the_old_one_released_after() {
        let old = home(HOME);
        let new = home(&HOME.replace("qinq:10.107", "vlan:207"));
        let writes = for_update(&old, &new, record(PUBLIC), false, Some(PUBLIC), None, 3);
        assert_eq!(
            writes,
            vec![
                MapWrite::ClaimLsl {
                    home: 7,
                    lsl: "vlan:207".parse().unwrap()
                },
                MapWrite::Slot {
                    home: 7,
                    record: record(PUBLIC)
                },
                MapWrite::ReleaseLsl {
                    home: 7,
                    lsl: "qinq:10.107".parse().unwrap()
                },
            ],
            "nothing else changed: no host or forward is rewritten"
        );
        // Another S-tag TPID on the same VIDs is the same fast-path key: the slot alone.
        let tpid = home(&HOME.replace("qinq:10.107", "qinq-9100:10.107"));
        let writes = for_update(&old, &tpid, record(PUBLIC), false, Some(PUBLIC), None, 3);
        assert_eq!(
            writes,
            vec![MapWrite::Slot {
                home: 7,
                record: record(PUBLIC)
            }]
        );
    }

    #[test]
    fn changed_hosts_and_forwards_are_written_and_gone_ones_removed() {
        let old = home(HOME);
        let new = home(
            "[[subscriber]]\nid = 7\nlsl = \"qinq:10.107\"\n\
             hosts = [{ ip = \"192.168.1.11\", mac = \"02:00:00:00:00:11\" }]\n\
             port_forwards = [{ proto = \"tcp\", public_port = 1031, private_ip = \"192.168.1.10\", private_port = 22 }]\n",
        );
        let writes = for_update(&old, &new, record(PUBLIC), false, Some(PUBLIC), None, 3);
        assert_eq!(
            writes[1..],
            [
                MapWrite::RemoveHost { home: 7, ip: H10 },
                MapWrite::Host {
                    home: 7,
                    ip: H11,
                    mac: [2, 0, 0, 0, 0, 0x11]
                },
                MapWrite::RemoveForward {
                    home: 7,
                    public: PUBLIC,
                    forward: forward(1030, 22)
                },
                MapWrite::Forward {
                    home: 7,
                    public: PUBLIC,
                    forward: forward(1031, 22)
                },
            ]
        );
    }

    #[test]
    fn a_reallocated_home_ends_its_old_nat_and_rewrites_every_forward() {
        let old = home(HOME);
        let other = Ipv4Addr::new(198, 51, 100, 2);
        let old_nat = Some((PUBLIC, vec![(1024, 5055)]));
        let writes = for_update(
            &old,
            &old,
            record(other),
            true,
            Some(other),
            Some(old_nat),
            3,
        );
        assert_eq!(
            writes,
            vec![
                MapWrite::Slot {
                    home: 7,
                    record: record(other)
                },
                MapWrite::PublicIp(other),
                MapWrite::EndNat {
                    home: 7,
                    public: PUBLIC,
                    blocks: vec![(1024, 5055)]
                },
                MapWrite::Forward {
                    home: 7,
                    public: other,
                    forward: forward(1030, 22)
                },
            ]
        );
    }

    #[test]
    fn a_removed_home_stops_at_its_lsl_first_and_leaves_nothing() {
        let sub = home(HOME);
        let writes = for_delete(&sub, &[H11], Some((PUBLIC, vec![(1024, 5055)])));
        assert_eq!(
            writes,
            vec![
                MapWrite::ReleaseLsl {
                    home: 7,
                    lsl: "qinq:10.107".parse().unwrap()
                },
                MapWrite::RemoveSlot { home: 7 },
                MapWrite::RemoveHost { home: 7, ip: H11 },
                MapWrite::RemoveHost { home: 7, ip: H10 },
                MapWrite::EndNat {
                    home: 7,
                    public: PUBLIC,
                    blocks: vec![(1024, 5055)]
                },
            ]
        );
        // Without NAT and leases: the key, the slot, the static host.
        assert_eq!(for_delete(&sub, &[], None).len(), 3);
    }
}
