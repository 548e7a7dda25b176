#![no_main]
//! Restricted-term decoding never panics, keeps its limits (values, depth)
//! whatever the counts in the input say, allocates memory in proportion to
//! the input only, and decoded terms re-encode to the input.
//!
//! The first two bytes choose the limits (so tight budgets are fuzzed too);
//! the rest is the document.
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use keyring_core::wire::term::{self, Limits, Value};
use libfuzzer_sys::fuzz_target;

/// Counts live heap bytes and their peak, to check the memory bound.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let live = LIVE.fetch_add(layout.size(), Relaxed) + layout.size();
        PEAK.fetch_max(live, Relaxed);
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Relaxed);
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let live = LIVE.fetch_add(new_size, Relaxed) + new_size;
        PEAK.fetch_max(live, Relaxed);
        let out = System.realloc(ptr, layout, new_size);
        LIVE.fetch_sub(layout.size(), Relaxed);
        out
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn measure(v: &Value<'_>, depth: usize, values: &mut usize, deepest: &mut usize) {
    *values += 1;
    *deepest = (*deepest).max(depth);
    match v {
        Value::List(items) | Value::Tuple(items) => items
            .iter()
            .for_each(|i| measure(i, depth + 1, values, deepest)),
        Value::Map(pairs) => pairs.iter().for_each(|(k, v)| {
            measure(k, depth + 1, values, deepest);
            measure(v, depth + 1, values, deepest)
        }),
        _ => {}
    }
}

fuzz_target!(|data: &[u8]| {
    let [a, b, doc @ ..] = data else { return };
    let limits = Limits {
        max_bytes: 1 << 20,
        max_depth: 1 + usize::from(*a % 64),
        max_values: if *b == 0 { usize::MAX } else { usize::from(*b) * 16 },
    };
    let before = LIVE.load(Relaxed);
    PEAK.store(before, Relaxed);
    let decoded = term::decode(doc, limits);
    let used = PEAK.load(Relaxed) - before;
    // 32 bytes per value, at most one value per 3 input bytes, Vec growth
    // (2x) and a reallocation's old and new buffers at once.
    assert!(
        used <= 64 * doc.len() + 4096,
        "decoding {} bytes used {used} bytes",
        doc.len()
    );
    if let Ok(v) = decoded {
        let (mut values, mut deepest) = (0, 0);
        measure(&v, 0, &mut values, &mut deepest);
        assert!(values <= limits.max_values && values <= doc.len() / term::MIN_VALUE_LEN);
        assert!(deepest < limits.max_depth);
        assert_eq!(term::encode(&v, limits).unwrap(), doc);
    }
});
