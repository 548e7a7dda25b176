//! The two error families of the DAG layer: bytes that are not a canonical
//! encoding ([`CodecError`]) and a sync stream that breaks the traversal it
//! answers ([`VerifyError`]).

use thiserror::Error;

use super::Cid;

/// Why bytes are not the one canonical encoding of a node, an exclusion
/// filter, a sync request or a sync response item (or why a value cannot be
/// encoded). Every variant names the rule that failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum CodecError {
    /// The input ends inside a field.
    #[error("truncated")]
    Truncated,
    /// Bytes follow the last field.
    #[error("trailing bytes after the last field")]
    TrailingBytes,
    /// A varint uses more bytes than its value needs.
    #[error("non-minimal varint")]
    NonMinimalVarint,
    /// A varint does not fit in 64 bits.
    #[error("varint overflows 64 bits")]
    VarintOverflow,
    /// The format version is not one this build understands.
    #[error("unsupported version {0}")]
    UnsupportedVersion(u8),
    /// The node kind byte is not a known kind.
    #[error("unknown node kind {0}")]
    UnknownKind(u8),
    /// A link tag is neither node (0) nor blob (1).
    #[error("unknown link tag {0}")]
    UnknownLinkTag(u8),
    /// A length, count or the whole encoding is over its limit.
    #[error("{what} over the limit of {limit}")]
    TooLarge {
        /// What was too large (`node`, `data`, `links`, `name`, `filter`, …).
        what: &'static str,
        /// The limit.
        limit: usize,
    },
    /// A directory entry name breaks the naming rules.
    #[error("bad entry name: {0}")]
    BadName(&'static str),
    /// Directory entry names are not strictly ascending (unsorted or duplicate).
    #[error("directory entry names are not strictly ascending")]
    UnsortedNames,
    /// A directory entry kind byte is not a known kind.
    #[error("unknown directory entry kind {0}")]
    UnknownEntryKind(u8),
    /// A directory entry's kind does not match its link's tag (files are blobs,
    /// directories are nodes).
    #[error("directory entry kind does not match its link")]
    EntryKindMismatch,
    /// An event with a sequence number above zero has no `prev` node link first.
    #[error("event {0} has no prev link")]
    MissingPrev(u64),
    /// A flag byte or field holds a value the format does not define.
    #[error("invalid {0}")]
    Invalid(&'static str),
}

/// Why a sync response was rejected. Any of these cuts the provider off:
/// nothing it sent after the offending item is stored.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The item's bytes do not hash to the cid the traversal expects next:
    /// a corrupt node, or a node that is not reachable from the root at this
    /// point (slipped in).
    #[error("item does not hash to the expected cid {}", hex(.expected))]
    HashMismatch {
        /// The cid the traversal expected.
        expected: Cid,
    },
    /// The provider sent an item after the traversal had ended.
    #[error("item after the end of the traversal")]
    UnexpectedItem,
    /// The stream ended while the traversal still expected items.
    #[error("stream ended before the traversal did (next expected {})", hex(.expected))]
    Truncated {
        /// The cid expected next.
        expected: Cid,
    },
    /// The provider sent a node (hash correct) whose bytes are not a valid
    /// node; a provider must mark such a link missing instead.
    #[error("node {} does not decode: {reason}", hex(.cid))]
    NotANode {
        /// The node's cid.
        cid: Cid,
        /// Why it does not decode.
        reason: CodecError,
    },
    /// The provider skipped a root, or a cid the request did not exclude.
    #[error("provider skipped {} which the request did not exclude", hex(.cid))]
    UnrequestedSkip {
        /// The skipped cid.
        cid: Cid,
    },
    /// A marker that only blobs may carry (deferred) came for a node.
    #[error("deferred marker for node {}", hex(.cid))]
    DeferredNode {
        /// The node's cid.
        cid: Cid,
    },
    /// An item is larger than the request allows (nodes: the node limit;
    /// blobs: the inline blob limit).
    #[error("item of {size} bytes over the limit of {limit}")]
    ItemTooLarge {
        /// Bytes announced or received.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The traversal visited more items than the requester's budget allows.
    #[error("traversal over the budget of {limit} items")]
    TooManyItems {
        /// The limit.
        limit: usize,
    },
}

fn hex(cid: &Cid) -> String {
    cid.iter().map(|b| format!("{b:02x}")).collect()
}
