//! Feed and ref replication (mesh protocol 5) for the BEAM: the provider
//! reads feeds and refs straight from the store ([`StoreFeeds`], by the
//! layout `Keyring.Feed.Layout` writes), pushes arrive at the instance's
//! replicator as `{:keyring_feeds, {:pushed, keyring, peer, entries,
//! refs}}` ([`BeamFeeds`]), and pulls answer by message
//! (`{:keyring_reply, ref, {:ok, {entries, refs, round_trips}} | {:error,
//! reason}}`).

use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use bytes::Bytes;
use keyring_core::membership::PublicKey;
use keyring_net::protocols::feeds::{FeedSink, FeedSource, PullError};
use keyring_net::Target;
use rustler::{Atom, Binary, Encoder, Env, LocalPid, NewBinary, OwnedEnv, ResourceArc, Term};

use crate::atoms;
use crate::mesh::MeshResource;
use crate::reply::Reply;
use crate::store::StoreResource;

mod local_atoms {
    rustler::atoms! { keyring_feeds, pushed, malformed, too_many_rounds, too_slow, timeout }
}

fn hex(key: &[u8]) -> String {
    key.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &[u8]) -> Option<PublicKey> {
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in s.chunks_exact(2).enumerate() {
        let txt = std::str::from_utf8(pair).ok()?;
        out[i] = u8::from_str_radix(txt, 16).ok()?;
    }
    Some(out)
}

/// Feeds and refs as `Keyring.Feed.Layout` stores them.
pub(crate) struct StoreFeeds(pub(crate) ResourceArc<StoreResource>);

impl StoreFeeds {
    fn entry_name(keyring: &PublicKey, author: &PublicKey, seq: u64) -> Vec<u8> {
        format!("keyring/feed/{}/{}/{seq:016x}", hex(keyring), hex(author)).into_bytes()
    }

    fn has(&self, keyring: &PublicKey, author: &PublicKey, seq: u64) -> Result<bool, String> {
        self.get(keyring, author, seq).map(|e| e.is_some())
    }

    fn get(
        &self,
        keyring: &PublicKey,
        author: &PublicKey,
        seq: u64,
    ) -> Result<Option<Vec<u8>>, String> {
        let name = Self::entry_name(keyring, author, seq);
        crate::store::with_store(&self.0, |s| s.blobs().get_ref(&name)).map_err(|r| r.0.to_string())
    }

    /// The last chained seq (chained entries are stored contiguously from
    /// 1): an exponential then a binary search by point lookups.
    fn head(&self, keyring: &PublicKey, author: &PublicKey) -> Result<u64, String> {
        if !self.has(keyring, author, 1)? {
            return Ok(0);
        }
        let (mut lo, mut hi) = (1u64, 2u64);
        while self.has(keyring, author, hi)? {
            lo = hi;
            hi = hi.saturating_mul(2);
        }
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if self.has(keyring, author, mid)? {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        Ok(lo)
    }
}

impl FeedSource for StoreFeeds {
    fn heads(&self, keyring: &PublicKey) -> Result<Vec<(PublicKey, u64)>, String> {
        let prefix = format!("keyring/feeds/{}/", hex(keyring)).into_bytes();
        let names = crate::store::with_store(&self.0, |s| s.blobs().list_refs(&prefix, 100_000))
            .map_err(|r| r.0.to_string())?;
        let mut out = Vec::new();
        for (name, _) in names {
            if let Some(author) = name.get(prefix.len()..).and_then(unhex) {
                let head = self.head(keyring, &author)?;
                if head > 0 {
                    out.push((author, head));
                }
            }
        }
        Ok(out)
    }

    fn entries_after(
        &self,
        keyring: &PublicKey,
        author: &PublicKey,
        after: u64,
        limit: usize,
    ) -> Result<Vec<Vec<u8>>, String> {
        let mut out = Vec::new();
        let mut seq = after + 1;
        while out.len() < limit {
            match self.get(keyring, author, seq)? {
                Some(e) => out.push(e),
                None => break,
            }
            seq += 1;
        }
        Ok(out)
    }

    fn refs(&self, keyring: &PublicKey) -> Result<Vec<Vec<u8>>, String> {
        let prefix = format!("keyring/refs/{}/", hex(keyring)).into_bytes();
        crate::store::with_store(&self.0, |s| s.blobs().list_refs(&prefix, 4096))
            .map(|pairs| pairs.into_iter().map(|(_, v)| v).collect())
            .map_err(|r| r.0.to_string())
    }
}

/// Sends pushes to the replicator that attached itself (none: dropped, as
/// before the instance's feeds started).
pub(crate) struct BeamFeeds {
    pid: RwLock<Option<LocalPid>>,
    me: Weak<BeamFeeds>,
}

impl BeamFeeds {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new_cyclic(|me| Self {
            pid: RwLock::new(None),
            me: me.clone(),
        })
    }
}

fn bin<'a>(env: Env<'a>, bytes: &[u8]) -> Binary<'a> {
    let mut out = NewBinary::new(env, bytes.len());
    out.as_mut_slice().copy_from_slice(bytes);
    out.into()
}

