//! Who gets in: members only, checked inside the handshake on both sides
//! and again on every membership change.

use keyring_net::close::CLOSE_REVOKED;
use keyring_net::{CallError, Event};

use crate::support::*;

#[test]
fn a_non_member_client_is_rejected_in_the_handshake() {
    let (a, mallory) = (node(), node());
    a.mesh.set_members(KEYRING, members(&[a.key]));
    // Mallory believes she is a member; A does not.
    mallory
        .mesh
        .set_members(KEYRING, members(&[a.key, mallory.key]));
    let err = mallory.call(a.key, Some(a.addr()), b"x").unwrap_err();
    assert!(
        matches!(err, CallError::HandshakeRejected(_)),
        "got {err:?}"
    );
    assert!(a.mesh.rejected_handshakes() >= 1);
    assert!(a.mesh.connected(&KEYRING).is_empty());
}

#[test]
fn a_client_rejects_a_server_that_is_not_a_member() {
    let (a, b) = (node(), node());
    // A admits B as a client, but B is not in A's snapshot: the client-side
    // verifier refuses B's key during the handshake.
    a.mesh.set_members(KEYRING, members(&[a.key]));
    b.mesh.set_members(KEYRING, members(&[a.key, b.key]));
    let (opener, b_key, addr) = (a.mesh.opener(), b.key, b.addr());
    let err = a
        .mesh
        .runtime()
        .block_on(async move { opener.dial_fresh(KEYRING, b_key, addr).await })
        .unwrap_err();
    assert!(
        matches!(err, CallError::HandshakeRejected(_)),
        "got {err:?}"
    );
    // Through the public API the call is refused before dialling.
    assert_eq!(
        a.call(b.key, Some(addr), b"x").unwrap_err(),
        CallError::NotMember
    );
}

#[test]
fn a_peer_claiming_another_members_key_is_rejected() {
    let (a, b, c) = (node(), node(), node());
    let keys = [a.key, b.key, c.key];
    for n in [&a, &b, &c] {
        n.mesh.set_members(KEYRING, members(&keys));
    }
    // A dials B's address expecting C: B cannot prove C's key.
    let err = a.call(c.key, Some(b.addr()), b"x").unwrap_err();
    assert!(
        matches!(err, CallError::HandshakeRejected(_)),
        "got {err:?}"
    );
}

#[test]
fn a_revoked_member_is_disconnected_and_refused() {
    let (a, b) = member_pair();
    assert!(b.call(a.key, Some(a.addr()), b"1").is_ok());
    // A revokes B: the live connection closes at once.
    assert_eq!(a.mesh.set_members(KEYRING, members(&[a.key])), 1);
    match expect(&b.events, T, is_down(a.key)) {
        Event::PeerDown { reason, .. } => {
            assert!(reason.contains("revoked"), "{reason}");
            assert!(reason.contains(&CLOSE_REVOKED.to_string()), "{reason}");
        }
        _ => unreachable!(),
    }
    // B (whose view is stale) is refused on redial.
    let err = b.call(a.key, Some(a.addr()), b"2").unwrap_err();
    assert!(
        matches!(err, CallError::HandshakeRejected(_)),
        "got {err:?}"
    );
    assert!(!a.mesh.connected(&KEYRING).contains(&b.key));
}

#[test]
fn an_expired_member_is_closed_and_refused() {
    let (a, b) = (node(), node());
    let soon = keyring_net::now_ms() + 700;
    a.mesh.set_members(KEYRING, vec![(a.key, 0), (b.key, soon)]);
    b.mesh.set_members(KEYRING, members(&[a.key, b.key]));
    assert!(b.call(a.key, Some(a.addr()), b"1").is_ok());
    expect(&b.events, T, is_down(a.key));
    let err = b.call(a.key, Some(a.addr()), b"2").unwrap_err();
    assert!(
        matches!(err, CallError::HandshakeRejected(_)),
        "got {err:?}"
    );
}
