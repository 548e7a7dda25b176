//! Blob transfer (protocol 3): a member fetches blobs by cid from members of
//! a keyring they share, as BLAKE3 verified streams
//! ([`keyring_core::transfer`] is the wire codec).
//!
//! **Scoping.** A blob is served on a connection of keyring K only if it is
//! shared into K ([`BlobProvider::open`] decides, given the connection's
//! keyring); an absent blob and a blob not shared in K get the same
//! `NOT_FOUND` byte, at the same point of the stream, so a member guessing
//! cids learns nothing about other keyrings' content.
//!
//! **Provider side.** One bidirectional stream per request: a `Request`
//! frame (read under the stream fences: size limit, byte-rate deadline,
//! memory budget), then the answer streamed from the [`BlobSource`] through
//! a checking [`keyring_core::verified::Encoder`] into the QUIC stream in
//! pieces of [`PIECE`] bytes, read and checked on a blocking thread (store
//! reads never wait for the disk on the mesh's runtime thread). QUIC flow control is the backpressure: a slow
//! receiver holds one piece per stream, never a blob; a receiver that takes
//! nothing for [`Blobs::new`]'s `stall` has its stream reset.
//!
//! **Receiver side.** [`get`] sends a request and hands back the raw bytes
//! as they come, through a bounded channel; [`download`] verifies them
//! group by group into a [`BlobSink`], from one or many providers.

pub mod download;
pub mod memory;
mod pieces;

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use keyring_core::hash::Digest;
use keyring_core::membership::PublicKey;
use keyring_core::transfer::{
    self, decode_get, item_encoders, Item, ListEntry, ListRequest, FOUND, NOT_FOUND,
};
use keyring_core::verified::{Need, PAIR_LEN};
use keyring_core::wire::frame::{self, Frame, Status};
use quinn::SendStream;
use tokio::sync::mpsc;

use crate::close::{stream_code, STREAM_BAD_FRAME, STREAM_DROPPED, STREAM_TOO_SLOW};
use crate::error::CallError;
use crate::protocol::{BoxFuture, PeerLink, Protocol, ProtocolId};
use crate::stream::FramedRecv;

use pieces::{PieceBuf, Pieces};

/// The protocol id of blob transfer.
pub const PROTOCOL_BLOBS: ProtocolId = 3;

/// Bytes of the answer prepared at a time (per stream).
pub const PIECE: usize = 256 * 1024;

/// Room in a piece buffer past [`PIECE`]: the step that crosses it (a
/// group of 16 KiB and its header) still fits.
const PIECE_SLACK: usize = 64 * 1024;

/// Free piece buffers a node keeps for reuse (about 5 MiB).
const KEPT_PIECES: usize = 16;

/// Largest request frame accepted (4096 items with fragmented ranges fit).
pub const MAX_REQUEST: usize = 1 << 20;

/// A blob opened for serving.
pub trait BlobSource: Send {
    /// Its size in bytes.
    fn size(&self) -> u64;
    /// The outboard pair at `slot`.
    fn pair(&self, slot: u64) -> std::io::Result<[u8; PAIR_LEN]>;
    /// Fills `buf` with the blob's bytes at `offset`.
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()>;
}

/// Where served blobs come from (the store, in the node). Called on the
/// mesh's runtime: must answer quickly (a lookup, an open).
pub trait BlobProvider: Send + Sync + 'static {
    /// Opens `cid` for a member of `keyring`: `None` when it is absent *or*
    /// not shared into `keyring` (the two must not be told apart).
    fn open(&self, keyring: &PublicKey, cid: &Digest) -> Option<Box<dyn BlobSource>>;
    /// Up to `limit` blobs shared into `keyring`, by share-tag name after
    /// `after`.
    fn list(&self, keyring: &PublicKey, after: &[u8], limit: usize) -> Vec<ListEntry>;
}

/// The blob transfer protocol (provider side).
pub struct Blobs {
    provider: Arc<dyn BlobProvider>,
    stall: Duration,
    pieces: Pieces,
}

impl std::fmt::Debug for Blobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Blobs")
    }
}

