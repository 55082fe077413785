//! Several homes with the same DUIDs and prefixes of the same shape.

use super::*;

#[test]
fn homes_are_independent() {
    let store = MemoryStore::new();
    let mut homes = Homes::new();
    homes.insert(HomeServer::new(1, config(|_| {})));
    homes.insert(HomeServer::new(
        2,
        config(|s| {
            s.lan = net("2001:db8:0:200::/64");
            s.delegated = Some(net("2001:db8:0:200::/56"));
        }),
    ));
    assert_eq!(homes.len(), 2);
    let c = Client::new(1).with_pd();

    let mut got = Vec::new();
    for home in [1, 2] {
        let out = homes
            .handle_bytes(home, T0, c.peer(), &c.solicit_rapid())
            .expect("known home");
        assert_eq!(out.home, home);
        got.push(granted(&reply(&out, &c)));
        commit(out, &store);
    }
    assert_eq!(got[0][1], Lease::Prefix(net("2001:db8:0:110::/60")));
    assert_eq!(got[1][1], Lease::Prefix(net("2001:db8:0:210::/60")));
    assert_eq!(store.load(1).expect("load").len(), 2);
    assert_eq!(store.load(2).expect("load").len(), 2);

    // Releasing in home 1 leaves home 2 alone.
    let out = homes
        .handle_bytes(1, T0.plus(5), c.peer(), &c.release(&got[0]))
        .expect("home 1");
    commit(out, &store);
    let bound = |homes: &Homes, home| {
        homes
            .get(home)
            .expect("home")
            .bindings()
            .filter(|r| r.state == BindingState::Bound)
            .count()
    };
    assert_eq!(bound(&homes, 1), 0);
    assert_eq!(bound(&homes, 2), 2);
    let na = homes.usage(IaKind::Na);
    assert_eq!((na.capacity, na.bound, na.remembered), (2 * 4096, 1, 1));
    assert_eq!(homes.usage(IaKind::Pd).capacity, 2 * 15);

    // Expiry runs per home, and only where something is due.
    let end = T0.plus(u64::from(DEFAULT_VALID_SECS));
    assert_eq!(homes.next_deadline(), Some(end));
    let outs = homes.expire(end);
    assert_eq!(outs.len(), 1);
    assert_eq!(outs[0].home, 2);
    assert!(homes.expire(end).is_empty());

    assert!(homes.remove(2).is_some());
    assert_eq!(
        homes
            .handle_bytes(2, end, c.peer(), &c.solicit())
            .map(|_| ()),
        Err(DropReason::UnknownHome)
    );
    assert!(!homes.is_empty());
}
