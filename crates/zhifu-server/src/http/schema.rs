//! The JSON shapes of the HTTP API as OpenAPI schemas. The handlers read
//! bodies field by field ([`super::body::Fields`], so every problem names
//! its field) and answer with [`crate::view`]'s `serde_json` values; these
//! types exist only to describe those shapes to `utoipa`. They are never
//! built: `tests/openapi.rs` calls every operation on a real server and
//! checks each answer against its schema, so a view that grows or loses a
//! field fails there. (`Deserialize` is derived only so that `serde`'s
//! `deny_unknown_fields` reaches the schema as `additionalProperties:
//! false`, which is what the handlers enforce.)

// Never built; the variants are the wire names.
#![allow(dead_code, missing_docs)]

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::Value;
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::{RefOr, Schema};
use utoipa::{PartialSchema, ToSchema};

use super::error::ErrorCode;

/// Money pattern: yuan with at most two decimals, as a string.
pub const MONEY_PATTERN: &str = r"^[0-9]{1,9}(\.[0-9]{1,2})?$";

/// Yuan as a decimal string (`"88.88"`), never a JSON number: amounts are
/// integer fen inside Zhifu and only become text at the edge.
#[derive(Debug, ToSchema, Deserialize)]
#[schema(value_type = String, pattern = r"^[0-9]{1,9}(\.[0-9]{1,2})?$", example = "88.88")]
pub struct Money(String);

/// An RFC 3339 UTC timestamp.
#[derive(Debug, ToSchema)]
#[schema(value_type = String, format = DateTime, example = "2026-01-01T00:00:00Z")]
pub struct Timestamp(String);

impl PartialSchema for ErrorCode {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some(
                "Stable error code; each code has exactly one HTTP status.",
            ))
            .enum_values(Some(ErrorCode::ALL.iter().map(|c| c.as_str())))
            .into()
    }
}

impl ToSchema for ErrorCode {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("ErrorCode")
    }
}

/// Every failure: `{"error":{"code","message"}}`.
#[derive(Debug, ToSchema)]
#[schema(as = Error)]
pub struct ErrorBody {
    error: ErrorDetail,
}

/// The code to branch on and a message for people.
#[derive(Debug, ToSchema)]
pub struct ErrorDetail {
    code: ErrorCode,
    message: String,
}

/// An order's status.
#[derive(Debug, ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum OrderStatus {
    Pending,
    /// Closed by the merchant while the buyer may still hold live payment
    /// parameters; becomes `closed` by itself, or `paid` (with
    /// `paid_after_close`) if the buyer pays.
    Closing,
    Paid,
    Closed,
    Refunded,
}

/// A payment channel.
#[derive(Debug, ToSchema, Deserialize)]
#[schema(rename_all = "snake_case")]
pub enum Channel {
    Page,
    Wap,
    Qr,
    App,
    Jsapi,
}

/// An order.
#[derive(Debug, ToSchema)]
pub struct Order {
    /// `ord_…`
    id: String,
    out_trade_no: String,
    subject: String,
    body: Option<String>,
    total_amount: Money,
    status: OrderStatus,
    refunded_amount: Money,
    refund_pending_amount: Money,
    /// The buyer paid after the order was closed; by default Zhifu refunds it.
    paid_after_close: bool,
    trade_no: Option<String>,
    buyer_logon_id: Option<String>,
    channel: Option<String>,
    paid_at: Option<Timestamp>,
    closed_at: Option<Timestamp>,
    created_at: Timestamp,
    expires_at: Timestamp,
    /// What the order was created with, or `null`.
    #[schema(value_type = Option<Object>)]
    metadata: Option<Value>,
}

/// A page of orders, newest first.
#[derive(Debug, ToSchema)]
pub struct OrderList {
    data: Vec<Order>,
    /// Pass as `cursor` for the next page; `null` on the last one.
    next_cursor: Option<String>,
}

/// `POST /v1/orders`.
#[derive(Debug, ToSchema, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateOrder {
    /// No `/`, `=` or `&` (Alipay's rule).
    #[schema(max_length = 256)]
    subject: String,
    total_amount: Money,
    #[schema(max_length = 128)]
    body: Option<String>,
    /// Generated when absent.
    #[schema(pattern = "^[A-Za-z0-9_-]{1,64}$")]
    out_trade_no: Option<String>,
    #[schema(minimum = 1, maximum = 21600)]
    expires_in_minutes: Option<i64>,
    /// At most 4096 bytes serialised.
    #[schema(value_type = Option<Object>)]
    metadata: Option<serde_json::Map<String, Value>>,
}

