//! The vG access-side XDP program under BPF_PROG_TEST_RUN: a fixture table with map set-up,
//! input frames built by our own `lsl` codecs, and the expected verdict, output bytes,
//! counters and punted record. One block of rows per encapsulation (802.1Q, QinQ, VXLAN),
//! plus rows for untagged, unknown and malformed frames, and for a host of an 802.1Q home
//! that tags its own frames (never another home's, issue 15).

use std::net::{IpAddr, Ipv4Addr};

use aya::maps::{MapData, RingBuf};
use lsl::{Encap, Vid, Vni, VxlanEncap, smoltcp::wire::EthernetAddress, wire::vlan::Tpid};
use nerg_abi::{
    Config, Counter, DropReason, Host, HostKey, PuntHeader, PuntReason, Subscriber, SubscriberId,
    VlanLslKey, VxlanLslKey, config_flags, lsl_kind, program_names, stag_tpid, sub_flags,
};
use nerg_tests::{PinDir, frames, require_root};
use vg::fastpath::{
    CounterSnapshot, FastPath,
    test_run::{XdpVerdict, run_xdp},
};

/// BPF_PROG_TEST_RUN runs XDP as if received on the loopback device of the caller's
/// namespace: ifindex 1.
const TEST_IFINDEX: u32 = 1;
const VG_VTEP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const BRG_VTEP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
const GW: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 1);
const HOST: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 10);
const HOST_MAC: [u8; 6] = [0x02, 0x11, 0, 0, 0, 0x10];
const OTHER_MAC: [u8; 6] = [0x02, 0x11, 0, 0, 0, 0x99];
const GW_MAC: [u8; 6] = [0x02, 0x4e, 0x47, 0, 0, 0x01];
const INTERNET: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 5);

const SUB_DOT1Q: SubscriberId = 1;
const SUB_QINQ: SubscriberId = 2;
const SUB_VXLAN: SubscriberId = 3;
/// An LSL that points at an empty subscriber slot.
const SUB_EMPTY: SubscriberId = 7;
/// `qinq-8100:100.5`: its frames begin with the tag of the 802.1Q home (0x8100/100). vgd
/// refuses the pair; the fast path must keep them apart even if it met them.
const SUB_UNDER_DOT1Q: SubscriberId = 5;
/// `qinq-8100:102.5`: no 802.1Q home has VID 102.
const SUB_QINQ_8100: SubscriberId = 6;

fn vid(v: u16) -> Vid {
    Vid::new(v).unwrap()
}

fn vxlan_encap(vni: u32, from: Ipv4Addr, to: Ipv4Addr) -> Encap {
    Encap::Vxlan(VxlanEncap::new(
        Vni::new(vni).unwrap(),
        IpAddr::V4(from),
        IpAddr::V4(to),
        EthernetAddress([0x02, 0xb0, 0, 0, 0, 2]),
        EthernetAddress([0x02, 0xa0, 0, 0, 0, 1]),
    ))
}

fn dot1q(c: u16) -> Encap {
    Encap::Dot1q { c_vid: vid(c) }
}

fn qinq(tpid: Tpid, s: u16, c: u16) -> Encap {
    Encap::QinQ {
        s_tpid: tpid,
        s_vid: vid(s),
        c_vid: vid(c),
    }
}

