//! Arbitrary frames through the slow path's IPv6 frame operations (`vg_engines::frames6`).
//!
//! Input: one selector byte (bit 0: wrap the bytes as the UDP payload of a DHCPv6 client
//! message rather than take them as a whole frame), then the bytes.
//! Invariants: nothing panics; a DHCPv6 message found lies within the frame; a frame `udp6_frame` builds is found again with the same
//! payload; forwarding keeps the frame (plus the tag) with new MACs and lowers the hop limit by
//! exactly one.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lsl::smoltcp::wire::{EthernetAddress, EthernetFrame, Ipv6Packet};
use lsl::{Encap, Vid};
use vg_engines::frames6::{Udp6, core_destination, dhcp6_request, forward_held, udp6_frame};

const HOST: EthernetAddress = EthernetAddress([2, 0, 0, 0, 1, 10]);
const GW: EthernetAddress = EthernetAddress([2, 0x4e, 0x47, 0, 0, 7]);

fuzz_target!(|data: &[u8]| {
    let Some((&selector, bytes)) = data.split_first() else {
        return;
    };
    let frame = if selector & 1 == 1 {
        let datagram = Udp6 {
            macs: (HOST, EthernetAddress([0x33, 0x33, 0, 1, 0, 2])),
            addrs: ("fe80::ff:fe00:10a".parse().expect("an address"), "ff02::1:2".parse().expect("an address")),
            ports: (546, 547),
            payload: bytes,
        };
        let Some(frame) = udp6_frame(&datagram, &Encap::Untagged) else {
            assert!(bytes.len() > usize::from(u16::MAX) - 8, "only an oversized payload fails");
            return;
        };
        let (mac, _, payload) = dhcp6_request(&frame).expect("a built message is found");
        assert_eq!((mac, payload), (HOST, bytes));
        frame
    } else {
        bytes.to_vec()
    };
    if let Some((_, _, payload)) = dhcp6_request(&frame) {
        assert!(payload.len() <= frame.len());
    }
    let _ = core_destination(&frame);
    let encap = Encap::Dot1q { c_vid: Vid::new(100).expect("a VID") };
    if let Some(out) = forward_held(&frame, GW, HOST, &encap) {
        assert!(out.len() >= frame.len() + 4, "one tag added");
        let d = lsl::decapsulate(&out, &lsl::encap::DecapOptions::default()).expect("decapsulates");
        let eth = EthernetFrame::new_checked(&d.inner[..]).expect("ethernet");
        assert_eq!((eth.src_addr(), eth.dst_addr()), (GW, HOST));
        let before = Ipv6Packet::new_checked(&frame[14..]).expect("was IPv6").hop_limit();
        let after = Ipv6Packet::new_checked(eth.payload()).expect("is IPv6").hop_limit();
        assert_eq!(after + 1, before);
    }
});
