//! vgd's REST API and vgctl against a running vgd in the namespace topology: CRUD, auth and
//! error answers; a home created through the API gets a lease and pings its gateway; an LSL
//! change moves its traffic; a deletion stops it and releases its leases, hosts and blocks
//! while a neighbour's flow goes on; homes and blocks survive a restart; port forwards land
//! in the NAT tables as static mapping pairs.

use std::{net::Ipv4Addr, path::Path, time::Duration};

use nerg_abi::{NatFwdKey, NatRevKey, nat_flags};
use nerg_tests::{
    bin, http,
    topology::{DhcpClient, GATEWAY, HomeLsl, HomeSpec, Naming, SERVER, Topology},
    vgd::{self, api},
    wait_until,
};
use serde_json::Value;

/// A home's assignment as compared across a restart: id, address, (first port, since).
type Assigned = (Value, Value, Vec<(Value, Value)>);

fn json(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

fn home(id: u32, lsl: HomeLsl) -> HomeSpec {
    HomeSpec {
        id,
        lsl,
        client: DhcpClient::Udhcpc,
    }
}

fn pin_dir(instance: &str) -> std::path::PathBuf {
    vg::fastpath::bpffs::pin_dir(Path::new(vg::fastpath::bpffs::DEFAULT_MOUNT), instance)
}

fn ping(ns: &nerg_tests::Netns, dst: Ipv4Addr, count: u32) -> bool {
    ns.command("ping")
        .args([
            "-c",
            &count.to_string(),
            "-i",
            "0.2",
            "-W",
            "1",
            &dst.to_string(),
        ])
        .output()
        .expect("ping")
        .status
        .success()
}

fn unknown_lsl_drops(topo: &Topology) -> u64 {
    http::metric_sum(
        &vgd::metrics(&topo.vg),
        "vg_xdp_drops_total",
        &[("reason", "unknown_lsl")],
    )
}

/// Runs vgctl in `ns` against the test vgd of `instance` (its token file); returns stdout.
fn vgctl(ns: &nerg_tests::Netns, instance: &str, args: &[&str]) -> String {
    let out = ns
        .command(bin("vgctl"))
        .arg("--api")
        .arg(format!("http://{}", vgd::listen_addr()))
        .arg("--token-file")
        .arg(vgd::state_dir(instance).join("api-token"))
        .args(args)
        .output()
        .expect("vgctl");
    assert!(
        out.status.success(),
        "vgctl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// How many NAT forward entries home `sub` has.
fn nat_entries_of(instance: &str, sub: u32) -> usize {
    let data = aya::maps::MapData::from_pin(pin_dir(instance).join(nerg_abi::map_names::NAT_FWD))
        .expect("pinned NAT table");
    let fwd: aya::maps::HashMap<_, NatFwdKey, nerg_abi::NatMapping> =
        aya::maps::HashMap::try_from(aya::maps::Map::HashMap(data)).expect("hash map");
    fwd.keys()
        .filter_map(Result::ok)
        .filter(|k| k.sub == sub)
        .count()
}

/// Replaces home `i`'s brgd with one tagging `lsl` (SIGTERM detaches the old tagger).
#[test]
fn crud_auth_and_error_answers() {
    let instance = nerg_tests::netns::unique_name("apicrud");
    let topo = Topology::build(
        Naming::Test("apicrud".into()),
        &[home(1, HomeLsl::Vlan(101))],
        &instance,
    );
    let ns = &topo.vg;
    let addr = vgd::listen_addr();

    // No token, a wrong token: 401 with a JSON error.
    let (code, body) = ns
        .run(|| http::request(addr, "GET", "/api/v1/subscribers", &[], b""))
        .expect("answer");
    assert_eq!(code, 401, "{body}");
    assert!(json(&body)["error"].as_str().unwrap().contains("token"));
    let (code, _) = ns
        .run(|| {
            http::request(
                addr,
                "GET",
                "/api/v1/subscribers",
                &[("Authorization", "Bearer nerg-test-api-token-0123456788")],
                b"",
            )
        })
        .expect("answer");
    assert_eq!(code, 401);

    // The file's home is there, from the config.
    let (code, body) = api(ns, "GET", "/api/v1/subscribers", None);
    assert_eq!(code, 200, "{body}");
    let list = json(&body);
    assert_eq!(list.as_array().unwrap().len(), 1, "{body}");
    assert_eq!(list[0]["source"], "config");

    // Create: 201, with a public address and blocks.
    let (code, body) = api(
        ns,
        "POST",
        "/api/v1/subscribers",
        Some(
            r#"{"id": 2, "lsl": "vlan:202", "nat": {"blocks": 2, "filtering": "address-and-port-dependent", "session_limit": 500}, "tcp_mss": 1400, "hosts": [{"ip": "192.168.1.20", "mac": "02:00:00:00:00:20"}]}"#,
        ),
    );
    assert_eq!(code, 201, "{body}");
    let created = json(&body);
    assert_eq!(created["source"], "api");
    assert_eq!(created["tcp_mss_effective"], 1400);
    let public: Ipv4Addr = created["nat_assignment"]["public_ip"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let blocks = created["nat_assignment"]["blocks"].as_array().unwrap();
    assert_eq!(blocks.len(), 2, "{body}");
    let first_port = blocks[0]["first_port"].as_u64().unwrap() as u16;

    // It is in the fast path: slot with its NAT policy, LSL key.
    let counters = vg::fastpath::Counters::open(&pin_dir(&instance)).expect("counters");
    let rec = counters.subscriber(2).expect("slot");
    assert_eq!(
        rec.flags & nerg_abi::sub_flags::ACTIVE,
        nerg_abi::sub_flags::ACTIVE
    );
    assert_eq!(
        rec.flags & nerg_abi::sub_flags::FILTER_APDF,
        nerg_abi::sub_flags::FILTER_APDF
    );
    assert_eq!(rec.session_limit, 500);
    assert_eq!(rec.tcp_mss, 1400);
    assert_eq!(rec.block_count, 2);
    assert_eq!(Ipv4Addr::from(rec.public_ip.to_ne_bytes()), public);

    let (code, body) = api(ns, "GET", "/api/v1/subscribers/2/hosts", None);
    assert_eq!(code, 200);
    assert_eq!(
        json(&body),
        serde_json::json!([{"ip": "192.168.1.20", "mac": "02:00:00:00:00:20", "kind": "static"}])
    );

    // Conflicts: the same id, the same LSL.
    let (code, body) = api(
        ns,
        "POST",
        "/api/v1/subscribers",
        Some(r#"{"id": 2, "lsl": "vlan:203"}"#),
    );
    assert_eq!(code, 409, "{body}");
    assert!(body.contains("already exists"), "{body}");
    let (code, body) = api(
        ns,
        "POST",
        "/api/v1/subscribers",
        Some(r#"{"id": 3, "lsl": "vlan:101"}"#),
    );
    assert_eq!(code, 409, "{body}");
    assert!(body.contains("already used by subscriber 1"), "{body}");

    // Malformed JSON and unknown fields: 400 with serde's message.
    let (code, body) = api(
        ns,
        "POST",
        "/api/v1/subscribers",
        Some(r#"{"id": 3, "lsl": "#),
    );
    assert_eq!(code, 400, "{body}");
    assert!(
        json(&body)["error"]
            .as_str()
            .unwrap()
            .contains("malformed JSON"),
        "{body}"
    );
    let (code, body) = api(
        ns,
        "POST",
        "/api/v1/subscribers",
        Some(r#"{"id": 3, "lsl": "vlan:3", "colour": "red"}"#),
    );
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("unknown field `colour`"), "{body}");
    // Invalid values: 422 naming key, value and why.
    let (code, body) = api(
        ns,
        "POST",
        "/api/v1/subscribers",
        Some(r#"{"id": 3, "lsl": "vlan:5000"}"#),
    );
    assert_eq!(code, 422, "{body}");
    assert!(body.contains("subscriber.lsl"), "{body}");
    let (code, body) = api(
        ns,
        "POST",
        "/api/v1/subscribers",
        Some(r#"{"id": 3, "lsl": "vlan:3", "nat": {"public_ip": "192.0.2.1"}}"#),
    );
    assert_eq!(code, 422, "{body}");
    assert!(body.contains("not in nat.pool"), "{body}");
    // Oversized: 413.
    let big = format!(
        r#"{{"id": 3, "lsl": "vlan:3", "gateway": "{}"}}"#,
        "x".repeat(2 << 20)
    );
    let (code, body) = api(ns, "POST", "/api/v1/subscribers", Some(&big));
    assert_eq!(code, 413, "{body}");
    // A huge invalid value (under the body limit) is quoted short in the answer, whether
    // the home's validation (422) or the JSON decoder (400) refuses it.
    for (body, want) in [
        (
            format!(r#"{{"id": 3, "lsl": "vlan:{}"}}"#, "9".repeat(900_000)),
            422,
        ),
        (
            format!(r#"{{"id": "{}", "lsl": "vlan:3"}}"#, "x".repeat(900_000)),
            400,
        ),
    ] {
        let (code, answer) = api(ns, "POST", "/api/v1/subscribers", Some(&body));
        assert_eq!(code, want, "{}", &answer[..answer.len().min(400)]);
        assert!(
            answer.len() < 1_000,
            "a {} byte answer to a 900 KB value: {}...",
            answer.len(),
            &answer[..400]
        );
    }
    // Nothing of the refused homes exists.
    let (code, _) = api(ns, "GET", "/api/v1/subscribers/3", None);
    assert_eq!(code, 404);

    // Port forwards: outside the home's blocks 422; inside 201; twice 409.
    let fwd = |port: u16| {
        format!(
            r#"{{"proto": "tcp", "public_port": {port}, "private_ip": "192.168.1.50", "private_port": 8080}}"#
        )
    };
    let (code, body) = api(
        ns,
        "POST",
        "/api/v1/subscribers/2/port-forwards",
        Some(&fwd(80)),
    );
    assert_eq!(code, 422, "{body}");
    assert!(body.contains("outside the ports of subscriber 2"), "{body}");
    let port = first_port + 7;
    let (code, body) = api(
        ns,
        "POST",
        "/api/v1/subscribers/2/port-forwards",
        Some(&fwd(port)),
    );
    assert_eq!(code, 201, "{body}");
    let (code, body) = api(
        ns,
        "POST",
        "/api/v1/subscribers/2/port-forwards",
        Some(&fwd(port)),
    );
    assert_eq!(code, 409, "{body}");
    let (code, body) = api(ns, "GET", "/api/v1/subscribers/2/port-forwards", None);
    assert_eq!(code, 200);
    assert_eq!(json(&body).as_array().unwrap().len(), 1, "{body}");
    // The static mapping pair is in the NAT tables.
    let maps = vg::fastpath::maps::PinnedMaps::open(&pin_dir(&instance)).expect("maps");
    let fwd_key = NatFwdKey {
        sub: 2,
        priv_ip: u32::from_ne_bytes([192, 168, 1, 50]),
        priv_port: 8080u16.to_be(),
        proto: 6,
        _pad: 0,
    };
    let rev_key = NatRevKey {
        pub_ip: u32::from_ne_bytes(public.octets()),
        pub_port: port.to_be(),
        proto: 6,
        _pad: 0,
    };
    let m = maps.nat_mapping(&fwd_key).unwrap().expect("forward entry");
    assert_eq!(
        (m.pub_ip, m.pub_port, m.flags),
        (rev_key.pub_ip, rev_key.pub_port, nat_flags::STATIC)
    );
    let r = maps.nat_reverse(&rev_key).unwrap().expect("reverse entry");
    assert_eq!(
        (r.sub, r.priv_ip, r.priv_port, r.flags),
        (2, fwd_key.priv_ip, fwd_key.priv_port, nat_flags::STATIC)
    );
    // Removing it removes both entries.
    let (code, body) = api(
        ns,
        "DELETE",
        &format!("/api/v1/subscribers/2/port-forwards/tcp/{port}"),
        None,
    );
    assert_eq!(code, 204, "{body}");
    assert!(maps.nat_mapping(&fwd_key).unwrap().is_none());
    assert!(maps.nat_reverse(&rev_key).unwrap().is_none());
    let (code, _) = api(
        ns,
        "DELETE",
        &format!("/api/v1/subscribers/2/port-forwards/tcp/{port}"),
        None,
    );
    assert_eq!(code, 404);

    // Update: the path's id rules; a new LSL moves the key.
    let (code, body) = api(
        ns,
        "PUT",
        "/api/v1/subscribers/2",
        Some(r#"{"id": 9, "lsl": "vlan:204"}"#),
    );
    assert_eq!(code, 422, "{body}");
    let (code, body) = api(
        ns,
        "PUT",
        "/api/v1/subscribers/2",
        Some(r#"{"id": 2, "lsl": "vlan:101"}"#),
    );
    assert_eq!(code, 409, "{body}");
    let (code, body) = api(
        ns,
        "PUT",
        "/api/v1/subscribers/2",
        Some(r#"{"id": 2, "lsl": "vlan:204", "nat": {"blocks": 2}}"#),
    );
    assert_eq!(code, 200, "{body}");
    let updated = json(&body);
    assert_eq!(updated["lsl"], "vlan:204");
    assert_eq!(
        updated["nat_assignment"]["public_ip"],
        public.to_string(),
        "same address"
    );
    assert_eq!(updated["tcp_mss_effective"], 0);
    // Its static host went with the update (the body has none).
    let (code, body) = api(ns, "GET", "/api/v1/subscribers/2/hosts", None);
    assert_eq!(code, 200);
    assert_eq!(json(&body).as_array().unwrap().len(), 0, "{body}");

    // A merge patch changes only what it names; `null` goes back to the default.
    let (code, body) = api(
        ns,
        "PATCH",
        "/api/v1/subscribers/2",
        Some(r#"{"tcp_mss": 1380}"#),
    );
    assert_eq!(code, 200, "{body}");
    assert_eq!(json(&body)["tcp_mss_effective"], 1380);
    assert_eq!(json(&body)["lsl"], "vlan:204");
    let (code, body) = api(
        ns,
        "PATCH",
        "/api/v1/subscribers/2",
        Some(r#"{"tcp_mss": null}"#),
    );
    assert_eq!(code, 200, "{body}");
    assert_eq!(json(&body)["tcp_mss_effective"], 0);
    let (code, body) = api(ns, "PATCH", "/api/v1/subscribers/2", Some(r#"{"id": 3}"#));
    assert_eq!(code, 422, "{body}");
    let (code, body) = api(ns, "PATCH", "/api/v1/subscribers/2", Some("[1]"));
    assert_eq!(code, 400, "{body}");
    let (code, body) = api(
        ns,
        "PATCH",
        "/api/v1/subscribers/2",
        Some(r#"{"nat": {"blocks": "many"}}"#),
    );
    assert_eq!(code, 422, "{body}");

    // vgctl over the API: table and JSON.
    let vgctl = |args: &[&str]| vgctl(ns, &instance, args);
    let table = vgctl(&["subscribers", "list"]);
    assert!(table.starts_with("ID"), "{table}");
    assert!(
        table.contains("vlan:101") && table.contains("vlan:204"),
        "{table}"
    );
    let listed = json(&vgctl(&["subscribers", "list", "--json"]));
    assert_eq!(listed.as_array().unwrap().len(), 2);
    let added = json(&vgctl(&[
        "subscribers",
        "add",
        "7",
        "--lsl",
        "qinq:10.107",
        "--blocks",
        "1",
        "--json",
    ]));
    assert_eq!(added["lsl"], "qinq:10.107");
    vgctl(&[
        "port-forwards",
        "add",
        "7",
        "--proto",
        "udp",
        "--public-port",
        &added["nat_assignment"]["blocks"][0]["first_port"].to_string(),
        "--private-ip",
        "192.168.1.9",
        "--private-port",
        "53",
    ]);
    let fwds = vgctl(&["port-forwards", "list", "7"]);
    assert!(fwds.contains("192.168.1.9"), "{fwds}");
    let updated = json(&vgctl(&[
        "subscribers",
        "update",
        "7",
        "--tcp-mss",
        "1300",
        "--json",
    ]));
    assert_eq!(updated["tcp_mss_effective"], 1300);
    assert_eq!(
        updated["port_forwards"].as_array().unwrap().len(),
        1,
        "update keeps the rest"
    );
    let blocks = vgctl(&["nat", "blocks"]);
    assert!(blocks.contains("qinq:10.107"), "{blocks}");
    vgctl(&["subscribers", "delete", "7"]);
    let out = ns
        .command(bin("vgctl"))
        .args(["--api", &format!("http://{addr}"), "--token-file"])
        .arg(vgd::state_dir(&instance).join("api-token"))
        .args(["subscribers", "get", "7"])
        .output()
        .expect("vgctl");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no subscriber 7"));

    // Delete: 204, then 404; the slot is empty.
    let (code, _) = api(ns, "DELETE", "/api/v1/subscribers/2", None);
    assert_eq!(code, 204);
    let (code, _) = api(ns, "GET", "/api/v1/subscribers/2", None);
    assert_eq!(code, 404);
    let (code, _) = api(ns, "DELETE", "/api/v1/subscribers/2", None);
    assert_eq!(code, 404);
    assert_eq!(counters.subscriber(2).expect("slot").flags, 0);

    // Metrics know the homes and the pool.
    let m = vgd::metrics(ns);
    assert_eq!(http::metric_sum(&m, "vg_subscribers", &[]), 1, "{m}");
    assert!(
        http::metric_sum(&m, "vg_nat_port_blocks", &[("state", "held")]) >= 2,
        "{m}"
    );
}

#[test]
fn api_homes_lease_move_and_go_while_a_neighbour_keeps_flowing() {
    let instance = nerg_tests::netns::unique_name("apihome");
    let mut topo = Topology::build_with(
        Naming::Test("apihome".into()),
        &[home(1, HomeLsl::Vlan(101)), home(2, HomeLsl::Vlan(102))],
        &instance,
        |h| h.id == 1,
    );
    // Home 2 exists only through the API.
    let (code, body) = api(
        &topo.vg,
        "POST",
        "/api/v1/subscribers",
        Some(r#"{"id": 2, "lsl": "vlan:102"}"#),
    );
    assert_eq!(code, 201, "{body}");
    let leases = topo.dhcp(Duration::from_secs(30));
    for (h, l) in topo.homes.iter().zip(&leases) {
        l.as_ref().unwrap_or_else(|out| {
            panic!(
                "home {} got no lease:\n{out}\nvgd:\n{}",
                h.spec.id,
                topo.vgd.log()
            )
        });
    }
    let lease2 = *leases[1].as_ref().unwrap();
    // The client script adds the address, then the default route.
    wait_until(
        "the leases' default routes",
        Duration::from_secs(10),
        || topo.homes.iter().all(|h| h.lease().is_some()),
    );
    assert!(
        ping(&topo.homes[1].host, GATEWAY, 2),
        "the API home pings its gateway"
    );
    let (code, body) = api(&topo.vg, "GET", "/api/v1/subscribers/2/leases", None);
    assert_eq!(code, 200);
    assert!(body.contains(&lease2.to_string()), "{body}");
    let hosts = vgctl(&topo.vg, &instance, &["hosts", "2"]);
    assert!(
        hosts.contains(&lease2.to_string()) && hosts.contains("leased"),
        "{hosts}"
    );
    let leases = vgctl(&topo.vg, &instance, &["leases", "2", "--json"]);
    assert_eq!(json(&leases)[0]["ip"], lease2.to_string(), "{leases}");
    let pool = vgctl(&topo.vg, &instance, &["nat", "pool"]);
    assert!(
        pool.starts_with("ADDRESS") && pool.contains("198.51.100."),
        "{pool}"
    );
    let (code, body) = api(&topo.vg, "GET", "/api/v1/subscribers/2/hosts", None);
    assert_eq!(code, 200);
    assert!(
        body.contains(&lease2.to_string()) && body.contains("leased"),
        "{body}"
    );

    // The neighbour pings the internet through everything that follows.
    let neighbour = topo.homes[0].host.spawn(
        "neighbour ping",
        topo.homes[0].host.command("ping").args([
            "-c",
            "200",
            "-i",
            "0.1",
            "-W",
            "2",
            &SERVER.to_string(),
        ]),
    );

    // LSL change (a merge patch, as an ACS-driven change would send): the old tag is an
    // unknown LSL at once, the new one works.
    let (code, body) = api(
        &topo.vg,
        "PATCH",
        "/api/v1/subscribers/2",
        Some(r#"{"lsl": "vlan:202"}"#),
    );
    assert_eq!(code, 200, "{body}");
    let before = unknown_lsl_drops(&topo);
    assert!(
        !ping(&topo.homes[1].host, GATEWAY, 2),
        "the old VLAN still reaches the gateway"
    );
    assert!(
        unknown_lsl_drops(&topo) > before,
        "the old tag is not counted as unknown"
    );
    // The ACS moves the BRG to VLAN 202 over TR-069 (connection request, SetParameterValues).
    topo.acs_change_lsl(1, HomeLsl::Vlan(202));
    assert!(
        ping(&topo.homes[1].host, GATEWAY, 3),
        "the new VLAN does not reach the gateway"
    );
    assert!(
        ping(&topo.homes[1].host, SERVER, 2),
        "the moved home does not reach the internet"
    );

    // Delete: traffic stops, leases, hosts, mappings and blocks go; the block log says so.
    assert!(
        nat_entries_of(&instance, 2) > 0,
        "the moved home made no NAT mapping"
    );
    let (code, body) = api(&topo.vg, "DELETE", "/api/v1/subscribers/2", None);
    assert_eq!(code, 204, "{body}");
    let before = unknown_lsl_drops(&topo);
    assert!(
        !ping(&topo.homes[1].host, SERVER, 2),
        "a deleted home still reaches the internet"
    );
    assert!(unknown_lsl_drops(&topo) > before);
    let maps = vg::fastpath::maps::PinnedMaps::open(&pin_dir(&instance)).expect("maps");
    assert!(
        maps.hosts_of(2).is_empty(),
        "hosts left: {:?}",
        maps.hosts_of(2)
    );
    assert_eq!(
        nat_entries_of(&instance, 2),
        0,
        "NAT mappings of the deleted home left"
    );
    assert!(
        nat_entries_of(&instance, 1) > 0,
        "the neighbour's mappings went too"
    );
    let (code, _) = api(&topo.vg, "GET", "/api/v1/subscribers/2/leases", None);
    assert_eq!(code, 404);
    let (code, body) = api(&topo.vg, "GET", "/api/v1/nat/blocks", None);
    assert_eq!(code, 200);
    let blocks = json(&body);
    assert_eq!(blocks.as_array().unwrap().len(), 1, "{body}");
    assert_eq!(blocks[0]["subscriber"], 1);
    let log = std::fs::read_to_string(vgd::state_dir(&instance).join("nat-blocks.log"))
        .expect("block log");
    let records: Vec<Value> = log.lines().map(json).collect();
    let of2 = |ev: &str| {
        records
            .iter()
            .filter(|r| r["subscriber"] == 2 && r["event"] == ev)
            .count()
    };
    assert!(of2("alloc") >= 1 && of2("release") == of2("alloc"), "{log}");
    let release = records
        .iter()
        .find(|r| r["subscriber"] == 2 && r["event"] == "release")
        .unwrap();
    assert!(
        release["end_unix"].as_u64() >= release["start_unix"].as_u64(),
        "{log}"
    );
    assert_eq!(release["lsl"], "vlan:202", "{log}");

    // The store forgot its leases: recreated, the home starts empty.
    let (code, body) = api(
        &topo.vg,
        "POST",
        "/api/v1/subscribers",
        Some(r#"{"id": 2, "lsl": "vlan:202"}"#),
    );
    assert_eq!(code, 201, "{body}");
    let (_, body) = api(&topo.vg, "GET", "/api/v1/subscribers/2/leases", None);
    assert_eq!(json(&body).as_array().unwrap().len(), 0, "{body}");

    // The neighbour lost nothing.
    let mut neighbour = neighbour;
    let status =
        nerg_tests::wait_until_some("the neighbour's ping", Duration::from_secs(60), || {
            neighbour.try_exit()
        });
    let out = neighbour.log();
    assert!(status.success(), "{out}");
    assert!(
        out.contains("200 received"),
        "the neighbour lost packets:\n{out}"
    );
}

#[test]
fn homes_and_blocks_survive_kill_9_and_a_restart() {
    let instance = nerg_tests::netns::unique_name("apirestart");
    let mut topo = Topology::build(
        Naming::Test("apirestart".into()),
        &[home(1, HomeLsl::Vlan(101))],
        &instance,
    );
    let (code, body) = api(
        &topo.vg,
        "POST",
        "/api/v1/subscribers/bulk",
        Some(
            r#"{"subscribers": [
            {"id": 5, "lsl": "vlan:105", "nat": {"public_ip": "198.51.100.9", "blocks": 3}},
            {"id": 6, "lsl": "vxlan:6006@10.255.1.6", "port_forwards": []}
        ]}"#,
        ),
    );
    assert_eq!(code, 201, "{body}");
    assert_eq!(json(&body)["created"], 2);
    // A bulk with one bad home creates nothing.
    let (code, body) = api(
        &topo.vg,
        "POST",
        "/api/v1/subscribers/bulk",
        Some(r#"{"subscribers": [{"id": 7, "lsl": "vlan:107"}, {"id": 8, "lsl": "vlan:105"}]}"#),
    );
    assert_eq!(code, 409, "{body}");
    assert!(body.contains("subscribers[1]"), "{body}");
    let (code, _) = api(&topo.vg, "GET", "/api/v1/subscribers/7", None);
    assert_eq!(code, 404);

    let (_, before) = api(&topo.vg, "GET", "/api/v1/nat/blocks", None);
    let before = json(&before);
    assert_eq!(before.as_array().unwrap().len(), 3, "{before}");
    let five = before
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["subscriber"] == 5)
        .unwrap();
    assert_eq!(five["public_ip"], "198.51.100.9");
    assert_eq!(five["blocks"].as_array().unwrap().len(), 3);

    // A crash right after the answers: what was acknowledged is durable.
    topo.vgd.kill();
    let config = topo.dir.join("vgd.toml");
    topo.vgd =
        vgd::start_with_config_and_core(&topo.vg, "acc0", Some("core0"), &instance, Some(&config));

    let (code, body) = api(&topo.vg, "GET", "/api/v1/subscribers", None);
    assert_eq!(code, 200);
    let ids: Vec<u64> = json(&body)
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, vec![1, 5, 6], "{body}");
    let (_, after) = api(&topo.vg, "GET", "/api/v1/nat/blocks", None);
    let strip = |v: &Value| -> Vec<Assigned> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|b| {
                (
                    b["subscriber"].clone(),
                    b["public_ip"].clone(),
                    b["blocks"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|x| (x["first_port"].clone(), x["since"].clone()))
                        .collect(),
                )
            })
            .collect()
    };
    assert_eq!(
        strip(&json(&after)),
        strip(&before),
        "blocks changed across the restart"
    );
    // The fast path got them back too.
    let counters = vg::fastpath::Counters::open(&pin_dir(&instance)).expect("counters");
    let rec = counters.subscriber(5).expect("slot");
    assert_eq!(rec.block_count, 3);
    assert_eq!(
        Ipv4Addr::from(rec.public_ip.to_ne_bytes()),
        Ipv4Addr::new(198, 51, 100, 9)
    );
    // A bigger pool (the operator adds addresses): every home keeps its address and blocks.
    topo.vgd.terminate(Duration::from_secs(10));
    let text = std::fs::read_to_string(&config).expect("config");
    let grown = text.replace(
        "pool = [\"198.51.100.0/28\"]",
        "pool = [\"198.51.100.0/28\", \"198.51.100.64/27\"]",
    );
    assert_ne!(grown, text, "the topology's pool line moved");
    std::fs::write(&config, grown).expect("config");
    topo.vgd =
        vgd::start_with_config_and_core(&topo.vg, "acc0", Some("core0"), &instance, Some(&config));
    let (_, after) = api(&topo.vg, "GET", "/api/v1/nat/blocks", None);
    assert_eq!(
        strip(&json(&after)),
        strip(&before),
        "blocks changed when the pool grew"
    );
    // No block was logged twice: one alloc per block, no release.
    let log = std::fs::read_to_string(vgd::state_dir(&instance).join("nat-blocks.log"))
        .expect("block log");
    let records: Vec<Value> = log.lines().map(json).collect();
    assert_eq!(
        records.iter().filter(|r| r["event"] == "alloc").count(),
        1 + 3 + 1,
        "{log}"
    );
    assert_eq!(
        records.iter().filter(|r| r["event"] == "release").count(),
        0,
        "{log}"
    );

    // IPv6 switched on: every home gets its own prefix, and keeps it across kill -9.
    topo.vgd.terminate(Duration::from_secs(10));
    let text = std::fs::read_to_string(&config).expect("config");
    let v6 = format!("{text}\n[ipv6]\npools = [\"2001:db8:100::/48\"]\ndelegated_length = 56\n");
    std::fs::write(&config, v6).expect("config");
    topo.vgd =
        vgd::start_with_config_and_core(&topo.vg, "acc0", Some("core0"), &instance, Some(&config));
    let prefixes = |topo: &Topology| -> Vec<(Value, Value, Value)> {
        let (code, body) = api(&topo.vg, "GET", "/api/v1/subscribers", None);
        assert_eq!(code, 200, "{body}");
        json(&body)
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                let a = &s["ipv6_assignment"];
                (s["id"].clone(), a["prefix"].clone(), a["lan"].clone())
            })
            .collect()
    };
    // The pool is unreachable in the vG's kernel: what the fast path does not route to a
    // home is answered there, not looped back to the core.
    let routes = topo
        .vg
        .command("ip")
        .args(["-6", "route", "show", "type", "unreachable"])
        .output()
        .expect("ip");
    let routes = String::from_utf8_lossy(&routes.stdout);
    assert!(routes.contains("2001:db8:100::/48"), "{routes}");
    let first = prefixes(&topo);
    let mut seen = std::collections::BTreeSet::new();
    for (id, prefix, lan) in &first {
        let prefix = prefix
            .as_str()
            .unwrap_or_else(|| panic!("home {id}: no prefix"));
        assert!(
            prefix.starts_with("2001:db8:100:") && prefix.ends_with("/56"),
            "{prefix}"
        );
        let lan = lan.as_str().unwrap();
        assert_eq!(
            lan.replace("/64", "/56"),
            prefix,
            "the LAN is the prefix's first /64"
        );
        assert!(seen.insert(prefix.to_owned()), "{prefix} given twice");
    }
    topo.vgd.kill();
    topo.vgd =
        vgd::start_with_config_and_core(&topo.vg, "acc0", Some("core0"), &instance, Some(&config));
    assert_eq!(prefixes(&topo), first, "prefixes changed across kill -9");
    let (code, body) = api(&topo.vg, "GET", "/api/v1/ipv6/pool", None);
    assert_eq!(code, 200, "{body}");
    let pool = json(&body);
    assert_eq!(
        (pool["assigned"].clone(), pool["held"].clone()),
        (3.into(), 0.into()),
        "{pool}"
    );
    assert_eq!(pool["capacity"], 256.0, "{pool}");
    let m = vgd::metrics(&topo.vg);
    assert_eq!(
        http::metric_sum(&m, "vg_ipv6_prefixes", &[("state", "assigned")]),
        3
    );
    // A deleted home's prefix rests in hold-down.
    let (code, body) = api(&topo.vg, "DELETE", "/api/v1/subscribers/6", None);
    assert_eq!(code, 204, "{body}");
    let (_, body) = api(&topo.vg, "GET", "/api/v1/ipv6/pool", None);
    assert_eq!(json(&body)["held"], 1, "{body}");
    let table = vgctl(&topo.vg, &instance, &["ipv6", "pool"]);
    assert!(
        table.contains("2001:db8:100::/48") && table.contains("256"),
        "{table}"
    );
}

/// Homes in the provisioning benchmark (the benchmark issue's target: 100,000 in <= 10 s).
const BULK_HOMES: u32 = 100_000;

#[test]
fn a_bulk_call_provisions_100k_homes() {
    nerg_tests::require_root();
    let vg_ns = nerg_tests::Netns::new("apibulk-vg");
    let peer = nerg_tests::Netns::new("apibulk-brg");
    vg_ns.disable_ipv6();
    nerg_tests::netns::veth(&vg_ns, "acc0", &peer, "lsl0");
    let pins = nerg_tests::PinDir::new("apibulk");
    // A /19 of public addresses: 8190 * 126 blocks of 512 ports, room for every home.
    let config = std::env::temp_dir().join(format!("{}.toml", pins.instance()));
    std::fs::write(
        &config,
        "[nat]\npool = [\"100.64.0.0/19\"]\nblock_size = 512\n",
    )
    .expect("config");
    let mut vgd = vgd::start_with_config(&vg_ns, "acc0", pins.instance(), Some(&config));
    let _ = std::fs::remove_file(&config);

    let mut body = String::from(r#"{"subscribers": ["#);
    for id in 1..=BULK_HOMES {
        if id > 1 {
            body.push(',');
        }
        let (s, c) = (id / 4000 + 1, id % 4000 + 1);
        body.push_str(&format!(r#"{{"id":{id},"lsl":"qinq:{s}.{c}"}}"#));
    }
    body.push_str("]}");
    let started = std::time::Instant::now();
    let (code, answer) = api(&vg_ns, "POST", "/api/v1/subscribers/bulk", Some(&body));
    let took = started.elapsed();
    assert_eq!(code, 201, "{answer}\n{}", vgd.log());
    assert_eq!(json(&answer)["created"], BULK_HOMES);
    eprintln!(
        "provisioned {BULK_HOMES} homes through the API in {:.2} s",
        took.as_secs_f64()
    );
    for line in vgd.log().lines().filter(|l| l.contains("homes created")) {
        eprintln!("{line}");
    }
    // Every home is in the fast path (spot checks at both ends and in the middle).
    let counters = vg::fastpath::Counters::open(pins.path()).expect("counters");
    for id in [1, BULK_HOMES / 2, BULK_HOMES] {
        let rec = counters.subscriber(id).expect("slot");
        assert_eq!(rec.flags & nerg_abi::sub_flags::ACTIVE, 1, "home {id}");
        assert_eq!(rec.block_count, 1, "home {id}");
    }
    let m = vgd::metrics(&vg_ns);
    assert_eq!(
        http::metric_sum(&m, "vg_subscribers", &[]),
        u64::from(BULK_HOMES)
    );
    // Durable single-item calls stay fast with that many homes.
    let started = std::time::Instant::now();
    let (code, body) = api(
        &vg_ns,
        "POST",
        "/api/v1/subscribers",
        Some(r#"{"id": 131000, "lsl": "vlan:7"}"#),
    );
    assert_eq!(code, 201, "{body}");
    let one = started.elapsed();
    eprintln!("one more home: {:.1} ms", one.as_secs_f64() * 1e3);
    assert!(
        one < Duration::from_secs(1),
        "a single create took {one:?} with {BULK_HOMES} homes"
    );
    assert!(
        took < Duration::from_secs(60),
        "provisioning {BULK_HOMES} homes took {took:?}"
    );
    vgd.assert_running();
}

#[test]
fn a_dhcp_flood_from_one_home_does_not_starve_another() {
    let instance = nerg_tests::netns::unique_name("apiflood");
    let mut topo = Topology::build(
        Naming::Test("apiflood".into()),
        &[home(1, HomeLsl::Vlan(101)), home(2, HomeLsl::Vlan(102))],
        &instance,
    );
    // Home 1's host floods DISCOVERs (new MAC each) for 4 s, through its BRG's tagger.
    let iface = topo.homes[0].iface();
    let flood = topo.homes[0].host.spawn_thread(move || {
        let sock = nerg_tests::raw::RawSocket::bind(&iface).expect("raw socket");
        let until = std::time::Instant::now() + Duration::from_secs(4);
        let mut sent = 0u32;
        while std::time::Instant::now() < until {
            let b = sent.to_be_bytes();
            let frame = nerg_tests::frames::dhcp_discover([0x02, 0xee, b[0], b[1], b[2], b[3]]);
            if sock.send(&frame).is_ok() {
                sent += 1;
            }
        }
        sent
    });
    // Home 2's real client gets its lease meanwhile.
    wait_until(
        "the flood to be rate limited",
        Duration::from_secs(10),
        || {
            http::metric_sum(
                &vgd::metrics(&topo.vg),
                "vg_slowpath_frames_total",
                &[("outcome", "ignored"), ("detail", "rate_limited")],
            ) > 0
        },
    );
    let started = std::time::Instant::now();
    let both = topo.dhcp(Duration::from_secs(30));
    let lease2 = both[1]
        .as_ref()
        .unwrap_or_else(|out| panic!("home 2 got no lease during home 1's flood:\n{out}"));
    let sent = flood.join().expect("flood thread");
    assert!(sent > 1000, "the flood sent only {sent} frames");
    eprintln!(
        "home 2 leased {lease2} in {:.1} s during a flood of {sent} DISCOVERs from home 1",
        started.elapsed().as_secs_f64()
    );
    let m = vgd::metrics(&topo.vg);
    let limited = http::metric_sum(
        &m,
        "vg_slowpath_frames_total",
        &[("outcome", "ignored"), ("detail", "rate_limited")],
    );
    assert!(
        limited > u64::from(sent) / 2,
        "only {limited} of {sent} flood frames were rate limited"
    );
    topo.vgd.assert_running();
}

#[test]
fn a_forward_on_a_port_a_live_session_holds_is_a_conflict() {
    let instance = nerg_tests::netns::unique_name("apifwd");
    let topo = Topology::build(
        Naming::Test("apifwd".into()),
        &[home(1, HomeLsl::Vxlan(5001))],
        &instance,
    );
    let lease = topo.dhcp(Duration::from_secs(30)).remove(0);
    let lease = lease.unwrap_or_else(|out| panic!("no lease: {out}"));
    // The client script adds the address, then the default route.
    wait_until("the lease's default route", Duration::from_secs(10), || {
        topo.homes[0].lease().is_some()
    });
    // A UDP session from the home creates a dynamic mapping.
    let server = topo.inet.spawn_thread(|| {
        let sock = std::net::UdpSocket::bind((SERVER, 7001)).expect("bind");
        sock.set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let mut buf = [0u8; 64];
        let (n, from) = sock.recv_from(&mut buf).expect("a datagram");
        sock.send_to(&buf[..n], from).unwrap();
        from
    });
    let echoed = topo.homes[0].host.run(|| {
        let sock = std::net::UdpSocket::bind((lease, 4444)).unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        let mut buf = [0u8; 64];
        (0..40).find_map(|_| {
            sock.send_to(b"hi", (SERVER, 7001)).unwrap();
            sock.recv_from(&mut buf).ok().map(|(n, _)| n)
        })
    });
    assert_eq!(echoed, Some(2), "no UDP echo through the NAT");
    let public = server.join().expect("server");
    // A forward of that public port to another host port: refused while the session lives.
    let body = format!(
        r#"{{"proto": "udp", "public_port": {}, "private_ip": "192.168.1.77", "private_port": 53}}"#,
        public.port()
    );
    let (code, answer) = api(
        &topo.vg,
        "POST",
        "/api/v1/subscribers/1/port-forwards",
        Some(&body),
    );
    assert_eq!(code, 409, "{answer}");
    assert!(answer.contains("live NAT session"), "{answer}");
    // The same port for TCP is free.
    let body = body.replace("udp", "tcp");
    let (code, answer) = api(
        &topo.vg,
        "POST",
        "/api/v1/subscribers/1/port-forwards",
        Some(&body),
    );
    assert_eq!(code, 201, "{answer}");
}

/// A POST of `body` to /api/v1/subscribers: the status and the body; home 3 does not exist
/// afterwards whatever the answer said.
fn refused(ns: &nerg_tests::Netns, body: &str) -> (u16, String) {
    let (code, answer) = api(ns, "POST", "/api/v1/subscribers", Some(body));
    let (get, _) = api(ns, "GET", "/api/v1/subscribers/3", None);
    assert_eq!(get, 404, "{body} created home 3: {answer}");
    (code, answer)
}

#[test]
fn clashing_lsls_and_nonsense_lans_are_refused_while_the_homes_keep_forwarding() {
    // Issue 15, items 1-3.
    let instance = nerg_tests::netns::unique_name("apiclash");
    let topo = Topology::build(
        Naming::Test("apiclash".into()),
        &[home(1, HomeLsl::Vlan(101)), home(2, HomeLsl::Qinq(10, 102))],
        &instance,
    );
    let leases = topo.dhcp(Duration::from_secs(30));
    for (h, l) in topo.homes.iter().zip(&leases) {
        l.as_ref().unwrap_or_else(|out| {
            panic!(
                "home {} got no lease:\n{out}\nvgd:\n{}",
                h.spec.id,
                topo.vgd.log()
            )
        });
    }
    let ns = &topo.vg;
    let access_ifindex = ifindex_of(ns, "acc0");
    let owner = |lsl: &str| {
        let maps = vg::fastpath::maps::PinnedMaps::open(&pin_dir(&instance)).expect("maps");
        let key = vg::fastpath::reconcile::lsl_key(&lsl.parse().expect("LSL"), access_ifindex);
        maps.lsl_owner(&key).expect("LSL table")
    };
    assert_eq!(owner("vlan:101"), Some(1));
    assert_eq!(owner("qinq:10.102"), Some(2));

    // Both homes reach the internet through everything that is refused below.
    let pings: Vec<_> = topo
        .homes
        .iter()
        .map(|h| {
            h.host.spawn(
                "ping",
                h.host.command("ping").args([
                    "-c",
                    "60",
                    "-i",
                    "0.1",
                    "-W",
                    "2",
                    &SERVER.to_string(),
                ]),
            )
        })
        .collect();

    // 1. One fast-path key: the S-tag's TPID does not tell homes apart.
    for lsl in ["qinq-9100:10.102", "qinq-8100:10.102"] {
        let (code, body) = refused(ns, &format!(r#"{{"id": 3, "lsl": "{lsl}"}}"#));
        assert_eq!(code, 409, "{lsl}: {body}");
        assert!(
            body.contains(lsl) && body.contains("subscriber 2") && body.contains("qinq:10.102"),
            "{body}"
        );
    }
    // 2. A QinQ LSL under the 802.1Q home's tag, by POST, bulk and PUT.
    let (code, body) = refused(ns, r#"{"id": 3, "lsl": "qinq-8100:101.5"}"#);
    assert_eq!(code, 409, "{body}");
    assert!(
        body.contains("qinq-8100:101.5")
            && body.contains("subscriber 1")
            && body.contains("vlan:101"),
        "{body}"
    );
    let (code, body) = api(
        ns,
        "POST",
        "/api/v1/subscribers/bulk",
        Some(
            r#"{"subscribers": [{"id": 3, "lsl": "vlan:103"}, {"id": 4, "lsl": "qinq-8100:103.5"}]}"#,
        ),
    );
    assert_eq!(code, 409, "{body}");
    assert!(
        body.contains("subscribers[1]") && body.contains("subscriber 3"),
        "{body}"
    );
    let (code, body) = api(
        ns,
        "PUT",
        "/api/v1/subscribers/2",
        Some(r#"{"id": 2, "lsl": "qinq-8100:101.5"}"#),
    );
    assert_eq!(code, 409, "{body}");
    // 3. Nonsense LANs.
    for gateway in [
        "192.168.1.1/0",
        "224.0.0.1/24",
        "127.0.0.1/8",
        "192.168.1.1/31",
    ] {
        let (code, body) = refused(
            ns,
            &format!(r#"{{"id": 3, "lsl": "vlan:103", "gateway": "{gateway}"}}"#),
        );
        assert_eq!(code, 422, "{gateway}: {body}");
        assert!(
            body.contains(&format!(r#"subscriber.gateway = \"{gateway}\""#)),
            "{body}"
        );
    }
    let (code, body) = api(
        ns,
        "PATCH",
        "/api/v1/subscribers/1",
        Some(r#"{"gateway": "0.0.0.1/24"}"#),
    );
    assert_eq!(code, 422, "{body}");

    // Nothing moved in the fast path, and no home lost a packet.
    assert_eq!(owner("vlan:101"), Some(1));
    assert_eq!(owner("qinq:10.102"), Some(2));
    assert_eq!(owner("qinq-8100:101.5"), None);
    for (mut p, h) in pings.into_iter().zip(&topo.homes) {
        let status =
            nerg_tests::wait_until_some("a home's ping", Duration::from_secs(60), || p.try_exit());
        let out = p.log();
        assert!(
            status.success() && out.contains("60 received"),
            "home {} lost packets:\n{out}",
            h.spec.id
        );
    }

    // A home that changes only its S-tag's TPID keeps its one entry: the BRG still sends
    // 0x88a8, so its frames are refused as qinq-9100, and it works again once back.
    let (code, body) = api(
        ns,
        "PATCH",
        "/api/v1/subscribers/2",
        Some(r#"{"lsl": "qinq-9100:10.102"}"#),
    );
    assert_eq!(code, 200, "{body}");
    assert_eq!(owner("qinq:10.102"), Some(2));
    assert!(
        !ping(&topo.homes[1].host, GATEWAY, 2),
        "0x88a8 accepted as 0x9100"
    );
    let (code, body) = api(
        ns,
        "PATCH",
        "/api/v1/subscribers/2",
        Some(r#"{"lsl": "qinq:10.102"}"#),
    );
    assert_eq!(code, 200, "{body}");
    assert_eq!(owner("qinq:10.102"), Some(2));
    assert!(ping(&topo.homes[1].host, GATEWAY, 3), "home 2 lost its LSL");
    assert!(ping(&topo.homes[0].host, SERVER, 2), "home 1 lost its LSL");
}

/// The index of `dev` in `ns`.
fn ifindex_of(ns: &nerg_tests::Netns, dev: &str) -> u32 {
    let out = ns.ip(&["-o", "link", "show", "dev", dev]);
    String::from_utf8_lossy(&out.stdout)
        .split(':')
        .next()
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no index for {dev}"))
}
