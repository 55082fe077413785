//! Router advertisements: when to send them ([`RaSchedule`], RFC 4861 §6.2.4, §6.2.6) and
//! what they say ([`ra_frame`], [`final_ra_frame`]).
//!
//! An RA carries the gateway's SLLA, the MTU option with the LSL's MTU (RFC 4861 §4.6.4),
//! the LAN /64 with L and A set (on-link, SLAAC), and, when configured, RDNSS and DNSSL
//! (RFC 8106 §5). smoltcp's `NdiscRepr::RouterAdvert` writes the header and the first three
//! options; it has no RDNSS or DNSSL (they would parse as `Unknown`), so those two are
//! written here by hand, after it, before the checksum.

use std::net::Ipv6Addr;

use lsl::Encap;
use lsl::encap::EncapError;
use lsl::smoltcp::time::Duration;
use lsl::smoltcp::wire::{
    EthernetAddress, NdiscPrefixInfoFlags, NdiscPrefixInformation, NdiscRepr, NdiscRouterFlags,
    RawHardwareAddress,
};

use super::wire::{ALL_NODES, Addressing, ND_HOP_LIMIT, copy, icmpv6_frame, multicast_mac};
use super::{Home6, Home6Error};

/// MAX_INITIAL_RTR_ADVERTISEMENTS (RFC 4861 §10).
pub const MAX_INITIAL_RTR_ADVERTISEMENTS: u8 = 3;
/// MAX_INITIAL_RTR_ADVERT_INTERVAL, in milliseconds (RFC 4861 §10: 16 s).
pub const MAX_INITIAL_RTR_ADVERT_INTERVAL_MS: u64 = 16_000;
/// MIN_DELAY_BETWEEN_RAS, in milliseconds (RFC 4861 §10: 3 s).
pub const MIN_DELAY_BETWEEN_RAS_MS: u64 = 3_000;
/// MAX_RA_DELAY_TIME, in milliseconds (RFC 4861 §10: 0.5 s).
pub const MAX_RA_DELAY_TIME_MS: u64 = 500;

/// The RDNSS option's type (RFC 8106 §5.1).
const OPT_RDNSS: u8 = 25;
/// The DNSSL option's type (RFC 8106 §5.2).
const OPT_DNSSL: u8 = 31;
/// The RA's fixed part: type, code, checksum, hop limit, flags, lifetime, reachable and
/// retransmission times (RFC 4861 §4.2): what smoltcp's `payload_mut` starts after.
const RA_HEADER_LEN: usize = 16;
/// An RDNSS or DNSSL option's header: type, length, reserved, lifetime.
const DNS_OPT_HEADER: usize = 8;

/// MinRtrAdvInterval and MaxRtrAdvInterval, in seconds (RFC 4861 §6.2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RaIntervals {
    /// MinRtrAdvInterval: at least 3, at most 0.75 x the maximum.
    pub min_s: u32,
    /// MaxRtrAdvInterval: 4 to 1800.
    pub max_s: u32,
}

impl Default for RaIntervals {
    /// RFC 4861 §6.2.1's defaults: 600 s, and a third of it (200 s).
    fn default() -> Self {
        RaIntervals {
            min_s: 200,
            max_s: 600,
        }
    }
}

impl RaIntervals {
    pub(super) fn validate(&self) -> Result<(), Home6Error> {
        if !(4..=1800).contains(&self.max_s) {
            return Err(Home6Error::Ra("max_interval"));
        }
        if self.min_s < 3 || u64::from(self.min_s) * 4 > u64::from(self.max_s) * 3 {
            return Err(Home6Error::Ra("min_interval"));
        }
        Ok(())
    }
}

/// When a home's next multicast RA goes out. Unsolicited RAs start with
/// [`MAX_INITIAL_RTR_ADVERTISEMENTS`] at most [`MAX_INITIAL_RTR_ADVERT_INTERVAL_MS`] apart,
/// then come uniformly at random in [MinRtrAdvInterval, MaxRtrAdvInterval] (RFC 4861
/// §6.2.4). A solicitation without a unicast answer brings the next one forward to a random
/// time up to [`MAX_RA_DELAY_TIME_MS`] away, but never closer than
/// [`MIN_DELAY_BETWEEN_RAS_MS`] to the last (§6.2.6). The randomness is a xorshift generator
/// from the caller's seed, so that tests are deterministic and homes do not synchronise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RaSchedule {
    intervals: RaIntervals,
    /// When the next multicast RA is due.
    next_ms: u64,
    /// When the last one went out.
    last_ms: Option<u64>,
    /// Multicast RAs sent so far, up to the initial count.
    sent: u8,
    /// The generator's state (never zero).
    rng: u64,
}

