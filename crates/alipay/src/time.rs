//! Alipay's timestamps: `yyyy-MM-dd HH:mm:ss` in Beijing time (UTC+8), and
//! the injected clock every time-dependent operation takes.

use std::fmt;

use time::macros::{format_description, offset};
use time::{OffsetDateTime, PrimitiveDateTime, UtcOffset};

/// China Standard Time. Alipay has no daylight saving.
pub const BEIJING: UtcOffset = offset!(+8);

const FORMAT: &[time::format_description::BorrowedFormatItem<'static>] =
    format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");

/// Formats an instant as an Alipay timestamp in Beijing time, whatever the
/// machine's time zone (containers usually run in UTC; docs/protocol.md §2.2).
pub fn format_beijing(t: OffsetDateTime) -> String {
    t.to_offset(BEIJING)
        .format(FORMAT)
        .expect("the fixed format only uses fields every OffsetDateTime has")
}

/// Parses an Alipay timestamp as Beijing time.
pub fn parse_beijing(s: &str) -> Option<OffsetDateTime> {
    PrimitiveDateTime::parse(s, FORMAT)
        .ok()
        .map(|p| p.assume_offset(BEIJING))
}

/// A source of the current time. Tests pin it; production uses [`SystemClock`].
pub trait Clock: Send + Sync + fmt::Debug {
    /// Now.
    fn now(&self) -> OffsetDateTime;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// A clock that always answers the same instant.
#[derive(Debug, Clone, Copy)]
pub struct FixedClock(pub OffsetDateTime);

impl Clock for FixedClock {
    fn now(&self) -> OffsetDateTime {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn utc_midnight_is_eight_in_beijing() {
        assert_eq!(
            format_beijing(datetime!(2024-01-01 19:04:05 UTC)),
            "2024-01-02 03:04:05"
        );
        let t = parse_beijing("2024-01-02 03:04:05").unwrap();
        assert_eq!(t, datetime!(2024-01-01 19:04:05 UTC));
        assert!(parse_beijing("2024-01-02T03:04:05").is_none());
        assert!(parse_beijing("2024-13-02 03:04:05").is_none());
    }
}
