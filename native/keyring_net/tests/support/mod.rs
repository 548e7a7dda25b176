//! Meshes on loopback in one process, and a hand-built client that speaks
//! the wire protocol directly (to misbehave on purpose).
#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;
use keyring_core::identity::KeyPair;
use keyring_core::membership::PublicKey;
use keyring_core::wire::frame::{self, Frame, Status};
use keyring_net::protocols::membership::{LogSink, LogUpdate, Membership};
use keyring_net::protocols::rpc::{Cast, Request, Rpc, RpcHandler};
use keyring_net::{
    CallError, Event, EventSink, Limits, Members, Mesh, MeshConfig, Protocols, Target, PROTOCOL_RPC,
};

pub const KEYRING: PublicKey = [42; 32];
pub const T: Duration = Duration::from_secs(5);

pub struct ChannelSink<E>(Mutex<mpsc::Sender<E>>);

impl EventSink for ChannelSink<Event> {
    fn deliver(&self, event: Event) {
        let _ = self.0.lock().unwrap().send(event);
    }
}

impl LogSink for ChannelSink<LogUpdate> {
    fn log_update(&self, update: LogUpdate) {
        let _ = self.0.lock().unwrap().send(update);
    }
}

/// Answers `echo` with its body, `sleep` after sleeping the body's first
/// byte in ms (on a thread of its own), anything else with NotFound;
/// casts go to a channel.
pub struct EchoHandler {
    rpc: OnceLock<Weak<Rpc>>,
    casts: Mutex<mpsc::Sender<Cast>>,
}

impl RpcHandler for EchoHandler {
    fn request(&self, r: Request) {
        let Some(rpc) = self.rpc.get().and_then(Weak::upgrade) else {
            return;
        };
        match r.name.as_str() {
            "echo" => {
                rpc.respond(r.id, Status::Ok, r.body);
            }
            "sleep" => {
                let ms = u64::from(r.body.first().copied().unwrap_or(0));
                std::thread::spawn(move || {
                    std::thread::sleep(Duration::from_millis(ms));
                    rpc.respond(r.id, Status::Ok, r.body);
                });
            }
            _ => {
                rpc.respond(r.id, Status::NotFound, Bytes::new());
            }
        }
    }

    fn cast(&self, c: Cast) {
        let _ = self.casts.lock().unwrap().send(c);
    }
}

pub struct Node {
    pub mesh: Arc<Mesh>,
    pub key: PublicKey,
    pub kp: Arc<KeyPair>,
    pub rpc: Arc<Rpc>,
    pub membership: Arc<Membership>,
    pub events: mpsc::Receiver<Event>,
    pub casts: mpsc::Receiver<Cast>,
    pub logs: mpsc::Receiver<LogUpdate>,
}

pub fn node() -> Node {
    node_with(Limits::default())
}

pub fn node_with(limits: Limits) -> Node {
    let kp = KeyPair::generate().unwrap();
    node_at(kp, "127.0.0.1:0".parse().unwrap(), limits, Protocols::new()).unwrap()
}

/// A node with `kp` bound at `bind`, serving RPC, membership and `extra`.
pub fn node_at(
    kp: KeyPair,
    bind: SocketAddr,
    limits: Limits,
    extra: Protocols,
) -> Result<Node, keyring_net::StartError> {
    let (tx, events) = mpsc::channel();
    let (cast_tx, casts) = mpsc::channel();
    let (log_tx, logs) = mpsc::channel();
    let mut cfg = MeshConfig::new(*kp.seed());
    cfg.bind = bind;
    cfg.limits = limits.clone();
    let handler = Arc::new(EchoHandler {
        rpc: OnceLock::new(),
        casts: Mutex::new(cast_tx),
    });
    let rpc = Rpc::new(handler.clone(), &limits, cfg.max_payload);
    let _ = handler.rpc.set(Arc::downgrade(&rpc));
    let membership = Membership::new(
        Arc::new(ChannelSink(Mutex::new(log_tx))),
        &limits,
        cfg.max_payload,
    );
    let mut protocols = extra;
    protocols.add(rpc.clone()).unwrap();
    protocols.add(membership.clone()).unwrap();
    let mesh = Mesh::start(
        cfg,
        Arc::new(Members::default()),
        Arc::new(ChannelSink(Mutex::new(tx))),
        protocols,
    )?;
    Ok(Node {
        key: mesh.public_key(),
        mesh: Arc::new(mesh),
        kp: Arc::new(kp),
        rpc,
        membership,
        events,
        casts,
        logs,
    })
}

