//! ICMPv6 errors: to the home on every LSL, to the core, and where RFC 4443 §2.4 (e)
//! forbids them.

use super::fixtures::*;
use super::*;

const CORE: CoreL2 = CoreL2 {
    src_mac: EthernetAddress([0x02, 0, 0, 0, 0x0c, 0x01]),
    dst_mac: EthernetAddress([0x02, 0, 0, 0, 0x0c, 0x02]),
};

fn error_to_home(inner: &[u8], error: Icmp6Error) -> Result<Reply6, Ignored6> {
    let encap = dot1q();
    icmp6_error(&home(&encap), &wrap(&encap, inner), &opts(), error)
}

#[test]
fn time_exceeded_byte_for_byte_on_every_lsl() {
    for encap in encaps() {
        let reply = icmp6_error(
            &home(&encap),
            &wrap(&encap, &EXPIRING_UDP),
            &opts(),
            Icmp6Error::TimeExceeded,
        )
        .expect("an error");
        assert_eq!(reply.kind, Reply6Kind::Error(Icmp6Error::TimeExceeded));
        assert_eq!(unwrap_reply(&encap, &reply.frame), TIME_EXCEEDED);
    }
}

/// A packet from the core to the host of `len` bytes (IPv6 header included), UDP.
fn core_packet(len: usize) -> Vec<u8> {
    let mut inner = EXPIRING_UDP.to_vec();
    inner[..6].copy_from_slice(&CORE.src_mac.0);
    inner[6..12].copy_from_slice(&CORE.dst_mac.0);
    inner[21] = 60;
    inner[22..38].copy_from_slice(&REMOTE.octets());
    inner[38..54].copy_from_slice(&HOST.octets());
    inner.resize(ETHERNET_HEADER_LEN + len, 0x5a);
    fix_payload_len(&mut inner);
    inner
}

/// Checks an error from the router address to `dst` and returns its ICMPv6 message.
fn check_error(
    frame: &[u8],
    dst: Ipv6Addr,
    src_mac: EthernetAddress,
    dst_mac: EthernetAddress,
) -> Vec<u8> {
    assert_eq!(&frame[..6], &dst_mac.0);
    assert_eq!(&frame[6..12], &src_mac.0);
    assert_eq!(&frame[22..38], &ROUTER.octets());
    assert_eq!(&frame[38..54], &dst.octets());
    assert_eq!(frame[21], REPLY_HOP_LIMIT);
    assert!(frame.len() - ETHERNET_HEADER_LEN <= ICMP6_ERROR_MAX_LEN);
    assert!(icmp_checksum_ok(frame));
    icmp_of(frame).to_vec()
}

#[test]
fn packet_too_big_to_the_core_quotes_up_to_1280_bytes() {
    let big = core_packet(1500);
    let frame = icmp6_error_to_core(ROUTER, &CORE, &big, Icmp6Error::PacketTooBig { mtu: 1450 })
        .expect("an error");
    let icmp = check_error(&frame, REMOTE, CORE.src_mac, CORE.dst_mac);
    assert_eq!(&icmp[..2], &[2, 0]);
    assert_eq!(&icmp[4..8], &1450u32.to_be_bytes());
    assert_eq!(icmp.len() - 8, MAX_QUOTE);
    assert_eq!(
        &icmp[8..],
        &big[ETHERNET_HEADER_LEN..ETHERNET_HEADER_LEN + MAX_QUOTE]
    );
    assert_eq!(frame.len(), ETHERNET_HEADER_LEN + 1280);
}

#[test]
fn address_unreachable_and_no_route_to_the_core() {
    let packet = core_packet(100);
    for (error, code) in [
        (Icmp6Error::AddressUnreachable, 3),
        (Icmp6Error::NoRoute, 0),
        (Icmp6Error::SourcePolicy, 5),
    ] {
        let frame = icmp6_error_to_core(ROUTER, &CORE, &packet, error).expect("an error");
        let icmp = check_error(&frame, REMOTE, CORE.src_mac, CORE.dst_mac);
        assert_eq!(&icmp[..2], &[1, code], "{error:?}");
        assert_eq!(&icmp[8..], &packet[ETHERNET_HEADER_LEN..]);
    }
}

#[test]
fn packet_too_big_to_the_home() {
    let mut big = EXPIRING_UDP.to_vec();
    big[21] = 64;
    big.resize(ETHERNET_HEADER_LEN + 1500, 0);
    fix_payload_len(&mut big);
    let reply = error_to_home(&big, Icmp6Error::PacketTooBig { mtu: 1480 }).expect("an error");
    let inner = unwrap_reply(&dot1q(), &reply.frame);
    let icmp = check_error(&inner, HOST, GW_MAC, HOST_MAC);
    assert_eq!(&icmp[..8], &[2, 0, icmp[2], icmp[3], 0, 0, 0x05, 0xc8]);
}

