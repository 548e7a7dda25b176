//! Two or three meshes on loopback in one process.

use std::net::SocketAddr;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use keyring_core::identity::KeyPair;
use keyring_core::membership::PublicKey;
use keyring_core::wire::frame::{Refusal, Status};

use crate::mesh::CLOSE_REVOKED;
use crate::{CallError, Event, EventSink, Members, Mesh, MeshConfig};

const KEYRING: PublicKey = [42; 32];
const T: Duration = Duration::from_secs(5);

struct ChannelSink(Mutex<mpsc::Sender<Event>>);
use std::sync::Mutex;

impl EventSink for ChannelSink {
    fn deliver(&self, event: Event) {
        let _ = self.0.lock().unwrap().send(event);
    }
}

struct Node {
    mesh: Arc<Mesh>,
    key: PublicKey,
    events: mpsc::Receiver<Event>,
}

fn node() -> Node {
    node_at(
        &KeyPair::generate().unwrap(),
        "127.0.0.1:0".parse().unwrap(),
    )
    .unwrap()
}

fn node_at(kp: &KeyPair, bind: SocketAddr) -> Result<Node, crate::StartError> {
    let (tx, rx) = mpsc::channel();
    let mut cfg = MeshConfig::new(*kp.seed());
    cfg.bind = bind;
    let mesh = Mesh::start(
        cfg,
        Arc::new(Members::default()),
        Arc::new(ChannelSink(Mutex::new(tx))),
    )?;
    Ok(Node {
        key: mesh.public_key(),
        mesh: Arc::new(mesh),
        events: rx,
    })
}

/// The first event matching `want` within `within`.
fn expect(
    events: &mpsc::Receiver<Event>,
    within: Duration,
    want: impl Fn(&Event) -> bool,
) -> Event {
    let deadline = std::time::Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match events.recv_timeout(left) {
            Ok(e) if want(&e) => return e,
            Ok(_) => {}
            Err(_) => panic!("no matching event within {within:?}"),
        }
    }
}

fn is_up(peer: PublicKey) -> impl Fn(&Event) -> bool {
    move |e| matches!(e, Event::PeerUp { peer: p, .. } if *p == peer)
}

fn is_down(peer: PublicKey) -> impl Fn(&Event) -> bool {
    move |e| matches!(e, Event::PeerDown { peer: p, .. } if *p == peer)
}

/// A cast (no handler needed on the other side); Ok once it was handed over.
fn cast(mesh: &Mesh, peer: PublicKey, addr: Option<SocketAddr>) -> Result<(), CallError> {
    let (tx, rx) = mpsc::channel();
    mesh.cast(
        KEYRING,
        peer,
        addr,
        "ping".into(),
        vec![bytes::Bytes::from_static(b"\x01")],
        T,
        Box::new(move |r| {
            let _ = tx.send(r);
        }),
    );
    rx.recv_timeout(T * 2).expect("a cast always answers")
}

/// Answers every request on `n` with its body, in a thread.
fn echo(n: Node) -> (Arc<Mesh>, PublicKey) {
    let mesh = n.mesh.clone();
    let key = n.key;
    std::thread::spawn(move || {
        while let Ok(ev) = n.events.recv() {
            if let Event::Request { id, name, body, .. } = ev {
                let status = if name == "echo" {
                    Status::Ok
                } else {
                    Status::NotFound
                };
                n.mesh.respond(id, status, body);
            }
        }
    });
    (mesh, key)
}

fn call(
    mesh: &Mesh,
    peer: PublicKey,
    addr: std::net::SocketAddr,
    body: &[u8],
) -> Result<(Status, Vec<u8>), CallError> {
    let (tx, rx) = mpsc::channel();
    mesh.call(
        KEYRING,
        peer,
        Some(addr),
        "echo".into(),
        // In pieces, as the NIF sends arguments with large binaries lent.
        body.chunks(3).map(bytes::Bytes::copy_from_slice).collect(),
        T,
        Box::new(move |r| {
            let _ = tx.send(r);
        }),
    );
    rx.recv_timeout(T * 2).expect("a call always answers")
}

