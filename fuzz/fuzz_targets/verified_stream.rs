#![no_main]
//! Decoding a verified stream never panics, never buffers more than a group,
//! and never hands out a group that is not the real blob's. The input picks
//! the requested ranges (first byte) and the piece size the stream arrives
//! in (second byte); the rest is either a raw stream (first byte even) or
//! edits to the real stream (odd): (offset u16, xor byte) triples, which
//! keep the fuzzer close to streams that almost verify.
use std::sync::OnceLock;

use keyring_core::verified::{outboard, Decoder, Encoder, GroupRanges, Step, GROUP_SIZE};
use libfuzzer_sys::fuzz_target;

fn blob() -> &'static (Vec<u8>, [u8; 32], Vec<u8>) {
    static BLOB: OnceLock<(Vec<u8>, [u8; 32], Vec<u8>)> = OnceLock::new();
    BLOB.get_or_init(|| {
        let data: Vec<u8> = (0..5 * GROUP_SIZE as usize + 777)
            .map(|i| (i * 31 % 253) as u8)
            .collect();
        let (root, ob) = outboard(&data);
        (data, root, ob)
    })
}

fuzz_target!(|input: &[u8]| {
    let [choice, piece, rest @ ..] = input else {
        return;
    };
    let (data, root, ob) = blob();
    let ranges = match (choice >> 1) % 4 {
        0 => GroupRanges::all(),
        1 => GroupRanges::from(0..1),
        2 => GroupRanges::from(5..6),
        _ => GroupRanges::from(u64::from(choice >> 3) % 6..u64::from(choice >> 5) + 3),
    };
    let stream = if choice & 1 == 1 {
        let mut real = Encoder::new(*root, data.len() as u64, &ranges)
            .encode_all(data, ob)
            .expect("encodes");
        for edit in rest.chunks_exact(3) {
            let at = usize::from(u16::from_le_bytes([edit[0], edit[1]])) % real.len();
            real[at] ^= edit[2];
        }
        real
    } else {
        rest.to_vec()
    };
    let mut dec = Decoder::new(*root, ranges, None);
    for chunk in stream.chunks(usize::from(*piece) * 97 + 1) {
        let mut pos = 0;
        loop {
            match dec.push(&chunk[pos..]) {
                Err(_) => return,
                Ok((used, step)) => {
                    pos += used;
                    match step {
                        Step::Group(g) => {
                            let start = g.offset() as usize;
                            assert_eq!(&data[start..start + g.data().len()], g.data());
                            assert!(g.data().len() <= GROUP_SIZE as usize);
                        }
                        Step::Done | Step::NeedMore => break,
                    }
                }
            }
        }
    }
});
