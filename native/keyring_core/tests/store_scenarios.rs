//! Scenario tests for the blob store and its group commit.

use std::path::Path;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use keyring_core::hash::digest;
use keyring_core::store::{
    BlobStore, BlobWriter, Committer, ReadPool, ReadReply, StoreError, WriteOp, WriteOutcome,
    WriteReply, CHUNK_SIZE,
};

struct ChanReply(mpsc::Sender<Result<WriteOutcome, StoreError>>);

impl WriteReply for ChanReply {
    fn send(self, result: Result<WriteOutcome, StoreError>) {
        let _ = self.0.send(result);
    }
}

struct Node {
    store: BlobStore,
    committer: Committer<ChanReply>,
}

impl Node {
    fn open(dir: &Path) -> Self {
        let store = BlobStore::open(dir).unwrap();
        let committer = Committer::start(&store, 1024).unwrap();
        Self { store, committer }
    }

    fn write(&self, op: WriteOp) -> Result<WriteOutcome, StoreError> {
        let (tx, rx) = mpsc::channel();
        self.committer
            .submit(op, ChanReply(tx))
            .map_err(|(e, _)| e)
            .unwrap();
        rx.recv_timeout(Duration::from_secs(30)).unwrap()
    }

    fn put(&self, data: &[u8]) -> [u8; 32] {
        match self.write(WriteOp::Put(Box::new(data.to_vec()))).unwrap() {
            WriteOutcome::Stored(cid) => cid,
            other => panic!("unexpected {other:?}"),
        }
    }
}

#[test]
fn put_get_roundtrip_and_cid_is_blake3() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::open(dir.path());
    let cid = node.put(b"hello");
    assert_eq!(cid, digest(b"hello"));
    assert_eq!(node.store.get(&cid, true).unwrap().unwrap(), b"hello");
    assert!(node.store.has(&cid).unwrap());
    assert_eq!(node.store.get(&digest(b"other"), false).unwrap(), None);
}

#[test]
fn puts_are_idempotent_and_counted_once() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::open(dir.path());
    node.put(b"same");
    node.put(b"same");
    node.put(b"");
    let stats = node.store.stats().unwrap();
    assert_eq!((stats.blobs, stats.bytes), (2, 4));
    assert_eq!(node.store.get(&digest(b""), true).unwrap().unwrap(), b"");
}

#[test]
fn large_blob_spans_chunks_and_reads_back_by_chunk() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::open(dir.path());
    let data: Vec<u8> = (0..(CHUNK_SIZE * 3 + 17))
        .map(|i| (i % 253) as u8)
        .collect();
    let cid = node.put(&data);
    assert_eq!(node.store.get(&cid, true).unwrap().unwrap(), data);
    let mut joined = Vec::new();
    let mut i = 0;
    while let Some(chunk) = node.store.read_chunk(&cid, i).unwrap() {
        joined.extend(chunk);
        i += 1;
    }
    assert_eq!(i, 4);
    assert_eq!(joined, data);
    assert_eq!(node.store.verify(&cid).unwrap(), Some(true));
}

#[test]
fn streamed_import_never_needs_the_whole_blob() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::open(dir.path());
    let mut writer = BlobWriter::create(node.store.tmp_dir()).unwrap();
    let piece = vec![7u8; 100_000];
    let mut whole = Vec::new();
    for _ in 0..30 {
        writer.write(&piece).unwrap();
        whole.extend_from_slice(&piece);
    }
    let op = writer.finish().unwrap();
    let WriteOutcome::Stored(cid) = node.write(op).unwrap() else {
        panic!()
    };
    assert_eq!(cid, digest(&whole));
    assert_eq!(node.store.get(&cid, true).unwrap().unwrap(), whole);
    assert_eq!(
        std::fs::read_dir(node.store.tmp_dir()).unwrap().count(),
        0,
        "temporary file removed after commit"
    );
}

#[test]
fn delete_removes_blob_and_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::open(dir.path());
    let data = vec![1u8; CHUNK_SIZE + 1];
    let cid = node.put(&data);
    assert_eq!(
        node.write(WriteOp::Delete(cid)).unwrap(),
        WriteOutcome::Deleted(true)
    );
    assert_eq!(
        node.write(WriteOp::Delete(cid)).unwrap(),
        WriteOutcome::Deleted(false)
    );
    assert!(!node.store.has(&cid).unwrap());
    assert_eq!(node.store.read_chunk(&cid, 0).unwrap(), None);
    assert_eq!(node.store.stats().unwrap().blobs, 0);
}

#[test]
fn listing_pages_in_cid_order() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::open(dir.path());
    let mut cids: Vec<_> = (0..25u32).map(|i| node.put(&i.to_be_bytes())).collect();
    cids.sort();
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = node.store.list_after(cursor.as_ref(), 10).unwrap();
        if page.is_empty() {
            break;
        }
        cursor = page.last().copied();
        seen.extend(page);
    }
    assert_eq!(seen, cids);
}

#[test]
fn refs_set_get_list_delete_with_limits() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::open(dir.path());
    let set = |n: &str, v: &str| {
        node.write(WriteOp::PutRef {
            name: n.into(),
            value: v.into(),
        })
    };
    set("log/a", "1").unwrap();
    set("log/b", "2").unwrap();
    set("other", "3").unwrap();
    assert_eq!(node.store.get_ref(b"log/a").unwrap(), Some(b"1".to_vec()));
    let listed = node.store.list_refs(b"log/", 10).unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(
        node.write(WriteOp::DeleteRef(b"log/a".to_vec())).unwrap(),
        WriteOutcome::RefDeleted(true)
    );
    assert_eq!(node.store.get_ref(b"log/a").unwrap(), None);
    let too_big = node.write(WriteOp::PutRef {
        name: vec![b'x'; 2000],
        value: vec![],
    });
    assert_eq!(too_big, Err(StoreError::TooLarge("ref name")));
}

