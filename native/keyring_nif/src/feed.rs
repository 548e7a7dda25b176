//! Feeds: a `keyring_core::feed::FeedBook` per instance as a resource, owned
//! by `Keyring.Feed.Server` (the only caller, so its lock is never contended).
//! Entries cross as their encoded bytes; decoded entries come back as
//! `{bytes, keyring, author, seq, prev, hash, timestamp_ms, type, content}`
//! with content a binary (inline) or `{cid, size}`.

use std::collections::HashSet;
use std::sync::Mutex;

use keyring_core::feed::{Content, Entry, FeedBook, FeedError, FeedId, Ingested, Limits, Status};
use rustler::{Binary, Encoder, Env, Resource, ResourceArc, Term};

use crate::hash::digest_binary;
use crate::identity::KeyPairResource;
use crate::timeslice::Charge;

mod atoms {
    rustler::atoms! {
        malformed, unsupported_version, bad_signature, not_the_author, wrong_keyring,
        too_far_ahead, held_full, not_a_chain, not_a_member, error,
        chained, held, duplicate, conflicting,
    }
}

pub(crate) struct FeedBookResource(Mutex<FeedBook>);

#[rustler::resource_impl]
impl Resource for FeedBookResource {}

pub(crate) struct Reason(FeedError);

impl Encoder for Reason {
    fn encode<'a>(&self, env: Env<'a>) -> Term<'a> {
        match &self.0 {
            FeedError::Malformed(why) => (atoms::malformed(), *why).encode(env),
            FeedError::UnsupportedVersion(v) => (atoms::unsupported_version(), *v).encode(env),
            FeedError::BadSignature => atoms::bad_signature().encode(env),
            FeedError::NotTheAuthor => atoms::not_the_author().encode(env),
            FeedError::WrongKeyring => atoms::wrong_keyring().encode(env),
            FeedError::TooFarAhead { seq, head } => {
                (atoms::too_far_ahead(), *seq, *head).encode(env)
            }
            FeedError::HeldFull { seq } => (atoms::held_full(), *seq).encode(env),
            FeedError::NotAChain { seq } => (atoms::not_a_chain(), *seq).encode(env),
            other => (atoms::error(), other.to_string()).encode(env),
        }
    }
}

type Outcome<T> = Result<T, Reason>;

fn key32(b: &Binary<'_>) -> Outcome<[u8; 32]> {
    b.as_slice()
        .try_into()
        .map_err(|_| Reason(FeedError::Malformed("keys and cids are 32 bytes")))
}

fn book(res: &FeedBookResource) -> std::sync::MutexGuard<'_, FeedBook> {
    res.0.lock().unwrap_or_else(|e| e.into_inner())
}

fn fields<'a>(env: Env<'a>, e: &Entry) -> Term<'a> {
    let b = e.body();
    let content = match &b.content {
        Content::Inline(bytes) => digest_binary(env, bytes).encode(env),
        Content::Blob { cid, size } => (digest_binary(env, cid), *size).encode(env),
    };
    let items = [
        digest_binary(env, &e.encode()).encode(env),
        digest_binary(env, &b.keyring).encode(env),
        digest_binary(env, &b.author).encode(env),
        b.seq.encode(env),
        digest_binary(env, &b.prev).encode(env),
        digest_binary(env, e.hash()).encode(env),
        b.timestamp_ms.encode(env),
        b.content_type.as_str().encode(env),
        content,
    ];
    rustler::types::tuple::make_tuple(env, &items)
}

/// `{status, entry, chained, forks}`: chained are the entries newly chained
/// (in order), forks the sequence numbers newly found forked.
fn outcome<'a>(env: Env<'a>, entry: &Entry, out: &Ingested) -> Term<'a> {
    let status = match out.status {
        Status::Chained => atoms::chained(),
        Status::Held => atoms::held(),
        Status::Duplicate => atoms::duplicate(),
        Status::Conflicting => atoms::conflicting(),
    };
    let chained: Vec<Term<'a>> = out.chained.iter().map(|e| fields(env, e)).collect();
    (status, fields(env, entry), chained, out.forks.clone()).encode(env)
}

#[rustler::nif]
fn feed_book_new(
    max_ahead: u64,
    max_waiting_per_feed: usize,
    max_waiting_bytes: usize,
) -> ResourceArc<FeedBookResource> {
    let limits = Limits {
        max_ahead,
        max_waiting_per_feed,
        max_waiting_bytes,
        ..Limits::default()
    };
    ResourceArc::new(FeedBookResource(Mutex::new(FeedBook::new(limits))))
}

