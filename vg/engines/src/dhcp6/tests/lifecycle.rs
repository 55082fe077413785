//! Bindings over time: expiry, stickiness, Release, Decline, a full range, the per-client
//! limit.

use super::*;

/// A home with a four-address range: 2001:db8:0:100::1000 to ::1003.
fn small() -> HomeServer {
    server_with(|s| s.iid_end = 0x1003)
}

#[test]
fn bindings_expire_at_their_valid_lifetime_and_stay_sticky() {
    let mut s = server();
    let c = Client::new(1).with_pd();
    let leases = exchange(&mut s, &c, T0);
    let end = T0.plus(u64::from(DEFAULT_VALID_SECS));
    assert_eq!(s.next_deadline(), Some(end));
    assert!(
        s.expire(end.plus(u64::MAX)).events.len() == 2,
        "saturating time"
    );

    let mut s = server();
    let leases2 = exchange(&mut s, &c, T0);
    assert_eq!(leases, leases2);
    assert!(s.expire(T0.plus(10)).is_empty(), "nothing due yet");
    let out = s.expire(end);
    assert_eq!(out.events.len(), 2);
    assert!(matches!(out.events[0], Event::Expired { .. }));
    assert_eq!(
        out.events[0].fast_path_change(),
        Some(FastPathChange::RemoveHost {
            mac: c.mac,
            ip: match leases[0] {
                Lease::Address(ip) => ip,
                Lease::Prefix(_) => panic!("address first"),
            }
        })
    );
    assert_eq!(
        out.events[1].fast_path_change(),
        Some(FastPathChange::RemoveRoute {
            prefix: leases[1].net()
        })
    );
    assert_eq!(out.persist.len(), 2);
    assert!(
        s.bindings().all(|r| r.state == BindingState::Expired),
        "remembered"
    );
    assert_eq!(s.next_deadline(), None);
    s.check_consistency().expect("consistent");

    // Days later, others came and went; the client gets the same leases back.
    for n in 2..=5 {
        exchange(&mut s, &Client::new(n).with_pd(), end.plus(100));
    }
    assert_eq!(exchange(&mut s, &c, end.plus(86_400)), leases);
}

#[test]
fn release_remembers_and_a_second_release_gets_no_binding() {
    let mut s = server();
    let c = Client::new(1).with_pd();
    let leases = exchange(&mut s, &c, T0);
    let out = handle(&mut s, T0.plus(60), &c, &c.release(&leases));
    let msg = reply(&out, &c);
    assert_eq!(status_of(msg.opts()), Some(Status::Success));
    assert!(ias(&msg).is_empty(), "no IA needs a status");
    assert_eq!(out.events.len(), 2);
    assert!(
        out.events
            .iter()
            .all(|e| matches!(e, Event::Released { .. }))
    );
    assert!(out.events.iter().all(|e| matches!(
        e.fast_path_change(),
        Some(FastPathChange::RemoveHost { .. } | FastPathChange::RemoveRoute { .. })
    )));
    assert!(
        s.bindings()
            .all(|r| r.state == BindingState::Released && r.time == T0.plus(60))
    );
    assert_eq!(s.next_deadline(), None);

    let out = handle(&mut s, T0.plus(61), &c, &c.release(&leases));
    let got = ias(&reply(&out, &c));
    assert_eq!(got.len(), 2);
    assert!(got.iter().all(|ia| ia.status == Some(Status::NoBinding)));
    assert!(out.persist.is_empty());

    // Sticky after release.
    assert_eq!(exchange(&mut s, &c, T0.plus(120)), leases);
}

#[test]
fn a_release_of_someone_elses_lease_changes_nothing() {
    let mut s = server();
    let c = Client::new(1);
    let mine = exchange(&mut s, &c, T0);
    let d = Client::new(2);
    exchange(&mut s, &d, T0);
    let out = handle(&mut s, T0, &d, &d.release(&mine));
    assert!(out.persist.is_empty() && out.events.is_empty());
    assert_eq!(
        s.binding(&mine[0]).map(|r| r.state),
        Some(BindingState::Bound)
    );
}

