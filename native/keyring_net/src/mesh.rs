//! The mesh endpoint: one QUIC endpoint for members, one for joins, a small
//! tokio runtime, and the connection table. Public methods never block: they
//! spawn onto the runtime and report through callbacks or the [`EventSink`].

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use keyring_core::identity::KeyPair;
use keyring_core::membership::PublicKey;
use keyring_core::wire::frame::{self, Frame, Refusal, Status};
use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use quinn::{Connection, Endpoint, SendStream, TransportConfig, VarInt};
use rustls::crypto::CryptoProvider;
use rustls::sign::CertifiedKey;
use tokio::runtime::Runtime;

use crate::error::{CallError, StartError};
pub use crate::event::{CallDone, CastDone, Event, EventSink, JoinDone};
use crate::links::Link;
use crate::members::Members;
use crate::tls::{self, ClientPolicy, ServerVerifier, ALPN_JOIN, ALPN_MESH};

/// Application close code: the peer's membership ended.
pub const CLOSE_REVOKED: u64 = 1;
/// Application close code: the peer was refused after the handshake.
pub const CLOSE_REFUSED: u64 = 2;
/// Application close code: this node is shutting down.
pub const CLOSE_SHUTDOWN: u64 = 3;
/// Application close code: the connection was closed on request.
pub const CLOSE_NORMAL: u64 = 0;
/// Application close code: both sides dialled at once and this connection
/// gave way to the other (see [`crate::links`]).
pub const CLOSE_SUPERSEDED: u64 = 4;

/// Longest a closing mesh waits for its connections to say goodbye.
pub const CLOSE_FLUSH: Duration = Duration::from_millis(500);

/// How often live connections are re-checked for expiry.
pub const REVALIDATE_EVERY: Duration = Duration::from_millis(250);

/// Mesh settings.
#[derive(Debug, Clone)]
pub struct MeshConfig {
    /// Member endpoint address (port 0 = any).
    pub bind: SocketAddr,
    /// Join endpoint address (port 0 = any).
    pub join_bind: SocketAddr,
    /// The node's Ed25519 secret seed (the TLS identity).
    pub seed: [u8; 32],
    /// Largest frame payload accepted from a peer.
    pub max_payload: usize,
    /// QUIC keep-alive (liveness ping) interval.
    pub keep_alive: Duration,
    /// A connection silent for this long is dead.
    pub idle_timeout: Duration,
    /// tokio worker threads (1 or 2 is plenty).
    pub worker_threads: usize,
}

impl MeshConfig {
    /// Defaults: loopback, any port, 16 MiB frames, 2 s pings, 10 s idle timeout.
    pub fn new(seed: [u8; 32]) -> Self {
        Self {
            bind: "127.0.0.1:0".parse().expect("valid"),
            join_bind: "127.0.0.1:0".parse().expect("valid"),
            seed,
            max_payload: frame::DEFAULT_MAX_PAYLOAD,
            keep_alive: Duration::from_secs(2),
            idle_timeout: Duration::from_secs(10),
            worker_threads: 2,
        }
    }
}

type ConnKey = (PublicKey, PublicKey);

pub(crate) struct Inner {
    pub(crate) endpoint: Endpoint,
    pub(crate) join_endpoint: Endpoint,
    pub(crate) provider: Arc<CryptoProvider>,
    pub(crate) key: Arc<CertifiedKey>,
    pub(crate) members: Arc<Members>,
    pub(crate) public_key: PublicKey,
    pub(crate) conns: Mutex<HashMap<ConnKey, Link>>,
    pub(crate) dialing: Mutex<HashMap<ConnKey, Arc<tokio::sync::Mutex<()>>>>,
    pub(crate) addrs: Mutex<HashMap<PublicKey, SocketAddr>>,
    pub(crate) pending: Mutex<HashMap<u64, SendStream>>,
    pub(crate) next_id: AtomicU64,
    pub(crate) sink: Arc<dyn EventSink>,
    pub(crate) max_payload: usize,
    pub(crate) transport: Arc<TransportConfig>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Inner {
    pub(crate) fn lock_conns(&self) -> std::sync::MutexGuard<'_, HashMap<ConnKey, Link>> {
        lock(&self.conns)
    }

