//! The BRG's bridge carries IPv6 and its multicast untouched (issue 18), on every LSL kind:
//! real BRGs (`brgd`, provisioned over TR-069 by the lab's ACS) between a home host and the
//! access network, frames captured and injected on the access side of each BRG.
//!
//! ```text
//!  host hN -- lan0 BRG br0 [lan0, lsl0 (tagger) | vx1-1] lsl0 -- bN (access bridge port:
//!                                                                  capture and inject here)
//! ```
//!
//! - Upstream: a Router Solicitation (RFC 4861 §4.1) and an MLDv2 report (RFC 3810 §5.2,
//!   behind its hop-by-hop Router Alert) from the host reach the LSL under the home's tags or
//!   VXLAN header with the inner bytes unchanged; so do the solicitations and reports the
//!   host's own kernel sends when IPv6 starts.
//! - Downstream: a router advertisement to all nodes, encapsulated as the vG sends it,
//!   reaches the host byte for byte, and the host's kernel forms its SLAAC address from it.

use std::{net::Ipv6Addr, time::Duration};

use ipnet::Ipv6Net;
use nerg_tests::{
    frames::icmp6,
    raw::RawSocket,
    topology::{DhcpClient, Home, HomeLsl, HomeSpec, Naming, Topology},
};

const ALL_NODES_MAC: [u8; 6] = [0x33, 0x33, 0, 0, 0, 1];
/// The "vG"'s MAC in the injected RA.
const VG_MAC: [u8; 6] = [0x02, 0x76, 0x67, 0, 0, 1];

fn homes() -> [HomeSpec; 4] {
    let home = |id, lsl| HomeSpec {
        id,
        lsl,
        client: DhcpClient::Udhcpc,
    };
    [
        home(91, HomeLsl::Vlan(191)),
        home(92, HomeLsl::Qinq(10, 192)),
        home(93, HomeLsl::Vxlan(5093)),
        home(94, HomeLsl::Vxlan6(5094)),
    ]
}

fn ll(last: u16) -> Ipv6Addr {
    Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, last)
}

/// A Router Solicitation from `mac` at `src` with its source link-layer address option.
fn router_solicitation(mac: [u8; 6], src: Ipv6Addr) -> Vec<u8> {
    let mut body = vec![0u8; 4];
    body.extend_from_slice(&[1, 1]);
    body.extend_from_slice(&mac);
    icmp6(
        mac,
        [0x33, 0x33, 0, 0, 0, 2],
        src,
        "ff02::2".parse().unwrap(),
        133,
        &body,
        255,
    )
}

/// An MLDv2 report (type 143) joining `group`, with the hop-by-hop Router Alert option
/// every MLD message carries (RFC 3810 §5).
fn mld2_report(mac: [u8; 6], src: Ipv6Addr, group: Ipv6Addr) -> Vec<u8> {
    let mut body = vec![0, 0, 0, 1];
    body.extend_from_slice(&[4, 0, 0, 0]); // CHANGE_TO_EXCLUDE_MODE, no sources
    body.extend_from_slice(&group.octets());
    let dst: Ipv6Addr = "ff02::16".parse().unwrap();
    let frame = icmp6(mac, [0x33, 0x33, 0, 0, 0, 0x16], src, dst, 143, &body, 1);
    // Hop-by-hop: Router Alert (type 5, value 0: MLD), PadN to 8 bytes.
    nerg_tests::frames::with_ext6(&frame, 0, &[0, 0, 5, 2, 0, 0, 1, 0])
}

/// A router advertisement from the "vG" to all nodes with the autonomous prefix `prefix`.
fn router_advertisement(prefix: Ipv6Net) -> Vec<u8> {
    let mut body = vec![64, 0];
    body.extend_from_slice(&1800u16.to_be_bytes());
    body.extend_from_slice(&[0; 8]);
    body.extend_from_slice(&[3, 4, 64, 0xc0]);
    body.extend_from_slice(&86_400u32.to_be_bytes());
    body.extend_from_slice(&14_400u32.to_be_bytes());
    body.extend_from_slice(&[0; 4]);
    body.extend_from_slice(&prefix.network().octets());
    body.extend_from_slice(&[1, 1]);
    body.extend_from_slice(&VG_MAC);
    icmp6(
        VG_MAC,
        ALL_NODES_MAC,
        ll(1),
        "ff02::1".parse().unwrap(),
        134,
        &body,
        255,
    )
}

/// The ICMPv6 type of an untagged Ethernet + IPv6 frame (behind at most one hop-by-hop
/// header), if it is ICMPv6.
fn icmp6_type(frame: &[u8]) -> Option<u8> {
    if frame.get(12..14)? != [0x86, 0xdd] {
        return None;
    }
    match *frame.get(20)? {
        58 => frame.get(54).copied(),
        0 if *frame.get(54)? == 58 => {
            let len = 8 * (usize::from(*frame.get(55)?) + 1);
            frame.get(54 + len).copied()
        }
        _ => None,
    }
}

