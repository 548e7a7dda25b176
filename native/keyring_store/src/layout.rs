//! Where the store's files live, and the file-system steps that make them
//! durable.
//!
//! ```text
//! <dir>/store.redb                   the index (blobs, partials, tags, refs)
//! <dir>/blobs/<hh>/<cid>.data        bytes of a blob over 16 KiB (hh: the cid's first byte)
//! <dir>/blobs/<hh>/<cid>.obao        its outboard, when over 16 KiB (blobs over ~4 MiB)
//! <dir>/partial/<cid>-<id>.data      a partial blob's bytes, at their offsets
//! <dir>/partial/<cid>-<id>.obao      its outboard as far as verified
//! <dir>/tmp/                         imports in progress (emptied on open)
//! ```
//!
//! Directories are 0700 and files 0600. Only the writer thread creates or
//! removes files under `blobs/` (by rename and unlink), and always in step
//! with the index, so a file there belongs to a committed record, or is an
//! orphan left by a crash between rename and commit that GC removes.
//! Partial files carry a fresh id in their name, so a partial blob dropped
//! and started again never shares a file with its predecessor.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use keyring_core::hash::Digest;

/// The paths of one store.
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    blobs: PathBuf,
    partial: PathBuf,
    tmp: PathBuf,
}

/// What a file under `blobs/` or `partial/` holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FileKind {
    Data,
    Outboard,
}

impl Layout {
    /// The layout under `dir`, creating its directories (0700). `tmp/` is
    /// emptied: nothing in it was committed.
    pub(crate) fn create(dir: &Path) -> io::Result<Self> {
        mkdir(dir)?;
        let layout = Self {
            blobs: dir.join("blobs"),
            partial: dir.join("partial"),
            tmp: dir.join("tmp"),
        };
        let _ = fs::remove_dir_all(&layout.tmp);
        mkdir(&layout.tmp)?;
        mkdir(&layout.partial)?;
        let fresh = !layout.blobs.exists();
        mkdir(&layout.blobs)?;
        for shard in 0..=255u8 {
            mkdir(&layout.blobs.join(format!("{shard:02x}")))?;
        }
        if fresh {
            sync_dir(&layout.blobs)?;
            sync_dir(dir)?;
        }
        Ok(layout)
    }

    pub(crate) fn tmp_dir(&self) -> &Path {
        &self.tmp
    }

    pub(crate) fn partial_dir(&self) -> &Path {
        &self.partial
    }

    /// The directory holding blob `cid`'s files.
    pub(crate) fn shard_dir(&self, cid: &Digest) -> PathBuf {
        self.blobs.join(format!("{:02x}", cid[0]))
    }

    /// The directory of shard `index` (0..=255).
    pub(crate) fn shard(&self, index: u8) -> PathBuf {
        self.blobs.join(format!("{index:02x}"))
    }

    pub(crate) fn blob_file(&self, cid: &Digest, kind: FileKind) -> PathBuf {
        self.shard_dir(cid)
            .join(format!("{}.{}", hex(cid), extension(kind)))
    }

    pub(crate) fn partial_file(&self, cid: &Digest, id: u64, kind: FileKind) -> PathBuf {
        self.partial
            .join(format!("{}-{id:016x}.{}", hex(cid), extension(kind)))
    }
}

fn extension(kind: FileKind) -> &'static str {
    match kind {
        FileKind::Data => "data",
        FileKind::Outboard => "obao",
    }
}

fn mkdir(path: &Path) -> io::Result<()> {
    match DirBuilder::new().mode(0o700).recursive(true).create(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }?;
    let perms = fs::metadata(path)?.permissions();
    if perms.mode() & 0o077 != 0 {
        fs::set_permissions(path, fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// Creates a new file for writing, mode 0600.
pub(crate) fn create_file(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

/// Makes the entries of a directory (renames, new files) durable.
pub(crate) fn sync_dir(path: &Path) -> io::Result<()> {
    File::open(path)?.sync_all()
}

/// Lower-case hex of a cid.
pub fn hex(cid: &Digest) -> String {
    let mut s = String::with_capacity(64);
    for b in cid {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

fn unhex(s: &str) -> Option<Digest> {
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    // Only the canonical (lower-case) spelling names a file of ours.
    (hex(&out) == s).then_some(out)
}

fn split_kind(name: &str) -> Option<(&str, FileKind)> {
    if let Some(stem) = name.strip_suffix(".data") {
        Some((stem, FileKind::Data))
    } else {
        name.strip_suffix(".obao")
            .map(|stem| (stem, FileKind::Outboard))
    }
}

/// `<cid>.data` / `<cid>.obao`.
pub(crate) fn parse_blob_file(name: &str) -> Option<(Digest, FileKind)> {
    let (stem, kind) = split_kind(name)?;
    Some((unhex(stem)?, kind))
}

/// `<cid>-<id>.data` / `<cid>-<id>.obao`.
pub(crate) fn parse_partial_file(name: &str) -> Option<(Digest, u64, FileKind)> {
    let (stem, kind) = split_kind(name)?;
    let (cid, id) = stem.split_once('-')?;
    if id.len() != 16 {
        return None;
    }
    Some((unhex(cid)?, u64::from_str_radix(id, 16).ok()?, kind))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_parse_back() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::create(dir.path()).unwrap();
        let cid = [0xab; 32];
        let data = layout.blob_file(&cid, FileKind::Data);
        let name = data.file_name().unwrap().to_str().unwrap();
        assert_eq!(parse_blob_file(name), Some((cid, FileKind::Data)));
        let part = layout.partial_file(&cid, 42, FileKind::Outboard);
        let name = part.file_name().unwrap().to_str().unwrap();
        assert_eq!(
            parse_partial_file(name),
            Some((cid, 42, FileKind::Outboard))
        );
        assert_eq!(parse_blob_file(&name.to_uppercase()), None);
        assert_eq!(parse_blob_file("junk.data"), None);
        let mode = fs::metadata(layout.shard(0xab))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700);
    }
}
