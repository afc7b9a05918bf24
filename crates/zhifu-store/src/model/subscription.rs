//! Subscriptions: the merchant's side of an Alipay recurring agreement
//! (周期扣款), the order that charged each period, and the subscription
//! events that double as their webhook outbox.
//!
//! The store decides nothing about periods or dates: the server computes
//! when the next charge is due and hands it in. What the store guarantees
//! is that each step happens once: a subscription leaves
//! `pending_signature` once, each period gets at most one charge order
//! (`subscription_charges` is keyed by subscription and period), a period
//! is counted as charged once, and each of those steps writes exactly one
//! event in its transaction.

use std::fmt;

use serde::Serialize;

use super::outbox::WebhookState;

/// Where a subscription stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SubscriptionStatus {
    /// Created; the buyer has not signed the agreement (as far as a
    /// verified message from Alipay says).
    PendingSignature,
    /// Signed (`NORMAL` at Alipay); periods are charged when due.
    Active,
    /// A period's charge failed and its retries ran out: nothing more is
    /// charged until the merchant acts (cancel, or create a new one).
    PastDue,
    /// Ended: unsigned by the buyer, the merchant or Alipay.
    Canceled,
    /// Every period of `max_periods` was charged.
    Completed,
}

impl SubscriptionStatus {
    /// Every status.
    pub const ALL: [SubscriptionStatus; 5] = [
        SubscriptionStatus::PendingSignature,
        SubscriptionStatus::Active,
        SubscriptionStatus::PastDue,
        SubscriptionStatus::Canceled,
        SubscriptionStatus::Completed,
    ];

    /// Stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            SubscriptionStatus::PendingSignature => "pending_signature",
            SubscriptionStatus::Active => "active",
            SubscriptionStatus::PastDue => "past_due",
            SubscriptionStatus::Canceled => "canceled",
            SubscriptionStatus::Completed => "completed",
        }
    }

    /// Parses the stored and wire name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// Whether nothing can change it any more.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            SubscriptionStatus::Canceled | SubscriptionStatus::Completed
        )
    }
}

impl fmt::Display for SubscriptionStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A stored subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    /// Public id (`sub_…`).
    pub id: String,
    /// The merchant's agreement number sent to Alipay.
    pub external_agreement_no: String,
    /// Alipay's agreement number, once signed.
    pub agreement_no: Option<String>,
    /// Where it stands.
    pub status: SubscriptionStatus,
    /// Title of every charge.
    pub subject: String,
    /// Charged each period, in fen.
    pub amount_fen: i64,
    /// `day` or `month`.
    pub period_unit: String,
    /// How many units per period.
    pub period_every: i64,
    /// The first charge's date, `yyyy-MM-dd` (Beijing).
    pub first_charge_date: String,
    /// At most this many periods are charged.
    pub max_periods: Option<i64>,
    /// How the buyer signs (`page`, `wap`, `app`).
    pub channel: String,
    /// Where Alipay sends the buyer after signing.
    pub return_url: Option<String>,
    /// Merchant metadata (JSON text).
    pub metadata: Option<String>,
    /// The buyer (Alipay user id), from the signing notification.
    pub buyer_id: Option<String>,
    /// Periods charged so far.
    pub periods_charged: i64,
    /// The period to charge next (1-based).
    pub next_period: i64,
    /// When the next charge (or the retry of a failed one) is due.
    pub next_charge_at: Option<i64>,
    /// Failed attempts at the current period.
    pub failed_attempts: i64,
    /// A charging pass's claim.
    pub lease_until: Option<i64>,
    /// The `Idempotency-Key` it was created with.
    pub idempotency_key: Option<String>,
    /// Hash of the creating request.
    pub request_hash: Option<String>,
    /// Creation time.
    pub created_at: i64,
    /// Last change.
    pub updated_at: i64,
    /// When the agreement was signed.
    pub activated_at: Option<i64>,
    /// When it ended.
    pub canceled_at: Option<i64>,
}

