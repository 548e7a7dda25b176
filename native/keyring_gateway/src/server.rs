//! The HTTP shell: a hyper HTTP/1.1 server on the gateway's own tokio
//! runtime. It answers the page, `/v1/events` and the MCP transport checks
//! itself and hands every other `/v1` request (and every MCP request that
//! passed its checks) to [`Dispatch`], waiting for [`Gateway::respond`].

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Response};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpSocket, TcpStream};
use tokio::runtime::Runtime;
use tokio::sync::{mpsc, oneshot, watch, OwnedSemaphorePermit, Semaphore};

use crate::body::{self, ChannelBody, ResponseBody};
use crate::config::{ConfigError, GatewayConfig};
use crate::dispatch::{
    Dispatch, McpRequest, Reply, ReplyBody, Request, RequestBody, RespondError, StreamError,
};
use crate::events::{EventId, EventLog, PublishError};
use crate::guard::{Guard, Refusal};
use crate::mcp;
use crate::problem::Problem;
use crate::query;
use crate::sse;

/// Most bytes one [`Gateway::read_chunk`] hands back.
pub const READ_CHUNK: usize = 256 * 1024;
/// Chunks a download may have queued before `send_chunk` waits.
const DOWNLOAD_QUEUE: usize = 2;

/// Why the gateway did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The configuration breaks a rule.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The address could not be bound.
    #[error("cannot listen on {0}: {1}")]
    Bind(SocketAddr, std::io::Error),
    /// The runtime could not start.
    #[error("cannot start the runtime: {0}")]
    Runtime(std::io::Error),
}

/// Counters, readable at any time.
#[derive(Debug, Default)]
pub struct Stats {
    pub(crate) requests: AtomicU64,
    pub(crate) dispatched: AtomicU64,
    pub(crate) refused: AtomicU64,
    pub(crate) timeouts: AtomicU64,
    pub(crate) sse_total: AtomicU64,
    pub(crate) lagged: AtomicU64,
    pub(crate) events: AtomicU64,
    pub(crate) connections: AtomicUsize,
    pub(crate) rejected_connections: AtomicU64,
}

/// A copy of the counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatsSnapshot {
    /// Requests received.
    pub requests: u64,
    /// Requests handed to the dispatcher.
    pub dispatched: u64,
    /// Requests answered with a 4xx/5xx by the gateway itself.
    pub refused: u64,
    /// Requests the dispatcher did not answer in time (504).
    pub timeouts: u64,
    /// SSE clients connected now.
    pub sse_clients: u64,
    /// SSE streams opened since start.
    pub sse_total: u64,
    /// `lagged` notices sent.
    pub lagged: u64,
    /// Events published.
    pub events: u64,
    /// Open connections.
    pub connections: u64,
    /// Connections closed at accept (over `max_connections`).
    pub rejected_connections: u64,
}

struct Upload {
    body: Incoming,
    read: u64,
    // Bytes of the last frame past the previous piece's end.
    leftover: Bytes,
}

pub(crate) struct Shared {
    pub(crate) config: GatewayConfig,
    guard: Guard,
    dispatch: Box<dyn Dispatch>,
    next_id: AtomicU64,
    pending: Mutex<HashMap<u64, oneshot::Sender<Response<ResponseBody>>>>,
    uploads: Mutex<HashMap<u64, Option<Upload>>>,
    downloads: Mutex<HashMap<u64, mpsc::Sender<Bytes>>>,
    pub(crate) log: Mutex<EventLog>,
    pub(crate) log_tx: watch::Sender<u64>,
    in_flight: Arc<Semaphore>,
    connections: Arc<Semaphore>,
    pub(crate) sse_clients: AtomicUsize,
    pub(crate) shutdown_rx: watch::Receiver<bool>,
    pub(crate) stats: Stats,
}

/// Locks, ignoring poison (every critical section leaves its map consistent).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A running gateway. Dropping it stops it (without waiting).
pub struct Gateway {
    shared: Arc<Shared>,
    runtime: Mutex<Option<Runtime>>,
    addr: SocketAddr,
    shutdown: watch::Sender<bool>,
}

