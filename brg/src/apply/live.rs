//! What Linux really does, published into the model: operational status, MAC addresses
//! and the management interface's IPv4 and IPv6 addresses ([`LinuxApplier`]'s [`Device::report`]), read
//! again on every rtnetlink link or address notification ([`watch_links`]).
//!
//! ```text
//!  kernel --RTNLGRP_LINK / IPV4_IFADDR / IPV6_IFADDR--> watch_links --()--> Agent::run
//!                                                                            | publish:
//!  kernel <--------- link + address dumps (worker thread) ------------- Device::report
//!                                                                            v
//!                                      Model::set (a changed Status is a VALUE CHANGE)
//! ```

use std::net::{IpAddr, Ipv4Addr};

use cwmp::model::{Backend, Model, ModelError, Value, View};
use futures::StreamExt as _;
use rtnetlink::sys::{AsyncSocket as _, SocketAddr};
use tokio::sync::mpsc;

use super::LinuxApplier;
use super::linux::Address;
use crate::agent::{Device, Report, Row};

/// rtnetlink multicast groups (`RTNLGRP_*`, `<linux/rtnetlink.h>`) whose notifications
/// change what is published: links (carrier, admin state, MAC) and addresses.
const GROUPS: [u32; 3] = [
    1, /* LINK */
    5, /* IPV4_IFADDR */
    9, /* IPV6_IFADDR */
];

/// Subscribes to the rtnetlink link and address notifications of the calling thread's
/// network namespace; every burst of them sends one `()` (the channel holds one: events
/// that come while one is pending coalesce). Call it inside the tokio runtime that reads
/// the receiver, in the namespace brgd manages (brgd's own).
pub fn watch_links() -> std::io::Result<mpsc::Receiver<()>> {
    let (mut conn, _handle, mut messages) = rtnetlink::new_connection()?;
    let mask = GROUPS.iter().fold(0u32, |m, g| m | (1 << (g - 1)));
    conn.socket_mut()
        .socket_mut()
        .bind(&SocketAddr::new(0, mask))?;
    tokio::spawn(conn);
    let (tx, rx) = mpsc::channel(1);
    tokio::spawn(async move {
        while messages.next().await.is_some() {
            match tx.try_send(()) {
                Ok(()) | Err(mpsc::error::TrySendError::Full(())) => {}
                Err(mpsc::error::TrySendError::Closed(())) => return,
            }
        }
    });
    Ok(rx)
}

/// Lists the management interface `dev` in `Device.IP.Interface` (the instance whose
/// `Name` is `dev`, else a new one): TR-181 `Name` is read-only, so only the device can
/// name it, and the ACS binds a VXLAN tunnel's underlay to it by reference.
pub fn ip_inventory<B: Backend>(model: &mut Model<B>, dev: &str) -> Result<u32, ModelError> {
    let table = "Device.IP.Interface.";
    for n in model.instances(table)? {
        if model.get(&format!("{table}{n}.Name"))?.to_string() == dev {
            return Ok(n);
        }
    }
    let n = model.add_instance(table, None)?;
    model.set(&format!("{table}{n}.Name"), dev)?;
    // The device's own interface is up as configured (TR-181 creates them disabled).
    model.set(&format!("{table}{n}.Enable"), true)?;
    Ok(n)
}

/// The IPv4 subnet mask of a prefix length, dotted.
fn mask(prefix_len: u8) -> String {
    let bits = u32::MAX
        .checked_shl(32 - u32::from(prefix_len.min(32)))
        .unwrap_or(0);
    Ipv4Addr::from(bits).to_string()
}

impl LinuxApplier {
    /// `Device.IP.Interface.{n}.IPv4Address` rows for every `IP.Interface` that names a
    /// Linux device: its IPv4 addresses as Linux has them.
    fn ip_rows(&self, view: &View<'_>) -> Vec<(String, Vec<Row>)> {
        let mut tables = Vec::new();
        for n in view.instances("Device.IP.Interface.") {
            let o = format!("Device.IP.Interface.{n}.");
            let dev = view
                .get(&format!("{o}Name"))
                .map(|v| v.to_string())
                .unwrap_or_default();
            if dev.is_empty() {
                continue;
            }
            let name = dev.clone();
            let Ok(Ok(addresses)) = self.worker.call(move |k| k.addresses(&name)) else {
                continue;
            };
            tables.push((format!("{o}IPv6Address."), ipv6_rows(&addresses)));
            let rows = addresses
                .iter()
                .filter_map(|a| match a.ip {
                    IpAddr::V4(ip) => Some((ip, a)),
                    IpAddr::V6(_) => None,
                })
                .map(|(ip, a)| {
                    vec![
                        ("Enable".to_owned(), Value::from(true)),
                        ("Status".to_owned(), Value::from("Enabled")),
                        ("IPAddress".to_owned(), Value::from(ip.to_string().as_str())),
                        (
                            "SubnetMask".to_owned(),
                            Value::from(mask(a.prefix_len).as_str()),
                        ),
                        (
                            "AddressingType".to_owned(),
                            Value::from(if a.permanent { "Static" } else { "DHCP" }),
                        ),
                    ]
                })
                .take(cwmp::tr181::MAX_IPV4_ADDRESSES as usize)
                .collect();
            tables.push((format!("{o}IPv4Address."), rows));
        }
        tables
    }
}

/// `IPv6Address` rows: every IPv6 address of the device. `Origin`: a link-local address is
/// `WellKnown`, a permanent one (configured) `Static`, one with a lifetime `AutoConfigured`
/// (SLAAC; Linux does not say whether DHCPv6 added it).
fn ipv6_rows(addresses: &[Address]) -> Vec<Row> {
    addresses
        .iter()
        .filter_map(|a| match a.ip {
            IpAddr::V6(ip) => Some((ip, a)),
            IpAddr::V4(_) => None,
        })
        .map(|(ip, a)| {
            let origin = if ip.is_unicast_link_local() {
                "WellKnown"
            } else if a.permanent {
                "Static"
            } else {
                "AutoConfigured"
            };
            vec![
                ("Enable".to_owned(), Value::from(true)),
                ("Status".to_owned(), Value::from("Enabled")),
                ("IPAddressStatus".to_owned(), Value::from(a.state.as_str())),
                ("IPAddress".to_owned(), Value::from(ip.to_string().as_str())),
                ("Origin".to_owned(), Value::from(origin)),
            ]
        })
        .take(cwmp::tr181::MAX_IPV6_ADDRESSES as usize)
        .collect()
}

impl Device for LinuxApplier {
    fn report(&self, view: &View<'_>) -> Report {
        Report {
            tables: self.ip_rows(view),
            values: self.status(view),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn masks() {
        assert_eq!(super::mask(0), "0.0.0.0");
        assert_eq!(super::mask(16), "255.255.0.0");
        assert_eq!(super::mask(24), "255.255.255.0");
        assert_eq!(super::mask(32), "255.255.255.255");
        assert_eq!(super::mask(40), "255.255.255.255");
    }
}
