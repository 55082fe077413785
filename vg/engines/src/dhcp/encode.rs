//! Building a reply's bytes.
//!
//! dhcproto encodes the fixed header and each option; the order and the size limit are ours,
//! because dhcproto's `DhcpOptions` is a map that always encodes in code order and never
//! trims. Order (RFC 2132 section 9.8: the server "MUST try to insert the requested options
//! in the order requested"): message type, server identifier, lease/T1/T2, then the options
//! of the parameter request list in the client's order, then the ones we send unasked
//! (mask, router, DNS, domain, MTU, broadcast, vendor), then the echoed client identifier
//! (RFC 6842), whose room is reserved first. An option that does not fit the client's maximum
//! message size (option 57, at least 576, capped by the home's MTU) is left out.

use std::net::Ipv4Addr;

use dhcproto::v4::{DhcpOption, Message, MessageType, Opcode, OptionCode, UnknownOption};
use dhcproto::{Encodable, Encoder};

use super::config::DhcpConfig;
use super::decode::Request;
use super::vendor::VendorOptions;

/// The smallest maximum message size a client must accept (RFC 2131 section 2; RFC 2132
/// section 9.10), IP and UDP headers included.
pub const MIN_MAX_MESSAGE_SIZE: u16 = 576;
/// Replies are padded to this length, the BOOTP minimum some clients still insist on
/// (RFC 1542 section 2.1).
pub const BOOTP_MIN_LEN: usize = 300;
/// IPv4 and UDP headers around a DHCP message.
const IP_UDP_HEADERS: usize = 28;
/// The link MTU assumed when the home sets none.
const ETHERNET_MTU: u16 = 1500;

/// Options sent whether or not the client asked, in this order.
const UNASKED: [u8; 8] = [1, 3, 6, 15, 26, 28, 43, 125];

/// What the engine decided to put in a reply.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ReplyParts {
    pub(crate) message_type: MessageType,
    pub(crate) ciaddr: Ipv4Addr,
    pub(crate) yiaddr: Ipv4Addr,
    /// Lease time for OFFER and lease ACKs; `None` for INFORM ACKs and NAKs.
    pub(crate) lease_secs: Option<u32>,
    /// Option 56 text for a NAK.
    pub(crate) message: Option<&'static str>,
}

/// The largest DHCP payload this client accepts on this home's link.
pub(crate) fn payload_budget(config: &DhcpConfig, req: &Request<'_>) -> usize {
    let client = req
        .max_message_size
        .unwrap_or(MIN_MAX_MESSAGE_SIZE)
        .max(MIN_MAX_MESSAGE_SIZE);
    let link = config.mtu().unwrap_or(ETHERNET_MTU);
    usize::from(client.min(link).max(MIN_MAX_MESSAGE_SIZE)) - IP_UDP_HEADERS
}

/// The option `code` as this home configures it, if it has one.
fn config_option(code: u8, config: &DhcpConfig, vendor: &VendorOptions) -> Option<DhcpOption> {
    Some(match code {
        1 => DhcpOption::SubnetMask(config.prefix().netmask()),
        3 => DhcpOption::Router(vec![config.gateway()]),
        6 if !config.dns_servers().is_empty() => {
            DhcpOption::DomainNameServer(config.dns_servers().to_vec())
        }
        15 => DhcpOption::DomainName(config.domain_name()?.to_owned()),
        26 => DhcpOption::InterfaceMtu(config.mtu()?),
        28 => DhcpOption::BroadcastAddr(config.broadcast()),
        43 => DhcpOption::VendorExtensions(vendor.vendor_specific.clone()?),
        125 => DhcpOption::Unknown(UnknownOption::new(
            OptionCode::from(125),
            vendor.option125_payload()?,
        )),
        _ => return None,
    })
}

/// Appends options to a message under a size budget.
struct OptionWriter {
    buf: Vec<u8>,
    scratch: Vec<u8>,
    limit: usize,
    sent: [bool; 256],
}

impl OptionWriter {
    /// Encodes `option` and appends it if it fits; true if appended.
    fn push(&mut self, option: &DhcpOption) -> bool {
        let code = u8::from(OptionCode::from(option));
        if self.sent[usize::from(code)] {
            return false;
        }
        self.scratch.clear();
        if option.encode(&mut Encoder::new(&mut self.scratch)).is_err() {
            return false;
        }
        if self.buf.len() + self.scratch.len() > self.limit {
            return false;
        }
        self.buf.extend_from_slice(&self.scratch);
        self.sent[usize::from(code)] = true;
        true
    }
}

/// Encodes the reply to `req`.
pub(crate) fn encode_reply(
    config: &DhcpConfig,
    req: &Request<'_>,
    parts: &ReplyParts,
    vendor: &VendorOptions,
) -> Result<Vec<u8>, dhcproto::error::EncodeError> {
    // giaddr is the request's (RFC 2131 table 3): the relay finds its client by it.
    let mut msg = Message::new_with_id(
        req.xid,
        parts.ciaddr,
        parts.yiaddr,
        Ipv4Addr::UNSPECIFIED,
        req.giaddr,
        &req.mac.0,
    );
    // RFC 2131 section 4.3.2: a NAK through a relay has the broadcast bit set, so that the
    // relay broadcasts it to the client (which may have no usable address).
    let flags = if parts.message_type == MessageType::Nak && !req.giaddr.is_unspecified() {
        req.flags.set_broadcast()
    } else {
        req.flags
    };
    msg.set_opcode(Opcode::BootReply).set_flags(flags);
    let mut buf = Vec::with_capacity(BOOTP_MIN_LEN + 64);
    // With no options, dhcproto writes the header and the magic cookie only.
    msg.encode(&mut Encoder::new(&mut buf))?;

    let budget = payload_budget(config, req);
    let echo = req
        .client_id_option
        .map(|id| DhcpOption::ClientIdentifier(id.to_vec()));
    let echo_len = match &echo {
        Some(option) => {
            let mut tmp = Vec::new();
            option.encode(&mut Encoder::new(&mut tmp))?;
            tmp.len()
        }
        None => 0,
    };
    // Room for the echoed client identifier and the End option is kept back.
    let mut w = OptionWriter {
        buf,
        scratch: Vec::with_capacity(64),
        limit: budget.saturating_sub(echo_len + 1),
        sent: [false; 256],
    };

    w.push(&DhcpOption::MessageType(parts.message_type));
    w.push(&DhcpOption::ServerIdentifier(config.gateway()));
    if let Some(lease) = parts.lease_secs {
        w.push(&DhcpOption::AddressLeaseTime(lease));
        w.push(&DhcpOption::Renewal(lease / 2));
        w.push(&DhcpOption::Rebinding(
            u32::try_from(u64::from(lease) * 7 / 8).unwrap_or(u32::MAX),
        ));
    }
    if let Some(text) = parts.message {
        w.push(&DhcpOption::Message(text.to_owned()));
    }
    if parts.message_type != MessageType::Nak {
        for code in req.parameters {
            if let Some(option) = config_option(u8::from(*code), config, vendor) {
                w.push(&option);
            }
        }
        for code in UNASKED {
            if let Some(option) = config_option(code, config, vendor) {
                w.push(&option);
            }
        }
    }
    w.limit = budget.saturating_sub(1);
    if let Some(option) = &echo {
        w.push(option);
    }
    let mut buf = w.buf;
    buf.push(u8::from(OptionCode::End));
    if buf.len() < BOOTP_MIN_LEN {
        buf.resize(BOOTP_MIN_LEN, 0);
    }
    Ok(buf)
}
