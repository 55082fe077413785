//! The port-block allocator: which subscriber owns which blocks on which public address.
//!
//! # Model
//!
//! Each public address's port range is cut into `blocks_per_address` blocks of
//! `block_size` ports; block `i` covers `first + i * block_size ..= first + (i + 1) *
//! block_size - 1`. A block is *free*, *owned* by one subscriber, or *held* (released,
//! resting for the port-reuse hold-down). A subscriber owns 1 ..= `max_blocks` blocks, all
//! on one address (paired pooling, RFC 4787 REQ-2, RFC 6888 REQ-2): it keeps that address as
//! long as it exists, even when all but its initial blocks are released.
//!
//! # Choices
//!
//! - **Address for a new subscriber**: the address with the most blocks free *now*; ties go
//!   to the address with fewer subscribers, then to the lower address. Free blocks are what
//!   a subscriber on that address will grow into, so this keeps growth headroom even across
//!   addresses and spreads subscribers round-robin when they all hold the same number of
//!   blocks. (Counting subscribers first would keep stacking new homes onto an address whose
//!   existing homes have grown, and their growth would then fail.)
//! - **Block on an address**: never-used blocks first (lowest first), then blocks back from
//!   hold-down, oldest release first. A released block therefore rests as long as the pool
//!   allows, well beyond the hold-down when there is room, which keeps log attribution
//!   unambiguous (RFC 6888 REQ-8 asks for 120 s at least).
//! - **Hold-down**: a released block becomes free `hold_down_secs` after its release, to the
//!   second: released at `t`, free again from `t + hold_down_secs` on. Expiry is processed
//!   lazily at the start of each allocation, with the `now` the caller passes in.
//! - **Idle release** ([`BlockAllocator::release_block`]) never takes a subscriber below its
//!   initial block count, and never takes a block that carries port forwards: the initial
//!   blocks are the home's guaranteed ports.
//! - **Port forwards**: the public port must lie inside one of the subscriber's blocks
//!   ([`BlockAllocator::add_forward`]), and the block is then pinned (not released as idle)
//!   until the forward is removed. Reserving an arbitrary block on demand was rejected: it
//!   would let a home pick ports that the pool hands out in order, defeat the least-recently
//!   released reuse order, and need a second allocation path. A home (or its operator) sees
//!   its blocks through the API and chooses a port inside them, as with other CGNs' PBA port
//!   forwarding. Pins are not persisted: the subscriber registry, which owns the forwards,
//!   adds them again after a restore.
//!
//! # Cost
//!
//! Every operation is O(log A) in the number of addresses plus O(1) expected in the number
//! of subscribers (a hash map), plus O(log H) per hold-down that expires (a binary heap):
//! suitable for 100,000 subscribers and more. Memory is proportional to the blocks ever
//! handed out, not to the pool size.

use std::{
    cmp::Reverse,
    collections::{BTreeSet, BinaryHeap, HashMap, VecDeque},
    fmt,
    net::Ipv4Addr,
};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::{
    config::NatConfig,
    event::{BlockAction, BlockEvent, SubscriberId, UnixTime},
    pool::PortRange,
    select::{MAX_BLOCKS_PER_SUBSCRIBER, PortBlock, SubscriberPorts},
};

/// State of a block that has been handed out at least once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Slot {
    /// Back from hold-down, waiting in the address's `recycled` queue.
    Free,
    /// Released; in the hold-down heap.
    Held,
    /// Owned by a subscriber.
    Owned(SubscriberId),
}

/// One public address.
#[derive(Clone, Debug)]
struct Address {
    ip: Ipv4Addr,
    /// Subscribers assigned to this address.
    subscribers: u32,
    /// Blocks `fresh..blocks_per_address` have never been handed out.
    fresh: u32,
    /// Free blocks below `fresh`, oldest release first.
    recycled: VecDeque<u16>,
    /// Blocks in hold-down.
    held: u32,
    /// State of blocks `0..fresh`.
    slots: Vec<Slot>,
}

/// Ordering key of an address for new subscribers: most free blocks first, then fewest
/// subscribers, then lowest index (= lowest address).
type LoadKey = (Reverse<u32>, u32, u32);

/// A block owned by a subscriber.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct OwnedBlock {
    index: u16,
    forwards: u32,
}

/// One subscriber's allocation.
#[derive(Clone, Debug)]
struct Subscriber {
    address: u32,
    /// In allocation order.
    blocks: Vec<OwnedBlock>,
}

/// Entry of the hold-down heap: (free again at, address index, block index).
type Hold = Reverse<(UnixTime, u32, u16)>;

/// The port-block allocator (I/O-free; see the module doc).
#[derive(Clone, Debug)]
pub struct BlockAllocator {
    port_range: PortRange,
    block_size: u16,
    blocks_per_address: u32,
    initial_blocks: u8,
    max_blocks: u8,
    hold_down_secs: u32,
    addresses: Vec<Address>,
    by_load: BTreeSet<LoadKey>,
    subscribers: HashMap<SubscriberId, Subscriber>,
    holds: BinaryHeap<Hold>,
    blocks_owned: u64,
}

