//! A sync request: which roots, which traversal, and what the requester
//! already holds.
//!
//! Encoding: `version: u8 (1), flags: u8, root_count: varint (1..=MAX_ROOTS),
//! roots: [tag: u8, cid] (tag 0 node, 1 blob), [max_depth: varint] if flags & 2, [inline_limit: varint]
//! if flags & 1, have_count: varint (0..=MAX_HAVE), have: [cid], [filter]
//! if flags & 4`. Flags: 1 = visit blobs, 2 = a depth limit follows, 4 = a
//! filter follows; the other bits must be zero. Nothing may trail the last
//! field.

use super::node::{Cid, Link, LinkKind, MAX_NODE_BYTES};
use super::{varint, CidFilter, CodecError, TraversalSpec};
use crate::hash::HASH_LEN;
use crate::wire::reader::Reader;

/// Version byte of requests.
pub const REQUEST_VERSION: u8 = 1;
/// Most roots one request may name.
pub const MAX_ROOTS: usize = 1_024;
/// Most `have` roots one request may name.
pub const MAX_HAVE: usize = 256;

const FLAG_BLOBS: u8 = 1;
const FLAG_DEPTH: u8 = 2;
const FLAG_FILTER: u8 = 4;

/// A DAG sync request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// What to traverse, in order: nodes (DAG roots) or blobs. Roots are
    /// never skipped.
    pub roots: Vec<Link>,
    /// Order, filters, depth.
    pub spec: TraversalSpec,
    /// With blobs: blobs up to this many bytes travel in the stream, larger
    /// ones are announced (deferred) for a blob transfer. At most
    /// [`MAX_NODE_BYTES`].
    pub inline_limit: usize,
    /// Roots of DAGs the requester holds completely: the provider skips
    /// everything it can reach from them in its own store.
    pub have: Vec<Cid>,
    /// Cids whose whole subtree the requester holds (probabilistic).
    pub filter: Option<CidFilter>,
}

impl Request {
    /// A request for `root` with nothing excluded.
    pub fn new(root: Cid, spec: TraversalSpec) -> Self {
        Self {
            roots: vec![Link::node(root)],
            spec,
            inline_limit: MAX_NODE_BYTES,
            have: Vec::new(),
            filter: None,
        }
    }

    fn check(&self) -> Result<(), CodecError> {
        if self.roots.is_empty() {
            return Err(CodecError::Invalid("request without roots"));
        }
        if self.roots.len() > MAX_ROOTS {
            return Err(CodecError::TooLarge {
                what: "roots",
                limit: MAX_ROOTS,
            });
        }
        if self.have.len() > MAX_HAVE {
            return Err(CodecError::TooLarge {
                what: "have",
                limit: MAX_HAVE,
            });
        }
        if self.inline_limit > MAX_NODE_BYTES {
            return Err(CodecError::TooLarge {
                what: "inline limit",
                limit: MAX_NODE_BYTES,
            });
        }
        Ok(())
    }

    /// The encoding.
    pub fn encode(&self) -> Result<Vec<u8>, CodecError> {
        self.check()?;
        let mut flags = 0;
        if self.spec.blobs {
            flags |= FLAG_BLOBS;
        }
        if self.spec.max_depth.is_some() {
            flags |= FLAG_DEPTH;
        }
        if self.filter.is_some() {
            flags |= FLAG_FILTER;
        }
        let mut out = Vec::with_capacity(
            32 + (self.roots.len() + self.have.len()) * HASH_LEN
                + self.filter.as_ref().map_or(0, CidFilter::encoded_len),
        );
        out.push(REQUEST_VERSION);
        out.push(flags);
        varint::put(&mut out, self.roots.len() as u64);
        for root in &self.roots {
            out.push(u8::from(root.kind == LinkKind::Blob));
            out.extend_from_slice(&root.cid);
        }
        if let Some(depth) = self.spec.max_depth {
            varint::put(&mut out, u64::from(depth));
        }
        if self.spec.blobs {
            varint::put(&mut out, self.inline_limit as u64);
        }
        varint::put(&mut out, self.have.len() as u64);
        self.have.iter().for_each(|c| out.extend_from_slice(c));
        if let Some(filter) = &self.filter {
            filter.encode(&mut out);
        }
        Ok(out)
    }

