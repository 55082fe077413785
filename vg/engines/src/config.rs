//! vgd's configuration file (TOML).
//!
//! The file is read into serde "wire" structs ([`ConfigFile`]) and converted once, with
//! [`TryFrom`], into the validated runtime [`Config`]; nothing else sees the wire structs.
//! Every error names the key, the value and why it is wrong.
//!
//! ```toml
//! [fastpath]
//! access_interface = "acc0"     # the --access-iface flag overrides it
//! vtep = "10.0.0.1"             # the vG's VXLAN VTEP address; VXLAN LSLs need it
//! vtep6 = "2001:db8::1"         # its IPv6 VTEP address; VXLAN LSLs over IPv6 need it
//! vxlan_port = 4789
//! stag_tpids = [0x88a8, 0x9100] # outer TPIDs accepted on QinQ LSLs (default: 88a8 9100 8100)
//! tcp_mss_clamp = 1400          # default MSS clamp for every home (default: 1410 for VXLAN homes, 1390 over IPv6, off for the others)
//!
//! [[subscriber]]
//! id = 1                        # 1 ..= 131071: the home's slot in the fast path
//! lsl = "qinq:10.101"           # "vlan:<c>", "qinq:<s>.<c>", "qinq-9100:<s>.<c>", "vxlan:<vni>@<brg vtep>" (IPv4 or IPv6)
//! gateway = "192.168.1.1/24"    # the home's gateway address and LAN prefix (homes may overlap)
//! hosts = [{ ip = "192.168.1.10", mac = "02:00:00:00:01:0a" }]   # static hosts
//! dhcp = { dns_servers = ["192.0.2.53"], reservations = [...] }    # this home's overrides
//! nat = { public_ip = "198.51.100.7", blocks = 2, session_limit = 4000, filtering = "address-and-port-dependent" }
//! port_forwards = [{ proto = "tcp", public_port = 1600, private_ip = "192.168.1.10", private_port = 22 }]
//! tcp_mss = 1400                # this home's MSS clamp (0 = off)
//! qos = { down = "100M", up = "20M", burst_ms = 500 }  # its speed tier (crate::qos); none: no limit
//!
//! [dhcp]                        # defaults for every home's DHCP server (vg::dhcp)
//! dns_servers = ["192.0.2.53"]
//! lease_time_secs = 86400
//! relayed = "drop"              # or "serve": answer DHCP relayed from inside a home (giaddr set)
//!
//! [slowpath]                    # the per-home limit on frames punted to vgd (ARP, DHCP, ICMP)
//! per_home_pps = 200            # sustained frames/s per home, 1 ..= 1000000
//! per_home_burst = 2000         # frames admitted at once after a quiet spell, 1 ..= 100000
//!
//! [nat]                         # public pool and port blocks (vg::nat); no section: no NAT
//! pool = ["198.51.100.0/28"]
//! block_size = 512
//! ```
//!
//! `dhcp.relayed` may also be set per home (`dhcp = { relayed = "serve" }`): see
//! [`crate::dhcp::Relayed`]. The `[slowpath]` limit is one token bucket per home, so that one
//! home's flood cannot starve the others; raise it for a home that legitimately sends more
//! (a DHCP load generator: a 4-way exchange is 2 frames to vgd).
//!
//! A home's LSL must differ from every other home's in what the fast path looks it up by
//! (its VIDs, not the S-tag's TPID: `qinq:10.102` and `qinq-9100:10.102` are one LSL there),
//! and `vlan:N` cannot sit beside a `qinq-8100:N.C` (a host of the first could tag its own
//! frames into the second): see [`lsl::LslSet`].
//!
//! A home's `gateway` is a host address of a /16 to /30 prefix, and no special-purpose
//! address (see [`HomeLan`]).
//!
//! A home's DHCP prefix and gateway are its `gateway`; a VXLAN home's DHCP MTU defaults to
//! 1450 (1500 less VXLAN's 50 bytes). Its NAT policy fields default to the `[nat]` section;
//! a port forward's public port must be in one of the home's port blocks (checked when the
//! blocks are allocated: a file forward outside them is skipped with an error at start, an
//! API one is refused). The same `[[subscriber]]` fields, as JSON, are the REST API's body
//! ([`SubscriberFile`]).

use std::{
    collections::BTreeMap,
    fmt,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    path::Path,
    str::FromStr,
};

use ipnet::Ipv4Net;
use lsl::{Clash, ClashKind, LslId, LslSet, wire::vlan::Tpid};

