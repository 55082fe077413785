//! Benchmark 3: DHCP.
//!
//! - Engine alone: full DORA exchanges through `vg::dhcp::Homes` (decode, state machine,
//!   encode) with the in-memory store (`dhcp_engine_leases_per_s`), and the same with the
//!   embedded redb store, one durable transaction per acknowledged lease
//!   (`dhcp_engine_redb_leases_per_s`: the engine without vgd's group commit). Only the
//!   server's work is timed; the clients' messages are built outside the clock. The
//!   DHCPv6 engine's figure (`dhcpv6_engine_leases_per_s`, [`super::dhcp6`]) is measured in
//!   the same run, interleaved.
//! - Over the wire: Debian's `perfdhcp` (4-way exchanges, 100 simulated clients, broadcast
//!   flag) in a home behind a BRG and its VXLAN LSL ([`crate::perfdhcp`]), in the same run
//!   against Kea's `kea-dhcp4` (memfile lease store with persistence: a CSV line written per
//!   lease change, no fsync; on a kernel vxlan device in the vG namespace that terminates
//!   the LSL) and against `vgd` (its XDP program
//!   terminates the LSL; its redb store on disk, every ACK sent only once its lease is
//!   committed with fsync, one transaction per batch of punted frames). perfdhcp always
//!   acts as a relay (giaddr = its address, replies to port 67): Kea serves that as any
//!   relayed traffic, vgd with the home's `dhcp.relayed = "serve"`; vgd's per-home
//!   slow-path limit is raised ([`VGD_PER_HOME_PPS`]) for this one busy home. Kea and vgd
//!   searches alternate. The offered rate steps up until more than 0.1% of exchanges drop;
//!   the figure is the highest rate sustained (the completed 4-way exchanges per second at
//!   that step), the median over searches.
//! - Many homes: a tool of ours puts thousands of QinQ homes' clients on vgd's access
//!   network, one DORA each (perfdhcp speaks through one LSL only).

