//! Set reconciliation (protocol 6): two members find which cids shared in
//! their common keyring one has and the other lacks, with negentropy v1
//! ([`keyring_core::reconcile`]) on one bidirectional stream
//! ([`keyring_core::reconcile::framing`]). The initiator learns `have` (it
//! holds, the peer lacks) and `need` (the peer holds, it lacks); the
//! responder keeps no state between messages.
//!
//! The set of a keyring is what [`SharedSet::shared`] lists: the cids shared
//! in it (timestamps all zero: items are ordered by cid). A responder reads
//! it at most once per [`ReconcileLimits::set_ttl`] per keyring (sessions in
//! that window see the same snapshot; a change shows at the next one).
//!
//! **Fences.** Each message is at most [`ReconcileLimits::max_message`]
//! bytes (its length checked before its bytes are awaited) and read under
//! the stream's byte-rate deadline; answers are cut at
//! [`ReconcileLimits::frame_limit`] (ranges that do not fit are carried to
//! the next round, as negentropy specifies); a session has at most
//! [`ReconcileLimits::max_rounds`] rounds and [`ReconcileLimits::session`]
//! in all; a peer runs at most [`ReconcileLimits::sessions_per_peer`] at
//! once (more are answered "busy"); the set is built on a blocking thread.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use keyring_core::membership::PublicKey;
use keyring_core::reconcile::framing::{decode_frame, encode_frame};
use keyring_core::reconcile::{Config, Id, Initiator, Item, Items, ReconcileError, Responder};
use quinn::SendStream;
use tokio::time::Instant;

use crate::close::{STREAM_BAD_FRAME, STREAM_TOO_SLOW};
use crate::connect::Opener;
use crate::error::CallError;
use crate::protocol::{BoxFuture, PeerLink, Protocol, ProtocolId, Target};
use crate::stream::{FramedRecv, ReadFrameError};

/// Set reconciliation streams begin with this byte.
pub const PROTOCOL_RECONCILE: ProtocolId = 6;

/// The sets to reconcile. May block (called on blocking threads).
pub trait SharedSet: Send + Sync + 'static {
    /// Every cid shared in `keyring`.
    fn shared(&self, keyring: &PublicKey) -> Result<Vec<Id>, String>;
}

/// The numbers of reconciliation's fences.
#[derive(Debug, Clone)]
pub struct ReconcileLimits {
    /// Largest message this side writes (negentropy's frame limit).
    pub frame_limit: usize,
    /// Largest message accepted.
    pub max_message: usize,
    /// Most rounds in one session.
    pub max_rounds: u32,
    /// Time a whole session may take (responder side).
    pub session: Duration,
    /// Sessions one peer may run at once.
    pub sessions_per_peer: usize,
    /// How long a responder reuses a keyring's set.
    pub set_ttl: Duration,
}

impl Default for ReconcileLimits {
    fn default() -> Self {
        Self {
            frame_limit: 2 << 20,
            max_message: 4 << 20,
            max_rounds: 32,
            session: Duration::from_secs(60),
            sessions_per_peer: 2,
            set_ttl: Duration::from_secs(2),
        }
    }
}

/// Why a reconciliation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReconcileFailure {
    /// The peer could not be reached, or the link broke.
    #[error("{0}")]
    Link(#[from] CallError),
    /// The peer runs as many reconciliations for us as it allows.
    #[error("the peer is busy")]
    Busy,
    /// A message did not decode or broke the protocol.
    #[error("{0}")]
    Protocol(ReconcileError),
    /// More rounds than allowed.
    #[error("more than {0} rounds")]
    TooManyRounds(u32),
    /// The peer sent slower than the minimum rate.
    #[error("the peer was too slow")]
    TooSlow,
    /// A message found no room in the link's memory budget in time.
    #[error("no room in the memory budget")]
    OverBudget,
    /// The local set could not be read.
    #[error("store: {0}")]
    Store(String),
    /// The deadline passed.
    #[error("timed out")]
    Timeout,
}

/// What a reconciliation found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Difference {
    /// Cids this node shares in the keyring and the peer lacks.
    pub have: Vec<Id>,
    /// Cids the peer shares in the keyring and this node lacks.
    pub need: Vec<Id>,
    /// Round trips taken.
    pub round_trips: u32,
    /// Bytes this node sent (frames included).
    pub sent: u64,
    /// Bytes this node received.
    pub received: u64,
    /// Items on this side.
    pub items: usize,
}

