//! Benchmark 3, DHCPv6 over the wire: Debian's `perfdhcp -6` (Solicit, Advertise, Request,
//! Reply; one IA_NA per client) in a home behind its BRG and VXLAN LSL, against vgd and, in
//! the same run, against Kea's `kea-dhcp6` (memfile with persistence) on a kernel vxlan
//! device terminating the same LSL ([`crate::perfdhcp::access6`]). The rate search is the
//! DHCPv4 one ([`super::dhcp`]): steps of offered exchanges/s, the highest with at most
//! 0.1% drops, searches alternating between the two servers.
//!
//! Unlike `-4`, perfdhcp `-6` is no relay here: it multicasts from the home interface's
//! link-local address to ff02::1:2, as a home's hosts do.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use super::{
    Effort, Summary,
    dhcp::{SEARCH_FIGURES, Search, SearchFigure, VGD_PER_HOME_PPS, search_with},
    median,
};
use crate::{
    NsProcess,
    netns::unique_name,
    perfdhcp::{self, Access, VgdRig},
    wait_until,
};

/// Simulated clients (`-R`): inside vgd's default IA_NA range (4,096 addresses) and Kea's
/// pool.
const CLIENTS: u32 = 1000;

/// The Kea side: the same home, BRG and VXLAN LSL; the vG namespace terminates the LSL with
/// a kernel vxlan device and runs kea-dhcp6 on it.
struct Kea6Rig {
    // Drop order: Kea, then the namespaces.
    _kea: NsProcess,
    net: Access,
    dir: PathBuf,
}

impl Drop for Kea6Rig {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// kea-dhcp6's configuration: the home's LAN /64 on `vx0`, a memfile lease store persisted
/// in `dir` (which also holds the server DUID Kea would otherwise write under /var/lib).
fn kea_config(dir: &Path) -> String {
    serde_json::json!({
        "Dhcp6": {
            "interfaces-config": { "interfaces": ["vx0"] },
            "data-directory": dir,
            "server-id": { "type": "LL", "htype": 1, "identifier": "024e47000001", "persist": false },
            "lease-database": {
                "type": "memfile",
                "persist": true,
                "lfc-interval": 0,
                "name": dir.join("kea-leases6.csv"),
            },
            "preferred-lifetime": 3000,
            "valid-lifetime": 3600,
            "renew-timer": 1800,
            "rebind-timer": 2880,
            "subnet6": [{
                "id": 1,
                "subnet": "2001:db8:100::/64",
                "interface": "vx0",
                "pools": [{ "pool": "2001:db8:100::1000 - 2001:db8:100::1fff" }],
            }],
            "loggers": [{ "name": "kea-dhcp6", "severity": "INFO",
                          "output_options": [{ "output": "stdout" }] }],
        }
    })
    .to_string()
}

fn kea_rig() -> anyhow::Result<Kea6Rig> {
    let dir = std::env::temp_dir().join(unique_name("bench-kea6"));
    std::fs::create_dir_all(&dir)?;
    let net = perfdhcp::access6("bkea6");
    let vg = &net.vg;
    perfdhcp::kernel_lsl(vg, "vx0");
    vg.exec("sysctl", &["-qw", "net.ipv6.conf.vx0.accept_dad=0"]);
    vg.ip(&["addr", "add", "2001:db8:100::1/64", "dev", "vx0", "nodad"]);
    vg.link_up("vx0");
    let conf = dir.join("kea-dhcp6.conf");
    std::fs::write(&conf, kea_config(&dir))?;
    let mut kea = vg.spawn(
        "kea-dhcp6",
        vg.command("kea-dhcp6")
            .arg("-c")
            .arg(&conf)
            .env("KEA_PIDFILE_DIR", &dir)
            .env("KEA_LOCKFILE_DIR", &dir),
    );
    wait_until("kea-dhcp6 to start", Duration::from_secs(20), || {
        kea.assert_running();
        kea.log().contains("DHCP6_STARTED")
    });
    Ok(Kea6Rig {
        _kea: kea,
        net,
        dir,
    })
}

/// vgd serving the perfdhcp `-6` home: [`VgdRig`] on [`perfdhcp::access6`].
fn vgd_rig() -> VgdRig {
    VgdRig::start_on(
        perfdhcp::access6("bvgd6"),
        "bvgd6",
        &perfdhcp::vgd_config6(VGD_PER_HOME_PPS),
    )
}

/// The over-the-wire DHCPv6 figures: perfdhcp `-6` through a VXLAN LSL against Kea and
/// against vgd, searches alternating.
pub fn wire(effort: Effort, summary: &mut Summary) -> anyhow::Result<()> {
    let rates: Vec<u32> = effort.pick((1..=20).map(|k| k * 1000).collect(), vec![200]);
    let secs = effort.pick(4, 1);
    let searches = effort.pick(3, 1);
    let kea = kea_rig()?;
    let vgd = vgd_rig();
    let mut kea_runs = Vec::new();
    let mut vgd_runs = Vec::new();
    for _ in 0..searches {
        kea_runs.push(search_with(&kea.net.host, &rates, secs, run)?);
        vgd_runs.push(search_with(&vgd.net.host, &rates, secs, run)?);
    }
    let pick = |runs: &[Search], f: SearchFigure| median(&runs.iter().map(f).collect::<Vec<_>>());
    for (prefix, runs) in [("kea6_wire", &kea_runs), ("dhcpv6_wire", &vgd_runs)] {
        for (name, figure) in SEARCH_FIGURES {
            summary.set(&format!("{prefix}_{name}"), pick(runs, figure));
        }
    }
    summary.ratio(
        "dhcpv6_wire_vs_kea_ratio",
        "dhcpv6_wire_leases_per_s",
        "kea6_wire_leases_per_s",
    );
    if summary.get("dhcpv6_wire_vs_kea_ratio").is_none() {
        summary.note(
            "dhcpv6_wire_vs_kea_ratio",
            "undefined: Kea sustained no step with <= 0.1% drops",
        );
    }
    summary.remark(format!(
        "DHCPv6 over the wire: perfdhcp -6 -R {CLIENTS} from a home through its BRG and a \
         VXLAN LSL (Solicit to ff02::1:2 from the home's link-local address), the same rate \
         steps and searches as DHCPv4, Kea and vgd alternating. Kea 2.2 kea-dhcp6: memfile \
         with persistence on a kernel vxlan device; vgd: [ipv6] on, per-home limit \
         {VGD_PER_HOME_PPS}/s, every Reply sent only after its binding's transaction is \
         committed (fsync), one transaction per batch of punted frames"
    ));
    Ok(())
}

/// perfdhcp `-6` with [`CLIENTS`] clients at `load`'s rate.
fn run(home: &crate::Netns, load: &perfdhcp::Load) -> anyhow::Result<perfdhcp::PerfRun> {
    perfdhcp::run6(
        home,
        &perfdhcp::Load {
            clients: CLIENTS,
            ..*load
        },
    )
}
