//! Typed writes and reads of the maps the control plane owns: the fast path's configuration,
//! the LSL tables, the subscriber array and the host table. This is the one place that
//! knows how the map ABI (`nerg-abi`) is laid out in aya terms.

use aya::{
    Ebpf,
    maps::{Array, DevMapHash, HashMap, MapData, MapError, PerCpuArray},
};
use nerg_abi::{
    Config, Host, HostKey, NatFwdKey, NatMapping, NatRev, NatRevKey, PublicRange, SubCounters,
    Subscriber, SubscriberId, VlanLslKey, Vxlan6LslKey, VxlanLslKey, map_names,
};

use super::{FastPathError, reconcile::LslKey};

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

/// Serializes raising a home's host generation (read, add one, write) across vgd's threads,
/// which change hosts from the control task and from the slow path: two raises at once
/// could otherwise write an older value last, and a generation must never come back.
static HOSTS_GEN_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Raises home `sub`'s host generation ([`map_names::HOSTS_GEN`]). Called after a host of the
/// home was removed or got another MAC address, never before: the fast path reads the
/// generation before the host table, so a mapping checked against the table as it was before
/// the change holds an older generation and no longer vouches for its sender.
fn raise_hosts_gen<M: std::borrow::BorrowMut<MapData>>(
    gens: &mut Array<M, u32>,
    sub: SubscriberId,
) -> Result<(), FastPathError> {
    let _serial = HOSTS_GEN_LOCK
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let gen_now = gens.get(&sub, 0).map_err(err(map_names::HOSTS_GEN))?;
    gens.set(sub, gen_now.wrapping_add(1), 0)
        .map_err(err(map_names::HOSTS_GEN))
}

/// Writes `host` for `key`, and raises the home's host generation when that takes the
/// address away from another MAC: every writer of the host table goes through here or
/// [`drop_host`].
fn put_host<H, G>(
    hosts: &mut HashMap<H, HostKey, Host>,
    gens: &mut Array<G, u32>,
    key: HostKey,
    host: Host,
) -> Result<(), FastPathError>
where
    H: std::borrow::BorrowMut<MapData>,
    G: std::borrow::BorrowMut<MapData>,
{
    let old = match hosts.get(&key, 0) {
        Ok(h) => Some(h),
        Err(MapError::KeyNotFound) => None,
        Err(e) => return Err(err(map_names::HOSTS)(e)),
    };
    hosts.insert(key, host, 0).map_err(err(map_names::HOSTS))?;
    if old.is_some_and(|o| o.mac != host.mac) {
        raise_hosts_gen(gens, key.sub)?;
    }
    Ok(())
}

