//! Files and directories only their owner may use: where secrets live at
//! rest (key files, the distribution cookie, the store).
//!
//! - Directories are created 0700 and files 0600 (the umask can only narrow
//!   these). An existing path is opened first, without following a symbolic
//!   link at its last component, then checked on that open descriptor
//!   (`fstat`): it must be of the expected type and belong to this process's
//!   effective user, and group or other permission bits are removed
//!   (`fchmod` on the same descriptor, so nothing can be swapped in between).
//!   The caller learns the old mode, to say so in its log.
//! - A write goes to a temporary file with a random name beside the target,
//!   opened with `O_CREAT | O_EXCL | O_NOFOLLOW` and mode 0600 (a file or
//!   link planted under that name makes the open fail; nothing is followed),
//!   written and fsynced, then renamed over the target (a rename replaces a
//!   link at the target, it never writes through it) or, when the target
//!   must not exist yet, hard-linked to it (which fails if anything is
//!   there); then the directory is fsynced. A crash leaves the old file or
//!   the new one, never a torn one.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rustix::fs::OFlags;
use thiserror::Error;

/// Mode of a private directory.
pub const DIR_MODE: u32 = 0o700;
/// Mode of a private file.
pub const FILE_MODE: u32 = 0o600;
/// Permission bits a private path must not have (group and others).
const SHARED_BITS: u32 = 0o077;

/// Why a private path could not be used.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum PrivateFileError {
    /// Nothing is at the path.
    #[error("{0}: no such file")]
    NotFound(PathBuf),
    /// The last component is a symbolic link (never followed).
    #[error("{0}: is a symbolic link")]
    Symlink(PathBuf),
    /// The path belongs to another user: its mode cannot be trusted.
    #[error("{path}: owned by uid {owner}, not by this process (uid {uid})")]
    NotOwner {
        /// The path.
        path: PathBuf,
        /// Its owner.
        owner: u32,
        /// This process's effective uid.
        uid: u32,
    },
    /// Expected a regular file.
    #[error("{0}: not a regular file")]
    NotAFile(PathBuf),
    /// Expected a directory.
    #[error("{0}: not a directory")]
    NotADirectory(PathBuf),
    /// A create-only write found something at the target.
    #[error("{0}: already exists")]
    Exists(PathBuf),
    /// The file is larger than the reader accepts.
    #[error("{0}: larger than {1} bytes")]
    TooLarge(PathBuf, u64),
    /// The system refused an operation.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// What the system said.
        source: io::Error,
    },
}

impl PrivateFileError {
    fn io(path: &Path) -> impl FnOnce(io::Error) -> Self + '_ {
        move |source| Self::Io {
            path: path.to_owned(),
            source,
        }
    }
}

/// What a check found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Only the owner had access.
    Private,
    /// Group or others had access; the mode was narrowed from this one.
    Narrowed(u32),
}

/// Whether a write may replace an existing target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// Replace whatever is there (atomically).
    Replace,
    /// Fail with [`PrivateFileError::Exists`] if anything is there.
    CreateNew,
}

/// Creates `dir` and any missing parents (mode 0700), then makes sure `dir`
/// belongs to this user and only to it.
pub fn ensure_dir(dir: &Path) -> Result<Access, PrivateFileError> {
    DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(dir)
        .map_err(PrivateFileError::io(dir))?;
    let handle = OpenOptions::new()
        .read(true)
        .custom_flags(OFlags::DIRECTORY.bits() as i32)
        .open(dir)
        .map_err(PrivateFileError::io(dir))?;
    narrow(&handle, dir, Kind::Directory)
}

/// Makes sure the existing file `path` is a regular file (not a link) of
/// this user's that only it can read and write.
pub fn ensure_file(path: &Path) -> Result<Access, PrivateFileError> {
    let file = open_existing(path)?;
    narrow(&file, path, Kind::File)
}

