//! Signed merchant webhooks: how the merchant's own function learns "paid".
//!
//! Every state change writes an event in the same transaction (the outbox,
//! see `zhifu_store`). After the commit the event is delivered once, at
//! once, as a JSON `POST` to `ZHIFU_WEBHOOK_URL`; a failed delivery is
//! retried by the reconcile pass with exponential backoff until the endpoint
//! answers 2xx or [`WebhookConfig::max_attempts`] is used up. Each delivery
//! of one event carries the same event id, so receivers de-duplicate on it.
//!
//! The first attempt is made inline, before the request that caused the
//! change is answered: on a function platform nothing may run after the
//! response (the instance is frozen), and the outbox keeps it correct
//! either way. A slow endpoint therefore delays that answer by at most
//! [`DELIVERY_TIMEOUT`]; Alipay retries a notification it considers
//! unanswered, and the retry is a recorded no-op.
//!
//! ## The signature (the scheme merchants know from Stripe)
//!
//! ```text
//! Zhifu-Signature: t=1767225600,v1=<64 lower-case hex digits>
//! ```
//!
//! `v1` is the lower-case hex HMAC-SHA256, keyed with `ZHIFU_WEBHOOK_SECRET`
//! (its UTF-8 bytes), of `"{t}.{body}"`: the decimal Unix time `t`, a dot,
//! and the exact request body bytes. A receiver recomputes it over the raw
//! body (before any JSON parsing), compares in constant time, and refuses a
//! `t` further than a tolerance (five minutes is usual) from its own clock,
//! which bounds replays. Several `v1=` entries may appear; any match is
//! enough. Rust receivers call [`verify`].

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use aws_lc_rs::hmac;
use serde_json::{Value, json};
use zhifu_store::{DeliveryNext, NewDeliveryAttempt, OrderEvent, StoreError};

use crate::AppState;
use crate::api::{order_json, rfc3339, yuan};
use crate::config::ConfigError;

/// The request header that carries the signature.
pub const SIGNATURE_HEADER: &str = "Zhifu-Signature";
/// The request header that carries the event id (also in the body).
pub const EVENT_ID_HEADER: &str = "Zhifu-Event-Id";
/// The tolerance receivers should use unless they have a reason not to.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(300);
/// How long one delivery may take before it counts as failed.
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(5);
/// Default retry budget: 12 attempts span about a day with [`backoff`].
pub const DEFAULT_MAX_ATTEMPTS: i64 = 12;
/// Shortest accepted secret.
pub const MIN_SECRET_LEN: usize = 16;

/// Why a webhook did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The header is not `t=<unix>,v1=<hex>[,v1=<hex>…]`.
    #[error("the signature header is malformed")]
    MalformedHeader,
    /// No `v1` signature matches the body and the secret.
    #[error("no signature matches the payload")]
    SignatureMismatch,
    /// `t` is further from now than the tolerance allows.
    #[error("the signature's timestamp is outside the tolerance")]
    TimestampOutOfTolerance,
}

fn key(secret: &[u8]) -> hmac::Key {
    hmac::Key::new(hmac::HMAC_SHA256, secret)
}

fn signed_content(t: i64, payload: &[u8]) -> Vec<u8> {
    let mut msg = Vec::with_capacity(payload.len() + 12);
    msg.extend_from_slice(t.to_string().as_bytes());
    msg.push(b'.');
    msg.extend_from_slice(payload);
    msg
}

