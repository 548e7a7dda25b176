#![no_main]
//! DAG node decoding never panics and is canonical: what decodes re-encodes
//! to the same bytes, and the typed views (directory, event) agree with it.
use keyring_core::dag::{Directory, Event, Node, NodeKind, NodeRef};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(node) = NodeRef::decode(data) else {
        return;
    };
    let owned = node.to_node();
    assert_eq!(owned.encode().unwrap(), data);
    match node.kind() {
        NodeKind::Directory => {
            let dir = Directory::from_node(&node).unwrap();
            assert_eq!(dir.to_node().unwrap().encode().unwrap(), data);
        }
        NodeKind::Event => {
            let event = Event::from_node(&node).unwrap();
            assert_eq!(event.to_node().unwrap().encode().unwrap(), data);
        }
        NodeKind::Raw => {}
    }
    assert_eq!(Node::decode(data).unwrap(), owned);
});
