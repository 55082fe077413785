//! Engine tests: whole exchanges through `handle_bytes`, as the slow path will drive them.

use std::net::Ipv6Addr;

use dhcproto::v6::{
    DhcpOption, DhcpOptions, IAAddr, IANA, IAPD, IAPrefix, Message, MessageType, OptionCode, Status,
};
use dhcproto::{Decodable, Decoder, Encodable, Encoder};
use ipnet::Ipv6Net;

use super::*;
use crate::dhcp::{HomeId, MacAddr, UnixTime};

const T0: UnixTime = UnixTime(1_700_000_000);
const HOME: HomeId = 7;
const GW_MAC: MacAddr = MacAddr([0x02, 0x00, 0x5e, 0x10, 0x00, 0x01]);

fn net(text: &str) -> Ipv6Net {
    text.parse().expect("test prefix")
}

fn addr(text: &str) -> Ipv6Addr {
    text.parse().expect("test address")
}

/// The LAN of the test home: the first /64 of its /56.
fn lan() -> Ipv6Net {
    net("2001:db8:0:100::/64")
}

/// The usual test settings: LAN 2001:db8:0:100::/64, /56 delegated, /60s handed out, DNS.
fn settings() -> Dhcp6Settings {
    let mut s = Dhcp6Settings::new(lan(), Some(net("2001:db8:0:100::/56")), GW_MAC);
    s.dns_servers = vec![addr("2001:db8::53"), addr("2001:db8::5353")];
    s.domain_search = vec!["home.arpa".into()];
    s
}

fn config(edit: impl FnOnce(&mut Dhcp6Settings)) -> Dhcp6Config {
    let mut s = settings();
    edit(&mut s);
    Dhcp6Config::try_from(s).expect("test settings are valid")
}

fn server() -> HomeServer {
    server_with(|_| {})
}

fn server_with(edit: impl FnOnce(&mut Dhcp6Settings)) -> HomeServer {
    HomeServer::new(HOME, config(edit))
}

fn server_duid() -> Vec<u8> {
    Duid::link_layer(GW_MAC).0
}

/// A scripted DHCPv6 client: a DUID-LLT like dhclient's, one IA_NA and one IA_PD.
#[derive(Debug, Clone)]
struct Client {
    duid: Vec<u8>,
    mac: MacAddr,
    xid: [u8; 3],
    /// IAIDs of the IA_NAs it asks for.
    na: Vec<u32>,
    /// IAIDs of the IA_PDs it asks for.
    pd: Vec<u32>,
}

impl Client {
    fn new(n: u8) -> Client {
        let mac = MacAddr([0x52, 0x54, 0x00, 0x12, 0x34, n]);
        let mut duid = vec![0, 1, 0, 1, 0x32, 0xa9, 0x3c, 0x18];
        duid.extend_from_slice(&mac.0);
        Client {
            duid,
            mac,
            xid: [0xe6, 0xc0, n],
            na: vec![1],
            pd: Vec::new(),
        }
    }

    fn with_pd(mut self) -> Client {
        self.pd = vec![1];
        self
    }

    fn only_pd(mut self) -> Client {
        self.na.clear();
        self.pd = vec![1];
        self
    }

    fn peer(&self) -> Peer {
        let m = self.mac.0;
        // The EUI-64 link-local address of the MAC (RFC 4291 appendix A).
        let ll = Ipv6Addr::from([
            0xfe,
            0x80,
            0,
            0,
            0,
            0,
            0,
            0,
            m[0] ^ 2,
            m[1],
            m[2],
            0xff,
            0xfe,
            m[3],
            m[4],
            m[5],
        ]);
        Peer {
            mac: self.mac,
            link_local: ll,
        }
    }

