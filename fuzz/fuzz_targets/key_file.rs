#![no_main]
//! Key file decoding never panics, and never runs the KDF with parameters
//! outside its bounds (which would allocate gigabytes) — `open` must refuse
//! them first. A tiny fixed passphrase keeps accepted files cheap to try.
use keyring_core::identity::open_key_file;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = open_key_file(data, None);
    // Also behind a valid magic and version, so the fuzzer reaches the
    // kind-specific parsing without having to discover the header first.
    let mut framed = b"KRKEY\x01".to_vec();
    framed.extend_from_slice(data);
    let _ = open_key_file(&framed, None);
    // Only try decryption when the declared memory cost is small, so the
    // fuzzer spends its time on parsing rather than on Argon2.
    if framed.len() >= 11 && u32::from_be_bytes([framed[7], framed[8], framed[9], framed[10]]) <= 64
    {
        let _ = open_key_file(&framed, Some(b"pw"));
    }
});
