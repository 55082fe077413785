//! The addresses, MACs and NAT parameters the fast-path rigs share (`xdp_nat`,
//! `nat_traffic` and the fast-path and forwarding benches): one vG namespace with `acc0`
//! towards the BRGs and `core0` towards the internet.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use lsl::{Encap, Vid, Vni, VxlanEncap, smoltcp::wire::EthernetAddress, wire::vlan::Tpid};
use nerg_abi::lsl_kind;

/// The vG's VTEP (on `acc0`).
pub const VG_VTEP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
/// The BRG's VTEP.
pub const BRG_VTEP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
/// The BRG VTEP's MAC (a permanent neighbour in the vG).
pub const BRG_VTEP_MAC: [u8; 6] = [0x02, 0xb0, 0, 0, 0, 0x02];
/// The vG's VTEP for VXLAN over IPv6.
pub const VG_VTEP6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1);
/// The BRG's VTEP for VXLAN over IPv6.
pub const BRG_VTEP6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 2);
/// The vG's default next hop (on `core0`).
pub const NEXT_HOP: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 2);
/// The next hop's MAC (a permanent neighbour in the vG).
pub const NEXT_HOP_MAC: [u8; 6] = [0x02, 0x99, 0, 0, 0, 0x02];
/// Every home's gateway address.
pub const GW: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 1);
/// The host in each home.
pub const HOST: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 10);
/// That host's MAC.
pub const HOST_MAC: [u8; 6] = [0x02, 0x11, 0, 0, 0, 0x10];
/// A server on the internet.
pub const INTERNET: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 5);
/// Ports per NAT block.
pub const BLOCK_SIZE: u16 = 512;
/// The NAT flow-hash seed (vgd picks one at random).
pub const SEED: u32 = 0x5eed_1234;
/// The vG's IPv6 default next hop (on `core0`, whose address is [`CORE6`]).
pub const NEXT_HOP6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xffff, 0, 0, 0, 0, 2);
/// Its MAC (a permanent neighbour in the vG).
pub const NEXT_HOP6_MAC: [u8; 6] = [0x02, 0x99, 0, 0, 0, 0x06];
/// The vG's address on `core0`, with its prefix length.
pub const CORE6: &str = "2001:db8:ffff::1/64";
/// A server on the IPv6 internet.
pub const INTERNET6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xffee, 0, 0, 0, 0, 5);

/// The BRG's and the vG's VTEP of a rig home whose LSL is of kind `lsl` (`nerg_abi::lsl_kind`):
/// over IPv6 for `VXLAN6`.
pub fn vteps(lsl: u8) -> (IpAddr, IpAddr) {
    if lsl == lsl_kind::VXLAN6 {
        (IpAddr::V6(BRG_VTEP6), IpAddr::V6(VG_VTEP6))
    } else {
        (IpAddr::V4(BRG_VTEP), IpAddr::V4(VG_VTEP))
    }
}

/// The encapsulation a rig home's BRG puts on its frames towards the vG (`access_mac`: the
/// vG's `acc0`): its tags, or VXLAN `vni` between [`vteps`].
pub fn encap(lsl: u8, s_vid: u16, c_vid: u16, vni: u32, access_mac: [u8; 6]) -> Encap {
    let vid = |v| Vid::new(v).expect("a rig VID");
    match lsl {
        lsl_kind::DOT1Q => Encap::Dot1q { c_vid: vid(c_vid) },
        lsl_kind::QINQ => Encap::QinQ {
            s_tpid: Tpid::STag,
            s_vid: vid(s_vid),
            c_vid: vid(c_vid),
        },
        _ => {
            let (brg, vg) = vteps(lsl);
            Encap::Vxlan(VxlanEncap::new(
                Vni::new(vni).expect("a rig VNI"),
                brg,
                vg,
                EthernetAddress(BRG_VTEP_MAC),
                EthernetAddress(access_mac),
            ))
        }
    }
}
