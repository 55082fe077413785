//! The slow path: frames the XDP program hands over (ARP, DHCP, ICMP to the gateway, IPv6)
//! with the subscriber they came from.
//!
//! Mechanism: a BPF ring buffer (`NERG_PUNT`) carrying `PuntRecord`s (the whole frame as
//! received, with the subscriber id); [`responder`] decapsulates them with the `lsl` crate
//! and answers (ARP, ICMP, DHCP through the engine), and the replies leave through a
//! [`packet_socket`] on the access interface, wrapped in the home's LSL encapsulation.
//!
//! ```text
//!  XDP --ring (4 MiB)--> run(): drains it --> Queue --> the responder's thread: batches of
//!                        (tokio task)                   up to MAX_BATCH, one store commit each
//! ```
//!
//! The ring is drained into a [`Queue`] by a task that never waits for the disk, and the
//! responder takes from the queue on its own thread: while a store commit waits for its
//! fsync, frames go on arriving into the queue (not into the ring, which holds about 2,000
//! frames and would overflow during a slow fsync), and the next batch takes all of them
//! into one commit.

pub mod packet_socket;
pub use vg_engines::reply;
pub mod responder;
#[cfg(test)]
mod responder_tests;
pub mod v6;

use std::collections::VecDeque;
use std::os::fd::AsRawFd;
use std::sync::{Condvar, Mutex, PoisonError};

use aya::maps::{MapData, RingBuf};
use nerg_abi::{PuntHeader, PuntReason};
use tokio::io::{Interest, unix::AsyncFd};
use tokio_util::sync::CancellationToken;

/// A frame from the punt ring, parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Punted {
    /// The header the XDP program wrote.
    pub header: PuntHeader,
    /// Why it was punted (`None` for an index this build does not know).
    pub reason: Option<PuntReason>,
    /// The frame's bytes (possibly cut at `PUNT_MAX_FRAME`).
    pub frame: Vec<u8>,
}

/// Parses one ring-buffer record; `None` when it is malformed (counted by the caller).
pub fn parse_record(item: &[u8]) -> Option<Punted> {
    let hdr_len = size_of::<PuntHeader>();
    let head = item.get(..hdr_len)?;
    let u32_at = |o: usize| {
        head.get(o..o + 4)
            .map(|b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
    };
    let u16_at = |o: usize| head.get(o..o + 2).map(|b| u16::from_ne_bytes([b[0], b[1]]));
    let header = PuntHeader {
        sub: u32_at(0)?,
        ifindex: u32_at(4)?,
        reason: u16_at(8)?,
        len: u16_at(10)?,
        wire_len: u16_at(12)?,
        mtu: u16_at(14)?,
    };
    let frame = item
        .get(hdr_len..hdr_len + usize::from(header.len))?
        .to_vec();
    let reason = PuntReason::ALL.get(usize::from(header.reason)).copied();
    Some(Punted {
        header,
        reason,
        frame,
    })
}

/// Reads the punt ring until `shutdown`, handing the records to `handle` in batches of at
/// most [`responder::MAX_BATCH`] (`None` for a malformed record): all that the ring holds
/// when it becomes readable. vgd's `handle` only queues them ([`Queue`]), so that reading
/// never waits for the responder's store commits.
#[expect(
    unsafe_code,
    reason = "tokio's AsyncFd registration is unsafe since tokio#8587"
)]
pub async fn run(
    ring: RingBuf<MapData>,
    shutdown: CancellationToken,
    mut handle: impl FnMut(Vec<Option<Punted>>),
) -> std::io::Result<()> {
    // SAFETY: the ring buffer owns its map fd (an OwnedFd inside MapData) for as long as
    // the AsyncFd owns the ring, and `as_raw_fd` always returns that same fd.
    let mut fd = unsafe { AsyncFd::register_with_interest(RingFd(ring), Interest::READABLE) }?;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            guard = fd.readable_mut() => {
                let mut guard = guard?;
                let ring = &mut guard.get_inner_mut().0;
                loop {
                    let batch = drain(ring, responder::MAX_BATCH);
                    if batch.is_empty() {
                        break;
                    }
                    handle(batch);
                }
                guard.clear_ready();
            }
        }
    }
}

