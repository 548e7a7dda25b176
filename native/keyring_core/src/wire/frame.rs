//! Typed frames exchanged between keyring members on QUIC streams.
//!
//! ```text
//! frame  = version:u8(=1) kind:u8 len:u32 payload[len]
//! Hello        (1) keyring_id:[32]             client's first frame on a connection
//! Welcome      (2) -                            server admits the client
//! Refused      (3) reason:u8                    server refuses (then closes)
//! Request      (4) name_len:u8 name body        RPC call (body = restricted term)
//! Response     (5) status:u8 body               RPC reply
//! Cast         (6) name_len:u8 name body        one-way RPC
//! JoinRequest  (7) invite                       on the join ALPN only
//! JoinAccepted (8) entries                      the full membership log
//! JoinRefused  (9) reason:u8
//! LogUpdate   (10) keyring_id:[32] entries      newer membership log, pushed to members
//! LogHeads    (11) keyring_id:[32] reply:u8 n_heads:u16 n_locator:u16 hash[32]*(n_heads+n_locator)
//!                                               anti-entropy: what the sender holds
//! entries = count:u32 (len:u32 entry)*
//! ```
//! The length is checked against the receiver's limit before any payload is
//! read, so a peer cannot make us buffer more than we agreed to.

use thiserror::Error;

use super::reader::Reader;

/// Frame format version.
pub const VERSION: u8 = 1;
/// Bytes in a frame header.
pub const HEADER_LEN: usize = 6;
/// Default largest payload (16 MiB).
pub const DEFAULT_MAX_PAYLOAD: usize = 16 << 20;
/// Longest RPC name.
pub const MAX_NAME_LEN: usize = 255;
/// Most entries in one log frame.
pub const MAX_LOG_ENTRIES: usize = 100_000;
/// Most hashes (heads and locator together) in one `LogHeads` frame.
pub const MAX_HEADS_HASHES: usize = 1024;

/// Why a frame was rejected.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum FrameError {
    /// Unknown version byte.
    #[error("unsupported frame version {0}")]
    UnsupportedVersion(u8),
    /// Unknown kind byte.
    #[error("unknown frame kind {0}")]
    UnknownKind(u8),
    /// Payload longer than the receiver's limit.
    #[error("frame of {len} bytes exceeds the limit of {max}")]
    TooLarge {
        /// Announced length.
        len: usize,
        /// Limit.
        max: usize,
    },
    /// The payload does not match its kind's layout.
    #[error("malformed {kind} frame: {why}")]
    Malformed {
        /// Frame kind name.
        kind: &'static str,
        /// What is wrong.
        why: &'static str,
    },
}

/// Refusal reasons in `Refused` / `JoinRefused`.
///
/// A refusal never tells a peer which keyrings this node is in: a Hello for a
/// keyring this node does not know and one from a peer that is not a member
/// of it are both answered [`Refusal::NotMember`], and a join for an unknown
/// keyring is answered [`Refusal::BadInvite`] like any other bad invite.
/// (Code 2, once "unknown keyring", is retired and decodes as an error.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Refusal {
    /// The peer is not a current member of the keyring named (or this node
    /// does not know that keyring: the two are not told apart).
    NotMember = 1,
    /// The invite is invalid, expired or spent.
    BadInvite = 3,
    /// The peer sent something unexpected.
    ProtocolViolation = 4,
    /// Any other reason.
    Other = 255,
}

impl Refusal {
    fn from_u8(b: u8) -> Option<Self> {
        Some(match b {
            1 => Self::NotMember,
            3 => Self::BadInvite,
            4 => Self::ProtocolViolation,
            255 => Self::Other,
            _ => return None,
        })
    }
}

/// RPC reply status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Status {
    /// The handler ran; body is its reply.
    Ok = 0,
    /// No handler is exposed under that name.
    NotFound = 1,
    /// The handler's authorize function refused the caller.
    Forbidden = 2,
    /// The handler raised or exited; body describes it.
    HandlerError = 3,
    /// The request could not be decoded (e.g. an unknown atom).
    BadRequest = 4,
    /// The node is shutting down or overloaded.
    Unavailable = 5,
}

