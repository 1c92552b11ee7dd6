//! Token buckets (governor's GCRA) owned by the shard that owns their key, so that a limit
//! holds cluster-wide instead of once per node. Not durable: a restart refills them.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota};

use crate::model::Limit;

/// One bucket to draw from: `name` is the metric label, `key` the bucket's identity.
#[derive(Clone, Debug)]
pub struct LimitCheck {
    pub name: &'static str,
    pub key: Vec<u8>,
    pub limit: Limit,
}

/// A refused check: which limit, and how long until a request would pass.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refused {
    pub name: &'static str,
    pub retry_after: Duration,
}

struct Bucket {
    limiter: DefaultDirectRateLimiter,
    /// The routing key that placed this bucket here: when ownership moves, the bucket goes.
    route: Box<[u8]>,
    limit: Limit,
    last_used: Instant,
    idle_after: Duration,
}

#[derive(Default)]
pub struct Buckets {
    map: HashMap<Vec<u8>, Bucket>,
    clock: DefaultClock,
}

fn quota(limit: Limit) -> Option<Quota> {
    let burst = NonZeroU32::new(limit.burst)?;
    let per_minute = NonZeroU32::new(limit.per_minute)?;
    Some(Quota::per_minute(per_minute).allow_burst(burst))
}

impl Buckets {
    /// Draws one cell from every bucket in `checks`; the first empty one refuses. A limit with
    /// a zero burst or rate is disabled.
    pub fn check_all(&mut self, route: &[u8], checks: &[LimitCheck]) -> Result<(), Refused> {
        let now = Instant::now();
        for check in checks {
            let Some(q) = quota(check.limit) else {
                continue;
            };
            let bucket = self
                .map
                .entry(check.key.clone())
                .or_insert_with(|| new_bucket(q, check.limit, route, now));
            if bucket.limit != check.limit {
                // The project's settings changed: start over with the new quota.
                *bucket = new_bucket(q, check.limit, route, now);
            }
            bucket.last_used = now;
            if let Err(not_until) = bucket.limiter.check() {
                return Err(Refused {
                    name: check.name,
                    retry_after: not_until.wait_time_from(self.clock.now()),
                });
            }
        }
        Ok(())
    }

    /// Forgets buckets that have refilled completely: they hold no information any more.
    pub fn purge_idle(&mut self) {
        let now = Instant::now();
        self.map
            .retain(|_, b| now.duration_since(b.last_used) < b.idle_after);
    }

    /// Keeps only the buckets whose routing key this node still owns (a moved bucket starts
    /// full on its new owner).
    pub fn retain_routes(&mut self, owned: &dyn Fn(&[u8]) -> bool) {
        self.map.retain(|_, b| owned(&b.route));
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

fn new_bucket(q: Quota, limit: Limit, route: &[u8], now: Instant) -> Bucket {
    Bucket {
        limiter: DefaultDirectRateLimiter::direct(q),
        route: route.into(),
        limit,
        last_used: now,
        idle_after: q.burst_size_replenished_in(),
    }
}

/// Whole seconds for `Retry-After`, never 0 (a 0 invites an immediate retry storm).
pub fn retry_after_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0).max(u64::from(d.as_secs() == 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(key: &str, burst: u32) -> LimitCheck {
        LimitCheck {
            name: "test",
            key: key.as_bytes().to_vec(),
            limit: Limit::new(burst, 1),
        }
    }

    #[test]
    fn burst_then_refuse_with_retry_after() {
        let mut b = Buckets::default();
        for _ in 0..3 {
            assert!(b.check_all(b"r", &[check("a", 3)]).is_ok());
        }
        let refused = b
            .check_all(b"r", &[check("a", 3)])
            .expect_err("burst used up");
        assert!(refused.retry_after > Duration::from_secs(1));
        assert!(
            b.check_all(b"r", &[check("b", 3)]).is_ok(),
            "other keys are unaffected"
        );
    }

    #[test]
    fn zero_disables_and_retry_after_is_never_zero() {
        let mut b = Buckets::default();
        for _ in 0..100 {
            assert!(b.check_all(b"r", &[check("z", 0)]).is_ok());
        }
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1500)), 2);
        assert_eq!(retry_after_secs(Duration::from_secs(3)), 3);
    }
}
