//! Signing domains. A node's key signs TLS handshakes, membership entries,
//! invites and application messages; each kind of signature covers a prefix
//! that names its purpose, so bytes an application asks the node to sign can
//! never be a membership entry, an invite or a handshake.
//!
//! | signature | the signed bytes |
//! |---|---|
//! | application (`Keyring.Identity.sign/2`) | `"keyring/app/v1\0" ‖ message` |
//! | application sub-domain `d` | `"keyring/app/v1/" ‖ d ‖ "\0" ‖ message` |
//! | membership entry | `"keyring/membership-entry/v1\0" ‖ body` |
//! | invite | `"keyring/invite/v1\0" ‖ unsigned invite` |
//! | TLS 1.3 CertificateVerify (rustls) | 64 × `0x20` ‖ context ‖ `0x00` ‖ transcript hash |
//!
//! A sub-domain is 1..=64 bytes of ASCII letters, digits and `.` `_` `-`
//! `:` `/`; it has no NUL, so the first NUL after the prefix ends it and the
//! signed bytes name exactly one (domain, message) pair.

use super::{verify_strict, IdentityError, KeyPair, SIGNATURE_LEN};

/// Prefix of every application signature.
pub const APP_DOMAIN: &[u8] = b"keyring/app/v1";
/// Longest application sub-domain.
pub const MAX_SUBDOMAIN_LEN: usize = 64;

/// The bytes an application signature covers.
pub fn app_message(subdomain: Option<&[u8]>, message: &[u8]) -> Result<Vec<u8>, IdentityError> {
    let sub = match subdomain {
        None => &[][..],
        Some(d) if valid_subdomain(d) => d,
        Some(_) => return Err(IdentityError::BadDomain),
    };
    let mut out = Vec::with_capacity(APP_DOMAIN.len() + sub.len() + 2 + message.len());
    out.extend_from_slice(APP_DOMAIN);
    if !sub.is_empty() {
        out.push(b'/');
        out.extend_from_slice(sub);
    }
    out.push(0);
    out.extend_from_slice(message);
    Ok(out)
}

/// Signs `message` as an application message (of `subdomain`, if given).
pub fn sign_app(
    key: &KeyPair,
    subdomain: Option<&[u8]>,
    message: &[u8],
) -> Result<[u8; SIGNATURE_LEN], IdentityError> {
    Ok(key.sign(&app_message(subdomain, message)?))
}

/// Verifies an application signature made by [`sign_app`] (strictly).
pub fn verify_app(
    public_key: &[u8],
    subdomain: Option<&[u8]>,
    message: &[u8],
    signature: &[u8],
) -> Result<bool, IdentityError> {
    verify_strict(public_key, &app_message(subdomain, message)?, signature)
}

fn valid_subdomain(d: &[u8]) -> bool {
    (1..=MAX_SUBDOMAIN_LEN).contains(&d.len())
        && d.iter()
            .all(|c| c.is_ascii_alphanumeric() || b"._-:/".contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::membership::{INVITE_DOMAIN, SIGN_DOMAIN};

    /// The TLS 1.3 signed content starts with 64 spaces.
    const TLS13_PREFIX: &[u8] = &[0x20; 64];

    #[test]
    fn an_application_signature_verifies_only_in_its_own_domain() {
        let kp = KeyPair::generate().unwrap();
        let sig = sign_app(&kp, None, b"hello").unwrap();
        let pk = kp.public_key();
        assert!(verify_app(&pk, None, b"hello", &sig).unwrap());
        assert!(!verify_app(&pk, Some(b"myapp"), b"hello", &sig).unwrap());
        assert!(!verify_strict(&pk, b"hello", &sig).unwrap());
        let sub = sign_app(&kp, Some(b"myapp"), b"hello").unwrap();
        assert!(verify_app(&pk, Some(b"myapp"), b"hello", &sub).unwrap());
        assert!(!verify_app(&pk, Some(b"myapp2"), b"hello", &sub).unwrap());
        assert!(!verify_app(&pk, None, b"hello", &sub).unwrap());
    }

    /// The attack: get an application to sign the exact bytes a membership
    /// entry or an invite signature covers, and use its signature there.
    #[test]
    fn application_signatures_never_verify_as_protocol_signatures() {
        let kp = KeyPair::generate().unwrap();
        let pk = kp.public_key();
        let body = b"\x01 any entry body the attacker wants signed";
        for domain in [SIGN_DOMAIN, INVITE_DOMAIN, TLS13_PREFIX] {
            let protocol_bytes = [domain, &body[..]].concat();
            for sub in [None, Some(&b"myapp"[..])] {
                for asked in [&protocol_bytes[..], &body[..]] {
                    let sig = sign_app(&kp, sub, asked).unwrap();
                    assert!(!verify_strict(&pk, &protocol_bytes, &sig).unwrap());
                }
                // No application message starts like a protocol message.
                let signed = app_message(sub, &protocol_bytes).unwrap();
                assert!(!signed.starts_with(domain));
                assert!(!domain.starts_with(&signed[..domain.len().min(signed.len())]));
            }
        }
    }

    #[test]
    fn subdomains_are_checked_and_unambiguous() {
        for bad in [&b""[..], b"a\0b", b"with space", &[b'a'; 65]] {
            assert!(matches!(
                app_message(Some(bad), b"m"),
                Err(IdentityError::BadDomain)
            ));
        }
        // ("a", "\0b") and ("a\0b", "") cannot both be expressed: NUL is
        // refused in a domain, so the split point is unique.
        assert_ne!(
            app_message(Some(b"a"), b"b").unwrap(),
            app_message(None, b"a\0b").unwrap()
        );
        assert_eq!(app_message(None, b"m").unwrap(), b"keyring/app/v1\0m");
        assert_eq!(
            app_message(Some(b"my.app/v2"), b"m").unwrap(),
            b"keyring/app/v1/my.app/v2\0m"
        );
    }
}
