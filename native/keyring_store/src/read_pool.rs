//! A few reader threads that serve blob reads from a queue and answer each
//! by callback, so a read that waits for the disk never occupies a caller's
//! thread.
//!
//! Why not one thread per concurrent caller (the BEAM's ten dirty I/O
//! schedulers)? Reads that hit the OS page cache are CPU work, and ten
//! threads doing it on a two-core machine crowd out the BEAM's scheduler
//! threads: the benchmark's latency probe saw 5 ms wake-up delays. A small
//! fixed pool bounds how many threads compete for the cores.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use keyring_core::hash::Digest;

use crate::{BlobStore, OpenBlob, StoreError};

/// Where a reader thread sends the result of one read. It runs on the reader
/// thread, so it may read the opened blob's bytes itself (straight into the
/// buffer it answers with: one copy from the page cache).
pub trait ReadReply: Send + 'static {
    /// Delivers the opened blob (`None` when it is not stored) or the error.
    fn send(self: Box<Self>, result: Result<Option<OpenBlob>, StoreError>);
    /// The read was refused before it was queued; nothing will be sent.
    fn cancel(self: Box<Self>) {}
}

struct Job {
    cid: Digest,
    verify: bool,
    reply: Box<dyn ReadReply>,
}

/// See the module docs.
pub struct ReadPool {
    queue: Mutex<Option<SyncSender<Job>>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl ReadPool {
    /// Starts `threads` reader threads (at least one) for `store`, with a
    /// queue of `capacity` reads.
    pub fn start(store: &BlobStore, threads: usize, capacity: usize) -> Result<Self, StoreError> {
        let (tx, rx) = mpsc::sync_channel(capacity.max(1));
        let rx = Arc::new(Mutex::new(rx));
        let handles = (0..threads.max(1))
            .map(|i| {
                let (store, rx) = (store.clone(), Arc::clone(&rx));
                std::thread::Builder::new()
                    .name(format!("keyring-store-reader-{i}"))
                    .spawn(move || serve(&store, &rx))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            queue: Mutex::new(Some(tx)),
            threads: Mutex::new(handles),
        })
    }

    /// Queues a read of `cid` without blocking. Callers ask the cache before
    /// they queue. On failure ([`StoreError::Busy`] when the queue is full,
    /// [`StoreError::Closed`] after [`ReadPool::close`]) the reply is handed
    /// back unsent.
    pub fn submit(
        &self,
        cid: Digest,
        verify: bool,
        reply: Box<dyn ReadReply>,
    ) -> Result<(), (StoreError, Box<dyn ReadReply>)> {
        let guard = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        let Some(tx) = guard.as_ref() else {
            return Err((StoreError::Closed, reply));
        };
        match tx.try_send(Job { cid, verify, reply }) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(job)) => Err((StoreError::Busy, job.reply)),
            Err(TrySendError::Disconnected(job)) => Err((StoreError::Closed, job.reply)),
        }
    }

    /// Stops accepting reads, lets the threads answer what is queued, and
    /// joins them. Idempotent. Blocks: call it off the BEAM's normal
    /// schedulers.
    pub fn close(&self) {
        self.queue.lock().unwrap_or_else(|e| e.into_inner()).take();
        let handles = std::mem::take(&mut *self.threads.lock().unwrap_or_else(|e| e.into_inner()));
        for handle in handles {
            let _ = handle.join();
        }
    }
}

impl Drop for ReadPool {
    fn drop(&mut self) {
        // Never join here (Drop may run on a BEAM scheduler): without a
        // sender the threads drain the queue and exit on their own.
        self.queue.lock().unwrap_or_else(|e| e.into_inner()).take();
    }
}

fn serve(store: &BlobStore, rx: &Mutex<Receiver<Job>>) {
    loop {
        // The lock is held only while waiting for the next job.
        let job = rx.lock().unwrap_or_else(|e| e.into_inner()).recv();
        let Ok(Job { cid, verify, reply }) = job else {
            return;
        };
        let result = catch_unwind(AssertUnwindSafe(|| store.open_blob(&cid, verify)))
            .unwrap_or_else(|_| Err(StoreError::Io("store reader panicked".into())));
        // A panicking reply is dropped; its own Drop answers the caller.
        let _ = catch_unwind(AssertUnwindSafe(|| reply.send(result)));
    }
}
