//! The configuration model's tests: parsing, validation errors naming key and value, the
//! precedence of defaults, homes' LSLs, NAT policies, forwards, MSS and speed tiers.
#[test]
fn vxlan_over_ipv6_needs_vtep6() {
    let home =
        "[[subscriber]]\nid = 1\nlsl = \"vxlan:7@2001:db8::2\"\ngateway = \"192.168.1.1/24\"\n";
    let e = Config::from_toml(home).unwrap_err().to_string();
    assert!(e.contains("needs fastpath.vtep6"), "{e}");
    let c = Config::from_toml(&format!("[fastpath]\nvtep6 = \"2001:db8::1\"\n{home}")).unwrap();
    assert_eq!(c.fastpath.vtep6, Some("2001:db8::1".parse().unwrap()));
    let sub = &c.subscribers[&1];
    assert_eq!(sub.dhcp.mtu(), Some(VXLAN6_HOME_MTU));
    let e = Config::from_toml("[fastpath]\nvtep6 = \"ff02::1\"\n")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("fastpath.vtep6") && e.contains("not a unicast address"),
        "{e}"
    );
}
use super::*;

fn err(text: &str) -> String {
    Config::from_toml(text).unwrap_err().to_string()
}

/// The whole error as vgd prints it (anyhow's `{:#}`: every source in the chain).
fn printed(bytes: &[u8]) -> String {
    let e = Config::from_bytes("vgd.toml", bytes).unwrap_err();
    format!(
        "{:#}",
        anyhow::Error::from(e).context("invalid configuration")
    )
}

#[test]
fn invalid_utf8_is_placed_by_line_column_and_byte() {
    let mut file = b"[dhcp]\nlease_time_secs = 600\n# caf".to_vec();
    file.push(0xe9); // Latin-1, not UTF-8
    file.extend_from_slice(b"\n");
    let e = printed(&file);
    assert!(
        e.contains("vgd.toml: line 3, column 6 (byte 34): not valid UTF-8"),
        "{e}"
    );
}

#[test]
fn a_parse_error_on_a_huge_line_is_printed_once_and_short() {
    let mut file = b"[dhcp]\nlease_time_secs = \"".to_vec();
    file.extend(std::iter::repeat_n(b'9', 50_000_000));
    file.extend_from_slice(b"\"\n");
    let e = printed(&file);
    assert!(e.len() < 600, "{} bytes printed", e.len());
    assert!(e.contains("vgd.toml: line 2, column"), "{e}");
    assert_eq!(e.matches("vgd.toml").count(), 1, "printed once: {e}");
}

#[test]
fn an_invalid_value_is_quoted_as_an_excerpt() {
    let lsl = "x".repeat(900_000);
    let e = err(&format!(
        "[[subscriber]]\nid = 1\nlsl = \"{lsl}\"\ngateway = \"192.168.1.1/24\"\n"
    ));
    assert!(e.len() < 500, "{} bytes: {}", e.len(), &e[..500]);
    assert!(
        e.contains("subscriber[0].lsl") && e.contains("(900000 bytes)"),
        "{e}"
    );
}

#[test]
fn a_full_file_validates() {
    let c = Config::from_toml(
        r#"
        [fastpath]
        access_interface = "acc0"
        vtep = "10.0.0.1"
        stag_tpids = [0x88a8]

        [[subscriber]]
        id = 1
        lsl = "vlan:101"

        [[subscriber]]
        id = 2
        lsl = "qinq:10.101"
        gateway = "10.1.0.1/16"
        hosts = [{ ip = "10.1.2.3", mac = "02:00:00:00:00:01" }]

        [[subscriber]]
        id = 3
        lsl = "vxlan:5001@10.0.0.2"
        "#,
    )
    .unwrap();
    assert_eq!(c.fastpath.vtep, Some(Ipv4Addr::new(10, 0, 0, 1)));
    assert_eq!(c.fastpath.vxlan_port, 4789);
    assert_eq!(c.fastpath.stag_tpids, vec![Tpid::STag]);
    assert_eq!(c.subscribers.len(), 3);
    let s1 = &c.subscribers[&1];
    assert_eq!(s1.gateway, Ipv4Addr::new(192, 168, 1, 1));
    assert_eq!(s1.lan.to_string(), "192.168.1.0/24");
    assert_eq!(s1.gateway_mac, [0x02, 0x4e, 0x47, 0, 0, 1]);
    let s2 = &c.subscribers[&2];
    assert_eq!(s2.hosts[&Ipv4Addr::new(10, 1, 2, 3)], [2, 0, 0, 0, 0, 1]);
}