    pub(crate) fn lock_addrs(&self) -> std::sync::MutexGuard<'_, HashMap<PublicKey, SocketAddr>> {
        lock(&self.addrs)
    }

    pub(crate) fn client_config(
        &self,
        verifier: ServerVerifier,
        alpn: &[u8],
    ) -> Result<quinn::ClientConfig, CallError> {
        let tls = tls::client_config(&self.provider, self.key.clone(), verifier, alpn)
            .map_err(|e| CallError::Protocol(e.to_string()))?;
        let quic =
            QuicClientConfig::try_from(tls).map_err(|e| CallError::Protocol(e.to_string()))?;
        let mut cfg = quinn::ClientConfig::new(Arc::new(quic));
        cfg.transport_config(self.transport.clone());
        Ok(cfg)
    }

    pub(crate) fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn park(&self, send: SendStream) -> u64 {
        let id = self.next_id();
        lock(&self.pending).insert(id, send);
        id
    }

    /// Closes every connection whose peer is no longer a current member.
    pub(crate) fn revalidate(&self, only: Option<&PublicKey>) -> usize {
        let mut closed = 0;
        self.lock_conns().retain(|(keyring, peer), link| {
            if only.is_some_and(|k| k != keyring) || self.members.is_member(keyring, peer) {
                return true;
            }
            link.conn
                .close(VarInt::from_u64(CLOSE_REVOKED).expect("small"), b"revoked");
            closed += 1;
            false
        });
        closed
    }
}

/// A running mesh node.
pub struct Mesh {
    runtime: Mutex<Option<Runtime>>,
    handle: tokio::runtime::Handle,
    inner: Arc<Inner>,
}

impl Mesh {
    /// Binds both endpoints and starts the runtime.
    pub fn start(
        config: MeshConfig,
        members: Arc<Members>,
        sink: Arc<dyn EventSink>,
    ) -> Result<Self, StartError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(config.worker_threads.clamp(1, 4))
            .thread_name("keyring-mesh")
            .enable_all()
            .build()?;
        let keypair = KeyPair::from_seed(&config.seed);
        let public_key = keypair.public_key();
        let provider = tls::provider();
        let key = tls::certified_key(&provider, &config.seed, &public_key)?;

        let mut transport = TransportConfig::default();
        transport
            .keep_alive_interval(Some(config.keep_alive))
            .max_idle_timeout(Some(
                config
                    .idle_timeout
                    .try_into()
                    .map_err(|_| StartError::Quic("idle timeout too large".into()))?,
            ))
            .stream_receive_window(VarInt::from_u32(16 << 20))
            .receive_window(VarInt::from_u32(64 << 20))
            .send_window(64 << 20)
            .max_concurrent_bidi_streams(VarInt::from_u32(1024))
            .max_concurrent_uni_streams(VarInt::from_u32(1024));
        let transport = Arc::new(transport);

        let server = |policy, alpn: &[u8]| -> Result<quinn::ServerConfig, StartError> {
            let tls = tls::server_config(&provider, key.clone(), policy, alpn)?;
            let quic =
                QuicServerConfig::try_from(tls).map_err(|e| StartError::Quic(e.to_string()))?;
            let mut cfg = quinn::ServerConfig::with_crypto(Arc::new(quic));
            cfg.transport_config(transport.clone());
            Ok(cfg)
        };
        let mesh_cfg = server(ClientPolicy::AnyMember(members.clone()), ALPN_MESH)?;
        let join_cfg = server(ClientPolicy::AnyKey, ALPN_JOIN)?;

