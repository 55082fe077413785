//! A mapping's life and owner: expiry and hold-down, refreshes, the host it vouches for, an address that moves to another device, a removed home's counters.

use super::*;

#[test]
fn idle_mappings_expire_and_their_ports_are_held_back() {
    use vg::fastpath::expiry::{Timers, monotonic_ns};
    let mut rig = rig("natexp");
    let home = HOMES[0];
    let wrap = |inner: Vec<u8>| home.encap([0; 6]).encapsulate(&inner).unwrap();
    assert_eq!(
        rig.up(&wrap(udp_up(40000, INTERNET, 53))).0,
        XdpVerdict::Redirect
    );
    let syn = frames::tcp(
        HOST_MAC,
        [0; 6],
        (HOST, 50000),
        (INTERNET, 443),
        TcpControl::Syn,
        1,
        None,
        &[],
        64,
    );
    assert_eq!(rig.up(&wrap(syn)).0, XdpVerdict::Redirect);
    let timers = Timers::default();
    let now = monotonic_ns();

    // Within the timers: nothing expires.
    let mut tables = rig.tables();
    let r = tables.sweep(&timers, now + 200 * 1_000_000_000).unwrap();
    assert_eq!((r.mappings, r.expired), (2, 0));

    // 250 s later the half-open TCP mapping is gone (transitory 240 s), the UDP one stays.
    let r = tables.sweep(&timers, now + 250 * 1_000_000_000).unwrap();
    assert_eq!(r.expired, 1, "{r:?}");
    assert!(
        rig.fp
            .maps()
            .nat_mapping(&NatFwdKey {
                sub: home.id,
                priv_ip: raw(HOST),
                priv_port: 50000u16.to_be(),
                proto: 6,
                _pad: 0
            })
            .unwrap()
            .is_none()
    );

    // 310 s later UDP (300 s) goes too; its public port is held back and translates nothing.
    let t_udp = now + 310 * 1_000_000_000;
    let r = tables.sweep(&timers, t_udp).unwrap();
    assert_eq!(r.expired, 1, "{r:?}");
    let key = NatRevKey {
        pub_ip: raw(PUBLIC1),
        pub_port: 40000u16.to_be(),
        proto: 17,
        _pad: 0,
    };
    let held = rig.fp.maps().nat_reverse(&key).unwrap().expect("tombstone");
    assert_eq!(
        held.flags & nerg_abi::nat_flags::TOMBSTONE,
        nerg_abi::nat_flags::TOMBSTONE
    );
    let reply = frames::udp(
        NEXT_HOP_MAC,
        [0; 6],
        (INTERNET, 53),
        (PUBLIC1, 40000),
        b"late",
    );
    let before = rig.drops(DropReason::NoMapping);
    assert_eq!(
        rig.down(&reply).0,
        XdpVerdict::Drop,
        "a held-back port translates nothing"
    );
    assert_eq!(rig.drops(DropReason::NoMapping) - before, 1);

    // After the hold-down the port is free again.
    let r = tables.sweep(&timers, t_udp + 121 * 1_000_000_000).unwrap();
    assert!(r.released >= 2, "{r:?}");
    assert!(rig.fp.maps().nat_reverse(&key).unwrap().is_none());
}

