//! LSL termination: which subscriber a frame from the access side belongs to.
//!
//! ```text
//!  dst src | TPID tag | [TPID tag] | ethertype ...        802.1Q / QinQ: key (ifindex, S-VID, C-VID)
//!  dst src | 8100 N   | TPID tag   | ...   with an 802.1Q home of VID N: dropped (tagged_in_home)
//!  dst src | 0800 | IPv4 | UDP :4789 | VXLAN | inner Ethernet ...   VXLAN: key (VNI, BRG VTEP)
//!  dst src | 86dd | IPv6 | UDP :4789 | VXLAN | inner Ethernet ...   VXLAN over IPv6: the same
//!  anything else, untagged                                -> the kernel stack (the VTEP's ARP, ...)
//! ```

use aya_ebpf::programs::XdpContext;
use nerg_abi::{
    Config, Counter, DropReason, MAX_VLAN_DEPTH, SubscriberId, VlanLslKey, Vxlan6LslKey,
    VxlanLslKey, ethertype, stag_tpid,
};

use crate::{
    LSL_VLAN, LSL_VXLAN, LSL_VXLAN6, Verdict, count_stat,
    packet::{Cursor, EthHdr, Ipv4Hdr, UdpHdr, VlanHdr, VxlanHdr, ipproto, ipv6_eq},
};

/// A classified access frame: the subscriber, and the inner frame's first header fields.
pub(crate) struct Classified {
    /// The home.
    pub(crate) sub: SubscriberId,
    /// The inner frame's source MAC (the home host's).
    pub(crate) inner_src_mac: [u8; 6],
    /// The inner ethertype, host byte order. The cursor points just after it.
    pub(crate) ethertype: u16,
    /// The outer S-tag TPID (QinQ only), host byte order.
    pub(crate) s_tpid: u16,
}

/// Classifies the frame whose Ethernet header `eth` was just read from `cur`.
/// `Err(Verdict::Pass)` for untagged traffic that is not VXLAN to us.
#[inline(always)]
pub(crate) fn classify(
    ctx: &XdpContext,
    cur: &mut Cursor,
    eth: &EthHdr,
    cfg: &Config,
) -> Result<Classified, Verdict> {
    let first = eth.ethertype();
    if is_vlan_tpid(first) {
        return classify_vlan(ctx, cur, eth, cfg, first);
    }
    if first == ethertype::IPV4
        && cfg.vtep_ipv4 != 0
        && let Some(classified) = classify_vxlan(cur, cfg)?
    {
        count_stat(Counter::LslVxlan);
        return Ok(classified);
    }
    if first == ethertype::IPV6
        && !ipv6_eq(&cfg.vtep_ipv6, &[0; 16])
        && let Some(classified) = classify_vxlan6(cur, cfg)?
    {
        count_stat(Counter::LslVxlan6);
        return Ok(classified);
    }
    count_stat(Counter::LslUntagged);
    Err(Verdict::Pass)
}

#[inline(always)]
fn is_vlan_tpid(ethertype: u16) -> bool {
    matches!(
        ethertype,
        ethertype::VLAN | ethertype::QINQ | ethertype::QINQ_LEGACY
    )
}

#[inline(always)]
fn stag_accepted(cfg: &Config, tpid: u16) -> bool {
    let bit = match tpid {
        ethertype::QINQ => stag_tpid::AD,
        ethertype::QINQ_LEGACY => stag_tpid::LEGACY_9100,
        ethertype::VLAN => stag_tpid::DOT1Q,
        _ => 0,
    };
    cfg.stag_tpids & bit != 0
}

#[inline(always)]
fn classify_vlan(
    ctx: &XdpContext,
    cur: &mut Cursor,
    eth: &EthHdr,
    cfg: &Config,
    first_tpid: u16,
) -> Result<Classified, Verdict> {
    let outer: VlanHdr = cur.read()?;
    let mut key = VlanLslKey {
        ifindex: ctx.ingress_ifindex() as u32,
        s_vid: 0,
        c_vid: outer.vid(),
    };
    let mut ethertype = outer.ethertype();
    let mut s_tpid = 0;
    let mut depth = 1;
    if is_vlan_tpid(ethertype) {
        // Bounded: at most MAX_VLAN_DEPTH tags are parsed.
        let inner: VlanHdr = cur.read()?;
        depth += 1;
        // An 802.1Q home's tag with another inside: one of its hosts tagged its own frame.
        // Never read as QinQ (another home's `qinq-8100:` LSL), whatever vgd let through.
        if first_tpid == ethertype::VLAN && is_dot1q_home(key) {
            return Err(Verdict::Drop(DropReason::TaggedInHome));
        }
        if !stag_accepted(cfg, first_tpid) || ethertype != ethertype::VLAN {
            return Err(Verdict::Drop(DropReason::BadTpid));
        }
        s_tpid = first_tpid;
        key.s_vid = outer.vid();
        key.c_vid = inner.vid();
        ethertype = inner.ethertype();
    } else if first_tpid != ethertype::VLAN {
        // A lone S-tag (TR-101 1:1 S-VLAN) is not an LSL kind the vG models.
        return Err(Verdict::Drop(DropReason::BadTpid));
    }
    if depth >= MAX_VLAN_DEPTH && is_vlan_tpid(ethertype) {
        return Err(Verdict::Drop(DropReason::VlanTooDeep));
    }
    count_stat(if depth == 1 {
        Counter::LslDot1q
    } else {
        Counter::LslQinq
    });
    // SAFETY: plain hash map lookup; the value is a `u32` copied out at once.
    let sub = unsafe { LSL_VLAN.get(key) }
        .copied()
        .ok_or(Verdict::Drop(DropReason::UnknownLsl))?;
    Ok(Classified {
        sub,
        inner_src_mac: eth.src,
        ethertype,
        s_tpid,
    })
}

