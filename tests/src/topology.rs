//! A whole NERG in namespaces: homes with real DHCP clients behind BRGs, an access network,
//! the vG running `vgd`, and an "internet". Used by the end-to-end tests and by the lab.
//!
//! ```text
//!  home i (hI, DHCP client) -- BRG i br0 [lan0, uplink] -- access br0 -- acc0 vG core0 -- up0 internet
//!     uplink: lsl0 + brgd's tc tagger (802.1Q / QinQ), or vx1-1 over lsl0 (VXLAN)
//!  BRG i mgmt0 -- mgmt br0 -- the ACS (10.254.0.1:7547)
//! ```
//!
//! Zero touch: each BRG starts `brgd` with nothing but the ACS's URL and its ports; its first
//! Inform (0 BOOTSTRAP) gets the whole bridge and LSL configuration pushed by the ACS
//! ([`crate::provision`]), which brgd applies to Linux. The vG knows the homes from its
//! configuration file.
//!
//! Addresses: every home's LAN is 192.168.1.0/24 with gateway .1 (homes overlap); the vG's
//! VTEP is 10.255.0.1/16 on acc0, BRG i's VTEP 10.255.1.i; the management network is
//! 10.254.0.0/16 (the ACS .0.1, BRG i 10.254.1.i); the core link is 10.99.0.0/24;
//! the internet's servers are 203.0.113.5 and .6 (a second address for STUN); the public
//! pool is 198.51.100.0/28.
//!
//! Dual stack ([`Topology::build_dual_stack`], [`ipv6`]): the vG routes IPv6 between the
//! homes' prefixes (from `[ipv6]` pools) and the internet, whose server is 2001:db8:ffff::1
//! on the core link; VXLAN over IPv6 ([`HomeLsl::Vxlan6`]) runs between fd00:255::/64
//! addresses that embed the IPv4 VTEPs (works in either kind of topology).

use std::{
    fmt::Write as _,
    net::Ipv4Addr,
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

pub mod ipv6;

use lsl::{Encap, Vid, Vni, VxlanEncap, smoltcp::wire::EthernetAddress, wire::vlan::Tpid};

use crate::{
    Netns, NsProcess,
    acs::{Acs, AcsConfig},
    bin,
    netns::veth,
    provision, vgd, wait_until_some,
};

/// The vG's VTEP address.
pub const VG_VTEP: Ipv4Addr = Ipv4Addr::new(10, 255, 0, 1);
/// Every home's gateway.
pub const GATEWAY: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 1);
/// The internet server addresses.
pub const SERVER: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 5);
/// The internet's second address (STUN needs two).
pub const SERVER2: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 6);
/// The public pool.
pub const PUBLIC_POOL: &str = "198.51.100.0/28";
/// The ACS on the management network.
pub const ACS_ADDR: Ipv4Addr = Ipv4Addr::new(10, 254, 0, 1);
/// The ACS's port (TR-069's registered port).
pub const ACS_PORT: u16 = 7547;
/// The MTU of the tagged access links (the vG's `acc0`, the access bridge's ports, the
/// 802.1Q/QinQ BRGs' `lsl0`): 4 bytes over 1500 make room for QinQ's second tag (a veth
/// takes one tag beyond its MTU, platform.md), so that every tagged LSL carries 1500-byte
/// packets as vgd assumes (`ipv6_mtu`: the access link makes room for the tags). VXLAN
/// BRGs' underlay stays at 1500.
pub const ACCESS_MTU: u16 = 1504;

/// A home's LSL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HomeLsl {
    /// 802.1Q C-tag.
    Vlan(u16),
    /// QinQ: S-VID, C-VID (S-tag 0x88A8).
    Qinq(u16, u16),
    /// VXLAN VNI.
    Vxlan(u32),
    /// VXLAN VNI over IPv6 (the VTEPs' [`ipv6::vtep6_of`] addresses).
    Vxlan6(u32),
}

impl HomeLsl {
    /// The LSL's text form for BRG `brg_vtep` (VXLAN).
    pub fn text(&self, brg_vtep: Ipv4Addr) -> String {
        match *self {
            HomeLsl::Vlan(c) => format!("vlan:{c}"),
            HomeLsl::Qinq(s, c) => format!("qinq:{s}.{c}"),
            HomeLsl::Vxlan(vni) => format!("vxlan:{vni}@{brg_vtep}"),
            HomeLsl::Vxlan6(vni) => format!("vxlan:{vni}@[{}]", ipv6::vtep6_of(brg_vtep)),
        }
    }

