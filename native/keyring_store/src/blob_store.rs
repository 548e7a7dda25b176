use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use keyring_core::hash::{digest, Digest};
use redb::{Database, ReadOnlyTable, ReadableDatabase, ReadableTable, StorageBackend};

use crate::blob_cache::{BlobCache, CacheStats};
use crate::layout::{FileKind, Layout};
use crate::live::{Live, LiveGuard};
use crate::open_blob::{Bytes, OpenBlob};
use crate::schema::{
    BlobRecord, OutboardAt, PartialRecord, BLOBS, FORMAT_VERSION, META, META_BYTES, META_COUNT,
    META_PARTIALS, META_PINS, META_SHARES, META_VERSION, PARTIALS, PROTECT, REFS, TAGS,
};
use crate::tags::{self, RingId, TagScope};
use crate::{migrate, StoreError};
use keyring_core::verified::{GroupRanges, Tree};

/// The read side of the store, and the owner of the database handle and the
/// directory layout. Cheap to clone; every clone reads the same store.
#[derive(Debug, Clone)]
pub struct BlobStore {
    db: Arc<Database>,
    layout: Layout,
    path: Option<PathBuf>,
    /// Bumped by the committer after every commit, before it answers.
    generation: Arc<AtomicU64>,
    /// Tables as of some generation, shared by point reads so they skip
    /// opening a read transaction and the tables each time.
    snapshot: Arc<RwLock<Option<Arc<Snapshot>>>>,
    /// Small blobs recently read, served without touching redb.
    cache: Arc<BlobCache>,
    live: Arc<Live>,
}

#[derive(Debug)]
struct Snapshot {
    generation: u64,
    blobs: ReadOnlyTable<&'static [u8], &'static [u8]>,
    protect: ReadOnlyTable<&'static [u8], u64>,
}

/// A ref's name and value.
pub type RefEntry = (Vec<u8>, Vec<u8>);

/// What `stats` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stats {
    /// Number of blobs.
    pub blobs: u64,
    /// Sum of blob sizes in bytes.
    pub bytes: u64,
    /// Size of the index file in bytes (0 for in-memory backends).
    pub file_bytes: u64,
    /// Partial blobs.
    pub partials: u64,
    /// Share tags (blob shared into a keyring under a name).
    pub shares: u64,
    /// Pin tags.
    pub pins: u64,
}

/// What the store knows of a partial blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartialInfo {
    /// The blob's size.
    pub size: u64,
    /// Whether the size is proven (its last group was verified).
    pub size_verified: bool,
    /// Groups verified and durable.
    pub have: GroupRanges,
    /// Groups still missing.
    pub missing: GroupRanges,
}

impl BlobStore {
    /// File name of the index inside the store directory.
    pub const FILE_NAME: &'static str = "store.redb";

    /// Default byte budget of the blob cache.
    pub const DEFAULT_CACHE_BYTES: usize = 64 << 20;

