//! Ring scenarios: incremental verification, forks, invites in the log, root
//! rotation, admin expiry, anti-entropy. Each test is named after what it proves.

use keyring_core::identity::KeyPair;
use keyring_core::membership::{
    Entry, Invite, InviteFields, MembershipError as E, Op, PublicKey, Registry, Ring, SharedRing,
    JOIN_BUDGET_WINDOW_MS, MAX_CLOCK_SKEW_MS, MAX_PENDING,
};
use std::sync::Arc;

const T0: u64 = 1_700_000_000_000;

fn kp() -> KeyPair {
    KeyPair::generate().unwrap()
}

fn add(key: PublicKey) -> Op {
    Op::AddMember {
        key,
        expires_at_ms: 0,
        roles: vec![],
    }
}

fn bytes(entries: &[Entry]) -> Vec<Vec<u8>> {
    entries.iter().map(Entry::encode).collect()
}

fn all(ring: &Ring) -> Vec<Vec<u8>> {
    ring.entries().iter().map(|e| e.encode()).collect()
}

fn ingest(ring: &mut Ring, entries: &[Vec<u8>]) -> keyring_core::membership::IngestReport {
    ring.ingest(entries.iter().map(Vec::as_slice), T0)
}

/// A replica that holds only the genesis of `ring`.
fn replica(ring: &Ring) -> Ring {
    Ring::open([ring.entries()[0].encode().as_slice()]).unwrap()
}

fn members(ring: &Ring) -> Vec<PublicKey> {
    ring.summary(T0).members.iter().map(|m| m.key).collect()
}

fn is_member(ring: &Ring, key: &KeyPair) -> bool {
    members(ring).contains(&key.public_key())
}

#[test]
fn ingesting_known_entries_costs_no_verification() {
    let root = kp();
    let mut a = Ring::create(&root, "ops", vec![], T0).unwrap();
    for _ in 0..50 {
        a.append(&root, add(kp().public_key()), T0).unwrap();
    }
    assert_eq!(
        a.verifications(),
        0,
        "appending our own entries verifies nothing"
    );
    let mut b = replica(&a);
    let report = ingest(&mut b, &all(&a));
    assert_eq!((report.added, report.duplicates), (50, 1));
    assert_eq!(
        b.verifications(),
        51,
        "genesis at open, then each entry once"
    );
    let report = ingest(&mut b, &all(&a));
    assert_eq!((report.added, report.duplicates), (0, 51));
    let head = [a.entries().last().unwrap().encode()];
    for _ in 0..1000 {
        ingest(&mut b, &head);
    }
    assert_eq!(b.verifications(), 51);
    assert_eq!(b.summary(T0), a.summary(T0));
}

#[test]
fn entries_arriving_before_their_parents_are_held_then_promoted() {
    let root = kp();
    let mut a = Ring::create(&root, "ops", vec![], T0).unwrap();
    for _ in 0..20 {
        a.append(&root, add(kp().public_key()), T0).unwrap();
    }
    let mut entries = all(&a);
    entries.reverse();
    let mut b = replica(&a);
    let report = ingest(&mut b, &entries[..10]);
    assert_eq!((report.added, report.held), (0, 10));
    assert_eq!(b.pending_len(), 10);
    let report = ingest(&mut b, &entries[10..]);
    assert_eq!(report.added, 20);
    assert_eq!(b.pending_len(), 0);
    assert_eq!(b.summary(T0), a.summary(T0));
    assert_eq!(b.verifications(), 21);
}

#[test]
fn entries_with_unknown_parents_are_held_within_a_bound() {
    let root = kp();
    let a = Ring::create(&root, "ops", vec![], T0).unwrap();
    let mut b = replica(&a);
    let orphans: Vec<Vec<u8>> = (0..MAX_PENDING + 100)
        .map(|i| {
            let body = keyring_core::membership::Body {
                keyring_id: root.public_key(),
                seq: 5,
                prev_hash: [(i % 251) as u8; 32].map(|b| b ^ (i / 251) as u8),
                timestamp_ms: T0,
                signer: root.public_key(),
                op: add(kp().public_key()),
            };
            Entry::sign(body, &root).unwrap().encode()
        })
        .collect();
    ingest(&mut b, &orphans);
    assert_eq!(b.pending_len(), MAX_PENDING);
    assert_eq!(b.verifications(), 1, "held entries are not verified");
    // The honest log still extends.
    let mut a = a;
    a.append(&root, add(kp().public_key()), T0).unwrap();
    assert_eq!(ingest(&mut b, &all(&a)).added, 1);
}

