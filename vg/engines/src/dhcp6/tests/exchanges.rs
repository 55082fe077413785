//! The exchanges of RFC 8415 section 18: Solicit/Advertise/Request/Reply, Rapid Commit,
//! Renew, Rebind, Confirm, Information-Request.

use super::*;

#[test]
fn solicit_advertise_request_reply() {
    let mut s = server();
    let c = Client::new(1).with_pd();
    let store = MemoryStore::new();

    let adv = handle(&mut s, T0, &c, &c.solicit());
    assert!(adv.persist.is_empty());
    assert!(adv.events.is_empty(), "{:?}", adv.events);
    let msg = reply(&adv, &c);
    assert_eq!(msg.msg_type(), MessageType::Advertise);
    assert_eq!(
        adv.reply.as_ref().map(|r| r.message_type),
        Some(MessageType::Advertise)
    );
    assert_eq!(
        msg.opts().get(OptionCode::Preference),
        Some(&DhcpOption::Preference(255))
    );
    assert_eq!(
        msg.opts().get(OptionCode::DomainNameServers),
        Some(&DhcpOption::DomainNameServers(vec![
            addr("2001:db8::53"),
            addr("2001:db8::5353")
        ]))
    );
    match msg.opts().get(OptionCode::DomainSearchList) {
        Some(DhcpOption::DomainSearchList(names)) => {
            assert_eq!(names.len(), 1);
            assert_eq!(names[0].to_string(), "home.arpa.");
        }
        other => panic!("no search list: {other:?}"),
    }
    let adv_ias = ias(&msg);
    assert_eq!(adv_ias.len(), 2);
    let na = &adv_ias[0];
    assert_eq!((na.kind, na.iaid, na.status), (IaKind::Na, 1, None));
    assert_eq!((na.t1, na.t2), (DEFAULT_T1_SECS, DEFAULT_T2_SECS));
    let [(Lease::Address(ip), preferred, valid)] = na.leases[..] else {
        panic!("one address: {na:?}");
    };
    assert!(lan().contains(&ip));
    assert_eq!(
        (preferred, valid),
        (DEFAULT_PREFERRED_SECS, DEFAULT_VALID_SECS)
    );
    let iid = u128::from(ip) as u64;
    assert!((DEFAULT_IID_START..=DEFAULT_IID_END).contains(&iid), "{ip}");
    let pd = &adv_ias[1];
    assert_eq!(
        pd.leases,
        vec![(
            Lease::Prefix(net("2001:db8:0:110::/60")),
            DEFAULT_PREFERRED_SECS,
            DEFAULT_VALID_SECS
        )],
        "the first /60 that does not hold the LAN"
    );

    let offered = granted(&msg);
    let out = handle(&mut s, T0.plus(1), &c, &c.request(&offered));
    let msg = reply(&out, &c);
    assert_eq!(msg.msg_type(), MessageType::Reply);
    assert_eq!(granted(&msg), offered);
    assert_eq!(msg.opts().get(OptionCode::Preference), None);
    assert_eq!(msg.opts().get(OptionCode::RapidCommit), None);
    let expires = T0.plus(1 + u64::from(DEFAULT_VALID_SECS));
    let record = |lease| BindingRecord {
        home: HOME,
        lease,
        duid: Duid(c.duid.clone()),
        iaid: 1,
        mac: c.mac,
        link_local: c.peer().link_local,
        state: BindingState::Bound,
        time: expires,
    };
    assert_eq!(
        out.persist,
        offered
            .iter()
            .map(|&l| StoreOp::Put(record(l)))
            .collect::<Vec<_>>()
    );
    assert_eq!(
        out.events[0],
        Event::Bound {
            lease: offered[0],
            duid: Duid(c.duid.clone()),
            iaid: 1,
            mac: c.mac,
            link_local: c.peer().link_local,
            expires,
            renewed: false,
        }
    );
    assert_eq!(
        out.events[0].fast_path_change(),
        Some(FastPathChange::AddHost { mac: c.mac, ip })
    );
    assert_eq!(
        out.events[1].fast_path_change(),
        Some(FastPathChange::AddRoute {
            prefix: net("2001:db8:0:110::/60"),
            via: c.peer().link_local,
            mac: c.mac
        })
    );
    // Persist first, then the reply is released.
    let committed = commit(out, &store);
    assert!(committed.reply.is_some());
    assert_eq!(store.get(HOME, offered[0]), Some(record(offered[0])));
    assert_eq!(s.usage(IaKind::Na).bound, 1);
    assert_eq!(s.usage(IaKind::Pd).bound, 1);
    assert_eq!(s.usage(IaKind::Pd).capacity, 15);
}

