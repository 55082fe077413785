//! [`answer6`]: exact replies to captured and built requests on every LSL, learning,
//! RA guard, and RFC 4861's validity checks.

use super::fixtures::*;
use super::*;

fn expect_answer(result: Result<Answer6, Ignored6>) -> Answer6 {
    result.unwrap_or_else(|ignored| panic!("expected an answer, got {ignored:?}"))
}

fn ignored(result: Result<Answer6, Ignored6>) -> Ignored6 {
    match result {
        Ok(answer) => panic!("expected no answer, got {:?}", answer.reply.kind),
        Err(ignored) => ignored,
    }
}

#[test]
fn linux_rs_with_slla_gets_the_unicast_ra_byte_for_byte_on_every_lsl() {
    for encap in encaps() {
        let answer = expect_answer(answer_on(&encap, &KERNEL_RS));
        assert_eq!(answer.reply.kind, Reply6Kind::RouterAdvert);
        assert_eq!(
            unwrap_reply(&encap, &answer.reply.frame),
            RA_TO_HOST,
            "{encap:?}"
        );
        assert_eq!(
            answer.learnt,
            Some(Binding {
                addr: HOST_LL,
                mac: HOST_MAC,
                from: LearntFrom::RouterSolicitation,
                state: BindingState::Confirmed,
            })
        );
    }
}

#[test]
fn rs_without_slla_brings_the_multicast_ra_forward() {
    let encap = dot1q();
    let mut schedule = schedule();
    assert!(schedule.poll(0), "the first RA goes out at once");
    let next = schedule.next_ms();
    // Within MIN_DELAY_BETWEEN_RAS of that RA: at 3 s after it, plus up to 0.5 s.
    let frame = wrap(&encap, &RDISC6_RS);
    let result = answer6(&home(&encap), &frame, &opts(), &mut schedule, 1_000);
    let Err(Ignored6::RaScheduled { at_ms }) = result else {
        panic!("expected a scheduled RA, got {result:?}");
    };
    assert!((3_000..=3_500).contains(&at_ms), "at {at_ms}");
    assert!(at_ms < next, "brought forward from {next}");
    assert_eq!(schedule.next_ms(), at_ms);
    // Past the initial RAs, long after the last: within MAX_RA_DELAY_TIME.
    let mut last = at_ms;
    while schedule.next_ms() < 20_000 {
        last = schedule.next_ms();
        assert!(schedule.poll(last));
    }
    let later = last + 10_000;
    assert!(schedule.next_ms() > later + 100_000);
    let result = answer6(&home(&encap), &frame, &opts(), &mut schedule, later);
    let Err(Ignored6::RaScheduled { at_ms }) = result else {
        panic!("expected a scheduled RA, got {result:?}");
    };
    assert!((later..=later + 500).contains(&at_ms), "at {at_ms}");
}

#[test]
fn rs_from_the_unspecified_address_is_answered_by_multicast() {
    let mut rs = RDISC6_RS.to_vec();
    rs[22..38].copy_from_slice(&Ipv6Addr::UNSPECIFIED.octets());
    fix_checksum(&mut rs);
    let result = answer_on(&dot1q(), &rs);
    assert!(
        matches!(result, Err(Ignored6::RaScheduled { .. })),
        "{result:?}"
    );
}

/// Linux's NA to ndisc6, with the Router flag a router sets and the checksum that follows.
fn kernel_na_as_a_router() -> Vec<u8> {
    let mut na = KERNEL_NA.to_vec();
    na[ETHERNET_HEADER_LEN + IPV6_HEADER_LEN + 4] |= 0x80;
    fix_checksum(&mut na);
    na
}

#[test]
fn ndisc6_ns_for_the_gateway_gets_linux_s_na_on_every_lsl() {
    let expected = kernel_na_as_a_router();
    for encap in encaps() {
        let answer = expect_answer(answer_on(&encap, &NDISC6_NS));
        assert_eq!(answer.reply.kind, Reply6Kind::NeighbourAdvert);
        assert_eq!(
            unwrap_reply(&encap, &answer.reply.frame),
            expected,
            "{encap:?}"
        );
        assert_eq!(
            answer.learnt,
            Some(Binding {
                addr: HOST_LL,
                mac: HOST_MAC,
                from: LearntFrom::NeighbourSolicitation,
                state: BindingState::Confirmed,
            })
        );
    }
}

