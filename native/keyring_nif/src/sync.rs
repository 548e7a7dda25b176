//! Blob transfer for the BEAM: the node's store as the blob protocol's
//! provider (serving straight from store files into QUIC, never through the
//! BEAM) and as the downloader's sink (verified groups written into partial
//! blobs in Rust). `Keyring.Sync` starts transfers with [`sync_fetch`] and
//! hears `{:keyring_sync, ref, {:progress, map}}` along the way and
//! `{:keyring_reply, ref, result}` at the end; nothing blocks a scheduler.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use keyring_core::hash::Digest;
use keyring_core::membership::PublicKey;
use keyring_core::transfer::ListEntry;
use keyring_core::verified::{GroupRanges, VerifiedGroup, PAIR_LEN};
use keyring_net::protocols::blobs::download::{
    download, BlobSink, DownloadError, Options, PartialSink, Progress, Provider,
};
use keyring_net::protocols::blobs::{BlobProvider, BlobSource, Blobs, LinkProvider};
use keyring_net::Target;
use keyring_store::tags::{Tag, TagScope};
use keyring_store::{
    ChannelReply, OpenBlob, PartialOpen, PartialWriter, Store, WriteOp, WriteOutcome,
};
use rustler::{Binary, Encoder, Env, LocalPid, NewBinary, OwnedEnv, ResourceArc, Term};

use crate::atoms;
use crate::mesh::MeshResource;
use crate::reply::Reply;
use crate::store::StoreResource;

mod local_atoms {
    rustler::atoms! {
        keyring_sync, progress, blobs_done, blobs_total, bytes_done, bytes_total,
        providers, rate, stalled, errors, not_found, finished, store
    }
}

/// The store the blob protocol serves from, set once the instance's store
/// is known (`sync_attach_store`). Until then every cid is not found.
///
/// It holds the store's resource, not a `Store`: closing the store (at the
/// instance's shutdown) must release the database even while the mesh, and
/// so this slot, lives on until the BEAM collects it; otherwise a restart on
/// the same data dir finds it still open.
#[derive(Default)]
pub(crate) struct StoreSlot(RwLock<Option<ResourceArc<StoreResource>>>);

impl StoreSlot {
    fn get(&self) -> Option<Store> {
        self.0
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()?
            .store()
    }
}

/// Blobs a DAG sync answered as deferred (over its item limit) for a
/// keyring: reachable from a root shared there, so the blob protocol serves
/// them to that keyring's members for a while, as if shared. Bounded: at
/// most [`Grants::MAX`] entries, each for [`Grants::TTL`].
#[derive(Default)]
pub(crate) struct Grants(std::sync::Mutex<std::collections::HashMap<(PublicKey, Digest), Instant>>);

impl Grants {
    const MAX: usize = 65_536;
    const TTL: Duration = Duration::from_secs(600);

    pub(crate) fn grant(&self, keyring: &PublicKey, cid: &Digest) {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        if map.len() >= Self::MAX {
            map.retain(|_, until| *until > now);
        }
        if map.len() < Self::MAX {
            map.insert((*keyring, *cid), now + Self::TTL);
        }
    }

    fn granted(&self, keyring: &PublicKey, cid: &Digest) -> bool {
        let map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.get(&(*keyring, *cid))
            .is_some_and(|until| *until > Instant::now())
    }
}

/// The blob protocol over a [`StoreSlot`], registered in `mesh_start`.
pub(crate) fn protocol(slot: &Arc<StoreSlot>, grants: &Arc<Grants>) -> Arc<Blobs> {
    Blobs::new(
        Arc::new(StoreProvider(slot.clone(), grants.clone())),
        Duration::from_secs(30),
    )
}

struct StoreProvider(Arc<StoreSlot>, Arc<Grants>);

struct StoreSource(OpenBlob);

impl BlobSource for StoreSource {
    fn size(&self) -> u64 {
        self.0.size()
    }

    fn pair(&self, slot: u64) -> std::io::Result<[u8; PAIR_LEN]> {
        self.0
            .pair(slot)
            .map_err(|e| std::io::Error::other(e.to_string()))
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        self.0
            .read_at(offset, buf)
            .map_err(|e| std::io::Error::other(e.to_string()))
    }
}

