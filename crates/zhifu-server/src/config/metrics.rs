//! Who may read `GET /metrics`.

use super::source::{ConfigError, Source, parse_bool};
use super::webhooks::MIN_SECRET_LEN;

/// Who may read `GET /metrics`. Its counters are business figures (orders
/// by status, payments per minute), so on a server reachable from the
/// internet they are not public unless asked for.
#[derive(Clone, PartialEq, Eq)]
pub enum MetricsAccess {
    /// Anyone (`zhifu dev`, or `ZHIFU_METRICS_PUBLIC=true`).
    Public,
    /// Only requests with `Authorization: Bearer <token>`
    /// (`ZHIFU_METRICS_TOKEN`, ≥ 16 characters).
    Token(String),
    /// Nobody: `/metrics` answers 404 (the default of `zhifu serve` and the
    /// functions when no token is set).
    Off,
}

impl std::fmt::Debug for MetricsAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            MetricsAccess::Public => "Public",
            MetricsAccess::Token(_) => "Token(<redacted>)",
            MetricsAccess::Off => "Off",
        })
    }
}

impl MetricsAccess {
    /// Whether a request with this `Authorization` header may read.
    pub fn allows(&self, authorization: Option<&str>) -> bool {
        match self {
            MetricsAccess::Public => true,
            MetricsAccess::Off => false,
            MetricsAccess::Token(t) => authorization
                .and_then(|h| h.strip_prefix("Bearer "))
                .is_some_and(|given| {
                    aws_lc_rs::constant_time::verify_slices_are_equal(
                        given.as_bytes(),
                        t.as_bytes(),
                    )
                    .is_ok()
                }),
        }
    }

    /// Reads `ZHIFU_METRICS_TOKEN` (or `_FILE`) and `ZHIFU_METRICS_PUBLIC`.
    ///
    /// # Errors
    /// A token shorter than 16 characters; both set; a bad boolean.
    pub fn from_source(src: &Source) -> Result<Self, ConfigError> {
        let public = match src.get("ZHIFU_METRICS_PUBLIC") {
            Some(v) => parse_bool("ZHIFU_METRICS_PUBLIC", &v)?,
            None => false,
        };
        match (src.secret("ZHIFU_METRICS_TOKEN")?, public) {
            (Some(_), true) => Err(ConfigError::new(
                "ZHIFU_METRICS_PUBLIC",
                "cannot be true while ZHIFU_METRICS_TOKEN is set",
            )),
            (Some(t), false) if t.chars().count() < MIN_SECRET_LEN => Err(ConfigError::new(
                "ZHIFU_METRICS_TOKEN",
                format!("must be at least {MIN_SECRET_LEN} characters"),
            )),
            (Some(t), false) => Ok(MetricsAccess::Token(t)),
            (None, true) => Ok(MetricsAccess::Public),
            (None, false) => Ok(MetricsAccess::Off),
        }
    }
}
