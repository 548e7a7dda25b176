//! [`Ring`]: a keyring's verified entry tree, the effective chain through it
//! and the state that chain leads to, extended one entry at a time.
//!
//! Each entry is judged once, when its parent is known: against the state
//! after its parent (the versioned chain index, or an overlay for a competing
//! branch), then its signature is checked. Known entries cost one hash lookup.
//! After each batch, fork points on the chain are re-judged ([`super::fork`])
//! and the chain switches branch if the rule says so.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::Arc;

use crate::identity::KeyPair;

use super::chain::ChainIndex;
use super::entry::{Body, Entry, EntryHash, Op, PublicKey};
use super::fork::{self, Basis, Branch, Facts};
use super::pending::Pending;
use super::rules::{self, Overlay, Slot, Value, View, Writes};
use super::MembershipError;

pub(super) type NodeId = u32;
const NO_PARENT: NodeId = NodeId::MAX;

/// Most entries a ring holds off its effective chain (competing branches);
/// a new one beyond it is refused with [`MembershipError::TooManyForks`].
pub const MAX_SIDE_ENTRIES: usize = 16_384;
/// How far ahead of our clock an entry may be dated.
pub const MAX_CLOCK_SKEW_MS: u64 = 5 * 60 * 1000;
/// Most refusal reasons an [`IngestReport`] lists (it counts them all).
pub const MAX_REPORTED_ERRORS: usize = 16;
const RECENT_REJECTED: usize = 1024;
const OVERLAY_CACHE: usize = 8;

type Delta = HashMap<Slot, Option<Value>>;

pub(super) struct Node {
    pub(super) entry: Entry,
    pub(super) parent: NodeId,
    pub(super) children: Vec<NodeId>,
    pub(super) on_chain: bool,
    /// Off the chain: the depth of the nearest ancestor on the chain.
    pub(super) attach: u64,
    pub(super) writes: Writes,
}

/// A keyring's verified membership log: a tree of entries, the effective
/// chain the fork rule picks through it, and the state at its head.
pub struct Ring {
    pub(super) keyring_id: PublicKey,
    pub(super) name: String,
    pub(super) nodes: Vec<Node>,
    pub(super) by_hash: HashMap<EntryHash, NodeId>,
    /// The effective chain: `chain[seq]`.
    pub(super) chain: Vec<NodeId>,
    pub(super) index: ChainIndex,
    /// Nodes off the chain, in insertion (so topological) order.
    pub(super) side: BTreeSet<NodeId>,
    /// Nodes with two or more children.
    pub(super) forks: BTreeSet<NodeId>,
    pub(super) pending: Pending,
    rejected: RecentRejections,
    overlays: VecDeque<(NodeId, u64, Delta)>,
    bases: HashMap<NodeId, Arc<Basis>>,
    pub(super) verified: u64,
}

/// What one [`Ring::ingest`] did.
#[derive(Debug, Default)]
pub struct IngestReport {
    /// Entries verified and added to the tree.
    pub added: usize,
    /// Entries the ring already held (or held pending): no verification.
    pub duplicates: usize,
    /// Entries now held until their parent arrives.
    pub held: usize,
    /// Entries refused.
    pub rejected: usize,
    /// Why, for the first [`MAX_REPORTED_ERRORS`] refused entries.
    pub errors: Vec<MembershipError>,
    /// Fork points (parent hashes) that gained a branch.
    pub forks: Vec<EntryHash>,
    /// Set when the effective chain changed branch.
    pub switch: Option<Switch>,
}

impl IngestReport {
    fn reject(&mut self, error: MembershipError) {
        self.rejected += 1;
        if self.errors.len() < MAX_REPORTED_ERRORS {
            self.errors.push(error);
        }
    }
}

/// The effective chain moved to another branch.
#[derive(Debug, Clone)]
pub struct Switch {
    /// Depth of the fork point.
    pub at: u64,
    /// Entries that were on the chain and no longer are (oldest first); their
    /// authors may append their ops again on the new chain.
    pub abandoned: Vec<Entry>,
}

#[derive(Clone, Copy)]
struct IngestRules {
    /// Refuse entries dated more than the skew after this (`None`: trusted input).
    now_ms: Option<u64>,
    /// Apply [`MAX_SIDE_ENTRIES`].
    cap_side: bool,
}

