#![no_main]
//! Feed replication messages never panic the decoder and are canonical.
use keyring_core::feed::wire::Message;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(message) = Message::decode(data) {
        assert_eq!(message.encode().unwrap(), data);
    }
});
