//! The prefix allocator: which home holds which prefix, and which prefixes rest in
//! hold-down.
//!
//! Prefixes are ranges of the 128-bit address space (`u128`), kept in one ordered map of
//! disjoint ranges, each owned by a home or held until a time. A home's prefix is aligned on
//! its length. The first free aligned range is found from a cursor per pool and length (the
//! end of the last allocation), so provisioning many homes in a row costs one lookup each;
//! a candidate overlapping a taken range jumps past it. Expired hold-downs found on the way
//! are reclaimed (and reported, so the store forgets them).
//!
//! Sticky: [`PrefixPool::assign`] keeps a home's prefix while it satisfies the home's
//! policy; [`PrefixPool::restore`] takes back what the store held. A pinned prefix
//! (`ipv6 = { prefix = ... }`) is the operator's explicit choice: it takes a prefix out of
//! hold-down (and says so), but never from another home.

use std::collections::{BTreeMap, HashMap};

use ipnet::Ipv6Net;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::config::{Ipv6Config, Ipv6Policy};
use crate::nat::UnixTime;

/// A home's id (the subscriber id).
pub type HomeId = u32;

/// A home's prefix and since when it has it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assigned {
    /// The prefix.
    pub prefix: Ipv6Net,
    /// When the home got it.
    pub since: UnixTime,
}

impl Assigned {
    /// The home's LAN: the first /64 of its prefix.
    pub fn lan(&self) -> Ipv6Net {
        Ipv6Net::new(self.prefix.network(), 64).expect("64 is a valid length")
    }
}

/// A prefix in hold-down until `until`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldPrefix {
    /// The prefix.
    pub prefix: Ipv6Net,
    /// When it may be handed out again.
    pub until: UnixTime,
}

/// What one call changed, for the store and the log.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PrefixChange {
    /// The home's new prefix, when it got one.
    pub assigned: Option<Assigned>,
    /// Its previous prefix, now in hold-down.
    pub released: Option<HeldPrefix>,
    /// Hold-downs that ended (reclaimed on the way) or were overridden by a pinned prefix.
    pub unheld: Vec<HeldPrefix>,
}

/// Why a home gets no prefix.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum PrefixError {
    /// The home's policy is IPv4 only.
    #[error("IPv6 is off for this home")]
    Off,
    /// Every prefix of that length is taken or held.
    #[error("no free /{0} left in the IPv6 pools")]
    Exhausted(u8),
    /// The pinned prefix is not inside a pool.
    #[error("{0} is not inside the IPv6 pools")]
    OutsidePools(Ipv6Net),
    /// The pinned prefix overlaps another home's.
    #[error("{prefix} overlaps home {home}'s {theirs}")]
    Taken {
        /// The prefix asked for.
        prefix: Ipv6Net,
        /// The home holding an overlapping one.
        home: HomeId,
        /// Its prefix.
        theirs: Ipv6Net,
    },
}

/// Occupancy of the pools.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct PrefixStats {
    /// Homes with a prefix.
    pub assigned: usize,
    /// Prefixes in hold-down.
    pub held: usize,
    /// How many prefixes of the default length the pools hold in all.
    pub capacity: f64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Owner {
    Home(HomeId),
    Held(UnixTime),
}

#[derive(Clone, Copy, Debug)]
struct Taken {
    len: u8,
    owner: Owner,
}

fn start(p: &Ipv6Net) -> u128 {
    u128::from(p.network())
}

/// The last address of `p`.
fn end(p: &Ipv6Net) -> u128 {
    u128::from(p.broadcast())
}

fn net(start: u128, len: u8) -> Ipv6Net {
    Ipv6Net::new(start.into(), len).expect("lengths are at most 64")
}

/// The prefix pools and who holds what.
#[derive(Clone, Debug)]
pub struct PrefixPool {
    pools: Vec<Ipv6Net>,
    default_len: u8,
    hold_down_secs: u64,
    homes: BTreeMap<HomeId, Assigned>,
    /// Disjoint ranges by first address.
    taken: BTreeMap<u128, Taken>,
    /// Where the next search of (pool, length) starts.
    cursor: HashMap<(usize, u8), u128>,
}

impl PrefixPool {
    /// Empty pools.
    pub fn new(cfg: &Ipv6Config) -> Self {
        Self {
            pools: cfg.pools().to_vec(),
            default_len: cfg.delegated_length(),
            hold_down_secs: cfg.hold_down_secs(),
            homes: BTreeMap::new(),
            taken: BTreeMap::new(),
            cursor: HashMap::new(),
        }
    }