/// Counts for metrics (`nat_blocks{state=...}`) and the API.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PoolStats {
    /// Public addresses.
    pub addresses: u32,
    /// Subscribers holding blocks.
    pub subscribers: u64,
    /// Blocks in the pool.
    pub blocks_total: u64,
    /// Blocks owned by subscribers.
    pub blocks_owned: u64,
    /// Blocks resting in hold-down.
    pub blocks_held: u64,
    /// Blocks available now.
    pub blocks_free: u64,
}

/// Usage of one public address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct AddressUsage {
    /// The address.
    pub address: Ipv4Addr,
    /// Subscribers on it.
    pub subscribers: u32,
    /// Blocks owned.
    pub owned: u32,
    /// Blocks in hold-down.
    pub held: u32,
    /// Blocks available now.
    pub free: u32,
}

/// A subscriber's persisted allocation: its address and the first port of each block.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Assignment {
    /// The subscriber.
    pub subscriber: SubscriberId,
    /// Its public address.
    pub address: Ipv4Addr,
    /// First port of each block, ascending.
    pub blocks: Vec<u16>,
}

/// A block in hold-down, persisted so that a restart does not shorten the hold-down.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeldBlock {
    /// The public address.
    pub address: Ipv4Addr,
    /// First port of the block.
    pub first_port: u16,
    /// When it becomes free again.
    pub until: UnixTime,
}

/// Everything needed to rebuild the allocator after a restart.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Snapshot {
    /// The port range the blocks were cut from.
    pub port_range: PortRange,
    /// The block size the blocks were cut with.
    pub block_size: u16,
    /// Allocations, by ascending subscriber id.
    pub subscribers: Vec<Assignment>,
    /// Blocks in hold-down.
    #[serde(default)]
    pub held: Vec<HeldBlock>,
}

/// The subscriber is not known to the allocator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
#[error("subscriber {0} has no NAT allocation")]
pub struct UnknownSubscriber(pub SubscriberId);

/// Why a new subscriber got no blocks.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum AddError {
    /// The subscriber already has an allocation.
    #[error("subscriber {subscriber} already has NAT blocks on {address}")]
    Exists {
        /// The subscriber.
        subscriber: SubscriberId,
        /// Its address.
        address: Ipv4Addr,
    },
    /// No address has enough free blocks (RFC 6888 REQ-11: a defined refusal).
    #[error(
        "NAT pool exhausted: subscriber {subscriber} needs {needed} free blocks on one \
         address, the best address has {best}"
    )]
    PoolExhausted {
        /// The subscriber.
        subscriber: SubscriberId,
        /// Initial blocks needed.
        needed: u8,
        /// Most free blocks on any address.
        best: u32,
    },
    /// A pinned address is not in the pool.
    #[error("subscriber {subscriber}'s pinned address {address} is not in nat.pool")]
    NotInPool {
        /// The subscriber.
        subscriber: SubscriberId,
        /// The address asked for.
        address: Ipv4Addr,
    },
}

/// Why a subscriber got no additional block.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum GrowError {
    /// The subscriber is not known.
    #[error(transparent)]
    Unknown(#[from] UnknownSubscriber),
    /// It already holds the maximum (RFC 6888 REQ-4).
    #[error("subscriber {subscriber} already holds the maximum of {max} blocks")]
    MaxBlocks {
        /// The subscriber.
        subscriber: SubscriberId,
        /// The limit.
        max: u8,
    },
    /// Its address has no free block (paired pooling forbids another address).
    #[error("no free block on {address} for subscriber {subscriber} ({held} blocks in hold-down)")]
    AddressExhausted {
        /// The subscriber.
        subscriber: SubscriberId,
        /// Its address.
        address: Ipv4Addr,
        /// Blocks of that address in hold-down (free again later).
        held: u32,
    },
}

/// Why a single block was not released.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ReleaseError {
    /// The subscriber is not known.
    #[error(transparent)]
    Unknown(#[from] UnknownSubscriber),
    /// The port is not in any of the subscriber's blocks.
    #[error("port {port} is not in a block of subscriber {subscriber}")]
    NotOwned {
        /// The subscriber.
        subscriber: SubscriberId,
        /// The port asked for.
        port: u16,
    },
    /// The subscriber would fall below its initial block count.
    #[error("subscriber {subscriber} keeps its {initial} initial block(s)")]
    Initial {
        /// The subscriber.
        subscriber: SubscriberId,
        /// The initial block count.
        initial: u8,
    },
    /// The block carries port forwards.
    #[error("block {first}-{last} of subscriber {subscriber} carries {forwards} port forward(s)")]
    Forwarded {
        /// The subscriber.
        subscriber: SubscriberId,
        /// First port of the block.
        first: u16,
        /// Last port of the block.
        last: u16,
        /// Forwards in it.
        forwards: u32,
    },
}

