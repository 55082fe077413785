//! The BRG's tc tagger on the LSL uplink (TR-124 WAN.BRIDGE with an 802.1Q/QinQ LSL, done in
//! eBPF so that no kernel VLAN support is needed).
//!
//! - egress (towards the vG): push the LSL's tags in-line, C-tag innermost. `bpf_skb_vlan_push`
//!   would leave the tag in skb metadata with the default offloads, and a veth or NIC peer
//!   would then see it out of line; `bpf_skb_adjust_room` + stores put it in the frame
//!   whatever the offloads (shared/reference/platform.md, "VLAN tags on veth").
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
    bindings::bpf_adj_room_mode::BPF_ADJ_ROOM_MAC,
    helpers::generated::bpf_skb_vlan_pop,
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

/// Offset of the ethertype (after the MAC addresses).
const ETHERTYPE: usize = 12;

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

/// Egress on the uplink: push the LSL's tags.
#[classifier]
fn brg_lsl_egress(ctx: TcContext) -> i32 {
    let Some(cfg) = config() else {
        return TC_OK;
    };
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

#[inline(always)]
fn push_tags(ctx: &TcContext, cfg: &TagConfig) -> Result<(), ()> {
    let inner: [u8; 2] = ctx.load(ETHERTYPE).map_err(|_| ())?;
    let qinq = cfg.s_tpid != 0;
    let room: i32 = if qinq { 8 } else { 4 };
    // Room is made after the Ethernet header; the tags go where the ethertype was and the
    // original ethertype moves behind them.
    ctx.adjust_room(room, BPF_ADJ_ROOM_MAC, 0).map_err(|_| ())?;
    let c_tag = {
        let vid = (cfg.c_vid & 0x0fff).to_be_bytes();
        let tpid = ethertype::VLAN.to_be_bytes();
        [tpid[0], tpid[1], vid[0], vid[1]]
    };
    if qinq {
        let s_vid = (cfg.s_vid & 0x0fff).to_be_bytes();
        let tpid = cfg.s_tpid.to_be_bytes();
        let tags = [
            tpid[0], tpid[1], s_vid[0], s_vid[1], c_tag[0], c_tag[1], c_tag[2], c_tag[3], inner[0],
            inner[1],
        ];
        ctx.store(ETHERTYPE, &tags, 0).map_err(|_| ())
    } else {
        let tags = [c_tag[0], c_tag[1], c_tag[2], c_tag[3], inner[0], inner[1]];
        ctx.store(ETHERTYPE, &tags, 0).map_err(|_| ())
    }
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
        count(TagCounter::Plain);
        return TC_OK;
    }
    let qinq = cfg.s_tpid != 0;
    let (want_vid, want_tpid) = if qinq {
        (cfg.s_vid, cfg.s_tpid)
    } else {
        (cfg.c_vid, ethertype::VLAN)
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
