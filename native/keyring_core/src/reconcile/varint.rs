//! Negentropy varints: base-128 digits, most significant first, the high bit
//! set on every byte but the last, as few digits as possible.

use super::ReconcileError;

/// The digits of `n`: `digits[start..]` is its varint.
pub(crate) fn encode(mut n: u64) -> ([u8; 10], usize) {
    let mut digits = [0u8; 10];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            break;
        }
    }
    let last = digits.len() - 1;
    for d in &mut digits[i..last] {
        *d |= 0x80;
    }
    (digits, i)
}

/// Appends `n` as a varint.
pub(crate) fn put(out: &mut Vec<u8>, n: u64) {
    let (digits, start) = encode(n);
    out.extend_from_slice(&digits[start..]);
}

/// Reads one canonical varint from the front of `bytes`.
pub(crate) fn take(bytes: &mut &[u8]) -> Result<u64, ReconcileError> {
    let mut value: u64 = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if i == 0 && b == 0x80 {
            return Err(ReconcileError::Malformed(
                "varint with a leading zero digit",
            ));
        }
        if value >> 57 != 0 {
            return Err(ReconcileError::Malformed("varint overflows 64 bits"));
        }
        value = (value << 7) | u64::from(b & 0x7f);
        if b & 0x80 == 0 {
            *bytes = &bytes[i + 1..];
            return Ok(value);
        }
    }
    Err(ReconcileError::Malformed("truncated varint"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_with_the_fewest_digits() {
        for n in [0, 1, 127, 128, 300, 16_383, 16_384, u64::MAX >> 1, u64::MAX] {
            let mut out = Vec::new();
            put(&mut out, n);
            let mut slice = out.as_slice();
            assert_eq!(take(&mut slice), Ok(n));
            assert!(slice.is_empty());
        }
        let mut out = Vec::new();
        put(&mut out, 300);
        assert_eq!(out, [0x82, 0x2c]);
    }

    #[test]
    fn non_canonical_truncated_and_overlong_varints_are_refused() {
        for bad in [&[0x80, 0x01][..], &[0x81], &[], &[0xff; 11]] {
            let mut slice = bad;
            assert!(take(&mut slice).is_err(), "{bad:?}");
        }
    }
}
