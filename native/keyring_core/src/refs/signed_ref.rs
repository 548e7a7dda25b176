use crate::hash::Digest;
use crate::identity::{verify_strict, KeyPair, PUBLIC_KEY_LEN, SIGNATURE_LEN};
use crate::wire::reader::Reader;

use super::RefError;

/// Format version written by this build.
pub const VERSION: u8 = 1;
/// Domain-separation prefix of every ref signature.
pub const SIGN_DOMAIN: &[u8] = b"keyring/ref/v1\0";
/// Longest ref name in bytes.
pub const MAX_NAME_LEN: usize = 128;
/// Largest encoded ref.
pub const MAX_ENCODED: usize = BODY_FIXED + MAX_NAME_LEN + SIGNATURE_LEN;

const BODY_FIXED: usize = 1 + 32 + 32 + 8 + 8 + 32 + 1;

type PublicKey = [u8; PUBLIC_KEY_LEN];

/// The signed fields of a ref.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefBody {
    /// The keyring it is published in (the keyring's root public key).
    pub keyring: PublicKey,
    /// The author's public key: the only key that may sign it.
    pub author: PublicKey,
    /// Sequence number, from 1; a ref replaces another only with a higher one.
    pub seq: u64,
    /// When the author published it (Unix ms, the author's claim).
    pub timestamp_ms: u64,
    /// The cid the ref points to.
    pub root: Digest,
    /// The ref's name (see [`valid_name`]).
    pub name: String,
}

/// A signed ref: its body, the exact body bytes and the author's signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedRef {
    body: RefBody,
    body_bytes: Vec<u8>,
    signature: [u8; SIGNATURE_LEN],
}

/// What accepting a ref does to the one held for the same name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Update {
    /// No ref was held: this one is new.
    New,
    /// It replaces the held ref, which had sequence number `previous`.
    Replaces {
        /// The replaced ref's sequence number.
        previous: u64,
    },
    /// It is the ref already held.
    Duplicate,
}

/// A ref name: 1..=128 bytes of printable ASCII without spaces.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name.bytes().all(|b| (0x21..=0x7e).contains(&b))
}

impl RefBody {
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(BODY_FIXED + self.name.len());
        out.push(VERSION);
        out.extend_from_slice(&self.keyring);
        out.extend_from_slice(&self.author);
        out.extend_from_slice(&self.seq.to_be_bytes());
        out.extend_from_slice(&self.timestamp_ms.to_be_bytes());
        out.extend_from_slice(&self.root);
        out.push(self.name.len() as u8);
        out.extend_from_slice(self.name.as_bytes());
        out
    }

    fn validate(&self) -> Result<(), RefError> {
        if self.seq == 0 {
            return Err(RefError::Malformed("seq starts at 1"));
        }
        if !valid_name(&self.name) {
            return Err(RefError::Malformed(
                "a name is 1..=128 bytes of printable ASCII without spaces",
            ));
        }
        Ok(())
    }
}

impl SignedRef {
    /// Signs `body` with `author`, whose public key must be `body.author`.
    pub fn sign(body: RefBody, author: &KeyPair) -> Result<Self, RefError> {
        if author.public_key() != body.author {
            return Err(RefError::NotTheAuthor);
        }
        body.validate()?;
        let body_bytes = body.encode();
        let signature = author.sign(&signed_message(&body_bytes));
        Ok(Self {
            body,
            body_bytes,
            signature,
        })
    }

    /// The signed fields.
    pub fn body(&self) -> &RefBody {
        &self.body
    }

    /// The author's signature.
    pub fn signature(&self) -> &[u8; SIGNATURE_LEN] {
        &self.signature
    }

    /// The canonical encoding (`body || signature`).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.body_bytes.len() + SIGNATURE_LEN);
        out.extend_from_slice(&self.body_bytes);
        out.extend_from_slice(&self.signature);
        out
    }

    /// Decodes one ref; refuses trailing bytes, unknown versions and
    /// non-canonical fields. Does not check the signature ([`SignedRef::verify`]).
    pub fn decode(bytes: &[u8]) -> Result<Self, RefError> {
        if bytes.len() > MAX_ENCODED {
            return Err(RefError::Malformed("longer than the largest ref"));
        }
        let t = |_| RefError::Malformed("truncated");
        let mut r = Reader::new(bytes);
        let version = r.u8().map_err(t)?;
        if version != VERSION {
            return Err(RefError::UnsupportedVersion(version));
        }
        let keyring = r.array().map_err(t)?;
        let author = r.array().map_err(t)?;
        let seq = r.u64().map_err(t)?;
        let timestamp_ms = r.u64().map_err(t)?;
        let root = r.array().map_err(t)?;
        let name_len = r.u8().map_err(t)? as usize;
        let name = std::str::from_utf8(r.take(name_len).map_err(t)?)
            .map_err(|_| RefError::Malformed("name is not UTF-8"))?
            .to_owned();
        let body_len = bytes.len() - r.remaining();
        let signature = r.array().map_err(t)?;
        if r.remaining() != 0 {
            return Err(RefError::Malformed("trailing bytes"));
        }
        let body = RefBody {
            keyring,
            author,
            seq,
            timestamp_ms,
            root,
            name,
        };
        body.validate()?;
        Ok(Self {
            body,
            body_bytes: bytes[..body_len].to_vec(),
            signature,
        })
    }

    /// Checks the signature against the ref's own author key (strict Ed25519).
    pub fn verify(&self) -> Result<(), RefError> {
        match verify_strict(
            &self.body.author,
            &signed_message(&self.body_bytes),
            &self.signature,
        ) {
            Ok(true) => Ok(()),
            _ => Err(RefError::BadSignature),
        }
    }

    /// Decodes and verifies a ref that arrived for `keyring`.
    pub fn decode_verified(bytes: &[u8], keyring: &PublicKey) -> Result<Self, RefError> {
        let r = Self::decode(bytes)?;
        if &r.body.keyring != keyring {
            return Err(RefError::WrongKeyring);
        }
        r.verify()?;
        Ok(r)
    }

    /// Whether this (verified) ref may replace `current`, the ref held for the
    /// same keyring, author and name (`None` when none is held). Only a
    /// strictly higher `seq` replaces: a lower one is [`RefError::Stale`] and a
    /// different ref at the same `seq` is [`RefError::Equivocation`].
    pub fn supersedes(&self, current: Option<&SignedRef>) -> Result<Update, RefError> {
        let Some(current) = current else {
            return Ok(Update::New);
        };
        let (a, b) = (&self.body, &current.body);
        if a.keyring != b.keyring || a.author != b.author || a.name != b.name {
            return Err(RefError::DifferentRef);
        }
        match a.seq.cmp(&b.seq) {
            std::cmp::Ordering::Greater => Ok(Update::Replaces { previous: b.seq }),
            std::cmp::Ordering::Less => Err(RefError::Stale {
                seq: a.seq,
                current: b.seq,
            }),
            std::cmp::Ordering::Equal if self.body_bytes == current.body_bytes => {
                Ok(Update::Duplicate)
            }
            std::cmp::Ordering::Equal => Err(RefError::Equivocation { seq: a.seq }),
        }
    }
}

fn signed_message(body: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(SIGN_DOMAIN.len() + body.len());
    m.extend_from_slice(SIGN_DOMAIN);
    m.extend_from_slice(body);
    m
}
