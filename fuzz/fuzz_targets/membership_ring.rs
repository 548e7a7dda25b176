#![no_main]
//! The membership law under arbitrary schedules: the input is a script of
//! signed operations by fixed admin keys on three replicas and of partial,
//! reordered deliveries between them. Nothing panics, every entry one
//! replica accepted is accepted by all, and once all hold every entry they
//! report the same summary as a ring that got the entries in reverse.
//! Inputs shorter than a full script are extended by a generator seeded
//! from them, so even the first, short inputs drive long schedules.
use std::sync::OnceLock;

use keyring_core::identity::KeyPair;
use keyring_core::membership::{Invite, InviteFields, Op, PublicKey, Ring};
use libfuzzer_sys::fuzz_target;

const T0: u64 = 1_700_000_000_000;

struct World {
    roots: [KeyPair; 2],
    admins: [KeyPair; 3],
    pool: Vec<PublicKey>,
    invite: Invite,
    genesis: Ring,
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let key = |n: u8| KeyPair::from_seed(&[n; 32]);
        let roots = [key(1), key(2)];
        let admins = [key(10), key(11), key(12)];
        let admin_keys = admins.iter().map(KeyPair::public_key).collect();
        let invite = Invite::sign(
            InviteFields {
                keyring_id: roots[0].public_key(),
                token: [1; 16],
                expires_at_ms: u64::MAX,
                max_uses: 2,
                bound_key: None,
                address_hint: String::new(),
                roles: vec![],
            },
            &admins[0],
        )
        .unwrap();
        World {
            pool: (10..20u8).map(|n| key(n).public_key()).collect(),
            genesis: Ring::create(&roots[0], "f", admin_keys, T0).unwrap(),
            roots,
            admins,
            invite,
        }
    })
}

const SCRIPT: usize = 32 * 3;

/// `data`, then xorshift bytes seeded from it, up to a full script.
fn script(data: &[u8]) -> Vec<u8> {
    let mut out: Vec<u8> = data.iter().copied().take(SCRIPT).collect();
    let mut x = data.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3)
    }) | 1;
    while out.len() < SCRIPT {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.push(x as u8);
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let w = world();
    let mut rings: Vec<Ring> = (0..3).map(|_| w.genesis.clone()).collect();
    let mut now = T0;
    for step in script(data).chunks(3) {
        let [a, b, c] = [step[0], step[1], step[2]];
        let r = (a % 3) as usize;
        now += 1;
        if a & 0x80 != 0 {
            let from = (b % 3) as usize;
            let batch: Vec<Vec<u8>> = rings[from]
                .entries()
                .iter()
                .enumerate()
                .filter(|(i, _)| (c >> (i % 8)) & 1 == 1)
                .map(|(_, e)| e.encode())
                .rev()
                .collect();
            let report = rings[r].ingest(batch.iter().map(Vec::as_slice), now);
            assert!(report.errors.is_empty(), "{:?}", report.errors);
            continue;
        }
        let target = w.pool[(c % 10) as usize];
        let op = match (a >> 2) % 8 {
            0 | 1 => Op::AddMember {
                key: target,
                expires_at_ms: if c & 0x10 != 0 { now + 3 } else { 0 },
                roles: vec![],
            },
            2 => Op::RemoveMember { key: target },
            3 => Op::AddAdmin {
                key: target,
                expires_at_ms: if c & 0x10 != 0 { now + 5 } else { 0 },
            },
            4 => Op::RemoveAdmin { key: target },
            5 => Op::RotateRoot {
                new_root: w.roots[(c & 1) as usize].public_key(),
            },
            6 => match rings[r].admit(&w.invite, target, now, 1000) {
                Ok(op) => op,
                Err(_) => continue,
            },
            _ => Op::RevokeInvite {
                issuer: w.invite.issuer,
                token: w.invite.token,
            },
        };
        let signer = match b % 4 {
            3 => {
                let root = rings[r].summary(now).root;
                match w.roots.iter().find(|k| k.public_key() == root) {
                    Some(k) => k,
                    None => continue,
                }
            }
            i => &w.admins[i as usize],
        };
        let _ = rings[r].append(signer, op, now);
    }
    let mut union: Vec<Vec<u8>> = rings
        .iter()
        .flat_map(|r| {
            r.entries()
                .into_iter()
                .map(|e| e.encode())
                .collect::<Vec<_>>()
        })
        .collect();
    union.sort();
    union.dedup();
    for ring in &mut rings {
        let report = ring.ingest(union.iter().map(Vec::as_slice), now);
        assert!(report.errors.is_empty(), "{:?}", report.errors);
    }
    let mut fresh = w.genesis.clone();
    for e in union.iter().rev() {
        fresh.ingest([e.as_slice()], now);
    }
    let expected = fresh.summary(now);
    for ring in &rings {
        assert_eq!(ring.summary(now), expected);
    }
});
