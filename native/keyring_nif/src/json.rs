//! JSON at the BEAM boundary (serde_json): terms to JSON values and back, for
//! the gateway's requests, replies and events, and as `json_encode/1` /
//! `json_decode/1` for tests and tools.
//!
//! Terms to JSON: maps (atom, binary or integer keys) become objects, lists
//! arrays, UTF-8 binaries strings, integers (64-bit) and finite floats
//! numbers, `true`/`false`/`nil` themselves, other atoms strings. Tuples,
//! non-UTF-8 binaries, pids, refs and funs are refused: the caller converts
//! them first (see `Keyring.Gateway.JSON`). JSON to terms: objects become
//! maps with binary keys, `null` `nil`; integers that fit 64 bits stay integers.
//!
//! Normal-scheduler variants stop after a budget of terms or bytes and answer
//! `{:error, :dirty}`, so the caller retries on a dirty scheduler.

use rustler::types::atom;
use rustler::types::map::MapIterator;
use rustler::{Atom, Binary, Encoder, Env, NewBinary, Term, TermType};
use serde_json::{Map, Number, Value};

use crate::atoms;

/// Deepest nesting accepted either way.
pub(crate) const MAX_DEPTH: usize = 128;
/// Largest JSON text produced (64 MiB).
pub(crate) const MAX_JSON: usize = 64 << 20;
/// A normal-scheduler call visits at most this many terms...
const BUDGET_TERMS: usize = 20_000;
/// ...and copies at most this many bytes of strings.
const BUDGET_BYTES: usize = 256 * 1024;

#[derive(Debug)]
pub(crate) enum JsonError {
    /// Over the normal-scheduler budget: call the dirty variant.
    Dirty,
    TooDeep,
    TooLarge,
    Unsupported(&'static str),
    NotUtf8,
    Malformed(String),
}

impl Encoder for JsonError {
    fn encode<'a>(&self, env: Env<'a>) -> Term<'a> {
        match self {
            JsonError::Dirty => atoms::dirty().encode(env),
            JsonError::TooDeep => atoms::too_deep().encode(env),
            JsonError::TooLarge => atoms::too_large().encode(env),
            JsonError::Unsupported(what) => (atoms::unsupported(), *what).encode(env),
            JsonError::NotUtf8 => atoms::not_utf8().encode(env),
            JsonError::Malformed(m) => (atoms::malformed(), m.as_str()).encode(env),
        }
    }
}

/// Limits for one conversion: `None` budget means unlimited (dirty scheduler).
pub(crate) struct Budget {
    terms: Option<usize>,
    bytes: Option<usize>,
    total: usize,
}

impl Budget {
    pub(crate) fn normal() -> Self {
        Self {
            terms: Some(BUDGET_TERMS),
            bytes: Some(BUDGET_BYTES),
            total: 0,
        }
    }

    pub(crate) fn unlimited() -> Self {
        Self {
            terms: None,
            bytes: None,
            total: 0,
        }
    }

    fn term(&mut self) -> Result<(), JsonError> {
        if let Some(t) = self.terms.as_mut() {
            *t = t.checked_sub(1).ok_or(JsonError::Dirty)?;
        }
        Ok(())
    }

    fn bytes(&mut self, n: usize) -> Result<(), JsonError> {
        self.total += n;
        if self.total > MAX_JSON {
            return Err(JsonError::TooLarge);
        }
        if let Some(b) = self.bytes.as_mut() {
            *b = b.checked_sub(n).ok_or(JsonError::Dirty)?;
        }
        Ok(())
    }
}

fn text(t: Term<'_>, budget: &mut Budget) -> Result<String, JsonError> {
    match t.get_type() {
        TermType::Binary => {
            let b: Binary<'_> = t
                .decode()
                .map_err(|_| JsonError::Unsupported("bitstring"))?;
            budget.bytes(b.len())?;
            String::from_utf8(b.as_slice().to_vec()).map_err(|_| JsonError::NotUtf8)
        }
        TermType::Atom => t
            .atom_to_string()
            .map_err(|_| JsonError::Unsupported("atom")),
        TermType::Integer => {
            let i: i64 = t
                .decode()
                .map_err(|_| JsonError::Unsupported("integer outside 64 bits"))?;
            Ok(i.to_string())
        }
        _ => Err(JsonError::Unsupported(
            "map key (atoms, binaries and integers only)",
        )),
    }
}

