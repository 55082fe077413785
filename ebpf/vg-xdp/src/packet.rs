//! Bounds-checked access to packet bytes: the one place the program dereferences packet
//! pointers. Every read checks `data + offset + size <= data_end` right before it, which is
//! the shape the verifier needs to accept the access. Multi-byte fields are kept as byte
//! arrays in network order; accessors convert.

use core::mem::size_of;

use aya_ebpf::programs::XdpContext;
use nerg_abi::DropReason;

use crate::Verdict;

/// A header that can be read from the packet: plain bytes, alignment 1.
pub(crate) trait Header: Copy {}

#[inline(always)]
fn be16(b: [u8; 2]) -> u16 {
    u16::from_be_bytes(b)
}

/// Ethernet II header.
#[derive(Clone, Copy)]
#[repr(C)]
pub(crate) struct EthHdr {
    pub(crate) dst: [u8; 6],
    pub(crate) src: [u8; 6],
    ethertype: [u8; 2],
}
impl Header for EthHdr {}

impl EthHdr {
    /// The ethertype (or the TPID of the first tag), host byte order.
    #[inline(always)]
    pub(crate) fn ethertype(&self) -> u16 {
        be16(self.ethertype)
    }
}

/// The 4 bytes that follow a VLAN TPID: tag control information, then the next ethertype.
#[derive(Clone, Copy)]
#[repr(C)]
pub(crate) struct VlanHdr {
    /// PCP (3 bits), DEI (1 bit), VID (12 bits).
    tci: [u8; 2],
    ethertype: [u8; 2],
}
impl Header for VlanHdr {}

impl VlanHdr {
    /// The VLAN identifier (low 12 bits of the TCI).
    #[inline(always)]
    pub(crate) fn vid(&self) -> u16 {
        be16(self.tci) & 0x0fff
    }

    /// The ethertype after this tag, host byte order.
    #[inline(always)]
    pub(crate) fn ethertype(&self) -> u16 {
        be16(self.ethertype)
    }
}

/// IPv4 header without options (RFC 791).
#[derive(Clone, Copy)]
#[repr(C)]
pub(crate) struct Ipv4Hdr {
    version_ihl: u8,
    _tos: u8,
    tot_len: [u8; 2],
    id: [u8; 2],
    frag_off: [u8; 2],
    _ttl: u8,
    pub(crate) protocol: u8,
    _check: [u8; 2],
    /// Network byte order.
    pub(crate) saddr: [u8; 4],
    /// Network byte order.
    pub(crate) daddr: [u8; 4],
}
impl Header for Ipv4Hdr {}

impl Ipv4Hdr {
    /// True for version 4 with no options (IHL 5): the only form the fast path handles.
    #[inline(always)]
    pub(crate) fn is_plain_v4(&self) -> bool {
        self.version_ihl == 0x45
    }

    /// Total length, host byte order.
    #[inline(always)]
    pub(crate) fn tot_len(&self) -> u16 {
        be16(self.tot_len)
    }

    /// Time to live.
    #[inline(always)]
    pub(crate) fn ttl(&self) -> u8 {
        self._ttl
    }

    /// True when this is a fragment (MF set or a non-zero offset).
    #[inline(always)]
    pub(crate) fn is_fragment(&self) -> bool {
        be16(self.frag_off) & 0x3fff != 0
    }

    /// True for a fragment other than the first (non-zero offset): no transport header.
    #[inline(always)]
    pub(crate) fn is_later_fragment(&self) -> bool {
        be16(self.frag_off) & 0x1fff != 0
    }

    /// The identification field, raw (network order in memory).
    #[inline(always)]
    pub(crate) fn id_raw(&self) -> u16 {
        u16::from_ne_bytes(self.id)
    }

    /// Source address as the `u32` whose in-memory bytes are the network-order address.
    #[inline(always)]
    pub(crate) fn saddr_raw(&self) -> u32 {
        u32::from_ne_bytes(self.saddr)
    }

    /// Destination address, in the same representation as [`Self::saddr_raw`].
    #[inline(always)]
    pub(crate) fn daddr_raw(&self) -> u32 {
        u32::from_ne_bytes(self.daddr)
    }
}

