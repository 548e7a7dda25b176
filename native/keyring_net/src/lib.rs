//! Keyring's QUIC mesh: the async shell (tokio + quinn + rustls) around the
//! I/O-free membership and wire codecs of `keyring_core`.
//!
//! - TLS 1.3 only, Ed25519 raw public keys (RFC 7250), no resumption, no
//!   0-RTT, no SNI ([`tls`]).
//! - Both sides check the other's key against the current membership snapshot
//!   ([`Members`]) inside the handshake; a non-member's handshake fails before
//!   any stream exists. After the handshake the client names its keyring in a
//!   `Hello`; only the server's `Welcome` admits the connection.
//! - Key exchange: hybrid X25519MLKEM768 (then X25519) on the aws-lc-rs
//!   provider (feature `pq`, default); `classic` uses ring and X25519 only.
//! - Live connections are re-checked on every membership change and every
//!   [`mesh::REVALIDATE_EVERY`]; revoked or expired members are closed.
//! - Results go to callbacks and an [`EventSink`]; nothing here blocks a caller.

mod client;
mod error;
mod event;
pub mod links;
pub mod members;
pub mod mesh;
mod rate;
mod server;
mod stream;
pub mod tls;

pub use error::{CallError, StartError};
pub use members::{now_ms, Members};
pub use mesh::{CallDone, CastDone, Event, EventSink, JoinDone, Mesh, MeshConfig};

#[cfg(test)]
mod tests;
