//! `GET /v1/events`: one feeder task per client, reading the shared
//! [`EventLog`](crate::events::EventLog) at its own cursor and writing into a
//! one-slot channel that hyper drains as the socket accepts bytes. A client
//! that reads slowly holds its feeder at `send`, falls behind the ring and is
//! told so (`lagged`); one that reads nothing for `sse_stall_timeout` is cut.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::{header, Response};
use tokio::sync::mpsc;

use crate::body::{ChannelBody, ResponseBody};
use crate::events::{lagged_frame, EventId, Filter, Start};
use crate::problem::Problem;
use crate::query;
use crate::server::{lock, Shared};

/// Events sent per wake-up at most (one socket write).
const BATCH: usize = 256;

/// What a client asked for.
pub(crate) struct Subscription {
    pub(crate) filter: Filter,
    pub(crate) start: Start,
}

impl Subscription {
    /// From `?types=&subject=&replay=all&last_event_id=` and the
    /// `Last-Event-ID` header (which wins: browsers send it on reconnect).
    pub(crate) fn parse(
        params: &[(String, String)],
        last_event_id: Option<&[u8]>,
    ) -> Result<Self, Problem> {
        let filter = Filter::new(query::get(params, "types"), query::get(params, "subject"));
        let last = match last_event_id {
            Some(raw) => Some(std::str::from_utf8(raw).unwrap_or("").to_string()),
            None => query::get(params, "last_event_id").map(str::to_string),
        };
        let start = match last.as_deref() {
            Some("") | None => match query::get(params, "replay") {
                Some("all") => Start::Oldest,
                None | Some("") | Some("none") => Start::Live,
                Some(_) => return Err(Problem::new(400, "bad_query", "replay is 'all' or 'none'")),
            },
            Some(text) => Start::After(EventId::parse(text).ok_or_else(|| {
                Problem::new(
                    400,
                    "bad_last_event_id",
                    "Last-Event-ID must be an id this server sent (<epoch>-<seq>)",
                )
            })?),
        };
        Ok(Self { filter, start })
    }
}

/// Opens a stream, or 503 when `max_sse_clients` are connected.
pub(crate) fn open(
    shared: &Arc<Shared>,
    sub: Subscription,
) -> Result<Response<ResponseBody>, Problem> {
    let slot = Slot::take(shared).ok_or_else(|| {
        Problem::new(
            503,
            "too_many_clients",
            "the event stream has as many clients as it takes",
        )
    })?;
    let (cursor, lag) = lock(&shared.log).cursor(sub.start);
    let (tx, rx) = mpsc::channel(1);
    shared.stats.sse_total.fetch_add(1, Ordering::Relaxed);
    tokio::spawn(feed(Arc::clone(shared), slot, cursor, lag, sub.filter, tx));
    let resp = Response::builder()
        .status(200)
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-store")
        .header("x-accel-buffering", "no")
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
        .body(http_body_util::BodyExt::boxed(ChannelBody::new(
            rx, None, None,
        )))
        .expect("static headers are valid");
    Ok(resp)
}

/// Counts a connected client; gives the place back when dropped.
struct Slot(Arc<Shared>);

impl Slot {
    fn take(shared: &Arc<Shared>) -> Option<Self> {
        let max = shared.config.max_sse_clients;
        let taken = shared
            .sse_clients
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            });
        taken.ok().map(|_| Self(Arc::clone(shared)))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.sse_clients.fetch_sub(1, Ordering::AcqRel);
    }
}

async fn feed(
    shared: Arc<Shared>,
    _slot: Slot,
    mut cursor: u64,
    mut lag: Option<u64>,
    filter: Filter,
    tx: mpsc::Sender<Bytes>,
) {
    let stall = shared.config.sse_stall_timeout;
    let keepalive = shared.config.keepalive;
    let mut changes = shared.log_tx.subscribe();
    let mut shutdown = shared.shutdown_rx.clone();
    if !send(
        &tx,
        Bytes::from_static(b"retry: 2000\n: keyring events\n\n"),
        stall,
    )
    .await
    {
        return;
    }
    loop {
        changes.borrow_and_update();
        let batch = lock(&shared.log).read(cursor, &filter, BATCH);
        cursor = batch.next;
        let missed = match (lag.take(), batch.lagged) {
            (Some(a), Some(b)) => Some(a + b),
            (a, b) => a.or(b),
        };
        if missed.is_some() || !batch.events.is_empty() {
            let mut out = BytesMut::new();
            if let Some(missed) = missed {
                shared.stats.lagged.fetch_add(1, Ordering::Relaxed);
                out.extend_from_slice(&lagged_frame(missed));
            }
            for e in &batch.events {
                out.extend_from_slice(&e.frame);
            }
            if !send(&tx, out.freeze(), stall).await {
                return;
            }
            continue;
        }
        tokio::select! {
            changed = changes.changed() => if changed.is_err() { return },
            _ = tokio::time::sleep(keepalive) => {
                if !send(&tx, Bytes::from_static(b": keep-alive\n\n"), stall).await {
                    return;
                }
            }
            _ = shutdown.changed() => return,
            // hyper dropped the body: the connection is gone.
            _ = tx.closed() => return,
        }
    }
}

async fn send(tx: &mpsc::Sender<Bytes>, bytes: Bytes, stall: Duration) -> bool {
    matches!(
        tokio::time::timeout(stall, tx.send(bytes)).await,
        Ok(Ok(()))
    )
}
