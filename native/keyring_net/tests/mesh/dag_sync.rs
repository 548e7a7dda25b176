//! DAG sync (protocol 4) between two meshes on loopback: deep DAGs in one
//! round trip, incremental catch-up, the second round for filter false
//! positives, the sharing rule; and the attacks: hand-built providers that
//! slip in unrelated nodes, send nodes that do not hash to their cid, send
//! oversize or trailing items, or trickle; requesters that flood.

use std::sync::Arc;
use std::time::Duration;

use keyring_core::dag::session::{self, Status};
use keyring_core::dag::{
    CidFilter, Event, Item, Link, Node as DagNodeValue, Request, TraversalSpec, VerifyError,
    MAX_ITEM_BYTES,
};
use keyring_core::identity::KeyPair;
use keyring_net::protocol::BoxFuture;
use keyring_net::protocols::dag::memory::MemoryStore;
use keyring_net::protocols::dag::{Dag, DagLimits, FetchError, FetchReport, PROTOCOL_DAG};
use keyring_net::{FramedRecv, Limits, PeerLink, Protocol, ProtocolId, Protocols};
use quinn::SendStream;

use crate::support::*;

struct DagNode {
    node: Node,
    dag: Arc<Dag>,
    store: Arc<MemoryStore>,
}

fn dag_node_with(limits: DagLimits, extra: Option<Arc<dyn Protocol>>) -> DagNode {
    let store = Arc::new(MemoryStore::new());
    let dag = Dag::new(store.clone(), limits);
    let mut p = Protocols::new();
    match extra {
        Some(evil) => p.add(evil).unwrap(),
        None => p.add(dag.clone()).unwrap(),
    };
    let node = node_at(
        KeyPair::generate().unwrap(),
        "127.0.0.1:0".parse().unwrap(),
        Limits::default(),
        p,
    )
    .unwrap();
    DagNode { node, dag, store }
}

fn pair_of(a: DagNode, b: DagNode) -> (DagNode, DagNode) {
    let keys = [a.node.key, b.node.key];
    a.node.mesh.set_members(KEYRING, members(&keys));
    b.node.mesh.set_members(KEYRING, members(&keys));
    (a, b)
}

fn dag_pair() -> (DagNode, DagNode) {
    pair_of(
        dag_node_with(DagLimits::default(), None),
        dag_node_with(DagLimits::default(), None),
    )
}

impl DagNode {
    fn fetch_from(&self, from: &DagNode, request: Request) -> Result<FetchReport, FetchError> {
        self.fetch_within(from, request, T)
    }

    fn fetch_within(
        &self,
        from: &DagNode,
        request: Request,
        within: Duration,
    ) -> Result<FetchReport, FetchError> {
        let (dag, opener) = (self.dag.clone(), self.node.mesh.opener());
        let to = target(from.node.key, Some(from.node.addr()));
        self.node.mesh.runtime().block_on(async move {
            let deadline = tokio::time::Instant::now() + within;
            dag.fetch(&opener, to, request, deadline).await
        })
    }
}

/// A chain of `n` events in `store` after `prev` (`(cid, seq)`); returns
/// every cid, oldest first.
fn chain(store: &MemoryStore, prev: Option<([u8; 32], u64)>, n: usize) -> Vec<[u8; 32]> {
    let mut cids = Vec::with_capacity(n);
    let mut prev = prev;
    for i in 0..n {
        let payload = format!("event payload number {i:05}").into_bytes();
        let event = match prev {
            None => Event::first(payload),
            Some((cid, seq)) => Event::after(cid, seq, payload).unwrap(),
        };
        let (cid, bytes) = event.to_node().unwrap().encode_with_cid().unwrap();
        store.insert(bytes);
        prev = Some((cid, prev.map_or(0, |(_, s)| s + 1)));
        cids.push(cid);
    }
    cids
}

/// A tree of raw nodes, `fanout` children per node, `depth` levels below
/// the root; returns the root.
fn tree(store: &MemoryStore, depth: u32, fanout: usize, tag: &str) -> [u8; 32] {
    let links = if depth == 0 {
        Vec::new()
    } else {
        (0..fanout)
            .map(|i| Link::node(tree(store, depth - 1, fanout, &format!("{tag}.{i}"))))
            .collect()
    };
    let (_, bytes) = DagNodeValue::raw(tag.as_bytes().to_vec(), links)
        .encode_with_cid()
        .unwrap();
    store.insert(bytes)
}

