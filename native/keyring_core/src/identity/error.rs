use thiserror::Error;

/// Everything that can go wrong with keys, signatures and key files (their
/// bytes; files on disk fail with [`PrivateFileError`](super::private_file::PrivateFileError)).
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// A public key, secret seed or signature had the wrong length.
    #[error("expected {expected} bytes, got {got}")]
    BadLength {
        /// Expected length.
        expected: usize,
        /// Actual length.
        got: usize,
    },
    /// The public key is not a valid curve point or has small order.
    #[error("invalid or weak public key")]
    BadPublicKey,
    /// The key file is not in a format this version understands.
    #[error("malformed key file: {0}")]
    MalformedKeyFile(&'static str),
    /// The key file is sealed and no passphrase was given.
    #[error("the key file is encrypted and needs a passphrase")]
    PassphraseRequired,
    /// The passphrase did not open the sealed key file.
    #[error("wrong passphrase")]
    BadPassphrase,
    /// An application signing domain was empty, too long or had a byte
    /// outside `[A-Za-z0-9._:/-]`.
    #[error("bad signing domain")]
    BadDomain,
    /// The system random source failed.
    #[error("random source failed")]
    Random,
}
