//! `[ipv6]` and a home's `ipv6 = { ... }`, as written and validated.
//!
//! ```toml
//! [ipv6]
//! pools = ["2001:db8:100::/40"]  # where homes' prefixes come from (no overlaps)
//! delegated_length = 56          # each home's prefix (default 56; 48..=64)
//! hold_down_secs = 86400         # a released prefix rests this long (default 1 day)
//! dns_servers = ["2001:db8::53"] # RDNSS (RFC 8106) and DHCPv6 option 23 (RFC 3646)
//! domain_search = ["home.arpa"]  # DNSSL and DHCPv6 option 24
//! router_address = "2001:db8::1" # the vG's own address: the source of its ICMPv6 errors
//! managed = true                 # RAs' M flag: addresses from DHCPv6 too (default true)
//! other = true                   # RAs' O flag: DNS from DHCPv6 (default true)
//!
//! [[subscriber]]
//! ipv6 = { length = 60 }                      # a /60 for this home
//! ipv6 = { prefix = "2001:db8:100:ff00::/56" } # exactly this one (inside a pool)
//! ipv6 = { managed = false }                  # SLAAC only in this home
//! ipv6 = { enabled = false }                  # IPv4 only
//! ```
//!
//! M and O both on by default: hosts form SLAAC addresses from the LAN /64 (the prefix
//! option's A flag is always set) and also ask DHCPv6 for one and for DNS, which is what
//! Debian's dhcpcd and Windows do when M is set. The router address is the vG's own global
//! address (RFC 4443 §2.2: errors travel to off-link sources); without it vgd uses the
//! first global address of its core interface.
//!
//! Without `[ipv6]` homes are IPv4 only, and a home asking for a prefix is an error. The
//! default of a day for the hold-down is the order of the valid lifetimes hosts are given
//! (RFC 7084 and common CPE practice), so that addresses a home's hosts formed from a prefix
//! have lapsed before another home gets it.

use std::net::Ipv6Addr;

use ipnet::Ipv6Net;
use serde::{Deserialize, Serialize};

/// The default length of a home's prefix (a /56: 256 LANs, RFC 6177's advice for homes).
pub const DEFAULT_DELEGATED_LENGTH: u8 = 56;
/// The shortest prefix a home may get.
pub const MIN_DELEGATED_LENGTH: u8 = 48;
/// The longest prefix a home may get: its LAN /64 and nothing to delegate.
pub const MAX_DELEGATED_LENGTH: u8 = 64;
/// The shortest pool (a pool is cut into homes' prefixes; /16 is far beyond any operator's).
pub const MIN_POOL_LENGTH: u8 = 16;
/// The default hold-down of a released prefix, in seconds.
pub const DEFAULT_HOLD_DOWN_SECS: u64 = 86_400;
/// The longest hold-down, in seconds (30 days).
pub const MAX_HOLD_DOWN_SECS: u64 = 30 * 86_400;
/// The most DNS servers (RFC 8106 allows more; a handful is what clients use).
pub const MAX_DNS_SERVERS: usize = 4;
/// The most search domains.
pub const MAX_DOMAINS: usize = 8;

/// A validation error: the key (relative to `ipv6.` or the home's `ipv6.`), the value as
/// written and why it is refused.
pub type Invalid = (&'static str, String, String);

/// `[ipv6]` as written.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ipv6File {
    /// The prefix pools.
    pub pools: Vec<String>,
    /// Each home's prefix length; default [`DEFAULT_DELEGATED_LENGTH`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delegated_length: Option<u8>,
    /// Hold-down of a released prefix; default [`DEFAULT_HOLD_DOWN_SECS`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hold_down_secs: Option<u64>,
    /// DNS servers given to hosts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns_servers: Vec<Ipv6Addr>,
    /// Search domains given to hosts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub domain_search: Vec<String>,
    /// The vG's own global address, the source of its ICMPv6 errors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub router_address: Option<Ipv6Addr>,
    /// The RAs' M flag unless a home says otherwise; default true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub managed: Option<bool>,
    /// The RAs' O flag unless a home says otherwise; default true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub other: Option<bool>,
}

