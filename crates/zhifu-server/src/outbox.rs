//! Delivery of the webhook outbox: how the merchant's own function learns
//! "paid".
//!
//! Every state change writes an event in the same transaction (the outbox,
//! `order_events` in `zhifu_store`). After the commit the event is delivered
//! once, at once ([`Outbox::flush_order`], the after-commit hook of
//! [`crate::payments`]), as a JSON `POST` to `ZHIFU_WEBHOOK_URL` signed as
//! [`crate::webhook`] describes; a failed delivery is retried by the
//! reconcile pass ([`crate::jobs::reconcile`]) with exponential backoff until
//! the endpoint answers 2xx or [`WebhookConfig::max_attempts`] is used up.
//! Each delivery of one event carries the same event id, so receivers
//! de-duplicate on it.
//!
//! The first attempt is made inline, before the request that caused the
//! change is answered: on a function platform nothing may run after the
//! response (the instance is frozen), and the outbox keeps it correct
//! either way. A slow endpoint therefore delays that answer by at most
//! [`crate::config::DELIVERY_TIMEOUT`]; Alipay retries a notification it
//! considers unanswered, and the retry is a recorded no-op.
//!
//! Every delivery works on an event *claimed* with a lease, so two
//! instances never send the same attempt.

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use alipay::Clock;
use zhifu_store::{
    DeliveryNext, EventQuery, NewDeliveryAttempt, OrderEvent, Store, StoreError, SubscriptionEvent,
    WebhookState,
};

/// What one POST to the merchant's endpoint came to.
struct Posted {
    at: i64,
    http_status: Option<u16>,
    error: Option<String>,
    duration_ms: i64,
}

use crate::config::WebhookConfig;
use crate::domain::epoch_ms;
use crate::error::chain;
use crate::metrics::{ACTIVITY_TARGET, Metrics};
use crate::{view, webhook};

/// Lease of one delivery attempt: longer than the delivery timeout plus the
/// bookkeeping, so an attempt in flight is never doubled.
pub const ATTEMPT_LEASE_MS: i64 = 60_000;

/// Most events one flush delivers (an order has at most a handful).
const FLUSH_LIMIT: i64 = 20;

/// How one delivery attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryResult {
    /// The event.
    pub event_id: String,
    /// Its state afterwards.
    pub state: WebhookState,
    /// The endpoint's HTTP status, if it answered.
    pub http_status: Option<u16>,
    /// Why it failed, if it did.
    pub error: Option<String>,
}

/// Delivers outbox events to the merchant's endpoint. Holds the HTTP
/// client, built on first use so a cold start that delivers nothing never
/// pays for loading the system roots.
#[derive(Debug)]
pub struct Outbox {
    store: Arc<dyn Store>,
    config: WebhookConfig,
    metrics: Arc<Metrics>,
    clock: Arc<dyn Clock>,
    http: OnceLock<reqwest::Client>,
}

