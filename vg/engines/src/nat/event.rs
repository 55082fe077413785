//! Port-block log records (RFC 6888 REQ-12 and REQ-14, RFC 7422): one record per block
//! assignment and per block release, instead of one per flow.
//!
//! Every allocator operation that changes who owns a block returns a [`BlockEvent`]; the
//! caller writes it with [`BlockEvent::log`] (a `tracing` event under [`LOG_TARGET`], so
//! vgd can route these records to their own file) or stores the text form itself.
//!
//! # Text form
//!
//! One line per event, ASCII only, fields in this order, separated by one space:
//!
//! ```text
//! 2026-05-01T12:00:00Z alloc sub=42 priv="vlan:101" pub=203.0.113.5 ports=1536-2047
//! 2026-05-01T13:30:15Z release sub=42 priv="vlan:101" pub=203.0.113.5 ports=1536-2047
//! ```
//!
//! | field | meaning |
//! |---|---|
//! | time | when the block was assigned or released, UTC, RFC 3339 to the second (`YYYY-MM-DDThh:mm:ssZ`) |
//! | action | `alloc` (the subscriber owns the block from this time) or `release` (it no longer does; the block then rests for the port-reuse hold-down before anyone else gets it) |
//! | `sub=` | the subscriber id, decimal |
//! | `priv=` | the subscriber's private-side identity as the caller supplied it (e.g. its LSL or BRG MAC), in double quotes; `"` and `\` are escaped with `\`, and any other byte outside printable ASCII as `\xNN` (UTF-8 bytes), so the field never breaks the line |
//! | `pub=` | the public IPv4 address, dotted quad |
//! | `ports=` | first and last port of the block, inclusive, decimal |
//!
//! Destinations are never logged (RFC 6888 REQ-12). The form is stable: tools may parse
//! it ([`BlockEvent::from_str`](std::str::FromStr) is the reference parser); new fields, if
//! ever needed, are appended at the end of the line.

use std::{
    fmt::{self, Write as _},
    net::Ipv4Addr,
    str::FromStr,
    time::{SystemTime, UNIX_EPOCH},
};

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// The `tracing` target of block records, for routing them to their own log file.
pub const LOG_TARGET: &str = "nerg::nat::blocks";

/// A subscriber (home) as the NAT knows it: an opaque number chosen by vgd.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct SubscriberId(pub u32);

impl fmt::Display for SubscriberId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl From<u32> for SubscriberId {
    fn from(id: u32) -> Self {
        SubscriberId(id)
    }
}

/// A point in time as whole seconds since the UNIX epoch (UTC).
///
/// The allocator never reads a clock: the caller passes `now` into every call. Wall-clock
/// seconds rather than `Instant` because hold-downs are persisted and must mean the same
/// after a restart, and because log records need civil time. (Same shape as the DHCP
/// engine's `UnixTime`.)
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct UnixTime(pub u64);

impl UnixTime {
    /// `secs` seconds after the epoch.
    pub const fn from_secs(secs: u64) -> Self {
        UnixTime(secs)
    }

    /// Seconds since the epoch.
    pub const fn as_secs(self) -> u64 {
        self.0
    }

    /// Converts a wall-clock reading taken by the caller (times before 1970 become 0).
    pub fn from_system_time(time: SystemTime) -> Self {
        UnixTime(time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()))
    }

    /// This time plus `secs` seconds (saturating).
    pub const fn plus(self, secs: u64) -> Self {
        UnixTime(self.0.saturating_add(secs))
    }

    /// The RFC 3339 form, UTC, to the second: `2026-05-01T12:00:00Z`.
    pub fn rfc3339(self) -> Rfc3339 {
        Rfc3339(self)
    }
}

/// Displays a [`UnixTime`] as RFC 3339 (`YYYY-MM-DDThh:mm:ssZ`).
#[derive(Clone, Copy, Debug)]
pub struct Rfc3339(UnixTime);

impl fmt::Display for Rfc3339 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.0.0;
        // u64 seconds / 86400 fits an i64 with room to spare.
        let (y, m, d) = civil_from_days((secs / 86_400) as i64);
        let rem = secs % 86_400;
        write!(
            f,
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
            rem / 3600,
            rem / 60 % 60,
            rem % 60
        )
    }
}