/// A mapping's last-use time is rewritten once it is `LAST_SEEN_STEP_NS` old, not by every
/// packet (its cache line stays clean); expiry allows for that step.
#[test]
fn a_mapping_is_refreshed_once_its_stamp_is_a_step_old() {
    use vg::fastpath::expiry::monotonic_ns;
    let mut rig = rig("natstep");
    let home = HOMES[0];
    let wrap = |inner: Vec<u8>| home.encap([0; 6]).encapsulate(&inner).unwrap();
    let up = wrap(udp_up(41000, INTERNET, 53));
    assert_eq!(rig.up(&up).0, XdpVerdict::Redirect);
    let key = NatFwdKey {
        sub: home.id,
        priv_ip: raw(HOST),
        priv_port: 41000u16.to_be(),
        proto: 17,
        _pad: 0,
    };
    let mut fwd: aya::maps::HashMap<MapData, NatFwdKey, nerg_abi::NatMapping> =
        aya::maps::HashMap::try_from(aya::maps::Map::HashMap(
            MapData::from_pin(rig.pins.path().join(nerg_abi::map_names::NAT_FWD)).unwrap(),
        ))
        .unwrap();
    let stamp = |fwd: &aya::maps::HashMap<MapData, NatFwdKey, nerg_abi::NatMapping>| {
        fwd.get(&key, 0).unwrap().last_seen_ns
    };
    let set_stamp = |fwd: &mut aya::maps::HashMap<MapData, NatFwdKey, nerg_abi::NatMapping>,
                     ns: u64| {
        let mut m = fwd.get(&key, 0).unwrap();
        m.last_seen_ns = ns;
        fwd.insert(key, m, 0).unwrap();
    };

    // Stamped with the fine clock, which is never behind the program's coarse one: a packet
    // now finds the stamp less than a step old and leaves it alone.
    let fresh = monotonic_ns();
    set_stamp(&mut fwd, fresh);
    assert_eq!(rig.up(&up).0, XdpVerdict::Redirect);
    assert_eq!(stamp(&fwd), fresh, "a fresh stamp is not rewritten");

    // A stamp a step old, and more than the coarse clock's lag (a tick or so) besides, is
    // moved to the packet's time.
    let old = monotonic_ns() - nerg_abi::LAST_SEEN_STEP_NS - 200_000_000;
    set_stamp(&mut fwd, old);
    assert_eq!(rig.up(&up).0, XdpVerdict::Redirect);
    let refreshed = stamp(&fwd);
    assert!(
        refreshed > old + nerg_abi::LAST_SEEN_STEP_NS && refreshed <= monotonic_ns(),
        "a stale stamp is refreshed: {old} -> {refreshed}"
    );
}

/// An established flow's mapping vouches for its sender: the host table is consulted for a
/// flow's first packet only, until a host of the home is removed or changes its MAC address
/// (vgd raises the home's host generation); then the next packet is checked again.
#[test]
fn a_mapping_vouches_for_its_host_until_the_homes_hosts_change() {
    let mut rig = rig("natvouch");
    let home = HOMES[0];
    let host_key = HostKey {
        sub: home.id,
        ip: raw(HOST),
    };
    let from = |mac: [u8; 6]| {
        let inner = frames::udp(mac, [0; 6], (HOST, 42000), (INTERNET, 53), b"ping");
        home.encap([0; 6]).encapsulate(&inner).unwrap()
    };
    let checks = |rig: &Rig| rig.counter(Counter::HostCheck);
    let spoofed = |rig: &Rig| rig.drops(DropReason::Spoofed);

    // The first packet creates the mapping after a host check; the next ones need none.
    let c0 = checks(&rig);
    assert_eq!(rig.up(&from(HOST_MAC)).0, XdpVerdict::Redirect);
    assert_eq!(checks(&rig) - c0, 1);
    for _ in 0..3 {
        assert_eq!(rig.up(&from(HOST_MAC)).0, XdpVerdict::Redirect);
    }
    assert_eq!(
        checks(&rig) - c0,
        1,
        "an established flow skips the host table"
    );

    // Another MAC with the same address: the mapping does not vouch for it.
    let other = [0x02, 0, 0, 0, 0xee, 0x01];
    let s0 = spoofed(&rig);
    assert_eq!(rig.up(&from(other)).0, XdpVerdict::Drop);
    assert_eq!(spoofed(&rig) - s0, 1);
    assert_eq!(checks(&rig) - c0, 2);

    // The host moves to the other MAC: the generation goes up, the old MAC is refused at
    // once, the new one passes after one check and then needs none.
    let gen0 = rig.fp.maps().hosts_gen(home.id).unwrap();
    rig.set_static_host(home.id, other);
    assert_eq!(
        rig.fp.maps().hosts_gen(home.id).unwrap(),
        gen0.wrapping_add(1)
    );
    assert_eq!(rig.up(&from(HOST_MAC)).0, XdpVerdict::Drop);
    assert_eq!(spoofed(&rig) - s0, 2, "the old MAC is refused");
    let c1 = checks(&rig);
    assert_eq!(rig.up(&from(other)).0, XdpVerdict::Redirect);
    assert_eq!(rig.up(&from(other)).0, XdpVerdict::Redirect);
    assert_eq!(checks(&rig) - c1, 1, "re-checked once, then vouched for");

    // Rewriting the same host changes nothing.
    rig.set_static_host(home.id, other);
    assert_eq!(
        rig.fp.maps().hosts_gen(home.id).unwrap(),
        gen0.wrapping_add(1)
    );

    // The host goes: its established flow is refused at the next packet.
    rig.fp.maps().remove_host(&host_key).unwrap();
    assert_eq!(
        rig.fp.maps().hosts_gen(home.id).unwrap(),
        gen0.wrapping_add(2)
    );
    assert_eq!(rig.up(&from(other)).0, XdpVerdict::Drop);
    assert_eq!(
        spoofed(&rig) - s0,
        3,
        "a removed host's mapping vouches for nothing"
    );

    // Another home's mappings are not affected by this home's changes.
    let other_home = HOMES[1];
    assert_eq!(rig.fp.maps().hosts_gen(other_home.id).unwrap(), 0);
}