/// Removes `key`'s host and raises the home's host generation; `Ok(false)` when there was
/// none (nothing changed).
fn drop_host<H, G>(
    hosts: &mut HashMap<H, HostKey, Host>,
    gens: &mut Array<G, u32>,
    key: &HostKey,
) -> Result<bool, FastPathError>
where
    H: std::borrow::BorrowMut<MapData>,
    G: std::borrow::BorrowMut<MapData>,
{
    match hosts.remove(key) {
        Ok(()) => raise_hosts_gen(gens, key.sub).map(|()| true),
        Err(MapError::KeyNotFound) => Ok(false),
        Err(e) => Err(err(map_names::HOSTS)(e)),
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

    /// Adds a VXLAN LSL over IPv6.
    pub fn insert_vxlan6_lsl(
        &mut self,
        key: Vxlan6LslKey,
        id: SubscriberId,
    ) -> Result<(), FastPathError> {
        self.hash(map_names::LSL_VXLAN6)?
            .insert(key, id, 0)
            .map_err(err(map_names::LSL_VXLAN6))
    }

    /// The host table and the host generations, borrowed together.
    #[expect(
        clippy::type_complexity,
        reason = "the two typed handles, named once here"
    )]
    fn host_tables(
        &mut self,
    ) -> Result<
        (
            HashMap<&mut MapData, HostKey, Host>,
            Array<&mut MapData, u32>,
        ),
        FastPathError,
    > {
        let (mut hosts, mut gens) = (None, None);
        for (name, map) in self.ebpf.maps_mut() {
            match name {
                map_names::HOSTS => hosts = Some(map),
                map_names::HOSTS_GEN => gens = Some(map),
                _ => {}
            }
        }
        let hosts = hosts.ok_or_else(|| missing(map_names::HOSTS))?;
        let gens = gens.ok_or_else(|| missing(map_names::HOSTS_GEN))?;
        Ok((
            HashMap::try_from(hosts).map_err(err(map_names::HOSTS))?,
            Array::try_from(gens).map_err(err(map_names::HOSTS_GEN))?,
        ))
    }

    /// Adds or updates a home's host (MAC <-> IP); a new MAC for an address raises the
    /// home's host generation.
    pub fn insert_host(&mut self, key: HostKey, host: Host) -> Result<(), FastPathError> {
        let (mut hosts, mut gens) = self.host_tables()?;
        put_host(&mut hosts, &mut gens, key, host)
    }

    /// Removes a home's host and raises the home's host generation.
    pub fn remove_host(&mut self, key: &HostKey) -> Result<(), FastPathError> {
        let (mut hosts, mut gens) = self.host_tables()?;
        if drop_host(&mut hosts, &mut gens, key)? {
            Ok(())
        } else {
            Err(err(map_names::HOSTS)(MapError::KeyNotFound))
        }
    }

    /// Home `sub`'s host generation.
    pub fn hosts_gen(&mut self, sub: SubscriberId) -> Result<u32, FastPathError> {
        self.array::<u32>(map_names::HOSTS_GEN)?
            .get(&sub, 0)
            .map_err(err(map_names::HOSTS_GEN))
    }

    /// Reads the fast path's configuration.
    pub fn config(&mut self) -> Result<Config, FastPathError> {
        self.array::<Config>(map_names::CONFIG)?
            .get(&0, 0)
            .map_err(err(map_names::CONFIG))
    }

    /// Declares `ip` (raw, network byte order in memory) one of the vG's public addresses
    /// (the range first: the fast path never sees an address outside it).
    pub fn insert_public_ip(&mut self, ip: u32) -> Result<(), FastPathError> {
        let name = map_names::PUBLIC_RANGE;
        let mut range = self.array::<PublicRange>(name)?;
        let widened = range.get(&0, 0).map_err(err(name))?.with(u32::from_be(ip));
        range.set(0, widened, 0).map_err(err(name))?;
        self.hash::<u32, u32>(map_names::PUBLIC_IPS)?
            .insert(ip, 1, 0)
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

    /// Empties subscriber `id`'s slot and zeroes its traffic counters (the home is gone).
    pub fn remove_subscriber(&mut self, id: SubscriberId) -> Result<(), FastPathError> {
        self.set_subscriber(id, &Subscriber::default())?;
        let name = map_names::SUB_COUNTERS;
        let map = self.ebpf.map_mut(name).ok_or_else(|| missing(name))?;
        let mut per_cpu: PerCpuArray<&mut MapData, SubCounters> =
            PerCpuArray::try_from(map).map_err(err(name))?;
        zero_sub_counters(&mut per_cpu, id)
    }
}

/// The host table opened from its bpffs pin: how the slow path (DHCP) adds and removes
/// hosts, independent of the loaded object.
pub struct PinnedHosts {
    map: HashMap<MapData, HostKey, Host>,
    gens: Array<MapData, u32>,
}

impl PinnedHosts {
    /// Opens `NERG_HOSTS` pinned in `pin_dir`.
    pub fn open(pin_dir: &std::path::Path) -> Result<Self, FastPathError> {
        let name = map_names::HOSTS;
        let data = MapData::from_pin(pin_dir.join(name)).map_err(err(name))?;
        let map = HashMap::try_from(aya::maps::Map::HashMap(data)).map_err(err(name))?;
        let gens = Array::try_from(aya::maps::Map::Array(open_pin(
            pin_dir,
            map_names::HOSTS_GEN,
        )?))
        .map_err(err(map_names::HOSTS_GEN))?;
        Ok(Self { map, gens })
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
        put_host(&mut self.map, &mut self.gens, key, host)
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
            Ok(_) => drop_host(&mut self.map, &mut self.gens, &key).map(drop),
            Err(MapError::KeyNotFound) => Ok(()),
            Err(e) => Err(err(map_names::HOSTS)(e)),
        }
    }
}

