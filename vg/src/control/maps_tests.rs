//! What the control plane writes into the fast path's tables, checked against
//! [`FakeTables`] after each decision: the start-up reconcile over the maps a vgd before left,
//! create, update (a moved LSL, a moved public address), delete, a key held by another home,
//! and a store that refuses. No root, no eBPF.

use std::{
    collections::BTreeSet,
    sync::atomic::{AtomicBool, Ordering},
};

use std::net::Ipv6Addr;

use nerg_abi::V6Neigh;

use super::{fake::FakeTables, *};
use crate::{
    fastpath::reconcile::{LslKey, lsl_key},
    store::MemorySubscriberStore,
};

const NAT: &str = "[nat]\npool = [\"198.51.100.0/30\"]\nblock_size = 4032\n";
const IFINDEX: u32 = 1;
const NOW: UnixTime = UnixTime(2_000);

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

fn raw(s: &str) -> u32 {
    ip_raw(ip(s))
}

fn key(lsl: &str) -> LslKey {
    lsl_key(&lsl.parse().unwrap(), IFINDEX)
}

fn file(json: serde_json::Value) -> SubscriberFile {
    serde_json::from_value(json).unwrap()
}

fn host(ip: &str, flags: u8) -> (HostKey, Host) {
    (
        HostKey {
            sub: 0,
            ip: raw(ip),
        },
        Host {
            mac: [2, 0, 0, 0, 0, 9],
            flags,
            _pad: 0,
        },
    )
}

fn host_of(sub: SubscriberId, ip: &str, flags: u8) -> (HostKey, Host) {
    let (mut k, h) = host(ip, flags);
    k.sub = sub;
    (k, h)
}

/// The slow path, as far as the control plane asks it: the leases of a home.
#[derive(Default)]
struct Leases(BTreeMap<SubscriberId, Vec<Ipv4Addr>>);

impl SlowPathHomes for Leases {
    fn add_home(&self, _: &SubscriberConfig) {}
    fn update_home(&self, _: &SubscriberConfig, _: UnixTime) {}
    fn remove_home(&self, _: SubscriberId) {}
    fn leases(&self, id: SubscriberId) -> Result<Vec<LeaseRecord>, String> {
        Ok(self
            .0
            .get(&id)
            .into_iter()
            .flatten()
            .map(|&ip| {
                let mac = crate::dhcp::MacAddr([2, 0, 0, 0, 0, 7]);
                LeaseRecord {
                    home: id,
                    ip,
                    client_id: crate::dhcp::ClientId::Mac(mac),
                    mac,
                    state: crate::dhcp::LeaseState::Bound,
                    time: crate::dhcp::UnixTime(9_999),
                    hostname: None,
                }
            })
            .collect())
    }
    fn leases_in_use(&self) -> usize {
        self.0.values().map(Vec::len).sum()
    }
}

/// A store that refuses commits while `fail` is set.
#[derive(Default)]
struct Flaky {
    inner: MemorySubscriberStore,
    fail: AtomicBool,
}

impl SubscriberStore for Flaky {
    fn load_state(&self) -> Result<crate::store::StoredState, SubscriberStoreError> {
        self.inner.load_state()
    }
    fn commit(&self, ops: &[SubscriberOp]) -> Result<(), SubscriberStoreError> {
        if self.fail.load(Ordering::Relaxed) {
            return Err(SubscriberStoreError {
                what: "committing a change of homes",
                source: "disk full".into(),
            });
        }
        self.inner.commit(ops)
    }
}

/// A control plane started from `toml` over `store`, reconciled into `tables`.
fn started(toml: &str, store: Arc<dyn SubscriberStore>, tables: &FakeTables) -> Control {
    let config = Config::from_toml(toml).unwrap();
    let mut c = Control::start(config, store, BlockLog::disabled(), IFINDEX, NOW).unwrap();
    c.reconcile(Box::new(tables.clone())).unwrap();
    c.attach(Box::new(Leases::default()));
    c
}

const HOMES: &str = "[[subscriber]]\nid = 1\nlsl = \"vlan:1\"\n\
    hosts = [{ ip = \"192.168.1.10\", mac = \"02:00:00:00:00:10\" }]\n\
    [[subscriber]]\nid = 2\nlsl = \"vlan:2\"\n\
    port_forwards = [{ proto = \"tcp\", public_port = 1030, private_ip = \"192.168.1.20\", private_port = 22 }]\n";

