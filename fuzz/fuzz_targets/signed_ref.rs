#![no_main]
//! Signed ref decoding never panics and is canonical; comparing two decoded
//! refs never panics.
use keyring_core::refs::SignedRef;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = SignedRef::decode(data) {
        assert_eq!(r.encode(), data);
        let _ = r.verify();
        let _ = r.supersedes(Some(&r));
    }
    let (a, b) = data.split_at(data.len() / 2);
    if let (Ok(a), Ok(b)) = (SignedRef::decode(a), SignedRef::decode(b)) {
        let _ = a.supersedes(Some(&b));
    }
});
