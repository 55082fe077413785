//! Bad input: malformed messages are dropped with a reason, garbage never panics.

use super::real_clients::{dhclient_discover, dhcpcd_discover, udhcpc_discover};
use super::*;

#[test]
fn malformed_input_is_dropped_with_a_reason() {
    let c = Client::new(1);
    let good = c.discover();
    let with = |edit: &dyn Fn(&mut Vec<u8>)| {
        let mut bytes = good.clone();
        edit(&mut bytes);
        bytes
    };
    let msg_of = |edit: &dyn Fn(&mut Message)| {
        let mut msg = c.message(MessageType::Discover, Ipv4Addr::UNSPECIFIED);
        edit(&mut msg);
        encode(&msg)
    };
    let cases: Vec<(&str, Vec<u8>, DropReason)> = vec![
        ("empty", Vec::new(), DropReason::Truncated),
        ("header only", good[..200].to_vec(), DropReason::Truncated),
        ("a reply", with(&|b| b[0] = 2), DropReason::NotBootRequest),
        ("op 0", with(&|b| b[0] = 0), DropReason::NotBootRequest),
        ("htype 6", with(&|b| b[1] = 6), DropReason::NotEthernet),
        ("hlen 16", with(&|b| b[2] = 16), DropReason::NotEthernet),
        ("hlen 255", with(&|b| b[2] = 255), DropReason::NotEthernet),
        (
            "BOOTP",
            with(&|b| b[236..240].copy_from_slice(&[0; 4])),
            DropReason::BadMagicCookie,
        ),
        (
            "option length past the end",
            with(&|b| {
                b.truncate(240);
                b.extend_from_slice(&[53, 1, 1, 55, 250, 1, 3]);
            }),
            DropReason::OptionOverrun { code: 55 },
        ),
        (
            "no message type",
            with(&|b| {
                b.truncate(240);
                b.extend_from_slice(&[55, 2, 1, 3, 255]);
            }),
            DropReason::NoMessageType,
        ),
        (
            "message type of length 4",
            with(&|b| {
                b.truncate(240);
                b.extend_from_slice(&[53, 4, 1, 1, 1, 1, 255]);
            }),
            DropReason::BadOptionLength { code: 53 },
        ),
        (
            "relayed",
            msg_of(&|m| {
                m.set_giaddr(Ipv4Addr::new(10, 0, 0, 1));
            }),
            DropReason::Relayed,
        ),
        (
            "an OFFER from a client",
            msg_of(&|m| {
                m.opts_mut()
                    .insert(DhcpOption::MessageType(MessageType::Offer));
            }),
            DropReason::UnsupportedMessageType(2),
        ),
        (
            "unknown message type",
            msg_of(&|m| {
                m.opts_mut()
                    .insert(DhcpOption::MessageType(MessageType::Unknown(200)));
            }),
            DropReason::UnsupportedMessageType(200),
        ),
        (
            "broadcast chaddr",
            msg_of(&|m| {
                m.set_chaddr(&[0xff; 6]);
            }),
            DropReason::BadHardwareAddress,
        ),
        (
            "REQUEST about nothing",
            msg_of(&|m| {
                m.opts_mut()
                    .insert(DhcpOption::MessageType(MessageType::Request));
            }),
            DropReason::MissingRequestedAddress,
        ),
        (
            "DECLINE without option 50",
            msg_of(&|m| {
                m.opts_mut()
                    .insert(DhcpOption::MessageType(MessageType::Decline));
            }),
            DropReason::MissingRequestedAddress,
        ),
        (
            "INFORM without ciaddr",
            msg_of(&|m| {
                m.opts_mut()
                    .insert(DhcpOption::MessageType(MessageType::Inform));
            }),
            DropReason::MissingClientAddress,
        ),
        (
            "client identifier of one byte",
            msg_of(&|m| {
                m.opts_mut().insert(DhcpOption::ClientIdentifier(vec![1]));
            }),
            DropReason::BadOptionLength { code: 61 },
        ),
    ];
    let mut s = server();
    for (what, bytes, expected) in cases {
        assert_eq!(s.handle_bytes(T0, &bytes).err(), Some(expected), "{what}");
        s.check_consistency().expect("consistent");
    }
    assert_eq!(s.usage().offered, 0, "nothing malformed changed state");
    // The Message entry point applies the same checks to caller-built messages.
    let mut msg = c.message(MessageType::Discover, Ipv4Addr::UNSPECIFIED);
    msg.set_htype(dhcproto::v4::HType::Unknown(9));
    assert_eq!(s.handle(T0, &msg).err(), Some(DropReason::NotEthernet));
}

#[test]
fn garbage_never_panics() {
    // A deterministic walk over mutations of valid messages (the fuzz target does this
    // properly); every outcome must leave the engine consistent.
    let mut s = server_with("range_start = \"192.168.1.100\"\nrange_end = \"192.168.1.103\"");
    let seeds: Vec<Vec<u8>> = (1..=6)
        .flat_map(|i| {
            let c = Client::new(i);
            [
                c.discover(),
                c.select(GW, ip(100 + i % 4)),
                c.renew(ip(100 + i % 4)),
                c.decline(ip(100 + i % 4)),
                c.release(ip(100 + i % 4)),
                c.init_reboot(ip(99 + i)),
            ]
        })
        .chain([dhclient_discover(), udhcpc_discover(), dhcpcd_discover()])
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
        let mut bytes = seeds[(r % seeds.len() as u64) as usize].clone();
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
        now = now.plus(next() % 5_000);
        if let Ok(out) = s.handle_bytes(now, &bytes) {
            if let Some(reply) = &out.reply {
                assert!(Message::decode(&mut Decoder::new(&reply.payload)).is_ok());
            }
            commit(out, &store);
        }
        if r % 7 == 0 {
            commit(s.expire(now), &store);
        }
        s.check_consistency().expect("consistent after any input");
        // Every change reached the store: it holds exactly the engine's leases.
        let stored = store.load(HOME).expect("load");
        assert_eq!(
            s.leases().collect::<Vec<_>>(),
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
        restored.leases().collect::<Vec<_>>(),
        s.leases().collect::<Vec<_>>()
    );
}