    /// The pools with what the store held: homes' prefixes first, then hold-downs. A stored
    /// prefix outside the pools, overlapping one restored before it, or a hold-down that
    /// ended, is left out and returned (the caller forgets it in the store).
    pub fn restore(
        cfg: &Ipv6Config,
        homes: impl IntoIterator<Item = (HomeId, Assigned)>,
        held: impl IntoIterator<Item = HeldPrefix>,
        now: UnixTime,
    ) -> (Self, Vec<(Option<HomeId>, Ipv6Net)>) {
        let mut this = Self::new(cfg);
        let mut dropped = Vec::new();
        for (home, a) in homes {
            if this.homes.contains_key(&home)
                || !cfg.in_pools(&a.prefix)
                || this.overlap(&a.prefix).is_some()
            {
                dropped.push((Some(home), a.prefix));
                continue;
            }
            this.take(a.prefix, Owner::Home(home));
            this.homes.insert(home, a);
        }
        for h in held {
            if h.until <= now || !cfg.in_pools(&h.prefix) || this.overlap(&h.prefix).is_some() {
                dropped.push((None, h.prefix));
                continue;
            }
            this.take(h.prefix, Owner::Held(h.until));
        }
        (this, dropped)
    }

    /// Home `home`'s prefix.
    pub fn get(&self, home: HomeId) -> Option<&Assigned> {
        self.homes.get(&home)
    }

    /// Every home's prefix.
    pub fn homes(&self) -> impl Iterator<Item = (HomeId, &Assigned)> {
        self.homes.iter().map(|(h, a)| (*h, a))
    }

    /// The home holding `addr` (inside its prefix), if any.
    pub fn home_of(&self, addr: std::net::Ipv6Addr) -> Option<HomeId> {
        let a = u128::from(addr);
        let (s, t) = self.taken.range(..=a).next_back()?;
        let p = net(*s, t.len);
        match t.owner {
            Owner::Home(h) if p.contains(&addr) => Some(h),
            _ => None,
        }
    }

    /// Gives home `home` a prefix satisfying `policy`: the one it has if it does, else a
    /// new one (its old one goes to hold-down). `Off` releases what it had. On an error the
    /// home keeps what it had.
    pub fn assign(
        &mut self,
        home: HomeId,
        policy: Ipv6Policy,
        now: UnixTime,
    ) -> Result<PrefixChange, PrefixError> {
        if let Some(a) = self.homes.get(&home)
            && policy.accepts(&a.prefix)
        {
            return Ok(PrefixChange::default());
        }
        let mut change = PrefixChange::default();
        let (prefix, unheld) = match policy {
            Ipv6Policy::Off => {
                change.released = self.release(home, now);
                return Ok(change);
            }
            Ipv6Policy::Pinned(p) => self.check_pinned(home, p)?,
            Ipv6Policy::Length(len) => self.find_free(len, now)?,
        };
        change.unheld = unheld;
        let old = self.homes.get(&home).map(|a| a.prefix);
        if old.is_some_and(|o| o.contains(&prefix) || prefix.contains(&o)) {
            // Pinned to a part (or a superset) of what it has: the space stays the home's,
            // so nothing rests in hold-down.
            if let Some(o) = old {
                self.taken.remove(&start(&o));
                self.homes.remove(&home);
            }
        } else {
            change.released = self.release(home, now);
        }
        for h in &change.unheld {
            self.taken.remove(&start(&h.prefix));
        }
        self.take(prefix, Owner::Home(home));
        let a = Assigned { prefix, since: now };
        self.homes.insert(home, a);
        change.assigned = Some(a);
        Ok(change)
    }

    /// Undoes what [`Self::assign`] did for home `home` (its change could not be stored):
    /// the new prefix goes, the old one and the hold-downs come back.
    pub fn undo(&mut self, home: HomeId, change: &PrefixChange, had: Option<Assigned>) {
        if let Some(a) = change.assigned {
            self.taken.remove(&start(&a.prefix));
            self.homes.remove(&home);
        }
        if let Some(h) = change.released {
            self.taken.remove(&start(&h.prefix));
        }
        if let Some(a) = had {
            self.take(a.prefix, Owner::Home(home));
            self.homes.insert(home, a);
        }
        for h in &change.unheld {
            self.take(h.prefix, Owner::Held(h.until));
        }
    }

