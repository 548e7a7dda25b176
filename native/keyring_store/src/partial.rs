//! Partial blobs: a blob being assembled from verified groups, possibly from
//! several providers and across restarts.
//!
//! The store keeps, per partial blob, its size, whether that size is proven,
//! and which groups are verified and durable. Groups are written straight to
//! the blob's file at their offsets, and the parent pairs that verified them
//! to its outboard at their slots, so when every group is there the outboard
//! is complete too, and completing is a check of the outboard against the
//! root (0.39 % of the data) and a rename. Durability follows iroh-blobs:
//! data and outboard are fsynced first, the set of verified groups is
//! committed after ([`PartialWriter::save`]), so after `kill -9` the store
//! never claims a group whose bytes might not be on disk.

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::{FileExt, OpenOptionsExt};

use keyring_core::hash::Digest;
use keyring_core::verified::{
    DecodeError, Decoder, GroupRanges, OutboardChecker, Step, Tree, VerifiedGroup, PAIR_LEN,
};

use crate::committer::{WriteOp, WriteOutcome};
use crate::layout::FileKind;
use crate::live::LiveGuard;
use crate::{Store, StoreError};

/// What [`Store::partial`] found.
#[derive(Debug)]
pub enum PartialOpen {
    /// The blob is being assembled: write into it.
    Writer(PartialWriter),
    /// The blob is already complete.
    Complete,
}

/// Writes verified groups into a partial blob. While it exists, GC leaves
/// the partial blob alone (a tag keeps it across restarts).
#[derive(Debug)]
pub struct PartialWriter {
    store: Store,
    cid: Digest,
    tree: Tree,
    id: u64,
    data: File,
    outboard: File,
    /// Groups durable and recorded.
    have: GroupRanges,
    /// Groups written since the last save.
    written: GroupRanges,
    size_verified: bool,
    saved_size_verified: bool,
    _hold: LiveGuard,
}

fn open_file(path: &std::path::Path, len: u64) -> Result<File, StoreError> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)?;
    if file.metadata()?.len() != len {
        file.set_len(len)?;
    }
    Ok(file)
}

impl PartialWriter {
    pub(crate) fn open(
        store: &Store,
        cid: Digest,
        size: u64,
        size_verified: bool,
    ) -> Result<PartialOpen, StoreError> {
        let hold = store.blobs().hold(cid);
        let state = match store.write(WriteOp::BeginPartial {
            cid,
            size,
            size_verified,
        })? {
            WriteOutcome::Partial(state) => state,
            WriteOutcome::Stored(_) => return Ok(PartialOpen::Complete),
            other => return Err(StoreError::Io(format!("unexpected answer {other:?}"))),
        };
        let tree = Tree::new(state.size);
        let layout = store.blobs().layout();
        let data = open_file(
            &layout.partial_file(&cid, state.id, FileKind::Data),
            tree.size(),
        )?;
        let outboard = open_file(
            &layout.partial_file(&cid, state.id, FileKind::Outboard),
            tree.outboard_size(),
        )?;
        Ok(PartialOpen::Writer(Self {
            store: store.clone(),
            cid,
            tree,
            id: state.id,
            data,
            outboard,
            have: state.have,
            written: GroupRanges::empty(),
            size_verified: state.size_verified,
            saved_size_verified: state.size_verified,
            _hold: hold,
        }))
    }

    /// The blob's cid.
    pub fn cid(&self) -> &Digest {
        &self.cid
    }

    /// The blob's tree (its size and groups).
    pub fn tree(&self) -> Tree {
        self.tree
    }

    /// Whether the size is proven (the last group was verified).
    pub fn size_verified(&self) -> bool {
        self.size_verified
    }

    /// Groups written (saved or not).
    pub fn have(&self) -> GroupRanges {
        self.have.union(&self.written)
    }

    /// Groups still missing: what to ask providers for.
    pub fn missing(&self) -> GroupRanges {
        GroupRanges::from(0..self.tree.groups()).difference(&self.have())
    }

    /// A decoder for a stream of `ranges` of this blob, which refuses a
    /// stream claiming another size.
    pub fn decoder(&self, ranges: GroupRanges) -> Decoder {
        Decoder::new(self.cid, ranges, Some(self.tree.size()))
    }

