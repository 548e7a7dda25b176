//! Accepting side: admits members after the handshake and a Hello naming a
//! keyring they belong to, then serves their streams; the join endpoint takes
//! exactly one JoinRequest per connection.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use keyring_core::membership::PublicKey;
use keyring_core::wire::frame::{self, Frame, Refusal};
use quinn::{Connection, RecvStream, SendStream, VarInt};

use crate::mesh::{Event, Inner, CLOSE_REFUSED};
use crate::rate::TokenBucket;
use crate::stream::{read_frame, ReadFrameError};
use crate::tls::key_from_spki;

const HELLO_LIMIT: usize = 64;
const FIRST_STREAM_TIMEOUT: Duration = Duration::from_secs(5);

/// The TLS-authenticated key of the peer.
pub(crate) fn peer_key(conn: &Connection) -> Option<PublicKey> {
    let any = conn.peer_identity()?;
    let certs = any
        .downcast::<Vec<rustls::pki_types::CertificateDer<'static>>>()
        .ok()?;
    key_from_spki(certs.first()?)
}

pub(crate) async fn accept_members(inner: Arc<Inner>) {
    while let Some(incoming) = inner.endpoint.accept().await {
        let inner = inner.clone();
        tokio::spawn(async move {
            // A failed handshake (non-member, wrong key) ends here: the
            // connection never reaches the application.
            if let Ok(conn) = incoming.await {
                admit(inner, conn).await;
            }
        });
    }
}

async fn refuse(conn: &Connection, mut send: SendStream, reason: Refusal) {
    if let Ok(bytes) = Frame::Refused(reason).encode() {
        let _ = send.write_all(&bytes).await;
        let _ = send.finish();
        let _ = tokio::time::timeout(Duration::from_secs(1), send.stopped()).await;
    }
    conn.close(VarInt::from_u64(CLOSE_REFUSED).expect("small"), b"refused");
}

async fn admit(inner: Arc<Inner>, conn: Connection) {
    let Some(peer) = peer_key(&conn) else {
        conn.close(VarInt::from_u64(CLOSE_REFUSED).expect("small"), b"no key");
        return;
    };
    let Ok(Ok((send, mut recv))) =
        tokio::time::timeout(FIRST_STREAM_TIMEOUT, conn.accept_bi()).await
    else {
        conn.close(VarInt::from_u64(CLOSE_REFUSED).expect("small"), b"no hello");
        return;
    };
    let Ok(bytes) = read_frame(&mut recv, HELLO_LIMIT).await else {
        return refuse(&conn, send, Refusal::ProtocolViolation).await;
    };
    let keyring = match frame::decode(&bytes, HELLO_LIMIT) {
        Ok(Frame::Hello { keyring_id }) => keyring_id,
        _ => return refuse(&conn, send, Refusal::ProtocolViolation).await,
    };
    if !inner.members.has_keyring(&keyring) {
        return refuse(&conn, send, Refusal::UnknownKeyring).await;
    }
    if !inner.members.is_member(&keyring, &peer) {
        return refuse(&conn, send, Refusal::NotMember).await;
    }
    // Register first: once the client reads Welcome it may expect us to know it.
    inner.register(keyring, peer, conn.clone(), false);
    let mut send = send;
    let welcome = Frame::Welcome.encode().expect("fixed frame");
    if send.write_all(&welcome).await.is_err() || send.finish().is_err() {
        return;
    }
    serve(inner, keyring, peer, conn).await;
}

/// Serves the streams a member opens on an admitted connection (both the
/// dialling and the accepting side run this).
pub(crate) async fn serve(
    inner: Arc<Inner>,
    keyring: PublicKey,
    peer: PublicKey,
    conn: Connection,
) {
    loop {
        tokio::select! {
            bi = conn.accept_bi() => match bi {
                Ok((send, recv)) => {
                    tokio::spawn(request(inner.clone(), keyring, peer, send, recv));
                }
                Err(_) => return,
            },
            uni = conn.accept_uni() => match uni {
                Ok(recv) => {
                    tokio::spawn(one_way(inner.clone(), keyring, peer, recv));
                }
                Err(_) => return,
            },
        }
    }
}

