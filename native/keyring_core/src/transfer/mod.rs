//! The blob transfer protocol's wire codec (mesh protocol 3), I/O-free.
//!
//! **Request** (one per stream, the body of a wire `Request` frame named
//! [`GET`] or [`LIST`]):
//! - `GET`: a count (u16, at most [`MAX_ITEMS`]) then per item the cid
//!   (32 bytes), a flags byte (bit 0: [`Item::proof`]) and a group set
//!   ([`GroupRanges`] wire form).
//! - `LIST`: a cursor (a tag name: u8 length, at most 255 bytes) and a limit
//!   (u16, at most [`MAX_LIST`]).
//!
//! **GET response**: raw bytes on the stream, per item in request order:
//! a status byte ([`FOUND`] or [`NOT_FOUND`]); for a found blob, with the
//! proof flag, the verified stream of the blob's *last* group (which proves
//! its size) and then the verified stream of the requested groups minus the
//! last; without the flag, the verified stream of the requested groups. Each
//! verified stream is self-delimiting once its ranges and size are known, so
//! no lengths are sent and the provider can stream straight from its store.
//! `NOT_FOUND` is the answer for an absent blob and for a blob not shared in
//! the keyring of the connection alike: a guesser learns nothing.
//!
//! **LIST response**: a `Response` frame whose body is a count (u16) and per
//! entry a name (u8 length + bytes), a cid and a size (u64).
//!
//! [`ResponseDecoder`] checks a GET response as it arrives: every group is
//! verified against its cid before it is handed out, the first bad byte
//! fails the whole stream (the provider is lying), and memory stays at one
//! group per decoder.

use thiserror::Error;

use crate::hash::Digest;
use crate::verified::{DecodeError, Decoder, GroupRanges, RangesError, Step, Tree, VerifiedGroup};

/// Request name: fetch groups of blobs.
pub const GET: &str = "get";
/// Request name: list the blobs shared into the connection's keyring.
pub const LIST: &str = "list";
/// Most items in one GET request.
pub const MAX_ITEMS: usize = 4096;
/// Most entries in one LIST answer.
pub const MAX_LIST: usize = 4096;
/// Status byte: the blob follows.
pub const FOUND: u8 = 0;
/// Status byte: absent or not shared here (indistinguishable on purpose).
pub const NOT_FOUND: u8 = 1;
/// Longest tag name in a LIST cursor or entry.
pub const MAX_NAME: usize = 255;

const FLAG_PROOF: u8 = 1;

/// Why a request or a LIST answer was refused.
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TransferError {
    /// The bytes end early.
    #[error("truncated")]
    Truncated,
    /// More items or entries than the limit.
    #[error("too many items")]
    TooMany,
    /// A flags byte with unknown bits.
    #[error("unknown flags")]
    BadFlags,
    /// A group set is malformed.
    #[error("bad group set: {0}")]
    Ranges(RangesError),
    /// Bytes after the message.
    #[error("trailing bytes")]
    TrailingBytes,
    /// A name over [`MAX_NAME`].
    #[error("name too long")]
    NameTooLong,
    /// An item's status byte is neither FOUND nor NOT_FOUND.
    #[error("bad status byte {0}")]
    BadStatus(u8),
    /// A verified stream failed: the provider sent bytes that do not match.
    #[error("item {item}: {error}")]
    Stream {
        /// Index of the item in the request.
        item: usize,
        /// What failed (names the first group not verified).
        error: DecodeError,
    },
}

/// One blob of a GET request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// The blob.
    pub cid: Digest,
    /// Whether the provider sends the size proof (the last group) first.
    pub proof: bool,
    /// The groups wanted (with `proof`, the last group need not be in it).
    pub ranges: GroupRanges,
}

/// Encodes a GET request body.
pub fn encode_get(items: &[Item]) -> Result<Vec<u8>, TransferError> {
    if items.len() > MAX_ITEMS {
        return Err(TransferError::TooMany);
    }
    let mut out = Vec::with_capacity(2 + items.len() * 36);
    out.extend_from_slice(&(items.len() as u16).to_be_bytes());
    for item in items {
        out.extend_from_slice(&item.cid);
        out.push(if item.proof { FLAG_PROOF } else { 0 });
        out.extend_from_slice(&item.ranges.encode());
    }
    Ok(out)
}