impl Gateway {
    /// Validates `config`, binds, and starts serving; dynamic requests go to `dispatch`.
    pub fn start(config: GatewayConfig, dispatch: Box<dyn Dispatch>) -> Result<Self, StartError> {
        config.validate()?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(config.threads)
            .thread_name("keyring-gateway")
            .enable_all()
            .build()
            .map_err(StartError::Runtime)?;
        let listener = {
            let _guard = runtime.enter();
            listen(config.bind).map_err(|e| StartError::Bind(config.bind, e))?
        };
        let addr = listener
            .local_addr()
            .map_err(|e| StartError::Bind(config.bind, e))?;
        let mut epoch = [0u8; 4];
        let _ = getrandom::fill(&mut epoch);
        let (shutdown, shutdown_rx) = watch::channel(false);
        let (log_tx, _) = watch::channel(0);
        let shared = Arc::new(Shared {
            guard: Guard::new(&config, addr.port()),
            log: Mutex::new(EventLog::new(
                u32::from_le_bytes(epoch),
                config.replay_events,
                config.replay_bytes,
            )),
            in_flight: Arc::new(Semaphore::new(config.max_in_flight)),
            connections: Arc::new(Semaphore::new(config.max_connections)),
            config,
            dispatch,
            next_id: AtomicU64::new(1),
            pending: Mutex::new(HashMap::new()),
            uploads: Mutex::new(HashMap::new()),
            downloads: Mutex::new(HashMap::new()),
            log_tx,
            sse_clients: AtomicUsize::new(0),
            shutdown_rx,
            stats: Stats::default(),
        });
        runtime.spawn(accept_loop(listener, Arc::clone(&shared)));
        Ok(Self {
            shared,
            runtime: Mutex::new(Some(runtime)),
            addr,
            shutdown,
        })
    }