impl BlobProvider for StoreProvider {
    fn open(&self, keyring: &PublicKey, cid: &Digest) -> Option<Box<dyn BlobSource>> {
        let store = self.0.get()?;
        // The scoping rule: served only if shared into the connection's
        // keyring; absent and not shared are the same `None`.
        if !store.blobs().shared_in(cid, keyring).ok()? && !self.1.granted(keyring, cid) {
            return None;
        }
        let blob = store.blobs().open_blob(cid, false).ok()??;
        Some(Box::new(StoreSource(blob)))
    }

    fn list(&self, keyring: &PublicKey, after: &[u8], limit: usize) -> Vec<ListEntry> {
        let Some(store) = self.0.get() else {
            return Vec::new();
        };
        let after = (!after.is_empty()).then_some(after);
        let tags = store
            .blobs()
            .tags(TagScope::Ring(*keyring), after, limit)
            .unwrap_or_default();
        tags.into_iter()
            .filter_map(|(name, cid)| {
                let size = store.blobs().size(&cid).ok()??;
                (name.len() <= keyring_core::transfer::MAX_NAME).then_some(ListEntry {
                    name,
                    cid,
                    size,
                })
            })
            .collect()
    }
}

/// The downloader's sink: the store, sharing what arrives into `keyring`
/// (so it is protected from GC and served on to the keyring's members).
struct StoreSink {
    store: Store,
    keyring: PublicKey,
}

impl StoreSink {
    fn tag(&self, cid: &Digest) -> Tag {
        Tag::Share {
            ring: self.keyring,
            name: Vec::new(),
        }
        .named_for(cid)
    }
}

struct StorePartial {
    writer: Option<PartialWriter>,
    store: Store,
    tag: Tag,
}

impl PartialSink for StorePartial {
    fn size(&self) -> u64 {
        self.writer.as_ref().map_or(0, |w| w.tree().size())
    }

    fn have(&self) -> GroupRanges {
        self.writer.as_ref().map(|w| w.have()).unwrap_or_default()
    }

    fn write(&mut self, group: &VerifiedGroup<'_>) -> Result<(), String> {
        let w = self.writer.as_mut().ok_or("closed")?;
        w.write(group).map_err(|e| e.to_string())
    }

    fn save(&mut self) -> Result<(), String> {
        let w = self.writer.as_mut().ok_or("closed")?;
        w.save().map_err(|e| e.to_string())
    }

    fn complete(mut self: Box<Self>) -> Result<(), String> {
        let w = self.writer.take().ok_or("closed")?;
        // Held from before the partial turns into a blob until its share tag
        // is committed: GC cannot take it in between.
        let _hold = self.store.blobs().hold(*w.cid());
        let cid = w.complete().map_err(|e| e.to_string())?;
        match self.store.write(WriteOp::SetTag {
            tag: self.tag.clone(),
            cid,
        }) {
            Ok(_) => Ok(()),
            Err(e) => Err(e.to_string()),
        }
    }
}

impl BlobSink for StoreSink {
    fn has(&self, cid: &Digest) -> bool {
        self.store.blobs().has(cid).unwrap_or(false)
    }

    fn partial_size(&self, cid: &Digest) -> Option<u64> {
        let info = self.store.blobs().partial(cid).ok()??;
        // Only partials whose size was proven are resumed as they are.
        info.size_verified.then_some(info.size)
    }

    fn open(&self, cid: &Digest, size: u64) -> Result<Option<Box<dyn PartialSink>>, String> {
        match self.store.partial(*cid, size, true) {
            Ok(PartialOpen::Writer(w)) => Ok(Some(Box::new(StorePartial {
                writer: Some(w),
                store: self.store.clone(),
                tag: self.tag(cid),
            }))),
            Ok(PartialOpen::Complete) => Ok(None),
            Err(e) => Err(e.to_string()),
        }
    }