/// Two nodes, each with both in its snapshot of `KEYRING`.
fn member_pair() -> (Node, Node) {
    let (a, b) = (node(), node());
    let keys = [a.key, b.key];
    a.mesh.set_members(KEYRING, members(&keys));
    b.mesh.set_members(KEYRING, members(&keys));
    (a, b)
}

fn members(keys: &[PublicKey]) -> Vec<(PublicKey, u64)> {
    keys.iter().map(|k| (*k, 0)).collect()
}

#[test]
fn member_connects_and_calls_both_ways() {
    let (a, b) = member_pair();
    let a_addr = a.mesh.local_addr().unwrap();
    let (b_mesh, b_key) = echo(b);
    let b_addr = b_mesh.local_addr().unwrap();
    let reply = call(&a.mesh, b_key, b_addr, b"hi").unwrap();
    assert_eq!(reply, (Status::Ok, b"hi".to_vec()));
    // The admitted connection is reused, and B can call A over the mesh too.
    let (a_mesh, a_key) = echo(a);
    assert_eq!(call(&b_mesh, a_key, a_addr, b"yo").unwrap().1, b"yo");
    assert!(a_mesh.connected(&KEYRING).contains(&b_key));
}

#[test]
fn non_member_client_is_rejected_in_the_handshake() {
    let (a, mallory) = (node(), node());
    a.mesh.set_members(KEYRING, members(&[a.key]));
    // Mallory believes she is a member; A does not.
    mallory
        .mesh
        .set_members(KEYRING, members(&[a.key, mallory.key]));
    let (a_mesh, a_key) = echo(a);
    let err = call(&mallory.mesh, a_key, a_mesh.local_addr().unwrap(), b"x").unwrap_err();
    assert!(
        matches!(err, CallError::HandshakeRejected(_)),
        "got {err:?}"
    );
    assert!(a_mesh.rejected_handshakes() >= 1);
    assert!(a_mesh.connected(&KEYRING).is_empty());
}

#[test]
fn client_rejects_a_server_that_is_not_a_member() {
    let (a, b) = (node(), node());
    // A admits B as a client, but B is not in A's snapshot: the client-side
    // verifier refuses B's key during the handshake.
    a.mesh.set_members(KEYRING, members(&[a.key]));
    b.mesh.set_members(KEYRING, members(&[a.key, b.key]));
    let inner = a.mesh.inner_for_tests();
    let addr = b.mesh.local_addr().unwrap();
    let b_key = b.key;
    let err = a
        .mesh
        .block_on_for_tests(async move { crate::client::dial(&inner, KEYRING, b_key, addr).await })
        .unwrap_err();
    assert!(
        matches!(err, CallError::HandshakeRejected(_)),
        "got {err:?}"
    );
    // Through the public API the call is refused before dialling.
    let err = call(&a.mesh, b.key, addr, b"x").unwrap_err();
    assert_eq!(err, CallError::NotMember);
}

#[test]
fn peer_claiming_another_members_key_is_rejected() {
    let (a, b, c) = (node(), node(), node());
    let keys = [a.key, b.key, c.key];
    for n in [&a, &b, &c] {
        n.mesh.set_members(KEYRING, members(&keys));
    }
    // A dials B's address expecting C: B cannot prove C's key.
    let b_addr = b.mesh.local_addr().unwrap();
    let _b = echo(b);
    let err = call(&a.mesh, c.key, b_addr, b"x").unwrap_err();
    assert!(
        matches!(err, CallError::HandshakeRejected(_)),
        "got {err:?}"
    );
}

