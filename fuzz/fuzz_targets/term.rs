#![no_main]
//! Restricted-term decoding never panics, respects its limits, and decoded
//! terms re-encode to the input.
use keyring_core::wire::term;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(v) = term::decode(data, 1 << 20) {
        assert_eq!(term::encode(&v, 1 << 20).unwrap(), data);
    }
});
