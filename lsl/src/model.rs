//! The identity of a Logical Subscriber Link: which home a frame on the access side belongs
//! to.
//!
//! An [`LslId`] is either a VLAN link (a C-VID, optionally inside an S-tag) or a VXLAN link
//! (a VNI and the peer's VTEP address). It does not name the access interface: a vG that
//! serves several interfaces keys subscribers by `(interface, LslId)`.
//!
//! # Text form
//!
//! One compact grammar serves the config file, the REST API, the CLI, logs and metric labels:
//!
//! | form                     | meaning                                               |
//! |--------------------------|-------------------------------------------------------|
//! | `vlan:100`               | 802.1Q C-tag 100                                      |
//! | `qinq:10.100`            | S-tag 10 (TPID 0x88A8) over C-tag 100                 |
//! | `qinq-9100:10.100`       | S-tag 10 with the legacy TPID 0x9100 over C-tag 100   |
//! | `qinq-8100:10.100`       | two 0x8100 tags (legacy double tagging)               |
//! | `vxlan:5001@192.0.2.10`  | VNI 5001 to/from the VTEP 192.0.2.10                  |
//! | `vxlan:5001@[2001:db8::a]` | the same over IPv6 (brackets optional when parsing) |
//!
//! Serde uses this string form (see [`LslId`]), and [`Vid`] and [`Vni`] serialize as plain
//! numbers. Every error names the offending value.

use core::fmt;
use core::net::IpAddr;
use core::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::wire::vlan::Tpid;
use crate::wire::vxlan::VNI_MAX;

/// A VLAN ID usable for an LSL: 1..=4094 (IEEE 802.1Q reserves 0 and 4095).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "u32", into = "u16")]
pub struct Vid(u16);

impl Vid {
    /// The smallest usable VID.
    pub const MIN: Vid = Vid(1);
    /// The largest usable VID.
    pub const MAX: Vid = Vid(4094);

    /// A VID from its number, if in 1..=4094.
    pub const fn new(value: u16) -> Option<Vid> {
        if value >= Self::MIN.0 && value <= Self::MAX.0 {
            Some(Vid(value))
        } else {
            None
        }
    }

    /// The VID as a number.
    pub const fn get(self) -> u16 {
        self.0
    }
}

/// A number that is not a usable VLAN ID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("VLAN ID {value} is out of range 1..=4094 (0 and 4095 are reserved)")]
pub struct VidError {
    /// The rejected number.
    pub value: u32,
}

impl TryFrom<u16> for Vid {
    type Error = VidError;

    fn try_from(value: u16) -> Result<Vid, VidError> {
        Vid::new(value).ok_or(VidError {
            value: value.into(),
        })
    }
}

impl TryFrom<u32> for Vid {
    type Error = VidError;

    fn try_from(value: u32) -> Result<Vid, VidError> {
        u16::try_from(value)
            .ok()
            .and_then(Vid::new)
            .ok_or(VidError { value })
    }
}

impl From<Vid> for u16 {
    fn from(vid: Vid) -> u16 {
        vid.0
    }
}

impl fmt::Display for Vid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A VXLAN network identifier: 24 bits, 0..=16777215.
///
/// RFC 7348 reserves no value, so 0 is accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "u32", into = "u32")]
pub struct Vni(u32);

impl Vni {
    /// The largest VNI.
    pub const MAX: Vni = Vni(VNI_MAX);

    /// A VNI from its number, if it fits in 24 bits.
    pub const fn new(value: u32) -> Option<Vni> {
        if value <= VNI_MAX {
            Some(Vni(value))
        } else {
            None
        }
    }

    /// The VNI as a number.
    pub const fn get(self) -> u32 {
        self.0
    }
}

/// A number that does not fit in a VNI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("VNI {value} is out of range 0..=16777215 (24 bits)")]
pub struct VniError {
    /// The rejected number.
    pub value: u32,
}

impl TryFrom<u32> for Vni {
    type Error = VniError;

    fn try_from(value: u32) -> Result<Vni, VniError> {
        Vni::new(value).ok_or(VniError { value })
    }
}

impl From<Vni> for u32 {
    fn from(vni: Vni) -> u32 {
        vni.0
    }
}

