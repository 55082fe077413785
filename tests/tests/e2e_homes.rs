//! End to end: homes on every LSL kind, each with another real DHCP client, get a lease from
//! vgd through their BRG and LSL, ping their gateway, and reach the internet through the
//! XDP NAT with UDP, TCP and iperf3; Debian's STUN client finds an endpoint-independent
//! mapping that hairpins, and two homes reach each other through their public addresses.
//! All homes use the same private addresses.

use std::{
    net::{SocketAddr, UdpSocket},
    time::Duration,
};

use nerg_tests::{
    http,
    topology::{self, DhcpClient, GATEWAY, HomeLsl, HomeSpec, Naming, SERVER, Topology},
    traffic, vgd,
};

const HOMES: [HomeSpec; 3] = [
    HomeSpec {
        id: 1,
        lsl: HomeLsl::Vlan(101),
        client: DhcpClient::Udhcpc,
    },
    HomeSpec {
        id: 2,
        lsl: HomeLsl::Qinq(10, 102),
        client: DhcpClient::Dhcpcd,
    },
    HomeSpec {
        id: 3,
        lsl: HomeLsl::Vxlan(5003),
        client: DhcpClient::Dhclient,
    },
];

#[test]
fn homes_lease_ping_and_reach_the_internet() {
    let instance = nerg_tests::netns::unique_name("e2e");
    let topo = Topology::build(Naming::Test("e2e".into()), &HOMES, &instance);
    // (mutable later: the ACS changes a home's LSL)

    // DHCP through every LSL kind, with every client.
    let leases = topo.dhcp(Duration::from_secs(30));
    for (home, lease) in topo.homes.iter().zip(&leases) {
        let addr = lease.as_ref().unwrap_or_else(|out| {
            panic!(
                "home {} ({} on {}) got no lease:\n{out}\nvgd:\n{}",
                home.spec.id,
                home.spec.client.name(),
                home.lsl_text(),
                topo.vgd.log()
            )
        });
        let last = addr.octets()[3];
        assert!(
            addr.octets()[..3] == [192, 168, 1] && (100..=199).contains(&last),
            "home {}: {addr} outside the pool",
            home.spec.id
        );
    }

    // The gateway answers ARP and ping on every LSL.
    for home in &topo.homes {
        let out = home
            .host
            .command("ping")
            .args(["-c", "2", "-i", "0.2", "-W", "2", &GATEWAY.to_string()])
            .output()
            .expect("ping");
        if !out.status.success() {
            let show =
                |args: &[&str]| String::from_utf8_lossy(&home.host.ip(args).stdout).into_owned();
            panic!(
                "home {} ({}): ping to the gateway failed: {}\naddr: {}route: {}neigh: {}\nbrgd: {}\nvgd metrics: {}",
                home.spec.id,
                home.lsl_text(),
                String::from_utf8_lossy(&out.stdout),
                show(&["-o", "addr"]),
                show(&["route"]),
                show(&["neigh"]),
                home.brgd.as_ref().map(|b| b.log()).unwrap_or_default(),
                vgd::metrics(&topo.vg)
                    .lines()
                    .filter(|l| l.contains("slowpath")
                        || l.contains("drops_total") && !l.ends_with(" 0"))
                    .collect::<Vec<_>>()
                    .join("\n"),
            );
        }
    }

    // UDP through the NAT: the server sees each home from its own public address:port.
    let homes = topo.homes.len();
    let server = topo.inet.spawn_thread(move || {
        let sock = UdpSocket::bind((SERVER, 7000)).expect("bind UDP echo");
        sock.set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let mut buf = [0u8; 1500];
        let mut seen = std::collections::BTreeSet::new();
        while seen.len() < homes {
            let (n, from) = sock.recv_from(&mut buf).expect("datagrams from every home");
            sock.send_to(&buf[..n], from).unwrap();
            seen.insert(from);
        }
        seen
    });
    for home in &topo.homes {
        // Forget the core next hop: each home's first packet then takes the path where the
        // fast path hands the translated frame to the stack to resolve it (FIB NO_NEIGH).
        topo.vg.ip(&["neigh", "flush", "dev", "core0"]);
        let local = home.address().expect("leased address");
        let echoed = home.host.run(|| {
            let sock = UdpSocket::bind((local, 5555)).unwrap();
            sock.set_read_timeout(Some(Duration::from_millis(500)))
                .unwrap();
            let mut buf = [0u8; 64];
            (0..40).find_map(|_| {
                sock.send_to(b"hello", (SERVER, 7000)).unwrap();
                sock.recv_from(&mut buf)
                    .ok()
                    .map(|(n, _)| buf[..n].to_vec())
            })
        });
        assert_eq!(
            echoed.as_deref(),
            Some(&b"hello"[..]),
            "home {}: UDP echo",
            home.spec.id
        );
    }
    let seen = server.join().expect("UDP server");
    assert_eq!(
        seen.len(),
        homes,
        "one public address:port per home: {seen:?}"
    );
    for from in &seen {
        assert!(
            from.ip().to_string().starts_with("198.51.100."),
            "the server saw {from}, not a public address"
        );
    }

    // TCP: 1 MiB each way per home, checked byte for byte.
    for home in &topo.homes {
        let port = 8000 + home.spec.id as u16;
        let from = traffic::tcp_echo(
            &home.host,
            &topo.inet,
            SocketAddr::from((SERVER, port)),
            traffic::pattern(1 << 20, home.spec.id),
        );
        assert!(
            from.ip().to_string().starts_with("198.51.100."),
            "home {}: {from}",
            home.spec.id
        );
    }

    // HTTP, iperf3 TCP and Debian's STUN client from every home.
    let _servers = topo.start_servers();
    for home in &topo.homes {
        let id = home.spec.id;
        let page = home.host.run(|| http::get((SERVER, 80).into(), "/"));
        assert_eq!(
            page,
            Some((200, topology::WEB_PAGE.to_owned())),
            "home {id}: HTTP fetch through the NAT"
        );
        let rate = topology::iperf3_tcp(&home.host, 1)
            .unwrap_or_else(|e| panic!("home {id} ({}): {e}", home.lsl_text()));
        assert!(rate > 0.0, "home {id}: iperf3 moved nothing");
        let verdict = topology::stun(&home.host)
            .unwrap_or_else(|out| panic!("home {id}: no STUN verdict:\n{out}"));
        assert!(
            topology::stun_is_eim_with_hairpin(&verdict),
            "home {id} ({}): {verdict}",
            home.lsl_text()
        );
    }

    // Hairpinning between two homes: home 3 learns its public address:port from a server,
    // home 1 sends there, and home 3 sees home 1's public address.
    let reflector = topo.inet.spawn_thread(|| {
        let sock = UdpSocket::bind((SERVER, 7001)).expect("bind the reflector");
        sock.set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let mut buf = [0u8; 64];
        let (_, from) = sock.recv_from(&mut buf).expect("a datagram");
        sock.send_to(from.to_string().as_bytes(), from).unwrap();
    });
    let (a, b) = (&topo.homes[2], &topo.homes[0]);
    let a_local = a.address().expect("leased");
    let a_sock = a.host.run(|| {
        let s = UdpSocket::bind((a_local, 6000)).unwrap();
        s.set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        s
    });
    let a_public: SocketAddr = a.host.run(|| {
        let mut buf = [0u8; 64];
        (0..40)
            .find_map(|_| {
                a_sock.send_to(b"who am i", (SERVER, 7001)).unwrap();
                let (n, _) = a_sock.recv_from(&mut buf).ok()?;
                String::from_utf8_lossy(&buf[..n]).parse().ok()
            })
            .expect("the reflector's answer")
    });
    reflector.join().expect("reflector");
    let b_local = b.address().expect("leased");
    b.host.run(|| {
        let s = UdpSocket::bind((b_local, 6001)).unwrap();
        s.send_to(b"hairpin", a_public).unwrap();
    });
    let (from, text) = a.host.run(|| {
        a_sock
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut buf = [0u8; 64];
        let (n, from) = a_sock
            .recv_from(&mut buf)
            .expect("home 1's datagram, hairpinned");
        (from, buf[..n].to_vec())
    });
    assert_eq!(text, b"hairpin");
    assert!(
        from.ip().to_string().starts_with("198.51.100.") && from != a_public,
        "home 3 sees home 1's public address, not {from}"
    );

    // A port forward, set through the API, to a TCP server in home 2 (QinQ): reached from
    // the internet, and from home 1 through the public address (hairpinned).
    let server_home = &topo.homes[1];
    let id = server_home.spec.id;
    let (code, body) = vgd::api(&topo.vg, "GET", &format!("/api/v1/subscribers/{id}"), None);
    assert_eq!(code, 200, "{body}");
    let sub: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    let nat = &sub["nat_assignment"];
    let public: std::net::Ipv4Addr = nat["public_ip"]
        .as_str()
        .expect("public_ip")
        .parse()
        .unwrap();
    let port = nat["blocks"][0]["first_port"].as_u64().expect("first_port") as u16 + 11;
    let local = server_home.address().expect("leased");
    let forward = format!(
        r#"{{"proto": "tcp", "public_port": {port}, "private_ip": "{local}", "private_port": 8080}}"#
    );
    let (code, body) = vgd::api(
        &topo.vg,
        "POST",
        &format!("/api/v1/subscribers/{id}/port-forwards"),
        Some(&forward),
    );
    assert_eq!(code, 201, "{body}");
    let bind = SocketAddr::from((local, 8080));
    let public_addr = SocketAddr::from((public, port));
    let from = traffic::tcp_echo_via(
        &topo.inet,
        &server_home.host,
        bind,
        public_addr,
        traffic::pattern(1 << 20, 21),
    );
    assert!(
        !from.ip().to_string().starts_with("198.51.100."),
        "from the internet: {from}"
    );
    let from = traffic::tcp_echo_via(
        &topo.homes[0].host,
        &server_home.host,
        bind,
        public_addr,
        traffic::pattern(1 << 20, 22),
    );
    assert!(
        from.ip().to_string().starts_with("198.51.100."),
        "hairpinned: {from}"
    );

    // The ACS moves the VXLAN home to another VNI over TR-069, the operator moves the vG's
    // side through the API: traffic follows.
    let mut topo = topo;
    let vx = 2;
    let vx_id = topo.homes[vx].spec.id;
    let brg_vtep = topo.homes[vx].brg_vtep;
    topo.acs_change_lsl(vx, HomeLsl::Vxlan(6003));
    // Until the vG knows the new VNI, the home's frames are an unknown LSL.
    let unknown = |topo: &Topology| {
        http::metric_sum(
            &vgd::metrics(&topo.vg),
            "vg_xdp_drops_total",
            &[("reason", "unknown_lsl")],
        )
    };
    let before = unknown(&topo);
    let lost = topo.homes[vx]
        .host
        .command("ping")
        .args(["-c", "1", "-W", "1", &SERVER.to_string()])
        .output()
        .expect("ping");
    assert!(
        !lost.status.success(),
        "the new VNI worked before the vG was told"
    );
    assert!(
        unknown(&topo) > before,
        "the new VNI's frames were not counted as unknown"
    );
    let (code, body) = vgd::api(
        &topo.vg,
        "PATCH",
        &format!("/api/v1/subscribers/{vx_id}"),
        Some(&format!(r#"{{"lsl": "vxlan:6003@{brg_vtep}"}}"#)),
    );
    assert_eq!(code, 200, "{body}");
    let moved = &topo.homes[vx];
    nerg_tests::wait_until(
        "the VXLAN home to reach the internet over its new VNI",
        Duration::from_secs(20),
        || {
            moved
                .host
                .command("ping")
                .args(["-c", "1", "-W", "1", &SERVER.to_string()])
                .output()
                .is_ok_and(|o| o.status.success())
        },
    );

    // vgd counted what it did.
    let m = vgd::metrics(&topo.vg);
    let dhcp = |kind| {
        http::metric_sum(
            &m,
            "vg_slowpath_frames_total",
            &[("outcome", "dhcp"), ("detail", kind)],
        )
    };
    assert!(dhcp("ack") >= homes as u64, "DHCP ACKs: {m}");
    let messages = |message, reply| {
        http::metric_sum(
            &m,
            "vg_dhcp_messages_total",
            &[("message", message), ("reply", reply)],
        )
    };
    // A client that remembers a lease (dhcpcd keeps them on the host) starts at REQUEST.
    assert!(messages("discover", "offer") >= 1, "DISCOVER -> OFFER: {m}");
    assert!(
        messages("request", "ack") >= homes as u64,
        "REQUEST -> ACK: {m}"
    );
    assert!(
        http::metric_sum(&m, "vg_xdp_counter_total", &[("counter", "nat_created")])
            >= 2 * homes as u64
    );
    assert!(http::metric_sum(&m, "vg_xdp_counter_total", &[("counter", "nat_hairpin")]) >= 1);
}