/// Loads entries read back from this node's store, in chain order (their
/// signatures were checked before they were stored; links are checked again).
#[rustler::nif(schedule = "DirtyCpu")]
fn feed_load(res: ResourceArc<FeedBookResource>, entries: Vec<Binary<'_>>) -> Outcome<usize> {
    let mut book = book(&res);
    for bytes in &entries {
        let entry = Entry::decode(bytes.as_slice()).map_err(Reason)?;
        book.load(&entry).map_err(Reason)?;
    }
    Ok(entries.len())
}

/// Signs and chains the next entry of this node's feed in `keyring`.
#[rustler::nif]
fn feed_append<'a>(
    env: Env<'a>,
    res: ResourceArc<FeedBookResource>,
    author: ResourceArc<KeyPairResource>,
    keyring: Binary<'a>,
    timestamp_ms: u64,
    content_type: String,
    content: Term<'a>,
) -> Outcome<Term<'a>> {
    let _charge = Charge::start(env);
    let content = if let Ok(bytes) = content.decode::<Binary<'a>>() {
        Content::Inline(bytes.as_slice().to_vec())
    } else {
        let (cid, size): (Binary<'a>, u64) = content
            .decode()
            .map_err(|_| Reason(FeedError::Malformed("content is a binary or {cid, size}")))?;
        Content::Blob {
            cid: key32(&cid)?,
            size,
        }
    };
    let keyring = key32(&keyring)?;
    let (entry, out) = book(&res)
        .append(&author.0, keyring, timestamp_ms, content_type, content)
        .map_err(Reason)?;
    Ok(outcome(env, &entry, &out))
}

/// Verifies and ingests entries that arrived for `keyring`, whose authors
/// must be among `members`. One `{:ok, outcome} | {:error, reason}` per entry.
#[rustler::nif(schedule = "DirtyCpu")]
fn feed_ingest<'a>(
    env: Env<'a>,
    res: ResourceArc<FeedBookResource>,
    keyring: Binary<'a>,
    members: Vec<Binary<'a>>,
    entries: Vec<Binary<'a>>,
) -> Outcome<Vec<Term<'a>>> {
    let keyring = key32(&keyring)?;
    let members: HashSet<[u8; 32]> = members.iter().filter_map(|m| key32(m).ok()).collect();
    let mut book = book(&res);
    let ok = rustler::types::atom::ok();
    let error = rustler::types::atom::error();
    Ok(entries
        .iter()
        .map(|bytes| {
            let entry = match Entry::decode(bytes.as_slice()) {
                Ok(e) => e,
                Err(e) => return (error, Reason(e)).encode(env),
            };
            if entry.keyring() != &keyring {
                return (error, Reason(FeedError::WrongKeyring)).encode(env);
            }
            if !members.contains(entry.author()) {
                return (error, atoms::not_a_member()).encode(env);
            }
            match book.ingest(entry.clone()) {
                Ok(out) => (ok, outcome(env, &entry, &out)).encode(env),
                Err(e) => (error, Reason(e)).encode(env),
            }
        })
        .collect())
}

/// Decodes entries read back from this node's store (no signature check).
#[rustler::nif(schedule = "DirtyCpu")]
fn feed_decode<'a>(env: Env<'a>, entries: Vec<Binary<'a>>) -> Outcome<Vec<Term<'a>>> {
    entries
        .iter()
        .map(|b| {
            Entry::decode(b.as_slice())
                .map(|e| fields(env, &e))
                .map_err(Reason)
        })
        .collect()
}

/// `{seq, hash}` of a feed's head, or nil.
#[rustler::nif]
fn feed_head<'a>(
    env: Env<'a>,
    res: ResourceArc<FeedBookResource>,
    keyring: Binary<'a>,
    author: Binary<'a>,
) -> Outcome<Option<(u64, Binary<'a>)>> {
    let id = FeedId {
        keyring: key32(&keyring)?,
        author: key32(&author)?,
    };
    Ok(book(&res)
        .head(&id)
        .map(|(seq, hash)| (seq, digest_binary(env, &hash))))
}

/// Every feed of `keyring` as `{author, head_seq}`.
#[rustler::nif]
fn feed_heads<'a>(
    env: Env<'a>,
    res: ResourceArc<FeedBookResource>,
    keyring: Binary<'a>,
) -> Outcome<Vec<(Binary<'a>, u64)>> {
    let _charge = Charge::start(env);
    Ok(book(&res)
        .heads(&key32(&keyring)?)
        .into_iter()
        .map(|(author, seq)| (digest_binary(env, &author), seq))
        .collect())
}
