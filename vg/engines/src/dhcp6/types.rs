//! Value types of the DHCPv6 engine: DUIDs, identity associations and the leases they hold.

use std::fmt;
use std::net::Ipv6Addr;

use ipnet::Ipv6Net;
use serde::{Deserialize, Serialize};

use crate::dhcp::{MacAddr, hex_bytes};

/// A DHCP Unique Identifier (RFC 8415 section 11): the bytes of a Client-ID or Server-ID
/// option, type included. Clients are told apart by it; its inner structure is not read.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Duid(#[serde(with = "hex_bytes")] pub Vec<u8>);

/// DUID type 3, DUID-LL (RFC 8415 section 11.4).
const DUID_LL: u16 = 3;
/// Hardware type 1, Ethernet (RFC 826, the IANA ARP hardware types).
const HTYPE_ETHERNET: u16 = 1;

impl Duid {
    /// A DUID-LL (RFC 8415 section 11.4) from an Ethernet address: type 3, hardware type 1,
    /// the six bytes. A server's DUID must stay the same across restarts; derived from the
    /// gateway MAC it does, with no clock and no state.
    pub fn link_layer(mac: MacAddr) -> Duid {
        let mut bytes = Vec::with_capacity(10);
        bytes.extend_from_slice(&DUID_LL.to_be_bytes());
        bytes.extend_from_slice(&HTYPE_ETHERNET.to_be_bytes());
        bytes.extend_from_slice(&mac.octets());
        Duid(bytes)
    }

    /// The bytes, as carried in the option.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Display for Duid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in &self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Duid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Duid({self})")
    }
}

/// The kind of identity association (RFC 8415 section 12): non-temporary addresses or
/// delegated prefixes. Temporary addresses (IA_TA) are not served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IaKind {
    /// IA_NA (option 3): one address of the home's LAN /64 per IA.
    Na,
    /// IA_PD (option 25): one prefix of the home's delegated prefix per IA.
    Pd,
}

impl IaKind {
    /// A short stable name, for a metric label.
    pub const fn label(self) -> &'static str {
        match self {
            IaKind::Na => "ia_na",
            IaKind::Pd => "ia_pd",
        }
    }

    pub(crate) const fn index(self) -> usize {
        match self {
            IaKind::Na => 0,
            IaKind::Pd => 1,
        }
    }
}

/// What one IA holds: an address (IA_NA) or a prefix (IA_PD). The key of a stored record
/// within its home.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Lease {
    /// An address of the LAN /64.
    Address(Ipv6Addr),
    /// A prefix of the delegated prefix (never the LAN /64).
    Prefix(Ipv6Net),
}

impl Lease {
    /// IA_NA for an address, IA_PD for a prefix.
    pub const fn kind(&self) -> IaKind {
        match self {
            Lease::Address(_) => IaKind::Na,
            Lease::Prefix(_) => IaKind::Pd,
        }
    }

    /// The lease as a prefix: an address is a /128.
    pub fn net(&self) -> Ipv6Net {
        match *self {
            Lease::Address(ip) => Ipv6Net::from(ip),
            Lease::Prefix(net) => net,
        }
    }

    /// A key for an ordered store: the network address as a number and the prefix length
    /// (128 for an address), the form vgd's store already keys IPv6 prefixes by. Delegated
    /// prefixes are at most /64, so the two kinds never collide.
    pub fn key(&self) -> (u128, u8) {
        let net = self.net();
        (u128::from(net.network()), net.prefix_len())
    }

    /// The lease of a [`key`](Lease::key); `None` for a length over 128.
    pub fn from_key((network, len): (u128, u8)) -> Option<Lease> {
        let ip = Ipv6Addr::from(network);
        match len {
            128 => Some(Lease::Address(ip)),
            len => Ipv6Net::new(ip, len)
                .ok()
                .map(|net| Lease::Prefix(net.trunc())),
        }
    }
}

impl fmt::Display for Lease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Lease::Address(ip) => write!(f, "{ip}"),
            Lease::Prefix(net) => write!(f, "{net}"),
        }
    }
}

/// Where a client message came from, as the caller saw it on the home's LAN.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Peer {
    /// The Ethernet source address of the frame.
    pub mac: MacAddr,
    /// The IPv6 source address: the client's link-local address (RFC 8415 section 13.1).
    /// The reply goes back to it, and delegated prefixes are routed through it.
    pub link_local: Ipv6Addr,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duid_ll_from_the_gateway_mac() {
        let duid = Duid::link_layer(MacAddr([2, 0, 0x5e, 0x10, 0, 1]));
        assert_eq!(duid.as_bytes(), &[0, 3, 0, 1, 2, 0, 0x5e, 0x10, 0, 1]);
        assert_eq!(duid.to_string(), "0003000102005e100001");
        let json = serde_json::to_string(&duid).expect("serialize");
        assert_eq!(json, r#""0003000102005e100001""#);
        assert_eq!(serde_json::from_str::<Duid>(&json).expect("parse"), duid);
    }

    #[test]
    fn lease_keys_round_trip() {
        let addr = Lease::Address("2001:db8:0:1::1000".parse().expect("address"));
        let prefix = Lease::Prefix("2001:db8:0:10::/60".parse().expect("prefix"));
        for lease in [addr, prefix] {
            assert_eq!(Lease::from_key(lease.key()), Some(lease));
        }
        assert_eq!(addr.kind(), IaKind::Na);
        assert_eq!(prefix.kind(), IaKind::Pd);
        assert_eq!(addr.net().prefix_len(), 128);
        assert_eq!(prefix.key().1, 60);
        assert_eq!(Lease::from_key((prefix.key().0, 129)), None);
        let json = serde_json::to_string(&prefix).expect("serialize");
        assert_eq!(json, r#"{"prefix":"2001:db8:0:10::/60"}"#);
    }
}
