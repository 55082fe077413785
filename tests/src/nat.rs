//! NAT table entries written the way the control plane writes them, for tests that drive
//! the fast path without vgd.

use std::{net::Ipv4Addr, path::Path};

use aya::maps::{HashMap, Map, MapData};
use nerg_abi::{NatFwdKey, NatMapping, NatRev, NatRevKey, SubscriberId, map_names, nat_flags};

fn raw(ip: Ipv4Addr) -> u32 {
    u32::from_ne_bytes(ip.octets())
}

fn open<K: aya::Pod, V: aya::Pod>(pin_dir: &Path, name: &str) -> HashMap<MapData, K, V> {
    let data = MapData::from_pin(pin_dir.join(name))
        .unwrap_or_else(|e| panic!("opening the pinned {name}: {e}"));
    HashMap::try_from(Map::HashMap(data)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// A port forward of home `sub`: `public` (its address and a port of its blocks) to the
/// home host's `private` address and port, for `proto`; a static mapping pair in the pinned
/// NAT tables of `pin_dir`. The host's MAC comes from the host table at forwarding time.
pub fn port_forward(
    pin_dir: &Path,
    sub: SubscriberId,
    public: (Ipv4Addr, u16),
    private: (Ipv4Addr, u16),
    proto: u8,
) {
    let mut fwd: HashMap<MapData, NatFwdKey, NatMapping> = open(pin_dir, map_names::NAT_FWD);
    let mut rev: HashMap<MapData, NatRevKey, NatRev> = open(pin_dir, map_names::NAT_REV);
    let (pub_ip, pub_port) = (raw(public.0), public.1.to_be());
    let (priv_ip, priv_port) = (raw(private.0), private.1.to_be());
    let rev_key = NatRevKey {
        pub_ip,
        pub_port,
        proto,
        _pad: 0,
    };
    let rev_value = NatRev {
        sub,
        priv_ip,
        priv_port,
        flags: nat_flags::STATIC,
        ..NatRev::default()
    };
    rev.insert(rev_key, rev_value, 0)
        .expect("writing the reverse entry");
    let fwd_key = NatFwdKey {
        sub,
        priv_ip,
        priv_port,
        proto,
        _pad: 0,
    };
    let mapping = NatMapping {
        pub_ip,
        pub_port,
        flags: nat_flags::STATIC,
        ..NatMapping::default()
    };
    fwd.insert(fwd_key, mapping, 0)
        .expect("writing the forward entry");
}
