//! Sharing into keyrings and pinning: the scoping rule and its bookkeeping.

mod support;

use keyring_core::hash::digest;
use keyring_store::{StoreError, Tag, TagScope, WriteOp, WriteOutcome, MAX_TAG_NAME};
use support::{blob, pin, share, Node};

#[test]
fn a_blob_is_shared_only_into_the_keyrings_it_was_shared_into() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::open(dir.path());
    let (a, b) = ([1u8; 32], [2u8; 32]);
    let shared = node.put_tagged(&blob(50_000, 1), vec![share(1, "report")]);
    let secret = node.put_tagged(b"b's secret", vec![share(2, "secret")]);
    let local = node.put(b"nobody's business");
    assert!(node.blobs().shared_in(&shared, &a).unwrap());
    assert!(!node.blobs().shared_in(&shared, &b).unwrap());
    // A member of A guessing the cid of B's content, or of unshared
    // content, learns nothing: the answer is the same as for a cid that
    // does not exist.
    assert!(!node.blobs().shared_in(&secret, &a).unwrap());
    assert!(!node.blobs().shared_in(&local, &a).unwrap());
    assert!(!node
        .blobs()
        .shared_in(&digest(b"no such blob"), &a)
        .unwrap());
    assert!(node.blobs().shared_in(&secret, &b).unwrap());
    assert_eq!(
        node.write(WriteOp::DeleteTag {
            tag: share(1, "report"),
            cid: None
        })
        .unwrap(),
        WriteOutcome::TagDeleted(true)
    );
    assert!(!node.blobs().shared_in(&shared, &a).unwrap());
}

#[test]
fn a_named_tag_moves_and_the_counts_follow() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::open(dir.path());
    let ring = [1u8; 32];
    let v1 = node.put(b"version 1");
    let v2 = node.put(b"version 2");
    node.tag(share(1, "latest"), v1);
    assert_eq!(
        node.write(WriteOp::SetTag {
            tag: share(1, "latest"),
            cid: v2
        })
        .unwrap(),
        WriteOutcome::TagSet(Some(v1))
    );
    assert!(!node.blobs().shared_in(&v1, &ring).unwrap());
    assert!(node.blobs().shared_in(&v2, &ring).unwrap());
    assert_eq!(
        node.blobs().tags(TagScope::Ring(ring), None, 10).unwrap(),
        vec![(b"latest".to_vec(), v2)]
    );
    let stats = node.blobs().stats().unwrap();
    assert_eq!((stats.shares, stats.pins), (1, 0));
}

#[test]
fn a_cid_stays_shared_while_any_of_its_tags_remains() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::open(dir.path());
    let ring = [1u8; 32];
    let cid = node.put(b"popular");
    node.tag(share(1, "one"), cid);
    node.tag(share(1, "two"), cid);
    node.tag(pin("mine"), cid);
    let untag = |tag: Tag, only| node.write(WriteOp::DeleteTag { tag, cid: only }).unwrap();
    // A conditional removal leaves a tag that names another cid alone.
    assert_eq!(
        untag(share(1, "one"), Some(digest(b"x"))),
        WriteOutcome::TagDeleted(false)
    );
    assert_eq!(
        untag(share(1, "one"), Some(cid)),
        WriteOutcome::TagDeleted(true)
    );
    assert!(node.blobs().shared_in(&cid, &ring).unwrap());
    assert_eq!(untag(share(1, "two"), None), WriteOutcome::TagDeleted(true));
    assert!(!node.blobs().shared_in(&cid, &ring).unwrap());
    assert!(node.blobs().is_protected(&cid).unwrap(), "still pinned");
    assert_eq!(untag(pin("mine"), None), WriteOutcome::TagDeleted(true));
    assert!(!node.blobs().is_protected(&cid).unwrap());
    assert_eq!(untag(pin("mine"), None), WriteOutcome::TagDeleted(false));
    let stats = node.blobs().stats().unwrap();
    assert_eq!((stats.shares, stats.pins), (0, 0));
}

#[test]
fn a_put_with_tags_is_shared_the_moment_it_is_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::open(dir.path());
    for len in [10, 100_000] {
        let cid = node.put_tagged(&blob(len, 2), vec![share(3, "x"), pin("y")]);
        assert!(node.blobs().shared_in(&cid, &[3; 32]).unwrap());
        assert!(node.blobs().is_protected(&cid).unwrap());
    }
}

#[test]
fn a_cid_can_be_shared_before_it_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::open(dir.path());
    let cid = digest(b"coming soon");
    node.tag(share(1, "soon"), cid);
    assert!(node.blobs().shared_in(&cid, &[1; 32]).unwrap());
    assert!(!node.blobs().has(&cid).unwrap());
    node.put(b"coming soon");
    assert!(node.blobs().has(&cid).unwrap());
}

#[test]
fn tags_list_in_name_order_by_page_and_scope() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::open(dir.path());
    for i in 0..25u8 {
        node.tag(share(1, &format!("n{i:02}")), digest(&[i]));
        node.tag(share(2, &format!("n{i:02}")), digest(&[i]));
    }
    node.tag(pin("p"), digest(b"p"));
    let mut seen = Vec::new();
    let mut after: Option<Vec<u8>> = None;
    loop {
        let page = node
            .blobs()
            .tags(TagScope::Ring([1; 32]), after.as_deref(), 10)
            .unwrap();
        if page.is_empty() {
            break;
        }
        after = page.last().map(|(n, _)| n.clone());
        seen.extend(page);
    }
    assert_eq!(seen.len(), 25);
    assert!(seen.windows(2).all(|w| w[0].0 < w[1].0));
    assert_eq!(
        node.blobs().tags(TagScope::Pins, None, 10).unwrap(),
        vec![(b"p".to_vec(), digest(b"p"))]
    );
}

#[test]
fn an_oversized_tag_name_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::open(dir.path());
    let tag = Tag::Pin {
        name: vec![b'x'; MAX_TAG_NAME + 1],
    };
    assert_eq!(
        node.write(WriteOp::SetTag {
            tag,
            cid: digest(b"")
        }),
        Err(StoreError::TooLarge("tag name"))
    );
}

#[test]
fn a_tag_without_a_name_is_named_after_its_cid() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::open(dir.path());
    let anonymous = || Tag::Share {
        ring: [4; 32],
        name: vec![],
    };
    // Before its cid is known (with a put) and after (on its own): one tag.
    let cid = node.put_tagged(&blob(30_000, 5), vec![anonymous()]);
    assert_eq!(
        node.write(WriteOp::SetTag {
            tag: anonymous(),
            cid
        })
        .unwrap(),
        WriteOutcome::TagSet(Some(cid))
    );
    assert_eq!(
        node.blobs()
            .tags(TagScope::Ring([4; 32]), None, 10)
            .unwrap(),
        vec![(cid.to_vec(), cid)]
    );
    assert_eq!(node.blobs().stats().unwrap().shares, 1);
    assert_eq!(
        node.write(WriteOp::DeleteTag {
            tag: anonymous(),
            cid: Some(cid)
        })
        .unwrap(),
        WriteOutcome::TagDeleted(true)
    );
    assert!(!node.blobs().shared_in(&cid, &[4; 32]).unwrap());
}
