//! Reads: the cache on the caller's scheduler, the reader threads for the
//! rest of `get`, dirty I/O schedulers for everything else.

use keyring_store::{OpenBlob, ReadReply, StoreError, TagScope};
use rustler::{Binary, Encoder, Env, OwnedBinary, Resource, ResourceArc, Term};

use super::terms::{to_cid, Reason};
use super::{read, with_store, Outcome, StoreResource};
use crate::atoms;
use crate::hash::digest_binary;
use crate::reply::Reply;

/// Most bytes one `store_reader_read` call returns.
const MAX_PIECE: usize = 16 << 20;

/// A reader thread's answer: `{:ok, bytes}` for a small blob (from the
/// index), `{:ok, {reader, size}}` for a blob in a file (the caller reads it
/// whole with `store_reader_read_all` on a dirty I/O scheduler, whose
/// allocator keeps large binaries' memory warm: read here, on a thread the
/// BEAM does not manage, 256 MiB came at 0.7–1.6 GB/s against 4–5 GB/s),
/// `{:error, :not_found}` or `{:error, reason}`.
pub(super) struct BeamRead(pub(super) Reply);

enum Answer {
    Bytes(OwnedBinary),
    File(ResourceArc<ReaderResource>, u64),
}

impl ReadReply for BeamRead {
    fn send(self: Box<Self>, result: Result<Option<OpenBlob>, StoreError>) {
        let read = match result {
            Ok(Some(blob)) if blob.in_memory() => read_whole(&blob).map(|b| Some(Answer::Bytes(b))),
            Ok(Some(blob)) => {
                let size = blob.size();
                Ok(Some(Answer::File(
                    ResourceArc::new(ReaderResource(blob)),
                    size,
                )))
            }
            Ok(None) => Ok(None),
            Err(e) => Err(Reason(e)),
        };
        self.0.send(|env| match read {
            Ok(Some(Answer::Bytes(bin))) => (atoms::ok(), bin.release(env)).encode(env),
            Ok(Some(Answer::File(reader, size))) => (atoms::ok(), (reader, size)).encode(env),
            Ok(None) => (atoms::error(), atoms::not_found()).encode(env),
            Err(reason) => (atoms::error(), reason).encode(env),
        });
    }

    fn cancel(self: Box<Self>) {
        self.0.cancel();
    }
}

/// A binary of `len` bytes, or an error when the VM cannot allocate it
/// (rustler's `OwnedBinary::new` would abort the VM instead).
fn alloc(len: u64) -> Result<OwnedBinary, Reason> {
    let no_memory = || Reason(StoreError::NoMemory);
    let len = usize::try_from(len).map_err(|_| no_memory())?;
    let mut raw = std::mem::MaybeUninit::<rustler::sys::ErlNifBinary>::uninit();
    // SAFETY: enif_alloc_binary may be called from any thread; it fills
    // `raw` when it returns non-zero, and OwnedBinary then owns (and
    // releases) that binary.
    #[allow(unsafe_code)]
    unsafe {
        if rustler::sys::enif_alloc_binary(len, raw.as_mut_ptr()) == 0 {
            return Err(no_memory());
        }
        Ok(OwnedBinary::from_raw(raw.assume_init()))
    }
}

fn read_whole(blob: &OpenBlob) -> Result<OwnedBinary, Reason> {
    let mut bin = alloc(blob.size())?;
    blob.read_into(bin.as_mut_slice()).map_err(Reason)?;
    Ok(bin)
}

/// `{:ok, bytes}` when the blob is in the memory cache, else `:miss` (the
/// caller then reads with `store_get_async`, by the reader threads). Never
/// touches the disk: a hash lookup and a copy of at most 16 KiB.
#[rustler::nif]
fn store_get_cached<'a>(
    env: Env<'a>,
    res: ResourceArc<StoreResource>,
    cid: Binary<'a>,
) -> Term<'a> {
    let cached = to_cid(&cid).and_then(|cid| with_store(&res, |s| Ok(s.blobs().get_cached(&cid))));
    match cached {
        Ok(Some(bytes)) => (atoms::ok(), digest_binary(env, &bytes)).encode(env),
        Ok(None) => atoms::miss().encode(env),
        Err(reason) => (atoms::error(), reason).encode(env),
    }
}

/// Queues a read of the blob to the reader threads: `:ok` now and the blob
/// later by message, or `{:error, reason}` now.
#[rustler::nif]
fn store_get_async<'a>(
    env: Env<'a>,
    res: ResourceArc<StoreResource>,
    reference: Term<'a>,
    cid: Binary<'a>,
    verify: bool,
) -> Term<'a> {
    match to_cid(&cid) {
        Ok(cid) => read(env, &res, reference, |store, reply| {
            store.read(cid, verify, reply)
        }),
        Err(reason) => (atoms::error(), reason).encode(env),
    }
}

#[rustler::nif(schedule = "DirtyIo")]
fn store_size(res: ResourceArc<StoreResource>, cid: Binary<'_>) -> Outcome<Option<u64>> {
    let cid = to_cid(&cid)?;
    with_store(&res, |s| s.blobs().size(&cid))
}

#[rustler::nif(schedule = "DirtyIo")]
fn store_verify(res: ResourceArc<StoreResource>, cid: Binary<'_>) -> Outcome<Option<bool>> {
    let cid = to_cid(&cid)?;
    with_store(&res, |s| s.blobs().verify(&cid))
}