/// Why a port forward was refused.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ForwardError {
    /// The subscriber is not known.
    #[error(transparent)]
    Unknown(#[from] UnknownSubscriber),
    /// The port is outside the subscriber's blocks.
    #[error(
        "public port {port} is outside the ports of subscriber {subscriber} on {address} ({})",
        BlockList(blocks)
    )]
    OutsideBlocks {
        /// The subscriber.
        subscriber: SubscriberId,
        /// The port asked for.
        port: u16,
        /// The subscriber's address.
        address: Ipv4Addr,
        /// Its blocks, ascending.
        blocks: Vec<PortBlock>,
    },
    /// Removing a forward that was never added.
    #[error("subscriber {subscriber} has no port forward on port {port}")]
    NotForwarded {
        /// The subscriber.
        subscriber: SubscriberId,
        /// The port.
        port: u16,
    },
}

/// Formats blocks as `1024-1535, 4608-5119`.
struct BlockList<'a>(&'a [PortBlock]);

impl fmt::Display for BlockList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, b) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{}-{}", b.first(), b.last())?;
        }
        Ok(())
    }
}

/// Why a snapshot cannot be restored.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum RestoreError {
    /// The block geometry changed since the snapshot: the blocks no longer line up.
    #[error(
        "the snapshot's {what} is {snapshot}, the configuration's {config}: persisted \
         blocks no longer line up; restore the old value or clear the NAT state"
    )]
    GeometryChanged {
        /// `nat.port_range` or `nat.block_size`.
        what: &'static str,
        /// The value in the snapshot.
        snapshot: String,
        /// The value configured.
        config: String,
    },
    /// A subscriber appears twice.
    #[error("subscriber {0} appears twice")]
    DuplicateSubscriber(SubscriberId),
    /// A subscriber's address is not in the pool.
    #[error("subscriber {subscriber}'s address {address} is not in nat.pool")]
    AddressNotInPool {
        /// The subscriber.
        subscriber: SubscriberId,
        /// Its persisted address.
        address: Ipv4Addr,
    },
    /// A subscriber has no block, or more than the fast path can hold.
    #[error(
        "subscriber {subscriber} has {len} blocks; 1 to {MAX_BLOCKS_PER_SUBSCRIBER} are possible"
    )]
    BlockCount {
        /// The subscriber.
        subscriber: SubscriberId,
        /// Blocks listed.
        len: usize,
    },
    /// A port is not the first port of a block.
    #[error("{address} port {port} (of {owner}) is not the first port of a block")]
    NotABlock {
        /// The address.
        address: Ipv4Addr,
        /// The port.
        port: u16,
        /// `subscriber N` or `a held block`.
        owner: String,
    },
    /// Two owners (or one owner twice, or an owner and a hold-down) claim one block.
    #[error("{address} ports {first}-{last} are claimed by both {a} and {b}")]
    Conflict {
        /// The address.
        address: Ipv4Addr,
        /// First port of the block.
        first: u16,
        /// Last port of the block.
        last: u16,
        /// The first claimant (`subscriber N` or `a held block`).
        a: String,
        /// The second claimant.
        b: String,
    },
}

impl BlockAllocator {
    /// An empty allocator over the configured pool.
    pub fn new(config: &NatConfig) -> Self {
        let addresses: Vec<Address> = config
            .pool()
            .addresses()
            .iter()
            .map(|&ip| Address {
                ip,
                subscribers: 0,
                fresh: 0,
                recycled: VecDeque::new(),
                held: 0,
                slots: Vec::new(),
            })
            .collect();
        let mut allocator = Self {
            port_range: config.port_range(),
            block_size: config.block_size(),
            blocks_per_address: config.blocks_per_address(),
            initial_blocks: config.initial_blocks(),
            max_blocks: config.max_blocks(),
            hold_down_secs: config.hold_down_secs(),
            addresses,
            by_load: BTreeSet::new(),
            subscribers: HashMap::new(),
            holds: BinaryHeap::new(),
            blocks_owned: 0,
        };
        allocator.by_load = (0..allocator.addresses.len())
            .map(|i| allocator.key(i as u32))
            .collect();
        allocator
    }

    /// Gives a new subscriber its initial blocks on the least-loaded address; one
    /// [`BlockAction::Alloc`] event per block.
    pub fn add_subscriber(
        &mut self,
        subscriber: SubscriberId,
        private_id: &str,
        now: UnixTime,
    ) -> Result<Vec<BlockEvent>, AddError> {
        let needed = self.initial_blocks;
        self.add_subscriber_with(subscriber, private_id, None, needed, now)
    }

