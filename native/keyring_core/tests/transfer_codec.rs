//! The blob transfer codec: requests round-trip within their limits, and a
//! response is verified item by item, group by group, whatever the split.

use keyring_core::hash::Digest;
use keyring_core::transfer::{
    decode_get, decode_list, encode_get, encode_list, encode_response_all, Event, Item, ListEntry,
    ListRequest, ResponseDecoder, TransferError, MAX_ITEMS,
};
use keyring_core::verified::{outboard, DecodeError, GroupRanges, GROUP_SIZE};

fn blob(len: usize, seed: u8) -> (Digest, Vec<u8>, Vec<u8>) {
    let data: Vec<u8> = (0..len)
        .map(|i| (i as u8).wrapping_mul(31) ^ seed)
        .collect();
    let (cid, ob) = outboard(&data);
    (cid, data, ob)
}

/// Decodes `stream` pushed in pieces of `step` bytes: per item, the groups
/// (index, bytes) and whether it was found; or the first error.
#[allow(clippy::type_complexity)]
fn decode(
    items: Vec<Item>,
    sizes: Vec<Option<u64>>,
    stream: &[u8],
    step: usize,
) -> Result<Vec<Option<Vec<(u64, Vec<u8>)>>>, TransferError> {
    let n = items.len();
    let mut out: Vec<Option<Vec<(u64, Vec<u8>)>>> = vec![None; n];
    let mut dec = ResponseDecoder::new(items, sizes);
    let mut fed = 0;
    let mut buf: Vec<u8> = Vec::new();
    let mut pos = 0;
    loop {
        let (used, ev) = dec.push(&buf[pos..])?;
        pos += used;
        match ev {
            Event::NeedMore if pos < buf.len() => {}
            Event::NeedMore => {
                if fed == stream.len() {
                    return Err(TransferError::Truncated);
                }
                let end = (fed + step).min(stream.len());
                buf = stream[fed..end].to_vec();
                pos = 0;
                fed = end;
            }
            Event::Found { item } => {
                out[item].get_or_insert_with(Vec::new);
            }
            Event::NotFound { .. } => {}
            Event::Group { item, group } => out[item]
                .get_or_insert_with(Vec::new)
                .push((group.index(), group.data().to_vec())),
            Event::ItemDone { .. } => {}
            Event::Done => {
                assert_eq!(fed, stream.len(), "bytes after the end");
                return Ok(out);
            }
        }
    }
}

#[test]
fn a_get_request_round_trips_and_refuses_what_is_over_its_limits() {
    let items = vec![
        Item {
            cid: [1; 32],
            proof: true,
            ranges: GroupRanges::all(),
        },
        Item {
            cid: [2; 32],
            proof: false,
            ranges: GroupRanges::from(3..9),
        },
    ];
    let bytes = encode_get(&items).unwrap();
    assert_eq!(decode_get(&bytes).unwrap(), items);
    for cut in 0..bytes.len() {
        assert!(decode_get(&bytes[..cut]).is_err());
    }
    let mut trailing = bytes.clone();
    trailing.push(0);
    assert_eq!(decode_get(&trailing), Err(TransferError::TrailingBytes));
    let mut flags = bytes.clone();
    flags[2 + 32] = 0x80;
    assert_eq!(decode_get(&flags), Err(TransferError::BadFlags));
    let mut many = bytes;
    many[..2].copy_from_slice(&((MAX_ITEMS + 1) as u16).to_be_bytes());
    assert_eq!(decode_get(&many), Err(TransferError::TooMany));
}

#[test]
fn a_list_round_trips() {
    let req = ListRequest {
        after: b"name".to_vec(),
        limit: 10,
    };
    assert_eq!(ListRequest::decode(&req.encode().unwrap()).unwrap(), req);
    let entries = vec![ListEntry {
        name: vec![7; 32],
        cid: [9; 32],
        size: 1 << 40,
    }];
    assert_eq!(
        decode_list(&encode_list(&entries).unwrap()).unwrap(),
        entries
    );
}

