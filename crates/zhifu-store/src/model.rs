//! Domain records. Money in fen (`i64`), times in epoch milliseconds (`i64`).

use std::fmt;

use serde::Serialize;

/// An order's payment state as the merchant sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    /// Created, not paid yet.
    Pending,
    /// Paid (possibly partially refunded: see `refunded_fen`).
    Paid,
    /// Closed unpaid (by the merchant, by expiry, or by Alipay).
    Closed,
    /// Paid and then refunded in full.
    Refunded,
}

impl OrderStatus {
    /// Every status, in lifecycle order.
    pub const ALL: [OrderStatus; 4] = [
        OrderStatus::Pending,
        OrderStatus::Paid,
        OrderStatus::Closed,
        OrderStatus::Refunded,
    ];

    /// The stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Pending => "pending",
            OrderStatus::Paid => "paid",
            OrderStatus::Closed => "closed",
            OrderStatus::Refunded => "refunded",
        }
    }

    /// Parses the stored and wire name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }
}

impl fmt::Display for OrderStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A stored order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    /// Public id (`ord_…`).
    pub id: String,
    /// The merchant order number sent to Alipay.
    pub out_trade_no: String,
    /// Title.
    pub subject: String,
    /// Description.
    pub body: Option<String>,
    /// Amount in fen.
    pub total_fen: i64,
    /// Refunded so far, as Alipay reported it, in fen.
    pub refunded_fen: i64,
    /// Refunds sent to Alipay whose outcome is unknown, in fen.
    pub refund_pending_fen: i64,
    /// Payment state.
    pub status: OrderStatus,
    /// Alipay's trade number, once known.
    pub trade_no: Option<String>,
    /// Masked buyer login.
    pub buyer_logon_id: Option<String>,
    /// Buyer's user id / open id.
    pub buyer_id: Option<String>,
    /// Channel of the last payment attempt.
    pub channel: Option<String>,
    /// Merchant metadata (JSON text).
    pub metadata: Option<String>,
    /// The `Idempotency-Key` the order was created with.
    pub idempotency_key: Option<String>,
    /// Hash of the creating request, to tell a retry from a key reuse.
    pub request_hash: Option<String>,
    /// Creation time.
    pub created_at: i64,
    /// Last change.
    pub updated_at: i64,
    /// Deadline for payment.
    pub expires_at: i64,
    /// When it was paid.
    pub paid_at: Option<i64>,
    /// When it was closed.
    pub closed_at: Option<i64>,
}

/// What [`crate::Store::create_order`] needs.
#[derive(Debug, Clone)]
pub struct NewOrder {
    /// Public id.
    pub id: String,
    /// Merchant order number.
    pub out_trade_no: String,
    /// Title.
    pub subject: String,
    /// Description.
    pub body: Option<String>,
    /// Amount in fen (> 0).
    pub total_fen: i64,
    /// Metadata (JSON text).
    pub metadata: Option<String>,
    /// `Idempotency-Key`.
    pub idempotency_key: Option<String>,
    /// Hash of the request body.
    pub request_hash: Option<String>,
    /// Creation time.
    pub created_at: i64,
    /// Payment deadline.
    pub expires_at: i64,
}

/// Result of [`crate::Store::create_order`].
#[derive(Debug, Clone)]
pub enum CreateOrderOutcome {
    /// Inserted.
    Created(Order),
    /// The idempotency key was used before; this is that order.
    Existing(Order),
}

/// Filter and page of [`crate::Store::list_orders`].
#[derive(Debug, Clone, Default)]
pub struct OrderQuery {
    /// Only this status.
    pub status: Option<OrderStatus>,
    /// Page size.
    pub limit: i64,
    /// Orders strictly older than this `(created_at, id)`.
    pub after: Option<(i64, String)>,
}

/// The state of the trade as Alipay reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TradeState {
    /// `WAIT_BUYER_PAY`.
    WaitBuyerPay,
    /// `TRADE_SUCCESS`.
    Success,
    /// `TRADE_FINISHED`.
    Finished,
    /// `TRADE_CLOSED`.
    Closed,
}

impl TradeState {
    /// Alipay's name.
    pub fn as_str(self) -> &'static str {
        match self {
            TradeState::WaitBuyerPay => "WAIT_BUYER_PAY",
            TradeState::Success => "TRADE_SUCCESS",
            TradeState::Finished => "TRADE_FINISHED",
            TradeState::Closed => "TRADE_CLOSED",
        }
    }

    fn is_paid(self) -> bool {
        matches!(self, TradeState::Success | TradeState::Finished)
    }
}

