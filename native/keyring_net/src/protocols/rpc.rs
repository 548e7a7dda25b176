//! The RPC protocol: a call is one bidirectional stream (a `Request` frame
//! out, a `Response` frame back), a cast one unidirectional stream (a `Cast`
//! frame). Requests and casts go to an [`RpcHandler`] (the BEAM's dispatch);
//! a request is answered with [`Rpc::respond`].
//!
//! Calls started from outside the runtime ([`Rpc::start_call`], what the
//! NIF uses) and the writing of answers run as futures of one task per node
//! (see `batch`): requests and answers that are ready together are written
//! in one poll and leave in shared datagrams instead of one each.
//!
//! Fences: frames are read under the stream fences (size limit, byte rate,
//! memory budget). A request keeps its budget charge until it is answered,
//! so a peer's unanswered requests hold at most its budget
//! ([`crate::Limits::peer_budget`]) however slow the handlers are; the
//! number of calls in flight per connection is QUIC's stream limit
//! ([`crate::Limits::max_bidi_streams`]). Casts are rate-limited per peer
//! ([`crate::Limits::cast_burst`], `casts_per_second`): beyond it a cast
//! waits for its turn before it is read, holding its stream, so the sender
//! slows down (nothing is dropped). An
//! answer the caller does not take is dropped after the stream's byte-rate
//! deadline.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use keyring_core::membership::PublicKey;
use keyring_core::wire::frame::{self, Frame, Status};
use quinn::SendStream;
use tokio::time::Instant;

use crate::budget::Charge;
use crate::close::{stream_code, STREAM_DROPPED, STREAM_TOO_SLOW};
use crate::config::Limits;
use crate::connect::Opener;
use crate::error::{closed_reason, read_failed, CallError};
use crate::protocol::{BoxFuture, PeerLink, Protocol, ProtocolId, Target, PROTOCOL_RPC};
use crate::protocols::batch::Batch;
use crate::protocols::turn;
use crate::rate::KeyedBuckets;
use crate::stream::{FramedRecv, ReadFrameError, StreamRules};

/// A call from a member: answer it with [`Rpc::respond`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Answer handle.
    pub id: u64,
    /// Keyring of the connection.
    pub keyring: PublicKey,
    /// Caller (TLS-authenticated).
    pub peer: PublicKey,
    /// Exposed name.
    pub name: String,
    /// Restricted-term arguments.
    pub body: Bytes,
}

/// A one-way call from a member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cast {
    /// Keyring of the connection.
    pub keyring: PublicKey,
    /// Caller (TLS-authenticated).
    pub peer: PublicKey,
    /// Exposed name.
    pub name: String,
    /// Restricted-term arguments.
    pub body: Bytes,
}

/// Takes requests and casts, on a runtime thread. Must not block.
pub trait RpcHandler: Send + Sync + 'static {
    /// Takes a request (answer it with [`Rpc::respond`], exactly once).
    fn request(&self, request: Request);
    /// Takes a cast.
    fn cast(&self, cast: Cast);
}

/// A request waiting for its answer.
struct Pending {
    send: SendStream,
    link: PeerLink,
    _charge: Charge,
}

/// The RPC protocol.
pub struct Rpc {
    handler: Arc<dyn RpcHandler>,
    pending: Mutex<HashMap<u64, Pending>>,
    next_id: AtomicU64,
    casts: Mutex<KeyedBuckets<PublicKey>>,
    rules: StreamRules,
    max_payload: usize,
    runtime: OnceLock<tokio::runtime::Handle>,
    /// Answers being written and calls in flight (see [`Batch`]).
    batch: Batch,
}

impl std::fmt::Debug for Rpc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Rpc")
    }
}

impl Rpc {
    /// The protocol, delivering to `handler` under `limits`.
    pub fn new(handler: Arc<dyn RpcHandler>, limits: &Limits, max_payload: usize) -> Arc<Self> {
        Arc::new(Self {
            handler,
            pending: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            casts: Mutex::new(KeyedBuckets::new(
                limits.cast_burst,
                limits.casts_per_second,
                limits.tracked_sources,
            )),
            rules: StreamRules::new(limits),
            max_payload,
            runtime: OnceLock::new(),
            batch: Batch::default(),
        })
    }

