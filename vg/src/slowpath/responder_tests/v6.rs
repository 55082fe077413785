//! The responder as the homes' IPv6 router: punted ND, DHCPv6 and core-side frames (built
//! with smoltcp and dhcproto, in the LSL encapsulations the BRG and the fast path use) in;
//! frames, store transactions and IPv6 table changes out, in order.

use std::net::Ipv6Addr;

use dhcproto::v6::{DhcpOption, IANA, IAPD, Message, MessageType};
use ipnet::Ipv6Net;
use lsl::encap::VxlanEncap;
use lsl::smoltcp::wire::{
    EthernetRepr, Icmpv6Message, Icmpv6Packet, Icmpv6Repr, Ipv6Packet, Ipv6Repr,
    NdiscNeighborFlags, NdiscRepr, RawHardwareAddress,
};
use lsl::{Vni, decapsulate};
use nerg_abi::v6_neigh_flags::{INCOMPLETE, REACHABLE, STALE, STATIC};
use vg_engines::nd::{self, link_local_from_mac, solicited_node};

use super::*;
use crate::control::HomeIpv6;

const ROUTER: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xffff, 0, 0, 0, 0, 1);
const CORE_ROUTER_MAC: EthernetAddress = EthernetAddress([0x02, 0xc0, 0, 0, 0, 1]);
const VG_CORE_MAC: EthernetAddress = EthernetAddress([0x02, 0xc0, 0, 0, 0, 2]);
const REMOTE: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xbeef, 0, 0, 0, 0, 1);

const IPV6: &str = "[ipv6]\npools = [\"2001:db8:100::/40\"]\nrouter_address = \"2001:db8:ffff::1\"\n\
                    dns_servers = [\"2001:db8::53\"]\n";

const VTEPS: &str = "[fastpath]\nvtep = \"10.0.0.1\"\nvtep6 = \"2001:db8:a::1\"\n";

fn mac(n: u8) -> EthernetAddress {
    EthernetAddress([0x02, 0, 0, 0, 0x01, n])
}

/// Home `id`'s prefix: 2001:db8:100:ID00::/56, its LAN the first /64.
fn v6_of(id: SubscriberId) -> HomeIpv6 {
    let prefix: Ipv6Net = format!("2001:db8:100:{:x}00::/56", id)
        .parse()
        .expect("prefix");
    HomeIpv6 {
        prefix,
        lan: Ipv6Net::new(prefix.network(), 64).expect("lan"),
        flags: crate::ipv6::RaFlags::default(),
    }
}

fn lan_host(id: SubscriberId, last: u16) -> Ipv6Addr {
    let net = v6_of(id).lan.network().segments();
    Ipv6Addr::new(net[0], net[1], net[2], net[3], 0, 0, 0, last)
}

fn gw_mac(id: SubscriberId) -> EthernetAddress {
    EthernetAddress(crate::config::gateway_mac(id))
}

/// The IPv6 table of home `id`: address -> flags.
fn neighbours(rig: &Rig, id: SubscriberId) -> BTreeMap<Ipv6Addr, (u8, [u8; 6])> {
    rig.responder
        .hosts()
        .v6
        .neighbours_of(id)
        .into_iter()
        .map(|(a, n)| (a, (n.flags, n.mac)))
        .collect()
}

impl Rig {
    /// Homes 1 and 2 (VLANs 101 and 102) with IPv6.
    fn v6() -> Rig {
        let mut rig = Rig::new(IPV6, "");
        rig.ipv6_on(&[1, 2]);
        rig
    }

    fn ipv6_on(&mut self, ids: &[SubscriberId]) {
        for &id in ids {
            self.responder
                .set_ipv6(id, Some(&v6_of(id)), self.now_ms, T0);
        }
    }

    /// Runs the IPv6 timers at `now_ms`; returns the frames they sent.
    fn timers(&mut self, now_ms: u64) -> Vec<Vec<u8>> {
        self.now_ms = now_ms;
        let before = self.responder.sink().frames.len();
        self.responder.timers6(now_ms);
        self.responder.sink().frames[before..].to_vec()
    }

    /// The same stores and tables, a new responder (a restart, `kill -9` included).
    fn restart(&self, text: &str) -> Rig {
        let leases = Rc::clone(&self.responder.store().inner);
        let leases6 = Rc::clone(&self.responder.store().inner6);
        let v6 = self.responder.hosts().v6.clone();
        Rig::from_toml(text, leases, leases6, v6)
    }
}

/// An inner ICMPv6 frame.
fn icmp6(
    src_mac: EthernetAddress,
    dst_mac: EthernetAddress,
    (src, dst): (Ipv6Addr, Ipv6Addr),
    hop_limit: u8,
    repr: &Icmpv6Repr<'_>,
) -> Vec<u8> {
    let ip = Ipv6Repr {
        src_addr: src,
        dst_addr: dst,
        next_header: IpProtocol::Icmpv6,
        payload_len: repr.buffer_len(),
        hop_limit,
    };
    let eth = EthernetRepr {
        src_addr: src_mac,
        dst_addr: dst_mac,
        ethertype: EthernetProtocol::Ipv6,
    };
    let mut buf = vec![0; eth.buffer_len() + ip.buffer_len() + ip.payload_len];
    let mut frame = EthernetFrame::new_unchecked(&mut buf[..]);
    eth.emit(&mut frame);
    let mut packet = Ipv6Packet::new_unchecked(frame.payload_mut());
    ip.emit(&mut packet);
    repr.emit(
        &src,
        &dst,
        &mut Icmpv6Packet::new_unchecked(packet.payload_mut()),
        &ChecksumCapabilities::default(),
    );
    buf
}

fn rs(host: EthernetAddress) -> Vec<u8> {
    let repr = Icmpv6Repr::Ndisc(NdiscRepr::RouterSolicit {
        lladdr: Some(RawHardwareAddress::from(host)),
    });
    let dst = nd::ALL_ROUTERS;
    icmp6(
        host,
        nd::multicast_mac(dst),
        (link_local_from_mac(host), dst),
        255,
        &repr,
    )
}

