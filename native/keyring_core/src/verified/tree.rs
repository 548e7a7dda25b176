//! The shape of a blob's hash tree at chunk-group level.
//!
//! BLAKE3 hashes 1 KiB chunks into a left-balanced binary tree: the left
//! subtree of every parent holds the largest power of two of chunks that is
//! smaller than the whole. Cut at 16-chunk groups, the same tree has one leaf
//! per 16 KiB group and `groups - 1` parents, and every parent's left subtree
//! holds the largest power of two of *groups* smaller than the whole.
//!
//! Parents are numbered by their position in post-order (children before
//! parents, left before right); a parent's pair of child hashes sits at byte
//! `64 * slot` of the outboard. The numbering needs no table: a subtree of
//! `n` groups whose parents start at slot `p` puts its left child's parents
//! at `p`, its right child's at `p + left - 1`, and itself at `p + n - 2`.

use blake3::hazmat::{merge_subtrees_non_root, merge_subtrees_root, HasherExt, Mode};

/// Bytes in a chunk group: the unit of verification.
pub const GROUP_SIZE: u64 = 16 * 1024;

/// Bytes of one outboard entry: a parent's left and right child hashes.
pub const PAIR_LEN: usize = 64;

/// A chaining value: the hash of a subtree that is not the root.
pub type Cv = [u8; 32];

/// The geometry of the tree of a blob of `size` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Tree {
    size: u64,
    groups: u64,
}

impl Tree {
    /// The tree of a blob of `size` bytes (an empty blob has one empty group).
    pub fn new(size: u64) -> Self {
        Self {
            size,
            groups: size.div_ceil(GROUP_SIZE).max(1),
        }
    }

    /// The blob's size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Number of chunk groups (leaves).
    pub fn groups(&self) -> u64 {
        self.groups
    }

    /// Number of parents (outboard entries).
    pub fn parents(&self) -> u64 {
        self.groups - 1
    }

    /// Size of the outboard in bytes: one 64-byte pair per parent.
    pub fn outboard_size(&self) -> u64 {
        self.parents() * PAIR_LEN as u64
    }

    /// Byte offset of group `index`.
    pub fn group_offset(&self, index: u64) -> u64 {
        index * GROUP_SIZE
    }

    /// Length in bytes of group `index` (the last one may be short; `0` past the end).
    pub fn group_len(&self, index: u64) -> usize {
        let start = index.saturating_mul(GROUP_SIZE);
        self.size.saturating_sub(start).min(GROUP_SIZE) as usize
    }

    /// The whole tree as a node.
    pub(crate) fn root(&self) -> Node {
        Node {
            start: 0,
            count: self.groups,
            first_slot: 0,
        }
    }

    /// The group holding byte `offset` (clamped to the last group).
    pub fn group_of(&self, offset: u64) -> u64 {
        (offset / GROUP_SIZE).min(self.groups - 1)
    }
}

/// A subtree: groups `start .. start + count`, whose parents occupy post-order
/// slots `first_slot .. first_slot + count - 1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Node {
    pub(crate) start: u64,
    pub(crate) count: u64,
    pub(crate) first_slot: u64,
}

impl Node {
    pub(crate) fn is_leaf(&self) -> bool {
        self.count == 1
    }

    pub(crate) fn end(&self) -> u64 {
        self.start + self.count
    }

    /// This parent's own post-order slot.
    pub(crate) fn slot(&self) -> u64 {
        self.first_slot + self.count - 2
    }

    /// The two children of a parent.
    pub(crate) fn split(&self) -> (Node, Node) {
        let left = left_count(self.count);
        (
            Node {
                start: self.start,
                count: left,
                first_slot: self.first_slot,
            },
            Node {
                start: self.start + left,
                count: self.count - left,
                first_slot: self.first_slot + left - 1,
            },
        )
    }
}

