//! Benchmarks (`nerg-bench`, `cargo xtask bench`): one module per benchmark, each a function
//! that measures and records its figures in a [`Summary`].
//!
//! Every figure is the median of several runs (samples); a benchmark that compares with a
//! baseline measures the baseline in the same run, interleaved, so the ratio holds on a noisy
//! shared machine. [`Summary`] writes `target/bench/summary.json` (one flat JSON object,
//! numbers only, the unit in each key's name) and prints a table in which every figure the
//! issue asks for appears, measured or "not yet measured".

pub mod af_packet;
pub mod control;
pub mod dhcp;
pub mod dhcp6;
pub mod dhcp6_wire;
pub mod fastpath;
pub mod firmware;
pub mod live;
pub mod scale;

use std::{collections::BTreeMap, fmt::Write as _, path::Path};

use anyhow::Context as _;

/// The embedded benchmark eBPF object (`ebpf/bench-xdp`), empty with `AYA_BUILD_SKIP=1`.
pub static BENCH_OBJECT: &[u8] =
    aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/bench-xdp"));

/// How much work each benchmark does (and the forwarding benchmark's traffic generator).
#[derive(Clone, Copy, Debug)]
pub struct Effort {
    /// Tiny counts: proves the code runs (inside `cargo xtask test`); figures mean nothing.
    pub quick: bool,
    /// Samples per figure (the median is reported).
    pub samples: usize,
    /// The forwarding benchmark's traffic generator ([`live`]).
    pub generator: live::GeneratorChoice,
}

impl Effort {
    /// Full or quick effort, the generator chosen automatically.
    pub fn new(quick: bool) -> Self {
        Self {
            quick,
            samples: if quick { 3 } else { 5 },
            generator: live::GeneratorChoice::Auto,
        }
    }

    /// `full` normally, `quick` in quick mode.
    pub fn pick<T>(&self, full: T, quick: T) -> T {
        if self.quick { quick } else { full }
    }
}

/// One figure the table lists: its key, what it is, and its target if the project set one.
#[derive(Clone, Copy, Debug)]
pub struct Figure {
    /// Key in `summary.json` (unit in the name).
    pub key: &'static str,
    /// What it measures.
    pub what: &'static str,
    /// The target, in words, if any.
    pub target: Option<Target>,
}

/// A target a figure is checked against in the table.
#[derive(Clone, Copy, Debug)]
pub enum Target {
    /// The figure must be at least this.
    AtLeast(f64),
    /// The figure must be at most this.
    AtMost(f64),
}

impl Target {
    fn met(self, v: f64) -> bool {
        match self {
            Self::AtLeast(t) => v >= t,
            Self::AtMost(t) => v <= t,
        }
    }

    fn show(self) -> String {
        match self {
            Self::AtLeast(t) => format!(">= {}", fmt_num(t)),
            Self::AtMost(t) => format!("<= {}", fmt_num(t)),
        }
    }
}

const fn fig(key: &'static str, what: &'static str, target: Option<Target>) -> Figure {
    Figure { key, what, target }
}

