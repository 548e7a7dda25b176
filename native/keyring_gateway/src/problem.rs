//! The JSON error every refused request gets: `{"error": {"code", "message"}}`
//! on REST routes, a JSON-RPC error without id on `/mcp`.

use bytes::Bytes;
use serde_json::json;

use crate::guard::Refusal;

/// A refusal the gateway answers by itself, before or instead of the BEAM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// HTTP status.
    pub status: u16,
    /// Stable, machine-readable code (`bad_origin`, `body_too_large`, ...).
    pub code: &'static str,
    /// What happened and what to do, for a person.
    pub message: String,
}

impl Problem {
    /// A problem with `status`, `code` and `message`.
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    /// `{"error": {"code": ..., "message": ...}}`.
    pub fn rest_body(&self) -> Bytes {
        let body = json!({"error": {"code": self.code, "message": self.message}});
        Bytes::from(body.to_string())
    }

    /// A JSON-RPC error response with `id: null` (`code` -32600 unless the
    /// problem is a parse error).
    pub fn rpc_body(&self) -> Bytes {
        let code = match self.code {
            "malformed_json" => -32700,
            _ => -32600,
        };
        let body = json!({
            "jsonrpc": "2.0",
            "id": null,
            "error": {"code": code, "message": self.message, "data": {"reason": self.code}}
        });
        Bytes::from(body.to_string())
    }

    /// 404 for a path nothing serves.
    pub fn not_found(path: &str) -> Self {
        Self::new(404, "not_found", format!("no route for {path}"))
    }

    /// 405 with the methods the route does serve.
    pub fn method_not_allowed(allowed: &str) -> Self {
        Self::new(
            405,
            "method_not_allowed",
            format!("this route serves {allowed} only"),
        )
    }
}

impl From<Refusal> for Problem {
    fn from(r: Refusal) -> Self {
        match r {
            Refusal::BadHost => Problem::new(
                403,
                "bad_host",
                "the Host header does not name this server (DNS rebinding protection)",
            ),
            Refusal::BadOrigin => Problem::new(
                403,
                "bad_origin",
                "requests from this Origin are not accepted",
            ),
            Refusal::BadToken => Problem::new(
                401,
                "bad_token",
                "the bearer token is wrong; see <data dir>/gateway.token",
            ),
            Refusal::TokenRequired => Problem::new(
                401,
                "token_required",
                "this route needs 'Authorization: Bearer <token>' (the token is in <data dir>/gateway.token)",
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rest_and_rpc_bodies_are_json() {
        let p = Problem::from(Refusal::BadOrigin);
        let v: serde_json::Value = serde_json::from_slice(&p.rest_body()).unwrap();
        assert_eq!(v["error"]["code"], "bad_origin");
        let v: serde_json::Value = serde_json::from_slice(&p.rpc_body()).unwrap();
        assert_eq!(v["error"]["code"], -32600);
        assert_eq!(v["id"], serde_json::Value::Null);
        let parse = Problem::new(400, "malformed_json", "x");
        let v: serde_json::Value = serde_json::from_slice(&parse.rpc_body()).unwrap();
        assert_eq!(v["error"]["code"], -32700);
    }
}
