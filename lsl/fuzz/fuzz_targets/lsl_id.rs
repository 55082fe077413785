//! Arbitrary text through the LSL parser: nothing may panic, and what parses prints in a
//! form that parses back to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lsl::LslId;

fuzz_target!(|text: &str| {
    if let Ok(lsl) = text.parse::<LslId>() {
        let printed = lsl.to_string();
        assert_eq!(
            printed.parse::<LslId>(),
            Ok(lsl),
            "{text:?} printed as {printed:?}"
        );
    }
});