fn configure(fp: &mut FastPath) {
    let mut maps = fp.maps();
    maps.set_config(&Config {
        vtep_ipv4: u32::from_ne_bytes(VG_VTEP.octets()),
        vxlan_port: 4789u16.to_be(),
        stag_tpids: stag_tpid::ALL,
        flags: config_flags::VALID,
        ..Config::default()
    })
    .unwrap();
    let home = |kind, s_tpid, s_vid, c_vid, vni| Subscriber {
        flags: sub_flags::ACTIVE,
        lsl_kind: kind,
        s_tpid,
        s_vid,
        c_vid,
        vni,
        remote_vtep: if vni != 0 {
            u32::from_ne_bytes(BRG_VTEP.octets())
        } else {
            0
        },
        gw_mac: GW_MAC,
        gw_ip: u32::from_ne_bytes(GW.octets()),
        public_ip: u32::from_ne_bytes([198, 51, 100, 1]),
        ..Subscriber::default()
    };
    maps.set_subscriber(SUB_DOT1Q, &home(lsl_kind::DOT1Q, 0, 0, 100, 0))
        .unwrap();
    maps.set_subscriber(SUB_QINQ, &home(lsl_kind::QINQ, 0x88a8, 10, 100, 0))
        .unwrap();
    maps.set_subscriber(SUB_VXLAN, &home(lsl_kind::VXLAN4, 0, 0, 0, 5001))
        .unwrap();
    maps.set_subscriber(SUB_UNDER_DOT1Q, &home(lsl_kind::QINQ, 0x8100, 100, 5, 0))
        .unwrap();
    maps.set_subscriber(SUB_QINQ_8100, &home(lsl_kind::QINQ, 0x8100, 102, 5, 0))
        .unwrap();
    let vlan = |s_vid, c_vid| VlanLslKey {
        ifindex: TEST_IFINDEX,
        s_vid,
        c_vid,
    };
    maps.insert_vlan_lsl(vlan(0, 100), SUB_DOT1Q).unwrap();
    maps.insert_vlan_lsl(vlan(10, 100), SUB_QINQ).unwrap();
    maps.insert_vlan_lsl(vlan(0, 200), SUB_EMPTY).unwrap();
    maps.insert_vlan_lsl(vlan(100, 5), SUB_UNDER_DOT1Q).unwrap();
    maps.insert_vlan_lsl(vlan(102, 5), SUB_QINQ_8100).unwrap();
    maps.insert_vxlan_lsl(
        VxlanLslKey {
            vni: 5001,
            remote: u32::from_ne_bytes(BRG_VTEP.octets()),
        },
        SUB_VXLAN,
    )
    .unwrap();
    // Every home has the same host address and MAC: homes overlap.
    for sub in [
        SUB_DOT1Q,
        SUB_QINQ,
        SUB_VXLAN,
        SUB_UNDER_DOT1Q,
        SUB_QINQ_8100,
    ] {
        maps.insert_host(
            HostKey {
                sub,
                ip: u32::from_ne_bytes(HOST.octets()),
            },
            Host {
                mac: HOST_MAC,
                flags: nerg_abi::host_flags::STATIC,
                _pad: 0,
            },
        )
        .unwrap();
    }
}

#[derive(Clone, Copy, Debug)]
enum Expect {
    Pass,
    Drop(DropReason),
    Punt(SubscriberId, PuntReason),
}

struct Row {
    what: String,
    input: Vec<u8>,
    expect: Expect,
    /// The subscriber whose counters must count the frame.
    sub: Option<SubscriberId>,
}

fn udp_from(mac: [u8; 6], src: Ipv4Addr) -> Vec<u8> {
    frames::udp(mac, GW_MAC, (src, 40000), (INTERNET, 53), b"query")
}

/// The rows every encapsulation gets.
fn per_encap_rows(name: &str, encap: Encap, sub: SubscriberId) -> Vec<Row> {
    let wrap = |inner: Vec<u8>| encap.encapsulate(&inner).unwrap();
    let mut bad_ihl = udp_from(HOST_MAC, HOST);
    bad_ihl[14] = 0x46; // IHL 6: options
    let mut lldp = udp_from(HOST_MAC, HOST);
    lldp[12..14].copy_from_slice(&0x88ccu16.to_be_bytes());
    let cases: Vec<(&str, Vec<u8>, Expect)> = vec![
        (
            "ARP for the gateway -> slow path",
            frames::arp_request(HOST_MAC, HOST, GW),
            Expect::Punt(sub, PuntReason::Arp),
        ),
        (
            "DHCPDISCOVER -> slow path",
            frames::dhcp_discover(HOST_MAC),
            Expect::Punt(sub, PuntReason::Dhcp),
        ),
        (
            "ping to the gateway -> slow path",
            frames::icmp_echo(HOST_MAC, GW_MAC, HOST, GW, 7, 1),
            Expect::Punt(sub, PuntReason::IcmpToGateway),
        ),
        (
            "UDP to the gateway -> slow path",
            frames::udp(HOST_MAC, GW_MAC, (HOST, 5000), (GW, 53), b"dns"),
            Expect::Punt(sub, PuntReason::ToGateway),
        ),
        (
            "known host to the internet, home without a public address",
            udp_from(HOST_MAC, HOST),
            Expect::Drop(DropReason::NoPublicAddress),
        ),
        (
            "unknown source address",
            udp_from(HOST_MAC, Ipv4Addr::new(192, 168, 1, 77)),
            Expect::Drop(DropReason::Spoofed),
        ),
        (
            "known address, other MAC",
            udp_from(OTHER_MAC, HOST),
            Expect::Drop(DropReason::Spoofed),
        ),
        (
            "inner IPv4 with options",
            bad_ihl,
            Expect::Drop(DropReason::BadIpHeader),
        ),
        (
            "unsupported inner ethertype",
            lldp,
            Expect::Drop(DropReason::UnsupportedEthertype),
        ),
    ];
    cases
        .into_iter()
        .map(|(what, inner, expect)| Row {
            what: format!("{name}: {what}"),
            input: wrap(inner),
            expect,
            sub: Some(sub),
        })
        .collect()
}