async fn request(
    inner: Arc<Inner>,
    keyring: PublicKey,
    peer: PublicKey,
    mut send: SendStream,
    mut recv: RecvStream,
) {
    let bytes = match read_frame(&mut recv, inner.max_payload).await {
        Ok(bytes) => bytes,
        Err(ReadFrameError::Frame(_)) => return bad_request(send).await,
        Err(ReadFrameError::Stream) => {
            let _ = send.reset(VarInt::from_u32(1));
            return;
        }
    };
    match frame::decode(&bytes, inner.max_payload) {
        Ok(Frame::Request { name, body }) if inner.members.is_member(&keyring, &peer) => {
            let (name, offset) = (name.to_owned(), bytes.len() - body.len());
            let id = inner.park(send);
            inner.sink.deliver(Event::Request {
                id,
                keyring,
                peer,
                name,
                body: Bytes::from(bytes).slice(offset..),
            });
        }
        _ => bad_request(send).await,
    }
}

/// Answers a malformed or unexpected request with BadRequest (never a crash).
async fn bad_request(mut send: SendStream) {
    if let Ok(reply) = (Frame::Response {
        status: frame::Status::BadRequest,
        body: &[],
    })
    .encode()
    {
        let _ = send.write_all(&reply).await;
        let _ = send.finish();
    }
}

async fn one_way(inner: Arc<Inner>, keyring: PublicKey, peer: PublicKey, mut recv: RecvStream) {
    let Ok(bytes) = read_frame(&mut recv, inner.max_payload).await else {
        return;
    };
    if !inner.members.is_member(&keyring, &peer) {
        return;
    }
    match frame::decode(&bytes, inner.max_payload) {
        Ok(Frame::Cast { name, body }) => {
            let (name, offset) = (name.to_owned(), bytes.len() - body.len());
            inner.sink.deliver(Event::Cast {
                keyring,
                peer,
                name,
                body: Bytes::from(bytes).slice(offset..),
            })
        }
        Ok(Frame::LogUpdate {
            keyring_id,
            entries,
        }) if keyring_id == keyring => inner.sink.deliver(Event::LogUpdate {
            keyring,
            peer,
            entries: entries.iter().map(|e| e.to_vec()).collect(),
        }),
        _ => {}
    }
}

/// Most join connections served at once; more are refused before the
/// handshake (the join endpoint accepts any key, so it must stay cheap).
pub(crate) const MAX_JOINS_IN_FLIGHT: usize = 32;
/// New join connections admitted per second on average (bursts up to
/// [`MAX_JOINS_IN_FLIGHT`]); the rest are refused before the handshake.
pub(crate) const JOINS_PER_SECOND: u32 = 20;

pub(crate) async fn accept_joins(inner: Arc<Inner>) {
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_JOINS_IN_FLIGHT));
    let mut rate = TokenBucket::new(
        MAX_JOINS_IN_FLIGHT as u32,
        JOINS_PER_SECOND,
        std::time::Instant::now(),
    );
    while let Some(incoming) = inner.join_endpoint.accept().await {
        // A source address that has not answered a Retry may be spoofed:
        // make it prove it before spending a handshake on it.
        if !incoming.remote_address_validated() && incoming.may_retry() {
            let _ = incoming.retry();
            continue;
        }
        if !rate.take(std::time::Instant::now()) {
            incoming.refuse();
            continue;
        }
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            incoming.refuse();
            continue;
        };
        let inner = inner.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let Ok(conn) = incoming.await else { return };
            let Some(peer) = peer_key(&conn) else { return };
            let Ok(Ok((send, mut recv))) =
                tokio::time::timeout(FIRST_STREAM_TIMEOUT, conn.accept_bi()).await
            else {
                return;
            };
            let Ok(bytes) = read_frame(&mut recv, 4096).await else {
                return;
            };
            match frame::decode(&bytes, 4096) {
                Ok(Frame::JoinRequest { invite }) => {
                    let id = inner.park(send);
                    inner.sink.deliver(Event::JoinRequest {
                        id,
                        peer,
                        invite: invite.to_vec(),
                    });
                    // Keep the connection until the client closes it.
                    let _ = tokio::time::timeout(Duration::from_secs(30), conn.closed()).await;
                }
                _ => refuse(&conn, send, Refusal::ProtocolViolation).await,
            }
        });
    }
}
