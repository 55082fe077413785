//! A home's devices all start at once (power coming back to a house): 100 real DHCP clients
//! (busybox udhcpc, each on its own macvlan with its own MAC) behind one BRG and QinQ LSL ask
//! for leases together and then ping their gateway. With the default per-home slow-path
//! limit every one of their frames is admitted: none is counted as `rate_limited`, every
//! device gets a distinct lease and reaches its gateway. The time to bring them all online
//! is printed (a figure for the README, not an assertion: speed is the benchmarks' job).

use std::{collections::BTreeSet, net::Ipv4Addr, process::Child, time::Duration};

use nerg_tests::{
    http,
    topology::{DhcpClient, HomeLsl, HomeSpec, Naming, Topology},
    vgd, wait_until_some,
};

/// Devices in the home.
const DEVICES: usize = 100;

fn rate_limited(topo: &Topology) -> u64 {
    http::metric_sum(
        &vgd::metrics(&topo.vg),
        "vg_slowpath_frames_total",
        &[("outcome", "ignored"), ("detail", "rate_limited")],
    )
}

#[test]
fn a_hundred_devices_of_one_home_starting_together_all_get_online_unthrottled() {
    let instance = nerg_tests::netns::unique_name("massstart");
    let homes = [HomeSpec {
        id: 1,
        lsl: HomeLsl::Qinq(10, 131),
        client: DhcpClient::Udhcpc,
    }];
    let topo = Topology::build(Naming::Test("massstart".into()), &homes, &instance);
    let home = &topo.homes[0];
    let lan = home.iface();
    let dev = |i: usize| format!("mv{i}");
    for i in 0..DEVICES {
        home.host.ip(&[
            "link",
            "add",
            "link",
            &lan,
            "name",
            &dev(i),
            "type",
            "macvlan",
            "mode",
            "bridge",
        ]);
        home.host.link_up(&dev(i));
    }
    let limited0 = rate_limited(&topo);
    // This script only records the lease on the device's own interface (no routes: the
    // devices share one namespace).
    let script = topo.dir.join("mass-start-script");
    std::fs::write(
        &script,
        "#!/bin/sh\ncase \"$1\" in\n  bound|renew) ip addr flush dev \"$interface\"; \
         ip addr add \"$ip/$mask\" dev \"$interface\" ;;\nesac\nexit 0\n",
    )
    .unwrap();
    nerg_tests::run(std::process::Command::new("chmod").arg("755").arg(&script));

    let started = std::time::Instant::now();
    let mut clients: Vec<Child> = (0..DEVICES)
        .map(|i| {
            home.host
                .command("busybox")
                .args([
                    "udhcpc",
                    "-f",
                    "-q",
                    "-n",
                    "-t",
                    "10",
                    "-T",
                    "1",
                    "-i",
                    &dev(i),
                    "-s",
                ])
                .arg(&script)
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .expect("starting udhcpc")
        })
        .collect();
    for (i, client) in clients.iter_mut().enumerate() {
        let status = wait_until_some(
            &format!("device {i} to get its lease"),
            Duration::from_secs(40),
            || client.try_wait().ok().flatten(),
        );
        assert!(status.success(), "device {i}'s udhcpc gave up: {status}");
    }
    let online = started.elapsed();

    // Every device has its own address, and reaches its gateway from it (ARP and ICMP through
    // the slow path too).
    let mut leases = BTreeSet::new();
    for i in 0..DEVICES {
        let out = home
            .host
            .exec("ip", &["-4", "-o", "addr", "show", "dev", &dev(i)]);
        let text = String::from_utf8_lossy(&out.stdout);
        let addr: Ipv4Addr = text
            .split_whitespace()
            .skip_while(|w| *w != "inet")
            .nth(1)
            .and_then(|cidr| cidr.split('/').next()?.parse().ok())
            .unwrap_or_else(|| panic!("device {i} has no address: {text}"));
        leases.insert(addr);
    }
    assert_eq!(leases.len(), DEVICES, "distinct leases: {leases:?}");
    let pings: Vec<Child> = (0..DEVICES)
        .map(|i| {
            home.host
                .command("ping")
                .args(["-c", "1", "-W", "5", "-I", &dev(i), "192.168.1.1"])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .expect("starting ping")
        })
        .collect();
    let unreachable: Vec<usize> = pings
        .into_iter()
        .enumerate()
        .filter_map(|(i, mut ping)| (!ping.wait().expect("ping").success()).then_some(i))
        .collect();
    let limited = rate_limited(&topo) - limited0;
    eprintln!(
        "{DEVICES} devices of one home online in {:.2} s; {limited} slow-path frames rate \
         limited; {} could not ping their gateway",
        online.as_secs_f64(),
        unreachable.len()
    );
    assert_eq!(
        limited, 0,
        "the home's mass start was throttled by the per-home slow-path limit"
    );
    assert!(
        unreachable.is_empty(),
        "devices that could not ping their gateway: {unreachable:?}"
    );
}
