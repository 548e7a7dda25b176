//! Group commit: one writer thread turns every write waiting in its queue into
//! one durable redb transaction, then answers each caller.

use std::fs::File;
use std::io::Read;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TryRecvError, TrySendError};
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::Duration;

use redb::{Database, ReadableTable, Table, WriteTransaction};

use super::blob_cache::BlobCache;
use super::schema::{
    chunk_count, chunk_key, chunked_record, inline_record, BlobRecord, BLOBS, CHUNKS, CHUNK_SIZE,
    INLINE_MAX, MAX_REF_NAME, MAX_REF_VALUE, META, META_BYTES, META_COUNT, REFS,
};
use super::{BlobStore, StoreError};
use crate::hash::{digest, Digest};

/// Bytes to be stored, possibly owned by someone else (e.g. a BEAM binary).
pub trait Payload: Send + 'static {
    /// Calls `f` with the bytes.
    fn with_bytes(&self, f: &mut dyn FnMut(&[u8]));
    /// Number of bytes.
    fn len(&self) -> usize;
    /// Whether there are no bytes.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Payload for Vec<u8> {
    fn with_bytes(&self, f: &mut dyn FnMut(&[u8])) {
        f(self)
    }
    fn len(&self) -> usize {
        Vec::len(self)
    }
}

/// One write.
pub enum WriteOp {
    /// Store a blob; answers [`WriteOutcome::Stored`] with its cid.
    Put(Box<dyn Payload>),
    /// Store the blob whose bytes are in a temporary file (see
    /// [`super::BlobWriter`]); the file is removed once committed.
    Import {
        /// The temporary file.
        path: PathBuf,
        /// Its BLAKE3 hash.
        cid: Digest,
        /// Its size.
        size: u64,
    },
    /// Delete a blob; answers [`WriteOutcome::Deleted`].
    Delete(Digest),
    /// Set a ref; answers [`WriteOutcome::RefSet`].
    PutRef {
        /// Ref name (≤ [`MAX_REF_NAME`] bytes).
        name: Vec<u8>,
        /// Ref value (≤ [`MAX_REF_VALUE`] bytes).
        value: Vec<u8>,
    },
    /// Delete a ref; answers [`WriteOutcome::RefDeleted`].
    DeleteRef(Vec<u8>),
}

impl WriteOp {
    fn weight(&self) -> u64 {
        match self {
            WriteOp::Put(p) => p.len() as u64,
            WriteOp::Import { size, .. } => *size,
            WriteOp::PutRef { name, value } => (name.len() + value.len()) as u64,
            WriteOp::Delete(_) | WriteOp::DeleteRef(_) => 64,
        }
    }
}

/// What a committed write did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteOutcome {
    /// The blob is stored (newly or already) under this cid.
    Stored(Digest),
    /// Whether a blob was deleted.
    Deleted(bool),
    /// The ref was set.
    RefSet,
    /// Whether a ref was deleted.
    RefDeleted(bool),
}

/// Where the answer to one write goes. Called exactly once, on the writer
/// thread, only after the transaction holding the write is durable.
pub trait WriteReply: Send + 'static {
    /// Delivers the result.
    fn send(self, result: Result<WriteOutcome, StoreError>);
}

/// Counters for benchmarks and `stats`.
#[derive(Debug, Default)]
pub struct CommitterStats {
    /// Durable transactions committed.
    pub commits: AtomicU64,
    /// Writes answered.
    pub writes: AtomicU64,
}

const MAX_BATCH_OPS: usize = 4096;
const MAX_BATCH_BYTES: u64 = 64 * 1024 * 1024;
const LINGER_STEP: Duration = Duration::from_micros(100);
const MAX_LINGER: Duration = Duration::from_millis(1);

type Job<R> = (WriteOp, R);

/// The writer thread and its queue.
pub struct Committer<R: WriteReply> {
    queue: RwLock<Option<SyncSender<Job<R>>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    stats: Arc<CommitterStats>,
}

impl<R: WriteReply> std::fmt::Debug for Committer<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Committer")
            .field("stats", &self.stats)
            .finish()
    }
}

impl<R: WriteReply> Committer<R> {
    /// Starts the writer thread for `store` with a queue of `capacity` writes.
    pub fn start(store: &BlobStore, capacity: usize) -> Result<Self, StoreError> {
        let (tx, rx) = mpsc::sync_channel(capacity.max(1));
        let stats = Arc::new(CommitterStats::default());
        let thread_stats = Arc::clone(&stats);
        let db = store.database();
        let generation = store.generation();
        let cache = store.cache();
        let thread = std::thread::Builder::new()
            .name("keyring-store-writer".into())
            .spawn(move || run(&db, &generation, &cache, &rx, &thread_stats))
            .map_err(StoreError::from)?;
        Ok(Self {
            queue: RwLock::new(Some(tx)),
            thread: Mutex::new(Some(thread)),
            stats,
        })
    }

