//! Reconciliation against the negentropy crate (protocol v1): for the same
//! items and frame limit every message is byte for byte the crate's, in both
//! roles, and every pairing (ours or theirs on either side) finds exactly the
//! symmetric difference of the two sets.

use std::collections::BTreeSet;

use keyring_core::reconcile::{Config, Id, Initiator, Item, Items, Responder};
use negentropy::{Negentropy, NegentropyStorageVector};
use proptest::prelude::*;

/// Two sets: `common` items on both sides, `only_a` / `only_b` on one.
fn sets(
    seed: u64,
    common: usize,
    only_a: usize,
    only_b: usize,
    spread: u64,
) -> (Vec<Item>, Vec<Item>) {
    let item = |i: u64| {
        let h = blake3::hash(&[seed.to_be_bytes(), i.to_be_bytes()].concat());
        let ts = u64::from_be_bytes(h.as_bytes()[..8].try_into().unwrap()) % spread;
        Item {
            timestamp: ts,
            id: *h.as_bytes(),
        }
    };
    let mut a: Vec<Item> = (0..common as u64).map(item).collect();
    let mut b = a.clone();
    let base = common as u64;
    a.extend((base..base + only_a as u64).map(item));
    b.extend((base + only_a as u64..base + (only_a + only_b) as u64).map(item));
    (a, b)
}

fn theirs(items: &[Item]) -> NegentropyStorageVector {
    let mut s = NegentropyStorageVector::new();
    for i in items {
        s.insert(i.timestamp, negentropy::Id::from_byte_array(i.id))
            .unwrap();
    }
    s.seal().unwrap();
    s
}

fn expected(a: &[Item], b: &[Item]) -> (BTreeSet<Id>, BTreeSet<Id>) {
    let (sa, sb): (BTreeSet<Id>, BTreeSet<Id>) = (
        a.iter().map(|i| i.id).collect(),
        b.iter().map(|i| i.id).collect(),
    );
    (&sa - &sb, &sb - &sa)
}

fn config(frame_limit: usize) -> Config {
    Config {
        frame_limit,
        max_message: 64 << 20,
    }
}

/// Ours on both sides and theirs on both sides, in lock step: same bytes.
fn lock_step(a: &[Item], b: &[Item], frame_limit: usize) -> (BTreeSet<Id>, BTreeSet<Id>, usize) {
    let (our_a, our_b) = (
        Items::new(a.to_vec()).unwrap(),
        Items::new(b.to_vec()).unwrap(),
    );
    let (their_a, their_b) = (theirs(a), theirs(b));
    let mut ours_i = Initiator::new(&our_a, config(frame_limit)).unwrap();
    let ours_r = Responder::new(&our_b, config(frame_limit)).unwrap();
    let mut theirs_i = Negentropy::borrowed(&their_a, frame_limit as u64).unwrap();
    let mut theirs_r = Negentropy::borrowed(&their_b, frame_limit as u64).unwrap();

    let mut query = ours_i.initiate().unwrap();
    assert_eq!(query, theirs_i.initiate().unwrap(), "initial message");
    let (mut have, mut need, mut their_have, mut their_need) = (vec![], vec![], vec![], vec![]);
    let mut rounds = 0;
    loop {
        rounds += 1;
        assert!(rounds < 10_000);
        let answer = ours_r.respond(&query).unwrap();
        assert_eq!(
            answer,
            theirs_r.reconcile(&query).unwrap(),
            "answer {rounds}"
        );
        let next = ours_i.reconcile(&answer, &mut have, &mut need).unwrap();
        let their_next = theirs_i
            .reconcile_with_ids(&answer, &mut their_have, &mut their_need)
            .unwrap();
        assert_eq!(next, their_next, "query {}", rounds + 1);
        match next {
            Some(q) => query = q,
            None => break,
        }
    }
    let their_have: BTreeSet<Id> = their_have.iter().map(|i| i.to_bytes()).collect();
    let their_need: BTreeSet<Id> = their_need.iter().map(|i| i.to_bytes()).collect();
    let (have, need): (BTreeSet<Id>, BTreeSet<Id>) =
        (have.into_iter().collect(), need.into_iter().collect());
    assert_eq!((&have, &need), (&their_have, &their_need));
    (have, need, rounds)
}

/// Our initiator against their responder, and theirs against ours.
fn cross(a: &[Item], b: &[Item], frame_limit: usize) -> [(BTreeSet<Id>, BTreeSet<Id>); 2] {
    let (our_a, our_b) = (
        Items::new(a.to_vec()).unwrap(),
        Items::new(b.to_vec()).unwrap(),
    );
    let (their_a, their_b) = (theirs(a), theirs(b));

    let mut i = Initiator::new(&our_a, config(frame_limit)).unwrap();
    let mut r = Negentropy::borrowed(&their_b, frame_limit as u64).unwrap();
    let (mut have, mut need) = (vec![], vec![]);
    let mut q = i.initiate().unwrap();
    while let Some(next) = i
        .reconcile(&r.reconcile(&q).unwrap(), &mut have, &mut need)
        .unwrap()
    {
        q = next;
    }
    let ours_first = (have.into_iter().collect(), need.into_iter().collect());

    let mut i = Negentropy::borrowed(&their_a, frame_limit as u64).unwrap();
    let r = Responder::new(&our_b, config(frame_limit)).unwrap();
    let (mut have, mut need) = (vec![], vec![]);
    let mut q = i.initiate().unwrap();
    while let Some(next) = i
        .reconcile_with_ids(&r.respond(&q).unwrap(), &mut have, &mut need)
        .unwrap()
    {
        q = next;
    }
    let theirs_first = (
        have.iter().map(|i| i.to_bytes()).collect(),
        need.iter().map(|i| i.to_bytes()).collect(),
    );
    [ours_first, theirs_first]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Law: reconciliation finds exactly the symmetric difference, and our
    /// messages are the reference's bytes.
    #[test]
    fn messages_match_the_negentropy_crate_and_find_the_symmetric_difference(
        seed in any::<u64>(),
        common in 0usize..6_000,
        only_a in 0usize..80,
        only_b in 0usize..80,
        spread in prop::sample::select(vec![1u64, 50, 1 << 40]),
        limited in any::<bool>(),
    ) {
        let (a, b) = sets(seed, common, only_a, only_b, spread);
        // 4096 is the protocol's smallest frame limit; 2^40 never binds.
        let frame_limit = if limited { 4096 } else { 1 << 40 };
        let want = expected(&a, &b);
        let (have, need, _) = lock_step(&a, &b, frame_limit);
        prop_assert_eq!((have, need), want.clone());
        for got in cross(&a, &b, frame_limit) {
            prop_assert_eq!(got, want.clone());
        }
    }
}

#[test]
fn a_million_items_with_one_difference_take_three_round_trips() {
    let (a, b) = sets(7, 1_000_000, 1, 0, 1 << 40);
    let (have, need, rounds) = lock_step(&a, &b, 1 << 40);
    assert_eq!((have.len(), need.len(), rounds), (1, 0, 3));
}