fn rows() -> Vec<Row> {
    let mut rows = Vec::new();
    rows.extend(per_encap_rows("802.1Q", dot1q(100), SUB_DOT1Q));
    rows.extend(per_encap_rows("QinQ", qinq(Tpid::STag, 10, 100), SUB_QINQ));
    rows.extend(per_encap_rows(
        "VXLAN",
        vxlan_encap(5001, BRG_VTEP, VG_VTEP),
        SUB_VXLAN,
    ));

    let inner = || udp_from(HOST_MAC, HOST);
    let row = |what: &str, input: Vec<u8>, expect| Row {
        what: what.to_owned(),
        input,
        expect,
        sub: None,
    };
    let drop = |what: &str, input: Vec<u8>, reason| row(what, input, Expect::Drop(reason));
    rows.push(row(
        "untagged IPv4 (not VXLAN) -> stack",
        inner(),
        Expect::Pass,
    ));
    rows.push(row(
        "untagged ARP (for the VTEP) -> stack",
        frames::arp_request(HOST_MAC, BRG_VTEP, VG_VTEP),
        Expect::Pass,
    ));
    let wrap = |e: Encap| e.encapsulate(&inner()).unwrap();
    rows.push(drop(
        "802.1Q unknown VID",
        wrap(dot1q(999)),
        DropReason::UnknownLsl,
    ));
    rows.push(drop(
        "802.1Q LSL of an empty subscriber slot",
        wrap(dot1q(200)),
        DropReason::UnknownLsl,
    ));
    rows.push(drop(
        "QinQ unknown S-VID",
        wrap(qinq(Tpid::STag, 11, 100)),
        DropReason::UnknownLsl,
    ));
    rows.push(drop(
        "QinQ with a TPID the home is not configured for",
        wrap(qinq(Tpid::STagLegacy, 10, 100)),
        DropReason::BadTpid,
    ));
    rows.push(drop(
        "VXLAN unknown VNI",
        wrap(vxlan_encap(5002, BRG_VTEP, VG_VTEP)),
        DropReason::UnknownLsl,
    ));
    rows.push(drop(
        "VXLAN from another VTEP",
        wrap(vxlan_encap(5001, Ipv4Addr::new(10, 0, 0, 3), VG_VTEP)),
        DropReason::UnknownLsl,
    ));
    rows.push(drop(
        "VXLAN to another VTEP",
        wrap(vxlan_encap(5001, BRG_VTEP, Ipv4Addr::new(10, 0, 0, 9))),
        DropReason::WrongVtep,
    ));

    // Malformed.
    let vx = wrap(vxlan_encap(5001, BRG_VTEP, VG_VTEP));
    let mut no_i_flag = vx.clone();
    no_i_flag[14 + 20 + 8] = 0; // VXLAN flags
    rows.push(drop(
        "VXLAN without the I flag",
        no_i_flag,
        DropReason::VxlanBadFlags,
    ));
    let mut outer_options = vx.clone();
    outer_options[14] = 0x46;
    rows.push(drop(
        "outer IPv4 with options",
        outer_options,
        DropReason::BadIpHeader,
    ));
    let mut outer_fragment = vx.clone();
    outer_fragment[14 + 6] = 0x20; // MF
    rows.push(drop(
        "outer IPv4 fragment",
        outer_fragment,
        DropReason::OuterFragment,
    ));
    rows.push(drop(
        "VXLAN cut inside the VXLAN header",
        vx[..14 + 20 + 8 + 4].to_vec(),
        DropReason::Truncated,
    ));
    rows.push(drop(
        "VXLAN cut inside the inner Ethernet header",
        vx[..14 + 20 + 8 + 8 + 6].to_vec(),
        DropReason::Truncated,
    ));

    // A host of the 802.1Q home (vlan:100) tags its own frames: the BRG pushes the home's
    // tag on top, and the result has exactly the tags of qinq-8100:100.5. It never reaches
    // that home (issue 15): a second tag inside an 802.1Q home's is a counted drop.
    let host_tagged = |tpid: Tpid, c: u16, inner: Vec<u8>| {
        let mut own = dot1q(c).encapsulate(&inner).unwrap();
        own[12..14].copy_from_slice(&tpid.value().to_be_bytes());
        dot1q(100).encapsulate(&own).unwrap()
    };
    rows.push(drop(
        "802.1Q home, a host's own 0x8100 tag 5 (the tags of qinq-8100:100.5)",
        host_tagged(Tpid::CTag, 5, frames::dhcp_discover(HOST_MAC)),
        DropReason::TaggedInHome,
    ));
    rows.push(drop(
        "802.1Q home, a host's own 0x8100 tag of a VID no home has",
        host_tagged(Tpid::CTag, 7, inner()),
        DropReason::TaggedInHome,
    ));
    rows.push(drop(
        "802.1Q home, a host's own 0x88a8 tag",
        host_tagged(Tpid::STag, 5, inner()),
        DropReason::TaggedInHome,
    ));
    rows.push(Row {
        what: "QinQ with an 0x8100 S-tag of a VID no 802.1Q home has -> its home".to_owned(),
        input: qinq(Tpid::CTag, 102, 5)
            .encapsulate(&frames::dhcp_discover(HOST_MAC))
            .unwrap(),
        expect: Expect::Punt(SUB_QINQ_8100, PuntReason::Dhcp),
        sub: Some(SUB_QINQ_8100),
    });

    let tagged = wrap(qinq(Tpid::STag, 10, 100));
    let mut lone_stag = wrap(dot1q(100));
    lone_stag[12..14].copy_from_slice(&0x88a8u16.to_be_bytes());
    rows.push(drop("a lone S-tag", lone_stag, DropReason::BadTpid));
    let mut inner_stag = tagged.clone();
    inner_stag[16..18].copy_from_slice(&0x88a8u16.to_be_bytes());
    rows.push(drop(
        "QinQ whose inner tag is an S-tag",
        inner_stag,
        DropReason::BadTpid,
    ));
    let mut three = tagged.clone();
    three.splice(20..20, [0x81, 0x00, 0x00, 0x05]);
    rows.push(drop("three tags", three, DropReason::VlanTooDeep));
    rows.push(drop(
        "tag cut short",
        tagged[..16].to_vec(),
        DropReason::Truncated,
    ));
    rows.push(drop(
        "second tag cut short",
        tagged[..20].to_vec(),
        DropReason::Truncated,
    ));
    rows
}

