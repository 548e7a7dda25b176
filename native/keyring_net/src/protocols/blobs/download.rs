//! The downloader: fetches blobs from one or more providers into a
//! [`BlobSink`], verifying every 16 KiB group before it is written.
//!
//! 1. **Sizes.** Blobs the sink neither has nor holds a partial of are
//!    asked for with the size proof and their first 64 groups (1 MiB), up
//!    to [`transfer::MAX_ITEMS`] per request, from one provider after
//!    another until each is found. A blob of at most 64 groups is complete
//!    with that answer: such blobs are assembled in memory (at most 64 MiB
//!    per batch) and stored in batches ([`BlobSink::put_small`]), so many
//!    small blobs cost one round trip and one group commit per batch. A
//!    larger blob's proof opens its partial blob with a proven size, and
//!    its first groups go straight into it.
//! 2. **Groups.** Each large blob's missing groups (a resumed partial asks
//!    only for those) are cut into slices of [`Options::slice_groups`] and
//!    put in a queue. Every provider has a worker that takes the next slice,
//!    requests it, and writes each verified group. Scheduling is by pull, so
//!    each provider gets slices in proportion to its measured rate: a fast
//!    provider comes back for more while a slow one is still on its first.
//!    When the queue is empty, an idle worker takes over the unfinished part
//!    of the slowest provider's slice (end game), so one slow provider cannot
//!    hold the transfer's tail.
//! 3. **Fences.** A provider whose bytes fail verification, that answers a
//!    blob it was asked for with another's bytes, claims another size, or
//!    cuts its stream short is dropped at that group: what it sent before was
//!    verified and stays, the rest of its slice goes back to the queue for
//!    the others. A slice that makes no progress for [`Options::stall`] is
//!    given up and re-queued, and the provider dropped. When no provider is
//!    left and groups are missing, the transfer ends [`DownloadError::Stalled`]
//!    (and says so in its last [`Progress`]) instead of hanging.
//!
//! Progress goes to a callback at most every [`Options::report_every`] and
//! at the end; the callback must not block (the node posts a message).

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use keyring_core::hash::Digest;
use keyring_core::membership::PublicKey;
use keyring_core::transfer::{self, Event, Item, ResponseDecoder, TransferError};
use keyring_core::verified::{GroupRanges, Tree, VerifiedGroup, GROUP_SIZE};
use tokio::time::Instant;

use super::Answer;
use crate::error::CallError;

/// A provider as the downloader sees it: a key and a way to send a GET.
pub trait Provider: Send + Sync + 'static {
    /// Its key (for progress and errors).
    fn key(&self) -> PublicKey;
    /// Sends a GET for `items`; the answer's bytes as they come.
    fn get(
        &self,
        items: Vec<Item>,
    ) -> Pin<Box<dyn Future<Output = Result<Answer, CallError>> + Send + 'static>>;
}

/// A partial blob being written (the store's `PartialWriter`, or memory).
pub trait PartialSink: Send {
    /// The blob's (proven) size.
    fn size(&self) -> u64;
    /// Groups it holds.
    fn have(&self) -> GroupRanges;
    /// Writes a verified group.
    fn write(&mut self, group: &VerifiedGroup<'_>) -> Result<(), String>;
    /// Makes what was written durable.
    fn save(&mut self) -> Result<(), String>;
    /// Turns the complete partial blob into a blob.
    fn complete(self: Box<Self>) -> Result<(), String>;
}

/// Where downloaded blobs go. Methods may block (a commit): the downloader
/// calls them off the async threads' hot path.
pub trait BlobSink: Send + Sync + 'static {
    /// Whether `cid` is complete already.
    fn has(&self, cid: &Digest) -> bool;
    /// The size of a partial blob of `cid`, if one is being assembled.
    fn partial_size(&self, cid: &Digest) -> Option<u64>;
    /// Opens (or resumes) the partial blob `cid` of proven `size`; `None`
    /// when it turned out complete.
    fn open(&self, cid: &Digest, size: u64) -> Result<Option<Box<dyn PartialSink>>, String>;
    /// Stores whole verified small blobs.
    fn put_small(&self, blobs: Vec<(Digest, Vec<u8>)>) -> Result<(), String>;
}

