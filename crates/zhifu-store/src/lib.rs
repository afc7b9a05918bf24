//! # zhifu-store — where the payment backend's state lives
//!
//! This crate owns everything persistent about Zhifu's orders: the [`Store`]
//! trait the server talks to, the domain records ([`Order`], [`Refund`],
//! [`OrderEvent`], [`NotificationRecord`]), the [`StoreError`] type, and
//! [`SqlStore`], one sqlx implementation that runs on **SQLite** (embedded,
//! file or in-memory), **PostgreSQL** and **MySQL/MariaDB**, each with its
//! own embedded migrations (`migrations/sqlite`, `migrations/postgres`,
//! `migrations/mysql`).
//!
//! ## Invariants
//!
//! - Money is integer fen (`i64`), times are epoch milliseconds (`i64`).
//! - An order's payment state changes only in [`Store::apply_trade_update`]
//!   (and [`Store::finish_refund`], which calls the same code inside its
//!   transaction). Which report moves which state is decided by one pure
//!   function (module `transition`) so it can be tested without a database.
//!   Every transition is a conditional `UPDATE … WHERE status = …`, so a
//!   replayed or concurrent update is a no-op; each effective transition
//!   writes exactly one [`OrderEvent`] in the same transaction, together
//!   with the [`NotificationRecord`] that caused it.
//! - States never go backwards: `pending → paid → refunded`, `pending →
//!   closed`, `pending → closing → closed`; a payment for a closing or
//!   closed order is taken (`→ paid`, flagged `paid_after_close`), never
//!   refused, and under [`LatePayment::Refund`] its refund is recorded in
//!   the same transaction. `refunded_fen` only grows, and only to amounts Alipay reported.
//! - On a SQLite file every write goes through one writer connection (its
//!   own pool of one): writers of one process queue there, in order, rather
//!   than colliding on SQLite's lock; commits are synced before they return
//!   (`synchronous = FULL`), so an answered `success` survives power loss.
//!   Trade updates queued behind a busy writer share one transaction and
//!   its sync (group commit; [`SqlStore::group_commit_stats`]).
//! - The store does not verify signatures and knows nothing of HTTP; callers
//!   hand it only updates they have already verified.
//! - `order_events` is also the webhook outbox: an event exists if and only
//!   if its state change committed, and it stays `pending` until delivered or
//!   given up. Work that several processes may do at once (reconcile rows,
//!   event deliveries) is *claimed* with a lease by one conditional `UPDATE`
//!   (`FOR UPDATE SKIP LOCKED` on PostgreSQL): two claimers never hold the
//!   same row, and a claimer that dies only delays the row until its lease
//!   ends.

#![deny(missing_docs)]

mod error;
mod model;
mod sql;
#[cfg(feature = "testing")]
pub mod testing;
mod transition;

use async_trait::async_trait;

pub use crate::error::StoreError;
pub use crate::model::*;
pub use crate::sql::alipay_certs::AlipayCertRecord;
pub use crate::sql::{Backend, GroupStats, Pooler, SqlStore, StoreOptions, StorePool, new_id};
pub use crate::transition::is_redelivery;

/// Shorthand for results of this crate.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Everything the payment backend persists. Implementations must make every
/// method safe to call concurrently from many processes.
#[async_trait]
pub trait Store: Send + Sync + std::fmt::Debug {
    /// Checks that the database answers.
    async fn ping(&self) -> Result<()>;

    /// Inserts a new order. When `idempotency_key` is set and already used,
    /// answers [`CreateOrderOutcome::Existing`] with the earlier order (the
    /// caller compares `request_hash`).
    ///
    /// # Errors
    /// [`StoreError::Conflict`] when `out_trade_no` is taken.
    async fn create_order(&self, order: NewOrder) -> Result<CreateOrderOutcome>;

    /// The order with this id.
    async fn get_order(&self, id: &str) -> Result<Option<Order>>;

    /// The order with this merchant order number.
    async fn get_order_by_out_trade_no(&self, out_trade_no: &str) -> Result<Option<Order>>;

    /// Orders newest first, optionally filtered by status, after `cursor`.
    async fn list_orders(&self, query: &OrderQuery) -> Result<Vec<Order>>;

    /// Records the channel last used to pay and, for channels where Alipay
    /// creates the trade up front (`jsapi`), its `trade_no`. Neither is payment
    /// state. Does nothing unless the order is still pending, and says
    /// whether it was: payment parameters must not be handed out for an
    /// order that is being closed.
    async fn record_payment_attempt(
        &self,
        order_id: &str,
        channel: &str,
        trade_no: Option<&str>,
        at: i64,
    ) -> Result<bool>;

    /// The single path that changes an order's payment state: applies what
    /// Alipay reported (already verified by the caller) with conditional
    /// updates, writes the resulting events and the notification record in
    /// one transaction.
    async fn apply_trade_update(
        &self,
        update: &TradeUpdate,
        record: &NewNotification,
    ) -> Result<ApplyResult>;

