//! One mesh node's shared state: its member endpoint and TLS identity, the
//! membership snapshots, the link table, what each peer holds, and the
//! protocols it serves. The tasks of `dial`, `admit`, `serve` and `connect`
//! all work on it; it decides nothing itself.

use std::sync::Arc;

use keyring_core::membership::PublicKey;
use quinn::crypto::rustls::QuicClientConfig;
use quinn::{Connection, Endpoint, TransportConfig};
use rustls::crypto::CryptoProvider;
use rustls::sign::CertifiedKey;

use crate::close::{code, CLOSE_REVOKED};
use crate::config::Limits;
use crate::error::CallError;
use crate::event::EventSink;
use crate::links::LinkTable;
use crate::members::Members;
use crate::peers::{PeerClaim, PeerTable};
use crate::protocol::{PeerLink, Protocols};
use crate::stream::StreamRules;
use crate::tls::{self, ServerVerifier};

/// The node's TLS identity.
pub(crate) struct Identity {
    pub(crate) provider: Arc<CryptoProvider>,
    pub(crate) key: Arc<CertifiedKey>,
    pub(crate) public_key: PublicKey,
}

/// Everything the mesh's tasks share.
pub(crate) struct Node {
    pub(crate) endpoint: Endpoint,
    pub(crate) identity: Identity,
    pub(crate) members: Arc<Members>,
    pub(crate) links: LinkTable,
    pub(crate) peers: Arc<PeerTable>,
    pub(crate) protocols: Arc<Protocols>,
    pub(crate) sink: Arc<dyn EventSink>,
    pub(crate) limits: Limits,
    pub(crate) rules: StreamRules,
    pub(crate) max_payload: usize,
    pub(crate) transport: Arc<TransportConfig>,
}

impl Node {
    /// A client config that expects the server to prove `verifier`'s key.
    pub(crate) fn client_config(
        &self,
        verifier: ServerVerifier,
        alpn: &[u8],
    ) -> Result<quinn::ClientConfig, CallError> {
        let tls = tls::client_config(
            &self.identity.provider,
            self.identity.key.clone(),
            verifier,
            alpn,
        )
        .map_err(|e| CallError::Protocol(e.to_string()))?;
        let quic =
            QuicClientConfig::try_from(tls).map_err(|e| CallError::Protocol(e.to_string()))?;
        let mut cfg = quinn::ClientConfig::new(Arc::new(quic));
        cfg.transport_config(self.transport.clone());
        Ok(cfg)
    }

    /// The protocol-facing view of an admitted connection.
    pub(crate) fn link(
        &self,
        keyring: PublicKey,
        peer: PublicKey,
        conn: Connection,
        claim: &PeerClaim,
    ) -> PeerLink {
        PeerLink::new(
            keyring,
            peer,
            conn,
            claim.budget().clone(),
            self.rules,
            self.members.clone(),
        )
    }

    /// Closes every link whose peer is no longer a current member (of
    /// `only`, or of any keyring). Returns how many were closed.
    pub(crate) fn revalidate(&self, only: Option<&PublicKey>) -> usize {
        let closed = self.links.remove_where(|(keyring, peer)| {
            only.is_none_or(|k| k == keyring) && !self.members.is_member(keyring, peer)
        });
        for conn in &closed {
            conn.close(code(CLOSE_REVOKED), b"revoked");
        }
        closed.len()
    }
}
