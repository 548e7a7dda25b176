//! Feeds: signed, hash-chained, append-only logs, one per author and keyring
//! (Egregore's model).
//!
//! Each [`Entry`] carries its author, sequence number (from 1), the hash of
//! its predecessor, a timestamp, a content type and its content (inline up
//! to 16 KiB, or a blob's cid), signed by the author's Ed25519 key under the
//! feed's own signing domain ([`SIGN_DOMAIN`]).
//!
//! ```text
//! entry   = body signature:[64]
//! body    = version:u8(=1) keyring:[32] author:[32] seq:u64 prev:[32]
//!           timestamp_ms:u64 type_len:u8 content_type content
//! content = 0:u8 cid:[32] size:u64        (a blob)
//!         | 1:u8 len:u16 bytes            (inline, len <= 16384)
//! ```
//!
//! Integers are big-endian; `prev` is all zeros exactly for seq 1; the
//! content type is 1..=64 bytes of `[a-z0-9/._+-]`. An entry's hash is BLAKE3
//! (derived key `"keyring feed entry hash v1"`) over the body, so the chain
//! never depends on signature bytes. The encoding is canonical.
//!
//! [`FeedBook`] ingests entries in any order: it verifies each, chains what
//! links, holds what arrives before its predecessor (bounded by [`Limits`])
//! and promotes it when the gap fills, and reports forks without merging them.

mod book;
mod chain;
mod entry;
mod error;
pub mod wire;

pub use book::{FeedBook, FeedId, Limits};
pub use chain::{Ingested, Status};
pub use entry::{
    valid_content_type, Content, Entry, EntryBody, EntryHash, PublicKey, MAX_CONTENT_TYPE,
    MAX_ENCODED, MAX_INLINE, SIGN_DOMAIN, VERSION,
};
pub use error::FeedError;

#[cfg(test)]
mod tests;
