//! How much a stranger can make us write: a token bucket per refusal
//! reason, per instance. A refused message that is over budget is still
//! refused and counted in the metrics; it is only not recorded. With the
//! pruning of old records (`Store::prune_refused`, run by every reconcile
//! pass) this bounds the storage that unauthenticated callers can fill.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

/// Per-reason token buckets: `per_minute` tokens, refilled continuously.
#[derive(Debug)]
pub struct RecordBudget {
    per_minute: u32,
    buckets: Mutex<HashMap<&'static str, (f64, Instant)>>,
}

impl RecordBudget {
    /// A budget of `per_minute` records per reason (0 records nothing).
    pub fn new(per_minute: u32) -> Self {
        RecordBudget {
            per_minute,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one record's worth for `reason`, if there is one left.
    pub fn take(&self, reason: &'static str) -> bool {
        self.take_at(reason, Instant::now())
    }

    fn take_at(&self, reason: &'static str, now: Instant) -> bool {
        let cap = f64::from(self.per_minute);
        if cap == 0.0 {
            return false;
        }
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (tokens, last) = buckets.entry(reason).or_insert((cap, now));
        let refill = now.saturating_duration_since(*last).as_secs_f64() * cap / 60.0;
        *tokens = (*tokens + refill).min(cap);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_reason_gets_its_budget_then_refills() {
        let b = RecordBudget::new(3);
        let t0 = Instant::now();
        let taken = (0..10).filter(|_| b.take_at("bad_signature", t0)).count();
        assert_eq!(taken, 3);
        // Another reason has its own bucket.
        assert!(b.take_at("malformed", t0));
        // One token back after 20 s (3 per minute).
        assert!(!b.take_at("bad_signature", t0 + Duration::from_secs(10)));
        assert!(b.take_at("bad_signature", t0 + Duration::from_secs(31)));
        assert!(!RecordBudget::new(0).take("x"));
    }
}