/// Every figure the issue requires, in table order. Benchmarks may record more.
pub const REQUIRED: &[Figure] = &[
    fig(
        "xdp_upstream_nat_ns_per_pkt",
        "upstream NAT, QinQ, established flow (BPF_PROG_TEST_RUN)",
        None,
    ),
    fig(
        "xdp_upstream_nat_vxlan_ns_per_pkt",
        "upstream NAT, VXLAN, established flow",
        None,
    ),
    fig(
        "xdp_downstream_nat_ns_per_pkt",
        "downstream NAT + QinQ encapsulation",
        None,
    ),
    fig(
        "xdp_new_flow_ns_per_pkt",
        "upstream, a new mapping per packet",
        None,
    ),
    fig(
        "xdp_fib_baseline_ns_per_pkt",
        "baseline: FIB lookup + MAC rewrite + redirect",
        None,
    ),
    fig(
        "xdp_upstream_vs_fib_ratio",
        "upstream QinQ NAT / baseline",
        Some(Target::AtMost(1.5)),
    ),
    fig(
        "xdp_upstream_nat_policed_ns_per_pkt",
        "upstream NAT, QinQ, established flow, the home under its speed tier",
        None,
    ),
    fig(
        "xdp_policed_vs_unpoliced_ratio",
        "the speed tier's cost: policed / unpoliced upstream QinQ NAT",
        Some(Target::AtMost(1.15)),
    ),
    fig(
        "xdp_upstream_v6_ns_per_pkt",
        "upstream IPv6, QinQ, routed (anti-spoofing, hop limit, FIB)",
        None,
    ),
    fig(
        "xdp_downstream_v6_ns_per_pkt",
        "downstream IPv6 + QinQ encapsulation, established neighbour",
        None,
    ),
    fig(
        "xdp_upstream_v6_vs_nat_ratio",
        "upstream IPv6 / upstream QinQ NAT (same run)",
        Some(Target::AtMost(1.0)),
    ),
    fig(
        "xdp_downstream_v6_vs_nat_ratio",
        "downstream IPv6 / downstream QinQ NAT (same run)",
        Some(Target::AtMost(1.0)),
    ),
    fig(
        "xdp_new_flow_mappings_per_s",
        "mapping creation rate (1e9 / new-flow ns)",
        Some(Target::AtLeast(1_000_000.0)),
    ),
    fig(
        "route_cache_light_flows_hit_pct",
        "route cache hits, 64 homes x 1 packet/s, route watch running",
        None,
    ),
    fig("vg_fwd_pps", "forwarded through the vG on veth", None),
    fig(
        "linux_nat_fwd_pps",
        "forwarded by Linux + nft masquerade + conntrack",
        None,
    ),
    fig(
        "xdp_redirect_limit_pps",
        "forwarded by a no-op XDP redirect",
        None,
    ),
    fig(
        "vg_vs_linux_ratio",
        "vG / Linux NAT forwarding",
        Some(Target::AtLeast(8.0)),
    ),
    fig(
        "vg_vs_redirect_limit_ratio",
        "vG / no-op XDP redirect",
        Some(Target::AtLeast(0.6)),
    ),
    fig(
        "vg_vs_fib_fwd_ratio",
        "vG / a plain XDP router (FIB lookup + redirect, no LSL, no NAT)",
        None,
    ),
    fig(
        "dhcp_engine_leases_per_s",
        "DORA in the DHCP engine alone (in-memory store)",
        Some(Target::AtLeast(20_000.0)),
    ),
    fig(
        "dhcpv6_engine_leases_per_s",
        "Solicit/Advertise/Request/Reply in the DHCPv6 engine alone (in-memory store)",
        Some(Target::AtLeast(20_000.0)),
    ),
    fig(
        "dhcp_wire_leases_per_s",
        "perfdhcp (as a relay, VXLAN LSL) against vgd, every ACK durable; highest rate with < 0.1% drops",
        None,
    ),
    fig(
        "kea_wire_leases_per_s",
        "perfdhcp against kea-dhcp4 (memfile), same set-up",
        None,
    ),
    fig(
        "dhcp_wire_vs_kea_ratio",
        "vgd / Kea over the wire",
        Some(Target::AtLeast(2.0)),
    ),
    fig(
        "dhcpv6_wire_leases_per_s",
        "perfdhcp -6 (VXLAN LSL) against vgd, every Reply durable; highest rate with < 0.1% drops",
        None,
    ),
    fig(
        "kea6_wire_leases_per_s",
        "perfdhcp -6 against kea-dhcp6 (memfile), same set-up",
        None,
    ),
    fig(
        "dhcpv6_wire_vs_kea_ratio",
        "vgd / Kea over the wire, DHCPv6",
        Some(Target::AtLeast(2.0)),
    ),
    fig(
        "provision_100k_s",
        "provision 100,000 subscribers through the API",
        Some(Target::AtMost(10.0)),
    ),
    fig(
        "nat_sessions_max",
        "NAT sessions the maps hold (map sizes)",
        Some(Target::AtLeast(1_000_000.0)),
    ),
    fig(
        "bytes_per_nat_session",
        "kernel map memory per NAT session (forward + reverse)",
        None,
    ),
    fig(
        "vgd_rss_100k_subs_mib",
        "vgd resident memory with 100,000 subscribers",
        None,
    ),
    fig(
        "cwmp_session_ms",
        "brgd: one Inform-to-204 CWMP session",
        None,
    ),
    fig("brgd_idle_rss_kib", "brgd idle resident memory", None),
    // 2.5 MB and 4 MB (issue 21), in KiB.
    fig(
        "brgd_aarch64_kib",
        "firmware: stripped static brgd for aarch64",
        Some(Target::AtMost(2_441.0)),
    ),
    fig(
        "brgd_armv7_kib",
        "firmware: stripped static brgd for armv7",
        Some(Target::AtMost(2_441.0)),
    ),
    fig(
        "brgd_firmware_idle_rss_kib",
        "firmware: brgd idle resident memory (x86_64 musl build)",
        Some(Target::AtMost(4_096.0)),
    ),
];

/// The figures of one bench run, and notes for the table.
#[derive(Debug, Default)]
pub struct Summary {
    values: BTreeMap<String, f64>,
    notes: BTreeMap<String, String>,
    remarks: Vec<String>,
}

impl Summary {
    /// Records figure `key` (non-finite values are refused: the JSON holds numbers only).
    pub fn set(&mut self, key: &str, value: f64) {
        assert!(value.is_finite(), "figure {key} is not finite: {value}");
        self.values.insert(key.to_owned(), value);
    }

