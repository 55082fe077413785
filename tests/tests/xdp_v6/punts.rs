//! What the fast path does not route: RA guard, control traffic to the slow path,
//! anti-spoofing, neighbour misses and their bound, Packet Too Big both ways, mutated frames.

use super::*;
use nerg_abi::{PuntReason, V6Neigh, v6_neigh_flags};
use vg::control::tables::FastPathTables as _;

fn reason(r: PuntReason) -> u16 {
    r.index() as u16
}

#[test]
fn ra_guard_and_control_traffic() {
    let mut rig = rig("v6ctl", &[]);
    let all_nodes: Ipv6Addr = "ff02::1".parse().unwrap();
    let all_routers: Ipv6Addr = "ff02::2".parse().unwrap();
    let dhcp_agents: Ipv6Addr = "ff02::1:2".parse().unwrap();
    let ll: Ipv6Addr = "fe80::10".parse().unwrap();
    for home in HOMES {
        let name = home.name;
        let gw = gw_mac(home.id);
        let icmp = |src, dst, t, h| frames::icmp6(HOST_MAC, gw, src, dst, t, &[0; 20], h);
        let drops: [(&str, Vec<u8>, DropReason); 6] = [
            ("RA", icmp(ll, all_nodes, 134, 255), DropReason::RaGuard),
            (
                "redirect",
                icmp(ll, home.host(), 137, 255),
                DropReason::RaGuard,
            ),
            (
                "DHCPv6 advertise",
                frames::udp6(HOST_MAC, gw, (ll, 547), (ll, 546), b"adv", 255),
                DropReason::RaGuard,
            ),
            (
                "to another link-local",
                icmp(home.host(), "fe80::99".parse().unwrap(), 128, 64),
                DropReason::NotRouted6,
            ),
            (
                "to multicast",
                frames::udp6(
                    HOST_MAC,
                    gw,
                    (home.host(), 5353),
                    ("ff02::fb".parse().unwrap(), 5353),
                    b"m",
                    255,
                ),
                DropReason::NotRouted6,
            ),
            (
                "from a link-local source",
                frames::udp6(HOST_MAC, gw, (ll, 40000), (INET6, 53), b"x", 64),
                DropReason::NotRouted6,
            ),
        ];
        for (what, frame, why) in drops {
            let before = rig.drops(why);
            assert_eq!(rig.up(&home, &frame).0, XdpVerdict::Drop, "{name}: {what}");
            assert_eq!(
                rig.drops(why),
                before + 1,
                "{name}: {what} counted as {why:?}"
            );
        }
        assert!(rig.punts().is_empty(), "{name}: nothing punted");
        let punted: [(&str, Vec<u8>, PuntReason); 8] = [
            ("RS", icmp(ll, all_routers, 133, 255), PuntReason::Nd),
            (
                "NS",
                icmp(ll, "ff02::1:ff00:1".parse().unwrap(), 135, 255),
                PuntReason::Nd,
            ),
            (
                "NA",
                icmp(home.host(), home.gateway(), 136, 255),
                PuntReason::Nd,
            ),
            (
                "MLDv2 report",
                icmp(ll, "ff02::16".parse().unwrap(), 143, 1),
                PuntReason::Mld,
            ),
            (
                "DHCPv6 solicit",
                frames::udp6(HOST_MAC, gw, (ll, 546), (dhcp_agents, 547), b"sol", 1),
                PuntReason::Dhcpv6,
            ),
            (
                "echo to the gateway",
                icmp(home.host(), home.gateway(), 128, 64),
                PuntReason::Icmpv6ToGateway,
            ),
            (
                "echo to its link-local",
                icmp(ll, home.gateway_ll(), 128, 64),
                PuntReason::Icmpv6ToGateway,
            ),
            (
                "hop limit 1",
                frames::udp6(HOST_MAC, gw, (home.host(), 40000), (INET6, 53), b"x", 1),
                PuntReason::HopLimitExceeded,
            ),
        ];
        for (what, frame, why) in punted {
            let wire = home.encap(rig.access_mac).encapsulate(&frame).unwrap();
            let (v, out) = rig.up(&home, &frame);
            assert_eq!(v, XdpVerdict::Drop, "{name}: {what} (punted, not passed)");
            assert_eq!(out, wire, "{name}: {what} untouched");
            let p = rig.punts();
            assert_eq!(p.len(), 1, "{name}: {what}");
            assert_eq!(p[0].0.reason, reason(why), "{name}: {what}");
            assert_eq!(p[0].0.sub, home.id, "{name}: {what}");
            assert_eq!(p[0].1, wire, "{name}: {what}: the frame as received");
        }
    }
}

