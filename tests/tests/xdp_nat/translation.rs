//! Translation both ways, for every LSL kind: round trips, edge cases, ICMP errors, hairpinning, filtering, port forwards, session limits, MSS clamping, fragments, mutated frames.

use super::*;

#[test]
fn udp_tcp_and_icmp_round_trip_through_every_lsl_kind() {
    let mut rig = rig("natrt");
    let created0 = rig.counter(Counter::NatCreated);
    for home in HOMES {
        let name = home.name;
        let gw = gw_mac(home.id);
        let up_encap = home.encap(rig.access_mac);
        let wrap = |inner: Vec<u8>| up_encap.encapsulate(&inner).unwrap();

        // UDP out: a new mapping in the home's block (port 40000 kept where the block has it).
        let (v, out) = rig.up(&wrap(udp_up(40000, INTERNET, 53)));
        assert_eq!(v, XdpVerdict::Redirect, "{name}: UDP upstream");
        let (public, port, _) = rig.mapping(home.id, 40000, 17);
        assert_eq!(public, home.public, "{name}: paired pooling");
        assert!(
            home.in_block(port),
            "{name}: port {port} outside the home's block"
        );
        if home.in_block(40000) {
            assert_eq!(port, 40000, "{name}: port preservation");
        }
        // The XDP program picked exactly the port the control plane's reference picks.
        let reference = vg::nat::select::select_port(
            &vg::nat::select::SubscriberPorts::new(home.public, BLOCK_SIZE, &[home.block]).unwrap(),
            40000,
            nerg_abi::nat_flow_hash(SEED, home.id, 17, raw(HOST), 40000u16.to_be()),
            |_| true,
        )
        .unwrap();
        assert_eq!(
            port, reference.port,
            "{name}: the probe sequence matches vg::nat::select"
        );
        let want = rig.upstream_out(frames::udp_ttl(
            HOST_MAC,
            [0; 6],
            (public, port),
            (INTERNET, 53),
            b"ping",
            63,
        ));
        assert_eq!(out, want, "{name}: translated UDP upstream");

        // The same flow to another destination keeps its mapping (endpoint-independent).
        let (v, out) = rig.up(&wrap(udp_up(40000, INTERNET2, 123)));
        assert_eq!(v, XdpVerdict::Redirect);
        let want = rig.upstream_out(frames::udp_ttl(
            HOST_MAC,
            [0; 6],
            (public, port),
            (INTERNET2, 123),
            b"ping",
            63,
        ));
        assert_eq!(out, want, "{name}: EIM");

        // UDP back: translated, encapsulated for the home, redirected to the access side.
        let reply = frames::udp(
            NEXT_HOP_MAC,
            rig.core_mac,
            (INTERNET, 53),
            (public, port),
            b"pong",
        );
        let (v, out) = rig.down(&reply);
        assert_eq!(v, XdpVerdict::Redirect, "{name}: UDP downstream");
        let inner = frames::udp_ttl(gw, HOST_MAC, (INTERNET, 53), (HOST, 40000), b"pong", 63);
        let sport = home.vxlan_sport(&out);
        if home.vni != 0 {
            assert!(sport >= 49152, "{name}: VXLAN source port {sport}");
        }
        let want = home
            .down_encap(rig.access_mac, sport)
            .encapsulate(&inner)
            .unwrap();
        assert_eq!(out, want, "{name}: translated UDP downstream");

        // TCP: SYN out, SYN-ACK back.
        let syn = frames::tcp(
            HOST_MAC,
            [0; 6],
            (HOST, 50000),
            (INTERNET, 443),
            TcpControl::Syn,
            1000,
            None,
            &[],
            64,
        );
        let (v, out) = rig.up(&wrap(syn));
        assert_eq!(v, XdpVerdict::Redirect, "{name}: SYN");
        let (public, tport, seen) = rig.mapping(home.id, 50000, 6);
        assert!(home.in_block(tport), "{name}: TCP port {tport}");
        assert_eq!(seen & tcp_seen::SYN_OUT, tcp_seen::SYN_OUT);
        let want = rig.upstream_out(frames::tcp(
            HOST_MAC,
            [0; 6],
            (public, tport),
            (INTERNET, 443),
            TcpControl::Syn,
            1000,
            None,
            &[],
            63,
        ));
        assert_eq!(out, want, "{name}: translated SYN");
        let synack = frames::tcp(
            NEXT_HOP_MAC,
            rig.core_mac,
            (INTERNET, 443),
            (public, tport),
            TcpControl::Syn,
            5000,
            Some(1001),
            &[],
            64,
        );
        let (v, out) = rig.down(&synack);
        assert_eq!(v, XdpVerdict::Redirect, "{name}: SYN-ACK");
        let inner = frames::tcp(
            gw,
            HOST_MAC,
            (INTERNET, 443),
            (HOST, 50000),
            TcpControl::Syn,
            5000,
            Some(1001),
            &[],
            63,
        );
        let sport = home.vxlan_sport(&out);
        let want = home
            .down_encap(rig.access_mac, sport)
            .encapsulate(&inner)
            .unwrap();
        assert_eq!(out, want, "{name}: translated SYN-ACK");
        let ack = frames::tcp(
            HOST_MAC,
            [0; 6],
            (HOST, 50000),
            (INTERNET, 443),
            TcpControl::None,
            1001,
            Some(5001),
            b"GET",
            64,
        );
        assert_eq!(rig.up(&wrap(ack)).0, XdpVerdict::Redirect);
        let (_, _, seen) = rig.mapping(home.id, 50000, 6);
        assert_eq!(
            seen & tcp_seen::ESTABLISHED,
            tcp_seen::ESTABLISHED,
            "{name}: established"
        );

        // ICMP echo: the identifier is translated like a port.
        let echo = frames::icmp_echo_msg(HOST_MAC, [0; 6], HOST, INTERNET, 7, 1, false, 64);
        let (v, out) = rig.up(&wrap(echo));
        assert_eq!(v, XdpVerdict::Redirect, "{name}: echo");
        let (public, id, _) = rig.mapping(home.id, 7, 1);
        assert!(home.in_block(id), "{name}: ICMP id {id}");
        let want = rig.upstream_out(frames::icmp_echo_msg(
            HOST_MAC, [0; 6], public, INTERNET, id, 1, false, 63,
        ));
        assert_eq!(out, want, "{name}: translated echo");
        let echo_reply = frames::icmp_echo_msg(
            NEXT_HOP_MAC,
            rig.core_mac,
            INTERNET,
            public,
            id,
            1,
            true,
            64,
        );
        let (v, out) = rig.down(&echo_reply);
        assert_eq!(v, XdpVerdict::Redirect, "{name}: echo reply");
        let inner = frames::icmp_echo_msg(gw, HOST_MAC, INTERNET, HOST, 7, 1, true, 63);
        let sport = home.vxlan_sport(&out);
        let want = home
            .down_encap(rig.access_mac, sport)
            .encapsulate(&inner)
            .unwrap();
        assert_eq!(out, want, "{name}: translated echo reply");

        // TTL 1 from the home: the gateway answers (slow path), nothing is forwarded.
        let ttl1 = frames::udp_ttl(HOST_MAC, [0; 6], (HOST, 40000), (INTERNET, 53), b"x", 1);
        let (v, out) = rig.up(&wrap(ttl1.clone()));
        assert_eq!(v, XdpVerdict::Drop, "{name}: TTL 1");
        assert_eq!(out, wrap(ttl1));
        assert_eq!(
            rig.punts(),
            vec![PuntReason::TtlExceeded.index() as u16],
            "{name}"
        );
    }
    assert_eq!(
        rig.counter(Counter::NatCreated) - created0,
        3 * HOMES.len() as u64,
        "three mappings per home"
    );
}