/// Byte strings read whole (IPv6 header pieces, addresses).
impl<const N: usize> Header for [u8; N] {}

/// Whether two IPv6 addresses are equal, compared as two words (a slice or array `==` on
/// 16 bytes would call `bcmp`, which BPF does not have).
#[inline(always)]
pub(crate) fn ipv6_eq(a: &[u8; 16], b: &[u8; 16]) -> bool {
    let w = |x: &[u8; 16], i: usize| {
        u64::from_ne_bytes([
            x[i],
            x[i + 1],
            x[i + 2],
            x[i + 3],
            x[i + 4],
            x[i + 5],
            x[i + 6],
            x[i + 7],
        ])
    };
    w(a, 0) == w(b, 0) && w(a, 8) == w(b, 8)
}

/// IP protocol numbers.
pub(crate) mod ipproto {
    pub(crate) const ICMP: u8 = 1;
    pub(crate) const TCP: u8 = 6;
    pub(crate) const UDP: u8 = 17;
}

/// The first 16 bytes of a TCP header: ports, sequence numbers, offset and flags.
#[derive(Clone, Copy)]
#[repr(C)]
pub(crate) struct TcpHdr {
    /// Network byte order.
    pub(crate) source: [u8; 2],
    /// Network byte order.
    pub(crate) dest: [u8; 2],
    _seq: [u8; 4],
    _ack: [u8; 4],
    _doff: u8,
    pub(crate) flags: u8,
    _window: [u8; 2],
}
impl Header for TcpHdr {}

/// TCP flag bits (RFC 9293).
pub(crate) mod tcpflag {
    pub(crate) const FIN: u8 = 0x01;
    pub(crate) const SYN: u8 = 0x02;
    pub(crate) const RST: u8 = 0x04;
}

/// ICMP header with the echo identifier and sequence (RFC 792).
#[derive(Clone, Copy)]
#[repr(C)]
pub(crate) struct IcmpHdr {
    pub(crate) icmp_type: u8,
    pub(crate) code: u8,
    _check: [u8; 2],
    /// Network byte order.
    pub(crate) id: [u8; 2],
    _seq: [u8; 2],
}
impl Header for IcmpHdr {}

/// ICMP types.
pub(crate) mod icmptype {
    pub(crate) const ECHO_REPLY: u8 = 0;
    pub(crate) const ECHO_REQUEST: u8 = 8;
    pub(crate) const DEST_UNREACH: u8 = 3;
    pub(crate) const TIME_EXCEEDED: u8 = 11;
    pub(crate) const PARAM_PROBLEM: u8 = 12;

    /// The ICMP errors the NAT translates (RFC 5508 §4): they quote the packet that caused
    /// them.
    #[inline(always)]
    pub(crate) fn is_error(t: u8) -> bool {
        t == DEST_UNREACH || t == TIME_EXCEEDED || t == PARAM_PROBLEM
    }
}

/// Field offsets inside an IPv4 header without options.
pub(crate) mod ipv4off {
    pub(crate) const TOT_LEN: usize = 2;
    pub(crate) const TTL: usize = 8;
    pub(crate) const CHECK: usize = 10;
    pub(crate) const SADDR: usize = 12;
    pub(crate) const DADDR: usize = 16;
    pub(crate) const LEN: usize = 20;
}

/// Offsets of the port (or ICMP identifier) and checksum fields in each transport header.
pub(crate) mod l4off {
    pub(crate) const SPORT: usize = 0;
    pub(crate) const DPORT: usize = 2;
    pub(crate) const TCP_CHECK: usize = 16;
    pub(crate) const UDP_CHECK: usize = 6;
    pub(crate) const ICMP_CHECK: usize = 2;
    pub(crate) const ICMP_ID: usize = 4;
}

