//! Properties of the DAG node codec: every valid node has exactly one
//! encoding, and the decoder accepts nothing else.

use keyring_core::dag::{
    CodecError, Directory, Entry, EntryKind, Event, Link, LinkKind, Node, NodeKind, NodeRef,
    MAX_NAME_BYTES,
};
use proptest::prelude::*;

fn link() -> impl Strategy<Value = Link> {
    (any::<bool>(), any::<[u8; 32]>()).prop_map(|(node, cid)| Link {
        kind: if node { LinkKind::Node } else { LinkKind::Blob },
        cid,
    })
}

fn raw_node() -> impl Strategy<Value = Node> {
    (
        prop::collection::vec(link(), 0..20),
        prop::collection::vec(any::<u8>(), 0..300),
    )
        .prop_map(|(links, data)| Node::raw(data, links))
}

fn name() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9._ -]{1,12}|[\\PC]{1,4}".prop_filter("valid entry name", |n| {
        keyring_core::dag::check_name(n.as_bytes()).is_ok()
    })
}

fn entry() -> impl Strategy<Value = Entry> {
    (name(), 0u8..3, any::<u64>(), any::<[u8; 32]>()).prop_map(|(name, k, size, cid)| Entry {
        name,
        kind: match k {
            0 => EntryKind::File,
            1 => EntryKind::Executable,
            _ => EntryKind::Directory,
        },
        size,
        cid,
    })
}

fn directory() -> impl Strategy<Value = Directory> {
    prop::collection::btree_map(name(), entry(), 0..16)
        .prop_map(|m| Directory::new(m.into_iter().map(|(name, e)| Entry { name, ..e }).collect()))
}

fn event() -> impl Strategy<Value = Event> {
    (
        any::<u64>(),
        any::<[u8; 32]>(),
        prop::collection::vec(any::<u8>(), 0..200),
        prop::collection::vec(link(), 0..5),
    )
        .prop_map(|(seq, prev, payload, attachments)| Event {
            seq,
            prev: (seq > 0).then_some(prev),
            payload,
            attachments,
        })
}

fn any_node() -> impl Strategy<Value = Node> {
    prop_oneof![
        raw_node(),
        directory().prop_map(|d| d.to_node().unwrap()),
        event().prop_map(|e| e.to_node().unwrap()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Law: decode(encode(n)) = n, and encode(decode(b)) = b.
    #[test]
    fn every_node_round_trips_byte_for_byte(node in any_node()) {
        let bytes = node.encode().unwrap();
        let back = Node::decode(&bytes).unwrap();
        prop_assert_eq!(&back, &node);
        prop_assert_eq!(back.encode().unwrap(), bytes);
    }

    /// Law: a directory is its sorted entries, whatever order they came in.
    #[test]
    fn directories_are_canonical_whatever_the_entry_order(dir in directory(), seed in any::<u64>()) {
        let mut shuffled = dir.entries.clone();
        let n = shuffled.len();
        if n > 1 {
            for i in 0..n {
                shuffled.swap(i, (seed as usize).wrapping_add(i * 7) % n);
            }
        }
        let a = dir.to_node().unwrap().encode().unwrap();
        let b = Directory::new(shuffled).to_node().unwrap().encode().unwrap();
        prop_assert_eq!(&a, &b);
        let back = Directory::from_node(&NodeRef::decode(&a).unwrap()).unwrap();
        let mut sorted = dir.entries.clone();
        sorted.sort_by(|x, y| x.name.as_bytes().cmp(y.name.as_bytes()));
        prop_assert_eq!(back.entries, sorted);
    }

    /// Law: events survive a round trip with their chain position.
    #[test]
    fn events_round_trip(e in event()) {
        let bytes = e.to_node().unwrap().encode().unwrap();
        let back = Event::from_node(&NodeRef::decode(&bytes).unwrap()).unwrap();
        prop_assert_eq!(back, e);
    }

    /// Law: whatever bytes come in, the decoder does not panic, and what it
    /// accepts re-encodes to exactly those bytes.
    #[test]
    fn arbitrary_bytes_decode_canonically_or_not_at_all(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        if let Ok(node) = Node::decode(&bytes) {
            prop_assert_eq!(node.encode().unwrap(), bytes);
        }
    }

    /// Law: changing one byte of a valid encoding gives an error or another
    /// node whose encoding is the changed bytes (never a second encoding of
    /// the same node).
    #[test]
    fn a_changed_byte_never_yields_a_second_encoding(node in any_node(), at in any::<prop::sample::Index>(), to in any::<u8>()) {
        let bytes = node.encode().unwrap();
        let mut changed = bytes.clone();
        let i = at.index(changed.len());
        changed[i] = to;
        if let Ok(other) = Node::decode(&changed) {
            prop_assert_eq!(other.encode().unwrap(), changed.clone());
            prop_assert!(changed == bytes || other != node);
        }
    }

    /// Law: bytes after a valid node are refused.
    #[test]
    fn trailing_bytes_are_always_refused(node in any_node(), tail in prop::collection::vec(any::<u8>(), 1..8)) {
        let mut bytes = node.encode().unwrap();
        bytes.extend_from_slice(&tail);
        prop_assert_eq!(Node::decode(&bytes).unwrap_err(), CodecError::TrailingBytes);
    }
}

#[test]
fn a_directory_with_the_longest_names_fits() {
    let entries = (0..100)
        .map(|i| Entry {
            name: format!("{i:03}{}", "n".repeat(MAX_NAME_BYTES - 3)),
            kind: EntryKind::File,
            size: u64::MAX,
            cid: [1; 32],
        })
        .collect();
    let node = Directory::new(entries).to_node().unwrap();
    assert_eq!(node.kind, NodeKind::Directory);
    let bytes = node.encode().unwrap();
    assert_eq!(Node::decode(&bytes).unwrap(), node);
}
