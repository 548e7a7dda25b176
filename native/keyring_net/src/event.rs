//! What the mesh reports to its owner about links and joins. Protocols
//! report through their own handler traits (see [`crate::protocols`]).

use std::net::SocketAddr;

use keyring_core::membership::PublicKey;

use crate::error::CallError;

/// Something the mesh reports to its owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A pair gained its link (either direction).
    PeerUp {
        /// Keyring of the link.
        keyring: PublicKey,
        /// Peer key.
        peer: PublicKey,
        /// Peer address.
        addr: SocketAddr,
    },
    /// A pair lost its link.
    PeerDown {
        /// Keyring of the link.
        keyring: PublicKey,
        /// Peer key.
        peer: PublicKey,
        /// Why, in fixed words (see [`crate::close::describe`]).
        reason: String,
    },
    /// A join request whose invite is signed and unexpired: answer it with
    /// [`crate::Mesh::answer_join`].
    JoinRequest {
        /// Answer handle.
        id: u64,
        /// The joining node's key (TLS-authenticated).
        peer: PublicKey,
        /// Encoded invite.
        invite: Vec<u8>,
    },
}

/// Receives [`Event`]s, on a runtime thread. Must not block.
pub trait EventSink: Send + Sync + 'static {
    /// Takes one event.
    fn deliver(&self, event: Event);
}

/// Callback for a join's outcome (the membership log).
pub type JoinDone = Box<dyn FnOnce(Result<Vec<Vec<u8>>, CallError>) + Send>;
