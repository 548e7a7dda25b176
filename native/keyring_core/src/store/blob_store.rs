use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use redb::{Database, ReadOnlyTable, ReadableDatabase, ReadableTable, StorageBackend};

use super::blob_cache::{BlobCache, CacheStats};
use super::schema::{
    chunk_count, chunk_key, BlobRecord, BLOBS, CHUNKS, FORMAT_VERSION, META, META_BYTES,
    META_COUNT, META_VERSION, REFS,
};
use super::StoreError;
use crate::hash::{Digest, StreamHasher};

/// The read side of the store, and the owner of the database handle.
#[derive(Debug, Clone)]
pub struct BlobStore {
    db: Arc<Database>,
    tmp_dir: PathBuf,
    path: Option<PathBuf>,
    /// Bumped by the committer after every commit, before it answers.
    generation: Arc<AtomicU64>,
    /// The `blobs` table as of some generation, shared by point reads so they
    /// skip opening a read transaction and the table each time.
    snapshot: Arc<RwLock<Option<Arc<Snapshot>>>>,
    /// Small blobs recently read, served without touching redb.
    cache: Arc<BlobCache>,
}

#[derive(Debug)]
struct Snapshot {
    generation: u64,
    blobs: ReadOnlyTable<&'static [u8], &'static [u8]>,
}

/// A ref's name and value.
pub type RefEntry = (Vec<u8>, Vec<u8>);

/// What `stats` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    /// Number of blobs.
    pub blobs: u64,
    /// Sum of blob sizes in bytes.
    pub bytes: u64,
    /// Size of the database file in bytes (0 for in-memory backends).
    pub file_bytes: u64,
}

impl BlobStore {
    /// File name of the database inside the store directory.
    pub const FILE_NAME: &'static str = "store.redb";

    /// Default byte budget of the blob cache.
    pub const DEFAULT_CACHE_BYTES: usize = 64 << 20;

