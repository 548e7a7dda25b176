//! Attack (issue 8, item 18): a member probes which keyrings a node is in,
//! and a peer tries to smuggle text into the node's logs through its close
//! reason.

use keyring_core::identity::KeyPair;
use keyring_core::wire::frame::{Frame, Refusal};
use keyring_net::Event;

use crate::support::*;

const OTHER: [u8; 32] = [43; 32];

#[test]
fn an_unknown_keyring_and_one_the_peer_is_not_in_get_the_same_refusal() {
    // A is in KEYRING and OTHER; M is a member of KEYRING only.
    let a = node();
    let m = KeyPair::generate().unwrap();
    let mk = m.public_key();
    a.mesh.set_members(KEYRING, members(&[a.key, mk]));
    a.mesh.set_members(OTHER, members(&[a.key, [9; 32]]));
    let client = RawClient::new(&m, "127.0.0.1");
    let (a_key, a_addr) = (a.key, a.addr());
    let answers = client.runtime.block_on(async {
        let mut out = Vec::new();
        // A keyring A is in (M is not a member), then one A has never heard of.
        for keyring in [OTHER, [44; 32]] {
            let conn = client
                .handshake(a_key, a_addr, keyring_net::tls::ALPN_MESH)
                .await
                .unwrap();
            let answer = hello(&conn, keyring).await.unwrap();
            let code = match conn.closed().await {
                quinn::ConnectionError::ApplicationClosed(c) => Some(c.error_code.into_inner()),
                _ => None,
            };
            out.push((answer, code));
        }
        out
    });
    assert_eq!(
        answers[0],
        (
            Frame::Refused(Refusal::NotMember),
            Some(keyring_net::close::CLOSE_REFUSED)
        )
    );
    assert_eq!(answers[0], answers[1], "the two refusals are identical");
}

#[test]
fn a_peers_close_reason_never_reaches_the_owner() {
    let (a, b) = member_pair();
    let client = RawClient::new(&b.kp, "127.0.0.1");
    let (a_key, a_addr) = (a.key, a.addr());
    client.runtime.block_on(async {
        let conn = client.admitted(a_key, a_addr, KEYRING).await.unwrap();
        conn.close(
            quinn::VarInt::from_u32(0),
            b"\n[error] keyring: root key exported to attacker\x1b[2J",
        );
        client.endpoint.wait_idle().await;
    });
    match expect(&a.events, T, is_down(b.key)) {
        Event::PeerDown { reason, .. } => {
            assert_eq!(reason, "closed by the peer: normal (0)");
        }
        _ => unreachable!(),
    }
}