/// Downloader settings.
#[derive(Debug, Clone)]
pub struct Options {
    /// Groups per slice (64: 1 MiB).
    pub slice_groups: u64,
    /// Time a request may go without a verified group.
    pub stall: Duration,
    /// Bytes written between two saves of a partial blob.
    pub save_every: u64,
    /// Least time between two progress reports.
    pub report_every: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            slice_groups: 64,
            stall: Duration::from_secs(5),
            save_every: 64 << 20,
            report_every: Duration::from_millis(200),
        }
    }
}

/// Where a transfer is.
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    /// Blobs complete (or found complete) / asked for.
    pub blobs_done: u64,
    /// Blobs asked for.
    pub blobs_total: u64,
    /// Bytes of verified groups written in this transfer (sizes known so far).
    pub bytes_done: u64,
    /// Bytes to fetch in this transfer (grows as sizes are proven).
    pub bytes_total: u64,
    /// Verified bytes per provider.
    pub providers: Vec<(PublicKey, u64)>,
    /// Bytes per second since the start.
    pub rate: f64,
    /// Whether the transfer stopped with groups missing and no provider left.
    pub stalled: bool,
    /// Providers dropped and why.
    pub errors: Vec<(PublicKey, String)>,
    /// Blobs no provider had.
    pub not_found: Vec<Digest>,
    /// Whether the transfer has ended.
    pub finished: bool,
}

/// Why a transfer did not complete.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DownloadError {
    /// Groups are missing and no provider can make progress.
    #[error("stalled: no provider can make progress")]
    Stalled,
    /// No provider has these blobs (absent or not shared).
    #[error("not found")]
    NotFound(Vec<Digest>),
    /// The sink failed.
    #[error("store: {0}")]
    Sink(String),
}

/// Runs `f` (which may block) without starving the runtime's other tasks.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

struct Shared {
    progress: Progress,
    started: std::time::Instant,
    last_report: Option<std::time::Instant>,
    report: Box<dyn Fn(&Progress) + Send + Sync>,
    every: Duration,
}

impl Shared {
    fn add_bytes(&mut self, provider: &PublicKey, n: u64) {
        self.progress.bytes_done += n;
        match self
            .progress
            .providers
            .iter_mut()
            .find(|p| &p.0 == provider)
        {
            Some(p) => p.1 += n,
            None => self.progress.providers.push((*provider, n)),
        }
    }

    fn error(&mut self, provider: &PublicKey, why: String) {
        self.progress.errors.push((*provider, why));
    }

    fn maybe_report(&mut self, force: bool) {
        let now = std::time::Instant::now();
        if !force && self.last_report.is_some_and(|t| now - t < self.every) {
            return;
        }
        self.last_report = Some(now);
        let secs = (now - self.started).as_secs_f64().max(1e-6);
        self.progress.rate = self.progress.bytes_done as f64 / secs;
        (self.report)(&self.progress);
    }
}

type SharedRef = Arc<Mutex<Shared>>;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Fetches `cids` from `providers` into `sink`; the final progress, or why
/// not every blob arrived. `report` hears progress along the way.
pub async fn download(
    cids: Vec<Digest>,
    providers: Vec<Arc<dyn Provider>>,
    sink: Arc<dyn BlobSink>,
    opts: Options,
    report: Box<dyn Fn(&Progress) + Send + Sync>,
) -> Result<Progress, DownloadError> {
    let shared: SharedRef = Arc::new(Mutex::new(Shared {
        progress: Progress {
            blobs_total: cids.len() as u64,
            blobs_done: 0,
            bytes_done: 0,
            bytes_total: 0,
            providers: Vec::new(),
            rate: 0.0,
            stalled: false,
            errors: Vec::new(),
            not_found: Vec::new(),
            finished: false,
        },
        started: std::time::Instant::now(),
        last_report: None,
        report,
        every: opts.report_every,
    }));
    let result = run(cids, providers, sink, &opts, &shared).await;
    let mut s = lock(&shared);
    s.progress.finished = true;
    if matches!(result, Err(DownloadError::Stalled)) {
        s.progress.stalled = true;
    }
    s.maybe_report(true);
    result.map(|()| s.progress.clone())
}

