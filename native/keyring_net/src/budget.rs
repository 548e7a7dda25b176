//! Memory budgets: what a peer's incomplete frames (and unanswered
//! requests) may claim of this node's memory.
//!
//! Each admitted connection has a budget of its own ([`crate::Limits::link_budget`])
//! and shares one with the other connections of the same peer key
//! ([`crate::Limits::peer_budget`]). A frame is charged its announced size, in
//! both, as soon as its header arrives, before its payload is read, and the
//! charge ends when the frame has been handed over (for an RPC request: when
//! it has been answered). A frame that finds no room waits, holding nothing,
//! for at most [`crate::Limits::budget_wait`]; then its stream is reset.
//! Charges are taken whole and always in the same order (connection, then
//! peer), so frames waiting for room never hold part of it.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Room in one connection's budget and in its peer's.
#[derive(Debug, Clone)]
pub(crate) struct Budget {
    link: Arc<Semaphore>,
    peer: Arc<Semaphore>,
}

/// Bytes charged to a [`Budget`] until this is dropped.
#[derive(Debug)]
pub struct Charge {
    _link: OwnedSemaphorePermit,
    _peer: OwnedSemaphorePermit,
}

/// A frame found no room in the budget in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OverBudget;

impl Budget {
    /// A connection's budget of `link_bytes`, inside its peer's `peer`.
    pub(crate) fn new(link_bytes: usize, peer: Arc<Semaphore>) -> Self {
        Self {
            link: Arc::new(Semaphore::new(link_bytes.min(Semaphore::MAX_PERMITS))),
            peer,
        }
    }

    /// Charges `bytes`, waiting at most `wait` for room.
    pub(crate) async fn charge(&self, bytes: usize, wait: Duration) -> Result<Charge, OverBudget> {
        let n = u32::try_from(bytes).map_err(|_| OverBudget)?;
        if let Some(charge) = self.try_charge(n) {
            return Ok(charge);
        }
        let both = async {
            let link = self.link.clone().acquire_many_owned(n).await.ok()?;
            let peer = self.peer.clone().acquire_many_owned(n).await.ok()?;
            Some(Charge {
                _link: link,
                _peer: peer,
            })
        };
        tokio::time::timeout(wait, both)
            .await
            .ok()
            .flatten()
            .ok_or(OverBudget)
    }

    fn try_charge(&self, n: u32) -> Option<Charge> {
        let link = self.link.clone().try_acquire_many_owned(n).ok()?;
        let peer = self.peer.clone().try_acquire_many_owned(n).ok()?;
        Some(Charge {
            _link: link,
            _peer: peer,
        })
    }

    /// Bytes free in this connection's budget (for tests and stats).
    #[cfg(test)]
    pub(crate) fn available(&self) -> (usize, usize) {
        (self.link.available_permits(), self.peer.available_permits())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WAIT: Duration = Duration::from_millis(50);

    #[tokio::test]
    async fn charges_are_held_until_dropped_in_both_budgets() {
        let peer = Arc::new(Semaphore::new(100));
        let (a, b) = (Budget::new(60, peer.clone()), Budget::new(60, peer));
        let ca = a.charge(50, WAIT).await.unwrap();
        assert_eq!(a.available(), (10, 50));
        // The link has room, the peer does not: b waits, then gives up.
        assert_eq!(b.charge(51, WAIT).await.unwrap_err(), OverBudget);
        let cb = b.charge(50, WAIT).await.unwrap();
        assert_eq!(b.available(), (10, 0));
        drop((ca, cb));
        assert_eq!(a.available(), (60, 100));
    }

    #[tokio::test]
    async fn a_waiting_frame_gets_room_when_another_finishes() {
        let b = Budget::new(10, Arc::new(Semaphore::new(10)));
        let first = b.charge(8, WAIT).await.unwrap();
        let b2 = b.clone();
        let second = tokio::spawn(async move { b2.charge(8, Duration::from_secs(5)).await });
        tokio::time::sleep(WAIT).await;
        drop(first);
        assert!(second.await.unwrap().is_ok());
    }

    #[tokio::test]
    async fn a_frame_larger_than_the_budget_never_fits() {
        let b = Budget::new(10, Arc::new(Semaphore::new(10)));
        assert_eq!(b.charge(11, WAIT).await.unwrap_err(), OverBudget);
        assert_eq!(b.charge(usize::MAX, WAIT).await.unwrap_err(), OverBudget);
        assert_eq!(b.available(), (10, 10));
    }
}
