//! Feed and ref replication (protocol 5): signed feed entries and signed
//! refs travel between members of the keyring they are published in.
//! Messages: [`keyring_core::feed::wire`], framed like reconciliation's.
//!
//! - **Push** (unidirectional stream): an author's node sends its new
//!   entries and refs to every linked member of the keyring at once
//!   ([`Feeds::push`]); the receiver hands them to its [`FeedSink`], which
//!   verifies them (signature, author a member, chain) and keeps what it
//!   follows.
//! - **Pull** (bidirectional stream, one per round): on (re)connection a
//!   member sends its heads, `(author, last chained seq)`, and the authors
//!   it follows (or none: all); the provider answers with the entries that
//!   follow those heads, at most [`FeedLimits::batch`] per round, read
//!   from its [`FeedSource`], plus its signed refs; the requester pulls
//!   again from the new heads while the provider says `more`.
//!
//! Nothing here trusts the bytes: entries and refs are verified by the sink
//! (`Keyring.Feed.ingest`, `Keyring.Refs.ingest`); this module only decodes
//! entries' headers to move the requester's heads on between rounds (a lying
//! provider can make it ask again, at most [`FeedLimits::max_rounds`]
//! times).
//!
//! **Fences.** Messages are at most [`FeedLimits::max_message`] bytes
//! (length checked before the bytes are awaited) and read under the stream's
//! byte-rate deadline; pushes per (keyring, peer) are rate-limited
//! ([`FeedLimits::push_burst`], `pushes_per_second`: beyond it a push waits
//! for its turn holding its stream, so a flooder runs out of streams);
//! pulls served to one peer at once are bounded
//! ([`FeedLimits::pulls_per_peer`], more are answered with an empty batch
//! after a pause).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use keyring_core::feed::wire::{Message, MAX_ITEMS};
use keyring_core::feed::Entry;
use keyring_core::membership::PublicKey;
use keyring_core::reconcile::framing::{decode_frame, encode_frame};
use quinn::SendStream;
use tokio::time::Instant;

use crate::close::{STREAM_BAD_FRAME, STREAM_TOO_SLOW};
use crate::config::Limits;
use crate::connect::Opener;
use crate::error::CallError;
use crate::protocol::{BoxFuture, PeerLink, Protocol, ProtocolId, Target};
use crate::protocols::turn;
use crate::rate::KeyedBuckets;
use crate::stream::{FramedRecv, ReadFrameError};

/// Feed replication streams begin with this byte.
pub const PROTOCOL_FEEDS: ProtocolId = 5;

/// Where a provider reads feeds. May block (called on blocking threads).
pub trait FeedSource: Send + Sync + 'static {
    /// The feeds held in `keyring`: (author, last chained seq).
    fn heads(&self, keyring: &PublicKey) -> Result<Vec<(PublicKey, u64)>, String>;
    /// Up to `limit` chained entries of `author` after seq `after`, in order.
    fn entries_after(
        &self,
        keyring: &PublicKey,
        author: &PublicKey,
        after: u64,
        limit: usize,
    ) -> Result<Vec<Vec<u8>>, String>;
    /// The signed refs held in `keyring` (at most [`MAX_ITEMS`]).
    fn refs(&self, keyring: &PublicKey) -> Result<Vec<Vec<u8>>, String>;
}

/// Where received entries and refs go (unverified). Must not block.
pub trait FeedSink: Send + Sync + 'static {
    /// Entries and refs a member of `keyring` pushed.
    fn pushed(&self, keyring: PublicKey, peer: PublicKey, entries: Vec<Bytes>, refs: Vec<Bytes>);
}

/// The numbers of replication's fences.
#[derive(Debug, Clone)]
pub struct FeedLimits {
    /// Largest message accepted or sent.
    pub max_message: usize,
    /// Entries per pull round.
    pub batch: u32,
    /// Most rounds of one pull.
    pub max_rounds: u32,
    /// Pushes per (keyring, peer) at once.
    pub push_burst: u32,
    /// Pushes per (keyring, peer) per second, on average.
    pub pushes_per_second: u32,
    /// Pull rounds served to one peer at once.
    pub pulls_per_peer: usize,
}

impl Default for FeedLimits {
    fn default() -> Self {
        Self {
            max_message: 8 << 20,
            batch: 2048,
            max_rounds: 1024,
            push_burst: 1024,
            pushes_per_second: 4096,
            pulls_per_peer: 2,
        }
    }
}