    /// Opens (or creates) the store in `dir` (see [`crate::layout`]).
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        Self::open_with_cache(dir, Self::DEFAULT_CACHE_BYTES)
    }

    /// [`BlobStore::open`] with a blob cache of `cache_bytes` (0: none).
    pub fn open_with_cache(dir: &Path, cache_bytes: usize) -> Result<Self, StoreError> {
        let layout = Layout::create(dir)?;
        let path = dir.join(Self::FILE_NAME);
        create_private(&path)?;
        let db = Database::builder().create(&path)?;
        let mut store = Self::init(db, layout, cache_bytes)?;
        store.path = Some(path);
        Ok(store)
    }

    /// Opens the store on a custom redb backend (tests: failing disks,
    /// memory), with its files under `dir`.
    pub fn open_with_backend(backend: impl StorageBackend, dir: &Path) -> Result<Self, StoreError> {
        let db = Database::builder().create_with_backend(backend)?;
        Self::init(db, Layout::create(dir)?, Self::DEFAULT_CACHE_BYTES)
    }

    fn init(db: Database, layout: Layout, cache_bytes: usize) -> Result<Self, StoreError> {
        let txn = db.begin_write()?;
        let version = {
            let meta = txn.open_table(META)?;
            let version = meta.get(META_VERSION)?.map(|v| v.value());
            version
        };
        match version {
            None | Some(FORMAT_VERSION) => {}
            Some(1) => migrate::from_v1(&txn, &layout)?,
            Some(other) => {
                return Err(StoreError::Corrupted(format!(
                    "store format version {other} is not supported (expected {FORMAT_VERSION})"
                )))
            }
        }
        {
            let mut meta = txn.open_table(META)?;
            meta.insert(META_VERSION, FORMAT_VERSION)?;
            txn.open_table(BLOBS)?;
            txn.open_table(PARTIALS)?;
            txn.open_table(TAGS)?;
            txn.open_table(PROTECT)?;
            txn.open_table(REFS)?;
        }
        txn.commit()?;
        Ok(Self {
            db: Arc::new(db),
            layout,
            path: None,
            generation: Arc::new(AtomicU64::new(0)),
            snapshot: Arc::new(RwLock::new(None)),
            cache: Arc::new(BlobCache::new(cache_bytes)),
            live: Arc::new(Live::default()),
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

    pub(crate) fn live(&self) -> Arc<Live> {
        Arc::clone(&self.live)
    }

    pub(crate) fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Protects `cid` from GC until the guard is dropped (for work in
    /// progress that no tag covers yet).
    pub fn hold(&self, cid: Digest) -> LiveGuard {
        self.live.hold(cid)
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

    /// The tables as of the latest commit (read-your-writes: a write is
    /// answered only after the generation moved past it).
    fn snapshot(&self) -> Result<Arc<Snapshot>, StoreError> {
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
            protect: txn.open_table(PROTECT)?,
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

    /// The shared database handle (the [`crate::Committer`] writes through it).
    pub fn database(&self) -> Arc<Database> {
        Arc::clone(&self.db)
    }

    /// Directory for temporary files of imports in progress.
    pub fn tmp_dir(&self) -> &Path {
        self.layout.tmp_dir()
    }

    /// Whether the blob `cid` is stored (complete).
    pub fn has(&self, cid: &Digest) -> Result<bool, StoreError> {
        Ok(self.size(cid)?.is_some())
    }

    /// The size of blob `cid`, if stored.
    pub fn size(&self, cid: &Digest) -> Result<Option<u64>, StoreError> {
        let snap = self.snapshot()?;
        match snap.blobs.get(cid.as_slice())? {
            Some(record) => Ok(Some(BlobRecord::decode(record.value())?.size())),
            None => Ok(None),
        }
    }

    /// Opens blob `cid` for reading and serving. With `verify`, reading it
    /// whole ([`OpenBlob::read_into`]) checks it against the cid; small blobs
    /// are checked here. Small blobs read here fill the cache.
    pub fn open_blob(&self, cid: &Digest, verify: bool) -> Result<Option<OpenBlob>, StoreError> {
        let epoch = self.cache.delete_epoch();
        let snap = self.snapshot()?;
        let Some(guard) = snap.blobs.get(cid.as_slice())? else {
            return Ok(None);
        };
        match BlobRecord::decode(guard.value())? {
            BlobRecord::Inline(bytes) => {
                if verify && digest(bytes) != *cid {
                    return Err(StoreError::ContentMismatch);
                }
                self.cache.insert_unless_deleted(cid, bytes, epoch);
                Ok(Some(OpenBlob::new(
                    *cid,
                    bytes.len() as u64,
                    Bytes::Memory(bytes.to_vec()),
                    Bytes::Memory(Vec::new()),
                    verify,
                )))
            }
            BlobRecord::File { size, outboard } => {
                let data = match fs::File::open(self.layout.blob_file(cid, FileKind::Data)) {
                    Ok(f) => f,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        drop(guard);
                        return self.vanished(cid);
                    }
                    Err(e) => return Err(e.into()),
                };
                let outboard = match outboard {
                    OutboardAt::Record(ob) => Bytes::Memory(ob.to_vec()),
                    OutboardAt::File => Bytes::File(fs::File::open(
                        self.layout.blob_file(cid, FileKind::Outboard),
                    )?),
                };
                Ok(Some(OpenBlob::new(
                    *cid,
                    size,
                    Bytes::File(data),
                    outboard,
                    verify,
                )))
            }
            BlobRecord::Chunked { .. } => Err(StoreError::Corrupted(
                "a format-1 chunked blob survived migration".into(),
            )),
        }
    }

    /// A record was read but its file is gone: a delete committed meanwhile
    /// (the blob is gone), or the store is damaged.
    fn vanished(&self, cid: &Digest) -> Result<Option<OpenBlob>, StoreError> {
        let txn = self.db.begin_read()?;
        if txn.open_table(BLOBS)?.get(cid.as_slice())?.is_some() {
            return Err(StoreError::Corrupted(format!(
                "the file of blob {} is missing",
                crate::layout::hex(cid)
            )));
        }
        Ok(None)
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

    /// [`BlobStore::get`] without asking the cache first; what it reads still
    /// fills the cache.
    pub fn read(&self, cid: &Digest, verify: bool) -> Result<Option<Vec<u8>>, StoreError> {
        let Some(blob) = self.open_blob(cid, verify)? else {
            return Ok(None);
        };
        let mut out =
            vec![0u8; usize::try_from(blob.size()).map_err(|_| StoreError::TooLarge("blob"))?];
        blob.read_into(&mut out)?;
        Ok(Some(out))
    }

    /// Hashes blob `cid` and, for a file blob, checks its outboard:
    /// `Ok(Some(true))` when all matches, `Ok(Some(false))` when not,
    /// `Ok(None)` for an unknown blob. Holds one piece in memory at a time.
    pub fn verify(&self, cid: &Digest) -> Result<Option<bool>, StoreError> {
        match self.open_blob(cid, false) {
            Ok(Some(blob)) => blob.check().map(Some),
            Ok(None) => Ok(None),
            Err(StoreError::ContentMismatch | StoreError::Corrupted(_)) => Ok(Some(false)),
            Err(e) => Err(e),
        }
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

    /// Whether `cid` is shared into keyring `ring`: the rule a provider
    /// applies before serving a peer over a connection of that keyring. One
    /// B-tree lookup in the latest snapshot; callable from any thread.
    pub fn shared_in(&self, cid: &Digest, ring: &RingId) -> Result<bool, StoreError> {
        let snap = self.snapshot()?;
        Ok(snap
            .protect
            .get(tags::share_key(cid, ring).as_slice())?
            .is_some())
    }

    /// Whether a tag (pin or share) names `cid`, or something in this process
    /// holds it: what keeps a blob from GC.
    pub fn is_protected(&self, cid: &Digest) -> Result<bool, StoreError> {
        if self.live.contains(cid) {
            return Ok(true);
        }
        let snap = self.snapshot()?;
        let (lo, hi) = tags::protect_range(cid);
        Ok(snap
            .protect
            .range::<&[u8]>(lo.as_slice()..=hi.as_slice())?
            .next()
            .is_some())
    }

    /// Up to `limit` tags of `scope` whose names come after `after`, in name
    /// order, as `(name, cid)`.
    pub fn tags(
        &self,
        scope: TagScope,
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Digest)>, StoreError> {
        let prefix = scope.prefix();
        let txn = self.db.begin_read()?;
        let tags = txn.open_table(TAGS)?;
        let start: Vec<u8> = match after {
            Some(name) => [&prefix[..], name].concat(),
            None => prefix.to_vec(),
        };
        let mut out = Vec::new();
        for entry in tags.range::<&[u8]>(start.as_slice()..)? {
            let (k, v) = entry?;
            let key = k.value();
            if !key.starts_with(&prefix) || out.len() >= limit {
                break;
            }
            if after.is_some() && key == start.as_slice() {
                continue;
            }
            if let Ok(cid) = Digest::try_from(v.value()) {
                out.push((key[prefix.len()..].to_vec(), cid));
            }
        }
        Ok(out)
    }

    /// The partial blob of `cid`, if one is being assembled.
    pub fn partial(&self, cid: &Digest) -> Result<Option<PartialInfo>, StoreError> {
        let txn = self.db.begin_read()?;
        let partials = txn.open_table(PARTIALS)?;
        let Some(v) = partials.get(cid.as_slice())? else {
            return Ok(None);
        };
        let rec = PartialRecord::decode(v.value())?;
        let groups = Tree::new(rec.size).groups();
        Ok(Some(PartialInfo {
            size: rec.size,
            size_verified: rec.size_verified,
            missing: GroupRanges::from(0..groups).difference(&rec.have),
            have: rec.have,
        }))
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

    /// Counts of blobs, bytes, partial blobs and tags, and the index file's size.
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
            partials: read(META_PARTIALS)?,
            shares: read(META_SHARES)?,
            pins: read(META_PINS)?,
        })
    }
}

/// The index holds everything the node stores: a new one is created
/// owner-only (0600). An existing file keeps its mode: the embedding
/// application checks it and says so when it narrows it.
fn create_private(path: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::OpenOptionsExt;
    match fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e.into()),
    }
}
