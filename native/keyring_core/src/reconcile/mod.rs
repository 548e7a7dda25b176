//! Range-based set reconciliation: the negentropy protocol, version 1, as
//! published (hoytech/negentropy, `docs/negentropy-protocol-v1.md`), so
//! that any conforming implementation can check or speak the wire format.
//!
//! Each side holds a set of [`Item`]s, `(timestamp, 32-byte id)`, sorted by
//! timestamp then id ([`Items`]). The [`Initiator`] sends fingerprints of 16
//! ranges covering everything; the [`Responder`] answers each range whose
//! fingerprint differs from its own by splitting it again (or, under 32
//! items, by listing its ids); the initiator does the same with the answer,
//! and so on until every range matches or has been listed. The initiator
//! then knows what it has that the responder lacks and what it needs. With
//! 16 buckets, a million items take three round trips whatever the number
//! of differences, as long as each message fits the frame limit.
//!
//! A fingerprint is SHA-256 over (the ids' sum modulo 2^256, the count as a
//! varint), cut to 16 bytes. [`Items`] keeps prefix sums so a fingerprint
//! costs a few dozen additions and one hash, not a pass over the range; a
//! responder's work per message is O(ranges · log n + its answer), and its
//! answer is bounded by [`Config::frame_limit`].
//!
//! Everything here is I/O-free: messages in, messages and differences out.

mod error;
mod fingerprint;
pub mod framing;
mod items;
mod message;
mod session;
mod varint;

pub use error::ReconcileError;
pub use items::{Item, Items};
pub use message::{open, Bound, IdList, Opened, Payload, Range, Ranges};
pub use session::{Config, Initiator, Responder, MIN_FRAME_LIMIT};

/// The version byte of negentropy protocol version 1.
pub const PROTOCOL_VERSION: u8 = 0x61;
/// Length of an id.
pub const ID_LEN: usize = 32;
/// Length of a fingerprint.
pub const FINGERPRINT_LEN: usize = 16;

/// A 32-byte item id.
pub type Id = [u8; ID_LEN];

#[cfg(test)]
mod tests;
