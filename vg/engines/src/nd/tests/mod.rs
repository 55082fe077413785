//! The ND engine's tests: exact bytes against captured and independently built frames
//! ([`fixtures`]) on every LSL kind, RFC 4861 validation, the RA schedule, the binding
//! table, the resolver under a scan, ICMPv6 errors and RA guard.

use std::net::Ipv6Addr;

use lsl::encap::{DecapOptions, Outer, VxlanEncap};
use lsl::smoltcp::wire::{ETHERNET_HEADER_LEN, EthernetAddress, IPV6_HEADER_LEN};
use lsl::wire::vlan::Tpid;
use lsl::{Encap, LslId, Vid, Vni, decapsulate};

use super::*;

mod answer;
mod error;
mod fixtures;
mod guard;
mod learn;
mod ra;
mod resolve;

const GW_MAC: EthernetAddress = EthernetAddress([0x02, 0x4e, 0x47, 0, 0, 7]);
const GW_LL: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0x4e, 0x47ff, 0xfe00, 7);
const HOST_MAC: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0x01, 0x0a]);
const HOST_LL: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0xff, 0xfe00, 0x10a);
const HOST: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0x100, 0, 0, 0, 0x10);
const OTHER_MAC: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0x01, 0x14]);
const ROUTER: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xffff, 0, 0, 0, 0, 1);
const REMOTE: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xbeef, 0, 0, 0, 0, 1);
const VG_OUTER_MAC: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0, 0x01]);
const BRG_OUTER_MAC: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0, 0x02]);

fn vid(value: u16) -> Vid {
    Vid::new(value).expect("a valid VID")
}

/// One LSL of each kind, as the BRG sends on it: 802.1Q, QinQ, VXLAN over IPv4 and IPv6.
fn encaps() -> [Encap; 4] {
    let vni = Vni::new(5001).expect("a valid VNI");
    [
        Encap::Dot1q { c_vid: vid(100) },
        Encap::QinQ {
            s_tpid: Tpid::STag,
            s_vid: vid(10),
            c_vid: vid(100),
        },
        Encap::Vxlan(VxlanEncap::new(
            vni,
            "10.0.0.2".parse().expect("an address"),
            "10.0.0.1".parse().expect("an address"),
            BRG_OUTER_MAC,
            VG_OUTER_MAC,
        )),
        Encap::Vxlan(VxlanEncap::new(
            vni,
            "2001:db8:a::2".parse().expect("an address"),
            "2001:db8:a::1".parse().expect("an address"),
            BRG_OUTER_MAC,
            VG_OUTER_MAC,
        )),
    ]
}

/// The LSL the vG sees a frame in `encap` on (for VXLAN, the sender's VTEP).
fn lsl_of(encap: &Encap) -> LslId {
    match encap {
        Encap::Vxlan(vxlan) => LslId::vxlan(vxlan.vni, vxlan.local),
        other => other.lsl_id().expect("an LSL"),
    }
}

/// The test home: the fixtures' addresses, MTU 1450, O flag, RDNSS and DNSSL.
fn home(encap: &Encap) -> Home6 {
    let mut home = Home6::new(
        lsl_of(encap),
        GW_MAC,
        "2001:db8:1:100::/64".parse().expect("a prefix"),
        ROUTER,
    );
    home.mtu = 1450;
    home.ra.other = true;
    home.ra.valid_lifetime = 86_400;
    home.ra.preferred_lifetime = 14_400;
    home.ra.rdnss = vec!["2001:db8:53::53".parse().expect("an address")];
    home.ra.rdnss_lifetime = 1800;
    home.ra.dnssl = vec!["home.arpa".to_owned()];
    home.ra.dnssl_lifetime = 1800;
    home.validate().expect("the test home is valid");
    home
}

fn dot1q() -> Encap {
    encaps()[0]
}

fn wrap(encap: &Encap, inner: &[u8]) -> Vec<u8> {
    encap.encapsulate(inner).expect("encapsulates")
}

