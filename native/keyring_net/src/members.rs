//! The membership snapshots the TLS verifiers consult: for each keyring this
//! node is in, the member keys and their expiry. Lookups are O(1) under a
//! read lock and never call out of Rust (verifiers run inside quinn's driver).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::RwLock;
use std::time::{SystemTime, UNIX_EPOCH};

use keyring_core::membership::PublicKey;

/// Current Unix time in milliseconds.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Member keys per keyring, with expiry (Unix ms, 0 = never).
#[derive(Debug, Default)]
pub struct Members {
    keyrings: RwLock<HashMap<PublicKey, HashMap<PublicKey, u64>>>,
    rejections: AtomicU64,
}

fn valid(expires_at_ms: u64, now: u64) -> bool {
    expires_at_ms == 0 || expires_at_ms > now
}

impl Members {
    /// Replaces the snapshot of one keyring.
    pub fn set(&self, keyring: PublicKey, members: impl IntoIterator<Item = (PublicKey, u64)>) {
        let map = members.into_iter().collect();
        self.keyrings
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(keyring, map);
    }

    /// Forgets a keyring.
    pub fn remove(&self, keyring: &PublicKey) {
        self.keyrings
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(keyring);
    }

    /// Whether `key` is a current (unexpired) member of `keyring`.
    pub fn is_member(&self, keyring: &PublicKey, key: &PublicKey) -> bool {
        let now = now_ms();
        let guard = self.keyrings.read().unwrap_or_else(|e| e.into_inner());
        guard
            .get(keyring)
            .and_then(|m| m.get(key))
            .is_some_and(|e| valid(*e, now))
    }

    /// Whether `key` is a current member of any keyring.
    pub fn is_member_of_any(&self, key: &PublicKey) -> bool {
        let now = now_ms();
        let guard = self.keyrings.read().unwrap_or_else(|e| e.into_inner());
        guard
            .values()
            .any(|m| m.get(key).is_some_and(|e| valid(*e, now)))
    }

    /// Whether this node knows `keyring`.
    pub fn has_keyring(&self, keyring: &PublicKey) -> bool {
        self.keyrings
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(keyring)
    }

    pub(crate) fn count_rejection(&self) {
        self.rejections.fetch_add(1, Ordering::Relaxed);
    }

    /// Handshakes refused because the peer was not a member.
    pub fn rejections(&self) -> u64 {
        self.rejections.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expired_and_foreign_members_are_not_members() {
        let m = Members::default();
        let (k1, k2) = ([1u8; 32], [2u8; 32]);
        m.set(k1, [([10; 32], 0), ([11; 32], 1), ([12; 32], u64::MAX)]);
        assert!(m.is_member(&k1, &[10; 32]));
        assert!(!m.is_member(&k1, &[11; 32]));
        assert!(m.is_member(&k1, &[12; 32]));
        assert!(!m.is_member(&k2, &[10; 32]));
        assert!(m.is_member_of_any(&[10; 32]));
        m.remove(&k1);
        assert!(!m.is_member_of_any(&[10; 32]));
    }
}
