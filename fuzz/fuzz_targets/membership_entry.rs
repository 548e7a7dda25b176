#![no_main]
//! Entry decoding never panics and is canonical; a ring fed arbitrary bytes
//! (split into entries by one-byte lengths) refuses them with typed errors,
//! never panics, and keeps its genesis state; `Ring::open` of junk errs.
use std::sync::OnceLock;

use keyring_core::identity::KeyPair;
use keyring_core::membership::{Entry, Ring};
use libfuzzer_sys::fuzz_target;

const T0: u64 = 1_700_000_000_000;

fn genesis_ring() -> Ring {
    static RING: OnceLock<Ring> = OnceLock::new();
    RING.get_or_init(|| Ring::create(&KeyPair::from_seed(&[7; 32]), "fuzz", vec![], T0).unwrap())
        .clone()
}

fuzz_target!(|data: &[u8]| {
    if let Ok(entry) = Entry::decode(data) {
        assert_eq!(entry.encode(), data);
        let _ = entry.signature_valid();
    }
    let _ = Ring::open(data.chunks(180));
    let mut ring = genesis_ring();
    let before = ring.summary(T0);
    let mut pieces = Vec::new();
    let mut rest = data;
    while let Some((&n, tail)) = rest.split_first() {
        let n = (n as usize).min(tail.len());
        pieces.push(&tail[..n]);
        rest = &tail[n..];
    }
    let report = ring.ingest(pieces.iter().copied(), T0);
    assert_eq!(report.added, 0, "junk cannot carry the root's signature");
    assert_eq!(ring.summary(T0), before);
});
