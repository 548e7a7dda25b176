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

fn encoded(log: &Log) -> Vec<Vec<u8>> {
    log.entries().iter().map(Entry::encode).collect()
}

fn replay(entries: &[Vec<u8>]) -> Result<Log, MembershipError> {
    Log::from_encoded(entries.iter().map(Vec::as_slice))
}

#[test]
fn root_creates_keyring_and_admin_adds_member() {
    let (root, admin, alice) = (kp(), kp(), kp());
    let mut log = Log::create(&root, "ops", vec![admin.public_key()], T0).unwrap();
    log.append_op(&admin, T0 + 1, add(&alice, &["db", "web"], 0))
        .unwrap();
    let snap = log.snapshot(T0 + 2);
    assert_eq!(snap.keyring_id, root.public_key());
    let keys: Vec<_> = snap.members.iter().map(|m| m.key).collect();
    assert!(keys.contains(&alice.public_key()));
    assert!(keys.contains(&admin.public_key()));
    assert!(keys.contains(&root.public_key()));
    let a = snap
        .members
        .iter()
        .find(|m| m.key == alice.public_key())
        .unwrap();
    assert_eq!(a.roles, vec!["db", "web"]);
    assert!(!a.admin);
    assert_eq!(log.name(), "ops");
}

#[test]
fn every_node_replays_the_same_state_from_bytes() {
    let (root, alice) = (kp(), kp());
    let mut log = Log::create(&root, "ops", vec![], T0).unwrap();
    log.append_op(&root, T0, add(&alice, &[], 0)).unwrap();
    let replayed = replay(&encoded(&log)).unwrap();
    assert_eq!(replayed.head(), log.head());
    assert_eq!(replayed.snapshot(T0), log.snapshot(T0));
    for e in log.entries() {
        assert_eq!(Entry::decode(&e.encode()).unwrap(), *e);
    }
}

#[test]
fn entry_signed_by_non_admin_is_rejected() {
    let (root, alice, mallory) = (kp(), kp(), kp());
    let mut log = Log::create(&root, "ops", vec![], T0).unwrap();
    log.append_op(&root, T0, add(&alice, &[], 0)).unwrap();
    // alice is a member, not an admin.
    let body = log.next_body(alice.public_key(), T0, add(&mallory, &[], 0));
    let forged = Entry::sign(body, &alice).unwrap();
    assert_eq!(
        log.append(forged),
        Err(MembershipError::NotAnAdmin { seq: 2 })
    );
}

#[test]
fn forged_signature_is_rejected() {
    let (root, mallory) = (kp(), kp());
    let log = Log::create(&root, "ops", vec![], T0).unwrap();
    // mallory signs a body that claims root as its signer.
    let body = log.next_body(mallory.public_key(), T0, add(&mallory, &[], 0));
    let mut bytes = Entry::sign(body, &mallory).unwrap().encode();
    // Swap the signer field (offset 2 + 1 + 32 + 8 + 32 + 8) for root's key.
    let at = 2 + 1 + 32 + 8 + 32 + 8;
    bytes[at..at + 32].copy_from_slice(&root.public_key());
    let mut entries = encoded(&log);
    entries.push(bytes);
    assert_eq!(
        replay(&entries).unwrap_err(),
        MembershipError::BadSignature { seq: 1 }
    );
}

#[test]
fn fork_at_an_existing_position_is_rejected() {
    let (root, alice, bob) = (kp(), kp(), kp());
    let mut log = Log::create(&root, "ops", vec![], T0).unwrap();
    let base = log.clone();
    log.append_op(&root, T0, add(&alice, &[], 0)).unwrap();
    let mut other = base.clone();
    let fork = other
        .append_op(&root, T0, add(&bob, &[], 0))
        .unwrap()
        .clone();
    assert_eq!(log.append(fork), Err(MembershipError::Fork { seq: 1 }));
    let same = log.entries()[1].clone();
    assert_eq!(log.append(same), Ok(Appended::Duplicate));
}

#[test]
fn gap_and_broken_chain_are_rejected() {
    let (root, alice, bob) = (kp(), kp(), kp());
    let mut log = Log::create(&root, "ops", vec![], T0).unwrap();
    let mut ahead = log.clone();
    ahead.append_op(&root, T0, add(&alice, &[], 0)).unwrap();
    let second = ahead
        .append_op(&root, T0, add(&bob, &[], 0))
        .unwrap()
        .clone();
    assert_eq!(
        log.append(second),
        Err(MembershipError::Gap { seq: 2, len: 1 })
    );
    let mut body = log.next_body(root.public_key(), T0, add(&alice, &[], 0));
    body.prev_hash = [7; 32];
    let unlinked = Entry::sign(body, &root).unwrap();
    assert_eq!(
        log.append(unlinked),
        Err(MembershipError::BrokenChain { seq: 1 })
    );
}

#[test]
fn entry_for_another_keyring_is_rejected() {
    let (root, other_root, alice) = (kp(), kp(), kp());
    let mut log = Log::create(&root, "ops", vec![], T0).unwrap();
    let other = Log::create(&other_root, "ops", vec![], T0).unwrap();
    let body = other.next_body(other_root.public_key(), T0, add(&alice, &[], 0));
    let entry = Entry::sign(body, &other_root).unwrap();
    assert_eq!(
        log.append(entry),
        Err(MembershipError::WrongKeyring { seq: 1 })
    );
}

