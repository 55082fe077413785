//! Arbitrary bytes through the DHCP engine's decode + handle path, as a session.
//!
//! Input: one knob byte (configuration variant, relayed messages served or not), then
//! records of
//! `[time step: u8][length: u16 BE][message bytes]`; a time step of 255 also runs the timer.
//! Nothing may panic; after every step the engine's indexes are consistent, every reply
//! decodes and fits the largest allowed size, and the store (fed every outcome, in order)
//! holds exactly the engine's leases, so a restore from it reproduces the engine.
#![no_main]

use dhcproto::v4::Message;
use dhcproto::{Decodable, Decoder};
use libfuzzer_sys::fuzz_target;
use vg_engines::dhcp::{
    Destination, DhcpConfig, DhcpConfigWire, HomeServer, LeaseRecord, LeaseStore, MemoryStore,
    Outcome, Relayed, ReservationWire, UnixTime,
};

const HOME: u32 = 1;

fn config(knobs: u8) -> DhcpConfig {
    let mut wire = DhcpConfigWire {
        range_start: Some([192, 168, 1, 100].into()),
        range_end: Some([192, 168, 1, 100 + (knobs & 3)].into()),
        lease_time_secs: Some(60 + 60 * u32::from(knobs >> 6)),
        offer_hold_secs: Some(10),
        decline_quarantine_secs: Some(120),
        dns_servers: vec![[192, 0, 2, 53].into()],
        domain_name: (knobs & 4 != 0).then(|| "home.arpa".to_owned()),
        mtu: (knobs & 8 != 0).then_some(1450),
        relayed: (knobs & 32 != 0).then_some(Relayed::Serve),
        ..DhcpConfigWire::default()
    };
    if knobs & 16 != 0 {
        // A reservation for the MAC the seeds use most, outside and inside the range.
        wire.reservations.push(ReservationWire {
            mac: "02:42:ac:11:00:01".into(),
            ip: [192, 168, 1, 10].into(),
        });
        wire.reservations.push(ReservationWire {
            mac: "02:42:ac:11:00:02".into(),
            ip: [192, 168, 1, 101].into(),
        });
    }
    DhcpConfig::try_from(wire).expect("the fuzz configurations are valid")
}

fn apply(out: Outcome, store: &MemoryStore, config: &DhcpConfig) {
    if let Some(reply) = &out.reply {
        if let Destination::Relay { giaddr } = reply.dst {
            assert_eq!(config.relayed(), Relayed::Serve, "a relay answered by default");
            assert!(
                config.is_client_address(giaddr),
                "a reply to the relay {giaddr} outside the home"
            );
        }
        assert!(
            reply.payload.len() <= 1500 - 28,
            "reply larger than any limit"
        );
        Message::decode(&mut Decoder::new(&reply.payload)).expect("our replies decode");
    }
    for event in &out.events {
        let _ = event.host_change();
    }
    out.commit(store).expect("the memory store does not fail");
}

fn same(server: &HomeServer, store: &MemoryStore) {
    let engine: Vec<&LeaseRecord> = server.leases().collect();
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
    if let Ok(msg) = vg_engines::dhcp::decode(rest) {
        let _ = server.clone().handle(now, &msg);
    }

    while let [step, hi, lo, tail @ ..] = rest {
        let len = usize::from(u16::from_be_bytes([*hi, *lo])).min(tail.len());
        let (bytes, tail) = tail.split_at(len);
        rest = tail;
        now = now.plus(u64::from(*step) * 3);
        match server.handle_bytes(now, bytes) {
            Ok(out) => apply(out, &store, &cfg),
            Err(reason) => {
                let _ = reason.label();
            }
        }
        if *step == 255 {
            apply(server.expire(now), &store, &cfg);
        }
        if let Err(e) = server.check_consistency() {
            panic!("inconsistent engine: {e}");
        }
        same(&server, &store);
    }

    let (restored, out) =
        HomeServer::restore(HOME, config(knobs), store.load(HOME).expect("load"), now);
    apply(out, &store, &cfg);
    if let Err(e) = restored.check_consistency() {
        panic!("inconsistent restored engine: {e}");
    }
    same(&restored, &store);
});