/// `host` at `src` resolving the gateway of home `id` (what teaches the vG `src`).
fn ns_for_gateway(id: SubscriberId, host: EthernetAddress, src: Ipv6Addr) -> Vec<u8> {
    let target = link_local_from_mac(gw_mac(id));
    let repr = Icmpv6Repr::Ndisc(NdiscRepr::NeighborSolicit {
        target_addr: target,
        lladdr: Some(RawHardwareAddress::from(host)),
    });
    let dst = solicited_node(target);
    icmp6(host, nd::multicast_mac(dst), (src, dst), 255, &repr)
}

/// A DAD NS of `host` for `target`.
fn dad_ns(host: EthernetAddress, target: Ipv6Addr) -> Vec<u8> {
    let repr = Icmpv6Repr::Ndisc(NdiscRepr::NeighborSolicit {
        target_addr: target,
        lladdr: None,
    });
    let dst = solicited_node(target);
    icmp6(
        host,
        nd::multicast_mac(dst),
        (Ipv6Addr::UNSPECIFIED, dst),
        255,
        &repr,
    )
}

/// `host`'s NA for `target` to the gateway of home `id` (an answer to its NS).
fn na(id: SubscriberId, host: EthernetAddress, target: Ipv6Addr) -> Vec<u8> {
    let repr = Icmpv6Repr::Ndisc(NdiscRepr::NeighborAdvert {
        flags: NdiscNeighborFlags::SOLICITED | NdiscNeighborFlags::OVERRIDE,
        target_addr: target,
        lladdr: Some(RawHardwareAddress::from(host)),
    });
    icmp6(
        host,
        gw_mac(id),
        (target, link_local_from_mac(gw_mac(id))),
        255,
        &repr,
    )
}

/// A core-side echo request from the internet to `dst` (what a neighbour miss carries).
fn from_core(dst: Ipv6Addr, len: usize) -> Vec<u8> {
    let data = vec![0x5a; len];
    let repr = Icmpv6Repr::EchoRequest {
        ident: 1,
        seq_no: 1,
        data: &data,
    };
    icmp6(CORE_ROUTER_MAC, VG_CORE_MAC, (REMOTE, dst), 60, &repr)
}

fn core_punt(home: SubscriberId, reason: PuntReason, frame: Vec<u8>, mtu: u16) -> Punted {
    let len = u16::try_from(frame.len()).expect("short frame");
    Punted {
        header: PuntHeader {
            sub: home,
            ifindex: 3,
            reason: reason.index() as u16,
            len,
            wire_len: len,
            mtu,
        },
        reason: Some(reason),
        frame,
    }
}

fn punted_in(encap: &Encap, home: SubscriberId, reason: PuntReason, inner: &[u8]) -> Punted {
    let mut p = punted(home, reason, inner);
    p.frame = encap.encapsulate(inner).expect("encapsulates");
    p.header.len = u16::try_from(p.frame.len()).expect("short");
    p
}

/// The inner frame of a frame sent into a home, and its ICMPv6 message.
fn icmp6_sent(frame: &[u8], options: &DecapOptions) -> (Vec<u8>, Icmpv6Message) {
    let d = decapsulate(frame, options).expect("decapsulates");
    let inner = d.inner.to_vec();
    let eth = EthernetFrame::new_checked(&inner[..]).expect("eth");
    let ip = Ipv6Packet::new_checked(eth.payload()).expect("ipv6");
    let msg = Icmpv6Packet::new_checked(ip.payload())
        .expect("icmpv6")
        .msg_type();
    (inner, msg)
}

/// The NSs among frames sent into homes.
fn nss(frames: &[Vec<u8>]) -> usize {
    frames
        .iter()
        .filter(|f| icmp6_sent(f, &DecapOptions::default()).1 == Icmpv6Message::NeighborSolicit)
        .count()
}

fn ra_of(frame: &[u8], options: &DecapOptions) -> (Ipv6Addr, u16) {
    let (inner, msg) = icmp6_sent(frame, options);
    assert_eq!(msg, Icmpv6Message::RouterAdvert);
    let eth = EthernetFrame::new_checked(&inner[..]).expect("eth");
    let ip = Ipv6Packet::new_checked(eth.payload()).expect("ipv6");
    let icmp = Icmpv6Packet::new_checked(ip.payload()).expect("icmp");
    (ip.src_addr(), icmp.router_lifetime().secs() as u16)
}

// ---- router advertisements ---------------------------------------------------------------

#[test]
fn an_rs_gets_an_ra_from_the_gateway_link_local_on_every_lsl_kind() {
    let text = format!(
        "[slowpath]\nper_home_pps = 100000\nper_home_burst = 100000\n{VTEPS}{IPV6}\n\
         [[subscriber]]\nid = 1\nlsl = \"vlan:101\"\n\
         [[subscriber]]\nid = 2\nlsl = \"qinq:10.102\"\n\
         [[subscriber]]\nid = 3\nlsl = \"vxlan:5003@10.0.0.2\"\n\
         [[subscriber]]\nid = 4\nlsl = \"vxlan:5004@[2001:db8:a::2]\"\n"
    );
    let mut rig = Rig::from_toml(
        &text,
        Rc::default(),
        Rc::default(),
        MemoryV6Table::default(),
    );
    rig.ipv6_on(&[1, 2, 3, 4]);
    let vxlan = |vni: u32, brg: &str, vg: &str| {
        Encap::Vxlan(VxlanEncap::new(
            Vni::new(vni).expect("vni"),
            brg.parse().expect("ip"),
            vg.parse().expect("ip"),
            EthernetAddress([2, 0, 0, 0, 0, 0xb]),
            EthernetAddress([2, 0, 0, 0, 0, 0xa]),
        ))
    };
    let encaps = [
        (1, encap_of(1)),
        (
            2,
            Encap::QinQ {
                s_tpid: lsl::wire::vlan::Tpid::STag,
                s_vid: Vid::new(10).expect("vid"),
                c_vid: Vid::new(102).expect("vid"),
            },
        ),
        (3, vxlan(5003, "10.0.0.2", "10.0.0.1")),
        (4, vxlan(5004, "2001:db8:a::2", "2001:db8:a::1")),
    ];
    let options = DecapOptions::default();
    for (id, encap) in encaps {
        let (batch, sent) = rig.batch(&[punted_in(&encap, id, PuntReason::Nd, &rs(mac(1)))]);
        assert_eq!(batch.outcomes, vec![Outcome::Replied("ra")], "home {id}");
        assert_eq!(sent.len(), 1);
        let d = decapsulate(&sent[0], &options).expect("decapsulates");
        assert_eq!(
            d.reply_encap().lsl_id(),
            encap_reply_lsl(&encap),
            "home {id}: on its LSL"
        );
        let (src, lifetime) = ra_of(&sent[0], &options);
        assert_eq!(src, link_local_from_mac(gw_mac(id)), "home {id}");
        assert_eq!(lifetime, 1800);
    }
    assert_eq!(rig.responder.take_v6_counts().ras_solicited, 4);
}

