#![no_main]
//! The DAG sync stream envelope (framed request, response status) never
//! panics, never asks for more than its limit, and is canonical.
use keyring_core::dag::session::{decode_request, encode_request, Status, MAX_REQUEST_BYTES};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(first) = data.first() {
        let _ = Status::decode(*first);
    }
    match decode_request(data) {
        Ok(Some((request, used))) => {
            assert!(used <= 4 + MAX_REQUEST_BYTES);
            assert_eq!(encode_request(&request).unwrap(), &data[..used]);
        }
        Ok(None) => {
            assert!(data.len() < 4 + MAX_REQUEST_BYTES);
        }
        Err(_) => {}
    }
});
