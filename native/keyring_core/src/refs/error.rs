use thiserror::Error;

/// Why a signed ref was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum RefError {
    /// The bytes are not a canonical encoded ref.
    #[error("malformed ref: {0}")]
    Malformed(&'static str),
    /// A format version this build does not read.
    #[error("unsupported ref version {0}")]
    UnsupportedVersion(u8),
    /// The signature does not verify for the ref's author (strict Ed25519).
    #[error("the ref's signature does not verify for its author")]
    BadSignature,
    /// The signing key is not the ref's author.
    #[error("only the author may sign its refs")]
    NotTheAuthor,
    /// The ref was published in another keyring than the one it arrived for.
    #[error("the ref belongs to another keyring")]
    WrongKeyring,
    /// The ref names another (keyring, author, name) than the one it is compared with.
    #[error("the refs name different pointers")]
    DifferentRef,
    /// A ref with a lower sequence number than the one held: a replay, refused.
    #[error("stale ref: seq {seq} is older than the held seq {current}")]
    Stale {
        /// The refused ref's sequence number.
        seq: u64,
        /// The held ref's sequence number.
        current: u64,
    },
    /// Two different refs signed at one sequence number.
    #[error("equivocation: two different refs at seq {seq}")]
    Equivocation {
        /// The sequence number both claim.
        seq: u64,
    },
}
