//! Collects one frame from a stream that delivers it in pieces (QUIC hands a
//! stream over packet by packet), checking the header as soon as it is
//! complete so the buffer is sized once from it and a frame over the limit is
//! refused before its payload is read.

use super::frame::{decode_header, FrameError, HEADER_LEN};

/// Most bytes reserved up front from a header's claim. A frame larger than
/// this still arrives (the buffer grows as its bytes do), but a peer that
/// announces a big frame and then stalls pins at most this much.
pub const EAGER_RESERVE_MAX: usize = 4 << 20;

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

    /// Appends the next piece of the stream.
    ///
    /// Fails as soon as the header is complete and wrong (version, kind, or a
    /// length over the limit), or when more bytes arrive than it announced.
    pub fn push(&mut self, mut piece: &[u8]) -> Result<(), FrameError> {
        if self.total.is_none() {
            let take = (HEADER_LEN - self.buf.len()).min(piece.len());
            self.buf.extend_from_slice(&piece[..take]);
            piece = &piece[take..];
            if self.buf.len() < HEADER_LEN {
                return Ok(());
            }
            let header = decode_header(
                self.buf[..HEADER_LEN].try_into().expect("6 bytes"),
                self.max_payload,
            )?;
            let total = HEADER_LEN + header.len;
            self.total = Some(total);
            self.buf
                .reserve_exact(total.min(EAGER_RESERVE_MAX) - HEADER_LEN);
        }
        let total = self.total.expect("set above");
        if piece.len() > total - self.buf.len() {
            return Err(OVERLONG);
        }
        self.buf.extend_from_slice(piece);
        Ok(())
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
    fn the_buffer_is_sized_once_from_the_header() {
        let bytes = cast(&[1; 100_000]);
        let mut asm = FrameAssembler::new(1 << 20);
        asm.push(&bytes[..10]).unwrap();
        let reserved = asm.buf.capacity();
        assert!(reserved >= bytes.len());
        for piece in bytes[10..].chunks(1200) {
            asm.push(piece).unwrap();
        }
        assert_eq!(asm.buf.capacity(), reserved, "no regrowth");
    }

    #[test]
    fn a_frame_over_the_limit_is_refused_at_its_header() {
        let bytes = cast(&[0; 2000]);
        let mut asm = FrameAssembler::new(1000);
        let err = asm.push(&bytes[..HEADER_LEN]).unwrap_err();
        assert!(matches!(err, FrameError::TooLarge { max: 1000, .. }));
    }

    #[test]
    fn a_huge_announced_length_reserves_only_the_eager_maximum() {
        let mut header = vec![frame::VERSION, 6];
        header.extend_from_slice(&(64u32 << 20).to_be_bytes());
        let mut asm = FrameAssembler::new(128 << 20);
        asm.push(&header).unwrap();
        assert!(asm.buf.capacity() <= EAGER_RESERVE_MAX);
    }

    #[test]
    fn bytes_past_the_announced_length_are_refused() {
        let mut bytes = cast(b"abc");
        bytes.push(0);
        let mut asm = FrameAssembler::new(1024);
        assert_eq!(asm.push(&bytes), Err(OVERLONG));
    }

    #[test]
    fn a_stream_ending_early_is_truncated() {
        let bytes = cast(b"abcdef");
        for cut in 0..bytes.len() {
            let mut asm = FrameAssembler::new(1024);
            asm.push(&bytes[..cut]).unwrap();
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
