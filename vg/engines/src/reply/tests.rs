//! The answers' tests: byte fixtures per LSL kind, truncations, the limiter.

use lsl::encap::{Outer, VxlanEncap};
use lsl::smoltcp::wire::{ArpHardware, IpAddress};
use lsl::wire::vlan::Tpid;
use lsl::{Vid, Vni};

use super::*;

const GW: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 1);
const GW_MAC: EthernetAddress = EthernetAddress([0x02, 0x4e, 0x47, 0, 0, 7]);
const HOST: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 10);
const HOST_MAC: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0x01, 0x0a]);
const OTHER: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 20);
const OTHER_MAC: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0x01, 0x14]);
const REMOTE: Ipv4Addr = Ipv4Addr::new(8, 8, 8, 8);
const LAN_BROADCAST: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 255);
const MULTICAST_MAC: EthernetAddress = EthernetAddress([0x01, 0x00, 0x5e, 0, 0, 0xfb]);
const VG_VTEP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const BRG_VTEP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
const VG_OUTER_MAC: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0, 0x01]);
const BRG_OUTER_MAC: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0, 0x02]);

fn vid(value: u16) -> Vid {
    Vid::new(value).expect("a valid VID")
}

/// One LSL of each kind, as the BRG sends on it.
fn encaps() -> [Encap; 3] {
    [
        Encap::Dot1q { c_vid: vid(100) },
        Encap::QinQ {
            s_tpid: Tpid::STag,
            s_vid: vid(10),
            c_vid: vid(100),
        },
        Encap::Vxlan(VxlanEncap::new(
            Vni::new(5001).expect("a valid VNI"),
            BRG_VTEP.into(),
            VG_VTEP.into(),
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

fn home(encap: &Encap) -> Home {
    Home {
        lsl: lsl_of(encap),
        gateway: GW,
        gateway_mac: GW_MAC,
        lan: "192.168.1.0/24".parse().expect("a prefix"),
    }
}

fn wrap(encap: &Encap, inner: &[u8]) -> Vec<u8> {
    encap.encapsulate(inner).expect("encapsulates")
}

fn opts() -> DecapOptions {
    DecapOptions::default()
}

fn caps() -> ChecksumCapabilities {
    ChecksumCapabilities::default()
}

/// `inner` for the first LSL, answered.
fn answer_dot1q(inner: &[u8]) -> Result<Answer<'static>, Ignored> {
    let encap = encaps()[0];
    let frame = wrap(&encap, inner);
    answer(&home(&encap), &frame, &opts()).map(|a| match a {
        Answer::Reply(reply) => Answer::Reply(reply),
        Answer::Dhcp(_) => panic!("not a DHCP case"),
    })
}

fn expect_reply(result: Result<Answer<'_>, Ignored>) -> Reply {
    match result {
        Ok(Answer::Reply(reply)) => reply,
        other => panic!("expected a reply, got {other:?}"),
    }
}

// --- inner frames, built with smoltcp ---

fn ethernet(
    src: EthernetAddress,
    dst: EthernetAddress,
    ethertype: EthernetProtocol,
    payload: &[u8],
) -> Vec<u8> {
    ethernet_frame(src, dst, ethertype, payload.len(), |buf| {
        buf.copy_from_slice(payload)
    })
}

struct ArpFields {
    operation: ArpOperation,
    sender_mac: EthernetAddress,
    sender_ip: Ipv4Addr,
    target_ip: Ipv4Addr,
    link_dst: EthernetAddress,
}

fn arp_request(sender_ip: Ipv4Addr, target_ip: Ipv4Addr) -> ArpFields {
    ArpFields {
        operation: ArpOperation::Request,
        sender_mac: HOST_MAC,
        sender_ip,
        target_ip,
        link_dst: EthernetAddress::BROADCAST,
    }
}

fn arp_frame(fields: &ArpFields) -> Vec<u8> {
    let repr = ArpRepr::EthernetIpv4 {
        operation: fields.operation,
        source_hardware_addr: fields.sender_mac,
        source_protocol_addr: fields.sender_ip,
        target_hardware_addr: EthernetAddress([0; 6]),
        target_protocol_addr: fields.target_ip,
    };
    let mut arp = vec![0; repr.buffer_len()];
    repr.emit(&mut ArpPacket::new_unchecked(&mut arp));
    ethernet(HOST_MAC, fields.link_dst, EthernetProtocol::Arp, &arp)
}

/// An IPv4 packet with `l4` as its payload.
fn ipv4_packet(src: Ipv4Addr, dst: Ipv4Addr, protocol: IpProtocol, ttl: u8, l4: &[u8]) -> Vec<u8> {
    let repr = Ipv4Repr {
        src_addr: src,
        dst_addr: dst,
        next_header: protocol,
        payload_len: l4.len(),
        hop_limit: ttl,
    };
    let mut buf = vec![0; repr.buffer_len() + l4.len()];
    let mut packet = Ipv4Packet::new_unchecked(&mut buf[..]);
    repr.emit(&mut packet, &caps());
    packet.payload_mut().copy_from_slice(l4);
    buf
}

/// An IPv4 frame from HOST's MAC to the gateway MAC.
fn ip_frame(src: Ipv4Addr, dst: Ipv4Addr, protocol: IpProtocol, ttl: u8, l4: &[u8]) -> Vec<u8> {
    let packet = ipv4_packet(src, dst, protocol, ttl, l4);
    ethernet(HOST_MAC, GW_MAC, EthernetProtocol::Ipv4, &packet)
}

/// Changes the IPv4 header of an inner frame and fixes its checksum.
fn edit_ip(frame: &mut [u8], edit: impl FnOnce(&mut Ipv4Packet<&mut [u8]>)) {
    let mut packet = Ipv4Packet::new_unchecked(&mut frame[ETHERNET_HEADER_LEN..]);
    edit(&mut packet);
    packet.fill_checksum();
}

fn icmp_bytes(repr: &Icmpv4Repr<'_>) -> Vec<u8> {
    let mut buf = vec![0; repr.buffer_len()];
    repr.emit(&mut Icmpv4Packet::new_unchecked(&mut buf[..]), &caps());
    buf
}

fn echo_request(data: &[u8]) -> Vec<u8> {
    icmp_bytes(&Icmpv4Repr::EchoRequest {
        ident: 0x1234,
        seq_no: 7,
        data,
    })
}

fn udp_bytes(src: (Ipv4Addr, u16), dst: (Ipv4Addr, u16), payload: &[u8]) -> Vec<u8> {
    let repr = UdpRepr {
        src_port: src.1,
        dst_port: dst.1,
    };
    let mut buf = vec![0; repr.header_len() + payload.len()];
    repr.emit(
        &mut UdpPacket::new_unchecked(&mut buf[..]),
        &src.0.into(),
        &dst.0.into(),
        payload.len(),
        |p| p.copy_from_slice(payload),
        &caps(),
    );
    buf
}

fn echo_frame() -> Vec<u8> {
    ip_frame(HOST, GW, IpProtocol::Icmp, 64, &echo_request(&[0x42; 32]))
}

/// A traceroute probe through the gateway with TTL `ttl` and `len` bytes of UDP payload.
fn transit_frame(ttl: u8, len: usize) -> Vec<u8> {
    let payload: Vec<u8> = (0..len).map(|i| i as u8).collect();
    let udp = udp_bytes((HOST, 40000), (REMOTE, 33434), &payload);
    ip_frame(HOST, REMOTE, IpProtocol::Udp, ttl, &udp)
}

fn bootp() -> Vec<u8> {
    let mut bootp = vec![0u8; 240];
    bootp[0] = 1; // BOOTREQUEST
    bootp[1] = 1;
    bootp[2] = 6;
    bootp[28..34].copy_from_slice(&HOST_MAC.0);
    bootp[236..240].copy_from_slice(&[99, 130, 83, 99]);
    bootp.extend_from_slice(&[53, 1, 1, 255]);
    bootp
}

fn dhcp_discover() -> Vec<u8> {
    let udp = udp_bytes(
        (Ipv4Addr::UNSPECIFIED, 68),
        (Ipv4Addr::BROADCAST, 67),
        &bootp(),
    );
    let packet = ipv4_packet(
        Ipv4Addr::UNSPECIFIED,
        Ipv4Addr::BROADCAST,
        IpProtocol::Udp,
        64,
        &udp,
    );
    ethernet(
        HOST_MAC,
        EthernetAddress::BROADCAST,
        EthernetProtocol::Ipv4,
        &packet,
    )
}

// --- checks on replies ---

/// Decapsulates a reply to a frame sent in `encap` and checks that it is on the same LSL:
/// the same tags, or the same VNI with the outer addresses swapped.
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
            assert_eq!(outer.dst_port, request.dst_port);
            assert!(FLOW_PORTS.contains(&outer.src_port));
            assert_ne!(outer.udp_checksum, 0, "the outer UDP checksum is computed");
        }
        (Encap::Dot1q { .. } | Encap::QinQ { .. }, Outer::Vlan(tags)) => {
            assert_eq!(reply.lsl, Some(lsl_of(encap)));
            assert_eq!(reply.reply_encap(), *encap, "same tags");
            assert!(tags.tags().iter().all(|tag| tag.pcp == 0));
        }
        (encap, outer) => panic!("reply in {outer:?} to a request in {encap:?}"),
    }
    reply.inner.into_owned()
}

