use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};

use super::IdentityError;

/// Length of an Ed25519 public key.
pub const PUBLIC_KEY_LEN: usize = 32;
/// Length of an Ed25519 secret seed.
pub const SECRET_SEED_LEN: usize = 32;
/// Length of an Ed25519 signature.
pub const SIGNATURE_LEN: usize = 64;

/// An Ed25519 key pair. The secret never leaves this value except through
/// [`KeyPair::seed`], which the key file uses to seal it.
#[derive(Debug)]
pub struct KeyPair {
    signing: SigningKey,
}

impl KeyPair {
    /// A fresh key pair from the operating system's random source.
    pub fn generate() -> Result<Self, IdentityError> {
        let mut seed = zeroize::Zeroizing::new([0u8; SECRET_SEED_LEN]);
        getrandom::fill(seed.as_mut()).map_err(|_| IdentityError::Random)?;
        Ok(Self::from_seed(&seed))
    }

    /// The key pair for a 32-byte secret seed.
    pub fn from_seed(seed: &[u8; SECRET_SEED_LEN]) -> Self {
        Self {
            signing: SigningKey::from_bytes(seed),
        }
    }

    /// The key pair for a seed given as a slice (checked length).
    pub fn from_seed_slice(seed: &[u8]) -> Result<Self, IdentityError> {
        let seed: &[u8; SECRET_SEED_LEN] =
            seed.try_into().map_err(|_| IdentityError::BadLength {
                expected: SECRET_SEED_LEN,
                got: seed.len(),
            })?;
        Ok(Self::from_seed(seed))
    }

    /// The secret seed (for sealing into the key file).
    pub fn seed(&self) -> zeroize::Zeroizing<[u8; SECRET_SEED_LEN]> {
        zeroize::Zeroizing::new(self.signing.to_bytes())
    }

    /// The public key.
    pub fn public_key(&self) -> [u8; PUBLIC_KEY_LEN] {
        self.signing.verifying_key().to_bytes()
    }

    /// Signs `message` (pure Ed25519, RFC 8032).
    pub fn sign(&self, message: &[u8]) -> [u8; SIGNATURE_LEN] {
        self.signing.sign(message).to_bytes()
    }
}

/// Strict Ed25519 verification, the one rule used everywhere in Keyring:
/// rejects malformed and small-order public keys, non-canonical `S` values and
/// signatures whose `R` has small order (`verify_strict`). Returns `Ok(true)` for
/// a valid signature, `Ok(false)` for an invalid one, and an error only for
/// inputs of the wrong length.
pub fn verify_strict(
    public_key: &[u8],
    message: &[u8],
    signature: &[u8],
) -> Result<bool, IdentityError> {
    let pk: &[u8; PUBLIC_KEY_LEN] =
        public_key
            .try_into()
            .map_err(|_| IdentityError::BadLength {
                expected: PUBLIC_KEY_LEN,
                got: public_key.len(),
            })?;
    let sig: &[u8; SIGNATURE_LEN] = signature.try_into().map_err(|_| IdentityError::BadLength {
        expected: SIGNATURE_LEN,
        got: signature.len(),
    })?;
    let Ok(key) = VerifyingKey::from_bytes(pk) else {
        return Ok(false);
    };
    if key.is_weak() {
        return Ok(false);
    }
    let sig = Signature::from_bytes(sig);
    Ok(key.verify_strict(message, &sig).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_then_verify_roundtrip() {
        let kp = KeyPair::generate().unwrap();
        let sig = kp.sign(b"hello");
        assert!(verify_strict(&kp.public_key(), b"hello", &sig).unwrap());
        assert!(!verify_strict(&kp.public_key(), b"hellO", &sig).unwrap());
    }

    #[test]
    fn rfc8032_test_vector_1() {
        let seed = hex32("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60");
        let kp = KeyPair::from_seed(&seed);
        assert_eq!(
            kp.public_key(),
            hex32("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
        );
        let sig = kp.sign(b"");
        assert_eq!(
            &sig[..32],
            &hex32("e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155")
        );
    }

    #[test]
    fn small_order_public_key_is_rejected() {
        // The identity point (small order): y = 1.
        let mut weak = [0u8; 32];
        weak[0] = 1;
        // Identity R and S = 0 is a "valid" signature for any message under the
        // lax rule; strict verification must reject it.
        let mut sig = [0u8; 64];
        sig[0] = 1;
        assert!(!verify_strict(&weak, b"anything", &sig).unwrap());
    }

    #[test]
    fn non_canonical_s_is_rejected() {
        let kp = KeyPair::generate().unwrap();
        let mut sig = kp.sign(b"m");
        // Add the group order L to S: same value mod L but non-canonical.
        let l: [u8; 32] = hex32("edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010");
        let mut carry = 0u16;
        for i in 0..32 {
            let v = sig[32 + i] as u16 + l[i] as u16 + carry;
            sig[32 + i] = v as u8;
            carry = v >> 8;
        }
        assert!(!verify_strict(&kp.public_key(), b"m", &sig).unwrap());
    }

    #[test]
    fn wrong_lengths_are_errors_not_false() {
        assert!(matches!(
            verify_strict(&[0; 31], b"", &[0; 64]),
            Err(IdentityError::BadLength {
                expected: 32,
                got: 31
            })
        ));
        assert!(verify_strict(&[0; 32], b"", &[0; 63]).is_err());
    }

    fn hex32(s: &str) -> [u8; 32] {
        let mut out = [0u8; 32];
        for (i, b) in out.iter_mut().enumerate() {
            *b = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap();
        }
        out
    }
}
