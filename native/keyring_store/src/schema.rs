//! Table layout and record formats. Keys are raw bytes so that the on-disk
//! order is the cid order.
//!
//! - `blobs`: cid (32 bytes) → blob record: kind (u8) ‖ size (u64, BE) ‖ …
//!   - kind 0, *inline* (≤ [`INLINE_MAX`] bytes): the bytes follow.
//!   - kind 2, *file*: outboard kind (u8) ‖ the outboard when inline (kind 0,
//!     ≤ [`OUTBOARD_INLINE_MAX`] bytes); kind 1 means `<cid>.obao` beside
//!     the data file `<cid>.data` (see [`crate::layout`]).
//!   - kind 1 is format 1's chunked blob (bytes in `chunks`); opening a
//!     format-1 store moves those to files ([`crate::migrate`]).
//! - `partials`: cid → partial record: version (u8) ‖ size (u64) ‖ file id
//!   (u64) ‖ flags (u8; bit 0: size proven) ‖ the verified groups as a
//!   [`GroupRanges`] wire form.
//! - `tags`: tag kind (u8) ‖ scope (32 bytes: a keyring id, zeros for pins) ‖
//!   name → cid.
//! - `protect`: cid ‖ tag kind ‖ scope → number of tags of that kind and
//!   scope naming the cid. "Is cid shared in keyring K?" is one lookup;
//!   "is cid protected at all?" is one range probe.
//! - `refs`: name → value (small mutable pointers); `meta`: counters and
//!   the format version.

use keyring_core::hash::Digest;
use keyring_core::verified::GroupRanges;
use redb::TableDefinition;

use crate::StoreError;

/// Blobs up to this size are stored inline in their `blobs` record: one
/// B-tree insert per put, one lookup per get. Larger ones are files.
pub const INLINE_MAX: usize = 16 * 1024;
/// Outboards up to this size (blobs up to ~4 MiB) are kept in the record.
pub const OUTBOARD_INLINE_MAX: usize = 16 * 1024;
/// Largest accepted ref name.
pub const MAX_REF_NAME: usize = 1024;
/// Largest accepted ref value.
pub const MAX_REF_VALUE: usize = 64 * 1024;
/// Largest accepted tag name.
pub const MAX_TAG_NAME: usize = 1024;

pub(crate) const FORMAT_VERSION: u64 = 2;

pub(crate) const BLOBS: TableDefinition<'_, &[u8], &[u8]> = TableDefinition::new("blobs");
/// Format 1 only: cid ‖ chunk index (u32 BE) → 256 KiB chunk.
pub(crate) const CHUNKS: TableDefinition<'_, &[u8], &[u8]> = TableDefinition::new("chunks");
pub(crate) const PARTIALS: TableDefinition<'_, &[u8], &[u8]> = TableDefinition::new("partials");
pub(crate) const TAGS: TableDefinition<'_, &[u8], &[u8]> = TableDefinition::new("tags");
pub(crate) const PROTECT: TableDefinition<'_, &[u8], u64> = TableDefinition::new("protect");
pub(crate) const REFS: TableDefinition<'_, &[u8], &[u8]> = TableDefinition::new("refs");
pub(crate) const META: TableDefinition<'_, &str, u64> = TableDefinition::new("meta");

pub(crate) const META_VERSION: &str = "format_version";
pub(crate) const META_COUNT: &str = "blob_count";
pub(crate) const META_BYTES: &str = "blob_bytes";
pub(crate) const META_PARTIALS: &str = "partial_count";
pub(crate) const META_SHARES: &str = "share_tags";
pub(crate) const META_PINS: &str = "pin_tags";
pub(crate) const META_NEXT_ID: &str = "next_file_id";

const KIND_INLINE: u8 = 0;
const KIND_CHUNKED: u8 = 1;
const KIND_FILE: u8 = 2;
const OUTBOARD_IN_RECORD: u8 = 0;
const OUTBOARD_IN_FILE: u8 = 1;
const HEADER: usize = 9;

/// Where a file blob's outboard is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OutboardAt<'a> {
    /// In the record.
    Record(&'a [u8]),
    /// In `<cid>.obao`.
    File,
}

/// A decoded `blobs` record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BlobRecord<'a> {
    Inline(&'a [u8]),
    File {
        size: u64,
        outboard: OutboardAt<'a>,
    },
    /// Format 1 (migrated on open).
    Chunked {
        size: u64,
    },
}