use std::{
    net::Ipv4Addr,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use dhcproto::{
    Decodable, Decoder, Encodable, Encoder,
    v4::{DhcpOption, Flags, Message, MessageType},
};
use vg::dhcp::{DhcpConfig, HomeId, HomeServer, Homes, LeaseStore, MemoryStore, UnixTime};

use super::{Effort, Summary, median};
use crate::{
    Netns, NsProcess,
    netns::{unique_name, veth},
    perfdhcp::{self, Access, Load, VgdRig},
    wait_until,
};

/// Addresses in each home's pool (the default range, .100 to .199).
const POOL: u32 = 100;
/// The allowed share of dropped exchanges.
const MAX_DROP_RATIO: f64 = 0.001;
/// vgd's per-home slow-path limit in the wire benchmark (`slowpath.per_home_pps`): one home
/// sends two frames per exchange and some ARP, well under this.
pub const VGD_PER_HOME_PPS: u32 = 200_000;

fn encode(msg: &Message) -> anyhow::Result<Vec<u8>> {
    let mut buf = Vec::new();
    msg.encode(&mut Encoder::new(&mut buf))
        .context("encoding a DHCP message")?;
    Ok(buf)
}

fn client_msg(
    mac: [u8; 6],
    xid: u32,
    kind: MessageType,
    opts: &[DhcpOption],
) -> anyhow::Result<Vec<u8>> {
    let any = Ipv4Addr::UNSPECIFIED;
    let mut msg = Message::new_with_id(xid, any, any, any, any, &mac);
    msg.set_flags(Flags::default().set_broadcast());
    msg.opts_mut().insert(DhcpOption::MessageType(kind));
    msg.opts_mut().insert(DhcpOption::ParameterRequestList(vec![
        1.into(),
        3.into(),
        6.into(),
    ]));
    for o in opts {
        msg.opts_mut().insert(o.clone());
    }
    encode(&msg)
}

/// Leases per second of full DORA exchanges for `homes` x [`POOL`] new clients, timing the
/// server side only (handle + commit to `store`).
fn engine_rate(homes: u32, store: &dyn LeaseStore, now: UnixTime) -> anyhow::Result<f64> {
    let mut engine = Homes::new();
    for h in 0..homes {
        engine.insert(HomeServer::new(HomeId::from(h + 1), DhcpConfig::default()));
    }
    let mut busy = Duration::ZERO;
    let mut leases = 0u64;
    for h in 0..homes {
        let home = HomeId::from(h + 1);
        for c in 0..POOL {
            let mac = [0x02, 0xbe, (h >> 8) as u8, h as u8, 0, c as u8];
            let xid = (h << 8) | c;
            let discover = client_msg(mac, xid, MessageType::Discover, &[])?;
            let t = Instant::now();
            let offer = engine
                .handle_bytes(home, now, &discover)
                .map_err(|e| anyhow::anyhow!("DISCOVER dropped: {e:?}"))?
                .commit(store)?
                .reply
                .context("no OFFER")?;
            busy += t.elapsed();
            let offered = Message::decode(&mut Decoder::new(&offer.payload))
                .context("decoding the OFFER")?
                .yiaddr();
            let request = client_msg(
                mac,
                xid,
                MessageType::Request,
                &[
                    DhcpOption::ServerIdentifier(offer.src),
                    DhcpOption::RequestedIpAddress(offered),
                ],
            )?;
            let t = Instant::now();
            let ack = engine
                .handle_bytes(home, now, &request)
                .map_err(|e| anyhow::anyhow!("REQUEST dropped: {e:?}"))?
                .commit(store)?
                .reply
                .context("no ACK")?;
            busy += t.elapsed();
            if ack.message_type != MessageType::Ack {
                bail!("REQUEST answered with {:?}", ack.message_type);
            }
            leases += 1;
        }
    }
    Ok(leases as f64 / busy.as_secs_f64())
}

/// The engine-alone figures.
pub fn engine(effort: Effort, summary: &mut Summary) -> anyhow::Result<()> {
    let homes = effort.pick(200, 2);
    let redb_homes = effort.pick(20, 1);
    let now = UnixTime::from_system_time(std::time::SystemTime::now());
    let dir = std::env::temp_dir().join(unique_name("bench-dhcp"));
    std::fs::create_dir_all(&dir)?;
    let result = (|| -> anyhow::Result<()> {
        let mut mem = Vec::new();
        let mut redb = Vec::new();
        let mut v6 = Vec::new();
        for i in 0..effort.samples {
            mem.push(engine_rate(homes, &MemoryStore::new(), now)?);
            v6.push(super::dhcp6::engine_rate(homes, now)?);
            let path = dir.join(format!("leases-{i}.redb"));
            let store = vg::store::RedbStore::open(&path)?;
            redb.push(engine_rate(redb_homes, &store, now)?);
        }
        summary.set("dhcp_engine_leases_per_s", median(&mem));
        summary.set("dhcp_engine_redb_leases_per_s", median(&redb));
        summary.set("dhcpv6_engine_leases_per_s", median(&v6));
        Ok(())
    })();
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// What a rate search found.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Search {
    /// Completed exchanges/s at the highest step with at most [`MAX_DROP_RATIO`] drops.
    pub(super) sustained: f64,
    /// Completed exchanges/s at any step, drops or not.
    pub(super) peak: f64,
    /// The drop share (%) at the first step that failed (0 if none failed).
    pub(super) failed_step_drop_pct: f64,
    /// Of the exchanges of that step, the share (%) whose reply reached the home and was
    /// dropped there, perfdhcp's socket buffer being full.
    pub(super) failed_step_client_drop_pct: f64,
}

/// One figure of a [`Search`].
pub(super) type SearchFigure = fn(&Search) -> f64;

/// The figures of a search, by key suffix.
pub(super) const SEARCH_FIGURES: [(&str, SearchFigure); 4] = [
    ("leases_per_s", |s| s.sustained),
    ("peak_leases_per_s", |s| s.peak),
    ("failed_step_drop_pct", |s| s.failed_step_drop_pct),
    ("failed_step_client_drop_pct", |s| {
        s.failed_step_client_drop_pct
    }),
];

/// Steps through `rates` (exchanges/s, `secs` seconds each) with perfdhcp in `home` until
/// more than [`MAX_DROP_RATIO`] of the exchanges drop.
fn search(home: &Netns, rates: &[u32], secs: u32) -> anyhow::Result<Search> {
    search_with(home, rates, secs, perfdhcp::run)
}

/// [`search`] with `run` as perfdhcp (its `-4` or `-6` form).
pub(super) fn search_with(
    home: &Netns,
    rates: &[u32],
    secs: u32,
    run: fn(&Netns, &Load) -> anyhow::Result<perfdhcp::PerfRun>,
) -> anyhow::Result<Search> {
    let mut found = Search::default();
    for &rate in rates {
        let rcvbuf_before = perfdhcp::udp_rcvbuf_errors(home);
        let run = run(
            home,
            &Load {
                clients: POOL,
                rate,
                secs: Some(secs),
                exchanges: None,
                print_leases: false,
            },
        )?;
        let done = run.acks as f64 / f64::from(secs);
        found.peak = found.peak.max(done);
        if run.drop_ratio() > MAX_DROP_RATIO {
            found.failed_step_drop_pct = run.drop_ratio() * 100.0;
            let client = perfdhcp::udp_rcvbuf_errors(home).saturating_sub(rcvbuf_before);
            found.failed_step_client_drop_pct = client as f64 * 100.0 / run.sent.max(1) as f64;
            break;
        }
        found.sustained = found.sustained.max(done);
    }
    Ok(found)
}

/// The Kea side: the same home, BRG and VXLAN LSL; the vG namespace terminates the LSL with
/// a kernel vxlan device and runs kea-dhcp4 on it.
struct KeaRig {
    // Drop order: Kea, then the namespaces.
    _kea: NsProcess,
    net: Access,
    dir: PathBuf,
}

impl Drop for KeaRig {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn kea_config(dir: &Path) -> String {
    serde_json::json!({
        "Dhcp4": {
            "interfaces-config": { "interfaces": ["vx0"], "dhcp-socket-type": "raw" },
            "lease-database": {
                "type": "memfile",
                "persist": true,
                "lfc-interval": 0,
                "name": dir.join("kea-leases4.csv"),
            },
            "valid-lifetime": 3600,
            "subnet4": [{
                "id": 1,
                "subnet": "192.168.1.0/24",
                "pools": [{ "pool": "192.168.1.100 - 192.168.1.199" }],
                "option-data": [{ "name": "routers", "data": "192.168.1.1" }],
            }],
            "loggers": [{ "name": "kea-dhcp4", "severity": "INFO",
                          "output_options": [{ "output": "stdout" }] }],
        }
    })
    .to_string()
}

fn kea_rig() -> anyhow::Result<KeaRig> {
    let dir = std::env::temp_dir().join(unique_name("bench-kea"));
    std::fs::create_dir_all(&dir)?;
    let net = perfdhcp::access("bkea");
    let vg = &net.vg;
    perfdhcp::kernel_lsl(vg, "vx0");
    vg.addr_add("vx0", "192.168.1.1/24");
    vg.link_up("vx0");
    let conf = dir.join("kea-dhcp4.conf");
    std::fs::write(&conf, kea_config(&dir))?;
    let mut kea = vg.spawn(
        "kea-dhcp4",
        vg.command("kea-dhcp4")
            .arg("-c")
            .arg(&conf)
            .env("KEA_PIDFILE_DIR", &dir)
            .env("KEA_LOCKFILE_DIR", &dir),
    );
    wait_until("kea-dhcp4 to start", Duration::from_secs(20), || {
        kea.assert_running();
        kea.log().contains("DHCP4_STARTED")
    });
    Ok(KeaRig {
        _kea: kea,
        net,
        dir,
    })
}

/// The over-the-wire figures: perfdhcp through a VXLAN LSL against Kea and against vgd,
/// searches alternating.
pub fn wire(effort: Effort, summary: &mut Summary) -> anyhow::Result<()> {
    let rates: Vec<u32> = effort.pick((1..=20).map(|k| k * 1000).collect(), vec![200]);
    let secs = effort.pick(4, 1);
    let searches = effort.pick(3, 1);
    let kea = kea_rig()?;
    let vgd = VgdRig::start("bvgd", &perfdhcp::vgd_config(VGD_PER_HOME_PPS));
    let mut kea_rates = Vec::new();
    let mut vgd_rates = Vec::new();
    for _ in 0..searches {
        kea_rates.push(search(&kea.net.host, &rates, secs)?);
        vgd_rates.push(search(&vgd.net.host, &rates, secs)?);
    }
    let pick = |runs: &[Search], f: SearchFigure| median(&runs.iter().map(f).collect::<Vec<_>>());
    for (prefix, runs) in [("kea_wire", &kea_rates), ("dhcp_wire", &vgd_rates)] {
        for (name, figure) in SEARCH_FIGURES {
            summary.set(&format!("{prefix}_{name}"), pick(runs, figure));
        }
    }
    summary.ratio(
        "dhcp_wire_vs_kea_ratio",
        "dhcp_wire_leases_per_s",
        "kea_wire_leases_per_s",
    );
    if summary.get("dhcp_wire_vs_kea_ratio").is_none() {
        summary.note(
            "dhcp_wire_vs_kea_ratio",
            "undefined: Kea sustained no step with <= 0.1% drops",
        );
    }
    // Every lease vgd acknowledged went through its store: the commits prove it ran.
    let metrics = vgd.metrics();
    let commits = perfdhcp::metric_sum(&metrics, "vg_dhcp_store_commits_total", &["result=\"ok\""]);
    let ops = perfdhcp::metric_sum(&metrics, "vg_dhcp_store_ops_total", &[]);
    if commits > 0.0 {
        summary.set("dhcp_wire_leases_per_commit", ops / commits);
    }
    let steps = match rates.as_slice() {
        [first, second, .., last] => format!("{first} to {last} by {}", second - first),
        other => format!("{other:?}"),
    };
    summary.remark(format!(
        "DHCP over the wire: perfdhcp -4 -B -R {POOL} from a home through its BRG and a VXLAN \
         LSL, acting as a relay (giaddr = its address, replies to port 67); rate steps \
         {steps} exchanges/s for {secs} s each, the highest with <= 0.1% drops, median of \
         {searches} searches each, Kea and vgd alternating; *_failed_step_client_drop_pct: the \
         part of the failed step's drops that were replies dropped in the home, perfdhcp's \
         socket buffer being full (the load generator's limit, not the server's). Kea 2.2 kea-dhcp4: memfile with persistence, on \
         a kernel vxlan device (strace: one write(2) of a CSV line per lease change and no \
         fsync, so its leases survive a crash of the process, not of the machine). vgd: \
         dhcp.relayed = \"serve\", per-home limit {VGD_PER_HOME_PPS}/s, its redb store on \
         disk with every ACK sent only after the lease's transaction is committed (fsync), \
         one transaction per batch of punted frames (dhcp_wire_leases_per_commit on average \
         over the run)"
    ));
    Ok(())
}

/// The MAC of many-homes client `i` (one client per home).
fn many_mac(i: u32) -> [u8; 6] {
    let b = i.to_be_bytes();
    [0x02, 0xdc, b[0], b[1], b[2], b[3]]
}

/// A DHCP client message from client `i` as its BRG puts it on the access network: UDP
/// 0.0.0.0:68 -> 255.255.255.255:67 in the home's QinQ LSL.
fn many_frame(i: u32, kind: MessageType, opts: &[DhcpOption]) -> anyhow::Result<Vec<u8>> {
    let mac = many_mac(i);
    let payload = client_msg(mac, i, kind, opts)?;
    let inner = crate::frames::udp(
        mac,
        crate::frames::BROADCAST,
        (Ipv4Addr::UNSPECIFIED, 68),
        (Ipv4Addr::BROADCAST, 67),
        &payload,
    );
    let (s_vid, c_vid) = super::scale::qinq_of(i);
    let vid = |v| lsl::Vid::new(v).context("VID");
    Ok(lsl::Encap::QinQ {
        s_tpid: lsl::wire::vlan::Tpid::STag,
        s_vid: vid(s_vid)?,
        c_vid: vid(c_vid)?,
    }
    .encapsulate(&inner)?)
}

/// A DHCP reply (BOOTREPLY to port 68) in `frame`, whatever tags it still carries in-line
/// (the kernel moves the outer one into metadata on receive).
fn parse_reply(frame: &[u8]) -> Option<Message> {
    let mut off = 12;
    loop {
        let ethertype = u16::from_be_bytes([*frame.get(off)?, *frame.get(off + 1)?]);
        match ethertype {
            0x8100 | 0x88a8 | 0x9100 => off += 4,
            0x0800 => break,
            _ => return None,
        }
    }
    let ip = frame.get(off + 2..)?;
    let ihl = usize::from(ip.first()? & 0x0f) * 4;
    if *ip.get(9)? != 17 {
        return None;
    }
    let udp = ip.get(ihl..)?;
    if u16::from_be_bytes([*udp.get(2)?, *udp.get(3)?]) != 68 {
        return None;
    }
    let msg = Message::decode(&mut Decoder::new(udp.get(8..)?)).ok()?;
    (msg.opcode() == dhcproto::v4::Opcode::BootReply).then_some(msg)
}

/// Many homes, one DHCP client each, through vgd: every home's client does a full DORA
/// through its own QinQ LSL, with up to `window` exchanges in flight. Returns the leases per
/// second and how many homes got no lease.
fn many_homes_run(
    sock: &crate::raw::RawSocket,
    homes: u32,
    window: u32,
) -> anyhow::Result<(f64, u32)> {
    use std::sync::atomic::{AtomicBool, AtomicU32, Ordering::Relaxed};
    let in_flight = AtomicU32::new(0);
    let stop = AtomicBool::new(false);
    let t = Instant::now();
    let acked = std::thread::scope(|s| -> anyhow::Result<u32> {
        let sender = s.spawn(|| -> anyhow::Result<()> {
            for i in 0..homes {
                while in_flight.load(Relaxed) >= window {
                    if stop.load(Relaxed) {
                        return Ok(());
                    }
                    std::thread::yield_now();
                }
                in_flight.fetch_add(1, Relaxed);
                sock.send(&many_frame(i, MessageType::Discover, &[])?)?;
            }
            Ok(())
        });
        let mut acked = 0u32;
        let mut seen = vec![false; homes as usize];
        let mut idle = Instant::now();
        while acked < homes && idle.elapsed() < Duration::from_secs(3) {
            let Some(frame) = sock.recv(Duration::from_millis(100))? else {
                continue;
            };
            let Some(msg) = parse_reply(&frame) else {
                continue;
            };
            let mac = msg.chaddr();
            if mac.len() < 6 || mac[..2] != [0x02, 0xdc] {
                continue;
            }
            let i = u32::from_be_bytes([mac[2], mac[3], mac[4], mac[5]]);
            if i >= homes {
                continue;
            }
            match msg.opts().msg_type() {
                Some(MessageType::Offer) => {
                    let Some(DhcpOption::ServerIdentifier(server)) =
                        msg.opts().get(dhcproto::v4::OptionCode::ServerIdentifier)
                    else {
                        continue;
                    };
                    let request = many_frame(
                        i,
                        MessageType::Request,
                        &[
                            DhcpOption::ServerIdentifier(*server),
                            DhcpOption::RequestedIpAddress(msg.yiaddr()),
                        ],
                    )?;
                    sock.send(&request)?;
                }
                Some(MessageType::Ack) if !seen[i as usize] => {
                    seen[i as usize] = true;
                    acked += 1;
                    idle = Instant::now();
                    in_flight.fetch_sub(1, Relaxed);
                }
                _ => {}
            }
        }
        stop.store(true, Relaxed);
        sender
            .join()
            .map_err(|_| anyhow::anyhow!("the sender panicked"))??;
        Ok(acked)
    })?;
    let secs = t.elapsed().as_secs_f64();
    Ok((f64::from(acked) / secs, homes - acked))
}

/// vgd over the wire with many homes (a tool of ours; perfdhcp speaks through one LSL
/// only): thousands of QinQ homes on the access network, one DORA each.
pub fn many_homes(effort: Effort, summary: &mut Summary) -> anyhow::Result<()> {
    let homes = effort.pick(4000, 40);
    let window = 64;
    let vg = Netns::new("bmh-vg");
    let access = Netns::new("bmh-acc");
    for ns in [&vg, &access] {
        ns.disable_ipv6();
    }
    veth(&vg, "acc0", &access, "gen0");
    veth(&vg, "core0", &access, "up0");
    vg.addr_add("acc0", "10.255.0.1/16");
    vg.addr_add("core0", "10.99.0.1/24");
    // vgd redirects its replies into acc0: the peer needs GRO (or XDP) to receive them.
    access.ethtool_k("gen0", &["gro", "on"]);
    let mut rates = Vec::new();
    let mut lost = Vec::new();
    for _ in 0..effort.samples {
        // A fresh vgd (and lease store) per sample: every home starts without a lease.
        let pins = crate::PinDir::new("bmh");
        let mut vgd =
            super::scale::spawn_vgd(&vg, &pins, &super::scale::many_subscribers_config(homes))?;
        let sock = access
            .run(|| crate::raw::RawSocket::bind("gen0"))
            .context("packet socket on the access network")?;
        let (rate, missing) = many_homes_run(&sock, homes, window)?;
        vgd.kill();
        rates.push(rate);
        lost.push(f64::from(missing) * 100.0 / f64::from(homes));
    }
    summary.set("vgd_many_homes_leases_per_s", median(&rates));
    summary.set("vgd_many_homes_loss_pct", median(&lost));
    summary.remark(format!(
        "DHCP many homes: a tool of ours puts {homes} QinQ homes' clients on vgd's access \
         network, one DORA each, {window} in flight; vgd with its redb store (every ACK durable)"
    ));
    Ok(())
}
