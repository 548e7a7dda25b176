//! The requester's side of a sync: zip arriving items with the same
//! traversal the provider runs.
//!
//! Each data item must hash to the cid the traversal expects next, so every
//! node accepted is proven reachable from a requested root; the traversal
//! learns the following cids only from nodes it has verified. A node that
//! does not hash, a node slipped in out of order, an item after the end, a
//! skip the request did not allow, or a stream that ends early is an error:
//! the caller stops reading from that provider, and only items accepted
//! before the error were ever handed out.

use super::error::VerifyError;
use super::item::Item;
use super::node::{Cid, Link, LinkKind, NodeRef, MAX_NODE_BYTES};
use super::traversal::{Traversal, Visit};
use super::Request;
use crate::hash::digest;

/// An item the verifier accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Accepted {
    /// A verified node (store it).
    Node {
        /// Its cid.
        cid: Cid,
        /// Its bytes, which hash to `cid`.
        bytes: Vec<u8>,
    },
    /// A verified blob (store it).
    Blob {
        /// Its cid.
        cid: Cid,
        /// Its bytes, which hash to `cid`.
        bytes: Vec<u8>,
    },
    /// A run of cids the provider skipped, each with `true` when the
    /// requester does not in fact hold it (a gap: a filter false positive,
    /// to fetch in a second round).
    Skipped(Vec<(Cid, bool)>),
    /// The provider does not have it.
    Missing {
        /// The cid.
        cid: Cid,
    },
    /// A blob over the inline limit, to fetch by blob transfer.
    Deferred {
        /// The cid.
        cid: Cid,
        /// Its size as the provider claims it (unverified).
        size: u64,
    },
}

/// What a finished response left to do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Visits in the traversal.
    pub visits: usize,
    /// Nodes and blobs received.
    pub received: usize,
    /// Bytes of nodes and blobs received.
    pub received_bytes: u64,
    /// Cids skipped that the requester lacks, as they were visited (fetch
    /// them in a second round, without a filter).
    pub gaps: Vec<Visit>,
    /// Cids the provider did not have.
    pub missing: Vec<Cid>,
    /// Blobs over the inline limit: cid and claimed size.
    pub deferred: Vec<(Cid, u64)>,
}

/// Verifies one response against the request it answers.
#[derive(Debug)]
pub struct Verifier {
    request: Request,
    traversal: Traversal,
    expected: Option<Visit>,
    max_visits: usize,
    outcome: Outcome,
}

impl Verifier {
    /// A verifier for `request`, refusing traversals of more than
    /// `max_visits` cids.
    pub fn new(request: Request, max_visits: usize) -> Self {
        Self {
            traversal: Traversal::new(&request.roots, request.spec),
            request,
            expected: None,
            max_visits,
            outcome: Outcome::default(),
        }
    }

    fn expected(&mut self) -> Result<Option<Visit>, VerifyError> {
        if self.expected.is_none() {
            self.expected = self.traversal.next_visit();
            if self.expected.is_some() {
                self.outcome.visits += 1;
                if self.outcome.visits > self.max_visits {
                    return Err(VerifyError::TooManyItems {
                        limit: self.max_visits,
                    });
                }
            }
        }
        Ok(self.expected)
    }

    /// The cid the next item must be about (`None` once the traversal ended).
    pub fn next_expected(&mut self) -> Result<Option<Visit>, VerifyError> {
        self.expected()
    }

