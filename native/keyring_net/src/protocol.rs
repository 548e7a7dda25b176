//! The protocol seam: how protocols (RPC, membership, next blob transfer)
//! plug into an admitted member connection.
//!
//! **Contract.** A protocol is a Rust type implementing [`Protocol`] with a
//! one-byte [`ProtocolId`]. Every stream on an admitted connection begins
//! with the id of its protocol; the node reads that byte (with the first
//! bytes of the stream, in one read) and hands the stream to the protocol
//! registered under it, together with a [`PeerLink`]: the peer's verified key,
//! the keyring the connection was admitted for, the connection's memory
//! budget, and a way to open streams back. A stream naming no registered
//! protocol is stopped and reset (`STREAM_UNKNOWN_PROTOCOL`) at the cost of
//! reading one byte. The client side: [`PeerLink::open_bi`] /
//! [`PeerLink::open_uni`] on a link got from [`crate::Opener::link`], which
//! dials the peer if needed within a deadline.
//!
//! **Why a stream byte and not ALPN.** One connection per pair carries every
//! protocol: a new protocol adds no handshake, no second link to keep up, no
//! second membership check. The byte costs one byte per stream and one table
//! lookup: measured on plain quinn (`bench/native` `quic_baseline`, five
//! interleaved runs, shared 2-core machine), round trips with the byte ran at
//! 93–120 % of those without (median 98 %, CPU per round trip +3 %: within
//! the noise). An ALPN per protocol would cost a full handshake per protocol
//! and pair: about 3 ms of the same machine's time each (300 handshakes/s
//! under load), and a second link to keep up and revalidate.
//!
//! Handlers get the stream after the node's fences: frames are read through
//! [`FramedRecv`] (byte-rate deadline, memory budget), and the streams a peer
//! may open at once are bounded by QUIC's stream limits.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use keyring_core::membership::PublicKey;
use quinn::{Connection, SendStream, WriteError};

use crate::budget::Budget;
use crate::error::CallError;
use crate::members::Members;
use crate::stream::{FramedRecv, StreamRules};

/// The first byte of every stream on a member connection.
pub type ProtocolId = u8;

/// RPC: calls (bidirectional streams) and casts (unidirectional).
pub const PROTOCOL_RPC: ProtocolId = 1;
/// Membership: log pushes (unidirectional).
pub const PROTOCOL_MEMBERSHIP: ProtocolId = 2;

/// A boxed future a protocol handler returns.
pub type BoxFuture = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// A protocol served on admitted member connections.
///
/// The node spawns one task per stream and awaits the handler's future in
/// it; a handler may run as long as its stream does. Handlers must not
/// block the thread (they run on the mesh's tokio runtime).
pub trait Protocol: Send + Sync + 'static {
    /// The id streams of this protocol begin with.
    fn id(&self) -> ProtocolId;

    /// A bidirectional stream the peer opened (its protocol byte consumed).
    /// By default such streams are refused like an unknown protocol.
    fn accept_bi(self: Arc<Self>, link: PeerLink, send: SendStream, recv: FramedRecv) -> BoxFuture {
        let _ = link;
        Box::pin(async move { refuse_bi(send, recv) })
    }

    /// A unidirectional stream the peer opened (its protocol byte consumed).
    /// By default such streams are refused like an unknown protocol.
    fn accept_uni(self: Arc<Self>, link: PeerLink, recv: FramedRecv) -> BoxFuture {
        let _ = link;
        Box::pin(async move { refuse_uni(recv) })
    }
}

pub(crate) fn refuse_bi(mut send: SendStream, mut recv: FramedRecv) {
    recv.stop(crate::close::STREAM_UNKNOWN_PROTOCOL);
    let _ = send.reset(crate::close::stream_code(
        crate::close::STREAM_UNKNOWN_PROTOCOL,
    ));
}

pub(crate) fn refuse_uni(mut recv: FramedRecv) {
    recv.stop(crate::close::STREAM_UNKNOWN_PROTOCOL);
}

/// The protocols a node serves, by id.
#[derive(Default, Clone)]
pub struct Protocols {
    by_id: Vec<Option<Arc<dyn Protocol>>>,
}

impl std::fmt::Debug for Protocols {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids: Vec<usize> = (0..self.by_id.len())
            .filter(|i| self.by_id[*i].is_some())
            .collect();
        f.debug_struct("Protocols").field("ids", &ids).finish()
    }
}

/// Two protocols claimed the same id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("protocol id {0} is taken")]
pub struct IdTaken(pub ProtocolId);

impl Protocols {
    /// No protocols.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `protocol` under its id.
    pub fn add(&mut self, protocol: Arc<dyn Protocol>) -> Result<&mut Self, IdTaken> {
        let id = protocol.id();
        if self.by_id.len() <= usize::from(id) {
            self.by_id.resize(usize::from(id) + 1, None);
        }
        let slot = &mut self.by_id[usize::from(id)];
        if slot.is_some() {
            return Err(IdTaken(id));
        }
        *slot = Some(protocol);
        Ok(self)
    }

