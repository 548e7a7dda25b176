//! Sets of chunk groups: what a request asks for, what a partial blob holds,
//! what is still missing.
//!
//! A set is a sorted list of disjoint, non-touching half-open ranges of group
//! indices. The wire and disk form is the list of range boundaries as
//! delta-encoded LEB128 varints behind a count; an odd count leaves the last
//! range open ("from here to the end of the blob"), so "everything" is one
//! byte pair and "what I still miss" stays small however fragmented.

use std::ops::Range;

use super::error::RangesError;

/// Most boundaries a decoded set may have (4096 ranges).
pub const MAX_BOUNDARIES: usize = 8192;

/// A set of chunk-group indices. See the module docs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct GroupRanges {
    /// Sorted, disjoint, non-adjacent, non-empty `(start, end)` pairs; an
    /// `end` of `u64::MAX` means "to the end".
    ranges: Vec<(u64, u64)>,
}

impl GroupRanges {
    /// The empty set.
    pub fn empty() -> Self {
        Self::default()
    }

    /// Every group, whatever the blob's size.
    pub fn all() -> Self {
        Self::from_range(0..u64::MAX)
    }

    /// The groups in `range` (empty if the range is).
    pub fn from_range(range: Range<u64>) -> Self {
        let mut out = Self::empty();
        out.insert(range);
        out
    }

    /// Whether no group is in the set.
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// The ranges, in order.
    pub fn iter(&self) -> impl Iterator<Item = Range<u64>> + '_ {
        self.ranges.iter().map(|&(s, e)| s..e)
    }

    /// Whether group `index` is in the set.
    pub fn contains(&self, index: u64) -> bool {
        let i = self.ranges.partition_point(|&(_, e)| e <= index);
        self.ranges.get(i).is_some_and(|&(s, _)| s <= index)
    }

    /// Whether any group in `start..end` is in the set.
    pub fn intersects(&self, start: u64, end: u64) -> bool {
        let i = self.ranges.partition_point(|&(_, e)| e <= start);
        self.ranges.get(i).is_some_and(|&(s, _)| s < end)
    }

    /// Whether every group in `start..end` is in the set.
    pub fn covers(&self, start: u64, end: u64) -> bool {
        if start >= end {
            return true;
        }
        let i = self.ranges.partition_point(|&(_, e)| e <= start);
        self.ranges
            .get(i)
            .is_some_and(|&(s, e)| s <= start && e >= end)
    }

    /// Number of groups in the set below `limit`.
    pub fn count_below(&self, limit: u64) -> u64 {
        self.ranges
            .iter()
            .take_while(|&&(s, _)| s < limit)
            .map(|&(s, e)| e.min(limit) - s)
            .sum()
    }

    /// Adds the groups in `range`.
    pub fn insert(&mut self, range: Range<u64>) {
        if range.start < range.end {
            *self = self.union(&Self {
                ranges: vec![(range.start, range.end)],
            });
        }
    }

    /// The groups in `self` or `other`.
    pub fn union(&self, other: &Self) -> Self {
        self.combine(other, |a, b| a || b)
    }

    /// The groups in both.
    pub fn intersection(&self, other: &Self) -> Self {
        self.combine(other, |a, b| a && b)
    }

    /// The groups in `self` but not in `other`.
    pub fn difference(&self, other: &Self) -> Self {
        self.combine(other, |a, b| a && !b)
    }

    /// The groups of the set that exist in a blob of `groups` groups.
    pub fn clip(&self, groups: u64) -> Self {
        self.intersection(&Self::from_range(0..groups))
    }

    /// A sweep over both sets' boundaries, keeping the groups where `keep`
    /// says so. Linear in the number of ranges.
    fn combine(&self, other: &Self, keep: impl Fn(bool, bool) -> bool) -> Self {
        let (a, b) = (self.boundaries(), other.boundaries());
        let (mut i, mut j) = (0, 0);
        let (mut in_a, mut in_b, mut inside) = (false, false, false);
        let mut out: Vec<u64> = Vec::new();
        while i < a.len() || j < b.len() {
            let next = a
                .get(i)
                .copied()
                .unwrap_or(u64::MAX)
                .min(b.get(j).copied().unwrap_or(u64::MAX));
            while a.get(i) == Some(&next) {
                in_a = !in_a;
                i += 1;
            }
            while b.get(j) == Some(&next) {
                in_b = !in_b;
                j += 1;
            }
            if keep(in_a, in_b) != inside {
                inside = !inside;
                out.push(next);
            }
        }
        if inside {
            out.push(u64::MAX);
        }
        Self {
            ranges: out.chunks(2).map(|p| (p[0], p[1])).collect(),
        }
    }

    /// Boundaries `s0, e0, s1, e1, ...` (an end of `u64::MAX` is left out).
    fn boundaries(&self) -> Vec<u64> {
        let mut out = Vec::with_capacity(self.ranges.len() * 2);
        for &(s, e) in &self.ranges {
            out.push(s);
            if e != u64::MAX {
                out.push(e);
            }
        }
        out
    }

    /// The set's wire form (see the module docs).
    pub fn encode(&self) -> Vec<u8> {
        let bounds = self.boundaries();
        let mut out = Vec::with_capacity(1 + bounds.len() * 2);
        put_varint(&mut out, bounds.len() as u64);
        let mut prev = 0;
        for b in bounds {
            put_varint(&mut out, b - prev);
            prev = b;
        }
        out
    }

    /// Decodes a wire form, consuming all of `bytes`: at most
    /// [`MAX_BOUNDARIES`] boundaries, strictly increasing (the first may be
    /// zero), canonical varints, nothing left over.
    pub fn decode(bytes: &[u8]) -> Result<Self, RangesError> {
        let (set, used) = Self::decode_prefix(bytes)?;
        if used != bytes.len() {
            return Err(RangesError::TrailingBytes);
        }
        Ok(set)
    }

    /// Decodes a wire form at the start of `bytes`; returns the set and the
    /// number of bytes it took.
    pub fn decode_prefix(bytes: &[u8]) -> Result<(Self, usize), RangesError> {
        let mut pos = 0;
        let count = get_varint(bytes, &mut pos)?;
        if count > MAX_BOUNDARIES as u64 {
            return Err(RangesError::TooManyRanges);
        }
        let mut bounds = Vec::with_capacity(count as usize);
        let mut prev = 0u64;
        for i in 0..count {
            let delta = get_varint(bytes, &mut pos)?;
            if i > 0 && delta == 0 {
                return Err(RangesError::NotIncreasing);
            }
            prev = prev.checked_add(delta).ok_or(RangesError::Overflow)?;
            if prev == u64::MAX {
                return Err(RangesError::Overflow);
            }
            bounds.push(prev);
        }
        if bounds.len() % 2 == 1 {
            bounds.push(u64::MAX);
        }
        let ranges = bounds.chunks(2).map(|p| (p[0], p[1])).collect();
        Ok((Self { ranges }, pos))
    }
}

