//! Partial blobs in the index: start, record progress, complete, drop.

use std::fs;

use keyring_core::hash::Digest;
use keyring_core::verified::{GroupRanges, Tree, GROUP_SIZE};
use redb::ReadableTable;

use super::{Effects, OpResult, Tables};
use crate::committer::{PartialState, WriteOutcome};
use crate::layout::FileKind;
use crate::schema::{file_record, PartialRecord, INLINE_MAX, OUTBOARD_INLINE_MAX};
use crate::StoreError;

impl Tables<'_> {
    /// Removes the partial blob of `cid` and, after the commit, its files;
    /// the bytes it had verified.
    pub(crate) fn delete_partial(
        &mut self,
        cid: &Digest,
        fx: &mut Effects,
    ) -> Result<Option<u64>, StoreError> {
        let Some(guard) = self.partials.remove(cid.as_slice())? else {
            return Ok(None);
        };
        let record = PartialRecord::decode(guard.value());
        drop(guard);
        self.changed = true;
        self.partial_count = self.partial_count.saturating_sub(1);
        let Ok(record) = record else {
            return Ok(Some(0));
        };
        fx.unlink(self.layout.partial_file(cid, record.id, FileKind::Data));
        fx.unlink(self.layout.partial_file(cid, record.id, FileKind::Outboard));
        let tree = Tree::new(record.size);
        Ok(Some(record.have.count_below(tree.groups()) * GROUP_SIZE))
    }

    pub(super) fn partial(&self, cid: &Digest) -> Result<Option<PartialRecord>, StoreError> {
        match self.partials.get(cid.as_slice())? {
            Some(v) => PartialRecord::decode(v.value()).map(Some),
            None => Ok(None),
        }
    }

    pub(super) fn begin_partial(
        &mut self,
        cid: &Digest,
        size: u64,
        size_verified: bool,
        fx: &mut Effects,
    ) -> Result<OpResult, StoreError> {
        if size <= INLINE_MAX as u64 {
            return Ok(Err(StoreError::TooSmallForPartial(size)));
        }
        if self.blobs.get(cid.as_slice())?.is_some() {
            return Ok(Ok(WriteOutcome::Stored(*cid)));
        }
        if let Some(mut rec) = self.partial(cid)? {
            if rec.size == size {
                if size_verified && !rec.size_verified {
                    rec.size_verified = true;
                    self.partials
                        .insert(cid.as_slice(), rec.encode().as_slice())?;
                    self.changed = true;
                }
                return Ok(Ok(WriteOutcome::Partial(state(&rec))));
            }
            if rec.size_verified || !size_verified {
                return Ok(Err(StoreError::SizeMismatch {
                    known: rec.size,
                    claimed: size,
                }));
            }
            // The size it was started with was a provider's unproven claim,
            // and now a proven one contradicts it: start over.
            self.delete_partial(cid, fx)?;
        }
        self.next_id += 1;
        let rec = PartialRecord {
            size,
            id: self.next_id,
            size_verified,
            have: GroupRanges::empty(),
        };
        self.partials
            .insert(cid.as_slice(), rec.encode().as_slice())?;
        self.changed = true;
        self.partial_count += 1;
        Ok(Ok(WriteOutcome::Partial(state(&rec))))
    }

    pub(super) fn save_partial(
        &mut self,
        cid: &Digest,
        id: u64,
        have: GroupRanges,
        size_verified: bool,
    ) -> Result<OpResult, StoreError> {
        let Some(mut rec) = self.partial(cid)?.filter(|r| r.id == id) else {
            return Ok(Err(StoreError::PartialGone));
        };
        rec.have = rec.have.union(&have).clip(Tree::new(rec.size).groups());
        rec.size_verified |= size_verified;
        self.partials
            .insert(cid.as_slice(), rec.encode().as_slice())?;
        self.changed = true;
        Ok(Ok(WriteOutcome::PartialSaved))
    }

    pub(super) fn complete_partial(
        &mut self,
        cid: &Digest,
        id: u64,
        fx: &mut Effects,
    ) -> Result<OpResult, StoreError> {
        let Some(rec) = self.partial(cid)?.filter(|r| r.id == id) else {
            return Ok(Err(StoreError::PartialGone));
        };
        let tree = Tree::new(rec.size);
        let missing = tree.groups() - rec.have.count_below(tree.groups());
        if missing > 0 {
            return Ok(Err(StoreError::Incomplete { missing }));
        }
        if self.blobs.get(cid.as_slice())?.is_some() {
            self.delete_partial(cid, fx)?;
            return Ok(Ok(WriteOutcome::Stored(*cid)));
        }
        let part_data = self.layout.partial_file(cid, id, FileKind::Data);
        let part_ob = self.layout.partial_file(cid, id, FileKind::Outboard);
        let outboard = if tree.outboard_size() <= OUTBOARD_INLINE_MAX as u64 {
            match fs::read(&part_ob) {
                Ok(ob) if ob.len() as u64 == tree.outboard_size() => Some(ob),
                Ok(_) => {
                    return Ok(Err(StoreError::Corrupted(
                        "partial outboard has the wrong size".into(),
                    )))
                }
                Err(e) => return Ok(Err(e.into())),
            }
        } else {
            None
        };
        let dir = self.layout.shard_dir(cid);
        let data_path = self.layout.blob_file(cid, FileKind::Data);
        if let Err(e) = fs::rename(&part_data, &data_path) {
            return Ok(Err(e.into()));
        }
        fx.linked(data_path, dir.clone());
        if outboard.is_none() {
            let ob_path = self.layout.blob_file(cid, FileKind::Outboard);
            if let Err(e) = fs::rename(&part_ob, &ob_path) {
                // Put the data back where the partial record expects it.
                let data_path = fx.unlink_linked();
                let _ = data_path.map(|p| fs::rename(p, &part_data));
                return Ok(Err(e.into()));
            }
            fx.linked(ob_path, dir);
        }
        self.partials.remove(cid.as_slice())?;
        self.changed = true;
        self.partial_count = self.partial_count.saturating_sub(1);
        fx.unlink(part_ob);
        let record = file_record(rec.size, outboard.as_deref());
        self.blobs.insert(cid.as_slice(), record.as_slice())?;
        self.count += 1;
        self.bytes += rec.size;
        Ok(Ok(WriteOutcome::Stored(*cid)))
    }
}

fn state(rec: &PartialRecord) -> PartialState {
    PartialState {
        id: rec.id,
        size: rec.size,
        size_verified: rec.size_verified,
        have: rec.have.clone(),
    }
}