/// Where a verified update came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateSource {
    /// An asynchronous notification.
    Notify,
    /// An `alipay.trade.query` answer.
    Query,
    /// An `alipay.trade.refund` / refund-query answer.
    Refund,
    /// A successful `alipay.trade.close` (or a trade Alipay never created).
    Close,
}

impl UpdateSource {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            UpdateSource::Notify => "notify",
            UpdateSource::Query => "query",
            UpdateSource::Refund => "refund",
            UpdateSource::Close => "close",
        }
    }
}

/// A verified report from Alipay about one order's trade.
#[derive(Debug, Clone)]
pub struct TradeUpdate {
    /// The order (already matched on `out_trade_no`, app, seller and amount).
    pub order_id: String,
    /// What reported it.
    pub source: UpdateSource,
    /// The notification id, for notifications.
    pub notify_id: Option<String>,
    /// Reported trade state.
    pub trade_state: TradeState,
    /// Reported trade number.
    pub trade_no: Option<String>,
    /// Reported masked buyer login.
    pub buyer_logon_id: Option<String>,
    /// Reported buyer id.
    pub buyer_id: Option<String>,
    /// Reported payment time.
    pub paid_at: Option<i64>,
    /// Reported cumulative refunded amount, in fen.
    pub refund_fee: Option<i64>,
    /// When we processed it.
    pub at: i64,
}

impl TradeUpdate {
    pub(crate) fn reports_payment(&self) -> bool {
        self.trade_state.is_paid()
    }
}

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
    /// `pending → closed`.
    #[serde(rename = "order.closed")]
    Closed,
}

impl EventType {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Paid => "order.paid",
            EventType::PartiallyRefunded => "order.partially_refunded",
            EventType::Refunded => "order.refunded",
            EventType::Closed => "order.closed",
        }
    }

    /// Parses the stored name.
    pub fn parse(s: &str) -> Option<Self> {
        [
            EventType::Paid,
            EventType::PartiallyRefunded,
            EventType::Refunded,
            EventType::Closed,
        ]
        .into_iter()
        .find(|e| e.as_str() == s)
    }
}

/// Why an update was not applied although it verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AnomalyReason {
    /// The signature does not verify.
    BadSignature,
    /// The body could not be parsed or lacks required fields.
    Malformed,
    /// No order has this `out_trade_no`.
    UnknownOrder,
    /// `app_id` is not ours.
    AppIdMismatch,
    /// `seller_id` is not the configured payee.
    SellerIdMismatch,
    /// `total_amount` differs from the order's.
    AmountMismatch,
    /// `trade_no` differs from the one already recorded for the order.
    TradeNoMismatch,
    /// A `TRADE_CLOSED` for a paid order without a full refund behind it.
    ClosedAfterPaid,
    /// A payment for an order we had closed: money arrived for a closed order.
    PaidAfterClose,
    /// A refund total above the order's amount.
    RefundExceedsTotal,
    /// A refund total below what was already recorded (states never go back).
    RefundWentBackwards,
}

impl AnomalyReason {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            AnomalyReason::BadSignature => "bad_signature",
            AnomalyReason::Malformed => "malformed",
            AnomalyReason::UnknownOrder => "unknown_order",
            AnomalyReason::AppIdMismatch => "app_id_mismatch",
            AnomalyReason::SellerIdMismatch => "seller_id_mismatch",
            AnomalyReason::AmountMismatch => "amount_mismatch",
            AnomalyReason::TradeNoMismatch => "trade_no_mismatch",
            AnomalyReason::ClosedAfterPaid => "closed_after_paid",
            AnomalyReason::PaidAfterClose => "paid_after_close",
            AnomalyReason::RefundExceedsTotal => "refund_exceeds_total",
            AnomalyReason::RefundWentBackwards => "refund_went_backwards",
        }
    }
}

/// What a notification (or other verified message) led to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The order changed.
    Applied,
    /// Nothing to change (a redelivery, or a state we already have).
    Duplicate,
    /// Refused; the order was left as it was.
    Anomaly(String),
}

impl Outcome {
    /// Stored name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Outcome::Applied => "applied",
            Outcome::Duplicate => "duplicate",
            Outcome::Anomaly(_) => "anomaly",
        }
    }
}

