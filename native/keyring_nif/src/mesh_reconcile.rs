//! Set reconciliation (mesh protocol 6) for the BEAM: the set of a keyring
//! is the cids shared in it in the instance's store ([`StoreSets`]), and
//! `mesh_reconcile` answers by message (`{:keyring_reply, ref, {:ok,
//! difference} | {:error, reason}}`) from the mesh's runtime.

use std::time::Duration;

use keyring_core::membership::PublicKey;
use keyring_core::reconcile::Id;
use keyring_net::protocols::reconcile::{Difference, ReconcileFailure, SharedSet};
use keyring_net::Target;
use keyring_store::TagScope;
use rustler::{Atom, Binary, Encoder, Env, NewBinary, ResourceArc, Term};

use crate::atoms;
use crate::mesh::MeshResource;
use crate::reply::Reply;
use crate::store::StoreResource;

mod local_atoms {
    rustler::atoms! {
        have, need, round_trips, sent, received, items, busy, protocol,
        too_many_rounds, too_slow, store, timeout
    }
}

/// Tags read per page while listing a keyring's shares.
const PAGE: usize = 16_384;

/// The cids shared in each keyring of the instance's store.
pub(crate) struct StoreSets(pub(crate) ResourceArc<StoreResource>);

impl SharedSet for StoreSets {
    fn shared(&self, keyring: &PublicKey) -> Result<Vec<Id>, String> {
        crate::store::with_store(&self.0, |s| {
            let mut out = Vec::new();
            let mut after: Option<Vec<u8>> = None;
            loop {
                let page = s
                    .blobs()
                    .tags(TagScope::Ring(*keyring), after.as_deref(), PAGE)?;
                let full = page.len() == PAGE;
                after = page.last().map(|(name, _)| name.clone());
                out.extend(page.into_iter().map(|(_, cid)| cid));
                if !full {
                    break;
                }
            }
            // Several names may share one cid: Items dedups.
            Ok(out)
        })
        .map_err(|r| r.0.to_string())
    }
}

fn bin<'a>(env: Env<'a>, bytes: &[u8]) -> Binary<'a> {
    let mut out = NewBinary::new(env, bytes.len());
    out.as_mut_slice().copy_from_slice(bytes);
    out.into()
}

fn difference_term<'a>(env: Env<'a>, d: &Difference) -> Term<'a> {
    use local_atoms as a;
    let have: Vec<Binary<'_>> = d.have.iter().map(|c| bin(env, c)).collect();
    let need: Vec<Binary<'_>> = d.need.iter().map(|c| bin(env, c)).collect();
    Term::map_from_pairs(
        env,
        &[
            (a::have().encode(env), have.encode(env)),
            (a::need().encode(env), need.encode(env)),
            (a::round_trips().encode(env), d.round_trips.encode(env)),
            (a::sent().encode(env), d.sent.encode(env)),
            (a::received().encode(env), d.received.encode(env)),
            (a::items().encode(env), d.items.encode(env)),
        ],
    )
    .unwrap_or_else(|_| atoms::error().encode(env))
}

fn failure_term<'a>(env: Env<'a>, e: &ReconcileFailure) -> Term<'a> {
    use local_atoms as a;
    match e {
        ReconcileFailure::Busy => a::busy().encode(env),
        ReconcileFailure::Protocol(p) => (a::protocol(), p.to_string()).encode(env),
        ReconcileFailure::TooManyRounds(n) => (a::too_many_rounds(), *n).encode(env),
        ReconcileFailure::TooSlow => a::too_slow().encode(env),
        ReconcileFailure::Store(s) => (a::store(), s.as_str()).encode(env),
        ReconcileFailure::Timeout => a::timeout().encode(env),
        ReconcileFailure::Link(l) => crate::mesh::call_reason(env, l),
        other => (atoms::error(), other.to_string()).encode(env),
    }
}

/// Reconciles the cids shared in `keyring` with `peer`. `:ok` now, the
/// difference or the error by message.
#[rustler::nif]
fn mesh_reconcile<'a>(
    env: Env<'a>,
    m: ResourceArc<MeshResource>,
    reference: Term<'a>,
    keyring: Binary<'a>,
    peer: Binary<'a>,
    address: Option<String>,
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
    let reply = Reply::new(env, reference);
    let (rec, opener) = (m.reconcile.clone(), m.mesh.opener());
    let to = Target {
        keyring,
        peer,
        addr,
    };
    let deadline = tokio::time::Instant::now() + Duration::from_millis(timeout_ms);
    m.mesh.runtime().spawn(async move {
        let result = tokio::time::timeout_at(deadline, rec.reconcile(&opener, to, deadline))
            .await
            .unwrap_or(Err(ReconcileFailure::Timeout));
        reply.send(move |env| match result {
            Ok(d) => (atoms::ok(), difference_term(env, &d)).encode(env),
            Err(e) => (atoms::error(), failure_term(env, &e)).encode(env),
        })
    });
    Ok(atoms::ok())
}
