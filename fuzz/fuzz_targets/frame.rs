#![no_main]
//! Frame decoding never panics and decoded frames re-encode to the input.
use keyring_core::wire::frame;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(f) = frame::decode(data, 1 << 20) {
        assert_eq!(f.encode().unwrap(), data);
    }
});
