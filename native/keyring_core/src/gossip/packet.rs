use super::GossipError;

/// Magic bytes that start every packet.
const MAGIC: &[u8; 4] = b"KRGS";
/// The only protocol version so far.
const VERSION: u8 = 1;
/// Packet kind: a node announcing itself.
const KIND_ANNOUNCE: u8 = 1;

/// Length of the trailing authentication tag (HMAC-SHA256).
pub const TAG_LEN: usize = 32;
/// Largest packet accepted or produced.
pub const MAX_PACKET: usize = 512;
/// Longest cluster (topology) name.
const MAX_CLUSTER: usize = 64;
/// Longest node name (`name@host`), the limit of Erlang node names.
const MAX_NODE: usize = 255;

/// Fixed header: magic, version, kind, timestamp, nonce, public key, incarnation.
const HEADER: usize = 4 + 1 + 1 + 8 + 16 + 32 + 8;
/// Smallest valid packet: header, a 1-byte cluster, a 3-byte node name, tag.
pub const MIN_PACKET: usize = HEADER + 1 + 1 + 1 + 3 + TAG_LEN;

/// A node's announcement: "I am `node`, identity `public_key`, in `cluster`".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announce {
    /// Sender's wall clock in milliseconds since the Unix epoch (replay window).
    pub timestamp_ms: u64,
    /// Random bytes, unique per packet (replay cache).
    pub nonce: [u8; 16],
    /// The sender's Ed25519 public key (its node id).
    pub public_key: [u8; 32],
    /// The sender's incarnation (bumped on every start).
    pub incarnation: u64,
    /// Cluster (topology) name; packets of other clusters are foreign.
    pub cluster: String,
    /// Erlang node name, `name@host`.
    pub node: String,
}

/// A decoded packet: the announcement plus the tag the caller must verify
/// over `signed` (every byte before the tag).
#[derive(Debug)]
pub struct Decoded<'a> {
    /// The announcement.
    pub announce: Announce,
    /// Bytes the tag authenticates.
    pub signed: &'a [u8],
    /// The trailing tag.
    pub tag: &'a [u8],
}

fn cluster_ok(s: &[u8]) -> bool {
    !s.is_empty()
        && s.len() <= MAX_CLUSTER
        && s.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

fn node_ok(s: &[u8]) -> bool {
    if s.len() < 3 || s.len() > MAX_NODE {
        return false;
    }
    let mut parts = s.splitn(2, |&c| c == b'@');
    let (Some(name), Some(host)) = (parts.next(), parts.next()) else {
        return false;
    };
    !name.is_empty()
        && !host.is_empty()
        && name
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-'))
        && host
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.' | b':'))
}

/// Encodes everything but the tag; the caller appends `HMAC(secret, bytes)`.
pub fn encode_unsigned(a: &Announce) -> Result<Vec<u8>, GossipError> {
    if !cluster_ok(a.cluster.as_bytes()) {
        return Err(GossipError::BadCluster);
    }
    if !node_ok(a.node.as_bytes()) {
        return Err(GossipError::BadNodeName);
    }
    let mut out = Vec::with_capacity(HEADER + 2 + a.cluster.len() + a.node.len());
    out.extend_from_slice(MAGIC);
    out.push(VERSION);
    out.push(KIND_ANNOUNCE);
    out.extend_from_slice(&a.timestamp_ms.to_be_bytes());
    out.extend_from_slice(&a.nonce);
    out.extend_from_slice(&a.public_key);
    out.extend_from_slice(&a.incarnation.to_be_bytes());
    out.push(a.cluster.len() as u8);
    out.extend_from_slice(a.cluster.as_bytes());
    out.push(a.node.len() as u8);
    out.extend_from_slice(a.node.as_bytes());
    if out.len() + TAG_LEN > MAX_PACKET {
        return Err(GossipError::TooLong);
    }
    Ok(out)
}

/// Reads bytes in order; every read is bounds-checked.
struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], GossipError> {
        if n > self.buf.len() {
            return Err(GossipError::BadLength);
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], GossipError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, GossipError> {
        Ok(self.take(1)?[0])
    }

    fn u64(&mut self) -> Result<u64, GossipError> {
        Ok(u64::from_be_bytes(self.array()?))
    }
}

