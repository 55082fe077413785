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

// ---- the exchanges of RFC 2131 --------------------------------------------------------

#[test]
fn full_dora() {
    let mut s = server();
    let c = Client::new(1);
    let store = MemoryStore::new();

    let offer = handle(&mut s, T0, &c.discover());
    assert!(offer.persist.is_empty(), "an offer is not durable state");
    assert_eq!(
        offer.events,
        vec![Event::Offered {
            mac: c.mac,
            ip: ip(100)
        }]
    );
    let (msg, r) = reply(&offer);
    assert_eq!(r.message_type, MessageType::Offer);
    assert_eq!(msg.xid(), c.xid);
    assert_eq!(msg.yiaddr(), ip(100));
    assert_eq!(msg.chaddr(), &c.mac.0);
    // No broadcast flag: unicast to yiaddr and chaddr.
    assert_eq!(
        r.dst,
        Destination::Unicast {
            ip: ip(100),
            mac: c.mac
        }
    );
    assert_eq!(get(&msg, 54), Some(&DhcpOption::ServerIdentifier(GW)));
    assert_eq!(get(&msg, 51), Some(&DhcpOption::AddressLeaseTime(86_400)));
    assert_eq!(get(&msg, 58), Some(&DhcpOption::Renewal(43_200)));
    assert_eq!(get(&msg, 59), Some(&DhcpOption::Rebinding(75_600)));
    assert_eq!(
        get(&msg, 1),
        Some(&DhcpOption::SubnetMask(Ipv4Addr::new(255, 255, 255, 0)))
    );
    assert_eq!(get(&msg, 3), Some(&DhcpOption::Router(vec![GW])));
    assert_eq!(
        get(&msg, 6),
        Some(&DhcpOption::DomainNameServer(vec![
            Ipv4Addr::new(192, 0, 2, 53),
            Ipv4Addr::new(198, 51, 100, 53)
        ]))
    );
    assert_eq!(
        get(&msg, 15),
        Some(&DhcpOption::DomainName("home.arpa".into()))
    );
    assert_eq!(get(&msg, 28), Some(&DhcpOption::BroadcastAddr(ip(255))));
    assert_eq!(get(&msg, 26), None, "no MTU configured");

    let ack = handle(&mut s, T0.plus(1), &c.select(GW, ip(100)));
    let expires = T0.plus(1 + 86_400);
    let record = LeaseRecord {
        home: HOME,
        ip: ip(100),
        client_id: ClientId::Mac(c.mac),
        mac: c.mac,
        state: LeaseState::Bound,
        time: expires,
        hostname: None,
    };
    assert_eq!(ack.persist, vec![StoreOp::Put(record.clone())]);
    assert_eq!(
        ack.events,
        vec![Event::LeaseGranted {
            client_id: ClientId::Mac(c.mac),
            mac: c.mac,
            ip: ip(100),
            expires,
            renewed: false
        }]
    );
    assert_eq!(
        ack.events[0].host_change(),
        Some(HostChange::Add {
            mac: c.mac,
            ip: ip(100)
        })
    );
    let (msg, r) = reply(&ack);
    assert_eq!(r.message_type, MessageType::Ack);
    assert_eq!(msg.yiaddr(), ip(100));
    assert_eq!(msg.ciaddr(), Ipv4Addr::UNSPECIFIED);
    assert_eq!(
        r.dst,
        Destination::Unicast {
            ip: ip(100),
            mac: c.mac
        }
    );

    // Persist first, then the reply is released.
    let committed = ack.commit(&store).expect("memory store");
    assert!(committed.reply.is_some());
    assert_eq!(store.get(HOME, ip(100)), Some(record));
    assert_eq!(s.usage().bound, 1);
    assert_eq!(s.usage().free, 99);
}

#[test]
fn broadcast_flag_gets_a_broadcast_reply() {
    let mut s = server();
    let mut c = Client::new(1);
    c.broadcast = true;
    let offer = handle(&mut s, T0, &c.discover());
    let (msg, r) = reply(&offer);
    assert_eq!(r.dst, Destination::Broadcast);
    assert_eq!(r.dst.ip(), Ipv4Addr::BROADCAST);
    assert_eq!(r.dst.mac(), Some(MacAddr::BROADCAST));
    assert_eq!(r.dst.port(), CLIENT_PORT);
    assert!(msg.flags().broadcast(), "flags are copied from the request");
    let ack = handle(&mut s, T0, &c.select(GW, ip(100)));
    assert_eq!(reply(&ack).1.dst, Destination::Broadcast);
}

#[test]
fn renew_and_rebind_extend_the_lease() {
    let mut s = server();
    let mut c = Client::new(1);
    let got = dora(&mut s, &c, T0);

    // RENEWING at T1: unicast, ciaddr set.
    let t1 = T0.plus(43_200);
    let renew = handle(&mut s, t1, &c.renew(got));
    assert_eq!(granted(&renew), Some((got, true)));
    let (msg, r) = reply(&renew);
    assert_eq!(r.message_type, MessageType::Ack);
    assert_eq!(msg.ciaddr(), got);
    assert_eq!(msg.yiaddr(), got);
    assert_eq!(
        r.dst,
        Destination::Unicast {
            ip: got,
            mac: c.mac
        }
    );
    assert_eq!(s.lease(got).map(|l| l.time), Some(t1.plus(86_400)));
    assert_eq!(renew.persist.len(), 1, "a renewal is persisted too");

    // REBINDING at T2: broadcast by the client, still answered to ciaddr.
    c.broadcast = true;
    let t2 = t1.plus(75_600);
    let rebind = handle(&mut s, t2, &c.renew(got));
    assert_eq!(granted(&rebind), Some((got, true)));
    assert_eq!(
        reply(&rebind).1.dst,
        Destination::Unicast {
            ip: got,
            mac: c.mac
        }
    );
    assert_eq!(s.lease(got).map(|l| l.time), Some(t2.plus(86_400)));
}

#[test]
fn renew_of_an_address_held_by_another_client_is_nakked() {
    let mut s = server();
    let a = Client::new(1);
    let b = Client::new(2);
    let a_ip = dora(&mut s, &a, T0);
    dora(&mut s, &b, T0);
    let out = handle(&mut s, T0.plus(10), &b.renew(a_ip));
    let (msg, r) = reply(&out);
    assert_eq!(r.message_type, MessageType::Nak);
    assert_eq!(
        r.dst,
        Destination::Broadcast,
        "NAKs are broadcast (RFC 2131 4.1)"
    );
    assert_eq!(msg.yiaddr(), Ipv4Addr::UNSPECIFIED);
    assert_eq!(get(&msg, 51), None);
    assert!(matches!(get(&msg, 56), Some(DhcpOption::Message(_))));
    assert!(out.persist.is_empty());
    assert_eq!(
        out.events,
        vec![Event::Nak {
            mac: b.mac,
            ip: a_ip,
            reason: NakReason::InUse
        }]
    );
}

#[test]
fn init_reboot() {
    let mut s = server();
    let a = Client::new(1);
    let b = Client::new(2);
    let a_ip = dora(&mut s, &a, T0);
    let b_ip = dora(&mut s, &b, T0);

    let nak = |s: &mut HomeServer, c: &Client, want: Ipv4Addr| -> NakReason {
        let out = handle(s, T0.plus(100), &c.init_reboot(want));
        assert_eq!(reply(&out).1.message_type, MessageType::Nak, "{want}");
        match out.events.as_slice() {
            [Event::Nak { reason, ip, .. }] if *ip == want => *reason,
            other => panic!("expected one Nak event, got {other:?}"),
        }
    };
    // Wrong network (the laptop comes from the office).
    assert_eq!(
        nak(&mut s, &a, Ipv4Addr::new(10, 1, 2, 3)),
        NakReason::WrongNetwork
    );
    // Another client's address.
    assert_eq!(nak(&mut s, &a, b_ip), NakReason::InUse);
    // A free address, but the client has another one here.
    assert_eq!(nak(&mut s, &a, ip(150)), NakReason::HasOtherAddress);
    // Outside the dynamic range, and the gateway itself.
    assert_eq!(nak(&mut s, &Client::new(3), ip(20)), NakReason::NotAllowed);
    assert_eq!(nak(&mut s, &Client::new(3), GW), NakReason::NotAllowed);

    // Its own address: ACK (broadcast flag unset, ciaddr 0: unicast to yiaddr).
    let out = handle(&mut s, T0.plus(100), &a.init_reboot(a_ip));
    assert_eq!(granted(&out), Some((a_ip, true)));
    // A device that roamed in from another home with a lease this home has never seen:
    // a free address in the range is acknowledged.
    let roamer = Client::new(9);
    let out = handle(&mut s, T0.plus(100), &roamer.init_reboot(ip(150)));
    assert_eq!(granted(&out), Some((ip(150), false)));
}

