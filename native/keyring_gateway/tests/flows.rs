//! Honest traffic: dynamic round trips, streamed bodies both ways, SSE with
//! resume, lag and keep-alives, and the MCP transport.

mod common;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::*;
use keyring_gateway::{Gateway, Reply, ReplyBody, Request, RequestBody};
use serde_json::json;
use tokio::io::AsyncWriteExt;

fn reply_json(v: serde_json::Value) -> Reply {
    Reply {
        status: 200,
        headers: vec![("x-test".into(), "1".into())],
        body: ReplyBody::Json(v.to_string().into()),
    }
}

#[tokio::test]
async fn a_json_request_reaches_the_handler_and_its_answer_comes_back() {
    let (gw, mut rx) = start(config());
    let g = gw.clone();
    tokio::spawn(async move {
        let req: Request = rx.recv().await.unwrap();
        let RequestBody::Json(body) = &req.body else {
            panic!("json body")
        };
        let echo = json!({"path": req.path, "query": req.query, "body": body, "ct": req.headers.iter().find(|h| h.0 == "content-type").map(|h| h.1.clone())});
        g.respond(req.id, reply_json(echo)).unwrap();
    });
    let (n, v) = bearer();
    let r = request(
        &gw,
        "POST",
        "/v1/rpc/x%20y?timeout=10&access_token=secret",
        &[(n, &v), ("content-type", "application/json; charset=utf-8")],
        b"{\"args\":[1,\"two\",null]}",
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-test"), Some("1"));
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let v = r.json();
    assert_eq!(v["path"], "/v1/rpc/x%20y");
    assert_eq!(
        v["query"],
        json!([["timeout", "10"]]),
        "access_token is never forwarded"
    );
    assert_eq!(v["body"]["args"], json!([1, "two", null]));
}

#[tokio::test]
async fn respond_refuses_bad_statuses_and_headers_without_losing_the_request() {
    let (gw, mut rx) = start(config());
    let g = gw.clone();
    tokio::spawn(async move {
        let req = rx.recv().await.unwrap();
        let bad = Reply {
            status: 99,
            headers: vec![],
            body: ReplyBody::Empty,
        };
        assert_eq!(
            g.respond(req.id, bad),
            Err(keyring_gateway::RespondError::BadStatus)
        );
        let bad = Reply {
            status: 200,
            headers: vec![("bad header".into(), "x".into())],
            body: ReplyBody::Empty,
        };
        assert!(matches!(
            g.respond(req.id, bad),
            Err(keyring_gateway::RespondError::BadHeader(_))
        ));
        g.respond(
            req.id,
            Reply {
                status: 204,
                headers: vec![],
                body: ReplyBody::Empty,
            },
        )
        .unwrap();
    });
    assert_eq!(
        request(&gw, "GET", "/v1/status", &[], b"").await.status,
        204
    );
}

#[tokio::test]
async fn uploads_stream_in_and_downloads_stream_out() {
    let (gw, mut rx) = start(config());
    let g = gw.clone();
    tokio::spawn(async move {
        // Upload: read every piece, answer with the size and a checksum.
        let req = rx.recv().await.unwrap();
        assert!(matches!(
            req.body,
            RequestBody::Stream {
                length: Some(3_000_000)
            }
        ));
        let (mut total, mut sum, mut pieces) = (0usize, 0u64, 0);
        loop {
            let (tx, done) = tokio::sync::oneshot::channel();
            g.read_chunk(req.id, move |r| {
                let _ = tx.send(r);
            });
            match done.await.unwrap().unwrap() {
                Some(piece) => {
                    assert!(piece.len() <= keyring_gateway::READ_CHUNK);
                    pieces += 1;
                    total += piece.len();
                    sum += piece.iter().map(|&b| b as u64).sum::<u64>();
                }
                None => break,
            }
        }
        g.respond(
            req.id,
            reply_json(json!({"size": total, "sum": sum, "pieces": pieces})),
        )
        .unwrap();
        // Download: 40 chunks of 100 KiB.
        let req = rx.recv().await.unwrap();
        g.respond(
            req.id,
            Reply {
                status: 200,
                headers: vec![],
                body: ReplyBody::Stream {
                    content_type: "application/octet-stream".into(),
                    length: Some(40 * 102_400),
                },
            },
        )
        .unwrap();
        for i in 0..40u8 {
            let (tx, done) = tokio::sync::oneshot::channel();
            g.send_chunk(req.id, Bytes::from(vec![i; 102_400]), move |r| {
                let _ = tx.send(r);
            });
            done.await.unwrap().unwrap();
        }
        assert!(g.finish(req.id));
    });
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    let (n, v) = bearer();
    let r = request(
        &gw,
        "POST",
        "/v1/blobs",
        &[(n, &v), ("content-type", "application/octet-stream")],
        &data,
    )
    .await;
    assert_eq!(r.status, 200);
    let v = r.json();
    assert_eq!(v["size"], 3_000_000);
    assert_eq!(v["sum"], data.iter().map(|&b| b as u64).sum::<u64>());
    assert!(v["pieces"].as_u64().unwrap() >= 12);
    let r = request(&gw, "GET", "/v1/blobs/x", &[], b"").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body.len(), 40 * 102_400);
    assert!(r
        .body
        .chunks(102_400)
        .enumerate()
        .all(|(i, c)| c.iter().all(|&b| b == i as u8)));
}

