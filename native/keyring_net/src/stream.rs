//! Reading one frame from a QUIC stream: chunks are taken in order and copied
//! once into a buffer sized from the frame's header (see
//! [`FrameAssembler`]), with no zero-filled staging buffer in between.

use keyring_core::wire::assembler::FrameAssembler;
use keyring_core::wire::frame::FrameError;
use quinn::{ReadError, RecvStream};

/// Why no frame was read.
#[derive(Debug)]
pub(crate) enum ReadFrameError {
    /// The stream or its connection failed (the connection says why).
    Stream,
    /// The bytes are not a frame within the limit.
    Frame(FrameError),
}

/// Reads the stream to its end as one frame (header included) whose payload
/// is at most `max_payload` bytes.
pub(crate) async fn read_frame(
    recv: &mut RecvStream,
    max_payload: usize,
) -> Result<Vec<u8>, ReadFrameError> {
    let mut frame = FrameAssembler::new(max_payload);
    while let Some(chunk) = recv
        .read_chunk(usize::MAX, true)
        .await
        .map_err(|_: ReadError| ReadFrameError::Stream)?
    {
        frame.push(&chunk.bytes).map_err(ReadFrameError::Frame)?;
    }
    frame.finish().map_err(ReadFrameError::Frame)
}