impl Status {
    fn from_u8(b: u8) -> Option<Self> {
        Some(match b {
            0 => Self::Ok,
            1 => Self::NotFound,
            2 => Self::Forbidden,
            3 => Self::HandlerError,
            4 => Self::BadRequest,
            5 => Self::Unavailable,
            _ => return None,
        })
    }
}

/// A decoded frame, borrowing from its payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame<'a> {
    /// Opens a connection for one keyring.
    Hello {
        /// The keyring the client speaks for.
        keyring_id: [u8; 32],
    },
    /// Admission.
    Welcome,
    /// Refusal.
    Refused(Refusal),
    /// RPC call.
    Request {
        /// Exposed name.
        name: &'a str,
        /// Restricted-term arguments.
        body: &'a [u8],
    },
    /// RPC reply.
    Response {
        /// Outcome.
        status: Status,
        /// Restricted-term reply (or error detail).
        body: &'a [u8],
    },
    /// One-way call.
    Cast {
        /// Exposed name.
        name: &'a str,
        /// Restricted-term arguments.
        body: &'a [u8],
    },
    /// Join with an invite.
    JoinRequest {
        /// Encoded invite.
        invite: &'a [u8],
    },
    /// Join accepted: the membership log.
    JoinAccepted {
        /// Encoded entries.
        entries: Vec<&'a [u8]>,
    },
    /// Join refused.
    JoinRefused(Refusal),
    /// A newer membership log.
    LogUpdate {
        /// The keyring.
        keyring_id: [u8; 32],
        /// Encoded entries.
        entries: Vec<&'a [u8]>,
    },
    /// Anti-entropy: the sender's heads of a keyring's log, and a locator
    /// (hashes along its chain) from which the receiver finds what the
    /// sender lacks.
    LogHeads {
        /// The keyring.
        keyring_id: [u8; 32],
        /// An answer to a `LogHeads` (never answered in turn).
        reply: bool,
        /// The sender's heads (its effective head first).
        heads: Vec<[u8; 32]>,
        /// More hashes along the sender's effective chain.
        locator: Vec<[u8; 32]>,
    },
}

/// A checked frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Kind byte (known).
    pub kind: u8,
    /// Payload length (within the limit).
    pub len: usize,
}

/// Checks a header against `max_payload` before the payload is read.
pub fn decode_header(bytes: &[u8; HEADER_LEN], max_payload: usize) -> Result<Header, FrameError> {
    if bytes[0] != VERSION {
        return Err(FrameError::UnsupportedVersion(bytes[0]));
    }
    let kind = bytes[1];
    if !(1..=11).contains(&kind) {
        return Err(FrameError::UnknownKind(kind));
    }
    let len = u32::from_be_bytes([bytes[2], bytes[3], bytes[4], bytes[5]]) as usize;
    if len > max_payload {
        return Err(FrameError::TooLarge {
            len,
            max: max_payload,
        });
    }
    Ok(Header { kind, len })
}

/// Decodes a whole frame (header and payload) from `bytes`.
pub fn decode(bytes: &[u8], max_payload: usize) -> Result<Frame<'_>, FrameError> {
    if bytes.len() < HEADER_LEN {
        return Err(FrameError::Malformed {
            kind: "any",
            why: "shorter than a header",
        });
    }
    let header = decode_header(
        bytes[..HEADER_LEN].try_into().expect("6 bytes"),
        max_payload,
    )?;
    let payload = &bytes[HEADER_LEN..];
    if payload.len() != header.len {
        return Err(FrameError::Malformed {
            kind: "any",
            why: "length does not match the payload",
        });
    }
    decode_payload(header.kind, payload)
}