#[test]
fn a_chain_of_a_thousand_events_arrives_in_one_round_trip() {
    let (a, b) = dag_pair();
    let cids = chain(&b.store, None, 1000);
    let head = *cids.last().unwrap();
    b.store.share(KEYRING, head);
    let report = a
        .fetch_from(&b, Request::new(head, TraversalSpec::default()))
        .unwrap();
    assert_eq!(report.round_trips, 1);
    assert_eq!(report.received, 1000);
    assert!(cids.iter().all(|c| a.store.contains(c)));
    let ratio = report.wire_bytes as f64 / report.received_bytes as f64;
    assert!(ratio <= 1.1, "wire/missing = {ratio}");
}

#[test]
fn a_member_that_has_the_old_head_gets_only_the_new_events() {
    let (a, b) = dag_pair();
    let old = chain(&b.store, None, 500);
    let old_head = *old.last().unwrap();
    for c in &old {
        a.store.insert(b.store.get(c).unwrap());
    }
    let new = chain(&b.store, Some((old_head, 499)), 500);
    let head = *new.last().unwrap();
    b.store.share(KEYRING, head);
    let mut request = Request::new(head, TraversalSpec::default());
    request.have = vec![old_head];
    let report = a.fetch_from(&b, request).unwrap();
    assert_eq!(report.round_trips, 1);
    assert_eq!(report.received, 500);
    assert!(new.iter().all(|c| a.store.contains(c)));
    let ratio = report.wire_bytes as f64 / report.received_bytes as f64;
    assert!(ratio <= 1.1, "wire/missing = {ratio}");
}

#[test]
fn a_filter_false_positive_is_fetched_in_a_second_round_and_no_third() {
    let (a, b) = dag_pair();
    let root = tree(&b.store, 3, 4, "r");
    b.store.share(KEYRING, root);
    // The requester holds nothing, but its filter claims two subtrees: the
    // provider skips them, the verifier sees gaps, round two fetches them.
    let level1: Vec<[u8; 32]> = {
        let bytes = b.store.get(&root).unwrap();
        keyring_core::dag::NodeRef::decode(&bytes)
            .unwrap()
            .links()
            .map(|l| l.cid)
            .collect()
    };
    // A subtree is not served on its own before a first round skipped it.
    assert_eq!(
        a.fetch_from(&b, Request::new(level1[1], TraversalSpec::default())),
        Err(FetchError::NotFound)
    );
    let mut filter = CidFilter::new([9; 32], 16, 16);
    filter.insert(&level1[1]);
    filter.insert(&level1[3]);
    let mut request = Request::new(root, TraversalSpec::default());
    request.filter = Some(filter);
    let report = a.fetch_from(&b, request).unwrap();
    assert_eq!(report.round_trips, 2);
    assert_eq!(report.requests, 2);
    assert_eq!(report.received, 1 + 4 + 16 + 64);
    assert_eq!(a.store.len(), 85);
}

#[test]
fn a_deep_tree_needs_one_round_trip_whatever_its_depth() {
    let (a, b) = dag_pair();
    let root = tree(&b.store, 10, 2, "d");
    b.store.share(KEYRING, root);
    let report = a
        .fetch_from(&b, Request::new(root, TraversalSpec::default()))
        .unwrap();
    assert_eq!(report.round_trips, 1);
    assert_eq!(report.received, (1 << 11) - 1);
}

#[test]
fn a_root_not_shared_in_the_keyring_is_answered_like_an_absent_one() {
    let (a, b) = dag_pair();
    let cids = chain(&b.store, None, 3);
    let head = cids[2];
    // Shared in another keyring only.
    b.store.share([7; 32], head);
    let unshared = a.fetch_from(&b, Request::new(head, TraversalSpec::default()));
    let absent = a.fetch_from(&b, Request::new([1; 32], TraversalSpec::default()));
    assert_eq!(unshared, Err(FetchError::NotFound));
    assert_eq!(absent, Err(FetchError::NotFound));
    assert!(a.store.is_empty());
    // Sharing the head serves everything reachable from it.
    b.store.share(KEYRING, head);
    let report = a
        .fetch_from(&b, Request::new(head, TraversalSpec::default()))
        .unwrap();
    assert_eq!(report.received, 3);
}

