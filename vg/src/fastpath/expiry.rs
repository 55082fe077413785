//! NAT mapping expiry, in userspace, batched, off the fast path.
//!
//! The XDP program stamps each mapping with the time of its last upstream packet
//! (`bpf_ktime_get_coarse_ns`, i.e. CLOCK_MONOTONIC at tick resolution, rewritten once a
//! second at most: [`LAST_SEEN_STEP_NS`]) and the TCP flags it has seen; this sweep
//! removes mappings idle for longer than their protocol's timer (RFC 4787 REQ-5, RFC 5382
//! REQ-5, RFC 5508 REQ-1, RFC 7857 §2.2). A removed mapping's public port is not freed at
//! once: its reverse entry becomes a tombstone for the hold-down (RFC 6888 REQ-8), which the
//! fast path treats as taken and translates nothing to, and a later sweep removes it.
//!
//! The tables are plain hash maps, never LRU: nothing but this sweep deletes a mapping, so a
//! live flow is never evicted by pressure. Races with the fast path: a mapping is re-read
//! right before its deletion and kept if a packet refreshed it meanwhile; the window left
//! (a packet between that read and the delete) can only hit a flow that was idle for the
//! whole timer.

use std::time::Duration;

use std::collections::BTreeMap;

use aya::maps::{Array, HashMap, MapData};
use nerg_abi::{
    LAST_SEEN_STEP_NS, NatFwdKey, NatMapping, NatPermitKey, NatRev, NatRevKey, SubscriberId,
    map_names, nat_flags, tcp_seen,
};

use super::FastPathError;

/// The idle timers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timers {
    /// UDP (RFC 4787 REQ-5: at least 2 min, 5 min recommended).
    pub udp: Duration,
    /// TCP established (RFC 5382 REQ-5: at least 2 h 4 min).
    pub tcp_established: Duration,
    /// TCP before establishment and after FIN or RST (RFC 5382, RFC 7857: 4 min).
    pub tcp_transitory: Duration,
    /// ICMP query (RFC 5508 REQ-1: at least 60 s).
    pub icmp: Duration,
    /// How long a freed public port is held back (RFC 6888 REQ-8: 120 s).
    pub port_hold_down: Duration,
}

impl Default for Timers {
    fn default() -> Self {
        Self {
            udp: Duration::from_secs(300),
            tcp_established: Duration::from_secs(7440),
            tcp_transitory: Duration::from_secs(240),
            icmp: Duration::from_secs(60),
            port_hold_down: Duration::from_secs(120),
        }
    }
}

impl Timers {
    /// The timers of a `[nat]` configuration (hold-down included).
    pub fn from_nat(nat: &crate::nat::NatConfig) -> Self {
        let t = nat.timeouts();
        let secs = |s: u32| Duration::from_secs(u64::from(s));
        Self {
            udp: secs(t.udp_secs()),
            tcp_established: secs(t.tcp_established_secs()),
            tcp_transitory: secs(t.tcp_transitory_secs()),
            icmp: secs(t.icmp_secs()),
            port_hold_down: secs(nat.hold_down_secs()),
        }
    }

    /// The idle time after which a mapping of `proto` with `seen` TCP flags expires.
    pub fn idle_limit(&self, proto: u8, seen: u8) -> Duration {
        match proto {
            6 => {
                let closing = seen & (tcp_seen::FIN_OUT | tcp_seen::RST) != 0;
                if seen & tcp_seen::ESTABLISHED != 0 && !closing {
                    self.tcp_established
                } else {
                    self.tcp_transitory
                }
            }
            1 => self.icmp,
            _ => self.udp,
        }
    }
}

/// Whether mapping `m` (of protocol `proto`) has expired at `now_ns` (CLOCK_MONOTONIC).
pub fn expired(timers: &Timers, proto: u8, m: &NatMapping, now_ns: u64) -> bool {
    if m.flags & nat_flags::STATIC != 0 {
        return false;
    }
    idle_longer_than(now_ns, m.last_seen_ns, timers.idle_limit(proto, m.tcp_seen))
}