    /// Decodes a request (canonical encodings only).
    pub fn decode(bytes: &[u8]) -> Result<Self, CodecError> {
        let mut r = Reader::new(bytes);
        let version = r.u8().map_err(|_| CodecError::Truncated)?;
        if version != REQUEST_VERSION {
            return Err(CodecError::UnsupportedVersion(version));
        }
        let flags = r.u8().map_err(|_| CodecError::Truncated)?;
        if flags & !(FLAG_BLOBS | FLAG_DEPTH | FLAG_FILTER) != 0 {
            return Err(CodecError::Invalid("request flags"));
        }
        let count = varint::get_at_most(&mut r, MAX_ROOTS, "roots")?;
        let mut roots = Vec::with_capacity(count);
        for _ in 0..count {
            let kind = match r.u8().map_err(|_| CodecError::Truncated)? {
                0 => LinkKind::Node,
                1 => LinkKind::Blob,
                other => return Err(CodecError::UnknownLinkTag(other)),
            };
            let cid = r.array::<HASH_LEN>().map_err(|_| CodecError::Truncated)?;
            roots.push(Link { kind, cid });
        }
        let max_depth = if flags & FLAG_DEPTH != 0 {
            Some(varint::get_at_most(&mut r, u32::MAX as usize, "max depth")? as u32)
        } else {
            None
        };
        let blobs = flags & FLAG_BLOBS != 0;
        let inline_limit = if blobs {
            varint::get_at_most(&mut r, MAX_NODE_BYTES, "inline limit")?
        } else {
            MAX_NODE_BYTES
        };
        let have = cids(&mut r, MAX_HAVE, "have")?;
        let filter = if flags & FLAG_FILTER != 0 {
            Some(CidFilter::decode(&mut r)?)
        } else {
            None
        };
        if r.remaining() != 0 {
            return Err(CodecError::TrailingBytes);
        }
        let request = Self {
            roots,
            spec: TraversalSpec { blobs, max_depth },
            inline_limit,
            have,
            filter,
        };
        request.check()?;
        Ok(request)
    }

    /// Whether the requester may have excluded `cid` through its filter.
    pub fn filter_contains(&self, cid: &Cid) -> bool {
        self.filter.as_ref().is_some_and(|f| f.contains(cid))
    }
}

fn cids(r: &mut Reader<'_>, limit: usize, what: &'static str) -> Result<Vec<Cid>, CodecError> {
    let count = varint::get_at_most(r, limit, what)?;
    let bytes = r
        .take(count * HASH_LEN)
        .map_err(|_| CodecError::Truncated)?;
    Ok(bytes
        .chunks_exact(HASH_LEN)
        .map(|c| {
            let mut cid = [0u8; HASH_LEN];
            cid.copy_from_slice(c);
            cid
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_request_round_trips() {
        let mut filter = CidFilter::new([4; 32], 10, 10);
        filter.insert(&[9; 32]);
        let request = Request {
            roots: vec![Link::node([1; 32]), Link::blob([2; 32])],
            spec: TraversalSpec {
                blobs: true,
                max_depth: Some(7),
            },
            inline_limit: 4096,
            have: vec![[3; 32]],
            filter: Some(filter),
        };
        let bytes = request.encode().unwrap();
        assert_eq!(Request::decode(&bytes).unwrap(), request);
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert_eq!(Request::decode(&trailing), Err(CodecError::TrailingBytes));
        for n in 0..bytes.len() {
            assert!(Request::decode(&bytes[..n]).is_err(), "{n}");
        }
    }

    #[test]
    fn a_minimal_request_is_37_bytes() {
        let bytes = Request::new([1; 32], TraversalSpec::default())
            .encode()
            .unwrap();
        assert_eq!(bytes.len(), 1 + 1 + 1 + 33 + 1);
    }

    #[test]
    fn unknown_flags_no_roots_and_oversize_lists_are_refused() {
        let mut bytes = Request::new([1; 32], TraversalSpec::default())
            .encode()
            .unwrap();
        bytes[1] = 8;
        assert_eq!(
            Request::decode(&bytes),
            Err(CodecError::Invalid("request flags"))
        );
        assert_eq!(
            Request::decode(&[1, 0, 0, 0]),
            Err(CodecError::Invalid("request without roots"))
        );
        let mut many = vec![1, 0];
        varint::put(&mut many, (MAX_ROOTS + 1) as u64);
        assert!(matches!(
            Request::decode(&many),
            Err(CodecError::TooLarge { what: "roots", .. })
        ));
    }
}
