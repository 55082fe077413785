//! A home's DHCP settings: the serde "wire" form as it appears in vgd's configuration (and
//! the REST API), and the validated runtime form the engine uses.
//!
//! ```toml
//! # every key is optional; the values shown are the defaults
//! prefix = "192.168.1.0/24"        # the home's LAN
//! gateway = "192.168.1.1"          # default: first host of the prefix; the DHCP server id
//! range_start = "192.168.1.100"    # default for /24 and shorter: network + 100
//! range_end = "192.168.1.199"      # default for /24 and shorter: network + 199
//! lease_time_secs = 86400          # 24 h
//! offer_hold_secs = 30             # an OFFER reserves its address this long
//! decline_quarantine_secs = 86400  # a DECLINEd address is not offered again for this long
//! dns_servers = []                 # option 6; empty = not sent (vgd fills the operator's resolvers)
//! # domain_name = "home.arpa"      # option 15; not sent when unset
//! # mtu = 1450                     # option 26; not sent when unset (use 1450 behind a VXLAN LSL)
//! reservations = [ { mac = "02:00:5e:00:00:10", ip = "192.168.1.10" } ]
//! relayed = "drop"                 # "drop" | "serve": DHCP relayed from inside the home
//! ```
//!
//! `relayed`: a message with `giaddr` set comes through a relay agent. A home's LAN is
//! attached to the vG directly over its LSL, so by default (`"drop"`) such messages are
//! dropped and counted (`relayed`). With `"serve"` the home's server answers them as RFC 2131
//! section 4.1 says, to the relay at `giaddr`, UDP port 67; the home is still the one of the
//! LSL the message came on, and `giaddr` must be a host address of the home's own prefix
//! other than the gateway (otherwise the message is dropped and counted as
//! `giaddr_not_in_home`). Use it for a relay inside the home, or for load tools that always
//! act as one (Kea's `perfdhcp`).

use std::collections::BTreeMap;
use std::fmt;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

use super::types::{MacAddr, MacParseError};

/// Default LAN prefix of a home (RFC 1918; what retail home routers ship with).
pub const DEFAULT_PREFIX: Ipv4Net = Ipv4Net::new_assert(Ipv4Addr::new(192, 168, 1, 0), 24);
/// Offset of the default pool's first address from the network address (.100).
pub const DEFAULT_RANGE_START_OFFSET: u32 = 100;
/// Offset of the default pool's last address from the network address (.199).
pub const DEFAULT_RANGE_END_OFFSET: u32 = 199;
/// Default lease time: 24 hours (what most home gateways use).
pub const DEFAULT_LEASE_SECS: u32 = 86_400;
/// Default time an offered address stays reserved for the client it was offered to.
pub const DEFAULT_OFFER_HOLD_SECS: u32 = 30;
/// Default quarantine of a declined address (Kea's `decline-probation-period` default).
pub const DEFAULT_DECLINE_QUARANTINE_SECS: u32 = 86_400;
/// Shortest lease accepted; T1 and T2 get silly below a minute.
pub const MIN_LEASE_SECS: u32 = 60;
/// Longest lease accepted: a year.
pub const MAX_LEASE_SECS: u32 = 365 * 86_400;
/// Longest offer hold accepted.
pub const MAX_OFFER_HOLD_SECS: u32 = 600;
/// Longest decline quarantine accepted: 30 days.
pub const MAX_DECLINE_QUARANTINE_SECS: u32 = 30 * 86_400;
/// Largest dynamic range per home (bounds per-home memory; a /16).
pub const MAX_RANGE_ADDRESSES: u32 = 65_536;
/// Most DNS servers per home.
pub const MAX_DNS_SERVERS: usize = 8;
/// Smallest interface MTU accepted for option 26 (the IPv4 minimum reassembly size, RFC 791).
pub const MIN_MTU: u16 = 576;
/// Largest interface MTU accepted for option 26 (jumbo frames).
pub const MAX_MTU: u16 = 9216;

