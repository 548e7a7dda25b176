//! What the mesh reports to its owner, and the callbacks that carry the
//! outcome of calls, casts and joins.

use std::net::SocketAddr;

use bytes::Bytes;
use keyring_core::membership::PublicKey;
use keyring_core::wire::frame::Status;

use crate::error::CallError;

/// Something the mesh reports to its owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A member connection was admitted (either direction).
    PeerUp {
        /// Keyring of the connection.
        keyring: PublicKey,
        /// Peer key.
        peer: PublicKey,
        /// Peer address.
        addr: SocketAddr,
    },
    /// A member connection closed.
    PeerDown {
        /// Keyring of the connection.
        keyring: PublicKey,
        /// Peer key.
        peer: PublicKey,
        /// Why.
        reason: String,
    },
    /// An RPC call: answer it with [`Mesh::respond`].
    Request {
        /// Answer handle.
        id: u64,
        /// Keyring of the connection.
        keyring: PublicKey,
        /// Caller (TLS-authenticated).
        peer: PublicKey,
        /// Exposed name.
        name: String,
        /// Restricted-term arguments.
        body: Bytes,
    },
    /// A one-way call.
    Cast {
        /// Keyring of the connection.
        keyring: PublicKey,
        /// Caller.
        peer: PublicKey,
        /// Exposed name.
        name: String,
        /// Restricted-term arguments.
        body: Bytes,
    },
    /// A join request: answer with [`Mesh::answer_join`].
    JoinRequest {
        /// Answer handle.
        id: u64,
        /// The joining node's key (TLS-authenticated).
        peer: PublicKey,
        /// Encoded invite.
        invite: Vec<u8>,
    },
    /// A member pushed its membership log.
    LogUpdate {
        /// Keyring.
        keyring: PublicKey,
        /// Sender.
        peer: PublicKey,
        /// Encoded entries.
        entries: Vec<Vec<u8>>,
    },
}

/// Receives [`Event`]s, on a runtime thread. Must not block.
pub trait EventSink: Send + Sync + 'static {
    /// Takes one event.
    fn deliver(&self, event: Event);
}

/// Callback for a call's outcome.
pub type CallDone = Box<dyn FnOnce(Result<(Status, Vec<u8>), CallError>) + Send>;
/// Callback for a cast's outcome.
pub type CastDone = Box<dyn FnOnce(Result<(), CallError>) + Send>;
/// Callback for a join's outcome (the membership log).
pub type JoinDone = Box<dyn FnOnce(Result<Vec<Vec<u8>>, CallError>) + Send>;
