//! The membership protocol: a member pushes its keyring's log on a
//! unidirectional stream (one `LogUpdate` frame); the receiver hands the
//! entries to a [`LogSink`] (today the BEAM, which merges them; later a
//! Rust registry that ingests entries incrementally).
//!
//! Fences: the frame is read under the stream fences (size limit, byte
//! rate, memory budget) and must name the keyring its connection was
//! admitted for. Each (keyring, peer) may deliver
//! [`crate::Limits::log_update_burst`] pushes at once and
//! `log_updates_per_second` on average; a push beyond that waits for its
//! turn before it is read, keeping its stream open, so a flooder soon has
//! all its streams ([`crate::Limits::max_uni_streams`]) waiting and can open
//! no more: it slows down, nothing is dropped, and other peers are not
//! affected. When this node holds the keyring's ring (registered in
//! [`Membership::rings`]), a push whose entries it has already is dropped
//! here: it costs a decode and a hash lookup per entry (on the runtime's
//! blocking pool, like all work on a ring here: a ring's lock may be held by
//! a long ingest), and never reaches the BEAM.
//!
//! **Anti-entropy.** Pushes are best effort (a link may be down when a
//! change is made, and members do not relay pushes), so linked members also
//! compare heads periodically ([`Membership::exchange_heads`], called every
//! `anti_entropy_ms` by the mesh process): the initiator opens a
//! bidirectional stream and sends a `LogHeads` frame (its heads and a
//! locator, `O(log n)` hashes). The responder compares heads: equal, it
//! finishes the stream without an answer (cost `O(1)` in the log's length).
//! Otherwise it pushes what the initiator lacks (entries after the deepest
//! locator hash it holds) as an ordinary `LogUpdate` and, if the initiator
//! has heads it does not know, answers with its own `LogHeads` (a reply,
//! never answered in turn), from which the initiator pushes what the
//! responder lacks. One round trip converges both. Fences: each (keyring,
//! peer) may start [`crate::Limits::heads_burst`] exchanges at once and
//! `heads_per_second` on average (beyond that, streams are refused unread);
//! an exchange frame is at most [`HEADS_MAX_PAYLOAD`] bytes and an answer is
//! awaited [`HEADS_ANSWER_WITHIN`] at most; one exchange per link is in
//! flight at a time, and one push of missing entries per (keyring, peer),
//! written within [`PUSH_WITHIN`] or reset (a peer that does not read cannot
//! make us hold copies of the log).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use keyring_core::membership::{Entry, PublicKey, Registry, SharedRing};
use keyring_core::wire::frame::{self, Frame, MAX_HEADS_HASHES};
use quinn::SendStream;

use crate::close::{stream_code, STREAM_BAD_FRAME, STREAM_OVER_BUDGET, STREAM_TOO_SLOW};
use crate::config::Limits;
use crate::connect::Opener;
use crate::protocol::{BoxFuture, PeerLink, Protocol, ProtocolId, PROTOCOL_MEMBERSHIP};
use crate::protocols::turn;
use crate::rate::KeyedBuckets;
use crate::stream::FramedRecv;

/// A log pushed by a member of `keyring`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogUpdate {
    /// The keyring (the one the connection was admitted for).
    pub keyring: PublicKey,
    /// Who pushed it (TLS-authenticated).
    pub peer: PublicKey,
    /// The encoded entries, in order (not yet verified).
    pub entries: Vec<Bytes>,
}

/// Takes pushed logs, on a runtime thread. Must not block.
pub trait LogSink: Send + Sync + 'static {
    /// Takes one push.
    fn log_update(&self, update: LogUpdate);
}

/// Largest `LogHeads` payload: keyring id, flag, counts, hashes.
pub const HEADS_MAX_PAYLOAD: usize = 32 + 1 + 4 + 32 * MAX_HEADS_HASHES;
/// How long the initiator of a head exchange waits for the answer.
pub const HEADS_ANSWER_WITHIN: Duration = Duration::from_secs(5);
/// How long a push of missing entries may take to be written (then it is
/// reset).
pub const PUSH_WITHIN: Duration = Duration::from_secs(10);

