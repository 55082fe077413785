//! The Grafana dashboard (`deploy/grafana/nerg-vg.json`) against a real Prometheus (Debian's
//! `prometheus`) scraping a lab's vgd: every panel's every query, evaluated through
//! Prometheus' HTTP API as Grafana would send it, returns series with finite values, the
//! dashboard's instance variable finds the vgd, and the rules of `deploy/prometheus` load
//! and evaluate on the real series without an error.

use std::{collections::BTreeSet, net::SocketAddr, path::Path, time::Duration};

use nerg_tests::{
    http,
    topology::{DhcpClient, GATEWAY, HomeLsl, HomeSpec, Naming, SERVER, Topology},
    vgd, wait_until,
};
use serde_json::Value;

const HOMES: [HomeSpec; 2] = [
    HomeSpec {
        id: 1,
        lsl: HomeLsl::Vlan(101),
        client: DhcpClient::Udhcpc,
    },
    HomeSpec {
        id: 2,
        lsl: HomeLsl::Vxlan(5002),
        client: DhcpClient::Dhcpcd,
    },
];
/// Prometheus' listener inside the vG's namespace (beside vgd's, on its loopback).
const PROMETHEUS: &str = "127.0.0.1:19090";
/// What the test puts for Grafana's `$__rate_interval`: the whole test fits in it.
const RATE_INTERVAL: &str = "5m";

fn repo_file(path: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path)
}

/// Every query of the dashboard: (panel title, PromQL as Grafana has it).
fn panel_queries(dashboard: &Value) -> Vec<(String, String)> {
    let panels = dashboard["panels"]
        .as_array()
        .expect("the dashboard's panels");
    let mut ids = BTreeSet::new();
    let mut queries = Vec::new();
    for panel in panels {
        let title = panel["title"].as_str().expect("every panel has a title");
        let id = panel["id"].as_u64().expect("every panel has an id");
        assert!(ids.insert(id), "panel id {id} ({title}) used twice");
        for key in ["h", "w", "x", "y"] {
            assert!(
                panel["gridPos"][key].is_u64(),
                "panel {title}: no gridPos.{key}"
            );
        }
        if panel["type"] == "row" {
            continue;
        }
        assert_eq!(
            panel["datasource"]["uid"], "${datasource}",
            "panel {title} must use the dashboard's Prometheus variable"
        );
        let targets = panel["targets"].as_array().filter(|t| !t.is_empty());
        let targets = targets.unwrap_or_else(|| panic!("panel {title} has no query"));
        for t in targets {
            let expr = t["expr"].as_str().expect("a Prometheus target's expr");
            queries.push((title.to_owned(), expr.to_owned()));
        }
    }
    queries
}

/// A query string with Grafana's variables replaced as Grafana would for "All" vgds.
fn as_grafana_sends(expr: &str) -> String {
    expr.replace("$__rate_interval", RATE_INTERVAL)
        .replace("$instance", ".*")
}

/// `application/x-www-form-urlencoded` / RFC 3986 percent-encoding of a query value.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// GETs `path` from Prometheus in the vG's namespace; its JSON `data` on success.
fn api(topo: &Topology, path: &str) -> Result<Value, String> {
    let addr: SocketAddr = PROMETHEUS.parse().expect("address");
    let (code, body) = topo
        .vg
        .run(|| http::get(addr, path))
        .ok_or_else(|| "Prometheus does not answer".to_owned())?;
    let body = dechunk(&body).unwrap_or(body);
    let v: Value = serde_json::from_str(&body).map_err(|e| format!("{code}: {e}: {body}"))?;
    if code != 200 || v["status"] != "success" {
        return Err(format!("{code}: {body}"));
    }
    Ok(v["data"].clone())
}

/// The body of a `Transfer-Encoding: chunked` answer (Prometheus chunks its larger
/// answers; the harness' HTTP client hands the chunks over as they came), or `None` when
/// `body` is not chunked.
fn dechunk(body: &str) -> Option<String> {
    let mut rest = body;
    let mut out = String::new();
    loop {
        let (size, after) = rest.split_once("\r\n")?;
        let size = usize::from_str_radix(size.trim(), 16).ok()?;
        if size == 0 {
            return Some(out);
        }
        out.push_str(after.get(..size)?);
        rest = after.get(size..)?.strip_prefix("\r\n")?;
    }
}

/// What is wrong with `expr`'s answer now, if anything: an error, no series, or no finite
/// value (a panel showing "No data" or NaN).
fn problem(topo: &Topology, expr: &str) -> Option<String> {
    let data = match api(topo, &format!("/api/v1/query?query={}", encode(expr))) {
        Ok(d) => d,
        Err(e) => return Some(e),
    };
    let result = data["result"].as_array().cloned().unwrap_or_default();
    if result.is_empty() {
        return Some("no series".to_owned());
    }
    let finite = result.iter().any(|s| {
        s["value"][1]
            .as_str()
            .and_then(|v| v.parse::<f64>().ok())
            .is_some_and(f64::is_finite)
    });
    (!finite).then(|| format!("no finite value: {result:?}"))
}

