//! A home's DHCPv6 settings: the plain struct vgd fills from the home's prefixes
//! ([`Dhcp6Settings`]) and the validated form the engine uses ([`Dhcp6Config`]).
//!
//! Addressing, for a home given `2001:db8:0:100::/56` with a LAN of `2001:db8:0:100::/64`:
//!
//! ```text
//!   IA_NA: 2001:db8:0:100::1000 .. 2001:db8:0:100::1fff   (iid_start ..= iid_end)
//!   IA_PD: /60s of the /56: 2001:db8:0:110::/60 .. 2001:db8:0:1f0::/60
//!          (2001:db8:0:100::/60 holds the LAN /64: never delegated)
//! ```
//!
//! The interface-identifier range must avoid the identifiers RFC 5453 reserves: 0 (the
//! Subnet-Router anycast address, RFC 4291 section 2.6.1), the subnet anycast block
//! `fdff:ffff:ffff:ff80`-`ffff` (RFC 2526) and the proxy-mobile block `0200:5eff:fe00:*`.
//! The gateway's own address, when it falls in the range, is never handed out.

use std::fmt;
use std::net::Ipv6Addr;

use dhcproto::Name;
use ipnet::Ipv6Net;

use crate::dhcp::MacAddr;

use super::types::{Duid, IaKind, Lease};

/// Default first interface identifier of the IA_NA range.
pub const DEFAULT_IID_START: u64 = 0x1000;
/// Default last interface identifier of the IA_NA range (4,096 addresses).
pub const DEFAULT_IID_END: u64 = 0x1fff;
/// Default length of a delegated prefix: a /60 (16 /64s for the home's own router).
pub const DEFAULT_PD_LEN: u8 = 60;
/// Default preferred lifetime: 12 hours.
pub const DEFAULT_PREFERRED_SECS: u32 = 43_200;
/// Default valid lifetime: 24 hours (when a binding expires).
pub const DEFAULT_VALID_SECS: u32 = 86_400;
/// Default T1: half the preferred lifetime (RFC 8415 section 14.2 recommends 0.5).
pub const DEFAULT_T1_SECS: u32 = DEFAULT_PREFERRED_SECS / 2;
/// Default T2: 0.8 of the preferred lifetime (RFC 8415 section 14.2).
pub const DEFAULT_T2_SECS: u32 = DEFAULT_PREFERRED_SECS / 5 * 4;
/// Default quarantine of a declined address, as for DHCPv4.
pub const DEFAULT_DECLINE_QUARANTINE_SECS: u32 = 86_400;
/// Default number of IAs of each kind one client (DUID) may hold at once.
pub const DEFAULT_MAX_LEASES_PER_CLIENT: u32 = 8;
/// Shortest valid lifetime accepted.
pub const MIN_VALID_SECS: u32 = 60;
/// Longest valid lifetime accepted: a year (0xffffffff, "infinity", is refused).
pub const MAX_VALID_SECS: u32 = 365 * 86_400;
/// Longest decline quarantine accepted: 30 days.
pub const MAX_DECLINE_QUARANTINE_SECS: u32 = 30 * 86_400;
/// Largest IA_NA range, and most prefixes one home may delegate: bounds per-home memory.
pub const MAX_RANGE: u64 = 65_536;
/// Most DNS servers (option 23) per home.
pub const MAX_DNS_SERVERS: usize = 8;
/// Most domains in the search list (option 24) per home.
pub const MAX_SEARCH_DOMAINS: usize = 8;
/// Most IAs of each kind one client may hold.
pub const MAX_LEASES_PER_CLIENT: u32 = 64;

/// The subnet anycast identifiers of RFC 2526 (the top 128 of the /64).
const ANYCAST_IIDS: (u64, u64) = (0xfdff_ffff_ffff_ff80, u64::MAX);
/// The identifiers RFC 5453 reserves for proxy mobile IPv6 and later use.
const PROXY_MOBILE_IIDS: (u64, u64) = (0x0200_5eff_fe00_0000, 0x0200_5eff_fe00_ffff);