/// A mapping belongs to the host that created it. The home's address moves to another
/// device (another MAC): downstream stops going to the device that had it at once, the new
/// device's first packet of the same flow re-owns the mapping (fresh state, same public
/// port, its MAC in both entries), and downstream then reaches the new device. One row per
/// encapsulation, exact bytes both ways.
#[test]
fn a_mapping_follows_its_address_to_a_new_device_only_through_that_devices_packets() {
    let mut rig = rig("natmove");
    let device_b = [0x02, 0x00, 0x07, 0x00, 0x00, 0x01];
    for (i, home) in HOMES.iter().enumerate() {
        let name = home.name;
        let gw = gw_mac(home.id);
        let sport = 41000 + i as u16;
        let from = |mac: [u8; 6], flags: TcpControl| {
            let inner = frames::tcp(
                mac,
                [0; 6],
                (HOST, sport),
                (INTERNET, 443),
                flags,
                1000,
                None,
                &[],
                64,
            );
            home.encap([0; 6]).encapsulate(&inner).unwrap()
        };
        let reply = |rig: &Rig, public: Ipv4Addr, port: u16| {
            frames::tcp(
                NEXT_HOP_MAC,
                rig.core_mac,
                (INTERNET, 443),
                (public, port),
                TcpControl::Psh,
                7000,
                Some(1001),
                b"data",
                64,
            )
        };
        let to = |mac: [u8; 6]| {
            frames::tcp(
                gw,
                mac,
                (INTERNET, 443),
                (HOST, sport),
                TcpControl::Psh,
                7000,
                Some(1001),
                b"data",
                63,
            )
        };
        // Downstream to the mapping's public port reaches `mac`, exactly.
        let delivered_to = |rig: &mut Rig, public: Ipv4Addr, port: u16, mac, what: &str| {
            let (v, out) = rig.down(&reply(rig, public, port));
            assert_eq!(v, XdpVerdict::Redirect, "{name}: {what}");
            assert_eq!(out, down_frame(rig, home, &out, &to(mac)), "{name}: {what}");
        };
        let rev_key = |public: Ipv4Addr, port: u16| NatRevKey {
            pub_ip: raw(public),
            pub_port: port.to_be(),
            proto: 6,
            _pad: 0,
        };
        rig.set_static_host(home.id, HOST_MAC);

        // Device A: an established connection, downstream to A.
        assert_eq!(
            rig.up(&from(HOST_MAC, TcpControl::Syn)).0,
            XdpVerdict::Redirect
        );
        assert_eq!(
            rig.up(&from(HOST_MAC, TcpControl::None)).0,
            XdpVerdict::Redirect
        );
        let (public, port, seen) = rig.mapping(home.id, sport, 6);
        assert_ne!(seen & tcp_seen::ESTABLISHED, 0, "{name}: established");
        delivered_to(&mut rig, public, port, HOST_MAC, "downstream to A");

        // The address is leased to device B: nothing goes to A any more, nothing to B yet.
        rig.set_static_host(home.id, device_b);
        let no_host = rig.drops(DropReason::NoHost);
        let (v, _) = rig.down(&reply(&rig, public, port));
        assert_eq!(v, XdpVerdict::Drop, "{name}: A no longer holds the address");
        assert_eq!(
            rig.drops(DropReason::NoHost) - no_host,
            1,
            "{name}: counted"
        );

        // B opens the same connection: it re-owns the mapping, on the same public port,
        // with fresh TCP state, and both entries name B.
        let reowned = rig.counter(Counter::NatReowned);
        let created = rig.counter(Counter::NatCreated);
        let (v, out) = rig.up(&from(device_b, TcpControl::Syn));
        assert_eq!(v, XdpVerdict::Redirect, "{name}: B upstream");
        let want = rig.upstream_out(frames::tcp(
            device_b,
            [0; 6],
            (public, port),
            (INTERNET, 443),
            TcpControl::Syn,
            1000,
            None,
            &[],
            63,
        ));
        assert_eq!(
            out, want,
            "{name}: B's SYN translated on the same public port"
        );
        assert_eq!(
            rig.counter(Counter::NatReowned) - reowned,
            1,
            "{name}: re-owned"
        );
        assert_eq!(
            rig.counter(Counter::NatCreated),
            created,
            "{name}: not a second mapping"
        );
        let (_, _, seen) = rig.mapping(home.id, sport, 6);
        assert_eq!(seen, tcp_seen::SYN_OUT, "{name}: fresh TCP state");
        let fwd = rig
            .fp
            .maps()
            .nat_mapping(&NatFwdKey {
                sub: home.id,
                priv_ip: raw(HOST),
                priv_port: sport.to_be(),
                proto: 6,
                _pad: 0,
            })
            .unwrap()
            .unwrap();
        let rev = rig
            .fp
            .maps()
            .nat_reverse(&rev_key(public, port))
            .unwrap()
            .unwrap();
        assert_eq!(
            (fwd.host_mac, rev.host_mac),
            (device_b, device_b),
            "{name}: both entries"
        );
        assert_eq!(fwd.hosts_gen, rev.hosts_gen, "{name}: one generation");

        // Downstream reaches B, exactly; and keeps doing so with no further host check.
        for _ in 0..2 {
            delivered_to(&mut rig, public, port, device_b, "downstream to B");
        }

        // A, still on the LAN with its old address, is refused upstream (spoofed) and does
        // not take the mapping back.
        let spoofed = rig.drops(DropReason::Spoofed);
        assert_eq!(
            rig.up(&from(HOST_MAC, TcpControl::None)).0,
            XdpVerdict::Drop
        );
        assert_eq!(
            rig.drops(DropReason::Spoofed) - spoofed,
            1,
            "{name}: A refused"
        );
        delivered_to(&mut rig, public, port, device_b, "still B's");

        // The rig's other tests expect the original host.
        rig.set_static_host(home.id, HOST_MAC);
    }
}

