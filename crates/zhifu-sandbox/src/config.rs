//! Everything that can be configured, with defaults that follow docs/protocol.md and,
//! where docs/protocol.md §12 marks a fact unconfirmed, a stated choice.

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use alipay::{AppPrivateKey, Charset};
use serde::{Deserialize, Serialize};

use crate::error::SandboxError;

/// How time moves in the sandbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SandboxMode {
    /// Real time: notifications are sent and retried, trades time out, by
    /// themselves (retry intervals scaled by `time_scale`).
    #[default]
    Auto,
    /// The clock stands still; nothing happens until a test advances it
    /// ([`crate::Sandbox::advance`], `POST /sandbox/api/clock/advance`), which
    /// then runs everything that became due and waits for it.
    Explicit,
}

impl FromStr for SandboxMode {
    type Err = SandboxError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(SandboxMode::Auto),
            "explicit" => Ok(SandboxMode::Explicit),
            _ => Err(SandboxError::InvalidInput(format!(
                "mode {s:?} is not `auto` or `explicit`"
            ))),
        }
    }
}

/// Which trade events send a notification for one product family (docs/protocol.md §6.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotifyTriggers {
    /// Payment → `TRADE_SUCCESS`.
    pub trade_success: bool,
    /// Unpaid close/timeout/cancel, or a full refund → `TRADE_CLOSED`.
    pub trade_closed: bool,
    /// Refund window over → `TRADE_FINISHED`.
    pub trade_finished: bool,
    /// A partial refund re-sends `TRADE_SUCCESS` with `refund_fee`, `gmt_refund`, `out_biz_no`.
    pub partial_refund: bool,
}

/// The per-product notification matrix of docs/protocol.md §6.5 (unconfirmed in docs/protocol.md §12, so configurable).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotifyMatrix {
    /// `alipay.trade.precreate`, `create`, `pay`.
    pub face_to_face: NotifyTriggers,
    /// `alipay.trade.app.pay`.
    pub app: NotifyTriggers,
    /// `alipay.trade.wap.pay`.
    pub wap: NotifyTriggers,
    /// `alipay.trade.page.pay`.
    pub page: NotifyTriggers,
}

impl Default for NotifyMatrix {
    /// The table of docs/protocol.md §6.5: success always notifies (and so do partial
    /// refunds); closed and finished only for app and wap pay.
    fn default() -> Self {
        let narrow = NotifyTriggers {
            trade_success: true,
            trade_closed: false,
            trade_finished: false,
            partial_refund: true,
        };
        let wide = NotifyTriggers {
            trade_success: true,
            trade_closed: true,
            trade_finished: true,
            partial_refund: true,
        };
        NotifyMatrix {
            face_to_face: narrow,
            app: wide,
            wap: wide,
            page: narrow,
        }
    }
}

/// What the gateway does when a parameter is both in the query and the body
/// (docs/protocol.md §2.3, unconfirmed in docs/protocol.md §12).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DuplicateParams {
    /// The body value is used (default).
    #[default]
    BodyWins,
    /// The query value is used.
    QueryWins,
    /// The request is refused with `isv.invalid-parameter`.
    Reject,
}

/// Fault injection. Every rate is a probability in `0.0 ..= 1.0`, drawn
/// from the sandbox's seeded RNG.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// A delivery attempt is silently not sent (recorded as `dropped`); the
    /// retry schedule goes on as if the merchant had not answered.
    pub drop_rate: f64,
    /// After a successful delivery the same body is sent once more.
    pub duplicate_rate: f64,
    /// A delivery attempt waits `delay_ms` before being sent.
    pub delay_rate: f64,
    /// Extra wait for delayed attempts, in real milliseconds.
    pub delay_ms: u64,
    /// A new notification is held back until the next notification to the
    /// same URL has been attempted (or `reorder_hold_ms` has passed), so it
    /// arrives out of order.
    pub reorder_rate: f64,
    /// Longest hold of a reordered notification, in sandbox milliseconds
    /// (default when 0: 60 s × `time_scale`).
    pub reorder_hold_ms: u64,
    /// A gateway call answers `20000` / `ACQ.SYSTEM_ERROR`.
    pub system_error_rate: f64,
    /// When set, a call picked for a system error is still carried out
    /// before `20000` is answered (the "outcome unknown" case).
    pub system_error_after_commit: bool,
    /// A gateway call waits `latency_ms` before answering.
    pub latency_rate: f64,
    /// Extra gateway latency, in real milliseconds.
    pub latency_ms: u64,
}

