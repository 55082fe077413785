//! What the fast path knows about a subscriber's ports, and how it picks the public port of
//! a new mapping. The XDP program mirrors [`select_port`] bit for bit.
//!
//! # The compact form
//!
//! [`SubscriberPorts`]: the subscriber's public address, the block size (the same for every
//! block of a pool) and up to [`MAX_BLOCKS_PER_SUBSCRIBER`] block start ports in ascending
//! order. Its ports, in order, form a virtual index space `0..T` with
//! `T = blocks * block_size`: index `i` is port `firsts[i / block_size] + i % block_size`.
//!
//! # The probing sequence
//!
//! Inputs: the subscriber's [`SubscriberPorts`], the private source port `original`
//! (the ICMP identifier for echo), a 32-bit `flow_hash`, and a predicate "is this public
//! port free". Everything is unsigned; `*` and `+` on `u32` wrap (mod 2^32).
//!
//! 1. If `original` lies inside one of the blocks (`first <= original <= first +
//!    block_size - 1` for some block), test it: if free, take it (port preservation, RFC 4787
//!    §4.2.1: free for the NAT, and helpful to applications that assume it). A port outside the blocks is never tested.
//! 2. Otherwise, or if it is taken, let `x = flow_hash` and for `k = 1 ..=`
//!    [`MAX_PORT_PROBES`]:
//!    - `x = x * 747796405 + 2891336453` ([`PROBE_LCG_MUL`], [`PROBE_LCG_INC`]: the 32-bit
//!      LCG step of PCG, full period);
//!    - `i = (x as u64 * T as u64) >> 32` (the high bits of `x` scaled onto `0..T`: no
//!      division, and the LCG's weak low bits are never used);
//!    - `port = firsts[i / block_size] + i % block_size`;
//!    - if the port is free, take it.
//! 3. After [`MAX_PORT_PROBES`] taken candidates, give up: the caller counts the failure,
//!    answers ICMP type 3 code 13 or drops (RFC 6888 REQ-11), and reports the subscriber
//!    as full so that the control plane can add a block. A port is never borrowed from
//!    outside the subscriber's blocks.
//!
//! At most `1 + MAX_PORT_PROBES` predicate calls are made. The candidates are pseudo-random
//! rather than linear: linear probing clusters, and with blocks allowed to fill to the
//! session limit (2000 of 2048 ports by default) a 32-step linear scan starting from a hash
//! fails long before the blocks are full, while independent probes fail with probability
//! about `fill^32` (0.03% at 75% full, 3.4% at 90%). Candidates may repeat; that costs a
//! probe, never correctness. This is the same budget and shape as Cilium's and einat's
//! 32 random probes, made reproducible so that the XDP program and these tests agree.
//!
//! `flow_hash` should be a keyed hash (a secret chosen at vgd start) of what identifies the
//! mapping under endpoint-independent mapping: subscriber, protocol, private address and
//! private port, never the destination. The secret makes public ports hard to predict from
//! outside (RFC 6888 REQ-15, RFC 6056).
//!
//! Port parity (RFC 4787 §4.2.2 REQ-4, RECOMMENDED) is not preserved when probing: it would halve
//! the ports a home can reach near its limit, and RTP/RTCP pairing no longer relies on it.

use std::net::Ipv4Addr;

use thiserror::Error;

/// Most blocks one subscriber can hold: the fast path's per-subscriber array length, and
/// the bound of its "which block holds this port" loop.
pub const MAX_BLOCKS_PER_SUBSCRIBER: usize = 32;

/// Most pseudo-random candidates tried after the original port (Cilium and einat: 32).
pub const MAX_PORT_PROBES: u32 = 32;

/// Multiplier of the probe LCG (PCG's 32-bit LCG multiplier).
pub const PROBE_LCG_MUL: u32 = 747_796_405;

/// Increment of the probe LCG (PCG's 32-bit default increment; odd, so the period is 2^32).
pub const PROBE_LCG_INC: u32 = 2_891_336_453;

/// One block of consecutive public ports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PortBlock {
    first: u16,
    last: u16,
}

impl PortBlock {
    /// The block of `size` ports starting at `first`; `None` if empty, at port 0 or past 65535.
    pub fn new(first: u16, size: u16) -> Option<Self> {
        if first == 0 || size == 0 {
            return None;
        }
        let last = first.checked_add(size - 1)?;
        Some(Self { first, last })
    }

