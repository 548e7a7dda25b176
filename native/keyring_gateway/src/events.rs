//! The event log behind `/v1/events`: a bounded ring of recent events with
//! monotonic ids, shared by every SSE client. A client is a cursor into it,
//! so fan-out costs no copy per client and a slow client costs no memory: it
//! falls off the back of the ring and is told how much it missed (`lagged`).
//! Ids carry an epoch (random per start) so a client resuming across a
//! restart is told it lagged instead of silently skipping events.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::sync::Arc;

use bytes::Bytes;

/// Largest event data accepted, bytes of JSON.
pub const MAX_EVENT_DATA: usize = 64 * 1024;
/// Longest event type (`presence.down`, `mesh.peer_up`, ...).
pub const MAX_KIND: usize = 64;
/// Longest subject (a node id, a keyring id).
pub const MAX_SUBJECT: usize = 128;

/// One published event, its SSE frame made once for every client.
#[derive(Debug)]
pub struct Event {
    /// Position in the log (1, 2, ...).
    pub seq: u64,
    /// Dotted type, also the SSE `event:` name.
    pub kind: String,
    /// What the event is about, for `?subject=` filters.
    pub subject: Option<String>,
    /// `id: ...\nevent: ...\ndata: ...\n\n`.
    pub frame: Bytes,
}

/// Why [`EventLog::push`] refused an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PublishError {
    /// The type is empty, too long, or not `[a-z0-9._-]`.
    #[error("an event type is 1..64 characters of a-z, 0-9, '.', '_' or '-'")]
    BadKind,
    /// The subject is too long or not printable ASCII.
    #[error("an event subject is at most 128 printable ASCII characters")]
    BadSubject,
    /// The data is larger than [`MAX_EVENT_DATA`].
    #[error("event data is limited to 64 KiB")]
    TooLarge,
}

/// Which events a client wants: types by dotted prefix (`presence` matches
/// `presence.down`), and optionally one subject.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    kinds: Vec<String>,
    subject: Option<String>,
}

impl Filter {
    /// From `types=a,b.c` and `subject=x` query values (empty means all).
    pub fn new(types: Option<&str>, subject: Option<&str>) -> Self {
        let kinds = types
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .take(32)
            .map(str::to_string)
            .collect();
        let subject = subject.filter(|s| !s.is_empty()).map(str::to_string);
        Self { kinds, subject }
    }

    /// Whether `event` passes.
    pub fn matches(&self, event: &Event) -> bool {
        let kind_ok = self.kinds.is_empty()
            || self.kinds.iter().any(|k| {
                event.kind == *k
                    || (event.kind.starts_with(k.as_str())
                        && event.kind.as_bytes().get(k.len()) == Some(&b'.'))
            });
        let subject_ok = match &self.subject {
            None => true,
            Some(s) => event.subject.as_deref() == Some(s.as_str()),
        };
        kind_ok && subject_ok
    }
}

/// Where a new client starts reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// Only events published from now on.
    Live,
    /// Everything still in the ring.
    Oldest,
    /// The event after this `Last-Event-ID` (text form).
    After(EventId),
}

/// `<epoch hex>-<seq>`, the SSE `id:` of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventId {
    /// Random per gateway start.
    pub epoch: u32,
    /// Position in that start's log.
    pub seq: u64,
}

impl EventId {
    /// Parses `8 hex digits - decimal`; `None` for anything else.
    pub fn parse(text: &str) -> Option<Self> {
        let (epoch, seq) = text.trim().split_once('-')?;
        if epoch.len() != 8 || seq.is_empty() || seq.len() > 20 {
            return None;
        }
        if !seq.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        Some(Self {
            epoch: u32::from_str_radix(epoch, 16).ok()?,
            seq: seq.parse().ok()?,
        })
    }
}

impl std::fmt::Display for EventId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:08x}-{}", self.epoch, self.seq)
    }
}

/// What a client reads at its cursor.
#[derive(Debug, Default)]
pub struct Batch {
    /// Events it fell behind by (gone from the ring) before these, or `None`.
    pub lagged: Option<u64>,
    /// Matching events, oldest first.
    pub events: Vec<Arc<Event>>,
    /// The cursor after this batch.
    pub next: u64,
}

/// The ring.
#[derive(Debug)]
pub struct EventLog {
    epoch: u32,
    ring: VecDeque<Arc<Event>>,
    bytes: usize,
    max_events: usize,
    max_bytes: usize,
    next_seq: u64,
}

impl EventLog {
    /// An empty log keeping at most `max_events` events and `max_bytes` of frames.
    pub fn new(epoch: u32, max_events: usize, max_bytes: usize) -> Self {
        Self {
            epoch,
            ring: VecDeque::new(),
            bytes: 0,
            max_events: max_events.max(1),
            max_bytes: max_bytes.max(1),
            next_seq: 1,
        }
    }

