//! The term decoder's memory is bounded by its input, whatever the input's
//! counts claim (issue 8, item 7: a 2 MiB request whose nested containers
//! each claimed as many elements as there were bytes left reserved 6 GiB of
//! address space, and an 8 MiB one aborted a VM under `ulimit -v 16G`).
//!
//! A counting global allocator (this test binary only) measures the peak
//! heap while each worst body is decoded.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Mutex;

use keyring_core::wire::term::{self, Limits, TermError, MAX_VALUES, MIN_VALUE_LEN};

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
/// Tests run on several threads; the counters are global.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

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

const LIMITS: Limits = Limits::new(64 << 20);
const MIB: usize = 1 << 20;

/// Peak heap bytes above the starting point while decoding `doc`.
fn peak_while_decoding(doc: &[u8]) -> (Result<usize, TermError>, usize) {
    let _one = ONE_AT_A_TIME.lock().unwrap();
    let before = LIVE.load(Relaxed);
    PEAK.store(before, Relaxed);
    let result = term::decode(doc, LIMITS).map(|v| match v {
        term::Value::List(items) => items.len(),
        _ => 1,
    });
    (result, PEAK.load(Relaxed) - before)
}

fn header(tag: u8, n: u32) -> [u8; 5] {
    let c = n.to_be_bytes();
    [tag, c[0], c[1], c[2], c[3]]
}

/// Every level claims as many elements as the bytes left could hold under
/// the old rule (one byte each), nested as deep as allowed, then filler.
fn lying_nested_claims(size: usize, per_element: usize) -> Vec<u8> {
    let mut doc = vec![term::VERSION];
    for _ in 0..term::MAX_DEPTH {
        let left = size - doc.len() - 5;
        doc.extend_from_slice(&header(5, (left / per_element) as u32));
    }
    doc.resize(size, 0);
    doc
}

/// A true list of one-letter atoms filling `size` bytes.
fn atoms(size: usize) -> Vec<u8> {
    let n = (size - 6) / MIN_VALUE_LEN;
    let mut doc = vec![term::VERSION];
    doc.extend_from_slice(&header(5, n as u32));
    for _ in 0..n {
        doc.extend_from_slice(&[4, 1, b'a']);
    }
    doc
}

#[test]
fn lying_nested_claims_are_refused_at_the_first_header_without_reserving() {
    for size in [2 * MIB, 8 * MIB] {
        for per_element in [1, MIN_VALUE_LEN] {
            let doc = lying_nested_claims(size, per_element);
            let (result, peak) = peak_while_decoding(&doc);
            assert!(
                matches!(
                    result,
                    Err(TermError::ClaimExceedsInput { .. } | TermError::TooManyValues(_))
                ),
                "{result:?}"
            );
            // The old decoder reserved 32 bytes per claimed element at each
            // of 64 levels: 4 GiB for 2 MiB. Now: at most one capped
            // container (1024 elements) before the refusal.
            assert!(peak <= 64 * 1024, "{size} bytes: peak {peak}");
        }
    }
}

#[test]
fn a_true_document_of_the_smallest_values_costs_a_bounded_multiple_of_its_size() {
    let doc = atoms(2 * MIB);
    let (result, peak) = peak_while_decoding(&doc);
    assert_eq!(result, Ok((2 * MIB - 6) / MIN_VALUE_LEN));
    // 32 bytes per value, one value per 3 bytes, Vec growth.
    assert!(
        peak <= 32 * doc.len(),
        "peak {peak} for {} bytes",
        doc.len()
    );
}

#[test]
fn more_values_than_the_budget_are_refused_at_the_header() {
    // 8 MiB of one-letter atoms is 2.8 M values: over MAX_VALUES.
    let doc = atoms(8 * MIB);
    assert!((doc.len() - 6) / MIN_VALUE_LEN > MAX_VALUES);
    let (result, peak) = peak_while_decoding(&doc);
    assert_eq!(result, Err(TermError::TooManyValues(MAX_VALUES)));
    assert!(peak <= 64 * 1024, "peak {peak}");
}

#[test]
fn deep_nesting_around_big_counts_stays_within_the_bound() {
    // 62 single-element lists around a list of atoms: depth x count, truly.
    let inner = atoms(2 * MIB);
    let mut doc = vec![term::VERSION];
    for _ in 0..62 {
        doc.extend_from_slice(&header(5, 1));
    }
    doc.extend_from_slice(&inner[1..]);
    let (result, peak) = peak_while_decoding(&doc);
    assert_eq!(result, Ok(1));
    assert!(peak <= 32 * doc.len(), "peak {peak}");
}