#[test]
fn request_for_another_server_withdraws_the_offer() {
    let mut s = server();
    let a = Client::new(1);
    let offer = handle(&mut s, T0, &a.discover());
    assert_eq!(reply(&offer).0.yiaddr(), ip(100));
    let out = handle(
        &mut s,
        T0,
        &a.select(
            Ipv4Addr::new(192, 168, 1, 254),
            Ipv4Addr::new(192, 168, 1, 50),
        ),
    );
    assert!(out.reply.is_none() && out.persist.is_empty());
    assert_eq!(
        out.events,
        vec![Event::Ignored {
            mac: a.mac,
            reason: IgnoreReason::OtherServer
        }]
    );
    // The held address is free again at once.
    assert_eq!(dora(&mut s, &Client::new(2), T0), ip(100));
}

#[test]
fn selecting_without_our_offer_after_a_restart_is_acked_if_free() {
    let mut s = server();
    let a = Client::new(1);
    // The server restarted between OFFER and REQUEST: no offer is held.
    let out = handle(&mut s, T0, &a.select(GW, ip(120)));
    assert_eq!(granted(&out), Some((ip(120), false)));
    // ...but not an address someone else holds.
    let b = Client::new(2);
    let out = handle(&mut s, T0, &b.select(GW, ip(120)));
    assert_eq!(reply(&out).1.message_type, MessageType::Nak);
}

#[test]
fn offers_hold_their_address_for_the_hold_time() {
    let mut s = server();
    let a = Client::new(1);
    let b = Client::new(2);
    assert_eq!(
        reply(&handle(&mut s, T0, &a.discover())).0.yiaddr(),
        ip(100)
    );
    assert_eq!(
        reply(&handle(&mut s, T0, &b.discover())).0.yiaddr(),
        ip(101)
    );
    // The same client asking again gets the same offer.
    assert_eq!(
        reply(&handle(&mut s, T0.plus(2), &a.discover())).0.yiaddr(),
        ip(100)
    );
    assert_eq!(s.usage().offered, 2);
    // B cannot take A's held address by asking for it.
    let out = handle(&mut s, T0.plus(3), &b.select(GW, ip(100)));
    assert_eq!(reply(&out).1.message_type, MessageType::Nak);
    // After the hold time the address is anyone's: B's offer lapses first.
    assert_eq!(s.next_deadline(), Some(T0.plus(30)));
    let out = s.expire(T0.plus(31));
    assert!(out.is_empty(), "lapsed offers are silent: {out:?}");
    assert_eq!(s.usage().offered, 1);
    let c = Client::new(3);
    assert_eq!(
        reply(&handle(&mut s, T0.plus(31), &c.discover()))
            .0
            .yiaddr(),
        ip(101)
    );
    // A's refreshed offer lapses at T0 + 32; then .100 is free for D.
    let d = Client::new(4);
    assert_eq!(
        reply(&handle(&mut s, T0.plus(33), &d.discover()))
            .0
            .yiaddr(),
        ip(100)
    );
}

#[test]
fn requested_address_is_honoured_when_free() {
    let mut s = server();
    let a = Client::new(1);
    let out = handle(&mut s, T0, &a.discover_requesting(ip(150)));
    assert_eq!(reply(&out).0.yiaddr(), ip(150));
    // Outside the range, or held: a fresh address instead.
    let b = Client::new(2);
    assert_eq!(
        reply(&handle(&mut s, T0, &b.discover_requesting(ip(150))))
            .0
            .yiaddr(),
        ip(100)
    );
    let c = Client::new(3);
    assert_eq!(
        reply(&handle(&mut s, T0, &c.discover_requesting(ip(5))))
            .0
            .yiaddr(),
        ip(101)
    );
}

// ---- release, stickiness, expiry, decline ---------------------------------------------

#[test]
fn release_then_sticky_re_lease() {
    let mut s = server();
    let a = Client::new(1);
    let b = Client::new(2);
    let a_ip = dora(&mut s, &a, T0);
    assert_eq!(a_ip, ip(100));

    let out = handle(&mut s, T0.plus(60), &a.release(a_ip));
    assert!(out.reply.is_none(), "RELEASE has no reply");
    assert_eq!(
        out.events,
        vec![Event::LeaseReleased {
            mac: a.mac,
            ip: a_ip
        }]
    );
    assert_eq!(
        out.events[0].host_change(),
        Some(HostChange::Remove {
            mac: a.mac,
            ip: a_ip
        })
    );
    match out.persist.as_slice() {
        [StoreOp::Put(r)] => assert_eq!((r.state, r.time), (LeaseState::Released, T0.plus(60))),
        other => panic!("expected one Put, got {other:?}"),
    }

    // Another device arrives: it does not get A's remembered address.
    assert_eq!(dora(&mut s, &b, T0.plus(120)), ip(101));
    // A comes back and gets its old address.
    assert_eq!(dora(&mut s, &a, T0.plus(3600)), a_ip);
    // Releasing somebody else's address does nothing.
    let out = handle(&mut s, T0.plus(3700), &b.release(a_ip));
    assert_eq!(
        out.events,
        vec![Event::Ignored {
            mac: b.mac,
            reason: IgnoreReason::NotOwner
        }]
    );
    assert!(out.persist.is_empty());
}

#[test]
fn expiry_remembers_the_address_for_its_client() {
    let mut s = server();
    let a = Client::new(1);
    let a_ip = dora(&mut s, &a, T0);
    let end = T0.plus(86_400);
    assert_eq!(s.next_deadline(), Some(end));
    assert!(
        s.expire(UnixTime(end.as_secs() - 1)).is_empty(),
        "nothing is due yet"
    );

    let out = s.expire(end);
    s.check_consistency().expect("consistent");
    assert_eq!(
        out.events,
        vec![Event::LeaseExpired {
            mac: a.mac,
            ip: a_ip
        }]
    );
    assert_eq!(
        out.events[0].host_change(),
        Some(HostChange::Remove {
            mac: a.mac,
            ip: a_ip
        })
    );
    match out.persist.as_slice() {
        [StoreOp::Put(r)] => assert_eq!((r.state, r.time), (LeaseState::Expired, end)),
        other => panic!("expected one Put, got {other:?}"),
    }
    assert_eq!(s.next_deadline(), None);
    assert_eq!(s.usage().remembered, 1);

    // Others get other addresses; a week later A gets its old one back.
    assert_eq!(dora(&mut s, &Client::new(2), end.plus(1)), ip(101));
    assert_eq!(dora(&mut s, &a, end.plus(7 * 86_400)), a_ip);
}

#[test]
fn expiry_inside_handle_is_reported_with_the_message() {
    let mut s = server();
    let a = Client::new(1);
    let a_ip = dora(&mut s, &a, T0);
    // No timer ran; the next message finds the lease over and reports it before anything else.
    let out = handle(&mut s, T0.plus(90_000), &Client::new(2).discover());
    assert_eq!(
        out.events[0],
        Event::LeaseExpired {
            mac: a.mac,
            ip: a_ip
        }
    );
    assert_eq!(reply(&out).0.yiaddr(), ip(101));
}

