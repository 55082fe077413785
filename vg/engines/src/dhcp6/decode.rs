//! From a client's bytes to a checked request.
//!
//! Two layers, as for DHCPv4. [`decode`] takes the UDP payload and checks what dhcproto's v6
//! module does not: the size, that every option (and every option inside an IA_NA, IA_PD,
//! IA Address or IA Prefix) stays inside its parent, and that the options the engine reads
//! have the lengths RFC 8415 section 21 gives them. It then hands dhcproto a copy holding only
//! those options, because dhcproto 0.15 cannot be given the rest safely: its option decoder
//! stops at the first option it cannot parse (silently hiding the ones after it), reads fixed
//! sizes whatever the length field says (Preference, Elapsed Time, Rapid Commit: the next
//! option is then misread), and subtracts from the length without a check (Status Code,
//! Vendor Class, Vendor Options: a short option overflows, a panic in a debug build).
//! [`Request::from_message`] then turns a [`Message`] (decoded here or built by the caller)
//! into the engine's view and applies the per-message rules of RFC 8415 section 16.
//!
//! No input makes either layer panic; every rejection is a [`DropReason`] the caller counts.

use std::net::Ipv6Addr;

use dhcproto::v6::{DhcpOption, IAAddr, IAPrefix, Message, MessageType, OptionCode};
use dhcproto::{Decodable, Decoder};
use ipnet::Ipv6Net;

use super::types::{Duid, IaKind, Lease};

/// Longest client message accepted: one unfragmented UDP datagram on a 1,500-byte link
/// (1500 - 40 IPv6 - 8 UDP). Clients send a few hundred bytes at most; a longer message
/// is an attack or a fault, and is not worth reassembly.
pub const MAX_MESSAGE_LEN: usize = 1452;
/// The fixed header: message type and transaction id (RFC 8415 section 8).
pub const HEADER_LEN: usize = 4;
/// Shortest DUID accepted: a type and one byte (RFC 8415 section 11).
pub const MIN_DUID_LEN: usize = 3;
/// Longest DUID: a type and 128 bytes (RFC 8415 section 11.1).
pub const MAX_DUID_LEN: usize = 130;
/// Most IAs of one kind in one message; a client has one per interface and kind in
/// practice (RFC 7550 section 4.1 clients send one IA_NA and one IA_PD).
pub const MAX_IAS_PER_KIND: usize = 8;
/// Most addresses or prefixes listed in one IA.
pub const MAX_LEASES_PER_IA: usize = 8;

const OPT_CLIENT_ID: u16 = 1;
const OPT_SERVER_ID: u16 = 2;
const OPT_IA_NA: u16 = 3;
const OPT_IA_ADDR: u16 = 5;
const OPT_RAPID_COMMIT: u16 = 14;
const OPT_IA_PD: u16 = 25;
const OPT_IA_PREFIX: u16 = 26;
/// IA_NA and IA_PD: IAID, T1, T2 before their options (RFC 8415 sections 21.4, 21.21).
const IA_HEADER_LEN: usize = 12;
/// IA Address: address, preferred and valid lifetimes (RFC 8415 section 21.6).
const IA_ADDR_LEN: usize = 24;
/// IA Prefix: lifetimes, prefix length, prefix (RFC 8415 section 21.22).
const IA_PREFIX_LEN: usize = 25;

