//! A set of LSLs that can share one access interface, each with its owner (a home).
//!
//! Two LSLs cannot both be served on one access interface when
//! - they have the same [fast-path key](crate::model::FastPathKey) (`qinq:10.102` and
//!   `qinq-9100:10.102`): the second would take the first's table entry;
//! - one's tags are a prefix of the other's (`vlan:101` and `qinq-8100:101.5`, see
//!   [`LslId::is_tag_prefix_of`]): a host behind the first could tag its own frames and
//!   reach the second's home.
//!
//! [`LslSet`] finds both with hash lookups (no scan over the set), so that the vG checks a
//! new home against 100,000 others as cheaply as against one.

use core::fmt;
use std::collections::{BTreeSet, HashMap};

use crate::model::{FastPathKey, LslId, Vid};
use crate::wire::vlan::Tpid;

/// How an LSL clashes with one already in the set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClashKind {
    /// Both have one fast-path key.
    SameKey,
    /// One's tags are a prefix of the other's.
    TagPrefix,
}

/// An LSL that cannot join the set, and the member it clashes with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Clash<T> {
    /// How they clash.
    pub kind: ClashKind,
    /// The LSL refused.
    pub lsl: LslId,
    /// The member it clashes with.
    pub other: LslId,
    /// That member's owner.
    pub owner: T,
}

/// Why the two LSLs clash; names both, not the owner (the caller knows what its owners are).
impl<T> fmt::Display for Clash<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (lsl, other) = (self.lsl, self.other);
        match self.kind {
            ClashKind::SameKey if lsl == other => write!(f, "{lsl} is already in use"),
            ClashKind::SameKey => write!(
                f,
                "{lsl} and {other} are one entry in the fast path, which tells 802.1Q and QinQ \
                 LSLs apart by their VIDs only (not by the S-tag's TPID)"
            ),
            ClashKind::TagPrefix => {
                let (short, long) = if lsl.is_tag_prefix_of(&other) {
                    (lsl, other)
                } else {
                    (other, lsl)
                };
                let (LslId::Vlan { c_vid: outer, .. }, LslId::Vlan { c_vid: inner, .. }) =
                    (short, long)
                else {
                    return write!(f, "the tags of {short} begin those of {long}");
                };
                write!(
                    f,
                    "{long} begins with {short}'s tag (0x8100, VID {outer}): a host behind \
                     {short} that tags its own frames with VID {inner} would reach {long}'s home"
                )
            }
        }
    }
}

/// LSLs that can share one access interface, with their owners (see the module doc).
#[derive(Debug, Clone)]
pub struct LslSet<T> {
    /// Every member, by its fast-path key.
    by_key: HashMap<FastPathKey, (LslId, T)>,
    /// The C-VIDs of the `qinq-8100` members, by their outer VID: the members a `vlan:`
    /// LSL of that VID would be a prefix of.
    under_dot1q: HashMap<Vid, BTreeSet<Vid>>,
}

impl<T> Default for LslSet<T> {
    fn default() -> Self {
        Self {
            by_key: HashMap::new(),
            under_dot1q: HashMap::new(),
        }
    }
}

/// The outer VID of a QinQ LSL whose outer tag is 0x8100, and its C-VID.
fn dot1q_outer(lsl: &LslId) -> Option<(Vid, Vid)> {
    match lsl {
        LslId::Vlan {
            s_tag: Some(s_tag),
            c_vid,
        } if s_tag.tpid == Tpid::CTag => Some((s_tag.vid, *c_vid)),
        _ => None,
    }
}

