//! BLAKE3 content hashing: the hash of a blob is its content id (cid).

/// Length in bytes of a BLAKE3 digest and so of a cid.
pub const HASH_LEN: usize = 32;

/// A BLAKE3 digest.
pub type Digest = [u8; HASH_LEN];

/// Hashes `data` in one call.
pub fn digest(data: &[u8]) -> Digest {
    *blake3::hash(data).as_bytes()
}

/// An incremental hasher for data that arrives in pieces.
#[derive(Debug, Default, Clone)]
pub struct StreamHasher {
    inner: blake3::Hasher,
    len: u64,
}

impl StreamHasher {
    /// A fresh hasher.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds `data` into the hash.
    pub fn update(&mut self, data: &[u8]) {
        self.inner.update(data);
        self.len += data.len() as u64;
    }

    /// Number of bytes fed so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether no byte has been fed yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The digest of everything fed so far; the hasher can keep going.
    pub fn finalize(&self) -> Digest {
        *self.inner.finalize().as_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(d: &Digest) -> String {
        d.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn empty_input_matches_reference_vector() {
        assert_eq!(
            hex(&digest(b"")),
            "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
        );
    }

    #[test]
    fn streaming_equals_one_shot_for_any_split() {
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        for split in [0, 1, 1023, 1024, 1025, 65_536, 299_999] {
            let mut h = StreamHasher::new();
            h.update(&data[..split]);
            h.update(&data[split..]);
            assert_eq!(h.finalize(), digest(&data), "split at {split}");
            assert_eq!(h.len(), data.len() as u64);
        }
    }
}