use crate::{
    dhcp::{DhcpConfig, DhcpConfigWire},
    ipv6::{Ipv6Config, Ipv6File, Ipv6Home, Ipv6PolicyFile},
    nat::{Filtering, NatConfig, NatConfigWire},
    qos::{Qos, QosFile},
    reply::RateLimit,
};
use nerg_abi::{MAX_SUBSCRIBERS, SubscriberId};
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// A configuration error: the key (a TOML path), the offending value and why.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("reading {path}")]
    Read {
        /// The file.
        path: String,
        /// Underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not UTF-8 text (TOML must be).
    #[error("{path}: line {line}, column {column} (byte {offset}): not valid UTF-8")]
    NotUtf8 {
        /// The file.
        path: String,
        /// Line of the first invalid byte, from 1.
        line: usize,
        /// Its column (in bytes), from 1.
        column: usize,
        /// Its offset in the file, from 0.
        offset: usize,
    },
    /// The file is not valid TOML for this schema. The message is the TOML parser's own,
    /// without its quotation of the line (which may be megabytes long).
    #[error("{path}: line {line}, column {column}: {message} (in `{excerpt}`)")]
    Parse {
        /// The file.
        path: String,
        /// Line of the error, from 1.
        line: usize,
        /// Its column (in characters), from 1.
        column: usize,
        /// What is wrong, with any value it quotes cut short.
        message: String,
        /// The start of the line, cut short.
        excerpt: String,
    },
    /// A value is wrong.
    #[error("{key} = {}: {why}", lsl::model::excerpt(value))]
    Invalid {
        /// TOML path of the key, e.g. `subscriber[2].lsl`.
        key: String,
        /// The value as written (quoted in the message as an excerpt).
        value: String,
        /// Why it is rejected.
        why: String,
    },
}

/// Line and column (from 1) of byte `offset` in `text`; the column in characters.
fn position(text: &[u8], offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let column = String::from_utf8_lossy(&before[line_start..])
        .chars()
        .count()
        + 1;
    (line, column)
}

fn invalid(
    key: impl Into<String>,
    value: impl fmt::Display,
    why: impl Into<String>,
) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        value: value.to_string(),
        why: why.into(),
    }
}

/// The configuration file as written (wire form).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// `[fastpath]`.
    #[serde(default)]
    pub fastpath: FastPathFile,
    /// `[[subscriber]]` entries.
    #[serde(default, rename = "subscriber")]
    pub subscribers: Vec<SubscriberFile>,
    /// `[dhcp]`: defaults for every home.
    #[serde(default)]
    pub dhcp: Option<DhcpConfigWire>,
    /// `[nat]`: the public pool; absent = no NAT.
    #[serde(default)]
    pub nat: Option<NatConfigWire>,
    /// `[slowpath]`: the per-home limit.
    #[serde(default)]
    pub slowpath: SlowPathFile,
    /// `[ipv6]`: the prefix pools; absent = IPv4 only.
    #[serde(default)]
    pub ipv6: Option<Ipv6File>,
}

/// `[slowpath]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlowPathFile {
    /// Sustained punted frames per second admitted per home.
    pub per_home_pps: Option<u32>,
    /// Frames a home may send at once after a quiet spell (the token bucket's size).
    pub per_home_burst: Option<u32>,
}

/// The largest `slowpath.per_home_pps`: above what the slow path handles in all, so the
/// same as no limit.
pub const MAX_PER_HOME_PPS: u32 = 1_000_000;
/// The largest `slowpath.per_home_burst`: fifty times the punt ring's capacity of full-size
/// frames, already more than one home can ever have queued.
pub const MAX_PER_HOME_BURST: u32 = 100_000;

/// Validated `[slowpath]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct SlowPathConfig {
    /// Every home's token bucket (default [`RateLimit::DEFAULT`]: 200/s, burst 2,000).
    pub per_home: RateLimit,
}

impl TryFrom<SlowPathFile> for SlowPathConfig {
    type Error = ConfigError;

    fn try_from(f: SlowPathFile) -> Result<Self, ConfigError> {
        let check = |key: &str, value: Option<u32>, default: u32, max: u32| match value {
            None => Ok(default),
            Some(v) if (1..=max).contains(&v) => Ok(v),
            Some(v) => Err(invalid(
                key,
                v,
                format!("must be in 1..={max} (0 would stop every home's ARP and DHCP)"),
            )),
        };
        Ok(Self {
            per_home: RateLimit {
                per_second: check(
                    "slowpath.per_home_pps",
                    f.per_home_pps,
                    RateLimit::DEFAULT.per_second,
                    MAX_PER_HOME_PPS,
                )?,
                burst: check(
                    "slowpath.per_home_burst",
                    f.per_home_burst,
                    RateLimit::DEFAULT.burst,
                    MAX_PER_HOME_BURST,
                )?,
            },
        })
    }
}

/// `[fastpath]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FastPathFile {
    /// Access interface name.
    pub access_interface: Option<String>,
    /// The vG's VTEP IPv4 address.
    pub vtep: Option<String>,
    /// The vG's VTEP IPv6 address.
    pub vtep6: Option<String>,
    /// VXLAN UDP port.
    pub vxlan_port: Option<u16>,
    /// Accepted S-tag TPIDs.
    pub stag_tpids: Option<Vec<u16>>,
    /// Default TCP MSS clamp for every home (0 = off); a home's own `tcp_mss` wins. Without
    /// it, VXLAN homes clamp to [`VXLAN_HOME_MSS`] (over IPv6: [`VXLAN6_HOME_MSS`]) and the
    /// others do not clamp.
    pub tcp_mss_clamp: Option<u16>,
}