#[test]
fn downstream_edge_cases() {
    let mut rig = rig("natdown");
    let home = HOMES[0];
    let wrap = |inner: Vec<u8>| home.encap([0; 6]).encapsulate(&inner).unwrap();
    assert_eq!(
        rig.up(&wrap(udp_up(40000, INTERNET, 53))).0,
        XdpVerdict::Redirect
    );

    let to = |dst: Ipv4Addr, port: u16, ttl: u8| {
        frames::udp_ttl(NEXT_HOP_MAC, [0; 6], (INTERNET, 53), (dst, port), b"x", ttl)
    };
    let before = rig.drops(DropReason::NoMapping);
    let (v, _) = rig.down(&to(PUBLIC1, 40001, 64));
    assert_eq!(v, XdpVerdict::Drop, "unsolicited: no mapping");
    assert_eq!(rig.drops(DropReason::NoMapping) - before, 1);

    let other = to(Ipv4Addr::new(10, 99, 0, 1), 40000, 64);
    let (v, out) = rig.down(&other);
    assert_eq!(v, XdpVerdict::Pass, "not a public address: the stack's");
    assert_eq!(out, other);

    let before = rig.drops(DropReason::TtlExpired);
    assert_eq!(rig.down(&to(PUBLIC1, 40000, 1)).0, XdpVerdict::Drop);
    assert_eq!(rig.drops(DropReason::TtlExpired) - before, 1);

    // A later fragment of a datagram whose first fragment never came: nowhere to go.
    let mut frag = to(PUBLIC1, 40000, 64);
    frag[14 + 7] = 8; // offset 64 bytes
    let before = rig.drops(DropReason::FragmentOrphan);
    assert_eq!(rig.down(&frag).0, XdpVerdict::Drop);
    assert_eq!(rig.drops(DropReason::FragmentOrphan) - before, 1);
}

