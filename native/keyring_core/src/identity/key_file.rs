//! The identity key file: a versioned little format holding the secret seed,
//! either in the clear (file mode 0600) or sealed with a passphrase
//! (Argon2id key derivation + XChaCha20-Poly1305).
//!
//! ```text
//! "KRKEY" | version=1 | kind
//! kind 0 (plain):  seed[32]
//! kind 1 (sealed): m_cost u32be | t_cost u32be | p_cost u32be | salt[16] | nonce[24] | ciphertext[48]
//! ```
//! In a sealed file everything before the ciphertext is authenticated as AAD,
//! so the KDF parameters cannot be swapped. Key files are written and read
//! with [`private_file`](super::private_file) (0600, atomic, no links followed).

use argon2::{Algorithm, Argon2, Params, Version};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use zeroize::Zeroizing;

use super::{IdentityError, KeyPair, SECRET_SEED_LEN};

const MAGIC: &[u8; 5] = b"KRKEY";
const VERSION: u8 = 1;
const KIND_PLAIN: u8 = 0;
const KIND_SEALED: u8 = 1;
const HEADER_LEN: usize = 7;
const SALT_LEN: usize = 16;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
const PARAMS_LEN: usize = 12;
const SEALED_LEN: usize =
    HEADER_LEN + PARAMS_LEN + SALT_LEN + NONCE_LEN + SECRET_SEED_LEN + TAG_LEN;

/// Argon2id cost parameters for sealing. The defaults follow OWASP's
/// recommendation (19 MiB, 2 passes, 1 lane).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SealParams {
    /// Memory in KiB.
    pub m_cost: u32,
    /// Passes.
    pub t_cost: u32,
    /// Lanes.
    pub p_cost: u32,
}

impl Default for SealParams {
    fn default() -> Self {
        Self {
            m_cost: 19 * 1024,
            t_cost: 2,
            p_cost: 1,
        }
    }
}

// Upper bounds accepted when *opening* a file, so that a tampered file cannot
// make the node allocate gigabytes or spin for minutes.
const MAX_M_COST: u32 = 1024 * 1024;
const MAX_T_COST: u32 = 64;
const MAX_P_COST: u32 = 16;

/// Encodes the key file for `key`, sealed when a passphrase is given.
pub fn seal(
    key: &KeyPair,
    passphrase: Option<&[u8]>,
    params: SealParams,
) -> Result<Vec<u8>, IdentityError> {
    let seed = key.seed();
    let mut out = Vec::with_capacity(SEALED_LEN);
    out.extend_from_slice(MAGIC);
    out.push(VERSION);
    let Some(passphrase) = passphrase else {
        out.push(KIND_PLAIN);
        out.extend_from_slice(seed.as_ref());
        return Ok(out);
    };
    out.push(KIND_SEALED);
    out.extend_from_slice(&params.m_cost.to_be_bytes());
    out.extend_from_slice(&params.t_cost.to_be_bytes());
    out.extend_from_slice(&params.p_cost.to_be_bytes());
    let mut salt = [0u8; SALT_LEN];
    let mut nonce = [0u8; NONCE_LEN];
    getrandom::fill(&mut salt).map_err(|_| IdentityError::Random)?;
    getrandom::fill(&mut nonce).map_err(|_| IdentityError::Random)?;
    out.extend_from_slice(&salt);
    out.extend_from_slice(&nonce);
    let cipher = cipher_for(passphrase, &salt, params)?;
    let ciphertext = cipher
        .encrypt(
            &XNonce::from(nonce),
            Payload {
                msg: seed.as_ref(),
                aad: &out,
            },
        )
        .map_err(|_| IdentityError::MalformedKeyFile("encryption failed"))?;
    out.extend_from_slice(&ciphertext);
    Ok(out)
}

