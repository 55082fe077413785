//! Arbitrary bytes through the DHCPv6 engine's decode + handle path, as a session.
//!
//! Input: one knob byte (configuration variant), then records of
//! `[time step: u8][peer: u8][length: u16 BE][message bytes]`; a time step of 255 also runs
//! the timer, and the peer byte picks one of a few clients (the last ones with a source that
//! must be refused). Nothing may panic; after every step the engine's indexes are
//! consistent, every reply decodes, fits one packet and answers the request's transaction,
//! every bound lease is one the configuration allows, and the store (fed every outcome, in
//! order) holds exactly the engine's bindings, so a restore from it reproduces the engine.
#![no_main]

use std::net::Ipv6Addr;

use dhcproto::v6::Message;
use dhcproto::{Decodable, Decoder};
use libfuzzer_sys::fuzz_target;
use vg_engines::dhcp::{MacAddr, UnixTime};
use vg_engines::dhcp6::{
    BindingRecord, BindingStore, Dhcp6Config, Dhcp6Settings, Event, HomeServer, MAX_MESSAGE_LEN,
    MemoryStore, Outcome, Peer,
};

const HOME: u32 = 1;

fn config(knobs: u8) -> Dhcp6Config {
    let mut s = Dhcp6Settings::new(
        "2001:db8:0:100::/64".parse().expect("lan"),
        (knobs & 4 == 0).then(|| "2001:db8:0:100::/62".parse().expect("delegated")),
        MacAddr([2, 0, 0x5e, 0x10, 0, 1]),
    );
    // Tiny pools, so that exhaustion and reuse happen.
    s.iid_end = s.iid_start + u64::from(knobs & 3);
    s.pd_len = 64;
    s.valid_secs = 60 + 60 * u32::from(knobs >> 6);
    s.preferred_secs = 60;
    s.t1_secs = 30;
    s.t2_secs = 48;
    s.decline_quarantine_secs = 120;
    s.rapid_commit = knobs & 8 == 0;
    s.max_leases_per_client = 1 + u32::from((knobs >> 4) & 3);
    s.gateway = (knobs & 32 != 0).then(|| "2001:db8:0:100::1001".parse().expect("gateway"));
    s.dns_servers = vec!["2001:db8::53".parse().expect("dns")];
    s.domain_search = vec!["home.arpa".into()];
    Dhcp6Config::try_from(s).expect("the fuzz configurations are valid")
}

fn peer(n: u8) -> Peer {
    let n = n % 6;
    let mac = match n {
        5 => MacAddr([0x33, 0x33, 0, 0, 0, 1]),
        _ => MacAddr([0x52, 0x54, 0, 0x12, 0x34, 0x56 + n]),
    };
    let link_local = match n {
        4 => Ipv6Addr::new(0x2001, 0xdb8, 0, 0x100, 0, 0, 0, 9),
        _ => Ipv6Addr::new(0xfe80, 0, 0, 0, 0x5054, 0xff, 0xfe12, 0x3456 + u16::from(n)),
    };
    Peer { mac, link_local }
}

fn apply(out: Outcome, request: Option<&[u8]>, store: &MemoryStore, config: &Dhcp6Config) {
    if let Some(reply) = &out.reply {
        assert!(
            reply.payload.len() <= MAX_MESSAGE_LEN,
            "reply larger than a packet"
        );
        let msg = Message::decode(&mut Decoder::new(&reply.payload)).expect("our replies decode");
        if let Some(request) = request {
            assert_eq!(msg.xid()[..], request[1..4], "reply to another transaction");
        }
    }
    for event in &out.events {
        if let Event::Bound { lease, .. } = event {
            assert!(config.allows(lease), "bound a lease not allowed: {lease}");
        }
        let _ = event.fast_path_change();
    }
    out.commit(store).expect("the memory store does not fail");
}

fn same(server: &HomeServer, store: &MemoryStore) {
    let engine: Vec<&BindingRecord> = server.bindings().collect();
    let stored = store.load(HOME).expect("load");
    assert_eq!(
        engine,
        stored.iter().collect::<Vec<_>>(),
        "store and engine disagree"
    );
}

fuzz_target!(|data: &[u8]| {
    let Some((&knobs, mut rest)) = data.split_first() else {
        return;
    };
    let cfg = config(knobs);
    let mut server = HomeServer::new(HOME, cfg.clone());
    let store = MemoryStore::new();
    let mut now = UnixTime::from_secs(1_700_000_000);

    // Any bytes through the bare decoder too.
    if let Ok(msg) = vg_engines::dhcp6::decode(rest) {
        let _ = server.clone().handle(now, peer(0), &msg);
    }

    while let [step, who, hi, lo, tail @ ..] = rest {
        let len = usize::from(u16::from_be_bytes([*hi, *lo])).min(tail.len());
        let (bytes, tail) = tail.split_at(len);
        rest = tail;
        now = now.plus(u64::from(*step) * 3);
        match server.handle_bytes(now, peer(*who), bytes) {
            Ok(out) => {
                assert!(*who % 6 < 4, "served a client with a bad source");
                apply(out, Some(bytes), &store, &cfg);
            }
            Err(reason) => {
                let _ = reason.label();
            }
        }
        if *step == 255 {
            apply(server.expire(now), None, &store, &cfg);
        }
        if let Err(e) = server.check_consistency() {
            panic!("inconsistent engine: {e}");
        }
        same(&server, &store);
    }

    apply(server.expire(now), None, &store, &cfg);
    let (restored, out) =
        HomeServer::restore(HOME, config(knobs), store.load(HOME).expect("load"), now);
    assert!(
        out.is_empty(),
        "a restore right after the engine changed something: {out:?}"
    );
    if let Err(e) = restored.check_consistency() {
        panic!("inconsistent restored engine: {e}");
    }
    same(&restored, &store);
});