/// A term as a JSON value.
pub(crate) fn to_value(t: Term<'_>, depth: usize, budget: &mut Budget) -> Result<Value, JsonError> {
    if depth > MAX_DEPTH {
        return Err(JsonError::TooDeep);
    }
    budget.term()?;
    Ok(match t.get_type() {
        TermType::Integer => match t.decode::<i64>() {
            Ok(i) => Value::from(i),
            Err(_) => Value::from(
                t.decode::<u64>()
                    .map_err(|_| JsonError::Unsupported("integer outside 64 bits"))?,
            ),
        },
        TermType::Float => {
            let f: f64 = t.decode().map_err(|_| JsonError::Unsupported("float"))?;
            Value::Number(Number::from_f64(f).ok_or(JsonError::Unsupported("non-finite float"))?)
        }
        TermType::Binary => Value::String(text(t, budget)?),
        TermType::Atom => {
            let a: Atom = t.decode().map_err(|_| JsonError::Unsupported("atom"))?;
            if a == atom::nil() {
                Value::Null
            } else if a == atom::true_() {
                Value::Bool(true)
            } else if a == atom::false_() {
                Value::Bool(false)
            } else {
                Value::String(text(t, budget)?)
            }
        }
        TermType::List => {
            let n = t
                .list_length()
                .map_err(|_| JsonError::Unsupported("improper list"))?;
            let iter = t
                .into_list_iterator()
                .map_err(|_| JsonError::Unsupported("list"))?;
            let mut out = Vec::with_capacity(n.min(4096));
            for item in iter {
                out.push(to_value(item, depth + 1, budget)?);
            }
            Value::Array(out)
        }
        TermType::Map => {
            let iter = MapIterator::new(t).ok_or(JsonError::Unsupported("map"))?;
            let mut out = Map::new();
            for (k, v) in iter {
                let k = text(k, budget)?;
                out.insert(k, to_value(v, depth + 1, budget)?);
            }
            Value::Object(out)
        }
        TermType::Tuple => return Err(JsonError::Unsupported("tuple")),
        TermType::Fun => return Err(JsonError::Unsupported("fun")),
        TermType::Pid => return Err(JsonError::Unsupported("pid")),
        TermType::Port => return Err(JsonError::Unsupported("port")),
        TermType::Ref => return Err(JsonError::Unsupported("reference")),
        TermType::Unknown => return Err(JsonError::Unsupported("unknown term")),
    })
}

/// A term as JSON text.
pub(crate) fn to_json(t: Term<'_>, budget: &mut Budget) -> Result<Vec<u8>, JsonError> {
    let v = to_value(t, 0, budget)?;
    let out = serde_json::to_vec(&v).map_err(|e| JsonError::Malformed(e.to_string()))?;
    if out.len() > MAX_JSON {
        return Err(JsonError::TooLarge);
    }
    Ok(out)
}

fn binary<'a>(env: Env<'a>, bytes: &[u8]) -> Term<'a> {
    let mut out = NewBinary::new(env, bytes.len());
    out.as_mut_slice().copy_from_slice(bytes);
    Binary::from(out).encode(env)
}

/// A JSON value as a term (depth is bounded by serde_json's parser: 128).
pub(crate) fn to_term<'a>(env: Env<'a>, v: &Value) -> Term<'a> {
    match v {
        Value::Null => atom::nil().encode(env),
        Value::Bool(b) => b.encode(env),
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => i.encode(env),
            (None, Some(u)) => u.encode(env),
            _ => n.as_f64().unwrap_or(0.0).encode(env),
        },
        Value::String(s) => binary(env, s.as_bytes()),
        Value::Array(items) => items
            .iter()
            .map(|i| to_term(env, i))
            .collect::<Vec<_>>()
            .encode(env),
        Value::Object(map) => {
            let keys: Vec<Term<'a>> = map.keys().map(|k| binary(env, k.as_bytes())).collect();
            let values: Vec<Term<'a>> = map.values().map(|v| to_term(env, v)).collect();
            // Keys of a parsed object are unique (serde_json keeps the last).
            Term::map_from_term_arrays(env, &keys, &values)
                .unwrap_or_else(|_| atom::nil().encode(env))
        }
    }
}

fn encode_nif<'a>(env: Env<'a>, t: Term<'a>, mut budget: Budget) -> Result<Term<'a>, JsonError> {
    let bytes = to_json(t, &mut budget)?;
    Ok(binary(env, &bytes))
}

fn decode_nif<'a>(
    env: Env<'a>,
    b: Binary<'a>,
    limit: Option<usize>,
) -> Result<Term<'a>, JsonError> {
    if limit.is_some_and(|l| b.len() > l) {
        return Err(JsonError::Dirty);
    }
    if b.len() > MAX_JSON {
        return Err(JsonError::TooLarge);
    }
    let v: Value =
        serde_json::from_slice(b.as_slice()).map_err(|e| JsonError::Malformed(e.to_string()))?;
    Ok(to_term(env, &v))
}

#[rustler::nif]
fn json_encode<'a>(env: Env<'a>, t: Term<'a>) -> Result<Term<'a>, JsonError> {
    let _charge = crate::timeslice::Charge::start(env);
    encode_nif(env, t, Budget::normal())
}

#[rustler::nif(schedule = "DirtyCpu")]
fn json_encode_dirty<'a>(env: Env<'a>, t: Term<'a>) -> Result<Term<'a>, JsonError> {
    encode_nif(env, t, Budget::unlimited())
}

#[rustler::nif]
fn json_decode<'a>(env: Env<'a>, b: Binary<'a>) -> Result<Term<'a>, JsonError> {
    let _charge = crate::timeslice::Charge::start(env);
    decode_nif(env, b, Some(BUDGET_BYTES / 4))
}

#[rustler::nif(schedule = "DirtyCpu")]
fn json_decode_dirty<'a>(env: Env<'a>, b: Binary<'a>) -> Result<Term<'a>, JsonError> {
    decode_nif(env, b, None)
}
