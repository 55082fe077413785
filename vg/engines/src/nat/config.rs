//! The `[nat]` section of vgd's configuration: the wire form ([`NatConfigWire`]) and the
//! validated [`NatConfig`] it converts into, once, with [`TryFrom`].
//!
//! ```toml
//! [nat]
//! pool = ["203.0.113.0/24", "198.51.100.10-198.51.100.20", "192.0.2.7"]
//! port_range = "1024-65535"             # public ports handed out in blocks
//! block_size = 512                      # ports per block; must divide the port range
//! initial_blocks_per_subscriber = 1     # blocks a subscriber gets when it is created
//! max_blocks_per_subscriber = 4         # blocks it may grow to (at most 32)
//! max_sessions_per_subscriber = 2000    # mappings the fast path allows one subscriber
//! port_reuse_hold_down_secs = 120       # a released block rests this long before reuse
//! address_pooling = "paired"            # the only mode: one public address per subscriber
//! filtering = "endpoint-independent"    # or "address-and-port-dependent"
//!
//! [nat.timeouts]
//! udp_secs = 300                        # >= 120
//! tcp_established_secs = 7440           # >= 7440 (2 h 4 min)
//! tcp_transitory_secs = 240             # >= 240
//! icmp_secs = 60                        # >= 60
//! ```
//!
//! Every key is optional except `pool`; the defaults are osvbng's CGNAT defaults, which are
//! also the RFC values (each constant below cites its source). Errors name the key, the
//! value and why ([`NatConfigError`]); [`NatConfig::warnings`] lists legal but doubtful
//! settings, and [`NatConfig::capacity`] the subscriber counts the pool supports.

use std::fmt;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::{
    pool::{PoolEntry, PoolEntryError, PoolError, PortRange, PortRangeError, PublicPool},
    select::MAX_BLOCKS_PER_SUBSCRIBER,
};

/// Default public port range: everything above the well-known ports (RFC 4787 §4.2.1
/// REQ-3a: a NAT maps ports below 1024 only from ports below 1024).
pub const DEFAULT_PORT_RANGE: PortRange = match PortRange::new(1024, 65535) {
    Ok(r) => r,
    Err(_) => panic!("1024-65535 is a valid range"),
};
/// Default ports per block (osvbng; RFC 7422 leaves the size to the operator).
pub const DEFAULT_BLOCK_SIZE: u16 = 512;
/// Default blocks given to a new subscriber.
pub const DEFAULT_INITIAL_BLOCKS: u8 = 1;
/// Default most blocks per subscriber (osvbng; RFC 6888 REQ-4: a limit MUST exist).
pub const DEFAULT_MAX_BLOCKS: u8 = 4;
/// Default most mappings per subscriber (osvbng; RFC 6888 REQ-5: a limit MUST exist).
pub const DEFAULT_MAX_SESSIONS: u32 = 2000;
/// Default and recommended port-reuse hold-down, seconds (RFC 6888 REQ-8: a freed
/// port SHOULD NOT be reused for 120 s).
pub const DEFAULT_HOLD_DOWN_SECS: u32 = 120;
/// Longest hold-down accepted: a day (longer mostly keeps idle blocks out of the pool; it
/// also catches milliseconds written for seconds).
pub const MAX_HOLD_DOWN_SECS: u32 = 86_400;
/// Default UDP mapping timeout, seconds (RFC 4787 §4.3 REQ-5: 5 min RECOMMENDED).
pub const DEFAULT_UDP_SECS: u32 = 300;
/// Shortest UDP mapping timeout, seconds (RFC 4787 §4.3 REQ-5: MUST NOT expire in < 2 min).
pub const MIN_UDP_SECS: u32 = 120;
/// Default and shortest TCP established idle timeout, seconds (RFC 5382 REQ-5: MUST NOT
/// be less than 2 h 4 min).
pub const MIN_TCP_ESTABLISHED_SECS: u32 = 7440;
/// Default and shortest TCP transitory timeout, seconds (RFC 5382 REQ-5: partially open
/// or closing connections, MUST NOT be less than 4 min).
pub const MIN_TCP_TRANSITORY_SECS: u32 = 240;
/// Default and shortest ICMP query timeout, seconds (RFC 5508 REQ-2: MUST NOT be less
/// than 60 s).
pub const MIN_ICMP_SECS: u32 = 60;
/// Longest timeout accepted for any protocol: 7 days (catches milliseconds written for
/// seconds; nothing legitimate idles longer behind a CGN).
pub const MAX_TIMEOUT_SECS: u32 = 7 * 86_400;