/// A static NAT mapping pair (a port forward) as the fast path stores it: keys and values
/// in the map ABI's byte orders.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StaticMapping {
    /// `NERG_NAT_FWD` key: the home, the private address and port, the protocol.
    pub fwd_key: NatFwdKey,
    /// `NERG_NAT_REV` key: the public address and port, the protocol.
    pub rev_key: NatRevKey,
}

impl StaticMapping {
    /// The pair for home `sub`: `proto` `public_ip:public_port` <-> `private_ip:private_port`
    /// (addresses and ports in host form; stored in network byte order).
    pub fn new(
        sub: SubscriberId,
        proto: u8,
        public_ip: std::net::Ipv4Addr,
        public_port: u16,
        private_ip: std::net::Ipv4Addr,
        private_port: u16,
    ) -> Self {
        Self {
            fwd_key: NatFwdKey {
                sub,
                priv_ip: u32::from_ne_bytes(private_ip.octets()),
                priv_port: private_port.to_be(),
                proto,
                _pad: 0,
            },
            rev_key: NatRevKey {
                pub_ip: u32::from_ne_bytes(public_ip.octets()),
                pub_port: public_port.to_be(),
                proto,
                _pad: 0,
            },
        }
    }

    /// The forward value: `STATIC`, never expired by idleness; not yet checked against the
    /// host table (the fast path does that with the first packet).
    pub fn mapping(&self) -> NatMapping {
        NatMapping {
            pub_ip: self.rev_key.pub_ip,
            pub_port: self.rev_key.pub_port,
            flags: nerg_abi::nat_flags::STATIC,
            ..NatMapping::default()
        }
    }

    /// The reverse value: `STATIC`, MAC zero (the data plane looks it up in `NERG_HOSTS`).
    pub fn reverse(&self) -> NatRev {
        NatRev {
            sub: self.fwd_key.sub,
            priv_ip: self.fwd_key.priv_ip,
            priv_port: self.fwd_key.priv_port,
            host_mac: [0; 6],
            flags: nerg_abi::nat_flags::STATIC,
            _pad: [0; 3],
            hosts_gen: 0,
            last_seen_ns: 0,
        }
    }
}

/// Why a static mapping could not be written.
#[derive(Debug, thiserror::Error)]
pub enum StaticMappingError {
    /// A live dynamic mapping holds the public port.
    #[error(
        "public port {port}/{proto} is in use by a live NAT session of the home ({priv_ip}:{priv_port}); \
         retry when it ends"
    )]
    InUse {
        /// Protocol number.
        proto: u8,
        /// The public port.
        port: u16,
        /// Private address of the session holding it.
        priv_ip: std::net::Ipv4Addr,
        /// Private port of that session.
        priv_port: u16,
    },
    /// A map operation failed.
    #[error(transparent)]
    Map(#[from] FastPathError),
}

