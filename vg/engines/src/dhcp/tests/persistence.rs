//! Persistence: restore from the store, a failing store.

use super::*;

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
