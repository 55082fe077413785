//! A released lease ends the host's right to send, even for a flow already established: a
//! real dhclient gets a lease from vgd through its BRG and QinQ LSL, a UDP flow runs through
//! the XDP NAT (its mapping vouching for the host after the first packet), then dhclient
//! releases the lease but the host keeps its address and sends on the same flow. vgd removes
//! the host and raises the home's host generation, so the fast path drops the flow's next
//! packet as spoofed, and nothing more reaches the internet.

use std::{
    net::{SocketAddr, UdpSocket},
    time::Duration,
};

use nerg_tests::{
    perfdhcp::metric_sum,
    topology::{DhcpClient, Home, HomeLsl, HomeSpec, Naming, SERVER, Topology},
    vgd, wait_until,
};

const HOME: HomeSpec = HomeSpec {
    id: 1,
    lsl: HomeLsl::Qinq(10, 101),
    client: DhcpClient::Dhclient,
};
const SERVER_PORT: u16 = 7777;
const HOST_PORT: u16 = 40000;

/// Releases the home's dhclient lease (`dhclient -r`, which also stops the running client)
/// with `script` as the client script.
fn dhclient_release(topo: &Topology, home: &Home, script: &str) {
    let iface = home.iface();
    let file = |what: &str| {
        topo.dir
            .join(format!("dhclient-{iface}.{what}"))
            .display()
            .to_string()
    };
    let out = home.host.exec(
        "dhclient",
        &[
            "-4",
            "-r",
            "-v",
            "-sf",
            script,
            "-lf",
            &file("leases"),
            "-pf",
            &file("pid"),
            &iface,
        ],
    );
    assert!(out.status.success(), "dhclient -r: {out:?}");
}

/// Waits until vgd no longer lists `ip` among home 1's hosts.
fn wait_host_removed(topo: &Topology, ip: std::net::Ipv4Addr) {
    wait_until(
        "vgd to remove the released host",
        Duration::from_secs(10),
        || {
            let (code, body) = vgd::api(&topo.vg, "GET", "/api/v1/subscribers/1/hosts", None);
            assert_eq!(code, 200, "{body}");
            !body.contains(&format!("\"{ip}\""))
        },
    );
}

/// The internet's end of the tests' flow.
fn server_socket(topo: &Topology) -> UdpSocket {
    let at = SocketAddr::from((SERVER, SERVER_PORT));
    topo.inet.udp(at, None, Duration::from_secs(3))
}

/// The home host's end: from its lease, one port, to the server.
fn host_socket(home: &Home, lease: std::net::Ipv4Addr) -> UdpSocket {
    let peer = SocketAddr::from((SERVER, SERVER_PORT));
    home.host.udp(
        SocketAddr::from((lease, HOST_PORT)),
        Some(peer),
        Duration::from_secs(3),
    )
}

fn spoofed(topo: &Topology) -> f64 {
    metric_sum(
        &vgd::metrics(&topo.vg),
        "vg_xdp_drops_total",
        &["reason=\"spoofed\""],
    )
}

#[test]
fn a_released_lease_stops_the_hosts_established_flow() {
    let instance = nerg_tests::netns::unique_name("release");
    let topo = Topology::build(Naming::Test("release".into()), &[HOME], &instance);
    let lease = topo
        .dhcp(Duration::from_secs(30))
        .remove(0)
        .unwrap_or_else(|out| panic!("no lease: {out}"));
    let home = &topo.homes[0];

    // The internet end: a UDP socket the test reads; the home end: one flow, one port.
    let server = server_socket(&topo);
    let host = host_socket(home, lease);
    let recv = || -> Option<(Vec<u8>, SocketAddr)> {
        let mut buf = [0u8; 64];
        let (n, from) = server.recv_from(&mut buf).ok()?;
        Some((buf[..n].to_vec(), from))
    };

    // The flow runs: its first packet creates the mapping, the next ones are vouched for.
    for msg in [&b"one"[..], b"two", b"three"] {
        host.send(msg).unwrap();
        let (got, from) = recv().expect("the flow reaches the internet");
        assert_eq!(got, msg);
        assert_ne!(from.ip(), lease, "translated");
    }

    // dhclient releases the lease; its script does nothing, so the host keeps the address
    // (and its routes), as a client that ignores the release would.
    dhclient_release(&topo, home, "/bin/true");
    assert_eq!(home.address(), Some(lease), "the host kept its address");
    wait_host_removed(&topo, lease);

    // The same flow's next packet is dropped as spoofed and reaches nobody.
    let before = spoofed(&topo);
    host.send(b"four").unwrap();
    wait_until(
        "the fast path to count the spoofed packet",
        Duration::from_secs(5),
        || spoofed(&topo) > before,
    );
    assert!(
        recv().is_none(),
        "a released host's packet reached the internet"
    );
}

