//! Collects one frame from a stream that delivers it in pieces (QUIC hands a
//! stream over packet by packet), checking the header as soon as it is
//! complete so a frame over the limit is refused before its payload is read.
//!
//! **Memory follows the data, not the claim.** A header may announce up to
//! the receiver's limit (16 MiB by default) and then stall. The buffer is
//! never sized from that claim alone: it starts at [`INITIAL_RESERVE`] (or the
//! whole frame if smaller) and, whenever the bytes received outgrow it, grows
//! to [`GROWTH`] times what has arrived, never beyond the announced total. So
//! it holds at most `GROWTH` times the bytes that actually arrived (a stalled
//! frame pins little), and a large frame is copied about a third of its
//! size over again on its way in (16 KiB, 66 KiB and 267 KiB for a 1 MiB
//! frame).
//! [`FrameAssembler::capacity_for`] says in advance what a push will allocate,
//! so a caller can charge that against a budget before it happens.

use super::frame::{decode_header, FrameError, HEADER_LEN};

/// Most bytes reserved from a header's claim before any payload arrives.
/// A larger frame still arrives: the buffer grows as its bytes do.
pub const INITIAL_RESERVE: usize = 16 << 10;

/// How far the buffer grows, relative to the bytes received, when they
/// outgrow it.
pub const GROWTH: usize = 4;

const TRUNCATED: FrameError = FrameError::Malformed {
    kind: "any",
    why: "the stream ended before the frame did",
};
const OVERLONG: FrameError = FrameError::Malformed {
    kind: "any",
    why: "more bytes than the header announced",
};

/// One frame being assembled: [`push`](Self::push) the pieces in order, then
/// [`finish`](Self::finish) when the stream ends.
///
/// ```
/// use keyring_core::wire::assembler::FrameAssembler;
/// use keyring_core::wire::frame::{self, Frame};
///
/// let bytes = Frame::Cast { name: "log", body: b"hello" }.encode().unwrap();
/// let mut asm = FrameAssembler::new(1024);
/// for piece in bytes.chunks(4) {
///     asm.push(piece).unwrap();
/// }
/// let whole = asm.finish().unwrap();
/// assert_eq!(frame::decode(&whole, 1024).unwrap(), Frame::Cast { name: "log", body: b"hello" });
/// ```
#[derive(Debug)]
pub struct FrameAssembler {
    buf: Vec<u8>,
    max_payload: usize,
    /// Header plus payload, once the header has been read.
    total: Option<usize>,
}

impl FrameAssembler {
    /// An empty assembler accepting payloads up to `max_payload` bytes.
    pub fn new(max_payload: usize) -> Self {
        Self {
            buf: Vec::new(),
            max_payload,
            total: None,
        }
    }

    /// Bytes received so far.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// Whether nothing has been received yet.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Bytes the buffer holds allocated now.
    pub fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// The frame's announced size (header included), once its header is in.
    pub fn total(&self) -> Option<usize> {
        self.total
    }

    /// The capacity the buffer will have after [`push`](Self::push)ing
    /// `piece` (at least the current one), or why that push will fail.
    pub fn capacity_for(&self, piece: &[u8]) -> Result<usize, FrameError> {
        let total = match self.total {
            Some(total) => total,
            None => {
                let have = self.buf.len() + piece.len();
                if have < HEADER_LEN {
                    return Ok(self.buf.capacity().max(HEADER_LEN));
                }
                let mut header = [0u8; HEADER_LEN];
                let from_buf = self.buf.len();
                header[..from_buf].copy_from_slice(&self.buf);
                header[from_buf..].copy_from_slice(&piece[..HEADER_LEN - from_buf]);
                HEADER_LEN + decode_header(&header, self.max_payload)?.len
            }
        };
        let len = self.buf.len() + piece.len();
        if len > total {
            return Err(OVERLONG);
        }
        let cap = self.buf.capacity();
        Ok(if len <= cap {
            cap
        } else {
            total.min((GROWTH * len).max(INITIAL_RESERVE))
        })
    }

    /// Appends the next piece of the stream.
    ///
    /// Fails as soon as the header is complete and wrong (version, kind, or a
    /// length over the limit), or when more bytes arrive than it announced.
    pub fn push(&mut self, piece: &[u8]) -> Result<(), FrameError> {
        let target = self.capacity_for(piece)?;
        if self.total.is_none() && self.buf.len() + piece.len() >= HEADER_LEN {
            let from_buf = self.buf.len();
            let mut header = [0u8; HEADER_LEN];
            header[..from_buf].copy_from_slice(&self.buf);
            header[from_buf..].copy_from_slice(&piece[..HEADER_LEN - from_buf]);
            self.total = Some(HEADER_LEN + decode_header(&header, self.max_payload)?.len);
        }
        if target > self.buf.capacity() {
            self.buf.reserve_exact(target - self.buf.len());
        }
        self.buf.extend_from_slice(piece);
        Ok(())
    }

    /// Whether the whole announced frame has arrived.
    pub fn is_complete(&self) -> bool {
        self.total == Some(self.buf.len())
    }

