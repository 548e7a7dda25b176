//! Ring resources: a verified membership ring held in Rust, extended entry by
//! entry (see `keyring_core::membership::Ring`).

use std::sync::Arc;

use keyring_core::membership::{IngestReport, Invite, Ring, SharedRing};
use rustler::{Binary, Encoder, Env, Resource, ResourceArc, Term};

use super::terms::{
    bin, decode_op, encode_error, encode_op, encode_signed_op, encoded_entries, hash32, key, map,
    summary, Outcome, Reason,
};
use crate::atoms;
use crate::identity::KeyPairResource;

/// A ring shared by the BEAM and (through a `Registry`) Rust threads.
pub(crate) struct RingResource(pub(crate) Arc<SharedRing>);

#[rustler::resource_impl]
impl Resource for RingResource {}

fn resource(ring: Ring) -> ResourceArc<RingResource> {
    ResourceArc::new(RingResource(Arc::new(SharedRing::new(ring))))
}

/// Decodes and verifies stored entries (any order, each verified once) into
/// a ring. The clock and the fork cap are not applied to stored entries, and
/// every entry must be valid and connected: for entries from a peer (a
/// joiner's first log), open the genesis alone and `ring_ingest` the rest.
#[rustler::nif(schedule = "DirtyCpu")]
fn ring_open(entries: Vec<Binary<'_>>) -> Outcome<ResourceArc<RingResource>> {
    Ok(resource(Ring::open(entries.iter().map(|b| b.as_slice()))?))
}

/// A new keyring whose genesis `root` signs, naming `admins` besides it.
#[rustler::nif(schedule = "DirtyCpu")]
fn ring_create(
    root: ResourceArc<KeyPairResource>,
    name: String,
    admins: Vec<Binary<'_>>,
    now_ms: u64,
) -> Outcome<ResourceArc<RingResource>> {
    let admins = admins.iter().map(key).collect::<Outcome<Vec<_>>>()?;
    Ok(resource(Ring::create(&root.0, &name, admins, now_ms)?))
}

/// Signs `op` with `signer` on the effective head; answers the new entry.
#[rustler::nif(schedule = "DirtyCpu")]
fn ring_append<'a>(
    env: Env<'a>,
    ring: ResourceArc<RingResource>,
    signer: ResourceArc<KeyPairResource>,
    op: Term<'a>,
    now_ms: u64,
) -> Outcome<Binary<'a>> {
    let op = decode_op(op)?;
    let entry = ring.0.update(|r| r.append(&signer.0, op, now_ms))?;
    Ok(bin(env, &entry.encode()))
}

/// Adds the entries the ring lacks (see `Ring::ingest`) and answers
/// `%{added, duplicates, held, rejected, errors, head, length, forks, switched}`.
#[rustler::nif(schedule = "DirtyCpu")]
fn ring_ingest<'a>(
    env: Env<'a>,
    ring: ResourceArc<RingResource>,
    entries: Vec<Binary<'a>>,
    now_ms: u64,
) -> Outcome<Term<'a>> {
    let (report, head, length) = ring.0.update(|r| {
        let report = r.ingest(entries.iter().map(|b| b.as_slice()), now_ms);
        (report, r.head_hash(), r.len())
    });
    Ok(report_term(env, &report, &head, length))
}

fn report_term<'a>(env: Env<'a>, r: &IngestReport, head: &[u8; 32], length: u64) -> Term<'a> {
    let errors: Vec<Term<'a>> = r.errors.iter().map(|e| encode_error(env, e)).collect();
    let forks: Vec<Binary<'a>> = r.forks.iter().map(|h| bin(env, h)).collect();
    let switched = match &r.switch {
        None => rustler::types::atom::nil().encode(env),
        Some(s) => {
            let abandoned: Vec<Term<'a>> = s
                .abandoned
                .iter()
                .map(|e| encode_signed_op(env, e))
                .collect();
            map(
                env,
                &[
                    (atoms::at(), s.at.encode(env)),
                    (atoms::abandoned(), abandoned.encode(env)),
                ],
            )
        }
    };
    map(
        env,
        &[
            (atoms::added(), r.added.encode(env)),
            (atoms::duplicates(), r.duplicates.encode(env)),
            (atoms::held(), r.held.encode(env)),
            (atoms::rejected(), r.rejected.encode(env)),
            (atoms::errors(), errors.encode(env)),
            (atoms::head(), bin(env, head).encode(env)),
            (atoms::length(), length.encode(env)),
            (atoms::forks(), forks.encode(env)),
            (atoms::switched(), switched),
        ],
    )
}

/// The ring's state at `now_ms` (see `terms::summary`), with its counters
/// `verified`, `pending` and `side`.
#[rustler::nif(schedule = "DirtyCpu")]
fn ring_summary<'a>(
    env: Env<'a>,
    ring: ResourceArc<RingResource>,
    now_ms: u64,
) -> Outcome<Term<'a>> {
    let (s, verified, pending, side) = ring.0.read(|r| {
        (
            r.summary(now_ms),
            r.verifications(),
            r.pending_len(),
            r.side_len(),
        )
    });
    let extra = [
        (atoms::verified(), verified.encode(env)),
        (atoms::pending(), pending.encode(env)),
        (atoms::side(), side.encode(env)),
    ];
    Ok(summary(env, &s, &extra))
}

/// Entries (parents first) a peer lacks, given the hashes it told us (its
/// `locator` from `ring_heads`); `[]` answers every entry.
#[rustler::nif(schedule = "DirtyCpu")]
fn ring_entries<'a>(
    env: Env<'a>,
    ring: ResourceArc<RingResource>,
    since: Vec<Binary<'a>>,
) -> Outcome<Vec<Binary<'a>>> {
    let since = since.iter().map(hash32).collect::<Outcome<Vec<_>>>()?;
    Ok(ring
        .0
        .read(|r| encoded_entries(env, r.entries_since(&since))))
}

/// `%{id, head, length, heads, locator}` from the last published state
/// (never waits for a writer): what to tell a peer in anti-entropy.
#[rustler::nif]
fn ring_heads<'a>(env: Env<'a>, ring: ResourceArc<RingResource>) -> Outcome<Term<'a>> {
    let p = ring.0.published();
    let list = |hs: &[[u8; 32]]| -> Vec<Binary<'a>> { hs.iter().map(|h| bin(env, h)).collect() };
    Ok(map(
        env,
        &[
            (atoms::id(), bin(env, &p.keyring_id).encode(env)),
            (atoms::head(), bin(env, &p.head).encode(env)),
            (atoms::length(), p.length.encode(env)),
            (atoms::heads(), list(&p.heads).encode(env)),
            (atoms::locator(), list(&p.locator).encode(env)),
        ],
    ))
}

/// Checks an invite for `joiner` against the log and the per-issuer budget;
/// answers the `{:join, ...}` op to append, or the rule that refuses it.
#[rustler::nif(schedule = "DirtyCpu")]
fn ring_admit<'a>(
    env: Env<'a>,
    ring: ResourceArc<RingResource>,
    invite: Binary<'a>,
    joiner: Binary<'a>,
    now_ms: u64,
    joins_per_hour: u32,
) -> Outcome<Term<'a>> {
    let invite = Invite::decode(invite.as_slice())?;
    let joiner = key(&joiner)?;
    let op = ring
        .0
        .read(|r| r.admit(&invite, joiner, now_ms, joins_per_hour))
        .map_err(Reason)?;
    Ok(encode_op(env, &op))
}