    /// Gives a new subscriber `needed` blocks (clamped to 1 ..= the maximum) on `address`
    /// when given (a pinned address; it must be in the pool), else on the least-loaded
    /// address; one [`BlockAction::Alloc`] event per block.
    pub fn add_subscriber_with(
        &mut self,
        subscriber: SubscriberId,
        private_id: &str,
        address: Option<Ipv4Addr>,
        needed: u8,
        now: UnixTime,
    ) -> Result<Vec<BlockEvent>, AddError> {
        if let Some(s) = self.subscribers.get(&subscriber) {
            return Err(AddError::Exists {
                subscriber,
                address: self.addresses[s.address as usize].ip,
            });
        }
        self.expire_holds(now);
        let needed = needed.clamp(1, self.max_blocks.max(1));
        let (best, address) = match address {
            Some(ip) => match self.addresses.binary_search_by_key(&ip, |a| a.ip) {
                Ok(i) => (self.addresses[i].free(self.blocks_per_address), i as u32),
                Err(_) => {
                    return Err(AddError::NotInPool {
                        subscriber,
                        address: ip,
                    });
                }
            },
            None => match self.by_load.first() {
                Some(&(Reverse(free), _, index)) => (free, index),
                None => (0, 0),
            },
        };
        if best < u32::from(needed) || self.addresses.is_empty() {
            return Err(AddError::PoolExhausted {
                subscriber,
                needed,
                best,
            });
        }
        let mut blocks = Vec::with_capacity(usize::from(self.max_blocks));
        let mut events = Vec::with_capacity(usize::from(needed));
        self.update(address, |a, k| {
            a.subscribers += 1;
            for _ in 0..needed {
                if let Some(index) = a.take(subscriber, k) {
                    blocks.push(OwnedBlock { index, forwards: 0 });
                }
            }
        });
        for b in &blocks {
            events.push(self.event(
                BlockAction::Alloc,
                subscriber,
                private_id,
                address,
                b.index,
                now,
            ));
        }
        self.blocks_owned += blocks.len() as u64;
        self.subscribers
            .insert(subscriber, Subscriber { address, blocks });
        Ok(events)
    }

    /// Gives a subscriber one more block on its address (the fast path reported its
    /// blocks full), or says why not.
    pub fn grow(
        &mut self,
        subscriber: SubscriberId,
        private_id: &str,
        now: UnixTime,
    ) -> Result<BlockEvent, GrowError> {
        let s = self
            .subscribers
            .get(&subscriber)
            .ok_or(UnknownSubscriber(subscriber))?;
        if s.blocks.len() >= usize::from(self.max_blocks) {
            return Err(GrowError::MaxBlocks {
                subscriber,
                max: self.max_blocks,
            });
        }
        let address = s.address;
        self.expire_holds(now);
        let mut taken = None;
        self.update(address, |a, k| taken = a.take(subscriber, k));
        let a = &self.addresses[address as usize];
        let Some(index) = taken else {
            return Err(GrowError::AddressExhausted {
                subscriber,
                address: a.ip,
                held: a.held,
            });
        };
        if let Some(s) = self.subscribers.get_mut(&subscriber) {
            s.blocks.push(OwnedBlock { index, forwards: 0 });
        }
        self.blocks_owned += 1;
        Ok(self.event(
            BlockAction::Alloc,
            subscriber,
            private_id,
            address,
            index,
            now,
        ))
    }

    /// Undoes an [`Self::add_subscriber_with`] that its caller could not complete (a later
    /// check or the store failed): the blocks go straight back to free, without hold-down
    /// and without log records (no packet ever used them). Unknown subscribers: no-op.
    pub fn cancel_subscriber(&mut self, subscriber: SubscriberId) {
        let Some(s) = self.subscribers.remove(&subscriber) else {
            return;
        };
        self.blocks_owned = self.blocks_owned.saturating_sub(s.blocks.len() as u64);
        self.update(s.address, |a, _| {
            a.subscribers = a.subscribers.saturating_sub(1);
            for b in s.blocks.iter().rev() {
                if let Some(slot) = a.slots.get_mut(usize::from(b.index)) {
                    *slot = Slot::Free;
                    a.recycled.push_front(b.index);
                }
            }
        });
    }

    /// Releases all of a deleted subscriber's blocks into hold-down; one
    /// [`BlockAction::Release`] event per block.
    pub fn remove_subscriber(
        &mut self,
        subscriber: SubscriberId,
        private_id: &str,
        now: UnixTime,
    ) -> Result<Vec<BlockEvent>, UnknownSubscriber> {
        let s = self
            .subscribers
            .remove(&subscriber)
            .ok_or(UnknownSubscriber(subscriber))?;
        let mut events = Vec::with_capacity(s.blocks.len());
        for b in &s.blocks {
            self.hold(s.address, b.index, now);
            events.push(self.event(
                BlockAction::Release,
                subscriber,
                private_id,
                s.address,
                b.index,
                now,
            ));
        }
        self.update(s.address, |a, _| {
            a.subscribers = a.subscribers.saturating_sub(1)
        });
        self.blocks_owned = self.blocks_owned.saturating_sub(s.blocks.len() as u64);
        self.expire_holds(now);
        Ok(events)
    }

