//! Allocator tests across modules: invariants under long random operation sequences checked
//! against an independent model, and a timing run for 100,000 subscribers.

use std::{
    collections::{BTreeSet, HashMap},
    net::Ipv4Addr,
    time::Instant,
};

use super::*;

/// SplitMix64: small, deterministic, good enough to drive tests.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0; the tiny modulo bias does not matter here).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn config(text: &str) -> NatConfig {
    let wire: NatConfigWire = toml::from_str(text).expect("test TOML");
    NatConfig::try_from(wire).expect("valid test configuration")
}

/// What the events say the state is, kept independently of the allocator.
#[derive(Default)]
struct Model {
    /// (address, first port) -> owner.
    owner: HashMap<(Ipv4Addr, u16), SubscriberId>,
    /// Subscriber -> (address, first ports).
    subs: HashMap<SubscriberId, (Ipv4Addr, BTreeSet<u16>)>,
    /// (address, first port) -> when it was last released.
    released: HashMap<(Ipv4Addr, u16), UnixTime>,
    /// (subscriber, first port) -> forwards pinned there.
    pins: HashMap<(SubscriberId, u16), u32>,
}

impl Model {
    fn apply(&mut self, e: &BlockEvent, now: UnixTime, hold: u64) {
        assert_eq!(e.time, now, "events carry the caller's time");
        assert_eq!(e.last_port - e.first_port + 1, 512, "whole blocks");
        let key = (e.address, e.first_port);
        match e.action {
            BlockAction::Alloc => {
                assert!(
                    !self.owner.contains_key(&key),
                    "{e}: block already owned by {:?}",
                    self.owner.get(&key)
                );
                if let Some(&at) = self.released.get(&key) {
                    assert!(
                        now >= at.plus(hold),
                        "{e}: reused within the hold-down (released {at:?})"
                    );
                }
                self.owner.insert(key, e.subscriber);
                let entry = self
                    .subs
                    .entry(e.subscriber)
                    .or_insert_with(|| (e.address, BTreeSet::new()));
                assert_eq!(entry.0, e.address, "{e}: paired pooling broken");
                entry.1.insert(e.first_port);
            }
            BlockAction::Release => {
                assert_eq!(
                    self.owner.remove(&key),
                    Some(e.subscriber),
                    "{e}: not its block"
                );
                self.released.insert(key, now);
                if let Some((_, blocks)) = self.subs.get_mut(&e.subscriber) {
                    blocks.remove(&e.first_port);
                }
                assert_eq!(
                    self.pins
                        .get(&(e.subscriber, e.first_port))
                        .copied()
                        .unwrap_or(0),
                    0
                );
            }
        }
    }

    /// Blocks of `address` that could be handed out at `now`.
    fn available(&self, address: Ipv4Addr, per_address: u32, now: UnixTime, hold: u64) -> u32 {
        let owned = self.owner.keys().filter(|(a, _)| *a == address).count() as u32;
        let resting = self
            .released
            .iter()
            .filter(|((a, p), at)| {
                *a == address && now < at.plus(hold) && !self.owner.contains_key(&(*a, *p))
            })
            .count() as u32;
        per_address - owned - resting
    }
}