    fn put_small(&self, blobs: Vec<(Digest, Vec<u8>)>) -> Result<(), String> {
        // Queued all at once: the writer thread commits them together.
        let mut waits = Vec::with_capacity(blobs.len());
        for (cid, data) in blobs {
            let (tx, rx) = std::sync::mpsc::sync_channel(1);
            let tags = vec![self.tag(&cid)];
            self.store
                .put(Box::new(data), tags, Box::new(ChannelReply(tx)))
                .map_err(|(e, _)| e.to_string())?;
            waits.push((cid, rx));
        }
        for (cid, rx) in waits {
            match rx.recv() {
                Ok(Ok(WriteOutcome::Stored(got))) if got == cid => {}
                Ok(Ok(other)) => return Err(format!("unexpected answer {other:?}")),
                Ok(Err(e)) => return Err(e.to_string()),
                Err(_) => return Err("store closed".into()),
            }
        }
        Ok(())
    }
}

/// Serves blobs from `store` on this mesh (and lets transfers write to it).
#[rustler::nif]
fn sync_attach_store(m: ResourceArc<MeshResource>, store: ResourceArc<StoreResource>) -> bool {
    if store.store().is_none() {
        return false;
    }
    *m.blob_store().0.write().unwrap_or_else(|e| e.into_inner()) = Some(store);
    true
}

fn key(b: &Binary<'_>) -> Result<PublicKey, rustler::Error> {
    b.as_slice().try_into().map_err(|_| rustler::Error::BadArg)
}

fn bin<'a>(env: Env<'a>, bytes: &[u8]) -> Binary<'a> {
    let mut out = NewBinary::new(env, bytes.len());
    out.as_mut_slice().copy_from_slice(bytes);
    out.into()
}

fn encode_progress<'a>(env: Env<'a>, p: &Progress) -> Term<'a> {
    let providers: Vec<(Binary<'a>, u64)> =
        p.providers.iter().map(|(k, n)| (bin(env, k), *n)).collect();
    let errors: Vec<(Binary<'a>, &str)> = p
        .errors
        .iter()
        .map(|(k, why)| (bin(env, k), why.as_str()))
        .collect();
    let not_found: Vec<Binary<'a>> = p.not_found.iter().map(|c| bin(env, c)).collect();
    let pairs: Vec<(Term<'a>, Term<'a>)> = vec![
        (
            local_atoms::blobs_done().encode(env),
            p.blobs_done.encode(env),
        ),
        (
            local_atoms::blobs_total().encode(env),
            p.blobs_total.encode(env),
        ),
        (
            local_atoms::bytes_done().encode(env),
            p.bytes_done.encode(env),
        ),
        (
            local_atoms::bytes_total().encode(env),
            p.bytes_total.encode(env),
        ),
        (local_atoms::providers().encode(env), providers.encode(env)),
        (local_atoms::rate().encode(env), p.rate.encode(env)),
        (local_atoms::stalled().encode(env), p.stalled.encode(env)),
        (local_atoms::errors().encode(env), errors.encode(env)),
        (local_atoms::not_found().encode(env), not_found.encode(env)),
        (local_atoms::finished().encode(env), p.finished.encode(env)),
    ];
    Term::map_from_pairs(env, &pairs).unwrap_or_else(|_| atoms::error().encode(env))
}

/// Fetches `cids` for `keyring` from `providers` (`[{peer_key, addr | nil}]`)
/// into the attached store. `:ok` now; progress as
/// `{:keyring_sync, tag, {:progress, map}}`; the end as
/// `{:keyring_reply, ref, {:ok, map} | {:error, reason, map}}`.
#[rustler::nif]
#[allow(clippy::too_many_arguments)]
fn sync_fetch<'a>(
    env: Env<'a>,
    m: ResourceArc<MeshResource>,
    reference: Term<'a>,
    tag: u64,
    keyring: Binary<'a>,
    providers: Vec<(Binary<'a>, Option<String>)>,
    cids: Vec<Binary<'a>>,
    stall_ms: u64,
    slice_groups: u64,
) -> Result<Term<'a>, rustler::Error> {
    let keyring = key(&keyring)?;
    let cids: Vec<Digest> = cids
        .iter()
        .map(|c| c.as_slice().try_into().map_err(|_| rustler::Error::BadArg))
        .collect::<Result<_, _>>()?;
    let Some(store) = m.blob_store().get() else {
        return Ok((atoms::error(), atoms::closed()).encode(env));
    };
    let opener = m.mesh_opener();
    let stall = Duration::from_millis(stall_ms.max(50));
    let mut list: Vec<Arc<dyn Provider>> = Vec::with_capacity(providers.len());
    for (peer, addr) in &providers {
        let addr = match addr {
            Some(a) => Some(a.parse().map_err(|_| rustler::Error::BadArg)?),
            None => None,
        };
        let target = Target {
            keyring,
            peer: key(peer)?,
            addr,
        };
        list.push(Arc::new(LinkProvider::new(opener.clone(), target, stall)));
    }
    let pid: LocalPid = env.pid();
    let reply = Reply::new(env, reference);
    let sink: Arc<dyn BlobSink> = Arc::new(StoreSink { store, keyring });
    let opts = Options {
        stall,
        slice_groups: slice_groups.max(1),
        ..Options::default()
    };
    let report = move |p: &Progress| {
        if p.finished {
            return;
        }
        let mut env = OwnedEnv::new();
        let _ = env.send_and_clear(&pid, |env| {
            (
                local_atoms::keyring_sync(),
                tag,
                (local_atoms::progress(), encode_progress(env, p)),
            )
                .encode(env)
        });
    };
    m.mesh_runtime().spawn(async move {
        let last = Arc::new(std::sync::Mutex::new(None::<Progress>));
        let keep = last.clone();
        let report: Box<dyn Fn(&Progress) + Send + Sync> = Box::new(move |p: &Progress| {
            *keep.lock().unwrap_or_else(|e| e.into_inner()) = Some(p.clone());
            report(p);
        });
        let result = download(cids, list, sink, opts, report).await;
        let final_progress = last.lock().unwrap_or_else(|e| e.into_inner()).take();
        reply.send(move |env| {
            let p = final_progress
                .as_ref()
                .map(|p| encode_progress(env, p))
                .unwrap_or_else(|| rustler::types::atom::nil().encode(env));
            match result {
                Ok(_) => (atoms::ok(), p).encode(env),
                Err(DownloadError::Stalled) => {
                    (atoms::error(), local_atoms::stalled(), p).encode(env)
                }
                Err(DownloadError::NotFound(_)) => {
                    (atoms::error(), atoms::not_found(), p).encode(env)
                }
                Err(DownloadError::Sink(why)) => {
                    (atoms::error(), (local_atoms::store(), why), p).encode(env)
                }
            }
        });
    });
    Ok(atoms::ok().encode(env))
}

