//! The one system call std does not offer.

use std::fs::File;
use std::os::fd::AsRawFd;

/// Starts writing back `len` dirty bytes of `file` from `offset`, without
/// waiting for them: the disk works while the caller hashes the next piece,
/// so the fsync at the end finds little left to do. Only a hint: errors
/// surface at that fsync, which is the durability point.
pub(crate) fn start_writeback(file: &File, offset: u64, len: u64) {
    let (Ok(offset), Ok(len)) = (i64::try_from(offset), i64::try_from(len)) else {
        return;
    };
    // SAFETY: sync_file_range only reads its integer arguments; the fd is
    // open for as long as `file` is borrowed.
    #[allow(unsafe_code)]
    unsafe {
        libc::sync_file_range(file.as_raw_fd(), offset, len, libc::SYNC_FILE_RANGE_WRITE);
    }
}
