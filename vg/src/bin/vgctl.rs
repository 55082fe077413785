//! `vgctl`: operate a running vG.
//!
//! `vgctl stats` reads the fast path's counters straight from their bpffs pins, so it works
//! even when vgd's API is unreachable. Everything else goes through vgd's REST API
//! (`--api`, default `http://127.0.0.1:9180`) with the bearer token from `--token-file` or
//! `VGCTL_TOKEN`. Tables for people, `--json` for scripts (the API's JSON, unchanged).

use std::{net::Ipv4Addr, path::PathBuf, time::Duration};

use anyhow::{Context as _, bail};
use clap::{Parser, Subcommand};
use serde_json::Value;
use vg::{
    config::{NatPolicyFile, PortForwardFile, Proto, SubscriberFile},
    fastpath::{Counters, bpffs},
    ipv6::Ipv6PolicyFile,
    nat::Filtering,
    qos::QosFile,
};
use vg_engines::nat::event::UnixTime;

/// Command-line interface.
#[derive(Debug, Parser)]
#[command(version, about = "Operate a NERG virtual Gateway")]
struct Args {
    /// Where bpffs is mounted (stats).
    #[arg(long, env = "VGD_BPFFS", default_value = bpffs::DEFAULT_MOUNT, global = true)]
    bpffs: PathBuf,
    /// vgd instance name (stats).
    #[arg(long, env = "VGD_INSTANCE", default_value = "default", global = true)]
    instance: String,
    /// vgd's API base URL.
    #[arg(
        long,
        env = "VGCTL_API",
        default_value = "http://127.0.0.1:9180",
        global = true
    )]
    api: String,
    /// File holding the API token (else `VGCTL_TOKEN`).
    #[arg(long, env = "VGCTL_TOKEN_FILE", global = true)]
    token_file: Option<PathBuf>,
    /// Print JSON instead of a table.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Fast-path counters and drops, per CPU (from bpffs; no API needed).
    Stats,
    /// Homes.
    #[command(subcommand)]
    Subscribers(SubCmd),
    /// A home's port forwards.
    #[command(subcommand, name = "port-forwards")]
    PortForwards(FwdCmd),
    /// A home's hosts (the fast path's host table).
    Hosts {
        /// Subscriber id.
        id: u32,
    },
    /// A home's DHCP leases.
    Leases {
        /// Subscriber id.
        id: u32,
    },
    /// NAT.
    #[command(subcommand)]
    Nat(NatCmd),
    /// IPv6.
    #[command(subcommand)]
    Ipv6(Ipv6Cmd),
}

#[derive(Debug, Subcommand)]
enum Ipv6Cmd {
    /// The prefix pools: prefixes assigned, held down, and how many the pools hold.
    Pool,
}

#[derive(Debug, Subcommand)]
enum SubCmd {
    /// Every home.
    List,
    /// One home.
    Get {
        /// Subscriber id.
        id: u32,
    },
    /// Create a home (from flags, or `--body` with the API's JSON).
    Add(SubFields),
    /// Change a home: the flags given replace those fields.
    Update(SubFields),
    /// Delete a home.
    Delete {
        /// Subscriber id.
        id: u32,
    },
    /// Create many homes in one transaction from a JSON file `{"subscribers": [...]}`.
    Bulk {
        /// The file.
        file: PathBuf,
    },
}

