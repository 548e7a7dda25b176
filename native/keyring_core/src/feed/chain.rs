//! One author's feed in one keyring: the chained entries (by hash) and the
//! entries beside the chain (waiting for a predecessor, or evidence of a fork).
//!
//! Fork detection works on everything ever accepted, not only on the chain,
//! so that the forks found are the same whatever order entries arrive in: a
//! fork at `seq` is two different entries at `seq`, or an entry at `seq + 1`
//! whose `prev` is not the hash of an entry held at `seq` (the author signed
//! a second entry at `seq`, even if it never reached us). Each new entry is
//! compared with what is held at `seq - 1`, `seq` and `seq + 1`.

use std::collections::{BTreeMap, BTreeSet};

use super::entry::{Entry, EntryHash};
use super::{FeedError, Limits};

/// An entry beside the chain. `entry` is kept while it may still chain
/// (`seq` above the head); evidence keeps only the two hashes.
#[derive(Debug)]
struct Beside {
    hash: EntryHash,
    prev: EntryHash,
    entry: Option<Entry>,
}

/// What ingesting an entry did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ingested {
    /// Where the entry went.
    pub status: Status,
    /// Entries newly chained, in sequence order: the entry itself when it
    /// extended the chain, then every held successor it promoted.
    pub chained: Vec<Entry>,
    /// Sequence numbers found forked by this entry (each reported once).
    pub forks: Vec<u64>,
}

/// Where an ingested entry went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// It extended the chain.
    Chained,
    /// It waits for its predecessor (not yet chained).
    Held,
    /// It was already held.
    Duplicate,
    /// It can never chain (it conflicts with the chain): kept as fork evidence only.
    Conflicting,
}

#[derive(Debug, Default)]
pub(crate) struct Chain {
    hashes: Vec<EntryHash>,
    beside: BTreeMap<u64, Vec<Beside>>,
    forks: BTreeSet<u64>,
    waiting: usize,
    waiting_bytes: usize,
    evidence: usize,
}

const ZERO: EntryHash = [0; 32];

impl Chain {
    pub(crate) fn head(&self) -> u64 {
        self.hashes.len() as u64
    }

    pub(crate) fn head_hash(&self) -> EntryHash {
        self.hashes.last().copied().unwrap_or(ZERO)
    }

    pub(crate) fn hash_at(&self, seq: u64) -> Option<&EntryHash> {
        seq.checked_sub(1)
            .and_then(|i| self.hashes.get(usize::try_from(i).ok()?))
    }

