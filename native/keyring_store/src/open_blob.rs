//! A blob opened for reading: its bytes and outboard, wherever they live,
//! and the verified stream of any of its ranges, without the BEAM.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;

use keyring_core::hash::Digest;
use keyring_core::verified::{
    Encoder, GroupRanges, Need, OutboardBuilder, Tree, GROUP_SIZE, PAIR_LEN,
};

use crate::StoreError;

/// Bytes in memory (small blobs, inline outboards) or in a file.
#[derive(Debug)]
pub(crate) enum Bytes {
    Memory(Vec<u8>),
    File(File),
}

impl Bytes {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), StoreError> {
        match self {
            Bytes::Memory(v) => {
                let start = usize::try_from(offset).map_err(|_| short())?;
                let src = v.get(start..start + buf.len()).ok_or_else(short)?;
                buf.copy_from_slice(src);
                Ok(())
            }
            Bytes::File(f) => f.read_exact_at(buf, offset).map_err(|e| {
                if e.kind() == std::io::ErrorKind::UnexpectedEof {
                    short()
                } else {
                    e.into()
                }
            }),
        }
    }
}

fn short() -> StoreError {
    StoreError::Corrupted("a blob file is shorter than its record says".into())
}

/// Piece size for whole-blob reads and checks.
const PIECE: usize = 1 << 20;

/// An open blob. The file handles stay valid if the blob is deleted meanwhile,
/// so a read or a stream that started completes with the blob's bytes.
#[derive(Debug)]
pub struct OpenBlob {
    cid: Digest,
    size: u64,
    data: Bytes,
    outboard: Bytes,
    verify: bool,
}

impl OpenBlob {
    pub(crate) fn new(cid: Digest, size: u64, data: Bytes, outboard: Bytes, verify: bool) -> Self {
        Self {
            cid,
            size,
            data,
            outboard,
            verify,
        }
    }

    /// The blob's cid.
    pub fn cid(&self) -> &Digest {
        &self.cid
    }

    /// The blob's size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Whether its bytes are in memory already (a small blob, from the index).
    pub fn in_memory(&self) -> bool {
        matches!(self.data, Bytes::Memory(_))
    }

