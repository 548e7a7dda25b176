//! DAG sync (protocol 4): a member asks another for the DAG below a root in
//! one request; the provider runs the requested deterministic traversal over
//! its store and streams one item per cid; the requester runs the same
//! traversal over what arrives ([`keyring_core::dag::Verifier`]) and stores
//! each node and blob once it hashes to the cid the traversal expects next.
//! Whatever the depth, a sync takes one round trip, two when the request's
//! probabilistic filter made the provider skip something the requester
//! lacks ([`keyring_core::dag::Outcome::second_round`]).
//!
//! Wire: [`keyring_core::dag::session`]. Stores are reached through
//! [`DagStore`] (implemented over `keyring_store` in the NIF crate and over
//! a map in [`memory`]), so this crate knows nothing of storage.
//!
//! **What is served.** A request is served only when every root it names is
//! shared in the keyring the connection was admitted for
//! ([`DagStore::shared_in`]); then everything reachable from those roots is
//! served (sharing a root shares its DAG). A root that is absent and one
//! that is not shared get the same answer, `NotFound`. A second round names
//! as roots the cids the first round skipped because of the requester's
//! filter: the provider remembers those, per (keyring, peer), for
//! [`DagLimits::grant_ttl`] (at most [`DagLimits::max_grants`] per peer) and
//! serves them as if shared.
//!
//! **Fences (provider).** The request is read under the stream's byte-rate
//! deadline and its size limit ([`session::MAX_REQUEST_BYTES`]); a peer gets
//! at most [`DagLimits::serves_per_peer`] syncs at once (more are answered
//! `Busy`); a response visits at most [`DagLimits::max_visits`] cids and the
//! `have` expansion reads at most [`DagLimits::have_budget`] nodes; the
//! store is read on blocking threads and streamed through a bounded channel,
//! so QUIC flow control paces the reads and a slow reader holds a few
//! chunks, never the DAG.
//!
//! **Fences (requester).** The response is read under the byte-rate deadline
//! (after the first byte) and the caller's deadline; the item decoder holds
//! at most one item ([`keyring_core::dag::MAX_ITEM_BYTES`]) plus one chunk;
//! the verifier refuses traversals over `max_visits`. Any item that breaks
//! the traversal (a node that does not hash to its cid, an unrelated node,
//! a skip the request did not allow, an item past the end, a stream cut
//! short) stops the stream at once: nothing after it is stored, and the
//! fetch fails with [`FetchError::Verify`]. Only verified bytes are stored.

pub mod memory;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use keyring_core::dag::session::{self, Status};
use keyring_core::dag::{
    Accepted, BlobRead, Cid, CodecError, Exclusion, ItemDecoder, Outcome, Provider, Request,
    Source, Verifier, VerifyError, MAX_ITEM_BYTES,
};
use keyring_core::membership::PublicKey;
use quinn::SendStream;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::close::{stream_code, STREAM_BAD_FRAME, STREAM_OVER_BUDGET};
use crate::connect::Opener;
use crate::error::CallError;
use crate::protocol::{BoxFuture, PeerLink, Protocol, ProtocolId, Target};
use crate::stream::{FramedRecv, ReadFrameError};

/// DAG sync streams begin with this byte.
pub const PROTOCOL_DAG: ProtocolId = 4;

/// What DAG sync reads and writes. Every method may block (it is called on
/// tokio's blocking threads, never on the runtime's workers).
pub trait DagStore: Send + Sync + 'static {
    /// Whether `cid` is shared in `keyring`: the rule for serving a root.
    fn shared_in(&self, keyring: &PublicKey, cid: &Cid) -> Result<bool, String>;
    /// A node's (or any blob's) bytes, if held.
    fn node(&self, cid: &Cid) -> Result<Option<Vec<u8>>, String>;
    /// A blob's bytes when at most `limit` long, its size when longer.
    fn blob(&self, cid: &Cid, limit: usize) -> Result<BlobRead, String>;
    /// Whether `cid` is held (the requester's answer for skipped cids).
    fn has(&self, cid: &Cid) -> Result<bool, String>;
    /// Stores verified items; returns once they are durable.
    fn put(&self, items: Vec<(Cid, Vec<u8>)>) -> Result<(), String>;
    /// A blob over the item limit, reached from a root shared in
    /// `keyring`, was answered as deferred (to be fetched by blob
    /// transfer): a store may let the blob protocol serve it to that
    /// keyring's members, since the traversal proved it reachable from a
    /// root shared there. By default nothing is remembered.
    fn deferred(&self, keyring: &PublicKey, cid: &Cid) {
        let _ = (keyring, cid);
    }
}