    /// Answers request `id` with `status` and `body`; false if there is no
    /// such request (answered already, or its peer reset the stream).
    pub fn respond(&self, id: u64, status: Status, body: Bytes) -> bool {
        let pending = self
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
        let (Some(mut pending), Some(runtime)) = (pending, self.runtime.get()) else {
            return false;
        };
        let Ok(prefix) = frame::response_prefix(status, body.len()) else {
            let _ = pending.send.reset(stream_code(STREAM_DROPPED));
            return true;
        };
        // A caller that does not take its answer gets the byte-rate deadline.
        let within = self.rules.allowance(body.len());
        self.batch.spawn(runtime, async move {
            let mut pieces = [Bytes::from(prefix), body];
            let write = pending.send.write_all_chunks(&mut pieces);
            match tokio::time::timeout(within, write).await {
                Ok(Ok(())) => {
                    let _ = pending.send.finish();
                }
                _ => {
                    let _ = pending.send.reset(stream_code(STREAM_TOO_SLOW));
                }
            }
        });
        true
    }

    /// [`call`](Self::call) by `deadline`, run on the mesh's runtime with
    /// the other calls and answers of this node (see [`Batch`]): `done`
    /// gets the result there (or is dropped unrun if the runtime shuts down
    /// first). Callable from any thread.
    pub fn start_call<D>(
        self: &Arc<Self>,
        opener: Opener,
        to: Target,
        name: String,
        body: Vec<Bytes>,
        deadline: Instant,
        done: D,
    ) where
        D: FnOnce(Result<(Status, Bytes), CallError>) + Send + 'static,
    {
        let rpc = self.clone();
        let runtime = opener.runtime().clone();
        self.batch.spawn(&runtime, async move {
            let call = rpc.call(&opener, to, &name, body, deadline);
            done(
                tokio::time::timeout_at(deadline, call)
                    .await
                    .unwrap_or(Err(CallError::Timeout)),
            );
        });
    }

    /// [`cast`](Self::cast) as [`start_call`](Self::start_call) runs a call.
    pub fn start_cast<D>(
        self: &Arc<Self>,
        opener: Opener,
        to: Target,
        name: String,
        body: Vec<Bytes>,
        deadline: Instant,
        done: D,
    ) where
        D: FnOnce(Result<(), CallError>) + Send + 'static,
    {
        let rpc = self.clone();
        let runtime = opener.runtime().clone();
        self.batch.spawn(&runtime, async move {
            let cast = rpc.cast(&opener, to, &name, body, deadline);
            done(
                tokio::time::timeout_at(deadline, cast)
                    .await
                    .unwrap_or(Err(CallError::Timeout)),
            );
        });
    }

    /// Calls `name` on `to` with `body` (its pieces, sent in order),
    /// dialling it if needed; the reply's status and body, or why there is
    /// none, by `deadline`.
    pub async fn call(
        &self,
        opener: &Opener,
        to: Target,
        name: &str,
        body: Vec<Bytes>,
        deadline: Instant,
    ) -> Result<(Status, Bytes), CallError> {
        let message = message(false, name, body)?;
        let mut retried = false;
        loop {
            let link = opener.link(to, deadline).await?;
            let attempt = async {
                let (mut send, mut recv) = link.open_bi(PROTOCOL_RPC).await?;
                send.write(message.clone())
                    .await
                    .map_err(|_| closed_reason(link.connection()))?;
                send.finish();
                recv.read_frame(self.max_payload)
                    .await
                    .map_err(|e| read_failed(link.connection(), e))
            };
            match attempt.await {
                Ok(reply) => {
                    let bytes = Bytes::from(reply.bytes);
                    return match frame::decode(&bytes, self.max_payload) {
                        Ok(Frame::Response { status, body }) => Ok((status, bytes.slice_ref(body))),
                        Ok(_) => Err(CallError::Protocol("expected Response".into())),
                        Err(e) => Err(CallError::Protocol(e.to_string())),
                    };
                }
                // A cached connection may have died since we picked it: redial once.
                Err(CallError::ConnectionLost(_)) if !retried => retried = true,
                Err(e) => return Err(e),
            }
        }
    }

