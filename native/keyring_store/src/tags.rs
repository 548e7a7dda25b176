//! Tags: the names that keep blobs alive and say where they may go.
//!
//! A blob is *shared into a keyring* by a share tag `{keyring, name} → cid`
//! and *pinned* locally by a pin tag `name → cid`. Tags are the only thing
//! that protects a blob from garbage collection (besides the temporary
//! protection of a partial blob being written), and share tags are the only
//! thing that lets a member of a keyring fetch a blob: a blob is served to a
//! peer only over a connection of a keyring the blob is shared in.
//!
//! A tag may name a cid the store does not hold (yet): sharing or pinning
//! before downloading is how a download is protected from the start.
//!
//! The reverse index `protect` counts, per cid, the tags of each kind and
//! scope naming it, so both questions the network and GC ask are single
//! B-tree probes: "is cid shared in keyring K" and "does anything protect cid".
//!
//! Hook for DAG roots (later): a root tag kind whose reachable set is
//! protected and shared with it. GC and the sharing check ask
//! [`crate::BlobStore::is_protected`] and [`crate::BlobStore::shared_in`]
//! only, so a root walk plugs in there.

use keyring_core::hash::Digest;
use redb::{ReadableTable, Table};

use crate::schema::MAX_TAG_NAME;
use crate::StoreError;

/// A keyring id: its root public key.
pub type RingId = [u8; 32];

const KIND_SHARE: u8 = 1;
const KIND_PIN: u8 = 2;
const NO_SCOPE: [u8; 32] = [0; 32];

/// A tag's identity: its kind, scope and name. An empty name stands for the
/// cid the tag is set to (see [`Tag::named_for`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Tag {
    /// Shares a blob into keyring `ring` under `name`.
    Share {
        /// The keyring.
        ring: RingId,
        /// The name (unique within the keyring's tags).
        name: Vec<u8>,
    },
    /// Pins a blob locally under `name`.
    Pin {
        /// The name (unique among pins).
        name: Vec<u8>,
    },
}

/// Which tags to list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TagScope {
    /// Share tags of one keyring.
    Ring(RingId),
    /// Pins.
    Pins,
}

impl Tag {
    fn kind_scope(&self) -> (u8, &[u8; 32]) {
        match self {
            Tag::Share { ring, .. } => (KIND_SHARE, ring),
            Tag::Pin { .. } => (KIND_PIN, &NO_SCOPE),
        }
    }

    fn name(&self) -> &[u8] {
        match self {
            Tag::Share { name, .. } | Tag::Pin { name } => name,
        }
    }

    /// The tag with an empty name named after `cid` (an anonymous tag: one
    /// per cid and scope, so a put can ask for one before its cid is known).
    pub fn named_for(&self, cid: &Digest) -> Tag {
        match self {
            Tag::Share { ring, name } if name.is_empty() => Tag::Share {
                ring: *ring,
                name: cid.to_vec(),
            },
            Tag::Pin { name } if name.is_empty() => Tag::Pin { name: cid.to_vec() },
            other => other.clone(),
        }
    }

    /// Whether the name is within limits.
    pub fn check(&self) -> Result<(), StoreError> {
        if self.name().len() > MAX_TAG_NAME {
            return Err(StoreError::TooLarge("tag name"));
        }
        Ok(())
    }

    /// Key in `tags`.
    pub(crate) fn key(&self) -> Vec<u8> {
        let (kind, scope) = self.kind_scope();
        let mut key = Vec::with_capacity(33 + self.name().len());
        key.push(kind);
        key.extend_from_slice(scope);
        key.extend_from_slice(self.name());
        key
    }

    pub(crate) fn is_share(&self) -> bool {
        matches!(self, Tag::Share { .. })
    }

    /// Key in `protect` for this tag naming `cid`.
    pub(crate) fn protect_key(&self, cid: &Digest) -> [u8; 65] {
        let (kind, scope) = self.kind_scope();
        protect_key(cid, kind, scope)
    }
}

impl TagScope {
    /// The `tags` key prefix of this scope.
    pub(crate) fn prefix(&self) -> [u8; 33] {
        let (kind, scope) = match self {
            TagScope::Ring(ring) => (KIND_SHARE, ring),
            TagScope::Pins => (KIND_PIN, &NO_SCOPE),
        };
        let mut out = [0u8; 33];
        out[0] = kind;
        out[1..].copy_from_slice(scope);
        out
    }
}

pub(crate) fn protect_key(cid: &Digest, kind: u8, scope: &[u8; 32]) -> [u8; 65] {
    let mut key = [0u8; 65];
    key[..32].copy_from_slice(cid);
    key[32] = kind;
    key[33..].copy_from_slice(scope);
    key
}

/// The `protect` key saying `cid` is shared in `ring`.
pub(crate) fn share_key(cid: &Digest, ring: &RingId) -> [u8; 65] {
    protect_key(cid, KIND_SHARE, ring)
}

/// The range of `protect` keys of `cid`.
pub(crate) fn protect_range(cid: &Digest) -> ([u8; 65], [u8; 65]) {
    (
        protect_key(cid, 0, &[0; 32]),
        protect_key(cid, 0xff, &[0xff; 32]),
    )
}

/// Adds `delta` (±1) to a `protect` count, removing it at zero.
pub(crate) fn count(
    protect: &mut Table<'_, &'static [u8], u64>,
    key: &[u8; 65],
    up: bool,
) -> Result<(), StoreError> {
    let now = protect.get(key.as_slice())?.map(|v| v.value()).unwrap_or(0);
    let next = if up { now + 1 } else { now.saturating_sub(1) };
    if next == 0 {
        protect.remove(key.as_slice())?;
    } else {
        protect.insert(key.as_slice(), next)?;
    }
    Ok(())
}