impl Blobs {
    /// Serves blobs from `provider`; a receiver that takes no piece for
    /// `stall` has its stream reset.
    pub fn new(provider: Arc<dyn BlobProvider>, stall: Duration) -> Arc<Self> {
        Arc::new(Self {
            provider,
            stall,
            pieces: Pieces::new(PIECE + PIECE_SLACK, KEPT_PIECES),
        })
    }

    async fn serve(self: Arc<Self>, link: PeerLink, mut send: SendStream, mut recv: FramedRecv) {
        let Ok(request) = recv.read_frame(MAX_REQUEST).await else {
            let _ = send.reset(stream_code(STREAM_DROPPED));
            return;
        };
        let (name, body) = match frame::decode(&request.bytes, MAX_REQUEST) {
            Ok(Frame::Request { name, body }) => (name, body),
            _ => {
                let _ = send.reset(stream_code(STREAM_BAD_FRAME));
                return;
            }
        };
        if !link.is_member() {
            let _ = send.reset(stream_code(STREAM_DROPPED));
            return;
        }
        let keyring = link.keyring();
        match name {
            transfer::GET => match decode_get(body) {
                Ok(items) => {
                    drop(request);
                    self.answer_get(&keyring, items, send).await;
                }
                Err(_) => {
                    let _ = send.reset(stream_code(STREAM_BAD_FRAME));
                }
            },
            transfer::LIST => match ListRequest::decode(body) {
                Ok(req) => {
                    let entries = self
                        .provider
                        .list(&keyring, &req.after, usize::from(req.limit));
                    let body = transfer::encode_list(&entries).unwrap_or_default();
                    if let Ok(reply) = (Frame::Response {
                        status: Status::Ok,
                        body: &body,
                    })
                    .encode()
                    {
                        self.write(&mut send, Bytes::from(reply)).await;
                        let _ = send.finish();
                    }
                }
                Err(_) => {
                    let _ = send.reset(stream_code(STREAM_BAD_FRAME));
                }
            },
            _ => {
                let _ = send.reset(stream_code(STREAM_BAD_FRAME));
            }
        }
    }

    /// Writes `piece`, or resets the stream if the receiver takes nothing
    /// for the stall deadline; false if the stream is gone.
    async fn write(&self, send: &mut SendStream, piece: Bytes) -> bool {
        match tokio::time::timeout(self.stall, send.write_chunk(piece)).await {
            Ok(Ok(())) => true,
            Ok(Err(_)) => false,
            Err(_) => {
                let _ = send.reset(stream_code(STREAM_TOO_SLOW));
                false
            }
        }
    }

    /// Streams the answer: the pieces are read and checked on a blocking
    /// thread (store reads may wait for the disk; hashing takes CPU) while
    /// this task hands the previous piece to QUIC. At most two pieces wait
    /// between them, so a slow receiver holds the reader back.
    async fn answer_get(&self, keyring: &PublicKey, items: Vec<Item>, mut send: SendStream) {
        let (tx, mut rx) = mpsc::channel::<Result<Bytes, ()>>(2);
        let provider = self.provider.clone();
        let keyring = *keyring;
        let pieces = self.pieces.clone();
        let producer = tokio::task::spawn_blocking(move || {
            produce(&*provider, &keyring, &items, &pieces, &tx)
        });
        while let Some(piece) = rx.recv().await {
            match piece {
                Ok(piece) => {
                    if !self.write(&mut send, piece).await {
                        // Dropping `rx` stops the producer at its next piece.
                        return;
                    }
                }
                Err(()) => {
                    // Our copy is damaged or unreadable mid-stream: the
                    // receiver cannot be told "not found" any more.
                    let _ = send.reset(stream_code(STREAM_DROPPED));
                    return;
                }
            }
        }
        if producer.await.is_ok() {
            let _ = send.finish();
        } else {
            let _ = send.reset(stream_code(STREAM_DROPPED));
        }
    }
}

