//! Arbitrary bytes through every parser in the crate: nothing may panic, and whatever
//! decapsulates must survive being encapsulated again for the reply and decapsulated back.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lsl::encap::{DecapOptions, Outer, decapsulate, flow_src_port};
use lsl::wire::{vlan, vxlan};

fuzz_target!(|data: &[u8]| {
    // The first byte picks the options, so that each path is explored with both settings.
    let Some((&knobs, frame)) = data.split_first() else {
        return;
    };
    let options = DecapOptions {
        vxlan_port: if knobs & 1 == 0 {
            vxlan::UDP_PORT
        } else {
            8472
        },
        verify_checksums: knobs & 2 == 0,
        accept_zero_udp6_checksum: knobs & 4 != 0,
    };

    let _ = flow_src_port(frame);
    let _ = vlan::TagStack::parse(frame);
    if let Ok(packet) = vlan::Packet::new_checked(frame) {
        round_trip_vlan(&packet);
    }
    if let Ok(packet) = vxlan::Packet::new_checked(frame)
        && let Ok(repr) = vxlan::Repr::parse(&packet)
    {
        let mut out = [0u8; vxlan::HEADER_LEN];
        repr.emit(&mut vxlan::Packet::new_unchecked(&mut out[..]));
        assert_eq!(
            vxlan::Repr::parse(&vxlan::Packet::new_unchecked(&out[..])),
            Ok(repr)
        );
    }

    let Ok(decapsulated) = decapsulate(frame, &options) else {
        return;
    };
    assert!(
        decapsulated.inner.len() >= 14,
        "inner frames hold an Ethernet header"
    );
    match decapsulated.outer {
        Outer::Untagged => assert!(decapsulated.lsl.is_none()),
        Outer::Vlan(_) | Outer::Vxlan(_) => assert!(decapsulated.lsl.is_some()),
    }
    let reply = decapsulated.reply_encap();
    let frame = reply
        .encapsulate(&decapsulated.inner)
        .expect("a decapsulated frame fits its reply encapsulation");
    assert_eq!(frame.len(), decapsulated.inner.len() + reply.overhead());
    let again = decapsulate(&frame, &options).expect("our own frames decapsulate");
    assert_eq!(again.inner, decapsulated.inner);
    if !matches!(decapsulated.outer, Outer::Vxlan(_)) {
        // VLAN LSLs are symmetric; a VXLAN reply names the other VTEP.
        assert_eq!(again.lsl, decapsulated.lsl);
    }
});

fn round_trip_vlan(packet: &vlan::Packet<&[u8]>) {
    let repr = vlan::Repr::parse(packet).expect("checked packets parse");
    let mut out = [0u8; vlan::HEADER_LEN];
    repr.emit(&mut vlan::Packet::new_unchecked(&mut out[..]));
    assert_eq!(&out[..], &packet.as_ref()[..vlan::HEADER_LEN]);
}