#[test]
fn the_start_up_reconcile_writes_every_home_and_removes_what_the_vgd_before_left() {
    let tables = FakeTables::default();
    {
        let mut t = tables.state();
        // A home deleted while vgd was down, and a key that another home had.
        t.lsls.insert(key("vlan:9"), 9);
        t.lsls.insert(key("vlan:2"), 8);
        t.slots.insert(
            9,
            nerg_abi::Subscriber {
                flags: 1,
                ..Default::default()
            },
        );
        t.hosts.extend([
            host_of(9, "192.168.1.50", host_flags::STATIC),
            // Home 1's leased host stays (the responder restores its lease); a static host
            // it no longer lists goes.
            host_of(1, "192.168.1.100", 0),
            host_of(1, "192.168.1.11", host_flags::STATIC),
        ]);
        t.public_ips.insert(raw("203.0.113.9"));
    }
    let store: Arc<dyn SubscriberStore> = Arc::new(MemorySubscriberStore::default());
    let config = Config::from_toml(&format!("{NAT}{HOMES}")).unwrap();
    let mut c = Control::start(
        config,
        Arc::clone(&store),
        BlockLog::disabled(),
        IFINDEX,
        NOW,
    )
    .unwrap();
    let report = c.reconcile(Box::new(tables.clone())).unwrap();
    assert_eq!(
        report,
        ReconcileReport {
            subscribers: 2,
            removed_subscribers: 2,
            removed_lsls: 2,
            hosts: 1,
            removed_hosts: 2,
        }
    );
    let t = tables.state().clone();
    assert_eq!(t.lsl_owner(&key("vlan:1")), Some(1));
    assert_eq!(t.lsl_owner(&key("vlan:2")), Some(2));
    assert_eq!(t.lsls.len(), 2, "home 9's key is gone");
    assert!(t.slot(9).is_none() && t.slot(8).is_none());
    for id in [1, 2] {
        let slot = t.slot(id).expect("a live slot");
        assert_eq!(
            Some(Ipv4Addr::from(slot.public_ip.to_ne_bytes())),
            c.public_ip(id)
        );
    }
    let mut hosts: Vec<(u32, Ipv4Addr)> = t
        .hosts
        .keys()
        .map(|k| (k.sub, Ipv4Addr::from(k.ip.to_ne_bytes())))
        .collect();
    hosts.sort();
    assert_eq!(
        hosts,
        vec![(1, ip("192.168.1.10")), (1, ip("192.168.1.100"))]
    );
    // Exactly the pool, and its span.
    let pool: BTreeSet<u32> = c
        .config()
        .nat
        .as_ref()
        .unwrap()
        .pool()
        .addresses()
        .iter()
        .map(|&a| ip_raw(a))
        .collect();
    assert_eq!(
        pool.len(),
        2,
        "the /30 without its network and broadcast addresses"
    );
    assert_eq!(t.public_ips, pool);
    let span = pool.iter().fold(nerg_abi::PublicRange::default(), |r, ip| {
        r.with(u32::from_be(*ip))
    });
    assert_eq!(t.range, span);
    // Home 2's forward is in the NAT tables, both directions.
    assert_eq!(t.fwd.len(), 1);
    assert_eq!(t.rev.len(), 1);

    // Again, over what it wrote (a vgd restarted with nothing changed): nothing goes.
    let mut again = Control::start(
        Config::from_toml(&format!("{NAT}{HOMES}")).unwrap(),
        store,
        BlockLog::disabled(),
        IFINDEX,
        NOW,
    )
    .unwrap();
    let report = again.reconcile(Box::new(tables.clone())).unwrap();
    assert_eq!(
        (
            report.removed_lsls,
            report.removed_hosts,
            report.removed_subscribers
        ),
        (0, 0, 0)
    );
    let after = tables.state().clone();
    assert_eq!(after.lsls, t.lsls);
    assert_eq!(after.hosts, t.hosts);
    assert_eq!(after.slots, t.slots);
    assert_eq!(
        (after.fwd.len(), after.public_ips.len()),
        (1, t.public_ips.len())
    );
}

