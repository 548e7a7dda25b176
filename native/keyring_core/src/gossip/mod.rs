//! LAN gossip discovery packets.
//!
//! A node announces itself on a multicast group with an [`Announce`] packet.
//! Packets come from the network, so this module decodes them with fixed size
//! limits and a strict character set for names; it never allocates more than
//! [`MAX_PACKET`] bytes and never panics on any input.
//!
//! The packet ends with a 32-byte authentication tag (HMAC-SHA256 over all
//! preceding bytes, keyed with the cluster secret). This codec only frames the
//! tag: the BEAM side computes and checks it with `:crypto.mac/4`, and checks
//! the timestamp and nonce against replays.

mod error;
mod packet;

pub use error::GossipError;
pub use packet::{decode, encode_unsigned, Announce, Decoded, MAX_PACKET, MIN_PACKET, TAG_LEN};
