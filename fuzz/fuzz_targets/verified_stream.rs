#![no_main]
//! Decoding a verified stream never panics, never buffers more than a group,
//! and never hands out a group that is not the real blob's: the fuzzer's
//! bytes are a stream (after a 1-byte range choice and a 1-byte piece size)
//! for a fixed blob whose root the decoder knows.
use std::sync::OnceLock;

use keyring_core::verified::{outboard, Decoder, GroupRanges, Step, GROUP_SIZE};
use libfuzzer_sys::fuzz_target;

fn blob() -> &'static (Vec<u8>, [u8; 32]) {
    static BLOB: OnceLock<(Vec<u8>, [u8; 32])> = OnceLock::new();
    BLOB.get_or_init(|| {
        let data: Vec<u8> = (0..5 * GROUP_SIZE as usize + 777)
            .map(|i| (i * 31 % 253) as u8)
            .collect();
        let (root, _) = outboard(&data);
        (data, root)
    })
}

fuzz_target!(|input: &[u8]| {
    let Some((&choice, rest)) = input.split_first() else {
        return;
    };
    let Some((&piece, stream)) = rest.split_first() else {
        return;
    };
    let (data, root) = blob();
    let ranges = match choice % 4 {
        0 => GroupRanges::all(),
        1 => GroupRanges::from(0..1),
        2 => GroupRanges::from(5..6),
        _ => GroupRanges::from(u64::from(choice >> 2) % 6..u64::from(choice >> 4) + 3),
    };
    let mut dec = Decoder::new(*root, ranges, None);
    for chunk in stream.chunks(usize::from(piece) * 97 + 1) {
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
