//! Codec and rule tests; ring scenarios live in `tests/membership_*.rs`.

use super::*;
use crate::identity::KeyPair;

const T0: u64 = 1_700_000_000_000;

fn kp() -> KeyPair {
    KeyPair::generate().unwrap()
}

fn add(key: &KeyPair, roles: &[&str], expires_at_ms: u64) -> Op {
    Op::AddMember {
        key: key.public_key(),
        expires_at_ms,
        roles: roles.iter().map(|r| r.to_string()).collect(),
    }
}

fn encoded(ring: &Ring) -> Vec<Vec<u8>> {
    ring.entries().iter().map(|e| e.encode()).collect()
}

fn next_body(ring: &Ring, signer: &KeyPair, op: Op) -> Body {
    let head = ring.chain().last().unwrap().clone();
    Body {
        keyring_id: ring.keyring_id(),
        seq: head.body.seq + 1,
        prev_hash: head.hash(),
        timestamp_ms: head.body.timestamp_ms,
        signer: signer.public_key(),
        op,
    }
}

#[test]
fn every_op_roundtrips_through_the_canonical_encoding() {
    let (root, a, b) = (kp(), kp(), kp());
    let mut ring = Ring::create(&root, "ops", vec![a.public_key()], T0).unwrap();
    let ops = vec![
        add(&b, &["db", "web"], T0 + 5),
        Op::AddAdmin {
            key: b.public_key(),
            expires_at_ms: T0 + 9,
        },
        Op::RemoveAdmin {
            key: b.public_key(),
        },
        Op::Join {
            key: kp().public_key(),
            roles: vec!["x".into()],
            issuer: a.public_key(),
            token: [7; 16],
            max_uses: 3,
        },
        Op::RevokeInvite {
            issuer: a.public_key(),
            token: [7; 16],
        },
        Op::RemoveMember {
            key: b.public_key(),
        },
        Op::RotateRoot {
            new_root: kp().public_key(),
        },
    ];
    for op in ops {
        let signer = if matches!(op, Op::RotateRoot { .. }) {
            &root
        } else {
            &a
        };
        ring.append(signer, op, T0 + 1).unwrap();
    }
    for e in ring.entries() {
        let bytes = e.encode();
        assert_eq!(bytes.len(), e.encoded_len());
        let back = Entry::decode(&bytes).unwrap();
        assert_eq!(&back, e);
        assert!(back.signature_valid());
    }
    let reopened = Ring::open(encoded(&ring).iter().map(Vec::as_slice)).unwrap();
    assert_eq!(reopened.summary(T0 + 2), ring.summary(T0 + 2));
}

#[test]
fn version_1_entries_and_invites_are_refused_by_version() {
    let root = kp();
    let ring = Ring::create(&root, "ops", vec![], T0).unwrap();
    let mut bytes = ring.entries()[0].encode();
    bytes[2] = 1;
    assert_eq!(
        Entry::decode(&bytes),
        Err(MembershipError::UnsupportedVersion(1))
    );
    let mut invite = invite_for(&root, 1, None).encode();
    invite[0] = 1;
    assert_eq!(
        Invite::decode(&invite),
        Err(MembershipError::UnsupportedVersion(1))
    );
}

fn invite_for(issuer: &KeyPair, max_uses: u16, bound_key: Option<PublicKey>) -> Invite {
    Invite::sign(
        InviteFields {
            keyring_id: issuer.public_key(),
            token: [9; 16],
            expires_at_ms: T0 + 60_000,
            max_uses,
            bound_key,
            address_hint: "127.0.0.1:4433".into(),
            roles: vec!["web".into(), "db".into()],
        },
        issuer,
    )
    .unwrap()
}

#[test]
fn invite_roundtrips_and_verifies() {
    let root = kp();
    let bound = kp().public_key();
    for (max_uses, bound_key) in [(1, None), (0, Some(bound)), (500, Some(bound))] {
        let invite = invite_for(&root, max_uses, bound_key);
        let decoded = Invite::decode(&invite.encode()).unwrap();
        assert_eq!(decoded, invite);
        assert_eq!(decoded.roles, vec!["db", "web"]);
        assert_eq!(decoded.one_time(), max_uses == 1);
        assert_eq!(decoded.bound_key, bound_key);
        decoded.verify(T0).unwrap();
        assert_eq!(
            decoded.verify(T0 + 60_000),
            Err(MembershipError::InviteExpired)
        );
        let mut tampered = invite.encode();
        tampered[1 + 32 + 32] ^= 1; // token
        assert!(Invite::decode(&tampered).unwrap().verify(T0).is_err());
    }
}

/// Malformed inputs: every one must give a typed error, never a panic.
#[test]
fn malformed_entry_and_invite_corpus_is_rejected() {
    let root = kp();
    let mut ring = Ring::create(&root, "ops", vec![], T0).unwrap();
    ring.append(&root, add(&kp(), &["a"], 0), T0).unwrap();
    let good = ring.entries()[1].encode();
    let invite = invite_for(&root, 1, Some([3; 32])).encode();
    let mut corpus: Vec<Vec<u8>> = vec![
        vec![],
        vec![0],
        vec![0xff, 0xff],
        vec![0, 0, 0],
        [good.clone(), vec![0]].concat(),
    ];
    for cut in 0..good.len() {
        corpus.push(good[..cut].to_vec());
    }
    // Unknown op, unsorted roles, bad signature block.
    let op_at = 2 + 1 + 32 + 8 + 32 + 8 + 32;
    for code in [8u8, 0xff] {
        let mut v = good.clone();
        v[op_at] = code;
        corpus.push(v);
    }
    let sig_block = good.len() - 68;
    for (off, val) in [(0, 2u8), (1, 7), (2, 1)] {
        let mut v = good.clone();
        v[sig_block + off] = val;
        corpus.push(v);
    }
    for bytes in &corpus {
        assert!(Entry::decode(bytes).is_err(), "accepted {bytes:?}");
    }
    for cut in 0..invite.len() {
        assert!(Invite::decode(&invite[..cut]).is_err());
    }
    let mut v = invite.clone();
    v[1 + 32 + 32 + 16 + 8 + 2] = 0x80; // unknown flag
    assert!(Invite::decode(&v).is_err());
    assert!(Invite::decode(&[invite, vec![1]].concat()).is_err());
}

