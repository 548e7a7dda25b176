//! The store under failure: tampered bytes on disk, missing files and a
//! full disk.

mod support;

use std::sync::atomic::{AtomicU64, Ordering};

use keyring_core::hash::digest;
use keyring_core::verified::{Decoder, GroupRanges};
use keyring_store::{BlobStore, Store, StoreConfig, StoreError, WriteOutcome};
use redb::backends::InMemoryBackend;
use redb::{StorageBackend, TableDefinition};
use support::{blob, Node};

fn put(store: &Store, data: Vec<u8>) -> Result<WriteOutcome, StoreError> {
    store.put_bytes(data, vec![]).map(WriteOutcome::Stored)
}

#[test]
fn a_tampered_inline_blob_is_caught_by_verify_and_verified_get() {
    let dir = tempfile::tempdir().unwrap();
    let cid = Node::open(dir.path()).put(b"precious bytes");
    {
        // Flip the stored bytes behind the store's back. Small blobs live
        // inline in their record: kind 0, size (u64 BE), bytes.
        const BLOBS: TableDefinition<'_, &[u8], &[u8]> = TableDefinition::new("blobs");
        let db = redb::Database::open(dir.path().join(BlobStore::FILE_NAME)).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut blobs = txn.open_table(BLOBS).unwrap();
            let mut record = vec![0u8];
            record.extend_from_slice(&14u64.to_be_bytes());
            record.extend_from_slice(b"precious bytez");
            blobs.insert(cid.as_slice(), record.as_slice()).unwrap();
        }
        txn.commit().unwrap();
    }
    let store = BlobStore::open(dir.path()).unwrap();
    assert_eq!(store.verify(&cid).unwrap(), Some(false));
    assert_eq!(store.get(&cid, true), Err(StoreError::ContentMismatch));
    assert_eq!(
        store.get(&cid, false).unwrap().unwrap(),
        b"precious bytez",
        "unverified reads return what is stored"
    );
    assert_ne!(digest(b"precious bytez"), cid);
}

/// An in-memory disk that refuses to grow past `limit` bytes.
#[derive(Debug)]
struct SmallDisk {
    inner: InMemoryBackend,
    limit: u64,
    len: AtomicU64,
}

fn full() -> std::io::Error {
    std::io::Error::from(std::io::ErrorKind::StorageFull)
}

impl StorageBackend for SmallDisk {
    fn len(&self) -> Result<u64, std::io::Error> {
        self.inner.len()
    }
    fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), std::io::Error> {
        self.inner.read(offset, out)
    }
    fn set_len(&self, len: u64) -> Result<(), std::io::Error> {
        if len > self.limit {
            return Err(full());
        }
        self.len.store(len, Ordering::Relaxed);
        self.inner.set_len(len)
    }
    fn sync_data(&self) -> Result<(), std::io::Error> {
        self.inner.sync_data()
    }
    fn write(&self, offset: u64, data: &[u8]) -> Result<(), std::io::Error> {
        if offset + data.len() as u64 > self.limit {
            return Err(full());
        }
        self.inner.write(offset, data)
    }
}

#[test]
fn full_disk_gives_no_space_and_keeps_acknowledged_blobs() {
    let tmp = tempfile::tempdir().unwrap();
    let disk = SmallDisk {
        inner: InMemoryBackend::new(),
        limit: 4 * 1024 * 1024,
        len: AtomicU64::new(0),
    };
    let blobs = BlobStore::open_with_backend(disk, tmp.path()).unwrap();
    let store = Store::start(blobs.clone(), &StoreConfig::default()).unwrap();
    let mut acked = Vec::new();
    let mut error = None;
    for i in 0..1000u32 {
        // Inline-sized, so they fill the index's (small) disk.
        let mut data = vec![0u8; 12 * 1024];
        data[..4].copy_from_slice(&i.to_be_bytes());
        match put(&store, data) {
            Ok(WriteOutcome::Stored(cid)) => acked.push(cid),
            Ok(other) => panic!("unexpected {other:?}"),
            Err(e) => {
                error = Some(e);
                break;
            }
        }
    }
    assert_eq!(error, Some(StoreError::NoSpace));
    assert!(!acked.is_empty());
    for cid in &acked {
        match blobs.get(cid, true) {
            Ok(Some(_)) => {}
            // redb refuses all further I/O after a failed write until reopened;
            // that is an error, never wrong data.
            Err(StoreError::Io(_)) => {}
            other => panic!("acknowledged blob unreadable: {other:?}"),
        }
    }
    store.close();
}

/// Flips one byte of a blob's file on disk.
fn flip(dir: &std::path::Path, cid: &[u8; 32], at: u64) {
    use std::os::unix::fs::FileExt;
    let path = dir
        .join("blobs")
        .join(format!("{:02x}", cid[0]))
        .join(format!("{}.data", keyring_store::layout::hex(cid)));
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut b = [0u8; 1];
    f.read_exact_at(&mut b, at).unwrap();
    f.write_all_at(&[b[0] ^ 0x40], at).unwrap();
}

#[test]
fn a_tampered_blob_file_is_caught_and_never_served() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::open(dir.path());
    let data = blob(300_000, 1);
    let cid = node.put(&data);
    flip(dir.path(), &cid, 200_000);
    assert_eq!(node.blobs().verify(&cid).unwrap(), Some(false));
    assert_eq!(
        node.blobs().get(&cid, true),
        Err(StoreError::ContentMismatch)
    );
    let open = node.blobs().open_blob(&cid, false).unwrap().unwrap();
    // Serving checks every group before it goes out: the groups before the
    // damaged one are served, the damaged one is refused.
    let mut out = Vec::new();
    assert_eq!(
        open.write_verified(&GroupRanges::all(), &mut out),
        Err(StoreError::ContentMismatch)
    );
    let got = Decoder::new(cid, GroupRanges::all(), None).decode_all(&out);
    assert!(got.is_err(), "a stream cut at the damage is incomplete");
    // Groups away from the damage are still served and verify.
    let mut out = Vec::new();
    open.write_verified(&GroupRanges::from(0..5), &mut out)
        .unwrap();
    let groups = Decoder::new(cid, GroupRanges::from(0..5), None)
        .decode_all(&out)
        .unwrap();
    assert_eq!(groups.len(), 5);
    assert_eq!(groups[4].1, &data[4 * 16384..5 * 16384]);
}

#[test]
fn a_missing_blob_file_is_reported_as_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::open(dir.path());
    let cid = node.put(&blob(100_000, 2));
    let path = dir
        .path()
        .join("blobs")
        .join(format!("{:02x}", cid[0]))
        .join(format!("{}.data", keyring_store::layout::hex(&cid)));
    std::fs::remove_file(path).unwrap();
    assert!(matches!(
        node.blobs().get(&cid, false),
        Err(StoreError::Corrupted(_))
    ));
    assert_eq!(node.blobs().verify(&cid).unwrap(), Some(false));
    let _ = digest(b"");
}