/// `[ipv6]`, validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ipv6Config {
    pools: Vec<Ipv6Net>,
    delegated_length: u8,
    hold_down_secs: u64,
    dns_servers: Vec<Ipv6Addr>,
    domain_search: Vec<String>,
    router_address: Option<Ipv6Addr>,
    flags: RaFlags,
}

/// A home's RA flags (RFC 4861 §4.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RaFlags {
    /// M: addresses from DHCPv6.
    pub managed: bool,
    /// O: other configuration (DNS) from DHCPv6.
    pub other: bool,
}

impl Default for RaFlags {
    fn default() -> Self {
        Self {
            managed: true,
            other: true,
        }
    }
}

impl Ipv6Config {
    /// The pools, in the order written (allocation tries them in this order).
    pub fn pools(&self) -> &[Ipv6Net] {
        &self.pools
    }
    /// Each home's prefix length unless the home says otherwise.
    pub fn delegated_length(&self) -> u8 {
        self.delegated_length
    }
    /// Seconds a released prefix rests.
    pub fn hold_down_secs(&self) -> u64 {
        self.hold_down_secs
    }
    /// DNS servers for hosts.
    pub fn dns_servers(&self) -> &[Ipv6Addr] {
        &self.dns_servers
    }
    /// Search domains for hosts.
    pub fn domain_search(&self) -> &[String] {
        &self.domain_search
    }
    /// The vG's own global address, if configured.
    pub fn router_address(&self) -> Option<Ipv6Addr> {
        self.router_address
    }
    /// The RA flags of homes that do not set theirs.
    pub fn flags(&self) -> RaFlags {
        self.flags
    }
    /// Whether `prefix` lies inside one of the pools.
    pub fn in_pools(&self, prefix: &Ipv6Net) -> bool {
        self.pools.iter().any(|p| p.contains(prefix))
    }
}

impl TryFrom<Ipv6File> for Ipv6Config {
    type Error = Invalid;

    fn try_from(f: Ipv6File) -> Result<Self, Invalid> {
        if f.pools.is_empty() {
            return Err(("pools", "[]".into(), "at least one pool".into()));
        }
        let mut pools: Vec<Ipv6Net> = Vec::with_capacity(f.pools.len());
        for text in &f.pools {
            let net = parse_prefix(text).map_err(|why| ("pools", format!("{text:?}"), why))?;
            check_global(&net).map_err(|why| ("pools", format!("{text:?}"), why))?;
            if net.prefix_len() < MIN_POOL_LENGTH {
                let why = format!("shorter than /{MIN_POOL_LENGTH}");
                return Err(("pools", format!("{text:?}"), why));
            }
            if let Some(other) = pools.iter().find(|p| p.contains(&net) || net.contains(*p)) {
                return Err(("pools", format!("{text:?}"), format!("overlaps {other}")));
            }
            pools.push(net);
        }
        let delegated_length = f.delegated_length.unwrap_or(DEFAULT_DELEGATED_LENGTH);
        if !(MIN_DELEGATED_LENGTH..=MAX_DELEGATED_LENGTH).contains(&delegated_length) {
            let why = format!("must be in {MIN_DELEGATED_LENGTH}..={MAX_DELEGATED_LENGTH}");
            return Err(("delegated_length", delegated_length.to_string(), why));
        }
        if let Some(p) = pools.iter().find(|p| p.prefix_len() > delegated_length) {
            let why = format!("pool {p} is smaller than one home's /{delegated_length}");
            return Err(("delegated_length", delegated_length.to_string(), why));
        }
        let hold_down_secs = f.hold_down_secs.unwrap_or(DEFAULT_HOLD_DOWN_SECS);
        if hold_down_secs > MAX_HOLD_DOWN_SECS {
            let why = format!("at most {MAX_HOLD_DOWN_SECS} (30 days)");
            return Err(("hold_down_secs", hold_down_secs.to_string(), why));
        }
        if f.dns_servers.len() > MAX_DNS_SERVERS {
            let why = format!("at most {MAX_DNS_SERVERS}");
            return Err(("dns_servers", format!("{:?}", f.dns_servers), why));
        }
        if let Some(bad) = f.dns_servers.iter().find(|ip| !is_unicast(ip)) {
            return Err((
                "dns_servers",
                bad.to_string(),
                "not a unicast address".into(),
            ));
        }
        if f.domain_search.len() > MAX_DOMAINS {
            let why = format!("at most {MAX_DOMAINS}");
            return Err(("domain_search", format!("{:?}", f.domain_search), why));
        }
        for d in &f.domain_search {
            crate::dhcp::config::check_domain(d)
                .map_err(|why| ("domain_search", format!("{d:?}"), why.to_owned()))?;
        }
        if let Some(r) = f.router_address {
            let link_local = r.segments()[0] & 0xffc0 == 0xfe80;
            if !is_unicast(&r) || link_local {
                let why = "not a global unicast address".to_owned();
                return Err(("router_address", r.to_string(), why));
            }
            if pools.iter().any(|p| p.contains(&r)) {
                let why = "inside a pool: the vG's address is its own, not a home's".to_owned();
                return Err(("router_address", r.to_string(), why));
            }
        }
        let def = RaFlags::default();
        Ok(Self {
            pools,
            delegated_length,
            hold_down_secs,
            dns_servers: f.dns_servers,
            domain_search: f.domain_search,
            router_address: f.router_address,
            flags: RaFlags {
                managed: f.managed.unwrap_or(def.managed),
                other: f.other.unwrap_or(def.other),
            },
        })
    }
}

