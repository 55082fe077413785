//! Inner Ethernet frames for tests, built with smoltcp's `wire` (complete, correct checksums):
//! what a home host sends. Wrap them in an LSL with [`lsl::Encap::encapsulate`].

use std::net::Ipv4Addr;

pub use lsl::smoltcp::wire::TcpControl;
use lsl::smoltcp::{
    phy::ChecksumCapabilities,
    wire::{
        ArpOperation, ArpPacket, ArpRepr, EthernetAddress, EthernetFrame, EthernetProtocol,
        EthernetRepr, Icmpv4Packet, Icmpv4Repr, IpProtocol, Ipv4Packet, Ipv4Repr, TcpPacket,
        TcpRepr, TcpSeqNumber, UdpPacket, UdpRepr,
    },
};

/// The broadcast MAC.
pub const BROADCAST: [u8; 6] = [0xff; 6];

fn ethernet(src: [u8; 6], dst: [u8; 6], ethertype: EthernetProtocol, payload: &[u8]) -> Vec<u8> {
    let repr = EthernetRepr {
        src_addr: EthernetAddress(src),
        dst_addr: EthernetAddress(dst),
        ethertype,
    };
    let mut buf = vec![0u8; repr.buffer_len() + payload.len()];
    let mut frame = EthernetFrame::new_unchecked(&mut buf);
    repr.emit(&mut frame);
    frame.payload_mut().copy_from_slice(payload);
    buf
}

fn ipv4(
    src: Ipv4Addr,
    dst: Ipv4Addr,
    protocol: IpProtocol,
    payload_len: usize,
    ttl: u8,
) -> (Ipv4Repr, Vec<u8>) {
    let repr = Ipv4Repr {
        src_addr: src,
        dst_addr: dst,
        next_header: protocol,
        payload_len,
        hop_limit: ttl,
    };
    (repr, vec![0u8; repr.buffer_len() + payload_len])
}

/// An ARP request from `src_mac`/`src_ip` asking for `target_ip`.
pub fn arp_request(src_mac: [u8; 6], src_ip: Ipv4Addr, target_ip: Ipv4Addr) -> Vec<u8> {
    let repr = ArpRepr::EthernetIpv4 {
        operation: ArpOperation::Request,
        source_hardware_addr: EthernetAddress(src_mac),
        source_protocol_addr: src_ip,
        target_hardware_addr: EthernetAddress([0; 6]),
        target_protocol_addr: target_ip,
    };
    let mut arp = vec![0u8; repr.buffer_len()];
    repr.emit(&mut ArpPacket::new_unchecked(&mut arp));
    ethernet(src_mac, BROADCAST, EthernetProtocol::Arp, &arp)
}

/// A UDP datagram with `payload` in an Ethernet frame (TTL 64).
pub fn udp(
    src_mac: [u8; 6],
    dst_mac: [u8; 6],
    src: (Ipv4Addr, u16),
    dst: (Ipv4Addr, u16),
    payload: &[u8],
) -> Vec<u8> {
    udp_ttl(src_mac, dst_mac, src, dst, payload, 64)
}

/// A UDP datagram with `payload` and the given TTL in an Ethernet frame.
pub fn udp_ttl(
    src_mac: [u8; 6],
    dst_mac: [u8; 6],
    src: (Ipv4Addr, u16),
    dst: (Ipv4Addr, u16),
    payload: &[u8],
    ttl: u8,
) -> Vec<u8> {
    let udp_repr = UdpRepr {
        src_port: src.1,
        dst_port: dst.1,
    };
    let udp_len = udp_repr.header_len() + payload.len();
    let (ip_repr, mut buf) = ipv4(src.0, dst.0, IpProtocol::Udp, udp_len, ttl);
    let caps = ChecksumCapabilities::default();
    let mut ip = Ipv4Packet::new_unchecked(&mut buf);
    ip_repr.emit(&mut ip, &caps);
    let mut pkt = UdpPacket::new_unchecked(ip.payload_mut());
    udp_repr.emit(
        &mut pkt,
        &src.0.into(),
        &dst.0.into(),
        payload.len(),
        |p| p.copy_from_slice(payload),
        &caps,
    );
    ethernet(src_mac, dst_mac, EthernetProtocol::Ipv4, &buf)
}

