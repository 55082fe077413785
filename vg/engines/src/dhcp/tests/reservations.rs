//! Reservations, pool exhaustion, client identity, INFORM.

use super::*;

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
