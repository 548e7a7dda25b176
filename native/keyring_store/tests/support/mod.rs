//! Helpers shared by the store's integration tests.
#![allow(dead_code)]

use std::path::Path;

use keyring_core::hash::Digest;
use keyring_store::{BlobStore, Store, StoreConfig, StoreError, Tag, WriteOp, WriteOutcome};

/// A running store that closes (and releases its directory) when dropped.
pub struct Node {
    pub store: Store,
}

impl Node {
    pub fn open(dir: &Path) -> Self {
        let config = StoreConfig {
            queue_capacity: 1024,
            ..StoreConfig::default()
        };
        Self {
            store: Store::open(dir, &config).unwrap(),
        }
    }

    pub fn blobs(&self) -> &BlobStore {
        self.store.blobs()
    }

    pub fn write(&self, op: WriteOp) -> Result<WriteOutcome, StoreError> {
        self.store.write(op)
    }

    pub fn put(&self, data: &[u8]) -> Digest {
        self.store.put_bytes(data.to_vec(), vec![]).unwrap()
    }

    pub fn put_tagged(&self, data: &[u8], tags: Vec<Tag>) -> Digest {
        self.store.put_bytes(data.to_vec(), tags).unwrap()
    }

    pub fn tag(&self, tag: Tag, cid: Digest) {
        self.write(WriteOp::SetTag { tag, cid }).unwrap();
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.store.close();
    }
}

/// Deterministic pseudo-random bytes.
pub fn blob(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

pub fn pin(name: &str) -> Tag {
    Tag::Pin {
        name: name.as_bytes().to_vec(),
    }
}

pub fn share(ring: u8, name: &str) -> Tag {
    Tag::Share {
        ring: [ring; 32],
        name: name.as_bytes().to_vec(),
    }
}

/// Files under a directory, recursively.
pub fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}
