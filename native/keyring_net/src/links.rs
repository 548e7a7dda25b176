//! The connection table: one admitted connection per (keyring, peer), kept up.
//!
//! - **One link per pair.** When both sides dial at once, each ends up with
//!   two connections. Both keep the one dialled by the lower key (so they
//!   agree without talking) and close the other after [`SUPERSEDED_GRACE`],
//!   letting streams already on it finish.
//! - **Events for the link, not its connections.** `PeerUp` is reported when
//!   a pair gains its link and `PeerDown` when it loses it; a superseded
//!   duplicate reports neither.
//! - **Stay connected.** A link lost to a timeout, a reset or the peer
//!   shutting down is redialled in the background with exponential backoff
//!   ([`REDIAL_FIRST`] doubling to [`REDIAL_MAX`], with jitter) for as long
//!   as the peer is a member and no other link has come up. A link closed on
//!   purpose (by us, or by the peer with `revoked`, `refused` or `normal`) is
//!   not redialled.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use keyring_core::membership::PublicKey;
use quinn::{Connection, ConnectionError, VarInt};
use tokio::time::Instant;

use crate::client;
use crate::error::CallError;
use crate::mesh::{Event, Inner, CLOSE_SHUTDOWN, CLOSE_SUPERSEDED};

/// How long a superseded duplicate stays open for streams already on it.
pub const SUPERSEDED_GRACE: Duration = Duration::from_secs(2);
/// First background redial delay.
pub const REDIAL_FIRST: Duration = Duration::from_millis(100);
/// Longest background redial delay.
pub const REDIAL_MAX: Duration = Duration::from_secs(30);
/// Time given to one redial attempt (dialling retries within it).
const REDIAL_ATTEMPT: Duration = Duration::from_secs(3);

/// An admitted connection and who dialled it.
pub(crate) struct Link {
    pub(crate) conn: Connection,
    /// Whether this node dialled it.
    pub(crate) dialled: bool,
    /// Whether it is still the pair's link (false once superseded); its
    /// watcher reports `PeerDown` only then, even if the table entry was
    /// already removed (revocation, `disconnect`).
    current: Arc<AtomicBool>,
}

impl Inner {
    /// Records an admitted connection (`dialled` by us or by the peer),
    /// settles duplicates, and watches for its end.
    pub(crate) fn register(
        self: &Arc<Self>,
        keyring: PublicKey,
        peer: PublicKey,
        conn: Connection,
        dialled: bool,
    ) {
        let addr = conn.remote_address();
        // One endpoint both listens and dials, so this is where the peer listens.
        self.lock_addrs().insert(peer, addr);
        let mut conns = self.lock_conns();
        let current = conns
            .get(&(keyring, peer))
            .filter(|l| l.conn.close_reason().is_none());
        let was_up = current.is_some();
        let keep_new = match current {
            None => true,
            // The same side dialled again: the newer connection is the live one.
            Some(old) if old.dialled == dialled => true,
            // Both sides dialled: keep the connection the lower key dialled.
            Some(_) => dialled == (self.public_key < peer),
        };
        let current = Arc::new(AtomicBool::new(keep_new));
        let loser = if keep_new {
            let link = Link {
                conn: conn.clone(),
                dialled,
                current: current.clone(),
            };
            conns
                .insert((keyring, peer), link)
                .filter(|old| old.conn.stable_id() != conn.stable_id())
                .map(|old| {
                    old.current.store(false, Ordering::Release);
                    old.conn
                })
                .filter(|_| was_up)
        } else {
            Some(conn.clone())
        };
        drop(conns);
        if let Some(loser) = loser {
            tokio::spawn(async move {
                tokio::time::sleep(SUPERSEDED_GRACE).await;
                loser.close(
                    VarInt::from_u64(CLOSE_SUPERSEDED).expect("small"),
                    b"superseded",
                );
            });
        }
        if keep_new && !was_up {
            self.sink.deliver(Event::PeerUp {
                keyring,
                peer,
                addr,
            });
        }
        tokio::spawn(watch(self.clone(), keyring, peer, conn, current));
    }
}

