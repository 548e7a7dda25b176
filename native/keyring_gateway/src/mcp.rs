//! MCP's Streamable HTTP transport, JSON-only and sessionless: the checks on
//! the envelope and the headers that come before any method is run.
//!
//! Two eras share `POST /mcp`:
//! - legacy (2025-03-26, 2025-06-18, 2025-11-25): `initialize` first; the
//!   `MCP-Protocol-Version` header, when present, names a known version
//!   (absent means 2025-03-26);
//! - modern (2026-07-28): no `initialize`; every request carries
//!   `params._meta["io.modelcontextprotocol/protocolVersion"]`, and the headers
//!   `MCP-Protocol-Version`, `Mcp-Method` and (for `tools/call`,
//!   `resources/read`, `prompts/get`) `Mcp-Name` must be present and match the
//!   body, else `400` with `-32020 HeaderMismatch`.
//!
//! Notifications and responses get `202` with no body. Methods are answered
//! by the BEAM; this module only decides whether a request gets that far.

use base64::Engine as _;
use bytes::Bytes;
use serde_json::{json, Value};

/// Every version served, newest first.
pub const SUPPORTED_VERSIONS: [&str; 4] = ["2026-07-28", "2025-11-25", "2025-06-18", "2025-03-26"];
/// The first version of the stateless, per-request-metadata era.
pub const MODERN: &str = "2026-07-28";
/// The version assumed when a legacy client sends no header.
pub const DEFAULT_LEGACY: &str = "2025-03-26";

const META_VERSION: &str = "io.modelcontextprotocol/protocolVersion";

/// JSON-RPC: invalid request.
pub const INVALID_REQUEST: i64 = -32600;
/// MCP: headers do not match the body, or a required one is missing.
pub const HEADER_MISMATCH: i64 = -32020;
/// MCP: the requested protocol version is not served.
pub const UNSUPPORTED_PROTOCOL_VERSION: i64 = -32022;

/// Which rules a request is served under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Era {
    /// `initialize`-based, the version from the header (or the default).
    Legacy(String),
    /// Stateless 2026-07-28, the version from `_meta` (equal to the header).
    Modern(String),
}

/// What a POST body turned out to be.
#[derive(Debug, Clone, PartialEq)]
pub enum Envelope {
    /// A request: the BEAM answers it.
    Request {
        /// Its id (string or number), echoed in the answer.
        id: Value,
        /// The method.
        method: String,
        /// Served under.
        era: Era,
    },
    /// A notification or a response from the client: 202, nothing to run.
    Accepted,
}

/// A request refused before it reached a method: HTTP status + JSON-RPC error.
#[derive(Debug, Clone, PartialEq)]
pub struct McpError {
    /// HTTP status (400 for every envelope and header problem).
    pub status: u16,
    /// The request id when one was readable.
    pub id: Value,
    /// JSON-RPC error code.
    pub code: i64,
    /// For a person.
    pub message: String,
    /// Extra data (`supported`/`requested` for an unsupported version).
    pub data: Option<Value>,
}

impl McpError {
    fn new(id: &Value, code: i64, message: impl Into<String>) -> Self {
        Self {
            status: 400,
            id: id.clone(),
            code,
            message: message.into(),
            data: None,
        }
    }

    /// The JSON-RPC error response.
    pub fn body(&self) -> Bytes {
        let mut error = json!({"code": self.code, "message": self.message});
        if let Some(d) = &self.data {
            error["data"] = d.clone();
        }
        Bytes::from(json!({"jsonrpc": "2.0", "id": self.id, "error": error}).to_string())
    }
}

/// The MCP headers of a request, as sent.
#[derive(Debug, Clone, Copy, Default)]
pub struct Headers<'a> {
    /// `MCP-Protocol-Version`.
    pub protocol_version: Option<&'a [u8]>,
    /// `Mcp-Method`.
    pub method: Option<&'a [u8]>,
    /// `Mcp-Name`.
    pub name: Option<&'a [u8]>,
}

