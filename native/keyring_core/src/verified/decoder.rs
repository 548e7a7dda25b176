//! The receiver's side: checks a verified stream as it arrives, group by group.

use super::error::DecodeError;
use super::ranges::GroupRanges;
use super::tree::{Cv, Tree, GROUP_SIZE, PAIR_LEN};
use super::walk::Walk;

/// A group whose bytes and whose path to the root were verified. Only a
/// [`Decoder`] makes one, so a store that takes a `VerifiedGroup` knows its
/// bytes were checked against [`root`](Self::root).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerifiedGroup<'a> {
    root: &'a Cv,
    size: u64,
    index: u64,
    data: &'a [u8],
    parents: &'a [(u64, [u8; PAIR_LEN])],
}

impl<'a> VerifiedGroup<'a> {
    /// The root hash (cid) the group was verified against.
    pub fn root(&self) -> &'a Cv {
        self.root
    }

    /// The blob size of the tree it was verified in.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Group index.
    pub fn index(&self) -> u64 {
        self.index
    }

    /// Byte offset in the blob.
    pub fn offset(&self) -> u64 {
        self.index * GROUP_SIZE
    }

    /// The group's bytes.
    pub fn data(&self) -> &'a [u8] {
        self.data
    }

    /// The pairs verified since the previous group (outboard slot, pair):
    /// with those of earlier groups, every pair on this group's path.
    pub fn parents(&self) -> &'a [(u64, [u8; PAIR_LEN])] {
        self.parents
    }

    /// Whether this is the blob's last group (which proves the size).
    pub fn is_last(&self) -> bool {
        self.index + 1 == Tree::new(self.size).groups()
    }
}

/// What [`Decoder::push`] got to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step<'a> {
    /// The input is used up; push more.
    NeedMore,
    /// The next group, verified. Push the rest of the input after it.
    Group(VerifiedGroup<'a>),
    /// The stream is complete; any further bytes are not part of it.
    Done,
}

/// Checks a verified stream incrementally. Feed it the bytes as they come,
/// split anywhere; each group is handed out only after it and every parent
/// on its path hashed to what the root says, and the first thing that does
/// not is an error naming the group, after which the decoder refuses
/// everything. So a lying provider is caught within one 16 KiB group.
///
/// Memory is bounded whatever the stream claims: one group's buffer, a stack
/// of at most 64 hashes, and the parents of the current path.
#[derive(Debug, Clone)]
pub struct Decoder {
    root: Cv,
    ranges: GroupRanges,
    expected_size: Option<u64>,
    header: [u8; 8],
    header_len: usize,
    walk: Option<Walk>,
    buf: Vec<u8>,
    parents: Vec<(u64, [u8; PAIR_LEN])>,
    handed_out: bool,
    size_verified: bool,
    failed: Option<DecodeError>,
}

impl Decoder {
    /// A decoder for the stream of groups `ranges` of the blob `root`. With
    /// `expected_size`, a stream claiming another size is refused at once.
    pub fn new(root: Cv, ranges: GroupRanges, expected_size: Option<u64>) -> Self {
        Self {
            root,
            ranges,
            expected_size,
            header: [0; 8],
            header_len: 0,
            walk: None,
            buf: Vec::new(),
            parents: Vec::new(),
            handed_out: false,
            size_verified: false,
            failed: None,
        }
    }

    /// The tree, once the size header has been read. The size is the
    /// provider's claim until [`size_verified`](Self::size_verified).
    pub fn tree(&self) -> Option<Tree> {
        self.walk.as_ref().map(Walk::tree)
    }

    /// Whether the size is proven: the last group was verified (a wrong size
    /// gives a different tree, whose last group cannot verify).
    pub fn size_verified(&self) -> bool {
        self.size_verified
    }