impl Faults {
    /// Checks that every rate is a probability.
    ///
    /// # Errors
    /// [`SandboxError::InvalidInput`] naming the bad field.
    pub fn validate(&self) -> Result<(), SandboxError> {
        for (name, r) in [
            ("drop_rate", self.drop_rate),
            ("duplicate_rate", self.duplicate_rate),
            ("delay_rate", self.delay_rate),
            ("reorder_rate", self.reorder_rate),
            ("system_error_rate", self.system_error_rate),
            ("latency_rate", self.latency_rate),
        ] {
            if !(0.0..=1.0).contains(&r) {
                return Err(SandboxError::InvalidInput(format!(
                    "{name} must be within 0.0 ..= 1.0, got {r}"
                )));
            }
        }
        Ok(())
    }
}

/// The notification retry intervals of docs/protocol.md §6.2: 4m, 10m, 10m, 1h, 2h, 6h, 15h
/// (8 deliveries in about 25 hours).
pub const RETRY_SCHEDULE: [Duration; 7] = [
    Duration::from_secs(4 * 60),
    Duration::from_secs(10 * 60),
    Duration::from_secs(10 * 60),
    Duration::from_secs(3600),
    Duration::from_secs(2 * 3600),
    Duration::from_secs(6 * 3600),
    Duration::from_secs(15 * 3600),
];

/// Which buyer identifiers `alipay.system.oauth.token` answers with
/// (docs/agreements.md, Sandbox): apps created after Alipay's open-id
/// migration get `open_id`, older ones `user_id`. Unconfirmed which a
/// given real app gets, so configurable; default both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OauthIds {
    /// `user_id` only (`2088…`).
    UserId,
    /// `open_id` only.
    OpenId,
    /// Both (default).
    #[default]
    Both,
}

/// Sandbox configuration. `Default` gives an in-memory sandbox in auto mode
/// at `http://127.0.0.1:9090`.
#[derive(Debug)]
pub struct SandboxConfig {
    /// Base URL where the sandbox's routes are reachable, without a trailing
    /// slash (builds `qr_code`, cashier and bill URLs).
    pub public_url: String,
    /// Multiplies the notification retry intervals (1.0 real, 0.001 in tests).
    pub time_scale: f64,
    /// Auto or explicit time.
    pub mode: SandboxMode,
    /// SQLite persistence in this directory when set; in-memory otherwise.
    pub state_dir: Option<PathBuf>,
    /// Seed of the RNG behind fault rates (random when `None`).
    pub seed: Option<u64>,
    /// Faults active from the start.
    pub faults: Faults,
    /// The notification matrix (docs/protocol.md §6.5).
    pub notify_matrix: NotifyMatrix,
    /// How long after payment a trade stays refundable before it becomes
    /// `TRADE_FINISHED` (unconfirmed in docs/protocol.md §12; default 90 days, "three months").
    pub refund_window: Duration,
    /// How long after a trade was created `alipay.trade.cancel` may still
    /// close or refund it; later calls get `ACQ.TRADE_CANCEL_TIME_OUT`
    /// (超过撤销时间范围). The real limit is unconfirmed (docs/protocol.md
    /// §12.13); default 24 hours. An order nobody opened yet has no trade
    /// and can be voided at any time.
    pub cancel_window: Duration,
    /// Charset assumed when the query carries no `charset` (unconfirmed in docs/protocol.md §12;
    /// reports say GBK, which is the default).
    pub default_charset: Charset,
    /// Query/body duplicate handling (unconfirmed in docs/protocol.md §12; default body wins).
    pub duplicate_params: DuplicateParams,
    /// Whether whitespace-only values are left out of the sign content, as
    /// the Java SDK does (unconfirmed in docs/protocol.md §12; default true).
    pub drop_blank_values: bool,
    /// Largest accepted difference between `timestamp` and the sandbox clock
    /// (unconfirmed in docs/protocol.md §12; default `None`: only the format is checked).
    pub max_timestamp_skew: Option<Duration>,
    /// Intervals between notification attempts before scaling.
    pub retry_schedule: Vec<Duration>,
    /// Timeout of one notification POST.
    pub notify_timeout: Duration,
    /// How long a bill download URL stays valid (sandbox time; ~30 s per docs/protocol.md §5.2).
    pub bill_url_ttl: Duration,
    /// How many gateway calls the request log keeps (`GET
    /// /sandbox/api/requests`, [`crate::Sandbox::requests`]); the oldest are
    /// dropped first. Default 10 000; 0 keeps none.
    pub request_log_capacity: usize,
    /// The sandbox's own "Alipay" key. When `None` it is read from the state
    /// directory or generated (and then stored there).
    pub alipay_private_key: Option<AppPrivateKey>,
    /// Public-key-certificate mode (公钥证书模式, docs/protocol.md §7; the
    /// sandbox's `certs` module): the sandbox has its own root CA and an
    /// Alipay certificate for its key, issues app certificates, requires
    /// `app_cert_sn` and `alipay_root_cert_sn` on every gateway request and
    /// answers with `alipay_cert_sn`. With [`SandboxConfig::state_dir`]
    /// the authority and every certificate it issued are kept there, so a
    /// restart keeps the root, the Alipay certificate and the app
    /// certificates; in memory a new authority is made at each start.
    pub cert_mode: bool,
    /// The test buyer's balance for agreement deductions (`alipay.trade.pay`
    /// with `GENERAL_WITHHOLDING`), in fen: a deduction above what is left
    /// fails with `ACQ.BUYER_BALANCE_NOT_ENOUGH`, a successful one spends
    /// it. `None` (default) never runs out. Changed at run time with
    /// [`crate::Sandbox::set_withholding_balance`].
    pub withholding_balance_fen: Option<u64>,
    /// Whether `alipay.user.agreement.unsign` by the merchant sends a
    /// `dut_user_unsign` notification as the buyer's unsign does
    /// (unconfirmed; default true).
    pub notify_merchant_unsign: bool,
    /// How long an OAuth `auth_code` can be exchanged (unconfirmed; default
    /// 5 minutes). A code works once either way.
    pub oauth_code_ttl: Duration,
    /// `expires_in` of an OAuth access token (unconfirmed; default 15 days).
    pub oauth_token_ttl: Duration,
    /// `re_expires_in`, the refresh token's lifetime (unconfirmed; default 30 days).
    pub oauth_refresh_ttl: Duration,
    /// Which buyer ids the token exchange answers with.
    pub oauth_ids: OauthIds,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            public_url: "http://127.0.0.1:9090".into(),
            time_scale: 1.0,
            mode: SandboxMode::Auto,
            state_dir: None,
            seed: None,
            faults: Faults::default(),
            notify_matrix: NotifyMatrix::default(),
            refund_window: Duration::from_secs(90 * 24 * 3600),
            cancel_window: Duration::from_secs(24 * 3600),
            default_charset: Charset::Gbk,
            duplicate_params: DuplicateParams::BodyWins,
            drop_blank_values: true,
            max_timestamp_skew: None,
            retry_schedule: RETRY_SCHEDULE.to_vec(),
            notify_timeout: Duration::from_secs(15),
            bill_url_ttl: Duration::from_secs(30),
            request_log_capacity: 10_000,
            alipay_private_key: None,
            cert_mode: false,
            withholding_balance_fen: None,
            notify_merchant_unsign: true,
            oauth_code_ttl: Duration::from_secs(300),
            oauth_token_ttl: Duration::from_secs(15 * 24 * 3600),
            oauth_refresh_ttl: Duration::from_secs(30 * 24 * 3600),
            oauth_ids: OauthIds::Both,
        }
    }
}

