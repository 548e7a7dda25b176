#![no_main]
//! A DAG sync response stream from a hostile provider: whatever the bytes,
//! the item decoder and the verifier never panic, every node or blob the
//! verifier accepts hashes to the cid it was accepted for, and the decoder
//! never buffers more than one item plus one pushed chunk.
use keyring_core::dag::{
    Accepted, Item, ItemDecoder, Link, Node, Request, TraversalSpec, Verifier, MAX_ITEM_BYTES,
};
use keyring_core::hash::digest;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // A small real DAG as the requested root, so well-formed prefixes get far.
    let leaf = Node::raw(b"leaf".to_vec(), vec![]).encode().unwrap();
    let root = Node::raw(
        b"root".to_vec(),
        vec![Link::node(digest(&leaf)), Link::blob(digest(b"blob"))],
    );
    let (root_cid, _) = root.encode_with_cid().unwrap();
    let spec = TraversalSpec {
        blobs: data.first().is_some_and(|b| b & 1 == 1),
        max_depth: None,
    };
    let mut verifier = Verifier::new(Request::new(root_cid, spec), 64);
    let mut decoder = ItemDecoder::new();
    for chunk in data.chunks(7) {
        decoder.push(chunk);
        assert!(decoder.buffered() <= MAX_ITEM_BYTES + 16 + chunk.len());
        loop {
            let item = match decoder.next_item() {
                Ok(Some(item)) => item,
                Ok(None) => break,
                Err(_) => return,
            };
            let check = match &item {
                Item::Data(bytes) => Some(digest(bytes)),
                _ => None,
            };
            match verifier.accept(item, |_| false) {
                Ok(Accepted::Node { cid, bytes } | Accepted::Blob { cid, bytes }) => {
                    assert_eq!(digest(&bytes), cid);
                    assert_eq!(check, Some(cid));
                }
                Ok(_) => {}
                Err(_) => return,
            }
        }
    }
    let _ = verifier.finish();
});