#[derive(Debug, clap::Args)]
struct SubFields {
    /// Subscriber id.
    id: u32,
    /// LSL: `vlan:<c>`, `qinq:<s>.<c>`, `vxlan:<vni>@<brg vtep>`.
    #[arg(long)]
    lsl: Option<String>,
    /// Gateway address and LAN prefix, e.g. 192.168.1.1/24.
    #[arg(long)]
    gateway: Option<String>,
    /// Pin the public address.
    #[arg(long)]
    public_ip: Option<Ipv4Addr>,
    /// Port blocks.
    #[arg(long)]
    blocks: Option<u8>,
    /// Session limit (0 = none).
    #[arg(long)]
    session_limit: Option<u32>,
    /// Filtering: endpoint-independent or address-and-port-dependent.
    #[arg(long, value_parser = parse_filtering)]
    filtering: Option<Filtering>,
    /// TCP MSS clamp (0 = off).
    #[arg(long)]
    tcp_mss: Option<u16>,
    /// Speed tier, to the home: a rate such as 100M or 1G, or `none`.
    #[arg(long)]
    down: Option<String>,
    /// Speed tier, from the home: a rate such as 20M, or `none`.
    #[arg(long)]
    up: Option<String>,
    /// The tier's burst, in milliseconds at the rate.
    #[arg(long)]
    burst_ms: Option<u32>,
    /// IPv6: `off`, `default` (the `[ipv6]` length), a length (`60`) or a prefix
    /// (`2001:db8:100:ff00::/56`).
    #[arg(long, value_parser = parse_ipv6)]
    ipv6: Option<Ipv6Arg>,
    /// The whole body as JSON (a file); flags given override its fields.
    #[arg(long)]
    body: Option<PathBuf>,
}

/// `--ipv6`'s value.
#[derive(Clone, Debug)]
enum Ipv6Arg {
    Default,
    Policy(Ipv6PolicyFile),
}

fn parse_ipv6(s: &str) -> Result<Ipv6Arg, String> {
    let policy = match s {
        "default" => return Ok(Ipv6Arg::Default),
        "off" => Ipv6PolicyFile {
            enabled: Some(false),
            ..Ipv6PolicyFile::default()
        },
        _ if s.contains('/') => Ipv6PolicyFile {
            prefix: Some(s.to_owned()),
            ..Ipv6PolicyFile::default()
        },
        _ => Ipv6PolicyFile {
            length: Some(
                s.parse()
                    .map_err(|_| "off, default, a length or a prefix".to_owned())?,
            ),
            ..Ipv6PolicyFile::default()
        },
    };
    Ok(Ipv6Arg::Policy(policy))
}

fn parse_filtering(s: &str) -> Result<Filtering, String> {
    match s {
        "endpoint-independent" | "eif" => Ok(Filtering::EndpointIndependent),
        "address-and-port-dependent" | "apdf" => Ok(Filtering::AddressAndPortDependent),
        _ => Err("endpoint-independent or address-and-port-dependent".into()),
    }
}

#[derive(Debug, Subcommand)]
enum FwdCmd {
    /// A home's port forwards.
    List {
        /// Subscriber id.
        id: u32,
    },
    /// Forward a public port of the home to a host.
    Add {
        /// Subscriber id.
        id: u32,
        /// tcp or udp.
        #[arg(long)]
        proto: Proto,
        /// Public port (inside the home's blocks).
        #[arg(long)]
        public_port: u16,
        /// The host.
        #[arg(long)]
        private_ip: Ipv4Addr,
        /// The host's port.
        #[arg(long)]
        private_port: u16,
    },
    /// Remove a forward.
    Delete {
        /// Subscriber id.
        id: u32,
        /// tcp or udp.
        proto: Proto,
        /// Public port.
        port: u16,
    },
}

#[derive(Debug, Subcommand)]
enum NatCmd {
    /// Public address and port blocks per home.
    Blocks {
        /// Only this home.
        #[arg(long)]
        subscriber: Option<u32>,
    },
    /// Pool usage per public address.
    Pool,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    match &args.command {
        Command::Stats => stats(&args),
        _ => api(&args),
    }
}

/// The API client: base URL, token, an agent that returns error statuses as responses.
struct Client {
    base: String,
    token: String,
    agent: ureq::Agent,
}