#[test]
fn revoked_member_is_disconnected_and_refused() {
    let (a, b) = member_pair();
    let b_key = b.key;
    let (a_mesh, a_key) = echo(a);
    let a_addr = a_mesh.local_addr().unwrap();
    assert!(call(&b.mesh, a_key, a_addr, b"1").is_ok());
    // A revokes B: the live connection closes at once.
    assert_eq!(a_mesh.set_members(KEYRING, members(&[a_key])), 1);
    let down = b
        .events
        .iter()
        .find(|e| matches!(e, Event::PeerDown { .. }))
        .unwrap();
    match down {
        Event::PeerDown { peer, reason, .. } => {
            assert_eq!(peer, a_key);
            assert!(reason.contains(&CLOSE_REVOKED.to_string()), "{reason}");
        }
        _ => unreachable!(),
    }
    // B (whose view is stale) is refused on redial.
    let err = call(&b.mesh, a_key, a_addr, b"2").unwrap_err();
    assert!(
        matches!(err, CallError::HandshakeRejected(_)),
        "got {err:?}"
    );
    assert!(!a_mesh.connected(&KEYRING).contains(&b_key));
}

#[test]
fn expired_member_is_closed_and_refused() {
    let (a, b) = (node(), node());
    let soon = crate::now_ms() + 700;
    a.mesh.set_members(KEYRING, vec![(a.key, 0), (b.key, soon)]);
    b.mesh.set_members(KEYRING, members(&[a.key, b.key]));
    let (a_mesh, a_key) = echo(a);
    let a_addr = a_mesh.local_addr().unwrap();
    assert!(call(&b.mesh, a_key, a_addr, b"1").is_ok());
    assert!(b.events.iter().any(|e| matches!(e, Event::PeerDown { .. })));
    let err = call(&b.mesh, a_key, a_addr, b"2").unwrap_err();
    assert!(
        matches!(err, CallError::HandshakeRejected(_)),
        "got {err:?}"
    );
}

#[test]
fn malformed_frames_get_bad_request_and_the_node_keeps_serving() {
    let (a, b) = member_pair();
    let (b_mesh, b_key) = echo(b);
    let b_addr = b_mesh.local_addr().unwrap();
    assert!(call(&a.mesh, b_key, b_addr, b"ok").is_ok());
    let conn = a.mesh.connection_for_tests(&KEYRING, &b_key).unwrap();
    let garbage: [&[u8]; 6] = [
        b"",
        b"\x01",
        b"\x07\x04\0\0\0\x01x",
        b"\x01\x04\xff\xff\xff\xff",
        // Longer than its header says, and shorter.
        b"\x01\x04\0\0\0\x02abc",
        b"\x01\x04\0\0\0\x09ab",
    ];
    let replies = a.mesh.block_on_for_tests(async move {
        let mut out = Vec::new();
        for g in garbage {
            let (mut s, mut r) = conn.open_bi().await.unwrap();
            s.write_all(g).await.unwrap();
            s.finish().unwrap();
            out.push(r.read_to_end(1024).await.map(|b| b.to_vec()));
        }
        out
    });
    for reply in replies {
        let bytes = reply.unwrap();
        assert_eq!(
            keyring_core::wire::frame::decode(&bytes, 64).unwrap(),
            keyring_core::wire::frame::Frame::Response {
                status: Status::BadRequest,
                body: &[]
            }
        );
    }
    assert_eq!(call(&a.mesh, b_key, b_addr, b"still").unwrap().1, b"still");
}

