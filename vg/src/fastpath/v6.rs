//! The IPv6 tables of the fast path (issue 18), opened from their bpffs pins: the homes'
//! prefixes (`NERG_V6_PREFIXES`, an LPM trie vgd writes) and their neighbours
//! (`NERG_V6_NEIGH`, which the slow path learns and writes). The fast path routes a home's
//! IPv6 only while its record has [`nerg_abi::sub_flags::IPV6`]; these tables say where.
//!
//! Rules the writers keep, the same in the control plane's test double
//! (`control::fake`): a prefix of one home is never replaced by another's (as LSL keys), a
//! removal only removes the remover's own prefix, and neighbour entries are per home.

use std::net::Ipv6Addr;

use aya::maps::{Array, HashMap, LpmTrie, Map, MapData, MapError, lpm_trie::Key};
use ipnet::Ipv6Net;
use nerg_abi::{SubscriberId, V6Neigh, V6NeighKey, V6Prefix, V6PrefixKey, V6Range, map_names};

use super::FastPathError;

/// `BPF_NOEXIST` (`<linux/bpf.h>`): an update that only creates, never replaces.
const BPF_NOEXIST: u64 = 1;
/// `EEXIST` (`<errno.h>`).
const EEXIST: i32 = 17;

fn err(name: &'static str) -> impl FnOnce(MapError) -> FastPathError {
    move |source| FastPathError::Map { name, source }
}

/// Why a prefix could not be given to a home.
#[derive(Debug, thiserror::Error)]
pub enum V6PrefixError {
    /// Another home holds exactly this prefix; its entry was left as it is.
    #[error("the fast path's entry for this IPv6 prefix belongs to subscriber {owner}")]
    Taken {
        /// The home holding it.
        owner: SubscriberId,
    },
    /// A map operation failed.
    #[error(transparent)]
    Map(#[from] FastPathError),
}

/// The trie key of `prefix` (its host bits cleared).
pub fn prefix_key(prefix: Ipv6Net) -> Key<V6PrefixKey> {
    let p = prefix.trunc();
    Key::new(
        u32::from(p.prefix_len()),
        V6PrefixKey {
            addr: p.addr().octets(),
        },
    )
}

/// The prefix a trie key stands for.
pub fn key_prefix(key: &Key<V6PrefixKey>) -> Option<Ipv6Net> {
    let len = u8::try_from(key.prefix_len()).ok()?;
    Ipv6Net::new(Ipv6Addr::from(key.data().addr), len).ok()
}

/// A `NERG_V6_PREFIXES` value: `prefix_kind` LAN with the gateway's address on it, or
/// DELEGATED with the requesting router's address.
pub fn prefix_entry(sub: SubscriberId, kind: u8, addr: Ipv6Addr) -> V6Prefix {
    V6Prefix {
        sub,
        kind,
        _pad: [0; 3],
        addr: addr.octets(),
    }
}

/// The neighbour table's key for `addr` in home `sub`.
pub fn neigh_key(sub: SubscriberId, addr: Ipv6Addr) -> V6NeighKey {
    V6NeighKey {
        sub,
        addr: addr.octets(),
    }
}

/// The first 64 bits (host byte order) of the lowest and the highest address of `prefix`.
pub fn prefix_span(prefix: Ipv6Net) -> (u64, u64) {
    let top = |a: Ipv6Addr| (u128::from(a) >> 64) as u64;
    (top(prefix.network()), top(prefix.broadcast()))
}

/// The IPv6 prefix trie, its span and the neighbour table, opened from their pins.
pub struct V6Tables {
    prefixes: LpmTrie<MapData, V6PrefixKey, V6Prefix>,
    range: Array<MapData, V6Range>,
    neighbours: HashMap<MapData, V6NeighKey, V6Neigh>,
}

impl V6Tables {
    /// Opens `NERG_V6_PREFIXES` and `NERG_V6_NEIGH` pinned in `pin_dir`.
    pub fn open(pin_dir: &std::path::Path) -> Result<Self, FastPathError> {
        let open = |name: &'static str| MapData::from_pin(pin_dir.join(name)).map_err(err(name));
        Ok(Self {
            prefixes: LpmTrie::try_from(Map::LpmTrie(open(map_names::V6_PREFIXES)?))
                .map_err(err(map_names::V6_PREFIXES))?,
            range: Array::try_from(Map::Array(open(map_names::V6_RANGE)?))
                .map_err(err(map_names::V6_RANGE))?,
            neighbours: HashMap::try_from(Map::HashMap(open(map_names::V6_NEIGH)?))
                .map_err(err(map_names::V6_NEIGH))?,
        })
    }

    /// The entry of exactly `prefix` (a lookup with the prefix's own length finds the
    /// longest entry no longer than it: the prefix's own when it has one).
    fn exact(&self, prefix: Ipv6Net) -> Result<Option<V6Prefix>, FastPathError> {
        let key = prefix_key(prefix);
        match self.prefixes.get(&key, 0) {
            Ok(v) => Ok(Some(v)),
            Err(MapError::KeyNotFound) => Ok(None),
            Err(e) => Err(err(map_names::V6_PREFIXES)(e)),
        }
    }