    /// Releases the block holding `port` into hold-down (the caller found it idle); refused
    /// below the initial block count and for blocks with port forwards.
    pub fn release_block(
        &mut self,
        subscriber: SubscriberId,
        port: u16,
        private_id: &str,
        now: UnixTime,
    ) -> Result<BlockEvent, ReleaseError> {
        let index = self.block_index(port);
        let initial = self.initial_blocks;
        let s = self
            .subscribers
            .get_mut(&subscriber)
            .ok_or(UnknownSubscriber(subscriber))?;
        let pos = index
            .and_then(|i| s.blocks.iter().position(|b| b.index == i))
            .ok_or(ReleaseError::NotOwned { subscriber, port })?;
        if s.blocks.len() <= usize::from(initial) {
            return Err(ReleaseError::Initial {
                subscriber,
                initial,
            });
        }
        let block = s.blocks[pos];
        if block.forwards > 0 {
            let b = self.port_block(block.index);
            return Err(ReleaseError::Forwarded {
                subscriber,
                first: b.first(),
                last: b.last(),
                forwards: block.forwards,
            });
        }
        s.blocks.remove(pos);
        let address = s.address;
        self.blocks_owned = self.blocks_owned.saturating_sub(1);
        self.hold(address, block.index, now);
        self.expire_holds(now);
        Ok(self.event(
            BlockAction::Release,
            subscriber,
            private_id,
            address,
            block.index,
            now,
        ))
    }

    /// Checks that `port` lies in one of the subscriber's blocks and pins that block (it is
    /// not released as idle while it carries forwards); returns the block.
    pub fn add_forward(
        &mut self,
        subscriber: SubscriberId,
        port: u16,
    ) -> Result<PortBlock, ForwardError> {
        let index = self.block_index(port);
        let pos = self.forward_position(subscriber, index, port)?;
        let block = self
            .subscribers
            .get_mut(&subscriber)
            .and_then(|s| s.blocks.get_mut(pos))
            .ok_or(UnknownSubscriber(subscriber))?;
        block.forwards = block.forwards.saturating_add(1);
        let index = block.index;
        Ok(self.port_block(index))
    }

    /// Removes a forward added with [`Self::add_forward`], unpinning the block when it was
    /// the last one.
    pub fn remove_forward(
        &mut self,
        subscriber: SubscriberId,
        port: u16,
    ) -> Result<(), ForwardError> {
        let index = self.block_index(port);
        let pos = self.forward_position(subscriber, index, port)?;
        let block = self
            .subscribers
            .get_mut(&subscriber)
            .and_then(|s| s.blocks.get_mut(pos))
            .ok_or(UnknownSubscriber(subscriber))?;
        if block.forwards == 0 {
            return Err(ForwardError::NotForwarded { subscriber, port });
        }
        block.forwards -= 1;
        Ok(())
    }

    /// Position of the block holding `port` in the subscriber's list.
    fn forward_position(
        &self,
        subscriber: SubscriberId,
        index: Option<u16>,
        port: u16,
    ) -> Result<usize, ForwardError> {
        let s = self
            .subscribers
            .get(&subscriber)
            .ok_or(UnknownSubscriber(subscriber))?;
        index
            .and_then(|i| s.blocks.iter().position(|b| b.index == i))
            .ok_or_else(|| {
                let mut blocks: Vec<PortBlock> =
                    s.blocks.iter().map(|b| self.port_block(b.index)).collect();
                blocks.sort_unstable();
                ForwardError::OutsideBlocks {
                    subscriber,
                    port,
                    address: self.addresses[s.address as usize].ip,
                    blocks,
                }
            })
    }

    /// Returns blocks whose hold-down has ended to the free pool; returns how many.
    /// Allocation calls this itself; call it on a timer to keep [`Self::stats`] current.
    pub fn expire_holds(&mut self, now: UnixTime) -> usize {
        let mut n = 0;
        while let Some(&Reverse((until, address, index))) = self.holds.peek() {
            if until > now {
                break;
            }
            self.holds.pop();
            self.update(address, |a, _| {
                if let Some(slot) = a.slots.get_mut(usize::from(index)) {
                    *slot = Slot::Free;
                    a.recycled.push_back(index);
                    a.held = a.held.saturating_sub(1);
                }
            });
            n += 1;
        }
        n
    }

    /// When the next hold-down ends, if any block is held.
    pub fn next_hold_expiry(&self) -> Option<UnixTime> {
        self.holds.peek().map(|&Reverse((until, _, _))| until)
    }

    /// The subscriber's address and blocks in the fast path's compact form.
    pub fn ports(&self, subscriber: SubscriberId) -> Option<SubscriberPorts> {
        let s = self.subscribers.get(&subscriber)?;
        let mut firsts = [0u16; MAX_BLOCKS_PER_SUBSCRIBER];
        let n = s.blocks.len().min(MAX_BLOCKS_PER_SUBSCRIBER);
        for (slot, b) in firsts.iter_mut().zip(&s.blocks) {
            *slot = self.port_block(b.index).first();
        }
        SubscriberPorts::new(
            self.addresses[s.address as usize].ip,
            self.block_size,
            &firsts[..n],
        )
        .ok()
    }