#[test]
fn upstream_edge_cases() {
    let mut rig = rig("natup");
    let home = HOMES[0];
    let wrap = |inner: Vec<u8>| home.encap([0; 6]).encapsulate(&inner).unwrap();

    // No route: dropped, counted.
    let before = rig.drops(DropReason::NoRoute);
    assert_eq!(
        rig.up(&wrap(udp_up(40000, BLACKHOLE, 53))).0,
        XdpVerdict::Drop
    );
    assert_eq!(rig.drops(DropReason::NoRoute) - before, 1);

    // Next hop without a neighbour entry: translated, decapsulated, handed to the stack
    // addressed to the access interface, which resolves the neighbour.
    let (v, out) = rig.up(&wrap(udp_up(40001, NO_NEIGH, 53)));
    assert_eq!(v, XdpVerdict::Pass, "NO_NEIGH goes to the stack");
    let (public, port, _) = rig.mapping(home.id, 40001, 17);
    let mut want = frames::udp_ttl(
        HOST_MAC,
        [0; 6],
        (public, port),
        (NO_NEIGH, 53),
        b"ping",
        63,
    );
    want[0..6].copy_from_slice(&rig.access_mac);
    assert_eq!(out, want);
    assert_eq!(rig.counter(Counter::FibNoNeigh), 1);

    // A home without a public address.
    let no_nat = Encap::Dot1q {
        c_vid: Vid::new(104).unwrap(),
    };
    let before = rig.drops(DropReason::NoPublicAddress);
    assert_eq!(
        rig.up(&no_nat.encapsulate(&udp_up(1, INTERNET, 53)).unwrap())
            .0,
        XdpVerdict::Drop
    );
    assert_eq!(rig.drops(DropReason::NoPublicAddress) - before, 1);

    // A home whose block is full: no port is stolen, the packet is dropped and counted.
    let full = Encap::Dot1q {
        c_vid: Vid::new(105).unwrap(),
    };
    let before = rig.drops(DropReason::NatPortsExhausted);
    assert_eq!(
        rig.up(&full.encapsulate(&udp_up(60001, INTERNET, 53)).unwrap())
            .0,
        XdpVerdict::Drop
    );
    assert_eq!(rig.drops(DropReason::NatPortsExhausted) - before, 1);
    let taken = rig
        .fp
        .maps()
        .nat_reverse(&NatRevKey {
            pub_ip: raw(PUBLIC2),
            pub_port: 60001u16.to_be(),
            proto: 17,
            _pad: 0,
        })
        .unwrap()
        .unwrap();
    assert_eq!(taken.sub, 99, "the other owner keeps its port");

    // An ICMP error whose quote is not an IPv4 header without options: not translated.
    let mut unreach = frames::icmp_echo_msg(HOST_MAC, [0; 6], HOST, INTERNET, 7, 1, false, 64);
    unreach[34] = 3; // destination unreachable, "quoting" echo data
    let before = rig.drops(DropReason::IcmpUnsupported);
    assert_eq!(rig.up(&wrap(unreach)).0, XdpVerdict::Drop);
    assert_eq!(rig.drops(DropReason::IcmpUnsupported) - before, 1);
    // Fragmented ICMP is not translated.
    let mut frag = frames::icmp_echo_msg(HOST_MAC, [0; 6], HOST, INTERNET, 7, 1, false, 64);
    frag[14 + 6] |= 0x20;
    let before = rig.drops(DropReason::Fragment);
    assert_eq!(rig.up(&wrap(frag)).0, XdpVerdict::Drop);
    assert_eq!(rig.drops(DropReason::Fragment) - before, 1);
}

