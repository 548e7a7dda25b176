//! Blob transfer between two meshes on loopback: a multi-MiB blob arrives
//! whole; a member guessing a cid shared only in another keyring gets the
//! same NOT_FOUND as for an absent cid; malformed requests are refused and
//! honest requests on the same link still served.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use keyring_core::identity::KeyPair;
use keyring_core::membership::PublicKey;
use keyring_core::transfer::{Item, NOT_FOUND};
use keyring_core::verified::GroupRanges;
use keyring_net::protocols::blobs::download::{download, BlobSink, Options, Provider};
use keyring_net::protocols::blobs::memory::MemoryStore;
use keyring_net::protocols::blobs::{get, Blobs, LinkProvider, PROTOCOL_BLOBS};
use keyring_net::{Limits, Protocols, Target};

use crate::support::*;

const OTHER_RING: PublicKey = [43; 32];

fn blob_node(store: &MemoryStore) -> Node {
    let mut p = Protocols::new();
    p.add(Blobs::new(Arc::new(store.clone()), Duration::from_secs(5)))
        .unwrap();
    node_at(
        KeyPair::generate().unwrap(),
        "127.0.0.1:0".parse().unwrap(),
        Limits::default(),
        p,
    )
    .unwrap()
}

/// A provider node P and a fetching node Q, members of KEYRING.
fn pair() -> (Node, MemoryStore, Node, MemoryStore) {
    let (ps, qs) = (MemoryStore::new(), MemoryStore::new());
    let (p, q) = (blob_node(&ps), blob_node(&qs));
    let keys = [p.key, q.key];
    p.mesh.set_members(KEYRING, members(&keys));
    q.mesh.set_members(KEYRING, members(&keys));
    (p, ps, q, qs)
}

fn data(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| ((i * 13 + i / 509) as u8) ^ seed)
        .collect()
}

#[test]
fn a_multi_mib_blob_crosses_the_mesh_verified() {
    let (p, ps, q, qs) = pair();
    let blob = data(12 << 20, 1);
    let cid = ps.insert(blob.clone());
    ps.share(KEYRING, cid);
    let provider = LinkProvider::new(
        q.mesh.opener(),
        Target {
            keyring: KEYRING,
            peer: p.key,
            addr: Some(p.addr()),
        },
        T,
    );
    let sink: Arc<dyn BlobSink> = Arc::new(qs.clone());
    let progress = Arc::new(Mutex::new(0usize));
    let seen = progress.clone();
    let out = q.mesh.runtime().block_on(download(
        vec![cid],
        vec![Arc::new(provider) as Arc<dyn Provider>],
        sink,
        Options::default(),
        Box::new(move |_| *seen.lock().unwrap() += 1),
    ));
    let done = out.unwrap();
    assert_eq!(qs.get(&cid).unwrap(), blob);
    assert_eq!(done.bytes_done, blob.len() as u64);
    assert!(*progress.lock().unwrap() >= 1);
}

/// The raw answer to `items` from `p` over Q's link.
fn raw_answer(q: &Node, p: &Node, items: Vec<Item>) -> Vec<u8> {
    let opener = q.mesh.opener();
    let to = Target {
        keyring: KEYRING,
        peer: p.key,
        addr: Some(p.addr()),
    };
    q.mesh.runtime().block_on(async move {
        let link = opener
            .link(to, tokio::time::Instant::now() + T)
            .await
            .unwrap();
        let mut answer = get(&link, &items).await.unwrap();
        let mut out = Vec::new();
        while let Some(chunk) = answer.recv().await {
            out.extend_from_slice(&chunk.unwrap());
        }
        out
    })
}

#[test]
fn a_member_guessing_a_cid_of_another_keyring_learns_nothing() {
    let (p, ps, q, _) = pair();
    // P is also in OTHER_RING, where it shares `secret`; Q is not.
    let secret = ps.insert(data(40_000, 2));
    ps.share(OTHER_RING, secret);
    let absent = [9u8; 32];
    let ask = |cid| Item {
        cid,
        proof: true,
        ranges: GroupRanges::all(),
    };
    let for_secret = raw_answer(&q, &p, vec![ask(secret)]);
    let for_absent = raw_answer(&q, &p, vec![ask(absent)]);
    assert_eq!(for_secret, vec![NOT_FOUND]);
    assert_eq!(for_secret, for_absent, "the answers are the same bytes");
    // Once shared into the common keyring, the same request is served.
    ps.share(KEYRING, secret);
    let served = raw_answer(&q, &p, vec![ask(secret)]);
    assert!(served.len() > 40_000);
}

#[test]
fn a_malformed_request_is_refused_and_the_link_still_serves() {
    let (p, ps, q, _) = pair();
    let cid = ps.insert(data(1000, 3));
    ps.share(KEYRING, cid);
    let opener = q.mesh.opener();
    let to = Target {
        keyring: KEYRING,
        peer: p.key,
        addr: Some(p.addr()),
    };
    let refused = q.mesh.runtime().block_on(async move {
        let link = opener
            .link(to, tokio::time::Instant::now() + T)
            .await
            .unwrap();
        // A Request frame named "get" whose body is not a GET.
        let garbage = b"\x00\x05not-a-get-request".to_vec();
        let prefix =
            keyring_core::wire::frame::message_prefix(false, "get", garbage.len()).unwrap();
        let (mut send, mut recv) = link.open_bi(PROTOCOL_BLOBS).await.unwrap();
        send.write(vec![Bytes::from(prefix), Bytes::from(garbage)])
            .await
            .unwrap();
        send.finish();
        let mut got = Vec::new();
        let outcome = loop {
            match recv.read_raw(1 << 16).await {
                Ok(Some(b)) => got.extend_from_slice(&b),
                Ok(None) => break Ok(got),
                Err(e) => break Err(e),
            }
        };
        outcome
    });
    assert!(refused.is_err(), "the stream is reset: {refused:?}");
    let ok = raw_answer(
        &q,
        &p,
        vec![Item {
            cid,
            proof: true,
            ranges: GroupRanges::all(),
        }],
    );
    assert_eq!(ok.len(), 1 + 8 + 1000 + 8);
}

/// Throughput of the protocol and the downloader alone (memory to memory,
/// no disk, no BEAM): `cargo test --release --test transfer -- --ignored
/// --nocapture throughput`.
#[test]
#[ignore]
fn throughput_memory_to_memory() {
    let (p, ps, q, qs) = pair();
    let blob = data(256 << 20, 1);
    let cid = ps.insert(blob);
    ps.share(KEYRING, cid);
    let provider = LinkProvider::new(
        q.mesh.opener(),
        Target {
            keyring: KEYRING,
            peer: p.key,
            addr: Some(p.addr()),
        },
        T,
    );
    let _ = qs;
    let rounds = 4;
    let t0 = std::time::Instant::now();
    for _ in 0..rounds {
        let sink: Arc<dyn BlobSink> = Arc::new(MemoryStore::new());
        let out = q.mesh.runtime().block_on(download(
            vec![cid],
            vec![Arc::new(provider.clone()) as Arc<dyn Provider>],
            sink,
            Options::default(),
            Box::new(|_| {}),
        ));
        out.unwrap();
    }
    let secs = t0.elapsed().as_secs_f64() / rounds as f64;
    println!("256 MiB memory to memory: {:.0} MiB/s", 256.0 / secs);
}
