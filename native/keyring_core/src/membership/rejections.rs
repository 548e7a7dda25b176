//! Entries a ring refused recently, so a peer that offers one again costs a
//! hash lookup, not a second verification.

use std::collections::{HashMap, VecDeque};

use super::entry::EntryHash;
use super::MembershipError;

const RECENT_REJECTED: usize = 1024;

/// Recently refused entries, so a peer re-sending one costs a lookup.
#[derive(Debug, Clone, Default)]
pub(super) struct RecentRejections {
    reasons: HashMap<EntryHash, MembershipError>,
    order: VecDeque<EntryHash>,
}

impl RecentRejections {
    pub(super) fn get(&self, hash: &EntryHash) -> Option<MembershipError> {
        self.reasons.get(hash).cloned()
    }

    pub(super) fn insert(&mut self, hash: EntryHash, error: MembershipError) {
        if self.order.len() >= RECENT_REJECTED {
            if let Some(old) = self.order.pop_front() {
                self.reasons.remove(&old);
            }
        }
        if self.reasons.insert(hash, error).is_none() {
            self.order.push_back(hash);
        }
    }
}
