//! The two roles of a reconciliation. The initiator sends the first message
//! and, as answers arrive, learns which ids it has that the responder lacks
//! (`have`) and which it lacks (`need`). The responder keeps no state between
//! messages: each answer depends only on the query and its items.
//!
//! Splitting follows the reference implementations (16 buckets of equal
//! item counts; ranges under 32 items are sent as id lists), so for the same
//! items and frame limit the messages are byte for byte the reference's.

use std::collections::HashSet;

use super::items::Items;
use super::message::{open, Bound, IdList, Opened, Payload, Writer};
use super::{Id, ReconcileError, PROTOCOL_VERSION};

const BUCKETS: usize = 16;
const ID_LIST_BELOW: usize = 2 * BUCKETS;
/// Room kept free under the frame limit for the closing range.
const CLOSING_ROOM: usize = 200;
/// The smallest frame limit the protocol allows.
pub const MIN_FRAME_LIMIT: usize = 4096;

/// Sizes that bound a reconciliation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// Largest message this side writes (at least 4096). Ranges that do not
    /// fit are folded into one closing fingerprint and handled next round.
    pub frame_limit: usize,
    /// Largest message accepted from the other side.
    pub max_message: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            frame_limit: 8 << 20,
            max_message: 16 << 20,
        }
    }
}

impl Config {
    fn check(&self) -> Result<(), ReconcileError> {
        if self.frame_limit < MIN_FRAME_LIMIT {
            return Err(ReconcileError::FrameLimitTooSmall);
        }
        Ok(())
    }
}

/// The side that starts a reconciliation and learns the differences.
#[derive(Debug)]
pub struct Initiator<'a> {
    items: &'a Items,
    config: Config,
    initiated: bool,
    reported: HashSet<Id>,
}

impl<'a> Initiator<'a> {
    /// A session over `items`.
    pub fn new(items: &'a Items, config: Config) -> Result<Self, ReconcileError> {
        config.check()?;
        Ok(Self {
            items,
            config,
            initiated: false,
            reported: HashSet::new(),
        })
    }

    /// The first message: the whole universe, split.
    pub fn initiate(&mut self) -> Result<Vec<u8>, ReconcileError> {
        if self.initiated {
            return Err(ReconcileError::AlreadyInitiated);
        }
        self.initiated = true;
        let mut w = Writer::new();
        split(self.items, &mut w, 0, self.items.len(), &Bound::INFINITY);
        Ok(w.finish())
    }

    /// Handles the responder's answer: adds what was learnt to `have` and
    /// `need` (each id once per session) and returns the next message, or
    /// `None` when the reconciliation is complete.
    pub fn reconcile(
        &mut self,
        answer: &[u8],
        have: &mut Vec<Id>,
        need: &mut Vec<Id>,
    ) -> Result<Option<Vec<u8>>, ReconcileError> {
        let mut learnt = Learnt {
            have,
            need,
            reported: &mut self.reported,
        };
        let out = process(self.items, &self.config, answer, Some(&mut learnt))?;
        Ok((out.len() > 1).then_some(out))
    }
}

/// The side that answers. Stateless: every answer depends only on the query.
#[derive(Debug, Clone, Copy)]
pub struct Responder<'a> {
    items: &'a Items,
    config: Config,
}

impl<'a> Responder<'a> {
    /// A responder over `items`.
    pub fn new(items: &'a Items, config: Config) -> Result<Self, ReconcileError> {
        config.check()?;
        Ok(Self { items, config })
    }

    /// The answer to one query. A query of another protocol version is
    /// answered with the single byte of the version this side speaks.
    pub fn respond(&self, query: &[u8]) -> Result<Vec<u8>, ReconcileError> {
        process(self.items, &self.config, query, None)
    }
}

struct Learnt<'s> {
    have: &'s mut Vec<Id>,
    need: &'s mut Vec<Id>,
    reported: &'s mut HashSet<Id>,
}