#[test]
fn a_home_created_moved_and_deleted_leaves_the_tables_as_the_homes_are() {
    let tables = FakeTables::default();
    let store: Arc<dyn SubscriberStore> = Arc::new(MemorySubscriberStore::default());
    let mut c = started(NAT, store, &tables);
    let mut leases = Leases::default();
    leases.0.insert(3, vec![ip("192.168.1.100")]);
    c.attach(Box::new(leases));
    let home = serde_json::json!({
        "id": 3, "lsl": "vlan:3",
        "hosts": [{ "ip": "192.168.1.10", "mac": "02:00:00:00:00:10" }],
        "port_forwards": [{ "proto": "tcp", "public_port": 1030, "private_ip": "192.168.1.10", "private_port": 22 }],
    });
    c.create(file(home.clone()), NOW).unwrap();
    let public = c.public_ip(3).unwrap();
    {
        let t = tables.state();
        assert_eq!(t.lsl_owner(&key("vlan:3")), Some(3));
        assert_eq!(t.slot(3).unwrap().public_ip, ip_raw(public));
        assert!(t.hosts.contains_key(&host_key(3, ip("192.168.1.10"))));
        assert_eq!(t.fwd.len(), 1);
        assert_eq!(
            Ipv4Addr::from(t.rev.keys().next().unwrap().pub_ip.to_ne_bytes()),
            public
        );
    }

    // Another LSL: the new key is the home's, the old one gone.
    let mut moved = home.clone();
    moved["lsl"] = "qinq:10.3".into();
    c.update(3, file(moved.clone()), NOW).unwrap();
    {
        let t = tables.state();
        assert_eq!(t.lsl_owner(&key("qinq:10.3")), Some(3));
        assert_eq!(t.lsl_owner(&key("vlan:3")), None);
        assert_eq!(t.lsls.len(), 1);
    }

    // Another public address: its forward moves with it, nothing stays on the old one.
    let other = if public == ip("198.51.100.1") {
        "198.51.100.2"
    } else {
        "198.51.100.1"
    };
    moved["nat"] = serde_json::json!({ "public_ip": other });
    c.update(3, file(moved), NOW).unwrap();
    {
        let t = tables.state();
        assert_eq!(c.public_ip(3), Some(ip(other)));
        assert_eq!(t.slot(3).unwrap().public_ip, raw(other));
        let publics: Vec<Ipv4Addr> = t
            .rev
            .keys()
            .map(|k| Ipv4Addr::from(k.pub_ip.to_ne_bytes()))
            .collect();
        assert_eq!(publics, vec![ip(other)]);
        assert_eq!(t.fwd.len(), 1);
    }

    // Deleted: no key, an empty slot, no host (static or leased), no mapping.
    tables
        .state()
        .hosts
        .extend([host_of(3, "192.168.1.100", 0)]);
    c.delete(3, NOW).unwrap();
    let t = tables.state();
    assert!(t.lsls.is_empty());
    assert!(t.slot(3).is_none());
    assert_eq!(t.removed_slots, vec![3]);
    assert!(t.hosts.is_empty(), "{:?}", t.hosts);
    assert!(t.fwd.is_empty() && t.rev.is_empty());
}