    pub(crate) fn forks(&self) -> impl Iterator<Item = u64> + '_ {
        self.forks.iter().copied()
    }

    pub(crate) fn waiting(&self) -> (usize, usize) {
        (self.waiting, self.waiting_bytes)
    }

    /// Appends a stored entry without checking its signature: it was checked
    /// before it was stored. It must extend the chain.
    pub(crate) fn load(&mut self, entry: &Entry) -> Result<(), FeedError> {
        if entry.seq() != self.head() + 1 || *entry.prev() != self.head_hash() {
            return Err(FeedError::NotAChain { seq: entry.seq() });
        }
        self.hashes.push(*entry.hash());
        Ok(())
    }

    /// Ingests a verified entry. `room` is the byte budget left for waiting
    /// entries across all feeds; the change to it is returned with the outcome.
    pub(crate) fn ingest(
        &mut self,
        entry: Entry,
        limits: &Limits,
        room: usize,
    ) -> Result<(Ingested, isize), FeedError> {
        let (seq, hash, prev) = (entry.seq(), *entry.hash(), *entry.prev());
        let head = self.head();
        if self.hash_at(seq) == Some(&hash) || self.beside_at(seq).any(|b| b.hash == hash) {
            return Ok((Self::outcome(Status::Duplicate, vec![], vec![]), 0));
        }
        if seq > head.saturating_add(limits.max_ahead) {
            return Err(FeedError::TooFarAhead { seq, head });
        }
        let links = seq == head + 1 && prev == self.head_hash();
        let waits = !links && seq > head + 1;
        if waits && (self.waiting >= limits.max_waiting_per_feed || entry.encoded_len() > room) {
            return Err(FeedError::HeldFull { seq });
        }

        let forks = self.detect_forks(seq, &hash, &prev);
        if links {
            let mut chained = vec![entry];
            self.hashes.push(hash);
            let freed = self.promote(&mut chained);
            return Ok((
                Self::outcome(Status::Chained, chained, forks),
                -(freed as isize),
            ));
        }
        let (status, used) = if waits {
            self.waiting += 1;
            self.waiting_bytes += entry.encoded_len();
            let used = entry.encoded_len() as isize;
            self.push_beside(seq, hash, prev, Some(entry));
            (Status::Held, used)
        } else {
            if self.evidence < limits.max_evidence_per_feed {
                self.evidence += 1;
                self.push_beside(seq, hash, prev, None);
            }
            (Status::Conflicting, 0)
        };
        Ok((Self::outcome(status, vec![], forks), used))
    }

    fn outcome(status: Status, chained: Vec<Entry>, forks: Vec<u64>) -> Ingested {
        Ingested {
            status,
            chained,
            forks,
        }
    }

    fn beside_at(&self, seq: u64) -> impl Iterator<Item = &Beside> {
        self.beside.get(&seq).into_iter().flatten()
    }

    fn push_beside(&mut self, seq: u64, hash: EntryHash, prev: EntryHash, entry: Option<Entry>) {
        self.beside
            .entry(seq)
            .or_default()
            .push(Beside { hash, prev, entry });
    }

    /// Hashes of every entry held at `seq` (chained or beside).
    fn hashes_at(&self, seq: u64) -> impl Iterator<Item = EntryHash> + '_ {
        self.hash_at(seq)
            .copied()
            .into_iter()
            .chain(self.beside_at(seq).map(|b| b.hash))
    }

    /// `prev` of every entry held at `seq` (chained or beside).
    fn prevs_at(&self, seq: u64) -> impl Iterator<Item = EntryHash> + '_ {
        let chained_prev = if seq >= 1 && seq <= self.head() {
            Some(self.hash_at(seq - 1).copied().unwrap_or(ZERO))
        } else {
            None
        };
        chained_prev
            .into_iter()
            .chain(self.beside_at(seq).map(|b| b.prev))
    }

    fn detect_forks(&mut self, seq: u64, hash: &EntryHash, prev: &EntryHash) -> Vec<u64> {
        let mut found = Vec::new();
        if self.hashes_at(seq).any(|h| h != *hash) {
            found.push(seq);
        }
        if seq > 1 && self.hashes_at(seq - 1).any(|h| h != *prev) {
            found.push(seq - 1);
        }
        if self.prevs_at(seq + 1).any(|p| p != *hash) {
            found.push(seq);
        }
        found.sort_unstable();
        found.dedup();
        found.retain(|s| self.forks.insert(*s));
        found
    }

    /// Chains every waiting entry that now links to the head; entries left
    /// behind at chained positions become evidence. Returns the bytes freed.
    fn promote(&mut self, chained: &mut Vec<Entry>) -> usize {
        let mut freed = 0;
        loop {
            let seq = self.head();
            // Waiting entries at the new head are now at or below it: they
            // lost the position (a fork, already reported) and become evidence.
            freed += self.demote(seq);
            let head_hash = self.head_hash();
            let Some(list) = self.beside.get_mut(&(seq + 1)) else {
                return freed;
            };
            let next = list
                .iter()
                .enumerate()
                .filter(|(_, b)| b.entry.is_some() && b.prev == head_hash)
                .min_by_key(|(_, b)| b.hash)
                .map(|(i, _)| i);
            let Some(i) = next else {
                return freed;
            };
            let b = list.swap_remove(i);
            if list.is_empty() {
                self.beside.remove(&(seq + 1));
            }
            let entry = b.entry.expect("filtered on Some");
            self.waiting -= 1;
            self.waiting_bytes -= entry.encoded_len();
            freed += entry.encoded_len();
            self.hashes.push(b.hash);
            chained.push(entry);
        }
    }

    fn demote(&mut self, seq: u64) -> usize {
        let mut freed = 0;
        if let Some(list) = self.beside.get_mut(&seq) {
            for b in list.iter_mut() {
                if let Some(e) = b.entry.take() {
                    self.waiting -= 1;
                    self.waiting_bytes -= e.encoded_len();
                    self.evidence += 1;
                    freed += e.encoded_len();
                }
            }
        }
        freed
    }
}
