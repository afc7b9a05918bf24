//! Recorded state changes, which double as the webhook outbox, their
//! delivery attempts, and the leases reconcile passes take on due rows.

use serde::Serialize;

use super::order::OrderStatus;

/// Kinds of recorded state changes (also the future webhook event types).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum EventType {
    /// `pending → paid`.
    #[serde(rename = "order.paid")]
    Paid,
    /// `refunded_fen` grew, not to the total.
    #[serde(rename = "order.partially_refunded")]
    PartiallyRefunded,
    /// `paid → refunded`.
    #[serde(rename = "order.refunded")]
    Refunded,
    /// `pending → closed` (or `closing → closed`).
    #[serde(rename = "order.closed")]
    Closed,
    /// `closing/closed → paid`: the buyer paid an order we had closed.
    #[serde(rename = "order.paid_after_close")]
    PaidAfterClose,
}

impl EventType {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Paid => "order.paid",
            EventType::PartiallyRefunded => "order.partially_refunded",
            EventType::Refunded => "order.refunded",
            EventType::Closed => "order.closed",
            EventType::PaidAfterClose => "order.paid_after_close",
        }
    }

    /// Parses the stored name.
    pub fn parse(s: &str) -> Option<Self> {
        [
            EventType::Paid,
            EventType::PartiallyRefunded,
            EventType::Refunded,
            EventType::Closed,
            EventType::PaidAfterClose,
        ]
        .into_iter()
        .find(|e| e.as_str() == s)
    }
}

/// A recorded state change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderEvent {
    /// Event id (`evt_…`), unique: receivers de-duplicate on it.
    pub id: String,
    /// The order.
    pub order_id: String,
    /// What happened.
    pub event_type: EventType,
    /// Status before.
    pub from_status: OrderStatus,
    /// Status after.
    pub to_status: OrderStatus,
    /// `refunded_fen` after.
    pub refunded_fen: i64,
    /// What reported it.
    pub source: String,
    /// The notification that caused it.
    pub notify_id: Option<String>,
    /// When.
    pub created_at: i64,
    /// Where its webhook delivery stands (the event is also the outbox row).
    pub webhook_state: WebhookState,
    /// Delivery attempts made so far.
    pub attempts: i64,
    /// When the next attempt is due (or until when the current attempt holds
    /// its lease); `None` once delivered or given up.
    pub next_attempt_at: Option<i64>,
    /// When the merchant's endpoint answered 2xx.
    pub delivered_at: Option<i64>,
    /// What went wrong on the last failed attempt.
    pub last_error: Option<String>,
}

/// Delivery state of an event's webhook.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WebhookState {
    /// Not delivered yet; retried while attempts remain.
    Pending,
    /// The merchant's endpoint answered 2xx.
    Delivered,
    /// The retry budget ran out (`zhifu webhooks resend` re-arms it).
    Failed,
}

impl WebhookState {
    /// Stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookState::Pending => "pending",
            WebhookState::Delivered => "delivered",
            WebhookState::Failed => "failed",
        }
    }

    /// Parses the stored name.
    pub fn parse(s: &str) -> Option<Self> {
        [
            WebhookState::Pending,
            WebhookState::Delivered,
            WebhookState::Failed,
        ]
        .into_iter()
        .find(|w| w.as_str() == s)
    }
}

/// Filter of [`crate::Store::query_events`] (newest first).
#[derive(Debug, Clone, Default)]
pub struct EventQuery {
    /// Only events in this delivery state.
    pub webhook_state: Option<WebhookState>,
    /// Only events of this order.
    pub order_id: Option<String>,
    /// At most this many.
    pub limit: i64,
}

/// What a reconcile pass asks the store for: rows that are due, each taken
/// with a lease so that concurrent passes never work on the same row.
#[derive(Debug, Clone, Copy)]
pub struct ReconcileClaim {
    /// Now, epoch ms.
    pub now: i64,
    /// Only rows created at or before this time (younger ones may still get
    /// their notification).
    pub created_before: i64,
    /// The lease: the row is not due again before this time.
    pub lease_until: i64,
    /// At most this many rows.
    pub limit: i64,
}

/// One webhook delivery attempt, as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryAttempt {
    /// Record id.
    pub id: String,
    /// The event.
    pub event_id: String,
    /// 1 for the first attempt.
    pub attempt: i64,
    /// When it was made.
    pub at: i64,
    /// The HTTP status the endpoint answered, if it answered.
    pub http_status: Option<i64>,
    /// Why it failed, if it did.
    pub error: Option<String>,
    /// How long it took.
    pub duration_ms: i64,
}

/// A finished delivery attempt, for [`crate::Store::finish_delivery`].
#[derive(Debug, Clone)]
pub struct NewDeliveryAttempt {
    /// When it was made.
    pub at: i64,
    /// The HTTP status the endpoint answered, if it answered.
    pub http_status: Option<i64>,
    /// Why it failed, if it did.
    pub error: Option<String>,
    /// How long it took.
    pub duration_ms: i64,
}

/// What happens to an event after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryNext {
    /// It was delivered.
    Delivered,
    /// Try again at this time.
    RetryAt(i64),
    /// The retry budget ran out.
    GiveUp,
}