/// The numbers of DAG sync's fences.
#[derive(Debug, Clone)]
pub struct DagLimits {
    /// Syncs served to one peer at once (more are answered `Busy`).
    pub serves_per_peer: usize,
    /// Most cids one response visits (provider) or one verifier accepts
    /// (requester).
    pub max_visits: usize,
    /// Most nodes read to expand a request's `have` roots.
    pub have_budget: usize,
    /// Bytes of items per chunk handed from the store thread to the stream.
    pub chunk_bytes: usize,
    /// Chunks in flight between the store thread and the stream.
    pub chunks_in_flight: usize,
    /// Verified items stored per durable write (requester).
    pub put_batch: usize,
    /// How long cids skipped for a peer's filter may be asked for as roots
    /// of a second round.
    pub grant_ttl: Duration,
    /// Most such cids remembered per (keyring, peer).
    pub max_grants: usize,
}

impl Default for DagLimits {
    fn default() -> Self {
        Self {
            serves_per_peer: 4,
            max_visits: 1_000_000,
            have_budget: 100_000,
            chunk_bytes: 64 * 1024,
            chunks_in_flight: 4,
            put_batch: 1024,
            grant_ttl: Duration::from_secs(60),
            max_grants: 65_536,
        }
    }
}

/// Why a fetch failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    /// The peer could not be reached, or the link broke.
    #[error("{0}")]
    Link(#[from] CallError),
    /// The provider does not serve a requested root in this keyring.
    #[error("not found")]
    NotFound,
    /// The provider serves as many syncs for us as it allows.
    #[error("the provider is busy")]
    Busy,
    /// The provider could not decode the request.
    #[error("the provider refused the request as malformed")]
    BadRequest,
    /// The response broke the traversal: the provider was cut off.
    #[error("the provider's stream does not verify: {0}")]
    Verify(VerifyError),
    /// The response is not a sequence of items.
    #[error("the provider's stream does not decode: {0}")]
    Codec(CodecError),
    /// The provider sent slower than the minimum rate.
    #[error("the provider was too slow")]
    TooSlow,
    /// The response found no room in the link's memory budget in time.
    #[error("no room in the memory budget")]
    OverBudget,
    /// The provider reset its response (at its visit limit, or its store
    /// failed), or the stream broke.
    #[error("the provider stopped its response")]
    Stopped,
    /// The local store failed.
    #[error("store: {0}")]
    Store(String),
    /// The deadline passed.
    #[error("timed out")]
    Timeout,
}

/// What a fetch did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FetchReport {
    /// Request/response exchanges that ran one after the other (1 or 2).
    pub round_trips: u32,
    /// Requests sent.
    pub requests: u32,
    /// Cids visited in all rounds.
    pub visits: usize,
    /// Nodes and blobs received and stored.
    pub received: usize,
    /// Bytes of those nodes and blobs.
    pub received_bytes: u64,
    /// Bytes on the wire, both ways (requests, statuses, items).
    pub wire_bytes: u64,
    /// Cids the provider did not have.
    pub missing: Vec<Cid>,
    /// Blobs over the inline limit: cid and claimed size (fetch them by
    /// blob transfer).
    pub deferred: Vec<(Cid, u64)>,
}

/// The DAG sync protocol: serves this node's store to members and fetches
/// from them into it.
pub struct Dag {
    store: Arc<dyn DagStore>,
    limits: DagLimits,
    serving: Mutex<HashMap<PublicKey, usize>>,
    grants: Mutex<HashMap<(PublicKey, PublicKey), Grants>>,
}

/// Cids a peer may name as second-round roots, until `until`.
struct Grants {
    cids: HashSet<Cid>,
    until: Instant,
}

impl std::fmt::Debug for Dag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dag").field("limits", &self.limits).finish()
    }
}