/// A keyring's set, built at `at`.
struct Cached {
    items: Arc<Items>,
    at: Instant,
}

/// The protocol.
pub struct Reconcile {
    sets: Arc<dyn SharedSet>,
    limits: ReconcileLimits,
    sessions: Mutex<HashMap<PublicKey, usize>>,
    cache: Mutex<HashMap<PublicKey, Cached>>,
}

impl std::fmt::Debug for Reconcile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reconcile")
            .field("limits", &self.limits)
            .finish()
    }
}

struct Session<'a> {
    of: &'a Reconcile,
    peer: PublicKey,
}

impl Drop for Session<'_> {
    fn drop(&mut self) {
        let mut s = self.of.sessions.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = s.get_mut(&self.peer) {
            *n -= 1;
            if *n == 0 {
                s.remove(&self.peer);
            }
        }
    }
}

impl Reconcile {
    /// The protocol over `sets`.
    pub fn new(sets: Arc<dyn SharedSet>, limits: ReconcileLimits) -> Arc<Self> {
        Arc::new(Self {
            sets,
            limits,
            sessions: Mutex::new(HashMap::new()),
            cache: Mutex::new(HashMap::new()),
        })
    }

    fn config(&self) -> Config {
        Config {
            frame_limit: self.limits.frame_limit,
            max_message: self.limits.max_message,
        }
    }

    fn session(&self, peer: PublicKey) -> Option<Session<'_>> {
        let mut s = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        let n = s.entry(peer).or_insert(0);
        if *n >= self.limits.sessions_per_peer {
            return None;
        }
        *n += 1;
        Some(Session { of: self, peer })
    }

    /// The set of `keyring`, fresh (`fresh`: not from the cache).
    async fn items(&self, keyring: PublicKey, fresh: bool) -> Result<Arc<Items>, ReconcileFailure> {
        if !fresh {
            let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(c) = cache.get(&keyring) {
                if c.at.elapsed() < self.limits.set_ttl {
                    return Ok(c.items.clone());
                }
            }
        }
        let sets = self.sets.clone();
        let items = tokio::task::spawn_blocking(move || {
            let ids = sets.shared(&keyring)?;
            Items::new(
                ids.into_iter()
                    .map(|id| Item { timestamp: 0, id })
                    .collect(),
            )
            .map_err(|e| e.to_string())
        })
        .await
        .map_err(|_| ReconcileFailure::Store("set builder panicked".into()))?
        .map_err(ReconcileFailure::Store)?;
        let items = Arc::new(items);
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        let ttl = self.limits.set_ttl;
        cache.retain(|_, c| c.at.elapsed() < ttl);
        cache.insert(
            keyring,
            Cached {
                items: items.clone(),
                at: Instant::now(),
            },
        );
        Ok(items)
    }

    async fn serve(self: Arc<Self>, link: PeerLink, mut send: SendStream, mut recv: FramedRecv) {
        let Some(_session) = self.session(link.peer()) else {
            let _ = send.write_all(&encode_frame(&[])).await;
            let _ = send.finish();
            return;
        };
        let until = Instant::now() + self.limits.session;
        let mut items: Option<Arc<Items>> = None;
        let mut buf = Vec::new();
        for _ in 0..self.limits.max_rounds {
            let query = match read_message(
                &mut recv,
                &mut buf,
                self.limits.max_message,
                until,
                false,
            )
            .await
            {
                Ok(Some(q)) if !q.is_empty() => q,
                Ok(_) => break,
                Err(_) => return,
            };
            if !link.is_member() {
                return;
            }
            if items.is_none() {
                match self.items(link.keyring(), false).await {
                    Ok(i) => items = Some(i),
                    Err(_) => return,
                }
            }
            let Some(set) = items.clone() else { return };
            let config = self.config();
            let answer = tokio::task::spawn_blocking(move || {
                Responder::new(&set, config).and_then(|r| r.respond(&query))
            })
            .await;
            let Ok(Ok(answer)) = answer else {
                recv.stop(STREAM_BAD_FRAME);
                let _ = send.reset(crate::close::stream_code(STREAM_BAD_FRAME));
                return;
            };
            if send.write_all(&encode_frame(&answer)).await.is_err() {
                return;
            }
        }
        let _ = send.finish();
    }

    /// Reconciles the cids shared in `to.keyring` with `to.peer` before
    /// `deadline`.
    pub async fn reconcile(
        &self,
        opener: &Opener,
        to: Target,
        deadline: Instant,
    ) -> Result<Difference, ReconcileFailure> {
        let items = self.items(to.keyring, true).await?;
        let link = opener.link(to, deadline).await?;
        let (mut send, mut recv) = link.open_bi(PROTOCOL_RECONCILE).await?;
        let config = self.config();
        let mut initiator = Initiator::new(&items, config).map_err(ReconcileFailure::Protocol)?;
        let mut out = Difference {
            items: items.len(),
            ..Difference::default()
        };
        let mut message = initiator.initiate().map_err(ReconcileFailure::Protocol)?;
        let mut buf = Vec::new();
        loop {
            if out.round_trips >= self.limits.max_rounds {
                return Err(ReconcileFailure::TooManyRounds(self.limits.max_rounds));
            }
            let frame = encode_frame(&message);
            out.sent += frame.len() as u64;
            send.write(vec![Bytes::from(frame)])
                .await
                .map_err(|e| ReconcileFailure::Link(CallError::ConnectionLost(e.to_string())))?;
            out.round_trips += 1;
            let answer = read_message(&mut recv, &mut buf, self.limits.max_message, deadline, true)
                .await?
                .ok_or(ReconcileFailure::Link(CallError::ConnectionLost(
                    "the peer ended the session".into(),
                )))?;
            out.received += 4 + answer.len() as u64;
            if answer.is_empty() {
                return Err(ReconcileFailure::Busy);
            }
            match initiator
                .reconcile(&answer, &mut out.have, &mut out.need)
                .map_err(ReconcileFailure::Protocol)?
            {
                Some(next) => message = next,
                None => break,
            }
        }
        send.finish();
        Ok(out)
    }
}

