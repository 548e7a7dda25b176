//! Attack (issue 8, item 10, the anti-entropy fence): a member floods the
//! node with `LogHeads` exchanges. Beyond its per-peer rate the node resets
//! them unread; exchanges whose heads match ours are finished without an
//! answer and without a push (cost O(1) in the log's length); honest calls
//! keep working. Then the exchange itself: stale heads get the missing
//! entries pushed, unknown heads get our heads back, and a push of entries
//! the node holds never reaches the owner.

use std::sync::Arc;
use std::time::{Duration, Instant};

use keyring_core::identity::KeyPair;
use keyring_core::membership::{Op, Ring, SharedRing};
use keyring_core::wire::frame::{self, Frame};
use keyring_net::{Limits, PROTOCOL_MEMBERSHIP};

use crate::support::*;

const T0: u64 = 1_700_000_000_000;

/// A ring of `n` entries rooted at a fresh key, with `admins` as admins.
fn ring(admins: Vec<[u8; 32]>, n: usize) -> Ring {
    let root = KeyPair::generate().unwrap();
    let mut ring = Ring::create(&root, "heads", admins, T0).unwrap();
    for i in 1..n {
        let key = [i as u8; 32];
        let op = Op::AddMember {
            key,
            expires_at_ms: 0,
            roles: vec![],
        };
        ring.append(&root, op, T0 + i as u64).unwrap();
    }
    ring
}

fn heads(keyring: [u8; 32], heads: Vec<[u8; 32]>, locator: Vec<[u8; 32]>) -> Vec<u8> {
    Frame::LogHeads {
        keyring_id: keyring,
        reply: false,
        heads,
        locator,
    }
    .encode()
    .unwrap()
}

/// One exchange on `conn`: the answer's bytes, or `Err` if the node reset it.
async fn exchange(conn: &quinn::Connection, frame: &[u8]) -> Result<Vec<u8>, String> {
    let (mut s, mut r) = conn.open_bi().await.map_err(|e| e.to_string())?;
    s.write_all(&[PROTOCOL_MEMBERSHIP])
        .await
        .map_err(|e| e.to_string())?;
    s.write_all(frame).await.map_err(|e| e.to_string())?;
    let _ = s.finish();
    r.read_to_end(1 << 20)
        .await
        .map(|b| b.to_vec())
        .map_err(|e| e.to_string())
}

/// A push the node opened towards us within `within`, decoded.
async fn pushed(conn: &quinn::Connection, within: Duration) -> Option<Vec<Vec<u8>>> {
    let mut r = tokio::time::timeout(within, conn.accept_uni())
        .await
        .ok()?
        .ok()?;
    let bytes = r.read_to_end(16 << 20).await.ok()?;
    assert_eq!(bytes[0], PROTOCOL_MEMBERSHIP);
    match frame::decode(&bytes[1..], 16 << 20).ok()? {
        Frame::LogUpdate { entries, .. } => Some(entries.iter().map(|e| e.to_vec()).collect()),
        _ => None,
    }
}