#[test]
fn remembered_addresses_are_reused_only_when_the_pool_is_otherwise_empty() {
    let mut s = server_with("range_start = \"192.168.1.100\"\nrange_end = \"192.168.1.102\"");
    let clients: Vec<Client> = (1..=3).map(Client::new).collect();
    for (i, c) in clients.iter().enumerate() {
        let got = dora(&mut s, c, T0.plus(i as u64));
        let _ = handle(&mut s, T0.plus(10 + i as u64), &c.release(got));
    }
    assert_eq!(s.usage().remembered, 3);
    // A newcomer evicts the longest-unused memory (client 1's .100).
    assert_eq!(dora(&mut s, &Client::new(4), T0.plus(100)), ip(100));
    // Client 1 then gets what is left: the oldest remaining memory.
    assert_eq!(dora(&mut s, &clients[0], T0.plus(200)), ip(101));
    // Clients 2 is out of luck; client 3 still finds its own.
    assert_eq!(dora(&mut s, &clients[2], T0.plus(300)), ip(102));
    let out = handle(&mut s, T0.plus(400), &clients[1].discover());
    assert!(out.reply.is_none());
    assert_eq!(
        out.events,
        vec![Event::PoolExhausted {
            mac: clients[1].mac
        }]
    );
}

#[test]
fn decline_quarantines_the_address() {
    let mut s = server();
    let a = Client::new(1);
    let bad = dora(&mut s, &a, T0);
    let out = handle(&mut s, T0.plus(2), &a.decline(bad));
    assert!(out.reply.is_none());
    let until = T0.plus(2 + 86_400);
    assert_eq!(
        out.events,
        vec![Event::Declined {
            mac: a.mac,
            ip: bad,
            until,
            was_bound: true
        }]
    );
    assert_eq!(
        out.events[0].host_change(),
        Some(HostChange::Remove {
            mac: a.mac,
            ip: bad
        })
    );
    match out.persist.as_slice() {
        [StoreOp::Put(r)] => assert_eq!((r.state, r.time), (LeaseState::Declined, until)),
        other => panic!("expected one Put, got {other:?}"),
    }
    assert_eq!(s.usage().declined, 1);
    // The client restarts and gets a different address; nobody gets the bad one.
    assert_eq!(dora(&mut s, &a, T0.plus(12)), ip(101));
    assert_eq!(dora(&mut s, &Client::new(2), T0.plus(13)), ip(102));
    let out = handle(&mut s, T0.plus(14), &Client::new(3).init_reboot(bad));
    assert_eq!(reply(&out).1.message_type, MessageType::Nak);
    // After the quarantine it is back in the pool.
    let out = s.expire(until);
    assert_eq!(out.events, vec![Event::QuarantineEnded { ip: bad }]);
    assert_eq!(
        out.persist,
        vec![StoreOp::Remove {
            home: HOME,
            ip: bad
        }]
    );
    assert_eq!(dora(&mut s, &Client::new(4), until.plus(1)), bad);
}

#[test]
fn decline_by_a_non_holder_is_ignored() {
    let mut s = server();
    let a = Client::new(1);
    let a_ip = dora(&mut s, &a, T0);
    let out = handle(&mut s, T0.plus(1), &Client::new(2).decline(a_ip));
    assert!(out.persist.is_empty());
    assert_eq!(
        out.events,
        vec![Event::Ignored {
            mac: Client::new(2).mac,
            reason: IgnoreReason::NotOwner
        }]
    );
    assert_eq!(s.lease(a_ip).map(|r| r.state), Some(LeaseState::Bound));
}

// ---- reservations, exhaustion, identity ------------------------------------------------

#[test]
fn reservations() {
    let resv = Client::new(0x10);
    let mut s = server_with(&format!(
        "range_start = \"192.168.1.100\"\nrange_end = \"192.168.1.101\"\nreservations = [\
         {{ mac = \"{}\", ip = \"192.168.1.10\" }}, {{ mac = \"02:99:00:00:00:01\", ip = \"192.168.1.101\" }}]",
        resv.mac
    ));
    // Outside the range, inside the prefix.
    assert_eq!(dora(&mut s, &resv, T0), ip(10));
    // Nobody else may have it.
    let other = Client::new(1);
    let out = handle(&mut s, T0, &other.init_reboot(ip(10)));
    assert_eq!(reply(&out).1.message_type, MessageType::Nak);
    // .101 is reserved for an absent device: the pool is only .100.
    assert_eq!(dora(&mut s, &other, T0), ip(100));
    let out = handle(&mut s, T0, &Client::new(2).discover_requesting(ip(101)));
    assert_eq!(
        out.events,
        vec![Event::PoolExhausted {
            mac: Client::new(2).mac
        }]
    );
    assert_eq!(s.usage().free, 0);
    // The reserved client asking for another address is told no.
    let out = handle(&mut s, T0.plus(5), &resv.init_reboot(ip(100)));
    assert_eq!(reply(&out).1.message_type, MessageType::Nak);
}

#[test]
fn reconfiguration_keeps_revokes_or_forgets_leases() {
    let mut s = server();
    let a = Client::new(1);
    let b = Client::new(2);
    let a_ip = dora(&mut s, &a, T0);
    let b_ip = handle(&mut s, T0, &b.init_reboot(ip(150)));
    assert_eq!(granted(&b_ip), Some((ip(150), false)));

    // The range shrinks to .100-.120: B's running lease outside it is kept...
    let out = s.reconfigure(
        config("range_start = \"192.168.1.100\"\nrange_end = \"192.168.1.120\""),
        T0.plus(10),
    );
    assert!(out.is_empty(), "{out:?}");
    s.check_consistency().expect("consistent");
    assert_eq!(s.usage().bound, 2);
    // ...NAKed at renewal...
    let out = handle(&mut s, T0.plus(43_200), &b.renew(ip(150)));
    assert_eq!(reply(&out).1.message_type, MessageType::Nak);
    // ...and forgotten, not remembered, when it ends.
    let out = s.expire(T0.plus(86_400));
    assert!(
        out.persist.contains(&StoreOp::Remove {
            home: HOME,
            ip: ip(150)
        }),
        "{out:?}"
    );
    assert!(s.lease(ip(150)).is_none());
    assert_eq!(s.lease(a_ip).map(|r| r.state), Some(LeaseState::Expired));

    // A new prefix revokes what is outside it at once.
    let _ = dora(&mut s, &a, T0.plus(86_401));
    let out = s.reconfigure(config("prefix = \"10.9.0.0/24\""), T0.plus(86_402));
    assert_eq!(
        out.events,
        vec![Event::LeaseRevoked {
            mac: a.mac,
            ip: a_ip
        }]
    );
    assert_eq!(
        out.persist,
        vec![StoreOp::Remove {
            home: HOME,
            ip: a_ip
        }]
    );
    assert_eq!(s.leases().count(), 0);
    let offer = handle(&mut s, T0.plus(86_403), &a.discover());
    let r = offer.reply.as_ref().expect("an offer");
    assert_eq!(
        r.src,
        Ipv4Addr::new(10, 9, 0, 1),
        "the new gateway is the server id"
    );
    let msg = Message::decode(&mut Decoder::new(&r.payload)).expect("decodes");
    assert_eq!(msg.yiaddr(), Ipv4Addr::new(10, 9, 0, 100));
}

#[test]
fn a_new_reservation_moves_the_client_at_its_next_renewal() {
    let mut s = server();
    let a = Client::new(1);
    let old = dora(&mut s, &a, T0);
    let text = format!(
        "dns_servers = [\"192.0.2.53\"]\nreservations = [{{ mac = \"{}\", ip = \"192.168.1.20\" }}]",
        a.mac
    );
    let out = s.reconfigure(config(&text), T0.plus(10));
    assert!(out.is_empty(), "the running lease is kept: {out:?}");
    s.check_consistency().expect("consistent");
    // At T1 the renewal is refused; the client restarts and lands on its reservation.
    let out = handle(&mut s, T0.plus(43_200), &a.renew(old));
    assert_eq!(reply(&out).1.message_type, MessageType::Nak);
    let offer = handle(&mut s, T0.plus(43_201), &a.discover());
    assert_eq!(reply(&offer).0.yiaddr(), ip(20));
    let ack = handle(&mut s, T0.plus(43_201), &a.select(GW, ip(20)));
    assert_eq!(granted(&ack), Some((ip(20), false)));
    assert!(
        ack.events.contains(&Event::LeaseRevoked {
            mac: a.mac,
            ip: old
        }),
        "{:?}",
        ack.events
    );
    assert!(ack.persist.contains(&StoreOp::Remove {
        home: HOME,
        ip: old
    }));
}

