//! DAG sync (mesh protocol 4) for the BEAM: the store a mesh serves and
//! fetches into ([`StoreDag`], a `keyring_net` [`DagStore`] over
//! `keyring_store`), and `mesh_dag_fetch`, answered by message
//! (`{:keyring_reply, ref, {:ok, report} | {:error, reason}}`) from the
//! mesh's runtime: the caller's scheduler only encodes the request.

use std::sync::{mpsc, Arc};
use std::time::Duration;

use keyring_core::dag::{BlobRead, Cid, Link, LinkKind, Request, TraversalSpec, MAX_NODE_BYTES};
use keyring_core::membership::PublicKey;
use keyring_net::protocols::dag::{DagStore, FetchError, FetchReport};
use keyring_net::Target;
use keyring_store::{ChannelReply, StoreError, WriteOutcome, WriteReply};
use rustler::{Atom, Binary, Encoder, Env, NewBinary, ResourceArc, Term};

use crate::atoms;
use crate::mesh::MeshResource;
use crate::reply::Reply;
use crate::store::StoreResource;

mod local_atoms {
    rustler::atoms! {
        round_trips, requests, visits, received, received_bytes, wire_bytes,
        missing, deferred, verify, codec, too_slow, stopped, store, busy,
        bad_request, not_found, timeout, link
    }
}

/// The instance's store as DAG sync sees it.
pub(crate) struct StoreDag(
    pub(crate) ResourceArc<StoreResource>,
    pub(crate) Arc<crate::sync::Grants>,
);

fn text(e: StoreError) -> String {
    e.to_string()
}

impl StoreDag {
    fn with<T>(
        &self,
        f: impl FnOnce(&keyring_store::Store) -> Result<T, StoreError>,
    ) -> Result<T, String> {
        crate::store::with_store(&self.0, f).map_err(|r| text(r.0))
    }
}

impl DagStore for StoreDag {
    fn deferred(&self, keyring: &PublicKey, cid: &Cid) {
        self.1.grant(keyring, cid);
    }

    fn shared_in(&self, keyring: &PublicKey, cid: &Cid) -> Result<bool, String> {
        self.with(|s| Ok(s.blobs().shared_in(cid, keyring)? && s.blobs().has(cid)?))
    }

    fn node(&self, cid: &Cid) -> Result<Option<Vec<u8>>, String> {
        self.with(|s| match s.blobs().size(cid)? {
            Some(size) if size as usize <= MAX_NODE_BYTES => s.blobs().get(cid, false),
            _ => Ok(None),
        })
    }

    fn blob(&self, cid: &Cid, limit: usize) -> Result<BlobRead, String> {
        self.with(|s| match s.blobs().size(cid)? {
            None => Ok(BlobRead::Absent),
            Some(size) if size > limit as u64 => Ok(BlobRead::TooLarge(size)),
            Some(_) => Ok(match s.blobs().get(cid, false)? {
                Some(bytes) => BlobRead::Bytes(bytes),
                None => BlobRead::Absent,
            }),
        })
    }

    fn has(&self, cid: &Cid) -> Result<bool, String> {
        self.with(|s| s.blobs().has(cid))
    }

    /// Submits every item at once so they share group commits, then waits
    /// until all are durable.
    fn put(&self, items: Vec<(Cid, Vec<u8>)>) -> Result<(), String> {
        let (tx, rx) = mpsc::sync_channel(items.len().max(1));
        let n = items.len();
        self.with(|s| {
            for (_, bytes) in items {
                let reply: Box<dyn WriteReply> = Box::new(ChannelReply(tx.clone()));
                s.put(Box::new(bytes), Vec::new(), reply)
                    .map_err(|(e, _)| e)?;
            }
            Ok(())
        })?;
        for _ in 0..n {
            match rx.recv() {
                Ok(Ok(WriteOutcome::Stored(_))) => {}
                Ok(Ok(other)) => return Err(format!("unexpected store answer {other:?}")),
                Ok(Err(e)) => return Err(text(e)),
                Err(_) => return Err("store closed".into()),
            }
        }
        Ok(())
    }
}

fn bin<'a>(env: Env<'a>, bytes: &[u8]) -> Binary<'a> {
    let mut out = NewBinary::new(env, bytes.len());
    out.as_mut_slice().copy_from_slice(bytes);
    out.into()
}

fn cid(b: &Binary<'_>) -> Result<Cid, rustler::Error> {
    b.as_slice().try_into().map_err(|_| rustler::Error::BadArg)
}