/// Decodes a packet. Does not check the tag: see the module docs.
pub fn decode(packet: &[u8]) -> Result<Decoded<'_>, GossipError> {
    if packet.len() > MAX_PACKET {
        return Err(GossipError::TooLong);
    }
    if packet.len() < MIN_PACKET {
        return Err(GossipError::TooShort);
    }
    let (signed, tag) = packet.split_at(packet.len() - TAG_LEN);
    let mut r = Reader { buf: signed };
    if r.take(4)? != MAGIC {
        return Err(GossipError::BadMagic);
    }
    if r.u8()? != VERSION {
        return Err(GossipError::UnsupportedVersion);
    }
    if r.u8()? != KIND_ANNOUNCE {
        return Err(GossipError::UnknownKind);
    }
    let timestamp_ms = r.u64()?;
    let nonce = r.array::<16>()?;
    let public_key = r.array::<32>()?;
    let incarnation = r.u64()?;
    let cluster_len = r.u8()? as usize;
    let cluster = r.take(cluster_len)?;
    if !cluster_ok(cluster) {
        return Err(GossipError::BadCluster);
    }
    let node_len = r.u8()? as usize;
    let node = r.take(node_len)?;
    if !node_ok(node) {
        return Err(GossipError::BadNodeName);
    }
    if !r.buf.is_empty() {
        return Err(GossipError::BadLength);
    }
    // Both names are ASCII by the checks above.
    let announce = Announce {
        timestamp_ms,
        nonce,
        public_key,
        incarnation,
        cluster: String::from_utf8_lossy(cluster).into_owned(),
        node: String::from_utf8_lossy(node).into_owned(),
    };
    Ok(Decoded {
        announce,
        signed,
        tag,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Announce {
        Announce {
            timestamp_ms: 1_700_000_000_000,
            nonce: [7; 16],
            public_key: [9; 32],
            incarnation: 3,
            cluster: "keyring".into(),
            node: "keyring1@127.0.0.1".into(),
        }
    }

    fn packet(a: &Announce) -> Vec<u8> {
        let mut p = encode_unsigned(a).unwrap();
        p.extend_from_slice(&[0xAB; TAG_LEN]);
        p
    }

    #[test]
    fn announce_round_trips_with_tag_split_off() {
        let a = sample();
        let p = packet(&a);
        let d = decode(&p).unwrap();
        assert_eq!(d.announce, a);
        assert_eq!(d.tag, &[0xAB; TAG_LEN]);
        assert_eq!(d.signed, &p[..p.len() - TAG_LEN]);
    }

    #[test]
    fn every_truncation_is_rejected_without_panic() {
        let p = packet(&sample());
        for n in 0..p.len() {
            assert!(decode(&p[..n]).is_err(), "prefix of {n} bytes accepted");
        }
    }

    #[test]
    fn oversized_packet_is_too_long() {
        assert_eq!(
            decode(&[0u8; MAX_PACKET + 1]).unwrap_err(),
            GossipError::TooLong
        );
    }

    #[test]
    fn malformed_corpus_is_rejected_with_typed_errors() {
        let good = packet(&sample());
        let mut bad_magic = good.clone();
        bad_magic[0] = b'X';
        let mut bad_version = good.clone();
        bad_version[4] = 2;
        let mut bad_kind = good.clone();
        bad_kind[5] = 9;
        let mut long_cluster_len = good.clone();
        long_cluster_len[HEADER] = 200;
        let mut bad_cluster_char = good.clone();
        bad_cluster_char[HEADER + 1] = b'/';
        let mut extra = encode_unsigned(&sample()).unwrap();
        extra.push(0);
        extra.extend_from_slice(&[0; TAG_LEN]);
        let mut no_at = sample();
        no_at.node = "keyring1".into();
        let cases: Vec<(Vec<u8>, GossipError)> = vec![
            (vec![0u8; MIN_PACKET], GossipError::BadMagic),
            (bad_magic, GossipError::BadMagic),
            (bad_version, GossipError::UnsupportedVersion),
            (bad_kind, GossipError::UnknownKind),
            (long_cluster_len, GossipError::BadLength),
            (bad_cluster_char, GossipError::BadCluster),
            (extra, GossipError::BadLength),
        ];
        for (bytes, want) in cases {
            assert_eq!(decode(&bytes).unwrap_err(), want);
        }
        assert_eq!(
            encode_unsigned(&no_at).unwrap_err(),
            GossipError::BadNodeName
        );
    }

    #[test]
    fn node_names_outside_the_charset_are_rejected() {
        for bad in ["@host", "name@", "na me@h", "a@b\u{e9}", "a@b/c", "a@@b"] {
            let mut a = sample();
            a.node = bad.into();
            assert_eq!(encode_unsigned(&a).unwrap_err(), GossipError::BadNodeName);
            // Forge the same bytes past the encoder's check.
            let mut p = encode_unsigned(&sample()).unwrap();
            let node_at = p.len() - sample().node.len() - 1;
            p.truncate(node_at);
            p.push(bad.len() as u8);
            p.extend_from_slice(bad.as_bytes());
            p.extend_from_slice(&[0; TAG_LEN]);
            if p.len() >= MIN_PACKET {
                assert_eq!(decode(&p).unwrap_err(), GossipError::BadNodeName, "{bad}");
            }
        }
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for len in 0..600 {
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            let _ = decode(&bytes);
        }
    }
}
