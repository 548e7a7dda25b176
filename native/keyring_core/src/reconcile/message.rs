//! The negentropy v1 wire format: a typed, streaming decoder (every range is
//! checked before it is used) and the encoder.
//!
//! ```text
//! Message  = version:u8(=0x61) Range*
//! Range    = upper:Bound mode:Varint payload
//! Bound    = timestamp:Varint (0 = infinity, else 1 + delta from the previous
//!            bound of the message) prefix_len:Varint(<= 32) id_prefix
//! payload  = (mode 0) nothing | (mode 1) fingerprint:[16]
//!          | (mode 2) count:Varint id:[32]*count
//! ```
//!
//! Beyond the specification's grammar the decoder refuses what no honest
//! peer sends: non-canonical varints, a finite timestamp that overflows,
//! bounds that go backwards, and anything after the infinity bound.

use super::items::Item;
use super::{varint, Id, ReconcileError, FINGERPRINT_LEN, ID_LEN, PROTOCOL_VERSION};

/// A range bound: a timestamp and an id prefix (the rest taken as zeros).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bound {
    /// The timestamp (`u64::MAX` is infinity).
    pub timestamp: u64,
    /// How many bytes of `id` are sent (0..=32).
    pub prefix_len: u8,
    /// The id prefix, zero-padded.
    pub id: Id,
}

impl Bound {
    /// The start of everything: timestamp 0, empty prefix.
    pub const ZERO: Bound = Bound {
        timestamp: 0,
        prefix_len: 0,
        id: [0; ID_LEN],
    };
    /// The end of everything.
    pub const INFINITY: Bound = Bound {
        timestamp: u64::MAX,
        prefix_len: 0,
        id: [0; ID_LEN],
    };

    /// Whether `item` sorts below this bound.
    pub(crate) fn is_above(&self, item: &Item) -> bool {
        (item.timestamp, &item.id) < (self.timestamp, &self.id)
    }

    fn key(&self) -> (u64, &Id) {
        (self.timestamp, &self.id)
    }

    /// The shortest bound that separates `prev` from `curr` (`prev < curr`).
    pub(crate) fn between(prev: &Item, curr: &Item) -> Bound {
        if prev.timestamp != curr.timestamp {
            return Bound {
                timestamp: curr.timestamp,
                ..Bound::ZERO
            };
        }
        let shared = prev
            .id
            .iter()
            .zip(&curr.id)
            .take_while(|(a, b)| a == b)
            .count();
        let len = (shared + 1).min(ID_LEN);
        let mut id = [0u8; ID_LEN];
        id[..len].copy_from_slice(&curr.id[..len]);
        Bound {
            timestamp: curr.timestamp,
            prefix_len: len as u8,
            id,
        }
    }

    /// The bound just at `item` (its full id).
    pub(crate) fn at(item: &Item) -> Bound {
        Bound {
            timestamp: item.timestamp,
            prefix_len: ID_LEN as u8,
            id: item.id,
        }
    }
}

/// What a range asks of its receiver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Payload<'a> {
    /// Nothing more to do for this range.
    Skip,
    /// The digest of the sender's ids in the range.
    Fingerprint([u8; FINGERPRINT_LEN]),
    /// All of the sender's ids in the range.
    IdList(IdList<'a>),
}

/// The ids of an `IdList` payload (borrowed from the message).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdList<'a>(&'a [u8]);

impl<'a> IdList<'a> {
    /// Number of ids.
    pub fn len(&self) -> usize {
        self.0.len() / ID_LEN
    }

    /// Whether it lists none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The ids, in message order.
    pub fn iter(&self) -> impl Iterator<Item = Id> + 'a {
        self.0.chunks_exact(ID_LEN).map(|c| {
            let mut id = [0u8; ID_LEN];
            id.copy_from_slice(c);
            id
        })
    }
}

/// One decoded range: its upper bound and payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range<'a> {
    /// Exclusive upper bound (the lower bound is the previous range's upper).
    pub upper: Bound,
    /// What to do with it.
    pub payload: Payload<'a>,
}

/// A message opened for reading.
#[derive(Debug)]
pub enum Opened<'a> {
    /// A version 1 message: its ranges, decoded one at a time.
    V1(Ranges<'a>),
    /// Another version of the protocol (`0x60..=0x6f`).
    OtherVersion(u8),
}

/// Checks the length and version byte of `bytes`.
pub fn open(bytes: &[u8], max_len: usize) -> Result<Opened<'_>, ReconcileError> {
    if bytes.len() > max_len {
        return Err(ReconcileError::TooLarge {
            len: bytes.len(),
            max: max_len,
        });
    }
    match bytes.first() {
        None => Err(ReconcileError::Malformed("empty message")),
        Some(&PROTOCOL_VERSION) => Ok(Opened::V1(Ranges {
            rest: &bytes[1..],
            last_timestamp: 0,
            prev: Bound::ZERO,
        })),
        Some(&v @ 0x60..=0x6f) => Ok(Opened::OtherVersion(v)),
        Some(_) => Err(ReconcileError::Malformed("not a negentropy message")),
    }
}

