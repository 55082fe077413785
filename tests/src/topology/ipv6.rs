//! IPv6 in the topology (issue 18): the core and the internet, vgd's `[ipv6]`, the homes'
//! hosts (the kernel's SLAAC, dhcpcd, `dhclient -6`) and what a test reads off them.
//!
//! ```text
//!  home host hN (SLAAC; DHCPv6: IA_NA + IA_PD) -- BRG -- LSL -- vG core0 2001:db8:ffff::2/64
//!                                                          -- up0 2001:db8:ffff::1/64 internet
//!  the internet routes POOL6 (the homes' prefixes) via 2001:db8:ffff::2; the vG's default
//!  route is 2001:db8:ffff::1, with IPv6 forwarding on (bpf_fib_lookup needs it).
//!  VXLAN over IPv6: fd00:255::/64 on the access network, each VTEP's address embedding its
//!  IPv4 one (vG fd00:255::aff:1, BRG i fd00:255::aff:1i).
//! ```
//!
//! Hosts start IPv6 only when a test asks ([`Home::start_ipv6`]): the interface was up long
//! before vgd ran, and a host that solicited then has given up for a while (RFC 7559
//! back-off). Enabling IPv6 on the interface then makes the kernel form its link-local
//! address, run duplicate address detection (RFC 4862 §5.4) and send its Router
//! Solicitations (RFC 4861 §6.3.7) with the vG listening. Every DHCPv6 client runs with the
//! topology's own script and configuration, so nothing touches the host's
//! /etc/resolv.conf (namespaces share the mount namespace).

use std::{
    collections::BTreeMap,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    path::PathBuf,
    process::Command,
    time::Duration,
};

use ipnet::Ipv6Net;

use super::{DhcpClient, Home, Topology, VG_VTEP};
use crate::{Netns, NsProcess, vgd, wait_until};

/// The internet server's IPv6 address (on the core link).
pub const SERVER6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xffff, 0, 0, 0, 0, 1);
/// The vG's core address: its `[ipv6] router_address` (the source of its ICMPv6 errors).
pub const VG_CORE6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xffff, 0, 0, 0, 0, 2);
/// The operator's pool of homes' prefixes (256 homes of a /56).
pub const POOL6: &str = "2001:db8:100::/48";
/// The length of each home's prefix.
pub const DELEGATED_LEN: u8 = 56;
/// The vG's IPv6 VTEP.
pub const VG_VTEP6: Ipv6Addr = vtep6_of(VG_VTEP);

/// The IPv6 VTEP address of the VTEP whose IPv4 address is `v4`: `fd00:255::` and the
/// IPv4 address as the last 32 bits.
pub const fn vtep6_of(v4: Ipv4Addr) -> Ipv6Addr {
    let o = v4.octets();
    Ipv6Addr::new(
        0xfd00,
        0x255,
        0,
        0,
        0,
        0,
        u16::from_be_bytes([o[0], o[1]]),
        u16::from_be_bytes([o[2], o[3]]),
    )
}

fn sysctl(ns: &Netns, key: &str, value: &str) {
    ns.exec("sysctl", &["-qw", &format!("{key}={value}")]);
}

/// IPv6 on the core link and in the internet; forwarding on in the vG.
pub(super) fn core(vg: &Netns, inet: &Netns) {
    for dev in ["core0", "acc0"] {
        sysctl(vg, &format!("net.ipv6.conf.{dev}.disable_ipv6"), "0");
    }
    // bpf_fib_lookup for IPv6 wants forwarding on (globally, unlike IPv4), and so does the
    // stack for the packets the fast path passes to it (a neighbour to resolve).
    sysctl(vg, "net.ipv6.conf.all.forwarding", "1");
    vg.addr_add_nodad("core0", &format!("{VG_CORE6}/64"));
    vg.ip(&["-6", "route", "add", "default", "via", &SERVER6.to_string()]);
    sysctl(inet, "net.ipv6.conf.up0.disable_ipv6", "0");
    inet.addr_add_nodad("up0", &format!("{SERVER6}/64"));
    inet.ip(&["-6", "route", "add", POOL6, "via", &VG_CORE6.to_string()]);
}