    /// The whole frame (header included), once the stream has ended.
    pub fn finish(self) -> Result<Vec<u8>, FrameError> {
        match self.total {
            Some(total) if total == self.buf.len() => Ok(self.buf),
            _ => Err(TRUNCATED),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::frame::{self, Frame};

    fn cast(body: &[u8]) -> Vec<u8> {
        Frame::Cast { name: "bulk", body }.encode().unwrap()
    }

    #[test]
    fn a_frame_split_at_every_point_reassembles_exactly() {
        let bytes = cast(b"some body bytes");
        for cut in 0..=bytes.len() {
            let mut asm = FrameAssembler::new(1024);
            asm.push(&bytes[..cut]).unwrap();
            asm.push(&bytes[cut..]).unwrap();
            assert!(asm.is_complete());
            assert_eq!(asm.finish().unwrap(), bytes, "cut at {cut}");
        }
    }

    #[test]
    fn a_header_arriving_byte_by_byte_is_read_once_complete() {
        let bytes = cast(&[9; 300]);
        let mut asm = FrameAssembler::new(1024);
        for b in &bytes {
            asm.push(std::slice::from_ref(b)).unwrap();
        }
        assert_eq!(asm.len(), bytes.len());
        assert_eq!(asm.finish().unwrap(), bytes);
    }

    #[test]
    fn a_small_frame_is_sized_once_from_its_header() {
        let bytes = cast(&[1; 10_000]);
        let mut asm = FrameAssembler::new(1 << 20);
        asm.push(&bytes[..10]).unwrap();
        assert_eq!(asm.capacity(), bytes.len());
        for piece in bytes[10..].chunks(1200) {
            asm.push(piece).unwrap();
        }
        assert_eq!(asm.capacity(), bytes.len(), "no regrowth");
    }

    #[test]
    fn a_huge_claim_reserves_only_the_initial_bound() {
        let mut header = vec![frame::VERSION, 6];
        header.extend_from_slice(&(16u32 << 20).to_be_bytes());
        let mut asm = FrameAssembler::new(16 << 20);
        asm.push(&header).unwrap();
        assert_eq!(asm.capacity(), INITIAL_RESERVE);
    }

    #[test]
    fn the_buffer_grows_with_the_data_to_at_most_growth_times_what_arrived() {
        let bytes = cast(&[3; 3 << 20]);
        let mut asm = FrameAssembler::new(16 << 20);
        for piece in bytes.chunks(1200) {
            let before = asm.capacity();
            let predicted = asm.capacity_for(piece).unwrap();
            asm.push(piece).unwrap();
            assert_eq!(asm.capacity(), predicted, "capacity_for predicts push");
            assert!(asm.capacity() >= before);
            assert!(
                asm.capacity() <= (GROWTH * asm.len()).max(INITIAL_RESERVE),
                "{} bytes held in {}",
                asm.len(),
                asm.capacity()
            );
        }
        assert_eq!(asm.capacity(), bytes.len(), "never beyond the frame");
        assert_eq!(asm.finish().unwrap(), bytes);
    }

    #[test]
    fn a_large_frame_is_reallocated_only_a_few_times() {
        let bytes = cast(&[3; 1 << 20]);
        let mut asm = FrameAssembler::new(16 << 20);
        let mut sizes = vec![];
        for piece in bytes.chunks(1200) {
            asm.push(piece).unwrap();
            if sizes.last() != Some(&asm.capacity()) {
                sizes.push(asm.capacity());
            }
        }
        // 16 KiB, four times what arrived (twice), then the whole frame.
        assert_eq!(sizes.len(), 4, "{sizes:?}");
        assert_eq!(sizes[0], INITIAL_RESERVE);
        assert_eq!(*sizes.last().unwrap(), bytes.len());
    }

    #[test]
    fn a_frame_over_the_limit_is_refused_at_its_header() {
        let bytes = cast(&[0; 2000]);
        let mut asm = FrameAssembler::new(1000);
        assert!(matches!(
            asm.capacity_for(&bytes[..HEADER_LEN]),
            Err(FrameError::TooLarge { max: 1000, .. })
        ));
        let err = asm.push(&bytes[..HEADER_LEN]).unwrap_err();
        assert!(matches!(err, FrameError::TooLarge { max: 1000, .. }));
    }

    #[test]
    fn bytes_past_the_announced_length_are_refused() {
        let mut bytes = cast(b"abc");
        bytes.push(0);
        let mut asm = FrameAssembler::new(1024);
        assert_eq!(asm.capacity_for(&bytes), Err(OVERLONG));
        assert_eq!(asm.push(&bytes), Err(OVERLONG));
    }

    #[test]
    fn a_stream_ending_early_is_truncated() {
        let bytes = cast(b"abcdef");
        for cut in 0..bytes.len() {
            let mut asm = FrameAssembler::new(1024);
            asm.push(&bytes[..cut]).unwrap();
            assert!(!asm.is_complete());
            assert_eq!(asm.finish(), Err(TRUNCATED), "cut at {cut}");
        }
    }

    #[test]
    fn a_bad_version_or_kind_is_refused_at_its_header() {
        let mut asm = FrameAssembler::new(1024);
        assert_eq!(
            asm.push(&[9, 6, 0, 0, 0, 0]),
            Err(FrameError::UnsupportedVersion(9))
        );
        let mut asm = FrameAssembler::new(1024);
        assert_eq!(
            asm.push(&[frame::VERSION, 200, 0, 0, 0, 0]),
            Err(FrameError::UnknownKind(200))
        );
    }
}