/// Two devices take turns on a home's one address (a one-address DHCP range, as in a home
/// whose pool is full and hands a remembered address to a new device): device A gets the
/// address, runs a UDP flow, releases; device B (another MAC) gets the same address and
/// sends the same flow. B's flow gets its own mapping (the previous device's has ended), and
/// what the internet sends back reaches B, not A's MAC.
#[test]
fn an_address_leased_to_another_device_brings_its_flows_replies_to_that_device() {
    let instance = nerg_tests::netns::unique_name("addrmove");
    let mut topo =
        Topology::build_with(Naming::Test("addrmove".into()), &[HOME], &instance, |_| {
            false
        });
    let lsl = topo.homes[0].lsl_text();
    let (code, body) = vgd::api(
        &topo.vg,
        "POST",
        "/api/v1/subscribers",
        Some(&format!(
            r#"{{"id": 1, "lsl": "{lsl}", "dhcp": {{"range_start": "192.168.1.100", "range_end": "192.168.1.100"}}}}"#
        )),
    );
    assert_eq!(code, 201, "{body}");
    let server = server_socket(&topo);
    let set_mac = |topo: &mut Topology, mac: &str| {
        let home = &topo.homes[0];
        let iface = home.iface();
        home.host.ip(&["link", "set", &iface, "down"]);
        home.host.ip(&["addr", "flush", "dev", &iface]);
        home.host.ip(&["link", "set", &iface, "address", mac]);
        home.host.ip(&["link", "set", &iface, "up"]);
    };
    let script = topo.dir.join("dhcp-client-script").display().to_string();

    // Each device in turn: a lease, a flow out, the server's answer to where the flow came
    // from, back in. The first device then releases the address.
    let mut publics = Vec::new();
    for (device, mac) in [("A", "02:00:00:00:00:01"), ("B", "02:00:07:00:00:01")] {
        set_mac(&mut topo, mac);
        let lease = topo
            .dhcp(Duration::from_secs(30))
            .remove(0)
            .unwrap_or_else(|out| panic!("device {device}: no lease: {out}"));
        assert_eq!(
            lease,
            std::net::Ipv4Addr::new(192, 168, 1, 100),
            "device {device}: the home's one address"
        );
        let home = &topo.homes[0];
        let host = host_socket(home, lease);
        for n in 0..3u8 {
            host.send(&[b'u', n]).unwrap();
            let mut buf = [0u8; 8];
            let (len, public) = server.recv_from(&mut buf).unwrap_or_else(|e| {
                panic!("device {device}: packet {n} did not reach the internet: {e}")
            });
            assert_eq!(&buf[..len], &[b'u', n]);
            server.send_to(&[b'd', n], public).unwrap();
            let len = host.recv(&mut buf).unwrap_or_else(|e| {
                panic!(
                    "device {device}: the answer to packet {n} from {public} did not arrive: {e}"
                )
            });
            assert_eq!(&buf[..len], &[b'd', n], "device {device}");
            publics.push(public);
        }
        drop(host);
        if device == "A" {
            dhclient_release(&topo, &topo.homes[0], &script);
            wait_host_removed(&topo, lease);
        }
    }
    // B's flow took the address's mapping over, on the same public port: what A's flow had
    // is over, not shared.
    assert!(
        publics.windows(2).all(|w| w[0] == w[1]),
        "one public address and port for the flow: {publics:?}"
    );
    let metrics = vgd::metrics(&topo.vg);
    assert_eq!(
        metric_sum(
            &metrics,
            "vg_xdp_counter_total",
            &["counter=\"nat_reowned\""]
        ),
        1.0,
        "B's first packet re-owned A's mapping"
    );
}