impl<T: Copy + PartialEq> LslSet<T> {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    /// True without members.
    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }

    /// The owner of the member with `lsl`'s fast-path key, if any.
    pub fn owner(&self, lsl: &LslId) -> Option<T> {
        self.by_key
            .get(&lsl.fast_path_key())
            .map(|&(_, owner)| owner)
    }

    /// The first member `lsl` clashes with, leaving out those of `except` (the owner itself,
    /// when it changes its LSL).
    pub fn clash(&self, lsl: &LslId, except: Option<T>) -> Option<Clash<T>> {
        let other_owner = |owner: &T| except.as_ref() != Some(owner);
        let clash = |kind, &(other, owner): &(LslId, T)| Clash {
            kind,
            lsl: *lsl,
            other,
            owner,
        };
        if let Some(member) = self.by_key.get(&lsl.fast_path_key())
            && other_owner(&member.1)
        {
            return Some(clash(ClashKind::SameKey, member));
        }
        match lsl {
            LslId::Vlan { s_tag: None, c_vid } => self
                .under_dot1q
                .get(c_vid)
                .into_iter()
                .flatten()
                .filter_map(|&inner| {
                    self.by_key.get(&FastPathKey::Vlan {
                        s_vid: Some(*c_vid),
                        c_vid: inner,
                    })
                })
                .find(|member| other_owner(&member.1))
                .map(|member| clash(ClashKind::TagPrefix, member)),
            _ => {
                let (outer, _) = dot1q_outer(lsl)?;
                let dot1q = FastPathKey::Vlan {
                    s_vid: None,
                    c_vid: outer,
                };
                self.by_key
                    .get(&dot1q)
                    .filter(|member| other_owner(&member.1))
                    .map(|member| clash(ClashKind::TagPrefix, member))
            }
        }
    }

    /// Adds `lsl` for `owner`, unless it clashes with another owner's member. A member of
    /// `owner` with the same fast-path key is replaced; other members of `owner` stay.
    pub fn insert(&mut self, lsl: LslId, owner: T) -> Result<(), Clash<T>> {
        if let Some(clash) = self.clash(&lsl, Some(owner)) {
            return Err(clash);
        }
        if let Some((old, _)) = self.by_key.insert(lsl.fast_path_key(), (lsl, owner)) {
            self.unindex(&old);
        }
        if let Some((outer, inner)) = dot1q_outer(&lsl) {
            self.under_dot1q.entry(outer).or_default().insert(inner);
        }
        Ok(())
    }

    /// Removes the member with `lsl`'s fast-path key if `owner` owns it; true if it did.
    pub fn remove(&mut self, lsl: &LslId, owner: T) -> bool {
        let key = lsl.fast_path_key();
        match self.by_key.get(&key) {
            Some(&(old, o)) if o == owner => {
                self.by_key.remove(&key);
                self.unindex(&old);
                true
            }
            _ => false,
        }
    }

    fn unindex(&mut self, lsl: &LslId) {
        if let Some((outer, inner)) = dot1q_outer(lsl)
            && let Some(inners) = self.under_dot1q.get_mut(&outer)
        {
            inners.remove(&inner);
            if inners.is_empty() {
                self.under_dot1q.remove(&outer);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lsl(text: &str) -> LslId {
        text.parse().expect(text)
    }

    #[test]
    fn one_fast_path_key_one_member() {
        let mut set = LslSet::new();
        set.insert(lsl("qinq:10.102"), 2).unwrap();
        for text in ["qinq:10.102", "qinq-9100:10.102", "qinq-8100:10.102"] {
            let clash = set.insert(lsl(text), 3).unwrap_err();
            assert_eq!(
                (clash.kind, clash.other, clash.owner),
                (ClashKind::SameKey, lsl("qinq:10.102"), 2),
                "{text}"
            );
        }
        assert_eq!(set.len(), 1);
        // Not the same key: another VID, no S-VID, VXLAN.
        set.insert(lsl("qinq:10.103"), 3).unwrap();
        set.insert(lsl("vlan:102"), 4).unwrap();
        set.insert(lsl("vxlan:102@192.0.2.1"), 5).unwrap();
        assert_eq!(set.len(), 4);
        assert_eq!(set.owner(&lsl("qinq-9100:10.102")), Some(2));
    }

    #[test]
    fn a_tag_prefix_clashes_both_ways() {
        let mut set = LslSet::new();
        set.insert(lsl("vlan:101"), 1).unwrap();
        let clash = set.insert(lsl("qinq-8100:101.5"), 2).unwrap_err();
        assert_eq!(
            (clash.kind, clash.other, clash.owner),
            (ClashKind::TagPrefix, lsl("vlan:101"), 1)
        );
        // Other outer TPIDs do not begin with 0x8100/101; another outer VID is no prefix.
        set.insert(lsl("qinq:101.5"), 3).unwrap();
        set.insert(lsl("qinq-8100:102.5"), 4).unwrap();
        set.insert(lsl("qinq-8100:102.6"), 5).unwrap();
        let clash = set.insert(lsl("vlan:102"), 6).unwrap_err();
        assert_eq!(clash.kind, ClashKind::TagPrefix);
        assert!([4, 5].contains(&clash.owner), "{clash:?}");
        // Once both are gone, vlan:102 fits.
        assert!(set.remove(&lsl("qinq-8100:102.5"), 4));
        assert_eq!(set.insert(lsl("vlan:102"), 6).unwrap_err().owner, 5);
        assert!(set.remove(&lsl("qinq-8100:102.6"), 5));
        set.insert(lsl("vlan:102"), 6).unwrap();
    }

    #[test]
    fn an_owner_does_not_clash_with_itself() {
        let mut set = LslSet::new();
        set.insert(lsl("qinq-8100:101.5"), 1).unwrap();
        // Home 1 moving to vlan:101: only its own member is in the way.
        assert_eq!(set.clash(&lsl("vlan:101"), Some(1)), None);
        assert!(set.clash(&lsl("vlan:101"), Some(2)).is_some());
        // The same key for the same owner replaces its member (and its index).
        set.insert(lsl("qinq:101.5"), 1).unwrap();
        assert_eq!(set.len(), 1);
        set.insert(lsl("vlan:101"), 2).unwrap();
    }

    #[test]
    fn remove_only_takes_the_owners_member() {
        let mut set = LslSet::new();
        set.insert(lsl("qinq:10.102"), 1).unwrap();
        assert!(!set.remove(&lsl("qinq-9100:10.102"), 2), "not its member");
        assert_eq!(set.owner(&lsl("qinq:10.102")), Some(1));
        assert!(!set.remove(&lsl("vlan:7"), 1), "no such member");
        assert!(set.remove(&lsl("qinq:10.102"), 1));
        assert!(set.is_empty());
    }

    #[test]
    fn clashes_explain_themselves() {
        let mut set = LslSet::new();
        set.insert(lsl("vlan:101"), 1).unwrap();
        set.insert(lsl("qinq:10.102"), 2).unwrap();
        let text = |l: &str| set.clash(&lsl(l), None).unwrap().to_string();
        assert_eq!(text("vlan:101"), "vlan:101 is already in use");
        assert!(
            text("qinq-9100:10.102").contains("qinq-9100:10.102 and qinq:10.102 are one entry"),
            "{}",
            text("qinq-9100:10.102")
        );
        let prefix = text("qinq-8100:101.5");
        assert!(
            prefix.contains("qinq-8100:101.5 begins with vlan:101's tag")
                && prefix.contains("VID 5 would reach qinq-8100:101.5's home"),
            "{prefix}"
        );
    }
}
