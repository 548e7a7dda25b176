//! The QUIC mesh as a resource, serving RPC, membership, DAG sync
//! (`mesh_dag`), feed replication (`mesh_feeds`) and set reconciliation
//! (`mesh_reconcile`).
//! Calls answer `{:keyring_reply, ref, result}` through [`Reply`]; link
//! events, requests, casts and log pushes arrive at the owner process as
//! `{:keyring_mesh, event}`. Nothing here blocks a scheduler: work runs on the
//! mesh's own tokio runtime (one thread).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use keyring_core::membership::PublicKey;
use keyring_core::wire::frame::{Refusal, Status};
use keyring_net::protocols::dag::{Dag, DagLimits};
use keyring_net::protocols::feeds::{FeedLimits, Feeds};
use keyring_net::protocols::membership::{LogSink, LogUpdate, Membership};
use keyring_net::protocols::reconcile::{Reconcile, ReconcileLimits};
use keyring_net::protocols::rpc::{Cast, Request, Rpc, RpcHandler};
use keyring_net::{
    CallError, Event, EventSink, Limits, Members, Mesh, MeshConfig, Protocols, Target,
};
use rustler::{
    Atom, Binary, Encoder, Env, LocalPid, NewBinary, OwnedEnv, Resource, ResourceArc, Term,
};

use crate::atoms;
use crate::identity::KeyPairResource;
use crate::lent::lend;
use crate::membership::ring::RingResource;
use crate::reply::Reply;
use crate::term_codec::{decode_into, encode_term_pieces, CodecError};

mod local_atoms {
    rustler::atoms! { reply }
}

/// Replies up to this size are decoded into terms on the mesh thread that
/// received them (one NIF call fewer for the caller); larger ones reach the
/// caller as a binary, decoded there (on a dirty scheduler if need be).
const DECODE_REPLY_MAX: usize = 64 * 1024;

pub(crate) struct MeshResource {
    pub(crate) mesh: Mesh,
    pub(crate) dag: Arc<Dag>,
    pub(crate) reconcile: Arc<Reconcile>,
    pub(crate) feeds: Arc<Feeds>,
    pub(crate) feeds_sink: Arc<crate::mesh_feeds::BeamFeeds>,
    rpc: Arc<Rpc>,
    membership: Arc<Membership>,
    sink: Arc<PidSink>,
    /// The store the blob protocol (3) serves from and fetches into.
    blob_store: Arc<crate::sync::StoreSlot>,
}

#[rustler::resource_impl]
impl Resource for MeshResource {}

impl MeshResource {
    pub(crate) fn blob_store(&self) -> &crate::sync::StoreSlot {
        &self.blob_store
    }

    pub(crate) fn mesh_opener(&self) -> keyring_net::Opener {
        self.mesh.opener()
    }

    pub(crate) fn mesh_runtime(&self) -> &tokio::runtime::Handle {
        self.mesh.runtime()
    }
}

// The mesh is only touched through &self methods that keep their own locks;
// a panic inside one (caught by rustler) leaves nothing half-updated to observe.
impl std::panic::RefUnwindSafe for MeshResource {}
impl std::panic::UnwindSafe for MeshResource {}

/// Where the mesh's messages go: link events, joins and log pushes to the
/// owner (the mesh plane's server); requests and casts to the dispatchers
/// when there are any (spread by request id, by peer for casts), so calls
/// never queue behind membership work. A dispatcher that is gone is
/// replaced by the owner.
///
/// A message produced on a BEAM scheduler (mesh work that ran while the NIF
/// that started it polled it there, see `keyring_net::start`) is sent from
/// a mesh thread instead: a process-independent environment cannot send
/// from a scheduler.
struct PidSink {
    owner: LocalPid,
    dispatchers: std::sync::RwLock<Vec<LocalPid>>,
    me: std::sync::Weak<PidSink>,
}

/// A message for the BEAM, owned until it is encoded.
enum Outgoing {
    Event(Event),
    Request(Request),
    Cast(Cast),
    Log(LogUpdate),
}

fn bin<'a>(env: Env<'a>, bytes: &[u8]) -> Binary<'a> {
    let mut out = NewBinary::new(env, bytes.len());
    out.as_mut_slice().copy_from_slice(bytes);
    out.into()
}

/// A received request or cast body lent to the BEAM: the binary points into
/// the buffer quinn's bytes were read into, which this resource keeps alive.
struct BodyResource(bytes::Bytes);

