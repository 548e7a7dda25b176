//! Temporary protection: cids that GC must not touch while something in this
//! process works on them (a partial blob being written), without a tag.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use keyring_core::hash::Digest;

/// The cids held right now, with how many holders each has.
#[derive(Debug, Default)]
pub(crate) struct Live {
    held: Mutex<HashMap<Digest, usize>>,
}

impl Live {
    pub(crate) fn contains(&self, cid: &Digest) -> bool {
        self.held
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(cid)
    }

    pub(crate) fn hold(self: &Arc<Self>, cid: Digest) -> LiveGuard {
        *self
            .held
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(cid)
            .or_insert(0) += 1;
        LiveGuard {
            live: Arc::clone(self),
            cid,
        }
    }
}

/// Keeps a cid safe from GC until dropped.
#[derive(Debug)]
pub struct LiveGuard {
    live: Arc<Live>,
    cid: Digest,
}

impl Drop for LiveGuard {
    fn drop(&mut self) {
        let mut held = self.live.held.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = held.get_mut(&self.cid) {
            *n -= 1;
            if *n == 0 {
                held.remove(&self.cid);
            }
        }
    }
}
