//! The hand-off between the HTTP server and whoever answers dynamic requests
//! (the BEAM, through the NIF): a [`Request`] goes out through [`Dispatch`],
//! a [`Reply`] comes back through [`crate::Gateway::respond`].

use bytes::Bytes;
use serde_json::Value;

use crate::mcp::Era;

/// A request the gateway does not answer itself.
#[derive(Debug)]
pub struct Request {
    /// Unique per gateway; quote it in [`crate::Gateway::respond`].
    pub id: u64,
    /// `GET`, `POST`, ...
    pub method: String,
    /// The raw (still percent-encoded) path.
    pub path: String,
    /// Decoded query parameters, in order.
    pub query: Vec<(String, String)>,
    /// A few headers handlers may need (lowercase names): `content-type`,
    /// `accept`, `user-agent`, `content-length`.
    pub headers: Vec<(&'static str, String)>,
    /// The body.
    pub body: RequestBody,
    /// Whether the right bearer token came with it.
    pub authorized: bool,
    /// For `POST /mcp`: the checked envelope (the message is in `body`).
    pub mcp: Option<McpRequest>,
}

/// A request body as the handler sees it.
#[derive(Debug)]
pub enum RequestBody {
    /// None.
    Empty,
    /// `application/json`, parsed (bounded by `max_body`).
    Json(Value),
    /// `application/octet-stream`, read on demand with
    /// [`crate::Gateway::read_chunk`] (bounded by `max_upload`).
    Stream {
        /// `Content-Length`, when sent.
        length: Option<u64>,
    },
    /// A mutation with another (or no) content type: its body is never read.
    /// The handler answers 415 where the route exists (405/404 where not).
    Unsupported {
        /// The media type sent, lowercased, without parameters (`""` if none).
        content_type: String,
    },
}

/// An MCP request that passed the transport checks.
#[derive(Debug, Clone)]
pub struct McpRequest {
    /// JSON-RPC id.
    pub id: Value,
    /// JSON-RPC method.
    pub method: String,
    /// Which era's rules (and which version) it is served under.
    pub era: Era,
}

/// The handler's answer.
#[derive(Debug)]
pub struct Reply {
    /// HTTP status, 200..=599.
    pub status: u16,
    /// Extra headers.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: ReplyBody,
}

/// A reply body.
#[derive(Debug)]
pub enum ReplyBody {
    /// None.
    Empty,
    /// Serialized JSON.
    Json(Bytes),
    /// Bytes of some content type.
    Bytes {
        /// `Content-Type`.
        content_type: String,
        /// The bytes.
        data: Bytes,
    },
    /// Bytes that follow with [`crate::Gateway::send_chunk`] and end with
    /// [`crate::Gateway::finish`].
    Stream {
        /// `Content-Type`.
        content_type: String,
        /// `Content-Length`, when known.
        length: Option<u64>,
    },
}

/// The receiving end is gone (its process exited): the request gets 503.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("nobody is there to answer")]
pub struct Gone;

/// Where dynamic requests go.
pub trait Dispatch: Send + Sync + 'static {
    /// Hands `request` over; must not block.
    fn dispatch(&self, request: Request) -> Result<(), Gone>;
}

/// Why [`crate::Gateway::respond`] refused a reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RespondError {
    /// No request waits under that id (answered, timed out, or the client left).
    #[error("no request waits under this id")]
    Unknown,
    /// The status is not 200..=599.
    #[error("the status must be 200..=599")]
    BadStatus,
    /// A header name or value is not valid HTTP.
    #[error("invalid header {0:?}")]
    BadHeader(String),
}

/// Why a streamed chunk was not delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum StreamError {
    /// No stream under that id.
    #[error("no stream under this id")]
    Unknown,
    /// The client went away or stopped reading for too long.
    #[error("the client went away")]
    Closed,
    /// Another read on the same upload is in progress.
    #[error("another read is in progress")]
    Busy,
    /// The upload is larger than `max_upload`.
    #[error("the body is larger than allowed")]
    TooLarge,
    /// The client sent nothing for `body_idle_timeout`.
    #[error("the client stopped sending")]
    Timeout,
}
