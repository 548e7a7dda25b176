//! Writes: puts (small to the writer thread, large to the ingest threads),
//! streams, file imports, deletes, refs, tags and GC steps.

use std::sync::Mutex;

use keyring_store::{BlobWriter, Payload, StoreError, Tag, WriteOp, WriteOutcome, WriteReply};
use rustler::env::SavedTerm;
use rustler::{Atom, Binary, Encoder, Env, OwnedEnv, Resource, ResourceArc, Term};

use super::terms::{encode_cursor, to_cid, to_cursor, to_tag, to_tags, Reason};
use super::{answer, submit, with_store, Outcome, StoreResource};
use crate::atoms;
use crate::hash::digest_binary;
use crate::reply::Reply;

/// The writer's (or an ingest thread's) answer, as a message to the waiting process.
pub(super) struct BeamWrite(pub(super) Reply);

impl WriteReply for BeamWrite {
    fn send(self: Box<Self>, result: Result<WriteOutcome, StoreError>) {
        self.0.send(|env| match result {
            Ok(WriteOutcome::Stored(cid)) => (atoms::ok(), digest_binary(env, &cid)).encode(env),
            Ok(
                WriteOutcome::Deleted(b)
                | WriteOutcome::RefDeleted(b)
                | WriteOutcome::TagDeleted(b),
            ) => (atoms::ok(), b).encode(env),
            Ok(WriteOutcome::RefSet | WriteOutcome::PartialSaved) => atoms::ok().encode(env),
            Ok(WriteOutcome::TagSet(previous)) => {
                let previous = previous.map(|cid| digest_binary(env, &cid));
                (atoms::ok(), previous).encode(env)
            }
            Ok(WriteOutcome::Gc(p)) => (
                atoms::ok(),
                (
                    encode_cursor(env, &p.next),
                    p.examined,
                    p.blobs,
                    p.partials,
                    p.bytes,
                    p.orphans,
                ),
            )
                .encode(env),
            Ok(WriteOutcome::Partial(_)) => (atoms::error(), atoms::bad_request()).encode(env),
            Err(e) => (atoms::error(), Reason(e)).encode(env),
        });
    }

    fn cancel(self: Box<Self>) {
        self.0.cancel();
    }
}

/// A BEAM binary handed to a store thread without copying its bytes: the
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

fn error<'a>(env: Env<'a>, reason: Reason) -> Term<'a> {
    (atoms::error(), reason).encode(env)
}

/// Stores `data` with `tags` (see `Keyring.Store.put/2`).
#[rustler::nif]
fn store_put<'a>(
    env: Env<'a>,
    res: ResourceArc<StoreResource>,
    reference: Term<'a>,
    data: Binary<'a>,
    tags: Vec<Term<'a>>,
) -> Term<'a> {
    let tags = match to_tags(tags) {
        Ok(tags) => tags,
        Err(reason) => return error(env, reason),
    };
    let owned = OwnedEnv::new();
    let payload = BeamBinary {
        term: owned.save(data.to_term(env)),
        env: owned,
        len: data.len(),
    };
    submit(env, &res, reference, |store, reply| {
        store.put(Box::new(payload), tags, reply)
    })
}

/// Stores the file at `path`; an ingest thread reads it.
#[rustler::nif]
fn store_import_file<'a>(
    env: Env<'a>,
    res: ResourceArc<StoreResource>,
    reference: Term<'a>,
    path: String,
    tags: Vec<Term<'a>>,
) -> Term<'a> {
    match to_tags(tags) {
        Ok(tags) => submit(env, &res, reference, |store, reply| {
            store.import_file(path.into(), tags, reply)
        }),
        Err(reason) => error(env, reason),
    }
}

fn op<'a>(env: Env<'a>, res: &StoreResource, reference: Term<'a>, op: WriteOp) -> Term<'a> {
    submit(env, res, reference, |store, reply| store.submit(op, reply))
}

#[rustler::nif]
fn store_delete<'a>(
    env: Env<'a>,
    res: ResourceArc<StoreResource>,
    reference: Term<'a>,
    cid: Binary<'a>,
) -> Term<'a> {
    match to_cid(&cid) {
        Ok(cid) => op(env, &res, reference, WriteOp::Delete(cid)),
        Err(reason) => error(env, reason),
    }
}

#[rustler::nif]
fn store_put_ref<'a>(
    env: Env<'a>,
    res: ResourceArc<StoreResource>,
    reference: Term<'a>,
    name: Binary<'a>,
    value: Binary<'a>,
) -> Term<'a> {
    let write = WriteOp::PutRef {
        name: name.as_slice().to_vec(),
        value: value.as_slice().to_vec(),
    };
    op(env, &res, reference, write)
}