    /// Checks the next item. `holds` says whether the requester holds a cid's
    /// whole subtree (asked only for skipped items).
    pub fn accept(
        &mut self,
        item: Item,
        holds: impl Fn(&Cid) -> bool,
    ) -> Result<Accepted, VerifyError> {
        let visit = self.expected()?.ok_or(VerifyError::UnexpectedItem)?;
        let cid = visit.cid;
        let accepted = match item {
            Item::Data(bytes) => {
                let limit = match visit.kind {
                    LinkKind::Node => MAX_NODE_BYTES,
                    LinkKind::Blob => self.request.inline_limit,
                };
                if bytes.len() > limit {
                    return Err(VerifyError::ItemTooLarge {
                        size: bytes.len(),
                        limit,
                    });
                }
                if digest(&bytes) != cid {
                    return Err(VerifyError::HashMismatch { expected: cid });
                }
                self.outcome.received += 1;
                self.outcome.received_bytes += bytes.len() as u64;
                match visit.kind {
                    LinkKind::Node => {
                        let node = NodeRef::decode(&bytes)
                            .map_err(|reason| VerifyError::NotANode { cid, reason })?;
                        self.traversal.enter(node.links());
                        Accepted::Node { cid, bytes }
                    }
                    LinkKind::Blob => Accepted::Blob { cid, bytes },
                }
            }
            Item::Skipped(count) => {
                let mut run = Vec::new();
                let mut visit = visit;
                for i in 0..count {
                    if i > 0 {
                        self.expected = None;
                        visit = self.expected()?.ok_or(VerifyError::UnexpectedItem)?;
                    }
                    run.push(self.skip(visit, &holds)?);
                }
                Accepted::Skipped(run)
            }
            Item::Missing => {
                self.outcome.missing.push(cid);
                Accepted::Missing { cid }
            }
            Item::Deferred(size) => {
                if visit.kind == LinkKind::Node {
                    return Err(VerifyError::DeferredNode { cid });
                }
                self.outcome.deferred.push((cid, size));
                Accepted::Deferred { cid, size }
            }
        };
        self.expected = None;
        Ok(accepted)
    }

    /// One skipped visit: allowed when the requester holds it or its filter
    /// may have excluded it (then it is a gap); never for a root.
    fn skip(
        &mut self,
        visit: Visit,
        holds: &impl Fn(&Cid) -> bool,
    ) -> Result<(Cid, bool), VerifyError> {
        let cid = visit.cid;
        if visit.depth == 0 {
            return Err(VerifyError::UnrequestedSkip { cid });
        }
        let gap = !holds(&cid);
        if gap && !self.request.filter_contains(&cid) {
            return Err(VerifyError::UnrequestedSkip { cid });
        }
        if gap {
            self.outcome.gaps.push(visit);
        }
        Ok((cid, gap))
    }

    /// Ends the response: an error when the traversal still expects items.
    pub fn finish(mut self) -> Result<Outcome, VerifyError> {
        match self.expected()? {
            Some(visit) => Err(VerifyError::Truncated {
                expected: visit.cid,
            }),
            None => Ok(self.outcome),
        }
    }

    /// The request being answered.
    pub fn request(&self) -> &Request {
        &self.request
    }
}

impl Outcome {
    /// The requests of a second round: the gaps as roots, the first round's
    /// `have` roots and no filter (so no new false positive can arise and two
    /// round trips always suffice). With a depth limit, gaps found at
    /// different depths go in separate requests (sent together, on parallel
    /// streams), each limited to the depth left below its gaps.
    pub fn second_round(&self, first: &Request) -> Vec<Request> {
        if self.gaps.is_empty() {
            return Vec::new();
        }
        let mut by_depth: Vec<(u32, Vec<Link>)> = Vec::new();
        for gap in &self.gaps {
            let key = if first.spec.max_depth.is_some() {
                gap.depth
            } else {
                0
            };
            let root = Link {
                kind: gap.kind,
                cid: gap.cid,
            };
            match by_depth.iter_mut().find(|(d, _)| *d == key) {
                Some((_, roots)) => roots.push(root),
                None => by_depth.push((key, vec![root])),
            }
        }
        by_depth
            .into_iter()
            .flat_map(|(depth, roots)| {
                let spec = super::TraversalSpec {
                    blobs: first.spec.blobs,
                    max_depth: first.spec.max_depth.map(|m| m.saturating_sub(depth)),
                };
                roots
                    .chunks(super::request::MAX_ROOTS)
                    .map(|chunk| Request {
                        roots: chunk.to_vec(),
                        spec,
                        inline_limit: first.inline_limit,
                        have: first.have.clone(),
                        filter: None,
                    })
                    .collect::<Vec<_>>()
            })
            .collect()
    }
}