/// A provider's slot for one peer, given back on drop.
struct Slot<'a> {
    dag: &'a Dag,
    peer: PublicKey,
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        let mut serving = self.dag.serving.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = serving.get_mut(&self.peer) {
            *n -= 1;
            if *n == 0 {
                serving.remove(&self.peer);
            }
        }
    }
}

/// The provider's store as a [`Source`].
struct StoreSource(Arc<dyn DagStore>);

impl Source for StoreSource {
    type Error = String;

    fn node(&mut self, cid: &Cid) -> Result<Option<Vec<u8>>, String> {
        self.0.node(cid)
    }

    fn blob(&mut self, cid: &Cid, limit: usize) -> Result<BlobRead, String> {
        self.0.blob(cid, limit)
    }
}

/// What the store thread hands the stream.
enum Chunk {
    Bytes(Vec<u8>),
    /// The traversal went past the visit limit (or the store failed):
    /// reset the stream.
    Abort,
}

impl Dag {
    /// The protocol over `store`.
    pub fn new(store: Arc<dyn DagStore>, limits: DagLimits) -> Arc<Self> {
        Arc::new(Self {
            store,
            limits,
            serving: Mutex::new(HashMap::new()),
            grants: Mutex::new(HashMap::new()),
        })
    }

    /// Syncs being served to `peer` right now.
    pub fn serving(&self, peer: &PublicKey) -> usize {
        let serving = self.serving.lock().unwrap_or_else(|e| e.into_inner());
        serving.get(peer).copied().unwrap_or(0)
    }

