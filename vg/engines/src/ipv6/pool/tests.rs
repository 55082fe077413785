use std::net::Ipv6Addr;

use super::*;
use crate::ipv6::config::Ipv6File;

fn cfg(pools: &[&str], hold: u64) -> Ipv6Config {
    Ipv6Config::try_from(Ipv6File {
        pools: pools.iter().map(|s| (*s).to_owned()).collect(),
        delegated_length: Some(56),
        hold_down_secs: Some(hold),
        ..Ipv6File::default()
    })
    .expect("valid")
}

fn p(s: &str) -> Ipv6Net {
    s.parse().unwrap()
}

const T0: UnixTime = UnixTime(1_000_000);

#[test]
fn homes_get_aligned_disjoint_prefixes_in_order() {
    let c = cfg(&["2001:db8:100::/48"], 60);
    let mut pool = PrefixPool::new(&c);
    let a = pool.assign(1, Ipv6Policy::Length(56), T0).unwrap();
    let b = pool.assign(2, Ipv6Policy::Length(60), T0).unwrap();
    let d = pool.assign(3, Ipv6Policy::Length(56), T0).unwrap();
    assert_eq!(a.assigned.unwrap().prefix, p("2001:db8:100::/56"));
    assert_eq!(a.assigned.unwrap().lan(), p("2001:db8:100::/64"));
    assert_eq!(b.assigned.unwrap().prefix, p("2001:db8:100:100::/60"));
    assert_eq!(d.assigned.unwrap().prefix, p("2001:db8:100:200::/56"));
    assert_eq!(pool.home_of("2001:db8:100:ff::9".parse().unwrap()), Some(1));
    assert_eq!(
        pool.home_of("2001:db8:100:10f::9".parse().unwrap()),
        Some(2)
    );
    assert_eq!(pool.home_of("2001:db8:100:110::9".parse().unwrap()), None);
    assert_eq!(pool.home_of(Ipv6Addr::LOCALHOST), None);
    // Sticky: asking again changes nothing.
    assert_eq!(
        pool.assign(1, Ipv6Policy::Length(56), T0),
        Ok(PrefixChange::default())
    );
    let st = pool.stats();
    assert_eq!((st.assigned, st.held, st.capacity), (3, 0, 256.0));
}

#[test]
fn a_released_prefix_rests_then_returns_and_ended_holds_are_reported() {
    let c = cfg(&["2001:db8:100::/55"], 60);
    let mut pool = PrefixPool::new(&c);
    pool.assign(1, Ipv6Policy::Length(56), T0).unwrap();
    pool.assign(2, Ipv6Policy::Length(56), T0).unwrap();
    assert_eq!(
        pool.assign(3, Ipv6Policy::Length(56), T0),
        Err(PrefixError::Exhausted(56))
    );
    let held = pool.release(1, T0).unwrap();
    assert_eq!(held.until, UnixTime(T0.0 + 60));
    assert_eq!(pool.held().collect::<Vec<_>>(), vec![held]);
    // Held: not handed out before its end.
    assert_eq!(
        pool.assign(3, Ipv6Policy::Length(56), UnixTime(T0.0 + 59)),
        Err(PrefixError::Exhausted(56))
    );
    let later = UnixTime(T0.0 + 60);
    let change = pool.assign(3, Ipv6Policy::Length(56), later).unwrap();
    assert_eq!(change.assigned.unwrap().prefix, held.prefix);
    assert_eq!(change.unheld, vec![held]);
    assert_eq!(pool.held().count(), 0);
    assert_eq!(pool.release(9, later), None);
}

#[test]
fn pinned_prefixes_never_take_from_another_home_and_end_hold_downs() {
    let c = cfg(&["2001:db8:100::/48"], 60);
    let mut pool = PrefixPool::new(&c);
    pool.assign(1, Ipv6Policy::Length(56), T0).unwrap();
    let theirs = p("2001:db8:100::/56");
    assert_eq!(
        pool.assign(2, Ipv6Policy::Pinned(p("2001:db8:100:10::/60")), T0),
        Err(PrefixError::Taken {
            prefix: p("2001:db8:100:10::/60"),
            home: 1,
            theirs,
        })
    );
    assert_eq!(
        pool.assign(2, Ipv6Policy::Pinned(p("2001:db9::/56")), T0),
        Err(PrefixError::OutsidePools(p("2001:db9::/56")))
    );
    pool.release(1, T0).unwrap();
    let change = pool
        .assign(2, Ipv6Policy::Pinned(p("2001:db8:100:10::/60")), T0)
        .unwrap();
    assert_eq!(
        change.unheld.iter().map(|h| h.prefix).collect::<Vec<_>>(),
        vec![theirs],
        "the operator's choice ends the hold-down"
    );
    // A change that could not be stored is undone exactly.
    let before: Vec<HeldPrefix> = vec![HeldPrefix {
        prefix: theirs,
        until: UnixTime(T0.0 + 60),
    }];
    pool.undo(2, &change, None);
    assert_eq!(pool.get(2), None);
    assert_eq!(pool.held().collect::<Vec<_>>(), before);
    pool.assign(2, Ipv6Policy::Pinned(p("2001:db8:100:10::/60")), T0)
        .unwrap();
    // The home moves inside its own space: nothing rests.
    let change = pool
        .assign(2, Ipv6Policy::Pinned(p("2001:db8:100::/56")), T0)
        .unwrap();
    assert_eq!(change.released, None);
    assert_eq!(pool.get(2).unwrap().prefix, theirs);
    assert_eq!(pool.stats().held, 0);
    // Off: it goes to hold-down.
    let change = pool.assign(2, Ipv6Policy::Off, T0).unwrap();
    assert_eq!(change.released.unwrap().prefix, theirs);
    assert_eq!(pool.get(2), None);
}

