//! Prefix delegation (IA_PD): the slots of the home's prefix, never the LAN's, hints,
//! exhaustion, routes.

use super::*;

#[test]
fn every_slot_but_the_lans_is_delegated_then_no_prefix_avail() {
    let mut s = server();
    let mut got = Vec::new();
    for n in 1..=15 {
        let c = Client::new(n).only_pd();
        got.extend(exchange(&mut s, &c, T0));
    }
    let expected: Vec<Lease> = (1..=15u16)
        .map(|i| {
            Lease::Prefix(
                Ipv6Net::new(
                    Ipv6Addr::new(0x2001, 0xdb8, 0, 0x100 | (i << 4), 0, 0, 0, 0),
                    60,
                )
                .expect("net"),
            )
        })
        .collect();
    assert_eq!(got, expected);
    assert!(got.iter().all(|l| !l.net().contains(&lan())));

    let c = Client::new(16).only_pd();
    let out = handle(&mut s, T0, &c, &c.request(&[]));
    let got = ias(&reply(&out, &c));
    assert_eq!(got[0].status, Some(Status::NoPrefixAvail));
    assert!(got[0].leases.is_empty());
    assert_eq!((got[0].t1, got[0].t2), (0, 0));
    assert_eq!(
        out.events,
        vec![Event::Exhausted {
            kind: IaKind::Pd,
            mac: c.mac
        }]
    );
}

#[test]
fn a_64_per_delegation_and_a_lan_outside_the_prefix() {
    let mut s = server_with(|s| {
        s.delegated = Some(net("2001:db8:1::/56"));
        s.pd_len = 64;
    });
    let c = Client::new(1).only_pd();
    assert_eq!(
        exchange(&mut s, &c, T0),
        vec![Lease::Prefix(net("2001:db8:1::/64"))]
    );
    assert_eq!(s.usage(IaKind::Pd).capacity, 256);
}

#[test]
fn prefix_hints_are_honoured_when_free_and_valid() {
    let mut s = server();
    let c = Client::new(1).only_pd();
    let want = Lease::Prefix(net("2001:db8:0:1a0::/60"));
    let out = handle(&mut s, T0, &c, &c.request(&[want]));
    assert_eq!(granted(&reply(&out, &c)), vec![want]);

    for (n, hint) in [
        (2, "2001:db8:0:1a0::/60"), // taken
        (3, "2001:db8:0:100::/60"), // the LAN's
        (4, "2001:db8:0:1b0::/64"), // wrong length: not a hint we can honour
        (5, "2001:db8:9::/60"),     // another prefix
    ] {
        let d = Client::new(n).only_pd();
        let hint = Lease::Prefix(net(hint));
        let out = handle(&mut s, T0, &d, &d.request(&[hint]));
        let got = granted(&reply(&out, &d));
        assert_eq!(got.len(), 1, "{hint}");
        assert_ne!(got[0], hint, "{hint}");
    }
}

#[test]
fn a_length_hint_alone_is_ignored() {
    // dhcpcd sends IA_PD with an IA Prefix of ::/60 (a length hint).
    let mut s = server_with(|s| s.pd_len = 64);
    let c = Client::new(1).only_pd();
    let hint = IAPrefix {
        preferred_lifetime: 0,
        valid_lifetime: 0,
        prefix_len: 48,
        prefix_ip: Ipv6Addr::UNSPECIFIED,
        opts: DhcpOptions::new(),
    };
    let mut msg = c.message(MessageType::Solicit, false, &[], &[]);
    if let Some(DhcpOption::IAPD(ia)) = msg.opts_mut().get_mut(OptionCode::IAPD) {
        ia.opts.insert(DhcpOption::IAPrefix(hint));
    }
    let out = handle(&mut s, T0, &c, &encode(&msg));
    let got = granted(&reply(&out, &c));
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].net().prefix_len(), 64);
}

#[test]
fn no_delegated_prefix_means_no_prefix_avail() {
    let mut s = server_with(|s| s.delegated = None);
    let c = Client::new(1).with_pd();
    let out = handle(&mut s, T0, &c, &c.solicit_rapid());
    let got = ias(&reply(&out, &c));
    assert_eq!(got[0].kind, IaKind::Na);
    assert_eq!(got[0].status, None);
    assert_eq!(got[1].kind, IaKind::Pd);
    assert_eq!(got[1].status, Some(Status::NoPrefixAvail));
    assert_eq!(s.usage(IaKind::Pd).capacity, 0);
}

#[test]
fn a_router_that_moves_keeps_its_prefix_routed_to_its_new_address() {
    let mut s = server();
    let c = Client::new(1).only_pd();
    let prefix = exchange(&mut s, &c, T0);
    // The same DUID from another interface (new MAC and link-local address): the route
    // follows.
    let mut moved = c.clone();
    moved.mac = MacAddr([0x52, 0x54, 0x00, 0x99, 0x99, 0x99]);
    let out = handle(&mut s, T0.plus(10), &moved, &moved.renew(&prefix));
    assert_eq!(
        out.events[0].fast_path_change(),
        Some(FastPathChange::AddRoute {
            prefix: prefix[0].net(),
            via: moved.peer().link_local,
            mac: moved.mac
        })
    );
    assert_eq!(
        s.binding(&prefix[0]).map(|r| r.link_local),
        Some(moved.peer().link_local)
    );
}
