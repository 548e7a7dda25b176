//! The content-addressed blob store: BLAKE3 cid → bytes, on one redb database.
//!
//! Reads go straight to redb from any thread. Writes go through one writer
//! thread (the [`Committer`]) that groups every write waiting in its queue into
//! one durable redb transaction, then answers each caller: many concurrent
//! writers share one fsync, and no caller hears "ok" before its data is on disk.
//!
//! Small blobs (≤ [`INLINE_MAX`]) live inline in their index record; larger
//! ones are split into chunks of [`CHUNK_SIZE`] bytes so they can be imported
//! from a file and read back chunk by chunk without holding them whole.

mod blob_cache;
mod blob_store;
mod blob_writer;
mod committer;
mod error;
mod read_pool;
mod schema;

pub use blob_cache::CacheStats;
pub use blob_store::{BlobStore, RefEntry, Stats};
pub use blob_writer::BlobWriter;
pub use committer::{Committer, CommitterStats, Payload, WriteOp, WriteOutcome, WriteReply};
pub use error::StoreError;
pub use read_pool::{ReadPool, ReadReply};
pub use schema::{CHUNK_SIZE, INLINE_MAX, MAX_REF_NAME, MAX_REF_VALUE};