#[test]
fn a_removed_admin_cannot_keep_access_by_forking_from_an_earlier_position() {
    let (root, a, m) = (kp(), kp(), kp());
    let mut honest = Ring::create(&root, "ops", vec![a.public_key(), m.public_key()], T0).unwrap();
    let mut forker = replica(&honest);
    let x = kp();
    honest.append(&m, add(x.public_key()), T0 + 1).unwrap();
    honest.append(&a, add(kp().public_key()), T0 + 2).unwrap();
    honest
        .append(
            &root,
            Op::RemoveMember {
                key: m.public_key(),
            },
            T0 + 3,
        )
        .unwrap();
    // m forks from the genesis (where it still was an admin) and keeps going.
    let (z, w) = (kp(), kp());
    forker.append(&m, add(z.public_key()), T0 + 1).unwrap();
    forker.append(&m, add(w.public_key()), T0 + 5).unwrap();
    forker
        .append(
            &m,
            Op::RemoveMember {
                key: a.public_key(),
            },
            T0 + 6,
        )
        .unwrap();
    let (h, f) = (all(&honest), all(&forker));
    // Whatever each replica saw first, all settle on the honest branch.
    for order in [[&h, &f], [&f, &h]] {
        let mut r = replica(&honest);
        for batch in order {
            ingest(&mut r, batch);
        }
        assert_eq!(r.head_hash(), honest.head_hash());
        assert!(!is_member(&r, &z) && !is_member(&r, &w) && !is_member(&r, &m));
        assert!(is_member(&r, &x) && is_member(&r, &a));
        assert_eq!(r.summary(T0).forks.len(), 1);
    }
    // The forker's own replica switches too, and says which entries it lost.
    let report = ingest(&mut forker, &h);
    let switch = report.switch.expect("the chain moved to the honest branch");
    assert_eq!(switch.at, 0);
    assert_eq!(switch.abandoned.len(), 3);
    assert_eq!(forker.head_hash(), honest.head_hash());
    assert_eq!(report.forks.len(), 1);
}

#[test]
fn concurrent_honest_admins_converge_and_the_loser_can_append_again() {
    let (root, a, b) = (kp(), kp(), kp());
    let mut ra = Ring::create(&root, "ops", vec![a.public_key(), b.public_key()], T0).unwrap();
    let mut rb = replica(&ra);
    let (x, y) = (kp(), kp());
    ra.append(&a, add(x.public_key()), T0 + 1).unwrap();
    rb.append(&b, add(y.public_key()), T0 + 1).unwrap();
    let (ea, eb) = (all(&ra), all(&rb));
    let sa = ingest(&mut ra, &eb).switch;
    let sb = ingest(&mut rb, &ea).switch;
    assert_eq!(ra.summary(T0), rb.summary(T0));
    // Exactly one side moved; its author appends its op again on the winner.
    let (loser, lost) = match (sa, sb) {
        (Some(s), None) => (&mut ra, s),
        (None, Some(s)) => (&mut rb, s),
        other => panic!("expected one switch, got {other:?}"),
    };
    assert_eq!(lost.abandoned.len(), 1);
    let abandoned = &lost.abandoned[0].body;
    let signer = if abandoned.signer == a.public_key() {
        &a
    } else {
        &b
    };
    loser.append(signer, abandoned.op.clone(), T0 + 2).unwrap();
    assert!(is_member(loser, &x) && is_member(loser, &y));
}

