//! Bad input: malformed or misaddressed messages are dropped with a reason, garbage never
//! panics.

use super::real_clients::fixtures;
use super::*;

#[test]
fn malformed_input_is_dropped_with_a_reason() {
    let c = Client::new(1);
    let good = c.solicit();
    let with = |edit: &dyn Fn(&mut Vec<u8>)| {
        let mut bytes = good.clone();
        edit(&mut bytes);
        bytes
    };
    let msg_of = |kind: MessageType, server: bool, edit: &dyn Fn(&mut Message)| {
        let mut msg = c.message(kind, server, &[], &[]);
        edit(&mut msg);
        encode(&msg)
    };
    let ia_na = |id: u32| {
        DhcpOption::IANA(IANA {
            id,
            t1: 0,
            t2: 0,
            opts: DhcpOptions::new(),
        })
    };
    let many_addrs = {
        let leases: Vec<Lease> = (0..9u16)
            .map(|i| Lease::Address(Ipv6Addr::new(0x2001, 0xdb8, 0, 0x100, 0, 0, 0, 0x1000 + i)))
            .collect();
        c.bytes(MessageType::Request, true, &leases)
    };
    let cases: Vec<(&str, Vec<u8>, DropReason)> = vec![
        ("empty", Vec::new(), DropReason::Truncated),
        ("three bytes", good[..3].to_vec(), DropReason::Truncated),
        (
            "too long",
            with(&|b| b.resize(MAX_MESSAGE_LEN + 1, 0)),
            DropReason::TooLong,
        ),
        (
            "an Advertise",
            with(&|b| b[0] = 2),
            DropReason::UnsupportedMessageType(2),
        ),
        (
            "a Reply",
            with(&|b| b[0] = 7),
            DropReason::UnsupportedMessageType(7),
        ),
        (
            "type 0",
            with(&|b| b[0] = 0),
            DropReason::UnsupportedMessageType(0),
        ),
        ("Relay-Forward", with(&|b| b[0] = 12), DropReason::Relayed),
        (
            "cut in an option",
            good[..good.len() - 1].to_vec(),
            DropReason::OptionOverrun { code: 8 },
        ),
        (
            "trailing byte",
            with(&|b| b.push(0)),
            DropReason::OptionOverrun { code: 0 },
        ),
        (
            "Rapid Commit with a body",
            with(&|b| b.extend_from_slice(&[0, 14, 0, 1, 0])),
            DropReason::BadOptionLength { code: 14 },
        ),
        (
            "a one-byte DUID",
            msg_of(MessageType::Solicit, false, &|m| {
                m.opts_mut().remove(OptionCode::ClientId);
                m.opts_mut().insert(DhcpOption::ClientId(vec![0]));
            }),
            DropReason::BadOptionLength { code: 1 },
        ),
        (
            "a 131-byte DUID",
            msg_of(MessageType::Solicit, false, &|m| {
                m.opts_mut().remove(OptionCode::ClientId);
                m.opts_mut().insert(DhcpOption::ClientId(vec![0; 131]));
            }),
            DropReason::BadOptionLength { code: 1 },
        ),
        (
            "two Client-IDs",
            msg_of(MessageType::Solicit, false, &|m| {
                m.opts_mut()
                    .insert(DhcpOption::ClientId(vec![0, 3, 0, 1, 9, 9, 9, 9, 9, 9]));
            }),
            DropReason::DuplicateOption { code: 1 },
        ),
        (
            "two IA_NAs with one IAID",
            msg_of(MessageType::Solicit, false, &|m| {
                m.opts_mut().insert(ia_na(1))
            }),
            DropReason::DuplicateIaid,
        ),
        (
            "nine IA_NAs",
            msg_of(MessageType::Solicit, false, &|m| {
                for id in 2..=9 {
                    m.opts_mut().insert(ia_na(id));
                }
            }),
            DropReason::TooManyIas,
        ),
        (
            "nine addresses in an IA",
            many_addrs,
            DropReason::TooManyLeases,
        ),
        (
            "no Client-ID",
            msg_of(MessageType::Request, true, &|m| {
                m.opts_mut().remove(OptionCode::ClientId);
            }),
            DropReason::MissingClientId,
        ),
        (
            "Request without Server-ID",
            c.bytes(MessageType::Request, false, &[]),
            DropReason::MissingServerId,
        ),
        (
            "Renew without Server-ID",
            c.bytes(MessageType::Renew, false, &[]),
            DropReason::MissingServerId,
        ),
        (
            "Release without Server-ID",
            c.bytes(MessageType::Release, false, &[]),
            DropReason::MissingServerId,
        ),
        (
            "Decline without Server-ID",
            c.bytes(MessageType::Decline, false, &[]),
            DropReason::MissingServerId,
        ),
        (
            "Solicit with Server-ID",
            c.bytes(MessageType::Solicit, true, &[]),
            DropReason::UnexpectedServerId,
        ),
        (
            "Rebind with Server-ID",
            c.bytes(MessageType::Rebind, true, &[]),
            DropReason::UnexpectedServerId,
        ),
        (
            "Confirm with Server-ID",
            c.bytes(MessageType::Confirm, true, &[]),
            DropReason::UnexpectedServerId,
        ),
        (
            "Request for another server",
            msg_of(MessageType::Request, false, &|m| {
                m.opts_mut()
                    .insert(DhcpOption::ServerId(vec![0, 3, 0, 1, 2, 0, 0, 0, 0, 2]));
            }),
            DropReason::OtherServer,
        ),
        (
            "Information-Request for another server",
            msg_of(MessageType::InformationRequest, false, &|m| {
                m.opts_mut().remove(OptionCode::IANA);
                m.opts_mut()
                    .insert(DhcpOption::ServerId(vec![0, 3, 0, 1, 2, 0, 0, 0, 0, 2]));
            }),
            DropReason::OtherServer,
        ),
        (
            "Information-Request with an IA",
            c.bytes(MessageType::InformationRequest, false, &[]),
            DropReason::IaInInformationRequest,
        ),
    ];
    let mut s = server();
    for (what, bytes, expected) in cases {
        assert_eq!(
            s.handle_bytes(T0, c.peer(), &bytes).map(|_| ()),
            Err(expected),
            "{what}"
        );
        assert!(!expected.label().is_empty());
    }
    assert_eq!(s.bindings().count(), 0, "nothing dropped changed anything");
}

