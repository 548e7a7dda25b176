//! Strict linear logs as lists of entry binaries, for the mesh process until
//! it holds ring resources: each call verifies the whole list (DirtyCpu).

use keyring_core::membership::{merge_linear, open_linear, Ring};
use rustler::{Binary, Env, ResourceArc, Term};

use super::terms::{bin, decode_op, encoded_entries, key, summary, Outcome};
use crate::identity::KeyPairResource;

fn line<'b>(entries: &'b [Binary<'_>]) -> Vec<&'b [u8]> {
    entries.iter().map(|b| b.as_slice()).collect()
}

#[rustler::nif(schedule = "DirtyCpu")]
fn log_create<'a>(
    env: Env<'a>,
    root: ResourceArc<KeyPairResource>,
    name: String,
    admins: Vec<Binary<'a>>,
    now_ms: u64,
) -> Outcome<Vec<Binary<'a>>> {
    let admins = admins.iter().map(key).collect::<Outcome<Vec<_>>>()?;
    let ring = Ring::create(&root.0, &name, admins, now_ms)?;
    Ok(encoded_entries(env, ring.chain()))
}

#[rustler::nif(schedule = "DirtyCpu")]
fn log_verify<'a>(env: Env<'a>, entries: Vec<Binary<'a>>, now_ms: u64) -> Outcome<Term<'a>> {
    let ring = open_linear(line(&entries))?;
    Ok(summary(env, &ring.summary(now_ms), &[]))
}

/// Verifies `entries`, signs `op` with `signer` and returns the new entry.
#[rustler::nif(schedule = "DirtyCpu")]
fn log_append<'a>(
    env: Env<'a>,
    entries: Vec<Binary<'a>>,
    signer: ResourceArc<KeyPairResource>,
    op: Term<'a>,
    now_ms: u64,
) -> Outcome<Binary<'a>> {
    let mut ring = open_linear(line(&entries))?;
    let entry = ring.append(&signer.0, decode_op(op)?, now_ms)?;
    Ok(bin(env, &entry.encode()))
}

/// Answers the longer of two verified logs if one extends the other, or
/// `{:fork, seq}`.
#[rustler::nif(schedule = "DirtyCpu")]
fn log_merge<'a>(
    env: Env<'a>,
    current: Vec<Binary<'a>>,
    incoming: Vec<Binary<'a>>,
) -> Outcome<Vec<Binary<'a>>> {
    let ring = merge_linear(line(&current), line(&incoming))?;
    Ok(encoded_entries(env, ring.chain()))
}
