//! Homes in a loaded fast path, written the way vgd writes them: the one rig of the XDP tests
//! and the benchmarks. A home is validated from its file form into a `SubscriberConfig`, its
//! record is [`subscriber_record`] with its NAT, its entries are [`plan::for_new`] applied by
//! [`plan::apply`] on the pinned maps, and the fast path's settings are [`Maps::configure`]'s.
//! Only the NAT blocks are the rig's own: each home gets the public address and blocks the
//! test names, so that expected frames can name its ports.
//!
//! [`Maps::configure`]: vg::fastpath::maps::Maps::configure

use std::{
    collections::HashSet,
    net::{Ipv4Addr, Ipv6Addr},
    path::Path,
};

use anyhow::Context as _;
use nerg_abi::SubscriberId;
use vg::{
    config::{Config, SubscriberFile},
    control::plan,
    fastpath::{
        FastPath,
        maps::PinnedMaps,
        reconcile::{Interfaces, set_nat, subscriber_record},
    },
};

use crate::addrs::{BLOCK_SIZE, SEED, VG_VTEP, VG_VTEP6};

/// One home of a rig.
#[derive(Clone, Debug)]
pub struct RigHome {
    /// Its id.
    pub id: SubscriberId,
    /// Its LSL, as a configuration writes it (`vlan:101`, `qinq:20.101`, `vxlan:5001@…`).
    pub lsl: String,
    /// Its static hosts.
    pub hosts: Vec<(Ipv4Addr, [u8; 6])>,
    /// Its public address and the first port of each of its blocks; `None`: no NAT.
    pub nat: Option<(Ipv4Addr, Vec<u16>)>,
    /// Its TCP MSS clamp; `None`: vgd's default for its LSL.
    pub tcp_mss: Option<u16>,
    /// Its speed tier (down, up), e.g. `("100M", "20M")`; `None`: no limit.
    pub qos: Option<(String, String)>,
    /// Its IPv6, if the fast path routes IPv6 for it.
    pub v6: Option<RigV6>,
}

/// A home's IPv6 in a rig: what vgd's planner and the slow path would write.
#[derive(Clone, Debug)]
pub struct RigV6 {
    /// The LAN /64 and the gateway's address on it.
    pub lan: (ipnet::Ipv6Net, Ipv6Addr),
    /// Prefixes delegated to routers in the home (prefix, router's address).
    pub delegated: Vec<(ipnet::Ipv6Net, Ipv6Addr)>,
    /// Neighbour entries (address, MAC, `v6_neigh_flags`).
    pub neighbours: Vec<(Ipv6Addr, [u8; 6], u8)>,
}

impl RigHome {
    /// A home on `lsl` without hosts, NAT or MSS clamp (the rigs check frames byte for
    /// byte).
    pub fn new(id: SubscriberId, lsl: impl Into<String>) -> Self {
        Self {
            id,
            lsl: lsl.into(),
            hosts: Vec::new(),
            nat: None,
            tcp_mss: Some(0),
            qos: None,
            v6: None,
        }
    }

    /// With IPv6 on: LAN `lan` whose gateway address is `gateway`.
    pub fn ipv6(mut self, lan: ipnet::Ipv6Net, gateway: Ipv6Addr) -> Self {
        self.v6 = Some(RigV6 {
            lan: (lan, gateway),
            delegated: Vec::new(),
            neighbours: Vec::new(),
        });
        self
    }

    /// With `prefix` delegated to the router at `router` (IPv6 must be on).
    pub fn delegated(mut self, prefix: ipnet::Ipv6Net, router: Ipv6Addr) -> Self {
        self.v6
            .as_mut()
            .expect("ipv6() first")
            .delegated
            .push((prefix, router));
        self
    }

    /// With a reachable neighbour (IPv6 must be on).
    pub fn neighbour(mut self, addr: Ipv6Addr, mac: [u8; 6]) -> Self {
        self.v6.as_mut().expect("ipv6() first").neighbours.push((
            addr,
            mac,
            nerg_abi::v6_neigh_flags::REACHABLE,
        ));
        self
    }

    /// With a speed tier.
    pub fn tier(mut self, down: &str, up: &str) -> Self {
        self.qos = Some((down.to_owned(), up.to_owned()));
        self
    }

    /// With vgd's default MSS clamp for its LSL (VXLAN homes clamp to fit their MTU).
    pub fn default_mss(mut self) -> Self {
        self.tcp_mss = None;
        self
    }

    /// With a static host.
    pub fn host(mut self, ip: Ipv4Addr, mac: [u8; 6]) -> Self {
        self.hosts.push((ip, mac));
        self
    }

    /// With NAT on `public`, blocks starting at `firsts`.
    pub fn nat(mut self, public: Ipv4Addr, firsts: &[u16]) -> Self {
        self.nat = Some((public, firsts.to_vec()));
        self
    }