    /// The subscriber's persisted form.
    pub fn assignment(&self, subscriber: SubscriberId) -> Option<Assignment> {
        let s = self.subscribers.get(&subscriber)?;
        let mut blocks: Vec<u16> = s
            .blocks
            .iter()
            .map(|b| self.port_block(b.index).first())
            .collect();
        blocks.sort_unstable();
        Some(Assignment {
            subscriber,
            address: self.addresses[s.address as usize].ip,
            blocks,
        })
    }

    /// The subscribers with allocations, in no particular order.
    pub fn subscriber_ids(&self) -> impl Iterator<Item = SubscriberId> + '_ {
        self.subscribers.keys().copied()
    }

    /// Number of subscribers with allocations.
    pub fn len(&self) -> usize {
        self.subscribers.len()
    }

    /// True if no subscriber has an allocation.
    pub fn is_empty(&self) -> bool {
        self.subscribers.is_empty()
    }

    /// Blocks in hold-down, in no particular order.
    pub fn held_blocks(&self) -> impl Iterator<Item = HeldBlock> + '_ {
        self.holds
            .iter()
            .map(|&Reverse((until, address, index))| HeldBlock {
                address: self.addresses[address as usize].ip,
                first_port: self.port_block(index).first(),
                until,
            })
    }

    /// Everything needed to rebuild this state with [`Self::restore`].
    pub fn snapshot(&self) -> Snapshot {
        let mut ids: Vec<SubscriberId> = self.subscriber_ids().collect();
        ids.sort_unstable();
        let mut held: Vec<HeldBlock> = self.held_blocks().collect();
        held.sort_unstable_by_key(|h| (h.until, h.address, h.first_port));
        Snapshot {
            port_range: self.port_range,
            block_size: self.block_size,
            subscribers: ids
                .into_iter()
                .filter_map(|id| self.assignment(id))
                .collect(),
            held,
        }
    }

    /// Rebuilds the allocator from a snapshot, keeping every subscriber's address and
    /// blocks; hold-downs that ended by `now` are dropped, and so are held blocks of
    /// addresses no longer in the pool.
    ///
    /// A subscriber may hold more blocks than `max_blocks` now allows (the limit was
    /// lowered): it keeps them and cannot grow. Conflicts, addresses outside the pool and a
    /// changed block geometry are errors: fix the configuration or the state.
    pub fn restore(
        config: &NatConfig,
        snapshot: &Snapshot,
        now: UnixTime,
    ) -> Result<Self, RestoreError> {
        let mut this = Self::new(config);
        if snapshot.port_range != this.port_range {
            return Err(RestoreError::GeometryChanged {
                what: "nat.port_range",
                snapshot: snapshot.port_range.to_string(),
                config: this.port_range.to_string(),
            });
        }
        if snapshot.block_size != this.block_size {
            return Err(RestoreError::GeometryChanged {
                what: "nat.block_size",
                snapshot: snapshot.block_size.to_string(),
                config: this.block_size.to_string(),
            });
        }
        let pool = config.pool();
        for a in &snapshot.subscribers {
            let subscriber = a.subscriber;
            if this.subscribers.contains_key(&subscriber) {
                return Err(RestoreError::DuplicateSubscriber(subscriber));
            }
            let address = pool
                .index_of(a.address)
                .ok_or(RestoreError::AddressNotInPool {
                    subscriber,
                    address: a.address,
                })? as u32;
            if a.blocks.is_empty() || a.blocks.len() > MAX_BLOCKS_PER_SUBSCRIBER {
                return Err(RestoreError::BlockCount {
                    subscriber,
                    len: a.blocks.len(),
                });
            }
            let mut blocks = Vec::with_capacity(a.blocks.len().max(usize::from(this.max_blocks)));
            for &port in &a.blocks {
                let index = this.restore_slot(address, port, Slot::Owned(subscriber))?;
                blocks.push(OwnedBlock { index, forwards: 0 });
            }
            this.blocks_owned += blocks.len() as u64;
            this.addresses[address as usize].subscribers += 1;
            this.subscribers
                .insert(subscriber, Subscriber { address, blocks });
        }
        for h in &snapshot.held {
            if h.until <= now {
                continue;
            }
            let Some(address) = pool.index_of(h.address) else {
                continue;
            };
            let index = this.restore_slot(address as u32, h.first_port, Slot::Held)?;
            this.addresses[address].held += 1;
            this.holds.push(Reverse((h.until, address as u32, index)));
        }
        for a in &mut this.addresses {
            for (i, slot) in a.slots.iter().enumerate() {
                if *slot == Slot::Free {
                    // i < blocks_per_address <= 65535.
                    a.recycled.push_back(i as u16);
                }
            }
        }
        this.by_load = (0..this.addresses.len())
            .map(|i| this.key(i as u32))
            .collect();
        Ok(this)
    }

    /// Marks block `port` of `address` as `state` during a restore, refusing conflicts.
    fn restore_slot(&mut self, address: u32, port: u16, state: Slot) -> Result<u16, RestoreError> {
        let claimant = |s: Slot| match s {
            Slot::Owned(id) => format!("subscriber {id}"),
            _ => "a held block".to_owned(),
        };
        let ip = self.addresses[address as usize].ip;
        let index = self
            .block_index(port)
            .filter(|&i| self.port_block(i).first() == port)
            .ok_or_else(|| RestoreError::NotABlock {
                address: ip,
                port,
                owner: claimant(state),
            })?;
        let block = self.port_block(index);
        let a = &mut self.addresses[address as usize];
        let i = usize::from(index);
        if a.slots.len() <= i {
            a.slots.resize(i + 1, Slot::Free);
            a.fresh = a.slots.len() as u32;
        }
        match a.slots[i] {
            Slot::Free => {
                a.slots[i] = state;
                Ok(index)
            }
            existing => Err(RestoreError::Conflict {
                address: ip,
                first: block.first(),
                last: block.last(),
                a: claimant(existing),
                b: claimant(state),
            }),
        }
    }

    /// Pool-wide counts.
    pub fn stats(&self) -> PoolStats {
        let blocks_total = self.addresses.len() as u64 * u64::from(self.blocks_per_address);
        let blocks_held = self.holds.len() as u64;
        PoolStats {
            addresses: self.addresses.len() as u32,
            subscribers: self.subscribers.len() as u64,
            blocks_total,
            blocks_owned: self.blocks_owned,
            blocks_held,
            blocks_free: blocks_total.saturating_sub(self.blocks_owned + blocks_held),
        }
    }

    /// Usage of one public address, if it is in the pool.
    pub fn address_usage(&self, address: Ipv4Addr) -> Option<AddressUsage> {
        let i = self
            .addresses
            .binary_search_by_key(&address, |a| a.ip)
            .ok()?;
        let a = &self.addresses[i];
        let free = a.free(self.blocks_per_address);
        Some(AddressUsage {
            address,
            subscribers: a.subscribers,
            owned: self.blocks_per_address.saturating_sub(free + a.held),
            held: a.held,
            free,
        })
    }

    /// The block index holding `port`, if the port is in the range.
    fn block_index(&self, port: u16) -> Option<u16> {
        self.port_range
            .contains(port)
            .then(|| (port - self.port_range.first()) / self.block_size.max(1))
    }

    /// The ports of block `index`.
    fn port_block(&self, index: u16) -> PortBlock {
        // Indices come from `block_index` or `take`, both inside the range, so the block is
        // exact; `clamped` only keeps a broken invariant from becoming a panic.
        PortBlock::clamped(
            u32::from(self.port_range.first()) + u32::from(index) * u32::from(self.block_size),
            self.block_size,
        )
    }

    /// The load key of address `index`.
    fn key(&self, index: u32) -> LoadKey {
        let a = &self.addresses[index as usize];
        (
            Reverse(a.free(self.blocks_per_address)),
            a.subscribers,
            index,
        )
    }

    /// Applies `f` to address `index`, keeping `by_load` in step.
    fn update(&mut self, index: u32, f: impl FnOnce(&mut Address, u32)) {
        let old = self.key(index);
        self.by_load.remove(&old);
        let k = self.blocks_per_address;
        f(&mut self.addresses[index as usize], k);
        let new = self.key(index);
        self.by_load.insert(new);
    }

    /// Puts block `index` of `address` into hold-down from `now`.
    fn hold(&mut self, address: u32, index: u16, now: UnixTime) {
        let until = now.plus(u64::from(self.hold_down_secs));
        let a = &mut self.addresses[address as usize];
        if let Some(slot) = a.slots.get_mut(usize::from(index)) {
            *slot = Slot::Held;
            a.held += 1;
            self.holds.push(Reverse((until, address, index)));
        }
    }

    /// A log record for block `index` of `address`.
    fn event(
        &self,
        action: BlockAction,
        subscriber: SubscriberId,
        private_id: &str,
        address: u32,
        index: u16,
        now: UnixTime,
    ) -> BlockEvent {
        let b = self.port_block(index);
        BlockEvent {
            time: now,
            action,
            subscriber,
            private_id: private_id.to_owned(),
            address: self.addresses[address as usize].ip,
            first_port: b.first(),
            last_port: b.last(),
        }
    }
}

