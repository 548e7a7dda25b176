//! Outboards: a blob's parent hashes, kept beside its bytes.
//!
//! The outboard of a blob of `n` groups is its `n - 1` parents' pairs of child
//! hashes (64 bytes each) in post-order, without a size prefix: 0.39 % of the
//! data at 16 KiB groups. Post-order is the order in which hashing produces
//! them, so [`OutboardBuilder`] writes the outboard in one pass while the data
//! streams through, without knowing the size in advance. The layout is
//! bao-tree's `PostOrderMemOutboard` at 16 KiB chunk groups (as iroh-blobs).

use super::error::OutboardError;
use super::tree::{group_hash, parent_hash, split_pair, Cv, Node, Tree, GROUP_SIZE, PAIR_LEN};

/// Hashes a blob in one pass and produces its root hash and its outboard.
///
/// Feed the bytes in pieces of any size with [`update`](Self::update); take
/// the pairs produced so far with [`take_pairs`](Self::take_pairs) whenever
/// convenient (they come in outboard order); [`finalize`](Self::finalize)
/// gives the root and the last pairs. Memory: one group's hasher and a stack
/// of at most 64 hashes, plus the pairs not taken yet.
#[derive(Debug, Clone)]
pub struct OutboardBuilder {
    len: u64,
    group: blake3::Hasher,
    group_index: u64,
    group_len: u64,
    /// Completed subtrees, left to right: hash and group count.
    stack: Vec<(Cv, u64)>,
    pairs: Vec<u8>,
}

impl Default for OutboardBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl OutboardBuilder {
    /// A builder for a blob starting now.
    pub fn new() -> Self {
        Self {
            len: 0,
            group: blake3::Hasher::new(),
            group_index: 0,
            group_len: 0,
            stack: Vec::with_capacity(64),
            pairs: Vec::new(),
        }
    }

    /// Bytes fed so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether nothing was fed yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Feeds the next bytes of the blob.
    pub fn update(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            if self.group_len == GROUP_SIZE {
                // More bytes follow a full group: it is not the last one, so
                // it is not the root, and complete subtrees can merge.
                self.close_group();
            }
            let take = ((GROUP_SIZE - self.group_len) as usize).min(data.len());
            self.group.update(&data[..take]);
            self.group_len += take as u64;
            self.len += take as u64;
            data = &data[take..];
        }
    }

    fn close_group(&mut self) {
        let cv = blake3::hazmat::HasherExt::finalize_non_root(&self.group);
        self.stack.push((cv, 1));
        // Two subtrees of equal size on top are siblings (the tree is left-full).
        while self.stack.len() >= 2 {
            let n = self.stack.len();
            if self.stack[n - 1].1 != self.stack[n - 2].1 {
                break;
            }
            self.merge(false);
        }
        self.group_index += 1;
        self.group = blake3::Hasher::new();
        blake3::hazmat::HasherExt::set_input_offset(&mut self.group, self.group_index * GROUP_SIZE);
        self.group_len = 0;
    }

    /// Merges the two top subtrees, writing their pair.
    fn merge(&mut self, root: bool) -> Cv {
        let (right, rc) = self.stack.pop().expect("two subtrees");
        let (left, lc) = self.stack.pop().expect("two subtrees");
        self.pairs.extend_from_slice(&left);
        self.pairs.extend_from_slice(&right);
        let cv = parent_hash(&left, &right, root);
        self.stack.push((cv, lc + rc));
        cv
    }

    /// The pairs produced since the last call, in outboard order.
    pub fn take_pairs(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.pairs)
    }

    /// Bytes of pairs waiting to be taken.
    pub fn pending_pairs(&self) -> usize {
        self.pairs.len()
    }

    /// The root hash (the blob's cid) and the pairs not taken yet.
    pub fn finalize(mut self) -> (Cv, Vec<u8>) {
        if self.stack.is_empty() {
            return (*self.group.finalize().as_bytes(), self.pairs);
        }
        let cv = blake3::hazmat::HasherExt::finalize_non_root(&self.group);
        self.stack.push((cv, 1));
        let mut root = [0u8; 32];
        while self.stack.len() >= 2 {
            let last = self.stack.len() == 2;
            root = self.merge(last);
        }
        (root, self.pairs)
    }
}

/// The root hash and outboard of `data`, in memory.
pub fn outboard(data: &[u8]) -> (Cv, Vec<u8>) {
    let mut builder = OutboardBuilder::new();
    builder.update(data);
    builder.finalize()
}

/// Checks, pair by pair in outboard order, that an outboard is the tree of
/// `root` for a blob of the checker's size: every pair must hash to the
/// entry its parent holds for it, the last one to the root. The data is not
/// involved (each group is checked against the outboard when it is read or
/// received). Memory: a stack of at most 64 hashes.
#[derive(Debug, Clone)]
pub struct OutboardChecker {
    root: Cv,
    tree: Tree,
    walk: PostOrder,
    /// Hashes of the parents checked so far whose own parent is still to come.
    pending: Vec<Cv>,
    slot: u64,
}

impl OutboardChecker {
    /// A checker for the outboard of the blob `root` of `size` bytes.
    pub fn new(root: Cv, size: u64) -> Self {
        let tree = Tree::new(size);
        Self {
            root,
            tree,
            walk: PostOrder::new(tree),
            pending: Vec::new(),
            slot: 0,
        }
    }