#[test]
fn rapid_commit_binds_on_the_solicit() {
    let mut s = server();
    let c = Client::new(1).with_pd();
    let out = handle(&mut s, T0, &c, &c.solicit_rapid());
    let msg = reply(&out, &c);
    assert_eq!(msg.msg_type(), MessageType::Reply);
    assert_eq!(
        msg.opts().get(OptionCode::RapidCommit),
        Some(&DhcpOption::RapidCommit)
    );
    assert_eq!(granted(&msg).len(), 2);
    assert_eq!(out.persist.len(), 2, "committed before the Reply");
    assert_eq!(s.usage(IaKind::Na).bound, 1);

    // A home that does not allow it answers with an Advertise and binds nothing.
    let mut s = server_with(|s| s.rapid_commit = false);
    let out = handle(&mut s, T0, &c, &c.solicit_rapid());
    let msg = reply(&out, &c);
    assert_eq!(msg.msg_type(), MessageType::Advertise);
    assert_eq!(msg.opts().get(OptionCode::RapidCommit), None);
    assert!(out.persist.is_empty());
    assert_eq!(s.usage(IaKind::Na).bound, 0);
}

#[test]
fn renew_and_rebind_extend_the_binding() {
    let mut s = server();
    let c = Client::new(1).with_pd();
    let leases = exchange(&mut s, &c, T0);

    let t1 = T0.plus(u64::from(DEFAULT_T1_SECS));
    let out = handle(&mut s, t1, &c, &c.renew(&leases));
    let msg = reply(&out, &c);
    assert_eq!(msg.msg_type(), MessageType::Reply);
    assert_eq!(granted(&msg), leases);
    assert!(
        out.events
            .iter()
            .all(|e| matches!(e, Event::Bound { renewed: true, .. }))
    );
    assert_eq!(out.persist.len(), 2, "a renewal is persisted too");
    let expires = t1.plus(u64::from(DEFAULT_VALID_SECS));
    assert!(
        leases
            .iter()
            .all(|l| s.binding(l).map(|r| r.time) == Some(expires))
    );

    // Rebind: no Server-ID, same result.
    let t2 = t1.plus(u64::from(DEFAULT_T2_SECS));
    let out = handle(&mut s, t2, &c, &c.rebind(&leases));
    assert_eq!(granted(&reply(&out, &c)), leases);
    let expires = t2.plus(u64::from(DEFAULT_VALID_SECS));
    assert!(
        leases
            .iter()
            .all(|l| s.binding(l).map(|r| r.time) == Some(expires))
    );
}

