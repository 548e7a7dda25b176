//! Invites: a compact, admin-signed token that lets a new node ask to join.
//!
//! ```text
//! invite = version:u8(=2) keyring_id:[32] issuer:[32] token:[16]
//!          expires_at_ms:u64 max_uses:u16 flags:u8 [bound_key:[32]]
//!          addr_len:u8 addr role_count:u8 (role_len:u8 role)* signature:[64]
//! ```
//!
//! The keyring id is the genesis root public key. The signature (by `issuer`,
//! an admin) covers `INVITE_DOMAIN || everything before the signature`.
//! `max_uses` caps the joins that may spend it, counted from the log (1 = one
//! time, 0 = no per-invite cap; the admitting node's per-issuer budget still
//! applies). `flags` bit 0 says a `bound_key` follows: only that key may join
//! with it. Other flag bits must be zero. The address hint is where an admin
//! node accepts joins. Version 1 invites are refused (`UnsupportedVersion(1)`).

use crate::identity::{verify_strict, KeyPair, SIGNATURE_LEN};
use crate::wire::reader::Reader;

use super::entry::{valid_role, InviteToken, PublicKey, MAX_ROLES};
use super::MembershipError;

/// Domain-separation prefix of invite signatures.
pub const INVITE_DOMAIN: &[u8] = b"keyring/invite/v1\0";
const VERSION: u8 = 2;
const FLAG_BOUND: u8 = 1;
/// Longest address hint.
pub const MAX_ADDR_LEN: usize = 255;

/// A decoded invite.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invite {
    /// The keyring (its root key).
    pub keyring_id: PublicKey,
    /// The admin who signed it.
    pub issuer: PublicKey,
    /// Random token: joins record it, so every admin counts its uses.
    pub token: InviteToken,
    /// Unix ms from which it is refused.
    pub expires_at_ms: u64,
    /// Joins it allows (1 = one time; 0 = no per-invite cap).
    pub max_uses: u16,
    /// The only key that may join with it, if bound.
    pub bound_key: Option<PublicKey>,
    /// Where to send the join request (`host:port`).
    pub address_hint: String,
    /// Roles the new member receives.
    pub roles: Vec<String>,
    signature: [u8; SIGNATURE_LEN],
}

/// The unsigned fields of an invite.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InviteFields {
    /// The keyring.
    pub keyring_id: PublicKey,
    /// Random token.
    pub token: InviteToken,
    /// Expiry (Unix ms).
    pub expires_at_ms: u64,
    /// Joins it allows (1 = one time; 0 = no per-invite cap).
    pub max_uses: u16,
    /// The only key that may join with it, if any.
    pub bound_key: Option<PublicKey>,
    /// `host:port` of an admin node.
    pub address_hint: String,
    /// Roles for the new member.
    pub roles: Vec<String>,
}

impl Invite {
    /// Signs `fields` with `issuer`.
    pub fn sign(fields: InviteFields, issuer: &KeyPair) -> Result<Self, MembershipError> {
        let mut roles = fields.roles;
        roles.sort();
        roles.dedup();
        if roles.len() > MAX_ROLES || roles.iter().any(|r| !valid_role(r)) {
            return Err(MembershipError::malformed("invite", "bad roles"));
        }
        if fields.address_hint.len() > MAX_ADDR_LEN {
            return Err(MembershipError::malformed(
                "invite",
                "address hint too long",
            ));
        }
        let mut invite = Self {
            keyring_id: fields.keyring_id,
            issuer: issuer.public_key(),
            token: fields.token,
            expires_at_ms: fields.expires_at_ms,
            max_uses: fields.max_uses,
            bound_key: fields.bound_key,
            address_hint: fields.address_hint,
            roles,
            signature: [0; SIGNATURE_LEN],
        };
        invite.signature = issuer.sign(&signed_message(&invite.encode_unsigned()));
        Ok(invite)
    }

