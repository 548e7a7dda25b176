//! Table layout. Keys are raw bytes so the on-disk order is the cid order.
//!
//! - `blobs`:  cid (32 bytes) → blob size (u64)
//! - `chunks`: cid ‖ chunk index (u32, big-endian) → chunk bytes (≤ [`CHUNK_SIZE`])
//! - `refs`:   name → value (small mutable pointers, e.g. a log head)
//! - `meta`:   counters and the format version

use redb::TableDefinition;

/// Size of one stored chunk. Blobs up to this size are one chunk.
pub const CHUNK_SIZE: usize = 256 * 1024;
/// Largest accepted ref name.
pub const MAX_REF_NAME: usize = 1024;
/// Largest accepted ref value.
pub const MAX_REF_VALUE: usize = 64 * 1024;

pub(crate) const FORMAT_VERSION: u64 = 1;

pub(crate) const BLOBS: TableDefinition<'_, &[u8], u64> = TableDefinition::new("blobs");
pub(crate) const CHUNKS: TableDefinition<'_, &[u8], &[u8]> = TableDefinition::new("chunks");
pub(crate) const REFS: TableDefinition<'_, &[u8], &[u8]> = TableDefinition::new("refs");
pub(crate) const META: TableDefinition<'_, &str, u64> = TableDefinition::new("meta");

pub(crate) const META_VERSION: &str = "format_version";
pub(crate) const META_COUNT: &str = "blob_count";
pub(crate) const META_BYTES: &str = "blob_bytes";

/// The key of chunk `index` of blob `cid`.
pub(crate) fn chunk_key(cid: &[u8; 32], index: u32) -> [u8; 36] {
    let mut key = [0u8; 36];
    key[..32].copy_from_slice(cid);
    key[32..].copy_from_slice(&index.to_be_bytes());
    key
}

/// Number of chunks a blob of `size` bytes is stored in (an empty blob has one
/// empty chunk, so every blob has at least one).
pub(crate) fn chunk_count(size: u64) -> u32 {
    (size.div_ceil(CHUNK_SIZE as u64)).max(1) as u32
}