/// The vG's IPv6 VTEP on its access interface.
pub(super) fn vtep6(vg: &Netns) {
    sysctl(vg, "net.ipv6.conf.acc0.disable_ipv6", "0");
    vg.addr_add_nodad("acc0", &format!("{VG_VTEP6}/64"));
}

/// vgd's `[ipv6]`: the pool, the DNS server handed out (RDNSS, DHCPv6 option 23), the
/// router address.
pub(super) fn config_section() -> String {
    format!(
        "\n[ipv6]\npools = [\"{POOL6}\"]\ndelegated_length = {DELEGATED_LEN}\ndns_servers = [\"{SERVER6}\"]\nrouter_address = \"{VG_CORE6}\"\n"
    )
}

/// A home's IPv6 assignment as vgd's API reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Assignment {
    /// The home's delegated prefix (a /56).
    pub prefix: Ipv6Net,
    /// Its LAN /64 (the prefix's first).
    pub lan: Ipv6Net,
}

impl Topology {
    /// Home `id`'s prefix and LAN, from `GET /api/v1/subscribers/<id>` (`None` while it has
    /// none).
    pub fn ipv6_assignment(&self, id: u32) -> Option<Assignment> {
        let (code, body) = vgd::api(&self.vg, "GET", &format!("/api/v1/subscribers/{id}"), None);
        assert_eq!(code, 200, "GET subscriber {id}: {body}");
        let json: serde_json::Value = serde_json::from_str(&body).expect("JSON");
        let a = &json["ipv6_assignment"];
        Some(Assignment {
            prefix: a["prefix"].as_str()?.parse().ok()?,
            lan: a["lan"].as_str()?.parse().ok()?,
        })
    }
}

/// An IPv6 address on a host's interface, as `ip -6 -j addr` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostAddr {
    /// The address.
    pub addr: Ipv6Addr,
    /// Its prefix length (64 for SLAAC, 128 for a DHCPv6 IA_NA address).
    pub len: u8,
    /// Still in duplicate address detection (not usable yet).
    pub tentative: bool,
    /// `global` or `link`.
    pub scope: String,
}

impl Home {
    /// Starts IPv6 on the host: a host, not a router (`accept_ra=1`, `autoconf=1`), with
    /// duplicate address detection; the kernel then forms its link-local address and
    /// solicits routers (see the module doc).
    pub fn start_ipv6(&self) {
        let iface = self.iface();
        for (key, value) in [
            ("forwarding", "0"),
            ("accept_ra", "1"),
            ("autoconf", "1"),
            ("accept_dad", "1"),
            ("use_tempaddr", "0"),
            ("addr_gen_mode", "0"),
            ("disable_ipv6", "0"),
        ] {
            sysctl(&self.host, &format!("net.ipv6.conf.{iface}.{key}"), value);
        }
    }

    /// The host interface's IPv6 addresses.
    pub fn ipv6_addresses(&self) -> Vec<HostAddr> {
        let out = self
            .host
            .ip(&["-6", "-j", "addr", "show", "dev", &self.iface()]);
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        json.as_array()
            .into_iter()
            .flatten()
            .flat_map(|link| link["addr_info"].as_array().cloned().unwrap_or_default())
            .filter_map(|a| {
                Some(HostAddr {
                    addr: a["local"].as_str()?.parse().ok()?,
                    len: u8::try_from(a["prefixlen"].as_u64()?).ok()?,
                    tentative: a["tentative"].as_bool().unwrap_or(false),
                    scope: a["scope"].as_str().unwrap_or_default().to_owned(),
                })
            })
            .collect()
    }

    /// The usable (DAD done) link-local address.
    pub fn link_local(&self) -> Option<Ipv6Addr> {
        self.ipv6_addresses()
            .into_iter()
            .find(|a| a.scope == "link" && !a.tentative)
            .map(|a| a.addr)
    }

