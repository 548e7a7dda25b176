#![no_main]
//! DAG sync request decoding never panics and is canonical.
use keyring_core::dag::Request;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(request) = Request::decode(data) {
        assert_eq!(request.encode().unwrap(), data);
    }
});
