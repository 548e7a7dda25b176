//! Dialling a member: the TLS handshake (the server must prove the key we
//! dial and be a member of the keyring), then a Hello naming the keyring and
//! the server's Welcome. A connection counts only after the Welcome (the
//! first authenticated exchange); `connect` then adopts it.

use std::net::SocketAddr;

use keyring_core::membership::PublicKey;
use keyring_core::wire::frame::{self, Frame};
use quinn::Connection;

use crate::error::{closed_reason, read_failed, CallError};
use crate::node::Node;
use crate::peers::PeerClaim;
use crate::stream::FramedRecv;
use crate::tls::{ServerVerifier, ALPN_MESH};

/// The server name quinn wants; the verifiers ignore it (keys are checked).
pub(crate) const SERVER_NAME: &str = "keyring.invalid";

/// Largest Hello, Welcome or Refused payload.
pub(crate) const HELLO_LIMIT: usize = 64;

/// Dials `peer` for `keyring` once: handshake, Hello, Welcome.
pub(crate) async fn dial(
    node: &Node,
    keyring: PublicKey,
    peer: PublicKey,
    addr: SocketAddr,
) -> Result<(Connection, PeerClaim), CallError> {
    let verifier = ServerVerifier::new(peer, Some((keyring, node.members.clone())));
    let cfg = node.client_config(verifier, ALPN_MESH)?;
    let conn = node
        .endpoint
        .connect_with(cfg, addr, SERVER_NAME)
        .map_err(|e| CallError::Unreachable(e.to_string()))?
        .await
        .map_err(|e| CallError::from_connection(&e))?;
    // Our own dials are not capped, but they share the peer's budget.
    let claim = node
        .peers
        .claim(peer, None)
        .ok_or_else(|| CallError::Protocol("no place for the connection".into()))?;
    // Provisional until the server answers: a client the server refused only
    // learns it here.
    let (mut send, recv) = conn
        .open_bi()
        .await
        .map_err(|e| CallError::from_connection(&e))?;
    let hello = Frame::Hello {
        keyring_id: keyring,
    }
    .encode()
    .map_err(|e| CallError::Protocol(e.to_string()))?;
    send.write_all(&hello)
        .await
        .map_err(|_| closed_reason(&conn))?;
    let _ = send.finish();
    let mut recv = FramedRecv::answer(recv, claim.budget().clone(), node.rules);
    let reply = recv
        .read_frame(HELLO_LIMIT)
        .await
        .map_err(|e| read_failed(&conn, e))?;
    match frame::decode(&reply.bytes, HELLO_LIMIT) {
        Ok(Frame::Welcome) => Ok((conn, claim)),
        Ok(Frame::Refused(r)) => Err(CallError::Refused(r)),
        Ok(_) => Err(CallError::Protocol("expected Welcome".into())),
        Err(e) => Err(CallError::Protocol(e.to_string())),
    }
}