impl Learnt<'_> {
    fn diff(&mut self, ours: &[super::Item], theirs: &IdList<'_>) {
        let mut theirs: HashSet<Id> = theirs.iter().collect();
        for item in ours {
            if !theirs.remove(&item.id) && self.reported.insert(item.id) {
                self.have.push(item.id);
            }
        }
        let mut need: Vec<Id> = theirs.into_iter().collect();
        need.sort_unstable();
        for id in need {
            if self.reported.insert(id) {
                self.need.push(id);
            }
        }
    }
}

fn process(
    items: &Items,
    config: &Config,
    message: &[u8],
    mut learnt: Option<&mut Learnt<'_>>,
) -> Result<Vec<u8>, ReconcileError> {
    let ranges = match open(message, config.max_message)? {
        Opened::V1(ranges) => ranges,
        Opened::OtherVersion(v) if learnt.is_some() => {
            return Err(ReconcileError::UnsupportedVersion(v))
        }
        Opened::OtherVersion(_) => return Ok(vec![PROTOCOL_VERSION]),
    };
    let limit = config.frame_limit - CLOSING_ROOM;
    let n = items.len();
    let mut w = Writer::new();
    let (mut prev_bound, mut prev_index, mut skip) = (Bound::ZERO, 0usize, false);
    // Everything below `emitted` is covered by ranges already written.
    let mut emitted = 0usize;
    for range in ranges {
        let range = range?;
        let checkpoint = w.len();
        let lower = prev_index;
        let mut upper = items.lower_bound(prev_index, &range.upper);
        let mut wrote = false;
        match range.payload {
            Payload::Skip => skip = true,
            Payload::Fingerprint(theirs) => {
                if theirs == items.fingerprint(lower, upper) {
                    skip = true;
                } else {
                    flush_skip(&mut w, &mut skip, &prev_bound);
                    split(items, &mut w, lower, upper, &range.upper);
                    wrote = true;
                }
            }
            Payload::IdList(theirs) => {
                if let Some(learnt) = learnt.as_deref_mut() {
                    learnt.diff(&items.as_slice()[lower..upper], &theirs);
                    skip = true;
                } else {
                    // Ids that fit under the limit (counted as the reference does).
                    let fit = if checkpoint > limit {
                        0
                    } else {
                        (limit - checkpoint) / super::ID_LEN + 1
                    };
                    let mut end = range.upper;
                    if upper - lower > fit {
                        upper = lower + fit;
                        end = Bound::at(items.get(upper));
                    }
                    flush_skip(&mut w, &mut skip, &prev_bound);
                    w.id_list(&end, items.as_slice()[lower..upper].iter().map(|i| &i.id));
                    emitted = upper;
                }
            }
        }
        if w.len() > limit {
            if wrote {
                w.truncate(checkpoint);
            }
            w.fingerprint(&Bound::INFINITY, &items.fingerprint(emitted, n));
            break;
        }
        if wrote {
            emitted = upper;
        }
        prev_index = upper;
        prev_bound = range.upper;
    }
    Ok(w.finish())
}

fn flush_skip(w: &mut Writer, skip: &mut bool, prev_bound: &Bound) {
    if std::mem::take(skip) {
        w.skip(prev_bound);
    }
}

/// Splits `items[lower..upper]` (which ends at `upper_bound`) into an id list
/// when small, otherwise into [`BUCKETS`] fingerprinted ranges.
fn split(items: &Items, w: &mut Writer, lower: usize, upper: usize, upper_bound: &Bound) {
    let n = upper - lower;
    if n < ID_LIST_BELOW {
        w.id_list(
            upper_bound,
            items.as_slice()[lower..upper].iter().map(|i| &i.id),
        );
        return;
    }
    let (per, extra) = (n / BUCKETS, n % BUCKETS);
    let mut curr = lower;
    for i in 0..BUCKETS {
        let size = per + usize::from(i < extra);
        let fp = items.fingerprint(curr, curr + size);
        curr += size;
        let bound = if curr == upper {
            *upper_bound
        } else {
            Bound::between(items.get(curr - 1), items.get(curr))
        };
        w.fingerprint(&bound, &fp);
    }
}