    /// Writes a verified group (and the pairs that verified it) at its place.
    pub fn write(&mut self, group: &VerifiedGroup<'_>) -> Result<(), StoreError> {
        if group.root() != &self.cid || group.size() != self.tree.size() {
            return Err(StoreError::WrongBlob);
        }
        for (slot, pair) in group.parents() {
            self.outboard.write_all_at(pair, slot * PAIR_LEN as u64)?;
        }
        self.data.write_all_at(group.data(), group.offset())?;
        self.written.insert(group.index()..group.index() + 1);
        if group.is_last() {
            self.size_verified = true;
        }
        Ok(())
    }

    /// Decodes a verified stream of `ranges` held in `stream` and writes
    /// every group of it; returns how many groups were written. Groups before
    /// a failure are written (they were verified), nothing after it.
    pub fn write_stream(&mut self, ranges: GroupRanges, stream: &[u8]) -> Result<u64, StoreError> {
        let mut decoder = self.decoder(ranges);
        let (mut pos, mut groups) = (0, 0);
        loop {
            let (used, step) = decoder.push(&stream[pos..]).map_err(bad_stream)?;
            pos += used;
            match step {
                Step::Group(g) => {
                    self.write(&g)?;
                    groups += 1;
                }
                Step::Done if pos == stream.len() => return Ok(groups),
                Step::Done => return Err(bad_stream(DecodeError::TrailingBytes)),
                Step::NeedMore => {
                    let group = decoder.next_group().unwrap_or(0);
                    return Err(bad_stream(DecodeError::Truncated { group }));
                }
            }
        }
    }

    /// Makes the groups written so far durable: fsyncs data and outboard,
    /// then records them. After this, a crash keeps them.
    pub fn save(&mut self) -> Result<(), StoreError> {
        if self.written.is_empty() && self.size_verified == self.saved_size_verified {
            return Ok(());
        }
        self.data.sync_data()?;
        self.outboard.sync_data()?;
        let have = self.have();
        match self.store.write(WriteOp::SavePartial {
            cid: self.cid,
            id: self.id,
            have: have.clone(),
            size_verified: self.size_verified,
        })? {
            WriteOutcome::PartialSaved => {
                self.have = have;
                self.written = GroupRanges::empty();
                self.saved_size_verified = self.size_verified;
                Ok(())
            }
            other => Err(StoreError::Io(format!("unexpected answer {other:?}"))),
        }
    }

    /// Turns the partial blob into a blob once every group is there: saves,
    /// checks the outboard against the root, and links the files in. The
    /// blob is then visible to reads like any other.
    pub fn complete(mut self) -> Result<Digest, StoreError> {
        let missing = self.missing().count_below(self.tree.groups());
        if missing > 0 {
            return Err(StoreError::Incomplete { missing });
        }
        self.save()?;
        let mut checker = OutboardChecker::new(self.cid, self.tree.size());
        let mut buf = vec![0u8; 1 << 20];
        let mut reader = (&self.outboard).take(self.tree.outboard_size());
        let mut ob = std::io::BufReader::new(&mut reader);
        loop {
            let n = read_full(&mut ob, &mut buf)?;
            if n == 0 {
                break;
            }
            checker
                .push_all(&buf[..n])
                .map_err(|e| StoreError::Corrupted(format!("partial blob outboard: {e}")))?;
        }
        checker
            .finish(None)
            .map_err(|e| StoreError::Corrupted(format!("partial blob outboard: {e}")))?;
        match self.store.write(WriteOp::CompletePartial {
            cid: self.cid,
            id: self.id,
        })? {
            WriteOutcome::Stored(cid) => Ok(cid),
            other => Err(StoreError::Io(format!("unexpected answer {other:?}"))),
        }
    }
}

/// Reads until `buf` is full (a multiple of 64 bytes) or the end.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> Result<usize, StoreError> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

fn bad_stream(e: DecodeError) -> StoreError {
    match e {
        DecodeError::SizeMismatch { expected, claimed } => StoreError::SizeMismatch {
            known: expected,
            claimed,
        },
        other => StoreError::BadStream(other),
    }
}
