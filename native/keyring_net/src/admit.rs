//! The member endpoint's accepting side and its handshake fence.
//!
//! Before any crypto, each new connection passes [`crate::fence`]:
//! - a source (/32, /64) whose handshakes keep failing (not a member, no
//!   Hello, a refused Hello) is refused once it has used up
//!   [`crate::Limits::failure_burst`] failures (refilled at
//!   `failures_per_second`); honest members never fail, so they never pay;
//! - at most [`crate::Limits::max_handshakes`] handshakes run at once, at
//!   most `max_handshakes_per_source` from one source; above
//!   `retry_above` in progress, unvalidated addresses get a QUIC Retry;
//! - a global token bucket (`handshake_burst`, `handshakes_per_second`)
//!   bounds the CPU all handshakes together may take.
//!
//! After the TLS handshake (which already refuses keys that are members of
//! no keyring here), the key may hold at most
//! [`crate::Limits::max_connections_per_key`] connections, and must send a
//! Hello naming a keyring it is a member of within
//! [`crate::Limits::hello_deadline`]. An unknown keyring and a keyring the
//! key is not a member of get the same refusal (`NotMember`).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use keyring_core::wire::frame::{self, Frame, Refusal};
use quinn::{Connection, Incoming, SendStream};

use crate::close::{code, CLOSE_LIMIT, CLOSE_REFUSED};
use crate::connect::adopt;
use crate::dial::HELLO_LIMIT;
use crate::fence::{member_verdict, Gate, Ticket, Verdict};
use crate::node::Node;
use crate::rate::{KeyedBuckets, Source, TokenBucket};
use crate::stream::FramedRecv;
use crate::tls::peer_key;

/// The member endpoint's fence state.
struct HandshakeFence {
    gate: Arc<Gate>,
    rate: std::sync::Mutex<TokenBucket>,
    failures: std::sync::Mutex<KeyedBuckets<Source>>,
    retry_above: usize,
}

impl HandshakeFence {
    fn new(node: &Node) -> Arc<Self> {
        let l = &node.limits;
        Arc::new(Self {
            gate: Gate::new(l.max_handshakes, l.max_handshakes_per_source),
            rate: std::sync::Mutex::new(TokenBucket::new(
                l.handshake_burst,
                l.handshakes_per_second,
                std::time::Instant::now(),
            )),
            failures: std::sync::Mutex::new(KeyedBuckets::new(
                l.failure_burst,
                l.failures_per_second,
                l.tracked_sources,
            )),
            retry_above: l.retry_above,
        })
    }

    fn failing(&self, source: &Source) -> bool {
        let failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        !failures.allows(source, std::time::Instant::now())
    }

    /// Counts a failed handshake against its source.
    fn fail(&self, source: Source) {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        failures.take(&source, std::time::Instant::now());
    }

    fn admit(&self, incoming: &Incoming) -> Result<Ticket, Verdict> {
        let source = Source::of(incoming.remote_address());
        match member_verdict(
            self.failing(&source),
            self.gate.has_room(&source),
            self.gate.in_flight(),
            self.retry_above,
            incoming.remote_address_validated(),
            incoming.may_retry(),
        ) {
            Verdict::Proceed => {}
            other => return Err(other),
        }
        let now = std::time::Instant::now();
        if !self
            .rate
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take(now)
        {
            return Err(Verdict::Refuse);
        }
        self.gate.enter(source).ok_or(Verdict::Refuse)
    }
}

pub(crate) async fn accept_members(node: Arc<Node>) {
    let fence = HandshakeFence::new(&node);
    while let Some(incoming) = node.endpoint.accept().await {
        match fence.admit(&incoming) {
            Ok(ticket) => {
                tokio::spawn(handshake(node.clone(), fence.clone(), incoming, ticket));
            }
            Err(Verdict::Retry) => {
                let _ = incoming.retry();
            }
            Err(_) => incoming.refuse(),
        }
    }
}

/// Why an admission failed (it counts against the source).
struct Failed;

async fn handshake(
    node: Arc<Node>,
    fence: Arc<HandshakeFence>,
    incoming: Incoming,
    ticket: Ticket,
) {
    let source = Source::of(incoming.remote_address());
    let limits = &node.limits;
    // A failed handshake (non-member, wrong key) ends here: the connection
    // never reaches the application.
    let conn = match tokio::time::timeout(limits.handshake_deadline, incoming).await {
        Ok(Ok(conn)) => conn,
        _ => return fence.fail(source),
    };
    let hello = tokio::time::timeout(limits.hello_deadline, hello(&node, &conn)).await;
    drop(ticket);
    match hello {
        Ok(Ok(())) => {}
        Ok(Err(Failed)) => fence.fail(source),
        Err(_) => {
            conn.close(code(CLOSE_LIMIT), b"no hello in time");
            fence.fail(source);
        }
    }
}

/// Reads the Hello, refuses or admits, and answers.
async fn hello(node: &Arc<Node>, conn: &Connection) -> Result<(), Failed> {
    let Some(peer) = peer_key(conn) else {
        conn.close(code(CLOSE_REFUSED), b"no key");
        return Err(Failed);
    };
    let Some(claim) = node
        .peers
        .claim(peer, Some(node.limits.max_connections_per_key))
    else {
        conn.close(code(CLOSE_LIMIT), b"too many connections");
        return Err(Failed);
    };
    let (send, recv) = conn.accept_bi().await.map_err(|_| Failed)?;
    let mut recv = FramedRecv::new(recv, Bytes::new(), claim.budget().clone(), node.rules);
    let Ok(hello) = recv.read_frame(HELLO_LIMIT).await else {
        refuse(conn, send, Refusal::ProtocolViolation).await;
        return Err(Failed);
    };
    let keyring = match frame::decode(&hello.bytes, HELLO_LIMIT) {
        Ok(Frame::Hello { keyring_id }) => keyring_id,
        _ => {
            refuse(conn, send, Refusal::ProtocolViolation).await;
            return Err(Failed);
        }
    };
    // One answer for "no such keyring here" and "not a member of it": a
    // member of one keyring learns nothing about the others.
    if !node.members.is_member(&keyring, &peer) {
        refuse(conn, send, Refusal::NotMember).await;
        return Err(Failed);
    }
    // Adopt first: once the client reads Welcome it may open streams.
    adopt(node, keyring, peer, conn.clone(), false, claim);
    let mut send = send;
    let welcome = Frame::Welcome.encode().map_err(|_| Failed)?;
    if send.write_all(&welcome).await.is_ok() {
        let _ = send.finish();
    }
    Ok(())
}

async fn refuse(conn: &Connection, mut send: SendStream, reason: Refusal) {
    if let Ok(bytes) = Frame::Refused(reason).encode() {
        let _ = send.write_all(&bytes).await;
        let _ = send.finish();
        let _ = tokio::time::timeout(Duration::from_millis(500), send.stopped()).await;
    }
    conn.close(code(CLOSE_REFUSED), b"refused");
}