    /// Sends `name` to `to` without waiting for a reply (`body` as in
    /// [`call`](Self::call)); Ok once the bytes were handed to the link.
    pub async fn cast(
        &self,
        opener: &Opener,
        to: Target,
        name: &str,
        body: Vec<Bytes>,
        deadline: Instant,
    ) -> Result<(), CallError> {
        let message = message(true, name, body)?;
        let link = opener.link(to, deadline).await?;
        let mut send = link.open_uni(PROTOCOL_RPC).await?;
        send.write(message)
            .await
            .map_err(|_| closed_reason(link.connection()))?;
        send.finish();
        Ok(())
    }

    async fn serve_request(
        self: Arc<Self>,
        link: PeerLink,
        mut send: SendStream,
        mut recv: FramedRecv,
    ) {
        let _ = self.runtime.set(tokio::runtime::Handle::current());
        let frame = match recv.read_frame(self.max_payload).await {
            Ok(frame) => frame,
            Err(ReadFrameError::Frame(_)) => return bad_request(send).await,
            Err(_) => {
                let _ = send.reset(stream_code(STREAM_DROPPED));
                return;
            }
        };
        let bytes = Bytes::from(frame.bytes);
        let (name, body) = match frame::decode(&bytes, self.max_payload) {
            Ok(Frame::Request { name, body }) if link.is_member() => {
                (name.to_owned(), bytes.slice_ref(body))
            }
            _ => return bad_request(send).await,
        };
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        // Requests whose connection has ended will never be taken: drop them
        // (and their charges) now and then, so an owner that loses answers
        // cannot leak a closed link's budget.
        if pending.len() >= 64 && pending.len().is_power_of_two() {
            pending.retain(|_, p| !p.link.is_closed());
        }
        pending.insert(
            id,
            Pending {
                send,
                link: link.clone(),
                _charge: frame.charge,
            },
        );
        drop(pending);
        self.handler.request(Request {
            id,
            keyring: link.keyring(),
            peer: link.peer(),
            name,
            body,
        });
    }

    async fn serve_cast(self: Arc<Self>, link: PeerLink, mut recv: FramedRecv) {
        // The turn is taken before the frame is read (see `membership`).
        let peer = link.peer();
        turn(&self.casts, &peer).await;
        let Ok(frame) = recv.read_frame(self.max_payload).await else {
            return;
        };
        let bytes = Bytes::from(frame.bytes);
        let (name, body) = match frame::decode(&bytes, self.max_payload) {
            Ok(Frame::Cast { name, body }) => (name.to_owned(), bytes.slice_ref(body)),
            _ => return recv.stop(crate::close::STREAM_BAD_FRAME),
        };
        if !link.is_member() {
            return;
        }
        self.handler.cast(Cast {
            keyring: link.keyring(),
            peer,
            name,
            body,
        });
        drop(frame.charge);
    }
}

impl Protocol for Rpc {
    fn id(&self) -> ProtocolId {
        PROTOCOL_RPC
    }

    fn accept_bi(self: Arc<Self>, link: PeerLink, send: SendStream, recv: FramedRecv) -> BoxFuture {
        Box::pin(self.serve_request(link, send, recv))
    }

    fn accept_uni(self: Arc<Self>, link: PeerLink, recv: FramedRecv) -> BoxFuture {
        Box::pin(self.serve_cast(link, recv))
    }
}

/// A Request or Cast frame: its prefix, then the body's pieces.
fn message(cast: bool, name: &str, body: Vec<Bytes>) -> Result<Vec<Bytes>, CallError> {
    let len = body.iter().map(Bytes::len).sum();
    let prefix =
        frame::message_prefix(cast, name, len).map_err(|e| CallError::Protocol(e.to_string()))?;
    let mut message = Vec::with_capacity(body.len() + 1);
    message.push(Bytes::from(prefix));
    message.extend(body);
    Ok(message)
}

/// Answers a malformed or unexpected request with BadRequest (never a crash).
async fn bad_request(mut send: SendStream) {
    if let Ok(reply) = (Frame::Response {
        status: Status::BadRequest,
        body: &[],
    })
    .encode()
    {
        let write = send.write_all(&reply);
        if tokio::time::timeout(Duration::from_secs(2), write)
            .await
            .is_ok()
        {
            let _ = send.finish();
        }
    }
}
