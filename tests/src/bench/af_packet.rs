//! The forwarding benchmark's second traffic generator: an AF_PACKET socket on the
//! generator's veth, for kernels that refuse live frames (`BPF_F_TEST_XDP_LIVE_FRAMES`).
//!
//! It transmits the frames `bench_gen` would: frame `n` is the template with each varied
//! field ([`GenField`]) set to `base + (n / stride) % count`, big-endian, in `width` bytes at
//! `offset` ([`vary`]); `n` counts on across runs, as `bench_gen`'s per-CPU counter does.
//!
//! Each `sendmmsg` call hands the kernel [`BATCH`] frames, from buffers that keep the
//! template between calls (only the varied fields are written again). `PACKET_QDISC_BYPASS`
//! hands each frame straight to the veth (no qdisc), and a large send buffer keeps the
//! socket from waiting for frames the forwarder has not taken yet. When the forwarder's ring
//! is full, the veth drops the frame and the call reports it (`ENOBUFS`, which ends the
//! batch there): the frame counts as offered, and is lost, as `bench_gen`'s refused `XDP_TX`
//! frames are.
//!
//! Why `sendmmsg` and not a TPACKET_V2 TX ring: measured on the rig this was written for
//! (Xeon, 2 CPUs, kernel 6.18, builds running beside), with 300,000 frames a run. The ring
//! hands the kernel more frames per CPU-second of the generator thread
//! (`CLOCK_THREAD_CPUTIME_ID`, 12 runs each): about 1.7 M/s with 64-byte frames and
//! 1.45 M/s with 1,522-byte ones, against 1.4 M/s and 1.1 M/s for `sendmmsg` in batches of
//! 64. Per wall-clock second both offered about the same (0.7 to 1.1 M frames/s). But the
//! forwarders forwarded far less of the ring's frames (three interleaved runs of every
//! case: the vG 125-272 k/s against 330-428 k/s, the no-op redirect 127-249 k/s against
//! 300-421 k/s). Most likely because a ring frame reaches the veth as a socket buffer whose
//! data stays in the ring's pages, and releasing it (page references, the slot's status
//! written back for the generator) falls on the forwarder's CPU. The benchmark measures the forwarders, so the
//! generator that costs them least wins.
//!
//! Frames reach the forwarder's veth as socket buffers, not XDP frames: veth copies each
//! into a page with XDP headroom before the forwarder's XDP program sees it, on the
//! forwarder's CPU. That copy is part of every forwarder's figure with this generator.
#![expect(
    unsafe_code,
    reason = "AF_PACKET's sockaddr_ll, its socket options and sendmmsg's headers have no safe wrapper in nix or std"
)]

use std::{
    io,
    os::fd::{AsFd as _, AsRawFd as _, BorrowedFd, OwnedFd},
};

use nerg_abi::bench::GenField;
// nix re-exports the libc it is built on: the raw AF_PACKET interface comes from there.
use nix::libc;
use nix::sys::socket::{AddressFamily, SockFlag, SockType, setsockopt, socket, sockopt};

/// The furthest a varied field may start (`bench_gen`'s `MAX_FIELD_OFFSET`).
const MAX_FIELD_OFFSET: usize = 256;
/// Frames per `sendmmsg` call (as many as a live-frames batch).
const BATCH: usize = 64;
/// The send buffer: far more than the frames in flight (the forwarder's ring holds 256), so
/// the socket never waits for the forwarder.
const SNDBUF: usize = 16 << 20;

/// Writes field `f` of frame number `n` into `frame`, exactly as `bench_gen` does: nothing
/// for a field with no values, an offset past [`MAX_FIELD_OFFSET`], a field whose 4-byte
/// window does not fit in the frame, or a width outside 1..=4.
pub fn vary(frame: &mut [u8], f: &GenField, n: u64) {
    let offset = usize::from(f.offset);
    let width = usize::from(f.width);
    if f.count == 0
        || offset > MAX_FIELD_OFFSET
        || offset + 4 > frame.len()
        || !(1..=4).contains(&width)
    {
        return;
    }
    let stride = u64::from(f.stride.max(1));
    let value = (u64::from(f.base) + (n / stride) % u64::from(f.count)) as u32;
    frame[offset..offset + width].copy_from_slice(&value.to_be_bytes()[4 - width..]);
}

/// An AF_PACKET socket that transmits generated frames out of one interface.
pub struct PacketGen {
    fd: OwnedFd,
    /// The next frame number.
    next: u64,
    /// The template of the last run.
    template: Vec<u8>,
    /// One frame per message of a batch, each holding `template` (varied fields aside).
    bufs: Vec<Vec<u8>>,
}