    /// Queues a write without blocking. On failure ([`StoreError::Busy`] when
    /// the queue is full, [`StoreError::Closed`] after [`Committer::close`]) the
    /// reply is handed back unsent.
    pub fn submit(&self, op: WriteOp, reply: R) -> Result<(), (StoreError, R)> {
        let guard = self.queue.read().unwrap_or_else(|e| e.into_inner());
        let Some(tx) = guard.as_ref() else {
            return Err((StoreError::Closed, reply));
        };
        match tx.try_send((op, reply)) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full((_, reply))) => Err((StoreError::Busy, reply)),
            Err(TrySendError::Disconnected((_, reply))) => Err((StoreError::Closed, reply)),
        }
    }

    /// Stops accepting writes, lets the writer finish what is queued, and
    /// joins it. Idempotent. Blocks: call it off the BEAM's normal schedulers.
    pub fn close(&self) {
        self.queue.write().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(handle) = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = handle.join();
        }
    }

    /// Commit and write counters.
    pub fn stats(&self) -> &CommitterStats {
        &self.stats
    }
}

impl<R: WriteReply> Drop for Committer<R> {
    fn drop(&mut self) {
        // Never join here (Drop may run on a BEAM scheduler): dropping the
        // sender makes the writer finish its queue and exit on its own.
        self.queue.write().unwrap_or_else(|e| e.into_inner()).take();
    }
}

fn run<R: WriteReply>(
    db: &Database,
    generation: &AtomicU64,
    cache: &BlobCache,
    rx: &Receiver<Job<R>>,
    stats: &CommitterStats,
) {
    while let Ok(first) = rx.recv() {
        let mut bytes = first.0.weight();
        let mut batch = vec![first];
        let mut lingered = Duration::ZERO;
        while batch.len() < MAX_BATCH_OPS && bytes < MAX_BATCH_BYTES {
            match rx.try_recv() {
                Ok(job) => {
                    bytes += job.0.weight();
                    batch.push(job);
                }
                // Writers answered by the previous commit come back within
                // tens of microseconds. While they keep arriving, wait a
                // little so they share this commit instead of half of them
                // queueing for the next one; a lone writer waits one step.
                Err(TryRecvError::Empty) if lingered < MAX_LINGER => {
                    std::thread::sleep(LINGER_STEP);
                    lingered += LINGER_STEP;
                    match rx.try_recv() {
                        Ok(job) => {
                            bytes += job.0.weight();
                            batch.push(job);
                        }
                        Err(_) => break,
                    }
                }
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
            }
        }
        let (ops, replies): (Vec<WriteOp>, Vec<R>) = batch.into_iter().unzip();
        let outcome = catch_unwind(AssertUnwindSafe(|| commit_batch(db, &ops)))
            .unwrap_or_else(|_| Err(StoreError::Io("store writer panicked".into())));
        for op in &ops {
            if let WriteOp::Import { path, .. } = op {
                let _ = std::fs::remove_file(path);
            }
        }
        stats
            .writes
            .fetch_add(replies.len() as u64, Ordering::Relaxed);
        match outcome {
            Ok(results) => {
                stats.commits.fetch_add(1, Ordering::Relaxed);
                generation.fetch_add(1, Ordering::Release);
                for op in &ops {
                    if let WriteOp::Delete(cid) = op {
                        cache.invalidate(cid);
                    }
                }
                for (reply, result) in replies.into_iter().zip(results) {
                    reply.send(result);
                }
            }
            Err(e) => {
                for reply in replies {
                    reply.send(Err(e.clone()));
                }
            }
        }
    }
}

type OpResult = Result<WriteOutcome, StoreError>;

/// Applies `ops` in one durable transaction. An error that concerns a single
/// op (bad ref size, unreadable import file) fails that op only; a database
/// error fails the whole batch and nothing of it is committed.
fn commit_batch(db: &Database, ops: &[WriteOp]) -> Result<Vec<OpResult>, StoreError> {
    let txn = db.begin_write()?;
    let results = {
        let mut tables = Tables::open(&txn)?;
        let mut results = Vec::with_capacity(ops.len());
        for op in ops {
            results.push(tables.apply(op)?);
        }
        tables.save_counters()?;
        results
    };
    txn.commit()?;
    Ok(results)
}

struct Tables<'txn> {
    blobs: Table<'txn, &'static [u8], &'static [u8]>,
    chunks: Table<'txn, &'static [u8], &'static [u8]>,
    refs: Table<'txn, &'static [u8], &'static [u8]>,
    meta: Table<'txn, &'static str, u64>,
    count: u64,
    bytes: u64,
}