/// Groups in the left subtree of a parent over `count ≥ 2` groups: the
/// largest power of two below `count`.
pub(crate) fn left_count(count: u64) -> u64 {
    debug_assert!(count >= 2);
    1 << (63 - (count - 1).leading_zeros())
}

/// The hash of group `index` holding `data`: the root hash when it is the
/// only group, its chaining value otherwise.
pub(crate) fn group_hash(index: u64, data: &[u8], is_root: bool) -> Cv {
    if is_root {
        return *blake3::hash(data).as_bytes();
    }
    let mut hasher = blake3::Hasher::new();
    if index > 0 {
        hasher.set_input_offset(index * GROUP_SIZE);
    }
    hasher.update(data);
    hasher.finalize_non_root()
}

/// The hash of a parent over its children's hashes.
pub(crate) fn parent_hash(left: &Cv, right: &Cv, is_root: bool) -> Cv {
    if is_root {
        *merge_subtrees_root(left, right, Mode::Hash).as_bytes()
    } else {
        merge_subtrees_non_root(left, right, Mode::Hash)
    }
}

/// Splits a 64-byte pair into its two child hashes.
pub(crate) fn split_pair(pair: &[u8; PAIR_LEN]) -> (Cv, Cv) {
    let mut left = [0u8; 32];
    let mut right = [0u8; 32];
    left.copy_from_slice(&pair[..32]);
    right.copy_from_slice(&pair[32..]);
    (left, right)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Post-order slots by brute force: walk the tree recursively.
    fn post_order(node: Node, out: &mut Vec<(u64, u64)>) {
        if node.is_leaf() {
            return;
        }
        let (l, r) = node.split();
        post_order(l, out);
        post_order(r, out);
        out.push((node.start, node.count));
    }

    #[test]
    fn slots_number_parents_in_post_order() {
        for groups in 1..200u64 {
            let tree = Tree::new(groups * GROUP_SIZE);
            let mut order = Vec::new();
            post_order(tree.root(), &mut order);
            assert_eq!(order.len() as u64, tree.parents());
            // Every parent's computed slot is its index in the walk.
            let mut stack = vec![tree.root()];
            while let Some(node) = stack.pop() {
                if node.is_leaf() {
                    continue;
                }
                let idx = order
                    .iter()
                    .position(|&(s, c)| s == node.start && c == node.count)
                    .unwrap();
                assert_eq!(node.slot(), idx as u64, "groups {groups}, node {node:?}");
                let (l, r) = node.split();
                stack.push(l);
                stack.push(r);
            }
        }
    }

    #[test]
    fn group_hashes_combine_to_the_blake3_root() {
        let data: Vec<u8> = (0..5 * GROUP_SIZE + 100).map(|i| (i % 251) as u8).collect();
        let tree = Tree::new(data.len() as u64);
        fn hash(tree: &Tree, data: &[u8], node: Node, root: bool) -> Cv {
            if node.is_leaf() {
                let off = tree.group_offset(node.start) as usize;
                let len = tree.group_len(node.start);
                return group_hash(node.start, &data[off..off + len], root);
            }
            let (l, r) = node.split();
            parent_hash(
                &hash(tree, data, l, false),
                &hash(tree, data, r, false),
                root,
            )
        }
        assert_eq!(
            hash(&tree, &data, tree.root(), true),
            *blake3::hash(&data).as_bytes()
        );
    }

    #[test]
    fn sizes_round_to_groups() {
        assert_eq!(Tree::new(0).groups(), 1);
        assert_eq!(Tree::new(1).groups(), 1);
        assert_eq!(Tree::new(GROUP_SIZE).groups(), 1);
        assert_eq!(Tree::new(GROUP_SIZE + 1).groups(), 2);
        assert_eq!(Tree::new(GROUP_SIZE + 1).group_len(1), 1);
        assert_eq!(Tree::new(GROUP_SIZE + 1).outboard_size(), 64);
        assert_eq!(Tree::new(u64::MAX).groups(), u64::MAX.div_ceil(GROUP_SIZE));
    }
}