/// The LSL a reply in `encap`'s LSL shows (for VXLAN: the vG's end).
fn encap_reply_lsl(encap: &Encap) -> Option<LslId> {
    match encap {
        Encap::Vxlan(v) => Some(LslId::vxlan(v.vni, v.remote)),
        other => other.lsl_id(),
    }
}

use lsl::LslId;

#[test]
fn the_ra_timer_sends_unsolicited_ras_and_a_vxlan_home_waits_for_its_tunnel() {
    let text = format!(
        "{VTEPS}{IPV6}\n[[subscriber]]\nid = 1\nlsl = \"vlan:101\"\n\
         [[subscriber]]\nid = 3\nlsl = \"vxlan:5003@10.0.0.2\"\n"
    );
    let mut rig = Rig::from_toml(
        &text,
        Rc::default(),
        Rc::default(),
        MemoryV6Table::default(),
    );
    rig.ipv6_on(&[1, 3]);
    let start = rig.now_ms;
    assert!(
        rig.responder.ipv6_next_ms().is_some_and(|t| t <= start),
        "the first RA is due at once"
    );
    let sent = rig.timers(start);
    assert_eq!(
        sent.len(),
        1,
        "home 1's first RA; home 3's tunnel is unknown"
    );
    let options = DecapOptions::default();
    assert_eq!(ra_of(&sent[0], &options).0, link_local_from_mac(gw_mac(1)));
    let counts = rig.responder.take_v6_counts();
    assert_eq!((counts.ras_unsolicited, counts.ras_unsendable), (1, 1));
    // The initial RAs come at most 16 s apart (RFC 4861 §6.2.4); the timer says when.
    let next = rig.responder.ipv6_next_ms().expect("a deadline");
    assert!(next > start && next <= start + 16_000, "{next}");
    assert!(rig.timers(next - 1).is_empty(), "nothing before its time");
    let mut ras = 0;
    let mut now = next;
    while now < start + 120_000 {
        ras += rig.timers(now).len();
        now = rig
            .responder
            .ipv6_next_ms()
            .expect("a deadline")
            .max(now + 1);
    }
    assert!((2..=12).contains(&ras), "{ras} RAs in two minutes");
}

#[test]
fn set_ipv6_none_sends_the_final_ra_and_removes_the_homes_entries() {
    let mut rig = Rig::v6();
    let host = lan_host(1, 0x10);
    rig.batch(&[punted(1, PuntReason::Nd, &ns_for_gateway(1, mac(1), host))]);
    assert_eq!(neighbours(&rig, 1).len(), 1);
    let before = rig.responder.sink().frames.len();
    rig.responder.set_ipv6(1, None, rig.now_ms, T0);
    let sent = rig.responder.sink().frames[before..].to_vec();
    assert_eq!(sent.len(), 1, "the final RA");
    assert_eq!(
        ra_of(&sent[0], &DecapOptions::default()).1,
        0,
        "router lifetime 0"
    );
    assert!(
        neighbours(&rig, 1).is_empty(),
        "the LAN went, its entries too"
    );
    let (batch, _) = rig.batch(&[punted(1, PuntReason::Nd, &rs(mac(1)))]);
    assert_eq!(batch.outcomes, vec![Outcome::Ignored("ipv6_off")]);
    // Removing a home does the same.
    let before = rig.responder.sink().frames.len();
    rig.responder.remove_home(2);
    assert_eq!(
        rig.responder.sink().frames.len(),
        before + 1,
        "home 2's final RA"
    );
}

#[test]
fn an_unchanged_home_keeps_its_state_and_a_new_lan_starts_afresh() {
    let mut rig = Rig::v6();
    rig.batch(&[punted(
        1,
        PuntReason::Nd,
        &ns_for_gateway(1, mac(1), lan_host(1, 0x10)),
    )]);
    let before = rig.responder.sink().frames.len();
    rig.responder.set_ipv6(1, Some(&v6_of(1)), rig.now_ms, T0);
    assert_eq!(rig.responder.sink().frames.len(), before, "nothing sent");
    assert_eq!(neighbours(&rig, 1).len(), 1, "bindings kept");
    rig.responder.set_ipv6(1, Some(&v6_of(9)), rig.now_ms, T0);
    assert_eq!(
        rig.responder.sink().frames.len(),
        before + 1,
        "final RA for the old LAN"
    );
    assert!(neighbours(&rig, 1).is_empty());
}

// ---- neighbour learning ------------------------------------------------------------------

