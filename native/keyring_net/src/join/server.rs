//! The join endpoint and its fences. It accepts any Ed25519 key, so it must
//! stay cheap for strangers:
//!
//! - every source proves its address with a QUIC Retry first;
//! - new connections are rate-limited per source (/32, /64:
//!   [`crate::Limits::join_source_burst`], `joins_per_source_per_second`) and
//!   in all (`join_burst`, `joins_per_second`); at most
//!   `max_join_connections` are open at once, `max_joins_per_source` from one
//!   source. Refused joiners see `Busy` and retry within their deadline;
//! - the JoinRequest must arrive within `join_request_deadline`, and the
//!   whole exchange ends within `join_deadline` of the handshake;
//! - the invite's signature and expiry are checked here, statelessly,
//!   before a join costs the node anything else: only a signed, unexpired
//!   invite for a keyring this node is in, issued by one of its members (and
//!   presented by the key it is bound to, if any), takes one of the
//!   `max_joins_in_flight` places and reaches the owner
//!   (`Event::JoinRequest`). Anything else is answered `BadInvite` at once,
//!   whether or not this node knows the keyring;
//! - the place is given back as soon as the answer is written.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use keyring_core::membership::{Invite, PublicKey};
use keyring_core::wire::frame::{self, Frame, Refusal};
use quinn::{Connection, Endpoint, Incoming, SendStream};
use tokio::sync::{oneshot, Semaphore};
use tokio::time::Instant;

use crate::budget::Budget;
use crate::close::{code, CLOSE_LIMIT, CLOSE_NORMAL};
use crate::config::Limits;
use crate::event::{Event, EventSink};
use crate::fence::{join_verdict, Gate, Verdict};
use crate::members::{now_ms, Members};
use crate::rate::{KeyedBuckets, Source, TokenBucket};
use crate::stream::{FramedRecv, StreamRules};
use crate::tls::peer_key;

/// Largest JoinRequest payload (an invite is a few hundred bytes).
pub(crate) const JOIN_REQUEST_LIMIT: usize = 4096;
/// Longest the server waits for the joiner to take its answer.
const LINGER: Duration = Duration::from_secs(1);

/// The owner's answer to a join: the membership log, or a refusal.
pub type JoinAnswer = Result<Vec<Vec<u8>>, Refusal>;

/// The join endpoint.
pub(crate) struct JoinServer {
    pub(crate) endpoint: Endpoint,
    members: Arc<Members>,
    sink: Arc<dyn EventSink>,
    limits: Limits,
    rules: StreamRules,
    gate: Arc<Gate>,
    in_flight: Arc<Semaphore>,
    pending: Mutex<HashMap<u64, oneshot::Sender<JoinAnswer>>>,
    next_id: AtomicU64,
}

impl JoinServer {
    pub(crate) fn new(
        endpoint: Endpoint,
        members: Arc<Members>,
        sink: Arc<dyn EventSink>,
        limits: &Limits,
    ) -> Arc<Self> {
        Arc::new(Self {
            endpoint,
            members,
            sink,
            rules: StreamRules::new(limits),
            gate: Gate::new(limits.max_join_connections, limits.max_joins_per_source),
            in_flight: Arc::new(Semaphore::new(limits.max_joins_in_flight.max(1))),
            limits: limits.clone(),
            pending: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
        })
    }

    /// Answers a join the owner was told about; false if it is gone (its
    /// deadline passed or the joiner left).
    pub(crate) fn answer(&self, id: u64, answer: JoinAnswer) -> bool {
        let slot = self
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
        slot.is_some_and(|tx| tx.send(answer).is_ok())
    }

    pub(crate) async fn accept(self: Arc<Self>) {
        let l = &self.limits;
        let mut per_source = KeyedBuckets::new(
            l.join_source_burst,
            l.joins_per_source_per_second,
            l.tracked_sources,
        );
        let mut all = TokenBucket::new(l.join_burst, l.joins_per_second, std::time::Instant::now());
        while let Some(incoming) = self.endpoint.accept().await {
            let source = Source::of(incoming.remote_address());
            let verdict = join_verdict(incoming.remote_address_validated(), incoming.may_retry());
            if verdict == Verdict::Retry {
                let _ = incoming.retry();
                continue;
            }
            let now = std::time::Instant::now();
            let ticket = if per_source.take(&source, now) && all.take(now) {
                self.gate.enter(source)
            } else {
                None
            };
            let Some(ticket) = ticket else {
                incoming.refuse();
                continue;
            };
            let server = self.clone();
            tokio::spawn(async move {
                let deadline = Instant::now() + server.limits.join_deadline;
                let _ = tokio::time::timeout_at(deadline, server.serve(incoming, deadline)).await;
                drop(ticket);
            });
        }
    }

