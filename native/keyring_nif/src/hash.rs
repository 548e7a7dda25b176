//! BLAKE3 hashing on the caller's scheduler, charged to its timeslice.
//! `Keyring.Hash` feeds large inputs in slices of at most 128 KiB (under
//! 100 µs each), so the caller yields between slices like an Erlang loop.

use std::sync::Mutex;

use keyring_core::hash::StreamHasher;
use rustler::{Binary, Env, NewBinary, Resource, ResourceArc};

use crate::timeslice::Charge;

/// A streaming hasher shared with the BEAM as an opaque reference.
struct HasherResource(Mutex<StreamHasher>);

#[rustler::resource_impl]
impl Resource for HasherResource {}

pub(crate) fn digest_binary<'a>(env: Env<'a>, digest: &[u8]) -> Binary<'a> {
    let mut out = NewBinary::new(env, digest.len());
    out.as_mut_slice().copy_from_slice(digest);
    out.into()
}

#[rustler::nif]
fn blake3_hash<'a>(env: Env<'a>, data: Binary<'a>) -> Binary<'a> {
    let _charge = Charge::start(env);
    digest_binary(env, &keyring_core::hash::digest(data.as_slice()))
}

#[rustler::nif]
fn hasher_new() -> ResourceArc<HasherResource> {
    ResourceArc::new(HasherResource(Mutex::new(StreamHasher::new())))
}

fn update(hasher: &HasherResource, data: &[u8]) -> rustler::Atom {
    // A poisoned lock only means an earlier update panicked mid-way; the
    // hasher state is still a valid prefix, so keep going.
    let mut h = hasher.0.lock().unwrap_or_else(|e| e.into_inner());
    h.update(data);
    crate::atoms::ok()
}

#[rustler::nif]
fn hasher_update<'a>(
    env: Env<'a>,
    hasher: ResourceArc<HasherResource>,
    data: Binary<'a>,
) -> rustler::Atom {
    let _charge = Charge::start(env);
    update(&hasher, data.as_slice())
}

#[rustler::nif]
fn hasher_finalize<'a>(env: Env<'a>, hasher: ResourceArc<HasherResource>) -> Binary<'a> {
    let h = hasher.0.lock().unwrap_or_else(|e| e.into_inner());
    digest_binary(env, &h.finalize())
}