    /// Opens (or creates) the store in `dir`: `dir/store.redb` plus `dir/tmp/`
    /// for imports in progress (left-overs from a crash are removed).
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        Self::open_with_cache(dir, Self::DEFAULT_CACHE_BYTES)
    }

    /// [`BlobStore::open`] with a blob cache of `cache_bytes` (0: none).
    pub fn open_with_cache(dir: &Path, cache_bytes: usize) -> Result<Self, StoreError> {
        fs::create_dir_all(dir)?;
        let path = dir.join(Self::FILE_NAME);
        let db = Database::builder().create(&path)?;
        let mut store = Self::init(db, dir.join("tmp"))?;
        store.path = Some(path);
        store.cache = Arc::new(BlobCache::new(cache_bytes));
        Ok(store)
    }

    /// Opens the store on a custom redb backend (tests: failing disks, memory).
    pub fn open_with_backend(
        backend: impl StorageBackend,
        tmp_dir: PathBuf,
    ) -> Result<Self, StoreError> {
        let db = Database::builder().create_with_backend(backend)?;
        Self::init(db, tmp_dir)
    }

    fn init(db: Database, tmp_dir: PathBuf) -> Result<Self, StoreError> {
        let _ = fs::remove_dir_all(&tmp_dir);
        fs::create_dir_all(&tmp_dir)?;
        let txn = db.begin_write()?;
        {
            let mut meta = txn.open_table(META)?;
            let version = meta.get(META_VERSION)?.map(|v| v.value());
            match version {
                None => {
                    meta.insert(META_VERSION, FORMAT_VERSION)?;
                }
                Some(FORMAT_VERSION) => {}
                Some(other) => {
                    return Err(StoreError::Corrupted(format!(
                        "store format version {other} is not supported (expected {FORMAT_VERSION})"
                    )))
                }
            }
            txn.open_table(BLOBS)?;
            txn.open_table(CHUNKS)?;
            txn.open_table(REFS)?;
        }
        txn.commit()?;
        Ok(Self {
            db: Arc::new(db),
            tmp_dir,
            path: None,
            generation: Arc::new(AtomicU64::new(0)),
            snapshot: Arc::new(RwLock::new(None)),
            cache: Arc::new(BlobCache::new(Self::DEFAULT_CACHE_BYTES)),
        })
    }

    /// The commit counter the committer bumps; readers use it to see every
    /// acknowledged write.
    pub(crate) fn generation(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.generation)
    }

    /// The blob cache (the committer invalidates deleted cids in it).
    pub(crate) fn cache(&self) -> Arc<BlobCache> {
        Arc::clone(&self.cache)
    }

    /// Blob cache counters.
    pub fn cache_stats(&self) -> CacheStats {
        self.cache.stats()
    }

    /// The blob `cid` if it is in the memory cache; never touches the disk,
    /// so it is cheap enough for a BEAM normal scheduler. `None` means "not
    /// cached" (the blob may still be stored): read it with [`BlobStore::get`].
    pub fn get_cached(&self, cid: &Digest) -> Option<Arc<[u8]>> {
        self.cache.get(cid)
    }

    /// The `blobs` table as of the latest commit (read-your-writes: a write is
    /// answered only after the generation moved past it).
    fn blobs(&self) -> Result<Arc<Snapshot>, StoreError> {
        let current = self.generation.load(Ordering::Acquire);
        if let Some(snap) = self
            .snapshot
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .filter(|s| s.generation == current)
        {
            return Ok(Arc::clone(snap));
        }
        let txn = self.db.begin_read()?;
        let snap = Arc::new(Snapshot {
            generation: current,
            blobs: txn.open_table(BLOBS)?,
        });
        let mut slot = self.snapshot.write().unwrap_or_else(|e| e.into_inner());
        if slot.as_ref().is_none_or(|s| s.generation < current) {
            *slot = Some(Arc::clone(&snap));
        }
        Ok(snap)
    }

    /// Drops the cached read snapshot (so the database can be closed).
    pub fn release_snapshot(&self) {
        self.snapshot
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .take();
    }

    /// The shared database handle (the [`super::Committer`] writes through it).
    pub fn database(&self) -> Arc<Database> {
        Arc::clone(&self.db)
    }

    /// Directory for temporary files of imports in progress.
    pub fn tmp_dir(&self) -> &Path {
        &self.tmp_dir
    }

    /// Whether the blob `cid` is stored.
    pub fn has(&self, cid: &Digest) -> Result<bool, StoreError> {
        Ok(self.size(cid)?.is_some())
    }

    /// The size of blob `cid`, if stored.
    pub fn size(&self, cid: &Digest) -> Result<Option<u64>, StoreError> {
        let snap = self.blobs()?;
        match snap.blobs.get(cid.as_slice())? {
            Some(record) => Ok(Some(BlobRecord::decode(record.value())?.size)),
            None => Ok(None),
        }
    }

    /// The whole blob `cid`. With `verify`, the bytes are hashed and compared
    /// with the cid first ([`StoreError::ContentMismatch`] when they differ).
    /// Reads without `verify` are served from the blob cache when they can
    /// be; verified reads always read (and hash) what is on disk.
    pub fn get(&self, cid: &Digest, verify: bool) -> Result<Option<Vec<u8>>, StoreError> {
        if !verify {
            if let Some(bytes) = self.cache.get(cid) {
                return Ok(Some(bytes.to_vec()));
            }
        }
        self.read(cid, verify)
    }

    /// [`BlobStore::get`] without asking the cache first (for a caller that
    /// just did, so the miss is neither looked up nor counted twice); what it
    /// reads still fills the cache.
    pub fn read(&self, cid: &Digest, verify: bool) -> Result<Option<Vec<u8>>, StoreError> {
        let epoch = self.cache.delete_epoch();
        let snap = self.blobs()?;
        let Some(guard) = snap.blobs.get(cid.as_slice())? else {
            return Ok(None);
        };
        let record = BlobRecord::decode(guard.value())?;
        let out = match record.inline {
            Some(bytes) => bytes.to_vec(),
            None => {
                // Chunks were committed with (before) their record, so any
                // transaction at least as new as the snapshot has them all.
                let txn = self.db.begin_read()?;
                let chunks = txn.open_table(CHUNKS)?;
                let mut out = Vec::with_capacity(record.size as usize);
                let (first, last) = (chunk_key(cid, 0), chunk_key(cid, u32::MAX));
                for entry in chunks.range(first.as_slice()..=last.as_slice())? {
                    let (_, value) = entry?;
                    out.extend_from_slice(value.value());
                }
                out
            }
        };
        if out.len() as u64 != record.size {
            return Err(StoreError::ContentMismatch);
        }
        if verify && crate::hash::digest(&out) != *cid {
            return Err(StoreError::ContentMismatch);
        }
        self.cache.insert_unless_deleted(cid, &out, epoch);
        Ok(Some(out))
    }

    /// Piece `index` of blob `cid` (`None` past the end or for unknown
    /// blobs). An inline blob is one piece; a chunked blob has one per chunk.
    pub fn read_chunk(&self, cid: &Digest, index: u32) -> Result<Option<Vec<u8>>, StoreError> {
        let txn = self.db.begin_read()?;
        let blobs = txn.open_table(BLOBS)?;
        let Some(guard) = blobs.get(cid.as_slice())? else {
            return Ok(None);
        };
        if let Some(bytes) = BlobRecord::decode(guard.value())?.inline {
            return Ok((index == 0).then(|| bytes.to_vec()));
        }
        let chunks = txn.open_table(CHUNKS)?;
        Ok(chunks
            .get(chunk_key(cid, index).as_slice())?
            .map(|v| v.value().to_vec()))
    }

    /// Hashes every chunk of `cid`: `Ok(Some(true))` when the content matches,
    /// `Ok(Some(false))` when it does not, `Ok(None)` for an unknown blob.
    /// Holds one chunk in memory at a time.
    pub fn verify(&self, cid: &Digest) -> Result<Option<bool>, StoreError> {
        let txn = self.db.begin_read()?;
        let blobs = txn.open_table(BLOBS)?;
        let Some(guard) = blobs.get(cid.as_slice())? else {
            return Ok(None);
        };
        let record = match BlobRecord::decode(guard.value()) {
            Ok(record) => record,
            Err(_) => return Ok(Some(false)),
        };
        if let Some(bytes) = record.inline {
            return Ok(Some(crate::hash::digest(bytes) == *cid));
        }
        let chunks = txn.open_table(CHUNKS)?;
        let mut hasher = StreamHasher::new();
        let mut seen = 0u32;
        let (first, last) = (chunk_key(cid, 0), chunk_key(cid, u32::MAX));
        for entry in chunks.range(first.as_slice()..=last.as_slice())? {
            let (_, value) = entry?;
            hasher.update(value.value());
            seen += 1;
        }
        let size = record.size;
        Ok(Some(
            seen == chunk_count(size) && hasher.len() == size && hasher.finalize() == *cid,
        ))
    }

    /// Up to `limit` cids in ascending order, strictly after `after`.
    pub fn list_after(
        &self,
        after: Option<&Digest>,
        limit: usize,
    ) -> Result<Vec<Digest>, StoreError> {
        let txn = self.db.begin_read()?;
        let blobs = txn.open_table(BLOBS)?;
        let range = match after {
            Some(cid) => blobs.range::<&[u8]>((
                std::ops::Bound::Excluded(cid.as_slice()),
                std::ops::Bound::Unbounded,
            ))?,
            None => blobs.iter()?,
        };
        let mut out = Vec::with_capacity(limit.min(4096));
        for entry in range.take(limit) {
            let (key, _) = entry?;
            if let Ok(cid) = <Digest>::try_from(key.value()) {
                out.push(cid);
            }
        }
        Ok(out)
    }

    /// The value of ref `name`.
    pub fn get_ref(&self, name: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let txn = self.db.begin_read()?;
        let refs = txn.open_table(REFS)?;
        Ok(refs.get(name)?.map(|v| v.value().to_vec()))
    }

    /// Up to `limit` refs whose names start with `prefix`, in name order.
    pub fn list_refs(&self, prefix: &[u8], limit: usize) -> Result<Vec<RefEntry>, StoreError> {
        let txn = self.db.begin_read()?;
        let refs = txn.open_table(REFS)?;
        let mut out = Vec::new();
        for entry in refs.range::<&[u8]>(prefix..)? {
            let (k, v) = entry?;
            if !k.value().starts_with(prefix) || out.len() >= limit {
                break;
            }
            out.push((k.value().to_vec(), v.value().to_vec()));
        }
        Ok(out)
    }

    /// Blob count, total bytes and file size.
    pub fn stats(&self) -> Result<Stats, StoreError> {
        let txn = self.db.begin_read()?;
        let meta = txn.open_table(META)?;
        let read = |k: &str| -> Result<u64, StoreError> {
            Ok(meta.get(k)?.map(|v| v.value()).unwrap_or(0))
        };
        let file_bytes = match &self.path {
            Some(p) => fs::metadata(p).map(|m| m.len()).unwrap_or(0),
            None => 0,
        };
        Ok(Stats {
            blobs: read(META_COUNT)?,
            bytes: read(META_BYTES)?,
            file_bytes,
        })
    }
}