    /// The address it listens on (with the real port when 0 was asked).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Answers request `id`. Validated before anything is sent; for a
    /// [`ReplyBody::Stream`] the stream is ready for [`Gateway::send_chunk`]
    /// when this returns.
    pub fn respond(&self, id: u64, reply: Reply) -> Result<(), RespondError> {
        if !(200..=599).contains(&reply.status) {
            return Err(RespondError::BadStatus);
        }
        let mut headers = HeaderMap::new();
        for (name, value) in &reply.headers {
            let n = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| RespondError::BadHeader(name.clone()))?;
            let v =
                HeaderValue::from_str(value).map_err(|_| RespondError::BadHeader(name.clone()))?;
            headers.append(n, v);
        }
        let (content_type, body, stream) = match reply.body {
            ReplyBody::Empty => (None, body::empty(), None),
            ReplyBody::Json(b) => (Some("application/json".to_string()), body::full(b), None),
            ReplyBody::Bytes { content_type, data } => (Some(content_type), body::full(data), None),
            ReplyBody::Stream {
                content_type,
                length,
            } => {
                let (tx, rx) = mpsc::channel(DOWNLOAD_QUEUE);
                let shared = Arc::clone(&self.shared);
                let body = ChannelBody::new(rx, Some(self.shared.config.body_idle_timeout), length)
                    .on_drop(move || {
                        lock(&shared.downloads).remove(&id);
                    });
                (Some(content_type), body.boxed(), Some(tx))
            }
        };
        if let Some(ct) = content_type {
            let v = HeaderValue::from_str(&ct)
                .map_err(|_| RespondError::BadHeader("content-type".into()))?;
            headers.insert(header::CONTENT_TYPE, v);
        }
        let waiter = lock(&self.shared.pending)
            .remove(&id)
            .ok_or(RespondError::Unknown)?;
        if let Some(tx) = stream {
            lock(&self.shared.downloads).insert(id, tx);
        }
        let mut resp = Response::new(body);
        *resp.status_mut() =
            http::StatusCode::from_u16(reply.status).map_err(|_| RespondError::BadStatus)?;
        *resp.headers_mut() = headers;
        secure_headers(resp.headers_mut());
        if waiter.send(resp).is_err() {
            lock(&self.shared.downloads).remove(&id);
            return Err(RespondError::Unknown);
        }
        Ok(())
    }

    /// Queues `data` on the streamed reply `id`; `done` runs on a gateway
    /// thread once the chunk is queued (or the client is gone).
    pub fn send_chunk<F>(&self, id: u64, data: Bytes, done: F)
    where
        F: FnOnce(Result<(), StreamError>) + Send + 'static,
    {
        let tx = lock(&self.shared.downloads).get(&id).cloned();
        let idle = self.shared.config.body_idle_timeout;
        let shared = Arc::clone(&self.shared);
        self.spawn(async move {
            let Some(tx) = tx else {
                return done(Err(StreamError::Unknown));
            };
            match tokio::time::timeout(idle, tx.send(data)).await {
                Ok(Ok(())) => done(Ok(())),
                _ => {
                    lock(&shared.downloads).remove(&id);
                    done(Err(StreamError::Closed))
                }
            }
        });
    }

    /// Ends the streamed reply `id` (its body completes once queued chunks are sent).
    pub fn finish(&self, id: u64) -> bool {
        lock(&self.shared.downloads).remove(&id).is_some()
    }

    /// Reads the next piece (up to [`READ_CHUNK`]) of request `id`'s streamed
    /// body; `done` gets `Ok(Some(bytes))`, `Ok(None)` at the end, or an error.
    pub fn read_chunk<F>(&self, id: u64, done: F)
    where
        F: FnOnce(Result<Option<Bytes>, StreamError>) + Send + 'static,
    {
        let shared = Arc::clone(&self.shared);
        self.spawn(async move {
            let taken = match lock(&shared.uploads).get_mut(&id) {
                None => Err(StreamError::Unknown),
                Some(slot) => slot.take().ok_or(StreamError::Busy),
            };
            let mut upload = match taken {
                Ok(u) => u,
                Err(e) => return done(Err(e)),
            };
            let result = read_piece(&mut upload, &shared.config).await;
            if let Some(slot) = lock(&shared.uploads).get_mut(&id) {
                *slot = Some(upload);
            }
            done(result)
        });
    }

    /// Publishes an event to every SSE client (and the replay ring).
    pub fn publish(
        &self,
        kind: &str,
        subject: Option<&str>,
        data: &[u8],
    ) -> Result<EventId, PublishError> {
        let id = lock(&self.shared.log).push(kind, subject, data)?;
        self.shared.stats.events.fetch_add(1, Ordering::Relaxed);
        self.shared.log_tx.send_replace(id.seq);
        Ok(id)
    }

    /// The counters now.
    pub fn stats(&self) -> StatsSnapshot {
        let s = &self.shared.stats;
        StatsSnapshot {
            requests: s.requests.load(Ordering::Relaxed),
            dispatched: s.dispatched.load(Ordering::Relaxed),
            refused: s.refused.load(Ordering::Relaxed),
            timeouts: s.timeouts.load(Ordering::Relaxed),
            sse_clients: self.shared.sse_clients.load(Ordering::Relaxed) as u64,
            sse_total: s.sse_total.load(Ordering::Relaxed),
            lagged: s.lagged.load(Ordering::Relaxed),
            events: s.events.load(Ordering::Relaxed),
            connections: s.connections.load(Ordering::Relaxed) as u64,
            rejected_connections: s.rejected_connections.load(Ordering::Relaxed),
        }
    }

    /// Stops accepting, closes every connection and stops the runtime,
    /// waiting up to half a second for it. Call off async threads.
    pub fn close(&self) {
        self.stop(true);
    }

    fn stop(&self, wait: bool) {
        self.shutdown.send_replace(true);
        let Some(rt) = lock(&self.runtime).take() else {
            return;
        };
        if wait {
            rt.shutdown_timeout(Duration::from_millis(500));
        } else {
            rt.shutdown_background();
        }
    }

    fn spawn<F>(&self, fut: F)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        if let Some(rt) = lock(&self.runtime).as_ref() {
            rt.spawn(fut);
        }
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.stop(false);
    }
}

fn listen(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    // Room for a burst of clients (1,000 SSE clients connecting at once).
    socket.listen(2048)
}

async fn accept_loop(listener: tokio::net::TcpListener, shared: Arc<Shared>) {
    let mut shutdown = shared.shutdown_rx.clone();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let Ok(permit) = Arc::clone(&shared.connections).try_acquire_owned() else {
                        shared.stats.rejected_connections.fetch_add(1, Ordering::Relaxed);
                        continue;
                    };
                    let _ = stream.set_nodelay(true);
                    tokio::spawn(serve(Arc::clone(&shared), stream, permit));
                }
                // Out of descriptors or similar: let connections close, then go on.
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            },
            _ = shutdown.changed() => return,
        }
    }
}