fn snapshot(fp: &FastPath) -> CounterSnapshot {
    fp.counters().unwrap().snapshot().unwrap()
}

fn read_punts(ring: &mut RingBuf<MapData>) -> Vec<(PuntHeader, Vec<u8>)> {
    let mut out = Vec::new();
    while let Some(item) = ring.next() {
        let p = vg::slowpath::parse_record(&item).expect("a well-formed punt record");
        out.push((p.header, p.frame));
    }
    out
}

#[test]
fn access_program_fixture_table() {
    require_root();
    let pins = PinDir::new("testrun");
    let mut fp = FastPath::load(pins.path()).expect("the vG object loads and verifies");
    configure(&mut fp);
    let mut ring = fp.take_punt_ring().unwrap();
    for row in rows() {
        let what = &row.what;
        let before = snapshot(&fp);
        let sub_before = row.sub.map(|s| fp.maps().sub_counters(s).unwrap());
        let prog = fp.program(program_names::ACCESS).unwrap();
        let out = run_xdp(prog, &row.input, 1).unwrap_or_else(|e| panic!("{what}: {e}"));
        let after = snapshot(&fp);
        let delta = |c| after.total(c) - before.total(c);
        let punts = read_punts(&mut ring);

        assert_eq!(out.output, row.input, "{what}: the frame was modified");
        assert_eq!(delta(Counter::AccessRxPackets), 1, "{what}");
        assert_eq!(
            delta(Counter::AccessRxBytes),
            row.input.len() as u64,
            "{what}"
        );
        let (verdict, counter) = match row.expect {
            Expect::Pass => (XdpVerdict::Pass, Counter::VerdictPass),
            Expect::Drop(reason) => {
                assert_eq!(
                    after.drops(reason) - before.drops(reason),
                    1,
                    "{what}: {reason:?}"
                );
                (XdpVerdict::Drop, Counter::VerdictDrop)
            }
            Expect::Punt(..) => (XdpVerdict::Drop, Counter::VerdictPunt),
        };
        assert_eq!(out.verdict, verdict, "{what}");
        assert_eq!(delta(counter), 1, "{what}: verdict counter");
        match row.expect {
            Expect::Punt(sub, reason) => {
                assert_eq!(punts.len(), 1, "{what}: one punted record");
                let (hdr, frame) = &punts[0];
                assert_eq!(hdr.sub, sub, "{what}: punted subscriber");
                assert_eq!(hdr.reason, reason.index() as u16, "{what}: punt reason");
                assert_eq!(usize::from(hdr.wire_len), row.input.len(), "{what}");
                assert_eq!(frame, &row.input, "{what}: punted bytes");
            }
            _ => assert!(punts.is_empty(), "{what}: unexpected punt {punts:?}"),
        }
        if let (Some(sub), Some(b)) = (row.sub, sub_before) {
            let a = fp.maps().sub_counters(sub).unwrap();
            assert_eq!(a.up_packets - b.up_packets, 1, "{what}: subscriber packets");
            assert_eq!(
                a.up_bytes - b.up_bytes,
                row.input.len() as u64,
                "{what}: bytes"
            );
            let dropped = matches!(row.expect, Expect::Drop(_));
            assert_eq!(
                a.up_drops - b.up_drops,
                u64::from(dropped),
                "{what}: sub drops"
            );
            let punted = matches!(row.expect, Expect::Punt(..));
            assert_eq!(a.punted - b.punted, u64::from(punted), "{what}: sub punts");
        }
    }
}

