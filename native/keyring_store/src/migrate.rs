//! Format 1 → 2: blobs over 16 KiB move from 256 KiB chunks in redb to files
//! beside it, each with its outboard. Runs once, in the transaction that
//! opens the store, so a crash leaves format 1 untouched (files already
//! written are orphans GC removes; the next open migrates again).

use std::fs;

use keyring_core::hash::Digest;
use redb::{ReadableTable, WriteTransaction};

use crate::ingest::{BlobWriter, StagedOutboard};
use crate::layout::{sync_dir, FileKind, Layout};
use crate::schema::{chunk_key, file_record, BlobRecord, BLOBS, CHUNKS};
use crate::StoreError;

pub(crate) fn from_v1(txn: &WriteTransaction, layout: &Layout) -> Result<(), StoreError> {
    let chunked: Vec<(Digest, u64)> = {
        let blobs = txn.open_table(BLOBS)?;
        let mut out = Vec::new();
        for entry in blobs.iter()? {
            let (k, v) = entry?;
            if let (Ok(cid), Ok(BlobRecord::Chunked { size })) =
                (Digest::try_from(k.value()), BlobRecord::decode(v.value()))
            {
                out.push((cid, size));
            }
        }
        out
    };
    let mut blobs = txn.open_table(BLOBS)?;
    let mut chunks = txn.open_table(CHUNKS)?;
    for (cid, size) in chunked {
        let mut writer = BlobWriter::create(layout.tmp_dir())?;
        let (first, last) = (chunk_key(&cid, 0), chunk_key(&cid, u32::MAX));
        for entry in chunks.range(first.as_slice()..=last.as_slice())? {
            let (_, v) = entry?;
            writer.write(v.value())?;
        }
        let mut staged = writer.finish()?;
        if staged.cid != cid || staged.size != size {
            return Err(StoreError::Corrupted(format!(
                "format-1 blob {} does not match its content",
                crate::layout::hex(&cid)
            )));
        }
        if let Some(file) = staged.unsynced.take() {
            file.sync_data()?;
        }
        fs::rename(&staged.data, layout.blob_file(&cid, FileKind::Data))?;
        staged.data = Default::default();
        let record = match &mut staged.outboard {
            StagedOutboard::Inline(ob) => file_record(size, Some(ob)),
            StagedOutboard::File(p) => {
                fs::rename(&*p, layout.blob_file(&cid, FileKind::Outboard))?;
                *p = Default::default();
                file_record(size, None)
            }
        };
        sync_dir(&layout.shard_dir(&cid))?;
        blobs.insert(cid.as_slice(), record.as_slice())?;
        chunks.retain_in::<&[u8], _>(first.as_slice()..=last.as_slice(), |_, _| false)?;
    }
    Ok(())
}
