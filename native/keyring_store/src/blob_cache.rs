//! A memory cache of small blobs, so the BEAM can serve hot reads on its
//! normal schedulers without a trip to a dirty scheduler.
//!
//! The idea is RocksDB's `kBlockCacheTier` read: ask the cache only, never
//! the disk; a miss is answered at once and the caller goes to the disk by the
//! slow (dirty I/O) path, which fills the cache. Blobs are immutable, so an
//! entry can only go stale by a delete; see [`BlobCache::insert_unless_deleted`].
//!
//! Sharded LRU with a byte budget: each shard holds `budget / SHARDS` bytes
//! of blob data, evicting its least recently used entries past that.

use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, TryLockError};

use lru::LruCache;

use crate::schema::INLINE_MAX;
use keyring_core::hash::Digest;

const SHARDS: usize = 16;

/// Cache counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Bytes of blob data held.
    pub bytes: u64,
    /// Reads answered from the cache.
    pub hits: u64,
    /// Reads that had to go to the database.
    pub misses: u64,
}

/// See the module docs.
#[derive(Debug)]
pub(crate) struct BlobCache {
    shards: Box<[Mutex<Shard>]>,
    shard_budget: usize,
    /// Bumped by every delete; a reader that saw a different value before its
    /// read does not insert what it read.
    deletes: AtomicU64,
    hits: AtomicU64,
    misses: AtomicU64,
}

#[derive(Debug)]
struct Shard {
    entries: LruCache<Digest, Arc<[u8]>, BuildHasherDefault<CidHasher>>,
    bytes: usize,
}

/// Cids are already uniform hashes: their first eight bytes make the key.
#[derive(Debug, Default)]
struct CidHasher(u64);

impl Hasher for CidHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes.iter().take(8) {
            self.0 = (self.0 << 8) | u64::from(*b);
        }
    }
    // `[u8; 32]` hashes its length first; a constant adds nothing.
    fn write_usize(&mut self, _: usize) {}
}

