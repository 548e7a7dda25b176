use crate::hash::Digest;
use crate::identity::{verify_strict, KeyPair, PUBLIC_KEY_LEN, SIGNATURE_LEN};
use crate::wire::reader::Reader;

use super::FeedError;

/// Format version written by this build.
pub const VERSION: u8 = 1;
/// Domain-separation prefix of every feed entry signature.
pub const SIGN_DOMAIN: &[u8] = b"keyring/feed/v1\0";
/// Largest inline content; larger content goes in a blob named by its cid.
pub const MAX_INLINE: usize = 16 * 1024;
/// Longest content type.
pub const MAX_CONTENT_TYPE: usize = 64;
/// Largest encoded entry.
pub const MAX_ENCODED: usize = BODY_FIXED + MAX_CONTENT_TYPE + 1 + 2 + MAX_INLINE + SIGNATURE_LEN;

const BODY_FIXED: usize = 1 + 32 + 32 + 8 + 32 + 8 + 1;
const HASH_CONTEXT: &str = "keyring feed entry hash v1";

/// A 32-byte Ed25519 public key.
pub type PublicKey = [u8; PUBLIC_KEY_LEN];
/// The hash of an entry's body: its id and its successor's `prev`.
pub type EntryHash = [u8; 32];

/// What an entry carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    /// The content itself, at most [`MAX_INLINE`] bytes.
    Inline(Vec<u8>),
    /// A blob in the content-addressed store.
    Blob {
        /// The blob's cid (BLAKE3).
        cid: Digest,
        /// Its size in bytes.
        size: u64,
    },
}

/// The signed fields of an entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryBody {
    /// The keyring the feed lives in (its root public key).
    pub keyring: PublicKey,
    /// The author: the only key that may sign entries of this feed.
    pub author: PublicKey,
    /// Position in the author's feed, from 1.
    pub seq: u64,
    /// Hash of the entry at `seq - 1` (all zeros for seq 1).
    pub prev: EntryHash,
    /// When the author wrote it (Unix ms, the author's claim).
    pub timestamp_ms: u64,
    /// What the content is (see [`valid_content_type`]).
    pub content_type: String,
    /// The content.
    pub content: Content,
}

/// A signed feed entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    body: EntryBody,
    body_bytes: Vec<u8>,
    signature: [u8; SIGNATURE_LEN],
    hash: EntryHash,
}

/// A content type: 1..=64 bytes of `[a-z0-9/._+-]`.
pub fn valid_content_type(t: &str) -> bool {
    !t.is_empty()
        && t.len() <= MAX_CONTENT_TYPE
        && t.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"/._+-".contains(&b))
}

impl EntryBody {
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(BODY_FIXED + 80 + self.inline_len());
        out.push(VERSION);
        out.extend_from_slice(&self.keyring);
        out.extend_from_slice(&self.author);
        out.extend_from_slice(&self.seq.to_be_bytes());
        out.extend_from_slice(&self.prev);
        out.extend_from_slice(&self.timestamp_ms.to_be_bytes());
        out.push(self.content_type.len() as u8);
        out.extend_from_slice(self.content_type.as_bytes());
        match &self.content {
            Content::Blob { cid, size } => {
                out.push(0);
                out.extend_from_slice(cid);
                out.extend_from_slice(&size.to_be_bytes());
            }
            Content::Inline(bytes) => {
                out.push(1);
                out.extend_from_slice(&(bytes.len() as u16).to_be_bytes());
                out.extend_from_slice(bytes);
            }
        }
        out
    }

    fn inline_len(&self) -> usize {
        match &self.content {
            Content::Inline(b) => b.len(),
            Content::Blob { .. } => 0,
        }
    }

    fn validate(&self) -> Result<(), FeedError> {
        if self.seq == 0 {
            return Err(FeedError::Malformed("seq starts at 1"));
        }
        if (self.seq == 1) != (self.prev == [0; 32]) {
            return Err(FeedError::Malformed(
                "prev is all zeros exactly for the first entry",
            ));
        }
        if !valid_content_type(&self.content_type) {
            return Err(FeedError::Malformed(
                "a content type is 1..=64 bytes of [a-z0-9/._+-]",
            ));
        }
        if self.inline_len() > MAX_INLINE {
            return Err(FeedError::Malformed("inline content over 16 KiB"));
        }
        Ok(())
    }
}

