//! Webhooks: where they go, the secret that signs them, the retry budget,
//! and when a change's first attempt is made.

use std::time::Duration;

use super::source::{ConfigError, Source, parse_num};

/// How long one webhook delivery may take before it counts as failed.
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(5);
/// Default webhook retry budget: 12 attempts span about a day with
/// [`crate::webhook::backoff`].
pub const DEFAULT_MAX_ATTEMPTS: i64 = 12;
/// Shortest accepted webhook secret.
pub const MIN_SECRET_LEN: usize = 16;

/// The webhook secret. Its `Debug` never shows it.
#[derive(Clone)]
pub struct WebhookSecret(String);

impl WebhookSecret {
    /// Validates a secret from `ZHIFU_WEBHOOK_SECRET`.
    ///
    /// # Errors
    /// When shorter than [`MIN_SECRET_LEN`].
    pub fn new(secret: impl Into<String>) -> Result<Self, ConfigError> {
        let s: String = secret.into();
        let s = s.trim().to_owned();
        if s.len() < MIN_SECRET_LEN {
            return Err(ConfigError::new(
                "ZHIFU_WEBHOOK_SECRET",
                format!("must be at least {MIN_SECRET_LEN} characters"),
            ));
        }
        Ok(WebhookSecret(s))
    }

    /// The bytes the HMAC is keyed with.
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret(<redacted>)")
    }
}

/// Where and how webhooks are delivered.
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    /// `ZHIFU_WEBHOOK_URL`.
    pub url: String,
    /// `ZHIFU_WEBHOOK_SECRET` (or `_FILE`).
    pub secret: WebhookSecret,
    /// `ZHIFU_WEBHOOK_MAX_ATTEMPTS` (default [`DEFAULT_MAX_ATTEMPTS`]).
    pub max_attempts: i64,
    /// Time limit of one delivery ([`DELIVERY_TIMEOUT`]).
    pub timeout: Duration,
    /// `ZHIFU_WEBHOOK_DELIVERY`, when set: when a change's webhooks get
    /// their first attempt ([`WebhookConfig::delivery`]).
    pub delivery: Option<WebhookDelivery>,
    /// `ZHIFU_WEBHOOK_INLINE_BUDGET_MS` (default 1000): the budget of inline
    /// delivery.
    pub inline_budget: Duration,
}

impl WebhookConfig {
    /// When a change's webhooks get their first attempt: as configured,
    /// else after the answer.
    pub fn delivery(&self) -> WebhookDelivery {
        self.delivery.unwrap_or(WebhookDelivery::AfterAnswer)
    }

    /// For entry points that end (or freeze) when they answer — a function
    /// invocation, a job: inline delivery within `budget`, unless
    /// `ZHIFU_WEBHOOK_DELIVERY` chose otherwise.
    pub fn prefer_inline(&mut self, budget: Duration) {
        self.delivery
            .get_or_insert(WebhookDelivery::Inline { budget });
    }
}

/// When a committed change's webhooks get their first attempt. Either way
/// the events are in the outbox first, and the reconcile pass delivers
/// whatever the first attempt did not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookDelivery {
    /// After the answer (`ZHIFU_WEBHOOK_DELIVERY=after_answer`, the
    /// default): in a background task, so Alipay's `success` and the
    /// merchant's API answer never wait for the merchant's endpoint. For
    /// long-running servers; a function instance may be frozen right after
    /// its answer, leaving the attempt to the reconcile pass.
    AfterAnswer,
    /// Before the answer, within a budget
    /// (`ZHIFU_WEBHOOK_DELIVERY=inline`, `ZHIFU_WEBHOOK_INLINE_BUDGET_MS`,
    /// default 1000): what a function should use. Events not attempted
    /// within the budget wait for the reconcile pass.
    Inline {
        /// Time the attempts of one change may take in all.
        budget: Duration,
    },
}

impl WebhookConfig {
    /// `ZHIFU_WEBHOOK_URL`, `ZHIFU_WEBHOOK_SECRET` (or `_FILE`, required
    /// with the URL) and `ZHIFU_WEBHOOK_MAX_ATTEMPTS`; `None` without a URL.
    ///
    /// # Errors
    /// The first bad variable, named (never the secret's value).
    pub fn from_source(src: &Source) -> Result<Option<Self>, ConfigError> {
        let Some(url) = src.get("ZHIFU_WEBHOOK_URL") else {
            return Ok(None);
        };
        let parsed = url::Url::parse(&url)
            .map_err(|e| ConfigError::new("ZHIFU_WEBHOOK_URL", format!("not a URL ({e})")))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
            return Err(ConfigError::new(
                "ZHIFU_WEBHOOK_URL",
                "must be an http(s) URL with a host",
            ));
        }
        let secret = src.secret("ZHIFU_WEBHOOK_SECRET")?.ok_or_else(|| {
            ConfigError::new(
                "ZHIFU_WEBHOOK_SECRET",
                "must be set when ZHIFU_WEBHOOK_URL is (or ZHIFU_WEBHOOK_SECRET_FILE)",
            )
        })?;
        let max_attempts = match src.get("ZHIFU_WEBHOOK_MAX_ATTEMPTS") {
            Some(v) => parse_num("ZHIFU_WEBHOOK_MAX_ATTEMPTS", &v, (1i64, 100))?,
            None => DEFAULT_MAX_ATTEMPTS,
        };
        let inline_budget = match src.get("ZHIFU_WEBHOOK_INLINE_BUDGET_MS") {
            Some(v) => Duration::from_millis(parse_num(
                "ZHIFU_WEBHOOK_INLINE_BUDGET_MS",
                &v,
                (1u64, 60_000),
            )?),
            None => Duration::from_millis(1_000),
        };
        let delivery = match src.get("ZHIFU_WEBHOOK_DELIVERY").as_deref().map(str::trim) {
            None => None,
            Some("after_answer") => Some(WebhookDelivery::AfterAnswer),
            Some("inline") => Some(WebhookDelivery::Inline {
                budget: inline_budget,
            }),
            Some(_) => {
                return Err(ConfigError::new(
                    "ZHIFU_WEBHOOK_DELIVERY",
                    "expected `after_answer` or `inline`",
                ));
            }
        };
        Ok(Some(WebhookConfig {
            url,
            secret: WebhookSecret::new(secret)?,
            max_attempts,
            timeout: DELIVERY_TIMEOUT,
            delivery,
            inline_budget,
        }))
    }
}