#[test]
fn errors_are_suppressed_where_rfc_4443_says() {
    let icmp = ETHERNET_HEADER_LEN + IPV6_HEADER_LEN;
    let as_icmp = |msg_type: u8| {
        let mut frame = core_packet(100);
        frame[20] = 58;
        frame[icmp] = msg_type;
        frame
    };
    let te = Icmp6Error::TimeExceeded;
    let ptb = Icmp6Error::PacketTooBig { mtu: 1280 };
    let unreachable = Icmp6Error::AddressUnreachable;
    let no = |why| Err(Ignored6::NoError(why));
    let mut expiring = core_packet(100);
    expiring[21] = 1;
    let to_core =
        |frame: &[u8], error| icmp6_error_to_core(ROUTER, &CORE, frame, error).map(|_| ());
    for msg_type in [1, 2, 3, 4, 127, 137] {
        assert_eq!(
            to_core(&as_icmp(msg_type), unreachable),
            no(Suppressed6::IcmpError),
            "type {msg_type}"
        );
    }
    for msg_type in [128, 129, 135] {
        assert_eq!(
            to_core(&as_icmp(msg_type), unreachable),
            Ok(()),
            "type {msg_type}"
        );
    }
    let mut group = core_packet(1400);
    group[38..54].copy_from_slice(&"ff0e::1".parse::<Ipv6Addr>().expect("a group").octets());
    assert_eq!(to_core(&group, unreachable), no(Suppressed6::Multicast));
    assert_eq!(
        to_core(&group, ptb),
        Ok(()),
        "Packet Too Big answers multicast (§2.4 (e.3))"
    );
    let mut link_multicast = core_packet(1400);
    link_multicast[0] = 0x33;
    assert_eq!(
        to_core(&link_multicast, unreachable),
        no(Suppressed6::Multicast)
    );
    for source in [Ipv6Addr::UNSPECIFIED, ALL_NODES] {
        let mut frame = expiring.clone();
        frame[22..38].copy_from_slice(&source.octets());
        assert_eq!(to_core(&frame, te), no(Suppressed6::NoSource));
    }
    assert_eq!(to_core(&expiring, te), Ok(()));
    assert_eq!(
        to_core(&core_packet(100), te),
        no(Suppressed6::Inapplicable),
        "hop limit 60"
    );
    assert_eq!(
        to_core(&core_packet(1280), ptb),
        no(Suppressed6::Inapplicable),
        "fits"
    );
    assert_eq!(
        to_core(&core_packet(1500), Icmp6Error::PacketTooBig { mtu: 1200 }),
        no(Suppressed6::Inapplicable),
        "below 1280"
    );
    // A later fragment of an ICMPv6 message: its type cannot be seen.
    let mut fragment = core_packet(100);
    fragment[20] = 44;
    fragment[icmp..icmp + 8].copy_from_slice(&[58, 0, 0x05, 0x00, 0, 0, 0, 1]);
    assert_eq!(to_core(&fragment, unreachable), no(Suppressed6::IcmpError));
    fragment[icmp + 8] = 128;
    fragment[icmp + 2..icmp + 4].copy_from_slice(&[0, 0]);
    assert_eq!(
        to_core(&fragment, unreachable),
        Ok(()),
        "a first fragment of an echo"
    );
}

#[test]
fn errors_to_the_home_need_a_host_of_the_home() {
    let mut foreign = EXPIRING_UDP.to_vec();
    foreign[22..38].copy_from_slice(&REMOTE.octets());
    assert_eq!(
        error_to_home(&foreign, Icmp6Error::TimeExceeded),
        Err(Ignored6::BadSource)
    );
    let mut from_group = EXPIRING_UDP.to_vec();
    from_group[6] = 0x33;
    assert_eq!(
        error_to_home(&from_group, Icmp6Error::TimeExceeded),
        Err(Ignored6::BadSource)
    );
    let mut arp = EXPIRING_UDP.to_vec();
    arp[12..14].copy_from_slice(&[0x08, 0x06]);
    assert_eq!(
        error_to_home(&arp, Icmp6Error::TimeExceeded),
        Err(Ignored6::Unsupported(Unsupported6::Ethertype(0x0806)))
    );
}

#[test]
fn error_builders_never_panic_on_truncations() {
    let big = core_packet(1500);
    for len in 0..big.len() {
        let _ = icmp6_error_to_core(
            ROUTER,
            &CORE,
            &big[..len],
            Icmp6Error::PacketTooBig { mtu: 1280 },
        );
    }
    let frame = wrap(&dot1q(), &EXPIRING_UDP);
    for len in 0..frame.len() {
        let result = icmp6_error(
            &home(&dot1q()),
            &frame[..len],
            &opts(),
            Icmp6Error::TimeExceeded,
        );
        if let Ok(reply) = result {
            assert!(
                icmp_checksum_ok(&unwrap_reply(&dot1q(), &reply.frame)),
                "{len}"
            );
        }
    }
}
