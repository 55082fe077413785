//! Bringing the fast path's maps in line with the configuration: write what is configured,
//! remove what no longer is. Idempotent; a restarted vgd runs it over the maps it adopted,
//! so entries of homes deleted while it was down disappear and the others are untouched.

use std::collections::{BTreeSet, HashSet};

use aya::maps::{HashMap, MapData};
use lsl::{FastPathKey, LslId, Vid};
use nerg_abi::{
    Host, HostKey, PublicRange, SubscriberId, VlanLslKey, Vxlan6LslKey, VxlanLslKey, config_flags,
    host_flags, lsl_kind, map_names, stag_tpid, sub_flags,
};

use super::{FastPathError, maps::Maps};
use crate::{
    config::{Config, SubscriberConfig},
    nat::BlockAllocator,
};

/// The interfaces the fast path forwards between, as vgd found them at start.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Interfaces {
    /// Access interface index.
    pub access_ifindex: u32,
    /// Access interface MAC.
    pub access_mac: [u8; 6],
    /// Core interface index, when there is one.
    pub core_ifindex: Option<u32>,
}

/// What a reconcile pass changed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReconcileReport {
    /// Subscribers written.
    pub subscribers: usize,
    /// Subscribers cleared (configured before, not now).
    pub removed_subscribers: usize,
    /// LSL entries removed.
    pub removed_lsls: usize,
    /// Static hosts written.
    pub hosts: usize,
    /// Host entries removed.
    pub removed_hosts: usize,
}

/// The raw-byte form of an IPv4 address in the maps (network byte order in memory).
pub fn ip_raw(ip: std::net::Ipv4Addr) -> u32 {
    u32::from_ne_bytes(ip.octets())
}

/// A random non-zero seed from the kernel's CSPRNG.
fn random_seed() -> u32 {
    use std::io::Read as _;
    let mut b = [0u8; 4];
    let read = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut b));
    match (read, u32::from_ne_bytes(b)) {
        (Ok(()), 0) | (Err(_), _) => 0x9e37_79b9,
        (Ok(()), seed) => seed,
    }
}

/// The fast-path record of a configured home, without NAT (see [`apply_nat`]).
pub fn subscriber_record(sub: &SubscriberConfig) -> nerg_abi::Subscriber {
    let mut rec = nerg_abi::Subscriber {
        flags: sub_flags::ACTIVE,
        gw_mac: sub.gateway_mac,
        gw_ip: ip_raw(sub.gateway),
        tcp_mss: sub.tcp_mss,
        ..Default::default()
    };
    match sub.lsl {
        LslId::Vlan { s_tag: None, c_vid } => {
            rec.lsl_kind = lsl_kind::DOT1Q;
            rec.c_vid = c_vid.get();
        }
        LslId::Vlan {
            s_tag: Some(s),
            c_vid,
        } => {
            rec.lsl_kind = lsl_kind::QINQ;
            rec.s_tpid = s.tpid as u16;
            rec.s_vid = s.vid.get();
            rec.c_vid = c_vid.get();
        }
        LslId::Vxlan { vni, vtep } => {
            rec.vni = vni.get();
            match vtep {
                std::net::IpAddr::V4(v4) => {
                    rec.lsl_kind = lsl_kind::VXLAN4;
                    rec.remote_vtep = ip_raw(v4);
                }
                std::net::IpAddr::V6(v6) => {
                    rec.lsl_kind = lsl_kind::VXLAN6;
                    rec.remote_vtep6 = v6.octets();
                }
            }
        }
    }
    rec
}

/// Fills in a home's NAT: its public address and blocks, its session limit and filtering
/// (its own policy over the `[nat]` defaults).
pub fn apply_nat(
    rec: &mut nerg_abi::Subscriber,
    sub: &SubscriberConfig,
    nat: &crate::nat::NatConfig,
    ports: &crate::nat::SubscriberPorts,
) {
    rec.public_ip = ip_raw(ports.address());
    rec.blocks = nerg_abi::blocks_from(ports.firsts());
    rec.block_count = ports.firsts().len() as u32;
    rec.session_limit = sub.nat.session_limit.unwrap_or(nat.max_sessions());
    let filtering = sub.nat.filtering.unwrap_or(nat.filtering());
    if filtering == crate::nat::Filtering::AddressAndPortDependent {
        rec.flags |= sub_flags::FILTER_APDF;
    } else {
        rec.flags &= !sub_flags::FILTER_APDF;
    }
}

