//! A lease's life: release, stickiness, expiry, decline.

use super::*;

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