#[tokio::test]
async fn an_upload_over_the_limit_is_refused() {
    let mut c = config();
    c.max_upload = 1000;
    let (gw, mut rx) = start(c);
    let (n, v) = bearer();
    let r = request(
        &gw,
        "POST",
        "/v1/blobs",
        &[(n, &v), ("content-type", "application/octet-stream")],
        &[0u8; 2000],
    )
    .await;
    assert_eq!(r.status, 413, "refused by its Content-Length");
    // Chunked: found out while reading.
    let g = gw.clone();
    tokio::spawn(async move {
        let req = rx.recv().await.unwrap();
        let (tx, done) = tokio::sync::oneshot::channel();
        g.read_chunk(req.id, move |r| {
            let _ = tx.send(r);
        });
        let err = done.await.unwrap().unwrap_err();
        assert_eq!(err, keyring_gateway::StreamError::TooLarge);
        g.respond(
            req.id,
            Reply {
                status: 413,
                headers: vec![],
                body: ReplyBody::Empty,
            },
        )
        .unwrap();
    });
    let port = gw.local_addr().port();
    let mut req = format!("POST /v1/blobs HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\nconnection: close\r\nauthorization: Bearer {TOKEN}\r\ncontent-type: application/octet-stream\r\ntransfer-encoding: chunked\r\n\r\n").into_bytes();
    req.extend_from_slice(format!("{:x}\r\n{}\r\n0\r\n\r\n", 1500, "z".repeat(1500)).as_bytes());
    assert_eq!(raw(&gw, &req).await.status, 413);
}

async fn publish_n(gw: &Gateway, kind: &str, n: usize) {
    for i in 0..n {
        gw.publish(kind, Some("node-a"), format!("{{\"i\":{i}}}").as_bytes())
            .unwrap();
    }
}

#[tokio::test]
async fn sse_delivers_filters_and_resumes_from_last_event_id() {
    let (gw, _rx) = start(config());
    let mut all = Sse::open(&gw, "/v1/events", &[]).await;
    all.until("keyring events", 5).await;
    let mut mesh_only = Sse::open(&gw, "/v1/events?types=mesh", &[]).await;
    mesh_only.until("keyring events", 5).await;
    publish_n(&gw, "presence.up", 3).await;
    gw.publish("mesh.peer_up", None, b"{\"peer\":\"p\"}")
        .unwrap();
    let text = all.until("mesh.peer_up", 5).await;
    assert!(text.contains("content-type: text/event-stream"));
    assert!(text.contains("x-accel-buffering: no"));
    assert_eq!(text.matches("event: presence.up").count(), 3);
    let text = mesh_only.until("mesh.peer_up", 5).await;
    assert!(!text.contains("presence.up"));
    // Resume after the second event: the third and fourth come again.
    let second = text_ids(&all.until("mesh.peer_up", 1).await)[1].clone();
    let mut resumed = Sse::open(&gw, "/v1/events", &[("last-event-id", &second)]).await;
    let text = resumed.until("mesh.peer_up", 5).await;
    assert_eq!(text.matches("event: presence.up").count(), 1);
    assert!(!text.contains("lagged"));
    // replay=all from the start of the ring.
    let mut replay = Sse::open(&gw, "/v1/events?replay=all", &[]).await;
    let text = replay.until("mesh.peer_up", 5).await;
    assert_eq!(text.matches("event: presence.up").count(), 3);
    // A malformed id is a clear error.
    let r = request(
        &gw,
        "GET",
        "/v1/events",
        &[("last-event-id", "garbage")],
        b"",
    )
    .await;
    assert_eq!(r.json()["error"]["code"], "bad_last_event_id");
}

