//! Invites: signed by an admin, checked by the joiner before it dials.

use keyring_core::membership::{Invite, InviteFields};
use rustler::{Binary, Encoder, Env, ResourceArc, Term};

use super::terms::{bin, key, malformed, map, Outcome};
use crate::atoms;
use crate::identity::KeyPairResource;

/// Signs an invite. `max_uses`: 1 = one time, 0 = no per-invite cap;
/// `bound_key`: `nil` or the only key that may join with it.
#[rustler::nif(schedule = "DirtyCpu")]
#[allow(clippy::too_many_arguments)]
fn invite_create<'a>(
    env: Env<'a>,
    issuer: ResourceArc<KeyPairResource>,
    keyring_id: Binary<'a>,
    token: Binary<'a>,
    expires_at_ms: u64,
    max_uses: u16,
    address_hint: String,
    roles: Vec<String>,
    bound_key: Option<Binary<'a>>,
) -> Outcome<Binary<'a>> {
    let token = token
        .as_slice()
        .try_into()
        .map_err(|_| malformed("invite", "token is 16 bytes"))?;
    let fields = InviteFields {
        keyring_id: key(&keyring_id)?,
        token,
        expires_at_ms,
        max_uses,
        bound_key: bound_key.as_ref().map(key).transpose()?,
        address_hint,
        roles,
    };
    let invite = Invite::sign(fields, &issuer.0)?;
    Ok(bin(env, &invite.encode()))
}

/// Decodes an invite and checks its signature and expiry.
#[rustler::nif]
fn invite_verify<'a>(env: Env<'a>, bytes: Binary<'a>, now_ms: u64) -> Outcome<Term<'a>> {
    let _charge = crate::timeslice::Charge::start(env);
    let invite = Invite::decode(bytes.as_slice())?;
    invite.verify(now_ms)?;
    let roles: Vec<&str> = invite.roles.iter().map(String::as_str).collect();
    let bound = match &invite.bound_key {
        Some(k) => bin(env, k).encode(env),
        None => rustler::types::atom::nil().encode(env),
    };
    Ok(map(
        env,
        &[
            (
                atoms::keyring_id(),
                bin(env, &invite.keyring_id).encode(env),
            ),
            (atoms::issuer(), bin(env, &invite.issuer).encode(env)),
            (atoms::token(), bin(env, &invite.token).encode(env)),
            (atoms::expires_at_ms(), invite.expires_at_ms.encode(env)),
            (atoms::one_time(), invite.one_time().encode(env)),
            (atoms::max_uses(), invite.max_uses.encode(env)),
            (atoms::bound_key(), bound),
            (
                atoms::address_hint(),
                invite.address_hint.as_str().encode(env),
            ),
            (atoms::roles(), roles.encode(env)),
        ],
    ))
}
