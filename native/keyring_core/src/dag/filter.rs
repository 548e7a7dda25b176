//! A compact, keyed set of cids (a Bloom filter): how a requester tells a
//! provider "I already hold these subtrees" in about 1.25 bytes per cid
//! instead of 32.
//!
//! Bit positions come from BLAKE3 keyed with a random per-filter key, so an
//! author cannot grind content whose cid looks "already held" to a filter it
//! has not seen. A false positive makes the provider skip a subtree the
//! requester lacks; the requester notices (it knows exactly what it holds) and
//! fetches that subtree in a second round trip without a filter.
//!
//! Encoding: `key: [u8; 32], hashes: u8 (1..=16), len: varint
//! (1..=MAX_FILTER_BYTES), bits: [u8; len]` (bit `i` is bit `i % 8` of byte
//! `i / 8`).

use super::{varint, Cid, CodecError};
use crate::wire::reader::Reader;

/// Largest filter, in bytes (about 3.3 million cids at 10 bits each).
pub const MAX_FILTER_BYTES: usize = 4 << 20;
/// Most hash functions a filter may use.
pub const MAX_HASHES: u8 = 16;

/// A Bloom filter of cids.
#[derive(Clone, PartialEq, Eq)]
pub struct CidFilter {
    key: [u8; 32],
    hashes: u8,
    bits: Vec<u8>,
}

impl std::fmt::Debug for CidFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CidFilter")
            .field("hashes", &self.hashes)
            .field("bytes", &self.bits.len())
            .finish()
    }
}

impl CidFilter {
    /// An empty filter for about `items` cids at `bits_per_item` bits each
    /// (10 bits: about 1 % false positives; 14: about 0.1 %), keyed by `key`
    /// (pass random bytes). Capped at [`MAX_FILTER_BYTES`].
    pub fn new(key: [u8; 32], items: usize, bits_per_item: u32) -> Self {
        let bits_per_item = bits_per_item.clamp(1, 64);
        let bytes = (items.max(1) as u64 * u64::from(bits_per_item)).div_ceil(8);
        let bytes = (bytes as usize).clamp(1, MAX_FILTER_BYTES);
        // k = m/n ln 2, the count that minimises false positives.
        let hashes = ((f64::from(bits_per_item) * std::f64::consts::LN_2).round() as u8)
            .clamp(1, MAX_HASHES);
        Self {
            key,
            hashes,
            bits: vec![0; bytes],
        }
    }

    /// The filter's bit positions for `cid` (Kirsch–Mitzenmacher double
    /// hashing over one keyed BLAKE3 hash).
    fn positions(
        key: &[u8; 32],
        hashes: u8,
        bytes: usize,
        cid: &Cid,
    ) -> impl Iterator<Item = usize> {
        let h = blake3::keyed_hash(key, cid);
        let h = h.as_bytes();
        let mut a = [0u8; 8];
        let mut b = [0u8; 8];
        a.copy_from_slice(&h[..8]);
        b.copy_from_slice(&h[8..16]);
        let (h1, h2) = (u64::from_le_bytes(a), u64::from_le_bytes(b) | 1);
        let m = bytes as u64 * 8;
        (0..u64::from(hashes)).map(move |i| (h1.wrapping_add(i.wrapping_mul(h2)) % m) as usize)
    }

    /// Adds `cid`.
    pub fn insert(&mut self, cid: &Cid) {
        for p in Self::positions(&self.key, self.hashes, self.bits.len(), cid) {
            self.bits[p / 8] |= 1 << (p % 8);
        }
    }

    /// Whether `cid` may have been added (never false for one that was).
    pub fn contains(&self, cid: &Cid) -> bool {
        Self::positions(&self.key, self.hashes, self.bits.len(), cid)
            .all(|p| self.bits[p / 8] & (1 << (p % 8)) != 0)
    }

    /// Encoded size in bytes.
    pub fn encoded_len(&self) -> usize {
        32 + 1 + varint::len(self.bits.len() as u64) + self.bits.len()
    }

    /// Appends the encoding.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.key);
        out.push(self.hashes);
        varint::put(out, self.bits.len() as u64);
        out.extend_from_slice(&self.bits);
    }

    /// Reads a filter (the caller checks that nothing trails it).
    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, CodecError> {
        let key = r.array::<32>().map_err(|_| CodecError::Truncated)?;
        let hashes = r.u8().map_err(|_| CodecError::Truncated)?;
        if hashes == 0 || hashes > MAX_HASHES {
            return Err(CodecError::Invalid("filter hash count"));
        }
        let len = varint::get_at_most(r, MAX_FILTER_BYTES, "filter")?;
        if len == 0 {
            return Err(CodecError::Invalid("empty filter"));
        }
        let bits = r.take(len).map_err(|_| CodecError::Truncated)?.to_vec();
        Ok(Self { key, hashes, bits })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::digest;

    fn cid(i: u32) -> Cid {
        digest(&i.to_le_bytes())
    }

    #[test]
    fn no_false_negatives_and_about_the_expected_false_positives() {
        let mut f = CidFilter::new([3; 32], 10_000, 10);
        for i in 0..10_000 {
            f.insert(&cid(i));
        }
        assert!((0..10_000).all(|i| f.contains(&cid(i))));
        let fp = (10_000..110_000).filter(|&i| f.contains(&cid(i))).count();
        // 10 bits per item, 7 hashes: about 0.8 %.
        assert!(fp > 300 && fp < 1_500, "{fp} false positives in 100,000");
        assert_eq!(f.encoded_len(), 32 + 1 + 2 + 12_500);
    }

    #[test]
    fn another_key_gives_other_false_positives() {
        let mut a = CidFilter::new([1; 32], 1_000, 8);
        let mut b = CidFilter::new([2; 32], 1_000, 8);
        for i in 0..1_000 {
            a.insert(&cid(i));
            b.insert(&cid(i));
        }
        let fa: Vec<u32> = (1_000..50_000).filter(|&i| a.contains(&cid(i))).collect();
        let both = fa.iter().filter(|&&i| b.contains(&cid(i))).count();
        assert!(!fa.is_empty());
        assert!(both * 10 < fa.len(), "{both} of {}", fa.len());
    }

    #[test]
    fn the_encoding_round_trips_and_bad_headers_are_refused() {
        let mut f = CidFilter::new([5; 32], 100, 10);
        f.insert(&cid(1));
        let mut out = Vec::new();
        f.encode(&mut out);
        assert_eq!(out.len(), f.encoded_len());
        let back = CidFilter::decode(&mut Reader::new(&out)).unwrap();
        assert_eq!(back, f);
        let mut zero_hashes = out.clone();
        zero_hashes[32] = 0;
        assert!(CidFilter::decode(&mut Reader::new(&zero_hashes)).is_err());
        let mut huge = out[..33].to_vec();
        varint::put(&mut huge, (MAX_FILTER_BYTES + 1) as u64);
        assert!(matches!(
            CidFilter::decode(&mut Reader::new(&huge)),
            Err(CodecError::TooLarge { .. })
        ));
    }
}