#[test]
fn unicast_ns_without_slla_is_answered_unicast() {
    // A reachability probe: to the gateway's address and MAC, no SLLA (RFC 4861 §7.2.2).
    let mut ns = NDISC6_NS[..ETHERNET_HEADER_LEN + IPV6_HEADER_LEN + 24].to_vec();
    ns[..6].copy_from_slice(&GW_MAC.0);
    ns[38..54].copy_from_slice(&GW_LL.octets());
    fix_payload_len(&mut ns);
    fix_checksum(&mut ns);
    let answer = expect_answer(answer_on(&dot1q(), &ns));
    assert_eq!(
        unwrap_reply(&dot1q(), &answer.reply.frame),
        kernel_na_as_a_router()
    );
    assert_eq!(answer.learnt, None, "no SLLA, nothing learnt");
}

#[test]
fn dad_for_the_gateway_address_is_defended_on_every_lsl() {
    for encap in encaps() {
        let answer = expect_answer(answer_on(&encap, &DAD_NS_FOR_GW));
        assert_eq!(answer.reply.kind, Reply6Kind::DadDefence);
        assert_eq!(unwrap_reply(&encap, &answer.reply.frame), DAD_DEFENCE);
        assert_eq!(answer.learnt, None);
    }
}

#[test]
fn linux_dad_for_its_own_address_is_learnt_as_tentative() {
    // With the RFC 7527 nonce option, which is skipped as unknown.
    for encap in encaps() {
        assert_eq!(
            ignored(answer_on(&encap, &KERNEL_DAD_NS)),
            Ignored6::Learn(Binding {
                addr: HOST_LL,
                mac: HOST_MAC,
                from: LearntFrom::Dad,
                state: BindingState::Tentative,
            })
        );
    }
}

#[test]
fn ns_between_hosts_teaches_the_solicitor() {
    // ndisc6's NS, asking for another host instead of the gateway.
    let other = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0x99);
    let mut ns = NDISC6_NS.to_vec();
    ns[62..78].copy_from_slice(&other.octets());
    ns[38..54].copy_from_slice(&solicited_node(other).octets());
    fix_checksum(&mut ns);
    assert_eq!(
        ignored(answer_on(&dot1q(), &ns)),
        Ignored6::Learn(Binding {
            addr: HOST_LL,
            mac: HOST_MAC,
            from: LearntFrom::NeighbourSolicitation,
            state: BindingState::Confirmed,
        })
    );
}

/// An unsolicited NA from the host for `target` to ff02::1, built from Linux's NA.
fn host_na(target: Ipv6Addr, flags: u8) -> Vec<u8> {
    let mut na = KERNEL_NA.to_vec();
    na[..6].copy_from_slice(&multicast_mac(ALL_NODES).0);
    na[6..12].copy_from_slice(&HOST_MAC.0);
    na[22..38].copy_from_slice(&HOST_LL.octets());
    na[38..54].copy_from_slice(&ALL_NODES.octets());
    na[58] = flags;
    na[62..78].copy_from_slice(&target.octets());
    na[80..86].copy_from_slice(&HOST_MAC.0);
    fix_checksum(&mut na);
    na
}

#[test]
fn na_from_a_host_is_learnt_and_one_for_the_gateway_is_a_conflict() {
    let binding = |addr| Binding {
        addr,
        mac: HOST_MAC,
        from: LearntFrom::NeighbourAdvertisement,
        state: BindingState::Confirmed,
    };
    for encap in encaps() {
        assert_eq!(
            ignored(answer_on(&encap, &host_na(HOST, 0x20))),
            Ignored6::Learn(binding(HOST))
        );
        assert_eq!(
            ignored(answer_on(&encap, &host_na(GW_LL, 0x20))),
            Ignored6::GatewayConflict(binding(GW_LL))
        );
    }
    assert_eq!(
        ignored(answer_on(&dot1q(), &host_na(REMOTE, 0x20))),
        Ignored6::BadSource
    );
}

#[test]
fn echo_to_the_gateway_is_answered_byte_for_byte_on_every_lsl() {
    for encap in encaps() {
        let answer = expect_answer(answer_on(&encap, &ECHO_REQUEST));
        assert_eq!(answer.reply.kind, Reply6Kind::EchoReply);
        assert_eq!(
            unwrap_reply(&encap, &answer.reply.frame),
            ECHO_REPLY,
            "{encap:?}"
        );
    }
}

#[test]
fn echo_to_the_router_address_and_a_configured_global_is_answered_from_it() {
    let encap = dot1q();
    let global = Ipv6Addr::new(0x2001, 0xdb8, 1, 0x100, 0, 0, 0, 1);
    let mut home = home(&encap);
    home.gateway_global = Some(global);
    home.validate().expect("valid");
    for dst in [ROUTER, global] {
        let mut request = ECHO_REQUEST.to_vec();
        request[38..54].copy_from_slice(&dst.octets());
        fix_checksum(&mut request);
        let frame = wrap(&encap, &request);
        let answer = expect_answer(answer6(&home, &frame, &opts(), &mut schedule(), 0));
        let inner = unwrap_reply(&encap, &answer.reply.frame);
        assert_eq!(&inner[22..38], &dst.octets(), "from the address pinged");
        assert!(icmp_checksum_ok(&inner));
    }
}