/// Days since 1970-01-01 -> (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// (year, month, day) -> days since 1970-01-01; the inverse of [`civil_from_days`].
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = y - i64::from(m <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Parses `YYYY-MM-DDThh:mm:ssZ` (1970 or later).
fn parse_rfc3339(s: &str) -> Option<UnixTime> {
    let b = s.as_bytes();
    if b.len() < 20 || b[b.len() - 1] != b'Z' {
        return None;
    }
    let (date, time) = s[..s.len() - 1].split_once('T')?;
    let mut date = date.split('-');
    let (y, mo, d) = (date.next()?, date.next()?, date.next()?);
    let mut time = time.split(':');
    let (h, mi, se) = (time.next()?, time.next()?, time.next()?);
    if date.next().is_some() || time.next().is_some() {
        return None;
    }
    let digits = |t: &str, n: usize| t.len() == n && t.bytes().all(|c| c.is_ascii_digit());
    if y.len() < 4
        || !y.bytes().all(|c| c.is_ascii_digit())
        || ![mo, d, h, mi, se].iter().all(|t| digits(t, 2))
    {
        return None;
    }
    let y: i64 = y.parse().ok()?;
    let (mo, d, h, mi, se): (u32, u32, u64, u64, u64) = (
        mo.parse().ok()?,
        d.parse().ok()?,
        h.parse().ok()?,
        mi.parse().ok()?,
        se.parse().ok()?,
    );
    // The year cap keeps the day arithmetic far from overflow.
    if !(1970..=999_999_999).contains(&y)
        || !(1..=12).contains(&mo)
        || d == 0
        || h > 23
        || mi > 59
        || se > 59
    {
        return None;
    }
    let days = days_from_civil(y, mo, d);
    // Reject 2026-02-30 and friends: the date must survive the round trip.
    if civil_from_days(days) != (y, mo, d) {
        return None;
    }
    let days = u64::try_from(days).ok()?;
    days.checked_mul(86_400)?
        .checked_add(h * 3600 + mi * 60 + se)
        .map(UnixTime)
}

/// What happened to a block.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BlockAction {
    /// The block was assigned to the subscriber.
    Alloc,
    /// The block was taken from the subscriber (it then rests for the hold-down).
    Release,
}

impl BlockAction {
    /// The word used in the text form.
    pub const fn as_str(self) -> &'static str {
        match self {
            BlockAction::Alloc => "alloc",
            BlockAction::Release => "release",
        }
    }
}

/// One port-block log record; see the module doc for the text form.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BlockEvent {
    /// When it happened (the `now` the caller passed in).
    pub time: UnixTime,
    /// Assignment or release.
    pub action: BlockAction,
    /// Who owned (or now owns) the block.
    pub subscriber: SubscriberId,
    /// The subscriber's private-side identity as the caller supplied it.
    pub private_id: String,
    /// The public address.
    pub address: Ipv4Addr,
    /// First port of the block.
    pub first_port: u16,
    /// Last port of the block (inclusive).
    pub last_port: u16,
}

impl BlockEvent {
    /// Writes the record as an `info` event under [`LOG_TARGET`], with structured fields
    /// and the text form as the message.
    pub fn log(&self) {
        tracing::info!(
            target: LOG_TARGET,
            action = self.action.as_str(),
            subscriber = self.subscriber.0,
            private_id = %self.private_id,
            address = %self.address,
            first_port = self.first_port,
            last_port = self.last_port,
            time = self.time.0,
            "{self}"
        );
    }
}

impl fmt::Display for BlockEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} sub={} priv=\"",
            self.time.rfc3339(),
            self.action.as_str(),
            self.subscriber
        )?;
        for &b in self.private_id.as_bytes() {
            match b {
                b'"' | b'\\' => write!(f, "\\{}", b as char)?,
                0x20..=0x7e => f.write_char(b as char)?,
                _ => write!(f, "\\x{b:02x}")?,
            }
        }
        write!(
            f,
            "\" pub={} ports={}-{}",
            self.address, self.first_port, self.last_port
        )
    }
}

/// A line that is not a block record in the documented text form.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("not a NAT block record: {field} is malformed")]
pub struct EventParseError {
    /// The first field found wrong.
    pub field: &'static str,
}

impl FromStr for BlockEvent {
    type Err = EventParseError;

    fn from_str(line: &str) -> Result<Self, Self::Err> {
        let bad = |field| EventParseError { field };
        let (time, rest) = line.split_once(' ').ok_or(bad("time"))?;
        let time = parse_rfc3339(time).ok_or(bad("time"))?;
        let (action, rest) = rest.split_once(' ').ok_or(bad("action"))?;
        let action = match action {
            "alloc" => BlockAction::Alloc,
            "release" => BlockAction::Release,
            _ => return Err(bad("action")),
        };
        let (sub, rest) = rest.split_once(' ').ok_or(bad("sub"))?;
        let subscriber = sub
            .strip_prefix("sub=")
            .and_then(|s| s.parse().ok())
            .map(SubscriberId)
            .ok_or(bad("sub"))?;
        let rest = rest.strip_prefix("priv=\"").ok_or(bad("priv"))?;
        let (private_id, rest) = unescape(rest).ok_or(bad("priv"))?;
        let rest = rest.strip_prefix(' ').ok_or(bad("priv"))?;
        let (addr, rest) = rest.split_once(' ').ok_or(bad("pub"))?;
        let address = addr
            .strip_prefix("pub=")
            .and_then(|s| s.parse().ok())
            .ok_or(bad("pub"))?;
        let ports = rest.strip_prefix("ports=").ok_or(bad("ports"))?;
        let (first, last) = ports.split_once('-').ok_or(bad("ports"))?;
        let first_port: u16 = first.parse().map_err(|_| bad("ports"))?;
        let last_port: u16 = last.parse().map_err(|_| bad("ports"))?;
        if last_port < first_port {
            return Err(bad("ports"));
        }
        Ok(BlockEvent {
            time,
            action,
            subscriber,
            private_id,
            address,
            first_port,
            last_port,
        })
    }
}

