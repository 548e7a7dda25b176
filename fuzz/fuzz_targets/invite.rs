#![no_main]
//! Invite decoding never panics and is canonical; admission of a decoded
//! invite against a ring answers a typed refusal, never a panic.
use std::sync::OnceLock;

use keyring_core::identity::KeyPair;
use keyring_core::membership::{Invite, Ring};
use libfuzzer_sys::fuzz_target;

fn ring() -> &'static Ring {
    static RING: OnceLock<Ring> = OnceLock::new();
    RING.get_or_init(|| Ring::create(&KeyPair::from_seed(&[3; 32]), "f", vec![], 0).unwrap())
}

fuzz_target!(|data: &[u8]| {
    if let Ok(invite) = Invite::decode(data) {
        assert_eq!(invite.encode(), data);
        let _ = invite.verify(0);
        let _ = ring().admit(&invite, [5; 32], 0, 10);
    }
});