#[test]
fn ns_learning_writes_the_table_and_a_conflicting_mac_is_refused() {
    let mut rig = Rig::v6();
    let host = lan_host(1, 0x10);
    let (batch, sent) = rig.batch(&[punted(1, PuntReason::Nd, &ns_for_gateway(1, mac(1), host))]);
    assert_eq!(batch.outcomes, vec![Outcome::Replied("na")]);
    assert_eq!(sent.len(), 1);
    assert_eq!(
        neighbours(&rig, 1),
        BTreeMap::from([(host, (REACHABLE, mac(1).0))])
    );
    assert_eq!(rig.steps()[0], Step::Neigh(1, host, Some(REACHABLE)));
    // Link-local addresses are learnt but never written (the table holds LAN addresses).
    rig.batch(&[punted(
        1,
        PuntReason::Nd,
        &ns_for_gateway(1, mac(1), link_local_from_mac(mac(1))),
    )]);
    assert_eq!(neighbours(&rig, 1).len(), 1);
    // Another MAC claiming the address while its owner is alive: refused.
    let (batch, _) = rig.batch(&[punted(1, PuntReason::Nd, &ns_for_gateway(1, mac(2), host))]);
    assert_eq!(
        batch.outcomes,
        vec![Outcome::Replied("na")],
        "answered, not learnt"
    );
    assert_eq!(
        neighbours(&rig, 1)[&host].1,
        mac(1).0,
        "the first owner keeps it"
    );
    let counts = rig.responder.take_v6_counts();
    assert_eq!(
        (counts.neighbours_learnt, counts.neighbours_refused),
        (2, 1)
    );
    // Another home's table is its own.
    assert!(neighbours(&rig, 2).is_empty());
}

#[test]
fn a_dad_ns_is_tentative_and_writes_nothing_until_the_host_uses_the_address() {
    let mut rig = Rig::v6();
    let host = lan_host(1, 0x20);
    let (batch, sent) = rig.batch(&[punted(1, PuntReason::Nd, &dad_ns(mac(3), host))]);
    assert_eq!(batch.outcomes, vec![Outcome::Ipv6("learnt")]);
    assert!(sent.is_empty());
    assert!(neighbours(&rig, 1).is_empty(), "tentative: no entry");
    // Another MAC's DAD for it within the DAD window is a conflict (first come, first served).
    rig.batch(&[punted(1, PuntReason::Nd, &dad_ns(mac(4), host))]);
    assert_eq!(rig.responder.take_v6_counts().neighbours_refused, 1);
    // The host then uses it: its NA confirms it.
    rig.batch(&[punted(1, PuntReason::Nd, &na(1, mac(3), host))]);
    assert_eq!(neighbours(&rig, 1)[&host], (REACHABLE, mac(3).0));
}

#[test]
fn an_uncontested_dad_makes_the_address_the_hosts_when_dad_ends() {
    let mut rig = Rig::v6();
    let host = lan_host(1, 0x21);
    rig.batch(&[punted(1, PuntReason::Nd, &dad_ns(mac(3), host))]);
    let t = rig.now_ms;
    rig.timers(t + super::super::responder::DAD_MS - 1);
    assert!(neighbours(&rig, 1).is_empty(), "DAD still running");
    assert!(
        rig.responder
            .ipv6_next_ms()
            .is_some_and(|at| at <= t + super::super::responder::DAD_MS),
        "the end of DAD is a deadline"
    );
    rig.timers(t + super::super::responder::DAD_MS);
    assert_eq!(
        neighbours(&rig, 1)[&host],
        (REACHABLE, mac(3).0),
        "the host's first packets from it pass the source check"
    );
}

#[test]
fn mld_is_counted_and_ignored_and_a_home_without_ipv6_answers_nothing() {
    let mut rig = Rig::new(IPV6, "");
    rig.ipv6_on(&[1]);
    let (batch, sent) = rig.batch(&[
        punted(1, PuntReason::Mld, &rs(mac(1))),
        punted(2, PuntReason::Nd, &rs(mac(1))),
    ]);
    assert_eq!(
        batch.outcomes,
        vec![Outcome::Ignored("mld"), Outcome::Ignored("ipv6_off")]
    );
    assert!(sent.is_empty());
}

// ---- neighbour resolution ----------------------------------------------------------------

#[test]
fn a_neighbour_miss_sends_one_ns_marks_incomplete_retransmits_then_removes_it() {
    let mut rig = Rig::v6();
    let target = lan_host(1, 0x30);
    let miss = core_punt(1, PuntReason::NeighMiss, from_core(target, 8), 0);
    let (batch, sent) = rig.batch(&[miss.clone(), miss]);
    assert_eq!(
        batch.outcomes,
        vec![Outcome::Ipv6("ns_sent"), Outcome::Ipv6("resolving")]
    );
    assert_eq!(sent.len(), 1, "one NS");
    let (inner, msg) = icmp6_sent(&sent[0], &DecapOptions::default());
    assert_eq!(msg, Icmpv6Message::NeighborSolicit);
    let ip = Ipv6Packet::new_checked(&inner[14..]).expect("ipv6");
    assert_eq!(ip.dst_addr(), solicited_node(target));
    assert_eq!(ip.src_addr(), link_local_from_mac(gw_mac(1)));
    assert_eq!(neighbours(&rig, 1)[&target].0, INCOMPLETE);
    // RETRANS_TIMER apart, MAX_MULTICAST_SOLICIT NSs in all, then the verdict.
    let t = rig.now_ms;
    assert_eq!(nss(&rig.timers(t + 999)), 0);
    assert_eq!(nss(&rig.timers(t + 1_000)), 1, "second NS");
    assert_eq!(nss(&rig.timers(t + 2_000)), 1, "third NS");
    assert_eq!(rig.responder.take_v6_counts().solicits, 3);
    assert_eq!(nss(&rig.timers(t + 3_000)), 0);
    assert!(neighbours(&rig, 1).is_empty(), "INCOMPLETE removed");
    let counts = rig.responder.take_v6_counts();
    assert_eq!(counts.unresolved, 1);
    assert_eq!(rig.responder.ipv6_state(1), Some((0, 0)));
}