    /// The home's MTU: 1500 on a tagged LSL (the access network makes room for the tags,
    /// [`ACCESS_MTU`]), 50 bytes less for VXLAN (70 over IPv6). What vgd advertises in its
    /// RAs (RFC 4861 §4.6.4) and checks packets against.
    pub fn home_mtu(&self) -> u16 {
        match self {
            HomeLsl::Vlan(_) => 1500,
            HomeLsl::Qinq(..) => 1500,
            HomeLsl::Vxlan(_) => 1450,
            HomeLsl::Vxlan6(_) => 1430,
        }
    }

    /// Whether the LSL is VXLAN (over either IP version).
    pub fn is_vxlan(&self) -> bool {
        matches!(self, HomeLsl::Vxlan(_) | HomeLsl::Vxlan6(_))
    }

    /// How the vG sends into this LSL of BRG `brg_vtep` (whose access interface has MAC
    /// `brg_mac`), from the vG's access MAC `vg_mac`: frames a test injects as the vG would.
    pub fn encap_from_vg(&self, brg_vtep: Ipv4Addr, vg_mac: [u8; 6], brg_mac: [u8; 6]) -> Encap {
        let vid = |v: u16| Vid::new(v).expect("a valid VID");
        let vxlan = |vni: u32, local: std::net::IpAddr, remote: std::net::IpAddr| {
            Encap::Vxlan(VxlanEncap::new(
                Vni::new(vni).expect("a valid VNI"),
                local,
                remote,
                EthernetAddress(vg_mac),
                EthernetAddress(brg_mac),
            ))
        };
        match *self {
            HomeLsl::Vlan(c) => Encap::Dot1q { c_vid: vid(c) },
            HomeLsl::Qinq(s, c) => Encap::QinQ {
                s_tpid: Tpid::STag,
                s_vid: vid(s),
                c_vid: vid(c),
            },
            HomeLsl::Vxlan(vni) => vxlan(vni, VG_VTEP.into(), brg_vtep.into()),
            HomeLsl::Vxlan6(vni) => {
                vxlan(vni, ipv6::VG_VTEP6.into(), ipv6::vtep6_of(brg_vtep).into())
            }
        }
    }
}

/// The DHCP client a home runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DhcpClient {
    /// ISC dhclient.
    Dhclient,
    /// busybox udhcpc.
    Udhcpc,
    /// dhcpcd.
    Dhcpcd,
}

impl DhcpClient {
    /// Its name.
    pub fn name(&self) -> &'static str {
        match self {
            DhcpClient::Dhclient => "dhclient",
            DhcpClient::Udhcpc => "udhcpc",
            DhcpClient::Dhcpcd => "dhcpcd",
        }
    }
}

/// One home of the topology.
#[derive(Clone, Copy, Debug)]
pub struct HomeSpec {
    /// Subscriber id (1..).
    pub id: u32,
    /// Its LSL.
    pub lsl: HomeLsl,
    /// Its DHCP client.
    pub client: DhcpClient,
}

/// A home as built.
pub struct Home {
    /// The spec.
    pub spec: HomeSpec,
    /// The home's LAN host namespace; its interface is `iface()`.
    pub host: Netns,
    /// The BRG namespace.
    pub brg: Netns,
    /// brgd, provisioned by the ACS.
    pub brgd: Option<NsProcess>,
    /// The BRG's VTEP (VXLAN homes).
    pub brg_vtep: Ipv4Addr,
}

impl Home {
    /// The host's interface name (unique per home: dhcpcd keys its lease files by it).
    pub fn iface(&self) -> String {
        format!("h{}", self.spec.id)
    }

    /// The LSL's text form.
    pub fn lsl_text(&self) -> String {
        self.spec.lsl.text(self.brg_vtep)
    }

    /// brgd's serial number (what the ACS knows it by).
    pub fn serial(&self) -> String {
        format!("BRG{:04}", self.spec.id)
    }

    /// The leased address, once the lease is fully applied: the address on the interface
    /// and the default route through the gateway (clients add them one after the other).
    pub fn lease(&self) -> Option<Ipv4Addr> {
        let routes = self.host.ip(&["-4", "route", "show", "default"]);
        let has_default =
            String::from_utf8_lossy(&routes.stdout).contains(&format!("via {GATEWAY}"));
        has_default.then(|| self.address()).flatten()
    }

    /// The IPv4 address the host's interface has, if any.
    pub fn address(&self) -> Option<Ipv4Addr> {
        let out = self
            .host
            .ip(&["-4", "-o", "addr", "show", "dev", &self.iface()]);
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .skip_while(|w| *w != "inet")
            .nth(1)
            .and_then(|cidr| cidr.split('/').next()?.parse().ok())
    }
}

/// How namespaces are named: uniquely per test, or fixed for the lab.
#[derive(Clone, Debug)]
pub enum Naming {
    /// `nt-<pid>-<seq>-<tag>-...`, removed on drop.
    Test(String),
    /// `<prefix><name>`, replaced if present (the lab).
    Fixed(String),
}

