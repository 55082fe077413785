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
    topology::{DhcpClient, HomeLsl, HomeSpec, Naming, SERVER, Topology},
    vgd, wait_until,
};

const HOME: HomeSpec = HomeSpec {
    id: 1,
    lsl: HomeLsl::Qinq(10, 101),
    client: DhcpClient::Dhclient,
};
const SERVER_PORT: u16 = 7777;
const HOST_PORT: u16 = 40000;

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
    let server = topo
        .inet
        .run(|| UdpSocket::bind((SERVER, SERVER_PORT)))
        .expect("server socket");
    server
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    let host = home
        .host
        .run(|| {
            let s = UdpSocket::bind((lease, HOST_PORT))?;
            s.connect((SERVER, SERVER_PORT))?;
            Ok::<_, std::io::Error>(s)
        })
        .expect("host socket");
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
    let iface = home.iface();
    let out = home.host.exec(
        "dhclient",
        &[
            "-4",
            "-r",
            "-v",
            "-sf",
            "/bin/true",
            "-lf",
            &topo
                .dir
                .join(format!("dhclient-{iface}.leases"))
                .display()
                .to_string(),
            "-pf",
            &topo
                .dir
                .join(format!("dhclient-{iface}.pid"))
                .display()
                .to_string(),
            &iface,
        ],
    );
    assert!(out.status.success(), "dhclient -r: {out:?}");
    assert_eq!(home.address(), Some(lease), "the host kept its address");
    wait_until(
        "vgd to remove the released host",
        Duration::from_secs(10),
        || {
            let (code, body) = vgd::api(&topo.vg, "GET", "/api/v1/subscribers/1/hosts", None);
            assert_eq!(code, 200, "{body}");
            !body.contains(&format!("\"{lease}\""))
        },
    );

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
