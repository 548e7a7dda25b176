//! Keyrings (trust groups): the membership log and invites.
//!
//! A keyring is identified by its root Ed25519 public key. Its membership is an
//! append-only, hash-chained log of signed entries ([`Entry`]) that add or
//! remove members and admins; every entry must be signed by a key that is an
//! admin at that point of the log, and every node replays the whole log itself
//! ([`Log::from_encoded`]). A [`Snapshot`] lists the members valid at one
//! instant; the transport checks peers against it inside the TLS handshake.
//!
//! All signatures use [`crate::identity::verify_strict`], the one rule Keyring
//! applies everywhere. Revocation is by key id (`Op::RemoveMember`), so it
//! cannot be dodged by re-encoding a signature.

mod entry;
mod error;
mod invite;
mod log;

pub use entry::{
    valid_role, Body, Entry, EntryHash, Op, PublicKey, ALG_ED25519, MAX_BODY, MAX_GENESIS_ADMINS,
    MAX_NAME_LEN, MAX_ROLES, MAX_ROLE_LEN, SIGN_DOMAIN, VERSION,
};
pub use error::MembershipError;
pub use invite::{Invite, InviteFields, INVITE_DOMAIN, MAX_ADDR_LEN};
pub use log::{Appended, Log, Member, Snapshot, SnapshotMember, MAX_ENTRIES};

#[cfg(test)]
mod tests;