impl SandboxConfig {
    pub(crate) fn validate(&self) -> Result<(), SandboxError> {
        if !(self.time_scale.is_finite() && self.time_scale > 0.0) {
            return Err(SandboxError::InvalidInput(format!(
                "time_scale must be a positive number, got {}",
                self.time_scale
            )));
        }
        if self.public_url.ends_with('/') || !self.public_url.starts_with("http") {
            return Err(SandboxError::InvalidInput(format!(
                "public_url must be an http(s) URL without a trailing slash, got {:?}",
                self.public_url
            )));
        }
        self.faults.validate()
    }

    /// A retry interval after `attempts_done` scheduled attempts, scaled.
    pub(crate) fn retry_after(&self, attempts_done: usize) -> Option<time::Duration> {
        let d = self.retry_schedule.get(attempts_done.checked_sub(1)?)?;
        Some(scale(*d, self.time_scale))
    }
}

pub(crate) fn scale(d: Duration, factor: f64) -> time::Duration {
    let ms = (d.as_secs_f64() * 1000.0 * factor).round();
    time::Duration::milliseconds(ms.clamp(0.0, i64::MAX as f64) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_schedule_is_scaled_and_ends_after_eight_deliveries() {
        let cfg = SandboxConfig {
            time_scale: 0.001,
            ..Default::default()
        };
        assert_eq!(cfg.retry_after(0), None);
        assert_eq!(cfg.retry_after(1), Some(time::Duration::milliseconds(240)));
        assert_eq!(cfg.retry_after(2), Some(time::Duration::milliseconds(600)));
        assert_eq!(
            cfg.retry_after(7),
            Some(time::Duration::milliseconds(54_000))
        );
        assert_eq!(cfg.retry_after(8), None);
        let total: Duration = RETRY_SCHEDULE.iter().sum();
        assert_eq!(total, Duration::from_secs(24 * 3600 + 24 * 60));
    }

    #[test]
    fn bad_rates_and_scales_are_refused() {
        let f = Faults {
            drop_rate: 1.5,
            ..Default::default()
        };
        assert!(f.validate().is_err());
        let cfg = SandboxConfig {
            time_scale: 0.0,
            ..Default::default()
        };
        assert!(cfg.validate().is_err());
        let cfg = SandboxConfig {
            public_url: "http://x/".into(),
            ..Default::default()
        };
        assert!(cfg.validate().is_err());
        assert!(SandboxConfig::default().validate().is_ok());
    }
}
