//! From a client's bytes to a checked request.
//!
//! Two layers. [`decode`] takes the UDP payload as received and checks what dhcproto does not:
//! the BOOTP header is a request from an Ethernet client, the magic cookie is there, every
//! option's length stays inside the message, and the options the engine reads have the lengths
//! RFC 2132 gives them. Options the engine does not read are blanked to Pad before dhcproto sees
//! them: dhcproto stops decoding at the first option it cannot parse (so a garbled option would
//! silently hide the ones after it), and a few of its decoders `debug_assert!` on lengths. Then
//! [`Request::from_message`] turns a [`Message`] (decoded here, or built by the caller) into the
//! engine's view and rejects what RFC 2131 says a server must not act on.
//!
//! No input makes either layer panic; every rejection is a [`DropReason`] the caller counts.

use std::net::Ipv4Addr;
use std::ops::Range;

use dhcproto::v4::{DhcpOption, Flags, HType, Message, MessageType, Opcode, OptionCode};
use dhcproto::{Decodable, Decoder};

use super::types::{ClientId, MacAddr};

/// Length of the fixed BOOTP header (RFC 2131 section 2, figure 1), up to the options.
pub const BOOTP_HEADER_LEN: usize = 236;
/// The magic cookie that starts the options field (RFC 2131 section 3).
pub const MAGIC_COOKIE: [u8; 4] = [99, 130, 83, 99];
/// Shortest acceptable DHCP message: the header plus the magic cookie.
pub const MIN_MESSAGE_LEN: usize = BOOTP_HEADER_LEN + MAGIC_COOKIE.len();
/// Longest hostname (option 12) kept from a client; longer ones are cut.
pub const MAX_HOSTNAME_LEN: usize = 63;

/// Why a message was dropped without an answer. `Copy` and cheap: count it by [`label`].
///
/// [`label`]: DropReason::label
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum DropReason {
    /// Shorter than the BOOTP header and magic cookie.
    #[error("shorter than {MIN_MESSAGE_LEN} bytes")]
    Truncated,
    /// `op` is not BOOTREQUEST.
    #[error("not a BOOTREQUEST")]
    NotBootRequest,
    /// `htype`/`hlen` are not Ethernet (1/6).
    #[error("hardware type is not Ethernet")]
    NotEthernet,
    /// The magic cookie is missing (a plain BOOTP message).
    #[error("no DHCP magic cookie")]
    BadMagicCookie,
    /// An option's length runs past the end of the message.
    #[error("option {code} runs past the end of the message")]
    OptionOverrun {
        /// The option code.
        code: u8,
    },
    /// An option the engine reads has the wrong length.
    #[error("option {code} has a bad length")]
    BadOptionLength {
        /// The option code.
        code: u8,
    },
    /// A fixed-length option appears more than once.
    #[error("option {code} appears more than once")]
    DuplicateOption {
        /// The option code.
        code: u8,
    },
    /// dhcproto rejected the message.
    #[error("undecodable")]
    Undecodable,
    /// No message type (option 53): BOOTP, which this server does not serve.
    #[error("no DHCP message type")]
    NoMessageType,
    /// A message type a server does not accept from a client.
    #[error("unsupported message type {0}")]
    UnsupportedMessageType(u8),
    /// `chaddr` is a group or all-zero address.
    #[error("client hardware address is not unicast")]
    BadHardwareAddress,
    /// `giaddr` is set and the home does not serve relayed messages (`relayed = "drop"`,
    /// the default: the home LAN is directly attached).
    #[error("relayed (giaddr set)")]
    Relayed,
    /// A relayed message whose `giaddr` is not a host of the home's own prefix, or is the
    /// gateway: the reply would leave the home (or loop back to the vG).
    #[error("giaddr {0} is not a host of the home's LAN")]
    GiaddrNotInHome(Ipv4Addr),
    /// A REQUEST or DECLINE without the address it is about.
    #[error("no requested address")]
    MissingRequestedAddress,
    /// A RELEASE or INFORM without `ciaddr`.
    #[error("no client address")]
    MissingClientAddress,
    /// The multi-home wrapper has no server for the home.
    #[error("unknown home")]
    UnknownHome,
}

