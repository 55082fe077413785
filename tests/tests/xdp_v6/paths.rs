//! Routed paths: both ways for every LSL kind, delegated prefixes, home-to-home, extension
//! headers and fragments, the tier.

use super::*;

#[test]
fn routed_both_ways_through_every_lsl_kind() {
    let mut rig = rig("v6rt", &[]);
    for home in HOMES {
        let name = home.name;
        // Upstream: the LSL stripped, the hop limit decremented, MACs from the FIB.
        let sent = udp_up(&home, home.host(), INET6, HOST_MAC);
        let (v, out) = rig.up(&home, &sent);
        assert_eq!(v, XdpVerdict::Redirect, "{name}: upstream");
        assert_eq!(
            out,
            rig.upstream_out(&with_hop_limit(&sent, 63)),
            "{name}: upstream bytes"
        );
        // Downstream to the LAN host: its neighbour entry's MAC, from the home's gateway MAC,
        // in the home's LSL.
        let (v, out) = rig.down(&udp_down(&rig, home.host(), 64));
        assert_eq!(v, XdpVerdict::Redirect, "{name}: downstream");
        let inner = frames::udp6(
            gw_mac(home.id),
            HOST_MAC,
            (INET6, 53),
            (home.host(), 40000),
            b"pong",
            63,
        );
        assert_eq!(
            out,
            home.down_frame(rig.access_mac, &out, &inner),
            "{name}: downstream bytes"
        );
        // A delegated prefix goes to the requesting router's MAC.
        let (v, out) = rig.down(&udp_down(&rig, home.behind_router(), 64));
        assert_eq!(v, XdpVerdict::Redirect, "{name}: to a delegated prefix");
        let inner = frames::udp6(
            gw_mac(home.id),
            ROUTER_MAC,
            (INET6, 53),
            (home.behind_router(), 40000),
            b"pong",
            63,
        );
        assert_eq!(
            out,
            home.down_frame(rig.access_mac, &out, &inner),
            "{name}: delegated prefix bytes"
        );
        // ... and comes from that router.
        let sent = udp_up(&home, home.behind_router(), INET6, ROUTER_MAC);
        let (v, out) = rig.up(&home, &sent);
        assert_eq!(v, XdpVerdict::Redirect, "{name}: from a delegated prefix");
        assert_eq!(out, rig.upstream_out(&with_hop_limit(&sent, 63)));
    }
    assert_eq!(rig.counter(Counter::Ipv6Upstream), 8);
    assert_eq!(rig.counter(Counter::Ipv6Downstream), 8);
    // Downstream to an address in no home's prefix is the kernel's.
    let other = Ipv6Addr::new(0x2001, 0xdb8, 0x7777, 0, 0, 0, 0, 1);
    assert_eq!(rig.down(&udp_down(&rig, other, 64)).0, XdpVerdict::Pass);
}

#[test]
fn homes_reach_each_other_directly() {
    let mut rig = rig("v6h2h", &[]);
    for (from, to) in [
        (HOMES[0], HOMES[1]),
        (HOMES[2], HOMES[3]),
        (HOMES[3], HOMES[0]),
    ] {
        let sent = udp_up(&from, from.host(), to.host(), HOST_MAC);
        let (v, out) = rig.up(&from, &sent);
        assert_eq!(v, XdpVerdict::Redirect, "{} -> {}", from.name, to.name);
        let inner = frames::udp6(
            gw_mac(to.id),
            HOST_MAC,
            (from.host(), 40000),
            (to.host(), 53),
            b"ping",
            63,
        );
        assert_eq!(
            out,
            to.down_frame(rig.access_mac, &out, &inner),
            "{} -> {}: the target's encapsulation",
            from.name,
            to.name
        );
    }
    assert_eq!(rig.counter(Counter::Ipv6HomeToHome), 3);
    assert_eq!(
        rig.counter(Counter::Ipv6Upstream),
        0,
        "nothing went to the core"
    );
}