#[test]
fn spoofed_sources_are_dropped() {
    let mut rig = rig("v6savi", &[]);
    let home = HOMES[0];
    let other = HOMES[2];
    let cases = [
        (
            "another home's prefix",
            udp_up(&home, other.host(), INET6, HOST_MAC),
        ),
        (
            "an unlearnt address of its LAN",
            udp_up(
                &home,
                Ipv6Addr::new(0x2001, 0xdb8, 0, home.seg(), 0, 0, 0, 0x99),
                INET6,
                HOST_MAC,
            ),
        ),
        (
            "a learnt address from another MAC",
            udp_up(&home, home.host(), INET6, ROUTER_MAC),
        ),
        (
            "a delegated prefix not from its router",
            udp_up(&home, home.behind_router(), INET6, HOST_MAC),
        ),
        (
            "outside every prefix",
            udp_up(&home, "2001:db8:9999::1".parse().unwrap(), INET6, HOST_MAC),
        ),
    ];
    for (i, (what, frame)) in cases.iter().enumerate() {
        assert_eq!(rig.up(&home, frame).0, XdpVerdict::Drop, "{what}");
        assert_eq!(rig.drops(DropReason::Spoofed), i as u64 + 1, "{what}");
    }
    // An address under resolution (INCOMPLETE) vouches for nobody.
    let pending = Ipv6Addr::new(0x2001, 0xdb8, 0, home.seg(), 0, 0, 0, 0x31);
    incomplete(&mut rig, home.id, pending);
    assert_eq!(
        rig.up(&home, &udp_up(&home, pending, INET6, HOST_MAC)).0,
        XdpVerdict::Drop
    );
    assert_eq!(rig.drops(DropReason::Spoofed), cases.len() as u64 + 1);
    assert_eq!(rig.counter(Counter::Ipv6Upstream), 0);
}

fn incomplete(rig: &mut Rig, sub: SubscriberId, addr: Ipv6Addr) {
    let mut maps = vg::fastpath::maps::PinnedMaps::open(rig.pins.path()).unwrap();
    let n = V6Neigh {
        flags: v6_neigh_flags::INCOMPLETE,
        ..V6Neigh::default()
    };
    maps.insert_neighbour(sub, addr, n).unwrap();
}