/// Why a message was dropped without an answer. `Copy` and cheap: count it by [`label`].
///
/// [`label`]: DropReason::label
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum DropReason {
    /// Longer than [`MAX_MESSAGE_LEN`].
    #[error("longer than {MAX_MESSAGE_LEN} bytes")]
    TooLong,
    /// Shorter than the 4-byte header.
    #[error("shorter than the header")]
    Truncated,
    /// An option's length runs past the end of its message or parent option.
    #[error("option {code} runs past its end")]
    OptionOverrun {
        /// The option code.
        code: u16,
    },
    /// An option the engine reads has the wrong length.
    #[error("option {code} has a bad length")]
    BadOptionLength {
        /// The option code.
        code: u16,
    },
    /// Client-ID, Server-ID or Rapid Commit appears more than once.
    #[error("option {code} appears more than once")]
    DuplicateOption {
        /// The option code.
        code: u16,
    },
    /// Two IAs of one kind with the same IAID.
    #[error("two IAs with one IAID")]
    DuplicateIaid,
    /// More than [`MAX_IAS_PER_KIND`] IAs of one kind.
    #[error("too many IAs")]
    TooManyIas,
    /// More than [`MAX_LEASES_PER_IA`] addresses or prefixes in one IA.
    #[error("too many addresses or prefixes in an IA")]
    TooManyLeases,
    /// dhcproto rejected the message.
    #[error("undecodable")]
    Undecodable,
    /// A message type a server does not accept from a client (Advertise, Reply,
    /// Reconfigure, Relay-Reply, leasequery, unknown).
    #[error("unsupported message type {0}")]
    UnsupportedMessageType(u8),
    /// A Relay-Forward message: relayed DHCPv6 is not served (the home LAN is directly
    /// attached over its LSL).
    #[error("relayed (Relay-Forward)")]
    Relayed,
    /// No Client-ID where RFC 8415 section 16 requires one.
    #[error("no Client-ID")]
    MissingClientId,
    /// Request, Renew, Release or Decline without a Server-ID.
    #[error("no Server-ID")]
    MissingServerId,
    /// Solicit, Confirm or Rebind with a Server-ID (RFC 8415 sections 16.2, 16.5, 16.7).
    #[error("Server-ID where none is allowed")]
    UnexpectedServerId,
    /// The Server-ID is another server's DUID.
    #[error("for another server")]
    OtherServer,
    /// An Information-Request with an IA option (RFC 8415 section 16.12).
    #[error("IA in an Information-Request")]
    IaInInformationRequest,
    /// A Confirm listing no address: no reply is sent (RFC 8415 section 18.3.3).
    #[error("Confirm without addresses")]
    NothingToConfirm,
    /// The IPv6 source is not a link-local unicast address (RFC 8415 section 13.1).
    #[error("source is not link-local")]
    SourceNotLinkLocal,
    /// The Ethernet source is a group or all-zero address.
    #[error("source MAC is not unicast")]
    BadSourceMac,
    /// The multi-home wrapper has no server for the home.
    #[error("unknown home")]
    UnknownHome,
}

impl DropReason {
    /// A short stable name, for a metric label.
    pub const fn label(self) -> &'static str {
        match self {
            DropReason::TooLong => "too_long",
            DropReason::Truncated => "truncated",
            DropReason::OptionOverrun { .. } => "option_overrun",
            DropReason::BadOptionLength { .. } => "bad_option_length",
            DropReason::DuplicateOption { .. } => "duplicate_option",
            DropReason::DuplicateIaid => "duplicate_iaid",
            DropReason::TooManyIas => "too_many_ias",
            DropReason::TooManyLeases => "too_many_leases",
            DropReason::Undecodable => "undecodable",
            DropReason::UnsupportedMessageType(_) => "unsupported_message_type",
            DropReason::Relayed => "relayed",
            DropReason::MissingClientId => "missing_client_id",
            DropReason::MissingServerId => "missing_server_id",
            DropReason::UnexpectedServerId => "unexpected_server_id",
            DropReason::OtherServer => "other_server",
            DropReason::IaInInformationRequest => "ia_in_information_request",
            DropReason::NothingToConfirm => "nothing_to_confirm",
            DropReason::SourceNotLinkLocal => "source_not_link_local",
            DropReason::BadSourceMac => "bad_source_mac",
            DropReason::UnknownHome => "unknown_home",
        }
    }
}

/// Calls `each(code, body)` for every option in `bytes`, checking that each stays inside.
fn walk<'a>(
    mut bytes: &'a [u8],
    mut each: impl FnMut(u16, &'a [u8]) -> Result<(), DropReason>,
) -> Result<(), DropReason> {
    while !bytes.is_empty() {
        let [c0, c1, l0, l1, rest @ ..] = bytes else {
            return Err(DropReason::OptionOverrun { code: 0 });
        };
        let code = u16::from_be_bytes([*c0, *c1]);
        let len = usize::from(u16::from_be_bytes([*l0, *l1]));
        let Some((body, tail)) = rest.split_at_checked(len) else {
            return Err(DropReason::OptionOverrun { code });
        };
        each(code, body)?;
        bytes = tail;
    }
    Ok(())
}

