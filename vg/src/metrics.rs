//! Prometheus exposition of the fast path's counters.
//!
//! The counters live in per-CPU eBPF maps; on each scrape they are read and the Prometheus
//! counters advanced to the map values, so `/metrics` is always current without a poller.

use prometheus::{Encoder, IntCounter, IntCounterVec, IntGauge, Opts, Registry, TextEncoder};

use crate::fastpath::CounterSnapshot;

/// The registry of `vgd`'s metrics.
pub struct Metrics {
    registry: Registry,
    fastpath: IntCounterVec,
    drops: IntCounterVec,
    /// Frames the slow path received, by punt reason.
    pub punts: IntCounterVec,
    /// What the slow path did with punted frames: `outcome` (replied, dhcp, dhcpv6, ipv6,
    /// ignored, send_failed) and a `detail` label.
    pub slowpath: IntCounterVec,
    /// DHCP messages from homes by type (discover, request, ...) and the reply (offer,
    /// ack, nak, no_reply).
    pub dhcp_messages: IntCounterVec,
    /// DHCPv6 messages from homes by type (solicit, request, ...) and the reply (advertise,
    /// reply, no_reply, store_failed).
    pub dhcp6_messages: IntCounterVec,
    /// What the homes' IPv6 routers did outside frame outcomes, by `event` (RAs sent,
    /// neighbours learnt and refused, NSs, resolutions): [`crate::slowpath::v6::V6Counts`].
    pub ipv6_router: IntCounterVec,
    /// Lease-store transactions by result (`ok`, `failed`): one per batch of punted frames
    /// (group commit) and per DHCP timer tick with something to store.
    pub dhcp_commits: IntCounterVec,
    /// Lease-store changes written by those transactions (changes per commit = this /
    /// `vg_dhcp_store_commits_total{result="ok"}`).
    pub dhcp_commit_ops: prometheus::IntCounter,
    /// How long successful lease-store transactions took (their fsync, mostly).
    pub dhcp_commit_seconds: prometheus::Histogram,
    /// NAT mappings in the tables at the last expiry sweep.
    pub nat_mappings: prometheus::IntGauge,
    /// NAT mappings expired by idleness.
    pub nat_expired: prometheus::IntCounter,
    /// Public ports released after their hold-down.
    pub nat_ports_released: prometheus::IntCounter,
    /// Homes configured (file and API).
    pub subscribers: prometheus::IntGauge,
    /// Bound DHCP leases over all homes.
    pub leases_in_use: prometheus::IntGauge,
    /// NAT port blocks per public address and state (owned, held, free).
    pub nat_blocks: prometheus::IntGaugeVec,
    /// IPv6 prefixes by state: `assigned` (homes with one), `held` (in hold-down), and
    /// `capacity` (how many of the default length the pools hold).
    pub ipv6_prefixes: prometheus::GaugeVec,
    /// Per-subscriber traffic (only with `--per-subscriber-metrics`): packets.
    pub sub_packets: IntCounterVec,
    /// Per-subscriber traffic: bytes.
    pub sub_bytes: IntCounterVec,
    /// HTTP connections refused by `listener` and `reason` ([`crate::http`]).
    pub http_refused: IntCounterVec,
    /// HTTP connections open, by `listener`.
    pub http_open: prometheus::IntGaugeVec,
    /// 1 while an XDP program is attached to vgd's interface of `role` (access, core), 0
    /// when none is (someone ran `ip link set dev X xdp off`, or the link went away):
    /// read from the kernel at each scrape, so the fast path's absence shows even though
    /// vgd itself runs on.
    pub xdp_attached: prometheus::IntGaugeVec,
    /// The homes that have per-subscriber series, so that a deleted home's go with it.
    sub_series: std::sync::Mutex<std::collections::BTreeSet<u32>>,
}