/// A home's key in one of the LSL tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LslKey {
    /// 802.1Q / QinQ.
    Vlan(VlanLslKey),
    /// VXLAN over IPv4.
    Vxlan(VxlanLslKey),
    /// VXLAN over IPv6.
    Vxlan6(Vxlan6LslKey),
}

/// The LSL table key of `lsl` on access interface `ifindex`: its
/// [fast-path key](LslId::fast_path_key) in the map ABI's terms.
pub fn lsl_key(lsl: &LslId, ifindex: u32) -> LslKey {
    match lsl.fast_path_key() {
        FastPathKey::Vlan { s_vid, c_vid } => LslKey::Vlan(VlanLslKey {
            ifindex,
            s_vid: s_vid.map_or(0, Vid::get),
            c_vid: c_vid.get(),
        }),
        FastPathKey::Vxlan {
            vni,
            vtep: std::net::IpAddr::V4(v4),
        } => LslKey::Vxlan(VxlanLslKey {
            vni: vni.get(),
            remote: ip_raw(v4),
        }),
        FastPathKey::Vxlan {
            vni,
            vtep: std::net::IpAddr::V6(v6),
        } => LslKey::Vxlan6(Vxlan6LslKey {
            vni: vni.get(),
            remote: v6.octets(),
        }),
    }
}

/// Removes the entries of `map` that `keep` rejects; returns them.
fn remove_stale<K: aya::Pod, V: aya::Pod>(
    map: &mut HashMap<&mut MapData, K, V>,
    name: &'static str,
    keep: impl Fn(&K, &V) -> bool,
) -> Result<Vec<(K, V)>, FastPathError> {
    // Collect first: deleting while iterating a BPF hash map can skip entries.
    let stale: Vec<(K, V)> = map
        .iter()
        .filter_map(Result::ok)
        .filter(|(k, v)| !keep(k, v))
        .collect();
    for (k, _) in &stale {
        map.remove(k)
            .map_err(|source| FastPathError::Map { name, source })?;
    }
    Ok(stale)
}

