//! Attack (issue 8, item 14): strangers hold the join endpoint's places so
//! that honest joins are refused. Stalled connections (no JoinRequest)
//! from many sources, and joiners that take their answer but never leave,
//! must not keep an honest joiner out.

use std::time::{Duration, Instant};

use keyring_core::wire::frame::Frame;
use keyring_net::close::CLOSE_LIMIT;
use keyring_net::tls::ALPN_JOIN;

use crate::joins::{admin, invite, join, GOOD};
use crate::support::*;

/// `per_source` join connections from each of `sources` loopback
/// addresses (127.0.0.2, ...), each with a random key, that complete the
/// handshake and then send nothing.
fn stall(
    sources: u8,
    per_source: usize,
    server: keyring_core::membership::PublicKey,
    addr: std::net::SocketAddr,
) -> Vec<(RawClient, Vec<quinn::Connection>)> {
    (0..sources)
        .map(|i| {
            let client = RawClient::random(&format!("127.0.0.{}", i + 2));
            let conns = client.runtime.block_on(async {
                let mut conns = Vec::new();
                for _ in 0..per_source {
                    if let Ok(c) = client.handshake(server, addr, ALPN_JOIN).await {
                        conns.push(c);
                    }
                }
                conns
            });
            (client, conns)
        })
        .collect()
}

#[test]
fn stalled_join_connections_from_many_sources_do_not_lock_out_an_honest_join() {
    let (admin, _seen) = admin();
    let newbie = node();
    let addr = admin.mesh.join_addr().unwrap();
    let stalled = stall(8, 10, admin.key, addr);
    let held: usize = stalled.iter().map(|(_, c)| c.len()).sum();
    // Each source gets at most its share; the rest were refused up front.
    assert!(held >= 32, "the attack holds {held} connections");
    assert!(
        stalled.iter().all(|(_, c)| c.len() <= 8),
        "at most 8 per source"
    );

    let t = Instant::now();
    let log = join(&newbie.mesh, &admin, &invite(&admin.kp, KEYRING, GOOD)).unwrap();
    assert_eq!(log.len(), 2);
    let took = t.elapsed();
    assert!(
        took < Duration::from_secs(1),
        "an honest join took {took:?}"
    );

    // The stalled connections are closed by the request deadline.
    for (client, conns) in &stalled {
        client.runtime.block_on(async {
            for c in conns {
                let closed = tokio::time::timeout(Duration::from_secs(5), c.closed())
                    .await
                    .expect("closed by the deadline");
                match closed {
                    quinn::ConnectionError::ApplicationClosed(c) => {
                        assert_eq!(c.error_code.into_inner(), CLOSE_LIMIT)
                    }
                    other => panic!("{other}"),
                }
            }
        });
    }
}

#[test]
fn joiners_that_take_their_answer_but_never_leave_do_not_hold_places() {
    let (admin, _seen) = admin();
    let newbie = node();
    let addr = admin.mesh.join_addr().unwrap();
    // 5 sources x 8 joiners with a (multi-use) refused invite: 40 answers,
    // more than the 32 joins that may await an answer at once.
    let request = Frame::JoinRequest {
        invite: &invite(&admin.kp, KEYRING, [5; 16]),
    }
    .encode()
    .unwrap();
    let lingering: Vec<_> = (0..5u8)
        .map(|i| {
            let client = RawClient::random(&format!("127.0.0.{}", i + 20));
            let conns = client.runtime.block_on(async {
                let mut conns = Vec::new();
                for _ in 0..8 {
                    let c = client.handshake(admin.key, addr, ALPN_JOIN).await.unwrap();
                    let (mut s, mut r) = c.open_bi().await.unwrap();
                    s.write_all(&request).await.unwrap();
                    s.finish().unwrap();
                    let answer = r.read_to_end(1024).await.unwrap();
                    assert_eq!(answer[1], 9, "JoinRefused");
                    // Keep the connection (and the answer stream) open.
                    conns.push((c, r));
                }
                conns
            });
            (client, conns)
        })
        .collect();
    assert_eq!(lingering.iter().map(|(_, c)| c.len()).sum::<usize>(), 40);
    let t = Instant::now();
    assert_eq!(
        join(&newbie.mesh, &admin, &invite(&admin.kp, KEYRING, GOOD))
            .unwrap()
            .len(),
        2
    );
    assert!(
        t.elapsed() < Duration::from_secs(1),
        "took {:?}",
        t.elapsed()
    );
    drop(lingering);
}

#[test]
fn one_source_cannot_take_more_than_its_share() {
    let (admin, _seen) = admin();
    let addr = admin.mesh.join_addr().unwrap();
    let stalled = stall(1, 20, admin.key, addr);
    assert_eq!(stalled[0].1.len(), 8);
}