impl Entry {
    /// Signs `body` with `author`, whose public key must be `body.author`.
    pub fn sign(body: EntryBody, author: &KeyPair) -> Result<Self, FeedError> {
        if author.public_key() != body.author {
            return Err(FeedError::NotTheAuthor);
        }
        body.validate()?;
        let body_bytes = body.encode();
        let signature = author.sign(&signed_message(&body_bytes));
        let hash = hash_body(&body_bytes);
        Ok(Self {
            body,
            body_bytes,
            signature,
            hash,
        })
    }

    /// The signed fields.
    pub fn body(&self) -> &EntryBody {
        &self.body
    }

    /// The author's key.
    pub fn author(&self) -> &PublicKey {
        &self.body.author
    }

    /// The keyring.
    pub fn keyring(&self) -> &PublicKey {
        &self.body.keyring
    }

    /// The sequence number.
    pub fn seq(&self) -> u64 {
        self.body.seq
    }

    /// The predecessor's hash.
    pub fn prev(&self) -> &EntryHash {
        &self.body.prev
    }

    /// The entry's hash (BLAKE3 over the body; the signature is not included,
    /// so the chain never depends on signature bytes).
    pub fn hash(&self) -> &EntryHash {
        &self.hash
    }

    /// Length of the canonical encoding.
    pub fn encoded_len(&self) -> usize {
        self.body_bytes.len() + SIGNATURE_LEN
    }

    /// The canonical encoding (`body || signature`).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        out.extend_from_slice(&self.body_bytes);
        out.extend_from_slice(&self.signature);
        out
    }

    /// Decodes one entry; refuses trailing bytes, unknown versions and
    /// non-canonical fields. Does not check the signature ([`Entry::verify`]).
    pub fn decode(bytes: &[u8]) -> Result<Self, FeedError> {
        if bytes.len() > MAX_ENCODED {
            return Err(FeedError::Malformed("longer than the largest entry"));
        }
        let t = |_| FeedError::Malformed("truncated");
        let mut r = Reader::new(bytes);
        let version = r.u8().map_err(t)?;
        if version != VERSION {
            return Err(FeedError::UnsupportedVersion(version));
        }
        let keyring = r.array().map_err(t)?;
        let author = r.array().map_err(t)?;
        let seq = r.u64().map_err(t)?;
        let prev = r.array().map_err(t)?;
        let timestamp_ms = r.u64().map_err(t)?;
        let type_len = r.u8().map_err(t)? as usize;
        let content_type = std::str::from_utf8(r.take(type_len).map_err(t)?)
            .map_err(|_| FeedError::Malformed("content type is not UTF-8"))?
            .to_owned();
        let content = match r.u8().map_err(t)? {
            0 => Content::Blob {
                cid: r.array().map_err(t)?,
                size: r.u64().map_err(t)?,
            },
            1 => {
                let len = r.u16().map_err(t)? as usize;
                if len > MAX_INLINE {
                    return Err(FeedError::Malformed("inline content over 16 KiB"));
                }
                Content::Inline(r.take(len).map_err(t)?.to_vec())
            }
            _ => return Err(FeedError::Malformed("unknown content kind")),
        };
        let body_len = bytes.len() - r.remaining();
        let signature = r.array().map_err(t)?;
        if r.remaining() != 0 {
            return Err(FeedError::Malformed("trailing bytes"));
        }
        let body = EntryBody {
            keyring,
            author,
            seq,
            prev,
            timestamp_ms,
            content_type,
            content,
        };
        body.validate()?;
        let body_bytes = bytes[..body_len].to_vec();
        let hash = hash_body(&body_bytes);
        Ok(Self {
            body,
            body_bytes,
            signature,
            hash,
        })
    }

    /// Checks the signature against the entry's own author key (strict Ed25519).
    pub fn verify(&self) -> Result<(), FeedError> {
        match verify_strict(
            &self.body.author,
            &signed_message(&self.body_bytes),
            &self.signature,
        ) {
            Ok(true) => Ok(()),
            _ => Err(FeedError::BadSignature),
        }
    }
}

fn hash_body(body: &[u8]) -> EntryHash {
    let mut h = blake3::Hasher::new_derive_key(HASH_CONTEXT);
    h.update(body);
    *h.finalize().as_bytes()
}

fn signed_message(body: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(SIGN_DOMAIN.len() + body.len());
    m.extend_from_slice(SIGN_DOMAIN);
    m.extend_from_slice(body);
    m
}
