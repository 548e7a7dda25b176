//! Large blobs into files at disk speed: one pass over the bytes hashes them,
//! builds the outboard and writes them to a temporary file, while the kernel
//! already writes the file back behind us; one fsync at the end finds little
//! left to do. The result is [`Staged`]: a durable file and its cid, which
//! the writer thread then links into the store (rename + index commit).

use std::fs::File;
use std::io::{Read, Write};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use keyring_core::hash::Digest;
use keyring_core::verified::OutboardBuilder;

use crate::committer::{Committer, Payload, WriteOp, WriteReply};
use crate::layout::create_file;
use crate::schema::OUTBOARD_INLINE_MAX;
use crate::sys::start_writeback;
use crate::tags::Tag;
use crate::StoreError;

static NEXT_ID: AtomicU64 = AtomicU64::new(0);

/// Dirty bytes allowed to pile up before writeback of them is started.
const WRITEBACK_STEP: u64 = 8 << 20;
/// Read size when importing a file.
pub(crate) const IMPORT_BUFFER: usize = 1 << 20;
/// Blobs up to this size are fsynced by the writer thread, all of a batch
/// together, rather than one by one by the ingest thread: their writeback is
/// already under way, so the first fsync's journal commit covers the rest
/// and many medium blobs share it, as small blobs share a redb commit.
pub(crate) const SYNC_IN_BATCH_MAX: u64 = 4 << 20;

/// A blob written to `tmp/` and hashed, waiting to be linked into the store
/// by the writer thread; fsynced already, or (up to 4 MiB
/// bytes) with its writeback started and its fsync left to the writer's
/// batch. Dropped unlinked, it removes its files.
#[derive(Debug)]
pub struct Staged {
    pub(crate) cid: Digest,
    pub(crate) size: u64,
    pub(crate) data: PathBuf,
    pub(crate) outboard: StagedOutboard,
    /// The data file, when the writer thread is to fsync it.
    pub(crate) unsynced: Option<File>,
}

#[derive(Debug)]
pub(crate) enum StagedOutboard {
    Inline(Vec<u8>),
    File(PathBuf),
}

impl Staged {
    /// The blob's cid.
    pub fn cid(&self) -> Digest {
        self.cid
    }

    /// The blob's size.
    pub fn size(&self) -> u64 {
        self.size
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.data.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.data);
        }
        if let StagedOutboard::File(p) = &self.outboard {
            if !p.as_os_str().is_empty() {
                let _ = std::fs::remove_file(p);
            }
        }
    }
}

/// Takes a blob piece by piece into a temporary file, hashing it and building
/// its outboard on the way, so the blob is never held whole in memory.
/// Dropped unfinished, it removes its files.
#[derive(Debug)]
pub struct BlobWriter {
    file: File,
    path: PathBuf,
    outboard: OutboardBuilder,
    /// The outboard's file once it outgrew the record.
    spilled: Option<(File, PathBuf)>,
    written: u64,
    written_back: u64,
}

impl BlobWriter {
    /// A writer with its temporary files in `tmp_dir`.
    pub fn create(tmp_dir: &Path) -> Result<Self, StoreError> {
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let path = tmp_dir.join(format!("import-{}-{id}", std::process::id()));
        Ok(Self {
            file: create_file(&path)?,
            path,
            outboard: OutboardBuilder::new(),
            spilled: None,
            written: 0,
            written_back: 0,
        })
    }

    /// Appends `data`.
    pub fn write(&mut self, data: &[u8]) -> Result<(), StoreError> {
        self.outboard.update(data);
        self.file.write_all(data)?;
        self.written += data.len() as u64;
        if self.outboard.pending_pairs() > OUTBOARD_INLINE_MAX {
            let pairs = self.outboard.take_pairs();
            self.spill()?.write_all(&pairs)?;
        }
        if self.written - self.written_back >= WRITEBACK_STEP {
            start_writeback(
                &self.file,
                self.written_back,
                self.written - self.written_back,
            );
            self.written_back = self.written;
        }
        Ok(())
    }

    fn spill(&mut self) -> Result<&mut File, StoreError> {
        if self.spilled.is_none() {
            let path = self.path.with_extension("obao");
            self.spilled = Some((create_file(&path)?, path));
        }
        Ok(&mut self.spilled.as_mut().expect("just created").0)
    }

    /// Bytes written so far.
    pub fn len(&self) -> u64 {
        self.written
    }

    /// Whether nothing was written yet.
    pub fn is_empty(&self) -> bool {
        self.written == 0
    }

    /// Hands the file (and outboard) over for linking: fsynced, or for a blob
    /// up to 4 MiB with its writeback started, to be
    /// fsynced with the rest of the writer's batch.
    pub fn finish(mut self) -> Result<Staged, StoreError> {
        let builder = std::mem::take(&mut self.outboard);
        let (cid, rest) = builder.finalize();
        let outboard = if self.spilled.is_some() || rest.len() > OUTBOARD_INLINE_MAX {
            let file = self.spill()?;
            file.write_all(&rest)?;
            file.sync_data()?;
            StagedOutboard::File(std::mem::take(
                &mut self.spilled.as_mut().expect("spilled").1,
            ))
        } else {
            StagedOutboard::Inline(rest)
        };
        let in_batch =
            self.written <= SYNC_IN_BATCH_MAX && matches!(outboard, StagedOutboard::Inline(_));
        let unsynced = if in_batch {
            start_writeback(
                &self.file,
                self.written_back,
                self.written - self.written_back,
            );
            Some(self.file.try_clone()?)
        } else {
            self.file.sync_data()?;
            None
        };
        Ok(Staged {
            cid,
            size: self.written,
            data: std::mem::take(&mut self.path),
            outboard,
            unsynced,
        })
    }

