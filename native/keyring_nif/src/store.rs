//! The blob store. Writes are queued to the group-commit writer thread and
//! answered by message (`{:keyring_reply, ref, result}`) once durable. Blob
//! reads try the memory cache on the caller's scheduler, then go to the
//! store's reader threads and are answered by message the same way; the
//! other reads run on dirty I/O schedulers.

use std::sync::{Mutex, RwLock};

use keyring_core::hash::Digest;
use keyring_core::store::{
    BlobStore, BlobWriter, Committer, Payload, ReadPool, ReadReply, StoreError, WriteOp,
    WriteOutcome, WriteReply,
};
use rustler::env::SavedTerm;
use rustler::{Atom, Binary, Encoder, Env, OwnedEnv, Resource, ResourceArc, Term};

use crate::atoms;
use crate::hash::digest_binary;
use crate::reply::Reply;

const QUEUE_CAPACITY: usize = 65_536;

pub(crate) struct Open {
    pub(crate) store: BlobStore,
    committer: Committer<BeamReply>,
    readers: ReadPool<BeamRead>,
}

pub(crate) struct StoreResource(RwLock<Option<Open>>);

#[rustler::resource_impl]
impl Resource for StoreResource {}

struct WriterResource(Mutex<Option<BlobWriter>>);

#[rustler::resource_impl]
impl Resource for WriterResource {}

/// `StoreError` as an Elixir reason.
pub(crate) struct Reason(pub(crate) StoreError);

impl Encoder for Reason {
    fn encode<'a>(&self, env: Env<'a>) -> Term<'a> {
        match &self.0 {
            StoreError::AlreadyOpen => atoms::already_open().encode(env),
            StoreError::Corrupted(msg) => (atoms::corrupted(), msg.as_str()).encode(env),
            StoreError::ContentMismatch => atoms::content_mismatch().encode(env),
            StoreError::NoSpace => atoms::no_space().encode(env),
            StoreError::Closed => atoms::closed().encode(env),
            StoreError::Busy => atoms::busy().encode(env),
            StoreError::TooLarge(what) => (atoms::too_large(), *what).encode(env),
            StoreError::Io(msg) => (atoms::io(), msg.as_str()).encode(env),
            other => (atoms::io(), other.to_string()).encode(env),
        }
    }
}

impl std::panic::RefUnwindSafe for Reason {}

type Outcome<T> = Result<T, Reason>;

/// The committer's answer, delivered as a message to the waiting process.
struct BeamReply(Reply);

impl WriteReply for BeamReply {
    fn send(self, result: Result<WriteOutcome, StoreError>) {
        self.0.send(|env| match result {
            Ok(WriteOutcome::Stored(cid)) => (atoms::ok(), digest_binary(env, &cid)).encode(env),
            Ok(WriteOutcome::Deleted(b) | WriteOutcome::RefDeleted(b)) => {
                (atoms::ok(), b).encode(env)
            }
            Ok(WriteOutcome::RefSet) => atoms::ok().encode(env),
            Err(e) => (atoms::error(), Reason(e)).encode(env),
        });
    }
}

/// A reader thread's answer: `{:ok, bytes}`, `{:error, :not_found}` or
/// `{:error, reason}`.
struct BeamRead(Reply);

impl ReadReply for BeamRead {
    fn send(self, result: Result<Option<Vec<u8>>, StoreError>) {
        self.0.send(|env| match result {
            Ok(Some(bytes)) => (atoms::ok(), digest_binary(env, &bytes)).encode(env),
            Ok(None) => (atoms::error(), atoms::not_found()).encode(env),
            Err(e) => (atoms::error(), Reason(e)).encode(env),
        });
    }
}

/// A BEAM binary handed to the writer thread without copying its bytes: the
/// term is kept alive in its own environment (a refcount bump for binaries
/// over 64 bytes).
struct BeamBinary {
    env: OwnedEnv,
    term: SavedTerm,
    len: usize,
}

