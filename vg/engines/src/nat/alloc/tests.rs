//! The allocator's tests: allocation, hold-down, restore, the randomised model check.

use super::*;
use crate::nat::config::NatConfigWire;

const T0: UnixTime = UnixTime(1_777_636_800);

fn config(pool: &[&str], port_range: &str, initial: u32, max: u32) -> NatConfig {
    NatConfig::try_from(NatConfigWire {
        pool: pool.iter().map(|s| s.to_string()).collect(),
        port_range: Some(port_range.to_owned()),
        initial_blocks_per_subscriber: Some(initial),
        max_blocks_per_subscriber: Some(max),
        ..NatConfigWire::default()
    })
    .expect("valid test configuration")
}

fn sub(n: u32) -> SubscriberId {
    SubscriberId(n)
}

fn ip(s: &str) -> Ipv4Addr {
    s.parse().expect("test address")
}

fn address_of(a: &BlockAllocator, s: u32) -> Ipv4Addr {
    a.assignment(sub(s)).expect("subscriber exists").address
}

#[test]
fn new_subscribers_spread_round_robin() {
    let c = config(&["192.0.2.1-192.0.2.4"], "1024-65535", 1, 4);
    let mut a = BlockAllocator::new(&c);
    for s in 0..8 {
        let ev = a.add_subscriber(sub(s), "home", T0).unwrap();
        assert_eq!(ev.len(), 1);
    }
    for s in 0..4 {
        assert_eq!(address_of(&a, s), Ipv4Addr::new(192, 0, 2, 1 + s as u8));
        assert_eq!(
            address_of(&a, s + 4),
            address_of(&a, s),
            "second round, same order"
        );
    }
    for i in 1..=4 {
        let u = a.address_usage(Ipv4Addr::new(192, 0, 2, i)).unwrap();
        assert_eq!((u.subscribers, u.owned, u.free), (2, 2, 124));
    }
    a.check_invariants();
}

#[test]
fn the_address_with_most_free_blocks_wins() {
    let c = config(&["192.0.2.1", "192.0.2.2"], "1024-65535", 1, 4);
    let mut a = BlockAllocator::new(&c);
    a.add_subscriber(sub(1), "a", T0).unwrap();
    a.add_subscriber(sub(2), "b", T0).unwrap();
    a.grow(sub(1), "a", T0).unwrap();
    a.grow(sub(1), "a", T0).unwrap();
    // .1 has 3 blocks owned, .2 has 1: the next two homes go to .2.
    a.add_subscriber(sub(3), "c", T0).unwrap();
    a.add_subscriber(sub(4), "d", T0).unwrap();
    assert_eq!(address_of(&a, 3), ip("192.0.2.2"));
    assert_eq!(address_of(&a, 4), ip("192.0.2.2"));
    // Equal free blocks (123 each): fewer subscribers wins (.1 has 1, .2 has 3).
    a.add_subscriber(sub(5), "e", T0).unwrap();
    assert_eq!(address_of(&a, 5), ip("192.0.2.1"));
    a.check_invariants();
}

#[test]
fn a_full_address_sends_new_homes_to_the_next_then_the_pool_refuses() {
    // Two addresses of four 512-port blocks.
    let c = config(&["192.0.2.1", "192.0.2.2"], "1024-3071", 1, 4);
    let mut a = BlockAllocator::new(&c);
    a.add_subscriber(sub(1), "a", T0).unwrap();
    for _ in 0..3 {
        a.grow(sub(1), "a", T0).unwrap();
    }
    assert_eq!(a.address_usage(ip("192.0.2.1")).unwrap().free, 0);
    for s in 2..=5 {
        a.add_subscriber(sub(s), "x", T0).unwrap();
        assert_eq!(address_of(&a, s), ip("192.0.2.2"), "subscriber {s}");
    }
    assert_eq!(
        a.add_subscriber(sub(6), "x", T0),
        Err(AddError::PoolExhausted {
            subscriber: sub(6),
            needed: 1,
            best: 0
        })
    );
    assert_eq!(
        a.grow(sub(2), "x", T0),
        Err(GrowError::AddressExhausted {
            subscriber: sub(2),
            address: ip("192.0.2.2"),
            held: 0
        }),
        "paired pooling: no block from another address"
    );
    assert_eq!(
        a.grow(sub(1), "a", T0),
        Err(GrowError::MaxBlocks {
            subscriber: sub(1),
            max: 4
        })
    );
    assert!(
        !a.subscriber_ids().any(|s| s == sub(6)),
        "refusal leaves no trace"
    );
    let st = a.stats();
    assert_eq!((st.subscribers, st.blocks_owned, st.blocks_free), (5, 8, 0));
    a.check_invariants();
}

