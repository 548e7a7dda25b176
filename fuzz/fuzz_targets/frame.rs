#![no_main]
//! Frame decoding never panics and decoded frames re-encode to the input; the
//! assembler, fed the input in pieces of any size, accepts exactly the
//! frames that decode whole and hands back the same bytes.
use keyring_core::wire::assembler::FrameAssembler;
use keyring_core::wire::frame;
use libfuzzer_sys::fuzz_target;

const MAX: usize = 1 << 20;

fuzz_target!(|data: &[u8]| {
    let whole = frame::decode(data, MAX);
    if let Ok(f) = &whole {
        assert_eq!(f.encode().unwrap(), data);
    }
    let piece = 1 + data.first().map_or(0, |b| *b as usize % 64);
    let mut asm = FrameAssembler::new(MAX);
    let assembled = data
        .chunks(piece)
        .try_for_each(|p| asm.push(p))
        .and_then(|()| asm.finish());
    match assembled {
        Ok(bytes) => {
            assert_eq!(bytes, data);
            assert_eq!(frame::decode(&bytes, MAX), whole);
        }
        Err(_) => assert!(whole.is_err()),
    }
});
