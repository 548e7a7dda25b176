//! The state after an entry off the effective chain: the chain's state at the
//! branch's attach point plus the writes along the branch (a delta), cached
//! for the few branch tips being extended so a branch grows in O(1) per entry.

use std::collections::HashMap;

use super::ring::{NodeId, Ring};
use super::rules::{Slot, Value};

/// Branch tips whose state is cached.
pub(super) const OVERLAY_CACHE: usize = 8;

/// Writes along a branch, over the chain's state at its attach point.
pub(super) type Delta = HashMap<Slot, Option<Value>>;

impl Ring {
    /// The state after side node `id` as `(attach depth, delta over the
    /// chain at that depth)`: from the cache, or replayed from its writes.
    pub(super) fn overlay_of(&mut self, id: NodeId) -> (u64, Delta) {
        if let Some(i) = self.overlays.iter().position(|(n, _, _)| *n == id) {
            if let Some((_, at, delta)) = self.overlays.remove(i) {
                return (at, delta);
            }
        }
        let mut path = Vec::new();
        let mut n = id;
        while !self.nodes[n as usize].on_chain {
            path.push(n);
            n = self.nodes[n as usize].parent;
        }
        let mut delta = Delta::new();
        for n in path.into_iter().rev() {
            delta.extend(self.nodes[n as usize].writes.iter().cloned());
        }
        (self.nodes[id as usize].attach, delta)
    }

    pub(super) fn cache_overlay(&mut self, id: NodeId, at: u64, delta: Delta) {
        if self.overlays.len() >= OVERLAY_CACHE {
            self.overlays.pop_front();
        }
        self.overlays.push_back((id, at, delta));
    }
}
