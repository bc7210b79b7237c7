//! Token buckets by key: how fast one instance or one sender may go.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Token buckets by key: each holds up to `burst` tokens and refills at `rate` per
/// second. A full bucket is the same as no bucket, which is how the map is pruned.
pub(crate) struct Buckets {
    rate: f64,
    burst: f64,
    map: Mutex<HashMap<String, Bucket>>,
}

#[derive(Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Past this many keys, full buckets are dropped before a new one is added.
const PRUNE_AT: usize = 16 * 1024;

impl Buckets {
    pub(crate) fn new(rate: f64, burst: f64) -> Self {
        Buckets {
            rate,
            burst: burst.max(1.0),
            map: Mutex::new(HashMap::new()),
        }
    }

    /// Takes a token for `key`, or says how long until one is there.
    pub(crate) fn take(&self, key: &str, now: Instant) -> Result<(), Duration> {
        let Ok(mut map) = self.map.lock() else {
            // A panic elsewhere poisoned the map; limiting is not worth failing requests for.
            return Ok(());
        };
        if !map.contains_key(key) && map.len() >= PRUNE_AT {
            let (rate, burst) = (self.rate, self.burst);
            map.retain(|_, b| refilled(*b, now, rate, burst) < burst);
        }
        let bucket = map.entry(key.to_string()).or_insert(Bucket {
            tokens: self.burst,
            at: now,
        });
        let tokens = refilled(*bucket, now, self.rate, self.burst);
        if tokens >= 1.0 {
            *bucket = Bucket {
                tokens: tokens - 1.0,
                at: now,
            };
            Ok(())
        } else {
            *bucket = Bucket { tokens, at: now };
            Err(Duration::from_secs_f64((1.0 - tokens) / self.rate))
        }
    }

    pub(super) fn give_back(&self, key: &str) {
        if let Ok(mut map) = self.map.lock()
            && let Some(b) = map.get_mut(key)
        {
            b.tokens = (b.tokens + 1.0).min(self.burst);
        }
    }
}

fn refilled(b: Bucket, now: Instant, rate: f64, burst: f64) -> f64 {
    let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
    (b.tokens + elapsed * rate).min(burst)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sender_over_its_rate_waits_and_others_do_not() {
        let buckets = Buckets::new(1.0, 2.0);
        let t0 = Instant::now();
        assert!(buckets.take("tel:+6281", t0).is_ok());
        assert!(buckets.take("tel:+6281", t0).is_ok());
        let wait = buckets.take("tel:+6281", t0).expect_err("over the burst");
        assert!(wait <= Duration::from_secs(1) && wait > Duration::ZERO);
        assert!(buckets.take("tel:+6282", t0).is_ok());
        assert!(
            buckets
                .take("tel:+6281", t0 + Duration::from_secs(1))
                .is_ok()
        );
        buckets.give_back("tel:+6281");
        assert!(
            buckets
                .take("tel:+6281", t0 + Duration::from_secs(1))
                .is_ok()
        );
    }
}