    /// The address SLAAC forms in `lan` from the interface's MAC (modified EUI-64,
    /// RFC 4291 appendix A; `addr_gen_mode=0`).
    pub fn eui64_address(&self, lan: Ipv6Net) -> Ipv6Addr {
        let m = self.host.mac(&self.iface());
        let iid = [m[0] ^ 0x02, m[1], m[2], 0xff, 0xfe, m[3], m[4], m[5]];
        let mut octets = lan.network().octets();
        octets[8..].copy_from_slice(&iid);
        Ipv6Addr::from(octets)
    }

    /// The usable SLAAC address in `lan` (a /64 from a router advertisement).
    pub fn slaac_address(&self, lan: Ipv6Net) -> Option<Ipv6Addr> {
        self.ipv6_addresses()
            .into_iter()
            .find(|a| a.len == 64 && !a.tentative && lan.contains(&a.addr))
            .map(|a| a.addr)
    }

    /// The usable DHCPv6 (IA_NA) address in `lan`: a /128.
    pub fn dhcp6_address(&self, lan: Ipv6Net) -> Option<Ipv6Addr> {
        self.ipv6_addresses()
            .into_iter()
            .find(|a| a.len == 128 && !a.tentative && lan.contains(&a.addr))
            .map(|a| a.addr)
    }

    /// The IPv6 default router the host learnt from an RA (a link-local address).
    pub fn ipv6_router(&self) -> Option<Ipv6Addr> {
        let out = self.host.ip(&["-6", "route", "show", "default"]);
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .skip_while(|w| *w != "via")
            .nth(1)
            .and_then(|a| a.parse().ok())
    }

