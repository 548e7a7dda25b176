//! Dialling side: one admitted connection per (keyring, peer), dialled on
//! demand with exponential backoff; a connection counts only after the
//! server's Welcome (the first authenticated exchange).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use keyring_core::membership::PublicKey;
use keyring_core::wire::frame::{self, Frame, Status};
use quinn::Connection;
use tokio::time::Instant;

use crate::error::CallError;
use crate::mesh::Inner;
use crate::stream::{read_frame, ReadFrameError};
use crate::tls::{ServerVerifier, ALPN_JOIN, ALPN_MESH};

const SERVER_NAME: &str = "keyring.invalid";
const BACKOFF_START: Duration = Duration::from_millis(50);
const BACKOFF_MAX: Duration = Duration::from_secs(2);

/// The open connection to `peer` in `keyring`, if there is one.
pub(crate) fn live(inner: &Inner, keyring: PublicKey, peer: PublicKey) -> Option<Connection> {
    inner
        .lock_conns()
        .get(&(keyring, peer))
        .map(|link| &link.conn)
        .filter(|c| c.close_reason().is_none())
        .cloned()
}

/// Dials `peer` for `keyring` once: handshake, Hello, Welcome.
pub(crate) async fn dial(
    inner: &Arc<Inner>,
    keyring: PublicKey,
    peer: PublicKey,
    addr: SocketAddr,
) -> Result<Connection, CallError> {
    let verifier = ServerVerifier::new(peer, Some((keyring, inner.members.clone())));
    let cfg = inner.client_config(verifier, ALPN_MESH)?;
    let connecting = inner
        .endpoint
        .connect_with(cfg, addr, SERVER_NAME)
        .map_err(|e| CallError::Unreachable(e.to_string()))?;
    let conn = connecting
        .await
        .map_err(|e| CallError::from_connection(&e))?;
    // Provisional until the server answers: a client the server refused only
    // learns it here.
    let lost = |e: &quinn::ConnectionError| CallError::from_connection(e);
    let (mut send, mut recv) = conn.open_bi().await.map_err(|e| lost(&e))?;
    let hello = Frame::Hello {
        keyring_id: keyring,
    }
    .encode()
    .expect("fixed frame");
    send.write_all(&hello)
        .await
        .map_err(|_| closed_reason(&conn))?;
    let _ = send.finish();
    let reply = read_frame(&mut recv, 64)
        .await
        .map_err(|e| read_failed(&conn, e))?;
    match frame::decode(&reply, 64) {
        Ok(Frame::Welcome) => {}
        Ok(Frame::Refused(r)) => return Err(CallError::Refused(r)),
        Ok(_) => return Err(CallError::Protocol("expected Welcome".into())),
        Err(e) => return Err(CallError::Protocol(e.to_string())),
    }
    inner.register(keyring, peer, conn.clone(), true);
    tokio::spawn(crate::server::serve(
        inner.clone(),
        keyring,
        peer,
        conn.clone(),
    ));
    Ok(conn)
}

fn read_failed(conn: &Connection, e: ReadFrameError) -> CallError {
    match e {
        ReadFrameError::Stream => closed_reason(conn),
        ReadFrameError::Frame(e) => CallError::Protocol(e.to_string()),
    }
}

fn closed_reason(conn: &Connection) -> CallError {
    match conn.close_reason() {
        Some(e) => CallError::from_connection(&e),
        None => CallError::ConnectionLost("stream failed".into()),
    }
}

/// The admitted connection to `peer`, dialling (with backoff) if needed.
pub(crate) async fn connection(
    inner: &Arc<Inner>,
    keyring: PublicKey,
    peer: PublicKey,
    addr: Option<SocketAddr>,
    deadline: Instant,
) -> Result<Connection, CallError> {
    if !inner.members.is_member(&keyring, &peer) {
        return Err(CallError::NotMember);
    }
    if let Some(c) = live(inner, keyring, peer) {
        return Ok(c);
    }
    let gate = inner
        .dialing
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .entry((keyring, peer))
        .or_default()
        .clone();
    let _dialling = gate.lock().await;
    if let Some(c) = live(inner, keyring, peer) {
        return Ok(c);
    }
    let addr = match addr {
        Some(a) => a,
        None => *inner.lock_addrs().get(&peer).ok_or(CallError::NoAddress)?,
    };
    let mut delay = BACKOFF_START;
    loop {
        match dial(inner, keyring, peer, addr).await {
            Ok(c) => return Ok(c),
            Err(
                e @ (CallError::Refused(_)
                | CallError::HandshakeRejected(_)
                | CallError::NotMember
                | CallError::Closed),
            ) => return Err(e),
            Err(e) => {
                if Instant::now() + delay >= deadline {
                    return Err(e);
                }
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(BACKOFF_MAX);
            }
        }
    }
}