async fn serve(shared: Arc<Shared>, stream: TcpStream, _permit: OwnedSemaphorePermit) {
    shared.stats.connections.fetch_add(1, Ordering::Relaxed);
    let mut shutdown = shared.shutdown_rx.clone();
    let svc_shared = Arc::clone(&shared);
    let service = service_fn(move |req| {
        let shared = Arc::clone(&svc_shared);
        async move { Ok::<_, Infallible>(handle(shared, req).await) }
    });
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(shared.config.header_timeout)
        .max_buf_size(64 * 1024)
        .serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = shutdown.changed() => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(Duration::from_millis(200), conn).await;
        }
    }
    shared.stats.connections.fetch_sub(1, Ordering::Relaxed);
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Style {
    Rest,
    Rpc,
}

async fn handle(shared: Arc<Shared>, req: http::Request<Incoming>) -> Response<ResponseBody> {
    shared.stats.requests.fetch_add(1, Ordering::Relaxed);
    let style = if req.uri().path() == "/mcp" {
        Style::Rpc
    } else {
        Style::Rest
    };
    match route(&shared, req).await {
        Ok(resp) => resp,
        Err(problem) => {
            shared.stats.refused.fetch_add(1, Ordering::Relaxed);
            problem_response(&problem, style)
        }
    }
}

fn problem_response(p: &Problem, style: Style) -> Response<ResponseBody> {
    let body = match style {
        Style::Rest => p.rest_body(),
        Style::Rpc => p.rpc_body(),
    };
    json_response(p.status, body)
}

fn json_response(status: u16, body: Bytes) -> Response<ResponseBody> {
    let mut resp = Response::new(body::full(body));
    *resp.status_mut() =
        http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    secure_headers(resp.headers_mut());
    resp
}

fn secure_headers(h: &mut HeaderMap) {
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
}

fn header_bytes(h: &HeaderMap, name: impl header::AsHeaderName) -> Option<&[u8]> {
    h.get(name).map(HeaderValue::as_bytes)
}

fn media_type(h: &HeaderMap) -> Option<String> {
    let raw = std::str::from_utf8(header_bytes(h, header::CONTENT_TYPE)?).ok()?;
    Some(
        raw.split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase(),
    )
}

async fn route(
    shared: &Arc<Shared>,
    req: http::Request<Incoming>,
) -> Result<Response<ResponseBody>, Problem> {
    let (parts, body) = req.into_parts();
    let guard = &shared.guard;
    guard.check_host(header_bytes(&parts.headers, header::HOST))?;
    guard.check_origin(header_bytes(&parts.headers, header::ORIGIN))?;
    let mut params = query::parse(parts.uri.query().unwrap_or(""))
        .map_err(|e| Problem::new(400, "bad_query", e.to_string()))?;
    let query_token = match parts.method {
        Method::GET => query::get(&params, "access_token").map(str::to_string),
        _ => None,
    };
    params.retain(|(n, _)| n != "access_token");
    let authorized = guard.authorization(
        header_bytes(&parts.headers, header::AUTHORIZATION),
        query_token.as_deref(),
    )?;
    let path = parts.uri.path().to_string();
    if shared.config.token_for_reads() && !authorized && path != "/" {
        return Err(Refusal::TokenRequired.into());
    }
    match path.as_str() {
        "/" | "/index.html" => match parts.method {
            Method::GET | Method::HEAD => Ok(page(shared)),
            _ => Err(Problem::method_not_allowed("GET")),
        },
        "/v1/events" => match parts.method {
            Method::GET => {
                let sub = sse::Subscription::parse(
                    &params,
                    header_bytes(&parts.headers, "last-event-id"),
                )?;
                sse::open(shared, sub)
            }
            _ => Err(Problem::method_not_allowed("GET")),
        },
        "/mcp" => mcp_post(shared, parts, body, authorized).await,
        p if p == "/v1" || p.starts_with("/v1/") => {
            rest(shared, parts, body, path, params, authorized).await
        }
        _ => Err(Problem::not_found(&path)),
    }
}

fn page(shared: &Shared) -> Response<ResponseBody> {
    let mut resp = Response::new(body::full(shared.config.page.clone()));
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; \
             img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    secure_headers(h);
    resp
}

