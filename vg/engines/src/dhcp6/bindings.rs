//! One home's binding table and its indexes: the only code that changes them.
//!
//! Records are keyed by lease. Beside them: which lease each IA (DUID, kind, IAID) holds or
//! held (for stickiness and Renew), how many bound IAs of each kind a DUID has (the per-client
//! limit), the deadlines (ends of bound leases and of quarantines) and the remembered
//! (expired, released) leases oldest first, the order in which they are reused.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::dhcp::{HomeId, UnixTime};

use super::store::{BindingRecord, BindingState, StoreOp};
use super::types::{Duid, IaKind, Lease};

/// An identity association: whose, which kind, which IAID (RFC 8415 section 12).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct IaKey {
    pub(crate) duid: Duid,
    pub(crate) kind: IaKind,
    pub(crate) iaid: u32,
}

impl IaKey {
    pub(crate) fn of(record: &BindingRecord) -> IaKey {
        IaKey {
            duid: record.duid.clone(),
            kind: record.kind(),
            iaid: record.iaid,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Bindings {
    records: BTreeMap<Lease, BindingRecord>,
    /// IA -> its (non-declined) lease.
    by_ia: HashMap<IaKey, Lease>,
    /// (DUID, kind) -> bound leases.
    bound: HashMap<(Duid, IaKind), u32>,
    /// Ends of bound leases and of quarantines.
    deadlines: BTreeSet<(UnixTime, Lease)>,
    /// Remembered leases per kind, oldest first.
    memories: [BTreeSet<(UnixTime, Lease)>; 2],
    /// Records per kind.
    counts: [u64; 2],
}

impl Bindings {
    pub(crate) fn get(&self, lease: &Lease) -> Option<&BindingRecord> {
        self.records.get(lease)
    }

    pub(crate) fn contains(&self, lease: &Lease) -> bool {
        self.records.contains_key(lease)
    }

    pub(crate) fn records(&self) -> impl Iterator<Item = &BindingRecord> {
        self.records.values()
    }

    pub(crate) fn len(&self) -> usize {
        self.records.len()
    }

    /// Records of `kind`, whatever their state.
    pub(crate) fn count(&self, kind: IaKind) -> u64 {
        self.counts[kind.index()]
    }

    /// The lease the IA holds or held (not a declined one).
    pub(crate) fn of_ia(&self, key: &IaKey) -> Option<Lease> {
        self.by_ia.get(key).copied()
    }

    /// Bound leases of `kind` that `duid` holds.
    pub(crate) fn bound_count(&self, duid: &Duid, kind: IaKind) -> u32 {
        self.bound.get(&(duid.clone(), kind)).copied().unwrap_or(0)
    }

    /// The earliest deadline.
    pub(crate) fn next_deadline(&self) -> Option<(UnixTime, Lease)> {
        self.deadlines.first().copied()
    }

    /// Remembered leases of `kind`, oldest first.
    pub(crate) fn memories(&self, kind: IaKind) -> impl Iterator<Item = Lease> + '_ {
        self.memories[kind.index()].iter().map(|&(_, lease)| lease)
    }

    /// Stores `record` (replacing whatever its lease held) and returns the store op.
    pub(crate) fn insert(&mut self, record: BindingRecord) -> StoreOp {
        let lease = record.lease;
        self.remove(&lease);
        match record.state {
            BindingState::Bound | BindingState::Declined => {
                self.deadlines.insert((record.time, lease));
            }
            BindingState::Expired | BindingState::Released => {
                self.memories[lease.kind().index()].insert((record.time, lease));
            }
        }
        if record.state == BindingState::Bound {
            *self
                .bound
                .entry((record.duid.clone(), lease.kind()))
                .or_default() += 1;
        }
        if record.state != BindingState::Declined {
            // A second record of the IA (only a damaged store has one) leaves the index on
            // the first; `adopt` sorts that out.
            self.by_ia.entry(IaKey::of(&record)).or_insert(lease);
        }
        self.counts[lease.kind().index()] += 1;
        self.records.insert(lease, record.clone());
        StoreOp::Put(record)
    }

    /// Forgets `lease`'s record (the caller stores the removal, if any).
    pub(crate) fn remove(&mut self, lease: &Lease) -> Option<BindingRecord> {
        let record = self.records.remove(lease)?;
        self.counts[lease.kind().index()] -= 1;
        self.deadlines.remove(&(record.time, *lease));
        self.memories[lease.kind().index()].remove(&(record.time, *lease));
        let key = IaKey::of(&record);
        if self.by_ia.get(&key) == Some(lease) {
            self.by_ia.remove(&key);
        }
        if record.state == BindingState::Bound {
            let count_key = (record.duid.clone(), lease.kind());
            if let Some(count) = self.bound.get_mut(&count_key) {
                *count = count.saturating_sub(1);
                if *count == 0 {
                    self.bound.remove(&count_key);
                }
            }
        }
        Some(record)
    }

    /// Verifies the indexes against the records; the first inconsistency found.
    pub(crate) fn check(&self, home: HomeId) -> Result<(), String> {
        let mut deadlines = BTreeSet::new();
        let mut memories: [BTreeSet<(UnixTime, Lease)>; 2] = Default::default();
        let mut bound: HashMap<(Duid, IaKind), u32> = HashMap::new();
        let mut counts = [0; 2];
        for (lease, r) in &self.records {
            counts[lease.kind().index()] += 1;
            if r.lease != *lease || r.home != home {
                return Err(format!("record keyed {lease} is {r:?}"));
            }
            match r.state {
                BindingState::Bound | BindingState::Declined => {
                    deadlines.insert((r.time, *lease));
                }
                BindingState::Expired | BindingState::Released => {
                    memories[lease.kind().index()].insert((r.time, *lease));
                }
            }
            if r.state == BindingState::Bound {
                *bound.entry((r.duid.clone(), lease.kind())).or_default() += 1;
            }
        }
        if counts != self.counts {
            return Err(format!("counts {:?} != {counts:?}", self.counts));
        }
        if deadlines != self.deadlines {
            return Err(format!("deadlines {:?} != {deadlines:?}", self.deadlines));
        }
        if memories != self.memories {
            return Err(format!("memories {:?} != {memories:?}", self.memories));
        }
        if bound != self.bound {
            return Err(format!("bound counts {:?} != {bound:?}", self.bound));
        }
        for (key, lease) in &self.by_ia {
            match self.records.get(lease) {
                Some(r) if IaKey::of(r) == *key && r.state != BindingState::Declined => {}
                other => return Err(format!("by_ia {key:?} -> {lease} but record is {other:?}")),
            }
        }
        for r in self.records.values() {
            if r.state != BindingState::Declined && !self.by_ia.contains_key(&IaKey::of(r)) {
                return Err(format!("record {r:?} not indexed by its IA"));
            }
        }
        Ok(())
    }
}