/// Thousands of random operations over a small pool (so that exhaustion, hold-downs and
/// refusals all happen), checked event by event against [`Model`] and the allocator's own
/// invariants; a snapshot/restore now and then.
#[test]
fn random_operations_keep_every_invariant() {
    let c = config(
        r#"pool = ["198.51.100.0/28"]
           port_range = "1024-9215"
           max_blocks_per_subscriber = 4"#,
    );
    let hold = u64::from(c.hold_down_secs());
    let per_address = c.blocks_per_address();
    assert_eq!((c.pool().len(), per_address), (14, 16));
    for seed in 1..=4u64 {
        let mut rng = Rng(seed);
        let mut a = BlockAllocator::new(&c);
        let mut m = Model::default();
        let mut now = UnixTime(1_700_000_000);
        let mut outcomes: HashMap<&'static str, u32> = HashMap::new();
        for step in 0..6000 {
            now = now.plus(rng.below(20));
            let id = SubscriberId(rng.below(140) as u32);
            let who = format!("home-{}", id.0);
            // Alternate phases that fill the pool to exhaustion and phases that drain it.
            let filling = (step / 400) % 2 == 0;
            let op = match rng.below(100) {
                65..=89 if filling => rng.below(65),
                op => op,
            };
            let outcome = match op {
                0..=24 => match a.add_subscriber(id, &who, now) {
                    Ok(events) => {
                        assert_eq!(events.len(), usize::from(c.initial_blocks()));
                        assert!(!m.subs.contains_key(&id));
                        events.iter().for_each(|e| m.apply(e, now, hold));
                        "add"
                    }
                    Err(AddError::Exists { address, .. }) => {
                        assert_eq!(m.subs[&id].0, address);
                        "add: exists"
                    }
                    Err(AddError::PoolExhausted { best, .. }) => {
                        let most = c
                            .pool()
                            .addresses()
                            .iter()
                            .map(|&ip| m.available(ip, per_address, now, hold))
                            .max()
                            .unwrap_or(0);
                        assert_eq!(best, most, "refused while an address had room");
                        assert!(most < u32::from(c.initial_blocks()));
                        "add: pool exhausted"
                    }
                    Err(e @ AddError::NotInPool { .. }) => {
                        panic!("add_subscriber pins no address: {e}")
                    }
                },
                25..=64 => match a.grow(id, &who, now) {
                    Ok(e) => {
                        m.apply(&e, now, hold);
                        "grow"
                    }
                    Err(GrowError::Unknown(_)) => {
                        assert!(!m.subs.contains_key(&id));
                        "grow: unknown"
                    }
                    Err(GrowError::MaxBlocks { .. }) => {
                        assert_eq!(m.subs[&id].1.len(), usize::from(c.max_blocks()));
                        "grow: max"
                    }
                    Err(GrowError::AddressExhausted { address, .. }) => {
                        assert_eq!(m.subs[&id].0, address);
                        assert_eq!(m.available(address, per_address, now, hold), 0);
                        "grow: address exhausted"
                    }
                },
                65..=74 => match a.remove_subscriber(id, &who, now) {
                    Ok(events) => {
                        let (_, blocks) = m.subs.remove(&id).expect("model knows it");
                        m.pins.retain(|(s, _), _| *s != id);
                        assert_eq!(events.len(), blocks.len());
                        for e in &events {
                            m.owner.remove(&(e.address, e.first_port));
                            m.released.insert((e.address, e.first_port), now);
                        }
                        "remove"
                    }
                    Err(UnknownSubscriber(_)) => {
                        assert!(!m.subs.contains_key(&id));
                        "remove: unknown"
                    }
                },
                75..=89 => {
                    let port = match m.subs.get(&id) {
                        Some((_, blocks)) if rng.below(10) > 0 => {
                            let firsts: Vec<u16> = blocks.iter().copied().collect();
                            firsts[rng.below(firsts.len() as u64) as usize] + rng.below(512) as u16
                        }
                        _ => rng.below(65536) as u16,
                    };
                    match a.release_block(id, port, &who, now) {
                        Ok(e) => {
                            assert!(e.first_port <= port && port <= e.last_port);
                            m.apply(&e, now, hold);
                            "release"
                        }
                        Err(ReleaseError::Initial { .. }) => {
                            assert_eq!(m.subs[&id].1.len(), usize::from(c.initial_blocks()));
                            "release: initial"
                        }
                        Err(ReleaseError::Forwarded { first, .. }) => {
                            assert!(m.pins.get(&(id, first)).copied().unwrap_or(0) > 0);
                            "release: forwarded"
                        }
                        Err(ReleaseError::NotOwned { .. }) => {
                            let owns = m.subs.get(&id).is_some_and(|(_, b)| {
                                b.iter()
                                    .any(|&f| f <= port && u32::from(port) < u32::from(f) + 512)
                            });
                            assert!(!owns);
                            "release: not owned"
                        }
                        Err(ReleaseError::Unknown(_)) => "release: unknown",
                    }
                }
                90..=95 => {
                    // Mostly ports inside the subscriber's blocks, or ones it forwards.
                    let pinned_ports: Vec<u16> = m
                        .pins
                        .iter()
                        .filter(|((s, _), n)| *s == id && **n > 0)
                        .map(|((_, f), _)| *f)
                        .collect();
                    let port = match (m.subs.get(&id), rng.below(4)) {
                        (_, 0) => 1024 + rng.below(8192) as u16,
                        (_, 1) if !pinned_ports.is_empty() => {
                            pinned_ports[rng.below(pinned_ports.len() as u64) as usize]
                        }
                        (Some((_, blocks)), _) => {
                            let firsts: Vec<u16> = blocks.iter().copied().collect();
                            firsts[rng.below(firsts.len() as u64) as usize] + rng.below(512) as u16
                        }
                        (None, _) => 1024 + rng.below(8192) as u16,
                    };
                    let first = port - (port - 1024) % 512;
                    let pinned = m.pins.get(&(id, first)).copied().unwrap_or(0);
                    if rng.below(2) == 0 {
                        match a.add_forward(id, port) {
                            Ok(b) => {
                                assert_eq!(b.first(), first);
                                assert!(m.subs[&id].1.contains(&first));
                                *m.pins.entry((id, first)).or_default() += 1;
                                "forward add"
                            }
                            Err(_) => {
                                assert!(!m.subs.get(&id).is_some_and(|(_, b)| b.contains(&first)));
                                "forward add: refused"
                            }
                        }
                    } else {
                        match a.remove_forward(id, port) {
                            Ok(()) => {
                                assert!(pinned > 0);
                                m.pins.insert((id, first), pinned - 1);
                                "forward remove"
                            }
                            Err(_) => {
                                assert_eq!(pinned, 0);
                                "forward remove: refused"
                            }
                        }
                    }
                }
                _ => {
                    let json = serde_json::to_string(&a.snapshot()).expect("serialize");
                    let snap: Snapshot = serde_json::from_str(&json).expect("parse");
                    a = BlockAllocator::restore(&c, &snap, now).expect("own snapshot restores");
                    // Forwards are re-added by their owner (the registry) after a restore.
                    for (&(s, first), &n) in &m.pins {
                        for _ in 0..n {
                            a.add_forward(s, first)
                                .expect("forward still inside its block");
                        }
                    }
                    "restore"
                }
            };
            *outcomes.entry(outcome).or_default() += 1;

            if step % 97 == 0 {
                a.check_invariants();
                let st = a.stats();
                assert_eq!(st.subscribers, m.subs.len() as u64);
                assert_eq!(st.blocks_owned, m.owner.len() as u64);
                for (&s, (address, blocks)) in &m.subs {
                    let asg = a.assignment(s).expect("known subscriber");
                    assert_eq!(asg.address, *address);
                    assert_eq!(asg.blocks, blocks.iter().copied().collect::<Vec<_>>());
                    let p = a.ports(s).expect("fast-path view");
                    assert_eq!(p.firsts(), asg.blocks.as_slice());
                    assert_eq!(p.address(), *address);
                }
            }
        }
        a.check_invariants();
        // The run must have exercised the interesting paths, or it proves little.
        for needed in [
            "add",
            "add: pool exhausted",
            "grow",
            "grow: max",
            "grow: address exhausted",
            "remove",
            "release",
            "release: initial",
            "release: forwarded",
            "forward add",
            "forward remove",
            "restore",
        ] {
            assert!(
                outcomes.get(needed).copied().unwrap_or(0) > 0,
                "seed {seed}: no {needed:?} in {outcomes:?}"
            );
        }
    }
}