/// A message to record with [`crate::Store::apply_trade_update`] or
/// [`crate::Store::record_notification`].
#[derive(Debug, Clone)]
pub struct NewNotification {
    /// Record id.
    pub id: String,
    /// The order, when one was identified.
    pub order_id: Option<String>,
    /// The `out_trade_no` the message named.
    pub out_trade_no: Option<String>,
    /// `notify_id`.
    pub notify_id: Option<String>,
    /// What kind of message.
    pub source: UpdateSource,
    /// Reported `trade_status`.
    pub trade_status: Option<String>,
    /// For messages recorded without applying: the reason they were refused.
    pub anomaly: Option<String>,
    /// The message's fields (JSON text), for audit.
    pub payload: Option<String>,
    /// Receipt time.
    pub received_at: i64,
}

/// A recorded message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotificationRecord {
    /// Record id.
    pub id: String,
    /// The order.
    pub order_id: Option<String>,
    /// The `out_trade_no` it named.
    pub out_trade_no: Option<String>,
    /// `notify_id`.
    pub notify_id: Option<String>,
    /// `notify`, `query`, `refund` or `close`.
    pub source: String,
    /// Reported `trade_status`.
    pub trade_status: Option<String>,
    /// `applied`, `duplicate` or `anomaly`.
    pub outcome: String,
    /// Why it was an anomaly.
    pub reason: Option<String>,
    /// Its fields (JSON text).
    pub payload: Option<String>,
    /// Receipt time.
    pub received_at: i64,
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

/// Result of [`crate::Store::apply_trade_update`].
#[derive(Debug, Clone)]
pub struct ApplyResult {
    /// What happened.
    pub outcome: Outcome,
    /// The order after the update.
    pub order: Order,
    /// The events written (empty unless [`Outcome::Applied`]).
    pub events: Vec<EventType>,
}

/// Refund state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RefundStatus {
    /// Sent (or about to be sent); outcome not known yet.
    Pending,
    /// Alipay confirmed it.
    Succeeded,
    /// Alipay refused it; the reserved amount is free again.
    Failed,
}

impl RefundStatus {
    /// Stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            RefundStatus::Pending => "pending",
            RefundStatus::Succeeded => "succeeded",
            RefundStatus::Failed => "failed",
        }
    }

    /// Parses the stored name.
    pub fn parse(s: &str) -> Option<Self> {
        [
            RefundStatus::Pending,
            RefundStatus::Succeeded,
            RefundStatus::Failed,
        ]
        .into_iter()
        .find(|r| r.as_str() == s)
    }
}

/// A stored refund.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refund {
    /// Public id (`rf_…`).
    pub id: String,
    /// The order.
    pub order_id: String,
    /// The id sent to Alipay; the same value on every retry of this refund.
    pub out_request_no: String,
    /// Amount in fen.
    pub amount_fen: i64,
    /// Reason shown to the buyer.
    pub reason: Option<String>,
    /// State.
    pub status: RefundStatus,
    /// Alipay's `sub_code` when it failed.
    pub failure_code: Option<String>,
    /// The `Idempotency-Key` it was created with.
    pub idempotency_key: Option<String>,
    /// Hash of the creating request.
    pub request_hash: Option<String>,
    /// Creation time.
    pub created_at: i64,
    /// Last change.
    pub updated_at: i64,
}

/// What [`crate::Store::create_refund`] needs.
#[derive(Debug, Clone)]
pub struct NewRefund {
    /// Public id.
    pub id: String,
    /// The order.
    pub order_id: String,
    /// Alipay refund request id.
    pub out_request_no: String,
    /// Amount in fen (> 0).
    pub amount_fen: i64,
    /// Reason.
    pub reason: Option<String>,
    /// `Idempotency-Key`.
    pub idempotency_key: Option<String>,
    /// Hash of the request body.
    pub request_hash: Option<String>,
    /// Creation time.
    pub created_at: i64,
}

/// Result of [`crate::Store::create_refund`].
#[derive(Debug, Clone)]
pub enum CreateRefundOutcome {
    /// Reserved and inserted.
    Created(Refund),
    /// A refund with this idempotency key (or `out_request_no`) exists.
    Existing(Refund),
    /// The order is not `paid`.
    NotPaid(OrderStatus),
    /// The amount exceeds what is left after refunds done and pending.
    ExceedsRemaining {
        /// What could still be refunded, in fen.
        remaining_fen: i64,
    },
}

/// How a refund ended, as Alipay reported it.
#[derive(Debug, Clone)]
pub enum RefundResult {
    /// Confirmed; `refund_fee` is the trade's cumulative refunded amount as
    /// Alipay reported it (when it did).
    Succeeded {
        /// Cumulative refunded amount, in fen.
        refund_fee: Option<i64>,
        /// The record of the answer that confirmed it.
        record: NewNotification,
    },
    /// Refused with this code.
    Failed {
        /// Alipay's `sub_code`.
        code: String,
        /// When the refusal arrived.
        at: i64,
    },
}