#[test]
fn decline_quarantines_the_address() {
    let mut s = small();
    let c = Client::new(1);
    let bad = exchange(&mut s, &c, T0);
    let out = handle(&mut s, T0.plus(2), &c, &c.decline(&bad));
    let until = T0.plus(2 + u64::from(DEFAULT_DECLINE_QUARANTINE_SECS));
    assert_eq!(
        out.events,
        vec![Event::Declined {
            lease: bad[0],
            mac: c.mac,
            until
        }]
    );
    assert!(matches!(
        out.events[0].fast_path_change(),
        Some(FastPathChange::RemoveHost { .. })
    ));
    assert_eq!(status_of(reply(&out, &c).opts()), Some(Status::Success));
    assert_eq!(s.usage(IaKind::Na).declined, 1);

    // The client asks again and gets another address; nobody gets the declined one.
    let again = exchange(&mut s, &c, T0.plus(3));
    assert_ne!(again, bad);
    for n in 2..=4 {
        assert_ne!(exchange(&mut s, &Client::new(n), T0.plus(4)), bad);
    }
    let e = Client::new(5);
    let out = handle(&mut s, T0.plus(5), &e, &e.solicit());
    assert_eq!(ias(&reply(&out, &e))[0].status, Some(Status::NoAddrsAvail));

    // The quarantine ends: the address is free again.
    let out = s.expire(until);
    assert!(
        out.events
            .contains(&Event::QuarantineEnded { lease: bad[0] })
    );
    assert!(out.persist.contains(&StoreOp::Remove {
        home: HOME,
        lease: bad[0]
    }));
    assert_eq!(s.usage(IaKind::Na).declined, 0);

    // A Decline for an address the client does not hold.
    let out = handle(&mut s, until, &e, &e.decline(&again));
    assert_eq!(ias(&reply(&out, &e))[0].status, Some(Status::NoBinding));
    assert!(out.persist.is_empty());
}

#[test]
fn a_full_range_reuses_the_longest_unused_memory() {
    let mut s = small();
    let clients: Vec<Client> = (1..=4).map(Client::new).collect();
    let leases: Vec<Lease> = clients
        .iter()
        .enumerate()
        .map(|(i, c)| exchange(&mut s, c, T0.plus(i as u64))[0])
        .collect();
    let late = Client::new(9);
    let out = handle(&mut s, T0.plus(10), &late, &late.solicit());
    assert_eq!(
        ias(&reply(&out, &late))[0].status,
        Some(Status::NoAddrsAvail)
    );
    assert_eq!(
        out.events,
        vec![Event::Exhausted {
            kind: IaKind::Na,
            mac: late.mac
        }]
    );

    // All four release, client 3 first: its memory is the oldest and goes first.
    let t = T0.plus(100);
    let _ = handle(&mut s, t, &clients[2], &clients[2].release(&[leases[2]]));
    for (i, c) in clients.iter().enumerate().filter(|(i, _)| *i != 2) {
        let _ = handle(&mut s, t.plus(10), c, &c.release(&[leases[i]]));
    }
    assert_eq!(s.usage(IaKind::Na).remembered, 4);
    assert_eq!(exchange(&mut s, &late, t.plus(20)), vec![leases[2]]);
    assert_eq!(s.usage(IaKind::Na).remembered, 3);
    // The client whose memory went gets another remembered address; the others keep theirs.
    assert_ne!(exchange(&mut s, &clients[2], t.plus(30)), vec![leases[2]]);
    assert_eq!(s.usage(IaKind::Na).remembered, 2);
}

#[test]
fn a_client_inventing_iaids_is_limited() {
    let mut s = server_with(|s| s.max_leases_per_client = 2);
    let mut c = Client::new(1);
    c.na = vec![1, 2, 3];
    let out = handle(&mut s, T0, &c, &c.request(&[]));
    let got = ias(&reply(&out, &c));
    assert_eq!(got.iter().filter(|ia| ia.status.is_none()).count(), 2);
    assert_eq!(got[2].status, Some(Status::NoAddrsAvail));
    assert!(out.events.contains(&Event::ClientLimit {
        kind: IaKind::Na,
        mac: c.mac
    }));
    // Renewing what it holds still works at the limit.
    c.na = vec![1, 2];
    let out = handle(&mut s, T0.plus(5), &c, &c.renew(&[]));
    let msg = reply(&out, &c);
    assert_eq!(granted(&msg).len(), 2, "{:?}", ias(&msg));
}

#[test]
fn renew_after_the_binding_expired_revives_it() {
    let mut s = server();
    let c = Client::new(1);
    let leases = exchange(&mut s, &c, T0);
    let late = T0.plus(u64::from(DEFAULT_VALID_SECS) + 10);
    let out = handle(&mut s, late, &c, &c.renew(&leases));
    assert!(
        out.events
            .iter()
            .any(|e| matches!(e, Event::Expired { .. }))
    );
    assert!(
        out.events
            .iter()
            .any(|e| matches!(e, Event::Bound { renewed: false, .. }))
    );
    assert_eq!(granted(&reply(&out, &c)), leases);
}
