//! The provider's side of a sync: run the requested traversal over a local
//! store and say, for each cid, data, skipped, missing or deferred.
//!
//! The store is reached through [`Source`], so this stays I/O-free and is
//! tested over a map. The provider checks what it reads (hash and, for
//! nodes, the decoder) and marks anything that fails as missing, so a
//! corrupt local copy never gets an honest provider cut off.

use std::collections::HashSet;

use super::item::Item;
use super::node::{Cid, Link, LinkKind, NodeRef, MAX_NODE_BYTES};
use super::traversal::{Traversal, Visit};
use super::{CidFilter, Request};
use crate::hash::digest;

/// What a provider reads: nodes and blobs by cid.
pub trait Source {
    /// A storage error (ends the response).
    type Error;
    /// A node's bytes (at most [`MAX_NODE_BYTES`] are useful), or `None`.
    fn node(&mut self, cid: &Cid) -> Result<Option<Vec<u8>>, Self::Error>;
    /// A blob's bytes when at most `limit` long, its size when longer.
    fn blob(&mut self, cid: &Cid, limit: usize) -> Result<BlobRead, Self::Error>;
}

/// A blob as a [`Source`] finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlobRead {
    /// Within the limit: its bytes.
    Bytes(Vec<u8>),
    /// Over the limit: its size.
    TooLarge(u64),
    /// Not held.
    Absent,
}

/// What a provider skips: everything it can reach from the request's `have`
/// roots in its own store (exact), and whatever the request's filter contains.
#[derive(Debug, Default)]
pub struct Exclusion {
    held: HashSet<Cid>,
    filter: Option<CidFilter>,
}

impl Exclusion {
    /// Expands `have` over `source`: every node and blob link reachable from
    /// them, reading at most `budget` nodes (what lies beyond is not
    /// excluded, which costs bytes, never correctness).
    pub fn expand<S: Source>(
        have: &[Cid],
        filter: Option<CidFilter>,
        source: &mut S,
        budget: usize,
    ) -> Result<Self, S::Error> {
        let mut held = HashSet::new();
        let roots: Vec<Link> = have.iter().copied().map(Link::node).collect();
        let mut walk = Traversal::new(&roots, super::TraversalSpec::default());
        let mut read = 0;
        while let Some(visit) = walk.next_visit() {
            if read >= budget {
                break;
            }
            read += 1;
            let Some(bytes) = source.node(&visit.cid)? else {
                continue;
            };
            let Ok(node) = NodeRef::decode(&bytes) else {
                continue;
            };
            if digest(&bytes) != visit.cid {
                continue;
            }
            held.insert(visit.cid);
            held.extend(
                node.links()
                    .filter(|l| l.kind == LinkKind::Blob)
                    .map(|l| l.cid),
            );
            walk.enter(node.links());
        }
        Ok(Self { held, filter })
    }

    /// Whether the provider skips `cid`.
    pub fn excludes(&self, cid: &Cid) -> bool {
        self.held.contains(cid) || self.filter.as_ref().is_some_and(|f| f.contains(cid))
    }

    /// How many cids the `have` roots expanded to.
    pub fn held(&self) -> usize {
        self.held.len()
    }
}

/// One answer of a provider, in traversal order.
#[derive(Debug)]
pub struct Provider<S> {
    traversal: Traversal,
    source: S,
    exclusion: Exclusion,
    inline_limit: usize,
    budget: usize,
    over_budget: bool,
    /// A visit read ahead while extending a run of skips.
    ahead: Option<Visit>,
    /// The visits the last item covered.
    covered: Vec<Visit>,
}

impl<S: Source> Provider<S> {
    /// A provider for `request`, with `exclusion` already expanded, visiting
    /// at most `budget` cids.
    pub fn new(request: &Request, source: S, exclusion: Exclusion, budget: usize) -> Self {
        Self {
            traversal: Traversal::new(&request.roots, request.spec),
            source,
            exclusion,
            inline_limit: request.inline_limit.min(MAX_NODE_BYTES),
            budget,
            over_budget: false,
            ahead: None,
            covered: Vec::new(),
        }
    }

    fn visit(&mut self) -> Option<Visit> {
        if let Some(visit) = self.ahead.take() {
            return Some(visit);
        }
        if self.traversal.visited() >= self.budget {
            self.over_budget |= self.traversal.next_visit().is_some();
            return None;
        }
        self.traversal.next_visit()
    }

    fn skips(&self, visit: &Visit) -> bool {
        visit.depth > 0 && self.exclusion.excludes(&visit.cid)
    }

    /// The next item to send (`None` at the end, or when the budget ran out:
    /// see [`Provider::over_budget`]); [`Provider::covered`] lists the visits
    /// it stands for.
    pub fn next_item(&mut self) -> Result<Option<Item>, S::Error> {
        self.covered.clear();
        let Some(visit) = self.visit() else {
            return Ok(None);
        };
        self.covered.push(visit);
        if self.skips(&visit) {
            // Skipped nodes are not entered, so reading ahead changes nothing.
            while let Some(next) = self.visit() {
                if self.skips(&next) {
                    self.covered.push(next);
                } else {
                    self.ahead = Some(next);
                    break;
                }
            }
            return Ok(Some(Item::Skipped(self.covered.len() as u64)));
        }
        let item = match visit.kind {
            LinkKind::Node => match self.source.node(&visit.cid)? {
                Some(bytes) if digest(&bytes) == visit.cid => match NodeRef::decode(&bytes) {
                    Ok(node) => {
                        self.traversal.enter(node.links());
                        Item::Data(bytes)
                    }
                    Err(_) => Item::Missing,
                },
                _ => Item::Missing,
            },
            LinkKind::Blob => match self.source.blob(&visit.cid, self.inline_limit)? {
                BlobRead::Bytes(bytes) if digest(&bytes) == visit.cid => Item::Data(bytes),
                BlobRead::Bytes(_) | BlobRead::Absent => Item::Missing,
                BlobRead::TooLarge(size) => Item::Deferred(size),
            },
        };
        Ok(Some(item))
    }

    /// The visits the item last returned stands for (several for a run of
    /// skips, else one).
    pub fn covered(&self) -> &[Visit] {
        &self.covered
    }

    /// Whether the response stopped at the budget with cids left to visit.
    pub fn over_budget(&self) -> bool {
        self.over_budget
    }

    /// The source, back.
    pub fn into_source(self) -> S {
        self.source
    }
}
