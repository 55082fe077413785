//! TR-181 Device:2 objects, as [`SchemaBuilder`] fragments an application composes into its
//! data model, and a reader for the Broadband Forum's XML ([`xml`]).
//!
//! Names, types, facets, access, `forcedInform`, `activeNotify`, `hidden` and object-creation
//! defaults are those of the official `tr-181-2-*.xml` (Device:2.19, CWMP flavour); the tests
//! read that XML and fail if any parameter or object here differs from it. Enumerations may
//! be a subset of the official ones (a CPE need not support optional values) and ranges may
//! be narrower, nothing else. Defaults not given by the XML are this crate's choice.
//!
//! Where a value comes from ([`Source`](crate::model::Source)) is an implementation choice: `UpTime` and the
//! `LastChange` counters are read live from the [`Backend`](crate::model::Backend); status,
//! names and the like are stored and updated by the application with
//! [`Model::set`](crate::model::Model::set), which drives value-change notification.
//!
//! Every table is bounded (the `MAX_*` constants; TR-181 leaves them unbounded): AddObject
//! on a full table is answered with 9004.
//!
//! Not exposed (yet): `Alias` parameters (Alias-based addressing is optional and off), `Stats`
//! objects other than `Ethernet.Interface.{i}.Stats` ([`INTERFACE_STATS`]), STP, filters and
//! provider bridges.
//!
//! ```
//! let schema = cwmp::tr181::brg()?;
//! assert!(schema.param("Device.Bridging.Bridge.{i}.Port.{i}.PVID").is_some());
//! # Ok::<(), cwmp::model::SchemaError>(())
//! ```

// The official XML reader: only the tests compare against it.
#[cfg(test)]
mod xml;

#[cfg(test)]
mod tests;

use crate::model::{
    Access, ActiveNotify, ListSyntax, ObjectDef, ParamDef, Schema, SchemaBuilder, SchemaError,
    Syntax,
};

/// The data-model version the definitions here follow (`Device.RootDataModelVersion`).
pub const DATA_MODEL_VERSION: &str = "2.19";

// Table sizes. TR-181 gives every table the BRG exposes `maxEntries="unbounded"`, so the
// limits are this crate's, sized for a bridged residential gateway (TR-124's BRG: a handful
// of LAN ports, one LSL uplink) with room to spare, and small enough that the whole model
// (about 1,500 instances when every table is full) costs little to hold, walk and store. An
// AddObject beyond a limit is answered with 9004 (Resources exceeded); the application's own
// tables (ports, the interface stack) refuse to grow past theirs too.

/// `Device.Bridging.Bridge`: one subscriber bridge is the norm; a few more for separate
/// services (IPTV, VoIP) is what BRGs in the field offer.
pub const MAX_BRIDGES: u32 = 8;
/// `Bridge.{i}.Port` per bridge: the management port, every Ethernet port and the LSL
/// members (one per VLAN or VXLAN LSL).
pub const MAX_BRIDGE_PORTS: u32 = 32;
/// `Bridge.{i}.VLAN` per bridge (`MaxVLANEntries`): a few dozen VLANs, as a home gateway's
/// switch offers, far below the 4094 IDs.
pub const MAX_BRIDGE_VLANS: u32 = 32;
/// `Bridge.{i}.VLANPort` per bridge: each VLAN on a couple of ports.
pub const MAX_BRIDGE_VLAN_PORTS: u32 = 64;
/// `Device.Ethernet.Interface`: the physical ports (created by the application).
pub const MAX_ETHERNET_INTERFACES: u32 = 32;
/// `Device.Ethernet.Link`: one per physical port used below a VLAN termination or bridge.
pub const MAX_ETHERNET_LINKS: u32 = 16;
/// `Device.Ethernet.VLANTermination`: one per 802.1Q LSL, two per QinQ LSL.
pub const MAX_VLAN_TERMINATIONS: u32 = 32;
/// `Device.VXLAN.Tunnel`: one per vG VTEP reached.
pub const MAX_VXLAN_TUNNELS: u32 = 8;
/// `VXLAN.Tunnel.{i}.Interface` per tunnel: one per VNI carried to that VTEP.
pub const MAX_VXLAN_INTERFACES: u32 = 16;
/// `Device.IP.Interface`: the management side (TR-124 WAN.BRIDGE.3) and an underlay or two.
pub const MAX_IP_INTERFACES: u32 = 4;
/// `IP.Interface.{i}.IPv4Address` per interface.
pub const MAX_IPV4_ADDRESSES: u32 = 8;
/// `IP.Interface.{i}.IPv6Address` per interface: link-local, a few global ones.
pub const MAX_IPV6_ADDRESSES: u32 = 8;
/// `Device.InterfaceStack` (filled by the application from `LowerLayers`): above what the
/// interface tables above can produce when full (each object one lower layer, each bridge's
/// management port all its other ports).
pub const MAX_INTERFACE_STACK: u32 = 1024;