/// Why a pull failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PullError {
    /// The peer could not be reached, or the link broke.
    #[error("{0}")]
    Link(#[from] CallError),
    /// The peer's answer is not a batch.
    #[error("malformed answer: {0}")]
    Malformed(String),
    /// More rounds than allowed.
    #[error("more than {0} rounds")]
    TooManyRounds(u32),
    /// The peer sent slower than the minimum rate.
    #[error("the peer was too slow")]
    TooSlow,
    /// A message found no room in the link's memory budget in time.
    #[error("no room in the memory budget")]
    OverBudget,
    /// The deadline passed.
    #[error("timed out")]
    Timeout,
}

/// What a pull brought (unverified: ingest it).
#[derive(Debug, Clone, Default)]
pub struct Pulled {
    /// Entries, each feed's in order.
    pub entries: Vec<Bytes>,
    /// Signed refs.
    pub refs: Vec<Bytes>,
    /// Rounds taken.
    pub round_trips: u32,
}

/// The protocol.
pub struct Feeds {
    source: Arc<dyn FeedSource>,
    sink: Arc<dyn FeedSink>,
    limits: FeedLimits,
    rate: Mutex<KeyedBuckets<(PublicKey, PublicKey)>>,
    pulls: Mutex<HashMap<PublicKey, usize>>,
}

impl std::fmt::Debug for Feeds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Feeds")
            .field("limits", &self.limits)
            .finish()
    }
}

struct PullSlot<'a> {
    of: &'a Feeds,
    peer: PublicKey,
}

impl Drop for PullSlot<'_> {
    fn drop(&mut self) {
        let mut p = self.of.pulls.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = p.get_mut(&self.peer) {
            *n -= 1;
            if *n == 0 {
                p.remove(&self.peer);
            }
        }
    }
}

impl Feeds {
    /// The protocol over `source` and `sink`.
    pub fn new(
        source: Arc<dyn FeedSource>,
        sink: Arc<dyn FeedSink>,
        limits: FeedLimits,
        mesh_limits: &Limits,
    ) -> Arc<Self> {
        Arc::new(Self {
            source,
            sink,
            rate: Mutex::new(KeyedBuckets::new(
                limits.push_burst,
                limits.pushes_per_second,
                mesh_limits.tracked_sources,
            )),
            limits,
            pulls: Mutex::new(HashMap::new()),
        })
    }