    /// Reads `buf.len()` bytes from `offset` (unchecked).
    pub fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), StoreError> {
        self.data.read_at(offset, buf)
    }

    /// Reads the whole blob into `buf` (exactly [`size`](Self::size) bytes);
    /// if it was opened with `verify`, hashes it on the way and fails with
    /// [`StoreError::ContentMismatch`] unless it is the cid's content.
    pub fn read_into(&self, buf: &mut [u8]) -> Result<(), StoreError> {
        if buf.len() as u64 != self.size {
            return Err(StoreError::Io("read buffer has the wrong size".into()));
        }
        let mut hasher = self.verify.then(blake3::Hasher::new);
        let mut offset = 0;
        for piece in buf.chunks_mut(PIECE) {
            self.data.read_at(offset, piece)?;
            if let Some(h) = &mut hasher {
                h.update(piece);
            }
            offset += piece.len() as u64;
        }
        match hasher {
            Some(h) if *h.finalize().as_bytes() != self.cid => Err(StoreError::ContentMismatch),
            _ => Ok(()),
        }
    }

    /// The outboard pair at `slot`.
    pub fn pair(&self, slot: u64) -> Result<[u8; PAIR_LEN], StoreError> {
        let mut pair = [0u8; PAIR_LEN];
        self.outboard.read_at(slot * PAIR_LEN as u64, &mut pair)?;
        Ok(pair)
    }

    /// Hashes the whole blob and compares the result with the cid and the
    /// stored outboard; `Ok(false)` if anything differs.
    pub fn check(&self) -> Result<bool, StoreError> {
        let mut builder = OutboardBuilder::new();
        let mut piece = vec![0u8; PIECE.min(self.size as usize)];
        let (mut offset, mut ob_offset) = (0u64, 0u64);
        let mut stored = Vec::new();
        while offset < self.size {
            let n = PIECE.min((self.size - offset) as usize);
            if let Err(e) = self.data.read_at(offset, &mut piece[..n]) {
                return short_is_false(e);
            }
            builder.update(&piece[..n]);
            offset += n as u64;
            let pairs = builder.take_pairs();
            stored.resize(pairs.len(), 0);
            if let Err(e) = self.outboard.read_at(ob_offset, &mut stored) {
                return short_is_false(e);
            }
            if stored != pairs {
                return Ok(false);
            }
            ob_offset += pairs.len() as u64;
        }
        let (root, pairs) = builder.finalize();
        stored.resize(pairs.len(), 0);
        if let Err(e) = self.outboard.read_at(ob_offset, &mut stored) {
            return short_is_false(e);
        }
        Ok(root == self.cid
            && stored == pairs
            && ob_offset + pairs.len() as u64 == Tree::new(self.size).outboard_size())
    }

    /// The verified stream of groups `ranges` of this blob, to be pulled
    /// piece by piece (for a writer such as a QUIC send stream).
    pub fn verified(&self, ranges: &GroupRanges) -> VerifiedStream<'_> {
        VerifiedStream {
            blob: self,
            encoder: Encoder::new(self.cid, self.size, ranges),
            header_sent: false,
            group: vec![0u8; GROUP_SIZE as usize],
        }
    }

    /// Writes the verified stream of groups `ranges` to `out`; returns the
    /// bytes written. Every pair and group is checked against the cid before
    /// it is written, so a blob damaged on disk is never passed on.
    pub fn write_verified(
        &self,
        ranges: &GroupRanges,
        out: &mut impl Write,
    ) -> Result<u64, StoreError> {
        let mut stream = self.verified(ranges);
        let mut buf = Vec::with_capacity(256 * 1024);
        let mut total = 0u64;
        loop {
            buf.clear();
            let more = stream.fill(&mut buf, 256 * 1024)?;
            out.write_all(&buf)?;
            total += buf.len() as u64;
            if !more {
                return Ok(total);
            }
        }
    }
}

fn short_is_false(e: StoreError) -> Result<bool, StoreError> {
    match e {
        StoreError::Corrupted(_) => Ok(false),
        other => Err(other),
    }
}

/// A verified stream being read from the store. See [`OpenBlob::verified`].
#[derive(Debug)]
pub struct VerifiedStream<'a> {
    blob: &'a OpenBlob,
    encoder: Encoder,
    header_sent: bool,
    group: Vec<u8>,
}

impl VerifiedStream<'_> {
    /// Appends the next whole items of the stream to `buf` until it holds
    /// at least `max` bytes or the stream ends; `Ok(false)` once it has ended.
    /// A pair or group that does not match the cid is
    /// [`StoreError::ContentMismatch`] (this copy is damaged).
    pub fn fill(&mut self, buf: &mut Vec<u8>, max: usize) -> Result<bool, StoreError> {
        if !self.header_sent {
            buf.extend_from_slice(&self.encoder.header());
            self.header_sent = true;
        }
        while buf.len() < max {
            match self.encoder.next() {
                Need::Done => return Ok(false),
                Need::Parent { slot } => {
                    let pair = self.blob.pair(slot)?;
                    self.encoder
                        .parent(&pair)
                        .map_err(|_| StoreError::ContentMismatch)?;
                    buf.extend_from_slice(&pair);
                }
                Need::Group { offset, len, .. } => {
                    let group = &mut self.group[..len];
                    self.blob.data.read_at(offset, group)?;
                    self.encoder
                        .group(group)
                        .map_err(|_| StoreError::ContentMismatch)?;
                    buf.extend_from_slice(group);
                }
            }
        }
        Ok(!matches!(self.encoder.next(), Need::Done))
    }
}