#[test]
fn role_names_are_restricted() {
    let root = kp();
    let ring = Ring::create(&root, "ops", vec![], T0).unwrap();
    for bad in ["", "UPPER", "with space", &"x".repeat(33)] {
        let body = next_body(&ring, &root, add(&kp(), &[bad], 0));
        assert!(Entry::sign(body, &root).is_err(), "accepted role {bad:?}");
    }
}

#[test]
fn forged_signature_is_rejected_and_costs_one_verification() {
    let (root, mallory) = (kp(), kp());
    let mut ring = Ring::create(&root, "ops", vec![], T0).unwrap();
    // mallory signs a body that claims root as its signer.
    let body = next_body(&ring, &mallory, add(&mallory, &[], 0));
    let mut bytes = Entry::sign(body, &mallory).unwrap().encode();
    let at = 2 + 1 + 32 + 8 + 32 + 8;
    bytes[at..at + 32].copy_from_slice(&root.public_key());
    let before = ring.verifications();
    let report = ring.ingest([bytes.as_slice()], T0);
    assert_eq!(
        report.errors,
        vec![MembershipError::BadSignature { seq: 1 }]
    );
    assert_eq!(ring.verifications(), before + 1);
    assert_eq!(ring.len(), 1);
}

/// An entry's hash does not cover its signature: a copy with a forged
/// signature, offered first (held or verified), must not shadow the real one.
#[test]
fn a_forged_copy_offered_first_does_not_shadow_the_real_entry() {
    let (root, alice) = (kp(), kp());
    let mut source = Ring::create(&root, "ops", vec![], T0).unwrap();
    let genesis = source.entries()[0].encode();
    let first = source
        .append(&root, add(&alice, &[], 0), T0)
        .unwrap()
        .encode();
    let second = source
        .append(&root, add(&kp(), &[], 0), T0)
        .unwrap()
        .encode();
    let forge = |bytes: &[u8]| {
        let mut f = bytes.to_vec();
        let last = f.len() - 1;
        f[last] ^= 1;
        f
    };
    for held in [false, true] {
        let mut ring = Ring::open([genesis.as_slice()]).unwrap();
        if held {
            // Both copies of `second` wait for `first`.
            ring.ingest([forge(&second).as_slice(), second.as_slice()], T0);
            assert_eq!(ring.pending_len(), 2);
        } else {
            let report = ring.ingest([forge(&first).as_slice()], T0);
            assert_eq!(
                report.errors,
                vec![MembershipError::BadSignature { seq: 1 }]
            );
        }
        ring.ingest([first.as_slice()], T0);
        ring.ingest([second.as_slice()], T0);
        assert_eq!(ring.head_hash(), source.head_hash(), "held: {held}");
        assert_eq!(ring.pending_len(), 0);
    }
}

#[test]
fn strict_linear_logs_refuse_forks_gaps_and_broken_links() {
    let (root, alice, bob) = (kp(), kp(), kp());
    let mut ring = Ring::create(&root, "ops", vec![], T0).unwrap();
    let genesis = encoded(&ring)[0].clone();
    let mut other = Ring::open([genesis.as_slice()]).unwrap();
    ring.append(&root, add(&alice, &[], 0), T0).unwrap();
    ring.append(&root, add(&kp(), &[], 0), T0).unwrap();
    other.append(&root, add(&bob, &[], 0), T0).unwrap();
    let ours = encoded(&ring);
    let theirs = encoded(&other);
    let slices = |v: &[Vec<u8>]| v.iter().map(|b| b.to_vec()).collect::<Vec<_>>();
    let merge = |a: &[Vec<u8>], b: &[Vec<u8>]| {
        let (a, b) = (slices(a), slices(b));
        merge_linear(a.iter().map(Vec::as_slice), b.iter().map(Vec::as_slice))
    };
    assert_eq!(
        merge(&ours, &theirs).unwrap_err(),
        MembershipError::Fork { seq: 1 }
    );
    assert_eq!(merge(&ours, &ours[..2]).unwrap().len(), 3);
    assert_eq!(merge(&ours[..1], &ours).unwrap().len(), 3);
    let gap = [ours[0].clone(), ours[2].clone()];
    assert_eq!(
        open_linear(gap.iter().map(Vec::as_slice)).unwrap_err(),
        MembershipError::Gap { seq: 2, len: 1 }
    );
    let broken = [ours[0].clone(), ours[1].clone(), {
        let mut body = next_body(&other, &root, add(&kp(), &[], 0));
        body.seq = 2;
        Entry::sign(body, &root).unwrap().encode()
    }];
    assert_eq!(
        open_linear(broken.iter().map(Vec::as_slice)).unwrap_err(),
        MembershipError::BrokenChain { seq: 2 }
    );
    assert_eq!(
        open_linear(ours[1..].iter().map(Vec::as_slice)).unwrap_err(),
        MembershipError::NoGenesis
    );
}