#[test]
fn initial_blocks_need_room_on_one_address() {
    // Two addresses of three blocks; two initial blocks per subscriber.
    let c = config(&["192.0.2.1", "192.0.2.2"], "1024-2559", 2, 3);
    let mut a = BlockAllocator::new(&c);
    a.add_subscriber(sub(1), "x", T0).unwrap();
    a.add_subscriber(sub(2), "x", T0).unwrap();
    assert_ne!(address_of(&a, 1), address_of(&a, 2));
    // Two free blocks in the pool, but not on one address.
    assert_eq!(a.stats().blocks_free, 2);
    assert_eq!(
        a.add_subscriber(sub(3), "x", T0),
        Err(AddError::PoolExhausted {
            subscriber: sub(3),
            needed: 2,
            best: 1
        })
    );
    a.check_invariants();
}

#[test]
fn hold_down_is_respected_to_the_second() {
    // One address of two blocks; hold-down 120 s (default).
    let c = config(&["192.0.2.1"], "1024-2047", 1, 2);
    let mut a = BlockAllocator::new(&c);
    a.add_subscriber(sub(1), "a", T0).unwrap();
    a.add_subscriber(sub(2), "b", T0).unwrap();
    let released = a.remove_subscriber(sub(1), "a", T0.plus(1000)).unwrap();
    assert_eq!(released.len(), 1);
    assert_eq!(released[0].action, BlockAction::Release);
    assert_eq!(
        (released[0].first_port, released[0].last_port),
        (1024, 1535)
    );
    assert_eq!(a.next_hold_expiry(), Some(T0.plus(1120)));
    assert_eq!(a.stats().blocks_held, 1);
    assert!(matches!(
        a.add_subscriber(sub(3), "c", T0.plus(1119)),
        Err(AddError::PoolExhausted { best: 0, .. })
    ));
    assert!(matches!(
        a.grow(sub(2), "b", T0.plus(1119)),
        Err(GrowError::AddressExhausted { held: 1, .. })
    ));
    let ev = a.add_subscriber(sub(3), "c", T0.plus(1120)).unwrap();
    assert_eq!((ev[0].first_port, ev[0].time), (1024, T0.plus(1120)));
    assert_eq!(a.next_hold_expiry(), None);
    a.check_invariants();
}

#[test]
fn unused_blocks_first_then_oldest_release() {
    let c = config(&["192.0.2.1"], "1024-3071", 1, 4);
    let mut a = BlockAllocator::new(&c);
    let first = |ev: Vec<BlockEvent>| ev[0].first_port;
    assert_eq!(first(a.add_subscriber(sub(1), "a", T0).unwrap()), 1024);
    assert_eq!(first(a.add_subscriber(sub(2), "b", T0).unwrap()), 1536);
    a.remove_subscriber(sub(2), "b", T0).unwrap();
    a.remove_subscriber(sub(1), "a", T0.plus(5)).unwrap();
    let later = T0.plus(1000);
    assert_eq!(a.expire_holds(later), 2);
    assert_eq!(
        first(a.add_subscriber(sub(3), "c", later).unwrap()),
        2048,
        "never used"
    );
    assert_eq!(
        first(a.add_subscriber(sub(4), "d", later).unwrap()),
        2560,
        "never used"
    );
    assert_eq!(
        first(a.add_subscriber(sub(5), "e", later).unwrap()),
        1536,
        "released first"
    );
    assert_eq!(first(a.add_subscriber(sub(6), "f", later).unwrap()), 1024);
    a.check_invariants();
}