#[rustler::resource_impl]
impl Resource for BodyResource {}

/// Bodies at least this large reach the BEAM without a copy (a fresh 1 MiB
/// BEAM binary also costs 256 page faults); smaller ones are copied.
const LEND_BODY_MIN: usize = 64 * 1024;

fn body_bin<'a>(env: Env<'a>, body: &bytes::Bytes) -> Binary<'a> {
    if body.len() < LEND_BODY_MIN {
        return bin(env, body);
    }
    ResourceArc::new(BodyResource(body.clone())).make_binary(env, |r| &r.0[..])
}

fn encode_outgoing<'a>(env: Env<'a>, msg: &Outgoing) -> Term<'a> {
    let inner = match msg {
        Outgoing::Event(Event::PeerUp {
            keyring,
            peer,
            addr,
        }) => (
            atoms::peer_up(),
            bin(env, keyring),
            bin(env, peer),
            addr.to_string(),
        )
            .encode(env),
        Outgoing::Event(Event::PeerDown {
            keyring,
            peer,
            reason,
        }) => (
            atoms::peer_down(),
            bin(env, keyring),
            bin(env, peer),
            reason.as_str(),
        )
            .encode(env),
        Outgoing::Event(Event::JoinRequest { id, peer, invite }) => {
            (atoms::join_request(), *id, bin(env, peer), bin(env, invite)).encode(env)
        }
        Outgoing::Request(r) => rustler::types::tuple::make_tuple(
            env,
            &[
                atoms::request().encode(env),
                r.id.encode(env),
                bin(env, &r.keyring).encode(env),
                bin(env, &r.peer).encode(env),
                bin(env, r.name.as_bytes()).encode(env),
                body_bin(env, &r.body).encode(env),
            ],
        ),
        Outgoing::Cast(c) => (
            atoms::cast(),
            bin(env, &c.keyring),
            bin(env, &c.peer),
            bin(env, c.name.as_bytes()),
            body_bin(env, &c.body),
        )
            .encode(env),
        Outgoing::Log(u) => {
            let entries: Vec<Binary<'_>> = u.entries.iter().map(|e| bin(env, e)).collect();
            (
                atoms::log_update(),
                bin(env, &u.keyring),
                bin(env, &u.peer),
                entries,
            )
                .encode(env)
        }
    };
    (atoms::keyring_mesh(), inner).encode(env)
}

impl PidSink {
    fn new(owner: LocalPid) -> Arc<Self> {
        Arc::new_cyclic(|me| Self {
            owner,
            dispatchers: std::sync::RwLock::new(Vec::new()),
            me: me.clone(),
        })
    }

    fn send_to(&self, pid: &LocalPid, msg: &Outgoing) -> bool {
        // One environment per mesh thread, cleared by every send: no
        // allocation per message.
        thread_local! {
            static ENV: std::cell::RefCell<OwnedEnv> = std::cell::RefCell::new(OwnedEnv::new());
        }
        ENV.with(|env| {
            env.borrow_mut()
                .send_and_clear(pid, |env| encode_outgoing(env, msg))
                .is_ok()
        })
    }

    /// Sends `msg` to dispatcher `pick` (mod their number) when `pick` is
    /// given and there are dispatchers, else (or if that one is gone) to
    /// the owner.
    fn post(&self, pick: Option<u64>, msg: Outgoing) {
        if rustler::thread::is_scheduler_thread() {
            let (Some(me), Ok(runtime)) =
                (self.me.upgrade(), tokio::runtime::Handle::try_current())
            else {
                return;
            };
            runtime.spawn(async move { me.post(pick, msg) });
            return;
        }
        let dispatcher = pick.and_then(|pick| {
            let d = self.dispatchers.read().unwrap_or_else(|e| e.into_inner());
            (!d.is_empty()).then(|| d[(pick % d.len() as u64) as usize])
        });
        if dispatcher.is_some_and(|pid| self.send_to(&pid, &msg)) {
            return;
        }
        self.send_to(&self.owner, &msg);
    }
}

impl EventSink for PidSink {
    fn deliver(&self, event: Event) {
        self.post(None, Outgoing::Event(event));
    }
}

impl RpcHandler for PidSink {
    fn request(&self, r: Request) {
        self.post(Some(r.id), Outgoing::Request(r));
    }

    fn cast(&self, c: Cast) {
        let pick = u64::from_le_bytes(c.peer[..8].try_into().unwrap_or_default());
        self.post(Some(pick), Outgoing::Cast(c));
    }
}