/// Why an LSL table entry could not be given to a home.
#[derive(Debug, thiserror::Error)]
pub enum LslClaimError {
    /// Another home holds the entry (the control plane let two homes have one fast-path
    /// key: a bug, or maps out of step with it). Its entry was left as it is.
    #[error("the fast path's entry for this LSL belongs to subscriber {owner}")]
    Taken {
        /// The home holding it.
        owner: SubscriberId,
    },
    /// A map operation failed.
    #[error(transparent)]
    Map(#[from] FastPathError),
}

/// `BPF_NOEXIST` (`<linux/bpf.h>`): an update that only creates, never replaces.
const BPF_NOEXIST: u64 = 1;

/// `EEXIST` (`<errno.h>`).
const EEXIST: i32 = 17;

/// See [`PinnedMaps::claim_lsl`]. The entry is created with `BPF_NOEXIST`, so even a writer
/// racing this one cannot have its entry replaced.
fn claim<M, K>(
    map: &mut HashMap<M, K, SubscriberId>,
    name: &'static str,
    key: K,
    id: SubscriberId,
) -> Result<(), LslClaimError>
where
    M: std::borrow::BorrowMut<MapData>,
    K: aya::Pod,
{
    let owner = |map: &HashMap<M, K, SubscriberId>| match map.get(&key, 0) {
        Ok(owner) => Ok(Some(owner)),
        Err(MapError::KeyNotFound) => Ok(None),
        Err(e) => Err(err(name)(e)),
    };
    let taken = |owner: SubscriberId| {
        if owner == id {
            Ok(())
        } else {
            Err(LslClaimError::Taken { owner })
        }
    };
    if let Some(owner) = owner(map)? {
        return taken(owner);
    }
    match map.insert(key, id, BPF_NOEXIST) {
        Ok(()) => Ok(()),
        Err(MapError::SyscallError(e)) if e.io_error.raw_os_error() == Some(EEXIST) => {
            match owner(map)? {
                Some(owner) => taken(owner),
                None => Err(err(name)(MapError::SyscallError(e)).into()),
            }
        }
        Err(e) => Err(err(name)(e).into()),
    }
}

/// See [`PinnedMaps::release_lsl`].
fn release<M, K>(
    map: &mut HashMap<M, K, SubscriberId>,
    name: &'static str,
    key: K,
    id: SubscriberId,
) -> Result<bool, FastPathError>
where
    M: std::borrow::BorrowMut<MapData>,
    K: aya::Pod,
{
    match map.get(&key, 0) {
        Ok(owner) if owner == id => ignore_missing(map.remove(&key))
            .map(|()| true)
            .map_err(err(name)),
        Ok(_) | Err(MapError::KeyNotFound) => Ok(false),
        Err(e) => Err(err(name)(e)),
    }
}

type Fwd<M> = HashMap<M, NatFwdKey, NatMapping>;
type Rev<M> = HashMap<M, NatRevKey, NatRev>;

fn ignore_missing(r: Result<(), MapError>) -> Result<(), MapError> {
    match r {
        Err(MapError::KeyNotFound) => Ok(()),
        other => other,
    }
}

/// Writes a static pair: reverse first, then forward, rolling the reverse back on failure
/// (a frame never finds a forward entry without its reverse). A live dynamic mapping on
/// the public port refuses; a tombstone (a port held after its mapping expired, in the
/// home's own block) is replaced; a dynamic mapping of the same private endpoint is
/// replaced (its reverse removed).
fn write_static<F, R>(
    fwd: &mut Fwd<F>,
    rev: &mut Rev<R>,
    m: &StaticMapping,
) -> Result<(), StaticMappingError>
where
    F: std::borrow::BorrowMut<MapData>,
    R: std::borrow::BorrowMut<MapData>,
{
    use nerg_abi::nat_flags;
    match rev.get(&m.rev_key, 0) {
        Ok(r)
            if r.flags & (nat_flags::STATIC | nat_flags::TOMBSTONE) == 0
                && !(r.sub == m.fwd_key.sub
                    && r.priv_ip == m.fwd_key.priv_ip
                    && r.priv_port == m.fwd_key.priv_port) =>
        {
            return Err(StaticMappingError::InUse {
                proto: m.rev_key.proto,
                port: u16::from_be(m.rev_key.pub_port),
                priv_ip: std::net::Ipv4Addr::from(r.priv_ip.to_ne_bytes()),
                priv_port: u16::from_be(r.priv_port),
            });
        }
        Ok(_) | Err(MapError::KeyNotFound) => {}
        Err(e) => return Err(err(map_names::NAT_REV)(e).into()),
    }
    if let Ok(old) = fwd.get(&m.fwd_key, 0)
        && (old.pub_ip != m.rev_key.pub_ip || old.pub_port != m.rev_key.pub_port)
    {
        let old_rev = NatRevKey {
            pub_ip: old.pub_ip,
            pub_port: old.pub_port,
            proto: m.fwd_key.proto,
            _pad: 0,
        };
        ignore_missing(rev.remove(&old_rev)).map_err(err(map_names::NAT_REV))?;
    }
    rev.insert(m.rev_key, m.reverse(), 0)
        .map_err(err(map_names::NAT_REV))?;
    if let Err(e) = fwd.insert(m.fwd_key, m.mapping(), 0) {
        let _ = rev.remove(&m.rev_key);
        return Err(err(map_names::NAT_FWD)(e).into());
    }
    Ok(())
}

/// Removes a static pair: forward first, then reverse. Missing entries are not an error.
fn erase_static<F, R>(
    fwd: &mut Fwd<F>,
    rev: &mut Rev<R>,
    m: &StaticMapping,
) -> Result<(), FastPathError>
where
    F: std::borrow::BorrowMut<MapData>,
    R: std::borrow::BorrowMut<MapData>,
{
    ignore_missing(fwd.remove(&m.fwd_key)).map_err(err(map_names::NAT_FWD))?;
    ignore_missing(rev.remove(&m.rev_key)).map_err(err(map_names::NAT_REV))?;
    Ok(())
}

/// The maps the control plane changes at run time, opened from their bpffs pins: what
/// [`crate::control`] holds, independent of the loaded object (like [`PinnedHosts`]).
/// Every write touches one home's entries only.
pub struct PinnedMaps {
    subscribers: Array<MapData, Subscriber>,
    lsl_vlan: HashMap<MapData, VlanLslKey, SubscriberId>,
    lsl_vxlan: HashMap<MapData, VxlanLslKey, SubscriberId>,
    lsl_vxlan6: HashMap<MapData, Vxlan6LslKey, SubscriberId>,
    hosts: HashMap<MapData, HostKey, Host>,
    hosts_gen: Array<MapData, u32>,
    public_ips: HashMap<MapData, u32, u32>,
    public_range: Array<MapData, PublicRange>,
    fwd: Fwd<MapData>,
    rev: Rev<MapData>,
    sub_counters: PerCpuArray<MapData, SubCounters>,
    v6: super::v6::V6Tables,
}

/// Zeroes home `id`'s traffic counters on every CPU: a home created later under the same id
/// starts from zero, not from the counts of the home that had it.
fn zero_sub_counters<M: std::borrow::BorrowMut<MapData>>(
    map: &mut PerCpuArray<M, SubCounters>,
    id: SubscriberId,
) -> Result<(), FastPathError> {
    let name = map_names::SUB_COUNTERS;
    let io = |call: &'static str, io_error| {
        err(name)(MapError::SyscallError(aya::sys::SyscallError {
            call,
            io_error,
        }))
    };
    let cpus = aya::util::nr_cpus().map_err(|(_, e)| io("nr_cpus", e))?;
    let zeros = aya::maps::PerCpuValues::try_from(vec![SubCounters::default(); cpus])
        .map_err(|e| io("per-CPU values", e))?;
    map.set(id, zeros, 0).map_err(err(name))
}

