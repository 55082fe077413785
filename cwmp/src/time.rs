//! `xsd:dateTime` text <-> Unix seconds, for `CurrentTime`, `PeriodicInformTime` and
//! dateTime parameters (TR-106 3.2.2: UTC, `Z` suffix, optional fractional seconds).
//!
//! The crate takes no clock: callers pass "now" as Unix seconds and these helpers turn it into
//! the text CWMP carries.
//!
//! ```
//! use cwmp::time::{format, parse, UNKNOWN_TIME};
//!
//! assert_eq!(format(0), "1970-01-01T00:00:00Z");
//! assert_eq!(parse("2024-02-29T12:00:00+01:00"), Some(1_709_204_400));
//! assert_eq!(parse(UNKNOWN_TIME), Some(-62_135_596_800));
//! assert_eq!(parse("2024-02-30T00:00:00Z"), None);
//! ```

/// TR-106's "Unknown Time": the dateTime a CPE reports when it does not know a time.
pub const UNKNOWN_TIME: &str = "0001-01-01T00:00:00Z";

/// Seconds in a day.
const DAY: i64 = 86_400;

/// Days from 1970-01-01 to the civil date (proleptic Gregorian), after H. Hinnant's
/// `days_from_civil`.
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date of a day count from 1970-01-01 (Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    // Both are small and positive by construction: day 1..=31, month 1..=12.
    let day = u32::try_from(doy - (153 * mp + 2) / 5 + 1).unwrap_or(1);
    let month = u32::try_from(if mp < 10 { mp + 3 } else { mp - 9 }).unwrap_or(1);
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        4 | 6 | 9 | 11 => 30,
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        _ => 31,
    }
}

/// Formats Unix seconds as `YYYY-MM-DDThh:mm:ssZ`. Years outside 1..=9999 are clamped to the
/// nearest representable instant.
pub fn format(unix: i64) -> String {
    const MIN: i64 = -62_135_596_800; // 0001-01-01T00:00:00Z
    const MAX: i64 = 253_402_300_799; // 9999-12-31T23:59:59Z
    let unix = unix.clamp(MIN, MAX);
    let (days, secs) = (unix.div_euclid(DAY), unix.rem_euclid(DAY));
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// Parses an `xsd:dateTime` into Unix seconds; `None` when malformed or not a real date.
///
/// Accepts `YYYY-MM-DDThh:mm:ss`, optional fractional seconds (dropped), and an optional zone
/// (`Z` or `+hh:mm`/`-hh:mm`); a missing zone is read as UTC, as TR-106 asks CPEs to do.
pub fn parse(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let num = |range: std::ops::Range<usize>| -> Option<u32> {
        let digits = text.get(range)?;
        if !digits.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        digits.parse().ok()
    };
    let year = i64::from(num(0..4)?);
    let (month, day) = (num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if year == 0 || !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return None;
    }
    // 24:00:00 is xsd's end of day; leap seconds are not representable in Unix time.
    let end_of_day = hour == 24 && minute == 0 && second == 0;
    if (hour > 23 && !end_of_day) || minute > 59 || second > 59 {
        return None;
    }
    let mut rest = &text[19..];
    if let Some(fraction) = rest.strip_prefix('.') {
        let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        rest = &fraction[digits..];
    }
    let offset = match rest.as_bytes() {
        [] | [b'Z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let field = |a: u8, b: u8| -> Option<i64> {
                (a.is_ascii_digit() && b.is_ascii_digit())
                    .then(|| i64::from(a - b'0') * 10 + i64::from(b - b'0'))
            };
            let (h, m) = (field(*h1, *h2)?, field(*m1, *m2)?);
            if h > 14 || m > 59 {
                return None;
            }
            let offset = h * 3600 + m * 60;
            if *sign == b'-' { -offset } else { offset }
        }
        _ => return None,
    };
    let secs = i64::from(hour) * 3600 + i64::from(minute) * 60 + i64::from(second);
    Some(days_from_civil(year, month, day) * DAY + secs - offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_across_eras() {
        for unix in [
            -62_135_596_800,
            -1,
            0,
            951_782_400, // 2000-02-29
            1_700_000_000,
            4_102_444_800, // 2100-01-01
            253_402_300_799,
        ] {
            let text = format(unix);
            assert_eq!(parse(&text), Some(unix), "{text}");
        }
        assert_eq!(format(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(format(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(format(i64::MIN), UNKNOWN_TIME);
        assert_eq!(format(i64::MAX), "9999-12-31T23:59:59Z");
    }

    #[test]
    fn accepts_xsd_forms() {
        let base = parse("2023-11-14T22:13:20Z");
        assert_eq!(base, Some(1_700_000_000));
        assert_eq!(parse("2023-11-14T22:13:20"), base);
        assert_eq!(parse("2023-11-14T22:13:20.123456Z"), base);
        assert_eq!(parse("2023-11-14T23:13:20+01:00"), base);
        assert_eq!(parse("2023-11-14T21:13:20-01:00"), base);
        assert_eq!(parse("2023-11-14T24:00:00Z"), parse("2023-11-15T00:00:00Z"));
    }

    #[test]
    fn rejects_malformed_and_impossible_dates() {
        for text in [
            "",
            "2023-11-14",
            "2023-11-14 22:13:20Z",
            "2023-13-01T00:00:00Z",
            "2023-00-01T00:00:00Z",
            "2023-02-29T00:00:00Z",
            "1900-02-29T00:00:00Z",
            "0000-01-01T00:00:00Z",
            "2023-11-14T25:00:00Z",
            "2023-11-14T24:00:01Z",
            "2023-11-14T22:60:00Z",
            "2023-11-14T22:13:60Z",
            "2023-11-14T22:13:20.Z",
            "2023-11-14T22:13:20+1:00",
            "2023-11-14T22:13:20+15:00",
            "2023-11-14T22:13:20ZZ",
            "+023-11-14T22:13:20Z",
            "2023-1a-14T22:13:20Z",
            "2023-11-14T22:13:2\u{e9}",
        ] {
            assert_eq!(parse(text), None, "{text:?}");
        }
    }
}
