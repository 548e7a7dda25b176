//! The pre-order walk a verified stream follows, checking hashes on the way.
//!
//! For a set of requested groups, the stream holds every parent on the path
//! from the root to a requested group, each before its subtrees, and the
//! requested groups' bytes, left to right. The walk keeps, for each subtree
//! still to come, the hash it must have: the root hash for the whole tree,
//! then the halves of every verified pair. So each parent and each group is
//! checked the moment it is complete, and nothing unverified is ever passed on.

use super::ranges::GroupRanges;
use super::tree::{group_hash, parent_hash, split_pair, Cv, Node, Tree, PAIR_LEN};

#[derive(Debug, Clone)]
pub(crate) struct Walk {
    tree: Tree,
    ranges: GroupRanges,
    /// Subtrees still to visit, next on top, with the hash each must have.
    stack: Vec<(Node, Cv)>,
}

/// The walk refused a parent or a group: the first requested group below it.
pub(crate) struct Mismatch(pub(crate) u64);

impl Walk {
    pub(crate) fn new(root: Cv, tree: Tree, ranges: &GroupRanges) -> Self {
        let ranges = ranges.clip(tree.groups());
        let stack = if ranges.is_empty() {
            Vec::new()
        } else {
            vec![(tree.root(), root)]
        };
        Self {
            tree,
            ranges,
            stack,
        }
    }

    pub(crate) fn tree(&self) -> Tree {
        self.tree
    }

    /// The next parent or group of the stream, `None` at its end.
    pub(crate) fn peek(&self) -> Option<Node> {
        self.stack.last().map(|(node, _)| *node)
    }

    /// The first requested group still to come.
    pub(crate) fn next_group(&self) -> Option<u64> {
        self.stack
            .last()
            .map(|(node, _)| self.first_requested(node))
    }

    fn first_requested(&self, node: &Node) -> u64 {
        self.ranges
            .iter()
            .find(|r| r.end > node.start)
            .map_or(node.start, |r| r.start.max(node.start))
    }

    /// Checks the pair of the parent on top and descends into it.
    pub(crate) fn parent(&mut self, pair: &[u8; PAIR_LEN]) -> Result<(), Mismatch> {
        let (node, expected) = self.stack.pop().expect("a parent is next");
        debug_assert!(!node.is_leaf());
        let (left, right) = split_pair(pair);
        let is_root = node.count == self.tree.groups();
        if parent_hash(&left, &right, is_root) != expected {
            self.stack.push((node, expected));
            return Err(Mismatch(self.first_requested(&node)));
        }
        let (l, r) = node.split();
        if self.ranges.intersects(r.start, r.end()) {
            self.stack.push((r, right));
        }
        if self.ranges.intersects(l.start, l.end()) {
            self.stack.push((l, left));
        }
        Ok(())
    }

    /// Checks the bytes of the group on top.
    pub(crate) fn group(&mut self, data: &[u8]) -> Result<(), Mismatch> {
        let (node, expected) = *self.stack.last().expect("a group is next");
        debug_assert!(node.is_leaf());
        let is_root = self.tree.groups() == 1;
        if data.len() != self.tree.group_len(node.start)
            || group_hash(node.start, data, is_root) != expected
        {
            return Err(Mismatch(node.start));
        }
        self.stack.pop();
        Ok(())
    }
}