/// A home's `ipv6 = { ... }` as written; every field defaults to `[ipv6]`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ipv6PolicyFile {
    /// False: this home is IPv4 only. Default: true when `[ipv6]` is configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Exactly this prefix (inside a pool, at most a /64).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// The prefix length this home gets; default `ipv6.delegated_length`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub length: Option<u8>,
    /// The RAs' M flag; default `ipv6.managed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub managed: Option<bool>,
    /// The RAs' O flag; default `ipv6.other`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub other: Option<bool>,
}

/// A home's IPv6 as validated: its prefix policy and its RA flags.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Ipv6Home {
    /// Which prefix.
    pub prefix: Ipv6Policy,
    /// The RA flags.
    pub flags: RaFlags,
}

impl Ipv6Home {
    /// Validates a home's `ipv6` (`None`: not written) against `[ipv6]` (`None`: absent).
    pub fn new(file: Option<&Ipv6PolicyFile>, cfg: Option<&Ipv6Config>) -> Result<Self, Invalid> {
        let prefix = Ipv6Policy::new(file, cfg)?;
        let def = cfg.map(Ipv6Config::flags).unwrap_or_default();
        Ok(Self {
            prefix,
            flags: RaFlags {
                managed: file.and_then(|f| f.managed).unwrap_or(def.managed),
                other: file.and_then(|f| f.other).unwrap_or(def.other),
            },
        })
    }
}

/// A home's IPv6, validated against `[ipv6]`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Ipv6Policy {
    /// IPv4 only (no `[ipv6]`, or `enabled = false`).
    #[default]
    Off,
    /// A prefix of this length from the pools.
    Length(u8),
    /// Exactly this prefix.
    Pinned(Ipv6Net),
}