fn push_option(out: &mut Vec<u8>, code: u16, body: &[u8]) {
    out.extend_from_slice(&code.to_be_bytes());
    // Bodies here are sub-slices of a message of at most MAX_MESSAGE_LEN bytes.
    out.extend_from_slice(&u16::try_from(body.len()).unwrap_or(u16::MAX).to_be_bytes());
    out.extend_from_slice(body);
}

/// An IA_NA or IA_PD body with only its IA Address / IA Prefix options, each cut to its
/// fixed part (the Status Code options a client may nest there are not read).
fn sanitize_ia(code: u16, body: &[u8]) -> Result<Vec<u8>, DropReason> {
    let (inner, fixed) = if code == OPT_IA_NA {
        (OPT_IA_ADDR, IA_ADDR_LEN)
    } else {
        (OPT_IA_PREFIX, IA_PREFIX_LEN)
    };
    let Some((header, options)) = body.split_at_checked(IA_HEADER_LEN) else {
        return Err(DropReason::BadOptionLength { code });
    };
    let mut out = header.to_vec();
    let mut count = 0;
    walk(options, |sub, sub_body| {
        if sub != inner {
            return Ok(());
        }
        let Some((fixed_part, nested)) = sub_body.split_at_checked(fixed) else {
            return Err(DropReason::BadOptionLength { code: sub });
        };
        // The nested options must be well-formed too, though none is read.
        walk(nested, |_, _| Ok(()))?;
        count += 1;
        if count > MAX_LEASES_PER_IA {
            return Err(DropReason::TooManyLeases);
        }
        push_option(&mut out, sub, fixed_part);
        Ok(())
    })?;
    Ok(out)
}

/// Checks and decodes a DHCPv6 message from a client (the UDP payload).
pub fn decode(bytes: &[u8]) -> Result<Message, DropReason> {
    if bytes.len() > MAX_MESSAGE_LEN {
        return Err(DropReason::TooLong);
    }
    let Some((header, options)) = bytes.split_at_checked(HEADER_LEN) else {
        return Err(DropReason::Truncated);
    };
    check_type(header[0])?;
    let mut kept = header.to_vec();
    walk(options, |code, body| {
        match code {
            OPT_CLIENT_ID | OPT_SERVER_ID => push_option(&mut kept, code, body),
            OPT_RAPID_COMMIT if body.is_empty() => push_option(&mut kept, code, body),
            OPT_RAPID_COMMIT => return Err(DropReason::BadOptionLength { code }),
            OPT_IA_NA | OPT_IA_PD => {
                let ia = sanitize_ia(code, body)?;
                push_option(&mut kept, code, &ia);
            }
            _ => {}
        }
        Ok(())
    })?;
    Message::decode(&mut Decoder::new(&kept)).map_err(|_| DropReason::Undecodable)
}

/// The message types a server accepts from a client.
fn check_type(byte: u8) -> Result<Kind, DropReason> {
    Ok(match MessageType::from(byte) {
        MessageType::Solicit => Kind::Solicit,
        MessageType::Request => Kind::Request,
        MessageType::Confirm => Kind::Confirm,
        MessageType::Renew => Kind::Renew,
        MessageType::Rebind => Kind::Rebind,
        MessageType::Release => Kind::Release,
        MessageType::Decline => Kind::Decline,
        MessageType::InformationRequest => Kind::InformationRequest,
        MessageType::RelayForw => return Err(DropReason::Relayed),
        _ => return Err(DropReason::UnsupportedMessageType(byte)),
    })
}

/// The client message types the engine serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Solicit,
    Request,
    Confirm,
    Renew,
    Rebind,
    Release,
    Decline,
    InformationRequest,
}

/// One IA of a request: its IAID and the leases the client listed (hints, or what it holds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct IaRequest {
    pub(crate) kind: IaKind,
    pub(crate) iaid: u32,
    pub(crate) leases: Vec<Lease>,
}

/// The engine's view of a client message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Request {
    pub(crate) kind: Kind,
    pub(crate) xid: [u8; 3],
    /// Always set except in an Information-Request, where it is optional.
    pub(crate) client_id: Option<Duid>,
    pub(crate) server_id: Option<Vec<u8>>,
    pub(crate) rapid_commit: bool,
    /// IA_NAs, then IA_PDs, in message order within each kind.
    pub(crate) ias: Vec<IaRequest>,
}