fn forwarded_headers(h: &HeaderMap) -> Vec<(&'static str, String)> {
    ["content-type", "accept", "user-agent", "content-length"]
        .into_iter()
        .filter_map(|name| {
            let v = h.get(name)?.to_str().ok()?;
            Some((name, v.chars().take(512).collect()))
        })
        .collect()
}

fn content_length(h: &HeaderMap) -> Option<u64> {
    std::str::from_utf8(header_bytes(h, header::CONTENT_LENGTH)?)
        .ok()?
        .trim()
        .parse()
        .ok()
}

async fn read_json(
    body: Incoming,
    headers: &HeaderMap,
    config: &GatewayConfig,
) -> Result<serde_json::Value, Problem> {
    let too_large = || {
        Problem::new(
            413,
            "body_too_large",
            format!("JSON bodies are limited to {} bytes", config.max_body),
        )
    };
    if content_length(headers).is_some_and(|n| n > config.max_body as u64) {
        return Err(too_large());
    }
    let collected = tokio::time::timeout(
        config.body_idle_timeout,
        Limited::new(body, config.max_body).collect(),
    )
    .await
    .map_err(|_| {
        Problem::new(
            408,
            "body_timeout",
            "the request body did not arrive in time",
        )
    })?;
    let bytes = match collected {
        Ok(c) => c.to_bytes(),
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            return Err(too_large())
        }
        Err(e) => {
            return Err(Problem::new(
                400,
                "bad_body",
                format!("cannot read the body: {e}"),
            ))
        }
    };
    serde_json::from_slice(&bytes).map_err(|e| {
        Problem::new(
            400,
            "malformed_json",
            format!("the body is not valid JSON: {e}"),
        )
    })
}

async fn rest(
    shared: &Arc<Shared>,
    parts: http::request::Parts,
    body: Incoming,
    path: String,
    query: Vec<(String, String)>,
    authorized: bool,
) -> Result<Response<ResponseBody>, Problem> {
    let mutating = !matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS);
    if mutating && !authorized {
        return Err(Refusal::TokenRequired.into());
    }
    let has_body = content_length(&parts.headers).is_some_and(|n| n > 0)
        || parts.headers.contains_key(header::TRANSFER_ENCODING);
    let wants_type = mutating
        && (has_body || matches!(parts.method, Method::POST | Method::PUT | Method::PATCH));
    let (request_body, upload) = if !wants_type {
        (RequestBody::Empty, None)
    } else {
        match media_type(&parts.headers).as_deref() {
            Some("application/json") => (
                RequestBody::Json(read_json(body, &parts.headers, &shared.config).await?),
                None,
            ),
            Some("application/octet-stream") => {
                let length = content_length(&parts.headers);
                if length.is_some_and(|n| n > shared.config.max_upload) {
                    return Err(Problem::new(
                        413,
                        "body_too_large",
                        format!("uploads are limited to {} bytes", shared.config.max_upload),
                    ));
                }
                (
                    RequestBody::Stream { length },
                    Some(Upload {
                        body,
                        read: 0,
                        leftover: Bytes::new(),
                    }),
                )
            }
            other => (
                RequestBody::Unsupported {
                    content_type: other.unwrap_or("").to_string(),
                },
                None,
            ),
        }
    };
    let request = Request {
        id: 0,
        method: parts.method.to_string(),
        path,
        query,
        headers: forwarded_headers(&parts.headers),
        body: request_body,
        authorized,
        mcp: None,
    };
    hand_off(shared, request, upload).await
}

