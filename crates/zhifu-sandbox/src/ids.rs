//! Identifiers that look like Alipay's, and the seeded RNG behind fault rates.

use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use time::OffsetDateTime;

use crate::model::beijing_date_digits;

/// `n` random decimal digits from the system RNG.
pub(crate) fn digits(n: usize) -> String {
    let rng = SystemRandom::new();
    let mut out = String::with_capacity(n);
    let mut buf = [0u8; 32];
    while out.len() < n {
        // A failing system RNG leaves zeros: identifiers stay well-formed and
        // uniqueness is still enforced by the state maps.
        let _ = rng.fill(&mut buf);
        for b in buf {
            // Rejection sampling keeps the digits uniform.
            if b < 250 && out.len() < n {
                out.push(char::from(b'0' + b % 10));
            }
        }
    }
    out
}

/// A random lowercase hex token of `bytes` bytes (URL paths, bill links).
pub(crate) fn token(bytes: usize) -> String {
    let rng = SystemRandom::new();
    let mut buf = vec![0u8; bytes];
    let _ = rng.fill(&mut buf);
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

/// A 28-digit trade number: Beijing date, `22001`, 15 digits — the shape of
/// `2019081522001468450512505578` (docs/protocol.md §5.1).
pub(crate) fn trade_no(now: OffsetDateTime) -> String {
    format!("{}22001{}", beijing_date_digits(now), digits(15))
}

/// A 34-character `notify_id` shaped like `2019081500222155624068450559358070`.
pub(crate) fn notify_id(now: OffsetDateTime) -> String {
    format!("{}00222{}", beijing_date_digits(now), digits(21))
}

/// A 20-digit agreement number: Beijing date, `0`, 11 digits (the shape
/// of public `agreement_no` samples such as `20185909000458725113`).
pub(crate) fn agreement_no(now: OffsetDateTime) -> String {
    format!("{}0{}", beijing_date_digits(now), digits(11))
}

/// An open id (`open_id`): `0` and 45 hex characters, derived from the
/// user id and the app so that one buyer has one stable open id per app,
/// as Alipay's are.
pub(crate) fn open_id(user_id: &str, app_id: &str) -> String {
    let d = aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        format!("{app_id}:{user_id}").as_bytes(),
    );
    let hex: String = d.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("0{}", &hex[..45])
}

/// An Alipay user id: `2088` + 12 digits.
pub(crate) fn user_id() -> String {
    format!("2088{}", digits(12))
}

/// A 16-digit sandbox app id shaped like `9021000122682882`.
pub(crate) fn app_id() -> String {
    format!("90210001{}", digits(8))
}

/// A seeded SplitMix64: fault decisions are reproducible with a fixed seed.
#[derive(Debug, Clone)]
pub(crate) struct SplitMix(u64);

impl SplitMix {
    pub(crate) fn new(seed: u64) -> Self {
        SplitMix(seed)
    }

    pub(crate) fn from_entropy() -> Self {
        let mut b = [0u8; 8];
        let _ = SystemRandom::new().fill(&mut b);
        SplitMix(u64::from_le_bytes(b))
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// True with probability `rate` (0 never, 1 always).
    pub(crate) fn chance(&mut self, rate: f64) -> bool {
        if rate <= 0.0 {
            return false;
        }
        if rate >= 1.0 {
            return true;
        }
        // 53 random bits give a uniform float in [0, 1).
        let x = (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        x < rate
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn identifiers_have_alipay_shapes() {
        let now = datetime!(2024-01-01 17:00:00 UTC); // 2024-01-02 01:00 in Beijing
        let t = trade_no(now);
        assert_eq!(t.len(), 28);
        assert!(t.starts_with("2024010222001"));
        assert!(t.bytes().all(|b| b.is_ascii_digit()));
        let n = notify_id(now);
        assert_eq!(n.len(), 34);
        assert!(n.starts_with("2024010200222"));
        let u = user_id();
        assert_eq!(u.len(), 16);
        assert!(u.starts_with("2088"));
        assert_ne!(trade_no(now), trade_no(now));
        assert_eq!(token(16).len(), 32);
    }

    #[test]
    fn seeded_chance_is_reproducible_and_roughly_fair() {
        let mut a = SplitMix::new(7);
        let mut b = SplitMix::new(7);
        let xs: Vec<bool> = (0..100).map(|_| a.chance(0.5)).collect();
        let ys: Vec<bool> = (0..100).map(|_| b.chance(0.5)).collect();
        assert_eq!(xs, ys);
        let mut r = SplitMix::new(1);
        let hits = (0..10_000).filter(|_| r.chance(0.25)).count();
        assert!((2_200..2_800).contains(&hits), "{hits}");
        assert!(!(0..1000).any(|_| r.chance(0.0)));
        assert!((0..1000).all(|_| r.chance(1.0)));
    }
}
