//! The store as its users see it: reads, writes routed by size, threads.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::Arc;

use keyring_core::hash::Digest;

use crate::committer::{ChannelReply, Committer, Payload, WriteOp, WriteOutcome, WriteReply};
use crate::ingest::{BlobWriter, IngestPool, Source};
use crate::partial::{PartialOpen, PartialWriter};
use crate::read_pool::{ReadPool, ReadReply};
use crate::schema::INLINE_MAX;
use crate::tags::Tag;
use crate::{BlobStore, StoreError};

/// How to run a store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreConfig {
    /// Byte budget of the small-blob cache (0: none).
    pub cache_bytes: usize,
    /// Reader threads serving blob reads that miss the cache.
    pub read_threads: usize,
    /// Threads writing large blobs to files.
    pub ingest_threads: usize,
    /// Capacity of each queue (writes, reads, ingests).
    pub queue_capacity: usize,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            cache_bytes: BlobStore::DEFAULT_CACHE_BYTES,
            read_threads: 2,
            ingest_threads: 2,
            queue_capacity: 65_536,
        }
    }
}

/// A running store: the [`BlobStore`] read side, the group-commit writer
/// thread, the ingest threads for large blobs and the reader threads.
/// Cheap to clone (a protocol handler in Rust holds one and serves from it,
/// writes partial blobs into it, and checks sharing, without the BEAM).
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    blobs: BlobStore,
    committer: Arc<Committer>,
    ingest: IngestPool,
    readers: ReadPool,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("blobs", &self.inner.blobs)
            .finish()
    }
}

impl Store {
    /// Opens (or creates) the store in `dir` and starts its threads.
    pub fn open(dir: &Path, config: &StoreConfig) -> Result<Self, StoreError> {
        Self::start(BlobStore::open_with_cache(dir, config.cache_bytes)?, config)
    }

    /// Starts the threads of an opened [`BlobStore`].
    pub fn start(blobs: BlobStore, config: &StoreConfig) -> Result<Self, StoreError> {
        let committer = Arc::new(Committer::start(&blobs, config.queue_capacity)?);
        let ingest = IngestPool::start(
            config.ingest_threads,
            config.queue_capacity,
            blobs.tmp_dir().to_path_buf(),
            Arc::clone(&committer),
        )?;
        let readers = ReadPool::start(&blobs, config.read_threads, config.queue_capacity)?;
        Ok(Self {
            inner: Arc::new(Inner {
                blobs,
                committer,
                ingest,
                readers,
            }),
        })
    }

    /// The read side.
    pub fn blobs(&self) -> &BlobStore {
        &self.inner.blobs
    }

    /// The writer thread (its counters, and writes Rust callers wait for).
    pub fn committer(&self) -> &Committer {
        &self.inner.committer
    }

    /// Stores a blob and sets `tags` to it in the same transaction. Blobs up
    /// to 16 KiB go to the writer thread; larger ones to an ingest thread
    /// that writes them to a file first. `reply` hears the cid once durable.
    pub fn put(
        &self,
        payload: Box<dyn Payload>,
        tags: Vec<Tag>,
        reply: Box<dyn WriteReply>,
    ) -> Result<(), (StoreError, Box<dyn WriteReply>)> {
        if payload.len() <= INLINE_MAX {
            self.submit(WriteOp::Put { payload, tags }, reply)
        } else {
            self.inner
                .ingest
                .submit(Source::Bytes(payload), tags, reply)
        }
    }

    /// Stores the contents of the file at `path` (read by an ingest thread,
    /// never by the caller), with `tags`.
    pub fn import_file(
        &self,
        path: PathBuf,
        tags: Vec<Tag>,
        reply: Box<dyn WriteReply>,
    ) -> Result<(), (StoreError, Box<dyn WriteReply>)> {
        self.inner.ingest.submit(Source::File(path), tags, reply)
    }

    /// A writer for a blob that arrives piece by piece.
    pub fn writer(&self) -> Result<BlobWriter, StoreError> {
        BlobWriter::create(self.blobs().tmp_dir())
    }

    /// Finishes a writer on an ingest thread (its fsync may take a while)
    /// and stores the blob with `tags`.
    pub fn finish_writer(
        &self,
        writer: BlobWriter,
        tags: Vec<Tag>,
        reply: Box<dyn WriteReply>,
    ) -> Result<(), (StoreError, Box<dyn WriteReply>)> {
        self.inner
            .ingest
            .submit(Source::Writer(Box::new(writer)), tags, reply)
    }

    /// Queues any other write.
    pub fn submit(
        &self,
        op: WriteOp,
        reply: Box<dyn WriteReply>,
    ) -> Result<(), (StoreError, Box<dyn WriteReply>)> {
        self.inner.committer.submit(op, reply)
    }

    /// Runs `op` and waits for its answer (Rust callers off the BEAM).
    pub fn write(&self, op: WriteOp) -> Result<WriteOutcome, StoreError> {
        self.inner.committer.write(op)
    }

    /// Stores `data` with `tags` and waits (Rust callers off the BEAM).
    pub fn put_bytes(&self, data: Vec<u8>, tags: Vec<Tag>) -> Result<Digest, StoreError> {
        let (tx, rx) = mpsc::sync_channel(1);
        self.put(Box::new(data), tags, Box::new(ChannelReply(tx)))
            .map_err(|(e, _)| e)?;
        match rx.recv().unwrap_or(Err(StoreError::Closed))? {
            WriteOutcome::Stored(cid) => Ok(cid),
            other => Err(StoreError::Io(format!("unexpected answer {other:?}"))),
        }
    }

    /// Queues a read of blob `cid` to the reader threads.
    pub fn read(
        &self,
        cid: Digest,
        verify: bool,
        reply: Box<dyn ReadReply>,
    ) -> Result<(), (StoreError, Box<dyn ReadReply>)> {
        self.inner.readers.submit(cid, verify, reply)
    }

    /// Starts or resumes the partial blob `cid` of `size` bytes (`size_verified`:
    /// the size was proven by its last group), or finds it complete. Blocks
    /// for one commit.
    pub fn partial(
        &self,
        cid: Digest,
        size: u64,
        size_verified: bool,
    ) -> Result<PartialOpen, StoreError> {
        PartialWriter::open(self, cid, size, size_verified)
    }

    /// Stops the threads after they finish their queues. Blocks.
    pub fn close(&self) {
        self.inner.readers.close();
        self.inner.ingest.close();
        self.inner.committer.close();
        self.inner.blobs.release_snapshot();
    }
}