fn open_pin(pin_dir: &std::path::Path, name: &'static str) -> Result<MapData, FastPathError> {
    MapData::from_pin(pin_dir.join(name)).map_err(err(name))
}

impl PinnedMaps {
    /// Opens the maps pinned in `pin_dir`.
    pub fn open(pin_dir: &std::path::Path) -> Result<Self, FastPathError> {
        use aya::maps::Map;
        let hash = |name: &'static str| open_pin(pin_dir, name).map(Map::HashMap);
        Ok(Self {
            subscribers: Array::try_from(Map::Array(open_pin(pin_dir, map_names::SUBSCRIBERS)?))
                .map_err(err(map_names::SUBSCRIBERS))?,
            lsl_vlan: HashMap::try_from(hash(map_names::LSL_VLAN)?)
                .map_err(err(map_names::LSL_VLAN))?,
            lsl_vxlan: HashMap::try_from(hash(map_names::LSL_VXLAN)?)
                .map_err(err(map_names::LSL_VXLAN))?,
            lsl_vxlan6: HashMap::try_from(hash(map_names::LSL_VXLAN6)?)
                .map_err(err(map_names::LSL_VXLAN6))?,
            hosts: HashMap::try_from(hash(map_names::HOSTS)?).map_err(err(map_names::HOSTS))?,
            hosts_gen: Array::try_from(Map::Array(open_pin(pin_dir, map_names::HOSTS_GEN)?))
                .map_err(err(map_names::HOSTS_GEN))?,
            public_ips: HashMap::try_from(hash(map_names::PUBLIC_IPS)?)
                .map_err(err(map_names::PUBLIC_IPS))?,
            public_range: Array::try_from(Map::Array(open_pin(pin_dir, map_names::PUBLIC_RANGE)?))
                .map_err(err(map_names::PUBLIC_RANGE))?,
            fwd: HashMap::try_from(hash(map_names::NAT_FWD)?).map_err(err(map_names::NAT_FWD))?,
            rev: HashMap::try_from(hash(map_names::NAT_REV)?).map_err(err(map_names::NAT_REV))?,
            sub_counters: PerCpuArray::try_from(Map::PerCpuArray(open_pin(
                pin_dir,
                map_names::SUB_COUNTERS,
            )?))
            .map_err(err(map_names::SUB_COUNTERS))?,
            v6: super::v6::V6Tables::open(pin_dir)?,
        })
    }