#[test]
fn icmp_errors_are_translated_both_ways() {
    let mut rig = rig("naticmp");
    let errors0 = rig.counter(Counter::NatIcmpError);
    for home in HOMES {
        let name = home.name;
        let gw = gw_mac(home.id);
        let access_mac = rig.access_mac;
        let wrap = |inner: Vec<u8>| home.encap(access_mac).encapsulate(&inner).unwrap();

        // UDP out; a router answers "time exceeded", quoting 8 bytes of the datagram.
        let (v, out) = rig.up(&wrap(udp_up(40000, INTERNET, 53)));
        assert_eq!(v, XdpVerdict::Redirect);
        let (public, port) = rig.public_of(home.id, 40000, 17);
        // An ICMP error a router on the path sends to the home's public address.
        let core_mac = rig.core_mac;
        let from_router = |icmp_type, code, quoted: &[u8], quote_l4| {
            frames::icmp_error(
                NEXT_HOP_MAC,
                core_mac,
                ROUTER,
                public,
                icmp_type,
                code,
                quoted,
                quote_l4,
                64,
            )
        };
        let err = from_router(11, 0, &out, 8);
        let (v, got) = rig.down(&err);
        assert_eq!(v, XdpVerdict::Redirect, "{name}: time exceeded downstream");
        let sent = frames::udp_ttl(HOST_MAC, [0; 6], (HOST, 40000), (INTERNET, 53), b"ping", 63);
        let inner = frames::icmp_error(gw, HOST_MAC, ROUTER, HOST, 11, 0, &sent, 8, 63);
        assert_eq!(
            got,
            down_frame(&rig, &home, &got, &inner),
            "{name}: quoted UDP"
        );

        // TCP SYN out; "fragmentation needed" quoting the whole segment: the quoted TCP
        // checksum is rewritten too.
        let syn = |src: (Ipv4Addr, u16), ttl| {
            frames::tcp_syn(
                HOST_MAC,
                [0; 6],
                src,
                (INTERNET, 443),
                None,
                &frames::mss_option(1460),
                ttl,
            )
        };
        let (v, out) = rig.up(&wrap(syn((HOST, 50000), 64)));
        assert_eq!(v, XdpVerdict::Redirect);
        let err = from_router(3, 4, &out, 64);
        let (v, got) = rig.down(&err);
        assert_eq!(v, XdpVerdict::Redirect, "{name}: frag needed downstream");
        let inner = frames::icmp_error(
            gw,
            HOST_MAC,
            ROUTER,
            HOST,
            3,
            4,
            &syn((HOST, 50000), 63),
            64,
            63,
        );
        assert_eq!(
            got,
            down_frame(&rig, &home, &got, &inner),
            "{name}: quoted TCP"
        );

        // An echo request out; "time exceeded" quoting it: the identifier goes back.
        let echo = |src, id, ttl| {
            frames::icmp_echo_msg(HOST_MAC, [0; 6], src, INTERNET, id, 1, false, ttl)
        };
        let (v, out) = rig.up(&wrap(echo(HOST, 7, 64)));
        assert_eq!(v, XdpVerdict::Redirect);
        let err = from_router(11, 0, &out, 8);
        let (v, got) = rig.down(&err);
        assert_eq!(v, XdpVerdict::Redirect, "{name}: quoted echo");
        let inner =
            frames::icmp_error(gw, HOST_MAC, ROUTER, HOST, 11, 0, &echo(HOST, 7, 63), 8, 63);
        assert_eq!(
            got,
            down_frame(&rig, &home, &got, &inner),
            "{name}: quoted echo"
        );

        // The home host answers a datagram it got with "port unreachable": upstream, the
        // outer source and the quoted destination become the mapping's.
        let delivered = frames::udp_ttl(gw, HOST_MAC, (INTERNET, 53), (HOST, 40000), b"pong", 63);
        let unreach = frames::icmp_error(HOST_MAC, gw, HOST, INTERNET, 3, 3, &delivered, 8, 64);
        let (v, got) = rig.up(&wrap(unreach));
        assert_eq!(v, XdpVerdict::Redirect, "{name}: port unreachable upstream");
        let seen = frames::udp_ttl(
            NEXT_HOP_MAC,
            rig.core_mac,
            (INTERNET, 53),
            (public, port),
            b"pong",
            63,
        );
        let want = rig.upstream_out(frames::icmp_error(
            HOST_MAC, [0; 6], public, INTERNET, 3, 3, &seen, 8, 63,
        ));
        assert_eq!(got, want, "{name}: translated port unreachable");

        // An error quoting a port nobody maps: dropped, counted.
        let stray = frames::udp_ttl(HOST_MAC, [0; 6], (public, 1), (INTERNET, 53), b"x", 63);
        let err = from_router(11, 0, &stray, 8);
        let before = rig.drops(DropReason::NoMapping);
        assert_eq!(rig.down(&err).0, XdpVerdict::Drop, "{name}: unmapped quote");
        assert_eq!(rig.drops(DropReason::NoMapping) - before, 1);
    }
    assert_eq!(
        rig.counter(Counter::NatIcmpError) - errors0,
        4 * HOMES.len() as u64
    );
}

