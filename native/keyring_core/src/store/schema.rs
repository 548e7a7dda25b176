//! Table layout. Keys are raw bytes so the on-disk order is the cid order.
//!
//! - `blobs`:  cid (32 bytes) → blob record: kind (u8) ‖ size (u64, big-endian)
//!   ‖ the bytes themselves for blobs up to [`INLINE_MAX`] (kind 0), nothing
//!   more for larger blobs (kind 1), whose bytes are in `chunks`
//! - `chunks`: cid ‖ chunk index (u32, big-endian) → chunk bytes (≤ [`CHUNK_SIZE`])
//! - `refs`:   name → value (small mutable pointers, e.g. a log head)
//! - `meta`:   counters and the format version

use redb::TableDefinition;

/// Size of one stored chunk of a large blob.
pub const CHUNK_SIZE: usize = 256 * 1024;
/// Blobs up to this size are stored inline in their `blobs` record: one
/// B-tree insert per put, one lookup per get.
pub const INLINE_MAX: usize = 16 * 1024;
/// Largest accepted ref name.
pub const MAX_REF_NAME: usize = 1024;
/// Largest accepted ref value.
pub const MAX_REF_VALUE: usize = 64 * 1024;

pub(crate) const FORMAT_VERSION: u64 = 1;

pub(crate) const BLOBS: TableDefinition<'_, &[u8], &[u8]> = TableDefinition::new("blobs");
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

/// Number of chunks a chunked blob of `size` bytes is stored in.
pub(crate) fn chunk_count(size: u64) -> u32 {
    size.div_ceil(CHUNK_SIZE as u64) as u32
}

const KIND_INLINE: u8 = 0;
const KIND_CHUNKED: u8 = 1;
const RECORD_HEADER: usize = 9;

/// A decoded `blobs` record.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BlobRecord<'a> {
    pub(crate) size: u64,
    /// The bytes, for inline blobs.
    pub(crate) inline: Option<&'a [u8]>,
}

impl<'a> BlobRecord<'a> {
    pub(crate) fn decode(bytes: &'a [u8]) -> Result<Self, super::StoreError> {
        let bad = || super::StoreError::Corrupted("malformed blob record".into());
        if bytes.len() < RECORD_HEADER {
            return Err(bad());
        }
        let size = u64::from_be_bytes(bytes[1..RECORD_HEADER].try_into().map_err(|_| bad())?);
        match bytes[0] {
            KIND_INLINE if bytes.len() - RECORD_HEADER == size as usize => Ok(Self {
                size,
                inline: Some(&bytes[RECORD_HEADER..]),
            }),
            KIND_CHUNKED if bytes.len() == RECORD_HEADER => Ok(Self { size, inline: None }),
            _ => Err(bad()),
        }
    }
}

/// The record of an inline blob.
pub(crate) fn inline_record(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(RECORD_HEADER + data.len());
    out.push(KIND_INLINE);
    out.extend_from_slice(&(data.len() as u64).to_be_bytes());
    out.extend_from_slice(data);
    out
}

/// The record of a chunked blob.
pub(crate) fn chunked_record(size: u64) -> [u8; RECORD_HEADER] {
    let mut out = [0u8; RECORD_HEADER];
    out[0] = KIND_CHUNKED;
    out[1..].copy_from_slice(&size.to_be_bytes());
    out
}
