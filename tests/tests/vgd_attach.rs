//! vgd on a real veth: frames sent across reach its XDP program and the counters show them;
//! vgd refuses interfaces it cannot use; a restart adopts the pinned maps.

use std::{process::Command, time::Duration};

use nerg_abi::{Counter, DropReason, ethertype};
use nerg_tests::{
    Netns, PinDir, bin, http, netns::veth, raw::RawSocket, require_root, run, vgd, wait_until,
};
use vg::fastpath::{CounterSnapshot, Counters};

/// An Ethernet frame with in-line VLAN `tags` (TPID, VID) around an IPv4 payload.
fn frame(tags: &[(u16, u16)], payload_len: usize) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x01]); // dst
    f.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x02]); // src
    for &(tpid, vid) in tags {
        f.extend_from_slice(&tpid.to_be_bytes());
        f.extend_from_slice(&vid.to_be_bytes());
    }
    f.extend_from_slice(&ethertype::IPV4.to_be_bytes());
    f.resize(f.len() + payload_len, 0x45);
    f
}

struct Lab {
    // Field order is drop order: vgd first, then the namespaces, then the pins.
    vgd: nerg_tests::NsProcess,
    brg: Netns,
    vg: Netns,
    pins: PinDir,
}

/// A vG namespace with vgd on `acc0`, joined by a veth to a "BRG" namespace's `lsl0`.
fn lab(tag: &str) -> Lab {
    require_root();
    let vg = Netns::new(&format!("{tag}-vg"));
    let brg = Netns::new(&format!("{tag}-brg"));
    vg.disable_ipv6();
    brg.disable_ipv6();
    veth(&vg, "acc0", &brg, "lsl0");
    let pins = PinDir::new(tag);
    let vgd = vgd::start(&vg, "acc0", pins.instance());
    assert!(
        vg.has_xdp("acc0"),
        "vgd is ready but acc0 has no XDP program"
    );
    Lab { vgd, brg, vg, pins }
}

fn snapshot(pins: &PinDir) -> CounterSnapshot {
    Counters::open(pins.path())
        .expect("counter maps pinned")
        .snapshot()
        .expect("counters readable")
}

fn send(brg: &Netns, frames: &[Vec<u8>]) {
    brg.run(|| {
        let sock = RawSocket::bind("lsl0").expect("raw socket on lsl0");
        for f in frames {
            sock.send(f).expect("send frame");
        }
    });
}

#[test]
fn frames_across_a_veth_are_counted_by_kind_and_verdict() {
    let mut lab = lab("count");
    let mut frames = Vec::new();
    frames.extend((0..5).map(|_| frame(&[], 46)));
    frames.extend((0..4).map(|_| frame(&[(ethertype::VLAN, 100)], 46)));
    frames.extend((0..3).map(|_| frame(&[(ethertype::QINQ, 10), (ethertype::VLAN, 100)], 46)));
    frames.extend((0..2).map(|_| frame(&[(ethertype::QINQ_LEGACY, 10), (ethertype::VLAN, 7)], 46)));
    frames.extend((0..6).map(|_| {
        frame(
            &[
                (ethertype::QINQ, 1),
                (ethertype::VLAN, 2),
                (ethertype::VLAN, 3),
            ],
            46,
        )
    }));
    let bytes: u64 = frames.iter().map(|f| f.len() as u64).sum();
    send(&lab.brg, &frames);

    let total = frames.len() as u64;
    wait_until(
        "the XDP program to count every frame",
        Duration::from_secs(10),
        || snapshot(&lab.pins).total(Counter::AccessRxPackets) >= total,
    );
    let s = snapshot(&lab.pins);
    assert_eq!(s.total(Counter::AccessRxPackets), total);
    assert_eq!(s.total(Counter::AccessRxBytes), bytes);
    assert_eq!(s.total(Counter::LslUntagged), 5);
    assert_eq!(s.total(Counter::LslDot1q), 4);
    assert_eq!(s.total(Counter::LslQinq), 5);
    assert_eq!(s.drops(DropReason::VlanTooDeep), 6);
    assert_eq!(s.total(Counter::VerdictDrop), 6);
    assert_eq!(s.total(Counter::VerdictPass), total - 6);

    // The same numbers through /metrics and through vgctl.
    let m = vgd::metrics(&lab.vg);
    let sum = |c| http::metric_sum(&m, "vg_xdp_counter_total", &[("counter", c)]);
    assert_eq!(sum("access_rx_packets"), total);
    assert_eq!(sum("lsl_qinq"), 5);
    assert_eq!(
        http::metric_sum(&m, "vg_xdp_drops_total", &[("reason", "vlan_too_deep")]),
        6
    );
    let out = run(Command::new(bin("vgctl")).args([
        "stats",
        "--json",
        "--instance",
        lab.pins.instance(),
    ]));
    let json = String::from_utf8_lossy(&out.stdout);
    assert!(
        json.contains("\"name\": \"lsl_dot1q\",\n      \"total\": 4"),
        "vgctl stats --json: {json}"
    );

    // SIGTERM: clean exit, XDP detached, maps left pinned for the next start.
    let status = lab.vgd.terminate(Duration::from_secs(10));
    assert!(
        status.success(),
        "vgd exit status {status}:\n{}",
        lab.vgd.log()
    );
    assert!(
        !lab.vg.has_xdp("acc0"),
        "XDP still attached after vgd exited"
    );
    assert!(lab.pins.path().join(nerg_abi::map_names::STATS).exists());
}

