//! The errors of the mesh's operations: starting it ([`StartError`]) and
//! reaching a peer (calls, casts, opening protocol streams, joins:
//! [`CallError`]). Text inside them never repeats a peer's words (see
//! [`crate::close`]).

use keyring_core::wire::frame::Refusal;
use thiserror::Error;

use crate::close::{describe, CLOSE_LIMIT, CLOSE_REFUSED, CLOSE_REVOKED};
use crate::stream::ReadFrameError;

/// Why the mesh could not start.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum StartError {
    /// Binding a UDP socket failed.
    #[error("bind: {0}")]
    Bind(#[from] std::io::Error),
    /// The TLS configuration was refused.
    #[error("tls: {0}")]
    Tls(#[from] rustls::Error),
    /// quinn refused the TLS configuration.
    #[error("quic config: {0}")]
    Quic(String),
}

/// Why a call, cast, stream or join did not get an answer.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum CallError {
    /// The peer is not a current member of the keyring (checked before dialling).
    #[error("the peer is not a member of the keyring")]
    NotMember,
    /// No address is known for the peer.
    #[error("no address known for the peer")]
    NoAddress,
    /// The peer refused us after the handshake.
    #[error("refused by the peer: {0:?}")]
    Refused(Refusal),
    /// The peer closed the connection because our membership ended.
    #[error("the peer closed the connection: membership revoked or expired")]
    Revoked,
    /// The TLS handshake failed: one side did not accept the other's key.
    #[error("handshake rejected: {0}")]
    HandshakeRejected(String),
    /// Could not reach the peer.
    #[error("unreachable: {0}")]
    Unreachable(String),
    /// The connection broke during the exchange.
    #[error("connection lost: {0}")]
    ConnectionLost(String),
    /// The peer sent bytes that are not a valid frame.
    #[error("protocol violation: {0}")]
    Protocol(String),
    /// The peer refused a new connection or stream because it is at a limit
    /// (its handshake, join or connection fences).
    #[error("the peer is busy: try again later")]
    Busy,
    /// The deadline passed.
    #[error("timed out")]
    Timeout,
    /// The mesh is shutting down.
    #[error("the mesh is closed")]
    Closed,
}

impl CallError {
    /// The error for a connection that ended with `e`.
    pub(crate) fn from_connection(e: &quinn::ConnectionError) -> Self {
        use quinn::ConnectionError as E;
        match e {
            E::TransportError(t) if is_crypto(u64::from(t.code)) => {
                Self::HandshakeRejected(describe(e))
            }
            E::ConnectionClosed(c) if is_crypto(u64::from(c.error_code)) => {
                Self::HandshakeRejected(describe(e))
            }
            E::ApplicationClosed(c) => match c.error_code.into_inner() {
                CLOSE_REVOKED => Self::Revoked,
                CLOSE_REFUSED => Self::Refused(Refusal::Other),
                CLOSE_LIMIT => Self::Busy,
                _ => Self::ConnectionLost(describe(e)),
            },
            E::ConnectionClosed(c)
                if c.error_code == quinn::TransportErrorCode::CONNECTION_REFUSED =>
            {
                Self::Busy
            }
            E::TimedOut => Self::Unreachable("handshake timed out".into()),
            E::LocallyClosed => Self::Closed,
            other => Self::ConnectionLost(describe(other)),
        }
    }

    /// Whether dialling again (after a pause) may succeed.
    pub(crate) fn retryable(&self) -> bool {
        !matches!(
            self,
            Self::Refused(_) | Self::HandshakeRejected(_) | Self::NotMember | Self::Closed
        )
    }
}

/// The error for a frame that could not be read on `conn`.
pub(crate) fn read_failed(conn: &quinn::Connection, e: ReadFrameError) -> CallError {
    match e {
        ReadFrameError::Stream => closed_reason(conn),
        ReadFrameError::Frame(e) => CallError::Protocol(e.to_string()),
        ReadFrameError::TooSlow => CallError::Timeout,
        ReadFrameError::OverBudget => CallError::Busy,
    }
}

/// Why `conn` failed (or that a stream did, if it has not).
pub(crate) fn closed_reason(conn: &quinn::Connection) -> CallError {
    match conn.close_reason() {
        Some(e) => CallError::from_connection(&e),
        None => CallError::ConnectionLost("stream failed".into()),
    }
}

fn is_crypto(code: u64) -> bool {
    (0x100..0x200).contains(&code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_and_rejections_are_final_the_rest_may_be_retried() {
        for e in [
            CallError::Refused(Refusal::NotMember),
            CallError::HandshakeRejected("x".into()),
            CallError::NotMember,
            CallError::Closed,
        ] {
            assert!(!e.retryable(), "{e:?}");
        }
        for e in [
            CallError::Busy,
            CallError::Timeout,
            CallError::Unreachable("x".into()),
            CallError::ConnectionLost("x".into()),
        ] {
            assert!(e.retryable(), "{e:?}");
        }
    }

    #[test]
    fn a_peers_close_text_does_not_reach_the_error() {
        let e = quinn::ConnectionError::ApplicationClosed(quinn::ApplicationClose {
            error_code: quinn::VarInt::from_u32(99),
            reason: bytes::Bytes::from_static(b"\ninjected"),
        });
        let err = CallError::from_connection(&e);
        assert!(!err.to_string().contains("injected"), "{err}");
    }
}
