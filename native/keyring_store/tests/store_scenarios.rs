//! Scenario tests for the blob store: small and large blobs, group commit,
//! reads, refs, the files beside the index.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use keyring_core::hash::digest;
use keyring_core::verified::outboard;
use keyring_store::{
    BlobStore, ChannelReply, Committer, OpenBlob, ReadPool, ReadReply, StoreError, WriteOp,
    WriteOutcome, INLINE_MAX,
};
use support::{blob, files_under, Node};

#[test]
fn put_get_roundtrip_and_cid_is_blake3() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::open(dir.path());
    let cid = node.put(b"hello");
    assert_eq!(cid, digest(b"hello"));
    assert_eq!(node.blobs().get(&cid, true).unwrap().unwrap(), b"hello");
    assert!(node.blobs().has(&cid).unwrap());
    assert_eq!(node.blobs().get(&digest(b"other"), false).unwrap(), None);
}

#[test]
fn puts_are_idempotent_and_counted_once() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::open(dir.path());
    node.put(b"same");
    node.put(b"same");
    node.put(b"");
    let big = blob(100_000, 1);
    node.put(&big);
    node.put(&big);
    let stats = node.blobs().stats().unwrap();
    assert_eq!((stats.blobs, stats.bytes), (3, 4 + 100_000));
    assert_eq!(node.blobs().get(&digest(b""), true).unwrap().unwrap(), b"");
}

#[test]
fn a_large_blob_is_a_0600_file_with_its_outboard_and_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::open(dir.path());
    for len in [INLINE_MAX + 1, 1 << 20, 5 << 20] {
        let data = blob(len, len as u64);
        let cid = node.put(&data);
        assert_eq!(cid, digest(&data));
        assert_eq!(node.blobs().get(&cid, true).unwrap().unwrap(), data);
        assert_eq!(node.blobs().verify(&cid).unwrap(), Some(true));
        let file = dir
            .path()
            .join("blobs")
            .join(format!("{:02x}", cid[0]))
            .join(format!("{}.data", keyring_store::layout::hex(&cid)));
        let meta = std::fs::metadata(&file).unwrap();
        assert_eq!(meta.len(), len as u64);
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        let open = node.blobs().open_blob(&cid, false).unwrap().unwrap();
        let (_, ob) = outboard(&data);
        for slot in [0, ob.len() as u64 / 64 - 1] {
            assert_eq!(
                &open.pair(slot).unwrap()[..],
                &ob[slot as usize * 64..][..64]
            );
        }
        // Outboards over 16 KiB (blobs over ~4 MiB) get a file of their own.
        let ob_file = file.with_extension("obao");
        assert_eq!(ob_file.exists(), ob.len() > 16 * 1024, "len {len}");
    }
    let mode = std::fs::metadata(dir.path()).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700);
    let mode = std::fs::metadata(dir.path().join(BlobStore::FILE_NAME))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn streamed_and_imported_blobs_never_need_the_whole_blob_in_memory() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::open(dir.path());
    let mut writer = node.store.writer().unwrap();
    let piece = blob(100_000, 3);
    let mut whole = Vec::new();
    for _ in 0..30 {
        writer.write(&piece).unwrap();
        whole.extend_from_slice(&piece);
    }
    let (tx, rx) = mpsc::sync_channel(1);
    node.store
        .finish_writer(writer, vec![], Box::new(ChannelReply(tx)))
        .map_err(|(e, _)| e)
        .unwrap();
    let WriteOutcome::Stored(cid) = rx.recv().unwrap().unwrap() else {
        panic!()
    };
    assert_eq!(cid, digest(&whole));
    assert_eq!(node.blobs().get(&cid, true).unwrap().unwrap(), whole);

    let source = dir.path().join("source");
    let data = blob(3 << 20, 4);
    std::fs::write(&source, &data).unwrap();
    let (tx, rx) = mpsc::sync_channel(1);
    node.store
        .import_file(source.clone(), vec![], Box::new(ChannelReply(tx)))
        .map_err(|(e, _)| e)
        .unwrap();
    assert_eq!(
        rx.recv().unwrap().unwrap(),
        WriteOutcome::Stored(digest(&data))
    );
    assert_eq!(node.blobs().verify(&digest(&data)).unwrap(), Some(true));

    let (tx, rx) = mpsc::sync_channel(1);
    node.store
        .import_file(
            dir.path().join("missing"),
            vec![],
            Box::new(ChannelReply(tx)),
        )
        .map_err(|(e, _)| e)
        .unwrap();
    assert!(matches!(rx.recv().unwrap(), Err(StoreError::Io(msg)) if msg.contains("missing")));
    assert_eq!(
        std::fs::read_dir(node.blobs().tmp_dir()).unwrap().count(),
        0,
        "temporary files removed after commit"
    );
}