const FLOW_PORTS: std::ops::RangeInclusive<u16> = lsl::encap::FLOW_PORT_RANGE;

/// Checks the Ethernet and IPv4 headers of a reply from the gateway to HOST; returns the
/// IPv4 payload.
fn check_ipv4_reply(inner: &[u8], protocol: IpProtocol, dscp: u8) -> Vec<u8> {
    let eth = EthernetFrame::new_checked(inner).expect("an Ethernet frame");
    assert_eq!(
        (eth.src_addr(), eth.dst_addr(), eth.ethertype()),
        (GW_MAC, HOST_MAC, EthernetProtocol::Ipv4)
    );
    let ip = Ipv4Packet::new_checked(eth.payload()).expect("an IPv4 packet");
    assert!(ip.verify_checksum());
    assert_eq!(ip.dscp(), dscp);
    assert_eq!(
        ip.total_len() as usize,
        eth.payload().len(),
        "no trailing bytes"
    );
    let repr = Ipv4Repr::parse(&ip, &caps()).expect("a valid IPv4 header");
    assert_eq!(
        repr,
        Ipv4Repr {
            src_addr: GW,
            dst_addr: HOST,
            next_header: protocol,
            payload_len: repr.payload_len,
            hop_limit: REPLY_TTL,
        }
    );
    ip.payload().to_vec()
}

/// Checks an ICMP error about `original` (an inner frame) and returns its ICMP bytes.
fn check_icmp_error(inner: &[u8], original: &[u8], message: Icmpv4Message, code: u8) -> Vec<u8> {
    let icmp = check_ipv4_reply(inner, IpProtocol::Icmp, ICMP_ERROR_DSCP);
    let packet = Icmpv4Packet::new_checked(&icmp[..]).expect("an ICMP message");
    assert!(packet.verify_checksum());
    assert_eq!((packet.msg_type(), packet.msg_code()), (message, code));
    let original_ip = &original[ETHERNET_HEADER_LEN..];
    let quote = packet.data();
    assert_eq!(quote.len(), original_ip.len().min(MAX_QUOTE));
    assert_eq!(quote, &original_ip[..quote.len()], "a verbatim quote");
    assert!(ICMP_ERROR_HEADER_LEN + IPV4_HEADER_LEN + quote.len() <= ICMP_ERROR_MAX_LEN);
    // The quoted header is the original's; smoltcp's Repr reads a quote back only when
    // it holds the whole original datagram (it checks the quoted total length).
    let original_header = Ipv4Packet::new_unchecked(original_ip);
    let quoted_header = Ipv4Packet::new_unchecked(quote);
    assert!(quoted_header.verify_checksum());
    assert_eq!(
        (quoted_header.src_addr(), quoted_header.dst_addr()),
        (original_header.src_addr(), original_header.dst_addr())
    );
    if quote.len() == usize::from(original_header.total_len()) {
        let header = match Icmpv4Repr::parse(&packet, &caps()).expect("smoltcp parses it") {
            Icmpv4Repr::DstUnreachable { header, .. } | Icmpv4Repr::TimeExceeded { header, .. } => {
                header
            }
            other => panic!("not an error: {other:?}"),
        };
        assert_eq!(
            (header.src_addr, header.dst_addr, header.next_header),
            (
                original_header.src_addr(),
                original_header.dst_addr(),
                original_header.next_header()
            )
        );
    }
    icmp
}

// --- ARP ---