impl fmt::Display for Vni {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The outer (service) tag of a QinQ LSL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct STag {
    /// The outer tag's TPID: [`Tpid::STag`] (0x88A8) unless the access node uses a legacy one.
    pub tpid: Tpid,
    /// The S-VID.
    pub vid: Vid,
}

/// The identity of a Logical Subscriber Link.
///
/// Serialized (serde) as its [text form](self#text-form), e.g. `"qinq:10.100"`: one TOML
/// string per LSL in the config file, usable as a key of a TOML table or a JSON object, and
/// the same value the REST API, logs and metric labels show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LslId {
    /// An 802.1Q C-tag, optionally inside a QinQ S-tag. The C-tag's TPID is 0x8100.
    Vlan {
        /// The outer tag, for QinQ.
        s_tag: Option<STag>,
        /// The customer VID (the only tag of a single-tagged LSL).
        c_vid: Vid,
    },
    /// A VXLAN tunnel.
    Vxlan {
        /// The VNI carried in both directions.
        vni: Vni,
        /// The peer's VTEP address (for the vG: the BRG's; for the BRG: the vG's).
        vtep: IpAddr,
    },
}

impl LslId {
    /// A single-tagged 802.1Q LSL.
    pub const fn dot1q(c_vid: Vid) -> LslId {
        LslId::Vlan { s_tag: None, c_vid }
    }

    /// A QinQ LSL with the standard S-tag TPID 0x88A8.
    pub const fn qinq(s_vid: Vid, c_vid: Vid) -> LslId {
        LslId::Vlan {
            s_tag: Some(STag {
                tpid: Tpid::STag,
                vid: s_vid,
            }),
            c_vid,
        }
    }

    /// A VXLAN LSL.
    pub const fn vxlan(vni: Vni, vtep: IpAddr) -> LslId {
        LslId::Vxlan { vni, vtep }
    }

    /// What the vG's fast path tells this LSL apart from the others by: its key in the LSL
    /// tables. Two LSLs with one key cannot both be served, whatever else differs (see
    /// [`FastPathKey`]); every uniqueness check on LSLs compares this, never the `LslId`.
    pub const fn fast_path_key(&self) -> FastPathKey {
        match *self {
            LslId::Vlan { s_tag, c_vid } => FastPathKey::Vlan {
                s_vid: match s_tag {
                    Some(s) => Some(s.vid),
                    None => None,
                },
                c_vid,
            },
            LslId::Vxlan { vni, vtep } => FastPathKey::Vxlan { vni, vtep },
        }
    }

    /// Whether every frame of `other` begins with this LSL's tags, and then carries more:
    /// `vlan:N` is a prefix of `qinq-8100:N.C` (outer 0x8100/N, then 0x8100/C), and of no
    /// other LSL. The two cannot share an access interface: a host behind `vlan:N` that sends
    /// frames tagged C itself leaves its BRG with exactly the tags of `qinq-8100:N.C`.
    pub fn is_tag_prefix_of(&self, other: &LslId) -> bool {
        match (self, other) {
            (
                LslId::Vlan { s_tag: None, c_vid },
                LslId::Vlan {
                    s_tag: Some(s_tag), ..
                },
            ) => s_tag.tpid == Tpid::CTag && s_tag.vid == *c_vid,
            _ => false,
        }
    }

    /// The kind keyword of the text form: `vlan`, `qinq`, `qinq-9100`, `qinq-8100` or `vxlan`.
    pub const fn kind(&self) -> &'static str {
        match self {
            LslId::Vlan { s_tag: None, .. } => "vlan",
            LslId::Vlan {
                s_tag: Some(s_tag), ..
            } => match s_tag.tpid {
                Tpid::STag => "qinq",
                Tpid::STagLegacy => "qinq-9100",
                Tpid::CTag => "qinq-8100",
            },
            LslId::Vxlan { .. } => "vxlan",
        }
    }
}