/// A home's DHCP settings as written in the configuration file or an API body.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DhcpConfigWire {
    /// The home's LAN prefix (network address / length); default 192.168.1.0/24.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefix: Option<Ipv4Net>,
    /// The home's gateway address (the vG) and DHCP server identifier; default: first host.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gateway: Option<Ipv4Addr>,
    /// First address of the dynamic pool; default network + 100 (prefixes of /24 and shorter).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub range_start: Option<Ipv4Addr>,
    /// Last address of the dynamic pool; default network + 199 (prefixes of /24 and shorter).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub range_end: Option<Ipv4Addr>,
    /// Lease time in seconds; default 86400.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lease_time_secs: Option<u32>,
    /// Seconds an offered address stays held for its client; default 30.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offer_hold_secs: Option<u32>,
    /// Seconds a declined address stays out of the pool; default 86400.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decline_quarantine_secs: Option<u32>,
    /// DNS servers (option 6), in order of preference; default none.
    pub dns_servers: Vec<Ipv4Addr>,
    /// Domain name (option 15); default none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domain_name: Option<String>,
    /// Interface MTU (option 26); default none (not sent).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u16>,
    /// Fixed addresses by MAC.
    pub reservations: Vec<ReservationWire>,
    /// What to do with relayed messages (`giaddr` set) from inside the home; default drop.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub relayed: Option<Relayed>,
}

/// What a home's DHCP server does with a relayed message (`giaddr` set) that arrives on the
/// home's LSL. Either way the message is the home's: the one of the LSL it came on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Relayed {
    /// Drop it, counted as `relayed` (the default: the home's LAN is directly attached, so a
    /// relay in the path is a misconfiguration or a spoof).
    #[default]
    Drop,
    /// Answer it through the relay at `giaddr` (RFC 2131 section 4.1), which must be a host
    /// of the home's own prefix.
    Serve,
}

/// One reservation as written in the configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReservationWire {
    /// The client's MAC address, `aa:bb:cc:dd:ee:ff`.
    pub mac: String,
    /// The address it always gets: inside the prefix, inside or outside the range.
    pub ip: Ipv4Addr,
}

/// A validated reservation: `mac` always gets `ip`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reservation {
    /// The client's hardware address.
    pub mac: MacAddr,
    /// Its fixed address.
    pub ip: Ipv4Addr,
}

/// A home's validated DHCP settings; build it from [`DhcpConfigWire`] with `TryFrom`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DhcpConfig {
    prefix: Ipv4Net,
    gateway: Ipv4Addr,
    range_start: Ipv4Addr,
    range_end: Ipv4Addr,
    lease_secs: u32,
    offer_hold_secs: u32,
    decline_quarantine_secs: u32,
    dns_servers: Vec<Ipv4Addr>,
    domain_name: Option<String>,
    mtu: Option<u16>,
    relayed: Relayed,
    by_mac: BTreeMap<MacAddr, Ipv4Addr>,
    by_ip: BTreeMap<Ipv4Addr, MacAddr>,
}

impl Default for DhcpConfig {
    fn default() -> Self {
        let net = u32::from(DEFAULT_PREFIX.network());
        DhcpConfig {
            prefix: DEFAULT_PREFIX,
            gateway: Ipv4Addr::from(net + 1),
            range_start: Ipv4Addr::from(net + DEFAULT_RANGE_START_OFFSET),
            range_end: Ipv4Addr::from(net + DEFAULT_RANGE_END_OFFSET),
            lease_secs: DEFAULT_LEASE_SECS,
            offer_hold_secs: DEFAULT_OFFER_HOLD_SECS,
            decline_quarantine_secs: DEFAULT_DECLINE_QUARANTINE_SECS,
            dns_servers: Vec::new(),
            domain_name: None,
            mtu: None,
            relayed: Relayed::Drop,
            by_mac: BTreeMap::new(),
            by_ip: BTreeMap::new(),
        }
    }
}