#[test]
fn a_flood_of_head_exchanges_is_cut_to_the_peer_rate_and_matching_heads_cost_no_answer() {
    let (a, b) = member_pair();
    let m = KeyPair::generate().unwrap();
    let ring = Arc::new(SharedRing::new(ring(vec![a.key], 200)));
    let id = ring.published().keyring_id;
    a.membership.rings().insert(ring.clone());
    let everyone = members(&[a.key, b.key, m.public_key()]);
    a.mesh.set_members(id, everyone.clone());
    b.mesh.set_members(id, everyone);
    b.call(a.key, Some(a.addr()), b"warm").unwrap();

    let published = ring.published();
    let same = heads(id, published.heads.clone(), published.locator.clone());
    let client = RawClient::new(&m, "127.0.0.1");
    let (a_key, a_addr) = (a.key, a.addr());
    let started = Instant::now();
    let flood = std::thread::spawn(move || {
        client.runtime.block_on(async {
            let conn = client.admitted(a_key, a_addr, id).await.unwrap();
            let (mut answered, mut reset) = (0, 0);
            for _ in 0..50 {
                let tries: Vec<_> = (0..8)
                    .map(|_| {
                        let (conn, same) = (conn.clone(), same.clone());
                        tokio::spawn(async move { exchange(&conn, &same).await })
                    })
                    .collect();
                for t in tries {
                    match t.await.unwrap() {
                        Ok(answer) => {
                            assert!(answer.is_empty(), "matching heads were answered");
                            answered += 1;
                        }
                        Err(_) => reset += 1,
                    }
                }
            }
            // Matching heads never cause a push.
            let push = pushed(&conn, Duration::from_millis(300)).await;
            (answered, reset, push.is_none())
        })
    });
    let mut lat = Vec::new();
    while !flood.is_finished() || lat.len() < 30 {
        let t = Instant::now();
        b.call(a.key, None, b"honest").unwrap();
        lat.push(t.elapsed());
        std::thread::sleep(Duration::from_millis(2));
    }
    let (answered, reset, no_push) = flood.join().unwrap();
    let secs = started.elapsed().as_secs_f64();
    let limits = Limits::default();
    let allowed = f64::from(limits.heads_burst) + f64::from(limits.heads_per_second) * secs + 1.0;
    let p99 = percentile(&mut lat, 0.99);
    eprintln!(
        "heads flood: 400 exchanges in {secs:.2}s, {answered} answered, {reset} reset; \
         {} honest calls, p99 {p99:?}",
        lat.len()
    );
    assert!(no_push, "matching heads caused a push");
    assert!(
        (answered as f64) <= allowed,
        "{answered} exchanges read, at most {allowed:.0} allowed"
    );
    assert!(answered >= limits.heads_burst as usize);
    assert_eq!(answered + reset, 400);
    // Measured alone: p99 ~0.3 ms. The bound leaves room for the other
    // tests of this binary running at once on 2 cores (the long-log test
    // moves 128 MiB through its own mesh meanwhile).
    assert!(p99 < Duration::from_millis(50), "honest p99 {p99:?}");
}

#[test]
fn stale_heads_get_the_missing_entries_unknown_heads_get_ours_and_known_pushes_stop_in_rust() {
    let a = node();
    let m = KeyPair::generate().unwrap();
    let full = ring(vec![a.key], 50);
    let entries: Vec<Vec<u8>> = full.entries().iter().map(|e| e.encode()).collect();
    let genesis = full.entries()[0].hash();
    let ring = Arc::new(SharedRing::new(full));
    let id = ring.published().keyring_id;
    a.membership.rings().insert(ring.clone());
    a.mesh.set_members(id, members(&[a.key, m.public_key()]));
    let ours = ring.published();

    let client = RawClient::new(&m, "127.0.0.1");
    let (a_key, a_addr) = (a.key, a.addr());
    let (missing, answer) = client.runtime.block_on(async {
        let conn = client.admitted(a_key, a_addr, id).await.unwrap();
        // We hold only the genesis: the node pushes the other 49 entries.
        let answer = exchange(&conn, &heads(id, vec![genesis], vec![])).await;
        assert_eq!(answer.unwrap(), Vec::<u8>::new());
        let missing = pushed(&conn, Duration::from_secs(2)).await.unwrap();
        // A head the node does not know: it answers with its own heads.
        let answer = exchange(&conn, &heads(id, vec![[9; 32]], vec![genesis]))
            .await
            .unwrap();
        (missing, answer)
    });
    assert_eq!(missing, entries[1..].to_vec());
    match frame::decode(&answer, 1 << 20).unwrap() {
        Frame::LogHeads {
            keyring_id,
            reply,
            heads,
            ..
        } => {
            assert_eq!(keyring_id, id);
            assert!(reply);
            assert_eq!(heads, ours.heads);
        }
        other => panic!("unexpected answer {other:?}"),
    }

    // Pushes: known entries stop in Rust; one the node lacks reaches the owner.
    let client = RawClient::new(&m, "127.0.0.1");
    let unknown = {
        let other = ring_for_unknown();
        other.entries()[0].encode()
    };
    let _conn = client.runtime.block_on(async {
        let conn = client.admitted(a_key, a_addr, id).await.unwrap();
        for batch in [entries.clone(), vec![], vec![unknown]] {
            let push = Frame::LogUpdate {
                keyring_id: id,
                entries: batch.iter().map(Vec::as_slice).collect(),
            }
            .encode()
            .unwrap();
            let mut s = conn.open_uni().await.unwrap();
            s.write_all(&[PROTOCOL_MEMBERSHIP]).await.unwrap();
            s.write_all(&push).await.unwrap();
            s.finish().unwrap();
        }
        // Kept open until the node has read the pushes.
        conn
    });
    let delivered = a.logs.recv_timeout(Duration::from_secs(2)).unwrap();
    assert_eq!(delivered.entries.len(), 1, "only the unknown entry's push");
    assert!(a.logs.recv_timeout(Duration::from_millis(300)).is_err());
}

