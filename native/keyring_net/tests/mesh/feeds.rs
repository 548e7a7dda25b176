//! Feed replication (protocol 5) between two meshes on loopback: pushes
//! reach the sink, pulls page through thousands of entries, and the fences
//! (malformed and oversize messages, push rate) hold while honest traffic
//! still flows.

use std::collections::HashMap;
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use keyring_core::feed::wire::Message;
use keyring_core::feed::{Content, FeedBook, Limits as FeedBookLimits};
use keyring_core::identity::KeyPair;
use keyring_core::membership::PublicKey;
use keyring_core::reconcile::framing::encode_frame;
use keyring_net::protocols::feeds::{FeedLimits, FeedSink, FeedSource, Feeds, PROTOCOL_FEEDS};
use keyring_net::{Limits, Protocols};

use crate::support::*;

/// Entries by (author, seq), refs as bytes.
#[derive(Default)]
struct MemFeeds {
    entries: Mutex<HashMap<PublicKey, Vec<Vec<u8>>>>,
}

impl FeedSource for MemFeeds {
    fn heads(&self, _keyring: &PublicKey) -> Result<Vec<(PublicKey, u64)>, String> {
        let e = self.entries.lock().unwrap();
        Ok(e.iter().map(|(a, list)| (*a, list.len() as u64)).collect())
    }