/// Decodes a GET request body (all of `bytes`).
pub fn decode_get(bytes: &[u8]) -> Result<Vec<Item>, TransferError> {
    let count = bytes.get(..2).ok_or(TransferError::Truncated)?;
    let count = usize::from(u16::from_be_bytes([count[0], count[1]]));
    if count > MAX_ITEMS {
        return Err(TransferError::TooMany);
    }
    let mut pos = 2;
    let mut items = Vec::with_capacity(count.min(bytes.len() / 35 + 1));
    for _ in 0..count {
        let cid: Digest = bytes
            .get(pos..pos + 32)
            .ok_or(TransferError::Truncated)?
            .try_into()
            .map_err(|_| TransferError::Truncated)?;
        pos += 32;
        let flags = *bytes.get(pos).ok_or(TransferError::Truncated)?;
        pos += 1;
        if flags & !FLAG_PROOF != 0 {
            return Err(TransferError::BadFlags);
        }
        let (ranges, used) =
            GroupRanges::decode_prefix(&bytes[pos..]).map_err(TransferError::Ranges)?;
        pos += used;
        items.push(Item {
            cid,
            proof: flags & FLAG_PROOF != 0,
            ranges,
        });
    }
    if pos != bytes.len() {
        return Err(TransferError::TrailingBytes);
    }
    Ok(items)
}

/// The groups a provider streams for `item` of a blob of `size` bytes
/// (after the proof, if asked for).
pub fn data_ranges(item: &Item, size: u64) -> GroupRanges {
    let groups = Tree::new(size).groups();
    let ranges = item.ranges.clip(groups);
    if item.proof {
        ranges.difference(&GroupRanges::from(groups.saturating_sub(1)..groups))
    } else {
        ranges
    }
}

/// A LIST request: entries after tag name `after`, at most `limit`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListRequest {
    /// Cursor: the last name of the previous page (empty: from the start).
    pub after: Vec<u8>,
    /// Most entries wanted.
    pub limit: u16,
}

impl ListRequest {
    /// Its wire form.
    pub fn encode(&self) -> Result<Vec<u8>, TransferError> {
        if self.after.len() > MAX_NAME {
            return Err(TransferError::NameTooLong);
        }
        let mut out = Vec::with_capacity(3 + self.after.len());
        out.push(self.after.len() as u8);
        out.extend_from_slice(&self.after);
        out.extend_from_slice(&self.limit.to_be_bytes());
        Ok(out)
    }

    /// Decodes all of `bytes`; the limit is capped at [`MAX_LIST`].
    pub fn decode(bytes: &[u8]) -> Result<Self, TransferError> {
        let len = usize::from(*bytes.first().ok_or(TransferError::Truncated)?);
        let after = bytes.get(1..1 + len).ok_or(TransferError::Truncated)?;
        let limit = bytes
            .get(1 + len..3 + len)
            .ok_or(TransferError::Truncated)?;
        if bytes.len() != 3 + len {
            return Err(TransferError::TrailingBytes);
        }
        let limit = u16::from_be_bytes([limit[0], limit[1]]).min(MAX_LIST as u16);
        Ok(Self {
            after: after.to_vec(),
            limit,
        })
    }
}

/// One entry of a LIST answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListEntry {
    /// The share tag's name.
    pub name: Vec<u8>,
    /// The blob.
    pub cid: Digest,
    /// Its size (the provider's claim: verified when fetched).
    pub size: u64,
}

/// Encodes a LIST answer body.
pub fn encode_list(entries: &[ListEntry]) -> Result<Vec<u8>, TransferError> {
    if entries.len() > MAX_LIST {
        return Err(TransferError::TooMany);
    }
    let mut out = Vec::with_capacity(2 + entries.len() * 48);
    out.extend_from_slice(&(entries.len() as u16).to_be_bytes());
    for e in entries {
        if e.name.len() > MAX_NAME {
            return Err(TransferError::NameTooLong);
        }
        out.push(e.name.len() as u8);
        out.extend_from_slice(&e.name);
        out.extend_from_slice(&e.cid);
        out.extend_from_slice(&e.size.to_be_bytes());
    }
    Ok(out)
}

/// Decodes a LIST answer body (all of `bytes`).
pub fn decode_list(bytes: &[u8]) -> Result<Vec<ListEntry>, TransferError> {
    let count = bytes.get(..2).ok_or(TransferError::Truncated)?;
    let count = usize::from(u16::from_be_bytes([count[0], count[1]]));
    if count > MAX_LIST {
        return Err(TransferError::TooMany);
    }
    let mut pos = 2;
    let mut out = Vec::with_capacity(count.min(bytes.len() / 41 + 1));
    for _ in 0..count {
        let len = usize::from(*bytes.get(pos).ok_or(TransferError::Truncated)?);
        pos += 1;
        let name = bytes.get(pos..pos + len).ok_or(TransferError::Truncated)?;
        pos += len;
        let cid: Digest = bytes
            .get(pos..pos + 32)
            .ok_or(TransferError::Truncated)?
            .try_into()
            .map_err(|_| TransferError::Truncated)?;
        pos += 32;
        let size = bytes.get(pos..pos + 8).ok_or(TransferError::Truncated)?;
        pos += 8;
        out.push(ListEntry {
            name: name.to_vec(),
            cid,
            size: u64::from_be_bytes(size.try_into().map_err(|_| TransferError::Truncated)?),
        });
    }
    if pos != bytes.len() {
        return Err(TransferError::TrailingBytes);
    }
    Ok(out)
}

