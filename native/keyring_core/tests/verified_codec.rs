//! Laws of the verified-streaming codec and of group sets, as properties.

use std::collections::BTreeSet;

use keyring_core::verified::{
    outboard, DecodeError, Decoder, Encoder, GroupRanges, Need, Step, GROUP_SIZE,
};
use proptest::prelude::*;

fn blob(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn groups_of(len: usize) -> u64 {
    (len as u64).div_ceil(GROUP_SIZE).max(1)
}

/// A group set drawn as a few ranges over `0..limit` (the last may be open).
fn ranges_strategy(limit: u64) -> impl Strategy<Value = GroupRanges> {
    (
        prop::collection::vec((0..limit, 1..limit.max(2)), 0..5),
        any::<bool>(),
    )
        .prop_map(move |(pairs, open)| {
            let mut set = GroupRanges::empty();
            for (s, len) in pairs {
                set.insert(s..(s + len).min(limit));
            }
            if open {
                set.insert(limit.saturating_sub(2)..u64::MAX);
            }
            set
        })
}

fn members(set: &GroupRanges, below: u64) -> BTreeSet<u64> {
    set.clip(below)
        .iter()
        .flat_map(|r| r.start..r.end)
        .collect()
}

/// The stream of `ranges` of `data`, and where each item ends in it.
fn encode(data: &[u8], ranges: &GroupRanges) -> (Vec<u8>, Vec<usize>) {
    let (root, ob) = outboard(data);
    let mut enc = Encoder::new(root, data.len() as u64, ranges);
    let mut out = enc.header().to_vec();
    let mut ends = vec![8];
    loop {
        match enc.next() {
            Need::Done => return (out, ends),
            Need::Parent { slot } => {
                let pair: [u8; 64] = ob[slot as usize * 64..][..64].try_into().unwrap();
                enc.parent(&pair).unwrap();
                out.extend_from_slice(&pair);
            }
            Need::Group { offset, len, .. } => {
                let bytes = &data[offset as usize..offset as usize + len];
                enc.group(bytes).unwrap();
                out.extend_from_slice(bytes);
            }
        }
        ends.push(out.len());
    }
}

/// Groups handed out, the error if any, bytes consumed when it came.
type Decoded = (Vec<(u64, Vec<u8>)>, Option<DecodeError>, usize);

/// Feeds `stream` in pieces of `piece` bytes. Returns the groups handed out,
/// the error (if any) and how many bytes had been consumed when it came.
fn decode_in_pieces(root: [u8; 32], ranges: &GroupRanges, stream: &[u8], piece: usize) -> Decoded {
    let mut dec = Decoder::new(root, ranges.clone(), None);
    let mut got = Vec::new();
    let mut fed = 0;
    for chunk in stream.chunks(piece.max(1)) {
        let mut pos = 0;
        loop {
            match dec.push(&chunk[pos..]) {
                Err(e) => return (got, Some(e), fed + pos),
                Ok((used, step)) => {
                    pos += used;
                    match step {
                        Step::Group(g) => got.push((g.index(), g.data().to_vec())),
                        Step::Done | Step::NeedMore => break,
                    }
                }
            }
        }
        fed += chunk.len();
    }
    (got, None, fed)
}

fn genuine(data: &[u8], groups: &[(u64, Vec<u8>)]) -> bool {
    groups.iter().all(|(i, bytes)| {
        let start = (*i * GROUP_SIZE) as usize;
        data.get(start..start + bytes.len()) == Some(&bytes[..])
            && bytes.len() == (data.len() - start).min(GROUP_SIZE as usize)
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, failure_persistence: None, ..ProptestConfig::default() })]

    /// A stream for R verifies exactly the groups of R that exist, whole and
    /// genuine, whatever the split of its bytes.
    #[test]
    fn a_stream_for_r_verifies_exactly_r(
        len in 0usize..40 * 16_384,
        seed in any::<u64>(),
        ranges in ranges_strategy(45),
        piece in 1usize..40_000,
    ) {
        let data = blob(len, seed);
        let (stream, _) = encode(&data, &ranges);
        let root = *blake3::hash(&data).as_bytes();
        let (got, err, _) = decode_in_pieces(root, &ranges, &stream, piece);
        prop_assert_eq!(err, None);
        let indices: BTreeSet<u64> = got.iter().map(|g| g.0).collect();
        prop_assert_eq!(indices.len(), got.len());
        prop_assert_eq!(indices, members(&ranges, groups_of(len)));
        prop_assert!(genuine(&data, &got));
    }

    /// Flipping any bit of a stream is caught no later than the end of the
    /// item (pair or group) holding it, and nothing wrong is handed out.
    #[test]
    fn any_tampering_is_caught_within_one_group(
        len in 1usize..30 * 16_384,
        seed in any::<u64>(),
        ranges in ranges_strategy(32),
        at in any::<prop::sample::Index>(),
        bit in 0u8..8,
        piece in 1usize..40_000,
    ) {
        let data = blob(len, seed);
        let (mut stream, ends) = encode(&data, &ranges);
        let pos = at.index(stream.len());
        stream[pos] ^= 1 << bit;
        let root = *blake3::hash(&data).as_bytes();
        let (got, err, consumed) = decode_in_pieces(root, &ranges, &stream, piece);
        prop_assert!(genuine(&data, &got), "tampered bytes handed out");
        if pos >= 8 {
            prop_assert!(err.is_some(), "flip at {} not caught", pos);
            let item_end = *ends.iter().find(|&&e| e > pos).unwrap();
            prop_assert!(consumed <= item_end, "caught at {} after item end {}", consumed, item_end);
        }
    }

    /// Streams for R1 and R2 verify together what a stream for R1 ∪ R2 does.
    #[test]
    fn ranges_compose(
        len in 0usize..40 * 16_384,
        seed in any::<u64>(),
        r1 in ranges_strategy(45),
        r2 in ranges_strategy(45),
    ) {
        let data = blob(len, seed);
        let root = *blake3::hash(&data).as_bytes();
        let decode = |r: &GroupRanges| {
            let (stream, _) = encode(&data, r);
            Decoder::new(root, r.clone(), Some(len as u64)).decode_all(&stream).unwrap()
        };
        let mut separate: Vec<_> = decode(&r1);
        separate.extend(decode(&r2));
        separate.sort();
        separate.dedup();
        prop_assert_eq!(separate, decode(&r1.union(&r2)));
    }

    /// A truncated stream hands out only genuine groups, then asks for more.
    #[test]
    fn a_truncated_stream_never_verifies_what_is_missing(
        len in 0usize..20 * 16_384,
        seed in any::<u64>(),
        ranges in ranges_strategy(22),
        cut in any::<prop::sample::Index>(),
    ) {
        let data = blob(len, seed);
        let (stream, _) = encode(&data, &ranges);
        let root = *blake3::hash(&data).as_bytes();
        let cut = cut.index(stream.len());
        let result = Decoder::new(root, ranges.clone(), None).decode_all(&stream[..cut]);
        let full = members(&ranges, groups_of(len));
        match result {
            Ok(groups) => prop_assert!(full.is_empty() || cut == stream.len(), "{:?}", groups),
            Err(e) => prop_assert!(matches!(e, DecodeError::Truncated { .. }), "{:?}", e),
        }
    }

    /// A stream for another blob, or with a lying size, verifies nothing it
    /// should not.
    #[test]
    fn a_stream_for_another_root_or_size_is_refused(
        len in 1usize..20 * 16_384,
        seed in any::<u64>(),
        ranges in ranges_strategy(22),
        fake_size in 0u64..30 * 16_384,
    ) {
        let data = blob(len, seed);
        let root = *blake3::hash(&data).as_bytes();
        let (stream, _) = encode(&data, &ranges);
        let other = blob(len, seed ^ 0xdead_beef);
        let (other_stream, _) = encode(&other, &ranges);
        if other != data && !members(&ranges, groups_of(len)).is_empty() {
            let res = Decoder::new(root, ranges.clone(), None).decode_all(&other_stream);
            prop_assert!(res.is_err());
        }
        let mut lying = stream.clone();
        lying[..8].copy_from_slice(&fake_size.to_le_bytes());
        let (got, _, _) = decode_in_pieces(root, &ranges, &lying, 4096);
        prop_assert!(genuine(&data, &got), "a lying size verified wrong bytes");
        let strict = Decoder::new(root, ranges.clone(), Some(len as u64)).decode_all(&lying);
        if fake_size != len as u64 {
            prop_assert_eq!(strict, Err(DecodeError::SizeMismatch { expected: len as u64, claimed: fake_size }));
        }
    }

    /// Group sets behave as sets of integers (checked against BTreeSet).
    #[test]
    fn group_sets_are_sets(a in ranges_strategy(200), b in ranges_strategy(200), probe in 0u64..250) {
        let (ma, mb) = (members(&a, 260), members(&b, 260));
        prop_assert_eq!(members(&a.union(&b), 260), &ma | &mb);
        prop_assert_eq!(members(&a.intersection(&b), 260), &ma & &mb);
        prop_assert_eq!(members(&a.difference(&b), 260), &ma - &mb);
        prop_assert_eq!(a.contains(probe), ma.contains(&probe));
        prop_assert_eq!(a.intersects(probe, probe + 7), (probe..probe + 7).any(|g| ma.contains(&g)));
        prop_assert_eq!(a.covers(probe, probe + 3), (probe..probe + 3).all(|g| ma.contains(&g)));
        prop_assert_eq!(a.count_below(probe), ma.range(..probe).count() as u64);
        // The canonical form is unique: equal sets are equal values.
        prop_assert_eq!(a.union(&b), b.union(&a));
        prop_assert_eq!(a.difference(&b).union(&a.intersection(&b)), a.clone());
    }

    /// The wire form of a group set decodes to the same set, and decoding
    /// arbitrary bytes never panics.
    #[test]
    fn group_sets_round_trip_their_wire_form(a in ranges_strategy(1 << 40), junk in prop::collection::vec(any::<u8>(), 0..64)) {
        let bytes = a.encode();
        prop_assert_eq!(GroupRanges::decode(&bytes), Ok(a.clone()));
        if let Ok(set) = GroupRanges::decode(&junk) {
            prop_assert_eq!(set.encode(), junk);
        }
    }
}

