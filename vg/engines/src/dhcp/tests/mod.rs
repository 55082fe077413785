//! Engine tests: whole exchanges through `handle_bytes`, as the slow path will drive them.

use std::net::Ipv4Addr;
use std::sync::Arc;

use dhcproto::v4::{DhcpOption, Flags, Message, MessageType, Opcode, OptionCode};
use dhcproto::{Decodable, Decoder, Encodable, Encoder};

use super::*;

const T0: UnixTime = UnixTime(1_700_000_000);
const HOME: HomeId = 7;
const GW: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 1);

fn ip(last: u8) -> Ipv4Addr {
    Ipv4Addr::new(192, 168, 1, last)
}

fn config(text: &str) -> DhcpConfig {
    let wire: DhcpConfigWire = toml::from_str(text).expect("test config parses");
    DhcpConfig::try_from(wire).expect("test config is valid")
}

/// The home used by most tests: defaults plus DNS and a domain.
fn server() -> HomeServer {
    server_with("")
}

fn server_with(extra: &str) -> HomeServer {
    let text = format!(
        "dns_servers = [\"192.0.2.53\", \"198.51.100.53\"]\ndomain_name = \"home.arpa\"\n{extra}"
    );
    HomeServer::new(HOME, config(&text))
}

/// A scripted DHCP client.
#[derive(Debug, Clone)]
struct Client {
    mac: MacAddr,
    xid: u32,
    client_id: Option<Vec<u8>>,
    parameters: Vec<OptionCode>,
    hostname: Option<&'static str>,
    max_size: Option<u16>,
    broadcast: bool,
    /// Set: the client's messages come through a relay agent at this address.
    giaddr: Option<Ipv4Addr>,
}

impl Client {
    fn new(last: u8) -> Client {
        Client {
            mac: MacAddr([0x02, 0x42, 0xac, 0x11, 0x00, last]),
            xid: 0x1000_0000 + u32::from(last),
            client_id: None,
            parameters: [1, 3, 6, 15, 28].map(OptionCode::from).to_vec(),
            hostname: None,
            max_size: None,
            broadcast: false,
            giaddr: None,
        }
    }

    fn message(&self, kind: MessageType, ciaddr: Ipv4Addr) -> Message {
        let unspecified = Ipv4Addr::UNSPECIFIED;
        let mut msg = Message::new_with_id(
            self.xid,
            ciaddr,
            unspecified,
            unspecified,
            self.giaddr.unwrap_or(unspecified),
            &self.mac.0,
        );
        if self.broadcast {
            msg.set_flags(Flags::default().set_broadcast());
        }
        let opts = msg.opts_mut();
        opts.insert(DhcpOption::MessageType(kind));
        if let Some(id) = &self.client_id {
            opts.insert(DhcpOption::ClientIdentifier(id.clone()));
        }
        if let Some(name) = self.hostname {
            opts.insert(DhcpOption::Hostname(name.into()));
        }
        if let Some(size) = self.max_size {
            opts.insert(DhcpOption::MaxMessageSize(size));
        }
        if matches!(
            kind,
            MessageType::Discover | MessageType::Request | MessageType::Inform
        ) {
            opts.insert(DhcpOption::ParameterRequestList(self.parameters.clone()));
        }
        msg
    }

    fn with(&self, kind: MessageType, ciaddr: Ipv4Addr, extra: &[DhcpOption]) -> Vec<u8> {
        let mut msg = self.message(kind, ciaddr);
        for option in extra {
            msg.opts_mut().insert(option.clone());
        }
        encode(&msg)
    }