/// Reads one framed message (`None` at the end of the stream). `patient`:
/// its first byte may take until `until` (an answer the peer computes),
/// else it is due within the stream grace; after it, the byte rate applies.
async fn read_message(
    recv: &mut FramedRecv,
    buf: &mut Vec<u8>,
    max: usize,
    until: Instant,
    patient: bool,
) -> Result<Option<Vec<u8>>, ReconcileFailure> {
    let started = Instant::now();
    let mut received = 0usize;
    // The message is charged to the link's memory budget once its length is
    // known, until it is complete.
    let mut charge = None;
    loop {
        if charge.is_none() && buf.len() >= 4 {
            let len = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
            if len <= max {
                charge = Some(
                    recv.charge(len)
                        .await
                        .map_err(|_| ReconcileFailure::OverBudget)?,
                );
            }
        }
        match decode_frame(buf, max) {
            Ok(Some((message, used))) => {
                let message = message.to_vec();
                buf.drain(..used);
                return Ok(Some(message));
            }
            Ok(None) => {}
            Err(e) => {
                recv.stop(STREAM_BAD_FRAME);
                return Err(ReconcileFailure::Protocol(e));
            }
        }
        let by = if patient && received == 0 {
            until
        } else {
            until.min(started + recv.allowance(received))
        };
        match recv.read_chunk(64 * 1024, by).await {
            Ok(Some(bytes)) => {
                received += bytes.len();
                buf.extend_from_slice(&bytes);
            }
            Ok(None) if buf.is_empty() => return Ok(None),
            Ok(None) => {
                return Err(ReconcileFailure::Protocol(ReconcileError::Malformed(
                    "stream ended inside a frame",
                )))
            }
            Err(ReadFrameError::TooSlow) if Instant::now() >= until => {
                return Err(ReconcileFailure::Timeout)
            }
            Err(ReadFrameError::TooSlow) => {
                recv.stop(STREAM_TOO_SLOW);
                return Err(ReconcileFailure::TooSlow);
            }
            Err(_) => {
                return Err(ReconcileFailure::Link(CallError::ConnectionLost(
                    "stream failed".into(),
                )))
            }
        }
    }
}

impl Protocol for Reconcile {
    fn id(&self) -> ProtocolId {
        PROTOCOL_RECONCILE
    }

    fn accept_bi(self: Arc<Self>, link: PeerLink, send: SendStream, recv: FramedRecv) -> BoxFuture {
        Box::pin(self.serve(link, send, recv))
    }
}
