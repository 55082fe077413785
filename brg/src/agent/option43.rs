//! The ACS URL from DHCP: option 43 (vendor-specific information, RFC 2132 section 8.4)
//! as TR-069 section 3.1 defines it for a CPE that sent `dslforum.org` in option 60.
//!
//! ```text
//!  option 43 payload:  | code | len | data ... | code | len | data ... | 255 (end, optional)
//!   code 1: URL of the ACS          code 2: ProvisioningCode
//!   code 3: CWMPRetryMinimumWaitInterval (decimal text)
//!   code 4: CWMPRetryIntervalMultiplier  (decimal text)        code 0: pad (no length)
//! ```
//!
//! brgd does not run the management interface's DHCP client (the system's does, outside
//! the subscriber bridge): its hook writes the option's payload, in hex, to a file brgd
//! reads at start (`--dhcp-option43-file`): busybox udhcpc run with `-O 43 -V dslforum.org`
//! exports it as `$opt43` (plain hex), dhclient as `$new_vendor_encapsulated_options`
//! (colon-separated hex); both forms are accepted, whitespace too. Nothing here panics:
//! a truncated sub-option ends the parse, what was read before it stands.

/// What option 43 carries for a TR-069 CPE.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Option43 {
    /// Sub-option 1: the ACS URL.
    pub url: Option<String>,
    /// Sub-option 2: `DeviceInfo.ProvisioningCode`.
    pub provisioning_code: Option<String>,
}

/// Why an option 43 text is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Option43Error {
    /// Not hex (after removing `:` and whitespace), or an odd number of digits.
    #[error("option 43 is not hex: {0:?}")]
    NotHex(String),
}

/// Decodes hex written as `0118687474...`, `01:18:68:...` or with whitespace.
fn unhex(text: &str) -> Result<Vec<u8>, Option43Error> {
    let digits: Vec<u8> = text
        .bytes()
        .filter(|b| !b.is_ascii_whitespace() && *b != b':')
        .collect();
    let bad = || Option43Error::NotHex(text.chars().take(64).collect());
    if !digits.len().is_multiple_of(2) {
        return Err(bad());
    }
    digits
        .chunks(2)
        .map(|pair| {
            std::str::from_utf8(pair)
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(bad)
        })
        .collect()
}

/// Parses the payload of option 43 (TLV sub-options). Unknown sub-options are skipped; a
/// value that is not UTF-8 is left out.
pub fn parse(payload: &[u8]) -> Option43 {
    let mut out = Option43::default();
    let mut rest = payload;
    while let Some((&code, tail)) = rest.split_first() {
        match code {
            0 => {
                rest = tail;
                continue;
            }
            255 => break,
            _ => {}
        }
        let Some((&len, tail)) = tail.split_first() else {
            break;
        };
        let Some((value, tail)) = tail.split_at_checked(usize::from(len)) else {
            break;
        };
        rest = tail;
        let text = std::str::from_utf8(value).ok().map(str::to_owned);
        match code {
            1 => out.url = text.filter(|u| !u.is_empty()),
            2 => out.provisioning_code = text,
            _ => {}
        }
    }
    out
}

/// Parses option 43 written in hex (see the module docs).
pub fn parse_hex(text: &str) -> Result<Option43, Option43Error> {
    Ok(parse(&unhex(text)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL: &str = "http://10.77.0.1:7547/acs";

    fn payload() -> Vec<u8> {
        let mut p = vec![0, 1, URL.len() as u8];
        p.extend_from_slice(URL.as_bytes());
        p.extend_from_slice(&[2, 3, b'A', b'B', b'C', 9, 1, 7, 255, 1, 1]);
        p
    }

    #[test]
    fn sub_options() {
        let parsed = parse(&payload());
        assert_eq!(parsed.url.as_deref(), Some(URL));
        assert_eq!(parsed.provisioning_code.as_deref(), Some("ABC"));
        assert_eq!(parse(&[]), Option43::default());
    }

    /// The form busybox udhcpc 1.35 exports as `$opt43` (plain hex of the payload; checked
    /// against udhcpd serving `opt 0x2b 0119...`), and dhclient's colon-separated form.
    #[test]
    fn udhcpc_and_dhclient_forms() {
        let udhcpc = "0119687474703a2f2f31302e37372e302e313a373534372f616373";
        assert_eq!(parse_hex(udhcpc).expect("hex").url.as_deref(), Some(URL));
        let dhclient = udhcpc
            .as_bytes()
            .chunks(2)
            .map(|c| std::str::from_utf8(c).expect("ascii"))
            .collect::<Vec<_>>()
            .join(":");
        assert_eq!(
            parse_hex(&format!("{dhclient}\n"))
                .expect("hex")
                .url
                .as_deref(),
            Some(URL)
        );
        for bad in ["0", "zz", "01:1"] {
            assert!(parse_hex(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn truncated_input_keeps_what_was_read() {
        let full = payload();
        for cut in 0..full.len() {
            let parsed = parse(&full[..cut]);
            if cut < 3 + URL.len() {
                assert_eq!(parsed.url, None, "cut at {cut}");
            } else {
                assert_eq!(parsed.url.as_deref(), Some(URL), "cut at {cut}");
            }
        }
        assert_eq!(parse(&[1, 200, b'x']).url, None, "length past the end");
    }
}