async fn run(
    cids: Vec<Digest>,
    providers: Vec<Arc<dyn Provider>>,
    sink: Arc<dyn BlobSink>,
    opts: &Options,
    shared: &SharedRef,
) -> Result<(), DownloadError> {
    let mut alive: Vec<Arc<dyn Provider>> = providers;
    let mut large: Vec<(Digest, Box<dyn PartialSink>)> = Vec::new();
    let mut unknown: Vec<Digest> = Vec::new();
    // What the sink has already, in one blocking section.
    let known: Vec<(Digest, bool, Option<u64>)> = blocking(|| {
        cids.iter()
            .map(|cid| {
                let has = sink.has(cid);
                (*cid, has, if has { None } else { sink.partial_size(cid) })
            })
            .collect()
    });
    for (cid, has, partial) in known {
        if has {
            lock(shared).progress.blobs_done += 1;
            continue;
        }
        match partial {
            Some(size) => match blocking(|| sink.open(&cid, size)).map_err(DownloadError::Sink)? {
                Some(partial) => {
                    let have = partial
                        .have()
                        .count_below(u64::MAX)
                        .saturating_mul(GROUP_SIZE);
                    lock(shared).progress.bytes_total += size.saturating_sub(have);
                    large.push((cid, partial))
                }
                None => lock(shared).progress.blobs_done += 1,
            },
            None => unknown.push(cid),
        }
    }
    for batch in unknown.chunks(transfer::MAX_ITEMS) {
        sizes(batch, &mut alive, &sink, opts, shared, &mut large).await?;
    }
    for (cid, partial) in large {
        fill(cid, partial, &mut alive, opts, shared).await?;
    }
    let nf = lock(shared).progress.not_found.clone();
    if nf.is_empty() {
        Ok(())
    } else {
        Err(DownloadError::NotFound(nf))
    }
}

/// Blobs of at most this many groups (1 MiB) are fetched whole in the
/// first request and stored in one put; larger ones get their first groups
/// from it and the rest in slices.
const WHOLE_GROUPS: u64 = 64;

/// Most bytes of whole blobs held in memory per batch.
const WHOLE_MEMORY: u64 = 64 << 20;

/// A blob of the first request being assembled.
enum Assembling {
    /// In memory, to be stored whole.
    Whole {
        data: Vec<u8>,
        groups: u64,
        got: u64,
    },
    /// Into its partial blob.
    Partial(Box<dyn PartialSink>),
    /// Found complete locally meanwhile: its groups are dropped.
    Skip,
}