type Pair = (PublicKey, PublicKey);

/// The membership protocol.
pub struct Membership {
    sink: Arc<dyn LogSink>,
    rate: Mutex<KeyedBuckets<Pair>>,
    heads_rate: Mutex<KeyedBuckets<Pair>>,
    /// Head exchanges this node started and has not finished, by (keyring, peer).
    in_flight: Mutex<HashSet<Pair>>,
    /// Pushes of missing entries under way, by (keyring, peer).
    pushing: Mutex<HashSet<Pair>>,
    rings: Registry,
    max_payload: usize,
}

impl std::fmt::Debug for Membership {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Membership")
    }
}

impl Membership {
    /// The protocol, delivering to `sink` under `limits`.
    pub fn new(sink: Arc<dyn LogSink>, limits: &Limits, max_payload: usize) -> Arc<Self> {
        Arc::new(Self {
            sink,
            rate: Mutex::new(KeyedBuckets::new(
                limits.log_update_burst,
                limits.log_updates_per_second,
                limits.tracked_sources,
            )),
            heads_rate: Mutex::new(KeyedBuckets::new(
                limits.heads_burst,
                limits.heads_per_second,
                limits.tracked_sources,
            )),
            in_flight: Mutex::new(HashSet::new()),
            pushing: Mutex::new(HashSet::new()),
            rings: Registry::default(),
            max_payload,
        })
    }

    /// The rings this node holds: pushes of known entries are dropped
    /// against them, and head exchanges answered from them. The owner
    /// registers a keyring's ring when it joins or creates it and removes
    /// it when it leaves.
    pub fn rings(&self) -> &Registry {
        &self.rings
    }

    /// Starts a head exchange with every linked member of every registered
    /// keyring (skipping links whose previous exchange is still running).
    /// Returns how many it started.
    pub fn exchange_heads(self: &Arc<Self>, opener: &Opener) -> usize {
        let mut started = 0;
        for id in self.rings.ids() {
            let Some(ring) = self.rings.get(&id) else {
                continue;
            };
            let published = ring.published();
            let Some(bytes) = heads_frame(id, false, &published.heads, &published.locator) else {
                continue;
            };
            for link in opener.links(&id) {
                let pair = (id, link.peer());
                if !lock(&self.in_flight).insert(pair) {
                    continue;
                }
                started += 1;
                let (me, ring, bytes) = (self.clone(), ring.clone(), bytes.clone());
                opener.runtime().spawn(async move {
                    me.initiate(&link, ring, bytes).await;
                    lock(&me.in_flight).remove(&pair);
                });
            }
        }
        started
    }

    async fn initiate(&self, link: &PeerLink, ring: Arc<SharedRing>, bytes: Bytes) -> Option<()> {
        let ask = async {
            let (mut send, mut recv) = link.open_bi(PROTOCOL_MEMBERSHIP).await.ok()?;
            send.write(vec![bytes]).await.ok()?;
            send.finish();
            let frame = recv.read_frame(HEADS_MAX_PAYLOAD).await;
            Some((recv, frame))
        };
        let (mut recv, frame) = tokio::time::timeout(HEADS_ANSWER_WITHIN, ask)
            .await
            .ok()??;
        // No answer (the stream ends empty): our heads told it all.
        let frame = frame.ok()?;
        match frame::decode(&frame.bytes, HEADS_MAX_PAYLOAD) {
            Ok(Frame::LogHeads {
                keyring_id,
                reply: true,
                locator,
                heads,
            }) if keyring_id == link.keyring() => {
                let known: Vec<[u8; 32]> = heads.into_iter().chain(locator).collect();
                self.push_missing(link, ring, known).await;
                Some(())
            }
            _ => {
                recv.stop(STREAM_BAD_FRAME);
                None
            }
        }
    }