/// A provider that answers every request with `respond(request)`: status
/// byte and items of its choosing, then `then` (finish, or keep the stream
/// open and trickle).
type Respond = Box<dyn Fn(&Request) -> Vec<u8> + Send + Sync>;

struct Liar {
    respond: Respond,
    trickle: bool,
}

impl Protocol for Liar {
    fn id(&self) -> ProtocolId {
        PROTOCOL_DAG
    }

    fn accept_bi(
        self: Arc<Self>,
        _link: PeerLink,
        mut send: SendStream,
        mut recv: FramedRecv,
    ) -> BoxFuture {
        Box::pin(async move {
            let mut buf = Vec::new();
            let request = loop {
                let by = tokio::time::Instant::now() + Duration::from_secs(2);
                match recv.read_chunk(65536, by).await {
                    Ok(Some(b)) => buf.extend_from_slice(&b),
                    _ => return,
                }
                if let Ok(Some((r, _))) = session::decode_request(&buf) {
                    break r;
                }
            };
            let out = (self.respond)(&request);
            if self.trickle {
                for byte in out {
                    if send.write_all(&[byte]).await.is_err() {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(400)).await;
                }
            } else {
                let _ = send.write_all(&out).await;
            }
            let _ = send.finish();
        })
    }
}

fn liar_pair(
    respond: impl Fn(&Request) -> Vec<u8> + Send + Sync + 'static,
    trickle: bool,
) -> (DagNode, DagNode) {
    let liar = Arc::new(Liar {
        respond: Box::new(respond),
        trickle,
    });
    pair_of(
        dag_node_with(DagLimits::default(), None),
        dag_node_with(DagLimits::default(), Some(liar)),
    )
}

fn items(list: &[Item]) -> Vec<u8> {
    let mut out = vec![Status::Ok as u8];
    for item in list {
        item.encode(&mut out);
    }
    out
}

/// The honest DAG below: root -> [a, b], where the liar is asked for root.
struct Honest {
    root: [u8; 32],
    root_bytes: Vec<u8>,
    a_bytes: Vec<u8>,
    b_bytes: Vec<u8>,
}

fn honest() -> Honest {
    let (a, a_bytes) = DagNodeValue::raw(b"a".to_vec(), vec![])
        .encode_with_cid()
        .unwrap();
    let (b, b_bytes) = DagNodeValue::raw(b"b".to_vec(), vec![])
        .encode_with_cid()
        .unwrap();
    let (root, root_bytes) =
        DagNodeValue::raw(b"root".to_vec(), vec![Link::node(a), Link::node(b)])
            .encode_with_cid()
            .unwrap();
    Honest {
        root,
        root_bytes,
        a_bytes,
        b_bytes,
    }
}

#[test]
fn an_unrelated_node_slipped_into_the_stream_cuts_the_provider_off() {
    let h = honest();
    let (root_bytes, a_bytes) = (h.root_bytes.clone(), h.a_bytes.clone());
    let (_, unrelated) = DagNodeValue::raw(b"not in this dag".to_vec(), vec![])
        .encode_with_cid()
        .unwrap();
    let unrelated_cid = keyring_core::hash::digest(&unrelated);
    let (a, liar) = liar_pair(
        move |_| {
            items(&[
                Item::Data(root_bytes.clone()),
                Item::Data(a_bytes.clone()),
                Item::Data(unrelated.clone()),
            ])
        },
        false,
    );
    let out = a.fetch_from(&liar, Request::new(h.root, TraversalSpec::default()));
    assert!(
        matches!(
            out,
            Err(FetchError::Verify(VerifyError::HashMismatch { .. }))
        ),
        "{out:?}"
    );
    assert!(!a.store.contains(&unrelated_cid));
    // What verified before the lie is kept; nothing after it.
    assert!(a.store.contains(&h.root));
    assert_eq!(a.store.len(), 2);
    // The requester still fetches from an honest provider.
    let honest_node = dag_node_with(DagLimits::default(), None);
    let keys = [a.node.key, liar.node.key, honest_node.node.key];
    for n in [&a, &liar, &honest_node] {
        n.node.mesh.set_members(KEYRING, members(&keys));
    }
    for bytes in [&h.root_bytes, &h.a_bytes, &h.b_bytes] {
        honest_node.store.insert(bytes.clone());
    }
    honest_node.store.share(KEYRING, h.root);
    let report = a
        .fetch_from(&honest_node, Request::new(h.root, TraversalSpec::default()))
        .unwrap();
    assert_eq!(report.received, 3);
    assert_eq!(a.store.len(), 3);
}