#[test]
fn a_reservation_takes_over_another_clients_remembered_address() {
    let mut s = server();
    let a = Client::new(1);
    let got = dora(&mut s, &a, T0);
    let _ = handle(&mut s, T0.plus(5), &a.release(got));
    let owner = Client::new(2);
    let text = format!(
        "reservations = [{{ mac = \"{}\", ip = \"{got}\" }}]",
        owner.mac
    );
    let out = s.reconfigure(config(&text), T0.plus(10));
    assert_eq!(
        out.persist,
        vec![StoreOp::Remove {
            home: HOME,
            ip: got
        }]
    );
    assert!(
        out.events.is_empty(),
        "a remembered lease has no host entry: {:?}",
        out.events
    );
    let out = handle(&mut s, T0.plus(11), &owner.init_reboot(got));
    assert_eq!(granted(&out), Some((got, false)));
    // A comes back and gets another address.
    assert_eq!(dora(&mut s, &a, T0.plus(12)), ip(101));
}

#[test]
fn exhaustion_gives_no_offer_and_an_event() {
    let mut s = server_with("range_start = \"192.168.1.100\"\nrange_end = \"192.168.1.101\"");
    dora(&mut s, &Client::new(1), T0);
    dora(&mut s, &Client::new(2), T0);
    let c = Client::new(3);
    let out = handle(&mut s, T0, &c.discover());
    assert!(out.reply.is_none() && out.persist.is_empty());
    assert_eq!(out.events, vec![Event::PoolExhausted { mac: c.mac }]);
    // When a lease ends, the address is available again (evicting the memory).
    let _ = s.expire(T0.plus(86_400));
    assert_eq!(dora(&mut s, &c, T0.plus(86_401)), ip(100));
}

#[test]
fn client_identifier_is_the_identity_and_is_echoed() {
    let mut s = server();
    let mut a = Client::new(1);
    a.client_id = Some(vec![
        0xff, 0, 0, 0, 1, 0, 1, 0, 1, 0x2c, 0x1f, 0x00, 0x01, 2, 0x42, 0xac, 0x11, 0, 1,
    ]);
    let got = dora(&mut s, &a, T0);
    let offer = handle(&mut s, T0, &a.discover());
    let (msg, _) = reply(&offer);
    assert_eq!(
        get(&msg, 61),
        Some(&DhcpOption::ClientIdentifier(
            a.client_id.clone().unwrap_or_default()
        ))
    );
    assert_eq!(
        s.lease(got).map(|r| r.client_id.clone()),
        a.client_id.clone().map(ClientId::Opaque)
    );
    // Same MAC, another identity (a second OS on the same machine): another lease.
    let mut b = a.clone();
    b.client_id = Some(vec![0xff, 9, 9, 9, 9]);
    assert_eq!(dora(&mut s, &b, T0), ip(101));
    // Same MAC, no identifier: yet another client.
    let mut c = a.clone();
    c.client_id = None;
    assert_eq!(dora(&mut s, &c, T0), ip(102));
    // An Ethernet-type identifier equal to chaddr is the MAC identity.
    let mut d = c.clone();
    d.client_id = Some([&[1u8][..], &c.mac.0[..]].concat());
    let out = handle(&mut s, T0.plus(5), &d.renew(ip(102)));
    assert_eq!(granted(&out), Some((ip(102), true)));
}

#[test]
fn a_device_that_changes_identity_keeps_its_remembered_address() {
    let mut s = server();
    let mut a = Client::new(1);
    a.client_id = Some(vec![0xff, 1, 2, 3, 4]);
    let got = dora(&mut s, &a, T0);
    let _ = handle(&mut s, T0.plus(5), &a.release(got));
    dora(&mut s, &Client::new(2), T0.plus(6));
    // Reinstalled OS: new DUID, same MAC.
    a.client_id = Some(vec![0xff, 5, 6, 7, 8]);
    assert_eq!(dora(&mut s, &a, T0.plus(100)), got);
}

#[test]
fn inform_gets_options_without_a_lease() {
    let mut s = server();
    let c = Client::new(1);
    let out = handle(&mut s, T0, &c.inform(ip(50)));
    assert!(out.persist.is_empty());
    assert_eq!(
        out.events,
        vec![Event::Informed {
            mac: c.mac,
            ip: ip(50)
        }]
    );
    let (msg, r) = reply(&out);
    assert_eq!(r.message_type, MessageType::Ack);
    assert_eq!(msg.yiaddr(), Ipv4Addr::UNSPECIFIED);
    assert_eq!(msg.ciaddr(), ip(50));
    assert_eq!(
        r.dst,
        Destination::Unicast {
            ip: ip(50),
            mac: c.mac
        }
    );
    assert_eq!(get(&msg, 51), None);
    assert_eq!(get(&msg, 58), None);
    assert!(get(&msg, 3).is_some() && get(&msg, 6).is_some());
    // From another network: ignored.
    let out = handle(&mut s, T0, &c.inform(Ipv4Addr::new(10, 0, 0, 5)));
    assert!(out.reply.is_none());
}

// ---- options -----------------------------------------------------------------------------

#[test]
fn parameter_request_list_order_is_followed() {
    let mut s = server_with("mtu = 1450");
    let mut c = Client::new(1);
    c.parameters = [28, 6, 26, 3, 15, 1, 42, 119]
        .map(OptionCode::from)
        .to_vec();
    let out = handle(&mut s, T0, &c.discover());
    let codes = option_codes(&reply(&out).1.payload);
    // Fixed head, then the list in the client's order (42 and 119 are not configured).
    assert_eq!(codes, vec![53, 54, 51, 58, 59, 28, 6, 26, 3, 15, 1]);
}

#[test]
fn mandatory_options_come_even_unasked() {
    let mut s = server();
    let mut c = Client::new(1);
    c.parameters = vec![OptionCode::from(15)];
    let out = handle(&mut s, T0, &c.discover());
    let codes = option_codes(&reply(&out).1.payload);
    assert_eq!(codes, vec![53, 54, 51, 58, 59, 15, 1, 3, 6, 28]);
}

#[test]
fn mtu_option_when_configured() {
    let mut s = server_with("mtu = 1450");
    let (msg, _) = reply(&handle(&mut s, T0, &Client::new(1).discover()));
    assert_eq!(get(&msg, 26), Some(&DhcpOption::InterfaceMtu(1450)));
    let mut s = server();
    let (msg, _) = reply(&handle(&mut s, T0, &Client::new(1).discover()));
    assert_eq!(get(&msg, 26), None);
}

#[derive(Debug)]
struct AcsHook;

impl VendorHook for AcsHook {
    fn vendor_options(&self, query: &VendorQuery<'_>) -> VendorOptions {
        // A TR-069 device identifies itself with option 60 "dslforum.org".
        if query.vendor_class != Some(b"dslforum.org") {
            return VendorOptions::default();
        }
        VendorOptions {
            vendor_specific: Some([&[1u8, 20][..], b"http://acs.example/x"].concat()),
            vi_vendor_specific: vec![ViVendorInfo {
                enterprise: 3561,
                data: vec![1, 3, b'a', b'b', b'c'],
            }],
        }
    }
}

#[test]
fn vendor_hook_adds_options_43_and_125() {
    let mut s = server();
    s.set_vendor_hook(Some(Arc::new(AcsHook)));
    let c = Client::new(1);
    let out = handle(
        &mut s,
        T0,
        &c.with(
            MessageType::Discover,
            Ipv4Addr::UNSPECIFIED,
            &[DhcpOption::ClassIdentifier(b"dslforum.org".to_vec())],
        ),
    );
    let (msg, _) = reply(&out);
    assert!(
        matches!(get(&msg, 43), Some(DhcpOption::VendorExtensions(v)) if v.ends_with(b"acs.example/x"))
    );
    match get(&msg, 125) {
        Some(DhcpOption::Unknown(opt)) => {
            assert_eq!(opt.data(), &[0, 0, 0x0d, 0xe9, 5, 1, 3, b'a', b'b', b'c'])
        }
        other => panic!("option 125 missing: {other:?}"),
    }
    // Other devices get neither.
    let (msg, _) = reply(&handle(&mut s, T0, &Client::new(2).discover()));
    assert!(get(&msg, 43).is_none() && get(&msg, 125).is_none());
    // Static options are there for homes that need no logic.
    s.set_vendor_hook(Some(Arc::new(StaticVendorOptions(VendorOptions {
        vendor_specific: Some(vec![1, 1, 1]),
        vi_vendor_specific: Vec::new(),
    }))));
    let (msg, _) = reply(&handle(&mut s, T0, &Client::new(3).discover()));
    assert_eq!(
        get(&msg, 43),
        Some(&DhcpOption::VendorExtensions(vec![1, 1, 1]))
    );
}