/// Phase 1: proofs (and the first [`WHOLE_GROUPS`]) for `batch`.
async fn sizes(
    batch: &[Digest],
    alive: &mut Vec<Arc<dyn Provider>>,
    sink: &Arc<dyn BlobSink>,
    opts: &Options,
    shared: &SharedRef,
    large: &mut Vec<(Digest, Box<dyn PartialSink>)>,
) -> Result<(), DownloadError> {
    let mut remaining: Vec<Digest> = batch.to_vec();
    let mut i = 0;
    while !remaining.is_empty() && i < alive.len() {
        let provider = alive[i].clone();
        let key = provider.key();
        let items: Vec<Item> = remaining
            .iter()
            .map(|cid| Item {
                cid: *cid,
                proof: true,
                ranges: GroupRanges::from(0..WHOLE_GROUPS),
            })
            .collect();
        let mut answered = vec![false; items.len()];
        let mut small: Vec<(Digest, Vec<u8>)> = Vec::new();
        let mut building: Vec<Option<Assembling>> = (0..items.len()).map(|_| None).collect();
        let mut in_memory = 0u64;
        let outcome = async {
            let mut answer = tokio::time::timeout(opts.stall, provider.get(items.clone()))
                .await
                .map_err(|_| "no answer".to_string())?
                .map_err(|e| e.to_string())?;
            let mut dec = ResponseDecoder::new(items.clone(), Vec::new());
            loop {
                let chunk = match tokio::time::timeout(opts.stall, answer.recv()).await {
                    Err(_) => return Err("stalled".to_string()),
                    Ok(None) => {
                        return if dec.is_done() {
                            Ok(())
                        } else {
                            Err("truncated answer".to_string())
                        }
                    }
                    Ok(Some(Err(e))) => return Err(e.to_string()),
                    Ok(Some(Ok(c))) => c,
                };
                let mut pos = 0;
                loop {
                    let (used, ev) = dec.push(&chunk[pos..]).map_err(|e| e.to_string())?;
                    pos += used;
                    match ev {
                        Event::NeedMore if pos >= chunk.len() => break,
                        Event::NeedMore | Event::Found { .. } | Event::NotFound { .. } => {}
                        Event::ItemDone { item } => {
                            answered[item] = true;
                            match building[item].take() {
                                Some(Assembling::Whole { data, groups, got }) if got == groups => {
                                    small.push((items[item].cid, data));
                                }
                                Some(Assembling::Whole { .. }) => {
                                    return Err("answer ended a blob early".to_string());
                                }
                                Some(Assembling::Partial(p)) => large.push((items[item].cid, p)),
                                Some(Assembling::Skip) => {
                                    lock(shared).progress.blobs_done += 1;
                                }
                                None => return Err("found without groups".to_string()),
                            }
                        }
                        Event::Group { item, group } => {
                            let n = group.data().len() as u64;
                            let state = match &mut building[item] {
                                Some(state) => state,
                                None => {
                                    // The proof: the blob's last group, its size proven.
                                    let size = group.size();
                                    let groups = Tree::new(size).groups();
                                    lock(shared).progress.bytes_total += size;
                                    let state = if groups <= WHOLE_GROUPS
                                        && in_memory + size <= WHOLE_MEMORY
                                    {
                                        in_memory += size;
                                        Assembling::Whole {
                                            data: vec![0; size as usize],
                                            groups,
                                            got: 0,
                                        }
                                    } else {
                                        let cid = items[item].cid;
                                        match blocking(|| sink.open(&cid, size))? {
                                            Some(p) => Assembling::Partial(p),
                                            None => Assembling::Skip,
                                        }
                                    };
                                    building[item].insert(state)
                                }
                            };
                            let fresh = match state {
                                Assembling::Whole { data, got, .. } => {
                                    let at = group.offset() as usize;
                                    data[at..at + group.data().len()].copy_from_slice(group.data());
                                    *got += 1;
                                    true
                                }
                                Assembling::Partial(p) => {
                                    let fresh = !p.have().contains(group.index());
                                    if fresh {
                                        p.write(&group)?;
                                    }
                                    fresh
                                }
                                Assembling::Skip => false,
                            };
                            if fresh {
                                let mut s = lock(shared);
                                s.add_bytes(&key, n);
                                s.maybe_report(false);
                            }
                        }
                        Event::Done => {
                            if pos < chunk.len() {
                                return Err("bytes after the answer".to_string());
                            }
                            break;
                        }
                    }
                }
            }
        }
        .await;
        // Partials opened for items whose answer broke off keep what was
        // verified; they are filled in phase 2 like the others.
        for (k, state) in building.into_iter().enumerate() {
            if let Some(Assembling::Partial(p)) = state {
                answered[k] = true;
                large.push((remaining[k], p));
            }
        }
        if !small.is_empty() {
            let n = small.len() as u64;
            blocking(|| sink.put_small(small)).map_err(DownloadError::Sink)?;
            let mut s = lock(shared);
            s.progress.blobs_done += n;
            s.maybe_report(false);
        }
        // Answered items are done (found or not); the rest go to the next
        // provider, and a provider that failed is dropped.
        let next: Vec<Digest> = remaining
            .iter()
            .zip(&answered)
            .filter(|(_, done)| !**done)
            .map(|(cid, _)| *cid)
            .collect();
        match outcome {
            Ok(()) => i += 1,
            Err(why) => {
                lock(shared).error(&key, why);
                alive.remove(i);
            }
        }
        remaining = next;
    }
    if !remaining.is_empty() {
        if alive.is_empty() && !lock(shared).progress.errors.is_empty() {
            return Err(DownloadError::Stalled);
        }
        lock(shared).progress.not_found.extend(remaining);
    }
    Ok(())
}

/// Requests each provider serves at once: the next slice streams while the
/// last one ends, and two stream windows are open.
const STREAMS_PER_PROVIDER: usize = 2;

/// Largest slice (64 MiB).
const MAX_SLICE: u64 = 4096;

/// A slice being fetched by a worker.
struct InFlight {
    worker: usize,
    ranges: GroupRanges,
    since: Instant,
}