    /// Gives `prefix` to home `entry.sub` (or updates its entry); another home's entry for
    /// exactly this prefix is never replaced. Created with `BPF_NOEXIST`, so a racing
    /// writer's entry is not replaced either.
    pub fn insert_prefix(&mut self, prefix: Ipv6Net, entry: V6Prefix) -> Result<(), V6PrefixError> {
        // The span first: the fast path never looks up a destination outside it.
        let (lo, hi) = prefix_span(prefix);
        let range = self.range.get(&0, 0).map_err(err(map_names::V6_RANGE))?;
        let widened = range.with(lo, hi);
        if widened != range {
            self.range
                .set(0, widened, 0)
                .map_err(err(map_names::V6_RANGE))?;
        }
        let name = map_names::V6_PREFIXES;
        let key = prefix_key(prefix);
        match self.prefixes.insert(&key, entry, BPF_NOEXIST) {
            Ok(()) => return Ok(()),
            Err(MapError::SyscallError(e)) if e.io_error.raw_os_error() == Some(EEXIST) => {}
            Err(e) => return Err(err(name)(e).into()),
        }
        match self.exact(prefix)? {
            Some(old) if old.sub != entry.sub => Err(V6PrefixError::Taken { owner: old.sub }),
            _ => Ok(self.prefixes.insert(&key, entry, 0).map_err(err(name))?),
        }
    }

    /// Removes `prefix` if it is home `id`'s; true if it removed one.
    pub fn remove_prefix(
        &mut self,
        prefix: Ipv6Net,
        id: SubscriberId,
    ) -> Result<bool, FastPathError> {
        if self.exact(prefix)?.is_none_or(|e| e.sub != id) {
            return Ok(false);
        }
        match self.prefixes.remove(&prefix_key(prefix)) {
            Ok(()) => Ok(true),
            // The entry found was a shorter prefix of the same home's: nothing to remove.
            Err(MapError::KeyNotFound) => Ok(false),
            Err(MapError::SyscallError(e)) if e.io_error.raw_os_error() == Some(2) => Ok(false),
            Err(e) => Err(err(map_names::V6_PREFIXES)(e)),
        }
    }

    /// Every prefix entry (one pass over the trie).
    pub fn prefix_entries(&self) -> Vec<(Ipv6Net, V6Prefix)> {
        let mut out: Vec<_> = self
            .prefixes
            .iter()
            .filter_map(Result::ok)
            .filter_map(|(k, v)| Some((key_prefix(&k)?, v)))
            .collect();
        out.sort_by_key(|(p, _)| *p);
        out
    }

    /// Sets the span of the prefixes to exactly what the trie holds (vgd's start, after
    /// removing stale prefixes: removals never narrow it).
    pub fn recompute_range(&mut self) -> Result<V6Range, FastPathError> {
        let range = self
            .prefix_entries()
            .into_iter()
            .fold(V6Range::default(), |r, (p, _)| {
                let (lo, hi) = prefix_span(p);
                r.with(lo, hi)
            });
        self.range
            .set(0, range, 0)
            .map_err(err(map_names::V6_RANGE))?;
        Ok(range)
    }

    /// Adds or updates home `sub`'s neighbour `addr`.
    pub fn insert_neighbour(
        &mut self,
        sub: SubscriberId,
        addr: Ipv6Addr,
        n: V6Neigh,
    ) -> Result<(), FastPathError> {
        self.neighbours
            .insert(neigh_key(sub, addr), n, 0)
            .map_err(err(map_names::V6_NEIGH))
    }

    /// Removes home `sub`'s neighbour `addr`; true if there was one.
    pub fn remove_neighbour(
        &mut self,
        sub: SubscriberId,
        addr: Ipv6Addr,
    ) -> Result<bool, FastPathError> {
        match self.neighbours.remove(&neigh_key(sub, addr)) {
            Ok(()) => Ok(true),
            Err(MapError::KeyNotFound) => Ok(false),
            Err(MapError::SyscallError(e)) if e.io_error.raw_os_error() == Some(2) => Ok(false),
            Err(e) => Err(err(map_names::V6_NEIGH)(e)),
        }
    }

    /// Home `sub`'s neighbours, by address (one pass over the table).
    pub fn neighbours_of(&self, sub: SubscriberId) -> Vec<(Ipv6Addr, V6Neigh)> {
        let mut out: Vec<_> = self
            .neighbours
            .iter()
            .filter_map(Result::ok)
            .filter(|(k, _)| k.sub == sub)
            .map(|(k, n)| (Ipv6Addr::from(k.addr), n))
            .collect();
        out.sort_by_key(|(a, _)| *a);
        out
    }

    /// Every neighbour entry (one pass), for the start-up reconcile.
    pub fn neighbour_entries(&self) -> Vec<(V6NeighKey, V6Neigh)> {
        self.neighbours.iter().filter_map(Result::ok).collect()
    }
}
