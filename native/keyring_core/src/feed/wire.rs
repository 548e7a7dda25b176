//! Feed and ref replication messages (mesh protocol 5). Each message is
//! framed on its stream like reconciliation's ([`crate::reconcile::framing`]:
//! `len:u32` then the message); the keyring is the connection's.
//!
//! ```text
//! message = 1 push   entries refs                 (unidirectional stream: new entries/refs)
//!         | 2 pull   flags:u8 [authors] heads max:u32   (bidirectional: "what follows these heads")
//!         | 3 batch  more:u8 entries refs         (the answer to a pull)
//! entries = count:u32 (len:u32 entry)*            entry: an encoded signed feed entry
//! refs    = count:u32 (len:u32 ref)*              ref: an encoded signed ref
//! authors = count:u32 author:[32]*                (flags & 1: only these authors, else all)
//! heads   = count:u32 (author:[32] seq:u64)*      seq: the last chained entry held
//! ```
//!
//! Integers are big-endian. Limits, checked on the counts and lengths before
//! anything is allocated: [`MAX_ITEMS`] entries, refs, authors or heads per
//! message, each entry at most [`MAX_ENCODED`] bytes and each ref at most
//! [`crate::refs::MAX_ENCODED`]; the whole message is bounded by the
//! caller's frame limit. Nothing may trail the last field. Entries and refs
//! are carried as bytes: the receiver verifies them on ingest.

use super::{FeedError, MAX_ENCODED};
use crate::wire::reader::Reader;

/// Most entries, refs, authors or heads in one message.
pub const MAX_ITEMS: usize = 4096;

/// A replication message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message<'a> {
    /// New entries and refs, pushed.
    Push {
        /// Encoded entries.
        entries: Vec<&'a [u8]>,
        /// Encoded refs.
        refs: Vec<&'a [u8]>,
    },
    /// A request for what follows `heads`.
    Pull {
        /// Only these authors (none: all).
        authors: Option<Vec<[u8; 32]>>,
        /// The requester's heads: (author, last chained seq).
        heads: Vec<([u8; 32], u64)>,
        /// Most entries to answer with.
        max: u32,
    },
    /// An answer to a pull.
    Batch {
        /// Whether more entries follow the heads this batch reaches (pull
        /// again with the new heads).
        more: bool,
        /// Encoded entries, each feed's in sequence order.
        entries: Vec<&'a [u8]>,
        /// Encoded refs (the first batch only).
        refs: Vec<&'a [u8]>,
    },
}

fn bad(why: &'static str) -> FeedError {
    FeedError::Malformed(why)
}

fn put_list(out: &mut Vec<u8>, items: &[&[u8]]) {
    out.extend_from_slice(&(items.len() as u32).to_be_bytes());
    for item in items {
        out.extend_from_slice(&(item.len() as u32).to_be_bytes());
        out.extend_from_slice(item);
    }
}

fn get_list<'a>(r: &mut Reader<'a>, max_len: usize) -> Result<Vec<&'a [u8]>, FeedError> {
    let count = r.u32().map_err(|_| bad("truncated count"))? as usize;
    if count > MAX_ITEMS {
        return Err(bad("too many items"));
    }
    let mut out = Vec::with_capacity(count.min(r.remaining() / 4));
    for _ in 0..count {
        let len = r.u32().map_err(|_| bad("truncated length"))? as usize;
        if len > max_len {
            return Err(bad("item over its limit"));
        }
        out.push(r.take(len).map_err(|_| bad("truncated item"))?);
    }
    Ok(out)
}

impl<'a> Message<'a> {
    /// The encoding.
    pub fn encode(&self) -> Result<Vec<u8>, FeedError> {
        let mut out = Vec::new();
        match self {
            Message::Push { entries, refs } => {
                check(entries.len().max(refs.len()))?;
                out.push(1);
                put_list(&mut out, entries);
                put_list(&mut out, refs);
            }
            Message::Pull {
                authors,
                heads,
                max,
            } => {
                check(heads.len().max(authors.as_ref().map_or(0, Vec::len)))?;
                out.push(2);
                out.push(u8::from(authors.is_some()));
                if let Some(authors) = authors {
                    out.extend_from_slice(&(authors.len() as u32).to_be_bytes());
                    authors.iter().for_each(|a| out.extend_from_slice(a));
                }
                out.extend_from_slice(&(heads.len() as u32).to_be_bytes());
                for (author, seq) in heads {
                    out.extend_from_slice(author);
                    out.extend_from_slice(&seq.to_be_bytes());
                }
                out.extend_from_slice(&max.to_be_bytes());
            }
            Message::Batch {
                more,
                entries,
                refs,
            } => {
                check(entries.len().max(refs.len()))?;
                out.push(3);
                out.push(u8::from(*more));
                put_list(&mut out, entries);
                put_list(&mut out, refs);
            }
        }
        Ok(out)
    }

