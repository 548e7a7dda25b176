//! A gateway with a scriptable dispatcher, and a raw HTTP/1.1 client that
//! sends exactly the bytes a test writes (attacks included).
#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;
use std::time::Duration;

use keyring_gateway::{Dispatch, Gateway, GatewayConfig, Gone, Request};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

pub const TOKEN: &str = "test-token-0123456789abcdef";

pub struct Channel(pub mpsc::UnboundedSender<Request>);

impl Dispatch for Channel {
    fn dispatch(&self, request: Request) -> Result<(), Gone> {
        self.0.send(request).map_err(|_| Gone)
    }
}

pub fn config() -> GatewayConfig {
    let mut c = GatewayConfig::new("127.0.0.1:0".parse().unwrap());
    c.token = Some(TOKEN.into());
    c.page = bytes::Bytes::from_static(b"<!doctype html><title>test page</title>");
    c
}

pub fn start(config: GatewayConfig) -> (Arc<Gateway>, mpsc::UnboundedReceiver<Request>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let gw = Gateway::start(config, Box::new(Channel(tx))).expect("gateway starts");
    (Arc::new(gw), rx)
}

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
}

/// Sends `raw` (a whole request, `Connection: close` added by the caller)
/// and reads the response to EOF.
pub async fn raw(gw: &Gateway, raw: &[u8]) -> Response {
    let mut s = TcpStream::connect(gw.local_addr()).await.unwrap();
    s.write_all(raw).await.unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut buf))
        .await
        .expect("response in time")
        .unwrap();
    parse(&buf)
}

/// A request with the right Host and `Connection: close`.
pub async fn request(
    gw: &Gateway,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Response {
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nhost: 127.0.0.1:{}\r\nconnection: close\r\ncontent-length: {}\r\n",
        gw.local_addr().port(),
        body.len()
    );
    for (n, v) in headers {
        req.push_str(&format!("{n}: {v}\r\n"));
    }
    req.push_str("\r\n");
    let mut bytes = req.into_bytes();
    bytes.extend_from_slice(body);
    raw(gw, &bytes).await
}

pub fn bearer() -> (&'static str, String) {
    ("authorization", format!("Bearer {TOKEN}"))
}

pub fn parse(buf: &[u8]) -> Response {
    let end = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {:?}", String::from_utf8_lossy(buf)));
    let head = String::from_utf8_lossy(&buf[..end]).to_string();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let rest = &buf[end + 4..];
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.contains("chunked"));
    let body = if chunked {
        dechunk(rest)
    } else {
        rest.to_vec()
    };
    Response {
        status,
        headers,
        body,
    }
}

pub fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = data.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(std::str::from_utf8(&data[..eol]).unwrap().trim(), 16)
            .unwrap_or(0);
        data = &data[eol + 2..];
        if size == 0 || data.len() < size {
            out.extend_from_slice(&data[..size.min(data.len())]);
            break;
        }
        out.extend_from_slice(&data[..size]);
        data = &data[(size + 2).min(data.len())..];
    }
    out
}

/// An open SSE stream read incrementally.
pub struct Sse {
    pub stream: TcpStream,
    pub buf: Vec<u8>,
}

impl Sse {
    pub async fn open(gw: &Gateway, path: &str, extra: &[(&str, &str)]) -> Sse {
        let mut s = TcpStream::connect(gw.local_addr()).await.unwrap();
        let mut req = format!(
            "GET {path} HTTP/1.1\r\nhost: 127.0.0.1:{}\r\n",
            gw.local_addr().port()
        );
        for (n, v) in extra {
            req.push_str(&format!("{n}: {v}\r\n"));
        }
        req.push_str("\r\n");
        s.write_all(req.as_bytes()).await.unwrap();
        Sse {
            stream: s,
            buf: Vec::new(),
        }
    }

    /// Reads until the (de-chunked, approximately: chunk size lines included) text
    /// contains `needle`, or panics after `secs`.
    pub async fn until(&mut self, needle: &str, secs: u64) -> String {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        loop {
            let text = String::from_utf8_lossy(&self.buf).to_string();
            if text.contains(needle) {
                return text;
            }
            let mut chunk = [0u8; 65536];
            let n = tokio::time::timeout_at(deadline, self.stream.read(&mut chunk))
                .await
                .unwrap_or_else(|_| panic!("no {needle:?} in time; got {text:?}"))
                .unwrap();
            assert!(n > 0, "stream closed before {needle:?}; got {text:?}");
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}
