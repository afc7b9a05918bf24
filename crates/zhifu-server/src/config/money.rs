//! The money path's rules a merchant may tune: what happens to a payment
//! for a closed order, refund pacing and leases, clock margins, and the
//! bounds on what refused messages may make us record.

use std::time::Duration;

use super::source::{ConfigError, Source, parse_num};

/// What to do with a payment that arrives for an order we had closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LatePaymentPolicy {
    /// Refund it in full, automatically (default).
    #[default]
    Refund,
    /// Keep it: the order is paid, flagged `paid_after_close`.
    Keep,
}

/// The money path's rules that a merchant may tune.
#[derive(Debug, Clone)]
pub struct MoneyPolicy {
    /// `ZHIFU_PAID_AFTER_CLOSE`: `refund` (default) or `keep`.
    pub late_payment: LatePaymentPolicy,
    /// `ZHIFU_REFUND_SPACING_MS` (default 3000): least time between the
    /// starts of two refund calls for one trade (Alipay asks for ≥ 3 s).
    pub refund_spacing: Duration,
    /// `ZHIFU_REFUND_LEASE_SECS` (default 45): how long whoever sends a
    /// refund holds it (no one else sends it meanwhile). Keep it longer
    /// than a refund call plus its refund query (two gateway timeouts).
    pub refund_lease: Duration,
    /// `ZHIFU_CLOSE_MARGIN_SECS` (default 120): how long after an order's
    /// `time_expire` its payment parameters are still treated as live, for
    /// the difference between our clock and Alipay's.
    pub close_margin: Duration,
    /// `ZHIFU_REFUSED_RECORDS_PER_MINUTE` (default 30): how many refused
    /// unauthenticated messages (bad signature, unparseable) one instance
    /// records per minute and reason; the rest are only counted.
    pub refused_records_per_minute: u32,
    /// `ZHIFU_SETTLED_NOTIFICATIONS` (default 8192; 0 turns it off): how
    /// many notifications one instance remembers having answered `success`
    /// for (32-byte digests, about 1 MB at most), so that their replays
    /// are answered after verification without touching the database.
    pub settled_notifications: usize,
}

impl Default for MoneyPolicy {
    fn default() -> Self {
        MoneyPolicy {
            late_payment: LatePaymentPolicy::Refund,
            refund_spacing: Duration::from_millis(3_000),
            refund_lease: REFUND_LEASE,
            close_margin: Duration::from_secs(120),
            refused_records_per_minute: 30,
            settled_notifications: 8192,
        }
    }
}

/// A refund call and its refund query take at most two gateway timeouts
/// (15 s each); the lease outlasts both.
pub const REFUND_LEASE: Duration = Duration::from_secs(45);

impl MoneyPolicy {
    /// Reads `ZHIFU_PAID_AFTER_CLOSE`, `ZHIFU_REFUND_SPACING_MS`,
    /// `ZHIFU_REFUND_LEASE_SECS`, `ZHIFU_CLOSE_MARGIN_SECS`,
    /// `ZHIFU_REFUSED_RECORDS_PER_MINUTE`, `ZHIFU_SETTLED_NOTIFICATIONS`.
    ///
    /// # Errors
    /// A value out of range or not one of the names.
    pub fn from_source(src: &Source) -> Result<Self, ConfigError> {
        let mut p = MoneyPolicy::default();
        if let Some(v) = src.get("ZHIFU_PAID_AFTER_CLOSE") {
            p.late_payment = match v.trim().to_ascii_lowercase().as_str() {
                "refund" => LatePaymentPolicy::Refund,
                "keep" => LatePaymentPolicy::Keep,
                _ => {
                    return Err(ConfigError::new(
                        "ZHIFU_PAID_AFTER_CLOSE",
                        "expected `refund` or `keep`",
                    ));
                }
            };
        }
        if let Some(v) = src.get("ZHIFU_REFUND_SPACING_MS") {
            p.refund_spacing =
                Duration::from_millis(parse_num("ZHIFU_REFUND_SPACING_MS", &v, (0u64, 60_000))?);
        }
        if let Some(v) = src.get("ZHIFU_REFUND_LEASE_SECS") {
            p.refund_lease =
                Duration::from_secs(parse_num("ZHIFU_REFUND_LEASE_SECS", &v, (1u64, 3_600))?);
        }
        if let Some(v) = src.get("ZHIFU_REFUSED_RECORDS_PER_MINUTE") {
            p.refused_records_per_minute =
                parse_num("ZHIFU_REFUSED_RECORDS_PER_MINUTE", &v, (0u32, 100_000))?;
        }
        if let Some(v) = src.get("ZHIFU_SETTLED_NOTIFICATIONS") {
            p.settled_notifications =
                parse_num("ZHIFU_SETTLED_NOTIFICATIONS", &v, (0usize, 1_000_000))?;
        }
        if let Some(v) = src.get("ZHIFU_CLOSE_MARGIN_SECS") {
            p.close_margin =
                Duration::from_secs(parse_num("ZHIFU_CLOSE_MARGIN_SECS", &v, (0u64, 3_600))?);
        }
        Ok(p)
    }
}