/// The `[nat]` section as written.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NatConfigWire {
    /// Public pool entries: addresses, prefixes, ranges.
    pub pool: Vec<String>,
    /// Public port range, `first-last`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port_range: Option<String>,
    /// Ports per block.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub block_size: Option<u32>,
    /// Blocks a new subscriber gets.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub initial_blocks_per_subscriber: Option<u32>,
    /// Blocks a subscriber may grow to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_blocks_per_subscriber: Option<u32>,
    /// Mappings one subscriber may hold.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_sessions_per_subscriber: Option<u32>,
    /// Seconds a released block rests before reuse.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port_reuse_hold_down_secs: Option<u32>,
    /// Address pooling; only `"paired"` exists.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address_pooling: Option<AddressPooling>,
    /// Inbound filtering behaviour.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filtering: Option<Filtering>,
    /// `[nat.timeouts]`.
    pub timeouts: TimeoutsWire,
}

/// `[nat.timeouts]` as written, seconds.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TimeoutsWire {
    /// UDP mapping idle timeout.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub udp_secs: Option<u32>,
    /// TCP established idle timeout.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tcp_established_secs: Option<u32>,
    /// TCP transitory (opening, closing, after RST) timeout.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tcp_transitory_secs: Option<u32>,
    /// ICMP query mapping idle timeout.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub icmp_secs: Option<u32>,
}

/// Address pooling (RFC 4787 §4.1 REQ-2, RFC 6888 REQ-2).
///
/// Only paired pooling exists: every block of a subscriber is on the same public address,
/// so remote services that tie a session to the client address keep working. The key exists
/// so that a configuration asking for anything else fails loudly instead of being ignored.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AddressPooling {
    /// One public address per subscriber.
    #[default]
    Paired,
}

/// Inbound filtering (RFC 4787 §5 REQ-8).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Filtering {
    /// Any remote endpoint may send to a mapping (transparency; RFC 4787 REQ-8's first
    /// choice, osvbng's default).
    #[default]
    EndpointIndependent,
    /// Only remote address:port pairs the home has sent to may send back.
    AddressAndPortDependent,
}

impl fmt::Display for Filtering {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Filtering::EndpointIndependent => "endpoint-independent",
            Filtering::AddressAndPortDependent => "address-and-port-dependent",
        })
    }
}

/// Validated mapping timeouts, seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Timeouts {
    udp_secs: u32,
    tcp_established_secs: u32,
    tcp_transitory_secs: u32,
    icmp_secs: u32,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            udp_secs: DEFAULT_UDP_SECS,
            tcp_established_secs: MIN_TCP_ESTABLISHED_SECS,
            tcp_transitory_secs: MIN_TCP_TRANSITORY_SECS,
            icmp_secs: MIN_ICMP_SECS,
        }
    }
}

impl Timeouts {
    /// UDP mapping idle timeout.
    pub const fn udp_secs(&self) -> u32 {
        self.udp_secs
    }

    /// TCP established idle timeout.
    pub const fn tcp_established_secs(&self) -> u32 {
        self.tcp_established_secs
    }

    /// TCP transitory timeout.
    pub const fn tcp_transitory_secs(&self) -> u32 {
        self.tcp_transitory_secs
    }

    /// ICMP query idle timeout.
    pub const fn icmp_secs(&self) -> u32 {
        self.icmp_secs
    }
}

/// The validated NAT configuration; build it from [`NatConfigWire`] with `TryFrom`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NatConfig {
    pool: PublicPool,
    port_range: PortRange,
    block_size: u16,
    blocks_per_address: u32,
    initial_blocks: u8,
    max_blocks: u8,
    max_sessions: u32,
    hold_down_secs: u32,
    filtering: Filtering,
    timeouts: Timeouts,
}

/// A rejected `[nat]` value: which key, what value (as written, or as defaulted) and why.
#[derive(Debug, Error)]
#[error("nat: `{key}` = {value}: {problem}")]
pub struct NatConfigError {
    /// The key, e.g. `nat.block_size` or `nat.pool[2]`.
    pub key: String,
    /// The offending value, in TOML syntax.
    pub value: String,
    /// Why it was rejected.
    #[source]
    pub problem: NatConfigProblem,
}