/// `POST /v1/orders/{id}/pay`.
#[derive(Debug, ToSchema, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pay {
    channel: Channel,
    /// page/wap only; the default is this server's `/alipay/return`.
    #[schema(format = "uri")]
    return_url: Option<String>,
    /// jsapi only.
    buyer_id: Option<String>,
    /// jsapi only.
    buyer_open_id: Option<String>,
}

/// What the buyer's device needs; which fields are present depends on the
/// channel.
#[derive(Debug, ToSchema)]
pub struct PayParams {
    channel: Channel,
    /// page/wap: redirect the buyer here (GET).
    url: Option<String>,
    /// page/wap: an auto-submitting POST form.
    form_html: Option<String>,
    /// qr: the content to render as a QR code.
    qr_code: Option<String>,
    /// app: hand to the Alipay app SDK.
    order_string: Option<String>,
    /// jsapi: hand to `tradePay`.
    trade_no: Option<String>,
}

/// `POST /v1/orders/{id}/refunds`.
#[derive(Debug, ToSchema, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateRefund {
    amount: Money,
    #[schema(max_length = 256)]
    reason: Option<String>,
}

/// A refund's state.
#[derive(Debug, ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum RefundStatus {
    Succeeded,
    /// Alipay's answer was not definite; the reconcile pass settles it.
    Pending,
    Failed,
}

/// Who asked for a refund.
#[derive(Debug, ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum RefundOrigin {
    Merchant,
    /// Zhifu's own refund of a payment made after the order was closed.
    PaidAfterClose,
}

/// A refund.
#[derive(Debug, ToSchema)]
pub struct Refund {
    /// `ref_…`
    id: String,
    order_id: String,
    amount: Money,
    status: RefundStatus,
    reason: Option<String>,
    out_request_no: String,
    failure_code: Option<String>,
    origin: RefundOrigin,
    created_at: Timestamp,
}

/// The order's refunds, oldest first.
#[derive(Debug, ToSchema)]
pub struct RefundList {
    data: Vec<Refund>,
}

/// An event's type: the state change it records.
#[derive(Debug, ToSchema)]
pub enum EventType {
    #[schema(rename = "order.paid")]
    Paid,
    #[schema(rename = "order.partially_refunded")]
    PartiallyRefunded,
    #[schema(rename = "order.refunded")]
    Refunded,
    #[schema(rename = "order.closed")]
    Closed,
    #[schema(rename = "order.paid_after_close")]
    PaidAfterClose,
}

/// What reported the change.
#[derive(Debug, ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum EventSource {
    Notify,
    Query,
    Refund,
    Close,
    /// A subscription's deduction answer (`alipay.trade.pay`).
    Deduction,
}

/// The state of an event's webhook.
#[derive(Debug, ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum WebhookState {
    Pending,
    Delivered,
    Failed,
}

/// One delivery attempt.
#[derive(Debug, ToSchema)]
pub struct Delivery {
    attempt: i64,
    at: Timestamp,
    /// The receiver's status, `null` when it could not be reached.
    http_status: Option<i64>,
    error: Option<String>,
    duration_ms: i64,
}

/// An event's webhook delivery state.
#[derive(Debug, ToSchema)]
pub struct EventWebhook {
    state: WebhookState,
    attempts: i64,
    next_attempt_at: Option<Timestamp>,
    delivered_at: Option<Timestamp>,
    last_error: Option<String>,
    deliveries: Vec<Delivery>,
}

/// A state change of an order with its webhook deliveries.
#[derive(Debug, ToSchema)]
pub struct OrderEvent {
    /// `evt_…`, the same as the webhook's; receivers de-duplicate on it.
    id: String,
    #[schema(rename = "type")]
    r#type: EventType,
    previous_status: OrderStatus,
    status: OrderStatus,
    refunded_amount: Money,
    source: EventSource,
    created_at: Timestamp,
    webhook: EventWebhook,
}

/// The order's events, oldest first.
#[derive(Debug, ToSchema)]
pub struct OrderEventList {
    data: Vec<OrderEvent>,
}

/// A recorded report about an order and what it did.
#[derive(Debug, ToSchema)]
pub struct Notification {
    id: String,
    received_at: Timestamp,
    /// `notify`, `query`, `refund` …
    source: String,
    notify_id: Option<String>,
    trade_status: Option<String>,
    /// `applied`, `duplicate` or `anomaly`.
    outcome: String,
    /// Why, for an anomaly.
    reason: Option<String>,
}

