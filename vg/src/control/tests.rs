//! The control plane's start-up and API decisions against an in-memory store.

use super::*;
use crate::store::MemorySubscriberStore;

const NAT: &str = "[nat]\npool = [\"198.51.100.0/30\"]\nblock_size = 4032\n";

fn file(id: u32, lsl: &str) -> SubscriberFile {
    serde_json::from_value(serde_json::json!({"id": id, "lsl": lsl})).unwrap()
}

fn api_home(id: u32, lsl: &str) -> SubscriberOp {
    SubscriberOp::Put(Box::new(StoredSubscriber {
        source: Source::Api,
        subscriber: file(id, lsl),
    }))
}

fn start(toml: &str, store: &Arc<MemorySubscriberStore>) -> Control {
    let config = Config::from_toml(toml).unwrap();
    let store: Arc<dyn SubscriberStore> = Arc::clone(store) as _;
    Control::start(config, store, BlockLog::disabled(), 1, UnixTime(1_000)).unwrap()
}

#[test]
fn the_file_wins_and_api_homes_come_back() {
    let store = Arc::new(MemorySubscriberStore::default());
    store
        .commit(&[
            api_home(5, "vlan:5"),
            // Same id as a file home: the file replaces it.
            api_home(1, "vlan:99"),
            // Its LSL is a file home's: skipped, kept in the store.
            api_home(6, "vlan:2"),
            SubscriberOp::Put(Box::new(StoredSubscriber {
                source: Source::Config,
                subscriber: file(3, "vlan:3"),
            })),
        ])
        .unwrap();
    let c = start(
        &format!(
            "{NAT}[[subscriber]]\nid = 1\nlsl = \"vlan:1\"\n[[subscriber]]\nid = 2\nlsl = \"vlan:2\"\n"
        ),
        &store,
    );
    let ids: Vec<u32> = c.list().iter().map(|v| v.subscriber.id).collect();
    assert_eq!(ids, vec![1, 2, 5]);
    assert_eq!(c.get(1).unwrap().subscriber.lsl, "vlan:1");
    assert_eq!(c.get(1).unwrap().source, Source::Config);
    assert_eq!(c.get(5).unwrap().source, Source::Api);
    let state = store.load_state().unwrap();
    assert!(
        !state.subscribers.contains_key(&3),
        "a home removed from the file is deleted"
    );
    assert!(
        state.subscribers.contains_key(&6),
        "a skipped API home stays stored"
    );
    assert_eq!(state.subscribers[&1].source, Source::Config);
    // Every loaded home has blocks, stored with their start time.
    for id in [1, 2, 5] {
        let n = &state.nat[&id];
        assert_eq!(n.blocks.len(), 1);
        assert_eq!(n.blocks[0].since, UnixTime(1_000));
    }
    assert!(c.get(6).is_err());
}

#[test]
fn stored_homes_that_clash_or_are_invalid_are_skipped_and_kept() {
    let store = Arc::new(MemorySubscriberStore::default());
    // A gateway no home can have (accepted before the rule existed).
    let mut nonsense = file(9, "vlan:9");
    nonsense.gateway = "192.168.1.1/0".into();
    store
        .commit(&[
            api_home(5, "qinq:10.102"),
            // One fast-path key with home 5: skipped.
            api_home(6, "qinq-9100:10.102"),
            // Its outer tag is the file's vlan:101: skipped.
            api_home(7, "qinq-8100:101.5"),
            SubscriberOp::Put(Box::new(StoredSubscriber {
                source: Source::Api,
                subscriber: nonsense,
            })),
        ])
        .unwrap();
    let c = start("[[subscriber]]\nid = 1\nlsl = \"vlan:101\"\n", &store);
    let ids: Vec<u32> = c.list().iter().map(|v| v.subscriber.id).collect();
    assert_eq!(ids, vec![1, 5]);
    let state = store.load_state().unwrap();
    for id in [6, 7, 9] {
        assert!(state.subscribers.contains_key(&id), "{id} stays stored");
    }
}