impl Ring {
    /// Starts a keyring: a genesis entry signed by `root`, naming `admins`
    /// (besides the root) as its first admins.
    pub fn create(
        root: &KeyPair,
        name: &str,
        mut admins: Vec<PublicKey>,
        now_ms: u64,
    ) -> Result<Self, MembershipError> {
        admins.sort();
        admins.dedup();
        let root_key = root.public_key();
        admins.retain(|a| *a != root_key);
        let body = Body {
            keyring_id: root_key,
            seq: 0,
            prev_hash: [0; 32],
            timestamp_ms: now_ms,
            signer: root_key,
            op: Op::Genesis {
                name: name.to_owned(),
                admins,
            },
        };
        Ok(Self::new(Entry::sign(body, root)?))
    }

    /// Verifies `genesis` and starts a ring from it.
    pub fn from_genesis(genesis: Entry) -> Result<Self, MembershipError> {
        let b = &genesis.body;
        if b.seq != 0
            || b.prev_hash != [0; 32]
            || b.signer != b.keyring_id
            || !matches!(b.op, Op::Genesis { .. })
        {
            return Err(MembershipError::NoGenesis);
        }
        if !genesis.signature_valid() {
            return Err(MembershipError::BadSignature { seq: 0 });
        }
        let mut ring = Self::new(genesis);
        ring.verified = 1;
        Ok(ring)
    }

    fn new(genesis: Entry) -> Self {
        let name = match &genesis.body.op {
            Op::Genesis { name, .. } => name.clone(),
            _ => String::new(),
        };
        let writes = rules::genesis_writes(&genesis.body);
        let mut index = ChainIndex::default();
        index.push(&genesis.body, &writes);
        let keyring_id = genesis.body.keyring_id;
        Self {
            keyring_id,
            name,
            by_hash: HashMap::from([(genesis.hash(), 0)]),
            nodes: vec![Node {
                entry: genesis,
                parent: NO_PARENT,
                children: Vec::new(),
                on_chain: true,
                attach: 0,
                writes,
            }],
            chain: vec![0],
            index,
            side: BTreeSet::new(),
            forks: BTreeSet::new(),
            pending: Pending::default(),
            rejected: RecentRejections::default(),
            overlays: VecDeque::new(),
            bases: HashMap::new(),
            verified: 0,
        }
    }

    /// Decodes and verifies a stored ring (entries in any order, each
    /// verified once). Every entry must be valid and connected; the clock and
    /// the fork cap are not applied, since these entries were accepted before.
    pub fn open<'a, I>(entries: I) -> Result<Self, MembershipError>
    where
        I: IntoIterator<Item = &'a [u8]>,
    {
        let mut decoded = entries
            .into_iter()
            .map(Entry::decode)
            .collect::<Result<Vec<_>, _>>()?;
        decoded.sort_by_key(|e| e.body.seq);
        let mut iter = decoded.into_iter();
        let mut ring = Self::from_genesis(iter.next().ok_or(MembershipError::NoGenesis)?)?;
        let rules = IngestRules {
            now_ms: None,
            cap_side: false,
        };
        let report = ring.ingest_entries(iter, rules);
        if let Some(error) = report.errors.into_iter().next() {
            return Err(error);
        }
        if let Some(seq) = ring.pending.any_seq() {
            return Err(MembershipError::BrokenChain { seq });
        }
        Ok(ring)
    }

    /// Adds the entries this ring does not hold yet: each new entry whose
    /// parent is known is judged and its signature checked, once; entries
    /// already held cost a hash lookup; entries whose parent is unknown are
    /// held (bounded) until it arrives. Refused entries are counted and named
    /// in the report; the others are kept. Then forks are resolved.
    pub fn ingest<'a, I>(&mut self, entries: I, now_ms: u64) -> IngestReport
    where
        I: IntoIterator<Item = &'a [u8]>,
    {
        let mut report = IngestReport::default();
        let mut decoded = Vec::new();
        for bytes in entries {
            match Entry::decode(bytes) {
                Ok(e) => decoded.push(e),
                Err(e) => report.reject(e),
            }
        }
        let rules = IngestRules {
            now_ms: Some(now_ms),
            cap_side: true,
        };
        self.ingest_into(decoded, rules, &mut report);
        report
    }

    fn ingest_entries(
        &mut self,
        entries: impl IntoIterator<Item = Entry>,
        rules: IngestRules,
    ) -> IngestReport {
        let mut report = IngestReport::default();
        self.ingest_into(entries, rules, &mut report);
        report
    }