#[test]
fn an_answered_miss_gets_the_mac_and_the_held_packet_is_delivered() {
    let mut rig = Rig::v6();
    let target = lan_host(1, 0x31);
    rig.batch(&[core_punt(1, PuntReason::NeighMiss, from_core(target, 8), 0)]);
    let (batch, sent) = rig.batch(&[punted(1, PuntReason::Nd, &na(1, mac(5), target))]);
    assert_eq!(batch.outcomes, vec![Outcome::Ipv6("learnt")]);
    assert_eq!(neighbours(&rig, 1)[&target], (REACHABLE, mac(5).0));
    assert_eq!(sent.len(), 1, "the held echo request");
    let d = decapsulate(&sent[0], &DecapOptions::default()).expect("decap");
    let eth = EthernetFrame::new_checked(&d.inner[..]).expect("eth");
    assert_eq!((eth.src_addr(), eth.dst_addr()), (gw_mac(1), mac(5)));
    let ip = Ipv6Packet::new_checked(eth.payload()).expect("ipv6");
    assert_eq!((ip.dst_addr(), ip.hop_limit()), (target, 59));
    assert_eq!(
        nss(&rig.timers(rig.now_ms + 5_000)),
        0,
        "resolved: no retransmission"
    );
}

#[test]
fn a_miss_for_vxlan_from_the_internet_is_a_miss_not_an_lsl_frame() {
    let mut rig = Rig::v6();
    let target = lan_host(1, 0x32);
    // VXLAN over IPv6 to a home host: it decapsulates, but it came from the core.
    let mut vxlan = vec![0x08, 0, 0, 0, 0, 0x13, 0x89, 0];
    vxlan.extend_from_slice(&rs(mac(1)));
    let datagram = crate::slowpath::v6::Udp6 {
        macs: (CORE_ROUTER_MAC, VG_CORE_MAC),
        addrs: (REMOTE, target),
        ports: (40_000, 4789),
        payload: &vxlan,
    };
    let frame = crate::slowpath::v6::udp6_frame(&datagram, &Encap::Untagged).expect("frame");
    assert!(
        decapsulate(&frame, &DecapOptions::default()).is_ok_and(|d| d.lsl.is_some()),
        "the test frame looks like an LSL frame"
    );
    let (batch, sent) = rig.batch(&[core_punt(1, PuntReason::NeighMiss, frame, 0)]);
    assert_eq!(batch.outcomes, vec![Outcome::Ipv6("ns_sent")]);
    assert_eq!(nss(&sent), 1);
}

#[test]
fn a_scan_of_the_lan_from_the_internet_stays_bounded() {
    let mut rig = Rig::v6();
    let frames: Vec<Punted> = (0..1000u16)
        .map(|i| {
            core_punt(
                1,
                PuntReason::NeighMiss,
                from_core(lan_host(1, 0x1000 + i), 8),
                0,
            )
        })
        .collect();
    let (batch, sent) = rig.batch(&frames);
    let limits = vg_engines::nd::ResolverLimits::default();
    assert_eq!(
        sent.len(),
        limits.rate.burst as usize,
        "NSs within the home's budget"
    );
    let refused = batch
        .outcomes
        .iter()
        .filter(|o| matches!(o, Outcome::Ignored("resolve_rate_limited" | "resolve_full")))
        .count();
    assert_eq!(refused, 1000 - sent.len());
    assert_eq!(
        neighbours(&rig, 1).len(),
        sent.len(),
        "INCOMPLETE entries bounded too"
    );
    // A minute of it: never more pending than the bound, never more NSs than the rate.
    for second in 1..=60u64 {
        let now = rig.now_ms + 1_000;
        rig.timers(now);
        rig.batch(&frames[..200]);
        let (_, pending) = rig.responder.ipv6_state(1).expect("state");
        assert!(pending <= limits.max_pending, "second {second}: {pending}");
        assert!(neighbours(&rig, 1).len() <= limits.max_pending);
    }
    let counts = rig.responder.take_v6_counts();
    assert!(counts.solicits <= 10 + 61 * 10, "{}", counts.solicits);
    assert!(
        rig.responder.ipv6_queue_len() <= 32,
        "the deadline heap holds a few entries per home, not one per frame (13,000): {}",
        rig.responder.ipv6_queue_len()
    );
}

#[test]
fn packet_too_big_goes_to_the_home_or_to_the_core_with_the_punted_mtu() {
    let mut rig = Rig::v6();
    struct CoreSink(std::sync::Arc<std::sync::Mutex<Vec<Vec<u8>>>>);
    impl FrameSink for CoreSink {
        fn send(&mut self, frame: &[u8]) -> std::io::Result<()> {
            self.0.lock().expect("lock").push(frame.to_vec());
            Ok(())
        }
    }
    let core = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    rig.responder
        .set_core_sink(Box::new(CoreSink(std::sync::Arc::clone(&core))));
    // From the core, too big for the home's LSL: back to the core router.
    let big = from_core(lan_host(1, 0x10), 1460);
    let (batch, sent) = rig.batch(&[core_punt(1, PuntReason::PacketTooBig, big, 1500)]);
    assert_eq!(
        batch.outcomes,
        vec![Outcome::Replied("icmp6_packet_too_big")]
    );
    assert!(sent.is_empty(), "nothing into the home");
    let core = core.lock().expect("lock").clone();
    assert_eq!(core.len(), 1);
    let eth = EthernetFrame::new_checked(&core[0][..]).expect("eth");
    assert_eq!(
        (eth.src_addr(), eth.dst_addr()),
        (VG_CORE_MAC, CORE_ROUTER_MAC)
    );
    let ip = Ipv6Packet::new_checked(eth.payload()).expect("ipv6");
    assert_eq!((ip.src_addr(), ip.dst_addr()), (ROUTER, REMOTE));
    let icmp = Icmpv6Packet::new_checked(ip.payload()).expect("icmp");
    assert_eq!(icmp.msg_type(), Icmpv6Message::PktTooBig);
    assert_eq!(icmp.pkt_too_big_mtu(), 1500);
    // From a home host, too big for the egress: back into the home.
    let data = vec![0u8; 1500];
    let repr = Icmpv6Repr::EchoRequest {
        ident: 1,
        seq_no: 1,
        data: &data,
    };
    let host = lan_host(1, 0x10);
    let up = icmp6(mac(1), gw_mac(1), (host, REMOTE), 64, &repr);
    let mut too_big = punted(1, PuntReason::PacketTooBig, &up);
    too_big.header.mtu = 1500;
    let (batch, sent) = rig.batch(&[too_big]);
    assert_eq!(
        batch.outcomes,
        vec![Outcome::Replied("icmp6_packet_too_big")]
    );
    let (inner, msg) = icmp6_sent(&sent[0], &DecapOptions::default());
    assert_eq!(msg, Icmpv6Message::PktTooBig);
    let ip = Ipv6Packet::new_checked(&inner[14..]).expect("ipv6");
    assert_eq!((ip.src_addr(), ip.dst_addr()), (ROUTER, host));
}