/// A DHCPDISCOVER-shaped datagram (0.0.0.0:68 -> 255.255.255.255:67) from `mac`. The BOOTP
/// body is minimal: enough for the fast path, which only looks at the UDP port.
pub fn dhcp_discover(mac: [u8; 6]) -> Vec<u8> {
    let mut bootp = vec![0u8; 240];
    bootp[0] = 1; // BOOTREQUEST
    bootp[1] = 1; // Ethernet
    bootp[2] = 6;
    bootp[28..34].copy_from_slice(&mac);
    bootp[236..240].copy_from_slice(&[99, 130, 83, 99]); // magic cookie
    bootp.extend_from_slice(&[53, 1, 1, 255]); // DHCPDISCOVER, end
    udp(
        mac,
        BROADCAST,
        (Ipv4Addr::UNSPECIFIED, 68),
        (Ipv4Addr::BROADCAST, 67),
        &bootp,
    )
}

/// An ICMP echo request (TTL 64).
pub fn icmp_echo(
    src_mac: [u8; 6],
    dst_mac: [u8; 6],
    src: Ipv4Addr,
    dst: Ipv4Addr,
    ident: u16,
    seq: u16,
) -> Vec<u8> {
    icmp_echo_msg(src_mac, dst_mac, src, dst, ident, seq, false, 64)
}

/// An ICMP echo request or reply with the given TTL.
#[expect(
    clippy::too_many_arguments,
    reason = "one argument per header field a test varies"
)]
pub fn icmp_echo_msg(
    src_mac: [u8; 6],
    dst_mac: [u8; 6],
    src: Ipv4Addr,
    dst: Ipv4Addr,
    ident: u16,
    seq: u16,
    reply: bool,
    ttl: u8,
) -> Vec<u8> {
    let data = [0x42u8; 32];
    let icmp = if reply {
        Icmpv4Repr::EchoReply {
            ident,
            seq_no: seq,
            data: &data,
        }
    } else {
        Icmpv4Repr::EchoRequest {
            ident,
            seq_no: seq,
            data: &data,
        }
    };
    let (ip_repr, mut buf) = ipv4(src, dst, IpProtocol::Icmp, icmp.buffer_len(), ttl);
    let caps = ChecksumCapabilities::default();
    let mut ip = Ipv4Packet::new_unchecked(&mut buf);
    ip_repr.emit(&mut ip, &caps);
    icmp.emit(&mut Icmpv4Packet::new_unchecked(ip.payload_mut()), &caps);
    ethernet(src_mac, dst_mac, EthernetProtocol::Ipv4, &buf)
}

/// A TCP segment (no options) with the given flags, sequence numbers, payload and TTL.
#[expect(
    clippy::too_many_arguments,
    reason = "one argument per header field a test varies"
)]
pub fn tcp(
    src_mac: [u8; 6],
    dst_mac: [u8; 6],
    src: (Ipv4Addr, u16),
    dst: (Ipv4Addr, u16),
    control: TcpControl,
    seq: u32,
    ack: Option<u32>,
    payload: &[u8],
    ttl: u8,
) -> Vec<u8> {
    let repr = TcpRepr {
        src_port: src.1,
        dst_port: dst.1,
        control,
        seq_number: TcpSeqNumber(seq as i32),
        ack_number: ack.map(|a| TcpSeqNumber(a as i32)),
        window_len: 64240,
        window_scale: None,
        max_seg_size: None,
        sack_permitted: false,
        sack_ranges: [None, None, None],
        timestamp: None,
        payload,
    };
    let (ip_repr, mut buf) = ipv4(src.0, dst.0, IpProtocol::Tcp, repr.buffer_len(), ttl);
    let caps = ChecksumCapabilities::default();
    let mut ip = Ipv4Packet::new_unchecked(&mut buf);
    ip_repr.emit(&mut ip, &caps);
    repr.emit(
        &mut TcpPacket::new_unchecked(ip.payload_mut()),
        &src.0.into(),
        &dst.0.into(),
        &caps,
    );
    ethernet(src_mac, dst_mac, EthernetProtocol::Ipv4, &buf)
}

