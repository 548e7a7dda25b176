//! What anti-entropy needs: a ring's heads, and the entries a peer that holds
//! some heads lacks.

use std::collections::HashSet;

use super::entry::{Entry, EntryHash};
use super::ring::{NodeId, Ring};

impl Ring {
    /// The leaves of the tree: the effective head first, then the heads of
    /// competing branches. Two rings with the same heads hold the same entries.
    pub fn heads(&self) -> Vec<EntryHash> {
        let head = self.head_id();
        let mut out = vec![self.nodes[head as usize].entry.hash()];
        out.extend(
            self.side
                .iter()
                .filter(|id| self.nodes[**id as usize].children.is_empty())
                .map(|id| self.nodes[*id as usize].entry.hash()),
        );
        out
    }

    /// What to tell a peer so it can answer what we lack
    /// ([`Ring::entries_since`]): every head, then hashes along the effective
    /// chain at depths 1, 2, ... 10 below the head and exponentially further
    /// apart down to the genesis (a locator: `O(log n)` hashes, so a peer
    /// finds the deepest entry we share even when our head is new to it).
    pub fn locator(&self) -> Vec<EntryHash> {
        let mut out = self.heads();
        let top = self.chain.len() - 1;
        let (mut depth, mut step) = (top, 1);
        while depth > 0 {
            depth = depth.saturating_sub(step);
            out.push(self.nodes[self.chain[depth] as usize].entry.hash());
            if top - depth >= 10 {
                step *= 2;
            }
        }
        out
    }

    /// Whether the entry `hash` is in the tree (verified and linked).
    pub fn contains(&self, hash: &EntryHash) -> bool {
        self.by_hash.contains_key(hash)
    }

    /// Every entry, parents before children (for persistence and full pushes).
    pub fn entries(&self) -> Vec<&Entry> {
        self.entries_since(&[])
    }

    /// The entries a peer that holds the entries named in `known` (and their
    /// ancestors) lacks, parents before children: pass what the peer's
    /// [`Ring::locator`] said. Hashes we do not hold are ignored.
    pub fn entries_since(&self, known: &[EntryHash]) -> Vec<&Entry> {
        let mut seen: HashSet<NodeId> = HashSet::new();
        let mut cut: Option<u64> = None;
        for hash in known {
            let Some(&id) = self.by_hash.get(hash) else {
                continue;
            };
            let mut n = id;
            let mut walked_to_chain = true;
            while !self.nodes[n as usize].on_chain {
                if !seen.insert(n) {
                    walked_to_chain = false;
                    break;
                }
                n = self.nodes[n as usize].parent;
            }
            if walked_to_chain {
                let seq = self.nodes[n as usize].entry.body.seq;
                cut = Some(cut.map_or(seq, |c| c.max(seq)));
            }
        }
        let from = cut.map_or(0, |c| c as usize + 1);
        let mut out: Vec<&Entry> = self.chain[from.min(self.chain.len())..]
            .iter()
            .chain(self.side.iter().filter(|id| !seen.contains(id)))
            .map(|id| &self.nodes[*id as usize].entry)
            .collect();
        out.sort_by_key(|e| (e.body.seq, e.hash()));
        out
    }
}
