//! One membership log entry: its deterministic encoding, hash and signature.
//!
//! ```text
//! entry = body_len:u16 body sig_count:u8 (alg:u8 sig_len:u16 sig)*
//! body  = version:u8(=1) keyring_id:[32] seq:u64 prev_hash:[32]
//!         timestamp_ms:u64 signer:[32] op:u8 op_payload
//! ```
//!
//! All integers are big-endian. The signature covers `SIGN_DOMAIN || body`; the
//! entry hash (the chain link) is a BLAKE3 derived-key hash of the body only, so
//! the chain never depends on signature bytes. Version 1 requires exactly one
//! Ed25519 signature (`alg = 1`); the signature block is a list so a later version
//! can require a hybrid Ed25519 + ML-DSA pair without changing the body.

use crate::identity::{verify_strict, KeyPair, PUBLIC_KEY_LEN, SIGNATURE_LEN};
use crate::wire::reader::Reader;

use super::MembershipError;

/// A 32-byte Ed25519 public key.
pub type PublicKey = [u8; PUBLIC_KEY_LEN];
/// The chain hash of an entry.
pub type EntryHash = [u8; 32];

/// Format version written by this build.
pub const VERSION: u8 = 1;
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
        /// Admin keys besides the root (sorted, unique).
        admins: Vec<PublicKey>,
    },
    /// Adds a member, or renews/changes an existing member's roles and expiry.
    AddMember {
        /// The member's key.
        key: PublicKey,
        /// Unix time in ms after which the member is no longer valid; 0 = never.
        expires_at_ms: u64,
        /// Roles/groups (sorted, unique).
        roles: Vec<String>,
    },
    /// Revokes a member by key id. A revoked key can never be re-added.
    RemoveMember {
        /// The member's key.
        key: PublicKey,
    },
    /// Grants admin rights (admins are members too).
    AddAdmin {
        /// The admin's key.
        key: PublicKey,
    },
    /// Withdraws admin rights (the root key cannot be removed).
    RemoveAdmin {
        /// The admin's key.
        key: PublicKey,
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
        }
    }
}

/// The signed part of an entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Body {
    /// The keyring (its root public key).
    pub keyring_id: PublicKey,
    /// Position in the log, from 0 (genesis).
    pub seq: u64,
    /// Hash of the previous entry's body (all zeros for genesis).
    pub prev_hash: EntryHash,
    /// When the admin wrote it (Unix ms); never decreases along the log.
    pub timestamp_ms: u64,
    /// The admin key that signs the entry.
    pub signer: PublicKey,
    /// The change.
    pub op: Op,
}

/// A decoded entry: its body, the exact body bytes and the signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The decoded body.
    pub body: Body,
    body_bytes: Vec<u8>,
    signature: [u8; SIGNATURE_LEN],
}

impl Body {
    /// The canonical encoding of the body.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(160);
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
                out.push(roles.len() as u8);
                for r in roles {
                    out.push(r.len() as u8);
                    out.extend_from_slice(r.as_bytes());
                }
            }
            Op::RemoveMember { key } | Op::AddAdmin { key } | Op::RemoveAdmin { key } => {
                out.extend_from_slice(key)
            }
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
            Op::AddMember { roles, .. } => {
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
            }
            _ => {}
        }
        Ok(())
    }

    /// The chain hash of this body.
    pub fn hash(&self) -> EntryHash {
        hash_body(&self.encode())
    }
}

fn hash_body(body: &[u8]) -> EntryHash {
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
            body,
            body_bytes,
            signature,
        })
    }

    /// The chain hash (BLAKE3 over the body; the signature is not included).
    pub fn hash(&self) -> EntryHash {
        hash_body(&self.body_bytes)
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
        let mut out = Vec::with_capacity(self.body_bytes.len() + 72);
        out.extend_from_slice(&(self.body_bytes.len() as u16).to_be_bytes());
        out.extend_from_slice(&self.body_bytes);
        out.push(1);
        out.push(ALG_ED25519);
        out.extend_from_slice(&(SIGNATURE_LEN as u16).to_be_bytes());
        out.extend_from_slice(&self.signature);
        out
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
            return Err(bad("version 1 entries carry exactly one signature"));
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
    let bad = |why| MembershipError::malformed("entry", why);
    let t = |_| bad("truncated body");
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
    let op = match r.u8().map_err(t)? {
        0 => {
            let n = r.u8().map_err(t)? as usize;
            let name = utf8(r.take(n).map_err(t)?)?;
            let count = r.u8().map_err(t)? as usize;
            let mut admins = Vec::with_capacity(count.min(MAX_GENESIS_ADMINS));
            for _ in 0..count {
                admins.push(r.array().map_err(t)?);
            }
            Op::Genesis { name, admins }
        }
        1 => {
            let key = r.array().map_err(t)?;
            let expires_at_ms = r.u64().map_err(t)?;
            let count = r.u8().map_err(t)? as usize;
            let mut roles = Vec::with_capacity(count.min(MAX_ROLES));
            for _ in 0..count {
                let n = r.u8().map_err(t)? as usize;
                roles.push(utf8(r.take(n).map_err(t)?)?);
            }
            Op::AddMember {
                key,
                expires_at_ms,
                roles,
            }
        }
        2 => Op::RemoveMember {
            key: r.array().map_err(t)?,
        },
        3 => Op::AddAdmin {
            key: r.array().map_err(t)?,
        },
        4 => Op::RemoveAdmin {
            key: r.array().map_err(t)?,
        },
        _ => return Err(bad("unknown operation")),
    };
    if r.remaining() != 0 {
        return Err(bad("trailing bytes in body"));
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

fn utf8(bytes: &[u8]) -> Result<String, MembershipError> {
    String::from_utf8(bytes.to_vec()).map_err(|_| MembershipError::malformed("entry", "not UTF-8"))
}
