//! Keyrings (trust groups): the membership log, its fork rule, and invites.
//!
//! # Design
//!
//! A keyring is identified by its genesis root Ed25519 key. Its membership is a
//! set of signed [`Entry`]s; each names its parent by hash, so the entries
//! form a tree rooted at the genesis. The *effective chain* is one path from
//! the genesis to a leaf, picked by a deterministic rule, and the membership
//! is the state at its end. **The membership is a pure function of the set of
//! verified entries a node holds** (not of their arrival order), so nodes that
//! hold the same entries agree.
//!
//! - **Verified once, extended incrementally** ([`Ring`]). An entry is judged
//!   when its parent is known, against the state after its parent, and its
//!   signature is checked then, once. A known entry costs a hash lookup; an
//!   entry with an unknown parent is held unverified (at most
//!   [`MAX_PENDING`]) until the parent arrives. The state along the chain is
//!   a versioned index, so the state at any earlier position (a fork point)
//!   is a lookup, never a replay. Appending costs no verification.
//! - **Validity** (`rules.rs`): an entry is valid if its signer is an
//!   admin whose right has not expired at the entry's timestamp (admins
//!   expire like members), its timestamp is not before its parent's (nor more
//!   than [`MAX_CLOCK_SKEW_MS`] after the receiver's clock) and its operation
//!   fits the state: a revoked key never comes back; the root key can be
//!   neither revoked nor demoted, only rotated.
//! - **Fork rule** (`fork.rs`): at a fork point, a branch that removes
//!   (revokes, demotes, or rotates the root away from) a key that signed in
//!   another branch dominates it, if the remover was an admin at the fork
//!   point and is not itself removed in the other branch by such an admin; so
//!   a removed admin cannot keep access by forking, from any earlier
//!   position. Otherwise the branch the root signed in, then the one more of
//!   the fork point's admins signed in, then the lowest first-entry hash.
//!   Admins added inside a branch have no weight in it. Beyond the chain, a
//!   key that any held branch revokes is refused if the revoker is an admin,
//!   or the root, at the effective head.
//! - **Invites in the log**: a join is an [`Op::Join`] entry recording the
//!   invite's issuer, token and use cap, so every admin counts its uses from
//!   the log; an [`Op::RevokeInvite`] entry revokes one; an invite may be
//!   bound to the joiner's key; a join is only for a key the log does not
//!   know (an invite never changes an existing member's roles or expiry);
//!   admission also applies a per-issuer budget of joins per hour counted
//!   from the log ([`Ring::admit`]).
//! - **Root rotation**: [`Op::RotateRoot`], signed by the current root, hands
//!   the root role to a new key; the keyring id stays the genesis key and the
//!   old root stops being an admin (it can then be revoked like a member).
//! - **Bounded growth**: entries that add something are refused beyond depth
//!   [`MAX_ENTRIES`] ([`MembershipError::LogFull`]); revocations and
//!   demotions are always accepted (each removes a key the log holds, so they
//!   are bounded by what was added), and so is root rotation (only the root
//!   can sign it). With incremental verification a revocation on a log of
//!   100,000 entries costs one signature check. Competing branches are held
//!   up to [`MAX_SIDE_ENTRIES`] entries; beyond it new ones are refused
//!   ([`MembershipError::TooManyForks`]), the one bound under which the
//!   pure-function law stops holding.
//!
//! Known limit: an admin's expiry is checked against the timestamps its
//! entries carry. After its right expired, an admin can still sign entries
//! dated before the expiry: extending a chain whose head is older than that,
//! or forking from such a position (the fork rule then weighs its branch like
//! any other). Remove an admin (`RemoveAdmin`) to cut it off for good: a
//! removal dominates its forks.
//!
//! All signatures use [`crate::identity::verify_strict`], the one rule Keyring
//! applies everywhere; entry and invite signatures are domain-separated
//! ([`SIGN_DOMAIN`], [`INVITE_DOMAIN`]) and their encodings versioned.
//! Revocation is by key id, so it cannot be dodged by re-encoding a signature.

mod admission;
mod chain;
mod entry;
mod error;
mod fork;
mod ingest;
mod invite;
mod linear;
mod pending;
mod rejections;
mod resolve;
mod ring;
mod rules;
mod shared;
mod side_state;
mod summary;
mod sync;

pub use admission::JOIN_BUDGET_WINDOW_MS;
pub use entry::{
    valid_role, Body, Entry, EntryHash, InviteToken, Op, PublicKey, ALG_ED25519, MAX_BODY,
    MAX_GENESIS_ADMINS, MAX_NAME_LEN, MAX_ROLES, MAX_ROLE_LEN, SIGN_DOMAIN, VERSION,
};
pub use error::MembershipError;
pub use ingest::{IngestReport, Switch};
pub use invite::{Invite, InviteFields, INVITE_DOMAIN, MAX_ADDR_LEN};
pub use linear::{merge_linear, open_linear};
pub use pending::MAX_PENDING;
pub use ring::{Ring, MAX_CLOCK_SKEW_MS, MAX_REPORTED_ERRORS, MAX_SIDE_ENTRIES};
pub use rules::MAX_ENTRIES;
pub use shared::{Published, Registry, SharedRing};
pub use summary::{ForkView, MemberView, Summary};

#[cfg(test)]
mod tests;
