use thiserror::Error;

/// Why a membership entry, log or invite was rejected. Every variant names the
/// rule that failed so operators can tell a forgery from a fork from a typo.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum MembershipError {
    /// The bytes are not a well-formed entry or invite.
    #[error("malformed {what}: {why}")]
    Malformed {
        /// What was being decoded (`entry`, `invite`, `log`).
        what: &'static str,
        /// The first rule the bytes broke.
        why: &'static str,
    },
    /// The format version is not one this build understands.
    #[error("unsupported version {0}")]
    UnsupportedVersion(u8),
    /// A signature did not verify under the strict Ed25519 rule.
    #[error("bad signature on entry {seq}")]
    BadSignature {
        /// Position in the log.
        seq: u64,
    },
    /// The entry was signed by a key that is not an admin at that point of the log.
    #[error("entry {seq} is signed by a key that is not an admin at that point")]
    NotAnAdmin {
        /// Position in the log.
        seq: u64,
    },
    /// The entry belongs to another keyring.
    #[error("entry {seq} belongs to another keyring")]
    WrongKeyring {
        /// Position in the log.
        seq: u64,
    },
    /// Two different entries claim the same position: the log forked.
    #[error("fork at entry {seq}: a different entry already holds this position")]
    Fork {
        /// Position in the log.
        seq: u64,
    },
    /// The entry does not link to the hash of the entry before it.
    #[error("entry {seq} does not link to the previous entry")]
    BrokenChain {
        /// Position in the log.
        seq: u64,
    },
    /// The entry's sequence number leaves a gap.
    #[error("entry {seq} arrived while the log ends at {len}")]
    Gap {
        /// Position claimed.
        seq: u64,
        /// Current log length.
        len: u64,
    },
    /// The entry's timestamp is earlier than its predecessor's.
    #[error("entry {seq} goes back in time")]
    TimeWentBackwards {
        /// Position in the log.
        seq: u64,
    },
    /// The operation is not valid in the current state (e.g. removing a non-member).
    #[error("entry {seq}: {why}")]
    InvalidOperation {
        /// Position in the log.
        seq: u64,
        /// What is wrong.
        why: &'static str,
    },
    /// The log is empty or does not start with a genesis entry.
    #[error("the log must start with a genesis entry signed by the root key")]
    NoGenesis,
    /// The invite expired.
    #[error("the invite expired")]
    InviteExpired,
}

impl MembershipError {
    pub(crate) fn malformed(what: &'static str, why: &'static str) -> Self {
        Self::Malformed { what, why }
    }
}
