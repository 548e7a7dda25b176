//! The generic node codec: version, kind, links, data. Kind-specific rules
//! (directory entries, event chains) are checked by [`super::directory`] and
//! [`super::event`] as part of every decode and encode, so a [`NodeRef`] or a
//! [`Node`] is always a valid node of its kind.

use super::{directory, event, varint, CodecError};
use crate::hash::{digest, Digest, HASH_LEN};
use crate::wire::reader::Reader;

/// A content id: the BLAKE3 hash of a node's encoding or of a blob's bytes.
pub type Cid = Digest;

/// The only encoding version so far.
pub const VERSION: u8 = 1;
/// Largest node encoding, in bytes (1 MiB).
pub const MAX_NODE_BYTES: usize = 1 << 20;
/// Most links one node may carry.
pub const MAX_LINKS: usize = 16_384;
/// Largest data section: the data length field may not exceed this (the
/// whole encoding must still fit in [`MAX_NODE_BYTES`]).
pub const MAX_DATA_BYTES: usize = MAX_NODE_BYTES;
/// Bytes of one encoded link: a tag and a cid.
pub const LINK_BYTES: usize = 1 + HASH_LEN;

/// What a link points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LinkKind {
    /// Another DAG node: traversals descend into it.
    Node,
    /// A blob (opaque bytes, e.g. a file's contents): a leaf.
    Blob,
}

impl LinkKind {
    fn tag(self) -> u8 {
        match self {
            LinkKind::Node => 0,
            LinkKind::Blob => 1,
        }
    }

    fn from_tag(tag: u8) -> Result<Self, CodecError> {
        match tag {
            0 => Ok(LinkKind::Node),
            1 => Ok(LinkKind::Blob),
            other => Err(CodecError::UnknownLinkTag(other)),
        }
    }
}

/// A typed link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Link {
    /// Node or blob.
    pub kind: LinkKind,
    /// The target's cid.
    pub cid: Cid,
}

impl Link {
    /// A link to a node.
    pub fn node(cid: Cid) -> Self {
        Self {
            kind: LinkKind::Node,
            cid,
        }
    }

    /// A link to a blob.
    pub fn blob(cid: Cid) -> Self {
        Self {
            kind: LinkKind::Blob,
            cid,
        }
    }
}

/// The schema of a node's data section.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NodeKind {
    /// Application data and links, no further rules.
    Raw,
    /// A directory: one named entry per link (see [`super::Directory`]).
    Directory,
    /// An event in an agent's chain (see [`super::Event`]).
    Event,
}

impl NodeKind {
    fn tag(self) -> u8 {
        match self {
            NodeKind::Raw => 0,
            NodeKind::Directory => 1,
            NodeKind::Event => 2,
        }
    }

    fn from_tag(tag: u8) -> Result<Self, CodecError> {
        match tag {
            0 => Ok(NodeKind::Raw),
            1 => Ok(NodeKind::Directory),
            2 => Ok(NodeKind::Event),
            other => Err(CodecError::UnknownKind(other)),
        }
    }
}

/// A decoded node borrowing the bytes it was decoded from: what traversals
/// use, since they only need the links.
#[derive(Debug, Clone, Copy)]
pub struct NodeRef<'a> {
    kind: NodeKind,
    links: &'a [u8],
    data: &'a [u8],
}

impl<'a> NodeRef<'a> {
    /// Decodes `bytes`, accepting only the canonical encoding of a valid node.
    pub fn decode(bytes: &'a [u8]) -> Result<Self, CodecError> {
        if bytes.len() > MAX_NODE_BYTES {
            return Err(CodecError::TooLarge {
                what: "node",
                limit: MAX_NODE_BYTES,
            });
        }
        let mut r = Reader::new(bytes);
        let version = r.u8().map_err(|_| CodecError::Truncated)?;
        if version != VERSION {
            return Err(CodecError::UnsupportedVersion(version));
        }
        let kind = NodeKind::from_tag(r.u8().map_err(|_| CodecError::Truncated)?)?;
        let count = varint::get_at_most(&mut r, MAX_LINKS, "links")?;
        let links = r
            .take(count * LINK_BYTES)
            .map_err(|_| CodecError::Truncated)?;
        for link in links.chunks_exact(LINK_BYTES) {
            LinkKind::from_tag(link[0])?;
        }
        let data_len = varint::get_at_most(&mut r, MAX_DATA_BYTES, "data")?;
        let data = r.take(data_len).map_err(|_| CodecError::Truncated)?;
        if r.remaining() != 0 {
            return Err(CodecError::TrailingBytes);
        }
        let node = Self { kind, links, data };
        node.check_kind()?;
        Ok(node)
    }

    fn check_kind(&self) -> Result<(), CodecError> {
        match self.kind {
            NodeKind::Raw => Ok(()),
            NodeKind::Directory => directory::check(self.links(), self.data),
            NodeKind::Event => event::check(self.links(), self.data),
        }
    }

    /// The node's kind.
    pub fn kind(&self) -> NodeKind {
        self.kind
    }

    /// Number of links.
    pub fn link_count(&self) -> usize {
        self.links.len() / LINK_BYTES
    }

    /// The links, in order.
    pub fn links(&self) -> impl DoubleEndedIterator<Item = Link> + ExactSizeIterator + 'a {
        self.links.chunks_exact(LINK_BYTES).map(|chunk| {
            let mut cid = [0u8; HASH_LEN];
            cid.copy_from_slice(&chunk[1..]);
            let kind = if chunk[0] == 0 {
                LinkKind::Node
            } else {
                LinkKind::Blob
            };
            Link { kind, cid }
        })
    }

    /// The data section.
    pub fn data(&self) -> &'a [u8] {
        self.data
    }

    /// An owned copy.
    pub fn to_node(&self) -> Node {
        Node {
            kind: self.kind,
            links: self.links().collect(),
            data: self.data.to_vec(),
        }
    }
}