#[test]
fn transit_with_hop_limit_1_gets_time_exceeded_byte_for_byte_on_every_lsl() {
    for encap in encaps() {
        let answer = expect_answer(answer_on(&encap, &EXPIRING_UDP));
        assert_eq!(
            answer.reply.kind,
            Reply6Kind::Error(Icmp6Error::TimeExceeded)
        );
        assert_eq!(unwrap_reply(&encap, &answer.reply.frame), TIME_EXCEEDED);
    }
    let mut alive = EXPIRING_UDP.to_vec();
    alive[21] = 2;
    assert_eq!(ignored(answer_on(&dot1q(), &alive)), Ignored6::NotForUs);
    // Only for a host of the home that sent it to the gateway.
    let mut spoofed = EXPIRING_UDP.to_vec();
    spoofed[22..38].copy_from_slice(&REMOTE.octets());
    assert_eq!(ignored(answer_on(&dot1q(), &spoofed)), Ignored6::BadSource);
    let mut to_another = EXPIRING_UDP.to_vec();
    to_another[..6].copy_from_slice(&OTHER_MAC.0);
    assert_eq!(
        ignored(answer_on(&dot1q(), &to_another)),
        Ignored6::NotForUs
    );
    let mut to_a_group = EXPIRING_UDP.to_vec();
    to_a_group[..6].copy_from_slice(&multicast_mac(ALL_NODES).0);
    assert_eq!(
        ignored(answer_on(&dot1q(), &to_a_group)),
        Ignored6::NoError(Suppressed6::Multicast)
    );
}

#[test]
fn router_advertisements_and_redirects_from_a_home_are_refused() {
    let mut ra = RA_TO_HOST.to_vec();
    ra[..6].copy_from_slice(&multicast_mac(ALL_NODES).0);
    ra[6..12].copy_from_slice(&HOST_MAC.0);
    ra[22..38].copy_from_slice(&HOST_LL.octets());
    ra[38..54].copy_from_slice(&ALL_NODES.octets());
    fix_checksum(&mut ra);
    assert_eq!(
        ignored(answer_on(&dot1q(), &ra)),
        Ignored6::RouterOnly(RouterOnly::RouterAdvert)
    );
    // DHCPv6 server messages too, and wherever they are sent.
    let mut reply = EXPIRING_UDP.to_vec();
    reply[21] = 64;
    reply[54..58].copy_from_slice(&[0x02, 0x23, 0x02, 0x22]);
    reply[62] = 7;
    assert_eq!(
        ignored(answer_on(&dot1q(), &reply)),
        Ignored6::RouterOnly(RouterOnly::Dhcpv6Server(7))
    );
    let mut redirect = host_na(HOST, 0);
    let icmp = ETHERNET_HEADER_LEN + IPV6_HEADER_LEN;
    redirect[icmp] = 137;
    fix_checksum(&mut redirect);
    assert_eq!(
        ignored(answer_on(&dot1q(), &redirect)),
        Ignored6::RouterOnly(RouterOnly::Redirect)
    );
}

