//! One membership log entry: its deterministic encoding, hash and signature.
//!
//! ```text
//! entry = body_len:u16 body sig_count:u8 (alg:u8 sig_len:u16 sig)*
//! body  = version:u8(=2) keyring_id:[32] seq:u64 parent:[32]
//!         timestamp_ms:u64 signer:[32] op:u8 op_payload
//! roles = count:u8 (len:u8 role)*
//! op_payload by op:
//!   0 Genesis      name_len:u8 name admin_count:u8 admin:[32]*
//!   1 AddMember    key:[32] expires_at_ms:u64 roles
//!   2 RemoveMember key:[32]
//!   3 AddAdmin     key:[32] expires_at_ms:u64
//!   4 RemoveAdmin  key:[32]
//!   5 Join         key:[32] roles issuer:[32] token:[16] max_uses:u16
//!   6 RevokeInvite issuer:[32] token:[16]
//!   7 RotateRoot   new_root:[32]
//! ```
//!
//! All integers are big-endian. `parent` is the hash of the entry this one
//! extends (all zeros for genesis) and `seq` its depth (parent's + 1), so the
//! entries of a keyring form a tree rooted at its genesis. The signature covers
//! `SIGN_DOMAIN || body`; the entry hash is a BLAKE3 derived-key hash of the
//! body only, so a link never depends on signature bytes (no malleability).
//! Version 2 requires exactly one Ed25519 signature (`alg = 1`); the signature
//! block is a list so a later version can require a hybrid Ed25519 + ML-DSA
//! pair without changing the body. Version 1 (no admin expiry, no invites in
//! the log, no rotation) is refused with `UnsupportedVersion(1)`.

use crate::identity::{verify_strict, KeyPair, PUBLIC_KEY_LEN, SIGNATURE_LEN};
use crate::wire::reader::Reader;

use super::MembershipError;

/// A 32-byte Ed25519 public key.
pub type PublicKey = [u8; PUBLIC_KEY_LEN];
/// The hash of an entry's body: its identity and the link its children name.
pub type EntryHash = [u8; 32];
/// An invite's random token.
pub type InviteToken = [u8; 16];

/// Format version written and read by this build.
pub const VERSION: u8 = 2;
/// Signature algorithm id of Ed25519 in the signature block.
pub const ALG_ED25519: u8 = 1;
/// Domain-separation prefix of every entry signature.
pub const SIGN_DOMAIN: &[u8] = b"keyring/membership-entry/v1\0";
const HASH_CONTEXT: &str = "keyring membership entry hash v1";

/// Largest accepted encoded body.
pub const MAX_BODY: usize = 4096;
/// Most roles on one member.
pub const MAX_ROLES: usize = 16;
/// Longest role name.
pub const MAX_ROLE_LEN: usize = 32;
/// Longest keyring name.
pub const MAX_NAME_LEN: usize = 64;
/// Most admins named by the genesis entry.
pub const MAX_GENESIS_ADMINS: usize = 16;

/// What an entry does to the membership.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// First entry: names the keyring and its first admins; signed by the root key.
    Genesis {
        /// Human-readable keyring name.
        name: String,
        /// Admin keys besides the root (sorted, unique); they never expire.
        admins: Vec<PublicKey>,
    },
    /// Adds a member, or renews/changes an existing member's roles and expiry.
    AddMember {
        /// The member's key.
        key: PublicKey,
        /// Unix time in ms from which the member is no longer valid; 0 = never.
        expires_at_ms: u64,
        /// Roles/groups (sorted, unique).
        roles: Vec<String>,
    },
    /// Revokes a key for good: it leaves the members and admins and can never
    /// be added again.
    RemoveMember {
        /// The key.
        key: PublicKey,
    },
    /// Grants admin rights until `expires_at_ms` (admins are members too), or
    /// changes an admin's expiry.
    AddAdmin {
        /// The admin's key.
        key: PublicKey,
        /// Unix time in ms from which the key can no longer sign; 0 = never.
        expires_at_ms: u64,
    },
    /// Withdraws admin rights (the root key cannot lose them).
    RemoveAdmin {
        /// The admin's key.
        key: PublicKey,
    },
    /// Admits a new member with an invite; records the invite it spent.
    Join {
        /// The new member's key (never a key the log already knows).
        key: PublicKey,
        /// Roles from the invite (sorted, unique).
        roles: Vec<String>,
        /// The admin who signed the invite.
        issuer: PublicKey,
        /// The invite's token.
        token: InviteToken,
        /// The invite's use cap (0 = no per-invite cap).
        max_uses: u16,
    },
    /// Revokes an invite: no later join may spend it.
    RevokeInvite {
        /// The admin who signed the invite.
        issuer: PublicKey,
        /// The invite's token.
        token: InviteToken,
    },
    /// Hands the root role to `new_root` (signed by the current root, which
    /// stops being an admin). The keyring id stays the genesis key.
    RotateRoot {
        /// The next root key.
        new_root: PublicKey,
    },
}

