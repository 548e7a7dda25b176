//! Plain quinn baseline for bench/mesh.exs: the same TLS 1.3 + Ed25519 raw
//! public key handshake and cipher suites as Keyring's mesh, but no
//! membership checks, no Keyring frames, no BEAM. Client and server run in
//! this process on loopback with 2 tokio workers (the two meshes of
//! bench/mesh.exs have one each).
//!
//! Usage: quic_baseline [bulk_mib] [rpc_count] [handshakes]
//! Prints `key=value` lines: handshakes_per_s, rpc_per_s, bulk_mib_per_s,
//! cpu_s_per_gib, and rpc_preamble_per_s: the same round trips with a
//! protocol byte in front of each request, routed by the server as
//! keyring_net routes streams (the cost of a stream-type byte; the cost of an
//! ALPN per protocol is one more handshake per protocol and pair).

use std::sync::Arc;
use std::time::Instant;

use keyring_net::tls::spki;
use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use quinn::{Endpoint, TransportConfig, VarInt};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};

// The same allocator as the NIF, so the comparison is about the protocol stack.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug)]
struct AcceptAny;

impl ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::General("tls12".into()))
    }
    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify(m, c, d)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        vec![SignatureScheme::ED25519]
    }
    fn requires_raw_public_keys(&self) -> bool {
        true
    }
}

impl ClientCertVerifier for AcceptAny {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }
    fn verify_client_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::General("tls12".into()))
    }
    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify(m, c, d)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        vec![SignatureScheme::ED25519]
    }
    fn requires_raw_public_keys(&self) -> bool {
        true
    }
}

fn verify(
    m: &[u8],
    c: &CertificateDer<'_>,
    d: &DigitallySignedStruct,
) -> Result<HandshakeSignatureValid, rustls::Error> {
    let key = keyring_net::tls::key_from_spki(c).ok_or(rustls::Error::General("spki".into()))?;
    match keyring_core::identity::verify_strict(&key, m, d.signature()) {
        Ok(true) => Ok(HandshakeSignatureValid::assertion()),
        _ => Err(rustls::Error::General("sig".into())),
    }
}

fn certified(provider: &rustls::crypto::CryptoProvider) -> Arc<rustls::sign::CertifiedKey> {
    let kp = keyring_core::identity::KeyPair::generate().unwrap();
    let mut pkcs8 = vec![
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    pkcs8.extend_from_slice(&*kp.seed());
    let signing = provider
        .key_provider
        .load_private_key(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pkcs8)))
        .unwrap();
    Arc::new(rustls::sign::CertifiedKey::new(
        vec![CertificateDer::from(spki(&kp.public_key()))],
        signing,
    ))
}

/// The server's protocol table (one registered id), as keyring_net's.
static ROUTES: [Option<&str>; 256] = {
    let mut r = [None; 256];
    r[1] = Some("rpc");
    r
};

fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = f.get(11).and_then(|s| s.parse().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|s| s.parse().ok()).unwrap_or(0.0);
    ticks / 100.0
}