/// An edit to a valid request and the reason it must then be ignored.
type Case = (&'static str, Vec<u8>, Ignored6);

fn edited(base: &[u8], edit: impl FnOnce(&mut Vec<u8>), checksum: bool) -> Vec<u8> {
    let mut frame = base.to_vec();
    edit(&mut frame);
    fix_payload_len(&mut frame);
    if checksum {
        fix_checksum(&mut frame);
    }
    frame
}

fn invalid_cases() -> Vec<Case> {
    let icmp = ETHERNET_HEADER_LEN + IPV6_HEADER_LEN;
    let invalid = Ignored6::Invalid;
    let option = Ignored6::Malformed(Layer6::NdOption);
    vec![
        (
            "RS hop limit 254",
            edited(&KERNEL_RS, |f| f[21] = 254, true),
            invalid(Invalid::HopLimit),
        ),
        (
            "NS hop limit 64",
            edited(&NDISC6_NS, |f| f[21] = 64, true),
            invalid(Invalid::HopLimit),
        ),
        (
            "NA hop limit 1",
            edited(&host_na(HOST, 0x20), |f| f[21] = 1, true),
            invalid(Invalid::HopLimit),
        ),
        (
            "RS code 1",
            edited(&KERNEL_RS, |f| f[icmp + 1] = 1, true),
            invalid(Invalid::Code),
        ),
        (
            "NS code 1",
            edited(&NDISC6_NS, |f| f[icmp + 1] = 1, true),
            invalid(Invalid::Code),
        ),
        (
            "NS bad checksum",
            edited(&NDISC6_NS, |f| f[icmp + 2] ^= 1, false),
            Ignored6::Malformed(Layer6::Icmpv6),
        ),
        (
            "NS 20 bytes",
            edited(&NDISC6_NS, |f| f.truncate(icmp + 20), true),
            Ignored6::Malformed(Layer6::Icmpv6),
        ),
        (
            "NS zero-length option",
            edited(&NDISC6_NS, |f| f[icmp + 25] = 0, true),
            option,
        ),
        (
            "NS option past the end",
            edited(&NDISC6_NS, |f| f[icmp + 25] = 2, true),
            option,
        ),
        (
            "NS 16-byte SLLA",
            edited(
                &NDISC6_NS,
                |f| {
                    f[icmp + 25] = 2;
                    f.extend([0; 8]);
                },
                true,
            ),
            option,
        ),
        (
            "NS option header cut",
            edited(&NDISC6_NS, |f| f.push(1), true),
            option,
        ),
        (
            "RS SLLA from ::",
            edited(&KERNEL_RS, |f| f[22..38].fill(0), true),
            invalid(Invalid::SllaFromUnspecified),
        ),
        (
            "DAD NS with SLLA",
            edited(&NDISC6_NS, |f| f[22..38].fill(0), true),
            invalid(Invalid::SllaFromUnspecified),
        ),
        (
            "DAD NS to the target",
            edited(
                &DAD_NS_FOR_GW,
                |f| f[38..54].copy_from_slice(&GW_LL.octets()),
                true,
            ),
            invalid(Invalid::DadDestination),
        ),
        (
            "NS multicast target",
            edited(
                &NDISC6_NS,
                |f| f[62..78].copy_from_slice(&ALL_NODES.octets()),
                true,
            ),
            invalid(Invalid::MulticastTarget),
        ),
        (
            "NA multicast target",
            edited(
                &host_na(HOST, 0x20),
                |f| f[62..78].copy_from_slice(&ALL_NODES.octets()),
                true,
            ),
            invalid(Invalid::MulticastTarget),
        ),
        (
            "NA solicited to a group",
            edited(&host_na(HOST, 0x60), |_| {}, true),
            invalid(Invalid::SolicitedToGroup),
        ),
        (
            "NS SLLA not the frame's",
            edited(
                &NDISC6_NS,
                |f| f[80..86].copy_from_slice(&OTHER_MAC.0),
                true,
            ),
            invalid(Invalid::LinkAddressMismatch),
        ),
        (
            "NA TLLA not the frame's",
            edited(
                &host_na(HOST, 0x20),
                |f| f[80..86].copy_from_slice(&OTHER_MAC.0),
                true,
            ),
            invalid(Invalid::LinkAddressMismatch),
        ),
        (
            "NS from outside the home",
            edited(
                &NDISC6_NS,
                |f| f[22..38].copy_from_slice(&REMOTE.octets()),
                true,
            ),
            Ignored6::BadSource,
        ),
        (
            "RS from a group",
            edited(
                &KERNEL_RS,
                |f| f[22..38].copy_from_slice(&ALL_NODES.octets()),
                true,
            ),
            Ignored6::BadSource,
        ),
        (
            "frame from a group MAC",
            edited(&KERNEL_RS, |f| f[6] = 0x33, true),
            Ignored6::BadSource,
        ),
        (
            "frame from the gateway MAC",
            edited(&KERNEL_RS, |f| f[6..12].copy_from_slice(&GW_MAC.0), true),
            Ignored6::BadSource,
        ),
        (
            "RS to a host",
            edited(
                &KERNEL_RS,
                |f| f[38..54].copy_from_slice(&HOST.octets()),
                true,
            ),
            Ignored6::NotForUs,
        ),
        (
            "echo to ff02::1",
            edited(
                &ECHO_REQUEST,
                |f| f[38..54].copy_from_slice(&ALL_NODES.octets()),
                true,
            ),
            Ignored6::NotForUs,
        ),
        (
            "echo from outside",
            edited(
                &ECHO_REQUEST,
                |f| f[22..38].copy_from_slice(&REMOTE.octets()),
                true,
            ),
            Ignored6::BadSource,
        ),
        (
            "echo reply to the gateway",
            edited(&ECHO_REQUEST, |f| f[icmp] = 129, true),
            Ignored6::Unsupported(Unsupported6::IcmpType(129)),
        ),
        (
            "UDP to the gateway",
            edited(
                &EXPIRING_UDP,
                |f| f[38..54].copy_from_slice(&GW_LL.octets()),
                false,
            ),
            Ignored6::Unsupported(Unsupported6::NextHeader(17)),
        ),
        (
            "IPv4 ethertype",
            edited(
                &ECHO_REQUEST,
                |f| f[12..14].copy_from_slice(&[0x08, 0x00]),
                false,
            ),
            Ignored6::Unsupported(Unsupported6::Ethertype(0x0800)),
        ),
        (
            "IP version 4",
            edited(&ECHO_REQUEST, |f| f[14] = 0x45, false),
            Ignored6::Malformed(Layer6::Ipv6),
        ),
    ]
}

#[test]
fn rfc_4861_validity_checks_reject() {
    for (name, frame, expected) in invalid_cases() {
        assert_eq!(ignored(answer_on(&dot1q(), &frame)), expected, "{name}");
    }
}

#[test]
fn frames_from_another_lsl_or_none_are_ignored() {
    let [dot1q, qinq, ..] = encaps();
    let frame = wrap(&qinq, &NDISC6_NS);
    let result = answer6(&home(&dot1q), &frame, &opts(), &mut schedule(), 0);
    assert_eq!(ignored(result), Ignored6::WrongLsl);
    let result = answer6(&home(&dot1q), &NDISC6_NS, &opts(), &mut schedule(), 0);
    assert_eq!(ignored(result), Ignored6::WrongLsl, "untagged");
}

fn valid_requests() -> Vec<&'static [u8]> {
    vec![
        &KERNEL_RS,
        &RDISC6_RS,
        &NDISC6_NS,
        &KERNEL_DAD_NS,
        &DAD_NS_FOR_GW,
        &ECHO_REQUEST,
        &EXPIRING_UDP,
    ]
}

