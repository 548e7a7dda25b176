//! Rings shared between the BEAM and Rust threads: a [`SharedRing`] is a
//! [`Ring`] behind a mutex plus a published summary of its heads that readers
//! take without waiting for a writer; a [`Registry`] finds rings by keyring id
//! (for protocol handlers in `keyring_net` that ingest LogUpdate frames).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use super::entry::{EntryHash, PublicKey};
use super::ring::Ring;

/// What a reader can learn about a ring without locking it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    /// The keyring id.
    pub keyring_id: PublicKey,
    /// The effective head.
    pub head: EntryHash,
    /// Entries on the effective chain.
    pub length: u64,
    /// Every head (effective first).
    pub heads: Vec<EntryHash>,
    /// [`Ring::locator`]: what to tell a peer in anti-entropy.
    pub locator: Vec<EntryHash>,
}

/// A ring shared by several threads.
#[derive(Debug)]
pub struct SharedRing {
    ring: Mutex<Ring>,
    published: RwLock<Arc<Published>>,
}

fn publish(ring: &Ring) -> Arc<Published> {
    Arc::new(Published {
        keyring_id: ring.keyring_id(),
        head: ring.head_hash(),
        length: ring.len(),
        heads: ring.heads(),
        locator: ring.locator(),
    })
}

impl SharedRing {
    /// Shares `ring`.
    pub fn new(ring: Ring) -> Self {
        Self {
            published: RwLock::new(publish(&ring)),
            ring: Mutex::new(ring),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Ring> {
        // A panic while holding the lock leaves the ring as it was between
        // two entries (each entry is added whole), so keep using it.
        self.ring.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` on the ring, then publishes its new heads.
    pub fn update<T>(&self, f: impl FnOnce(&mut Ring) -> T) -> T {
        let mut ring = self.lock();
        let out = f(&mut ring);
        let published = publish(&ring);
        *self.published.write().unwrap_or_else(|e| e.into_inner()) = published;
        out
    }

    /// Runs `f` on the ring (waits for a writer).
    pub fn read<T>(&self, f: impl FnOnce(&Ring) -> T) -> T {
        f(&self.lock())
    }

    /// The last published heads (never waits for a writer beyond a pointer swap).
    pub fn published(&self) -> Arc<Published> {
        self.published
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// The rings a node holds, by keyring id.
#[derive(Debug, Default)]
pub struct Registry {
    rings: RwLock<HashMap<PublicKey, Arc<SharedRing>>>,
}

impl Registry {
    /// Adds (or replaces) a ring; answers the previous one.
    pub fn insert(&self, ring: Arc<SharedRing>) -> Option<Arc<SharedRing>> {
        let id = ring.published().keyring_id;
        self.write().insert(id, ring)
    }

    /// The ring of keyring `id`.
    pub fn get(&self, id: &PublicKey) -> Option<Arc<SharedRing>> {
        self.rings
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .cloned()
    }

    /// Forgets keyring `id`.
    pub fn remove(&self, id: &PublicKey) -> Option<Arc<SharedRing>> {
        self.write().remove(id)
    }

    /// The keyring ids held.
    pub fn ids(&self) -> Vec<PublicKey> {
        self.rings
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .copied()
            .collect()
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<PublicKey, Arc<SharedRing>>> {
        self.rings.write().unwrap_or_else(|e| e.into_inner())
    }
}