    /// The recorded value of `key`.
    pub fn get(&self, key: &str) -> Option<f64> {
        self.values.get(key).copied()
    }

    /// Records why figure `key` is absent (or how to read it).
    pub fn note(&mut self, key: &str, note: impl Into<String>) {
        self.notes.insert(key.to_owned(), note.into());
    }

    /// A line printed under the table (set-up facts the reader needs).
    pub fn remark(&mut self, text: impl Into<String>) {
        self.remarks.push(text.into());
    }

    /// Every recorded figure.
    pub fn values(&self) -> &BTreeMap<String, f64> {
        &self.values
    }

    /// Sets `key` to `num / den` when both are recorded.
    pub fn ratio(&mut self, key: &str, num: &str, den: &str) {
        if let (Some(n), Some(d)) = (self.get(num), self.get(den))
            && d > 0.0
        {
            self.set(key, n / d);
        }
    }

    /// Writes the flat JSON object to `path` (creating its directory).
    pub fn write_json(&self, path: &Path) -> anyhow::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let map: serde_json::Map<String, serde_json::Value> = self
            .values
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::json!(v)))
            .collect();
        let text = serde_json::to_string_pretty(&serde_json::Value::Object(map))?;
        std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))
    }

    /// The human table: the required figures first (measured or not), then the others.
    pub fn table(&self) -> String {
        let mut rows: Vec<[String; 4]> = Vec::new();
        for f in REQUIRED {
            let (value, status) = match self.get(f.key) {
                Some(v) => (
                    fmt_num(v),
                    match f.target {
                        Some(t) if t.met(v) => "met".to_owned(),
                        Some(_) => "MISSED".to_owned(),
                        None => String::new(),
                    },
                ),
                None => ("not yet measured".to_owned(), String::new()),
            };
            let target = f.target.map(Target::show).unwrap_or_default();
            let status = match (status.is_empty(), target.is_empty()) {
                (true, true) => String::new(),
                (true, false) => target,
                (false, _) => format!("{target} {status}"),
            };
            rows.push([f.key.to_owned(), value, status, f.what.to_owned()]);
        }
        for (k, v) in &self.values {
            if REQUIRED.iter().all(|f| f.key != k) {
                rows.push([k.clone(), fmt_num(*v), String::new(), String::new()]);
            }
        }
        let head = ["figure", "value", "target", "what"];
        let widths: Vec<usize> = (0..3)
            .map(|i| {
                rows.iter()
                    .map(|r| r[i].len())
                    .chain([head[i].len()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut out = String::new();
        let line = |out: &mut String, r: [&str; 4]| {
            let _ = writeln!(
                out,
                "| {:<w0$} | {:>w1$} | {:<w2$} | {} |",
                r[0],
                r[1],
                r[2],
                r[3],
                w0 = widths[0],
                w1 = widths[1],
                w2 = widths[2]
            );
        };
        line(&mut out, head);
        let _ = writeln!(
            out,
            "|{}|{}|{}|---|",
            "-".repeat(widths[0] + 2),
            "-".repeat(widths[1] + 2),
            "-".repeat(widths[2] + 2)
        );
        for r in &rows {
            let note = self.notes.get(&r[0]);
            let what = match note {
                Some(n) if r[3].is_empty() => n.clone(),
                Some(n) => format!("{} ({n})", r[3]),
                None => r[3].clone(),
            };
            line(&mut out, [&r[0], &r[1], &r[2], &what]);
        }
        for r in &self.remarks {
            let _ = writeln!(out, "- {r}");
        }
        out
    }
}

/// A number for the table: integers plainly, small values with decimals.
pub fn fmt_num(v: f64) -> String {
    if v.abs() >= 1000.0 || v.fract() == 0.0 {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.3}")
    }
}

/// The median of `samples` (the mean of the middle two for an even count).
pub fn median(samples: &[f64]) -> f64 {
    assert!(!samples.is_empty(), "median of no samples");
    let mut s = samples.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

/// The machine the bench ran on: CPU model, CPUs, memory, kernel (for the README table).
pub fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem_gib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0 / 1024.0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default();
    format!("{cpu}, {cpus} CPUs, {mem_gib:.0} GiB, Linux {kernel}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
    }

    #[test]
    fn table_lists_required_figures_even_when_absent() {
        let mut s = Summary::default();
        s.set("xdp_fib_baseline_ns_per_pkt", 200.0);
        s.set("xdp_upstream_vs_fib_ratio", 1.7);
        let t = s.table();
        assert!(t.contains("provision_100k_s"));
        assert!(t.contains("not yet measured"));
        assert!(t.contains("MISSED"), "{t}");
    }
}
