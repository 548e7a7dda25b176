//! Response items: what a provider says about each cid of the traversal, in
//! traversal order. The cid itself is never sent: the requester knows which
//! cid comes next.
//!
//! Encoding: `0, len: varint (≤ MAX_ITEM_BYTES), bytes` (data: the node or
//! blob), `1, count: varint (≥ 1)` (skipped: this and the next `count - 1`
//! cids are excluded by the request; one item per run, so a response for k
//! missing nodes has at most 2k + 1 items whatever the fan-out), `2`
//! (missing: the provider does not hold it, or it is not a valid node),
//! `3, size: varint` (deferred: a blob over the request's inline limit, to
//! fetch by blob transfer).

use super::node::MAX_NODE_BYTES;
use super::{varint, CodecError};
use crate::wire::reader::Reader;

/// Largest data item (a node, or a blob within the inline limit).
pub const MAX_ITEM_BYTES: usize = MAX_NODE_BYTES;

/// One response item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// The node's or blob's bytes.
    Data(Vec<u8>),
    /// This many cids in a row excluded by the request (the requester said
    /// it holds them). At least 1.
    Skipped(u64),
    /// Not available from this provider (absent, or not a valid node).
    Missing,
    /// A blob too large for the stream; its size as the provider claims it.
    Deferred(u64),
}

impl Item {
    /// Appends the encoding.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Item::Data(bytes) => {
                out.push(0);
                varint::put(out, bytes.len() as u64);
                out.extend_from_slice(bytes);
            }
            Item::Skipped(count) => {
                out.push(1);
                varint::put(out, *count);
            }
            Item::Missing => out.push(2),
            Item::Deferred(size) => {
                out.push(3);
                varint::put(out, *size);
            }
        }
    }

    /// Encoded size in bytes.
    pub fn encoded_len(&self) -> usize {
        match self {
            Item::Data(bytes) => 1 + varint::len(bytes.len() as u64) + bytes.len(),
            Item::Skipped(count) => 1 + varint::len(*count),
            Item::Missing => 1,
            Item::Deferred(size) => 1 + varint::len(*size),
        }
    }

    /// Decodes one item from the front of `bytes`: `Ok(None)` when more bytes
    /// are needed, else the item and the bytes it used.
    pub fn decode_prefix(bytes: &[u8]) -> Result<Option<(Self, usize)>, CodecError> {
        let mut r = Reader::new(bytes);
        let Ok(tag) = r.u8() else {
            return Ok(None);
        };
        let item = match tag {
            0 => {
                let len = match varint::get_at_most(&mut r, MAX_ITEM_BYTES, "item") {
                    Err(CodecError::Truncated) => return Ok(None),
                    other => other?,
                };
                match r.take(len) {
                    Ok(data) => Item::Data(data.to_vec()),
                    Err(_) => return Ok(None),
                }
            }
            1 => match varint::get(&mut r) {
                Err(CodecError::Truncated) => return Ok(None),
                Ok(0) => return Err(CodecError::Invalid("empty skip run")),
                other => Item::Skipped(other?),
            },
            2 => Item::Missing,
            3 => match varint::get(&mut r) {
                Err(CodecError::Truncated) => return Ok(None),
                other => Item::Deferred(other?),
            },
            _ => return Err(CodecError::Invalid("item tag")),
        };
        Ok(Some((item, bytes.len() - r.remaining())))
    }
}

/// Cuts a byte stream into items. Holds at most one incomplete item plus the
/// last chunk pushed, so its memory is bounded by [`MAX_ITEM_BYTES`] plus the
/// caller's chunk size whatever the peer sends.
#[derive(Debug, Default)]
pub struct ItemDecoder {
    buf: Vec<u8>,
    start: usize,
}

impl ItemDecoder {
    /// An empty decoder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends bytes read from the stream.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.start > 0 && self.start * 2 >= self.buf.len() {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete item, if the bytes pushed so far hold one.
    pub fn next_item(&mut self) -> Result<Option<Item>, CodecError> {
        match Item::decode_prefix(&self.buf[self.start..])? {
            Some((item, used)) => {
                self.start += used;
                Ok(Some(item))
            }
            None => Ok(None),
        }
    }

    /// Bytes received but not yet part of a complete item (non-zero at the end
    /// of a stream means it was cut inside an item).
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all() -> Vec<Item> {
        vec![
            Item::Data(b"node bytes".to_vec()),
            Item::Skipped(1),
            Item::Skipped(300),
            Item::Missing,
            Item::Deferred(1 << 40),
            Item::Data(vec![]),
        ]
    }

    #[test]
    fn items_survive_any_chunking() {
        let mut wire = Vec::new();
        for item in all() {
            let before = wire.len();
            item.encode(&mut wire);
            assert_eq!(wire.len() - before, item.encoded_len());
        }
        for chunk in [1, 2, 3, 7, wire.len()] {
            let mut d = ItemDecoder::new();
            let mut out = Vec::new();
            for piece in wire.chunks(chunk) {
                d.push(piece);
                while let Some(item) = d.next_item().unwrap() {
                    out.push(item);
                }
            }
            assert_eq!(out, all(), "chunk {chunk}");
            assert_eq!(d.buffered(), 0);
        }
    }

    #[test]
    fn an_oversize_length_is_refused_before_the_bytes_arrive() {
        let mut wire = vec![0];
        varint::put(&mut wire, (MAX_ITEM_BYTES + 1) as u64);
        let mut d = ItemDecoder::new();
        d.push(&wire);
        assert!(matches!(
            d.next_item(),
            Err(CodecError::TooLarge { what: "item", .. })
        ));
    }

    #[test]
    fn unknown_tags_and_non_minimal_lengths_are_refused() {
        assert_eq!(
            Item::decode_prefix(&[9]),
            Err(CodecError::Invalid("item tag"))
        );
        assert_eq!(
            Item::decode_prefix(&[0, 0x80, 0x00]),
            Err(CodecError::NonMinimalVarint)
        );
        assert_eq!(Item::decode_prefix(&[0, 5, 1, 2]), Ok(None));
        assert_eq!(
            Item::decode_prefix(&[1, 0]),
            Err(CodecError::Invalid("empty skip run"))
        );
    }
}
