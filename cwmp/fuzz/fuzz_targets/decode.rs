//! Fuzzes `cwmp::soap::decode` with arbitrary bytes.
//!
//! Properties: decoding never panics and stays within its limits; whatever decodes also
//! re-encodes to a document that decodes, with the same header, and encoding that again gives
//! the same bytes (encode . decode is a projection).

#![no_main]

use cwmp::soap::{Limits, decode, encode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        max_bytes: 64 * 1024,
        ..Limits::default()
    };
    let Ok(first) = decode(data, &limits) else {
        return;
    };
    let bytes = encode(&first);
    // The encoder writes every optional element, so the re-encoded document may hold more
    // elements than the input did; only the size-independent limits stay.
    let unbounded = Limits {
        max_bytes: usize::MAX,
        max_list_entries: usize::MAX,
        max_elements: usize::MAX,
        ..limits
    };
    let second = match decode(&bytes, &unbounded) {
        Ok(second) => second,
        Err(e) => panic!(
            "re-encoded envelope does not decode: {e:?}\n{}",
            String::from_utf8_lossy(&bytes)
        ),
    };
    assert_eq!(second.id, first.id);
    assert_eq!(second.ns, first.ns);
    assert_eq!(second.hold_requests, first.hold_requests);
    assert_eq!(second.session_timeout, first.session_timeout);
    assert_eq!(
        first.body.method_name().is_some(),
        second.body.method_name().is_some()
    );
    assert_eq!(encode(&second), bytes, "encoding is not stable");
});