    /// This start's epoch.
    pub fn epoch(&self) -> u32 {
        self.epoch
    }

    /// The seq the next event will get (a live cursor).
    pub fn head(&self) -> u64 {
        self.next_seq
    }

    /// Events in the ring.
    pub fn len(&self) -> usize {
        self.ring.len()
    }

    /// Whether the ring is empty.
    pub fn is_empty(&self) -> bool {
        self.ring.is_empty()
    }

    /// The oldest seq still held (or the head when empty).
    pub fn oldest(&self) -> u64 {
        self.ring.front().map_or(self.next_seq, |e| e.seq)
    }

    /// Appends an event with JSON `data` (one line: compact JSON) and returns its id.
    pub fn push(
        &mut self,
        kind: &str,
        subject: Option<&str>,
        data: &[u8],
    ) -> Result<EventId, PublishError> {
        let kind_ok = !kind.is_empty()
            && kind.len() <= MAX_KIND
            && kind
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
        if !kind_ok {
            return Err(PublishError::BadKind);
        }
        if let Some(s) = subject {
            if s.len() > MAX_SUBJECT || !s.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(PublishError::BadSubject);
            }
        }
        if data.len() > MAX_EVENT_DATA {
            return Err(PublishError::TooLarge);
        }
        let id = EventId {
            epoch: self.epoch,
            seq: self.next_seq,
        };
        let frame = frame(&id, kind, data);
        self.next_seq += 1;
        self.bytes += frame.len();
        self.ring.push_back(Arc::new(Event {
            seq: id.seq,
            kind: kind.to_string(),
            subject: subject.map(str::to_string),
            frame,
        }));
        while self.ring.len() > self.max_events
            || (self.bytes > self.max_bytes && self.ring.len() > 1)
        {
            if let Some(old) = self.ring.pop_front() {
                self.bytes -= old.frame.len();
            }
        }
        Ok(id)
    }

    /// The cursor a client starting at `start` gets; a resume from another
    /// epoch, or from before the ring, starts at the oldest event held and
    /// reports the gap as lagged.
    pub fn cursor(&self, start: Start) -> (u64, Option<u64>) {
        match start {
            Start::Live => (self.next_seq, None),
            Start::Oldest => (self.oldest(), None),
            Start::After(id) if id.epoch != self.epoch => (self.oldest(), Some(0)),
            Start::After(id) => {
                let want = id.seq.saturating_add(1).min(self.next_seq);
                if want < self.oldest() {
                    (self.oldest(), Some(self.oldest() - want))
                } else {
                    (want, None)
                }
            }
        }
    }

    /// Up to `max` matching events from `cursor` on. A cursor the ring has
    /// moved past comes back with `lagged` set and reads from the oldest.
    pub fn read(&self, cursor: u64, filter: &Filter, max: usize) -> Batch {
        let oldest = self.oldest();
        let (lagged, mut next) = if cursor < oldest {
            (Some(oldest - cursor), oldest)
        } else {
            (None, cursor.min(self.next_seq))
        };
        let mut events = Vec::new();
        let skip = (next - oldest) as usize;
        for e in self.ring.iter().skip(skip) {
            if events.len() == max {
                break;
            }
            next = e.seq + 1;
            if filter.matches(e) {
                events.push(Arc::clone(e));
            }
        }
        Batch {
            lagged,
            events,
            next,
        }
    }
}

/// The SSE frame of one event. Data lines are split at newlines, so any
/// payload yields a well-formed frame.
pub fn frame(id: &EventId, kind: &str, data: &[u8]) -> Bytes {
    let mut out = String::with_capacity(data.len() + kind.len() + 40);
    let _ = write!(out, "id: {id}\nevent: {kind}\n");
    let text = String::from_utf8_lossy(data);
    for line in text.split(['\n', '\r']) {
        out.push_str("data: ");
        out.push_str(line);
        out.push('\n');
    }
    out.push('\n');
    Bytes::from(out)
}

