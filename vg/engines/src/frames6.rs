//! The IPv6 frame operations the slow path needs around the router engines ([`crate::nd`],
//! [`crate::dhcp6`]), which leave them to their caller: finding a DHCPv6 client message in a
//! home's frame (UDP to port 547 at All_DHCP_Relay_Agents_and_Servers, RFC 8415 §7.1), the
//! UDP frame of the server's reply (from the gateway's link-local address, §7.2), the
//! destination of a core-side frame (a neighbour miss), and forwarding the packet a
//! neighbour resolution held once its MAC is known (RFC 4861 §7.2.2: the queued packet is
//! transmitted when resolution completes).
//!
//! smoltcp's wire module parses and emits the headers (it checks lengths and the UDP
//! checksum); what is here is the glue: which fields to require, and the Ethernet and hop
//! limit rewrite of forwarding, which smoltcp has no operation for.
//!
//! No-panic contract: every function returns a value for every input (`None` for what does
//! not qualify); `fuzz/fuzz_targets/frames6.rs` checks it.

use std::net::Ipv6Addr;

use lsl::Encap;
use lsl::smoltcp::phy::ChecksumCapabilities;
use lsl::smoltcp::wire::{
    EthernetAddress, EthernetFrame, EthernetProtocol, EthernetRepr, IpProtocol, Ipv6Packet,
    Ipv6Repr, UdpPacket, UdpRepr,
};

/// A UDP datagram from the gateway into a home, in its LSL: a DHCPv6 reply.
pub struct Udp6<'a> {
    /// Ethernet source (the gateway's MAC) and destination.
    pub macs: (EthernetAddress, EthernetAddress),
    /// IPv6 source (the gateway's link-local address) and destination.
    pub addrs: (Ipv6Addr, Ipv6Addr),
    /// UDP source and destination ports.
    pub ports: (u16, u16),
    /// The payload.
    pub payload: &'a [u8],
}

/// The frame of `datagram` in `encap`; `None` if it does not fit an IPv6 payload length.
pub fn udp6_frame(datagram: &Udp6<'_>, encap: &Encap) -> Option<Vec<u8>> {
    let udp = UdpRepr {
        src_port: datagram.ports.0,
        dst_port: datagram.ports.1,
    };
    let ip = Ipv6Repr {
        src_addr: datagram.addrs.0,
        dst_addr: datagram.addrs.1,
        next_header: IpProtocol::Udp,
        payload_len: udp.header_len() + datagram.payload.len(),
        // RFC 8415 sets no hop limit for server messages; Linux's default, as other replies.
        hop_limit: crate::nd::REPLY_HOP_LIMIT,
    };
    if ip.payload_len > usize::from(u16::MAX) {
        return None;
    }
    let eth = EthernetRepr {
        src_addr: datagram.macs.0,
        dst_addr: datagram.macs.1,
        ethertype: EthernetProtocol::Ipv6,
    };
    let mut buf = vec![0; eth.buffer_len() + ip.buffer_len() + ip.payload_len];
    let mut frame = EthernetFrame::new_unchecked(&mut buf[..]);
    eth.emit(&mut frame);
    let mut packet = Ipv6Packet::new_unchecked(frame.payload_mut());
    ip.emit(&mut packet);
    udp.emit(
        &mut UdpPacket::new_unchecked(packet.payload_mut()),
        &datagram.addrs.0.into(),
        &datagram.addrs.1.into(),
        datagram.payload.len(),
        |p| p.copy_from_slice(datagram.payload),
        &ChecksumCapabilities::default(),
    );
    encap.encapsulate(&buf).ok()
}

/// The destination of a core-side frame (plain Ethernet + IPv6), if it is one.
pub fn core_destination(frame: &[u8]) -> Option<Ipv6Addr> {
    let eth = EthernetFrame::new_checked(frame).ok()?;
    if eth.ethertype() != EthernetProtocol::Ipv6 {
        return None;
    }
    Some(Ipv6Packet::new_checked(eth.payload()).ok()?.dst_addr())
}

/// The core-side `frame` a neighbour miss held, forwarded into the home now that its
/// destination is at `mac`: new MACs (the gateway's to the host's), the hop limit
/// decremented (as the fast path does), in `encap`. `None` if the frame is not IPv6 or its
/// hop limit is spent.
pub fn forward_held(
    frame: &[u8],
    gateway_mac: EthernetAddress,
    mac: EthernetAddress,
    encap: &Encap,
) -> Option<Vec<u8>> {
    let mut inner = frame.to_vec();
    let mut eth = EthernetFrame::new_checked(&mut inner[..]).ok()?;
    if eth.ethertype() != EthernetProtocol::Ipv6 {
        return None;
    }
    eth.set_src_addr(gateway_mac);
    eth.set_dst_addr(mac);
    let mut ip = Ipv6Packet::new_checked(eth.payload_mut()).ok()?;
    let hop_limit = ip.hop_limit();
    if hop_limit <= 1 {
        return None;
    }
    ip.set_hop_limit(hop_limit - 1);
    encap.encapsulate(&inner).ok()
}