#[test]
fn every_truncation_is_an_error_without_panic() {
    for request in valid_requests() {
        for encap in encaps() {
            let frame = wrap(&encap, request);
            let inner_start = frame.len() - request.len();
            for len in 0..frame.len() {
                let result = answer6(&home(&encap), &frame[..len], &opts(), &mut schedule(), 0);
                // A transit packet cut short still gets its time exceeded, quoting what
                // there is: the IPv6 header and at least 8 bytes of payload.
                let quotable = inner_start + ETHERNET_HEADER_LEN + IPV6_HEADER_LEN + 8;
                match result {
                    Ok(answer) if request == &EXPIRING_UDP[..] && len >= quotable => {
                        let inner = unwrap_reply(&encap, &answer.reply.frame);
                        assert!(icmp_checksum_ok(&inner));
                        assert_eq!(
                            icmp_of(&inner).len(),
                            8 + len - inner_start - ETHERNET_HEADER_LEN
                        );
                    }
                    Ok(_) => panic!("{len} of {} bytes answered", frame.len()),
                    Err(_) => {}
                }
            }
        }
    }
}

#[test]
fn flipped_bits_never_panic_and_replies_are_valid() {
    let encap = dot1q();
    for request in valid_requests() {
        let frame = wrap(&encap, request);
        for byte in 0..frame.len() {
            for bit in 0..8 {
                let mut flipped = frame.clone();
                flipped[byte] ^= 1 << bit;
                let result = answer6(&home(&encap), &flipped, &opts(), &mut schedule(), 0);
                if let Ok(answer) = result {
                    let inner = unwrap_reply(&encap, &answer.reply.frame);
                    assert!(icmp_checksum_ok(&inner), "byte {byte} bit {bit}");
                }
            }
        }
    }
}

#[test]
fn labels_are_distinct() {
    let labels = [
        Reply6Kind::RouterAdvert.label(),
        Reply6Kind::NeighbourAdvert.label(),
        Reply6Kind::DadDefence.label(),
        Reply6Kind::EchoReply.label(),
        Reply6Kind::Error(Icmp6Error::TimeExceeded).label(),
        Reply6Kind::Error(Icmp6Error::PacketTooBig { mtu: 1280 }).label(),
        Reply6Kind::Error(Icmp6Error::AddressUnreachable).label(),
        Reply6Kind::Error(Icmp6Error::NoRoute).label(),
        Reply6Kind::Error(Icmp6Error::SourcePolicy).label(),
    ];
    let unique: std::collections::HashSet<_> = labels.iter().collect();
    assert_eq!(unique.len(), labels.len());
}
