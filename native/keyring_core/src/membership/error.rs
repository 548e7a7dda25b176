use thiserror::Error;

/// Why a membership entry, log operation or invite was refused. Every variant
/// names the rule that failed, and rules about one entry carry its `seq` (its
/// depth in the log; for a refused append or admission, the depth the entry
/// would have had), so operators can tell a forgery from a spent invite.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum MembershipError {
    /// The bytes are not a well-formed entry or invite.
    #[error("malformed {what}: {why}")]
    Malformed {
        /// What was being decoded (`entry`, `invite`, `key`, ...).
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
        /// Depth of the entry (0 for an invite).
        seq: u64,
    },
    /// The entry was signed by a key that is not a valid (unexpired) admin
    /// where the entry sits in the log.
    #[error("entry {seq} is signed by a key that is not an admin at that point")]
    NotAnAdmin {
        /// Depth of the entry.
        seq: u64,
    },
    /// Only the current root key may sign this entry (root rotation).
    #[error("entry {seq} must be signed by the current root key")]
    NotTheRoot {
        /// Depth of the entry.
        seq: u64,
    },
    /// The entry (or invite) belongs to another keyring.
    #[error("entry {seq} belongs to another keyring")]
    WrongKeyring {
        /// Depth of the entry (0 for an invite).
        seq: u64,
    },
    /// Strict linear logs only (`Log`): a different entry already holds this position.
    #[error("fork at entry {seq}: a different entry already holds this position")]
    Fork {
        /// Depth of the entry.
        seq: u64,
    },
    /// The entry's depth is not its parent's plus one, or (strict linear
    /// logs) it does not link to the entry before it.
    #[error("entry {seq} does not link to its parent")]
    BrokenChain {
        /// Depth claimed by the entry.
        seq: u64,
    },
    /// Strict linear logs only (`Log`): the entry leaves a gap.
    #[error("entry {seq} arrived while the log ends at {len}")]
    Gap {
        /// Depth claimed.
        seq: u64,
        /// Current log length.
        len: u64,
    },
    /// The entry's timestamp is earlier than its parent's.
    #[error("entry {seq} goes back in time")]
    TimeWentBackwards {
        /// Depth of the entry.
        seq: u64,
    },
    /// The entry's timestamp is further ahead of our clock than the allowed skew.
    #[error("entry {seq} is dated in the future")]
    FromTheFuture {
        /// Depth of the entry.
        seq: u64,
    },
    /// The operation is not valid in the state it applies to.
    #[error("entry {seq}: {why}")]
    InvalidOperation {
        /// Depth of the entry.
        seq: u64,
        /// What is wrong.
        why: &'static str,
    },
    /// The key was revoked: it can never be added again.
    #[error("entry {seq}: the key was revoked")]
    Revoked {
        /// Depth of the entry.
        seq: u64,
    },
    /// A join (or an admission) for a key the log already knows: an invite
    /// never renews or changes a member.
    #[error("entry {seq}: the key is already a member")]
    AlreadyMember {
        /// Depth of the entry.
        seq: u64,
    },
    /// The invite reached its use cap, counted from the log.
    #[error("entry {seq}: the invite was used {uses} times (cap {max_uses})")]
    InviteSpent {
        /// Depth of the entry.
        seq: u64,
        /// Joins that already spent it.
        uses: u32,
        /// Its cap.
        max_uses: u16,
    },
    /// The invite was revoked by a log entry.
    #[error("entry {seq}: the invite was revoked")]
    InviteRevoked {
        /// Depth of the entry.
        seq: u64,
    },
    /// The growth cap was reached: only revocations and root rotation are accepted.
    #[error("entry {seq}: the log is full (only revocations are accepted)")]
    LogFull {
        /// Depth of the entry.
        seq: u64,
    },
    /// The log is empty or does not start with a genesis entry.
    #[error("the log must start with a genesis entry signed by the root key")]
    NoGenesis,
    /// The invite expired.
    #[error("the invite expired")]
    InviteExpired,
    /// The invite names another joiner key.
    #[error("the invite is bound to another key")]
    InviteBoundToOtherKey,
    /// The invite's issuer is not a valid admin of the keyring now.
    #[error("the invite's issuer is not an admin")]
    IssuerNotAdmin,
    /// The issuer's joins in the last hour reached the admitting node's budget.
    #[error("the issuer admitted {joins} joins in the last hour (budget {budget})")]
    JoinBudgetExhausted {
        /// Joins by this issuer in the last hour, counted from the log.
        joins: u32,
        /// The budget.
        budget: u32,
    },
    /// The ring holds as many entries off its effective chain as it keeps.
    #[error("too many competing entries (forks) are held already")]
    TooManyForks,
}

impl MembershipError {
    /// Whether an entry refused for this reason is refused for good whatever
    /// its signature bytes and whenever it comes back: a rule its body breaks
    /// where it sits. Not a bad signature (another copy of the body may carry
    /// a good one), a date ahead of our clock, or the fork cap.
    pub(crate) fn is_final(&self) -> bool {
        !matches!(
            self,
            Self::BadSignature { .. }
                | Self::FromTheFuture { .. }
                | Self::TooManyForks
                | Self::WrongKeyring { .. }
        )
    }

    pub(crate) fn malformed(what: &'static str, why: &'static str) -> Self {
        Self::Malformed { what, why }
    }
}