impl Op {
    fn code(&self) -> u8 {
        match self {
            Op::Genesis { .. } => 0,
            Op::AddMember { .. } => 1,
            Op::RemoveMember { .. } => 2,
            Op::AddAdmin { .. } => 3,
            Op::RemoveAdmin { .. } => 4,
            Op::Join { .. } => 5,
            Op::RevokeInvite { .. } => 6,
            Op::RotateRoot { .. } => 7,
        }
    }

    /// Whether the op can make the log grow without bound: the entry cap
    /// applies to these and never to revocations or root rotation.
    pub fn grows(&self) -> bool {
        !matches!(
            self,
            Op::RemoveMember { .. } | Op::RemoveAdmin { .. } | Op::RotateRoot { .. }
        )
    }
}

/// The signed part of an entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Body {
    /// The keyring (its genesis root public key).
    pub keyring_id: PublicKey,
    /// Depth in the tree: 0 for genesis, the parent's plus one otherwise.
    pub seq: u64,
    /// Hash of the parent entry's body (all zeros for genesis).
    pub prev_hash: EntryHash,
    /// When the admin wrote it (Unix ms); never less than the parent's.
    pub timestamp_ms: u64,
    /// The admin key that signs the entry.
    pub signer: PublicKey,
    /// The change.
    pub op: Op,
}

/// A decoded entry: its body, the exact body bytes, its hash and the signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The decoded body.
    pub body: Body,
    body_bytes: Vec<u8>,
    hash: EntryHash,
    signature: [u8; SIGNATURE_LEN],
}

fn put_roles(out: &mut Vec<u8>, roles: &[String]) {
    out.push(roles.len() as u8);
    for r in roles {
        out.push(r.len() as u8);
        out.extend_from_slice(r.as_bytes());
    }
}

impl Body {
    /// The canonical encoding of the body.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(200);
        out.push(VERSION);
        out.extend_from_slice(&self.keyring_id);
        out.extend_from_slice(&self.seq.to_be_bytes());
        out.extend_from_slice(&self.prev_hash);
        out.extend_from_slice(&self.timestamp_ms.to_be_bytes());
        out.extend_from_slice(&self.signer);
        out.push(self.op.code());
        match &self.op {
            Op::Genesis { name, admins } => {
                out.push(name.len() as u8);
                out.extend_from_slice(name.as_bytes());
                out.push(admins.len() as u8);
                for a in admins {
                    out.extend_from_slice(a);
                }
            }
            Op::AddMember {
                key,
                expires_at_ms,
                roles,
            } => {
                out.extend_from_slice(key);
                out.extend_from_slice(&expires_at_ms.to_be_bytes());
                put_roles(&mut out, roles);
            }
            Op::AddAdmin { key, expires_at_ms } => {
                out.extend_from_slice(key);
                out.extend_from_slice(&expires_at_ms.to_be_bytes());
            }
            Op::RemoveMember { key } | Op::RemoveAdmin { key } => out.extend_from_slice(key),
            Op::Join {
                key,
                roles,
                issuer,
                token,
                max_uses,
            } => {
                out.extend_from_slice(key);
                put_roles(&mut out, roles);
                out.extend_from_slice(issuer);
                out.extend_from_slice(token);
                out.extend_from_slice(&max_uses.to_be_bytes());
            }
            Op::RevokeInvite { issuer, token } => {
                out.extend_from_slice(issuer);
                out.extend_from_slice(token);
            }
            Op::RotateRoot { new_root } => out.extend_from_slice(new_root),
        }
        out
    }

    /// Checks the shape rules the decoder enforces, so a writer cannot produce
    /// an entry that a reader would refuse.
    pub fn validate_shape(&self) -> Result<(), MembershipError> {
        match &self.op {
            Op::Genesis { name, admins } => {
                if name.is_empty() || name.len() > MAX_NAME_LEN {
                    return Err(MembershipError::malformed("entry", "keyring name length"));
                }
                if admins.len() > MAX_GENESIS_ADMINS || !strictly_sorted(admins) {
                    return Err(MembershipError::malformed(
                        "entry",
                        "genesis admins must be sorted, unique and at most 16",
                    ));
                }
            }
            Op::AddMember { roles, .. } | Op::Join { roles, .. } => check_roles(roles)?,
            _ => {}
        }
        Ok(())
    }
}