/// An LSL's identity in the vG's fast path ([`LslId::fast_path_key`]): what a frame is
/// looked up by, on one access interface.
///
/// For 802.1Q and QinQ it is the VIDs only. The S-tag's TPID is not part of it: the fast path
/// finds the home by VIDs, then drops a frame whose TPID is not its home's. So
/// `qinq:10.102`, `qinq-9100:10.102` and `qinq-8100:10.102` are one key, and only one of them
/// can be configured; `vlan:102` (no S-VID) is another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FastPathKey {
    /// 802.1Q (`s_vid` none) or QinQ.
    Vlan {
        /// The outer VID of a QinQ LSL.
        s_vid: Option<Vid>,
        /// The C-VID.
        c_vid: Vid,
    },
    /// VXLAN: the VNI and the BRG's VTEP (IPv4 and IPv6 have tables of their own).
    Vxlan {
        /// The VNI.
        vni: Vni,
        /// The peer's VTEP.
        vtep: IpAddr,
    },
}

impl fmt::Display for LslId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = self.kind();
        match self {
            LslId::Vlan { s_tag: None, c_vid } => write!(f, "{kind}:{c_vid}"),
            LslId::Vlan {
                s_tag: Some(s_tag),
                c_vid,
            } => write!(f, "{kind}:{}.{c_vid}", s_tag.vid),
            LslId::Vxlan {
                vni,
                vtep: IpAddr::V4(vtep),
            } => write!(f, "{kind}:{vni}@{vtep}"),
            LslId::Vxlan {
                vni,
                vtep: IpAddr::V6(vtep),
            } => write!(f, "{kind}:{vni}@[{vtep}]"),
        }
    }
}

/// The most characters of a rejected input an error repeats; the rest is summarised (a
/// 900 KB "LSL" must not come back whole in an API answer or a log line).
pub const EXCERPT_CHARS: usize = 48;

/// `text` as an error message quotes it: the whole of it when short, else its first
/// [`EXCERPT_CHARS`] characters and how long it was. Used by every error that echoes input.
pub fn excerpt(text: &str) -> String {
    excerpt_to(text, EXCERPT_CHARS)
}

/// [`excerpt`] with room for `chars` characters (a whole message rather than one value).
pub fn excerpt_to(text: &str, chars: usize) -> String {
    match text.char_indices().nth(chars) {
        None => text.to_owned(),
        Some((cut, _)) => format!("{}... ({} bytes)", &text[..cut], text.len()),
    }
}

/// Why a string is not an [`LslId`]. Each variant carries the input ([`excerpt`]ed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseLslError {
    /// The string does not have the `KIND:VALUE` shape of its kind.
    #[error(
        "invalid LSL {input:?}: expected \"vlan:C\", \"qinq:S.C\", \"qinq-9100:S.C\", \
         \"qinq-8100:S.C\" or \"vxlan:VNI@VTEP\""
    )]
    Syntax {
        /// The rejected string.
        input: String,
    },
    /// The part before `:` is not a known kind.
    #[error(
        "invalid LSL {input:?}: unknown kind {kind:?} (expected vlan, qinq, qinq-9100, \
         qinq-8100 or vxlan)"
    )]
    UnknownKind {
        /// The rejected string.
        input: String,
        /// The unknown kind.
        kind: String,
    },
    /// A VID or VNI is not a decimal number.
    #[error("invalid LSL {input:?}: {field} {value:?} is not a decimal number")]
    NotANumber {
        /// The rejected string.
        input: String,
        /// Which number: `C-VID`, `S-VID` or `VNI`.
        field: &'static str,
        /// The text in its place.
        value: String,
    },
    /// A VID is out of range.
    #[error("invalid LSL {input:?}: bad {field}")]
    Vid {
        /// The rejected string.
        input: String,
        /// Which VID: `C-VID` or `S-VID`.
        field: &'static str,
        /// The range error, naming the value.
        #[source]
        source: VidError,
    },
    /// The VNI is out of range.
    #[error("invalid LSL {input:?}: bad VNI")]
    Vni {
        /// The rejected string.
        input: String,
        /// The range error, naming the value.
        #[source]
        source: VniError,
    },
    /// The VTEP is not an IP address.
    #[error("invalid LSL {input:?}: VTEP {value:?} is not an IP address")]
    NotAnAddress {
        /// The rejected string.
        input: String,
        /// The text in the address's place.
        value: String,
    },
    /// The VTEP is an address no tunnel endpoint can have.
    #[error(
        "invalid LSL {input:?}: VTEP {addr} is not a unicast address \
         (unspecified, broadcast or multicast)"
    )]
    VtepNotUnicast {
        /// The rejected string.
        input: String,
        /// The rejected address.
        addr: IpAddr,
    },
}

