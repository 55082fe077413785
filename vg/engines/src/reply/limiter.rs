//! The per-home limit on punted frames: a token bucket per home, so that one home's flood
//! cannot starve the others' slow path.

use std::collections::HashMap;

use nerg_abi::SubscriberId;

use super::Ignored;

/// A token bucket's rate: the sustained packets per second and the burst.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Tokens added per second: the sustained rate.
    pub per_second: u32,
    /// The bucket's size: packets admitted at once after a quiet spell.
    pub burst: u32,
}

impl RateLimit {
    /// 200 frames per second, bursts of 2,000. The burst is sized for a home whose devices
    /// all start at once (power back in the house): measured with 100 real DHCP clients in
    /// one home (`tests/tests/mass_start.rs`), each DORA and an ARP and ping of the gateway
    /// is about 4 frames, 400 in all; IPv6 will add router solicitations, duplicate address
    /// detection and MLD reports, about 10 more per device: 2,000 covers 100 devices with
    /// room for retransmissions. The old 50/100 throttled that start (202 frames
    /// `rate_limited`, 31 of 100 devices unable to reach the gateway at first). The rate
    /// covers a settled home many times over (renewals, ARP refreshes: a frame per device
    /// every few seconds) and bounds what one flooding home costs the slow path (which
    /// handles tens of thousands of frames per second in all) to 200 frames/s.
    pub const DEFAULT: RateLimit = RateLimit {
        per_second: 200,
        burst: 2_000,
    };
}

impl Default for RateLimit {
    fn default() -> Self {
        RateLimit::DEFAULT
    }
}

/// Milli-tokens per token: the bucket counts in integers, exact for any rate.
const MILLI: u64 = 1000;

/// One token bucket. Time is the caller's monotonic clock in milliseconds; a clock that goes
/// back adds nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenBucket {
    limit: RateLimit,
    /// Tokens left, in thousandths.
    milli_tokens: u64,
    /// The latest time seen.
    last_ms: u64,
}

impl TokenBucket {
    /// A full bucket at `now_ms`.
    pub fn new(limit: RateLimit, now_ms: u64) -> TokenBucket {
        TokenBucket {
            limit,
            milli_tokens: Self::capacity(limit),
            last_ms: now_ms,
        }
    }

    /// Takes one token if there is one at `now_ms`.
    pub fn try_take(&mut self, now_ms: u64) -> bool {
        self.milli_tokens = self.level(now_ms);
        self.last_ms = self.last_ms.max(now_ms);
        match self.milli_tokens.checked_sub(MILLI) {
            Some(left) => {
                self.milli_tokens = left;
                true
            }
            None => false,
        }
    }

    /// Whether the bucket is full at `now_ms`, i.e. the same as a new one.
    pub fn is_full(&self, now_ms: u64) -> bool {
        self.level(now_ms) >= Self::capacity(self.limit)
    }

    /// Milli-tokens at `now_ms`.
    fn level(&self, now_ms: u64) -> u64 {
        // per_second tokens per 1000 ms is per_second milli-tokens per ms.
        let added = now_ms
            .saturating_sub(self.last_ms)
            .saturating_mul(u64::from(self.limit.per_second));
        self.milli_tokens
            .saturating_add(added)
            .min(Self::capacity(self.limit))
    }

    fn capacity(limit: RateLimit) -> u64 {
        u64::from(limit.burst) * MILLI
    }
}

/// A token bucket per home, so that one home's flood cannot starve the others' slow path.
///
/// Buckets are created on a home's first frame; [`HomeLimiter::prune`] drops the full ones
/// (a full bucket is the same as none), [`HomeLimiter::forget`] a removed home's.
#[derive(Debug, Clone, Default)]
pub struct HomeLimiter {
    limit: RateLimit,
    buckets: HashMap<SubscriberId, TokenBucket>,
}

impl HomeLimiter {
    /// A limiter giving every home `limit`.
    pub fn new(limit: RateLimit) -> HomeLimiter {
        HomeLimiter {
            limit,
            buckets: HashMap::new(),
        }
    }

    /// The limit every home gets.
    pub fn limit(&self) -> RateLimit {
        self.limit
    }