impl FeedSink for BeamFeeds {
    fn pushed(&self, keyring: PublicKey, peer: PublicKey, entries: Vec<Bytes>, refs: Vec<Bytes>) {
        if rustler::thread::is_scheduler_thread() {
            if let (Some(me), Ok(rt)) = (self.me.upgrade(), tokio::runtime::Handle::try_current()) {
                rt.spawn(async move { me.pushed(keyring, peer, entries, refs) });
            }
            return;
        }
        let Some(pid) = *self.pid.read().unwrap_or_else(|e| e.into_inner()) else {
            return;
        };
        let mut env = OwnedEnv::new();
        let _ = env.send_and_clear(&pid, |env| {
            let entries: Vec<Binary<'_>> = entries.iter().map(|e| bin(env, e)).collect();
            let refs: Vec<Binary<'_>> = refs.iter().map(|r| bin(env, r)).collect();
            (
                local_atoms::keyring_feeds(),
                (
                    local_atoms::pushed(),
                    bin(env, &keyring),
                    bin(env, &peer),
                    entries,
                    refs,
                ),
            )
                .encode(env)
        });
    }
}

fn key(b: &Binary<'_>) -> Result<PublicKey, rustler::Error> {
    b.as_slice().try_into().map_err(|_| rustler::Error::BadArg)
}

/// Pushes arrive at `pid` from now on.
#[rustler::nif]
fn mesh_feeds_attach(m: ResourceArc<MeshResource>, pid: LocalPid) -> Atom {
    *m.feeds_sink.pid.write().unwrap_or_else(|e| e.into_inner()) = Some(pid);
    atoms::ok()
}

/// Pushes encoded entries and refs to every linked member of `keyring`;
/// how many links they went out on.
#[rustler::nif]
fn mesh_feeds_push(
    m: ResourceArc<MeshResource>,
    keyring: Binary<'_>,
    entries: Vec<Binary<'_>>,
    refs: Vec<Binary<'_>>,
) -> Result<usize, rustler::Error> {
    let entries: Vec<Vec<u8>> = entries.iter().map(|e| e.as_slice().to_vec()).collect();
    let refs: Vec<Vec<u8>> = refs.iter().map(|r| r.as_slice().to_vec()).collect();
    Ok(m.feeds
        .push(&m.mesh.opener(), key(&keyring)?, &entries, &refs))
}

fn pull_error<'a>(env: Env<'a>, e: &PullError) -> Term<'a> {
    use local_atoms as a;
    match e {
        PullError::Malformed(why) => (a::malformed(), why.as_str()).encode(env),
        PullError::TooManyRounds(n) => (a::too_many_rounds(), *n).encode(env),
        PullError::TooSlow => a::too_slow().encode(env),
        PullError::Timeout => a::timeout().encode(env),
        PullError::Link(l) => crate::mesh::call_reason(env, l),
        other => (atoms::error(), other.to_string()).encode(env),
    }
}

/// Pulls from `peer` what follows `heads` (`[{author, seq}]`) for `authors`
/// (nil: all). `:ok` now, the answer by message.
#[rustler::nif]
#[allow(clippy::too_many_arguments)]
fn mesh_feeds_pull<'a>(
    env: Env<'a>,
    m: ResourceArc<MeshResource>,
    reference: Term<'a>,
    keyring: Binary<'a>,
    peer: Binary<'a>,
    address: Option<String>,
    authors: Option<Vec<Binary<'a>>>,
    heads: Vec<(Binary<'a>, u64)>,
    timeout_ms: u64,
) -> Result<Atom, rustler::Error> {
    let to = Target {
        keyring: key(&keyring)?,
        peer: key(&peer)?,
        addr: match address {
            Some(a) => Some(a.parse().map_err(|_| rustler::Error::BadArg)?),
            None => None,
        },
    };
    let authors = match authors {
        Some(list) => Some(list.iter().map(key).collect::<Result<Vec<_>, _>>()?),
        None => None,
    };
    let heads = heads
        .iter()
        .map(|(a, s)| Ok((key(a)?, *s)))
        .collect::<Result<Vec<_>, rustler::Error>>()?;
    let reply = Reply::new(env, reference);
    let (feeds, opener) = (m.feeds.clone(), m.mesh.opener());
    let deadline = tokio::time::Instant::now() + Duration::from_millis(timeout_ms);
    m.mesh.runtime().spawn(async move {
        let result =
            tokio::time::timeout_at(deadline, feeds.pull(&opener, to, authors, heads, deadline))
                .await
                .unwrap_or(Err(PullError::Timeout));
        reply.send(move |env| match result {
            Ok(p) => {
                let entries: Vec<Binary<'_>> = p.entries.iter().map(|e| bin(env, e)).collect();
                let refs: Vec<Binary<'_>> = p.refs.iter().map(|r| bin(env, r)).collect();
                (atoms::ok(), (entries, refs, p.round_trips)).encode(env)
            }
            Err(e) => (atoms::error(), pull_error(env, &e)).encode(env),
        })
    });
    Ok(atoms::ok())
}