#[test]
fn join_with_invite_returns_the_log_or_a_refusal() {
    let (admin, newbie) = (node(), node());
    admin.mesh.set_members(KEYRING, members(&[admin.key]));
    let join_addr = admin.mesh.join_addr().unwrap();
    let admin_mesh = admin.mesh.clone();
    let admin_key = admin.key;
    std::thread::spawn(move || {
        while let Ok(ev) = admin.events.recv() {
            if let Event::JoinRequest { id, invite, .. } = ev {
                let answer = if invite == b"good" {
                    Ok(vec![b"entry0".to_vec(), b"entry1".to_vec()])
                } else {
                    Err(Refusal::BadInvite)
                };
                admin_mesh.answer_join(id, answer);
            }
        }
    });
    let join = |invite: &[u8], issuer| {
        let (tx, rx) = mpsc::channel();
        newbie.mesh.join(
            join_addr,
            issuer,
            invite.to_vec(),
            T,
            Box::new(move |r| {
                let _ = tx.send(r);
            }),
        );
        rx.recv_timeout(T * 2).unwrap()
    };
    assert_eq!(
        join(b"good", admin_key).unwrap(),
        vec![b"entry0".to_vec(), b"entry1".to_vec()]
    );
    assert_eq!(
        join(b"bad", admin_key).unwrap_err(),
        CallError::Refused(Refusal::BadInvite)
    );
    // The joiner insists on the issuer's key.
    assert!(matches!(
        join(b"good", [1; 32]).unwrap_err(),
        CallError::HandshakeRejected(_)
    ));
}

#[test]
fn a_lost_link_is_redialled_in_the_background() {
    let (a, b_kp) = (node(), KeyPair::generate().unwrap());
    let b = node_at(&b_kp, "127.0.0.1:0".parse().unwrap()).unwrap();
    let keys = [a.key, b.key];
    a.mesh.set_members(KEYRING, members(&keys));
    b.mesh.set_members(KEYRING, members(&keys));
    let (b_key, b_addr) = (b.key, b.mesh.local_addr().unwrap());
    cast(&a.mesh, b_key, Some(b_addr)).unwrap();
    expect(&a.events, T, is_up(b_key));

    // B's node stops (its mesh closes with `shutdown`)...
    drop(b);
    expect(&a.events, T, is_down(b_key));
    // ... and comes back with the same key on the same address.
    let b = (0..50)
        .find_map(|_| {
            node_at(&b_kp, b_addr).ok().or_else(|| {
                std::thread::sleep(Duration::from_millis(100));
                None
            })
        })
        .expect("B's port is free again");
    b.mesh.set_members(KEYRING, members(&keys));

    // A dials it again on its own: nobody calls.
    expect(&a.events, Duration::from_secs(15), is_up(b_key));
    expect(&b.events, T, is_up(a.key));
    assert_eq!(a.mesh.connected(&KEYRING), vec![b_key]);
}

#[test]
fn a_link_closed_on_purpose_is_not_redialled() {
    let (a, b) = member_pair();
    cast(&a.mesh, b.key, Some(b.mesh.local_addr().unwrap())).unwrap();
    expect(&b.events, T, is_up(a.key));
    assert!(a.mesh.disconnect(&KEYRING, &b.key));
    expect(&b.events, T, is_down(a.key));
    std::thread::sleep(Duration::from_millis(600));
    assert!(a.mesh.connected(&KEYRING).is_empty());
    assert!(b.mesh.connected(&KEYRING).is_empty());
}

#[test]
fn both_sides_dialling_at_once_settle_on_one_link() {
    let (a, b) = member_pair();
    let (a_addr, b_addr) = (a.mesh.local_addr().unwrap(), b.mesh.local_addr().unwrap());
    let (a_inner, b_inner) = (a.mesh.inner_for_tests(), b.mesh.inner_for_tests());
    // Each side dials the other (dial never reuses a live link).
    let (ak, bk) = (a.key, b.key);
    let inner = a_inner.clone();
    a.mesh
        .block_on_for_tests(async move { crate::client::dial(&inner, KEYRING, bk, b_addr).await })
        .unwrap();
    let inner = b_inner.clone();
    b.mesh
        .block_on_for_tests(async move { crate::client::dial(&inner, KEYRING, ak, a_addr).await })
        .unwrap();
    assert_eq!(a_inner.endpoint.open_connections(), 2);

    // After the grace period both keep the same one and close the other.
    std::thread::sleep(crate::links::SUPERSEDED_GRACE);
    let settled = |inner: &Arc<crate::mesh::Inner>| {
        (0..100).any(|_| {
            let one = inner.endpoint.open_connections() == 1;
            if !one {
                std::thread::sleep(Duration::from_millis(50));
            }
            one
        })
    };
    assert!(settled(&a_inner) && settled(&b_inner));
    assert_eq!(a.mesh.connected(&KEYRING), vec![bk]);
    assert_eq!(b.mesh.connected(&KEYRING), vec![ak]);
    // One PeerUp each, and no PeerDown: the pair never lost its link.
    let seen: Vec<Event> = a.events.try_iter().chain(b.events.try_iter()).collect();
    assert_eq!(
        seen.iter()
            .filter(|e| matches!(e, Event::PeerUp { .. }))
            .count(),
        2
    );
    assert!(!seen.iter().any(|e| matches!(e, Event::PeerDown { .. })));
    // And the link works both ways.
    cast(&a.mesh, bk, None).unwrap();
    cast(&b.mesh, ak, None).unwrap();
    assert_eq!(a_inner.endpoint.open_connections(), 1);
}