#[test]
fn a_revocation_on_a_losing_branch_is_still_honoured() {
    let (root, a, b, c) = (kp(), kp(), kp(), kp());
    let mut r1 = Ring::create(&root, "ops", vec![a.public_key(), b.public_key()], T0).unwrap();
    r1.append(&a, add(c.public_key()), T0).unwrap();
    let mut r2 = Ring::open(all(&r1).iter().map(Vec::as_slice)).unwrap();
    // The root's branch wins the fork; b's revocation of c is on the other.
    r1.append(&root, add(kp().public_key()), T0 + 1).unwrap();
    r2.append(
        &b,
        Op::RemoveMember {
            key: c.public_key(),
        },
        T0 + 1,
    )
    .unwrap();
    let (e1, e2) = (all(&r1), all(&r2));
    ingest(&mut r1, &e2);
    ingest(&mut r2, &e1);
    for r in [&r1, &r2] {
        assert_eq!(r.head_hash(), r1.head_hash());
        assert!(!is_member(r, &c), "c stays refused");
        assert!(r.summary(T0).revoked.contains(&c.public_key()));
    }
    // c cannot come back through the winning chain either.
    assert_eq!(
        r1.append(&a, add(c.public_key()), T0 + 2).unwrap_err(),
        E::Revoked { seq: 3 }
    );
}

#[test]
fn a_leaked_old_root_that_forks_from_before_its_rotation_loses() {
    let (root, root2, a) = (kp(), kp(), kp());
    let mut honest = Ring::create(&root, "ops", vec![a.public_key()], T0).unwrap();
    let mut thief = replica(&honest);
    honest
        .append(
            &root,
            Op::RotateRoot {
                new_root: root2.public_key(),
            },
            T0 + 1,
        )
        .unwrap();
    let evil = kp();
    thief.append(&root, add(evil.public_key()), T0 + 1).unwrap();
    thief
        .append(
            &root,
            Op::RemoveAdmin {
                key: a.public_key(),
            },
            T0 + 2,
        )
        .unwrap();
    let mut r = replica(&honest);
    ingest(&mut r, &all(&thief));
    ingest(&mut r, &all(&honest));
    assert_eq!(r.head_hash(), honest.head_hash());
    assert!(!is_member(&r, &evil));
    assert_eq!(r.summary(T0).root, root2.public_key());
}

#[test]
fn root_rotation_hands_over_the_root_role_and_the_old_root_stops_being_an_admin() {
    let (root, root2, a) = (kp(), kp(), kp());
    let mut ring = Ring::create(&root, "ops", vec![a.public_key()], T0).unwrap();
    assert_eq!(
        ring.append(
            &a,
            Op::RotateRoot {
                new_root: a.public_key()
            },
            T0
        )
        .unwrap_err(),
        E::NotTheRoot { seq: 1 }
    );
    ring.append(
        &root,
        Op::RotateRoot {
            new_root: root2.public_key(),
        },
        T0,
    )
    .unwrap();
    let s = ring.summary(T0);
    assert_eq!(
        s.keyring_id,
        root.public_key(),
        "the id stays the genesis key"
    );
    assert_eq!(s.root, root2.public_key());
    assert!(!members(&ring).contains(&root.public_key()));
    assert!(s
        .members
        .iter()
        .any(|m| m.key == root2.public_key() && m.admin));
    assert_eq!(
        ring.append(&root, add(kp().public_key()), T0).unwrap_err(),
        E::NotAnAdmin { seq: 2 }
    );
    // The old root can be revoked outright; the new one cannot.
    ring.append(
        &a,
        Op::RemoveMember {
            key: root.public_key(),
        },
        T0,
    )
    .unwrap();
    assert!(matches!(
        ring.append(
            &a,
            Op::RemoveMember {
                key: root2.public_key()
            },
            T0
        ),
        Err(E::InvalidOperation { .. })
    ));
    assert_eq!(
        ring.append(
            &root2,
            Op::RotateRoot {
                new_root: root.public_key()
            },
            T0
        )
        .unwrap_err(),
        E::Revoked { seq: 3 }
    );
    let reopened = Ring::open(all(&ring).iter().map(Vec::as_slice)).unwrap();
    assert_eq!(reopened.summary(T0), ring.summary(T0));
}

