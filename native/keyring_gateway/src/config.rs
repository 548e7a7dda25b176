//! What a gateway is told at start, and the rules a configuration must keep.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;

/// The shortest bearer token accepted (the generated one has 43 characters).
pub const MIN_TOKEN_LEN: usize = 16;

/// Everything [`crate::Gateway::start`] needs. [`GatewayConfig::new`] gives the
/// defaults; fields are public so an adapter can override them one by one.
#[derive(Clone, Debug)]
pub struct GatewayConfig {
    /// Address to listen on. Loopback unless `allow_public_bind` and a token.
    pub bind: SocketAddr,
    /// Bearer token: required for every mutating route and tool; with a
    /// non-loopback bind, for every route but the page.
    pub token: Option<String>,
    /// A non-loopback `bind` is refused unless this is set (and a token given).
    pub allow_public_bind: bool,
    /// Extra `Host` names (with or without port) accepted besides loopback.
    pub allowed_hosts: Vec<String>,
    /// Extra exact `Origin` values accepted besides this server's own.
    pub allowed_origins: Vec<String>,
    /// Largest JSON request body (REST and MCP), bytes.
    pub max_body: usize,
    /// Largest streamed (`application/octet-stream`) request body, bytes.
    pub max_upload: u64,
    /// Open connections at once; further ones are closed on accept.
    pub max_connections: usize,
    /// SSE clients at once; further ones get 503.
    pub max_sse_clients: usize,
    /// Requests waiting for the BEAM at once; further ones get 503.
    pub max_in_flight: usize,
    /// How long the BEAM may take to start an answer before the client gets 504.
    pub response_timeout: Duration,
    /// Longest pause inside a streamed body, either way, before it is cut.
    pub body_idle_timeout: Duration,
    /// How long a client may take to send a request's headers.
    pub header_timeout: Duration,
    /// SSE keep-alive comment interval when no event flows.
    pub keepalive: Duration,
    /// An SSE client that accepts nothing for this long is disconnected.
    pub sse_stall_timeout: Duration,
    /// Events kept for `Last-Event-ID` resume (count).
    pub replay_events: usize,
    /// Events kept for resume (total bytes of their data).
    pub replay_bytes: usize,
    /// Worker threads of the gateway's tokio runtime.
    pub threads: usize,
    /// The status page served at `/`.
    pub page: Bytes,
}

impl GatewayConfig {
    /// Defaults: 127.0.0.1 on `bind`'s port, 1 MiB JSON bodies, 1 GiB uploads,
    /// 30 s to answer, 15 s keep-alives, 1,024 events (4 MiB) kept for resume.
    pub fn new(bind: SocketAddr) -> Self {
        Self {
            bind,
            token: None,
            allow_public_bind: false,
            allowed_hosts: Vec::new(),
            allowed_origins: Vec::new(),
            max_body: 1 << 20,
            max_upload: 1 << 30,
            max_connections: 4096,
            max_sse_clients: 2048,
            max_in_flight: 1024,
            response_timeout: Duration::from_secs(30),
            body_idle_timeout: Duration::from_secs(30),
            header_timeout: Duration::from_secs(10),
            keepalive: Duration::from_secs(15),
            sse_stall_timeout: Duration::from_secs(60),
            replay_events: 1024,
            replay_bytes: 4 << 20,
            threads: 2,
            page: Bytes::from_static(b"<!doctype html><title>Keyring</title>"),
        }
    }

    /// Checks the rules: a public bind needs the explicit option and a token;
    /// a token is long enough and header-safe; limits are positive.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Some(token) = &self.token {
            if token.len() < MIN_TOKEN_LEN {
                return Err(ConfigError::TokenTooShort);
            }
            if !token.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(ConfigError::TokenNotPrintable);
            }
        }
        if !self.bind.ip().is_loopback() {
            if !self.allow_public_bind {
                return Err(ConfigError::PublicBindNotAllowed);
            }
            if self.token.is_none() {
                return Err(ConfigError::PublicBindWithoutToken);
            }
        }
        let positive = [
            ("max_body", self.max_body as u64),
            ("max_upload", self.max_upload),
            ("max_connections", self.max_connections as u64),
            ("max_sse_clients", self.max_sse_clients as u64),
            ("max_in_flight", self.max_in_flight as u64),
            ("replay_events", self.replay_events as u64),
            ("replay_bytes", self.replay_bytes as u64),
            ("threads", self.threads as u64),
            ("response_timeout", self.response_timeout.as_millis() as u64),
            (
                "body_idle_timeout",
                self.body_idle_timeout.as_millis() as u64,
            ),
            ("header_timeout", self.header_timeout.as_millis() as u64),
            ("keepalive", self.keepalive.as_millis() as u64),
            (
                "sse_stall_timeout",
                self.sse_stall_timeout.as_millis() as u64,
            ),
        ];
        for (name, value) in positive {
            if value == 0 {
                return Err(ConfigError::Zero(name));
            }
        }
        Ok(())
    }

    /// Whether every route (but the page) needs the token: any non-loopback bind.
    pub fn token_for_reads(&self) -> bool {
        !self.bind.ip().is_loopback()
    }
}

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    /// A non-loopback address without `allow_public_bind`.
    #[error("binding a non-loopback address needs the explicit public-bind option")]
    PublicBindNotAllowed,
    /// A non-loopback address without a token.
    #[error("binding a non-loopback address needs a token")]
    PublicBindWithoutToken,
    /// The token is shorter than [`MIN_TOKEN_LEN`].
    #[error("the token must have at least {MIN_TOKEN_LEN} characters")]
    TokenTooShort,
    /// The token has characters a header cannot carry.
    #[error("the token must be printable ASCII without spaces")]
    TokenNotPrintable,
    /// A limit is zero.
    #[error("{0} must be positive")]
    Zero(&'static str),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn loopback_without_token_is_fine() {
        assert_eq!(GatewayConfig::new(addr("127.0.0.1:0")).validate(), Ok(()));
        assert_eq!(GatewayConfig::new(addr("[::1]:0")).validate(), Ok(()));
    }

    #[test]
    fn public_bind_needs_the_option_and_a_token() {
        let mut c = GatewayConfig::new(addr("0.0.0.0:0"));
        assert_eq!(c.validate(), Err(ConfigError::PublicBindNotAllowed));
        c.allow_public_bind = true;
        assert_eq!(c.validate(), Err(ConfigError::PublicBindWithoutToken));
        c.token = Some("x".repeat(MIN_TOKEN_LEN));
        assert_eq!(c.validate(), Ok(()));
        assert!(c.token_for_reads());
    }

    #[test]
    fn short_or_unprintable_tokens_are_refused() {
        let mut c = GatewayConfig::new(addr("127.0.0.1:0"));
        c.token = Some("short".into());
        assert_eq!(c.validate(), Err(ConfigError::TokenTooShort));
        c.token = Some("a token with spaces in it".into());
        assert_eq!(c.validate(), Err(ConfigError::TokenNotPrintable));
    }

    #[test]
    fn zero_limits_are_refused() {
        let mut c = GatewayConfig::new(addr("127.0.0.1:0"));
        c.max_body = 0;
        assert_eq!(c.validate(), Err(ConfigError::Zero("max_body")));
    }
}
