#![no_main]
//! The reconciliation stream framing never panics, never reads past its
//! limit, and is canonical.
use keyring_core::reconcile::framing::{decode_frame, encode_frame};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(Some((message, used))) = decode_frame(data, 1 << 16) {
        assert!(message.len() <= 1 << 16);
        assert_eq!(encode_frame(message), &data[..used]);
    }
});