fn single(msg: &Message, code: OptionCode) -> Result<Option<&DhcpOption>, DropReason> {
    match msg.opts().get_all(code) {
        None | Some([]) => Ok(None),
        Some([one]) => Ok(Some(one)),
        Some(_) => Err(DropReason::DuplicateOption { code: code.into() }),
    }
}

fn duid(option: Option<&DhcpOption>, code: u16) -> Result<Option<Vec<u8>>, DropReason> {
    match option {
        Some(DhcpOption::ClientId(bytes) | DhcpOption::ServerId(bytes)) => {
            if (MIN_DUID_LEN..=MAX_DUID_LEN).contains(&bytes.len()) {
                Ok(Some(bytes.clone()))
            } else {
                Err(DropReason::BadOptionLength { code })
            }
        }
        _ => Ok(None),
    }
}

/// The addresses listed in an IA_NA's options.
fn addresses(opts: &dhcproto::v6::DhcpOptions) -> Vec<Lease> {
    opts.iter()
        .filter_map(|o| match o {
            DhcpOption::IAAddr(IAAddr { addr, .. }) => Some(Lease::Address(*addr)),
            _ => None,
        })
        .collect()
}

/// The prefixes listed in an IA_PD's options; a bare length hint (`::/60`) or a bad length
/// names no prefix and is skipped (the server hands out its configured length).
fn prefixes(opts: &dhcproto::v6::DhcpOptions) -> Vec<Lease> {
    opts.iter()
        .filter_map(|o| match o {
            DhcpOption::IAPrefix(IAPrefix {
                prefix_ip,
                prefix_len,
                ..
            }) if !prefix_ip.is_unspecified() => Ipv6Net::new(*prefix_ip, *prefix_len)
                .ok()
                .map(|n| Lease::Prefix(n.trunc())),
            _ => None,
        })
        .collect()
}

fn ias(msg: &Message) -> Result<Vec<IaRequest>, DropReason> {
    let mut out: Vec<IaRequest> = Vec::new();
    for (kind, code) in [
        (IaKind::Na, OptionCode::IANA),
        (IaKind::Pd, OptionCode::IAPD),
    ] {
        let all = msg.opts().get_all(code).unwrap_or(&[]);
        if all.len() > MAX_IAS_PER_KIND {
            return Err(DropReason::TooManyIas);
        }
        for option in all {
            let (iaid, leases) = match option {
                DhcpOption::IANA(ia) => (ia.id, addresses(&ia.opts)),
                DhcpOption::IAPD(ia) => (ia.id, prefixes(&ia.opts)),
                _ => continue,
            };
            if leases.len() > MAX_LEASES_PER_IA {
                return Err(DropReason::TooManyLeases);
            }
            if out.iter().any(|ia| ia.kind == kind && ia.iaid == iaid) {
                return Err(DropReason::DuplicateIaid);
            }
            out.push(IaRequest { kind, iaid, leases });
        }
    }
    // dhcproto sorts options with an unstable sort, so the wire order of IAs is lost;
    // serving them in IAID order at least makes the outcome repeatable.
    out.sort_by_key(|ia| (ia.kind, ia.iaid));
    Ok(out)
}

impl Request {
    /// The engine's view of `msg`, or why it must be dropped (RFC 8415 section 16's
    /// validation, except the Server-ID comparison, which needs the server's DUID).
    pub(crate) fn from_message(msg: &Message) -> Result<Request, DropReason> {
        let kind = check_type(u8::from(msg.msg_type()))?;
        let client_id = duid(single(msg, OptionCode::ClientId)?, OPT_CLIENT_ID)?.map(Duid);
        let server_id = duid(single(msg, OptionCode::ServerId)?, OPT_SERVER_ID)?;
        let rapid_commit = single(msg, OptionCode::RapidCommit)?.is_some();
        let ias = ias(msg)?;
        if client_id.is_none() && kind != Kind::InformationRequest {
            return Err(DropReason::MissingClientId);
        }
        match kind {
            Kind::Request | Kind::Renew | Kind::Release | Kind::Decline if server_id.is_none() => {
                return Err(DropReason::MissingServerId);
            }
            Kind::Solicit | Kind::Confirm | Kind::Rebind if server_id.is_some() => {
                return Err(DropReason::UnexpectedServerId);
            }
            Kind::InformationRequest if !ias.is_empty() => {
                return Err(DropReason::IaInInformationRequest);
            }
            _ => {}
        }
        Ok(Request {
            kind,
            xid: msg.xid(),
            client_id,
            server_id,
            rapid_commit,
            ias,
        })
    }

