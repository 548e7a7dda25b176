//! Entries whose parent has not arrived yet: held unverified, bounded, and
//! handed back when the parent is added. The oldest is dropped when full (a
//! peer will offer it again with its parent). Copies of one body with
//! different signature bytes are held apart: an entry's hash does not cover
//! its signature, so a forged copy offered first must not shadow the real one.

use std::collections::{HashMap, HashSet, VecDeque};

use crate::identity::SIGNATURE_LEN;

use super::entry::{Entry, EntryHash};

/// Most entries held while their parent is unknown.
pub const MAX_PENDING: usize = 1024;

type Id = (EntryHash, [u8; SIGNATURE_LEN]);

fn id(entry: &Entry) -> Id {
    (entry.hash(), *entry.signature())
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Pending {
    by_parent: HashMap<EntryHash, Vec<Entry>>,
    held: HashSet<Id>,
    /// Arrival order, for eviction; may name entries already handed back.
    order: VecDeque<(Id, EntryHash)>,
}

impl Pending {
    pub(crate) fn len(&self) -> usize {
        self.held.len()
    }

    /// Whether this exact entry (body and signature) is held.
    pub(crate) fn contains(&self, entry: &Entry) -> bool {
        self.held.contains(&id(entry))
    }

    /// Holds `entry` until its parent arrives (the caller checked it is new).
    pub(crate) fn insert(&mut self, entry: Entry) {
        while self.held.len() >= MAX_PENDING {
            self.evict_oldest();
        }
        let parent = entry.body.prev_hash;
        self.held.insert(id(&entry));
        self.order.push_back((id(&entry), parent));
        self.by_parent.entry(parent).or_default().push(entry);
        if self.order.len() > 2 * MAX_PENDING {
            let held = &self.held;
            self.order.retain(|(i, _)| held.contains(i));
        }
    }

    /// The held entries whose parent is `parent`.
    pub(crate) fn take_children(&mut self, parent: &EntryHash) -> Vec<Entry> {
        let children = self.by_parent.remove(parent).unwrap_or_default();
        for c in &children {
            self.held.remove(&id(c));
        }
        children
    }

    /// The depth of some held entry (to name one in an error).
    pub(crate) fn any_seq(&self) -> Option<u64> {
        self.by_parent.values().flatten().map(|e| e.body.seq).min()
    }

    fn evict_oldest(&mut self) {
        while let Some((oldest, parent)) = self.order.pop_front() {
            if self.held.remove(&oldest) {
                if let Some(list) = self.by_parent.get_mut(&parent) {
                    list.retain(|e| id(e) != oldest);
                    if list.is_empty() {
                        self.by_parent.remove(&parent);
                    }
                }
                return;
            }
        }
    }
}
