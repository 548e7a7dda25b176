//! Blobs in memory: a [`BlobProvider`] and [`BlobSink`] for tests and tools,
//! and [`LocalProvider`], a provider answering from memory without a
//! network, which can be told to misbehave ([`Behaviour`]) so the
//! downloader's fences can be attacked.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use keyring_core::hash::Digest;
use keyring_core::membership::PublicKey;
use keyring_core::transfer::{encode_response_all, Item, ListEntry};
use keyring_core::verified::{outboard, GroupRanges, Tree, VerifiedGroup, PAIR_LEN};
use tokio::sync::mpsc;

use super::download::{BlobSink, PartialSink, Provider};
use super::{Answer, BlobProvider, BlobSource};
use crate::error::CallError;

/// A stored blob: its bytes and its outboard.
pub type Stored = (Arc<Vec<u8>>, Arc<Vec<u8>>);

#[derive(Default)]
struct Inner {
    blobs: HashMap<Digest, Stored>,
    shares: HashSet<(PublicKey, Digest)>,
    partials: HashMap<Digest, Partial>,
    groups_written: u64,
}

struct Partial {
    size: u64,
    data: Vec<u8>,
    outboard: Vec<u8>,
    have: GroupRanges,
}

/// Blobs, shares and partial blobs in memory.
#[derive(Default, Clone)]
pub struct MemoryStore {
    inner: Arc<Mutex<Inner>>,
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MemoryStore")
    }
}

fn lock(m: &Mutex<Inner>) -> std::sync::MutexGuard<'_, Inner> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Stores `data`; its cid.
    pub fn insert(&self, data: Vec<u8>) -> Digest {
        let (cid, ob) = outboard(&data);
        lock(&self.inner)
            .blobs
            .insert(cid, (Arc::new(data), Arc::new(ob)));
        cid
    }

    /// Shares `cid` into `keyring`.
    pub fn share(&self, keyring: PublicKey, cid: Digest) {
        lock(&self.inner).shares.insert((keyring, cid));
    }

    /// The bytes of a complete blob.
    pub fn get(&self, cid: &Digest) -> Option<Vec<u8>> {
        lock(&self.inner).blobs.get(cid).map(|b| b.0.to_vec())
    }

    /// The bytes and outboard of a complete blob.
    pub fn get_with_outboard(&self, cid: &Digest) -> Option<Stored> {
        lock(&self.inner).blobs.get(cid).cloned()
    }

    /// Groups the partial blob of `cid` holds.
    pub fn partial_have(&self, cid: &Digest) -> Option<GroupRanges> {
        lock(&self.inner).partials.get(cid).map(|p| p.have.clone())
    }

    /// Verified groups written into partial blobs so far.
    pub fn groups_written(&self) -> u64 {
        lock(&self.inner).groups_written
    }
}

struct MemorySource(Arc<Vec<u8>>, Arc<Vec<u8>>);

impl BlobSource for MemorySource {
    fn size(&self) -> u64 {
        self.0.len() as u64
    }

    fn pair(&self, slot: u64) -> std::io::Result<[u8; PAIR_LEN]> {
        let at = slot as usize * PAIR_LEN;
        self.1
            .get(at..at + PAIR_LEN)
            .and_then(|p| p.try_into().ok())
            .ok_or_else(|| std::io::Error::other("no such pair"))
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        let at = offset as usize;
        let src = self
            .0
            .get(at..at + buf.len())
            .ok_or_else(|| std::io::Error::other("past the end"))?;
        buf.copy_from_slice(src);
        Ok(())
    }
}

impl BlobProvider for MemoryStore {
    fn open(&self, keyring: &PublicKey, cid: &Digest) -> Option<Box<dyn BlobSource>> {
        let inner = lock(&self.inner);
        if !inner.shares.contains(&(*keyring, *cid)) {
            return None;
        }
        let (data, ob) = inner.blobs.get(cid)?;
        Some(Box::new(MemorySource(data.clone(), ob.clone())))
    }