fn unsupported(id: &Value, requested: &str) -> McpError {
    let mut e = McpError::new(
        id,
        UNSUPPORTED_PROTOCOL_VERSION,
        "Unsupported protocol version",
    );
    e.data = Some(json!({"supported": SUPPORTED_VERSIONS, "requested": requested}));
    e
}

fn mismatch(id: &Value, message: String) -> McpError {
    McpError::new(id, HEADER_MISMATCH, format!("Header mismatch: {message}"))
}

/// Classifies a parsed POST body and checks its headers.
pub fn classify(body: &Value, headers: Headers<'_>) -> Result<Envelope, McpError> {
    let null = Value::Null;
    let obj = match body {
        Value::Object(o) => o,
        Value::Array(_) => {
            return Err(McpError::new(
                &null,
                INVALID_REQUEST,
                "JSON-RPC batches are not supported: send one message per POST",
            ))
        }
        _ => {
            return Err(McpError::new(
                &null,
                INVALID_REQUEST,
                "the body must be a JSON-RPC object",
            ))
        }
    };
    let id = obj.get("id").cloned().unwrap_or(Value::Null);
    if obj.get("jsonrpc") != Some(&Value::String("2.0".into())) {
        return Err(McpError::new(
            &id,
            INVALID_REQUEST,
            "\"jsonrpc\" must be \"2.0\"",
        ));
    }
    let header_version = match headers.protocol_version {
        None => None,
        Some(raw) => Some(
            std::str::from_utf8(raw)
                .map_err(|_| mismatch(&id, "MCP-Protocol-Version is not text".into()))?
                .trim(),
        ),
    };
    if let Some(v) = header_version {
        if !SUPPORTED_VERSIONS.contains(&v) {
            return Err(unsupported(&id, v));
        }
    }
    let Some(method) = obj.get("method") else {
        return match obj.contains_key("result") || obj.contains_key("error") {
            true => Ok(Envelope::Accepted),
            false => Err(McpError::new(
                &id,
                INVALID_REQUEST,
                "a message needs \"method\"",
            )),
        };
    };
    let method = method
        .as_str()
        .filter(|m| !m.is_empty() && m.len() <= 256)
        .ok_or_else(|| {
            McpError::new(
                &id,
                INVALID_REQUEST,
                "\"method\" must be a non-empty string",
            )
        })?;
    if !obj.contains_key("id") {
        return Ok(Envelope::Accepted);
    }
    if !(id.is_string() || id.is_i64() || id.is_u64()) {
        return Err(McpError::new(
            &Value::Null,
            INVALID_REQUEST,
            "\"id\" must be a string or an integer",
        ));
    }
    let params = obj.get("params");
    if params.is_some_and(|p| !p.is_object()) {
        return Err(McpError::new(
            &id,
            INVALID_REQUEST,
            "\"params\" must be an object",
        ));
    }
    let meta_version = params
        .and_then(|p| p.get("_meta"))
        .and_then(|m| m.get(META_VERSION));
    let era = match meta_version {
        Some(v) => {
            let v = v.as_str().ok_or_else(|| {
                McpError::new(
                    &id,
                    INVALID_REQUEST,
                    "_meta protocolVersion must be a string",
                )
            })?;
            if !SUPPORTED_VERSIONS.contains(&v) {
                return Err(unsupported(&id, v));
            }
            if v != MODERN {
                return Err(mismatch(
                    &id,
                    format!("_meta names {v}, which uses initialize instead"),
                ));
            }
            check_modern_headers(&id, method, params, header_version, headers)?;
            Era::Modern(v.to_string())
        }
        None => {
            if header_version == Some(MODERN) {
                return Err(mismatch(
                    &id,
                    format!("MCP-Protocol-Version is {MODERN} but params._meta does not carry {META_VERSION}"),
                ));
            }
            Era::Legacy(header_version.unwrap_or(DEFAULT_LEGACY).to_string())
        }
    };
    Ok(Envelope::Request {
        id,
        method: method.to_string(),
        era,
    })
}

