//! How connections and streams end: the application close codes this node
//! sends, the stream error codes of its fences, and how an end is described
//! to the owner.
//!
//! **A peer's words are never passed on.** A QUIC close carries a reason
//! text chosen by the peer; a hostile peer could put log lines or terminal
//! escapes there. [`describe`] turns every end into text built only from
//! fixed strings and numbers, and every error this crate reports about a
//! peer is built the same way (`CallError`), so no peer-chosen text reaches
//! the owner at all.

use quinn::{ConnectionError, VarInt};

/// Application close code: the connection was closed on request.
pub const CLOSE_NORMAL: u64 = 0;
/// Application close code: the peer's membership ended.
pub const CLOSE_REVOKED: u64 = 1;
/// Application close code: the peer was refused after the handshake.
pub const CLOSE_REFUSED: u64 = 2;
/// Application close code: this node is shutting down.
pub const CLOSE_SHUTDOWN: u64 = 3;
/// Application close code: both sides dialled at once and this connection
/// gave way to the other (see `links`).
pub const CLOSE_SUPERSEDED: u64 = 4;
/// Application close code: the peer broke a fence (too many connections,
/// no Hello in time).
pub const CLOSE_LIMIT: u64 = 5;

/// Stream code: no protocol with that id is served here.
pub const STREAM_UNKNOWN_PROTOCOL: u32 = 1;
/// Stream code: the peer sent the frame slower than the minimum rate.
pub const STREAM_TOO_SLOW: u32 = 2;
/// Stream code: the frame found no room in the peer's memory budget.
pub const STREAM_OVER_BUDGET: u32 = 3;
/// Stream code: the bytes are not a frame this protocol accepts.
pub const STREAM_BAD_FRAME: u32 = 4;
/// Stream code: the request was dropped unanswered (e.g. on shutdown).
pub const STREAM_DROPPED: u32 = 5;

/// A QUIC varint from one of the small codes above.
pub(crate) fn code(c: u64) -> VarInt {
    VarInt::from_u64(c).unwrap_or(VarInt::MAX)
}

/// A stream error code.
pub(crate) fn stream_code(c: u32) -> VarInt {
    VarInt::from_u32(c)
}

fn application_close(code: u64) -> &'static str {
    match code {
        CLOSE_NORMAL => "normal",
        CLOSE_REVOKED => "revoked",
        CLOSE_REFUSED => "refused",
        CLOSE_SHUTDOWN => "shutdown",
        CLOSE_SUPERSEDED => "superseded",
        CLOSE_LIMIT => "limit",
        _ => "unknown code",
    }
}

/// How a connection ended, in fixed words and numbers only (never the
/// peer's reason text).
pub fn describe(e: &ConnectionError) -> String {
    match e {
        ConnectionError::ApplicationClosed(c) => {
            let code = c.error_code.into_inner();
            format!("closed by the peer: {} ({code})", application_close(code))
        }
        ConnectionError::ConnectionClosed(c) => format!(
            "closed by the peer: transport error {:#x}",
            u64::from(c.error_code)
        ),
        ConnectionError::TransportError(t) => {
            format!("transport error {:#x}", u64::from(t.code))
        }
        ConnectionError::VersionMismatch => "QUIC version mismatch".into(),
        ConnectionError::Reset => "reset by the peer".into(),
        ConnectionError::TimedOut => "timed out".into(),
        ConnectionError::LocallyClosed => "closed locally".into(),
        ConnectionError::CidsExhausted => "connection ids exhausted".into(),
    }
}

/// Whether a link that ended this way should be dialled again.
pub fn redial_after(reason: &ConnectionError) -> bool {
    match reason {
        // We closed it: disconnect, revocation, shutdown.
        ConnectionError::LocallyClosed => false,
        // The peer closed it: a shutdown (it may come back) is redialled, and
        // so is a link it superseded while this side had no other (the two
        // sides saw different connections; a fresh dial settles it).
        ConnectionError::ApplicationClosed(c) => {
            matches!(c.error_code.into_inner(), CLOSE_SHUTDOWN | CLOSE_SUPERSEDED)
        }
        // Timeouts, resets, transport errors.
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn closed_by_peer(code: u64, reason: &'static [u8]) -> ConnectionError {
        ConnectionError::ApplicationClosed(quinn::ApplicationClose {
            error_code: VarInt::from_u64(code).unwrap(),
            reason: bytes::Bytes::from_static(reason),
        })
    }

    #[test]
    fn only_unplanned_ends_are_redialled() {
        assert!(!redial_after(&ConnectionError::LocallyClosed));
        assert!(redial_after(&ConnectionError::TimedOut));
        assert!(redial_after(&ConnectionError::Reset));
        assert!(redial_after(&closed_by_peer(CLOSE_SHUTDOWN, b"")));
        assert!(redial_after(&closed_by_peer(CLOSE_SUPERSEDED, b"")));
        for on_purpose in [CLOSE_NORMAL, CLOSE_REVOKED, CLOSE_REFUSED, CLOSE_LIMIT] {
            assert!(!redial_after(&closed_by_peer(on_purpose, b"")));
        }
    }

    #[test]
    fn a_peers_reason_text_is_never_repeated() {
        let evil = b"\n[error] root key leaked\x1b[2J";
        for code in [CLOSE_REVOKED, 77, u64::from(u32::MAX)] {
            let text = describe(&closed_by_peer(code, evil));
            assert!(!text.contains("root key"), "{text}");
            assert!(text.contains(&code.to_string()), "{text}");
            assert!(!text.contains('\n') && !text.contains('\x1b'));
        }
        assert_eq!(
            describe(&closed_by_peer(CLOSE_REVOKED, evil)),
            "closed by the peer: revoked (1)"
        );
    }
}