/// An owned node: kind, links and data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// The schema of `data`.
    pub kind: NodeKind,
    /// Links, in order (their order is part of the node).
    pub links: Vec<Link>,
    /// The data section.
    pub data: Vec<u8>,
}

impl Node {
    /// A raw node: application data and links.
    pub fn raw(data: Vec<u8>, links: Vec<Link>) -> Self {
        Self {
            kind: NodeKind::Raw,
            links,
            data,
        }
    }

    /// Decodes `bytes` (canonical encodings of valid nodes only).
    pub fn decode(bytes: &[u8]) -> Result<Self, CodecError> {
        NodeRef::decode(bytes).map(|n| n.to_node())
    }

    /// The canonical encoding, after checking every rule a decoder checks.
    pub fn encode(&self) -> Result<Vec<u8>, CodecError> {
        if self.links.len() > MAX_LINKS {
            return Err(CodecError::TooLarge {
                what: "links",
                limit: MAX_LINKS,
            });
        }
        if self.data.len() > MAX_DATA_BYTES {
            return Err(CodecError::TooLarge {
                what: "data",
                limit: MAX_DATA_BYTES,
            });
        }
        let size = 2
            + varint::len(self.links.len() as u64)
            + self.links.len() * LINK_BYTES
            + varint::len(self.data.len() as u64)
            + self.data.len();
        if size > MAX_NODE_BYTES {
            return Err(CodecError::TooLarge {
                what: "node",
                limit: MAX_NODE_BYTES,
            });
        }
        let mut out = Vec::with_capacity(size);
        out.push(VERSION);
        out.push(self.kind.tag());
        varint::put(&mut out, self.links.len() as u64);
        for link in &self.links {
            out.push(link.kind.tag());
            out.extend_from_slice(&link.cid);
        }
        varint::put(&mut out, self.data.len() as u64);
        out.extend_from_slice(&self.data);
        // The kind rules are checked on the encoding itself, by the decoder:
        // one implementation of the rules for both directions.
        NodeRef::decode(&out)?;
        Ok(out)
    }

    /// The canonical encoding and its cid.
    pub fn encode_with_cid(&self) -> Result<(Cid, Vec<u8>), CodecError> {
        let bytes = self.encode()?;
        Ok((digest(&bytes), bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Node {
        Node::raw(
            b"hello".to_vec(),
            vec![Link::node([1; 32]), Link::blob([2; 32])],
        )
    }

    #[test]
    fn the_byte_layout_is_the_documented_one() {
        let bytes = sample().encode().unwrap();
        let mut expected = vec![1, 0, 2, 0];
        expected.extend_from_slice(&[1; 32]);
        expected.push(1);
        expected.extend_from_slice(&[2; 32]);
        expected.push(5);
        expected.extend_from_slice(b"hello");
        assert_eq!(bytes, expected);
        assert_eq!(Node::decode(&bytes).unwrap(), sample());
    }

    #[test]
    fn the_smallest_node_is_four_bytes() {
        let bytes = Node::raw(vec![], vec![]).encode().unwrap();
        assert_eq!(bytes, vec![1, 0, 0, 0]);
    }

    #[test]
    fn trailing_bytes_are_refused() {
        let mut bytes = sample().encode().unwrap();
        bytes.push(0);
        assert_eq!(Node::decode(&bytes), Err(CodecError::TrailingBytes));
    }

    #[test]
    fn every_strict_prefix_is_truncated() {
        let bytes = sample().encode().unwrap();
        for n in 0..bytes.len() {
            assert_eq!(Node::decode(&bytes[..n]), Err(CodecError::Truncated), "{n}");
        }
    }

    #[test]
    fn unknown_versions_kinds_and_tags_are_refused() {
        let bytes = sample().encode().unwrap();
        let mut b = bytes.clone();
        b[0] = 2;
        assert_eq!(Node::decode(&b), Err(CodecError::UnsupportedVersion(2)));
        let mut b = bytes.clone();
        b[1] = 9;
        assert_eq!(Node::decode(&b), Err(CodecError::UnknownKind(9)));
        let mut b = bytes;
        b[3] = 2;
        assert_eq!(Node::decode(&b), Err(CodecError::UnknownLinkTag(2)));
    }

    #[test]
    fn a_non_minimal_length_is_refused() {
        // data length 5 written as 0x85 0x00
        let mut b = vec![1, 0, 0, 0x85, 0x00];
        b.extend_from_slice(b"hello");
        assert_eq!(Node::decode(&b), Err(CodecError::NonMinimalVarint));
    }

    #[test]
    fn limits_hold_in_both_directions() {
        let too_many = Node::raw(vec![], vec![Link::blob([0; 32]); MAX_LINKS + 1]);
        assert!(matches!(
            too_many.encode(),
            Err(CodecError::TooLarge { what: "links", .. })
        ));
        let too_big = Node::raw(vec![0; MAX_NODE_BYTES - 4], vec![]);
        assert!(matches!(
            too_big.encode(),
            Err(CodecError::TooLarge { what: "node", .. })
        ));
        let fits = Node::raw(vec![0; MAX_NODE_BYTES - 6], vec![]);
        assert_eq!(fits.encode().unwrap().len(), MAX_NODE_BYTES);
        // A header claiming more links than allowed fails before any allocation.
        let mut claim = vec![1, 0];
        varint::put(&mut claim, (MAX_LINKS + 1) as u64);
        assert!(matches!(
            Node::decode(&claim),
            Err(CodecError::TooLarge { what: "links", .. })
        ));
    }
}
