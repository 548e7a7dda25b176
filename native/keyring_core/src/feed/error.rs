use thiserror::Error;

/// Why a feed entry was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum FeedError {
    /// The bytes are not a canonical encoded entry.
    #[error("malformed feed entry: {0}")]
    Malformed(&'static str),
    /// A format version this build does not read.
    #[error("unsupported feed entry version {0}")]
    UnsupportedVersion(u8),
    /// The signature does not verify for the entry's author (strict Ed25519).
    #[error("the entry's signature does not verify for its author")]
    BadSignature,
    /// The signing key is not the entry's author.
    #[error("only the author may sign its feed entries")]
    NotTheAuthor,
    /// The entry was published in another keyring than the one it arrived for.
    #[error("the entry belongs to another keyring")]
    WrongKeyring,
    /// The entry is further ahead of the feed's head than an entry may wait.
    #[error("entry {seq} is too far ahead of the head {head}")]
    TooFarAhead {
        /// The entry's sequence number.
        seq: u64,
        /// The feed's head (0 when empty).
        head: u64,
    },
    /// No room to hold another not-yet-chained entry (per feed or in total).
    #[error("no room to hold entry {seq} until its predecessor arrives")]
    HeldFull {
        /// The entry's sequence number.
        seq: u64,
    },
    /// A stored entry does not extend the chain being loaded.
    #[error("stored entry {seq} does not extend the chain")]
    NotAChain {
        /// The entry's sequence number.
        seq: u64,
    },
}
