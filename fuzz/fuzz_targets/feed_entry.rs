#![no_main]
//! Feed entry decoding never panics and is canonical; ingesting fuzzed
//! entries (decoded from consecutive pieces) never panics either.
use keyring_core::feed::{Entry, FeedBook, Limits};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(entry) = Entry::decode(data) {
        assert_eq!(entry.encode(), data);
        assert_eq!(entry.encoded_len(), data.len());
        let _ = entry.verify();
    }
    let mut book = FeedBook::new(Limits {
        max_waiting_bytes: 1 << 16,
        ..Limits::default()
    });
    for piece in data.chunks(200) {
        if let Ok(entry) = Entry::decode(piece) {
            let _ = book.ingest(entry);
        }
    }
});
