//! The link table: one admitted connection per (keyring, peer), and where
//! each peer was last reached.
//!
//! - **One link per pair.** When both sides dial at once, each ends up with
//!   two connections. Both keep the one dialled by the lower key
//!   ([`settle`]) and close the other after [`SUPERSEDED_GRACE`], letting
//!   streams already on it finish.
//! - **Events for the link, not its connections.** `PeerUp` is reported when
//!   a pair gains its link and `PeerDown` when it loses it; a superseded
//!   duplicate reports neither.
//! - **Stay connected.** A link lost to a timeout, a reset or the peer
//!   shutting down is redialled in the background ([`backoff`]) for as long
//!   as the peer is a member and no other link has come up; one closed on
//!   purpose is not (see [`crate::close::redial_after`]).
//!
//! This module only keeps the table; `connect` carries out what it decides.

pub mod backoff;
mod settle;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use keyring_core::membership::PublicKey;
use quinn::Connection;

use crate::protocol::PeerLink;
pub(crate) use settle::{settle, Keep};

/// How long a superseded duplicate stays open for streams already on it.
pub const SUPERSEDED_GRACE: Duration = Duration::from_secs(2);

/// A pair: (keyring, peer).
pub(crate) type LinkKey = (PublicKey, PublicKey);

/// An admitted connection in the table.
#[derive(Debug)]
struct Entry {
    link: PeerLink,
    /// Whether this node dialled it.
    dialled: bool,
    /// Whether it is still the pair's link (false once superseded).
    current: Arc<AtomicBool>,
}

/// What registering a connection decided.
#[derive(Debug)]
pub(crate) struct Registered {
    /// The pair had no live link before: report `PeerUp`.
    pub(crate) up: bool,
    /// A connection to close after [`SUPERSEDED_GRACE`].
    pub(crate) superseded: Option<Connection>,
    /// Whether the new connection is (still) the pair's link; its watcher
    /// reports `PeerDown` only while this is set.
    pub(crate) current: Arc<AtomicBool>,
}

/// Links and addresses of one node.
#[derive(Debug, Default)]
pub(crate) struct LinkTable {
    links: Mutex<HashMap<LinkKey, Entry>>,
    dialing: Mutex<HashMap<LinkKey, Arc<tokio::sync::Mutex<()>>>>,
    addrs: Mutex<HashMap<PublicKey, SocketAddr>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl LinkTable {
    /// The live link of a pair.
    pub(crate) fn live(&self, key: &LinkKey) -> Option<PeerLink> {
        lock(&self.links)
            .get(key)
            .filter(|e| !e.link.is_closed())
            .map(|e| e.link.clone())
    }

    /// Records an admitted connection (`dialled` by us or by the peer) and
    /// settles it against the pair's live link.
    pub(crate) fn register(&self, me: &PublicKey, link: PeerLink, dialled: bool) -> Registered {
        let key = (link.keyring(), link.peer());
        lock(&self.addrs).insert(key.1, link.remote_address());
        let mut links = lock(&self.links);
        let existing = links.get(&key).filter(|e| !e.link.is_closed());
        let up = existing.is_none();
        let keep = settle(existing.map(|e| e.dialled), dialled, me, &key.1);
        let current = Arc::new(AtomicBool::new(keep == Keep::New));
        let superseded = match keep {
            Keep::Existing => Some(link.connection().clone()),
            Keep::New => {
                let id = link.connection().stable_id();
                let entry = Entry {
                    link,
                    dialled,
                    current: current.clone(),
                };
                links
                    .insert(key, entry)
                    .filter(|old| old.link.connection().stable_id() != id)
                    .map(|old| {
                        old.current.store(false, Ordering::Release);
                        old.link.connection().clone()
                    })
                    .filter(|_| !up)
            }
        };
        Registered {
            up: up && keep == Keep::New,
            superseded,
            current,
        }
    }

    /// Forgets `conn` if it is still the pair's entry (it ended).
    pub(crate) fn forget(&self, key: &LinkKey, conn: &Connection) {
        let mut links = lock(&self.links);
        if links
            .get(key)
            .is_some_and(|e| e.link.connection().stable_id() == conn.stable_id())
        {
            links.remove(key);
        }
    }

    /// Removes the pair's link and returns its connection.
    pub(crate) fn remove(&self, key: &LinkKey) -> Option<Connection> {
        lock(&self.links)
            .remove(key)
            .map(|e| e.link.connection().clone())
    }

    /// Removes every link `keep` refuses and returns their connections.
    pub(crate) fn remove_where(
        &self,
        mut drop_it: impl FnMut(&LinkKey) -> bool,
    ) -> Vec<Connection> {
        let mut out = Vec::new();
        lock(&self.links).retain(|key, e| {
            if drop_it(key) {
                out.push(e.link.connection().clone());
                false
            } else {
                true
            }
        });
        out
    }

    /// Live links of one keyring.
    pub(crate) fn in_keyring(&self, keyring: &PublicKey) -> Vec<PeerLink> {
        lock(&self.links)
            .iter()
            .filter(|((k, _), e)| k == keyring && !e.link.is_closed())
            .map(|(_, e)| e.link.clone())
            .collect()
    }

    /// The lock that serialises dials of one pair.
    pub(crate) fn dial_gate(&self, key: LinkKey) -> Arc<tokio::sync::Mutex<()>> {
        lock(&self.dialing).entry(key).or_default().clone()
    }

    /// Remembers where `peer` listens.
    pub(crate) fn set_address(&self, peer: PublicKey, addr: SocketAddr) {
        lock(&self.addrs).insert(peer, addr);
    }

    /// Where `peer` was last reached (or said to listen).
    pub(crate) fn address(&self, peer: &PublicKey) -> Option<SocketAddr> {
        lock(&self.addrs).get(peer).copied()
    }
}
