//! Keeping links: adopting admitted connections (register, serve, watch),
//! getting a pair's link (dialling with backoff if needed), redialling lost
//! links, and the [`Opener`] that protocols use to reach members.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use keyring_core::membership::PublicKey;
use quinn::Connection;
use tokio::time::Instant;

use crate::close::{code, describe, redial_after, CLOSE_SUPERSEDED};
use crate::dial::dial;
use crate::error::CallError;
use crate::event::Event;
use crate::links::backoff::{self, Redial};
use crate::links::SUPERSEDED_GRACE;
use crate::node::Node;
use crate::peers::PeerClaim;
use crate::protocol::{PeerLink, Target};
use crate::serve::serve;

/// Time given to one background redial attempt (dialling retries within it).
const REDIAL_ATTEMPT: Duration = Duration::from_secs(3);

/// Makes an admitted connection (`dialled` by us or by the peer) a link:
/// records it, settles duplicates, serves its streams, and watches for its
/// end. Must run on the mesh's runtime.
pub(crate) fn adopt(
    node: &Arc<Node>,
    keyring: PublicKey,
    peer: PublicKey,
    conn: Connection,
    dialled: bool,
    claim: PeerClaim,
) -> PeerLink {
    let link = node.link(keyring, peer, conn, &claim);
    let registered = node
        .links
        .register(&node.identity.public_key, link.clone(), dialled);
    if let Some(loser) = registered.superseded {
        tokio::spawn(async move {
            tokio::time::sleep(SUPERSEDED_GRACE).await;
            loser.close(code(CLOSE_SUPERSEDED), b"superseded");
        });
    }
    if registered.up {
        node.sink.deliver(Event::PeerUp {
            keyring,
            peer,
            addr: link.remote_address(),
        });
    }
    tokio::spawn(serve(node.protocols.clone(), link.clone(), claim));
    tokio::spawn(watch(node.clone(), link.clone(), registered.current));
    link
}

/// Waits for the link to end; if it was the pair's link, reports the loss
/// and redials when the way it ended calls for that.
async fn watch(node: Arc<Node>, link: PeerLink, current: Arc<AtomicBool>) {
    let reason = link.connection().closed().await;
    let key = (link.keyring(), link.peer());
    node.links.forget(&key, link.connection());
    if !current.load(Ordering::Acquire) {
        return;
    }
    node.sink.deliver(Event::PeerDown {
        keyring: key.0,
        peer: key.1,
        reason: describe(&reason),
    });
    if redial_after(&reason) {
        tokio::spawn(redial(Arc::downgrade(&node), key.0, key.1));
    }
}

/// The link to `peer` in `keyring`, dialling (with backoff, until
/// `deadline`) if there is none.
pub(crate) async fn connection(
    node: &Arc<Node>,
    keyring: PublicKey,
    peer: PublicKey,
    addr: Option<SocketAddr>,
    deadline: Instant,
) -> Result<PeerLink, CallError> {
    if !node.members.is_member(&keyring, &peer) {
        return Err(CallError::NotMember);
    }
    let key = (keyring, peer);
    if let Some(link) = node.links.live(&key) {
        return Ok(link);
    }
    let gate = node.links.dial_gate(key);
    let _dialling = gate.lock().await;
    if let Some(link) = node.links.live(&key) {
        return Ok(link);
    }
    let addr = match addr {
        Some(a) => a,
        None => node.links.address(&peer).ok_or(CallError::NoAddress)?,
    };
    let mut delay = backoff::DIAL_FIRST;
    loop {
        match dial(node, keyring, peer, addr).await {
            Ok((conn, claim)) => return Ok(adopt(node, keyring, peer, conn, true, claim)),
            Err(e) if !e.retryable() => return Err(e),
            Err(e) => {
                if Instant::now() + delay >= deadline {
                    return Err(e);
                }
                tokio::time::sleep(delay).await;
                delay = backoff::next(delay, backoff::DIAL_MAX);
            }
        }
    }
}

/// Redials `peer` with backoff until a link is up, the peer stops being a
/// member, or the mesh is gone.
pub(crate) async fn redial(node: Weak<Node>, keyring: PublicKey, peer: PublicKey) {
    let mut delay = backoff::REDIAL_FIRST;
    loop {
        tokio::time::sleep(backoff::jitter(delay, backoff::random())).await;
        let Some(node) = node.upgrade() else { return };
        let live = node.links.live(&(keyring, peer)).is_some();
        if backoff::before_attempt(node.members.is_member(&keyring, &peer), live) == Redial::Stop {
            return;
        }
        // A handshake towards a port nobody listens on only ends at the idle
        // timeout: bound each attempt.
        let deadline = Instant::now() + REDIAL_ATTEMPT;
        let attempt = connection(&node, keyring, peer, None, deadline);
        let outcome = tokio::time::timeout_at(deadline, attempt)
            .await
            .ok()
            .map(|r| r.map(|_| ()));
        if backoff::after_attempt(outcome.as_ref()) == Redial::Stop {
            return;
        }
        delay = backoff::next(delay, backoff::REDIAL_MAX);
    }
}

/// What protocols use to reach members: a pair's link (dialling it if
/// needed), the links of a keyring, and the mesh's runtime.
#[derive(Clone)]
pub struct Opener {
    node: Arc<Node>,
    runtime: tokio::runtime::Handle,
}

impl std::fmt::Debug for Opener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Opener")
    }
}

impl Opener {
    pub(crate) fn new(node: Arc<Node>, runtime: tokio::runtime::Handle) -> Self {
        Self { node, runtime }
    }

    /// The link to `to` (a current member), dialling it if there is none,
    /// until `deadline`.
    pub async fn link(&self, to: Target, deadline: Instant) -> Result<PeerLink, CallError> {
        connection(&self.node, to.keyring, to.peer, to.addr, deadline).await
    }

    /// Dials `peer` even if the pair has a live link (tests of link
    /// settlement use this to make two connections cross).
    #[doc(hidden)]
    pub async fn dial_fresh(
        &self,
        keyring: PublicKey,
        peer: PublicKey,
        addr: SocketAddr,
    ) -> Result<PeerLink, CallError> {
        let (conn, claim) = dial(&self.node, keyring, peer, addr).await?;
        Ok(adopt(&self.node, keyring, peer, conn, true, claim))
    }

    /// The live links of `keyring`.
    pub fn links(&self, keyring: &PublicKey) -> Vec<PeerLink> {
        self.node.links.in_keyring(keyring)
    }

    /// Largest frame payload this node accepts (and sends).
    pub fn max_payload(&self) -> usize {
        self.node.max_payload
    }

    /// The mesh's runtime: protocol work started from outside it (e.g. by
    /// a NIF) is spawned here.
    pub fn runtime(&self) -> &tokio::runtime::Handle {
        &self.runtime
    }
}