    fn slot(&self, peer: PublicKey) -> Option<Slot<'_>> {
        let mut serving = self.serving.lock().unwrap_or_else(|e| e.into_inner());
        let n = serving.entry(peer).or_insert(0);
        if *n >= self.limits.serves_per_peer {
            return None;
        }
        *n += 1;
        Some(Slot { dag: self, peer })
    }

    /// Remembers `cids` as second-round roots `peer` may ask for.
    fn grant(&self, key: (PublicKey, PublicKey), cids: Vec<Cid>) {
        let now = Instant::now();
        let mut grants = self.grants.lock().unwrap_or_else(|e| e.into_inner());
        grants.retain(|_, g| g.until > now);
        if cids.is_empty() {
            return;
        }
        let g = grants.entry(key).or_insert_with(|| Grants {
            cids: HashSet::new(),
            until: now,
        });
        g.until = now + self.limits.grant_ttl;
        for cid in cids {
            if g.cids.len() >= self.limits.max_grants {
                break;
            }
            g.cids.insert(cid);
        }
    }

    /// Whether every root of a request was granted to `key` by a first
    /// round.
    fn granted(&self, key: &(PublicKey, PublicKey), roots: &[Cid]) -> bool {
        let now = Instant::now();
        let grants = self.grants.lock().unwrap_or_else(|e| e.into_inner());
        grants
            .get(key)
            .is_some_and(|g| g.until > now && roots.iter().all(|c| g.cids.contains(c)))
    }

    async fn serve(self: Arc<Self>, link: PeerLink, mut send: SendStream, mut recv: FramedRecv) {
        let Some(_slot) = self.slot(link.peer()) else {
            recv.stop(STREAM_OVER_BUDGET);
            let _ = send.write_all(&[Status::Busy as u8]).await;
            let _ = send.finish();
            return;
        };
        let request = match read_request(&mut recv).await {
            Ok(request) => request,
            Err(Some(_)) => {
                recv.stop(STREAM_BAD_FRAME);
                let _ = send.write_all(&[Status::BadRequest as u8]).await;
                let _ = send.finish();
                return;
            }
            Err(None) => return,
        };
        if !link.is_member() {
            return;
        }
        let (store, keyring) = (self.store.clone(), link.keyring());
        let key = (keyring, link.peer());
        let roots: Vec<Cid> = request.roots.iter().map(|l| l.cid).collect();
        let shared = self.granted(&key, &roots)
            || tokio::task::spawn_blocking(move || {
                roots
                    .iter()
                    .all(|cid| store.shared_in(&keyring, cid).unwrap_or(false))
            })
            .await
            .unwrap_or(false);
        if !shared {
            let _ = send.write_all(&[Status::NotFound as u8]).await;
            let _ = send.finish();
            return;
        }
        let (tx, mut rx) = mpsc::channel::<Chunk>(self.limits.chunks_in_flight.max(1));
        let (store, limits) = (self.store.clone(), self.limits.clone());
        let producer =
            tokio::task::spawn_blocking(move || produce(store, &keyring, &limits, &request, &tx));
        if send.write_all(&[Status::Ok as u8]).await.is_err() {
            return;
        }
        while let Some(chunk) = rx.recv().await {
            match chunk {
                Chunk::Bytes(bytes) => {
                    if send.write_all(&bytes).await.is_err() {
                        // The requester stopped reading: the producer ends
                        // at its next send.
                        return;
                    }
                }
                Chunk::Abort => {
                    let _ = send.reset(stream_code(STREAM_OVER_BUDGET));
                    return;
                }
            }
        }
        if let Ok(skipped) = producer.await {
            // Before the end of the stream is sent: a second round comes
            // only after the requester saw it.
            self.grant(key, skipped);
        }
        let _ = send.finish();
    }

    /// Fetches the DAG `request` names from `to` into this node's store, in
    /// one round trip (two when the request's filter hid something this
    /// node lacks), before `deadline`.
    pub async fn fetch(
        self: &Arc<Self>,
        opener: &Opener,
        to: Target,
        request: Request,
        deadline: Instant,
    ) -> Result<FetchReport, FetchError> {
        let link = opener.link(to, deadline).await?;
        let mut report = FetchReport::default();
        let first = self
            .round(&link, request.clone(), deadline, &mut report)
            .await?;
        let second = first.second_round(&request);
        if !second.is_empty() {
            report.round_trips += 1;
            let mut rounds = tokio::task::JoinSet::new();
            for next in second {
                let (this, link) = (self.clone(), link.clone());
                rounds.spawn(async move {
                    let mut part = FetchReport::default();
                    this.round(&link, next, deadline, &mut part)
                        .await
                        .map(|_| part)
                });
            }
            while let Some(done) = rounds.join_next().await {
                let part = done.map_err(|_| FetchError::Timeout)??;
                report.add(part);
            }
        }
        report.round_trips += 1;
        Ok(report)
    }

    /// One request and its verified response.
    async fn round(
        &self,
        link: &PeerLink,
        request: Request,
        deadline: Instant,
        report: &mut FetchReport,
    ) -> Result<Outcome, FetchError> {
        let wire = session::encode_request(&request).map_err(FetchError::Codec)?;
        report.requests += 1;
        report.wire_bytes += 1 + wire.len() as u64;
        let (mut send, mut recv) = link.open_bi(PROTOCOL_DAG).await?;
        send.write(vec![Bytes::from(wire)])
            .await
            .map_err(|e| FetchError::Link(CallError::ConnectionLost(e.to_string())))?;
        send.finish();
        let status = match read_chunk(&mut recv, 1, deadline).await? {
            Some(b) => Status::decode(b[0]).map_err(FetchError::Codec)?,
            None => return Err(FetchError::Codec(CodecError::Truncated)),
        };
        report.wire_bytes += 1;
        match status {
            Status::Ok => {}
            Status::NotFound => return Err(FetchError::NotFound),
            Status::Busy => return Err(FetchError::Busy),
            Status::BadRequest => return Err(FetchError::BadRequest),
        }
        // What the response may make this side hold: one incomplete item
        // and the chunks in flight to the verifier.
        let _charge = recv
            .charge(MAX_ITEM_BYTES + (self.limits.chunks_in_flight + 1) * self.limits.chunk_bytes)
            .await
            .map_err(|_| FetchError::OverBudget)?;
        let (tx, rx) = std::sync::mpsc::sync_channel::<Bytes>(self.limits.chunks_in_flight.max(1));
        let (store, limits) = (self.store.clone(), self.limits.clone());
        let mut verifying =
            tokio::task::spawn_blocking(move || verify(store, &limits, request, rx));
        let started = Instant::now();
        let mut received = 0usize;
        let mut tx = Some(tx);
        loop {
            let by = deadline.min(started + recv.allowance(received));
            tokio::select! {
                done = &mut verifying => {
                    // The verifier stopped before the stream ended: it
                    // refused an item. Cut the provider off.
                    recv.stop(STREAM_BAD_FRAME);
                    let outcome = done.map_err(|_| FetchError::Store("verifier panicked".into()))??;
                    return Err(unexpected_end(outcome));
                }
                chunk = read_chunk(&mut recv, self.limits.chunk_bytes, by) => {
                    match chunk {
                        Ok(Some(bytes)) => {
                            received += bytes.len();
                            report.wire_bytes += bytes.len() as u64;
                            let Some(sender) = tx.as_ref() else { continue };
                            if send_blocking_free(sender, bytes).await.is_err() {
                                // The verifier quit; its result says why.
                                tx = None;
                            }
                        }
                        Ok(None) => {
                            drop(tx.take());
                            let outcome = verifying
                                .await
                                .map_err(|_| FetchError::Store("verifier panicked".into()))??;
                            report.visits += outcome.visits;
                            report.received += outcome.received;
                            report.received_bytes += outcome.received_bytes;
                            report.missing.extend(outcome.missing.iter().copied());
                            report.deferred.extend(outcome.deferred.iter().copied());
                            return Ok(outcome);
                        }
                        Err(e) => {
                            drop(tx.take());
                            verifying.abort();
                            return Err(e);
                        }
                    }
                }
            }
        }
    }
}