    /// A message of `kind` with Client-ID, Server-ID if `server`, an IA for each IAID with
    /// `leases` in every IA of the matching kind, and `extra` options.
    fn message(
        &self,
        kind: MessageType,
        server: bool,
        leases: &[Lease],
        extra: &[DhcpOption],
    ) -> Message {
        let mut msg = Message::new_with_id(kind, self.xid);
        let opts = msg.opts_mut();
        opts.insert(DhcpOption::ClientId(self.duid.clone()));
        if server {
            opts.insert(DhcpOption::ServerId(server_duid()));
        }
        opts.insert(DhcpOption::ElapsedTime(0));
        for (i, &id) in self.na.iter().enumerate() {
            opts.insert(DhcpOption::IANA(IANA {
                id,
                t1: 0,
                t2: 0,
                opts: ia_opts(leases, IaKind::Na, i, self.na.len()),
            }));
        }
        for (i, &id) in self.pd.iter().enumerate() {
            opts.insert(DhcpOption::IAPD(IAPD {
                id,
                t1: 0,
                t2: 0,
                opts: ia_opts(leases, IaKind::Pd, i, self.pd.len()),
            }));
        }
        for option in extra {
            opts.insert(option.clone());
        }
        msg
    }

    fn bytes(&self, kind: MessageType, server: bool, leases: &[Lease]) -> Vec<u8> {
        encode(&self.message(kind, server, leases, &[]))
    }

    fn solicit(&self) -> Vec<u8> {
        self.bytes(MessageType::Solicit, false, &[])
    }
    fn solicit_rapid(&self) -> Vec<u8> {
        encode(&self.message(MessageType::Solicit, false, &[], &[DhcpOption::RapidCommit]))
    }
    fn request(&self, leases: &[Lease]) -> Vec<u8> {
        self.bytes(MessageType::Request, true, leases)
    }
    fn renew(&self, leases: &[Lease]) -> Vec<u8> {
        self.bytes(MessageType::Renew, true, leases)
    }
    fn rebind(&self, leases: &[Lease]) -> Vec<u8> {
        self.bytes(MessageType::Rebind, false, leases)
    }
    fn release(&self, leases: &[Lease]) -> Vec<u8> {
        self.bytes(MessageType::Release, true, leases)
    }
    fn decline(&self, leases: &[Lease]) -> Vec<u8> {
        self.bytes(MessageType::Decline, true, leases)
    }
    fn confirm(&self, leases: &[Lease]) -> Vec<u8> {
        self.bytes(MessageType::Confirm, false, leases)
    }
}

/// The options of IA number `index` of `count` of its kind: the `leases` of that kind, the
/// first to the first IA, the second to the second, and so on round.
fn ia_opts(leases: &[Lease], kind: IaKind, index: usize, count: usize) -> DhcpOptions {
    let mut opts = DhcpOptions::new();
    let mine = leases
        .iter()
        .filter(|l| l.kind() == kind)
        .enumerate()
        .filter(|(i, _)| i % count == index)
        .map(|(_, l)| l);
    for lease in mine {
        opts.insert(match *lease {
            Lease::Address(addr) => DhcpOption::IAAddr(IAAddr {
                addr,
                preferred_life: 0,
                valid_life: 0,
                opts: DhcpOptions::new(),
            }),
            Lease::Prefix(net) => DhcpOption::IAPrefix(IAPrefix {
                preferred_lifetime: 0,
                valid_lifetime: 0,
                prefix_len: net.prefix_len(),
                prefix_ip: net.network(),
                opts: DhcpOptions::new(),
            }),
        });
    }
    opts
}

fn encode(msg: &Message) -> Vec<u8> {
    let mut buf = Vec::new();
    msg.encode(&mut Encoder::new(&mut buf))
        .expect("test message encodes");
    buf
}

/// Handles `bytes` from `client`, insisting that they are accepted and the engine stays
/// consistent.
fn handle(server: &mut HomeServer, now: UnixTime, client: &Client, bytes: &[u8]) -> Outcome {
    let out = server
        .handle_bytes(now, client.peer(), bytes)
        .expect("message accepted");
    assert_eq!(out.home, HOME);
    server
        .check_consistency()
        .expect("engine indexes consistent");
    out
}

