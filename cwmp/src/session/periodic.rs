//! When the next periodic Inform is due (`ManagementServer.PeriodicInformInterval` and
//! `PeriodicInformTime`, TR-181): Informs fall on `PeriodicInformTime + k * interval` for
//! integer `k`; without a reference time (Unknown Time) the CPE picks the phase, here `now`.

use crate::model::{Backend, Model};

/// The first instant strictly after `now` (Unix seconds) on the schedule
/// `reference + k * interval`; `now + interval` when there is no reference. `None` when
/// periodic Informs are off (interval 0).
pub fn next_periodic_inform(now: i64, interval: u32, reference: Option<i64>) -> Option<i64> {
    if interval == 0 {
        return None;
    }
    let interval = i64::from(interval);
    Some(match reference {
        None => now.saturating_add(interval),
        Some(reference) => {
            let elapsed = i128::from(now) - i128::from(reference);
            let steps = elapsed.div_euclid(i128::from(interval)) + 1;
            let next = i128::from(reference) + steps * i128::from(interval);
            i64::try_from(next).unwrap_or(i64::MAX)
        }
    })
}

/// [`next_periodic_inform`] with the settings in a model's `Device.ManagementServer`:
/// `None` when `PeriodicInformEnable` is false.
pub fn next_periodic_inform_of<B: Backend>(model: &Model<B>, now: i64) -> Option<i64> {
    let get = |name: &str| model.get(&format!("Device.ManagementServer.{name}")).ok();
    if get("PeriodicInformEnable").and_then(|v| v.as_bool()) != Some(true) {
        return None;
    }
    let interval = get("PeriodicInformInterval")
        .and_then(|v| v.as_u64())
        .and_then(|v| u32::try_from(v).ok())?;
    let reference = get("PeriodicInformTime")
        .and_then(|v| v.as_str().and_then(crate::time::parse))
        .filter(|&t| t > crate::time::parse(crate::time::UNKNOWN_TIME).unwrap_or(i64::MIN));
    next_periodic_inform(now, interval, reference)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::NoBackend;

    #[test]
    fn schedule_follows_the_reference_time() {
        assert_eq!(next_periodic_inform(1000, 300, None), Some(1300));
        assert_eq!(next_periodic_inform(1000, 0, Some(0)), None);
        // Reference in the past, present and future.
        assert_eq!(next_periodic_inform(1000, 300, Some(100)), Some(1300));
        assert_eq!(next_periodic_inform(1000, 300, Some(1000)), Some(1300));
        assert_eq!(next_periodic_inform(1000, 300, Some(999)), Some(1299));
        assert_eq!(next_periodic_inform(1000, 300, Some(5000)), Some(1100));
        assert_eq!(next_periodic_inform(i64::MAX, 300, Some(0)), Some(i64::MAX));
        assert_eq!(next_periodic_inform(i64::MAX, 300, None), Some(i64::MAX));
        assert!(next_periodic_inform(i64::MIN, u32::MAX, Some(i64::MAX)).is_some());
    }

    #[test]
    fn schedule_from_the_model() {
        let mut m = Model::new(crate::tr181::brg().expect("schema"), NoBackend);
        assert_eq!(
            next_periodic_inform_of(&m, 0),
            Some(3600),
            "defaults: on, hourly"
        );
        m.set(
            "Device.ManagementServer.PeriodicInformTime",
            "1970-01-01T00:10:00Z",
        )
        .expect("set");
        m.set("Device.ManagementServer.PeriodicInformInterval", 300u32)
            .expect("set");
        assert_eq!(next_periodic_inform_of(&m, 1000), Some(1200));
        m.set("Device.ManagementServer.PeriodicInformEnable", false)
            .expect("set");
        assert_eq!(next_periodic_inform_of(&m, 1000), None);
    }
}