    /// Its file form.
    fn file(&self) -> anyhow::Result<SubscriberFile> {
        let hosts: Vec<serde_json::Value> = self
            .hosts
            .iter()
            .map(|(ip, m)| {
                let mac = format!(
                    "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
                    m[0], m[1], m[2], m[3], m[4], m[5]
                );
                serde_json::json!({ "ip": ip.to_string(), "mac": mac })
            })
            .collect();
        serde_json::from_value(serde_json::json!({
            "id": self.id,
            "lsl": self.lsl,
            "hosts": hosts,
            "tcp_mss": self.tcp_mss,
            "qos": self.qos.as_ref().map(|(down, up)| serde_json::json!({ "down": down, "up": up })),
        }))
        .with_context(|| format!("home {}", self.id))
    }
}

/// The configuration the rigs' homes are validated against: the VTEPs of [`crate::addrs`],
/// every S-tag TPID (the default), and NAT with the rigs' block size.
pub fn config() -> Config {
    let toml = format!(
        "[fastpath]\nvtep = \"{VG_VTEP}\"\nvtep6 = \"{VG_VTEP6}\"\n\
         [nat]\npool = [\"198.51.100.0/24\"]\nblock_size = {BLOCK_SIZE}\n"
    );
    Config::from_toml(&toml).expect("the rig's configuration is valid")
}

/// Writes the fast path's settings (vgd's [`Maps::configure`](vg::fastpath::maps::Maps::configure),
/// with the rigs' NAT hash seed) for access interface `access` (index and MAC) and core
/// interface `core`.
pub fn configure(
    fp: &mut FastPath,
    config: &Config,
    access: (u32, [u8; 6]),
    core: Option<u32>,
) -> anyhow::Result<()> {
    let ifaces = Interfaces {
        access_ifindex: access.0,
        access_mac: access.1,
        core_ifindex: core,
    };
    fp.maps()
        .configure(config, &ifaces, Some(SEED))
        .context("writing the fast path's settings")
}

/// Writes `homes` into the fast path pinned in `pin_dir`, their LSL keys naming access
/// interface `lsl_ifindex` (under BPF_PROG_TEST_RUN, the test run's ingress interface).
pub fn write_homes(
    pin_dir: &Path,
    config: &Config,
    lsl_ifindex: u32,
    homes: &[RigHome],
) -> anyhow::Result<()> {
    let mut maps = PinnedMaps::open(pin_dir).context("opening the pinned maps")?;
    let mut publics = HashSet::new();
    for h in homes {
        let sub = config
            .subscriber(h.file()?)
            .with_context(|| format!("home {}", h.id))?;
        let mut rec = subscriber_record(&sub);
        let mut new_public = false;
        if let Some((public, firsts)) = &h.nat {
            set_nat(&mut rec, *public, firsts);
            new_public = publics.insert(*public);
        }
        let writes = plan::for_new(&sub, rec, new_public, None);
        plan::apply(&mut maps, &writes, lsl_ifindex)
            .with_context(|| format!("writing home {}", h.id))?;
        if let Some(v6) = &h.v6 {
            write_v6(&mut maps, h.id, v6).with_context(|| format!("IPv6 of home {}", h.id))?;
        }
    }
    Ok(())
}

/// Writes home `id`'s IPv6 through the control plane's table interface, and turns IPv6 on
/// in its record.
fn write_v6(maps: &mut PinnedMaps, id: SubscriberId, v6: &RigV6) -> anyhow::Result<()> {
    use nerg_abi::{V6Neigh, sub_flags, v6_prefix_kind};
    use vg::{control::tables::FastPathTables as _, fastpath::v6::prefix_entry};
    let (lan, gateway) = v6.lan;
    maps.insert_v6_prefix(lan, prefix_entry(id, v6_prefix_kind::LAN, gateway))?;
    for (prefix, router) in &v6.delegated {
        maps.insert_v6_prefix(
            *prefix,
            prefix_entry(id, v6_prefix_kind::DELEGATED, *router),
        )?;
    }
    for (addr, mac, flags) in &v6.neighbours {
        let n = V6Neigh {
            mac: *mac,
            flags: *flags,
            ..V6Neigh::default()
        };
        maps.insert_neighbour(id, *addr, n)?;
    }
    let mut rec = maps.subscriber(id)?;
    rec.flags |= sub_flags::IPV6;
    maps.set_subscriber(id, &rec)?;
    Ok(())
}

/// An LSL of the rigs' homes in its configuration form, from the map ABI's kind
/// (`nerg_abi::lsl_kind`), tags and VNI; VXLAN LSLs end at the BRG VTEPs of
/// [`crate::addrs`].
pub fn lsl_text(kind: u8, s_vid: u16, c_vid: u16, vni: u32) -> String {
    use crate::addrs::{BRG_VTEP, BRG_VTEP6};
    use nerg_abi::lsl_kind;
    match kind {
        lsl_kind::DOT1Q => format!("vlan:{c_vid}"),
        lsl_kind::QINQ => format!("qinq:{s_vid}.{c_vid}"),
        lsl_kind::VXLAN6 => format!("vxlan:{vni}@[{BRG_VTEP6}]"),
        _ => format!("vxlan:{vni}@{BRG_VTEP}"),
    }
}