#[test]
fn an_admin_stops_being_an_admin_when_its_right_expires() {
    let (root, a) = (kp(), kp());
    let mut ring = Ring::create(&root, "ops", vec![], T0).unwrap();
    ring.append(
        &root,
        Op::AddAdmin {
            key: a.public_key(),
            expires_at_ms: T0 + 100,
        },
        T0,
    )
    .unwrap();
    ring.append(&a, add(kp().public_key()), T0 + 99).unwrap();
    let admin_at = |r: &Ring, t| {
        r.summary(t)
            .members
            .iter()
            .any(|m| m.key == a.public_key() && m.admin)
    };
    assert!(admin_at(&ring, T0 + 99));
    assert!(!admin_at(&ring, T0 + 100));
    assert_eq!(
        ring.append(&a, add(kp().public_key()), T0 + 100)
            .unwrap_err(),
        E::NotAnAdmin { seq: 3 }
    );
    // Its member record (if any) outlives the admin right.
    ring.append(
        &root,
        Op::AddMember {
            key: a.public_key(),
            expires_at_ms: 0,
            roles: vec!["db".into()],
        },
        T0 + 100,
    )
    .unwrap();
    let s = ring.summary(T0 + 200);
    let m = s.members.iter().find(|m| m.key == a.public_key()).unwrap();
    assert_eq!((m.admin, m.roles.clone()), (false, vec!["db".to_string()]));
}

fn invite(
    issuer: &KeyPair,
    ring: &Ring,
    token: u8,
    max_uses: u16,
    bound: Option<PublicKey>,
) -> Invite {
    Invite::sign(
        InviteFields {
            keyring_id: ring.keyring_id(),
            token: [token; 16],
            expires_at_ms: T0 + 2 * JOIN_BUDGET_WINDOW_MS,
            max_uses,
            bound_key: bound,
            address_hint: "127.0.0.1:1".into(),
            roles: vec!["web".into()],
        },
        issuer,
    )
    .unwrap()
}

/// Admits `joiner` with `inv` at `ring` (signed by `admin`).
fn join(
    ring: &mut Ring,
    admin: &KeyPair,
    inv: &Invite,
    joiner: PublicKey,
    now: u64,
) -> Result<Entry, E> {
    let op = ring.admit(inv, joiner, now, 1000)?;
    ring.append(admin, op, now)
}

#[test]
fn a_one_time_invite_spent_at_one_admin_is_refused_by_every_admin() {
    let (root, a1, a2) = (kp(), kp(), kp());
    let mut r1 = Ring::create(&root, "ops", vec![a1.public_key(), a2.public_key()], T0).unwrap();
    let mut r2 = replica(&r1);
    let inv = invite(&a1, &r1, 1, 1, None);
    let entry = join(&mut r1, &a1, &inv, kp().public_key(), T0).unwrap();
    assert!(matches!(entry.body.op, Op::Join { max_uses: 1, .. }));
    ingest(&mut r2, &all(&r1));
    assert_eq!(
        r2.admit(&inv, kp().public_key(), T0, 1000).unwrap_err(),
        E::InviteSpent {
            seq: 2,
            uses: 1,
            max_uses: 1
        }
    );
    // An admin that ignores the rule cannot get such a join accepted anywhere.
    let crafted = Op::Join {
        key: kp().public_key(),
        roles: vec![],
        issuer: a1.public_key(),
        token: [1; 16],
        max_uses: 1,
    };
    assert_eq!(
        r2.append(&a2, crafted, T0).unwrap_err(),
        E::InviteSpent {
            seq: 2,
            uses: 1,
            max_uses: 1
        }
    );
}

#[test]
fn invite_use_caps_are_counted_from_the_log() {
    let (root, a) = (kp(), kp());
    let mut ring = Ring::create(&root, "ops", vec![a.public_key()], T0).unwrap();
    let inv = invite(&a, &ring, 2, 3, None);
    for _ in 0..3 {
        join(&mut ring, &a, &inv, kp().public_key(), T0).unwrap();
    }
    assert!(matches!(
        join(&mut ring, &a, &inv, kp().public_key(), T0),
        Err(E::InviteSpent {
            uses: 3,
            max_uses: 3,
            ..
        })
    ));
    let unlimited = invite(&a, &ring, 3, 0, None);
    for _ in 0..5 {
        join(&mut ring, &a, &unlimited, kp().public_key(), T0).unwrap();
    }
}