/// The order's reports, oldest first.
#[derive(Debug, ToSchema)]
pub struct NotificationList {
    data: Vec<Notification>,
}

/// What changed, with the order as it is at delivery time.
#[derive(Debug, ToSchema)]
pub struct WebhookEventData {
    order_id: String,
    previous_status: OrderStatus,
    status: OrderStatus,
    refunded_amount: Money,
    source: EventSource,
    /// `null` only if the order is gone.
    order: Option<Order>,
}

/// The body of a webhook delivery (and an item of `GET /v1/events`).
#[derive(Debug, ToSchema)]
pub struct WebhookEvent {
    /// `evt_…`, also in the `webhook-id` header; de-duplicate on it.
    id: String,
    #[schema(rename = "type")]
    r#type: EventType,
    created_at: Timestamp,
    data: WebhookEventData,
}

/// The newest events of all orders and subscriptions, newest first.
#[derive(Debug, ToSchema)]
pub struct WebhookEventList {
    data: Vec<AnyWebhookEvent>,
}

/// An order event's or a subscription event's webhook body.
#[derive(Debug, ToSchema)]
#[serde(untagged)]
#[allow(clippy::large_enum_variant)] // never built: it only describes JSON
pub enum AnyWebhookEvent {
    Order(WebhookEvent),
    Subscription(SubscriptionWebhookEvent),
}

/// `POST /v1/reconcile`; every field is optional.
#[derive(Debug, ToSchema, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReconcileRequest {
    /// Only orders at least this old (default 120).
    #[schema(minimum = 0, maximum = 86400)]
    min_age_seconds: Option<i64>,
    /// At most this many rows per kind (default 200).
    #[schema(minimum = 1, maximum = 10000)]
    limit: Option<i64>,
    /// Stop starting new work after this long (default 20).
    #[schema(minimum = 1, maximum = 900)]
    max_seconds: Option<i64>,
}

/// `GET /healthz`.
#[derive(Debug, ToSchema)]
pub struct Health {
    #[schema(example = "ok")]
    status: String,
}

/// A body with no fields: empty, or `{}`.
#[derive(Debug, ToSchema, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmptyBody {}

/// `GET /v1/oauth/authorize-url`.
#[derive(Debug, ToSchema)]
pub struct OauthAuthorizeUrl {
    /// The authorization page with `app_id`, `scope`, `redirect_uri` and
    /// `state`.
    #[schema(format = "uri")]
    url: String,
}

/// `POST /v1/oauth/token`.
#[derive(Debug, ToSchema, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OauthTokenRequest {
    /// The `auth_code` Alipay handed the buyer (authorize redirect, or the
    /// app bridge's `getAuthCode`).
    #[schema(min_length = 1, max_length = 128, pattern = r"^[A-Za-z0-9_-]+$")]
    auth_code: String,
}

/// The buyer as authorization identified them: one of the two is set.
#[derive(Debug, ToSchema)]
pub struct OauthBuyer {
    /// The buyer's `2088…` user id (apps still on user ids), else null.
    user_id: Option<String>,
    /// The buyer's open id (apps on open ids), else null.
    open_id: Option<String>,
}

/// A subscription's status.
#[derive(Debug, ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum SubscriptionStatus {
    /// Created; the buyer has not signed (as far as Alipay has said).
    PendingSignature,
    /// Signed: each period is charged when due.
    Active,
    /// A period's charge failed and its retries ran out.
    PastDue,
    /// Ended by the buyer, the merchant or Alipay.
    Canceled,
    /// Every period of `max_periods` was charged.
    Completed,
}

/// A period unit.
#[derive(Debug, ToSchema, Deserialize)]
#[schema(rename_all = "snake_case")]
pub enum PeriodUnit {
    Day,
    /// The first charge's day of month must be 1–28.
    Month,
}

/// How often a subscription is charged.
#[derive(Debug, ToSchema, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Period {
    unit: PeriodUnit,
    #[schema(minimum = 1, maximum = 366)]
    every: i64,
}

/// How the buyer signs an agreement.
#[derive(Debug, ToSchema, Deserialize)]
#[schema(rename_all = "snake_case")]
pub enum SignChannel {
    Page,
    Wap,
    App,
}