#[test]
fn revoked_member_leaves_the_snapshot_and_cannot_be_re_added() {
    let (root, alice) = (kp(), kp());
    let mut log = Log::create(&root, "ops", vec![], T0).unwrap();
    log.append_op(&root, T0, add(&alice, &[], 0)).unwrap();
    log.append_op(
        &root,
        T0 + 5,
        Op::RemoveMember {
            key: alice.public_key(),
        },
    )
    .unwrap();
    assert!(log.is_revoked(&alice.public_key()));
    assert!(!log
        .snapshot(T0 + 6)
        .members
        .iter()
        .any(|m| m.key == alice.public_key()));
    assert!(matches!(
        log.append_op(&root, T0 + 7, add(&alice, &[], 0)),
        Err(MembershipError::InvalidOperation { seq: 3, .. })
    ));
}

#[test]
fn revoked_admin_can_no_longer_sign() {
    let (root, admin, alice) = (kp(), kp(), kp());
    let mut log = Log::create(&root, "ops", vec![admin.public_key()], T0).unwrap();
    log.append_op(
        &root,
        T0,
        Op::RemoveMember {
            key: admin.public_key(),
        },
    )
    .unwrap();
    assert_eq!(
        log.append_op(&admin, T0, add(&alice, &[], 0)).unwrap_err(),
        MembershipError::NotAnAdmin { seq: 2 }
    );
}

#[test]
fn expired_member_is_not_in_the_snapshot() {
    let (root, alice) = (kp(), kp());
    let mut log = Log::create(&root, "ops", vec![], T0).unwrap();
    log.append_op(&root, T0, add(&alice, &[], T0 + 1000))
        .unwrap();
    let has = |t| {
        log.snapshot(t)
            .members
            .iter()
            .any(|m| m.key == alice.public_key())
    };
    assert!(has(T0 + 999));
    assert!(!has(T0 + 1000));
}

#[test]
fn root_cannot_be_revoked_or_demoted() {
    let root = kp();
    let mut log = Log::create(&root, "ops", vec![], T0).unwrap();
    let key = root.public_key();
    assert!(log.append_op(&root, T0, Op::RemoveMember { key }).is_err());
    assert!(log.append_op(&root, T0, Op::RemoveAdmin { key }).is_err());
    assert_eq!(log.entries().len(), 1);
}

#[test]
fn entry_going_back_in_time_is_rejected() {
    let (root, alice, bob) = (kp(), kp(), kp());
    let mut log = Log::create(&root, "ops", vec![], T0).unwrap();
    log.append_op(&root, T0 + 100, add(&alice, &[], 0)).unwrap();
    let mut body = log.next_body(root.public_key(), T0, add(&bob, &[], 0));
    body.timestamp_ms = T0;
    let entry = Entry::sign(body, &root).unwrap();
    assert_eq!(
        log.append(entry),
        Err(MembershipError::TimeWentBackwards { seq: 2 })
    );
}

#[test]
fn log_must_start_with_genesis_signed_by_root() {
    let (root, mallory) = (kp(), kp());
    let mut log = Log::create(&root, "ops", vec![], T0).unwrap();
    log.append_op(&root, T0, add(&mallory, &[], 0)).unwrap();
    let entries = encoded(&log);
    assert_eq!(
        replay(&entries[1..]).unwrap_err(),
        MembershipError::NoGenesis
    );
    assert_eq!(replay(&[]).unwrap_err(), MembershipError::NoGenesis);
}

#[test]
fn invite_roundtrips_and_verifies() {
    let root = kp();
    let fields = InviteFields {
        keyring_id: root.public_key(),
        token: [9; 16],
        expires_at_ms: T0 + 60_000,
        one_time: true,
        address_hint: "127.0.0.1:4433".into(),
        roles: vec!["web".into(), "db".into()],
    };
    let invite = Invite::sign(fields, &root).unwrap();
    let decoded = Invite::decode(&invite.encode()).unwrap();
    assert_eq!(decoded, invite);
    assert_eq!(decoded.roles, vec!["db", "web"]);
    decoded.verify(T0).unwrap();
    assert_eq!(
        decoded.verify(T0 + 60_000),
        Err(MembershipError::InviteExpired)
    );
    let mut tampered = invite.encode();
    tampered[1 + 32 + 32] ^= 1; // token
    assert!(Invite::decode(&tampered).unwrap().verify(T0).is_err());
}

/// Malformed inputs: every one must give a typed error, never a panic.
#[test]
fn malformed_entry_and_invite_corpus_is_rejected() {
    let root = kp();
    let mut log = Log::create(&root, "ops", vec![], T0).unwrap();
    log.append_op(&root, T0, add(&kp(), &["a"], 0)).unwrap();
    let good = log.entries()[1].encode();
    let invite = Invite::sign(
        InviteFields {
            keyring_id: root.public_key(),
            token: [1; 16],
            expires_at_ms: T0,
            one_time: false,
            address_hint: "h:1".into(),
            roles: vec!["x".into()],
        },
        &root,
    )
    .unwrap()
    .encode();
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
    // Wrong version, unknown op, unsorted roles, bad signature block.
    let mut v = good.clone();
    v[2] = 2;
    corpus.push(v);
    let op_at = 2 + 1 + 32 + 8 + 32 + 8 + 32;
    let mut v = good.clone();
    v[op_at] = 9;
    corpus.push(v);
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
    v[1 + 32 + 32 + 16 + 8] = 0x80; // unknown flag
    assert!(Invite::decode(&v).is_err());
    assert!(Invite::decode(&[invite, vec![1]].concat()).is_err());
}

#[test]
fn role_names_are_restricted() {
    let root = kp();
    let log = Log::create(&root, "ops", vec![], T0).unwrap();
    for bad in ["", "UPPER", "with space", &"x".repeat(33)] {
        let body = log.next_body(root.public_key(), T0, add(&kp(), &[bad], 0));
        assert!(Entry::sign(body, &root).is_err(), "accepted role {bad:?}");
    }
}
