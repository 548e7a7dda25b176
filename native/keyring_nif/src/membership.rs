//! Keyring membership logs and invites: thin wrappers over
//! `keyring_core::membership`. Logs travel as lists of entry binaries; every
//! function that takes a log replays and verifies all of it (DirtyCpu).

use keyring_core::membership::{Entry, Invite, InviteFields, Log, MembershipError, Op, PublicKey};
use rustler::{Atom, Binary, Encoder, Env, NewBinary, ResourceArc, Term};

use crate::atoms;
use crate::identity::KeyPairResource;

pub(crate) struct Reason(pub(crate) MembershipError);

impl Encoder for Reason {
    fn encode<'a>(&self, env: Env<'a>) -> Term<'a> {
        use MembershipError as E;
        match &self.0 {
            E::Malformed { what, why } => (atoms::malformed(), *what, *why).encode(env),
            E::UnsupportedVersion(v) => (atoms::unsupported_version(), *v).encode(env),
            E::BadSignature { seq } => (atoms::bad_signature(), *seq).encode(env),
            E::NotAnAdmin { seq } => (atoms::not_an_admin(), *seq).encode(env),
            E::WrongKeyring { seq } => (atoms::wrong_keyring(), *seq).encode(env),
            E::Fork { seq } => (atoms::fork(), *seq).encode(env),
            E::BrokenChain { seq } => (atoms::broken_chain(), *seq).encode(env),
            E::Gap { seq, len } => (atoms::gap(), *seq, *len).encode(env),
            E::TimeWentBackwards { seq } => (atoms::time_went_backwards(), *seq).encode(env),
            E::InvalidOperation { seq, why } => {
                (atoms::invalid_operation(), *seq, *why).encode(env)
            }
            E::NoGenesis => atoms::no_genesis().encode(env),
            E::InviteExpired => atoms::invite_expired().encode(env),
            other => (atoms::error(), other.to_string()).encode(env),
        }
    }
}

type Outcome<T> = Result<T, Reason>;

fn bin<'a>(env: Env<'a>, bytes: &[u8]) -> Binary<'a> {
    let mut out = NewBinary::new(env, bytes.len());
    out.as_mut_slice().copy_from_slice(bytes);
    out.into()
}

fn key(b: &Binary<'_>) -> Outcome<PublicKey> {
    b.as_slice().try_into().map_err(|_| {
        Reason(MembershipError::Malformed {
            what: "key",
            why: "a public key is 32 bytes",
        })
    })
}

fn replay(entries: &[Binary<'_>]) -> Outcome<Log> {
    Log::from_encoded(entries.iter().map(|b| b.as_slice())).map_err(Reason)
}

fn encoded_entries<'a>(env: Env<'a>, log: &Log) -> Vec<Binary<'a>> {
    log.entries()
        .iter()
        .map(|e| bin(env, &e.encode()))
        .collect()
}

/// Summary of a verified log: `%{id, name, head, length, members}` where
/// members are `{key, roles, expires_at_ms, admin?}` valid at `now_ms`.
fn summary<'a>(env: Env<'a>, log: &Log, now_ms: u64) -> Term<'a> {
    let members: Vec<Term<'a>> = log
        .snapshot(now_ms)
        .members
        .iter()
        .map(|m| {
            let roles: Vec<&str> = m.roles.iter().map(String::as_str).collect();
            (bin(env, &m.key), roles, m.expires_at_ms, m.admin).encode(env)
        })
        .collect();
    let keys = [
        Atom::from_str(env, "id").expect("atom").encode(env),
        Atom::from_str(env, "name").expect("atom").encode(env),
        Atom::from_str(env, "head").expect("atom").encode(env),
        Atom::from_str(env, "length").expect("atom").encode(env),
        Atom::from_str(env, "members").expect("atom").encode(env),
    ];
    let values = [
        bin(env, &log.keyring_id()).encode(env),
        log.name().encode(env),
        bin(env, &log.head()).encode(env),
        log.entries().len().encode(env),
        members.encode(env),
    ];
    Term::map_from_term_arrays(env, &keys, &values).expect("distinct keys")
}

#[rustler::nif(schedule = "DirtyCpu")]
fn ring_create<'a>(
    env: Env<'a>,
    root: ResourceArc<KeyPairResource>,
    name: String,
    admins: Vec<Binary<'a>>,
    now_ms: u64,
) -> Outcome<Vec<Binary<'a>>> {
    let admins = admins.iter().map(key).collect::<Outcome<Vec<_>>>()?;
    let log = Log::create(&root.0, &name, admins, now_ms).map_err(Reason)?;
    Ok(encoded_entries(env, &log))
}

#[rustler::nif(schedule = "DirtyCpu")]
fn ring_verify<'a>(env: Env<'a>, entries: Vec<Binary<'a>>, now_ms: u64) -> Outcome<Term<'a>> {
    let log = replay(&entries)?;
    Ok(summary(env, &log, now_ms))
}