impl From<Range<u64>> for GroupRanges {
    fn from(range: Range<u64>) -> Self {
        Self::from_range(range)
    }
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// A canonical LEB128 u64 (no redundant trailing zero groups, ≤ 10 bytes).
fn get_varint(bytes: &[u8], pos: &mut usize) -> Result<u64, RangesError> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *bytes.get(*pos).ok_or(RangesError::Truncated)?;
        *pos += 1;
        let bits = u64::from(byte & 0x7f);
        if shift == 63 && bits > 1 {
            return Err(RangesError::Overflow);
        }
        value |= bits << shift;
        if byte & 0x80 == 0 {
            if byte == 0 && shift > 0 {
                return Err(RangesError::NonCanonical);
            }
            return Ok(value);
        }
    }
    Err(RangesError::Overflow)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_operations_on_small_examples() {
        let a = GroupRanges::from(0..10);
        let b = GroupRanges::from(5..15);
        assert_eq!(a.union(&b), GroupRanges::from(0..15));
        assert_eq!(a.intersection(&b), GroupRanges::from(5..10));
        assert_eq!(a.difference(&b), GroupRanges::from(0..5));
        let mut c = GroupRanges::from(0..2);
        c.insert(2..4);
        assert_eq!(c, GroupRanges::from(0..4), "touching ranges merge");
        c.insert(10..12);
        assert!(c.contains(3) && !c.contains(4) && c.contains(10) && !c.contains(12));
        assert!(c.intersects(3, 11) && !c.intersects(4, 10));
        assert!(c.covers(0, 4) && !c.covers(0, 5));
        assert_eq!(c.count_below(11), 5);
        assert_eq!(GroupRanges::all().clip(7), GroupRanges::from(0..7));
    }

    #[test]
    fn everything_encodes_in_two_bytes() {
        assert_eq!(GroupRanges::all().encode(), vec![1, 0]);
        assert_eq!(GroupRanges::decode(&[1, 0]).unwrap(), GroupRanges::all());
        assert_eq!(GroupRanges::decode(&[0]).unwrap(), GroupRanges::empty());
    }

    #[test]
    fn malformed_wire_forms_are_refused() {
        assert_eq!(GroupRanges::decode(&[]), Err(RangesError::Truncated));
        assert_eq!(
            GroupRanges::decode(&[2, 5, 0]),
            Err(RangesError::NotIncreasing)
        );
        assert_eq!(
            GroupRanges::decode(&[1, 0, 0]),
            Err(RangesError::TrailingBytes)
        );
        assert_eq!(
            GroupRanges::decode(&[1, 0x80, 0]),
            Err(RangesError::NonCanonical)
        );
        let mut huge = vec![0xff; 9];
        huge.push(0x7f);
        assert_eq!(
            GroupRanges::decode(&[&[1][..], &huge].concat()),
            Err(RangesError::Overflow)
        );
        let mut many = Vec::new();
        put_varint(&mut many, MAX_BOUNDARIES as u64 + 1);
        assert_eq!(GroupRanges::decode(&many), Err(RangesError::TooManyRanges));
    }
}
