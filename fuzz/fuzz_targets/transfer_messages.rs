#![no_main]
//! Blob transfer messages from a peer: a GET request, a LIST request or
//! answer, and a GET response pushed through the response decoder in two
//! pieces, never panic and stay within their limits.
use keyring_core::transfer::{
    decode_get, decode_list, encode_get, Event, Item, ListRequest, ResponseDecoder, MAX_ITEMS,
};
use keyring_core::verified::GroupRanges;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(items) = decode_get(data) {
        assert!(items.len() <= MAX_ITEMS);
        assert_eq!(encode_get(&items).unwrap(), data);
    }
    let _ = ListRequest::decode(data);
    let _ = decode_list(data);
    let items = vec![
        Item { cid: [0; 32], proof: true, ranges: GroupRanges::all() },
        Item { cid: [1; 32], proof: false, ranges: GroupRanges::from(0..4) },
    ];
    let mut dec = ResponseDecoder::new(items, vec![None, Some(40_000)]);
    let split = data.len() / 2;
    for piece in [&data[..split], &data[split..]] {
        let mut pos = 0;
        loop {
            match dec.push(&piece[pos..]) {
                Ok((used, ev)) => {
                    pos += used;
                    match ev {
                        Event::NeedMore if pos >= piece.len() => break,
                        Event::Done => return,
                        _ => {}
                    }
                }
                Err(_) => return,
            }
        }
    }
});