/// Parses the decimal digits of `value` (nothing else: no sign, no blanks).
fn parse_number(input: &str, field: &'static str, value: &str) -> Result<u32, ParseLslError> {
    let not_a_number = || ParseLslError::NotANumber {
        input: excerpt(input),
        field,
        value: excerpt(value),
    };
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(not_a_number());
    }
    value.parse().map_err(|_| not_a_number())
}

fn parse_vid(input: &str, field: &'static str, value: &str) -> Result<Vid, ParseLslError> {
    Vid::try_from(parse_number(input, field, value)?).map_err(|source| ParseLslError::Vid {
        input: excerpt(input),
        field,
        source,
    })
}

fn is_unicast(addr: IpAddr) -> bool {
    match addr {
        IpAddr::V4(v4) => !(v4.is_unspecified() || v4.is_broadcast() || v4.is_multicast()),
        IpAddr::V6(v6) => !(v6.is_unspecified() || v6.is_multicast()),
    }
}

/// Parses the text form. The VTEP of a `vxlan:` LSL must be a unicast address; the
/// constructors do not check that, parsing (and so the config file and the API) does.
impl FromStr for LslId {
    type Err = ParseLslError;

    fn from_str(input: &str) -> Result<LslId, ParseLslError> {
        let syntax = || ParseLslError::Syntax {
            input: excerpt(input),
        };
        let (kind, value) = input.split_once(':').ok_or_else(syntax)?;
        let s_tpid = match kind {
            "vlan" => {
                return Ok(LslId::dot1q(parse_vid(input, "C-VID", value)?));
            }
            "vxlan" => {
                let (vni, vtep) = value.split_once('@').ok_or_else(syntax)?;
                let vni = Vni::try_from(parse_number(input, "VNI", vni)?).map_err(|source| {
                    ParseLslError::Vni {
                        input: excerpt(input),
                        source,
                    }
                })?;
                let bare = vtep
                    .strip_prefix('[')
                    .and_then(|v| v.strip_suffix(']'))
                    .filter(|v| v.contains(':'))
                    .unwrap_or(vtep);
                let addr: IpAddr = bare.parse().map_err(|_| ParseLslError::NotAnAddress {
                    input: excerpt(input),
                    value: excerpt(vtep),
                })?;
                if !is_unicast(addr) {
                    return Err(ParseLslError::VtepNotUnicast {
                        input: excerpt(input),
                        addr,
                    });
                }
                return Ok(LslId::vxlan(vni, addr));
            }
            "qinq" => Tpid::STag,
            "qinq-9100" => Tpid::STagLegacy,
            "qinq-8100" => Tpid::CTag,
            _ if kind.is_empty() => return Err(syntax()),
            _ => {
                return Err(ParseLslError::UnknownKind {
                    input: excerpt(input),
                    kind: excerpt(kind),
                });
            }
        };
        let (s_vid, c_vid) = value.split_once('.').ok_or_else(syntax)?;
        Ok(LslId::Vlan {
            s_tag: Some(STag {
                tpid: s_tpid,
                vid: parse_vid(input, "S-VID", s_vid)?,
            }),
            c_vid: parse_vid(input, "C-VID", c_vid)?,
        })
    }
}

impl Serialize for LslId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for LslId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<LslId, D::Error> {
        struct Visitor;

