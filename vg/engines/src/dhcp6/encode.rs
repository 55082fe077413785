//! Building Advertise and Reply messages with dhcproto's v6 types.
//!
//! Every reply carries the Server-ID, the client's Client-ID when it sent one, the IAs it
//! asked about (RFC 8415 section 18.3), the DNS servers and search list when configured
//! (options 23 and 24, RFC 3646: sent whether or not the client's Option Request option
//! lists them, which RFC 8415 section 21.7 allows; several clients omit them), and an
//! Advertise carries Preference 255 (RFC 8415 section 18.2.1: the client requests at once
//! rather than waiting for other servers; the home's LAN has no other server).

use dhcproto::v6::{
    DhcpOption, DhcpOptions, IAAddr, IANA, IAPD, IAPrefix, Message, MessageType, Status, StatusCode,
};
use dhcproto::{Encodable, Encoder};

use super::config::Dhcp6Config;
use super::types::{Duid, IaKind, Lease};

/// Preference sent in every Advertise (RFC 8415 section 21.8: 255 = request now).
pub const PREFERENCE: u8 = 255;

/// One IA of a reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct IaAnswer {
    pub(crate) kind: IaKind,
    pub(crate) iaid: u32,
    /// Leases with their preferred and valid lifetimes (0 and 0: the client must stop
    /// using it).
    pub(crate) leases: Vec<(Lease, u32, u32)>,
    /// A status for the whole IA (NoAddrsAvail, NoPrefixAvail, NoBinding).
    pub(crate) status: Option<Status>,
}

impl IaAnswer {
    pub(crate) fn new(kind: IaKind, iaid: u32) -> IaAnswer {
        IaAnswer {
            kind,
            iaid,
            leases: Vec::new(),
            status: None,
        }
    }
}

/// What goes into a reply besides the server's own options.
#[derive(Debug, Clone)]
pub(crate) struct ReplyParts<'a> {
    pub(crate) message_type: MessageType,
    pub(crate) xid: [u8; 3],
    pub(crate) client_id: Option<&'a Duid>,
    pub(crate) ias: Vec<IaAnswer>,
    /// A status for the whole message.
    pub(crate) status: Option<Status>,
    /// Set in the Reply to a Solicit with Rapid Commit (RFC 8415 section 18.3.1).
    pub(crate) rapid_commit: bool,
}

fn status_code(status: Status) -> DhcpOption {
    let msg = match status {
        Status::Success => "success",
        Status::NoAddrsAvail => "no addresses available",
        Status::NoPrefixAvail => "no prefixes available",
        Status::NoBinding => "no binding",
        Status::NotOnLink => "not on link",
        _ => "",
    };
    DhcpOption::StatusCode(StatusCode {
        status,
        msg: msg.into(),
    })
}

fn ia_option(config: &Dhcp6Config, ia: &IaAnswer) -> DhcpOption {
    let mut opts = DhcpOptions::new();
    // dhcproto inserts an option before the ones with its code already there: reversed
    // here, the reply lists IAs and leases in the order they were asked about.
    for &(lease, preferred, valid) in ia.leases.iter().rev() {
        opts.insert(match lease {
            Lease::Address(addr) => DhcpOption::IAAddr(IAAddr {
                addr,
                preferred_life: preferred,
                valid_life: valid,
                opts: DhcpOptions::new(),
            }),
            Lease::Prefix(net) => DhcpOption::IAPrefix(IAPrefix {
                preferred_lifetime: preferred,
                valid_lifetime: valid,
                prefix_len: net.prefix_len(),
                prefix_ip: net.network(),
                opts: DhcpOptions::new(),
            }),
        });
    }
    if let Some(status) = ia.status {
        opts.insert(status_code(status));
    }
    // T1 and T2 mean nothing for an IA that holds nothing usable (RFC 8415 section 21.4).
    let (t1, t2) = if ia.leases.iter().any(|&(_, _, valid)| valid > 0) {
        (config.settings().t1_secs, config.settings().t2_secs)
    } else {
        (0, 0)
    };
    match ia.kind {
        IaKind::Na => DhcpOption::IANA(IANA {
            id: ia.iaid,
            t1,
            t2,
            opts,
        }),
        IaKind::Pd => DhcpOption::IAPD(IAPD {
            id: ia.iaid,
            t1,
            t2,
            opts,
        }),
    }
}

/// The reply's bytes.
pub(crate) fn encode_reply(
    config: &Dhcp6Config,
    parts: &ReplyParts<'_>,
) -> Result<Vec<u8>, dhcproto::error::EncodeError> {
    let mut msg = Message::new_with_id(parts.message_type, parts.xid);
    let opts = msg.opts_mut();
    opts.insert(DhcpOption::ServerId(
        config.server_duid().as_bytes().to_vec(),
    ));
    if let Some(client) = parts.client_id {
        opts.insert(DhcpOption::ClientId(client.as_bytes().to_vec()));
    }
    for ia in parts.ias.iter().rev() {
        opts.insert(ia_option(config, ia));
    }
    if let Some(status) = parts.status {
        opts.insert(status_code(status));
    }
    if parts.rapid_commit {
        opts.insert(DhcpOption::RapidCommit);
    }
    if parts.message_type == MessageType::Advertise {
        opts.insert(DhcpOption::Preference(PREFERENCE));
    }
    let settings = config.settings();
    if !settings.dns_servers.is_empty() {
        opts.insert(DhcpOption::DomainNameServers(settings.dns_servers.clone()));
    }
    if !config.search().is_empty() {
        opts.insert(DhcpOption::DomainSearchList(config.search().to_vec()));
    }
    let mut buf = Vec::with_capacity(256);
    msg.encode(&mut Encoder::new(&mut buf))?;
    Ok(buf)
}
