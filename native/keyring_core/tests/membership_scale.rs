//! A log at the growth cap (100,000 entries) still accepts a revocation, and
//! extending it costs one verification per new entry, never a replay.

use std::time::Instant;

use keyring_core::identity::KeyPair;
use keyring_core::membership::{MembershipError, Op, Ring, MAX_ENTRIES};

const T0: u64 = 1_700_000_000_000;

fn member(i: u64) -> [u8; 32] {
    let mut k = [0u8; 32];
    k[..8].copy_from_slice(&i.to_be_bytes());
    k[31] = 1;
    k
}

#[test]
fn a_full_log_of_100k_entries_still_accepts_a_revocation_at_one_verification() {
    let (root, admin) = (KeyPair::from_seed(&[1; 32]), KeyPair::from_seed(&[2; 32]));
    let mut ring = Ring::create(&root, "big", vec![admin.public_key()], T0).unwrap();
    let genesis = ring.entries()[0].encode();
    let mut replica = Ring::open([genesis.as_slice()]).unwrap();
    let started = Instant::now();
    for i in 1..MAX_ENTRIES {
        let op = Op::AddMember {
            key: member(i),
            expires_at_ms: 0,
            roles: vec![],
        };
        let entry = ring.append(&admin, op, T0 + i).unwrap();
        replica.ingest([entry.encode().as_slice()], T0 + i);
    }
    let built = started.elapsed();
    assert_eq!(ring.len(), MAX_ENTRIES);
    assert_eq!(ring.verifications(), 0);
    assert_eq!(
        replica.verifications(),
        MAX_ENTRIES,
        "each entry verified once"
    );

    // Growth is refused at the cap, for the appender and for a replica.
    let now = T0 + MAX_ENTRIES;
    let grow = Op::AddMember {
        key: member(0),
        expires_at_ms: 0,
        roles: vec![],
    };
    assert_eq!(
        ring.append(&admin, grow, now).unwrap_err(),
        MembershipError::LogFull { seq: MAX_ENTRIES }
    );

    // A revocation is accepted, and costs the replica one verification.
    let started = Instant::now();
    let revoke = ring
        .append(&root, Op::RemoveMember { key: member(7) }, now)
        .unwrap();
    let appended = started.elapsed();
    let started = Instant::now();
    let report = replica.ingest([revoke.encode().as_slice()], now);
    let ingested = started.elapsed();
    assert_eq!(report.added, 1);
    assert_eq!(replica.verifications(), MAX_ENTRIES + 1);
    assert_eq!(replica.head_hash(), ring.head_hash());
    assert!(replica.summary(now).revoked.contains(&member(7)));
    // Admin removal is accepted beyond the cap too.
    ring.append(
        &root,
        Op::RemoveAdmin {
            key: admin.public_key(),
        },
        now,
    )
    .unwrap();
    // A frame of 1000 entries of which the replica holds all but the last
    // costs one verification.
    let all: Vec<Vec<u8>> = ring
        .entries()
        .iter()
        .rev()
        .take(1000)
        .map(|e| e.encode())
        .collect();
    replica.ingest(all.iter().map(Vec::as_slice), now);
    assert_eq!(replica.verifications(), MAX_ENTRIES + 2);
    eprintln!(
        "built 2 x {MAX_ENTRIES} entries in {built:?}; revocation appended in {appended:?}, \
         ingested in {ingested:?}"
    );
    // Generous bounds on a shared machine: no replay of the log (a replay of
    // 100k entries takes seconds).
    assert!(appended.as_millis() < 50 && ingested.as_millis() < 50);
}

#[test]
fn a_revoked_admins_endless_fork_is_held_up_to_the_cap_and_the_log_still_extends() {
    use keyring_core::membership::MAX_SIDE_ENTRIES;
    let (root, mallory) = (KeyPair::from_seed(&[3; 32]), KeyPair::from_seed(&[4; 32]));
    let mut honest = Ring::create(&root, "ops", vec![mallory.public_key()], T0).unwrap();
    let mut fork = Ring::open([honest.entries()[0].encode().as_slice()]).unwrap();
    honest
        .append(
            &root,
            Op::RemoveMember {
                key: mallory.public_key(),
            },
            T0 + 1,
        )
        .unwrap();
    let extra = 50;
    let forked: Vec<Vec<u8>> = (0..MAX_SIDE_ENTRIES as u64 + extra)
        .map(|i| {
            let op = Op::AddMember {
                key: member(i),
                expires_at_ms: 0,
                roles: vec![],
            };
            fork.append(&mallory, op, T0 + 1).unwrap().encode()
        })
        .collect();
    let mut replica = Ring::open(
        honest
            .entries()
            .iter()
            .map(|e| e.encode())
            .collect::<Vec<_>>()
            .iter()
            .map(Vec::as_slice),
    )
    .unwrap();
    let base = replica.verifications();
    // One entry per call, as a flooding peer would send them.
    let started = Instant::now();
    let mut refused = 0;
    for e in &forked {
        let report = replica.ingest([e.as_slice()], T0 + 2);
        refused += report
            .errors
            .iter()
            .filter(|e| **e == MembershipError::TooManyForks)
            .count();
    }
    let flood = started.elapsed();
    assert_eq!(replica.side_len(), MAX_SIDE_ENTRIES);
    // The first entry past the cap is refused; its descendants then wait for
    // a parent that will not come (held, bounded by MAX_PENDING).
    assert_eq!(refused, 1);
    assert_eq!(replica.pending_len() as u64, extra - 1);
    assert_eq!(replica.verifications() - base, MAX_SIDE_ENTRIES as u64);
    assert_eq!(replica.head_hash(), honest.head_hash());
    assert!(!replica
        .summary(T0)
        .members
        .iter()
        .any(|m| m.key == member(0)));
    // The honest log still extends, at one verification.
    let next = honest
        .append(
            &root,
            Op::AddMember {
                key: member(u64::MAX),
                expires_at_ms: 0,
                roles: vec![],
            },
            T0 + 3,
        )
        .unwrap();
    let report = replica.ingest([next.encode().as_slice()], T0 + 3);
    assert_eq!(report.added, 1);
    assert_eq!(replica.head_hash(), honest.head_hash());
    eprintln!(
        "{} fork entries ingested one by one in {flood:?}",
        forked.len()
    );
}
