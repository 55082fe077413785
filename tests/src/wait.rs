//! Readiness by polling a real condition, never a fixed sleep.

use std::time::{Duration, Instant};

/// Polls `cond` until it returns true; panics naming `what` after `timeout`.
pub fn wait_until(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    wait_until_some(what, timeout, || cond().then_some(()));
}

/// Polls `probe` until it returns `Some`; panics naming `what` after `timeout`.
pub fn wait_until_some<T>(
    what: &str,
    timeout: Duration,
    mut probe: impl FnMut() -> Option<T>,
) -> T {
    let start = Instant::now();
    let mut pause = Duration::from_millis(5);
    loop {
        if let Some(v) = probe() {
            return v;
        }
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        // Back off between polls so a slow condition does not spin a core.
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(200));
    }
}
