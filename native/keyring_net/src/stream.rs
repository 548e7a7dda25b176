//! Reading one frame from a QUIC stream under the stream fences.
//!
//! - **A deadline per stream, by byte rate.** The header must arrive within
//!   [`crate::Limits::stream_grace`] of the stream's opening; after that the
//!   stream has the grace again plus one second per
//!   [`crate::Limits::min_stream_rate`] bytes received. A peer that stalls
//!   mid-frame, or trickles, is stopped at that deadline
//!   (`STREAM_TOO_SLOW`), and whatever the frame held is released.
//! - **Memory is charged before it is used.** Once the header is in, the
//!   frame's announced size is charged to the connection's and the peer's
//!   [`Budget`] (waiting, holding nothing, while there is no room); only then
//!   is the payload read, into a buffer that grows with the data
//!   ([`FrameAssembler`]). A frame over the budget in time is stopped
//!   (`STREAM_OVER_BUDGET`).
//! - The bytes are checked against the frame header as they come (version,
//!   kind, length limit: `STREAM_BAD_FRAME`).

use std::pin::Pin;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use keyring_core::wire::assembler::FrameAssembler;
use keyring_core::wire::frame::{FrameError, HEADER_LEN};
use quinn::RecvStream;
use tokio::time::{Instant, Sleep};

use crate::budget::{Budget, Charge};
use crate::close::{stream_code, STREAM_BAD_FRAME, STREAM_OVER_BUDGET, STREAM_TOO_SLOW};
use crate::config::Limits;

/// Why no frame was read.
#[derive(Debug)]
pub enum ReadFrameError {
    /// The stream or its connection failed (the connection says why).
    Stream,
    /// The bytes are not a frame within the limit.
    Frame(FrameError),
    /// The peer sent slower than the minimum rate (or not at all).
    TooSlow,
    /// The frame found no room in the memory budget in time.
    OverBudget,
}

/// The timing rules of a stream (from [`Limits`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct StreamRules {
    grace: Duration,
    min_rate: u32,
    budget_wait: Duration,
}

impl StreamRules {
    /// Time a stream gets for its first bytes.
    pub(crate) fn grace(&self) -> Duration {
        self.grace
    }

    pub(crate) fn new(limits: &Limits) -> Self {
        Self {
            grace: limits.stream_grace,
            min_rate: limits.min_stream_rate.max(1),
            budget_wait: limits.budget_wait,
        }
    }

    /// Time allowed to move `bytes` at the minimum rate (plus the grace).
    pub(crate) fn allowance(&self, bytes: usize) -> Duration {
        self.grace + Duration::from_secs_f64(bytes as f64 / f64::from(self.min_rate))
    }

    /// The deadline of a stream that started (or was charged) at `start`
    /// and has received `received` bytes since.
    fn deadline(&self, start: Instant, received: usize) -> Instant {
        start + self.allowance(received)
    }
}

/// A complete frame and the budget it still holds (dropping the charge
/// returns the room; keep it while the frame's work is pending).
#[derive(Debug)]
pub struct ChargedFrame {
    /// The frame, header included.
    pub bytes: Vec<u8>,
    /// Its charge against the peer's budget.
    pub charge: Charge,
}

/// The receiving half of a protocol stream: frames are read from it under
/// the stream fences.
#[derive(Debug)]
pub struct FramedRecv {
    recv: RecvStream,
    /// Bytes read already (with the protocol id) and not yet consumed.
    head: Bytes,
    budget: Budget,
    rules: StreamRules,
    /// Time the frame header has from the start of a read (none: the
    /// caller bounds it).
    header_within: Option<Duration>,
}

impl FramedRecv {
    /// A stream the peer opened: a frame's header is due within the grace
    /// of the read that asks for it.
    pub(crate) fn new(recv: RecvStream, head: Bytes, budget: Budget, rules: StreamRules) -> Self {
        Self {
            recv,
            head,
            budget,
            header_within: Some(rules.grace),
            rules,
        }
    }

