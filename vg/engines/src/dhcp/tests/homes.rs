//! Several homes with the same MACs and ranges.

use super::*;

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
