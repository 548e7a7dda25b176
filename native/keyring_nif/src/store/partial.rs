//! Partial blobs and verified streams from the BEAM: for tools and tests.
//! The data plane proper runs in Rust, on `keyring_store::Store` directly.

use keyring_store::{PartialOpen, StoreError};
use rustler::{Binary, Encoder, Env, NewBinary, Term};

use super::terms::{complete, encode_ranges, partial, to_cid, to_ranges};
use super::{with_store, Outcome, StoreResource};
use crate::atoms;
use crate::hash::digest_binary;
use rustler::ResourceArc;

/// Largest verified stream `store_encode` builds in memory.
const MAX_STREAM: u64 = 64 << 20;

/// What the store knows of the partial blob `cid`:
/// `{:ok, {size, size_verified, have, missing}}` or `{:ok, nil}`.
#[rustler::nif(schedule = "DirtyIo")]
fn store_partial_info<'a>(
    env: Env<'a>,
    res: ResourceArc<StoreResource>,
    cid: Binary<'a>,
) -> Outcome<Term<'a>> {
    let cid = to_cid(&cid)?;
    let info = with_store(&res, |s| s.blobs().partial(&cid))?;
    Ok(match info {
        Some(i) => (
            i.size,
            i.size_verified,
            encode_ranges(env, &i.have),
            encode_ranges(env, &i.missing),
        )
            .encode(env),
        None => rustler::types::atom::nil().encode(env),
    })
}

/// Writes the verified stream of `ranges` of blob `cid` (`size` bytes) into
/// its partial blob, saves, and completes it when nothing is missing:
/// `{:ok, {:partial, groups_written, groups_missing}}` or
/// `{:ok, {:complete, cid}}`. Blocks this dirty I/O scheduler for the
/// writes, an fsync and two commits.
#[rustler::nif(schedule = "DirtyIo")]
fn store_partial_write<'a>(
    env: Env<'a>,
    res: ResourceArc<StoreResource>,
    cid: Binary<'a>,
    size: u64,
    ranges: Vec<(u64, Term<'a>)>,
    stream: Binary<'a>,
) -> Outcome<Term<'a>> {
    let cid = to_cid(&cid)?;
    let ranges = to_ranges(ranges)?;
    let written = with_store(&res, |s| {
        let mut w = match s.partial(cid, size, false)? {
            PartialOpen::Complete => return Ok(None),
            PartialOpen::Writer(w) => w,
        };
        let result = w.write_stream(ranges, stream.as_slice());
        // Whatever verified before a failure is kept.
        w.save()?;
        let written = result?;
        let missing = w.missing().count_below(w.tree().groups());
        if missing == 0 {
            w.complete()?;
            return Ok(None);
        }
        Ok(Some((written, missing)))
    })?;
    Ok(match written {
        None => (complete(), digest_binary(env, &cid)).encode(env),
        Some((written, missing)) => (partial(), written, missing).encode(env),
    })
}

/// The verified stream of `ranges` of blob `cid`, as one binary (at most
/// 64 MiB): `{:ok, stream}` or `{:error, :not_found}`.
#[rustler::nif(schedule = "DirtyIo")]
fn store_encode<'a>(
    env: Env<'a>,
    res: ResourceArc<StoreResource>,
    cid: Binary<'a>,
    ranges: Vec<(u64, Term<'a>)>,
) -> Term<'a> {
    let result = to_cid(&cid).and_then(|cid| {
        let ranges = to_ranges(ranges)?;
        with_store(&res, |s| {
            let Some(blob) = s.blobs().open_blob(&cid, false)? else {
                return Ok(None);
            };
            let groups = keyring_core::verified::Tree::new(blob.size()).groups();
            let payload =
                ranges.clip(groups).count_below(groups) * keyring_core::verified::GROUP_SIZE;
            if payload > MAX_STREAM {
                return Err(StoreError::TooLarge("stream"));
            }
            let mut out = Vec::new();
            blob.write_verified(&ranges, &mut out)?;
            Ok(Some(out))
        })
    });
    match result {
        Ok(Some(bytes)) => {
            let mut bin = NewBinary::new(env, bytes.len());
            bin.as_mut_slice().copy_from_slice(&bytes);
            (atoms::ok(), Binary::from(bin)).encode(env)
        }
        Ok(None) => (atoms::error(), atoms::not_found()).encode(env),
        Err(reason) => (atoms::error(), reason).encode(env),
    }
}