const RO: Access = Access::ReadOnly;
const RW: Access = Access::ReadWrite;

/// The `Status` enumeration of interface objects (TR-181 `BaseInterfaceParams`).
const IF_STATUS: &[&str] = &[
    "Up",
    "Down",
    "Unknown",
    "Dormant",
    "NotPresent",
    "LowerLayerDown",
    "Error",
];

/// `LowerLayers`: a list of up to 1024 characters of object references.
fn lower_layers() -> ParamDef {
    ParamDef::read_write(Syntax::string().list(1024)).default_value("")
}

fn counter(path: &str) -> (String, ParamDef) {
    (path.to_owned(), ParamDef::read_only(Syntax::unsigned_int()))
}

/// Adds the parameters every TR-181 interface object has: `Enable`, `Status`, `Name`,
/// `LastChange` (live), `LowerLayers`; `defaults` selects TR-181's
/// `BaseInterfaceParamsAddDefaults` (Enable false, Status Down).
fn interface_params(b: &mut SchemaBuilder, object: &str, defaults: bool) {
    // Physical interfaces (no TR-181 defaults) start enabled; created objects start disabled.
    let enable = ParamDef::read_write(Syntax::boolean()).default_value(!defaults);
    let status = ParamDef::read_only(Syntax::string().enumeration(IF_STATUS)).default_value("Down");
    b.param(format!("{object}Enable"), enable)
        .param(format!("{object}Status"), status)
        .param(
            format!("{object}Name"),
            ParamDef::read_only(Syntax::string_max(64)),
        )
        .param(
            format!("{object}LastChange"),
            ParamDef::read_only(Syntax::unsigned_int())
                .active_notify(ActiveNotify::CanDeny)
                .live(),
        )
        .param(format!("{object}LowerLayers"), lower_layers());
}

/// `Device.`: `RootDataModelVersion` and the `InterfaceStack` table (filled by the
/// application from its own interface graph).
pub fn root(b: &mut SchemaBuilder) {
    let (stack_count, stack_count_def) = counter("Device.InterfaceStackNumberOfEntries");
    b.object("Device.", ObjectDef::single())
        .param(
            "Device.RootDataModelVersion",
            ParamDef::read_only(Syntax::string_max(32))
                .forced_inform()
                .default_value(DATA_MODEL_VERSION),
        )
        .param(stack_count, stack_count_def)
        .object(
            "Device.InterfaceStack.{i}.",
            ObjectDef::table(RO)
                .num_entries("InterfaceStackNumberOfEntries")
                .max_entries(MAX_INTERFACE_STACK),
        )
        .param(
            "Device.InterfaceStack.{i}.HigherLayer",
            ParamDef::read_only(Syntax::string_max(256)),
        )
        .param(
            "Device.InterfaceStack.{i}.LowerLayer",
            ParamDef::read_only(Syntax::string_max(256)),
        );
}

