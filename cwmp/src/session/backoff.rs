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
//!
//! [`Retries`] keeps that count for the application, with the time of the next attempt and
//! the failure causes already reported, so a CPE that fails the same way at every retry says
//! why once. Times are passed in (`now`): the retry logic runs, and is tested, without a
//! clock.

use std::ops::RangeInclusive;
use std::time::{Duration, Instant};

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

/// Most distinct failure causes remembered as reported since the last successful session
/// (beyond it the oldest is forgotten, and reported again if it comes back).
pub const MAX_REPORTED_CAUSES: usize = 16;

/// The retry state of a CPE's sessions: consecutive failures, when the next attempt may
/// start, and which failure causes were reported since the last successful session.
#[derive(Debug, Clone, Default)]
pub struct Retries {
    count: u32,
    next: Option<Instant>,
    reported: Vec<String>,
}

/// What to do after a failed session ([`Retries::failed`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    /// Consecutive failures, this one included: the next Inform's `RetryCount`.
    pub count: u32,
    /// The wait before the next attempt.
    pub wait: Duration,
    /// When the next attempt may start.
    pub at: Instant,
    /// Whether the cause is new since the last successful session: report it (the cause of
    /// every retry after is the same until this says otherwise).
    pub new_cause: bool,
}

impl Retries {
    /// Consecutive failed sessions so far (the next Inform's `RetryCount`).
    pub fn count(&self) -> u32 {
        self.count
    }

    /// Whether a session may start at `now`.
    pub fn due(&self, now: Instant) -> bool {
        self.next.is_none_or(|at| at <= now)
    }

    /// When the next attempt may start; `None`: at once.
    pub fn next_attempt(&self) -> Option<Instant> {
        self.next
    }

    /// A session failed at `now` because of `cause` (a description: equal text is the same
    /// cause): the wait is drawn from `policy`'s range for the new count with the uniformly
    /// random `random`.
    pub fn failed(
        &mut self,
        policy: &RetryPolicy,
        cause: &str,
        now: Instant,
        random: u64,
    ) -> Retry {
        self.count = self.count.saturating_add(1);
        let wait = Duration::from_secs(policy.wait(self.count, random));
        // An absurd policy's wait does not fit an Instant: wait a year instead.
        let at = now
            .checked_add(wait)
            .or_else(|| now.checked_add(Duration::from_secs(365 * 86_400)))
            .unwrap_or(now);
        self.next = Some(at);
        let new_cause = !self.reported.iter().any(|c| c == cause);
        if new_cause {
            if self.reported.len() >= MAX_REPORTED_CAUSES {
                self.reported.remove(0);
            }
            self.reported.push(cause.to_owned());
        }
        Retry {
            count: self.count,
            wait,
            at,
            new_cause,
        }
    }

    /// A session succeeded: no more retries, every cause may be reported again.
    pub fn succeeded(&mut self) {
        *self = Self::default();
    }

    /// Something (a connection request) asks for a session now: the next attempt need not
    /// wait. The count stays: it is still a retry.
    pub fn attempt_now(&mut self) {
        self.next = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Failures with an injected clock: each wait within TR-069's range for its retry (the
    /// table above, up to the 10th and beyond), each cause reported once until a success.
    #[test]
    fn retries_follow_the_policy_and_report_each_cause_once() {
        let policy = RetryPolicy::default();
        let mut retries = Retries::default();
        let t0 = Instant::now();
        let mut now = t0;
        assert!(retries.due(now));
        let mut reported = Vec::new();
        for n in 1..=12u32 {
            let cause = if n < 8 {
                "too large"
            } else {
                "connection refused"
            };
            let retry = retries.failed(&policy, cause, now, u64::from(n) * 7919);
            assert_eq!(retry.count, n);
            assert!(
                policy.wait_range(n).contains(&retry.wait.as_secs()),
                "retry {n}: {:?}",
                retry.wait
            );
            assert_eq!(retry.at, now + retry.wait);
            assert!(!retries.due(now));
            assert!(!retries.due(retry.at - Duration::from_millis(1)));
            assert!(retries.due(retry.at));
            if retry.new_cause {
                reported.push((n, cause));
            }
            now = retry.at;
        }
        assert_eq!(reported, [(1, "too large"), (8, "connection refused")]);
        // 5-10 s first, 2560-5120 s from the 10th on: over 5 hours for 12 failures.
        assert!(
            now - t0
                >= Duration::from_secs(5 + 10 + 20 + 40 + 80 + 160 + 320 + 640 + 1280 + 3 * 2560)
        );
        // A connection request: at once, still counted as a retry.
        retries.attempt_now();
        assert!(retries.due(now));
        assert_eq!(retries.count(), 12);
        assert!(!retries.failed(&policy, "too large", now, 0).new_cause);
        retries.succeeded();
        assert_eq!(retries.count(), 0);
        assert_eq!(retries.next_attempt(), None);
        let again = retries.failed(&policy, "too large", now, 0);
        assert!(again.new_cause, "reported again after a success");
        assert_eq!(again.wait, Duration::from_secs(5));
    }

    #[test]
    fn causes_remembered_are_bounded() {
        let policy = RetryPolicy::default();
        let mut retries = Retries::default();
        let now = Instant::now();
        for i in 0..100 {
            assert!(
                retries
                    .failed(&policy, &format!("cause {i}"), now, 0)
                    .new_cause
            );
        }
        assert_eq!(retries.reported.len(), MAX_REPORTED_CAUSES);
        assert!(!retries.failed(&policy, "cause 99", now, 0).new_cause);
        assert!(retries.failed(&policy, "cause 0", now, 0).new_cause);
        let absurd = RetryPolicy {
            minimum_wait: 65535,
            multiplier: 65535,
        };
        let retry = retries.failed(&absurd, "cause 99", now, u64::MAX);
        assert!(retry.at > now, "saturates, never panics");
    }

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