impl LogSink for PidSink {
    fn log_update(&self, u: LogUpdate) {
        self.post(None, Outgoing::Log(u));
    }
}

struct CallReason(CallError);

/// A transport error as the BEAM sees it (for the protocols' NIFs).
pub(crate) fn call_reason<'a>(env: Env<'a>, e: &CallError) -> Term<'a> {
    CallReason(e.clone()).encode(env)
}

fn refusal_atom(r: Refusal) -> Atom {
    match r {
        Refusal::NotMember => atoms::not_member(),
        Refusal::BadInvite => atoms::bad_invite(),
        Refusal::ProtocolViolation => atoms::protocol_violation(),
        Refusal::Other => atoms::other(),
    }
}

impl Encoder for CallReason {
    fn encode<'a>(&self, env: Env<'a>) -> Term<'a> {
        match &self.0 {
            CallError::NotMember => atoms::not_member().encode(env),
            CallError::Revoked => atoms::revoked().encode(env),
            CallError::NoAddress => atoms::no_address().encode(env),
            CallError::Refused(r) => (atoms::refused(), refusal_atom(*r)).encode(env),
            CallError::HandshakeRejected(s) => {
                (atoms::handshake_rejected(), s.as_str()).encode(env)
            }
            CallError::Unreachable(s) => (atoms::unreachable(), s.as_str()).encode(env),
            CallError::ConnectionLost(s) => (atoms::connection_lost(), s.as_str()).encode(env),
            CallError::Protocol(s) => (atoms::protocol(), s.as_str()).encode(env),
            CallError::Timeout => atoms::timeout().encode(env),
            CallError::Busy => atoms::busy().encode(env),
            CallError::Closed => atoms::closed().encode(env),
            other => (atoms::error(), other.to_string()).encode(env),
        }
    }
}

fn status_atom(s: Status) -> Atom {
    match s {
        Status::Ok => atoms::ok(),
        Status::NotFound => atoms::not_found(),
        Status::Forbidden => atoms::forbidden(),
        Status::HandlerError => atoms::handler_error(),
        Status::BadRequest => atoms::bad_request(),
        Status::Unavailable => atoms::unavailable(),
    }
}

fn status_from(a: Atom) -> Option<Status> {
    Some(if a == atoms::ok() {
        Status::Ok
    } else if a == atoms::not_found() {
        Status::NotFound
    } else if a == atoms::forbidden() {
        Status::Forbidden
    } else if a == atoms::handler_error() {
        Status::HandlerError
    } else if a == atoms::bad_request() {
        Status::BadRequest
    } else if a == atoms::unavailable() {
        Status::Unavailable
    } else {
        return None;
    })
}

fn key(b: &Binary<'_>) -> Result<PublicKey, rustler::Error> {
    b.as_slice().try_into().map_err(|_| rustler::Error::BadArg)
}

fn addr(s: &str) -> Result<SocketAddr, rustler::Error> {
    s.parse().map_err(|_| rustler::Error::BadArg)
}

#[rustler::nif(schedule = "DirtyIo")]
#[allow(clippy::too_many_arguments)]
fn mesh_start(
    env: Env<'_>,
    identity: ResourceArc<KeyPairResource>,
    store: ResourceArc<crate::store::StoreResource>,
    bind: String,
    join_bind: String,
    max_payload: usize,
    keep_alive_ms: u64,
    idle_timeout_ms: u64,
) -> Result<ResourceArc<MeshResource>, String> {
    let mut cfg = MeshConfig::new(*identity.0.seed());
    cfg.bind = bind
        .parse()
        .map_err(|_| format!("bad bind address {bind:?}"))?;
    cfg.join_bind = join_bind
        .parse()
        .map_err(|_| format!("bad join address {join_bind:?}"))?;
    cfg.max_payload = max_payload;
    cfg.keep_alive = Duration::from_millis(keep_alive_ms);
    cfg.idle_timeout = Duration::from_millis(idle_timeout_ms);
    let limits = Limits::default();
    let sink = PidSink::new(env.pid());
    let rpc = Rpc::new(sink.clone(), &limits, max_payload);
    let membership = Membership::new(sink.clone(), &limits, max_payload);
    let grants = Arc::new(crate::sync::Grants::default());
    let feeds_sink = crate::mesh_feeds::BeamFeeds::new();
    let feeds = Feeds::new(
        Arc::new(crate::mesh_feeds::StoreFeeds(store.clone())),
        feeds_sink.clone(),
        FeedLimits::default(),
        &limits,
    );
    let dag = Dag::new(
        Arc::new(crate::mesh_dag::StoreDag(store.clone(), grants.clone())),
        DagLimits::default(),
    );
    let reconcile = Reconcile::new(
        Arc::new(crate::mesh_reconcile::StoreSets(store)),
        ReconcileLimits::default(),
    );
    let blob_store = Arc::new(crate::sync::StoreSlot::default());
    let mut protocols = Protocols::new();
    protocols
        .add(rpc.clone())
        .and_then(|p| p.add(membership.clone()))
        .and_then(|p| p.add(dag.clone()))
        .and_then(|p| p.add(reconcile.clone()))
        .and_then(|p| p.add(feeds.clone()))
        .and_then(|p| p.add(crate::sync::protocol(&blob_store, &grants)))
        .map_err(|e| e.to_string())?;
    cfg.limits = limits;
    let mesh = Mesh::start(cfg, Arc::new(Members::default()), sink.clone(), protocols)
        .map_err(|e| e.to_string())?;
    Ok(ResourceArc::new(MeshResource {
        mesh,
        dag,
        reconcile,
        feeds,
        feeds_sink,
        rpc,
        membership,
        sink,
        blob_store,
    }))
}

