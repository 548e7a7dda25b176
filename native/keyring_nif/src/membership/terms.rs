//! Terms ⇄ membership values: rule errors as tagged tuples, operations,
//! summaries.

use keyring_core::membership::{Entry, MembershipError, Op, PublicKey, Summary};
use rustler::types::tuple::get_tuple;
use rustler::{Atom, Binary, Encoder, Env, NewBinary, Term};

use crate::atoms;

/// A membership error as an Elixir reason.
pub(crate) struct Reason(pub(crate) MembershipError);

impl From<MembershipError> for Reason {
    fn from(e: MembershipError) -> Self {
        Self(e)
    }
}

impl Encoder for Reason {
    fn encode<'a>(&self, env: Env<'a>) -> Term<'a> {
        encode_error(env, &self.0)
    }
}

pub(crate) fn encode_error<'a>(env: Env<'a>, error: &MembershipError) -> Term<'a> {
    use MembershipError as E;
    match error {
        E::Malformed { what, why } => (atoms::malformed(), *what, *why).encode(env),
        E::UnsupportedVersion(v) => (atoms::unsupported_version(), *v).encode(env),
        E::BadSignature { seq } => (atoms::bad_signature(), *seq).encode(env),
        E::NotAnAdmin { seq } => (atoms::not_an_admin(), *seq).encode(env),
        E::NotTheRoot { seq } => (atoms::not_the_root(), *seq).encode(env),
        E::WrongKeyring { seq } => (atoms::wrong_keyring(), *seq).encode(env),
        E::Fork { seq } => (atoms::fork(), *seq).encode(env),
        E::BrokenChain { seq } => (atoms::broken_chain(), *seq).encode(env),
        E::Gap { seq, len } => (atoms::gap(), *seq, *len).encode(env),
        E::TimeWentBackwards { seq } => (atoms::time_went_backwards(), *seq).encode(env),
        E::FromTheFuture { seq } => (atoms::from_the_future(), *seq).encode(env),
        E::InvalidOperation { seq, why } => (atoms::invalid_operation(), *seq, *why).encode(env),
        E::Revoked { seq } => (atoms::revoked(), *seq).encode(env),
        E::AlreadyMember { seq } => (atoms::already_member(), *seq).encode(env),
        E::InviteSpent {
            seq,
            uses,
            max_uses,
        } => (atoms::invite_spent(), *seq, *uses, *max_uses).encode(env),
        E::InviteRevoked { seq } => (atoms::invite_revoked(), *seq).encode(env),
        E::LogFull { seq } => (atoms::log_full(), *seq).encode(env),
        E::NoGenesis => atoms::no_genesis().encode(env),
        E::InviteExpired => atoms::invite_expired().encode(env),
        E::InviteBoundToOtherKey => atoms::invite_bound_to_other_key().encode(env),
        E::IssuerNotAdmin => atoms::issuer_not_admin().encode(env),
        E::JoinBudgetExhausted { joins, budget } => {
            (atoms::join_budget_exhausted(), *joins, *budget).encode(env)
        }
        E::TooManyForks => atoms::too_many_forks().encode(env),
        other => (atoms::error(), other.to_string()).encode(env),
    }
}

pub(crate) type Outcome<T> = Result<T, Reason>;

pub(crate) fn bin<'a>(env: Env<'a>, bytes: &[u8]) -> Binary<'a> {
    let mut out = NewBinary::new(env, bytes.len());
    out.as_mut_slice().copy_from_slice(bytes);
    out.into()
}

pub(crate) fn malformed(what: &'static str, why: &'static str) -> Reason {
    Reason(MembershipError::Malformed { what, why })
}

pub(crate) fn key(b: &Binary<'_>) -> Outcome<PublicKey> {
    b.as_slice()
        .try_into()
        .map_err(|_| malformed("key", "a public key is 32 bytes"))
}

pub(crate) fn hash32(b: &Binary<'_>) -> Outcome<[u8; 32]> {
    b.as_slice()
        .try_into()
        .map_err(|_| malformed("hash", "an entry hash is 32 bytes"))
}