    fn list(&self, keyring: &PublicKey, after: &[u8], limit: usize) -> Vec<ListEntry> {
        let inner = lock(&self.inner);
        let mut out: Vec<ListEntry> = inner
            .shares
            .iter()
            .filter(|(k, cid)| k == keyring && cid.as_slice() > after)
            .filter_map(|(_, cid)| {
                inner.blobs.get(cid).map(|b| ListEntry {
                    name: cid.to_vec(),
                    cid: *cid,
                    size: b.0.len() as u64,
                })
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out.truncate(limit);
        out
    }
}

struct MemoryPartial {
    store: MemoryStore,
    cid: Digest,
    size: u64,
}

impl PartialSink for MemoryPartial {
    fn size(&self) -> u64 {
        self.size
    }

    fn have(&self) -> GroupRanges {
        lock(&self.store.inner)
            .partials
            .get(&self.cid)
            .map(|p| p.have.clone())
            .unwrap_or_default()
    }

    fn write(&mut self, group: &VerifiedGroup<'_>) -> Result<(), String> {
        if group.root() != &self.cid || group.size() != self.size {
            return Err("wrong blob".into());
        }
        let mut inner = lock(&self.store.inner);
        inner.groups_written += 1;
        let p = inner.partials.get_mut(&self.cid).ok_or("no partial")?;
        let at = group.offset() as usize;
        p.data[at..at + group.data().len()].copy_from_slice(group.data());
        for (slot, pair) in group.parents() {
            let at = *slot as usize * PAIR_LEN;
            p.outboard[at..at + PAIR_LEN].copy_from_slice(pair);
        }
        p.have.insert(group.index()..group.index() + 1);
        Ok(())
    }

    fn save(&mut self) -> Result<(), String> {
        Ok(())
    }

    fn complete(self: Box<Self>) -> Result<(), String> {
        let mut inner = lock(&self.store.inner);
        let p = inner.partials.remove(&self.cid).ok_or("no partial")?;
        if !p.have.covers(0, Tree::new(p.size).groups()) {
            return Err("incomplete".into());
        }
        if keyring_core::hash::digest(&p.data) != self.cid {
            return Err("does not hash to its cid".into());
        }
        inner
            .blobs
            .insert(self.cid, (Arc::new(p.data), Arc::new(p.outboard)));
        Ok(())
    }
}

impl BlobSink for MemoryStore {
    fn has(&self, cid: &Digest) -> bool {
        lock(&self.inner).blobs.contains_key(cid)
    }

    fn partial_size(&self, cid: &Digest) -> Option<u64> {
        lock(&self.inner).partials.get(cid).map(|p| p.size)
    }

    fn open(&self, cid: &Digest, size: u64) -> Result<Option<Box<dyn PartialSink>>, String> {
        let mut inner = lock(&self.inner);
        if inner.blobs.contains_key(cid) {
            return Ok(None);
        }
        let tree = Tree::new(size);
        let p = inner.partials.entry(*cid).or_insert_with(|| Partial {
            size,
            data: vec![0; size as usize],
            outboard: vec![0; tree.outboard_size() as usize],
            have: GroupRanges::empty(),
        });
        if p.size != size {
            return Err("size differs from the partial blob's".into());
        }
        Ok(Some(Box::new(MemoryPartial {
            store: self.clone(),
            cid: *cid,
            size,
        })))
    }

    fn put_small(&self, blobs: Vec<(Digest, Vec<u8>)>) -> Result<(), String> {
        for (cid, data) in blobs {
            if self.insert(data) != cid {
                return Err("does not hash to its cid".into());
            }
        }
        Ok(())
    }
}

/// How a [`LocalProvider`] answers.
#[derive(Debug, Clone)]
pub enum Behaviour {
    /// Honestly, at full speed.
    Honest,
    /// Honestly, at most this many bytes per second.
    Throttled(u64),
    /// Flips a byte at this offset of every answer.
    FlipByte(usize),
    /// Ends every answer after this many bytes.
    Truncate(usize),
    /// Sends this many bytes of every answer, then nothing (holding the
    /// stream open).
    StopAfter(usize),
    /// Answers every item with the bytes of this other blob.
    OtherBlob(Digest),
    /// Claims every blob is this many bytes (a lying size header).
    LyingSize(u64),
    /// Serves this many answers honestly, then behaves as the next one.
    After(usize, Box<Behaviour>),
}

/// A provider answering from a [`MemoryStore`] without a network.
pub struct LocalProvider {
    key: PublicKey,
    keyring: PublicKey,
    store: MemoryStore,
    behaviour: Behaviour,
    answers: Arc<Mutex<usize>>,
    /// Answer bytes handed out (all requests).
    sent: Arc<Mutex<u64>>,
}

impl LocalProvider {
    /// A provider with key `key` serving members of `keyring` from `store`.
    pub fn new(key: PublicKey, keyring: PublicKey, store: MemoryStore, b: Behaviour) -> Arc<Self> {
        Arc::new(Self {
            key,
            keyring,
            store,
            behaviour: b,
            answers: Arc::new(Mutex::new(0)),
            sent: Arc::new(Mutex::new(0)),
        })
    }

    /// Answer bytes handed out so far.
    pub fn bytes_sent(&self) -> u64 {
        *self.sent.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Provider for LocalProvider {
    fn key(&self) -> PublicKey {
        self.key
    }

    fn get(
        &self,
        items: Vec<Item>,
    ) -> Pin<Box<dyn Future<Output = Result<Answer, CallError>> + Send + 'static>> {
        let n = {
            let mut a = self.answers.lock().unwrap_or_else(|e| e.into_inner());
            *a += 1;
            *a - 1
        };
        let mut behaviour = self.behaviour.clone();
        while let Behaviour::After(k, next) = &behaviour {
            behaviour = if n < *k {
                Behaviour::Honest
            } else {
                (**next).clone()
            };
        }
        let store = self.store.clone();
        let keyring = self.keyring;
        let sent = self.sent.clone();
        Box::pin(async move {
            let find = |cid: &Digest| -> Option<Stored> {
                let cid = match &behaviour {
                    Behaviour::OtherBlob(other) => other,
                    _ => cid,
                };
                BlobProvider::open(&store, &keyring, cid)?;
                store.get_with_outboard(cid)
            };
            let found: Vec<Option<Stored>> = items.iter().map(|i| find(&i.cid)).collect();
            let mut bytes = encode_response_all(&items, |cid| {
                let i = items.iter().position(|it| &it.cid == cid)?;
                found[i].as_ref().map(|(d, o)| (&d[..], &o[..]))
            })
            .map_err(|e| CallError::Protocol(e.to_string()))?;
            match behaviour {
                Behaviour::FlipByte(at) if at < bytes.len() => bytes[at] ^= 0x55,
                Behaviour::Truncate(at) => bytes.truncate(at),
                Behaviour::LyingSize(size) if bytes.len() > 9 => {
                    bytes[1..9].copy_from_slice(&size.to_le_bytes())
                }
                _ => {}
            }
            let (tx, rx) = mpsc::channel(8);
            tokio::spawn(async move {
                let piece = 16 * 1024;
                let mut at = 0;
                while at < bytes.len() {
                    let mut end = (at + piece).min(bytes.len());
                    if let Behaviour::StopAfter(stop) = behaviour {
                        if at >= stop {
                            // Hold the stream open, send nothing.
                            tx.closed().await;
                            return;
                        }
                        end = end.min(stop.max(at + 1));
                    }
                    if let Behaviour::Throttled(rate) = behaviour {
                        let secs = (end - at) as f64 / rate.max(1) as f64;
                        tokio::time::sleep(Duration::from_secs_f64(secs)).await;
                    }
                    let chunk = Bytes::copy_from_slice(&bytes[at..end]);
                    *sent.lock().unwrap_or_else(|e| e.into_inner()) += chunk.len() as u64;
                    if tx.send(Ok(chunk)).await.is_err() {
                        return;
                    }
                    at = end;
                }
            });
            Ok(rx)
        })
    }
}
