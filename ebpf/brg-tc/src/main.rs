//! The BRG's tc tagger on the LSL uplink (TR-124 WAN.BRIDGE with an 802.1Q/QinQ LSL, done in
//! eBPF so that no kernel VLAN support is needed).
//!
//! - egress (towards the vG): drop a LAN frame that already carries a tag (`lan_tagged`):
//!   the vG would read the host's own tag as part of the LSL's, and `vlan:N` plus a host's tag
//!   C is the LSL `qinq-8100:N.C` of another home. Otherwise push the LSL's tags with
//!   `bpf_skb_vlan_push`, C-tag first, then
//!   the S-tag (which moves the C-tag in-line). The outermost tag sits in skb metadata until
//!   the uplink transmits the frame: the uplink must have transmit VLAN offload off
//!   (`txvlan off tx-vlan-stag-hw-insert off`, which brgd sets) so that the kernel writes it
//!   in-line, as the vG needs (tags pushed by tc with hardware VLAN offload on land in skb metadata, and XDP on the peer veth never sees them).
//!   `bpf_skb_adjust_room` would write tags in-line whatever the offloads, but the kernel
//!   only allows it on IPv4/IPv6 frames, and ARP must be tagged too.
//! - ingress (from the vG): the kernel has already moved the outer tag into skb metadata;
//!   check it is ours and pop it (`bpf_skb_vlan_pop` then moves the next in-line tag into
//!   metadata: pop again for QinQ). Frames with another LSL's tags are dropped (the access
//!   segment is shared); untagged frames pass (the BRG's own management traffic).
//!
//! On the host (clippy) the crate is an empty binary whose code is only type-checked.
#![cfg_attr(target_arch = "bpf", no_std)]
#![cfg_attr(target_arch = "bpf", no_main)]
#![expect(
    unsafe_code,
    reason = "eBPF programs read skb fields through raw pointers"
)]

use aya_ebpf::{
    bindings::BPF_F_INGRESS,
    helpers::generated::{bpf_redirect, bpf_skb_change_head, bpf_skb_vlan_pop, bpf_skb_vlan_push},
    macros::{classifier, map},
    maps::{Array, PerCpuArray},
    programs::TcContext,
};
use nerg_abi::{
    brg::{TAG_VALID, TagConfig, TagCounter},
    ethertype,
};

/// The LSL this uplink carries.
#[map(name = "BRG_LSL")]
static BRG_LSL: Array<TagConfig> = Array::with_max_entries(1, 0);

/// Counters, per CPU.
#[map(name = "BRG_STATS")]
static BRG_STATS: PerCpuArray<u64> = PerCpuArray::with_max_entries(TagCounter::COUNT, 0);

/// `TC_ACT_OK` (`<linux/pkt_cls.h>`): continue. Spelled out because the generated binding's
/// integer type differs between the host and the BPF target.
const TC_OK: i32 = 0;
/// `TC_ACT_SHOT`: drop.
const TC_SHOT: i32 = 2;

#[inline(always)]
fn count(c: TagCounter) {
    if let Some(slot) = BRG_STATS.get_ptr_mut(c as u32) {
        // SAFETY: per-CPU slot from a successful lookup; only this CPU writes it.
        unsafe { *slot += 1 };
    }
}

#[inline(always)]
fn config() -> Option<TagConfig> {
    BRG_LSL.get(0).copied().filter(|c| c.flags & TAG_VALID != 0)
}

/// Egress on the uplink: push the LSL's tags onto untagged frames, drop tagged ones.
#[classifier]
fn brg_lsl_egress(ctx: TcContext) -> i32 {
    let Some(cfg) = config() else {
        return TC_OK;
    };
    if already_tagged(&ctx) {
        count(TagCounter::LanTagged);
        return TC_SHOT;
    }
    match push_tags(&ctx, &cfg) {
        Ok(()) => {
            count(TagCounter::Tagged);
            TC_OK
        }
        Err(()) => {
            count(TagCounter::Failed);
            TC_SHOT
        }
    }
}

