//! Feed ingest laws: any delivery order (with duplicates) converges to the
//! same chain, and the forks found do not depend on the order.

use keyring_core::feed::{Content, Entry, FeedBook, FeedId, Status};
use keyring_core::identity::KeyPair;
use proptest::prelude::*;

const RING: [u8; 32] = [9; 32];

fn key(n: u8) -> KeyPair {
    KeyPair::from_seed(&[n; 32])
}

fn id(author: &KeyPair) -> FeedId {
    FeedId {
        keyring: RING,
        author: author.public_key(),
    }
}

/// A feed of `prefix` entries that then forks into two branches of
/// `a` and `b` entries (no fork when either is 0).
fn branches(author: &KeyPair, prefix: usize, a: usize, b: usize) -> (Vec<Entry>, Vec<Entry>) {
    let build = |tag: &str, n: usize| {
        let mut book = FeedBook::default();
        (0..prefix + n)
            .map(|i| {
                let text = if i < prefix {
                    format!("common {i}")
                } else {
                    format!("{tag} {i}")
                };
                book.append(
                    author,
                    RING,
                    1_000 + i as u64,
                    "text/plain".into(),
                    Content::Inline(text.into_bytes()),
                )
                .unwrap()
                .0
            })
            .collect::<Vec<_>>()
    };
    (build("a", a), build("b", b))
}

/// Delivers `entries` in the order given by `order` (indices, repeats allowed).
fn deliver(entries: &[Entry], order: &[usize]) -> (FeedBook, Vec<Entry>, Vec<u64>) {
    let mut book = FeedBook::default();
    let (mut chained, mut forks) = (vec![], vec![]);
    for &i in order {
        let out = book.ingest(entries[i % entries.len()].clone()).unwrap();
        chained.extend(out.chained);
        forks.extend(out.forks);
    }
    forks.sort_unstable();
    (book, chained, forks)
}

fn shuffled(n: usize, seed: u64, dups: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    order
        .extend((0..dups).map(|i| (seed as usize).wrapping_mul(31).wrapping_add(i * 7) % n.max(1)));
    // Fisher-Yates with a tiny LCG: deterministic for a given seed.
    let mut s = seed | 1;
    for i in (1..order.len()).rev() {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        order.swap(i, (s >> 33) as usize % (i + 1));
    }
    order
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Law: ingesting a feed in any order, with duplicates, chains every entry
    /// exactly once, in sequence order, to the same head; nothing is left
    /// waiting and no fork is reported.
    #[test]
    fn any_delivery_order_converges_to_the_same_chain(
        n in 1usize..40, seed in any::<u64>(), dups in 0usize..20,
    ) {
        let author = key(1);
        let (feed, _) = branches(&author, n, 0, 0);
        let order = shuffled(n, seed, if n > 0 { dups } else { 0 });
        let (book, chained, forks) = deliver(&feed, &order);
        prop_assert_eq!(chained, feed.clone());
        prop_assert!(forks.is_empty());
        prop_assert_eq!(book.head(&id(&author)), Some((n as u64, *feed[n - 1].hash())));
        prop_assert_eq!(book.waiting(&id(&author)), (0, 0));
        prop_assert_eq!(book.waiting_bytes(), 0);
    }

    /// Law: the forks found are the same for every delivery order: each
    /// position where both branches have an entry. The chain is one branch,
    /// never a mix, and always holds the common prefix.
    #[test]
    fn fork_detection_is_order_independent(
        prefix in 0usize..8, a in 0usize..6, b in 0usize..6,
        seed1 in any::<u64>(), seed2 in any::<u64>(), dups in 0usize..10,
    ) {
        prop_assume!(prefix + a > 0 && prefix + b > 0);
        let author = key(2);
        let (left, right) = branches(&author, prefix, a, b);
        let mut all = left.clone();
        all.extend(right[prefix..].iter().cloned());
        let expected: Vec<u64> = if a.min(b) == 0 {
            vec![]
        } else {
            (prefix as u64 + 1..=(prefix + a.min(b)) as u64).collect()
        };
        for seed in [seed1, seed2] {
            let (book, chained, forks) = deliver(&all, &shuffled(all.len(), seed, dups));
            prop_assert_eq!(&forks, &expected);
            prop_assert_eq!(book.forks(&id(&author)), expected.clone());
            let head = book.head(&id(&author)).unwrap().0 as usize;
            prop_assert!(head >= prefix);
            prop_assert_eq!(chained.len(), head);
            let branch = if head > prefix && left.get(prefix) != Some(&chained[prefix]) { &right } else { &left };
            prop_assert_eq!(&chained[..], &branch[..head]);
        }
    }
}

#[test]
fn a_late_predecessor_promotes_a_long_run_of_waiting_entries() {
    let author = key(3);
    let (feed, _) = branches(&author, 500, 0, 0);
    let mut book = FeedBook::default();
    for e in feed[1..].iter().rev() {
        assert_eq!(book.ingest(e.clone()).unwrap().status, Status::Held);
    }
    let out = book.ingest(feed[0].clone()).unwrap();
    assert_eq!(out.chained.len(), 500);
    assert_eq!(book.waiting_bytes(), 0);
}