/// Lists what `peer` shares into `keyring` (one page after tag name
/// `after`): `:ok` now, `{:keyring_reply, ref, {:ok, [{name, cid, size}]} |
/// {:error, reason}}` later.
#[rustler::nif]
#[allow(clippy::too_many_arguments)]
fn sync_list<'a>(
    env: Env<'a>,
    m: ResourceArc<MeshResource>,
    reference: Term<'a>,
    keyring: Binary<'a>,
    peer: Binary<'a>,
    addr: Option<String>,
    after: Binary<'a>,
    limit: u16,
    timeout_ms: u64,
) -> Result<rustler::Atom, rustler::Error> {
    let target = Target {
        keyring: key(&keyring)?,
        peer: key(&peer)?,
        addr: match addr {
            Some(a) => Some(a.parse().map_err(|_| rustler::Error::BadArg)?),
            None => None,
        },
    };
    let after = after.as_slice().to_vec();
    let timeout = Duration::from_millis(timeout_ms);
    let provider = LinkProvider::new(m.mesh_opener(), target, timeout);
    let reply = Reply::new(env, reference);
    m.mesh_runtime().spawn(async move {
        let result = tokio::time::timeout(timeout, provider.list(&after, limit)).await;
        reply.send(move |env| match result {
            Ok(Ok(entries)) => {
                let list: Vec<(Binary<'_>, Binary<'_>, u64)> = entries
                    .iter()
                    .map(|e| (bin(env, &e.name), bin(env, &e.cid), e.size))
                    .collect();
                (atoms::ok(), list).encode(env)
            }
            Ok(Err(e)) => (atoms::error(), e.to_string()).encode(env),
            Err(_) => (atoms::error(), atoms::timeout()).encode(env),
        })
    });
    Ok(atoms::ok())
}