fn check_roles(roles: &[String]) -> Result<(), MembershipError> {
    if roles.len() > MAX_ROLES || !strictly_sorted(roles) {
        return Err(MembershipError::malformed(
            "entry",
            "roles must be sorted, unique and at most 16",
        ));
    }
    if roles.iter().any(|r| !valid_role(r)) {
        return Err(MembershipError::malformed(
            "entry",
            "a role is 1..32 bytes of [a-z0-9_.:-]",
        ));
    }
    Ok(())
}

pub(crate) fn hash_body(body: &[u8]) -> EntryHash {
    let mut h = blake3::Hasher::new_derive_key(HASH_CONTEXT);
    h.update(body);
    *h.finalize().as_bytes()
}

fn strictly_sorted<T: Ord>(items: &[T]) -> bool {
    items.windows(2).all(|w| w[0] < w[1])
}

/// A role name: 1..=32 bytes of lowercase ASCII letters, digits and `_.:-`.
pub fn valid_role(role: &str) -> bool {
    !role.is_empty()
        && role.len() <= MAX_ROLE_LEN
        && role
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_.:-".contains(&b))
}

impl Entry {
    /// Signs `body` with `signer` (whose public key must be `body.signer`).
    pub fn sign(body: Body, signer: &KeyPair) -> Result<Self, MembershipError> {
        if signer.public_key() != body.signer {
            return Err(MembershipError::InvalidOperation {
                seq: body.seq,
                why: "the signing key is not the entry's signer",
            });
        }
        body.validate_shape()?;
        let body_bytes = body.encode();
        if body_bytes.len() > MAX_BODY {
            return Err(MembershipError::malformed("entry", "body too large"));
        }
        let signature = signer.sign(&signed_message(&body_bytes));
        Ok(Self {
            hash: hash_body(&body_bytes),
            body,
            body_bytes,
            signature,
        })
    }

    /// The entry's hash (BLAKE3 over the body; the signature is not included).
    pub fn hash(&self) -> EntryHash {
        self.hash
    }

    /// The signature bytes (not covered by [`Entry::hash`]).
    pub fn signature(&self) -> &[u8; SIGNATURE_LEN] {
        &self.signature
    }

    /// Whether the signature verifies for `body.signer` under the strict rule.
    pub fn signature_valid(&self) -> bool {
        verify_strict(
            &self.body.signer,
            &signed_message(&self.body_bytes),
            &self.signature,
        )
        .unwrap_or(false)
    }

    /// The canonical wire encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        out.extend_from_slice(&(self.body_bytes.len() as u16).to_be_bytes());
        out.extend_from_slice(&self.body_bytes);
        out.push(1);
        out.push(ALG_ED25519);
        out.extend_from_slice(&(SIGNATURE_LEN as u16).to_be_bytes());
        out.extend_from_slice(&self.signature);
        out
    }

    /// Length of [`Entry::encode`]'s output.
    pub fn encoded_len(&self) -> usize {
        2 + self.body_bytes.len() + 4 + SIGNATURE_LEN
    }

    /// Decodes one entry; rejects trailing bytes, unknown versions, unknown
    /// operations, non-canonical fields and any signature block other than one
    /// Ed25519 signature. Does not check the signature (see [`Entry::signature_valid`]).
    pub fn decode(bytes: &[u8]) -> Result<Self, MembershipError> {
        let bad = |why| MembershipError::malformed("entry", why);
        let mut r = Reader::new(bytes);
        let body_len = r.u16().map_err(|_| bad("truncated length"))? as usize;
        if body_len > MAX_BODY {
            return Err(bad("body too large"));
        }
        let body_bytes = r.take(body_len).map_err(|_| bad("truncated body"))?;
        let body = decode_body(body_bytes)?;
        let count = r.u8().map_err(|_| bad("truncated signature block"))?;
        if count != 1 {
            return Err(bad("version 2 entries carry exactly one signature"));
        }
        let alg = r.u8().map_err(|_| bad("truncated signature block"))?;
        if alg != ALG_ED25519 {
            return Err(bad("unknown signature algorithm"));
        }
        let len = r.u16().map_err(|_| bad("truncated signature block"))? as usize;
        if len != SIGNATURE_LEN {
            return Err(bad("Ed25519 signatures are 64 bytes"));
        }
        let signature = r.array().map_err(|_| bad("truncated signature"))?;
        if r.remaining() != 0 {
            return Err(bad("trailing bytes"));
        }
        Ok(Self {
            hash: hash_body(body_bytes),
            body,
            body_bytes: body_bytes.to_vec(),
            signature,
        })
    }
}