/// A home's DHCPv6 settings, as vgd fills them from the home's prefixes and the operator's
/// defaults. [`Dhcp6Settings::new`] gives the defaults; validate with
/// `Dhcp6Config::try_from`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dhcp6Settings {
    /// The home's LAN: a /64 (IA_NA addresses come from it; Confirm checks against it).
    pub lan: Ipv6Net,
    /// The gateway's own global address on the LAN, if it has one: never handed out.
    pub gateway: Option<Ipv6Addr>,
    /// The gateway MAC: the server DUID is the DUID-LL of it (stable across restarts).
    pub server_mac: MacAddr,
    /// The home's delegated prefix (e.g. a /56); `None`: no prefix delegation.
    pub delegated: Option<Ipv6Net>,
    /// Length of each prefix handed out by IA_PD (longer than `delegated`, at most 64).
    pub pd_len: u8,
    /// First interface identifier (low 64 bits) of the IA_NA range.
    pub iid_start: u64,
    /// Last interface identifier of the IA_NA range.
    pub iid_end: u64,
    /// Preferred lifetime of addresses and prefixes, seconds.
    pub preferred_secs: u32,
    /// Valid lifetime of addresses and prefixes, seconds: the binding's length.
    pub valid_secs: u32,
    /// T1 (renew) sent in each IA, seconds; 0 lets the client choose.
    pub t1_secs: u32,
    /// T2 (rebind) sent in each IA, seconds; 0 lets the client choose.
    pub t2_secs: u32,
    /// DNS recursive name servers (option 23, RFC 3646); empty: not sent.
    pub dns_servers: Vec<Ipv6Addr>,
    /// Domain search list (option 24, RFC 3646); empty: not sent.
    pub domain_search: Vec<String>,
    /// Answer a Solicit carrying Rapid Commit with a committed Reply (RFC 8415 section
    /// 18.3.1) instead of an Advertise.
    pub rapid_commit: bool,
    /// How long a declined address stays out of the pool, seconds.
    pub decline_quarantine_secs: u32,
    /// How many IAs of each kind one DUID may hold bound at once; more get NoAddrsAvail or
    /// NoPrefixAvail (a client inventing IAIDs cannot take the whole pool).
    pub max_leases_per_client: u32,
}

impl Dhcp6Settings {
    /// The defaults for a home given `home_prefix` from the operator's pools (a /48 to /64,
    /// see [`crate::ipv6`]): the LAN is its first /64, the rest is delegated in /60s (in
    /// /64s for a home of /60 or longer; nothing to delegate for a /64).
    pub fn for_home(home_prefix: Ipv6Net, server_mac: MacAddr) -> Dhcp6Settings {
        let home_prefix = home_prefix.trunc();
        let lan = Ipv6Net::new(home_prefix.network(), 64).unwrap_or(home_prefix);
        let mut settings = Dhcp6Settings::new(lan, Some(home_prefix), server_mac);
        if home_prefix.prefix_len() >= DEFAULT_PD_LEN {
            settings.pd_len = 64;
        }
        settings
    }

    /// The defaults for a home with LAN `lan`, delegated prefix `delegated` and gateway MAC
    /// `server_mac`.
    pub fn new(lan: Ipv6Net, delegated: Option<Ipv6Net>, server_mac: MacAddr) -> Dhcp6Settings {
        Dhcp6Settings {
            lan,
            gateway: None,
            server_mac,
            delegated,
            pd_len: DEFAULT_PD_LEN,
            iid_start: DEFAULT_IID_START,
            iid_end: DEFAULT_IID_END,
            preferred_secs: DEFAULT_PREFERRED_SECS,
            valid_secs: DEFAULT_VALID_SECS,
            t1_secs: DEFAULT_T1_SECS,
            t2_secs: DEFAULT_T2_SECS,
            dns_servers: Vec::new(),
            domain_search: Vec::new(),
            rapid_commit: true,
            decline_quarantine_secs: DEFAULT_DECLINE_QUARANTINE_SECS,
            max_leases_per_client: DEFAULT_MAX_LEASES_PER_CLIENT,
        }
    }
}

/// A setting that is not acceptable: the field, its value and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("DHCPv6 setting {key} = {value}: {problem}")]
pub struct ConfigError {
    /// The field of [`Dhcp6Settings`].
    pub key: &'static str,
    /// Its value, as text.
    pub value: String,
    /// What is wrong with it.
    pub problem: &'static str,
}

fn check(
    ok: bool,
    key: &'static str,
    value: impl fmt::Display,
    problem: &'static str,
) -> Result<(), ConfigError> {
    if ok {
        Ok(())
    } else {
        Err(ConfigError {
            key,
            value: value.to_string(),
            problem,
        })
    }
}