/// Decodes a key file. A sealed file needs the passphrase that sealed it:
/// a wrong one gives [`IdentityError::BadPassphrase`].
pub fn open(bytes: &[u8], passphrase: Option<&[u8]>) -> Result<KeyPair, IdentityError> {
    if bytes.len() < HEADER_LEN || &bytes[..5] != MAGIC {
        return Err(IdentityError::MalformedKeyFile("not a Keyring key file"));
    }
    if bytes[5] != VERSION {
        return Err(IdentityError::MalformedKeyFile("unsupported version"));
    }
    match bytes[6] {
        KIND_PLAIN if bytes.len() == HEADER_LEN + SECRET_SEED_LEN => {
            KeyPair::from_seed_slice(&bytes[HEADER_LEN..])
        }
        KIND_SEALED if bytes.len() == SEALED_LEN => {
            let passphrase = passphrase.ok_or(IdentityError::PassphraseRequired)?;
            let be = |i: usize| u32::from_be_bytes(bytes[i..i + 4].try_into().unwrap());
            let params = SealParams {
                m_cost: be(HEADER_LEN),
                t_cost: be(HEADER_LEN + 4),
                p_cost: be(HEADER_LEN + 8),
            };
            if params.m_cost > MAX_M_COST
                || params.t_cost > MAX_T_COST
                || params.p_cost > MAX_P_COST
            {
                return Err(IdentityError::MalformedKeyFile(
                    "KDF parameters out of range",
                ));
            }
            let salt_at = HEADER_LEN + PARAMS_LEN;
            let nonce_at = salt_at + SALT_LEN;
            let ct_at = nonce_at + NONCE_LEN;
            let cipher = cipher_for(passphrase, &bytes[salt_at..nonce_at], params)?;
            let nonce: [u8; NONCE_LEN] = bytes[nonce_at..ct_at].try_into().unwrap();
            let seed = Zeroizing::new(
                cipher
                    .decrypt(
                        &XNonce::from(nonce),
                        Payload {
                            msg: &bytes[ct_at..],
                            aad: &bytes[..ct_at],
                        },
                    )
                    .map_err(|_| IdentityError::BadPassphrase)?,
            );
            KeyPair::from_seed_slice(&seed)
        }
        KIND_PLAIN | KIND_SEALED => Err(IdentityError::MalformedKeyFile("wrong length")),
        _ => Err(IdentityError::MalformedKeyFile("unknown kind")),
    }
}

fn cipher_for(
    passphrase: &[u8],
    salt: &[u8],
    params: SealParams,
) -> Result<XChaCha20Poly1305, IdentityError> {
    let params = Params::new(params.m_cost, params.t_cost, params.p_cost, Some(32))
        .map_err(|_| IdentityError::MalformedKeyFile("invalid KDF parameters"))?;
    let mut key = Zeroizing::new([0u8; 32]);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(passphrase, salt, key.as_mut())
        .map_err(|_| IdentityError::MalformedKeyFile("key derivation failed"))?;
    XChaCha20Poly1305::new_from_slice(key.as_ref())
        .map_err(|_| IdentityError::MalformedKeyFile("bad key length"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const FAST: SealParams = SealParams {
        m_cost: 64,
        t_cost: 1,
        p_cost: 1,
    };

    #[test]
    fn plain_file_roundtrip() {
        let kp = KeyPair::generate().unwrap();
        let bytes = seal(&kp, None, FAST).unwrap();
        assert_eq!(open(&bytes, None).unwrap().public_key(), kp.public_key());
    }

    #[test]
    fn sealed_file_opens_only_with_its_passphrase() {
        let kp = KeyPair::generate().unwrap();
        let bytes = seal(&kp, Some(b"correct horse"), FAST).unwrap();
        assert_eq!(bytes.len(), SEALED_LEN);
        let opened = open(&bytes, Some(b"correct horse")).unwrap();
        assert_eq!(opened.public_key(), kp.public_key());
        assert!(matches!(
            open(&bytes, Some(b"wrong")),
            Err(IdentityError::BadPassphrase)
        ));
        assert!(matches!(
            open(&bytes, None),
            Err(IdentityError::PassphraseRequired)
        ));
    }

    #[test]
    fn tampered_kdf_parameters_fail_authentication() {
        let kp = KeyPair::generate().unwrap();
        let mut bytes = seal(&kp, Some(b"pw"), FAST).unwrap();
        bytes[HEADER_LEN + 7] ^= 1; // t_cost 1 -> 0? keep it valid: flip m_cost low bit
        bytes[HEADER_LEN + 3] ^= 1;
        assert!(open(&bytes, Some(b"pw")).is_err());
    }

    #[test]
    fn absurd_kdf_parameters_are_refused_before_allocating() {
        let kp = KeyPair::generate().unwrap();
        let mut bytes = seal(&kp, Some(b"pw"), FAST).unwrap();
        bytes[HEADER_LEN..HEADER_LEN + 4].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(
            open(&bytes, Some(b"pw")),
            Err(IdentityError::MalformedKeyFile(_))
        ));
    }

    #[test]
    fn garbage_is_malformed_not_a_panic() {
        for junk in [
            &b""[..],
            b"KRKEY",
            b"KRKEY\x01\x00short",
            b"KRKEY\x02\x00",
            b"xxxxxxxxxxxx",
        ] {
            assert!(matches!(
                open(junk, None),
                Err(IdentityError::MalformedKeyFile(_))
            ));
        }
    }
}
