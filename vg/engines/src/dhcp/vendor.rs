//! The hook through which later code adds vendor options to a home's replies: option 43
//! (Vendor Specific Information, RFC 2132 section 8.4) and option 125 (Vendor-Identifying
//! Vendor-Specific Information, RFC 3925 section 4), e.g. the ACS URL a TR-069 device learns
//! from DHCP (TR-069 section 3.1, TR-111).

use std::fmt;
use std::net::Ipv4Addr;

use dhcproto::v4::{MessageType, OptionCode};

use super::types::MacAddr;

/// What the hook is told about the client it is answering.
#[derive(Debug, Clone, Copy)]
pub struct VendorQuery<'a> {
    /// The reply being built: Offer, or Ack (lease or INFORM).
    pub reply_type: MessageType,
    /// The client's hardware address.
    pub mac: MacAddr,
    /// The address the client is being given (`ciaddr` for an INFORM).
    pub ip: Ipv4Addr,
    /// Option 60 (vendor class identifier) as sent.
    pub vendor_class: Option<&'a [u8]>,
    /// Option 124 (V-I vendor class, RFC 3925) as sent.
    pub vi_vendor_class: Option<&'a [u8]>,
    /// Option 55 (parameter request list) as sent.
    pub requested: &'a [OptionCode],
}

/// One enterprise's block inside option 125.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViVendorInfo {
    /// IANA enterprise number (3561 = Broadband Forum).
    pub enterprise: u32,
    /// The enterprise's sub-options, already encoded; at most 255 bytes (longer blocks are
    /// left out of the reply).
    pub data: Vec<u8>,
}

/// The vendor options to add to one reply.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VendorOptions {
    /// Option 43 payload, already encoded.
    pub vendor_specific: Option<Vec<u8>>,
    /// Option 125 blocks.
    pub vi_vendor_specific: Vec<ViVendorInfo>,
}

impl VendorOptions {
    /// True if there is nothing to add.
    pub fn is_empty(&self) -> bool {
        self.vendor_specific.is_none() && self.vi_vendor_specific.is_empty()
    }

    /// Option 125's payload (RFC 3925 section 4): per block, enterprise number, length, data.
    pub(crate) fn option125_payload(&self) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        for block in &self.vi_vendor_specific {
            let Ok(len) = u8::try_from(block.data.len()) else {
                continue;
            };
            out.extend_from_slice(&block.enterprise.to_be_bytes());
            out.push(len);
            out.extend_from_slice(&block.data);
        }
        (!out.is_empty()).then_some(out)
    }
}

/// Supplies vendor options for a home's OFFERs and ACKs. Called once per reply; it must be
/// cheap and must not block (it runs inside the engine's call).
pub trait VendorHook: Send + Sync + fmt::Debug {
    /// The vendor options for this reply (empty for none).
    fn vendor_options(&self, query: &VendorQuery<'_>) -> VendorOptions;
}

/// A hook that gives every client of the home the same options.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StaticVendorOptions(pub VendorOptions);

impl VendorHook for StaticVendorOptions {
    fn vendor_options(&self, _query: &VendorQuery<'_>) -> VendorOptions {
        self.0.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn option125_layout() {
        let options = VendorOptions {
            vendor_specific: None,
            vi_vendor_specific: vec![
                ViVendorInfo {
                    enterprise: 3561,
                    data: vec![1, 2, b'h', b'i'],
                },
                ViVendorInfo {
                    enterprise: 1,
                    data: vec![0; 300],
                },
            ],
        };
        assert_eq!(
            options.option125_payload(),
            Some(vec![0, 0, 0x0d, 0xe9, 4, 1, 2, b'h', b'i'])
        );
        assert_eq!(VendorOptions::default().option125_payload(), None);
        assert!(VendorOptions::default().is_empty());
    }
}