/// Takes up to `max` records from the ring, parsed.
fn drain(ring: &mut RingBuf<MapData>, max: usize) -> Vec<Option<Punted>> {
    let mut batch = Vec::new();
    while batch.len() < max {
        let Some(item) = ring.next() else { break };
        batch.push(parse_record(&item));
    }
    batch
}

/// Punted frames waiting for the responder: filled by [`run`]'s task, emptied by the
/// responder's thread in batches. Bounded: beyond `limit` frames, new ones are refused and
/// counted (the clients retransmit).
#[derive(Debug)]
pub struct Queue {
    state: Mutex<QueueState>,
    ready: Condvar,
    limit: usize,
}

#[derive(Debug, Default)]
struct QueueState {
    frames: VecDeque<Option<Punted>>,
    closed: bool,
}

impl Queue {
    /// An empty queue holding at most `limit` frames.
    pub fn new(limit: usize) -> Queue {
        Queue {
            state: Mutex::new(QueueState::default()),
            ready: Condvar::new(),
            limit,
        }
    }

    /// Appends `frames` in order; returns how many did not fit (the last ones).
    pub fn push(&self, frames: Vec<Option<Punted>>) -> usize {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let room = self.limit.saturating_sub(state.frames.len());
        let refused = frames.len().saturating_sub(room);
        state.frames.extend(frames.into_iter().take(room));
        drop(state);
        self.ready.notify_one();
        refused
    }

    /// Waits for frames and takes up to `max` of them, oldest first; `None` once the queue
    /// is closed and empty.
    pub fn pop_batch(&self, max: usize) -> Option<Vec<Option<Punted>>> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if !state.frames.is_empty() {
                let n = state.frames.len().min(max.max(1));
                return Some(state.frames.drain(..n).collect());
            }
            if state.closed {
                return None;
            }
            state = self
                .ready
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Frames waiting.
    pub fn len(&self) -> usize {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .frames
            .len()
    }

    /// True if no frame waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// No more frames will come: [`pop_batch`](Queue::pop_batch) returns what is left, then
    /// `None`.
    pub fn close(&self) {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .closed = true;
        self.ready.notify_all();
    }
}

/// The responder's clock: `CLOCK_MONOTONIC` in milliseconds, the clock of the punt limiter,
/// the RA schedules and neighbour resolution (the batches and the timers share it).
pub fn monotonic_ms() -> u64 {
    crate::fastpath::expiry::monotonic_ns() / 1_000_000
}

/// The ring buffer as something tokio can poll (its fd becomes readable on new records).
struct RingFd(RingBuf<MapData>);

impl AsRawFd for RingFd {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.0.as_raw_fd()
    }
}