/// Decodes the payload of a frame whose header was checked.
pub fn decode_payload(kind: u8, payload: &[u8]) -> Result<Frame<'_>, FrameError> {
    let mut r = Reader::new(payload);
    let name = kind_name(kind);
    let bad = |why| FrameError::Malformed { kind: name, why };
    let frame = match kind {
        1 => Frame::Hello {
            keyring_id: r.array().map_err(|_| bad("truncated"))?,
        },
        2 => Frame::Welcome,
        3 | 9 => {
            let reason = Refusal::from_u8(r.u8().map_err(|_| bad("truncated"))?)
                .ok_or(bad("unknown refusal reason"))?;
            if kind == 3 {
                Frame::Refused(reason)
            } else {
                Frame::JoinRefused(reason)
            }
        }
        4 | 6 => {
            let n = r.u8().map_err(|_| bad("truncated"))? as usize;
            let raw = r.take(n).map_err(|_| bad("truncated name"))?;
            let name = std::str::from_utf8(raw).map_err(|_| bad("name is not UTF-8"))?;
            if name.is_empty() {
                return Err(bad("empty name"));
            }
            let body = r.rest();
            if kind == 4 {
                Frame::Request { name, body }
            } else {
                Frame::Cast { name, body }
            }
        }
        5 => {
            let status = Status::from_u8(r.u8().map_err(|_| bad("truncated"))?)
                .ok_or(bad("unknown status"))?;
            Frame::Response {
                status,
                body: r.rest(),
            }
        }
        7 => Frame::JoinRequest { invite: r.rest() },
        8 => Frame::JoinAccepted {
            entries: decode_entries(&mut r).map_err(bad)?,
        },
        10 => {
            let keyring_id = r.array().map_err(|_| bad("truncated"))?;
            Frame::LogUpdate {
                keyring_id,
                entries: decode_entries(&mut r).map_err(bad)?,
            }
        }
        11 => {
            let keyring_id = r.array().map_err(|_| bad("truncated"))?;
            let reply = match r.u8().map_err(|_| bad("truncated"))? {
                0 => false,
                1 => true,
                _ => return Err(bad("reply flag must be 0 or 1")),
            };
            let n_heads = r.u16().map_err(|_| bad("truncated"))? as usize;
            let n_locator = r.u16().map_err(|_| bad("truncated"))? as usize;
            if n_heads == 0 {
                return Err(bad("no heads"));
            }
            if n_heads + n_locator > MAX_HEADS_HASHES || (n_heads + n_locator) * 32 != r.remaining()
            {
                return Err(bad("hash count does not match the payload"));
            }
            let mut hashes = (0..n_heads + n_locator)
                .map(|_| r.array().map_err(|_| bad("truncated hash")))
                .collect::<Result<Vec<[u8; 32]>, _>>()?;
            let locator = hashes.split_off(n_heads);
            Frame::LogHeads {
                keyring_id,
                reply,
                heads: hashes,
                locator,
            }
        }
        other => return Err(FrameError::UnknownKind(other)),
    };
    if r.remaining() != 0 {
        return Err(bad("trailing bytes"));
    }
    Ok(frame)
}

fn decode_entries<'a>(r: &mut Reader<'a>) -> Result<Vec<&'a [u8]>, &'static str> {
    let count = r.u32().map_err(|_| "truncated entry count")? as usize;
    if count > MAX_LOG_ENTRIES || count > r.remaining() / 4 {
        return Err("too many entries");
    }
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        let n = r.u32().map_err(|_| "truncated entry length")? as usize;
        out.push(r.take(n).map_err(|_| "truncated entry")?);
    }
    Ok(out)
}

fn kind_name(kind: u8) -> &'static str {
    match kind {
        1 => "Hello",
        2 => "Welcome",
        3 => "Refused",
        4 => "Request",
        5 => "Response",
        6 => "Cast",
        7 => "JoinRequest",
        8 => "JoinAccepted",
        9 => "JoinRefused",
        10 => "LogUpdate",
        11 => "LogHeads",
        _ => "unknown",
    }
}