#[test]
fn a_revoked_invite_admits_no_one() {
    let (root, a) = (kp(), kp());
    let mut ring = Ring::create(&root, "ops", vec![a.public_key()], T0).unwrap();
    let inv = invite(&a, &ring, 4, 0, None);
    join(&mut ring, &a, &inv, kp().public_key(), T0).unwrap();
    ring.append(
        &root,
        Op::RevokeInvite {
            issuer: a.public_key(),
            token: [4; 16],
        },
        T0,
    )
    .unwrap();
    assert_eq!(
        join(&mut ring, &a, &inv, kp().public_key(), T0).unwrap_err(),
        E::InviteRevoked { seq: 3 }
    );
    // Revoking before any use works too.
    let fresh = invite(&a, &ring, 5, 1, None);
    ring.append(
        &a,
        Op::RevokeInvite {
            issuer: a.public_key(),
            token: [5; 16],
        },
        T0,
    )
    .unwrap();
    assert!(matches!(
        ring.admit(&fresh, kp().public_key(), T0, 1000),
        Err(E::InviteRevoked { .. })
    ));
}

#[test]
fn a_bound_invite_admits_only_its_key() {
    let (root, a, joiner) = (kp(), kp(), kp());
    let mut ring = Ring::create(&root, "ops", vec![a.public_key()], T0).unwrap();
    let inv = invite(&a, &ring, 6, 1, Some(joiner.public_key()));
    assert_eq!(
        ring.admit(&inv, kp().public_key(), T0, 1000).unwrap_err(),
        E::InviteBoundToOtherKey
    );
    join(&mut ring, &a, &inv, joiner.public_key(), T0).unwrap();
    assert!(is_member(&ring, &joiner));
}

#[test]
fn an_invite_never_renews_or_changes_a_member() {
    let (root, a, member) = (kp(), kp(), kp());
    let mut ring = Ring::create(&root, "ops", vec![a.public_key()], T0).unwrap();
    ring.append(
        &a,
        Op::AddMember {
            key: member.public_key(),
            expires_at_ms: T0 + 10,
            roles: vec![],
        },
        T0,
    )
    .unwrap();
    let inv = invite(&a, &ring, 7, 0, None);
    for now in [T0, T0 + 10, T0 + 1_000] {
        assert_eq!(
            ring.admit(&inv, member.public_key(), now, 1000)
                .unwrap_err(),
            E::AlreadyMember { seq: 2 }
        );
    }
    for key in [a.public_key(), root.public_key()] {
        assert!(matches!(
            ring.admit(&inv, key, T0, 1000),
            Err(E::AlreadyMember { .. })
        ));
    }
    let crafted = Op::Join {
        key: member.public_key(),
        roles: vec!["admin2".into()],
        issuer: a.public_key(),
        token: [7; 16],
        max_uses: 0,
    };
    assert_eq!(
        ring.append(&a, crafted, T0).unwrap_err(),
        E::AlreadyMember { seq: 2 }
    );
    ring.append(
        &a,
        Op::RemoveMember {
            key: member.public_key(),
        },
        T0,
    )
    .unwrap();
    assert_eq!(
        ring.admit(&inv, member.public_key(), T0, 1000).unwrap_err(),
        E::Revoked { seq: 3 }
    );
}

#[test]
fn the_issuer_join_budget_is_counted_from_the_log() {
    let (root, a, b) = (kp(), kp(), kp());
    let mut ring = Ring::create(&root, "ops", vec![a.public_key(), b.public_key()], T0).unwrap();
    let inv = invite(&a, &ring, 8, 0, None);
    for _ in 0..2 {
        let op = ring.admit(&inv, kp().public_key(), T0, 2).unwrap();
        ring.append(&b, op, T0).unwrap();
    }
    assert_eq!(
        ring.admit(&inv, kp().public_key(), T0 + 1, 2).unwrap_err(),
        E::JoinBudgetExhausted {
            joins: 2,
            budget: 2
        }
    );
    // Another issuer has its own budget; the window slides.
    let other = invite(&b, &ring, 9, 0, None);
    ring.admit(&other, kp().public_key(), T0 + 1, 2).unwrap();
    ring.admit(&inv, kp().public_key(), T0 + JOIN_BUDGET_WINDOW_MS + 1, 2)
        .unwrap();
}