    fn ingest_into(
        &mut self,
        entries: impl IntoIterator<Item = Entry>,
        rules: IngestRules,
        report: &mut IngestReport,
    ) {
        for entry in entries {
            self.offer(entry, rules, report);
        }
        if report.added > 0 {
            report.switch = self.resolve();
        }
    }

    fn offer(&mut self, entry: Entry, rules: IngestRules, report: &mut IngestReport) {
        let hash = entry.hash();
        if self.by_hash.contains_key(&hash) || self.pending.contains(&hash) {
            report.duplicates += 1;
            return;
        }
        if let Some(error) = self.rejected.get(&hash) {
            return report.reject(error);
        }
        let b = &entry.body;
        let seq = b.seq;
        if b.keyring_id != self.keyring_id {
            return report.reject(MembershipError::WrongKeyring { seq });
        }
        if rules
            .now_ms
            .is_some_and(|now| b.timestamp_ms > now.saturating_add(MAX_CLOCK_SKEW_MS))
        {
            return report.reject(MembershipError::FromTheFuture { seq });
        }
        if seq == 0 {
            let error = MembershipError::InvalidOperation {
                seq,
                why: "a second genesis entry",
            };
            self.rejected.insert(hash, error.clone());
            return report.reject(error);
        }
        let Some(&parent) = self.by_hash.get(&b.prev_hash) else {
            self.pending.insert(entry);
            report.held += 1;
            return;
        };
        let mut work = vec![(entry, parent)];
        while let Some((entry, parent)) = work.pop() {
            let hash = entry.hash();
            match self.attach(entry, parent, rules, report) {
                Ok(id) => {
                    report.added += 1;
                    work.extend(
                        self.pending
                            .take_children(&hash)
                            .into_iter()
                            .map(|c| (c, id)),
                    );
                }
                Err(error) => {
                    if !matches!(error, MembershipError::TooManyForks) {
                        self.rejected.insert(hash, error.clone());
                    }
                    // Held descendants can never attach now.
                    let mut orphans = self.pending.take_children(&hash);
                    while let Some(o) = orphans.pop() {
                        orphans.extend(self.pending.take_children(&o.hash()));
                    }
                    report.reject(error);
                }
            }
        }
    }

    /// Judges `entry` (a child of `parent`), checks its signature, adds it.
    fn attach(
        &mut self,
        entry: Entry,
        parent: NodeId,
        rules: IngestRules,
        report: &mut IngestReport,
    ) -> Result<NodeId, MembershipError> {
        let extends_chain = self.head_id() == parent;
        if !extends_chain && rules.cap_side && self.side.len() >= MAX_SIDE_ENTRIES {
            return Err(MembershipError::TooManyForks);
        }
        let (writes, side_state) = self.judge(parent, &entry.body)?;
        self.verified += 1;
        if !entry.signature_valid() {
            if let Some((at, delta)) = side_state {
                self.cache_overlay(parent, at, delta);
            }
            return Err(MembershipError::BadSignature {
                seq: entry.body.seq,
            });
        }
        if !self.nodes[parent as usize].children.is_empty() {
            report.forks.push(self.nodes[parent as usize].entry.hash());
        }
        let id = self.insert(entry, parent, writes.clone(), extends_chain);
        if let Some((at, mut delta)) = side_state {
            delta.extend(writes);
            self.cache_overlay(id, at, delta);
        }
        Ok(id)
    }

    /// The writes of `body` as a child of `parent`; for a child off the
    /// chain, also the overlay it was judged on (to cache for its children).
    #[allow(clippy::type_complexity)]
    fn judge(
        &mut self,
        parent: NodeId,
        body: &Body,
    ) -> Result<(Writes, Option<(u64, Delta)>), MembershipError> {
        let p = &self.nodes[parent as usize];
        if p.on_chain {
            let seq = p.entry.body.seq;
            let writes = rules::apply(&self.index.at(seq), &p.entry.body, body)?;
            let side = (parent != self.head_id()).then(|| (seq, Delta::new()));
            return Ok((writes, side));
        }
        let (at, delta) = self.overlay_of(parent);
        let p = &self.nodes[parent as usize];
        let view = Overlay {
            base: self.index.at(at),
            delta: &delta,
        };
        match rules::apply(&view, &p.entry.body, body) {
            Ok(writes) => Ok((writes, Some((at, delta)))),
            Err(e) => {
                self.cache_overlay(parent, at, delta);
                Err(e)
            }
        }
    }