    /// Records a notification that never reached [`Store::apply_trade_update`]
    /// (bad signature, unknown order, mismatching fields).
    async fn record_notification(&self, record: &NewNotification) -> Result<()>;

    /// Whether a message with this `notify_id` was already recorded as
    /// refused for these reasons (stored form, [`AnomalyReason::join`]; one
    /// indexed read): a replay of a refused message records nothing new.
    async fn refusal_seen(&self, notify_id: &str, reasons: &str) -> Result<bool>;

    /// Deletes records of refused messages that name no order: those
    /// received before `before`, and all but the newest `keep`. Returns how
    /// many went. What strangers can make us store stays bounded.
    async fn prune_refused(&self, before: i64, keep: i64) -> Result<u64>;

    /// Notifications recorded for an order, oldest first.
    async fn list_notifications(&self, order_id: &str) -> Result<Vec<NotificationRecord>>;

    /// Notifications recorded with no order (unknown `out_trade_no`, bad
    /// signature before the order could be trusted), newest first.
    async fn list_orphan_notifications(&self, limit: i64) -> Result<Vec<NotificationRecord>>;

    /// State changes of an order, oldest first.
    async fn list_events(&self, order_id: &str) -> Result<Vec<OrderEvent>>;

    /// Reserves the amount and inserts a `pending` refund in one transaction,
    /// leased to its creator until `refund.lease_until`.
    async fn create_refund(&self, refund: NewRefund) -> Result<CreateRefundOutcome>;

    /// Asks whether a refund call for `refund_id` may start at `now`: the
    /// order's refund slot is free when no refund of the same trade started
    /// within `spacing_ms`. Granting takes the slot and counts the call;
    /// refusing moves the refund's lease to when the slot frees.
    async fn take_refund_slot(
        &self,
        refund_id: &str,
        now: i64,
        spacing_ms: i64,
    ) -> Result<RefundSlot>;

    /// `pending → closing`: we closed an order Alipay has no trade for yet,
    /// while its payment parameters may still be used. No event: the
    /// merchant is told `closed` only once nothing can pay it any more.
    /// Returns the order as it is afterwards (unchanged unless pending).
    async fn begin_closing(&self, order_id: &str, at: i64) -> Result<Order>;

    /// A refund by id.
    async fn get_refund(&self, id: &str) -> Result<Option<Refund>>;

    /// Refunds of an order, oldest first.
    async fn list_refunds(&self, order_id: &str) -> Result<Vec<Refund>>;

    /// Settles a `pending` refund (no-op if it is already settled). On
    /// success the cumulative `refund_fee` Alipay reported goes through the
    /// same state-change code as notifications, in the same transaction.
    async fn finish_refund(&self, refund_id: &str, result: &RefundResult) -> Result<Refund>;

    /// Number of orders per status (for metrics).
    async fn count_orders_by_status(&self) -> Result<Vec<(OrderStatus, i64)>>;

    /// Takes up to `claim.limit` pending orders that a reconcile pass should
    /// ask Alipay about (created at or before `claim.created_before`, or past
    /// their deadline) and whose lease is free, leasing them until
    /// `claim.lease_until`. Concurrent callers never get the same order while
    /// its lease holds; an order whose pass died is due again when it ends.
    async fn claim_reconcile_orders(&self, claim: &ReconcileClaim) -> Result<Vec<Order>>;

    /// As [`Store::claim_reconcile_orders`], for refunds still `pending`
    /// (whatever the order's state). The lease is also the refund's
    /// in-flight lease: nobody else sends it while it holds.
    async fn claim_reconcile_refunds(&self, claim: &ReconcileClaim) -> Result<Vec<Refund>>;

    /// Takes up to `limit` events whose webhook is pending and due at `now`,
    /// leasing each until `lease_until` (oldest due first).
    async fn claim_due_events(
        &self,
        now: i64,
        lease_until: i64,
        limit: i64,
    ) -> Result<Vec<OrderEvent>>;

    /// Takes one event for delivery if it is pending, due and not leased;
    /// with `force` (a manual resend) whatever its state and schedule — a
    /// delivered or failed event is re-armed with a fresh retry budget.
    /// `None` when it does not exist or is not available.
    async fn claim_event(
        &self,
        event_id: &str,
        now: i64,
        lease_until: i64,
        force: bool,
    ) -> Result<Option<OrderEvent>>;

    /// Records a delivery attempt of a claimed event and what happens next.
    async fn finish_delivery(
        &self,
        event_id: &str,
        attempt: &NewDeliveryAttempt,
        next: DeliveryNext,
    ) -> Result<OrderEvent>;

    /// One event.
    async fn get_event(&self, event_id: &str) -> Result<Option<OrderEvent>>;

    /// Events newest first, filtered.
    async fn query_events(&self, query: &EventQuery) -> Result<Vec<OrderEvent>>;