    /// The block of `size` ports from `first`, clamped into 1..=65535 (for indices the
    /// allocator already knows to be valid).
    pub(super) fn clamped(first: u32, size: u16) -> Self {
        let first = first.clamp(1, 65535);
        let last = (first + u32::from(size.max(1)) - 1).min(65535);
        // Both clamped into 1..=65535 above.
        Self {
            first: first as u16,
            last: last as u16,
        }
    }

    /// First port.
    pub const fn first(self) -> u16 {
        self.first
    }

    /// Last port (inclusive).
    pub const fn last(self) -> u16 {
        self.last
    }

    /// Number of ports.
    pub const fn size(self) -> u16 {
        self.last - self.first + 1
    }

    /// True if `port` lies inside.
    pub const fn contains(self, port: u16) -> bool {
        self.first <= port && port <= self.last
    }
}

/// A subscriber's public address and port blocks, as the fast path holds them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SubscriberPorts {
    address: Ipv4Addr,
    block_size: u16,
    len: u8,
    firsts: [u16; MAX_BLOCKS_PER_SUBSCRIBER],
}

/// Why a set of blocks cannot be represented.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum PortsError {
    /// More blocks than [`MAX_BLOCKS_PER_SUBSCRIBER`].
    #[error("{len} blocks; at most {MAX_BLOCKS_PER_SUBSCRIBER} are allowed")]
    TooManyBlocks {
        /// Blocks given.
        len: usize,
    },
    /// A block starts at port 0, is empty, or runs past port 65535.
    #[error("a block of {block_size} ports cannot start at port {first}")]
    BadBlock {
        /// The block's first port.
        first: u16,
        /// The block size.
        block_size: u16,
    },
    /// Two blocks share ports.
    #[error("the blocks starting at ports {a} and {b} overlap")]
    Overlap {
        /// First port of the lower block.
        a: u16,
        /// First port of the higher block.
        b: u16,
    },
}

impl SubscriberPorts {
    /// Builds the compact form; `firsts` may come in any order and is stored ascending.
    pub fn new(address: Ipv4Addr, block_size: u16, firsts: &[u16]) -> Result<Self, PortsError> {
        if firsts.len() > MAX_BLOCKS_PER_SUBSCRIBER {
            return Err(PortsError::TooManyBlocks { len: firsts.len() });
        }
        let mut sorted = [0u16; MAX_BLOCKS_PER_SUBSCRIBER];
        sorted[..firsts.len()].copy_from_slice(firsts);
        sorted[..firsts.len()].sort_unstable();
        for &first in &sorted[..firsts.len()] {
            PortBlock::new(first, block_size).ok_or(PortsError::BadBlock { first, block_size })?;
        }
        for pair in sorted[..firsts.len()].windows(2) {
            if u32::from(pair[1]) < u32::from(pair[0]) + u32::from(block_size) {
                return Err(PortsError::Overlap {
                    a: pair[0],
                    b: pair[1],
                });
            }
        }
        Ok(Self {
            address,
            block_size,
            // Bounded by MAX_BLOCKS_PER_SUBSCRIBER (32) above.
            len: firsts.len() as u8,
            firsts: sorted,
        })
    }

    /// The public address (paired pooling: one for all blocks).
    pub const fn address(&self) -> Ipv4Addr {
        self.address
    }

    /// Ports per block.
    pub const fn block_size(&self) -> u16 {
        self.block_size
    }

    /// First port of each block, ascending.
    pub fn firsts(&self) -> &[u16] {
        &self.firsts[..usize::from(self.len)]
    }

    /// The blocks, ascending.
    pub fn blocks(&self) -> impl Iterator<Item = PortBlock> + '_ {
        let size = self.block_size;
        self.firsts().iter().map(move |&first| PortBlock {
            first,
            last: first + (size - 1),
        })
    }

    /// Number of blocks.
    pub const fn len(&self) -> usize {
        self.len as usize
    }

    /// True if the subscriber holds no block.
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of ports in all blocks (`T` in the module doc).
    pub const fn total_ports(&self) -> u32 {
        self.len as u32 * self.block_size as u32
    }

    /// The block holding `port`, if any.
    pub fn block_of(&self, port: u16) -> Option<PortBlock> {
        self.blocks().find(|b| b.contains(port))
    }

    /// True if `port` lies in one of the blocks.
    pub fn contains(&self, port: u16) -> bool {
        self.block_of(port).is_some()
    }

    /// Port number `index` of the virtual index space (`None` past [`Self::total_ports`]).
    pub fn port_at(&self, index: u32) -> Option<u16> {
        let size = u32::from(self.block_size);
        let first = *self.firsts().get((index / size.max(1)) as usize)?;
        // first + (size - 1) fits a u16 (checked in `new`), so does first + index % size.
        Some(first + (index % size) as u16)
    }
}