#[test]
fn many_blobs_in_one_response_are_verified_at_any_split() {
    let small = blob(3000, 1);
    let big = blob(5 * GROUP_SIZE as usize + 77, 2);
    let absent: Digest = [7; 32];
    let items = vec![
        Item {
            cid: small.0,
            proof: true,
            ranges: GroupRanges::all(),
        },
        Item {
            cid: absent,
            proof: true,
            ranges: GroupRanges::all(),
        },
        Item {
            cid: big.0,
            proof: true,
            ranges: GroupRanges::all(),
        },
    ];
    let blobs = [&small, &big];
    let stream = encode_response_all(&items, |cid| {
        blobs
            .iter()
            .find(|b| &b.0 == cid)
            .map(|b| (&b.1[..], &b.2[..]))
    })
    .unwrap();
    for step in [1, 7, 1000, stream.len()] {
        let got = decode(items.clone(), vec![], &stream, step).unwrap();
        assert_eq!(got[0].as_ref().unwrap(), &vec![(0, small.1.clone())]);
        assert!(got[1].is_none());
        let groups = got[2].as_ref().unwrap();
        // The proof (last group) first, then groups 0..5.
        let order: Vec<u64> = groups.iter().map(|g| g.0).collect();
        assert_eq!(order, vec![5, 0, 1, 2, 3, 4]);
        let mut joined = vec![0u8; big.1.len()];
        for (i, bytes) in groups {
            let at = (*i * GROUP_SIZE) as usize;
            joined[at..at + bytes.len()].copy_from_slice(bytes);
        }
        assert_eq!(joined, big.1);
    }
}

#[test]
fn a_resumed_item_gets_only_the_groups_it_asks_for() {
    let big = blob(8 * GROUP_SIZE as usize, 3);
    let items = vec![Item {
        cid: big.0,
        proof: false,
        ranges: GroupRanges::from(2..4),
    }];
    let stream = encode_response_all(&items, |_| Some((&big.1[..], &big.2[..]))).unwrap();
    let got = decode(items, vec![Some(big.1.len() as u64)], &stream, 4096).unwrap();
    let order: Vec<u64> = got[0].as_ref().unwrap().iter().map(|g| g.0).collect();
    assert_eq!(order, vec![2, 3]);
}

#[test]
fn a_wrong_byte_is_caught_in_the_group_that_holds_it() {
    let big = blob(6 * GROUP_SIZE as usize, 4);
    let items = vec![Item {
        cid: big.0,
        proof: true,
        ranges: GroupRanges::all(),
    }];
    let mut stream = encode_response_all(&items, |_| Some((&big.1[..], &big.2[..]))).unwrap();
    // Flip a byte near the end of the stream: in group 4's bytes.
    let at = stream.len() - 10;
    stream[at] ^= 1;
    let err = decode(items, vec![], &stream, 5000).unwrap_err();
    assert!(
        matches!(
            err,
            TransferError::Stream {
                item: 0,
                error: DecodeError::GroupMismatch { group: 4 }
            }
        ),
        "{err:?}"
    );
}

#[test]
fn a_lying_size_is_refused_before_any_group() {
    let big = blob(6 * GROUP_SIZE as usize, 5);
    let other = blob(9 * GROUP_SIZE as usize, 5);
    let items = vec![Item {
        cid: big.0,
        proof: true,
        ranges: GroupRanges::all(),
    }];
    // The provider answers with a stream of another (larger) blob under
    // this cid: the proof's last group cannot verify.
    let lie = encode_response_all(
        &[Item {
            cid: other.0,
            proof: true,
            ranges: GroupRanges::all(),
        }],
        |_| Some((&other.1[..], &other.2[..])),
    )
    .unwrap();
    let err = decode(items.clone(), vec![], &lie, 100_000).unwrap_err();
    assert!(
        matches!(err, TransferError::Stream { item: 0, .. }),
        "{err:?}"
    );
    // A known size and another claimed: refused at the header.
    let err = decode(
        vec![Item {
            proof: false,
            ..items[0].clone()
        }],
        vec![Some(1)],
        &lie,
        100_000,
    )
    .unwrap_err();
    assert!(matches!(
        err,
        TransferError::Stream {
            error: DecodeError::SizeMismatch { .. },
            ..
        }
    ));
}

