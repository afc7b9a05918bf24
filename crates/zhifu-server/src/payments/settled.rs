//! Notifications this instance has already answered `success` for, so that
//! a replay of one is answered after verification alone — no database read,
//! no write, no lock shared with real work.
//!
//! Why this is sound: order states only move forward
//! ([`zhifu_store::is_redelivery`]), so a notification that was applied, or
//! found to change nothing, changes nothing on any later delivery either;
//! and its identity is the exact bytes Alipay signed, which are verified
//! again on every delivery before they are looked up here. Only verified
//! bodies are ever remembered, so strangers cannot fill it, and it is
//! bounded by count (two generations, the older dropped whole). A miss
//! (another instance's notification, a restart, a new `notify_time` on
//! Alipay's retry) takes the normal path: one indexed read.

use std::collections::HashSet;
use std::sync::Mutex;

/// SHA-256 of a notification body.
pub type BodyDigest = [u8; 32];

/// A bounded set of body digests whose notifications were settled.
#[derive(Debug)]
pub struct SettledNotifications {
    /// Entries per generation; 0 remembers nothing.
    per_generation: usize,
    generations: Mutex<(HashSet<BodyDigest>, HashSet<BodyDigest>)>,
}

impl SettledNotifications {
    /// Remembers about `capacity` notifications (between `capacity / 2` and
    /// `capacity`); 0 turns the memory off.
    pub fn new(capacity: usize) -> Self {
        SettledNotifications {
            per_generation: capacity / 2,
            generations: Mutex::new((HashSet::new(), HashSet::new())),
        }
    }

    /// The digest a body is remembered by.
    pub fn digest(body: &[u8]) -> BodyDigest {
        let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, body);
        let mut out = [0u8; 32];
        out.copy_from_slice(d.as_ref());
        out
    }

    /// Whether a notification with this (verified) body was settled here.
    pub fn contains(&self, d: &BodyDigest) -> bool {
        if self.per_generation == 0 {
            return false;
        }
        let g = self
            .generations
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        g.0.contains(d) || g.1.contains(d)
    }

    /// Remembers a settled notification's body.
    pub fn insert(&self, d: BodyDigest) {
        if self.per_generation == 0 {
            return;
        }
        let mut g = self
            .generations
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if g.0.len() >= self.per_generation {
            let young = std::mem::take(&mut g.0);
            g.1 = young;
        }
        g.0.insert(d);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_within_its_bound_and_forgets_the_oldest() {
        let s = SettledNotifications::new(4);
        let d = |i: u8| SettledNotifications::digest(&[i]);
        for i in 0..4 {
            s.insert(d(i));
        }
        assert!((0..4).all(|i| s.contains(&d(i))));
        // Two generations of two: 0 and 1 are dropped when 4 arrives.
        s.insert(d(4));
        assert!(!s.contains(&d(0)));
        assert!(!s.contains(&d(1)));
        assert!((2..5).all(|i| s.contains(&d(i))));
        assert!(!s.contains(&d(9)));
        let off = SettledNotifications::new(0);
        off.insert(d(1));
        assert!(!off.contains(&d(1)));
    }
}
