//! Typed writes and reads of the maps the control plane owns: the fast path's configuration,
//! the LSL tables, the subscriber array and the host table. This is the one place that
//! knows how the map ABI (`nerg-abi`) is laid out in aya terms.

use aya::{
    Ebpf,
    maps::{Array, DevMapHash, HashMap, MapData, MapError, PerCpuArray},
};
use nerg_abi::{
    Config, Host, HostKey, NatFwdKey, NatMapping, NatRev, NatRevKey, SubCounters, Subscriber,
    SubscriberId, VlanLslKey, VxlanLslKey, map_names,
};

use super::FastPathError;

/// Borrowed access to a loaded fast path's maps.
pub struct Maps<'a> {
    ebpf: &'a mut Ebpf,
}

fn err(name: &'static str) -> impl FnOnce(MapError) -> FastPathError {
    move |source| FastPathError::Map { name, source }
}

fn missing(name: &'static str) -> FastPathError {
    FastPathError::Map {
        name,
        source: MapError::InvalidName {
            name: name.to_owned(),
        },
    }
}

impl<'a> Maps<'a> {
    pub(super) fn new(ebpf: &'a mut Ebpf) -> Self {
        Self { ebpf }
    }

    fn array<V: aya::Pod>(
        &mut self,
        name: &'static str,
    ) -> Result<Array<&mut MapData, V>, FastPathError> {
        let map = self.ebpf.map_mut(name).ok_or_else(|| missing(name))?;
        Array::try_from(map).map_err(err(name))
    }

    /// A typed handle on hash map `name`.
    /// A typed handle on hash map `name`.
    pub(super) fn hash<K: aya::Pod, V: aya::Pod>(
        &mut self,
        name: &'static str,
    ) -> Result<HashMap<&mut MapData, K, V>, FastPathError> {
        let map = self.ebpf.map_mut(name).ok_or_else(|| missing(name))?;
        HashMap::try_from(map).map_err(err(name))
    }

    /// Writes the fast path's configuration.
    pub fn set_config(&mut self, config: &Config) -> Result<(), FastPathError> {
        self.array::<Config>(map_names::CONFIG)?
            .set(0, config, 0)
            .map_err(err(map_names::CONFIG))
    }

    /// Writes subscriber `id`'s slot.
    pub fn set_subscriber(
        &mut self,
        id: SubscriberId,
        sub: &Subscriber,
    ) -> Result<(), FastPathError> {
        self.array::<Subscriber>(map_names::SUBSCRIBERS)?
            .set(id, sub, 0)
            .map_err(err(map_names::SUBSCRIBERS))
    }

    /// Reads subscriber `id`'s slot.
    pub fn subscriber(&mut self, id: SubscriberId) -> Result<Subscriber, FastPathError> {
        self.array(map_names::SUBSCRIBERS)?
            .get(&id, 0)
            .map_err(err(map_names::SUBSCRIBERS))
    }

    /// Maps an 802.1Q/QinQ LSL to subscriber `id`.
    pub fn insert_vlan_lsl(
        &mut self,
        key: VlanLslKey,
        id: SubscriberId,
    ) -> Result<(), FastPathError> {
        self.hash(map_names::LSL_VLAN)?
            .insert(key, id, 0)
            .map_err(err(map_names::LSL_VLAN))
    }

    /// Removes an 802.1Q/QinQ LSL.
    pub fn remove_vlan_lsl(&mut self, key: &VlanLslKey) -> Result<(), FastPathError> {
        self.hash::<VlanLslKey, SubscriberId>(map_names::LSL_VLAN)?
            .remove(key)
            .map_err(err(map_names::LSL_VLAN))
    }

    /// Maps a VXLAN LSL to subscriber `id`.
    pub fn insert_vxlan_lsl(
        &mut self,
        key: VxlanLslKey,
        id: SubscriberId,
    ) -> Result<(), FastPathError> {
        self.hash(map_names::LSL_VXLAN)?
            .insert(key, id, 0)
            .map_err(err(map_names::LSL_VXLAN))
    }

    /// Removes a VXLAN LSL.
    pub fn remove_vxlan_lsl(&mut self, key: &VxlanLslKey) -> Result<(), FastPathError> {
        self.hash::<VxlanLslKey, SubscriberId>(map_names::LSL_VXLAN)?
            .remove(key)
            .map_err(err(map_names::LSL_VXLAN))
    }

    /// Adds or updates a home's host (MAC <-> IP).
    pub fn insert_host(&mut self, key: HostKey, host: Host) -> Result<(), FastPathError> {
        self.hash(map_names::HOSTS)?
            .insert(key, host, 0)
            .map_err(err(map_names::HOSTS))
    }

    /// Removes a home's host.
    pub fn remove_host(&mut self, key: &HostKey) -> Result<(), FastPathError> {
        self.hash::<HostKey, Host>(map_names::HOSTS)?
            .remove(key)
            .map_err(err(map_names::HOSTS))
    }

    /// Reads the fast path's configuration.
    pub fn config(&mut self) -> Result<Config, FastPathError> {
        self.array::<Config>(map_names::CONFIG)?
            .get(&0, 0)
            .map_err(err(map_names::CONFIG))
    }