impl DhcpConfig {
    /// The LAN prefix.
    pub fn prefix(&self) -> Ipv4Net {
        self.prefix
    }
    /// The gateway address, which is also the DHCP server identifier (option 54).
    pub fn gateway(&self) -> Ipv4Addr {
        self.gateway
    }
    /// The dynamic range, inclusive.
    pub fn range(&self) -> (Ipv4Addr, Ipv4Addr) {
        (self.range_start, self.range_end)
    }
    /// Number of addresses in the dynamic range (reserved ones included).
    pub fn range_len(&self) -> u32 {
        u32::from(self.range_end) - u32::from(self.range_start) + 1
    }
    /// True if `ip` is inside the dynamic range.
    pub fn in_range(&self, ip: Ipv4Addr) -> bool {
        (self.range_start..=self.range_end).contains(&ip)
    }
    /// Lease time in seconds.
    pub fn lease_secs(&self) -> u32 {
        self.lease_secs
    }
    /// Seconds an offered address stays held.
    pub fn offer_hold_secs(&self) -> u32 {
        self.offer_hold_secs
    }
    /// Seconds a declined address stays out of the pool.
    pub fn decline_quarantine_secs(&self) -> u32 {
        self.decline_quarantine_secs
    }
    /// DNS servers (option 6).
    pub fn dns_servers(&self) -> &[Ipv4Addr] {
        &self.dns_servers
    }
    /// Domain name (option 15).
    pub fn domain_name(&self) -> Option<&str> {
        self.domain_name.as_deref()
    }
    /// Interface MTU (option 26).
    pub fn mtu(&self) -> Option<u16> {
        self.mtu
    }
    /// What to do with relayed messages from inside the home.
    pub fn relayed(&self) -> Relayed {
        self.relayed
    }
    /// The reserved address of `mac`, if it has one.
    pub fn reservation_for(&self, mac: MacAddr) -> Option<Ipv4Addr> {
        self.by_mac.get(&mac).copied()
    }
    /// The MAC an address is reserved for, if any.
    pub fn reserved_to(&self, ip: Ipv4Addr) -> Option<MacAddr> {
        self.by_ip.get(&ip).copied()
    }
    /// All reservations, ordered by MAC.
    pub fn reservations(&self) -> impl Iterator<Item = Reservation> + '_ {
        self.by_mac
            .iter()
            .map(|(&mac, &ip)| Reservation { mac, ip })
    }
    /// The subnet broadcast address (option 28).
    pub fn broadcast(&self) -> Ipv4Addr {
        self.prefix.broadcast()
    }
    /// True if `ip` is a host address of the LAN other than the gateway: something a client
    /// may hold.
    pub fn is_client_address(&self, ip: Ipv4Addr) -> bool {
        self.prefix.contains(&ip)
            && ip != self.prefix.network()
            && ip != self.prefix.broadcast()
            && ip != self.gateway
    }
}

impl From<&DhcpConfig> for DhcpConfigWire {
    fn from(config: &DhcpConfig) -> Self {
        DhcpConfigWire {
            prefix: Some(config.prefix),
            gateway: Some(config.gateway),
            range_start: Some(config.range_start),
            range_end: Some(config.range_end),
            lease_time_secs: Some(config.lease_secs),
            offer_hold_secs: Some(config.offer_hold_secs),
            decline_quarantine_secs: Some(config.decline_quarantine_secs),
            dns_servers: config.dns_servers.clone(),
            domain_name: config.domain_name.clone(),
            mtu: config.mtu,
            relayed: Some(config.relayed),
            reservations: config
                .reservations()
                .map(|r| ReservationWire {
                    mac: r.mac.to_string(),
                    ip: r.ip,
                })
                .collect(),
        }
    }
}

/// A configuration value that was rejected: which key, what value, and why.
#[derive(Debug, thiserror::Error)]
#[error("dhcp: `{key}` = {value}: {problem}")]
pub struct ConfigError {
    /// The key, e.g. `range_start` or `reservations[2].mac`.
    pub key: String,
    /// The offending value as written (or as defaulted).
    pub value: String,
    /// Why it was rejected.
    #[source]
    pub problem: ConfigProblem,
}