#[test]
fn a_truncated_response_never_completes_its_item() {
    let big = blob(3 * GROUP_SIZE as usize, 6);
    let items = vec![Item {
        cid: big.0,
        proof: true,
        ranges: GroupRanges::all(),
    }];
    let stream = encode_response_all(&items, |_| Some((&big.1[..], &big.2[..]))).unwrap();
    let cut = &stream[..stream.len() - 1];
    assert_eq!(
        decode(items, vec![], cut, 1000).unwrap_err(),
        TransferError::Truncated
    );
}

#[test]
fn a_proof_alone_gives_the_last_group_and_ends_the_item() {
    let big = blob(5 * GROUP_SIZE as usize + 1, 8);
    let items = vec![Item {
        cid: big.0,
        proof: true,
        ranges: GroupRanges::empty(),
    }];
    let stream = encode_response_all(&items, |_| Some((&big.1[..], &big.2[..]))).unwrap();
    let got = decode(items, vec![], &stream, 3).unwrap();
    let order: Vec<u64> = got[0].as_ref().unwrap().iter().map(|g| g.0).collect();
    assert_eq!(order, vec![5]);
}

mod laws {
    use super::*;
    use proptest::prelude::*;

    fn ranges(groups: u64) -> impl Strategy<Value = GroupRanges> {
        prop::collection::vec((0..groups + 2, 1..6u64), 0..4).prop_map(|rs| {
            let mut set = GroupRanges::empty();
            for (s, l) in rs {
                set.insert(s..s + l);
            }
            set
        })
    }

    /// Every group handed out, whatever the split and whatever one byte of
    /// the answer is flipped to, holds the blob's true bytes at its place.
    fn check(
        data: &[u8],
        items: Vec<Item>,
        stream: &[u8],
        step: usize,
    ) -> Result<(), TestCaseError> {
        let mut dec = ResponseDecoder::new(items, vec![]);
        let mut at = 0;
        while at <= stream.len() {
            let end = (at + step).min(stream.len());
            let piece = &stream[at..end];
            let mut pos = 0;
            loop {
                match dec.push(&piece[pos..]) {
                    Err(_) => return Ok(()),
                    Ok((used, ev)) => {
                        pos += used;
                        match ev {
                            Event::Group { group, .. } => {
                                let off = group.offset() as usize;
                                prop_assert_eq!(group.data(), &data[off..off + group.data().len()]);
                            }
                            Event::Done => return Ok(()),
                            Event::NeedMore if pos >= piece.len() => break,
                            _ => {}
                        }
                    }
                }
            }
            if end == stream.len() {
                break;
            }
            at = end;
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn no_unverified_byte_is_ever_handed_out(
            len in 1usize..(9 * GROUP_SIZE as usize),
            seed in any::<u8>(),
            proof in any::<bool>(),
            want in ranges(10),
            flip in any::<prop::sample::Index>(),
            step in 1usize..40_000,
        ) {
            let (cid, data, ob) = blob(len, seed);
            let items = vec![Item { cid, proof, ranges: want }];
            let sizes = if proof { vec![] } else { vec![Some(len as u64)] };
            let mut stream = encode_response_all(&items, |_| Some((&data[..], &ob[..]))).unwrap();
            // Honest: every requested group arrives, exact.
            let got = decode(items.clone(), sizes.clone(), &stream, step).unwrap();
            let groups = keyring_core::verified::Tree::new(len as u64).groups();
            let mut expect: Vec<u64> = items[0].ranges.clip(groups).iter().flatten().collect();
            if proof {
                expect.retain(|g| *g != groups - 1);
                expect.insert(0, groups - 1);
            }
            let order: Vec<u64> = got[0].as_ref().unwrap().iter().map(|g| g.0).collect();
            prop_assert_eq!(order, expect);
            // One byte flipped anywhere: whatever is handed out is still true.
            let at = flip.index(stream.len());
            stream[at] ^= 0x20;
            if proof {
                check(&data, items, &stream, step)?;
            }
        }
    }
}