impl Frame<'_> {
    fn kind(&self) -> u8 {
        match self {
            Frame::Hello { .. } => 1,
            Frame::Welcome => 2,
            Frame::Refused(_) => 3,
            Frame::Request { .. } => 4,
            Frame::Response { .. } => 5,
            Frame::Cast { .. } => 6,
            Frame::JoinRequest { .. } => 7,
            Frame::JoinAccepted { .. } => 8,
            Frame::JoinRefused(_) => 9,
            Frame::LogUpdate { .. } => 10,
            Frame::LogHeads { .. } => 11,
        }
    }

    /// Encodes the frame with its header. Fails only for names longer than
    /// [`MAX_NAME_LEN`] or payloads over 4 GiB.
    pub fn encode(&self) -> Result<Vec<u8>, FrameError> {
        let mut out = vec![VERSION, self.kind(), 0, 0, 0, 0];
        match self {
            Frame::Hello { keyring_id } => out.extend_from_slice(keyring_id),
            Frame::Welcome => {}
            Frame::Refused(r) | Frame::JoinRefused(r) => out.push(*r as u8),
            Frame::Request { name, body } | Frame::Cast { name, body } => {
                if name.is_empty() || name.len() > MAX_NAME_LEN {
                    return Err(FrameError::Malformed {
                        kind: kind_name(self.kind()),
                        why: "name must be 1..=255 bytes",
                    });
                }
                out.push(name.len() as u8);
                out.extend_from_slice(name.as_bytes());
                out.extend_from_slice(body);
            }
            Frame::Response { status, body } => {
                out.push(*status as u8);
                out.extend_from_slice(body);
            }
            Frame::JoinRequest { invite } => out.extend_from_slice(invite),
            Frame::JoinAccepted { entries } => encode_entries(&mut out, entries),
            Frame::LogUpdate {
                keyring_id,
                entries,
            } => {
                out.extend_from_slice(keyring_id);
                encode_entries(&mut out, entries);
            }
            Frame::LogHeads {
                keyring_id,
                reply,
                heads,
                locator,
            } => {
                if heads.is_empty() || heads.len() + locator.len() > MAX_HEADS_HASHES {
                    return Err(FrameError::Malformed {
                        kind: "LogHeads",
                        why: "1..=1024 hashes, at least one head",
                    });
                }
                out.extend_from_slice(keyring_id);
                out.push(u8::from(*reply));
                out.extend_from_slice(&(heads.len() as u16).to_be_bytes());
                out.extend_from_slice(&(locator.len() as u16).to_be_bytes());
                for h in heads.iter().chain(locator) {
                    out.extend_from_slice(h);
                }
            }
        }
        let len = u32::try_from(out.len() - HEADER_LEN).map_err(|_| FrameError::TooLarge {
            len: out.len(),
            max: u32::MAX as usize,
        })?;
        out[2..6].copy_from_slice(&len.to_be_bytes());
        Ok(out)
    }
}

/// The bytes of a `Request` (or, with `cast`, a `Cast`) frame that precede
/// its body: write them and then the body itself, without building the frame
/// in one buffer.
pub fn message_prefix(cast: bool, name: &str, body_len: usize) -> Result<Vec<u8>, FrameError> {
    let kind = if cast { 6 } else { 4 };
    if name.is_empty() || name.len() > MAX_NAME_LEN {
        return Err(FrameError::Malformed {
            kind: kind_name(kind),
            why: "name must be 1..=255 bytes",
        });
    }
    let mut out = prefix(kind, 1 + name.len() + body_len)?;
    out.push(name.len() as u8);
    out.extend_from_slice(name.as_bytes());
    Ok(out)
}

/// The bytes of a `Response` frame that precede its body.
pub fn response_prefix(status: Status, body_len: usize) -> Result<Vec<u8>, FrameError> {
    let mut out = prefix(5, 1 + body_len)?;
    out.push(status as u8);
    Ok(out)
}

fn prefix(kind: u8, payload_len: usize) -> Result<Vec<u8>, FrameError> {
    let len = u32::try_from(payload_len).map_err(|_| FrameError::TooLarge {
        len: payload_len,
        max: u32::MAX as usize,
    })?;
    let mut out = Vec::with_capacity(HEADER_LEN + 256);
    out.extend_from_slice(&[VERSION, kind]);
    out.extend_from_slice(&len.to_be_bytes());
    Ok(out)
}

