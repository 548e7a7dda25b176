//! Every fence, attacked with raw requests; an honest request still succeeds after each.

mod common;

use common::*;
use keyring_gateway::{Reply, ReplyBody};
use std::time::Duration;
use tokio::io::AsyncWriteExt;

fn answer_ok(
    gw: std::sync::Arc<keyring_gateway::Gateway>,
    mut rx: tokio::sync::mpsc::UnboundedReceiver<keyring_gateway::Request>,
) {
    tokio::spawn(async move {
        while let Some(req) = rx.recv().await {
            let kind = match &req.body {
                keyring_gateway::RequestBody::Empty => "empty".to_string(),
                keyring_gateway::RequestBody::Json(_) => "json".to_string(),
                keyring_gateway::RequestBody::Stream { .. } => "stream".to_string(),
                keyring_gateway::RequestBody::Unsupported { content_type } => {
                    format!("unsupported {content_type}")
                }
            };
            let body = serde_json::json!({"path": req.path, "method": req.method, "authorized": req.authorized, "body": kind});
            let _ = gw.respond(
                req.id,
                Reply {
                    status: 200,
                    headers: vec![],
                    body: ReplyBody::Json(body.to_string().into()),
                },
            );
        }
    });
}

async fn honest_works(gw: &keyring_gateway::Gateway) {
    let r = request(gw, "GET", "/v1/status", &[], b"").await;
    assert_eq!(r.status, 200, "an honest request after an attack");
    assert_eq!(r.json()["path"], "/v1/status");
}

#[tokio::test]
async fn wrong_origin_is_refused() {
    let (gw, rx) = start(config());
    answer_ok(gw.clone(), rx);
    let r = request(
        &gw,
        "GET",
        "/v1/status",
        &[("origin", "http://evil.example")],
        b"",
    )
    .await;
    assert_eq!(r.status, 403);
    assert_eq!(r.json()["error"]["code"], "bad_origin");
    let own = format!("http://127.0.0.1:{}", gw.local_addr().port());
    assert_eq!(
        request(&gw, "GET", "/v1/status", &[("origin", &own)], b"")
            .await
            .status,
        200
    );
    honest_works(&gw).await;
}

#[tokio::test]
async fn rebinding_host_is_refused() {
    let (gw, rx) = start(config());
    answer_ok(gw.clone(), rx);
    let port = gw.local_addr().port();
    let r = raw(
        &gw,
        format!(
            "GET /v1/status HTTP/1.1\r\nhost: evil.example:{port}\r\nconnection: close\r\n\r\n"
        )
        .as_bytes(),
    )
    .await;
    assert_eq!(r.status, 403);
    assert_eq!(r.json()["error"]["code"], "bad_host");
    let r = raw(&gw, b"GET /v1/status HTTP/1.0\r\n\r\n").await;
    assert_eq!(r.status, 403, "no Host at all");
    honest_works(&gw).await;
}

#[tokio::test]
async fn mutations_need_the_token() {
    let (gw, rx) = start(config());
    answer_ok(gw.clone(), rx);
    let json = [("content-type", "application/json")];
    let r = request(&gw, "POST", "/v1/keyrings", &json, b"{}").await;
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["error"]["code"], "token_required");
    let wrong = [
        ("content-type", "application/json"),
        ("authorization", "Bearer wrong-token-wrong-token"),
    ];
    let r = request(&gw, "POST", "/v1/keyrings", &wrong, b"{}").await;
    assert_eq!(r.json()["error"]["code"], "bad_token");
    let (n, v) = bearer();
    let r = request(&gw, "POST", "/v1/keyrings", &[json[0], (n, &v)], b"{}").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["authorized"], true);
    // A wrong token is refused even on reads.
    let r = request(
        &gw,
        "GET",
        "/v1/status",
        &[("authorization", "Bearer nope-nope-nope-nope")],
        b"",
    )
    .await;
    assert_eq!(r.status, 401);
    honest_works(&gw).await;
}

#[tokio::test]
async fn bodies_of_other_media_types_are_never_parsed() {
    let (gw, rx) = start(config());
    answer_ok(gw.clone(), rx);
    let (n, v) = bearer();
    // A body of another media type is never read or parsed; the handler,
    // which knows whether the route exists, answers 415 (or 405/404).
    for (ct, kind) in [
        (None, "unsupported "),
        (Some("text/plain"), "unsupported text/plain"),
        (
            Some("Application/X-WWW-Form-Urlencoded; charset=x"),
            "unsupported application/x-www-form-urlencoded",
        ),
    ] {
        let mut h = vec![(n, v.as_str())];
        if let Some(ct) = ct {
            h.push(("content-type", ct));
        }
        let r = request(&gw, "POST", "/v1/keyrings", &h, b"{}").await;
        assert_eq!(r.json()["body"], kind, "{ct:?}");
    }
    honest_works(&gw).await;
}

#[tokio::test]
async fn oversized_bodies_are_refused() {
    let mut c = config();
    c.max_body = 1024;
    let (gw, rx) = start(c);
    answer_ok(gw.clone(), rx);
    let (n, v) = bearer();
    let h = [(n, v.as_str()), ("content-type", "application/json")];
    let big = format!("{{\"x\":\"{}\"}}", "a".repeat(5000));
    let r = request(&gw, "POST", "/v1/keyrings", &h, big.as_bytes()).await;
    assert_eq!(r.status, 413);
    assert_eq!(r.json()["error"]["code"], "body_too_large");
    // Chunked, so no Content-Length warns in advance.
    let port = gw.local_addr().port();
    let mut req = format!("POST /mcp HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\nconnection: close\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n").into_bytes();
    for _ in 0..10 {
        req.extend_from_slice(format!("{:x}\r\n{}\r\n", 500, "b".repeat(500)).as_bytes());
    }
    req.extend_from_slice(b"0\r\n\r\n");
    let r = raw(&gw, &req).await;
    assert_eq!(r.status, 413);
    assert_eq!(r.json()["jsonrpc"], "2.0");
    honest_works(&gw).await;
}