/// `[[subscriber]]` as written, and the body of the REST API's subscriber calls (the same
/// serde type, so a home reads the same in the file, in the API and in the store).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubscriberFile {
    /// Slot id.
    pub id: u32,
    /// LSL in text form.
    pub lsl: String,
    /// Gateway address with the LAN prefix length.
    #[serde(default = "default_gateway")]
    pub gateway: String,
    /// Static hosts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<HostFile>,
    /// This home's DHCP settings over the `[dhcp]` defaults.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dhcp: Option<DhcpConfigWire>,
    /// This home's NAT policy over the `[nat]` defaults.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nat: Option<NatPolicyFile>,
    /// Port forwards (static NAT mappings) into the home.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub port_forwards: Vec<PortForwardFile>,
    /// TCP MSS clamp for this home (0 = off); default `fastpath.tcp_mss_clamp`, else 1410
    /// for VXLAN homes (1390 over IPv6) and off for the others.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp_mss: Option<u16>,
    /// Its speed tier (rate limits up and down); none: no limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qos: Option<QosFile>,
    /// Its IPv6 over the `[ipv6]` defaults.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv6: Option<Ipv6PolicyFile>,
}

fn default_gateway() -> String {
    "192.168.1.1/24".to_owned()
}

/// A static host as written.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostFile {
    /// IPv4 address.
    pub ip: String,
    /// MAC address.
    pub mac: String,
}

/// A home's NAT policy as written; every field defaults to the `[nat]` section.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NatPolicyFile {
    /// Pin the home to this public address (it must be in `nat.pool`); default: the
    /// least-loaded address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_ip: Option<Ipv4Addr>,
    /// Port blocks the home holds; default `nat.initial_blocks_per_subscriber`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocks: Option<u8>,
    /// Most concurrent NAT sessions (0 = no limit); default
    /// `nat.max_sessions_per_subscriber`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_limit: Option<u32>,
    /// Inbound filtering; default `nat.filtering`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filtering: Option<Filtering>,
}

/// The transport protocol of a port forward.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    /// TCP (IP protocol 6).
    Tcp,
    /// UDP (IP protocol 17).
    Udp,
}

impl Proto {
    /// The IP protocol number.
    pub const fn number(self) -> u8 {
        match self {
            Proto::Tcp => 6,
            Proto::Udp => 17,
        }
    }

    /// `tcp` or `udp`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Proto {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "tcp" => Ok(Proto::Tcp),
            "udp" => Ok(Proto::Udp),
            _ => Err(format!("{s:?} is not a port-forward protocol (tcp or udp)")),
        }
    }
}

/// A port forward: the home's public address and `public_port` reach
/// `private_ip:private_port` in the home. The public port must be in one of the home's port
/// blocks (its public address is shared with other homes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortForwardFile {
    /// `tcp` or `udp`.
    pub proto: Proto,
    /// The public port.
    pub public_port: u16,
    /// The host in the home.
    pub private_ip: Ipv4Addr,
    /// The port on that host.
    pub private_port: u16,
}

/// A home's NAT policy, validated against `[nat]` (a pinned address in the pool, a block
/// count the fast path holds). Fields the home does not set stay `None`: the `[nat]`
/// defaults apply when blocks are allocated.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NatPolicy {
    /// The public address the home is pinned to.
    pub public_ip: Option<Ipv4Addr>,
    /// Port blocks the home holds.
    pub blocks: Option<u8>,
    /// Most concurrent NAT sessions (0 = no limit).
    pub session_limit: Option<u32>,
    /// Inbound filtering.
    pub filtering: Option<Filtering>,
}

/// A port forward, validated: a host address of the home's LAN, non-zero ports. Shown by the
/// API as written ([`PortForwardFile`]'s form).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct PortForward {
    /// `tcp` or `udp`.
    pub proto: Proto,
    /// The public port.
    pub public_port: u16,
    /// The host in the home.
    pub private_ip: Ipv4Addr,
    /// The port on that host.
    pub private_port: u16,
}

/// `[dhcp]`, the defaults every home's DHCP settings start from, checked for what can be
/// checked without a home (no LAN prefix or gateway: those are each home's); the rest is
/// checked with each home, as its own settings over these.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DhcpDefaults(DhcpConfigWire);

impl DhcpDefaults {
    /// The defaults, or why they cannot be.
    pub fn new(wire: DhcpConfigWire) -> Result<Self, ConfigError> {
        if wire.prefix.is_some() || wire.gateway.is_some() {
            return Err(invalid(
                "dhcp.prefix / dhcp.gateway",
                "set",
                "each home's LAN and gateway come from its subscriber.gateway",
            ));
        }
        Ok(Self(wire))
    }

