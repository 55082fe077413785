//! The vG XDP program under BPF_PROG_TEST_RUN: a fixture table of frames with the expected
//! verdict, output bytes and counter changes, one row per encapsulation and malformed case.

use nerg_abi::{Counter, DropReason, ethertype, program_names};
use nerg_tests::{PinDir, require_root};
use vg::fastpath::{
    CounterSnapshot, FastPath,
    test_run::{XdpVerdict, run_xdp},
};

/// An Ethernet frame with in-line VLAN `tags` (TPID, VID) around an IPv4 payload.
fn frame(tags: &[(u16, u16)], payload_len: usize) -> Vec<u8> {
    let mut f = vec![0x02, 0, 0, 0, 0, 0x01, 0x02, 0, 0, 0, 0, 0x02];
    for &(tpid, vid) in tags {
        f.extend_from_slice(&tpid.to_be_bytes());
        f.extend_from_slice(&vid.to_be_bytes());
    }
    f.extend_from_slice(&ethertype::IPV4.to_be_bytes());
    f.resize(f.len() + payload_len, 0x45);
    f
}

enum Expect {
    Pass(Counter),
    Drop(DropReason),
}

struct Row {
    what: &'static str,
    input: Vec<u8>,
    expect: Expect,
}

fn rows() -> Vec<Row> {
    use ethertype::{QINQ, QINQ_LEGACY, VLAN};
    let row = |what, input, expect| Row {
        what,
        input,
        expect,
    };
    vec![
        row(
            "untagged",
            frame(&[], 46),
            Expect::Pass(Counter::LslUntagged),
        ),
        row(
            "802.1Q",
            frame(&[(VLAN, 100)], 46),
            Expect::Pass(Counter::LslDot1q),
        ),
        row(
            "QinQ 88a8/8100",
            frame(&[(QINQ, 10), (VLAN, 100)], 46),
            Expect::Pass(Counter::LslQinq),
        ),
        row(
            "QinQ 9100/8100",
            frame(&[(QINQ_LEGACY, 10), (VLAN, 100)], 46),
            Expect::Pass(Counter::LslQinq),
        ),
        row(
            "QinQ 8100/8100",
            frame(&[(VLAN, 10), (VLAN, 100)], 46),
            Expect::Pass(Counter::LslQinq),
        ),
        row(
            "three tags",
            frame(&[(QINQ, 1), (VLAN, 2), (VLAN, 3)], 46),
            Expect::Drop(DropReason::VlanTooDeep),
        ),
        // Frames shorter than an Ethernet header never reach XDP (BPF_PROG_TEST_RUN refuses
        // them with EINVAL, as drivers do); the shortest a program sees is 14 bytes.
        row(
            "Ethernet header only, VLAN TPID",
            frame(&[(VLAN, 100)], 0)[..14].to_vec(),
            Expect::Drop(DropReason::Truncated),
        ),
        row(
            "tag cut short",
            frame(&[(VLAN, 100)], 0)[..16].to_vec(),
            Expect::Drop(DropReason::Truncated),
        ),
        row(
            "second tag cut short",
            frame(&[(QINQ, 10), (VLAN, 100)], 0)[..20].to_vec(),
            Expect::Drop(DropReason::Truncated),
        ),
    ]
}

fn snapshot(fp: &FastPath) -> CounterSnapshot {
    fp.counters().unwrap().snapshot().unwrap()
}

#[test]
fn access_program_fixture_table() {
    require_root();
    let pins = PinDir::new("testrun");
    let mut fp = FastPath::load(pins.path()).expect("the vG object loads and verifies");
    const REPEAT: u32 = 7;
    for row in rows() {
        let before = snapshot(&fp);
        let prog = fp.program(program_names::ACCESS).unwrap();
        let out = run_xdp(prog, &row.input, REPEAT).expect("BPF_PROG_TEST_RUN");
        let after = snapshot(&fp);
        let delta = |c| after.total(c) - before.total(c);
        let drop_delta = |d| after.drops(d) - before.drops(d);

        assert_eq!(out.output, row.input, "{}: frame was modified", row.what);
        assert_eq!(
            delta(Counter::AccessRxPackets),
            u64::from(REPEAT),
            "{}",
            row.what
        );
        assert_eq!(
            delta(Counter::AccessRxBytes),
            u64::from(REPEAT) * row.input.len() as u64,
            "{}",
            row.what
        );
        match row.expect {
            Expect::Pass(kind) => {
                assert_eq!(out.verdict, XdpVerdict::Pass, "{}", row.what);
                assert_eq!(delta(kind), u64::from(REPEAT), "{}: LSL kind", row.what);
                assert_eq!(
                    delta(Counter::VerdictPass),
                    u64::from(REPEAT),
                    "{}",
                    row.what
                );
                assert_eq!(delta(Counter::VerdictDrop), 0, "{}", row.what);
            }
            Expect::Drop(reason) => {
                assert_eq!(out.verdict, XdpVerdict::Drop, "{}", row.what);
                assert_eq!(
                    drop_delta(reason),
                    u64::from(REPEAT),
                    "{}: reason",
                    row.what
                );
                assert_eq!(
                    delta(Counter::VerdictDrop),
                    u64::from(REPEAT),
                    "{}",
                    row.what
                );
                assert_eq!(delta(Counter::VerdictPass), 0, "{}", row.what);
            }
        }
    }
}

#[test]
fn pass_program_passes_everything() {
    require_root();
    let pins = PinDir::new("testrun-pass");
    let mut fp = FastPath::load(pins.path()).expect("load");
    let prog = fp.program(program_names::PASS).unwrap();
    for row in rows() {
        let out = run_xdp(prog, &row.input, 1).unwrap();
        assert_eq!(out.verdict, XdpVerdict::Pass, "{}", row.what);
    }
}

#[test]
fn test_run_reports_a_duration_for_many_repeats() {
    require_root();
    let pins = PinDir::new("testrun-repeat");
    let mut fp = FastPath::load(pins.path()).expect("load");
    let before = snapshot(&fp).total(Counter::AccessRxPackets);
    let prog = fp.program(program_names::ACCESS).unwrap();
    let out = run_xdp(prog, &frame(&[(ethertype::VLAN, 1)], 46), 10_000).unwrap();
    assert_eq!(out.verdict, XdpVerdict::Pass);
    assert!(!out.duration.is_zero(), "no duration reported");
    assert_eq!(
        snapshot(&fp).total(Counter::AccessRxPackets) - before,
        10_000
    );
}