/// Why a `[nat]` value was rejected.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum NatConfigProblem {
    /// A pool entry does not parse or names unusable addresses.
    #[error("bad pool entry: {0}")]
    PoolEntry(#[source] PoolEntryError),
    /// The pool as a whole is wrong (empty, overlapping, too large).
    #[error("{0}")]
    Pool(#[source] PoolError),
    /// The port range does not parse.
    #[error("bad port range: {0}")]
    PortRange(#[source] PortRangeError),
    /// The block size does not split the port range into whole blocks.
    #[error(
        "{block_size} does not divide the {len} ports of {range}; \
         divisors near it: {below} and {above}"
    )]
    BlockSizeNotDivisor {
        /// The block size.
        block_size: u32,
        /// The port range.
        range: PortRange,
        /// Ports in the range.
        len: u32,
        /// Largest divisor of `len` below `block_size`.
        below: u32,
        /// Smallest divisor of `len` above `block_size` (or `len`).
        above: u32,
    },
    /// A number is outside its allowed interval.
    #[error("must be between {min} and {max}{why}")]
    OutOfBounds {
        /// Smallest allowed value.
        min: u64,
        /// Largest allowed value.
        max: u64,
        /// Where the limit comes from, starting with "; " (or empty).
        why: &'static str,
    },
}

fn err(key: &str, value: impl fmt::Display, problem: NatConfigProblem) -> NatConfigError {
    NatConfigError {
        key: key.to_owned(),
        value: value.to_string(),
        problem,
    }
}

fn bounded(
    key: &str,
    value: u32,
    min: u32,
    max: u32,
    why: &'static str,
) -> Result<u32, NatConfigError> {
    if (min..=max).contains(&value) {
        Ok(value)
    } else {
        Err(err(
            key,
            value,
            NatConfigProblem::OutOfBounds {
                min: min.into(),
                max: max.into(),
                why,
            },
        ))
    }
}

/// Largest divisor of `n` below `x` and smallest above `x` (both within `1..=n`).
fn divisors_around(n: u32, x: u32) -> (u32, u32) {
    let below = (1..x.min(n + 1))
        .rev()
        .find(|&d| n.is_multiple_of(d))
        .unwrap_or(1);
    let above = (x.saturating_add(1)..=n)
        .find(|&d| n.is_multiple_of(d))
        .unwrap_or(n);
    (below, above)
}

impl TryFrom<NatConfigWire> for NatConfig {
    type Error = NatConfigError;

    fn try_from(wire: NatConfigWire) -> Result<Self, NatConfigError> {
        let pool = checked_pool(&wire.pool)?;
        let port_range = match &wire.port_range {
            None => DEFAULT_PORT_RANGE,
            Some(text) => text.parse().map_err(|e| {
                err(
                    "nat.port_range",
                    format_args!("{text:?}"),
                    NatConfigProblem::PortRange(e),
                )
            })?,
        };
        let len = port_range.len();
        let block_size = bounded(
            "nat.block_size",
            wire.block_size.unwrap_or(DEFAULT_BLOCK_SIZE.into()),
            1,
            len,
            "; a block lies inside nat.port_range",
        )?;
        if !len.is_multiple_of(block_size) {
            let (below, above) = divisors_around(len, block_size);
            return Err(err(
                "nat.block_size",
                block_size,
                NatConfigProblem::BlockSizeNotDivisor {
                    block_size,
                    range: port_range,
                    len,
                    below,
                    above,
                },
            ));
        }
        let blocks_per_address = len / block_size;
        let max_blocks = bounded(
            "nat.max_blocks_per_subscriber",
            wire.max_blocks_per_subscriber
                .unwrap_or(DEFAULT_MAX_BLOCKS.into()),
            1,
            blocks_per_address.min(MAX_BLOCKS_PER_SUBSCRIBER as u32),
            "; at most 32 (the fast path's array) and at most the blocks of one address",
        )?;
        let initial_blocks = bounded(
            "nat.initial_blocks_per_subscriber",
            wire.initial_blocks_per_subscriber
                .unwrap_or(DEFAULT_INITIAL_BLOCKS.into()),
            1,
            max_blocks,
            "; at least one, at most nat.max_blocks_per_subscriber",
        )?;
        let max_sessions = bounded(
            "nat.max_sessions_per_subscriber",
            wire.max_sessions_per_subscriber
                .unwrap_or(DEFAULT_MAX_SESSIONS),
            1,
            u32::MAX,
            "; RFC 6888 REQ-5 requires a limit",
        )?;
        let hold_down_secs = bounded(
            "nat.port_reuse_hold_down_secs",
            wire.port_reuse_hold_down_secs
                .unwrap_or(DEFAULT_HOLD_DOWN_SECS),
            0,
            MAX_HOLD_DOWN_SECS,
            "",
        )?;

        let timeouts = checked_timeouts(&wire.timeouts)?;
        // All bounded above: block_size <= 65535, the block counts <= 32.
        Ok(Self {
            pool,
            port_range,
            block_size: block_size as u16,
            blocks_per_address,
            initial_blocks: initial_blocks as u8,
            max_blocks: max_blocks as u8,
            max_sessions,
            hold_down_secs,
            filtering: wire.filtering.unwrap_or_default(),
            timeouts,
        })
    }
}