impl Address {
    /// Blocks free now.
    fn free(&self, blocks_per_address: u32) -> u32 {
        blocks_per_address.saturating_sub(self.fresh) + self.recycled.len() as u32
    }

    /// Hands a free block to `owner`: never-used blocks first, then the oldest release.
    fn take(&mut self, owner: SubscriberId, blocks_per_address: u32) -> Option<u16> {
        let index = if self.fresh < blocks_per_address {
            // fresh < blocks_per_address <= 65535.
            let index = self.fresh as u16;
            self.fresh += 1;
            self.slots.push(Slot::Free);
            index
        } else {
            self.recycled.pop_front()?
        };
        let slot = self.slots.get_mut(usize::from(index))?;
        *slot = Slot::Owned(owner);
        Some(index)
    }
}

#[cfg(test)]
mod cancel_tests {
    use super::*;

    #[test]
    fn a_cancelled_add_frees_its_blocks_at_once() {
        let wire: crate::nat::NatConfigWire = toml::from_str(
            "pool = [\"198.51.100.1/32\"]\nblock_size = 4032\ninitial_blocks_per_subscriber = 2\nmax_blocks_per_subscriber = 4\n",
        )
        .expect("wire");
        let config = NatConfig::try_from(wire).expect("valid");
        let mut a = BlockAllocator::new(&config);
        let before = a.stats();
        a.add_subscriber(SubscriberId(1), "x", UnixTime(10))
            .expect("add");
        a.cancel_subscriber(SubscriberId(1));
        assert_eq!(a.stats(), before);
        a.check_invariants();
        // The same blocks are handed out again, with no hold-down.
        let pinned = a
            .add_subscriber_with(
                SubscriberId(2),
                "y",
                Some(Ipv4Addr::new(198, 51, 100, 1)),
                3,
                UnixTime(11),
            )
            .expect("add again");
        assert_eq!(pinned.len(), 3);
        a.check_invariants();
        assert!(matches!(
            a.add_subscriber_with(
                SubscriberId(3),
                "z",
                Some(Ipv4Addr::new(192, 0, 2, 1)),
                1,
                UnixTime(12)
            ),
            Err(AddError::NotInPool { .. })
        ));
    }
}