impl Outbox {
    /// An outbox sender over `store`, delivering as `config` says.
    pub fn new(
        store: Arc<dyn Store>,
        config: WebhookConfig,
        metrics: Arc<Metrics>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Outbox {
            store,
            config,
            metrics,
            clock,
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

    fn now_ms(&self) -> i64 {
        epoch_ms(self.clock.now())
    }

    /// Delivers one event that the caller has claimed, records the attempt
    /// and schedules the next one (or gives up).
    ///
    /// # Errors
    /// Store failures (the lease then expires and the event is retried).
    pub async fn deliver_claimed(&self, e: &OrderEvent) -> Result<DeliveryResult, StoreError> {
        let current = self.store.get_order(&e.order_id).await?;
        let body = view::webhook_payload(e, current.as_ref()).to_string();
        let Posted {
            at,
            http_status,
            error,
            duration_ms,
        } = self.post(&e.id, e.event_type.as_str(), body).await;
        let next = self.next_after(e.attempts, error.is_none());
        let attempt = NewDeliveryAttempt {
            at,
            http_status: http_status.map(i64::from),
            error: error.clone(),
            duration_ms,
        };
        let done = self.store.finish_delivery(&e.id, &attempt, next).await?;
        self.metrics.webhook_attempt(done.webhook_state.as_str());
        match &error {
            None => tracing::info!(
                target: ACTIVITY_TARGET,
                kind = "webhook",
                event_id = %e.id,
                event_type = e.event_type.as_str(),
                url = %loggable_url(&self.config.url),
                http_status,
                ms = duration_ms,
                attempt = done.attempts,
                state = done.webhook_state.as_str(),
                "webhook delivered"
            ),
            Some(why) => tracing::warn!(
                target: ACTIVITY_TARGET,
                kind = "webhook",
                event_id = %e.id,
                event_type = e.event_type.as_str(),
                url = %loggable_url(&self.config.url),
                http_status,
                ms = duration_ms,
                attempt = done.attempts,
                state = done.webhook_state.as_str(),
                error = %why,
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

    /// One signed POST of `body` to the merchant's endpoint.
    async fn post(&self, event_id: &str, event_type: &str, body: String) -> Posted {
        let at = self.now_ms();
        let t = at / 1000;
        let header = webhook::sign(body.as_bytes(), self.config.secret.as_bytes(), t);
        let standard =
            webhook::sign_standard(event_id, body.as_bytes(), self.config.secret.as_bytes(), t);
        let started = Instant::now();
        let sent = self
            .http()
            .post(&self.config.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(webhook::SIGNATURE_HEADER, header)
            .header(webhook::EVENT_ID_HEADER, event_id)
            .header("Zhifu-Event-Type", event_type)
            .header(webhook::STANDARD_ID_HEADER, event_id)
            .header(webhook::STANDARD_TIMESTAMP_HEADER, t.to_string())
            .header(webhook::STANDARD_SIGNATURE_HEADER, standard)
            .body(body)
            .send()
            .await;
        let duration_ms = crate::domain::duration_ms(started.elapsed());
        let (http_status, error) = match sent {
            Ok(resp) if resp.status().is_success() => (Some(resp.status().as_u16()), None),
            Ok(resp) => (
                Some(resp.status().as_u16()),
                Some(format!("HTTP {}", resp.status().as_u16())),
            ),
            // `without_url`: the URL may carry the merchant's own token.
            Err(err) => (None, Some(chain(&err.without_url()))),
        };
        Posted {
            at,
            http_status,
            error,
            duration_ms,
        }
    }

    /// What follows attempt number `attempts + 1`.
    fn next_after(&self, attempts: i64, delivered: bool) -> DeliveryNext {
        if delivered {
            DeliveryNext::Delivered
        } else if attempts + 1 >= self.config.max_attempts {
            DeliveryNext::GiveUp
        } else {
            let wait = crate::domain::duration_ms(webhook::backoff(attempts + 1));
            DeliveryNext::RetryAt(self.now_ms().saturating_add(wait))
        }
    }

    /// Delivers one claimed subscription event (same signatures, headers
    /// and retry schedule as order events).
    ///
    /// # Errors
    /// Store failures (the lease then expires and the event is retried).
    pub async fn deliver_subscription_event(
        &self,
        e: &SubscriptionEvent,
    ) -> Result<DeliveryResult, StoreError> {
        let current = self.store.get_subscription(&e.subscription_id).await?;
        let order = match &e.order_id {
            Some(id) => self.store.get_order(id).await?,
            None => None,
        };
        let body =
            view::subscription_webhook_payload(e, current.as_ref(), order.as_ref()).to_string();
        let posted = self.post(&e.id, e.event_type.as_str(), body).await;
        let next = self.next_after(e.attempts, posted.error.is_none());
        self.store
            .finish_subscription_event_delivery(&e.id, posted.at, posted.error.as_deref(), next)
            .await?;
        let state = match next {
            DeliveryNext::Delivered => WebhookState::Delivered,
            DeliveryNext::RetryAt(_) => WebhookState::Pending,
            DeliveryNext::GiveUp => WebhookState::Failed,
        };
        self.metrics.webhook_attempt(state.as_str());
        tracing::info!(
            target: ACTIVITY_TARGET,
            kind = "webhook",
            event_id = %e.id,
            event_type = e.event_type.as_str(),
            url = %loggable_url(&self.config.url),
            http_status = posted.http_status,
            ms = posted.duration_ms,
            attempt = e.attempts + 1,
            state = state.as_str(),
            error = posted.error.as_deref().unwrap_or(""),
            "subscription webhook attempt"
        );
        Ok(DeliveryResult {
            event_id: e.id.clone(),
            state,
            http_status: posted.http_status,
            error: posted.error,
        })
    }

    /// Right after a subscription change commits: tries its due events
    /// once. Failures stay in the outbox for the reconcile pass.
    pub async fn flush_subscription(&self, subscription_id: &str) {
        let now = self.now_ms();
        let claimed = self
            .store
            .claim_due_subscription_events(
                now,
                now + ATTEMPT_LEASE_MS,
                FLUSH_LIMIT,
                Some(subscription_id),
            )
            .await;
        match claimed {
            Ok(events) => {
                for e in events {
                    if let Err(err) = self.deliver_subscription_event(&e).await {
                        tracing::warn!(error = %chain(&err), "webhook attempt not recorded");
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %chain(&e), "outbox not read; the reconcile pass will deliver");
            }
        }
    }

    /// Delivers up to `limit` due subscription events (the reconcile pass).
    ///
    /// # Errors
    /// Store failures while claiming.
    pub async fn deliver_due_subscription_events(&self, limit: i64) -> Result<usize, StoreError> {
        let now = self.now_ms();
        let events = self
            .store
            .claim_due_subscription_events(now, now + ATTEMPT_LEASE_MS, limit, None)
            .await?;
        let mut delivered = 0;
        for e in &events {
            if self.deliver_subscription_event(e).await?.state == WebhookState::Delivered {
                delivered += 1;
            }
        }
        Ok(delivered)
    }

    /// Where deliveries go, as it may be shown ([`loggable_url`]).
    pub fn loggable_url(&self) -> String {
        loggable_url(&self.config.url)
    }

    /// When the first attempt is made.
    pub fn delivery(&self) -> crate::config::WebhookDelivery {
        self.config.delivery()
    }

    /// Right after a commit: tries once, at once, every due event of the
    /// order (normally just the new ones). Failures stay in the outbox for
    /// the reconcile pass; nothing here fails the caller.
    pub async fn flush_order(&self, order_id: &str) {
        let pending = match self
            .store
            .query_events(&EventQuery {
                webhook_state: Some(WebhookState::Pending),
                order_id: Some(order_id.to_owned()),
                limit: FLUSH_LIMIT,
            })
            .await
        {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(error = %chain(&e), "outbox not read; the reconcile pass will deliver");
                return;
            }
        };
        // Oldest first, so a receiver normally sees `paid` before `refunded`.
        for e in pending.iter().rev() {
            let now = self.now_ms();
            let claimed = self
                .store
                .claim_event(&e.id, now, now + ATTEMPT_LEASE_MS, false)
                .await;
            if let Ok(Some(e)) = claimed
                && let Err(err) = self.deliver_claimed(&e).await
            {
                tracing::warn!(error = %chain(&err), "webhook attempt not recorded");
            }
        }
    }

    /// Claims up to `limit` events whose delivery is due, leased for
    /// `lease_ms` (at least [`ATTEMPT_LEASE_MS`]).
    ///
    /// # Errors
    /// Store failures.
    pub async fn claim_due(
        &self,
        lease_ms: i64,
        limit: i64,
    ) -> Result<Vec<OrderEvent>, StoreError> {
        let now = self.now_ms();
        self.store
            .claim_due_events(now, now + ATTEMPT_LEASE_MS.max(lease_ms), limit)
            .await
    }

    /// Delivers one event now, an order's or a subscription's, whatever its
    /// state or schedule (`zhifu webhooks resend`): a delivered or failed
    /// event is re-armed with a fresh retry budget. `Ok(None)` when the
    /// event is unknown.
    ///
    /// # Errors
    /// Store failures.
    pub async fn resend(&self, event_id: &str) -> Result<Option<DeliveryResult>, StoreError> {
        let now = self.now_ms();
        match self
            .store
            .claim_event(event_id, now, now + ATTEMPT_LEASE_MS, true)
            .await?
        {
            Some(e) => self.deliver_claimed(&e).await.map(Some),
            None => match self
                .store
                .claim_subscription_event_for_resend(event_id, now + ATTEMPT_LEASE_MS)
                .await?
            {
                Some(e) => self.deliver_subscription_event(&e).await.map(Some),
                None => Ok(None),
            },
        }
    }
}

/// The webhook URL as logs and the activity feed show it: scheme, host,
/// port and path only. A merchant may put a token in the query string or
/// the user part, and those are secrets.
pub fn loggable_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) => {
            let host = u.host_str().unwrap_or("");
            match u.port() {
                Some(port) => format!("{}://{host}:{port}{}", u.scheme(), u.path()),
                None => format!("{}://{host}{}", u.scheme(), u.path()),
            }
        }
        Err(_) => "(unparseable URL)".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::loggable_url;

    #[test]
    fn loggable_url_drops_credentials_and_query() {
        assert_eq!(
            loggable_url("https://user:pw@example.com:8443/hooks/zhifu?token=s3cret#x"),
            "https://example.com:8443/hooks/zhifu"
        );
        assert_eq!(
            loggable_url("http://127.0.0.1:3000/"),
            "http://127.0.0.1:3000/"
        );
    }
}
