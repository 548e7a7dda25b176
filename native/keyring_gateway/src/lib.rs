//! Keyring's gateway for agents that are not BEAM nodes.
//!
//! A hyper HTTP/1.1 server on its own tokio runtime, loopback by default:
//!
//! - `GET /`: the status page (one self-contained HTML file given at start);
//! - `GET /v1/events`: Server-Sent Events from a bounded replay ring
//!   ([`events`]), with filters, ids, `Last-Event-ID` resume, keep-alives and
//!   `lagged` notices ([`sse`]);
//! - `POST /mcp`: MCP's Streamable HTTP transport, JSON-only and sessionless,
//!   for the 2025 revisions and 2026-07-28 ([`mcp`] checks the envelope and
//!   headers);
//! - every other `/v1` route: handed to a [`Dispatch`] (the BEAM) as a
//!   [`Request`] and answered with [`Gateway::respond`].
//!
//! Before any of that, [`guard`] checks `Host` and `Origin` (DNS rebinding)
//! and the bearer token (constant time); mutations need the token and a JSON
//! (or, for blobs, octet-stream) body; bodies, queries, headers, connections,
//! SSE clients and requests in flight are bounded ([`GatewayConfig`]), and
//! every refusal is a JSON error ([`problem`]).
#![warn(missing_docs, unreachable_pub, rust_2018_idioms)]
#![deny(unsafe_code)]

mod body;
pub mod config;
pub mod dispatch;
pub mod events;
pub mod guard;
pub mod mcp;
pub mod problem;
pub mod query;
mod server;
mod sse;

pub use config::{ConfigError, GatewayConfig};
pub use dispatch::{
    Dispatch, Gone, McpRequest, Reply, ReplyBody, Request, RequestBody, RespondError, StreamError,
};
pub use events::{EventId, PublishError};
pub use server::{Gateway, StartError, Stats, StatsSnapshot, READ_CHUNK};
