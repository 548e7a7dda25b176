//! Garbage collection: what it deletes, what it never deletes, in bounded
//! steps, and under races with puts, tags and partial downloads.

mod support;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use keyring_core::hash::Digest;
use keyring_core::verified::{outboard, Encoder, GroupRanges};
use keyring_store::{GcCursor, GcProgress, PartialOpen, WriteOp, WriteOutcome};
use support::{blob, files_under, pin, share, Node};

/// A cid and its bytes.
type Blob = (Digest, Vec<u8>);

/// Runs GC to the end in steps of `budget`; the steps' figures.
fn gc(node: &Node, budget: usize) -> Vec<GcProgress> {
    let mut cursor = GcCursor::Start;
    let mut steps = Vec::new();
    while cursor != GcCursor::Done {
        let WriteOutcome::Gc(p) = node.write(WriteOp::GcStep { cursor, budget }).unwrap() else {
            panic!()
        };
        cursor = p.next;
        steps.push(p);
    }
    steps
}

fn totals(steps: &[GcProgress]) -> (u64, u64, u64) {
    steps.iter().fold((0, 0, 0), |(b, p, o), s| {
        (b + s.blobs, p + s.partials, o + s.orphans)
    })
}

#[test]
fn gc_deletes_what_nothing_protects_and_keeps_pinned_and_shared_blobs() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::open(dir.path());
    let mut kept = Vec::new();
    let mut garbage = Vec::new();
    for i in 0..60u64 {
        let len = if i % 5 == 0 { 70_000 } else { 500 };
        let data = blob(len, i);
        match i % 3 {
            0 => garbage.push(node.put(&data)),
            1 => kept.push(node.put_tagged(&data, vec![pin(&format!("p{i}"))])),
            _ => kept.push(node.put_tagged(&data, vec![share(9, &format!("s{i}"))])),
        }
    }
    let steps = gc(&node, 7);
    assert!(steps.iter().all(|s| s.examined <= 256 + 7));
    assert!(steps.len() >= 60 / 7, "bounded steps: {}", steps.len());
    assert_eq!(totals(&steps).0, garbage.len() as u64);
    for cid in &garbage {
        assert!(!node.blobs().has(cid).unwrap());
    }
    for cid in &kept {
        assert_eq!(node.blobs().verify(cid).unwrap(), Some(true));
    }
    // The files of deleted large blobs are gone, the kept ones remain.
    let data_files = files_under(&dir.path().join("blobs"))
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "data"))
        .count();
    // 12 large blobs (i % 5 == 0), 4 of them garbage (i % 3 == 0 too).
    assert_eq!(data_files, 8);
    let stats = node.store.committer().stats();
    assert_eq!(stats.gc_blobs.load(Ordering::Relaxed), garbage.len() as u64);
    assert!(stats.gc_bytes.load(Ordering::Relaxed) >= 4 * 70_000);
}

#[test]
fn gc_removes_files_left_by_a_crash_and_only_those() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::open(dir.path());
    let kept = node.put_tagged(&blob(100_000, 1), vec![pin("k")]);
    let shard = dir.path().join("blobs").join("ab");
    let orphan = shard.join(format!("{}.data", "ab".repeat(32)));
    std::fs::write(&orphan, b"renamed but never committed").unwrap();
    let stray_partial =
        dir.path()
            .join("partial")
            .join(format!("{}-{:016x}.data", "cd".repeat(32), 99));
    std::fs::write(&stray_partial, b"x").unwrap();
    let unrelated = shard.join("README");
    std::fs::write(&unrelated, b"not ours").unwrap();
    let steps = gc(&node, 100);
    assert_eq!(totals(&steps).2, 2);
    assert!(!orphan.exists() && !stray_partial.exists());
    assert!(unrelated.exists(), "names that are not ours are left alone");
    assert_eq!(node.blobs().verify(&kept).unwrap(), Some(true));
}

#[test]
fn a_blob_tagged_before_it_is_put_is_never_collected() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::open(dir.path());
    let data = blob(40_000, 3);
    let cid = keyring_core::hash::digest(&data);
    node.tag(pin("wanted"), cid);
    gc(&node, 10);
    node.put(&data);
    gc(&node, 10);
    assert_eq!(node.blobs().verify(&cid).unwrap(), Some(true));
}