    /// Number of events per webhook delivery state (for metrics).
    async fn count_events_by_state(&self) -> Result<Vec<(WebhookState, i64)>>;

    /// Delivery attempts of an event, in the order they were made.
    async fn list_delivery_attempts(&self, event_id: &str) -> Result<Vec<DeliveryAttempt>>;

    /// Records an Alipay certificate downloaded in certificate mode,
    /// accepted or refused; an accepted record is never replaced by a
    /// refusal.
    async fn record_alipay_cert(&self, rec: &AlipayCertRecord) -> Result<()>;

    /// The record of one `alipay_cert_sn`.
    async fn get_alipay_cert(&self, sn: &str) -> Result<Option<AlipayCertRecord>>;

    /// Every accepted Alipay certificate, oldest first.
    async fn accepted_alipay_certs(&self) -> Result<Vec<AlipayCertRecord>>;

    /// Inserts a `pending_signature` subscription. When `idempotency_key`
    /// is set and already used, answers the earlier one.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] when `external_agreement_no` is taken.
    async fn create_subscription(&self, sub: NewSubscription) -> Result<CreateSubscriptionOutcome>;

    /// The subscription with this id.
    async fn get_subscription(&self, id: &str) -> Result<Option<Subscription>>;

    /// The subscription with this merchant agreement number.
    async fn get_subscription_by_external_no(&self, no: &str) -> Result<Option<Subscription>>;

    /// Subscriptions newest first, filtered and paged.
    async fn list_subscriptions(&self, query: &SubscriptionQuery) -> Result<Vec<Subscription>>;

    /// `pending_signature → active` with Alipay's agreement number and the
    /// buyer, and its event, once. `Some` when this call made the change.
    async fn activate_subscription(
        &self,
        id: &str,
        agreement_no: &str,
        buyer_id: Option<&str>,
        at: i64,
    ) -> Result<Option<Subscription>>;

    /// Any non-final state → `canceled`, and its event, once. `Some` when
    /// this call made the change.
    async fn cancel_subscription(&self, id: &str, at: i64) -> Result<Option<Subscription>>;

    /// Takes up to `limit` active subscriptions whose next charge is due at
    /// `now` and whose lease is free, leasing each until `lease_until`.
    async fn claim_due_subscriptions(
        &self,
        now: i64,
        lease_until: i64,
        limit: i64,
    ) -> Result<Vec<Subscription>>;

    /// The order that charges `period` of a subscription: the existing one,
    /// or `order` inserted with its link in one transaction. However many
    /// callers ask, a period has one order.
    async fn charge_order(
        &self,
        subscription_id: &str,
        period: i64,
        order: NewOrder,
    ) -> Result<Order>;

    /// Records how `period`'s charge ended, once (the subscription must
    /// still be at that period), with its event. `Some` when this call made
    /// the change.
    async fn record_charge(
        &self,
        subscription_id: &str,
        period: i64,
        result: &ChargeResult,
        at: i64,
    ) -> Result<Option<Subscription>>;

    /// Moves a claimed subscription's lease to `retry_at` without a result.
    async fn release_subscription(&self, id: &str, retry_at: i64) -> Result<()>;

    /// A subscription's charges `(period, order)`, newest period first.
    async fn list_subscription_charges(&self, id: &str) -> Result<Vec<(i64, Order)>>;

    /// The subscription and period an order charges, if it is a charge.
    async fn subscription_of_order(&self, order_id: &str) -> Result<Option<(String, i64)>>;

    /// A subscription's events, oldest first.
    async fn list_subscription_events(&self, id: &str) -> Result<Vec<SubscriptionEvent>>;

    /// Number of subscriptions per status (for metrics).
    async fn count_subscriptions_by_status(&self) -> Result<Vec<(SubscriptionStatus, i64)>>;

    /// The newest subscription events of all subscriptions, newest first.
    async fn recent_subscription_events(&self, limit: i64) -> Result<Vec<SubscriptionEvent>>;

    /// Takes up to `limit` subscription events whose webhook is due
    /// (optionally of one subscription), leasing each until `lease_until`.
    async fn claim_due_subscription_events(
        &self,
        now: i64,
        lease_until: i64,
        limit: i64,
        subscription_id: Option<&str>,
    ) -> Result<Vec<SubscriptionEvent>>;

    /// Takes one subscription event for a manual resend, whatever its state
    /// (a delivered or failed one gets a fresh retry budget). `None` when
    /// it does not exist.
    async fn claim_subscription_event_for_resend(
        &self,
        event_id: &str,
        lease_until: i64,
    ) -> Result<Option<SubscriptionEvent>>;

    /// Records a delivery attempt's outcome on a subscription event.
    async fn finish_subscription_event_delivery(
        &self,
        event_id: &str,
        at: i64,
        error: Option<&str>,
        next: DeliveryNext,
    ) -> Result<()>;
}
