use thiserror::Error;

/// Why a gossip packet was rejected.
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum GossipError {
    /// Shorter than the smallest valid packet.
    #[error("packet too short")]
    TooShort,
    /// Longer than [`super::MAX_PACKET`].
    #[error("packet too long")]
    TooLong,
    /// Does not start with the Keyring gossip magic bytes.
    #[error("bad magic")]
    BadMagic,
    /// A protocol version this build does not speak.
    #[error("unsupported version")]
    UnsupportedVersion,
    /// A packet kind this build does not know.
    #[error("unknown packet kind")]
    UnknownKind,
    /// The cluster name is empty, too long or has characters outside `[A-Za-z0-9_.-]`.
    #[error("bad cluster name")]
    BadCluster,
    /// The node name is not `name@host` with allowed characters.
    #[error("bad node name")]
    BadNodeName,
    /// Bytes left between the last field and the tag, or a length that overruns.
    #[error("malformed length")]
    BadLength,
}
