//! Messages real clients sent, replayed: ISC dhclient 4.4.3-P1 and dhcpcd 9.4.1 (Debian 12).
//!
//! The bytes in `fixtures/` were captured with tcpdump from the clients running in a
//! network namespace with no server; `fixtures/capture.sh` is how (the exact commands are in
//! its header, with the dhcpcd configuration beside it). Each is the UDP payload of the
//! client's first message; what follows it (Request, Renew, ...) is built here from the
//! client's DUID and IAIDs, as that client would.
//!
//! The `iop_*` fixtures are whole sessions: the same clients against this engine
//! (`examples/dhcp6_responder.rs`, run by `fixtures/interop.sh`), which they accepted
//! (addresses configured, prefixes delegated, renewed, released). Replayed here, the engine
//! must give the same answers again.

use super::*;

const DHCLIENT_NA_PD: &[u8] = include_bytes!("fixtures/dhclient_na_pd.bin");
const DHCLIENT_INFO: &[u8] = include_bytes!("fixtures/dhclient_info.bin");
const DHCPCD_NA_PD: &[u8] = include_bytes!("fixtures/dhcpcd_na_pd.bin");
const DHCPCD_NA: &[u8] = include_bytes!("fixtures/dhcpcd_na.bin");
const IOP_DHCLIENT: [(&str, &[u8]); 4] = [
    (
        "solicit",
        include_bytes!("fixtures/iop_dhclient_solicit.bin"),
    ),
    (
        "request",
        include_bytes!("fixtures/iop_dhclient_request.bin"),
    ),
    ("renew", include_bytes!("fixtures/iop_dhclient_renew.bin")),
    (
        "release",
        include_bytes!("fixtures/iop_dhclient_release.bin"),
    ),
];
const IOP_DHCPCD: [(&str, &[u8]); 3] = [
    ("rebind", include_bytes!("fixtures/iop_dhcpcd_rebind.bin")),
    ("solicit", include_bytes!("fixtures/iop_dhcpcd_solicit.bin")),
    ("renew", include_bytes!("fixtures/iop_dhcpcd_renew.bin")),
];

/// Every fixture, named.
pub(super) fn fixtures() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("dhclient_na_pd", DHCLIENT_NA_PD.to_vec()),
        ("dhclient_info", DHCLIENT_INFO.to_vec()),
        ("dhcpcd_na_pd", DHCPCD_NA_PD.to_vec()),
        ("dhcpcd_na", DHCPCD_NA.to_vec()),
    ]
    .into_iter()
    .chain(
        IOP_DHCLIENT
            .iter()
            .chain(&IOP_DHCPCD)
            .map(|(n, b)| (*n, b.to_vec())),
    )
    .collect()
}

/// The capturing client (MAC 52:54:00:12:34:56, EUI-64 link-local address), with the DUID
/// and IAIDs a fixture carries.
fn client_of(bytes: &[u8]) -> Client {
    let msg = decode(bytes).expect("fixture decodes");
    let Some(DhcpOption::ClientId(duid)) = msg.opts().get(OptionCode::ClientId) else {
        panic!("fixture without a Client-ID");
    };
    let iaids = |code| {
        msg.opts()
            .get_all(code)
            .unwrap_or(&[])
            .iter()
            .filter_map(|o| match o {
                DhcpOption::IANA(ia) => Some(ia.id),
                DhcpOption::IAPD(ia) => Some(ia.id),
                _ => None,
            })
            .collect()
    };
    let mut xid = [0; 3];
    xid.copy_from_slice(&bytes[1..4]);
    Client {
        duid: duid.clone(),
        mac: MacAddr([0x52, 0x54, 0x00, 0x12, 0x34, 0x56]),
        xid,
        na: iaids(OptionCode::IANA),
        pd: iaids(OptionCode::IAPD),
    }
}

#[test]
fn the_fixtures_are_what_the_clients_send() {
    let c = client_of(DHCLIENT_NA_PD);
    assert_eq!(c.peer().link_local, addr("fe80::5054:ff:fe12:3456"));
    // dhclient: DUID-LLT of the interface MAC, IAID = the MAC's last four bytes.
    assert_eq!(c.duid[..4], [0, 1, 0, 1]);
    assert_eq!(c.duid[8..], c.mac.0);
    assert_eq!(
        (c.na.clone(), c.pd.clone()),
        (vec![0x0012_3456], vec![0x0012_3456])
    );
    let c = client_of(DHCPCD_NA_PD);
    assert_eq!((c.na.clone(), c.pd.clone()), (vec![1], vec![2]));
    assert_eq!(DHCLIENT_INFO[0], 11, "an Information-Request");
    let msg = decode(DHCPCD_NA_PD).expect("decodes");
    assert!(msg.opts().get(OptionCode::RapidCommit).is_some());
}

#[test]
fn dhclient_solicit_then_request() {
    let mut s = server();
    let c = client_of(DHCLIENT_NA_PD);
    let out = handle(&mut s, T0, &c, DHCLIENT_NA_PD);
    let msg = reply(&out, &c);
    assert_eq!(msg.msg_type(), MessageType::Advertise);
    let offered = granted(&msg);
    assert_eq!(offered.len(), 2);
    assert_eq!(offered[0].kind(), IaKind::Na);
    assert_eq!(offered[1], Lease::Prefix(net("2001:db8:0:110::/60")));
    // dhclient's Request echoes the Advertise's IAs.
    let out = handle(&mut s, T0.plus(1), &c, &c.request(&offered));
    assert_eq!(granted(&reply(&out, &c)), offered);
    assert_eq!(s.usage(IaKind::Na).bound + s.usage(IaKind::Pd).bound, 2);
    // A second Solicit (retransmitted, same xid) gets the same answer.
    let out = handle(&mut s, T0.plus(2), &c, DHCLIENT_NA_PD);
    assert_eq!(granted(&reply(&out, &c)), offered);
}