/// The frame telling a client it missed `missed` events (0: unknown, e.g.
/// after a restart) and should refetch the snapshot.
pub fn lagged_frame(missed: u64) -> Bytes {
    Bytes::from(format!(
        "event: lagged\ndata: {{\"missed\":{missed},\"refetch\":\"/v1/mesh\"}}\n\n"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(n: u64) -> EventLog {
        let mut l = EventLog::new(0xabcd0123, 8, 1 << 20);
        for i in 0..n {
            let kind = if i % 2 == 0 {
                "presence.up"
            } else {
                "mesh.peer_up"
            };
            l.push(
                kind,
                Some(&format!("node{}", i % 3)),
                format!("{{\"i\":{i}}}").as_bytes(),
            )
            .unwrap();
        }
        l
    }

    #[test]
    fn ids_round_trip() {
        let id = EventId {
            epoch: 0xabcd0123,
            seq: 42,
        };
        assert_eq!(id.to_string(), "abcd0123-42");
        assert_eq!(EventId::parse("abcd0123-42"), Some(id));
        for bad in [
            "",
            "abcd0123",
            "abcd012-1",
            "abcd0123-",
            "abcd0123-x",
            "zzzzzzzz-1",
            "abcd0123-99999999999999999999999",
        ] {
            assert_eq!(EventId::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn ring_is_bounded_by_count_and_bytes() {
        let l = log(20);
        assert_eq!(l.len(), 8);
        assert_eq!(l.oldest(), 13);
        assert_eq!(l.head(), 21);
        let mut small = EventLog::new(1, 1000, 200);
        for _ in 0..50 {
            small.push("x", None, &[b'a'; 50]).unwrap();
        }
        assert!(small.bytes <= 200 && !small.is_empty());
    }

    #[test]
    fn live_cursor_reads_only_new_events() {
        let mut l = log(3);
        let (c, lag) = l.cursor(Start::Live);
        assert_eq!(lag, None);
        assert!(l.read(c, &Filter::default(), 10).events.is_empty());
        l.push("presence.down", None, b"{}").unwrap();
        let b = l.read(c, &Filter::default(), 10);
        assert_eq!(b.events.len(), 1);
        assert_eq!(b.next, 5);
    }

    #[test]
    fn resume_after_an_id_replays_the_rest() {
        let l = log(6);
        let (c, lag) = l.cursor(Start::After(EventId {
            epoch: l.epoch(),
            seq: 4,
        }));
        assert_eq!((c, lag), (5, None));
        let b = l.read(c, &Filter::default(), 10);
        assert_eq!(
            b.events.iter().map(|e| e.seq).collect::<Vec<_>>(),
            vec![5, 6]
        );
    }

    #[test]
    fn resume_from_before_the_ring_or_another_epoch_lags() {
        let l = log(20);
        let (c, lag) = l.cursor(Start::After(EventId {
            epoch: l.epoch(),
            seq: 2,
        }));
        assert_eq!((c, lag), (13, Some(10)));
        let (c, lag) = l.cursor(Start::After(EventId { epoch: 7, seq: 2 }));
        assert_eq!((c, lag), (13, Some(0)));
        // An id from the future (a confused client) waits for live events.
        let (c, _) = l.cursor(Start::After(EventId {
            epoch: l.epoch(),
            seq: 1000,
        }));
        assert_eq!(c, l.head());
    }

    #[test]
    fn a_cursor_overtaken_by_the_ring_reads_lagged() {
        let l = log(20);
        let b = l.read(3, &Filter::default(), 100);
        assert_eq!(b.lagged, Some(10));
        assert_eq!(b.events.first().unwrap().seq, 13);
        assert_eq!(b.next, 21);
    }

    #[test]
    fn filters_by_type_prefix_and_subject() {
        let l = log(8);
        let f = Filter::new(Some("presence"), None);
        let b = l.read(1, &f, 100);
        assert!(b.events.iter().all(|e| e.kind == "presence.up"));
        assert_eq!(b.events.len(), 4);
        assert_eq!(b.next, 9, "non-matching events still move the cursor");
        let f = Filter::new(Some("pres"), None);
        assert!(
            l.read(1, &f, 100).events.is_empty(),
            "prefixes end at a dot"
        );
        let f = Filter::new(Some("mesh.peer_up, presence.up"), Some("node1"));
        let b = l.read(1, &f, 100);
        assert!(b
            .events
            .iter()
            .all(|e| e.subject.as_deref() == Some("node1")));
        assert!(!b.events.is_empty());
    }

    #[test]
    fn read_honours_max() {
        let l = log(8);
        let b = l.read(1, &Filter::default(), 3);
        assert_eq!(b.events.len(), 3);
        assert_eq!(b.next, 4);
    }

    #[test]
    fn bad_events_are_refused() {
        let mut l = EventLog::new(1, 8, 1 << 20);
        assert_eq!(l.push("", None, b"{}"), Err(PublishError::BadKind));
        assert_eq!(l.push("Bad Kind", None, b"{}"), Err(PublishError::BadKind));
        assert_eq!(
            l.push("ok", Some("a b"), b"{}"),
            Err(PublishError::BadSubject)
        );
        assert_eq!(
            l.push("ok", None, &vec![b'x'; MAX_EVENT_DATA + 1]),
            Err(PublishError::TooLarge)
        );
    }

    #[test]
    fn frames_are_well_formed_even_with_newlines() {
        let id = EventId { epoch: 1, seq: 2 };
        assert_eq!(
            &frame(&id, "a.b", b"{\"x\":1}")[..],
            b"id: 00000001-2\nevent: a.b\ndata: {\"x\":1}\n\n"
        );
        assert_eq!(
            &frame(&id, "a", b"1\n2")[..],
            b"id: 00000001-2\nevent: a\ndata: 1\ndata: 2\n\n"
        );
    }
}
