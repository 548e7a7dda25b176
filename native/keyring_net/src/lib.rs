//! Keyring's QUIC mesh: the async shell (tokio + quinn + rustls) around the
//! I/O-free membership and wire codecs of `keyring_core`.
//!
//! - TLS 1.3 only, Ed25519 raw public keys (RFC 7250), no resumption, no
//!   0-RTT, no SNI ([`tls`]).
//! - Both sides check the other's key against the current membership snapshot
//!   ([`Members`]) inside the handshake; a non-member's handshake fails before
//!   any stream exists. After the handshake the client names its keyring in a
//!   `Hello`; only the server's `Welcome` admits the connection.
//! - One connection per (keyring, peer) carries every protocol: each stream
//!   starts with a [`ProtocolId`] byte and is handed to the [`Protocol`]
//!   registered under it ([`protocol`]). Keyring's own: [`protocols::rpc`]
//!   and [`protocols::membership`].
//! - Every peer is an adversary until its bytes are verified: each fence
//!   (stream memory and deadlines, handshake and join rates, connections per
//!   key) has a number in [`Limits`] and an attack test in `tests/attack_*`.
//! - Key exchange: hybrid X25519MLKEM768 (then X25519) on the aws-lc-rs
//!   provider (feature `pq`, default); `classic` uses ring and X25519 only.
//! - Live connections are re-checked on every membership change and every
//!   [`mesh::REVALIDATE_EVERY`]; revoked or expired members are closed.
//! - Results go to callbacks, an [`EventSink`] and the protocols' handler
//!   traits; nothing here blocks a caller.
//!
//! Layout, bottom up (each module uses only those before it in this list;
//! `tests/mesh/module_graph.rs` checks there are no cycles): `config`,
//! `close`, `budget`, `stream`, `error`, `event`, `members`, `rate`, `peers`,
//! `tls`, `fence`, `protocol`, `links`, `node`, `dial`, `serve`, `connect`,
//! `admit`, `join`, `protocols`, `mesh` (the front).
#![warn(missing_docs, unreachable_pub, rust_2018_idioms)]
#![deny(unsafe_code)]

mod admit;
mod budget;
pub mod close;
mod config;
mod connect;
mod dial;
mod error;
mod event;
mod fence;
mod join;
pub mod links;
pub mod members;
pub mod mesh;
mod node;
mod peers;
pub mod protocol;
pub mod protocols;
mod rate;
mod serve;
mod stream;
pub mod tls;

pub use budget::Charge;
pub use config::{Limits, MeshConfig};
pub use connect::Opener;
pub use error::{CallError, StartError};
pub use event::{Event, EventSink, JoinDone};
pub use join::server::JoinAnswer;
pub use members::{now_ms, Members};
pub use mesh::Mesh;
pub use protocol::{
    PeerLink, Protocol, ProtocolId, ProtocolSend, Protocols, Target, PROTOCOL_MEMBERSHIP,
    PROTOCOL_RPC,
};
pub use stream::{ChargedFrame, FramedRecv, ReadFrameError};
