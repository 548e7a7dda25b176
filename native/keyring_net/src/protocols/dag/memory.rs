//! A [`DagStore`] over maps, for tests and examples: nodes and blobs by
//! cid, and the (keyring, cid) pairs shared.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use keyring_core::dag::{BlobRead, Cid};
use keyring_core::hash::digest;
use keyring_core::membership::PublicKey;

use super::DagStore;
use crate::protocols::reconcile::SharedSet;

/// Items and shares in memory.
#[derive(Debug, Default)]
pub struct MemoryStore {
    items: Mutex<HashMap<Cid, Vec<u8>>>,
    shared: Mutex<HashSet<(PublicKey, Cid)>>,
    puts: Mutex<usize>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Stores `bytes` under their hash; returns the cid.
    pub fn insert(&self, bytes: Vec<u8>) -> Cid {
        let cid = digest(&bytes);
        self.lock_items().insert(cid, bytes);
        cid
    }

    /// Stores `bytes` under `cid` whatever they hash to (a corrupt copy).
    pub fn insert_as(&self, cid: Cid, bytes: Vec<u8>) {
        self.lock_items().insert(cid, bytes);
    }

    /// Removes `cid`.
    pub fn remove(&self, cid: &Cid) {
        self.lock_items().remove(cid);
    }

    /// Shares `cid` in `keyring`.
    pub fn share(&self, keyring: PublicKey, cid: Cid) {
        self.shared
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert((keyring, cid));
    }

    /// How many items are held.
    pub fn len(&self) -> usize {
        self.lock_items().len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether `cid` is held.
    pub fn contains(&self, cid: &Cid) -> bool {
        self.lock_items().contains_key(cid)
    }

    /// The bytes held under `cid`.
    pub fn get(&self, cid: &Cid) -> Option<Vec<u8>> {
        self.lock_items().get(cid).cloned()
    }

    /// How many `put` calls stored something.
    pub fn puts(&self) -> usize {
        *self.puts.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn lock_items(&self) -> std::sync::MutexGuard<'_, HashMap<Cid, Vec<u8>>> {
        self.items.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl DagStore for MemoryStore {
    fn shared_in(&self, keyring: &PublicKey, cid: &Cid) -> Result<bool, String> {
        let shared = self.shared.lock().unwrap_or_else(|e| e.into_inner());
        Ok(shared.contains(&(*keyring, *cid)) && self.contains(cid))
    }

    fn node(&self, cid: &Cid) -> Result<Option<Vec<u8>>, String> {
        Ok(self.get(cid))
    }

    fn blob(&self, cid: &Cid, limit: usize) -> Result<BlobRead, String> {
        Ok(match self.get(cid) {
            Some(b) if b.len() <= limit => BlobRead::Bytes(b),
            Some(b) => BlobRead::TooLarge(b.len() as u64),
            None => BlobRead::Absent,
        })
    }

    fn has(&self, cid: &Cid) -> Result<bool, String> {
        Ok(self.contains(cid))
    }

    fn put(&self, items: Vec<(Cid, Vec<u8>)>) -> Result<(), String> {
        let mut held = self.lock_items();
        for (cid, bytes) in items {
            held.insert(cid, bytes);
        }
        *self.puts.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        Ok(())
    }
}

impl SharedSet for MemoryStore {
    fn shared(&self, keyring: &PublicKey) -> Result<Vec<Cid>, String> {
        let shared = self.shared.lock().unwrap_or_else(|e| e.into_inner());
        Ok(shared
            .iter()
            .filter(|(k, _)| k == keyring)
            .map(|(_, c)| *c)
            .collect())
    }
}