/// `nat.pool`: every entry parsed, none overlapping another.
fn checked_pool(texts: &[String]) -> Result<PublicPool, NatConfigError> {
    let mut entries = Vec::with_capacity(texts.len());
    for (i, text) in texts.iter().enumerate() {
        let entry: PoolEntry = text.parse().map_err(|e| {
            err(
                &format!("nat.pool[{i}]"),
                format_args!("{text:?}"),
                NatConfigProblem::PoolEntry(e),
            )
        })?;
        entries.push(entry);
    }
    PublicPool::new(entries).map_err(|e| {
        let (key, value) = match &e {
            PoolError::Overlap { b_index, .. } => (
                format!("nat.pool[{b_index}]"),
                format!("{:?}", texts[*b_index]),
            ),
            _ => ("nat.pool".to_owned(), format!("{texts:?}")),
        };
        err(&key, value, NatConfigProblem::Pool(e))
    })
}

/// `nat.timeouts`, within the RFCs' floors.
fn checked_timeouts(t: &TimeoutsWire) -> Result<Timeouts, NatConfigError> {
    let udp_secs = bounded(
        "nat.timeouts.udp_secs",
        t.udp_secs.unwrap_or(DEFAULT_UDP_SECS),
        MIN_UDP_SECS,
        MAX_TIMEOUT_SECS,
        "; RFC 4787 REQ-5: UDP mappings MUST live at least 2 minutes",
    )?;
    let tcp_established_secs = bounded(
        "nat.timeouts.tcp_established_secs",
        t.tcp_established_secs.unwrap_or(MIN_TCP_ESTABLISHED_SECS),
        MIN_TCP_ESTABLISHED_SECS,
        MAX_TIMEOUT_SECS,
        "; RFC 5382 REQ-5: established TCP MUST live at least 2 h 4 min",
    )?;
    let tcp_transitory_secs = bounded(
        "nat.timeouts.tcp_transitory_secs",
        t.tcp_transitory_secs.unwrap_or(MIN_TCP_TRANSITORY_SECS),
        MIN_TCP_TRANSITORY_SECS,
        tcp_established_secs,
        "; RFC 5382 REQ-5: at least 4 min, and not above tcp_established_secs",
    )?;
    let icmp_secs = bounded(
        "nat.timeouts.icmp_secs",
        t.icmp_secs.unwrap_or(MIN_ICMP_SECS),
        MIN_ICMP_SECS,
        MAX_TIMEOUT_SECS,
        "; RFC 5508 REQ-2: ICMP query mappings MUST live at least 60 s",
    )?;
    Ok(Timeouts {
        udp_secs,
        tcp_established_secs,
        tcp_transitory_secs,
        icmp_secs,
    })
}

impl NatConfig {
    /// The public pool.
    pub fn pool(&self) -> &PublicPool {
        &self.pool
    }

    /// The public port range handed out in blocks.
    pub const fn port_range(&self) -> PortRange {
        self.port_range
    }

    /// Ports per block (divides the port range).
    pub const fn block_size(&self) -> u16 {
        self.block_size
    }

    /// Blocks on each public address: port range length / block size.
    pub const fn blocks_per_address(&self) -> u32 {
        self.blocks_per_address
    }

    /// Blocks a new subscriber gets (1 ..= max).
    pub const fn initial_blocks(&self) -> u8 {
        self.initial_blocks
    }

    /// Blocks a subscriber may grow to (1 ..= 32, and no more than one address holds).
    pub const fn max_blocks(&self) -> u8 {
        self.max_blocks
    }

    /// Mappings one subscriber may hold (enforced by the fast path).
    pub const fn max_sessions(&self) -> u32 {
        self.max_sessions
    }

    /// Seconds a released block rests before it is handed out again.
    pub const fn hold_down_secs(&self) -> u32 {
        self.hold_down_secs
    }

    /// Address pooling: always paired.
    pub const fn address_pooling(&self) -> AddressPooling {
        AddressPooling::Paired
    }