fn ring_for_unknown() -> Ring {
    ring(vec![], 1)
}

#[test]
fn stale_pushes_and_exchanges_on_a_long_log_do_not_hold_up_calls() {
    let (a, b) = member_pair();
    let m = KeyPair::generate().unwrap();
    let built = Instant::now();
    let full = ring(vec![a.key], 40_000);
    let entries: Vec<Vec<u8>> = full.entries().iter().map(|e| e.encode()).collect();
    let built = built.elapsed();
    let ring = Arc::new(SharedRing::new(full));
    let id = ring.published().keyring_id;
    a.membership.rings().insert(ring.clone());
    let everyone = members(&[a.key, b.key, m.public_key()]);
    a.mesh.set_members(id, everyone.clone());
    b.mesh.set_members(id, everyone);
    b.call(a.key, Some(a.addr()), b"warm").unwrap();
    let push = Frame::LogUpdate {
        keyring_id: id,
        entries: entries.iter().map(Vec::as_slice).collect(),
    }
    .encode()
    .unwrap();
    let push_mib = push.len() >> 20;
    let client = RawClient::new(&m, "127.0.0.1");
    let (a_key, a_addr) = (a.key, a.addr());
    let attack = std::thread::spawn(move || {
        client.runtime.block_on(async {
            let conn = client.admitted(a_key, a_addr, id).await.unwrap();
            // The whole (stale) log pushed 8 times; 8 exchanges claiming an
            // unknown head, each making the node send the whole log back.
            let mut pushed_back = 0;
            for _ in 0..8 {
                let mut s = conn.open_uni().await.unwrap();
                s.write_all(&[PROTOCOL_MEMBERSHIP]).await.unwrap();
                s.write_all(&push).await.unwrap();
                s.finish().unwrap();
                let _ = exchange(&conn, &heads(id, vec![[9; 32]], vec![])).await;
                if pushed(&conn, Duration::from_secs(5)).await.is_some() {
                    pushed_back += 1;
                }
            }
            pushed_back
        })
    });
    let mut lat = Vec::new();
    while !attack.is_finished() || lat.len() < 30 {
        let t = Instant::now();
        b.call(a.key, None, b"honest").unwrap();
        lat.push(t.elapsed());
        std::thread::sleep(Duration::from_millis(2));
    }
    let pushed_back = attack.join().unwrap();
    let p99 = percentile(&mut lat, 0.99);
    let max = lat.iter().max().copied().unwrap_or_default();
    eprintln!(
        "long log: {} entries ({} MiB, built in {built:?}); {pushed_back} whole logs pushed back; \
         {} honest calls, p99 {p99:?}, max {max:?}",
        entries.len(),
        push_mib,
        lat.len()
    );
    assert_eq!(pushed_back, 8);
    // Known entries never reached the owner.
    assert!(a.logs.try_iter().next().is_none());
    // 16 frames of 8 MiB cross the one mesh thread in about a second (the
    // attacker's client shares the 2 cores): calls wait behind that traffic
    // as behind any bulk transfer, but never behind the ring work, which runs
    // on the blocking pool (measured here: p99 13-25 ms, max 20-30 ms).
    assert!(p99 < Duration::from_millis(50), "honest p99 {p99:?}");
}

#[test]
fn a_member_that_never_reads_the_pushes_it_asks_for_gets_one_at_a_time() {
    let a = node();
    let m = KeyPair::generate().unwrap();
    let ring = Arc::new(SharedRing::new(ring(vec![a.key], 20_000)));
    let id = ring.published().keyring_id;
    a.membership.rings().insert(ring.clone());
    a.mesh.set_members(id, members(&[a.key, m.public_key()]));
    let client = RawClient::new(&m, "127.0.0.1");
    let (a_key, a_addr) = (a.key, a.addr());
    let opened = client.runtime.block_on(async {
        let conn = client.admitted(a_key, a_addr, id).await.unwrap();
        // Eight exchanges, each asking for the whole log; nothing is read.
        for _ in 0..8 {
            exchange(&conn, &heads(id, vec![[9; 32]], vec![]))
                .await
                .unwrap();
        }
        let mut opened = 0;
        while let Ok(Ok(_stream)) =
            tokio::time::timeout(Duration::from_millis(500), conn.accept_uni()).await
        {
            opened += 1;
        }
        opened
    });
    assert_eq!(
        opened, 1,
        "pushes of the whole log opened towards a peer that reads none"
    );
}