#[test]
fn idle_release_keeps_initial_and_forwarded_blocks() {
    let c = config(&["192.0.2.1"], "1024-65535", 1, 4);
    let mut a = BlockAllocator::new(&c);
    a.add_subscriber(sub(1), "a", T0).unwrap();
    let b2 = a.grow(sub(1), "a", T0).unwrap();
    let b3 = a.grow(sub(1), "a", T0).unwrap();
    assert_eq!((b2.first_port, b3.first_port), (1536, 2048));
    assert_eq!(
        a.release_block(sub(1), 40000, "a", T0),
        Err(ReleaseError::NotOwned {
            subscriber: sub(1),
            port: 40000
        })
    );
    assert_eq!(
        a.release_block(sub(1), 80, "a", T0),
        Err(ReleaseError::NotOwned {
            subscriber: sub(1),
            port: 80
        }),
        "outside the port range"
    );
    assert_eq!(a.add_forward(sub(1), 2100).unwrap().first(), 2048);
    assert_eq!(
        a.release_block(sub(1), 2048, "a", T0),
        Err(ReleaseError::Forwarded {
            subscriber: sub(1),
            first: 2048,
            last: 2559,
            forwards: 1
        })
    );
    // Any port inside a block names it.
    let ev = a.release_block(sub(1), 1600, "a", T0.plus(60)).unwrap();
    assert_eq!(
        ev.to_string(),
        "2026-05-01T12:01:00Z release sub=1 priv=\"a\" pub=192.0.2.1 ports=1536-2047"
    );
    a.remove_forward(sub(1), 2100).unwrap();
    assert_eq!(
        a.remove_forward(sub(1), 2100),
        Err(ForwardError::NotForwarded {
            subscriber: sub(1),
            port: 2100
        })
    );
    a.release_block(sub(1), 2048, "a", T0.plus(60)).unwrap();
    assert_eq!(
        a.release_block(sub(1), 1024, "a", T0.plus(60)),
        Err(ReleaseError::Initial {
            subscriber: sub(1),
            initial: 1
        })
    );
    assert_eq!(a.assignment(sub(1)).unwrap().blocks, [1024]);
    // The subscriber keeps its address while it exists.
    assert_eq!(a.stats().blocks_held, 2);
    a.check_invariants();
}

#[test]
fn forwards_must_lie_in_the_subscribers_blocks() {
    let c = config(&["192.0.2.1"], "1024-65535", 1, 4);
    let mut a = BlockAllocator::new(&c);
    a.add_subscriber(sub(1), "a", T0).unwrap();
    a.add_subscriber(sub(2), "b", T0).unwrap();
    a.grow(sub(1), "a", T0).unwrap();
    let e = a.add_forward(sub(1), 1600).unwrap_err();
    assert_eq!(
        e.to_string(),
        "public port 1600 is outside the ports of subscriber 1 on 192.0.2.1 \
         (1024-1535, 2048-2559)",
        "1536-2047 belongs to subscriber 2"
    );
    assert!(a.add_forward(sub(2), 1600).is_ok());
    assert!(a.add_forward(sub(1), 80).is_err());
    assert_eq!(
        a.add_forward(sub(9), 1024),
        Err(ForwardError::Unknown(UnknownSubscriber(sub(9))))
    );
    // Two forwards in one block: the pin lasts until both are gone.
    a.add_forward(sub(1), 2048).unwrap();
    a.add_forward(sub(1), 2049).unwrap();
    a.remove_forward(sub(1), 2048).unwrap();
    assert!(matches!(
        a.release_block(sub(1), 2048, "a", T0),
        Err(ReleaseError::Forwarded { forwards: 1, .. })
    ));
    a.remove_forward(sub(1), 2049).unwrap();
    a.release_block(sub(1), 2048, "a", T0).unwrap();
    a.check_invariants();
}

