//! Bounds-checked access to packet bytes: the one place the program dereferences packet
//! pointers. Every read checks `data + offset + size <= data_end` right before it, which is
//! the shape the verifier needs to accept the access.

use core::mem::size_of;

use aya_ebpf::programs::XdpContext;
use nerg_abi::DropReason;

use crate::Verdict;

/// A header that can be read from the packet: plain bytes, alignment 1.
pub(crate) trait Header: Copy {}

/// Ethernet II header.
#[derive(Clone, Copy)]
#[repr(C)]
pub(crate) struct EthHdr {
    pub(crate) dst: [u8; 6],
    pub(crate) src: [u8; 6],
    /// Network byte order.
    ethertype: [u8; 2],
}
impl Header for EthHdr {}

impl EthHdr {
    /// The ethertype (or the TPID of the first tag), host byte order.
    #[inline(always)]
    pub(crate) fn ethertype(&self) -> u16 {
        u16::from_be_bytes(self.ethertype)
    }
}

/// The 4 bytes that follow a VLAN TPID: tag control information, then the next ethertype.
#[derive(Clone, Copy)]
#[repr(C)]
pub(crate) struct VlanHdr {
    /// PCP (3 bits), DEI (1 bit), VID (12 bits); network byte order.
    tci: [u8; 2],
    /// Network byte order.
    ethertype: [u8; 2],
}
impl Header for VlanHdr {}

impl VlanHdr {
    /// The VLAN identifier (low 12 bits of the TCI).
    #[inline(always)]
    #[expect(dead_code, reason = "used by LSL lookup in the fast-path issue")]
    pub(crate) fn vid(&self) -> u16 {
        u16::from_be_bytes(self.tci) & 0x0fff
    }

    /// The ethertype after this tag, host byte order.
    #[inline(always)]
    pub(crate) fn ethertype(&self) -> u16 {
        u16::from_be_bytes(self.ethertype)
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
}