impl Payload for BeamBinary {
    fn with_bytes(&self, f: &mut dyn FnMut(&[u8])) {
        self.env.run(|env| {
            if let Ok(bin) = self.term.load(env).decode::<Binary<'_>>() {
                f(bin.as_slice());
            }
        })
    }
    fn len(&self) -> usize {
        self.len
    }
}

pub(crate) fn with_open<T>(
    store: &StoreResource,
    f: impl FnOnce(&Open) -> Result<T, StoreError>,
) -> Outcome<T> {
    let guard = store.0.read().unwrap_or_else(|e| e.into_inner());
    match guard.as_ref() {
        Some(open) => f(open).map_err(Reason),
        None => Err(Reason(StoreError::Closed)),
    }
}

fn to_cid(bin: &Binary<'_>) -> Result<Digest, Reason> {
    Digest::try_from(bin.as_slice())
        .map_err(|_| Reason(StoreError::Io("cid must be 32 bytes".into())))
}

/// Hands a job to one of the store's threads with `enqueue`: `:ok` now and
/// `{:keyring_reply, ref, result}` later, or `{:error, reason}` now (the
/// reply is then disarmed, so no second answer follows).
fn enqueue<'a>(
    env: Env<'a>,
    store: &StoreResource,
    reference: Term<'a>,
    enqueue: impl FnOnce(&Open, Reply) -> Result<(), (StoreError, Reply)>,
) -> Term<'a> {
    let reply = Reply::new(env, reference);
    let guard = store.0.read().unwrap_or_else(|e| e.into_inner());
    let result = match guard.as_ref() {
        None => Err((StoreError::Closed, reply)),
        Some(open) => enqueue(open, reply),
    };
    match result {
        Ok(()) => atoms::ok().encode(env),
        Err((error, reply)) => {
            reply.cancel();
            (atoms::error(), Reason(error)).encode(env)
        }
    }
}

/// Queues the write `op` to the group-commit writer.
fn submit<'a>(env: Env<'a>, store: &StoreResource, reference: Term<'a>, op: WriteOp) -> Term<'a> {
    enqueue(env, store, reference, |open, reply| {
        (open.committer)
            .submit(op, BeamReply(reply))
            .map_err(|(e, r)| (e, r.0))
    })
}

#[rustler::nif(schedule = "DirtyIo")]
fn store_open(
    dir: String,
    cache_bytes: usize,
    read_threads: usize,
) -> Outcome<ResourceArc<StoreResource>> {
    let store =
        BlobStore::open_with_cache(std::path::Path::new(&dir), cache_bytes).map_err(Reason)?;
    let committer = Committer::start(&store, QUEUE_CAPACITY).map_err(Reason)?;
    let readers = ReadPool::start(&store, read_threads, QUEUE_CAPACITY).map_err(Reason)?;
    Ok(ResourceArc::new(StoreResource(RwLock::new(Some(Open {
        store,
        committer,
        readers,
    })))))
}

/// Finishes queued writes, stops the writer and releases the database file.
#[rustler::nif(schedule = "DirtyIo")]
fn store_close(store: ResourceArc<StoreResource>) -> Atom {
    let open = store.0.write().unwrap_or_else(|e| e.into_inner()).take();
    if let Some(open) = open {
        open.readers.close();
        open.committer.close();
        open.store.release_snapshot();
    }
    atoms::ok()
}

#[rustler::nif]
fn store_put<'a>(
    env: Env<'a>,
    store: ResourceArc<StoreResource>,
    reference: Term<'a>,
    data: Binary<'a>,
) -> Term<'a> {
    let owned = OwnedEnv::new();
    let payload = BeamBinary {
        term: owned.save(data.to_term(env)),
        env: owned,
        len: data.len(),
    };
    submit(env, &store, reference, WriteOp::Put(Box::new(payload)))
}