impl Maps<'_> {
    /// Makes the maps match `config` for the access interface `ifindex`.
    pub fn reconcile(
        &mut self,
        config: &Config,
        ifaces: &Interfaces,
        nat: Option<&BlockAllocator>,
    ) -> Result<ReconcileReport, FastPathError> {
        let ifindex = ifaces.access_ifindex;
        let mut report = ReconcileReport::default();
        let fp = &config.fastpath;
        let tpids = fp.stag_tpids.iter().fold(0u16, |acc, t| {
            acc | match t {
                lsl::wire::vlan::Tpid::STag => stag_tpid::AD,
                lsl::wire::vlan::Tpid::STagLegacy => stag_tpid::LEGACY_9100,
                lsl::wire::vlan::Tpid::CTag => stag_tpid::DOT1Q,
            }
        });

        // Subscribers first, then their LSLs: a frame never finds an LSL whose slot is empty.
        let mut vlan_keys = HashSet::new();
        let mut vxlan_keys = HashSet::new();
        let mut vxlan6_keys = HashSet::new();
        let mut public_ips = HashSet::new();
        for sub in config.subscribers.values() {
            let mut rec = subscriber_record(sub);
            if let (Some(alloc), Some(nat_cfg)) = (nat, config.nat.as_ref())
                && let Some(ports) = alloc.ports(crate::nat::SubscriberId(sub.id))
            {
                apply_nat(&mut rec, sub, nat_cfg, &ports);
                public_ips.insert(rec.public_ip);
            }
            self.set_subscriber(sub.id, &rec)?;
            report.subscribers += 1;
            match lsl_key(&sub.lsl, ifindex) {
                LslKey::Vlan(k) => {
                    self.insert_vlan_lsl(k, sub.id)?;
                    vlan_keys.insert(k);
                }
                LslKey::Vxlan(k) => {
                    self.insert_vxlan_lsl(k, sub.id)?;
                    vxlan_keys.insert(k);
                }
                LslKey::Vxlan6(k) => {
                    self.insert_vxlan6_lsl(k, sub.id)?;
                    vxlan6_keys.insert(k);
                }
            }
            for (&ip, &mac) in &sub.hosts {
                self.insert_host(
                    HostKey {
                        sub: sub.id,
                        ip: ip_raw(ip),
                    },
                    Host {
                        mac,
                        flags: host_flags::STATIC,
                        _pad: 0,
                    },
                )?;
                report.hosts += 1;
            }
        }

        // Then remove what is no longer configured: LSLs, then hosts, then the slots.
        let configured: BTreeSet<SubscriberId> = config.subscribers.keys().copied().collect();
        let mut orphaned = BTreeSet::new();
        let mut map = self.hash::<VlanLslKey, SubscriberId>(map_names::LSL_VLAN)?;
        let gone = remove_stale(&mut map, map_names::LSL_VLAN, |k, _| vlan_keys.contains(k))?;
        report.removed_lsls += gone.len();
        orphaned.extend(gone.into_iter().map(|(_, id)| id));
        let mut map = self.hash::<VxlanLslKey, SubscriberId>(map_names::LSL_VXLAN)?;
        let gone = remove_stale(&mut map, map_names::LSL_VXLAN, |k, _| {
            vxlan_keys.contains(k)
        })?;
        report.removed_lsls += gone.len();
        orphaned.extend(gone.into_iter().map(|(_, id)| id));
        let mut map = self.hash::<Vxlan6LslKey, SubscriberId>(map_names::LSL_VXLAN6)?;
        let gone = remove_stale(&mut map, map_names::LSL_VXLAN6, |k, _| {
            vxlan6_keys.contains(k)
        })?;
        report.removed_lsls += gone.len();
        orphaned.extend(gone.into_iter().map(|(_, id)| id));
        let keep = |k: &HostKey, h: &Host| {
            let Some(sub) = config.subscribers.get(&k.sub) else {
                return false;
            };
            let is_static = h.flags & host_flags::STATIC != 0;
            let ip = std::net::Ipv4Addr::from(k.ip.to_ne_bytes());
            !is_static || sub.hosts.contains_key(&ip)
        };
        // Through `remove_host`, as every writer of the host table: a removed host raises
        // its home's host generation.
        let stale: Vec<HostKey> = self
            .hash::<HostKey, Host>(map_names::HOSTS)?
            .iter()
            .filter_map(Result::ok)
            .filter(|(k, h)| !keep(k, h))
            .map(|(k, _)| k)
            .collect();
        for key in &stale {
            self.remove_host(key)?;
        }
        report.removed_hosts += stale.len();
        for id in orphaned.difference(&configured) {
            self.remove_subscriber(*id)?;
            report.removed_subscribers += 1;
        }

        // Our public addresses: what the core side translates. The whole pool, so that homes
        // added at run time on an address nobody used yet need no extra write.
        if let (Some(_), Some(nat_cfg)) = (nat, config.nat.as_ref()) {
            public_ips.extend(nat_cfg.pool().addresses().iter().map(|&ip| ip_raw(ip)));
        }
        for ip in &public_ips {
            self.insert_public_ip(*ip)?;
        }
        let mut map = self.hash::<u32, u32>(map_names::PUBLIC_IPS)?;
        remove_stale(&mut map, map_names::PUBLIC_IPS, |ip, _| {
            public_ips.contains(ip)
        })?;
        // Exactly their span (the inserts above only widen it).
        let range = public_ips
            .iter()
            .fold(PublicRange::default(), |r, ip| r.with(u32::from_be(*ip)));
        self.set_public_range(range)?;

        // The interfaces frames are redirected to.
        self.set_egress(ifaces.access_ifindex)?;
        if let Some(core) = ifaces.core_ifindex {
            self.set_egress(core)?;
        }

        // Keep the NAT hash seed across restarts (new mappings keep their port pattern);
        // pick one on first start.
        let seed = match self.config() {
            Ok(c) if c.flags & config_flags::VALID != 0 && c.nat_hash_seed != 0 => c.nat_hash_seed,
            _ => random_seed(),
        };

        // Last, switch the fast path on with the current settings (NAT off: block size 0).
        self.set_config(&nerg_abi::Config {
            nat_hash_seed: seed,
            vtep_ipv4: fp.vtep.map_or(0, ip_raw),
            vxlan_port: fp.vxlan_port.to_be(),
            stag_tpids: tpids,
            flags: config_flags::VALID,
            nat_block_size: match (nat, &config.nat) {
                (Some(_), Some(n)) => n.block_size(),
                _ => 0,
            },
            _pad: 0,
            access_ifindex: ifaces.access_ifindex,
            access_mac: ifaces.access_mac,
            _pad2: [0; 2],
            vtep_ipv6: fp.vtep6.map_or([0; 16], |v6| v6.octets()),
        })?;
        Ok(report)
    }
}