/// The prefix-delegation plan: the delegated prefix cut into `pd_len` slots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PdPlan {
    delegated: Ipv6Net,
    len: u8,
    /// Number of slots (2^(len - delegated length)).
    slots: u64,
    /// The slot holding the LAN /64, never delegated.
    lan_slot: Option<u64>,
}

/// A home's validated DHCPv6 settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dhcp6Config {
    settings: Dhcp6Settings,
    server_duid: Duid,
    search: Vec<Name>,
    pd: Option<PdPlan>,
}

impl TryFrom<Dhcp6Settings> for Dhcp6Config {
    type Error = ConfigError;

    fn try_from(s: Dhcp6Settings) -> Result<Dhcp6Config, ConfigError> {
        check(
            s.lan.prefix_len() == 64,
            "lan",
            s.lan,
            "must be a /64 (RFC 4291 section 2.5.1)",
        )?;
        check(s.lan == s.lan.trunc(), "lan", s.lan, "host bits set")?;
        let lan_ok = s.lan.network().segments()[0] & 0xe000 == 0x2000
            || s.lan.network().segments()[0] & 0xfe00 == 0xfc00;
        check(
            lan_ok,
            "lan",
            s.lan,
            "not a global unicast or unique local prefix",
        )?;
        if let Some(gw) = s.gateway {
            check(s.lan.contains(&gw), "gateway", gw, "not in the LAN /64")?;
        }
        check(
            s.server_mac.is_unicast(),
            "server_mac",
            s.server_mac,
            "not a unicast MAC",
        )?;
        check_range(&s)?;
        check_lifetimes(&s)?;
        check(
            s.dns_servers.len() <= MAX_DNS_SERVERS,
            "dns_servers",
            s.dns_servers.len(),
            "too many (at most 8)",
        )?;
        for dns in &s.dns_servers {
            let ok = !dns.is_unspecified() && !dns.is_multicast() && !dns.is_loopback();
            check(ok, "dns_servers", dns, "not a unicast address")?;
        }
        check(
            s.domain_search.len() <= MAX_SEARCH_DOMAINS,
            "domain_search",
            s.domain_search.len(),
            "too many (at most 8)",
        )?;
        let mut search = Vec::with_capacity(s.domain_search.len());
        for domain in &s.domain_search {
            let name = Name::from_ascii(domain).ok().filter(|n| !n.is_root());
            let Some(mut name) = name else {
                return Err(ConfigError {
                    key: "domain_search",
                    value: domain.clone(),
                    problem: "not a domain name",
                });
            };
            name.set_fqdn(true);
            search.push(name);
        }
        check(
            s.decline_quarantine_secs <= MAX_DECLINE_QUARANTINE_SECS,
            "decline_quarantine_secs",
            s.decline_quarantine_secs,
            "longer than 30 days",
        )?;
        check(
            (1..=MAX_LEASES_PER_CLIENT).contains(&s.max_leases_per_client),
            "max_leases_per_client",
            s.max_leases_per_client,
            "must be 1 to 64",
        )?;
        let pd = match s.delegated {
            // A home given only a /64 has its LAN and nothing to delegate.
            Some(d) if d.prefix_len() == 64 => {
                check(
                    d == s.lan,
                    "delegated",
                    d,
                    "a /64 home prefix must be the LAN",
                )?;
                None
            }
            Some(d) => Some(pd_plan(&s, d)?),
            None => None,
        };
        Ok(Dhcp6Config {
            server_duid: Duid::link_layer(s.server_mac),
            search,
            pd,
            settings: s,
        })
    }
}

fn check_range(s: &Dhcp6Settings) -> Result<(), ConfigError> {
    let range = format!("{:#x}..={:#x}", s.iid_start, s.iid_end);
    check(
        s.iid_start <= s.iid_end,
        "iid_start",
        &range,
        "start after end",
    )?;
    check(
        s.iid_start > 0,
        "iid_start",
        &range,
        "includes the Subnet-Router anycast address (RFC 4291 section 2.6.1)",
    )?;
    check(
        s.iid_end - s.iid_start < MAX_RANGE,
        "iid_end",
        &range,
        "more than 65,536 addresses",
    )?;
    for (lo, hi) in [ANYCAST_IIDS, PROXY_MOBILE_IIDS] {
        check(
            s.iid_end < lo || s.iid_start > hi,
            "iid_end",
            &range,
            "overlaps identifiers RFC 5453 reserves",
        )?;
    }
    Ok(())
}

