//! Control-plane figures: provisioning subscribers through vgd's REST API, and brgd (one
//! CWMP session's latency against the test ACS, idle memory).

use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};

use super::{Effort, Summary, median};
use crate::{
    Netns, PinDir,
    acs::{Acs, AcsConfig, connection_request},
    bin,
    netns::veth,
    wait_until,
};

/// Provisions 100,000 homes (quick: 2,000) with one bulk call; the figure is scaled to
/// 100,000 in quick mode only nominally (it is the measured time).
pub fn provision(effort: Effort, summary: &mut Summary) -> anyhow::Result<()> {
    let homes: u32 = effort.pick(100_000, 2_000);
    let vg = Netns::new("bpr-vg");
    let peer = Netns::new("bpr-peer");
    vg.disable_ipv6();
    veth(&vg, "acc0", &peer, "lsl0");
    let pins = PinDir::new("bpr");
    // A /19 of public addresses: room for every home's block of 512 ports.
    let config = std::env::temp_dir().join(format!("{}.toml", pins.instance()));
    std::fs::write(
        &config,
        "[nat]\npool = [\"100.64.0.0/19\"]\nblock_size = 512\n",
    )?;
    let mut vgd = crate::vgd::start_with_config(&vg, "acc0", pins.instance(), Some(&config));
    let _ = std::fs::remove_file(&config);
    let mut body = String::from(r#"{"subscribers": ["#);
    for id in 1..=homes {
        if id > 1 {
            body.push(',');
        }
        let (s, c) = (id / 4000 + 1, id % 4000 + 1);
        body.push_str(&format!(r#"{{"id":{id},"lsl":"qinq:{s}.{c}"}}"#));
    }
    body.push_str("]}");
    let started = Instant::now();
    let (code, answer) = crate::vgd::api(&vg, "POST", "/api/v1/subscribers/bulk", Some(&body));
    let took = started.elapsed().as_secs_f64();
    vgd.assert_running();
    ensure!(code == 201, "bulk create answered {code}: {answer}");
    summary.set("provision_100k_s", took);
    summary.set("provision_homes", f64::from(homes));
    summary.note(
        "provision_100k_s",
        "one bulk POST, every home durable in the store and in the fast path; quick: 2,000",
    );
    vgd.terminate(Duration::from_secs(20));
    let _ = std::fs::remove_dir_all(crate::vgd::state_dir(pins.instance()));
    Ok(())
}

/// brgd against the test ACS on loopback: the Inform-to-204 time of sessions opened by
/// connection requests (median), and brgd's resident memory once idle.
pub fn brgd(effort: Effort, summary: &mut Summary) -> anyhow::Result<()> {
    let sessions: usize = effort.pick(21, 3);
    let (samples, rss) = brgd_sessions(&bin("brgd"), sessions)?;
    summary.set("cwmp_session_ms", median(&samples));
    summary.note(
        "cwmp_session_ms",
        "Inform arrival to the ACS's 204 (connection-request sessions, loopback, no RPCs)",
    );
    summary.set("brgd_idle_rss_kib", rss as f64);
    Ok(())
}

/// Runs `binary` (a brgd) against a test ACS on loopback: its BOOTSTRAP session, then
/// `sessions` sessions opened by connection requests. Returns each of those sessions'
/// Inform-to-204 time in ms, and brgd's resident memory (KiB) once idle after them.
pub fn brgd_sessions(binary: &std::path::Path, sessions: usize) -> anyhow::Result<(Vec<f64>, u64)> {
    let acs = Acs::start(AcsConfig::default());
    let dir = std::env::temp_dir().join(crate::netns::unique_name("bench-brgd"));
    std::fs::create_dir_all(&dir)?;
    let cr_port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let factory = dir.join("factory");
    std::fs::write(
        &factory,
        "cwmp-model 1\nV Device.ManagementServer.ConnectionRequestUsername bench\n\
         V Device.ManagementServer.ConnectionRequestPassword bench-secret\n",
    )?;
    let mut brgd = std::process::Command::new(binary)
        .arg("--acs-url")
        .arg(acs.url())
        .arg("--state-dir")
        .arg(dir.join("state"))
        .arg("--factory-defaults")
        .arg(&factory)
        .arg("--cr-listen")
        .arg(format!("127.0.0.1:{cr_port}"))
        .args(["--cr-min-interval", "0", "--apply", "log", "--log", "warn"])
        .args(["--serial-number", "BENCH0001"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .with_context(|| format!("starting {}", binary.display()))?;
    let result = (|| {
        acs.wait_sessions(1, Duration::from_secs(30));
        let first = acs.sessions().into_iter().next().context("no session")?;
        let url = first
            .param("Device.ManagementServer.ConnectionRequestURL")
            .context("no ConnectionRequestURL in the Inform")?
            .to_owned();
        let mut samples = Vec::new();
        for n in 2..=sessions + 1 {
            let status = connection_request(&url, "bench", "bench-secret");
            ensure!(status == 200, "connection request answered {status}");
            let log = acs.wait_sessions(n, Duration::from_secs(30));
            let s = log.last().context("session")?;
            let (Some(end), start) = (s.ended_at, s.started) else {
                bail!("session {n} did not end");
            };
            samples.push(end.duration_since(start).as_secs_f64() * 1e3);
        }
        // Idle: no session, nothing pending (give the last session's work a moment to end).
        let pid = brgd.id();
        let mut rss = 0;
        wait_until("brgd to idle", Duration::from_secs(10), || {
            let now = super::scale::rss_kib(pid).unwrap_or(0);
            let settled = now != 0 && now == rss;
            rss = now;
            settled
        });
        Ok((samples, rss))
    })();
    let _ = brgd.kill();
    let _ = brgd.wait();
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// The slow path's cost (issue 4 asks for a measurement behind the mechanism: a ring buffer
/// from XDP, replies on an AF_PACKET socket): a home pings its gateway (punted to vgd,
/// answered from userspace, sent back with the home's LSL) and, as the baseline, the
/// internet's server (the XDP fast path both ways, answered by a kernel). Pings are paced
/// under the per-home slow-path limit (200/s).
pub fn slowpath(effort: Effort, summary: &mut Summary) -> anyhow::Result<()> {
    use crate::topology::{DhcpClient, GATEWAY, HomeLsl, HomeSpec, Naming, SERVER, Topology};
    let count: u32 = effort.pick(400, 20);
    let instance = crate::netns::unique_name("bslow");
    let topo = Topology::build(
        Naming::Test("bslow".into()),
        &[HomeSpec {
            id: 1,
            lsl: HomeLsl::Qinq(10, 101),
            client: DhcpClient::Udhcpc,
        }],
        &instance,
    );
    let lease = topo.dhcp(Duration::from_secs(30)).remove(0);
    if let Err(out) = lease {
        bail!("no lease: {out}");
    }
    let home = &topo.homes[0];
    let rtt = |dst: std::net::Ipv4Addr| -> anyhow::Result<(f64, f64)> {
        let out = home
            .host
            .command("ping")
            .args(["-q", "-n", "-i", "0.025", "-W", "1", "-c"])
            .arg(count.to_string())
            .arg(dst.to_string())
            .output()?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        // "rtt min/avg/max/mdev = 0.041/0.062/0.212/0.020 ms" and "... 0% packet loss"
        let avg = text
            .lines()
            .find_map(|l| l.strip_prefix("rtt min/avg/max/mdev = "))
            .and_then(|v| v.split('/').nth(1)?.parse::<f64>().ok())
            .with_context(|| format!("ping {dst}: {text}"))?;
        let loss = text
            .split(',')
            .find_map(|p| p.trim().strip_suffix("% packet loss"))
            .and_then(|v| v.parse::<f64>().ok())
            .with_context(|| format!("ping {dst}: {text}"))?;
        Ok((avg * 1000.0, loss))
    };
    let (slow, slow_loss) = rtt(GATEWAY)?;
    let (fast, fast_loss) = rtt(SERVER)?;
    summary.set("slowpath_echo_rtt_us", slow);
    summary.set("slowpath_echo_loss_pct", slow_loss);
    summary.set("fastpath_echo_rtt_us", fast);
    summary.set("fastpath_echo_loss_pct", fast_loss);
    summary.ratio(
        "slowpath_vs_fastpath_rtt_ratio",
        "slowpath_echo_rtt_us",
        "fastpath_echo_rtt_us",
    );
    summary.note(
        "slowpath_echo_rtt_us",
        "ping to the home's gateway: XDP punt -> ring buffer -> vgd -> AF_PACKET reply, QinQ",
    );
    summary.note(
        "fastpath_echo_rtt_us",
        "ping to the internet server through the XDP NAT both ways, same home (baseline)",
    );
    Ok(())
}
