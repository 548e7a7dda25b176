//! Keyring's content-addressed store: BLAKE3 cid → bytes.
//!
//! # Design
//!
//! - **One index, files beside it.** A redb database holds the index: blob
//!   records, partial blobs, tags and refs. Blobs up to 16 KiB live inline
//!   in their record (one B-tree insert per put); larger ones are files under
//!   `blobs/`, each with its *outboard* (the BLAKE3 tree's parent hashes at
//!   16 KiB groups, [`keyring_core::verified`]) inline in the record when
//!   small, else in a file beside it. See [`layout`] for the files.
//! - **Group commit.** One writer thread ([`Committer`]) turns every write
//!   waiting in its queue into one durable transaction, then answers each
//!   caller: many writers share one fsync, and no caller hears "ok" before
//!   its write is on disk. It is also the only thread that moves files into
//!   `blobs/` or removes them, in step with the index.
//! - **Large blobs at disk speed.** Ingest threads write large blobs to
//!   `tmp/` in one pass (hash + outboard + write, kernel writeback started
//!   behind the writer), fsync them, and hand them to the writer thread,
//!   which renames them into place, fsyncs the directory and commits. Blobs
//!   up to 4 MiB are fsynced by the writer instead, a batch's files in
//!   parallel so they share journal commits (medium blobs would otherwise
//!   pay one fsync each). `bench/sync.exs`: `put_file` of 256 MiB at
//!   0.8–1.1× `dd conv=fsync` measured in the same runs.
//! - **Outboards at put time.** The outboard falls out of the hash the put
//!   computes anyway: measured, ingest with it took 1.01–1.05× the time of
//!   ingest without it, while computing it lazily would make the first
//!   serve of a 256 MiB blob wait 125–165 ms (a pass over the whole file,
//!   from the page cache at best).
//! - **Reads** of small blobs hit a memory cache on the caller's thread; the
//!   rest go to reader threads that open the blob and let the caller's reply
//!   read it (one copy). An opened blob also serves verified streams of any
//!   ranges ([`OpenBlob::verified`]).
//! - **Partial blobs** ([`PartialWriter`]) are assembled from verified groups
//!   written at their offsets, with their verified groups recorded durably.
//! - **Tags** ([`tags`]) share blobs into keyrings and pin them; they are the
//!   only thing protecting blobs from GC ([`gc`]), which runs in bounded
//!   steps on the writer thread.
//!
//! Nothing here depends on the BEAM: the NIF adapts [`WriteReply`] and
//! [`ReadReply`] to messages, and a Rust protocol handler can use a
//! [`Store`] directly.
#![warn(missing_docs, unreachable_pub, rust_2018_idioms)]
#![deny(unsafe_code)]

mod apply;
mod blob_cache;
mod blob_store;
mod committer;
mod error;
pub mod gc;
mod gc_reach;
mod ingest;
pub mod layout;
mod live;
mod migrate;
mod open_blob;
mod partial;
mod read_pool;
mod schema;
mod store;
mod sys;
pub mod tags;

pub use blob_cache::CacheStats;
pub use blob_store::{BlobStore, PartialInfo, RefEntry, Stats};
pub use committer::{
    ChannelReply, Committer, CommitterStats, PartialState, Payload, WriteOp, WriteOutcome,
    WriteReply,
};
pub use error::StoreError;
pub use gc::{GcCursor, GcProgress};
pub use ingest::{BlobWriter, Staged};
pub use live::LiveGuard;
pub use open_blob::{OpenBlob, VerifiedStream};
pub use partial::{PartialOpen, PartialWriter};
pub use read_pool::{ReadPool, ReadReply};
pub use schema::{INLINE_MAX, MAX_REF_NAME, MAX_REF_VALUE, MAX_TAG_NAME, OUTBOARD_INLINE_MAX};
pub use store::{Store, StoreConfig};
pub use tags::{RingId, Tag, TagScope};