#[test]
fn hairpinning_delivers_between_homes_with_external_addresses() {
    let mut rig = rig("nathair");
    let [h1, h2, h3, _] = HOMES;
    let wrap =
        |rig: &Rig, h: &Home, inner: Vec<u8>| h.encap(rig.access_mac).encapsulate(&inner).unwrap();

    // Home 3 (VXLAN) has a mapping from talking to the internet.
    assert_eq!(
        rig.up(&wrap(&rig, &h3, udp_up(40000, INTERNET, 53))).0,
        XdpVerdict::Redirect
    );
    let (p3_ip, p3) = rig.public_of(h3.id, 40000, 17);

    // Home 1 (802.1Q) sends to home 3's public address and port: delivered straight to
    // home 3, from home 1's own external address and port.
    let (v, out) = rig.up(&wrap(&rig, &h1, udp_up(41000, p3_ip, p3)));
    assert_eq!(v, XdpVerdict::Redirect, "hairpin 1 -> 3");
    let (p1_ip, p1) = rig.public_of(h1.id, 41000, 17);
    let inner = frames::udp_ttl(
        gw_mac(h3.id),
        HOST_MAC,
        (p1_ip, p1),
        (HOST, 40000),
        b"ping",
        63,
    );
    assert_eq!(out, down_frame(&rig, &h3, &out, &inner));

    // A home reaching its own public address and port.
    let (v, out) = rig.up(&wrap(&rig, &h1, udp_up(41001, p1_ip, p1)));
    assert_eq!(v, XdpVerdict::Redirect, "hairpin 1 -> 1");
    let (_, p1b) = rig.public_of(h1.id, 41001, 17);
    let inner = frames::udp_ttl(
        gw_mac(h1.id),
        HOST_MAC,
        (p1_ip, p1b),
        (HOST, 41000),
        b"ping",
        63,
    );
    assert_eq!(out, down_frame(&rig, &h1, &out, &inner));
    assert_eq!(rig.counter(Counter::NatHairpin), 2);

    // To a public port nobody maps, or ICMP to a public address: dropped, counted.
    let before = rig.drops(DropReason::NoMapping);
    assert_eq!(
        rig.up(&wrap(&rig, &h1, udp_up(41002, p3_ip, 7))).0,
        XdpVerdict::Drop
    );
    let ping = frames::icmp_echo_msg(HOST_MAC, [0; 6], HOST, p3_ip, 9, 1, false, 64);
    assert_eq!(rig.up(&wrap(&rig, &h1, ping)).0, XdpVerdict::Drop);
    assert_eq!(rig.drops(DropReason::NoMapping) - before, 2);

    // The target's filtering applies: with APDF, home 3 takes home 2's packets only once it
    // has sent to home 2's external address and port.
    rig.edit_home(h3.id, |r| r.flags |= sub_flags::FILTER_APDF);
    assert_eq!(
        rig.up(&wrap(&rig, &h2, udp_up(42000, INTERNET, 53))).0,
        XdpVerdict::Redirect
    );
    let (p2_ip, p2) = rig.public_of(h2.id, 42000, 17);
    let before = rig.drops(DropReason::Filtered);
    assert_eq!(
        rig.up(&wrap(&rig, &h2, udp_up(42000, p3_ip, p3))).0,
        XdpVerdict::Drop
    );
    assert_eq!(
        rig.drops(DropReason::Filtered) - before,
        1,
        "filtered at home 3"
    );
    let (v, out) = rig.up(&wrap(&rig, &h3, udp_up(40000, p2_ip, p2)));
    assert_eq!(
        v,
        XdpVerdict::Redirect,
        "hairpin 3 -> 2 (home 2 filters nothing)"
    );
    let inner = frames::udp_ttl(
        gw_mac(h2.id),
        HOST_MAC,
        (p3_ip, p3),
        (HOST, 42000),
        b"ping",
        63,
    );
    assert_eq!(out, down_frame(&rig, &h2, &out, &inner));
    assert_eq!(
        rig.up(&wrap(&rig, &h2, udp_up(42000, p3_ip, p3))).0,
        XdpVerdict::Redirect,
        "now permitted"
    );

    // Fragments are not hairpinned.
    let [first, _] = frames::fragments(&udp_up(41003, p3_ip, p3), 8, 0x77);
    let before = rig.drops(DropReason::Fragment);
    assert_eq!(rig.up(&wrap(&rig, &h1, first)).0, XdpVerdict::Drop);
    assert_eq!(rig.drops(DropReason::Fragment) - before, 1);
}

#[test]
fn address_and_port_dependent_filtering_for_every_lsl_kind() {
    use vg::fastpath::expiry::{Timers, monotonic_ns};
    let mut rig = rig("natapdf");
    let from = |rig: &Rig, src: (Ipv4Addr, u16), to: (Ipv4Addr, u16)| {
        frames::udp(NEXT_HOP_MAC, rig.core_mac, src, to, b"in")
    };
    for home in HOMES {
        let name = home.name;
        // Endpoint-independent filtering first: anyone reaches the mapping.
        let up = |rig: &Rig, port| {
            let f = udp_up(port, INTERNET, 53);
            home.encap(rig.access_mac).encapsulate(&f).unwrap()
        };
        assert_eq!(rig.up(&up(&rig, 40000)).0, XdpVerdict::Redirect);
        let eif = rig.public_of(home.id, 40000, 17);
        let (v, out) = rig.down(&from(&rig, (INTERNET2, 99), eif));
        assert_eq!(v, XdpVerdict::Redirect, "{name}: EIF");
        let inner = frames::udp_ttl(
            gw_mac(home.id),
            HOST_MAC,
            (INTERNET2, 99),
            (HOST, 40000),
            b"in",
            63,
        );
        assert_eq!(
            out,
            down_frame(&rig, &home, &out, &inner),
            "{name}: EIF delivery"
        );

        // Address-and-port-dependent: only the endpoint the mapping sent to.
        rig.edit_home(home.id, |r| r.flags |= sub_flags::FILTER_APDF);
        assert_eq!(rig.up(&up(&rig, 40001)).0, XdpVerdict::Redirect);
        let apdf = rig.public_of(home.id, 40001, 17);
        let before = rig.drops(DropReason::Filtered);
        assert_eq!(
            rig.down(&from(&rig, (INTERNET, 53), apdf)).0,
            XdpVerdict::Redirect,
            "{name}: the peer"
        );
        assert_eq!(
            rig.down(&from(&rig, (INTERNET, 54), apdf)).0,
            XdpVerdict::Drop,
            "{name}: other port"
        );
        assert_eq!(
            rig.down(&from(&rig, (INTERNET2, 53), apdf)).0,
            XdpVerdict::Drop,
            "{name}: other address"
        );
        assert_eq!(rig.drops(DropReason::Filtered) - before, 2, "{name}");
    }

    // Permissions go with their mapping (one per APDF mapping above).
    let mut tables = rig.tables();
    let r = tables
        .sweep(&Timers::default(), monotonic_ns() + 310 * 1_000_000_000)
        .unwrap();
    assert_eq!(
        (r.expired, r.permits, r.permits_expired),
        (2 * HOMES.len(), HOMES.len(), HOMES.len()),
        "{r:?}"
    );
}

