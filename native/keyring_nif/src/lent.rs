//! BEAM binaries lent to Rust as [`Bytes`] without copying them: a large
//! argument or reply goes from the caller's binary straight into quinn's send
//! queue, so sending it costs the BEAM O(1) instead of a copy of every byte.

use bytes::Bytes;
use rustler::{Binary, OwnedEnv};

/// Binaries at least this large are lent; smaller ones are copied (cheaper
/// than an environment of their own).
pub(crate) const LEND_MIN: usize = 64 * 1024;

/// A reference to a BEAM binary, held in a process-independent environment.
struct LentBinary {
    /// Holds a copy of the binary *term*: for a binary of [`LEND_MIN`] bytes
    /// or more that is a reference-counted (off-heap) binary, so the copy
    /// shares its bytes and keeps them alive until this is dropped.
    _env: OwnedEnv,
    ptr: usize,
    len: usize,
}

impl AsRef<[u8]> for LentBinary {
    fn as_ref(&self) -> &[u8] {
        // SAFETY: `ptr..ptr + len` are the bytes of a reference-counted
        // binary that `_env` keeps a reference to, so they stay allocated
        // for as long as `self` lives. They never move (the emulator moves
        // binary headers, not off-heap data) and are never written again:
        // `enif_inspect_binary`, which produced the pointer, first makes a
        // writable (appendable) binary read-only.
        unsafe { std::slice::from_raw_parts(self.ptr as *const u8, self.len) }
    }
}

/// The bytes of `binary`, lent if it is large and copied otherwise.
pub(crate) fn lend(binary: &Binary<'_>) -> Bytes {
    if binary.len() < LEND_MIN {
        return Bytes::copy_from_slice(binary.as_slice());
    }
    let env = OwnedEnv::new();
    let saved = env.save(*binary);
    let inspected = env.run(|env| {
        let copy: Binary<'_> = saved.load(env).decode().ok()?;
        Some((copy.as_slice().as_ptr() as usize, copy.len()))
    });
    match inspected {
        Some((ptr, len)) => Bytes::from_owner(LentBinary {
            _env: env,
            ptr,
            len,
        }),
        // Not reachable (a copy of a binary is a binary); copying is still right.
        None => Bytes::copy_from_slice(binary.as_slice()),
    }
}
