//! `nerg-lab`: the NERG lab in network namespaces (run it through `cargo xtask lab`).
//!
//! Brings up a whole NERG ([`nerg_tests::topology`]): an internet with web, iperf3 and STUN
//! servers, the vG
//! running `vgd` (XDP fast path, DHCP, NAT), an access network, and N homes, each a BRG
//! (`brgd`'s tagger for 802.1Q/QinQ, a kernel vxlan device for VXLAN) with a LAN host
//! running a real DHCP client (dhclient, udhcpc, dhcpcd in turn). Every home gets a lease,
//! pings its gateway, fetches a page from the internet through the NAT, runs a one-second
//! iperf3 TCP test and asks Debian's STUN client what NAT it is behind (endpoint-independent
//! mapping and hairpinning expected); the lab prints a status table and a PASS/FAIL line per
//! check, and exits non-zero if any home fails.
//! Dual stack (issue 18): every home also gets its IPv6 prefix from vgd's `[ipv6]` pool; its
//! host forms a SLAAC address from the LAN /64 (the kernel's), gets a DHCPv6 address and a
//! delegated prefix (dhcpcd in dhcpcd homes, `dhclient -6 -N -P` in the others), pings the
//! internet's IPv6 server and fetches a page and runs iperf3 from it; the table shows each
//! home's prefix and its host's address.
//! Zero touch: every BRG starts `brgd` with only the ACS's URL; the lab's ACS (on a
//! management network) pushes its bridge and LSL over TR-069 on its first Inform.

use std::{process::ExitCode, time::Duration};

use anyhow::{Context as _, bail};
use clap::{Parser, Subcommand, ValueEnum};
use nerg_tests::{
    Netns,
    topology::{
        self, DhcpClient, GATEWAY, HomeLsl, HomeSpec, Naming, SERVER, Topology, WEB_PAGE,
        ipv6::{self, SERVER6},
    },
    vgd,
};
use vg::fastpath::{Counters, bpffs};

const NS_PREFIX: &str = "nerg-lab-";
const INSTANCE: &str = "lab";