impl RaSchedule {
    /// A schedule for a home that starts advertising at `now_ms`: the first RA is due then.
    pub fn new(intervals: RaIntervals, now_ms: u64, seed: u64) -> RaSchedule {
        RaSchedule {
            intervals,
            next_ms: now_ms,
            last_ms: None,
            sent: 0,
            // Mixed with the golden ratio so that small seeds differ in many bits; the low
            // bit set because xorshift's state must never be zero.
            rng: seed ^ 0x9e37_79b9_7f4a_7c15 | 1,
        }
    }

    /// When the next multicast RA is due (for the caller's timer).
    pub fn next_ms(&self) -> u64 {
        self.next_ms
    }

    /// Whether a multicast RA is due at `now_ms`; if so, the caller sends [`ra_frame`] now
    /// and the schedule moves on to the next one.
    pub fn poll(&mut self, now_ms: u64) -> bool {
        if now_ms < self.next_ms {
            return false;
        }
        self.sent = self.sent.saturating_add(1);
        self.last_ms = Some(now_ms);
        let mut interval = self.random_in(
            u64::from(self.intervals.min_s) * 1000,
            u64::from(self.intervals.max_s) * 1000,
        );
        if self.sent < MAX_INITIAL_RTR_ADVERTISEMENTS {
            interval = interval.min(MAX_INITIAL_RTR_ADVERT_INTERVAL_MS);
        }
        self.next_ms = now_ms.saturating_add(interval);
        true
    }

    /// An RS to be answered by multicast at `now_ms`: brings the next RA forward if that is
    /// sooner (§6.2.6) and returns when it is due.
    pub fn solicited(&mut self, now_ms: u64) -> u64 {
        let delay = self.random_in(0, MAX_RA_DELAY_TIME_MS);
        let mut at = now_ms.saturating_add(delay);
        if let Some(last) = self.last_ms
            && at < last.saturating_add(MIN_DELAY_BETWEEN_RAS_MS)
        {
            at = last
                .saturating_add(MIN_DELAY_BETWEEN_RAS_MS)
                .saturating_add(delay);
        }
        self.next_ms = self.next_ms.min(at);
        self.next_ms
    }

    /// A uniformly distributed value in `[low, high]` (xorshift64*, then a multiply-shift
    /// reduction whose bias is below 2^-32 for these ranges).
    fn random_in(&mut self, low: u64, high: u64) -> u64 {
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        let value = x.wrapping_mul(0x2545_f491_4f6c_dd1d);
        let span = high.saturating_sub(low).saturating_add(1);
        let offset = ((u128::from(value) * u128::from(span)) >> 64) as u64;
        low.saturating_add(offset)
    }
}

/// The home's multicast RA (to ff02::1), in `encap` (the home's LSL, as the caller sends
/// into it).
pub fn ra_frame(home: &Home6, encap: &Encap) -> Result<Vec<u8>, EncapError> {
    let inner = ra_inner(home, multicast_mac(ALL_NODES), ALL_NODES, false)
        .ok_or(EncapError::TooLong { len: usize::MAX })?;
    encap.encapsulate(&inner)
}

/// The RA for a home being deleted (RFC 4861 §6.2.5): router lifetime 0, so hosts drop the
/// vG as a default router; the prefix deprecated (preferred lifetime 0, valid lifetime 0,
/// which hosts read as two hours, RFC 4862 §5.5.3 (e)) and the DNS options' lifetimes 0
/// (RFC 8106 §5.1: remove). The caller sends it up to three times
/// (MAX_FINAL_RTR_ADVERTISEMENTS) before removing the home.
pub fn final_ra_frame(home: &Home6, encap: &Encap) -> Result<Vec<u8>, EncapError> {
    let inner = ra_inner(home, multicast_mac(ALL_NODES), ALL_NODES, true)
        .ok_or(EncapError::TooLong { len: usize::MAX })?;
    encap.encapsulate(&inner)
}

