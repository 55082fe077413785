//! Persistence: restore from the store, renumbering, a damaged store, a failing store.

use super::*;

#[test]
fn restore_from_the_store_keeps_every_binding() {
    let store = MemoryStore::new();
    let mut s = server();
    let clients: Vec<Client> = (1..=3).map(|n| Client::new(n).with_pd()).collect();
    let mut leases = Vec::new();
    for c in &clients {
        let out = handle(&mut s, T0, c, &c.solicit_rapid());
        leases.push(granted(&reply(&out, c)));
        commit(out, &store);
    }
    let out = handle(
        &mut s,
        T0.plus(10),
        &clients[2],
        &clients[2].release(&leases[2]),
    );
    commit(out, &store);
    assert_eq!(store.len(), 6);

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
        restored.bindings().collect::<Vec<_>>(),
        s.bindings().collect::<Vec<_>>()
    );
    // The clients renew as if nothing happened; the released one is still remembered.
    let c = &clients[0];
    let out = handle(&mut restored, T0.plus(21_600), c, &c.renew(&leases[0]));
    assert_eq!(granted(&reply(&out, c)), leases[0]);
    assert!(
        out.events
            .iter()
            .all(|e| matches!(e, Event::Bound { renewed: true, .. }))
    );
    assert_eq!(
        exchange(&mut restored, &clients[2], T0.plus(21_601)),
        leases[2]
    );

    // A restart after a long outage: the bindings that ran out expire and are reported.
    let (restored, out) = HomeServer::restore(
        HOME,
        s.config().clone(),
        store.load(HOME).expect("load"),
        T0.plus(200_000),
    );
    restored.check_consistency().expect("consistent");
    let expired = out
        .events
        .iter()
        .filter(|e| matches!(e, Event::Expired { .. }))
        .count();
    assert_eq!(expired, 4);
    assert_eq!(out.persist.len(), 4);
    assert_eq!(restored.usage(IaKind::Na).remembered, 3);
    assert_eq!(restored.usage(IaKind::Pd).remembered, 3);
}

#[test]
fn homes_restore_through_the_multi_home_front() {
    let store = MemoryStore::new();
    let mut homes = Homes::new();
    homes.insert(server());
    let c = Client::new(1).with_pd();
    let out = homes
        .handle_bytes(HOME, T0, c.peer(), &c.solicit_rapid())
        .expect("accepted");
    let bound = granted(&reply(&out, &c));
    commit(out, &store);

    let mut after = Homes::new();
    let out = after
        .restore_from(&store, HOME, config(|_| {}), T0.plus(5))
        .expect("load");
    assert!(out.is_empty());
    let restored: Vec<Lease> = after
        .get(HOME)
        .expect("restored home")
        .bindings()
        .map(|r| r.lease)
        .collect();
    assert_eq!(restored, bound);
}

#[test]
fn a_renumbered_home_revokes_what_no_longer_fits() {
    let store = MemoryStore::new();
    let mut s = server();
    let c = Client::new(1).with_pd();
    let out = handle(&mut s, T0, &c, &c.solicit_rapid());
    let old = granted(&reply(&out, &c));
    commit(out, &store);

    // The operator moves the home to another /56 and LAN.
    let renumbered = config(|s| {
        s.lan = net("2001:db8:0:200::/64");
        s.delegated = Some(net("2001:db8:0:200::/56"));
    });
    let (mut restored, out) = HomeServer::restore(
        HOME,
        renumbered,
        store.load(HOME).expect("load"),
        T0.plus(5),
    );
    restored.check_consistency().expect("consistent");
    assert_eq!(out.events.len(), 2);
    assert!(
        out.events
            .iter()
            .all(|e| matches!(e, Event::Revoked { .. }))
    );
    assert_eq!(
        out.events[1].fast_path_change(),
        Some(FastPathChange::RemoveRoute {
            prefix: old[1].net()
        })
    );
    commit(out, &store);
    assert!(store.is_empty());

    // The client's Renew: NoBinding, and its old leases with lifetimes 0.
    let reply_out = handle(&mut restored, T0.plus(10), &c, &c.renew(&old));
    let got = ias(&reply(&reply_out, &c));
    assert!(got.iter().all(|ia| ia.status == Some(Status::NoBinding)));
    assert_eq!(got[0].leases, vec![(old[0], 0, 0)]);
    assert_eq!(got[1].leases, vec![(old[1], 0, 0)]);

    // Reconfiguring a live server does the same.
    let mut live = server();
    let _ = handle(&mut live, T0, &c, &c.solicit_rapid());
    let out = live.reconfigure(config(|s| s.delegated = None), T0.plus(1));
    assert_eq!(
        out.events.len(),
        1,
        "only the prefix goes: {:?}",
        out.events
    );
    assert_eq!(live.usage(IaKind::Na).bound, 1);
}

#[test]
fn a_damaged_store_with_two_records_of_one_ia_keeps_the_better() {
    let c = Client::new(1);
    let record = |iid: u16, state, time| BindingRecord {
        home: HOME,
        lease: Lease::Address(Ipv6Addr::new(0x2001, 0xdb8, 0, 0x100, 0, 0, 0, iid)),
        duid: Duid(c.duid.clone()),
        iaid: 1,
        mac: c.mac,
        link_local: c.peer().link_local,
        state,
        time,
    };
    let older = record(0x1001, BindingState::Expired, T0);
    let bound = record(0x1002, BindingState::Bound, T0.plus(1000));
    let other_home = BindingRecord {
        home: HOME + 1,
        ..record(0x1003, BindingState::Bound, T0.plus(1000))
    };
    let (s, out) = HomeServer::restore(
        HOME,
        config(|_| {}),
        vec![older.clone(), bound.clone(), other_home],
        T0,
    );
    s.check_consistency().expect("consistent");
    assert_eq!(s.bindings().collect::<Vec<_>>(), vec![&bound]);
    assert_eq!(
        out.persist,
        vec![StoreOp::Remove {
            home: HOME,
            lease: older.lease
        }]
    );
}

/// A store that fails every write.
struct Broken;

impl BindingStore for Broken {
    fn put(&self, record: &BindingRecord) -> Result<(), StoreError> {
        Err(StoreError::Put {
            home: record.home,
            lease: record.lease,
            source: "disk full".into(),
        })
    }
    fn remove(&self, home: HomeId, lease: Lease) -> Result<(), StoreError> {
        Err(StoreError::Remove {
            home,
            lease,
            source: "disk full".into(),
        })
    }
    fn load(&self, home: HomeId) -> Result<Vec<BindingRecord>, StoreError> {
        Err(StoreError::Load {
            home,
            source: "disk full".into(),
        })
    }
}

#[test]
fn no_reply_leaves_without_a_durable_binding() {
    let mut s = server();
    let c = Client::new(1);
    let out = handle(&mut s, T0, &c, &c.solicit_rapid());
    assert!(out.reply.is_some());
    let err = out.commit(&Broken).expect_err("the store fails");
    assert!(
        err.to_string().contains("storing the DHCPv6 binding"),
        "{err}"
    );
    // An Advertise needs no store.
    let out = handle(&mut server(), T0, &c, &c.solicit());
    assert!(
        out.commit(&Broken)
            .expect("nothing to store")
            .reply
            .is_some()
    );
    assert!(
        Homes::new()
            .restore_from(&Broken, HOME, config(|_| {}), T0)
            .is_err()
    );
}
