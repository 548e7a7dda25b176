//! Verified streaming: BLAKE3 hash trees cut at 16 KiB chunk groups, so a
//! blob can be sent in pieces and every piece checked against the blob's
//! cid (its BLAKE3 hash) as it arrives. A provider that lies is caught within
//! one group; a receiver stores only what was checked.
//!
//! - [`Tree`]: the tree's geometry for a blob size.
//! - [`OutboardBuilder`], [`outboard`], [`OutboardChecker`]: a blob's parent
//!   hashes (its *outboard*, 0.39 % of its size), built in the same pass as
//!   the hash.
//! - [`GroupRanges`]: sets of groups (requests, what a partial blob has,
//!   what it misses) and their bounded wire form.
//! - [`Encoder`]: the provider's side; [`Decoder`]: the receiver's side.
//!
//! Everything here is I/O-free: the encoder says which bytes it needs and the
//! decoder takes bytes pushed in, so the same code serves a store on disk, a
//! QUIC stream, or a test holding everything in memory. The stream format,
//! the outboard layout and the group size are those of bao-tree as iroh-blobs
//! uses it (chunk log 4); `tests/verified_compat.rs` checks they agree byte
//! for byte.

mod decoder;
mod encoder;
mod error;
mod outboard;
mod ranges;
mod tree;
mod walk;

pub use decoder::{Decoder, Step, VerifiedGroup};
pub use encoder::{Encoder, Need};
pub use error::{DecodeError, EncodeError, OutboardError, RangesError};
pub use outboard::{outboard, OutboardBuilder, OutboardChecker};
pub use ranges::{GroupRanges, MAX_BOUNDARIES};
pub use tree::{Cv, Tree, GROUP_SIZE, PAIR_LEN};