    fn pull_slot(&self, peer: PublicKey) -> Option<PullSlot<'_>> {
        let mut p = self.pulls.lock().unwrap_or_else(|e| e.into_inner());
        let n = p.entry(peer).or_insert(0);
        if *n >= self.limits.pulls_per_peer {
            return None;
        }
        *n += 1;
        Some(PullSlot { of: self, peer })
    }

    /// Pushes `entries` and `refs` (encoded) to every linked member of
    /// `keyring`; returns how many links they went out on.
    pub fn push(
        &self,
        opener: &Opener,
        keyring: PublicKey,
        entries: &[Vec<u8>],
        refs: &[Vec<u8>],
    ) -> usize {
        let mut frames = Vec::new();
        for (e, r) in chunks(entries, refs) {
            let Ok(message) = (Message::Push {
                entries: e.iter().map(Vec::as_slice).collect(),
                refs: r.iter().map(Vec::as_slice).collect(),
            })
            .encode() else {
                return 0;
            };
            frames.push(Bytes::from(encode_frame(&message)));
        }
        let links = opener.links(&keyring);
        for link in &links {
            let (link, frames) = (link.clone(), frames.clone());
            opener.runtime().spawn(async move {
                for frame in frames {
                    if let Ok(mut send) = link.open_uni(PROTOCOL_FEEDS).await {
                        let _ = send.write(vec![frame]).await;
                        send.finish();
                    }
                }
            });
        }
        links.len()
    }

    async fn receive(self: Arc<Self>, link: PeerLink, mut recv: FramedRecv) {
        let key = (link.keyring(), link.peer());
        turn(&self.rate, &key).await;
        let mut buf = Vec::new();
        let until = Instant::now() + Duration::from_secs(3600);
        let Ok(Some(bytes)) =
            read_message(&mut recv, &mut buf, self.limits.max_message, until, false).await
        else {
            return;
        };
        let bytes = Bytes::from(bytes);
        let (entries, refs) = match Message::decode(&bytes) {
            Ok(Message::Push { entries, refs }) => (
                entries.iter().map(|e| bytes.slice_ref(e)).collect(),
                refs.iter().map(|r| bytes.slice_ref(r)).collect(),
            ),
            _ => return recv.stop(STREAM_BAD_FRAME),
        };
        if link.is_member() {
            self.sink.pushed(key.0, key.1, entries, refs);
        }
    }

    async fn serve(self: Arc<Self>, link: PeerLink, mut send: SendStream, mut recv: FramedRecv) {
        let mut buf = Vec::new();
        let until = Instant::now() + Duration::from_secs(60);
        let Ok(Some(bytes)) =
            read_message(&mut recv, &mut buf, self.limits.max_message, until, false).await
        else {
            return;
        };
        let Ok(Message::Pull {
            authors,
            heads,
            max,
        }) = Message::decode(&bytes)
        else {
            return recv.stop(STREAM_BAD_FRAME);
        };
        if !link.is_member() {
            return;
        }
        let answer = match self.pull_slot(link.peer()) {
            None => {
                // Busy: an empty batch that says "more", after a pause, so
                // the requester comes back later.
                tokio::time::sleep(Duration::from_millis(50)).await;
                Message::Batch {
                    more: true,
                    entries: vec![],
                    refs: vec![],
                }
                .encode()
                .ok()
            }
            Some(_slot) => {
                let (source, keyring) = (self.source.clone(), link.keyring());
                let max = max.min(self.limits.batch).min(MAX_ITEMS as u32) as usize;
                let budget = self.limits.max_message.saturating_sub(1024);
                tokio::task::spawn_blocking(move || {
                    answer_pull(&*source, &keyring, authors, heads, max, budget)
                })
                .await
                .ok()
                .flatten()
            }
        };
        let Some(answer) = answer else {
            let _ = send.reset(crate::close::stream_code(STREAM_BAD_FRAME));
            return;
        };
        let _ = send.write_all(&encode_frame(&answer)).await;
        let _ = send.finish();
    }

    /// Pulls from `to` the entries that follow `heads` (for `authors`, or
    /// all), round after round, and its refs.
    pub async fn pull(
        &self,
        opener: &Opener,
        to: Target,
        authors: Option<Vec<PublicKey>>,
        heads: Vec<(PublicKey, u64)>,
        deadline: Instant,
    ) -> Result<Pulled, PullError> {
        let link = opener.link(to, deadline).await?;
        let mut heads: HashMap<PublicKey, u64> = heads.into_iter().collect();
        let mut out = Pulled::default();
        loop {
            if out.round_trips >= self.limits.max_rounds {
                return Err(PullError::TooManyRounds(self.limits.max_rounds));
            }
            let message = Message::Pull {
                authors: authors.clone(),
                heads: heads.iter().map(|(a, s)| (*a, *s)).collect(),
                max: self.limits.batch,
            }
            .encode()
            .map_err(|e| PullError::Malformed(e.to_string()))?;
            let (mut send, mut recv) = link.open_bi(PROTOCOL_FEEDS).await?;
            send.write(vec![Bytes::from(encode_frame(&message))])
                .await
                .map_err(|e| PullError::Link(CallError::ConnectionLost(e.to_string())))?;
            send.finish();
            out.round_trips += 1;
            let mut buf = Vec::new();
            let bytes = read_message(&mut recv, &mut buf, self.limits.max_message, deadline, true)
                .await?
                .ok_or_else(|| PullError::Malformed("no answer".into()))?;
            let bytes = Bytes::from(bytes);
            let Ok(Message::Batch {
                more,
                entries,
                refs,
            }) = Message::decode(&bytes)
            else {
                recv.stop(STREAM_BAD_FRAME);
                return Err(PullError::Malformed("not a batch".into()));
            };
            let mut moved = false;
            for e in &entries {
                if let Ok(entry) = Entry::decode(e) {
                    let head = heads.entry(*entry.author()).or_insert(0);
                    if entry.seq() > *head {
                        *head = entry.seq();
                        moved = true;
                    }
                }
                out.entries.push(bytes.slice_ref(e));
            }
            if out.round_trips == 1 {
                out.refs.extend(refs.iter().map(|r| bytes.slice_ref(r)));
            }
            if !more {
                break;
            }
            if !moved && !entries.is_empty() {
                return Err(PullError::Malformed("a batch that moves no head".into()));
            }
        }
        Ok(out)
    }
}