#[test]
fn a_wrong_root_fails_at_the_first_item() {
    let data = blob(5 * 16_384, 1);
    let (stream, ends) = encode(&data, &GroupRanges::all());
    let (got, err, consumed) = decode_in_pieces([7; 32], &GroupRanges::all(), &stream, 1 << 20);
    assert!(got.is_empty());
    assert_eq!(err, Some(DecodeError::ParentMismatch { group: 0 }));
    assert!(consumed <= ends[1]);
}

#[test]
fn the_size_is_proven_by_the_last_group() {
    let data = blob(5 * 16_384 + 9, 2);
    let root = *blake3::hash(&data).as_bytes();
    for (ranges, proven) in [
        (GroupRanges::from(0..2), false),
        (GroupRanges::from(5..6), true),
    ] {
        let (stream, _) = encode(&data, &ranges);
        let mut dec = Decoder::new(root, ranges, None);
        let mut pos = 0;
        loop {
            let (used, step) = dec.push(&stream[pos..]).unwrap();
            pos += used;
            if matches!(step, Step::Done) {
                break;
            }
        }
        assert_eq!(dec.size_verified(), proven);
        assert_eq!(dec.tree().unwrap().size(), data.len() as u64);
    }
}

/// Found by the fuzzer: a group buffered across pushes (here one byte at a
/// time) was located in the input by arithmetic that underflowed.
#[test]
fn a_group_split_across_pushes_is_assembled() {
    let data = b"hi".to_vec();
    let root = *blake3::hash(&data).as_bytes();
    let (stream, _) = encode(&data, &GroupRanges::all());
    let (got, err, _) = decode_in_pieces(root, &GroupRanges::all(), &stream, 1);
    assert_eq!(err, None);
    assert_eq!(got, vec![(0, data)]);
}
