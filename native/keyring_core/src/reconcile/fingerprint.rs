//! Negentropy v1 fingerprints: the sum of the ids modulo 2^256 (ids read as
//! little-endian integers), then the count as a varint, hashed with SHA-256
//! and cut to 16 bytes.

use sha2::{Digest, Sha256};

use super::{varint, Id, FINGERPRINT_LEN};

/// A 256-bit sum of ids, as four little-endian 64-bit limbs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Sum([u64; 4]);

impl Sum {
    pub(crate) fn add_id(&mut self, id: &Id) {
        self.add(&Self::of(id));
    }

    pub(crate) fn of(id: &Id) -> Self {
        let mut limbs = [0u64; 4];
        for (i, limb) in limbs.iter_mut().enumerate() {
            let mut b = [0u8; 8];
            b.copy_from_slice(&id[i * 8..i * 8 + 8]);
            *limb = u64::from_le_bytes(b);
        }
        Self(limbs)
    }

    pub(crate) fn add(&mut self, other: &Self) {
        let mut carry = false;
        for (a, b) in self.0.iter_mut().zip(other.0) {
            let (s, c1) = a.overflowing_add(b);
            let (s, c2) = s.overflowing_add(u64::from(carry));
            *a = s;
            carry = c1 | c2;
        }
    }

    pub(crate) fn sub(&mut self, other: &Self) {
        let mut borrow = false;
        for (a, b) in self.0.iter_mut().zip(other.0) {
            let (d, b1) = a.overflowing_sub(b);
            let (d, b2) = d.overflowing_sub(u64::from(borrow));
            *a = d;
            borrow = b1 | b2;
        }
    }

    /// The fingerprint of a range whose ids sum to `self` and number `count`.
    pub(crate) fn fingerprint(&self, count: u64) -> [u8; FINGERPRINT_LEN] {
        let mut input = [0u8; 32 + 10];
        for (i, limb) in self.0.iter().enumerate() {
            input[i * 8..i * 8 + 8].copy_from_slice(&limb.to_le_bytes());
        }
        let (digits, start) = varint::encode(count);
        let tail = &digits[start..];
        input[32..32 + tail.len()].copy_from_slice(tail);
        let digest = Sha256::digest(&input[..32 + tail.len()]);
        let mut out = [0u8; FINGERPRINT_LEN];
        out.copy_from_slice(&digest[..FINGERPRINT_LEN]);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_carry_across_limbs_and_wrap_at_256_bits() {
        let mut s = Sum::of(&[0xff; 32]);
        let mut one = [0u8; 32];
        one[0] = 1;
        s.add_id(&one);
        assert_eq!(s, Sum::default());
        s.sub(&Sum::of(&one));
        assert_eq!(s, Sum::of(&[0xff; 32]));
    }

    #[test]
    fn the_empty_fingerprint_is_sha256_of_zeros_and_count() {
        // SHA-256 of 32 zero bytes followed by the varint 0.
        let expected = Sha256::digest([0u8; 33]);
        assert_eq!(Sum::default().fingerprint(0)[..], expected[..16]);
    }
}