#[test]
fn an_invite_from_a_removed_or_foreign_issuer_is_refused() {
    let (root, a) = (kp(), kp());
    let mut ring = Ring::create(&root, "ops", vec![a.public_key()], T0).unwrap();
    let inv = invite(&a, &ring, 10, 0, None);
    let stranger = invite(&kp(), &ring, 11, 0, None);
    assert_eq!(
        ring.admit(&stranger, kp().public_key(), T0, 10)
            .unwrap_err(),
        E::IssuerNotAdmin
    );
    ring.append(
        &root,
        Op::RemoveAdmin {
            key: a.public_key(),
        },
        T0,
    )
    .unwrap();
    assert_eq!(
        ring.admit(&inv, kp().public_key(), T0, 10).unwrap_err(),
        E::IssuerNotAdmin
    );
    let other_ring = Ring::create(&kp(), "x", vec![], T0).unwrap();
    let foreign = invite(&root, &other_ring, 12, 0, None);
    assert_eq!(
        ring.admit(&foreign, kp().public_key(), T0, 10).unwrap_err(),
        E::WrongKeyring { seq: 0 }
    );
    assert_eq!(
        ring.admit(
            &invite(&root, &ring, 13, 0, None),
            kp().public_key(),
            T0 + 2 * JOIN_BUDGET_WINDOW_MS,
            10
        )
        .unwrap_err(),
        E::InviteExpired
    );
}

#[test]
fn entries_dated_beyond_the_clock_skew_are_refused_until_their_time() {
    let root = kp();
    let mut a = Ring::create(&root, "ops", vec![], T0).unwrap();
    let late = T0 + MAX_CLOCK_SKEW_MS + 1;
    a.append(&root, add(kp().public_key()), late).unwrap();
    let mut b = replica(&a);
    let report = b.ingest(all(&a).iter().map(Vec::as_slice), T0);
    assert_eq!(report.errors, vec![E::FromTheFuture { seq: 1 }]);
    let report = b.ingest(all(&a).iter().map(Vec::as_slice), late);
    assert_eq!(report.added, 1);
}

#[test]
fn entries_since_sends_only_what_a_peer_lacks() {
    let (root, a) = (kp(), kp());
    let mut r1 = Ring::create(&root, "ops", vec![a.public_key()], T0).unwrap();
    for _ in 0..5 {
        r1.append(&root, add(kp().public_key()), T0).unwrap();
    }
    let mut r2 = Ring::open(all(&r1).iter().map(Vec::as_slice)).unwrap();
    for _ in 0..3 {
        r1.append(&root, add(kp().public_key()), T0).unwrap();
    }
    r2.append(&a, add(kp().public_key()), T0).unwrap();
    // r2 tells r1 its heads; r1 answers what r2 lacks, and the other way.
    let to_r2 = bytes(
        &r1.entries_since(&r2.locator())
            .into_iter()
            .cloned()
            .collect::<Vec<_>>(),
    );
    assert_eq!(to_r2.len(), 3);
    let to_r1 = bytes(
        &r2.entries_since(&r1.locator())
            .into_iter()
            .cloned()
            .collect::<Vec<_>>(),
    );
    assert_eq!(to_r1.len(), 1);
    ingest(&mut r2, &to_r2);
    ingest(&mut r1, &to_r1);
    assert_eq!(r1.summary(T0), r2.summary(T0));
    let mut h1 = r1.heads();
    let mut h2 = r2.heads();
    assert_eq!(h1.len(), 2);
    assert_eq!(h1[0], h2[0], "same effective head first");
    h1.sort();
    h2.sort();
    assert_eq!(h1, h2);
    assert!(r1.entries_since(&r2.locator()).is_empty());
    assert_eq!(r1.entries_since(&[]).len(), r1.entries().len());
    assert_eq!(r1.entries().len(), 10);
}

#[test]
fn a_registry_shares_rings_and_publishes_their_heads() {
    let root = kp();
    let ring = Ring::create(&root, "ops", vec![], T0).unwrap();
    let id = ring.keyring_id();
    let registry = Registry::default();
    registry.insert(Arc::new(SharedRing::new(ring)));
    let shared = registry.get(&id).unwrap();
    let before = shared.published();
    let entry = shared
        .update(|r| r.append(&root, add(kp().public_key()), T0))
        .unwrap();
    let after = shared.published();
    assert_eq!((before.length, after.length), (1, 2));
    assert_eq!(after.head, entry.hash());
    assert_eq!(after.heads, vec![entry.hash()]);
    assert_eq!(registry.ids(), vec![id]);
    assert!(registry.remove(&id).is_some() && registry.get(&id).is_none());
}