#[test]
fn arp_request_for_the_gateway_is_answered_on_every_lsl() {
    for encap in encaps() {
        for link_dst in [EthernetAddress::BROADCAST, GW_MAC] {
            let request = arp_frame(&ArpFields {
                link_dst,
                ..arp_request(HOST, GW)
            });
            let frame = wrap(&encap, &request);
            let reply = expect_reply(answer(&home(&encap), &frame, &opts()));
            assert_eq!(reply.kind, ReplyKind::Arp);
            let inner = unwrap_reply(&encap, &reply.frame);
            let eth = EthernetFrame::new_checked(&inner[..]).expect("Ethernet");
            assert_eq!(
                (eth.src_addr(), eth.dst_addr(), eth.ethertype()),
                (GW_MAC, HOST_MAC, EthernetProtocol::Arp),
                "unicast to the requester, from the gateway MAC"
            );
            let arp = ArpPacket::new_checked(eth.payload()).expect("ARP");
            assert_eq!(
                ArpRepr::parse(&arp).expect("Ethernet/IPv4 ARP"),
                ArpRepr::EthernetIpv4 {
                    operation: ArpOperation::Reply,
                    source_hardware_addr: GW_MAC,
                    source_protocol_addr: GW,
                    target_hardware_addr: HOST_MAC,
                    target_protocol_addr: HOST,
                }
            );
        }
    }
}

#[test]
fn arp_probe_for_the_gateway_is_answered() {
    // RFC 5227: a host probing the gateway address learns it is taken.
    let probe = arp_frame(&arp_request(Ipv4Addr::UNSPECIFIED, GW));
    let reply = expect_reply(answer_dot1q(&probe));
    let inner = unwrap_reply(&encaps()[0], &reply.frame);
    let eth = EthernetFrame::new_checked(&inner[..]).expect("Ethernet");
    assert_eq!(eth.dst_addr(), HOST_MAC);
    let arp = ArpPacket::new_checked(eth.payload()).expect("ARP");
    assert_eq!(
        ArpRepr::parse(&arp).expect("ARP"),
        ArpRepr::EthernetIpv4 {
            operation: ArpOperation::Reply,
            source_hardware_addr: GW_MAC,
            source_protocol_addr: GW,
            target_hardware_addr: HOST_MAC,
            target_protocol_addr: Ipv4Addr::UNSPECIFIED,
        }
    );
    // A probe for another address is the other host's to answer.
    let other = arp_frame(&arp_request(Ipv4Addr::UNSPECIFIED, OTHER));
    assert_eq!(answer_dot1q(&other), Err(Ignored::NotForUs));
}

#[test]
fn padded_arp_request_is_answered() {
    let mut request = arp_frame(&arp_request(HOST, GW));
    request.resize(60, 0);
    let reply = expect_reply(answer_dot1q(&request));
    let inner = unwrap_reply(&encaps()[0], &reply.frame);
    assert_eq!(inner.len(), ETHERNET_HEADER_LEN + 28, "no padding copied");
}

#[test]
fn arp_that_is_not_a_request_for_the_gateway_is_ignored() {
    let binding = ArpBinding {
        mac: HOST_MAC,
        ip: HOST,
    };
    let cases = [
        (
            "request for another host",
            arp_request(HOST, OTHER),
            Ignored::NotForUs,
        ),
        (
            "unicast to another MAC",
            ArpFields {
                link_dst: OTHER_MAC,
                ..arp_request(HOST, GW)
            },
            Ignored::NotForUs,
        ),
        (
            "gratuitous request",
            arp_request(HOST, HOST),
            Ignored::ArpAnnouncement(binding),
        ),
        (
            "reply",
            ArpFields {
                operation: ArpOperation::Reply,
                link_dst: GW_MAC,
                ..arp_request(HOST, GW)
            },
            Ignored::ArpAnnouncement(binding),
        ),
        (
            "gratuitous reply",
            ArpFields {
                operation: ArpOperation::Reply,
                ..arp_request(HOST, HOST)
            },
            Ignored::ArpAnnouncement(binding),
        ),
        (
            "sender outside the LAN",
            arp_request(Ipv4Addr::new(10, 9, 9, 9), GW),
            Ignored::BadSource,
        ),
        (
            "sender is the LAN broadcast",
            arp_request(LAN_BROADCAST, GW),
            Ignored::BadSource,
        ),
        (
            "sender is the LAN network",
            arp_request(Ipv4Addr::new(192, 168, 1, 0), GW),
            Ignored::BadSource,
        ),
        (
            "reply from 0.0.0.0",
            ArpFields {
                operation: ArpOperation::Reply,
                ..arp_request(Ipv4Addr::UNSPECIFIED, GW)
            },
            Ignored::BadSource,
        ),
        (
            "group sender MAC",
            ArpFields {
                sender_mac: MULTICAST_MAC,
                ..arp_request(HOST, GW)
            },
            Ignored::BadSource,
        ),
        (
            "another station claims the gateway address",
            arp_request(GW, GW),
            Ignored::GatewayConflict(ArpBinding {
                mac: HOST_MAC,
                ip: GW,
            }),
        ),
        (
            "RARP-style operation",
            ArpFields {
                operation: ArpOperation::Unknown(3),
                ..arp_request(HOST, GW)
            },
            Ignored::Unsupported(Unsupported::ArpOperation(3)),
        ),
    ];
    for (what, fields, expected) in cases {
        for encap in encaps() {
            let frame = wrap(&encap, &arp_frame(&fields));
            assert_eq!(
                answer(&home(&encap), &frame, &opts()),
                Err(expected),
                "{what}"
            );
        }
    }

    let mut group_source = arp_frame(&arp_request(HOST, GW));
    group_source[6..12].copy_from_slice(&EthernetAddress::BROADCAST.0);
    assert_eq!(answer_dot1q(&group_source), Err(Ignored::BadSource));

    let mut ieee802 = arp_frame(&arp_request(HOST, GW));
    ArpPacket::new_unchecked(&mut ieee802[ETHERNET_HEADER_LEN..])
        .set_hardware_type(ArpHardware::Unknown(6));
    assert_eq!(
        answer_dot1q(&ieee802),
        Err(Ignored::Unsupported(Unsupported::ArpFormat))
    );
}

// --- ICMP echo and other traffic to the gateway ---