/// The inner RA frame to `dst`; `None` only if the configuration makes it too long for one
/// packet (which [`Home6::validate`] rules out).
pub(super) fn ra_inner(
    home: &Home6,
    dst_mac: EthernetAddress,
    dst: Ipv6Addr,
    last: bool,
) -> Option<Vec<u8>> {
    let ra = &home.ra;
    let mut flags = NdiscRouterFlags::empty();
    flags.set(NdiscRouterFlags::MANAGED, ra.managed);
    flags.set(NdiscRouterFlags::OTHER, ra.other);
    let (router_lifetime, valid, preferred) = if last {
        (0, 0, 0)
    } else {
        (ra.router_lifetime, ra.valid_lifetime, ra.preferred_lifetime)
    };
    let repr = NdiscRepr::RouterAdvert {
        hop_limit: ra.cur_hop_limit,
        flags,
        router_lifetime: Duration::from_secs(router_lifetime.into()),
        reachable_time: Duration::ZERO,
        retrans_time: Duration::ZERO,
        lladdr: Some(RawHardwareAddress::from(home.gateway_mac)),
        mtu: Some(home.mtu.into()),
        prefix_info: Some(NdiscPrefixInformation {
            prefix_len: 64,
            flags: NdiscPrefixInfoFlags::ON_LINK | NdiscPrefixInfoFlags::ADDRCONF,
            valid_lifetime: Duration::from_secs(valid.into()),
            preferred_lifetime: Duration::from_secs(preferred.into()),
            prefix: home.lan.network(),
        }),
    };
    let dns = dns_options(home, last);
    let to = Addressing {
        src_mac: home.gateway_mac,
        dst_mac,
        src: home.link_local(),
        dst,
        hop_limit: ND_HOP_LIMIT,
    };
    let fixed = repr.buffer_len();
    icmpv6_frame(&to, fixed + dns.len(), |packet| {
        repr.emit(packet);
        // The options after smoltcp's start past the RA's fixed part (RFC 4861 §4.2).
        if let Some(tail) = packet.payload_mut().get_mut(fixed - RA_HEADER_LEN..) {
            copy(tail, &dns);
        }
    })
}

/// The RDNSS and DNSSL options (RFC 8106 §5.1, §5.2), or nothing when not configured.
fn dns_options(home: &Home6, last: bool) -> Vec<u8> {
    let ra = &home.ra;
    let mut out = Vec::new();
    let servers = &ra.rdnss[..ra.rdnss.len().min(super::MAX_RDNSS)];
    if !servers.is_empty() {
        let lifetime = if last { 0 } else { ra.rdnss_lifetime };
        // Length in 8-byte units: the header and two per address.
        out.push(OPT_RDNSS);
        out.push((1 + 2 * servers.len()) as u8);
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(&lifetime.to_be_bytes());
        for server in servers {
            out.extend_from_slice(&server.octets());
        }
    }
    let mut names: Vec<u8> = Vec::new();
    for domain in &ra.dnssl {
        match encode_domain(domain) {
            Some(name) if names.len() + name.len() <= super::MAX_DNSSL_BYTES => {
                names.extend_from_slice(&name)
            }
            _ => {}
        }
    }
    if !names.is_empty() {
        let lifetime = if last { 0 } else { ra.dnssl_lifetime };
        let padded = (DNS_OPT_HEADER + names.len()).div_ceil(8) * 8;
        out.push(OPT_DNSSL);
        out.push((padded / 8) as u8);
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(&lifetime.to_be_bytes());
        out.extend_from_slice(&names);
        out.resize(out.len() + padded - DNS_OPT_HEADER - names.len(), 0);
    }
    out
}

/// A domain name in DNS wire form without compression (RFC 1035 §3.1, as RFC 8106 §5.2
/// asks): length-prefixed labels and the root's zero. `None` unless every label is 1 to 63
/// letters, digits or hyphens (RFC 1123 §2.1) and the name at most 255 bytes.
pub(super) fn encode_domain(domain: &str) -> Option<Vec<u8>> {
    let name = domain.strip_suffix('.').unwrap_or(domain);
    if name.is_empty() {
        return None;
    }
    let mut out = Vec::with_capacity(name.len() + 2);
    for label in name.split('.') {
        let ok = (1..=63).contains(&label.len())
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if !ok {
            return None;
        }
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
    (out.len() <= 255).then_some(out)
}