fn check_lifetimes(s: &Dhcp6Settings) -> Result<(), ConfigError> {
    check(
        (MIN_VALID_SECS..=MAX_VALID_SECS).contains(&s.valid_secs),
        "valid_secs",
        s.valid_secs,
        "must be 60 s to a year",
    )?;
    check(
        s.preferred_secs > 0 && s.preferred_secs <= s.valid_secs,
        "preferred_secs",
        s.preferred_secs,
        "must be 1 s to the valid lifetime",
    )?;
    check(s.t1_secs <= s.t2_secs, "t1_secs", s.t1_secs, "after T2")?;
    check(
        s.t2_secs <= s.preferred_secs,
        "t2_secs",
        s.t2_secs,
        "after the preferred lifetime",
    )?;
    Ok(())
}

fn pd_plan(s: &Dhcp6Settings, delegated: Ipv6Net) -> Result<PdPlan, ConfigError> {
    check(
        delegated == delegated.trunc(),
        "delegated",
        delegated,
        "host bits set",
    )?;
    check(
        delegated.prefix_len() < 64,
        "delegated",
        delegated,
        "longer than /64",
    )?;
    let ok = s.pd_len > delegated.prefix_len() && s.pd_len <= 64;
    check(
        ok,
        "pd_len",
        s.pd_len,
        "must be longer than the delegated prefix and at most 64",
    )?;
    let bits = u32::from(s.pd_len - delegated.prefix_len());
    check(bits <= 16, "pd_len", s.pd_len, "more than 65,536 prefixes")?;
    let slots = 1u64 << bits;
    let lan_slot = delegated
        .contains(&s.lan)
        .then(|| slot_of(delegated, s.pd_len, s.lan.network()));
    check(
        slots > u64::from(lan_slot.is_some()),
        "pd_len",
        s.pd_len,
        "no prefix left besides the LAN's",
    )?;
    Ok(PdPlan {
        delegated,
        len: s.pd_len,
        slots,
        lan_slot,
    })
}

/// Index of the `len` slot of `delegated` that holds `ip`.
fn slot_of(delegated: Ipv6Net, len: u8, ip: Ipv6Addr) -> u64 {
    let offset = u128::from(ip) - u128::from(delegated.network());
    u64::try_from(offset >> (128 - u32::from(len))).unwrap_or(u64::MAX)
}

impl Dhcp6Config {
    /// The settings this was built from.
    pub fn settings(&self) -> &Dhcp6Settings {
        &self.settings
    }

    /// The LAN /64.
    pub fn lan(&self) -> Ipv6Net {
        self.settings.lan
    }

    /// The server's DUID (DUID-LL of the gateway MAC), sent as Server-ID.
    pub fn server_duid(&self) -> &Duid {
        &self.server_duid
    }

    /// The delegated prefix, if prefix delegation is on.
    pub fn delegated(&self) -> Option<Ipv6Net> {
        self.pd.map(|p| p.delegated)
    }

    /// The domain search list, as names.
    pub(crate) fn search(&self) -> &[Name] {
        &self.search
    }

    /// Addresses in the IA_NA range.
    pub fn na_range_len(&self) -> u64 {
        self.settings.iid_end - self.settings.iid_start + 1
    }

    /// Prefixes that may be delegated (the LAN's slot excluded); 0 without delegation.
    pub fn pd_slots(&self) -> u64 {
        self.pd
            .map_or(0, |p| p.slots - u64::from(p.lan_slot.is_some()))
    }

    /// The `n`th address of the IA_NA range (`n < na_range_len()`).
    pub(crate) fn na_address(&self, n: u64) -> Ipv6Addr {
        let iid = self.settings.iid_start.saturating_add(n);
        Ipv6Addr::from(u128::from(self.settings.lan.network()) | u128::from(iid))
    }

    /// The `n`th delegable prefix slot, `None` for the LAN's slot or past the end.
    pub(crate) fn pd_prefix(&self, n: u64) -> Option<Ipv6Net> {
        let plan = self.pd?;
        if n >= plan.slots || Some(n) == plan.lan_slot {
            return None;
        }
        let base = u128::from(plan.delegated.network());
        let ip = Ipv6Addr::from(base | (u128::from(n) << (128 - u32::from(plan.len))));
        Ipv6Net::new(ip, plan.len).ok()
    }

