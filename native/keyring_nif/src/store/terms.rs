//! Terms of the store: reasons, tags, group ranges, GC cursors.

use keyring_core::hash::Digest;
use keyring_core::verified::{DecodeError, GroupRanges};
use keyring_store::{GcCursor, StoreError, Tag};
use rustler::{Atom, Binary, Encoder, Env, Term};

use crate::atoms;
use crate::hash::digest_binary;

rustler::atoms! {
    pin,
    share,
    start,
    blobs,
    partials,
    files,
    done,
    infinity,
    size_mismatch,
    wrong_blob,
    too_small,
    incomplete,
    partial_gone,
    bad_stream,
    no_memory,
    parent_mismatch,
    group_mismatch,
    trailing_bytes,
    partial,
    complete,
}

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
            StoreError::SizeMismatch { known, claimed } => {
                (size_mismatch(), *known, *claimed).encode(env)
            }
            StoreError::WrongBlob => wrong_blob().encode(env),
            StoreError::TooSmallForPartial(n) => (too_small(), *n).encode(env),
            StoreError::Incomplete { missing } => (incomplete(), *missing).encode(env),
            StoreError::PartialGone => partial_gone().encode(env),
            StoreError::BadStream(e) => (bad_stream(), stream_error(env, e)).encode(env),
            StoreError::NoMemory => no_memory().encode(env),
            other => (atoms::io(), other.to_string()).encode(env),
        }
    }
}

fn stream_error<'a>(env: Env<'a>, e: &DecodeError) -> Term<'a> {
    match *e {
        DecodeError::ParentMismatch { group } => (parent_mismatch(), group).encode(env),
        DecodeError::GroupMismatch { group } => (group_mismatch(), group).encode(env),
        DecodeError::Truncated { group } => (atoms::truncated(), group).encode(env),
        DecodeError::TrailingBytes => trailing_bytes().encode(env),
        DecodeError::SizeMismatch { expected, claimed } => {
            (size_mismatch(), expected, claimed).encode(env)
        }
        other => other.to_string().encode(env),
    }
}

impl std::panic::RefUnwindSafe for Reason {}

pub(crate) fn badarg(what: &'static str) -> Reason {
    Reason(StoreError::Io(format!("bad argument: {what}")))
}

pub(crate) fn to_cid(bin: &Binary<'_>) -> Result<Digest, Reason> {
    Digest::try_from(bin.as_slice()).map_err(|_| badarg("a cid is 32 bytes"))
}

/// `{:pin, name}` or `{:share, ring_id, name}`.
pub(crate) fn to_tag(term: Term<'_>) -> Result<Tag, Reason> {
    if let Ok((kind, name)) = term.decode::<(Atom, Binary<'_>)>() {
        if kind == pin() {
            return Ok(Tag::Pin {
                name: name.as_slice().to_vec(),
            });
        }
    }
    if let Ok((kind, ring, name)) = term.decode::<(Atom, Binary<'_>, Binary<'_>)>() {
        if kind == share() {
            let ring = <[u8; 32]>::try_from(ring.as_slice())
                .map_err(|_| badarg("a keyring id is 32 bytes"))?;
            return Ok(Tag::Share {
                ring,
                name: name.as_slice().to_vec(),
            });
        }
    }
    Err(badarg("a tag is {:pin, name} or {:share, ring_id, name}"))
}

pub(crate) fn to_tags(terms: Vec<Term<'_>>) -> Result<Vec<Tag>, Reason> {
    terms.into_iter().map(to_tag).collect()
}

/// A list of `{start, stop}` group ranges (`stop` may be `:infinity`).
pub(crate) fn to_ranges(terms: Vec<(u64, Term<'_>)>) -> Result<GroupRanges, Reason> {
    let mut out = GroupRanges::empty();
    for (start, stop) in terms {
        let stop = match stop.decode::<u64>() {
            Ok(n) => n,
            Err(_) if stop.decode::<Atom>().ok() == Some(infinity()) => u64::MAX,
            Err(_) => return Err(badarg("a range is {start, stop | :infinity}")),
        };
        out.insert(start..stop);
    }
    Ok(out)
}

pub(crate) fn encode_ranges<'a>(env: Env<'a>, ranges: &GroupRanges) -> Term<'a> {
    ranges
        .iter()
        .map(|r| {
            if r.end == u64::MAX {
                (r.start, infinity()).encode(env)
            } else {
                (r.start, r.end).encode(env)
            }
        })
        .collect::<Vec<_>>()
        .encode(env)
}

pub(crate) fn to_cursor(term: Term<'_>) -> Result<GcCursor, Reason> {
    let bad = || badarg("a GC cursor");
    if let Ok(a) = term.decode::<Atom>() {
        return match a {
            a if a == start() => Ok(GcCursor::Start),
            a if a == done() => Ok(GcCursor::Done),
            _ => Err(bad()),
        };
    }
    let (kind, arg) = term.decode::<(Atom, Term<'_>)>().map_err(|_| bad())?;
    if kind == blobs() {
        let cid = arg.decode::<Binary<'_>>().map_err(|_| bad())?;
        return Ok(GcCursor::Blobs(to_cid(&cid)?));
    }
    if kind == partials() {
        if arg.decode::<Atom>().is_ok() {
            return Ok(GcCursor::Partials(None));
        }
        let cid = arg.decode::<Binary<'_>>().map_err(|_| bad())?;
        return Ok(GcCursor::Partials(Some(to_cid(&cid)?)));
    }
    if kind == files() {
        return Ok(GcCursor::Files(arg.decode::<u16>().map_err(|_| bad())?));
    }
    Err(bad())
}

pub(crate) fn encode_cursor<'a>(env: Env<'a>, cursor: &GcCursor) -> Term<'a> {
    match cursor {
        GcCursor::Start => start().encode(env),
        GcCursor::Done => done().encode(env),
        GcCursor::Blobs(cid) => (blobs(), digest_binary(env, cid)).encode(env),
        GcCursor::Partials(None) => (partials(), rustler::types::atom::nil()).encode(env),
        GcCursor::Partials(Some(cid)) => (partials(), digest_binary(env, cid)).encode(env),
        GcCursor::Files(n) => (files(), *n).encode(env),
    }
}
