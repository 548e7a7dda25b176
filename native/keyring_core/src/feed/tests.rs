use super::*;
use crate::identity::KeyPair;

const T0: u64 = 1_700_000_000_000;
const RING: [u8; 32] = [7; 32];

fn author() -> KeyPair {
    KeyPair::generate().unwrap()
}

/// `n` entries of one feed, built by a book of their own.
fn feed(author: &KeyPair, n: usize, tag: &str) -> Vec<Entry> {
    let mut book = FeedBook::default();
    (0..n)
        .map(|i| {
            let content = Content::Inline(format!("{tag} {i}").into_bytes());
            let (e, _) = book
                .append(author, RING, T0 + i as u64, "text/plain".into(), content)
                .unwrap();
            e
        })
        .collect()
}

fn id(author: &KeyPair) -> FeedId {
    FeedId {
        keyring: RING,
        author: author.public_key(),
    }
}

fn seqs(entries: &[Entry]) -> Vec<u64> {
    entries.iter().map(Entry::seq).collect()
}

#[test]
fn an_entry_round_trips_through_its_canonical_encoding() {
    let a = author();
    for e in feed(&a, 3, "x") {
        let bytes = e.encode();
        assert_eq!(bytes.len(), e.encoded_len());
        let back = Entry::decode(&bytes).unwrap();
        assert_eq!(back, e);
        assert_eq!(back.encode(), bytes);
        back.verify().unwrap();
    }
    let blob = EntryBody {
        keyring: RING,
        author: a.public_key(),
        seq: 1,
        prev: [0; 32],
        timestamp_ms: T0,
        content_type: "image/png".into(),
        content: Content::Blob {
            cid: [3; 32],
            size: 1 << 40,
        },
    };
    let e = Entry::sign(blob, &a).unwrap();
    assert_eq!(Entry::decode(&e.encode()).unwrap(), e);
}

#[test]
fn appended_entries_form_a_hash_chain() {
    let a = author();
    let entries = feed(&a, 4, "x");
    assert_eq!(seqs(&entries), vec![1, 2, 3, 4]);
    assert_eq!(entries[0].prev(), &[0; 32]);
    for w in entries.windows(2) {
        assert_eq!(w[1].prev(), w[0].hash());
    }
}

#[test]
fn an_entry_signed_by_the_wrong_key_is_refused() {
    let (a, mallory) = (author(), author());
    let mut body = feed(&a, 1, "x")[0].body().clone();
    assert_eq!(
        Entry::sign(body.clone(), &mallory),
        Err(FeedError::NotTheAuthor)
    );
    // Mallory signs an entry and relabels it as Alice's.
    body.author = mallory.public_key();
    let mut bytes = Entry::sign(body, &mallory).unwrap().encode();
    bytes[33..65].copy_from_slice(&a.public_key());
    let forged = Entry::decode(&bytes).unwrap();
    let mut book = FeedBook::default();
    assert_eq!(book.ingest(forged), Err(FeedError::BadSignature));
    assert_eq!(book.head(&id(&a)), None);
}

#[test]
fn an_entry_from_the_future_waits_and_is_promoted_when_the_gap_fills() {
    let a = author();
    let entries = feed(&a, 3, "x");
    let mut book = FeedBook::default();
    let third = book.ingest(entries[2].clone()).unwrap();
    assert_eq!(third.status, Status::Held);
    let second = book.ingest(entries[1].clone()).unwrap();
    assert_eq!(second.status, Status::Held);
    assert_eq!(book.waiting(&id(&a)).0, 2);
    assert_eq!(book.head(&id(&a)).map(|h| h.0), Some(0));
    let first = book.ingest(entries[0].clone()).unwrap();
    assert_eq!(first.status, Status::Chained);
    assert_eq!(seqs(&first.chained), vec![1, 2, 3]);
    assert_eq!(book.head(&id(&a)), Some((3, *entries[2].hash())));
    assert_eq!(book.waiting(&id(&a)), (0, 0));
    assert_eq!(book.waiting_bytes(), 0);
}

#[test]
fn a_fork_is_reported_and_never_merged() {
    let a = author();
    let (ours, theirs) = (feed(&a, 3, "ours"), feed(&a, 3, "theirs"));
    let mut book = FeedBook::default();
    for e in &ours {
        book.ingest(e.clone()).unwrap();
    }
    let fork = book.ingest(theirs[1].clone()).unwrap();
    // theirs[1] differs at seq 2, and its prev (theirs[0]) differs at seq 1.
    assert_eq!(fork.status, Status::Conflicting);
    assert_eq!(fork.forks, vec![1, 2]);
    assert!(fork.chained.is_empty());
    assert_eq!(book.head(&id(&a)), Some((3, *ours[2].hash())));
    // Seeing the fork again reports nothing new; the other branch never chains.
    assert_eq!(book.ingest(theirs[2].clone()).unwrap().forks, vec![3]);
    assert!(book.ingest(theirs[0].clone()).unwrap().forks.is_empty());
    assert_eq!(
        book.ingest(theirs[1].clone()).unwrap().status,
        Status::Duplicate
    );
    assert_eq!(book.forks(&id(&a)), vec![1, 2, 3]);
    assert_eq!(book.hash_at(&id(&a), 2), Some(*ours[1].hash()));
}