    /// The answer on a stream this node opened: the peer may take as long
    /// as the caller waits (a handler may run long) before the header; the
    /// byte rate applies after it.
    pub(crate) fn answer(recv: RecvStream, budget: Budget, rules: StreamRules) -> Self {
        Self {
            recv,
            head: Bytes::new(),
            budget,
            rules,
            header_within: None,
        }
    }

    /// Stops the stream: the peer is told to send no more.
    pub fn stop(&mut self, code: u32) {
        let _ = self.recv.stop(stream_code(code));
    }

    /// The next bytes of the stream as they arrive, at most `max` (`None` at
    /// its end): for a protocol that streams raw bytes (blob transfer). The
    /// caller bounds the time; QUIC flow control bounds what the peer can
    /// send ahead of the reads.
    pub async fn read_raw(&mut self, max: usize) -> Result<Option<Bytes>, ReadFrameError> {
        if !self.head.is_empty() {
            let take = self.head.len().min(max);
            return Ok(Some(self.head.split_to(take)));
        }
        match self.recv.read_chunk(max, true).await {
            Ok(chunk) => Ok(chunk.map(|c| c.bytes)),
            Err(_) => Err(ReadFrameError::Stream),
        }
    }

    /// Reads as many bytes as are there (at least one, waiting for them) into
    /// `buf`'s spare capacity, which must not be empty: no zeroing, one
    /// copy out of quinn's buffers; how many (`None` at the stream's end).
    pub async fn read_buf(&mut self, buf: &mut BytesMut) -> Result<Option<usize>, ReadFrameError> {
        let room = buf.capacity() - buf.len();
        if room == 0 {
            return Err(ReadFrameError::Stream);
        }
        if !self.head.is_empty() {
            let take = self.head.len().min(room);
            buf.extend_from_slice(&self.head.split_to(take));
            return Ok(Some(take));
        }
        match tokio::io::AsyncReadExt::read_buf(&mut self.recv, buf).await {
            Ok(0) => Ok(None),
            Ok(n) => Ok(Some(n)),
            Err(_) => Err(ReadFrameError::Stream),
        }
    }

    /// Reads the rest of the stream as one frame (header included) whose
    /// payload is at most `max_payload` bytes.
    pub async fn read_frame(&mut self, max_payload: usize) -> Result<ChargedFrame, ReadFrameError> {
        let out = self.read(max_payload).await;
        match &out {
            Err(ReadFrameError::TooSlow) => self.stop(STREAM_TOO_SLOW),
            Err(ReadFrameError::OverBudget) => self.stop(STREAM_OVER_BUDGET),
            Err(ReadFrameError::Frame(_)) => self.stop(STREAM_BAD_FRAME),
            _ => {}
        }
        out
    }

    async fn read(&mut self, max_payload: usize) -> Result<ChargedFrame, ReadFrameError> {
        let mut frame = FrameAssembler::new(max_payload);
        let mut charge: Option<(Charge, Instant)> = None;
        let mut received = 0usize;
        let header_by = self.header_within.map(|d| Instant::now() + d);
        // One timer per frame, armed at the earliest deadline the frame may
        // have and moved on only when it fires: the byte-rate deadline moves
        // later with every piece, and re-arming per piece would cost a timer
        // registration per packet.
        let mut timer: Option<Pin<Box<Sleep>>> = None;
        let mut pieces: [Bytes; READ_BATCH] = Default::default();
        loop {
            let deadline = match &charge {
                None => header_by,
                Some((_, since)) => Some(self.rules.deadline(*since, received)),
            };
            let n = if !self.head.is_empty() {
                pieces[0] = std::mem::take(&mut self.head);
                Some(1)
            } else {
                self.read_pieces(&mut pieces, deadline, &mut timer).await?
            };
            let Some(n) = n else {
                let bytes = frame.finish().map_err(ReadFrameError::Frame)?;
                let charge = match charge {
                    Some((c, _)) => c,
                    // Only a frame without a header gets here, and finish refuses it.
                    None => return Err(ReadFrameError::Stream),
                };
                return Ok(ChargedFrame { bytes, charge });
            };
            for piece in &mut pieces[..n] {
                let mut piece = std::mem::take(piece);
                if charge.is_none() {
                    // The header first (a few bytes), so the frame is charged
                    // before any of its payload is held.
                    let take = (HEADER_LEN - frame.len()).min(piece.len());
                    frame.push(&piece[..take]).map_err(ReadFrameError::Frame)?;
                    piece = piece.slice(take..);
                    if let Some(total) = frame.total() {
                        let c = self
                            .budget
                            .charge(total, self.rules.budget_wait)
                            .await
                            .map_err(|_| ReadFrameError::OverBudget)?;
                        charge = Some((c, Instant::now()));
                    }
                }
                received += piece.len();
                frame.push(&piece).map_err(ReadFrameError::Frame)?;
            }
        }
    }

