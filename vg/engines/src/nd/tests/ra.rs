//! The RA schedule's timing (RFC 4861 §6.2.4, §6.2.6), the RA frames, the home's checks.

use lsl::smoltcp::wire::{Icmpv6Packet, NdiscRepr, NdiscRouterFlags};

use super::fixtures::*;
use super::*;

/// The intervals between the multicast RAs of a schedule polled every 100 ms for `span_ms`.
fn intervals(seed: u64, span_ms: u64) -> Vec<u64> {
    let mut schedule = RaSchedule::new(RaIntervals::default(), 0, seed);
    let mut sent = Vec::new();
    for now in (0..span_ms).step_by(100) {
        if schedule.poll(now) {
            sent.push(now);
        }
    }
    sent.windows(2).map(|w| w[1] - w[0]).collect()
}

#[test]
fn first_three_ras_come_within_16_s_then_200_to_600_s_apart() {
    for seed in 0..50 {
        let gaps = intervals(seed, 4 * 3600 * 1000);
        assert!(
            gaps.len() > 20,
            "seed {seed}: {} RAs in 4 h",
            gaps.len() + 1
        );
        // Polled every 100 ms, a gap may be 100 ms longer than scheduled.
        for (i, gap) in gaps.iter().enumerate() {
            if i < 2 {
                assert!(*gap <= 16_100, "seed {seed}: initial gap {i} of {gap} ms");
            } else {
                assert!(
                    (200_000..=600_100).contains(gap),
                    "seed {seed}: gap {i} of {gap} ms"
                );
            }
        }
    }
}

#[test]
fn intervals_are_uniform_and_the_seed_decides_them() {
    let mut schedule = RaSchedule::new(RaIntervals::default(), 0, 7);
    let mut now = 0;
    let mut gaps = Vec::new();
    for _ in 0..10_000 {
        assert!(schedule.poll(now));
        let next = schedule.next_ms();
        gaps.push(next - now);
        now = next;
    }
    let steady = &gaps[3..];
    let mean = steady.iter().sum::<u64>() / steady.len() as u64;
    assert!((390_000..=410_000).contains(&mean), "mean {mean}");
    assert!(*steady.iter().min().expect("gaps") < 205_000);
    assert!(*steady.iter().max().expect("gaps") > 595_000);
    let below_300 = steady.iter().filter(|g| **g < 300_000).count();
    assert!(
        (2_250..=2_750).contains(&below_300),
        "{below_300} of 10,000 in the first quarter"
    );
    assert_eq!(
        intervals(7, 3_600_000),
        intervals(7, 3_600_000),
        "deterministic"
    );
    assert_ne!(
        intervals(7, 3_600_000),
        intervals(8, 3_600_000),
        "seeds differ"
    );
}

#[test]
fn a_solicitation_never_postpones_and_respects_min_delay_between_ras() {
    let mut schedule = RaSchedule::new(RaIntervals::default(), 1_000, 3);
    assert!(!schedule.poll(999));
    assert!(schedule.poll(1_000));
    let unsolicited = schedule.next_ms();
    // 1 s after the last RA: no sooner than 3 s after it.
    let at = schedule.solicited(2_000);
    assert!((4_000..=4_500).contains(&at), "at {at}");
    assert!(!schedule.poll(at - 1));
    assert!(schedule.poll(at));
    assert!(schedule.next_ms() > at);
    // Just before an unsolicited RA: that one answers.
    let next = schedule.next_ms();
    assert_eq!(schedule.solicited(next - 10), next);
    assert!(unsolicited >= 1_000 + 3_000);
}

#[test]
fn the_multicast_ra_and_the_final_ra() {
    let encap = dot1q();
    let home = home(&encap);
    let inner = unwrap_reply(&encap, &ra_frame(&home, &encap).expect("an RA"));
    // The unicast RA's bytes but for the destination and the checksum.
    assert_eq!(&inner[..6], &multicast_mac(ALL_NODES).0);
    assert_eq!(&inner[38..54], &ALL_NODES.octets());
    assert!(icmp_checksum_ok(&inner));
    assert_eq!(&inner[6..38], &RA_TO_HOST[6..38]);
    assert_eq!(&icmp_of(&inner)[4..], &icmp_of(&RA_TO_HOST)[4..]);
    let last = unwrap_reply(&encap, &final_ra_frame(&home, &encap).expect("an RA"));
    assert_eq!(last, FINAL_RA);
    // smoltcp reads ours back (and skips RDNSS and DNSSL as unknown).
    let packet = Icmpv6Packet::new_checked(icmp_of(&inner)).expect("ICMPv6");
    let NdiscRepr::RouterAdvert {
        flags,
        mtu,
        prefix_info,
        lladdr,
        ..
    } = NdiscRepr::parse(&packet).expect("an RA")
    else {
        panic!("not an RA");
    };
    assert_eq!(flags, NdiscRouterFlags::OTHER);
    assert_eq!(mtu, Some(1450));
    assert_eq!(
        lladdr.map(|l| l.as_bytes().to_vec()),
        Some(GW_MAC.0.to_vec())
    );
    assert_eq!(prefix_info.map(|p| p.prefix), Some(home.lan.network()));
}