/// Reads the private file `path` (at most `max_len` bytes), checked and
/// narrowed as [`ensure_file`] does.
pub fn read(path: &Path, max_len: u64) -> Result<(Vec<u8>, Access), PrivateFileError> {
    let file = open_existing(path)?;
    let access = narrow(&file, path, Kind::File)?;
    let mut bytes = Vec::new();
    file.take(max_len + 1)
        .read_to_end(&mut bytes)
        .map_err(PrivateFileError::io(path))?;
    if bytes.len() as u64 > max_len {
        return Err(PrivateFileError::TooLarge(path.to_owned(), max_len));
    }
    Ok((bytes, access))
}

/// Writes `bytes` to `path` (mode 0600) atomically and durably, creating its
/// directory (0700) if needed. See the module docs.
pub fn write(path: &Path, bytes: &[u8], target: Target) -> Result<(), PrivateFileError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| PrivateFileError::NotAFile(path.to_owned()))?;
    ensure_dir(dir)?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".{}.tmp", random_hex()?));
    let tmp = dir.join(tmp_name);
    let result = (|| {
        let mut file = create_new(&tmp)?;
        file.write_all(bytes).map_err(PrivateFileError::io(&tmp))?;
        file.sync_all().map_err(PrivateFileError::io(&tmp))?;
        match target {
            Target::Replace => fs::rename(&tmp, path).map_err(PrivateFileError::io(path))?,
            Target::CreateNew => match fs::hard_link(&tmp, path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    return Err(PrivateFileError::Exists(path.to_owned()))
                }
                Err(e) => return Err(PrivateFileError::io(path)(e)),
            },
        }
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(PrivateFileError::io(dir))
    })();
    // After a rename the temporary name is gone; after a link (or a failure)
    // it is removed here.
    let _ = fs::remove_file(&tmp);
    result
}

/// Creates `path` as a new private file: never opens an existing file and
/// never follows a link.
pub(crate) fn create_new(path: &Path) -> Result<File, PrivateFileError> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .custom_flags(OFlags::NOFOLLOW.bits() as i32)
        .open(path)
        .map_err(|e| {
            if e.kind() == io::ErrorKind::AlreadyExists {
                PrivateFileError::Exists(path.to_owned())
            } else {
                PrivateFileError::io(path)(e)
            }
        })
}

fn open_existing(path: &Path) -> Result<File, PrivateFileError> {
    OpenOptions::new()
        .read(true)
        // NONBLOCK: a FIFO planted at the path must not hang the open.
        .custom_flags((OFlags::NOFOLLOW | OFlags::NONBLOCK).bits() as i32)
        .open(path)
        .map_err(|e| {
            if e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) {
                PrivateFileError::Symlink(path.to_owned())
            } else if e.kind() == io::ErrorKind::NotFound {
                PrivateFileError::NotFound(path.to_owned())
            } else {
                PrivateFileError::io(path)(e)
            }
        })
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    File,
    Directory,
}

fn narrow(handle: &File, path: &Path, kind: Kind) -> Result<Access, PrivateFileError> {
    let meta = handle.metadata().map_err(PrivateFileError::io(path))?;
    match kind {
        Kind::File if !meta.is_file() => return Err(PrivateFileError::NotAFile(path.to_owned())),
        Kind::Directory if !meta.is_dir() => {
            return Err(PrivateFileError::NotADirectory(path.to_owned()))
        }
        _ => {}
    }
    let uid = rustix::process::geteuid().as_raw();
    if meta.uid() != uid {
        return Err(PrivateFileError::NotOwner {
            path: path.to_owned(),
            owner: meta.uid(),
            uid,
        });
    }
    let mode = meta.mode() & 0o7777;
    if mode & SHARED_BITS == 0 {
        return Ok(Access::Private);
    }
    handle
        .set_permissions(fs::Permissions::from_mode(mode & !SHARED_BITS))
        .map_err(PrivateFileError::io(path))?;
    Ok(Access::Narrowed(mode))
}

fn random_hex() -> Result<String, PrivateFileError> {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).map_err(|_| PrivateFileError::Io {
        path: PathBuf::new(),
        source: io::Error::other("random source failed"),
    })?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests;
