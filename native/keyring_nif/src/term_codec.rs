//! The restricted term codec at the BEAM boundary: BEAM terms are walked
//! straight into `keyring_core::wire::term::Writer`; decoded values become
//! terms using EXISTING atoms only (an unknown atom name is an error, never a
//! new atom).
//!
//! Scheduling: `term_encode` and `term_decode` run on the caller's normal
//! scheduler under [`NORMAL_ENCODE`] / [`NORMAL_DECODE`], bounds that keep a
//! call well under a millisecond; a document past them makes the call stop
//! early and answer `{:error, :dirty}`, and the caller repeats it with the
//! `_dirty` twin, which runs on a dirty CPU scheduler under [`LIMITS`] only.

use bytes::Bytes;
use keyring_core::wire::term::{self, Limits, TermError, Value, Writer};
use rustler::types::tuple::{get_tuple, make_tuple};
use rustler::{Atom, Binary, Encoder, Env, NewBinary, Term, TermType};

use crate::atoms;
use crate::lent::{lend, LEND_MIN};

/// Largest document either way (64 MiB).
pub(crate) const MAX_TERM: usize = 64 << 20;

/// The limits every document is encoded and decoded under, whichever
/// scheduler runs it.
pub(crate) const LIMITS: Limits = Limits::new(MAX_TERM);

/// Values one normal-scheduler call may encode or decode.
const NORMAL_VALUES: usize = 1_000;
/// Bytes one normal-scheduler call may copy into a document, or the
/// equivalent cost of building decoded terms (see [`build_cost`]).
const NORMAL_COPIED: usize = 256 * 1024;
/// Encoding on a normal scheduler: every byte of the document is copied.
const NORMAL_ENCODE: Limits = Limits {
    max_values: NORMAL_VALUES,
    max_bytes: NORMAL_COPIED,
    ..LIMITS
};
/// Decoding on a normal scheduler: large binaries become sub-binaries of the
/// input (no copy), so only the values are bounded while parsing; the bytes
/// that would be copied (and other costs of building terms, see
/// [`build_cost`]) are counted before any term is built.
const NORMAL_DECODE: Limits = Limits {
    max_values: NORMAL_VALUES,
    ..LIMITS
};

pub(crate) enum CodecError {
    Term(TermError),
    UnknownAtom(String),
    DuplicateKey,
    /// Past a normal call's bounds: repeat on a dirty scheduler.
    Dirty,
}

impl Encoder for CodecError {
    fn encode<'a>(&self, env: Env<'a>) -> Term<'a> {
        match self {
            CodecError::UnknownAtom(name) => (atoms::unknown_atom(), name.as_str()).encode(env),
            CodecError::DuplicateKey => (atoms::bad_term(), "duplicate map key").encode(env),
            CodecError::Dirty => atoms::dirty().encode(env),
            CodecError::Term(TermError::Unsupported(what)) => {
                (atoms::unsupported(), *what).encode(env)
            }
            CodecError::Term(TermError::TooLarge(n)) => (atoms::too_large(), *n).encode(env),
            CodecError::Term(TermError::TooManyValues(n)) => {
                (atoms::too_many_values(), *n).encode(env)
            }
            CodecError::Term(TermError::TooDeep) => atoms::too_deep().encode(env),
            CodecError::Term(TermError::Truncated) => atoms::truncated().encode(env),
            CodecError::Term(e @ TermError::ClaimExceedsInput { .. }) => {
                (atoms::truncated(), e.to_string()).encode(env)
            }
            CodecError::Term(e) => (atoms::bad_term(), e.to_string()).encode(env),
        }
    }
}

impl From<TermError> for CodecError {
    fn from(e: TermError) -> Self {
        CodecError::Term(e)
    }
}

impl CodecError {
    /// An error from a normal-scheduler attempt under `normal`: a bound that
    /// only the normal attempt has means "go dirty"; anything else is final.
    fn after_normal(self, normal: &Limits) -> Self {
        match self {
            CodecError::Term(TermError::TooManyValues(n))
                if n == normal.max_values && n < LIMITS.max_values =>
            {
                CodecError::Dirty
            }
            CodecError::Term(TermError::TooLarge(n))
                if n == normal.max_bytes && n < LIMITS.max_bytes =>
            {
                CodecError::Dirty
            }
            other => other,
        }
    }
}