#[test]
fn the_source_must_be_a_link_local_unicast_client() {
    let mut s = server();
    let c = Client::new(1);
    let mut peer = c.peer();
    peer.link_local = addr("2001:db8:0:100::99");
    assert_eq!(
        s.handle_bytes(T0, peer, &c.solicit()).map(|_| ()),
        Err(DropReason::SourceNotLinkLocal)
    );
    let mut peer = c.peer();
    peer.mac = MacAddr([0x33, 0x33, 0, 1, 0, 2]);
    assert_eq!(
        s.handle_bytes(T0, peer, &c.solicit()).map(|_| ()),
        Err(DropReason::BadSourceMac)
    );
    assert_eq!(
        Homes::new()
            .handle_bytes(HOME, T0, c.peer(), &c.solicit())
            .map(|_| ()),
        Err(DropReason::UnknownHome)
    );
}

#[test]
fn options_the_engine_does_not_read_cannot_hide_the_ones_it_does() {
    // Garbled options dhcproto would choke on (a Status Code of length 0, a Vendor Class of
    // length 1, an Elapsed Time of length 5) before the IA: the IA is still served.
    let c = Client::new(1);
    let mut bytes = vec![1, 0xe6, 0xc0, 1];
    bytes.extend_from_slice(&[0, 13, 0, 0]);
    bytes.extend_from_slice(&[0, 16, 0, 1, 7]);
    bytes.extend_from_slice(&[0, 8, 0, 5, 1, 2, 3, 4, 5]);
    bytes.extend_from_slice(&c.solicit()[4..]);
    let mut s = server();
    let out = handle(&mut s, T0, &c, &bytes);
    assert_eq!(granted(&reply(&out, &c)).len(), 1);
}

#[test]
fn garbage_never_panics() {
    // A deterministic walk over mutations of valid messages (the fuzz target does this
    // properly); every outcome must leave the engine consistent and the store in step.
    let mut s = server_with(|s| {
        s.iid_end = 0x1003;
        s.delegated = Some(net("2001:db8:0:100::/62"));
        s.pd_len = 64;
    });
    let seeds: Vec<(Client, Vec<u8>)> = (1..=6)
        .flat_map(|i| {
            let c = Client::new(i).with_pd();
            let l = vec![
                Lease::Address(Ipv6Addr::new(
                    0x2001,
                    0xdb8,
                    0,
                    0x100,
                    0,
                    0,
                    0,
                    0x1000 + u16::from(i % 4),
                )),
                Lease::Prefix(net("2001:db8:0:101::/64")),
            ];
            [
                c.solicit(),
                c.solicit_rapid(),
                c.request(&l),
                c.renew(&l),
                c.rebind(&l),
                c.release(&l),
                c.decline(&l),
                c.confirm(&l),
            ]
            .map(|b| (c.clone(), b))
        })
        .chain(fixtures().into_iter().map(|(_, b)| (Client::new(9), b)))
        .collect();
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut now = T0;
    let store = MemoryStore::new();
    for _ in 0..20_000 {
        let r = next();
        let (client, seed) = &seeds[(r % seeds.len() as u64) as usize];
        let mut bytes = seed.clone();
        for _ in 0..(r >> 8) % 4 {
            let r = next();
            let len = bytes.len() as u64;
            match r % 4 {
                0 => {
                    let i = (r >> 8) as usize % bytes.len();
                    bytes[i] = (r >> 32) as u8;
                }
                1 => bytes.truncate(((r >> 8) % (len + 1)) as usize),
                2 => bytes.insert(((r >> 8) % (len + 1)) as usize, (r >> 32) as u8),
                _ => {
                    let i = ((r >> 8) % len.max(1)) as usize;
                    if i < bytes.len() {
                        bytes.remove(i);
                    }
                }
            }
            if bytes.is_empty() {
                break;
            }
        }
        now = now.plus(next() % 20_000);
        if let Ok(out) = s.handle_bytes(now, client.peer(), &bytes) {
            if let Some(reply) = &out.reply {
                assert!(reply.payload.len() <= MAX_MESSAGE_LEN);
                assert!(Message::decode(&mut Decoder::new(&reply.payload)).is_ok());
            }
            commit(out, &store);
        }
        if r % 7 == 0 {
            commit(s.expire(now), &store);
        }
        s.check_consistency().expect("consistent after any input");
        let stored = store.load(HOME).expect("load");
        assert_eq!(
            s.bindings().collect::<Vec<_>>(),
            stored.iter().collect::<Vec<_>>()
        );
    }
    commit(s.expire(now), &store);
    let (restored, out) = HomeServer::restore(
        HOME,
        s.config().clone(),
        store.load(HOME).expect("load"),
        now,
    );
    restored.check_consistency().expect("consistent");
    assert!(out.is_empty(), "{out:?}");
    assert_eq!(
        restored.bindings().collect::<Vec<_>>(),
        s.bindings().collect::<Vec<_>>()
    );
}
