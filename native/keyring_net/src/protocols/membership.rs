//! The membership protocol: a member pushes its keyring's log on a
//! unidirectional stream (one `LogUpdate` frame); the receiver hands the
//! entries to a [`LogSink`] (today the BEAM, which merges them; later a
//! Rust registry that ingests entries incrementally).
//!
//! Fences: the frame is read under the stream fences (size limit, byte
//! rate, memory budget) and must name the keyring its connection was
//! admitted for. Each (keyring, peer) may deliver
//! [`crate::Limits::log_update_burst`] pushes at once and
//! `log_updates_per_second` on average; a push beyond that waits for its
//! turn before it is read, keeping its stream open, so a flooder soon has
//! all its streams ([`crate::Limits::max_uni_streams`]) waiting and can open
//! no more: it slows down, nothing is dropped, and other peers are not
//! affected.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use keyring_core::membership::PublicKey;
use keyring_core::wire::frame::{self, Frame};

use crate::close::STREAM_BAD_FRAME;
use crate::config::Limits;
use crate::connect::Opener;
use crate::protocol::{BoxFuture, PeerLink, Protocol, ProtocolId, PROTOCOL_MEMBERSHIP};
use crate::protocols::turn;
use crate::rate::KeyedBuckets;
use crate::stream::FramedRecv;

/// A log pushed by a member of `keyring`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogUpdate {
    /// The keyring (the one the connection was admitted for).
    pub keyring: PublicKey,
    /// Who pushed it (TLS-authenticated).
    pub peer: PublicKey,
    /// The encoded entries, in order (not yet verified).
    pub entries: Vec<Bytes>,
}

/// Takes pushed logs, on a runtime thread. Must not block.
pub trait LogSink: Send + Sync + 'static {
    /// Takes one push.
    fn log_update(&self, update: LogUpdate);
}

/// The membership protocol.
pub struct Membership {
    sink: Arc<dyn LogSink>,
    rate: Mutex<KeyedBuckets<(PublicKey, PublicKey)>>,
    max_payload: usize,
}

impl std::fmt::Debug for Membership {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Membership")
    }
}

impl Membership {
    /// The protocol, delivering to `sink` under `limits`.
    pub fn new(sink: Arc<dyn LogSink>, limits: &Limits, max_payload: usize) -> Arc<Self> {
        Arc::new(Self {
            sink,
            rate: Mutex::new(KeyedBuckets::new(
                limits.log_update_burst,
                limits.log_updates_per_second,
                limits.tracked_sources,
            )),
            max_payload,
        })
    }

    /// Pushes `entries` (the whole log) to every linked member of
    /// `keyring`. Returns how many links it went out on.
    pub fn push_log(&self, opener: &Opener, keyring: PublicKey, entries: &[Vec<u8>]) -> usize {
        let Ok(bytes) = (Frame::LogUpdate {
            keyring_id: keyring,
            entries: entries.iter().map(Vec::as_slice).collect(),
        })
        .encode() else {
            return 0;
        };
        let bytes = Bytes::from(bytes);
        let links = opener.links(&keyring);
        for link in &links {
            let (link, bytes) = (link.clone(), bytes.clone());
            opener.runtime().spawn(async move {
                if let Ok(mut send) = link.open_uni(PROTOCOL_MEMBERSHIP).await {
                    let _ = send.write(vec![bytes]).await;
                    send.finish();
                }
            });
        }
        links.len()
    }

    async fn receive(self: Arc<Self>, link: PeerLink, mut recv: FramedRecv) {
        // The turn is taken before the frame is read: a push waiting for it
        // keeps its stream open, so a flooder runs out of streams.
        let key = (link.keyring(), link.peer());
        turn(&self.rate, &key).await;
        let Ok(frame) = recv.read_frame(self.max_payload).await else {
            return;
        };
        let bytes = Bytes::from(frame.bytes);
        let entries = match frame::decode(&bytes, self.max_payload) {
            Ok(Frame::LogUpdate {
                keyring_id,
                entries,
            }) if keyring_id == link.keyring() => entries
                .iter()
                .map(|e| bytes.slice_ref(e))
                .collect::<Vec<_>>(),
            _ => return recv.stop(STREAM_BAD_FRAME),
        };
        if !link.is_member() {
            return;
        }
        self.sink.log_update(LogUpdate {
            keyring: key.0,
            peer: key.1,
            entries,
        });
        drop(frame.charge);
    }
}

impl Protocol for Membership {
    fn id(&self) -> ProtocolId {
        PROTOCOL_MEMBERSHIP
    }

    fn accept_uni(self: Arc<Self>, link: PeerLink, recv: FramedRecv) -> BoxFuture {
        Box::pin(self.receive(link, recv))
    }
}