#[test]
fn a_key_another_home_holds_is_left_to_it() {
    let tables = FakeTables::default();
    let store: Arc<dyn SubscriberStore> = Arc::new(MemorySubscriberStore::default());
    let mut c = started(NAT, store, &tables);
    // Maps out of step with the control plane (a bug, or a hand edit): home 99 holds vlan:4.
    tables.state().lsls.insert(key("vlan:4"), 99);
    match c.create(file(serde_json::json!({ "id": 4, "lsl": "vlan:4" })), NOW) {
        Err(ControlError::Conflict(e)) => assert!(e.contains("subscriber 99"), "{e}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(tables.state().lsl_owner(&key("vlan:4")), Some(99));
}

#[test]
fn a_store_that_refuses_leaves_the_tables_untouched() {
    let tables = FakeTables::default();
    let store = Arc::new(Flaky::default());
    let mut c = started(&format!("{NAT}{HOMES}"), Arc::clone(&store) as _, &tables);
    let before = tables.state().clone();
    store.fail.store(true, Ordering::Relaxed);
    assert!(matches!(
        c.create(file(serde_json::json!({ "id": 5, "lsl": "vlan:5" })), NOW),
        Err(ControlError::Store(_))
    ));
    assert!(matches!(
        c.update(
            1,
            file(serde_json::json!({ "id": 1, "lsl": "vlan:11" })),
            NOW
        ),
        Err(ControlError::Store(_))
    ));
    assert!(matches!(c.delete(2, NOW), Err(ControlError::Store(_))));
    let after = tables.state().clone();
    assert_eq!(after.lsls, before.lsls);
    assert_eq!(after.slots, before.slots);
    assert_eq!(after.hosts, before.hosts);
    assert_eq!(after.fwd, before.fwd);
    assert_eq!(c.len(), 2);
    assert_eq!(c.get(1).unwrap().subscriber.lsl, "vlan:1");
}

const V6: &str = "[ipv6]\npools = [\"2001:db8:100::/54\"]\nhold_down_secs = 600\n";

fn prefix_of(c: &Control, id: SubscriberId) -> Option<String> {
    c.prefix(id).map(|a| a.prefix.to_string())
}

#[test]
fn homes_keep_their_prefixes_across_restarts_and_a_removed_homes_prefix_rests() {
    let tables = FakeTables::default();
    let store = Arc::new(MemorySubscriberStore::default());
    let three =
        format!("{HOMES}[[subscriber]]\nid = 3\nlsl = \"vlan:3\"\nipv6 = {{ length = 60 }}\n");
    let c = started(
        &format!("{NAT}{V6}{three}"),
        Arc::clone(&store) as _,
        &tables,
    );
    assert_eq!(prefix_of(&c, 1).as_deref(), Some("2001:db8:100::/56"));
    assert_eq!(prefix_of(&c, 2).as_deref(), Some("2001:db8:100:100::/56"));
    assert_eq!(prefix_of(&c, 3).as_deref(), Some("2001:db8:100:200::/60"));
    let view = c.get(3).unwrap();
    assert_eq!(
        view.ipv6_assignment.map(|v| v.lan.to_string()).as_deref(),
        Some("2001:db8:100:200::/64")
    );
    assert_eq!(store.load_state().unwrap().prefixes.len(), 3);
    drop(c);
    // Home 2 leaves the file, home 4 joins: 1 and 3 keep theirs, 2's rests, 4 gets a new one.
    let four = "[[subscriber]]\nid = 1\nlsl = \"vlan:1\"\n[[subscriber]]\nid = 3\nlsl = \"vlan:3\"\n\
         ipv6 = { length = 60 }\n[[subscriber]]\nid = 4\nlsl = \"vlan:4\"\n";
    let c = started(
        &format!("{NAT}{V6}{four}"),
        Arc::clone(&store) as _,
        &tables,
    );
    assert_eq!(prefix_of(&c, 1).as_deref(), Some("2001:db8:100::/56"));
    assert_eq!(prefix_of(&c, 3).as_deref(), Some("2001:db8:100:200::/60"));
    assert_eq!(prefix_of(&c, 4).as_deref(), Some("2001:db8:100:300::/56"));
    let state = store.load_state().unwrap();
    assert_eq!(
        state.held_prefixes,
        vec![crate::ipv6::HeldPrefix {
            prefix: "2001:db8:100:100::/56".parse().unwrap(),
            until: NOW.plus(600),
        }]
    );
    assert!(!state.prefixes.contains_key(&2));
    let pool = c.prefix_pool_view().unwrap();
    assert_eq!((pool.assigned, pool.held, pool.capacity), (3, 1, 4.0));
    drop(c);
    // Without [ipv6] nothing is lost: the section back, the prefixes are the same.
    let v4_only = four.replace("ipv6 = { length = 60 }\n", "");
    let c = started(&format!("{NAT}{v4_only}"), Arc::clone(&store) as _, &tables);
    assert_eq!(prefix_of(&c, 1), None);
    drop(c);
    let c = started(
        &format!("{NAT}{V6}{four}"),
        Arc::clone(&store) as _,
        &tables,
    );
    assert_eq!(prefix_of(&c, 3).as_deref(), Some("2001:db8:100:200::/60"));
    assert_eq!(prefix_of(&c, 4).as_deref(), Some("2001:db8:100:300::/56"));
}

#[test]
fn the_api_assigns_moves_and_releases_prefixes_and_a_refusing_store_changes_none() {
    let tables = FakeTables::default();
    let store = Arc::new(Flaky::default());
    let mut c = started(
        &format!("{NAT}{V6}{HOMES}"),
        Arc::clone(&store) as _,
        &tables,
    );
    let v = c
        .create(file(serde_json::json!({ "id": 5, "lsl": "vlan:5" })), NOW)
        .unwrap();
    assert_eq!(
        v.ipv6_assignment.map(|a| a.prefix.to_string()).as_deref(),
        Some("2001:db8:100:200::/56")
    );
    // The pools hold four /56s: the fifth home is refused, and nothing of it stays.
    c.create(file(serde_json::json!({ "id": 6, "lsl": "vlan:6" })), NOW)
        .unwrap();
    assert!(matches!(
        c.create(file(serde_json::json!({ "id": 7, "lsl": "vlan:7" })), NOW),
        Err(ControlError::Conflict(e)) if e.contains("no free /56")
    ));
    assert!(c.get(7).is_err());
    // IPv4 only: its prefix rests.
    c.update(
        6,
        file(serde_json::json!({ "id": 6, "lsl": "vlan:6", "ipv6": { "enabled": false } })),
        NOW,
    )
    .unwrap();
    assert_eq!(prefix_of(&c, 6), None);
    assert_eq!(store.inner.load_state().unwrap().held_prefixes.len(), 1);
    // A store that refuses: no prefix moves.
    store.fail.store(true, Ordering::Relaxed);
    let before: Vec<_> = (1..=6).map(|id| prefix_of(&c, id)).collect();
    assert!(matches!(
        c.update(
            1,
            file(serde_json::json!({ "id": 1, "lsl": "vlan:1", "ipv6": { "prefix": "2001:db8:100::/60" } })),
            NOW
        ),
        Err(ControlError::Store(_))
    ));
    assert!(matches!(
        c.create(
            file(serde_json::json!({ "id": 8, "lsl": "vlan:8", "ipv6": { "prefix": "2001:db8:100:300::/60" } })),
            NOW
        ),
        Err(ControlError::Store(_))
    ));
    assert!(matches!(c.delete(2, NOW), Err(ControlError::Store(_))));
    let after: Vec<_> = (1..=6).map(|id| prefix_of(&c, id)).collect();
    assert_eq!(after, before);
    assert_eq!(c.prefix_pool_view().unwrap().held, 1);
    store.fail.store(false, Ordering::Relaxed);
    // Deleted: its prefix rests, in the same transaction as the removal.
    c.delete(5, NOW).unwrap();
    let state = store.inner.load_state().unwrap();
    assert!(!state.prefixes.contains_key(&5));
    assert_eq!(state.held_prefixes.len(), 2);
    // Pinned into the held space of home 6: the operator's choice ends that hold-down.
    c.create(
        file(serde_json::json!({ "id": 8, "lsl": "vlan:8", "ipv6": { "prefix": "2001:db8:100:300::/60" } })),
        NOW,
    )
    .unwrap();
    assert_eq!(store.inner.load_state().unwrap().held_prefixes.len(), 1);
}

fn lan_entry(tables: &FakeTables, lan: &str) -> Option<SubscriberId> {
    let lan: ipnet::Ipv6Net = lan.parse().unwrap();
    tables.state().v6_prefixes.get(&lan).map(|e| e.sub)
}

fn has_v6_flag(tables: &FakeTables, id: SubscriberId) -> bool {
    tables
        .state()
        .slot(id)
        .is_some_and(|s| s.flags & nerg_abi::sub_flags::IPV6 != 0)
}

#[test]
fn each_homes_lan_is_in_the_prefix_trie_exactly_while_its_slot_says_ipv6() {
    let tables = FakeTables::default();
    let store = Arc::new(MemorySubscriberStore::default());
    // What a vgd before left: home 9 (gone) with a LAN and a neighbour, home 1 with a
    // neighbour outside its LAN-to-be.
    {
        let mut t = tables.state();
        let stale: ipnet::Ipv6Net = "2001:db8:100:300::/64".parse().unwrap();
        t.v6_prefixes.insert(
            stale,
            crate::fastpath::v6::prefix_entry(
                9,
                nerg_abi::v6_prefix_kind::LAN,
                Ipv6Addr::UNSPECIFIED,
            ),
        );
        t.neighbours.insert(
            (9, "2001:db8:100:300::5".parse().unwrap()),
            V6Neigh::default(),
        );
        t.neighbours.insert(
            (1, "2001:db8:100:300::6".parse().unwrap()),
            V6Neigh::default(),
        );
        t.neighbours
            .insert((1, "2001:db8:100::7".parse().unwrap()), V6Neigh::default());
    }
    let mut c = started(
        &format!("{NAT}{V6}{HOMES}"),
        Arc::clone(&store) as _,
        &tables,
    );
    assert_eq!(lan_entry(&tables, "2001:db8:100::/64"), Some(1));
    assert_eq!(lan_entry(&tables, "2001:db8:100:100::/64"), Some(2));
    assert_eq!(
        lan_entry(&tables, "2001:db8:100:300::/64"),
        None,
        "home 9's is gone"
    );
    let neighbours: Vec<_> = tables.state().neighbours.keys().copied().collect();
    assert_eq!(neighbours, vec![(1, "2001:db8:100::7".parse().unwrap())]);
    assert!(has_v6_flag(&tables, 1) && has_v6_flag(&tables, 2));
    let (lo, hi) = tables.state().v6_range.unwrap();
    // The LANs only: a delegated prefix joins when DHCPv6-PD hands it out.
    assert_eq!((lo, hi), (0x2001_0db8_0100_0000, 0x2001_0db8_0100_0100));
    // A new home: its LAN and the flag.
    c.create(file(serde_json::json!({ "id": 5, "lsl": "vlan:5" })), NOW)
        .unwrap();
    assert_eq!(lan_entry(&tables, "2001:db8:100:200::/64"), Some(5));
    assert!(has_v6_flag(&tables, 5));
    // IPv4 only: flag and LAN go.
    c.update(
        5,
        file(serde_json::json!({ "id": 5, "lsl": "vlan:5", "ipv6": { "enabled": false } })),
        NOW,
    )
    .unwrap();
    assert_eq!(lan_entry(&tables, "2001:db8:100:200::/64"), None);
    assert!(!has_v6_flag(&tables, 5));
    // A new prefix (the pinned one): the new LAN in, the old one out.
    c.update(
        2,
        file(serde_json::json!({ "id": 2, "lsl": "vlan:2", "port_forwards": [{ "proto": "tcp", "public_port": 1030, "private_ip": "192.168.1.20", "private_port": 22 }], "ipv6": { "prefix": "2001:db8:100:300::/60" } })),
        NOW,
    )
    .unwrap();
    assert_eq!(lan_entry(&tables, "2001:db8:100:300::/64"), Some(2));
    assert_eq!(lan_entry(&tables, "2001:db8:100:100::/64"), None);
    assert!(has_v6_flag(&tables, 2));
    // Deleted: its LAN goes.
    c.delete(1, NOW).unwrap();
    assert_eq!(lan_entry(&tables, "2001:db8:100::/64"), None);
    // A restart with the file as it was: home 2's pinned prefix is the API's (the file
    // wins), and every /56 of the pool is held down now: homes 1 and 2 run IPv4 only, and
    // the trie says so.
    drop(c);
    let c = started(
        &format!("{NAT}{V6}{HOMES}"),
        Arc::clone(&store) as _,
        &tables,
    );
    assert_eq!((c.prefix(1), c.prefix(2)), (None, None));
    assert!(tables.state().v6_prefixes.is_empty());
    assert!(!has_v6_flag(&tables, 1) && !has_v6_flag(&tables, 2));
    // A bigger pool: each gets a new /56, and the trie holds exactly their LANs.
    drop(c);
    let bigger = V6.replace("/54", "/52");
    let c = started(
        &format!("{NAT}{bigger}{HOMES}"),
        Arc::clone(&store) as _,
        &tables,
    );
    let lans: Vec<(ipnet::Ipv6Net, SubscriberId)> = tables
        .state()
        .v6_prefixes
        .iter()
        .map(|(p, e)| (*p, e.sub))
        .collect();
    let mut want: Vec<(ipnet::Ipv6Net, SubscriberId)> = [1, 2]
        .into_iter()
        .map(|id| (c.prefix(id).unwrap().lan(), id))
        .collect();
    want.sort();
    assert_eq!(lans, want);
    assert!(has_v6_flag(&tables, 1) && has_v6_flag(&tables, 2));
}
