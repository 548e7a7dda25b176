//! The provider's side: what to send for a request, checked as it is sent.

use super::error::EncodeError;
use super::ranges::GroupRanges;
use super::tree::{Cv, Tree, PAIR_LEN};
use super::walk::Walk;

/// What the stream needs next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// The pair of hashes at outboard slot `slot` (byte `64 * slot`).
    Parent {
        /// Post-order slot.
        slot: u64,
    },
    /// The bytes of a group.
    Group {
        /// Group index.
        index: u64,
        /// Byte offset in the blob.
        offset: u64,
        /// Length in bytes.
        len: usize,
    },
    /// The stream is complete.
    Done,
}

/// Produces the verified stream of a blob for a set of groups, without doing
/// any I/O itself: it says which outboard pair or which bytes come next
/// ([`next`](Self::next)), the caller reads them from wherever the blob lives
/// and hands them back ([`parent`](Self::parent), [`group`](Self::group)),
/// which checks them against the tree before the caller sends them. So a
/// blob damaged on the provider's disk is never sent as if it were good.
///
/// Stream layout (bao's, at 16 KiB groups, as iroh-blobs): the blob's size as
/// a little-endian u64 ([`header`](Self::header)), then the items in order.
#[derive(Debug, Clone)]
pub struct Encoder {
    walk: Walk,
}

impl Encoder {
    /// The stream of groups `ranges` of the blob `root` of `size` bytes.
    /// Groups past the end of the blob are ignored.
    pub fn new(root: Cv, size: u64, ranges: &GroupRanges) -> Self {
        Self {
            walk: Walk::new(root, Tree::new(size), ranges),
        }
    }

    /// The first 8 bytes of the stream.
    pub fn header(&self) -> [u8; 8] {
        self.walk.tree().size().to_le_bytes()
    }

    /// What comes next.
    pub fn next(&self) -> Need {
        let tree = self.walk.tree();
        match self.walk.peek() {
            None => Need::Done,
            Some(node) if node.is_leaf() => Need::Group {
                index: node.start,
                offset: tree.group_offset(node.start),
                len: tree.group_len(node.start),
            },
            Some(node) => Need::Parent { slot: node.slot() },
        }
    }

    /// Hands over the pair [`next`](Self::next) asked for; `Ok` means send it.
    pub fn parent(&mut self, pair: &[u8; PAIR_LEN]) -> Result<(), EncodeError> {
        let Need::Parent { slot } = self.next() else {
            return Err(EncodeError::OutOfOrder);
        };
        self.walk
            .parent(pair)
            .map_err(|_| EncodeError::CorruptOutboard { slot })
    }

    /// Hands over the group [`next`](Self::next) asked for; `Ok` means send it.
    pub fn group(&mut self, data: &[u8]) -> Result<(), EncodeError> {
        let Need::Group { index, .. } = self.next() else {
            return Err(EncodeError::OutOfOrder);
        };
        self.walk
            .group(data)
            .map_err(|_| EncodeError::CorruptGroup { group: index })
    }

    /// Encodes the whole stream from a blob and its outboard in memory.
    pub fn encode_all(mut self, data: &[u8], outboard: &[u8]) -> Result<Vec<u8>, EncodeError> {
        let mut out = self.header().to_vec();
        loop {
            match self.next() {
                Need::Done => return Ok(out),
                Need::Parent { slot } => {
                    let at = slot as usize * PAIR_LEN;
                    let pair: &[u8; PAIR_LEN] = outboard
                        .get(at..at + PAIR_LEN)
                        .and_then(|p| p.try_into().ok())
                        .ok_or(EncodeError::CorruptOutboard { slot })?;
                    self.parent(pair)?;
                    out.extend_from_slice(pair);
                }
                Need::Group { index, offset, len } => {
                    let bytes = data
                        .get(offset as usize..offset as usize + len)
                        .ok_or(EncodeError::CorruptGroup { group: index })?;
                    self.group(bytes)?;
                    out.extend_from_slice(bytes);
                }
            }
        }
    }
}