fn text_ids(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("id: "))
        .map(str::to_string)
        .collect()
}

#[tokio::test]
async fn resuming_past_the_ring_or_across_a_restart_says_lagged() {
    let mut c = config();
    c.replay_events = 4;
    let (gw, _rx) = start(c);
    let mut first = Sse::open(&gw, "/v1/events", &[]).await;
    first.until("keyring events", 5).await;
    publish_n(&gw, "presence.up", 1).await;
    let old = text_ids(&first.until("presence.up", 5).await)[0].clone();
    publish_n(&gw, "presence.up", 10).await;
    let mut late = Sse::open(&gw, "/v1/events", &[("last-event-id", &old)]).await;
    let text = late.until("event: lagged", 5).await;
    assert!(text.contains("\"missed\":6"), "{text}");
    let mut other_epoch = Sse::open(&gw, "/v1/events", &[("last-event-id", "00000000-3")]).await;
    other_epoch.until("\"missed\":0", 5).await;
}

#[tokio::test]
async fn a_slow_client_is_told_it_lagged_and_others_keep_up() {
    let mut c = config();
    c.replay_events = 64;
    let (gw, mut rx) = start(c);
    let g = gw.clone();
    tokio::spawn(async move {
        while let Some(req) = rx.recv().await {
            g.respond(req.id, reply_json(json!({"ok": true}))).unwrap();
        }
    });
    let mut slow = Sse::open(&gw, "/v1/events", &[]).await;
    slow.until("keyring events", 5).await;
    let mut quick = Sse::open(&gw, "/v1/events?types=done", &[]).await;
    quick.until("keyring events", 5).await;
    // 8 KiB events until the slow client's socket buffers are full many times over.
    let payload = format!("{{\"pad\":\"{}\"}}", "x".repeat(8000));
    for _ in 0..3000 {
        gw.publish("bulk.item", None, payload.as_bytes()).unwrap();
    }
    gw.publish("done", None, b"{}").unwrap();
    quick.until("event: done", 5).await;
    assert_eq!(
        request(&gw, "GET", "/v1/status", &[], b"").await.status,
        200,
        "still serving"
    );
    // Now the slow client reads: it finds a lagged notice, then the end.
    let text = slow.until("event: done", 20).await;
    assert!(
        text.contains("event: lagged"),
        "slow client was told it lagged"
    );
    assert!(gw.stats().lagged >= 1);
}

#[tokio::test]
async fn quiet_streams_get_keep_alives_and_a_stalled_client_is_cut() {
    let mut c = config();
    c.keepalive = Duration::from_millis(100);
    c.sse_stall_timeout = Duration::from_millis(300);
    c.replay_events = 8;
    let (gw, _rx) = start(c);
    let mut s = Sse::open(&gw, "/v1/events", &[]).await;
    s.until(": keep-alive", 5).await;
    // A client that never reads: its feeder gives up once it stalls.
    let _stalled = Sse::open(&gw, "/v1/events", &[]).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(gw.stats().sse_clients, 2);
    let payload = format!("{{\"pad\":\"{}\"}}", "y".repeat(60_000));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while gw.stats().sse_clients > 1 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the stalled client was never cut"
        );
        gw.publish("bulk", None, payload.as_bytes()).unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
        // Keep the honest client drained.
        let _ = tokio::time::timeout(Duration::from_millis(1), s.until("never-there", 1)).await;
    }
}

#[tokio::test]
async fn sse_clients_are_bounded() {
    let mut c = config();
    c.max_sse_clients = 3;
    let (gw, _rx) = start(c);
    let mut open = Vec::new();
    for _ in 0..3 {
        let mut s = Sse::open(&gw, "/v1/events", &[]).await;
        s.until("keyring events", 5).await;
        open.push(s);
    }
    let r = request(&gw, "GET", "/v1/events", &[], b"").await;
    assert_eq!(r.status, 503);
    assert_eq!(r.json()["error"]["code"], "too_many_clients");
    drop(open);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut again = Sse::open(&gw, "/v1/events", &[]).await;
    again.until("keyring events", 5).await;
}