/// Whether an entry last used at `last_seen_ns` has been idle for longer than `limit` at
/// `now_ns`. The fast path lets a timestamp fall up to [`LAST_SEEN_STEP_NS`] behind, so that
/// step is added: nothing expires sooner than its timer.
fn idle_longer_than(now_ns: u64, last_seen_ns: u64, limit: Duration) -> bool {
    let idle = now_ns.saturating_sub(last_seen_ns);
    u128::from(idle) > limit.as_nanos() + u128::from(LAST_SEEN_STEP_NS)
}

/// What one sweep did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// Mappings looked at.
    pub mappings: usize,
    /// Mappings expired (their ports now held back).
    pub expired: usize,
    /// Held-back ports released.
    pub released: usize,
    /// Filtering permissions (APDF homes' remote endpoints) looked at.
    pub permits: usize,
    /// Permissions removed: idle, or their mapping gone.
    pub permits_expired: usize,
}

/// The current CLOCK_MONOTONIC time in nanoseconds: the clock the fast path's timestamps
/// come from (`bpf_ktime_get_coarse_ns` reads it at tick resolution, never ahead of this).
pub fn monotonic_ns() -> u64 {
    let ts = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .expect("CLOCK_MONOTONIC is always available on Linux");
    (ts.tv_sec() as u64) * 1_000_000_000 + ts.tv_nsec() as u64
}

/// The NAT tables opened from their bpffs pins: what vgd's expiry task holds, independent of
/// the loaded object.
pub struct NatTables {
    fwd: HashMap<MapData, NatFwdKey, NatMapping>,
    rev: HashMap<MapData, NatRevKey, NatRev>,
    permits: HashMap<MapData, NatPermitKey, u64>,
    sessions: Array<MapData, u64>,
    /// The session counts this sweep wrote last (non-zero only): a home whose last mapping
    /// expired gets its count reset to 0 without scanning the whole array.
    written: BTreeMap<SubscriberId, u64>,
}

impl NatTables {
    /// Opens the NAT tables pinned in `pin_dir`.
    pub fn open(pin_dir: &std::path::Path) -> Result<Self, FastPathError> {
        fn data(dir: &std::path::Path, name: &'static str) -> Result<MapData, FastPathError> {
            MapData::from_pin(dir.join(name)).map_err(|source| FastPathError::Map { name, source })
        }
        fn hash<K: aya::Pod, V: aya::Pod>(
            dir: &std::path::Path,
            name: &'static str,
        ) -> Result<HashMap<MapData, K, V>, FastPathError> {
            HashMap::try_from(aya::maps::Map::HashMap(data(dir, name)?))
                .map_err(|source| FastPathError::Map { name, source })
        }
        let name = map_names::SUB_SESSIONS;
        let sessions = Array::try_from(aya::maps::Map::Array(data(pin_dir, name)?))
            .map_err(|source| FastPathError::Map { name, source })?;
        Ok(Self {
            fwd: hash(pin_dir, map_names::NAT_FWD)?,
            rev: hash(pin_dir, map_names::NAT_REV)?,
            permits: hash(pin_dir, map_names::NAT_PERMIT)?,
            sessions,
            written: BTreeMap::new(),
        })
    }

    /// One expiry pass at `now_ns`: idle mappings become held-back ports, held-back ports
    /// whose hold-down ended are released, idle or orphaned filtering permissions go, and
    /// every home's session count is rewritten exactly.
    pub fn sweep(&mut self, timers: &Timers, now_ns: u64) -> Result<SweepReport, FastPathError> {
        let (mappings, freed, live) = expire_fwd(&mut self.fwd, timers, now_ns)?;
        let mut report = finish_rev(&mut self.rev, (mappings, freed), timers, now_ns)?;
        (report.permits, report.permits_expired) =
            expire_permits(&mut self.permits, &self.rev, timers, now_ns)?;
        self.write_sessions(live)?;
        Ok(report)
    }