        let (endpoint, join_endpoint) = {
            let _guard = runtime.enter();
            (
                Endpoint::server(mesh_cfg, config.bind)?,
                Endpoint::server(join_cfg, config.join_bind)?,
            )
        };
        let inner = Arc::new(Inner {
            endpoint,
            join_endpoint,
            provider,
            key,
            members,
            public_key,
            conns: Mutex::new(HashMap::new()),
            dialing: Mutex::new(HashMap::new()),
            addrs: Mutex::new(HashMap::new()),
            pending: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            sink,
            max_payload: config.max_payload,
            transport,
        });
        let handle = runtime.handle().clone();
        handle.spawn(crate::server::accept_members(inner.clone()));
        handle.spawn(crate::server::accept_joins(inner.clone()));
        let weak = Arc::downgrade(&inner);
        handle.spawn(async move {
            let mut tick = tokio::time::interval(REVALIDATE_EVERY);
            loop {
                tick.tick().await;
                let Some(inner) = weak.upgrade() else { return };
                inner.revalidate(None);
            }
        });
        Ok(Self {
            runtime: Mutex::new(Some(runtime)),
            handle,
            inner,
        })
    }

    /// This node's public key.
    pub fn public_key(&self) -> PublicKey {
        self.inner.public_key
    }

    /// The member endpoint's address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.inner.endpoint.local_addr()
    }

    /// The join endpoint's address (goes into invites).
    pub fn join_addr(&self) -> std::io::Result<SocketAddr> {
        self.inner.join_endpoint.local_addr()
    }

    /// Membership snapshots shared with the verifiers.
    pub fn members(&self) -> &Arc<Members> {
        &self.inner.members
    }

    /// Replaces a keyring's member snapshot and closes connections of peers
    /// that are no longer members. Returns how many connections were closed.
    pub fn set_members(
        &self,
        keyring: PublicKey,
        members: impl IntoIterator<Item = (PublicKey, u64)>,
    ) -> usize {
        self.inner.members.set(keyring, members);
        self.inner.revalidate(Some(&keyring))
    }

    /// Leaves a keyring: forgets its snapshot and closes its connections.
    pub fn remove_keyring(&self, keyring: &PublicKey) -> usize {
        self.inner.members.remove(keyring);
        self.inner.revalidate(Some(keyring))
    }

    /// Remembers where a peer listens.
    pub fn add_address(&self, peer: PublicKey, addr: SocketAddr) {
        self.inner.lock_addrs().insert(peer, addr);
    }

    /// Dials `peer` for `keyring` in the background, with the same backoff
    /// as a lost link, until a link is up or the peer stops being a member
    /// (e.g. for every member with a known address when a node starts).
    pub fn keep_connected(&self, keyring: PublicKey, peer: PublicKey) {
        let inner = Arc::downgrade(&self.inner);
        self.handle
            .spawn(crate::links::redial(inner, keyring, peer));
    }

    /// Peers with a live connection in `keyring`.
    pub fn connected(&self, keyring: &PublicKey) -> Vec<PublicKey> {
        self.inner
            .lock_conns()
            .keys()
            .filter(|(k, _)| k == keyring)
            .map(|(_, p)| *p)
            .collect()
    }

    /// Closes the connection to `peer` in `keyring` (the next call redials).
    pub fn disconnect(&self, keyring: &PublicKey, peer: &PublicKey) -> bool {
        match self.inner.lock_conns().remove(&(*keyring, *peer)) {
            Some(link) => {
                link.conn
                    .close(VarInt::from_u64(CLOSE_NORMAL).expect("small"), b"bye");
                true
            }
            None => false,
        }
    }

    /// Calls `name` on `peer` with `body` (its pieces, sent in order); `done`
    /// gets the reply status and body.
    #[allow(clippy::too_many_arguments)]
    pub fn call(
        &self,
        keyring: PublicKey,
        peer: PublicKey,
        addr: Option<SocketAddr>,
        name: String,
        body: Vec<Bytes>,
        timeout: Duration,
        done: CallDone,
    ) {
        let (inner, deadline) = (self.inner.clone(), tokio::time::Instant::now() + timeout);
        let work = async move {
            crate::client::call(&inner, keyring, peer, addr, &name, body, deadline).await
        };
        self.spawn_until(deadline, work, done);
    }

    /// Sends `name` to `peer` without waiting for a reply (`body` as in
    /// [`call`](Self::call)); `done` learns whether the bytes were handed to
    /// the connection.
    #[allow(clippy::too_many_arguments)]
    pub fn cast(
        &self,
        keyring: PublicKey,
        peer: PublicKey,
        addr: Option<SocketAddr>,
        name: String,
        body: Vec<Bytes>,
        timeout: Duration,
        done: CastDone,
    ) {
        let (inner, deadline) = (self.inner.clone(), tokio::time::Instant::now() + timeout);
        let work = async move {
            crate::client::cast(&inner, keyring, peer, addr, &name, body, deadline).await
        };
        self.spawn_until(deadline, work, done);
    }

    /// Runs `work` on the runtime and hands its result, or
    /// [`CallError::Timeout`] at `deadline`, to `done`.
    fn spawn_until<T, W>(
        &self,
        deadline: tokio::time::Instant,
        work: W,
        done: Box<dyn FnOnce(Result<T, CallError>) + Send>,
    ) where
        T: Send + 'static,
        W: std::future::Future<Output = Result<T, CallError>> + Send + 'static,
    {
        self.handle.spawn(async move {
            let out = tokio::time::timeout_at(deadline, work)
                .await
                .unwrap_or(Err(CallError::Timeout));
            done(out);
        });
    }

    /// Answers an [`Event::Request`].
    pub fn respond(&self, id: u64, status: Status, body: Bytes) -> bool {
        let Some(mut send) = lock(&self.inner.pending).remove(&id) else {
            return false;
        };
        self.handle.spawn(async move {
            if let Ok(prefix) = frame::response_prefix(status, body.len()) {
                let _ = send
                    .write_all_chunks(&mut [Bytes::from(prefix), body])
                    .await;
                let _ = send.finish();
            }
        });
        true
    }

    /// Asks the admin node at `addr` (whose key must be `issuer`) to admit us
    /// with `invite`; `done` gets the keyring's membership log.
    pub fn join(
        &self,
        addr: SocketAddr,
        issuer: PublicKey,
        invite: Vec<u8>,
        timeout: Duration,
        done: JoinDone,
    ) {
        let inner = self.inner.clone();
        self.handle.spawn(async move {
            let out =
                tokio::time::timeout(timeout, crate::client::join(&inner, addr, issuer, &invite))
                    .await
                    .unwrap_or(Err(CallError::Timeout));
            done(out);
        });
    }

    /// Answers an [`Event::JoinRequest`] with the log, or refuses it.
    pub fn answer_join(&self, id: u64, answer: Result<Vec<Vec<u8>>, Refusal>) -> bool {
        let Some(mut send) = lock(&self.inner.pending).remove(&id) else {
            return false;
        };
        self.handle.spawn(async move {
            let bytes = match &answer {
                Ok(entries) => Frame::JoinAccepted {
                    entries: entries.iter().map(Vec::as_slice).collect(),
                }
                .encode(),
                Err(r) => Frame::JoinRefused(*r).encode(),
            };
            if let Ok(bytes) = bytes {
                let _ = send.write_all(&bytes).await;
                let _ = send.finish();
                let _ = tokio::time::timeout(Duration::from_secs(2), send.stopped()).await;
            }
        });
        true
    }

    /// Pushes the membership log to every connected member of `keyring`.
    pub fn push_log(&self, keyring: PublicKey, entries: Vec<Vec<u8>>) -> usize {
        let conns: Vec<Connection> = self
            .inner
            .lock_conns()
            .iter()
            .filter(|((k, _), _)| *k == keyring)
            .map(|(_, link)| link.conn.clone())
            .collect();
        let n = conns.len();
        let Ok(bytes) = (Frame::LogUpdate {
            keyring_id: keyring,
            entries: entries.iter().map(Vec::as_slice).collect(),
        })
        .encode() else {
            return 0;
        };
        let bytes = Arc::new(bytes);
        for conn in conns {
            let bytes = bytes.clone();
            self.handle.spawn(async move {
                if let Ok(mut send) = conn.open_uni().await {
                    let _ = send.write_all(&bytes).await;
                    let _ = send.finish();
                }
            });
        }
        n
    }

    /// Handshakes refused because the peer was not a member.
    pub fn rejected_handshakes(&self) -> u64 {
        self.inner.members.rejections()
    }

    /// Closes all connections and stops the runtime, waiting up to
    /// [`CLOSE_FLUSH`] for the connections to send their `shutdown` close
    /// (peers then learn at once instead of at their idle timeout). When this
    /// returns, the UDP ports are free again. It blocks: call it from a
    /// thread that may (a dirty scheduler, not a tokio worker).
    pub fn close(&self) {
        self.shutdown(true);
    }

    fn shutdown(&self, wait: bool) {
        let code = VarInt::from_u64(CLOSE_SHUTDOWN).expect("small");
        self.inner.endpoint.close(code, b"shutdown");
        self.inner.join_endpoint.close(code, b"shutdown");
        let Some(rt) = lock(&self.runtime).take() else {
            return;
        };
        let endpoints = [
            self.inner.endpoint.clone(),
            self.inner.join_endpoint.clone(),
        ];
        let flush = move || {
            rt.block_on(async {
                let idle = async {
                    for e in &endpoints {
                        e.wait_idle().await;
                    }
                };
                let _ = tokio::time::timeout(CLOSE_FLUSH, idle).await;
                // The endpoints live as long as this mesh's handles do; move
                // them onto throwaway sockets so their ports are free now (a
                // node restarted on the same port must be able to bind it).
                // Twice: quinn keeps the previous socket for stray packets.
                for e in &endpoints {
                    let ip: IpAddr = match e.local_addr() {
                        Ok(a) if a.is_ipv6() => Ipv6Addr::LOCALHOST.into(),
                        _ => Ipv4Addr::LOCALHOST.into(),
                    };
                    for _ in 0..2 {
                        if let Ok(socket) = std::net::UdpSocket::bind((ip, 0)) {
                            let _ = e.rebind(socket);
                        }
                    }
                }
            });
            // Stop the drivers so the sockets close before we return.
            rt.shutdown_timeout(CLOSE_FLUSH);
        };
        if wait {
            flush();
        } else {
            // Dropped without `close` (e.g. by the garbage collector): flush
            // on a thread of its own. Should it not start, the runtime is
            // dropped with the closure.
            let _ = std::thread::Builder::new()
                .name("keyring-mesh-close".into())
                .spawn(flush);
        }
    }
}

impl Drop for Mesh {
    fn drop(&mut self) {
        self.shutdown(false);
    }
}

#[cfg(test)]
impl Mesh {
    pub(crate) fn inner_for_tests(&self) -> Arc<Inner> {
        self.inner.clone()
    }

    pub(crate) fn connection_for_tests(
        &self,
        keyring: &PublicKey,
        peer: &PublicKey,
    ) -> Option<Connection> {
        self.inner
            .lock_conns()
            .get(&(*keyring, *peer))
            .map(|link| link.conn.clone())
    }

    pub(crate) fn block_on_for_tests<F>(&self, f: F) -> F::Output
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let (tx, rx) = std::sync::mpsc::channel();
        self.handle.spawn(async move {
            let _ = tx.send(f.await);
        });
        rx.recv().expect("task finished")
    }
}