impl<'txn> Tables<'txn> {
    fn open(txn: &'txn WriteTransaction) -> Result<Self, StoreError> {
        let meta = txn.open_table(META)?;
        let count = meta.get(META_COUNT)?.map(|v| v.value()).unwrap_or(0);
        let bytes = meta.get(META_BYTES)?.map(|v| v.value()).unwrap_or(0);
        Ok(Self {
            blobs: txn.open_table(BLOBS)?,
            chunks: txn.open_table(CHUNKS)?,
            refs: txn.open_table(REFS)?,
            meta,
            count,
            bytes,
        })
    }

    /// `Ok(op result)`, or `Err` for a database error that fails the batch.
    fn apply(&mut self, op: &WriteOp) -> Result<OpResult, StoreError> {
        match op {
            WriteOp::Put(payload) => {
                let mut result = Ok(Ok(WriteOutcome::Stored([0; 32])));
                payload.with_bytes(&mut |data| result = self.put(data));
                result
            }
            WriteOp::Import { path, cid, size } => self.import(path, cid, *size),
            WriteOp::Delete(cid) => self.delete(cid),
            WriteOp::PutRef { name, value } => {
                if name.len() > MAX_REF_NAME {
                    return Ok(Err(StoreError::TooLarge("ref name")));
                }
                if value.len() > MAX_REF_VALUE {
                    return Ok(Err(StoreError::TooLarge("ref value")));
                }
                self.refs.insert(name.as_slice(), value.as_slice())?;
                Ok(Ok(WriteOutcome::RefSet))
            }
            WriteOp::DeleteRef(name) => {
                let existed = self.refs.remove(name.as_slice())?.is_some();
                Ok(Ok(WriteOutcome::RefDeleted(existed)))
            }
        }
    }

    fn put(&mut self, data: &[u8]) -> Result<OpResult, StoreError> {
        let cid = digest(data);
        if self.blobs.get(cid.as_slice())?.is_none() {
            if data.len() <= INLINE_MAX {
                self.blobs
                    .insert(cid.as_slice(), inline_record(data).as_slice())?;
            } else {
                for (i, piece) in data.chunks(CHUNK_SIZE).enumerate() {
                    self.chunks
                        .insert(chunk_key(&cid, i as u32).as_slice(), piece)?;
                }
                self.blobs
                    .insert(cid.as_slice(), chunked_record(data.len() as u64).as_slice())?;
            }
            self.count += 1;
            self.bytes += data.len() as u64;
        }
        Ok(Ok(WriteOutcome::Stored(cid)))
    }

    fn import(&mut self, path: &PathBuf, cid: &Digest, size: u64) -> Result<OpResult, StoreError> {
        if self.blobs.get(cid.as_slice())?.is_some() {
            return Ok(Ok(WriteOutcome::Stored(*cid)));
        }
        let mut file = match File::open(path) {
            Ok(f) => f,
            Err(e) => return Ok(Err(e.into())),
        };
        if size <= INLINE_MAX as u64 {
            let mut data = Vec::with_capacity(size as usize);
            if let Err(e) = file.read_to_end(&mut data) {
                return Ok(Err(e.into()));
            }
            return self.put(&data);
        }
        let mut buf = vec![0u8; CHUNK_SIZE];
        let mut total = 0u64;
        for index in 0..chunk_count(size) {
            let want = (size - total).min(CHUNK_SIZE as u64) as usize;
            if let Err(e) = file.read_exact(&mut buf[..want]) {
                // The chunks inserted so far are overwritten by a later import
                // of the same cid; without a blobs entry they are invisible.
                return Ok(Err(e.into()));
            }
            self.chunks
                .insert(chunk_key(cid, index).as_slice(), &buf[..want])?;
            total += want as u64;
        }
        self.blobs
            .insert(cid.as_slice(), chunked_record(size).as_slice())?;
        self.count += 1;
        self.bytes += size;
        Ok(Ok(WriteOutcome::Stored(*cid)))
    }

    fn delete(&mut self, cid: &Digest) -> Result<OpResult, StoreError> {
        let Some(guard) = self.blobs.remove(cid.as_slice())? else {
            return Ok(Ok(WriteOutcome::Deleted(false)));
        };
        // A malformed record still gets deleted; its chunks (if any) are
        // found by range.
        let (size, inline) = match BlobRecord::decode(guard.value()) {
            Ok(r) => (r.size, r.inline.is_some()),
            Err(_) => (0, false),
        };
        drop(guard);
        if !inline {
            let (first, last) = (chunk_key(cid, 0), chunk_key(cid, u32::MAX));
            self.chunks
                .retain_in::<&[u8], _>(first.as_slice()..=last.as_slice(), |_, _| false)?;
        }
        self.count = self.count.saturating_sub(1);
        self.bytes = self.bytes.saturating_sub(size);
        Ok(Ok(WriteOutcome::Deleted(true)))
    }

    fn save_counters(&mut self) -> Result<(), StoreError> {
        self.meta.insert(META_COUNT, self.count)?;
        self.meta.insert(META_BYTES, self.bytes)?;
        Ok(())
    }
}