#[test]
fn maximum_message_size_is_respected() {
    let big = StaticVendorOptions(VendorOptions {
        vendor_specific: Some(vec![0xab; 400]),
        vi_vendor_specific: Vec::new(),
    });
    let mut s = server();
    s.set_vendor_hook(Some(Arc::new(big)));
    let mut c = Client::new(1);
    c.client_id = Some(vec![0xff; 40]);
    // No option 57: 576 bytes of IP datagram, 548 of DHCP. Option 43 does not fit.
    let out = handle(&mut s, T0, &c.discover());
    let (msg, r) = reply(&out);
    assert!(r.payload.len() <= 548, "{}", r.payload.len());
    assert!(get(&msg, 43).is_none());
    assert!(
        get(&msg, 61).is_some(),
        "the echoed client id is never squeezed out"
    );
    assert!(get(&msg, 1).is_some() && get(&msg, 3).is_some());
    // A client that accepts 1500 bytes gets it, split per RFC 3396.
    c.max_size = Some(1500);
    let out = handle(&mut s, T0, &c.discover());
    let (msg, r) = reply(&out);
    assert!(r.payload.len() <= 1472);
    assert_eq!(
        get(&msg, 43),
        Some(&DhcpOption::VendorExtensions(vec![0xab; 400]))
    );
    // A home with a small MTU caps it again.
    let mut s = server_with("mtu = 600");
    s.set_vendor_hook(Some(Arc::new(StaticVendorOptions(VendorOptions {
        vendor_specific: Some(vec![0xab; 400]),
        vi_vendor_specific: Vec::new(),
    }))));
    let out = handle(&mut s, T0, &c.discover());
    assert!(reply(&out).1.payload.len() <= 572);
    // A silly option 57 below 576 counts as 576.
    c.max_size = Some(100);
    let out = handle(&mut s, T0, &c.discover());
    assert!(reply(&out).0.opts().get(OptionCode::SubnetMask).is_some());
}

// ---- relayed messages ----------------------------------------------------------------------

#[test]
fn relayed_messages_are_dropped_by_default() {
    let mut s = server();
    let mut c = Client::new(1);
    c.giaddr = Some(ip(250));
    let before = s.usage();
    for bytes in [c.discover(), c.select(GW, ip(100)), c.renew(ip(100))] {
        assert_eq!(s.handle_bytes(T0, &bytes).err(), Some(DropReason::Relayed));
    }
    assert_eq!(s.usage(), before, "nothing changed");
    assert_eq!(DropReason::Relayed.label(), "relayed");
}

#[test]
fn a_home_that_serves_relayed_messages_answers_through_the_relay() {
    let mut s = server_with("relayed = \"serve\"");
    let relay = ip(250);
    let mut c = Client::new(1);
    c.giaddr = Some(relay);
    // perfdhcp sets the broadcast flag: through a relay, it does not matter.
    c.broadcast = true;

    let offer = handle(&mut s, T0, &c.discover());
    let (msg, r) = reply(&offer);
    assert_eq!(r.message_type, MessageType::Offer);
    assert_eq!(r.dst, Destination::Relay { giaddr: relay });
    assert_eq!(
        (r.dst.ip(), r.dst.mac(), r.dst.port()),
        (relay, None, SERVER_PORT)
    );
    assert_eq!(msg.giaddr(), relay, "giaddr is kept in the reply");
    assert_eq!(msg.chaddr(), &c.mac.0);
    assert_eq!(msg.yiaddr(), ip(100));
    assert_eq!(get(&msg, 3), Some(&DhcpOption::Router(vec![GW])));

    // The lease is the client's (chaddr), exactly as for a direct client.
    let ack = handle(&mut s, T0, &c.select(GW, ip(100)));
    let (msg, r) = reply(&ack);
    assert_eq!(r.message_type, MessageType::Ack);
    assert_eq!(r.dst, Destination::Relay { giaddr: relay });
    assert_eq!(msg.giaddr(), relay);
    assert_eq!(granted(&ack), Some((ip(100), false)));
    assert_eq!(
        ack.events[0].host_change(),
        Some(HostChange::Add {
            mac: c.mac,
            ip: ip(100)
        })
    );
    assert!(
        matches!(&ack.persist[..], [StoreOp::Put(r)] if r.mac == c.mac && r.ip == ip(100)),
        "{:?}",
        ack.persist
    );
    // The same client asking directly later keeps its lease.
    let mut direct = c.clone();
    direct.giaddr = None;
    let renew = handle(&mut s, T0.plus(10), &direct.renew(ip(100)));
    assert_eq!(granted(&renew), Some((ip(100), true)));
    assert_eq!(
        reply(&renew).1.dst,
        Destination::Unicast {
            ip: ip(100),
            mac: c.mac
        }
    );

    // A NAK through a relay goes to the relay with the broadcast bit set (RFC 2131 4.3.2).
    let mut other = Client::new(2);
    other.giaddr = Some(relay);
    let nak = handle(&mut s, T0.plus(20), &other.init_reboot(ip(100)));
    let (msg, r) = reply(&nak);
    assert_eq!(r.message_type, MessageType::Nak);
    assert_eq!(r.dst, Destination::Relay { giaddr: relay });
    assert!(msg.flags().broadcast());
    assert_eq!(msg.giaddr(), relay);
}

#[test]
fn a_relay_outside_the_home_or_at_the_gateway_is_refused() {
    let mut s = server_with("relayed = \"serve\"");
    let before = s.usage();
    for giaddr in [
        Ipv4Addr::new(10, 0, 0, 1), // another network: the reply would leave the home
        GW,                         // the gateway is the server, not a relay
        ip(0),                      // the network address
        ip(255),                    // the LAN's broadcast address
        Ipv4Addr::new(192, 168, 2, 250), // the next /24
    ] {
        let mut c = Client::new(1);
        c.giaddr = Some(giaddr);
        assert_eq!(
            s.handle_bytes(T0, &c.discover()).err(),
            Some(DropReason::GiaddrNotInHome(giaddr)),
            "giaddr {giaddr}"
        );
    }
    assert_eq!(s.usage(), before, "nothing changed");
    assert_eq!(
        DropReason::GiaddrNotInHome(GW).label(),
        "giaddr_not_in_home"
    );
    // A host of the LAN inside the pool is a valid relay too.
    let mut c = Client::new(1);
    c.giaddr = Some(ip(150));
    assert!(s.handle_bytes(T0, &c.discover()).is_ok());
}

// ---- persistence -------------------------------------------------------------------------

fn commit(out: Outcome, store: &MemoryStore) -> Committed {
    out.commit(store).expect("memory store")
}