impl Ipv6Policy {
    /// Validates a home's policy (`None`: not written) against `[ipv6]` (`None`: absent).
    pub fn new(file: Option<&Ipv6PolicyFile>, cfg: Option<&Ipv6Config>) -> Result<Self, Invalid> {
        let enabled = file.and_then(|f| f.enabled);
        let asks = file.is_some_and(|f| f.prefix.is_some() || f.length.is_some());
        let Some(cfg) = cfg else {
            if enabled == Some(true) || asks {
                let why = "IPv6 needs the [ipv6] section".to_owned();
                return Err(("enabled", "true".into(), why));
            }
            return Ok(Self::Off);
        };
        if enabled == Some(false) {
            if asks {
                let why = "a prefix or length with enabled = false".to_owned();
                return Err(("enabled", "false".into(), why));
            }
            return Ok(Self::Off);
        }
        let file = file.cloned().unwrap_or_default();
        if let Some(text) = &file.prefix {
            if file.length.is_some() {
                let why = "give a prefix or a length, not both".to_owned();
                return Err(("prefix", format!("{text:?}"), why));
            }
            let net = parse_prefix(text).map_err(|why| ("prefix", format!("{text:?}"), why))?;
            if net.prefix_len() > MAX_DELEGATED_LENGTH {
                let why = format!("longer than /{MAX_DELEGATED_LENGTH}: no room for the LAN");
                return Err(("prefix", format!("{text:?}"), why));
            }
            if !cfg.in_pools(&net) {
                return Err((
                    "prefix",
                    format!("{text:?}"),
                    "not inside ipv6.pools".into(),
                ));
            }
            return Ok(Self::Pinned(net));
        }
        let length = file.length.unwrap_or(cfg.delegated_length);
        if !(MIN_DELEGATED_LENGTH..=MAX_DELEGATED_LENGTH).contains(&length) {
            let why = format!("must be in {MIN_DELEGATED_LENGTH}..={MAX_DELEGATED_LENGTH}");
            return Err(("length", length.to_string(), why));
        }
        if !cfg.pools.iter().any(|p| p.prefix_len() <= length) {
            let why = "every pool is smaller".to_owned();
            return Err(("length", length.to_string(), why));
        }
        Ok(Self::Length(length))
    }

    /// Whether an assigned `prefix` satisfies this policy.
    pub fn accepts(&self, prefix: &Ipv6Net) -> bool {
        match self {
            Self::Off => false,
            Self::Length(len) => prefix.prefix_len() == *len,
            Self::Pinned(p) => p == prefix,
        }
    }
}

/// A prefix as written: an address, `/`, a length, with no host bits set.
fn parse_prefix(text: &str) -> Result<Ipv6Net, String> {
    let net: Ipv6Net = text
        .parse()
        .map_err(|_| "not an IPv6 prefix (address/length)".to_owned())?;
    if net.trunc() != net {
        return Err(format!("host bits set (the prefix is {})", net.trunc()));
    }
    Ok(net)
}

/// A pool's addresses must be routable unicast: not link-local, multicast, loopback or
/// unspecified (global unicast, unique local and documentation prefixes are fine).
fn check_global(net: &Ipv6Net) -> Result<(), String> {
    let a = net.network();
    let link_local = Ipv6Net::new(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0), 10).expect("/10");
    let multicast = Ipv6Net::new(Ipv6Addr::new(0xff00, 0, 0, 0, 0, 0, 0, 0), 8).expect("/8");
    if link_local.contains(net) || multicast.contains(net) || a.is_loopback() || a.is_unspecified()
    {
        return Err("not a unicast prefix a home can route".into());
    }
    Ok(())
}