#[test]
fn without_a_router_address_no_icmpv6_error_is_sent_and_that_is_counted() {
    let mut rig = Rig::new(IPV6, "");
    rig.responder.set_router_address(None);
    rig.ipv6_on(&[1]);
    let data = [0u8; 8];
    let repr = Icmpv6Repr::EchoRequest {
        ident: 1,
        seq_no: 1,
        data: &data,
    };
    let up = icmp6(mac(1), gw_mac(1), (lan_host(1, 0x10), REMOTE), 1, &repr);
    let (batch, sent) = rig.batch(&[
        punted(1, PuntReason::HopLimitExceeded, &up),
        punted(1, PuntReason::PacketTooBig, &up),
    ]);
    assert_eq!(
        batch.outcomes,
        vec![
            Outcome::Ignored("no_router_address"),
            Outcome::Ignored("no_router_address")
        ]
    );
    assert!(sent.is_empty());
    assert_eq!(rig.responder.take_v6_counts().errors_without_source, 2);
}

// ---- DHCPv6 ------------------------------------------------------------------------------

/// A DHCPv6 client of the LAN: DUID-LL of its MAC, IA_NA 1 and, as a router, IA_PD 1.
struct Client6 {
    mac: EthernetAddress,
    pd: bool,
}

impl Client6 {
    /// Client `n` of a tool that simulates many on one interface (perfdhcp `-R`): DUIDs of
    /// their own, one MAC.
    fn simulated(&self, n: u8, rapid: bool) -> Vec<u8> {
        let mut bytes = self.message(MessageType::Solicit, None, rapid);
        let mut msg = Message::decode(&mut Decoder::new(&bytes)).expect("decodes");
        let mut duid = vec![0, 1, 0, 1, 0x32, 0xa9, 0x3c, n];
        duid.extend_from_slice(&self.mac.0);
        msg.opts_mut().remove(dhcproto::v6::OptionCode::ClientId);
        msg.opts_mut().insert(DhcpOption::ClientId(duid));
        msg.set_xid([9, 9, n]);
        bytes.clear();
        msg.encode(&mut Encoder::new(&mut bytes)).expect("encodes");
        bytes
    }
}

impl Client6 {
    fn message(&self, kind: MessageType, from: Option<&Message>, rapid: bool) -> Vec<u8> {
        let mut msg = Message::new_with_id(kind, [1, 2, self.mac.0[5]]);
        let opts = msg.opts_mut();
        let mut duid = vec![0, 3, 0, 1];
        duid.extend_from_slice(&self.mac.0);
        opts.insert(DhcpOption::ClientId(duid));
        opts.insert(DhcpOption::ElapsedTime(0));
        if rapid {
            opts.insert(DhcpOption::RapidCommit);
        }
        match from {
            Some(advertise) => {
                for opt in advertise.opts().iter() {
                    if matches!(
                        opt,
                        DhcpOption::ServerId(_) | DhcpOption::IANA(_) | DhcpOption::IAPD(_)
                    ) {
                        opts.insert(opt.clone());
                    }
                }
            }
            None => {
                opts.insert(DhcpOption::IANA(IANA {
                    id: 1,
                    t1: 0,
                    t2: 0,
                    opts: Default::default(),
                }));
                if self.pd {
                    opts.insert(DhcpOption::IAPD(IAPD {
                        id: 1,
                        t1: 0,
                        t2: 0,
                        opts: Default::default(),
                    }));
                }
            }
        }
        let mut buf = Vec::new();
        msg.encode(&mut Encoder::new(&mut buf)).expect("encodes");
        buf
    }

    fn frame(&self, home: SubscriberId, payload: &[u8]) -> Punted {
        let src = link_local_from_mac(self.mac);
        let dst: Ipv6Addr = "ff02::1:2".parse().expect("ip");
        let datagram = crate::slowpath::v6::Udp6 {
            macs: (self.mac, nd::multicast_mac(dst)),
            addrs: (src, dst),
            ports: (546, 547),
            payload,
        };
        let inner = crate::slowpath::v6::udp6_frame(&datagram, &Encap::Untagged).expect("frame");
        punted(home, PuntReason::Dhcpv6, &inner)
    }
}

/// The DHCPv6 message of a frame sent into a home, checking its addressing.
fn dhcp6_sent(frame: &[u8], to: EthernetAddress, home: SubscriberId) -> Message {
    let d = decapsulate(frame, &DecapOptions::default()).expect("decap");
    let eth = EthernetFrame::new_checked(&d.inner[..]).expect("eth");
    assert_eq!((eth.src_addr(), eth.dst_addr()), (gw_mac(home), to));
    let ip = Ipv6Packet::new_checked(eth.payload()).expect("ipv6");
    assert_eq!(ip.src_addr(), link_local_from_mac(gw_mac(home)));
    assert_eq!(ip.dst_addr(), link_local_from_mac(to));
    let udp = UdpPacket::new_checked(ip.payload()).expect("udp");
    assert!(udp.verify_checksum(&ip.src_addr().into(), &ip.dst_addr().into()));
    assert_eq!((udp.src_port(), udp.dst_port()), (547, 546));
    Message::decode(&mut Decoder::new(udp.payload())).expect("dhcpv6")
}

