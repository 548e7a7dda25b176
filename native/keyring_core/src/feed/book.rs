use std::collections::HashMap;

use crate::identity::KeyPair;

use super::chain::{Chain, Ingested};
use super::entry::{Content, Entry, EntryBody, EntryHash, PublicKey};
use super::FeedError;

/// Bounds on what a [`FeedBook`] holds beside its chains.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// How far past a feed's head an entry may be and still wait.
    pub max_ahead: u64,
    /// Most entries waiting for a predecessor in one feed.
    pub max_waiting_per_feed: usize,
    /// Most bytes of waiting entries over all feeds.
    pub max_waiting_bytes: usize,
    /// Most fork-evidence records kept per feed (two hashes each).
    pub max_evidence_per_feed: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_ahead: 1 << 20,
            max_waiting_per_feed: 4096,
            max_waiting_bytes: 64 << 20,
            max_evidence_per_feed: 4096,
        }
    }
}

/// A feed: one author in one keyring.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FeedId {
    /// The keyring.
    pub keyring: PublicKey,
    /// The author.
    pub author: PublicKey,
}

/// Every feed a node holds: chains, waiting entries and forks found.
///
/// `ingest` verifies an entry's signature and places it: chained when it
/// links to its feed's head (promoting any waiting successors), held when its
/// predecessor has not arrived, reported as a fork when it conflicts with an
/// entry held at its position or a neighbouring one. A fork is never merged:
/// the chain keeps the branch it had (or, between two waiting entries that
/// both link, the one with the lower hash).
#[derive(Debug, Default)]
pub struct FeedBook {
    feeds: HashMap<FeedId, Chain>,
    limits: Limits,
    waiting_bytes: usize,
}

impl FeedBook {
    /// An empty book with `limits`.
    pub fn new(limits: Limits) -> Self {
        Self {
            feeds: HashMap::new(),
            limits,
            waiting_bytes: 0,
        }
    }

    /// Verifies and ingests an entry that arrived from anywhere.
    pub fn ingest(&mut self, entry: Entry) -> Result<Ingested, FeedError> {
        entry.verify()?;
        self.place(entry)
    }

    /// Signs and ingests the next entry of `author`'s feed in `keyring`.
    pub fn append(
        &mut self,
        author: &KeyPair,
        keyring: PublicKey,
        timestamp_ms: u64,
        content_type: String,
        content: Content,
    ) -> Result<(Entry, Ingested), FeedError> {
        let id = FeedId {
            keyring,
            author: author.public_key(),
        };
        let (head, prev) = self
            .feeds
            .get(&id)
            .map_or((0, [0; 32]), |c| (c.head(), c.head_hash()));
        let body = EntryBody {
            keyring,
            author: id.author,
            seq: head + 1,
            prev,
            timestamp_ms,
            content_type,
            content,
        };
        let entry = Entry::sign(body, author)?;
        let outcome = self.place(entry.clone())?;
        Ok((entry, outcome))
    }

    /// Adds an entry read back from this node's own store (checked when it
    /// was stored, so only the chain link is checked again).
    pub fn load(&mut self, entry: &Entry) -> Result<(), FeedError> {
        self.feeds.entry(feed_id(entry)).or_default().load(entry)
    }

    fn place(&mut self, entry: Entry) -> Result<Ingested, FeedError> {
        let room = self
            .limits
            .max_waiting_bytes
            .saturating_sub(self.waiting_bytes);
        let chain = self.feeds.entry(feed_id(&entry)).or_default();
        let (outcome, used) = chain.ingest(entry, &self.limits, room)?;
        self.waiting_bytes = self.waiting_bytes.saturating_add_signed(used);
        Ok(outcome)
    }

    /// The head of a feed: its last chained sequence number and hash.
    pub fn head(&self, feed: &FeedId) -> Option<(u64, EntryHash)> {
        self.feeds.get(feed).map(|c| (c.head(), c.head_hash()))
    }

    /// The hash of the chained entry at `seq`.
    pub fn hash_at(&self, feed: &FeedId, seq: u64) -> Option<EntryHash> {
        self.feeds.get(feed)?.hash_at(seq).copied()
    }

    /// Every feed of `keyring` with its head sequence number, sorted by author.
    pub fn heads(&self, keyring: &PublicKey) -> Vec<(PublicKey, u64)> {
        let mut out: Vec<_> = self
            .feeds
            .iter()
            .filter(|(id, _)| &id.keyring == keyring)
            .map(|(id, c)| (id.author, c.head()))
            .collect();
        out.sort_unstable();
        out
    }

    /// The sequence numbers found forked in a feed, ascending.
    pub fn forks(&self, feed: &FeedId) -> Vec<u64> {
        self.feeds
            .get(feed)
            .map(|c| c.forks().collect())
            .unwrap_or_default()
    }

    /// Entries waiting for a predecessor in a feed, and their bytes.
    pub fn waiting(&self, feed: &FeedId) -> (usize, usize) {
        self.feeds.get(feed).map_or((0, 0), Chain::waiting)
    }

    /// Bytes of waiting entries over all feeds.
    pub fn waiting_bytes(&self) -> usize {
        self.waiting_bytes
    }
}

fn feed_id(entry: &Entry) -> FeedId {
    FeedId {
        keyring: *entry.keyring(),
        author: *entry.author(),
    }
}