#[test]
fn echo_request_to_the_gateway_is_answered_on_every_lsl() {
    let data: Vec<u8> = (0..56).collect();
    let request = ip_frame(HOST, GW, IpProtocol::Icmp, 64, &echo_request(&data));
    for encap in encaps() {
        let frame = wrap(&encap, &request);
        let reply = expect_reply(answer(&home(&encap), &frame, &opts()));
        assert_eq!(reply.kind, ReplyKind::EchoReply);
        let inner = unwrap_reply(&encap, &reply.frame);
        let icmp = check_ipv4_reply(&inner, IpProtocol::Icmp, 0);
        let packet = Icmpv4Packet::new_checked(&icmp[..]).expect("ICMP");
        assert!(packet.verify_checksum());
        assert_eq!(
            Icmpv4Repr::parse(&packet, &caps()).expect("a valid echo reply"),
            Icmpv4Repr::EchoReply {
                ident: 0x1234,
                seq_no: 7,
                data: &data,
            }
        );
    }
}

#[test]
fn padded_empty_echo_request_gets_an_empty_reply() {
    let mut request = ip_frame(HOST, GW, IpProtocol::Icmp, 1, &echo_request(&[]));
    request.resize(60, 0xee);
    let reply = expect_reply(answer_dot1q(&request));
    let inner = unwrap_reply(&encaps()[0], &reply.frame);
    let icmp = check_ipv4_reply(&inner, IpProtocol::Icmp, 0);
    assert_eq!(icmp.len(), 8, "the Ethernet padding is not echoed");
}

#[test]
fn udp_to_the_gateway_gets_port_unreachable() {
    let udp = udp_bytes((HOST, 50000), (GW, 53), b"a DNS query, say");
    let request = ip_frame(HOST, GW, IpProtocol::Udp, 64, &udp);
    for encap in encaps() {
        let frame = wrap(&encap, &request);
        let reply = expect_reply(answer(&home(&encap), &frame, &opts()));
        assert_eq!(reply.kind, ReplyKind::IcmpError(IcmpError::PortUnreachable));
        let inner = unwrap_reply(&encap, &reply.frame);
        check_icmp_error(
            &inner,
            &request,
            Icmpv4Message::DstUnreachable,
            Icmpv4DstUnreachable::PortUnreachable.into(),
        );
    }
}

#[test]
fn other_traffic_to_the_gateway_is_ignored() {
    let echo = echo_request(&[1, 2, 3, 4]);
    let mut bad_icmp_checksum = ip_frame(HOST, GW, IpProtocol::Icmp, 64, &echo);
    bad_icmp_checksum[ETHERNET_HEADER_LEN + IPV4_HEADER_LEN + 8] ^= 0x01;
    let mut bad_ip_checksum = echo_frame();
    bad_ip_checksum[ETHERNET_HEADER_LEN + 10] ^= 0x01;
    let mut ipv6_in_ipv4 = echo_frame();
    edit_ip(&mut ipv6_in_ipv4, |ip| ip.set_version(6));
    let mut short_ihl = echo_frame();
    edit_ip(&mut short_ihl, |ip| ip.set_header_len(16));
    let mut long_total = echo_frame();
    edit_ip(&mut long_total, |ip| ip.set_total_len(1000));
    let mut first_fragment = echo_frame();
    edit_ip(&mut first_fragment, |ip| ip.set_more_frags(true));
    let mut later_fragment = echo_frame();
    edit_ip(&mut later_fragment, |ip| ip.set_frag_offset(1480));
    let mut to_another_mac = echo_frame();
    to_another_mac[..6].copy_from_slice(&OTHER_MAC.0);
    let mut echo_code_1 = echo.clone();
    echo_code_1[1] = 1;
    let mut timestamp = icmp_bytes(&Icmpv4Repr::EchoRequest {
        ident: 1,
        seq_no: 1,
        data: &[0; 12],
    });
    timestamp[0] = 13;
    let tcp_syn = [0u8; 20];

    let cases: [(&str, Vec<u8>, Ignored); 15] = [
        (
            "bad ICMP checksum",
            bad_icmp_checksum,
            Ignored::Malformed(Layer::Icmp),
        ),
        (
            "bad IPv4 checksum",
            bad_ip_checksum,
            Ignored::Malformed(Layer::Ipv4),
        ),
        ("version 6", ipv6_in_ipv4, Ignored::Malformed(Layer::Ipv4)),
        ("IHL 4", short_ihl, Ignored::Malformed(Layer::Ipv4)),
        (
            "total length beyond the frame",
            long_total,
            Ignored::Malformed(Layer::Ipv4),
        ),
        ("first fragment", first_fragment, Ignored::Fragment),
        ("later fragment", later_fragment, Ignored::Fragment),
        ("another MAC", to_another_mac, Ignored::NotForUs),
        (
            "echo code 1",
            ip_frame(HOST, GW, IpProtocol::Icmp, 64, &echo_code_1),
            Ignored::Malformed(Layer::Icmp),
        ),
        (
            "timestamp request",
            ip_frame(HOST, GW, IpProtocol::Icmp, 64, &timestamp),
            Ignored::Unsupported(Unsupported::IcmpType(13)),
        ),
        (
            "echo reply",
            ip_frame(
                HOST,
                GW,
                IpProtocol::Icmp,
                64,
                &icmp_bytes(&Icmpv4Repr::EchoReply {
                    ident: 1,
                    seq_no: 1,
                    data: &[],
                }),
            ),
            Ignored::Unsupported(Unsupported::IcmpType(0)),
        ),
        (
            "TCP",
            ip_frame(HOST, GW, IpProtocol::Tcp, 64, &tcp_syn),
            Ignored::Unsupported(Unsupported::Protocol(6)),
        ),
        (
            "from outside the LAN",
            ip_frame(Ipv4Addr::new(10, 9, 9, 9), GW, IpProtocol::Icmp, 64, &echo),
            Ignored::BadSource,
        ),
        (
            "from 0.0.0.0",
            ip_frame(Ipv4Addr::UNSPECIFIED, GW, IpProtocol::Icmp, 64, &echo),
            Ignored::BadSource,
        ),
        (
            "from the gateway address",
            ip_frame(GW, GW, IpProtocol::Icmp, 64, &echo),
            Ignored::BadSource,
        ),
    ];
    for (what, inner, expected) in cases {
        for encap in encaps() {
            let frame = wrap(&encap, &inner);
            assert_eq!(
                answer(&home(&encap), &frame, &opts()),
                Err(expected),
                "{what}"
            );
        }
    }
    let mut group_source = echo_frame();
    group_source[6..12].copy_from_slice(&MULTICAST_MAC.0);
    assert_eq!(answer_dot1q(&group_source), Err(Ignored::BadSource));
}

