//! Debian's `perfdhcp` (package kea-admin) in a home behind a BRG and its VXLAN LSL, and the
//! DHCP servers it runs against: `vgd` here, Kea's `kea-dhcp4` in the benchmark.
//!
//! ```text
//!  home (h1, 192.168.1.250: perfdhcp) -- BRG (lan0 + vxlan0 over lsl0, VTEP 10.255.1.1)
//!     -- access bridge -- acc0 in the vG namespace (VTEP 10.255.0.1): vgd's XDP, or a kernel
//!        vxlan device with kea-dhcp4 on it
//! ```
//!
//! perfdhcp always simulates a relay agent: its messages carry `giaddr` = its own address and
//! come from UDP port 67, and it expects the replies there. vgd serves them with the home's
//! `dhcp.relayed = "serve"`; the home is still the one of the LSL.

use std::{
    net::Ipv4Addr,
    path::{Path, PathBuf},
};

use anyhow::{Context as _, bail};

use crate::{Netns, NsProcess, PinDir, netns::veth, topology::VG_VTEP, topology::vxlan_uplink};

/// perfdhcp's address in the home: inside the home's prefix, outside the pool.
pub const PERFDHCP_ADDR: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 250);
/// The home's LAN interface (in the home namespace).
pub const HOME_IFACE: &str = "h1";
/// The VXLAN LSL's VNI.
pub const VNI: u32 = 5001;
/// The BRG's VTEP.
pub const BRG_VTEP: Ipv4Addr = Ipv4Addr::new(10, 255, 1, 1);

/// What one perfdhcp run reported.
#[derive(Clone, Debug, Default)]
pub struct PerfRun {
    /// Packets sent (DISCOVERs and REQUESTs).
    pub sent: u64,
    /// Packets received (OFFERs and ACKs).
    pub received: u64,
    /// Exchanges perfdhcp gave up on.
    pub drops: u64,
    /// ACKs received: completed 4-way exchanges.
    pub acks: u64,
    /// The leases acknowledged, when asked for (`-x l`): address and client MAC, one per ACK.
    pub leases: Vec<(Ipv4Addr, [u8; 6])>,
    /// What perfdhcp printed, for failure messages.
    pub output: String,
}

impl PerfRun {
    /// The share of exchanges dropped (1 when nothing was sent).
    pub fn drop_ratio(&self) -> f64 {
        if self.sent == 0 {
            1.0
        } else {
            self.drops as f64 / self.sent as f64
        }
    }
}

/// Parses perfdhcp's report: per exchange ("DISCOVER-OFFER", "REQUEST-ACK"; with `-6`
/// "SOLICIT-ADVERTISE", "REQUEST-REPLY") its sent, received and dropped packets, and with
/// `-x l` the (DHCPv4) leases it received.
pub fn parse(out: &str) -> anyhow::Result<PerfRun> {
    let mut run = PerfRun::default();
    let mut section = "";
    let mut sections = 0;
    for line in out.lines() {
        let line = line.trim();
        if let Some(rest) = line
            .strip_prefix("***")
            .map(|l| l.trim_start_matches('*').trim_start())
            .and_then(|l| l.strip_prefix("Statistics for:"))
        {
            section = if rest.contains("REQUEST-ACK") || rest.contains("REQUEST-REPLY") {
                "ra"
            } else {
                "do"
            };
            sections += 1;
            continue;
        }
        // `-x l` lists the leases of each exchange: the ACKs' are the REQUEST-ACK ones.
        if let Some(rest) = line.strip_prefix("***Leases for") {
            section = if rest.contains("REQUEST-ACK") {
                "ra-leases"
            } else {
                "leases"
            };
            continue;
        }
        if section.ends_with("leases") {
            if section == "ra-leases"
                && let Some(lease) = parse_lease(line)
            {
                run.leases.push(lease);
            }
            continue;
        }
        let num = |prefix: &str| -> Option<u64> {
            line.strip_prefix(prefix)?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        };
        if let Some(n) = num("sent packets:") {
            run.sent += n;
        } else if let Some(n) = num("received packets:") {
            run.received += n;
            if section == "ra" {
                run.acks += n;
            }
        } else if let Some(n) = num("drops:") {
            run.drops += n;
        }
    }
    if sections < 2 {
        bail!("perfdhcp printed no DISCOVER-OFFER and REQUEST-ACK statistics:\n{out}");
    }
    run.output = out.to_owned();
    Ok(run)
}