impl DropReason {
    /// A short stable name, for a metric label.
    pub const fn label(self) -> &'static str {
        match self {
            DropReason::Truncated => "truncated",
            DropReason::NotBootRequest => "not_bootrequest",
            DropReason::NotEthernet => "not_ethernet",
            DropReason::BadMagicCookie => "bad_magic_cookie",
            DropReason::OptionOverrun { .. } => "option_overrun",
            DropReason::BadOptionLength { .. } => "bad_option_length",
            DropReason::DuplicateOption { .. } => "duplicate_option",
            DropReason::Undecodable => "undecodable",
            DropReason::NoMessageType => "no_message_type",
            DropReason::UnsupportedMessageType(_) => "unsupported_message_type",
            DropReason::BadHardwareAddress => "bad_hardware_address",
            DropReason::Relayed => "relayed",
            DropReason::GiaddrNotInHome(_) => "giaddr_not_in_home",
            DropReason::MissingRequestedAddress => "missing_requested_address",
            DropReason::MissingClientAddress => "missing_client_address",
            DropReason::UnknownHome => "unknown_home",
        }
    }
}

/// Options the engine reads or hands to hooks; every other option is blanked before decoding.
const KEEP: [u8; 13] = [12, 43, 50, 51, 53, 54, 55, 57, 60, 61, 77, 124, 125];
/// Options with one fixed length (RFC 2132): code, length.
const FIXED: [(u8, usize); 5] = [(50, 4), (51, 4), (53, 1), (54, 4), (57, 2)];

/// Checks and decodes a DHCP message from a client (the UDP payload).
pub fn decode(bytes: &[u8]) -> Result<Message, DropReason> {
    let (header, options) = match (bytes.get(..MIN_MESSAGE_LEN), bytes.get(MIN_MESSAGE_LEN..)) {
        (Some(header), Some(options)) => (header, options),
        _ => return Err(DropReason::Truncated),
    };
    match header {
        [1, 1, 6, ..] => {}
        [1, ..] => return Err(DropReason::NotEthernet),
        _ => return Err(DropReason::NotBootRequest),
    }
    if header.get(BOOTP_HEADER_LEN..) != Some(&MAGIC_COOKIE[..]) {
        return Err(DropReason::BadMagicCookie);
    }
    let blank = scan_options(options)?;
    let message = if blank.is_empty() {
        Message::decode(&mut Decoder::new(bytes))
    } else {
        let mut copy = bytes.to_vec();
        for range in blank {
            let range = range.start + MIN_MESSAGE_LEN..range.end + MIN_MESSAGE_LEN;
            if let Some(span) = copy.get_mut(range) {
                span.fill(0);
            }
        }
        Message::decode(&mut Decoder::new(&copy))
    };
    message.map_err(|_| DropReason::Undecodable)
}

/// Walks the options field; returns the byte ranges (relative to `options`) to blank.
fn scan_options(options: &[u8]) -> Result<Vec<Range<usize>>, DropReason> {
    let mut total = [0usize; 256];
    let mut count = [0u32; 256];
    let mut blank = Vec::new();
    let mut hostnames = Vec::new();
    let mut i = 0;
    while let Some(&code) = options.get(i) {
        match code {
            0 => {
                i += 1;
                continue;
            }
            255 => break,
            _ => {}
        }
        let len = usize::from(
            *options
                .get(i + 1)
                .ok_or(DropReason::OptionOverrun { code })?,
        );
        let end = i + 2 + len;
        if end > options.len() {
            return Err(DropReason::OptionOverrun { code });
        }
        total[usize::from(code)] += len;
        count[usize::from(code)] += 1;
        if !KEEP.contains(&code) {
            blank.push(i..end);
        } else if code == 12 {
            hostnames.push(i..end);
        }
        i = end;
    }
    for (code, len) in FIXED {
        let c = usize::from(code);
        if count[c] > 1 {
            return Err(DropReason::DuplicateOption { code });
        }
        if count[c] == 1 && total[c] != len {
            return Err(DropReason::BadOptionLength { code });
        }
    }
    // RFC 2132 section 9.14: the client identifier is at least 2 bytes (type + data).
    if count[61] > 0 && total[61] < 2 {
        return Err(DropReason::BadOptionLength { code: 61 });
    }
    // The hostname is informational: one that dhcproto would not decode (not UTF-8, split
    // over several instances, empty) is blanked rather than costing the client its lease.
    let hostname_ok = match hostnames.as_slice() {
        [one] => options
            .get(one.start + 2..one.end)
            .is_some_and(|text| !text.is_empty() && std::str::from_utf8(text).is_ok()),
        _ => false,
    };
    if !hostname_ok {
        blank.extend(hostnames);
    }
    Ok(blank)
}