#[test]
fn restore_from_the_store_keeps_every_acknowledged_lease() {
    let store = MemoryStore::new();
    let mut s = server();
    let clients: Vec<Client> = (1..=3).map(Client::new).collect();
    for c in &clients {
        let offer = handle(&mut s, T0, &c.discover());
        let yiaddr = reply(&offer).0.yiaddr();
        let ack = handle(&mut s, T0, &c.select(GW, yiaddr));
        commit(ack, &store);
    }
    let released = handle(&mut s, T0.plus(10), &clients[2].release(ip(102)));
    commit(released, &store);
    assert_eq!(store.len(), 3);

    // "kill -9": a new server from the store only.
    let (mut restored, out) = HomeServer::restore(
        HOME,
        s.config().clone(),
        store.load(HOME).expect("load"),
        T0.plus(20),
    );
    restored.check_consistency().expect("consistent");
    assert!(out.is_empty(), "{out:?}");
    assert_eq!(
        restored.leases().collect::<Vec<_>>(),
        s.leases().collect::<Vec<_>>()
    );
    // The clients renew as if nothing happened; the released one is still remembered.
    let out = handle(&mut restored, T0.plus(43_200), &clients[0].renew(ip(100)));
    assert_eq!(granted(&out), Some((ip(100), true)));
    assert_eq!(
        dora(&mut restored, &Client::new(4), T0.plus(43_201)),
        ip(103)
    );
    assert_eq!(dora(&mut restored, &clients[2], T0.plus(43_202)), ip(102));

    // A restart after a long outage: the leases that ran out are expired and reported.
    let (restored, out) = HomeServer::restore(
        HOME,
        s.config().clone(),
        store.load(HOME).expect("load"),
        T0.plus(200_000),
    );
    restored.check_consistency().expect("consistent");
    let expired: Vec<_> = out
        .events
        .iter()
        .filter(|e| matches!(e, Event::LeaseExpired { .. }))
        .collect();
    assert_eq!(expired.len(), 2);
    assert_eq!(out.persist.len(), 2);
    assert_eq!(restored.usage().remembered, 3);
}

#[test]
fn restore_drops_what_the_configuration_no_longer_allows() {
    let c = Client::new(1);
    let record = |last: u8, state: LeaseState, home: HomeId| LeaseRecord {
        home,
        ip: ip(last),
        client_id: ClientId::Mac(MacAddr([2, 0, 0, 0, 1, last])),
        mac: MacAddr([2, 0, 0, 0, 1, last]),
        state,
        time: T0.plus(1000),
        hostname: None,
    };
    let outside = LeaseRecord {
        ip: Ipv4Addr::new(10, 0, 0, 100),
        ..record(1, LeaseState::Bound, HOME)
    };
    let records = vec![
        outside.clone(),
        record(1, LeaseState::Bound, HOME), // the gateway: revoked
        record(120, LeaseState::Bound, HOME), // fine
        record(30, LeaseState::Bound, HOME), // outside the range: runs until renewal
        record(31, LeaseState::Released, HOME), // outside the range, remembered: dropped
        record(130, LeaseState::Declined, HOME), // quarantine continues
        record(140, LeaseState::Bound, HOME + 1), // another home: not ours
    ];
    let (s, out) = HomeServer::restore(HOME, server().config().clone(), records, T0);
    s.check_consistency().expect("consistent");
    assert_eq!(
        out.persist,
        vec![
            StoreOp::Remove {
                home: HOME,
                ip: outside.ip
            },
            StoreOp::Remove {
                home: HOME,
                ip: ip(1)
            },
            StoreOp::Remove {
                home: HOME,
                ip: ip(31)
            },
        ]
    );
    assert_eq!(
        out.events,
        vec![
            Event::LeaseRevoked {
                mac: outside.mac,
                ip: outside.ip
            },
            Event::LeaseRevoked {
                mac: MacAddr([2, 0, 0, 0, 1, 1]),
                ip: ip(1)
            },
        ]
    );
    let kept: Vec<Ipv4Addr> = s.leases().map(|r| r.ip).collect();
    assert_eq!(kept, vec![ip(30), ip(120), ip(130)]);
    let _ = c;
}

#[test]
fn restore_with_two_records_of_one_client_keeps_the_better_one() {
    let mac = MacAddr([2, 0, 0, 0, 0, 1]);
    let base = LeaseRecord {
        home: HOME,
        ip: ip(100),
        client_id: ClientId::Mac(mac),
        mac,
        state: LeaseState::Released,
        time: T0,
        hostname: None,
    };
    let bound = LeaseRecord {
        ip: ip(101),
        state: LeaseState::Bound,
        time: T0.plus(500),
        ..base.clone()
    };
    for records in [
        vec![base.clone(), bound.clone()],
        vec![bound.clone(), base.clone()],
    ] {
        let (s, out) = HomeServer::restore(HOME, server().config().clone(), records, T0);
        s.check_consistency().expect("consistent");
        assert_eq!(
            out.persist,
            vec![StoreOp::Remove {
                home: HOME,
                ip: ip(100)
            }]
        );
        assert_eq!(s.leases().map(|r| r.ip).collect::<Vec<_>>(), vec![ip(101)]);
    }
}

#[test]
fn a_failing_store_withholds_the_reply() {
    #[derive(Debug)]
    struct Broken;
    impl LeaseStore for Broken {
        fn put(&self, record: &LeaseRecord) -> Result<(), StoreError> {
            Err(StoreError::Put {
                home: record.home,
                ip: record.ip,
                source: "disk full".into(),
            })
        }
        fn remove(&self, _: HomeId, _: Ipv4Addr) -> Result<(), StoreError> {
            Ok(())
        }
        fn load(&self, _: HomeId) -> Result<Vec<LeaseRecord>, StoreError> {
            Ok(Vec::new())
        }
    }
    let mut s = server();
    let c = Client::new(1);
    let _ = handle(&mut s, T0, &c.discover());
    let ack = handle(&mut s, T0, &c.select(GW, ip(100)));
    let e = ack.commit(&Broken).expect_err("the store fails");
    assert!(std::error::Error::source(&e).is_some());
    // The client retransmits; the engine acknowledges the same lease again, to persist again.
    let again = handle(&mut s, T0.plus(4), &c.select(GW, ip(100)));
    assert!(matches!(again.persist.as_slice(), [StoreOp::Put(r)] if r.ip == ip(100)));
    assert_eq!(reply(&again).1.message_type, MessageType::Ack);
}

// ---- several homes -----------------------------------------------------------------------

#[test]
fn homes_with_the_same_mac_and_range_are_independent() {
    let store = MemoryStore::new();
    let mut homes = Homes::new();
    homes.insert(HomeServer::new(1, DhcpConfig::default()));
    homes.insert(HomeServer::new(2, DhcpConfig::default()));
    assert_eq!(homes.len(), 2);
    let c = Client::new(1);
    let neighbour = Client::new(2);

    // Home 2 has another device first, so the same MAC lands on different addresses.
    let out = homes
        .handle_bytes(2, T0, &neighbour.discover())
        .expect("home 2");
    let ack = homes
        .handle_bytes(2, T0, &neighbour.select(GW, reply(&out).0.yiaddr()))
        .expect("home 2");
    commit(ack, &store);
    for home in [1, 2] {
        let out = homes
            .handle_bytes(home, T0, &c.discover())
            .expect("known home");
        let yiaddr = reply(&out).0.yiaddr();
        let ack = homes
            .handle_bytes(home, T0, &c.select(GW, yiaddr))
            .expect("known home");
        assert_eq!(ack.home, home);
        commit(ack, &store);
    }
    assert_eq!(store.get(1, ip(100)).map(|r| r.mac), Some(c.mac));
    assert_eq!(store.get(2, ip(100)).map(|r| r.mac), Some(neighbour.mac));
    assert_eq!(store.get(2, ip(101)).map(|r| r.mac), Some(c.mac));

    // Releasing in home 1 leaves home 2 alone.
    let out = homes
        .handle_bytes(1, T0.plus(5), &c.release(ip(100)))
        .expect("home 1");
    assert_eq!(
        out.events,
        vec![Event::LeaseReleased {
            mac: c.mac,
            ip: ip(100)
        }]
    );
    commit(out, &store);
    let out = homes
        .handle_bytes(2, T0.plus(6), &c.renew(ip(101)))
        .expect("home 2");
    assert_eq!(granted(&out), Some((ip(101), true)));
    // Home 1's .100 is free for anyone else in home 1 only after eviction; home 2's .100 is
    // bound to the neighbour regardless.
    let out = homes
        .handle_bytes(2, T0.plus(7), &Client::new(3).init_reboot(ip(100)))
        .expect("home 2");
    assert_eq!(reply(&out).1.message_type, MessageType::Nak);

    assert_eq!(
        homes.handle_bytes(3, T0, &c.discover()),
        Err(DropReason::UnknownHome)
    );

    // Timers: only home 2 has bound leases left; its outcome says so.
    assert_eq!(homes.next_deadline(), Some(T0.plus(86_400)));
    let outcomes = homes.expire(T0.plus(90_000));
    assert_eq!(outcomes.iter().map(|o| o.home).collect::<Vec<_>>(), vec![2]);
    assert_eq!(outcomes[0].events.len(), 2, "{:?}", outcomes[0].events);

    // Restore one home from the store; the other is untouched.
    let out = homes
        .restore_from(&store, 1, DhcpConfig::default(), T0.plus(10))
        .expect("memory store");
    assert!(out.is_empty());
    assert_eq!(homes.get(1).map(|s| s.usage().remembered), Some(1));
    assert!(homes.remove(1).is_some());
    assert!(homes.get(1).is_none() && homes.get(2).is_some());
}

