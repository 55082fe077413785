//! RA guard (RFC 6105): the messages only a router or a DHCPv6 server sends, which no host
//! in a home may send: the fast path drops and counts them, the slow path refuses them.
//!
//! | message                     | how it is recognised                                 |
//! |-----------------------------|------------------------------------------------------|
//! | Router Advertisement        | ICMPv6 type 134 (RFC 4861 §4.2)                      |
//! | Redirect                    | ICMPv6 type 137 (RFC 4861 §4.5)                      |
//! | DHCPv6 server to client     | UDP 547 -> 546, message Advertise (2), Reply (7), Reconfigure (10) or Relay-Reply (13) (RFC 8415 §7.3) |
//!
//! The upper-layer header is found past up to [`MAX_EXTENSION_HEADERS`] Hop-by-Hop,
//! Routing and Destination Options headers (RFC 8200 §4), which is how RA guard evasion
//! hides an RA (RFC 7113 §2); a first fragment is looked into, a later one cannot be (RFC
//! 7112 makes a first fragment carry the whole header chain).

use lsl::smoltcp::wire::IPV6_HEADER_LEN;

/// The most extension headers walked before giving up on finding the upper layer.
pub const MAX_EXTENSION_HEADERS: usize = 8;

/// Next-header values (RFC 8200 §4, IANA).
const HOP_BY_HOP: u8 = 0;
const ROUTING: u8 = 43;
const FRAGMENT: u8 = 44;
const DEST_OPTIONS: u8 = 60;
const ICMPV6: u8 = 58;
const UDP: u8 = 17;

const DHCPV6_CLIENT_PORT: u16 = 546;
const DHCPV6_SERVER_PORT: u16 = 547;

/// A router-only message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouterOnly {
    /// ICMPv6 Router Advertisement.
    RouterAdvert,
    /// ICMPv6 Redirect.
    Redirect,
    /// A DHCPv6 server-to-client message (its message type).
    Dhcpv6Server(u8),
}

impl RouterOnly {
    /// A short name for a metric label.
    pub const fn label(&self) -> &'static str {
        match self {
            RouterOnly::RouterAdvert => "ra",
            RouterOnly::Redirect => "redirect",
            RouterOnly::Dhcpv6Server(_) => "dhcpv6_server",
        }
    }
}

/// Whether `packet` (an IPv6 packet, from its version field) is a router-only message.
pub fn is_router_only(packet: &[u8]) -> Option<RouterOnly> {
    let upper = upper_layer(packet)?;
    if !upper.first_fragment {
        return None;
    }
    let l4 = packet.get(upper.offset..)?;
    match upper.protocol {
        ICMPV6 => match l4.first()? {
            134 => Some(RouterOnly::RouterAdvert),
            137 => Some(RouterOnly::Redirect),
            _ => None,
        },
        UDP => {
            let port = |at: usize| Some(u16::from_be_bytes([*l4.get(at)?, *l4.get(at + 1)?]));
            let (src, dst) = (port(0)?, port(2)?);
            let msg_type = *l4.get(8)?;
            let server = matches!(msg_type, 2 | 7 | 10 | 13);
            (src == DHCPV6_SERVER_PORT && dst == DHCPV6_CLIENT_PORT && server)
                .then_some(RouterOnly::Dhcpv6Server(msg_type))
        }
        _ => None,
    }
}

/// Where an IPv6 packet's upper-layer header is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct UpperLayer {
    /// Its protocol number.
    pub(super) protocol: u8,
    /// Its offset from the start of the IPv6 header.
    pub(super) offset: usize,
    /// Whether the packet is unfragmented or the first fragment (fragment offset 0).
    pub(super) first_fragment: bool,
}

/// Walks the extension headers; `None` if the packet is cut short inside them or has more
/// than [`MAX_EXTENSION_HEADERS`].
pub(super) fn upper_layer(packet: &[u8]) -> Option<UpperLayer> {
    if packet.len() < IPV6_HEADER_LEN || packet.first()? >> 4 != 6 {
        return None;
    }
    let mut protocol = *packet.get(6)?;
    let mut offset = IPV6_HEADER_LEN;
    let mut first_fragment = true;
    for _ in 0..MAX_EXTENSION_HEADERS {
        match protocol {
            HOP_BY_HOP | ROUTING | DEST_OPTIONS => {
                let next = *packet.get(offset)?;
                let len = (usize::from(*packet.get(offset + 1)?) + 1) * 8;
                protocol = next;
                offset += len;
            }
            FRAGMENT => {
                let next = *packet.get(offset)?;
                let frag = u16::from_be_bytes([*packet.get(offset + 2)?, *packet.get(offset + 3)?]);
                first_fragment &= frag >> 3 == 0;
                protocol = next;
                offset += 8;
            }
            _ => {
                return Some(UpperLayer {
                    protocol,
                    offset,
                    first_fragment,
                });
            }
        }
    }
    None
}
