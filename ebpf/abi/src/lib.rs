//! The map ABI shared by the vG's XDP programs and `vgd`.
//!
//! Everything both halves must agree on is defined here once: map names, counter indices,
//! drop reasons and the `#[repr(C)]` key/value types. Rules for types in this crate:
//! explicit padding fields, no `bool` (use `u8`/`u32` flags), byte order stated on every
//! multi-byte field. With the `user` feature the types implement `aya::Pod` for `vgd`.
#![no_std]

#[cfg(test)]
extern crate std;

/// Names of the maps in the vG object file; pinned under the instance's bpffs directory.
pub mod map_names {
    /// Per-CPU array of `u64`, indexed by [`Counter`](crate::Counter).
    pub const STATS: &str = "NERG_STATS";
    /// Per-CPU array of `u64`, indexed by [`DropReason`](crate::DropReason).
    pub const DROPS: &str = "NERG_DROPS";
}

/// Names of the programs in the vG object file.
pub mod program_names {
    /// The access-side XDP entry (LSL termination, upstream NAT).
    pub const ACCESS: &str = "vg_access";
    /// A program that passes every frame: attached to veth peers so that native
    /// `XDP_REDIRECT`/`XDP_TX` into a veth is delivered (see `platform.md`).
    pub const PASS: &str = "vg_pass";
}

/// Greatest number of VLAN tags parsed in-line (one C-tag, or an S-tag and a C-tag).
pub const MAX_VLAN_DEPTH: usize = 2;

/// Ethertypes the access side understands (host byte order).
pub mod ethertype {
    /// IPv4.
    pub const IPV4: u16 = 0x0800;
    /// ARP.
    pub const ARP: u16 = 0x0806;
    /// IEEE 802.1Q customer tag (C-tag); also seen as a legacy outer tag.
    pub const VLAN: u16 = 0x8100;
    /// IEEE 802.1ad service tag (S-tag).
    pub const QINQ: u16 = 0x88A8;
    /// Legacy pre-standard QinQ outer tag.
    pub const QINQ_LEGACY: u16 = 0x9100;
    /// IPv6.
    pub const IPV6: u16 = 0x86DD;
}

macro_rules! indexed_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $label:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        #[repr(u32)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
        }

        impl $name {
            /// Every variant, in index order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            /// Number of variants: the `max_entries` of the map indexed by this enum.
            pub const COUNT: u32 = Self::ALL.len() as u32;

            /// The map index of this variant.
            #[inline(always)]
            pub const fn index(self) -> u32 {
                self as u32
            }

            /// A stable snake_case name, used as a metric label.
            pub const fn label(self) -> &'static str {
                match self {
                    $( $name::$variant => $label, )+
                }
            }
        }
    };
}

indexed_enum! {
    /// Packet counters of the fast path, one slot per CPU each.
    pub enum Counter {
        /// Frames seen on the access interface.
        AccessRxPackets = "access_rx_packets",
        /// Bytes seen on the access interface (L2 frame length).
        AccessRxBytes = "access_rx_bytes",
        /// Access frames without a VLAN tag.
        LslUntagged = "lsl_untagged",
        /// Access frames with one 802.1Q tag.
        LslDot1q = "lsl_dot1q",
        /// Access frames with two tags (QinQ).
        LslQinq = "lsl_qinq",
        /// Frames handed to the kernel stack (`XDP_PASS`).
        VerdictPass = "verdict_pass",
        /// Frames dropped (`XDP_DROP`); the reason is in the drops map.
        VerdictDrop = "verdict_drop",
        /// Frames sent back out of the interface they came in on (`XDP_TX`).
        VerdictTx = "verdict_tx",
        /// Frames redirected to another interface (`XDP_REDIRECT`).
        VerdictRedirect = "verdict_redirect",
        /// Frames aborted by a program error (`XDP_ABORTED`).
        VerdictAborted = "verdict_aborted",
    }
}

indexed_enum! {
    /// Why the fast path dropped a frame, one counter slot per CPU each.
    pub enum DropReason {
        /// Shorter than the headers it claims to carry.
        Truncated = "truncated",
        /// More stacked VLAN tags than [`MAX_VLAN_DEPTH`].
        VlanTooDeep = "vlan_too_deep",
    }
}

/// Value type of the per-CPU counter maps.
pub type CounterValue = u64;

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    #[test]
    fn indices_are_dense_and_labels_unique() {
        for (i, c) in Counter::ALL.iter().enumerate() {
            assert_eq!(c.index() as usize, i);
        }
        for (i, d) in DropReason::ALL.iter().enumerate() {
            assert_eq!(d.index() as usize, i);
        }
        let labels = |l: &[&str]| {
            let mut v: Vec<&str> = l.to_vec();
            v.sort_unstable();
            v.dedup();
            v.len()
        };
        let c: [&str; Counter::COUNT as usize] = core::array::from_fn(|i| Counter::ALL[i].label());
        let d: [&str; DropReason::COUNT as usize] =
            core::array::from_fn(|i| DropReason::ALL[i].label());
        assert_eq!(labels(&c), c.len());
        assert_eq!(labels(&d), d.len());
    }
}