#[test]
fn ipv6_and_other_ethertypes_are_unsupported() {
    let ipv6 = ethernet(HOST_MAC, GW_MAC, EthernetProtocol::Ipv6, &[0x60; 40]);
    assert_eq!(
        answer_dot1q(&ipv6),
        Err(Ignored::Unsupported(Unsupported::Ipv6))
    );
    let lldp = ethernet(
        HOST_MAC,
        GW_MAC,
        EthernetProtocol::Unknown(0x88cc),
        &[0; 46],
    );
    assert_eq!(
        answer_dot1q(&lldp),
        Err(Ignored::Unsupported(Unsupported::Ethertype(0x88cc)))
    );
}

// --- ICMP errors ---

#[test]
fn ttl_expiring_at_the_gateway_gets_time_exceeded_on_every_lsl() {
    for ttl in [0, 1] {
        let request = transit_frame(ttl, 32);
        for encap in encaps() {
            let frame = wrap(&encap, &request);
            let reply = expect_reply(answer(&home(&encap), &frame, &opts()));
            assert_eq!(reply.kind, ReplyKind::IcmpError(IcmpError::TimeExceeded));
            let inner = unwrap_reply(&encap, &reply.frame);
            let icmp = check_icmp_error(
                &inner,
                &request,
                Icmpv4Message::TimeExceeded,
                Icmpv4TimeExceeded::TtlExpired.into(),
            );
            assert_eq!(&icmp[4..8], &[0; 4], "the unused word is zero");
            // The same through the explicit builder.
            let built = icmp_error(&home(&encap), &frame, &opts(), IcmpError::TimeExceeded)
                .expect("time exceeded");
            assert_eq!(built, reply);
        }
    }
    // TTL 2 leaves with TTL 1: the fast path's, not ours.
    assert_eq!(answer_dot1q(&transit_frame(2, 32)), Err(Ignored::NotForUs));
}

#[test]
fn icmp_errors_quote_up_to_576_bytes() {
    let request = transit_frame(1, 1400);
    let reply = expect_reply(answer_dot1q(&request));
    let inner = unwrap_reply(&encaps()[0], &reply.frame);
    let icmp = check_icmp_error(&inner, &request, Icmpv4Message::TimeExceeded, 0);
    assert_eq!(icmp.len(), MAX_QUOTE + ICMP_ERROR_HEADER_LEN);
    assert_eq!(IPV4_HEADER_LEN + icmp.len(), ICMP_ERROR_MAX_LEN);

    // A datagram cut short by the punt record (the IPv4 header says 1428 bytes) is
    // quoted as far as it goes; 8 bytes of payload are the least.
    for cut in [100, ETHERNET_HEADER_LEN + IPV4_HEADER_LEN + 8] {
        let reply = expect_reply(answer_dot1q(&request[..cut]));
        let inner = unwrap_reply(&encaps()[0], &reply.frame);
        check_icmp_error(&inner, &request[..cut], Icmpv4Message::TimeExceeded, 0);
    }
    let too_short = &request[..ETHERNET_HEADER_LEN + IPV4_HEADER_LEN + 7];
    assert_eq!(
        answer_dot1q(too_short),
        Err(Ignored::Malformed(Layer::Ipv4))
    );
    // A datagram with less than 8 bytes of payload is quoted whole.
    let tiny = ip_frame(HOST, REMOTE, IpProtocol::Unknown(253), 1, &[1, 2, 3]);
    let reply = expect_reply(answer_dot1q(&tiny));
    let inner = unwrap_reply(&encaps()[0], &reply.frame);
    let icmp = check_ipv4_reply(&inner, IpProtocol::Icmp, ICMP_ERROR_DSCP);
    assert_eq!(&icmp[8..], &tiny[ETHERNET_HEADER_LEN..]);
}

#[test]
fn fragmentation_needed_carries_the_next_hop_mtu() {
    let request = transit_frame(64, 1400); // smoltcp sets DF
    let error = IcmpError::FragmentationNeeded { next_hop_mtu: 1280 };
    for encap in encaps() {
        let frame = wrap(&encap, &request);
        let reply = icmp_error(&home(&encap), &frame, &opts(), error).expect("an error");
        assert_eq!(reply.kind, ReplyKind::IcmpError(error));
        let inner = unwrap_reply(&encap, &reply.frame);
        let icmp = check_icmp_error(
            &inner,
            &request,
            Icmpv4Message::DstUnreachable,
            Icmpv4DstUnreachable::FragRequired.into(),
        );
        assert_eq!(&icmp[4..8], &[0, 0, 0x05, 0x00], "RFC 1191 next-hop MTU");
    }
    let fits = IcmpError::FragmentationNeeded { next_hop_mtu: 1500 };
    assert_eq!(
        icmp_error(
            &home(&encaps()[0]),
            &wrap(&encaps()[0], &request),
            &opts(),
            fits
        ),
        Err(Ignored::NoIcmpError(Suppressed::Inapplicable))
    );
    let mut no_df = transit_frame(64, 1400);
    edit_ip(&mut no_df, |ip| ip.set_dont_frag(false));
    assert_eq!(
        icmp_error(
            &home(&encaps()[0]),
            &wrap(&encaps()[0], &no_df),
            &opts(),
            error
        ),
        Err(Ignored::NoIcmpError(Suppressed::Inapplicable))
    );
}

#[test]
fn admin_prohibited_for_a_refused_mapping() {
    let syn = [0u8; 20];
    let request = ip_frame(HOST, REMOTE, IpProtocol::Tcp, 64, &syn);
    for encap in encaps() {
        let frame = wrap(&encap, &request);
        let reply = icmp_error(&home(&encap), &frame, &opts(), IcmpError::AdminProhibited)
            .expect("an error");
        let inner = unwrap_reply(&encap, &reply.frame);
        check_icmp_error(
            &inner,
            &request,
            Icmpv4Message::DstUnreachable,
            Icmpv4DstUnreachable::CommProhibited.into(),
        );
    }
}

