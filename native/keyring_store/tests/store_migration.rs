//! Opening a format-1 store (large blobs as 256 KiB chunks in redb) moves
//! its large blobs to files, keeps everything else, and loses nothing.

use keyring_core::hash::digest;
use keyring_store::BlobStore;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

const BLOBS: TableDefinition<'_, &[u8], &[u8]> = TableDefinition::new("blobs");
const CHUNKS: TableDefinition<'_, &[u8], &[u8]> = TableDefinition::new("chunks");
const REFS: TableDefinition<'_, &[u8], &[u8]> = TableDefinition::new("refs");
const META: TableDefinition<'_, &str, u64> = TableDefinition::new("meta");

fn record(kind: u8, size: u64, rest: &[u8]) -> Vec<u8> {
    let mut r = vec![kind];
    r.extend_from_slice(&size.to_be_bytes());
    r.extend_from_slice(rest);
    r
}

#[test]
fn a_format_1_store_opens_with_its_chunked_blobs_moved_to_files() {
    let dir = tempfile::tempdir().unwrap();
    let small = b"small and inline".to_vec();
    let large: Vec<u8> = (0..(3 * 256 * 1024 + 99))
        .map(|i| (i % 241) as u8)
        .collect();
    let (small_cid, large_cid) = (digest(&small), digest(&large));
    {
        let db = Database::create(dir.path().join(BlobStore::FILE_NAME)).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut meta = txn.open_table(META).unwrap();
            meta.insert("format_version", 1).unwrap();
            meta.insert("blob_count", 2).unwrap();
            meta.insert("blob_bytes", (small.len() + large.len()) as u64)
                .unwrap();
            let mut blobs = txn.open_table(BLOBS).unwrap();
            blobs
                .insert(
                    small_cid.as_slice(),
                    record(0, small.len() as u64, &small).as_slice(),
                )
                .unwrap();
            blobs
                .insert(
                    large_cid.as_slice(),
                    record(1, large.len() as u64, &[]).as_slice(),
                )
                .unwrap();
            let mut chunks = txn.open_table(CHUNKS).unwrap();
            for (i, c) in large.chunks(256 * 1024).enumerate() {
                let mut key = large_cid.to_vec();
                key.extend_from_slice(&(i as u32).to_be_bytes());
                chunks.insert(key.as_slice(), c).unwrap();
            }
            txn.open_table(REFS)
                .unwrap()
                .insert(b"keyring/x".as_slice(), b"y".as_slice())
                .unwrap();
        }
        txn.commit().unwrap();
    }
    {
        let store = BlobStore::open(dir.path()).unwrap();
        assert_eq!(store.get(&small_cid, true).unwrap().unwrap(), small);
        assert_eq!(store.get(&large_cid, true).unwrap().unwrap(), large);
        assert_eq!(store.verify(&large_cid).unwrap(), Some(true));
        assert_eq!(store.get_ref(b"keyring/x").unwrap(), Some(b"y".to_vec()));
        let stats = store.stats().unwrap();
        assert_eq!(
            (stats.blobs, stats.bytes),
            (2, (small.len() + large.len()) as u64)
        );
        let file = dir
            .path()
            .join("blobs")
            .join(format!("{:02x}", large_cid[0]))
            .join(format!("{}.data", keyring_store::layout::hex(&large_cid)));
        assert_eq!(std::fs::read(file).unwrap(), large);
    }
    let db = Database::open(dir.path().join(BlobStore::FILE_NAME)).unwrap();
    let txn = db.begin_read().unwrap();
    assert_eq!(
        txn.open_table(META)
            .unwrap()
            .get("format_version")
            .unwrap()
            .unwrap()
            .value(),
        2
    );
    assert_eq!(
        txn.open_table(CHUNKS).unwrap().iter().unwrap().count(),
        0,
        "chunks removed"
    );
}