    /// The session count the fast path holds for `sub` (what the limit is checked against).
    pub fn sessions(&self, sub: SubscriberId) -> Result<u64, FastPathError> {
        self.sessions
            .get(&sub, 0)
            .map_err(|source| FastPathError::Map {
                name: map_names::SUB_SESSIONS,
                source,
            })
    }

    fn write_sessions(&mut self, live: BTreeMap<SubscriberId, u64>) -> Result<(), FastPathError> {
        let err = |source| FastPathError::Map {
            name: map_names::SUB_SESSIONS,
            source,
        };
        for sub in self.written.keys() {
            if !live.contains_key(sub) {
                self.sessions.set(*sub, 0, 0).map_err(err)?;
            }
        }
        for (sub, n) in &live {
            self.sessions.set(*sub, n, 0).map_err(err)?;
        }
        self.written = live;
        Ok(())
    }
}

/// Removes the expired forward entries; returns how many were looked at, the public
/// transport addresses the expired ones held, and each home's remaining dynamic mappings.
#[expect(
    clippy::type_complexity,
    reason = "three results of one pass, named at the one call site"
)]
fn expire_fwd<F: std::borrow::BorrowMut<MapData>>(
    fwd: &mut HashMap<F, NatFwdKey, NatMapping>,
    timers: &Timers,
    now_ns: u64,
) -> Result<(usize, Vec<NatRevKey>, BTreeMap<SubscriberId, u64>), FastPathError> {
    let err = |source| FastPathError::Map {
        name: map_names::NAT_FWD,
        source,
    };
    // Collect first: deleting while iterating a BPF hash map can skip or repeat entries.
    let entries: Vec<(NatFwdKey, NatMapping)> = fwd.iter().filter_map(Result::ok).collect();
    let mut freed = Vec::new();
    let mut live = BTreeMap::new();
    for (key, m) in &entries {
        if !expired(timers, key.proto, m, now_ns) {
            // Port forwards are configuration, not sessions: they do not count.
            if m.flags & nat_flags::STATIC == 0 {
                *live.entry(key.sub).or_insert(0) += 1;
            }
            continue;
        }
        // Re-read: a packet may have refreshed it since the iteration.
        match fwd.get(key, 0) {
            Ok(current) if expired(timers, key.proto, &current, now_ns) => {}
            Ok(_) => {
                *live.entry(key.sub).or_insert(0) += 1;
                continue;
            }
            Err(_) => continue,
        }
        match fwd.remove(key) {
            Ok(()) | Err(aya::maps::MapError::KeyNotFound) => {}
            Err(e) => return Err(err(e)),
        }
        freed.push(NatRevKey {
            pub_ip: m.pub_ip,
            pub_port: m.pub_port,
            proto: key.proto,
            _pad: 0,
        });
    }
    Ok((entries.len(), freed, live))
}

/// Turns the freed ports into tombstones and releases the tombstones whose hold-down ended.
fn finish_rev<R: std::borrow::BorrowMut<MapData>>(
    rev: &mut HashMap<R, NatRevKey, NatRev>,
    (mappings, freed): (usize, Vec<NatRevKey>),
    timers: &Timers,
    now_ns: u64,
) -> Result<SweepReport, FastPathError> {
    let err = |source| FastPathError::Map {
        name: map_names::NAT_REV,
        source,
    };
    let mut report = SweepReport {
        mappings,
        expired: freed.len(),
        ..SweepReport::default()
    };
    for key in freed {
        let tombstone = NatRev {
            flags: nat_flags::TOMBSTONE,
            last_seen_ns: now_ns,
            ..NatRev::default()
        };
        rev.insert(key, tombstone, 0).map_err(err)?;
    }
    let hold = timers.port_hold_down.as_nanos();
    let stale: Vec<NatRevKey> = rev
        .iter()
        .filter_map(Result::ok)
        .filter(|(_, r)| {
            r.flags & nat_flags::TOMBSTONE != 0
                && u128::from(now_ns.saturating_sub(r.last_seen_ns)) > hold
        })
        .map(|(k, _)| k)
        .collect();
    for key in stale {
        match rev.remove(&key) {
            Ok(()) | Err(aya::maps::MapError::KeyNotFound) => report.released += 1,
            Err(e) => return Err(err(e)),
        }
    }
    Ok(report)
}