/// Why a DHCP configuration value was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigProblem {
    /// The prefix has host bits set.
    #[error("host bits are set; the network is {network}")]
    HostBitsSet {
        /// The prefix with the host bits cleared.
        network: Ipv4Net,
    },
    /// The prefix leaves no room for a gateway and a client.
    #[error("the prefix must be /30 or shorter to hold a gateway and clients")]
    PrefixTooLong,
    /// An address is outside the LAN prefix.
    #[error("outside the LAN prefix {prefix}")]
    OutsidePrefix {
        /// The LAN prefix.
        prefix: Ipv4Net,
    },
    /// An address is the network or broadcast address of the prefix.
    #[error("is the network or broadcast address of {prefix}")]
    NotAHost {
        /// The LAN prefix.
        prefix: Ipv4Net,
    },
    /// The gateway lies inside the dynamic range.
    #[error("the gateway {gateway} lies inside the range")]
    GatewayInRange {
        /// The gateway address.
        gateway: Ipv4Addr,
    },
    /// A reservation names the gateway address.
    #[error("is the gateway address")]
    IsGateway,
    /// The range ends before it starts.
    #[error("the range ends before range_start {start}")]
    RangeReversed {
        /// The range's first address.
        start: Ipv4Addr,
    },
    /// The range is larger than a home should ever need.
    #[error("the range holds {size} addresses; at most {max} are allowed")]
    RangeTooLarge {
        /// Addresses in the range.
        size: u64,
        /// The limit.
        max: u32,
    },
    /// No default range exists for this prefix length.
    #[error("no default range for a prefix longer than /24; set range_start and range_end")]
    NoDefaultRange,
    /// A number is outside its allowed interval.
    #[error("must be between {min} and {max}")]
    OutOfBounds {
        /// Smallest allowed value.
        min: u64,
        /// Largest allowed value.
        max: u64,
    },
    /// A server address is not a unicast address.
    #[error("not a usable unicast address")]
    NotUnicast,
    /// Too many entries in a list.
    #[error("at most {max} entries are allowed")]
    TooMany {
        /// The limit.
        max: usize,
    },
    /// A domain name is not a valid DNS name.
    #[error("not a valid domain name: {0}")]
    BadDomainName(&'static str),
    /// A MAC address does not parse.
    #[error("not a MAC address")]
    BadMac(#[source] MacParseError),
    /// A MAC address is a group or all-zero address.
    #[error("not a unicast MAC address")]
    MacNotUnicast,
    /// The same MAC appears in two reservations.
    #[error("MAC already reserved by reservations[{first}]")]
    DuplicateMac {
        /// Index of the first reservation with this MAC.
        first: usize,
    },
    /// The same address is reserved for two MACs.
    #[error("address already reserved for {mac}")]
    DuplicateIp {
        /// The MAC that reserved it first.
        mac: MacAddr,
    },
}

fn err(key: impl Into<String>, value: impl fmt::Display, problem: ConfigProblem) -> ConfigError {
    ConfigError {
        key: key.into(),
        value: value.to_string(),
        problem,
    }
}

fn bounded(
    key: &str,
    value: Option<u32>,
    default: u32,
    min: u32,
    max: u32,
) -> Result<u32, ConfigError> {
    let v = value.unwrap_or(default);
    if (min..=max).contains(&v) {
        Ok(v)
    } else {
        Err(err(
            key,
            v,
            ConfigProblem::OutOfBounds {
                min: min.into(),
                max: max.into(),
            },
        ))
    }
}

fn is_unicast_server(ip: Ipv4Addr) -> bool {
    !(ip.is_unspecified() || ip.is_broadcast() || ip.is_multicast() || ip.is_loopback())
        && ip.octets()[0] < 240
}

pub(crate) fn check_domain(name: &str) -> Result<(), &'static str> {
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.is_empty() {
        return Err("empty");
    }
    if name.len() > 253 {
        return Err("longer than 253 characters");
    }
    for label in name.split('.') {
        if label.is_empty() {
            return Err("empty label");
        }
        if label.len() > 63 {
            return Err("label longer than 63 characters");
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err("only letters, digits, '-' and '.' are allowed");
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err("a label starts or ends with '-'");
        }
    }
    Ok(())
}

impl TryFrom<DhcpConfigWire> for DhcpConfig {
    type Error = ConfigError;

