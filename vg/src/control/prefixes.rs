//! The control plane's part of IPv6: each home's delegated prefix, kept in step with the
//! store the way NAT blocks are (see [`crate::ipv6`] for the allocator and its rules).
//!
//! - start: a stored prefix stays its home's while the home exists, its policy accepts it
//!   and it is inside the pools; otherwise it goes to hold-down (a home deleted from the
//!   file, a policy changed) or is forgotten (outside the pools). Homes without one get one.
//!   Without `[ipv6]` the stored prefixes are left alone (as NAT blocks are without
//!   `[nat]`), so that taking the section out for a while loses nobody's prefix.
//! - create and update: the prefix is assigned before the store commit and undone if the
//!   commit fails; delete: the prefix rests in hold-down, in the home's removal transaction.
//!
//! A home that cannot get a prefix at start (pools exhausted, a pinned prefix taken) runs
//! IPv4 only, with an error in the log; through the API the same is a refusal.

use nerg_abi::SubscriberId;

use super::{Control, ControlError};
use crate::{
    config::SubscriberConfig,
    ipv6::{Assigned, HeldPrefix, Ipv6Policy, PrefixChange, PrefixError, PrefixPool},
    nat::UnixTime,
    store::{StoredState, SubscriberOp},
};

/// What the slow path needs of a home to be its IPv6 router (with `[ipv6]`'s DNS settings
/// and router address, the same for every home).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HomeIpv6 {
    /// The home's delegated prefix.
    pub prefix: ipnet::Ipv6Net,
    /// Its first /64: the LAN (SLAAC, DHCPv6 addresses); the rest is for prefix delegation.
    pub lan: ipnet::Ipv6Net,
    /// Its RA flags.
    pub flags: crate::ipv6::RaFlags,
}

/// The store writes of a prefix change of home `id`.
pub(super) fn prefix_ops(id: SubscriberId, change: &PrefixChange, ops: &mut Vec<SubscriberOp>) {
    for h in &change.unheld {
        ops.push(SubscriberOp::RemoveHeldPrefix(h.prefix));
    }
    if let Some(h) = change.released {
        ops.push(SubscriberOp::PutHeldPrefix(h));
    }
    match change.assigned {
        Some(a) => ops.push(SubscriberOp::PutPrefix(id, a)),
        None if change.released.is_some() => ops.push(SubscriberOp::RemovePrefix(id)),
        None => {}
    }
}

fn refusal(id: SubscriberId, err: PrefixError) -> ControlError {
    match err {
        PrefixError::Taken { .. } => ControlError::Conflict(format!("subscriber {id}: {err}")),
        PrefixError::Exhausted(_) => ControlError::Conflict(format!("subscriber {id}: {err}")),
        PrefixError::OutsidePools(_) | PrefixError::Off => {
            ControlError::Unprocessable(format!("subscriber {id}: {err}"))
        }
    }
}

/// A prefix assignment made but not yet stored: what undoes it.
pub(super) struct Pending {
    id: SubscriberId,
    change: PrefixChange,
    had: Option<Assigned>,
}

impl Control {
    /// Start-up: the stored prefixes restored or released, then every home without one
    /// gets one (see the module doc). Store writes go to `ops`.
    pub(super) fn restore_prefixes(
        &mut self,
        stored: &StoredState,
        now: UnixTime,
        ops: &mut Vec<SubscriberOp>,
    ) {
        let Some(cfg) = self.config.ipv6.clone() else {
            return;
        };
        let policy = |id: &SubscriberId| self.config.subscribers.get(id).map(|s| s.ipv6.prefix);
        let (keep, release): (Vec<_>, Vec<_>) = stored
            .prefixes
            .iter()
            .map(|(id, a)| (*id, *a))
            .partition(|(id, a)| policy(id).is_some_and(|p| p.accepts(&a.prefix)));
        // A prefix whose home went or no longer wants it rests, as after a release.
        let rested: Vec<HeldPrefix> = release
            .iter()
            .map(|(_, a)| HeldPrefix {
                prefix: a.prefix,
                until: now.plus(cfg.hold_down_secs()),
            })
            .collect();
        for (id, _) in &release {
            ops.push(SubscriberOp::RemovePrefix(*id));
        }
        let held = stored.held_prefixes.iter().chain(&rested).copied();
        let (mut pool, dropped) = PrefixPool::restore(&cfg, keep, held, now);
        for h in &rested {
            if !dropped.contains(&(None, h.prefix)) {
                ops.push(SubscriberOp::PutHeldPrefix(*h));
            }
        }
        for (home, prefix) in dropped {
            match home {
                Some(id) => {
                    tracing::warn!(sub = id, %prefix, "stored IPv6 prefix no longer fits: the home gets another");
                    ops.push(SubscriberOp::RemovePrefix(id));
                }
                None => ops.push(SubscriberOp::RemoveHeldPrefix(prefix)),
            }
        }
        let ids: Vec<SubscriberId> = self.homes.keys().copied().collect();
        for id in ids {
            let Some(p) = policy(&id) else { continue };
            if p == Ipv6Policy::Off || pool.get(id).is_some() {
                continue;
            }
            match pool.assign(id, p, now) {
                Ok(change) => prefix_ops(id, &change, ops),
                Err(err) => {
                    tracing::error!(sub = id, error = %err, "no IPv6 prefix for this home: IPv4 only")
                }
            }
        }
        self.v6 = Some(pool);
    }