/// The pseudo-random candidates of step 2, in order (exactly [`MAX_PORT_PROBES`] of them,
/// none if the subscriber has no block).
pub fn probe_sequence(ports: &SubscriberPorts, flow_hash: u32) -> impl Iterator<Item = u16> + '_ {
    let total = u64::from(ports.total_ports());
    let count = if total == 0 { 0 } else { MAX_PORT_PROBES };
    (0..count).scan(flow_hash, move |x, _| {
        *x = x.wrapping_mul(PROBE_LCG_MUL).wrapping_add(PROBE_LCG_INC);
        // (x * T) >> 32 < T <= u32::MAX, so the cast is exact and `port_at` finds a block.
        ports.port_at(((u64::from(*x) * total) >> 32) as u32)
    })
}

/// The port chosen for a new mapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortChoice {
    /// The public port.
    pub port: u16,
    /// 0 if the original port was kept, else which probe (1 ..= [`MAX_PORT_PROBES`]) found
    /// it: the fast path exports it as a retry histogram.
    pub probe: u32,
}

/// Picks the public port of a new mapping as the module doc specifies; `None` when the
/// original port and every candidate are taken (or the subscriber has no block).
pub fn select_port(
    ports: &SubscriberPorts,
    original: u16,
    flow_hash: u32,
    mut is_free: impl FnMut(u16) -> bool,
) -> Option<PortChoice> {
    if ports.contains(original) && is_free(original) {
        return Some(PortChoice {
            port: original,
            probe: 0,
        });
    }
    (1..)
        .zip(probe_sequence(ports, flow_hash))
        .find(|&(_, port)| is_free(port))
        .map(|(probe, port)| PortChoice { port, probe })
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    const ADDR: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 5);

    fn ports(size: u16, firsts: &[u16]) -> SubscriberPorts {
        SubscriberPorts::new(ADDR, size, firsts).expect("valid blocks")
    }

    #[test]
    fn compact_form() {
        let p = ports(512, &[4608, 1024]);
        assert_eq!(p.firsts(), &[1024, 4608], "stored ascending");
        assert_eq!(p.total_ports(), 1024);
        assert_eq!(p.port_at(0), Some(1024));
        assert_eq!(p.port_at(511), Some(1535));
        assert_eq!(p.port_at(512), Some(4608));
        assert_eq!(p.port_at(1023), Some(5119));
        assert_eq!(p.port_at(1024), None);
        assert!(p.contains(1535) && !p.contains(1536) && p.contains(4608));
        let b = p.block_of(5000).unwrap();
        assert_eq!((b.first(), b.last(), b.size()), (4608, 5119, 512));
        assert_eq!(p.address(), ADDR);
        assert_eq!(p.blocks().count(), 2);

        assert_eq!(
            SubscriberPorts::new(ADDR, 512, &[1024, 1500]),
            Err(PortsError::Overlap { a: 1024, b: 1500 })
        );
        assert_eq!(
            SubscriberPorts::new(ADDR, 512, &[65535]),
            Err(PortsError::BadBlock {
                first: 65535,
                block_size: 512
            })
        );
        assert!(SubscriberPorts::new(ADDR, 512, &[0]).is_err());
        assert!(SubscriberPorts::new(ADDR, 0, &[1024]).is_err());
        assert!(SubscriberPorts::new(ADDR, 1, &[65535]).is_ok());
        let many: Vec<u16> = (0..33).map(|i| 1024 + i * 16).collect();
        assert_eq!(
            SubscriberPorts::new(ADDR, 16, &many),
            Err(PortsError::TooManyBlocks { len: 33 })
        );
        assert!(SubscriberPorts::new(ADDR, 16, &many[..32]).is_ok());
        let empty = ports(512, &[]);
        assert!(empty.is_empty());
        assert_eq!(probe_sequence(&empty, 7).count(), 0);
        assert_eq!(select_port(&empty, 1024, 7, |_| true), None);
    }

    /// Fixed vectors: the eBPF implementation's tests use the same ones. If this test has to
    /// change, the XDP program has to change with it.
    #[test]
    fn probe_sequence_vectors() {
        let p = ports(512, &[1024, 4608, 60416]);
        let seq: Vec<u16> = probe_sequence(&p, 0).take(8).collect();
        assert_eq!(seq, [60426, 1450, 1227, 1338, 60678, 60504, 1187, 1225]);
        let seq: Vec<u16> = probe_sequence(&p, 0xdead_beef).take(8).collect();
        assert_eq!(seq, [60695, 1430, 60879, 1168, 60730, 1401, 1137, 1389]);
        // The arithmetic, spelled out for the first probe of hash 0.
        let x = 0u32.wrapping_mul(PROBE_LCG_MUL).wrapping_add(PROBE_LCG_INC);
        let i = ((u64::from(x) * 1536) >> 32) as u32;
        assert_eq!(p.port_at(i), Some(60426));
        assert_eq!(probe_sequence(&p, 0).count(), MAX_PORT_PROBES as usize);
    }

    #[test]
    fn original_port_kept_when_inside_and_free() {
        let p = ports(512, &[1024, 4608]);
        let choice = select_port(&p, 5000, 99, |_| true);
        assert_eq!(
            choice,
            Some(PortChoice {
                port: 5000,
                probe: 0
            })
        );
        // Taken original -> the first free probe; outside original -> never tested.
        let first_probe = probe_sequence(&p, 99).next().unwrap();
        let choice = select_port(&p, 5000, 99, |port| port != 5000);
        assert_eq!(
            choice,
            Some(PortChoice {
                port: first_probe,
                probe: 1
            })
        );
        let mut tested = Vec::new();
        let choice = select_port(&p, 40000, 99, |port| {
            tested.push(port);
            true
        });
        assert_eq!(tested, [first_probe], "port 40000 lies outside the blocks");
        assert_eq!(choice.unwrap().probe, 1);
    }

    #[test]
    fn probing_is_bounded_and_stays_inside() {
        let p = ports(64, &[1024, 2048, 65472]);
        let mut state = 0x1234_5678_u32;
        for _ in 0..2000 {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let original = (state >> 16) as u16;
            let mut calls = 0;
            let choice = select_port(&p, original, state, |port| {
                calls += 1;
                assert!(p.contains(port), "port {port} outside the blocks");
                false
            });
            assert_eq!(choice, None);
            let expected = MAX_PORT_PROBES + u32::from(p.contains(original));
            assert_eq!(calls, expected);
        }
    }

    #[test]
    fn candidates_cover_all_ports_evenly() {
        let p = ports(256, &[1024, 30000]);
        let mut hits = vec![0u32; p.total_ports() as usize];
        for hash in 0..20_000u32 {
            for port in probe_sequence(&p, hash.wrapping_mul(2_654_435_761)).take(4) {
                let block = p.block_of(port).unwrap();
                let index =
                    (port - block.first()) as usize + if block.first() == 1024 { 0 } else { 256 };
                hits[index] += 1;
            }
        }
        // 80000 candidates over 512 ports: 156 expected each.
        let (min, max) = (hits.iter().min().unwrap(), hits.iter().max().unwrap());
        assert!(*min > 90 && *max < 240, "uneven: min {min} max {max}");
    }

    /// Fill the blocks the way the fast path would (every mapping placed by `select_port`)
    /// and check how often a new mapping fails: close to fill^32, far from linear probing.
    #[test]
    fn failure_rate_near_full() {
        let p = ports(512, &[1024, 1536, 2048, 2560]);
        let mut used: HashSet<u16> = HashSet::new();
        let mut x = 7u32;
        let mut next = || {
            x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            x
        };
        // 90% of 2048 ports, placed with random original ports (most outside the blocks).
        while used.len() < 1843 {
            let (original, hash) = ((next() >> 16) as u16, next());
            if let Some(c) = select_port(&p, original, hash, |port| !used.contains(&port)) {
                used.insert(c.port);
            }
        }
        let mut failures = 0;
        let mut probes = 0;
        let trials = 20_000;
        for _ in 0..trials {
            let (original, hash) = ((next() >> 16) as u16, next());
            match select_port(&p, original, hash, |port| !used.contains(&port)) {
                Some(c) => probes += c.probe,
                None => failures += 1,
            }
        }
        let rate = f64::from(failures) / f64::from(trials);
        // fill^32 = 0.9^32 = 3.4%.
        assert!(rate < 0.06, "failure rate {rate}");
        let mean = f64::from(probes) / f64::from(trials - failures);
        assert!(
            mean < 10.5,
            "mean probes {mean} (about 1/(1-fill) = 10 expected)"
        );
    }
}
