//! Direct-Rust baselines for `bench/foundation.exs`: the same work the NIFs do,
//! called straight from Rust, so the Elixir side can print NIF/Rust ratios
//! measured in the same run.
//!
//! Usage: `keyring_bench crypto <rounds> <seconds_per_round>`
//! Prints one `name value` line per measurement (ops/s or bytes/s), each the
//! median of `rounds` rounds.

use std::hint::black_box;
use std::time::{Duration, Instant};

use keyring_core::hash::digest;
use keyring_core::identity::{verify_strict, KeyPair};

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(|a, b| a.total_cmp(b));
    xs[xs.len() / 2]
}

/// Operations per second of `op`, median over `rounds` rounds of `secs` each.
fn rate(rounds: usize, secs: f64, mut op: impl FnMut()) -> f64 {
    let per_round = Duration::from_secs_f64(secs);
    let samples = (0..rounds)
        .map(|_| {
            let start = Instant::now();
            let mut n = 0u64;
            while start.elapsed() < per_round {
                for _ in 0..8 {
                    op();
                }
                n += 8;
            }
            n as f64 / start.elapsed().as_secs_f64()
        })
        .collect();
    median(samples)
}

fn crypto(rounds: usize, secs: f64) {
    for size in [1usize << 10, 64 << 10, 1 << 20, 64 << 20] {
        let data = vec![0xA5u8; size];
        let ops = rate(rounds, secs, || {
            black_box(digest(black_box(&data)));
        });
        println!("blake3_{size} {:.1}", ops * size as f64);
    }
    let kp = KeyPair::generate().expect("random");
    let msg = [7u8; 64];
    let sig = kp.sign(&msg);
    let pk = kp.public_key();
    println!(
        "ed25519_sign {:.1}",
        rate(rounds, secs, || {
            black_box(kp.sign(black_box(&msg)));
        })
    );
    println!(
        "ed25519_verify {:.1}",
        rate(rounds, secs, || {
            black_box(verify_strict(&pk, black_box(&msg), &sig).unwrap());
        })
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let rounds = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(5);
    let secs = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(0.3);
    match args.get(1).map(String::as_str) {
        Some("crypto") => crypto(rounds, secs),
        _ => eprintln!("usage: keyring_bench crypto [rounds] [seconds_per_round]"),
    }
}