/// A lease line of `-x l` (`client_id,adrress,prefix`, sic): the client identifier is
/// hardware type 1 then the MAC, e.g. `01000c01020304,192.168.1.100,`; `None` for any
/// other line.
fn parse_lease(line: &str) -> Option<(Ipv4Addr, [u8; 6])> {
    let mut fields = line.split(',');
    let id = fields.next()?.strip_prefix("01")?;
    let ip: Ipv4Addr = fields.next()?.parse().ok()?;
    if id.len() != 12 {
        return None;
    }
    let mut mac = [0u8; 6];
    for (i, b) in mac.iter_mut().enumerate() {
        *b = u8::from_str_radix(id.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some((ip, mac))
}

/// How to run perfdhcp.
#[derive(Clone, Copy, Debug)]
pub struct Load {
    /// Simulated clients (`-R`).
    pub clients: u32,
    /// 4-way exchanges offered per second (`-r`).
    pub rate: u32,
    /// Seconds to run (`-p`), if bounded by time.
    pub secs: Option<u32>,
    /// Exchanges to start (`-n`), if bounded by count.
    pub exchanges: Option<u32>,
    /// Print every lease received (`-x l`).
    pub print_leases: bool,
}

/// Runs perfdhcp in `home` out of [`HOME_IFACE`] (broadcast flag set, 0.5 s wait for late
/// replies at the end).
pub fn run(home: &Netns, load: &Load) -> anyhow::Result<PerfRun> {
    run_family(home, load, &["-4", "-B"])
}

/// Runs perfdhcp `-6` in `home` out of [`HOME_IFACE`]: Solicit to ff02::1:2 from the
/// interface's link-local address (not as a relay), Request for what was advertised; 0.5 s
/// wait for late replies at the end.
pub fn run6(home: &Netns, load: &Load) -> anyhow::Result<PerfRun> {
    run_family(home, load, &["-6"])
}

fn run_family(home: &Netns, load: &Load, family: &[&str]) -> anyhow::Result<PerfRun> {
    let mut cmd = home.command("perfdhcp");
    cmd.args(family)
        .args(["-W", "500000"])
        .args(["-R", &load.clients.to_string()])
        .args(["-r", &load.rate.to_string()]);
    if let Some(secs) = load.secs {
        cmd.args(["-p", &secs.to_string()]);
    }
    if let Some(n) = load.exchanges {
        cmd.args(["-n", &n.to_string()]);
    }
    if load.print_leases {
        cmd.args(["-x", "l"]);
    }
    cmd.args(["-l", HOME_IFACE]);
    let out = cmd
        .output()
        .context("running perfdhcp (package kea-admin; `cargo xtask setup` installs it)")?;
    // Diagnostics (`-x`) go to stderr.
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    parse(&text).with_context(|| {
        format!(
            "perfdhcp exited with {}; stderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// UDP datagrams the kernel of `ns` dropped because a socket's receive buffer was full
/// (`RcvbufErrors` in its `/proc/net/snmp`): in the home, replies perfdhcp could not take
/// in time.
pub fn udp_rcvbuf_errors(ns: &Netns) -> u64 {
    let out = ns.exec("cat", &["/proc/net/snmp"]);
    let text = String::from_utf8_lossy(&out.stdout);
    let mut udp = text.lines().filter(|l| l.starts_with("Udp:"));
    let (Some(names), Some(values)) = (udp.next(), udp.next()) else {
        return 0;
    };
    names
        .split_whitespace()
        .zip(values.split_whitespace())
        .find(|(n, _)| *n == "RcvbufErrors")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0)
}

/// The namespaces from the home to the vG's access interface. Drop order: the vG side
/// first.
pub struct Access {
    /// The vG namespace: `acc0` holds the vG's VTEP address.
    pub vg: Netns,
    /// The access network (a bridge).
    pub access: Netns,
    /// The BRG: a kernel vxlan device bridged to the home's LAN.
    pub brg: Netns,
    /// The home: perfdhcp's host, [`HOME_IFACE`] at [`PERFDHCP_ADDR`].
    pub host: Netns,
}

/// Builds the home, its BRG and VXLAN LSL, and the access network up to `acc0` in the vG
/// namespace (namespaces named `<tag>-...`).
pub fn access(tag: &str) -> Access {
    let host = Netns::new(&format!("{tag}-home"));
    let brg = Netns::new(&format!("{tag}-brg"));
    let access = Netns::new(&format!("{tag}-acc"));
    let vg = Netns::new(&format!("{tag}-vg"));
    for ns in [&host, &brg, &access, &vg] {
        ns.disable_ipv6();
    }
    veth(&host, HOME_IFACE, &brg, "lan0");
    host.ip(&["link", "set", HOME_IFACE, "mtu", "1450"]);
    // Complete checksums, as on a real wire.
    host.ethtool_k(HOME_IFACE, &["tx", "off"]);
    host.addr_add(HOME_IFACE, &format!("{PERFDHCP_ADDR}/24"));
    veth(&brg, "lsl0", &access, "b1");
    veth(&vg, "acc0", &access, "vg");
    access.bridge("br0", &["b1", "vg"]);
    brg.ethtool_k("lsl0", &["tx", "off"]);
    vxlan_uplink(&brg, VNI, &format!("{BRG_VTEP}/16"), VG_VTEP);
    vg.addr_add("acc0", &format!("{VG_VTEP}/16"));
    Access {
        vg,
        access,
        brg,
        host,
    }
}

/// Terminates the home's VXLAN LSL in the vG namespace with a kernel vxlan device `dev` on
/// `acc0` (what the baseline servers listen on).
pub fn kernel_lsl(vg: &Netns, dev: &str) {
    let (vni, local, remote) = (VNI.to_string(), VG_VTEP.to_string(), BRG_VTEP.to_string());
    vg.ip(&[
        "link", "add", dev, "type", "vxlan", "id", &vni, "local", &local, "remote", &remote,
        "dstport", "4789", "dev", "acc0",
    ]);
}

/// [`access`] with IPv6 on in the home (perfdhcp `-6` speaks from [`HOME_IFACE`]'s link-local
/// address, usable at once: no duplicate address detection) and in the vG namespace.
pub fn access6(tag: &str) -> Access {
    let net = access(tag);
    for ns in [&net.host, &net.vg] {
        for key in ["all", "default", "lo"] {
            ns.exec(
                "sysctl",
                &["-qw", &format!("net.ipv6.conf.{key}.disable_ipv6=0")],
            );
        }
    }
    net.host.exec(
        "sysctl",
        &["-qw", &format!("net.ipv6.conf.{HOME_IFACE}.accept_dad=0")],
    );
    // perfdhcp sends from the interface's first address: vgd's RAs would give it a SLAAC
    // one, which a server refuses as a client's source (RFC 8415 §13.1: link-local).
    net.host.exec(
        "sysctl",
        &["-qw", &format!("net.ipv6.conf.{HOME_IFACE}.accept_ra=0")],
    );
    for (ns, iface) in [(&net.host, HOME_IFACE), (&net.vg, "acc0")] {
        ns.exec(
            "sysctl",
            &["-qw", &format!("net.ipv6.conf.{iface}.disable_ipv6=0")],
        );
        // A link-local address is made when the link comes up: down and up again.
        ns.ip(&["link", "set", iface, "down"]);
        ns.link_up(iface);
    }
    net
}

/// The home's IPv6 pool in the DHCPv6 benchmark (vgd gives the home its first /56; Kea
/// serves the same LAN /64).
pub const V6_POOL: &str = "2001:db8:100::/48";

/// vgd's configuration for the perfdhcp `-6` home: [`vgd_config`] with `[ipv6]`.
pub fn vgd_config6(per_home_pps: u32) -> String {
    format!(
        "{}\n[ipv6]\npools = [\"{V6_POOL}\"]\n",
        vgd_config(per_home_pps)
    )
}

/// vgd's configuration for the perfdhcp home: one VXLAN home serving relayed DHCP, a
/// per-home limit of `per_home_pps` (burst a tenth of it, at least 100), leases of an hour
/// (as the benchmark's Kea).
pub fn vgd_config(per_home_pps: u32) -> String {
    let burst = (per_home_pps / 10).max(100);
    format!(
        "[fastpath]\nvtep = \"{VG_VTEP}\"\n\n\
         [dhcp]\nlease_time_secs = 3600\nrelayed = \"serve\"\n\n\
         [slowpath]\nper_home_pps = {per_home_pps}\nper_home_burst = {burst}\n\n\
         [[subscriber]]\nid = 1\nlsl = \"vxlan:{VNI}@{BRG_VTEP}\"\ngateway = \"192.168.1.1/24\"\n"
    )
}

/// vgd serving the perfdhcp home, with its lease store (redb, every ACK durable) in its
/// state directory on disk. Drop order: vgd, the namespaces, then its pins and state.
pub struct VgdRig {
    /// vgd.
    pub vgd: NsProcess,
    /// The home to the vG.
    pub net: Access,
    /// vgd's bpffs pins (its instance) and, through it, its state directory.
    pub pins: PinDir,
    /// vgd's configuration file.
    pub config: PathBuf,
}

impl VgdRig {
    /// Builds the rig and starts vgd with `config` (see [`vgd_config`]).
    pub fn start(tag: &str, config: &str) -> VgdRig {
        Self::start_on(access(tag), tag, config)
    }

    /// Starts vgd with `config` on the namespaces `net` (e.g. [`access6`]'s).
    pub fn start_on(net: Access, tag: &str, config: &str) -> VgdRig {
        let pins = PinDir::new(tag);
        let dir = crate::vgd::state_dir(pins.instance());
        std::fs::create_dir_all(&dir).expect("vgd state dir");
        let path = dir.join("vgd.toml");
        std::fs::write(&path, config).expect("vgd config");
        let vgd = start_vgd(&net.vg, &pins, &path);
        VgdRig {
            vgd,
            net,
            pins,
            config: path,
        }
    }

    /// `kill -9` vgd (no chance to flush anything), then a new vgd on the same state.
    pub fn crash_and_restart(&mut self) {
        self.vgd.kill();
        self.vgd = start_vgd(&self.net.vg, &self.pins, &self.config);
    }

    /// Home 1's leases as vgd's REST API reports them (read from its store).
    pub fn leases(&self) -> Vec<vg::dhcp::LeaseRecord> {
        let (code, body) =
            crate::vgd::api(&self.net.vg, "GET", "/api/v1/subscribers/1/leases", None);
        assert_eq!(code, 200, "GET leases: {body}");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("leases JSON ({e}): {body}"))
    }

    /// vgd's `/metrics`.
    pub fn metrics(&self) -> String {
        crate::vgd::metrics(&self.net.vg)
    }
}

fn start_vgd(vg: &Netns, pins: &PinDir, config: &Path) -> NsProcess {
    crate::vgd::start_with_config(vg, "acc0", pins.instance(), Some(config))
}

/// The sum of the samples of metric `name` whose labels contain `labels` (all of them) in
/// a Prometheus text exposition.
pub fn metric_sum(text: &str, name: &str, labels: &[&str]) -> f64 {
    let (bare, labelled) = (format!("{name} "), format!("{name}{{"));
    text.lines()
        .filter(|l| l.starts_with(&bare) || l.starts_with(&labelled))
        .filter(|l| labels.iter().all(|want| l.contains(want)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// perfdhcp 2.2's report with `-x l`, cut down (captured against vgd).
    const REPORT: &str = "Running: perfdhcp -4 -B -W 500000 -R 50 -r 200 -n 400 -x l -l h1
***Rate statistics***
Rate: 159.96 4-way exchanges/second, expected rate: 200
***Statistics for: DISCOVER-OFFER***
sent packets: 400
received packets: 399
drops: 1
drops ratio: 0.25 %
***Statistics for: REQUEST-ACK***
sent packets: 399
received packets: 2
drops: 397
drops ratio: 99.5 %
***Leases for DISCOVER-OFFER***
client_id,adrress,prefix
01000c01020304,192.168.1.100,
***Leases for REQUEST-ACK***
client_id,adrress,prefix
01000c01020304,192.168.1.100,
01000c0102030f,192.168.1.111,
";

    #[test]
    fn reports_parse_with_their_leases() {
        let run = parse(REPORT).expect("parses");
        assert_eq!(
            (run.sent, run.received, run.drops, run.acks),
            (799, 401, 398, 2)
        );
        assert_eq!(
            run.leases,
            vec![
                (Ipv4Addr::new(192, 168, 1, 100), [0, 0x0c, 1, 2, 3, 4]),
                (Ipv4Addr::new(192, 168, 1, 111), [0, 0x0c, 1, 2, 3, 0x0f]),
            ]
        );
        assert!((run.drop_ratio() - 398.0 / 799.0).abs() < 1e-9);
        assert!(parse("Rate: 5\n").is_err(), "no statistics");
        assert_eq!(
            parse_lease("01000c0102030f,192.168.1.111,").map(|l| l.1[5]),
            Some(0x0f)
        );
        assert_eq!(parse_lease("client_id,adrress,prefix"), None);
        assert_eq!(parse_lease("0200,192.168.1.1,"), None);
    }

    #[test]
    fn metric_sums_match_name_and_labels() {
        let text = "# HELP x\nvg_a_total{r=\"ok\"} 3\nvg_a_total{r=\"failed\"} 1\nvg_a_totalx 7\nvg_a_total 2\n";
        assert_eq!(metric_sum(text, "vg_a_total", &["r=\"ok\""]), 3.0);
        assert_eq!(metric_sum(text, "vg_a_total", &[]), 6.0);
    }
}