    /// The IPv6 prefix trie and neighbour table.
    pub fn v6(&self) -> &super::v6::V6Tables {
        &self.v6
    }

    /// The IPv6 prefix trie and neighbour table, to write.
    pub fn v6_mut(&mut self) -> &mut super::v6::V6Tables {
        &mut self.v6
    }

    /// Empties subscriber `id`'s slot and zeroes its traffic counters (the home is gone).
    pub fn remove_subscriber(&mut self, id: SubscriberId) -> Result<(), FastPathError> {
        self.set_subscriber(id, &Subscriber::default())?;
        zero_sub_counters(&mut self.sub_counters, id)
    }

    /// Writes subscriber `id`'s slot.
    pub fn set_subscriber(
        &mut self,
        id: SubscriberId,
        sub: &Subscriber,
    ) -> Result<(), FastPathError> {
        self.subscribers
            .set(id, sub, 0)
            .map_err(err(map_names::SUBSCRIBERS))
    }

    /// Reads subscriber `id`'s slot.
    pub fn subscriber(&self, id: SubscriberId) -> Result<Subscriber, FastPathError> {
        self.subscribers
            .get(&id, 0)
            .map_err(err(map_names::SUBSCRIBERS))
    }

    /// Gives home `id` the LSL table entry `key`, unless another home holds it: that home's
    /// entry is never overwritten (see [`LslClaimError::Taken`]). Already `id`'s: nothing to do.
    pub fn claim_lsl(&mut self, key: &LslKey, id: SubscriberId) -> Result<(), LslClaimError> {
        match *key {
            LslKey::Vlan(k) => claim(&mut self.lsl_vlan, map_names::LSL_VLAN, k, id),
            LslKey::Vxlan(k) => claim(&mut self.lsl_vxlan, map_names::LSL_VXLAN, k, id),
            LslKey::Vxlan6(k) => claim(&mut self.lsl_vxlan6, map_names::LSL_VXLAN6, k, id),
        }
    }

    /// Removes the LSL table entry `key` if it is home `id`'s; another home's entry (or none)
    /// is left as it is. True if it removed one.
    pub fn release_lsl(&mut self, key: &LslKey, id: SubscriberId) -> Result<bool, FastPathError> {
        match *key {
            LslKey::Vlan(k) => release(&mut self.lsl_vlan, map_names::LSL_VLAN, k, id),
            LslKey::Vxlan(k) => release(&mut self.lsl_vxlan, map_names::LSL_VXLAN, k, id),
            LslKey::Vxlan6(k) => release(&mut self.lsl_vxlan6, map_names::LSL_VXLAN6, k, id),
        }
    }

