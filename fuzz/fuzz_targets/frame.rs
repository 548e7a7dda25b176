#![no_main]
//! Frame decoding never panics and decoded frames re-encode to the input; the
//! assembler, fed the input in pieces of any size, accepts exactly the
//! frames that decode whole, hands back the same bytes, predicts every
//! allocation it makes (`capacity_for`) and never holds more than GROWTH times
//! the bytes that arrived.
use keyring_core::wire::assembler::{FrameAssembler, GROWTH, INITIAL_RESERVE};
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
        .try_for_each(|p| {
            let predicted = asm.capacity_for(p);
            let pushed = asm.push(p);
            assert_eq!(predicted.is_ok(), pushed.is_ok());
            if let Ok(cap) = predicted {
                assert_eq!(asm.capacity(), cap);
                assert!(cap <= (GROWTH * asm.len()).max(INITIAL_RESERVE));
            }
            pushed
        })
        .and_then(|()| asm.finish());
    match assembled {
        Ok(bytes) => {
            assert_eq!(bytes, data);
            assert_eq!(frame::decode(&bytes, MAX), whole);
        }
        Err(_) => assert!(whole.is_err()),
    }
});