    /// Number of slots of the delegated prefix (the LAN's included).
    pub(crate) fn pd_slot_count(&self) -> u64 {
        self.pd.map_or(0, |p| p.slots)
    }

    /// True if this configuration lets an IA hold `lease`.
    pub fn allows(&self, lease: &Lease) -> bool {
        match *lease {
            Lease::Address(ip) => {
                let iid = u64::try_from(u128::from(ip) & u128::from(u64::MAX)).unwrap_or(0);
                self.settings.lan.contains(&ip)
                    && (self.settings.iid_start..=self.settings.iid_end).contains(&iid)
                    && Some(ip) != self.settings.gateway
            }
            Lease::Prefix(net) => self.pd.is_some_and(|p| {
                net.prefix_len() == p.len
                    && net == net.trunc()
                    && p.delegated.contains(&net)
                    && Some(slot_of(p.delegated, p.len, net.network())) != p.lan_slot
            }),
        }
    }

    /// True if `lease` belongs to this home's link at all (RFC 8415 section 18.3.4's
    /// "appropriate for the link"): an address of the LAN, or a prefix inside the delegated
    /// prefix.
    pub fn on_link(&self, lease: &Lease) -> bool {
        match *lease {
            Lease::Address(ip) => self.settings.lan.contains(&ip),
            Lease::Prefix(net) => self.pd.is_some_and(|p| p.delegated.contains(&net)),
        }
    }

    /// How many leases of `kind` the configuration has room for.
    pub fn capacity(&self, kind: IaKind) -> u64 {
        match kind {
            IaKind::Na => self.na_range_len() - u64::from(self.gateway_in_range()),
            IaKind::Pd => self.pd_slots(),
        }
    }

    fn gateway_in_range(&self) -> bool {
        self.settings
            .gateway
            .is_some_and(|gw| self.in_iid_range(gw))
    }