    /// Copies the file at `source` into a new writer and finishes it, reading
    /// through `buf` (grown to 1 MiB).
    pub fn import(tmp_dir: &Path, source: &Path, buf: &mut Vec<u8>) -> Result<Staged, StoreError> {
        let named = |e: std::io::Error| match StoreError::from(e) {
            StoreError::Io(msg) => StoreError::Io(format!("{}: {msg}", source.display())),
            other => other,
        };
        let mut src = File::open(source).map_err(named)?;
        let mut writer = Self::create(tmp_dir)?;
        buf.resize(IMPORT_BUFFER, 0);
        loop {
            let n = match src.read(buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(named(e)),
            };
            writer.write(&buf[..n])?;
        }
        writer.finish()
    }
}

impl Drop for BlobWriter {
    fn drop(&mut self) {
        if !self.path.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.path);
        }
        if let Some((_, p)) = &self.spilled {
            if !p.as_os_str().is_empty() {
                let _ = std::fs::remove_file(p);
            }
        }
    }
}

/// What an ingest thread turns into a [`Staged`] blob.
pub(crate) enum Source {
    Bytes(Box<dyn Payload>),
    File(PathBuf),
    Writer(Box<BlobWriter>),
}

struct Job {
    source: Source,
    tags: Vec<Tag>,
    reply: Box<dyn WriteReply>,
}

/// A few threads that write large blobs to files and pass them on to the
/// writer thread, so neither a BEAM scheduler nor the group-commit writer
/// ever waits for a large blob's bytes to reach the disk.
pub(crate) struct IngestPool {
    queue: Mutex<Option<SyncSender<Job>>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl IngestPool {
    pub(crate) fn start(
        threads: usize,
        capacity: usize,
        tmp_dir: PathBuf,
        committer: Arc<Committer>,
    ) -> Result<Self, StoreError> {
        let (tx, rx) = mpsc::sync_channel::<Job>(capacity.max(1));
        let rx = Arc::new(Mutex::new(rx));
        let handles = (0..threads.max(1))
            .map(|i| {
                let (rx, tmp, committer) =
                    (Arc::clone(&rx), tmp_dir.clone(), Arc::clone(&committer));
                std::thread::Builder::new()
                    .name(format!("keyring-store-ingest-{i}"))
                    .spawn(move || serve(&rx, &tmp, &committer))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            queue: Mutex::new(Some(tx)),
            threads: Mutex::new(handles),
        })
    }

    /// Queues a blob without blocking ([`StoreError::Busy`] when full).
    pub(crate) fn submit(
        &self,
        source: Source,
        tags: Vec<Tag>,
        reply: Box<dyn WriteReply>,
    ) -> Result<(), (StoreError, Box<dyn WriteReply>)> {
        let guard = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        let Some(tx) = guard.as_ref() else {
            return Err((StoreError::Closed, reply));
        };
        match tx.try_send(Job {
            source,
            tags,
            reply,
        }) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(job)) => Err((StoreError::Busy, job.reply)),
            Err(TrySendError::Disconnected(job)) => Err((StoreError::Closed, job.reply)),
        }
    }

    /// Stops taking jobs, finishes the queued ones and joins the threads.
    pub(crate) fn close(&self) {
        self.queue.lock().unwrap_or_else(|e| e.into_inner()).take();
        let handles = std::mem::take(&mut *self.threads.lock().unwrap_or_else(|e| e.into_inner()));
        for handle in handles {
            let _ = handle.join();
        }
    }
}

impl Drop for IngestPool {
    fn drop(&mut self) {
        self.queue.lock().unwrap_or_else(|e| e.into_inner()).take();
    }
}

fn serve(rx: &Mutex<Receiver<Job>>, tmp_dir: &Path, committer: &Committer) {
    let mut buf = Vec::new();
    loop {
        let job = rx.lock().unwrap_or_else(|e| e.into_inner()).recv();
        let Ok(Job {
            source,
            tags,
            reply,
        }) = job
        else {
            return;
        };
        let staged = catch_unwind(AssertUnwindSafe(|| stage(source, tmp_dir, &mut buf)))
            .unwrap_or_else(|_| Err(StoreError::Io("store ingest thread panicked".into())));
        match staged {
            Ok(staged) => committer.submit_blocking(WriteOp::Link { staged, tags }, reply),
            Err(e) => reply.send(Err(e)),
        }
        if buf.capacity() > IMPORT_BUFFER {
            buf = Vec::new();
        }
    }
}

fn stage(source: Source, tmp_dir: &Path, buf: &mut Vec<u8>) -> Result<Staged, StoreError> {
    match source {
        Source::Writer(writer) => writer.finish(),
        Source::File(path) => BlobWriter::import(tmp_dir, &path, buf),
        Source::Bytes(payload) => {
            let mut writer = BlobWriter::create(tmp_dir)?;
            let mut result = Ok(());
            payload.with_bytes(&mut |bytes| result = writer.write(bytes));
            result?;
            writer.finish()
        }
    }
}
