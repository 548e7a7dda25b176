//! Direct-Rust baselines for `bench/foundation.exs`: the same work the NIFs do,
//! called straight from Rust, so the Elixir side can print NIF/Rust ratios
//! measured in the same run, round by round, alternating with the NIF.
//!
//! Protocol (stdin → stdout, one line each): `<measurement> <arg> <millis>`
//! answers the operations per second of one round of `<millis>`:
//! - `blake3 <size> <ms>`: hashes of a `<size>`-byte input
//! - `sign 64 <ms>` / `verify 64 <ms>`: Ed25519 on a 64-byte message

use std::hint::black_box;
use std::io::{BufRead, Write};
use std::time::{Duration, Instant};

use keyring_core::hash::digest;
use keyring_core::identity::{verify_strict, KeyPair};

/// Operations per second of `op` over one round of `ms` milliseconds.
fn rate(ms: u64, mut op: impl FnMut()) -> f64 {
    let round = Duration::from_millis(ms);
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < round {
        for _ in 0..4 {
            op();
        }
        n += 4;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    let kp = KeyPair::generate().expect("random source");
    let msg = [7u8; 64];
    let sig = kp.sign(&msg);
    let pk = kp.public_key();
    let stdin = std::io::stdin();
    let mut out = std::io::stdout().lock();
    for line in stdin.lock().lines() {
        let Ok(line) = line else { break };
        let parts: Vec<&str> = line.split_whitespace().collect();
        let [what, arg, ms] = parts[..] else {
            let _ = writeln!(out, "error bad request");
            continue;
        };
        let (Ok(arg), Ok(ms)) = (arg.parse::<usize>(), ms.parse::<u64>()) else {
            let _ = writeln!(out, "error bad numbers");
            continue;
        };
        let ops = match what {
            "blake3" => {
                let data = vec![0xA5u8; arg];
                rate(ms, || {
                    black_box(digest(black_box(&data)));
                })
            }
            "sign" => rate(ms, || {
                black_box(kp.sign(black_box(&msg)));
            }),
            "verify" => rate(ms, || {
                black_box(verify_strict(&pk, black_box(&msg), &sig).unwrap_or(false));
            }),
            _ => {
                let _ = writeln!(out, "error unknown measurement");
                continue;
            }
        };
        let _ = writeln!(out, "{ops:.1}");
        let _ = out.flush();
    }
}