    /// Consumes bytes from the front of `input`; returns how many it took and
    /// what it got to. Call again with the rest after a [`Step::Group`].
    pub fn push<'a>(&'a mut self, input: &'a [u8]) -> Result<(usize, Step<'a>), DecodeError> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        if std::mem::take(&mut self.handed_out) {
            self.parents.clear();
            self.buf.clear();
        }
        let mut used = 0;
        if self.walk.is_none() {
            let take = (8 - self.header_len).min(input.len());
            self.header[self.header_len..self.header_len + take].copy_from_slice(&input[..take]);
            self.header_len += take;
            used += take;
            if self.header_len < 8 {
                return Ok((used, Step::NeedMore));
            }
            let claimed = u64::from_le_bytes(self.header);
            if let Some(expected) = self.expected_size.filter(|&e| e != claimed) {
                return Err(self.fail(DecodeError::SizeMismatch { expected, claimed }));
            }
            self.walk = Some(Walk::new(self.root, Tree::new(claimed), &self.ranges));
        }
        loop {
            let walk = self.walk.as_mut().expect("header read");
            let tree = walk.tree();
            let Some(node) = walk.peek() else {
                return Ok((used, Step::Done));
            };
            let need = if node.is_leaf() {
                tree.group_len(node.start)
            } else {
                PAIR_LEN
            };
            let rest = &input[used..];
            // Take the item straight from the input when it is all there and
            // nothing of it was buffered; copy it otherwise.
            let whole = self.buf.is_empty() && rest.len() >= need;
            let item_start = used;
            if whole {
                used += need;
            } else {
                if self.buf.capacity() == 0 {
                    self.buf.reserve_exact(GROUP_SIZE as usize);
                }
                let take = (need - self.buf.len()).min(rest.len());
                self.buf.extend_from_slice(&rest[..take]);
                used += take;
                if self.buf.len() < need {
                    return Ok((used, Step::NeedMore));
                }
            }
            let item: &[u8] = if whole {
                &input[item_start..used]
            } else {
                &self.buf
            };
            if node.is_leaf() {
                if let Err(m) = walk.group(item) {
                    let e = DecodeError::GroupMismatch { group: m.0 };
                    self.failed = Some(e);
                    return Err(e);
                }
                if node.start + 1 == tree.groups() {
                    self.size_verified = true;
                }
                self.handed_out = true;
                let data: &'a [u8] = if whole {
                    &input[item_start..used]
                } else {
                    &self.buf
                };
                return Ok((
                    used,
                    Step::Group(VerifiedGroup {
                        root: &self.root,
                        size: tree.size(),
                        index: node.start,
                        data,
                        parents: &self.parents,
                    }),
                ));
            }
            let pair: [u8; PAIR_LEN] = item.try_into().expect("a pair is 64 bytes");
            if let Err(m) = walk.parent(&pair) {
                return Err(self.fail(DecodeError::ParentMismatch { group: m.0 }));
            }
            self.parents.push((node.slot(), pair));
            self.buf.clear();
        }
    }

    fn fail(&mut self, e: DecodeError) -> DecodeError {
        self.failed = Some(e);
        e
    }

    /// The next group the stream will deliver (`None` when complete).
    pub fn next_group(&self) -> Option<u64> {
        match &self.walk {
            None => self.ranges.iter().next().map(|r| r.start),
            Some(walk) => walk.next_group(),
        }
    }

    /// Decodes a whole stream held in memory into its verified groups
    /// (index and bytes). A stream that ends early is
    /// [`DecodeError::Truncated`]; bytes after its end are
    /// [`DecodeError::TrailingBytes`].
    pub fn decode_all(mut self, stream: &[u8]) -> Result<Vec<(u64, Vec<u8>)>, DecodeError> {
        let mut out = Vec::new();
        let mut pos = 0;
        loop {
            let (used, step) = self.push(&stream[pos..])?;
            pos += used;
            match step {
                Step::Group(g) => out.push((g.index(), g.data().to_vec())),
                Step::Done if pos == stream.len() => return Ok(out),
                Step::Done => return Err(DecodeError::TrailingBytes),
                Step::NeedMore => {
                    return Err(DecodeError::Truncated {
                        group: self.next_group().unwrap_or(0),
                    })
                }
            }
        }
    }
}