    fn entries_after(
        &self,
        _keyring: &PublicKey,
        author: &PublicKey,
        after: u64,
        limit: usize,
    ) -> Result<Vec<Vec<u8>>, String> {
        let e = self.entries.lock().unwrap();
        Ok(e.get(author)
            .map(|list| {
                list.iter()
                    .skip(after as usize)
                    .take(limit)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default())
    }

    fn refs(&self, _keyring: &PublicKey) -> Result<Vec<Vec<u8>>, String> {
        Ok(vec![b"a ref".to_vec()])
    }
}

struct ChannelFeedSink(Mutex<mpsc::Sender<(Vec<Bytes>, Vec<Bytes>)>>);

impl FeedSink for ChannelFeedSink {
    fn pushed(&self, _k: PublicKey, _p: PublicKey, entries: Vec<Bytes>, refs: Vec<Bytes>) {
        let _ = self.0.lock().unwrap().send((entries, refs));
    }
}

struct FNode {
    node: Node,
    feeds: Arc<Feeds>,
    source: Arc<MemFeeds>,
    pushed: mpsc::Receiver<(Vec<Bytes>, Vec<Bytes>)>,
}

fn fnode(limits: FeedLimits) -> FNode {
    let source = Arc::new(MemFeeds::default());
    let (tx, pushed) = mpsc::channel();
    let feeds = Feeds::new(
        source.clone(),
        Arc::new(ChannelFeedSink(Mutex::new(tx))),
        limits,
        &Limits::default(),
    );
    let mut p = Protocols::new();
    p.add(feeds.clone()).unwrap();
    let node = node_at(
        KeyPair::generate().unwrap(),
        "127.0.0.1:0".parse().unwrap(),
        Limits::default(),
        p,
    )
    .unwrap();
    FNode {
        node,
        feeds,
        source,
        pushed,
    }
}

fn fpair(b_limits: FeedLimits) -> (FNode, FNode) {
    let (a, b) = (fnode(FeedLimits::default()), fnode(b_limits));
    let keys = [a.node.key, b.node.key];
    a.node.mesh.set_members(KEYRING, members(&keys));
    b.node.mesh.set_members(KEYRING, members(&keys));
    (a, b)
}

/// `n` signed entries of a fresh author.
fn signed(n: usize) -> (PublicKey, Vec<Vec<u8>>) {
    let kp = KeyPair::generate().unwrap();
    let mut book = FeedBook::new(FeedBookLimits::default());
    let entries = (0..n)
        .map(|i| {
            book.append(
                &kp,
                KEYRING,
                i as u64,
                "text/plain".into(),
                Content::Inline(format!("entry {i}").into_bytes()),
            )
            .unwrap()
            .0
            .encode()
        })
        .collect();
    (kp.public_key(), entries)
}

fn link_up(a: &FNode, b: &FNode) {
    a.node.call(b.node.key, Some(b.node.addr()), b"hi").unwrap();
}

#[test]
fn a_pull_pages_through_five_thousand_entries_from_the_heads_on() {
    let (a, b) = fpair(FeedLimits {
        batch: 1000,
        ..FeedLimits::default()
    });
    let (author, entries) = signed(5000);
    let (other, few) = signed(3);
    b.source
        .entries
        .lock()
        .unwrap()
        .insert(author, entries.clone());
    b.source.entries.lock().unwrap().insert(other, few.clone());
    let (feeds, opener) = (a.feeds.clone(), a.node.mesh.opener());
    let to = target(b.node.key, Some(b.node.addr()));
    // A holds the first 1,200 of `author` and wants only that author.
    let pulled = a
        .node
        .mesh
        .runtime()
        .block_on(async move {
            let deadline = tokio::time::Instant::now() + T;
            feeds
                .pull(
                    &opener,
                    to,
                    Some(vec![author]),
                    vec![(author, 1200)],
                    deadline,
                )
                .await
        })
        .unwrap();
    assert_eq!(pulled.round_trips, 4);
    let got: Vec<Vec<u8>> = pulled.entries.iter().map(|e| e.to_vec()).collect();
    assert_eq!(got, entries[1200..].to_vec());
    assert_eq!(pulled.refs.len(), 1);
}

#[test]
fn a_push_reaches_every_linked_member_at_once() {
    let (a, b) = fpair(FeedLimits::default());
    link_up(&a, &b);
    let (_, entries) = signed(3);
    let sent = a
        .feeds
        .push(&a.node.mesh.opener(), KEYRING, &entries, &[b"ref".to_vec()]);
    assert_eq!(sent, 1);
    let (got, refs) = b.pushed.recv_timeout(T).unwrap();
    assert_eq!(got.iter().map(|e| e.to_vec()).collect::<Vec<_>>(), entries);
    assert_eq!(refs.len(), 1);
}

#[test]
fn malformed_and_oversize_pushes_are_stopped_and_honest_pushes_still_arrive() {
    let (a, b) = fpair(FeedLimits {
        max_message: 4096,
        ..FeedLimits::default()
    });
    link_up(&a, &b);
    let opener = a.node.mesh.opener();
    let to = target(b.node.key, Some(b.node.addr()));
    let (_, entries) = signed(1);
    a.node.mesh.runtime().block_on(async move {
        let link = opener
            .link(to, tokio::time::Instant::now() + T)
            .await
            .unwrap();
        for wire in [
            // Not a push.
            encode_frame(&[9, 9, 9]),
            // A length over the receiver's limit, refused before its bytes.
            4097u32.to_be_bytes().to_vec(),
            // A push whose count is over the item limit.
            encode_frame(&[1, 0xff, 0xff, 0xff, 0xff]),
        ] {
            let mut send = link.open_uni(PROTOCOL_FEEDS).await.unwrap();
            let _ = send.write(vec![Bytes::from(wire)]).await;
            send.finish();
        }
        let honest = Message::Push {
            entries: vec![&entries[0]],
            refs: vec![],
        }
        .encode()
        .unwrap();
        let mut send = link.open_uni(PROTOCOL_FEEDS).await.unwrap();
        send.write(vec![Bytes::from(encode_frame(&honest))])
            .await
            .unwrap();
        send.finish();
    });
    let (got, _) = b.pushed.recv_timeout(T).unwrap();
    assert_eq!(got.len(), 1);
    // Nothing else was delivered.
    assert!(b.pushed.recv_timeout(Duration::from_millis(300)).is_err());
}

#[test]
fn pushes_beyond_the_rate_wait_their_turn_and_none_is_lost() {
    let (a, b) = fpair(FeedLimits {
        push_burst: 5,
        pushes_per_second: 50,
        ..FeedLimits::default()
    });
    link_up(&a, &b);
    let (_, entries) = signed(30);
    let started = std::time::Instant::now();
    for e in &entries {
        a.feeds
            .push(&a.node.mesh.opener(), KEYRING, std::slice::from_ref(e), &[]);
    }
    let mut got = 0;
    while got < 30 {
        got += b.pushed.recv_timeout(T).unwrap().0.len();
    }
    // 5 at once, then 25 at 50/s: at least ~0.4 s.
    assert!(
        started.elapsed() >= Duration::from_millis(350),
        "{:?}",
        started.elapsed()
    );
}