    /// The settings as written.
    pub fn wire(&self) -> &DhcpConfigWire {
        &self.0
    }
}

/// The validated configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Fast-path settings.
    pub fastpath: FastPathConfig,
    /// Subscribers by id.
    pub subscribers: BTreeMap<SubscriberId, SubscriberConfig>,
    /// NAT, when configured.
    pub nat: Option<NatConfig>,
    /// `[dhcp]`: the defaults every home's DHCP settings start from (API-created homes too).
    pub dhcp_defaults: DhcpDefaults,
    /// Each configured home as written (what the store and the API keep).
    pub files: BTreeMap<SubscriberId, SubscriberFile>,
    /// `[slowpath]`.
    pub slowpath: SlowPathConfig,
    /// `[ipv6]`, when configured.
    pub ipv6: Option<Ipv6Config>,
}

/// Validated `[fastpath]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FastPathConfig {
    /// Access interface, if the file names one.
    pub access_interface: Option<String>,
    /// The vG's VTEP; `None` disables VXLAN LSLs over IPv4.
    pub vtep: Option<Ipv4Addr>,
    /// The vG's IPv6 VTEP; `None` disables VXLAN LSLs over IPv6.
    pub vtep6: Option<Ipv6Addr>,
    /// VXLAN UDP port.
    pub vxlan_port: u16,
    /// Accepted S-tag TPIDs.
    pub stag_tpids: Vec<Tpid>,
    /// Default TCP MSS clamp, if configured.
    pub tcp_mss_clamp: Option<u16>,
}

/// The TCP MSS clamp of VXLAN homes unless configured: their MTU (1450) less 40 bytes of
/// IPv4 and TCP headers.
pub const VXLAN_HOME_MSS: u16 = 1410;

/// The same for VXLAN homes over IPv6: their MTU (1430, the outer IPv6 header is 20 bytes
/// longer) less 40.
pub const VXLAN6_HOME_MSS: u16 = 1390;

/// The smallest MSS clamp accepted (RFC 879's default MSS); 0 switches clamping off.
pub const MIN_TCP_MSS: u16 = 536;

/// The VXLAN port (RFC 7348 §5), as the `lsl` codecs define it.
pub const DEFAULT_VXLAN_PORT: u16 = lsl::wire::vxlan::UDP_PORT;

/// A validated home.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubscriberConfig {
    /// Slot id.
    pub id: SubscriberId,
    /// Its LSL.
    pub lsl: LslId,
    /// Its gateway address.
    pub gateway: Ipv4Addr,
    /// Its LAN prefix.
    pub lan: Ipv4Net,
    /// Its gateway MAC (derived from the id: stable across restarts).
    pub gateway_mac: [u8; 6],
    /// Static hosts: IP -> MAC.
    pub hosts: BTreeMap<Ipv4Addr, [u8; 6]>,
    /// The home's DHCP server settings.
    pub dhcp: DhcpConfig,
    /// The home's NAT policy (unset fields: the `[nat]` defaults).
    pub nat: NatPolicy,
    /// Its port forwards, by (protocol, public port).
    pub port_forwards: BTreeMap<(Proto, u16), PortForward>,
    /// The TCP MSS clamp the fast path applies (0 = off), defaults resolved.
    pub tcp_mss: u16,
    /// Its speed tier.
    pub qos: Qos,
    /// Its IPv6: the prefix policy (off, a length from the pools, or a pinned prefix) and
    /// the RA flags.
    pub ipv6: Ipv6Home,
}

/// The gateway MAC of home `id`: locally administered, `02:4e:47` ("NG") + the id.
pub fn gateway_mac(id: SubscriberId) -> [u8; 6] {
    let b = id.to_be_bytes();
    [0x02, 0x4e, 0x47, b[1], b[2], b[3]]
}

impl Config {
    /// Reads and validates a configuration file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let shown = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|source| ConfigError::Read {
            path: shown.clone(),
            source,
        })?;
        Self::from_bytes(&shown, &bytes)
    }

    /// Parses and validates TOML text.
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        Self::from_bytes("<config>", text.as_bytes())
    }

    /// Parses and validates the bytes of the file `path` (named in errors).
    fn from_bytes(path: &str, bytes: &[u8]) -> Result<Self, ConfigError> {
        let text = std::str::from_utf8(bytes).map_err(|e| {
            let offset = e.valid_up_to();
            let (line, column) = position(bytes, offset);
            ConfigError::NotUtf8 {
                path: path.to_owned(),
                line,
                column,
                offset,
            }
        })?;
        let file: ConfigFile = toml::from_str(text).map_err(|e| {
            let mut at = e.span().map_or(0, |span| span.start).min(text.len());
            while !text.is_char_boundary(at) {
                at -= 1;
            }
            let (line, column) = position(bytes, at);
            let start = text[..at].rfind('\n').map_or(0, |i| i + 1);
            let end = text[start..].find('\n').map_or(text.len(), |i| start + i);
            ConfigError::Parse {
                path: path.to_owned(),
                line,
                column,
                message: lsl::model::excerpt_to(e.message().trim(), 240),
                excerpt: lsl::model::excerpt_to(text[start..end].trim(), 80),
            }
        })?;
        Self::try_from(file)
    }
}