/// Whether the single-tagged key `key` (its C-VID the frame's outer VID) is an 802.1Q home's.
#[inline(always)]
fn is_dot1q_home(key: VlanLslKey) -> bool {
    // SAFETY: plain hash map lookup; only presence is used.
    unsafe { LSL_VLAN.get(key) }.is_some()
}

/// `Ok(None)` when the IPv4 frame is not VXLAN for us (it goes to the stack).
#[inline(always)]
fn classify_vxlan(cur: &mut Cursor, cfg: &Config) -> Result<Option<Classified>, Verdict> {
    let ip: Ipv4Hdr = cur.read()?;
    if ip.protocol != ipproto::UDP {
        return Ok(None);
    }
    if !ip.is_plain_v4() || usize::from(ip.tot_len()) < 20 {
        return Err(Verdict::Drop(DropReason::BadIpHeader));
    }
    let udp: UdpHdr = cur.read()?;
    if udp.dest_raw() != cfg.vxlan_port {
        return Ok(None);
    }
    if ip.is_fragment() {
        return Err(Verdict::Drop(DropReason::OuterFragment));
    }
    if ip.daddr_raw() != cfg.vtep_ipv4 {
        return Err(Verdict::Drop(DropReason::WrongVtep));
    }
    let vxlan: VxlanHdr = cur.read()?;
    if !vxlan.has_vni() {
        return Err(Verdict::Drop(DropReason::VxlanBadFlags));
    }
    let inner: EthHdr = cur.read()?;
    let key = VxlanLslKey {
        vni: vxlan.vni(),
        remote: ip.saddr_raw(),
    };
    // SAFETY: plain hash map lookup; the value is a `u32` copied out at once.
    let sub = unsafe { LSL_VXLAN.get(key) }
        .copied()
        .ok_or(Verdict::Drop(DropReason::UnknownLsl))?;
    Ok(Some(Classified {
        sub,
        inner_src_mac: inner.src,
        ethertype: inner.ethertype(),
        s_tpid: 0,
    }))
}

/// `Ok(None)` when the IPv6 frame is not VXLAN for us (it goes to the stack: neighbour
/// discovery for the VTEP, ...). Extension headers are not walked: VXLAN senders do not use
/// them, and such a frame goes to the stack.
#[inline(always)]
fn classify_vxlan6(cur: &mut Cursor, cfg: &Config) -> Result<Option<Classified>, Verdict> {
    // Read in pieces, not as one 40-byte header: the stack is shared with everything the
    // access program calls (512 bytes for the whole call chain).
    let fixed: [u8; 8] = cur.read()?;
    let next_header = fixed[6];
    if next_header != ipproto::UDP {
        return Ok(None);
    }
    let payload_len = usize::from(u16::from_be_bytes([fixed[4], fixed[5]]));
    if fixed[0] >> 4 != 6 || payload_len + 32 > cur.remaining() {
        return Err(Verdict::Drop(DropReason::BadIpHeader));
    }
    let remote: [u8; 16] = cur.read()?;
    let local: [u8; 16] = cur.read()?;
    let udp: UdpHdr = cur.read()?;
    if udp.dest_raw() != cfg.vxlan_port {
        return Ok(None);
    }
    if !ipv6_eq(&local, &cfg.vtep_ipv6) {
        return Err(Verdict::Drop(DropReason::WrongVtep));
    }
    let vxlan: VxlanHdr = cur.read()?;
    if !vxlan.has_vni() {
        return Err(Verdict::Drop(DropReason::VxlanBadFlags));
    }
    let inner: EthHdr = cur.read()?;
    let key = Vxlan6LslKey {
        vni: vxlan.vni(),
        remote,
    };
    // SAFETY: plain hash map lookup; the value is a `u32` copied out at once.
    let sub = unsafe { LSL_VXLAN6.get(key) }
        .copied()
        .ok_or(Verdict::Drop(DropReason::UnknownLsl))?;
    Ok(Some(Classified {
        sub,
        inner_src_mac: inner.src,
        ethertype: inner.ethertype(),
        s_tpid: 0,
    }))
}