#[test]
fn extension_headers_are_walked_and_fragments_forwarded() {
    let mut rig = rig("v6ext", &[]);
    let home = HOMES[1];
    let plain = udp_up(&home, home.host(), INET6, HOST_MAC);
    // Hop-by-hop with a PadN option, a routing header with no segments left, a destination
    // options header: each walked, the packet forwarded as it is.
    let hbh = [0u8, 0, 1, 4, 0, 0, 0, 0];
    let routing = [0u8, 0, 4, 0, 0, 0, 0, 0];
    let dest = [0u8, 0, 1, 4, 0, 0, 0, 0];
    let chained = frames::with_ext6(&frames::with_ext6(&plain, 43, &routing), 0, &hbh);
    for (what, sent) in [
        ("hop-by-hop", frames::with_ext6(&plain, 0, &hbh)),
        ("routing", frames::with_ext6(&plain, 43, &routing)),
        ("destination options", frames::with_ext6(&plain, 60, &dest)),
        ("hop-by-hop + routing", chained),
    ] {
        let (v, out) = rig.up(&home, &sent);
        assert_eq!(v, XdpVerdict::Redirect, "{what}");
        assert_eq!(out, rig.upstream_out(&with_hop_limit(&sent, 63)), "{what}");
    }
    // Fragments: the first (offset 0, M) carries the UDP header, a later one none; both go
    // on as they are (no reassembly).
    let first = frames::with_ext6(&plain, 44, &[0, 0, 0, 1, 0, 0, 0, 9]);
    let mut later = frames::with_ext6(&plain, 44, &[0, 0, 0, 8, 0, 0, 0, 9]);
    later.truncate(14 + 40 + 8 + 4); // payload bytes only, no UDP header
    let plen = (later.len() - 54) as u16;
    later[18..20].copy_from_slice(&plen.to_be_bytes());
    for (what, sent) in [("first fragment", first), ("later fragment", later)] {
        let (v, out) = rig.up(&home, &sent);
        assert_eq!(v, XdpVerdict::Redirect, "{what}");
        assert_eq!(out, rig.upstream_out(&with_hop_limit(&sent, 63)), "{what}");
    }
    // An RA behind a hop-by-hop header is still an RA.
    let ra = frames::icmp6(
        HOST_MAC,
        gw_mac(home.id),
        home.host(),
        "ff02::1".parse().unwrap(),
        134,
        &[0; 12],
        255,
    );
    assert_eq!(
        rig.up(&home, &frames::with_ext6(&ra, 0, &hbh)).0,
        XdpVerdict::Drop
    );
    assert_eq!(rig.drops(DropReason::RaGuard), 1);
    // Beyond the walk's bound: dropped, whatever follows.
    let mut deep = plain.clone();
    for _ in 0..nerg_abi::MAX_V6_EXT_HEADERS + 1 {
        deep = frames::with_ext6(&deep, 60, &dest);
    }
    assert_eq!(rig.up(&home, &deep).0, XdpVerdict::Drop);
    assert_eq!(rig.drops(DropReason::Ipv6ExtHeaders), 1);
}

#[test]
fn ipv6_counts_against_the_upstream_tier() {
    let tiered = Home {
        name: "tiered",
        id: 9,
        lsl: lsl_kind::DOT1Q,
        s_vid: 0,
        c_vid: 109,
        vni: 0,
    };
    let mut rig = rig("v6tier", &[tiered.rig_home().tier("1M", "1M")]);
    let rec = rig.fp.maps().subscriber(tiered.id).unwrap();
    let rate = rec.qos[nerg_abi::QOS_UP];
    assert_ne!(rate.ns_per_byte_q16, 0, "the home has an upstream limit");
    let payload = [0u8; 992]; // 40 + 8 + 992 = 1040 bytes of IPv6
    let sent = frames::udp6(
        HOST_MAC,
        gw_mac(tiered.id),
        (tiered.host(), 40000),
        (INET6, 53),
        &payload,
        64,
    );
    let mut admitted = 0u64;
    let started = std::time::Instant::now();
    for _ in 0..400 {
        match rig.up(&tiered, &sent).0 {
            XdpVerdict::Redirect => admitted += 1,
            XdpVerdict::Drop => {}
            other => panic!("unexpected verdict {other:?}"),
        }
    }
    let elapsed = started.elapsed().as_nanos() as u64;
    // The bucket holds its burst: one packet starts it, then burst / cost more, and what
    // the rate refills while the test runs (a tick of the coarse clock may add one or two).
    let cost = rate.cost_ns(1040);
    let burst = 1 + rate.burst_ns / cost;
    let most = burst + elapsed / cost + 2;
    assert!(
        (burst..=most).contains(&admitted),
        "admitted {admitted} in {elapsed} ns; the burst holds {burst}, with the refill {most}"
    );
    assert!(admitted < 400, "the tier held packets back");
    assert_eq!(rig.drops(DropReason::RateLimited), 400 - admitted);
    let c = rig.fp.maps().sub_counters(tiered.id).unwrap();
    assert_eq!(c.up_policed_packets, 400 - admitted);
    assert_eq!(
        c.up_policed_bytes,
        (400 - admitted) * 1040,
        "IPv6 bytes counted"
    );
}