struct Fill {
    /// Providers (by index) dropped: their other workers stop too.
    gone: Vec<usize>,
    queue: VecDeque<GroupRanges>,
    in_flight: Vec<InFlight>,
    partial: Box<dyn PartialSink>,
    unsaved: u64,
    failed: Option<String>,
}

/// Phase 2: the missing groups of one large blob, from every provider.
async fn fill(
    cid: Digest,
    partial: Box<dyn PartialSink>,
    alive: &mut Vec<Arc<dyn Provider>>,
    opts: &Options,
    shared: &SharedRef,
) -> Result<(), DownloadError> {
    let have = partial.have();
    let groups = Tree::new(partial.size()).groups();
    let missing = GroupRanges::from(0..groups).difference(&have);
    // Slices of at least `slice_groups`, larger when there is much to fetch
    // from few providers (about four per provider: fewer round trips, and a
    // failed or stolen slice gives back only what it did not deliver).
    let per =
        missing.count_below(groups) / (4 * (alive.len() * STREAMS_PER_PROVIDER).max(1) as u64);
    let slice = per.clamp(opts.slice_groups.max(1), MAX_SLICE.max(opts.slice_groups));
    let mut queue = VecDeque::new();
    for r in missing.iter() {
        let mut start = r.start;
        while start < r.end {
            let end = (start + slice).min(r.end);
            queue.push_back(GroupRanges::from(start..end));
            start = end;
        }
    }
    let state = Arc::new(Mutex::new(Fill {
        gone: Vec::new(),
        queue,
        in_flight: Vec::new(),
        partial,
        unsaved: 0,
        failed: None,
    }));
    let mut workers = tokio::task::JoinSet::new();
    for (p, provider) in alive.iter().enumerate() {
        for k in 0..STREAMS_PER_PROVIDER {
            workers.spawn(worker(
                p * STREAMS_PER_PROVIDER + k,
                cid,
                provider.clone(),
                state.clone(),
                shared.clone(),
                opts.clone(),
            ));
        }
    }
    let mut dropped = Vec::new();
    while let Some(done) = workers.join_next().await {
        if let Ok(Some(w)) = done {
            dropped.push(w / STREAMS_PER_PROVIDER);
        }
    }
    dropped.sort_unstable();
    dropped.dedup();
    for p in dropped.into_iter().rev() {
        alive.remove(p);
    }
    let st = Arc::try_unwrap(state)
        .map_err(|_| DownloadError::Sink("workers still hold the blob".into()))?
        .into_inner()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(e) = st.failed {
        return Err(DownloadError::Sink(e));
    }
    let mut partial = st.partial;
    let complete = partial.have().covers(0, groups);
    blocking(|| partial.save()).map_err(DownloadError::Sink)?;
    if !complete {
        return Err(DownloadError::Stalled);
    }
    blocking(|| partial.complete()).map_err(DownloadError::Sink)?;
    let mut s = lock(shared);
    s.progress.blobs_done += 1;
    s.maybe_report(false);
    Ok(())
}

/// Takes slices until none is left; returns `Some(w)` if this provider was
/// dropped.
async fn worker(
    w: usize,
    cid: Digest,
    provider: Arc<dyn Provider>,
    state: Arc<Mutex<Fill>>,
    shared: SharedRef,
    opts: Options,
) -> Option<usize> {
    let key = provider.key();
    loop {
        let slice = {
            let mut st = lock(&state);
            if st.failed.is_some() || st.gone.contains(&(w / STREAMS_PER_PROVIDER)) {
                return None;
            }
            match st.queue.pop_front() {
                Some(s) => Some(s),
                None => steal(&mut st, w, &opts),
            }
            .inspect(|s| {
                st.in_flight.push(InFlight {
                    worker: w,
                    ranges: s.clone(),
                    since: Instant::now(),
                })
            })
            .or_else(|| {
                if st.in_flight.is_empty() {
                    None
                } else {
                    Some(GroupRanges::empty())
                }
            })
        };
        let slice = slice?;
        if slice.is_empty() {
            // Others are still at work: wait a little, then look again
            // (a stalled slice comes back to the queue).
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        }
        match fetch_slice(cid, &slice, &provider, &state, &shared, &opts).await {
            Ok(()) => {
                let mut st = lock(&state);
                st.in_flight.retain(|f| f.worker != w);
            }
            Err(why) => {
                let mut st = lock(&state);
                // What this worker did not write goes back for the others.
                let have = st.partial.have();
                let rest = slice.difference(&have);
                st.in_flight.retain(|f| f.worker != w);
                if !rest.is_empty() {
                    st.queue.push_back(rest);
                }
                st.gone.push(w / STREAMS_PER_PROVIDER);
                drop(st);
                let mut s = lock(&shared);
                s.error(&key, why);
                s.maybe_report(false);
                return Some(w);
            }
        }
    }
}