impl TryFrom<ConfigFile> for Config {
    type Error = ConfigError;

    fn try_from(file: ConfigFile) -> Result<Self, ConfigError> {
        let fastpath = FastPathConfig::try_from(file.fastpath)?;
        let slowpath = SlowPathConfig::try_from(file.slowpath)?;
        let nat = match file.nat {
            None => None,
            Some(wire) => Some(NatConfig::try_from(wire).map_err(|e| ConfigError::Invalid {
                key: if e.key.starts_with("nat.") {
                    e.key.clone()
                } else {
                    format!("nat.{}", e.key)
                },
                value: e.value.clone(),
                why: e.problem.to_string(),
            })?),
        };
        if let Some(nat) = &nat
            && usize::from(nat.max_blocks()) > nerg_abi::MAX_BLOCKS
        {
            return Err(invalid(
                "nat.max_blocks_per_subscriber",
                nat.max_blocks(),
                format!(
                    "the fast path holds at most {} blocks per subscriber",
                    nerg_abi::MAX_BLOCKS
                ),
            ));
        }
        let dhcp_defaults = DhcpDefaults::new(file.dhcp.unwrap_or_default())?;
        let ipv6 = file
            .ipv6
            .map(Ipv6Config::try_from)
            .transpose()
            .map_err(|(k, value, why)| invalid(format!("ipv6.{k}"), value, why))?;
        let mut this = Self {
            fastpath,
            subscribers: BTreeMap::new(),
            nat,
            dhcp_defaults,
            files: BTreeMap::new(),
            slowpath,
            ipv6,
        };
        let mut lsls = LslSet::new();
        for (i, file) in file.subscribers.into_iter().enumerate() {
            let key = |field: &str| format!("subscriber[{i}].{field}");
            let sub = this.subscriber_with_keys(file.clone(), &key)?;
            let id = sub.id;
            if this.subscribers.contains_key(&id) {
                return Err(invalid(key("id"), id, "duplicate subscriber id"));
            }
            if let Err(clash) = lsls.insert(sub.lsl, sub.id) {
                return Err(invalid(
                    key("lsl"),
                    format!("{:?}", sub.lsl.to_string()),
                    lsl_clash(&clash),
                ));
            }
            this.subscribers.insert(id, sub);
            this.files.insert(id, file);
        }
        Ok(this)
    }
}

/// Why an LSL cannot join the homes: the other home and how they clash (the wording of
/// the configuration file's errors and of the API's conflicts).
pub fn lsl_clash(clash: &Clash<SubscriberId>) -> String {
    match clash.kind {
        ClashKind::SameKey if clash.lsl == clash.other => {
            format!("already used by subscriber {}", clash.owner)
        }
        _ => format!(
            "clashes with subscriber {} ({}): {clash}",
            clash.owner, clash.other
        ),
    }
}

impl Config {
    /// Validates one home (from the API or the store) against this configuration: its own
    /// fields, its LSL against the fast path's settings, its NAT policy against `[nat]`.
    /// Errors name the key as `subscriber.<field>`. Conflicts with other homes (id, LSL: see
    /// [`LslSet`] and [`lsl_clash`]) are the caller's to check.
    pub fn subscriber(&self, file: SubscriberFile) -> Result<SubscriberConfig, ConfigError> {
        self.subscriber_with_keys(file, &|field: &str| format!("subscriber.{field}"))
    }

    fn subscriber_with_keys(
        &self,
        file: SubscriberFile,
        key: &dyn Fn(&str) -> String,
    ) -> Result<SubscriberConfig, ConfigError> {
        let sub = SubscriberConfig::parse(file, self, key)?;
        match sub.lsl {
            LslId::Vxlan {
                vtep: IpAddr::V4(_),
                ..
            } if self.fastpath.vtep.is_none() => {
                return Err(invalid(
                    key("lsl"),
                    format!("{:?}", sub.lsl.to_string()),
                    "a VXLAN LSL needs fastpath.vtep",
                ));
            }
            LslId::Vxlan {
                vtep: IpAddr::V6(_),
                ..
            } if self.fastpath.vtep6.is_none() => {
                return Err(invalid(
                    key("lsl"),
                    format!("{:?}", sub.lsl.to_string()),
                    "a VXLAN LSL over IPv6 needs fastpath.vtep6",
                ));
            }
            LslId::Vlan {
                s_tag: Some(stag), ..
            } if !self.fastpath.stag_tpids.contains(&stag.tpid) => {
                return Err(invalid(
                    key("lsl"),
                    format!("{:?}", sub.lsl.to_string()),
                    format!(
                        "S-tag TPID {:#06x} is not in fastpath.stag_tpids",
                        stag.tpid as u16
                    ),
                ));
            }
            _ => {}
        }
        Ok(sub)
    }
}