/// Reads an escaped `priv` value up to its closing quote; returns it and what follows.
fn unescape(s: &str) -> Option<(String, &str)> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    loop {
        match *b.get(i)? {
            b'"' => break,
            b'\\' => match *b.get(i + 1)? {
                c @ (b'"' | b'\\') => {
                    out.push(c);
                    i += 2;
                }
                b'x' => {
                    let hex = s.get(i + 2..i + 4)?;
                    out.push(u8::from_str_radix(hex, 16).ok()?);
                    i += 4;
                }
                _ => return None,
            },
            c @ 0x20..=0x7e => {
                out.push(c);
                i += 1;
            }
            _ => return None,
        }
    }
    Some((String::from_utf8(out).ok()?, &s[i + 1..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_known_instants() {
        let cases = [
            (0, "1970-01-01T00:00:00Z"),
            (951_782_400, "2000-02-29T00:00:00Z"),
            (1_700_000_000, "2023-11-14T22:13:20Z"),
            (4_107_542_399, "2100-02-28T23:59:59Z"),
            (253_402_300_799, "9999-12-31T23:59:59Z"),
        ];
        for (secs, text) in cases {
            assert_eq!(UnixTime(secs).rfc3339().to_string(), text);
            assert_eq!(parse_rfc3339(text), Some(UnixTime(secs)), "{text}");
        }
        // Every day over four centuries survives the round trip.
        for day in (0..146_097 * 3).step_by(13) {
            let t = UnixTime(day * 86_400 + 3_661);
            assert_eq!(parse_rfc3339(&t.rfc3339().to_string()), Some(t));
        }
        for bad in [
            "2023-02-29T00:00:00Z",
            "2023-13-01T00:00:00Z",
            "2023-01-01T24:00:00Z",
            "2023-01-01T00:00:00",
            "1969-12-31T23:59:59Z",
            "2023-1-01T00:00:00Z",
            "2023-01-01T00:00:00+01:00",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
        assert!(UnixTime(u64::MAX).rfc3339().to_string().ends_with('Z'));
        assert_eq!(UnixTime(u64::MAX).plus(1), UnixTime(u64::MAX));
    }

    fn event(private_id: &str) -> BlockEvent {
        BlockEvent {
            time: UnixTime(1_777_636_800),
            action: BlockAction::Alloc,
            subscriber: SubscriberId(42),
            private_id: private_id.to_owned(),
            address: Ipv4Addr::new(203, 0, 113, 5),
            first_port: 1536,
            last_port: 2047,
        }
    }

    #[test]
    fn text_form_is_stable_and_parses_back() {
        let e = event("vlan:101");
        assert_eq!(
            e.to_string(),
            "2026-05-01T12:00:00Z alloc sub=42 priv=\"vlan:101\" pub=203.0.113.5 ports=1536-2047"
        );
        assert_eq!(e.to_string().parse::<BlockEvent>(), Ok(e));
        let hostile = event("a \"quoted\" \\ name\nwith newline, é and\ttab");
        let line = hostile.to_string();
        assert!(
            line.is_ascii() && !line.contains('\n') && !line.contains('\t'),
            "{line}"
        );
        assert!(
            line.contains(r#"priv="a \"quoted\" \\ name\x0awith newline, \xc3\xa9 and\x09tab""#)
        );
        assert_eq!(line.parse::<BlockEvent>(), Ok(hostile));
        let released = BlockEvent {
            action: BlockAction::Release,
            ..event("")
        };
        assert_eq!(released.to_string().parse::<BlockEvent>(), Ok(released));
    }

    #[test]
    fn malformed_lines_name_the_field() {
        let good = event("x").to_string();
        let cases = [
            (good.replace("2026-05-01", "2026-05-32"), "time"),
            (good.replace("alloc", "grab"), "action"),
            (good.replace("sub=42", "sub=-1"), "sub"),
            (good.replace("priv=\"x\"", "priv=\"x\\q\""), "priv"),
            (good.replace("priv=\"x\"", "priv=\"x"), "priv"),
            (good.replace("203.0.113.5", "203.0.113"), "pub"),
            (good.replace("1536-2047", "2047-1536"), "ports"),
            (String::new(), "time"),
        ];
        for (line, field) in cases {
            assert_eq!(
                line.parse::<BlockEvent>(),
                Err(EventParseError { field }),
                "{line}"
            );
        }
    }

    #[test]
    fn json_form() {
        let e = event("vlan:101");
        let json = serde_json::to_string(&e).unwrap();
        assert_eq!(
            json,
            r#"{"time":1777636800,"action":"alloc","subscriber":42,"private_id":"vlan:101","address":"203.0.113.5","first_port":1536,"last_port":2047}"#
        );
        assert_eq!(serde_json::from_str::<BlockEvent>(&json).unwrap(), e);
    }
}
