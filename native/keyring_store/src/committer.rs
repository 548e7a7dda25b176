//! Group commit: one writer thread turns every write waiting in its queue into
//! one durable redb transaction, then answers each caller.
//!
//! The writer thread is also the only one that moves files into `blobs/` or
//! removes them, in step with the index: in a batch, files are renamed into
//! place and their directories fsynced before the commit, and the files of
//! deleted blobs are unlinked after it. So a committed record always has its
//! file, and GC, which decides and deletes inside one such batch, can never
//! race a put or a tag (iroh-blobs#247).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TryRecvError, TrySendError};
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::Duration;

use keyring_core::hash::Digest;
use keyring_core::verified::GroupRanges;
use redb::Database;

use crate::apply::{Effects, Tables};
use crate::blob_cache::BlobCache;
use crate::gc::{GcCursor, GcProgress};
use crate::ingest::Staged;
use crate::layout::Layout;
use crate::live::Live;
use crate::tags::Tag;
use crate::{BlobStore, StoreError};

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
    /// Store a blob of at most [`crate::INLINE_MAX`] bytes (larger ones go
    /// through [`crate::Store::put`], which writes them to a file first) and
    /// set `tags` to it in the same transaction; answers [`WriteOutcome::Stored`].
    Put {
        /// The bytes.
        payload: Box<dyn Payload>,
        /// Tags set to the blob atomically with it.
        tags: Vec<Tag>,
    },
    /// Link a staged file into the store, with `tags`; answers [`WriteOutcome::Stored`].
    Link {
        /// The file.
        staged: Staged,
        /// Tags set to the blob atomically with it.
        tags: Vec<Tag>,
    },
    /// Delete a blob (and any partial blob of the cid), whatever tags name
    /// it; answers [`WriteOutcome::Deleted`].
    Delete(Digest),
    /// Set a ref; answers [`WriteOutcome::RefSet`].
    PutRef {
        /// Ref name (≤ [`crate::MAX_REF_NAME`] bytes).
        name: Vec<u8>,
        /// Ref value (≤ [`crate::MAX_REF_VALUE`] bytes).
        value: Vec<u8>,
    },
    /// Delete a ref; answers [`WriteOutcome::RefDeleted`].
    DeleteRef(Vec<u8>),
    /// Point a tag at a cid (stored or not); answers [`WriteOutcome::TagSet`].
    SetTag {
        /// The tag.
        tag: Tag,
        /// The cid.
        cid: Digest,
    },
    /// Remove a tag (only if it names `cid`, when given); answers
    /// [`WriteOutcome::TagDeleted`].
    DeleteTag {
        /// The tag.
        tag: Tag,
        /// Only remove it if it names this cid.
        cid: Option<Digest>,
    },
    /// Start (or find) the partial blob of `cid`; answers
    /// [`WriteOutcome::Partial`], or [`WriteOutcome::Stored`] if the blob is
    /// already complete.
    BeginPartial {
        /// The blob.
        cid: Digest,
        /// Its size.
        size: u64,
        /// Whether the size was proven (its last group verified).
        size_verified: bool,
    },
    /// Record which groups of a partial blob are durable on disk; answers
    /// [`WriteOutcome::PartialSaved`].
    SavePartial {
        /// The blob.
        cid: Digest,
        /// The partial's file id (from [`WriteOutcome::Partial`]).
        id: u64,
        /// Verified groups whose bytes and outboard pairs are fsynced.
        have: GroupRanges,
        /// Whether the size is proven now.
        size_verified: bool,
    },
    /// Turn a complete, checked partial blob into a blob; answers
    /// [`WriteOutcome::Stored`].
    CompletePartial {
        /// The blob.
        cid: Digest,
        /// The partial's file id.
        id: u64,
    },
    /// Drop a partial blob and its files; answers [`WriteOutcome::Deleted`].
    DropPartial(Digest),
    /// One bounded step of garbage collection; answers [`WriteOutcome::Gc`].
    GcStep {
        /// Where the previous step stopped.
        cursor: GcCursor,
        /// Most records to look at.
        budget: usize,
    },
}

