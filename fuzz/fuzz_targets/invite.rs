#![no_main]
//! Invite decoding never panics and is canonical.
use keyring_core::membership::Invite;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(invite) = Invite::decode(data) {
        assert_eq!(invite.encode(), data);
        let _ = invite.verify(0);
    }
});
