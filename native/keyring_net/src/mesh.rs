//! The mesh node's front (like quinn's `Endpoint`): it starts the runtime
//! and both endpoints, and every public method hands work to the tasks
//! underneath without blocking.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use keyring_core::identity::KeyPair;
use keyring_core::membership::PublicKey;
use quinn::crypto::rustls::QuicServerConfig;
use quinn::{Endpoint, TransportConfig, VarInt};
use tokio::runtime::Runtime;

use crate::close::{code, CLOSE_NORMAL, CLOSE_SHUTDOWN};
use crate::config::MeshConfig;
use crate::connect::{redial, Opener};
use crate::error::{CallError, StartError};
use crate::event::{EventSink, JoinDone};
use crate::join::server::{JoinAnswer, JoinServer};
use crate::links::LinkTable;
use crate::members::Members;
use crate::node::{Identity, Node};
use crate::peers::PeerTable;
use crate::protocol::Protocols;
use crate::stream::StreamRules;
use crate::tls::{self, ClientPolicy, ALPN_JOIN, ALPN_MESH};

/// Longest a closing mesh waits for its connections to say goodbye.
pub const CLOSE_FLUSH: Duration = Duration::from_millis(500);

/// How often live connections are re-checked for expiry.
pub const REVALIDATE_EVERY: Duration = Duration::from_millis(250);

/// A running mesh node.
pub struct Mesh {
    runtime: Mutex<Option<Runtime>>,
    handle: tokio::runtime::Handle,
    node: Arc<Node>,
    joins: Arc<JoinServer>,
}

impl std::fmt::Debug for Mesh {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mesh")
            .field("public_key", &self.node.identity.public_key)
            .finish()
    }
}

fn transport(config: &MeshConfig) -> Result<TransportConfig, StartError> {
    let l = &config.limits;
    let mut transport = TransportConfig::default();
    transport
        .keep_alive_interval(Some(config.keep_alive))
        .max_idle_timeout(Some(
            config
                .idle_timeout
                .try_into()
                .map_err(|_| StartError::Quic("idle timeout too large".into()))?,
        ))
        .stream_receive_window(VarInt::from_u32(l.stream_receive_window))
        .receive_window(VarInt::from_u32(l.receive_window))
        .send_window(16 << 20)
        .max_concurrent_bidi_streams(VarInt::from_u32(l.max_bidi_streams))
        .max_concurrent_uni_streams(VarInt::from_u32(l.max_uni_streams));
    Ok(transport)
}

impl Mesh {
    /// Binds both endpoints and starts the runtime, serving `protocols` on
    /// admitted member connections.
    pub fn start(
        config: MeshConfig,
        members: Arc<Members>,
        sink: Arc<dyn EventSink>,
        protocols: Protocols,
    ) -> Result<Self, StartError> {
        let limits = config.limits.clone().fitted(config.max_payload);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(config.worker_threads.clamp(1, 4))
            .thread_name("keyring-mesh")
            .enable_all()
            .build()?;
        let keypair = KeyPair::from_seed(&config.seed);
        let public_key = keypair.public_key();
        let provider = tls::provider();
        let key = tls::certified_key(&provider, &config.seed, &public_key)?;
        let transport = Arc::new(transport(&config)?);

        let server = |policy, alpn: &[u8]| -> Result<quinn::ServerConfig, StartError> {
            let tls = tls::server_config(&provider, key.clone(), policy, alpn)?;
            let quic =
                QuicServerConfig::try_from(tls).map_err(|e| StartError::Quic(e.to_string()))?;
            let mut cfg = quinn::ServerConfig::with_crypto(Arc::new(quic));
            cfg.transport_config(transport.clone());
            cfg.max_incoming(limits.max_handshakes.max(limits.max_join_connections) * 2);
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
        let node = Arc::new(Node {
            endpoint,
            identity: Identity {
                provider,
                key,
                public_key,
            },
            members: members.clone(),
            links: LinkTable::default(),
            peers: PeerTable::new(limits.link_budget, limits.peer_budget),
            protocols: Arc::new(protocols),
            sink: sink.clone(),
            rules: StreamRules::new(&limits),
            limits: limits.clone(),
            max_payload: config.max_payload,
            transport,
        });
        let joins = JoinServer::new(join_endpoint, members, sink, &limits);
        let handle = runtime.handle().clone();
        handle.spawn(crate::admit::accept_members(node.clone()));
        handle.spawn(joins.clone().accept());
        let weak = Arc::downgrade(&node);
        handle.spawn(async move {
            let mut tick = tokio::time::interval(REVALIDATE_EVERY);
            loop {
                tick.tick().await;
                let Some(node) = weak.upgrade() else { return };
                node.revalidate(None);
            }
        });
        Ok(Self {
            runtime: Mutex::new(Some(runtime)),
            handle,
            node,
            joins,
        })
    }

    /// This node's public key.
    pub fn public_key(&self) -> PublicKey {
        self.node.identity.public_key
    }

    /// The member endpoint's address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.node.endpoint.local_addr()
    }