fn check_modern_headers(
    id: &Value,
    method: &str,
    params: Option<&Value>,
    header_version: Option<&str>,
    headers: Headers<'_>,
) -> Result<(), McpError> {
    match header_version {
        Some(MODERN) => {}
        Some(other) => {
            return Err(mismatch(
                id,
                format!("MCP-Protocol-Version {other} does not match _meta {MODERN}"),
            ))
        }
        None => {
            return Err(mismatch(
                id,
                "MCP-Protocol-Version header is required".into(),
            ))
        }
    }
    let header_method = headers
        .method
        .ok_or_else(|| mismatch(id, "Mcp-Method header is required".into()))?;
    if header_method != method.as_bytes() {
        return Err(mismatch(
            id,
            format!(
                "Mcp-Method header value '{}' does not match body value '{method}'",
                String::from_utf8_lossy(header_method)
            ),
        ));
    }
    let name_field = match method {
        "tools/call" | "prompts/get" => Some("name"),
        "resources/read" => Some("uri"),
        _ => None,
    };
    if let Some(field) = name_field {
        let body_name = params.and_then(|p| p.get(field)).and_then(Value::as_str);
        let header = headers
            .name
            .ok_or_else(|| mismatch(id, "Mcp-Name header is required".into()))?;
        let header = decode_header_value(header)
            .ok_or_else(|| mismatch(id, "Mcp-Name header value is malformed".into()))?;
        if Some(header.as_str()) != body_name {
            return Err(mismatch(
                id,
                format!(
                    "Mcp-Name header value '{header}' does not match body value '{}'",
                    body_name.unwrap_or("")
                ),
            ));
        }
    }
    Ok(())
}