#[test]
fn an_unconfigured_fast_path_passes_everything() {
    require_root();
    let pins = PinDir::new("testrun-unconf");
    let mut fp = FastPath::load(pins.path()).expect("load");
    let prog = fp.program(program_names::ACCESS).unwrap();
    for row in rows() {
        let out = run_xdp(prog, &row.input, 1).unwrap();
        assert_eq!(out.verdict, XdpVerdict::Pass, "{}", row.what);
    }
}

#[test]
fn pass_program_passes_everything() {
    require_root();
    let pins = PinDir::new("testrun-pass");
    let mut fp = FastPath::load(pins.path()).expect("load");
    configure(&mut fp);
    let prog = fp.program(program_names::PASS).unwrap();
    for row in rows() {
        let out = run_xdp(prog, &row.input, 1).unwrap();
        assert_eq!(out.verdict, XdpVerdict::Pass, "{}", row.what);
    }
}

#[test]
fn test_run_repeats_and_reports_a_duration() {
    require_root();
    let pins = PinDir::new("testrun-repeat");
    let mut fp = FastPath::load(pins.path()).expect("load");
    configure(&mut fp);
    let before = snapshot(&fp);
    let frame = dot1q(100).encapsulate(&udp_from(HOST_MAC, HOST)).unwrap();
    let prog = fp.program(program_names::ACCESS).unwrap();
    let out = run_xdp(prog, &frame, 10_000).unwrap();
    assert_eq!(out.verdict, XdpVerdict::Drop);
    assert!(!out.duration.is_zero(), "no duration reported");
    let after = snapshot(&fp);
    assert_eq!(
        after.total(Counter::AccessRxPackets) - before.total(Counter::AccessRxPackets),
        10_000
    );
}