/// `Device.DeviceInfo.`: identity (set by the application at start), `UpTime` (live).
pub fn device_info(b: &mut SchemaBuilder) {
    let o = "Device.DeviceInfo.";
    let text = |max| ParamDef::read_only(Syntax::string_max(max));
    b.object(o, ObjectDef::single())
        .param(format!("{o}Manufacturer"), text(64))
        .param(
            format!("{o}ManufacturerOUI"),
            ParamDef::read_only(Syntax::string_max(6).min_len(6)),
        )
        .param(format!("{o}ModelName"), text(64))
        .param(format!("{o}Description"), text(256))
        .param(format!("{o}ProductClass"), text(64))
        .param(format!("{o}SerialNumber"), text(64))
        .param(format!("{o}HardwareVersion"), text(64).forced_inform())
        .param(
            format!("{o}SoftwareVersion"),
            text(64)
                .forced_inform()
                .active_notify(ActiveNotify::ForceEnabled),
        )
        .param(
            format!("{o}ProvisioningCode"),
            ParamDef::read_write(Syntax::string_max(64))
                .forced_inform()
                .active_notify(ActiveNotify::ForceEnabled),
        )
        .param(
            format!("{o}UpTime"),
            ParamDef::read_only(Syntax::unsigned_int())
                .active_notify(ActiveNotify::CanDeny)
                .live(),
        );
}

/// `Device.ManagementServer.`: the ACS connection, periodic inform, connection requests,
/// retry tuning. `ParameterKey` is kept by the model.
pub fn management_server(b: &mut SchemaBuilder) {
    let o = "Device.ManagementServer.";
    let rw = |syntax| ParamDef::read_write(syntax);
    b.object(o, ObjectDef::single())
        .param(format!("{o}URL"), rw(Syntax::string_max(2048)))
        .param(format!("{o}Username"), rw(Syntax::string_max(256)))
        .param(format!("{o}Password"), rw(Syntax::string_max(256)).hidden())
        .param(
            format!("{o}PeriodicInformEnable"),
            rw(Syntax::boolean()).default_value(true),
        )
        .param(
            format!("{o}PeriodicInformInterval"),
            rw(Syntax::unsigned_int().min(1)).default_value(3600u32),
        )
        .param(format!("{o}PeriodicInformTime"), rw(Syntax::date_time()))
        .param(
            format!("{o}ParameterKey"),
            ParamDef::read_only(Syntax::string_max(32))
                .forced_inform()
                .active_notify(ActiveNotify::CanDeny),
        )
        .param(
            format!("{o}ConnectionRequestURL"),
            ParamDef::read_only(Syntax::string_max(2048))
                .forced_inform()
                .active_notify(ActiveNotify::ForceDefaultEnabled),
        )
        .param(
            format!("{o}ConnectionRequestUsername"),
            rw(Syntax::string_max(256)),
        )
        .param(
            format!("{o}ConnectionRequestPassword"),
            rw(Syntax::string_max(256)).hidden(),
        )
        .param(
            format!("{o}UpgradesManaged"),
            rw(Syntax::boolean()).default_value(false),
        )
        .param(
            format!("{o}DefaultActiveNotificationThrottle"),
            rw(Syntax::unsigned_int()).default_value(0u32),
        )
        .param(
            format!("{o}CWMPRetryMinimumWaitInterval"),
            rw(Syntax::unsigned_int().range(1, 65535)).default_value(5u32),
        )
        .param(
            format!("{o}CWMPRetryIntervalMultiplier"),
            rw(Syntax::unsigned_int().range(1000, 65535)).default_value(2000u32),
        )
        .param(
            format!("{o}AliasBasedAddressing"),
            ParamDef::read_only(Syntax::boolean())
                .forced_inform()
                .default_value(false),
        )
        .param(
            format!("{o}SupportedConnReqMethods"),
            ParamDef::read_only(Syntax::string().enumeration(&["HTTP"]).unbounded_list())
                .default_value("HTTP"),
        );
}