// ---- bad input ---------------------------------------------------------------------------

#[test]
fn malformed_input_is_dropped_with_a_reason() {
    let c = Client::new(1);
    let good = c.discover();
    let with = |edit: &dyn Fn(&mut Vec<u8>)| {
        let mut bytes = good.clone();
        edit(&mut bytes);
        bytes
    };
    let msg_of = |edit: &dyn Fn(&mut Message)| {
        let mut msg = c.message(MessageType::Discover, Ipv4Addr::UNSPECIFIED);
        edit(&mut msg);
        encode(&msg)
    };
    let cases: Vec<(&str, Vec<u8>, DropReason)> = vec![
        ("empty", Vec::new(), DropReason::Truncated),
        ("header only", good[..200].to_vec(), DropReason::Truncated),
        ("a reply", with(&|b| b[0] = 2), DropReason::NotBootRequest),
        ("op 0", with(&|b| b[0] = 0), DropReason::NotBootRequest),
        ("htype 6", with(&|b| b[1] = 6), DropReason::NotEthernet),
        ("hlen 16", with(&|b| b[2] = 16), DropReason::NotEthernet),
        ("hlen 255", with(&|b| b[2] = 255), DropReason::NotEthernet),
        (
            "BOOTP",
            with(&|b| b[236..240].copy_from_slice(&[0; 4])),
            DropReason::BadMagicCookie,
        ),
        (
            "option length past the end",
            with(&|b| {
                b.truncate(240);
                b.extend_from_slice(&[53, 1, 1, 55, 250, 1, 3]);
            }),
            DropReason::OptionOverrun { code: 55 },
        ),
        (
            "no message type",
            with(&|b| {
                b.truncate(240);
                b.extend_from_slice(&[55, 2, 1, 3, 255]);
            }),
            DropReason::NoMessageType,
        ),
        (
            "message type of length 4",
            with(&|b| {
                b.truncate(240);
                b.extend_from_slice(&[53, 4, 1, 1, 1, 1, 255]);
            }),
            DropReason::BadOptionLength { code: 53 },
        ),
        (
            "relayed",
            msg_of(&|m| {
                m.set_giaddr(Ipv4Addr::new(10, 0, 0, 1));
            }),
            DropReason::Relayed,
        ),
        (
            "an OFFER from a client",
            msg_of(&|m| {
                m.opts_mut()
                    .insert(DhcpOption::MessageType(MessageType::Offer));
            }),
            DropReason::UnsupportedMessageType(2),
        ),
        (
            "unknown message type",
            msg_of(&|m| {
                m.opts_mut()
                    .insert(DhcpOption::MessageType(MessageType::Unknown(200)));
            }),
            DropReason::UnsupportedMessageType(200),
        ),
        (
            "broadcast chaddr",
            msg_of(&|m| {
                m.set_chaddr(&[0xff; 6]);
            }),
            DropReason::BadHardwareAddress,
        ),
        (
            "REQUEST about nothing",
            msg_of(&|m| {
                m.opts_mut()
                    .insert(DhcpOption::MessageType(MessageType::Request));
            }),
            DropReason::MissingRequestedAddress,
        ),
        (
            "DECLINE without option 50",
            msg_of(&|m| {
                m.opts_mut()
                    .insert(DhcpOption::MessageType(MessageType::Decline));
            }),
            DropReason::MissingRequestedAddress,
        ),
        (
            "INFORM without ciaddr",
            msg_of(&|m| {
                m.opts_mut()
                    .insert(DhcpOption::MessageType(MessageType::Inform));
            }),
            DropReason::MissingClientAddress,
        ),
        (
            "client identifier of one byte",
            msg_of(&|m| {
                m.opts_mut().insert(DhcpOption::ClientIdentifier(vec![1]));
            }),
            DropReason::BadOptionLength { code: 61 },
        ),
    ];
    let mut s = server();
    for (what, bytes, expected) in cases {
        assert_eq!(s.handle_bytes(T0, &bytes).err(), Some(expected), "{what}");
        s.check_consistency().expect("consistent");
    }
    assert_eq!(s.usage().offered, 0, "nothing malformed changed state");
    // The Message entry point applies the same checks to caller-built messages.
    let mut msg = c.message(MessageType::Discover, Ipv4Addr::UNSPECIFIED);
    msg.set_htype(dhcproto::v4::HType::Unknown(9));
    assert_eq!(s.handle(T0, &msg).err(), Some(DropReason::NotEthernet));
}

#[test]
fn garbage_never_panics() {
    // A deterministic walk over mutations of valid messages (the fuzz target does this
    // properly); every outcome must leave the engine consistent.
    let mut s = server_with("range_start = \"192.168.1.100\"\nrange_end = \"192.168.1.103\"");
    let seeds: Vec<Vec<u8>> = (1..=6)
        .flat_map(|i| {
            let c = Client::new(i);
            [
                c.discover(),
                c.select(GW, ip(100 + i % 4)),
                c.renew(ip(100 + i % 4)),
                c.decline(ip(100 + i % 4)),
                c.release(ip(100 + i % 4)),
                c.init_reboot(ip(99 + i)),
            ]
        })
        .chain([dhclient_discover(), udhcpc_discover(), dhcpcd_discover()])
        .collect();
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut now = T0;
    let store = MemoryStore::new();
    for _ in 0..20_000 {
        let r = next();
        let mut bytes = seeds[(r % seeds.len() as u64) as usize].clone();
        for _ in 0..(r >> 8) % 4 {
            let r = next();
            let len = bytes.len() as u64;
            match r % 4 {
                0 => {
                    let i = (r >> 8) as usize % bytes.len();
                    bytes[i] = (r >> 32) as u8;
                }
                1 => bytes.truncate(((r >> 8) % (len + 1)) as usize),
                2 => bytes.insert(((r >> 8) % (len + 1)) as usize, (r >> 32) as u8),
                _ => {
                    let i = ((r >> 8) % len.max(1)) as usize;
                    if i < bytes.len() {
                        bytes.remove(i);
                    }
                }
            }
            if bytes.is_empty() {
                break;
            }
        }
        now = now.plus(next() % 5_000);
        if let Ok(out) = s.handle_bytes(now, &bytes) {
            if let Some(reply) = &out.reply {
                assert!(Message::decode(&mut Decoder::new(&reply.payload)).is_ok());
            }
            commit(out, &store);
        }
        if r % 7 == 0 {
            commit(s.expire(now), &store);
        }
        s.check_consistency().expect("consistent after any input");
        // Every change reached the store: it holds exactly the engine's leases.
        let stored = store.load(HOME).expect("load");
        assert_eq!(
            s.leases().collect::<Vec<_>>(),
            stored.iter().collect::<Vec<_>>()
        );
    }
    commit(s.expire(now), &store);
    let (restored, out) = HomeServer::restore(
        HOME,
        s.config().clone(),
        store.load(HOME).expect("load"),
        now,
    );
    restored.check_consistency().expect("consistent");
    assert!(out.is_empty(), "{out:?}");
    assert_eq!(
        restored.leases().collect::<Vec<_>>(),
        s.leases().collect::<Vec<_>>()
    );
}

// ---- real client layouts -----------------------------------------------------------------