impl Node {
    pub fn addr(&self) -> SocketAddr {
        self.mesh.local_addr().unwrap()
    }

    /// Calls `name` on `peer` with `body` (sent in pieces of 3 bytes, as the
    /// NIF sends arguments with large binaries lent).
    pub fn call_named(
        &self,
        peer: PublicKey,
        addr: Option<SocketAddr>,
        name: &str,
        body: &[u8],
    ) -> Result<(Status, Bytes), CallError> {
        let (rpc, opener) = (self.rpc.clone(), self.mesh.opener());
        let pieces = body.chunks(3).map(Bytes::copy_from_slice).collect();
        let name = name.to_owned();
        self.mesh.runtime().block_on(async move {
            let deadline = tokio::time::Instant::now() + T;
            tokio::time::timeout_at(
                deadline,
                rpc.call(&opener, target(peer, addr), &name, pieces, deadline),
            )
            .await
            .unwrap_or(Err(CallError::Timeout))
        })
    }

    pub fn call(
        &self,
        peer: PublicKey,
        addr: Option<SocketAddr>,
        body: &[u8],
    ) -> Result<(Status, Bytes), CallError> {
        self.call_named(peer, addr, "echo", body)
    }

    /// A cast; Ok once it was handed over.
    pub fn cast(&self, peer: PublicKey, addr: Option<SocketAddr>) -> Result<(), CallError> {
        let (rpc, opener) = (self.rpc.clone(), self.mesh.opener());
        self.mesh.runtime().block_on(async move {
            let deadline = tokio::time::Instant::now() + T;
            let body = vec![Bytes::from_static(b"\x01")];
            rpc.cast(&opener, target(peer, addr), "ping", body, deadline)
                .await
        })
    }
}

/// `peer` in `KEYRING`, at `addr`.
pub fn target(peer: PublicKey, addr: Option<SocketAddr>) -> Target {
    Target {
        keyring: KEYRING,
        peer,
        addr,
    }
}

/// Two nodes, each with both in its snapshot of `KEYRING`.
pub fn member_pair() -> (Node, Node) {
    let (a, b) = (node(), node());
    let keys = [a.key, b.key];
    a.mesh.set_members(KEYRING, members(&keys));
    b.mesh.set_members(KEYRING, members(&keys));
    (a, b)
}

pub fn members(keys: &[PublicKey]) -> Vec<(PublicKey, u64)> {
    keys.iter().map(|k| (*k, 0)).collect()
}

/// The first event matching `want` within `within`.
pub fn expect(
    events: &mpsc::Receiver<Event>,
    within: Duration,
    want: impl Fn(&Event) -> bool,
) -> Event {
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match events.recv_timeout(left) {
            Ok(e) if want(&e) => return e,
            Ok(_) => {}
            Err(_) => panic!("no matching event within {within:?}"),
        }
    }
}

pub fn is_up(peer: PublicKey) -> impl Fn(&Event) -> bool {
    move |e| matches!(e, Event::PeerUp { peer: p, .. } if *p == peer)
}

pub fn is_down(peer: PublicKey) -> impl Fn(&Event) -> bool {
    move |e| matches!(e, Event::PeerDown { peer: p, .. } if *p == peer)
}

/// Polls `check` until it holds or `within` passes.
pub fn eventually(within: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if check() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// p99 (and max) of `samples`.
pub fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort();
    let at = ((samples.len() as f64 * p).ceil() as usize).clamp(1, samples.len()) - 1;
    samples[at]
}