#[test]
fn icmp_errors_are_suppressed_where_rfc_1812_says() {
    let udp = udp_bytes((HOST, 40000), (REMOTE, 33434), &[0; 16]);
    let unreachable = icmp_bytes(&Icmpv4Repr::DstUnreachable {
        reason: Icmpv4DstUnreachable::PortUnreachable,
        header: Ipv4Repr {
            src_addr: REMOTE,
            dst_addr: HOST,
            next_header: IpProtocol::Udp,
            payload_len: 8,
            hop_limit: 50,
        },
        data: &[0; 8],
    });
    let mut later_fragment = transit_frame(1, 32);
    edit_ip(&mut later_fragment, |ip| ip.set_frag_offset(1480));
    let mut link_broadcast = transit_frame(1, 32);
    link_broadcast[..6].copy_from_slice(&EthernetAddress::BROADCAST.0);
    let mut link_multicast = transit_frame(1, 32);
    link_multicast[..6].copy_from_slice(&MULTICAST_MAC.0);
    let mut to_another_mac = transit_frame(1, 32);
    to_another_mac[..6].copy_from_slice(&OTHER_MAC.0);
    let ttl1 = |src, dst, protocol, l4: &[u8]| ip_frame(src, dst, protocol, 1, l4);
    let suppressed = |why| Err(Ignored::NoIcmpError(why));

    let cases: [(&str, Vec<u8>, Result<(), Ignored>); 14] = [
        ("plain", transit_frame(1, 32), Ok(())),
        (
            "an ICMP query may get an error",
            ttl1(HOST, REMOTE, IpProtocol::Icmp, &echo_request(&[0; 8])),
            Ok(()),
        ),
        (
            "an ICMP error",
            ttl1(HOST, REMOTE, IpProtocol::Icmp, &unreachable),
            suppressed(Suppressed::IcmpError),
        ),
        (
            "ICMP without a type",
            ttl1(HOST, REMOTE, IpProtocol::Icmp, &[]),
            suppressed(Suppressed::IcmpError),
        ),
        (
            "later fragment",
            later_fragment,
            suppressed(Suppressed::Fragment),
        ),
        (
            "link broadcast",
            link_broadcast,
            suppressed(Suppressed::Broadcast),
        ),
        (
            "link multicast",
            link_multicast,
            suppressed(Suppressed::Broadcast),
        ),
        (
            "limited broadcast",
            ttl1(HOST, Ipv4Addr::BROADCAST, IpProtocol::Udp, &udp),
            suppressed(Suppressed::Broadcast),
        ),
        (
            "directed broadcast",
            ttl1(HOST, LAN_BROADCAST, IpProtocol::Udp, &udp),
            suppressed(Suppressed::Broadcast),
        ),
        (
            "multicast",
            ttl1(HOST, Ipv4Addr::new(224, 0, 0, 251), IpProtocol::Udp, &udp),
            suppressed(Suppressed::Broadcast),
        ),
        (
            "from 0.0.0.0",
            ttl1(Ipv4Addr::UNSPECIFIED, REMOTE, IpProtocol::Udp, &udp),
            suppressed(Suppressed::NoSource),
        ),
        (
            "from outside the LAN",
            ttl1(Ipv4Addr::new(10, 9, 9, 9), REMOTE, IpProtocol::Udp, &udp),
            Err(Ignored::BadSource),
        ),
        (
            "from the gateway address",
            ttl1(GW, REMOTE, IpProtocol::Udp, &udp),
            Err(Ignored::BadSource),
        ),
        ("to another MAC", to_another_mac, Err(Ignored::NotForUs)),
    ];
    for (what, inner, expected) in cases {
        for encap in encaps() {
            let frame = wrap(&encap, &inner);
            let home = home(&encap);
            for error in [
                IcmpError::TimeExceeded,
                IcmpError::AdminProhibited,
                IcmpError::PortUnreachable,
            ] {
                let built = icmp_error(&home, &frame, &opts(), error).map(|_| ());
                assert_eq!(built, expected, "{what}: {error:?}");
            }
            // answer() sends time exceeded on its own for the same frames.
            let answered = answer(&home, &frame, &opts()).map(|_| ());
            assert_eq!(answered, expected, "{what}: answer");
        }
    }
    assert_eq!(
        icmp_error(
            &home(&encaps()[0]),
            &wrap(&encaps()[0], &transit_frame(2, 32)),
            &opts(),
            IcmpError::TimeExceeded
        ),
        Err(Ignored::NoIcmpError(Suppressed::Inapplicable))
    );
    let ipv6 = ethernet(HOST_MAC, GW_MAC, EthernetProtocol::Ipv6, &[0x60; 40]);
    assert_eq!(
        icmp_error(
            &home(&encaps()[0]),
            &wrap(&encaps()[0], &ipv6),
            &opts(),
            IcmpError::AdminProhibited
        ),
        Err(Ignored::Unsupported(Unsupported::Ethertype(0x86dd)))
    );
}

// --- DHCP ---

#[test]
fn dhcp_goes_to_the_engine_on_every_lsl() {
    for encap in encaps() {
        let frame = wrap(&encap, &dhcp_discover());
        let Ok(Answer::Dhcp(dhcp)) = answer(&home(&encap), &frame, &opts()) else {
            panic!("a DHCP request expected in {encap:?}");
        };
        assert_eq!(dhcp.payload(), &bootp()[..]);
        assert_eq!(dhcp.client_mac, HOST_MAC);
        assert_eq!(
            (dhcp.src, dhcp.dst, dhcp.src_port),
            (Ipv4Addr::UNSPECIFIED, Ipv4Addr::BROADCAST, 68)
        );
        assert_eq!(dhcp.decapsulated.inner, &dhcp_discover()[..]);
        assert_eq!(dhcp.decapsulated.lsl, Some(lsl_of(&encap)));
        // A reply built with the engine's payload goes back on the same LSL.
        let reply = udp_from_gateway(
            &home(&encap),
            &dhcp.decapsulated.reply_encap(),
            &GatewayDatagram {
                dst_mac: EthernetAddress::BROADCAST,
                dst: Ipv4Addr::BROADCAST,
                src_port: 67,
                dst_port: 68,
                payload: b"an OFFER",
            },
        )
        .expect("builds");
        let inner = unwrap_reply(&encap, &reply);
        let eth = EthernetFrame::new_checked(&inner[..]).expect("Ethernet");
        assert_eq!(
            (eth.src_addr(), eth.dst_addr()),
            (GW_MAC, EthernetAddress::BROADCAST)
        );
        let ip = Ipv4Packet::new_checked(eth.payload()).expect("IPv4");
        assert_eq!(
            Ipv4Repr::parse(&ip, &caps()).expect("checksum and all"),
            Ipv4Repr {
                src_addr: GW,
                dst_addr: Ipv4Addr::BROADCAST,
                next_header: IpProtocol::Udp,
                payload_len: 8 + 8,
                hop_limit: REPLY_TTL,
            }
        );
        let udp = UdpPacket::new_checked(ip.payload()).expect("UDP");
        let (src, dst): (IpAddress, IpAddress) = (GW.into(), Ipv4Addr::BROADCAST.into());
        assert_ne!(udp.checksum(), 0);
        assert!(udp.verify_checksum(&src, &dst));
        assert_eq!((udp.src_port(), udp.dst_port()), (67, 68));
        assert_eq!(udp.payload(), b"an OFFER");
    }
}