impl WriteOp {
    fn weight(&self) -> u64 {
        match self {
            WriteOp::Put { payload, .. } => payload.len() as u64,
            WriteOp::PutRef { name, value } => (name.len() + value.len()) as u64,
            // The writer fsyncs it: it counts towards the batch's bytes.
            WriteOp::Link { staged, .. } if staged.unsynced.is_some() => staged.size,
            _ => 64,
        }
    }
}

/// State of a partial blob, as [`WriteOp::BeginPartial`] found or made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartialState {
    /// The id in its files' names.
    pub id: u64,
    /// The blob's size.
    pub size: u64,
    /// Whether the size is proven.
    pub size_verified: bool,
    /// Groups verified and durable.
    pub have: GroupRanges,
}

/// What a committed write did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteOutcome {
    /// The blob is stored (newly or already) under this cid.
    Stored(Digest),
    /// Whether a blob (or partial blob) was deleted.
    Deleted(bool),
    /// The ref was set.
    RefSet,
    /// Whether a ref was deleted.
    RefDeleted(bool),
    /// The tag was set; the cid it named before, if any.
    TagSet(Option<Digest>),
    /// Whether a tag was removed.
    TagDeleted(bool),
    /// The partial blob to write into.
    Partial(PartialState),
    /// The partial blob's progress is recorded.
    PartialSaved,
    /// A GC step's results.
    Gc(GcProgress),
}

/// Where the answer to one write goes. Called exactly once, on a store
/// thread, only after the transaction holding the write is durable.
pub trait WriteReply: Send + 'static {
    /// Delivers the result.
    fn send(self: Box<Self>, result: Result<WriteOutcome, StoreError>);
    /// The write was refused before it was queued and the refusal returned
    /// to the caller directly; nothing will be sent.
    fn cancel(self: Box<Self>) {}
}

/// A [`WriteReply`] over a channel, for Rust callers that wait.
pub struct ChannelReply(pub mpsc::SyncSender<Result<WriteOutcome, StoreError>>);

impl WriteReply for ChannelReply {
    fn send(self: Box<Self>, result: Result<WriteOutcome, StoreError>) {
        let _ = self.0.send(result);
    }
}

/// Counters for benchmarks and `stats`.
#[derive(Debug, Default)]
pub struct CommitterStats {
    /// Durable transactions committed.
    pub commits: AtomicU64,
    /// Writes answered.
    pub writes: AtomicU64,
    /// GC steps run.
    pub gc_steps: AtomicU64,
    /// Blobs deleted by GC.
    pub gc_blobs: AtomicU64,
    /// Partial blobs deleted by GC.
    pub gc_partials: AtomicU64,
    /// Bytes of blobs and partial blobs GC deleted.
    pub gc_bytes: AtomicU64,
    /// Orphaned files (left by crashes) GC removed.
    pub gc_orphans: AtomicU64,
}

const MAX_BATCH_OPS: usize = 4096;
const MAX_BATCH_BYTES: u64 = 64 * 1024 * 1024;
const LINGER_STEP: Duration = Duration::from_micros(100);
const MAX_LINGER: Duration = Duration::from_millis(1);

type Job = (WriteOp, Box<dyn WriteReply>);

/// The writer thread and its queue.
pub struct Committer {
    queue: RwLock<Option<SyncSender<Job>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    stats: Arc<CommitterStats>,
}

impl std::fmt::Debug for Committer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Committer")
            .field("stats", &self.stats)
            .finish()
    }
}

/// What the writer thread needs of the store.
struct Writer {
    db: Arc<Database>,
    layout: Layout,
    generation: Arc<AtomicU64>,
    cache: Arc<BlobCache>,
    live: Arc<Live>,
    stats: Arc<CommitterStats>,
}