    /// Inbound filtering behaviour.
    pub const fn filtering(&self) -> Filtering {
        self.filtering
    }

    /// Mapping timeouts.
    pub const fn timeouts(&self) -> Timeouts {
        self.timeouts
    }

    /// How many subscribers this pool supports.
    pub fn capacity(&self) -> Capacity {
        Capacity::new(
            self.pool.len() as u32,
            self.blocks_per_address,
            self.initial_blocks,
            self.max_blocks,
        )
    }

    /// Legal but doubtful settings, given how many subscribers are configured; vgd logs
    /// them at start and `--check-config` prints them.
    pub fn warnings(&self, subscribers: u64) -> Vec<NatConfigWarning> {
        let mut out = Vec::new();
        if self.hold_down_secs < DEFAULT_HOLD_DOWN_SECS {
            out.push(NatConfigWarning::ShortHoldDown {
                secs: self.hold_down_secs,
            });
        }
        if self.port_range.first() < 1024 {
            out.push(NatConfigWarning::WellKnownPorts {
                range: self.port_range,
            });
        }
        let ports = u32::from(self.max_blocks) * u32::from(self.block_size);
        // TCP, UDP and ICMP have separate port spaces: 3x the ports is the true ceiling.
        if u64::from(self.max_sessions) > 3 * u64::from(ports) {
            out.push(NatConfigWarning::SessionsUnreachable {
                sessions: self.max_sessions,
                ports,
            });
        }
        let cap = self.capacity();
        if subscribers > cap.subscribers_at_initial {
            out.push(NatConfigWarning::PoolTooSmall {
                subscribers,
                capacity: cap,
            });
        } else if subscribers > cap.subscribers_at_max {
            out.push(NatConfigWarning::GrowthNotGuaranteed {
                subscribers,
                capacity: cap,
            });
        }
        out
    }
}

/// A legal but doubtful `[nat]` setting.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum NatConfigWarning {
    /// The hold-down is shorter than RFC 6888's 120 s.
    ShortHoldDown {
        /// The configured hold-down.
        secs: u32,
    },
    /// The port range includes well-known ports.
    WellKnownPorts {
        /// The configured range.
        range: PortRange,
    },
    /// The session limit is above what the port blocks can ever hold.
    SessionsUnreachable {
        /// The configured limit.
        sessions: u32,
        /// Ports of a subscriber at its maximum block count.
        ports: u32,
    },
    /// More subscribers than the pool can give their initial blocks.
    PoolTooSmall {
        /// Configured subscribers.
        subscribers: u64,
        /// What the pool supports.
        capacity: Capacity,
    },
    /// Every subscriber gets its initial blocks, but not all can grow to the maximum.
    GrowthNotGuaranteed {
        /// Configured subscribers.
        subscribers: u64,
        /// What the pool supports.
        capacity: Capacity,
    },
}

impl fmt::Display for NatConfigWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NatConfigWarning::ShortHoldDown { secs } => write!(
                f,
                "nat: `nat.port_reuse_hold_down_secs` = {secs}: below the 120 s RFC 6888 \
                 REQ-8 recommends; a released port may reach another home while remote \
                 peers still send to it"
            ),
            NatConfigWarning::WellKnownPorts { range } => write!(
                f,
                "nat: `nat.port_range` = \"{range}\": includes ports below 1024 \
                 (RFC 4787 REQ-3a maps them only from ports below 1024)"
            ),
            NatConfigWarning::SessionsUnreachable { sessions, ports } => write!(
                f,
                "nat: `nat.max_sessions_per_subscriber` = {sessions}: unreachable; a \
                 subscriber holds at most {ports} ports per protocol"
            ),
            NatConfigWarning::PoolTooSmall {
                subscribers,
                capacity,
            } => write!(
                f,
                "nat: `nat.pool`: {subscribers} subscribers configured but the pool has \
                 initial blocks for only {} ({capacity})",
                capacity.subscribers_at_initial
            ),
            NatConfigWarning::GrowthNotGuaranteed {
                subscribers,
                capacity,
            } => write!(
                f,
                "nat: `nat.pool`: {subscribers} subscribers configured; only {} can all \
                 grow to nat.max_blocks_per_subscriber at once ({capacity})",
                capacity.subscribers_at_max
            ),
        }
    }
}