    fn encode_unsigned(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(128 + self.address_hint.len());
        out.push(VERSION);
        out.extend_from_slice(&self.keyring_id);
        out.extend_from_slice(&self.issuer);
        out.extend_from_slice(&self.token);
        out.extend_from_slice(&self.expires_at_ms.to_be_bytes());
        out.extend_from_slice(&self.max_uses.to_be_bytes());
        match &self.bound_key {
            Some(key) => {
                out.push(FLAG_BOUND);
                out.extend_from_slice(key);
            }
            None => out.push(0),
        }
        out.push(self.address_hint.len() as u8);
        out.extend_from_slice(self.address_hint.as_bytes());
        out.push(self.roles.len() as u8);
        for r in &self.roles {
            out.push(r.len() as u8);
            out.extend_from_slice(r.as_bytes());
        }
        out
    }

    /// The canonical encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = self.encode_unsigned();
        out.extend_from_slice(&self.signature);
        out
    }

    /// Decodes an invite (does not check the signature or expiry: see [`Invite::verify`]).
    pub fn decode(bytes: &[u8]) -> Result<Self, MembershipError> {
        let bad = |why| MembershipError::malformed("invite", why);
        let t = |_| bad("truncated");
        let mut r = Reader::new(bytes);
        let version = r.u8().map_err(t)?;
        if version != VERSION {
            return Err(MembershipError::UnsupportedVersion(version));
        }
        let keyring_id = r.array().map_err(t)?;
        let issuer = r.array().map_err(t)?;
        let token = r.array().map_err(t)?;
        let expires_at_ms = r.u64().map_err(t)?;
        let max_uses = r.u16().map_err(t)?;
        let flags = r.u8().map_err(t)?;
        if flags & !FLAG_BOUND != 0 {
            return Err(bad("unknown flags"));
        }
        let bound_key = if flags & FLAG_BOUND != 0 {
            Some(r.array().map_err(t)?)
        } else {
            None
        };
        let n = r.u8().map_err(t)? as usize;
        let address_hint = String::from_utf8(r.take(n).map_err(t)?.to_vec())
            .map_err(|_| bad("address hint is not UTF-8"))?;
        let count = r.u8().map_err(t)? as usize;
        if count > MAX_ROLES {
            return Err(bad("too many roles"));
        }
        let mut roles = Vec::with_capacity(count);
        for _ in 0..count {
            let n = r.u8().map_err(t)? as usize;
            let role = String::from_utf8(r.take(n).map_err(t)?.to_vec())
                .map_err(|_| bad("role is not UTF-8"))?;
            if !valid_role(&role) {
                return Err(bad("bad role"));
            }
            roles.push(role);
        }
        if !roles.windows(2).all(|w| w[0] < w[1]) {
            return Err(bad("roles must be sorted and unique"));
        }
        let signature = r.array().map_err(t)?;
        if r.remaining() != 0 {
            return Err(bad("trailing bytes"));
        }
        Ok(Self {
            keyring_id,
            issuer,
            token,
            expires_at_ms,
            max_uses,
            bound_key,
            address_hint,
            roles,
            signature,
        })
    }

    /// Whether only one join may spend it.
    pub fn one_time(&self) -> bool {
        self.max_uses == 1
    }

    /// Checks the issuer's signature (strict rule) and the expiry. Whether the
    /// issuer is an admin, and whether the invite is spent or revoked, is the
    /// log's call (`Ring::admit`).
    pub fn verify(&self, now_ms: u64) -> Result<(), MembershipError> {
        let ok = verify_strict(
            &self.issuer,
            &signed_message(&self.encode_unsigned()),
            &self.signature,
        )
        .unwrap_or(false);
        if !ok {
            return Err(MembershipError::BadSignature { seq: 0 });
        }
        if now_ms >= self.expires_at_ms {
            return Err(MembershipError::InviteExpired);
        }
        Ok(())
    }
}

fn signed_message(unsigned: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(INVITE_DOMAIN.len() + unsigned.len());
    m.extend_from_slice(INVITE_DOMAIN);
    m.extend_from_slice(unsigned);
    m
}
