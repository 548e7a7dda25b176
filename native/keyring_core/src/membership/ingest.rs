//! Ingesting entries into a [`Ring`]: each new entry whose parent is held is
//! judged against the state after its parent (the versioned chain index, or
//! an overlay for a competing branch), then its signature is checked: once.
//! Entries already held cost a hash lookup; entries whose parent is missing
//! wait in [`super::pending`]; refused ones are remembered for a while. After
//! a batch, forks are resolved ([`super::resolve`]).

use super::entry::{Body, Entry, EntryHash};
use super::ring::{Node, NodeId, Ring, MAX_CLOCK_SKEW_MS, MAX_REPORTED_ERRORS, MAX_SIDE_ENTRIES};
use super::rules::{self, Overlay, Writes};
use super::side_state::Delta;
use super::MembershipError;

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
    /// Whether an added entry may change a fork choice.
    decisive: bool,
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
pub(super) struct IngestRules {
    /// Refuse entries dated more than the skew after this (`None`: trusted input).
    pub(super) now_ms: Option<u64>,
    /// Apply [`MAX_SIDE_ENTRIES`].
    pub(super) cap_side: bool,
}

impl Ring {
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

    pub(super) fn ingest_entries(
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
        if report.decisive {
            report.switch = self.resolve();
        }
    }

    fn offer(&mut self, entry: Entry, rules: IngestRules, report: &mut IngestReport) {
        let hash = entry.hash();
        if self.by_hash.contains_key(&hash) || self.pending.contains(&entry) {
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
            if self.by_hash.contains_key(&hash) {
                // Another copy of this body (another signature) was added.
                report.duplicates += 1;
                continue;
            }
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
                    if error.is_final() {
                        // The body breaks a rule where it sits: no copy of it,
                        // and so none of its held descendants, can attach.
                        self.rejected.insert(hash, error.clone());
                        let mut orphans = self.pending.take_children(&hash);
                        while let Some(o) = orphans.pop() {
                            orphans.extend(self.pending.take_children(&o.hash()));
                        }
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
        report.decisive |= self.decisive(parent, &entry.body);
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

    pub(super) fn insert(
        &mut self,
        entry: Entry,
        parent: NodeId,
        writes: Writes,
        on_chain: bool,
    ) -> NodeId {
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
}
