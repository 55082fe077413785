//! A home's speed tier: its rate limits up and down, as written (`qos = { down = "100M",
//! up = "20M", burst_ms = 10 }`) and validated. The fast path enforces them
//! (`nerg_abi::QosRate`): what is counted is the IPv4 packet, in both directions.
//!
//! Rates are bits per second with an optional SI suffix (`k`, `M`, `G`: 1,000-based, as
//! operators sell them). The burst is time at the rate: by default [`DEFAULT_BURST_MS`] of
//! traffic and at least [`MIN_BURST_PACKETS`] full-size packets.
//!
//! Why half a second: the fast path polices (XDP cannot queue), and TCP meets a policer's
//! empty bucket with a run of losses that its retransmissions often join, then waits out a
//! retransmission timeout (200 ms at least). A deep bucket makes that rare. Measured here
//! (iperf3, CUBIC, through the lab's NAT, `tests/tests/qos_goodput.rs`), TCP goodput as a
//! share of the tier at 10 / 100 / 1000 Mbit/s: a 10 ms burst 9 / 5 / 27%, 100 ms 48 / 48 /
//! 65%, 500 ms 98 / 98 / 97%, 1.5 s 98 / 98 / 97%. (Vendors' advice for TCP over policers
//! is of the same order: Cisco's is 1.5 s of the committed rate.)

use std::{fmt, str::FromStr};

use serde::{Deserialize, Serialize};

/// The burst unless the home says otherwise: this many milliseconds of traffic at the rate.
pub const DEFAULT_BURST_MS: u32 = 500;
/// The burst is never smaller than this many full-size (1,500-byte) packets.
pub const MIN_BURST_PACKETS: u64 = 16;
/// The smallest rate a limit can have.
pub const MIN_RATE: u64 = 64_000;
/// The largest (400 Gbit/s).
pub const MAX_RATE: u64 = 400_000_000_000;
/// The longest burst.
pub const MAX_BURST_MS: u32 = 2_000;

/// A home's speed tier as written; every field optional (no limit in that direction).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QosFile {
    /// To the home, e.g. `"100M"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub down: Option<String>,
    /// From the home, e.g. `"20M"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub up: Option<String>,
    /// The burst, in milliseconds at the rate; default [`DEFAULT_BURST_MS`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst_ms: Option<u32>,
}

/// A rate in bits per second.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Rate(u64);

impl Rate {
    /// Bits per second.
    pub const fn bits_per_s(self) -> u64 {
        self.0
    }
}

impl FromStr for Rate {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let t = s.trim();
        let (digits, scale) = match t.char_indices().last() {
            Some((i, 'k' | 'K')) => (&t[..i], 1_000),
            Some((i, 'm' | 'M')) => (&t[..i], 1_000_000),
            Some((i, 'g' | 'G')) => (&t[..i], 1_000_000_000),
            _ => (t, 1),
        };
        let bad = || format!("{s:?} is not a rate (bits per second, e.g. 100M, 1G, 500k)");
        let plain = !digits.is_empty()
            && digits.chars().all(|c| c.is_ascii_digit() || c == '.')
            && digits.chars().any(|c| c.is_ascii_digit());
        let value: f64 = match plain {
            true => digits.parse().map_err(|_| bad())?,
            false => return Err(bad()),
        };
        let bits = value * scale as f64;
        if !(MIN_RATE as f64..=MAX_RATE as f64).contains(&bits) {
            return Err(format!(
                "{s:?} is outside {}..={} bit/s",
                Rate(MIN_RATE),
                Rate(MAX_RATE)
            ));
        }
        Ok(Rate(bits.round() as u64))
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        match b {
            _ if b.is_multiple_of(1_000_000_000) => write!(f, "{}G", b / 1_000_000_000),
            _ if b.is_multiple_of(1_000_000) => write!(f, "{}M", b / 1_000_000),
            _ if b.is_multiple_of(1_000) => write!(f, "{}k", b / 1_000),
            _ => write!(f, "{b}"),
        }
    }
}

