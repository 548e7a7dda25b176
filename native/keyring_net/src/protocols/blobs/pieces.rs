//! Reusable buffers for the provider's answer pieces.
//!
//! A piece handed to QUIC stays alive until the peer acknowledges it, so
//! the provider cannot reuse one buffer; allocating a fresh zeroed buffer per
//! piece cost a `memset` and, once the allocator returned the memory to the
//! kernel, a page fault per page. A [`Pieces`] pool keeps up to
//! [`Pieces::new`]'s `keep` buffers that come back when quinn drops a piece
//! ([`Bytes::from_owner`]); a buffer from the pool is written over, never
//! cleared (every byte of a piece is written before it is sent: stale bytes
//! past [`PieceBuf::len`] are never part of it).

use std::sync::{Arc, Mutex};

use bytes::Bytes;

/// A pool of piece buffers of one capacity.
#[derive(Debug, Clone)]
pub(super) struct Pieces(Arc<Pool>);

#[derive(Debug)]
struct Pool {
    free: Mutex<Vec<Vec<u8>>>,
    capacity: usize,
    keep: usize,
}

impl Pieces {
    /// A pool of buffers of `capacity` bytes, keeping at most `keep` free
    /// ones (the rest are freed as usual).
    pub(super) fn new(capacity: usize, keep: usize) -> Self {
        Self(Arc::new(Pool {
            free: Mutex::new(Vec::with_capacity(keep)),
            capacity,
            keep,
        }))
    }

    /// A buffer to fill, empty (`len` 0) with room for the pool's capacity.
    pub(super) fn take(&self) -> PieceBuf {
        let reused = self.0.free.lock().unwrap_or_else(|e| e.into_inner()).pop();
        PieceBuf {
            buf: reused.unwrap_or_else(|| vec![0; self.0.capacity]),
            len: 0,
            pool: self.clone(),
        }
    }

    /// Free buffers held (for tests).
    #[cfg(test)]
    pub(super) fn free(&self) -> usize {
        self.0.free.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    fn give_back(&self, buf: Vec<u8>) {
        let mut free = self.0.free.lock().unwrap_or_else(|e| e.into_inner());
        if free.len() < self.0.keep && buf.len() == self.0.capacity {
            free.push(buf);
        }
    }
}

/// A piece being filled: bytes `[..len]` are the piece.
#[derive(Debug)]
pub(super) struct PieceBuf {
    buf: Vec<u8>,
    len: usize,
    pool: Pieces,
}

impl PieceBuf {
    /// Bytes written so far.
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing was written.
    pub(super) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Room left.
    pub(super) fn room(&self) -> usize {
        self.buf.len() - self.len
    }

    /// Appends `bytes` (which must fit: see [`room`](Self::room)).
    pub(super) fn put(&mut self, bytes: &[u8]) {
        self.next(bytes.len()).copy_from_slice(bytes);
    }

    /// The next `n` bytes of the piece, to be written by the caller (their
    /// old content is whatever the buffer held); they count as written.
    pub(super) fn next(&mut self, n: usize) -> &mut [u8] {
        let at = self.len;
        self.len += n;
        &mut self.buf[at..at + n]
    }

    /// The piece as `Bytes`; the buffer returns to the pool when the last
    /// clone of them is dropped.
    pub(super) fn freeze(self) -> Bytes {
        Bytes::from_owner(Filled(self))
    }
}

struct Filled(PieceBuf);

impl AsRef<[u8]> for Filled {
    fn as_ref(&self) -> &[u8] {
        &self.0.buf[..self.0.len]
    }
}

impl Drop for Filled {
    fn drop(&mut self) {
        let buf = std::mem::take(&mut self.0.buf);
        self.0.pool.give_back(buf);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_piece_is_exactly_what_was_written_and_its_buffer_comes_back_once_dropped() {
        let pool = Pieces::new(64, 2);
        let mut p = pool.take();
        p.put(b"hello ");
        p.next(5).copy_from_slice(b"world");
        let bytes = p.freeze();
        assert_eq!(&bytes[..], b"hello world");
        let clone = bytes.clone();
        drop(bytes);
        assert_eq!(pool.free(), 0, "a clone still holds the buffer");
        drop(clone);
        assert_eq!(pool.free(), 1);
        // Reused without clearing, but only what is written is the piece.
        let mut again = pool.take();
        again.put(b"x");
        assert_eq!(&again.freeze()[..], b"x");
    }

    #[test]
    fn the_pool_keeps_at_most_its_limit_of_free_buffers() {
        let pool = Pieces::new(16, 2);
        let pieces: Vec<Bytes> = (0..5)
            .map(|_| {
                let mut p = pool.take();
                p.put(&[1; 16]);
                p.freeze()
            })
            .collect();
        drop(pieces);
        assert_eq!(pool.free(), 2);
    }
}
