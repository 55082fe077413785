//! Speed tiers in the fast path: a home's limit admits its burst back to back, drops what is
//! over it (counted), refills with time, follows a rate change at run time without losing
//! its place, and applies downstream (core traffic) as upstream.
//!
//! The limits here are written straight into the home's record with a cost per packet of
//! tens of milliseconds, so that the microseconds between two test runs never decide a
//! verdict: a burst of `n` packets' time admits `n + 1` back to back (the first finds the
//! bucket empty), and half a packet's time less admits `n`.

use std::time::Duration;

use nerg_abi::{QOS_DOWN, QOS_UP, QosRate};

use super::*;

/// The IPv4 length of [`udp_up`]'s packets: 20 + 8 + 4 bytes of payload.
const IP_BYTES: u64 = 32;
/// What one such packet costs: 40 ms.
const COST_NS: u64 = 40_000_000;

/// A limit where one [`udp_up`] packet takes [`COST_NS`], with a burst of `burst_ns`.
fn slow(burst_ns: u64) -> QosRate {
    QosRate {
        ns_per_byte_q16: (COST_NS << 16) / IP_BYTES,
        burst_ns,
    }
}

/// Sends `n` UDP packets of home `h` upstream back to back; how many were forwarded.
fn send_up(rig: &mut Rig, h: &Home, n: usize) -> usize {
    let frame = h
        .encap(rig.access_mac)
        .encapsulate(&udp_up(40000, INTERNET, 53))
        .unwrap();
    (0..n)
        .filter(|_| rig.up(&frame).0 == XdpVerdict::Redirect)
        .count()
}

fn policed(rig: &mut Rig, id: SubscriberId) -> (u64, u64, u64, u64) {
    let c = rig.fp.maps().sub_counters(id).unwrap();
    (
        c.up_policed_packets,
        c.up_policed_bytes,
        c.down_policed_packets,
        c.down_policed_bytes,
    )
}

#[test]
fn an_upstream_limit_admits_its_burst_drops_the_rest_and_refills() {
    let mut rig = rig("natqos");
    let h = HOMES[0];
    assert_eq!(send_up(&mut rig, &h, 1), 1, "no limit: forwarded");

    // Under the limit: 1 Gbit/s with 10 ms of burst takes 200 packets back to back.
    rig.edit_home(h.id, |r| {
        r.qos[QOS_UP] = QosRate::new(1_000_000_000, 1_250_000)
    });
    assert_eq!(send_up(&mut rig, &h, 200), 200, "under the limit");

    // At the limit: three packets' time of burst admits four, then drops.
    rig.edit_home(h.id, |r| r.qos[QOS_UP] = slow(3 * COST_NS));
    std::thread::sleep(Duration::from_millis(250)); // the 1 Gbit/s bucket drains at once
    let drops0 = rig.drops(DropReason::RateLimited);
    let before = policed(&mut rig, h.id);
    assert_eq!(send_up(&mut rig, &h, 10), 4, "a burst of 3 packets' time");
    assert_eq!(rig.drops(DropReason::RateLimited) - drops0, 6);
    let after = policed(&mut rig, h.id);
    assert_eq!(after.0 - before.0, 6, "policed packets of the home");
    assert_eq!(after.1 - before.1, 6 * IP_BYTES, "their IPv4 bytes");

    // Over it for good: nothing more while the clock has not moved on a packet's time.
    assert_eq!(send_up(&mut rig, &h, 5), 0, "over the limit");

    // Time refills it: after 8 packets' time the backlog is gone, the burst is whole again.
    std::thread::sleep(Duration::from_nanos(8 * COST_NS));
    assert_eq!(send_up(&mut rig, &h, 10), 4, "refilled");

    // A burst half a packet shorter admits one fewer.
    rig.edit_home(h.id, |r| r.qos[QOS_UP] = slow(3 * COST_NS - COST_NS / 2));
    std::thread::sleep(Duration::from_nanos(8 * COST_NS));
    assert_eq!(send_up(&mut rig, &h, 10), 3, "a burst of 2.5 packets' time");

    // A rate change at run time: lifted, everything passes at once ...
    rig.edit_home(h.id, |r| r.qos[QOS_UP] = QosRate::default());
    assert_eq!(send_up(&mut rig, &h, 20), 20, "limit lifted");
    // ... and back: the bucket kept its place (vgd rewrites the record, never the state),
    // so the backlog from before still counts.
    rig.edit_home(h.id, |r| r.qos[QOS_UP] = slow(0));
    assert_eq!(
        send_up(&mut rig, &h, 3),
        0,
        "limit back, backlog still there"
    );

    // Another home is not touched by this one's limit.
    let other = HOMES[1];
    assert_eq!(send_up(&mut rig, &other, 20), 20, "the neighbour");
}

#[test]
fn a_downstream_limit_applies_to_traffic_from_the_core() {
    let mut rig = rig("natqosd");
    let h = HOMES[1];
    // A mapping to come back to.
    let frame = h
        .encap(rig.access_mac)
        .encapsulate(&udp_up(40000, INTERNET, 53))
        .unwrap();
    assert_eq!(rig.up(&frame).0, XdpVerdict::Redirect);
    let (public, port) = rig.public_of(h.id, 40000, 17);
    let reply = frames::udp(
        NEXT_HOP_MAC,
        rig.core_mac,
        (INTERNET, 53),
        (public, port),
        b"pong",
    );
    let down = |rig: &mut Rig, n: usize| {
        (0..n)
            .filter(|_| rig.down(&reply).0 == XdpVerdict::Redirect)
            .count()
    };
    assert_eq!(down(&mut rig, 5), 5, "no limit");
    // The same 32-byte IPv4 packets downstream; an upstream limit does not apply here.
    rig.edit_home(h.id, |r| {
        r.qos[QOS_DOWN] = slow(2 * COST_NS);
        r.qos[QOS_UP] = QosRate::default();
    });
    let before = policed(&mut rig, h.id);
    assert_eq!(down(&mut rig, 10), 3, "a burst of 2 packets' time");
    let after = policed(&mut rig, h.id);
    assert_eq!(after.2 - before.2, 7, "policed downstream");
    assert_eq!(after.3 - before.3, 7 * IP_BYTES);
    assert_eq!((after.0, after.1), (before.0, before.1), "nothing upstream");
    // Upstream is still free.
    assert_eq!(rig.up(&frame).0, XdpVerdict::Redirect);
}