/// A home's validated speed tier.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Qos {
    /// To the home; `None`: no limit.
    pub down: Option<Rate>,
    /// From the home; `None`: no limit.
    pub up: Option<Rate>,
    /// The burst, in milliseconds at the rate.
    pub burst_ms: u32,
}

impl Qos {
    /// The tier of `file`, or which field is wrong and why.
    pub fn new(file: &QosFile) -> Result<Self, (&'static str, String, String)> {
        let rate = |key: &'static str, v: &Option<String>| match v {
            None => Ok(None),
            Some(text) => text
                .parse::<Rate>()
                .map(Some)
                .map_err(|why| (key, format!("{text:?}"), why)),
        };
        let burst_ms = file.burst_ms.unwrap_or(DEFAULT_BURST_MS);
        if !(1..=MAX_BURST_MS).contains(&burst_ms) {
            return Err((
                "burst_ms",
                burst_ms.to_string(),
                format!("must be in 1..={MAX_BURST_MS}"),
            ));
        }
        Ok(Self {
            down: rate("down", &file.down)?,
            up: rate("up", &file.up)?,
            burst_ms,
        })
    }

    /// The fast path's limit for `rate` (none: no limit).
    pub fn fast_path(&self, rate: Option<Rate>) -> nerg_abi::QosRate {
        match rate {
            None => nerg_abi::QosRate::default(),
            Some(r) => nerg_abi::QosRate::new(r.0, self.burst_bytes(r)),
        }
    }

    /// The burst at `rate`, in bytes: [`Self::burst_ms`] of traffic, at least
    /// [`MIN_BURST_PACKETS`] full-size packets.
    pub fn burst_bytes(&self, rate: Rate) -> u64 {
        let of_time = rate.0 / 8 * u64::from(self.burst_ms) / 1_000;
        of_time.max(MIN_BURST_PACKETS * 1_500)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_read_as_operators_write_them() {
        for (text, bits) in [
            ("100M", 100_000_000),
            ("1G", 1_000_000_000),
            ("2.5G", 2_500_000_000),
            ("500k", 500_000),
            ("20000000", 20_000_000),
            (" 10m ", 10_000_000),
        ] {
            assert_eq!(text.parse::<Rate>().unwrap().bits_per_s(), bits, "{text}");
        }
        for bad in [
            "", "M", "-5M", "+5M", "1T", "fast", "NaNM", "infG", "1e3k", "63k", "401G",
        ] {
            assert!(bad.parse::<Rate>().is_err(), "{bad:?} accepted");
        }
        for text in ["100M", "1G", "500k", "64001"] {
            let r: Rate = text.parse().unwrap();
            assert_eq!(r.to_string().parse::<Rate>().unwrap(), r);
        }
    }

    #[test]
    fn the_burst_is_time_at_the_rate_and_a_few_packets_at_least() {
        let q = Qos::new(&QosFile {
            down: Some("100M".into()),
            up: Some("1M".into()),
            burst_ms: None,
        })
        .unwrap();
        // Half a second at 100 Mbit/s.
        assert_eq!(q.burst_bytes(q.down.unwrap()), 6_250_000);
        let fp = q.fast_path(q.down);
        assert_eq!(fp.cost_ns(1_500), 120_000);
        assert_eq!(fp.burst_ns, 500_000_000);
        // Half a second at 64 kbit/s is 4,000 bytes: the floor of 16 packets.
        let slow = Qos::new(&QosFile {
            up: Some("64k".into()),
            ..QosFile::default()
        })
        .unwrap();
        assert_eq!(slow.burst_bytes(slow.up.unwrap()), 24_000);
        assert_eq!(q.fast_path(None), nerg_abi::QosRate::default());
        let e = Qos::new(&QosFile {
            burst_ms: Some(0),
            ..QosFile::default()
        })
        .unwrap_err();
        assert_eq!(e.0, "burst_ms");
        let e = Qos::new(&QosFile {
            down: Some("lots".into()),
            ..QosFile::default()
        })
        .unwrap_err();
        assert_eq!((e.0, e.1.as_str()), ("down", "\"lots\""));
    }
}