/// Capacity of a pool: how many subscribers it serves under paired pooling.
///
/// Paired pooling means a subscriber's blocks all come from one address, so the counts are
/// per address, rounded down, times the addresses: `addresses * floor(blocks_per_address /
/// blocks_per_subscriber)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct Capacity {
    /// Public addresses.
    pub addresses: u32,
    /// Blocks on each address.
    pub blocks_per_address: u32,
    /// Blocks in the whole pool.
    pub total_blocks: u64,
    /// Subscribers the pool holds while each has only its initial blocks.
    pub subscribers_at_initial: u64,
    /// Subscribers the pool holds even if every one grows to the maximum block count.
    pub subscribers_at_max: u64,
}

impl Capacity {
    /// The capacity of `addresses` addresses with the given block counts.
    pub fn new(
        addresses: u32,
        blocks_per_address: u32,
        initial_blocks: u8,
        max_blocks: u8,
    ) -> Self {
        Self {
            addresses,
            blocks_per_address,
            total_blocks: u64::from(addresses) * u64::from(blocks_per_address),
            subscribers_at_initial: subscribers_supported(
                addresses,
                blocks_per_address,
                initial_blocks.into(),
            ),
            subscribers_at_max: subscribers_supported(
                addresses,
                blocks_per_address,
                max_blocks.into(),
            ),
        }
    }
}

impl fmt::Display for Capacity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} addresses x {} blocks = {} blocks; {} subscribers at the initial block count, \
             {} at the maximum",
            self.addresses,
            self.blocks_per_address,
            self.total_blocks,
            self.subscribers_at_initial,
            self.subscribers_at_max
        )
    }
}

/// Subscribers `addresses` addresses support when each holds `blocks_per_subscriber` blocks
/// of the `blocks_per_address` on its (single, paired) address; 0 blocks per subscriber
/// counts as 1.
pub fn subscribers_supported(
    addresses: u32,
    blocks_per_address: u32,
    blocks_per_subscriber: u32,
) -> u64 {
    u64::from(addresses) * u64::from(blocks_per_address / blocks_per_subscriber.max(1))
}

