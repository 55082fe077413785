//! Arbitrary frames through the IPv6 router engine (`vg_engines::nd`) on every LSL kind.
//!
//! Input: one selector byte (the LSL kind in its low 2 bits: 802.1Q, QinQ, VXLAN over IPv4,
//! VXLAN over IPv6; bit 2: the bytes are the whole frame rather than the inner frame to
//! wrap; bits 3..: the time step), then the frame. The frame goes through `answer6`, every
//! ICMPv6 error builder (to the home and, as a core frame, to the core), RA guard, and its
//! bindings into a `Neighbours` table; its IPv6 destination into a `Resolver`.
//! Invariants: nothing panics; every reply decapsulates onto the home's LSL and holds an
//! IPv6 packet whose length fields agree and whose ICMPv6 checksum verifies; errors fit in
//! 1280 bytes; the table and the resolver stay within their bounds.
#![no_main]

use std::cell::RefCell;
use std::net::Ipv6Addr;

use libfuzzer_sys::fuzz_target;
use lsl::encap::{DecapOptions, VxlanEncap};
use lsl::smoltcp::wire::{
    EthernetAddress, EthernetFrame, EthernetProtocol, Icmpv6Packet, IpProtocol, Ipv6Packet,
};
use lsl::wire::vlan::Tpid;
use lsl::{Encap, LslId, Vid, Vni, decapsulate};
use vg_engines::nd::{
    CoreL2, Home6, ICMP6_ERROR_MAX_LEN, Icmp6Error, Ignored6, NeighbourLimits, Neighbours,
    RaIntervals, RaSchedule, Resolver, ResolverLimits, answer6, icmp6_error, icmp6_error_to_core,
    is_router_only,
};

const GW_MAC: EthernetAddress = EthernetAddress([0x02, 0x4e, 0x47, 0, 0, 7]);

fn encap(kind: u8) -> Encap {
    let vid = |v| Vid::new(v).expect("a valid VID");
    let vni = Vni::new(5001).expect("a valid VNI");
    let (brg, vg) = (EthernetAddress([2, 0, 0, 0, 0, 2]), EthernetAddress([2, 0, 0, 0, 0, 1]));
    match kind & 3 {
        0 => Encap::Dot1q { c_vid: vid(100) },
        1 => Encap::QinQ { s_tpid: Tpid::STag, s_vid: vid(10), c_vid: vid(100) },
        2 => Encap::Vxlan(VxlanEncap::new(vni, [10, 0, 0, 2].into(), [10, 0, 0, 1].into(), brg, vg)),
        _ => Encap::Vxlan(VxlanEncap::new(
            vni,
            "2001:db8:a::2".parse().expect("an address"),
            "2001:db8:a::1".parse().expect("an address"),
            brg,
            vg,
        )),
    }
}

fn home(encap: &Encap) -> Home6 {
    let lsl = match encap {
        Encap::Vxlan(vxlan) => LslId::vxlan(vxlan.vni, vxlan.local),
        other => other.lsl_id().expect("an LSL"),
    };
    let mut home = Home6::new(
        lsl,
        GW_MAC,
        "2001:db8:1:100::/64".parse().expect("a prefix"),
        "2001:db8:ffff::1".parse().expect("an address"),
    );
    home.mtu = 1450;
    home.ra.rdnss = vec!["2001:db8:53::53".parse().expect("an address")];
    home.ra.dnssl = vec!["home.arpa".to_owned()];
    home.validate().expect("the fuzz home is valid");
    home
}

/// Checks an inner frame the engine built: Ethernet, IPv6 with consistent lengths, and an
/// ICMPv6 message with a correct checksum.
fn check_inner(inner: &[u8]) {
    let eth = EthernetFrame::new_checked(inner).expect("an Ethernet frame");
    assert_eq!(eth.ethertype(), EthernetProtocol::Ipv6);
    assert!(eth.src_addr().is_unicast());
    let ip = Ipv6Packet::new_checked(eth.payload()).expect("an IPv6 packet");
    assert_eq!(ip.version(), 6);
    assert_eq!(usize::from(ip.payload_len()) + 40, eth.payload().len(), "no trailing bytes");
    assert_eq!(ip.next_header(), IpProtocol::Icmpv6);
    let icmp = Icmpv6Packet::new_checked(ip.payload()).expect("an ICMPv6 message");
    assert!(icmp.verify_checksum(&ip.src_addr(), &ip.dst_addr()), "ICMPv6 checksum");
    assert!(!ip.src_addr().is_multicast() && !ip.src_addr().is_unspecified());
}