/// Whether a frame from the LAN carries a VLAN tag: in the skb's metadata (where the kernel
/// moves a received 802.1Q or 802.1ad tag), or in the frame (0x9100, which the kernel leaves
/// there; any tag whose outer one went to metadata). A frame too short to hold an ethertype
/// is not tagged.
#[inline(always)]
fn already_tagged(ctx: &TcContext) -> bool {
    let skb = ctx.skb.skb;
    // SAFETY: `skb` is the program's context; vlan_present is readable by tc programs.
    if unsafe { (*skb).vlan_present } != 0 {
        return true;
    }
    // The ethertype at bytes 12..14, network byte order.
    ctx.load::<u16>(12).is_ok_and(|raw| {
        matches!(
            u16::from_be(raw),
            ethertype::VLAN | ethertype::QINQ | ethertype::QINQ_LEGACY
        )
    })
}

#[inline(always)]
fn push_tags(ctx: &TcContext, cfg: &TagConfig) -> Result<(), ()> {
    if cfg.s_tpid == ethertype::QINQ_LEGACY {
        return push_legacy_qinq(ctx, cfg);
    }
    let skb = ctx.skb.skb;
    // SAFETY: the helper takes the program's own context; TPIDs in network byte order.
    let rc = unsafe { bpf_skb_vlan_push(skb, ethertype::VLAN.to_be(), cfg.c_vid & 0x0fff) };
    if rc != 0 {
        return Err(());
    }
    if cfg.s_tpid != 0 {
        // SAFETY: as above; pushing again moves the C-tag from metadata into the frame.
        let rc = unsafe { bpf_skb_vlan_push(skb, cfg.s_tpid.to_be(), cfg.s_vid & 0x0fff) };
        if rc != 0 {
            return Err(());
        }
    }
    Ok(())
}

/// QinQ under the legacy 0x9100 S-tag: `bpf_skb_vlan_push` turns any TPID but 0x8100 and
/// 0x88A8 into 0x8100 (net/core/filter.c), so both tags are written in-line instead: 8
/// bytes of headroom in front of the frame (`bpf_skb_change_head`, which works whatever the
/// frame's protocol, unlike `bpf_skb_adjust_room`), the MAC addresses moved to the front,
/// then `9100 S-TCI 8100 C-TCI` where they were.
///
/// ```text
///  before: | 8 new bytes | dst | src | type ...
///  after:  | dst | src | 91 00 | S-TCI | 81 00 | C-TCI | type ...
/// ```
#[inline(always)]
fn push_legacy_qinq(ctx: &TcContext, cfg: &TagConfig) -> Result<(), ()> {
    let skb = ctx.skb.skb;
    // SAFETY: the helper takes the program's own context.
    if unsafe { bpf_skb_change_head(skb, LEGACY_QINQ_LEN, 0) } != 0 {
        return Err(());
    }
    let macs: [u8; 12] = ctx.load(LEGACY_QINQ_LEN as usize).map_err(|_| ())?;
    ctx.store(0, &macs, 0).map_err(|_| ())?;
    let [s_hi, s_lo] = (cfg.s_vid & 0x0fff).to_be_bytes();
    let [c_hi, c_lo] = (cfg.c_vid & 0x0fff).to_be_bytes();
    let [sp_hi, sp_lo] = ethertype::QINQ_LEGACY.to_be_bytes();
    let [cp_hi, cp_lo] = ethertype::VLAN.to_be_bytes();
    let tags = [sp_hi, sp_lo, s_hi, s_lo, cp_hi, cp_lo, c_hi, c_lo];
    ctx.store(12, &tags, 0).map_err(|_| ())
}

/// Bytes of the two in-line tags of a legacy QinQ frame.
const LEGACY_QINQ_LEN: u32 = 8;