    async fn serve(&self, incoming: Incoming, deadline: Instant) {
        let Ok(conn) = incoming.await else { return };
        let Some(peer) = peer_key(&conn) else { return };
        let request =
            tokio::time::timeout(self.limits.join_request_deadline, self.request(&conn)).await;
        let Ok(Some((send, invite))) = request else {
            conn.close(code(CLOSE_LIMIT), b"no join request in time");
            return;
        };
        if !self.plausible(&invite, &peer) {
            return finish(&conn, send, &Frame::JoinRefused(Refusal::BadInvite)).await;
        }
        let Ok(place) = self.in_flight.clone().try_acquire_owned() else {
            conn.close(code(CLOSE_LIMIT), b"busy");
            return;
        };
        let (tx, rx) = oneshot::channel();
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, tx);
        self.sink.deliver(Event::JoinRequest {
            id,
            peer,
            invite: invite.to_vec(),
        });
        let answer = tokio::time::timeout_at(deadline, rx).await;
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
        let frame_bytes = match answer {
            Ok(Ok(Ok(entries))) => Frame::JoinAccepted {
                entries: entries.iter().map(Vec::as_slice).collect(),
            }
            .encode(),
            // The wire never says "unknown keyring" (see `Refusal`).
            Ok(Ok(Err(_))) => Frame::JoinRefused(Refusal::BadInvite).encode(),
            _ => Frame::JoinRefused(Refusal::Other).encode(),
        };
        let Ok(frame_bytes) = frame_bytes else { return };
        let mut send = send;
        let written = send.write_all(&frame_bytes).await.is_ok();
        let _ = send.finish();
        // The place is free as soon as the answer is written.
        drop(place);
        if written {
            let _ = tokio::time::timeout(LINGER, send.stopped()).await;
        }
        conn.close(code(CLOSE_NORMAL), b"answered");
    }

    /// The JoinRequest's invite and the stream to answer on.
    async fn request(&self, conn: &Connection) -> Option<(SendStream, Bytes)> {
        let (send, recv) = conn.accept_bi().await.ok()?;
        let budget = Budget::new(
            JOIN_REQUEST_LIMIT + frame::HEADER_LEN,
            Arc::new(Semaphore::new(JOIN_REQUEST_LIMIT + frame::HEADER_LEN)),
        );
        let mut recv = FramedRecv::new(recv, Bytes::new(), budget, self.rules);
        let read = recv.read_frame(JOIN_REQUEST_LIMIT).await.ok()?;
        let bytes = Bytes::from(read.bytes);
        match frame::decode(&bytes, JOIN_REQUEST_LIMIT) {
            Ok(Frame::JoinRequest { invite }) => {
                let at = bytes.len() - invite.len();
                Some((send, bytes.slice(at..)))
            }
            _ => None,
        }
    }

    /// The stateless check: a well-formed invite, signed by its issuer,
    /// unexpired, for a keyring this node is in, issued by one of its
    /// current members, and (if it is bound to a key) presented by that key.
    /// (Whether the issuer is an admin, and how often the invite was used,
    /// is the owner's call.)
    fn plausible(&self, invite: &[u8], joiner: &PublicKey) -> bool {
        let Ok(invite) = Invite::decode(invite) else {
            return false;
        };
        invite.bound_key.is_none_or(|k| k == *joiner)
            && self.members.is_member(&invite.keyring_id, &invite.issuer)
            && invite.verify(now_ms()).is_ok()
    }
}

/// Writes `frame` as the answer and closes once the joiner has it.
async fn finish(conn: &Connection, mut send: SendStream, frame: &Frame<'_>) {
    if let Ok(bytes) = frame.encode() {
        if send.write_all(&bytes).await.is_ok() {
            let _ = send.finish();
            let _ = tokio::time::timeout(LINGER, send.stopped()).await;
        }
    }
    conn.close(code(CLOSE_NORMAL), b"answered");
}