impl Naming {
    fn ns(&self, name: &str) -> Netns {
        match self {
            Naming::Test(tag) => Netns::new(&format!("{tag}-{name}")),
            Naming::Fixed(prefix) => Netns::named(&format!("{prefix}{name}")),
        }
    }
}

/// The whole topology. Field order is drop order: processes first, then namespaces.
pub struct Topology {
    /// vgd (or the `podman run` that runs it).
    pub vgd: NsProcess,
    /// vgd's container, when it runs from the image: removed before the namespaces go.
    pub container: Option<crate::container::Container>,
    /// The homes.
    pub homes: Vec<Home>,
    /// The ACS (on the management network).
    pub acs: Acs,
    /// The management network (a bridge; the ACS listens here).
    pub mgmt: Netns,
    /// The access network (a bridge).
    pub access: Netns,
    /// The vG.
    pub vg: Netns,
    /// The internet.
    pub inet: Netns,
    /// vgd's instance name (bpffs pins).
    pub instance: String,
    /// Where this topology keeps its files (vgd config, DHCP client scripts and leases).
    pub dir: PathBuf,
    /// Whether the homes are dual-stack ([`Topology::build_dual_stack`]).
    pub ipv6: bool,
}

impl Drop for Topology {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
        let _ = std::fs::remove_dir_all(vg::fastpath::bpffs::pin_dir(
            Path::new(vg::fastpath::bpffs::DEFAULT_MOUNT),
            &self.instance,
        ));
        let _ = std::fs::remove_dir_all(vgd::state_dir(&self.instance));
    }
}

/// A shell script that applies a lease the way the clients' own scripts would, minus
/// /etc/resolv.conf (which is the host's: namespaces share the mount namespace).
const CLIENT_SCRIPT: &str = r#"#!/bin/sh
# dhclient: $reason, $interface, $new_ip_address, $new_subnet_mask, $new_routers, $new_interface_mtu
# udhcpc:   $1, $interface, $ip, $mask, $router, $mtu
case "$reason$1" in
  BOUND|RENEW|REBIND|REBOOT)
    ip addr flush dev "$interface"
    ip addr add "$new_ip_address/$new_subnet_mask" dev "$interface"
    [ -n "$new_interface_mtu" ] && ip link set "$interface" mtu "$new_interface_mtu"
    for r in $new_routers; do ip route replace default via "$r" dev "$interface"; break; done ;;
  bound|renew)
    ip addr flush dev "$interface"
    ip addr add "$ip/$mask" dev "$interface"
    [ -n "$mtu" ] && ip link set "$interface" mtu "$mtu"
    for r in $router; do ip route replace default via "$r" dev "$interface"; break; done ;;
  deconfig|EXPIRE|FAIL|RELEASE|STOP)
    ip addr flush dev "$interface" ;;
esac
exit 0
"#;

/// How [`Topology::build_full`] builds: vgd's image, brgd's program, dual stack.
struct Options<'a> {
    image: Option<&'a str>,
    brgd: &'a BrgdProgram,
    ipv6: bool,
}

impl Default for Options<'_> {
    fn default() -> Self {
        static NATIVE: BrgdProgram = BrgdProgram::Native;
        Self {
            image: None,
            brgd: &NATIVE,
            ipv6: false,
        }
    }
}

/// How the BRGs run `brgd`.
#[derive(Clone, Debug, Default)]
pub enum BrgdProgram {
    /// The workspace's own build ([`bin`]).
    #[default]
    Native,
    /// This command line, to which brgd's arguments are appended (an emulator and a
    /// firmware build: `qemu-aarch64-static target/brg-firmware/brgd-aarch64`).
    Command(Vec<std::ffi::OsString>),
}

impl Topology {
    /// Builds the topology and starts vgd and the BRGs; the homes' DHCP clients are started
    /// by [`Topology::dhcp`].
    pub fn build(naming: Naming, homes: &[HomeSpec], instance: &str) -> Self {
        Self::build_with(naming, homes, instance, |_| true)
    }

    /// [`Topology::build`], with only the homes `in_config` accepts in vgd's configuration
    /// file (the others are built, BRG and host, for a test to create through the API).
    pub fn build_with(
        naming: Naming,
        homes: &[HomeSpec],
        instance: &str,
        in_config: impl Fn(&HomeSpec) -> bool,
    ) -> Self {
        Self::build_full(naming, homes, instance, in_config, Options::default())
    }

    /// [`Topology::build`] with dual-stack homes: IPv6 on the core and the internet, an
    /// `[ipv6]` section in vgd's configuration ([`ipv6`]). The homes' hosts start IPv6 with
    /// [`Home::start_ipv6`] (SLAAC) and [`Topology::dhcp6`] (DHCPv6).
    pub fn build_dual_stack(naming: Naming, homes: &[HomeSpec], instance: &str) -> Self {
        let options = Options {
            ipv6: true,
            ..Options::default()
        };
        Self::build_full(naming, homes, instance, |_| true, options)
    }