    /// The state after side node `id` as `(attach depth, delta over the
    /// chain at that depth)`: from the cache, or replayed from its writes.
    fn overlay_of(&mut self, id: NodeId) -> (u64, Delta) {
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

    fn cache_overlay(&mut self, id: NodeId, at: u64, delta: Delta) {
        if self.overlays.len() >= OVERLAY_CACHE {
            self.overlays.pop_front();
        }
        self.overlays.push_back((id, at, delta));
    }

    fn insert(&mut self, entry: Entry, parent: NodeId, writes: Writes, on_chain: bool) -> NodeId {
        let id = self.nodes.len() as NodeId;
        let p = &self.nodes[parent as usize];
        let attach = if p.on_chain {
            p.entry.body.seq
        } else {
            p.attach
        };
        self.by_hash.insert(entry.hash(), id);
        if on_chain {
            self.index.push(&entry.body, &writes);
            self.chain.push(id);
        } else {
            self.side.insert(id);
        }
        self.nodes.push(Node {
            entry,
            parent,
            children: Vec::new(),
            on_chain,
            attach,
            writes,
        });
        let children = &mut self.nodes[parent as usize].children;
        children.push(id);
        if children.len() == 2 {
            self.forks.insert(parent);
        }
        id
    }

    pub(super) fn head_id(&self) -> NodeId {
        *self.chain.last().expect("a ring always has its genesis")
    }

    pub(super) fn head(&self) -> &Entry {
        &self.nodes[self.head_id() as usize].entry
    }

    /// Signs `op` with `signer` on top of the effective chain and adds it
    /// (no signature verification: we just made it). The signer must be an
    /// admin in the current view (not refused by a known branch).
    pub fn append(
        &mut self,
        signer: &KeyPair,
        op: Op,
        now_ms: u64,
    ) -> Result<Entry, MembershipError> {
        let head = self.head().body.clone();
        let seq = head.seq + 1;
        let (refused, demoted) = self.refusals();
        let key = signer.public_key();
        if refused.contains(&key) || demoted.contains(&key) {
            return Err(MembershipError::NotAnAdmin { seq });
        }
        let added = match &op {
            Op::AddMember { key, .. } | Op::AddAdmin { key, .. } | Op::Join { key, .. } => {
                Some(key)
            }
            Op::RotateRoot { new_root } => Some(new_root),
            _ => None,
        };
        if added.is_some_and(|k| refused.contains(k)) {
            return Err(MembershipError::Revoked { seq });
        }
        let body = Body {
            keyring_id: self.keyring_id,
            seq,
            prev_hash: self.head().hash(),
            timestamp_ms: now_ms.max(head.timestamp_ms),
            signer: key,
            op,
        };
        let writes = rules::apply(&self.index.at(head.seq), &head, &body)?;
        let entry = Entry::sign(body, signer)?;
        let parent = self.head_id();
        self.insert(entry.clone(), parent, writes, true);
        self.resolve();
        Ok(entry)
    }

    /// Re-judges the fork points on the chain, top down, and switches to the
    /// branch the rule picks at the first one where it differs.
    fn resolve(&mut self) -> Option<Switch> {
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

    /// Entries held while their parent is unknown.
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// Entries held off the effective chain (competing branches).
    pub fn side_len(&self) -> usize {
        self.side.len()
    }

    /// Signature verifications this ring has done.
    pub fn verifications(&self) -> u64 {
        self.verified
    }

    /// The keyring id (the genesis root key).
    pub fn keyring_id(&self) -> PublicKey {
        self.keyring_id
    }

    /// The keyring's name from the genesis entry.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Hash of the effective chain's last entry.
    pub fn head_hash(&self) -> EntryHash {
        self.head().hash()
    }

    /// Entries on the effective chain.
    pub fn len(&self) -> u64 {
        self.chain.len() as u64
    }

    /// Never true: a ring always holds its genesis.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The effective chain, genesis first.
    pub fn chain(&self) -> impl Iterator<Item = &Entry> {
        self.chain.iter().map(|id| &self.nodes[*id as usize].entry)
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

/// Recently refused entries, so a peer re-sending one costs a lookup.
#[derive(Default)]
struct RecentRejections {
    reasons: HashMap<EntryHash, MembershipError>,
    order: VecDeque<EntryHash>,
}

impl RecentRejections {
    fn get(&self, hash: &EntryHash) -> Option<MembershipError> {
        self.reasons.get(hash).cloned()
    }

    fn insert(&mut self, hash: EntryHash, error: MembershipError) {
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
