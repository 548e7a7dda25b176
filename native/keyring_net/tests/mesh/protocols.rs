//! The protocol seam: protocols plug in by a stream byte; unknown ones are
//! refused cheaply; RPC and membership are two protocols like any other.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use keyring_core::identity::KeyPair;
use keyring_core::wire::frame::{self, Frame, Status};
use keyring_net::close::STREAM_UNKNOWN_PROTOCOL;
use keyring_net::protocol::BoxFuture;
use keyring_net::{
    FramedRecv, Limits, PeerLink, Protocol, ProtocolId, Protocols, PROTOCOL_MEMBERSHIP,
};
use quinn::SendStream;

use crate::support::*;

/// A protocol of its own: answers a Cast frame with its body upper-cased
/// and the caller's key, knowing nothing of RPC.
struct Shout;

const SHOUT: ProtocolId = 9;

impl Protocol for Shout {
    fn id(&self) -> ProtocolId {
        SHOUT
    }

    fn accept_bi(
        self: Arc<Self>,
        link: PeerLink,
        mut send: SendStream,
        mut recv: FramedRecv,
    ) -> BoxFuture {
        Box::pin(async move {
            let Ok(frame) = recv.read_frame(1024).await else {
                return;
            };
            let Ok(Frame::Cast { body, .. }) = frame::decode(&frame.bytes, 1024) else {
                return;
            };
            let mut reply = body.to_ascii_uppercase();
            reply.extend_from_slice(&link.peer());
            let out = Frame::Response {
                status: Status::Ok,
                body: &reply,
            }
            .encode()
            .unwrap();
            let _ = send.write_all(&out).await;
            let _ = send.finish();
        })
    }
}

fn shouting_pair() -> (Node, Node) {
    let with_shout = || {
        let mut p = Protocols::new();
        p.add(Arc::new(Shout)).unwrap();
        node_at(
            KeyPair::generate().unwrap(),
            "127.0.0.1:0".parse().unwrap(),
            Limits::default(),
            p,
        )
        .unwrap()
    };
    let (a, b) = (with_shout(), with_shout());
    let keys = [a.key, b.key];
    a.mesh.set_members(KEYRING, members(&keys));
    b.mesh.set_members(KEYRING, members(&keys));
    (a, b)
}

#[test]
fn a_third_protocol_plugs_in_beside_rpc_on_the_same_link() {
    let (a, b) = shouting_pair();
    let (opener, b_key, b_addr) = (a.mesh.opener(), b.key, b.addr());
    let reply = a.mesh.runtime().block_on(async move {
        let deadline = tokio::time::Instant::now() + T;
        let link = opener
            .link(target(b_key, Some(b_addr)), deadline)
            .await
            .unwrap();
        let (mut send, mut recv) = link.open_bi(SHOUT).await.unwrap();
        let msg = Frame::Cast {
            name: "s",
            body: b"hello",
        }
        .encode()
        .unwrap();
        send.write(vec![Bytes::from(msg)]).await.unwrap();
        send.finish();
        recv.read_frame(1024).await.unwrap().bytes
    });
    let mut want = b"HELLO".to_vec();
    want.extend_from_slice(&a.key);
    assert_eq!(
        frame::decode(&reply, 1024).unwrap(),
        Frame::Response {
            status: Status::Ok,
            body: &want
        }
    );
    // RPC runs on the same link.
    assert_eq!(a.call(b.key, None, b"rpc").unwrap().1.as_ref(), b"rpc");
    assert_eq!(a.mesh.open_connections(), 1);
}

#[test]
fn two_protocols_cannot_claim_one_id() {
    let mut p = Protocols::new();
    p.add(Arc::new(Shout)).unwrap();
    assert_eq!(p.add(Arc::new(Shout)).unwrap_err().0, SHOUT);
}

#[test]
fn a_stream_naming_an_unknown_protocol_is_refused_and_the_link_keeps_serving() {
    let (a, b) = member_pair();
    let client = RawClient::new(&b.kp, "127.0.0.1");
    let (a_key, a_addr) = (a.key, a.addr());
    let (refused, still) = client.runtime.block_on(async {
        let conn = client.admitted(a_key, a_addr, KEYRING).await.unwrap();
        let (mut s, mut r) = conn.open_bi().await.unwrap();
        s.write_all(&[200, 1, 2, 3]).await.unwrap();
        let _ = s.finish();
        let refused = r.read_to_end(1024).await;
        let still = raw_request(&conn, &echo_request(b"ok")).await;
        (refused, still)
    });
    match refused {
        Err(quinn::ReadToEndError::Read(quinn::ReadError::Reset(code))) => {
            assert_eq!(code.into_inner(), u64::from(STREAM_UNKNOWN_PROTOCOL));
        }
        other => panic!("expected a reset, got {other:?}"),
    }
    let still = still.unwrap();
    assert_eq!(
        frame::decode(&still, 1024).unwrap(),
        Frame::Response {
            status: Status::Ok,
            body: b"ok"
        }
    );
}

#[test]
fn a_pushed_log_reaches_the_log_sink() {
    let (a, b) = member_pair();
    a.cast(b.key, Some(b.addr())).unwrap();
    expect(&a.events, T, is_up(b.key));
    let entries = vec![b"e0".to_vec(), b"e1".to_vec()];
    assert_eq!(
        a.membership.push_log(&a.mesh.opener(), KEYRING, &entries),
        1
    );
    let update = b.logs.recv_timeout(T).unwrap();
    assert_eq!((update.keyring, update.peer), (KEYRING, a.key));
    assert_eq!(
        update.entries,
        vec![Bytes::from_static(b"e0"), Bytes::from_static(b"e1")]
    );
}

#[test]
fn a_log_pushed_for_another_keyring_is_dropped() {
    let (a, b) = member_pair();
    let client = RawClient::new(&b.kp, "127.0.0.1");
    let (a_key, a_addr) = (a.key, a.addr());
    // The connection stays open until the pushes are read.
    let _conn = client.runtime.block_on(async {
        let conn = client.admitted(a_key, a_addr, KEYRING).await.unwrap();
        for keyring in [[7u8; 32], KEYRING] {
            let f = Frame::LogUpdate {
                keyring_id: keyring,
                entries: vec![b"x"],
            }
            .encode()
            .unwrap();
            let mut s = conn.open_uni().await.unwrap();
            s.write_all(&[PROTOCOL_MEMBERSHIP]).await.unwrap();
            s.write_all(&f).await.unwrap();
            s.finish().unwrap();
            let _ = s.stopped().await;
        }
        conn
    });
    // Only the push for the link's own keyring arrives.
    let update = a.logs.recv_timeout(T).unwrap();
    assert_eq!(update.keyring, KEYRING);
    assert!(a.logs.recv_timeout(Duration::from_millis(300)).is_err());
}
