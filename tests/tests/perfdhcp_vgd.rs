//! Debian's perfdhcp in a home, behind its BRG and VXLAN LSL, against vgd. perfdhcp always
//! acts as a relay agent (giaddr = its own address, replies expected on port 67): vgd drops
//! that by default, and serves it when the home says `dhcp.relayed = "serve"`. Every lease
//! perfdhcp was acknowledged is then in vgd's store, and still there after a `kill -9` of vgd
//! right after perfdhcp finishes.

use std::{collections::BTreeMap, time::Duration};

use nerg_tests::{
    perfdhcp::{self, Load, VgdRig, metric_sum, vgd_config},
    require_root, wait_until,
};
use vg::dhcp::LeaseState;

/// 50 clients, 400 exchanges at 200/s: about 2 seconds, every client several times.
const LOAD: Load = Load {
    clients: 50,
    rate: 200,
    secs: None,
    exchanges: Some(400),
    print_leases: true,
};

#[test]
fn perfdhcp_through_its_relay_gets_durable_leases_from_vgd() {
    require_root();
    // The default: relayed messages from inside a home are dropped and counted.
    let drop_config = vgd_config(10_000).replace("relayed = \"serve\"\n", "");
    let mut rig = VgdRig::start("pdv", &drop_config);
    let run = perfdhcp::run(
        &rig.net.host,
        &Load {
            exchanges: Some(20),
            rate: 50,
            ..LOAD
        },
    )
    .expect("perfdhcp runs");
    assert_eq!(run.acks, 0, "vgd served a relay by default: {run:?}");
    // vgd counts a batch once it is done with it: poll.
    let relayed = || {
        metric_sum(
            &rig.metrics(),
            "vg_slowpath_frames_total",
            &["outcome=\"ignored\"", "detail=\"relayed\""],
        )
    };
    wait_until(
        "vgd to count the 20 relayed DISCOVERs as relayed",
        Duration::from_secs(10),
        || relayed() >= 20.0,
    );

    // The home serves relayed DHCP (and its limit lets perfdhcp through).
    std::fs::write(&rig.config, vgd_config(10_000)).expect("vgd config");
    rig.crash_and_restart();
    let run = perfdhcp::run(&rig.net.host, &LOAD).expect("perfdhcp runs");
    assert!(
        run.acks >= u64::from(LOAD.exchanges.unwrap_or(0)) * 9 / 10,
        "perfdhcp completed only {} of {:?} exchanges: {run:?}\nvgd:\n{}",
        run.acks,
        LOAD.exchanges,
        rig.vgd.log()
    );
    assert_eq!(
        run.leases.len() as u64,
        run.acks,
        "perfdhcp -x l prints one lease per ACK:\n{}",
        run.output
    );
    // The leases acknowledged, per client (a client gets its address back every time).
    let mut acked: BTreeMap<[u8; 6], std::net::Ipv4Addr> = BTreeMap::new();
    for &(ip, mac) in &run.leases {
        if let Some(before) = acked.insert(mac, ip) {
            assert_eq!(before, ip, "client {mac:02x?} was given two addresses");
        }
        let last = ip.octets()[3];
        assert!(
            ip.octets()[..3] == [192, 168, 1] && (100..=199).contains(&last),
            "{ip} is outside the pool"
        );
    }
    assert!(acked.len() > 1 && acked.len() <= LOAD.clients as usize);
    wait_until(
        "vgd to count the ACKs perfdhcp received, and their commits",
        Duration::from_secs(10),
        || {
            let metrics = rig.metrics();
            let acks = metric_sum(
                &metrics,
                "vg_dhcp_messages_total",
                &["message=\"request\"", "reply=\"ack\""],
            );
            let commits = metric_sum(&metrics, "vg_dhcp_store_commits_total", &["result=\"ok\""]);
            acks >= run.acks as f64 && commits >= 1.0
        },
    );

    // Crash right after the last ACK: the new vgd has every lease that was acknowledged.
    rig.crash_and_restart();
    let stored: BTreeMap<[u8; 6], (std::net::Ipv4Addr, LeaseState)> = rig
        .leases()
        .into_iter()
        .map(|r| (r.mac.0, (r.ip, r.state)))
        .collect();
    for (mac, ip) in &acked {
        assert_eq!(
            stored.get(mac),
            Some(&(*ip, LeaseState::Bound)),
            "the lease of {ip} acknowledged to {mac:02x?} was lost across kill -9; stored: {stored:?}"
        );
    }
    // (It may hold more: an ACK that left after perfdhcp stopped listening.)
    assert!(
        stored.len() <= LOAD.clients as usize,
        "more leases than clients: {stored:?}"
    );
}