    /// Home `home` gives its prefix back: it rests in hold-down.
    pub fn release(&mut self, home: HomeId, now: UnixTime) -> Option<HeldPrefix> {
        let a = self.homes.remove(&home)?;
        let until = now.plus(self.hold_down_secs);
        if until <= now {
            self.taken.remove(&start(&a.prefix));
            return None;
        }
        self.take(a.prefix, Owner::Held(until));
        Some(HeldPrefix {
            prefix: a.prefix,
            until,
        })
    }

    /// Occupancy.
    pub fn stats(&self) -> PrefixStats {
        let capacity = self
            .pools
            .iter()
            .map(|p| 2f64.powi(i32::from(self.default_len - p.prefix_len())))
            .sum();
        PrefixStats {
            assigned: self.homes.len(),
            held: self.taken.len() - self.homes.len(),
            capacity,
        }
    }

    /// The hold-downs, for the API.
    pub fn held(&self) -> impl Iterator<Item = HeldPrefix> + '_ {
        self.taken.iter().filter_map(|(s, t)| match t.owner {
            Owner::Held(until) => Some(HeldPrefix {
                prefix: net(*s, t.len),
                until,
            }),
            Owner::Home(_) => None,
        })
    }

    fn take(&mut self, prefix: Ipv6Net, owner: Owner) {
        let len = prefix.prefix_len();
        self.taken.insert(start(&prefix), Taken { len, owner });
    }

    /// The taken range overlapping `p`, if any (ranges are disjoint: the one starting last
    /// before `p`'s end is the only candidate).
    fn overlap(&self, p: &Ipv6Net) -> Option<(Ipv6Net, Owner)> {
        let (s, t) = self.taken.range(..=end(p)).next_back()?;
        let other = net(*s, t.len);
        (end(&other) >= start(p)).then_some((other, t.owner))
    }

    /// A pinned prefix: inside a pool, not another home's; hold-downs under it end.
    fn check_pinned(
        &self,
        home: HomeId,
        p: Ipv6Net,
    ) -> Result<(Ipv6Net, Vec<HeldPrefix>), PrefixError> {
        if !self.pools.iter().any(|pool| pool.contains(&p)) {
            return Err(PrefixError::OutsidePools(p));
        }
        let mut unheld = Vec::new();
        for (s, t) in self.taken.range(..=end(&p)).rev() {
            let other = net(*s, t.len);
            if end(&other) < start(&p) {
                break;
            }
            match t.owner {
                Owner::Home(h) if h == home => {}
                Owner::Home(h) => {
                    return Err(PrefixError::Taken {
                        prefix: p,
                        home: h,
                        theirs: other,
                    });
                }
                Owner::Held(until) => unheld.push(HeldPrefix {
                    prefix: other,
                    until,
                }),
            }
        }
        Ok((p, unheld))
    }

    /// The first free aligned /`len`, from each pool's cursor on, wrapping once.
    fn find_free(
        &mut self,
        len: u8,
        now: UnixTime,
    ) -> Result<(Ipv6Net, Vec<HeldPrefix>), PrefixError> {
        let size = 1u128 << (128 - u32::from(len));
        let mut unheld = Vec::new();
        for (i, pool) in self.pools.clone().iter().enumerate() {
            if pool.prefix_len() > len {
                continue;
            }
            let (lo, hi) = (start(pool), end(pool));
            let from = self.cursor.get(&(i, len)).copied().unwrap_or(lo);
            for (mut c, stop) in [(from, hi), (lo, from.saturating_sub(1))] {
                while c <= stop && c >= lo {
                    let cand = net(c, len);
                    match self.overlap(&cand) {
                        None => {
                            self.cursor.insert((i, len), c.wrapping_add(size));
                            return Ok((cand, unheld));
                        }
                        Some((other, Owner::Held(until))) if until <= now => {
                            // An ended hold-down: reclaim it and look again.
                            self.taken.remove(&start(&other));
                            unheld.push(HeldPrefix {
                                prefix: other,
                                until,
                            });
                        }
                        Some((other, _)) => {
                            // Past the taken range, aligned up.
                            let next = end(&other).checked_add(1).map(|n| n.div_ceil(size) * size);
                            match next {
                                Some(n) => c = n,
                                None => break,
                            }
                        }
                    }
                }
            }
        }
        // Hold-downs reclaimed on a failed search stay reclaimed (they ended); the store's
        // records of them are purged at the next start.
        Err(PrefixError::Exhausted(len))
    }
}

#[cfg(test)]
mod tests;