fn leased_address(reply: &Message) -> Ipv6Addr {
    reply
        .opts()
        .iter()
        .find_map(|o| match o {
            DhcpOption::IANA(ia) => ia.opts.iter().find_map(|o| match o {
                DhcpOption::IAAddr(a) => Some(a.addr),
                _ => None,
            }),
            _ => None,
        })
        .expect("an IA_NA address")
}

fn delegated_prefix(reply: &Message) -> Ipv6Net {
    reply
        .opts()
        .iter()
        .find_map(|o| match o {
            DhcpOption::IAPD(ia) => ia.opts.iter().find_map(|o| match o {
                DhcpOption::IAPrefix(p) => Ipv6Net::new(p.prefix_ip, p.prefix_len).ok(),
                _ => None,
            }),
            _ => None,
        })
        .expect("an IA_PD prefix")
}

#[test]
fn solicit_is_advertised_at_once_and_the_request_replied_only_after_the_commit() {
    let mut rig = Rig::v6();
    let client = Client6 {
        mac: mac(7),
        pd: false,
    };
    let solicit = client.frame(1, &client.message(MessageType::Solicit, None, false));
    let (batch, sent) = rig.batch(&[solicit]);
    assert_eq!(
        batch.outcomes,
        vec![Outcome::Dhcp6 {
            request: "solicit",
            reply: "advertise"
        }]
    );
    assert_eq!(rig.steps(), vec![Step::Send], "nothing durable: no commit");
    let advertise = dhcp6_sent(&sent[0], client.mac, 1);
    assert_eq!(advertise.msg_type(), MessageType::Advertise);
    let request = client.frame(
        1,
        &client.message(MessageType::Request, Some(&advertise), false),
    );
    let (batch, sent) = rig.batch(&[request]);
    assert_eq!(
        batch.outcomes,
        vec![Outcome::Dhcp6 {
            request: "request",
            reply: "reply"
        }]
    );
    let reply = dhcp6_sent(&sent[0], client.mac, 1);
    let addr = leased_address(&reply);
    assert!(v6_of(1).lan.contains(&addr));
    assert_eq!(
        rig.steps(),
        vec![
            Step::Commit(1),
            Step::Neigh(1, addr, Some(STATIC | REACHABLE)),
            Step::Send
        ],
        "durable, then the fast path's entry, then the Reply"
    );
    // The lease binds the address: another MAC's claim is refused, whatever its timing.
    rig.batch(&[punted(1, PuntReason::Nd, &ns_for_gateway(1, mac(99), addr))]);
    assert_eq!(
        neighbours(&rig, 1)[&addr],
        (STATIC | REACHABLE, client.mac.0)
    );
    assert_eq!(rig.responder.take_v6_counts().neighbours_refused, 1);
    // Quiet for longer than any ND binding lives: the lease's entry stays.
    let later = rig.now_ms + 2 * vg_engines::nd::NeighbourLimits::default().lifetime_ms;
    rig.timers(later);
    assert_eq!(
        neighbours(&rig, 1)[&addr],
        (STATIC | REACHABLE, client.mac.0)
    );
}

#[test]
fn one_mac_with_more_leases_than_bindings_keeps_every_lease_entry() {
    let mut rig = Rig::v6();
    let tool = Client6 {
        mac: mac(20),
        pd: false,
    };
    let per_mac = vg_engines::nd::NeighbourLimits::default().max_per_mac;
    let n = u8::try_from(per_mac + 8).expect("small");
    let frames: Vec<Punted> = (0..n)
        .map(|i| tool.frame(1, &tool.simulated(i, true)))
        .collect();
    let (batch, sent) = rig.batch(&frames);
    let reply = Outcome::Dhcp6 {
        request: "solicit",
        reply: "reply",
    };
    assert!(
        batch.outcomes.iter().all(|o| *o == reply),
        "{:?}",
        batch.outcomes
    );
    assert_eq!(sent.len(), frames.len());
    let table = neighbours(&rig, 1);
    assert_eq!(table.len(), frames.len(), "every lease has its entry");
    assert!(
        table
            .values()
            .all(|e| *e == (STATIC | REACHABLE, tool.mac.0))
    );
}

#[test]
fn a_failed_commit_sends_no_dhcpv6_reply_and_the_engine_forgets_it() {
    let mut rig = Rig::v6();
    let client = Client6 {
        mac: mac(8),
        pd: true,
    };
    let rapid = client.frame(1, &client.message(MessageType::Solicit, None, true));
    rig.fail_writes.set(true);
    let (batch, sent) = rig.batch(std::slice::from_ref(&rapid));
    assert_eq!(
        batch.outcomes,
        vec![Outcome::Dhcp6 {
            request: "solicit",
            reply: "store_failed"
        }]
    );
    assert!(sent.is_empty());
    assert!(neighbours(&rig, 1).is_empty());
    assert!(rig.responder.hosts().v6.delegated.is_empty());
    // The disk is back: the client's retransmission is served from scratch.
    rig.fail_writes.set(false);
    let (batch, sent) = rig.batch(&[rapid]);
    assert_eq!(
        batch.outcomes,
        vec![Outcome::Dhcp6 {
            request: "solicit",
            reply: "reply"
        }]
    );
    assert_eq!(sent.len(), 1);
}