#[test]
fn a_restarted_vgd_adopts_the_pinned_maps() {
    let mut lab = lab("restart");
    send(
        &lab.brg,
        &[frame(&[(ethertype::VLAN, 5)], 46), frame(&[], 46)],
    );
    wait_until("two frames counted", Duration::from_secs(10), || {
        snapshot(&lab.pins).total(Counter::AccessRxPackets) >= 2
    });
    assert!(lab.vgd.terminate(Duration::from_secs(10)).success());

    lab.vgd = vgd::start(&lab.vg, "acc0", lab.pins.instance());
    send(&lab.brg, &[frame(&[(ethertype::VLAN, 5)], 46)]);
    wait_until("the third frame counted", Duration::from_secs(10), || {
        snapshot(&lab.pins).total(Counter::AccessRxPackets) >= 3
    });
    let s = snapshot(&lab.pins);
    assert_eq!(s.total(Counter::AccessRxPackets), 3, "counters were reset");
    assert_eq!(s.total(Counter::LslDot1q), 2);
}

/// Runs vgd to completion with `args` in a fresh namespace and returns (success, log).
fn vgd_fails(ns: &Netns, pins: &PinDir, iface: &str) -> String {
    let mut vgd = ns.spawn(
        "vgd",
        ns.command(bin("vgd")).args([
            "--access-iface",
            iface,
            "--instance",
            pins.instance(),
            "--listen",
            vgd::LISTEN,
        ]),
    );
    let status = nerg_tests::wait_until_some("vgd to exit", vgd::READY_TIMEOUT, || vgd.try_exit());
    assert!(!status.success(), "vgd started on {iface}:\n{}", vgd.log());
    vgd.log()
}

#[test]
fn vgd_refuses_a_missing_interface() {
    require_root();
    let ns = Netns::new("noif");
    let pins = PinDir::new("noif");
    let log = vgd_fails(&ns, &pins, "nosuch0");
    assert!(
        log.contains("interface \"nosuch0\" does not exist"),
        "unclear error: {log}"
    );
}

#[test]
fn vgd_refuses_an_interface_without_native_xdp() {
    require_root();
    let ns = Netns::new("nonative");
    let pins = PinDir::new("nonative");
    // The loopback device has no driver XDP support.
    let log = vgd_fails(&ns, &pins, "lo");
    assert!(
        log.contains("cannot attach XDP in native mode to lo"),
        "unclear error: {log}"
    );
}