/// vgd's run-time writers of the host table raise the home's host generation too: the slow
/// path's (`PinnedHosts`: a lease released, expired or moved to another MAC) and the control
/// task's (`PinnedMaps`: a static host removed). Each change stops the flow its mapping was
/// vouching for.
#[test]
fn lease_and_static_host_changes_at_run_time_stop_vouched_flows() {
    use vg::fastpath::maps::{PinnedHosts, PinnedMaps};
    let mut rig = rig("natvouch2");
    let home = HOMES[2];
    let leased = Ipv4Addr::new(192, 168, 1, 77);
    let mac2 = [0x02, 0, 0, 0, 0xee, 0x02];
    let from = |mac: [u8; 6], ip: Ipv4Addr| {
        let inner = frames::udp(mac, [0; 6], (ip, 43000), (INTERNET, 53), b"ping");
        home.encap([0; 6]).encapsulate(&inner).unwrap()
    };
    let gen_of = |rig: &mut Rig| rig.fp.maps().hosts_gen(home.id).unwrap();
    let mut hosts = PinnedHosts::open(rig.pins.path()).unwrap();

    // A leased host: its flow runs, vouched for after the first packet.
    hosts.add(home.id, leased, HOST_MAC).unwrap();
    let gen0 = gen_of(&mut rig);
    assert_eq!(rig.up(&from(HOST_MAC, leased)).0, XdpVerdict::Redirect);
    let c0 = rig.counter(Counter::HostCheck);
    assert_eq!(rig.up(&from(HOST_MAC, leased)).0, XdpVerdict::Redirect);
    assert_eq!(rig.counter(Counter::HostCheck), c0);

    // The lease is renewed (same MAC): nothing changes. It moves to another MAC: the
    // generation goes up and the old MAC is refused.
    hosts.add(home.id, leased, HOST_MAC).unwrap();
    assert_eq!(gen_of(&mut rig), gen0);
    hosts.add(home.id, leased, mac2).unwrap();
    assert_eq!(gen_of(&mut rig), gen0.wrapping_add(1));
    assert_eq!(rig.up(&from(HOST_MAC, leased)).0, XdpVerdict::Drop);
    assert_eq!(rig.up(&from(mac2, leased)).0, XdpVerdict::Redirect);

    // The lease ends: the flow stops at its next packet.
    hosts.remove(home.id, leased).unwrap();
    assert_eq!(gen_of(&mut rig), gen0.wrapping_add(2));
    let s0 = rig.drops(DropReason::Spoofed);
    assert_eq!(rig.up(&from(mac2, leased)).0, XdpVerdict::Drop);
    assert_eq!(rig.drops(DropReason::Spoofed) - s0, 1);
    // Removing what is not there changes nothing.
    hosts.remove(home.id, leased).unwrap();
    assert_eq!(gen_of(&mut rig), gen0.wrapping_add(2));

    // The home's static host (the rig's), removed by the control task: the same.
    assert_eq!(rig.up(&from(HOST_MAC, HOST)).0, XdpVerdict::Redirect);
    let mut maps = PinnedMaps::open(rig.pins.path()).unwrap();
    maps.remove_host(&HostKey {
        sub: home.id,
        ip: raw(HOST),
    })
    .unwrap();
    assert_eq!(gen_of(&mut rig), gen0.wrapping_add(3));
    assert_eq!(rig.up(&from(HOST_MAC, HOST)).0, XdpVerdict::Drop);
    assert_eq!(rig.drops(DropReason::Spoofed) - s0, 2);
}

/// A removed home's traffic counters are zeroed, so that a home created later under the same
/// id does not start with them (its per-subscriber series start from zero).
#[test]
fn a_removed_homes_counters_are_zeroed() {
    use vg::fastpath::maps::PinnedMaps;
    let mut rig = rig("natsubctr");
    let home = HOMES[1];
    let frame = home
        .encap([0; 6])
        .encapsulate(&udp_up(43500, INTERNET, 53))
        .unwrap();
    for _ in 0..3 {
        assert_eq!(rig.up(&frame).0, XdpVerdict::Redirect);
    }
    let before = rig.fp.maps().sub_counters(home.id).unwrap();
    assert_eq!(before.up_packets, 3);
    let mut maps = PinnedMaps::open(rig.pins.path()).unwrap();
    maps.remove_subscriber(home.id).unwrap();
    let after = rig.fp.maps().sub_counters(home.id).unwrap();
    assert_eq!(after, nerg_abi::SubCounters::default());
    assert_eq!(rig.up(&frame).0, XdpVerdict::Drop, "the home is gone");
}