/// What [`crate::Store::create_subscription`] needs.
#[derive(Debug, Clone)]
pub struct NewSubscription {
    /// Public id.
    pub id: String,
    /// The merchant's agreement number.
    pub external_agreement_no: String,
    /// Title.
    pub subject: String,
    /// Per period, in fen (> 0).
    pub amount_fen: i64,
    /// `day` or `month`.
    pub period_unit: String,
    /// Units per period (> 0).
    pub period_every: i64,
    /// First charge date, `yyyy-MM-dd`.
    pub first_charge_date: String,
    /// When the first charge is due.
    pub first_charge_at: i64,
    /// Most periods.
    pub max_periods: Option<i64>,
    /// Signing channel.
    pub channel: String,
    /// Return URL after signing.
    pub return_url: Option<String>,
    /// Metadata (JSON text).
    pub metadata: Option<String>,
    /// `Idempotency-Key`.
    pub idempotency_key: Option<String>,
    /// Hash of the request body.
    pub request_hash: Option<String>,
    /// Creation time.
    pub created_at: i64,
}

/// Result of [`crate::Store::create_subscription`].
#[derive(Debug, Clone)]
pub enum CreateSubscriptionOutcome {
    /// Inserted.
    Created(Subscription),
    /// The idempotency key was used before; this is that subscription.
    Existing(Subscription),
}

/// Filter and page of [`crate::Store::list_subscriptions`].
#[derive(Debug, Clone, Default)]
pub struct SubscriptionQuery {
    /// Only this status.
    pub status: Option<SubscriptionStatus>,
    /// Page size.
    pub limit: i64,
    /// Strictly older than this `(created_at, id)`.
    pub after: Option<(i64, String)>,
}

/// How a period's charge ended, for [`crate::Store::record_charge`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChargeResult {
    /// The period's order is paid: count it, and charge the next period at
    /// `next_charge_at` (`None` when this was the last period).
    Paid {
        /// The paid order.
        order_id: String,
        /// When the next period is due.
        next_charge_at: Option<i64>,
    },
    /// Alipay refused the charge for good (this attempt): retry at
    /// `retry_at`, or with `None` the retries ran out (`past_due`).
    Failed {
        /// The period's order.
        order_id: String,
        /// When to try again.
        retry_at: Option<i64>,
        /// Alipay's reason, for the event.
        reason: String,
    },
}

/// Kinds of subscription events (also their webhook types).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum SubscriptionEventType {
    /// The buyer signed.
    #[serde(rename = "subscription.active")]
    Active,
    /// A period was charged.
    #[serde(rename = "subscription.charged")]
    Charged,
    /// A period's charge failed (it may be retried).
    #[serde(rename = "subscription.payment_failed")]
    PaymentFailed,
    /// It ended.
    #[serde(rename = "subscription.canceled")]
    Canceled,
}

impl SubscriptionEventType {
    /// Every kind.
    pub const ALL: [SubscriptionEventType; 4] = [
        SubscriptionEventType::Active,
        SubscriptionEventType::Charged,
        SubscriptionEventType::PaymentFailed,
        SubscriptionEventType::Canceled,
    ];

    /// Stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            SubscriptionEventType::Active => "subscription.active",
            SubscriptionEventType::Charged => "subscription.charged",
            SubscriptionEventType::PaymentFailed => "subscription.payment_failed",
            SubscriptionEventType::Canceled => "subscription.canceled",
        }
    }

    /// Parses the stored name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|e| e.as_str() == s)
    }
}

/// A recorded subscription change, which is also its webhook outbox row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionEvent {
    /// Event id (`evt_…`).
    pub id: String,
    /// The subscription.
    pub subscription_id: String,
    /// What happened.
    pub event_type: SubscriptionEventType,
    /// The period's order (charged, payment_failed).
    pub order_id: Option<String>,
    /// The period (charged, payment_failed).
    pub period: Option<i64>,
    /// When.
    pub created_at: i64,
    /// Webhook delivery state.
    pub webhook_state: WebhookState,
    /// Attempts so far.
    pub attempts: i64,
    /// Next attempt (or the lease of one in flight).
    pub next_attempt_at: Option<i64>,
    /// When delivered.
    pub delivered_at: Option<i64>,
    /// Last failure.
    pub last_error: Option<String>,
}