        impl serde::de::Visitor<'_> for Visitor {
            type Value = LslId;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "an LSL such as \"vlan:100\", \"qinq:10.100\" or \"vxlan:5001@192.0.2.10\"",
                )
            }

            fn visit_str<E: serde::de::Error>(self, value: &str) -> Result<LslId, E> {
                // Serde formats only the top error; carry the range error's text along.
                value.parse().map_err(|err: ParseLslError| match &err {
                    ParseLslError::Vid { source, .. } => E::custom(format_args!("{err}: {source}")),
                    ParseLslError::Vni { source, .. } => E::custom(format_args!("{err}: {source}")),
                    _ => E::custom(err),
                })
            }
        }

        deserializer.deserialize_str(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::{Ipv4Addr, Ipv6Addr};
    use std::collections::BTreeMap;

    fn vid(value: u16) -> Vid {
        Vid::new(value).expect("valid VID")
    }

    fn vni(value: u32) -> Vni {
        Vni::new(value).expect("valid VNI")
    }

    #[test]
    fn vid_range() {
        assert_eq!(Vid::try_from(0u16), Err(VidError { value: 0 }));
        assert_eq!(Vid::try_from(1u16).map(Vid::get), Ok(1));
        assert_eq!(Vid::try_from(4094u16).map(u16::from), Ok(4094));
        assert_eq!(Vid::try_from(4095u16), Err(VidError { value: 4095 }));
        assert_eq!(Vid::try_from(70000u32), Err(VidError { value: 70000 }));
        assert_eq!(Vid::MIN.get(), 1);
        assert_eq!(Vid::MAX.get(), 4094);
        assert_eq!(
            VidError { value: 4095 }.to_string(),
            "VLAN ID 4095 is out of range 1..=4094 (0 and 4095 are reserved)"
        );
    }

    #[test]
    fn vni_range() {
        assert_eq!(Vni::try_from(0).map(Vni::get), Ok(0));
        assert_eq!(Vni::try_from(0xff_ffff).map(u32::from), Ok(16_777_215));
        assert_eq!(
            Vni::try_from(0x100_0000),
            Err(VniError { value: 16_777_216 })
        );
        assert_eq!(Vni::MAX.get(), VNI_MAX);
        assert_eq!(
            VniError { value: 16_777_216 }.to_string(),
            "VNI 16777216 is out of range 0..=16777215 (24 bits)"
        );
    }

    #[test]
    fn text_form_round_trips() {
        let cases = [
            (LslId::dot1q(vid(100)), "vlan:100"),
            (LslId::qinq(vid(10), vid(100)), "qinq:10.100"),
            (
                LslId::Vlan {
                    s_tag: Some(STag {
                        tpid: Tpid::STagLegacy,
                        vid: vid(4094),
                    }),
                    c_vid: vid(1),
                },
                "qinq-9100:4094.1",
            ),
            (
                LslId::Vlan {
                    s_tag: Some(STag {
                        tpid: Tpid::CTag,
                        vid: vid(20),
                    }),
                    c_vid: vid(30),
                },
                "qinq-8100:20.30",
            ),
            (
                LslId::vxlan(vni(5001), Ipv4Addr::new(192, 0, 2, 10).into()),
                "vxlan:5001@192.0.2.10",
            ),
            (
                LslId::vxlan(
                    vni(0),
                    Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0xa).into(),
                ),
                "vxlan:0@[2001:db8::a]",
            ),
        ];
        for (lsl, text) in cases {
            assert_eq!(lsl.to_string(), text);
            assert_eq!(text.parse::<LslId>(), Ok(lsl), "{text}");
        }
    }

    #[test]
    fn lenient_inputs() {
        assert_eq!(
            "vxlan:7@2001:db8::a"
                .parse::<LslId>()
                .map(|l| l.to_string()),
            Ok("vxlan:7@[2001:db8::a]".to_owned())
        );
        assert_eq!(
            "vlan:0100".parse::<LslId>(),
            Ok(LslId::dot1q(vid(100))),
            "leading zeros are only formatting"
        );
    }

    #[test]
    fn errors_name_the_value() {
        let cases = [
            ("", "expected \"vlan:C\""),
            ("vlan", "expected \"vlan:C\""),
            (":100", "expected \"vlan:C\""),
            ("qinq:10", "expected \"vlan:C\""),
            ("vxlan:5001", "expected \"vlan:C\""),
            ("gre:5", "unknown kind \"gre\""),
            ("VLAN:100", "unknown kind \"VLAN\""),
            ("vlan:0", "bad C-VID"),
            ("vlan:4095", "bad C-VID"),
            ("qinq:0.100", "bad S-VID"),
            ("qinq:10.4095", "bad C-VID"),
            ("vlan:+5", "C-VID \"+5\" is not a decimal number"),
            ("vlan: 5", "C-VID \" 5\" is not a decimal number"),
            (
                "vlan:99999999999",
                "C-VID \"99999999999\" is not a decimal number",
            ),
            ("qinq:10.", "C-VID \"\" is not a decimal number"),
            ("qinq:x.1", "S-VID \"x\" is not a decimal number"),
            ("vxlan:16777216@192.0.2.1", "bad VNI"),
            ("vxlan:-1@192.0.2.1", "VNI \"-1\" is not a decimal number"),
            (
                "vxlan:1@host.example",
                "VTEP \"host.example\" is not an IP address",
            ),
            (
                "vxlan:1@[192.0.2.1]",
                "VTEP \"[192.0.2.1]\" is not an IP address",
            ),
            ("vxlan:1@0.0.0.0", "VTEP 0.0.0.0 is not a unicast address"),
            (
                "vxlan:1@255.255.255.255",
                "VTEP 255.255.255.255 is not a unicast",
            ),
            ("vxlan:1@239.1.1.1", "VTEP 239.1.1.1 is not a unicast"),
            ("vxlan:1@[ff02::1]", "VTEP ff02::1 is not a unicast"),
            ("vxlan:1@::", "VTEP :: is not a unicast"),
        ];
        for (input, expected) in cases {
            let err = input.parse::<LslId>().expect_err(input);
            let text = err.to_string();
            assert!(
                text.starts_with(&format!("invalid LSL {input:?}")),
                "{text}"
            );
            assert!(text.contains(expected), "{input}: {text}");
        }
        let err = "qinq:10.4095".parse::<LslId>().expect_err("reserved VID");
        assert_eq!(
            std::error::Error::source(&err).map(ToString::to_string),
            Some("VLAN ID 4095 is out of range 1..=4094 (0 and 4095 are reserved)".to_owned())
        );
    }

    #[test]
    fn serde_json_string_form() {
        let lsl = LslId::qinq(vid(10), vid(100));
        assert_eq!(
            serde_json::to_string(&lsl).expect("serializes"),
            "\"qinq:10.100\""
        );
        assert_eq!(
            serde_json::from_str::<LslId>("\"qinq:10.100\"").expect("parses"),
            lsl
        );

        // As an object key: the subscriber table of a REST response.
        let table = BTreeMap::from([(lsl, 1u32), (LslId::dot1q(vid(7)), 2)]);
        let json = serde_json::to_string(&table).expect("serializes");
        assert_eq!(json, r#"{"vlan:7":2,"qinq:10.100":1}"#);
        assert_eq!(
            serde_json::from_str::<BTreeMap<LslId, u32>>(&json).expect("parses"),
            table
        );

        let err = serde_json::from_str::<LslId>("\"vlan:4095\"").expect_err("reserved");
        let text = err.to_string();
        assert!(
            text.contains("invalid LSL \"vlan:4095\": bad C-VID: VLAN ID 4095"),
            "{text}"
        );
        let err = serde_json::from_str::<LslId>("100").expect_err("not a string");
        assert!(err.to_string().contains("an LSL such as"), "{err}");
    }

    #[test]
    fn serde_numbers() {
        assert_eq!(serde_json::to_string(&vid(100)).expect("serializes"), "100");
        assert_eq!(
            serde_json::from_str::<Vid>("4094").expect("parses"),
            vid(4094)
        );
        let err = serde_json::from_str::<Vid>("4095").expect_err("reserved");
        assert!(
            err.to_string().contains("VLAN ID 4095 is out of range"),
            "{err}"
        );
        let err = serde_json::from_str::<Vid>("70000").expect_err("too big");
        assert!(
            err.to_string().contains("VLAN ID 70000 is out of range"),
            "{err}"
        );
        assert_eq!(
            serde_json::to_string(&vni(5001)).expect("serializes"),
            "5001"
        );
        let err = serde_json::from_str::<Vni>("16777216").expect_err("too big");
        assert!(
            err.to_string().contains("VNI 16777216 is out of range"),
            "{err}"
        );
    }

    #[test]
    fn toml_config_form() {
        #[derive(Debug, PartialEq, Deserialize, Serialize)]
        struct Subscriber {
            name: String,
            lsl: LslId,
        }
        #[derive(Debug, PartialEq, Deserialize, Serialize)]
        struct Config {
            subscriber: Vec<Subscriber>,
        }
        let text = r#"
            [[subscriber]]
            name = "home-1"
            lsl = "qinq:10.100"

            [[subscriber]]
            name = "home-2"
            lsl = "vxlan:5001@192.0.2.10"
        "#;
        let config: Config = toml::from_str(text).expect("parses");
        assert_eq!(config.subscriber[0].lsl, LslId::qinq(vid(10), vid(100)));
        assert_eq!(
            config.subscriber[1].lsl,
            LslId::vxlan(vni(5001), Ipv4Addr::new(192, 0, 2, 10).into())
        );
        let again: Config =
            toml::from_str(&toml::to_string(&config).expect("serializes")).expect("parses");
        assert_eq!(again, config);

        let err = toml::from_str::<Config>("[[subscriber]]\nname = \"x\"\nlsl = \"vlan:0\"\n")
            .expect_err("reserved VID");
        let text = err.to_string();
        assert!(
            text.contains("invalid LSL \"vlan:0\": bad C-VID: VLAN ID 0"),
            "{text}"
        );
        assert!(text.contains("lsl"), "names the key: {text}");
    }

    #[test]
    fn fast_path_key_ignores_the_s_tag_tpid() {
        let key = |text: &str| text.parse::<LslId>().expect(text).fast_path_key();
        let qinq = key("qinq:10.102");
        assert_eq!(key("qinq-9100:10.102"), qinq);
        assert_eq!(key("qinq-8100:10.102"), qinq);
        assert_eq!(
            qinq,
            FastPathKey::Vlan {
                s_vid: Some(vid(10)),
                c_vid: vid(102)
            }
        );
        assert_ne!(key("vlan:102"), qinq, "no S-VID is another key");
        assert_ne!(key("qinq:102.10"), qinq, "the VIDs' order matters");
        assert_ne!(key("vxlan:5@192.0.2.1"), key("vxlan:5@192.0.2.2"));
        assert_ne!(key("vxlan:5@192.0.2.1"), key("vxlan:6@192.0.2.1"));
    }

    #[test]
    fn tag_prefixes() {
        let lsl = |text: &str| text.parse::<LslId>().expect(text);
        let vlan = lsl("vlan:101");
        assert!(vlan.is_tag_prefix_of(&lsl("qinq-8100:101.5")));
        // Not prefixes: another outer TPID or VID, the other way round, itself, VXLAN.
        for other in [
            "qinq:101.5",
            "qinq-9100:101.5",
            "qinq-8100:102.5",
            "qinq-8100:5.101",
            "vlan:101",
            "vxlan:101@192.0.2.1",
        ] {
            assert!(!vlan.is_tag_prefix_of(&lsl(other)), "{other}");
        }
        assert!(!lsl("qinq-8100:101.5").is_tag_prefix_of(&vlan));
    }

    #[test]
    fn ordering_groups_kinds() {
        let mut lsls = [
            LslId::vxlan(vni(1), Ipv4Addr::new(192, 0, 2, 1).into()),
            LslId::qinq(vid(10), vid(100)),
            LslId::dot1q(vid(5)),
        ];
        lsls.sort();
        assert_eq!(lsls.map(|l| l.kind()), ["vlan", "qinq", "vxlan"]);
    }

    #[test]
    fn errors_quote_an_excerpt_of_a_huge_input() {
        let huge = format!("vlan:{}", "9".repeat(900_000));
        let e = huge.parse::<LslId>().unwrap_err().to_string();
        assert!(
            e.len() < 300,
            "{} bytes: {}",
            e.len(),
            &e[..300.min(e.len())]
        );
        assert!(e.contains("(900005 bytes)"), "{e}");
        let e = "vxlan:7@".to_owned() + &"x".repeat(100_000);
        let e = e.parse::<LslId>().unwrap_err().to_string();
        assert!(e.len() < 300, "{e}");
        // Short inputs are quoted whole.
        assert_eq!(excerpt("qinq:10.102"), "qinq:10.102");
        // Cut on a character boundary.
        let wide = "é".repeat(100);
        assert!(excerpt(&wide).starts_with(&"é".repeat(EXCERPT_CHARS)));
    }
}
