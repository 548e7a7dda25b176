//! Joining: the join endpoint answers signed invites with the log or a
//! refusal, and turns floods away before the handshake.

use std::sync::mpsc;
use std::time::Duration;

use keyring_core::identity::KeyPair;
use keyring_core::membership::{Invite, InviteFields, PublicKey};
use keyring_core::wire::frame::Refusal;
use keyring_net::{CallError, Event, Mesh};

use crate::support::*;

pub const GOOD: [u8; 16] = [1; 16];

/// An invite to `keyring` signed by `issuer`, expiring in a minute.
pub fn invite(issuer: &KeyPair, keyring: PublicKey, token: [u8; 16]) -> Vec<u8> {
    invite_until(issuer, keyring, token, keyring_net::now_ms() + 60_000)
}

pub fn invite_until(
    issuer: &KeyPair,
    keyring: PublicKey,
    token: [u8; 16],
    expires: u64,
) -> Vec<u8> {
    invite_with(issuer, keyring, token, expires, None)
}

pub fn invite_with(
    issuer: &KeyPair,
    keyring: PublicKey,
    token: [u8; 16],
    expires: u64,
    bound_key: Option<PublicKey>,
) -> Vec<u8> {
    Invite::sign(
        InviteFields {
            keyring_id: keyring,
            token,
            expires_at_ms: expires,
            max_uses: 0,
            bound_key,
            address_hint: "127.0.0.1:1 127.0.0.1:2".into(),
            roles: vec![],
        },
        issuer,
    )
    .unwrap()
    .encode()
}

/// An admin node of `KEYRING` whose owner accepts the invite with token
/// `GOOD` and refuses the rest; it counts the requests that reach it.
pub fn admin() -> (Node, mpsc::Receiver<()>) {
    let mut admin = node();
    admin.mesh.set_members(KEYRING, members(&[admin.key]));
    let (seen_tx, seen) = mpsc::channel();
    let mesh = admin.mesh.clone();
    let events = std::mem::replace(&mut admin.events, mpsc::channel().1);
    std::thread::spawn(move || {
        while let Ok(ev) = events.recv() {
            if let Event::JoinRequest { id, invite, .. } = ev {
                let _ = seen_tx.send(());
                let token = Invite::decode(&invite).unwrap().token;
                let answer = if token == GOOD {
                    Ok(vec![b"entry0".to_vec(), b"entry1".to_vec()])
                } else {
                    Err(Refusal::BadInvite)
                };
                mesh.answer_join(id, answer);
            }
        }
    });
    (admin, seen)
}

pub fn join(joiner: &Mesh, admin: &Node, invite: &[u8]) -> Result<Vec<Vec<u8>>, CallError> {
    join_as(
        joiner,
        admin.mesh.join_addr().unwrap(),
        admin.key,
        invite,
        T,
    )
}

pub fn join_as(
    joiner: &Mesh,
    addr: std::net::SocketAddr,
    issuer: PublicKey,
    invite: &[u8],
    timeout: Duration,
) -> Result<Vec<Vec<u8>>, CallError> {
    let (tx, rx) = mpsc::channel();
    joiner.join(
        addr,
        issuer,
        invite.to_vec(),
        timeout,
        Box::new(move |r| {
            let _ = tx.send(r);
        }),
    );
    rx.recv_timeout(timeout * 2).expect("a join always answers")
}

#[test]
fn a_join_with_a_signed_invite_gets_the_log_or_a_refusal() {
    let (admin, seen) = admin();
    let newbie = node();
    let kp = &admin.kp;
    assert_eq!(
        join(&newbie.mesh, &admin, &invite(kp, KEYRING, GOOD)).unwrap(),
        vec![b"entry0".to_vec(), b"entry1".to_vec()]
    );
    assert_eq!(
        join(&newbie.mesh, &admin, &invite(kp, KEYRING, [2; 16])).unwrap_err(),
        CallError::Refused(Refusal::BadInvite)
    );
    assert_eq!(seen.try_iter().count(), 2, "both reached the owner");
    // The joiner insists on the issuer's key.
    let err = join_as(
        &newbie.mesh,
        admin.mesh.join_addr().unwrap(),
        [1; 32],
        &invite(kp, KEYRING, GOOD),
        T,
    )
    .unwrap_err();
    assert!(matches!(err, CallError::HandshakeRejected(_)), "{err:?}");
}

#[test]
fn invites_that_cannot_be_good_are_refused_before_reaching_the_owner() {
    let (admin, seen) = admin();
    let newbie = node();
    let stranger = KeyPair::generate().unwrap();
    let mut forged = invite(&admin.kp, KEYRING, GOOD);
    let last = forged.len() - 1;
    forged[last] ^= 1;
    let expired = invite_until(&admin.kp, KEYRING, GOOD, keyring_net::now_ms() - 1);
    let soon = keyring_net::now_ms() + 60_000;
    for bad in [
        // Bound to another key than the joiner's.
        invite_with(&admin.kp, KEYRING, GOOD, soon, Some([9; 32])),
        forged,
        expired,
        // Signed by a key that is not a member of the keyring.
        invite(&stranger, KEYRING, GOOD),
        // For a keyring this node is not in: the same answer.
        invite(&admin.kp, [7; 32], GOOD),
        b"not an invite".to_vec(),
    ] {
        assert_eq!(
            join(&newbie.mesh, &admin, &bad).unwrap_err(),
            CallError::Refused(Refusal::BadInvite)
        );
    }
    assert_eq!(seen.try_iter().count(), 0);
    // Bound to the joiner's own key, it goes through.
    let mine = invite_with(&admin.kp, KEYRING, GOOD, soon, Some(newbie.key));
    assert_eq!(join(&newbie.mesh, &admin, &mine).unwrap().len(), 2);
}

#[test]
fn a_flood_of_joins_is_turned_away_and_service_resumes() {
    let (admin, _seen) = admin();
    let newbie = node();
    let addr = admin.mesh.join_addr().unwrap();
    let bad = invite(&admin.kp, KEYRING, [3; 16]);
    let (tx, rx) = mpsc::channel();
    let flood = 96;
    for _ in 0..flood {
        let tx = tx.clone();
        newbie.mesh.join(
            addr,
            admin.key,
            bad.clone(),
            Duration::from_millis(300),
            Box::new(move |r| {
                let _ = tx.send(r);
            }),
        );
    }
    let outcomes: Vec<_> = (0..flood).map(|_| rx.recv_timeout(T).unwrap()).collect();
    let answered = outcomes
        .iter()
        .filter(|r| **r == Err(CallError::Refused(Refusal::BadInvite)))
        .count();
    assert!(answered >= 1, "some joins are served: {outcomes:?}");
    assert!(answered < flood, "the rest are turned away: {outcomes:?}");
    assert!(
        outcomes.iter().all(|r| matches!(
            r,
            Err(CallError::Refused(Refusal::BadInvite) | CallError::Busy | CallError::Timeout)
        )),
        "{outcomes:?}"
    );
    // Once the flood is over, joins are served again.
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(
        join(&newbie.mesh, &admin, &invite(&admin.kp, KEYRING, GOOD))
            .unwrap()
            .len(),
        2
    );
}
