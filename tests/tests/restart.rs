//! Restarting vgd does not drop established flows: an iperf3 TCP transfer from a home runs
//! across a vgd restart and completes, and UDP sequences both ways lose no packet across an
//! immediate restart and across a pause with no vgd at all. The XDP programs stay attached
//! through their pinned links while no vgd runs (with their tail-call table, which is
//! pinned too), and the new vgd adopts the pinned maps (NAT mappings, hosts) and takes the
//! links over.

use std::{
    collections::BTreeSet,
    net::{Ipv4Addr, SocketAddr},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use nerg_tests::{
    perfdhcp::metric_sum,
    topology::{DhcpClient, HomeLsl, HomeSpec, Naming, SERVER, Topology},
    traffic::{sequence_receiver, sequence_sender},
    vgd, wait_until,
};

#[test]
fn a_tcp_transfer_survives_a_vgd_restart() {
    let instance = nerg_tests::netns::unique_name("restart");
    let homes = [HomeSpec {
        id: 1,
        lsl: HomeLsl::Qinq(10, 101),
        client: DhcpClient::Udhcpc,
    }];
    let mut topo = Topology::build(Naming::Test("restart".into()), &homes, &instance);
    let lease = topo.dhcp(Duration::from_secs(30)).remove(0);
    lease.unwrap_or_else(|out| panic!("no lease: {out}"));

    let mut server = topo.inet.spawn(
        "iperf3 server",
        topo.inet
            .command("iperf3")
            .args(["-s", "-B", &SERVER.to_string(), "-p", "5201"]),
    );
    wait_until("iperf3 to listen", Duration::from_secs(10), || {
        server.assert_running();
        topo.inet.tcp_listening(5201)
    });
    let home = &topo.homes[0];
    let mut client = home.host.spawn(
        "iperf3 client",
        home.host.command("iperf3").args([
            "-c",
            &SERVER.to_string(),
            "-p",
            "5201",
            "-t",
            "5",
            "-J",
        ]),
    );
    // Restart vgd while the transfer runs (the server has its data connection).
    wait_until("the transfer to start", Duration::from_secs(10), || {
        client.assert_running();
        let out = topo.inet.exec(
            "ss",
            &["-Htn", "state", "established", "sport", "=", ":5201"],
        );
        String::from_utf8_lossy(&out.stdout).lines().count() >= 2
    });
    let status = topo.vgd.terminate(Duration::from_secs(10));
    assert!(status.success(), "vgd stopped badly:\n{}", topo.vgd.log());
    assert!(
        topo.vg.has_native_xdp("acc0") && topo.vg.has_native_xdp("core0"),
        "the fast path must stay attached while vgd is down"
    );
    let config = topo.dir.join("vgd.toml");
    topo.vgd =
        vgd::start_with_config_and_core(&topo.vg, "acc0", Some("core0"), &instance, Some(&config));

    let status = nerg_tests::wait_until_some("iperf3 to finish", Duration::from_secs(30), || {
        client.try_exit()
    });
    let report = client.log();
    assert!(
        status.success(),
        "iperf3 failed across the restart:\n{report}"
    );
    assert!(
        !report.contains("\"error\""),
        "iperf3 reported an error:\n{report}"
    );
    let received = report
        .split("\"sum_received\"")
        .nth(1)
        .and_then(|s| s.split("\"bytes\":").nth(1))
        .and_then(|s| s.split([',', '}']).next())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .unwrap_or_else(|| panic!("no sum_received in:\n{report}"));
    assert!(
        received > 10e6,
        "only {received} bytes crossed the NAT in 5 s"
    );
}

#[test]
fn acknowledged_leases_survive_kill_9() {
    let instance = nerg_tests::netns::unique_name("kill9");
    let homes = [HomeSpec {
        id: 1,
        lsl: HomeLsl::Vxlan(5001),
        client: DhcpClient::Udhcpc,
    }];
    let mut topo = Topology::build(Naming::Test("kill9".into()), &homes, &instance);
    let first = topo.dhcp(Duration::from_secs(30)).remove(0);
    let first = first.unwrap_or_else(|out| panic!("no lease: {out}"));

    // A crash right after the ACK, then a new vgd on the same state.
    topo.vgd.kill();
    let config = topo.dir.join("vgd.toml");
    topo.vgd =
        vgd::start_with_config_and_core(&topo.vg, "acc0", Some("core0"), &instance, Some(&config));

    // Another host (another MAC) asks for a lease: the first one's address is still taken.
    let home = &topo.homes[0];
    let iface = home.iface();
    home.host.ip(&["link", "set", &iface, "down"]);
    home.host.ip(&["addr", "flush", "dev", &iface]);
    home.host
        .ip(&["link", "set", &iface, "address", "02:99:00:00:00:02"]);
    home.host.ip(&["link", "set", &iface, "up"]);
    let second = topo.dhcp(Duration::from_secs(30)).remove(0);
    let second = second.unwrap_or_else(|out| panic!("no second lease: {out}"));
    assert_ne!(
        first, second,
        "vgd forgot the lease of {first} across kill -9 and gave it to another host"
    );
}

fn tail_call_failures(topo: &Topology) -> f64 {
    metric_sum(
        &vgd::metrics(&topo.vg),
        "vg_xdp_drops_total",
        &["reason=\"tail_call_failed\""],
    )
}

/// The claim of the README's "restarts" paragraph, with loss-sensitive traffic: a UDP
/// sequence from the home and one to it, 200 packets/s each, run through an immediate
/// restart of vgd and then through a stop, 3 s with no vgd at all, and a start. Not one
/// packet may be lost either way, and no downstream frame may fail its tail call into the
/// delivery program (the program array that holds it must outlive the vgd that filled it).
#[test]
fn udp_both_ways_loses_nothing_across_restarts_and_a_pause_without_vgd() {
    let instance = nerg_tests::netns::unique_name("restartudp");
    let homes = [HomeSpec {
        id: 1,
        lsl: HomeLsl::Qinq(10, 101),
        client: DhcpClient::Udhcpc,
    }];
    let mut topo = Topology::build(Naming::Test("restartudp".into()), &homes, &instance);
    let lease = topo
        .dhcp(Duration::from_secs(30))
        .remove(0)
        .unwrap_or_else(|out| panic!("no lease: {out}"));
    let home = &topo.homes[0];
    const SERVER_PORT: u16 = 7100;
    const HOST_PORT: u16 = 7200;
    let wait = Duration::from_secs(5);
    let server = topo
        .inet
        .udp(SocketAddr::from((SERVER, SERVER_PORT)), None, wait);
    let host = home.host.udp(
        SocketAddr::from((lease, HOST_PORT)),
        Some(SocketAddr::from((SERVER, SERVER_PORT))),
        wait,
    );
    // The mapping: the server learns the home's public address and port from a first packet.
    host.send(b"hello").unwrap();
    let mut buf = [0u8; 16];
    let (n, public) = server
        .recv_from(&mut buf)
        .expect("the first packet crosses the NAT");
    assert_eq!(&buf[..n], b"hello");
    assert_ne!(public.ip(), std::net::IpAddr::V4(lease), "translated");
    assert_ne!(public.ip(), std::net::IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    let failures0 = tail_call_failures(&topo);

    let stop_send = Arc::new(AtomicBool::new(false));
    let stop_recv = Arc::new(AtomicBool::new(false));
    let gap = Duration::from_millis(5);
    let up_rx = sequence_receiver(server.try_clone().unwrap(), stop_recv.clone());
    let down_rx = sequence_receiver(host.try_clone().unwrap(), stop_recv.clone());
    let up_tx = sequence_sender(host, None, gap, stop_send.clone());
    let down_tx = sequence_sender(server, Some(public), gap, stop_send.clone());

    let config = topo.dir.join("vgd.toml");
    let start = |topo: &Topology| {
        vgd::start_with_config_and_core(&topo.vg, "acc0", Some("core0"), &instance, Some(&config))
    };
    // Traffic before, an immediate restart, traffic, a stop, 3 s without vgd (the scenario
    // itself, not a wait for readiness), a start, traffic after.
    std::thread::sleep(Duration::from_secs(1));
    let status = topo.vgd.terminate(Duration::from_secs(10));
    assert!(status.success(), "vgd stopped badly:\n{}", topo.vgd.log());
    topo.vgd = start(&topo);
    std::thread::sleep(Duration::from_secs(1));
    let status = topo.vgd.terminate(Duration::from_secs(10));
    assert!(status.success(), "vgd stopped badly:\n{}", topo.vgd.log());
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        topo.vg.has_native_xdp("acc0") && topo.vg.has_native_xdp("core0"),
        "the fast path must stay attached while vgd is down"
    );
    topo.vgd = start(&topo);
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
    let lost_up = missing(sent_up, &got_up);
    let lost_down = missing(sent_down, &got_down);
    assert!(
        sent_up > 1000 && sent_down > 1000,
        "the sequences ran through both restarts ({sent_up} up, {sent_down} down)"
    );
    assert!(
        lost_up.is_empty() && lost_down.is_empty(),
        "lost across the restarts: {} of {sent_up} upstream (first {:?}), {} of {sent_down} \
         downstream (first {:?}); vgd log:\n{}",
        lost_up.len(),
        lost_up.iter().take(5).collect::<Vec<_>>(),
        lost_down.len(),
        lost_down.iter().take(5).collect::<Vec<_>>(),
        topo.vgd.log()
    );
    assert_eq!(
        tail_call_failures(&topo) - failures0,
        0.0,
        "downstream frames failed their tail call into vg_deliver"
    );
}
