//! vgd on a real veth: frames sent across reach its XDP program, which classifies them by
//! LSL, hands control traffic to vgd's slow path and counts everything;
//! vgd refuses interfaces it cannot use; a restart adopts the pinned maps.

use std::{net::Ipv4Addr, process::Command, time::Duration};

use lsl::Encap;
use nerg_abi::{Counter, DropReason};
use nerg_tests::{
    Netns, PinDir, bin, frames, http, netns::veth, raw::RawSocket, require_root, run, vgd,
    wait_until,
};
use vg::fastpath::{CounterSnapshot, Counters};

struct Lab {
    // Field order is drop order: vgd first, then the namespaces, then the files.
    vgd: nerg_tests::NsProcess,
    brg: Netns,
    vg: Netns,
    pins: PinDir,
    config: TempFile,
}

/// A file removed on drop.
struct TempFile(std::path::PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Three homes: one 802.1Q, one QinQ with S-tag 0x88a8, one QinQ with S-tag 0x9100.
const CONFIG: &str = r#"
[[subscriber]]
id = 1
lsl = "vlan:100"

[[subscriber]]
id = 2
lsl = "qinq:10.100"

[[subscriber]]
id = 3
lsl = "qinq-9100:10.7"
"#;

const GW: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 1);
const HOST: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 10);
const HOST_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x10];

/// A vG namespace with vgd on `acc0` (configured with [`CONFIG`]), joined by a veth to a
/// "BRG" namespace's `lsl0`.
fn lab(tag: &str) -> Lab {
    require_root();
    let vg = Netns::new(&format!("{tag}-vg"));
    let brg = Netns::new(&format!("{tag}-brg"));
    vg.disable_ipv6();
    brg.disable_ipv6();
    veth(&vg, "acc0", &brg, "lsl0");
    let pins = PinDir::new(tag);
    let config = TempFile(std::env::temp_dir().join(format!("{}.toml", pins.instance())));
    std::fs::write(&config.0, CONFIG).expect("writing the vgd config");
    let vgd = vgd::start_with_config(&vg, "acc0", pins.instance(), Some(&config.0));
    assert!(
        vg.has_native_xdp("acc0"),
        "vgd is ready but acc0 has no native XDP program"
    );
    let features = vg.exec("ethtool", &["-k", "acc0"]);
    assert!(
        String::from_utf8_lossy(&features.stdout).contains("rx-vlan-offload: off"),
        "vgd left receive VLAN offload on"
    );
    Lab {
        vgd,
        brg,
        vg,
        pins,
        config,
    }
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

fn arp_for_gateway() -> Vec<u8> {
    frames::arp_request(HOST_MAC, HOST, GW)
}

fn encap(e: &str) -> Encap {
    let lsl: lsl::LslId = e.parse().unwrap();
    match lsl {
        lsl::LslId::Vlan { s_tag: None, c_vid } => Encap::Dot1q { c_vid },
        lsl::LslId::Vlan {
            s_tag: Some(s),
            c_vid,
        } => Encap::QinQ {
            s_tpid: s.tpid,
            s_vid: s.vid,
            c_vid,
        },
        other => panic!("no VLAN encapsulation for {other}"),
    }
}

#[test]
fn frames_across_a_veth_are_classified_counted_and_punted() {
    let mut lab = lab("count");
    let mut frames = Vec::new();
    // Untagged: the kernel stack's (e.g. ARP for the VTEP), passed.
    frames.extend((0..5).map(|_| arp_for_gateway()));
    // Each home's ARP for its gateway: to the slow path.
    for (lsl, n) in [("vlan:100", 4), ("qinq:10.100", 3), ("qinq-9100:10.7", 2)] {
        let f = encap(lsl).encapsulate(&arp_for_gateway()).unwrap();
        frames.extend(std::iter::repeat_n(f, n));
    }
    // Unknown LSLs and too many tags: dropped, by reason.
    let unknown = encap("vlan:999").encapsulate(&arp_for_gateway()).unwrap();
    frames.extend(std::iter::repeat_n(unknown, 3));
    let mut three = encap("qinq:10.100")
        .encapsulate(&arp_for_gateway())
        .unwrap();
    three.splice(20..20, [0x81, 0x00, 0x00, 0x05]);
    frames.extend(std::iter::repeat_n(three, 6));
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
    assert_eq!(s.total(Counter::LslDot1q), 4 + 3);
    assert_eq!(s.total(Counter::LslQinq), 3 + 2, "three tags are not QinQ");
    assert_eq!(s.total(Counter::VerdictPass), 5);
    assert_eq!(s.total(Counter::VerdictPunt), 9);
    assert_eq!(s.drops(DropReason::UnknownLsl), 3);
    assert_eq!(s.drops(DropReason::VlanTooDeep), 6);
    assert_eq!(s.total(Counter::VerdictDrop), 9);

    // The slow path received the punted frames; /metrics and vgctl show the counters.
    let punted = || {
        let m = vgd::metrics(&lab.vg);
        http::metric_sum(&m, "vg_slowpath_punts_total", &[("reason", "arp")])
    };
    wait_until(
        "vgd's slow path to read 9 ARP frames",
        Duration::from_secs(10),
        || punted() >= 9,
    );
    assert_eq!(punted(), 9);
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
        json.contains("\"name\": \"lsl_dot1q\",\n      \"total\": 7"),
        "vgctl stats --json: {json}"
    );

    // SIGTERM: clean exit; the program stays attached through its pinned link (forwarding
    // goes on while vgd restarts), the maps stay pinned for the next start.
    let status = lab.vgd.terminate(Duration::from_secs(10));
    assert!(
        status.success(),
        "vgd exit status {status}:\n{}",
        lab.vgd.log()
    );
    assert!(
        lab.vg.has_native_xdp("acc0"),
        "XDP detached when vgd exited"
    );
    assert!(lab.pins.path().join(nerg_abi::map_names::STATS).exists());
    let link = lab.pins.path().join("link_vg_access_acc0");
    assert!(link.exists(), "no pinned XDP link");
    // Removing the pin (what `--detach-on-exit` does) detaches the program.
    std::fs::remove_file(&link).unwrap();
    wait_until(
        "XDP to detach once unpinned",
        Duration::from_secs(5),
        || !lab.vg.has_xdp("acc0"),
    );
}