/// Lab flags.
#[derive(Debug, Parser)]
#[command(name = "cargo xtask lab", about = "The NERG lab in network namespaces")]
struct Args {
    /// Number of homes.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=200))]
    homes: u32,
    /// LSL kind of the homes (mixed: 802.1Q, QinQ and VXLAN in turn).
    #[arg(long, value_enum, default_value_t = LslKind::Mixed)]
    lsl: LslKind,
    /// Leave the lab running and print how to reach it.
    #[arg(long)]
    keep: bool,
    /// Run vgd from this container image (`cargo xtask lab --container` builds it and
    /// passes its name) instead of the binary beside nerg-lab.
    #[arg(long, value_name = "IMAGE")]
    container: Option<String>,
    /// Start with the vG's store of the previous lab (its leases, NAT blocks and the homes
    /// made through the API) instead of an empty one.
    #[arg(long)]
    keep_state: bool,
    #[command(subcommand)]
    command: Option<Cmd>,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Remove a lab left running with --keep.
    Down,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum LslKind {
    /// 802.1Q, one C-VID per home.
    Vlan,
    /// QinQ, S-VID 10, one C-VID per home.
    Qinq,
    /// VXLAN, one VNI per home.
    Vxlan,
    /// VXLAN over IPv6, one VNI per home.
    Vxlan6,
    /// Homes take 802.1Q, QinQ, VXLAN and VXLAN over IPv6 in turn.
    Mixed,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let result = match args.command {
        Some(Cmd::Down) => down().and_then(|()| forget_state()).map(|()| true),
        None => up(&args),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(err) => {
            eprintln!("lab: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn progress(what: &str) {
    eprintln!("  - {what}");
}

/// Removes every lab namespace (and what runs in them) and the lab's pinned maps.
fn down() -> anyhow::Result<()> {
    let out = std::process::Command::new("ip")
        .args(["netns", "list"])
        .output()
        .context("running ip netns list")?;
    let mut removed = 0;
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let name = line.split_whitespace().next().unwrap_or_default();
        if name.starts_with(NS_PREFIX) {
            Netns::delete(name);
            removed += 1;
        }
    }
    if removed > 0 {
        progress(&format!("removed {removed} namespaces"));
    }
    // A kept lab's vgd container (`--container`), named after the vG's namespace.
    let container = format!("nerg-vgd-{NS_PREFIX}vg");
    let rm = nerg_tests::container::podman()
        .args(["rm", "--force", "--ignore", "--time", "5", &container])
        .output();
    if rm.is_ok_and(|o| !o.stdout.is_empty()) {
        progress(&format!("removed the container {container}"));
    }
    let pins = bpffs::pin_dir(bpffs::DEFAULT_MOUNT.as_ref(), INSTANCE);
    if pins.exists() {
        std::fs::remove_dir_all(&pins).with_context(|| format!("removing {}", pins.display()))?;
        progress(&format!("removed {}", pins.display()));
    }
    Ok(())
}

/// Removes the vG's store (leases, NAT blocks, homes made through the API) that a kept or
/// interrupted lab left behind, so that the next lab's homes get their leases afresh rather
/// than inheriting the previous lab's (`--keep-state` keeps it).
fn forget_state() -> anyhow::Result<()> {
    let state = vgd::state_dir(INSTANCE);
    match std::fs::remove_dir_all(&state) {
        Ok(()) => {
            progress(&format!(
                "removed the previous lab's vG state ({})",
                state.display()
            ));
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("removing {}", state.display())),
    }
}

fn specs(args: &Args) -> Vec<HomeSpec> {
    let clients = [DhcpClient::Dhclient, DhcpClient::Udhcpc, DhcpClient::Dhcpcd];
    (1..=args.homes)
        .map(|id| {
            let kind = match args.lsl {
                LslKind::Mixed => [
                    LslKind::Vlan,
                    LslKind::Qinq,
                    LslKind::Vxlan,
                    LslKind::Vxlan6,
                ][(id as usize - 1) % 4],
                other => other,
            };
            let c_vid = (100 + id) as u16;
            let lsl = match kind {
                LslKind::Qinq => HomeLsl::Qinq(10, c_vid),
                LslKind::Vxlan => HomeLsl::Vxlan(5000 + id),
                LslKind::Vxlan6 => HomeLsl::Vxlan6(5000 + id),
                _ => HomeLsl::Vlan(c_vid),
            };
            HomeSpec {
                id,
                lsl,
                client: clients[(id as usize - 1) % clients.len()],
            }
        })
        .collect()
}

/// The speed tiers the lab's homes get, in turn: (down, up), Mbit/s.
const TIERS: [(u32, u32); 4] = [(100, 20), (50, 10), (200, 50), (20, 5)];

/// Home `id`'s tier.
fn tier(id: u32) -> (u32, u32) {
    TIERS[(id as usize - 1) % TIERS.len()]
}

/// Whether TCP goodput `mbps` reaches a tier of `tier` Mbit/s: 85% to 102% (TCP's payload
/// is 96.5% of the IPv4 bytes the tier counts).
fn at_tier(mbps: f64, tier: u32) -> bool {
    (0.85 * f64::from(tier)..=1.02 * f64::from(tier)).contains(&mbps)
}

/// One home's results.
struct Status {
    lease: Result<std::net::Ipv4Addr, String>,
    ping: bool,
    http: bool,
    /// iperf3 TCP at the home's tier, (down, up), Mbit/s.
    iperf3: Result<(f64, f64), String>,
    /// Debian's STUN client's verdict.
    stun: Result<String, String>,
    /// IPv6.
    v6: V6Status,
}

/// One home's IPv6 results.
struct V6Status {
    /// The home's prefix (the API's).
    prefix: Option<ipnet::Ipv6Net>,
    /// The host's SLAAC address (EUI-64 in the LAN /64).
    slaac: Result<std::net::Ipv6Addr, String>,
    /// Its DHCPv6 (IA_NA) address.
    dhcp6: Result<std::net::Ipv6Addr, String>,
    /// The prefix delegated to it (IA_PD), inside the home's prefix and outside its LAN.
    pd: Result<ipnet::Ipv6Net, String>,
    ping: bool,
    /// Ping from the SLAAC address alone (a host without DHCPv6).
    ping_slaac: bool,
    /// HTTP over IPv6, the server seeing one of the host's own addresses.
    http: bool,
    /// iperf3 TCP over IPv6, Mbit/s.
    iperf3: Result<f64, String>,
}

fn up(args: &Args) -> anyhow::Result<bool> {
    if !nix::unistd::geteuid().is_root() {
        bail!("the lab needs root (network namespaces, XDP, bpffs)");
    }
    down()?;
    if args.keep_state {
        progress(&format!(
            "keeping the previous lab's vG state ({})",
            vgd::state_dir(INSTANCE).display()
        ));
    } else {
        forget_state()?;
    }
    eprintln!("==> lab: {} homes, LSL {:?}", args.homes, args.lsl);
    progress("internet, vG (vgd), access network, ACS; BRGs provisioned over TR-069 (zero touch)");
    let naming = Naming::Fixed(NS_PREFIX.into());
    let topo = match &args.container {
        Some(image) => {
            progress(&format!("vgd runs from the image {image} (podman)"));
            Topology::build_dual_stack_in_container(naming, &specs(args), INSTANCE, image)
        }
        None => Topology::build_dual_stack(naming, &specs(args), INSTANCE),
    };

    progress(
        "servers on the internet: web (busybox httpd), iperf3, STUN (stund); web and iperf3 on IPv6 too",
    );
    let servers = topo.start_servers();

    progress("the homes' DHCP clients (dhclient, udhcpc, dhcpcd)");
    let leases = topo.dhcp(Duration::from_secs(30));

    progress("each home pings its gateway, fetches a page, runs iperf3 and STUN through the NAT");
    progress(
        "IPv6: SLAAC (the kernel's), DHCPv6 address and prefix (dhcpcd, dhclient -6), ping, HTTP, iperf3",
    );
    let (v6, dhcp6_clients) = ipv6_checks(&topo, &servers);
    let mut statuses = Vec::new();
    for ((home, lease), v6) in topo.homes.iter().zip(leases).zip(v6) {
        let ok = lease.is_ok();
        let ping = ok
            && home
                .host
                .command("ping")
                .args(["-c", "2", "-i", "0.2", "-W", "2", &GATEWAY.to_string()])
                .output()
                .is_ok_and(|o| o.status.success());
        let http = ok
            && home
                .host
                .run(|| nerg_tests::http::get((SERVER, 80).into(), "/"))
                .is_some_and(|(code, body)| code == 200 && body == WEB_PAGE);
        let iperf3 = if ok {
            let (down, up) = tier(home.spec.id);
            set_tier(&topo, home, down, up).and_then(|()| {
                // 10 s after a first one left out (TCP's start): a bucket still full when
                // the window opens adds its burst (half a second at the tier) to the
                // window, 5% of 10 s (tests/tests/qos_goodput.rs says more).
                let run = |extra: &[&str]| topology::iperf3(&home.host, 5201, 10, extra);
                Ok((run(&["-O", "1", "-R"])?, run(&["-O", "1"])?))
            })
        } else {
            Err("no lease".to_owned())
        };
        let stun = if ok {
            topology::stun(&home.host)
        } else {
            Err("no lease".to_owned())
        };
        statuses.push(Status {
            lease,
            ping,
            http,
            iperf3,
            stun,
            v6,
        });
    }

    let counters = Counters::open(&bpffs::pin_dir(bpffs::DEFAULT_MOUNT.as_ref(), INSTANCE))
        .context("reading the vG's counters")?;
    print_table(&topo, &statuses, &counters);

    println!();
    let mut all_ok = true;
    for (home, s) in topo.homes.iter().zip(&statuses) {
        let stun_ok = s
            .stun
            .as_ref()
            .is_ok_and(|v| topology::stun_is_eim_with_hairpin(v));
        for (what, ok) in [
            ("DHCP lease", s.lease.is_ok()),
            ("ping gateway", s.ping),
            ("HTTP through NAT", s.http),
            ("iperf3 TCP through NAT", s.iperf3.is_ok()),
            (
                "TCP goodput at the home's speed tier, down and up",
                s.iperf3.as_ref().is_ok_and(|&(d, u)| {
                    let (td, tu) = tier(home.spec.id);
                    at_tier(d, td) && at_tier(u, tu)
                }),
            ),
            ("STUN: endpoint-independent mapping, hairpinning", stun_ok),
            (
                "IPv6 SLAAC address from the home's LAN /64",
                s.v6.slaac.is_ok(),
            ),
            ("IPv6 DHCPv6 address", s.v6.dhcp6.is_ok()),
            (
                "IPv6 prefix delegation inside the home's prefix",
                s.v6.pd.is_ok(),
            ),
            ("ping over IPv6", s.v6.ping),
            ("ping over IPv6 from the SLAAC address", s.v6.ping_slaac),
            (
                "HTTP over IPv6, the server seeing the host's address",
                s.v6.http,
            ),
            ("iperf3 TCP over IPv6", s.v6.iperf3.is_ok()),
        ] {
            all_ok &= ok;
            println!(
                "{} home {} ({} {}): {what}",
                if ok { "PASS" } else { "FAIL" },
                home.spec.id,
                home.lsl_text(),
                home.spec.client.name()
            );
        }
        if let Err(out) = &s.lease {
            println!(
                "     {} said: {}",
                home.spec.client.name(),
                out.trim().replace('\n', "\n     ")
            );
        }
        match &s.stun {
            Ok(v) if !stun_ok => println!("     stun said: {v}"),
            Err(out) if s.lease.is_ok() => println!("     stun said: {}", out.trim()),
            _ => {}
        }
        if let (Err(e), Ok(_)) = (&s.iperf3, &s.lease) {
            println!("     {e}");
        }
        for e in [&s.v6.slaac, &s.v6.dhcp6]
            .into_iter()
            .filter_map(|r| r.as_ref().err())
            .chain(s.v6.pd.as_ref().err())
            .chain(s.v6.iperf3.as_ref().err())
        {
            println!("     IPv6: {}", e.trim().replace('\n', "\n     "));
        }
    }

    if args.keep {
        let log = topo.dir.join("vgd.log");
        std::fs::write(&log, topo.vgd.log()).ok();
        std::mem::forget(servers);
        std::mem::forget(dhcp6_clients);
        let dir = topo.dir.clone();
        // Leave every namespace and process in place; `cargo xtask lab down` removes them.
        std::mem::forget(topo);
        println!();
        println!("The lab is running (cargo xtask lab down removes it):");
        println!("  namespaces:  ip netns list | grep {NS_PREFIX}");
        println!("  a home:      nsenter --net=/run/netns/{NS_PREFIX}home1 bash");
        println!(
            "  its IPv6:    nsenter --net=/run/netns/{NS_PREFIX}home1 rdisc6 h1 (the RA); ip -6 addr (SLAAC, DHCPv6)"
        );
        println!(
            "  metrics:     nsenter --net=/run/netns/{NS_PREFIX}vg curl -s http://{}/metrics",
            vgd::LISTEN
        );
        println!(
            "  REST API:    nsenter --net=/run/netns/{NS_PREFIX}vg env VGCTL_TOKEN={} target/release/vgctl subscribers list",
            vgd::API_TOKEN
        );
        println!(
            "               (or curl -H 'Authorization: Bearer {}' http://{}/api/v1/subscribers)",
            vgd::API_TOKEN,
            vgd::LISTEN
        );
        println!("  counters:    target/release/vgctl --instance {INSTANCE} stats");
        println!(
            "  the ACS:     in this process, gone with it; BRGs keep their configuration (brgd state in {})",
            dir.display()
        );
        println!(
            "  files:       {} (vgd config, client leases)",
            dir.display()
        );
    }
    Ok(all_ok)
}

/// What the ACS knows of a BRG: its sessions, and whether provisioning went through.
fn brg_state(topo: &Topology, home: &nerg_tests::topology::Home) -> String {
    let sessions = topo.acs.sessions_of(&home.serial());
    let Some(first) = sessions.first() else {
        return "no Inform".to_owned();
    };
    let state = if first.ended && !first.faulted() {
        "provisioned"
    } else {
        "FAULT"
    };
    // The last status the BRG reported (the provisioning session's final
    // GetParameterValues): what Linux does, as the ACS sees it.
    let reported = sessions
        .iter()
        .flat_map(|s| s.answers.iter())
        .filter_map(|a| match &a.body {
            cwmp::soap::Body::GetParameterValuesResponse(r) => Some(r),
            _ => None,
        })
        .rfind(|r| {
            r.parameter_list
                .iter()
                .any(|p| p.name == nerg_tests::provision::STATUS_PARAMS[0])
        })
        .map(|r| {
            let value = |name: &str| {
                r.parameter_list
                    .iter()
                    .find(|p| p.name == name)
                    .map_or("?", |p| p.value.as_str())
            };
            let [bridge, port, stack] = nerg_tests::provision::STATUS_PARAMS;
            format!(
                "br {}, LSL port {}, stack {}",
                value(bridge),
                value(port),
                value(stack)
            )
        })
        .unwrap_or_else(|| "no status read".to_owned());
    format!("{} {state}: {reported}", home.serial())
}

/// Gives `home` its speed tier through vgd's API (as an operator would, at run time).
fn set_tier(topo: &Topology, home: &topology::Home, down: u32, up: u32) -> Result<(), String> {
    let (down, up) = (format!("{down}M"), format!("{up}M"));
    let lsl = home.lsl_text();
    match nerg_tests::vgd::put_tier(&topo.vg, home.spec.id, &lsl, Some(&down), Some(&up)) {
        (200, _) => Ok(()),
        (code, answer) => Err(format!("setting the tier: {code} {answer}")),
    }
}

fn print_table(topo: &Topology, statuses: &[Status], counters: &Counters) {
    println!();
    println!(
        "{:<5} {:<30} {:<56} {:<9} {:<15} {:<23} {:<26} {:<24} {:>9} {:>9} {:>9} {:>13}  STUN",
        "HOME",
        "LSL",
        "BRG (TR-069)",
        "CLIENT",
        "LEASE",
        "IPV6 PREFIX",
        "IPV6 HOST (DHCPV6/SLAAC)",
        "PUBLIC ADDRESS:PORTS",
        "PKTS UP",
        "PKTS DOWN",
        "TIER",
        "TCP DOWN/UP"
    );
    for (home, s) in topo.homes.iter().zip(statuses) {
        let lease = s.lease.as_ref().map_or("-".to_owned(), ToString::to_string);
        let public = counters
            .subscriber(home.spec.id)
            .ok()
            .map_or("-".to_owned(), |sub| {
                let ip = std::net::Ipv4Addr::from(sub.public_ip.to_ne_bytes());
                let first = sub.blocks[0];
                format!("{ip}:{first}+")
            });
        let c = counters
            .subscriber_counters(home.spec.id)
            .unwrap_or_default();
        let (td, tu) = tier(home.spec.id);
        let rate = s
            .iperf3
            .as_ref()
            .map_or("-".to_owned(), |(d, u)| format!("{d:.1}/{u:.1}"));
        let stun = s.stun.as_deref().unwrap_or("-");
        let prefix = s.v6.prefix.map_or("-".to_owned(), |p| p.to_string());
        let host6 =
            s.v6.dhcp6
                .as_ref()
                .or(s.v6.slaac.as_ref())
                .map_or("-".to_owned(), ToString::to_string);
        println!(
            "{:<5} {:<30} {:<56} {:<9} {:<15} {:<23} {:<26} {:<24} {:>9} {:>9} {:>9} {:>13}  {}",
            home.spec.id,
            home.lsl_text(),
            brg_state(topo, home),
            home.spec.client.name(),
            lease,
            prefix,
            host6,
            public,
            c.up_packets,
            c.down_packets,
            format!("{td}M/{tu}M"),
            rate,
            stun
        );
    }
}

/// How long a host may take for SLAAC and for DHCPv6.
const V6_TIMEOUT: Duration = Duration::from_secs(30);

/// Every home's IPv6 checks (hosts started together, then checked one by one), and the
/// DHCPv6 clients, which keep running while the lab does.
fn ipv6_checks(topo: &Topology, servers: &topology::Servers) -> (Vec<V6Status>, Vec<ipv6::Dhcp6>) {
    let assignments: Vec<Option<ipv6::Assignment>> = topo
        .homes
        .iter()
        .map(|h| topo.ipv6_assignment(h.spec.id))
        .collect();
    for home in &topo.homes {
        home.start_ipv6();
    }
    let slaacs: Vec<Result<std::net::Ipv6Addr, String>> = topo
        .homes
        .iter()
        .zip(&assignments)
        .map(|(home, a)| {
            let lan = a.ok_or("no IPv6 assignment")?.lan;
            let addr = home.wait_slaac(lan, V6_TIMEOUT)?;
            let eui64 = home.eui64_address(lan);
            (addr == eui64)
                .then_some(addr)
                .ok_or_else(|| format!("SLAAC formed {addr}, not the EUI-64 {eui64}"))
        })
        .collect();
    let clients: Vec<ipv6::Dhcp6> = (0..topo.homes.len()).map(|i| topo.dhcp6(i)).collect();
    let mut out = Vec::new();
    for (((home, a), slaac), client) in topo
        .homes
        .iter()
        .zip(&assignments)
        .zip(slaacs)
        .zip(&clients)
    {
        let Some(a) = *a else {
            out.push(V6Status {
                prefix: None,
                slaac,
                dhcp6: Err("no IPv6 assignment".into()),
                pd: Err("no IPv6 assignment".into()),
                ping: false,
                ping_slaac: false,
                http: false,
                iperf3: Err("no IPv6 assignment".into()),
            });
            continue;
        };
        let dhcp6 = poll(V6_TIMEOUT, || home.dhcp6_address(a.lan))
            .ok_or_else(|| format!("no DHCPv6 address in {}:\n{}", a.lan, client.log()));
        let pd = poll(V6_TIMEOUT, || client.delegated())
            .ok_or_else(|| format!("no delegated prefix:\n{}", client.log()))
            .and_then(|pd| {
                let inside = a.prefix.contains(&pd)
                    && !pd.contains(&a.lan.network())
                    && !a.lan.contains(&pd.network());
                inside
                    .then_some(pd)
                    .ok_or_else(|| format!("delegated {pd}: not in {} outside {}", a.prefix, a.lan))
            });
        let ping = ipv6::ping(&home.host, SERVER6.into());
        let ping_slaac = slaac
            .as_ref()
            .is_ok_and(|a| ipv6::ping_from(&home.host, *a, SERVER6).is_ok());
        let own = [slaac.as_ref().ok(), dhcp6.as_ref().ok()];
        let http = home
            .host
            .run(|| nerg_tests::http::get((SERVER6, 80).into(), "/"))
            .is_some_and(|(code, body)| code == 200 && body == WEB_PAGE)
            && servers
                .v6
                .as_ref()
                .is_some_and(|v6| own.iter().flatten().any(|a| v6.http_saw(**a)));
        let iperf3 = topology::iperf3_to(&home.host, SERVER6.into(), 5201, 1, &[]);
        out.push(V6Status {
            prefix: Some(a.prefix),
            slaac,
            dhcp6,
            pd,
            ping,
            ping_slaac,
            http,
            iperf3,
        });
    }
    (out, clients)
}

/// `f`'s first `Some` within `timeout` (polled every 100 ms), or `None`.
fn poll<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if std::time::Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
