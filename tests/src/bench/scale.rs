//! Benchmark 4: scale.
//!
//! - NAT sessions: the fast path's NAT maps are filled with 1,000,000 sessions (forward and
//!   reverse entry each) written directly, which must all fit; `nat_sessions_max` is what
//!   the map sizes allow, `bytes_per_nat_session` the kernel's memory accounting of the two
//!   maps (`memlock` in their fdinfo; the maps are preallocated, so it holds at any fill)
//!   divided by their capacity, and `vg_map_memory_mib` the whole fast path's maps.
//! - vgd with many subscribers: a generated configuration file with 100,000 QinQ
//!   subscribers (each with its NAT port block); `vgd_rss_100k_subs_mib` is vgd's resident
//!   memory once it is ready, `vgd_start_100k_subs_s` how long it took to get there.
//!   (Provisioning through the REST API, `provision_100k_s`, waits for that API.)

use std::{
    fmt::Write as _,
    os::fd::{AsFd as _, AsRawFd as _},
    path::Path,
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use aya::maps::{HashMap, Map, MapData};
use nerg_abi::{NatFwdKey, NatMapping, NatRev, NatRevKey, map_names};
use vg::fastpath::FastPath;

use super::{Effort, Summary};
use crate::{Netns, PinDir, netns::veth, wait_until};

/// The kernel's memory accounting of a map (`memlock:` in its fdinfo), in bytes.
fn memlock(map: &MapData) -> anyhow::Result<u64> {
    let fd = map.fd().as_fd().as_raw_fd();
    let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{fd}"))?;
    info.lines()
        .find_map(|l| l.strip_prefix("memlock:"))
        .and_then(|v| v.trim().parse().ok())
        .context("no memlock in the map's fdinfo")
}

fn open_pinned(pins: &Path, name: &str) -> anyhow::Result<MapData> {
    MapData::from_pin(pins.join(name)).with_context(|| format!("opening pinned map {name}"))
}

/// NAT map capacity and memory, with `sessions` sessions written.
pub fn nat(effort: Effort, summary: &mut Summary) -> anyhow::Result<()> {
    let sessions: u32 = effort.pick(1_000_000, 10_000);
    let pins = PinDir::new("bscale");
    let _fp = FastPath::load(pins.path()).context("loading the fast path")?;
    let fwd_data = open_pinned(pins.path(), map_names::NAT_FWD)?;
    let rev_data = open_pinned(pins.path(), map_names::NAT_REV)?;
    let capacity = fwd_data
        .info()?
        .max_entries()
        .min(rev_data.info()?.max_entries());
    let bytes = memlock(&fwd_data)? + memlock(&rev_data)?;
    let mut fwd: HashMap<_, NatFwdKey, NatMapping> = HashMap::try_from(Map::HashMap(fwd_data))?;
    let mut rev: HashMap<_, NatRevKey, NatRev> = HashMap::try_from(Map::HashMap(rev_data))?;
    // Session n: home n / 1000 (1000 sessions each), host 10.x.y.z, private port 1024 + n %
    // 1000; public address 198.18.0.0 + n / 60000, port 1024 + n % 60000.
    let t = Instant::now();
    for n in 0..sessions {
        let sub = n / 1000 + 1;
        let priv_ip = u32::from_ne_bytes([10, (n >> 16) as u8, (n >> 8) as u8, n as u8]);
        let priv_port = (1024 + (n % 1000) as u16).to_be();
        let pub_ip =
            u32::from_ne_bytes(std::net::Ipv4Addr::from(0xc612_0000 + n / 60_000).octets());
        let pub_port = (1024 + (n % 60_000) as u16).to_be();
        let key = NatFwdKey {
            sub,
            priv_ip,
            priv_port,
            proto: 17,
            _pad: 0,
        };
        let mapping = NatMapping {
            pub_ip,
            pub_port,
            ..NatMapping::default()
        };
        fwd.insert(key, mapping, 0)
            .with_context(|| format!("NAT session {n} does not fit the forward map"))?;
        rev.insert(
            NatRevKey {
                pub_ip,
                pub_port,
                proto: 17,
                _pad: 0,
            },
            NatRev {
                sub,
                priv_ip,
                priv_port,
                ..NatRev::default()
            },
            0,
        )
        .with_context(|| format!("NAT session {n} does not fit the reverse map"))?;
    }
    let secs = t.elapsed().as_secs_f64();
    let mut total = 0u64;
    for entry in std::fs::read_dir(pins.path())? {
        let path = entry?.path();
        if let Ok(map) = MapData::from_pin(&path) {
            total += memlock(&map).unwrap_or(0);
        }
    }
    summary.set("nat_sessions_max", f64::from(capacity));
    summary.set("nat_sessions_written", f64::from(sessions));
    summary.set("bytes_per_nat_session", bytes as f64 / f64::from(capacity));
    summary.set("nat_map_memory_mib", bytes as f64 / (1024.0 * 1024.0));
    summary.set("vg_map_memory_mib", total as f64 / (1024.0 * 1024.0));
    summary.set("nat_session_writes_per_s", f64::from(sessions) / secs);
    Ok(())
}

/// The QinQ LSL (S-VID, C-VID) of subscriber index `i` in [`many_subscribers_config`].
pub(super) fn qinq_of(i: u32) -> (u16, u16) {
    ((10 + i / 4000) as u16, (1 + i % 4000) as u16)
}

/// A vgd configuration with `n` QinQ subscribers, ids 1..=n, LSLs from [`qinq_of`].
pub(super) fn many_subscribers_config(n: u32) -> String {
    let mut c = String::from(
        "[fastpath]\nvtep = \"10.255.0.1\"\n\n[nat]\npool = [\"198.18.0.0/22\"]\nblock_size = 512\n\n[dhcp]\nlease_time_secs = 3600\n",
    );
    for i in 0..n {
        let (s_vid, c_vid) = qinq_of(i);
        let _ = write!(
            c,
            "\n[[subscriber]]\nid = {}\nlsl = \"qinq:{s_vid}.{c_vid}\"\ngateway = \"192.168.1.1/24\"\n",
            i + 1
        );
    }
    c
}

pub(super) fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .context("no VmRSS")
}