    /// Declares `ip` (raw, network byte order in memory) one of the vG's public addresses.
    pub fn insert_public_ip(&mut self, ip: u32) -> Result<(), FastPathError> {
        self.hash::<u32, u32>(map_names::PUBLIC_IPS)?
            .insert(ip, 1, 0)
            .map_err(err(map_names::PUBLIC_IPS))
    }

    /// Removes a public address.
    pub fn remove_public_ip(&mut self, ip: u32) -> Result<(), FastPathError> {
        self.hash::<u32, u32>(map_names::PUBLIC_IPS)?
            .remove(&ip)
            .map_err(err(map_names::PUBLIC_IPS))
    }

    /// Allows redirecting frames to interface `ifindex` (in vgd's network namespace).
    pub fn set_egress(&mut self, ifindex: u32) -> Result<(), FastPathError> {
        let name = map_names::DEVMAP;
        let map = self.ebpf.map_mut(name).ok_or_else(|| missing(name))?;
        let mut devmap = DevMapHash::try_from(map).map_err(err(name))?;
        devmap
            .insert(ifindex, ifindex, None, 0)
            .map_err(FastPathError::Devmap)
    }

    /// The NAT mapping of a flow, if any.
    pub fn nat_mapping(&mut self, key: &NatFwdKey) -> Result<Option<NatMapping>, FastPathError> {
        match self
            .hash::<NatFwdKey, NatMapping>(map_names::NAT_FWD)?
            .get(key, 0)
        {
            Ok(m) => Ok(Some(m)),
            Err(MapError::KeyNotFound) => Ok(None),
            Err(source) => Err(err(map_names::NAT_FWD)(source)),
        }
    }

    /// The reverse NAT entry of a public transport address, if any.
    pub fn nat_reverse(&mut self, key: &NatRevKey) -> Result<Option<NatRev>, FastPathError> {
        match self
            .hash::<NatRevKey, NatRev>(map_names::NAT_REV)?
            .get(key, 0)
        {
            Ok(m) => Ok(Some(m)),
            Err(MapError::KeyNotFound) => Ok(None),
            Err(source) => Err(err(map_names::NAT_REV)(source)),
        }
    }

    /// Writes a reverse NAT entry (a static port forward, or a port held back).
    pub fn insert_nat_reverse(&mut self, key: NatRevKey, rev: NatRev) -> Result<(), FastPathError> {
        self.hash(map_names::NAT_REV)?
            .insert(key, rev, 0)
            .map_err(err(map_names::NAT_REV))
    }

    /// Subscriber `id`'s counters, summed over CPUs.
    pub fn sub_counters(&mut self, id: SubscriberId) -> Result<SubCounters, FastPathError> {
        let name = map_names::SUB_COUNTERS;
        let map = self.ebpf.map_mut(name).ok_or_else(|| missing(name))?;
        let per_cpu: PerCpuArray<&mut MapData, SubCounters> =
            PerCpuArray::try_from(map).map_err(err(name))?;
        let values = per_cpu.get(&id, 0).map_err(err(name))?;
        Ok(super::counters::sum_sub_counters(&values))
    }
}

/// The host table opened from its bpffs pin: how the slow path (DHCP) adds and removes
/// hosts, independent of the loaded object.
pub struct PinnedHosts {
    map: HashMap<MapData, HostKey, Host>,
}

impl PinnedHosts {
    /// Opens `NERG_HOSTS` pinned in `pin_dir`.
    pub fn open(pin_dir: &std::path::Path) -> Result<Self, FastPathError> {
        let name = map_names::HOSTS;
        let data = MapData::from_pin(pin_dir.join(name)).map_err(err(name))?;
        let map = HashMap::try_from(aya::maps::Map::HashMap(data)).map_err(err(name))?;
        Ok(Self { map })
    }

    /// Adds or refreshes a leased host.
    pub fn add(
        &mut self,
        sub: SubscriberId,
        ip: std::net::Ipv4Addr,
        mac: [u8; 6],
    ) -> Result<(), FastPathError> {
        let key = HostKey {
            sub,
            ip: u32::from_ne_bytes(ip.octets()),
        };
        let host = Host {
            mac,
            flags: nerg_abi::host_flags::LEASED,
            _pad: 0,
        };
        self.map.insert(key, host, 0).map_err(err(map_names::HOSTS))
    }

    /// Removes a leased host (a static one with the same address stays).
    pub fn remove(
        &mut self,
        sub: SubscriberId,
        ip: std::net::Ipv4Addr,
    ) -> Result<(), FastPathError> {
        let key = HostKey {
            sub,
            ip: u32::from_ne_bytes(ip.octets()),
        };
        match self.map.get(&key, 0) {
            Ok(h) if h.flags & nerg_abi::host_flags::STATIC != 0 => Ok(()),
            Ok(_) => match self.map.remove(&key) {
                Ok(()) | Err(MapError::KeyNotFound) => Ok(()),
                Err(e) => Err(err(map_names::HOSTS)(e)),
            },
            Err(MapError::KeyNotFound) => Ok(()),
            Err(e) => Err(err(map_names::HOSTS)(e)),
        }
    }
}