    /// Checks the next pair (in outboard order).
    pub fn push(&mut self, pair: &[u8; PAIR_LEN]) -> Result<(), OutboardError> {
        let Some(node) = self.walk.next() else {
            return Err(self.wrong_length(self.slot + 1));
        };
        let bad = OutboardError::Mismatch { slot: self.slot };
        let (left, right) = split_pair(pair);
        let (l, r) = node.split();
        // A parent child's hash is on the stack: the right one on top.
        if !r.is_leaf() && self.pending.pop() != Some(right) {
            return Err(bad);
        }
        if !l.is_leaf() && self.pending.pop() != Some(left) {
            return Err(bad);
        }
        let is_root = node.count == self.tree.groups();
        let hash = parent_hash(&left, &right, is_root);
        if is_root && hash != self.root {
            return Err(bad);
        }
        self.pending.push(hash);
        self.slot += 1;
        Ok(())
    }

    /// Checks a run of pairs (a multiple of 64 bytes).
    pub fn push_all(&mut self, pairs: &[u8]) -> Result<(), OutboardError> {
        if pairs.len() % PAIR_LEN != 0 {
            return Err(self.wrong_length(self.slot + pairs.len() as u64 / 64 + 1));
        }
        for pair in pairs.chunks_exact(PAIR_LEN) {
            self.push(pair.try_into().expect("64 bytes"))?;
        }
        Ok(())
    }

    /// Ends the check: every pair must have come. For a one-group blob (no
    /// pairs) `group0` must be its bytes, whose hash is then the root.
    pub fn finish(self, group0: Option<&[u8]>) -> Result<(), OutboardError> {
        if self.slot != self.tree.parents() {
            return Err(self.wrong_length(self.slot));
        }
        if self.tree.groups() == 1 {
            let ok = group0.is_some_and(|d| group_hash(0, d, true) == self.root);
            return if ok {
                Ok(())
            } else {
                Err(OutboardError::Mismatch { slot: 0 })
            };
        }
        Ok(())
    }

    fn wrong_length(&self, pairs: u64) -> OutboardError {
        OutboardError::WrongLength {
            expected: self.tree.outboard_size(),
            actual: pairs * PAIR_LEN as u64,
        }
    }
}

/// The parents of a tree in post-order, with O(depth) memory.
#[derive(Debug, Clone)]
pub(crate) struct PostOrder {
    /// Nodes to finish; `true` once their children were pushed.
    stack: Vec<(Node, bool)>,
}

impl PostOrder {
    pub(crate) fn new(tree: Tree) -> Self {
        let root = tree.root();
        Self {
            stack: if root.is_leaf() {
                Vec::new()
            } else {
                vec![(root, false)]
            },
        }
    }
}

impl Iterator for PostOrder {
    type Item = Node;

    fn next(&mut self) -> Option<Node> {
        loop {
            let (node, expanded) = self.stack.pop()?;
            if expanded {
                return Some(node);
            }
            self.stack.push((node, true));
            let (l, r) = node.split();
            if !r.is_leaf() {
                self.stack.push((r, false));
            }
            if !l.is_leaf() {
                self.stack.push((l, false));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blob(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 % 251) as u8).collect()
    }

    #[test]
    fn root_is_blake3_and_outboard_has_one_pair_per_parent() {
        for len in [
            0,
            1,
            16_384,
            16_385,
            3 * 16_384,
            7 * 16_384 + 5,
            64 * 16_384,
            100_000,
        ] {
            let data = blob(len);
            let (root, ob) = outboard(&data);
            assert_eq!(root, *blake3::hash(&data).as_bytes(), "len {len}");
            assert_eq!(ob.len() as u64, Tree::new(len as u64).outboard_size());
            let mut check = OutboardChecker::new(root, len as u64);
            check.push_all(&ob).unwrap();
            check.finish(Some(&data[..len.min(16_384)])).unwrap();
        }
    }

    #[test]
    fn feeding_in_odd_pieces_gives_the_same_outboard() {
        let data = blob(9 * 16_384 + 333);
        let whole = outboard(&data);
        for piece in [1, 1000, 16_383, 16_384, 16_385, 70_000] {
            let mut b = OutboardBuilder::new();
            let mut ob = Vec::new();
            for p in data.chunks(piece) {
                b.update(p);
                ob.extend(b.take_pairs());
            }
            let (root, rest) = b.finalize();
            ob.extend(rest);
            assert_eq!((root, ob), whole, "pieces of {piece}");
        }
    }

    #[test]
    fn a_flipped_outboard_bit_is_found() {
        let data = blob(13 * 16_384);
        let (root, ob) = outboard(&data);
        for byte in (0..ob.len()).step_by(17) {
            let mut bad = ob.clone();
            bad[byte] ^= 1;
            let mut check = OutboardChecker::new(root, data.len() as u64);
            assert!(check.push_all(&bad).is_err(), "flip at {byte} not found");
        }
        let mut short = OutboardChecker::new(root, data.len() as u64);
        short.push_all(&ob[..ob.len() - 64]).unwrap();
        assert!(short.finish(None).is_err());
    }
}