#[tokio::main(worker_threads = 2)]
async fn main() {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let bulk_mib = *args.first().unwrap_or(&512);
    let rpcs = *args.get(1).unwrap_or(&5000);
    let handshakes = *args.get(2).unwrap_or(&300);

    // The same provider and key-exchange groups as the mesh.
    let provider = keyring_net::tls::provider();
    let mut transport = TransportConfig::default();
    transport
        .stream_receive_window(VarInt::from_u32(16 << 20))
        .receive_window(VarInt::from_u32(64 << 20))
        .send_window(64 << 20);
    let transport = Arc::new(transport);

    let mut server_tls = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_client_cert_verifier(Arc::new(AcceptAny))
        .with_cert_resolver(Arc::new(
            rustls::server::AlwaysResolvesServerRawPublicKeys::new(certified(&provider)),
        ));
    server_tls.alpn_protocols = vec![b"bench".to_vec(), b"bench-p".to_vec()];
    let mut server_cfg =
        quinn::ServerConfig::with_crypto(Arc::new(QuicServerConfig::try_from(server_tls).unwrap()));
    server_cfg.transport_config(transport.clone());
    let server = Endpoint::server(server_cfg, "127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = server.local_addr().unwrap();

    let mut client_tls = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAny))
        .with_client_cert_resolver(Arc::new(
            rustls::client::AlwaysResolvesClientRawPublicKeys::new(certified(&provider)),
        ));
    client_tls.resumption = rustls::client::Resumption::disabled();
    let mut preamble_tls = client_tls.clone();
    client_tls.alpn_protocols = vec![b"bench".to_vec()];
    preamble_tls.alpn_protocols = vec![b"bench-p".to_vec()];
    let mut client_cfg =
        quinn::ClientConfig::new(Arc::new(QuicClientConfig::try_from(client_tls).unwrap()));
    client_cfg.transport_config(transport.clone());
    let mut preamble_cfg =
        quinn::ClientConfig::new(Arc::new(QuicClientConfig::try_from(preamble_tls).unwrap()));
    preamble_cfg.transport_config(transport);
    let mut client = Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
    client.set_default_client_config(client_cfg);

    // Server: echo on bi streams, drain uni streams and report totals.
    let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel::<u64>();
    tokio::spawn(async move {
        while let Some(inc) = server.accept().await {
            let done_tx = done_tx.clone();
            tokio::spawn(async move {
                let Ok(conn) = inc.await else { return };
                let preamble = conn
                    .handshake_data()
                    .and_then(|d| d.downcast::<quinn::crypto::rustls::HandshakeData>().ok())
                    .and_then(|d| d.protocol)
                    .is_some_and(|p| p == b"bench-p");
                loop {
                    tokio::select! {
                        bi = conn.accept_bi() => match bi {
                            Ok((mut s, mut r)) => { tokio::spawn(async move {
                                // Both paths read the same way; the byte path
                                // only looks the first byte up and skips it.
                                let mut body = Vec::new();
                                let mut first = true;
                                while let Ok(Some(c)) = r.read_chunk(usize::MAX, true).await {
                                    let mut bytes = c.bytes;
                                    if first && preamble {
                                        if ROUTES[usize::from(bytes[0])].is_none() { return; }
                                        bytes = bytes.slice(1..);
                                    }
                                    first = false;
                                    body.extend_from_slice(&bytes);
                                }
                                let _ = s.write_all(&body).await; let _ = s.finish();
                            }); }
                            Err(_) => return,
                        },
                        uni = conn.accept_uni() => match uni {
                            Ok(mut r) => {
                                let done_tx = done_tx.clone();
                                tokio::spawn(async move {
                                    let mut total = 0u64;
                                    while let Ok(Some(chunk)) = r.read_chunk(usize::MAX, true).await {
                                        total += chunk.bytes.len() as u64;
                                    }
                                    let _ = done_tx.send(total);
                                });
                            }
                            Err(_) => return,
                        },
                    }
                }
            });
        }
    });

    // Handshakes: connect, one round trip, close.
    let t = Instant::now();
    for _ in 0..handshakes {
        let conn = client.connect(addr, "bench").unwrap().await.unwrap();
        let (mut s, mut r) = conn.open_bi().await.unwrap();
        s.write_all(b"x").await.unwrap();
        s.finish().unwrap();
        r.read_to_end(16).await.unwrap();
        conn.close(VarInt::from_u32(0), b"");
    }
    println!(
        "handshakes_per_s={:.1}",
        handshakes as f64 / t.elapsed().as_secs_f64()
    );

    // RPC round trips: a new bi stream per 64-byte request, sequential;
    // rounds alternate with the same round trips behind a protocol byte.
    let conn = client.connect(addr, "bench").unwrap().await.unwrap();
    let with_byte = client
        .connect_with(preamble_cfg, addr, "bench")
        .unwrap()
        .await
        .unwrap();
    let payload = bytes::Bytes::from(vec![7u8; 64]);
    let preamble = bytes::Bytes::from_static(&[1]);
    let (mut plain_s, mut byte_s) = (0.0, 0.0);
    let (mut plain_cpu, mut byte_cpu) = (0.0, 0.0);
    let rounds = 5;
    for _ in 0..rounds {
        for (conn, byte, total, cpu) in [
            (&conn, false, &mut plain_s, &mut plain_cpu),
            (&with_byte, true, &mut byte_s, &mut byte_cpu),
        ] {
            let cpu0 = cpu_seconds();
            let t = Instant::now();
            for _ in 0..rpcs / rounds {
                let (mut s, mut r) = conn.open_bi().await.unwrap();
                let mut chunks = if byte {
                    vec![preamble.clone(), payload.clone()]
                } else {
                    vec![payload.clone()]
                };
                s.write_all_chunks(&mut chunks).await.unwrap();
                s.finish().unwrap();
                r.read_to_end(1024).await.unwrap();
            }
            *total += t.elapsed().as_secs_f64();
            *cpu += cpu_seconds() - cpu0;
        }
    }
    println!("rpc_per_s={:.1}", rpcs as f64 / plain_s);
    println!("rpc_preamble_per_s={:.1}", rpcs as f64 / byte_s);
    println!("rpc_cpu_us={:.1}", plain_cpu / rpcs as f64 * 1e6);
    println!("rpc_preamble_cpu_us={:.1}", byte_cpu / rpcs as f64 * 1e6);

    // Bulk: one uni stream per 1 MiB message, 8 in flight (like the mesh casts).
    // Sent as `Bytes` (no copy into quinn), as the mesh sends lent binaries.
    let msg = bytes::Bytes::from(vec![1u8; 1 << 20]);
    let cpu0 = cpu_seconds();
    let t = Instant::now();
    let sem = Arc::new(tokio::sync::Semaphore::new(8));
    for _ in 0..bulk_mib {
        let permit = sem.clone().acquire_owned().await.unwrap();
        let (conn, msg) = (conn.clone(), msg.clone());
        tokio::spawn(async move {
            let mut s = conn.open_uni().await.unwrap();
            s.write_chunk(msg).await.unwrap();
            s.finish().unwrap();
            drop(permit);
        });
    }
    let mut got = 0u64;
    while got < bulk_mib << 20 {
        got += done_rx.recv().await.unwrap();
    }
    let secs = t.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu0;
    println!("bulk_mib_per_s={:.1}", bulk_mib as f64 / secs);
    println!("cpu_s_per_gib={:.2}", cpu / (bulk_mib as f64 / 1024.0));
}
