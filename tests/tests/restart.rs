//! Restarting vgd does not drop established flows: an iperf3 TCP transfer from a home runs
//! across a vgd restart and completes. The XDP programs stay attached through their pinned
//! links while no vgd runs, and the new vgd adopts the pinned maps (NAT mappings, hosts)
//! and takes the links over.

use std::time::Duration;

use nerg_tests::{
    topology::{DhcpClient, HomeLsl, HomeSpec, Naming, SERVER, Topology},
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