#[test]
fn a_node_that_does_not_hash_to_its_cid_is_refused_and_not_stored() {
    let h = honest();
    let root_bytes = h.root_bytes.clone();
    let forged = DagNodeValue::raw(b"a, forged".to_vec(), vec![])
        .encode()
        .unwrap();
    let forged_cid = keyring_core::hash::digest(&forged);
    let (a, liar) = liar_pair(
        move |_| items(&[Item::Data(root_bytes.clone()), Item::Data(forged.clone())]),
        false,
    );
    let out = a.fetch_from(&liar, Request::new(h.root, TraversalSpec::default()));
    assert!(
        matches!(out, Err(FetchError::Verify(VerifyError::HashMismatch { expected })) if expected != forged_cid),
        "{out:?}"
    );
    assert!(!a.store.contains(&forged_cid));
}

#[test]
fn an_item_past_the_end_of_the_traversal_is_refused() {
    let h = honest();
    let (r, x, y) = (h.root_bytes.clone(), h.a_bytes.clone(), h.b_bytes.clone());
    let (a, liar) = liar_pair(
        move |_| {
            items(&[
                Item::Data(r.clone()),
                Item::Data(x.clone()),
                Item::Data(y.clone()),
                Item::Missing,
            ])
        },
        false,
    );
    let out = a.fetch_from(&liar, Request::new(h.root, TraversalSpec::default()));
    assert_eq!(out, Err(FetchError::Verify(VerifyError::UnexpectedItem)));
}

#[test]
fn a_skip_the_request_did_not_allow_is_refused() {
    let h = honest();
    let r = h.root_bytes.clone();
    let (a, liar) = liar_pair(
        move |_| items(&[Item::Data(r.clone()), Item::Skipped(2)]),
        false,
    );
    let out = a.fetch_from(&liar, Request::new(h.root, TraversalSpec::default()));
    assert!(
        matches!(
            out,
            Err(FetchError::Verify(VerifyError::UnrequestedSkip { .. }))
        ),
        "{out:?}"
    );
}

#[test]
fn an_over_budget_item_is_refused_before_its_bytes_arrive() {
    let h = honest();
    let (a, liar) = liar_pair(
        |_| {
            let mut out = vec![Status::Ok as u8, 0];
            // A data item announcing more than the largest node.
            let mut len = (MAX_ITEM_BYTES + 1) as u64;
            while len >= 0x80 {
                out.push((len as u8) | 0x80);
                len >>= 7;
            }
            out.push(len as u8);
            out.extend(std::iter::repeat_n(0u8, 1000));
            out
        },
        false,
    );
    let out = a.fetch_from(&liar, Request::new(h.root, TraversalSpec::default()));
    assert!(
        matches!(
            out,
            Err(FetchError::Codec(keyring_core::dag::CodecError::TooLarge {
                what: "item",
                ..
            }))
        ),
        "{out:?}"
    );
    assert!(a.store.is_empty());
}

#[test]
fn a_stream_cut_short_is_refused() {
    let h = honest();
    let r = h.root_bytes.clone();
    let (a, liar) = liar_pair(move |_| items(&[Item::Data(r.clone())]), false);
    let out = a.fetch_from(&liar, Request::new(h.root, TraversalSpec::default()));
    assert!(
        matches!(out, Err(FetchError::Verify(VerifyError::Truncated { .. }))),
        "{out:?}"
    );
}

