//! Garbage collection in bounded steps.
//!
//! A blob or partial blob is garbage when nothing protects it: no tag (pin or
//! share) names its cid, it is not reachable through DAG links from a cid a
//! tag names ([`crate::gc_reach`]), and no one in this process holds it (a
//! partial blob being written). Each step runs on the writer thread, inside one batch's
//! transaction: it looks at most `budget` records after the cursor, deletes
//! the unprotected ones, and hands back where to go on. Deciding and deleting
//! in the same transaction, in the same queue as every put and tag, leaves no
//! window between "mark" and "sweep" for a put or a tag to fall into
//! (iroh-blobs#247). Between steps the writer serves everyone else, so GC
//! never holds it for long.
//!
//! Phases: blobs (cid order), partial blobs (cid order), then the files: one
//! step sweeps whole directories (blob shards, then `partial/`) until it has
//! looked at `budget` files, removing those no record owns (left by a crash between a rename and its commit). Files of
//! deleted records are unlinked right after the step's commit.

use std::fs;
use std::sync::atomic::Ordering;

use keyring_core::hash::Digest;
use redb::ReadableTable;

use crate::apply::{Effects, Tables};
use crate::committer::CommitterStats;
use crate::gc_reach::Reach;
use crate::layout::{parse_blob_file, parse_partial_file};
use crate::StoreError;

/// Where GC is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GcCursor {
    /// At the start.
    #[default]
    Start,
    /// In the blobs, after this cid.
    Blobs(Digest),
    /// In the partial blobs, after this cid (`None`: at their start).
    Partials(Option<Digest>),
    /// Sweeping files: blob shard `0..=255`, then `256` for `partial/`.
    Files(u16),
    /// Finished.
    Done,
}

/// What one step did, and where the next one starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GcProgress {
    /// Where to continue; [`GcCursor::Done`] when the run is complete.
    pub next: GcCursor,
    /// Records (or files) looked at.
    pub examined: u64,
    /// Blobs deleted.
    pub blobs: u64,
    /// Partial blobs deleted.
    pub partials: u64,
    /// Bytes of those.
    pub bytes: u64,
    /// Orphaned files removed.
    pub orphans: u64,
}

/// GC figures of one batch.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Totals {
    steps: u64,
    blobs: u64,
    partials: u64,
    bytes: u64,
    orphans: u64,
}

impl Totals {
    fn add(&mut self, p: &GcProgress) {
        self.steps += 1;
        self.blobs += p.blobs;
        self.partials += p.partials;
        self.bytes += p.bytes;
        self.orphans += p.orphans;
    }

    pub(crate) fn add_to(&self, stats: &CommitterStats) {
        stats.gc_steps.fetch_add(self.steps, Ordering::Relaxed);
        stats.gc_blobs.fetch_add(self.blobs, Ordering::Relaxed);
        stats
            .gc_partials
            .fetch_add(self.partials, Ordering::Relaxed);
        stats.gc_bytes.fetch_add(self.bytes, Ordering::Relaxed);
        stats.gc_orphans.fetch_add(self.orphans, Ordering::Relaxed);
    }
}

pub(crate) fn step(
    t: &mut Tables<'_>,
    fx: &mut Effects,
    cursor: GcCursor,
    budget: usize,
) -> Result<GcProgress, StoreError> {
    let budget = budget.max(1);
    let mut p = GcProgress::default();
    p.next = match cursor {
        GcCursor::Start => blobs(t, fx, None, budget, &mut p)?,
        GcCursor::Blobs(after) => blobs(t, fx, Some(after), budget, &mut p)?,
        GcCursor::Partials(after) => partials(t, fx, after, budget, &mut p)?,
        GcCursor::Files(shard) => files(t, shard, budget, &mut p)?,
        GcCursor::Done => GcCursor::Done,
    };
    fx.gc.add(&p);
    Ok(p)
}

fn after_key(after: Option<Digest>) -> std::ops::Bound<[u8; 32]> {
    match after {
        Some(cid) => std::ops::Bound::Excluded(cid),
        None => std::ops::Bound::Unbounded,
    }
}