    fn try_from(wire: DhcpConfigWire) -> Result<Self, Self::Error> {
        let prefix = checked_prefix(wire.prefix.unwrap_or(DEFAULT_PREFIX))?;
        let net = u32::from(prefix.network());
        let gateway = host_in(
            prefix,
            "gateway",
            wire.gateway.unwrap_or(Ipv4Addr::from(net + 1)),
        )?;
        let (range_start, range_end) = checked_range(&wire, prefix, gateway)?;
        let lease_secs = bounded(
            "lease_time_secs",
            wire.lease_time_secs,
            DEFAULT_LEASE_SECS,
            MIN_LEASE_SECS,
            MAX_LEASE_SECS,
        )?;
        let offer_hold_secs = bounded(
            "offer_hold_secs",
            wire.offer_hold_secs,
            DEFAULT_OFFER_HOLD_SECS,
            1,
            MAX_OFFER_HOLD_SECS,
        )?;
        let decline_quarantine_secs = bounded(
            "decline_quarantine_secs",
            wire.decline_quarantine_secs,
            DEFAULT_DECLINE_QUARANTINE_SECS,
            1,
            MAX_DECLINE_QUARANTINE_SECS,
        )?;
        let domain_name = checked_options(&wire)?;
        let (by_mac, by_ip) = checked_reservations(&wire, prefix, gateway)?;
        Ok(DhcpConfig {
            prefix,
            gateway,
            range_start,
            range_end,
            lease_secs,
            offer_hold_secs,
            decline_quarantine_secs,
            dns_servers: wire.dns_servers,
            domain_name,
            mtu: wire.mtu,
            relayed: wire.relayed.unwrap_or_default(),
            by_mac,
            by_ip,
        })
    }
}

/// A home's LAN prefix: a network address, at most a /30.
fn checked_prefix(prefix: Ipv4Net) -> Result<Ipv4Net, ConfigError> {
    if prefix.addr() != prefix.network() {
        return Err(err(
            "prefix",
            prefix,
            ConfigProblem::HostBitsSet {
                network: prefix.trunc(),
            },
        ));
    }
    if prefix.prefix_len() > 30 {
        return Err(err("prefix", prefix, ConfigProblem::PrefixTooLong));
    }
    Ok(prefix)
}

/// `ip` (the value of `key`) as a host address of `prefix`.
fn host_in(prefix: Ipv4Net, key: &str, ip: Ipv4Addr) -> Result<Ipv4Addr, ConfigError> {
    if !prefix.contains(&ip) {
        Err(err(key, ip, ConfigProblem::OutsidePrefix { prefix }))
    } else if ip == prefix.network() || ip == prefix.broadcast() {
        Err(err(key, ip, ConfigProblem::NotAHost { prefix }))
    } else {
        Ok(ip)
    }
}

/// The dynamic range: given, or the default one of a /24 or larger; inside the prefix, in
/// order, of a bounded size, without the gateway.
fn checked_range(
    wire: &DhcpConfigWire,
    prefix: Ipv4Net,
    gateway: Ipv4Addr,
) -> Result<(Ipv4Addr, Ipv4Addr), ConfigError> {
    let net = u32::from(prefix.network());
    let (range_start, range_end) = match (wire.range_start, wire.range_end) {
        (Some(start), Some(end)) => (start, end),
        (start, end) if prefix.prefix_len() <= 24 => (
            start.unwrap_or(Ipv4Addr::from(net + DEFAULT_RANGE_START_OFFSET)),
            end.unwrap_or(Ipv4Addr::from(net + DEFAULT_RANGE_END_OFFSET)),
        ),
        (None, _) => return Err(err("range_start", "(unset)", ConfigProblem::NoDefaultRange)),
        (Some(_), None) => {
            return Err(err("range_end", "(unset)", ConfigProblem::NoDefaultRange));
        }
    };
    let range_start = host_in(prefix, "range_start", range_start)?;
    let range_end = host_in(prefix, "range_end", range_end)?;
    if range_end < range_start {
        return Err(err(
            "range_end",
            range_end,
            ConfigProblem::RangeReversed { start: range_start },
        ));
    }
    let size = u64::from(u32::from(range_end)) - u64::from(u32::from(range_start)) + 1;
    if size > u64::from(MAX_RANGE_ADDRESSES) {
        return Err(err(
            "range_end",
            range_end,
            ConfigProblem::RangeTooLarge {
                size,
                max: MAX_RANGE_ADDRESSES,
            },
        ));
    }
    if (range_start..=range_end).contains(&gateway) {
        return Err(err(
            "gateway",
            gateway,
            ConfigProblem::GatewayInRange { gateway },
        ));
    }
    Ok((range_start, range_end))
}