/// A TCP SYN (with `ack`: a SYN-ACK) carrying `options` verbatim (a multiple of 4 bytes; see
/// [`mss_option`]), with a complete checksum.
pub fn tcp_syn(
    src_mac: [u8; 6],
    dst_mac: [u8; 6],
    src: (Ipv4Addr, u16),
    dst: (Ipv4Addr, u16),
    ack: Option<u32>,
    options: &[u8],
    ttl: u8,
) -> Vec<u8> {
    assert_eq!(options.len() % 4, 0, "TCP options fill 32-bit words");
    let mut seg = vec![0u8; 20 + options.len()];
    let mut tcp = TcpPacket::new_unchecked(&mut seg);
    tcp.set_src_port(src.1);
    tcp.set_dst_port(dst.1);
    tcp.set_seq_number(TcpSeqNumber(1000));
    tcp.set_header_len((20 + options.len()) as u8);
    tcp.clear_flags();
    tcp.set_syn(true);
    if let Some(a) = ack {
        tcp.set_ack(true);
        tcp.set_ack_number(TcpSeqNumber(a as i32));
    }
    tcp.set_window_len(64240);
    tcp.options_mut().copy_from_slice(options);
    tcp.fill_checksum(&src.0.into(), &dst.0.into());
    ip_frame(src_mac, dst_mac, src.0, dst.0, IpProtocol::Tcp, &seg, ttl)
}

/// The TCP maximum-segment-size option (kind 2, length 4).
pub fn mss_option(mss: u16) -> [u8; 4] {
    let v = mss.to_be_bytes();
    [2, 4, v[0], v[1]]
}

/// An ICMP error (`icmp_type`/`code`) that quotes the IPv4 packet of `quoted_frame` (an
/// Ethernet frame) verbatim: its header and `quote_l4` bytes of what follows, as a router
/// does (RFC 792: 8 bytes; RFC 1812 allows more).
#[expect(
    clippy::too_many_arguments,
    reason = "one argument per header field a test varies"
)]
pub fn icmp_error(
    src_mac: [u8; 6],
    dst_mac: [u8; 6],
    src: Ipv4Addr,
    dst: Ipv4Addr,
    icmp_type: u8,
    code: u8,
    quoted_frame: &[u8],
    quote_l4: usize,
    ttl: u8,
) -> Vec<u8> {
    let quoted = &quoted_frame[14..];
    let ihl = usize::from(quoted[0] & 0x0f) * 4;
    let end = quoted.len().min(ihl + quote_l4);
    let mut msg = vec![icmp_type, code, 0, 0, 0, 0, 0, 0];
    msg.extend_from_slice(&quoted[..end]);
    Icmpv4Packet::new_unchecked(&mut msg).fill_checksum();
    ip_frame(src_mac, dst_mac, src, dst, IpProtocol::Icmp, &msg, ttl)
}

/// The IPv4 packet of `frame` split into two fragments with identification `ident`: the
/// first carries `first_len` bytes of the payload (a multiple of 8) and MF, the second the
/// rest at offset `first_len`. Headers other than length, flags, offset and checksum are
/// kept.
pub fn fragments(frame: &[u8], first_len: usize, ident: u16) -> [Vec<u8>; 2] {
    assert_eq!(first_len % 8, 0, "fragment offsets count 8-byte units");
    let (eth, ip) = frame.split_at(14);
    let (hdr, payload) = ip.split_at(20);
    assert!(first_len < payload.len());
    let piece = |data: &[u8], offset: usize, more: bool| {
        let mut out = eth.to_vec();
        let mut pkt = hdr.to_vec();
        pkt.extend_from_slice(data);
        let mut p = Ipv4Packet::new_unchecked(&mut pkt);
        p.set_total_len((20 + data.len()) as u16);
        p.set_ident(ident);
        p.set_dont_frag(false);
        p.set_more_frags(more);
        p.set_frag_offset(offset as u16);
        p.fill_checksum();
        out.extend_from_slice(&pkt);
        out
    };
    [
        piece(&payload[..first_len], 0, true),
        piece(&payload[first_len..], first_len, false),
    ]
}

/// An IPv4 packet around `payload` (already complete, checksums included) in an Ethernet
/// frame.
fn ip_frame(
    src_mac: [u8; 6],
    dst_mac: [u8; 6],
    src: Ipv4Addr,
    dst: Ipv4Addr,
    protocol: IpProtocol,
    payload: &[u8],
    ttl: u8,
) -> Vec<u8> {
    let (repr, mut buf) = ipv4(src, dst, protocol, payload.len(), ttl);
    let mut ip = Ipv4Packet::new_unchecked(&mut buf);
    repr.emit(&mut ip, &ChecksumCapabilities::default());
    ip.payload_mut().copy_from_slice(payload);
    ethernet(src_mac, dst_mac, EthernetProtocol::Ipv4, &buf)
}

