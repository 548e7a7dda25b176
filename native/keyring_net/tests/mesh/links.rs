//! Links: one per pair, kept up, closed on purpose when asked.

use std::time::Duration;

use keyring_core::identity::KeyPair;
use keyring_core::wire::frame::Status;
use keyring_net::{Limits, Protocols};

use crate::support::*;

#[test]
fn members_connect_and_call_each_other_over_one_link() {
    let (a, b) = member_pair();
    let reply = a.call(b.key, Some(b.addr()), b"hi").unwrap();
    assert_eq!(reply, (Status::Ok, bytes::Bytes::from_static(b"hi")));
    // The admitted connection is reused both ways.
    assert_eq!(b.call(a.key, None, b"yo").unwrap().1.as_ref(), b"yo");
    assert_eq!(a.mesh.connected(&KEYRING), vec![b.key]);
    assert_eq!(a.mesh.open_connections(), 1);
}

#[test]
fn a_lost_link_is_redialled_in_the_background() {
    let a = node();
    let b_kp = KeyPair::generate().unwrap();
    let b_seed = *b_kp.seed();
    let b = node_at(
        b_kp,
        "127.0.0.1:0".parse().unwrap(),
        Limits::default(),
        Protocols::new(),
    )
    .unwrap();
    let keys = [a.key, b.key];
    a.mesh.set_members(KEYRING, members(&keys));
    b.mesh.set_members(KEYRING, members(&keys));
    let (b_key, b_addr) = (b.key, b.addr());
    a.cast(b_key, Some(b_addr)).unwrap();
    expect(&a.events, T, is_up(b_key));

    // B's node stops (its mesh closes with `shutdown`)...
    drop(b);
    expect(&a.events, T, is_down(b_key));
    // ... and comes back with the same key on the same address.
    let b = (0..50)
        .find_map(|_| {
            let kp = KeyPair::from_seed(&b_seed);
            node_at(kp, b_addr, Limits::default(), Protocols::new())
                .ok()
                .or_else(|| {
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
    a.cast(b.key, Some(b.addr())).unwrap();
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
    let (a_addr, b_addr) = (a.addr(), b.addr());
    // Each side dials the other, though it may have a link already.
    let (ak, bk) = (a.key, b.key);
    let opener = a.mesh.opener();
    a.mesh
        .runtime()
        .block_on(async move { opener.dial_fresh(KEYRING, bk, b_addr).await })
        .unwrap();
    let opener = b.mesh.opener();
    b.mesh
        .runtime()
        .block_on(async move { opener.dial_fresh(KEYRING, ak, a_addr).await })
        .unwrap();
    assert_eq!(a.mesh.open_connections(), 2);

    // After the grace period both keep the same one and close the other.
    std::thread::sleep(keyring_net::links::SUPERSEDED_GRACE);
    assert!(eventually(T, || a.mesh.open_connections() == 1
        && b.mesh.open_connections() == 1));
    assert_eq!(a.mesh.connected(&KEYRING), vec![bk]);
    assert_eq!(b.mesh.connected(&KEYRING), vec![ak]);
    // One PeerUp each, and no PeerDown: the pair never lost its link.
    let seen: Vec<_> = a.events.try_iter().chain(b.events.try_iter()).collect();
    let ups = seen
        .iter()
        .filter(|e| matches!(e, keyring_net::Event::PeerUp { .. }))
        .count();
    assert_eq!(ups, 2, "{seen:?}");
    assert!(!seen
        .iter()
        .any(|e| matches!(e, keyring_net::Event::PeerDown { .. })));
    // And the link works both ways.
    a.cast(bk, None).unwrap();
    b.cast(ak, None).unwrap();
    assert_eq!(a.mesh.open_connections(), 1);
}

#[test]
fn a_closed_mesh_frees_its_port_at_once() {
    let kp = KeyPair::generate().unwrap();
    let seed = *kp.seed();
    let first = node_at(
        kp,
        "127.0.0.1:0".parse().unwrap(),
        Limits::default(),
        Protocols::new(),
    )
    .unwrap();
    let addr = first.addr();
    first.mesh.close();
    // The old mesh is still referenced, yet a restart binds the same port.
    let again = node_at(
        KeyPair::from_seed(&seed),
        addr,
        Limits::default(),
        Protocols::new(),
    )
    .unwrap();
    assert_eq!(again.addr(), addr);
    drop(first);
}
