//! Gossip discovery packets: framing only (the BEAM checks the HMAC tag).
//! Packets are at most 512 bytes, so both functions run on a normal scheduler.

use keyring_core::gossip::{self, Announce, GossipError};
use rustler::{Binary, Encoder, Env, Term};

use crate::hash::digest_binary;

mod atoms {
    rustler::atoms! {
        too_short,
        too_long,
        bad_magic,
        unsupported_version,
        unknown_kind,
        bad_cluster,
        bad_node_name,
        malformed,
    }
}

struct Reason(GossipError);

impl Encoder for Reason {
    fn encode<'a>(&self, env: Env<'a>) -> Term<'a> {
        match self.0 {
            GossipError::TooShort => atoms::too_short(),
            GossipError::TooLong => atoms::too_long(),
            GossipError::BadMagic => atoms::bad_magic(),
            GossipError::UnsupportedVersion => atoms::unsupported_version(),
            GossipError::UnknownKind => atoms::unknown_kind(),
            GossipError::BadCluster => atoms::bad_cluster(),
            GossipError::BadNodeName => atoms::bad_node_name(),
            _ => atoms::malformed(),
        }
        .encode(env)
    }
}

impl std::panic::RefUnwindSafe for Reason {}

fn fixed<const N: usize>(bin: &Binary<'_>) -> Result<[u8; N], Reason> {
    bin.as_slice()
        .try_into()
        .map_err(|_| Reason(GossipError::BadLength))
}

/// `gossip_encode(ts_ms, nonce16, pk32, incarnation, cluster, node)` ->
/// `{:ok, unsigned_bytes}`; the caller appends the HMAC tag.
#[rustler::nif]
fn gossip_encode<'a>(
    env: Env<'a>,
    timestamp_ms: u64,
    nonce: Binary<'a>,
    public_key: Binary<'a>,
    incarnation: u64,
    cluster: String,
    node: String,
) -> Result<Binary<'a>, Reason> {
    let announce = Announce {
        timestamp_ms,
        nonce: fixed(&nonce)?,
        public_key: fixed(&public_key)?,
        incarnation,
        cluster,
        node,
    };
    gossip::encode_unsigned(&announce)
        .map(|bytes| digest_binary(env, &bytes))
        .map_err(Reason)
}

/// `gossip_decode(packet)` -> `{:ok, {ts_ms, nonce, pk, incarnation, cluster,
/// node}}` (names as binaries, never atoms) or `{:error, reason}`. The tag is
/// always the last 32 bytes of a packet that decodes.
#[rustler::nif]
fn gossip_decode<'a>(env: Env<'a>, packet: Binary<'a>) -> Result<Term<'a>, Reason> {
    let d = gossip::decode(packet.as_slice()).map_err(Reason)?;
    let a = &d.announce;
    Ok((
        a.timestamp_ms,
        digest_binary(env, &a.nonce),
        digest_binary(env, &a.public_key),
        a.incarnation,
        a.cluster.as_str(),
        a.node.as_str(),
    )
        .encode(env))
}