#[test]
fn neighbour_misses_are_punted_within_the_homes_limit() {
    let mut rig = rig("v6miss", &[]);
    let home = HOMES[1];
    let unknown = |i: u16| Ipv6Addr::new(0x2001, 0xdb8, 0, home.seg(), 0, 0, 0x77, i);
    // The first miss: punted as it came from the core (the slow path sends an NS), dropped.
    let frame = udp_down(&rig, unknown(1), 64);
    let (v, _) = rig.down(&frame);
    assert_eq!(v, XdpVerdict::Drop);
    let p = rig.punts();
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].0.reason, reason(PuntReason::NeighMiss));
    assert_eq!(p[0].0.sub, home.id);
    assert_eq!(p[0].1, frame);
    // The slow path marks it INCOMPLETE: later packets are dropped without a punt.
    incomplete(&mut rig, home.id, unknown(1));
    assert_eq!(
        rig.down(&udp_down(&rig, unknown(1), 64)).0,
        XdpVerdict::Drop
    );
    assert_eq!(rig.drops(DropReason::NeighIncomplete), 1);
    assert!(rig.punts().is_empty());
    // A scan of the /64: at most the home's burst, and what the limit refills while the
    // scan runs (one every V6_PUNT_INTERVAL_NS), is punted; the rest dropped and counted.
    let scan = 200u16;
    let started = std::time::Instant::now();
    for i in 2..2 + scan {
        assert_eq!(
            rig.down(&udp_down(&rig, unknown(i), 64)).0,
            XdpVerdict::Drop
        );
    }
    let elapsed = started.elapsed().as_nanos() as u64;
    let punted = rig.punts().len() as u64;
    let burst = nerg_abi::V6_PUNT_BURST;
    // The coarse clock may lag a tick behind at each end: two more at most.
    let bound = burst + elapsed / nerg_abi::V6_PUNT_INTERVAL_NS + 2;
    assert!(
        punted >= burst - 1 && punted <= bound,
        "{punted} of {scan} misses punted in {elapsed} ns, the bound is {bound}"
    );
    assert_eq!(
        rig.drops(DropReason::V6PuntLimited),
        u64::from(scan) - punted
    );
    if bound < u64::from(scan) {
        assert!(punted < u64::from(scan), "the limit held some back");
    }
    // Another home's budget is its own.
    let other = HOMES[0];
    assert_eq!(
        rig.down(&udp_down(
            &rig,
            Ipv6Addr::new(0x2001, 0xdb8, 0, other.seg(), 0, 0, 0x77, 1),
            64
        ))
        .0,
        XdpVerdict::Drop
    );
    assert_eq!(rig.punts().len(), 1);
    // Hop limit 1 from the core: dropped, as IPv4.
    assert_eq!(
        rig.down(&udp_down(&rig, home.host(), 1)).0,
        XdpVerdict::Drop
    );
    assert_eq!(rig.drops(DropReason::TtlExpired), 1);
}

#[test]
fn too_big_is_punted_with_the_mtu_both_ways() {
    let mut rig = rig("v6ptb", &[]);
    // Downstream to a VXLAN home: 1450 bytes of IPv6 fit its LSL, 1451 do not.
    let home = HOMES[2];
    let sized = |rig: &Rig, total: usize| {
        rig.arriving_from_inet(&frames::udp6(
            [0; 6],
            [0; 6],
            (INET6, 53),
            (home.host(), 40000),
            &vec![0x5a; total - 48],
            64,
        ))
    };
    assert_eq!(rig.down(&sized(&rig, 1450)).0, XdpVerdict::Redirect);
    let big = sized(&rig, 1451);
    assert_eq!(rig.down(&big).0, XdpVerdict::Drop);
    let p = rig.punts();
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].0.reason, reason(PuntReason::PacketTooBig));
    assert_eq!(p[0].0.mtu, 1450);
    assert_eq!(p[0].0.sub, home.id);
    assert_eq!(p[0].1, big);
    // Upstream past a 1280-byte route: the egress MTU.
    let up = HOMES[0];
    let sent = frames::udp6(
        HOST_MAC,
        gw_mac(up.id),
        (up.host(), 40000),
        (SMALL_MTU_HOST, 53),
        &[0x5a; 1300 - 48],
        64,
    );
    let (v, _) = rig.up(&up, &sent);
    assert_eq!(v, XdpVerdict::Drop);
    let p = rig.punts();
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].0.reason, reason(PuntReason::PacketTooBig));
    assert_eq!(p[0].0.mtu, 1280);
    assert_eq!(p[0].0.sub, up.id);
    // Home to a VXLAN home: the target's LSL MTU, answered to the sender.
    let sent = frames::udp6(
        HOST_MAC,
        gw_mac(up.id),
        (up.host(), 40000),
        (home.host(), 53),
        &[0x5a; 1460 - 48],
        64,
    );
    assert_eq!(rig.up(&up, &sent).0, XdpVerdict::Drop);
    let p = rig.punts();
    assert_eq!((p.len(), p[0].0.mtu, p[0].0.sub), (1, 1450, up.id));
}

