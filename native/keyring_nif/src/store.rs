//! The blob store (`keyring_store::Store`) for the BEAM. Writes are queued to
//! the store's writer or ingest threads and answered by message
//! (`{:keyring_reply, ref, result}`) once durable. Blob reads try the memory
//! cache on the caller's scheduler, then go to the store's reader threads,
//! which read the blob straight into the binary they answer with; other reads
//! run on dirty I/O schedulers. Nothing here holds a normal scheduler for
//! more than a cache lookup.

mod partial;
mod reads;
mod terms;
mod writes;

use std::sync::RwLock;

use keyring_store::{ReadReply, Store, StoreConfig, StoreError, WriteReply};
use rustler::{Atom, Encoder, Env, Resource, ResourceArc, Term};

use crate::atoms;
use crate::reply::Reply;
pub(crate) use terms::Reason;

pub(crate) struct StoreResource(RwLock<Option<Store>>);

#[rustler::resource_impl]
impl Resource for StoreResource {}

impl StoreResource {
    /// The store, unless closed.
    pub(crate) fn store(&self) -> Option<Store> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

pub(crate) type Outcome<T> = Result<T, Reason>;

pub(crate) fn with_store<T>(
    res: &StoreResource,
    f: impl FnOnce(&Store) -> Result<T, StoreError>,
) -> Outcome<T> {
    let guard = res.0.read().unwrap_or_else(|e| e.into_inner());
    match guard.as_ref() {
        Some(store) => f(store).map_err(Reason),
        None => Err(Reason(StoreError::Closed)),
    }
}

/// Hands a write to the store: `:ok` now and `{:keyring_reply, ref, result}`
/// later, or `{:error, reason}` now (the reply is then disarmed, so no second
/// answer follows).
fn submit<'a>(
    env: Env<'a>,
    res: &StoreResource,
    reference: Term<'a>,
    f: impl FnOnce(&Store, Box<dyn WriteReply>) -> Result<(), (StoreError, Box<dyn WriteReply>)>,
) -> Term<'a> {
    let reply: Box<dyn WriteReply> = Box::new(writes::BeamWrite(Reply::new(env, reference)));
    let guard = res.0.read().unwrap_or_else(|e| e.into_inner());
    let result = match guard.as_ref() {
        None => Err((StoreError::Closed, reply)),
        Some(store) => f(store, reply),
    };
    answer(env, result)
}

/// [`submit`] for a read.
fn read<'a>(
    env: Env<'a>,
    res: &StoreResource,
    reference: Term<'a>,
    f: impl FnOnce(&Store, Box<dyn ReadReply>) -> Result<(), (StoreError, Box<dyn ReadReply>)>,
) -> Term<'a> {
    let reply: Box<dyn ReadReply> = Box::new(reads::BeamRead(Reply::new(env, reference)));
    let guard = res.0.read().unwrap_or_else(|e| e.into_inner());
    let result = match guard.as_ref() {
        None => Err((StoreError::Closed, reply)),
        Some(store) => f(store, reply),
    };
    match result {
        Ok(()) => atoms::ok().encode(env),
        Err((e, reply)) => {
            reply.cancel();
            (atoms::error(), Reason(e)).encode(env)
        }
    }
}

fn answer<'a>(env: Env<'a>, result: Result<(), (StoreError, Box<dyn WriteReply>)>) -> Term<'a> {
    match result {
        Ok(()) => atoms::ok().encode(env),
        Err((e, reply)) => {
            reply.cancel();
            (atoms::error(), Reason(e)).encode(env)
        }
    }
}

#[rustler::nif(schedule = "DirtyIo")]
fn store_open(
    dir: String,
    cache_bytes: usize,
    read_threads: usize,
    ingest_threads: usize,
) -> Outcome<ResourceArc<StoreResource>> {
    let config = StoreConfig {
        cache_bytes,
        read_threads,
        ingest_threads,
        ..StoreConfig::default()
    };
    let store = Store::open(std::path::Path::new(&dir), &config).map_err(Reason)?;
    Ok(ResourceArc::new(StoreResource(RwLock::new(Some(store)))))
}

/// Finishes queued work, stops the store's threads and releases its files.
#[rustler::nif(schedule = "DirtyIo")]
fn store_close(res: ResourceArc<StoreResource>) -> Atom {
    let store = res.0.write().unwrap_or_else(|e| e.into_inner()).take();
    if let Some(store) = store {
        store.close();
    }
    atoms::ok()
}