impl Client {
    fn new(args: &Args) -> anyhow::Result<Self> {
        let token = match &args.token_file {
            Some(p) => std::fs::read_to_string(p)
                .with_context(|| format!("reading the token file {}", p.display()))?,
            None => std::env::var("VGCTL_TOKEN")
                .context("no API token: give --token-file or set VGCTL_TOKEN")?,
        };
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(120)))
            .build()
            .new_agent();
        Ok(Self {
            base: args.api.trim_end_matches('/').to_owned(),
            token: token.trim().to_owned(),
            agent,
        })
    }

    /// Sends a call; returns the JSON answer (Null for 204), or the API's error message.
    fn call(&self, method: &str, path: &str, body: Option<&Value>) -> anyhow::Result<Value> {
        let url = format!("{}{path}", self.base);
        let auth = format!("Bearer {}", self.token);
        let sent = match (method, body) {
            ("GET", _) => self.agent.get(&url).header("Authorization", &auth).call(),
            ("DELETE", _) => self
                .agent
                .delete(&url)
                .header("Authorization", &auth)
                .call(),
            ("POST", Some(b)) => self
                .agent
                .post(&url)
                .header("Authorization", &auth)
                .send_json(b),
            ("PUT", Some(b)) => self
                .agent
                .put(&url)
                .header("Authorization", &auth)
                .send_json(b),
            _ => bail!("internal: {method} without a body"),
        };
        let mut resp =
            sent.with_context(|| format!("calling {url} (is vgd running with an API token?)"))?;
        let status = resp.status();
        let text = resp
            .body_mut()
            .read_to_string()
            .with_context(|| format!("reading the answer of {url}"))?;
        if status.as_u16() == 204 {
            return Ok(Value::Null);
        }
        let value: Value = serde_json::from_str(&text)
            .with_context(|| format!("{url} answered {status} with non-JSON: {text}"))?;
        if !status.is_success() {
            let msg = value
                .get("error")
                .and_then(Value::as_str)
                .unwrap_or(text.as_str());
            bail!("{status}: {msg}");
        }
        Ok(value)
    }
}

