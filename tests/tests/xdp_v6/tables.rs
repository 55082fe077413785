//! The control plane's interface to the IPv6 tables on the real (pinned) maps: the rules
//! `control::fake` mirrors (a prefix is never taken from another home, a removal only removes
//! the remover's own, neighbours are per home), and what the fast path then does with them.

use super::*;
use nerg_abi::{V6Neigh, v6_neigh_flags, v6_prefix_kind};
use vg::{
    control::tables::FastPathTables,
    fastpath::{
        maps::PinnedMaps,
        v6::{V6PrefixError, prefix_entry},
    },
};

fn net(s: &str) -> Ipv6Net {
    s.parse().unwrap()
}

#[test]
fn prefix_and_neighbour_rules_on_the_pinned_maps() {
    let mut rig = rig("v6tab", &[]);
    let mut maps = PinnedMaps::open(rig.pins.path()).unwrap();
    let home = HOMES[0];
    // The rig wrote each home's LAN and delegated prefix.
    let entries = maps.v6_prefix_entries();
    assert_eq!(entries.len(), 2 * HOMES.len());
    assert!(entries.contains(&(
        home.lan(),
        prefix_entry(home.id, v6_prefix_kind::LAN, home.gateway())
    )));
    // Another home's prefix is never replaced; its own is updated.
    let taken = maps.insert_v6_prefix(
        home.lan(),
        prefix_entry(HOMES[1].id, v6_prefix_kind::LAN, home.gateway()),
    );
    assert!(
        matches!(taken, Err(V6PrefixError::Taken { owner }) if owner == home.id),
        "{taken:?}"
    );
    let moved_router = Ipv6Addr::new(0x2001, 0xdb8, 0, home.seg(), 0, 0, 0, 0x21);
    maps.insert_v6_prefix(
        home.delegated(),
        prefix_entry(home.id, v6_prefix_kind::DELEGATED, moved_router),
    )
    .unwrap();
    // Host bits are ignored: the entry is the prefix's.
    let with_host_bits = Ipv6Net::new(home.behind_router(), 60).unwrap();
    assert!(
        !maps.remove_v6_prefix(with_host_bits, HOMES[1].id).unwrap(),
        "not home 2's"
    );
    // A /64 inside home 1's delegated /60 is nobody's exact entry.
    let inner = net(&format!("{}/64", home.behind_router()));
    assert!(!maps.remove_v6_prefix(inner, home.id).unwrap());
    // Neighbours are per home.
    let n = V6Neigh {
        mac: [2, 0, 0, 0, 0, 0x44],
        flags: v6_neigh_flags::STALE,
        ..V6Neigh::default()
    };
    let addr = Ipv6Addr::new(0x2001, 0xdb8, 0, home.seg(), 0, 0, 0, 0x44);
    maps.insert_neighbour(home.id, addr, n).unwrap();
    let of = maps.neighbours_of(home.id);
    assert_eq!(of.len(), 3, "host, router, and the new one: {of:?}");
    assert!(of.contains(&(addr, n)));
    assert!(
        maps.neighbours_of(HOMES[1].id)
            .iter()
            .all(|(a, _)| *a != addr)
    );
    assert!(
        !maps.remove_neighbour(HOMES[1].id, addr).unwrap(),
        "not home 2's"
    );

    // The fast path follows: a STALE neighbour is used; the delegated prefix now goes to the
    // moved router, which has no entry yet (a miss); removed, the prefix is the kernel's.
    let (v, out) = rig.down(&udp_down(&rig, addr, 64));
    assert_eq!(v, XdpVerdict::Redirect);
    assert_eq!(&out[0..6], &n.mac);
    assert_eq!(
        rig.down(&udp_down(&rig, home.behind_router(), 64)).0,
        XdpVerdict::Drop
    );
    assert_eq!(
        rig.punts().len(),
        1,
        "a neighbour miss for the moved router"
    );
    assert!(maps.remove_v6_prefix(with_host_bits, home.id).unwrap());
    assert_eq!(
        rig.down(&udp_down(&rig, home.behind_router(), 64)).0,
        XdpVerdict::Pass
    );
    assert!(maps.remove_neighbour(home.id, addr).unwrap());
    assert!(
        !maps.remove_neighbour(home.id, addr).unwrap(),
        "gone already"
    );
    assert_eq!(
        rig.down(&udp_down(&rig, addr, 64)).0,
        XdpVerdict::Drop,
        "a miss again"
    );
    assert_eq!(maps.v6_prefix_entries().len(), 2 * HOMES.len() - 1);
}

/// The verifier's work per program (`verified_insns`): printed for the record, and held
/// under the kernel's one-million limit with room to spare, so that growth shows here first.
/// `vg_access` is the heavy one (about 490,000, as before IPv6: the IPv6 path is `vg_home6`,
/// a program of its own); the others are a few thousand to twenty thousand.
#[test]
fn every_program_verifies_well_within_the_limit() {
    let mut rig = rig("v6ver", &[]);
    for name in [
        program_names::ACCESS,
        program_names::CORE,
        program_names::DELIVER,
        program_names::HOME6,
    ] {
        let info = rig.fp.program(name).unwrap().info().unwrap();
        let insns = info
            .verified_instruction_count()
            .expect("the kernel reports verified_insns");
        println!(
            "{name}: {insns} instructions verified, {} bytes translated",
            info.size_translated().unwrap_or(0)
        );
        let bound = if name == program_names::ACCESS {
            600_000
        } else {
            100_000
        };
        assert!(insns < bound, "{name}: {insns} verified instructions");
    }
}
