//! The benchmarks in quick mode (tiny counts): every benchmark runs, and the summary holds
//! every figure it claims as a finite, positive number. No timing is asserted: this only
//! keeps the benchmark code from rotting (`cargo xtask bench` measures for real).

use std::process::Command;

use nerg_tests::{bench::REQUIRED, bin, require_root};

#[test]
fn quick_bench_writes_every_figure() {
    require_root();
    let dir = std::env::temp_dir().join(format!("nerg-bench-quick-{}", std::process::id()));
    let out = dir.join("summary.json");
    let run = Command::new(bin("nerg-bench"))
        .arg("--quick")
        .arg("--out")
        .arg(&out)
        .output()
        .expect("nerg-bench runs");
    let log = format!(
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(run.status.success(), "nerg-bench --quick failed\n{log}");
    let text = std::fs::read_to_string(&out).expect("summary.json written");
    let _ = std::fs::remove_dir_all(&dir);
    let json: serde_json::Value = serde_json::from_str(&text).expect("summary.json is JSON");
    let obj = json.as_object().expect("one flat object");
    for (k, v) in obj {
        let n = v
            .as_f64()
            .unwrap_or_else(|| panic!("{k} is not a number: {v}"));
        // A loss share may be 0, and so may the rate a search found sustained with < 0.1%
        // drops: in quick mode that is one 1-second step, and whether a loaded machine
        // passes it is a timing question this test does not ask (the peak rates, which
        // prove the exchanges ran, must be positive), for Kea and vgd alike, and so is their
        // ratio. Every other figure is positive.
        assert!(
            n.is_finite() && n >= 0.0,
            "{k} = {n} is not finite and non-negative"
        );
        let may_be_zero = k.ends_with("_loss_pct")
            || k.ends_with("_drop_pct")
            || k == "kea_wire_leases_per_s"
            || k == "dhcp_wire_leases_per_s"
            || k == "dhcp_wire_vs_kea_ratio";
        if !may_be_zero {
            assert!(n > 0.0, "{k} = {n} is not positive");
        }
    }
    let value = |k: &str| obj.get(k).and_then(serde_json::Value::as_f64);
    for f in REQUIRED {
        // vgd / Kea is undefined when Kea sustained nothing (see above); then the table
        // says why.
        if f.key == "dhcp_wire_vs_kea_ratio" && value("kea_wire_leases_per_s") == Some(0.0) {
            assert!(
                !obj.contains_key(f.key)
                    && String::from_utf8_lossy(&run.stdout).contains("undefined: Kea sustained"),
                "{log}"
            );
            continue;
        }
        assert!(
            obj.contains_key(f.key),
            "{} missing from summary.json\n{log}",
            f.key
        );
    }
    // The vgd side of the wire benchmark ran: perfdhcp got leases from vgd, through its
    // store.
    assert!(
        value("dhcp_wire_peak_leases_per_s").is_some_and(|v| v > 0.0),
        "{log}"
    );
    assert!(
        value("dhcp_wire_leases_per_commit").is_some_and(|v| v > 0.0),
        "{log}"
    );
}
