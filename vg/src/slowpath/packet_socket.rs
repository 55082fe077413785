//! Raw Ethernet frames in and out of an interface (AF_PACKET): how the slow path sends its
//! replies (already wrapped in the home's LSL encapsulation: in-line tags, or VXLAN), and how
//! tests send frames the kernel would not build (tags without 802.1Q devices, malformed
//! frames).
//!
//! The socket belongs to the network namespace of the thread that creates it.
#![expect(
    unsafe_code,
    reason = "AF_PACKET sockaddr_ll has no safe wrapper in nix or std"
)]

use std::{
    ffi::CString,
    io,
    os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd},
    time::Duration,
};

/// An AF_PACKET socket bound to one interface, seeing every ethertype.
pub struct PacketSocket {
    fd: OwnedFd,
}

impl PacketSocket {
    /// Opens a raw socket on `iface` (in the calling thread's network namespace).
    pub fn bind(iface: &str) -> io::Result<Self> {
        Self::bind_proto(iface, (libc::ETH_P_ALL as u16).to_be())
    }

    /// Opens a raw socket on `iface` that only sends: protocol 0 receives nothing, so the
    /// interface's traffic is not copied into a queue nobody reads (vgd's socket on the
    /// core interface, for ICMPv6 errors sent there).
    pub fn bind_send_only(iface: &str) -> io::Result<Self> {
        Self::bind_proto(iface, 0)
    }

    fn bind_proto(iface: &str, proto: u16) -> io::Result<Self> {
        let name = CString::new(iface).map_err(|_| io::ErrorKind::InvalidInput)?;
        // SAFETY: `name` is a valid NUL-terminated string for the duration of the call.
        let ifindex = unsafe { libc::if_nametoindex(name.as_ptr()) };
        if ifindex == 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: plain socket(2) call; the result is checked before use.
        let raw = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, i32::from(proto)) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a fresh descriptor this function owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: sockaddr_ll is plain old data; all-zero is a valid value.
        let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        addr.sll_family = libc::AF_PACKET as u16;
        addr.sll_protocol = proto;
        addr.sll_ifindex = ifindex as i32;
        // SAFETY: `addr` is a valid sockaddr_ll and the length passed matches it.
        let rc = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&raw const addr).cast(),
                size_of::<libc::sockaddr_ll>() as u32,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Self { fd })
    }

    /// Sends one complete Ethernet frame (headers included) out of the interface.
    pub fn send(&self, frame: &[u8]) -> io::Result<()> {
        // SAFETY: the pointer and length describe `frame`, which outlives the call.
        let n = unsafe { libc::send(self.fd.as_raw_fd(), frame.as_ptr().cast(), frame.len(), 0) };
        match n {
            n if n < 0 => Err(io::Error::last_os_error()),
            n if n as usize != frame.len() => Err(io::Error::other("short send")),
            _ => Ok(()),
        }
    }

    /// Receives one frame, or `None` when nothing arrives within `timeout`.
    ///
    /// The kernel moves a received frame's outer VLAN tag into metadata before packet
    /// sockets see it (whatever the sender put in-line); it is put back in-line here from
    /// the `PACKET_AUXDATA` control message, so callers see the frame as it was on the wire.
    pub fn recv(&self, timeout: Duration) -> io::Result<Option<Vec<u8>>> {
        let tv = libc::timeval {
            tv_sec: timeout.as_secs() as libc::time_t,
            tv_usec: libc::suseconds_t::from(timeout.subsec_micros()),
        };
        let on: libc::c_int = 1;
        for (level, name, value, len) in [
            (
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&raw const tv).cast::<libc::c_void>(),
                size_of::<libc::timeval>(),
            ),
            (
                libc::SOL_PACKET,
                PACKET_AUXDATA,
                (&raw const on).cast::<libc::c_void>(),
                size_of::<libc::c_int>(),
            ),
        ] {
            // SAFETY: `value` points to a live value of `len` bytes for the call.
            let rc =
                unsafe { libc::setsockopt(self.fd.as_raw_fd(), level, name, value, len as u32) };
            if rc < 0 {
                return Err(io::Error::last_os_error());
            }
        }
        let mut buf = vec![0u8; 65536];
        let mut control = [0u64; 16];
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        // SAFETY: msghdr is plain data; all-zero is valid, the pointers are set below.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = &raw mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = size_of_val(&control);
        // SAFETY: `msg` describes `buf` and `control`, both alive for the call.
        let n = unsafe { libc::recvmsg(self.fd.as_raw_fd(), &raw mut msg, 0) };
        if n < 0 {
            let err = io::Error::last_os_error();
            return match err.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => Ok(None),
                _ => Err(err),
            };
        }
        buf.truncate(n as usize);
        // SAFETY: the CMSG_* macros walk the control buffer the kernel just filled, within
        // `msg_controllen`; the aux data is read unaligned.
        unsafe {
            let mut cmsg = libc::CMSG_FIRSTHDR(&raw const msg);
            while !cmsg.is_null() {
                if (*cmsg).cmsg_level == libc::SOL_PACKET && (*cmsg).cmsg_type == PACKET_AUXDATA {
                    let aux = std::ptr::read_unaligned(
                        libc::CMSG_DATA(cmsg).cast::<libc::tpacket_auxdata>(),
                    );
                    if aux.tp_status & libc::TP_STATUS_VLAN_VALID != 0 && buf.len() >= 12 {
                        let tpid = if aux.tp_status & libc::TP_STATUS_VLAN_TPID_VALID != 0 {
                            aux.tp_vlan_tpid
                        } else {
                            0x8100
                        };
                        let mut tag = [0u8; 4];
                        tag[..2].copy_from_slice(&tpid.to_be_bytes());
                        tag[2..].copy_from_slice(&aux.tp_vlan_tci.to_be_bytes());
                        buf.splice(12..12, tag);
                    }
                }
                cmsg = libc::CMSG_NXTHDR(&raw const msg, cmsg);
            }
        }
        Ok(Some(buf))
    }
}

/// `PACKET_AUXDATA` from `<linux/if_packet.h>`.
const PACKET_AUXDATA: libc::c_int = 8;