#[tokio::test]
async fn many_sse_clients_each_get_every_event() {
    let (gw, _rx) = start(config());
    let mut clients = Vec::new();
    for _ in 0..300 {
        clients.push(Sse::open(&gw, "/v1/events", &[]).await);
    }
    for c in clients.iter_mut() {
        c.until("keyring events", 10).await;
    }
    publish_n(&gw, "presence.up", 20).await;
    gw.publish("done", None, b"{}").unwrap();
    for c in clients.iter_mut() {
        let text = c.until("event: done", 10).await;
        assert_eq!(text.matches("event: presence.up").count(), 20);
    }
    assert_eq!(gw.stats().sse_clients, 300);
}

#[tokio::test]
async fn mcp_transport_rules() {
    let (gw, mut rx) = start(config());
    let g = gw.clone();
    tokio::spawn(async move {
        while let Some(req) = rx.recv().await {
            let m = req.mcp.clone().expect("mcp request");
            let era = format!("{:?}", m.era);
            let body =
                json!({"jsonrpc": "2.0", "id": m.id, "result": {"method": m.method, "era": era}});
            g.respond(req.id, reply_json(body)).unwrap();
        }
    });
    let json_ct = ("content-type", "application/json");
    let accept = ("accept", "application/json, text/event-stream");
    for method in ["GET", "DELETE"] {
        let r = request(&gw, method, "/mcp", &[], b"").await;
        assert_eq!(r.status, 405);
        assert_eq!(r.header("allow"), Some("POST"));
    }
    let r = request(
        &gw,
        "POST",
        "/mcp",
        &[json_ct, accept],
        br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
    )
    .await;
    assert_eq!((r.status, r.body.len()), (202, 0));
    let r = request(
        &gw,
        "POST",
        "/mcp",
        &[json_ct, accept],
        br#"{"jsonrpc":"2.0","id":7,"method":"initialize","params":{}}"#,
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["id"], 7);
    assert_eq!(r.json()["result"]["method"], "initialize");
    let modern = br#"{"jsonrpc":"2.0","id":"d","method":"server/discover","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}"#;
    let r = request(
        &gw,
        "POST",
        "/mcp",
        &[
            json_ct,
            accept,
            ("mcp-protocol-version", "2026-07-28"),
            ("mcp-method", "server/discover"),
        ],
        modern,
    )
    .await;
    assert_eq!(r.status, 200);
    assert!(r.json()["result"]["era"]
        .as_str()
        .unwrap()
        .starts_with("Modern"));
    let r = request(
        &gw,
        "POST",
        "/mcp",
        &[json_ct, accept, ("mcp-protocol-version", "2026-07-28")],
        modern,
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["code"], -32020);
    let r = request(
        &gw,
        "POST",
        "/mcp",
        &[json_ct, ("accept", "text/html")],
        modern,
    )
    .await;
    assert_eq!(r.status, 406);
    let r = request(
        &gw,
        "POST",
        "/mcp",
        &[("content-type", "text/plain")],
        modern,
    )
    .await;
    assert_eq!(r.status, 415);
    assert_eq!(r.json()["jsonrpc"], "2.0");
}

#[tokio::test]
async fn closing_stops_the_server_and_its_streams() {
    let (gw, _rx) = start(config());
    let addr = gw.local_addr();
    let mut s = Sse::open(&gw, "/v1/events", &[]).await;
    s.until("keyring events", 5).await;
    let gw = Arc::try_unwrap(gw).ok().unwrap();
    tokio::task::spawn_blocking(move || gw.close())
        .await
        .unwrap();
    let mut buf = [0u8; 64];
    let closed = tokio::time::timeout(Duration::from_secs(3), async {
        loop {
            match tokio::io::AsyncReadExt::read(&mut s.stream, &mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => continue,
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "the stream ended");
    let mut c = tokio::net::TcpStream::connect(addr).await;
    if let Ok(c) = c.as_mut() {
        let _ = c.write_all(b"GET / HTTP/1.1\r\n\r\n").await;
    }
}

#[tokio::test]
async fn an_event_stream_outlives_the_header_timeout() {
    let mut c = config();
    c.header_timeout = Duration::from_millis(200);
    c.keepalive = Duration::from_secs(60);
    let (gw, _rx) = start(c);
    let mut s = Sse::open(&gw, "/v1/events", &[]).await;
    s.until("keyring events", 5).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    gw.publish("late", None, b"{}").unwrap();
    s.until("event: late", 5).await;
}