#[test]
fn mutated_ipv6_frames_never_abort_and_every_verdict_is_counted() {
    let mut rig = rig("v6fuzz", &[]);
    let access_mac = rig.access_mac;
    let mut up_seeds = Vec::new();
    for home in HOMES {
        let gw = gw_mac(home.id);
        let plain = udp_up(&home, home.host(), INET6, HOST_MAC);
        for inner in [
            plain.clone(),
            udp_up(&home, home.host(), HOMES[0].host(), HOST_MAC),
            frames::with_ext6(&plain, 0, &[0, 0, 1, 4, 0, 0, 0, 0]),
            frames::with_ext6(&plain, 44, &[0, 0, 0, 1, 0, 0, 0, 9]),
            frames::icmp6(
                HOST_MAC,
                gw,
                "fe80::1".parse().unwrap(),
                "ff02::2".parse().unwrap(),
                133,
                &[0; 8],
                255,
            ),
            frames::icmp6(HOST_MAC, gw, home.host(), home.gateway(), 128, &[0; 8], 64),
        ] {
            up_seeds.push(home.encap(access_mac).encapsulate(&inner).unwrap());
        }
    }
    let down_seeds: Vec<Vec<u8>> = HOMES
        .iter()
        .flat_map(|h| {
            [
                udp_down(&rig, h.host(), 64),
                udp_down(&rig, h.behind_router(), 64),
            ]
        })
        .collect();
    let before = rig.fp.counters().unwrap().snapshot().unwrap();
    let runs = 4000;
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
                        // Flip a byte in the first 140: tags, VXLAN, IPv6 and its extensions.
                        let at = rng.below(frame.len().min(140));
                        frame[at] ^= 1 << rng.below(8);
                    }
                    0 | 1 => {}
                    2 => frame.truncate(rng.below(frame.len() + 1)),
                    _ => frame.extend((0..rng.below(64)).map(|_| rng.next() as u8)),
                }
            }
            if frame.len() < 14 {
                frame.resize(14, 0);
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

#[test]
fn the_gateways_addresses_are_the_slow_paths_from_anywhere() {
    let mut rig = rig("v6gw", &[]);
    let (a, b) = (HOMES[0], HOMES[3]);
    // From a home to another home's gateway address: the vG's, not a neighbour there.
    let echo = frames::icmp6(
        HOST_MAC,
        gw_mac(a.id),
        a.host(),
        b.gateway(),
        128,
        &[0; 8],
        64,
    );
    assert_eq!(rig.up(&a, &echo).0, XdpVerdict::Drop);
    let p = rig.punts();
    assert_eq!(p.len(), 1);
    assert_eq!(
        (p[0].0.reason, p[0].0.sub),
        (reason(PuntReason::Icmpv6ToGateway), a.id)
    );
    // From the internet: echo and anything else, punted for the home as they came.
    let echo = rig.arriving_from_inet(&frames::icmp6(
        [0; 6],
        [0; 6],
        INET6,
        b.gateway(),
        128,
        &[0; 8],
        64,
    ));
    assert_eq!(rig.down(&echo).0, XdpVerdict::Drop);
    let udp = udp_down(&rig, b.gateway(), 64);
    assert_eq!(rig.down(&udp).0, XdpVerdict::Drop);
    let p = rig.punts();
    assert_eq!(p.len(), 2);
    assert_eq!(
        (p[0].0.reason, p[0].0.sub, &p[0].1),
        (reason(PuntReason::Icmpv6ToGateway), b.id, &echo)
    );
    assert_eq!(
        (p[1].0.reason, p[1].0.sub, &p[1].1),
        (reason(PuntReason::Ipv6), b.id, &udp)
    );
    assert_eq!(rig.counter(Counter::Ipv6Downstream), 0);
}
