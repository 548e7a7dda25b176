//! TLS 1.3 with Ed25519 raw public keys (RFC 7250), checked against the
//! membership snapshot inside the handshake on both sides.
//!
//! The "certificate" each side presents is its Ed25519 SubjectPublicKeyInfo
//! (44 bytes). Handshake signatures are checked with
//! `keyring_core::identity::verify_strict`, the one rule Keyring uses
//! everywhere. Resumption, 0-RTT and SNI are off; only TLS 1.3 is offered.

use std::fmt;
use std::sync::Arc;

use keyring_core::identity::verify_strict;
use keyring_core::membership::PublicKey;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, Error as TlsError, SignatureScheme};

use crate::members::Members;

/// ALPN of the member protocol.
pub const ALPN_MESH: &[u8] = b"keyring/1";
/// ALPN of the join protocol (separate endpoint; accepts non-members).
pub const ALPN_JOIN: &[u8] = b"keyring-join/1";

const SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];
const PKCS8_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

/// The SPKI DER of an Ed25519 public key.
pub fn spki(key: &PublicKey) -> Vec<u8> {
    [&SPKI_PREFIX[..], &key[..]].concat()
}

/// The Ed25519 key inside an SPKI, if that is what it is.
pub fn key_from_spki(spki: &[u8]) -> Option<PublicKey> {
    if spki.len() != 44 || spki[..12] != SPKI_PREFIX {
        return None;
    }
    spki[12..].try_into().ok()
}

/// The key a connection's peer proved in the TLS handshake.
pub(crate) fn peer_key(conn: &quinn::Connection) -> Option<PublicKey> {
    let any = conn.peer_identity()?;
    let certs = any.downcast::<Vec<CertificateDer<'static>>>().ok()?;
    key_from_spki(certs.first()?)
}

/// The crypto provider both sides use: aws-lc-rs with the hybrid
/// X25519MLKEM768 group first (feature `pq`, the default), or ring with X25519.
#[cfg(feature = "pq")]
pub fn provider() -> Arc<CryptoProvider> {
    use rustls::crypto::aws_lc_rs::{default_provider, kx_group};
    let mut p = default_provider();
    p.kx_groups = vec![kx_group::X25519MLKEM768, kx_group::X25519];
    Arc::new(p)
}

/// The crypto provider both sides use: ring with X25519 (ring has no ML-KEM).
#[cfg(not(feature = "pq"))]
pub fn provider() -> Arc<CryptoProvider> {
    let mut p = rustls::crypto::ring::default_provider();
    p.kx_groups = vec![rustls::crypto::ring::kx_group::X25519];
    Arc::new(p)
}

pub(crate) fn certified_key(
    provider: &CryptoProvider,
    seed: &[u8; 32],
    public: &PublicKey,
) -> Result<Arc<rustls::sign::CertifiedKey>, TlsError> {
    let pkcs8 = [&PKCS8_PREFIX[..], &seed[..]].concat();
    let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pkcs8));
    let signing = provider.key_provider.load_private_key(der)?;
    Ok(Arc::new(rustls::sign::CertifiedKey::new(
        vec![CertificateDer::from(spki(public))],
        signing,
    )))
}

fn check_signature(
    message: &[u8],
    cert: &CertificateDer<'_>,
    dss: &DigitallySignedStruct,
) -> Result<HandshakeSignatureValid, TlsError> {
    if dss.scheme != SignatureScheme::ED25519 {
        return Err(TlsError::PeerMisbehaved(
            rustls::PeerMisbehaved::SignedHandshakeWithUnadvertisedSigScheme,
        ));
    }
    let key = key_from_spki(cert).ok_or(TlsError::InvalidCertificate(
        rustls::CertificateError::BadEncoding,
    ))?;
    match verify_strict(&key, message, dss.signature()) {
        Ok(true) => Ok(HandshakeSignatureValid::assertion()),
        _ => Err(TlsError::InvalidCertificate(
            rustls::CertificateError::BadSignature,
        )),
    }
}

fn tls12_refused() -> Result<HandshakeSignatureValid, TlsError> {
    Err(TlsError::PeerIncompatible(
        rustls::PeerIncompatible::Tls12NotOffered,
    ))
}

fn not_admitted() -> TlsError {
    TlsError::InvalidCertificate(rustls::CertificateError::ApplicationVerificationFailure)
}

/// Who a server accepts as client.
#[derive(Clone)]
pub(crate) enum ClientPolicy {
    /// A current member of any keyring this node is in.
    AnyMember(Arc<Members>),
    /// Anybody holding an Ed25519 key (join endpoint: the invite decides).
    AnyKey,
}

pub(crate) struct ClientVerifier {
    policy: ClientPolicy,
}

impl fmt::Debug for ClientVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClientVerifier")
    }
}

impl ClientVerifier {
    pub(crate) fn new(policy: ClientPolicy) -> Arc<Self> {
        Arc::new(Self { policy })
    }
}