/// Builds the answer to `items` in pieces of about [`PIECE`] bytes (buffers
/// from `pieces`) and sends them to `tx` (blocking); stops when `tx`'s
/// receiver is gone.
fn produce(
    provider: &dyn BlobProvider,
    keyring: &PublicKey,
    items: &[Item],
    pieces: &Pieces,
    tx: &mpsc::Sender<Result<Bytes, ()>>,
) {
    let mut piece = pieces.take();
    for item in items {
        let Some(source) = provider.open(keyring, &item.cid) else {
            if !make_room(&mut piece, 1, pieces, tx) {
                return;
            }
            piece.put(&[NOT_FOUND]);
            continue;
        };
        if !make_room(&mut piece, 1, pieces, tx) {
            return;
        }
        piece.put(&[FOUND]);
        for mut enc in item_encoders(item, source.size()) {
            if !make_room(&mut piece, 8, pieces, tx) {
                return;
            }
            piece.put(&enc.header());
            loop {
                let ok = match enc.next() {
                    Need::Done => break,
                    Need::Parent { slot } => match source.pair(slot) {
                        Ok(pair) if enc.parent(&pair).is_ok() => {
                            if !make_room(&mut piece, PAIR_LEN, pieces, tx) {
                                return;
                            }
                            piece.put(&pair);
                            true
                        }
                        _ => false,
                    },
                    Need::Group { offset, len, .. } => {
                        if !make_room(&mut piece, len, pieces, tx) {
                            return;
                        }
                        // Read straight into the piece, checked in place.
                        let at = piece.next(len);
                        source.read_at(offset, at).is_ok() && enc.group(at).is_ok()
                    }
                };
                if !ok {
                    let _ = tx.blocking_send(Err(()));
                    return;
                }
                if piece.len() >= PIECE && !make_room(&mut piece, usize::MAX, pieces, tx) {
                    return;
                }
            }
        }
    }
    if !piece.is_empty() {
        let _ = tx.blocking_send(Ok(piece.freeze()));
    }
}

/// Sends the piece being filled if it has less than `n` bytes of room left
/// (`usize::MAX`: in any case) and starts the next one; false when the
/// receiver is gone.
fn make_room(
    piece: &mut PieceBuf,
    n: usize,
    pieces: &Pieces,
    tx: &mpsc::Sender<Result<Bytes, ()>>,
) -> bool {
    if piece.room() >= n || piece.is_empty() {
        return true;
    }
    let full = std::mem::replace(piece, pieces.take());
    tx.blocking_send(Ok(full.freeze())).is_ok()
}

impl Protocol for Blobs {
    fn id(&self) -> ProtocolId {
        PROTOCOL_BLOBS
    }

    fn accept_bi(self: Arc<Self>, link: PeerLink, send: SendStream, recv: FramedRecv) -> BoxFuture {
        Box::pin(self.serve(link, send, recv))
    }
}

/// Pieces of an answer buffered between the QUIC stream and its reader.
const CHANNEL_PIECES: usize = 8;

/// Largest piece read from the QUIC stream at once.
const RECV_PIECE: usize = 256 * 1024;

/// What [`get`] hands back: the answer's bytes as they arrive; the stream
/// ends with `Ok(None)`-like closing of the channel after an `Err` or at
/// the answer's end. Dropping it stops the stream.
pub type Answer = mpsc::Receiver<Result<Bytes, CallError>>;

