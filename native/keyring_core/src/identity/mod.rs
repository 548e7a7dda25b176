//! Node identity: an Ed25519 key pair, strict signature verification, the
//! signing domains that keep its signatures apart ([`domain`]), the key file
//! that keeps the secret at rest (optionally sealed with a passphrase) and
//! owner-only files for secrets ([`private_file`]).

pub mod domain;
mod error;
mod key_file;
mod key_pair;
pub mod private_file;

pub use error::IdentityError;
pub use key_file::{open as open_key_file, seal as seal_key_file, SealParams};
pub use key_pair::{verify_strict, KeyPair, PUBLIC_KEY_LEN, SECRET_SEED_LEN, SIGNATURE_LEN};
