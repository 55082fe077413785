//! VLAN tag offloads of a Linux network device, switched off so that an LSL's tags stay
//! in-line where the programs that read or write them can see them: on the vG's access
//! interface (a NIC strips received tags into packet metadata, which XDP does not see) and on
//! a BRG's uplink (a NIC inserts transmitted tags from metadata, behind the tagger's back).
//!
//! This is the one place the project changes device features, through the kernel's ethtool
//! interface (`SIOCETHTOOL`: the feature names of `ETH_SS_FEATURES`, then
//! `ETHTOOL_SFEATURES`), the same calls `ethtool -K` makes, without needing that program.
//! It acts on the network namespace the calling thread is in.

#![allow(unsafe_code)]

use std::{ffi::c_void, io, os::fd::AsRawFd as _};

/// Receive offloads that take tags out of the frame: 802.1Q C-tags and 802.1ad S-tags.
pub const RECEIVE_VLAN: &[&str] = &["rx-vlan-hw-parse", "rx-vlan-stag-hw-parse"];

/// Transmit offloads that put tags into the frame from metadata.
pub const TRANSMIT_VLAN: &[&str] = &["tx-vlan-hw-insert", "tx-vlan-stag-hw-insert"];

/// What [`switch_off`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Switched {
    /// Features switched off (or off already).
    pub off: Vec<&'static str>,
    /// Features the device does not have at all: nothing to switch off.
    pub absent: Vec<&'static str>,
}

/// Why features could not be switched off.
#[derive(Debug, thiserror::Error)]
pub enum OffloadError {
    /// The device name does not fit `IFNAMSIZ` or holds a NUL.
    #[error("{0:?} is not a network device name")]
    Name(String),
    /// An ethtool call failed.
    #[error("{dev}: {call}: {source}")]
    Call {
        /// The device.
        dev: String,
        /// Which call.
        call: &'static str,
        /// The kernel's answer.
        source: io::Error,
    },
    /// The device refused (a fixed feature).
    #[error("{dev}: the device keeps {features:?} on (fixed features)")]
    Refused {
        /// The device.
        dev: String,
        /// The features.
        features: Vec<&'static str>,
    },
}

const SIOCETHTOOL: libc::c_ulong = 0x8946;
const ETHTOOL_GSTRINGS: u32 = 0x1b;
const ETHTOOL_GSSET_INFO: u32 = 0x37;
const ETHTOOL_GFEATURES: u32 = 0x3a;
const ETHTOOL_SFEATURES: u32 = 0x3b;
const ETH_SS_FEATURES: u32 = 4;
const ETH_GSTRING_LEN: usize = 32;
const IFNAMSIZ: usize = 16;

/// `struct ifreq` as `SIOCETHTOOL` reads it: the name, then a pointer to the command.
#[repr(C)]
struct IfReq {
    name: [u8; IFNAMSIZ],
    data: *mut c_void,
    _pad: [u8; 16],
}

/// A socket to issue the calls on, and the device.
struct Dev {
    socket: std::os::fd::OwnedFd,
    name: [u8; IFNAMSIZ],
    text: String,
}

impl Dev {
    fn open(dev: &str) -> Result<Self, OffloadError> {
        let mut name = [0u8; IFNAMSIZ];
        if dev.is_empty() || dev.len() >= IFNAMSIZ || dev.contains('\0') {
            return Err(OffloadError::Name(dev.to_owned()));
        }
        name[..dev.len()].copy_from_slice(dev.as_bytes());
        let socket = std::net::UdpSocket::bind("0.0.0.0:0")
            .map(std::os::fd::OwnedFd::from)
            .or_else(|_| std::net::UdpSocket::bind("[::]:0").map(std::os::fd::OwnedFd::from))
            .map_err(|source| OffloadError::Call {
                dev: dev.to_owned(),
                call: "socket",
                source,
            })?;
        Ok(Self {
            socket,
            name,
            text: dev.to_owned(),
        })
    }

    /// Issues ethtool command `cmd` (its buffer starts with the command number); the
    /// kernel's non-negative return value.
    fn call(&self, what: &'static str, cmd: &mut [u32]) -> Result<i32, OffloadError> {
        let mut req = IfReq {
            name: self.name,
            data: cmd.as_mut_ptr().cast(),
            _pad: [0; 16],
        };
        // SAFETY: `req` is a valid `ifreq` whose data pointer points to `cmd`, a buffer
        // sized by the caller for the command's reply (the kernel writes at most the lengths
        // the command itself states), alive for the call.
        let rc = unsafe {
            libc::ioctl(
                self.socket.as_raw_fd(),
                SIOCETHTOOL as _,
                &mut req as *mut IfReq,
            )
        };
        if rc < 0 {
            return Err(OffloadError::Call {
                dev: self.text.clone(),
                call: what,
                source: io::Error::last_os_error(),
            });
        }
        Ok(rc)
    }