/// The `Zhifu-Signature` header value for `payload` signed at Unix time `t`
/// (what the sender puts on each delivery; receivers' tests can use it too).
pub fn sign(payload: &[u8], secret: &[u8], t: i64) -> String {
    let tag = hmac::sign(&key(secret), &signed_content(t, payload));
    format!("t={t},v1={}", crate::body::hex(tag.as_ref()))
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Checks a delivery: `payload` is the raw request body, `header` the
/// `Zhifu-Signature` value, `now` the receiver's Unix time in seconds. The
/// comparison is constant-time (aws-lc's HMAC verify).
///
/// # Errors
/// [`VerifyError`]: a malformed header, no matching signature, or a
/// timestamp further than `tolerance` from `now`.
pub fn verify(
    payload: &[u8],
    header: &str,
    secret: &[u8],
    tolerance: Duration,
    now: i64,
) -> Result<(), VerifyError> {
    let mut t = None;
    let mut sigs = Vec::new();
    for part in header.split(',') {
        let (k, v) = part
            .trim()
            .split_once('=')
            .ok_or(VerifyError::MalformedHeader)?;
        match k {
            "t" if t.is_none() => {
                t = Some(v.parse::<i64>().map_err(|_| VerifyError::MalformedHeader)?);
            }
            "t" => return Err(VerifyError::MalformedHeader),
            "v1" => sigs.push(v),
            // Other schemes may be added later; they are not ours to judge.
            _ => {}
        }
    }
    let t = t.ok_or(VerifyError::MalformedHeader)?;
    if sigs.is_empty() {
        return Err(VerifyError::MalformedHeader);
    }
    let k = key(secret);
    let msg = signed_content(t, payload);
    let matched = sigs
        .iter()
        .filter_map(|s| unhex(s))
        .any(|tag| hmac::verify(&k, &msg, &tag).is_ok());
    if !matched {
        return Err(VerifyError::SignatureMismatch);
    }
    let tolerance = i64::try_from(tolerance.as_secs()).unwrap_or(i64::MAX);
    if now.abs_diff(t) > tolerance.unsigned_abs() {
        return Err(VerifyError::TimestampOutOfTolerance);
    }
    Ok(())
}

/// Wait before attempt `n + 1` after `n` failed attempts: 30 s doubling,
/// at most 6 h (30 s, 1 min, 2 min, … about a day for 12 attempts).
pub fn backoff(failed_attempts: i64) -> Duration {
    let exp = u32::try_from(failed_attempts.saturating_sub(1).clamp(0, 20)).unwrap_or(20);
    Duration::from_secs(30u64.saturating_mul(1u64 << exp)).min(Duration::from_secs(6 * 3600))
}

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
            return Err(ConfigError {
                var: "ZHIFU_WEBHOOK_SECRET".into(),
                problem: format!("must be at least {MIN_SECRET_LEN} characters"),
            });
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
}

/// Delivers events; holds the HTTP client, built on first use so a cold
/// start that delivers nothing never pays for loading the system roots.
#[derive(Debug)]
pub(crate) struct Sender {
    config: WebhookConfig,
    http: OnceLock<reqwest::Client>,
}

impl Sender {
    pub(crate) fn new(config: WebhookConfig) -> Self {
        Sender {
            config,
            http: OnceLock::new(),
        }
    }

    fn http(&self) -> &reqwest::Client {
        self.http.get_or_init(|| {
            reqwest::Client::builder()
                .timeout(self.config.timeout)
                .redirect(reqwest::redirect::Policy::none())
                .user_agent(concat!("zhifu-webhooks/", env!("CARGO_PKG_VERSION")))
                .build()
                .unwrap_or_else(|_| reqwest::Client::new())
        })
    }
}

/// How one delivery attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryResult {
    /// The event.
    pub event_id: String,
    /// Its state afterwards.
    pub state: zhifu_store::WebhookState,
    /// The endpoint's HTTP status, if it answered.
    pub http_status: Option<u16>,
    /// Why it failed, if it did.
    pub error: Option<String>,
}

/// The JSON body of an event's delivery: the event's own immutable fields
/// and the order as it is at delivery time.
pub async fn payload(st: &AppState, e: &OrderEvent) -> Result<Value, StoreError> {
    let order = st.store().get_order(&e.order_id).await?;
    Ok(json!({
        "id": e.id,
        "type": e.event_type.as_str(),
        "created_at": rfc3339(e.created_at),
        "data": {
            "order_id": e.order_id,
            "previous_status": e.from_status.as_str(),
            "status": e.to_status.as_str(),
            "refunded_amount": yuan(e.refunded_fen),
            "source": e.source,
            "order": order.as_ref().map(order_json),
        },
    }))
}

/// Lease of one delivery attempt: longer than [`DELIVERY_TIMEOUT`] plus
/// the bookkeeping, so an attempt in flight is never doubled.
pub(crate) const ATTEMPT_LEASE_MS: i64 = 60_000;