/// What a client asks for, after the checks of RFC 2131 section 4.3.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// DHCPDISCOVER, with the requested address (option 50) if any.
    Discover { requested: Option<Ipv4Addr> },
    /// DHCPREQUEST naming a server (SELECTING, or a renewal that names us).
    Select { server: Ipv4Addr, ip: Ipv4Addr },
    /// DHCPREQUEST in INIT-REBOOT: option 50, no server id, no `ciaddr`.
    InitReboot { ip: Ipv4Addr },
    /// DHCPREQUEST in RENEWING (unicast) or REBINDING (broadcast): `ciaddr`, no server id.
    Renew { ip: Ipv4Addr },
    /// DHCPDECLINE of option 50.
    Decline {
        server: Option<Ipv4Addr>,
        ip: Ipv4Addr,
    },
    /// DHCPRELEASE of `ciaddr`.
    Release {
        server: Option<Ipv4Addr>,
        ip: Ipv4Addr,
    },
    /// DHCPINFORM from `ciaddr`.
    Inform { ip: Ipv4Addr },
}

/// The engine's view of a checked client message.
#[derive(Debug, Clone)]
pub(crate) struct Request<'a> {
    pub(crate) kind: Kind,
    pub(crate) xid: u32,
    pub(crate) flags: Flags,
    pub(crate) ciaddr: Ipv4Addr,
    /// The relay agent's address (RFC 2131 section 4.1); 0.0.0.0 when not relayed. Whether
    /// a relayed message is served is the home's policy ([`super::Relayed`]).
    pub(crate) giaddr: Ipv4Addr,
    pub(crate) mac: MacAddr,
    pub(crate) client: ClientId,
    /// Option 61 as sent, echoed in replies (RFC 6842).
    pub(crate) client_id_option: Option<&'a [u8]>,
    pub(crate) parameters: &'a [OptionCode],
    pub(crate) max_message_size: Option<u16>,
    pub(crate) hostname: Option<String>,
    pub(crate) vendor_class: Option<&'a [u8]>,
    pub(crate) vi_vendor_class: Option<&'a [u8]>,
}

