//! Serving an admitted connection: every stream the peer opens is routed to
//! the protocol its first byte names (see [`crate::protocol`]). Both the
//! dialling and the accepting side run this for as long as the connection
//! lives; the connection's place in the peer table is held until then.

use std::sync::Arc;

use bytes::Bytes;
use quinn::{RecvStream, SendStream};
use tokio::time::Instant;

use crate::peers::PeerClaim;
use crate::protocol::{refuse_bi, refuse_uni, PeerLink, Protocols};

/// Routes the peer's streams on `link` until the connection ends.
pub(crate) async fn serve(protocols: Arc<Protocols>, link: PeerLink, claim: PeerClaim) {
    let conn = link.connection().clone();
    let grace = link.grace();
    loop {
        tokio::select! {
            bi = conn.accept_bi() => match bi {
                Ok((send, recv)) => {
                    tokio::spawn(route_bi(protocols.clone(), link.clone(), send, recv, grace));
                }
                Err(_) => break,
            },
            uni = conn.accept_uni() => match uni {
                Ok(recv) => {
                    tokio::spawn(route_uni(protocols.clone(), link.clone(), recv, grace));
                }
                Err(_) => break,
            },
        }
    }
    drop(claim);
}

/// The protocol id and the rest of the first chunk, read within `grace`.
async fn preamble(recv: &mut RecvStream, grace: std::time::Duration) -> Option<(u8, Bytes)> {
    let deadline = Instant::now() + grace;
    loop {
        let chunk = tokio::time::timeout_at(deadline, recv.read_chunk(usize::MAX, true))
            .await
            .ok()?
            .ok()??;
        if let Some(&id) = chunk.bytes.first() {
            return Some((id, chunk.bytes.slice(1..)));
        }
    }
}

async fn route_bi(
    protocols: Arc<Protocols>,
    link: PeerLink,
    mut send: SendStream,
    mut recv: RecvStream,
    grace: std::time::Duration,
) {
    let Some((id, head)) = preamble(&mut recv, grace).await else {
        let _ = recv.stop(crate::close::stream_code(crate::close::STREAM_TOO_SLOW));
        let _ = send.reset(crate::close::stream_code(crate::close::STREAM_TOO_SLOW));
        return;
    };
    let recv = link.framed(recv, head);
    match protocols.get(id) {
        Some(p) => p.clone().accept_bi(link, send, recv).await,
        None => refuse_bi(send, recv),
    }
}

async fn route_uni(
    protocols: Arc<Protocols>,
    link: PeerLink,
    mut recv: RecvStream,
    grace: std::time::Duration,
) {
    let Some((id, head)) = preamble(&mut recv, grace).await else {
        let _ = recv.stop(crate::close::stream_code(crate::close::STREAM_TOO_SLOW));
        return;
    };
    let recv = link.framed(recv, head);
    match protocols.get(id) {
        Some(p) => p.clone().accept_uni(link, recv).await,
        None => refuse_uni(recv),
    }
}
