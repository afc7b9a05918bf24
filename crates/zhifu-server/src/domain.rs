//! The server's own vocabulary, shared by every layer and depending on none:
//! money (fen ↔ [`Amount`] ↔ `"88.88"`, in one place), time (epoch
//! milliseconds ↔ [`OffsetDateTime`]), the payment [`Channel`], the order
//! rules that configuration and the API both apply, and request
//! fingerprints for idempotency keys.
//!
//! Amounts are integer fen everywhere inside Zhifu. The conversions below
//! are the only places where fen meet Alipay's [`Amount`] or its decimal
//! string; a stored value that is not a valid amount is reported as
//! corrupt, never rounded.

use alipay::Amount;
use time::{Date, Month, OffsetDateTime, Time, UtcOffset};
use zhifu_store::{StoreError, Subscription};

/// Longest payment deadline: Alipay's `timeout_express` maximum, 15 days.
pub const MAX_EXPIRY_MINUTES: i64 = 15 * 24 * 60;

/// An [`Amount`] as stored: integer fen. Amounts are at most
/// 100000000.00 yuan, far inside `i64`.
pub fn fen(a: Amount) -> i64 {
    i64::try_from(a.fen()).unwrap_or(i64::MAX)
}

/// Stored fen back to an [`Amount`].
///
/// # Errors
/// [`StoreError::Corrupt`] naming `column` when the stored value is not a
/// valid amount (negative, zero or above Alipay's maximum).
pub fn amount(fen: i64, column: &'static str) -> Result<Amount, StoreError> {
    u64::try_from(fen)
        .ok()
        .and_then(|f| Amount::from_fen(f).ok())
        .ok_or(StoreError::Corrupt { column })
}

/// Fen as Alipay's `"88.88"`. Zero (an order not refunded yet) is `"0.00"`,
/// which [`Amount`] does not represent.
pub fn yuan(fen: i64) -> String {
    u64::try_from(fen)
        .ok()
        .and_then(|f| Amount::from_fen(f).ok())
        .map(|a| a.to_string())
        .unwrap_or_else(|| {
            let sign = if fen < 0 { "-" } else { "" };
            let abs = fen.unsigned_abs();
            format!("{sign}{}.{:02}", abs / 100, abs % 100)
        })
}

/// A moment as epoch milliseconds.
pub fn epoch_ms(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

/// A duration in milliseconds, as leases and deadlines add it to epoch
/// milliseconds (saturating: no setting is that long).
pub fn duration_ms(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Epoch milliseconds as a moment; `None` outside the representable range.
pub fn from_epoch_ms(ms: i64) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()
}

/// Epoch milliseconds as RFC 3339 UTC, as the API shows times.
pub fn rfc3339(ms: i64) -> Option<String> {
    from_epoch_ms(ms)?
        .format(&time::format_description::well_known::Rfc3339)
        .ok()
}

/// How the buyer pays: which Alipay product the payment parameters are for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Channel {
    /// Desktop web: `alipay.trade.page.pay`, a signed URL or form.
    Page,
    /// Mobile web: `alipay.trade.wap.pay`, a signed URL or form.
    Wap,
    /// Scan to pay: `alipay.trade.precreate`, a QR code.
    Qr,
    /// Native app: `alipay.trade.app.pay`, an order string for the app SDK.
    App,
    /// Inside Alipay (mini program, JS bridge): `alipay.trade.create`, a `trade_no`.
    Jsapi,
}

impl Channel {
    /// Every channel, in the order the API documents them.
    pub const ALL: [Channel; 5] = [
        Channel::Page,
        Channel::Wap,
        Channel::Qr,
        Channel::App,
        Channel::Jsapi,
    ];

    /// The name used in the API and stored on the order.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Page => "page",
            Channel::Wap => "wap",
            Channel::Qr => "qr",
            Channel::App => "app",
            Channel::Jsapi => "jsapi",
        }
    }

    /// Parses the API name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// Whether the buyer comes back through a `return_url` (browser channels).
    pub fn has_return_url(self) -> bool {
        matches!(self, Channel::Page | Channel::Wap)
    }

    /// Whether the trade only exists at Alipay once the buyer opens the
    /// cashier or scans (all but jsapi, whose `alipay.trade.create` makes it).
    pub fn trade_created_by_buyer(self) -> bool {
        !matches!(self, Channel::Jsapi)
    }
}