impl Metrics {
    /// Creates the registry with every metric family registered.
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let r = &registry;
        let fastpath = counters(
            r,
            "vg_xdp_counter_total",
            "Fast-path packet counters by counter name and CPU",
            &["counter", "cpu"],
        )?;
        let drops = counters(
            r,
            "vg_xdp_drops_total",
            "Frames dropped by the fast path, by reason and CPU",
            &["reason", "cpu"],
        )?;
        let punts = counters(
            r,
            "vg_slowpath_punts_total",
            "Frames handed to the slow path, by reason (\"malformed\": unreadable records)",
            &["reason"],
        )?;
        let slowpath = counters(
            r,
            "vg_slowpath_frames_total",
            "Punted frames by outcome (replied, dhcp, dhcpv6, ipv6, ignored, send_failed) and detail",
            &["outcome", "detail"],
        )?;
        let dhcp_messages = counters(
            r,
            "vg_dhcp_messages_total",
            "DHCP messages from homes by message type and reply (outcome)",
            &["message", "reply"],
        )?;
        let dhcp6_messages = counters(
            r,
            "vg_dhcpv6_messages_total",
            "DHCPv6 messages from homes by message type and reply (outcome)",
            &["message", "reply"],
        )?;
        let ipv6_router = counters(
            r,
            "vg_ipv6_router_events_total",
            "The homes' IPv6 routers: RAs sent, neighbours learnt/refused/evicted/expired, \
             NSs sent, resolutions, errors without a source address, table errors",
            &["event"],
        )?;
        let dhcp_commits = counters(
            r,
            "vg_dhcp_store_commits_total",
            "Lease-store transactions (one per batch of punted frames), by result",
            &["result"],
        )?;
        let dhcp_commit_ops = counter(
            r,
            "vg_dhcp_store_ops_total",
            "Lease-store changes written by successful transactions",
        )?;
        let dhcp_commit_seconds = registered(
            r,
            prometheus::Histogram::with_opts(
                prometheus::HistogramOpts::new(
                    "vg_dhcp_store_commit_seconds",
                    "Duration of successful lease-store transactions (fsync included)",
                )
                .buckets(vec![
                    0.000_25, 0.000_5, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
                ]),
            )?,
        )?;
        let nat_mappings = gauge(
            r,
            "vg_nat_mappings",
            "NAT mappings at the last expiry sweep",
        )?;
        let nat_expired = counter(
            r,
            "vg_nat_expired_total",
            "NAT mappings removed after their idle timer",
        )?;
        let nat_ports_released = counter(
            r,
            "vg_nat_ports_released_total",
            "Public ports released after the hold-down (RFC 6888 REQ-8)",
        )?;
        let subscribers = gauge(r, "vg_subscribers", "Homes configured (file and API)")?;
        let leases_in_use = gauge(r, "vg_dhcp_leases_in_use", "Bound DHCP leases, all homes")?;
        let nat_blocks = gauges(
            r,
            "vg_nat_port_blocks",
            "NAT port blocks per public address, by state (owned, held, free)",
            &["address", "state"],
        )?;
        let ipv6_prefixes = registered(
            r,
            prometheus::GaugeVec::new(
                prometheus::Opts::new(
                    "vg_ipv6_prefixes",
                    "IPv6 prefixes of homes by state (assigned, held, capacity)",
                ),
                &["state"],
            )?,
        )?;
        let sub_packets = counters(
            r,
            "vg_subscriber_packets_total",
            "Packets per home and direction (up, down, up_dropped; up_policed, down_policed: \
             over the home's speed tier); --per-subscriber-metrics",
            &["subscriber", "direction"],
        )?;
        let sub_bytes = counters(
            r,
            "vg_subscriber_bytes_total",
            "Bytes per home and direction (up, down; up_policed, down_policed: IPv4 bytes \
             over the home's speed tier); --per-subscriber-metrics",
            &["subscriber", "direction"],
        )?;
        let http_refused = counters(
            r,
            "vg_http_connections_refused_total",
            "HTTP connections closed as soon as accepted, by listener and the limit reached",
            &["listener", "reason"],
        )?;
        let http_open = gauges(
            r,
            "vg_http_connections_open",
            "HTTP connections open, by listener",
            &["listener"],
        )?;
        let xdp_attached = gauges(
            r,
            "vg_xdp_attached",
            "1 while an XDP program is attached to vgd's interface of this role, else 0",
            &["role"],
        )?;
        register_process_and_build(r)?;
        Ok(Self {
            registry,
            fastpath,
            drops,
            punts,
            slowpath,
            dhcp_messages,
            dhcp6_messages,
            ipv6_router,
            dhcp_commits,
            dhcp_commit_ops,
            dhcp_commit_seconds,
            nat_mappings,
            nat_expired,
            nat_ports_released,
            subscribers,
            leases_in_use,
            nat_blocks,
            ipv6_prefixes,
            sub_packets,
            sub_bytes,
            http_refused,
            http_open,
            xdp_attached,
            sub_series: std::sync::Mutex::default(),
        })
    }

    /// Sets `vg_xdp_attached` for each `(role, ifindex)` from what the kernel reports over
    /// rtnetlink; an interface the kernel cannot report on counts as detached.
    pub async fn update_xdp_attached(&self, interfaces: &[(&'static str, u32)]) {
        for &(role, ifindex) in interfaces {
            let attached = match xdp_attached(ifindex).await {
                Ok(attached) => attached,
                Err(err) => {
                    tracing::warn!(role, ifindex, error = %err, "cannot read the XDP attachment");
                    false
                }
            };
            self.xdp_attached
                .with_label_values(&[role])
                .set(i64::from(attached));
        }
    }

    /// The connection statistics of HTTP listener `listener`.
    pub fn http(&self, listener: &'static str) -> crate::http::Stats {
        // The refusal series exist from the start at 0, so that a rate over them reads 0
        // (not "no data") until a limit is first reached.
        for reason in ["max_connections", "max_per_client"] {
            self.http_refused.with_label_values(&[listener, reason]);
        }
        crate::http::Stats {
            listener,
            refused: self.http_refused.clone(),
            open: self.http_open.clone(),
        }
    }

    /// Counts a lease-store commit of the slow path or the DHCP timers.
    pub fn count_commit(&self, commit: crate::slowpath::responder::Commit) {
        use crate::slowpath::responder::Commit;
        match commit {
            Commit::Nothing => {}
            Commit::Committed { ops, took } => {
                self.dhcp_commits.with_label_values(&["ok"]).inc();
                self.dhcp_commit_ops.inc_by(ops as u64);
                self.dhcp_commit_seconds.observe(took.as_secs_f64());
            }
            Commit::Failed => self.dhcp_commits.with_label_values(&["failed"]).inc(),
        }
    }

    /// Adds what the IPv6 routers counted.
    pub fn count_v6(&self, counts: &crate::slowpath::v6::V6Counts) {
        for (event, n) in counts.labelled() {
            if n > 0 {
                self.ipv6_router.with_label_values(&[event]).inc_by(n);
            }
        }
    }

    /// Sets the NAT block gauges from the pool usage.
    pub fn update_pool(&self, pool: &crate::control::PoolView) {
        for a in &pool.addresses {
            let ip = a.address.to_string();
            for (state, n) in [("owned", a.owned), ("held", a.held), ("free", a.free)] {
                self.nat_blocks
                    .with_label_values(&[ip.as_str(), state])
                    .set(i64::from(n));
            }
        }
    }

    /// Sets the IPv6 prefix gauges.
    pub fn update_prefixes(&self, stats: &crate::ipv6::PrefixStats) {
        let g = &self.ipv6_prefixes;
        g.with_label_values(&["assigned"])
            .set(stats.assigned as f64);
        g.with_label_values(&["held"]).set(stats.held as f64);
        g.with_label_values(&["capacity"]).set(stats.capacity);
    }

    /// The per-subscriber series of `homes` (every home there is, with its counters): a
    /// home no longer there loses its series; one whose counters went back (deleted and
    /// created again under the same id, its counters zeroed) starts its series again, which
    /// Prometheus reads as a counter reset.
    pub fn update_subscribers(&self, homes: &[(u32, nerg_abi::SubCounters)]) {
        let mut series = self
            .sub_series
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now: std::collections::BTreeSet<u32> = homes.iter().map(|(id, _)| *id).collect();
        for gone in series.difference(&now) {
            self.remove_subscriber_series(&gone.to_string());
        }
        for (id, c) in homes {
            self.update_subscriber(*id, c);
        }
        *series = now;
    }

    /// Home counters `c` as (family, direction label, value): every per-subscriber series.
    fn subscriber_values(&self, c: &nerg_abi::SubCounters) -> [(&IntCounterVec, &str, u64); 9] {
        [
            (&self.sub_packets, "up", c.up_packets),
            (&self.sub_packets, "down", c.down_packets),
            (&self.sub_packets, "up_dropped", c.up_drops),
            (&self.sub_packets, "up_policed", c.up_policed_packets),
            (&self.sub_packets, "down_policed", c.down_policed_packets),
            (&self.sub_bytes, "up", c.up_bytes),
            (&self.sub_bytes, "down", c.down_bytes),
            (&self.sub_bytes, "up_policed", c.up_policed_bytes),
            (&self.sub_bytes, "down_policed", c.down_policed_bytes),
        ]
    }

    /// Advances home `id`'s traffic counters to `c`.
    fn update_subscriber(&self, id: u32, c: &nerg_abi::SubCounters) {
        let id = id.to_string();
        let values = self.subscriber_values(c);
        let went_back = values.iter().any(|(family, dir, v)| {
            family
                .get_metric_with_label_values(&[id.as_str(), dir])
                .is_ok_and(|counter| *v < counter.get())
        });
        if went_back {
            self.remove_subscriber_series(&id);
        }
        for (family, dir, v) in values {
            let counter = family.with_label_values(&[id.as_str(), dir]);
            counter.inc_by(v - counter.get());
        }
    }

    fn remove_subscriber_series(&self, id: &str) {
        for (family, dir, _) in self.subscriber_values(&nerg_abi::SubCounters::default()) {
            let _ = family.remove_label_values(&[id, dir]);
        }
    }

    /// Advances the counters to the values in `snapshot`.
    pub fn update(&self, snapshot: &CounterSnapshot) {
        for (counter, per_cpu) in &snapshot.counters {
            advance(&self.fastpath, counter.label(), per_cpu);
        }
        for (reason, per_cpu) in &snapshot.drops {
            advance(&self.drops, reason.label(), per_cpu);
        }
    }

    /// The text exposition format of every metric.
    pub fn encode(&self) -> Result<String, prometheus::Error> {
        let mut buf = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut buf)?;
        String::from_utf8(buf).map_err(|e| prometheus::Error::Msg(e.to_string()))
    }
}

