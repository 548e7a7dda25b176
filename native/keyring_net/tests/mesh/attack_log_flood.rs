//! Attack (issue 8, item 5, the per-peer part): a member floods the node
//! with membership log pushes (each would make the owner merge a log).
//! Pushes reach the owner at the per-peer rate at most; the flooder's own
//! streams wait (so it can send no faster); other members' calls are
//! untouched.

use std::time::{Duration, Instant};

use keyring_core::identity::KeyPair;
use keyring_core::wire::frame::Frame;
use keyring_net::{Limits, PROTOCOL_MEMBERSHIP};

use crate::support::*;

#[test]
fn a_flood_of_log_pushes_reaches_the_owner_at_the_per_peer_rate() {
    let (a, b) = member_pair();
    let m = KeyPair::generate().unwrap();
    a.mesh
        .set_members(KEYRING, members(&[a.key, b.key, m.public_key()]));
    b.call(a.key, Some(a.addr()), b"warm").unwrap();
    let client = RawClient::new(&m, "127.0.0.1");
    let (a_key, a_addr) = (a.key, a.addr());
    let push = Frame::LogUpdate {
        keyring_id: KEYRING,
        entries: vec![],
    }
    .encode()
    .unwrap();
    let started = Instant::now();
    let flooding = std::thread::spawn(move || {
        client.runtime.block_on(async {
            let conn = client.admitted(a_key, a_addr, KEYRING).await.unwrap();
            let flood_for = Duration::from_secs(2);
            let mut sent = 0;
            while started.elapsed() < flood_for {
                // Opening blocks once 32 pushes wait: the node's backpressure.
                let Ok(Ok(mut s)) =
                    tokio::time::timeout(Duration::from_millis(100), conn.open_uni()).await
                else {
                    continue;
                };
                let _ = s.write_all(&[PROTOCOL_MEMBERSHIP]).await;
                let _ = s.write_all(&push).await;
                let _ = s.finish();
                sent += 1;
            }
            sent
        })
    });
    let mut lat = Vec::new();
    while !flooding.is_finished() {
        let t = Instant::now();
        b.call(a.key, None, b"honest").unwrap();
        lat.push(t.elapsed());
        std::thread::sleep(Duration::from_millis(5));
    }
    let sent = flooding.join().unwrap();
    let secs = started.elapsed().as_secs_f64();
    let delivered = a.logs.try_iter().count();
    let limits = Limits::default();
    let allowed =
        f64::from(limits.log_update_burst) + f64::from(limits.log_updates_per_second) * secs + 1.0;
    let p99 = percentile(&mut lat, 0.99);
    eprintln!("log flood: {sent} sent, {delivered} delivered in {secs:.2}s; honest p99 {p99:?}");
    // The flooder is held back: beyond what was delivered, only the pushes
    // waiting on their open streams were sent.
    let waiting = limits.max_uni_streams as usize;
    assert!(sent >= delivered, "the flooder sent {sent}");
    assert!(
        sent <= delivered + waiting + 1,
        "{sent} sent, {delivered} delivered"
    );
    assert!(
        delivered as f64 <= allowed,
        "{delivered} delivered, {allowed:.0} allowed"
    );
    assert!(delivered >= limits.log_update_burst as usize);
    assert!(p99 < Duration::from_millis(50), "honest p99 {p99:?}");
}