impl PacketGen {
    /// Opens a socket on interface `ifindex` of the calling thread's network namespace.
    pub fn open(ifindex: u32) -> io::Result<Self> {
        // Protocol 0: the socket receives nothing; it only transmits.
        let fd = socket(
            AddressFamily::Packet,
            SockType::Raw,
            SockFlag::SOCK_CLOEXEC,
            None,
        )?;
        // SAFETY: sockaddr_ll is plain data; all-zero is a valid value.
        let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        addr.sll_family = libc::AF_PACKET as u16;
        addr.sll_ifindex = ifindex as i32;
        // SAFETY: `addr` is a valid sockaddr_ll and the length passed matches it.
        let rc = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&raw const addr).cast(),
                size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        set_packet_opt(fd.as_fd(), libc::PACKET_QDISC_BYPASS, &1i32)?;
        setsockopt(&fd, sockopt::SndBufForce, &SNDBUF)?;
        Ok(Self {
            fd,
            next: 0,
            template: Vec::new(),
            bufs: Vec::new(),
        })
    }

    /// Transmits the next `frames` frames of the sequence `template` and `fields` describe
    /// (the veth drops those it refuses: its ring is full).
    pub fn send(&mut self, template: &[u8], fields: &[GenField], frames: u32) -> io::Result<()> {
        if template != self.template {
            self.template = template.to_vec();
            self.bufs = vec![self.template.clone(); BATCH];
        }
        let end = self.next + u64::from(frames);
        while self.next < end {
            let k = (end - self.next).min(BATCH as u64) as usize;
            for (i, buf) in self.bufs[..k].iter_mut().enumerate() {
                for f in fields {
                    vary(buf, f, self.next + i as u64);
                }
            }
            self.next += sendmmsg(self.fd.as_fd(), &mut self.bufs[..k])? as u64;
        }
        Ok(())
    }
}

/// Sends `bufs` in one `sendmmsg` call; returns how many it offered: the call ends after
/// the first frame the veth refuses (dropped, not retried).
fn sendmmsg(fd: BorrowedFd<'_>, bufs: &mut [Vec<u8>]) -> io::Result<usize> {
    let mut iov: Vec<libc::iovec> = bufs
        .iter_mut()
        .map(|b| libc::iovec {
            iov_base: b.as_mut_ptr().cast(),
            iov_len: b.len(),
        })
        .collect();
    let mut msgs: Vec<libc::mmsghdr> = iov
        .iter_mut()
        .map(|iov| {
            // SAFETY: mmsghdr is plain data; all-zero is valid (no address: the socket is
            // bound), the one iovec is set below.
            let mut m: libc::mmsghdr = unsafe { std::mem::zeroed() };
            m.msg_hdr.msg_iov = iov;
            m.msg_hdr.msg_iovlen = 1;
            m
        })
        .collect();
    // SAFETY: `msgs` holds `msgs.len()` headers, each describing one live buffer of `bufs`;
    // all outlive the call.
    let n = unsafe { libc::sendmmsg(fd.as_raw_fd(), msgs.as_mut_ptr(), msgs.len() as u32, 0) };
    if n < 0 {
        let err = io::Error::last_os_error();
        return match err.raw_os_error() {
            // The first frame was refused.
            Some(libc::ENOBUFS) => Ok(1),
            _ => Err(err),
        };
    }
    // Fewer sent than asked: the next frame failed, and sendmmsg does not say why. A full
    // ring is the one cause this rig meets; a frame that fails for another reason fails
    // again as the first of the next call, which reports the error.
    Ok((n as usize + 1).min(msgs.len()))
}

/// `setsockopt(SOL_PACKET, name, value)`.
fn set_packet_opt<T>(fd: BorrowedFd<'_>, name: libc::c_int, value: &T) -> io::Result<()> {
    // SAFETY: `value` points to a live `T` of the size passed, for the duration of the call.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_PACKET,
            name,
            (value as *const T).cast(),
            size_of::<T>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vary_writes_what_bench_gen_writes() {
        let mut frame = vec![0u8; 64];
        // The home: a 12-bit VID in two bytes, 3 homes; the flow: every 3 frames, 2 flows.
        let home = GenField {
            offset: 14,
            width: 2,
            _pad: 0,
            base: 100,
            count: 3,
            stride: 1,
        };
        let flow = GenField {
            offset: 34,
            width: 2,
            _pad: 0,
            base: 10_000,
            count: 2,
            stride: 3,
        };
        let mut seen = Vec::new();
        for n in 0..7 {
            vary(&mut frame, &home, n);
            vary(&mut frame, &flow, n);
            seen.push((
                u16::from_be_bytes([frame[14], frame[15]]),
                u16::from_be_bytes([frame[34], frame[35]]),
            ));
        }
        assert_eq!(
            seen,
            [
                (100, 10_000),
                (101, 10_000),
                (102, 10_000),
                (100, 10_001),
                (101, 10_001),
                (102, 10_001),
                (100, 10_000),
            ]
        );
        // A 3-byte VNI: big-endian, the value's low three bytes; stride 0 is taken as 1.
        let vni = GenField {
            offset: 46,
            width: 3,
            _pad: 0,
            base: 0x01_0203,
            count: 2,
            stride: 0,
        };
        vary(&mut frame, &vni, 5);
        assert_eq!(frame[46..49], [1, 2, 4]);
        // Not varied: no values, a 4-byte window past the frame's end (bench_gen checks 4
        // bytes whatever the width), or no width.
        let before = frame.clone();
        vary(&mut frame, &GenField { count: 0, ..vni }, 0);
        vary(&mut frame, &GenField { offset: 61, ..vni }, 0);
        vary(&mut frame, &GenField { width: 0, ..vni }, 0);
        assert_eq!(frame, before);
    }
}