    /// The names of the device's features, in bit order.
    fn feature_names(&self) -> Result<Vec<String>, OffloadError> {
        // ethtool_sset_info: cmd, reserved, sset_mask (u64), data[1].
        let mask = (1u64 << ETH_SS_FEATURES).to_ne_bytes();
        let mut info = [
            ETHTOOL_GSSET_INFO,
            0,
            u32::from_ne_bytes([mask[0], mask[1], mask[2], mask[3]]),
            u32::from_ne_bytes([mask[4], mask[5], mask[6], mask[7]]),
            0,
        ];
        self.call("ETHTOOL_GSSET_INFO", &mut info)?;
        let count = info[4] as usize;
        // ethtool_gstrings: cmd, string_set, len, then len names of 32 bytes.
        let mut strings = vec![0u32; 3 + count * ETH_GSTRING_LEN / 4];
        strings[..3].copy_from_slice(&[ETHTOOL_GSTRINGS, ETH_SS_FEATURES, count as u32]);
        self.call("ETHTOOL_GSTRINGS", &mut strings)?;
        let bytes: Vec<u8> = strings[3..].iter().flat_map(|w| w.to_ne_bytes()).collect();
        Ok(bytes
            .chunks(ETH_GSTRING_LEN)
            .map(|c| {
                let end = c.iter().position(|&b| b == 0).unwrap_or(c.len());
                String::from_utf8_lossy(&c[..end]).into_owned()
            })
            .collect())
    }
}

/// Switches off `features` (names as `ethtool -k` shows them) on device `dev`; a feature
/// the device does not have is reported in [`Switched::absent`].
pub fn switch_off(dev: &str, features: &[&'static str]) -> Result<Switched, OffloadError> {
    let d = Dev::open(dev)?;
    let names = d.feature_names()?;
    let blocks = names.len().div_ceil(32);
    let mut switched = Switched::default();
    // ethtool_sfeatures: cmd, size, then (valid, requested) per 32 features.
    let mut set = vec![0u32; 2 + blocks * 2];
    set[0] = ETHTOOL_SFEATURES;
    set[1] = blocks as u32;
    let mut bits = Vec::new();
    for &f in features {
        match names.iter().position(|n| n == f) {
            Some(bit) => {
                set[2 + (bit / 32) * 2] |= 1 << (bit % 32);
                bits.push((f, bit));
                switched.off.push(f);
            }
            None => switched.absent.push(f),
        }
    }
    if bits.is_empty() {
        return Ok(switched);
    }
    d.call("ETHTOOL_SFEATURES", &mut set)?;
    // Read back what is active: a fixed feature stays on whatever was asked.
    // ethtool_gfeatures: cmd, size, then (available, requested, active, never_changed).
    let mut get = vec![0u32; 2 + blocks * 4];
    get[0] = ETHTOOL_GFEATURES;
    get[1] = blocks as u32;
    d.call("ETHTOOL_GFEATURES", &mut get)?;
    let still_on: Vec<&'static str> = bits
        .iter()
        .filter(|(_, bit)| get[2 + (bit / 32) * 4 + 2] & (1 << (bit % 32)) != 0)
        .map(|(f, _)| *f)
        .collect();
    if !still_on.is_empty() {
        return Err(OffloadError::Refused {
            dev: dev.to_owned(),
            features: still_on,
        });
    }
    Ok(switched)
}

/// Whether `feature` is active on `dev`; `None` when the device does not have it.
pub fn is_on(dev: &str, feature: &str) -> Result<Option<bool>, OffloadError> {
    let d = Dev::open(dev)?;
    let names = d.feature_names()?;
    let Some(bit) = names.iter().position(|n| n == feature) else {
        return Ok(None);
    };
    let blocks = names.len().div_ceil(32);
    let mut get = vec![0u32; 2 + blocks * 4];
    get[0] = ETHTOOL_GFEATURES;
    get[1] = blocks as u32;
    d.call("ETHTOOL_GFEATURES", &mut get)?;
    Ok(Some(get[2 + (bit / 32) * 4 + 2] & (1 << (bit % 32)) != 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_names_are_refused_before_any_call() {
        for name in ["", "a-name-longer-than-ifnamsiz", "nul\0inside"] {
            assert!(matches!(
                switch_off(name, RECEIVE_VLAN),
                Err(OffloadError::Name(_))
            ));
        }
    }

    #[test]
    fn a_missing_device_is_a_call_error() {
        match switch_off("nerg-no-such0", RECEIVE_VLAN) {
            Err(OffloadError::Call { call, .. }) => assert_eq!(call, "ETHTOOL_GSSET_INFO"),
            other => panic!("{other:?}"),
        }
    }
}