/// A map with atom keys.
pub(crate) fn map<'a>(env: Env<'a>, pairs: &[(Atom, Term<'a>)]) -> Term<'a> {
    let keys: Vec<Term<'a>> = pairs.iter().map(|(k, _)| k.encode(env)).collect();
    let values: Vec<Term<'a>> = pairs.iter().map(|(_, v)| *v).collect();
    Term::map_from_term_arrays(env, &keys, &values).unwrap_or_else(|_| atoms::error().encode(env))
}

fn sorted_roles(items: &Term<'_>) -> Outcome<Vec<String>> {
    let mut roles: Vec<String> = items.decode().map_err(|_| op_shape())?;
    roles.sort();
    roles.dedup();
    Ok(roles)
}

fn op_shape() -> Reason {
    malformed(
        "operation",
        "expected {:add_member, key, expires_at_ms, roles} | {:remove_member | :remove_admin, key} \
         | {:add_admin, key} | {:add_admin, key, expires_at_ms} \
         | {:join, key, roles, issuer, token, max_uses} | {:revoke_invite, issuer, token} \
         | {:rotate_root, key}",
    )
}

/// An operation term (see [`op_shape`]).
pub(crate) fn decode_op(op: Term<'_>) -> Outcome<Op> {
    let items = get_tuple(op).map_err(|_| op_shape())?;
    let tag: Atom = items
        .first()
        .ok_or_else(op_shape)?
        .decode()
        .map_err(|_| op_shape())?;
    let k = |i: usize| -> Outcome<PublicKey> {
        let b: Binary<'_> = items
            .get(i)
            .ok_or_else(op_shape)?
            .decode()
            .map_err(|_| op_shape())?;
        key(&b)
    };
    let int = |i: usize| -> Outcome<u64> {
        items
            .get(i)
            .ok_or_else(op_shape)?
            .decode()
            .map_err(|_| op_shape())
    };
    let n = items.len();
    Ok(if tag == atoms::add_member() && n == 4 {
        Op::AddMember {
            key: k(1)?,
            expires_at_ms: int(2)?,
            roles: sorted_roles(&items[3])?,
        }
    } else if tag == atoms::remove_member() && n == 2 {
        Op::RemoveMember { key: k(1)? }
    } else if tag == atoms::add_admin() && (n == 2 || n == 3) {
        Op::AddAdmin {
            key: k(1)?,
            expires_at_ms: if n == 3 { int(2)? } else { 0 },
        }
    } else if tag == atoms::remove_admin() && n == 2 {
        Op::RemoveAdmin { key: k(1)? }
    } else if tag == atoms::join() && n == 6 {
        let token: Binary<'_> = items[4].decode().map_err(|_| op_shape())?;
        Op::Join {
            key: k(1)?,
            roles: sorted_roles(&items[2])?,
            issuer: k(3)?,
            token: token.as_slice().try_into().map_err(|_| op_shape())?,
            max_uses: u16::try_from(int(5)?).map_err(|_| op_shape())?,
        }
    } else if tag == atoms::revoke_invite() && n == 3 {
        let token: Binary<'_> = items[2].decode().map_err(|_| op_shape())?;
        Op::RevokeInvite {
            issuer: k(1)?,
            token: token.as_slice().try_into().map_err(|_| op_shape())?,
        }
    } else if tag == atoms::rotate_root() && n == 2 {
        Op::RotateRoot { new_root: k(1)? }
    } else {
        return Err(op_shape());
    })
}

/// The term [`decode_op`] reads back.
pub(crate) fn encode_op<'a>(env: Env<'a>, op: &Op) -> Term<'a> {
    let b = |k: &[u8]| bin(env, k).encode(env);
    match op {
        Op::Genesis { name, .. } => (atoms::genesis(), name.as_str()).encode(env),
        Op::AddMember {
            key,
            expires_at_ms,
            roles,
        } => (atoms::add_member(), b(key), *expires_at_ms, roles.clone()).encode(env),
        Op::RemoveMember { key } => (atoms::remove_member(), b(key)).encode(env),
        Op::AddAdmin { key, expires_at_ms } => {
            (atoms::add_admin(), b(key), *expires_at_ms).encode(env)
        }
        Op::RemoveAdmin { key } => (atoms::remove_admin(), b(key)).encode(env),
        Op::Join {
            key,
            roles,
            issuer,
            token,
            max_uses,
        } => (
            atoms::join(),
            b(key),
            roles.clone(),
            b(issuer),
            b(token),
            *max_uses,
        )
            .encode(env),
        Op::RevokeInvite { issuer, token } => {
            (atoms::revoke_invite(), b(issuer), b(token)).encode(env)
        }
        Op::RotateRoot { new_root } => (atoms::rotate_root(), b(new_root)).encode(env),
    }
}

/// `{signer, op}` of an entry.
pub(crate) fn encode_signed_op<'a>(env: Env<'a>, entry: &Entry) -> Term<'a> {
    (bin(env, &entry.body.signer), encode_op(env, &entry.body.op)).encode(env)
}

pub(crate) fn encoded_entries<'a, 'e>(
    env: Env<'a>,
    entries: impl IntoIterator<Item = &'e Entry>,
) -> Vec<Binary<'a>> {
    entries.into_iter().map(|e| bin(env, &e.encode())).collect()
}

/// `%{id, name, root, head, length, members, revoked, forks}` plus ring
/// counters; members are `{key, roles, expires_at_ms, admin?}` valid now.
pub(crate) fn summary<'a>(env: Env<'a>, s: &Summary, extra: &[(Atom, Term<'a>)]) -> Term<'a> {
    let members: Vec<Term<'a>> = s
        .members
        .iter()
        .map(|m| {
            let roles: Vec<&str> = m.roles.iter().map(String::as_str).collect();
            (bin(env, &m.key), roles, m.expires_at_ms, m.admin).encode(env)
        })
        .collect();
    let revoked: Vec<Binary<'a>> = s.revoked.iter().map(|k| bin(env, k)).collect();
    let forks: Vec<Term<'a>> = s
        .forks
        .iter()
        .map(|f| {
            let branches: Vec<Binary<'a>> = f.branches.iter().map(|h| bin(env, h)).collect();
            let chosen = match &f.chosen {
                Some(h) => bin(env, h).encode(env),
                None => rustler::types::atom::nil().encode(env),
            };
            map(
                env,
                &[
                    (atoms::seq(), f.seq.encode(env)),
                    (atoms::parent(), bin(env, &f.parent).encode(env)),
                    (atoms::branches(), branches.encode(env)),
                    (atoms::chosen(), chosen),
                ],
            )
        })
        .collect();
    let mut pairs = vec![
        (atoms::id(), bin(env, &s.keyring_id).encode(env)),
        (atoms::name(), s.name.as_str().encode(env)),
        (atoms::root(), bin(env, &s.root).encode(env)),
        (atoms::head(), bin(env, &s.head).encode(env)),
        (atoms::length(), s.length.encode(env)),
        (atoms::members(), members.encode(env)),
        (atoms::revoked(), revoked.encode(env)),
        (atoms::forks(), forks.encode(env)),
    ];
    pairs.extend_from_slice(extra);
    map(env, &pairs)
}