    /// The join endpoint's address (goes into invites).
    pub fn join_addr(&self) -> std::io::Result<SocketAddr> {
        self.joins.endpoint.local_addr()
    }

    /// Membership snapshots shared with the verifiers.
    pub fn members(&self) -> &Arc<Members> {
        &self.node.members
    }

    /// What protocols use to reach members (see [`Opener`]).
    pub fn opener(&self) -> Opener {
        Opener::new(self.node.clone(), self.handle.clone())
    }

    /// The mesh's runtime.
    pub fn runtime(&self) -> &tokio::runtime::Handle {
        &self.handle
    }

    /// Replaces a keyring's member snapshot and closes connections of peers
    /// that are no longer members. Returns how many connections were closed.
    pub fn set_members(
        &self,
        keyring: PublicKey,
        members: impl IntoIterator<Item = (PublicKey, u64)>,
    ) -> usize {
        self.node.members.set(keyring, members);
        self.node.revalidate(Some(&keyring))
    }

    /// Leaves a keyring: forgets its snapshot and closes its connections.
    pub fn remove_keyring(&self, keyring: &PublicKey) -> usize {
        self.node.members.remove(keyring);
        self.node.revalidate(Some(keyring))
    }

    /// Remembers where a peer listens.
    pub fn add_address(&self, peer: PublicKey, addr: SocketAddr) {
        self.node.links.set_address(peer, addr);
    }

    /// Dials `peer` for `keyring` in the background, with the same backoff
    /// as a lost link, until a link is up or the peer stops being a member
    /// (e.g. for every member with a known address when a node starts).
    pub fn keep_connected(&self, keyring: PublicKey, peer: PublicKey) {
        self.handle
            .spawn(redial(Arc::downgrade(&self.node), keyring, peer));
    }

    /// Peers with a live link in `keyring`.
    pub fn connected(&self, keyring: &PublicKey) -> Vec<PublicKey> {
        self.node
            .links
            .in_keyring(keyring)
            .iter()
            .map(|l| l.peer())
            .collect()
    }

    /// Closes the link to `peer` in `keyring` (the next call redials).
    pub fn disconnect(&self, keyring: &PublicKey, peer: &PublicKey) -> bool {
        match self.node.links.remove(&(*keyring, *peer)) {
            Some(conn) => {
                conn.close(code(CLOSE_NORMAL), b"bye");
                true
            }
            None => false,
        }
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
        let node = self.node.clone();
        self.handle.spawn(async move {
            let deadline = tokio::time::Instant::now() + timeout;
            let join = crate::join::client::join(&node, addr, issuer, &invite, deadline);
            let out = tokio::time::timeout_at(deadline, join)
                .await
                .unwrap_or(Err(CallError::Timeout));
            done(out);
        });
    }

    /// Answers an [`crate::Event::JoinRequest`] with the log, or refuses it.
    /// False if the join is gone (its deadline passed).
    pub fn answer_join(&self, id: u64, answer: JoinAnswer) -> bool {
        self.joins.answer(id, answer)
    }

    /// Handshakes refused because the peer was not a member.
    pub fn rejected_handshakes(&self) -> u64 {
        self.node.members.rejections()
    }

    /// Connections open on the member endpoint (any stage).
    pub fn open_connections(&self) -> usize {
        self.node.endpoint.open_connections()
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
        let endpoints = [self.node.endpoint.clone(), self.joins.endpoint.clone()];
        for e in &endpoints {
            e.close(code(CLOSE_SHUTDOWN), b"shutdown");
        }
        let Some(rt) = self
            .runtime
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        else {
            return;
        };
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