fn opts() -> DecapOptions {
    DecapOptions::default()
}

fn schedule() -> RaSchedule {
    RaSchedule::new(RaIntervals::default(), 0, 1)
}

/// `inner` sent on `encap` and answered at time 0 with a fresh schedule.
fn answer_on(encap: &Encap, inner: &[u8]) -> Result<Answer6, Ignored6> {
    answer6(
        &home(encap),
        &wrap(encap, inner),
        &opts(),
        &mut schedule(),
        0,
    )
}

/// Decapsulates a reply to a frame sent in `encap`, checks that it is on the same LSL and
/// returns the inner frame.
fn unwrap_reply(encap: &Encap, frame: &[u8]) -> Vec<u8> {
    let reply = decapsulate(frame, &opts()).expect("the reply decapsulates");
    match (encap, reply.outer) {
        (Encap::Vxlan(request), Outer::Vxlan(outer)) => {
            assert_eq!(reply.lsl, Some(LslId::vxlan(request.vni, request.remote)));
            assert_eq!((outer.src, outer.dst), (request.remote, request.local));
            assert_eq!(
                (outer.src_mac, outer.dst_mac),
                (request.remote_mac, request.local_mac)
            );
            assert_ne!(outer.udp_checksum, 0, "the outer UDP checksum is computed");
        }
        (Encap::Dot1q { .. } | Encap::QinQ { .. }, Outer::Vlan(_)) => {
            assert_eq!(reply.reply_encap(), *encap, "same tags");
        }
        (encap, outer) => panic!("reply in {outer:?} to a request in {encap:?}"),
    }
    reply.inner.into_owned()
}

/// The RFC 1071 sum of `data`, written independently of smoltcp.
fn ones_complement_sum(data: &[u8]) -> u16 {
    let mut sum: u32 = data
        .chunks(2)
        .map(|pair| u32::from(u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

/// The ICMPv6 message of an inner frame (no extension headers).
fn icmp_of(inner: &[u8]) -> &[u8] {
    &inner[ETHERNET_HEADER_LEN + IPV6_HEADER_LEN..]
}

/// Whether an inner frame's ICMPv6 checksum is right, by [`ones_complement_sum`].
fn icmp_checksum_ok(inner: &[u8]) -> bool {
    let ip = &inner[ETHERNET_HEADER_LEN..];
    let icmp = icmp_of(inner);
    let mut pseudo = ip[8..40].to_vec();
    pseudo.extend_from_slice(&(icmp.len() as u32).to_be_bytes());
    pseudo.extend_from_slice(&[0, 0, 0, 58]);
    pseudo.extend_from_slice(icmp);
    ones_complement_sum(&pseudo) == 0xffff
}

/// Rewrites an inner frame's ICMPv6 checksum (after a test edited the message).
fn fix_checksum(inner: &mut [u8]) {
    let at = ETHERNET_HEADER_LEN + IPV6_HEADER_LEN + 2;
    inner[at..at + 2].copy_from_slice(&[0, 0]);
    let ip = &inner[ETHERNET_HEADER_LEN..];
    let icmp = &ip[IPV6_HEADER_LEN..];
    let mut pseudo = ip[8..40].to_vec();
    pseudo.extend_from_slice(&(icmp.len() as u32).to_be_bytes());
    pseudo.extend_from_slice(&[0, 0, 0, 58]);
    pseudo.extend_from_slice(icmp);
    let checksum = !ones_complement_sum(&pseudo);
    inner[at..at + 2].copy_from_slice(&checksum.to_be_bytes());
}

/// Sets an inner frame's IPv6 payload length to what follows the header.
fn fix_payload_len(inner: &mut [u8]) {
    let len = (inner.len() - ETHERNET_HEADER_LEN - IPV6_HEADER_LEN) as u16;
    inner[ETHERNET_HEADER_LEN + 4..ETHERNET_HEADER_LEN + 6].copy_from_slice(&len.to_be_bytes());
}
