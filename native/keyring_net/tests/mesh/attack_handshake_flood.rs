//! Attack (issue 8, item 15): strangers flood the member endpoint with
//! handshakes, and a member opens connections it never says Hello on.
//! Honest calls keep working with bounded latency, an honest new link
//! still comes up, and the stalled connections are closed by the deadline.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use keyring_core::identity::KeyPair;
use keyring_net::close::CLOSE_LIMIT;
use keyring_net::tls::ALPN_MESH;
use keyring_net::Limits;

use crate::support::*;

/// Calls from `a` to `b` in a loop until `stop`; their latencies.
fn honest_calls(
    a: Node,
    b_key: [u8; 32],
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<(Node, Vec<Duration>)> {
    std::thread::spawn(move || {
        let mut lat = Vec::new();
        // At least 30 calls, however quickly the flood is over.
        while !stop.load(Ordering::Relaxed) || lat.len() < 30 {
            let t = Instant::now();
            a.call(b_key, None, b"honest").unwrap();
            lat.push(t.elapsed());
            std::thread::sleep(Duration::from_millis(2));
        }
        (a, lat)
    })
}

#[test]
fn a_flood_of_non_member_handshakes_is_cut_off_and_honest_calls_keep_working() {
    let (a, b) = member_pair();
    let c = node();
    let (a_key, a_addr) = (a.key, a.addr());
    let everyone = members(&[a.key, b.key, c.key]);
    a.mesh.set_members(KEYRING, everyone.clone());
    c.mesh.set_members(KEYRING, everyone);
    b.call(a_key, Some(a_addr), b"warm").unwrap();
    let rejected_before = a.mesh.rejected_handshakes();
    let stop = Arc::new(AtomicBool::new(false));
    let calls = honest_calls(b, a_key, stop.clone());

    // 400 handshakes from one stranger's address, 16 at a time.
    let started = Instant::now();
    let flood = std::thread::spawn(move || {
        let flood = RawClient::random("127.0.0.3");
        flood.runtime.block_on(async {
            let (mut ok, mut refused) = (0, 0);
            for _ in 0..25 {
                let tries: Vec<_> = (0..16)
                    .map(|_| tokio::spawn(flood.handshake(a_key, a_addr, ALPN_MESH)))
                    .collect();
                for t in tries {
                    match t.await.unwrap() {
                        // The client finishes its half first; the server then
                        // refuses its key and closes.
                        Ok(c) => match c.closed().await {
                            quinn::ConnectionError::ConnectionClosed(c)
                                if (0x100..0x200).contains(&u64::from(c.error_code)) => {}
                            _ => ok += 1,
                        },
                        Err(quinn::ConnectionError::ConnectionClosed(c))
                            if c.error_code == quinn::TransportErrorCode::CONNECTION_REFUSED =>
                        {
                            refused += 1
                        }
                        Err(_) => {}
                    }
                }
            }
            (ok, refused)
        })
    });
    // Meanwhile an honest member from another address gets a new link.
    std::thread::sleep(Duration::from_millis(200));
    let t = Instant::now();
    assert_eq!(
        c.call(a_key, Some(a_addr), b"new").unwrap().1.as_ref(),
        b"new"
    );
    let new_link = t.elapsed();
    let (ok, refused) = flood.join().unwrap();
    let secs = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let (_b, mut lat) = calls.join().unwrap();

    // A stranger's handshake never ends in a member connection.
    assert_eq!(ok, 0);
    // After its failure budget the source is refused before any crypto.
    let processed = a.mesh.rejected_handshakes() - rejected_before;
    let limits = Limits::default();
    let allowed =
        f64::from(limits.failure_burst) + f64::from(limits.failures_per_second) * secs + 16.0;
    let p99 = percentile(&mut lat, 0.99);
    eprintln!(
        "handshake flood: {} honest calls, p99 {p99:?}; new link in {new_link:?}; \
         {processed} rejected in TLS, {refused} refused up front, in {secs:.2}s",
        lat.len()
    );
    assert!(refused >= 300, "refused up front: {refused}");
    assert!(
        (processed as f64) <= allowed,
        "{processed} handshakes cost crypto, at most {allowed:.0} allowed"
    );
    assert!(lat.len() >= 20, "honest calls went on");
    assert!(p99 < Duration::from_millis(50), "p99 {p99:?}");
    assert!(
        new_link < Duration::from_secs(1),
        "new link took {new_link:?}"
    );
}

#[test]
fn connections_stalled_before_hello_are_closed_and_a_key_holds_at_most_its_cap() {
    let (a, b) = member_pair();
    let m = KeyPair::generate().unwrap();
    a.mesh
        .set_members(KEYRING, members(&[a.key, b.key, m.public_key()]));
    let client = RawClient::new(&m, "127.0.0.4");
    let (a_key, a_addr) = (a.key, a.addr());
    let closes = client.runtime.block_on(async {
        let mut waits = Vec::new();
        for _ in 0..6 {
            let conn = client.handshake(a_key, a_addr, ALPN_MESH).await.unwrap();
            let opened = Instant::now();
            waits.push(tokio::spawn(async move {
                let reason = tokio::time::timeout(Duration::from_secs(5), conn.closed())
                    .await
                    .expect("closed");
                (opened.elapsed(), reason)
            }));
        }
        let mut closes = Vec::new();
        for w in waits {
            closes.push(w.await.unwrap());
        }
        closes
    });
    let hello_deadline = keyring_net::Limits::default().hello_deadline;
    for (i, (after, reason)) in closes.iter().enumerate() {
        match reason {
            quinn::ConnectionError::ApplicationClosed(c) => {
                assert_eq!(c.error_code.into_inner(), CLOSE_LIMIT)
            }
            other => panic!("{other}"),
        }
        if i < 4 {
            // Within the cap: closed by the Hello deadline.
            assert!(
                *after >= hello_deadline - Duration::from_millis(100),
                "{after:?}"
            );
            assert!(
                *after < hello_deadline + Duration::from_secs(1),
                "{after:?}"
            );
        } else {
            // Over the cap: closed at once.
            assert!(*after < Duration::from_millis(500), "{after:?}");
        }
    }
    // The honest member is unaffected.
    assert_eq!(
        b.call(a.key, Some(a.addr()), b"ok").unwrap().1.as_ref(),
        b"ok"
    );
}