    fn in_iid_range(&self, ip: Ipv6Addr) -> bool {
        let iid = u64::try_from(u128::from(ip) & u128::from(u64::MAX)).unwrap_or(0);
        (self.settings.iid_start..=self.settings.iid_end).contains(&iid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Dhcp6Settings {
        Dhcp6Settings::new(
            "2001:db8:0:100::/64".parse().expect("lan"),
            Some("2001:db8:0:100::/56".parse().expect("delegated")),
            MacAddr([2, 0, 0x5e, 0x10, 0, 1]),
        )
    }

    fn key_of(s: Dhcp6Settings) -> &'static str {
        Dhcp6Config::try_from(s).expect_err("invalid").key
    }

    #[test]
    fn defaults_are_valid_and_skip_the_lan_slot() {
        let c = Dhcp6Config::try_from(settings()).expect("valid");
        assert_eq!(c.na_range_len(), 4096);
        assert_eq!(c.pd_slots(), 15);
        assert_eq!(c.pd_prefix(0), None, "the LAN's /60");
        assert_eq!(
            c.pd_prefix(1),
            Some("2001:db8:0:110::/60".parse().expect("net"))
        );
        assert_eq!(
            c.pd_prefix(15),
            Some("2001:db8:0:1f0::/60".parse().expect("net"))
        );
        assert_eq!(c.pd_prefix(16), None);
        assert_eq!(
            c.na_address(0),
            "2001:db8:0:100::1000".parse::<Ipv6Addr>().expect("ip")
        );
        assert!(c.allows(&Lease::Address(c.na_address(4095))));
        assert!(!c.allows(&Lease::Address("2001:db8:0:100::2000".parse().expect("ip"))));
        assert!(!c.allows(&Lease::Prefix("2001:db8:0:100::/60".parse().expect("net"))));
        assert!(!c.allows(&Lease::Prefix("2001:db8:0:110::/64".parse().expect("net"))));
        assert!(c.on_link(&Lease::Address("2001:db8:0:100::1".parse().expect("ip"))));
        assert!(!c.on_link(&Lease::Address("2001:db8:0:101::1".parse().expect("ip"))));
        assert_eq!(
            c.server_duid().as_bytes(),
            &[0, 3, 0, 1, 2, 0, 0x5e, 0x10, 0, 1]
        );
    }

    #[test]
    fn a_lan_outside_the_delegated_prefix_leaves_every_slot() {
        let mut s = settings();
        s.delegated = Some("2001:db8:1::/56".parse().expect("net"));
        s.pd_len = 64;
        let c = Dhcp6Config::try_from(s).expect("valid");
        assert_eq!(c.pd_slots(), 256);
        assert_eq!(
            c.pd_prefix(0),
            Some("2001:db8:1::/64".parse().expect("net"))
        );
    }

    #[test]
    fn settings_for_a_home_prefix_of_any_length() {
        let mac = MacAddr([2, 0, 0x5e, 0x10, 0, 1]);
        for (prefix, pd_len, slots) in [
            ("2001:db8:100::/48", 60, 4095),
            ("2001:db8:0:100::/56", 60, 15),
            ("2001:db8:0:100::/60", 64, 15),
            ("2001:db8:0:100::/63", 64, 1),
            ("2001:db8:0:100::/64", 64, 0),
        ] {
            let s = Dhcp6Settings::for_home(prefix.parse().expect("net"), mac);
            assert_eq!(s.lan.prefix_len(), 64, "{prefix}");
            assert!(s.lan.network() == s.delegated.expect("set").network());
            let c = Dhcp6Config::try_from(s.clone()).expect("valid");
            assert_eq!((s.pd_len, c.pd_slots()), (pd_len, slots), "{prefix}");
            assert_eq!(c.delegated().is_some(), slots > 0, "{prefix}");
        }
    }

    #[test]
    fn the_gateway_is_never_handed_out() {
        let mut s = settings();
        s.gateway = Some("2001:db8:0:100::1000".parse().expect("ip"));
        let c = Dhcp6Config::try_from(s).expect("valid");
        assert!(!c.allows(&Lease::Address("2001:db8:0:100::1000".parse().expect("ip"))));
        assert_eq!(c.capacity(IaKind::Na), 4095);
    }

    #[test]
    fn bad_settings_name_their_key() {
        let mut s = settings();
        s.lan = "2001:db8::/56".parse().expect("net");
        assert_eq!(key_of(s), "lan");
        let mut s = settings();
        s.lan = "fe80::/64".parse().expect("net");
        assert_eq!(key_of(s), "lan");
        let mut s = settings();
        s.iid_start = 0;
        assert_eq!(key_of(s), "iid_start");
        let mut s = settings();
        s.iid_end = 0x2_0000;
        assert_eq!(key_of(s), "iid_end");
        let mut s = settings();
        (s.iid_start, s.iid_end) = (0xfdff_ffff_ffff_ff00, 0xfdff_ffff_ffff_ffff);
        assert_eq!(key_of(s), "iid_end");
        let mut s = settings();
        s.gateway = Some("2001:db8::1".parse().expect("ip"));
        assert_eq!(key_of(s), "gateway");
        let mut s = settings();
        s.pd_len = 56;
        assert_eq!(key_of(s), "pd_len");
        let mut s = settings();
        s.pd_len = 72;
        assert_eq!(key_of(s), "pd_len");
        let mut s = settings();
        s.delegated = Some("2001:db8:0:101::/64".parse().expect("net"));
        assert_eq!(key_of(s), "delegated");
        let mut s = settings();
        s.delegated = Some("2001:db8::/32".parse().expect("net"));
        s.pd_len = 64;
        assert_eq!(key_of(s), "pd_len");
        let mut s = settings();
        s.t1_secs = s.t2_secs + 1;
        assert_eq!(key_of(s), "t1_secs");
        let mut s = settings();
        s.valid_secs = u32::MAX;
        assert_eq!(key_of(s), "valid_secs");
        let mut s = settings();
        s.preferred_secs = s.valid_secs + 1;
        assert_eq!(key_of(s), "preferred_secs");
        let mut s = settings();
        s.dns_servers = vec!["ff02::1".parse().expect("ip")];
        assert_eq!(key_of(s), "dns_servers");
        let mut s = settings();
        s.domain_search = vec!["bad..name".into()];
        assert_eq!(key_of(s), "domain_search");
        let mut s = settings();
        s.max_leases_per_client = 0;
        assert_eq!(key_of(s), "max_leases_per_client");
        let mut s = settings();
        s.server_mac = MacAddr::BROADCAST;
        let e = Dhcp6Config::try_from(s).expect_err("invalid");
        assert_eq!(
            e.to_string(),
            "DHCPv6 setting server_mac = ff:ff:ff:ff:ff:ff: not a unicast MAC"
        );
    }
}