    /// The home the LSL table entry `key` points to, if there is one.
    pub fn lsl_owner(&self, key: &LslKey) -> Result<Option<SubscriberId>, FastPathError> {
        let found = match *key {
            LslKey::Vlan(k) => (self.lsl_vlan.get(&k, 0), map_names::LSL_VLAN),
            LslKey::Vxlan(k) => (self.lsl_vxlan.get(&k, 0), map_names::LSL_VXLAN),
            LslKey::Vxlan6(k) => (self.lsl_vxlan6.get(&k, 0), map_names::LSL_VXLAN6),
        };
        match found {
            (Ok(owner), _) => Ok(Some(owner)),
            (Err(MapError::KeyNotFound), _) => Ok(None),
            (Err(e), name) => Err(err(name)(e)),
        }
    }

    /// Every LSL entry of the three tables and the home it points to (one pass each).
    pub fn lsl_entries(&self) -> Vec<(LslKey, SubscriberId)> {
        let vlan = self.lsl_vlan.iter().filter_map(Result::ok);
        let vxlan = self.lsl_vxlan.iter().filter_map(Result::ok);
        let vxlan6 = self.lsl_vxlan6.iter().filter_map(Result::ok);
        vlan.map(|(k, id)| (LslKey::Vlan(k), id))
            .chain(vxlan.map(|(k, id)| (LslKey::Vxlan(k), id)))
            .chain(vxlan6.map(|(k, id)| (LslKey::Vxlan6(k), id)))
            .collect()
    }

    /// Adds or updates a host; a new MAC for an address raises the home's host generation.
    pub fn insert_host(&mut self, key: HostKey, host: Host) -> Result<(), FastPathError> {
        put_host(&mut self.hosts, &mut self.hosts_gen, key, host)
    }

    /// Every host entry (one pass over the host table).
    pub fn host_entries(&self) -> Vec<(HostKey, Host)> {
        self.hosts.iter().filter_map(Result::ok).collect()
    }

    /// Removes a host (absent: fine) and raises the home's host generation.
    pub fn remove_host(&mut self, key: &HostKey) -> Result<(), FastPathError> {
        drop_host(&mut self.hosts, &mut self.hosts_gen, key).map(drop)
    }

    /// One host of a home, if the table has it.
    pub fn host(&self, key: &HostKey) -> Result<Option<Host>, FastPathError> {
        match self.hosts.get(key, 0) {
            Ok(h) => Ok(Some(h)),
            Err(MapError::KeyNotFound) => Ok(None),
            Err(e) => Err(err(map_names::HOSTS)(e)),
        }
    }

    /// The hosts of home `sub` (one pass over the host table).
    pub fn hosts_of(&self, sub: SubscriberId) -> Vec<(std::net::Ipv4Addr, Host)> {
        let mut out: Vec<_> = self
            .hosts
            .iter()
            .filter_map(Result::ok)
            .filter(|(k, _)| k.sub == sub)
            .map(|(k, h)| (std::net::Ipv4Addr::from(k.ip.to_ne_bytes()), h))
            .collect();
        out.sort_by_key(|(ip, _)| *ip);
        out
    }

    /// Declares `ip` (raw) one of the vG's public addresses (the range first).
    pub fn insert_public_ip(&mut self, ip: u32) -> Result<(), FastPathError> {
        let name = map_names::PUBLIC_RANGE;
        let widened = self
            .public_range
            .get(&0, 0)
            .map_err(err(name))?
            .with(u32::from_be(ip));
        self.public_range.set(0, widened, 0).map_err(err(name))?;
        self.public_ips
            .insert(ip, 1, 0)
            .map_err(err(map_names::PUBLIC_IPS))
    }

    /// No longer one of the vG's public addresses (absent: fine). The public range is set
    /// apart ([`Self::set_public_range`]).
    pub fn remove_public_ip(&mut self, ip: u32) -> Result<(), FastPathError> {
        ignore_missing(self.public_ips.remove(&ip)).map_err(err(map_names::PUBLIC_IPS))
    }

    /// The vG's public addresses (raw).
    pub fn public_ips(&self) -> Vec<u32> {
        self.public_ips.keys().filter_map(Result::ok).collect()
    }

    /// Sets the span of the public addresses exactly (it only widens otherwise).
    pub fn set_public_range(&mut self, range: PublicRange) -> Result<(), FastPathError> {
        self.public_range
            .set(0, range, 0)
            .map_err(err(map_names::PUBLIC_RANGE))
    }