fn report_term<'a>(env: Env<'a>, r: &FetchReport) -> Term<'a> {
    use local_atoms as a;
    let missing: Vec<Binary<'_>> = r.missing.iter().map(|c| bin(env, c)).collect();
    let deferred: Vec<(Binary<'_>, u64)> =
        r.deferred.iter().map(|(c, s)| (bin(env, c), *s)).collect();
    Term::map_from_pairs(
        env,
        &[
            (a::round_trips().encode(env), r.round_trips.encode(env)),
            (a::requests().encode(env), r.requests.encode(env)),
            (a::visits().encode(env), r.visits.encode(env)),
            (a::received().encode(env), r.received.encode(env)),
            (
                a::received_bytes().encode(env),
                r.received_bytes.encode(env),
            ),
            (a::wire_bytes().encode(env), r.wire_bytes.encode(env)),
            (a::missing().encode(env), missing.encode(env)),
            (a::deferred().encode(env), deferred.encode(env)),
        ],
    )
    .unwrap_or_else(|_| atoms::error().encode(env))
}

fn error_term<'a>(env: Env<'a>, e: &FetchError) -> Term<'a> {
    use local_atoms as a;
    match e {
        FetchError::NotFound => a::not_found().encode(env),
        FetchError::Busy => a::busy().encode(env),
        FetchError::BadRequest => a::bad_request().encode(env),
        FetchError::Verify(v) => (a::verify(), v.to_string()).encode(env),
        FetchError::Codec(c) => (a::codec(), c.to_string()).encode(env),
        FetchError::TooSlow => a::too_slow().encode(env),
        FetchError::Stopped => a::stopped().encode(env),
        FetchError::Store(s) => (a::store(), s.as_str()).encode(env),
        FetchError::Timeout => a::timeout().encode(env),
        FetchError::Link(l) => crate::mesh::call_reason(env, l),
        other => (atoms::error(), other.to_string()).encode(env),
    }
}

/// Fetches the DAGs below `roots` from `peer` (a member of `keyring`) into
/// the store. `have`: roots of DAGs held completely (the provider skips what
/// it reaches from them). `:ok` now, the report or the error by message.
#[rustler::nif]
#[allow(clippy::too_many_arguments)]
fn mesh_dag_fetch<'a>(
    env: Env<'a>,
    m: ResourceArc<MeshResource>,
    reference: Term<'a>,
    keyring: Binary<'a>,
    peer: Binary<'a>,
    address: Option<String>,
    roots: Vec<Binary<'a>>,
    have: Vec<Binary<'a>>,
    blobs: bool,
    max_depth: Option<u32>,
    timeout_ms: u64,
) -> Result<Atom, rustler::Error> {
    let keyring: PublicKey = keyring
        .as_slice()
        .try_into()
        .map_err(|_| rustler::Error::BadArg)?;
    let peer: PublicKey = peer
        .as_slice()
        .try_into()
        .map_err(|_| rustler::Error::BadArg)?;
    let addr = match address {
        Some(a) => Some(a.parse().map_err(|_| rustler::Error::BadArg)?),
        None => None,
    };
    let request = Request {
        roots: roots
            .iter()
            .map(|r| {
                Ok(Link {
                    kind: LinkKind::Node,
                    cid: cid(r)?,
                })
            })
            .collect::<Result<_, rustler::Error>>()?,
        spec: TraversalSpec { blobs, max_depth },
        inline_limit: MAX_NODE_BYTES,
        have: have.iter().map(cid).collect::<Result<_, _>>()?,
        filter: None,
    };
    if request.encode().is_err() {
        return Err(rustler::Error::BadArg);
    }
    let reply = Reply::new(env, reference);
    let (dag, opener) = (m.dag.clone(), m.mesh.opener());
    let to = Target {
        keyring,
        peer,
        addr,
    };
    let deadline = tokio::time::Instant::now() + Duration::from_millis(timeout_ms);
    m.mesh.runtime().spawn(async move {
        let result = tokio::time::timeout_at(deadline, dag.fetch(&opener, to, request, deadline))
            .await
            .unwrap_or(Err(FetchError::Timeout));
        reply.send(move |env| match result {
            Ok(report) => (atoms::ok(), report_term(env, &report)).encode(env),
            Err(e) => (atoms::error(), error_term(env, &e)).encode(env),
        })
    });
    Ok(atoms::ok())
}