impl TryFrom<FastPathFile> for FastPathConfig {
    type Error = ConfigError;

    fn try_from(f: FastPathFile) -> Result<Self, ConfigError> {
        let vtep = match f.vtep {
            None => None,
            Some(s) => {
                let ip = Ipv4Addr::from_str(&s).map_err(|_| {
                    invalid("fastpath.vtep", format!("{s:?}"), "not an IPv4 address")
                })?;
                if ip.is_unspecified() || ip.is_broadcast() || ip.is_multicast() {
                    return Err(invalid(
                        "fastpath.vtep",
                        format!("{s:?}"),
                        "not a unicast address",
                    ));
                }
                Some(ip)
            }
        };
        let vtep6 = match f.vtep6 {
            None => None,
            Some(s) => {
                let ip = Ipv6Addr::from_str(&s).map_err(|_| {
                    invalid("fastpath.vtep6", format!("{s:?}"), "not an IPv6 address")
                })?;
                if ip.is_unspecified() || ip.is_multicast() || ip.is_loopback() {
                    return Err(invalid(
                        "fastpath.vtep6",
                        format!("{s:?}"),
                        "not a unicast address",
                    ));
                }
                Some(ip)
            }
        };
        let vxlan_port = f.vxlan_port.unwrap_or(DEFAULT_VXLAN_PORT);
        if vxlan_port == 0 {
            return Err(invalid("fastpath.vxlan_port", 0, "port 0"));
        }
        let stag_tpids = match f.stag_tpids {
            None => vec![Tpid::STag, Tpid::STagLegacy, Tpid::CTag],
            Some(list) => list
                .into_iter()
                .map(|t| {
                    Tpid::from_ethertype(t).ok_or_else(|| {
                        invalid(
                            "fastpath.stag_tpids",
                            format!("{t:#06x}"),
                            "not a VLAN TPID (0x88a8, 0x9100 or 0x8100)",
                        )
                    })
                })
                .collect::<Result<_, _>>()?,
        };
        if let Some(mss) = f.tcp_mss_clamp {
            check_mss(mss).map_err(|why| invalid("fastpath.tcp_mss_clamp", mss, why))?;
        }
        Ok(Self {
            access_interface: f.access_interface,
            vtep,
            vtep6,
            vxlan_port,
            stag_tpids,
            tcp_mss_clamp: f.tcp_mss_clamp,
        })
    }
}

impl SubscriberConfig {
    fn parse(
        f: SubscriberFile,
        config: &Config,
        key: &dyn Fn(&str) -> String,
    ) -> Result<Self, ConfigError> {
        let dhcp_defaults = config.dhcp_defaults.wire();
        if f.id == 0 || f.id >= MAX_SUBSCRIBERS {
            return Err(invalid(
                key("id"),
                f.id,
                format!("must be in 1..={}", MAX_SUBSCRIBERS - 1),
            ));
        }
        let lsl = LslId::from_str(&f.lsl)
            .map_err(|e| invalid(key("lsl"), format!("{:?}", f.lsl), e.to_string()))?;
        let HomeLan { gateway, lan } = HomeLan::from_str(&f.gateway)
            .map_err(|why| invalid(key("gateway"), format!("{:?}", f.gateway), why))?;
        let mut hosts = BTreeMap::new();
        for (j, h) in f.hosts.into_iter().enumerate() {
            let hkey = |field: &str| key(&format!("hosts[{j}].{field}"));
            let ip = Ipv4Addr::from_str(&h.ip)
                .map_err(|_| invalid(hkey("ip"), format!("{:?}", h.ip), "not an IPv4 address"))?;
            if !lan.contains(&ip) || ip == gateway || ip == lan.network() || ip == lan.broadcast() {
                return Err(invalid(
                    hkey("ip"),
                    format!("{:?}", h.ip),
                    format!("not a host address of the home's LAN {lan} (gateway {gateway})"),
                ));
            }
            let mac = parse_mac(&h.mac).ok_or_else(|| {
                invalid(
                    hkey("mac"),
                    format!("{:?}", h.mac),
                    "not a unicast MAC address",
                )
            })?;
            if hosts.insert(ip, mac).is_some() {
                return Err(invalid(hkey("ip"), format!("{:?}", h.ip), "duplicate host"));
            }
        }
        let dhcp = home_dhcp(
            dhcp_defaults,
            f.dhcp.unwrap_or_default(),
            &lsl,
            gateway,
            lan,
        )
        .map_err(|e| ConfigError::Invalid {
            key: key(&format!("dhcp.{}", e.key)),
            value: e.value.clone(),
            why: e.problem.to_string(),
        })?;
        let has_policy = f.nat.is_some();
        let nat = f.nat.unwrap_or_default();
        if has_policy || !f.port_forwards.is_empty() {
            check_nat_policy(&nat, config.nat.as_ref(), key)?;
        }
        let nat = NatPolicy {
            public_ip: nat.public_ip,
            blocks: nat.blocks,
            session_limit: nat.session_limit,
            filtering: nat.filtering,
        };
        let mut port_forwards = BTreeMap::new();
        for (j, pf) in f.port_forwards.into_iter().enumerate() {
            let pkey = |field: &str| key(&format!("port_forwards[{j}].{field}"));
            let pf = check_forward(&pf, gateway, lan, &pkey)?;
            if port_forwards
                .insert((pf.proto, pf.public_port), pf)
                .is_some()
            {
                return Err(invalid(
                    pkey("public_port"),
                    pf.public_port,
                    format!("{} port {} is forwarded twice", pf.proto, pf.public_port),
                ));
            }
        }
        let tcp_mss = match f.tcp_mss.or(config.fastpath.tcp_mss_clamp) {
            Some(mss) => {
                check_mss(mss).map_err(|why| invalid(key("tcp_mss"), mss, why))?;
                mss
            }
            None => match lsl {
                LslId::Vxlan {
                    vtep: IpAddr::V4(_),
                    ..
                } => VXLAN_HOME_MSS,
                LslId::Vxlan {
                    vtep: IpAddr::V6(_),
                    ..
                } => VXLAN6_HOME_MSS,
                LslId::Vlan { .. } => 0,
            },
        };
        let qos = match &f.qos {
            None => Qos::default(),
            Some(q) => Qos::new(q)
                .map_err(|(field, value, why)| invalid(key(&format!("qos.{field}")), value, why))?,
        };
        let ipv6 = Ipv6Home::new(f.ipv6.as_ref(), config.ipv6.as_ref())
            .map_err(|(k, value, why)| invalid(key(&format!("ipv6.{k}")), value, why))?;
        Ok(Self {
            id: f.id,
            lsl,
            gateway,
            lan,
            gateway_mac: gateway_mac(f.id),
            hosts,
            dhcp,
            nat,
            port_forwards,
            tcp_mss,
            qos,
            ipv6,
        })
    }
}