#[test]
fn a_trickling_provider_is_cut_off_at_the_byte_rate_deadline() {
    let h = honest();
    let r = h.root_bytes.clone();
    let (a, liar) = liar_pair(move |_| items(&[Item::Data(r.clone())]), true);
    let started = std::time::Instant::now();
    let out = a.fetch_within(
        &liar,
        Request::new(h.root, TraversalSpec::default()),
        Duration::from_secs(30),
    );
    assert_eq!(out, Err(FetchError::TooSlow));
    // Grace (2 s) plus a few bytes at 64 KiB/s: well before the caller's 30 s.
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn a_provider_serves_a_peer_a_bounded_number_of_syncs_at_once() {
    let limits = DagLimits {
        serves_per_peer: 2,
        // Tiny chunks so a big response holds its slot while the test looks.
        chunk_bytes: 256,
        chunks_in_flight: 1,
        ..DagLimits::default()
    };
    let (a, b) = pair_of(
        dag_node_with(DagLimits::default(), None),
        dag_node_with(limits, None),
    );
    let cids = chain(&b.store, None, 3000);
    let head = *cids.last().unwrap();
    b.store.share(KEYRING, head);
    let opener = a.node.mesh.opener();
    let to = target(b.node.key, Some(b.node.addr()));
    let dag = a.dag.clone();
    let outcomes = a.node.mesh.runtime().block_on(async move {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        let mut all = tokio::task::JoinSet::new();
        for _ in 0..6 {
            let (dag, opener) = (dag.clone(), opener.clone());
            all.spawn(async move {
                dag.fetch(
                    &opener,
                    to,
                    Request::new(head, TraversalSpec::default()),
                    deadline,
                )
                .await
            });
        }
        let mut out = Vec::new();
        while let Some(r) = all.join_next().await {
            out.push(r.unwrap());
        }
        out
    });
    let busy = outcomes
        .iter()
        .filter(|o| **o == Err(FetchError::Busy))
        .count();
    let served = outcomes.iter().filter(|o| o.is_ok()).count();
    assert!(busy >= 1, "{outcomes:?}");
    assert!(served >= 2, "{outcomes:?}");
    assert_eq!(busy + served, 6, "{outcomes:?}");
    assert!(eventually(T, || b.dag.serving(&a.node.key) == 0));
    // Served again once the slots are free.
    assert!(a
        .fetch_from(&b, Request::new(head, TraversalSpec::default()))
        .is_ok());
}

#[test]
fn a_malformed_or_oversize_request_is_answered_bad_request() {
    let (a, b) = dag_pair();
    let to = target(b.node.key, Some(b.node.addr()));
    let opener = a.node.mesh.opener();
    let answers = a.node.mesh.runtime().block_on(async move {
        let deadline = tokio::time::Instant::now() + T;
        let link = opener.link(to, deadline).await.unwrap();
        let mut answers = Vec::new();
        for wire in [
            // An announced length over the limit (refused before its bytes).
            ((session::MAX_REQUEST_BYTES + 1) as u32)
                .to_be_bytes()
                .to_vec(),
            // A well-framed request of garbage.
            vec![0, 0, 0, 3, 9, 9, 9],
        ] {
            let (mut send, mut recv) = link.open_bi(PROTOCOL_DAG).await.unwrap();
            send.write(vec![bytes::Bytes::from(wire)]).await.unwrap();
            send.finish();
            let by = tokio::time::Instant::now() + T;
            answers.push(recv.read_chunk(1, by).await.unwrap().unwrap()[0]);
        }
        answers
    });
    assert_eq!(answers, vec![Status::BadRequest as u8; 2]);
    // And it keeps serving honest requests.
    let cids = chain(&b.store, None, 2);
    b.store.share(KEYRING, cids[1]);
    assert_eq!(
        a.fetch_from(&b, Request::new(cids[1], TraversalSpec::default()))
            .unwrap()
            .received,
        2
    );
}

#[test]
fn a_response_past_the_providers_visit_limit_is_reset_and_the_provider_keeps_serving() {
    let limits = DagLimits {
        max_visits: 100,
        ..DagLimits::default()
    };
    let (a, b) = pair_of(
        dag_node_with(DagLimits::default(), None),
        dag_node_with(limits, None),
    );
    let big = chain(&b.store, None, 150);
    let small = chain(&b.store, None, 50);
    b.store.share(KEYRING, big[149]);
    b.store.share(KEYRING, small[49]);
    assert_eq!(
        a.fetch_from(&b, Request::new(big[149], TraversalSpec::default())),
        Err(FetchError::Stopped)
    );
    assert_eq!(
        a.fetch_from(&b, Request::new(small[49], TraversalSpec::default()))
            .unwrap()
            .received,
        50
    );
}