#[rustler::nif]
fn store_delete<'a>(
    env: Env<'a>,
    store: ResourceArc<StoreResource>,
    reference: Term<'a>,
    cid: Binary<'a>,
) -> Term<'a> {
    match to_cid(&cid) {
        Ok(cid) => submit(env, &store, reference, WriteOp::Delete(cid)),
        Err(reason) => (atoms::error(), reason).encode(env),
    }
}

#[rustler::nif]
fn store_put_ref<'a>(
    env: Env<'a>,
    store: ResourceArc<StoreResource>,
    reference: Term<'a>,
    name: Binary<'a>,
    value: Binary<'a>,
) -> Term<'a> {
    let op = WriteOp::PutRef {
        name: name.as_slice().to_vec(),
        value: value.as_slice().to_vec(),
    };
    submit(env, &store, reference, op)
}

#[rustler::nif]
fn store_delete_ref<'a>(
    env: Env<'a>,
    store: ResourceArc<StoreResource>,
    reference: Term<'a>,
    name: Binary<'a>,
) -> Term<'a> {
    submit(
        env,
        &store,
        reference,
        WriteOp::DeleteRef(name.as_slice().to_vec()),
    )
}

/// `{:ok, bytes}` when the blob is in the memory cache, else `:miss` (the
/// caller then reads with `store_get_async`, by the reader threads). Never
/// touches the disk: a hash lookup and a copy of at most 16 KiB.
#[rustler::nif]
fn store_get_cached<'a>(
    env: Env<'a>,
    store: ResourceArc<StoreResource>,
    cid: Binary<'a>,
) -> Term<'a> {
    let cached = to_cid(&cid).and_then(|cid| with_open(&store, |o| Ok(o.store.get_cached(&cid))));
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
    store: ResourceArc<StoreResource>,
    reference: Term<'a>,
    cid: Binary<'a>,
    verify: bool,
) -> Term<'a> {
    let cid = match to_cid(&cid) {
        Ok(cid) => cid,
        Err(reason) => return (atoms::error(), reason).encode(env),
    };
    enqueue(env, &store, reference, |open, reply| {
        (open.readers)
            .submit(cid, verify, BeamRead(reply))
            .map_err(|(e, r)| (e, r.0))
    })
}

#[rustler::nif(schedule = "DirtyIo")]
fn store_size(store: ResourceArc<StoreResource>, cid: Binary<'_>) -> Outcome<Option<u64>> {
    let cid = to_cid(&cid)?;
    with_open(&store, |o| o.store.size(&cid))
}

#[rustler::nif(schedule = "DirtyIo")]
fn store_read_chunk<'a>(
    env: Env<'a>,
    store: ResourceArc<StoreResource>,
    cid: Binary<'a>,
    index: u32,
) -> Term<'a> {
    let result =
        to_cid(&cid).and_then(|cid| with_open(&store, |o| o.store.read_chunk(&cid, index)));
    encode_bytes(env, result, atoms::eof().encode(env))
}

/// `{:ok, bytes}`, `absent` for `None`, or `{:error, reason}`.
fn encode_bytes<'a>(env: Env<'a>, result: Outcome<Option<Vec<u8>>>, absent: Term<'a>) -> Term<'a> {
    match result {
        Ok(Some(bytes)) => (atoms::ok(), digest_binary(env, &bytes)).encode(env),
        Ok(None) => absent,
        Err(reason) => (atoms::error(), reason).encode(env),
    }
}

#[rustler::nif(schedule = "DirtyIo")]
fn store_verify(store: ResourceArc<StoreResource>, cid: Binary<'_>) -> Outcome<Option<bool>> {
    let cid = to_cid(&cid)?;
    with_open(&store, |o| o.store.verify(&cid))
}

