#![no_main]
//! Entry decoding, and replaying a log made of fuzzed entries, never panics;
//! whatever decodes re-encodes to the same bytes (the encoding is canonical).
use keyring_core::membership::{Entry, Log};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(entry) = Entry::decode(data) {
        assert_eq!(entry.encode(), data);
        let _ = entry.signature_valid();
    }
    let _ = Log::from_encoded(data.chunks(180));
});