#[rustler::nif]
fn mesh_addrs(m: ResourceArc<MeshResource>) -> Result<(String, String), String> {
    let a = m.mesh.local_addr().map_err(|e| e.to_string())?;
    let j = m.mesh.join_addr().map_err(|e| e.to_string())?;
    Ok((a.to_string(), j.to_string()))
}

#[rustler::nif]
fn mesh_set_members(
    m: ResourceArc<MeshResource>,
    keyring: Binary<'_>,
    members: Vec<(Binary<'_>, u64)>,
) -> Result<usize, rustler::Error> {
    let keyring = key(&keyring)?;
    let members = members
        .iter()
        .map(|(k, e)| Ok((key(k)?, *e)))
        .collect::<Result<Vec<_>, rustler::Error>>()?;
    Ok(m.mesh.set_members(keyring, members))
}

#[rustler::nif]
fn mesh_remove_keyring(
    m: ResourceArc<MeshResource>,
    keyring: Binary<'_>,
) -> Result<usize, rustler::Error> {
    let keyring = key(&keyring)?;
    m.membership.rings().remove(&keyring);
    Ok(m.mesh.remove_keyring(&keyring))
}

#[rustler::nif]
fn mesh_add_address(
    m: ResourceArc<MeshResource>,
    peer: Binary<'_>,
    address: String,
) -> Result<Atom, rustler::Error> {
    m.mesh.add_address(key(&peer)?, addr(&address)?);
    Ok(atoms::ok())
}

#[rustler::nif]
fn mesh_keep_connected(
    m: ResourceArc<MeshResource>,
    keyring: Binary<'_>,
    peer: Binary<'_>,
) -> Result<Atom, rustler::Error> {
    m.mesh.keep_connected(key(&keyring)?, key(&peer)?);
    Ok(atoms::ok())
}

#[rustler::nif]
fn mesh_connected<'a>(
    env: Env<'a>,
    m: ResourceArc<MeshResource>,
    keyring: Binary<'a>,
) -> Result<Vec<Binary<'a>>, rustler::Error> {
    Ok(m.mesh
        .connected(&key(&keyring)?)
        .iter()
        .map(|k| bin(env, k))
        .collect())
}

#[rustler::nif]
fn mesh_disconnect(
    m: ResourceArc<MeshResource>,
    keyring: Binary<'_>,
    peer: Binary<'_>,
) -> Result<bool, rustler::Error> {
    Ok(m.mesh.disconnect(&key(&keyring)?, &key(&peer)?))
}

/// Arguments shared by calls and casts; the arguments are encoded here with the
/// restricted term codec into the pieces that go on the wire (large binaries
/// lent, not copied).
struct Outbound {
    keyring: PublicKey,
    peer: PublicKey,
    address: Option<SocketAddr>,
    body: Vec<bytes::Bytes>,
}

fn outbound<'a>(
    keyring: Binary<'a>,
    peer: Binary<'a>,
    address: Option<String>,
    arguments: Term<'a>,
) -> Result<Result<Outbound, CodecError>, rustler::Error> {
    let address = address.as_deref().map(addr).transpose()?;
    let (keyring, peer) = (key(&keyring)?, key(&peer)?);
    Ok(encode_term_pieces(arguments).map(|body| Outbound {
        keyring,
        peer,
        address,
        body,
    }))
}