async fn mcp_post(
    shared: &Arc<Shared>,
    parts: http::request::Parts,
    body: Incoming,
    authorized: bool,
) -> Result<Response<ResponseBody>, Problem> {
    if parts.method != Method::POST {
        let mut resp = problem_response(&Problem::method_not_allowed("POST"), Style::Rpc);
        resp.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST"));
        return Ok(resp);
    }
    if media_type(&parts.headers).as_deref() != Some("application/json") {
        return Err(Problem::new(
            415,
            "unsupported_media_type",
            "MCP messages are POSTed as application/json",
        ));
    }
    if let Some(accept) = header_bytes(&parts.headers, header::ACCEPT) {
        let accept = String::from_utf8_lossy(accept).to_ascii_lowercase();
        if !["application/json", "application/*", "*/*"]
            .iter()
            .any(|t| accept.contains(t))
        {
            return Err(Problem::new(
                406,
                "not_acceptable",
                "this server answers with application/json",
            ));
        }
    }
    let message = read_json(body, &parts.headers, &shared.config).await?;
    let headers = mcp::Headers {
        protocol_version: header_bytes(&parts.headers, "mcp-protocol-version"),
        method: header_bytes(&parts.headers, "mcp-method"),
        name: header_bytes(&parts.headers, "mcp-name"),
    };
    match mcp::classify(&message, headers) {
        Err(e) => {
            shared.stats.refused.fetch_add(1, Ordering::Relaxed);
            Ok(json_response(e.status, e.body()))
        }
        Ok(mcp::Envelope::Accepted) => {
            let mut resp = Response::new(body::empty());
            *resp.status_mut() = http::StatusCode::ACCEPTED;
            Ok(resp)
        }
        Ok(mcp::Envelope::Request { id, method, era }) => {
            let request = Request {
                id: 0,
                method: "POST".into(),
                path: "/mcp".into(),
                query: Vec::new(),
                headers: forwarded_headers(&parts.headers),
                body: RequestBody::Json(message),
                authorized,
                mcp: Some(McpRequest { id, method, era }),
            };
            hand_off(shared, request, None).await
        }
    }
}

/// Removes what a request left behind when its handler future ends (answered,
/// timed out, or dropped because the client went away).
struct Cleanup<'a> {
    shared: &'a Shared,
    id: u64,
}

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        lock(&self.shared.pending).remove(&self.id);
        lock(&self.shared.uploads).remove(&self.id);
    }
}

async fn hand_off(
    shared: &Arc<Shared>,
    mut request: Request,
    upload: Option<Upload>,
) -> Result<Response<ResponseBody>, Problem> {
    let _permit = Arc::clone(&shared.in_flight)
        .try_acquire_owned()
        .map_err(|_| {
            Problem::new(
                503,
                "busy",
                "too many requests are waiting for an answer; retry shortly",
            )
        })?;
    let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
    request.id = id;
    let (tx, rx) = oneshot::channel();
    lock(&shared.pending).insert(id, tx);
    if let Some(u) = upload {
        lock(&shared.uploads).insert(id, Some(u));
    }
    let _cleanup = Cleanup { shared, id };
    shared.dispatch.dispatch(request).map_err(|_| {
        Problem::new(
            503,
            "unavailable",
            "the node is not serving requests right now",
        )
    })?;
    shared.stats.dispatched.fetch_add(1, Ordering::Relaxed);
    match tokio::time::timeout(shared.config.response_timeout, rx).await {
        Ok(Ok(resp)) => Ok(resp),
        Ok(Err(_)) => Err(Problem::new(
            503,
            "unavailable",
            "the handler went away without answering",
        )),
        Err(_) => {
            shared.stats.timeouts.fetch_add(1, Ordering::Relaxed);
            Err(Problem::new(
                504,
                "timeout",
                "the node did not answer in time",
            ))
        }
    }
}

async fn read_piece(
    upload: &mut Upload,
    config: &GatewayConfig,
) -> Result<Option<Bytes>, StreamError> {
    let mut out = BytesMut::new();
    let take = upload.leftover.len().min(READ_CHUNK);
    out.extend_from_slice(&upload.leftover.split_to(take));
    while out.len() < READ_CHUNK {
        let frame = match tokio::time::timeout(config.body_idle_timeout, upload.body.frame()).await
        {
            Err(_) => return Err(StreamError::Timeout),
            Ok(None) => break,
            Ok(Some(Err(_))) => return Err(StreamError::Closed),
            Ok(Some(Ok(frame))) => frame,
        };
        if let Ok(data) = frame.into_data() {
            upload.read += data.len() as u64;
            if upload.read > config.max_upload {
                return Err(StreamError::TooLarge);
            }
            let room = READ_CHUNK - out.len();
            if data.len() > room {
                out.extend_from_slice(&data[..room]);
                upload.leftover = data.slice(room..);
            } else {
                out.extend_from_slice(&data);
            }
        }
    }
    Ok((!out.is_empty()).then(|| out.freeze()))
}
