//! The reconcile pass's settings and the listener's limits: how much
//! background and connection work one instance takes on.

use std::time::{Duration, Instant};

use super::source::{ConfigError, Source, parse_num};

/// Settings of one pass.
#[derive(Debug, Clone)]
pub struct ReconcileOptions {
    /// Orders and refunds younger than this are left alone: their
    /// notification or answer may still be on its way.
    pub min_age: Duration,
    /// How long a claimed row stays reserved for this pass; also the
    /// earliest time a still-pending order is asked about again.
    pub lease: Duration,
    /// At most this many orders, refunds and deliveries each per pass.
    pub limit: usize,
    /// Rows claimed at a time (what a killed pass can leave leased).
    pub batch: usize,
    /// Stop starting new work after this instant (a function's time limit).
    pub deadline: Option<Instant>,
}

impl Default for ReconcileOptions {
    fn default() -> Self {
        ReconcileOptions {
            min_age: Duration::from_secs(120),
            lease: Duration::from_secs(240),
            limit: 200,
            batch: 10,
            deadline: None,
        }
    }
}

impl ReconcileOptions {
    /// `ZHIFU_RECONCILE_MIN_AGE_SECS` (default 120),
    /// `ZHIFU_RECONCILE_LEASE_SECS` (default 240) and `ZHIFU_RECONCILE_LIMIT`
    /// (default 200) over [`ReconcileOptions::default`].
    ///
    /// # Errors
    /// The first bad variable, named.
    pub fn from_source(src: &Source) -> Result<Self, ConfigError> {
        let mut o = ReconcileOptions::default();
        if let Some(v) = src.get("ZHIFU_RECONCILE_MIN_AGE_SECS") {
            o.min_age = Duration::from_secs(parse_num(
                "ZHIFU_RECONCILE_MIN_AGE_SECS",
                &v,
                (0u64, 86_400),
            )?);
        }
        if let Some(v) = src.get("ZHIFU_RECONCILE_LEASE_SECS") {
            o.lease = Duration::from_secs(parse_num(
                "ZHIFU_RECONCILE_LEASE_SECS",
                &v,
                (10u64, 86_400),
            )?);
        }
        if let Some(v) = src.get("ZHIFU_RECONCILE_LIMIT") {
            o.limit = parse_num("ZHIFU_RECONCILE_LIMIT", &v, (1usize, 100_000))?;
        }
        Ok(o)
    }
}

/// Limits of one listener (what they do: `crate::http::listener`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerLimits {
    /// `ZHIFU_HEADER_TIMEOUT_SECS` (default 10).
    pub header_timeout: Duration,
    /// `ZHIFU_BODY_TIMEOUT_SECS` (default 10).
    pub body_timeout: Duration,
    /// `ZHIFU_REQUEST_TIMEOUT_SECS` (default 30; above the gateway calls a
    /// request may make, each limited to 15 s).
    pub request_timeout: Duration,
    /// `ZHIFU_IDLE_TIMEOUT_SECS` (default 60): a connection with no
    /// traffic either way for this long is closed. Above the request
    /// timeout, so a request being handled is never cut by it.
    pub idle_timeout: Duration,
    /// `ZHIFU_MAX_CONNECTIONS` (default 1024).
    pub max_connections: usize,
}

impl Default for ListenerLimits {
    fn default() -> Self {
        ListenerLimits {
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            max_connections: 1024,
        }
    }
}

pub(super) fn listener_limits(src: &Source) -> Result<ListenerLimits, ConfigError> {
    let mut l = ListenerLimits::default();
    let secs = |var: &str, d: &mut Duration| -> Result<(), ConfigError> {
        if let Some(v) = src.get(var) {
            *d = Duration::from_secs(parse_num(var, &v, (1u64, 3_600))?);
        }
        Ok(())
    };
    secs("ZHIFU_HEADER_TIMEOUT_SECS", &mut l.header_timeout)?;
    secs("ZHIFU_BODY_TIMEOUT_SECS", &mut l.body_timeout)?;
    secs("ZHIFU_REQUEST_TIMEOUT_SECS", &mut l.request_timeout)?;
    secs("ZHIFU_IDLE_TIMEOUT_SECS", &mut l.idle_timeout)?;
    if let Some(v) = src.get("ZHIFU_MAX_CONNECTIONS") {
        l.max_connections = parse_num("ZHIFU_MAX_CONNECTIONS", &v, (1usize, 1_000_000))?;
    }
    Ok(l)
}
