//! NAT mapping expiry, in userspace, batched, off the fast path.
//!
//! The XDP program stamps each mapping with the time of its last upstream packet
//! (`bpf_ktime_get_ns`, i.e. CLOCK_MONOTONIC) and the TCP flags it has seen; this sweep
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

use aya::maps::{HashMap, MapData};
use nerg_abi::{NatFwdKey, NatMapping, NatRev, NatRevKey, map_names, nat_flags, tcp_seen};

use super::{FastPathError, maps::Maps};

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
    let idle = now_ns.saturating_sub(m.last_seen_ns);
    u128::from(idle) > timers.idle_limit(proto, m.tcp_seen).as_nanos()
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
}

/// The current CLOCK_MONOTONIC time in nanoseconds: the clock `bpf_ktime_get_ns` reads.
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
}

impl NatTables {
    /// Opens the NAT tables pinned in `pin_dir`.
    pub fn open(pin_dir: &std::path::Path) -> Result<Self, FastPathError> {
        let open = |name: &'static str| {
            let err = move |source| FastPathError::Map { name, source };
            MapData::from_pin(pin_dir.join(name))
                .map(aya::maps::Map::HashMap)
                .map_err(err)
        };
        let err = |name: &'static str| move |source| FastPathError::Map { name, source };
        Ok(Self {
            fwd: HashMap::try_from(open(map_names::NAT_FWD)?).map_err(err(map_names::NAT_FWD))?,
            rev: HashMap::try_from(open(map_names::NAT_REV)?).map_err(err(map_names::NAT_REV))?,
        })
    }

    /// One expiry pass at `now_ns`.
    pub fn sweep(&mut self, timers: &Timers, now_ns: u64) -> Result<SweepReport, FastPathError> {
        sweep(&mut self.fwd, &mut self.rev, timers, now_ns)
    }
}

impl Maps<'_> {
    /// One expiry pass over the NAT tables at `now_ns`.
    pub fn sweep_nat(
        &mut self,
        timers: &Timers,
        now_ns: u64,
    ) -> Result<SweepReport, FastPathError> {
        let mut fwd: HashMap<&mut MapData, NatFwdKey, NatMapping> =
            self.hash(map_names::NAT_FWD)?;
        // Collect the expired ones with this handle, then take the other table.
        let expired_keys = expire_fwd(&mut fwd, timers, now_ns)?;
        let mut rev: HashMap<&mut MapData, NatRevKey, NatRev> = self.hash(map_names::NAT_REV)?;
        finish_rev(&mut rev, expired_keys, timers, now_ns)
    }
}

fn sweep<F, R>(
    fwd: &mut HashMap<F, NatFwdKey, NatMapping>,
    rev: &mut HashMap<R, NatRevKey, NatRev>,
    timers: &Timers,
    now_ns: u64,
) -> Result<SweepReport, FastPathError>
where
    F: std::borrow::BorrowMut<MapData>,
    R: std::borrow::BorrowMut<MapData>,
{
    let expired_keys = expire_fwd(fwd, timers, now_ns)?;
    finish_rev(rev, expired_keys, timers, now_ns)
}

/// Removes the expired forward entries; returns how many were looked at and the public
/// transport addresses they held.
fn expire_fwd<F: std::borrow::BorrowMut<MapData>>(
    fwd: &mut HashMap<F, NatFwdKey, NatMapping>,
    timers: &Timers,
    now_ns: u64,
) -> Result<(usize, Vec<NatRevKey>), FastPathError> {
    let err = |source| FastPathError::Map {
        name: map_names::NAT_FWD,
        source,
    };
    // Collect first: deleting while iterating a BPF hash map can skip or repeat entries.
    let entries: Vec<(NatFwdKey, NatMapping)> = fwd.iter().filter_map(Result::ok).collect();
    let mut freed = Vec::new();
    for (key, m) in &entries {
        if !expired(timers, key.proto, m, now_ns) {
            continue;
        }
        // Re-read: a packet may have refreshed it since the iteration.
        match fwd.get(key, 0) {
            Ok(current) if expired(timers, key.proto, &current, now_ns) => {}
            _ => continue,
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
    Ok((entries.len(), freed))
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
        released: 0,
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
        let s = |secs: u64| secs * 1_000_000_000;
        // UDP: 300 s.
        assert!(!expired(&t, 17, &mapping(0, 0), s(300)));
        assert!(expired(&t, 17, &mapping(0, 0), s(301)));
        // ICMP: 60 s.
        assert!(!expired(&t, 1, &mapping(0, 0), s(60)));
        assert!(expired(&t, 1, &mapping(0, 0), s(61)));
        // TCP: SYN only is transitory; established lasts 2 h 4 min; FIN/RST transitory.
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
