//! A host of one home cannot reach another home (issue 15): a LAN host behind an 802.1Q LSL
//! (`vlan:101`) that tags its own frames with VID 5 would leave its BRG with exactly the
//! tags of `qinq-8100:101.5`. Three things stop it, each checked here with real frames:
//! vgd refuses to have both homes; the BRG's tagger drops LAN frames that already carry a
//! tag; and the vG drops a second tag inside an 802.1Q home's (from a BRG that still
//! forwards such frames) as `tagged_in_home`.
//!
//! ```text
//!  home 1 h1 -- lan0 BRG 1 (brgd, tagger vlan:101) lsl0 -- b1  access br0  vg -- acc0 vG (vgd)
//!                                                  (captured here)        (a BRG without the fix:
//!                                                                          frames sent on br0)
//! ```

use std::time::{Duration, Instant};

use nerg_tests::{
    frames, http,
    raw::RawSocket,
    topology::{DhcpClient, HomeLsl, HomeSpec, Naming, Topology},
    vgd::{self, api},
};

/// A DHCPDISCOVER from `mac` with the host's own 0x8100 tag `vid` in-line, as a DHCP client
/// on a VLAN device of the host would send it.
fn tagged_discover(mac: [u8; 6], vid: u16) -> Vec<u8> {
    let mut frame = frames::dhcp_discover(mac);
    let mut tag = [0x81, 0x00, 0, 0];
    tag[2..].copy_from_slice(&vid.to_be_bytes());
    frame.splice(12..12, tag);
    frame
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn drops(topo: &Topology, reason: &str) -> u64 {
    http::metric_sum(
        &vgd::metrics(&topo.vg),
        "vg_xdp_drops_total",
        &[("reason", reason)],
    )
}

fn punts(topo: &Topology) -> u64 {
    http::metric_sum(&vgd::metrics(&topo.vg), "vg_slowpath_punts_total", &[])
}

#[test]
fn a_host_that_tags_its_own_frames_joins_no_other_home() {
    let instance = nerg_tests::netns::unique_name("isolation");
    let topo = Topology::build(
        Naming::Test("isolation".into()),
        &[HomeSpec {
            id: 1,
            lsl: HomeLsl::Vlan(101),
            client: DhcpClient::Udhcpc,
        }],
        &instance,
    );
    let home = &topo.homes[0];
    let host_mac = home.host.mac(&home.iface());

    // vgd refuses the home the host would join.
    let (code, body) = api(
        &topo.vg,
        "POST",
        "/api/v1/subscribers",
        Some(r#"{"id": 2, "lsl": "qinq-8100:101.5"}"#),
    );
    assert_eq!(code, 409, "{body}");
    assert!(
        body.contains("subscriber 1") && body.contains("vlan:101"),
        "{body}"
    );

    // The host asks for a lease with its own tag: its BRG drops the frames, nothing with
    // two tags reaches the access network, and vgd sees none of them.
    let capture = topo
        .access
        .run(|| RawSocket::bind("b1").expect("raw socket on the BRG's access port"));
    let host = home
        .host
        .run(|| RawSocket::bind(&home.iface()).expect("raw socket on the host"));
    let punted = punts(&topo);
    let frame = tagged_discover(host_mac, 5);
    for _ in 0..10 {
        host.send(&frame).expect("send");
    }
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline {
        if let Some(f) = capture.recv(Duration::from_millis(100)).expect("recv") {
            assert!(
                !(contains(&f, &host_mac) && contains(&f, &[0x81, 0x00, 0x00, 0x05])),
                "the host's own tag left its BRG: {f:02x?}"
            );
        }
    }
    assert_eq!(punts(&topo), punted, "vgd saw the host's frames");

    // A BRG that still forwards such frames: the vG drops them, never reading them as
    // qinq-8100:101.5 (0x8100/101 outer, 0x8100/5 inner).
    let rogue = topo
        .access
        .run(|| RawSocket::bind("br0").expect("raw socket on the access bridge"));
    let from_old_brg = lsl::Encap::Dot1q {
        c_vid: lsl::Vid::new(101).expect("VID"),
    }
    .encapsulate(&frame)
    .expect("tag");
    let before = drops(&topo, "tagged_in_home");
    for _ in 0..5 {
        rogue.send(&from_old_brg).expect("send");
    }
    nerg_tests::wait_until(
        "vgd to count the frames as tagged_in_home",
        Duration::from_secs(5),
        || drops(&topo, "tagged_in_home") >= before + 5,
    );
    assert_eq!(
        punts(&topo),
        punted,
        "vgd answered the doubly tagged frames"
    );

    // The home itself is untouched: its host gets its lease.
    let lease = topo.dhcp(Duration::from_secs(30));
    lease[0]
        .as_ref()
        .unwrap_or_else(|out| panic!("home 1 got no lease:\n{out}\nvgd:\n{}", topo.vgd.log()));
}