#[test]
fn dhcp_checks() {
    let renew = |dst: Ipv4Addr| {
        let udp = udp_bytes((HOST, 68), (dst, 67), &bootp());
        ip_frame(HOST, dst, IpProtocol::Udp, 64, &udp)
    };
    let dhcp = |frame: &[u8]| {
        let encap = encaps()[0];
        let wrapped = wrap(&encap, frame);
        answer(&home(&encap), &wrapped, &opts()).map(|answer| match answer {
            Answer::Dhcp(dhcp) => (dhcp.src, dhcp.dst, dhcp.payload().to_vec()),
            Answer::Reply(reply) => panic!("unexpected reply {reply:?}"),
        })
    };
    assert_eq!(dhcp(&renew(GW)), Ok((HOST, GW, bootp())));
    assert_eq!(
        dhcp(&renew(LAN_BROADCAST)),
        Ok((HOST, LAN_BROADCAST, bootp()))
    );
    assert_eq!(dhcp(&renew(OTHER)), Err(Ignored::NotForUs));
    let mut to_another_mac = renew(GW);
    to_another_mac[..6].copy_from_slice(&OTHER_MAC.0);
    assert_eq!(dhcp(&to_another_mac), Err(Ignored::NotForUs));
    let mut bad_checksum = dhcp_discover();
    let last = bad_checksum.len() - 1;
    bad_checksum[last] ^= 0x01;
    assert_eq!(dhcp(&bad_checksum), Err(Ignored::Malformed(Layer::Udp)));
    let mut no_checksum = dhcp_discover();
    let at = ETHERNET_HEADER_LEN + IPV4_HEADER_LEN + 6;
    no_checksum[at..at + 2].copy_from_slice(&[0, 0]);
    assert!(dhcp(&no_checksum).is_ok(), "a zero UDP checksum is none");
    let mut long_udp = dhcp_discover();
    let at = ETHERNET_HEADER_LEN + IPV4_HEADER_LEN + 4;
    long_udp[at..at + 2].copy_from_slice(&1000u16.to_be_bytes());
    assert_eq!(dhcp(&long_udp), Err(Ignored::Malformed(Layer::Udp)));
    // A fragmented "DHCP" datagram is not DHCP: nobody reassembles it.
    let mut fragment = dhcp_discover();
    edit_ip(&mut fragment, |ip| ip.set_more_frags(true));
    assert_eq!(dhcp(&fragment), Err(Ignored::NotForUs));
}

#[test]
fn gateway_datagram_too_long() {
    let encap = encaps()[0];
    let payload = vec![0; usize::from(u16::MAX)];
    let datagram = GatewayDatagram {
        dst_mac: HOST_MAC,
        dst: HOST,
        src_port: 67,
        dst_port: 68,
        payload: &payload,
    };
    assert!(matches!(
        udp_from_gateway(&home(&encap), &encap, &datagram),
        Err(EncapError::TooLong { .. })
    ));
    let largest = &payload[..usize::from(u16::MAX) - 28];
    let frame = udp_from_gateway(
        &home(&encap),
        &encap,
        &GatewayDatagram {
            payload: largest,
            ..datagram
        },
    )
    .expect("the largest datagram fits");
    assert_eq!(frame.len(), 4 + 14 + usize::from(u16::MAX));
}

// --- the LSL ---

#[test]
fn frames_from_another_lsl_or_none_are_ignored() {
    let request = arp_frame(&arp_request(HOST, GW));
    let [dot1q, qinq, vxlan] = encaps();
    let Encap::Vxlan(vxlan_encap) = vxlan else {
        panic!("VXLAN expected");
    };
    let other_vni = Encap::Vxlan(VxlanEncap {
        vni: Vni::new(5002).expect("a VNI"),
        ..vxlan_encap
    });
    let other_brg = Encap::Vxlan(VxlanEncap {
        local: Ipv4Addr::new(10, 0, 0, 3).into(),
        ..vxlan_encap
    });
    let cases = [
        (dot1q, Encap::Dot1q { c_vid: vid(200) }),
        (dot1q, qinq),
        (dot1q, Encap::Untagged),
        (
            qinq,
            Encap::QinQ {
                s_tpid: Tpid::STagLegacy,
                s_vid: vid(10),
                c_vid: vid(100),
            },
        ),
        (vxlan, other_vni),
        (vxlan, other_brg),
    ];
    for (home_encap, frame_encap) in cases {
        let frame = wrap(&frame_encap, &request);
        assert_eq!(
            answer(&home(&home_encap), &frame, &opts()),
            Err(Ignored::WrongLsl),
            "{frame_encap:?}"
        );
        assert_eq!(
            icmp_error(
                &home(&home_encap),
                &frame,
                &opts(),
                IcmpError::AdminProhibited
            ),
            Err(Ignored::WrongLsl)
        );
    }
    let mut bad_outer_checksum = wrap(&vxlan, &request);
    bad_outer_checksum[ETHERNET_HEADER_LEN + 10] ^= 0x01;
    assert_eq!(
        answer(&home(&vxlan), &bad_outer_checksum, &opts()),
        Err(Ignored::Decap(DecapError::Ipv4Checksum))
    );
}

// --- hostile input ---

/// Every valid request kind, inner frames.
fn valid_requests() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("arp", arp_frame(&arp_request(HOST, GW))),
        ("echo", echo_frame()),
        ("dhcp", dhcp_discover()),
        ("transit ttl 1", transit_frame(1, 32)),
        (
            "udp to the gateway",
            ip_frame(
                HOST,
                GW,
                IpProtocol::Udp,
                64,
                &udp_bytes((HOST, 5000), (GW, 53), &[7; 20]),
            ),
        ),
    ]
}