#[test]
fn downstream_fragments_and_extension_headers_are_delivered_as_they_are() {
    let mut rig = rig("v6dfrag", &[]);
    for home in HOMES {
        let name = home.name;
        let plain = frames::udp6(
            [0; 6],
            [0; 6],
            (INET6, 53),
            (home.host(), 40000),
            &[0x5a; 64],
            64,
        );
        let mut later = frames::with_ext6(&plain, 44, &[0, 0, 0, 8, 0, 0, 0, 9]);
        later.truncate(14 + 40 + 8 + 24);
        let plen = (later.len() - 54) as u16;
        later[18..20].copy_from_slice(&plen.to_be_bytes());
        for (what, sent) in [
            (
                "first fragment",
                frames::with_ext6(&plain, 44, &[0, 0, 0, 1, 0, 0, 0, 9]),
            ),
            ("later fragment", later),
            (
                "hop-by-hop",
                frames::with_ext6(&plain, 0, &[0, 0, 1, 4, 0, 0, 0, 0]),
            ),
        ] {
            let (v, out) = rig.down(&rig.arriving_from_inet(&sent));
            assert_eq!(v, XdpVerdict::Redirect, "{name}: {what}");
            let mut inner = with_hop_limit(&sent, 63);
            inner[0..6].copy_from_slice(&HOST_MAC);
            inner[6..12].copy_from_slice(&gw_mac(home.id));
            let mut want = home.down_frame(rig.access_mac, &out, &inner);
            if home.lsl == lsl_kind::VXLAN6 {
                // Extension headers: the inner checksums cannot give the outer one, which is
                // then zero (RFC 6935).
                want[14 + 40 + 6..14 + 40 + 8].copy_from_slice(&[0, 0]);
            }
            assert_eq!(out, want, "{name}: {what}");
        }
    }
}

#[test]
fn ipv6_counts_against_the_downstream_tier() {
    let tiered = Home {
        name: "tiered",
        id: 9,
        lsl: lsl_kind::QINQ,
        s_vid: 11,
        c_vid: 109,
        vni: 0,
    };
    let mut rig = rig("v6tierd", &[tiered.rig_home().tier("1M", "1M")]);
    let rate = rig.fp.maps().subscriber(tiered.id).unwrap().qos[nerg_abi::QOS_DOWN];
    assert_ne!(rate.ns_per_byte_q16, 0, "the home has a downstream limit");
    let sent = rig.arriving_from_inet(&frames::udp6(
        [0; 6],
        [0; 6],
        (INET6, 53),
        (tiered.host(), 40000),
        &[0u8; 992],
        64,
    ));
    let mut admitted = 0u64;
    for _ in 0..300 {
        match rig.down(&sent).0 {
            XdpVerdict::Redirect => admitted += 1,
            XdpVerdict::Drop => {}
            other => panic!("unexpected verdict {other:?}"),
        }
    }
    assert!(admitted < 300, "the tier held packets back");
    let c = rig.fp.maps().sub_counters(tiered.id).unwrap();
    assert_eq!(c.down_policed_packets, 300 - admitted);
    assert_eq!(
        c.down_policed_bytes,
        (300 - admitted) * 1040,
        "IPv6 bytes: 40-byte header and payload"
    );
    assert_eq!(c.down_packets, admitted);
}