/// An MSS clamp is 0 (off) or a sensible segment size.
fn check_mss(mss: u16) -> Result<(), String> {
    if mss == 0 || (MIN_TCP_MSS..=9000).contains(&mss) {
        Ok(())
    } else {
        Err(format!("0 (off) or {MIN_TCP_MSS}..=9000"))
    }
}

/// A home's NAT policy against `[nat]`.
fn check_nat_policy(
    p: &NatPolicyFile,
    nat: Option<&NatConfig>,
    key: &dyn Fn(&str) -> String,
) -> Result<(), ConfigError> {
    let Some(nat) = nat else {
        return Err(invalid(
            key("nat"),
            "set",
            "NAT policy or port forwards need a [nat] section",
        ));
    };
    if let Some(ip) = p.public_ip
        && !nat.pool().contains(ip)
    {
        return Err(invalid(key("nat.public_ip"), ip, "not in nat.pool"));
    }
    if let Some(b) = p.blocks
        && (b == 0 || b > nat.max_blocks())
    {
        return Err(invalid(
            key("nat.blocks"),
            b,
            format!(
                "must be in 1..={} (nat.max_blocks_per_subscriber)",
                nat.max_blocks()
            ),
        ));
    }
    Ok(())
}

/// A port forward's own fields: a host of the home, non-zero ports.
fn check_forward(
    pf: &PortForwardFile,
    gateway: Ipv4Addr,
    lan: Ipv4Net,
    key: &dyn Fn(&str) -> String,
) -> Result<PortForward, ConfigError> {
    let ip = pf.private_ip;
    if !lan.contains(&ip) || ip == gateway || ip == lan.network() || ip == lan.broadcast() {
        return Err(invalid(
            key("private_ip"),
            ip,
            format!("not a host address of the home's LAN {lan} (gateway {gateway})"),
        ));
    }
    if pf.public_port == 0 {
        return Err(invalid(key("public_port"), 0, "port 0"));
    }
    if pf.private_port == 0 {
        return Err(invalid(key("private_port"), 0, "port 0"));
    }
    Ok(PortForward {
        proto: pf.proto,
        public_port: pf.public_port,
        private_ip: pf.private_ip,
        private_port: pf.private_port,
    })
}

