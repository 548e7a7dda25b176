#![no_main]
//! A group set's wire form decodes without panicking, within its limits, and
//! re-encodes to exactly the bytes it came from (the form is canonical).
use keyring_core::verified::{GroupRanges, MAX_BOUNDARIES};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(set) = GroupRanges::decode(data) {
        assert!(set.iter().count() <= MAX_BOUNDARIES / 2 + 1);
        assert_eq!(set.encode(), data);
    }
});