#[test]
fn data_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let cid = {
        let node = Node::open(dir.path());
        let cid = node.put(b"durable");
        node.committer.close();
        cid
    };
    let node = Node::open(dir.path());
    assert_eq!(node.store.get(&cid, true).unwrap().unwrap(), b"durable");
}

#[test]
fn second_open_of_the_same_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let _first = Node::open(dir.path());
    assert_eq!(
        BlobStore::open(dir.path()).unwrap_err(),
        StoreError::AlreadyOpen
    );
}

#[test]
fn garbage_database_file_is_reported_as_corrupted() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(BlobStore::FILE_NAME), vec![0xAB; 64 * 1024]).unwrap();
    match BlobStore::open(dir.path()) {
        Err(StoreError::Corrupted(_)) | Err(StoreError::Io(_)) => {}
        other => panic!("expected a corruption error, got {other:?}"),
    }
}

#[test]
fn concurrent_writers_share_commits() {
    let dir = tempfile::tempdir().unwrap();
    let node = Arc::new(Node::open(dir.path()));
    let threads: Vec<_> = (0..32u32)
        .map(|t| {
            let node = Arc::clone(&node);
            std::thread::spawn(move || {
                for i in 0..50u32 {
                    let mut data = vec![0u8; 1024];
                    data[..8].copy_from_slice(&((t as u64) << 32 | i as u64).to_be_bytes());
                    node.put(&data);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let stats = node.committer.stats();
    let commits = stats.commits.load(std::sync::atomic::Ordering::Relaxed);
    let writes = stats.writes.load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(writes, 1600);
    assert!(
        commits < writes,
        "group commit batches writes ({commits} commits for {writes} writes)"
    );
    assert_eq!(node.store.stats().unwrap().blobs, 1600);
}

#[test]
fn full_queue_answers_busy_and_returns_the_reply() {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open(dir.path()).unwrap();
    let committer: Committer<ChanReply> = Committer::start(&store, 1).unwrap();
    let (tx, rx) = mpsc::channel();
    let mut busy = 0;
    for i in 0..200u32 {
        let op = WriteOp::Put(Box::new(
            vec![0u8; 64 * 1024]
                .into_iter()
                .chain(i.to_be_bytes())
                .collect::<Vec<u8>>(),
        ));
        if let Err((e, _reply)) = committer.submit(op, ChanReply(tx.clone())) {
            assert_eq!(e, StoreError::Busy);
            busy += 1;
        }
    }
    assert!(busy > 0);
    committer.close();
    drop(tx);
    assert!(rx.iter().all(|r| r.is_ok()));
    let op = WriteOp::Put(Box::new(b"late".to_vec()));
    let (tx, _rx) = mpsc::channel();
    assert!(matches!(
        committer.submit(op, ChanReply(tx)),
        Err((StoreError::Closed, _))
    ));
}

struct ChanRead(mpsc::Sender<Result<Option<Vec<u8>>, StoreError>>);

impl ReadReply for ChanRead {
    fn send(self, result: Result<Option<Vec<u8>>, StoreError>) {
        let _ = self.0.send(result);
    }
}

#[test]
fn reader_pool_answers_every_read_and_close_drains_its_queue() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::open(dir.path());
    let cid = node.put(b"pooled");
    let pool = ReadPool::start(&node.store, 2, 64).unwrap();
    let (tx, rx) = mpsc::channel();
    for _ in 0..50 {
        assert!(pool.submit(cid, true, ChanRead(tx.clone())).is_ok());
    }
    assert!(pool
        .submit(digest(b"absent"), false, ChanRead(tx.clone()))
        .is_ok());
    pool.close();
    let results: Vec<_> = rx.try_iter().collect();
    assert_eq!(results.len(), 51);
    let found = results
        .iter()
        .filter(|r| matches!(r, Ok(Some(b)) if b == b"pooled"))
        .count();
    assert_eq!(found, 50);
    assert!(results.contains(&Ok(None)));
    let (e, _) = pool.submit(cid, false, ChanRead(tx)).err().unwrap();
    assert_eq!(e, StoreError::Closed);
}

#[test]
fn full_reader_queue_answers_busy_and_returns_the_reply() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::open(dir.path());
    let pool = ReadPool::start(&node.store, 1, 1).unwrap();
    let (tx, _rx) = mpsc::channel();
    // One thread, one slot: submitting faster than it reads must hit Busy.
    let busy = (0..10_000).find_map(|_| pool.submit([1; 32], false, ChanRead(tx.clone())).err());
    assert!(matches!(busy, Some((StoreError::Busy, _))));
    pool.close();
}

#[test]
fn deleted_blob_is_not_served_from_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::open(dir.path());
    let cid = node.put(b"soon gone");
    assert!(node.store.get_cached(&cid).is_none());
    assert_eq!(node.store.get(&cid, false).unwrap().unwrap(), b"soon gone");
    assert_eq!(&*node.store.get_cached(&cid).unwrap(), b"soon gone");
    assert_eq!(
        node.write(WriteOp::Delete(cid)).unwrap(),
        WriteOutcome::Deleted(true)
    );
    assert!(node.store.get_cached(&cid).is_none());
    assert_eq!(node.store.get(&cid, false).unwrap(), None);
}
