//! vgd answers as each home's gateway: a real home host behind a VXLAN LSL resolves the
//! gateway with ARP and pings it; on a QinQ LSL the ARP reply comes back with the home's tags.

use std::{net::Ipv4Addr, time::Duration};

use lsl::{Encap, wire::vlan::Tpid};
use nerg_tests::{Netns, PinDir, frames, http, netns::veth, raw::RawSocket, require_root, vgd};

const VG_VTEP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const BRG_VTEP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
const GW: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 1);
const HOST: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 10);

fn config() -> String {
    format!(
        r#"
[fastpath]
vtep = "{VG_VTEP}"

[[subscriber]]
id = 1
lsl = "vxlan:5001@{BRG_VTEP}"

[[subscriber]]
id = 2
lsl = "qinq:10.200"
"#
    )
}

struct TempFile(std::path::PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn homes_resolve_and_ping_their_gateway() {
    require_root();
    let home = Netns::new("gw-home");
    let brg = Netns::new("gw-brg");
    let vg = Netns::new("gw-vg");
    for ns in [&home, &brg, &vg] {
        ns.disable_ipv6();
    }
    veth(&home, "h0", &brg, "lan0");
    home.ip(&["link", "set", "h0", "mtu", "1450"]);
    home.addr_add("h0", &format!("{HOST}/24"));
    home.ethtool_k("h0", &["tx", "off"]);
    veth(&brg, "lsl0", &vg, "acc0");
    brg.addr_add("lsl0", &format!("{BRG_VTEP}/24"));
    brg.ip(&[
        "link",
        "add",
        "vxlan0",
        "type",
        "vxlan",
        "id",
        "5001",
        "local",
        &BRG_VTEP.to_string(),
        "remote",
        &VG_VTEP.to_string(),
        "dstport",
        "4789",
        "dev",
        "lsl0",
    ]);
    brg.ip(&["link", "set", "lan0", "mtu", "1450"]);
    brg.bridge("br0", &["lan0", "vxlan0"]);
    brg.link_up("vxlan0");
    brg.ethtool_k("lsl0", &["tx", "off"]);
    vg.addr_add("acc0", &format!("{VG_VTEP}/24"));

    let pins = PinDir::new("gw");
    let cfg = TempFile(std::env::temp_dir().join(format!("{}.toml", pins.instance())));
    std::fs::write(&cfg.0, config()).unwrap();
    let _vgd = vgd::start_with_config(&vg, "acc0", pins.instance(), Some(&cfg.0));

    // A real host: ARP for the gateway through the VXLAN LSL, then ICMP echo.
    let out = home
        .command("ping")
        .args(["-c", "3", "-i", "0.2", "-W", "2", &GW.to_string()])
        .output()
        .expect("ping");
    assert!(
        out.status.success(),
        "ping to the gateway failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let neigh = home.ip(&["neigh", "show", &GW.to_string()]);
    let neigh = String::from_utf8_lossy(&neigh.stdout);
    assert!(
        neigh.contains("02:4e:47:00:00:01"),
        "gateway MAC learnt by the host: {neigh}"
    );

    // QinQ: an ARP request with the home's tags gets an ARP reply with the same tags.
    let encap = Encap::QinQ {
        s_tpid: Tpid::STag,
        s_vid: lsl::Vid::new(10).unwrap(),
        c_vid: lsl::Vid::new(200).unwrap(),
    };
    let host_mac = [0x02, 0x22, 0, 0, 0, 0x22];
    let request = encap
        .encapsulate(&frames::arp_request(host_mac, HOST, GW))
        .unwrap();
    let reply = brg.run(|| {
        let sock = RawSocket::bind("lsl0").expect("raw socket");
        let mut found = None;
        for _ in 0..20 {
            sock.send(&request).unwrap();
            while let Some(f) = sock.recv(Duration::from_millis(200)).unwrap() {
                // Skip our own request and anything that is not a tagged ARP to us.
                if f.len() > 22 && f[0..6] == host_mac && f[12..14] == [0x88, 0xa8] {
                    found = Some(f);
                    break;
                }
            }
            if found.is_some() {
                break;
            }
        }
        found.expect("an ARP reply on the QinQ LSL")
    });
    let dec = lsl::decapsulate(&reply, &lsl::encap::DecapOptions::default()).unwrap();
    assert_eq!(
        dec.lsl.map(|l| l.to_string()).as_deref(),
        Some("qinq:10.200")
    );
    let inner = &dec.inner;
    assert_eq!(
        &inner[6..12],
        &[0x02, 0x4e, 0x47, 0, 0, 2],
        "from home 2's gateway MAC"
    );
    assert_eq!(&inner[12..14], &[0x08, 0x06], "ARP");
    assert_eq!(&inner[20..22], &[0, 2], "ARP reply");
    assert_eq!(&inner[28..32], &GW.octets(), "sender: the gateway address");

    // The slow path counted what it answered.
    let m = vgd::metrics(&vg);
    let replied = |kind| {
        http::metric_sum(
            &m,
            "vg_slowpath_frames_total",
            &[("outcome", "replied"), ("detail", kind)],
        )
    };
    assert!(replied("arp_reply") >= 2, "{m}");
    assert!(replied("echo_reply") >= 3, "{m}");
}
