//! vgd's slow path as a home's IPv6 router for a real Linux host (issue 18), end to end: the
//! host behind a VXLAN LSL (a kernel vxlan device: the BRG's side of the tunnel) takes a SLAAC
//! address and a default route from vgd's RA, an address and a delegated prefix from its
//! DHCPv6 server (ISC dhclient), and reaches the internet from all three; the internet reaches
//! an address vgd never saw through neighbour resolution, and after a `kill -9` and a restart
//! the DHCPv6 address and the delegated prefix are reachable at once, without an NS (the
//! restarted vgd adopts the pinned tables' entries and its restored DHCPv6 bindings keep
//! them; that the store alone restores them is `vg`'s unit test
//! `a_restart_restores_dhcpv6_bindings_and_their_table_entries`).
//!
//! ```text
//!  home: vx0 (VXLAN 5001) over h0 --veth-- acc0 [vgd, XDP] core0 --veth-- inet0: internet
//! ```

use std::path::Path;
use std::time::Duration;

use nerg_tests::netns::veth;
use nerg_tests::{Netns, PinDir, require_root, vgd, wait_until};

const CONFIG: &str = r#"
[fastpath]
vtep = "10.0.0.1"

[nat]
pool = ["198.51.100.0/28"]
block_size = 512

[ipv6]
pools = ["2001:db8:100::/40"]
dns_servers = ["2001:db8::53"]
domain_search = ["home.arpa"]

[[subscriber]]
id = 1
lsl = "vxlan:5001@10.0.0.2"
gateway = "192.168.1.1/24"
"#;

/// The internet's address; the vG's own on the core link is the router address.
const INET: &str = "2001:db8:ffff::2";

fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn ping(ns: &Netns, from: Option<&str>, to: &str) -> bool {
    let mut args = vec!["-6", "-c", "2", "-i", "0.3", "-W", "3"];
    if let Some(src) = from {
        args.extend(["-I", src]);
    }
    args.push(to);
    ns.command("ping")
        .args(&args)
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The value of the series `name{labels}` in vgd's metrics (0 when absent).
fn metric(ns: &Netns, series: &str) -> u64 {
    vgd::metrics(ns)
        .lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0)
}

/// The `iaaddr` and `iaprefix` of a dhclient -6 lease file.
fn leased(file: &Path) -> (Option<String>, Option<String>) {
    let lease = std::fs::read_to_string(file).unwrap_or_default();
    let word = |key: &str| {
        lease
            .lines()
            .rev()
            .filter_map(|l| l.trim().strip_prefix(key))
            .find_map(|rest| rest.split_whitespace().next())
            .map(str::to_owned)
    };
    (word("iaaddr "), word("iaprefix "))
}

