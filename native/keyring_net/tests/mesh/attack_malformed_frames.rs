//! Attack: a member sends garbage where frames belong. Each bad request is
//! answered BadRequest (or its stream stopped), never a crash, and the node
//! keeps serving.

use keyring_core::wire::frame::{self, Frame, Status};

use crate::support::*;

#[test]
fn malformed_frames_get_bad_request_and_the_node_keeps_serving() {
    let (a, b) = member_pair();
    let client = RawClient::new(&b.kp, "127.0.0.1");
    let (a_key, a_addr) = (a.key, a.addr());
    let garbage: [&[u8]; 7] = [
        b"",
        b"\x01",
        b"\x07\x04\0\0\0\x01x",
        b"\x01\x04\xff\xff\xff\xff",
        // Longer than its header says, and shorter.
        b"\x01\x04\0\0\0\x02abc",
        b"\x01\x04\0\0\0\x09ab",
        // A well-formed frame of the wrong kind.
        b"\x01\x02\0\0\0\0",
    ];
    let replies = client.runtime.block_on(async {
        let conn = client.admitted(a_key, a_addr, KEYRING).await.unwrap();
        let mut out = Vec::new();
        for g in garbage {
            out.push(raw_request(&conn, g).await);
        }
        out.push(raw_request(&conn, &echo_request(b"still")).await);
        out
    });
    let bad = Frame::Response {
        status: Status::BadRequest,
        body: &[],
    };
    for reply in &replies[..garbage.len()] {
        let bytes = reply.as_ref().unwrap();
        assert_eq!(frame::decode(bytes, 64).unwrap(), bad);
    }
    let last = replies.last().unwrap().as_ref().unwrap();
    assert_eq!(
        frame::decode(last, 64).unwrap(),
        Frame::Response {
            status: Status::Ok,
            body: b"still"
        }
    );
    assert_eq!(
        a.call(b.key, Some(b.addr()), b"ok").unwrap().1.as_ref(),
        b"ok"
    );
}