#[test]
fn errors_name_key_value_and_reason() {
    let e = err(
        "[[subscriber]]\nid = 1\nlsl = \"vlan:101\"\n[[subscriber]]\nid = 2\nlsl = \"vlan:101\"\n",
    );
    assert!(
        e.contains("subscriber[1].lsl")
            && e.contains("vlan:101")
            && e.contains("already used by subscriber 1"),
        "{e}"
    );
    let e = err(
        "[[subscriber]]\nid = 1\nlsl = \"vlan:101\"\n[[subscriber]]\nid = 1\nlsl = \"vlan:102\"\n",
    );
    assert!(e.contains("subscriber[1].id = 1: duplicate"), "{e}");
    let e = err("[[subscriber]]\nid = 0\nlsl = \"vlan:101\"\n");
    assert!(e.contains("subscriber[0].id = 0: must be in 1..="), "{e}");
    let e = err("[[subscriber]]\nid = 1\nlsl = \"vlan:4095\"\n");
    assert!(e.contains("subscriber[0].lsl = \"vlan:4095\""), "{e}");
    let e = err("[[subscriber]]\nid = 1\nlsl = \"vxlan:5@10.0.0.2\"\n");
    assert!(e.contains("needs fastpath.vtep"), "{e}");
    let e =
        err("[fastpath]\nstag_tpids = [0x88a8]\n[[subscriber]]\nid = 1\nlsl = \"qinq-9100:1.2\"\n");
    assert!(e.contains("0x9100 is not in fastpath.stag_tpids"), "{e}");
    let e = err("[[subscriber]]\nid = 1\nlsl = \"vlan:1\"\ngateway = \"192.168.1.0/24\"\n");
    assert!(
        e.contains("subscriber[0].gateway = \"192.168.1.0/24\": the gateway is the network"),
        "{e}"
    );
    let e = err(
        "[[subscriber]]\nid = 1\nlsl = \"vlan:1\"\nhosts = [{ ip = \"192.168.2.5\", mac = \"02:00:00:00:00:01\" }]\n",
    );
    assert!(e.contains("subscriber[0].hosts[0].ip"), "{e}");
    let e = err(
        "[[subscriber]]\nid = 1\nlsl = \"vlan:1\"\nhosts = [{ ip = \"192.168.1.5\", mac = \"01:00:00:00:00:01\" }]\n",
    );
    assert!(
        e.contains("subscriber[0].hosts[0].mac = \"01:00:00:00:00:01\": not a unicast MAC"),
        "{e}"
    );
    let e = err("[fastpath]\nvtep = \"banana\"\n");
    assert!(
        e.contains("fastpath.vtep = \"banana\": not an IPv4 address"),
        "{e}"
    );
    let e = err("[fastpath]\nstag_tpids = [0x0800]\n");
    assert!(e.contains("fastpath.stag_tpids = 0x0800"), "{e}");
    let e = err("[fastpath]\nbogus = 1\n");
    assert!(e.contains("unknown field `bogus`"), "{e}");
}

#[test]
fn lsls_are_unique_by_their_fast_path_key() {
    let two = |a: &str, b: &str| {
        format!("[[subscriber]]\nid = 1\nlsl = \"{a}\"\n[[subscriber]]\nid = 2\nlsl = \"{b}\"\n")
    };
    for dup in ["qinq-9100:10.102", "qinq-8100:10.102"] {
        let e = err(&two("qinq:10.102", dup));
        assert!(
            e.contains(&format!("subscriber[1].lsl = \"{dup}\""))
                && e.contains("subscriber 1")
                && e.contains("qinq:10.102")
                && e.contains("TPID"),
            "{e}"
        );
    }
    // Other VIDs, or no S-VID: other keys.
    Config::from_toml(&two("qinq:10.102", "qinq-9100:10.103")).unwrap();
    Config::from_toml(&two("qinq:10.102", "vlan:102")).unwrap();
}

#[test]
fn a_vlan_home_cannot_be_the_outer_tag_of_another() {
    let two = |a: &str, b: &str| {
        format!("[[subscriber]]\nid = 1\nlsl = \"{a}\"\n[[subscriber]]\nid = 2\nlsl = \"{b}\"\n")
    };
    for (a, b) in [
        ("vlan:101", "qinq-8100:101.5"),
        ("qinq-8100:101.5", "vlan:101"),
    ] {
        let e = err(&two(a, b));
        assert!(
            e.contains(&format!("subscriber[1].lsl = \"{b}\""))
                && e.contains("subscriber 1")
                && e.contains("vlan:101")
                && e.contains("qinq-8100:101.5"),
            "{e}"
        );
    }
    // Another outer TPID, another outer VID: no prefix.
    Config::from_toml(&two("vlan:101", "qinq:101.5")).unwrap();
    Config::from_toml(&two("vlan:101", "qinq-9100:101.5")).unwrap();
    Config::from_toml(&two("vlan:101", "qinq-8100:102.5")).unwrap();
}