/// Whether an outbound message waits for a reply.
#[derive(Clone, Copy)]
enum Kind {
    Call,
    Cast,
}

/// Encodes the arguments and hands the message to the mesh; `:ok` now and
/// `{:keyring_reply, ref, result}` later, or `{:error, reason}` now.
#[allow(clippy::too_many_arguments)]
fn send_impl<'a>(
    env: Env<'a>,
    kind: Kind,
    m: ResourceArc<MeshResource>,
    reference: Term<'a>,
    keyring: Binary<'a>,
    peer: Binary<'a>,
    address: Option<String>,
    name: String,
    arguments: Term<'a>,
    timeout_ms: u64,
) -> Result<Term<'a>, rustler::Error> {
    let out = match outbound(keyring, peer, address, arguments)? {
        Ok(out) => out,
        Err(e) => return Ok((atoms::error(), e).encode(env)),
    };
    let reply = Reply::new(env, reference);
    let deadline = tokio::time::Instant::now() + Duration::from_millis(timeout_ms);
    let to = Target {
        keyring: out.keyring,
        peer: out.peer,
        addr: out.address,
    };
    let body = out.body;
    let opener = m.mesh.opener();
    match kind {
        Kind::Call => m
            .rpc
            .start_call(opener, to, name, body, deadline, move |result| {
                reply.send(move |env| match result {
                    Ok((Status::Ok, body)) if body.len() <= DECODE_REPLY_MAX => {
                        let decoded = match decode_into(env, &body) {
                            Ok(term) => (atoms::ok(), term).encode(env),
                            Err(e) => (atoms::error(), e).encode(env),
                        };
                        (local_atoms::reply(), decoded).encode(env)
                    }
                    Ok((status, body)) => {
                        (atoms::ok(), (status_atom(status), bin(env, &body))).encode(env)
                    }
                    Err(e) => (atoms::error(), CallReason(e)).encode(env),
                })
            }),
        Kind::Cast => m
            .rpc
            .start_cast(opener, to, name, body, deadline, move |result| {
                reply.send(move |env| match result {
                    Ok(()) => atoms::ok().encode(env),
                    Err(e) => (atoms::error(), CallReason(e)).encode(env),
                })
            }),
    }
    Ok(atoms::ok().encode(env))
}

/// `:ok` (the answer follows as `{:keyring_reply, ref, _}`) or
/// `{:error, reason}` when the arguments cannot be encoded.
fn kind(atom: Atom) -> Result<Kind, rustler::Error> {
    if atom == atoms::call() {
        Ok(Kind::Call)
    } else if atom == atoms::cast() {
        Ok(Kind::Cast)
    } else {
        Err(rustler::Error::BadArg)
    }
}

/// Sends a call or a cast (`kind`); see [`send_impl`].
#[rustler::nif]
#[allow(clippy::too_many_arguments)]
fn mesh_send<'a>(
    env: Env<'a>,
    m: ResourceArc<MeshResource>,
    kind_atom: Atom,
    reference: Term<'a>,
    keyring: Binary<'a>,
    peer: Binary<'a>,
    address: Option<String>,
    name: String,
    arguments: Term<'a>,
    timeout_ms: u64,
) -> Result<Term<'a>, rustler::Error> {
    let _charge = crate::timeslice::Charge::start(env);
    let kind = kind(kind_atom)?;
    send_impl(
        env, kind, m, reference, keyring, peer, address, name, arguments, timeout_ms,
    )
}

/// [`mesh_send`] for large arguments (encoding them takes longer than ~1 ms).
#[rustler::nif(schedule = "DirtyCpu")]
#[allow(clippy::too_many_arguments)]
fn mesh_send_dirty<'a>(
    env: Env<'a>,
    m: ResourceArc<MeshResource>,
    kind_atom: Atom,
    reference: Term<'a>,
    keyring: Binary<'a>,
    peer: Binary<'a>,
    address: Option<String>,
    name: String,
    arguments: Term<'a>,
    timeout_ms: u64,
) -> Result<Term<'a>, rustler::Error> {
    let kind = kind(kind_atom)?;
    send_impl(
        env, kind, m, reference, keyring, peer, address, name, arguments, timeout_ms,
    )
}