#[test]
fn every_truncation_is_an_error_without_panic() {
    for encap in encaps() {
        let home = home(&encap);
        for (what, inner) in valid_requests() {
            let frame = wrap(&encap, &inner);
            assert!(answer(&home, &frame, &opts()).is_ok(), "{what}: whole");
            // ICMP errors quote what the punt record holds, so a cut datagram is still
            // answered once its IPv4 header and 8 bytes of payload are there.
            let quotable = what == "transit ttl 1" || what == "udp to the gateway";
            let least = encap.overhead() + ETHERNET_HEADER_LEN + IPV4_HEADER_LEN + 8;
            for len in 0..frame.len() {
                let result = answer(&home, &frame[..len], &opts());
                let may_answer = quotable && !matches!(encap, Encap::Vxlan(_)) && len >= least;
                match result {
                    Err(_) => assert!(!may_answer, "{what} in {encap:?}, {len} bytes"),
                    Ok(Answer::Reply(reply)) if may_answer => {
                        unwrap_reply(&encap, &reply.frame);
                    }
                    Ok(other) => panic!("{what} in {encap:?}, {len} bytes: {other:?}"),
                }
                for error in [
                    IcmpError::TimeExceeded,
                    IcmpError::FragmentationNeeded { next_hop_mtu: 68 },
                    IcmpError::AdminProhibited,
                ] {
                    let whole = icmp_error(&home, &frame, &opts(), error).is_ok();
                    let may_build = whole && !matches!(encap, Encap::Vxlan(_)) && len >= least;
                    let built = icmp_error(&home, &frame[..len], &opts(), error);
                    assert!(
                        built.is_err() || may_build,
                        "{what}, {len} bytes, {error:?}"
                    );
                }
            }
        }
    }
}

#[test]
fn flipped_bits_and_garbage_never_panic() {
    // What the mutants come to, to show they reach every stage.
    let mut outcomes = std::collections::BTreeSet::new();
    for encap in encaps() {
        let home = home(&encap);
        for (_, inner) in valid_requests() {
            let frame = wrap(&encap, &inner);
            for at in 0..frame.len() {
                for mask in [0x01, 0x10, 0x80, 0xff] {
                    let mut mutated = frame.clone();
                    mutated[at] ^= mask;
                    outcomes.insert(match answer(&home, &mutated, &opts()) {
                        Ok(Answer::Reply(reply)) => reply.kind.label(),
                        Ok(Answer::Dhcp(_)) => "dhcp",
                        Err(ignored) => ignored.label(),
                    });
                    let _ = icmp_error(&home, &mutated, &opts(), IcmpError::AdminProhibited);
                }
            }
        }
    }
    for expected in [
        "decap",
        "wrong_lsl",
        "malformed",
        "unsupported",
        "not_for_us",
        "bad_source",
        "arp_reply",
        "echo_reply",
        "dhcp",
    ] {
        assert!(outcomes.contains(expected), "{expected} in {outcomes:?}");
    }
    // Random bytes behind a valid C-tag, so that they reach the inner parsers.
    let encap = encaps()[0];
    let home = home(&encap);
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (state >> 33) as u8
    };
    for _ in 0..5000 {
        let len = usize::from(next()) + usize::from(next() & 0x3f);
        let mut inner: Vec<u8> = (0..len.max(14)).map(|_| next()).collect();
        // Point most of them at the interesting ethertypes.
        let ethertype: [u8; 2] = match next() % 4 {
            0 => [0x08, 0x06],
            1 | 2 => [0x08, 0x00],
            _ => [inner[12], inner[13]],
        };
        inner[12..14].copy_from_slice(&ethertype);
        if next() % 2 == 0 && inner.len() > 14 {
            inner[14] = 0x45;
        }
        let frame = wrap(&encap, &inner);
        let _ = answer(&home, &frame, &opts());
        let _ = icmp_error(&home, &frame, &opts(), IcmpError::TimeExceeded);
        let _ = answer(&home, &inner, &opts());
    }
}

// --- the home ---

#[test]
fn home_from_config_and_host_rules() {
    let config = SubscriberConfig {
        id: 7,
        lsl: LslId::dot1q(vid(100)),
        gateway: GW,
        lan: "192.168.1.0/24".parse().expect("a prefix"),
        gateway_mac: crate::config::gateway_mac(7),
        hosts: Default::default(),
        dhcp: crate::dhcp::DhcpConfig::default(),
        nat: Default::default(),
        port_forwards: Default::default(),
        tcp_mss: 0,
        qos: Default::default(),
        ipv6: Default::default(),
    };
    let from_config = Home::from(&config);
    assert_eq!(from_config, home(&encaps()[0]));
    assert!(from_config.is_host(HOST));
    for not_host in [GW, LAN_BROADCAST, Ipv4Addr::new(192, 168, 1, 0), REMOTE] {
        assert!(!from_config.is_host(not_host), "{not_host}");
    }
    let point_to_point = Home {
        gateway: Ipv4Addr::new(10, 0, 0, 0),
        lan: "10.0.0.0/31".parse().expect("a prefix"),
        ..from_config
    };
    assert!(point_to_point.is_host(Ipv4Addr::new(10, 0, 0, 1)));
    assert!(!point_to_point.is_broadcast(Ipv4Addr::new(10, 0, 0, 1)));
}

#[test]
fn labels_are_distinct() {
    let ignored = [
        Ignored::Decap(DecapError::Truncated),
        Ignored::WrongLsl,
        Ignored::Malformed(Layer::Arp),
        Ignored::Unsupported(Unsupported::Ipv6),
        Ignored::NotForUs,
        Ignored::BadSource,
        Ignored::ArpAnnouncement(ArpBinding {
            mac: HOST_MAC,
            ip: HOST,
        }),
        Ignored::GatewayConflict(ArpBinding {
            mac: HOST_MAC,
            ip: GW,
        }),
        Ignored::Fragment,
        Ignored::NoIcmpError(Suppressed::Broadcast),
        Ignored::RateLimited,
        Ignored::Encap(EncapError::InnerTooShort { len: 0 }),
    ];
    let mut labels: Vec<_> = ignored.iter().map(Ignored::label).collect();
    labels.sort_unstable();
    labels.dedup();
    assert_eq!(labels.len(), ignored.len());
    let kinds = [
        ReplyKind::Arp,
        ReplyKind::EchoReply,
        ReplyKind::IcmpError(IcmpError::TimeExceeded),
        ReplyKind::IcmpError(IcmpError::FragmentationNeeded { next_hop_mtu: 1 }),
        ReplyKind::IcmpError(IcmpError::AdminProhibited),
        ReplyKind::IcmpError(IcmpError::PortUnreachable),
    ];
    let mut labels: Vec<_> = kinds.iter().map(ReplyKind::label).collect();
    labels.sort_unstable();
    labels.dedup();
    assert_eq!(labels.len(), kinds.len());
    assert_eq!(
        Ignored::GatewayConflict(ArpBinding {
            mac: HOST_MAC,
            ip: GW
        })
        .to_string(),
        "02-00-00-00-01-0a claims the gateway address 192.168.1.1"
    );
}
