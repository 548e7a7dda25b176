//! `keyring_gateway` as a resource. The process that starts it (the
//! `Keyring.Gateway` server) receives every dynamic request as
//! `{:keyring_gateway, %{id:, method:, path:, query:, headers:, body:,
//! authorized:, mcp:}}` and answers with `gateway_respond/5`; streamed bodies
//! move with `gateway_read/3` and `gateway_chunk/4` + `gateway_finish/2`,
//! whose results arrive as `{:keyring_reply, ref, result}`. Nothing here
//! blocks a scheduler: I/O runs on the gateway's tokio threads, and JSON over
//! a small budget moves to a dirty scheduler (`{:error, :dirty}` first).

use std::cell::RefCell;
use std::time::Duration;

use bytes::Bytes;
use keyring_gateway::{
    mcp::Era, Dispatch, Gateway, GatewayConfig, Gone, Reply as HttpReply, ReplyBody, Request,
    RequestBody, RespondError, StreamError,
};
use rustler::types::atom;
use rustler::types::tuple::get_tuple;
use rustler::{
    Atom, Binary, Encoder, Env, LocalPid, NifMap, OwnedEnv, Resource, ResourceArc, Term,
};

use crate::atoms;
use crate::json::{self, Budget, JsonError};
use crate::lent::lend;
use crate::reply::Reply;

pub(crate) struct GatewayResource(Gateway);

#[rustler::resource_impl]
impl Resource for GatewayResource {}

// The gateway is used through &self methods that keep their own locks.
impl std::panic::RefUnwindSafe for GatewayResource {}
impl std::panic::UnwindSafe for GatewayResource {}

/// Sends requests to the owner process, reusing one environment per thread.
struct PidDispatch(LocalPid);

thread_local! {
    static SEND_ENV: RefCell<OwnedEnv> = RefCell::new(OwnedEnv::new());
}

fn era_terms<'a>(env: Env<'a>, era: &Era) -> (Term<'a>, Term<'a>) {
    match era {
        Era::Legacy(v) => (atoms::legacy().encode(env), v.as_str().encode(env)),
        Era::Modern(v) => (atoms::modern().encode(env), v.as_str().encode(env)),
    }
}

fn map<'a>(env: Env<'a>, pairs: &[(Atom, Term<'a>)]) -> Term<'a> {
    let keys: Vec<Term<'a>> = pairs.iter().map(|(k, _)| k.encode(env)).collect();
    let values: Vec<Term<'a>> = pairs.iter().map(|(_, v)| *v).collect();
    Term::map_from_term_arrays(env, &keys, &values).unwrap_or_else(|_| atom::nil().encode(env))
}

fn encode_request<'a>(env: Env<'a>, r: &Request) -> Term<'a> {
    let body = match &r.body {
        RequestBody::Empty => atom::nil().encode(env),
        RequestBody::Json(v) => (atoms::json(), json::to_term(env, v)).encode(env),
        RequestBody::Stream { length } => (atoms::stream(), *length).encode(env),
        RequestBody::Unsupported { content_type } => {
            (atoms::unsupported(), content_type.as_str()).encode(env)
        }
    };
    let mcp = match &r.mcp {
        None => atom::nil().encode(env),
        Some(m) => {
            let (era, version) = era_terms(env, &m.era);
            map(
                env,
                &[
                    (atoms::id(), json::to_term(env, &m.id)),
                    (atoms::method(), m.method.as_str().encode(env)),
                    (atoms::era(), era),
                    (atoms::version(), version),
                ],
            )
        }
    };
    let headers: Vec<(&str, &str)> = r.headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
    let query: Vec<(&str, &str)> = r
        .query
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let request = map(
        env,
        &[
            (atoms::id(), r.id.encode(env)),
            (atoms::method(), r.method.as_str().encode(env)),
            (atoms::path(), r.path.as_str().encode(env)),
            (atoms::query(), query.encode(env)),
            (atoms::headers(), headers.encode(env)),
            (atoms::body(), body),
            (atoms::authorized(), r.authorized.encode(env)),
            (atoms::mcp(), mcp),
        ],
    );
    (atoms::keyring_gateway(), request).encode(env)
}

impl Dispatch for PidDispatch {
    fn dispatch(&self, request: Request) -> Result<(), Gone> {
        SEND_ENV.with(|cell| {
            let mut env = cell.borrow_mut();
            env.send_and_clear(&self.0, |env| encode_request(env, &request))
                .map_err(|_| Gone)
        })
    }
}

#[derive(NifMap)]
struct StartOptions {
    bind: String,
    token: Option<String>,
    allow_public_bind: bool,
    allowed_hosts: Vec<String>,
    allowed_origins: Vec<String>,
    max_body: usize,
    max_upload: u64,
    max_connections: usize,
    max_sse_clients: usize,
    max_in_flight: usize,
    response_timeout_ms: u64,
    body_idle_timeout_ms: u64,
    header_timeout_ms: u64,
    keepalive_ms: u64,
    sse_stall_timeout_ms: u64,
    replay_events: usize,
    replay_bytes: usize,
    threads: usize,
}