fn api(args: &Args) -> anyhow::Result<()> {
    let c = Client::new(args)?;
    let (value, table): (Value, fn(&Value)) = match &args.command {
        Command::Stats => unreachable!("handled in main"),
        Command::Subscribers(SubCmd::List) => (
            c.call("GET", "/api/v1/subscribers", None)?,
            subscribers_table,
        ),
        Command::Subscribers(SubCmd::Get { id }) => (
            c.call("GET", &format!("/api/v1/subscribers/{id}"), None)?,
            one_subscriber,
        ),
        Command::Subscribers(SubCmd::Add(f)) => {
            let body = fields_to_body(f, None)?;
            (
                c.call("POST", "/api/v1/subscribers", Some(&body))?,
                one_subscriber,
            )
        }
        Command::Subscribers(SubCmd::Update(f)) => {
            let current = c.call("GET", &format!("/api/v1/subscribers/{}", f.id), None)?;
            let body = fields_to_body(f, Some(current))?;
            (
                c.call("PUT", &format!("/api/v1/subscribers/{}", f.id), Some(&body))?,
                one_subscriber,
            )
        }
        Command::Subscribers(SubCmd::Delete { id }) => {
            c.call("DELETE", &format!("/api/v1/subscribers/{id}"), None)?;
            (serde_json::json!({"deleted": id}), |_| println!("deleted"))
        }
        Command::Subscribers(SubCmd::Bulk { file }) => {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("reading {}", file.display()))?;
            let body: Value = serde_json::from_str(&text)
                .with_context(|| format!("{} is not JSON", file.display()))?;
            (
                c.call("POST", "/api/v1/subscribers/bulk", Some(&body))?,
                |v| println!("created {}", v["created"]),
            )
        }
        Command::PortForwards(FwdCmd::List { id }) => (
            c.call(
                "GET",
                &format!("/api/v1/subscribers/{id}/port-forwards"),
                None,
            )?,
            forwards_table,
        ),
        Command::PortForwards(FwdCmd::Add {
            id,
            proto,
            public_port,
            private_ip,
            private_port,
        }) => {
            let body = serde_json::to_value(PortForwardFile {
                proto: *proto,
                public_port: *public_port,
                private_ip: *private_ip,
                private_port: *private_port,
            })?;
            (
                c.call(
                    "POST",
                    &format!("/api/v1/subscribers/{id}/port-forwards"),
                    Some(&body),
                )?,
                |v| forwards_table(&Value::Array(vec![v.clone()])),
            )
        }
        Command::PortForwards(FwdCmd::Delete { id, proto, port }) => {
            c.call(
                "DELETE",
                &format!("/api/v1/subscribers/{id}/port-forwards/{proto}/{port}"),
                None,
            )?;
            (serde_json::json!({"deleted": true}), |_| {
                println!("deleted")
            })
        }
        Command::Hosts { id } => (
            c.call("GET", &format!("/api/v1/subscribers/{id}/hosts"), None)?,
            |v| {
                table(
                    &["IP", "MAC", "KIND"],
                    rows(v, &[&["ip"], &["mac"], &["kind"]]),
                )
            },
        ),
        Command::Leases { id } => (
            c.call("GET", &format!("/api/v1/subscribers/{id}/leases"), None)?,
            |v| {
                table(
                    &["IP", "MAC", "STATE", "UNTIL (UTC)", "LEFT", "HOSTNAME"],
                    lease_rows(v, unix_now()),
                )
            },
        ),
        Command::Nat(NatCmd::Blocks { subscriber }) => match subscriber {
            Some(id) => (
                c.call("GET", &format!("/api/v1/subscribers/{id}/nat-blocks"), None)?,
                |v| blocks_table(&Value::Array(vec![v.clone()])),
            ),
            None => (c.call("GET", "/api/v1/nat/blocks", None)?, blocks_table),
        },
        Command::Ipv6(Ipv6Cmd::Pool) => (c.call("GET", "/api/v1/ipv6/pool", None)?, |v| {
            let pools = v["pools"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .unwrap_or_default();
            table(
                &["POOLS", "LENGTH", "ASSIGNED", "HELD", "CAPACITY"],
                vec![vec![
                    pools,
                    cell(v, &["delegated_length"]),
                    cell(v, &["assigned"]),
                    cell(v, &["held"]),
                    cell(v, &["capacity"]),
                ]],
            )
        }),
        Command::Nat(NatCmd::Pool) => (c.call("GET", "/api/v1/nat/pool", None)?, |v| {
            table(
                &["ADDRESS", "SUBSCRIBERS", "OWNED", "HELD", "FREE"],
                rows(
                    &v["addresses"],
                    &[
                        &["address"],
                        &["subscribers"],
                        &["owned"],
                        &["held"],
                        &["free"],
                    ],
                ),
            )
        }),
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        table(&value);
    }
    Ok(())
}

