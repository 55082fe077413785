//! Small value types shared by the DHCP engine: MAC addresses, client identities, time.

use std::fmt;
use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A home (subscriber) as vgd numbers it; the same id the fast-path maps use.
pub type HomeId = nerg_abi::SubscriberId;

/// An Ethernet MAC address.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    /// The broadcast address ff:ff:ff:ff:ff:ff.
    pub const BROADCAST: MacAddr = MacAddr([0xff; 6]);

    /// The six bytes.
    pub const fn octets(self) -> [u8; 6] {
        self.0
    }

    /// True for an individual (not group) address that is not all zeros: what a DHCP
    /// client's `chaddr` must be.
    pub const fn is_unicast(self) -> bool {
        let b = self.0;
        b[0] & 0x01 == 0
            && !(b[0] == 0 && b[1] == 0 && b[2] == 0 && b[3] == 0 && b[4] == 0 && b[5] == 0)
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

impl fmt::Debug for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Why a string is not a MAC address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("expected six hex octets separated by ':' or '-' (like 02:00:5e:10:00:01)")]
pub struct MacParseError;

impl FromStr for MacAddr {
    type Err = MacParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let sep = if s.contains('-') { '-' } else { ':' };
        let mut out = [0u8; 6];
        let mut parts = s.split(sep);
        for byte in &mut out {
            let part = parts.next().ok_or(MacParseError)?;
            if part.is_empty() || part.len() > 2 || !part.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(MacParseError);
            }
            *byte = u8::from_str_radix(part, 16).map_err(|_| MacParseError)?;
        }
        if parts.next().is_some() {
            return Err(MacParseError);
        }
        Ok(MacAddr(out))
    }
}

impl Serialize for MacAddr {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for MacAddr {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Who a lease belongs to (RFC 2131 section 4.2): the client identifier (option 61) when the
/// client sends one, otherwise its hardware address.
///
/// An option 61 of type 1 (Ethernet) whose address equals `chaddr` names the same thing as the
/// hardware address, so it is folded into [`ClientId::Mac`]: a device that sends option 61 in
/// one stage of its life (udhcpc, an OS) and not in another (PXE firmware, dhclient) keeps one
/// identity and one address.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientId {
    /// Identified by its hardware address (no option 61, or option 61 = type 1 + `chaddr`).
    Mac(MacAddr),
    /// Identified by the bytes of option 61 (type byte included), e.g. an RFC 4361 DUID.
    Opaque(#[serde(with = "hex_bytes")] Vec<u8>),
}

impl ClientId {
    /// The identity of a client with hardware address `mac` that sent option 61 = `option61`.
    pub fn new(mac: MacAddr, option61: Option<&[u8]>) -> ClientId {
        match option61 {
            None => ClientId::Mac(mac),
            Some([1, rest @ ..]) if rest == mac.0 => ClientId::Mac(mac),
            Some(bytes) => ClientId::Opaque(bytes.to_vec()),
        }
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientId::Mac(mac) => write!(f, "mac {mac}"),
            ClientId::Opaque(bytes) => {
                f.write_str("id ")?;
                for b in bytes {
                    write!(f, "{b:02x}")?;
                }
                Ok(())
            }
        }
    }
}

impl fmt::Debug for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Bytes as a string of hex digits in serde (`#[serde(with = ...)]`); shared with DHCPv6.
pub(crate) mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        let mut text = String::with_capacity(bytes.len() * 2);
        for b in bytes {
            text.push_str(&format!("{b:02x}"));
        }
        serializer.serialize_str(&text)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(deserializer)?;
        if text.len() % 2 != 0 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(serde::de::Error::custom(
                "expected an even number of hex digits",
            ));
        }
        (0..text.len())
            .step_by(2)
            .map(|i| {
                text.get(i..i + 2)
                    .and_then(|pair| u8::from_str_radix(pair, 16).ok())
                    .ok_or_else(|| serde::de::Error::custom("expected hex digits"))
            })
            .collect()
    }
}

/// A point in time as whole seconds since the UNIX epoch.
///
/// The engine never reads a clock: the caller passes `now` into every call. UNIX seconds rather
/// than a monotonic `Instant` because lease expiries are persisted and must mean the same thing
/// after a restart or a reboot (an `Instant` does not survive either).
#[derive(
    Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Debug, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct UnixTime(pub u64);