#[test]
fn a_restarted_vgd_adopts_the_pinned_maps() {
    let mut lab = lab("restart");
    let home1 = encap("vlan:100").encapsulate(&arp_for_gateway()).unwrap();
    send(&lab.brg, &[home1.clone(), arp_for_gateway()]);
    wait_until("two frames counted", Duration::from_secs(10), || {
        snapshot(&lab.pins).total(Counter::AccessRxPackets) >= 2
    });
    assert!(lab.vgd.terminate(Duration::from_secs(10)).success());

    // Restart without home 1: its LSL must go; the counters must not be reset.
    std::fs::write(
        &lab.config.0,
        CONFIG.replace("lsl = \"vlan:100\"", "lsl = \"vlan:101\""),
    )
    .unwrap();
    lab.vgd = vgd::start_with_config(&lab.vg, "acc0", lab.pins.instance(), Some(&lab.config.0));
    send(&lab.brg, &[home1]);
    wait_until("the third frame counted", Duration::from_secs(10), || {
        snapshot(&lab.pins).total(Counter::AccessRxPackets) >= 3
    });
    let s = snapshot(&lab.pins);
    assert_eq!(s.total(Counter::AccessRxPackets), 3, "counters were reset");
    assert_eq!(s.total(Counter::LslDot1q), 2);
    assert_eq!(
        s.total(Counter::VerdictPunt),
        1,
        "home 1 before the restart"
    );
    assert_eq!(
        s.drops(DropReason::UnknownLsl),
        1,
        "home 1's old LSL after it"
    );
}

