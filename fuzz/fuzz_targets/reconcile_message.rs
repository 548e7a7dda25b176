#![no_main]
//! A negentropy message from a peer never panics the decoder, the stateless
//! responder or the initiator, and every answer stays under the frame limit.
use keyring_core::reconcile::{open, Config, Initiator, Item, Items, Opened, Responder};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn items() -> &'static Items {
    static ITEMS: OnceLock<Items> = OnceLock::new();
    ITEMS.get_or_init(|| {
        Items::new(
            (0..3000u64)
                .map(|i| Item {
                    timestamp: i / 4,
                    id: *blake3::hash(&i.to_be_bytes()).as_bytes(),
                })
                .collect(),
        )
        .unwrap()
    })
}

fuzz_target!(|data: &[u8]| {
    let config = Config {
        frame_limit: 4096,
        max_message: 1 << 16,
    };
    if let Ok(Opened::V1(ranges)) = open(data, config.max_message) {
        for _ in ranges {}
    }
    if let Ok(answer) = Responder::new(items(), config).unwrap().respond(data) {
        assert!(answer.len() <= config.frame_limit);
    }
    let mut initiator = Initiator::new(items(), config).unwrap();
    let _ = initiator.initiate();
    let (mut have, mut need) = (vec![], vec![]);
    if let Ok(Some(next)) = initiator.reconcile(data, &mut have, &mut need) {
        assert!(next.len() <= config.frame_limit);
    }
});