/// The next `budget` cids of a table after `after`.
fn page(
    table: &impl ReadableTable<&'static [u8], &'static [u8]>,
    after: Option<Digest>,
    budget: usize,
) -> Result<Vec<Digest>, StoreError> {
    let bound = after_key(after);
    let range = match &bound {
        std::ops::Bound::Excluded(k) => table.range::<&[u8]>((
            std::ops::Bound::Excluded(k.as_slice()),
            std::ops::Bound::Unbounded,
        ))?,
        _ => table.iter()?,
    };
    let mut out = Vec::with_capacity(budget.min(4096));
    for entry in range.take(budget) {
        let (key, _) = entry?;
        if let Ok(cid) = Digest::try_from(key.value()) {
            out.push(cid);
        }
    }
    Ok(out)
}

fn blobs(
    t: &mut Tables<'_>,
    fx: &mut Effects,
    after: Option<Digest>,
    budget: usize,
    p: &mut GcProgress,
) -> Result<GcCursor, StoreError> {
    let cids = page(&t.blobs, after, budget)?;
    let mut reach = Reach::default();
    for cid in &cids {
        p.examined += 1;
        if !t.protected(cid)? && !reach.covers(t, cid)? {
            if let Some(size) = t.delete_blob(cid, fx)? {
                p.blobs += 1;
                p.bytes += size;
            }
        }
    }
    Ok(match cids.last() {
        Some(last) if cids.len() == budget => GcCursor::Blobs(*last),
        _ => GcCursor::Partials(None),
    })
}

fn partials(
    t: &mut Tables<'_>,
    fx: &mut Effects,
    after: Option<Digest>,
    budget: usize,
    p: &mut GcProgress,
) -> Result<GcCursor, StoreError> {
    let cids = page(&t.partials, after, budget)?;
    let mut reach = Reach::default();
    for cid in &cids {
        p.examined += 1;
        if !t.protected(cid)? && !reach.covers(t, cid)? {
            if let Some(bytes) = t.delete_partial(cid, fx)? {
                p.partials += 1;
                p.bytes += bytes;
            }
        }
    }
    Ok(match cids.last() {
        Some(last) if cids.len() == budget => GcCursor::Partials(Some(*last)),
        _ => GcCursor::Files(0),
    })
}

/// Sweeps whole directories from `shard` on until `budget` files were looked
/// at; returns where to go on.
fn files(
    t: &mut Tables<'_>,
    mut shard: u16,
    budget: usize,
    p: &mut GcProgress,
) -> Result<GcCursor, StoreError> {
    loop {
        let next = sweep(t, shard, p)?;
        match next {
            GcCursor::Files(n) if (p.examined as usize) < budget => shard = n,
            other => return Ok(other),
        }
    }
}

/// Removes the files in one directory that no record owns. Runs on the
/// writer thread, the only one that renames files into these directories,
/// and sees this batch's own renames, so it cannot remove a file being linked.
fn sweep(t: &mut Tables<'_>, shard: u16, p: &mut GcProgress) -> Result<GcCursor, StoreError> {
    let (dir, next) = match u8::try_from(shard) {
        Ok(s) => (t.layout.shard(s), GcCursor::Files(shard + 1)),
        Err(_) => (t.layout.partial_dir().to_path_buf(), GcCursor::Done),
    };
    let entries = match fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(next),
        Err(e) => return Err(e.into()),
    };
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            continue;
        };
        p.examined += 1;
        let owned = if shard < 256 {
            match parse_blob_file(name) {
                Some((cid, kind)) => t.has_file_blob(&cid, kind)?,
                None => continue,
            }
        } else {
            match parse_partial_file(name) {
                Some((cid, id, _)) => t.partial_id(&cid)? == Some(id),
                None => continue,
            }
        };
        if !owned && fs::remove_file(entry.path()).is_ok() {
            p.orphans += 1;
        }
    }
    Ok(next)
}