/// What [`ResponseDecoder::push`] got to.
#[derive(Debug, PartialEq, Eq)]
pub enum Event<'a> {
    /// Push again: with the rest of the input if any is left, else with
    /// the next bytes that arrive.
    NeedMore,
    /// Item `item` is absent (or not shared) at this provider.
    NotFound {
        /// Index in the request.
        item: usize,
    },
    /// Item `item` is found: its streams follow.
    Found {
        /// Index in the request.
        item: usize,
    },
    /// A verified group of item `item`. With the proof flag, the item's
    /// first group is its last one ([`VerifiedGroup::is_last`]), which
    /// proves [`VerifiedGroup::size`].
    Group {
        /// Index in the request.
        item: usize,
        /// The group.
        group: VerifiedGroup<'a>,
    },
    /// Item `item` is complete.
    ItemDone {
        /// Index in the request.
        item: usize,
    },
    /// Every item is answered; more bytes would be a protocol violation.
    Done,
}

#[derive(Debug)]
enum State {
    Status,
    /// Reading the proof's size header.
    ProofHeader([u8; 8], usize),
    Proof(Box<Decoder>),
    Data(Box<Decoder>),
}

/// Checks a GET response as its bytes arrive (split anywhere). See the
/// module docs.
#[derive(Debug)]
pub struct ResponseDecoder {
    items: Vec<Item>,
    /// Known sizes (from a partial blob the receiver has), per item.
    sizes: Vec<Option<u64>>,
    at: usize,
    state: State,
    /// The current verified stream has ended (the state moves on at the
    /// next push).
    stream_done: bool,
    failed: Option<TransferError>,
}

impl ResponseDecoder {
    /// A decoder for the response to `items`; `sizes[i]` is item `i`'s size
    /// when the receiver knows it already (a stream claiming another is
    /// refused at once). An item without the proof flag and without a size
    /// fails as soon as it is found.
    pub fn new(items: Vec<Item>, sizes: Vec<Option<u64>>) -> Self {
        let mut sizes = sizes;
        sizes.resize(items.len(), None);
        Self {
            items,
            sizes,
            at: 0,
            state: State::Status,
            stream_done: false,
            failed: None,
        }
    }

    /// The request's items.
    pub fn items(&self) -> &[Item] {
        &self.items
    }

    /// The item being answered (`items().len()` when done).
    pub fn current(&self) -> usize {
        self.at
    }

    /// Whether every item was answered.
    pub fn is_done(&self) -> bool {
        let ending = self.stream_done && matches!(self.state, State::Data(_));
        self.at + usize::from(ending) >= self.items.len()
    }

    /// The next group of the current item the stream will deliver.
    pub fn next_group(&self) -> Option<u64> {
        match &self.state {
            State::Proof(d) | State::Data(d) => d.next_group(),
            _ => None,
        }
    }

    fn fail(&mut self, e: TransferError) -> TransferError {
        self.failed = Some(e);
        e
    }

    fn stream_error(&mut self, error: DecodeError) -> TransferError {
        let item = self.at;
        self.fail(TransferError::Stream { item, error })
    }

    fn data_decoder(&self, size: u64) -> Decoder {
        let item = &self.items[self.at];
        Decoder::new(item.cid, data_ranges(item, size), Some(size))
    }