/// `Device.Bridging.`: bridges, their ports, VLANs and VLAN ports (802.1D and 802.1Q).
pub fn bridging(b: &mut SchemaBuilder) {
    let o = "Device.Bridging.";
    let br = "Device.Bridging.Bridge.{i}.";
    let port = "Device.Bridging.Bridge.{i}.Port.{i}.";
    let vlan = "Device.Bridging.Bridge.{i}.VLAN.{i}.";
    let vport = "Device.Bridging.Bridge.{i}.VLANPort.{i}.";
    let enable = || ParamDef::read_write(Syntax::boolean()).default_value(false);
    b.object(o, ObjectDef::single());
    // Any bridge may be 802.1D or 802.1Q (`Standard`), so each kind may fill the table.
    for (name, max) in [
        ("MaxBridgeEntries", MAX_BRIDGES),
        ("MaxDBridgeEntries", MAX_BRIDGES),
        ("MaxQBridgeEntries", MAX_BRIDGES),
        ("MaxVLANEntries", MAX_BRIDGE_VLANS),
    ] {
        let (path, def) = counter(&format!("{o}{name}"));
        b.param(path, def.default_value(max));
    }
    let (path, def) = counter(&format!("{o}BridgeNumberOfEntries"));
    b.param(path, def);
    b.object(
        br,
        ObjectDef::table(RW)
            .num_entries("BridgeNumberOfEntries")
            .max_entries(MAX_BRIDGES),
    )
    .param(format!("{br}Enable"), enable())
    .param(
        format!("{br}Status"),
        ParamDef::read_only(Syntax::string().enumeration(&["Disabled", "Enabled", "Error"]))
            .default_value("Disabled"),
    )
    .param(
        format!("{br}Name"),
        ParamDef::read_only(Syntax::string_max(64)),
    )
    .param(
        format!("{br}Standard"),
        ParamDef::read_write(Syntax::string().enumeration(&[
            "802.1D-2004",
            "802.1Q-2005",
            "802.1Q-2011",
        ]))
        .default_value("802.1Q-2011"),
    )
    .param(
        format!("{br}AgingTime"),
        ParamDef::read_write(Syntax::unsigned_int().range(10, 1_000_000)).default_value(300u32),
    );
    for name in [
        "PortNumberOfEntries",
        "VLANNumberOfEntries",
        "VLANPortNumberOfEntries",
    ] {
        let (path, def) = counter(&format!("{br}{name}"));
        b.param(path, def);
    }
    b.object(
        port,
        ObjectDef::table(RW)
            .num_entries("PortNumberOfEntries")
            .max_entries(MAX_BRIDGE_PORTS),
    );
    interface_params(b, port, true);
    b.param(format!("{port}ManagementPort"), enable())
        .param(
            format!("{port}Type"),
            ParamDef::read_write(Syntax::string().enumeration(&[
                "ProviderNetworkPort",
                "CustomerNetworkPort",
                "CustomerEdgePort",
                "CustomerVLANPort",
                "VLANUnawarePort",
            ]))
            .default_value("VLANUnawarePort"),
        )
        .param(
            format!("{port}PVID"),
            ParamDef::read_write(Syntax::int().range(1, 4094)).default_value(1),
        )
        .param(
            format!("{port}TPID"),
            ParamDef::read_write(Syntax::unsigned_int()).default_value(33024u32),
        )
        .param(
            format!("{port}AcceptableFrameTypes"),
            ParamDef::read_write(Syntax::string().enumeration(&[
                "AdmitAll",
                "AdmitOnlyVLANTagged",
                "AdmitOnlyPrioUntagged",
            ]))
            .default_value("AdmitAll"),
        );
    b.object(
        vlan,
        ObjectDef::table(RW)
            .num_entries("VLANNumberOfEntries")
            .max_entries(MAX_BRIDGE_VLANS),
    )
    .param(format!("{vlan}Enable"), enable())
    .param(
        format!("{vlan}Name"),
        ParamDef::read_write(Syntax::string_max(64)).default_value(""),
    )
    .param(
        format!("{vlan}VLANID"),
        ParamDef::read_write(Syntax::int().range(1, 4094)),
    );
    b.object(
        vport,
        ObjectDef::table(RW)
            .num_entries("VLANPortNumberOfEntries")
            .max_entries(MAX_BRIDGE_VLAN_PORTS),
    )
    .param(format!("{vport}Enable"), enable())
    .param(
        format!("{vport}VLAN"),
        ParamDef::read_write(Syntax::string_max(256)).default_value(""),
    )
    .param(
        format!("{vport}Port"),
        ParamDef::read_write(Syntax::string_max(256)).default_value(""),
    )
    .param(
        format!("{vport}Untagged"),
        ParamDef::read_write(Syntax::boolean()),
    );
}