#[test]
fn unknown_and_duplicate_subscribers() {
    let c = config(&["192.0.2.1"], "1024-65535", 1, 4);
    let mut a = BlockAllocator::new(&c);
    assert_eq!(
        a.grow(sub(1), "a", T0),
        Err(GrowError::Unknown(UnknownSubscriber(sub(1))))
    );
    assert_eq!(
        a.remove_subscriber(sub(1), "a", T0),
        Err(UnknownSubscriber(sub(1)))
    );
    assert_eq!(
        a.release_block(sub(1), 1024, "a", T0),
        Err(ReleaseError::Unknown(UnknownSubscriber(sub(1))))
    );
    assert!(a.ports(sub(1)).is_none() && a.assignment(sub(1)).is_none());
    a.add_subscriber(sub(1), "a", T0).unwrap();
    assert_eq!(
        a.add_subscriber(sub(1), "a", T0),
        Err(AddError::Exists {
            subscriber: sub(1),
            address: ip("192.0.2.1")
        })
    );
    assert_eq!(a.len(), 1);
    assert!(!a.is_empty());
    assert_eq!(
        GrowError::Unknown(UnknownSubscriber(sub(7))).to_string(),
        "subscriber 7 has no NAT allocation"
    );
}

#[test]
fn events_and_fast_path_view() {
    let c = config(&["203.0.113.0/24"], "1024-65535", 2, 4);
    let mut a = BlockAllocator::new(&c);
    let ev = a.add_subscriber(sub(42), "vlan:101", T0).unwrap();
    let lines: Vec<String> = ev.iter().map(ToString::to_string).collect();
    assert_eq!(
        lines,
        [
            "2026-05-01T12:00:00Z alloc sub=42 priv=\"vlan:101\" pub=203.0.113.1 ports=1024-1535",
            "2026-05-01T12:00:00Z alloc sub=42 priv=\"vlan:101\" pub=203.0.113.1 ports=1536-2047",
        ]
    );
    for e in &ev {
        e.log();
    }
    let p = a.ports(sub(42)).unwrap();
    assert_eq!(p.address(), ip("203.0.113.1"));
    assert_eq!(p.firsts(), &[1024, 1536]);
    assert_eq!(p.block_size(), 512);
    let asg = a.assignment(sub(42)).unwrap();
    assert_eq!(asg.blocks, p.firsts());
}

/// A state with several addresses, grown and released blocks, and hold-downs.
fn busy() -> (NatConfig, BlockAllocator) {
    let c = config(&["192.0.2.1-192.0.2.3"], "1024-5119", 1, 4);
    let mut a = BlockAllocator::new(&c);
    for s in 1..=9 {
        a.add_subscriber(sub(s), "x", T0).unwrap();
    }
    for s in [1, 1, 2, 5, 5, 5] {
        a.grow(sub(s), "x", T0).unwrap();
    }
    a.release_block(
        sub(5),
        a.assignment(sub(5)).unwrap().blocks[1],
        "x",
        T0.plus(10),
    )
    .unwrap();
    a.remove_subscriber(sub(3), "x", T0.plus(20)).unwrap();
    a.remove_subscriber(sub(7), "x", T0.plus(100)).unwrap();
    a.check_invariants();
    (c, a)
}

#[test]
fn snapshot_round_trips_through_json() {
    let (c, a) = busy();
    let now = T0.plus(100);
    let snap = a.snapshot();
    assert_eq!(snap.held.len(), 3);
    let json = serde_json::to_string_pretty(&snap).unwrap();
    let back: Snapshot = serde_json::from_str(&json).unwrap();
    assert_eq!(back, snap);
    let r = BlockAllocator::restore(&c, &back, now).unwrap();
    r.check_invariants();
    assert_eq!(r.snapshot(), snap);
    assert_eq!(r.stats(), a.stats());
    for id in a.subscriber_ids() {
        assert_eq!(r.ports(id), a.ports(id), "subscriber {id}");
    }
    // Hold-downs ended by the restore time are dropped; live ones survive.
    let later = BlockAllocator::restore(&c, &snap, T0.plus(200)).unwrap();
    later.check_invariants();
    assert_eq!(later.stats().blocks_held, 1);
    assert_eq!(later.next_hold_expiry(), Some(T0.plus(220)));
    // The restored allocator keeps allocating correctly.
    let mut r = r;
    for s in 100..110 {
        let _ = r.add_subscriber(sub(s), "y", now);
        let _ = r.grow(sub(s), "y", now);
    }
    r.check_invariants();
    // The JSON form is the documented one.
    assert!(json.contains("\"port_range\": \"1024-5119\""), "{json}");
    assert!(json.contains("\"blocks\": ["), "{json}");
}