    /// The responder's half of a head exchange.
    async fn answer_heads(
        self: Arc<Self>,
        link: PeerLink,
        mut send: SendStream,
        mut recv: FramedRecv,
    ) {
        let key = (link.keyring(), link.peer());
        let allowed = lock(&self.heads_rate).take(&key, Instant::now());
        if !allowed || !link.is_member() {
            recv.stop(STREAM_OVER_BUDGET);
            let _ = send.reset(stream_code(STREAM_OVER_BUDGET));
            return;
        }
        let Ok(frame) = recv.read_frame(HEADS_MAX_PAYLOAD).await else {
            let _ = send.reset(stream_code(STREAM_BAD_FRAME));
            return;
        };
        let (heads, locator) = match frame::decode(&frame.bytes, HEADS_MAX_PAYLOAD) {
            Ok(Frame::LogHeads {
                keyring_id,
                reply: false,
                heads,
                locator,
            }) if keyring_id == key.0 => (heads, locator),
            _ => {
                recv.stop(STREAM_BAD_FRAME);
                let _ = send.reset(stream_code(STREAM_BAD_FRAME));
                return;
            }
        };
        drop(frame);
        let Some(ring) = self.rings.get(&key.0) else {
            let _ = send.finish();
            return;
        };
        let ours = ring.published();
        if ours.heads == heads {
            // The common case: nothing to do, whatever the log's length.
            let _ = send.finish();
            return;
        }
        let we_lack = {
            let (ring, heads) = (ring.clone(), heads.clone());
            off_thread(move || ring.read(|r| heads.iter().any(|h| !r.contains(h))))
                .await
                .unwrap_or(false)
        };
        // The answer first (the peer reads it before it reads our push).
        if we_lack {
            if let Some(bytes) = heads_frame(key.0, true, &ours.heads, &ours.locator) {
                let _ = send.write_chunk(bytes).await;
            }
        }
        let _ = send.finish();
        let known: Vec<[u8; 32]> = heads.into_iter().chain(locator).collect();
        self.push_missing(&link, ring, known).await;
    }

    /// Pushes to `link`'s peer the entries of `ring` it lacks, given the
    /// hashes it said it holds. One such push per (keyring, peer) at a time,
    /// written within [`PUSH_WITHIN`] or reset: a peer that does not read
    /// cannot make us hold its logs.
    async fn push_missing(&self, link: &PeerLink, ring: Arc<SharedRing>, known: Vec<[u8; 32]>) {
        let pair = (link.keyring(), link.peer());
        if !lock(&self.pushing).insert(pair) {
            return;
        }
        let _unmark = Unmark(&self.pushing, pair);
        let Some(bytes) = off_thread(move || missing_frame(&ring, pair.0, &known))
            .await
            .flatten()
        else {
            return;
        };
        let write = async {
            let mut send = link.open_uni(PROTOCOL_MEMBERSHIP).await.ok()?;
            match tokio::time::timeout(PUSH_WITHIN, send.write(vec![Bytes::from(bytes)])).await {
                Ok(Ok(())) => send.finish(),
                _ => {
                    let _ = send.into_inner().reset(stream_code(STREAM_TOO_SLOW));
                }
            }
            Some(())
        };
        let _ = tokio::time::timeout(PUSH_WITHIN, write).await;
    }

    /// Whether every entry of a push is in our ring already (off the
    /// runtime's thread: a long log takes a while to decode, and the ring's
    /// lock may be held by an ingest).
    async fn all_known(&self, keyring: &PublicKey, entries: &[Bytes]) -> bool {
        let Some(ring) = self.rings.get(keyring) else {
            return false;
        };
        let entries = entries.to_vec();
        off_thread(move || {
            let hashes: Option<Vec<[u8; 32]>> = entries
                .iter()
                .map(|e| Entry::decode(e).ok().map(|e| e.hash()))
                .collect();
            // Undecodable entries: the owner reports them.
            hashes.is_some_and(|hashes| ring.read(|r| hashes.iter().all(|h| r.contains(h))))
        })
        .await
        .unwrap_or(false)
    }

