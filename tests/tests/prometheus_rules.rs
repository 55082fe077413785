//! The Prometheus rules of `deploy/prometheus`: `promtool` (Debian's `prometheus` package)
//! checks them and runs their unit tests on recorded series, and every alert they define
//! has a test case in which it fires.

use std::{collections::BTreeSet, path::Path, process::Command};

fn deploy(file: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../deploy/prometheus")
        .join(file)
}

fn promtool(args: &[&str]) -> String {
    let out = Command::new("promtool")
        .args(args)
        .current_dir(deploy(""))
        .output()
        .expect("promtool is needed (Debian package prometheus): cargo xtask setup installs it");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool {args:?} failed:\n{text}");
    text
}

/// The values of `key: value` lines (YAML, one per line) in `text`.
fn values_of<'a>(text: &'a str, key: &str) -> BTreeSet<&'a str> {
    text.lines()
        .filter_map(|l| l.trim().trim_start_matches("- ").strip_prefix(key))
        .filter_map(|rest| rest.strip_prefix(':'))
        .map(str::trim)
        .collect()
}

#[test]
fn rules_and_config_pass_promtool_check_and_the_unit_tests() {
    let check = promtool(&["check", "rules", "nerg-vg.rules.yml"]);
    assert!(check.contains("SUCCESS"), "{check}");
    let config = promtool(&["check", "config", "prometheus.yml"]);
    assert!(config.contains("SUCCESS"), "{config}");
    let test = promtool(&["test", "rules", "nerg-vg.rules.test.yml"]);
    assert!(test.contains("SUCCESS"), "{test}");
}

#[test]
fn every_alert_fires_in_some_test_case() {
    let rules = std::fs::read_to_string(deploy("nerg-vg.rules.yml")).expect("rules");
    let tests = std::fs::read_to_string(deploy("nerg-vg.rules.test.yml")).expect("tests");
    let alerts = values_of(&rules, "alert");
    for wanted in [
        "VgScrapeDown",
        "VgFastPathDetached",
        "VgHomeOffline",
        "VgNatPortBlocksExhausted",
        "VgHomePortsExhausted",
        "VgDhcpPoolExhausted",
        "VgDropsRising",
        "VgStoreCommitsSlow",
    ] {
        assert!(alerts.contains(wanted), "no alert {wanted} in the rules");
    }
    // An alert is covered when a test case expects it with labels (firing), not only `[]`.
    let mut firing = BTreeSet::new();
    let mut current = None;
    for line in tests.lines() {
        let line = line.trim();
        if let Some(name) = line.strip_prefix("alertname:") {
            current = Some(name.trim());
        } else if line.starts_with("- exp_labels:") {
            firing.extend(current);
        }
    }
    let uncovered: Vec<_> = alerts.difference(&firing).collect();
    assert!(
        uncovered.is_empty(),
        "alerts never seen firing in a test: {uncovered:?}"
    );
}

/// The unit tests can fail: an alert whose `for` is lengthened past the test's evaluation
/// time is reported by promtool.
#[test]
fn promtool_catches_a_rule_that_no_longer_fires() {
    let dir = std::env::temp_dir().join(nerg_tests::netns::unique_name("promtool"));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let rules = std::fs::read_to_string(deploy("nerg-vg.rules.yml")).expect("rules");
    let slower = rules.replacen("        for: 2m\n", "        for: 20m\n", 1);
    assert_ne!(slower, rules, "the first `for: 2m` moved");
    std::fs::write(dir.join("nerg-vg.rules.yml"), slower).expect("rules copy");
    std::fs::copy(
        deploy("nerg-vg.rules.test.yml"),
        dir.join("nerg-vg.rules.test.yml"),
    )
    .expect("tests copy");
    let out = Command::new("promtool")
        .args(["test", "rules", "nerg-vg.rules.test.yml"])
        .current_dir(&dir)
        .output()
        .expect("promtool");
    let _ = std::fs::remove_dir_all(&dir);
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && text.contains("VgScrapeDown"),
        "promtool accepted a VgScrapeDown that no longer fires in time:\n{text}"
    );
}