/// The ranges of a version 1 message, each checked as it is read.
#[derive(Debug)]
pub struct Ranges<'a> {
    rest: &'a [u8],
    last_timestamp: u64,
    prev: Bound,
}

impl<'a> Ranges<'a> {
    fn bound(&mut self) -> Result<Bound, ReconcileError> {
        let bad = ReconcileError::Malformed;
        let timestamp = match varint::take(&mut self.rest)? {
            0 => u64::MAX,
            n => match self.last_timestamp.checked_add(n - 1) {
                Some(t) if t != u64::MAX => t,
                _ => return Err(bad("timestamp overflows")),
            },
        };
        self.last_timestamp = timestamp;
        let len = varint::take(&mut self.rest)?;
        if len > ID_LEN as u64 {
            return Err(bad("id prefix longer than 32 bytes"));
        }
        let len = len as usize;
        let prefix = self.take(len)?;
        let mut id = [0u8; ID_LEN];
        id[..len].copy_from_slice(prefix);
        Ok(Bound {
            timestamp,
            prefix_len: len as u8,
            id,
        })
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], ReconcileError> {
        if n > self.rest.len() {
            return Err(ReconcileError::Malformed("truncated"));
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    fn range(&mut self) -> Result<Range<'a>, ReconcileError> {
        let bad = ReconcileError::Malformed;
        if self.prev.timestamp == u64::MAX {
            return Err(bad("a range after the infinity bound"));
        }
        let upper = self.bound()?;
        if upper.key() < self.prev.key() {
            return Err(bad("ranges out of order"));
        }
        self.prev = upper;
        let payload = match varint::take(&mut self.rest)? {
            0 => Payload::Skip,
            1 => {
                let mut fp = [0u8; FINGERPRINT_LEN];
                fp.copy_from_slice(self.take(FINGERPRINT_LEN)?);
                Payload::Fingerprint(fp)
            }
            2 => {
                let count = varint::take(&mut self.rest)?;
                if count > (self.rest.len() / ID_LEN) as u64 {
                    return Err(bad("id list longer than the message"));
                }
                Payload::IdList(IdList(self.take(count as usize * ID_LEN)?))
            }
            _ => return Err(bad("unknown mode")),
        };
        Ok(Range { upper, payload })
    }
}

impl<'a> Iterator for Ranges<'a> {
    type Item = Result<Range<'a>, ReconcileError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let out = self.range();
        if out.is_err() {
            self.rest = &[];
        }
        Some(out)
    }
}

/// Builds a message; bounds are delta-encoded against the previous one.
#[derive(Debug)]
pub(crate) struct Writer {
    out: Vec<u8>,
    last_timestamp: u64,
}

impl Writer {
    pub(crate) fn new() -> Self {
        Self {
            out: vec![PROTOCOL_VERSION],
            last_timestamp: 0,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.out.len()
    }

    /// Drops everything written after `len` bytes. Only an infinity bound
    /// may follow, whose encoding does not depend on earlier bounds.
    pub(crate) fn truncate(&mut self, len: usize) {
        self.out.truncate(len);
    }

    fn bound(&mut self, b: &Bound) {
        if b.timestamp == u64::MAX {
            self.last_timestamp = u64::MAX;
            varint::put(&mut self.out, 0);
        } else {
            let delta = b.timestamp.saturating_sub(self.last_timestamp);
            self.last_timestamp = b.timestamp;
            varint::put(&mut self.out, delta.saturating_add(1));
        }
        varint::put(&mut self.out, u64::from(b.prefix_len));
        self.out.extend_from_slice(&b.id[..b.prefix_len as usize]);
    }

    pub(crate) fn skip(&mut self, upper: &Bound) {
        self.bound(upper);
        varint::put(&mut self.out, 0);
    }

    pub(crate) fn fingerprint(&mut self, upper: &Bound, fp: &[u8; FINGERPRINT_LEN]) {
        self.bound(upper);
        varint::put(&mut self.out, 1);
        self.out.extend_from_slice(fp);
    }

    pub(crate) fn id_list<'i>(
        &mut self,
        upper: &Bound,
        ids: impl ExactSizeIterator<Item = &'i Id>,
    ) {
        self.bound(upper);
        varint::put(&mut self.out, 2);
        varint::put(&mut self.out, ids.len() as u64);
        for id in ids {
            self.out.extend_from_slice(id);
        }
    }

    pub(crate) fn finish(self) -> Vec<u8> {
        self.out
    }
}