/// Delivers one event that the caller has claimed, records the attempt and
/// schedules the next one (or gives up).
///
/// # Errors
/// Store failures (the lease then expires and the event is retried).
pub(crate) async fn deliver_claimed(
    st: &AppState,
    sender: &Sender,
    e: &OrderEvent,
) -> Result<DeliveryResult, StoreError> {
    let body = payload(st, e).await?.to_string();
    let at = st.now_ms();
    let header = sign(body.as_bytes(), sender.config.secret.as_bytes(), at / 1000);
    let started = Instant::now();
    let sent = sender
        .http()
        .post(&sender.config.url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(SIGNATURE_HEADER, header)
        .header(EVENT_ID_HEADER, &e.id)
        .header("Zhifu-Event-Type", e.event_type.as_str())
        .body(body)
        .send()
        .await;
    let duration_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
    let (http_status, error) = match sent {
        Ok(resp) if resp.status().is_success() => (Some(resp.status().as_u16()), None),
        Ok(resp) => (
            Some(resp.status().as_u16()),
            Some(format!("HTTP {}", resp.status().as_u16())),
        ),
        // `without_url`: the URL may carry the merchant's own token.
        Err(err) => (None, Some(crate::error::chain(&err.without_url()))),
    };
    let next = if error.is_none() {
        DeliveryNext::Delivered
    } else if e.attempts + 1 >= sender.config.max_attempts {
        DeliveryNext::GiveUp
    } else {
        let wait = i64::try_from(backoff(e.attempts + 1).as_millis()).unwrap_or(i64::MAX);
        DeliveryNext::RetryAt(st.now_ms().saturating_add(wait))
    };
    let attempt = NewDeliveryAttempt {
        at,
        http_status: http_status.map(i64::from),
        error: error.clone(),
        duration_ms,
    };
    let done = st.store().finish_delivery(&e.id, &attempt, next).await?;
    st.metrics().webhook_attempt(done.webhook_state.as_str());
    match &error {
        None => tracing::info!(event = %e.id, kind = e.event_type.as_str(), "webhook delivered"),
        Some(why) => tracing::warn!(
            event = %e.id,
            attempt = done.attempts,
            error = %why,
            state = done.webhook_state.as_str(),
            "webhook not delivered"
        ),
    }
    Ok(DeliveryResult {
        event_id: e.id.clone(),
        state: done.webhook_state,
        http_status,
        error,
    })
}

/// Right after a commit: tries once, at once, every due event of the order
/// (normally just the new ones). Failures stay in the outbox for the
/// reconcile pass; nothing here fails the caller.
pub(crate) async fn flush_order(st: &AppState, order_id: &str) {
    let Some(sender) = st.webhooks() else {
        return;
    };
    let pending = match st
        .store()
        .query_events(&zhifu_store::EventQuery {
            webhook_state: Some(zhifu_store::WebhookState::Pending),
            order_id: Some(order_id.to_owned()),
            limit: 20,
        })
        .await
    {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(error = %crate::error::chain(&e), "outbox not read; the reconcile pass will deliver");
            return;
        }
    };
    // Oldest first, so a receiver normally sees `paid` before `refunded`.
    for e in pending.iter().rev() {
        let now = st.now_ms();
        let claimed = st
            .store()
            .claim_event(&e.id, now, now + ATTEMPT_LEASE_MS, false)
            .await;
        if let Ok(Some(e)) = claimed
            && let Err(err) = deliver_claimed(st, sender, &e).await
        {
            tracing::warn!(error = %crate::error::chain(&err), "webhook attempt not recorded");
        }
    }
}