#[test]
fn renew_of_an_unknown_ia_gets_no_binding_and_stale_leases_get_zero_lifetimes() {
    let mut s = server();
    let c = Client::new(1);
    let mine = exchange(&mut s, &c, T0);
    let other = Client::new(2);
    let theirs = exchange(&mut s, &other, T0);

    // A client the server never saw.
    let stranger = Client::new(3);
    let out = handle(&mut s, T0, &stranger, &stranger.renew(&mine));
    let got = ias(&reply(&out, &stranger));
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].status, Some(Status::NoBinding));
    assert!(got[0].leases.is_empty(), "{got:?}");
    assert!(out.persist.is_empty());
    assert_eq!(
        s.binding(&mine[0]).map(|r| r.duid.clone()),
        Some(Duid(c.duid.clone()))
    );

    // A client listing its own address and another's: its own extended, the other zeroed.
    let out = handle(&mut s, T0.plus(5), &c, &c.renew(&[mine[0], theirs[0]]));
    let got = ias(&reply(&out, &c));
    assert_eq!(got[0].status, None);
    assert_eq!(
        got[0].leases,
        vec![
            (mine[0], DEFAULT_PREFERRED_SECS, DEFAULT_VALID_SECS),
            (theirs[0], 0, 0)
        ]
    );
    assert_eq!(
        s.binding(&theirs[0]).map(|r| r.state),
        Some(BindingState::Bound)
    );

    // Rebind of an address from another network: lifetimes 0, NoBinding.
    let foreign = Lease::Address(addr("2001:db8:ffff::1"));
    let out = handle(&mut s, T0, &stranger, &stranger.rebind(&[foreign]));
    let got = ias(&reply(&out, &stranger));
    assert_eq!(got[0].status, Some(Status::NoBinding));
    assert_eq!(got[0].leases, vec![(foreign, 0, 0)]);
    assert_eq!((got[0].t1, got[0].t2), (0, 0));
}

#[test]
fn several_ias_of_each_kind_get_distinct_leases() {
    let mut s = server();
    let mut c = Client::new(1);
    c.na = vec![1, 2, 3];
    c.pd = vec![10, 11];
    let leases = exchange(&mut s, &c, T0);
    assert_eq!(leases.len(), 5);
    let distinct: std::collections::BTreeSet<_> = leases.iter().collect();
    assert_eq!(distinct.len(), 5);
    let records: Vec<(IaKind, u32)> = s.bindings().map(|r| (r.kind(), r.iaid)).collect();
    for iaid in [1, 2, 3] {
        assert!(records.contains(&(IaKind::Na, iaid)));
    }
    for iaid in [10, 11] {
        assert!(records.contains(&(IaKind::Pd, iaid)));
    }
}

#[test]
fn a_free_requested_address_is_honoured() {
    let mut s = server();
    let c = Client::new(1);
    let want = Lease::Address(addr("2001:db8:0:100::1234"));
    let out = handle(&mut s, T0, &c, &c.request(&[want]));
    assert_eq!(granted(&reply(&out, &c)), vec![want]);

    // Another client asking for it gets another address.
    let d = Client::new(2);
    let out = handle(&mut s, T0, &d, &d.request(&[want]));
    let got = granted(&reply(&out, &d));
    assert_eq!(got.len(), 1);
    assert_ne!(got[0], want);

    // An address outside the range is not honoured either.
    let e = Client::new(3);
    let outside = Lease::Address(addr("2001:db8:0:100::1"));
    let out = handle(&mut s, T0, &e, &e.request(&[outside]));
    let got = granted(&reply(&out, &e));
    assert_ne!(got, vec![outside]);
    assert_eq!(got.len(), 1);
}

#[test]
fn addresses_are_spread_and_stable_per_ia() {
    // The same client on two fresh servers gets the same address; clients do not get
    // consecutive addresses.
    let c = Client::new(1);
    let a = exchange(&mut server(), &c, T0);
    let b = exchange(&mut server(), &c, T0.plus(1000));
    assert_eq!(a, b);
    let mut s = server();
    let all: Vec<Lease> = (1..=20)
        .flat_map(|n| exchange(&mut s, &Client::new(n), T0))
        .collect();
    let mut iids: Vec<u64> = all
        .iter()
        .map(|l| match l {
            Lease::Address(ip) => u128::from(*ip) as u64,
            Lease::Prefix(_) => panic!("no prefixes asked for"),
        })
        .collect();
    iids.sort_unstable();
    iids.dedup();
    assert_eq!(iids.len(), 20);
    let consecutive = iids.windows(2).filter(|w| w[1] == w[0] + 1).count();
    assert!(consecutive < 5, "{iids:x?}");
}

