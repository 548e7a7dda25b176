//! The joiner's side: connect to an admin's join endpoint (which must prove
//! the invite issuer's key), send the invite, read the log or a refusal. A
//! join endpoint at its limits refuses new connections (`Busy`); the joiner
//! then tries again with backoff until its deadline.

use std::net::SocketAddr;
use std::sync::Arc;

use keyring_core::membership::PublicKey;
use keyring_core::wire::frame::{self, Frame};
use tokio::time::Instant;

use crate::close::{code, CLOSE_NORMAL};
use crate::dial::SERVER_NAME;
use crate::error::{closed_reason, read_failed, CallError};
use crate::links::backoff;
use crate::node::Node;
use crate::stream::FramedRecv;
use crate::tls::{ServerVerifier, ALPN_JOIN};

/// Joins through the admin at `addr` (whose key must be `issuer`), trying
/// again while it is busy, until `deadline`.
pub(crate) async fn join(
    node: &Arc<Node>,
    addr: SocketAddr,
    issuer: PublicKey,
    invite: &[u8],
    deadline: Instant,
) -> Result<Vec<Vec<u8>>, CallError> {
    let mut delay = backoff::DIAL_FIRST;
    loop {
        match join_once(node, addr, issuer, invite).await {
            Err(CallError::Busy) if Instant::now() + delay < deadline => {
                tokio::time::sleep(backoff::jitter(delay, backoff::random())).await;
                delay = backoff::next(delay, backoff::DIAL_MAX);
            }
            other => return other,
        }
    }
}

async fn join_once(
    node: &Arc<Node>,
    addr: SocketAddr,
    issuer: PublicKey,
    invite: &[u8],
) -> Result<Vec<Vec<u8>>, CallError> {
    let cfg = node.client_config(ServerVerifier::new(issuer, None), ALPN_JOIN)?;
    let conn = node
        .endpoint
        .connect_with(cfg, addr, SERVER_NAME)
        .map_err(|e| CallError::Unreachable(e.to_string()))?
        .await
        .map_err(|e| CallError::from_connection(&e))?;
    let claim = node
        .peers
        .claim(issuer, None)
        .ok_or_else(|| CallError::Protocol("no place for the connection".into()))?;
    let (mut send, recv) = conn
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
    let mut recv = FramedRecv::answer(recv, claim.budget().clone(), node.rules);
    let reply = recv
        .read_frame(node.max_payload)
        .await
        .map_err(|e| read_failed(&conn, e))?;
    let out = match frame::decode(&reply.bytes, node.max_payload) {
        Ok(Frame::JoinAccepted { entries }) => Ok(entries.iter().map(|e| e.to_vec()).collect()),
        Ok(Frame::JoinRefused(r)) => Err(CallError::Refused(r)),
        Ok(_) => Err(CallError::Protocol("expected JoinAccepted".into())),
        Err(e) => Err(CallError::Protocol(e.to_string())),
    };
    conn.close(code(CLOSE_NORMAL), b"joined");
    out
}
