//! A side's items, sorted by (timestamp, id), with prefix sums every
//! [`BLOCK`] items so that a range's fingerprint costs O(BLOCK) additions
//! and one SHA-256, not a pass over the range.

use super::fingerprint::Sum;
use super::message::Bound;
use super::{Id, ReconcileError, FINGERPRINT_LEN};

const BLOCK: usize = 64;

/// One record to reconcile: a timestamp (any ordering key; `u64::MAX` is
/// reserved) and a 32-byte id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Item {
    /// Ordering key, usually a time; items with close keys should be related.
    pub timestamp: u64,
    /// The record's id (a hash of the record).
    pub id: Id,
}

/// A sorted, deduplicated set of items with block prefix sums.
#[derive(Debug, Clone, Default)]
pub struct Items {
    items: Vec<Item>,
    // sums[b] = sum of the ids of items[..b * BLOCK]
    sums: Vec<Sum>,
}

impl Items {
    /// Sorts and deduplicates `items`. Refuses the reserved timestamp.
    pub fn new(mut items: Vec<Item>) -> Result<Self, ReconcileError> {
        if items.iter().any(|i| i.timestamp == u64::MAX) {
            return Err(ReconcileError::ReservedTimestamp);
        }
        items.sort_unstable();
        items.dedup();
        let mut sums = Vec::with_capacity(items.len() / BLOCK + 1);
        let mut acc = Sum::default();
        sums.push(acc);
        for block in items.chunks_exact(BLOCK) {
            for item in block {
                acc.add_id(&item.id);
            }
            sums.push(acc);
        }
        Ok(Self { items, sums })
    }

    /// Number of items.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The items, sorted.
    pub fn as_slice(&self) -> &[Item] {
        &self.items
    }

    pub(crate) fn get(&self, i: usize) -> &Item {
        &self.items[i]
    }

    /// The first index in `from..` whose item is not below `bound`. Ranges
    /// arrive in order and are usually short, so this gallops from `from`
    /// (O(log distance), cache-friendly) before a binary search.
    pub(crate) fn lower_bound(&self, from: usize, bound: &Bound) -> usize {
        let rest = &self.items[from..];
        let mut step = 1;
        while step < rest.len() && bound.is_above(&rest[step - 1]) {
            step *= 2;
        }
        let (lo, hi) = (step / 2, step.min(rest.len()));
        from + lo + rest[lo..hi].partition_point(|item| bound.is_above(item))
    }

    fn prefix(&self, i: usize) -> Sum {
        let block = i / BLOCK;
        let mut acc = self.sums[block];
        for item in &self.items[block * BLOCK..i] {
            acc.add_id(&item.id);
        }
        acc
    }

    /// The fingerprint of `items[lo..hi]`.
    pub(crate) fn fingerprint(&self, lo: usize, hi: usize) -> [u8; FINGERPRINT_LEN] {
        let sum = if hi - lo <= BLOCK {
            let mut acc = Sum::default();
            for item in &self.items[lo..hi] {
                acc.add_id(&item.id);
            }
            acc
        } else {
            let mut acc = self.prefix(hi);
            acc.sub(&self.prefix(lo));
            acc
        };
        sum.fingerprint((hi - lo) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(t: u64, b: u8) -> Item {
        let mut id = [0u8; 32];
        id[0] = b;
        id[31] = b.wrapping_mul(7);
        Item { timestamp: t, id }
    }

    #[test]
    fn prefix_sum_fingerprints_equal_direct_sums_for_every_range() {
        let items = Items::new((0..300u64).map(|i| item(i / 3, i as u8)).collect()).unwrap();
        for lo in [0, 1, 63, 64, 65, 130, 299] {
            for hi in [lo, lo + 1, 128, 200, 300] {
                if hi < lo || hi > items.len() {
                    continue;
                }
                let mut direct = Sum::default();
                for i in &items.as_slice()[lo..hi] {
                    direct.add_id(&i.id);
                }
                assert_eq!(
                    items.fingerprint(lo, hi),
                    direct.fingerprint((hi - lo) as u64),
                    "{lo}..{hi}"
                );
            }
        }
    }

    #[test]
    fn lower_bound_finds_the_first_item_not_below_a_bound_from_any_start() {
        let items = Items::new((0..200u64).map(|i| item(i / 2, i as u8)).collect()).unwrap();
        for from in [0, 1, 5, 99, 199, 200] {
            for t in [0, 3, 50, 99, 100, u64::MAX] {
                let bound = Bound {
                    timestamp: t,
                    ..Bound::ZERO
                };
                let expected = (from..items.len())
                    .find(|&i| !bound.is_above(items.get(i)))
                    .unwrap_or(items.len());
                assert_eq!(items.lower_bound(from, &bound), expected, "{from} {t}");
            }
        }
    }

    #[test]
    fn items_are_sorted_deduplicated_and_the_infinity_timestamp_is_reserved() {
        let items = Items::new(vec![item(5, 1), item(1, 2), item(5, 1), item(1, 1)]).unwrap();
        assert_eq!(items.as_slice(), &[item(1, 1), item(1, 2), item(5, 1)]);
        assert_eq!(
            Items::new(vec![item(u64::MAX, 1)]).unwrap_err(),
            ReconcileError::ReservedTimestamp
        );
    }
}
