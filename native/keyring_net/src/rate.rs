//! Rate limits: a token bucket (at most `burst` events at once and
//! `per_second` on average) and a bounded table of buckets per key (a source
//! address, a peer). I/O-free: the caller passes the time, so both are tested
//! directly.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

/// Admits events at a bounded rate.
#[derive(Debug, Clone)]
pub(crate) struct TokenBucket {
    tokens: f64,
    burst: f64,
    per_second: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub(crate) fn new(burst: u32, per_second: u32, now: Instant) -> Self {
        Self {
            tokens: f64::from(burst.max(1)),
            burst: f64::from(burst.max(1)),
            per_second: f64::from(per_second.max(1)),
            last: now,
        }
    }

    /// Takes a token if one is left at `now`.
    pub(crate) fn take(&mut self, now: Instant) -> bool {
        self.refill(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// How long until a token is left, at `now` (zero if one is).
    pub(crate) fn wait(&self, now: Instant) -> Duration {
        Duration::from_secs_f64(((1.0 - self.tokens_at(now)) / self.per_second).max(0.0))
    }

    /// Whether the bucket is full at `now` (it then carries no state).
    fn is_full(&self, now: Instant) -> bool {
        self.tokens_at(now) >= self.burst
    }

    fn refill(&mut self, now: Instant) {
        self.tokens = self.tokens_at(now);
        self.last = self.last.max(now);
    }

    /// Tokens in the bucket at `now` (time going backwards adds none).
    fn tokens_at(&self, now: Instant) -> f64 {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        (self.tokens + elapsed * self.per_second).min(self.burst)
    }
}

/// One token bucket per key, at most `capacity` of them. A full bucket
/// carries no state, so when the table is full those are forgotten first;
/// if none is, the fullest one goes (a key forgotten that way starts over
/// with a full bucket: the bound on memory wins over exactness).
#[derive(Debug)]
pub(crate) struct KeyedBuckets<K> {
    buckets: HashMap<K, TokenBucket>,
    burst: u32,
    per_second: u32,
    capacity: usize,
}

impl<K: Hash + Eq + Clone> KeyedBuckets<K> {
    pub(crate) fn new(burst: u32, per_second: u32, capacity: usize) -> Self {
        Self {
            buckets: HashMap::new(),
            burst,
            per_second,
            capacity: capacity.max(1),
        }
    }

    /// Takes a token from `key`'s bucket if one is left at `now`.
    pub(crate) fn take(&mut self, key: &K, now: Instant) -> bool {
        self.bucket(key, now).take(now)
    }

    /// How long until `key` has a token, at `now`.
    pub(crate) fn wait(&mut self, key: &K, now: Instant) -> Duration {
        self.bucket(key, now).wait(now)
    }

    /// Whether `key` has a token left at `now` (without taking it).
    pub(crate) fn allows(&self, key: &K, now: Instant) -> bool {
        self.buckets
            .get(key)
            .is_none_or(|b| b.tokens_at(now) >= 1.0)
    }

    fn bucket(&mut self, key: &K, now: Instant) -> &mut TokenBucket {
        if !self.buckets.contains_key(key) && self.buckets.len() >= self.capacity {
            self.buckets.retain(|_, b| !b.is_full(now));
            if self.buckets.len() >= self.capacity {
                let fullest = self
                    .buckets
                    .iter()
                    .max_by(|a, b| a.1.tokens_at(now).total_cmp(&b.1.tokens_at(now)))
                    .map(|(k, _)| k.clone());
                if let Some(k) = fullest {
                    self.buckets.remove(&k);
                }
            }
        }
        let (burst, per_second) = (self.burst, self.per_second);
        self.buckets
            .entry(key.clone())
            .or_insert_with(|| TokenBucket::new(burst, per_second, now))
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.buckets.len()
    }
}

/// Where a connection comes from, for per-source limits: the IPv4 address,
/// or the /64 prefix of an IPv6 address (one host usually holds a whole /64,
/// so finer keys would cost an attacker nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Source([u8; 8], bool);

impl Source {
    pub(crate) fn of(addr: SocketAddr) -> Self {
        match addr.ip().to_canonical() {
            IpAddr::V4(v4) => {
                let mut b = [0u8; 8];
                b[..4].copy_from_slice(&v4.octets());
                Self(b, false)
            }
            IpAddr::V6(v6) => {
                let mut b = [0u8; 8];
                b.copy_from_slice(&v6.octets()[..8]);
                Self(b, true)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_is_admitted_then_the_rate_holds() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(5, 10, t0);
        assert_eq!((0..8).filter(|_| b.take(t0)).count(), 5);
        assert!(!b.take(t0));
        assert_eq!(b.wait(t0), Duration::from_millis(100));
        // One second later: ten more, not fifteen (the bucket holds five).
        let t1 = t0 + Duration::from_secs(1);
        assert_eq!((0..20).filter(|_| b.take(t1)).count(), 5);
        let t2 = t1 + Duration::from_millis(300);
        assert_eq!((0..20).filter(|_| b.take(t2)).count(), 3);
    }

    #[test]
    fn time_going_backwards_adds_nothing() {
        let t0 = Instant::now() + Duration::from_secs(10);
        let mut b = TokenBucket::new(1, 1, t0);
        assert!(b.take(t0));
        assert!(!b.take(t0 - Duration::from_secs(5)));
        assert!(!b.take(t0));
    }

    #[test]
    fn keys_have_their_own_buckets() {
        let t0 = Instant::now();
        let mut k = KeyedBuckets::new(2, 1, 16);
        assert!(k.take(&1, t0) && k.take(&1, t0));
        assert!(!k.take(&1, t0));
        assert!(!k.allows(&1, t0));
        assert!(k.allows(&2, t0) && k.take(&2, t0));
        assert_eq!(k.wait(&1, t0), Duration::from_secs(1));
    }

    #[test]
    fn the_table_stays_bounded_and_forgets_idle_keys_first() {
        let t0 = Instant::now();
        let mut k = KeyedBuckets::new(2, 1, 4);
        // Key 0 is drained; 1..=3 are used once; more keys push out the
        // fullest, never the drained one.
        assert!(k.take(&0, t0) && k.take(&0, t0));
        for key in 1..=3 {
            assert!(k.take(&key, t0));
        }
        for key in 10..100 {
            assert!(k.take(&key, t0));
            assert!(k.len() <= 4);
        }
        assert!(!k.take(&0, t0), "a drained key is remembered");
        // Once idle (full again), keys are forgotten to make room.
        let later = t0 + Duration::from_secs(10);
        assert!(k.take(&1000, later));
        assert_eq!(k.len(), 1);
    }

    #[test]
    fn sources_are_addresses_or_ipv6_slash_64s() {
        let a = |s: &str| Source::of(s.parse().unwrap());
        assert_eq!(a("10.0.0.1:1"), a("10.0.0.1:2"));
        assert_ne!(a("10.0.0.1:1"), a("10.0.0.2:1"));
        assert_eq!(a("[2001:db8::1]:1"), a("[2001:db8::ffff:1]:9"));
        assert_ne!(a("[2001:db8::1]:1"), a("[2001:db8:0:1::1]:1"));
        assert_eq!(a("[::ffff:10.0.0.1]:1"), a("10.0.0.1:5"));
    }
}