fn check_reply(encap: &Encap, home: &Home6, frame: &[u8]) -> Vec<u8> {
    let reply = decapsulate(frame, &DecapOptions::default()).expect("the reply decapsulates");
    // Replies go back as the peer of the frame's sender: the VTEPs swap.
    let expected = match encap {
        Encap::Vxlan(vxlan) => LslId::vxlan(vxlan.vni, vxlan.remote),
        _ => home.lsl,
    };
    assert_eq!(reply.lsl, Some(expected));
    check_inner(&reply.inner);
    reply.inner.into_owned()
}

struct State {
    schedule: RaSchedule,
    neighbours: Neighbours,
    resolver: Resolver,
    now_ms: u64,
}

thread_local! {
    static STATE: RefCell<State> = RefCell::new(State {
        schedule: RaSchedule::new(RaIntervals::default(), 0, 1),
        neighbours: Neighbours::new(NeighbourLimits { max_entries: 16, max_per_mac: 4, ..NeighbourLimits::default() }),
        resolver: Resolver::new(ResolverLimits { max_pending: 8, ..ResolverLimits::default() }, 0),
        now_ms: 0,
    });
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, bytes)) = data.split_first() else {
        return;
    };
    let encap = encap(selector);
    let home = home(&encap);
    let frame = if selector & 4 != 0 {
        bytes.to_vec()
    } else {
        match encap.encapsulate(bytes) {
            Ok(frame) => frame,
            Err(_) => bytes.to_vec(),
        }
    };
    let options = DecapOptions::default();
    STATE.with_borrow_mut(|state| {
        state.now_ms += u64::from(selector >> 3) * 100;
        let now = state.now_ms;
        match answer6(&home, &frame, &options, &mut state.schedule, now) {
            Ok(answer) => {
                check_reply(&encap, &home, &answer.reply.frame);
                if let Some(binding) = answer.learnt {
                    assert!(home.is_host(binding.addr));
                    state.neighbours.learn(&binding, now);
                }
            }
            Err(Ignored6::Learn(binding)) => {
                assert!(home.is_host(binding.addr));
                state.neighbours.learn(&binding, now);
            }
            Err(_) => {}
        }
        assert!(state.neighbours.len() <= 16);
        for error in [
            Icmp6Error::TimeExceeded,
            Icmp6Error::PacketTooBig { mtu: 1280 },
            Icmp6Error::AddressUnreachable,
        ] {
            if let Ok(reply) = icmp6_error(&home, &frame, &options, error) {
                let inner = check_reply(&encap, &home, &reply.frame);
                assert!(inner.len() - 14 <= ICMP6_ERROR_MAX_LEN);
            }
            let core = CoreL2 { src_mac: EthernetAddress([2, 0, 0, 0, 0xc, 1]), dst_mac: EthernetAddress([2, 0, 0, 0, 0xc, 2]) };
            if let Ok(out) = icmp6_error_to_core(home.router_addr, &core, bytes, error) {
                check_inner(&out);
                assert!(out.len() - 14 <= ICMP6_ERROR_MAX_LEN);
            }
        }
        let _ = is_router_only(bytes.get(14..).unwrap_or_default());
        if let Some(dst) = bytes.get(38..54).and_then(|d| <[u8; 16]>::try_from(d).ok()) {
            let _ = state.resolver.resolve(Ipv6Addr::from(dst), Some(bytes), now);
            let _ = state.resolver.poll(now);
            assert!(state.resolver.len() <= 8);
            assert!(state.resolver.queued_bytes() <= ResolverLimits::default().max_queued_bytes);
        }
        if state.schedule.poll(now) {
            let ra = vg_engines::nd::ra_frame(&home, &encap).expect("an RA");
            check_inner(&decapsulate(&ra, &options).expect("decapsulates").inner);
        }
    });
});