/// The API body of `add`/`update`: `--body` or the current home, then the flags.
fn fields_to_body(f: &SubFields, current: Option<Value>) -> anyhow::Result<Value> {
    let mut sub: SubscriberFile = match (&f.body, current) {
        (Some(path), _) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            serde_json::from_str(&text).with_context(|| format!("{}", path.display()))?
        }
        (None, Some(mut cur)) => {
            // What the API shows beyond the home as written.
            if let Some(o) = cur.as_object_mut() {
                for k in [
                    "source",
                    "tcp_mss_effective",
                    "nat_assignment",
                    "ipv6_assignment",
                ] {
                    o.remove(k);
                }
            }
            serde_json::from_value(cur).context("the API's answer is not a home")?
        }
        (None, None) => SubscriberFile {
            id: f.id,
            lsl: f.lsl.clone().context("--lsl is needed to create a home")?,
            gateway: "192.168.1.1/24".into(),
            hosts: Vec::new(),
            dhcp: None,
            nat: None,
            port_forwards: Vec::new(),
            tcp_mss: None,
            qos: None,
            ipv6: None,
        },
    };
    sub.id = f.id;
    if let Some(l) = &f.lsl {
        sub.lsl = l.clone();
    }
    if let Some(g) = &f.gateway {
        sub.gateway = g.clone();
    }
    if f.public_ip.is_some()
        || f.blocks.is_some()
        || f.session_limit.is_some()
        || f.filtering.is_some()
    {
        let nat = sub.nat.get_or_insert_with(NatPolicyFile::default);
        if f.public_ip.is_some() {
            nat.public_ip = f.public_ip;
        }
        if f.blocks.is_some() {
            nat.blocks = f.blocks;
        }
        if f.session_limit.is_some() {
            nat.session_limit = f.session_limit;
        }
        if f.filtering.is_some() {
            nat.filtering = f.filtering;
        }
    }
    if f.tcp_mss.is_some() {
        sub.tcp_mss = f.tcp_mss;
    }
    if f.down.is_some() || f.up.is_some() || f.burst_ms.is_some() {
        let qos = sub.qos.get_or_insert_with(QosFile::default);
        // `none` lifts the limit in that direction.
        let rate = |v: &String| (v != "none").then(|| v.clone());
        if let Some(d) = &f.down {
            qos.down = rate(d);
        }
        if let Some(u) = &f.up {
            qos.up = rate(u);
        }
        if f.burst_ms.is_some() {
            qos.burst_ms = f.burst_ms;
        }
        if *qos == QosFile::default() {
            sub.qos = None;
        }
    }
    match &f.ipv6 {
        None => {}
        Some(Ipv6Arg::Default) => sub.ipv6 = None,
        Some(Ipv6Arg::Policy(p)) => sub.ipv6 = Some(p.clone()),
    }
    Ok(serde_json::to_value(sub)?)
}

fn cell(v: &Value, path: &[&str]) -> String {
    let mut cur = v;
    for k in path {
        cur = &cur[*k];
    }
    match cur {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn rows(v: &Value, cols: &[&[&str]]) -> Vec<Vec<String>> {
    v.as_array()
        .map(|a| {
            a.iter()
                .map(|item| cols.iter().map(|c| cell(item, c)).collect())
                .collect()
        })
        .unwrap_or_default()
}

fn table(header: &[&str], rows: Vec<Vec<String>>) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.len());
        }
    }
    let line = |cells: Vec<String>| {
        let parts: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        println!("{}", parts.join("  ").trim_end());
    };
    line(header.iter().map(|h| (*h).to_owned()).collect());
    for r in rows {
        line(r);
    }
}

/// The lines of `vgctl stats`: each column as wide as its widest cell (drop reasons such
/// as `drop:nat_ports_exhausted` are longer than any width fixed once), numbers right-aligned.
fn stats_lines(report: &vg::fastpath::counters::CounterReport) -> Vec<String> {
    let rows: Vec<(String, &vg::fastpath::counters::CounterRow)> = report
        .counters
        .iter()
        .map(|r| (r.name.to_owned(), r))
        .chain(report.drops.iter().map(|r| (format!("drop:{}", r.name), r)))
        .collect();
    let cpus = rows.iter().map(|(_, r)| r.per_cpu.len()).max().unwrap_or(0);
    let mut cells: Vec<Vec<String>> = vec![
        ["COUNTER".to_owned(), "TOTAL".to_owned()]
            .into_iter()
            .chain((0..cpus).map(|c| format!("cpu{c}")))
            .collect(),
    ];
    for (name, r) in &rows {
        cells.push(
            [name.clone(), r.total.to_string()]
                .into_iter()
                .chain(r.per_cpu.iter().map(u64::to_string))
                .collect(),
        );
    }
    let widths: Vec<usize> = (0..cpus + 2)
        .map(|col| {
            cells
                .iter()
                .filter_map(|c| c.get(col))
                .map(String::len)
                .max()
                .unwrap_or(0)
        })
        .collect();
    cells
        .iter()
        .map(|row| {
            row.iter()
                .zip(&widths)
                .enumerate()
                .map(|(col, (cell, w))| {
                    if col == 0 {
                        format!("{cell:<w$}")
                    } else {
                        format!(" {cell:>w$}")
                    }
                })
                .collect()
        })
        .collect()
}