/// The iroh-blobs#247 race, and its relatives: puts, tags, untags and
/// partial downloads run while GC runs again and again. Whatever a tag
/// protects when GC looks, and whatever a partial writer holds, survives.
#[test]
fn gc_never_deletes_a_protected_blob_under_racing_puts_tags_and_partial_writes() {
    let dir = tempfile::tempdir().unwrap();
    let node = Arc::new(Node::open(dir.path()));
    let stop = Arc::new(AtomicBool::new(false));
    let protected: Arc<Mutex<Vec<Blob>>> = Arc::default();
    let deadline = Instant::now() + Duration::from_secs(6);
    let mut threads = Vec::new();

    // Atomic put + pin, small and large.
    {
        let (node, stop, protected) =
            (Arc::clone(&node), Arc::clone(&stop), Arc::clone(&protected));
        threads.push(std::thread::spawn(move || {
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let data = blob(if i % 4 == 0 { 50_000 } else { 3000 }, 1_000_000 + i);
                let cid = node.put_tagged(&data, vec![pin(&format!("a{i}"))]);
                protected.lock().unwrap().push((cid, data));
                i += 1;
            }
        }));
    }
    // Tag first, then put: protected from before it exists.
    {
        let (node, stop, protected) =
            (Arc::clone(&node), Arc::clone(&stop), Arc::clone(&protected));
        threads.push(std::thread::spawn(move || {
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let data = blob(if i % 3 == 0 { 33_000 } else { 900 }, 2_000_000 + i);
                let cid = keyring_core::hash::digest(&data);
                node.tag(share(7, &format!("b{i}")), cid);
                node.put(&data);
                protected.lock().unwrap().push((cid, data));
                i += 1;
            }
        }));
    }
    // Garbage, and blobs that lose their tag: GC has real work.
    {
        let (node, stop) = (Arc::clone(&node), Arc::clone(&stop));
        threads.push(std::thread::spawn(move || {
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let cid =
                    node.put_tagged(&blob(20_000, 3_000_000 + i), vec![pin(&format!("c{i}"))]);
                node.put(&blob(1000, 4_000_000 + i));
                node.write(WriteOp::DeleteTag {
                    tag: pin(&format!("c{i}")),
                    cid: Some(cid),
                })
                .unwrap();
                i += 1;
            }
        }));
    }
    // Partial downloads held open while GC runs, completed later.
    let partial_done: Arc<Mutex<Vec<Blob>>> = Arc::default();
    {
        let (node, stop, done) = (
            Arc::clone(&node),
            Arc::clone(&stop),
            Arc::clone(&partial_done),
        );
        threads.push(std::thread::spawn(move || {
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let data = blob(300_000, 5_000_000 + i);
                let (root, ob) = outboard(&data);
                let PartialOpen::Writer(mut w) =
                    node.store.partial(root, data.len() as u64, true).unwrap()
                else {
                    panic!("new blob reported complete")
                };
                let groups = w.tree().groups();
                for g in 0..groups {
                    let ranges = GroupRanges::from(g..g + 1);
                    let stream = Encoder::new(root, data.len() as u64, &ranges)
                        .encode_all(&data, &ob)
                        .unwrap();
                    w.write_stream(ranges, &stream).unwrap();
                    if g % 5 == 4 {
                        w.save().unwrap();
                        std::thread::sleep(Duration::from_millis(2));
                    }
                }
                // Pin before the writer (and its hold) goes away.
                node.tag(pin(&format!("d{i}")), root);
                assert_eq!(w.complete().unwrap(), root);
                done.lock().unwrap().push((root, data));
                i += 1;
            }
        }));
    }
    // GC, over and over, in small steps.
    let mut runs = 0;
    while Instant::now() < deadline {
        gc(&node, 13);
        runs += 1;
    }
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
    gc(&node, 13);
    let protected = protected.lock().unwrap();
    let partial_done = partial_done.lock().unwrap();
    assert!(
        runs > 3 && protected.len() > 50 && !partial_done.is_empty(),
        "runs {runs}, protected {}, partial {}",
        protected.len(),
        partial_done.len()
    );
    let mut seen = HashSet::new();
    for (cid, data) in protected.iter().chain(partial_done.iter()) {
        if seen.insert(*cid) {
            assert_eq!(
                node.blobs().get(cid, true).unwrap().as_deref(),
                Some(&data[..]),
                "a protected blob was collected"
            );
        }
    }
    let gc_blobs = node
        .store
        .committer()
        .stats()
        .gc_blobs
        .load(Ordering::Relaxed);
    assert!(gc_blobs > 0, "GC had garbage to collect");
    assert_eq!(node.blobs().stats().unwrap().partials, 0);
}