#[rustler::nif(schedule = "DirtyIo")]
fn gateway_start(
    env: Env<'_>,
    opts: StartOptions,
    page: Binary<'_>,
) -> Result<ResourceArc<GatewayResource>, String> {
    let bind = opts
        .bind
        .parse()
        .map_err(|_| format!("bad bind address {:?}", opts.bind))?;
    let mut c = GatewayConfig::new(bind);
    c.token = opts.token;
    c.allow_public_bind = opts.allow_public_bind;
    c.allowed_hosts = opts.allowed_hosts;
    c.allowed_origins = opts.allowed_origins;
    c.max_body = opts.max_body;
    c.max_upload = opts.max_upload;
    c.max_connections = opts.max_connections;
    c.max_sse_clients = opts.max_sse_clients;
    c.max_in_flight = opts.max_in_flight;
    c.response_timeout = Duration::from_millis(opts.response_timeout_ms);
    c.body_idle_timeout = Duration::from_millis(opts.body_idle_timeout_ms);
    c.header_timeout = Duration::from_millis(opts.header_timeout_ms);
    c.keepalive = Duration::from_millis(opts.keepalive_ms);
    c.sse_stall_timeout = Duration::from_millis(opts.sse_stall_timeout_ms);
    c.replay_events = opts.replay_events;
    c.replay_bytes = opts.replay_bytes;
    c.threads = opts.threads;
    c.page = Bytes::copy_from_slice(page.as_slice());
    let gw = Gateway::start(c, Box::new(PidDispatch(env.pid()))).map_err(|e| e.to_string())?;
    Ok(ResourceArc::new(GatewayResource(gw)))
}

#[rustler::nif]
fn gateway_addr(gw: ResourceArc<GatewayResource>) -> String {
    gw.0.local_addr().to_string()
}

enum RespondFailure {
    Respond(RespondError),
    Json(JsonError),
    BadBody,
}

impl Encoder for RespondFailure {
    fn encode<'a>(&self, env: Env<'a>) -> Term<'a> {
        match self {
            RespondFailure::Respond(RespondError::Unknown) => atoms::unknown().encode(env),
            RespondFailure::Respond(RespondError::BadStatus) => atoms::bad_status().encode(env),
            RespondFailure::Respond(RespondError::BadHeader(h)) => {
                (atoms::bad_header(), h.as_str()).encode(env)
            }
            RespondFailure::Json(JsonError::Dirty) => atoms::dirty().encode(env),
            RespondFailure::Json(e) => (atoms::json(), e).encode(env),
            RespondFailure::BadBody => atoms::bad_term().encode(env),
        }
    }
}

/// `nil | {:json, term} | {:binary, content_type, iodata-binary} | {:stream, content_type, length | nil}`.
fn reply_body(body: Term<'_>, budget: &mut Budget) -> Result<ReplyBody, RespondFailure> {
    if body.decode::<Atom>().is_ok_and(|a| a == atom::nil()) {
        return Ok(ReplyBody::Empty);
    }
    let items = get_tuple(body).map_err(|_| RespondFailure::BadBody)?;
    let tag: Atom = items
        .first()
        .ok_or(RespondFailure::BadBody)?
        .decode()
        .map_err(|_| RespondFailure::BadBody)?;
    match items.as_slice() {
        [_, t] if tag == atoms::json() => {
            let bytes = json::to_json(*t, budget).map_err(RespondFailure::Json)?;
            Ok(ReplyBody::Json(Bytes::from(bytes)))
        }
        [_, ct, data] if tag == atoms::binary() => {
            let content_type: String = ct.decode().map_err(|_| RespondFailure::BadBody)?;
            let data: Binary<'_> = data.decode().map_err(|_| RespondFailure::BadBody)?;
            Ok(ReplyBody::Bytes {
                content_type,
                data: lend(&data),
            })
        }
        [_, ct, len] if tag == atoms::stream() => {
            let content_type: String = ct.decode().map_err(|_| RespondFailure::BadBody)?;
            let length: Option<u64> = len.decode().map_err(|_| RespondFailure::BadBody)?;
            Ok(ReplyBody::Stream {
                content_type,
                length,
            })
        }
        _ => Err(RespondFailure::BadBody),
    }
}

fn respond(
    gw: &GatewayResource,
    id: u64,
    status: u16,
    headers: Vec<(String, String)>,
    body: Term<'_>,
    mut budget: Budget,
) -> Result<Atom, RespondFailure> {
    let body = reply_body(body, &mut budget)?;
    gw.0.respond(
        id,
        HttpReply {
            status,
            headers,
            body,
        },
    )
    .map_err(RespondFailure::Respond)?;
    Ok(atoms::ok())
}

