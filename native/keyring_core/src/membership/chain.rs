//! The state along the effective chain, versioned by depth: every slot keeps
//! the list of values the chain wrote to it, so the state at any position of
//! the chain is a binary search away (a competing branch is judged against the
//! state at its fork point without replaying anything). Extending or
//! shortening the chain by one entry costs O(writes).

use std::collections::HashMap;

use super::entry::{Body, Op, PublicKey};
use super::rules::{removal, Slot, Value, View, Writes};

#[derive(Debug, Clone, Default)]
pub(crate) struct ChainIndex {
    slots: HashMap<Slot, Vec<(u64, Option<Value>)>>,
    /// Every key that ever held an admin record on the chain.
    admin_keys: HashMap<PublicKey, usize>,
    /// Depths at which each key signed.
    signed: HashMap<PublicKey, Vec<u64>>,
    /// For each removed key: `(depth, remover)` (see [`removal`]).
    removals: HashMap<PublicKey, Vec<(u64, PublicKey)>>,
    /// For each invite issuer: timestamps of the joins that spent its invites.
    joins: HashMap<PublicKey, Vec<u64>>,
}

impl ChainIndex {
    /// Records `body`, at depth `body.seq`, the next position of the chain.
    pub(crate) fn push(&mut self, body: &Body, writes: &Writes) {
        let seq = body.seq;
        for (slot, value) in writes {
            if let Slot::Admin(k) = slot {
                *self.admin_keys.entry(*k).or_default() += 1;
            }
            self.slots
                .entry(slot.clone())
                .or_default()
                .push((seq, value.clone()));
        }
        self.signed.entry(body.signer).or_default().push(seq);
        if let Some((removed, remover)) = removal(body) {
            self.removals
                .entry(removed)
                .or_default()
                .push((seq, remover));
        }
        if let Op::Join { issuer, .. } = &body.op {
            self.joins
                .entry(*issuer)
                .or_default()
                .push(body.timestamp_ms);
        }
    }

    /// Undoes [`ChainIndex::push`] of the chain's last entry.
    pub(crate) fn pop(&mut self, body: &Body, writes: &Writes) {
        for (slot, _) in writes.iter().rev() {
            if let Slot::Admin(k) = slot {
                pop_count(&mut self.admin_keys, k);
            }
            pop_list(&mut self.slots, slot);
        }
        pop_list(&mut self.signed, &body.signer);
        if let Some((removed, _)) = removal(body) {
            pop_list(&mut self.removals, &removed);
        }
        if let Op::Join { issuer, .. } = &body.op {
            pop_list(&mut self.joins, issuer);
        }
    }

    /// The state after the chain entry at depth `seq`.
    pub(crate) fn at(&self, seq: u64) -> ChainView<'_> {
        ChainView { index: self, seq }
    }

    /// Keys that held an admin record somewhere on the chain.
    pub(crate) fn admin_keys(&self) -> impl Iterator<Item = &PublicKey> {
        self.admin_keys.keys()
    }

    /// Every slot with its latest value (the state at the head).
    pub(crate) fn latest(&self) -> impl Iterator<Item = (&Slot, &Value)> {
        self.slots
            .iter()
            .filter_map(|(slot, versions)| Some((slot, versions.last()?.1.as_ref()?)))
    }

    /// Keys that signed an entry deeper than `after`.
    pub(crate) fn signers_after(&self, after: u64) -> impl Iterator<Item = &PublicKey> {
        self.signed
            .iter()
            .filter(move |(_, seqs)| seqs.last().is_some_and(|s| *s > after))
            .map(|(k, _)| k)
    }

    pub(crate) fn signed_after(&self, key: &PublicKey, after: u64) -> bool {
        self.signed
            .get(key)
            .and_then(|s| s.last())
            .is_some_and(|s| *s > after)
    }

    /// Who removed `key` deeper than `after`.
    pub(crate) fn removers_after(
        &self,
        key: &PublicKey,
        after: u64,
    ) -> impl Iterator<Item = &PublicKey> {
        self.removals
            .get(key)
            .into_iter()
            .flatten()
            .filter(move |(s, _)| *s > after)
            .map(|(_, r)| r)
    }

    /// Joins spent on `issuer`'s invites dated in `[from_ms, ∞)`.
    pub(crate) fn joins_since(&self, issuer: &PublicKey, from_ms: u64) -> usize {
        let Some(ts) = self.joins.get(issuer) else {
            return 0;
        };
        // Timestamps never decrease along a chain.
        ts.len() - ts.partition_point(|t| *t < from_ms)
    }
}

fn pop_list<K: std::hash::Hash + Eq, T>(map: &mut HashMap<K, Vec<T>>, key: &K) {
    if let Some(list) = map.get_mut(key) {
        list.pop();
        if list.is_empty() {
            map.remove(key);
        }
    }
}

fn pop_count<K: std::hash::Hash + Eq>(map: &mut HashMap<K, usize>, key: &K) {
    if let Some(n) = map.get_mut(key) {
        *n -= 1;
        if *n == 0 {
            map.remove(key);
        }
    }
}

/// The chain's state after depth `seq`.
#[derive(Clone, Copy)]
pub(crate) struct ChainView<'a> {
    index: &'a ChainIndex,
    seq: u64,
}

impl View for ChainView<'_> {
    fn get(&self, slot: &Slot) -> Option<&Value> {
        let versions = self.index.slots.get(slot)?;
        let i = versions.partition_point(|(s, _)| *s <= self.seq);
        versions.get(i.checked_sub(1)?)?.1.as_ref()
    }
}