/// Delivers one event now, whatever its state or schedule (`zhifu webhooks
/// resend`): a delivered or failed event is re-armed with a fresh retry
/// budget.
///
/// # Errors
/// `Ok(None)` when webhooks are not configured or the event is unknown;
/// store failures.
pub async fn resend(st: &AppState, event_id: &str) -> Result<Option<DeliveryResult>, StoreError> {
    let Some(sender) = st.webhooks() else {
        return Ok(None);
    };
    let now = st.now_ms();
    match st
        .store()
        .claim_event(event_id, now, now + ATTEMPT_LEASE_MS, true)
        .await?
    {
        Some(e) => deliver_claimed(st, sender, &e).await.map(Some),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"whsec_test_0123456789abcdef";

    #[test]
    fn known_vector() {
        // HMAC-SHA256("whsec_test_0123456789abcdef", "1700000000.{\"a\":1}"),
        // computed independently with `openssl dgst -sha256 -hmac`.
        let h = sign(br#"{"a":1}"#, SECRET, 1_700_000_000);
        assert_eq!(
            h,
            "t=1700000000,v1=07728d7e7b1736bac3de36a46c9bc0b660d59aa4a6f251544124fede1dc42a6c"
        );
    }

    #[test]
    fn roundtrip_tamper_tolerance_and_rotation() {
        let body = br#"{"id":"evt_1","type":"order.paid"}"#;
        let h = sign(body, SECRET, 1_000_000);
        assert_eq!(
            verify(body, &h, SECRET, DEFAULT_TOLERANCE, 1_000_100),
            Ok(())
        );
        assert_eq!(
            verify(
                br#"{"id":"evt_1","type":"order.refunded"}"#,
                &h,
                SECRET,
                DEFAULT_TOLERANCE,
                1_000_000
            ),
            Err(VerifyError::SignatureMismatch)
        );
        assert_eq!(
            verify(
                body,
                &h,
                b"another-secret-0123456",
                DEFAULT_TOLERANCE,
                1_000_000
            ),
            Err(VerifyError::SignatureMismatch)
        );
        // The timestamp is signed: moving it breaks the signature.
        let moved = h.replace("t=1000000", "t=1000001");
        assert_eq!(
            verify(body, &moved, SECRET, DEFAULT_TOLERANCE, 1_000_000),
            Err(VerifyError::SignatureMismatch)
        );
        assert_eq!(
            verify(body, &h, SECRET, DEFAULT_TOLERANCE, 1_000_301),
            Err(VerifyError::TimestampOutOfTolerance)
        );
        assert_eq!(
            verify(body, &h, SECRET, DEFAULT_TOLERANCE, 999_699),
            Err(VerifyError::TimestampOutOfTolerance)
        );
        // Secret rotation: the old and the new signature side by side.
        let old = sign(body, b"old-secret-0123456789", 1_000_000);
        let both = format!("{h},v1={}", old.split("v1=").nth(1).unwrap());
        assert_eq!(
            verify(
                body,
                &both,
                b"old-secret-0123456789",
                DEFAULT_TOLERANCE,
                1_000_000
            ),
            Ok(())
        );
    }

    #[test]
    fn malformed_headers() {
        for h in [
            "",
            "garbage",
            "t=abc,v1=00",
            "v1=00",
            "t=1",
            "t=1,t=2,v1=00",
        ] {
            assert_eq!(
                verify(b"x", h, SECRET, DEFAULT_TOLERANCE, 1),
                Err(VerifyError::MalformedHeader),
                "{h:?}"
            );
        }
        assert_eq!(
            verify(b"x", "t=1,v1=zz", SECRET, DEFAULT_TOLERANCE, 1),
            Err(VerifyError::SignatureMismatch)
        );
    }

    #[test]
    fn backoff_doubles_and_caps() {
        assert_eq!(backoff(1), Duration::from_secs(30));
        assert_eq!(backoff(2), Duration::from_secs(60));
        assert_eq!(backoff(5), Duration::from_secs(480));
        assert_eq!(backoff(40), Duration::from_secs(6 * 3600));
        let total: Duration = (1..DEFAULT_MAX_ATTEMPTS).map(backoff).sum();
        assert!(total > Duration::from_secs(12 * 3600) && total < Duration::from_secs(48 * 3600));
    }

    #[test]
    fn secrets_are_checked_and_hidden() {
        assert!(WebhookSecret::new("short").is_err());
        let s = WebhookSecret::new("whsec_0123456789abcdef").unwrap();
        assert!(!format!("{s:?}").contains("0123"));
    }
}