impl BlobCache {
    /// A cache holding up to `budget` bytes of blobs (0 turns it off).
    pub(crate) fn new(budget: usize) -> Self {
        let shards = (0..SHARDS)
            .map(|_| {
                Mutex::new(Shard {
                    entries: LruCache::unbounded_with_hasher(BuildHasherDefault::default()),
                    bytes: 0,
                })
            })
            .collect();
        Self {
            shards,
            shard_budget: budget / SHARDS,
            deletes: AtomicU64::new(0),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    fn shard(&self, cid: &Digest) -> &Mutex<Shard> {
        // The last byte picks the shard; the first eight key the map.
        &self.shards[cid[31] as usize % SHARDS]
    }

    /// Whether a blob of `len` bytes is worth caching.
    pub(crate) fn admits(&self, len: usize) -> bool {
        self.shard_budget > 0 && len <= INLINE_MAX && len <= self.shard_budget / 4
    }

    /// The cached bytes of `cid`, counting a hit or a miss. Never waits: a
    /// shard locked by another thread (which the OS may have preempted, on a
    /// busy machine, for milliseconds) counts as a miss, so a BEAM scheduler
    /// calling this is never blocked.
    pub(crate) fn get(&self, cid: &Digest) -> Option<Arc<[u8]>> {
        if self.shard_budget == 0 {
            return None;
        }
        let found = match self.shard(cid).try_lock() {
            Ok(mut shard) => shard.entries.get(cid).cloned(),
            Err(TryLockError::Poisoned(e)) => e.into_inner().entries.get(cid).cloned(),
            Err(TryLockError::WouldBlock) => None,
        };
        let counter = if found.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    /// The delete counter; read it before reading the database and pass it
    /// to [`BlobCache::insert_unless_deleted`].
    pub(crate) fn delete_epoch(&self) -> u64 {
        self.deletes.load(Ordering::SeqCst)
    }

    /// Caches `bytes` as `cid` unless a delete was acknowledged since
    /// `epoch` was read (the bytes might be of a blob that is gone now).
    /// The check and the insert happen under the shard lock that
    /// [`BlobCache::invalidate`] also takes, so no delete slips in between.
    pub(crate) fn insert_unless_deleted(&self, cid: &Digest, bytes: &[u8], epoch: u64) {
        if !self.admits(bytes.len()) {
            return;
        }
        let mut shard = self.shard(cid).lock().unwrap_or_else(|e| e.into_inner());
        if self.deletes.load(Ordering::SeqCst) != epoch || shard.entries.contains(cid) {
            return;
        }
        shard.bytes += bytes.len();
        shard.entries.put(*cid, Arc::from(bytes));
        while shard.bytes > self.shard_budget {
            match shard.entries.pop_lru() {
                Some((_, old)) => shard.bytes -= old.len(),
                None => break,
            }
        }
    }

    /// Forgets `cid`; the committer calls it after a delete commits and
    /// before it answers the caller.
    pub(crate) fn invalidate(&self, cid: &Digest) {
        let mut shard = self.shard(cid).lock().unwrap_or_else(|e| e.into_inner());
        self.deletes.fetch_add(1, Ordering::SeqCst);
        if let Some(old) = shard.entries.pop(cid) {
            shard.bytes -= old.len();
        }
    }

    /// Bytes held, hits and misses.
    pub(crate) fn stats(&self) -> CacheStats {
        let bytes = self
            .shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|e| e.into_inner()).bytes as u64)
            .sum();
        CacheStats {
            bytes,
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cid(n: u8) -> Digest {
        let mut d = [n; 32];
        d[31] = 0; // all in one shard
        d
    }

    #[test]
    fn hit_after_insert_and_miss_after_invalidate() {
        let cache = BlobCache::new(SHARDS * 64 * 1024);
        let epoch = cache.delete_epoch();
        assert!(cache.get(&cid(1)).is_none());
        cache.insert_unless_deleted(&cid(1), b"hello", epoch);
        assert_eq!(cache.get(&cid(1)).as_deref(), Some(&b"hello"[..]));
        cache.invalidate(&cid(1));
        assert!(cache.get(&cid(1)).is_none());
        let stats = cache.stats();
        assert_eq!((stats.hits, stats.misses, stats.bytes), (1, 2, 0));
    }

    #[test]
    fn a_read_that_raced_a_delete_is_not_cached() {
        let cache = BlobCache::new(SHARDS * 64 * 1024);
        let epoch = cache.delete_epoch();
        // The delete commits while the reader is still reading.
        cache.invalidate(&cid(2));
        cache.insert_unless_deleted(&cid(2), b"gone", epoch);
        assert!(cache.get(&cid(2)).is_none());
    }

    #[test]
    fn least_recently_used_blobs_are_evicted_past_the_budget() {
        let cache = BlobCache::new(SHARDS * 4096);
        let epoch = cache.delete_epoch();
        let blob = [7u8; 1000];
        for n in 1..=4 {
            cache.insert_unless_deleted(&cid(n), &blob, epoch);
        }
        assert!(cache.get(&cid(1)).is_some()); // 1 is now the most recent
        cache.insert_unless_deleted(&cid(5), &blob, epoch);
        assert!(
            cache.get(&cid(2)).is_none(),
            "least recently used goes first"
        );
        assert!(cache.get(&cid(1)).is_some());
        assert!(cache.stats().bytes <= 4096);
    }

    #[test]
    fn large_blobs_and_a_zero_budget_are_not_cached() {
        let cache = BlobCache::new(SHARDS * 1024 * 1024);
        let epoch = cache.delete_epoch();
        cache.insert_unless_deleted(&cid(1), &vec![0u8; INLINE_MAX + 1], epoch);
        assert!(cache.get(&cid(1)).is_none());

        let off = BlobCache::new(0);
        off.insert_unless_deleted(&cid(1), b"x", off.delete_epoch());
        assert!(off.get(&cid(1)).is_none());
        assert_eq!(off.stats(), CacheStats::default());
    }
}
