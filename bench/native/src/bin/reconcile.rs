//! Reconciliation of a million ids (negentropy v1): round trips and bytes
//! each way for k differences, and the cost of our implementation beside the
//! `negentropy` crate on the same items (time, heap allocations).
//!
//!   cargo run --release -p keyring_bench --bin reconcile [-- n k1 k2 ...]
//!
//! Items are (millisecond timestamp over 30 days, 32-byte BLAKE3 id); the
//! k differences are split between the sides (the first on the initiator's).
//! Times are this thread's CPU time (the machine is shared); counts are exact.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use keyring_core::reconcile::{Config, Initiator, Item, Items, Responder};
use negentropy::{Negentropy, NegentropyStorageVector};

struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards to the system allocator, only counting calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// CPU time of this thread (the machine is shared: wall time would count
/// the time other processes held the cores).
fn cpu_secs() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec, which lives on this stack.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

fn item(i: u64) -> Item {
    let h = blake3::hash(&i.to_be_bytes());
    let t = u64::from_be_bytes(h.as_bytes()[..8].try_into().unwrap()) % (30 * 86_400_000);
    Item {
        timestamp: 1_750_000_000_000 + t,
        id: *h.as_bytes(),
    }
}

struct Run {
    rounds: usize,
    up: usize,
    down: usize,
    have: usize,
    need: usize,
    secs: f64,
    allocs: u64,
}

fn ours(a: &Items, b: &Items, config: Config) -> (Run, Vec<Vec<u8>>) {
    let (allocs, start) = (ALLOCS.load(Relaxed), cpu_secs());
    let mut init = Initiator::new(a, config).unwrap();
    let resp = Responder::new(b, config).unwrap();
    let (mut have, mut need, mut log) = (vec![], vec![], vec![]);
    let mut q = init.initiate().unwrap();
    let (mut rounds, mut up, mut down) = (0, 0, 0);
    loop {
        rounds += 1;
        up += q.len();
        let answer = resp.respond(&q).unwrap();
        down += answer.len();
        log.push(std::mem::take(&mut q));
        log.push(answer.clone());
        match init.reconcile(&answer, &mut have, &mut need).unwrap() {
            Some(next) => q = next,
            None => break,
        }
    }
    let run = Run {
        rounds,
        up,
        down,
        have: have.len(),
        need: need.len(),
        secs: cpu_secs() - start,
        allocs: ALLOCS.load(Relaxed) - allocs,
    };
    (run, log)
}

fn theirs(
    a: &NegentropyStorageVector,
    b: &NegentropyStorageVector,
    limit: u64,
) -> (Run, Vec<Vec<u8>>) {
    let (allocs, start) = (ALLOCS.load(Relaxed), cpu_secs());
    let mut init = Negentropy::borrowed(a, limit).unwrap();
    let mut resp = Negentropy::borrowed(b, limit).unwrap();
    let (mut have, mut need, mut log) = (vec![], vec![], vec![]);
    let mut q = init.initiate().unwrap();
    let (mut rounds, mut up, mut down) = (0, 0, 0);
    loop {
        rounds += 1;
        up += q.len();
        let answer = resp.reconcile(&q).unwrap();
        down += answer.len();
        log.push(std::mem::take(&mut q));
        log.push(answer.clone());
        match init
            .reconcile_with_ids(&answer, &mut have, &mut need)
            .unwrap()
        {
            Some(next) => q = next,
            None => break,
        }
    }
    let run = Run {
        rounds,
        up,
        down,
        have: have.len(),
        need: need.len(),
        secs: cpu_secs() - start,
        allocs: ALLOCS.load(Relaxed) - allocs,
    };
    (run, log)
}

fn storage(items: &[Item]) -> NegentropyStorageVector {
    let mut s = NegentropyStorageVector::with_capacity(items.len());
    for i in items {
        s.insert(i.timestamp, negentropy::Id::from_byte_array(i.id))
            .unwrap();
    }
    s.seal().unwrap();
    s
}

fn main() {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("numbers"))
        .collect();
    let n = args.first().copied().unwrap_or(1_000_000);
    let ks = if args.len() > 1 {
        args[1..].to_vec()
    } else {
        vec![1, 100, 10_000]
    };
    let config = Config::default();
    println!(
        "n = {n} common ids, frame limit {} bytes",
        config.frame_limit
    );
    println!(
        "{:>7} {:>3} {:>10} {:>10} {:>10} {:>6} {:>6} | {:>9} {:>9} | {:>9} {:>9} | {:>8} {:>8}",
        "k",
        "rtt",
        "bytes a→b",
        "bytes b→a",
        "total",
        "have",
        "need",
        "ours ms",
        "theirs ms",
        "ours allc",
        "thr allc",
        "ours bld",
        "thr bld"
    );
    let common: Vec<Item> = (0..n).map(item).collect();
    for &k in &ks {
        let mut a = common.clone();
        let mut b = common.clone();
        a.extend((0..k.div_ceil(2)).map(|i| item(n + i)));
        b.extend((0..k / 2).map(|i| item(n + k + i)));

        let t = cpu_secs();
        let (ia, ib) = (
            Items::new(a.clone()).unwrap(),
            Items::new(b.clone()).unwrap(),
        );
        let ours_build = cpu_secs() - t;
        let t = cpu_secs();
        let (sa, sb) = (storage(&a), storage(&b));
        let theirs_build = cpu_secs() - t;

        let (o, our_log) = ours(&ia, &ib, config);
        let (t, their_log) = theirs(&sa, &sb, config.frame_limit as u64);
        assert_eq!(
            our_log, their_log,
            "messages differ from the negentropy crate's"
        );
        assert_eq!((o.have as u64, o.need as u64), (k.div_ceil(2), k / 2));
        assert_eq!((t.have, t.need, t.rounds), (o.have, o.need, o.rounds));
        println!("{:>7} {:>3} {:>10} {:>10} {:>10} {:>6} {:>6} | {:>9.1} {:>9.1} | {:>9} {:>9} | {:>8.0} {:>8.0}",
            k, o.rounds, o.up, o.down, o.up + o.down, o.have, o.need,
            o.secs * 1e3, t.secs * 1e3, o.allocs, t.allocs, ours_build * 1e3, theirs_build * 1e3);
    }
    println!("(messages identical to the negentropy crate's in every round; build = sort + prefix sums, ms)");
}
