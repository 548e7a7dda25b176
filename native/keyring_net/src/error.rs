use keyring_core::wire::frame::Refusal;
use thiserror::Error;

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

/// Why a call, cast or join did not get an answer.
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
    /// The peer refused a new connection before the handshake because it is
    /// at its limit (the join endpoint's rate or concurrency bound).
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
    pub(crate) fn from_connection(e: &quinn::ConnectionError) -> Self {
        use quinn::ConnectionError as E;
        match e {
            E::TransportError(t) if is_crypto(u64::from(t.code)) => {
                Self::HandshakeRejected(t.to_string())
            }
            E::ConnectionClosed(c) if is_crypto(u64::from(c.error_code)) => {
                Self::HandshakeRejected(c.to_string())
            }
            E::ApplicationClosed(c) if c.error_code.into_inner() == crate::mesh::CLOSE_REVOKED => {
                Self::Revoked
            }
            E::ApplicationClosed(c) if c.error_code.into_inner() == crate::mesh::CLOSE_REFUSED => {
                Self::Refused(Refusal::Other)
            }
            E::ConnectionClosed(c)
                if c.error_code == quinn::TransportErrorCode::CONNECTION_REFUSED =>
            {
                Self::Busy
            }
            E::TimedOut => Self::Unreachable("handshake timed out".into()),
            E::LocallyClosed => Self::Closed,
            other => Self::ConnectionLost(other.to_string()),
        }
    }
}

fn is_crypto(code: u64) -> bool {
    (0x100..0x200).contains(&code)
}