#[test]
fn a_small_streamed_blob_is_stored_inline() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::open(dir.path());
    let mut writer = node.store.writer().unwrap();
    writer.write(b"tiny").unwrap();
    let (tx, rx) = mpsc::sync_channel(1);
    node.store
        .finish_writer(writer, vec![], Box::new(ChannelReply(tx)))
        .map_err(|(e, _)| e)
        .unwrap();
    assert_eq!(
        rx.recv().unwrap().unwrap(),
        WriteOutcome::Stored(digest(b"tiny"))
    );
    let data_files = files_under(&dir.path().join("blobs")).len();
    assert_eq!(data_files, 0);
}

#[test]
fn delete_removes_the_blob_and_its_files() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::open(dir.path());
    let data = blob(6 << 20, 5);
    let cid = node.put(&data);
    assert_eq!(files_under(&dir.path().join("blobs")).len(), 2);
    // A reader that opened the blob before the delete still reads it whole.
    let open = node.blobs().open_blob(&cid, true).unwrap().unwrap();
    assert_eq!(
        node.write(WriteOp::Delete(cid)).unwrap(),
        WriteOutcome::Deleted(true)
    );
    assert_eq!(
        node.write(WriteOp::Delete(cid)).unwrap(),
        WriteOutcome::Deleted(false)
    );
    assert!(!node.blobs().has(&cid).unwrap());
    assert!(node.blobs().open_blob(&cid, false).unwrap().is_none());
    assert_eq!(node.blobs().stats().unwrap().blobs, 0);
    assert_eq!(files_under(&dir.path().join("blobs")).len(), 0);
    let mut buf = vec![0; data.len()];
    open.read_into(&mut buf).unwrap();
    assert_eq!(buf, data);
}

#[test]
fn a_delete_and_a_put_of_the_same_blob_in_one_batch_keep_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let node = Arc::new(Node::open(dir.path()));
    let data = blob(200_000, 6);
    let cid = node.put(&data);
    for round in 0..20 {
        let (tx, rx) = mpsc::sync_channel(2);
        node.store
            .submit(WriteOp::Delete(cid), Box::new(ChannelReply(tx.clone())))
            .map_err(|(e, _)| e)
            .unwrap();
        node.store
            .put(Box::new(data.clone()), vec![], Box::new(ChannelReply(tx)))
            .map_err(|(e, _)| e)
            .unwrap();
        rx.recv().unwrap().unwrap();
        rx.recv().unwrap().unwrap();
        // Whatever the order the two landed in, a present record has its file.
        if node.blobs().has(&cid).unwrap() {
            assert_eq!(
                node.blobs().verify(&cid).unwrap(),
                Some(true),
                "round {round}"
            );
        } else {
            node.put(&data);
        }
    }
}

#[test]
fn listing_pages_in_cid_order() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::open(dir.path());
    let mut cids: Vec<_> = (0..25u32).map(|i| node.put(&i.to_be_bytes())).collect();
    cids.push(node.put(&blob(40_000, 7)));
    cids.sort();
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = node.blobs().list_after(cursor.as_ref(), 10).unwrap();
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
    assert_eq!(node.blobs().get_ref(b"log/a").unwrap(), Some(b"1".to_vec()));
    assert_eq!(node.blobs().list_refs(b"log/", 10).unwrap().len(), 2);
    assert_eq!(
        node.write(WriteOp::DeleteRef(b"log/a".to_vec())).unwrap(),
        WriteOutcome::RefDeleted(true)
    );
    assert_eq!(node.blobs().get_ref(b"log/a").unwrap(), None);
    let too_big = node.write(WriteOp::PutRef {
        name: vec![b'x'; 2000],
        value: vec![],
    });
    assert_eq!(too_big, Err(StoreError::TooLarge("ref name")));
}

#[test]
fn data_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let big = blob(2 << 20, 8);
    let (small, large) = {
        let node = Node::open(dir.path());
        (node.put(b"durable"), node.put(&big))
    };
    let node = Node::open(dir.path());
    assert_eq!(node.blobs().get(&small, true).unwrap().unwrap(), b"durable");
    assert_eq!(node.blobs().get(&large, true).unwrap().unwrap(), big);
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
                    // Every tenth one is large: files and inline blobs mix.
                    let len = if i % 10 == 0 { 40_000 } else { 1024 };
                    let mut data = vec![0u8; len];
                    data[..8].copy_from_slice(&((t as u64) << 32 | i as u64).to_be_bytes());
                    node.put(&data);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let stats = node.store.committer().stats();
    let commits = stats.commits.load(std::sync::atomic::Ordering::Relaxed);
    let writes = stats.writes.load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(writes, 1600);
    assert!(
        commits < writes,
        "group commit batches writes ({commits} commits for {writes} writes)"
    );
    assert_eq!(node.blobs().stats().unwrap().blobs, 1600);
}