/// A home's DHCP settings: its own over the defaults, with the LAN and gateway of the home.
fn home_dhcp(
    defaults: &DhcpConfigWire,
    own: DhcpConfigWire,
    lsl: &LslId,
    gateway: Ipv4Addr,
    lan: Ipv4Net,
) -> Result<DhcpConfig, crate::dhcp::ConfigError> {
    let vxlan_mtu = match lsl {
        LslId::Vxlan {
            vtep: IpAddr::V4(_),
            ..
        } => Some(VXLAN_HOME_MTU),
        LslId::Vxlan {
            vtep: IpAddr::V6(_),
            ..
        } => Some(VXLAN6_HOME_MTU),
        LslId::Vlan { .. } => None,
    };
    let pick_vec =
        |own: Vec<Ipv4Addr>, def: &Vec<Ipv4Addr>| if own.is_empty() { def.clone() } else { own };
    let wire = DhcpConfigWire {
        prefix: Some(lan),
        gateway: Some(gateway),
        range_start: own.range_start.or(defaults.range_start),
        range_end: own.range_end.or(defaults.range_end),
        lease_time_secs: own.lease_time_secs.or(defaults.lease_time_secs),
        offer_hold_secs: own.offer_hold_secs.or(defaults.offer_hold_secs),
        decline_quarantine_secs: own
            .decline_quarantine_secs
            .or(defaults.decline_quarantine_secs),
        dns_servers: pick_vec(own.dns_servers, &defaults.dns_servers),
        domain_name: own.domain_name.or_else(|| defaults.domain_name.clone()),
        mtu: own.mtu.or(defaults.mtu).or(vxlan_mtu),
        reservations: own.reservations,
        relayed: own.relayed.or(defaults.relayed),
    };
    DhcpConfig::try_from(wire)
}

/// The DHCP MTU a VXLAN home gets unless configured: 1500 less VXLAN's 50 bytes (RFC 7348).
pub const VXLAN_HOME_MTU: u16 = 1450;
/// The same over IPv6: 1500 less 70 bytes.
pub const VXLAN6_HOME_MTU: u16 = 1430;

/// The shortest LAN prefix a home may have: a /16 already holds 65,534 hosts, far more than
/// a home has (a shorter one is a typing error, such as /0 or /8).
pub const MIN_LAN_PREFIX_LEN: u8 = 16;
/// The longest: a /30 holds the gateway and one host (the DHCP pool's least).
pub const MAX_LAN_PREFIX_LEN: u8 = 30;

/// A home's gateway address and LAN prefix (`gateway = "192.168.1.1/24"`), validated: the
/// one type the configuration file, the API and the store's homes go through.
///
/// The prefix is /16 to /30 ([`MIN_LAN_PREFIX_LEN`], [`MAX_LAN_PREFIX_LEN`]); the gateway is
/// neither the network nor the broadcast address of it, nor one of the special-purpose
/// addresses no host can have (RFC 6890): 0.0.0.0/8 "this network", 127.0.0.0/8 loopback,
/// 169.254.0.0/16 link-local, 224.0.0.0/4 multicast, 240.0.0.0/4 reserved (with the limited
/// broadcast address 255.255.255.255).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HomeLan {
    /// The gateway's address (the vG's, in the home).
    pub gateway: Ipv4Addr,
    /// The LAN prefix, host bits clear.
    pub lan: Ipv4Net,
}

/// Why a gateway address is special-purpose (RFC 6890), if it is.
fn special_purpose(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, ..] = ip.octets();
    Some(match (a, b) {
        (0, _) => "in 0.0.0.0/8, \"this network\" (RFC 6890)",
        (127, _) => "a loopback address (127.0.0.0/8)",
        (169, 254) => "a link-local address (169.254.0.0/16)",
        (224..=239, _) => "a multicast address (224.0.0.0/4)",
        (240.., _) => "a reserved address (240.0.0.0/4, with 255.255.255.255)",
        _ => return None,
    })
}

impl FromStr for HomeLan {
    type Err = String;

    /// `"a.b.c.d/len"`; the error says why, for [`ConfigError::Invalid`].
    fn from_str(s: &str) -> Result<Self, String> {
        let net = Ipv4Net::from_str(s)
            .map_err(|_| "expected address/prefix-length, e.g. 192.168.1.1/24".to_owned())?;
        let gateway = net.addr();
        if let Some(what) = special_purpose(gateway) {
            return Err(format!(
                "the gateway {gateway} is {what}, not a host address"
            ));
        }
        if !(MIN_LAN_PREFIX_LEN..=MAX_LAN_PREFIX_LEN).contains(&net.prefix_len()) {
            return Err(format!(
                "the LAN prefix must be /{MIN_LAN_PREFIX_LEN} to /{MAX_LAN_PREFIX_LEN} (room for \
                 a DHCP pool, no more hosts than a home has), not /{}",
                net.prefix_len()
            ));
        }
        let lan = net.trunc();
        if gateway == lan.network() || gateway == lan.broadcast() {
            return Err(format!(
                "the gateway is the network or broadcast address of {lan}"
            ));
        }
        Ok(Self { gateway, lan })
    }
}

/// Parses `aa:bb:cc:dd:ee:ff` into a unicast MAC.
pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let mut mac = [0u8; 6];
    let mut parts = s.split(':');
    for byte in &mut mac {
        let p = parts.next()?;
        if p.len() != 2 {
            return None;
        }
        *byte = u8::from_str_radix(p, 16).ok()?;
    }
    let unicast = mac[0] & 1 == 0 && mac != [0; 6];
    (parts.next().is_none() && unicast).then_some(mac)
}

#[cfg(test)]
mod tests;