impl UnixTime {
    /// `secs` seconds after the epoch.
    pub const fn from_secs(secs: u64) -> UnixTime {
        UnixTime(secs)
    }

    /// Seconds since the epoch.
    pub const fn as_secs(self) -> u64 {
        self.0
    }

    /// Converts a wall-clock reading taken by the caller (times before 1970 become 0).
    pub fn from_system_time(time: SystemTime) -> UnixTime {
        UnixTime(time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()))
    }

    /// This time plus `secs` seconds (saturating).
    pub const fn plus(self, secs: u64) -> UnixTime {
        UnixTime(self.0.saturating_add(secs))
    }

    /// Seconds from `earlier` to this time, 0 if `earlier` is later.
    pub const fn secs_since(self, earlier: UnixTime) -> u64 {
        self.0.saturating_sub(earlier.0)
    }
}

impl fmt::Display for UnixTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_text_forms() {
        let mac: MacAddr = "02:00:5E:10:00:01".parse().expect("colon form");
        assert_eq!(mac, MacAddr([2, 0, 0x5e, 0x10, 0, 1]));
        assert_eq!(mac.to_string(), "02:00:5e:10:00:01");
        assert_eq!("02-00-5e-10-00-01".parse::<MacAddr>(), Ok(mac));
        for bad in [
            "",
            "02:00:5e:10:00",
            "02:00:5e:10:00:01:02",
            "02:00:5e:10:00:1g",
            "+2:00:5e:10:00:01",
            "020:0:5e:10:00:01",
            "::::::",
        ] {
            assert_eq!(bad.parse::<MacAddr>(), Err(MacParseError), "{bad:?}");
        }
        assert!(mac.is_unicast());
        assert!(!MacAddr::BROADCAST.is_unicast());
        assert!(!MacAddr([0; 6]).is_unicast());
        assert!(!MacAddr([1, 0, 0x5e, 0, 0, 1]).is_unicast());
    }

    #[test]
    fn client_id_folds_ethernet_identifier() {
        let mac = MacAddr([2, 0, 0, 0, 0, 9]);
        assert_eq!(ClientId::new(mac, None), ClientId::Mac(mac));
        assert_eq!(
            ClientId::new(mac, Some(&[1, 2, 0, 0, 0, 0, 9])),
            ClientId::Mac(mac)
        );
        // Another MAC inside option 61 is an opaque identity.
        assert_eq!(
            ClientId::new(mac, Some(&[1, 2, 0, 0, 0, 0, 8])),
            ClientId::Opaque(vec![1, 2, 0, 0, 0, 0, 8])
        );
        assert_eq!(
            ClientId::new(mac, Some(&[0xff, 1, 2])).to_string(),
            "id ff0102"
        );
    }

    #[test]
    fn serde_forms() {
        let id = ClientId::Opaque(vec![0xff, 0, 1]);
        let json = serde_json::to_string(&id).expect("serialize");
        assert_eq!(json, r#"{"opaque":"ff0001"}"#);
        assert_eq!(serde_json::from_str::<ClientId>(&json).expect("parse"), id);
        let mac = ClientId::Mac(MacAddr([2, 0, 0, 0, 0, 1]));
        let json = serde_json::to_string(&mac).expect("serialize");
        assert_eq!(json, r#"{"mac":"02:00:00:00:00:01"}"#);
        assert_eq!(serde_json::from_str::<ClientId>(&json).expect("parse"), mac);
        assert!(serde_json::from_str::<ClientId>(r#"{"opaque":"f"}"#).is_err());
        assert!(serde_json::from_str::<ClientId>(r#"{"opaque":"zz"}"#).is_err());
    }

    #[test]
    fn time_arithmetic_saturates() {
        let t = UnixTime::from_secs(100);
        assert_eq!(t.plus(5), UnixTime(105));
        assert_eq!(UnixTime(u64::MAX).plus(5), UnixTime(u64::MAX));
        assert_eq!(t.secs_since(UnixTime(40)), 60);
        assert_eq!(t.secs_since(UnixTime(400)), 0);
        assert_eq!(UnixTime::from_system_time(UNIX_EPOCH), UnixTime(0));
    }
}
