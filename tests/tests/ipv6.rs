//! End to end, IPv6 (issue 18): dual-stack homes on every LSL kind (802.1Q, QinQ, VXLAN
//! over IPv4 and over IPv6), real BRGs provisioned over TR-069, a real vgd, real clients.
//!
//! - The kernel's SLAAC forms the host's address from the home's LAN /64 (as the API
//!   reports it) and the MAC (modified EUI-64); dhcpcd and `dhclient -6` get a DHCPv6
//!   address (IA_NA) from the same /64 and a delegated prefix (IA_PD) inside the home's /56
//!   but outside its LAN; the host reaches the internet's server by ping, HTTP and iperf3,
//!   and the server sees the host's own global address (routed, not translated); homes
//!   reach each other directly.
//! - Restarts: a UDP sequence each way loses nothing across `terminate` and `kill -9` of
//!   vgd (the fast path's neighbour and prefix maps are pinned), and the DHCPv6 address
//!   renews to the same one (bindings are durable).
//! - Anti-spoofing and RA guard: a frame from one home with a source in another home's
//!   prefix (or in none) is dropped and counted `spoofed`; a router advertisement or a
//!   DHCPv6 server message from a home reaches no other home and is counted `ra_guard`.
//! - What hosts read: rdisc6 sees the LAN, M and O, the LSL's MTU and the DNS server in the
//!   RA; ndisc6 resolves the router; a full-size packet from the internet reaches every home
//!   or gets a Packet Too Big (RFC 8201), never a black hole. A host with only its SLAAC
//!   address reaches the internet (the vG learnt the address from its DAD).
//!
//! Home ids are the tests' own (6x, 7x, 8x): dhcpcd keys its pid and control files, shared by
//! every namespace, by the host's interface name (`h<id>`).