/// A raw BOOTREQUEST: header fields as given, then `options` verbatim, padded to `pad_to`.
fn raw_request(xid: u32, flags: u16, mac: [u8; 6], options: &[u8], pad_to: usize) -> Vec<u8> {
    let mut b = vec![1, 1, 6, 0];
    b.extend_from_slice(&xid.to_be_bytes());
    b.extend_from_slice(&[0, 0]); // secs
    b.extend_from_slice(&flags.to_be_bytes());
    b.extend_from_slice(&[0; 16]); // ciaddr, yiaddr, siaddr, giaddr
    b.extend_from_slice(&mac);
    b.extend_from_slice(&[0; 10 + 64 + 128]); // chaddr padding, sname, file
    b.extend_from_slice(&MAGIC_COOKIE);
    b.extend_from_slice(options);
    if b.len() < pad_to {
        b.resize(pad_to, 0);
    }
    b
}

const DHCLIENT_MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];
const UDHCPC_MAC: [u8; 6] = [0x02, 0x00, 0x0a, 0x0b, 0x0c, 0x0d];
const DHCPCD_MAC: [u8; 6] = [0xb8, 0x27, 0xeb, 0x01, 0x02, 0x03];

/// ISC dhclient 4.4 (Debian 12) DISCOVER: no client identifier, hostname, the Debian
/// `request` list, padded to 300 bytes.
fn dhclient_discover() -> Vec<u8> {
    let mut o = vec![53, 1, 1];
    o.extend_from_slice(&[12, 6]);
    o.extend_from_slice(b"debian");
    o.extend_from_slice(&[55, 13, 1, 28, 2, 3, 15, 6, 119, 12, 44, 47, 26, 121, 42]);
    o.push(255);
    raw_request(0x3903_f326, 0, DHCLIENT_MAC, &o, 300)
}

/// busybox udhcpc 1.36 DISCOVER: client id type 1 + MAC, max size 576, vendor class,
/// its default request list.
fn udhcpc_discover() -> Vec<u8> {
    let mut o = vec![53, 1, 1, 61, 7, 1];
    o.extend_from_slice(&UDHCPC_MAC);
    o.extend_from_slice(&[57, 2, 0x02, 0x40]);
    o.extend_from_slice(&[60, 12]);
    o.extend_from_slice(b"udhcp 1.36.1");
    o.extend_from_slice(&[55, 7, 1, 3, 6, 12, 15, 28, 42]);
    o.push(255);
    raw_request(0x7c1a_2b3d, 0, UDHCPC_MAC, &o, 300)
}

/// dhcpcd 10 DISCOVER: RFC 4361 client id (0xff, IAID, DUID-LLT), max size 1472, vendor
/// class, hostname, option 145 (forcerenew nonce, which we do not read), its request list.
fn dhcpcd_discover() -> Vec<u8> {
    let mut o = vec![
        53, 1, 1, 61, 19, 0xff, 0xeb, 0x01, 0x02, 0x03, 0, 1, 0, 1, 0x2c, 0x4a, 0x1b, 0x0e,
    ];
    o.extend_from_slice(&DHCPCD_MAC);
    o.extend_from_slice(&[57, 2, 0x05, 0xc0]);
    let vendor = b"dhcpcd-10.0.6:Linux-6.1.0-18-arm64:aarch64:BCM2835";
    o.extend_from_slice(&[60, vendor.len() as u8]);
    o.extend_from_slice(vendor);
    o.extend_from_slice(&[12, 4]);
    o.extend_from_slice(b"rpi4");
    o.extend_from_slice(&[145, 1, 1]);
    o.extend_from_slice(&[55, 13, 1, 121, 33, 3, 6, 28, 51, 58, 59, 15, 26, 119, 42]);
    o.push(255);
    raw_request(0x5c7b_0a11, 0, DHCPCD_MAC, &o, 300)
}

/// The REQUEST the same client sends in SELECTING: the DISCOVER's options with 53 = 3 and
/// options 50 and 54 inserted after the message type, as all three clients do.
fn selecting_from(discover: &[u8], want: Ipv4Addr) -> Vec<u8> {
    let mut b = discover[..MIN_MESSAGE_LEN].to_vec();
    b.extend_from_slice(&[53, 1, 3, 50, 4]);
    b.extend_from_slice(&want.octets());
    b.extend_from_slice(&[54, 4]);
    b.extend_from_slice(&GW.octets());
    b.extend_from_slice(&discover[MIN_MESSAGE_LEN + 3..]);
    b
}

#[test]
fn real_client_layouts_get_leases() {
    let mut s = server_with("mtu = 1450");
    let cases = [
        (
            "dhclient",
            dhclient_discover(),
            DHCLIENT_MAC,
            Some("debian"),
        ),
        ("udhcpc", udhcpc_discover(), UDHCPC_MAC, None),
        ("dhcpcd", dhcpcd_discover(), DHCPCD_MAC, Some("rpi4")),
    ];
    for (i, (name, discover, mac, hostname)) in cases.into_iter().enumerate() {
        let offer = handle(&mut s, T0, &discover);
        let (msg, r) = reply(&offer);
        let want = ip(100 + i as u8);
        assert_eq!(msg.yiaddr(), want, "{name}");
        assert_eq!(
            r.dst,
            Destination::Unicast {
                ip: want,
                mac: MacAddr(mac)
            },
            "{name}"
        );
        assert_eq!(
            get(&msg, 26),
            Some(&DhcpOption::InterfaceMtu(1450)),
            "{name}"
        );
        let ack = handle(&mut s, T0, &selecting_from(&discover, want));
        assert_eq!(granted(&ack), Some((want, false)), "{name}");
        let record = s.lease(want).expect("bound");
        assert_eq!(record.mac, MacAddr(mac), "{name}");
        assert_eq!(record.hostname.as_deref(), hostname, "{name}");
    }
    // udhcpc's type-1 identifier is its MAC identity; dhcpcd's DUID is opaque and echoed.
    assert_eq!(
        s.lease(ip(101)).map(|r| r.client_id.clone()),
        Some(ClientId::Mac(MacAddr(UDHCPC_MAC)))
    );
    assert!(
        matches!(s.lease(ip(102)).map(|r| &r.client_id), Some(ClientId::Opaque(id)) if id[0] == 0xff)
    );
    let (msg, _) = reply(&handle(&mut s, T0, &dhcpcd_discover()));
    assert!(matches!(get(&msg, 61), Some(DhcpOption::ClientIdentifier(id)) if id.len() == 19));
    // dhclient's order: 1, 28, 3, 15, 6, 26 of what it asked for and we have.
    let out = handle(&mut s, T0, &dhclient_discover());
    assert_eq!(
        option_codes(&reply(&out).1.payload),
        vec![53, 54, 51, 58, 59, 1, 28, 3, 15, 6, 26]
    );
}

// ---- throughput --------------------------------------------------------------------------

/// Many homes' DORA exchanges through the bytes API (store ops produced, not applied),
/// small enough for every run; it prints the rate. The benchmark runs the same load big.
#[test]
fn dora_many_homes() {
    dora_rate(50, 20);
}

/// `homes` homes with `clients_per_home` clients each do DORA; prints the exchanges per second.
fn dora_rate(homes_n: u32, clients_per_home: u8) {
    let mut homes = Homes::new();
    for home in 0..homes_n {
        homes.insert(HomeServer::new(home, DhcpConfig::default()));
    }
    let clients: Vec<Client> = (1..=clients_per_home).map(Client::new).collect();
    let discovers: Vec<Vec<u8>> = clients.iter().map(Client::discover).collect();
    let requests: Vec<Vec<u8>> = clients
        .iter()
        .enumerate()
        .map(|(i, c)| c.select(GW, ip(100 + i as u8)))
        .collect();
    let start = std::time::Instant::now();
    let mut acks = 0u64;
    for home in 0..homes_n {
        for i in 0..usize::from(clients_per_home) {
            let offer = homes
                .handle_bytes(home, T0, &discovers[i])
                .expect("accepted");
            assert!(offer.reply.is_some());
            let ack = homes
                .handle_bytes(home, T0, &requests[i])
                .expect("accepted");
            acks += u64::from(ack.reply.is_some());
        }
    }
    let elapsed = start.elapsed();
    assert_eq!(acks, u64::from(homes_n) * u64::from(clients_per_home));
    let rate = acks as f64 / elapsed.as_secs_f64();
    println!("{acks} DORA exchanges in {elapsed:?}: {rate:.0} per second (one core)");
}