#[test]
fn a_successor_that_does_not_link_proves_a_fork_at_its_predecessor() {
    let a = author();
    let (ours, theirs) = (feed(&a, 1, "ours"), feed(&a, 2, "theirs"));
    let mut book = FeedBook::default();
    book.ingest(ours[0].clone()).unwrap();
    let out = book.ingest(theirs[1].clone()).unwrap();
    assert_eq!(out.status, Status::Conflicting);
    assert_eq!(out.forks, vec![1]);
    assert_eq!(book.head(&id(&a)).unwrap().0, 1);
}

#[test]
fn duplicates_change_nothing() {
    let a = author();
    let entries = feed(&a, 2, "x");
    let mut book = FeedBook::default();
    book.ingest(entries[1].clone()).unwrap();
    assert_eq!(
        book.ingest(entries[1].clone()).unwrap().status,
        Status::Duplicate
    );
    book.ingest(entries[0].clone()).unwrap();
    assert_eq!(
        book.ingest(entries[0].clone()).unwrap().status,
        Status::Duplicate
    );
    assert_eq!(book.head(&id(&a)).unwrap().0, 2);
}

#[test]
fn waiting_entries_are_bounded() {
    let a = author();
    let entries = feed(&a, 6, "x");
    let limits = Limits {
        max_ahead: 4,
        max_waiting_per_feed: 2,
        ..Limits::default()
    };
    let mut book = FeedBook::new(limits);
    assert_eq!(
        book.ingest(entries[5].clone()),
        Err(FeedError::TooFarAhead { seq: 6, head: 0 })
    );
    book.ingest(entries[1].clone()).unwrap();
    book.ingest(entries[2].clone()).unwrap();
    assert_eq!(
        book.ingest(entries[3].clone()),
        Err(FeedError::HeldFull { seq: 4 })
    );
    let bytes = entries[1].encoded_len() + entries[2].encoded_len();
    assert_eq!(book.waiting(&id(&a)), (2, bytes));

    let mut tight = FeedBook::new(Limits {
        max_waiting_bytes: entries[1].encoded_len(),
        ..Limits::default()
    });
    tight.ingest(entries[1].clone()).unwrap();
    assert_eq!(
        tight.ingest(entries[2].clone()),
        Err(FeedError::HeldFull { seq: 3 })
    );
    tight.ingest(entries[0].clone()).unwrap();
    assert_eq!(tight.waiting_bytes(), 0);
    tight.ingest(entries[3].clone()).unwrap();
}

#[test]
fn loading_checks_the_chain_but_not_signatures() {
    let a = author();
    let entries = feed(&a, 3, "x");
    let mut book = FeedBook::default();
    book.load(&entries[0]).unwrap();
    assert_eq!(book.load(&entries[2]), Err(FeedError::NotAChain { seq: 3 }));
    book.load(&entries[1]).unwrap();
    book.load(&entries[2]).unwrap();
    assert_eq!(book.heads(&RING), vec![(a.public_key(), 3)]);
    let (next, out) = book
        .append(&a, RING, T0, "text/plain".into(), Content::Inline(vec![]))
        .unwrap();
    assert_eq!((next.seq(), next.prev()), (4, entries[2].hash()));
    assert_eq!(out.status, Status::Chained);
}

#[test]
fn malformed_entries_are_refused_with_the_rule_they_break() {
    let a = author();
    let good = feed(&a, 2, "x")[1].encode();
    for cut in 0..good.len() {
        assert!(Entry::decode(&good[..cut]).is_err(), "prefix {cut}");
    }
    let mut trailing = good.clone();
    trailing.push(0);
    assert_eq!(
        Entry::decode(&trailing),
        Err(FeedError::Malformed("trailing bytes"))
    );
    let mut version = good.clone();
    version[0] = 9;
    assert_eq!(
        Entry::decode(&version),
        Err(FeedError::UnsupportedVersion(9))
    );
    let mut zero_prev = good.clone();
    zero_prev[73..105].fill(0);
    assert!(matches!(
        Entry::decode(&zero_prev),
        Err(FeedError::Malformed(_))
    ));
    for bad in ["", "Text/Plain", "a b", &"x".repeat(65)] {
        assert!(!valid_content_type(bad), "{bad:?}");
    }
    let body = EntryBody {
        keyring: RING,
        author: a.public_key(),
        seq: 1,
        prev: [0; 32],
        timestamp_ms: T0,
        content_type: "x".into(),
        content: Content::Inline(vec![0; MAX_INLINE + 1]),
    };
    assert!(Entry::sign(body, &a).is_err());
}
