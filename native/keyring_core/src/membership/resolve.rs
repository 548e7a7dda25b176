//! Fork resolution on a [`Ring`]: after new entries, the fork points on the
//! effective chain are re-judged top down ([`super::fork`]); where the rule
//! picks another child, the chain switches to it (undoing and redoing the
//! chain index entry by entry, nothing re-verified).

use std::collections::HashSet;
use std::sync::Arc;

use super::chain::ChainIndex;
use super::entry::{Body, EntryHash, PublicKey};
use super::fork::{self, Basis, Branch, Facts};
use super::ingest::Switch;
use super::ring::{NodeId, Ring};
use super::rules::{self, Overlay, Slot, View};

impl Ring {
    /// Whether adding `body` under `parent` may change a fork choice. Not when
    /// `parent` had no child, has the same signer and `body` removes no one:
    /// then every fork point above sees the same signers and removals.
    pub(super) fn decisive(&self, parent: NodeId, body: &Body) -> bool {
        let p = &self.nodes[parent as usize];
        !p.children.is_empty()
            || p.entry.body.signer != body.signer
            || rules::removal(body).is_some()
    }

    /// Re-judges the fork points on the chain, top down, and switches to the
    /// branch the rule picks at the first one where it differs.
    pub(super) fn resolve(&mut self) -> Option<Switch> {
        let mut points: Vec<(u64, NodeId)> = self
            .forks
            .iter()
            .filter(|n| self.nodes[**n as usize].on_chain)
            .map(|n| (self.nodes[*n as usize].entry.body.seq, *n))
            .collect();
        points.sort_unstable();
        for (seq, p) in points {
            let best = self.choose(p);
            if best != self.chain[seq as usize + 1] {
                let tail = self.descend(best);
                return Some(self.switch(seq, tail));
            }
        }
        None
    }

    /// The path from `start` down to a leaf, choosing at every fork point.
    fn descend(&mut self, start: NodeId) -> Vec<NodeId> {
        let mut tail = vec![start];
        let mut n = start;
        loop {
            let children = &self.nodes[n as usize].children;
            n = match children.len() {
                0 => return tail,
                1 => children[0],
                _ => self.choose(n),
            };
            tail.push(n);
        }
    }

    fn switch(&mut self, at: u64, tail: Vec<NodeId>) -> Switch {
        let mut abandoned = Vec::new();
        while self.chain.len() as u64 > at + 1 {
            let id = self.chain.pop().expect("longer than the fork point");
            let n = &mut self.nodes[id as usize];
            self.index.pop(&n.entry.body, &n.writes);
            n.on_chain = false;
            self.side.insert(id);
            abandoned.push(n.entry.clone());
        }
        abandoned.reverse();
        for id in tail {
            self.side.remove(&id);
            let n = &mut self.nodes[id as usize];
            n.on_chain = true;
            self.index.push(&n.entry.body, &n.writes);
            self.chain.push(id);
        }
        // Parents have smaller ids than their children.
        let side: Vec<NodeId> = self.side.iter().copied().collect();
        for id in side {
            let p = &self.nodes[self.nodes[id as usize].parent as usize];
            let attach = if p.on_chain {
                p.entry.body.seq
            } else {
                p.attach
            };
            self.nodes[id as usize].attach = attach;
        }
        self.overlays.clear();
        Switch { at, abandoned }
    }

    /// The child of fork point `p` the rule picks.
    fn choose(&mut self, p: NodeId) -> NodeId {
        let basis = self.basis(p);
        let after = self.nodes[p as usize].entry.body.seq;
        let children = self.nodes[p as usize].children.clone();
        let facts: Vec<Box<dyn Branch + '_>> = children
            .iter()
            .map(|c| -> Box<dyn Branch + '_> {
                if self.nodes[*c as usize].on_chain {
                    Box::new(ChainBranch {
                        index: &self.index,
                        after,
                        extra: self.facts_of(
                            self.side
                                .iter()
                                .copied()
                                .filter(|s| self.nodes[*s as usize].attach > after),
                        ),
                    })
                } else {
                    Box::new(self.facts_of(self.subtree(*c).into_iter()))
                }
            })
            .collect();
        let branches: Vec<(EntryHash, &dyn Branch)> = children
            .iter()
            .zip(&facts)
            .map(|(c, f)| (self.nodes[*c as usize].entry.hash(), f.as_ref()))
            .collect();
        children[fork::choose(&branches, &basis)]
    }

    fn facts_of(&self, nodes: impl Iterator<Item = NodeId>) -> Facts {
        let mut facts = Facts::default();
        for n in nodes {
            let body = &self.nodes[n as usize].entry.body;
            facts.add(body.signer, rules::removal(body));
        }
        facts
    }

    fn subtree(&self, root: NodeId) -> Vec<NodeId> {
        let mut out = vec![root];
        let mut i = 0;
        while i < out.len() {
            out.extend(self.nodes[out[i] as usize].children.iter().copied());
            i += 1;
        }
        out
    }

    /// The admins and root at fork point `p` (fixed by `p`'s ancestry).
    fn basis(&mut self, p: NodeId) -> Arc<Basis> {
        if let Some(b) = self.bases.get(&p) {
            return b.clone();
        }
        let ts = self.nodes[p as usize].entry.body.timestamp_ms;
        let basis = if self.nodes[p as usize].on_chain {
            basis_in(
                &self.index.at(self.nodes[p as usize].entry.body.seq),
                ts,
                self.index.admin_keys().copied(),
            )
        } else {
            let (at, delta) = self.overlay_of(p);
            let extra: Vec<PublicKey> = delta
                .keys()
                .filter_map(|s| match s {
                    Slot::Admin(k) => Some(*k),
                    _ => None,
                })
                .collect();
            let view = Overlay {
                base: self.index.at(at),
                delta: &delta,
            };
            let b = basis_in(&view, ts, self.index.admin_keys().copied().chain(extra));
            self.cache_overlay(p, at, delta);
            b
        };
        let basis = Arc::new(basis);
        self.bases.insert(p, basis.clone());
        basis
    }
}

fn basis_in(view: &impl View, at_ms: u64, candidates: impl Iterator<Item = PublicKey>) -> Basis {
    let admins: HashSet<PublicKey> = candidates.filter(|k| view.admin_valid(k, at_ms)).collect();
    Basis {
        admins,
        root: view.root(),
    }
}

/// The branch under the chain's child of a fork point: the chain below it
/// (read from the index) plus the side branches hanging off that part.
struct ChainBranch<'a> {
    index: &'a ChainIndex,
    after: u64,
    extra: Facts,
}

impl Branch for ChainBranch<'_> {
    fn signers(&self) -> Vec<PublicKey> {
        let mut out: Vec<PublicKey> = self.index.signers_after(self.after).copied().collect();
        out.extend(
            self.extra
                .signers()
                .into_iter()
                .filter(|k| !self.index.signed_after(k, self.after)),
        );
        out
    }

    fn signed(&self, key: &PublicKey) -> bool {
        self.index.signed_after(key, self.after) || self.extra.signed(key)
    }

    fn removers(&self, key: &PublicKey) -> Vec<PublicKey> {
        let mut out: Vec<PublicKey> = self
            .index
            .removers_after(key, self.after)
            .copied()
            .collect();
        out.extend(self.extra.removers(key));
        out
    }
}
