//! Response bodies: whole (`Full`) or fed chunk by chunk through a channel
//! (SSE, blob downloads) with a deadline between chunks.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use tokio::sync::mpsc;
use tokio::time::{Instant, Sleep};

/// Errors a response body can end with (the connection is then cut).
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// The one response body type the server hands hyper.
pub(crate) type ResponseBody = BoxBody<Bytes, BoxError>;

/// A body that is all there already.
pub(crate) fn full(bytes: impl Into<Bytes>) -> ResponseBody {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed()
}

/// No body.
pub(crate) fn empty() -> ResponseBody {
    full(Bytes::new())
}

/// Why a channel body was cut.
#[derive(Debug, thiserror::Error)]
#[error("no data for {0:?}: the body was cut")]
pub(crate) struct Stalled(Duration);

/// Chunks from an `mpsc` channel; ends when every sender is gone, fails when
/// none arrives within `idle`. `on_drop` runs when hyper lets go of it
/// (finished, failed or the client went away).
pub(crate) struct ChannelBody {
    rx: mpsc::Receiver<Bytes>,
    idle: Option<Duration>,
    // Made on first poll: the body may be built off the runtime (by the NIF).
    deadline: Option<Pin<Box<Sleep>>>,
    length: Option<u64>,
    on_drop: Option<Box<dyn FnOnce() + Send + Sync>>,
}

impl ChannelBody {
    /// A body read from `rx`; `idle: None` waits forever (SSE, whose feeder
    /// keeps its own time).
    pub(crate) fn new(
        rx: mpsc::Receiver<Bytes>,
        idle: Option<Duration>,
        length: Option<u64>,
    ) -> Self {
        Self {
            rx,
            idle,
            deadline: None,
            length,
            on_drop: None,
        }
    }

    /// Runs `f` when the body is dropped.
    pub(crate) fn on_drop(mut self, f: impl FnOnce() + Send + Sync + 'static) -> Self {
        self.on_drop = Some(Box::new(f));
        self
    }
}

impl Drop for ChannelBody {
    fn drop(&mut self) {
        if let Some(f) = self.on_drop.take() {
            f();
        }
    }
}

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.rx.poll_recv(cx) {
            Poll::Ready(Some(chunk)) => {
                if let (Some(idle), Some(d)) = (self.idle, self.deadline.as_mut()) {
                    d.as_mut().reset(Instant::now() + idle);
                }
                Poll::Ready(Some(Ok(Frame::data(chunk))))
            }
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => {
                let Some(idle) = self.idle else {
                    return Poll::Pending;
                };
                let deadline = self
                    .deadline
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(idle)));
                match deadline.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(Stalled(idle))))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self.length {
            Some(n) => SizeHint::with_exact(n),
            None => SizeHint::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn channel_body_yields_chunks_then_ends() {
        let (tx, rx) = mpsc::channel(4);
        let body = ChannelBody::new(rx, Some(Duration::from_secs(5)), None);
        tx.send(Bytes::from_static(b"ab")).await.unwrap();
        tx.send(Bytes::from_static(b"cd")).await.unwrap();
        drop(tx);
        let all = body.collect().await.unwrap().to_bytes();
        assert_eq!(&all[..], b"abcd");
    }

    #[tokio::test]
    async fn channel_body_fails_when_the_feeder_stalls() {
        let (_tx, rx) = mpsc::channel::<Bytes>(4);
        let body = ChannelBody::new(rx, Some(Duration::from_millis(30)), None);
        assert!(body.collect().await.is_err());
    }

    #[tokio::test]
    async fn on_drop_runs() {
        let (_tx, rx) = mpsc::channel::<Bytes>(1);
        let flag = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let f = flag.clone();
        drop(
            ChannelBody::new(rx, None, None)
                .on_drop(move || f.store(true, std::sync::atomic::Ordering::SeqCst)),
        );
        assert!(flag.load(std::sync::atomic::Ordering::SeqCst));
    }
}
