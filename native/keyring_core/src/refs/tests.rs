use super::*;
use crate::identity::KeyPair;

const T0: u64 = 1_700_000_000_000;

fn body(author: &KeyPair, ring: [u8; 32], name: &str, seq: u64, root: u8) -> RefBody {
    RefBody {
        keyring: ring,
        author: author.public_key(),
        seq,
        timestamp_ms: T0 + seq,
        root: [root; 32],
        name: name.to_owned(),
    }
}

fn signed(author: &KeyPair, name: &str, seq: u64, root: u8) -> SignedRef {
    SignedRef::sign(body(author, [7; 32], name, seq, root), author).unwrap()
}

#[test]
fn a_ref_round_trips_through_its_canonical_encoding() {
    let alice = KeyPair::generate().unwrap();
    let r = signed(&alice, "photos/2024", 3, 9);
    let bytes = r.encode();
    let back = SignedRef::decode_verified(&bytes, &[7; 32]).unwrap();
    assert_eq!(back, r);
    assert_eq!(back.encode(), bytes);
    assert_eq!(back.body().root, [9; 32]);
}

#[test]
fn only_the_author_may_sign_its_refs() {
    let (alice, mallory) = (KeyPair::generate().unwrap(), KeyPair::generate().unwrap());
    assert_eq!(
        SignedRef::sign(body(&alice, [7; 32], "main", 1, 1), &mallory),
        Err(RefError::NotTheAuthor)
    );
    // Mallory signs a ref and relabels it as Alice's: the signature no longer verifies.
    let forged = signed(&mallory, "main", 1, 1);
    let mut bytes = forged.encode();
    bytes[33..65].copy_from_slice(&alice.public_key());
    assert_eq!(
        SignedRef::decode_verified(&bytes, &[7; 32]),
        Err(RefError::BadSignature)
    );
}

#[test]
fn a_ref_signed_by_the_wrong_key_or_for_another_keyring_is_refused() {
    let alice = KeyPair::generate().unwrap();
    let r = signed(&alice, "main", 1, 1);
    let mut tampered = r.encode();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    assert_eq!(
        SignedRef::decode_verified(&tampered, &[7; 32]),
        Err(RefError::BadSignature)
    );
    assert_eq!(
        SignedRef::decode_verified(&r.encode(), &[8; 32]),
        Err(RefError::WrongKeyring)
    );
}

#[test]
fn a_replayed_older_ref_never_replaces_a_newer_one() {
    let alice = KeyPair::generate().unwrap();
    let (v1, v2) = (signed(&alice, "main", 1, 1), signed(&alice, "main", 2, 2));
    assert_eq!(v1.supersedes(None), Ok(Update::New));
    assert_eq!(
        v2.supersedes(Some(&v1)),
        Ok(Update::Replaces { previous: 1 })
    );
    assert_eq!(
        v1.supersedes(Some(&v2)),
        Err(RefError::Stale { seq: 1, current: 2 })
    );
    assert_eq!(v2.supersedes(Some(&v2)), Ok(Update::Duplicate));
}

#[test]
fn two_different_refs_at_one_seq_are_an_equivocation() {
    let alice = KeyPair::generate().unwrap();
    let (a, b) = (signed(&alice, "main", 5, 1), signed(&alice, "main", 5, 2));
    assert_eq!(
        b.supersedes(Some(&a)),
        Err(RefError::Equivocation { seq: 5 })
    );
}

#[test]
fn refs_of_other_names_or_authors_are_not_compared() {
    let (alice, bob) = (KeyPair::generate().unwrap(), KeyPair::generate().unwrap());
    let a = signed(&alice, "main", 1, 1);
    assert_eq!(
        signed(&alice, "other", 2, 1).supersedes(Some(&a)),
        Err(RefError::DifferentRef)
    );
    assert_eq!(
        signed(&bob, "main", 2, 1).supersedes(Some(&a)),
        Err(RefError::DifferentRef)
    );
}

#[test]
fn malformed_refs_are_refused_with_the_rule_they_break() {
    let alice = KeyPair::generate().unwrap();
    let good = signed(&alice, "main", 1, 1).encode();
    for cut in 0..good.len() {
        assert!(SignedRef::decode(&good[..cut]).is_err(), "prefix {cut}");
    }
    let mut trailing = good.clone();
    trailing.push(0);
    assert!(SignedRef::decode(&trailing).is_err());
    let mut version = good.clone();
    version[0] = 2;
    assert_eq!(
        SignedRef::decode(&version),
        Err(RefError::UnsupportedVersion(2))
    );
    let mut zero_seq = good.clone();
    zero_seq[65..73].copy_from_slice(&0u64.to_be_bytes());
    assert!(matches!(
        SignedRef::decode(&zero_seq),
        Err(RefError::Malformed(_))
    ));
    for bad in ["", "has space", "tab\t", "é"] {
        assert!(!valid_name(bad), "{bad:?}");
        assert!(SignedRef::sign(body(&alice, [7; 32], bad, 1, 1), &alice).is_err());
    }
    assert!(valid_name(&"x".repeat(MAX_NAME_LEN)));
    assert!(!valid_name(&"x".repeat(MAX_NAME_LEN + 1)));
}
