//! Relayed messages: dropped by default, served through the relay when asked.

use super::*;

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