/// Waits for `conn` to end; if it was the pair's link, reports the loss and
/// redials when the way it ended calls for that.
async fn watch(
    inner: Arc<Inner>,
    keyring: PublicKey,
    peer: PublicKey,
    conn: Connection,
    current: Arc<AtomicBool>,
) {
    let reason = conn.closed().await;
    let mut conns = inner.lock_conns();
    if conns
        .get(&(keyring, peer))
        .is_some_and(|l| l.conn.stable_id() == conn.stable_id())
    {
        conns.remove(&(keyring, peer));
    }
    let was_link = current.load(Ordering::Acquire);
    drop(conns);
    if !was_link {
        return;
    }
    inner.sink.deliver(Event::PeerDown {
        keyring,
        peer,
        reason: reason.to_string(),
    });
    if redial_after(&reason) {
        tokio::spawn(redial(Arc::downgrade(&inner), keyring, peer));
    }
}

/// Whether a link that ended this way should be dialled again.
pub(crate) fn redial_after(reason: &ConnectionError) -> bool {
    match reason {
        // We closed it: disconnect, revocation, shutdown.
        ConnectionError::LocallyClosed => false,
        // The peer closed it: a shutdown (it may come back) is redialled, and
        // so is a link it superseded while this side had no other (the two
        // sides saw different connections; a fresh dial settles it).
        ConnectionError::ApplicationClosed(c) => {
            matches!(c.error_code.into_inner(), CLOSE_SHUTDOWN | CLOSE_SUPERSEDED)
        }
        // Timeouts, resets, transport errors.
        _ => true,
    }
}

/// Redials `peer` with backoff until a link is up, the peer stops being a
/// member, or the mesh is gone.
pub(crate) async fn redial(inner: Weak<Inner>, keyring: PublicKey, peer: PublicKey) {
    let mut delay = REDIAL_FIRST;
    loop {
        tokio::time::sleep(jitter(delay)).await;
        let Some(inner) = inner.upgrade() else { return };
        if !inner.members.is_member(&keyring, &peer)
            || client::live(&inner, keyring, peer).is_some()
        {
            return;
        }
        // A handshake towards a port nobody listens on only ends at the idle
        // timeout: bound each attempt.
        let deadline = Instant::now() + REDIAL_ATTEMPT;
        let attempt = client::connection(&inner, keyring, peer, None, deadline);
        match tokio::time::timeout_at(deadline, attempt).await {
            Ok(Ok(_))
            | Ok(Err(CallError::Closed | CallError::NotMember | CallError::NoAddress))
            | Ok(Err(CallError::Revoked)) => return,
            Ok(Err(_)) | Err(_) => delay = (delay * 2).min(REDIAL_MAX),
        }
    }
}

/// `d` scaled by a random factor in [0.5, 1.5), so two sides that lost the
/// same link do not dial each other in lockstep.
fn jitter(d: Duration) -> Duration {
    let mut b = [0u8; 2];
    let r = getrandom::fill(&mut b).map_or(0x8000, |()| u16::from_le_bytes(b));
    d.mul_f64(0.5 + f64::from(r) / 65536.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_within_half_and_one_and_a_half() {
        for _ in 0..1000 {
            let j = jitter(Duration::from_millis(1000));
            assert!(j >= Duration::from_millis(500) && j < Duration::from_millis(1500));
        }
    }

    fn closed_by_peer(code: u64) -> ConnectionError {
        ConnectionError::ApplicationClosed(quinn::ApplicationClose {
            error_code: VarInt::from_u64(code).unwrap(),
            reason: bytes::Bytes::new(),
        })
    }

    #[test]
    fn only_unplanned_ends_are_redialled() {
        assert!(!redial_after(&ConnectionError::LocallyClosed));
        assert!(redial_after(&ConnectionError::TimedOut));
        assert!(redial_after(&ConnectionError::Reset));
        assert!(redial_after(&closed_by_peer(CLOSE_SHUTDOWN)));
        assert!(redial_after(&closed_by_peer(CLOSE_SUPERSEDED)));
        for on_purpose in [
            crate::mesh::CLOSE_NORMAL,
            crate::mesh::CLOSE_REVOKED,
            crate::mesh::CLOSE_REFUSED,
        ] {
            assert!(!redial_after(&closed_by_peer(on_purpose)));
        }
    }
}
