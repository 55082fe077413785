//! What the fast path's maps hold for a home, in the map ABI's terms (its record, its LSL
//! key), and the fast path's own settings. The control plane decides what to write
//! ([`crate::control::plan`]); a restarted vgd reconciles the maps it adopted there, so
//! entries of homes deleted while it was down disappear and the others are untouched.

use lsl::{FastPathKey, LslId, Vid};
use nerg_abi::{
    VlanLslKey, Vxlan6LslKey, VxlanLslKey, config_flags, lsl_kind, stag_tpid, sub_flags,
};

use super::{FastPathError, maps::Maps};
use crate::config::{Config, SubscriberConfig};

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
        qos: [
            sub.qos.fast_path(sub.qos.up),
            sub.qos.fast_path(sub.qos.down),
        ],
        ..Default::default()
    };
    rec.ip6_mtu = ipv6_mtu(&sub.lsl);
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

/// The largest IPv6 packet a home's LSL carries ([`nerg_abi::Subscriber::ip6_mtu`]): a
/// tagged LSL carries a 1500-byte packet (the access link's MTU makes room for the tags);
/// VXLAN fits its encapsulation (RFC 7348 §4.3: 50 bytes over IPv4, 70 over IPv6) into a
/// 1500-byte underlay.
pub fn ipv6_mtu(lsl: &LslId) -> u16 {
    match lsl {
        LslId::Vlan { .. } => 1500,
        LslId::Vxlan {
            vtep: std::net::IpAddr::V4(_),
            ..
        } => 1450,
        LslId::Vxlan {
            vtep: std::net::IpAddr::V6(_),
            ..
        } => 1430,
    }
}

/// Fills in a home's NAT: its public address and blocks, its session limit and filtering
/// (its own policy over the `[nat]` defaults).
pub fn apply_nat(
    rec: &mut nerg_abi::Subscriber,
    sub: &SubscriberConfig,
    nat: &crate::nat::NatConfig,
    ports: &crate::nat::SubscriberPorts,
) {
    set_nat(rec, ports.address(), ports.firsts());
    rec.session_limit = sub.nat.session_limit.unwrap_or(nat.max_sessions());
    let filtering = sub.nat.filtering.unwrap_or(nat.filtering());
    if filtering == crate::nat::Filtering::AddressAndPortDependent {
        rec.flags |= sub_flags::FILTER_APDF;
    } else {
        rec.flags &= !sub_flags::FILTER_APDF;
    }
}

/// Sets a home's public address and the first ports of its blocks in its record.
pub fn set_nat(rec: &mut nerg_abi::Subscriber, public: std::net::Ipv4Addr, firsts: &[u16]) {
    rec.public_ip = ip_raw(public);
    rec.blocks = nerg_abi::blocks_from(firsts);
    rec.block_count = firsts.len() as u32;
}

/// A home's key in one of the LSL tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
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

impl Maps<'_> {
    /// Writes what the fast path needs beyond the homes' entries (those are the control
    /// plane's, [`crate::control::Control::reconcile`]): the interfaces frames are
    /// redirected to, then the fast path's configuration, which switches it on.
    ///
    /// `seed`: the NAT hash seed; `None` keeps the one the maps hold (new mappings keep
    /// their port pattern across restarts) or picks one on a first start.
    pub fn configure(
        &mut self,
        config: &Config,
        ifaces: &Interfaces,
        seed: Option<u32>,
    ) -> Result<(), FastPathError> {
        let fp = &config.fastpath;
        let tpids = fp.stag_tpids.iter().fold(0u16, |acc, t| {
            acc | match t {
                lsl::wire::vlan::Tpid::STag => stag_tpid::AD,
                lsl::wire::vlan::Tpid::STagLegacy => stag_tpid::LEGACY_9100,
                lsl::wire::vlan::Tpid::CTag => stag_tpid::DOT1Q,
            }
        });
        // The interfaces frames are redirected to.
        self.set_egress(ifaces.access_ifindex)?;
        if let Some(core) = ifaces.core_ifindex {
            self.set_egress(core)?;
        }

        let seed = match (seed, self.config()) {
            (Some(seed), _) => seed,
            (None, Ok(c)) if c.flags & config_flags::VALID != 0 && c.nat_hash_seed != 0 => {
                c.nat_hash_seed
            }
            (None, _) => random_seed(),
        };

        // Last, switch the fast path on with the current settings (NAT off: block size 0).
        self.set_config(&nerg_abi::Config {
            nat_hash_seed: seed,
            vtep_ipv4: fp.vtep.map_or(0, ip_raw),
            vxlan_port: fp.vxlan_port.to_be(),
            stag_tpids: tpids,
            flags: config_flags::VALID,
            nat_block_size: config.nat.as_ref().map_or(0, |n| n.block_size()),
            _pad: 0,
            access_ifindex: ifaces.access_ifindex,
            access_mac: ifaces.access_mac,
            _pad2: [0; 2],
            vtep_ipv6: fp.vtep6.map_or([0; 16], |v6| v6.octets()),
        })
    }
}