/// Writes `t` into `w`. With `lent`, binaries of [`LEND_MIN`] bytes or more
/// are not copied: the document is split around them and they are lent (see
/// [`encode_term_pieces`]).
pub(crate) fn write_term(
    w: &mut Writer,
    t: Term<'_>,
    depth: usize,
    mut lent: Option<&mut Vec<Bytes>>,
) -> Result<(), TermError> {
    if depth >= term::MAX_DEPTH {
        return Err(TermError::TooDeep);
    }
    match t.get_type() {
        TermType::Integer => {
            let i: i64 = t
                .decode()
                .map_err(|_| TermError::Unsupported("integer outside 64 bits"))?;
            w.int(i)
        }
        TermType::Float => w.float(t.decode().map_err(|_| TermError::Unsupported("float"))?),
        TermType::Binary => {
            let b: Binary<'_> = t
                .decode()
                .map_err(|_| TermError::Unsupported("bitstring"))?;
            match lent {
                Some(pieces) if b.len() >= LEND_MIN => {
                    w.binary_header(b.len())?;
                    pieces.push(Bytes::from(w.split()));
                    pieces.push(lend(&b));
                    Ok(())
                }
                _ => w.binary(b.as_slice()),
            }
        }
        TermType::Atom => {
            let name = t
                .atom_to_string()
                .map_err(|_| TermError::Unsupported("atom"))?;
            w.atom(&name)
        }
        TermType::List => {
            w.list(list_length(t, w.values_left(), w.limits().max_values)?)?;
            let iter = t
                .into_list_iterator()
                .map_err(|_| TermError::Unsupported("list"))?;
            for item in iter {
                write_term(w, item, depth + 1, lent.as_deref_mut())?;
            }
            Ok(())
        }
        TermType::Tuple => {
            let items = get_tuple(t).map_err(|_| TermError::Unsupported("tuple"))?;
            w.tuple(items.len())?;
            items
                .into_iter()
                .try_for_each(|i| write_term(w, i, depth + 1, lent.as_deref_mut()))
        }
        TermType::Map => {
            let n = t.map_size().map_err(|_| TermError::Unsupported("map"))?;
            w.map(n)?;
            let iter =
                rustler::types::map::MapIterator::new(t).ok_or(TermError::Unsupported("map"))?;
            for (k, v) in iter {
                write_term(w, k, depth + 1, lent.as_deref_mut())?;
                write_term(w, v, depth + 1, lent.as_deref_mut())?;
            }
            Ok(())
        }
        TermType::Fun => Err(TermError::Unsupported("fun")),
        TermType::Pid => Err(TermError::Unsupported("pid")),
        TermType::Port => Err(TermError::Unsupported("port")),
        TermType::Ref => Err(TermError::Unsupported("reference")),
        TermType::Unknown => Err(TermError::Unsupported("unknown term")),
    }
}

/// The length of the proper list `t`, walking at most `budget` cells
/// (`enif_get_list_length` walks them all, however many the writer could
/// take): a list that cannot fit in the `budget` values left of
/// `max_values` is refused as soon as it is known to be one.
fn list_length(mut t: Term<'_>, budget: usize, max_values: usize) -> Result<usize, TermError> {
    let mut n = 0;
    while let Ok((_, tail)) = t.list_get_cell() {
        n += 1;
        // The list's own header is one value, each element at least one more.
        if n >= budget {
            return Err(TermError::TooManyValues(max_values));
        }
        t = tail;
    }
    if t.get_type() == TermType::List {
        Ok(n)
    } else {
        Err(TermError::Unsupported("improper list"))
    }
}

pub(crate) fn encode_term(t: Term<'_>, limits: Limits) -> Result<Vec<u8>, CodecError> {
    let mut w = Writer::with_limits(limits);
    write_term(&mut w, t, 0, None)?;
    Ok(w.finish())
}

/// Encodes `t` as pieces that concatenate to the document: binaries of
/// [`LEND_MIN`] bytes or more are lent, not copied, so the work is
/// proportional to the term's structure and its small binaries only.
pub(crate) fn encode_term_pieces(t: Term<'_>) -> Result<Vec<Bytes>, CodecError> {
    let mut w = Writer::with_limits(LIMITS);
    let mut pieces = Vec::new();
    write_term(&mut w, t, 0, Some(&mut pieces))?;
    let last = w.finish();
    if !last.is_empty() {
        pieces.push(Bytes::from(last));
    }
    Ok(pieces)
}

/// Binaries at least this large are returned as sub-binaries of the input
/// (no copy); smaller ones are copied so they do not pin the whole input.
const SUB_BINARY_MIN: usize = 4096;

/// Binaries up to this size live on the process heap; larger ones are
/// reference-counted and allocated one by one.
const HEAP_BINARY_MAX: usize = 64;

/// The cost of building `v`'s terms, in bytes-copied equivalents, counted
/// until `limit` is passed: a copied binary's bytes, plus an allocation
/// (counted as 1 KiB) for a reference-counted one; an atom name 16 times
/// (hashed and compared in the atom table, ~2 µs for 255 bytes).
fn build_cost(v: &Value<'_>, limit: usize) -> usize {
    fn walk(v: &Value<'_>, acc: &mut usize, limit: usize) {
        if *acc > limit {
            return;
        }
        match v {
            Value::Binary(b) if b.len() <= HEAP_BINARY_MAX => *acc += b.len(),
            Value::Binary(b) if b.len() < SUB_BINARY_MIN => *acc += b.len() + 1024,
            Value::Atom(name) => *acc += 16 * name.len(),
            Value::List(items) | Value::Tuple(items) => {
                items.iter().for_each(|i| walk(i, acc, limit))
            }
            Value::Map(pairs) => pairs.iter().for_each(|(k, v)| {
                walk(k, acc, limit);
                walk(v, acc, limit)
            }),
            _ => {}
        }
    }
    let mut acc = 0;
    walk(v, &mut acc, limit);
    acc
}

