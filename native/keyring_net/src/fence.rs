//! The fences in front of both endpoints, before any handshake work: how
//! many connections may be in progress (in all, and per source), and what to
//! do with a new one (accept, ask for a QUIC Retry, refuse). The decisions
//! are pure functions of counters, tested directly; `admit` and
//! `join::server` carry them out.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::rate::Source;

/// What to do with a new incoming connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Go on (take a rate token, then a place in the [`Gate`]).
    Proceed,
    /// Send a QUIC Retry: the source must prove its address first.
    Retry,
    /// Refuse before the handshake (the client sees `Busy`).
    Refuse,
}

/// The member endpoint's rule. Members rarely handshake (links are long
/// lived), so it asks for a Retry only under load; a source whose
/// handshakes keep failing (non-members, no Hello) is refused up front.
pub(crate) fn member_verdict(
    source_failing: bool,
    gate_has_room: bool,
    in_flight: usize,
    retry_above: usize,
    validated: bool,
    may_retry: bool,
) -> Verdict {
    if source_failing || !gate_has_room {
        Verdict::Refuse
    } else if in_flight >= retry_above && !validated && may_retry {
        Verdict::Retry
    } else {
        Verdict::Proceed
    }
}

/// The join endpoint's rule: it accepts any key, so every source proves
/// its address with a Retry first, and the gate is checked after the rate.
pub(crate) fn join_verdict(validated: bool, may_retry: bool) -> Verdict {
    if !validated && may_retry {
        Verdict::Retry
    } else {
        Verdict::Proceed
    }
}

/// Places for connections in progress: at most `total`, at most
/// `per_source` from one source.
#[derive(Debug)]
pub(crate) struct Gate {
    total: usize,
    per_source: usize,
    state: Mutex<GateState>,
}

#[derive(Debug, Default)]
struct GateState {
    in_flight: usize,
    by_source: HashMap<Source, usize>,
}

/// A place in a [`Gate`], given back when dropped.
#[derive(Debug)]
pub(crate) struct Ticket {
    gate: Arc<Gate>,
    source: Source,
}

impl Gate {
    pub(crate) fn new(total: usize, per_source: usize) -> Arc<Self> {
        Arc::new(Self {
            total: total.max(1),
            per_source: per_source.max(1),
            state: Mutex::default(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, GateState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether `source` would get a place now.
    pub(crate) fn has_room(&self, source: &Source) -> bool {
        let s = self.lock();
        s.in_flight < self.total && s.by_source.get(source).copied().unwrap_or(0) < self.per_source
    }

    /// Places taken now.
    pub(crate) fn in_flight(&self) -> usize {
        self.lock().in_flight
    }

    /// A place for `source`, if there is room.
    pub(crate) fn enter(self: &Arc<Self>, source: Source) -> Option<Ticket> {
        let mut s = self.lock();
        let mine = s.by_source.get(&source).copied().unwrap_or(0);
        if s.in_flight >= self.total || mine >= self.per_source {
            return None;
        }
        s.in_flight += 1;
        s.by_source.insert(source, mine + 1);
        Some(Ticket {
            gate: self.clone(),
            source,
        })
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut s = self.gate.lock();
        s.in_flight -= 1;
        if let Some(n) = s.by_source.get_mut(&self.source) {
            *n -= 1;
            if *n == 0 {
                s.by_source.remove(&self.source);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src(s: &str) -> Source {
        Source::of(s.parse().unwrap())
    }

    #[test]
    fn the_member_endpoint_retries_only_under_load() {
        use Verdict::*;
        assert_eq!(member_verdict(false, true, 0, 16, false, true), Proceed);
        assert_eq!(member_verdict(false, true, 16, 16, false, true), Retry);
        assert_eq!(member_verdict(false, true, 16, 16, true, true), Proceed);
        assert_eq!(member_verdict(false, true, 16, 16, false, false), Proceed);
    }

    #[test]
    fn failing_sources_and_a_full_gate_are_refused_before_anything_else() {
        use Verdict::*;
        assert_eq!(member_verdict(true, true, 0, 16, true, true), Refuse);
        assert_eq!(member_verdict(false, false, 0, 16, true, true), Refuse);
        assert_eq!(member_verdict(false, false, 99, 16, false, true), Refuse);
    }

    #[test]
    fn the_join_endpoint_always_asks_unvalidated_sources_to_retry() {
        assert_eq!(join_verdict(false, true), Verdict::Retry);
        assert_eq!(join_verdict(true, true), Verdict::Proceed);
        assert_eq!(join_verdict(false, false), Verdict::Proceed);
    }

    #[test]
    fn a_gate_bounds_places_in_all_and_per_source_and_gives_them_back() {
        let g = Gate::new(3, 2);
        let (a, b) = (src("10.0.0.1:1"), src("10.0.0.2:1"));
        let t1 = g.enter(a).unwrap();
        let _t2 = g.enter(a).unwrap();
        assert!(!g.has_room(&a) && g.enter(a).is_none());
        let _t3 = g.enter(b).unwrap();
        assert_eq!(g.in_flight(), 3);
        assert!(g.enter(src("10.0.0.3:1")).is_none(), "full in all");
        drop(t1);
        assert!(g.has_room(&a));
        assert!(g.enter(a).is_some());
    }
}