#[test]
fn dhcpcd_rapid_commit_with_a_prefix_length_hint() {
    let mut s = server();
    let c = client_of(DHCPCD_NA_PD);
    let out = handle(&mut s, T0, &c, DHCPCD_NA_PD);
    let msg = reply(&out, &c);
    assert_eq!(msg.msg_type(), MessageType::Reply, "rapid commit");
    assert_eq!(
        msg.opts().get(OptionCode::RapidCommit),
        Some(&DhcpOption::RapidCommit)
    );
    let got = ias(&msg);
    assert_eq!(got.len(), 2);
    assert_eq!((got[0].kind, got[0].iaid), (IaKind::Na, 1));
    assert_eq!((got[1].kind, got[1].iaid), (IaKind::Pd, 2));
    assert_eq!(got[1].leases[0].0.net().prefix_len(), 60);
    assert_eq!(out.persist.len(), 2);

    // Without rapid commit on the home: an Advertise.
    let mut s = server_with(|s| s.rapid_commit = false);
    let out = handle(&mut s, T0, &c, DHCPCD_NA_PD);
    assert_eq!(reply(&out, &c).msg_type(), MessageType::Advertise);

    let c = client_of(DHCPCD_NA);
    let out = handle(&mut s, T0, &c, DHCPCD_NA);
    assert_eq!(granted(&reply(&out, &c)).len(), 1);
}

#[test]
fn dhclient_information_request() {
    let mut s = server();
    let c = client_of(DHCLIENT_INFO);
    let out = handle(&mut s, T0, &c, DHCLIENT_INFO);
    let msg = reply(&out, &c);
    assert_eq!(msg.msg_type(), MessageType::Reply);
    assert!(ias(&msg).is_empty());
    assert!(msg.opts().get(OptionCode::DomainNameServers).is_some());
    assert!(out.persist.is_empty());
}

/// The xid of a message, for a client that changes it per exchange.
fn with_xid(c: &Client, bytes: &[u8]) -> Client {
    let mut c = c.clone();
    c.xid.copy_from_slice(&bytes[1..4]);
    c
}

#[test]
fn a_dhclient_session_replayed() {
    let mut s = server();
    let [solicit, request, renew, release] = IOP_DHCLIENT.map(|(_, b)| b);
    let c = client_of(solicit);
    let adv = handle(&mut s, T0, &c, solicit);
    let offered = granted(&reply(&adv, &c));
    assert_eq!(
        offered,
        vec![
            Lease::Address(addr("2001:db8:0:100::1229")),
            Lease::Prefix(net("2001:db8:0:110::/60"))
        ],
        "what the engine advertised in the captured run"
    );
    // dhclient's Request names the server and the advertised leases.
    let out = handle(&mut s, T0.plus(1), &with_xid(&c, request), request);
    assert_eq!(granted(&reply(&out, &with_xid(&c, request))), offered);
    let out = handle(&mut s, T0.plus(5), &with_xid(&c, renew), renew);
    assert_eq!(granted(&reply(&out, &with_xid(&c, renew))), offered);
    assert!(
        out.events
            .iter()
            .all(|e| matches!(e, Event::Bound { renewed: true, .. }))
    );
    let out = handle(&mut s, T0.plus(9), &with_xid(&c, release), release);
    assert_eq!(
        status_of(reply(&out, &with_xid(&c, release)).opts()),
        Some(Status::Success)
    );
    assert!(s.bindings().all(|r| r.state == BindingState::Released));
    assert_eq!(s.bindings().count(), 2);
}

#[test]
fn a_dhcpcd_session_replayed() {
    let mut s = server();
    let [rebind, solicit, renew] = IOP_DHCPCD.map(|(_, b)| b);
    let c = client_of(solicit);
    // Its Rebind of a lease from an earlier run: unknown here.
    let out = handle(&mut s, T0, &with_xid(&c, rebind), rebind);
    let got = ias(&reply(&out, &with_xid(&c, rebind)));
    assert!(
        got.iter().all(|ia| ia.status == Some(Status::NoBinding)),
        "{got:?}"
    );
    assert!(out.persist.is_empty());
    let out = handle(&mut s, T0.plus(1), &with_xid(&c, solicit), solicit);
    let bound = granted(&reply(&out, &with_xid(&c, solicit)));
    assert_eq!(
        bound,
        vec![
            Lease::Address(addr("2001:db8:0:100::1c4c")),
            Lease::Prefix(net("2001:db8:0:110::/60"))
        ]
    );
    let out = handle(&mut s, T0.plus(5), &with_xid(&c, renew), renew);
    let got = ias(&reply(&out, &with_xid(&c, renew)));
    // The captured Renew lists the prefix of the captured run (2001:db8:0:120::/60: a
    // dhclient held the first /60 there); this server gave it the first, so that one is
    // extended and the other goes back with lifetimes 0.
    assert_eq!(
        got[0].leases,
        vec![(bound[0], DEFAULT_PREFERRED_SECS, DEFAULT_VALID_SECS)]
    );
    assert_eq!(
        got[1].leases,
        vec![
            (bound[1], DEFAULT_PREFERRED_SECS, DEFAULT_VALID_SECS),
            (Lease::Prefix(net("2001:db8:0:120::/60")), 0, 0)
        ]
    );
}