#[cfg(test)]
impl BlockAllocator {
    /// Checks every internal invariant; panics with a description on the first broken one.
    pub(super) fn check_invariants(&self) {
        let k = self.blocks_per_address;
        assert_eq!(
            self.by_load.len(),
            self.addresses.len(),
            "one load key per address"
        );
        let mut owned_total = 0u64;
        let mut held_total = 0usize;
        let mut subs_per_address = vec![0u32; self.addresses.len()];
        for s in self.subscribers.values() {
            subs_per_address[s.address as usize] += 1;
        }
        for (i, a) in self.addresses.iter().enumerate() {
            assert!(a.fresh <= k, "{}: fresh {} > {k}", a.ip, a.fresh);
            assert_eq!(
                a.slots.len(),
                a.fresh as usize,
                "{}: slots cover 0..fresh",
                a.ip
            );
            let free = a.slots.iter().filter(|s| **s == Slot::Free).count();
            let held = a.slots.iter().filter(|s| **s == Slot::Held).count();
            owned_total += a
                .slots
                .iter()
                .filter(|s| matches!(s, Slot::Owned(_)))
                .count() as u64;
            held_total += held;
            assert_eq!(
                free,
                a.recycled.len(),
                "{}: free slots == recycled queue",
                a.ip
            );
            let mut seen = std::collections::HashSet::new();
            for &r in &a.recycled {
                assert!(seen.insert(r), "{}: block {r} queued twice", a.ip);
                assert_eq!(
                    a.slots[usize::from(r)],
                    Slot::Free,
                    "{}: queued block not free",
                    a.ip
                );
            }
            assert_eq!(a.held as usize, held, "{}: held counter", a.ip);
            assert_eq!(
                a.subscribers, subs_per_address[i],
                "{}: subscriber counter",
                a.ip
            );
            assert!(
                self.by_load.contains(&self.key(i as u32)),
                "{}: stale load key",
                a.ip
            );
        }
        assert_eq!(held_total, self.holds.len(), "hold heap size");
        for &Reverse((_, a, b)) in self.holds.iter() {
            assert_eq!(self.addresses[a as usize].slots[usize::from(b)], Slot::Held);
        }
        let mut listed = 0u64;
        for (&id, s) in &self.subscribers {
            let a = &self.addresses[s.address as usize];
            assert!(!s.blocks.is_empty() && s.blocks.len() <= MAX_BLOCKS_PER_SUBSCRIBER);
            let mut seen = std::collections::HashSet::new();
            for b in &s.blocks {
                assert!(
                    seen.insert(b.index),
                    "subscriber {id} lists block {} twice",
                    b.index
                );
                assert_eq!(
                    a.slots.get(usize::from(b.index)),
                    Some(&Slot::Owned(id)),
                    "subscriber {id}'s block {} on its own address {}",
                    b.index,
                    a.ip
                );
            }
            listed += s.blocks.len() as u64;
        }
        // Every owned slot names one subscriber, every listed block is such a slot, and the
        // counts agree: ownership is a bijection, so no block has two owners.
        assert_eq!(
            owned_total, listed,
            "owned slots == blocks listed by subscribers"
        );
        assert_eq!(owned_total, self.blocks_owned, "owned counter");
        let st = self.stats();
        assert_eq!(
            st.blocks_owned + st.blocks_held + st.blocks_free,
            st.blocks_total
        );
    }
}

#[cfg(test)]
mod tests;