impl<'a> Request<'a> {
    /// Checks `msg` and extracts what the engine needs.
    pub(crate) fn from_message(msg: &'a Message) -> Result<Request<'a>, DropReason> {
        if msg.opcode() != Opcode::BootRequest {
            return Err(DropReason::NotBootRequest);
        }
        // `chaddr()` slices by `hlen`: check it first.
        if msg.htype() != HType::Eth || msg.hlen() != 6 {
            return Err(DropReason::NotEthernet);
        }
        let mac = match *msg.chaddr() {
            [a, b, c, d, e, f] => MacAddr([a, b, c, d, e, f]),
            _ => return Err(DropReason::NotEthernet),
        };
        let message_type = msg.opts().msg_type().ok_or(DropReason::NoMessageType)?;
        if !mac.is_unicast() {
            return Err(DropReason::BadHardwareAddress);
        }

        let mut client_id_option = None;
        let mut parameters: &[OptionCode] = &[];
        let mut max_message_size = None;
        let mut hostname = None;
        let mut vendor_class = None;
        let mut vi_vendor_class = None;
        let mut requested = None;
        let mut server = None;
        for (_, option) in msg.opts().iter() {
            match option {
                DhcpOption::ClientIdentifier(id) => {
                    if id.len() < 2 {
                        return Err(DropReason::BadOptionLength { code: 61 });
                    }
                    client_id_option = Some(id.as_slice());
                }
                DhcpOption::ParameterRequestList(list) => parameters = list,
                DhcpOption::MaxMessageSize(size) => max_message_size = Some(*size),
                DhcpOption::Hostname(name) => hostname = clean_hostname(name),
                DhcpOption::ClassIdentifier(class) => vendor_class = Some(class.as_slice()),
                DhcpOption::Unknown(opt) if u8::from(opt.code()) == 124 => {
                    vi_vendor_class = Some(opt.data());
                }
                DhcpOption::RequestedIpAddress(ip) => requested = Some(*ip),
                DhcpOption::ServerIdentifier(ip) => server = Some(*ip),
                _ => {}
            }
        }

        let ciaddr = msg.ciaddr();
        let ciaddr_set = (!ciaddr.is_unspecified()).then_some(ciaddr);
        let kind = match message_type {
            MessageType::Discover => Kind::Discover { requested },
            MessageType::Request => match (server, requested, ciaddr_set) {
                (Some(server), Some(ip), _) | (Some(server), None, Some(ip)) => {
                    Kind::Select { server, ip }
                }
                (None, _, Some(ip)) => Kind::Renew { ip },
                (None, Some(ip), None) => Kind::InitReboot { ip },
                (_, None, None) => return Err(DropReason::MissingRequestedAddress),
            },
            MessageType::Decline => Kind::Decline {
                server,
                ip: requested.ok_or(DropReason::MissingRequestedAddress)?,
            },
            MessageType::Release => Kind::Release {
                server,
                ip: ciaddr_set.ok_or(DropReason::MissingClientAddress)?,
            },
            MessageType::Inform => Kind::Inform {
                ip: ciaddr_set.ok_or(DropReason::MissingClientAddress)?,
            },
            other => return Err(DropReason::UnsupportedMessageType(other.into())),
        };

        Ok(Request {
            kind,
            xid: msg.xid(),
            flags: msg.flags(),
            ciaddr,
            giaddr: msg.giaddr(),
            mac,
            client: ClientId::new(mac, client_id_option),
            client_id_option,
            parameters,
            max_message_size,
            hostname,
            vendor_class,
            vi_vendor_class,
        })
    }
}

/// A hostname fit for logs and the lease list: control characters removed, NULs trimmed,
/// at most [`MAX_HOSTNAME_LEN`] bytes; `None` if nothing is left.
fn clean_hostname(name: &str) -> Option<String> {
    let mut out = String::new();
    for ch in name
        .trim_end_matches('\0')
        .chars()
        .filter(|c| !c.is_control())
    {
        if out.len() + ch.len_utf8() > MAX_HOSTNAME_LEN {
            break;
        }
        out.push(ch);
    }
    (!out.is_empty()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal valid DISCOVER: header, cookie, then `options` (End appended).
    fn discover_with(options: &[u8]) -> Vec<u8> {
        let mut bytes = vec![0u8; BOOTP_HEADER_LEN];
        bytes[0] = 1;
        bytes[1] = 1;
        bytes[2] = 6;
        bytes[28..34].copy_from_slice(&[0x02, 0, 0, 0, 0, 1]);
        bytes.extend_from_slice(&MAGIC_COOKIE);
        bytes.extend_from_slice(&[53, 1, 1]);
        bytes.extend_from_slice(options);
        bytes.push(255);
        bytes
    }

    #[test]
    fn header_checks() {
        assert_eq!(decode(&[]), Err(DropReason::Truncated));
        let good = discover_with(&[]);
        assert!(decode(&good).is_ok());
        assert_eq!(decode(&good[..239]), Err(DropReason::Truncated));
        let mut reply = good.clone();
        reply[0] = 2;
        assert_eq!(decode(&reply), Err(DropReason::NotBootRequest));
        let mut token_ring = good.clone();
        token_ring[1] = 6;
        assert_eq!(decode(&token_ring), Err(DropReason::NotEthernet));
        let mut long_hw = good.clone();
        long_hw[2] = 16;
        assert_eq!(decode(&long_hw), Err(DropReason::NotEthernet));
        let mut bootp = good;
        bootp[236] = 0;
        assert_eq!(decode(&bootp), Err(DropReason::BadMagicCookie));
    }

    #[test]
    fn option_lengths_are_checked() {
        // Length byte missing, then a length past the end.
        let mut cut = discover_with(&[]);
        cut.pop();
        cut.push(61);
        assert_eq!(decode(&cut), Err(DropReason::OptionOverrun { code: 61 }));
        let mut long = discover_with(&[]);
        long.pop();
        long.extend_from_slice(&[12, 200, b'a']);
        assert_eq!(decode(&long), Err(DropReason::OptionOverrun { code: 12 }));
        assert_eq!(
            decode(&discover_with(&[50, 3, 1, 2, 3])),
            Err(DropReason::BadOptionLength { code: 50 })
        );
        assert_eq!(
            decode(&discover_with(&[53, 1, 3])),
            Err(DropReason::DuplicateOption { code: 53 })
        );
        assert_eq!(
            decode(&discover_with(&[61, 1, 1])),
            Err(DropReason::BadOptionLength { code: 61 })
        );
    }

    #[test]
    fn unread_and_garbled_options_are_blanked() {
        // A rapid-commit option with a length dhcproto debug-asserts on, a garbled hostname,
        // an overload option: all blanked; the options after them still decode.
        let bytes = discover_with(&[
            80, 2, 0, 0, 12, 2, 0xff, 0xfe, 52, 1, 3, 61, 7, 1, 2, 0, 0, 0, 0, 1,
        ]);
        let msg = decode(&bytes).expect("decodes");
        assert!(msg.opts().get(OptionCode::RapidCommit).is_none());
        assert!(msg.opts().get(OptionCode::Hostname).is_none());
        assert!(msg.opts().get(OptionCode::OptionOverload).is_none());
        assert_eq!(
            msg.opts().get(OptionCode::ClientIdentifier),
            Some(&DhcpOption::ClientIdentifier(vec![1, 2, 0, 0, 0, 0, 1]))
        );
    }

    #[test]
    fn long_options_are_concatenated() {
        // RFC 3396: a parameter request list split over two instances.
        let bytes = discover_with(&[55, 2, 1, 3, 55, 1, 6]);
        let msg = decode(&bytes).expect("decodes");
        assert_eq!(
            msg.opts().get(OptionCode::ParameterRequestList),
            Some(&DhcpOption::ParameterRequestList(vec![
                OptionCode::SubnetMask,
                OptionCode::Router,
                OptionCode::DomainNameServer
            ]))
        );
    }

    #[test]
    fn request_checks() {
        let mut msg = decode(&discover_with(&[])).expect("decodes");
        assert!(matches!(
            Request::from_message(&msg).map(|r| r.kind),
            Ok(Kind::Discover { requested: None })
        ));
        // giaddr is kept for the home's policy to judge.
        msg.set_giaddr(Ipv4Addr::new(10, 0, 0, 1));
        assert_eq!(
            Request::from_message(&msg).map(|r| r.giaddr),
            Ok(Ipv4Addr::new(10, 0, 0, 1))
        );
        msg.set_giaddr(Ipv4Addr::UNSPECIFIED);
        msg.set_chaddr(&[0xff; 6]);
        assert_eq!(
            Request::from_message(&msg).err(),
            Some(DropReason::BadHardwareAddress)
        );
        msg.set_chaddr(&[2, 0, 0, 0, 0, 1, 0, 0]);
        assert_eq!(
            Request::from_message(&msg).err(),
            Some(DropReason::NotEthernet)
        );
        msg.set_chaddr(&[2, 0, 0, 0, 0, 1]);
        msg.opts_mut()
            .insert(DhcpOption::MessageType(MessageType::Offer));
        assert_eq!(
            Request::from_message(&msg).err(),
            Some(DropReason::UnsupportedMessageType(2))
        );
        msg.opts_mut()
            .insert(DhcpOption::MessageType(MessageType::Request));
        assert_eq!(
            Request::from_message(&msg).err(),
            Some(DropReason::MissingRequestedAddress)
        );
        msg.opts_mut()
            .insert(DhcpOption::MessageType(MessageType::Release));
        assert_eq!(
            Request::from_message(&msg).err(),
            Some(DropReason::MissingClientAddress)
        );
        msg.opts_mut().remove(OptionCode::MessageType);
        assert_eq!(
            Request::from_message(&msg).err(),
            Some(DropReason::NoMessageType)
        );
    }

    #[test]
    fn hostnames_are_cleaned() {
        assert_eq!(clean_hostname("laptop\0\0"), Some("laptop".into()));
        assert_eq!(clean_hostname("a\u{7}b\nc"), Some("abc".into()));
        assert_eq!(clean_hostname("\0"), None);
        let long = "é".repeat(40);
        let cleaned = clean_hostname(&long).expect("kept");
        assert!(cleaned.len() <= MAX_HOSTNAME_LEN && cleaned.chars().all(|c| c == 'é'));
    }

    #[test]
    fn labels_are_distinct() {
        let all = [
            DropReason::Truncated,
            DropReason::NotBootRequest,
            DropReason::NotEthernet,
            DropReason::BadMagicCookie,
            DropReason::OptionOverrun { code: 1 },
            DropReason::BadOptionLength { code: 1 },
            DropReason::DuplicateOption { code: 1 },
            DropReason::Undecodable,
            DropReason::NoMessageType,
            DropReason::UnsupportedMessageType(2),
            DropReason::BadHardwareAddress,
            DropReason::Relayed,
            DropReason::GiaddrNotInHome(Ipv4Addr::UNSPECIFIED),
            DropReason::MissingRequestedAddress,
            DropReason::MissingClientAddress,
            DropReason::UnknownHome,
        ];
        let labels: std::collections::BTreeSet<_> = all.iter().map(|r| r.label()).collect();
        assert_eq!(labels.len(), all.len());
    }
}