/// The provider's answer to a pull: entries after the requester's heads,
/// feed by feed, up to `max` entries and `budget` bytes.
fn answer_pull(
    source: &dyn FeedSource,
    keyring: &PublicKey,
    authors: Option<Vec<PublicKey>>,
    heads: Vec<(PublicKey, u64)>,
    max: usize,
    budget: usize,
) -> Option<Vec<u8>> {
    let theirs: HashMap<PublicKey, u64> = heads.into_iter().collect();
    let mut held = source.heads(keyring).ok()?;
    held.sort_unstable();
    let wanted = |a: &PublicKey| authors.as_ref().is_none_or(|list| list.contains(a));
    let mut entries: Vec<Vec<u8>> = Vec::new();
    let mut bytes = 0usize;
    let mut more = false;
    for (author, head) in held.iter().filter(|(a, _)| wanted(a)) {
        let after = theirs.get(author).copied().unwrap_or(0);
        if *head <= after {
            continue;
        }
        let room = max.saturating_sub(entries.len());
        if room == 0 || bytes >= budget {
            more = true;
            break;
        }
        let got = source.entries_after(keyring, author, after, room).ok()?;
        let mut last = after;
        for e in got {
            if bytes + e.len() > budget {
                break;
            }
            bytes += e.len() + 4;
            last += 1;
            entries.push(e);
        }
        if last < *head {
            more = true;
        }
    }
    let refs: Vec<Vec<u8>> = source
        .refs(keyring)
        .ok()?
        .into_iter()
        .take(MAX_ITEMS)
        .collect();
    Message::Batch {
        more,
        entries: entries.iter().map(Vec::as_slice).collect(),
        refs: refs.iter().map(Vec::as_slice).collect(),
    }
    .encode()
    .ok()
}

/// Entries and refs of one push message.
type Chunk<'a> = (&'a [Vec<u8>], &'a [Vec<u8>]);

/// Splits a push into messages of at most [`MAX_ITEMS`] entries and refs.
fn chunks<'a>(entries: &'a [Vec<u8>], refs: &'a [Vec<u8>]) -> Vec<Chunk<'a>> {
    let mut out = Vec::new();
    let n = entries.len().max(refs.len()).div_ceil(MAX_ITEMS).max(1);
    for i in 0..n {
        let e =
            &entries[(i * MAX_ITEMS).min(entries.len())..((i + 1) * MAX_ITEMS).min(entries.len())];
        let r = &refs[(i * MAX_ITEMS).min(refs.len())..((i + 1) * MAX_ITEMS).min(refs.len())];
        out.push((e, r));
    }
    out
}

/// Reads one framed message (`None` at the end of the stream). `patient`:
/// its first byte may take until `until`; after it, the byte rate applies.
async fn read_message(
    recv: &mut FramedRecv,
    buf: &mut Vec<u8>,
    max: usize,
    until: Instant,
    patient: bool,
) -> Result<Option<Vec<u8>>, PullError> {
    let started = Instant::now();
    let mut received = 0usize;
    // The message is charged to the link's memory budget once its length is
    // known, until it is complete.
    let mut charge = None;
    loop {
        if charge.is_none() && buf.len() >= 4 {
            let len = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
            if len <= max {
                charge = Some(recv.charge(len).await.map_err(|_| PullError::OverBudget)?);
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
                return Err(PullError::Malformed(e.to_string()));
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
            Ok(None) => return Err(PullError::Malformed("stream ended inside a frame".into())),
            Err(ReadFrameError::TooSlow) if Instant::now() >= until => {
                return Err(PullError::Timeout)
            }
            Err(ReadFrameError::TooSlow) => {
                recv.stop(STREAM_TOO_SLOW);
                return Err(PullError::TooSlow);
            }
            Err(_) => {
                return Err(PullError::Link(CallError::ConnectionLost(
                    "stream failed".into(),
                )))
            }
        }
    }
}

impl Protocol for Feeds {
    fn id(&self) -> ProtocolId {
        PROTOCOL_FEEDS
    }

    fn accept_uni(self: Arc<Self>, link: PeerLink, recv: FramedRecv) -> BoxFuture {
        Box::pin(self.receive(link, recv))
    }

    fn accept_bi(self: Arc<Self>, link: PeerLink, send: SendStream, recv: FramedRecv) -> BoxFuture {
        Box::pin(self.serve(link, send, recv))
    }
}
