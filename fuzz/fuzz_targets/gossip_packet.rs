//! Any bytes from the LAN: the gossip decoder must answer Ok or Err, never
//! panic, and whatever it accepts must re-encode to exactly the signed bytes.
#![no_main]

use keyring_core::gossip;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(decoded) = gossip::decode(data) {
        assert!(data.len() <= gossip::MAX_PACKET);
        assert_eq!(decoded.tag.len(), gossip::TAG_LEN);
        let again = gossip::encode_unsigned(&decoded.announce).expect("accepted packets re-encode");
        assert_eq!(again.as_slice(), decoded.signed);
    }
});
