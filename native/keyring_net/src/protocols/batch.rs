//! One task that runs many small futures, so that work arriving together is
//! done in one poll of one task.
//!
//! Why: quinn's connection driver is woken by every stream write, and tokio
//! runs a woken task right after the task that woke it (its LIFO slot). With
//! a task per call (or per answer), every call's write is therefore followed
//! by a driver pass that sends it alone: one UDP datagram (one `sendmsg`,
//! which on loopback also runs the receiver's network stack) per request and
//! per answer. Futures in a [`Batch`] that are ready together are polled in
//! the same task poll, and the driver then sends their frames together,
//! several to a datagram. It also saves a task allocation per call.
//!
//! A future that panics is dropped alone (its owner sees what dropping it
//! means, e.g. `task_aborted`); the others go on.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::OnceLock;
use std::task::Poll;

use futures_util::stream::{FuturesUnordered, StreamExt};
use futures_util::FutureExt;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

use crate::protocol::BoxFuture;

/// Futures run by one task of the mesh's runtime (started by the first).
#[derive(Default)]
pub(crate) struct Batch {
    tx: OnceLock<UnboundedSender<BoxFuture>>,
}

impl Batch {
    /// Runs `future` in the batch task on `runtime` (callable from any thread).
    pub(crate) fn spawn<F>(&self, runtime: &tokio::runtime::Handle, future: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let future: BoxFuture = Box::pin(AssertUnwindSafe(future).catch_unwind().map(|_| ()));
        let tx = self.tx.get_or_init(|| {
            let (tx, rx) = unbounded_channel();
            runtime.spawn(run(rx));
            tx
        });
        // The batch task is gone only if it panicked or the runtime is
        // shutting down: run the future on its own then.
        if let Err(refused) = tx.send(future) {
            runtime.spawn(refused.0);
        }
    }
}

/// Takes every future that has arrived, then polls the woken ones, until
/// nothing is ready; ends when the batch is dropped and its futures are done.
async fn run(mut rx: UnboundedReceiver<BoxFuture>) {
    let mut running = FuturesUnordered::new();
    let mut open = true;
    std::future::poll_fn(|cx| loop {
        while open {
            match rx.poll_recv(cx) {
                Poll::Ready(Some(future)) => running.push(future),
                Poll::Ready(None) => open = false,
                Poll::Pending => break,
            }
        }
        match running.poll_next_unpin(cx) {
            Poll::Ready(Some(())) => continue,
            Poll::Ready(None) if !open => return Poll::Ready(()),
            _ => return Poll::Pending,
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    #[test]
    fn futures_submitted_from_outside_the_runtime_all_run_and_a_panic_stays_alone() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let batch = Batch::default();
        let done = Arc::new(AtomicUsize::new(0));
        batch.spawn(rt.handle(), async { panic!("one bad future") });
        for i in 0..100u64 {
            let done = done.clone();
            batch.spawn(rt.handle(), async move {
                tokio::time::sleep(std::time::Duration::from_millis(i % 7)).await;
                done.fetch_add(1, Ordering::Relaxed);
            });
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while done.load(Ordering::Relaxed) < 100 && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert_eq!(done.load(Ordering::Relaxed), 100);
    }
}