fn decode_op(op: Term<'_>) -> Outcome<Op> {
    let bad = || {
        Reason(MembershipError::Malformed {
            what: "operation",
            why: "expected {:add_member, key, expires_at_ms, roles} | {:remove_member | :add_admin | :remove_admin, key}",
        })
    };
    let items = rustler::types::tuple::get_tuple(op).map_err(|_| bad())?;
    let tag: Atom = items.first().ok_or_else(bad)?.decode().map_err(|_| bad())?;
    let k: Binary<'_> = items.get(1).ok_or_else(bad)?.decode().map_err(|_| bad())?;
    let k = key(&k)?;
    if tag == atoms::add_member() && items.len() == 4 {
        let expires_at_ms: u64 = items[2].decode().map_err(|_| bad())?;
        let mut roles: Vec<String> = items[3].decode().map_err(|_| bad())?;
        roles.sort();
        roles.dedup();
        Ok(Op::AddMember {
            key: k,
            expires_at_ms,
            roles,
        })
    } else if items.len() != 2 {
        Err(bad())
    } else if tag == atoms::remove_member() {
        Ok(Op::RemoveMember { key: k })
    } else if tag == atoms::add_admin() {
        Ok(Op::AddAdmin { key: k })
    } else if tag == atoms::remove_admin() {
        Ok(Op::RemoveAdmin { key: k })
    } else {
        Err(bad())
    }
}

/// Replays `entries`, signs `op` with `signer` and returns the new entry.
#[rustler::nif(schedule = "DirtyCpu")]
fn ring_append<'a>(
    env: Env<'a>,
    entries: Vec<Binary<'a>>,
    signer: ResourceArc<KeyPairResource>,
    op: Term<'a>,
    now_ms: u64,
) -> Outcome<Binary<'a>> {
    let mut log = replay(&entries)?;
    let op = decode_op(op)?;
    let entry = log.append_op(&signer.0, now_ms, op).map_err(Reason)?;
    Ok(bin(env, &entry.encode()))
}

/// Adopts `incoming` if it verifies and extends (or equals) `current`;
/// answers the longer log, or a fork error.
#[rustler::nif(schedule = "DirtyCpu")]
fn ring_merge<'a>(
    env: Env<'a>,
    current: Vec<Binary<'a>>,
    incoming: Vec<Binary<'a>>,
) -> Outcome<Vec<Binary<'a>>> {
    let mut log = replay(&current)?;
    let theirs = replay(&incoming)?;
    if theirs.keyring_id() != log.keyring_id() {
        return Err(Reason(MembershipError::WrongKeyring { seq: 0 }));
    }
    for e in theirs.entries() {
        log.append(Entry::decode(&e.encode()).map_err(Reason)?)
            .map_err(Reason)?;
    }
    Ok(encoded_entries(env, &log))
}

#[rustler::nif(schedule = "DirtyCpu")]
#[allow(clippy::too_many_arguments)]
fn invite_create<'a>(
    env: Env<'a>,
    issuer: ResourceArc<KeyPairResource>,
    keyring_id: Binary<'a>,
    token: Binary<'a>,
    expires_at_ms: u64,
    one_time: bool,
    address_hint: String,
    roles: Vec<String>,
) -> Outcome<Binary<'a>> {
    let token: [u8; 16] = token.as_slice().try_into().map_err(|_| {
        Reason(MembershipError::Malformed {
            what: "invite",
            why: "token is 16 bytes",
        })
    })?;
    let fields = InviteFields {
        keyring_id: key(&keyring_id)?,
        token,
        expires_at_ms,
        one_time,
        address_hint,
        roles,
    };
    let invite = Invite::sign(fields, &issuer.0).map_err(Reason)?;
    Ok(bin(env, &invite.encode()))
}

/// Decodes an invite and checks its signature and expiry.
#[rustler::nif]
fn invite_verify<'a>(env: Env<'a>, bytes: Binary<'a>, now_ms: u64) -> Outcome<Term<'a>> {
    let _charge = crate::timeslice::Charge::start(env);
    let invite = Invite::decode(bytes.as_slice()).map_err(Reason)?;
    invite.verify(now_ms).map_err(Reason)?;
    let names = [
        "keyring_id",
        "issuer",
        "token",
        "expires_at_ms",
        "one_time",
        "address_hint",
        "roles",
    ];
    let keys: Vec<Term<'a>> = names
        .iter()
        .map(|n| Atom::from_str(env, n).expect("atom").encode(env))
        .collect();
    let roles: Vec<&str> = invite.roles.iter().map(String::as_str).collect();
    let values = [
        bin(env, &invite.keyring_id).encode(env),
        bin(env, &invite.issuer).encode(env),
        bin(env, &invite.token).encode(env),
        invite.expires_at_ms.encode(env),
        invite.one_time.encode(env),
        invite.address_hint.as_str().encode(env),
        roles.encode(env),
    ];
    Ok(Term::map_from_term_arrays(env, &keys, &values).expect("distinct keys"))
}
