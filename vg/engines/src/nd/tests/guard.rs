//! RA guard: what no host sends.

use super::fixtures::*;
use super::*;

fn ipv6(inner: &[u8]) -> &[u8] {
    &inner[ETHERNET_HEADER_LEN..]
}

/// A UDP packet from the host, `src_port` to `dst_port`, whose payload starts with
/// `msg_type` (no checksum: the guard does not need one).
fn udp(src_port: u16, dst_port: u16, msg_type: u8) -> Vec<u8> {
    let mut packet = ipv6(&EXPIRING_UDP).to_vec();
    packet[40..42].copy_from_slice(&src_port.to_be_bytes());
    packet[42..44].copy_from_slice(&dst_port.to_be_bytes());
    packet[48] = msg_type;
    packet
}

#[test]
fn router_advertisements_redirects_and_dhcpv6_servers_are_router_only() {
    assert_eq!(
        is_router_only(ipv6(&RA_TO_HOST)),
        Some(RouterOnly::RouterAdvert)
    );
    let mut redirect = ipv6(&KERNEL_NA).to_vec();
    redirect[40] = 137;
    assert_eq!(is_router_only(&redirect), Some(RouterOnly::Redirect));
    for msg_type in [2, 7, 10, 13] {
        assert_eq!(
            is_router_only(&udp(547, 546, msg_type)),
            Some(RouterOnly::Dhcpv6Server(msg_type))
        );
    }
    for (src, dst, msg_type) in [
        (546, 547, 1),
        (546, 547, 3),
        (547, 546, 1),
        (547, 547, 13),
        (53, 546, 7),
    ] {
        assert_eq!(
            is_router_only(&udp(src, dst, msg_type)),
            None,
            "{src} > {dst} type {msg_type}"
        );
    }
    for host in [
        &KERNEL_RS[..],
        &NDISC6_NS,
        &KERNEL_NA,
        &ECHO_REQUEST,
        &EXPIRING_UDP,
    ] {
        assert_eq!(is_router_only(ipv6(host)), None);
    }
}

/// `packet` with `headers` (next header, bytes) inserted after the IPv6 header.
fn with_extensions(packet: &[u8], headers: &[(u8, Vec<u8>)]) -> Vec<u8> {
    let mut out = packet[..40].to_vec();
    let mut next = packet[6];
    let mut chain = Vec::new();
    for (kind, body) in headers.iter().rev() {
        let mut header = body.clone();
        header[0] = next;
        next = *kind;
        chain.splice(0..0, header);
    }
    out[6] = next;
    out.extend(chain);
    out.extend_from_slice(&packet[40..]);
    out
}

#[test]
fn an_ra_behind_extension_headers_is_found() {
    let ra = ipv6(&RA_TO_HOST);
    let hop_by_hop = (0, vec![0, 0, 1, 4, 0, 0, 0, 0]);
    let dest_options = (60, vec![0, 1, 1, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    let first_fragment = (44, vec![0, 0, 0, 1, 0, 0, 0, 1]);
    let later_fragment = (44, vec![0, 0, 0x05, 0x00, 0, 0, 0, 1]);
    let hidden = with_extensions(
        ra,
        &[hop_by_hop.clone(), dest_options.clone(), first_fragment],
    );
    assert_eq!(is_router_only(&hidden), Some(RouterOnly::RouterAdvert));
    assert_eq!(
        is_router_only(&with_extensions(ra, &[later_fragment])),
        None
    );
    let too_many = vec![dest_options; MAX_EXTENSION_HEADERS + 1];
    assert_eq!(is_router_only(&with_extensions(ra, &too_many)), None);
    for len in 0..hidden.len().min(120) {
        assert_ne!(is_router_only(&hidden[..len]), Some(RouterOnly::Redirect));
    }
    assert_eq!(
        is_router_only(&hidden[..hidden.len() - 111]),
        Some(RouterOnly::RouterAdvert),
        "the type is enough"
    );
}