/// The options handed out: DNS servers (few, unicast), the domain name (returned without a
/// trailing dot), the MTU.
fn checked_options(wire: &DhcpConfigWire) -> Result<Option<String>, ConfigError> {
    if wire.dns_servers.len() > MAX_DNS_SERVERS {
        return Err(err(
            "dns_servers",
            format!("{:?}", wire.dns_servers),
            ConfigProblem::TooMany {
                max: MAX_DNS_SERVERS,
            },
        ));
    }
    for (i, dns) in wire.dns_servers.iter().enumerate() {
        if !is_unicast_server(*dns) {
            return Err(err(
                format!("dns_servers[{i}]"),
                dns,
                ConfigProblem::NotUnicast,
            ));
        }
    }
    if let Some(mtu) = wire.mtu
        && !(MIN_MTU..=MAX_MTU).contains(&mtu)
    {
        return Err(err(
            "mtu",
            mtu,
            ConfigProblem::OutOfBounds {
                min: MIN_MTU.into(),
                max: MAX_MTU.into(),
            },
        ));
    }
    match &wire.domain_name {
        Some(name) => {
            check_domain(name).map_err(|why| {
                err(
                    "domain_name",
                    format!("{name:?}"),
                    ConfigProblem::BadDomainName(why),
                )
            })?;
            Ok(Some(name.strip_suffix('.').unwrap_or(name).to_owned()))
        }
        None => Ok(None),
    }
}