    /// Consumes bytes from the front of `input`; returns how many it took
    /// and what it got to. Call again with the rest after anything but
    /// [`Event::NeedMore`] and [`Event::Done`].
    pub fn push<'a>(&'a mut self, input: &'a [u8]) -> Result<(usize, Event<'a>), TransferError> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        if std::mem::take(&mut self.stream_done) {
            let in_proof = matches!(self.state, State::Proof(_));
            self.advance(in_proof, self.at)?;
        }
        let item = self.at;
        if item >= self.items.len() {
            return Ok((0, Event::Done));
        }
        match &mut self.state {
            State::Status => {
                let Some(&status) = input.first() else {
                    return Ok((0, Event::NeedMore));
                };
                match status {
                    NOT_FOUND => {
                        self.at += 1;
                        Ok((1, Event::NotFound { item }))
                    }
                    FOUND if self.items[item].proof => {
                        self.state = State::ProofHeader([0; 8], 0);
                        Ok((1, Event::Found { item }))
                    }
                    FOUND => match self.sizes[item] {
                        Some(size) => {
                            self.state = State::Data(Box::new(self.data_decoder(size)));
                            Ok((1, Event::Found { item }))
                        }
                        None => Err(self.stream_error(DecodeError::Truncated { group: 0 })),
                    },
                    other => Err(self.fail(TransferError::BadStatus(other))),
                }
            }
            State::ProofHeader(header, have) => {
                let take = (8 - *have).min(input.len());
                header[*have..*have + take].copy_from_slice(&input[..take]);
                *have += take;
                if *have < 8 {
                    return Ok((take, Event::NeedMore));
                }
                let claimed = u64::from_le_bytes(*header);
                if let Some(expected) = self.sizes[item].filter(|&e| e != claimed) {
                    return Err(self.stream_error(DecodeError::SizeMismatch { expected, claimed }));
                }
                let groups = Tree::new(claimed).groups();
                let mut proof = Decoder::new(
                    self.items[item].cid,
                    GroupRanges::from(groups.saturating_sub(1)..groups),
                    Some(claimed),
                );
                let header = *header;
                // The decoder reads the size header itself.
                match proof.push(&header) {
                    Ok((8, Step::NeedMore)) => {}
                    Ok(_) => return Err(self.stream_error(DecodeError::Truncated { group: 0 })),
                    Err(e) => return Err(self.stream_error(e)),
                }
                self.state = State::Proof(Box::new(proof));
                Ok((take, Event::NeedMore))
            }
            State::Proof(_) | State::Data(_) => self.push_stream(input),
        }
    }

    fn push_stream<'a>(&'a mut self, input: &'a [u8]) -> Result<(usize, Event<'a>), TransferError> {
        let item = self.at;
        let in_proof = matches!(self.state, State::Proof(_));
        let (State::Proof(decoder) | State::Data(decoder)) = &mut self.state else {
            return Ok((0, Event::NeedMore));
        };
        match decoder.push(input) {
            Ok((used, Step::Group(group))) => Ok((used, Event::Group { item, group })),
            Ok((used, Step::NeedMore)) => Ok((used, Event::NeedMore)),
            // The state moves on at the next push (the decoder is borrowed
            // here); a proof is always followed by the data stream's header.
            Ok((used, Step::Done)) => {
                self.stream_done = true;
                Ok((
                    used,
                    if in_proof {
                        Event::NeedMore
                    } else {
                        Event::ItemDone { item }
                    },
                ))
            }
            Err(error) => {
                let e = TransferError::Stream { item, error };
                self.failed = Some(e);
                Err(e)
            }
        }
    }

    fn advance(&mut self, in_proof: bool, item: usize) -> Result<(), TransferError> {
        if in_proof {
            let size = match &self.state {
                State::Proof(d) if d.size_verified() => d.tree().map(|t| t.size()),
                _ => None,
            };
            let Some(size) = size else {
                return Err(self.stream_error(DecodeError::Truncated { group: 0 }));
            };
            self.sizes[item] = Some(size);
            self.state = State::Data(Box::new(self.data_decoder(size)));
        } else {
            self.state = State::Status;
            self.at += 1;
        }
        Ok(())
    }
}

/// The provider's side of one found item: the verified streams it sends
/// after the `FOUND` byte, as [`crate::verified::Encoder`]s in order (the
/// proof's, if asked for, then the data's).
pub fn item_encoders(item: &Item, size: u64) -> Vec<crate::verified::Encoder> {
    use crate::verified::Encoder;
    let mut out = Vec::with_capacity(2);
    if item.proof {
        let groups = Tree::new(size).groups();
        out.push(Encoder::new(
            item.cid,
            size,
            &GroupRanges::from(groups.saturating_sub(1)..groups),
        ));
    }
    out.push(Encoder::new(item.cid, size, &data_ranges(item, size)));
    out
}

/// The whole answer to `items` from blobs held in memory (`find` gives a
/// blob's bytes and outboard, `None`: not found). For tests and small
/// in-memory providers.
pub fn encode_response_all<'b>(
    items: &[Item],
    find: impl Fn(&Digest) -> Option<(&'b [u8], &'b [u8])>,
) -> Result<Vec<u8>, crate::verified::EncodeError> {
    let mut out = Vec::new();
    for item in items {
        match find(&item.cid) {
            None => out.push(NOT_FOUND),
            Some((data, outboard)) => {
                out.push(FOUND);
                for enc in item_encoders(item, data.len() as u64) {
                    out.extend(enc.encode_all(data, outboard)?);
                }
            }
        }
    }
    Ok(out)
}