/// A header value as MCP encodes it: plain visible ASCII, or
/// `=?base64?<standard base64 of UTF-8>?=`. `None` when malformed.
pub fn decode_header_value(raw: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(raw).ok()?;
    if let Some(inner) = text
        .strip_prefix("=?base64?")
        .and_then(|t| t.strip_suffix("?="))
    {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(inner)
            .ok()?;
        return String::from_utf8(bytes).ok();
    }
    text.bytes()
        .all(|b| b == b' ' || b == b'\t' || b.is_ascii_graphic())
        .then(|| text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h<'a>(v: Option<&'a str>, m: Option<&'a str>, n: Option<&'a str>) -> Headers<'a> {
        Headers {
            protocol_version: v.map(str::as_bytes),
            method: m.map(str::as_bytes),
            name: n.map(str::as_bytes),
        }
    }

    fn modern(method: &str, extra: Value) -> Value {
        let mut params = json!({"_meta": {META_VERSION: MODERN, "io.modelcontextprotocol/clientCapabilities": {}}});
        if let Value::Object(extra) = extra {
            for (k, v) in extra {
                params[k] = v;
            }
        }
        json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
    }

    #[test]
    fn legacy_initialize_passes_without_headers() {
        let body = json!({"jsonrpc": "2.0", "id": "a", "method": "initialize", "params": {"protocolVersion": "2025-06-18"}});
        let e = classify(&body, h(None, None, None)).unwrap();
        assert_eq!(
            e,
            Envelope::Request {
                id: json!("a"),
                method: "initialize".into(),
                era: Era::Legacy(DEFAULT_LEGACY.into())
            }
        );
        let e = classify(&body, h(Some("2025-11-25"), None, None)).unwrap();
        assert!(matches!(e, Envelope::Request { era: Era::Legacy(v), .. } if v == "2025-11-25"));
    }

    #[test]
    fn notifications_and_responses_are_accepted() {
        let n = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        assert_eq!(classify(&n, h(None, None, None)), Ok(Envelope::Accepted));
        let r = json!({"jsonrpc": "2.0", "id": 3, "result": {}});
        assert_eq!(classify(&r, h(None, None, None)), Ok(Envelope::Accepted));
    }

    #[test]
    fn malformed_envelopes_are_refused() {
        for body in [
            json!([1]),
            json!("x"),
            json!({"id": 1, "method": "ping"}),
            json!({"jsonrpc": "2.0", "id": 1}),
            json!({"jsonrpc": "2.0", "id": 1, "method": ""}),
            json!({"jsonrpc": "2.0", "id": 1.5, "method": "ping"}),
            json!({"jsonrpc": "2.0", "id": 1, "method": "ping", "params": [1]}),
        ] {
            let e = classify(&body, h(None, None, None)).unwrap_err();
            assert_eq!((e.status, e.code), (400, INVALID_REQUEST), "{body}");
        }
    }

    #[test]
    fn unknown_versions_are_refused_with_the_supported_list() {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": "ping"});
        let e = classify(&body, h(Some("1900-01-01"), None, None)).unwrap_err();
        assert_eq!(e.code, UNSUPPORTED_PROTOCOL_VERSION);
        let v: Value = serde_json::from_slice(&e.body()).unwrap();
        assert_eq!(v["error"]["data"]["requested"], "1900-01-01");
        assert_eq!(v["error"]["data"]["supported"][0], MODERN);
        let mut body = modern("tools/list", json!({}));
        body["params"]["_meta"][META_VERSION] = json!("1900-01-01");
        assert_eq!(
            classify(&body, h(Some(MODERN), Some("tools/list"), None))
                .unwrap_err()
                .code,
            UNSUPPORTED_PROTOCOL_VERSION
        );
    }

    #[test]
    fn modern_requests_need_matching_headers() {
        let body = modern("server/discover", json!({}));
        let ok = classify(&body, h(Some(MODERN), Some("server/discover"), None)).unwrap();
        assert!(matches!(
            ok,
            Envelope::Request {
                era: Era::Modern(_),
                ..
            }
        ));
        for (v, m) in [
            (None, Some("server/discover")),
            (Some(MODERN), None),
            (Some("2025-11-25"), Some("server/discover")),
            (Some(MODERN), Some("tools/list")),
        ] {
            let e = classify(&body, h(v, m, None)).unwrap_err();
            assert_eq!((e.status, e.code), (400, HEADER_MISMATCH), "{v:?} {m:?}");
        }
    }

    #[test]
    fn tools_call_needs_a_matching_name_header() {
        let body = modern(
            "tools/call",
            json!({"name": "keyring_status", "arguments": {}}),
        );
        assert!(classify(
            &body,
            h(Some(MODERN), Some("tools/call"), Some("keyring_status"))
        )
        .is_ok());
        let b64 = format!(
            "=?base64?{}?=",
            base64::engine::general_purpose::STANDARD.encode("keyring_status")
        );
        assert!(classify(&body, h(Some(MODERN), Some("tools/call"), Some(&b64))).is_ok());
        for n in [None, Some("keyring_identity"), Some("=?base64?!!!?=")] {
            let e = classify(&body, h(Some(MODERN), Some("tools/call"), n)).unwrap_err();
            assert_eq!(e.code, HEADER_MISMATCH, "{n:?}");
        }
    }

    #[test]
    fn modern_header_without_meta_is_a_mismatch() {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"});
        assert_eq!(
            classify(&body, h(Some(MODERN), Some("tools/list"), None))
                .unwrap_err()
                .code,
            HEADER_MISMATCH
        );
    }

    #[test]
    fn header_values_decode() {
        assert_eq!(
            decode_header_value(b"plain name"),
            Some("plain name".into())
        );
        assert_eq!(
            decode_header_value(b"=?base64?SGVsbG8sIOS4lueVjA==?="),
            Some("Hello, 世界".into())
        );
        assert_eq!(decode_header_value(b"bad\x01"), None);
        assert_eq!(decode_header_value(b"=?base64?%%%?="), None);
    }
}