/// A Request or Cast frame: its prefix, then the body's pieces.
fn message(cast: bool, name: &str, body: Vec<Bytes>) -> Result<Vec<Bytes>, CallError> {
    let len = body.iter().map(Bytes::len).sum();
    let prefix =
        frame::message_prefix(cast, name, len).map_err(|e| CallError::Protocol(e.to_string()))?;
    let mut message = Vec::with_capacity(body.len() + 1);
    message.push(Bytes::from(prefix));
    message.extend(body);
    Ok(message)
}

pub(crate) async fn call(
    inner: &Arc<Inner>,
    keyring: PublicKey,
    peer: PublicKey,
    addr: Option<SocketAddr>,
    name: &str,
    body: Vec<Bytes>,
    deadline: Instant,
) -> Result<(Status, Vec<u8>), CallError> {
    let message = message(false, name, body)?;
    let mut retried = false;
    loop {
        let conn = connection(inner, keyring, peer, addr, deadline).await?;
        let attempt = async {
            let (mut send, mut recv) = conn
                .open_bi()
                .await
                .map_err(|e| CallError::from_connection(&e))?;
            send.write_all_chunks(&mut message.clone())
                .await
                .map_err(|_| closed_reason(&conn))?;
            let _ = send.finish();
            read_frame(&mut recv, inner.max_payload)
                .await
                .map_err(|e| read_failed(&conn, e))
        };
        match attempt.await {
            Ok(bytes) => {
                return match frame::decode(&bytes, inner.max_payload) {
                    Ok(Frame::Response { status, body }) => Ok((status, body.to_vec())),
                    Ok(_) => Err(CallError::Protocol("expected Response".into())),
                    Err(e) => Err(CallError::Protocol(e.to_string())),
                }
            }
            // A cached connection may have died since we picked it: redial once.
            Err(CallError::ConnectionLost(_)) if !retried => retried = true,
            Err(e) => return Err(e),
        }
    }
}

pub(crate) async fn cast(
    inner: &Arc<Inner>,
    keyring: PublicKey,
    peer: PublicKey,
    addr: Option<SocketAddr>,
    name: &str,
    body: Vec<Bytes>,
    deadline: Instant,
) -> Result<(), CallError> {
    let mut message = message(true, name, body)?;
    let conn = connection(inner, keyring, peer, addr, deadline).await?;
    let mut send = conn
        .open_uni()
        .await
        .map_err(|e| CallError::from_connection(&e))?;
    send.write_all_chunks(&mut message)
        .await
        .map_err(|_| closed_reason(&conn))?;
    let _ = send.finish();
    Ok(())
}

pub(crate) async fn join(
    inner: &Arc<Inner>,
    addr: SocketAddr,
    issuer: PublicKey,
    invite: &[u8],
) -> Result<Vec<Vec<u8>>, CallError> {
    let cfg = inner.client_config(ServerVerifier::new(issuer, None), ALPN_JOIN)?;
    let conn = inner
        .endpoint
        .connect_with(cfg, addr, SERVER_NAME)
        .map_err(|e| CallError::Unreachable(e.to_string()))?
        .await
        .map_err(|e| CallError::from_connection(&e))?;
    let (mut send, mut recv) = conn
        .open_bi()
        .await
        .map_err(|e| CallError::from_connection(&e))?;
    let request = Frame::JoinRequest { invite }
        .encode()
        .map_err(|e| CallError::Protocol(e.to_string()))?;
    send.write_all(&request)
        .await
        .map_err(|_| closed_reason(&conn))?;
    let _ = send.finish();
    let reply = read_frame(&mut recv, inner.max_payload)
        .await
        .map_err(|e| read_failed(&conn, e))?;
    let out = match frame::decode(&reply, inner.max_payload) {
        Ok(Frame::JoinAccepted { entries }) => Ok(entries.iter().map(|e| e.to_vec()).collect()),
        Ok(Frame::JoinRefused(r)) => Err(CallError::Refused(r)),
        Ok(_) => Err(CallError::Protocol("expected JoinAccepted".into())),
        Err(e) => Err(CallError::Protocol(e.to_string())),
    };
    conn.close(quinn::VarInt::from_u32(0), b"joined");
    out
}
