use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::{StoreError, WriteOp};
use crate::hash::StreamHasher;

static NEXT_ID: AtomicU64 = AtomicU64::new(0);

/// Receives a large blob piece by piece into a temporary file while hashing
/// it, so the blob is never held whole in memory. [`BlobWriter::finish`] turns
/// it into a [`WriteOp::Import`] for the committer. Dropped unfinished, it
/// removes its file.
#[derive(Debug)]
pub struct BlobWriter {
    file: Option<File>,
    path: PathBuf,
    hasher: StreamHasher,
}

impl BlobWriter {
    /// A writer with its temporary file in `tmp_dir`.
    pub fn create(tmp_dir: &Path) -> Result<Self, StoreError> {
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let path = tmp_dir.join(format!("import-{}-{id}", std::process::id()));
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)?;
        Ok(Self {
            file: Some(file),
            path,
            hasher: StreamHasher::new(),
        })
    }

    /// Appends `data`.
    pub fn write(&mut self, data: &[u8]) -> Result<(), StoreError> {
        let file = self.file.as_mut().ok_or(StoreError::Closed)?;
        file.write_all(data)?;
        self.hasher.update(data);
        Ok(())
    }

    /// Bytes written so far.
    pub fn len(&self) -> u64 {
        self.hasher.len()
    }

    /// Whether nothing was written yet.
    pub fn is_empty(&self) -> bool {
        self.hasher.is_empty()
    }

    /// Closes the file and returns the import to submit. The file is not
    /// fsynced: the committer copies it into redb, whose commit is durable.
    pub fn finish(mut self) -> Result<WriteOp, StoreError> {
        let mut file = self.file.take().ok_or(StoreError::Closed)?;
        file.flush()?;
        drop(file);
        let op = WriteOp::Import {
            path: std::mem::take(&mut self.path),
            cid: self.hasher.finalize(),
            size: self.hasher.len(),
        };
        Ok(op)
    }
}

impl Drop for BlobWriter {
    fn drop(&mut self) {
        if !self.path.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}