#[test]
fn the_final_ra_byte_for_byte_on_every_lsl() {
    for encap in encaps() {
        // The vG sends into the LSL as the BRG's peer: the reply's encapsulation.
        let reply_encap = decapsulate(&wrap(&encap, &KERNEL_RS), &opts())
            .expect("decapsulates")
            .reply_encap();
        let frame = final_ra_frame(&home(&encap), &reply_encap).expect("an RA");
        assert_eq!(unwrap_reply(&encap, &frame), FINAL_RA, "{encap:?}");
    }
}

#[test]
fn ra_without_dns_options_and_with_managed() {
    let encap = dot1q();
    let mut home = home(&encap);
    home.ra.rdnss.clear();
    home.ra.dnssl.clear();
    home.ra.managed = true;
    let inner = unwrap_reply(&encap, &ra_frame(&home, &encap).expect("an RA"));
    let icmp = icmp_of(&inner);
    assert_eq!(icmp.len(), 16 + 8 + 8 + 32, "header, SLLA, MTU, prefix");
    assert_eq!(icmp[5], 0xc0, "M and O");
    assert!(icmp_checksum_ok(&inner));
}

#[test]
fn link_local_is_the_modified_eui_64_linux_derives() {
    // Linux gave the capture's gateway end this address from the same MAC.
    assert_eq!(link_local_from_mac(GW_MAC), GW_LL);
    assert_eq!(link_local_from_mac(HOST_MAC), HOST_LL);
    assert_eq!(
        link_local_from_mac(EthernetAddress([0x00, 0x1b, 0x21, 0x3c, 0x4d, 0x5e])),
        "fe80::21b:21ff:fe3c:4d5e"
            .parse::<Ipv6Addr>()
            .expect("an address")
    );
    assert_eq!(
        solicited_node(HOST),
        "ff02::1:ff00:10".parse::<Ipv6Addr>().expect("an address")
    );
    assert_eq!(
        multicast_mac(solicited_node(HOST)).0,
        [0x33, 0x33, 0xff, 0, 0, 0x10]
    );
}

#[test]
fn home_checks() {
    let good = home(&dot1q());
    let check = |edit: &dyn Fn(&mut Home6)| {
        let mut home = good.clone();
        edit(&mut home);
        home.validate()
    };
    assert!(matches!(
        check(&|h| h.lan = "2001:db8:1::/56".parse().expect("net")),
        Err(Home6Error::LanNotSlash64(_))
    ));
    assert_eq!(check(&|h| h.mtu = 1279), Err(Home6Error::MtuTooSmall(1279)));
    assert!(matches!(
        check(&|h| h.gateway_mac = EthernetAddress::BROADCAST),
        Err(Home6Error::GatewayMac(_))
    ));
    assert!(matches!(
        check(&|h| h.gateway_global = Some(REMOTE)),
        Err(Home6Error::GatewayGlobal(_))
    ));
    assert!(matches!(
        check(&|h| h.router_addr = GW_LL),
        Err(Home6Error::RouterAddr(_))
    ));
    assert_eq!(
        check(&|h| h.ra.router_lifetime = 9001),
        Err(Home6Error::Ra("router_lifetime"))
    );
    assert_eq!(
        check(&|h| h.ra.preferred_lifetime = 86_401),
        Err(Home6Error::Ra("preferred_lifetime"))
    );
    assert_eq!(
        check(&|h| h.ra.rdnss = vec![ROUTER; 9]),
        Err(Home6Error::Ra("rdnss"))
    );
    assert_eq!(
        check(&|h| h.ra.intervals.max_s = 3),
        Err(Home6Error::Ra("max_interval"))
    );
    assert_eq!(
        check(&|h| h.ra.intervals.min_s = 451),
        Err(Home6Error::Ra("min_interval"))
    );
    for bad in ["", ".", "a..b", "under_score.example", &"x".repeat(64)] {
        assert_eq!(
            check(&|h| h.ra.dnssl = vec![bad.to_owned()]),
            Err(Home6Error::Domain(bad.to_owned())),
            "{bad:?}"
        );
    }
    assert_eq!(
        check(&|h| h.ra.dnssl = (0..40).map(|i| format!("domain-{i}.example.net")).collect()),
        Err(Home6Error::Ra("dnssl"))
    );
    assert_eq!(
        check(&|h| h.ra.dnssl = vec!["home.arpa.".to_owned()]),
        Ok(())
    );
}

#[test]
fn ras_fit_the_minimum_mtu_at_the_configuration_s_limits() {
    let encap = dot1q();
    let mut home = home(&encap);
    home.ra.rdnss = vec![ROUTER; MAX_RDNSS];
    home.ra.dnssl = (0..22).map(|i| format!("d{i:02}.example.net")).collect();
    home.validate().expect("at the limits");
    let inner = unwrap_reply(&encap, &ra_frame(&home, &encap).expect("an RA"));
    assert!(
        inner.len() - ETHERNET_HEADER_LEN <= usize::from(MIN_MTU),
        "{} bytes",
        inner.len()
    );
    assert!(icmp_checksum_ok(&inner));
}
