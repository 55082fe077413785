//! End to end: homes on every LSL kind, each with another real DHCP client, get a lease from
//! vgd through their BRG and LSL, ping their gateway, and reach the internet through the
//! XDP NAT with UDP and TCP. All homes use the same private addresses.

use std::{
    net::{SocketAddr, UdpSocket},
    time::Duration,
};

use nerg_tests::{
    http,
    topology::{DhcpClient, GATEWAY, HomeLsl, HomeSpec, Naming, SERVER, Topology},
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
    assert!(
        http::metric_sum(&m, "vg_xdp_counter_total", &[("counter", "nat_created")])
            >= 2 * homes as u64
    );
}