    /// Reads the next pieces of the stream into `pieces` (how many; `None`
    /// at its end), failing once `deadline` has passed.
    async fn read_pieces(
        &mut self,
        pieces: &mut [Bytes],
        deadline: Option<Instant>,
        timer: &mut Option<Pin<Box<Sleep>>>,
    ) -> Result<Option<usize>, ReadFrameError> {
        let Some(deadline) = deadline else {
            return self
                .recv
                .read_chunks(pieces)
                .await
                .map_err(|_| ReadFrameError::Stream);
        };
        let timer = timer.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        loop {
            tokio::select! {
                biased;
                read = self.recv.read_chunks(pieces) => {
                    return read.map_err(|_| ReadFrameError::Stream);
                }
                () = timer.as_mut() => {
                    if Instant::now() >= deadline {
                        return Err(ReadFrameError::TooSlow);
                    }
                    // Fired at an earlier deadline; the bytes since moved it.
                    timer.as_mut().reset(deadline);
                }
            }
        }
    }
}

impl FramedRecv {
    /// Reads the next bytes of the stream as they come (at most `max`; `None`
    /// at its end), failing with [`ReadFrameError::TooSlow`] (and stopping
    /// the stream) once `deadline` has passed. For protocols that stream
    /// their own items rather than one frame: the caller moves the deadline
    /// on with the bytes received ([`FramedRecv::allowance`]) and bounds
    /// what it buffers.
    pub async fn read_chunk(
        &mut self,
        max: usize,
        deadline: Instant,
    ) -> Result<Option<Bytes>, ReadFrameError> {
        if !self.head.is_empty() {
            let take = self.head.len().min(max.max(1));
            return Ok(Some(self.head.split_to(take)));
        }
        match tokio::time::timeout_at(deadline, self.recv.read_chunk(max.max(1), true)).await {
            Ok(Ok(chunk)) => Ok(chunk.map(|c| c.bytes)),
            Ok(Err(_)) => Err(ReadFrameError::Stream),
            Err(_) => {
                self.stop(STREAM_TOO_SLOW);
                Err(ReadFrameError::TooSlow)
            }
        }
    }

    /// Charges `bytes` to the connection's and the peer's memory budget
    /// before a protocol that reads its own messages buffers them (waiting
    /// for room as frames do); dropping the charge gives the room back. No
    /// room in time: the stream is stopped (`STREAM_OVER_BUDGET`).
    pub async fn charge(&mut self, bytes: usize) -> Result<Charge, ReadFrameError> {
        match self.budget.charge(bytes, self.rules.budget_wait).await {
            Ok(c) => Ok(c),
            Err(_) => {
                self.stop(STREAM_OVER_BUDGET);
                Err(ReadFrameError::OverBudget)
            }
        }
    }

    /// Time allowed to receive `bytes` at the link's minimum rate, plus the
    /// stream grace.
    pub fn allowance(&self, bytes: usize) -> Duration {
        self.rules.allowance(bytes)
    }
}

/// Pieces taken from quinn per read.
const READ_BATCH: usize = 32;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_deadline_grows_with_the_bytes_received() {
        let rules = StreamRules {
            grace: Duration::from_secs(2),
            min_rate: 1000,
            budget_wait: Duration::ZERO,
        };
        let t0 = Instant::now();
        assert_eq!(rules.deadline(t0, 0), t0 + Duration::from_secs(2));
        assert_eq!(rules.deadline(t0, 3000), t0 + Duration::from_secs(5));
    }
}