    /// Pushes `entries` (the whole log) to every linked member of
    /// `keyring`. Returns how many links it went out on.
    pub fn push_log(&self, opener: &Opener, keyring: PublicKey, entries: &[Vec<u8>]) -> usize {
        let Ok(bytes) = (Frame::LogUpdate {
            keyring_id: keyring,
            entries: entries.iter().map(Vec::as_slice).collect(),
        })
        .encode() else {
            return 0;
        };
        let bytes = Bytes::from(bytes);
        let links = opener.links(&keyring);
        for link in &links {
            let (link, bytes) = (link.clone(), bytes.clone());
            opener.runtime().spawn(async move {
                if let Ok(mut send) = link.open_uni(PROTOCOL_MEMBERSHIP).await {
                    let _ = send.write(vec![bytes]).await;
                    send.finish();
                }
            });
        }
        links.len()
    }

    async fn receive(self: Arc<Self>, link: PeerLink, mut recv: FramedRecv) {
        // The turn is taken before the frame is read: a push waiting for it
        // keeps its stream open, so a flooder runs out of streams.
        let key = (link.keyring(), link.peer());
        turn(&self.rate, &key).await;
        let Ok(frame) = recv.read_frame(self.max_payload).await else {
            return;
        };
        let bytes = Bytes::from(frame.bytes);
        let entries = match frame::decode(&bytes, self.max_payload) {
            Ok(Frame::LogUpdate {
                keyring_id,
                entries,
            }) if keyring_id == link.keyring() => entries
                .iter()
                .map(|e| bytes.slice_ref(e))
                .collect::<Vec<_>>(),
            _ => return recv.stop(STREAM_BAD_FRAME),
        };
        if !link.is_member() || self.all_known(&key.0, &entries).await {
            return;
        }
        self.sink.log_update(LogUpdate {
            keyring: key.0,
            peer: key.1,
            entries,
        });
        drop(frame.charge);
    }
}

impl Protocol for Membership {
    fn id(&self) -> ProtocolId {
        PROTOCOL_MEMBERSHIP
    }

    fn accept_uni(self: Arc<Self>, link: PeerLink, recv: FramedRecv) -> BoxFuture {
        Box::pin(self.receive(link, recv))
    }

    fn accept_bi(self: Arc<Self>, link: PeerLink, send: SendStream, recv: FramedRecv) -> BoxFuture {
        Box::pin(self.answer_heads(link, send, recv))
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn heads_frame(
    keyring: PublicKey,
    reply: bool,
    heads: &[[u8; 32]],
    locator: &[[u8; 32]],
) -> Option<Bytes> {
    // A ring with more competing heads than a frame holds sends the first
    // ones (the effective head first): the peer still learns what it lacks
    // on that chain, and the rest at the next exchanges as branches resolve.
    let heads = &heads[..heads.len().min(MAX_HEADS_HASHES)];
    let locator = &locator[..locator.len().min(MAX_HEADS_HASHES - heads.len())];
    Frame::LogHeads {
        keyring_id: keyring,
        reply,
        heads: heads.to_vec(),
        locator: locator.to_vec(),
    }
    .encode()
    .ok()
    .map(Bytes::from)
}

/// A `LogUpdate` with the entries of `ring` a peer that holds `known` lacks
/// (`None`: it lacks nothing).
fn missing_frame(ring: &SharedRing, keyring: PublicKey, known: &[[u8; 32]]) -> Option<Vec<u8>> {
    ring.read(|r| {
        let missing = r.entries_since(known);
        if missing.is_empty() {
            return None;
        }
        let encoded: Vec<Vec<u8>> = missing.iter().map(|e| e.encode()).collect();
        Frame::LogUpdate {
            keyring_id: keyring,
            entries: encoded.iter().map(Vec::as_slice).collect(),
        }
        .encode()
        .ok()
    })
}

/// Takes a (keyring, peer) out of a set when dropped.
struct Unmark<'a>(&'a Mutex<HashSet<Pair>>, Pair);

impl Drop for Unmark<'_> {
    fn drop(&mut self) {
        lock(self.0).remove(&self.1);
    }
}

/// Runs `f` on the runtime's blocking pool: work on a ring (its lock may be
/// held by a long ingest; a long log takes a while to walk) never holds up
/// the thread that serves every connection. `None` if it panicked.
async fn off_thread<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    tokio::task::spawn_blocking(f).await.ok()
}