#[rustler::nif(schedule = "DirtyIo")]
fn store_list<'a>(
    env: Env<'a>,
    store: ResourceArc<StoreResource>,
    after: Option<Binary<'a>>,
    limit: usize,
) -> Outcome<Vec<Binary<'a>>> {
    let after = after.as_ref().map(to_cid).transpose()?;
    let cids = with_open(&store, |o| o.store.list_after(after.as_ref(), limit))?;
    Ok(cids.iter().map(|c| digest_binary(env, c)).collect())
}

#[rustler::nif(schedule = "DirtyIo")]
fn store_get_ref<'a>(
    env: Env<'a>,
    store: ResourceArc<StoreResource>,
    name: Binary<'a>,
) -> Outcome<Option<Binary<'a>>> {
    let value = with_open(&store, |o| o.store.get_ref(name.as_slice()))?;
    Ok(value.map(|v| digest_binary(env, &v)))
}

#[rustler::nif(schedule = "DirtyIo")]
fn store_list_refs<'a>(
    env: Env<'a>,
    store: ResourceArc<StoreResource>,
    prefix: Binary<'a>,
    limit: usize,
) -> Outcome<Vec<(Binary<'a>, Binary<'a>)>> {
    let refs = with_open(&store, |o| o.store.list_refs(prefix.as_slice(), limit))?;
    Ok(refs
        .iter()
        .map(|(k, v)| (digest_binary(env, k), digest_binary(env, v)))
        .collect())
}

/// `{{blobs, bytes, file_bytes}, {commits, writes}, {cache_bytes, hits, misses}}`.
#[rustler::nif(schedule = "DirtyIo")]
fn store_stats(store: ResourceArc<StoreResource>) -> Outcome<StatsTuple> {
    with_open(&store, |o| {
        let s = o.store.stats()?;
        let c = o.committer.stats();
        let k = o.store.cache_stats();
        let load = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
        Ok((
            (s.blobs, s.bytes, s.file_bytes),
            (load(&c.commits), load(&c.writes)),
            (k.bytes, k.hits, k.misses),
        ))
    })
}

type StatsTuple = ((u64, u64, u64), (u64, u64), (u64, u64, u64));

#[rustler::nif(schedule = "DirtyIo")]
fn blob_writer_new(store: ResourceArc<StoreResource>) -> Outcome<ResourceArc<WriterResource>> {
    let writer = with_open(&store, |o| BlobWriter::create(o.store.tmp_dir()))?;
    Ok(ResourceArc::new(WriterResource(Mutex::new(Some(writer)))))
}

#[rustler::nif(schedule = "DirtyIo")]
fn blob_writer_write(writer: ResourceArc<WriterResource>, data: Binary<'_>) -> Outcome<Atom> {
    let mut guard = writer.0.lock().unwrap_or_else(|e| e.into_inner());
    let w = guard.as_mut().ok_or(Reason(StoreError::Closed))?;
    w.write(data.as_slice()).map_err(Reason)?;
    Ok(atoms::ok())
}

/// Hands the finished file to the committer; the cid arrives by message.
#[rustler::nif(schedule = "DirtyIo")]
fn blob_writer_finish<'a>(
    env: Env<'a>,
    store: ResourceArc<StoreResource>,
    writer: ResourceArc<WriterResource>,
    reference: Term<'a>,
) -> Term<'a> {
    let taken = writer.0.lock().unwrap_or_else(|e| e.into_inner()).take();
    let op = match taken.ok_or(StoreError::Closed).and_then(BlobWriter::finish) {
        Ok(op) => op,
        Err(e) => return (atoms::error(), Reason(e)).encode(env),
    };
    submit(env, &store, reference, op)
}

/// Drops an unfinished writer's temporary file now rather than at GC.
#[rustler::nif(schedule = "DirtyIo")]
fn blob_writer_abort(writer: ResourceArc<WriterResource>) -> Atom {
    writer.0.lock().unwrap_or_else(|e| e.into_inner()).take();
    atoms::ok()
}