#[test]
fn confirm_checks_the_lan() {
    let mut s = server();
    let c = Client::new(1);
    let status = |out: &Outcome| status_of(reply(out, &c).opts());

    let on_link = Lease::Address(addr("2001:db8:0:100::abcd"));
    let out = handle(&mut s, T0, &c, &c.confirm(&[on_link]));
    assert_eq!(status(&out), Some(Status::Success));
    assert!(out.persist.is_empty() && out.events.is_empty());

    let moved = Lease::Address(addr("2001:db8:0:200::abcd"));
    let out = handle(&mut s, T0, &c, &c.confirm(&[on_link, moved]));
    assert_eq!(status(&out), Some(Status::NotOnLink));

    // No addresses: no reply at all.
    assert_eq!(
        s.handle_bytes(T0, c.peer(), &c.confirm(&[])),
        Err(DropReason::NothingToConfirm)
    );
}

#[test]
fn information_request_gets_dns_only() {
    let mut s = server();
    let c = Client::new(1);
    let mut msg = Message::new_with_id(MessageType::InformationRequest, c.xid);
    msg.opts_mut().insert(DhcpOption::ClientId(c.duid.clone()));
    let out = handle(&mut s, T0, &c, &encode(&msg));
    let got = reply(&out, &c);
    assert_eq!(got.msg_type(), MessageType::Reply);
    assert!(ias(&got).is_empty());
    assert!(got.opts().get(OptionCode::DomainNameServers).is_some());
    assert!(got.opts().get(OptionCode::DomainSearchList).is_some());
    assert!(out.persist.is_empty());

    // Without a Client-ID (allowed), and with our Server-ID (allowed).
    let anonymous = Message::new_with_id(MessageType::InformationRequest, c.xid);
    let out = s
        .handle_bytes(T0, c.peer(), &encode(&anonymous))
        .expect("accepted");
    let sent = out.reply.expect("a reply");
    let got = Message::decode(&mut Decoder::new(&sent.payload)).expect("decodes");
    assert_eq!(got.opts().get(OptionCode::ClientId), None);
    let mut ours = msg.clone();
    ours.opts_mut().insert(DhcpOption::ServerId(server_duid()));
    assert!(s.handle_bytes(T0, c.peer(), &encode(&ours)).is_ok());

    // A home with no DNS configured sends none.
    let mut quiet = server_with(|s| {
        s.dns_servers.clear();
        s.domain_search.clear();
    });
    let out = handle(&mut quiet, T0, &c, &encode(&msg));
    let got = reply(&out, &c);
    assert_eq!(got.opts().get(OptionCode::DomainNameServers), None);
    assert_eq!(got.opts().get(OptionCode::DomainSearchList), None);
}

#[test]
fn solicit_without_ias_gets_no_addrs_avail() {
    let mut s = server();
    let mut c = Client::new(1);
    c.na.clear();
    let out = handle(&mut s, T0, &c, &c.solicit());
    let msg = reply(&out, &c);
    assert_eq!(msg.msg_type(), MessageType::Advertise);
    assert_eq!(status_of(msg.opts()), Some(Status::NoAddrsAvail));
}

#[test]
fn a_request_for_an_address_of_another_link_gets_not_on_link() {
    let mut s = server();
    let c = Client::new(1).with_pd();
    let elsewhere = Lease::Address(addr("2001:db8:ffff::1000"));
    let out = handle(&mut s, T0, &c, &c.request(&[elsewhere]));
    let got = ias(&reply(&out, &c));
    assert_eq!(got[0].status, Some(Status::NotOnLink));
    assert!(got[0].leases.is_empty());
    // The IA_PD of the same message is served.
    assert_eq!(got[1].status, None);
    assert_eq!(got[1].leases.len(), 1);
    assert_eq!(s.usage(IaKind::Na).bound, 0);

    // In a Solicit the stale hint is ignored and a LAN address advertised.
    let out = handle(
        &mut s,
        T0,
        &c,
        &c.bytes(MessageType::Solicit, false, &[elsewhere]),
    );
    let got = granted(&reply(&out, &c));
    assert!(matches!(got[0], Lease::Address(ip) if lan().contains(&ip)));
}