    fn discover(&self) -> Vec<u8> {
        self.with(MessageType::Discover, Ipv4Addr::UNSPECIFIED, &[])
    }
    fn discover_requesting(&self, want: Ipv4Addr) -> Vec<u8> {
        self.with(
            MessageType::Discover,
            Ipv4Addr::UNSPECIFIED,
            &[DhcpOption::RequestedIpAddress(want)],
        )
    }
    fn select(&self, server: Ipv4Addr, want: Ipv4Addr) -> Vec<u8> {
        self.with(
            MessageType::Request,
            Ipv4Addr::UNSPECIFIED,
            &[
                DhcpOption::ServerIdentifier(server),
                DhcpOption::RequestedIpAddress(want),
            ],
        )
    }
    fn init_reboot(&self, want: Ipv4Addr) -> Vec<u8> {
        self.with(
            MessageType::Request,
            Ipv4Addr::UNSPECIFIED,
            &[DhcpOption::RequestedIpAddress(want)],
        )
    }
    /// RENEWING (unicast) and REBINDING (broadcast) look the same to the server.
    fn renew(&self, have: Ipv4Addr) -> Vec<u8> {
        self.with(MessageType::Request, have, &[])
    }
    fn release(&self, have: Ipv4Addr) -> Vec<u8> {
        self.with(
            MessageType::Release,
            have,
            &[DhcpOption::ServerIdentifier(GW)],
        )
    }
    fn decline(&self, bad: Ipv4Addr) -> Vec<u8> {
        self.with(
            MessageType::Decline,
            Ipv4Addr::UNSPECIFIED,
            &[
                DhcpOption::ServerIdentifier(GW),
                DhcpOption::RequestedIpAddress(bad),
            ],
        )
    }
    fn inform(&self, have: Ipv4Addr) -> Vec<u8> {
        self.with(MessageType::Inform, have, &[])
    }
}

fn encode(msg: &Message) -> Vec<u8> {
    let mut buf = Vec::new();
    msg.encode(&mut Encoder::new(&mut buf))
        .expect("test message encodes");
    buf
}

/// Handles `bytes`, insisting that they are accepted and the engine stays consistent.
fn handle(server: &mut HomeServer, now: UnixTime, bytes: &[u8]) -> Outcome {
    let out = server.handle_bytes(now, bytes).expect("message accepted");
    assert_eq!(out.home, HOME);
    server
        .check_consistency()
        .expect("engine indexes consistent");
    out
}

/// The reply of `out`, decoded independently by dhcproto.
fn reply(out: &Outcome) -> (Message, &Reply) {
    let reply = out.reply.as_ref().expect("a reply");
    let msg = Message::decode(&mut Decoder::new(&reply.payload)).expect("reply decodes");
    assert_eq!(msg.opcode(), Opcode::BootReply);
    assert_eq!(msg.opts().msg_type(), Some(reply.message_type));
    assert_eq!(reply.src, GW);
    assert!(reply.payload.len() >= BOOTP_MIN_LEN);
    (msg, reply)
}

fn get(msg: &Message, code: u8) -> Option<&DhcpOption> {
    msg.opts().get(OptionCode::from(code))
}

/// Option codes of a raw message, in wire order.
fn option_codes(payload: &[u8]) -> Vec<u8> {
    let mut codes = Vec::new();
    let mut i = MIN_MESSAGE_LEN;
    while let Some(&code) = payload.get(i) {
        match code {
            0 => i += 1,
            255 => break,
            _ => {
                codes.push(code);
                i += 2 + usize::from(payload[i + 1]);
            }
        }
    }
    codes
}

/// DISCOVER, OFFER, REQUEST, ACK; returns the address.
fn dora(server: &mut HomeServer, client: &Client, now: UnixTime) -> Ipv4Addr {
    let offer = handle(server, now, &client.discover());
    let (msg, r) = reply(&offer);
    assert_eq!(r.message_type, MessageType::Offer, "{:?}", offer.events);
    let offered = msg.yiaddr();
    let ack = handle(server, now, &client.select(GW, offered));
    let (msg, r) = reply(&ack);
    assert_eq!(r.message_type, MessageType::Ack, "{:?}", ack.events);
    assert_eq!(msg.yiaddr(), offered);
    offered
}

fn granted(out: &Outcome) -> Option<(Ipv4Addr, bool)> {
    out.events.iter().find_map(|e| match e {
        Event::LeaseGranted { ip, renewed, .. } => Some((*ip, *renewed)),
        _ => None,
    })
}

fn commit(out: Outcome, store: &MemoryStore) -> Committed {
    out.commit(store).expect("memory store")
}

mod bad_input;
mod exchanges;
mod homes;
mod lifecycle;
mod options;
mod persistence;
mod real_clients;
mod relayed;
mod reservations;