#[rustler::nif]
fn store_delete_ref<'a>(
    env: Env<'a>,
    res: ResourceArc<StoreResource>,
    reference: Term<'a>,
    name: Binary<'a>,
) -> Term<'a> {
    op(
        env,
        &res,
        reference,
        WriteOp::DeleteRef(name.as_slice().to_vec()),
    )
}

/// Points `tag` at `cid`; answers the cid it named before (or `nil`).
#[rustler::nif]
fn store_set_tag<'a>(
    env: Env<'a>,
    res: ResourceArc<StoreResource>,
    reference: Term<'a>,
    tag: Term<'a>,
    cid: Binary<'a>,
) -> Term<'a> {
    match to_tag(tag).and_then(|tag| Ok((tag, to_cid(&cid)?))) {
        Ok((tag, cid)) => op(env, &res, reference, WriteOp::SetTag { tag, cid }),
        Err(reason) => error(env, reason),
    }
}

/// Removes `tag` (only if it names `cid`, unless `cid` is `nil`).
#[rustler::nif]
fn store_delete_tag<'a>(
    env: Env<'a>,
    res: ResourceArc<StoreResource>,
    reference: Term<'a>,
    tag: Term<'a>,
    cid: Option<Binary<'a>>,
) -> Term<'a> {
    let parsed: Result<(Tag, Option<_>), Reason> =
        to_tag(tag).and_then(|tag| Ok((tag, cid.as_ref().map(to_cid).transpose()?)));
    match parsed {
        Ok((tag, cid)) => op(env, &res, reference, WriteOp::DeleteTag { tag, cid }),
        Err(reason) => error(env, reason),
    }
}

/// One bounded GC step from `cursor`.
#[rustler::nif]
fn store_gc_step<'a>(
    env: Env<'a>,
    res: ResourceArc<StoreResource>,
    reference: Term<'a>,
    cursor: Term<'a>,
    budget: usize,
) -> Term<'a> {
    match to_cursor(cursor) {
        Ok(cursor) => op(env, &res, reference, WriteOp::GcStep { cursor, budget }),
        Err(reason) => error(env, reason),
    }
}

pub(crate) struct WriterResource(Mutex<Option<BlobWriter>>);

#[rustler::resource_impl]
impl Resource for WriterResource {}

#[rustler::nif(schedule = "DirtyIo")]
fn blob_writer_new(res: ResourceArc<StoreResource>) -> Outcome<ResourceArc<WriterResource>> {
    let writer = with_store(&res, |s| s.writer())?;
    Ok(ResourceArc::new(WriterResource(Mutex::new(Some(writer)))))
}

/// Appends a piece (hashing it and writing it to the writer's file).
#[rustler::nif(schedule = "DirtyIo")]
fn blob_writer_write(writer: ResourceArc<WriterResource>, data: Binary<'_>) -> Outcome<Atom> {
    let mut guard = writer.0.lock().unwrap_or_else(|e| e.into_inner());
    let w = guard.as_mut().ok_or(Reason(StoreError::Closed))?;
    w.write(data.as_slice()).map_err(Reason)?;
    Ok(atoms::ok())
}

/// Hands the finished file to an ingest thread (fsync) and the writer
/// thread (link); the cid arrives by message.
#[rustler::nif]
fn blob_writer_finish<'a>(
    env: Env<'a>,
    res: ResourceArc<StoreResource>,
    writer: ResourceArc<WriterResource>,
    reference: Term<'a>,
    tags: Vec<Term<'a>>,
) -> Term<'a> {
    let tags = match to_tags(tags) {
        Ok(tags) => tags,
        Err(reason) => return error(env, reason),
    };
    let taken = writer.0.lock().unwrap_or_else(|e| e.into_inner()).take();
    let Some(w) = taken else {
        return error(env, Reason(StoreError::Closed));
    };
    let guard = res.0.read().unwrap_or_else(|e| e.into_inner());
    let reply: Box<dyn WriteReply> = Box::new(BeamWrite(Reply::new(env, reference)));
    let result = match guard.as_ref() {
        Some(store) => store.finish_writer(w, tags, reply),
        None => Err((StoreError::Closed, reply)),
    };
    answer(env, result)
}

/// Drops an unfinished writer's temporary file now rather than at GC.
#[rustler::nif(schedule = "DirtyIo")]
fn blob_writer_abort(writer: ResourceArc<WriterResource>) -> Atom {
    writer.0.lock().unwrap_or_else(|e| e.into_inner()).take();
    atoms::ok()
}