/// Addresses needed so that `subscribers` subscribers can each hold `blocks_per_subscriber`
/// blocks (the inverse of [`subscribers_supported`], rounded up); `None` if one address
/// cannot hold even one such subscriber.
pub fn addresses_needed(
    subscribers: u64,
    blocks_per_address: u32,
    blocks_per_subscriber: u32,
) -> Option<u64> {
    let per_address = u64::from(blocks_per_address / blocks_per_subscriber.max(1));
    (per_address > 0).then(|| subscribers.div_ceil(per_address))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<NatConfig, NatConfigError> {
        let wire: NatConfigWire = toml::from_str(text).expect("TOML matches the wire schema");
        NatConfig::try_from(wire)
    }

    fn err(text: &str) -> String {
        parse(text).unwrap_err().to_string()
    }

    #[test]
    fn defaults_are_osvbng_and_rfc() {
        let c = parse(r#"pool = ["203.0.113.0/24"]"#).unwrap();
        assert_eq!(c.port_range().to_string(), "1024-65535");
        assert_eq!(c.block_size(), 512);
        assert_eq!(c.blocks_per_address(), 126);
        assert_eq!(c.initial_blocks(), 1);
        assert_eq!(c.max_blocks(), 4);
        assert_eq!(c.max_sessions(), 2000);
        assert_eq!(c.hold_down_secs(), 120);
        assert_eq!(c.address_pooling(), AddressPooling::Paired);
        assert_eq!(c.filtering(), Filtering::EndpointIndependent);
        assert_eq!(c.timeouts(), Timeouts::default());
        assert_eq!(
            (
                c.timeouts().udp_secs(),
                c.timeouts().tcp_established_secs(),
                c.timeouts().tcp_transitory_secs(),
                c.timeouts().icmp_secs()
            ),
            (300, 7440, 240, 60)
        );
        assert_eq!(c.pool().len(), 254);
        assert_eq!(
            c.pool().addresses()[0],
            std::net::Ipv4Addr::new(203, 0, 113, 1)
        );
        assert!(c.warnings(1000).is_empty(), "{:?}", c.warnings(1000));
    }

    #[test]
    fn a_full_section_validates() {
        let c = parse(
            r#"
            pool = ["203.0.113.0/24", "198.51.100.10-198.51.100.20", "192.0.2.7"]
            port_range = "2048-65535"
            block_size = 256
            initial_blocks_per_subscriber = 2
            max_blocks_per_subscriber = 8
            max_sessions_per_subscriber = 4000
            port_reuse_hold_down_secs = 300
            address_pooling = "paired"
            filtering = "address-and-port-dependent"

            [timeouts]
            udp_secs = 120
            tcp_established_secs = 86400
            tcp_transitory_secs = 300
            icmp_secs = 90
            "#,
        )
        .unwrap();
        assert_eq!(c.pool().len(), 254 + 11 + 1);
        assert_eq!(c.blocks_per_address(), 248);
        assert_eq!((c.initial_blocks(), c.max_blocks()), (2, 8));
        assert_eq!(c.filtering(), Filtering::AddressAndPortDependent);
        assert_eq!(c.filtering().to_string(), "address-and-port-dependent");
        assert_eq!(c.timeouts().tcp_established_secs(), 86_400);
        // The wire form round-trips through TOML (the API may show it).
        let wire: NatConfigWire = toml::from_str(
            r#"pool = ["192.0.2.7"]
block_size = 64"#,
        )
        .unwrap();
        let back: NatConfigWire = toml::from_str(&toml::to_string(&wire).unwrap()).unwrap();
        assert_eq!(back, wire);
    }

    #[test]
    fn errors_name_key_value_and_reason() {
        let cases: &[(&str, &str)] = &[
            ("", "nat: `nat.pool` = []: the pool has no usable address"),
            (
                r#"pool = ["203.0.113.0/24", "banana"]"#,
                "nat: `nat.pool[1]` = \"banana\": bad pool entry: expected an IPv4 address",
            ),
            (
                r#"pool = ["203.0.113.7/24"]"#,
                "nat: `nat.pool[0]` = \"203.0.113.7/24\": bad pool entry: host bits are set; the prefix is 203.0.113.0/24",
            ),
            (
                r#"pool = ["203.0.113.0/24", "10.0.0.1", "203.0.113.128/25"]"#,
                "nat: `nat.pool[2]` = \"203.0.113.128/25\": entries 203.0.113.0/24 (index 0) and 203.0.113.128/25 (index 2) overlap",
            ),
            (
                r#"pool = ["127.0.0.1"]"#,
                "nat: `nat.pool[0]` = \"127.0.0.1\": bad pool entry: contains 127.0.0.0/8 addresses, which are never public",
            ),
            (
                r#"pool = ["10.0.0.0/12"]"#,
                "holds 1048574 addresses; at most 65536",
            ),
            (
                "pool = [\"192.0.2.7\"]\nblock_size = 2048",
                "nat: `nat.block_size` = 2048: 2048 does not divide the 64512 ports of 1024-65535; divisors near it: 2016 and 2304",
            ),
            (
                "pool = [\"192.0.2.7\"]\nblock_size = 0",
                "nat: `nat.block_size` = 0: must be between 1 and 64512",
            ),
            (
                "pool = [\"192.0.2.7\"]\nport_range = \"0-1000\"",
                "nat: `nat.port_range` = \"0-1000\": bad port range: port 0 cannot be used",
            ),
            (
                "pool = [\"192.0.2.7\"]\nmax_blocks_per_subscriber = 33",
                "nat: `nat.max_blocks_per_subscriber` = 33: must be between 1 and 32",
            ),
            (
                "pool = [\"192.0.2.7\"]\nblock_size = 32256\nmax_blocks_per_subscriber = 4",
                "nat: `nat.max_blocks_per_subscriber` = 4: must be between 1 and 2",
            ),
            (
                "pool = [\"192.0.2.7\"]\ninitial_blocks_per_subscriber = 5",
                "nat: `nat.initial_blocks_per_subscriber` = 5: must be between 1 and 4",
            ),
            (
                "pool = [\"192.0.2.7\"]\ninitial_blocks_per_subscriber = 0",
                "`nat.initial_blocks_per_subscriber` = 0: must be between 1 and 4",
            ),
            (
                "pool = [\"192.0.2.7\"]\nmax_sessions_per_subscriber = 0",
                "`nat.max_sessions_per_subscriber` = 0: must be between 1",
            ),
            (
                "pool = [\"192.0.2.7\"]\nport_reuse_hold_down_secs = 120000",
                "`nat.port_reuse_hold_down_secs` = 120000: must be between 0 and 86400",
            ),
            (
                "pool = [\"192.0.2.7\"]\n[timeouts]\nudp_secs = 60",
                "nat: `nat.timeouts.udp_secs` = 60: must be between 120 and 604800; RFC 4787 REQ-5",
            ),
            (
                "pool = [\"192.0.2.7\"]\n[timeouts]\ntcp_established_secs = 3600",
                "nat: `nat.timeouts.tcp_established_secs` = 3600: must be between 7440",
            ),
            (
                "pool = [\"192.0.2.7\"]\n[timeouts]\ntcp_transitory_secs = 8000",
                "nat: `nat.timeouts.tcp_transitory_secs` = 8000: must be between 240 and 7440",
            ),
            (
                "pool = [\"192.0.2.7\"]\n[timeouts]\nicmp_secs = 30",
                "nat: `nat.timeouts.icmp_secs` = 30: must be between 60",
            ),
        ];
        for (text, want) in cases {
            let got = err(text);
            assert!(
                got.contains(want),
                "for {text:?}\n got: {got}\nwant: {want}"
            );
        }
        // The error chain keeps the typed cause.
        let e = parse(r#"pool = ["1.2.3.4/40"]"#).unwrap_err();
        assert!(matches!(
            e.problem,
            NatConfigProblem::PoolEntry(PoolEntryError::PrefixLength(None))
        ));
        assert!(std::error::Error::source(&e).is_some());
    }

    #[test]
    fn serde_rejects_unknown_keys_and_modes() {
        let e = toml::from_str::<NatConfigWire>("pool = []\nbogus = 1").unwrap_err();
        assert!(e.to_string().contains("unknown field `bogus`"), "{e}");
        let e = toml::from_str::<NatConfigWire>("address_pooling = \"arbitrary\"").unwrap_err();
        assert!(e.to_string().contains("expected `paired`"), "{e}");
        let e = toml::from_str::<NatConfigWire>("filtering = \"address-dependent\"").unwrap_err();
        assert!(e.to_string().contains("endpoint-independent"), "{e}");
    }

    #[test]
    fn warnings() {
        let c = parse(
            "pool = [\"192.0.2.0/30\"]\nport_range = \"512-65535\"\nblock_size = 65024\n\
             max_blocks_per_subscriber = 1\nport_reuse_hold_down_secs = 30\n\
             max_sessions_per_subscriber = 1000000",
        )
        .unwrap();
        let w = c.warnings(3);
        assert_eq!(w.len(), 4, "{w:?}");
        assert!(matches!(w[0], NatConfigWarning::ShortHoldDown { secs: 30 }));
        assert!(matches!(w[1], NatConfigWarning::WellKnownPorts { .. }));
        assert!(matches!(
            w[2],
            NatConfigWarning::SessionsUnreachable { ports: 65024, .. }
        ));
        assert!(matches!(
            w[3],
            NatConfigWarning::PoolTooSmall { subscribers: 3, .. }
        ));
        assert!(
            w[0].to_string()
                .contains("`nat.port_reuse_hold_down_secs` = 30")
        );
        assert!(
            w[3].to_string().contains("initial blocks for only 2"),
            "{}",
            w[3]
        );

        let c = parse(r#"pool = ["192.0.2.7"]"#).unwrap();
        assert!(c.warnings(31).is_empty());
        let w = c.warnings(32);
        assert!(
            matches!(
                w[..],
                [NatConfigWarning::GrowthNotGuaranteed {
                    subscribers: 32,
                    ..
                }]
            ),
            "{w:?}"
        );
        assert!(
            w[0].to_string().contains("only 31 can all grow"),
            "{}",
            w[0]
        );
    }

    #[test]
    fn capacity_math() {
        // osvbng defaults on a /24: 254 addresses x 126 blocks of 512.
        let c = parse(r#"pool = ["203.0.113.0/24"]"#).unwrap().capacity();
        assert_eq!(c.total_blocks, 32_004);
        assert_eq!(c.subscribers_at_initial, 32_004);
        assert_eq!(c.subscribers_at_max, 254 * 31);
        assert_eq!(
            c.to_string(),
            "254 addresses x 126 blocks = 32004 blocks; 32004 subscribers at the initial \
             block count, 7874 at the maximum"
        );
        assert_eq!(subscribers_supported(10, 126, 4), 310);
        assert_eq!(subscribers_supported(10, 126, 0), 1260);
        assert_eq!(addresses_needed(100_000, 126, 1), Some(794));
        assert_eq!(addresses_needed(100_000, 126, 4), Some(3226));
        assert_eq!(addresses_needed(1, 2, 4), None);
        assert_eq!(addresses_needed(0, 126, 4), Some(0));
    }

    #[test]
    fn divisors() {
        assert_eq!(divisors_around(64512, 2048), (2016, 2304));
        assert_eq!(divisors_around(64512, 500), (448, 504));
        assert_eq!(divisors_around(7, 3), (1, 7));
        assert_eq!(divisors_around(7, 100), (7, 7));
    }
}
