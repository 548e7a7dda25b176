//! DAG sync on a stream (mesh protocol 4): how a request and the start of a
//! response are framed around [`Request`] and [`super::Item`].
//!
//! ```text
//! request  = len:u32 (big-endian, 1..=MAX_REQUEST_BYTES)  request:[len]   then the requester finishes its side
//! response = status:u8  item*                             then the provider finishes (status 0 only)
//! status   = 0 ok (items follow, in traversal order) | 1 not found | 2 busy | 3 bad request
//! ```
//!
//! "Not found" is the one answer for a root that is absent and for one that
//! is not shared in the connection's keyring, so a guesser learns nothing.
//! The length is checked before the request's bytes are awaited.

use super::{CodecError, Request, MAX_FILTER_BYTES, MAX_HAVE, MAX_ROOTS};
use crate::hash::HASH_LEN;

/// Largest request encoding: every list at its limit, the largest filter.
pub const MAX_REQUEST_BYTES: usize =
    2 + 10 * 4 + MAX_ROOTS * (1 + HASH_LEN) + MAX_HAVE * HASH_LEN + 64 + MAX_FILTER_BYTES;

/// The first byte of a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Status {
    /// Items follow.
    Ok = 0,
    /// A root is not held, or not shared in this connection's keyring.
    NotFound = 1,
    /// The provider serves as many syncs for this peer as it allows.
    Busy = 2,
    /// The request did not decode.
    BadRequest = 3,
}

impl Status {
    /// The status of a byte.
    pub fn decode(byte: u8) -> Result<Self, CodecError> {
        Ok(match byte {
            0 => Status::Ok,
            1 => Status::NotFound,
            2 => Status::Busy,
            3 => Status::BadRequest,
            _ => return Err(CodecError::Invalid("response status")),
        })
    }
}

/// The framed request.
pub fn encode_request(request: &Request) -> Result<Vec<u8>, CodecError> {
    let body = request.encode()?;
    let mut out = Vec::with_capacity(4 + body.len());
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(&body);
    Ok(out)
}

/// Decodes a framed request from the front of `bytes`: `Ok(None)` while
/// more bytes are needed (never more than `4 + MAX_REQUEST_BYTES` in all),
/// else the request and the bytes it used.
pub fn decode_request(bytes: &[u8]) -> Result<Option<(Request, usize)>, CodecError> {
    let Some(head) = bytes.get(..4) else {
        return Ok(None);
    };
    let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
    if len == 0 {
        return Err(CodecError::Truncated);
    }
    if len > MAX_REQUEST_BYTES {
        return Err(CodecError::TooLarge {
            what: "request",
            limit: MAX_REQUEST_BYTES,
        });
    }
    let Some(body) = bytes.get(4..4 + len) else {
        return Ok(None);
    };
    Ok(Some((Request::decode(body)?, 4 + len)))
}

// A filter at its limit must fit the request limit.
const _: () = assert!(MAX_FILTER_BYTES + 64 < MAX_REQUEST_BYTES);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dag::TraversalSpec;

    #[test]
    fn a_framed_request_round_trips_in_any_split() {
        let request = Request::new([7; 32], TraversalSpec::default());
        let wire = encode_request(&request).unwrap();
        for cut in 0..wire.len() {
            assert_eq!(decode_request(&wire[..cut]), Ok(None), "{cut}");
        }
        assert_eq!(decode_request(&wire), Ok(Some((request, wire.len()))));
    }

    #[test]
    fn an_oversize_length_is_refused_before_its_bytes() {
        let len = (MAX_REQUEST_BYTES as u32 + 1).to_be_bytes();
        assert!(matches!(
            decode_request(&len),
            Err(CodecError::TooLarge {
                what: "request",
                ..
            })
        ));
        assert_eq!(decode_request(&[0, 0, 0, 0]), Err(CodecError::Truncated));
    }

    #[test]
    fn statuses_are_exactly_four() {
        for b in 0..=255u8 {
            assert_eq!(Status::decode(b).is_ok(), b < 4);
            if let Ok(s) = Status::decode(b) {
                assert_eq!(s as u8, b);
            }
        }
    }
}