/// `select_port` over an allocator's view never leaves the subscriber's blocks, whatever
/// the block layout.
#[test]
fn port_choice_stays_inside_allocated_blocks() {
    let c = config(r#"pool = ["192.0.2.1-192.0.2.8"]"#);
    let mut a = BlockAllocator::new(&c);
    let mut rng = Rng(99);
    let now = UnixTime(1_700_000_000);
    for s in 0..200 {
        a.add_subscriber(SubscriberId(s), "x", now).expect("room");
        for _ in 0..rng.below(4) {
            let _ = a.grow(SubscriberId(s), "x", now);
        }
    }
    for s in 0..200 {
        let p = a.ports(SubscriberId(s)).expect("allocated");
        for _ in 0..50 {
            let (original, hash) = (rng.next() as u16, rng.next() as u32);
            let fill = rng.below(100);
            let choice = select_port(&p, original, hash, |port| {
                assert!(p.contains(port), "probe {port} outside {:?}", p.firsts());
                (u64::from(port) * 2_654_435_761) % 100 >= fill
            });
            if let Some(c) = choice {
                assert!(p.contains(c.port));
                assert!(c.probe <= MAX_PORT_PROBES);
            }
        }
    }
}

#[test]
fn provision_subscribers() {
    // Small enough for every test run; the benchmark provisions 100,000 with the same code.
    provision(2_000);
}

/// Provisions `n` subscribers the way vgd would, then grows, syncs to the fast path,
/// persists, restores and deletes them, printing the rate of each step.
fn provision(n: u32) {
    // A /20: 4094 addresses x 126 blocks; 100k subscribers fit even at 4 blocks each.
    let c = config(r#"pool = ["100.64.0.0/20"]"#);
    let now = UnixTime(1_700_000_000);
    let mut a = BlockAllocator::new(&c);
    let rate = |what: &str, ops: u32, t: Instant| {
        let secs = t.elapsed().as_secs_f64();
        println!(
            "{what:<34} {ops:>7} ops in {:>8.1} ms = {:>10.0} ops/s",
            secs * 1e3,
            f64::from(ops) / secs
        );
    };
    let mut events = 0usize;

    let t = Instant::now();
    for s in 0..n {
        let ev = a
            .add_subscriber(SubscriberId(s), &format!("vlan:{s}"), now)
            .expect("pool has room");
        events += ev.iter().map(|e| e.to_string().len()).sum::<usize>();
    }
    rate("add_subscriber (+ log line)", n, t);

    let t = Instant::now();
    for round in 0..3 {
        for s in 0..n {
            let e = a
                .grow(SubscriberId(s), &format!("vlan:{s}"), now.plus(round))
                .expect("room to grow");
            events += e.to_string().len();
        }
    }
    rate("grow (+ log line)", 3 * n, t);

    let t = Instant::now();
    let mut sum = 0u64;
    for s in 0..n {
        let p = a.ports(SubscriberId(s)).expect("allocated");
        sum += u64::from(p.total_ports());
    }
    rate("ports (fast-path view)", n, t);
    assert_eq!(sum, u64::from(n) * 4 * 512);

    let t = Instant::now();
    let json = serde_json::to_vec(&a.snapshot()).expect("serialize");
    let snap: Snapshot = serde_json::from_slice(&json).expect("parse");
    let restored = BlockAllocator::restore(&c, &snap, now).expect("restore");
    rate("snapshot + JSON + restore", 1, t);
    println!("snapshot: {} bytes of JSON", json.len());
    assert_eq!(restored.stats(), a.stats());

    let t = Instant::now();
    for s in 0..n {
        a.remove_subscriber(SubscriberId(s), &format!("vlan:{s}"), now.plus(10))
            .expect("known");
    }
    rate("remove_subscriber", n, t);

    let t = Instant::now();
    let later = now.plus(1000);
    assert_eq!(a.expire_holds(later), 4 * n as usize);
    rate("expire 400k hold-downs", 1, t);

    let t = Instant::now();
    for s in 0..n {
        a.add_subscriber(SubscriberId(s), "again", later)
            .expect("room");
    }
    rate("add_subscriber (recycled blocks)", n, t);
    a.check_invariants();
    assert!(events > 0);
}