    /// Decodes a message (canonical encodings only).
    pub fn decode(bytes: &'a [u8]) -> Result<Self, FeedError> {
        let mut r = Reader::new(bytes);
        let message = match r.u8().map_err(|_| bad("empty message"))? {
            1 => Message::Push {
                entries: get_list(&mut r, MAX_ENCODED)?,
                refs: get_list(&mut r, crate::refs::MAX_ENCODED)?,
            },
            2 => {
                let authors = match r.u8().map_err(|_| bad("truncated flags"))? {
                    0 => None,
                    1 => {
                        let n = r.u32().map_err(|_| bad("truncated count"))? as usize;
                        if n > MAX_ITEMS {
                            return Err(bad("too many authors"));
                        }
                        let bytes = r.take(n * 32).map_err(|_| bad("truncated authors"))?;
                        Some(bytes.chunks_exact(32).map(key).collect())
                    }
                    _ => return Err(bad("pull flags")),
                };
                let n = r.u32().map_err(|_| bad("truncated count"))? as usize;
                if n > MAX_ITEMS {
                    return Err(bad("too many heads"));
                }
                let bytes = r.take(n * 40).map_err(|_| bad("truncated heads"))?;
                let heads = bytes
                    .chunks_exact(40)
                    .map(|h| {
                        let mut seq = [0u8; 8];
                        seq.copy_from_slice(&h[32..]);
                        (key(&h[..32]), u64::from_be_bytes(seq))
                    })
                    .collect();
                let max = r.u32().map_err(|_| bad("truncated max"))?;
                Message::Pull {
                    authors,
                    heads,
                    max,
                }
            }
            3 => {
                let more = match r.u8().map_err(|_| bad("truncated flag"))? {
                    0 => false,
                    1 => true,
                    _ => return Err(bad("batch flag")),
                };
                Message::Batch {
                    more,
                    entries: get_list(&mut r, MAX_ENCODED)?,
                    refs: get_list(&mut r, crate::refs::MAX_ENCODED)?,
                }
            }
            _ => return Err(bad("message kind")),
        };
        if r.remaining() != 0 {
            return Err(bad("trailing bytes"));
        }
        Ok(message)
    }
}

fn check(n: usize) -> Result<(), FeedError> {
    if n > MAX_ITEMS {
        return Err(bad("too many items"));
    }
    Ok(())
}

fn key(bytes: &[u8]) -> [u8; 32] {
    let mut k = [0u8; 32];
    k.copy_from_slice(bytes);
    k
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all() -> Vec<Message<'static>> {
        vec![
            Message::Push {
                entries: vec![b"e1", b"entry two"],
                refs: vec![b"r"],
            },
            Message::Pull {
                authors: Some(vec![[1; 32], [2; 32]]),
                heads: vec![([1; 32], 7), ([3; 32], 0)],
                max: 1000,
            },
            Message::Pull {
                authors: None,
                heads: vec![],
                max: 1,
            },
            Message::Batch {
                more: true,
                entries: vec![b"x"],
                refs: vec![],
            },
        ]
    }

    #[test]
    fn messages_round_trip_and_every_cut_is_refused() {
        for m in all() {
            let bytes = m.encode().unwrap();
            assert_eq!(Message::decode(&bytes).unwrap(), m);
            for n in 0..bytes.len() {
                assert!(Message::decode(&bytes[..n]).is_err(), "{m:?} cut at {n}");
            }
            let mut trailing = bytes.clone();
            trailing.push(0);
            assert!(Message::decode(&trailing).is_err());
        }
    }

    #[test]
    fn counts_and_lengths_over_the_limits_are_refused_before_reading() {
        let mut many = vec![1];
        many.extend_from_slice(&((MAX_ITEMS + 1) as u32).to_be_bytes());
        assert_eq!(
            Message::decode(&many),
            Err(FeedError::Malformed("too many items"))
        );
        let mut long = vec![1, 0, 0, 0, 1];
        long.extend_from_slice(&((MAX_ENCODED + 1) as u32).to_be_bytes());
        assert_eq!(
            Message::decode(&long),
            Err(FeedError::Malformed("item over its limit"))
        );
    }
}