#[test]
fn api_homes_that_clash_are_conflicts() {
    let store = Arc::new(MemorySubscriberStore::default());
    let mut c = start(
        "[[subscriber]]\nid = 1\nlsl = \"vlan:101\"\n[[subscriber]]\nid = 2\nlsl = \"qinq:10.102\"\n",
        &store,
    );
    let now = UnixTime(2_000);
    for (lsl, other) in [
        ("qinq-9100:10.102", "subscriber 2"),
        ("qinq-8100:10.102", "subscriber 2"),
        ("qinq-8100:101.5", "subscriber 1"),
    ] {
        match c.create(file(3, lsl), now) {
            Err(ControlError::Conflict(e)) => {
                assert!(e.contains(lsl) && e.contains(other), "{lsl}: {e}")
            }
            other => panic!("{lsl}: {other:?}"),
        }
    }
    // In one batch: the second clashes with the first.
    match c.create_many(vec![file(3, "vlan:103"), file(4, "qinq-8100:103.7")], now) {
        Err(ControlError::Conflict(e)) => {
            assert!(
                e.contains("subscribers[1]") && e.contains("subscriber 3"),
                "{e}"
            )
        }
        other => panic!("{other:?}"),
    }
    // An update onto another home's key or prefix, too.
    match c.update(2, file(2, "qinq-8100:101.5"), now) {
        Err(ControlError::Conflict(e)) => assert!(e.contains("subscriber 1"), "{e}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(c.len(), 2, "nothing was created");
    assert_eq!(store.load_state().unwrap().subscribers.len(), 2);
}

#[test]
fn blocks_survive_restarts_and_a_bigger_pool() {
    let store = Arc::new(MemorySubscriberStore::default());
    let homes = "[[subscriber]]\nid = 1\nlsl = \"vlan:1\"\n[[subscriber]]\nid = 2\nlsl = \"vlan:2\"\n\
                 [[subscriber]]\nid = 3\nlsl = \"vlan:3\"\nnat = { blocks = 2 }\n";
    let first = start(&format!("{NAT}{homes}"), &store).nat_blocks();
    let again = start(&format!("{NAT}{homes}"), &store).nat_blocks();
    let key = |v: &Vec<NatAssignmentView>| {
        v.iter()
            .map(|a| {
                (
                    a.subscriber,
                    a.public_ip,
                    a.blocks
                        .iter()
                        .map(|b| (b.first_port, b.since))
                        .collect::<Vec<_>>(),
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(key(&again), key(&first));
    assert_eq!(
        first
            .iter()
            .find(|a| a.subscriber == 3)
            .unwrap()
            .blocks
            .len(),
        2
    );
    let grown = NAT.replace(
        "[\"198.51.100.0/30\"]",
        "[\"198.51.100.0/30\", \"203.0.113.0/29\"]",
    );
    let bigger = start(&format!("{grown}{homes}"), &store).nat_blocks();
    assert_eq!(key(&bigger), key(&first), "a bigger pool moved homes");
    // A smaller pool: the homes on the removed address get new blocks elsewhere.
    let moved_from: Vec<u32> = first
        .iter()
        .filter(|a| a.public_ip == Ipv4Addr::new(198, 51, 100, 2))
        .map(|a| a.subscriber)
        .collect();
    let smaller = NAT.replace("[\"198.51.100.0/30\"]", "[\"198.51.100.1/32\"]");
    let after = start(&format!("{smaller}{homes}"), &store).nat_blocks();
    for a in &after {
        assert_eq!(a.public_ip, Ipv4Addr::new(198, 51, 100, 1));
        if !moved_from.contains(&a.subscriber) {
            let before = first.iter().find(|b| b.subscriber == a.subscriber).unwrap();
            assert_eq!(a.blocks[0].first_port, before.blocks[0].first_port);
        }
    }
}