    /// The addresses of every IA_NA.
    pub(crate) fn addresses(&self) -> impl Iterator<Item = Ipv6Addr> + '_ {
        self.ias.iter().flat_map(|ia| {
            ia.leases.iter().filter_map(|l| match l {
                Lease::Address(ip) => Some(*ip),
                Lease::Prefix(_) => None,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walk_rejects_overruns_at_every_level() {
        // A Client-ID that claims 20 bytes with 3 left.
        let msg = [1, 0, 0, 1, 0, 1, 0, 20, 0, 3, 0];
        assert_eq!(decode(&msg), Err(DropReason::OptionOverrun { code: 1 }));
        // Half an option header.
        assert_eq!(
            decode(&[1, 0, 0, 1, 0, 1, 0]),
            Err(DropReason::OptionOverrun { code: 0 })
        );
        // An IA_NA shorter than its header.
        let msg = [1, 0, 0, 1, 0, 3, 0, 4, 0, 0, 0, 1];
        assert_eq!(decode(&msg), Err(DropReason::BadOptionLength { code: 3 }));
        // An IA Address inside an IA_NA that overruns the IA_NA.
        let mut msg = vec![1, 0, 0, 1, 0, 3, 0, 16];
        msg.extend_from_slice(&[0; 12]);
        msg.extend_from_slice(&[0, 5, 0, 24]);
        assert_eq!(decode(&msg), Err(DropReason::OptionOverrun { code: 5 }));
    }

    #[test]
    fn options_not_read_are_dropped_before_dhcproto() {
        // A Status Code of length 1 (dhcproto would compute 1 - 2) and a Preference of
        // length 0, then a Client-ID: the Client-ID is still seen.
        let mut msg = vec![1, 0xab, 0xcd, 0xef, 0, 13, 0, 1, 0, 0, 7, 0, 0];
        msg.extend_from_slice(&[0, 1, 0, 4, 0, 3, 0, 1]);
        let decoded = decode(&msg).expect("decodes");
        let req = Request::from_message(&decoded).expect("valid");
        assert_eq!(req.client_id, Some(Duid(vec![0, 3, 0, 1])));
        assert_eq!(req.xid, [0xab, 0xcd, 0xef]);
        assert_eq!(req.kind, Kind::Solicit);
    }

    #[test]
    fn message_types_and_sizes() {
        assert_eq!(decode(&[1, 0, 0]), Err(DropReason::Truncated));
        assert_eq!(decode(&[12, 0, 0, 0]), Err(DropReason::Relayed));
        for t in [2, 7, 10, 13, 14, 0, 255] {
            assert_eq!(
                decode(&[t, 0, 0, 0]),
                Err(DropReason::UnsupportedMessageType(t))
            );
        }
        assert_eq!(
            decode(&vec![1; MAX_MESSAGE_LEN + 1]),
            Err(DropReason::TooLong)
        );
        assert_eq!(
            Request::from_message(&decode(&[1, 0, 0, 0]).expect("decodes")),
            Err(DropReason::MissingClientId)
        );
        let info = Request::from_message(&decode(&[11, 0, 0, 0]).expect("decodes"));
        assert_eq!(info.map(|r| r.kind), Ok(Kind::InformationRequest));
    }

    #[test]
    fn labels_are_distinct() {
        let all = [
            DropReason::TooLong,
            DropReason::Truncated,
            DropReason::OptionOverrun { code: 0 },
            DropReason::BadOptionLength { code: 0 },
            DropReason::DuplicateOption { code: 0 },
            DropReason::DuplicateIaid,
            DropReason::TooManyIas,
            DropReason::TooManyLeases,
            DropReason::Undecodable,
            DropReason::UnsupportedMessageType(0),
            DropReason::Relayed,
            DropReason::MissingClientId,
            DropReason::MissingServerId,
            DropReason::UnexpectedServerId,
            DropReason::OtherServer,
            DropReason::IaInInformationRequest,
            DropReason::NothingToConfirm,
            DropReason::SourceNotLinkLocal,
            DropReason::BadSourceMac,
            DropReason::UnknownHome,
        ];
        let labels: std::collections::BTreeSet<_> = all.iter().map(|r| r.label()).collect();
        assert_eq!(labels.len(), all.len());
    }
}
