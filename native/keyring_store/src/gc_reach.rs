//! What GC keeps besides tagged blobs: everything reachable from a tagged
//! (pinned or shared) cid through DAG node links (`keyring_core::dag`).
//! Sharing or pinning a DAG's root keeps the whole DAG.
//!
//! The set is computed inside the GC step's own write transaction, lazily
//! (only when the step meets a blob no tag names), from the tables as that
//! transaction sees them: puts and tags queue in the same writer as GC, so
//! a node stored under a tagged root before the step is kept, and one
//! stored after it was not looked at. A DAG fetched from a peer is safe
//! while it arrives when its root is tagged first and nodes are stored
//! parents before children (as DAG sync does): at every step each stored
//! node hangs from the tagged root through stored nodes (iroh-blobs#247).
//!
//! Cost: one walk of the tagged DAGs per GC step that meets an untagged
//! blob (the nodes' records, plus the files of nodes over 16 KiB, read only
//! when their first two bytes look like a node), and 32 bytes of memory per
//! reachable cid for the step's length.

use std::collections::HashSet;
use std::io::Read;

use keyring_core::dag::{NodeRef, MAX_NODE_BYTES, VERSION};
use keyring_core::hash::Digest;
use redb::ReadableTable;

use crate::apply::Tables;
use crate::layout::FileKind;
use crate::schema::BlobRecord;
use crate::StoreError;

/// The cids reachable from tags, computed on first use.
#[derive(Debug, Default)]
pub(crate) struct Reach {
    set: Option<HashSet<Digest>>,
}

impl Reach {
    /// Whether `cid` is reachable from a tagged cid.
    pub(crate) fn covers(&mut self, t: &Tables<'_>, cid: &Digest) -> Result<bool, StoreError> {
        if self.set.is_none() {
            self.set = Some(reachable(t)?);
        }
        Ok(self.set.as_ref().is_some_and(|s| s.contains(cid)))
    }
}

fn reachable(t: &Tables<'_>) -> Result<HashSet<Digest>, StoreError> {
    let mut seen: HashSet<Digest> = HashSet::new();
    let mut stack: Vec<Digest> = Vec::new();
    let mut last: Option<Digest> = None;
    for entry in t.protect.iter()? {
        let (key, _) = entry?;
        if let Some(cid) = key.value().get(..32).and_then(|k| Digest::try_from(k).ok()) {
            // Keys are sorted by cid: skip a cid's further tags.
            if last != Some(cid) {
                stack.push(cid);
                last = Some(cid);
            }
        }
    }
    while let Some(cid) = stack.pop() {
        if !seen.insert(cid) {
            continue;
        }
        let Some(bytes) = node_bytes(t, &cid)? else {
            continue;
        };
        if let Ok(node) = NodeRef::decode(&bytes) {
            stack.extend(node.links().map(|l| l.cid).filter(|c| !seen.contains(c)));
        }
    }
    Ok(seen)
}

/// The bytes of blob `cid` when they may be a DAG node.
fn node_bytes(t: &Tables<'_>, cid: &Digest) -> Result<Option<Vec<u8>>, StoreError> {
    let Some(record) = t.blobs.get(cid.as_slice())? else {
        return Ok(None);
    };
    match BlobRecord::decode(record.value()) {
        Ok(BlobRecord::Inline(bytes)) => Ok(looks_like_node(bytes).then(|| bytes.to_vec())),
        Ok(BlobRecord::File { size, .. }) if size as usize <= MAX_NODE_BYTES => {
            let path = t.layout.blob_file(cid, FileKind::Data);
            let Ok(mut file) = std::fs::File::open(path) else {
                return Ok(None);
            };
            let mut head = [0u8; 2];
            if file.read_exact(&mut head).is_err() || !looks_like_node(&head) {
                return Ok(None);
            }
            let mut bytes = head.to_vec();
            if file
                .take(size.saturating_sub(2))
                .read_to_end(&mut bytes)
                .is_err()
            {
                return Ok(None);
            }
            Ok(Some(bytes))
        }
        _ => Ok(None),
    }
}

/// A version byte and a known kind: worth decoding.
fn looks_like_node(bytes: &[u8]) -> bool {
    bytes.len() >= 2 && bytes[0] == VERSION && bytes[1] <= 2
}