/// A UDP datagram over IPv6 with `payload` and the given hop limit in an Ethernet frame.
pub fn udp6(
    src_mac: [u8; 6],
    dst_mac: [u8; 6],
    src: (std::net::Ipv6Addr, u16),
    dst: (std::net::Ipv6Addr, u16),
    payload: &[u8],
    hop_limit: u8,
) -> Vec<u8> {
    use lsl::smoltcp::wire::{Ipv6Packet, Ipv6Repr};
    let udp_repr = UdpRepr {
        src_port: src.1,
        dst_port: dst.1,
    };
    let udp_len = udp_repr.header_len() + payload.len();
    let ip_repr = Ipv6Repr {
        src_addr: src.0,
        dst_addr: dst.0,
        next_header: IpProtocol::Udp,
        payload_len: udp_len,
        hop_limit,
    };
    let mut buf = vec![0u8; ip_repr.buffer_len() + udp_len];
    let caps = ChecksumCapabilities::default();
    let mut ip = Ipv6Packet::new_unchecked(&mut buf);
    ip_repr.emit(&mut ip);
    let mut pkt = UdpPacket::new_unchecked(ip.payload_mut());
    udp_repr.emit(
        &mut pkt,
        &src.0.into(),
        &dst.0.into(),
        payload.len(),
        |p| p.copy_from_slice(payload),
        &caps,
    );
    ethernet(src_mac, dst_mac, EthernetProtocol::Ipv6, &buf)
}

/// An ICMPv6 message of `icmp_type` and code 0 whose body (after the 4-byte type, code and
/// checksum) is `body`, over IPv6 with the given hop limit, in an Ethernet frame; the
/// checksum is complete (RFC 4443 §2.3).
pub fn icmp6(
    src_mac: [u8; 6],
    dst_mac: [u8; 6],
    src: std::net::Ipv6Addr,
    dst: std::net::Ipv6Addr,
    icmp_type: u8,
    body: &[u8],
    hop_limit: u8,
) -> Vec<u8> {
    use lsl::smoltcp::wire::{Ipv6Packet, Ipv6Repr};
    let len = 4 + body.len();
    let ip_repr = Ipv6Repr {
        src_addr: src,
        dst_addr: dst,
        next_header: IpProtocol::Icmpv6,
        payload_len: len,
        hop_limit,
    };
    let mut buf = vec![0u8; ip_repr.buffer_len() + len];
    ip_repr.emit(&mut Ipv6Packet::new_unchecked(&mut buf));
    let msg = &mut buf[40..];
    msg[0] = icmp_type;
    msg[4..].copy_from_slice(body);
    let mut sum = 0u32;
    let mut add = |b: &[u8]| {
        for w in b.chunks(2) {
            sum += u32::from(u16::from_be_bytes([w[0], *w.get(1).unwrap_or(&0)]));
        }
    };
    add(&src.octets());
    add(&dst.octets());
    add(&(len as u32).to_be_bytes());
    add(&[0, 0, 0, 58]);
    add(msg);
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    msg[2..4].copy_from_slice(&(!(sum as u16)).to_be_bytes());
    ethernet(src_mac, dst_mac, EthernetProtocol::Ipv6, &buf)
}

/// `frame` (Ethernet + IPv6) with extension header `ext` (its first byte, the next header,
/// is overwritten with the packet's) inserted after the fixed header, whose next header
/// becomes `ext_type`. The upper-layer checksum stays valid: it does not cover extension
/// headers (RFC 8200 §8.1).
pub fn with_ext6(frame: &[u8], ext_type: u8, ext: &[u8]) -> Vec<u8> {
    let mut ext = ext.to_vec();
    ext[0] = frame[14 + 6];
    let mut out = frame[..54].to_vec();
    out[14 + 6] = ext_type;
    let plen = u16::from_be_bytes([out[18], out[19]]) + ext.len() as u16;
    out[18..20].copy_from_slice(&plen.to_be_bytes());
    out.extend_from_slice(&ext);
    out.extend_from_slice(&frame[54..]);
    out
}
