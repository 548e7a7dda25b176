//! Our verified streams and outboards are bao-tree's (at chunk log 4, as
//! iroh-blobs uses it), byte for byte, in both directions.

use bao_tree::io::outboard::PostOrderMemOutboard;
use bao_tree::io::sync::encode_ranges_validated;
use bao_tree::{BlockSize, ChunkNum, ChunkRanges};
use keyring_core::verified::{outboard, Decoder, Encoder, GroupRanges, GROUP_SIZE};

const BLOCK: BlockSize = BlockSize::from_chunk_log(4);

fn blob(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| {
            (i as u8)
                .wrapping_mul(31)
                .wrapping_add(seed ^ (i >> 10) as u8)
        })
        .collect()
}

fn chunk_ranges(groups: &GroupRanges) -> ChunkRanges {
    let mut out = ChunkRanges::empty();
    for r in groups.iter() {
        let start = ChunkNum(r.start * 16);
        out |= if r.end == u64::MAX {
            ChunkRanges::from(start..)
        } else {
            ChunkRanges::from(start..ChunkNum(r.end * 16))
        };
    }
    out
}

const SIZES: &[usize] = &[
    0,
    1,
    1024,
    16_384,
    16_385,
    32_768,
    3 * 16_384 + 7,
    8 * 16_384,
    13 * 16_384 + 1000,
    64 * 16_384,
    100 * 16_384 + 1,
];

#[test]
fn outboards_match_bao_tree_post_order() {
    for (i, &len) in SIZES.iter().enumerate() {
        let data = blob(len, i as u8);
        let theirs = PostOrderMemOutboard::create(&data, BLOCK);
        let (root, ours) = outboard(&data);
        assert_eq!(root, *theirs.root.as_bytes(), "root, len {len}");
        assert_eq!(ours, theirs.data, "outboard, len {len}");
    }
}

#[test]
fn streams_match_bao_tree_for_group_aligned_ranges() {
    for (i, &len) in SIZES.iter().enumerate() {
        let data = blob(len, i as u8);
        let theirs_ob = PostOrderMemOutboard::create(&data, BLOCK);
        let (root, ob) = outboard(&data);
        let groups = (len as u64).div_ceil(GROUP_SIZE).max(1);
        let mut cases = vec![
            GroupRanges::all(),
            GroupRanges::from(0..1),
            GroupRanges::from(groups - 1..groups),
            GroupRanges::from(groups / 2..groups),
        ];
        let mut sparse = GroupRanges::empty();
        for g in (0..groups).step_by(3) {
            sparse.insert(g..g + 1);
        }
        cases.push(sparse);
        for ranges in cases {
            let ours = Encoder::new(root, len as u64, &ranges)
                .encode_all(&data, &ob)
                .unwrap();
            let mut theirs = Vec::new();
            encode_ranges_validated(&data[..], &theirs_ob, &chunk_ranges(&ranges), &mut theirs)
                .unwrap();
            assert_eq!(&ours[..8], &(len as u64).to_le_bytes());
            assert_eq!(&ours[8..], &theirs[..], "len {len}, ranges {ranges:?}");

            // And ours decodes theirs.
            let mut stream = (len as u64).to_le_bytes().to_vec();
            stream.extend_from_slice(&theirs);
            let got = Decoder::new(root, ranges.clone(), Some(len as u64))
                .decode_all(&stream)
                .unwrap();
            let want: Vec<u64> = ranges
                .clip(groups)
                .iter()
                .flat_map(|r| r.start..r.end)
                .collect();
            assert_eq!(got.iter().map(|g| g.0).collect::<Vec<_>>(), want);
        }
    }
}