/// Where a DHCPv6 client message in a decapsulated home frame starts: the payload of UDP to
/// port 547 at All_DHCP_Relay_Agents_and_Servers (RFC 8415 §7.1), with the client's MAC
/// and source address. `None` for anything else (unicast DHCPv6 included: the engine only
/// takes multicast messages, and the vG never offers Server Unicast).
pub fn dhcp6_request(inner: &[u8]) -> Option<(EthernetAddress, Ipv6Addr, &[u8])> {
    const ALL_DHCP_SERVERS: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 1, 2);
    let eth = EthernetFrame::new_checked(inner).ok()?;
    if eth.ethertype() != EthernetProtocol::Ipv6 {
        return None;
    }
    let src_mac = eth.src_addr();
    let payload = inner.get(lsl::smoltcp::wire::ETHERNET_HEADER_LEN..)?;
    let ip = Ipv6Packet::new_checked(payload).ok()?;
    if ip.next_header() != IpProtocol::Udp || ip.dst_addr() != ALL_DHCP_SERVERS {
        return None;
    }
    let src = ip.src_addr();
    let ip_payload =
        payload.get(ip.header_len()..ip.header_len() + usize::from(ip.payload_len()))?;
    let udp = UdpPacket::new_checked(ip_payload).ok()?;
    if udp.dst_port() != crate::dhcp6::SERVER_PORT
        || !udp.verify_checksum(&src.into(), &ALL_DHCP_SERVERS.into())
    {
        return None;
    }
    let len = usize::from(udp.len()).checked_sub(8)?;
    ip_payload.get(8..8 + len).map(|p| (src_mac, src, p))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOST: EthernetAddress = EthernetAddress([2, 0, 0, 0, 1, 10]);
    const GW: EthernetAddress = EthernetAddress([2, 0x4e, 0x47, 0, 0, 7]);

    fn datagram<'a>(dst: &str, port: u16, payload: &'a [u8]) -> Udp6<'a> {
        Udp6 {
            macs: (HOST, EthernetAddress([0x33, 0x33, 0, 1, 0, 2])),
            addrs: ("fe80::ff:fe00:10a".parse().unwrap(), dst.parse().unwrap()),
            ports: (546, port),
            payload,
        }
    }

    #[test]
    fn a_client_message_is_found_and_anything_else_is_not() {
        let frame = udp6_frame(&datagram("ff02::1:2", 547, b"\x01abc"), &Encap::Untagged).unwrap();
        let (mac, src, payload) = dhcp6_request(&frame).expect("a DHCPv6 message");
        assert_eq!((mac, payload), (HOST, &b"\x01abc"[..]));
        assert_eq!(src, "fe80::ff:fe00:10a".parse::<Ipv6Addr>().unwrap());
        // Unicast, another port, a bad checksum: not a message for the engine.
        let unicast = udp6_frame(&datagram("fe80::1", 547, b"\x01"), &Encap::Untagged).unwrap();
        assert!(dhcp6_request(&unicast).is_none());
        let port = udp6_frame(&datagram("ff02::1:2", 548, b"\x01"), &Encap::Untagged).unwrap();
        assert!(dhcp6_request(&port).is_none());
        let mut corrupt = frame.clone();
        *corrupt.last_mut().unwrap() ^= 0xff;
        assert!(dhcp6_request(&corrupt).is_none());
        // A UDP length past the packet's.
        let mut long = frame;
        long[14 + 40 + 4] = 0xff;
        assert!(dhcp6_request(&long).is_none());
    }

    #[test]
    fn a_held_packet_is_forwarded_with_new_macs_and_one_hop_less() {
        let frame = udp6_frame(&datagram("2001:db8::1", 9, b"x"), &Encap::Untagged).unwrap();
        let vid = lsl::Vid::new(100).unwrap();
        let out = forward_held(&frame, GW, HOST, &Encap::Dot1q { c_vid: vid }).unwrap();
        let d = lsl::decapsulate(&out, &lsl::encap::DecapOptions::default()).unwrap();
        let eth = EthernetFrame::new_checked(&d.inner[..]).unwrap();
        assert_eq!((eth.src_addr(), eth.dst_addr()), (GW, HOST));
        let ip = Ipv6Packet::new_checked(eth.payload()).unwrap();
        assert_eq!(ip.hop_limit(), crate::nd::REPLY_HOP_LIMIT - 1);
        assert_eq!(
            core_destination(&frame),
            Some("2001:db8::1".parse().unwrap())
        );
        let mut spent = frame;
        spent[14 + 7] = 1;
        assert!(
            forward_held(&spent, GW, HOST, &Encap::Untagged).is_none(),
            "hop limit 1"
        );
    }

    #[test]
    fn malformed_frames_are_none_not_panics() {
        for len in 0..80 {
            let junk = vec![0x86u8; len];
            assert_eq!(core_destination(&junk), None);
            assert!(dhcp6_request(&junk).is_none());
            assert!(
                forward_held(
                    &junk,
                    EthernetAddress([2, 0, 0, 0, 0, 1]),
                    EthernetAddress([2, 0, 0, 0, 0, 2]),
                    &Encap::Untagged
                )
                .is_none()
            );
        }
    }
}