#[test]
fn a_new_length_moves_the_home_and_holds_the_old_prefix() {
    let c = cfg(&["2001:db8:100::/48"], 60);
    let mut pool = PrefixPool::new(&c);
    pool.assign(1, Ipv6Policy::Length(56), T0).unwrap();
    let had = pool.get(1).copied();
    let change = pool.assign(1, Ipv6Policy::Length(60), T0).unwrap();
    assert_eq!(change.released.unwrap().prefix, p("2001:db8:100::/56"));
    assert_eq!(change.assigned.unwrap().prefix, p("2001:db8:100:100::/60"));
    pool.undo(1, &change, had);
    assert_eq!(pool.get(1).copied(), had);
    assert_eq!(pool.held().count(), 0);
    assert_eq!(pool.home_of("2001:db8:100:100::1".parse().unwrap()), None);
}

#[test]
fn restore_keeps_what_fits_and_reports_the_rest() {
    let c = cfg(&["2001:db8:100::/48"], 60);
    let a = |s: &str| Assigned {
        prefix: p(s),
        since: UnixTime(5),
    };
    let (pool, dropped) = PrefixPool::restore(
        &c,
        [
            (1, a("2001:db8:100:100::/56")),
            (2, a("2001:db8:100:100::/60")),
            (3, a("2001:db9::/56")),
        ],
        [
            HeldPrefix {
                prefix: p("2001:db8:100:200::/56"),
                until: UnixTime(T0.0 + 1),
            },
            HeldPrefix {
                prefix: p("2001:db8:100:300::/56"),
                until: T0,
            },
        ],
        T0,
    );
    assert_eq!(
        dropped,
        vec![
            (Some(2), p("2001:db8:100:100::/60")),
            (Some(3), p("2001:db9::/56")),
            (None, p("2001:db8:100:300::/56")),
        ]
    );
    assert_eq!(pool.get(1), Some(&a("2001:db8:100:100::/56")));
    assert_eq!(pool.stats().held, 1);
    let mut pool = pool;
    // The first free /56s: 0, then 300 (100 is home 1's, 200 is held).
    let first = pool.assign(4, Ipv6Policy::Length(56), T0).unwrap();
    assert_eq!(first.assigned.unwrap().prefix, p("2001:db8:100::/56"));
    let next = pool.assign(5, Ipv6Policy::Length(56), T0).unwrap();
    assert_eq!(next.assigned.unwrap().prefix, p("2001:db8:100:300::/56"));
}

#[test]
fn many_homes_in_a_row_and_random_churn_keep_prefixes_disjoint() {
    let c = cfg(&["2001:db8::/40", "2001:db9::/44"], 0);
    let mut pool = PrefixPool::new(&c);
    for home in 1..=20_000 {
        pool.assign(home, Ipv6Policy::Length(56), T0).unwrap();
    }
    // A small deterministic generator: release, re-assign at another length.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..20_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let home = (x % 20_000) as u32 + 1;
        match x % 3 {
            0 => drop(pool.release(home, T0)),
            1 => drop(pool.assign(home, Ipv6Policy::Length(60), T0)),
            _ => drop(pool.assign(home, Ipv6Policy::Length(56), T0)),
        }
    }
    let mut ranges: Vec<Ipv6Net> = pool.homes().map(|(_, a)| a.prefix).collect();
    ranges.sort();
    for w in ranges.windows(2) {
        assert!(end(&w[0]) < start(&w[1]), "{} overlaps {}", w[0], w[1]);
    }
    for (home, a) in pool.homes() {
        assert!(c.in_pools(&a.prefix));
        assert_eq!(pool.home_of(a.prefix.network()), Some(home));
    }
}
