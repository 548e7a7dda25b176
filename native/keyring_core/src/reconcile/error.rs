use thiserror::Error;

/// Why a reconciliation message or item set was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ReconcileError {
    /// The bytes are not a well-formed negentropy v1 message.
    #[error("malformed reconciliation message: {0}")]
    Malformed(&'static str),
    /// The message is longer than the configured limit.
    #[error("reconciliation message of {len} bytes exceeds the limit of {max}")]
    TooLarge {
        /// The message's length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The peer speaks another protocol version (`0x61` is version 1).
    #[error("unsupported negentropy protocol version byte {0:#x}")]
    UnsupportedVersion(u8),
    /// An item uses the timestamp reserved for "infinity" (`u64::MAX`).
    #[error("an item uses the reserved timestamp u64::MAX")]
    ReservedTimestamp,
    /// A frame limit below the protocol's minimum of 4096 bytes.
    #[error("the frame limit must be at least 4096 bytes")]
    FrameLimitTooSmall,
    /// `initiate` was called twice on one session.
    #[error("this session already sent its initial message")]
    AlreadyInitiated,
}
