//! Negentropy messages on a mesh stream (protocol 6): one bidirectional
//! stream per reconciliation; the initiator writes a message, the responder
//! answers it, and so on, each message framed as
//!
//! ```text
//! frame = len:u32 (big-endian) message[len]
//! ```
//!
//! The initiator's messages are never empty. An empty frame from the
//! responder means "busy" (it runs as many reconciliations for this peer as
//! it allows); the initiator ends the session by finishing its side. The
//! keyring is the connection's: the set reconciled is the cids shared in it.
//! The length is checked against the receiver's limit before the message's
//! bytes are awaited.

use super::ReconcileError;

/// Frames `message`.
pub fn encode_frame(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + message.len());
    out.extend_from_slice(&(message.len() as u32).to_be_bytes());
    out.extend_from_slice(message);
    out
}

/// The message framed at the front of `bytes` (at most `max` long) and the
/// bytes the frame used; `Ok(None)` while more bytes are needed.
pub fn decode_frame(bytes: &[u8], max: usize) -> Result<Option<(&[u8], usize)>, ReconcileError> {
    let Some(head) = bytes.get(..4) else {
        return Ok(None);
    };
    let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
    if len > max {
        return Err(ReconcileError::TooLarge { len, max });
    }
    Ok(bytes.get(4..4 + len).map(|m| (m, 4 + len)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_in_any_split_and_oversize_is_refused_early() {
        let wire = encode_frame(b"\x61abc");
        for cut in 0..wire.len() {
            assert_eq!(decode_frame(&wire[..cut], 100), Ok(None));
        }
        assert_eq!(
            decode_frame(&wire, 100),
            Ok(Some((&b"\x61abc"[..], wire.len())))
        );
        assert_eq!(
            decode_frame(&wire[..4], 3),
            Err(ReconcileError::TooLarge { len: 4, max: 3 })
        );
        assert_eq!(decode_frame(&[0, 0, 0, 0], 3), Ok(Some((&b""[..], 4))));
    }
}