fn is_unicast(ip: &Ipv6Addr) -> bool {
    !(ip.is_unspecified() || ip.is_loopback() || ip.is_multicast())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(text: &str) -> Result<Ipv6Config, Invalid> {
        Ipv6Config::try_from(toml::from_str::<Ipv6File>(text).expect("toml"))
    }

    #[test]
    fn defaults_and_every_refusal_name_their_key() {
        let c = cfg(r#"pools = ["2001:db8:100::/40"]"#).unwrap();
        assert_eq!(c.delegated_length(), 56);
        assert_eq!(c.hold_down_secs(), 86_400);
        let bad = [
            (r#"pools = []"#, "pools"),
            (r#"pools = ["2001:db8::1/40"]"#, "pools"),
            (r#"pools = ["fe80::/16"]"#, "pools"),
            (r#"pools = ["ff00::/16"]"#, "pools"),
            (r#"pools = ["2001::/8"]"#, "pools"),
            (r#"pools = ["2001:db8::/32", "2001:db8:1::/48"]"#, "pools"),
            (r#"pools = ["2001:db8::/60"]"#, "delegated_length"),
            (
                r#"pools = ["2001:db8::/32"]
                delegated_length = 65"#,
                "delegated_length",
            ),
            (
                r#"pools = ["2001:db8::/32"]
                hold_down_secs = 9999999999"#,
                "hold_down_secs",
            ),
            (
                r#"pools = ["2001:db8::/32"]
                dns_servers = ["ff02::1"]"#,
                "dns_servers",
            ),
            (
                r#"pools = ["2001:db8::/32"]
                domain_search = ["a..b"]"#,
                "domain_search",
            ),
            (
                r#"pools = ["2001:db8::/32"]
                router_address = "fe80::1""#,
                "router_address",
            ),
            (
                r#"pools = ["2001:db8::/32"]
                router_address = "2001:db8::1""#,
                "router_address",
            ),
        ];
        for (text, key) in bad {
            let err = cfg(text).expect_err(text);
            assert_eq!(err.0, key, "{text}: {err:?}");
        }
    }

    #[test]
    fn ra_flags_default_on_and_a_home_overrides_them() {
        let c = cfg("pools = [\"2001:db8:100::/40\"]\nother = false").unwrap();
        let f: Ipv6PolicyFile = toml::from_str("managed = false").unwrap();
        let h = Ipv6Home::new(Some(&f), Some(&c)).unwrap();
        assert_eq!(h.prefix, Ipv6Policy::Length(56));
        let off = RaFlags {
            managed: false,
            other: false,
        };
        assert_eq!(h.flags, off);
        assert!(Ipv6Home::new(None, Some(&c)).unwrap().flags.managed);
    }

    #[test]
    fn a_homes_policy_is_checked_against_the_pools() {
        let c = cfg(r#"pools = ["2001:db8:100::/40"]"#).unwrap();
        let p = |t: &str| toml::from_str::<Ipv6PolicyFile>(t).unwrap();
        assert_eq!(Ipv6Policy::new(None, Some(&c)), Ok(Ipv6Policy::Length(56)));
        assert_eq!(Ipv6Policy::new(None, None), Ok(Ipv6Policy::Off));
        assert_eq!(
            Ipv6Policy::new(Some(&p("enabled = false")), Some(&c)),
            Ok(Ipv6Policy::Off)
        );
        assert_eq!(
            Ipv6Policy::new(Some(&p("length = 60")), Some(&c)),
            Ok(Ipv6Policy::Length(60))
        );
        let pinned: Ipv6Net = "2001:db8:100:ff00::/56".parse().unwrap();
        assert_eq!(
            Ipv6Policy::new(Some(&p(r#"prefix = "2001:db8:100:ff00::/56""#)), Some(&c)),
            Ok(Ipv6Policy::Pinned(pinned))
        );
        let refused = [
            ("length = 60", None, "enabled"),
            ("enabled = true", None, "enabled"),
            ("enabled = false\nlength = 60", Some(&c), "enabled"),
            ("length = 70", Some(&c), "length"),
            (r#"prefix = "2001:db9::/56""#, Some(&c), "prefix"),
            (r#"prefix = "2001:db8:100::/72""#, Some(&c), "prefix"),
            (r#"prefix = "2001:db8:100::1/56""#, Some(&c), "prefix"),
            (
                "prefix = \"2001:db8:100::/56\"\nlength = 56",
                Some(&c),
                "prefix",
            ),
        ];
        for (text, cfg, key) in refused {
            let err = Ipv6Policy::new(Some(&p(text)), cfg).expect_err(text);
            assert_eq!(err.0, key, "{text}: {err:?}");
        }
    }
}