#[test]
fn the_lan_prefix_leaves_room_and_the_gateway_is_an_ordinary_address() {
    let home = |gw: &str| format!("[[subscriber]]\nid = 1\nlsl = \"vlan:1\"\ngateway = \"{gw}\"\n");
    for (gw, why) in [
        ("192.168.1.1/0", "/16 to /30"),
        ("10.0.0.1/8", "/16 to /30"),
        ("172.16.0.1/15", "/16 to /30"),
        ("192.168.1.1/31", "/16 to /30"),
        ("192.168.1.1/32", "/16 to /30"),
        ("0.0.0.1/24", "this network"),
        ("127.0.0.1/8", "loopback"),
        ("127.0.0.1/24", "loopback"),
        ("169.254.0.1/16", "link-local"),
        ("224.0.0.1/24", "multicast"),
        ("239.1.1.1/24", "multicast"),
        ("240.0.0.1/24", "reserved"),
        ("255.255.255.254/30", "reserved"),
        ("192.168.1.0/24", "the network or broadcast address"),
        ("192.168.1.255/24", "the network or broadcast address"),
    ] {
        let e = err(&home(gw));
        assert!(
            e.contains(&format!("subscriber[0].gateway = \"{gw}\"")) && e.contains(why),
            "{gw}: {e}"
        );
    }
    for gw in ["192.168.1.1/24", "10.1.0.1/16", "100.64.0.1/24"] {
        Config::from_toml(&home(gw)).unwrap_or_else(|e| panic!("{gw}: {e}"));
    }
    // The longest prefix: the gateway and one host (beyond /24 the pool is explicit).
    let c = Config::from_toml(&format!(
        "{}dhcp = {{ range_start = \"192.168.1.2\", range_end = \"192.168.1.2\" }}\n",
        home("192.168.1.1/30")
    ))
    .unwrap();
    assert_eq!(c.subscribers[&1].lan.to_string(), "192.168.1.0/30");
    // The API body goes through the same type.
    let c = Config::from_toml("").unwrap();
    let body: SubscriberFile =
        serde_json::from_str(r#"{"id": 4, "lsl": "vlan:4", "gateway": "192.168.1.1/0"}"#).unwrap();
    let e = c.subscriber(body).unwrap_err().to_string();
    assert!(e.contains("subscriber.gateway = \"192.168.1.1/0\""), "{e}");
}

#[test]
fn a_homes_speed_tier_is_read_and_checked() {
    let c = Config::from_toml(
        "[[subscriber]]\nid = 1\nlsl = \"vlan:1\"\nqos = { down = \"100M\", up = \"20M\" }\n",
    )
    .unwrap();
    let q = c.subscribers[&1].qos;
    assert_eq!(q.down.unwrap().bits_per_s(), 100_000_000);
    assert_eq!(q.up.unwrap().bits_per_s(), 20_000_000);
    assert_eq!(q.burst_ms, crate::qos::DEFAULT_BURST_MS);
    let e = err("[[subscriber]]\nid = 1\nlsl = \"vlan:1\"\nqos = { down = \"fast\" }\n");
    assert!(
        e.contains("subscriber[0].qos.down") && e.contains("\"fast\""),
        "{e}"
    );
    let e =
        err("[[subscriber]]\nid = 1\nlsl = \"vlan:1\"\nqos = { up = \"1M\", burst_ms = 5000 }\n");
    assert!(e.contains("subscriber[0].qos.burst_ms"), "{e}");
    let e = err("[[subscriber]]\nid = 1\nlsl = \"vlan:1\"\nqos = { upp = \"1M\" }\n");
    assert!(e.contains("upp"), "{e}");
}

#[test]
fn nat_policy_forwards_and_mss_are_checked() {
    let nat = "[nat]\npool = [\"198.51.100.0/28\"]\n";
    let c = Config::from_toml(&format!(
        "[fastpath]\nvtep = \"10.0.0.1\"\nvtep6 = \"2001:db8::1\"\n{nat}[[subscriber]]\nid = 1\nlsl = \"vlan:1\"\n\
         nat = {{ public_ip = \"198.51.100.3\", blocks = 2, filtering = \"address-and-port-dependent\" }}\n\
         port_forwards = [{{ proto = \"tcp\", public_port = 1100, private_ip = \"192.168.1.10\", private_port = 22 }}]\n\
         [[subscriber]]\nid = 2\nlsl = \"vxlan:5@10.0.0.2\"\n\
         [[subscriber]]\nid = 3\nlsl = \"vlan:3\"\ntcp_mss = 0\n\
         [[subscriber]]\nid = 4\nlsl = \"vxlan:6@[2001:db8::2]\"\n"
    ))
    .unwrap();
    let s1 = &c.subscribers[&1];
    assert_eq!(s1.nat.blocks, Some(2));
    assert_eq!(s1.nat.filtering, Some(Filtering::AddressAndPortDependent));
    assert_eq!(s1.port_forwards[&(Proto::Tcp, 1100)].private_port, 22);
    assert_eq!(s1.tcp_mss, 0, "no clamp on a VLAN home by default");
    assert_eq!(c.subscribers[&2].tcp_mss, VXLAN_HOME_MSS);
    assert_eq!(c.subscribers[&3].tcp_mss, 0);
    assert_eq!(
        c.subscribers[&3].qos,
        crate::qos::Qos::default(),
        "no tier: no limit"
    );
    // Over IPv6 the tunnel costs 20 bytes more: the clamp fits the home's MTU.
    assert_eq!(c.subscribers[&4].tcp_mss, VXLAN6_HOME_MSS);
    assert_eq!(
        u32::from(VXLAN6_HOME_MSS) + 40,
        u32::from(c.subscribers[&4].dhcp.mtu().unwrap())
    );
    // The file form is kept as written, for the store and the API.
    assert_eq!(c.files[&1].nat.as_ref().unwrap().blocks, Some(2));

    let e = err(&format!(
        "{nat}[[subscriber]]\nid = 1\nlsl = \"vlan:1\"\nnat = {{ public_ip = \"192.0.2.1\" }}\n"
    ));
    assert!(
        e.contains("subscriber[0].nat.public_ip = 192.0.2.1: not in nat.pool"),
        "{e}"
    );
    let e = err(&format!(
        "{nat}[[subscriber]]\nid = 1\nlsl = \"vlan:1\"\nnat = {{ blocks = 9 }}\n"
    ));
    assert!(
        e.contains("subscriber[0].nat.blocks = 9: must be in 1..=4"),
        "{e}"
    );
    let e = err("[[subscriber]]\nid = 1\nlsl = \"vlan:1\"\nnat = { blocks = 1 }\n");
    assert!(e.contains("need a [nat] section"), "{e}");
    let fwd = |ip: &str, pp: u16| {
        format!(
            "{nat}[[subscriber]]\nid = 1\nlsl = \"vlan:1\"\nport_forwards = [\
             {{ proto = \"udp\", public_port = 2000, private_ip = \"{ip}\", private_port = {pp} }}]\n"
        )
    };
    let e = err(&fwd("192.168.1.1", 53));
    assert!(
        e.contains("subscriber[0].port_forwards[0].private_ip = 192.168.1.1"),
        "{e}"
    );
    let e = err(&fwd("192.168.1.9", 0));
    assert!(
        e.contains("port_forwards[0].private_port = 0: port 0"),
        "{e}"
    );
    let e = err(&format!(
        "{nat}[[subscriber]]\nid = 1\nlsl = \"vlan:1\"\nport_forwards = [\
         {{ proto = \"udp\", public_port = 2000, private_ip = \"192.168.1.9\", private_port = 1 }},\
         {{ proto = \"udp\", public_port = 2000, private_ip = \"192.168.1.8\", private_port = 2 }}]\n"
    ));
    assert!(e.contains("udp port 2000 is forwarded twice"), "{e}");
    let e = err("[[subscriber]]\nid = 1\nlsl = \"vlan:1\"\ntcp_mss = 100\n");
    assert!(
        e.contains("subscriber[0].tcp_mss = 100: 0 (off) or 536..=9000"),
        "{e}"
    );
    let e = err("[fastpath]\ntcp_mss_clamp = 10\n");
    assert!(e.contains("fastpath.tcp_mss_clamp = 10"), "{e}");
}

#[test]
fn api_bodies_use_the_same_checks_with_their_own_keys() {
    let c = Config::from_toml("[fastpath]\ntcp_mss_clamp = 1300\n").unwrap();
    let body: SubscriberFile = serde_json::from_str(r#"{"id": 4, "lsl": "qinq:2.4"}"#).unwrap();
    let sub = c.subscriber(body).unwrap();
    assert_eq!(sub.tcp_mss, 1300, "the [fastpath] default applies");
    let body: SubscriberFile =
        serde_json::from_str(r#"{"id": 4, "lsl": "vxlan:9@10.0.0.9"}"#).unwrap();
    let e = c.subscriber(body).unwrap_err().to_string();
    assert!(
        e.contains("subscriber.lsl") && e.contains("needs fastpath.vtep"),
        "{e}"
    );
    let e = serde_json::from_str::<SubscriberFile>(r#"{"id": 4, "lsl": "vlan:4", "x": 1}"#)
        .unwrap_err()
        .to_string();
    assert!(e.contains("unknown field `x`"), "{e}");
}

#[test]
fn homes_may_overlap() {
    let c = Config::from_toml(
        "[[subscriber]]\nid = 1\nlsl = \"vlan:1\"\n[[subscriber]]\nid = 2\nlsl = \"vlan:2\"\n",
    )
    .unwrap();
    assert_eq!(c.subscribers[&1].lan, c.subscribers[&2].lan);
    assert_ne!(c.subscribers[&1].gateway_mac, c.subscribers[&2].gateway_mac);
}

#[test]
fn slowpath_limit_defaults_and_bounds() {
    let c = Config::from_toml("").unwrap();
    assert_eq!(c.slowpath.per_home, RateLimit::DEFAULT);
    assert_eq!(
        (c.slowpath.per_home.per_second, c.slowpath.per_home.burst),
        (200, 2_000)
    );
    let c = Config::from_toml("[slowpath]\nper_home_pps = 20000\nper_home_burst = 5000\n").unwrap();
    assert_eq!(
        c.slowpath.per_home,
        RateLimit {
            per_second: 20_000,
            burst: 5_000
        }
    );
    let c = Config::from_toml("[slowpath]\nper_home_burst = 7\n").unwrap();
    assert_eq!(
        c.slowpath.per_home.per_second, 200,
        "the other key keeps its default"
    );
    assert_eq!(c.slowpath.per_home.burst, 7);
    let c = Config::from_toml(&format!(
        "[slowpath]\nper_home_pps = {MAX_PER_HOME_PPS}\nper_home_burst = {MAX_PER_HOME_BURST}\n"
    ))
    .unwrap();
    assert_eq!(c.slowpath.per_home.per_second, MAX_PER_HOME_PPS);

    let e = err("[slowpath]\nper_home_pps = 0\n");
    assert!(
        e.contains("slowpath.per_home_pps = 0: must be in 1..=1000000"),
        "{e}"
    );
    let e = err("[slowpath]\nper_home_burst = 0\n");
    assert!(
        e.contains("slowpath.per_home_burst = 0: must be in 1..=100000"),
        "{e}"
    );
    let e = err("[slowpath]\nper_home_pps = 1000001\n");
    assert!(e.contains("slowpath.per_home_pps = 1000001"), "{e}");
    let e = err("[slowpath]\nper_home_burst = 100001\n");
    assert!(e.contains("slowpath.per_home_burst = 100001"), "{e}");
    let e = err("[slowpath]\nper_home_pps = -5\n");
    assert!(e.contains("per_home_pps"), "{e}");
    let e = err("[slowpath]\nper_home = 5\n");
    assert!(e.contains("unknown field `per_home`"), "{e}");
}

#[test]
fn dhcp_relayed_is_a_default_with_a_per_home_override() {
    use crate::dhcp::Relayed;
    let c = Config::from_toml(
        "[dhcp]\nrelayed = \"serve\"\n\
         [[subscriber]]\nid = 1\nlsl = \"vlan:1\"\n\
         [[subscriber]]\nid = 2\nlsl = \"vlan:2\"\ndhcp = { relayed = \"drop\" }\n",
    )
    .unwrap();
    assert_eq!(c.subscribers[&1].dhcp.relayed(), Relayed::Serve);
    assert_eq!(c.subscribers[&2].dhcp.relayed(), Relayed::Drop);
    let c = Config::from_toml(
        "[[subscriber]]\nid = 1\nlsl = \"vlan:1\"\n\
         [[subscriber]]\nid = 2\nlsl = \"vlan:2\"\ndhcp = { relayed = \"serve\" }\n",
    )
    .unwrap();
    assert_eq!(
        c.subscribers[&1].dhcp.relayed(),
        Relayed::Drop,
        "the default"
    );
    assert_eq!(c.subscribers[&2].dhcp.relayed(), Relayed::Serve);
    let e = err("[dhcp]\nrelayed = \"yes\"\n");
    assert!(
        e.contains("relayed") && e.contains("unknown variant"),
        "{e}"
    );
}
