//! The deterministic traversal both sides of a sync run.
//!
//! Order: depth-first, pre-order, links in the order the node lists them,
//! roots in the order given. Each cid is visited once, at its first
//! occurrence in that order (its depth is the depth of that occurrence).
//! Filters: blob links are visited (as leaves) only when
//! [`TraversalSpec::blobs`] is set; links below [`TraversalSpec::max_depth`]
//! are not followed (roots have depth 0).
//!
//! The traversal does no I/O. [`Traversal::next_visit`] names the next cid; when it
//! is a node, the caller may [`Traversal::enter`] it with the node's links
//! (read from a store, or just verified off the wire). A node that is not
//! entered (excluded, missing) is a leaf. So the provider, reading its store,
//! and the requester, reading the wire, compute the same sequence from the
//! same decisions, and a requester learns every cid it expects from nodes it
//! has already verified: anything else is refused.

use std::collections::HashSet;

use super::node::{Cid, Link, LinkKind};

/// What a traversal visits besides nodes, and how deep it goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TraversalSpec {
    /// Visit blob links as leaves (otherwise only nodes are visited).
    pub blobs: bool,
    /// Do not follow links of nodes at this depth (`Some(0)`: the roots only).
    pub max_depth: Option<u32>,
}

/// One step of a traversal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Visit {
    /// The cid visited.
    pub cid: Cid,
    /// Whether it was reached by a node link or a blob link.
    pub kind: LinkKind,
    /// Distance from the root it was reached from.
    pub depth: u32,
}

/// The traversal's state: a stack of links still to visit and the set of cids
/// already visited.
#[derive(Debug)]
pub struct Traversal {
    spec: TraversalSpec,
    stack: Vec<(Link, u32)>,
    visited: HashSet<Cid>,
    current: Option<Visit>,
}

impl Traversal {
    /// A traversal of `roots`, in order (a root is visited whatever the
    /// filters say).
    pub fn new(roots: &[Link], spec: TraversalSpec) -> Self {
        Self {
            spec,
            stack: roots.iter().rev().map(|&link| (link, 0)).collect(),
            visited: HashSet::new(),
            current: None,
        }
    }

    /// The spec it follows.
    pub fn spec(&self) -> TraversalSpec {
        self.spec
    }

    /// The next cid to visit, or `None` at the end. The node visited before,
    /// if it was not [`entered`](Self::enter), is a leaf.
    pub fn next_visit(&mut self) -> Option<Visit> {
        self.current = None;
        while let Some((link, depth)) = self.stack.pop() {
            if self.visited.insert(link.cid) {
                let visit = Visit {
                    cid: link.cid,
                    kind: link.kind,
                    depth,
                };
                self.current = Some(visit);
                return Some(visit);
            }
        }
        None
    }

    /// Follows the links of the node [`next_visit`](Self::next_visit) just returned.
    /// Does nothing for a blob, or when called twice.
    pub fn enter(&mut self, links: impl DoubleEndedIterator<Item = Link>) {
        let Some(visit) = self.current.take() else {
            return;
        };
        if visit.kind != LinkKind::Node || self.spec.max_depth.is_some_and(|m| visit.depth >= m) {
            return;
        }
        let depth = visit.depth + 1;
        let before = self.stack.len();
        for link in links.rev() {
            if (link.kind == LinkKind::Node || self.spec.blobs) && !self.visited.contains(&link.cid)
            {
                self.stack.push((link, depth));
            }
        }
        debug_assert!(self.stack.len() >= before);
    }

    /// How many cids have been visited so far.
    pub fn visited(&self) -> usize {
        self.visited.len()
    }

    /// Links waiting on the stack (a measure of the traversal's memory).
    pub fn pending(&self) -> usize {
        self.stack.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn cid(n: u8) -> Cid {
        [n; 32]
    }

    /// 1 -> [2, 3, blob 9], 2 -> [4, 3], 3 -> [4], 4 -> []
    fn graph() -> HashMap<Cid, Vec<Link>> {
        HashMap::from([
            (
                cid(1),
                vec![Link::node(cid(2)), Link::node(cid(3)), Link::blob(cid(9))],
            ),
            (cid(2), vec![Link::node(cid(4)), Link::node(cid(3))]),
            (cid(3), vec![Link::node(cid(4))]),
            (cid(4), vec![]),
        ])
    }

    fn run(spec: TraversalSpec) -> Vec<(u8, u32)> {
        let g = graph();
        let mut t = Traversal::new(&[Link::node(cid(1))], spec);
        let mut out = Vec::new();
        while let Some(v) = t.next_visit() {
            out.push((v.cid[0], v.depth));
            if let Some(links) = g.get(&v.cid).filter(|_| v.kind == LinkKind::Node) {
                t.enter(links.iter().copied());
            }
        }
        out
    }

    #[test]
    fn pre_order_depth_first_each_cid_once() {
        assert_eq!(
            run(TraversalSpec::default()),
            [(1, 0), (2, 1), (4, 2), (3, 2)]
        );
    }

    #[test]
    fn blobs_are_leaves_when_asked_for() {
        let spec = TraversalSpec {
            blobs: true,
            max_depth: None,
        };
        assert_eq!(run(spec), [(1, 0), (2, 1), (4, 2), (3, 2), (9, 1)]);
    }

    #[test]
    fn max_depth_stops_descent() {
        let spec = TraversalSpec {
            blobs: false,
            max_depth: Some(1),
        };
        assert_eq!(run(spec), [(1, 0), (2, 1), (3, 1)]);
        let roots_only = TraversalSpec {
            blobs: true,
            max_depth: Some(0),
        };
        assert_eq!(run(roots_only), [(1, 0)]);
    }

    #[test]
    fn a_node_not_entered_is_a_leaf() {
        let g = graph();
        let mut t = Traversal::new(&[Link::node(cid(1))], TraversalSpec::default());
        let mut out = Vec::new();
        while let Some(v) = t.next_visit() {
            out.push(v.cid[0]);
            if v.cid != cid(2) {
                t.enter(g[&v.cid].iter().copied());
            }
        }
        assert_eq!(out, [1, 2, 3, 4]);
    }

    #[test]
    fn several_roots_share_one_visited_set() {
        let g = graph();
        let mut t = Traversal::new(
            &[Link::node(cid(3)), Link::node(cid(1))],
            TraversalSpec::default(),
        );
        let mut out = Vec::new();
        while let Some(v) = t.next_visit() {
            out.push(v.cid[0]);
            t.enter(g[&v.cid].iter().copied());
        }
        assert_eq!(out, [3, 4, 1, 2]);
    }
}