/// An upgrade across versions that grew the stateless maps (a jump table with a new program,
/// drop counters with a new reason): vgd replaces them instead of refusing, and keeps the
/// state maps (a counter kept, the home's LSL entry working).
#[test]
fn a_restart_replaces_an_older_vgds_jump_table_and_drop_counters() {
    let mut lab = lab("upgrade");
    let home1 = encap("vlan:100").encapsulate(&arp_for_gateway()).unwrap();
    send(&lab.brg, std::slice::from_ref(&home1));
    wait_until("a frame counted", Duration::from_secs(10), || {
        snapshot(&lab.pins).total(Counter::AccessRxPackets) >= 1
    });
    assert!(lab.vgd.terminate(Duration::from_secs(10)).success());
    // What an older vgd pinned: a one-slot jump table, fewer drop reasons.
    let value = size_of::<nerg_abi::CounterValue>().to_string();
    let older = nerg_abi::DropReason::COUNT - 5;
    for (name, kind, value, entries) in [
        (nerg_abi::map_names::JUMP, "prog_array", "4", 1),
        (
            nerg_abi::map_names::DROPS,
            "percpu_array",
            value.as_str(),
            older,
        ),
    ] {
        let path = lab.pins.path().join(name);
        std::fs::remove_file(&path).expect("unpinning");
        nerg_tests::run(std::process::Command::new("bpftool").args([
            "map",
            "create",
            path.to_str().expect("path"),
            "type",
            kind,
            "key",
            "4",
            "value",
            value,
            "entries",
            &entries.to_string(),
            "name",
            &name[..name.len().min(15)],
        ]));
    }
    lab.vgd = vgd::start_with_config(&lab.vg, "acc0", lab.pins.instance(), Some(&lab.config.0));
    assert!(
        lab.vgd.log().contains("an older vgd's map replaced"),
        "{}",
        lab.vgd.log()
    );
    for name in [nerg_abi::map_names::JUMP, nerg_abi::map_names::DROPS] {
        let info = aya::maps::MapData::from_pin(lab.pins.path().join(name))
            .and_then(|m| m.info())
            .expect("the new pin");
        let want = if name == nerg_abi::map_names::JUMP {
            nerg_abi::JUMP_SLOTS
        } else {
            nerg_abi::DropReason::COUNT
        };
        assert_eq!(info.max_entries(), want, "{name}");
    }
    // The state maps were kept: the counter goes on, the home's frames are still punted.
    send(&lab.brg, &[home1]);
    wait_until("the second frame counted", Duration::from_secs(10), || {
        snapshot(&lab.pins).total(Counter::AccessRxPackets) >= 2
    });
    assert_eq!(snapshot(&lab.pins).total(Counter::VerdictPunt), 2);
}

/// Started with `ip netns exec` (which gives vgd a mount namespace with a fresh `/sys`), vgd
/// pins into a bpffs that only it sees: it says so at start, with what to do. Started with
/// `nsenter --net` (the host's bpffs), it does not.
#[test]
fn vgd_warns_when_its_bpffs_is_private_to_its_mount_namespace() {
    let lab = lab("privbpf");
    let warning = "is private to vgd's mount namespace";
    assert!(
        !lab.vgd.log().contains(warning),
        "vgd on the host's bpffs warned:\n{}",
        lab.vgd.log()
    );
    let ns = Netns::new("privbpf2");
    ns.disable_ipv6();
    ns.ip(&[
        "link", "add", "acc0", "type", "veth", "peer", "name", "acc1",
    ]);
    ns.link_up("acc0");
    ns.link_up("acc1");
    let pins = PinDir::new("privbpf2");
    let mut launcher = Command::new("ip");
    launcher.args(["netns", "exec", ns.name()]).arg(bin("vgd"));
    let mut vgd = vgd::start_via(&ns, launcher, "acc0", None, pins.instance(), None);
    let log = vgd.log();
    assert!(
        log.contains(warning) && log.contains("nsenter --net="),
        "no warning about the private bpffs:\n{log}"
    );
    let in_host_bpffs = std::fs::read_dir(pins.path()).map_or(0, |d| d.count());
    assert_eq!(
        in_host_bpffs,
        0,
        "the maps are not pinned in the host's bpffs ({})",
        pins.path().display()
    );
    assert!(vgd.terminate(Duration::from_secs(10)).success());
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

#[test]
fn vgd_refuses_maps_pinned_with_another_layout() {
    require_root();
    let ns = Netns::new("oldabi");
    let pins = PinDir::new("oldabi");
    ns.ip(&[
        "link", "add", "acc0", "type", "veth", "peer", "name", "peer0",
    ]);
    ns.link_up("acc0");
    ns.link_up("peer0");
    // The subscriber array as an older vgd pinned it (112-byte records).
    let path = pins.path().join(nerg_abi::map_names::SUBSCRIBERS);
    nerg_tests::run(std::process::Command::new("bpftool").args([
        "map",
        "create",
        path.to_str().expect("path"),
        "type",
        "array",
        "key",
        "4",
        "value",
        "112",
        "entries",
        "16",
        "name",
        "NERG_SUBSCRIBE",
    ]));
    let log = vgd_fails(&ns, &pins, "acc0");
    let needs = size_of::<nerg_abi::Subscriber>();
    assert!(
        log.contains(&format!(
            "pinned by an incompatible vgd (its value size is 112, this one needs {needs})"
        )) && log.contains("not hitless: remove"),
        "unclear error: {log}"
    );
}