use std::{
    collections::BTreeSet,
    net::{IpAddr, Ipv6Addr, SocketAddr},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use ipnet::Ipv6Net;
use nerg_tests::{
    http,
    raw::RawSocket,
    topology::{
        self, DhcpClient, Home, HomeLsl, HomeSpec, Naming, Topology, WEB_PAGE,
        ipv6::{self, SERVER6},
    },
    traffic::{sequence_receiver, sequence_sender},
    vgd, wait_until, wait_until_some,
};

/// How long a host may take for SLAAC (an RS answered, DAD of the address: about 1 s).
const SLAAC_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a DHCPv6 client may take (the Solicit's first retransmission is at 1 s).
const DHCP6_TIMEOUT: Duration = Duration::from_secs(30);

fn home(id: u32, lsl: HomeLsl, client: DhcpClient) -> HomeSpec {
    HomeSpec { id, lsl, client }
}

/// The home's assignment, checked against the pool: a /56 whose first /64 is the LAN.
fn assignment(topo: &Topology, home: &Home) -> ipv6::Assignment {
    let id = home.spec.id;
    let a = topo
        .ipv6_assignment(id)
        .unwrap_or_else(|| panic!("home {id} has no IPv6 assignment"));
    let pool: Ipv6Net = ipv6::POOL6.parse().unwrap();
    assert!(
        pool.contains(&a.prefix),
        "home {id}: {a:?} outside the pool"
    );
    assert_eq!(
        a.prefix.prefix_len(),
        ipv6::DELEGATED_LEN,
        "home {id}: {a:?}"
    );
    assert_eq!(
        (a.lan.network(), a.lan.prefix_len()),
        (a.prefix.network(), 64),
        "home {id}: the LAN is not the prefix's first /64"
    );
    a
}

/// What the vG's slow path and fast path say, for failure messages.
fn vg_state(topo: &Topology) -> String {
    let m = vgd::metrics(&topo.vg);
    let interesting: Vec<&str> = m
        .lines()
        .filter(|l| {
            !l.starts_with('#')
                && !l.ends_with(" 0")
                && !l.contains("_bucket")
                && (l.contains("slowpath")
                    || l.contains("drops_total")
                    || l.contains("nd")
                    || l.contains("dhcp6")
                    || l.contains("ipv6"))
        })
        .collect();
    format!(
        "vgd metrics:\n{}\nvgd log (tail):\n{}",
        interesting.join("\n"),
        tail(&topo.vgd.log(), 40)
    )
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// The host's SLAAC address: the EUI-64 one in its LAN, with a link-local default router.
fn slaac(topo: &Topology, home: &Home, lan: Ipv6Net) -> Ipv6Addr {
    let id = home.spec.id;
    let addr = home
        .wait_slaac(lan, SLAAC_TIMEOUT)
        .unwrap_or_else(|e| panic!("home {id} ({}): {e}\n{}", home.lsl_text(), vg_state(topo)));
    assert_eq!(
        addr,
        home.eui64_address(lan),
        "home {id}: not the EUI-64 address"
    );
    let router = home.ipv6_router().expect("a default router");
    assert!(
        router.is_unicast_link_local(),
        "home {id}: the default router {router} is not link-local (RFC 4861 §4.2)"
    );
    addr
}

fn drops(topo: &Topology, reason: &str) -> u64 {
    http::metric_sum(
        &vgd::metrics(&topo.vg),
        "vg_xdp_drops_total",
        &[("reason", reason)],
    )
}

/// The RA as Debian's rdisc6 reads it: the LAN, M and O, the DNS server, from the router
/// the host uses; ndisc6 resolves the router's link-local address to the MAC the host
/// learnt. The MTU option is returned as a complaint when it is not the LSL's (checked for
/// every home before failing).
fn check_ra(home: &Home, a: &ipv6::Assignment) -> Option<String> {
    let id = home.spec.id;
    let ra = home
        .rdisc6()
        .unwrap_or_else(|out| panic!("home {id}: no RA for rdisc6:\n{out}"));
    let field = |k: &str| ra.get(k).map(String::as_str).unwrap_or("");
    for (key, want) in [
        ("Prefix", a.lan.to_string()),
        ("Autonomous address conf.", "Yes".into()),
        ("Stateful address conf.", "Yes".into()),
        ("Stateful other conf.", "Yes".into()),
        ("Recursive DNS server", SERVER6.to_string()),
    ] {
        assert_eq!(field(key), want, "home {id}: {key} in {ra:#?}");
    }
    let router = home.ipv6_router().expect("router");
    assert_eq!(field("from"), router.to_string(), "home {id}");
    let mac = home
        .ndisc6(router)
        .unwrap_or_else(|out| panic!("home {id}: ndisc6 {router}:\n{out}"));
    let known = home.ipv6_neighbour_mac(router).expect("the router's MAC");
    let known = known.map(|b| format!("{b:02x}")).join(":");
    assert_eq!(
        mac, known,
        "home {id}: ndisc6 and the RA disagree on the router's MAC"
    );
    let mtu = home.spec.lsl.home_mtu().to_string();
    (field("MTU").split_whitespace().next() != Some(mtu.as_str())).then(|| {
        format!(
            "home {id} ({}): {} instead of {mtu}",
            home.lsl_text(),
            field("MTU")
        )
    })
}

/// The home's DHCPv6 address (from the LAN, not the SLAAC one) and delegated prefix
/// (inside the home's prefix, outside its LAN); returns the address.
fn check_dhcp6(home: &Home, a: &ipv6::Assignment, client: &ipv6::Dhcp6) -> Ipv6Addr {
    let id = home.spec.id;
    let addr = wait_until_some(
        &format!("home {id}'s DHCPv6 address ({})", client.client),
        DHCP6_TIMEOUT,
        || home.dhcp6_address(a.lan),
    );
    let slaac = home.slaac_address(a.lan).expect("the SLAAC address stays");
    assert_ne!(addr, slaac, "home {id}: IA_NA gave the SLAAC address");
    let pd = wait_until_some(
        &format!("home {id}'s delegated prefix ({})", client.client),
        DHCP6_TIMEOUT,
        || client.delegated(),
    );
    assert!(
        a.prefix.contains(&pd) && !pd.contains(&a.lan.network()) && !a.lan.contains(&pd.network()),
        "home {id}: delegated {pd}, not inside {} outside the LAN {}:\n{}",
        a.prefix,
        a.lan,
        client.log()
    );
    addr
}

/// Ping, HTTP and iperf3 from the home to the internet's IPv6 server, whose web server sees
/// one of the host's own addresses `own`.
fn check_internet(topo: &Topology, home: &Home, own: &[Ipv6Addr], v6: &ipv6::Servers6) {
    let id = home.spec.id;
    assert!(
        ipv6::ping(&home.host, SERVER6.into()),
        "home {id} ({}): no ping to {SERVER6}\n{}",
        home.lsl_text(),
        vg_state(topo)
    );
    let page = home
        .host
        .run(|| http::get(SocketAddr::from((SERVER6, 80)), "/"));
    assert_eq!(
        page,
        Some((200, WEB_PAGE.to_owned())),
        "home {id}: HTTP over IPv6"
    );
    assert!(
        own.iter().any(|a| v6.http_saw(*a)),
        "home {id}: the web server did not see {own:?}:\n{}",
        v6.httpd.log()
    );
    let rate = topology::iperf3_to(&home.host, SERVER6.into(), 5201, 1, &[])
        .unwrap_or_else(|e| panic!("home {id} ({}): iperf3 over IPv6: {e}", home.lsl_text()));
    assert!(rate > 0.0, "home {id}: iperf3 moved nothing");
}

/// Path MTU (RFC 8201): a full 1500-byte packet from the internet to `addr` in `home` is
/// answered, or gets a Packet Too Big; a black hole is returned as a complaint.
fn pmtu_hole(topo: &Topology, home: &Home, addr: Ipv6Addr) -> Option<String> {
    let out = topo
        .inet
        .command("ping")
        .args(["-c", "1", "-W", "3", "-M", "do", "-s", "1452"])
        .arg(addr.to_string())
        .output()
        .expect("ping");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let ptb = text.contains("too big") || text.contains("mtu");
    (!out.status.success() && !ptb)
        .then(|| format!("home {} ({}): {text}", home.spec.id, home.lsl_text()))
}

#[test]
fn dual_stack_homes_get_slaac_dhcpv6_and_a_prefix_and_reach_the_internet() {
    let instance = nerg_tests::netns::unique_name("v6e2e");
    let homes = [
        home(61, HomeLsl::Vlan(161), DhcpClient::Dhclient),
        home(62, HomeLsl::Qinq(10, 162), DhcpClient::Dhcpcd),
        home(63, HomeLsl::Vxlan(5063), DhcpClient::Dhclient),
        home(64, HomeLsl::Vxlan6(5064), DhcpClient::Dhcpcd),
    ];
    let topo = Topology::build_dual_stack(Naming::Test("v6e2e".into()), &homes, &instance);
    let assignments: Vec<ipv6::Assignment> =
        topo.homes.iter().map(|h| assignment(&topo, h)).collect();
    let distinct: BTreeSet<Ipv6Net> = assignments.iter().map(|a| a.prefix).collect();
    assert_eq!(
        distinct.len(),
        homes.len(),
        "a prefix given twice: {assignments:?}"
    );

    // SLAAC through every LSL kind: the kernel's, from the vG's RA, which rdisc6 reads.
    for home in &topo.homes {
        home.start_ipv6();
    }
    let slaacs: Vec<Ipv6Addr> = topo
        .homes
        .iter()
        .zip(&assignments)
        .map(|(home, a)| slaac(&topo, home, a.lan))
        .collect();
    let wrong_mtu: Vec<String> = topo
        .homes
        .iter()
        .zip(&assignments)
        .filter_map(|(home, a)| check_ra(home, a))
        .collect();
    // RFC 4861 §4.6.4: the MTU option tells hosts the link's MTU, here what the LSL carries
    // (1500 tagged, 50 and 70 bytes less for VXLAN over IPv4 and IPv6).
    assert!(
        wrong_mtu.is_empty(),
        "the RAs' MTU option is not the LSL's MTU:\n{}",
        wrong_mtu.join("\n")
    );

    // DHCPv6, then the internet and the path MTU from it.
    let clients: Vec<ipv6::Dhcp6> = (0..topo.homes.len()).map(|i| topo.dhcp6(i)).collect();
    let dhcp6: Vec<Ipv6Addr> = topo
        .homes
        .iter()
        .zip(&assignments)
        .zip(&clients)
        .map(|((home, a), client)| check_dhcp6(home, a, client))
        .collect();
    let servers = topo.start_servers();
    let v6 = servers.v6.as_ref().expect("IPv6 servers");
    for (i, home) in topo.homes.iter().enumerate() {
        check_internet(&topo, home, &[slaacs[i], dhcp6[i]], v6);
    }
    let holes: Vec<String> = topo
        .homes
        .iter()
        .zip(&dhcp6)
        .filter_map(|(home, addr)| pmtu_hole(&topo, home, *addr))
        .collect();
    assert!(
        holes.is_empty(),
        "1500-byte packets to these homes vanished without a Packet Too Big:\n{}\n{}",
        holes.join("\n"),
        vg_state(&topo)
    );

    // A host with its SLAAC address alone (most hosts: no DHCPv6 client, or M unset) is a
    // host of the home too: the vG learnt the address from its DAD (RFC 6620 §3.2: an
    // address no one defends within the DAD window is the first claimant's). Before any
    // traffic to the address (below: home to home) makes the vG resolve it.
    for (home, slaac) in topo.homes.iter().zip(&slaacs) {
        if let Err(out) = ipv6::ping_from(&home.host, *slaac, SERVER6) {
            panic!(
                "home {} ({}): no ping to {SERVER6} from its SLAAC address {slaac}:\n{out}\n{}",
                home.spec.id,
                home.lsl_text(),
                vg_state(&topo)
            );
        }
    }

    // Home to home, routed directly: every home pings the next one's SLAAC address.
    for (i, home) in topo.homes.iter().enumerate() {
        let (j, peer) = ((i + 1) % slaacs.len(), slaacs[(i + 1) % slaacs.len()]);
        assert!(
            ipv6::ping(&home.host, IpAddr::V6(peer)),
            "home {} cannot reach home {}'s {peer}",
            home.spec.id,
            topo.homes[j].spec.id
        );
    }
    drop(clients);
}

/// The IPv6 counterpart of `restart.rs`: a UDP sequence each way at 200 packets/s through
/// an immediate restart and a `kill -9` with an immediate start; nothing lost, and the
/// DHCPv6 address renews to the same afterwards.
#[test]
fn ipv6_bindings_and_a_udp_flow_survive_restart_and_kill_9() {
    let instance = nerg_tests::netns::unique_name("v6restart");
    let homes = [home(71, HomeLsl::Qinq(10, 171), DhcpClient::Dhcpcd)];
    let mut topo = Topology::build_dual_stack(Naming::Test("v6restart".into()), &homes, &instance);
    let a = assignment(&topo, &topo.homes[0]);
    topo.homes[0].start_ipv6();
    let slaac_addr = slaac(&topo, &topo.homes[0], a.lan);
    let client = topo.dhcp6(0);
    let addr = wait_until_some("the DHCPv6 address", DHCP6_TIMEOUT, || {
        topo.homes[0].dhcp6_address(a.lan)
    });

    udp_both_ways_across_restarts(&mut topo, &instance, addr);

    // The binding survived: a Renew to the new vgd gets the same address back.
    let renewed = client.count("RENEW6") + client.count("REBIND6");
    client
        .renew()
        .unwrap_or_else(|e| panic!("{e}\n{}", client.log()));
    wait_until("dhcpcd's Renew to be answered", DHCP6_TIMEOUT, || {
        client.count("RENEW6") + client.count("REBIND6") > renewed
    });
    let home = &topo.homes[0];
    assert_eq!(home.dhcp6_address(a.lan), Some(addr), "{}", client.log());
    assert_eq!(home.slaac_address(a.lan), Some(slaac_addr));
    assert_eq!(
        topo.ipv6_assignment(71),
        Some(a),
        "the prefix changed across kill -9"
    );
}

/// A UDP sequence each way between the host at `addr` and the internet's server, at 200
/// packets/s, through an immediate restart of vgd and a `kill -9` with an immediate start:
/// nothing may be lost, and the server sees the host's own address.
fn udp_both_ways_across_restarts(topo: &mut Topology, instance: &str, addr: Ipv6Addr) {
    const SERVER_PORT: u16 = 7100;
    const HOST_PORT: u16 = 7200;
    let wait = Duration::from_secs(5);
    let server = topo
        .inet
        .udp(SocketAddr::from((SERVER6, SERVER_PORT)), None, wait);
    let host = topo.homes[0].host.udp(
        SocketAddr::from((addr, HOST_PORT)),
        Some(SocketAddr::from((SERVER6, SERVER_PORT))),
        wait,
    );
    host.send(b"hello").unwrap();
    let mut buf = [0u8; 16];
    let (n, from) = server
        .recv_from(&mut buf)
        .unwrap_or_else(|e| panic!("the first datagram never arrived ({e})\n{}", vg_state(topo)));
    assert_eq!(&buf[..n], b"hello");
    assert_eq!(
        from,
        SocketAddr::from((addr, HOST_PORT)),
        "routed, not translated"
    );

    let stop_send = Arc::new(AtomicBool::new(false));
    let stop_recv = Arc::new(AtomicBool::new(false));
    let gap = Duration::from_millis(5);
    let up_rx = sequence_receiver(server.try_clone().unwrap(), stop_recv.clone());
    let down_rx = sequence_receiver(host.try_clone().unwrap(), stop_recv.clone());
    let up_tx = sequence_sender(host, None, gap, stop_send.clone());
    let down_tx = sequence_sender(server, Some(from), gap, stop_send.clone());

    let config = topo.dir.join("vgd.toml");
    let start = |topo: &Topology| {
        vgd::start_with_config_and_core(&topo.vg, "acc0", Some("core0"), instance, Some(&config))
    };
    // Traffic before, an immediate restart, traffic, a crash and a start, traffic after
    // (the seconds are the scenario, not waits for readiness).
    std::thread::sleep(Duration::from_secs(1));
    let status = topo.vgd.terminate(Duration::from_secs(10));
    assert!(status.success(), "vgd stopped badly:\n{}", topo.vgd.log());
    topo.vgd = start(topo);
    std::thread::sleep(Duration::from_secs(1));
    topo.vgd.kill();
    assert!(
        topo.vg.has_native_xdp("acc0") && topo.vg.has_native_xdp("core0"),
        "the fast path must stay attached after kill -9"
    );
    topo.vgd = start(topo);
    std::thread::sleep(Duration::from_secs(1));

    stop_send.store(true, Ordering::Relaxed);
    let sent_up = up_tx.join().unwrap();
    let sent_down = down_tx.join().unwrap();
    stop_recv.store(true, Ordering::Relaxed);
    let got_up = up_rx.join().unwrap();
    let got_down = down_rx.join().unwrap();
    let missing = |sent: u32, got: &BTreeSet<u32>| -> Vec<u32> {
        (0..sent).filter(|n| !got.contains(n)).collect()
    };
    let (lost_up, lost_down) = (missing(sent_up, &got_up), missing(sent_down, &got_down));
    assert!(
        sent_up > 400 && sent_down > 400,
        "the sequences ran through both restarts ({sent_up} up, {sent_down} down)"
    );
    assert!(
        lost_up.is_empty() && lost_down.is_empty(),
        "lost across the restarts: {} of {sent_up} upstream (first {:?}), {} of {sent_down} \
         downstream (first {:?})\n{}",
        lost_up.len(),
        lost_up.iter().take(5).collect::<Vec<_>>(),
        lost_down.len(),
        lost_down.iter().take(5).collect::<Vec<_>>(),
        vg_state(topo)
    );
}

/// A router advertisement (RFC 4861 §4.2) to all nodes from `src`, with the on-link,
/// autonomous prefix `prefix`/64: what a rogue router in a home sends.
fn rogue_ra(src_mac: [u8; 6], src: Ipv6Addr, prefix: Ipv6Addr) -> Vec<u8> {
    let mut body = vec![64, 0];
    body.extend_from_slice(&1800u16.to_be_bytes()); // router lifetime
    body.extend_from_slice(&[0; 8]); // reachable time, retrans timer
    // Prefix information (RFC 4861 §4.6.2): type 3, 4 x 8 bytes, /64, L and A.
    body.extend_from_slice(&[3, 4, 64, 0xc0]);
    body.extend_from_slice(&86_400u32.to_be_bytes());
    body.extend_from_slice(&14_400u32.to_be_bytes());
    body.extend_from_slice(&[0; 4]);
    body.extend_from_slice(&prefix.octets());
    let all_nodes: Ipv6Addr = "ff02::1".parse().unwrap();
    let dst_mac = [0x33, 0x33, 0, 0, 0, 1];
    nerg_tests::frames::icmp6(src_mac, dst_mac, src, all_nodes, 134, &body, 255)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn a_home_can_neither_spoof_another_homes_prefix_nor_advertise_routes() {
    let instance = nerg_tests::netns::unique_name("v6guard");
    let homes = [
        home(81, HomeLsl::Vlan(181), DhcpClient::Dhclient),
        home(82, HomeLsl::Vxlan6(5082), DhcpClient::Dhclient),
    ];
    let topo = Topology::build_dual_stack(Naming::Test("v6guard".into()), &homes, &instance);
    let lans: Vec<Ipv6Net> = topo
        .homes
        .iter()
        .map(|h| assignment(&topo, h).lan)
        .collect();
    for home in &topo.homes {
        home.start_ipv6();
    }
    let addrs: Vec<Ipv6Addr> = topo
        .homes
        .iter()
        .zip(&lans)
        .map(|(h, lan)| slaac(&topo, h, *lan))
        .collect();
    let (a, b) = (&topo.homes[0], &topo.homes[1]);
    // A's own address: its DHCPv6 one (a binding the vG has, whatever SLAAC's state).
    let _client = topo.dhcp6(0);
    let a_addr = wait_until_some("A's DHCPv6 address", DHCP6_TIMEOUT, || {
        a.dhcp6_address(lans[0])
    });
    let router = a.ipv6_router().expect("router");
    let gw_mac = wait_until_some("the router's MAC (the RA's SLLA)", SLAAC_TIMEOUT, || {
        a.ipv6_neighbour_mac(router)
    });
    let a_mac = a.host.mac(&a.iface());

    // A's genuine datagram arrives; one from B's address (B's prefix) does not.
    let server = topo.inet.udp(
        SocketAddr::from((SERVER6, 7300)),
        None,
        Duration::from_millis(300),
    );
    let raw = a
        .host
        .run(|| RawSocket::bind(&a.iface()).expect("raw socket"));
    let send = |src: Ipv6Addr, payload: &[u8]| {
        let frame =
            nerg_tests::frames::udp6(a_mac, gw_mac, (src, 4000), (SERVER6, 7300), payload, 64);
        raw.send(&frame).expect("send");
    };
    let received = |payload: &[u8]| -> bool {
        let mut buf = [0u8; 64];
        while let Ok((n, _)) = server.recv_from(&mut buf) {
            if &buf[..n] == payload {
                return true;
            }
        }
        false
    };
    wait_until("A's genuine datagram", Duration::from_secs(10), || {
        send(a_addr, b"genuine");
        received(b"genuine")
    });
    let spoofed = drops(&topo, "spoofed");
    for _ in 0..5 {
        send(addrs[1], b"forged");
    }
    wait_until(
        "the forged datagrams counted spoofed",
        Duration::from_secs(5),
        || drops(&topo, "spoofed") >= spoofed + 5,
    );
    assert!(
        !received(b"forged"),
        "a datagram from B's prefix left A's home"
    );
    let outside = "2001:db8:dead::1".parse().unwrap();
    send(outside, b"outside");
    wait_until(
        "a source outside any prefix counted spoofed",
        Duration::from_secs(5),
        || drops(&topo, "spoofed") >= spoofed + 6,
    );
    assert!(!received(b"outside"));

    check_ra_guard(&topo, &raw, (a, a_mac), (b, lans[1], addrs[1]));
}

/// A rogue RA and a rogue DHCPv6 server message sent by `a` on `raw`: counted, seen by no
/// one; `b` keeps its router and its address `b_addr` in `b_lan`.
fn check_ra_guard(
    topo: &Topology,
    raw: &RawSocket,
    (a, a_mac): (&Home, [u8; 6]),
    (b, b_lan, b_addr): (&Home, Ipv6Net, Ipv6Addr),
) {
    let bad_prefix: Ipv6Addr = "2001:db8:bad:1::".parse().unwrap();
    let a_ll = a.link_local().expect("A's link-local");
    let capture = b
        .host
        .run(|| RawSocket::bind(&b.iface()).expect("raw socket on B"));
    let guarded = drops(topo, "ra_guard");
    for _ in 0..3 {
        raw.send(&rogue_ra(a_mac, a_ll, bad_prefix))
            .expect("send RA");
    }
    raw.send(&rogue_advertise(a_mac, a_ll, bad_prefix))
        .expect("send Advertise");
    wait_until(
        "the rogue RAs and the Advertise counted ra_guard",
        Duration::from_secs(5),
        || drops(topo, "ra_guard") >= guarded + 4,
    );
    while let Some(frame) = capture.recv(Duration::from_millis(300)).expect("recv") {
        assert!(
            !contains(&frame, &bad_prefix.octets()),
            "the rogue RA or Advertise reached home B: {frame:02x?}"
        );
    }
    let b_addrs = b.ipv6_addresses();
    let bad_net = Ipv6Net::new(bad_prefix, 64).unwrap();
    assert!(
        b_addrs.iter().all(|x| !bad_net.contains(&x.addr)),
        "B took an address from the rogue prefix: {b_addrs:?}"
    );
    assert_eq!(b.slaac_address(b_lan), Some(b_addr));
    assert!(b.ipv6_router().is_some_and(|r| r.is_unicast_link_local()));
}

/// A rogue DHCPv6 server's Advertise to all nodes (server port 547 to client port 546,
/// RFC 8415 §7.2), its body marked with `mark`.
fn rogue_advertise(src_mac: [u8; 6], src: Ipv6Addr, mark: Ipv6Addr) -> Vec<u8> {
    let all_nodes: Ipv6Addr = "ff02::1".parse().unwrap();
    let mut advertise = vec![2, 0, 0, 1];
    advertise.extend_from_slice(&mark.octets());
    nerg_tests::frames::udp6(
        src_mac,
        [0x33, 0x33, 0, 0, 0, 1],
        (src, 547),
        (all_nodes, 546),
        &advertise,
        255,
    )
}