#[test]
fn a_linux_host_gets_slaac_and_dhcpv6_and_its_traffic_flows_across_a_kill_9() {
    require_root();
    let vg = Netns::new("s6vg");
    let home = Netns::new("s6home");
    let inet = Netns::new("s6inet");
    veth(&vg, "acc0", &home, "h0");
    veth(&vg, "core0", &inet, "inet0");
    vg.addr_add("acc0", "10.0.0.1/24");
    home.addr_add("h0", "10.0.0.2/24");
    // veth leaves UDP checksums to an offload that never happens (the vG would drop them),
    // and takes the frames XDP sends it only with GRO (or a program of its own).
    home.ethtool_k("h0", &["tx", "off", "gro", "on"]);
    inet.ethtool_k("inet0", &["tx", "off", "gro", "on"]);
    vg.addr_add_nodad("core0", "2001:db8:ffff::1/64");
    inet.addr_add_nodad("inet0", &format!("{INET}/64"));
    inet.route_add("2001:db8:100::/40", "2001:db8:ffff::1");
    vg.ip(&["-6", "route", "add", "default", "via", INET, "dev", "core0"]);
    home.ip(&[
        "link", "add", "vx0", "type", "vxlan", "id", "5001", "local", "10.0.0.2", "remote",
        "10.0.0.1", "dstport", "4789", "dev", "h0",
    ]);
    home.exec("sysctl", &["-qw", "net.ipv6.conf.vx0.accept_ra=2"]);

    let pins = PinDir::new("slow6");
    let dir = std::env::temp_dir().join(nerg_tests::netns::unique_name("slow6"));
    std::fs::create_dir_all(&dir).expect("test dir");
    let config = dir.join("vgd.toml");
    std::fs::write(&config, CONFIG).expect("config");
    let start = || {
        vgd::start_with_config_and_core(&vg, "acc0", Some("core0"), pins.instance(), Some(&config))
    };
    let mut daemon = start();
    home.link_up("vx0");

    // SLAAC from the RA (the host's RS teaches vgd the tunnel), a default route via the
    // gateway's link-local address.
    wait_until("a SLAAC address, DAD done", Duration::from_secs(20), || {
        let addrs = text(&home.ip(&["-6", "addr", "show", "dev", "vx0", "scope", "global"]));
        addrs.contains("2001:db8:100:0:") && !addrs.contains("tentative")
    });
    let routes = text(&home.ip(&["-6", "route", "show", "default"]));
    assert!(routes.contains("via fe80::4e:47ff:fe00:1"), "{routes}");
    assert!(
        ping(&home, None, INET),
        "upstream from the SLAAC address: {}",
        vgd::metrics(&vg)
            .lines()
            .filter(|l| l.starts_with("vg_") && !l.ends_with(" 0"))
            .collect::<Vec<_>>()
            .join("\n")
    );

    // DHCPv6: an address and a delegated prefix.
    let leases = dir.join("dhclient6.leases");
    let out = home.exec(
        "dhclient",
        &[
            "-6",
            "-P",
            "-N",
            "-1",
            "-sf",
            "/bin/true",
            "-lf",
            leases.to_str().expect("path"),
            "-pf",
            dir.join("dhclient6.pid").to_str().expect("path"),
            "vx0",
        ],
    );
    let (addr, prefix) = leased(&leases);
    let (addr, prefix) = (
        addr.unwrap_or_else(|| panic!("no IA_NA: {}", text(&out))),
        prefix.unwrap_or_else(|| panic!("no IA_PD: {}", text(&out))),
    );
    assert!(addr.starts_with("2001:db8:100::"), "{addr}");
    let routed = prefix.replace("::/60", "::1");
    home.ip(&["addr", "add", &format!("{addr}/128"), "dev", "vx0", "nodad"]);
    home.ip(&["addr", "add", &format!("{routed}/128"), "dev", "lo"]);
    assert!(
        ping(&home, Some(&addr), INET),
        "upstream from the DHCPv6 address"
    );
    assert!(ping(&inet, None, &addr), "downstream to the DHCPv6 address");
    assert!(
        ping(&inet, None, &routed),
        "downstream into the delegated prefix"
    );
    assert!(
        ping(&home, Some(&routed), INET),
        "upstream from the delegated prefix"
    );

    // An address vgd never saw: resolved on the first packet from the internet.
    home.ip(&[
        "addr",
        "add",
        "2001:db8:100::beef/64",
        "dev",
        "vx0",
        "nodad",
    ]);
    assert!(
        ping(&inet, None, "2001:db8:100::beef"),
        "resolved and delivered"
    );
    assert!(metric(&vg, "vg_ipv6_router_events_total{event=\"resolved\"}") >= 1);
    assert!(
        metric(
            &vg,
            "vg_dhcpv6_messages_total{message=\"request\",reply=\"reply\"}"
        ) >= 1
    );

    // kill -9 and a restart: the DHCPv6 address is reachable at once, without an NS.
    daemon.kill();
    drop(daemon);
    let _daemon = start();
    assert!(
        ping(&inet, None, &addr),
        "the DHCPv6 address after the restart"
    );
    assert!(
        ping(&inet, None, &routed),
        "the delegated prefix after the restart"
    );
    assert_eq!(
        metric(&vg, "vg_slowpath_punts_total{reason=\"neigh_miss\"}"),
        0,
        "no resolution needed: the entries were kept"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