#[test]
fn a_flood_of_joins_is_refused_before_the_handshake_and_service_resumes() {
    let (admin, newbie) = (node(), node());
    admin.mesh.set_members(KEYRING, members(&[admin.key]));
    let join_addr = admin.mesh.join_addr().unwrap();
    let (admin_mesh, admin_key) = (admin.mesh.clone(), admin.key);
    std::thread::spawn(move || {
        while let Ok(ev) = admin.events.recv() {
            if let Event::JoinRequest { id, .. } = ev {
                admin_mesh.answer_join(id, Err(Refusal::BadInvite));
            }
        }
    });
    let start_join = |tx: mpsc::Sender<Result<Vec<Vec<u8>>, CallError>>| {
        newbie.mesh.join(
            join_addr,
            admin_key,
            b"bad".to_vec(),
            T,
            Box::new(move |r| {
                let _ = tx.send(r);
            }),
        );
    };
    let (tx, rx) = mpsc::channel();
    let flood = 3 * crate::server::MAX_JOINS_IN_FLIGHT;
    let started = std::time::Instant::now();
    for _ in 0..flood {
        start_join(tx.clone());
    }
    let outcomes: Vec<_> = (0..flood)
        .map(|_| rx.recv_timeout(T * 2).unwrap())
        .collect();
    // The bucket starts full and refills while the flood lasts.
    let admitted = crate::server::MAX_JOINS_IN_FLIGHT as f64
        + f64::from(crate::server::JOINS_PER_SECOND) * started.elapsed().as_secs_f64();
    let answered = outcomes
        .iter()
        .filter(|r| **r == Err(CallError::Refused(Refusal::BadInvite)))
        .count();
    assert!(answered >= 1, "some joins are served: {outcomes:?}");
    assert!(
        (answered as f64) <= admitted + 1.0 && answered < flood,
        "the rest are refused up front: {answered} of {flood} served, {admitted:.0} admitted"
    );
    assert!(
        outcomes.iter().all(
            |r| *r == Err(CallError::Refused(Refusal::BadInvite)) || *r == Err(CallError::Busy)
        ),
        "a refused joiner is told the admin is busy: {outcomes:?}"
    );
    // Once the flood is over, joins are served again.
    std::thread::sleep(Duration::from_secs(1));
    start_join(tx);
    assert_eq!(
        rx.recv_timeout(T * 2).unwrap(),
        Err(CallError::Refused(Refusal::BadInvite))
    );
}

#[test]
fn a_closed_mesh_frees_its_port_at_once() {
    let kp = KeyPair::generate().unwrap();
    let first = node_at(&kp, "127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = first.mesh.local_addr().unwrap();
    first.mesh.close();
    // The old mesh is still referenced, yet a restart binds the same port.
    let again = node_at(&kp, addr).unwrap();
    assert_eq!(again.mesh.local_addr().unwrap(), addr);
    drop(first);
}