/// Reservations: unicast MACs and host addresses of the prefix, each once, none the
/// gateway's; by MAC and by address.
#[expect(clippy::type_complexity, reason = "the two indexes of one table")]
fn checked_reservations(
    wire: &DhcpConfigWire,
    prefix: Ipv4Net,
    gateway: Ipv4Addr,
) -> Result<(BTreeMap<MacAddr, Ipv4Addr>, BTreeMap<Ipv4Addr, MacAddr>), ConfigError> {
    let mut by_mac = BTreeMap::new();
    let mut first_index = BTreeMap::new();
    let mut by_ip = BTreeMap::new();
    for (i, r) in wire.reservations.iter().enumerate() {
        let key = |field: &str| format!("reservations[{i}].{field}");
        let mac: MacAddr = r
            .mac
            .parse()
            .map_err(|e| err(key("mac"), format!("{:?}", r.mac), ConfigProblem::BadMac(e)))?;
        if !mac.is_unicast() {
            return Err(err(key("mac"), mac, ConfigProblem::MacNotUnicast));
        }
        if let Some(&first) = first_index.get(&mac) {
            return Err(err(key("mac"), mac, ConfigProblem::DuplicateMac { first }));
        }
        let ip = host_in(prefix, &key("ip"), r.ip)?;
        if ip == gateway {
            return Err(err(key("ip"), ip, ConfigProblem::IsGateway));
        }
        if let Some(&other) = by_ip.get(&ip) {
            return Err(err(
                key("ip"),
                ip,
                ConfigProblem::DuplicateIp { mac: other },
            ));
        }
        first_index.insert(mac, i);
        by_mac.insert(mac, ip);
        by_ip.insert(ip, mac);
    }
    Ok((by_mac, by_ip))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<DhcpConfig, ConfigError> {
        let wire: DhcpConfigWire = toml::from_str(text).expect("valid TOML for DhcpConfigWire");
        DhcpConfig::try_from(wire)
    }

    fn rejects(text: &str, key: &str, value: &str) -> ConfigProblem {
        match parse(text) {
            Ok(config) => panic!("accepted {text:?} as {config:?}"),
            Err(e) => {
                assert_eq!(e.key, key, "{e}");
                assert_eq!(e.value, value, "{e}");
                e.problem
            }
        }
    }

    #[test]
    fn empty_config_gives_the_documented_defaults() {
        let config = parse("").expect("defaults are valid");
        assert_eq!(config, DhcpConfig::default());
        assert_eq!(config.prefix().to_string(), "192.168.1.0/24");
        assert_eq!(config.gateway(), Ipv4Addr::new(192, 168, 1, 1));
        assert_eq!(
            config.range(),
            (
                Ipv4Addr::new(192, 168, 1, 100),
                Ipv4Addr::new(192, 168, 1, 199)
            )
        );
        assert_eq!(config.range_len(), 100);
        assert_eq!(config.lease_secs(), 86_400);
        assert_eq!(config.offer_hold_secs(), 30);
        assert_eq!(config.decline_quarantine_secs(), 86_400);
        assert_eq!(config.broadcast(), Ipv4Addr::new(192, 168, 1, 255));
        assert!(config.dns_servers().is_empty());
        assert_eq!(config.mtu(), None);
    }

    #[test]
    fn full_config_round_trips_through_the_wire_form() {
        let config = parse(
            r#"
            prefix = "10.20.0.0/22"
            gateway = "10.20.0.1"
            range_start = "10.20.1.0"
            range_end = "10.20.3.254"
            lease_time_secs = 3600
            offer_hold_secs = 10
            decline_quarantine_secs = 600
            dns_servers = ["192.0.2.53", "198.51.100.53"]
            domain_name = "home.example."
            mtu = 1450
            reservations = [
              { mac = "02:00:5e:00:00:10", ip = "10.20.0.10" },
              { mac = "02-00-5E-00-00-11", ip = "10.20.1.5" },
            ]
            "#,
        )
        .expect("valid");
        assert_eq!(config.domain_name(), Some("home.example"));
        assert_eq!(config.mtu(), Some(1450));
        assert_eq!(
            config.reservation_for(MacAddr([2, 0, 0x5e, 0, 0, 0x11])),
            Some(Ipv4Addr::new(10, 20, 1, 5))
        );
        assert_eq!(
            config.reserved_to(Ipv4Addr::new(10, 20, 0, 10)),
            Some(MacAddr([2, 0, 0x5e, 0, 0, 0x10]))
        );
        let wire = DhcpConfigWire::from(&config);
        let text = toml::to_string(&wire).expect("serializes");
        assert_eq!(parse(&text).expect("re-parses"), config);
    }

    #[test]
    fn defaults_follow_the_prefix() {
        let config = parse(r#"prefix = "10.0.0.0/16""#).expect("valid");
        assert_eq!(config.gateway(), Ipv4Addr::new(10, 0, 0, 1));
        assert_eq!(
            config.range(),
            (Ipv4Addr::new(10, 0, 0, 100), Ipv4Addr::new(10, 0, 0, 199))
        );
        let small = parse(
            r#"
            prefix = "192.168.7.0/29"
            range_start = "192.168.7.2"
            range_end = "192.168.7.6"
            "#,
        )
        .expect("valid");
        assert_eq!(small.range_len(), 5);
    }

    #[test]
    fn errors_name_key_value_and_reason() {
        assert!(matches!(
            rejects(r#"prefix = "192.168.1.5/24""#, "prefix", "192.168.1.5/24"),
            ConfigProblem::HostBitsSet { .. }
        ));
        assert_eq!(
            rejects(r#"prefix = "192.168.1.0/31""#, "prefix", "192.168.1.0/31"),
            ConfigProblem::PrefixTooLong
        );
        assert!(matches!(
            rejects(
                r#"range_start = "192.168.2.100""#,
                "range_start",
                "192.168.2.100"
            ),
            ConfigProblem::OutsidePrefix { .. }
        ));
        assert!(matches!(
            rejects(
                r#"range_end = "192.168.1.255""#,
                "range_end",
                "192.168.1.255"
            ),
            ConfigProblem::NotAHost { .. }
        ));
        assert!(matches!(
            rejects(r#"gateway = "192.168.1.150""#, "gateway", "192.168.1.150"),
            ConfigProblem::GatewayInRange { .. }
        ));
        assert!(matches!(
            rejects(
                r#"
                range_start = "192.168.1.200"
                range_end = "192.168.1.100"
                "#,
                "range_end",
                "192.168.1.100"
            ),
            ConfigProblem::RangeReversed { .. }
        ));
        assert!(matches!(
            rejects(
                r#"
                prefix = "10.0.0.0/8"
                range_start = "10.0.0.2"
                range_end = "10.255.0.1"
                "#,
                "range_end",
                "10.255.0.1"
            ),
            ConfigProblem::RangeTooLarge { .. }
        ));
        assert_eq!(
            rejects(r#"prefix = "192.168.1.0/28""#, "range_start", "(unset)"),
            ConfigProblem::NoDefaultRange
        );
        assert!(matches!(
            rejects("lease_time_secs = 0", "lease_time_secs", "0"),
            ConfigProblem::OutOfBounds { min: 60, .. }
        ));
        assert!(matches!(
            rejects("offer_hold_secs = 0", "offer_hold_secs", "0"),
            ConfigProblem::OutOfBounds { .. }
        ));
        assert_eq!(
            rejects(
                r#"dns_servers = ["192.0.2.1", "224.0.0.1"]"#,
                "dns_servers[1]",
                "224.0.0.1"
            ),
            ConfigProblem::NotUnicast
        );
        assert!(matches!(
            rejects(
                r#"domain_name = "bad_name.example""#,
                "domain_name",
                "\"bad_name.example\""
            ),
            ConfigProblem::BadDomainName(_)
        ));
        assert!(matches!(
            rejects("mtu = 100", "mtu", "100"),
            ConfigProblem::OutOfBounds { min: 576, .. }
        ));
    }

    #[test]
    fn reservation_errors() {
        assert!(matches!(
            rejects(
                r#"reservations = [{ mac = "02:00:00:00:00", ip = "192.168.1.10" }]"#,
                "reservations[0].mac",
                "\"02:00:00:00:00\""
            ),
            ConfigProblem::BadMac(_)
        ));
        assert_eq!(
            rejects(
                r#"reservations = [{ mac = "01:00:5e:00:00:01", ip = "192.168.1.10" }]"#,
                "reservations[0].mac",
                "01:00:5e:00:00:01"
            ),
            ConfigProblem::MacNotUnicast
        );
        assert_eq!(
            rejects(
                r#"reservations = [
                    { mac = "02:00:00:00:00:01", ip = "192.168.1.10" },
                    { mac = "02:00:00:00:00:01", ip = "192.168.1.11" },
                ]"#,
                "reservations[1].mac",
                "02:00:00:00:00:01"
            ),
            ConfigProblem::DuplicateMac { first: 0 }
        );
        assert_eq!(
            rejects(
                r#"reservations = [
                    { mac = "02:00:00:00:00:01", ip = "192.168.1.10" },
                    { mac = "02:00:00:00:00:02", ip = "192.168.1.10" },
                ]"#,
                "reservations[1].ip",
                "192.168.1.10"
            ),
            ConfigProblem::DuplicateIp {
                mac: MacAddr([2, 0, 0, 0, 0, 1])
            }
        );
        assert_eq!(
            rejects(
                r#"reservations = [{ mac = "02:00:00:00:00:01", ip = "192.168.1.1" }]"#,
                "reservations[0].ip",
                "192.168.1.1"
            ),
            ConfigProblem::IsGateway
        );
        assert!(matches!(
            rejects(
                r#"reservations = [{ mac = "02:00:00:00:00:01", ip = "10.0.0.1" }]"#,
                "reservations[0].ip",
                "10.0.0.1"
            ),
            ConfigProblem::OutsidePrefix { .. }
        ));
    }

    #[test]
    fn unknown_keys_are_rejected_by_the_wire_form() {
        let result: Result<DhcpConfigWire, _> = toml::from_str("lease_time = 5");
        let e = result.expect_err("unknown key");
        assert!(e.to_string().contains("lease_time"), "{e}");
    }

    #[test]
    fn error_display_names_everything() {
        let e = parse("lease_time_secs = 0").expect_err("invalid");
        assert_eq!(
            e.to_string(),
            "dhcp: `lease_time_secs` = 0: must be between 60 and 31536000"
        );
    }

    #[test]
    fn relayed_defaults_to_drop_and_round_trips() {
        assert_eq!(parse("").expect("valid").relayed(), Relayed::Drop);
        let serve = parse(r#"relayed = "serve""#).expect("valid");
        assert_eq!(serve.relayed(), Relayed::Serve);
        assert_eq!(
            parse(r#"relayed = "drop""#).expect("valid").relayed(),
            Relayed::Drop
        );
        let wire = DhcpConfigWire::from(&serve);
        assert_eq!(wire.relayed, Some(Relayed::Serve));
        assert_eq!(DhcpConfig::try_from(wire).expect("valid"), serve);
        let e =
            toml::from_str::<DhcpConfigWire>(r#"relayed = "forward""#).expect_err("not a policy");
        assert!(
            e.to_string().contains("forward") && e.to_string().contains("serve"),
            "{e}"
        );
    }
}