/// The slow path's thread: takes the queued frames in batches and answers them through
/// `responder`, one lease-store commit per batch, counting what it did in `metrics`, until
/// the queue is closed and empty.
pub fn answer_queued<S, L, H>(
    queue: &Queue,
    responder: &Mutex<responder::Responder<S, L, H>>,
    metrics: &crate::metrics::Metrics,
) where
    S: responder::FrameSink,
    L: responder::Stores,
    H: responder::HostTable + v6::NeighbourTable,
{
    use responder::Outcome;
    while let Some(records) = queue.pop_batch(responder::MAX_BATCH) {
        let mut frames = Vec::with_capacity(records.len());
        for record in records {
            let reason = record
                .as_ref()
                .and_then(|p| p.reason)
                .map_or("malformed", |r| r.label());
            metrics.punts.with_label_values(&[reason]).inc();
            frames.extend(record);
        }
        if frames.is_empty() {
            continue;
        }
        let now_ms = monotonic_ms();
        let now = crate::dhcp::UnixTime(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        );
        let (batch, counts) = {
            let mut responder = responder.lock().unwrap_or_else(PoisonError::into_inner);
            let batch = responder.handle_batch(&frames, now_ms, now);
            (batch, responder.take_v6_counts())
        };
        metrics.count_v6(&counts);
        for outcome in batch.outcomes {
            let (outcome, detail) = match outcome {
                Outcome::Replied(kind) => ("replied", kind),
                Outcome::Dhcp { request, reply } => {
                    metrics
                        .dhcp_messages
                        .with_label_values(&[request, reply])
                        .inc();
                    ("dhcp", reply)
                }
                Outcome::Dhcp6 { request, reply } => {
                    metrics
                        .dhcp6_messages
                        .with_label_values(&[request, reply])
                        .inc();
                    ("dhcpv6", reply)
                }
                Outcome::Ipv6(what) => ("ipv6", what),
                Outcome::Ignored(why) => ("ignored", why),
                Outcome::SendFailed => ("send_failed", ""),
            };
            metrics.slowpath.with_label_values(&[outcome, detail]).inc();
        }
        metrics.count_commit(batch.commit);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(n: u8) -> Option<Punted> {
        Some(Punted {
            header: PuntHeader {
                sub: u32::from(n),
                ifindex: 1,
                reason: 0,
                len: 1,
                wire_len: 1,
                mtu: 0,
            },
            reason: None,
            frame: vec![n],
        })
    }

    #[test]
    fn the_queue_keeps_order_bounds_itself_and_drains_after_close() {
        let q = Queue::new(5);
        assert_eq!(q.push((0..3).map(frame).collect()), 0);
        assert_eq!(
            q.push(vec![frame(3), None, frame(5), frame(6)]),
            2,
            "two over the limit"
        );
        assert_eq!(q.len(), 5);
        let first = q.pop_batch(2).expect("frames");
        assert_eq!(first, vec![frame(0), frame(1)]);
        let rest = q.pop_batch(100).expect("frames");
        assert_eq!(rest, vec![frame(2), frame(3), None]);
        assert!(q.is_empty());
        // A consumer waiting on another thread gets what comes, then the end.
        let q = std::sync::Arc::new(q);
        let consumer = {
            let q = std::sync::Arc::clone(&q);
            std::thread::spawn(move || {
                let mut got = Vec::new();
                while let Some(batch) = q.pop_batch(3) {
                    got.extend(batch);
                }
                got
            })
        };
        assert_eq!(q.push((10..14).map(frame).collect()), 0);
        q.close();
        assert_eq!(
            consumer.join().expect("consumer"),
            (10..14).map(frame).collect::<Vec<_>>()
        );
        assert_eq!(q.pop_batch(1), None);
    }

    #[test]
    fn records_parse_and_bad_ones_are_rejected() {
        let mut rec = Vec::new();
        rec.extend_from_slice(&7u32.to_ne_bytes());
        rec.extend_from_slice(&3u32.to_ne_bytes());
        rec.extend_from_slice(&(PuntReason::Dhcp.index() as u16).to_ne_bytes());
        rec.extend_from_slice(&4u16.to_ne_bytes());
        rec.extend_from_slice(&60u16.to_ne_bytes());
        rec.extend_from_slice(&0u16.to_ne_bytes());
        rec.extend_from_slice(&[1, 2, 3, 4, 0, 0]);
        let p = parse_record(&rec).unwrap();
        assert_eq!(p.header.sub, 7);
        assert_eq!(p.reason, Some(PuntReason::Dhcp));
        assert_eq!(p.frame, vec![1, 2, 3, 4]);
        assert_eq!(parse_record(&rec[..10]), None);
        let mut long = rec.clone();
        long[10..12].copy_from_slice(&100u16.to_ne_bytes());
        assert_eq!(parse_record(&long), None, "length beyond the record");
        let mut odd = rec;
        odd[8..10].copy_from_slice(&999u16.to_ne_bytes());
        assert_eq!(parse_record(&odd).unwrap().reason, None);
    }
}