/// Whether the kernel reports an XDP program attached to interface `ifindex` (in vgd's
/// network namespace), in any mode.
async fn xdp_attached(ifindex: u32) -> anyhow::Result<bool> {
    use futures::TryStreamExt as _;
    use rtnetlink::packet_route::link::{LinkAttribute, LinkXdp, XdpAttached};
    let (conn, handle, _) = rtnetlink::new_connection()?;
    let task = tokio::spawn(conn);
    let link = handle
        .link()
        .get()
        .match_index(ifindex)
        .execute()
        .try_next()
        .await;
    task.abort();
    let link = link?.ok_or_else(|| anyhow::anyhow!("no interface with index {ifindex}"))?;
    Ok(link.attributes.iter().any(|a| {
        matches!(a, LinkAttribute::Xdp(xdp) if xdp.iter().any(|x| matches!(
            x,
            LinkXdp::Attached(mode) if *mode != XdpAttached::None
        )))
    }))
}

/// The standard `process_*` series (CPU seconds, resident and virtual memory, open and
/// maximum file descriptors, threads, start time; read from `/proc/self` at each scrape)
/// and `vg_build_info`, a constant 1 whose labels say which build answers, so that a
/// dashboard or an alert can tell a rollout apart from a regression.
fn register_process_and_build(registry: &Registry) -> Result<(), prometheus::Error> {
    #[cfg(target_os = "linux")]
    registry.register(Box::new(
        prometheus::process_collector::ProcessCollector::for_self(),
    ))?;
    let build = prometheus::IntGaugeVec::new(
        Opts::new(
            "vg_build_info",
            "A constant 1, labelled with vgd's version, target and profile",
        ),
        &["version", "target", "profile"],
    )?;
    // `<arch>-<os>`: the CPU and system vgd was built for.
    let target = format!("{}-{}", std::env::consts::ARCH, std::env::consts::OS);
    build
        .with_label_values(&[BUILD_VERSION, target.as_str(), BUILD_PROFILE])
        .set(1);
    registry.register(Box::new(build))
}