impl Committer {
    /// Starts the writer thread for `store` with a queue of `capacity` writes.
    pub fn start(store: &BlobStore, capacity: usize) -> Result<Self, StoreError> {
        let (tx, rx) = mpsc::sync_channel(capacity.max(1));
        let stats = Arc::new(CommitterStats::default());
        let writer = Writer {
            db: store.database(),
            layout: store.layout().clone(),
            generation: store.generation(),
            cache: store.cache(),
            live: store.live(),
            stats: Arc::clone(&stats),
        };
        let thread = std::thread::Builder::new()
            .name("keyring-store-writer".into())
            .spawn(move || writer.run(&rx))
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
    pub fn submit(
        &self,
        op: WriteOp,
        reply: Box<dyn WriteReply>,
    ) -> Result<(), (StoreError, Box<dyn WriteReply>)> {
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

    /// Queues a write, waiting for room; a closed store answers the reply
    /// with [`StoreError::Closed`]. For store threads, never BEAM schedulers.
    pub fn submit_blocking(&self, op: WriteOp, reply: Box<dyn WriteReply>) {
        let tx = self
            .queue
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .cloned();
        match tx {
            Some(tx) => {
                if let Err(mpsc::SendError((_, reply))) = tx.send((op, reply)) {
                    reply.send(Err(StoreError::Closed));
                }
            }
            None => reply.send(Err(StoreError::Closed)),
        }
    }

    /// Runs `op` and waits for its answer (Rust callers off the BEAM).
    pub fn write(&self, op: WriteOp) -> Result<WriteOutcome, StoreError> {
        let (tx, rx) = mpsc::sync_channel(1);
        self.submit_blocking(op, Box::new(ChannelReply(tx)));
        rx.recv().unwrap_or(Err(StoreError::Closed))
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

impl Drop for Committer {
    fn drop(&mut self) {
        // Never join here (Drop may run on a BEAM scheduler): dropping the
        // sender makes the writer finish its queue and exit on its own.
        self.queue.write().unwrap_or_else(|e| e.into_inner()).take();
    }
}

impl Writer {
    fn run(&self, rx: &Receiver<Job>) {
        while let Ok(first) = rx.recv() {
            let batch = gather(first, rx);
            let (ops, replies): (Vec<WriteOp>, Vec<Box<dyn WriteReply>>) =
                batch.into_iter().unzip();
            let mut effects = Effects::default();
            let outcome = catch_unwind(AssertUnwindSafe(|| self.commit_batch(ops, &mut effects)))
                .unwrap_or_else(|_| Err(StoreError::Io("store writer panicked".into())));
            self.stats
                .writes
                .fetch_add(replies.len() as u64, Ordering::Relaxed);
            match outcome {
                Ok(results) => {
                    self.stats.commits.fetch_add(1, Ordering::Relaxed);
                    effects.after_commit(&self.cache, &self.stats);
                    self.generation.fetch_add(1, Ordering::Release);
                    for (reply, result) in replies.into_iter().zip(results) {
                        reply.send(result);
                    }
                }
                Err(e) => {
                    effects.after_failure();
                    for reply in replies {
                        reply.send(Err(e.clone()));
                    }
                }
            }
        }
    }

    /// Applies `ops` in one durable transaction. An error that concerns a
    /// single op (a bad ref size, a file that cannot be renamed) fails that op
    /// only; a database error fails the whole batch and nothing of it is
    /// committed.
    fn commit_batch(
        &self,
        ops: Vec<WriteOp>,
        effects: &mut Effects,
    ) -> Result<Vec<Result<WriteOutcome, StoreError>>, StoreError> {
        let txn = self.db.begin_write()?;
        let (results, changed) = {
            let mut tables = Tables::open(&txn, &self.layout, &self.live)?;
            let mut results = Vec::with_capacity(ops.len());
            for op in ops {
                results.push(tables.apply(op, effects)?);
            }
            tables.save_counters()?;
            (results, tables.changed)
        };
        if !changed {
            // Nothing to make durable (repeated puts, GC steps that found
            // nothing): skip the commit and its fsync.
            txn.abort()?;
            return Ok(results);
        }
        effects.make_durable()?;
        txn.commit()?;
        Ok(results)
    }
}

/// The first job and every one waiting behind it, within the batch limits.
fn gather(first: Job, rx: &Receiver<Job>) -> Vec<Job> {
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
    batch
}
