//! Unsigned LEB128 varints, minimal form only.
//!
//! Seven bits per byte, least significant group first, the high bit set on
//! every byte but the last. A decoder accepts exactly one encoding per value:
//! at most 10 bytes, no bits beyond 64, and no trailing zero group (so `0x80
//! 0x00` for zero is refused). This is what makes node encodings canonical.

use super::CodecError;
use crate::wire::reader::Reader;

/// Longest encoding of a `u64`.
pub(crate) const MAX_LEN: usize = 10;

/// Appends the minimal encoding of `value`.
pub(crate) fn put(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Bytes [`put`] writes for `value`.
pub(crate) fn len(value: u64) -> usize {
    let bits = 64 - (value | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

/// Reads one minimal varint.
pub(crate) fn get(r: &mut Reader<'_>) -> Result<u64, CodecError> {
    let mut value: u64 = 0;
    for i in 0..MAX_LEN {
        let byte = r.u8().map_err(|_| CodecError::Truncated)?;
        let group = u64::from(byte & 0x7f);
        if i == MAX_LEN - 1 && group > 1 {
            return Err(CodecError::VarintOverflow);
        }
        value |= group << (7 * i);
        if byte & 0x80 == 0 {
            if i > 0 && byte == 0 {
                return Err(CodecError::NonMinimalVarint);
            }
            return Ok(value);
        }
    }
    Err(CodecError::VarintOverflow)
}

/// Reads a varint that must not exceed `limit` (a length or a count).
pub(crate) fn get_at_most(
    r: &mut Reader<'_>,
    limit: usize,
    what: &'static str,
) -> Result<usize, CodecError> {
    let value = get(r)?;
    if value > limit as u64 {
        return Err(CodecError::TooLarge { what, limit });
    }
    Ok(value as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(bytes: &[u8]) -> Result<u64, CodecError> {
        let mut r = Reader::new(bytes);
        let v = get(&mut r)?;
        assert_eq!(r.remaining(), 0);
        Ok(v)
    }

    #[test]
    fn values_round_trip_at_every_length_boundary() {
        for shift in 0..64 {
            for v in [(1u64 << shift) - 1, 1u64 << shift, (1u64 << shift) + 1] {
                let mut out = Vec::new();
                put(&mut out, v);
                assert_eq!(out.len(), len(v), "{v}");
                assert_eq!(decode(&out), Ok(v), "{v}");
            }
        }
        let mut out = Vec::new();
        put(&mut out, u64::MAX);
        assert_eq!(out.len(), MAX_LEN);
        assert_eq!(decode(&out), Ok(u64::MAX));
    }

    #[test]
    fn non_minimal_encodings_are_refused() {
        assert_eq!(decode(&[0x80, 0x00]), Err(CodecError::NonMinimalVarint));
        assert_eq!(
            decode(&[0x81, 0x80, 0x00]),
            Err(CodecError::NonMinimalVarint)
        );
        assert_eq!(decode(&[0x00]), Ok(0));
    }

    #[test]
    fn overlong_and_overflowing_encodings_are_refused() {
        let mut eleven = vec![0xff; 10];
        eleven.push(0x01);
        assert_eq!(decode(&eleven), Err(CodecError::VarintOverflow));
        let mut too_big = vec![0xff; 9];
        too_big.push(0x02);
        assert_eq!(decode(&too_big), Err(CodecError::VarintOverflow));
        assert_eq!(decode(&[0x80]), Err(CodecError::Truncated));
    }
}