fn signed_message(body: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(SIGN_DOMAIN.len() + body.len());
    m.extend_from_slice(SIGN_DOMAIN);
    m.extend_from_slice(body);
    m
}

fn decode_body(bytes: &[u8]) -> Result<Body, MembershipError> {
    let t = |_| MembershipError::malformed("entry", "truncated body");
    let mut r = Reader::new(bytes);
    let version = r.u8().map_err(t)?;
    if version != VERSION {
        return Err(MembershipError::UnsupportedVersion(version));
    }
    let keyring_id = r.array().map_err(t)?;
    let seq = r.u64().map_err(t)?;
    let prev_hash = r.array().map_err(t)?;
    let timestamp_ms = r.u64().map_err(t)?;
    let signer = r.array().map_err(t)?;
    let op = decode_op(&mut r)?;
    if r.remaining() != 0 {
        return Err(MembershipError::malformed(
            "entry",
            "trailing bytes in body",
        ));
    }
    let body = Body {
        keyring_id,
        seq,
        prev_hash,
        timestamp_ms,
        signer,
        op,
    };
    body.validate_shape()?;
    Ok(body)
}

fn decode_roles(r: &mut Reader<'_>) -> Result<Vec<String>, MembershipError> {
    let t = |_| MembershipError::malformed("entry", "truncated body");
    let count = r.u8().map_err(t)? as usize;
    if count > MAX_ROLES {
        return Err(MembershipError::malformed("entry", "too many roles"));
    }
    let mut roles = Vec::with_capacity(count);
    for _ in 0..count {
        let n = r.u8().map_err(t)? as usize;
        roles.push(utf8(r.take(n).map_err(t)?)?);
    }
    Ok(roles)
}

fn decode_op(r: &mut Reader<'_>) -> Result<Op, MembershipError> {
    let t = |_| MembershipError::malformed("entry", "truncated body");
    Ok(match r.u8().map_err(t)? {
        0 => {
            let n = r.u8().map_err(t)? as usize;
            let name = utf8(r.take(n).map_err(t)?)?;
            let count = r.u8().map_err(t)? as usize;
            if count > MAX_GENESIS_ADMINS {
                return Err(MembershipError::malformed("entry", "too many admins"));
            }
            let mut admins = Vec::with_capacity(count);
            for _ in 0..count {
                admins.push(r.array().map_err(t)?);
            }
            Op::Genesis { name, admins }
        }
        1 => Op::AddMember {
            key: r.array().map_err(t)?,
            expires_at_ms: r.u64().map_err(t)?,
            roles: decode_roles(r)?,
        },
        2 => Op::RemoveMember {
            key: r.array().map_err(t)?,
        },
        3 => Op::AddAdmin {
            key: r.array().map_err(t)?,
            expires_at_ms: r.u64().map_err(t)?,
        },
        4 => Op::RemoveAdmin {
            key: r.array().map_err(t)?,
        },
        5 => Op::Join {
            key: r.array().map_err(t)?,
            roles: decode_roles(r)?,
            issuer: r.array().map_err(t)?,
            token: r.array().map_err(t)?,
            max_uses: r.u16().map_err(t)?,
        },
        6 => Op::RevokeInvite {
            issuer: r.array().map_err(t)?,
            token: r.array().map_err(t)?,
        },
        7 => Op::RotateRoot {
            new_root: r.array().map_err(t)?,
        },
        _ => return Err(MembershipError::malformed("entry", "unknown operation")),
    })
}

fn utf8(bytes: &[u8]) -> Result<String, MembershipError> {
    String::from_utf8(bytes.to_vec()).map_err(|_| MembershipError::malformed("entry", "not UTF-8"))
}