/// `POST /v1/subscriptions`.
#[derive(Debug, ToSchema, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateSubscription {
    #[schema(max_length = 256)]
    subject: String,
    /// Charged each period.
    amount: Money,
    period: Period,
    /// `yyyy-MM-dd`, Beijing; today when absent.
    #[schema(format = Date)]
    first_charge_date: Option<String>,
    #[schema(minimum = 1, maximum = 1200)]
    max_periods: Option<i64>,
    /// Default `page`.
    channel: Option<SignChannel>,
    /// Where Alipay sends the buyer after signing.
    #[schema(format = "uri")]
    return_url: Option<String>,
    /// At most 4096 bytes serialised.
    #[schema(value_type = Option<Object>)]
    metadata: Option<serde_json::Map<String, Value>>,
}

/// What the buyer opens to sign (present while `pending_signature`).
#[derive(Debug, ToSchema)]
pub struct SignParams {
    channel: SignChannel,
    /// page/wap: send the buyer here (GET).
    url: Option<String>,
    /// page/wap: an auto-submitting POST form.
    form_html: Option<String>,
    /// app: open this `alipays://` link.
    app_link: Option<String>,
}

/// A period's charge: the order that charged it (the fields of
/// [`Order`]) with the period.
#[derive(Debug, ToSchema)]
pub struct Charge {
    /// `ord_…`
    id: String,
    /// `{external_agreement_no}P{period}`.
    out_trade_no: String,
    subject: String,
    body: Option<String>,
    total_amount: Money,
    status: OrderStatus,
    refunded_amount: Money,
    refund_pending_amount: Money,
    paid_after_close: bool,
    trade_no: Option<String>,
    buyer_logon_id: Option<String>,
    channel: Option<String>,
    paid_at: Option<Timestamp>,
    closed_at: Option<Timestamp>,
    created_at: Timestamp,
    expires_at: Timestamp,
    /// `{"subscription_id", "period"}`.
    #[schema(value_type = Option<Object>)]
    metadata: Option<Value>,
    /// The period this order charged (1-based).
    subscription_period: i64,
}

/// A subscription (an Alipay recurring agreement).
#[derive(Debug, ToSchema)]
pub struct Subscription {
    /// `sub_…`
    id: String,
    /// Always `subscription`.
    object: String,
    status: SubscriptionStatus,
    subject: String,
    amount: Money,
    /// Always `CNY`.
    currency: String,
    period: Period,
    #[schema(format = Date)]
    first_charge_date: String,
    max_periods: Option<i64>,
    periods_charged: i64,
    /// `null` once canceled or completed.
    #[schema(format = Date)]
    next_charge_date: Option<String>,
    /// Failed attempts at the current period.
    failed_attempts: i64,
    external_agreement_no: String,
    /// Alipay's agreement number, once signed.
    agreement_no: Option<String>,
    channel: String,
    #[schema(value_type = Option<Object>)]
    metadata: Option<Value>,
    created_at: Timestamp,
    updated_at: Timestamp,
    activated_at: Option<Timestamp>,
    canceled_at: Option<Timestamp>,
    /// On `GET /v1/subscriptions/{id}`: its charges, newest period first.
    charges: Option<Vec<Charge>>,
    /// On create: what the buyer opens to sign.
    sign: Option<SignParams>,
}

/// A page of subscriptions, newest first.
#[derive(Debug, ToSchema)]
pub struct SubscriptionList {
    data: Vec<Subscription>,
    has_more: bool,
    /// Pass as `cursor` for the next page; `null` on the last one.
    next_cursor: Option<String>,
}

/// A subscription webhook's type.
#[derive(Debug, ToSchema)]
pub enum SubscriptionEventType {
    #[schema(rename = "subscription.active")]
    Active,
    #[schema(rename = "subscription.charged")]
    Charged,
    #[schema(rename = "subscription.payment_failed")]
    PaymentFailed,
    #[schema(rename = "subscription.canceled")]
    Canceled,
}

/// What a subscription event is about.
#[derive(Debug, ToSchema)]
pub struct SubscriptionWebhookData {
    subscription_id: String,
    /// The period charged (charged, payment_failed).
    period: Option<i64>,
    /// The period's order (charged, payment_failed).
    order_id: Option<String>,
    /// The subscription as it is now.
    subscription: Option<Subscription>,
    /// The period's order as it is now.
    order: Option<Order>,
}

/// The body of a subscription webhook delivery.
#[derive(Debug, ToSchema)]
pub struct SubscriptionWebhookEvent {
    /// `evt_…`, also in the `webhook-id` header; de-duplicate on it.
    id: String,
    #[schema(rename = "type")]
    r#type: SubscriptionEventType,
    created_at: Timestamp,
    data: SubscriptionWebhookData,
}
