//! Resolution: the NS byte for byte on every LSL, the resolver's timing and its bounds
//! under a scan of the home's /64 (RFC 6583).

use super::fixtures::*;
use super::*;

#[test]
fn the_ns_for_a_host_byte_for_byte_on_every_lsl() {
    for encap in encaps() {
        // The vG sends into the LSL as the BRG's peer: the reply's encapsulation.
        let reply_encap = decapsulate(&wrap(&encap, &KERNEL_RS), &opts())
            .expect("decapsulates")
            .reply_encap();
        let frame = solicit(&home(&encap), &reply_encap, HOST, None).expect("an NS");
        assert_eq!(unwrap_reply(&encap, &frame), NS_FOR_HOST, "{encap:?}");
    }
}

#[test]
fn a_reachability_probe_is_unicast() {
    let frame = solicit(&home(&dot1q()), &Encap::Untagged, HOST, Some(HOST_MAC)).expect("an NS");
    assert_eq!(&frame[..6], &HOST_MAC.0);
    assert_eq!(&frame[38..54], &HOST.octets());
    assert!(icmp_checksum_ok(&frame));
    assert_eq!(&icmp_of(&frame)[8..24], &HOST.octets(), "the target");
}

#[test]
fn retransmits_three_times_a_second_apart_then_fails_with_the_packet() {
    let mut resolver = Resolver::new(ResolverLimits::default(), 0);
    assert_eq!(resolver.resolve(HOST, Some(b"first"), 0), Resolve::Solicit);
    assert_eq!(
        resolver.resolve(HOST, Some(b"second"), 10),
        Resolve::Pending
    );
    assert_eq!(resolver.queued_bytes(), 6, "the most recent packet is held");
    assert_eq!(resolver.next_ms(), Some(1_000));
    assert_eq!(resolver.poll(999), vec![]);
    assert_eq!(resolver.poll(1_000), vec![ResolverEvent::Retransmit(HOST)]);
    assert_eq!(resolver.poll(2_000), vec![ResolverEvent::Retransmit(HOST)]);
    assert_eq!(
        resolver.poll(3_000),
        vec![ResolverEvent::Failed {
            target: HOST,
            held: Some(b"second".to_vec())
        }]
    );
    assert!(resolver.is_empty());
    assert_eq!(resolver.queued_bytes(), 0);
}

#[test]
fn an_answer_ends_resolution_and_releases_the_packet() {
    let mut resolver = Resolver::new(ResolverLimits::default(), 0);
    assert_eq!(resolver.resolve(HOST, Some(b"data"), 0), Resolve::Solicit);
    assert_eq!(resolver.resolved(HOST), Some(b"data".to_vec()));
    assert_eq!(resolver.resolved(HOST), None);
    assert_eq!(resolver.poll(5_000), vec![]);
    assert_eq!(resolver.queued_bytes(), 0);
}

#[test]
fn held_packets_stay_within_their_byte_budget() {
    let limits = ResolverLimits {
        max_queued_bytes: 3_000,
        ..ResolverLimits::default()
    };
    let mut resolver = Resolver::new(limits, 0);
    let packet = [0u8; 1_400];
    for n in 0..5u128 {
        resolver.resolve(Ipv6Addr::from(u128::from(HOST) + n), Some(&packet), 0);
    }
    assert_eq!(resolver.len(), 5);
    assert_eq!(resolver.queued_bytes(), 2_800, "two held, three not");
}

/// A scan from the internet: every millisecond a packet to a new address of the /64, for a
/// minute, with the resolver polled every 10 ms.
#[test]
fn a_scan_of_the_64_cannot_grow_anything_beyond_the_bounds() {
    let limits = ResolverLimits::default();
    let mut resolver = Resolver::new(limits, 0);
    let packet = [0xabu8; 1_280];
    let (mut solicits, mut failed, mut max_pending, mut max_bytes) = (0u64, 0u64, 0, 0);
    let mut per_second = std::collections::HashMap::<u64, u64>::new();
    for now in 0..60_000u64 {
        let target = Ipv6Addr::from(u128::from(HOST) + u128::from(now) * 7919);
        if resolver.resolve(target, Some(&packet), now) == Resolve::Solicit {
            solicits += 1;
            *per_second.entry(now / 1000).or_default() += 1;
        }
        if now % 10 == 0 {
            for event in resolver.poll(now) {
                match event {
                    ResolverEvent::Retransmit(_) => {
                        *per_second.entry(now / 1000).or_default() += 1;
                    }
                    ResolverEvent::Failed { .. } => failed += 1,
                }
            }
        }
        max_pending = max_pending.max(resolver.len());
        max_bytes = max_bytes.max(resolver.queued_bytes());
    }
    assert!(max_pending <= limits.max_pending, "{max_pending} pending");
    assert!(
        max_bytes <= limits.max_queued_bytes,
        "{max_bytes} bytes held"
    );
    let busiest = per_second.values().max().copied().unwrap_or(0);
    assert!(
        busiest <= 20,
        "{busiest} NSs in one second (10/s, burst 10)"
    );
    assert!(
        (550..=620).contains(&solicits),
        "{solicits} resolutions started in 60 s"
    );
    assert!(
        failed + resolver.len() as u64 == solicits,
        "each ends or is pending"
    );
}

#[test]
fn a_full_pending_set_refuses_without_spending_the_budget() {
    let limits = ResolverLimits {
        max_pending: 2,
        ..ResolverLimits::default()
    };
    let mut resolver = Resolver::new(limits, 0);
    let target = |n: u128| Ipv6Addr::from(u128::from(HOST) + n);
    assert_eq!(resolver.resolve(target(1), None, 0), Resolve::Solicit);
    assert_eq!(resolver.resolve(target(2), None, 0), Resolve::Solicit);
    assert_eq!(resolver.resolve(target(3), None, 0), Resolve::Full);
    for n in 4..12 {
        assert_eq!(resolver.resolved(target(1)), None);
        let _ = resolver.resolve(target(n), None, 0);
        resolver.resolved(target(n));
    }
    assert_eq!(
        resolver.resolve(target(20), None, 0),
        Resolve::RateLimited,
        "10 tokens spent"
    );
}
