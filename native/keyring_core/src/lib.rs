//! Keyring's core: everything that touches bytes, with no dependency on the BEAM.
//!
//! The NIF crate (`keyring_nif`) is a thin adapter over this crate: it decodes
//! terms, calls into these modules and encodes the answers. Everything here is
//! unit-tested with plain `cargo test`.
//!
//! - [`identity`]: Ed25519 keys, strict verification, the encrypted key file.
//! - [`hash`]: BLAKE3 content hashing (one-shot and streaming).
//! - [`gossip`]: LAN discovery packet codec (size-limited, never panics).
//! - [`membership`]: keyrings (trust groups): the signed membership log and invites.
//! - [`wire`]: typed frames and the restricted term codec for bytes from peers.
//! - [`verified`]: verified streaming (BLAKE3 trees at 16 KiB groups, outboards, range sets).
//! - [`refs`]: signed refs (named, author-signed pointers to a root cid).
//! - [`feed`]: signed, hash-chained per-author feeds (Egregore's model).
//! - [`reconcile`]: negentropy (protocol v1) range-based set reconciliation.
//! - [`dag`]: Merkle DAG nodes (directories, event chains), traversal, DAG sync.
#![warn(missing_docs, unreachable_pub, rust_2018_idioms)]
#![deny(unsafe_code)]

pub mod dag;
pub mod feed;
pub mod gossip;
pub mod hash;
pub mod identity;
pub mod membership;
pub mod reconcile;
pub mod refs;
pub mod transfer;
pub mod verified;
pub mod wire;