/// The crate version vgd was built from.
const BUILD_VERSION: &str = env!("CARGO_PKG_VERSION");
/// `release` or `debug` (debug assertions on).
const BUILD_PROFILE: &str = if cfg!(debug_assertions) {
    "debug"
} else {
    "release"
};

fn advance(family: &IntCounterVec, label: &str, per_cpu: &[u64]) {
    for (cpu, &value) in per_cpu.iter().enumerate() {
        let counter = family.with_label_values(&[label, &cpu.to_string()]);
        // Map counters only grow; a smaller value means the maps were recreated, which
        // Prometheus sees as the process' counter staying flat until it catches up.
        if let Some(delta) = value.checked_sub(counter.get()) {
            counter.inc_by(delta);
        }
    }
}

/// `c`, registered in `r`.
fn registered<C>(r: &Registry, c: C) -> Result<C, prometheus::Error>
where
    C: prometheus::core::Collector + Clone + 'static,
{
    r.register(Box::new(c.clone()))?;
    Ok(c)
}

/// A counter `name`, registered in `r`.
fn counter(r: &Registry, name: &str, help: &str) -> Result<IntCounter, prometheus::Error> {
    registered(r, IntCounter::new(name, help)?)
}

/// A gauge `name`, registered in `r`.
fn gauge(r: &Registry, name: &str, help: &str) -> Result<IntGauge, prometheus::Error> {
    registered(r, IntGauge::new(name, help)?)
}