#[test]
fn a_delegated_prefix_is_routed_via_the_routers_lan_address_and_expiry_removes_it() {
    let mut rig = Rig::v6();
    let router = Client6 {
        mac: mac(9),
        pd: true,
    };
    let rapid = router.frame(1, &router.message(MessageType::Solicit, None, true));
    let (_, sent) = rig.batch(&[rapid]);
    let reply = dhcp6_sent(&sent[0], router.mac, 1);
    let (addr, prefix) = (leased_address(&reply), delegated_prefix(&reply));
    assert!(v6_of(1).prefix.contains(&prefix) && !prefix.contains(&v6_of(1).lan.network()));
    assert_eq!(
        rig.responder.hosts().v6.delegated,
        BTreeMap::from([(prefix, (1, addr))]),
        "via the router's IA_NA address"
    );
    assert_eq!(
        neighbours(&rig, 1)[&addr],
        (STATIC | REACHABLE, router.mac.0)
    );
    // A packet from the core to the delegated prefix resolves the router's address.
    let miss = core_punt(1, PuntReason::NeighMiss, from_core(prefix.network(), 8), 0);
    let (batch, sent) = rig.batch(&[miss]);
    assert_eq!(batch.outcomes, vec![Outcome::Ipv6("forwarded")]);
    let d = decapsulate(&sent[0], &DecapOptions::default()).expect("decap");
    assert_eq!(
        EthernetFrame::new_checked(&d.inner[..])
            .expect("eth")
            .dst_addr(),
        router.mac
    );
    // The bindings' valid lifetime runs out: the route and the entry go, in one commit.
    rig.log.borrow_mut().clear();
    let later = UnixTime(T0.0 + u64::from(crate::dhcp6::DEFAULT_VALID_SECS) + 1);
    let commit = rig.responder.tick(later);
    assert_eq!(commit.ops(), Some(2));
    assert!(rig.responder.hosts().v6.delegated.is_empty());
    assert!(neighbours(&rig, 1).is_empty());
    assert!(rig.steps().contains(&Step::Route(prefix, None)));
}

#[test]
fn a_restart_restores_dhcpv6_bindings_and_their_table_entries() {
    let mut rig = Rig::v6();
    let router = Client6 {
        mac: mac(10),
        pd: true,
    };
    let rapid = router.frame(1, &router.message(MessageType::Solicit, None, true));
    let (_, sent) = rig.batch(&[rapid]);
    let reply = dhcp6_sent(&sent[0], router.mac, 1);
    let (addr, prefix) = (leased_address(&reply), delegated_prefix(&reply));
    let learnt = lan_host(1, 0x44);
    rig.batch(&[punted(
        1,
        PuntReason::Nd,
        &ns_for_gateway(1, mac(11), learnt),
    )]);
    let home2 = lan_host(2, 0x44);
    rig.batch(&[punted(
        2,
        PuntReason::Nd,
        &ns_for_gateway(2, mac(12), home2),
    )]);
    assert_eq!(neighbours(&rig, 2).len(), 1);
    // A stale entry of a LAN the home no longer has (its prefix changed while vgd was down).
    rig.responder
        .hosts_mut()
        .v6
        .set_neighbour(
            1,
            "2001:db8:999::1".parse().expect("ip"),
            nerg_abi::V6Neigh::default(),
        )
        .expect("set");
    let text = format!(
        "[slowpath]\nper_home_pps = 100000\nper_home_burst = 100000\n{IPV6}\n\
         [[subscriber]]\nid = 1\nlsl = \"vlan:101\"\n[[subscriber]]\nid = 2\nlsl = \"vlan:102\"\n"
    );
    // kill -9: nothing of the first responder but its store and the pinned tables.
    let mut rig2 = rig.restart(&text);
    drop(rig);
    rig2.log.borrow_mut().clear();
    let now_ms = rig2.now_ms;
    rig2.responder
        .start_ipv6([(1, Some(v6_of(1))), (2, None)], now_ms, T0);
    let table = neighbours(&rig2, 1);
    assert_eq!(table[&addr], (STATIC | REACHABLE, router.mac.0));
    assert_eq!(table[&learnt].1, mac(11).0, "learnt entries kept");
    assert_eq!(table.len(), 2, "the stale entry removed");
    assert_eq!(
        rig2.responder.hosts().v6.delegated,
        BTreeMap::from([(prefix, (1, addr))])
    );
    assert!(
        !rig2
            .steps()
            .iter()
            .any(|s| matches!(s, Step::Route(_, None))),
        "the route never went away: {:?}",
        rig2.steps()
    );
    // The router's bindings are back in the binding table too (its address, the host's).
    assert!(
        rig2.responder
            .ipv6_state(1)
            .is_some_and(|(bindings, _)| bindings >= 2)
    );
    // Home 2 lost its IPv6 while vgd was down: its entries go.
    assert!(neighbours(&rig2, 2).is_empty());
    // The first RA goes out at once.
    let now = rig2.now_ms;
    assert_eq!(rig2.timers(now).len(), 1);
}

#[test]
fn a_binding_that_goes_quiet_is_probed_then_removed() {
    let mut rig = Rig::v6();
    let host = lan_host(1, 0x55);
    rig.batch(&[punted(1, PuntReason::Nd, &ns_for_gateway(1, mac(12), host))]);
    let lifetime = vg_engines::nd::NeighbourLimits::default().lifetime_ms;
    let t = rig.now_ms + lifetime + super::super::responder::SWEEP_MS;
    let sent = rig.timers(t);
    let probes: Vec<_> = sent
        .iter()
        .filter(|f| icmp6_sent(f, &DecapOptions::default()).1 == Icmpv6Message::NeighborSolicit)
        .collect();
    assert_eq!(probes.len(), 1, "a unicast probe");
    let d = decapsulate(probes[0], &DecapOptions::default()).expect("decap");
    assert_eq!(
        EthernetFrame::new_checked(&d.inner[..])
            .expect("eth")
            .dst_addr(),
        mac(12)
    );
    assert_eq!(
        neighbours(&rig, 1)[&host].0,
        STALE,
        "still usable meanwhile"
    );
    for s in 1..=3 {
        rig.timers(t + s * 1_000);
    }
    assert!(neighbours(&rig, 1).is_empty(), "no answer: removed");
    assert_eq!(rig.responder.take_v6_counts().neighbours_expired, 1);
}