/// The counters of TR-181's `BaseInterfaceStats` a Linux link has (`IFLA_STATS64`), under
/// `{object}Stats.`: live (read at every access), `activeNotify="canDeny"` as the XML says.
pub const INTERFACE_STATS: [(&str, bool); 8] = [
    ("BytesSent", true),
    ("BytesReceived", true),
    ("PacketsSent", true),
    ("PacketsReceived", true),
    ("ErrorsSent", false),
    ("ErrorsReceived", false),
    ("DiscardPacketsSent", false),
    ("DiscardPacketsReceived", false),
];

/// Adds `{object}Stats.` with [`INTERFACE_STATS`] (`true`: StatsCounter64, an unsignedLong;
/// `false`: StatsCounter32, an unsignedInt).
fn interface_stats(b: &mut SchemaBuilder, object: &str) {
    let stats = format!("{object}Stats.");
    b.object(&stats, ObjectDef::single());
    for (name, wide) in INTERFACE_STATS {
        let syntax = if wide {
            Syntax::unsigned_long()
        } else {
            Syntax::unsigned_int()
        };
        b.param(
            format!("{stats}{name}"),
            ParamDef::read_only(syntax)
                .active_notify(ActiveNotify::CanDeny)
                .live(),
        );
    }
}

/// `Device.Ethernet.`: physical interfaces (created by the application), links and VLAN
/// terminations (stack two for QinQ).
pub fn ethernet(b: &mut SchemaBuilder) {
    let o = "Device.Ethernet.";
    let iface = "Device.Ethernet.Interface.{i}.";
    let link = "Device.Ethernet.Link.{i}.";
    let vt = "Device.Ethernet.VLANTermination.{i}.";
    b.object(o, ObjectDef::single());
    for name in [
        "InterfaceNumberOfEntries",
        "LinkNumberOfEntries",
        "VLANTerminationNumberOfEntries",
    ] {
        let (path, def) = counter(&format!("{o}{name}"));
        b.param(path, def);
    }
    b.object(
        iface,
        ObjectDef::table(RO)
            .num_entries("InterfaceNumberOfEntries")
            .max_entries(MAX_ETHERNET_INTERFACES),
    );
    interface_params(b, iface, false);
    b.param(
        format!("{iface}MACAddress"),
        ParamDef::read_only(Syntax::string_max(17)),
    );
    interface_stats(b, iface);
    b.object(
        link,
        ObjectDef::table(RW)
            .num_entries("LinkNumberOfEntries")
            .max_entries(MAX_ETHERNET_LINKS),
    );
    interface_params(b, link, true);
    b.param(
        format!("{link}MACAddress"),
        ParamDef::read_write(Syntax::string_max(17)),
    )
    .param(
        format!("{link}MTU"),
        ParamDef::read_write(Syntax::unsigned_int()),
    );
    b.object(
        vt,
        ObjectDef::table(RW)
            .num_entries("VLANTerminationNumberOfEntries")
            .max_entries(MAX_VLAN_TERMINATIONS),
    );
    interface_params(b, vt, true);
    b.param(
        format!("{vt}VLANID"),
        ParamDef::read_write(Syntax::unsigned_int().range(1, 4094)),
    )
    .param(
        format!("{vt}TPID"),
        ParamDef::read_write(Syntax::unsigned_int()).default_value(33024u32),
    );
}