/// The rows of `vgctl leases`: the API gives a lease's end as a Unix time, which an
/// operator cannot read at a glance; show it as a UTC date and as the time left from `now`.
fn lease_rows(v: &Value, now: u64) -> Vec<Vec<String>> {
    let mut rows = rows(v, &[&["ip"], &["mac"], &["state"]]);
    let ends = v.as_array().map(Vec::as_slice).unwrap_or_default();
    for (row, lease) in rows.iter_mut().zip(ends) {
        let (until, left) = match lease["time"].as_u64() {
            Some(end) => (
                UnixTime::from_secs(end).rfc3339().to_string(),
                time_left(end, now),
            ),
            None => ("-".into(), "-".into()),
        };
        row.extend([until, left, cell(lease, &["hostname"])]);
    }
    rows
}

/// `end - now` as `1d 2h`, `3h 04m`, `5m 06s` or `7s`; `expired` once it has passed.
fn time_left(end: u64, now: u64) -> String {
    let Some(left) = end.checked_sub(now).filter(|&s| s > 0) else {
        return "expired".into();
    };
    let (d, h, m, s) = (left / 86_400, left / 3600 % 24, left / 60 % 60, left % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m {s:02}s"),
        (0, _, _) => format!("{h}h {m:02}m"),
        _ => format!("{d}d {h}h"),
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn blocks_of(v: &Value) -> String {
    v["nat_assignment"]["blocks"]
        .as_array()
        .or_else(|| v["blocks"].as_array())
        .map(|b| {
            b.iter()
                .map(|x| format!("{}-{}", x["first_port"], x["last_port"]))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_else(|| "-".into())
}

fn subscribers_table(v: &Value) {
    let rows = v
        .as_array()
        .map(|a| {
            a.iter()
                .map(|s| {
                    vec![
                        cell(s, &["id"]),
                        cell(s, &["lsl"]),
                        cell(s, &["gateway"]),
                        cell(s, &["source"]),
                        cell(s, &["nat_assignment", "public_ip"]),
                        blocks_of(s),
                        cell(s, &["ipv6_assignment", "prefix"]),
                        s["port_forwards"]
                            .as_array()
                            .map_or(0, Vec::len)
                            .to_string(),
                        cell(s, &["tcp_mss_effective"]),
                    ]
                })
                .collect()
        })
        .unwrap_or_default();
    table(
        &[
            "ID",
            "LSL",
            "GATEWAY",
            "SOURCE",
            "PUBLIC IP",
            "BLOCKS",
            "IPV6 PREFIX",
            "FWDS",
            "MSS",
        ],
        rows,
    );
}

fn one_subscriber(v: &Value) {
    subscribers_table(&Value::Array(vec![v.clone()]));
}

fn forwards_table(v: &Value) {
    table(
        &["PROTO", "PUBLIC PORT", "PRIVATE IP", "PRIVATE PORT"],
        rows(
            v,
            &[
                &["proto"],
                &["public_port"],
                &["private_ip"],
                &["private_port"],
            ],
        ),
    );
}

fn blocks_table(v: &Value) {
    let rows = v
        .as_array()
        .map(|a| {
            a.iter()
                .map(|s| {
                    vec![
                        cell(s, &["subscriber"]),
                        cell(s, &["lsl"]),
                        cell(s, &["public_ip"]),
                        blocks_of(s),
                    ]
                })
                .collect()
        })
        .unwrap_or_default();
    table(&["SUBSCRIBER", "LSL", "PUBLIC IP", "PORTS"], rows);
}

fn stats(args: &Args) -> anyhow::Result<()> {
    let pin_dir = bpffs::pin_dir(&args.bpffs, &args.instance);
    let counters = Counters::open(&pin_dir).with_context(|| {
        format!(
            "opening the fast path's maps in {} (is vgd running with --instance {}?)",
            pin_dir.display(),
            args.instance
        )
    })?;
    let report = counters.snapshot()?.to_report();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    for line in stats_lines(&report) {
        println!("{line}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leases_show_a_date_and_the_time_left() {
        let now = 1_796_630_400; // 2026-12-07T08:00:00Z
        let v = serde_json::json!([
            {"ip": "192.168.1.100", "mac": "02:00:00:00:00:01", "state": "bound",
             "time": now + 3_723, "hostname": "laptop"},
            {"ip": "192.168.1.101", "mac": "02:00:00:00:00:02", "state": "bound",
             "time": now - 5, "hostname": null},
            {"ip": "192.168.1.102", "mac": "02:00:00:00:00:03", "state": "offered"},
        ]);
        let rows = lease_rows(&v, now);
        assert_eq!(
            rows[0],
            [
                "192.168.1.100",
                "02:00:00:00:00:01",
                "bound",
                "2026-12-07T09:02:03Z",
                "1h 02m",
                "laptop"
            ]
        );
        assert_eq!(rows[1][3..5], ["2026-12-07T07:59:55Z", "expired"]);
        assert_eq!(rows[1][5], "-");
        assert_eq!(rows[2][3..], ["-", "-", "-"]);
    }

    #[test]
    fn stats_columns_line_up_whatever_the_name_lengths() {
        use vg::fastpath::counters::{CounterReport, CounterRow};
        let report = CounterReport {
            counters: vec![CounterRow {
                name: "nat_created",
                total: 12_345_678_901_234,
                per_cpu: vec![12_345_678_901_000, 234],
            }],
            drops: vec![
                CounterRow {
                    name: "nat_ports_exhausted_for_a_very_long_reason",
                    total: 7,
                    per_cpu: vec![3, 4],
                },
                CounterRow {
                    name: "spoofed",
                    total: 0,
                    per_cpu: vec![0, 0],
                },
            ],
        };
        let lines = stats_lines(&report);
        assert_eq!(lines.len(), 4, "{lines:#?}");
        assert!(lines[0].starts_with("COUNTER "), "{lines:#?}");
        assert!(lines[2].starts_with("drop:nat_ports_exhausted_for_a_very_long_reason "));
        // Every line as long as the header, and each number ending under its heading.
        for line in &lines {
            assert_eq!(line.len(), lines[0].len(), "{lines:#?}");
        }
        let end_of = |line: &str, word: &str| line.find(word).map(|i| i + word.len());
        let total_end = end_of(&lines[0], "TOTAL").unwrap();
        assert_eq!(
            end_of(&lines[1], "12345678901234"),
            Some(total_end),
            "{lines:#?}"
        );
        assert!(lines[2][..total_end].ends_with(" 7"), "{lines:#?}");
        assert!(lines[3][..total_end].ends_with(" 0"), "{lines:#?}");
        assert!(lines[0].ends_with("cpu1"), "{lines:#?}");
    }

    #[test]
    fn time_left_reads_at_a_glance() {
        assert_eq!(time_left(100, 100), "expired");
        assert_eq!(time_left(100, 200), "expired");
        assert_eq!(time_left(107, 100), "7s");
        assert_eq!(time_left(100 + 306, 100), "5m 06s");
        assert_eq!(time_left(100 + 86_399, 100), "23h 59m");
        assert_eq!(time_left(100 + 2 * 86_400 + 7_200, 100), "2d 2h");
    }
}