    /// The MAC address of the host's neighbour `addr`, if the host has resolved it.
    pub fn ipv6_neighbour_mac(&self, addr: Ipv6Addr) -> Option<[u8; 6]> {
        let out = self.host.ip(&[
            "-6",
            "neigh",
            "show",
            &addr.to_string(),
            "dev",
            &self.iface(),
        ]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let mac = text
            .split_whitespace()
            .skip_while(|w| *w != "lladdr")
            .nth(1)?;
        let mut bytes = [0u8; 6];
        let mut parts = mac.split(':');
        for b in &mut bytes {
            *b = u8::from_str_radix(parts.next()?, 16).ok()?;
        }
        Some(bytes)
    }

    /// Solicits a router advertisement with `rdisc6` (package ndisc6) and returns what it
    /// printed as `key -> value` (`Prefix`, `MTU`, `Stateful address conf.`, `Recursive DNS
    /// server`, ...; `from`: the router's address), or its output when no RA came.
    pub fn rdisc6(&self) -> Result<BTreeMap<String, String>, String> {
        let out = self
            .host
            .command("rdisc6")
            .args(["-1", "-r", "3", "-w", "2000", &self.iface()])
            .output()
            .map_err(|e| format!("running rdisc6 (package ndisc6): {e}"))?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if !out.status.success() {
            return Err(format!("{text}{}", String::from_utf8_lossy(&out.stderr)));
        }
        let mut fields = BTreeMap::new();
        for line in text.lines() {
            if let Some(from) = line.trim().strip_prefix("from ") {
                fields.insert("from".to_owned(), from.trim().to_owned());
            } else if let Some((k, v)) = line.split_once(" : ").or_else(|| line.split_once(":  ")) {
                fields
                    .entry(k.trim().to_owned())
                    .or_insert_with(|| v.trim().to_owned());
            }
        }
        Ok(fields)
    }

    /// The MAC address `ndisc6` (package ndisc6) resolves `target` to on the host's link.
    pub fn ndisc6(&self, target: Ipv6Addr) -> Result<String, String> {
        let out = self
            .host
            .command("ndisc6")
            .args([
                "-1",
                "-r",
                "3",
                "-w",
                "1000",
                &target.to_string(),
                &self.iface(),
            ])
            .output()
            .map_err(|e| format!("running ndisc6 (package ndisc6): {e}"))?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.lines()
            .find_map(|l| l.trim().strip_prefix("Target link-layer address:"))
            .map(|mac| mac.trim().to_lowercase())
            .ok_or_else(|| format!("{text}{}", String::from_utf8_lossy(&out.stderr)))
    }

    /// Waits until the host has its usable link-local address and SLAAC address in `lan`
    /// and a default route (all three from the vG's RA); returns the SLAAC address, or what
    /// the host had when `timeout` ran out.
    pub fn wait_slaac(&self, lan: Ipv6Net, timeout: Duration) -> Result<Ipv6Addr, String> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if let (Some(addr), Some(_)) = (self.slaac_address(lan), self.ipv6_router()) {
                return Ok(addr);
            }
            if std::time::Instant::now() > deadline {
                let show = |args: &[&str]| {
                    String::from_utf8_lossy(&self.host.ip(args).stdout).into_owned()
                };
                return Err(format!(
                    "no SLAAC address in {lan} after {timeout:?}; addresses:\n{}routes:\n{}",
                    show(&["-6", "addr", "show", "dev", &self.iface()]),
                    show(&["-6", "route"])
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// The script every DHCPv6 client runs: records each event with its variables in
/// `$NERG_EVENTS` (one `reason=...` line, the `new_`/`old_` variables, a blank line), and
/// applies `dhclient`'s IA_NA address (dhcpcd applies its own). `-6` clients only; the
/// host's /etc/resolv.conf is never touched.
const SCRIPT6: &str = r#"#!/bin/sh
# dhclient -6: $reason (PREINIT6 BOUND6 RENEW6 REBIND6 REBOOT6 DEPREF6 EXPIRE6 RELEASE6 STOP6),
#   $new_ip6_address, $new_ip6_prefixlen, $new_ip6_prefix (IA_PD), $new_max_life, $new_preferred_life
# dhcpcd: $reason (ROUTERADVERT BOUND6 RENEW6 REBIND6 REBOOT6 DELEGATED6 EXPIRE6 STOP6 ...),
#   $new_dhcp6_ia_na1_ia_addr1, $new_dhcp6_ia_pd1_prefix1(_length), $new_delegated_dhcp6_prefix
{ echo "reason=$reason"; env | grep -E '^(new|old)_' | sort; echo; } >> "EVENTS_FILE"
case "$reason" in
  PREINIT6)
    ip link set "$interface" up ;;
  BOUND6|RENEW6|REBIND6|REBOOT6)
    if [ -n "$new_ip6_address" ]; then
      ip -6 addr replace "$new_ip6_address/128" dev "$interface" \
        valid_lft "${new_max_life:-forever}" preferred_lft "${new_preferred_life:-forever}"
    fi ;;
  EXPIRE6|RELEASE6|STOP6)
    if [ -n "$old_ip6_address" ]; then
      ip -6 addr del "$old_ip6_address/128" dev "$interface"
    fi ;;
esac
exit 0
"#;

/// One event a DHCPv6 client reported to its script.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Event6 {
    /// `BOUND6`, `RENEW6`, ...
    pub reason: String,
    /// Its `new_*` and `old_*` variables.
    pub vars: BTreeMap<String, String>,
}

impl Event6 {
    /// The delegated prefixes the event names (dhclient's `new_ip6_prefix`, dhcpcd's
    /// `new_dhcp6_ia_pd*_prefix*` with its `_length`).
    pub fn delegated(&self) -> Vec<Ipv6Net> {
        let mut out = Vec::new();
        for (name, value) in &self.vars {
            if !name.starts_with("new_") || !name.contains("prefix") {
                continue;
            }
            if let Ok(net) = value.parse::<Ipv6Net>() {
                out.push(net);
            } else if let (Ok(addr), Some(len)) = (
                value.parse::<Ipv6Addr>(),
                self.vars
                    .get(&format!("{name}_length"))
                    .and_then(|l| l.parse::<u8>().ok()),
            ) && let Ok(net) = Ipv6Net::new(addr, len)
            {
                out.push(net);
            }
        }
        out.sort();
        out.dedup();
        out
    }
}

/// A home's running DHCPv6 client: dhcpcd (IA_NA, IA_PD and its own SLAAC) for dhcpcd
/// homes, `dhclient -6 -N -P` (IA_NA and IA_PD) for the others. Stopped on drop.
pub struct Dhcp6 {
    /// The client process.
    pub process: NsProcess,
    /// `dhcpcd` or `dhclient`.
    pub client: &'static str,
    events: PathBuf,
    iface: String,
    ns: PathBuf,
}

impl Dhcp6 {
    /// The events the client's script saw, oldest first.
    pub fn events(&self) -> Vec<Event6> {
        let text = std::fs::read_to_string(&self.events).unwrap_or_default();
        text.split("\n\n")
            .filter_map(|block| {
                let mut event = Event6::default();
                for line in block.lines() {
                    let (k, v) = line.split_once('=')?;
                    let v = v.trim_matches('\'').to_owned();
                    if k == "reason" {
                        event.reason = v;
                    } else {
                        event.vars.insert(k.to_owned(), v);
                    }
                }
                (!event.reason.is_empty()).then_some(event)
            })
            .collect()
    }