#[test]
fn port_forwards_reach_a_home_host_over_every_lsl_kind() {
    use vg::fastpath::expiry::{Timers, monotonic_ns};
    let mut rig = rig("natfwd");
    for home in HOMES {
        let name = home.name;
        let public = (home.public, home.block + 100);
        // Even a home that filters by address and port takes unsolicited forwarded traffic.
        rig.edit_home(home.id, |r| r.flags |= sub_flags::FILTER_APDF);
        port_forward(&rig, home.id, public, (HOST, 8080), 6);
        let syn = frames::tcp(
            NEXT_HOP_MAC,
            rig.core_mac,
            (INTERNET, 5555),
            public,
            TcpControl::Syn,
            77,
            None,
            &[],
            64,
        );
        let (v, out) = rig.down(&syn);
        assert_eq!(v, XdpVerdict::Redirect, "{name}: forwarded");
        let inner = frames::tcp(
            gw_mac(home.id),
            HOST_MAC,
            (INTERNET, 5555),
            (HOST, 8080),
            TcpControl::Syn,
            77,
            None,
            &[],
            63,
        );
        assert_eq!(out, down_frame(&rig, &home, &out, &inner), "{name}");

        let synack = frames::tcp(
            HOST_MAC,
            [0; 6],
            (HOST, 8080),
            (INTERNET, 5555),
            TcpControl::Syn,
            900,
            Some(78),
            &[],
            64,
        );
        let (v, out) = rig.up(&home.encap(rig.access_mac).encapsulate(&synack).unwrap());
        assert_eq!(v, XdpVerdict::Redirect, "{name}: answer");
        let want = rig.upstream_out(frames::tcp(
            HOST_MAC,
            [0; 6],
            public,
            (INTERNET, 5555),
            TcpControl::Syn,
            900,
            Some(78),
            &[],
            63,
        ));
        assert_eq!(out, want, "{name}: from the forwarded public port");

        // A forward to an address the home has no host at: the vG knows no MAC for it.
        let other = (home.public, home.block + 101);
        port_forward(
            &rig,
            home.id,
            other,
            (Ipv4Addr::new(192, 168, 1, 99), 22),
            6,
        );
        let before = rig.drops(DropReason::NoHost);
        let syn = frames::tcp(
            NEXT_HOP_MAC,
            rig.core_mac,
            (INTERNET, 5555),
            other,
            TcpControl::Syn,
            1,
            None,
            &[],
            64,
        );
        assert_eq!(rig.down(&syn).0, XdpVerdict::Drop, "{name}");
        assert_eq!(rig.drops(DropReason::NoHost) - before, 1, "{name}");
    }

    // Forwards never expire, and are not sessions.
    let mut tables = rig.tables();
    let r = tables
        .sweep(&Timers::default(), monotonic_ns() + 100_000 * 1_000_000_000)
        .unwrap();
    assert_eq!(r.expired, 0, "{r:?}");
    for home in HOMES {
        assert_eq!(tables.sessions(home.id).unwrap(), 0, "{}", home.name);
    }
}

#[test]
fn session_limit_caps_a_homes_mappings() {
    use vg::fastpath::expiry::{Timers, monotonic_ns};
    let mut rig = rig("natlimit");
    let h1 = HOMES[0];
    rig.edit_home(h1.id, |r| r.session_limit = 2);
    let up = |rig: &mut Rig, port| {
        let f = h1
            .encap(rig.access_mac)
            .encapsulate(&udp_up(port, INTERNET, 53))
            .unwrap();
        rig.up(&f).0
    };
    assert_eq!(up(&mut rig, 40000), XdpVerdict::Redirect);
    assert_eq!(up(&mut rig, 40001), XdpVerdict::Redirect);
    let before = rig.drops(DropReason::SessionLimit);
    assert_eq!(up(&mut rig, 40002), XdpVerdict::Drop, "third mapping");
    assert_eq!(rig.drops(DropReason::SessionLimit) - before, 1);
    assert_eq!(
        up(&mut rig, 40000),
        XdpVerdict::Redirect,
        "existing flows go on"
    );

    // The sweep writes the exact count; once the mappings expire, new ones fit again.
    let mut tables = rig.tables();
    let now = monotonic_ns();
    tables.sweep(&Timers::default(), now).unwrap();
    assert_eq!(tables.sessions(h1.id).unwrap(), 2);
    tables
        .sweep(&Timers::default(), now + 310 * 1_000_000_000)
        .unwrap();
    assert_eq!(tables.sessions(h1.id).unwrap(), 0);
    assert_eq!(up(&mut rig, 40002), XdpVerdict::Redirect, "room again");
    assert_eq!(tables.sessions(h1.id).unwrap(), 1, "the fast path counts");
}