    /// Writes a port forward's static mapping pair; see [`StaticMappingError`] for refusals.
    pub fn insert_static(&mut self, m: &StaticMapping) -> Result<(), StaticMappingError> {
        write_static(&mut self.fwd, &mut self.rev, m)
    }

    /// Removes a port forward's static mapping pair.
    pub fn remove_static(&mut self, m: &StaticMapping) -> Result<(), FastPathError> {
        erase_static(&mut self.fwd, &mut self.rev, m)
    }

    /// The reverse NAT entry of a public transport address, if any.
    pub fn nat_reverse(&self, key: &NatRevKey) -> Result<Option<NatRev>, FastPathError> {
        match self.rev.get(key, 0) {
            Ok(r) => Ok(Some(r)),
            Err(MapError::KeyNotFound) => Ok(None),
            Err(e) => Err(err(map_names::NAT_REV)(e)),
        }
    }

    /// The forward NAT entry of a private endpoint, if any.
    pub fn nat_mapping(&self, key: &NatFwdKey) -> Result<Option<NatMapping>, FastPathError> {
        match self.fwd.get(key, 0) {
            Ok(r) => Ok(Some(r)),
            Err(MapError::KeyNotFound) => Ok(None),
            Err(e) => Err(err(map_names::NAT_FWD)(e)),
        }
    }

    /// Removes the static mappings whose forward key is not in `keep` (port forwards no
    /// home has any more); returns how many went.
    pub fn remove_static_except(
        &mut self,
        keep: &std::collections::HashSet<NatFwdKey>,
    ) -> Result<usize, FastPathError> {
        let stale: Vec<(NatFwdKey, NatMapping)> = self
            .fwd
            .iter()
            .filter_map(Result::ok)
            .filter(|(k, m)| m.flags & nerg_abi::nat_flags::STATIC != 0 && !keep.contains(k))
            .collect();
        for (k, m) in &stale {
            let rev_key = NatRevKey {
                pub_ip: m.pub_ip,
                pub_port: m.pub_port,
                proto: k.proto,
                _pad: 0,
            };
            erase_static(
                &mut self.fwd,
                &mut self.rev,
                &StaticMapping {
                    fwd_key: *k,
                    rev_key,
                },
            )?;
        }
        Ok(stale.len())
    }

    /// Removes home `sub`'s NAT mappings on `public_ip` in the port ranges `blocks` (first,
    /// last), both directions, static ones included: one lookup per port and protocol, so
    /// the cost follows the home's blocks, not the size of the tables. Tombstones stay (the
    /// sweeper ends them). Returns how many mappings went.
    pub fn remove_nat_in_blocks(
        &mut self,
        sub: SubscriberId,
        public_ip: std::net::Ipv4Addr,
        blocks: &[(u16, u16)],
    ) -> Result<usize, FastPathError> {
        let pub_ip = u32::from_ne_bytes(public_ip.octets());
        let mut n = 0;
        for &(first, last) in blocks {
            for port in first..=last {
                for proto in [6u8, 17, 1] {
                    let rk = NatRevKey {
                        pub_ip,
                        pub_port: port.to_be(),
                        proto,
                        _pad: 0,
                    };
                    let r = match self.rev.get(&rk, 0) {
                        Ok(r) => r,
                        Err(MapError::KeyNotFound) => continue,
                        Err(e) => return Err(err(map_names::NAT_REV)(e)),
                    };
                    if r.sub != sub || r.flags & nerg_abi::nat_flags::TOMBSTONE != 0 {
                        continue;
                    }
                    let fk = NatFwdKey {
                        sub,
                        priv_ip: r.priv_ip,
                        priv_port: r.priv_port,
                        proto,
                        _pad: 0,
                    };
                    ignore_missing(self.fwd.remove(&fk)).map_err(err(map_names::NAT_FWD))?;
                    ignore_missing(self.rev.remove(&rk)).map_err(err(map_names::NAT_REV))?;
                    n += 1;
                }
            }
        }
        Ok(n)
    }
}