/// Answers a request with an encoded reply. A large reply is lent to the mesh,
/// not copied, so this stays well under a millisecond at any size.
#[rustler::nif]
fn mesh_respond(
    m: ResourceArc<MeshResource>,
    id: u64,
    status: Atom,
    body: Binary<'_>,
) -> Result<bool, rustler::Error> {
    let status = status_from(status).ok_or(rustler::Error::BadArg)?;
    Ok(m.rpc.respond(id, status, lend(&body)))
}

#[rustler::nif]
fn mesh_join<'a>(
    env: Env<'a>,
    m: ResourceArc<MeshResource>,
    reference: Term<'a>,
    address: String,
    issuer: Binary<'a>,
    invite: Binary<'a>,
    timeout_ms: u64,
) -> Result<Atom, rustler::Error> {
    let address = addr(&address)?;
    let issuer = key(&issuer)?;
    let reply = Reply::new(env, reference);
    m.mesh.join(
        address,
        issuer,
        invite.as_slice().to_vec(),
        Duration::from_millis(timeout_ms),
        Box::new(move |result| {
            reply.send(|env| match result {
                Ok(entries) => {
                    let entries: Vec<Binary<'_>> = entries.iter().map(|e| bin(env, e)).collect();
                    (atoms::ok(), entries).encode(env)
                }
                Err(e) => (atoms::error(), CallReason(e)).encode(env),
            })
        }),
    );
    Ok(atoms::ok())
}

#[rustler::nif]
fn mesh_answer_join(
    m: ResourceArc<MeshResource>,
    id: u64,
    answer: Term<'_>,
) -> Result<bool, rustler::Error> {
    let answer = if let Ok((tag, entries)) = answer.decode::<(Atom, Vec<Binary<'_>>)>() {
        if tag != atoms::ok() {
            return Err(rustler::Error::BadArg);
        }
        Ok(entries.iter().map(|e| e.as_slice().to_vec()).collect())
    } else {
        let (_, reason): (Atom, Atom) = answer.decode()?;
        // `:unknown_keyring` is answered as a bad invite: the wire never
        // tells a stranger which keyrings this node is in.
        Err(
            if reason == atoms::bad_invite() || reason == atoms::unknown_keyring() {
                Refusal::BadInvite
            } else if reason == atoms::not_member() {
                Refusal::NotMember
            } else {
                Refusal::Other
            },
        )
    };
    Ok(m.mesh.answer_join(id, answer))
}

#[rustler::nif]
fn mesh_push_log(
    m: ResourceArc<MeshResource>,
    keyring: Binary<'_>,
    entries: Vec<Binary<'_>>,
) -> Result<usize, rustler::Error> {
    let entries: Vec<Vec<u8>> = entries.iter().map(|e| e.as_slice().to_vec()).collect();
    let opener = m.mesh.opener();
    Ok(m.membership.push_log(&opener, key(&keyring)?, &entries))
}

/// Hands the mesh the verified ring of a keyring this node is in: pushes of
/// entries it holds are dropped in Rust, and head exchanges answered from it.
#[rustler::nif]
fn mesh_set_ring(m: ResourceArc<MeshResource>, ring: ResourceArc<RingResource>) -> Atom {
    m.membership.rings().insert(ring.0.clone());
    atoms::ok()
}

/// Starts an anti-entropy head exchange on every member link (see
/// `keyring_net::protocols::membership`); answers how many.
#[rustler::nif]
fn mesh_exchange_heads(m: ResourceArc<MeshResource>) -> usize {
    let opener = m.mesh.opener();
    m.membership.exchange_heads(&opener)
}

/// Requests and casts go to `dispatchers` from now on (none: the owner).
#[rustler::nif]
fn mesh_dispatch_to(m: ResourceArc<MeshResource>, dispatchers: Vec<LocalPid>) -> Atom {
    *m.sink
        .dispatchers
        .write()
        .unwrap_or_else(|e| e.into_inner()) = dispatchers;
    atoms::ok()
}

#[rustler::nif]
fn mesh_rejected_handshakes(m: ResourceArc<MeshResource>) -> u64 {
    m.mesh.rejected_handshakes()
}

/// Closes the mesh; waits (at most half a second) for the connections to say
/// goodbye and the ports to be free, hence a dirty I/O scheduler.
#[rustler::nif(schedule = "DirtyIo")]
fn mesh_close(m: ResourceArc<MeshResource>) -> Atom {
    m.mesh.close();
    atoms::ok()
}
