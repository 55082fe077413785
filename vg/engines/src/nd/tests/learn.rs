//! The binding table: first come first served, bounds, eviction order.

use super::*;

fn mac(n: u16) -> EthernetAddress {
    let [a, b] = n.to_be_bytes();
    EthernetAddress([0x02, 0, 0, 0, a, b])
}

fn addr(n: u32) -> Ipv6Addr {
    Ipv6Addr::from(u128::from(HOST) + u128::from(n))
}

fn bind(addr: Ipv6Addr, mac: EthernetAddress, state: BindingState) -> Binding {
    Binding {
        addr,
        mac,
        from: LearntFrom::NeighbourAdvertisement,
        state,
    }
}

const CONFIRMED: BindingState = BindingState::Confirmed;
const TENTATIVE: BindingState = BindingState::Tentative;

#[test]
fn first_come_first_served() {
    let limits = NeighbourLimits::default();
    let mut table = Neighbours::new(limits);
    assert_eq!(
        table.learn(&bind(HOST, mac(1), TENTATIVE), 0),
        Learnt::New { evicted: None }
    );
    assert_eq!(table.lookup(HOST, 0), None, "tentative is not forwarded to");
    // Another host's DAD for the same address while the first is still at it.
    assert_eq!(
        table.learn(&bind(HOST, mac(2), TENTATIVE), 500),
        Learnt::Conflict { owner: mac(1) }
    );
    assert_eq!(
        table.learn(&bind(HOST, mac(1), CONFIRMED), 1_000),
        Learnt::Refreshed
    );
    assert_eq!(table.lookup(HOST, 1_000), Some(mac(1)));
    // A later claim by another MAC is refused while the owner is alive, and counted.
    let alive = 1_000 + limits.lifetime_ms - 1;
    assert_eq!(
        table.learn(&bind(HOST, mac(2), CONFIRMED), alive),
        Learnt::Conflict { owner: mac(1) }
    );
    assert_eq!(table.stats().conflicts, 2);
    // A confirmed binding stays confirmed when the owner does DAD again.
    assert_eq!(
        table.learn(&bind(HOST, mac(1), TENTATIVE), 2_000),
        Learnt::Refreshed
    );
    assert_eq!(table.get(HOST).map(|n| n.state), Some(CONFIRMED));
    // Once the owner is quiet for the lifetime, the address moves.
    let quiet = 2_000 + limits.lifetime_ms;
    assert_eq!(table.lookup(HOST, quiet), None);
    assert_eq!(
        table.learn(&bind(HOST, mac(2), CONFIRMED), quiet),
        Learnt::Moved {
            from: mac(1),
            evicted: None
        }
    );
    assert_eq!(table.lookup(HOST, quiet), Some(mac(2)));
    assert_eq!(table.stats().moves, 1);
}

#[test]
fn a_tentative_binding_that_is_not_confirmed_dies_quickly() {
    let limits = NeighbourLimits::default();
    let mut table = Neighbours::new(limits);
    table.learn(&bind(HOST, mac(1), TENTATIVE), 0);
    assert_eq!(
        table.learn(&bind(HOST, mac(2), TENTATIVE), limits.tentative_ms),
        Learnt::Moved {
            from: mac(1),
            evicted: None
        }
    );
}

#[test]
fn touch_keeps_a_binding_alive() {
    let limits = NeighbourLimits::default();
    let mut table = Neighbours::new(limits);
    table.learn(&bind(HOST, mac(1), CONFIRMED), 0);
    assert!(table.touch(HOST, mac(1), limits.lifetime_ms - 1));
    assert!(
        !table.touch(HOST, mac(2), limits.lifetime_ms - 1),
        "not its MAC"
    );
    assert_eq!(table.lookup(HOST, 2 * limits.lifetime_ms - 2), Some(mac(1)));
    assert_eq!(
        table.expire(2 * limits.lifetime_ms - 2),
        Vec::<Ipv6Addr>::new()
    );
    assert_eq!(table.expire(2 * limits.lifetime_ms), vec![HOST]);
    assert!(table.is_empty());
}

#[test]
fn the_table_never_exceeds_its_bound_and_evicts_least_recently_seen() {
    let limits = NeighbourLimits {
        max_entries: 32,
        max_per_mac: 4,
        ..NeighbourLimits::default()
    };
    let mut table = Neighbours::new(limits);
    // 16 hosts of 2 addresses fill it.
    for n in 0..32 {
        table.learn(&bind(addr(n), mac(n as u16 / 2), CONFIRMED), u64::from(n));
    }
    assert_eq!(table.len(), 32);
    // Host 0's first address is seen again: the next newcomer evicts addr(1), not it.
    assert!(table.touch(addr(0), mac(0), 100));
    assert_eq!(
        table.learn(&bind(addr(100), mac(100), CONFIRMED), 101),
        Learnt::New {
            evicted: Some(addr(1))
        }
    );
    // A tentative entry goes before any confirmed one.
    assert_eq!(
        table.learn(&bind(addr(101), mac(101), TENTATIVE), 200),
        Learnt::New {
            evicted: Some(addr(2))
        }
    );
    assert_eq!(
        table.learn(&bind(addr(102), mac(102), CONFIRMED), 201),
        Learnt::New {
            evicted: Some(addr(101))
        }
    );
    assert_eq!(
        table.learn(&bind(addr(103), mac(103), CONFIRMED), 202),
        Learnt::New {
            evicted: Some(addr(3))
        }
    );
    assert_eq!(table.len(), 32);
    assert_eq!(table.stats().evictions, 4);
}