/// `Device.VXLAN.`: tunnels to the vG's VTEP and their VNI interfaces.
pub fn vxlan(b: &mut SchemaBuilder) {
    let o = "Device.VXLAN.";
    let tunnel = "Device.VXLAN.Tunnel.{i}.";
    let iface = "Device.VXLAN.Tunnel.{i}.Interface.{i}.";
    let (count, count_def) = counter(&format!("{o}TunnelNumberOfEntries"));
    let port = || Syntax::unsigned_int().range(0, 65535);
    b.object(o, ObjectDef::single()).param(count, count_def);
    b.object(
        tunnel,
        ObjectDef::table(RW)
            .num_entries("TunnelNumberOfEntries")
            .max_entries(MAX_VXLAN_TUNNELS),
    )
    .param(
        format!("{tunnel}Enable"),
        ParamDef::read_write(Syntax::boolean()).default_value(false),
    )
    .param(
        format!("{tunnel}Status"),
        ParamDef::read_only(Syntax::string().enumeration(&["Disabled", "Enabled", "Error"]))
            .default_value("Disabled"),
    )
    .param(format!("{tunnel}RemoteEndpoints"), {
        let mut syntax = Syntax::string_max(256).unbounded_list();
        syntax.list = syntax.list.map(|l| ListSyntax {
            max_items: Some(4),
            ..l
        });
        ParamDef::read_write(syntax)
    })
    .param(
        format!("{tunnel}KeepAlivePolicy"),
        ParamDef::read_write(Syntax::string().enumeration(&["None"])).default_value("None"),
    )
    .param(
        format!("{tunnel}ConnectedRemoteEndpoint"),
        ParamDef::read_only(Syntax::string_max(256)),
    )
    .param(
        format!("{tunnel}RemotePort"),
        ParamDef::read_write(port()).default_value(4789u32),
    )
    .param(
        format!("{tunnel}SourcePort"),
        ParamDef::read_write(port()).default_value(0u32),
    );
    let (count, count_def) = counter(&format!("{tunnel}InterfaceNumberOfEntries"));
    b.param(count, count_def);
    b.object(
        iface,
        ObjectDef::table(RW)
            .num_entries("InterfaceNumberOfEntries")
            .max_entries(MAX_VXLAN_INTERFACES),
    );
    interface_params(b, iface, true);
    b.param(
        format!("{iface}VNI"),
        ParamDef::read_write(Syntax::int().range(-1, -1).range(0, 16_777_215)).default_value(1),
    );
}