/// A verifier that ended before the stream did can only have refused an
/// item; an `Ok` here would be a logic error, reported as one.
fn unexpected_end(_outcome: Outcome) -> FetchError {
    FetchError::Verify(VerifyError::UnexpectedItem)
}

/// Hands a chunk to the verifier thread without blocking the runtime: a
/// full channel is waited on with short sleeps (the verifier drains it at
/// hashing speed).
async fn send_blocking_free(
    tx: &std::sync::mpsc::SyncSender<Bytes>,
    mut bytes: Bytes,
) -> Result<(), ()> {
    let mut pause = Duration::from_micros(50);
    loop {
        match tx.try_send(bytes) {
            Ok(()) => return Ok(()),
            Err(std::sync::mpsc::TrySendError::Full(back)) => {
                bytes = back;
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_millis(5));
            }
            Err(std::sync::mpsc::TrySendError::Disconnected(_)) => return Err(()),
        }
    }
}

impl FetchReport {
    fn add(&mut self, other: FetchReport) {
        self.requests += other.requests;
        self.visits += other.visits;
        self.received += other.received;
        self.received_bytes += other.received_bytes;
        self.wire_bytes += other.wire_bytes;
        self.missing.extend(other.missing);
        self.deferred.extend(other.deferred);
    }
}

async fn read_chunk(
    recv: &mut FramedRecv,
    max: usize,
    deadline: Instant,
) -> Result<Option<Bytes>, FetchError> {
    match recv.read_chunk(max, deadline).await {
        Ok(chunk) => Ok(chunk),
        Err(ReadFrameError::TooSlow) => Err(if Instant::now() >= deadline {
            FetchError::TooSlow
        } else {
            FetchError::Timeout
        }),
        Err(ReadFrameError::Stream) => Err(FetchError::Stopped),
        Err(_) => Err(FetchError::Link(CallError::ConnectionLost(
            "stream failed".into(),
        ))),
    }
}

/// Reads the framed request (`Err(Some)`: it does not decode; `Err(None)`:
/// the stream failed or was too slow).
async fn read_request(recv: &mut FramedRecv) -> Result<Request, Option<CodecError>> {
    let started = Instant::now();
    let mut buf = Vec::new();
    let mut charge = None;
    loop {
        if charge.is_none() && buf.len() >= 4 {
            let len = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
            if len <= session::MAX_REQUEST_BYTES {
                charge = Some(recv.charge(len).await.map_err(|_| None)?);
            }
        }
        match session::decode_request(&buf) {
            Ok(Some((request, used))) if used == buf.len() => return Ok(request),
            Ok(Some(_)) => return Err(Some(CodecError::TrailingBytes)),
            Ok(None) => {}
            Err(e) => return Err(Some(e)),
        }
        let by = started + recv.allowance(buf.len());
        match recv.read_chunk(64 * 1024, by).await {
            Ok(Some(bytes)) => buf.extend_from_slice(&bytes),
            Ok(None) => return Err(Some(CodecError::Truncated)),
            Err(_) => return Err(None),
        }
    }
}