/// Removes the filtering permissions that are idle for longer than their protocol's longest
/// timer, or whose mapping is gone (expired or held back); returns (looked at, removed).
fn expire_permits<P, R>(
    permits: &mut HashMap<P, NatPermitKey, u64>,
    rev: &HashMap<R, NatRevKey, NatRev>,
    timers: &Timers,
    now_ns: u64,
) -> Result<(usize, usize), FastPathError>
where
    P: std::borrow::BorrowMut<MapData>,
    R: std::borrow::Borrow<MapData>,
{
    let entries: Vec<(NatPermitKey, u64)> = permits.iter().filter_map(Result::ok).collect();
    let mut removed = 0;
    for (key, last) in &entries {
        let limit = timers.idle_limit(key.proto, tcp_seen::SYN_OUT | tcp_seen::ESTABLISHED);
        let idle = idle_longer_than(now_ns, *last, limit);
        let mapping = rev.get(
            &NatRevKey {
                pub_ip: key.pub_ip,
                pub_port: key.pub_port,
                proto: key.proto,
                _pad: 0,
            },
            0,
        );
        let orphan = !matches!(mapping, Ok(r) if r.flags & nat_flags::TOMBSTONE == 0);
        if !(idle || orphan) {
            continue;
        }
        match permits.remove(key) {
            Ok(()) | Err(aya::maps::MapError::KeyNotFound) => removed += 1,
            Err(source) => {
                return Err(FastPathError::Map {
                    name: map_names::NAT_PERMIT,
                    source,
                });
            }
        }
    }
    Ok((entries.len(), removed))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mapping(last_seen_s: u64, seen: u8) -> NatMapping {
        NatMapping {
            last_seen_ns: last_seen_s * 1_000_000_000,
            tcp_seen: seen,
            ..NatMapping::default()
        }
    }

    #[test]
    fn timers_follow_the_rfcs() {
        let t = Timers::default();
        // A mapping lives its timer plus the fast path's timestamp step, and no longer.
        let s = |secs: u64| secs * 1_000_000_000 + LAST_SEEN_STEP_NS;
        // UDP: 300 s.
        assert!(!expired(&t, 17, &mapping(0, 0), s(300)));
        assert!(expired(&t, 17, &mapping(0, 0), s(300) + 1));
        // ICMP: 60 s.
        assert!(!expired(&t, 1, &mapping(0, 0), s(60)));
        assert!(expired(&t, 1, &mapping(0, 0), s(60) + 1));
        // TCP: SYN only is transitory; established lasts 2 h 4 min; FIN/RST transitory.
        assert!(!expired(&t, 6, &mapping(0, tcp_seen::SYN_OUT), s(240)));
        assert!(expired(&t, 6, &mapping(0, tcp_seen::SYN_OUT), s(241)));
        let est = tcp_seen::SYN_OUT | tcp_seen::ESTABLISHED;
        assert!(!expired(&t, 6, &mapping(0, est), s(7440)));
        assert!(expired(&t, 6, &mapping(0, est), s(7441)));
        assert!(expired(&t, 6, &mapping(0, est | tcp_seen::FIN_OUT), s(241)));
        assert!(expired(&t, 6, &mapping(0, est | tcp_seen::RST), s(241)));
        // Static entries (port forwards) never expire; the clock going "back" does nothing.
        let mut st = mapping(0, 0);
        st.flags = nat_flags::STATIC;
        assert!(!expired(&t, 17, &st, s(1_000_000)));
        assert!(!expired(&t, 17, &mapping(500, 0), s(100)));
    }
}
