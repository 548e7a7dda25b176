use thiserror::Error;

/// Why a verified stream was refused. Every variant names the first group
/// that could not be verified, so a receiver knows exactly how far the bytes
/// it already wrote can be trusted (all groups before it were verified).
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// A parent's pair of hashes does not hash to what its own parent (or the
    /// root) says: the subtree holding `group` cannot be trusted.
    #[error("a parent hash on the way to group {group} does not match")]
    ParentMismatch {
        /// First requested group below the bad parent.
        group: u64,
    },
    /// The bytes of `group` do not hash to the tree's value for it.
    #[error("group {group} does not match its hash")]
    GroupMismatch {
        /// The bad group.
        group: u64,
    },
    /// The stream ended before `group` was complete.
    #[error("the stream ended before group {group}")]
    Truncated {
        /// The group that did not arrive whole.
        group: u64,
    },
    /// Bytes follow the end of the stream.
    #[error("bytes after the end of the stream")]
    TrailingBytes,
    /// The stream's size header is not the size the receiver expected.
    #[error("the stream claims {claimed} bytes, {expected} were expected")]
    SizeMismatch {
        /// The size the receiver knew.
        expected: u64,
        /// The size the stream claimed.
        claimed: u64,
    },
}

/// Why a group set's wire form was refused.
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RangesError {
    /// The bytes end inside the set.
    #[error("truncated group set")]
    Truncated,
    /// More boundaries than [`super::MAX_BOUNDARIES`].
    #[error("too many ranges")]
    TooManyRanges,
    /// A boundary is not larger than the one before it.
    #[error("range boundaries must increase")]
    NotIncreasing,
    /// A varint or a boundary does not fit in 64 bits (or is the reserved `u64::MAX`).
    #[error("range boundary overflows")]
    Overflow,
    /// A varint has redundant zero bytes.
    #[error("non-canonical varint")]
    NonCanonical,
    /// Bytes follow the set.
    #[error("bytes after the group set")]
    TrailingBytes,
}

/// Why an outboard does not fit its root hash.
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum OutboardError {
    /// The outboard has the wrong length for the blob's size.
    #[error("outboard has {actual} bytes, a blob of this size needs {expected}")]
    WrongLength {
        /// Bytes the tree needs.
        expected: u64,
        /// Bytes given.
        actual: u64,
    },
    /// The pair at `slot` does not hash to its parent's entry (or the root).
    #[error("outboard pair {slot} does not match")]
    Mismatch {
        /// The post-order slot of the bad pair.
        slot: u64,
    },
}

/// Why a provider refused to send what it holds: its own copy is damaged.
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EncodeError {
    /// The outboard pair at `slot` does not match the tree.
    #[error("the outboard pair at slot {slot} is corrupt")]
    CorruptOutboard {
        /// Post-order slot.
        slot: u64,
    },
    /// The stored bytes of `group` do not match the tree.
    #[error("group {group} is corrupt")]
    CorruptGroup {
        /// Group index.
        group: u64,
    },
    /// A pair was handed over when a group was due, or the other way round.
    #[error("parent and group handed over out of order")]
    OutOfOrder,
}