    /// The prefix the client was delegated last.
    pub fn delegated(&self) -> Option<Ipv6Net> {
        self.events()
            .iter()
            .rev()
            .find_map(|e| e.delegated().into_iter().next())
    }

    /// How many events with `reason` the client reported.
    pub fn count(&self, reason: &str) -> usize {
        self.events().iter().filter(|e| e.reason == reason).count()
    }

    /// Asks the running client to renew its bindings now (RFC 8415 §18.2.4: a Renew to the
    /// server that gave them): `dhcpcd -6 -N <iface>`. dhclient has no such control; its
    /// homes return an error.
    pub fn renew(&self) -> Result<(), String> {
        if self.client != "dhcpcd" {
            return Err(format!("{} cannot be asked to renew", self.client));
        }
        let out = Command::new("nsenter")
            .arg(format!("--net={}", self.ns.display()))
            .args(["--", "dhcpcd", "-6", "-N", &self.iface])
            .output()
            .map_err(|e| format!("running dhcpcd -N: {e}"))?;
        out.status.success().then_some(()).ok_or_else(|| {
            format!(
                "dhcpcd -N failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        })
    }

    /// What the client printed.
    pub fn log(&self) -> String {
        format!(
            "{} log:\n{}\nevents:\n{}",
            self.client,
            self.process.log(),
            std::fs::read_to_string(&self.events).unwrap_or_default()
        )
    }
}

impl Topology {
    /// Starts home `i`'s DHCPv6 client once the host has its link-local address (clients
    /// bind to it); see [`Dhcp6`]. Call [`Home::start_ipv6`] first.
    pub fn dhcp6(&self, i: usize) -> Dhcp6 {
        let home = &self.homes[i];
        let iface = home.iface();
        wait_until(
            &format!("home {}'s link-local address", home.spec.id),
            Duration::from_secs(10),
            || home.link_local().is_some(),
        );
        let events = self.dir.join(format!("dhcp6-{iface}.events"));
        let _ = std::fs::remove_file(&events);
        let script = self.dir.join(format!("dhcp6-{iface}-script"));
        let text = SCRIPT6.replace("EVENTS_FILE", &events.display().to_string());
        std::fs::write(&script, text).expect("DHCPv6 client script");
        crate::run(Command::new("chmod").arg("755").arg(&script));
        let (client, mut cmd) = match home.spec.client {
            DhcpClient::Dhcpcd => {
                // A new host: no lease from an earlier topology's host of this name (dhcpcd
                // keeps them in its own directory, shared by every namespace).
                let _ = std::fs::remove_file(format!("/var/lib/dhcpcd/{iface}.lease6"));
                let conf = self.dir.join(format!("dhcpcd6-{iface}.conf"));
                std::fs::write(&conf, dhcpcd_conf(&iface)).expect("dhcpcd config");
                let mut cmd = home.host.command("dhcpcd");
                cmd.args(["-6", "-B", "-d", "-f"])
                    .arg(&conf)
                    .arg("-c")
                    .arg(&script)
                    .arg(&iface);
                ("dhcpcd", cmd)
            }
            DhcpClient::Dhclient | DhcpClient::Udhcpc => {
                let mut cmd = home.host.command("dhclient");
                cmd.args(["-6", "-N", "-P", "-d", "-v", "-sf"])
                    .arg(&script)
                    .arg("-lf")
                    .arg(self.dir.join(format!("dhclient6-{iface}.leases")))
                    .arg("-pf")
                    .arg(self.dir.join(format!("dhclient6-{iface}.pid")))
                    .arg(&iface);
                ("dhclient", cmd)
            }
        };
        let process = home.host.spawn(client, &mut cmd);
        Dhcp6 {
            process,
            client,
            events,
            iface,
            ns: home.host.path(),
        }
    }
}

/// dhcpcd's configuration for a home host: IPv6 only, RAs with its own SLAAC (from the
/// MAC, as the kernel's), an address (IA_NA) and a prefix (IA_PD, kept, assigned to no
/// other interface: the host has none).
fn dhcpcd_conf(iface: &str) -> String {
    format!(
        "# nerg topology: DHCPv6 for {iface}; no hooks (the client script is the topology's)\n\
         noipv4\nipv6rs\nslaac hwaddr\nnoipv4ll\n\
         interface {iface}\n  ia_na 1\n  ia_pd 2\n"
    )
}

/// The internet's IPv6 servers: busybox httpd (`-vv`: it logs each client's address) and
/// iperf3, on [`SERVER6`].
pub struct Servers6 {
    /// busybox httpd on [SERVER6]:80.
    pub httpd: NsProcess,
    /// iperf3 on [SERVER6]:5201.
    pub iperf3: NsProcess,
}

impl Servers6 {
    /// Whether the web server logged a request from `client`.
    pub fn http_saw(&self, client: Ipv6Addr) -> bool {
        self.httpd.log().contains(&format!("[{client}]:"))
    }
}

impl Topology {
    /// Starts the internet's IPv6 servers (the IPv4 ones are [`Topology::start_servers`]).
    pub(super) fn start_servers6(&self, www: &std::path::Path) -> Servers6 {
        let inet = &self.inet;
        let mut httpd = inet.spawn(
            "httpd6",
            inet.command("busybox")
                .args(["httpd", "-f", "-vv", "-p", &format!("[{SERVER6}]:80"), "-h"])
                .arg(www),
        );
        let mut iperf3 = inet.spawn(
            "iperf3-6",
            inet.command("iperf3")
                .args(["-s", "-B", &SERVER6.to_string(), "-p", "5201"]),
        );
        wait_until(
            "the internet's IPv6 servers to listen",
            Duration::from_secs(10),
            || {
                httpd.assert_running();
                iperf3.assert_running();
                let out = inet.exec("ss", &["-Hltn6"]);
                let text = String::from_utf8_lossy(&out.stdout);
                text.contains(&format!("[{SERVER6}]:80"))
                    && text.contains(&format!("[{SERVER6}]:5201"))
            },
        );
        Servers6 { httpd, iperf3 }
    }
}

/// Pings `to` from `ns` with the source address `from` (two echoes): the ping's output when
/// unanswered.
pub fn ping_from(ns: &Netns, from: Ipv6Addr, to: Ipv6Addr) -> Result<(), String> {
    let out = ns
        .command("ping")
        .args(["-c", "2", "-i", "0.2", "-W", "2", "-I", &from.to_string()])
        .arg(to.to_string())
        .output()
        .map_err(|e| format!("running ping: {e}"))?;
    out.status.success().then_some(()).ok_or_else(|| {
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// Pings `to` from `ns` (two echoes); true when answered.
pub fn ping(ns: &Netns, to: IpAddr) -> bool {
    ns.command("ping")
        .args(["-c", "2", "-i", "0.2", "-W", "2", &to.to_string()])
        .output()
        .is_ok_and(|o| o.status.success())
}