/// End game: the unfinished part of the slice in flight longest at another
/// worker, if it has been at it a while (half the stall deadline).
fn steal(st: &mut Fill, w: usize, opts: &Options) -> Option<GroupRanges> {
    let have = st.partial.have();
    let now = Instant::now();
    let victim = st
        .in_flight
        .iter()
        .filter(|f| f.worker != w && now - f.since > opts.stall / 4)
        .filter(|f| !f.ranges.difference(&have).is_empty())
        .min_by_key(|f| f.since)?;
    let rest = victim.ranges.difference(&have);
    // Take the second half of what is left (the owner works from the front).
    let bounds: Vec<u64> = rest.iter().flat_map(|r| r.start..r.end).collect();
    if bounds.len() < 2 {
        return None;
    }
    let mid = bounds[bounds.len() / 2];
    let out = rest.intersection(&GroupRanges::from(mid..u64::MAX));
    for f in st.in_flight.iter_mut() {
        if f.worker != w && f.ranges.intersects(mid, u64::MAX) && f.since <= now {
            f.ranges = f.ranges.difference(&out);
        }
    }
    Some(out)
}

async fn fetch_slice(
    cid: Digest,
    slice: &GroupRanges,
    provider: &Arc<dyn Provider>,
    state: &Arc<Mutex<Fill>>,
    shared: &SharedRef,
    opts: &Options,
) -> Result<(), String> {
    let key = provider.key();
    let size = {
        let st = lock(state);
        st.partial.size()
    };
    let items = vec![Item {
        cid,
        proof: false,
        ranges: slice.clone(),
    }];
    let mut answer = tokio::time::timeout(opts.stall, provider.get(items.clone()))
        .await
        .map_err(|_| "no answer".to_string())?
        .map_err(|e| e.to_string())?;
    let mut dec = ResponseDecoder::new(items, vec![Some(size)]);
    let mut last_progress = Instant::now();
    loop {
        let left = opts.stall.saturating_sub(last_progress.elapsed());
        let chunk = match tokio::time::timeout(left, answer.recv()).await {
            Err(_) => return Err("stalled".into()),
            Ok(None) => {
                return if dec.is_done() {
                    Ok(())
                } else {
                    Err("truncated answer".into())
                }
            }
            Ok(Some(Err(e))) => return Err(e.to_string()),
            Ok(Some(Ok(c))) => c,
        };
        let mut pos = 0;
        loop {
            let (used, ev) = dec
                .push(&chunk[pos..])
                .map_err(|e: TransferError| e.to_string())?;
            pos += used;
            match ev {
                Event::NeedMore if pos >= chunk.len() => break,
                Event::NotFound { .. } => return Err("no longer has the blob".into()),
                Event::Group { group, .. } => {
                    let n = group.data().len() as u64;
                    let mut st = lock(state);
                    // Another worker (end game) may have written it already.
                    if !st.partial.have().contains(group.index()) {
                        if let Err(e) = st.partial.write(&group) {
                            st.failed = Some(e.clone());
                            return Err(e);
                        }
                        st.unsaved += n;
                        if st.unsaved >= opts.save_every {
                            st.unsaved = 0;
                            if let Err(e) = blocking(|| st.partial.save()) {
                                st.failed = Some(e.clone());
                                return Err(e);
                            }
                        }
                        drop(st);
                        let mut s = lock(shared);
                        s.add_bytes(&key, n);
                        s.maybe_report(false);
                    }
                    last_progress = Instant::now();
                }
                Event::Done if pos < chunk.len() => return Err("bytes after the answer".into()),
                Event::Done => break,
                _ => {}
            }
        }
    }
}