#[test]
fn restore_refuses_conflicts_and_strangers() {
    let (c, a) = busy();
    let snap = a.snapshot();
    let restore = |s: &Snapshot| BlockAllocator::restore(&c, s, T0.plus(100)).unwrap_err();

    let mut s = snap.clone();
    let stolen = s.subscribers[0].clone();
    s.subscribers.push(Assignment {
        subscriber: sub(77),
        ..stolen.clone()
    });
    let e = restore(&s);
    assert_eq!(
        e.to_string(),
        format!(
            "{} ports {}-{} are claimed by both subscriber 1 and subscriber 77",
            stolen.address,
            stolen.blocks[0],
            stolen.blocks[0] + 511
        )
    );

    let mut s = snap.clone();
    s.subscribers.push(s.subscribers[1].clone());
    assert_eq!(restore(&s), RestoreError::DuplicateSubscriber(sub(2)));

    let mut s = snap.clone();
    let dup = s.subscribers[0].blocks[0];
    s.subscribers[0].blocks.push(dup);
    assert!(
        matches!(restore(&s), RestoreError::Conflict { .. }),
        "same block listed twice"
    );

    let mut s = snap.clone();
    let held = s.held[0];
    let owner = s
        .subscribers
        .iter_mut()
        .find(|x| x.address == held.address)
        .unwrap();
    owner.blocks.push(held.first_port);
    let e = restore(&s).to_string();
    assert!(
        e.contains("claimed by both") && e.contains("a held block"),
        "{e}"
    );

    let mut s = snap.clone();
    s.subscribers[0].address = ip("198.51.100.1");
    assert_eq!(
        restore(&s).to_string(),
        "subscriber 1's address 198.51.100.1 is not in nat.pool"
    );

    let mut s = snap.clone();
    s.subscribers[0].blocks[0] += 1;
    assert!(matches!(restore(&s), RestoreError::NotABlock { .. }));
    let mut s = snap.clone();
    s.subscribers[0].blocks[0] = 80;
    assert!(matches!(
        restore(&s),
        RestoreError::NotABlock { port: 80, .. }
    ));

    let mut s = snap.clone();
    s.subscribers[0].blocks.clear();
    assert_eq!(
        restore(&s),
        RestoreError::BlockCount {
            subscriber: sub(1),
            len: 0
        }
    );

    let mut s = snap.clone();
    s.block_size = 256;
    assert!(
        restore(&s)
            .to_string()
            .starts_with("the snapshot's nat.block_size is 256, the configuration's 512"),
    );
    let mut s = snap;
    s.port_range = "1024-65535".parse().unwrap();
    assert!(matches!(
        restore(&s),
        RestoreError::GeometryChanged {
            what: "nat.port_range",
            ..
        }
    ));
}

#[test]
fn restore_tolerates_a_lowered_limit_and_a_removed_held_address() {
    let (_, a) = busy();
    let mut snap = a.snapshot();
    // Subscriber 5 holds 3 blocks; the limit is now 2.
    let c2 = config(&["192.0.2.1-192.0.2.3"], "1024-5119", 1, 2);
    let r = BlockAllocator::restore(&c2, &snap, T0.plus(100)).unwrap();
    r.check_invariants();
    assert_eq!(r.assignment(sub(5)).unwrap().blocks.len(), 3);
    let mut r = r;
    assert!(matches!(
        r.grow(sub(5), "x", T0.plus(100)),
        Err(GrowError::MaxBlocks { max: 2, .. })
    ));
    // A held block on an address that left the pool is simply forgotten.
    snap.held.push(HeldBlock {
        address: ip("198.51.100.1"),
        first_port: 1024,
        until: T0.plus(1000),
    });
    let c = config(&["192.0.2.1-192.0.2.3"], "1024-5119", 1, 4);
    let r = BlockAllocator::restore(&c, &snap, T0.plus(100)).unwrap();
    assert_eq!(r.stats().blocks_held, 3);
}
