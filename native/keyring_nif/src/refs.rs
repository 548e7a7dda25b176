//! Signed refs: thin wrappers over `keyring_core::refs`. A ref crosses as its
//! encoded bytes; decoded fields come back as
//! `{bytes, keyring, author, seq, timestamp_ms, root, name}`.

use keyring_core::refs::{RefBody, RefError, SignedRef, Update};
use rustler::{Binary, Encoder, Env, ResourceArc, Term};

use crate::hash::digest_binary;
use crate::identity::KeyPairResource;
use crate::timeslice::Charge;

mod atoms {
    rustler::atoms! {
        malformed, unsupported_version, bad_signature, not_the_author, wrong_keyring,
        different_ref, stale, equivocation, new, replaces, duplicate, error,
    }
}

pub(crate) struct Reason(RefError);

impl Encoder for Reason {
    fn encode<'a>(&self, env: Env<'a>) -> Term<'a> {
        match &self.0 {
            RefError::Malformed(why) => (atoms::malformed(), *why).encode(env),
            RefError::UnsupportedVersion(v) => (atoms::unsupported_version(), *v).encode(env),
            RefError::BadSignature => atoms::bad_signature().encode(env),
            RefError::NotTheAuthor => atoms::not_the_author().encode(env),
            RefError::WrongKeyring => atoms::wrong_keyring().encode(env),
            RefError::DifferentRef => atoms::different_ref().encode(env),
            RefError::Stale { seq, current } => (atoms::stale(), *seq, *current).encode(env),
            RefError::Equivocation { seq } => (atoms::equivocation(), *seq).encode(env),
            other => (atoms::error(), other.to_string()).encode(env),
        }
    }
}

type Outcome<T> = Result<T, Reason>;

fn key32(b: &Binary<'_>) -> Outcome<[u8; 32]> {
    b.as_slice()
        .try_into()
        .map_err(|_| Reason(RefError::Malformed("keys and cids are 32 bytes")))
}

fn fields<'a>(env: Env<'a>, r: &SignedRef) -> Term<'a> {
    let b = r.body();
    (
        digest_binary(env, &r.encode()),
        digest_binary(env, &b.keyring),
        digest_binary(env, &b.author),
        b.seq,
        b.timestamp_ms,
        digest_binary(env, &b.root),
        b.name.as_str(),
    )
        .encode(env)
}

/// Signs a ref with the node's key (a ~25 µs signature, charged).
#[rustler::nif]
fn ref_sign<'a>(
    env: Env<'a>,
    author: ResourceArc<KeyPairResource>,
    keyring: Binary<'a>,
    name: String,
    root: Binary<'a>,
    seq: u64,
    timestamp_ms: u64,
) -> Outcome<Term<'a>> {
    let _charge = Charge::start(env);
    let body = RefBody {
        keyring: key32(&keyring)?,
        author: author.0.public_key(),
        seq,
        timestamp_ms,
        root: key32(&root)?,
        name,
    };
    let r = SignedRef::sign(body, &author.0).map_err(Reason)?;
    Ok(fields(env, &r))
}

/// Decodes a ref read back from this node's store (no signature check).
#[rustler::nif]
fn ref_decode<'a>(env: Env<'a>, bytes: Binary<'a>) -> Outcome<Term<'a>> {
    let _charge = Charge::start(env);
    let r = SignedRef::decode(bytes.as_slice()).map_err(Reason)?;
    Ok(fields(env, &r))
}

/// Decodes and verifies a ref that arrived for `keyring`, and checks it
/// against `current` (the held ref of the same name, or nil): answers
/// `{update, fields}` with update `:new | {:replaces, seq} | :duplicate`.
#[rustler::nif]
fn ref_accept<'a>(
    env: Env<'a>,
    bytes: Binary<'a>,
    keyring: Binary<'a>,
    current: Option<Binary<'a>>,
) -> Outcome<Term<'a>> {
    let _charge = Charge::start(env);
    let r = SignedRef::decode_verified(bytes.as_slice(), &key32(&keyring)?).map_err(Reason)?;
    let current = current
        .map(|c| SignedRef::decode(c.as_slice()))
        .transpose()
        .map_err(Reason)?;
    let update = match r.supersedes(current.as_ref()).map_err(Reason)? {
        Update::New => atoms::new().encode(env),
        Update::Replaces { previous } => (atoms::replaces(), previous).encode(env),
        Update::Duplicate => atoms::duplicate().encode(env),
    };
    Ok((update, fields(env, &r)).encode(env))
}
