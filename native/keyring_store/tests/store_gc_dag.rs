//! GC and DAGs: what is reachable from a pinned or shared root through DAG
//! links is kept, whatever stores it (records or files); what no tag
//! reaches is collected; and a DAG stored root first under a tag survives
//! GC steps racing its arrival (iroh-blobs#247).

mod support;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use keyring_core::dag::{Event, Link, Node as DagNode};
use keyring_core::hash::Digest;
use keyring_store::{GcCursor, WriteOp, WriteOutcome};
use support::{blob, pin, share, Node};

fn gc(node: &Node, budget: usize) -> u64 {
    let mut cursor = GcCursor::Start;
    let mut deleted = 0;
    while cursor != GcCursor::Done {
        let WriteOutcome::Gc(p) = node.write(WriteOp::GcStep { cursor, budget }).unwrap() else {
            panic!()
        };
        cursor = p.next;
        deleted += p.blobs;
    }
    deleted
}

fn put_node(node: &Node, n: DagNode) -> Digest {
    let bytes = n.encode().unwrap();
    node.put(&bytes)
}

/// root -> [dir -> [big node (> 16 KiB, a file) -> [large blob], small blob]]
fn dag(node: &Node, seed: u64) -> Vec<Digest> {
    let large = node.put(&blob(70_000, seed));
    let small = node.put(&blob(300, seed + 1));
    let big = put_node(
        node,
        DagNode::raw(blob(40_000, seed + 2), vec![Link::blob(large)]),
    );
    let dir = put_node(
        node,
        DagNode::raw(b"dir".to_vec(), vec![Link::node(big), Link::blob(small)]),
    );
    let root = put_node(node, DagNode::raw(b"root".to_vec(), vec![Link::node(dir)]));
    vec![root, dir, big, small, large]
}

#[test]
fn gc_keeps_what_a_pinned_or_shared_root_reaches_and_collects_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::open(dir.path());
    let pinned = dag(&node, 10);
    let shared = dag(&node, 20);
    let loose = dag(&node, 30);
    node.tag(pin("p"), pinned[0]);
    node.tag(share(7, "s"), shared[0]);
    assert_eq!(gc(&node, 2), loose.len() as u64);
    for cid in pinned.iter().chain(&shared) {
        assert_eq!(node.blobs().verify(cid).unwrap(), Some(true));
    }
    for cid in &loose {
        assert!(!node.blobs().has(cid).unwrap());
    }
    // Unpinning the root releases its whole DAG.
    node.write(WriteOp::DeleteTag {
        tag: pin("p"),
        cid: None,
    })
    .unwrap();
    assert_eq!(gc(&node, 3), pinned.len() as u64);
    assert!(shared.iter().all(|c| node.blobs().has(c).unwrap()));
}

#[test]
fn a_dag_stored_root_first_under_a_tag_survives_gc_racing_its_arrival() {
    let dir = tempfile::tempdir().unwrap();
    let node = Arc::new(Node::open(dir.path()));
    // A chain of 400 events: the head links its predecessor, and so on.
    let mut encoded = Vec::new();
    let mut prev: Option<(Digest, u64)> = None;
    for i in 0..400u64 {
        let payload = format!("event {i}").into_bytes();
        let event = match prev {
            None => Event::first(payload),
            Some((cid, seq)) => Event::after(cid, seq, payload).unwrap(),
        };
        let (cid, bytes) = event.to_node().unwrap().encode_with_cid().unwrap();
        encoded.push((cid, bytes));
        prev = Some((cid, i));
    }
    let head = encoded.last().unwrap().0;
    let stop = Arc::new(AtomicBool::new(false));
    let swept = Arc::new(AtomicU64::new(0));
    let collector = {
        let (node, stop, swept) = (node.clone(), stop.clone(), swept.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                swept.fetch_add(gc(&node, 3), Ordering::Relaxed);
            }
        })
    };
    // What a DAG sync does: tag the root, then store parents before children.
    node.tag(pin("fetching"), head);
    let mut loose = Vec::new();
    for (i, (cid, bytes)) in encoded.iter().rev().enumerate() {
        assert_eq!(node.put(bytes), *cid);
        // Untagged bystanders, to show GC is really running meanwhile.
        if i % 20 == 0 {
            loose.push(node.put(&blob(100, 1_000 + i as u64)));
        }
    }
    std::thread::sleep(std::time::Duration::from_millis(50));
    stop.store(true, Ordering::Relaxed);
    collector.join().unwrap();
    gc(&node, 50);
    for (cid, _) in &encoded {
        assert!(node.blobs().has(cid).unwrap(), "a chain node was collected");
    }
    assert!(loose.iter().all(|c| !node.blobs().has(c).unwrap()));
    assert!(swept.load(Ordering::Relaxed) > 0, "GC ran during the race");
}
