//! Signed refs: named, mutable pointers to a root cid, published by an author
//! in a keyring.
//!
//! A ref is `(keyring, author, name) → root` at sequence number `seq`, signed
//! by the author's Ed25519 key under its own signing domain
//! ([`SIGN_DOMAIN`], never the membership or invite domains). The key in the
//! ref is the key that must have signed it, so only its author can move a
//! ref. A newer ref replaces an older one only with a strictly higher `seq`
//! ([`SignedRef::supersedes`]): a replayed older ref is refused, and two
//! different refs at one `seq` are reported as an equivocation.
//!
//! ```text
//! ref  = body signature:[64]
//! body = version:u8(=1) keyring:[32] author:[32] seq:u64 timestamp_ms:u64
//!        root:[32] name_len:u8 name
//! ```
//!
//! Integers are big-endian. `seq` starts at 1; `name` is 1..=128 bytes of
//! printable ASCII without spaces (`0x21..=0x7e`). The encoding is canonical:
//! a decoder rejects anything a writer would not produce.

mod error;
mod signed_ref;

pub use error::RefError;
pub use signed_ref::{
    valid_name, RefBody, SignedRef, Update, MAX_ENCODED, MAX_NAME_LEN, SIGN_DOMAIN, VERSION,
};

#[cfg(test)]
mod tests;