impl<'a> BlobRecord<'a> {
    pub(crate) fn decode(bytes: &'a [u8]) -> Result<Self, StoreError> {
        let bad = || StoreError::Corrupted("malformed blob record".into());
        if bytes.len() < HEADER {
            return Err(bad());
        }
        let size = u64::from_be_bytes(bytes[1..HEADER].try_into().map_err(|_| bad())?);
        let rest = &bytes[HEADER..];
        match bytes[0] {
            KIND_INLINE if rest.len() as u64 == size => Ok(Self::Inline(rest)),
            KIND_CHUNKED if rest.is_empty() => Ok(Self::Chunked { size }),
            KIND_FILE => match rest.split_first() {
                Some((&OUTBOARD_IN_RECORD, ob)) => Ok(Self::File {
                    size,
                    outboard: OutboardAt::Record(ob),
                }),
                Some((&OUTBOARD_IN_FILE, [])) => Ok(Self::File {
                    size,
                    outboard: OutboardAt::File,
                }),
                _ => Err(bad()),
            },
            _ => Err(bad()),
        }
    }

    pub(crate) fn size(&self) -> u64 {
        match *self {
            Self::Inline(b) => b.len() as u64,
            Self::File { size, .. } | Self::Chunked { size } => size,
        }
    }
}

/// The record of an inline blob.
pub(crate) fn inline_record(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER + data.len());
    out.push(KIND_INLINE);
    out.extend_from_slice(&(data.len() as u64).to_be_bytes());
    out.extend_from_slice(data);
    out
}

/// The record of a file blob; `outboard` when it is kept in the record.
pub(crate) fn file_record(size: u64, outboard: Option<&[u8]>) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER + 1 + outboard.map_or(0, <[u8]>::len));
    out.push(KIND_FILE);
    out.extend_from_slice(&size.to_be_bytes());
    match outboard {
        Some(ob) => {
            out.push(OUTBOARD_IN_RECORD);
            out.extend_from_slice(ob);
        }
        None => out.push(OUTBOARD_IN_FILE),
    }
    out
}

/// Format 1's key of chunk `index` of blob `cid`.
pub(crate) fn chunk_key(cid: &Digest, index: u32) -> [u8; 36] {
    let mut key = [0u8; 36];
    key[..32].copy_from_slice(cid);
    key[32..].copy_from_slice(&index.to_be_bytes());
    key
}

/// A decoded `partials` record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PartialRecord {
    pub(crate) size: u64,
    pub(crate) id: u64,
    pub(crate) size_verified: bool,
    pub(crate) have: GroupRanges,
}

const PARTIAL_VERSION: u8 = 1;

impl PartialRecord {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = vec![PARTIAL_VERSION];
        out.extend_from_slice(&self.size.to_be_bytes());
        out.extend_from_slice(&self.id.to_be_bytes());
        out.push(u8::from(self.size_verified));
        out.extend_from_slice(&self.have.encode());
        out
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, StoreError> {
        let bad = || StoreError::Corrupted("malformed partial record".into());
        if bytes.len() < 18 || bytes[0] != PARTIAL_VERSION {
            return Err(bad());
        }
        Ok(Self {
            size: u64::from_be_bytes(bytes[1..9].try_into().map_err(|_| bad())?),
            id: u64::from_be_bytes(bytes[9..17].try_into().map_err(|_| bad())?),
            size_verified: bytes[17] & 1 == 1,
            have: GroupRanges::decode(&bytes[18..]).map_err(|_| bad())?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip() {
        let ob = [9u8; 64];
        for (bytes, want) in [
            (inline_record(b"hi"), BlobRecord::Inline(b"hi")),
            (
                file_record(40_000, Some(&ob)),
                BlobRecord::File {
                    size: 40_000,
                    outboard: OutboardAt::Record(&ob),
                },
            ),
            (
                file_record(1 << 30, None),
                BlobRecord::File {
                    size: 1 << 30,
                    outboard: OutboardAt::File,
                },
            ),
        ] {
            assert_eq!(BlobRecord::decode(&bytes).unwrap(), want);
        }
        assert!(BlobRecord::decode(&[2, 0, 0, 0, 0, 0, 0, 0, 1, 1, 5]).is_err());
        let p = PartialRecord {
            size: 99_999,
            id: 7,
            size_verified: true,
            have: GroupRanges::from(2..5),
        };
        assert_eq!(PartialRecord::decode(&p.encode()).unwrap(), p);
    }
}