    /// [`Topology::build_dual_stack`] with vgd run from the container image `image`.
    pub fn build_dual_stack_in_container(
        naming: Naming,
        homes: &[HomeSpec],
        instance: &str,
        image: &str,
    ) -> Self {
        let options = Options {
            ipv6: true,
            image: Some(image),
            ..Options::default()
        };
        Self::build_full(naming, homes, instance, |_| true, options)
    }

    /// [`Topology::build`] with vgd run from the container image `image`
    /// ([`crate::container`]) instead of the binary beside the tests.
    pub fn build_in_container(
        naming: Naming,
        homes: &[HomeSpec],
        instance: &str,
        image: &str,
    ) -> Self {
        let options = Options {
            image: Some(image),
            ..Options::default()
        };
        Self::build_full(naming, homes, instance, |_| true, options)
    }

    /// [`Topology::build`] with every BRG running `brgd` as `program` says (a firmware
    /// build under qemu-user, say: `tests/tests/firmware.rs`).
    pub fn build_with_brgd(
        naming: Naming,
        homes: &[HomeSpec],
        instance: &str,
        program: &BrgdProgram,
    ) -> Self {
        let options = Options {
            brgd: program,
            ..Options::default()
        };
        Self::build_full(naming, homes, instance, |_| true, options)
    }