fn encode_entries(out: &mut Vec<u8>, entries: &[&[u8]]) {
    out.extend_from_slice(&(entries.len() as u32).to_be_bytes());
    for e in entries {
        out.extend_from_slice(&(e.len() as u32).to_be_bytes());
        out.extend_from_slice(e);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples() -> Vec<Frame<'static>> {
        vec![
            Frame::Hello {
                keyring_id: [3; 32],
            },
            Frame::Welcome,
            Frame::Refused(Refusal::NotMember),
            Frame::Request {
                name: "echo",
                body: b"\x01\x03",
            },
            Frame::Response {
                status: Status::Forbidden,
                body: b"",
            },
            Frame::Cast {
                name: "log",
                body: b"x",
            },
            Frame::JoinRequest { invite: b"inv" },
            Frame::JoinAccepted {
                entries: vec![b"a", b"bc"],
            },
            Frame::JoinRefused(Refusal::BadInvite),
            Frame::LogUpdate {
                keyring_id: [1; 32],
                entries: vec![],
            },
            Frame::LogHeads {
                keyring_id: [2; 32],
                reply: true,
                heads: vec![[4; 32], [5; 32]],
                locator: vec![[6; 32]],
            },
        ]
    }

    #[test]
    fn every_frame_kind_roundtrips() {
        for f in samples() {
            let bytes = f.encode().unwrap();
            assert_eq!(decode(&bytes, DEFAULT_MAX_PAYLOAD).unwrap(), f);
        }
    }

    #[test]
    fn prefix_then_body_equals_the_whole_frame() {
        let body = b"some body";
        for cast in [false, true] {
            let whole = if cast {
                Frame::Cast { name: "n", body }
            } else {
                Frame::Request { name: "n", body }
            }
            .encode()
            .unwrap();
            let split = [
                message_prefix(cast, "n", body.len()).unwrap(),
                body.to_vec(),
            ]
            .concat();
            assert_eq!(split, whole);
        }
        let whole = Frame::Response {
            status: Status::Ok,
            body,
        }
        .encode()
        .unwrap();
        let split = [
            response_prefix(Status::Ok, body.len()).unwrap(),
            body.to_vec(),
        ]
        .concat();
        assert_eq!(split, whole);
        assert!(message_prefix(false, "", 0).is_err());
    }

    #[test]
    fn oversized_frame_is_refused_from_its_header() {
        let header = [VERSION, 4, 0xff, 0xff, 0xff, 0xff];
        assert!(matches!(
            decode_header(&header, 1024),
            Err(FrameError::TooLarge { .. })
        ));
    }

    #[test]
    fn malformed_frame_corpus_is_rejected() {
        let mut corpus: Vec<Vec<u8>> = vec![
            vec![],
            vec![VERSION],
            vec![2, 1, 0, 0, 0, 0],                // bad version
            vec![VERSION, 0, 0, 0, 0, 0],          // kind 0
            vec![VERSION, 12, 0, 0, 0, 0],         // unknown kind
            vec![VERSION, 2, 0, 0, 0, 1, 0],       // Welcome with payload
            vec![VERSION, 4, 0, 0, 0, 1, 0],       // Request with empty name
            vec![VERSION, 4, 0, 0, 0, 2, 1, 0xff], // name not UTF-8
            vec![VERSION, 5, 0, 0, 0, 1, 77],      // unknown status
            vec![VERSION, 3, 0, 0, 0, 1, 2],       // retired refusal "unknown keyring"
            vec![VERSION, 8, 0, 0, 0, 4, 0xff, 0xff, 0xff, 0xff], // absurd count
            vec![VERSION, 8, 0, 0, 0, 8, 0, 0, 0, 1, 0, 0, 0, 9], // truncated entry
        ];
        // LogHeads: no heads, a bad reply flag, an absurd hash count.
        let heads = |reply: u8, n_heads: u16, n_locator: u16, hashes: usize| {
            let mut p = vec![1u8; 32];
            p.push(reply);
            p.extend_from_slice(&n_heads.to_be_bytes());
            p.extend_from_slice(&n_locator.to_be_bytes());
            p.extend(std::iter::repeat_n(7u8, hashes * 32));
            let mut f = vec![VERSION, 11];
            f.extend_from_slice(&(p.len() as u32).to_be_bytes());
            f.extend(p);
            f
        };
        corpus.push(heads(0, 0, 1, 1));
        corpus.push(heads(2, 1, 0, 1));
        corpus.push(heads(0, 1000, 100, 1100));
        corpus.push(heads(0, u16::MAX, u16::MAX, 1));
        for f in samples() {
            let bytes = f.encode().unwrap();
            for cut in 0..bytes.len() {
                corpus.push(bytes[..cut].to_vec());
            }
            let mut longer = bytes.clone();
            longer.push(0);
            corpus.push(longer);
        }
        for bytes in &corpus {
            assert!(
                decode(bytes, DEFAULT_MAX_PAYLOAD).is_err(),
                "accepted {bytes:?}"
            );
        }
    }
}
