//! The benchmarks in quick mode (tiny counts): every benchmark runs, and the summary holds
//! every figure it claims as a finite, positive number. No timing is asserted: this only
//! keeps the benchmark code from rotting (`cargo xtask bench` measures for real).
//!
//! The forwarding benchmark has two traffic generators: live frames where the kernel runs
//! them, AF_PACKET where it refuses. The full run picks one itself; a second run of the
//! forwarding benchmark alone forces AF_PACKET, so both generators are exercised wherever
//! live frames work, and the fallback everywhere.

use std::process::Command;

use nerg_tests::{bench::REQUIRED, bin, require_root};
use serde_json::{Map, Value};

/// Runs `nerg-bench --quick` with `args`; returns the summary and the output (for messages).
fn quick_bench(name: &str, args: &[&str]) -> (Map<String, Value>, String) {
    let dir = std::env::temp_dir().join(format!("nerg-bench-{name}-{}", std::process::id()));
    let out = dir.join("summary.json");
    let run = Command::new(bin("nerg-bench"))
        .arg("--quick")
        .arg("--out")
        .arg(&out)
        .args(args)
        // The generator is chosen by the flags above, not by the caller's environment.
        .env_remove("NERG_BENCH_GENERATOR")
        .output()
        .expect("nerg-bench runs");
    let log = format!(
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(
        run.status.success(),
        "nerg-bench --quick {args:?} failed\n{log}"
    );
    let text = std::fs::read_to_string(&out).expect("summary.json written");
    let _ = std::fs::remove_dir_all(&dir);
    let json: Value = serde_json::from_str(&text).expect("summary.json is JSON");
    let obj = json.as_object().expect("one flat object").clone();
    (obj, log)
}

/// Checks the forwarding benchmark's figures: every case forwarded frames, and says whether
/// the generator bounded it; returns which generator ran (true: live frames).
fn check_forwarding(obj: &Map<String, Value>, log: &str) -> bool {
    let value = |k: &str| obj.get(k).and_then(Value::as_f64);
    let cases: Vec<&str> = obj
        .keys()
        .filter_map(|k| k.strip_suffix("_offered_pps"))
        .collect();
    assert!(
        cases.len() >= 3,
        "forwarding cases missing: {cases:?}\n{log}"
    );
    for case in &cases {
        assert!(
            value(&format!("{case}_pps")).is_some_and(|v| v > 0.0),
            "{case}: nothing forwarded\n{log}"
        );
        assert!(
            matches!(value(&format!("{case}_generator_bound")), Some(b) if b == 0.0 || b == 1.0),
            "{case}_generator_bound is not 0 or 1\n{log}"
        );
    }
    for key in [
        "vg_fwd_pps",
        "linux_nat_fwd_pps",
        "xdp_redirect_limit_pps",
        "vg_vs_linux_ratio",
        "vg_vs_redirect_limit_ratio",
        "vg_vs_fib_fwd_ratio",
    ] {
        assert!(obj.contains_key(key), "{key} missing\n{log}");
    }
    let live = match value("fwd_generator_live_frames") {
        Some(1.0) => true,
        Some(0.0) => false,
        other => panic!("fwd_generator_live_frames = {other:?}\n{log}"),
    };
    let named = if live { "live frames" } else { "AF_PACKET" };
    assert!(
        log.contains(&format!("forwarding traffic generator: {named}")),
        "no line names the generator ({named})\n{log}"
    );
    live
}

#[test]
fn quick_bench_writes_every_figure() {
    require_root();
    let (obj, log) = quick_bench("quick", &[]);
    for (k, v) in &obj {
        let n = v
            .as_f64()
            .unwrap_or_else(|| panic!("{k} is not a number: {v}"));
        // A loss share may be 0, and so may the rate a search found sustained with < 0.1%
        // drops: in quick mode that is one 1-second step, and whether a loaded machine
        // passes it is a timing question this test does not ask (the peak rates, which
        // prove the exchanges ran, must be positive), for Kea and vgd alike, and so is their
        // ratio. Flags (which generator ran, whether it bounded a figure) are 0 or 1. Every
        // other figure is positive.
        assert!(
            n.is_finite() && n >= 0.0,
            "{k} = {n} is not finite and non-negative"
        );
        let may_be_zero = k.ends_with("_loss_pct")
            || k.ends_with("_drop_pct")
            || k.ends_with("_generator_bound")
            || k == "fwd_generator_live_frames"
            || k == "kea_wire_leases_per_s"
            || k == "dhcp_wire_leases_per_s"
            || k == "dhcp_wire_vs_kea_ratio";
        if !may_be_zero {
            assert!(n > 0.0, "{k} = {n} is not positive");
        }
    }
    let value = |k: &str| obj.get(k).and_then(Value::as_f64);
    for f in REQUIRED {
        // vgd / Kea is undefined when Kea sustained nothing (see above); then the table
        // says why.
        if f.key == "dhcp_wire_vs_kea_ratio" && value("kea_wire_leases_per_s") == Some(0.0) {
            assert!(
                !obj.contains_key(f.key) && log.contains("undefined: Kea sustained"),
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
    // The forwarding benchmark, with the generator it picked itself.
    check_forwarding(&obj, &log);
    // Again with the AF_PACKET generator forced: the fallback runs on every machine.
    let (obj, log) = quick_bench("af-packet", &["--only", "live", "--generator", "af-packet"]);
    assert!(
        !check_forwarding(&obj, &log),
        "--generator af-packet ran live frames\n{log}"
    );
}