/// The store thread of a provider: expand `have`, run the traversal, hand
/// the stream chunks of encoded items. Returns the cids skipped because the
/// request's filter holds them (a second round may name them as roots).
fn produce(
    store: Arc<dyn DagStore>,
    keyring: &PublicKey,
    limits: &DagLimits,
    request: &Request,
    tx: &mpsc::Sender<Chunk>,
) -> Vec<Cid> {
    let mut skipped = Vec::new();
    let grants = store.clone();
    let mut source = StoreSource(store);
    let exclusion = match Exclusion::expand(
        &request.have,
        request.filter.clone(),
        &mut source,
        limits.have_budget,
    ) {
        Ok(e) => e,
        Err(_) => {
            let _ = tx.blocking_send(Chunk::Abort);
            return skipped;
        }
    };
    let mut provider = Provider::new(request, source, exclusion, limits.max_visits);
    let mut buf = Vec::with_capacity(limits.chunk_bytes + 1024);
    loop {
        match provider.next_item() {
            Ok(Some(item)) => {
                if let (keyring_core::dag::Item::Deferred(_), Some(visit)) =
                    (&item, provider.covered().first())
                {
                    grants.deferred(keyring, &visit.cid);
                }
                if matches!(item, keyring_core::dag::Item::Skipped(_)) {
                    skipped.extend(
                        provider
                            .covered()
                            .iter()
                            .map(|v| v.cid)
                            .filter(|c| request.filter_contains(c)),
                    );
                }
                item.encode(&mut buf);
                if buf.len() >= limits.chunk_bytes {
                    let full =
                        std::mem::replace(&mut buf, Vec::with_capacity(limits.chunk_bytes + 1024));
                    if tx.blocking_send(Chunk::Bytes(full)).is_err() {
                        return skipped;
                    }
                }
            }
            Ok(None) => break,
            Err(_) => {
                let _ = tx.blocking_send(Chunk::Abort);
                return Vec::new();
            }
        }
    }
    if provider.over_budget() {
        let _ = tx.blocking_send(Chunk::Abort);
        return Vec::new();
    }
    if !buf.is_empty() {
        let _ = tx.blocking_send(Chunk::Bytes(buf));
    }
    skipped
}

/// The requester's verifier thread: cut the stream into items, verify each
/// against the traversal, store what verifies (in durable batches).
fn verify(
    store: Arc<dyn DagStore>,
    limits: &DagLimits,
    request: Request,
    rx: std::sync::mpsc::Receiver<Bytes>,
) -> Result<Outcome, FetchError> {
    let mut decoder = ItemDecoder::new();
    let mut verifier = Verifier::new(request, limits.max_visits);
    let mut batch: Vec<(Cid, Vec<u8>)> = Vec::new();
    let flush = |batch: &mut Vec<(Cid, Vec<u8>)>| -> Result<(), FetchError> {
        if batch.is_empty() {
            return Ok(());
        }
        store.put(std::mem::take(batch)).map_err(FetchError::Store)
    };
    let holds = |cid: &Cid| store.has(cid).unwrap_or(false);
    let result = (|| {
        while let Ok(chunk) = rx.recv() {
            decoder.push(&chunk);
            while let Some(item) = decoder.next_item().map_err(FetchError::Codec)? {
                match verifier.accept(item, holds).map_err(FetchError::Verify)? {
                    Accepted::Node { cid, bytes } | Accepted::Blob { cid, bytes } => {
                        batch.push((cid, bytes));
                        if batch.len() >= limits.put_batch {
                            flush(&mut batch)?;
                        }
                    }
                    Accepted::Skipped(_) | Accepted::Missing { .. } | Accepted::Deferred { .. } => {
                    }
                }
            }
        }
        if decoder.buffered() != 0 {
            return Err(FetchError::Codec(CodecError::Truncated));
        }
        verifier.finish().map_err(FetchError::Verify)
    })();
    // What verified before an error is stored too: it is proven reachable
    // from the root and hashes to its cid.
    flush(&mut batch)?;
    result
}

impl Protocol for Dag {
    fn id(&self) -> ProtocolId {
        PROTOCOL_DAG
    }

    fn accept_bi(self: Arc<Self>, link: PeerLink, send: SendStream, recv: FramedRecv) -> BoxFuture {
        Box::pin(self.serve(link, send, recv))
    }
}
