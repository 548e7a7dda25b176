//! What each peer key holds of this node across all its connections: how
//! many connections (capped at [`crate::Limits::max_connections_per_key`]
//! for connections the peer opened) and the memory budget they share.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use keyring_core::membership::PublicKey;
use tokio::sync::Semaphore;

use crate::budget::Budget;

/// Per-key connection counts and shared budgets.
#[derive(Debug)]
pub(crate) struct PeerTable {
    peers: Mutex<HashMap<PublicKey, PeerEntry>>,
    link_budget: usize,
    peer_budget: usize,
}

#[derive(Debug)]
struct PeerEntry {
    connections: usize,
    budget: Arc<Semaphore>,
}

/// One connection's place in the table; dropping it frees the place.
#[derive(Debug)]
pub(crate) struct PeerClaim {
    table: Arc<PeerTable>,
    key: PublicKey,
    budget: Budget,
}

impl PeerClaim {
    /// The connection's budget (inside the peer's).
    pub(crate) fn budget(&self) -> &Budget {
        &self.budget
    }
}

impl Drop for PeerClaim {
    fn drop(&mut self) {
        let mut peers = self.table.lock();
        if let Some(entry) = peers.get_mut(&self.key) {
            entry.connections -= 1;
            if entry.connections == 0 {
                peers.remove(&self.key);
            }
        }
    }
}

impl PeerTable {
    pub(crate) fn new(link_budget: usize, peer_budget: usize) -> Arc<Self> {
        Arc::new(Self {
            peers: Mutex::new(HashMap::new()),
            link_budget,
            peer_budget,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<PublicKey, PeerEntry>> {
        self.peers.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A place for one more connection of `key`; with `cap`, none if the key
    /// already holds that many.
    pub(crate) fn claim(self: &Arc<Self>, key: PublicKey, cap: Option<usize>) -> Option<PeerClaim> {
        let mut peers = self.lock();
        let entry = peers.entry(key).or_insert_with(|| PeerEntry {
            connections: 0,
            budget: Arc::new(Semaphore::new(self.peer_budget.min(Semaphore::MAX_PERMITS))),
        });
        if cap.is_some_and(|cap| entry.connections >= cap) {
            return None;
        }
        entry.connections += 1;
        let budget = Budget::new(self.link_budget, entry.budget.clone());
        drop(peers);
        Some(PeerClaim {
            table: self.clone(),
            key,
            budget,
        })
    }

    /// Connections `key` holds now.
    #[cfg(test)]
    pub(crate) fn connections(&self, key: &PublicKey) -> usize {
        self.lock().get(key).map_or(0, |e| e.connections)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_holds_at_most_its_cap_of_connections_and_places_come_back() {
        let t = PeerTable::new(10, 20);
        let k = [1u8; 32];
        let claims: Vec<_> = (0..3).map(|_| t.claim(k, Some(3)).unwrap()).collect();
        assert!(t.claim(k, Some(3)).is_none());
        // Our own dials are not capped.
        let ours = t.claim(k, None).unwrap();
        assert_eq!(t.connections(&k), 4);
        drop(ours);
        drop(claims);
        assert_eq!(t.connections(&k), 0);
        assert!(t.claim(k, Some(3)).is_some());
    }

    #[test]
    fn connections_of_one_key_share_its_budget() {
        let t = PeerTable::new(10, 15);
        let k = [2u8; 32];
        let (a, b) = (t.claim(k, None).unwrap(), t.claim(k, None).unwrap());
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        rt.block_on(async {
            let wait = std::time::Duration::from_millis(10);
            let _held = a.budget().charge(10, wait).await.unwrap();
            assert!(b.budget().charge(10, wait).await.is_err());
            assert!(b.budget().charge(5, wait).await.is_ok());
        });
    }
}
