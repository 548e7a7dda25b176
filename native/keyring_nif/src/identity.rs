//! Ed25519 identity. The secret key lives in a resource and never crosses into
//! the BEAM heap as a binary.

use keyring_core::identity::{self, IdentityError, KeyPair, SealParams};
use rustler::{Atom, Binary, Encoder, Env, Resource, ResourceArc, Term};

use crate::atoms;
use crate::hash::digest_binary;
use crate::timeslice::Charge;

pub(crate) struct KeyPairResource(pub(crate) KeyPair);

#[rustler::resource_impl]
impl Resource for KeyPairResource {}

/// `IdentityError` as an Elixir reason: an atom, or `{atom, detail}`.
struct Reason(IdentityError);

impl Encoder for Reason {
    fn encode<'a>(&self, env: Env<'a>) -> Term<'a> {
        match &self.0 {
            IdentityError::BadLength { expected, got } => {
                (atoms::bad_length(), *expected, *got).encode(env)
            }
            IdentityError::BadPassphrase => atoms::bad_passphrase().encode(env),
            IdentityError::PassphraseRequired => atoms::passphrase_required().encode(env),
            IdentityError::MalformedKeyFile(why) => (atoms::malformed_key_file(), *why).encode(env),
            IdentityError::Random => atoms::random_failed().encode(env),
            IdentityError::Io(e) => (atoms::io(), e.to_string()).encode(env),
            other => (atoms::error(), other.to_string()).encode(env),
        }
    }
}

impl std::panic::RefUnwindSafe for Reason {}

type NifOutcome<T> = Result<T, Reason>;

#[rustler::nif]
fn keypair_generate(env: Env<'_>) -> NifOutcome<ResourceArc<KeyPairResource>> {
    let _charge = Charge::start(env);
    KeyPair::generate()
        .map(|kp| ResourceArc::new(KeyPairResource(kp)))
        .map_err(Reason)
}

/// Opens a key file; runs Argon2id for sealed files, hence DirtyCpu.
#[rustler::nif(schedule = "DirtyCpu")]
fn keypair_open(
    bytes: Binary<'_>,
    passphrase: Option<Binary<'_>>,
) -> NifOutcome<ResourceArc<KeyPairResource>> {
    identity::open_key_file(bytes.as_slice(), passphrase.as_ref().map(|p| p.as_slice()))
        .map(|kp| ResourceArc::new(KeyPairResource(kp)))
        .map_err(Reason)
}

#[rustler::nif(schedule = "DirtyCpu")]
fn keypair_seal<'a>(
    env: Env<'a>,
    kp: ResourceArc<KeyPairResource>,
    passphrase: Option<Binary<'a>>,
) -> NifOutcome<Binary<'a>> {
    identity::seal_key_file(
        &kp.0,
        passphrase.as_ref().map(|p| p.as_slice()),
        SealParams::default(),
    )
    .map(|bytes| digest_binary(env, &bytes))
    .map_err(Reason)
}

#[rustler::nif]
fn keypair_public_key<'a>(env: Env<'a>, kp: ResourceArc<KeyPairResource>) -> Binary<'a> {
    digest_binary(env, &kp.0.public_key())
}

#[rustler::nif]
fn sign<'a>(env: Env<'a>, kp: ResourceArc<KeyPairResource>, message: Binary<'a>) -> Binary<'a> {
    let _charge = Charge::start(env);
    digest_binary(env, &kp.0.sign(message.as_slice()))
}

#[rustler::nif(schedule = "DirtyCpu")]
fn sign_dirty<'a>(
    env: Env<'a>,
    kp: ResourceArc<KeyPairResource>,
    message: Binary<'a>,
) -> Binary<'a> {
    digest_binary(env, &kp.0.sign(message.as_slice()))
}

fn verify_impl(pk: Binary<'_>, message: Binary<'_>, sig: Binary<'_>) -> NifOutcome<bool> {
    identity::verify_strict(pk.as_slice(), message.as_slice(), sig.as_slice()).map_err(Reason)
}

#[rustler::nif]
fn verify<'a>(
    env: Env<'a>,
    pk: Binary<'a>,
    message: Binary<'a>,
    sig: Binary<'a>,
) -> NifOutcome<bool> {
    let _charge = Charge::start(env);
    verify_impl(pk, message, sig)
}

#[rustler::nif(schedule = "DirtyCpu")]
fn verify_dirty(pk: Binary<'_>, message: Binary<'_>, sig: Binary<'_>) -> NifOutcome<bool> {
    verify_impl(pk, message, sig)
}

/// Durable atomic file write with mode 0600 (temp file, fsync, rename, fsync dir).
#[rustler::nif(schedule = "DirtyIo")]
fn write_file_atomic(path: String, bytes: Binary<'_>) -> Result<Atom, Reason> {
    identity::write_atomic(std::path::Path::new(&path), bytes.as_slice())
        .map(|()| atoms::ok())
        .map_err(Reason)
}