    /// Admits one frame from `home` at `now_ms`, or [`Ignored::RateLimited`].
    pub fn admit(&mut self, home: SubscriberId, now_ms: u64) -> Result<(), Ignored> {
        let limit = self.limit;
        let bucket = self
            .buckets
            .entry(home)
            .or_insert_with(|| TokenBucket::new(limit, now_ms));
        if bucket.try_take(now_ms) {
            Ok(())
        } else {
            Err(Ignored::RateLimited)
        }
    }

    /// Drops `home`'s bucket (the home was removed).
    pub fn forget(&mut self, home: SubscriberId) {
        self.buckets.remove(&home);
    }

    /// Drops the buckets that are full at `now_ms`: memory follows the homes that are busy.
    pub fn prune(&mut self, now_ms: u64) {
        self.buckets.retain(|_, bucket| !bucket.is_full(now_ms));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_home_gets_its_burst_then_its_rate() {
        let mut limiter = HomeLimiter::new(RateLimit::DEFAULT);
        for i in 0..2_000 {
            assert_eq!(limiter.admit(1, 5_000), Ok(()), "packet {i} of the burst");
        }
        assert_eq!(limiter.admit(1, 5_000), Err(Ignored::RateLimited));
        // 200 per second: one token every 5 ms.
        assert_eq!(limiter.admit(1, 5_004), Err(Ignored::RateLimited));
        assert_eq!(limiter.admit(1, 5_005), Ok(()));
        assert_eq!(limiter.admit(1, 5_005), Err(Ignored::RateLimited));
        // A second later, 200 more, not more.
        let admitted = (0..1_000)
            .filter(|_| limiter.admit(1, 6_005).is_ok())
            .count();
        assert_eq!(admitted, 200);
        // After a long quiet spell, the burst again, not more.
        let admitted = (0..5_000)
            .filter(|_| limiter.admit(1, 1_000_000).is_ok())
            .count();
        assert_eq!(admitted, 2_000);
    }

    #[test]
    fn one_home_flooding_does_not_starve_another() {
        let mut limiter = HomeLimiter::new(RateLimit {
            per_second: 10,
            burst: 5,
        });
        let mut flooder = 0;
        let mut quiet = 0;
        for ms in 0..10_000u64 {
            for _ in 0..10 {
                flooder += usize::from(limiter.admit(1, ms).is_ok());
            }
            if ms % 200 == 0 {
                quiet += usize::from(limiter.admit(2, ms).is_ok());
            }
        }
        assert_eq!(flooder, 5 + 10 * 10 - 1, "burst then 10 per second");
        assert_eq!(quiet, 50, "every packet of the quiet home");
    }

    #[test]
    fn the_limiter_copes_with_odd_clocks_and_limits() {
        let mut bucket = TokenBucket::new(
            RateLimit {
                per_second: 1000,
                burst: 1,
            },
            10_000,
        );
        assert!(bucket.try_take(10_000));
        // A clock that goes back adds nothing and does not rewind the bucket.
        assert!(!bucket.try_take(5_000));
        assert!(!bucket.try_take(10_000));
        assert!(bucket.try_take(10_001));
        assert!(!bucket.try_take(0));
        assert!(bucket.try_take(u64::MAX), "saturates");
        assert!(!bucket.try_take(u64::MAX));

        let mut never = TokenBucket::new(
            RateLimit {
                per_second: u32::MAX,
                burst: 0,
            },
            0,
        );
        assert!(!never.try_take(u64::MAX));
        let mut once = TokenBucket::new(
            RateLimit {
                per_second: 0,
                burst: 1,
            },
            0,
        );
        assert!(once.try_take(0));
        assert!(!once.try_take(u64::MAX));
        let mut huge = TokenBucket::new(
            RateLimit {
                per_second: u32::MAX,
                burst: u32::MAX,
            },
            0,
        );
        assert!(huge.try_take(u64::MAX));
    }

    #[test]
    fn idle_and_removed_homes_are_pruned() {
        let mut limiter = HomeLimiter::default();
        assert_eq!(limiter.limit(), RateLimit::DEFAULT);
        limiter.admit(1, 0).expect("admitted");
        limiter.admit(2, 0).expect("admitted");
        limiter.admit(3, 1_000).expect("admitted");
        // At 20 ms, homes 1 and 2 are full again; home 3 is not.
        limiter.prune(1_000);
        assert_eq!(limiter.buckets.len(), 1);
        assert!(limiter.buckets.contains_key(&3));
        limiter.forget(3);
        assert!(limiter.buckets.is_empty());
    }
}