/// Resident memory of this process in bytes (/proc/self/statm).
pub fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

/// A hand-built client: its own runtime and quinn endpoint (bound to
/// `local`, e.g. another loopback address), speaking raw bytes.
pub struct RawClient {
    pub runtime: tokio::runtime::Runtime,
    pub endpoint: quinn::Endpoint,
    pub seed: [u8; 32],
    pub key: PublicKey,
}

impl RawClient {
    /// A client with `kp`'s key (a member's, or a random one).
    pub fn new(kp: &KeyPair, local: &str) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let endpoint = {
            let _g = runtime.enter();
            quinn::Endpoint::client(format!("{local}:0").parse().unwrap()).unwrap()
        };
        Self {
            runtime,
            endpoint,
            seed: *kp.seed(),
            key: kp.public_key(),
        }
    }

    pub fn random(local: &str) -> Self {
        Self::new(&KeyPair::generate().unwrap(), local)
    }

    /// A connection through the handshake only (`alpn`: mesh or join).
    pub fn handshake(
        &self,
        server: PublicKey,
        addr: SocketAddr,
        alpn: &'static [u8],
    ) -> impl std::future::Future<Output = Result<quinn::Connection, quinn::ConnectionError>>
           + Send
           + 'static {
        let mut cfg = keyring_net::tls::raw_client_config(&self.seed, server, alpn).unwrap();
        let mut transport = quinn::TransportConfig::default();
        transport.max_idle_timeout(Some(Duration::from_secs(30).try_into().unwrap()));
        transport.keep_alive_interval(Some(Duration::from_secs(1)));
        cfg.transport_config(Arc::new(transport));
        let connecting = self.endpoint.connect_with(cfg, addr, "keyring.invalid");
        async move { connecting.unwrap().await }
    }

    /// A member connection admitted for `keyring` (handshake, Hello, Welcome).
    pub async fn admitted(
        &self,
        server: PublicKey,
        addr: SocketAddr,
        keyring: PublicKey,
    ) -> Result<quinn::Connection, String> {
        let conn = self
            .handshake(server, addr, keyring_net::tls::ALPN_MESH)
            .await
            .map_err(|e| e.to_string())?;
        match hello(&conn, keyring).await? {
            Frame::Welcome => Ok(conn),
            other => Err(format!("{other:?}")),
        }
    }
}

/// Sends a Hello for `keyring` and returns the decoded answer.
pub async fn hello(conn: &quinn::Connection, keyring: PublicKey) -> Result<Frame<'static>, String> {
    let (mut s, mut r) = conn.open_bi().await.map_err(|e| e.to_string())?;
    let hello = Frame::Hello {
        keyring_id: keyring,
    }
    .encode()
    .unwrap();
    s.write_all(&hello).await.map_err(|e| e.to_string())?;
    s.finish().unwrap();
    let bytes = r.read_to_end(1024).await.map_err(|e| e.to_string())?;
    let frame = frame::decode(&bytes, 64).map_err(|e| e.to_string())?;
    Ok(match frame {
        Frame::Welcome => Frame::Welcome,
        Frame::Refused(r) => Frame::Refused(r),
        _ => return Err("unexpected frame".into()),
    })
}

/// A raw RPC request on `conn`: the protocol byte, then `bytes`.
pub async fn raw_request(conn: &quinn::Connection, bytes: &[u8]) -> Result<Vec<u8>, String> {
    let (mut s, mut r) = conn.open_bi().await.map_err(|e| e.to_string())?;
    s.write_all(&[PROTOCOL_RPC])
        .await
        .map_err(|e| e.to_string())?;
    s.write_all(bytes).await.map_err(|e| e.to_string())?;
    s.finish().unwrap();
    r.read_to_end(32 << 20)
        .await
        .map(|b| b.to_vec())
        .map_err(|e| e.to_string())
}

/// An echo Request frame with `body`.
pub fn echo_request(body: &[u8]) -> Vec<u8> {
    Frame::Request { name: "echo", body }.encode().unwrap()
}