/// The inner frame of an LSL frame captured on the access side, with the LSL's text.
fn decap(frame: &[u8]) -> Option<(String, Vec<u8>)> {
    let options = lsl::encap::DecapOptions {
        verify_checksums: false,
        ..Default::default()
    };
    let dec = lsl::decapsulate(frame, &options).ok()?;
    Some((dec.lsl?.to_string(), dec.inner.into_owned()))
}

/// The access bridge's port towards `home`'s BRG.
fn port(home: &Home) -> String {
    format!("b{}", home.spec.id)
}

/// The first frame captured by `sock` (on the access side of a BRG) whose inner frame
/// `want` accepts, before `timeout`: (LSL, inner).
fn upstream(
    sock: &RawSocket,
    timeout: Duration,
    mut want: impl FnMut(&[u8]) -> bool,
) -> Option<(String, Vec<u8>)> {
    let deadline = std::time::Instant::now() + timeout;
    while std::time::Instant::now() < deadline {
        let Some(frame) = sock.recv(Duration::from_millis(200)).expect("recv") else {
            continue;
        };
        if let Some((lsl, inner)) = decap(&frame)
            && want(&inner)
        {
            return Some((lsl, inner));
        }
    }
    None
}

#[test]
fn the_brg_bridge_carries_ipv6_nd_and_mld_untouched_on_every_lsl() {
    let instance = nerg_tests::netns::unique_name("brgv6");
    let topo = Topology::build(Naming::Test("brgv6".into()), &homes(), &instance);
    for home in &topo.homes {
        let id = home.spec.id;
        let mac = home.host.mac(&home.iface());
        let capture = topo
            .access
            .run(|| RawSocket::bind(&port(home)).expect("raw socket on the access port"));
        let host = home
            .host
            .run(|| RawSocket::bind(&home.iface()).expect("raw socket on the host"));

        // Upstream, crafted: exact bytes under the home's LSL.
        let src = ll(0x1000 + id as u16);
        let group: Ipv6Addr = "ff02::1:ff00:1234".parse().unwrap();
        for sent in [router_solicitation(mac, src), mld2_report(mac, src, group)] {
            let mut got = None;
            for _ in 0..10 {
                host.send(&sent).expect("send from the host");
                got = upstream(&capture, Duration::from_millis(500), |f| {
                    f == sent.as_slice()
                });
                if got.is_some() {
                    break;
                }
            }
            let (lsl, _) = got.unwrap_or_else(|| {
                panic!(
                    "home {id} ({}): ICMPv6 type {:?} never reached the LSL unchanged",
                    home.lsl_text(),
                    icmp6_type(&sent)
                )
            });
            assert_eq!(lsl, home.lsl_text(), "home {id}: under another LSL");
        }

        // Upstream, the host's own kernel: its MLD reports and Router Solicitations when
        // IPv6 starts on the interface.
        home.start_ipv6();
        let (mut rs, mut mld) = (false, false);
        upstream(&capture, Duration::from_secs(15), |f| {
            if f[6..12] == mac {
                rs |= icmp6_type(f) == Some(133);
                mld |= icmp6_type(f) == Some(143);
            }
            rs && mld
        });
        assert!(
            rs && mld,
            "home {id} ({}): the kernel's RS ({rs}) and MLDv2 report ({mld}) must reach the LSL",
            home.lsl_text()
        );

        // Downstream: the "vG"'s RA reaches the host byte for byte; the host forms its
        // address from the prefix.
        let prefix: Ipv6Net = format!("2001:db8:42:{id}::/64").parse().unwrap();
        let ra = router_advertisement(prefix);
        let brg_mac = home.brg.mac("lsl0");
        let encap = home
            .spec
            .lsl
            .encap_from_vg(home.brg_vtep, topo.vg.mac("acc0"), brg_mac);
        let frame = encap.encapsulate(&ra).expect("encapsulate");
        let inject = topo
            .access
            .run(|| RawSocket::bind(&port(home)).expect("raw socket to inject"));
        let mut seen = None;
        for _ in 0..10 {
            inject.send(&frame).expect("inject");
            let deadline = std::time::Instant::now() + Duration::from_millis(500);
            while seen.is_none() && std::time::Instant::now() < deadline {
                if let Some(f) = host.recv(Duration::from_millis(100)).expect("recv")
                    && f[6..12] == VG_MAC
                {
                    seen = Some(f);
                }
            }
            if seen.is_some() {
                break;
            }
        }
        let seen = seen.unwrap_or_else(|| {
            panic!(
                "home {id} ({}): the RA never reached the host",
                home.lsl_text()
            )
        });
        assert_eq!(seen, ra, "home {id}: the RA changed on its way");
        let addr = home
            .wait_slaac(prefix, Duration::from_secs(10))
            .unwrap_or_else(|e| panic!("home {id}: {e}"));
        assert_eq!(addr, home.eui64_address(prefix), "home {id}");
    }
}