    fn build_full(
        naming: Naming,
        homes: &[HomeSpec],
        instance: &str,
        in_config: impl Fn(&HomeSpec) -> bool,
        options: Options<'_>,
    ) -> Self {
        let Options { image, brgd, ipv6 } = options;
        crate::require_root();
        let dir = std::env::temp_dir().join(format!("nerg-topology-{instance}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("topology dir");
        let script = dir.join("dhcp-client-script");
        std::fs::write(&script, CLIENT_SCRIPT).expect("client script");
        crate::run(Command::new("chmod").arg("755").arg(&script));

        let access = naming.ns("access");
        let vg = naming.ns("vg");
        let inet = naming.ns("inet");
        for ns in [&access, &vg, &inet] {
            ns.disable_ipv6();
        }
        veth(&vg, "acc0", &access, "vg");
        let access_mtu = ACCESS_MTU.to_string();
        vg.ip(&["link", "set", "acc0", "mtu", &access_mtu]);
        access.ip(&["link", "set", "vg", "mtu", &access_mtu]);
        access.bridge("br0", &["vg"]);
        // Tags reach the vG in-line, as on a real access network; GRO on the peers of the
        // interfaces the vG redirects into makes native XDP redirects deliver (platform.md).
        access.ethtool_k(
            "vg",
            &[
                "txvlan",
                "off",
                "tx-vlan-stag-hw-insert",
                "off",
                "gro",
                "on",
            ],
        );
        vg.addr_add("acc0", &format!("{VG_VTEP}/16"));
        veth(&vg, "core0", &inet, "up0");
        vg.addr_add("core0", "10.99.0.1/24");
        vg.route_add("default", "10.99.0.2");
        inet.addr_add("up0", "10.99.0.2/24");
        inet.addr_add("lo", &format!("{SERVER}/32"));
        inet.addr_add("lo", &format!("{SERVER2}/32"));
        inet.route_add(PUBLIC_POOL, "10.99.0.1");
        inet.ethtool_k("up0", &["tx", "off", "gro", "on"]);
        if ipv6 {
            ipv6::core(&vg, &inet);
        }
        if homes.iter().any(|h| matches!(h.lsl, HomeLsl::Vxlan6(_))) {
            ipv6::vtep6(&vg);
        }

        // The operator's management network and its ACS.
        let mgmt = naming.ns("mgmt");
        mgmt.disable_ipv6();
        mgmt.ip(&["link", "add", "br0", "type", "bridge"]);
        mgmt.link_up("br0");
        mgmt.addr_add("br0", &format!("{ACS_ADDR}/16"));
        let acs = mgmt.run(|| {
            Acs::start_at(
                std::net::SocketAddr::from((ACS_ADDR, ACS_PORT)),
                AcsConfig::default(),
            )
        });

        let mut built = Vec::new();
        for spec in homes {
            built.push(build_home(&naming, &access, &mgmt, &acs, &dir, *spec, brgd));
        }
        for home in &mut built {
            wait_provisioned(home, &acs);
        }

        let config = dir.join("vgd.toml");
        let configured: Vec<&Home> = built.iter().filter(|h| in_config(&h.spec)).collect();
        let mut text = vgd_config(&configured);
        if homes.iter().any(|h| matches!(h.lsl, HomeLsl::Vxlan6(_))) {
            text = text.replace(
                "[fastpath]\n",
                &format!("[fastpath]\nvtep6 = \"{}\"\n", ipv6::VG_VTEP6),
            );
        }
        if ipv6 {
            text.push_str(&ipv6::config_section());
        }
        std::fs::write(&config, text).expect("vgd config");
        // A lab has few homes: their per-home series cost little, and they are what the
        // dashboard's per-home panels and the "home offline" alert read (deploy/grafana,
        // deploy/prometheus; tests/tests/grafana.rs).
        let (mut vgd_cmd, container) = match image {
            None => (vg.command(bin("vgd")), None),
            Some(image) => {
                let (cmd, container) = crate::container::vgd_command(
                    image,
                    &vg,
                    instance,
                    &vgd::state_dir(instance),
                    &[&config],
                );
                (cmd, Some(container))
            }
        };
        vgd_cmd.arg("--per-subscriber-metrics");
        let vgd = vgd::start_via(&vg, vgd_cmd, "acc0", Some("core0"), instance, Some(&config));
        Topology {
            vgd,
            container,
            homes: built,
            acs,
            mgmt,
            access,
            vg,
            inet,
            instance: instance.to_owned(),
            dir,
            ipv6,
        }
    }

    /// Runs each home's DHCP client until it has a lease (or `timeout`); returns, per home,
    /// the address or the client's output.
    pub fn dhcp(&self, timeout: Duration) -> Vec<Result<Ipv4Addr, String>> {
        let script = self.dir.join("dhcp-client-script");
        let mut children = Vec::new();
        for home in &self.homes {
            let iface = home.iface();
            let mut cmd = match home.spec.client {
                DhcpClient::Dhclient => {
                    let mut c = home.host.command("dhclient");
                    c.args(["-4", "-1", "-v", "-sf"])
                        .arg(&script)
                        .arg("-lf")
                        .arg(self.dir.join(format!("dhclient-{iface}.leases")))
                        .arg("-pf")
                        .arg(self.dir.join(format!("dhclient-{iface}.pid")))
                        .arg(&iface);
                    c
                }
                DhcpClient::Udhcpc => {
                    let mut c = home.host.command("busybox");
                    c.args([
                        "udhcpc", "-f", "-q", "-n", "-t", "10", "-T", "1", "-i", &iface, "-s",
                    ])
                    .arg(&script);
                    c
                }
                DhcpClient::Dhcpcd => {
                    let mut c = home.host.command("dhcpcd");
                    c.args([
                        "-4",
                        "-1",
                        "-B",
                        "-w",
                        "-t",
                        "20",
                        "--nohook",
                        "resolv.conf",
                        "--noipv4ll",
                        "--noarp",
                        &iface,
                    ]);
                    c
                }
            };
            let out = self
                .dir
                .join(format!("{}-{iface}.out", home.spec.client.name()));
            let file = std::fs::File::create(&out).expect("client output file");
            let err = file.try_clone().expect("dup");
            let child = cmd
                .stdin(std::process::Stdio::null())
                .stdout(file)
                .stderr(err)
                .spawn()
                .unwrap_or_else(|e| panic!("starting {}: {e}", home.spec.client.name()));
            children.push((child, out));
        }
        let mut results = Vec::new();
        for (home, (mut child, out)) in self.homes.iter().zip(children) {
            let addr = wait_until_some(
                &format!(
                    "home {} ({}) to get a lease",
                    home.spec.id,
                    home.spec.client.name()
                ),
                timeout,
                // The lease once fully applied (address and default route: the script adds
                // them one after the other); a client that exited is asked once more, as it
                // may have finished its script between the two looks.
                || {
                    home.lease().or_else(|| {
                        child
                            .try_wait()
                            .ok()
                            .flatten()
                            .map(|_| home.lease().unwrap_or(Ipv4Addr::UNSPECIFIED))
                    })
                },
            );
            // Only dhcpcd keeps running (as a daemon) after the lease; stop it.
            let _ = child.kill();
            let _ = child.wait();
            results.push(if addr.is_unspecified() {
                Err(std::fs::read_to_string(&out).unwrap_or_default())
            } else {
                Ok(addr)
            });
        }
        results
    }
}

fn build_home(
    naming: &Naming,
    access: &Netns,
    mgmt: &Netns,
    acs: &Acs,
    dir: &Path,
    spec: HomeSpec,
    program: &BrgdProgram,
) -> Home {
    let n = spec.id;
    let host = naming.ns(&format!("home{n}"));
    let brg = naming.ns(&format!("brg{n}"));
    for ns in [&host, &brg] {
        ns.disable_ipv6();
    }
    let iface = format!("h{n}");
    veth(&host, &iface, &brg, "lan0");
    let mtu = spec.lsl.home_mtu().to_string();
    host.ip(&["link", "set", &iface, "mtu", &mtu]);
    // Complete checksums, as on a real wire (platform.md).
    host.ethtool_k(&iface, &["tx", "off"]);
    let port = format!("b{n}");
    veth(&brg, "lsl0", access, &port);
    access.ip(&["link", "set", &port, "master", "br0"]);
    access.ethtool_k(&port, &["gro", "on"]);
    brg.ethtool_k("lsl0", &["tx", "off"]);
    let brg_vtep = Ipv4Addr::new(10, 255, 1, n as u8);
    match spec.lsl {
        HomeLsl::Vxlan(_) => {
            // The BRG's access-side address: the VXLAN underlay towards the vG's VTEP.
            brg.addr_add("lsl0", &format!("{brg_vtep}/16"));
            brg.ip(&["link", "set", "lan0", "mtu", "1450"]);
        }
        HomeLsl::Vxlan6(_) => {
            // The underlay over IPv6: on lsl0 alone (the bridge and the LAN port stay
            // without an IPv6 stack of the BRG's own, so no BRG chatter enters the home).
            brg.exec("sysctl", &["-qw", "net.ipv6.conf.lsl0.disable_ipv6=0"]);
            let cidr = format!("{}/64", ipv6::vtep6_of(brg_vtep));
            brg.addr_add_nodad("lsl0", &cidr);
            brg.ip(&["link", "set", "lan0", "mtu", "1430"]);
        }
        HomeLsl::Vlan(_) | HomeLsl::Qinq(..) => {
            let access_mtu = ACCESS_MTU.to_string();
            brg.ip(&["link", "set", "lsl0", "mtu", &access_mtu]);
            access.ip(&["link", "set", &port, "mtu", &access_mtu]);
        }
    }
    brg.link_up("lan0");
    brg.link_up("lsl0");

    // The management interface, outside the subscriber bridge.
    let mport = format!("m{n}");
    veth(&brg, "mgmt0", mgmt, &mport);
    mgmt.ip(&["link", "set", &mport, "master", "br0"]);
    let mgmt_ip = Ipv4Addr::new(10, 254, 1, n as u8);
    brg.addr_add("mgmt0", &format!("{mgmt_ip}/16"));

    let home = Home {
        spec,
        host,
        brg,
        brgd: None,
        brg_vtep,
    };
    // Zero touch: the ACS has this BRG's provisioning ready before it first calls in.
    acs.script_for(
        &home.serial(),
        provision::brg_script(&home.serial(), spec.lsl, VG_VTEP),
    );
    let state = dir.join(format!("brgd-{n}"));
    let mut cmd = match program {
        BrgdProgram::Native => home.brg.command(bin("brgd")),
        BrgdProgram::Command(argv) => {
            let mut cmd = home.brg.command(&argv[0]);
            cmd.args(&argv[1..]);
            cmd
        }
    };
    let brgd = home.brg.spawn(
        "brgd",
        cmd.arg("--acs-url")
            .arg(format!("http://{ACS_ADDR}:{ACS_PORT}/acs"))
            .arg("--state-dir")
            .arg(&state)
            .args(["--interface", "lan0", "--interface", "lsl0"])
            .args(["--mgmt-interface", "mgmt0"])
            .arg("--cr-listen")
            .arg(format!("{mgmt_ip}:7547"))
            .args(["--serial-number", &home.serial()]),
    );
    Home {
        brgd: Some(brgd),
        ..home
    }
}

impl Topology {
    /// The ACS moves home `i`'s BRG to another LSL of the same kind, as an operator does: it
    /// queues the change, knocks with a Connection Request (Digest), and waits for the
    /// session that applies it. The vG's side is the API's (or the configuration's).
    pub fn acs_change_lsl(&mut self, i: usize, lsl: HomeLsl) {
        let home = &mut self.homes[i];
        let serial = home.serial();
        let sessions = self.acs.sessions_of(&serial).len();
        let url = self
            .acs
            .sessions_of(&serial)
            .iter()
            .rev()
            .find_map(|s| {
                s.param("Device.ManagementServer.ConnectionRequestURL")
                    .map(str::to_owned)
            })
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| {
                panic!("BRG {serial} never told the ACS its Connection Request URL")
            });
        self.acs.script_for(&serial, provision::lsl_change(lsl));
        let (user, pass) = (
            provision::cr_username(&serial),
            provision::cr_password(&serial),
        );
        let status = self
            .mgmt
            .run(|| crate::acs::connection_request(&url, &user, &pass));
        assert_eq!(status, 200, "connection request to {url}");
        let acs = &self.acs;
        let brgd = home.brgd.as_mut().expect("brgd");
        let session = wait_until_some(
            &format!("BRG {serial}'s session for the LSL change"),
            Duration::from_secs(30),
            || {
                brgd.assert_running();
                acs.sessions_of(&serial)
                    .into_iter()
                    .skip(sessions)
                    .find(|s| s.ended && !s.answers.is_empty())
            },
        );
        assert!(
            !session.faulted(),
            "BRG {serial} refused the LSL change: {:?}",
            session.answers
        );
        assert!(
            session.has_event("6 CONNECTION REQUEST", None),
            "the session was not the connection request's: {:?}",
            session.event_codes()
        );
        home.spec.lsl = lsl;
    }
}

/// Waits until the ACS provisioned `home`'s BRG and its bridge joins the LAN port and the
/// LSL in Linux; on a timeout, panics with brgd's log and what the ACS heard.
fn wait_provisioned(home: &mut Home, acs: &Acs) {
    let uplink = match home.spec.lsl {
        HomeLsl::Vxlan(_) | HomeLsl::Vxlan6(_) => "vx1-1",
        HomeLsl::Vlan(_) | HomeLsl::Qinq(..) => "lsl0",
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let (serial, lsl, id) = (home.serial(), home.lsl_text(), home.spec.id);
    let brgd = home.brgd.as_mut().expect("brgd started");
    loop {
        brgd.assert_running();
        // Not `Netns::ip`: until the ACS's session, br0 does not exist and ip fails.
        let members = home
            .brg
            .command("ip")
            .args(["-o", "link", "show", "master", "br0"])
            .output()
            .map(|out| String::from_utf8_lossy(&out.stdout).into_owned())
            .unwrap_or_default();
        let has = |dev: &str| {
            members.contains(&format!(" {dev}:")) || members.contains(&format!(" {dev}@"))
        };
        if has("lan0") && has(uplink) {
            return;
        }
        if std::time::Instant::now() > deadline {
            let answers: Vec<String> = acs
                .sessions_of(&serial)
                .iter()
                .flat_map(|s| s.answers.iter().map(|a| format!("{:?}", a.body)))
                .collect();
            panic!(
                "BRG {} ({}) not provisioned after 60 s; bridge members: {members}\nACS got: {answers:#?}\nbrgd:\n{}",
                id,
                lsl,
                brgd.log()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The internet's servers: a web server, an iperf3 server and a STUN server on the two
/// server addresses. Dropped: stopped.
pub struct Servers {
    /// busybox httpd on SERVER:80, serving `index.html` = [`WEB_PAGE`].
    pub httpd: NsProcess,
    /// iperf3 on SERVER:5201 (one test at a time).
    pub iperf3: NsProcess,
    /// stund (RFC 3489) on SERVER and SERVER2, ports 3478 and 3479.
    pub stund: NsProcess,
    /// The IPv6 web and iperf3 servers on [`ipv6::SERVER6`] (dual-stack topologies).
    pub v6: Option<ipv6::Servers6>,
}

/// What the web server serves.
pub const WEB_PAGE: &str = "hello from the internet\n";

impl Topology {
    /// Starts the internet's servers and waits until each listens.
    pub fn start_servers(&self) -> Servers {
        let www = self.dir.join("www");
        std::fs::create_dir_all(&www).expect("www dir");
        std::fs::write(www.join("index.html"), WEB_PAGE).expect("index.html");
        let inet = &self.inet;
        let mut httpd = inet.spawn(
            "httpd",
            inet.command("busybox")
                .args(["httpd", "-f", "-p", &format!("{SERVER}:80"), "-h"])
                .arg(&www),
        );
        let mut iperf3 = inet.spawn(
            "iperf3",
            inet.command("iperf3")
                .args(["-s", "-B", &SERVER.to_string(), "-p", "5201"]),
        );
        let mut stund = inet.spawn(
            "stund",
            inet.command("stund")
                .args(["-h", &SERVER.to_string(), "-a", &SERVER2.to_string()]),
        );
        crate::wait_until(
            "the internet's servers to listen",
            Duration::from_secs(10),
            || {
                httpd.assert_running();
                iperf3.assert_running();
                stund.assert_running();
                let udp = inet.exec("ss", &["-Hlun", "sport = :3478"]);
                inet.tcp_listening(80) && inet.tcp_listening(5201) && !udp.stdout.is_empty()
            },
        );
        let v6 = self.ipv6.then(|| self.start_servers6(&www));
        Servers {
            httpd,
            iperf3,
            stund,
            v6,
        }
    }
}

/// Runs Debian's classic STUN client (RFC 3489) in `ns` against the internet's stund and
/// returns its verdict line (`Primary: Independent Mapping, Independent Filter, random port,
/// will hairpin`, say), or what it printed.
pub fn stun(ns: &Netns) -> Result<String, String> {
    let out = ns
        .command("stun")
        .args([&SERVER.to_string(), "-v"])
        .output()
        .map_err(|e| format!("running stun (package stun-client): {e}"))?;
    // The exit status encodes the NAT type; the text says it.
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.lines()
        .find(|l| l.starts_with("Primary:"))
        .map(|l| l.trim_start_matches("Primary:").trim().to_owned())
        .ok_or_else(|| format!("{text}{}", String::from_utf8_lossy(&out.stderr)))
}

/// Whether a STUN verdict is what a NAT that keeps peer-to-peer working gives:
/// endpoint-independent mapping, and hairpinning.
pub fn stun_is_eim_with_hairpin(verdict: &str) -> bool {
    verdict.contains("Independent Mapping") && verdict.contains("will hairpin")
}

/// Runs an iperf3 TCP test of `seconds` from `ns` to the internet's server; the rate the
/// server received, in Mbit/s.
pub fn iperf3_tcp(ns: &Netns, seconds: u32) -> Result<f64, String> {
    iperf3(ns, 5201, seconds, &[])
}

/// Runs iperf3 from `ns` against the internet's server on `port` for `seconds`, with
/// `extra` arguments (`-R`: the server sends; `-u -b 500M`: UDP at that rate); the rate the
/// receiving end got, in Mbit/s.
pub fn iperf3(ns: &Netns, port: u16, seconds: u32, extra: &[&str]) -> Result<f64, String> {
    iperf3_to(ns, SERVER.into(), port, seconds, extra)
}

/// [`iperf3`] against the server at `server` (the internet's IPv6 one, say).
pub fn iperf3_to(
    ns: &Netns,
    server: std::net::IpAddr,
    port: u16,
    seconds: u32,
    extra: &[&str],
) -> Result<f64, String> {
    let out = ns
        .command("iperf3")
        .args([
            "-c",
            &server.to_string(),
            "-p",
            &port.to_string(),
            "-J",
            "-t",
        ])
        .arg(seconds.to_string())
        .args(extra)
        .output()
        .map_err(|e| format!("running iperf3: {e}"))?;
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).map_err(|e| {
        format!(
            "iperf3 output is not JSON ({e}): {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })?;
    if let Some(err) = json.get("error").and_then(|e| e.as_str()) {
        return Err(format!("iperf3: {err}"));
    }
    // TCP reports what the receiver got; UDP what the receiving end counted in `sum`.
    json.pointer("/end/sum_received/bits_per_second")
        .or_else(|| json.pointer("/end/sum/bits_per_second"))
        .and_then(serde_json::Value::as_f64)
        .map(|bps| bps / 1e6)
        .ok_or_else(|| "iperf3 reported no received rate".to_owned())
}

/// Makes the BRG in `brg` a VXLAN one: its VTEP address `vtep_cidr` on `lsl0`, a kernel
/// vxlan device towards `remote` for VNI `vni`, and a bridge `br0` joining it to `lan0`
/// (MTU 1450 over IPv4, 1430 over IPv6). Over IPv6 the device accepts the zero outer UDP
/// checksum the vG sends when it cannot derive one (RFC 6935).
pub fn vxlan_uplink(brg: &Netns, vni: u32, vtep_cidr: &str, remote: impl Into<std::net::IpAddr>) {
    let remote = remote.into();
    let v6 = remote.is_ipv6();
    if v6 {
        brg.ip(&["addr", "add", vtep_cidr, "dev", "lsl0", "nodad"]);
    } else {
        brg.addr_add("lsl0", vtep_cidr);
    }
    let local = vtep_cidr.split('/').next().unwrap_or(vtep_cidr);
    let (vni, remote) = (vni.to_string(), remote.to_string());
    let mut args = vec![
        "link", "add", "vxlan0", "type", "vxlan", "id", &vni, "local", local, "remote", &remote,
        "dstport", "4789", "dev", "lsl0",
    ];
    if v6 {
        args.push("udp6zerocsumrx");
    }
    brg.ip(&args);
    brg.ip(&[
        "link",
        "set",
        "lan0",
        "mtu",
        if v6 { "1430" } else { "1450" },
    ]);
    brg.bridge("br0", &["lan0", "vxlan0"]);
    brg.link_up("vxlan0");
}

fn vgd_config(homes: &[&Home]) -> String {
    let mut c = format!(
        "[fastpath]\nvtep = \"{VG_VTEP}\"\n\n[nat]\npool = [\"{PUBLIC_POOL}\"]\nblock_size = 512\n\n[dhcp]\nlease_time_secs = 3600\ndns_servers = [\"{SERVER}\"]\n"
    );
    for h in homes {
        let _ = write!(
            c,
            "\n[[subscriber]]\nid = {}\nlsl = \"{}\"\ngateway = \"{GATEWAY}/24\"\n",
            h.spec.id,
            h.lsl_text()
        );
    }
    c
}