#[test]
fn full_queue_answers_busy_and_returns_the_reply() {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open(dir.path()).unwrap();
    let committer = Committer::start(&store, 1).unwrap();
    let (tx, rx) = mpsc::sync_channel(1000);
    let mut busy = 0;
    for i in 0..200u32 {
        let op = WriteOp::Put {
            payload: Box::new(blob(8000, u64::from(i))),
            tags: vec![],
        };
        if let Err((e, _reply)) = committer.submit(op, Box::new(ChannelReply(tx.clone()))) {
            assert_eq!(e, StoreError::Busy);
            busy += 1;
        }
    }
    assert!(busy > 0);
    committer.close();
    drop(tx);
    assert!(rx.iter().all(|r| r.is_ok()));
    let op = WriteOp::Put {
        payload: Box::new(b"late".to_vec()),
        tags: vec![],
    };
    let (tx, _rx) = mpsc::sync_channel(1);
    assert!(matches!(
        committer.submit(op, Box::new(ChannelReply(tx))),
        Err((StoreError::Closed, _))
    ));
}

struct ChanRead(mpsc::Sender<Result<Option<Vec<u8>>, StoreError>>);

impl ReadReply for ChanRead {
    fn send(self: Box<Self>, result: Result<Option<OpenBlob>, StoreError>) {
        let read = result.and_then(|open| {
            open.map(|blob| {
                let mut buf = vec![0; blob.size() as usize];
                blob.read_into(&mut buf).map(|()| buf)
            })
            .transpose()
        });
        let _ = self.0.send(read);
    }
}

#[test]
fn reader_pool_answers_every_read_and_close_drains_its_queue() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::open(dir.path());
    let cid = node.put(b"pooled");
    let big = blob(300_000, 9);
    let big_cid = node.put(&big);
    let pool = ReadPool::start(node.blobs(), 2, 64).unwrap();
    let (tx, rx) = mpsc::channel();
    for _ in 0..50 {
        assert!(pool
            .submit(cid, true, Box::new(ChanRead(tx.clone())))
            .is_ok());
    }
    assert!(pool
        .submit(big_cid, true, Box::new(ChanRead(tx.clone())))
        .is_ok());
    assert!(pool
        .submit(digest(b"absent"), false, Box::new(ChanRead(tx.clone())))
        .is_ok());
    pool.close();
    let results: Vec<_> = rx.try_iter().collect();
    assert_eq!(results.len(), 52);
    let found = results
        .iter()
        .filter(|r| matches!(r, Ok(Some(b)) if b == b"pooled"))
        .count();
    assert_eq!(found, 50);
    assert!(results.contains(&Ok(Some(big))));
    assert!(results.contains(&Ok(None)));
    let (e, _) = pool
        .submit(cid, false, Box::new(ChanRead(tx)))
        .err()
        .unwrap();
    assert_eq!(e, StoreError::Closed);
}

#[test]
fn full_reader_queue_answers_busy_and_returns_the_reply() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::open(dir.path());
    let pool = ReadPool::start(node.blobs(), 1, 1).unwrap();
    let (tx, _rx) = mpsc::channel();
    // One thread, one slot: submitting faster than it reads must hit Busy.
    let busy = (0..10_000).find_map(|_| {
        pool.submit([1; 32], false, Box::new(ChanRead(tx.clone())))
            .err()
    });
    assert!(matches!(busy, Some((StoreError::Busy, _))));
    pool.close();
}

#[test]
fn deleted_blob_is_not_served_from_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::open(dir.path());
    let cid = node.put(b"soon gone");
    assert!(node.blobs().get_cached(&cid).is_none());
    assert_eq!(
        node.blobs().get(&cid, false).unwrap().unwrap(),
        b"soon gone"
    );
    assert_eq!(&*node.blobs().get_cached(&cid).unwrap(), b"soon gone");
    assert_eq!(
        node.write(WriteOp::Delete(cid)).unwrap(),
        WriteOutcome::Deleted(true)
    );
    assert!(node.blobs().get_cached(&cid).is_none());
    assert_eq!(node.blobs().get(&cid, false).unwrap(), None);
}

#[test]
fn files_are_linked_only_by_the_writer_so_nothing_is_left_in_tmp() {
    let dir = tempfile::tempdir().unwrap();
    let node = Arc::new(Node::open(dir.path()));
    let threads: Vec<_> = (0..4u64)
        .map(|t| {
            let node = Arc::clone(&node);
            std::thread::spawn(move || {
                for i in 0..10 {
                    node.put(&blob(50_000 + i, t * 100 + i as u64));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(
        std::fs::read_dir(node.blobs().tmp_dir()).unwrap().count(),
        0
    );
    let data = files_under(&dir.path().join("blobs"))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "data"))
        .count();
    assert_eq!(data, 40);
}