/// `Device.IP.Interface.` for the management side (TR-124 WAN.BRIDGE.3), with its IPv4
/// and IPv6 addresses.
pub fn ip_interface(b: &mut SchemaBuilder) {
    let o = "Device.IP.";
    let iface = "Device.IP.Interface.{i}.";
    let addr = "Device.IP.Interface.{i}.IPv4Address.{i}.";
    let (count, count_def) = counter(&format!("{o}InterfaceNumberOfEntries"));
    b.object(o, ObjectDef::single()).param(count, count_def);
    b.object(
        iface,
        ObjectDef::table(RW)
            .num_entries("InterfaceNumberOfEntries")
            .max_entries(MAX_IP_INTERFACES),
    );
    interface_params(b, iface, true);
    let (count, count_def) = counter(&format!("{iface}IPv4AddressNumberOfEntries"));
    b.param(
        format!("{iface}IPv4Enable"),
        ParamDef::read_write(Syntax::boolean()).default_value(true),
    )
    .param(
        format!("{iface}Type"),
        ParamDef::read_only(
            Syntax::string().enumeration(&["Normal", "Loopback", "Tunnel", "Tunneled"]),
        )
        .default_value("Normal"),
    )
    .param(count, count_def);
    b.object(
        addr,
        ObjectDef::table(RW)
            .num_entries("IPv4AddressNumberOfEntries")
            .max_entries(MAX_IPV4_ADDRESSES),
    )
    .param(
        format!("{addr}Enable"),
        ParamDef::read_write(Syntax::boolean()).default_value(false),
    )
    .param(
        format!("{addr}Status"),
        ParamDef::read_only(Syntax::string().enumeration(&[
            "Disabled",
            "Enabled",
            "Error_Misconfigured",
            "Error",
        ]))
        .default_value("Disabled"),
    )
    .param(
        format!("{addr}IPAddress"),
        ParamDef::read_write(Syntax::string_max(15)),
    )
    .param(
        format!("{addr}SubnetMask"),
        ParamDef::read_write(Syntax::string_max(15)).default_value(""),
    )
    .param(
        format!("{addr}AddressingType"),
        ParamDef::read_only(Syntax::string().enumeration(&["DHCP", "Static"]))
            .default_value("Static"),
    );
    ipv6_addresses(b, iface);
}

/// `IP.Interface.{i}.IPv6Address.{i}.`: the interface's IPv6 unicast addresses (the device
/// fills it from Linux).
fn ipv6_addresses(b: &mut SchemaBuilder, iface: &str) {
    let addr = format!("{iface}IPv6Address.{{i}}.");
    let (count, count_def) = counter(&format!("{iface}IPv6AddressNumberOfEntries"));
    b.param(
        format!("{iface}IPv6Enable"),
        ParamDef::read_write(Syntax::boolean()).default_value(true),
    )
    .param(count, count_def);
    b.object(
        &addr,
        ObjectDef::table(RW)
            .num_entries("IPv6AddressNumberOfEntries")
            .max_entries(MAX_IPV6_ADDRESSES),
    )
    .param(
        format!("{addr}Enable"),
        ParamDef::read_write(Syntax::boolean()).default_value(false),
    )
    .param(
        format!("{addr}Status"),
        ParamDef::read_only(Syntax::string().enumeration(&[
            "Disabled",
            "Enabled",
            "Error_Misconfigured",
            "Error",
        ]))
        .default_value("Disabled"),
    )
    .param(
        format!("{addr}IPAddressStatus"),
        ParamDef::read_only(Syntax::string().enumeration(&[
            "Preferred",
            "Deprecated",
            "Invalid",
            "Inaccessible",
            "Unknown",
            "Tentative",
            "Duplicate",
            "Optimistic",
        ]))
        .default_value("Invalid"),
    )
    .param(
        format!("{addr}IPAddress"),
        ParamDef::read_write(Syntax::string_max(45)).default_value(""),
    )
    .param(
        format!("{addr}Origin"),
        ParamDef::read_only(Syntax::string().enumeration(&[
            "AutoConfigured",
            "DHCPv6",
            "WellKnown",
            "Static",
        ]))
        .default_value("Static"),
    );
}

/// The fragments a bridged residential gateway exposes, in one builder (extend it with
/// vendor objects before building).
pub fn brg_builder() -> SchemaBuilder {
    let mut b = SchemaBuilder::new();
    root(&mut b);
    device_info(&mut b);
    management_server(&mut b);
    ethernet(&mut b);
    bridging(&mut b);
    vxlan(&mut b);
    ip_interface(&mut b);
    b
}

/// The BRG's schema: [`root`], [`device_info`], [`management_server`], [`ethernet`],
/// [`bridging`], [`vxlan`] and [`ip_interface`]. The fragments are fixed and tested, so this
/// only fails if they are edited into an inconsistent state.
pub fn brg() -> Result<Schema, SchemaError> {
    brg_builder().build()
}