#[test]
fn one_mac_inventing_addresses_evicts_only_its_own() {
    let limits = NeighbourLimits {
        max_entries: 64,
        max_per_mac: 4,
        ..NeighbourLimits::default()
    };
    let mut table = Neighbours::new(limits);
    table.learn(&bind(HOST, mac(1), CONFIRMED), 0);
    for n in 0..10_000 {
        table.learn(&bind(addr(1000 + n), mac(666), CONFIRMED), u64::from(n) + 1);
        assert!(table.len() <= 5);
    }
    assert_eq!(
        table.lookup(HOST, 20_000),
        Some(mac(1)),
        "the neighbour keeps its binding"
    );
    let attacker: Vec<_> = (0..10_000)
        .filter_map(|n| table.get(addr(1000 + n)))
        .collect();
    assert_eq!(attacker.len(), 4, "the four most recent");
}

#[test]
fn a_scan_of_bindings_from_many_macs_stays_bounded() {
    let limits = NeighbourLimits::default();
    let mut table = Neighbours::new(limits);
    for n in 0..20_000u32 {
        table.learn(
            &bind(addr(n), mac((n % 10_000) as u16), TENTATIVE),
            u64::from(n),
        );
        assert!(table.len() <= limits.max_entries);
    }
    assert_eq!(table.len(), limits.max_entries);
}

/// The bindings [`answer6`] reports for `frames` (inner, on 802.1Q), in order.
fn learnt_from(frames: &[&[u8]]) -> Vec<Binding> {
    frames
        .iter()
        .filter_map(|inner| learnt(&answer_on(&dot1q(), inner)))
        .collect()
}

#[test]
fn linux_coming_up_binds_its_link_local_address_tentative_then_confirmed() {
    use super::fixtures::{KERNEL_DAD_NS, KERNEL_RS, NDISC6_NS};
    let mut table = Neighbours::new(NeighbourLimits::default());
    let bindings = learnt_from(&[&KERNEL_DAD_NS, &KERNEL_RS, &NDISC6_NS]);
    assert_eq!(bindings.len(), 3);
    let outcomes: Vec<Learnt> = bindings
        .iter()
        .zip([0, 1_000, 4_000])
        .map(|(binding, now)| table.learn(binding, now))
        .collect();
    assert_eq!(
        outcomes,
        [
            Learnt::New { evicted: None },
            Learnt::Refreshed,
            Learnt::Refreshed
        ]
    );
    assert_eq!(table.lookup(HOST_LL, 4_000), Some(HOST_MAC));
    // Another station's DAD for the same address is refused while the host is alive.
    let mut dad = super::fixtures::KERNEL_DAD_NS.to_vec();
    dad[6..12].copy_from_slice(&OTHER_MAC.0);
    let [claim] = learnt_from(&[&dad])[..] else {
        panic!("one binding");
    };
    assert_eq!(claim.mac, OTHER_MAC);
    assert_eq!(
        table.learn(&claim, 5_000),
        Learnt::Conflict { owner: HOST_MAC }
    );
}

/// A randomised model check: random bindings, touches, removals and expiries from a few
/// MACs over a few addresses against the rules, with a deterministic generator.
#[test]
fn random_operations_keep_the_rules() {
    let limits = NeighbourLimits {
        max_entries: 12,
        max_per_mac: 5,
        tentative_ms: 50,
        lifetime_ms: 400,
    };
    let mut table = Neighbours::new(limits);
    let mut rng = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move |n: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % n
    };
    let mut now = 0;
    for _ in 0..40_000 {
        now += next(20);
        let a = addr(next(24) as u32);
        let m = mac(next(6) as u16);
        let before = table.get(a).copied();
        match next(10) {
            0 => {
                table.expire(now);
            }
            1 => {
                table.remove(a);
            }
            2 => {
                let touched = table.touch(a, m, now);
                assert_eq!(touched, before.is_some_and(|n| n.mac == m));
            }
            _ => {
                let state = if next(2) == 0 { TENTATIVE } else { CONFIRMED };
                let outcome = table.learn(&bind(a, m, state), now);
                let alive = |n: &Neighbour| {
                    let hold = match n.state {
                        BindingState::Tentative => limits.tentative_ms,
                        BindingState::Confirmed => limits.lifetime_ms,
                    };
                    now - n.last_seen_ms < hold
                };
                let expected = match before {
                    None => "new",
                    Some(n) if n.mac == m => "refreshed",
                    Some(n) if alive(&n) => "conflict",
                    Some(_) => "moved",
                };
                let got = match outcome {
                    Learnt::New { .. } => "new",
                    Learnt::Refreshed => "refreshed",
                    Learnt::Conflict { .. } => "conflict",
                    Learnt::Moved { .. } => "moved",
                };
                assert_eq!(got, expected, "{a} at {m}: before {before:?}");
                let bound = table.get(a).map(|n| n.mac);
                let owner = if got == "conflict" {
                    before.map(|n| n.mac)
                } else {
                    Some(m)
                };
                assert_eq!(bound, owner, "who holds {a}");
            }
        }
        assert!(table.len() <= limits.max_entries);
        for n in 0..6 {
            let per_mac = (0..24)
                .filter(|i| table.get(addr(*i)).is_some_and(|e| e.mac == mac(n)))
                .count();
            assert!(
                per_mac <= limits.max_per_mac,
                "{per_mac} addresses at {}",
                mac(n)
            );
        }
    }
    let stats = table.stats();
    assert!(
        stats.conflicts > 0 && stats.moves > 0 && stats.evictions > 0,
        "{stats:?}"
    );
}
