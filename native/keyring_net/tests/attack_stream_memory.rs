//! Attack (issue 8, item 6): a member pins the node's memory with streams.
//! On one connection it opens every stream it may, announces 16 MiB frames
//! on the bidirectional ones and stalls, on most unidirectional ones sends
//! half of a 1 MiB frame and stalls, and on the rest trickles a 1 MiB frame
//! a byte at a time. The node's RSS (this process:
//! victim, honest peer and attacker together) must move by less than
//! [`RSS_BOUND`], honest calls keep a p99 under 10 ms, and the stalled
//! streams are stopped by their deadline (and the budget comes back).
//!
//! Alone in its own test binary: it measures the whole process's RSS.

#[path = "support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use bytes::Bytes;
use keyring_core::identity::KeyPair;
use keyring_core::wire::frame::{self, Frame, Status};
use keyring_net::close::{STREAM_OVER_BUDGET, STREAM_TOO_SLOW};
use keyring_net::PROTOCOL_RPC;

use support::*;

/// The documented bound: one member's worst stream pattern moves the node's
/// RSS by less than this.
const RSS_BOUND: u64 = 64 << 20;
const ATTACK: Duration = Duration::from_secs(12);

fn header(kind: u8, len: u32) -> Bytes {
    let mut h = vec![PROTOCOL_RPC, frame::VERSION, kind];
    h.extend_from_slice(&len.to_be_bytes());
    Bytes::from(h)
}

#[test]
fn one_member_cannot_pin_the_nodes_memory_with_streams() {
    let (a, b) = member_pair();
    let m = KeyPair::generate().unwrap();
    a.mesh
        .set_members(KEYRING, members(&[a.key, b.key, m.public_key()]));
    let (a_key, a_addr) = (a.key, a.addr());
    for _ in 0..200 {
        b.call(a_key, Some(a_addr), &[7; 64]).unwrap();
    }
    let client = RawClient::new(&m, "127.0.0.1");
    let conn = client
        .runtime
        .block_on(client.admitted(a_key, a_addr, KEYRING))
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let baseline = rss_bytes();

    // The attack runs on the attacker's own runtime.
    let half = Bytes::from(vec![0x55u8; 512 << 10]);
    let attack_conn = conn.clone();
    let attack = client.runtime.spawn(async move {
        let conn = attack_conn;
        let started = Instant::now();
        let mut bidi = Vec::new();
        let mut uni_stops = Vec::new();
        let mut opened = 0usize;
        // 1000 headers announcing 16 MiB on bidirectional streams (only as
        // many open as the node allows at once; the rest wait to open).
        for _ in 0..1000 {
            if started.elapsed() > ATTACK {
                break;
            }
            if let Ok(Ok((mut s, r))) =
                tokio::time::timeout(Duration::from_millis(5), conn.open_bi()).await
            {
                let _ = s.write_chunk(header(4, 16 << 20)).await;
                bidi.push((s, r));
                opened += 1;
            }
        }
        // Unidirectional streams stalled halfway through a 1 MiB frame, and
        // (every fourth) trickling one byte every 200 ms.
        for i in 0..64 {
            if let Ok(Ok(mut s)) =
                tokio::time::timeout(Duration::from_millis(50), conn.open_uni()).await
            {
                let _ = s.write_chunk(header(6, 1 << 20)).await;
                let trickle = i % 4 == 0;
                if !trickle {
                    let _ = s.write_chunk(half.clone()).await;
                }
                uni_stops.push(tokio::spawn(async move {
                    let stopped = async {
                        loop {
                            if trickle && s.write_all(&[0]).await.is_err() {
                                return s.stopped().await;
                            }
                            tokio::select! {
                                code = s.stopped() => return code,
                                () = tokio::time::sleep(Duration::from_millis(200)) => {}
                            }
                        }
                    };
                    tokio::time::timeout(ATTACK, stopped).await
                }));
                opened += 1;
            }
        }
        let mut stop_codes = Vec::new();
        for t in uni_stops {
            if let Ok(Ok(Ok(Some(code)))) = t.await {
                stop_codes.push(code.into_inner());
            }
        }
        (opened, stop_codes, bidi.len())
    });

    // Honest calls from B meanwhile; sample the RSS.
    let mut lat = Vec::new();
    let mut peak = baseline;
    let t0 = Instant::now();
    while !attack.is_finished() && t0.elapsed() < ATTACK + Duration::from_secs(3) {
        let t = Instant::now();
        let (status, body) = b.call(a_key, None, &[7; 64]).unwrap();
        assert_eq!((status, body.len()), (Status::Ok, 64));
        lat.push(t.elapsed());
        peak = peak.max(rss_bytes());
        std::thread::sleep(Duration::from_millis(5));
    }
    let (opened, stop_codes, bidi) = client.runtime.block_on(attack).unwrap();
    let grown = peak.saturating_sub(baseline);
    let p99 = percentile(&mut lat, 0.99);
    eprintln!(
        "stream attack: {opened} streams opened ({bidi} bidirectional), RSS {} MiB -> peak {} MiB \
         (+{} MiB); {} honest calls, p99 {p99:?}; stop codes {stop_codes:?}",
        baseline >> 20,
        peak >> 20,
        grown >> 20,
        lat.len()
    );
    assert!(opened >= 64, "the attacker opened {opened} streams");
    assert!(grown < RSS_BOUND, "RSS grew by {} MiB", grown >> 20);
    assert!(p99 < Duration::from_millis(10), "honest p99 {p99:?}");
    // Every stalled stream was stopped: too slow, or no room in time.
    assert!(!stop_codes.is_empty());
    assert!(
        stop_codes
            .iter()
            .all(|c| *c == u64::from(STREAM_TOO_SLOW) || *c == u64::from(STREAM_OVER_BUDGET)),
        "{stop_codes:?}"
    );

    // The budget comes back: the same member's honest 1 MiB call works.
    let body = vec![3u8; 1 << 20];
    let reply = client.runtime.block_on(async {
        let request = Frame::Request {
            name: "echo",
            body: &body,
        }
        .encode()
        .unwrap();
        tokio::time::timeout(T, raw_request(&conn, &request)).await
    });
    let reply = reply.expect("answered in time").unwrap();
    match frame::decode(&reply, 2 << 20).unwrap() {
        Frame::Response { status, body: got } => {
            assert_eq!((status, got.len()), (Status::Ok, body.len()))
        }
        other => panic!("{other:?}"),
    }
}
