//! Session retry wait intervals (TR-069 3.2.1.1, Table 3).
//!
//! After the n-th consecutive failed session the CPE waits a random number of seconds drawn
//! uniformly from `m * (k/1000)^(n-1) ..= m * (k/1000)^n`, with `m` =
//! `ManagementServer.CWMPRetryMinimumWaitInterval` (default 5) and `k` =
//! `CWMPRetryIntervalMultiplier` (default 2000); from the 10th retry on, the range stays that
//! of the 10th. With the defaults:
//!
//! | retry | wait (s)   |   | retry | wait (s)    |
//! |-------|------------|---|-------|-------------|
//! | 1     | 5-10       |   | 6     | 160-320     |
//! | 2     | 10-20      |   | 7     | 320-640     |
//! | 3     | 20-40      |   | 8     | 640-1280    |
//! | 4     | 40-80      |   | 9     | 1280-2560   |
//! | 5     | 80-160     |   | 10+   | 2560-5120   |
//!
//! The caller supplies the randomness; the retry count (also the Inform's `RetryCount`) goes
//! back to zero after a successful session.

use std::ops::RangeInclusive;

use crate::model::{Backend, Model};

/// The retry count from which the wait range stops growing.
const MAX_GROWTH: u32 = 10;

/// The two retry parameters of `Device.ManagementServer`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// `CWMPRetryMinimumWaitInterval`, seconds (1-65535).
    pub minimum_wait: u32,
    /// `CWMPRetryIntervalMultiplier`, in thousandths (1000-65535).
    pub multiplier: u32,
}

impl Default for RetryPolicy {
    /// TR-181's defaults: 5 s and 2000 (x2.0).
    fn default() -> Self {
        Self {
            minimum_wait: 5,
            multiplier: 2000,
        }
    }
}

impl RetryPolicy {
    /// The policy configured in a model's `Device.ManagementServer`, defaults where absent.
    pub fn from_model<B: Backend>(model: &Model<B>) -> Self {
        let read = |name: &str, default: u32| {
            model
                .get(&format!("Device.ManagementServer.{name}"))
                .ok()
                .and_then(|v| v.as_u64())
                .and_then(|v| u32::try_from(v).ok())
                .unwrap_or(default)
        };
        let default = Self::default();
        Self {
            minimum_wait: read("CWMPRetryMinimumWaitInterval", default.minimum_wait),
            multiplier: read("CWMPRetryIntervalMultiplier", default.multiplier),
        }
    }

    /// The range of seconds to wait after `retry` consecutive failures (`0..=0` for none).
    pub fn wait_range(&self, retry: u32) -> RangeInclusive<u64> {
        if retry == 0 {
            return 0..=0;
        }
        let n = retry.min(MAX_GROWTH);
        let factor = f64::from(self.multiplier.max(1000)) / 1000.0;
        let m = f64::from(self.minimum_wait.max(1));
        // `as` saturates: an absurd configuration waits u64::MAX seconds, it does not wrap.
        let low = (m * factor.powi(n as i32 - 1)).floor() as u64;
        let high = (m * factor.powi(n as i32)).floor() as u64;
        low..=high.max(low)
    }

    /// The seconds to wait after `retry` consecutive failures, picked from
    /// [`RetryPolicy::wait_range`] with a uniformly random `random`.
    pub fn wait(&self, retry: u32, random: u64) -> u64 {
        let range = self.wait_range(retry);
        let (low, high) = (*range.start(), *range.end());
        match (high - low).checked_add(1) {
            Some(span) => low + random % span,
            None => low.saturating_add(random),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tr069_table_3_with_defaults() {
        let p = RetryPolicy::default();
        let table: Vec<(u64, u64)> = (1..=12)
            .map(|n| {
                let r = p.wait_range(n);
                (*r.start(), *r.end())
            })
            .collect();
        assert_eq!(
            table,
            [
                (5, 10),
                (10, 20),
                (20, 40),
                (40, 80),
                (80, 160),
                (160, 320),
                (320, 640),
                (640, 1280),
                (1280, 2560),
                (2560, 5120),
                (2560, 5120),
                (2560, 5120),
            ]
        );
        assert_eq!(p.wait_range(0), 0..=0);
        assert_eq!(p.wait_range(u32::MAX), 2560..=5120);
    }

    #[test]
    fn random_picks_cover_the_range_inclusively() {
        let p = RetryPolicy::default();
        assert_eq!(p.wait(1, 0), 5);
        assert_eq!(p.wait(1, 5), 10);
        assert_eq!(p.wait(1, 6), 5);
        assert_eq!(p.wait(3, u64::MAX), 20 + u64::MAX % 21);
        for r in 0..1000 {
            assert!(p.wait_range(4).contains(&p.wait(4, r)));
        }
        assert_eq!(p.wait(0, 12345), 0);
    }

    #[test]
    fn configured_policies() {
        let slow = RetryPolicy {
            minimum_wait: 30,
            multiplier: 1500,
        };
        assert_eq!(slow.wait_range(1), 30..=45);
        assert_eq!(slow.wait_range(2), 45..=67);
        let flat = RetryPolicy {
            minimum_wait: 60,
            multiplier: 1000,
        };
        assert_eq!(flat.wait_range(7), 60..=60);
        let extreme = RetryPolicy {
            minimum_wait: 65535,
            multiplier: 65535,
        };
        assert_eq!(*extreme.wait_range(10).end(), u64::MAX);
        let _ = extreme.wait(10, u64::MAX);
        let invalid = RetryPolicy {
            minimum_wait: 0,
            multiplier: 0,
        };
        assert_eq!(
            invalid.wait_range(3),
            1..=1,
            "clamped to the allowed minimums"
        );
    }
}