#[rustler::nif(schedule = "DirtyIo")]
fn store_list<'a>(
    env: Env<'a>,
    res: ResourceArc<StoreResource>,
    after: Option<Binary<'a>>,
    limit: usize,
) -> Outcome<Vec<Binary<'a>>> {
    let after = after.as_ref().map(to_cid).transpose()?;
    let cids = with_store(&res, |s| s.blobs().list_after(after.as_ref(), limit))?;
    Ok(cids.iter().map(|c| digest_binary(env, c)).collect())
}

#[rustler::nif(schedule = "DirtyIo")]
fn store_get_ref<'a>(
    env: Env<'a>,
    res: ResourceArc<StoreResource>,
    name: Binary<'a>,
) -> Outcome<Option<Binary<'a>>> {
    let value = with_store(&res, |s| s.blobs().get_ref(name.as_slice()))?;
    Ok(value.map(|v| digest_binary(env, &v)))
}

#[rustler::nif(schedule = "DirtyIo")]
fn store_list_refs<'a>(
    env: Env<'a>,
    res: ResourceArc<StoreResource>,
    prefix: Binary<'a>,
    limit: usize,
) -> Outcome<Vec<(Binary<'a>, Binary<'a>)>> {
    let refs = with_store(&res, |s| s.blobs().list_refs(prefix.as_slice(), limit))?;
    Ok(refs
        .iter()
        .map(|(k, v)| (digest_binary(env, k), digest_binary(env, v)))
        .collect())
}

/// Whether `cid` is shared into keyring `ring` (the rule for serving peers).
#[rustler::nif(schedule = "DirtyIo")]
fn store_shared_in(
    res: ResourceArc<StoreResource>,
    cid: Binary<'_>,
    ring: Binary<'_>,
) -> Outcome<bool> {
    let cid = to_cid(&cid)?;
    let ring = to_cid(&ring)?;
    with_store(&res, |s| s.blobs().shared_in(&cid, &ring))
}

/// Tags of keyring `ring` (or pins, for `nil`) after `after`: `[{name, cid}]`.
#[rustler::nif(schedule = "DirtyIo")]
fn store_tags<'a>(
    env: Env<'a>,
    res: ResourceArc<StoreResource>,
    ring: Option<Binary<'a>>,
    after: Option<Binary<'a>>,
    limit: usize,
) -> Outcome<Vec<(Binary<'a>, Binary<'a>)>> {
    let scope = match ring {
        Some(ring) => TagScope::Ring(to_cid(&ring)?),
        None => TagScope::Pins,
    };
    let after = after.as_ref().map(|a| a.as_slice());
    let tags = with_store(&res, |s| s.blobs().tags(scope, after, limit))?;
    Ok(tags
        .iter()
        .map(|(name, cid)| (digest_binary(env, name), digest_binary(env, cid)))
        .collect())
}

/// `{{blobs, bytes, file_bytes, partials, shares, pins}, {commits, writes},
/// {cache_bytes, hits, misses}, {gc_steps, gc_blobs, gc_partials, gc_bytes, gc_orphans}}`.
#[rustler::nif(schedule = "DirtyIo")]
fn store_stats(res: ResourceArc<StoreResource>) -> Outcome<StatsTuple> {
    with_store(&res, |s| {
        let b = s.blobs().stats()?;
        let c = s.committer().stats();
        let k = s.blobs().cache_stats();
        let load = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
        Ok((
            (b.blobs, b.bytes, b.file_bytes, b.partials, b.shares, b.pins),
            (load(&c.commits), load(&c.writes)),
            (k.bytes, k.hits, k.misses),
            (
                load(&c.gc_steps),
                load(&c.gc_blobs),
                load(&c.gc_partials),
                load(&c.gc_bytes),
                load(&c.gc_orphans),
            ),
        ))
    })
}

type StatsTuple = (
    (u64, u64, u64, u64, u64, u64),
    (u64, u64),
    (u64, u64, u64),
    (u64, u64, u64, u64, u64),
);

/// An open blob being read piece by piece (`Keyring.Store.stream/2`); it
/// keeps reading the same bytes even if the blob is deleted meanwhile.
pub(crate) struct ReaderResource(OpenBlob);

#[rustler::resource_impl]
impl Resource for ReaderResource {}

/// Opens blob `cid` for piecewise reads: `{:ok, {reader, size}}` or `{:ok, nil}`.
#[rustler::nif(schedule = "DirtyIo")]
fn store_reader_open(
    res: ResourceArc<StoreResource>,
    cid: Binary<'_>,
) -> Outcome<Option<(ResourceArc<ReaderResource>, u64)>> {
    let cid = to_cid(&cid)?;
    let blob = with_store(&res, |s| s.blobs().open_blob(&cid, false))?;
    Ok(blob.map(|b| {
        let size = b.size();
        (ResourceArc::new(ReaderResource(b)), size)
    }))
}

/// Reads the whole blob into one binary (checking it against its cid when
/// it was opened with `verify`).
#[rustler::nif(schedule = "DirtyIo")]
fn store_reader_read_all<'a>(
    env: Env<'a>,
    reader: ResourceArc<ReaderResource>,
) -> Outcome<Binary<'a>> {
    Ok(read_whole(&reader.0)?.release(env))
}

/// Reads `len` bytes (at most 16 MiB) at `offset`, read straight into the binary.
#[rustler::nif(schedule = "DirtyIo")]
fn store_reader_read<'a>(
    env: Env<'a>,
    reader: ResourceArc<ReaderResource>,
    offset: u64,
    len: usize,
) -> Outcome<Binary<'a>> {
    let blob = &reader.0;
    let len = (len.min(MAX_PIECE) as u64).min(blob.size().saturating_sub(offset)) as usize;
    let mut bin = alloc(len as u64)?;
    blob.read_at(offset, bin.as_mut_slice()).map_err(Reason)?;
    Ok(bin.release(env))
}