#[test]
fn mss_is_clamped_on_syns_in_both_directions() {
    let mut rig = rig("natmss");
    let [h1, _, h3, _] = HOMES;
    rig.edit_home(h3.id, |r| r.tcp_mss = 1410);
    let syn = |src: (Ipv4Addr, u16), opts: &[u8], ttl| {
        frames::tcp_syn(HOST_MAC, [0; 6], src, (INTERNET, 443), None, opts, ttl)
    };
    let nop_mss = |mss: u16| {
        let m = frames::mss_option(mss);
        [1, m[0], m[1], m[2], m[3], 1, 1, 1]
    };
    let cases: [(&str, Home, Vec<u8>, Vec<u8>); 4] = [
        (
            "lowered",
            h3,
            frames::mss_option(1460).to_vec(),
            frames::mss_option(1410).to_vec(),
        ),
        (
            "already lower",
            h3,
            frames::mss_option(1400).to_vec(),
            frames::mss_option(1400).to_vec(),
        ),
        (
            "odd offset",
            h3,
            nop_mss(1460).to_vec(),
            nop_mss(1410).to_vec(),
        ),
        (
            "home without clamp",
            h1,
            frames::mss_option(1460).to_vec(),
            frames::mss_option(1460).to_vec(),
        ),
    ];
    for (i, (name, home, sent, want_opts)) in cases.into_iter().enumerate() {
        let port = 50000 + i as u16;
        let f = home
            .encap(rig.access_mac)
            .encapsulate(&syn((HOST, port), &sent, 64))
            .unwrap();
        let (v, out) = rig.up(&f);
        assert_eq!(v, XdpVerdict::Redirect, "{name}");
        let public = rig.public_of(home.id, port, 6);
        assert_eq!(out, rig.upstream_out(syn(public, &want_opts, 63)), "{name}");
    }
    assert_eq!(rig.counter(Counter::MssClamped), 2);

    // Downstream: the SYN-ACK to the VXLAN home is clamped too.
    let public = rig.public_of(h3.id, 50000, 6);
    let synack = frames::tcp_syn(
        NEXT_HOP_MAC,
        rig.core_mac,
        (INTERNET, 443),
        public,
        Some(1001),
        &frames::mss_option(1460),
        64,
    );
    let (v, out) = rig.down(&synack);
    assert_eq!(v, XdpVerdict::Redirect);
    let inner = frames::tcp_syn(
        gw_mac(h3.id),
        HOST_MAC,
        (INTERNET, 443),
        (HOST, 50000),
        Some(1001),
        &frames::mss_option(1410),
        63,
    );
    assert_eq!(out, down_frame(&rig, &h3, &out, &inner));
}

#[test]
fn fragments_follow_their_first_fragment() {
    let mut rig = rig("natfrag");
    let payload = [0x5a; 64];
    for (i, home) in HOMES.into_iter().enumerate() {
        let name = home.name;
        let ident = 0x1000 + i as u16;
        let access_mac = rig.access_mac;
        let wrap = |inner: Vec<u8>| home.encap(access_mac).encapsulate(&inner).unwrap();
        let sent = frames::udp(HOST_MAC, [0; 6], (HOST, 40000), (INTERNET, 53), &payload);
        let [first, second] = frames::fragments(&sent, 32, ident);
        let (v, out1) = rig.up(&wrap(first));
        assert_eq!(v, XdpVerdict::Redirect, "{name}: first fragment up");
        let (v, out2) = rig.up(&wrap(second));
        assert_eq!(v, XdpVerdict::Redirect, "{name}: second fragment up");
        let (public, port) = rig.public_of(home.id, 40000, 17);
        let translated = frames::udp_ttl(
            HOST_MAC,
            [0; 6],
            (public, port),
            (INTERNET, 53),
            &payload,
            63,
        );
        let [want1, want2] = frames::fragments(&translated, 32, ident);
        assert_eq!(out1, rig.upstream_out(want1), "{name}: first fragment");
        assert_eq!(out2, rig.upstream_out(want2), "{name}: second fragment");

        let reply = frames::udp(
            NEXT_HOP_MAC,
            rig.core_mac,
            (INTERNET, 53),
            (public, port),
            &payload,
        );
        let [first, second] = frames::fragments(&reply, 32, ident);
        let (v, out1) = rig.down(&first);
        assert_eq!(v, XdpVerdict::Redirect, "{name}: first fragment down");
        let (v, out2) = rig.down(&second);
        assert_eq!(v, XdpVerdict::Redirect, "{name}: second fragment down");
        let delivered = frames::udp_ttl(
            gw_mac(home.id),
            HOST_MAC,
            (INTERNET, 53),
            (HOST, 40000),
            &payload,
            63,
        );
        let [want1, want2] = frames::fragments(&delivered, 32, ident);
        assert_eq!(
            out1,
            down_frame_zero_checksum(&rig, &home, &out1, &want1),
            "{name}: first fragment"
        );
        // The same VXLAN source port for both: one flow to the BRG.
        assert_eq!(
            out2,
            down_frame_zero_checksum(&rig, &home, &out1, &want2),
            "{name}: second fragment"
        );
    }
    assert_eq!(
        rig.counter(Counter::FragmentFollowed),
        2 * HOMES.len() as u64
    );
}