/// Sends a GET for `items` on `link` and returns its answer's bytes as they
/// arrive (through a bounded channel: a slow reader slows the provider).
pub async fn get(link: &PeerLink, items: &[Item]) -> Result<Answer, CallError> {
    let body = transfer::encode_get(items).map_err(|e| CallError::Protocol(e.to_string()))?;
    let (mut send, mut recv) = link.open_bi(PROTOCOL_BLOBS).await?;
    let prefix = frame::message_prefix(false, transfer::GET, body.len())
        .map_err(|e| CallError::Protocol(e.to_string()))?;
    send.write(vec![Bytes::from(prefix), Bytes::from(body)])
        .await
        .map_err(|_| crate::error::closed_reason(link.connection()))?;
    send.finish();
    let (tx, rx) = mpsc::channel(CHANNEL_PIECES);
    let conn = link.clone();
    tokio::spawn(async move {
        // Whatever has arrived, up to RECV_PIECE, in one piece: one message
        // per read instead of one per packet, and groups mostly contiguous.
        // Read into uninitialised spare room (one copy); a buffer whose
        // pieces are all dropped is reused by `reserve`.
        let mut buf = BytesMut::with_capacity(RECV_PIECE);
        loop {
            buf.reserve(RECV_PIECE);
            tokio::select! {
                n = recv.read_buf(&mut buf) => match n {
                    Ok(Some(_)) => {
                        let bytes = buf.split().freeze();
                        if tx.send(Ok(bytes)).await.is_err() {
                            recv.stop(STREAM_DROPPED);
                            return;
                        }
                    }
                    Ok(None) => return,
                Err(_) => {
                        let _ = tx
                            .send(Err(crate::error::closed_reason(conn.connection())))
                            .await;
                        return;
                    }
                },
                () = tx.closed() => {
                    recv.stop(STREAM_DROPPED);
                    return;
                }
            }
        }
    });
    Ok(rx)
}

/// Lists the blobs `link`'s peer shares into the link's keyring, after tag
/// name `after`, at most `limit`.
pub async fn list(link: &PeerLink, after: &[u8], limit: u16) -> Result<Vec<ListEntry>, CallError> {
    let body = ListRequest {
        after: after.to_vec(),
        limit,
    }
    .encode()
    .map_err(|e| CallError::Protocol(e.to_string()))?;
    let (mut send, mut recv) = link.open_bi(PROTOCOL_BLOBS).await?;
    let prefix = frame::message_prefix(false, transfer::LIST, body.len())
        .map_err(|e| CallError::Protocol(e.to_string()))?;
    send.write(vec![Bytes::from(prefix), Bytes::from(body)])
        .await
        .map_err(|_| crate::error::closed_reason(link.connection()))?;
    send.finish();
    let max = 2 + transfer::MAX_LIST * (1 + transfer::MAX_NAME + 40);
    let reply = recv
        .read_frame(max)
        .await
        .map_err(|e| crate::error::read_failed(link.connection(), e))?;
    match frame::decode(&reply.bytes, max) {
        Ok(Frame::Response {
            status: Status::Ok,
            body,
        }) => transfer::decode_list(body).map_err(|e| CallError::Protocol(e.to_string())),
        Ok(_) => Err(CallError::Protocol("expected Response".into())),
        Err(e) => Err(CallError::Protocol(e.to_string())),
    }
}

/// A member reached over the mesh, as a [`download::Provider`]: each GET
/// opens a stream on the link to `target` (dialling it if needed within
/// `dial`).
#[derive(Clone)]
pub struct LinkProvider {
    opener: crate::connect::Opener,
    target: crate::protocol::Target,
    dial: Duration,
}

impl std::fmt::Debug for LinkProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinkProvider")
            .field("target", &self.target)
            .finish()
    }
}

impl LinkProvider {
    /// A provider at `target`, reached through `opener`.
    pub fn new(
        opener: crate::connect::Opener,
        target: crate::protocol::Target,
        dial: Duration,
    ) -> Self {
        Self {
            opener,
            target,
            dial,
        }
    }

    /// Lists what the member shares into the target keyring (one page).
    pub async fn list(&self, after: &[u8], limit: u16) -> Result<Vec<ListEntry>, CallError> {
        let deadline = tokio::time::Instant::now() + self.dial;
        let link = self.opener.link(self.target, deadline).await?;
        list(&link, after, limit).await
    }
}

impl download::Provider for LinkProvider {
    fn key(&self) -> PublicKey {
        self.target.peer
    }

    fn get(
        &self,
        items: Vec<Item>,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Answer, CallError>> + Send + 'static>,
    > {
        let this = self.clone();
        Box::pin(async move {
            let deadline = tokio::time::Instant::now() + this.dial;
            let link = this.opener.link(this.target, deadline).await?;
            get(&link, &items).await
        })
    }
}