impl std::fmt::Display for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Hex SHA-256 of `parts` joined with NUL bytes: the fingerprint of a
/// request, compared when an `Idempotency-Key` is reused.
pub fn request_hash(parts: &[&str]) -> String {
    let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    for p in parts {
        ctx.update(p.as_bytes());
        ctx.update(&[0]);
    }
    hex(ctx.finish().as_ref())
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

#[cfg(test)]
mod tests {
    use time::macros::date;

    use super::*;

    #[test]
    fn period_dates_step_by_days_and_by_calendar_months() {
        let first = date!(2026 - 11 - 28);
        assert_eq!(
            period_date(first, PeriodUnit::Month, 1, 1),
            Some(date!(2026 - 11 - 28))
        );
        assert_eq!(
            period_date(first, PeriodUnit::Month, 1, 2),
            Some(date!(2026 - 12 - 28))
        );
        assert_eq!(
            period_date(first, PeriodUnit::Month, 1, 4),
            Some(date!(2027 - 02 - 28))
        );
        assert_eq!(
            period_date(first, PeriodUnit::Month, 3, 5),
            Some(date!(2027 - 11 - 28))
        );
        assert_eq!(
            period_date(first, PeriodUnit::Day, 7, 3),
            Some(date!(2026 - 12 - 12))
        );
        assert_eq!(period_date(first, PeriodUnit::Day, i64::MAX, 3), None);
    }

    #[test]
    fn a_charge_is_due_at_the_start_of_its_beijing_day() {
        // 2026-12-07 00:00 +08:00 is 2026-12-06 16:00 UTC.
        assert_eq!(
            due_at(date!(2026 - 12 - 07)),
            1_796_601_600_000 - 8 * 3_600_000
        );
        assert_eq!(
            beijing_date(1_796_601_600_000 - 8 * 3_600_000),
            Some(date!(2026 - 12 - 07))
        );
        assert_eq!(
            beijing_date(1_796_601_600_000 - 8 * 3_600_000 - 1),
            Some(date!(2026 - 12 - 06))
        );
    }

    #[test]
    fn money_round_trips_through_fen() {
        for s in ["0.01", "88.88", "100000000.00"] {
            let a = Amount::payable(s).expect("valid amount");
            assert_eq!(yuan(fen(a)), s);
            assert_eq!(amount(fen(a), "c").expect("stored amount"), a);
        }
        assert_eq!(yuan(0), "0.00");
        assert_eq!(yuan(5), "0.05");
        assert_eq!(yuan(-105), "-1.05");
        assert!(matches!(
            amount(-1, "total_fen"),
            Err(StoreError::Corrupt {
                column: "total_fen"
            })
        ));
        assert!(amount(10_000_000_001, "c").is_err());
    }

    #[test]
    fn channels_parse_their_own_names_only() {
        for c in Channel::ALL {
            assert_eq!(Channel::parse(c.as_str()), Some(c));
        }
        assert_eq!(Channel::parse("PAGE"), None);
        assert_eq!(Channel::parse("wechat"), None);
        assert!(Channel::Page.has_return_url() && !Channel::Qr.has_return_url());
    }

    #[test]
    fn times_round_trip() {
        assert_eq!(rfc3339(0).as_deref(), Some("1970-01-01T00:00:00Z"));
        let t = from_epoch_ms(1_700_000_000_123).expect("in range");
        assert_eq!(epoch_ms(t), 1_700_000_000_123);
    }

    #[test]
    fn hashes_are_stable_and_separated() {
        assert_eq!(request_hash(&["a", "b"]), request_hash(&["a", "b"]));
        assert_ne!(request_hash(&["ab", ""]), request_hash(&["a", "b"]));
        assert_ne!(request_hash(&["ab", "c"]), request_hash(&["a", "bc"]));
        assert_eq!(request_hash(&["x"]).len(), 64);
        assert_eq!(hex(&[0, 255, 16]), "00ff10");
    }
}

// Subscription periods: calendar dates in Beijing, where Alipay dates
// agreements and charges.

/// The unit of a subscription's period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeriodUnit {
    /// Days.
    Day,
    /// Months (the first charge's day of month, at most 28).
    Month,
}

impl PeriodUnit {
    /// Wire and stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            PeriodUnit::Day => "day",
            PeriodUnit::Month => "month",
        }
    }

    /// Parses the wire name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "day" => Some(PeriodUnit::Day),
            "month" => Some(PeriodUnit::Month),
            _ => None,
        }
    }
}

/// Beijing time, +08:00.
pub fn beijing() -> UtcOffset {
    // +08:00 is always a valid offset.
    UtcOffset::from_hms(8, 0, 0).unwrap_or(UtcOffset::UTC)
}

/// Today in Beijing at `now_ms`.
pub fn beijing_date(now_ms: i64) -> Option<Date> {
    crate::domain::from_epoch_ms(now_ms).map(|t| t.to_offset(beijing()).date())
}

/// When a charge dated `d` is due: the start of that day in Beijing.
pub fn due_at(d: Date) -> i64 {
    epoch_ms(d.with_time(Time::MIDNIGHT).assume_offset(beijing()))
}

/// `d` moved by whole calendar months (the day must exist in the target
/// month; plans keep it at most 28).
pub fn add_months(d: Date, months: i64) -> Option<Date> {
    let index = i64::from(d.year()) * 12 + i64::from(u8::from(d.month())) - 1 + months;
    let year = i32::try_from(index.div_euclid(12)).ok()?;
    let month = Month::try_from(u8::try_from(index.rem_euclid(12) + 1).ok()?).ok()?;
    Date::from_calendar_date(year, month, d.day()).ok()
}

/// The date `period` (1-based) of a plan is charged on.
pub fn period_date(first: Date, unit: PeriodUnit, every: i64, period: i64) -> Option<Date> {
    let steps = (period - 1).checked_mul(every)?;
    match unit {
        PeriodUnit::Day => first.checked_add(time::Duration::days(steps)),
        PeriodUnit::Month => add_months(first, steps),
    }
}

/// A `yyyy-MM-dd` date.
pub fn parse_date(s: &str) -> Option<Date> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    Date::parse(s, &format).ok()
}

/// A date as `yyyy-MM-dd`.
pub fn format_date(d: Date) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    d.format(&format).unwrap_or_default()
}

/// A stored subscription's period unit.
///
/// # Errors
/// [`StoreError::Corrupt`] when the stored text is not a unit.
pub fn stored_unit(sub: &Subscription) -> Result<PeriodUnit, StoreError> {
    PeriodUnit::parse(&sub.period_unit).ok_or(StoreError::Corrupt {
        column: "period_unit",
    })
}

/// The date the subscription's next period is charged on, if any.
pub fn next_charge_date(sub: &Subscription) -> Option<String> {
    if sub.status.is_final() {
        return None;
    }
    let first = parse_date(&sub.first_charge_date)?;
    let unit = PeriodUnit::parse(&sub.period_unit)?;
    period_date(first, unit, sub.period_every, sub.next_period).map(format_date)
}