    /// New homes get their prefixes (before the store commit); on the first refusal every
    /// one is undone and the refusal returned.
    pub(super) fn assign_new_prefixes(
        &mut self,
        subs: &[&SubscriberConfig],
        now: UnixTime,
        ops: &mut Vec<SubscriberOp>,
    ) -> Result<Vec<Pending>, ControlError> {
        let mut done = Vec::new();
        for sub in subs {
            match self.assign_prefix(sub, now, ops) {
                Ok(Some(p)) => done.push(p),
                Ok(None) => {}
                Err(err) => {
                    self.undo_prefixes(done);
                    return Err(err);
                }
            }
        }
        Ok(done)
    }

    /// Home `sub`'s prefix as its policy says (kept when it still fits); `None` when
    /// nothing changed.
    pub(super) fn assign_prefix(
        &mut self,
        sub: &SubscriberConfig,
        now: UnixTime,
        ops: &mut Vec<SubscriberOp>,
    ) -> Result<Option<Pending>, ControlError> {
        let Some(pool) = self.v6.as_mut() else {
            return Ok(None);
        };
        let had = pool.get(sub.id).copied();
        let change = pool
            .assign(sub.id, sub.ipv6.prefix, now)
            .map_err(|e| refusal(sub.id, e))?;
        if change == PrefixChange::default() {
            return Ok(None);
        }
        prefix_ops(sub.id, &change, ops);
        Ok(Some(Pending {
            id: sub.id,
            change,
            had,
        }))
    }

    /// Undoes prefix assignments whose store commit failed.
    pub(super) fn undo_prefixes(&mut self, pending: Vec<Pending>) {
        let Some(pool) = self.v6.as_mut() else {
            return;
        };
        for p in pending.into_iter().rev() {
            pool.undo(p.id, &p.change, p.had);
        }
    }

    /// Home `id` is being deleted: its prefix's hold-down, for the removal's transaction.
    pub(super) fn held_on_delete(&self, id: SubscriberId, now: UnixTime) -> Option<SubscriberOp> {
        let (pool, cfg) = (self.v6.as_ref()?, self.config.ipv6.as_ref()?);
        let a = pool.get(id)?;
        (cfg.hold_down_secs() > 0).then(|| {
            SubscriberOp::PutHeldPrefix(HeldPrefix {
                prefix: a.prefix,
                until: now.plus(cfg.hold_down_secs()),
            })
        })
    }

    /// Home `id` was deleted (stored): its prefix rests.
    pub(super) fn release_prefix(&mut self, id: SubscriberId, now: UnixTime) {
        if let Some(pool) = self.v6.as_mut() {
            pool.release(id, now);
        }
    }

    /// Home `id`'s IPv6 as the slow path needs it; none while it has no prefix.
    pub fn ipv6_of(&self, id: SubscriberId) -> Option<HomeIpv6> {
        let a = self.prefix(id)?;
        let sub = self.config.subscribers.get(&id)?;
        Some(HomeIpv6 {
            prefix: a.prefix,
            lan: a.lan(),
            flags: sub.ipv6.flags,
        })
    }

    /// Home `id`'s prefix.
    pub fn prefix(&self, id: SubscriberId) -> Option<Assigned> {
        self.v6.as_ref()?.get(id).copied()
    }

    /// The prefix pools, when IPv6 is on.
    pub fn prefix_pool(&self) -> Option<&PrefixPool> {
        self.v6.as_ref()
    }
}
