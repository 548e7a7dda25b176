//! The store under failure: tampered bytes on disk and a full disk.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use keyring_core::hash::digest;
use keyring_core::store::{BlobStore, Committer, StoreError, WriteOp, WriteOutcome, WriteReply};
use redb::backends::InMemoryBackend;
use redb::{StorageBackend, TableDefinition};

struct ChanReply(mpsc::Sender<Result<WriteOutcome, StoreError>>);

impl WriteReply for ChanReply {
    fn send(self, result: Result<WriteOutcome, StoreError>) {
        let _ = self.0.send(result);
    }
}

fn put(c: &Committer<ChanReply>, data: Vec<u8>) -> Result<WriteOutcome, StoreError> {
    let (tx, rx) = mpsc::channel();
    c.submit(WriteOp::Put(Box::new(data)), ChanReply(tx))
        .map_err(|(e, _)| e)?;
    rx.recv_timeout(Duration::from_secs(30)).unwrap()
}

#[test]
fn tampered_chunk_is_caught_by_verify_and_verified_get() {
    let dir = tempfile::tempdir().unwrap();
    let cid = {
        let store = BlobStore::open(dir.path()).unwrap();
        let c = Committer::start(&store, 16).unwrap();
        let WriteOutcome::Stored(cid) = put(&c, b"precious bytes".to_vec()).unwrap() else {
            panic!()
        };
        c.close();
        cid
    };
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
    let store = BlobStore::open_with_backend(disk, tmp.path().join("tmp")).unwrap();
    let c = Committer::start(&store, 16).unwrap();
    let mut acked = Vec::new();
    let mut error = None;
    for i in 0..200u32 {
        let mut data = vec![0u8; 64 * 1024];
        data[..4].copy_from_slice(&i.to_be_bytes());
        match put(&c, data) {
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
        match store.get(cid, true) {
            Ok(Some(_)) => {}
            // redb refuses all further I/O after a failed write until reopened;
            // that is an error, never wrong data.
            Err(StoreError::Io(_)) => {}
            other => panic!("acknowledged blob unreadable: {other:?}"),
        }
    }
}
