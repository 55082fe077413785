//! The exchanges of RFC 2131: DORA, renewals, INIT-REBOOT, offers.

use super::*;

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
