//! A bitmap of the free addresses of a home's dynamic range: compact (13 bytes for a /24
//! range) because the vG keeps one per home, for up to `MAX_SUBSCRIBERS` homes.

use std::net::Ipv4Addr;

/// One bit per address of `first..first + len`; set = free.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FreeMap {
    first: u32,
    len: u32,
    words: Vec<u64>,
}

impl FreeMap {
    /// A map of `len` addresses from `first`, all taken.
    pub(crate) fn new(first: Ipv4Addr, len: u32) -> FreeMap {
        FreeMap {
            first: u32::from(first),
            len,
            words: vec![0; usize::try_from(len.div_ceil(64)).unwrap_or(0)],
        }
    }

    fn slot(&self, ip: Ipv4Addr) -> Option<(usize, u64)> {
        let offset = u32::from(ip).checked_sub(self.first)?;
        if offset >= self.len {
            return None;
        }
        let word = usize::try_from(offset / 64).ok()?;
        Some((word, 1u64 << (offset % 64)))
    }

    /// Marks `ip` free or taken; addresses outside the map are ignored.
    pub(crate) fn set(&mut self, ip: Ipv4Addr, free: bool) {
        if let Some((word, bit)) = self.slot(ip)
            && let Some(w) = self.words.get_mut(word)
        {
            if free {
                *w |= bit;
            } else {
                *w &= !bit;
            }
        }
    }

    /// True if `ip` is in the map and free.
    pub(crate) fn is_free(&self, ip: Ipv4Addr) -> bool {
        self.slot(ip)
            .and_then(|(word, bit)| self.words.get(word).map(|w| w & bit != 0))
            .unwrap_or(false)
    }

    /// The lowest free address.
    pub(crate) fn first_free(&self) -> Option<Ipv4Addr> {
        let (index, word) = self.words.iter().enumerate().find(|(_, w)| **w != 0)?;
        let offset = u32::try_from(index).ok()? * 64 + word.trailing_zeros();
        (offset < self.len).then(|| Ipv4Addr::from(self.first + offset))
    }

    /// Number of free addresses.
    pub(crate) fn count(&self) -> u32 {
        self.words.iter().map(|w| w.count_ones()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_follow_addresses() {
        let base = Ipv4Addr::new(192, 168, 1, 100);
        let mut map = FreeMap::new(base, 100);
        assert_eq!(map.first_free(), None);
        map.set(Ipv4Addr::new(192, 168, 1, 199), true);
        map.set(Ipv4Addr::new(192, 168, 1, 170), true);
        // Outside the map: ignored.
        map.set(Ipv4Addr::new(192, 168, 1, 200), true);
        map.set(Ipv4Addr::new(192, 168, 1, 99), true);
        assert_eq!(map.count(), 2);
        assert_eq!(map.first_free(), Some(Ipv4Addr::new(192, 168, 1, 170)));
        map.set(Ipv4Addr::new(192, 168, 1, 170), false);
        assert_eq!(map.first_free(), Some(Ipv4Addr::new(192, 168, 1, 199)));
        assert!(map.is_free(Ipv4Addr::new(192, 168, 1, 199)));
        assert!(!map.is_free(Ipv4Addr::new(192, 168, 1, 200)));
    }
}