/// The reply of `out` decoded independently by dhcproto, checked for what every reply to
/// `client` carries.
fn reply(out: &Outcome, client: &Client) -> Message {
    let reply = out.reply.as_ref().expect("a reply");
    assert_eq!(reply.dst, client.peer().link_local);
    assert_eq!(reply.dst_mac, client.mac);
    let msg = Message::decode(&mut Decoder::new(&reply.payload)).expect("reply decodes");
    assert_eq!(msg.msg_type(), reply.message_type);
    assert_eq!(msg.xid(), client.xid);
    assert_eq!(
        msg.opts().get(OptionCode::ServerId),
        Some(&DhcpOption::ServerId(server_duid()))
    );
    assert_eq!(
        msg.opts().get(OptionCode::ClientId),
        Some(&DhcpOption::ClientId(client.duid.clone()))
    );
    msg
}

/// An IA of a reply, flattened: kind, IAID, status, and the leases with their lifetimes.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Ia {
    kind: IaKind,
    iaid: u32,
    t1: u32,
    t2: u32,
    status: Option<Status>,
    leases: Vec<(Lease, u32, u32)>,
}

fn status_of(opts: &DhcpOptions) -> Option<Status> {
    match opts.get(OptionCode::StatusCode) {
        Some(DhcpOption::StatusCode(code)) => Some(code.status),
        _ => None,
    }
}

fn ias(msg: &Message) -> Vec<Ia> {
    let mut out = Vec::new();
    for option in msg.opts().iter() {
        let (kind, iaid, t1, t2, opts) = match option {
            DhcpOption::IANA(ia) => (IaKind::Na, ia.id, ia.t1, ia.t2, &ia.opts),
            DhcpOption::IAPD(ia) => (IaKind::Pd, ia.id, ia.t1, ia.t2, &ia.opts),
            _ => continue,
        };
        let leases = opts
            .iter()
            .filter_map(|o| match o {
                DhcpOption::IAAddr(a) => {
                    Some((Lease::Address(a.addr), a.preferred_life, a.valid_life))
                }
                DhcpOption::IAPrefix(p) => Some((
                    Lease::Prefix(Ipv6Net::new(p.prefix_ip, p.prefix_len).expect("prefix")),
                    p.preferred_lifetime,
                    p.valid_lifetime,
                )),
                _ => None,
            })
            .collect();
        out.push(Ia {
            kind,
            iaid,
            t1,
            t2,
            status: status_of(opts),
            leases,
        });
    }
    out
}

/// The leases with nonzero valid lifetimes in a reply.
fn granted(msg: &Message) -> Vec<Lease> {
    ias(msg)
        .into_iter()
        .flat_map(|ia| ia.leases)
        .filter(|&(_, _, valid)| valid > 0)
        .map(|(lease, _, _)| lease)
        .collect()
}

/// Solicit, Advertise, Request, Reply; returns the leases bound.
fn exchange(server: &mut HomeServer, client: &Client, now: UnixTime) -> Vec<Lease> {
    let adv = handle(server, now, client, &client.solicit());
    assert!(adv.persist.is_empty(), "an Advertise is not durable state");
    let msg = reply(&adv, client);
    assert_eq!(msg.msg_type(), MessageType::Advertise);
    let offered = granted(&msg);
    let out = handle(server, now, client, &client.request(&offered));
    let msg = reply(&out, client);
    assert_eq!(msg.msg_type(), MessageType::Reply);
    assert_eq!(
        granted(&msg),
        offered,
        "the Reply binds what was advertised"
    );
    offered
}

fn commit(out: Outcome, store: &MemoryStore) -> Committed {
    out.commit(store).expect("memory store")
}

mod bad_input;
mod exchanges;
mod homes;
mod lifecycle;
mod model;
mod persistence;
mod prefix_delegation;
mod real_clients;
