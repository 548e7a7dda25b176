//! Ed25519 identity. The secret key lives in a resource and never crosses into
//! the BEAM heap as a binary, and it signs only in the application domain
//! (`keyring_core::identity::domain`): no NIF signs raw bytes with it.

use std::path::Path;

use keyring_core::identity::private_file::{self, Access, PrivateFileError, Target};
use keyring_core::identity::{self, domain, IdentityError, KeyPair, SealParams};
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
            IdentityError::BadDomain => atoms::bad_domain().encode(env),
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

fn sign_app_impl<'a>(
    env: Env<'a>,
    kp: &KeyPairResource,
    subdomain: Option<Binary<'a>>,
    message: Binary<'a>,
) -> NifOutcome<Binary<'a>> {
    domain::sign_app(&kp.0, subdomain.as_ref().map(|d| d.as_slice()), &message)
        .map(|sig| digest_binary(env, &sig))
        .map_err(Reason)
}

/// Signs an application message (`"keyring/app/v1[/domain]\0" ‖ message`).
#[rustler::nif]
fn sign_app<'a>(
    env: Env<'a>,
    kp: ResourceArc<KeyPairResource>,
    subdomain: Option<Binary<'a>>,
    message: Binary<'a>,
) -> NifOutcome<Binary<'a>> {
    let _charge = Charge::start(env);
    sign_app_impl(env, &kp, subdomain, message)
}

#[rustler::nif(schedule = "DirtyCpu")]
fn sign_app_dirty<'a>(
    env: Env<'a>,
    kp: ResourceArc<KeyPairResource>,
    subdomain: Option<Binary<'a>>,
    message: Binary<'a>,
) -> NifOutcome<Binary<'a>> {
    sign_app_impl(env, &kp, subdomain, message)
}

fn verify_app_impl(
    pk: Binary<'_>,
    subdomain: Option<Binary<'_>>,
    message: Binary<'_>,
    sig: Binary<'_>,
) -> NifOutcome<bool> {
    domain::verify_app(
        &pk,
        subdomain.as_ref().map(|d| d.as_slice()),
        &message,
        &sig,
    )
    .map_err(Reason)
}

#[rustler::nif]
fn verify_app<'a>(
    env: Env<'a>,
    pk: Binary<'a>,
    subdomain: Option<Binary<'a>>,
    message: Binary<'a>,
    sig: Binary<'a>,
) -> NifOutcome<bool> {
    let _charge = Charge::start(env);
    verify_app_impl(pk, subdomain, message, sig)
}

#[rustler::nif(schedule = "DirtyCpu")]
fn verify_app_dirty<'a>(
    pk: Binary<'a>,
    subdomain: Option<Binary<'a>>,
    message: Binary<'a>,
    sig: Binary<'a>,
) -> NifOutcome<bool> {
    verify_app_impl(pk, subdomain, message, sig)
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

/// `PrivateFileError` as an Elixir reason: `{kind, path}` or
/// `{kind, path, detail}`.
pub(crate) struct FileReason(PrivateFileError);

impl Encoder for FileReason {
    fn encode<'a>(&self, env: Env<'a>) -> Term<'a> {
        let path = |p: &Path| p.to_string_lossy().into_owned();
        match &self.0 {
            PrivateFileError::NotFound(p) => (atoms::not_found(), path(p)).encode(env),
            PrivateFileError::Symlink(p) => (atoms::symlink(), path(p)).encode(env),
            PrivateFileError::NotOwner { path: p, owner, .. } => {
                (atoms::not_owner(), path(p), *owner).encode(env)
            }
            PrivateFileError::NotAFile(p) => (atoms::not_a_file(), path(p)).encode(env),
            PrivateFileError::NotADirectory(p) => (atoms::not_a_directory(), path(p)).encode(env),
            PrivateFileError::Exists(p) => (atoms::exists(), path(p)).encode(env),
            PrivateFileError::TooLarge(p, max) => (atoms::too_large(), path(p), *max).encode(env),
            PrivateFileError::Io { path: p, source } => {
                (atoms::io(), path(p), source.to_string()).encode(env)
            }
            other => (atoms::error(), other.to_string()).encode(env),
        }
    }
}

impl std::panic::RefUnwindSafe for FileReason {}

fn access<'a>(env: Env<'a>, a: Access) -> Term<'a> {
    match a {
        Access::Private => atoms::private().encode(env),
        Access::Narrowed(mode) => (atoms::narrowed(), mode).encode(env),
    }
}

/// Durable atomic write of a private file (0600 in a 0700 directory; temp
/// file, fsync, rename, fsync dir; no link followed).
#[rustler::nif(schedule = "DirtyIo")]
fn write_file_atomic(path: String, bytes: Binary<'_>) -> Result<Atom, FileReason> {
    private_file::write(Path::new(&path), &bytes, Target::Replace)
        .map(|()| atoms::ok())
        .map_err(FileReason)
}

/// As `write_file_atomic`, but fails with `{:exists, path}` if anything is
/// at `path` already.
#[rustler::nif(schedule = "DirtyIo")]
fn write_file_new(path: String, bytes: Binary<'_>) -> Result<Atom, FileReason> {
    private_file::write(Path::new(&path), &bytes, Target::CreateNew)
        .map(|()| atoms::ok())
        .map_err(FileReason)
}

/// Reads a private file of at most `max_len` bytes: `{bytes, :private |
/// {:narrowed, old_mode}}`.
#[rustler::nif(schedule = "DirtyIo")]
fn read_private_file<'a>(env: Env<'a>, path: String, max_len: u64) -> Result<Term<'a>, FileReason> {
    let (bytes, a) = private_file::read(Path::new(&path), max_len).map_err(FileReason)?;
    Ok((digest_binary(env, &bytes), access(env, a)).encode(env))
}

/// Creates `path` (0700) if missing and narrows it to its owner.
#[rustler::nif(schedule = "DirtyIo")]
fn ensure_private_dir(env: Env<'_>, path: String) -> Result<Term<'_>, FileReason> {
    private_file::ensure_dir(Path::new(&path))
        .map(|a| access(env, a))
        .map_err(FileReason)
}

/// Narrows the existing file `path` to its owner (refusing links).
#[rustler::nif(schedule = "DirtyIo")]
fn ensure_private_file(env: Env<'_>, path: String) -> Result<Term<'_>, FileReason> {
    private_file::ensure_file(Path::new(&path))
        .map(|a| access(env, a))
        .map_err(FileReason)
}