/// Reads a `T` at `offset` from the start of the frame, bounds-checked.
#[inline(always)]
pub(crate) fn load<T: Copy>(ctx: &XdpContext, offset: usize) -> Result<T, Verdict> {
    let start = ctx.data() + offset;
    if start + size_of::<T>() > ctx.data_end() {
        return Err(Verdict::Drop(DropReason::Truncated));
    }
    // SAFETY: [start, start + size_of::<T>()) lies inside the frame (checked above); the
    // read is unaligned.
    Ok(unsafe { core::ptr::read_unaligned(start as *const T) })
}

/// Writes `value` at `offset` from the start of the frame, bounds-checked.
#[inline(always)]
pub(crate) fn store<T: Copy>(ctx: &XdpContext, offset: usize, value: T) -> Result<(), Verdict> {
    let start = ctx.data() + offset;
    if start + size_of::<T>() > ctx.data_end() {
        return Err(Verdict::Drop(DropReason::Truncated));
    }
    // SAFETY: [start, start + size_of::<T>()) lies inside the frame (checked above); the
    // write is unaligned. XDP frames are writable.
    unsafe { core::ptr::write_unaligned(start as *mut T, value) };
    Ok(())
}

/// UDP header.
#[derive(Clone, Copy)]
#[repr(C)]
pub(crate) struct UdpHdr {
    source: [u8; 2],
    dest: [u8; 2],
    _len: [u8; 2],
    _check: [u8; 2],
}
impl Header for UdpHdr {}

impl UdpHdr {
    /// Destination port, host byte order.
    #[inline(always)]
    pub(crate) fn dest(&self) -> u16 {
        be16(self.dest)
    }

    /// Source port as the `u16` whose bytes are in network order.
    #[inline(always)]
    pub(crate) fn source_raw(&self) -> u16 {
        u16::from_ne_bytes(self.source)
    }

    /// Destination port bytes (network order).
    #[inline(always)]
    pub(crate) fn dest_bytes(&self) -> [u8; 2] {
        self.dest
    }

    /// Destination port as the `u16` whose bytes are in network order.
    #[inline(always)]
    pub(crate) fn dest_raw(&self) -> u16 {
        u16::from_ne_bytes(self.dest)
    }
}

/// VXLAN header (RFC 7348 §5).
#[derive(Clone, Copy)]
#[repr(C)]
pub(crate) struct VxlanHdr {
    flags: u8,
    _reserved1: [u8; 3],
    vni_reserved: [u8; 4],
}
impl Header for VxlanHdr {}

impl VxlanHdr {
    /// The I flag: the VNI is valid. A header without it is dropped.
    #[inline(always)]
    pub(crate) fn has_vni(&self) -> bool {
        self.flags & 0x08 != 0
    }

    /// The 24-bit VNI.
    #[inline(always)]
    pub(crate) fn vni(&self) -> u32 {
        u32::from_be_bytes(self.vni_reserved) >> 8
    }
}

/// A read position in the frame.
pub(crate) struct Cursor {
    data: usize,
    data_end: usize,
    offset: usize,
}

impl Cursor {
    #[inline(always)]
    pub(crate) fn new(ctx: &XdpContext) -> Self {
        Self {
            data: ctx.data(),
            data_end: ctx.data_end(),
            offset: 0,
        }
    }

    /// Reads the next header and advances past it; a short frame is a counted drop.
    #[inline(always)]
    pub(crate) fn read<T: Header>(&mut self) -> Result<T, Verdict> {
        let start = self.data + self.offset;
        if start + size_of::<T>() > self.data_end {
            return Err(Verdict::Drop(DropReason::Truncated));
        }
        self.offset += size_of::<T>();
        // SAFETY: the range [start, start + size_of::<T>()) was checked against data_end
        // above, and `T: Header` types are byte arrays with alignment 1.
        Ok(unsafe { core::ptr::read_unaligned(start as *const T) })
    }

    /// The read position: bytes from the start of the frame.
    #[inline(always)]
    pub(crate) fn offset(&self) -> usize {
        self.offset
    }

    /// Bytes from the read position to the end of the frame.
    #[inline(always)]
    pub(crate) fn remaining(&self) -> usize {
        self.data_end.saturating_sub(self.data + self.offset)
    }
}