#[tokio::test]
async fn malformed_json_is_refused() {
    let (gw, rx) = start(config());
    answer_ok(gw.clone(), rx);
    let (n, v) = bearer();
    let h = [(n, v.as_str()), ("content-type", "application/json")];
    let r = request(&gw, "POST", "/v1/keyrings", &h, b"{\"name\": ").await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["code"], "malformed_json");
    let deep = "[".repeat(10_000);
    let r = request(&gw, "POST", "/v1/keyrings", &h, deep.as_bytes()).await;
    assert_eq!(r.status, 400, "nesting past serde_json's recursion limit");
    let r = request(
        &gw,
        "POST",
        "/mcp",
        &[("content-type", "application/json")],
        b"{nope",
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["code"], -32700);
    honest_works(&gw).await;
}

#[tokio::test]
async fn unknown_routes_are_404_json() {
    let (gw, rx) = start(config());
    answer_ok(gw.clone(), rx);
    for path in ["/nope", "/v2/status", "/v1x", "/favicon.ico"] {
        let r = request(&gw, "GET", path, &[], b"").await;
        assert_eq!(r.status, 404, "{path}");
        assert_eq!(r.json()["error"]["code"], "not_found");
    }
    let r = request(&gw, "GET", "/v1/x?a=%zz", &[], b"").await;
    assert_eq!(r.json()["error"]["code"], "bad_query");
    honest_works(&gw).await;
}

#[tokio::test]
async fn garbage_and_slow_headers_do_not_stop_the_server() {
    let mut c = config();
    c.header_timeout = Duration::from_millis(300);
    let (gw, rx) = start(c);
    answer_ok(gw.clone(), rx);
    // Slowloris: a request line, then nothing.
    let mut slow = tokio::net::TcpStream::connect(gw.local_addr())
        .await
        .unwrap();
    slow.write_all(b"GET /v1/status HTTP/1.1\r\nhost: 127.0.0.1\r\n")
        .await
        .unwrap();
    let r = raw(&gw, b"\x16\x03\x01\x00\xa5garbage\r\n\r\n").await;
    assert_eq!(r.status, 400);
    let r = raw(
        &gw,
        format!(
            "GET / HTTP/1.1\r\nhost: 127.0.0.1:{}\r\nx: {}\r\n\r\n",
            gw.local_addr().port(),
            "h".repeat(130_000)
        )
        .as_bytes(),
    )
    .await;
    assert_eq!(r.status, 431, "headers over the buffer limit");
    honest_works(&gw).await;
    // The slow client is cut after the header timeout.
    let mut buf = Vec::new();
    let read = tokio::time::timeout(
        Duration::from_secs(3),
        tokio::io::AsyncReadExt::read_to_end(&mut slow, &mut buf),
    )
    .await;
    assert!(read.is_ok(), "the slow client was disconnected");
}

#[tokio::test]
async fn a_handler_that_never_answers_gets_504_and_late_answers_are_refused() {
    let mut c = config();
    c.response_timeout = Duration::from_millis(200);
    let (gw, mut rx) = start(c);
    let r = request(&gw, "GET", "/v1/status", &[], b"").await;
    assert_eq!(r.status, 504);
    assert_eq!(r.json()["error"]["code"], "timeout");
    let req = rx.recv().await.unwrap();
    let late = gw.respond(
        req.id,
        Reply {
            status: 200,
            headers: vec![],
            body: ReplyBody::Empty,
        },
    );
    assert_eq!(late, Err(keyring_gateway::RespondError::Unknown));
    assert_eq!(gw.stats().timeouts, 1);
}

#[tokio::test]
async fn a_dead_dispatcher_gets_503() {
    let (gw, rx) = start(config());
    drop(rx);
    let r = request(&gw, "GET", "/v1/status", &[], b"").await;
    assert_eq!(r.status, 503);
    assert_eq!(r.json()["error"]["code"], "unavailable");
}

#[tokio::test]
async fn public_bind_needs_a_token_on_every_route_but_the_page() {
    let mut c = config();
    c.bind = "0.0.0.0:0".parse().unwrap();
    assert!(keyring_gateway::Gateway::start(
        c.clone(),
        Box::new(Channel(tokio::sync::mpsc::unbounded_channel().0))
    )
    .is_err());
    c.allow_public_bind = true;
    let (gw, rx) = start(c);
    answer_ok(gw.clone(), rx);
    let r = request(&gw, "GET", "/v1/status", &[], b"").await;
    assert_eq!(r.status, 401);
    assert_eq!(request(&gw, "GET", "/", &[], b"").await.status, 200);
    let (n, v) = bearer();
    assert_eq!(
        request(&gw, "GET", "/v1/status", &[(n, &v)], b"")
            .await
            .status,
        200
    );
    let r = request(
        &gw,
        "GET",
        &format!("/v1/status?access_token={TOKEN}"),
        &[],
        b"",
    )
    .await;
    assert_eq!(r.status, 200, "EventSource-style token in the query");
}

#[tokio::test]
async fn the_page_has_a_strict_policy() {
    let (gw, _rx) = start(config());
    let r = request(&gw, "GET", "/", &[], b"").await;
    assert_eq!(r.status, 200);
    assert!(r
        .header("content-security-policy")
        .unwrap()
        .contains("connect-src 'self'"));
    assert_eq!(r.header("x-frame-options"), Some("DENY"));
    assert_eq!(request(&gw, "POST", "/", &[], b"").await.status, 405);
}