impl ClientCertVerifier for ClientVerifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, TlsError> {
        if !intermediates.is_empty() {
            return Err(not_admitted());
        }
        let key = key_from_spki(end_entity).ok_or(not_admitted())?;
        match &self.policy {
            ClientPolicy::AnyKey => Ok(ClientCertVerified::assertion()),
            ClientPolicy::AnyMember(members) if members.is_member_of_any(&key) => {
                Ok(ClientCertVerified::assertion())
            }
            ClientPolicy::AnyMember(members) => {
                members.count_rejection();
                Err(not_admitted())
            }
        }
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        tls12_refused()
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        check_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        vec![SignatureScheme::ED25519]
    }

    fn requires_raw_public_keys(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }
}

/// The client's check of the server: it must hold exactly the key we dialled,
/// and (for the member protocol) that key must be a current member of the
/// keyring the connection is for.
pub(crate) struct ServerVerifier {
    expected: PublicKey,
    keyring: Option<(PublicKey, Arc<Members>)>,
}

impl fmt::Debug for ServerVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ServerVerifier")
    }
}

impl ServerVerifier {
    pub(crate) fn new(expected: PublicKey, keyring: Option<(PublicKey, Arc<Members>)>) -> Self {
        Self { expected, keyring }
    }
}

impl ServerCertVerifier for ServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, TlsError> {
        if !intermediates.is_empty() {
            return Err(not_admitted());
        }
        let key = key_from_spki(end_entity).ok_or(not_admitted())?;
        if key != self.expected {
            return Err(not_admitted());
        }
        if let Some((keyring, members)) = &self.keyring {
            if !members.is_member(keyring, &key) {
                members.count_rejection();
                return Err(not_admitted());
            }
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        tls12_refused()
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        check_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        vec![SignatureScheme::ED25519]
    }

    fn requires_raw_public_keys(&self) -> bool {
        true
    }
}

/// Builds the rustls server config for one ALPN.
pub(crate) fn server_config(
    provider: &Arc<CryptoProvider>,
    key: Arc<rustls::sign::CertifiedKey>,
    policy: ClientPolicy,
    alpn: &[u8],
) -> Result<rustls::ServerConfig, TlsError> {
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_client_cert_verifier(ClientVerifier::new(policy))
        .with_cert_resolver(Arc::new(
            rustls::server::AlwaysResolvesServerRawPublicKeys::new(key),
        ));
    cfg.alpn_protocols = vec![alpn.to_vec()];
    cfg.max_early_data_size = 0;
    cfg.send_tls13_tickets = 0;
    cfg.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    Ok(cfg)
}

/// Builds the rustls client config for one connection.
pub(crate) fn client_config(
    provider: &Arc<CryptoProvider>,
    key: Arc<rustls::sign::CertifiedKey>,
    verifier: ServerVerifier,
    alpn: &[u8],
) -> Result<rustls::ClientConfig, TlsError> {
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_client_cert_resolver(Arc::new(
            rustls::client::AlwaysResolvesClientRawPublicKeys::new(key),
        ));
    cfg.alpn_protocols = vec![alpn.to_vec()];
    cfg.enable_sni = false;
    cfg.enable_early_data = false;
    cfg.resumption = rustls::client::Resumption::disabled();
    Ok(cfg)
}

/// A quinn client config presenting the key of `seed` and accepting only a
/// server that proves `server` (no membership check on our side). For tools
/// and tests that speak the wire protocol directly, e.g. to check how a node
/// treats a misbehaving peer.
pub fn raw_client_config(
    seed: &[u8; 32],
    server: PublicKey,
    alpn: &[u8],
) -> Result<quinn::ClientConfig, TlsError> {
    let provider = provider();
    let public = keyring_core::identity::KeyPair::from_seed(seed).public_key();
    let key = certified_key(&provider, seed, &public)?;
    let tls = client_config(&provider, key, ServerVerifier::new(server, None), alpn)?;
    let quic = quinn::crypto::rustls::QuicClientConfig::try_from(tls)
        .map_err(|e| TlsError::General(e.to_string()))?;
    Ok(quinn::ClientConfig::new(Arc::new(quic)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(feature = "pq")]
    #[test]
    fn hybrid_post_quantum_group_is_preferred() {
        let p = provider();
        assert_eq!(p.kx_groups[0].name(), rustls::NamedGroup::X25519MLKEM768);
    }

    #[test]
    fn spki_roundtrips_and_rejects_other_shapes() {
        let key = [7u8; 32];
        let s = spki(&key);
        assert_eq!(s.len(), 44);
        assert_eq!(key_from_spki(&s), Some(key));
        assert_eq!(key_from_spki(&s[1..]), None);
        let mut other = s.clone();
        other[7] = 0x71; // a different algorithm OID (Ed448)
        assert_eq!(key_from_spki(&other), None);
    }
}