#[test]
fn every_dashboard_panel_has_data_from_a_labs_vgd() {
    nerg_tests::require_root();
    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(repo_file("deploy/grafana/nerg-vg.json")).expect("dashboard"),
    )
    .expect("the dashboard is JSON");
    let queries = panel_queries(&dashboard);
    assert!(queries.len() >= 20, "only {} queries", queries.len());

    let instance = nerg_tests::netns::unique_name("graf");
    let topo = Topology::build(Naming::Test("graf".into()), &HOMES, &instance);

    // Prometheus first, so that it sees the counters move.
    let dir = std::env::temp_dir().join(nerg_tests::netns::unique_name("prometheus"));
    std::fs::create_dir_all(&dir).expect("prometheus dir");
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             rule_files: [{rules:?}]\n\
             scrape_configs:\n  - job_name: nerg-vg\n    static_configs:\n      - targets: [{vgd:?}]\n",
            rules = repo_file("deploy/prometheus/nerg-vg.rules.yml"),
            vgd = vgd::LISTEN,
        ),
    )
    .expect("prometheus.yml");
    let mut prometheus = topo.vg.spawn(
        "prometheus",
        topo.vg
            .command("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address={PROMETHEUS}")),
    );
    wait_until("Prometheus to scrape vgd", Duration::from_secs(30), || {
        prometheus.assert_running();
        api(
            &topo,
            "/api/v1/query?query=up%7Bjob%3D%22nerg-vg%22%7D%3D%3D1",
        )
        .is_ok_and(|d| d["result"].as_array().is_some_and(|r| r.len() == 1))
    });

    // The homes get leases and send traffic through the NAT to the internet's web server.
    let _servers = topo.start_servers();
    for (home, lease) in topo.homes.iter().zip(topo.dhcp(Duration::from_secs(30))) {
        lease.unwrap_or_else(|e| panic!("home {}: no lease: {e}", home.spec.id));
        let ping = home
            .host
            .command("ping")
            .args(["-c", "3", "-i", "0.2", "-W", "2", &GATEWAY.to_string()])
            .output()
            .expect("ping");
        assert!(ping.status.success(), "home {}: ping", home.spec.id);
        let page = home
            .host
            .run(|| http::get((SERVER, 80).into(), "/"))
            .map(|(code, _)| code);
        assert_eq!(
            page,
            Some(200),
            "home {}: HTTP through the NAT",
            home.spec.id
        );
    }

    // Every query answers with data once Prometheus has scraped what the traffic did.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let problems = loop {
        let problems: Vec<String> = queries
            .iter()
            .filter_map(|(title, expr)| {
                let expr = as_grafana_sends(expr);
                problem(&topo, &expr).map(|p| format!("panel {title:?}: {expr}: {p}"))
            })
            .collect();
        if problems.is_empty() || std::time::Instant::now() > deadline {
            break problems;
        }
        // Polling interval: a scrape a second, rules evaluated every second.
        std::thread::sleep(Duration::from_millis(500));
    };
    assert!(
        problems.is_empty(),
        "{} of {} queries without data:\n{}\nvgd:\n{}",
        problems.len(),
        queries.len(),
        problems.join("\n"),
        topo.vgd.log()
    );

    // The instance variable (label_values(vg_build_info, instance)) lists the vgd.
    let values =
        api(&topo, "/api/v1/label/instance/values?match[]=vg_build_info").expect("label values");
    assert_eq!(values, serde_json::json!([vgd::LISTEN]));

    // The rules load and evaluate on real series without errors.
    let rules = api(&topo, "/api/v1/rules").expect("rules");
    let groups = rules["groups"].as_array().expect("rule groups");
    let names: BTreeSet<&str> = groups.iter().filter_map(|g| g["name"].as_str()).collect();
    assert_eq!(
        names,
        BTreeSet::from(["nerg-vg.alerts", "nerg-vg.records"]),
        "{rules}"
    );
    wait_until(
        "every rule to be evaluated",
        Duration::from_secs(40),
        || {
            let rules = api(&topo, "/api/v1/rules").expect("rules");
            let all: Vec<Value> = rules["groups"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
                .collect();
            for r in &all {
                assert_ne!(r["health"], "err", "rule failed: {r}");
            }
            all.iter().all(|r| r["health"] == "ok")
        },
    );
    prometheus.assert_running();
    drop(prometheus);
    let _ = std::fs::remove_dir_all(&dir);
}