/// Ingress of a legacy QinQ frame: the kernel leaves a 0x9100 tag in the frame (it moves
/// only 0x8100 and 0x88A8 tags into metadata, and no tc helper removes bytes from a frame
/// of an unknown protocol). An outer tag with the LSL's S-VID is relabelled 0x88A8 and the
/// frame sent through the uplink's ingress again (`bpf_redirect` with `BPF_F_INGRESS`,
/// which parses the Ethernet header anew): the kernel then moves the S-tag into metadata
/// and [`brg_lsl_ingress`] pops both tags as for any QinQ LSL. Returns the verdict.
#[inline(always)]
fn relabel_legacy_qinq(ctx: &TcContext, cfg: &TagConfig) -> i32 {
    let outer = ctx.load::<u16>(12).map(u16::from_be);
    let tci = ctx.load::<u16>(14).map(u16::from_be);
    match (outer, tci) {
        (Ok(ethertype::QINQ_LEGACY), Ok(tci)) if tci & 0x0fff == cfg.s_vid & 0x0fff => {}
        (Ok(ethertype::QINQ_LEGACY), _) => {
            count(TagCounter::ForeignLsl);
            return TC_SHOT;
        }
        _ => {
            count(TagCounter::Plain);
            return TC_OK;
        }
    }
    if ctx.store(12, &ethertype::QINQ.to_be(), 0).is_err() {
        count(TagCounter::Failed);
        return TC_SHOT;
    }
    let skb = ctx.skb.skb;
    // SAFETY: `skb` is the program's context; ifindex is readable by tc programs.
    let ifindex = unsafe { (*skb).ifindex };
    // SAFETY: a helper without pointer arguments.
    unsafe { bpf_redirect(ifindex, u64::from(BPF_F_INGRESS)) as i32 }
}

/// Ingress on the uplink: check and pop the LSL's tags.
#[classifier]
fn brg_lsl_ingress(ctx: TcContext) -> i32 {
    let Some(cfg) = config() else {
        return TC_OK;
    };
    let skb = ctx.skb.skb;
    // SAFETY: `skb` is the program's context; these fields are readable by tc programs.
    let (present, tci, proto) =
        unsafe { ((*skb).vlan_present, (*skb).vlan_tci, (*skb).vlan_proto) };
    if present == 0 {
        if cfg.s_tpid == ethertype::QINQ_LEGACY {
            return relabel_legacy_qinq(&ctx, &cfg);
        }
        count(TagCounter::Plain);
        return TC_OK;
    }
    let qinq = cfg.s_tpid != 0;
    let (want_vid, want_tpid) = match cfg.s_tpid {
        0 => (cfg.c_vid, ethertype::VLAN),
        // Relabelled by `relabel_legacy_qinq` on its first pass.
        ethertype::QINQ_LEGACY => (cfg.s_vid, ethertype::QINQ),
        s_tpid => (cfg.s_vid, s_tpid),
    };
    // vlan_proto is in network byte order.
    if tci & 0x0fff != u32::from(want_vid) || u16::from_be(proto as u16) != want_tpid {
        count(TagCounter::ForeignLsl);
        return TC_SHOT;
    }
    // SAFETY: the helper takes the program's own context.
    if unsafe { bpf_skb_vlan_pop(skb) } != 0 {
        count(TagCounter::Failed);
        return TC_SHOT;
    }
    if qinq {
        // SAFETY: as above; the inner tag is now in metadata.
        let (present, tci) = unsafe { ((*skb).vlan_present, (*skb).vlan_tci) };
        if present == 0 || tci & 0x0fff != u32::from(cfg.c_vid) {
            count(TagCounter::ForeignLsl);
            return TC_SHOT;
        }
        // SAFETY: as above.
        if unsafe { bpf_skb_vlan_pop(skb) } != 0 {
            count(TagCounter::Failed);
            return TC_SHOT;
        }
    }
    count(TagCounter::Untagged);
    TC_OK
}

/// License section: GPL-only helpers may be used.
#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";

#[cfg(target_arch = "bpf")]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

/// Host builds only: the programs above are type-checked, not run.
#[cfg(not(target_arch = "bpf"))]
fn main() {}