#[rustler::nif]
fn gateway_respond(
    env: Env<'_>,
    gw: ResourceArc<GatewayResource>,
    id: u64,
    status: u16,
    headers: Vec<(String, String)>,
    body: Term<'_>,
) -> Result<Atom, RespondFailure> {
    let _charge = crate::timeslice::Charge::start(env);
    respond(&gw, id, status, headers, body, Budget::normal())
}

#[rustler::nif(schedule = "DirtyCpu")]
fn gateway_respond_dirty(
    gw: ResourceArc<GatewayResource>,
    id: u64,
    status: u16,
    headers: Vec<(String, String)>,
    body: Term<'_>,
) -> Result<Atom, RespondFailure> {
    respond(&gw, id, status, headers, body, Budget::unlimited())
}

fn stream_error(e: StreamError) -> Atom {
    match e {
        StreamError::Unknown => atoms::unknown(),
        StreamError::Closed => atoms::closed(),
        StreamError::Busy => atoms::busy(),
        StreamError::TooLarge => atoms::too_large(),
        StreamError::Timeout => atoms::timeout(),
    }
}

/// Queues `data` on streamed reply `id`; answers `{:keyring_reply, ref, :ok | {:error, reason}}`
/// once it is queued (this is the download's flow control).
#[rustler::nif]
fn gateway_chunk<'a>(
    env: Env<'a>,
    gw: ResourceArc<GatewayResource>,
    id: u64,
    reference: Term<'a>,
    data: Binary<'a>,
) -> Atom {
    let reply = Reply::new(env, reference);
    gw.0.send_chunk(id, lend(&data), move |result| {
        reply.send(|env| match result {
            Ok(()) => atoms::ok().encode(env),
            Err(e) => (atoms::error(), stream_error(e)).encode(env),
        })
    });
    atoms::ok()
}

#[rustler::nif]
fn gateway_finish(gw: ResourceArc<GatewayResource>, id: u64) -> bool {
    gw.0.finish(id)
}

/// Reads the next piece of request `id`'s streamed body; answers
/// `{:keyring_reply, ref, {:ok, binary} | :eof | {:error, reason}}`.
#[rustler::nif]
fn gateway_read<'a>(
    env: Env<'a>,
    gw: ResourceArc<GatewayResource>,
    id: u64,
    reference: Term<'a>,
) -> Atom {
    let reply = Reply::new(env, reference);
    gw.0.read_chunk(id, move |result| {
        reply.send(|env| match result {
            Ok(Some(bytes)) => {
                let mut out = rustler::NewBinary::new(env, bytes.len());
                out.as_mut_slice().copy_from_slice(&bytes);
                (atoms::ok(), Binary::from(out)).encode(env)
            }
            Ok(None) => atoms::eof().encode(env),
            Err(e) => (atoms::error(), stream_error(e)).encode(env),
        })
    });
    atoms::ok()
}

fn publish_error(e: keyring_gateway::PublishError) -> Atom {
    use keyring_gateway::PublishError as P;
    match e {
        P::BadKind => atoms::bad_kind(),
        P::BadSubject => atoms::bad_subject(),
        P::TooLarge => atoms::too_large(),
    }
}

/// Publishes an event whose data is JSON text (see `json_encode/1`) to every
/// SSE client and the replay ring; `{:ok, event_id}`.
#[rustler::nif]
fn gateway_publish(
    gw: ResourceArc<GatewayResource>,
    kind: String,
    subject: Option<String>,
    data: Binary<'_>,
) -> Result<String, Atom> {
    if serde_json::from_slice::<serde::de::IgnoredAny>(data.as_slice()).is_err() {
        return Err(atoms::malformed());
    }
    gw.0.publish(&kind, subject.as_deref(), data.as_slice())
        .map(|id| id.to_string())
        .map_err(publish_error)
}

#[rustler::nif]
fn gateway_stats(env: Env<'_>, gw: ResourceArc<GatewayResource>) -> Term<'_> {
    let s = gw.0.stats();
    let pairs = [
        ("requests", s.requests),
        ("dispatched", s.dispatched),
        ("refused", s.refused),
        ("timeouts", s.timeouts),
        ("sse_clients", s.sse_clients),
        ("sse_total", s.sse_total),
        ("lagged", s.lagged),
        ("events", s.events),
        ("connections", s.connections),
        ("rejected_connections", s.rejected_connections),
    ];
    let keys: Vec<Term<'_>> = pairs
        .iter()
        .map(|(k, _)| {
            Atom::from_str(env, k)
                .map(|a| a.encode(env))
                .unwrap_or_else(|_| atom::nil().encode(env))
        })
        .collect();
    let values: Vec<Term<'_>> = pairs.iter().map(|(_, v)| v.encode(env)).collect();
    Term::map_from_term_arrays(env, &keys, &values).unwrap_or_else(|_| atom::nil().encode(env))
}

/// Stops the gateway: waits (up to half a second) for connections to close.
#[rustler::nif(schedule = "DirtyIo")]
fn gateway_close(gw: ResourceArc<GatewayResource>) -> Atom {
    gw.0.close();
    atoms::ok()
}