    /// The protocol registered under `id`.
    pub(crate) fn get(&self, id: ProtocolId) -> Option<&Arc<dyn Protocol>> {
        self.by_id.get(usize::from(id))?.as_ref()
    }
}

/// Whom a protocol's client side wants to reach: a member of a keyring,
/// at an address (or where it was last reached).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    /// The keyring to speak for.
    pub keyring: PublicKey,
    /// The member's key.
    pub peer: PublicKey,
    /// Where to dial it if there is no link (none: where it was last
    /// reached or said to listen).
    pub addr: Option<SocketAddr>,
}

/// An admitted link as a protocol sees it: who is at the other end, for
/// which keyring, and a way to open streams on the same connection.
#[derive(Debug, Clone)]
pub struct PeerLink {
    keyring: PublicKey,
    peer: PublicKey,
    conn: Connection,
    budget: Budget,
    rules: StreamRules,
    members: Arc<Members>,
}

impl PeerLink {
    pub(crate) fn new(
        keyring: PublicKey,
        peer: PublicKey,
        conn: Connection,
        budget: Budget,
        rules: StreamRules,
        members: Arc<Members>,
    ) -> Self {
        Self {
            keyring,
            peer,
            conn,
            budget,
            rules,
            members,
        }
    }

    /// The keyring the connection was admitted for.
    pub fn keyring(&self) -> PublicKey {
        self.keyring
    }

    /// The peer's key, as proven in the TLS handshake.
    pub fn peer(&self) -> PublicKey {
        self.peer
    }

    /// Where the peer is.
    pub fn remote_address(&self) -> SocketAddr {
        self.conn.remote_address()
    }

    /// Whether the peer is still a current member (membership may have
    /// changed since the connection was admitted; revocation closes it soon
    /// after, and a handler can check before acting).
    pub fn is_member(&self) -> bool {
        self.members.is_member(&self.keyring, &self.peer)
    }

    /// Whether the connection has ended.
    pub fn is_closed(&self) -> bool {
        self.conn.close_reason().is_some()
    }

    pub(crate) fn connection(&self) -> &Connection {
        &self.conn
    }

    /// Time a stream the peer opens gets for its first bytes.
    pub(crate) fn grace(&self) -> std::time::Duration {
        self.rules.grace()
    }

    /// A stream read under this link's fences (for a stream the peer opened).
    pub(crate) fn framed(&self, recv: quinn::RecvStream, head: Bytes) -> FramedRecv {
        FramedRecv::new(recv, head, self.budget.clone(), self.rules)
    }

    /// Opens a bidirectional stream of `protocol` on this link.
    pub async fn open_bi(
        &self,
        protocol: ProtocolId,
    ) -> Result<(ProtocolSend, FramedRecv), CallError> {
        let (send, recv) = self
            .conn
            .open_bi()
            .await
            .map_err(|e| CallError::from_connection(&e))?;
        Ok((
            ProtocolSend::new(send, protocol),
            FramedRecv::answer(recv, self.budget.clone(), self.rules),
        ))
    }

    /// Opens a unidirectional stream of `protocol` on this link.
    pub async fn open_uni(&self, protocol: ProtocolId) -> Result<ProtocolSend, CallError> {
        let send = self
            .conn
            .open_uni()
            .await
            .map_err(|e| CallError::from_connection(&e))?;
        Ok(ProtocolSend::new(send, protocol))
    }
}

static IDS: [u8; 256] = {
    let mut ids = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        ids[i] = i as u8;
        i += 1;
    }
    ids
};

/// The sending half of a stream this node opened: its first write is
/// preceded by the protocol id.
#[derive(Debug)]
pub struct ProtocolSend {
    send: SendStream,
    preamble: Option<Bytes>,
}

impl ProtocolSend {
    fn new(send: SendStream, protocol: ProtocolId) -> Self {
        let at = usize::from(protocol);
        Self {
            send,
            preamble: Some(Bytes::from_static(&IDS[at..=at])),
        }
    }

    /// Writes `pieces` in order (after the protocol id, on the first write).
    pub async fn write(&mut self, pieces: Vec<Bytes>) -> Result<(), WriteError> {
        match self.preamble.take() {
            Some(id) => {
                let mut all = Vec::with_capacity(pieces.len() + 1);
                all.push(id);
                all.extend(pieces);
                self.send.write_all_chunks(&mut all).await
            }
            None => {
                let mut pieces = pieces;
                self.send.write_all_chunks(&mut pieces).await
            }
        }
    }

    /// Ends the stream after what was written.
    pub fn finish(&mut self) {
        let _ = self.send.finish();
    }

    /// The underlying stream (its preamble must have been written).
    pub fn into_inner(self) -> SendStream {
        self.send
    }
}