/// A counter family `name` with `labels`, registered in `r`.
fn counters(
    r: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> Result<IntCounterVec, prometheus::Error> {
    registered(r, IntCounterVec::new(Opts::new(name, help), labels)?)
}

/// A gauge family `name` with `labels`, registered in `r`.
fn gauges(
    r: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> Result<prometheus::IntGaugeVec, prometheus::Error> {
    registered(
        r,
        prometheus::IntGaugeVec::new(Opts::new(name, help), labels)?,
    )
}

#[cfg(test)]
mod tests {
    use nerg_abi::{Counter, DropReason};

    use super::*;

    #[test]
    fn process_series_and_build_info_are_exposed() {
        let text = Metrics::new().unwrap().encode().unwrap();
        for series in [
            "process_cpu_seconds_total ",
            "process_resident_memory_bytes ",
            "process_open_fds ",
            "process_start_time_seconds ",
        ] {
            assert!(text.contains(series), "{series} missing from:\n{text}");
        }
        let build = text
            .lines()
            .find(|l| l.starts_with("vg_build_info{"))
            .unwrap_or_else(|| panic!("no vg_build_info in:\n{text}"));
        assert!(
            build.contains(&format!("version=\"{}\"", env!("CARGO_PKG_VERSION")))
                && build.ends_with(" 1"),
            "{build}"
        );
    }

    #[test]
    fn exposition_tracks_snapshot() {
        let m = Metrics::new().unwrap();
        let mut snap = CounterSnapshot {
            counters: vec![(Counter::AccessRxPackets, vec![3, 4])],
            drops: vec![(DropReason::Truncated, vec![0, 1])],
        };
        m.update(&snap);
        snap.counters[0].1 = vec![10, 4];
        m.update(&snap);
        let text = m.encode().unwrap();
        assert!(text.contains(r#"vg_xdp_counter_total{counter="access_rx_packets",cpu="0"} 10"#));
        assert!(text.contains(r#"vg_xdp_counter_total{counter="access_rx_packets",cpu="1"} 4"#));
        assert!(text.contains(r#"vg_xdp_drops_total{cpu="1",reason="truncated"} 1"#));
    }

    #[test]
    fn per_subscriber_series_follow_the_map() {
        let m = Metrics::new().unwrap();
        let mut c = nerg_abi::SubCounters {
            up_packets: 5,
            up_bytes: 700,
            ..Default::default()
        };
        m.update_subscribers(&[(42, c)]);
        c.up_packets = 9;
        m.update_subscribers(&[(42, c)]);
        let text = m.encode().unwrap();
        assert!(
            text.contains(r#"vg_subscriber_packets_total{direction="up",subscriber="42"} 9"#),
            "{text}"
        );
        assert!(
            text.contains(r#"vg_subscriber_bytes_total{direction="up",subscriber="42"} 700"#),
            "{text}"
        );
    }

    #[test]
    fn a_deleted_homes_series_go_and_a_recreated_one_starts_again() {
        let m = Metrics::new().unwrap();
        let busy = nerg_abi::SubCounters {
            up_packets: 50,
            down_packets: 40,
            up_bytes: 5_000,
            down_bytes: 4_000,
            ..Default::default()
        };
        let homes: Vec<_> = (1..=1_500).map(|id| (id, busy)).collect();
        m.update_subscribers(&homes);
        assert_eq!(
            m.encode().unwrap().matches("vg_subscriber_").count(),
            1_500 * 9 + 4,
            "nine series per home (five of traffic, four over its tier), and the two \
             families' HELP and TYPE lines"
        );
        // Every home but one deleted: their series go.
        m.update_subscribers(&[(7, busy)]);
        let text = m.encode().unwrap();
        assert!(!text.contains(r#"subscriber="8""#), "{text}");
        assert_eq!(text.matches("vg_subscriber_").count(), 9 + 4, "{text}");
        // Home 7 deleted and created again between two scrapes: its map counters start
        // from zero, and so do its series (a counter reset), instead of staying flat.
        let fresh = nerg_abi::SubCounters {
            up_packets: 3,
            ..Default::default()
        };
        m.update_subscribers(&[(7, fresh)]);
        let text = m.encode().unwrap();
        assert!(
            text.contains(r#"vg_subscriber_packets_total{direction="up",subscriber="7"} 3"#),
            "{text}"
        );
        assert!(
            text.contains(r#"vg_subscriber_packets_total{direction="down",subscriber="7"} 0"#),
            "{text}"
        );
        // No homes at all: no series.
        m.update_subscribers(&[]);
        assert!(!m.encode().unwrap().contains("subscriber=\""));
    }
}