#[test]
fn mutated_frames_never_abort_and_every_verdict_is_counted() {
    let mut rig = rig("natfuzz");
    let access_mac = rig.access_mac;
    let core_mac = rig.core_mac;
    // Valid frames of every kind both ways, then mutated: bytes flipped in the headers,
    // lengths cut and extended.
    let mut up_seeds = Vec::new();
    for home in HOMES {
        let encap = home.encap(access_mac);
        let sent = frames::udp(HOST_MAC, [0; 6], (HOST, 40000), (INTERNET, 53), &[7; 64]);
        let [f1, f2] = frames::fragments(&sent, 32, 9);
        for inner in [
            udp_up(40000, INTERNET, 53),
            udp_up(40001, PUBLIC1, 40000),
            frames::tcp_syn(
                HOST_MAC,
                [0; 6],
                (HOST, 50000),
                (INTERNET, 443),
                None,
                &frames::mss_option(1460),
                64,
            ),
            frames::icmp_echo_msg(HOST_MAC, [0; 6], HOST, INTERNET, 7, 1, false, 64),
            frames::icmp_error(
                HOST_MAC,
                [0; 6],
                HOST,
                INTERNET,
                3,
                3,
                &udp_up(53, HOST, 40000),
                8,
                64,
            ),
            frames::arp_request(HOST_MAC, HOST, GW),
            frames::dhcp_discover(HOST_MAC),
            f1,
            f2,
        ] {
            up_seeds.push(encap.encapsulate(&inner).unwrap());
        }
    }
    let down_seeds = [
        frames::udp(
            NEXT_HOP_MAC,
            core_mac,
            (INTERNET, 53),
            (PUBLIC1, 40000),
            b"x",
        ),
        frames::tcp_syn(
            NEXT_HOP_MAC,
            core_mac,
            (INTERNET, 443),
            (PUBLIC1, 50000),
            Some(1),
            &frames::mss_option(1460),
            64,
        ),
        frames::icmp_echo_msg(NEXT_HOP_MAC, core_mac, INTERNET, PUBLIC2, 7, 1, true, 64),
        frames::icmp_error(
            NEXT_HOP_MAC,
            core_mac,
            ROUTER,
            PUBLIC1,
            11,
            0,
            &udp_up(40000, INTERNET, 53),
            8,
            64,
        ),
    ];
    let before = rig.fp.counters().unwrap().snapshot().unwrap();
    let runs = 6000;
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let fp = &mut rig.fp;
    let aborted = rig.vg.run(|| {
        let mut aborted = Vec::new();
        for i in 0..runs {
            let (prog, seeds) = if i % 3 == 2 {
                (program_names::CORE, &down_seeds[..])
            } else {
                (program_names::ACCESS, &up_seeds[..])
            };
            let mut frame = seeds[rng.below(seeds.len())].clone();
            for _ in 0..1 + rng.below(4) {
                match rng.below(4) {
                    0 | 1 if !frame.is_empty() => {
                        // Flip a byte in the first 96: tags, VXLAN, IPv4, L4 headers.
                        let at = rng.below(frame.len().min(96));
                        frame[at] ^= 1 << rng.below(8);
                    }
                    0 | 1 => {}
                    2 => frame.truncate(rng.below(frame.len() + 1)),
                    _ => frame.extend((0..rng.below(64)).map(|_| rng.next() as u8)),
                }
            }
            if frame.len() < 14 {
                frame.resize(14, 0); // the kernel refuses shorter test frames
            }
            let p = fp.program(prog).unwrap();
            let out = run_xdp(p, &frame, 1).expect("BPF_PROG_TEST_RUN");
            if matches!(out.verdict, XdpVerdict::Aborted | XdpVerdict::Unknown(_)) {
                aborted.push((prog, frame));
            }
        }
        aborted
    });
    assert!(
        aborted.is_empty(),
        "aborted on {} frames, first: {:02x?}",
        aborted.len(),
        aborted.first()
    );
    let after = rig.fp.counters().unwrap().snapshot().unwrap();
    let delta = |c| after.total(c) - before.total(c);
    let verdicts: u64 = [
        Counter::VerdictPass,
        Counter::VerdictDrop,
        Counter::VerdictRedirect,
        Counter::VerdictPunt,
        Counter::VerdictTx,
        Counter::VerdictAborted,
    ]
    .into_iter()
    .map(delta)
    .sum();
    let seen = delta(Counter::AccessRxPackets) + delta(Counter::CoreRxPackets);
    assert_eq!(seen, runs, "every frame seen");
    assert_eq!(verdicts, runs, "exactly one verdict per frame");
    let drops: u64 = DropReason::ALL
        .iter()
        .map(|&r| after.drops(r) - before.drops(r))
        .sum();
    assert_eq!(
        drops,
        delta(Counter::VerdictDrop),
        "every drop has a reason"
    );
    assert!(
        delta(Counter::VerdictDrop) > runs / 10,
        "mutations are mostly caught"
    );
    assert!(
        delta(Counter::VerdictRedirect) > 0,
        "and some frames survive intact"
    );
}