fn binary_term<'a>(env: Env<'a>, b: &[u8], source: Option<&Binary<'a>>) -> Term<'a> {
    if let Some(src) = source.filter(|_| b.len() >= SUB_BINARY_MIN) {
        let base = src.as_slice().as_ptr() as usize;
        let start = b.as_ptr() as usize;
        if start >= base && start + b.len() <= base + src.len() {
            if let Ok(sub) = src.make_subbinary(start - base, b.len()) {
                return sub.encode(env);
            }
        }
    }
    let mut out = NewBinary::new(env, b.len());
    out.as_mut_slice().copy_from_slice(b);
    Binary::from(out).encode(env)
}

fn value_to_term_in<'a>(
    env: Env<'a>,
    v: &Value<'_>,
    source: Option<&Binary<'a>>,
) -> Result<Term<'a>, CodecError> {
    let value_to_term = |env, v| value_to_term_in(env, v, source);
    Ok(match v {
        Value::Int(i) => i.encode(env),
        Value::Float(f) => f.encode(env),
        Value::Binary(b) => binary_term(env, b, source),
        Value::Atom(name) => Atom::existing_from_utf8_bytes(env, name.as_bytes())
            .map_err(|_| CodecError::UnknownAtom((*name).to_owned()))?
            .encode(env),
        Value::List(items) => items
            .iter()
            .map(|i| value_to_term(env, i))
            .collect::<Result<Vec<_>, _>>()?
            .encode(env),
        Value::Tuple(items) => {
            let terms = items
                .iter()
                .map(|i| value_to_term(env, i))
                .collect::<Result<Vec<_>, _>>()?;
            make_tuple(env, &terms)
        }
        Value::Map(pairs) => {
            let mut keys = Vec::with_capacity(pairs.len());
            let mut values = Vec::with_capacity(pairs.len());
            for (k, v) in pairs {
                keys.push(value_to_term(env, k)?);
                values.push(value_to_term(env, v)?);
            }
            Term::map_from_term_arrays(env, &keys, &values).map_err(|_| CodecError::DuplicateKey)?
        }
    })
}

/// Decodes `bytes`; `normal` bounds the work of a normal-scheduler call.
fn decode_binary<'a>(
    env: Env<'a>,
    bytes: Binary<'a>,
    normal: bool,
) -> Result<Term<'a>, CodecError> {
    let limits = if normal { NORMAL_DECODE } else { LIMITS };
    let v = term::decode(bytes.as_slice(), limits).map_err(|e| {
        let e = CodecError::from(e);
        if normal {
            e.after_normal(&NORMAL_DECODE)
        } else {
            e
        }
    })?;
    if normal && build_cost(&v, NORMAL_COPIED) > NORMAL_COPIED {
        return Err(CodecError::Dirty);
    }
    value_to_term_in(env, &v, Some(&bytes))
}

fn encode_nif<'a>(env: Env<'a>, t: Term<'a>, normal: bool) -> Result<Binary<'a>, CodecError> {
    let bytes = if normal {
        encode_term(t, NORMAL_ENCODE).map_err(|e| e.after_normal(&NORMAL_ENCODE))?
    } else {
        encode_term(t, LIMITS)?
    };
    let mut out = NewBinary::new(env, bytes.len());
    out.as_mut_slice().copy_from_slice(&bytes);
    Ok(out.into())
}

/// Encodes on the caller's scheduler, or answers `{:error, :dirty}` (after
/// at most [`NORMAL_ENCODE`]'s work) for `term_encode_dirty`.
#[rustler::nif]
fn term_encode<'a>(env: Env<'a>, t: Term<'a>) -> Result<Binary<'a>, CodecError> {
    let _charge = crate::timeslice::Charge::start(env);
    encode_nif(env, t, true)
}

#[rustler::nif(schedule = "DirtyCpu")]
fn term_encode_dirty<'a>(env: Env<'a>, t: Term<'a>) -> Result<Binary<'a>, CodecError> {
    encode_nif(env, t, false)
}

/// Decodes on the caller's scheduler, or answers `{:error, :dirty}` (after
/// at most [`NORMAL_DECODE`]'s work) for `term_decode_dirty`.
#[rustler::nif]
fn term_decode<'a>(env: Env<'a>, bytes: Binary<'a>) -> Result<Term<'a>, CodecError> {
    let _charge = crate::timeslice::Charge::start(env);
    decode_binary(env, bytes, true)
}

#[rustler::nif(schedule = "DirtyCpu")]
fn term_decode_dirty<'a>(env: Env<'a>, bytes: Binary<'a>) -> Result<Term<'a>, CodecError> {
    decode_binary(env, bytes, false)
}