/// vgd's resident memory with many subscribers from a configuration file.
pub fn vgd_memory(effort: Effort, summary: &mut Summary) -> anyhow::Result<()> {
    let subs = effort.pick(100_000, 1_000);
    let vg = Netns::new("bsc-vg");
    let peer = Netns::new("bsc-peer");
    veth(&vg, "acc0", &peer, "lsl0");
    veth(&vg, "core0", &peer, "up0");
    vg.addr_add("acc0", "10.255.0.1/16");
    vg.addr_add("core0", "10.99.0.1/24");
    let pins = PinDir::new("bscv");
    let t = Instant::now();
    let mut vgd = spawn_vgd(&vg, &pins, &many_subscribers_config(subs))?;
    let start = t.elapsed().as_secs_f64();
    let rss = rss_kib(vgd.pid())?;
    vgd.kill();
    if rss == 0 {
        bail!("vgd reported no resident memory");
    }
    summary.set("vgd_rss_100k_subs_mib", rss as f64 / 1024.0);
    summary.set("vgd_start_100k_subs_s", start);
    summary.set("vgd_rss_subscribers", f64::from(subs));
    summary.note(
        "vgd_rss_100k_subs_mib",
        "from a configuration file, after /ready; quick mode uses 1,000",
    );
    Ok(())
}

/// Starts vgd in `vg` (access `acc0`, core `core0`) with `config`, and waits (up to 5
/// minutes: a large configuration takes a while) until it is ready.
pub(super) fn spawn_vgd(
    vg: &Netns,
    pins: &PinDir,
    config: &str,
) -> anyhow::Result<crate::NsProcess> {
    let dir = crate::vgd::state_dir(pins.instance());
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("vgd.toml");
    std::fs::write(&path, config)?;
    let mut cmd = vg.command(crate::bin("vgd"));
    cmd.arg("--state-dir")
        .arg(&dir)
        .args([
            "--access-iface",
            "acc0",
            "--core-iface",
            "core0",
            "--instance",
        ])
        .arg(pins.instance())
        .args(["--listen", crate::vgd::LISTEN, "--config"])
        .arg(&path);
    let mut vgd = vg.spawn("vgd", &mut cmd);
    let addr = crate::vgd::listen_addr();
    wait_until("vgd to answer /ready", Duration::from_secs(300), || {
        vgd.assert_running();
        vg.run(|| crate::http::get(addr, "/ready"))
            .is_some_and(|(code, _)| code == 200)
    });
    Ok(vgd)
}
